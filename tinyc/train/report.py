"""The training section of the report: what one training step costs in SRAM and flash, by part,
where in the step the peak is, and the same figures for a full update and bias-only so that the
saving of the chosen scheme is visible.

Peak SRAM of training = arena (the larger of the training step's and invoke()'s plans: saved
activations, 1-bit masks, kept input channels and float32 gradients are planned tensors in it)
+ trained parameters copied to SRAM + update state (residuals, momentum, the rounding generator)
+ stack. Parts are "planned" (the memory plan), "compiled" (static data off the board compiler's
objects) or "estimated" (stack, from gcc's call graph of train_step).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tinyc.compiler import Options
from tinyc.train.compile import TrainCompiled, TrainOptions, compile_training

SGD_BYTES = 16  # the optimizer settings and the generator state


@dataclass(frozen=True)
class SchemeFigure:
    scheme: str
    sram_bytes: int  # planned parts, no stack
    no_reorder_bytes: int  # + every weight gradient materialised before the update (no reordering)
    trained_params: int


@dataclass
class TrainingReport:
    model: str
    scheme: str
    updates: list[dict[str, Any]]
    arena: int
    train_arena: int
    inference_arena: int
    params: int
    state: int
    masks: int
    saved: int
    stack: int | None
    static_data: int | None
    flash_weights: int
    flash_init_copies: int
    peak_sram: int
    peak_how: str
    patched: bool
    timeline: list[tuple[str, int]]  # (phase, most bytes live in it)
    peak_step: str
    compare: list[SchemeFigure] = field(default_factory=list)
    board: str = ""
    board_sram: int | None = None  # all of the board's RAM regions
    board_flash: int | None = None

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["compare"] = [c.__dict__ for c in self.compare]
        return d

    def text(self) -> str:
        lines = [f"training step ({self.scheme}):"]
        for u in self.updates:
            what = (f"weights on {u['channels']} of {u['of_channels']} input channels" if u["channels"] else "no weights")
            lines.append(f"  #{u['op']:<4} {u['kind']:<18} {what}{' + bias' if u['bias'] else ''}")
        lines += ["", "  training peak SRAM by part:",
                  f"    arena                {self.arena:>12,} B  (planned: training step {self.train_arena:,} B, "
                  f"invoke() {self.inference_arena:,} B{'; forward stage patch by patch' if self.patched else ''})",
                  f"      of which masks     {self.masks:>12,} B  (1 bit per activation the backward gates)",
                  f"      kept channels      {self.saved:>12,} B  (inputs of partially trained layers)",
                  f"    trained parameters   {self.params:>12,} B  (copied to SRAM; frozen ones stay in flash)",
                  f"    update state         {self.state:>12,} B  (rounding residuals, momentum, generator)",
                  f"    stack                {self.stack if self.stack is not None else 'n/a':>12} B  (estimated from "
                  "the call graph of train_step)" if self.stack is not None else
                  "    stack                         n/a    (arm-none-eabi-gcc not installed)",
                  f"    = peak SRAM          {self.peak_sram:>12,} B  ({self.peak_how})",
                  f"  flash: weights {self.flash_weights:,} B + flashed copies of the trained parameters "
                  f"{self.flash_init_copies:,} B (train_reset)",
                  "  per step: " + ", ".join(f"{phase} {b:,} B" for phase, b in self.timeline)
                  + f"; peak at {self.peak_step}"]
        if self.board_sram:
            left = self.board_sram - self.peak_sram
            lines.append(f"  {self.board}: {self.board_sram:,} B of RAM: " + (
                f"fits, {left:,} B to spare" if left >= 0 else
                f"does NOT fit by {-left:,} B: train fewer layers or channels (--update sparse:FILE with lower "
                "weight_update_ratio or fewer manual_weight_idx), --rounding stochastic (no update residuals), "
                "or fewer biases (n_bias_update)"))
            flash = self.flash_weights + self.flash_init_copies
            if self.board_flash and flash > self.board_flash:
                lines.append(f"  weights need {flash:,} B of flash, the board has {self.board_flash:,} B")
        if self.compare:
            lines += ["", f"  {'scheme':<28} {'SRAM (no stack)':>16} {'without reordering':>20}"]
            for c in self.compare:
                lines.append(f"  {c.scheme:<28} {c.sram_bytes:>16,} {c.no_reorder_bytes:>20,}")
            lines.append("  (without reordering: every weight gradient materialised before the update, as a "
                         "framework that steps after backward)")
        return "\n".join(lines)


def no_reorder_bytes(tc: TrainCompiled) -> int:
    """The peak if the weight gradients existed whole before the update (TTE's "sparse" vs
    "sparse + reorder"): the planned peak plus 4 bytes per trained parameter element."""
    elements = sum(tc.train.forward.t(n).size for n in tc.train.trained)
    return tc.memory.sram + 4 * elements


def timeline(tc: TrainCompiled) -> tuple[list[tuple[str, int]], str]:
    g = tc.train.graph
    live = tc.plan.live_per_step
    phases: dict[str, int] = {}
    loss_at = next(k for k, op in enumerate(g.ops) if op.attrs.get("what") == "loss")
    for k, op in enumerate(g.ops):
        phase = "forward" if k < loss_at else "loss" if k == loss_at else "backward"
        phases[phase] = max(phases.get(phase, 0), live[k])
    k = max(range(len(g.ops)), key=lambda i: live[i])
    op = g.ops[k]
    what = op.attrs.get("what", "")
    return list(phases.items()), f"step {k}: {op.kind if not what else what} of op #{op.index}"


def training_report(tc: TrainCompiled, board: Any | None = None, compare: bool = True,
                    options: Options = Options(), model: Any = None) -> TrainingReport:
    from tinyc.report.report import cross_compile_sizes
    from tinyc.train.graph import describe_updates

    m = tc.memory
    prog = tc.compiled.program
    stack = static = None
    if board is not None and getattr(board, "cpu", "host") != "host":
        sizes = cross_compile_sizes(tc.compiled, board.cpu, getattr(board, "fpu", None),
                                    getattr(board, "float_abi", None), entry="train_step")
        if sizes is not None:
            stack, static = sizes.stack, sizes.static_data
    arena = prog.arena_bytes
    if static is not None and stack is not None:
        peak, how = arena + static + stack, "arena planned + static data compiled + stack estimated"
    else:
        peak, how = m.sram, "planned; no stack or other static data"
    init = sum(tc.train.forward.t(n).nbytes for n in tc.train.trained)
    tl, at = timeline(tc)
    rep = TrainingReport(model=tc.compiled.model_file, scheme=tc.scheme.describe(), updates=describe_updates(tc.train),
                         arena=arena, train_arena=m.arena, inference_arena=m.inference_arena, params=m.params,
                         state=m.state + SGD_BYTES, masks=m.masks, saved=m.saved, stack=stack, static_data=static,
                         flash_weights=prog.weight_bytes - init, flash_init_copies=init, peak_sram=peak, peak_how=how,
                         patched=tc.train.patched, timeline=tl, peak_step=at)
    if board is not None and getattr(board, "cpu", "host") != "host":
        from tinyc.target.boards import flash_bytes, sram_bytes

        rep.board, rep.board_sram, rep.board_flash = board.name, sram_bytes(board), flash_bytes(board)
    if compare and model is not None:
        rep.compare.append(SchemeFigure(tc.scheme.name, m.sram, no_reorder_bytes(tc), m.params))
        for scheme in ("full", "bias", "classifier"):
            if scheme == tc.scheme.name:
                continue
            other = compile_training(model, TrainOptions(update=scheme, classes=tc.options.classes, qas=tc.options.qas,
                                                         momentum=tc.options.momentum, rounding=tc.options.rounding),
                                     options, search_seconds=0)
            rep.compare.append(SchemeFigure(scheme, other.memory.sram, no_reorder_bytes(other), other.memory.params))
    return rep
