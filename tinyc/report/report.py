"""The peak-SRAM report: one Report object; text, JSON and plots are views of it.

Every total says how it was obtained ("planned" by our planner, "compiled" from object
sizes of the board's cross compiler, "estimated" from gcc's call graph with stack usage
(-fcallgraph-info=su), or "unknown" when the toolchain is missing), because an SRAM figure
with no provenance is worthless to a user.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyc.codegen.emit import model_basename
from tinyc.compiler import Compiled
from tinyc.passes.int8_input import float_inputs_to_strip
from tinyc.report.stack import CallGraph


@dataclass(frozen=True)
class LayerRow:
    step: int
    index: int
    op: str
    inputs: list[list[int]]
    outputs: list[list[int]]
    macs: int
    live_bytes: int
    high_water_bytes: int
    is_peak: bool = False
    patch: tuple[int, int] | None = None  # (row, col) when the layer runs inside a patch stage


@dataclass(frozen=True)
class Figure:
    bytes: int | None
    how: str  # planned | compiled | estimated | measured | unknown


@dataclass(frozen=True)
class RegionFit:
    name: str
    kind: str
    capacity: int
    used: int
    # False when part of `used` could not be obtained (stack and static data without the board's
    # toolchain): "fits" is then unknown, while an overflow of what is known is still certain.
    complete: bool = True

    @property
    def margin(self) -> int:
        return self.capacity - self.used

    @property
    def fits(self) -> bool | None:
        if self.used > self.capacity:
            return False
        return True if self.complete else None


@dataclass(frozen=True)
class Report:
    model: str
    board: str
    layers: list[LayerRow]
    arena: Figure
    lower_bound: Figure
    scratch: Figure
    static_data: Figure
    stack: Figure
    weights: Figure
    code: Figure
    io_bytes: int
    planner: str
    regions: list[RegionFit] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)
    patch: dict[str, Any] = field(default_factory=dict)  # the patch plan generated (see _patch_summary)
    unpatched_arena_bytes: int | None = None
    # Model inputs read per patch through <prefix>_read_input(): held wherever the application keeps
    # them (camera, external RAM), so outside the on-chip peak; the report says so next to the figure.
    streamed_input_bytes: int = 0
    # "int8" when --input-type int8 took a float32 model input as int8 (its QUANTIZE dropped), else "model"
    input_type: str = "model"
    input_note: str = ""  # says what --input-type int8 changed, or what it would save

    @property
    def peak_sram_without_patches(self) -> int:
        base = self.unpatched_arena_bytes if self.unpatched_arena_bytes is not None else (self.arena.bytes or 0)
        return base + (self.static_data.bytes or 0) + (self.stack.bytes or 0)

    @property
    def peak_sram_bytes(self) -> int:
        return sum(f.bytes or 0 for f in (self.arena, self.static_data, self.stack))

    @property
    def flash_bytes(self) -> int:
        return (self.weights.bytes or 0) + (self.code.bytes or 0)

    @property
    def fits(self) -> bool | None:
        if not self.regions:
            return None
        verdicts = [r.fits for r in self.regions]
        return False if False in verdicts else (None if None in verdicts else True)

    @property
    def peak_layer(self) -> LayerRow | None:
        return next((r for r in self.layers if r.is_peak), None)

    def to_json(self) -> dict[str, Any]:
        peak = self.peak_layer
        return {
            "model": self.model, "board": self.board, "planner": self.planner,
            "arena_bytes": self.arena.bytes, "lower_bound_bytes": self.lower_bound.bytes,
            "scratch_bytes": self.scratch.bytes, "static_data_bytes": self.static_data.bytes,
            "stack_bytes": self.stack.bytes, "io_bytes": self.io_bytes,
            "streamed_input_bytes": self.streamed_input_bytes, "input_type": self.input_type,
            "peak_sram_bytes": self.peak_sram_bytes, "flash_bytes": self.flash_bytes,
            "weights_bytes": self.weights.bytes, "code_bytes": self.code.bytes,
            "how": {k: getattr(self, k).how for k in ("arena", "lower_bound", "scratch", "static_data", "stack",
                                                      "weights", "code")},
            "fits": self.fits, "peak_layer": peak.index if peak else None,
            "regions": [{"name": r.name, "kind": r.kind, "capacity": r.capacity, "used": r.used,
                         "margin": r.margin, "fits": r.fits} for r in self.regions],
            "advice": self.advice,
            "patch": {**self.patch, "peak_sram_bytes": self.peak_sram_bytes,
                      "peak_sram_bytes_without_patches": self.peak_sram_without_patches},
            "layers": [{"step": r.step, "index": r.index, "op": r.op, "inputs": r.inputs, "outputs": r.outputs,
                        "macs": r.macs, "live_bytes": r.live_bytes, "high_water_bytes": r.high_water_bytes,
                        "peak": r.is_peak, "patch": list(r.patch) if r.patch else None} for r in self.layers],
        }


def _layers(c: Compiled) -> list[LayerRow]:
    g, plan = c.graph, c.plan
    rows = []
    for step, op in enumerate(g.ops):
        live = [b for b in plan.buffers if b.first <= step <= b.last]
        hw = max((plan.offsets[b.name] + b.size for b in live), default=0)
        rows.append(LayerRow(step=step, index=op.index, op=op.kind,
                             inputs=[list(g.t(i).shape) for i in op.inputs if i is not None and not g.t(i).is_const],
                             outputs=[list(g.t(o).shape) for o in op.outputs], macs=c.macs[step],
                             live_bytes=plan.live_per_step[step], high_water_bytes=hw,
                             patch=tuple(op.attrs["patch"]) if "patch" in op.attrs else None))
    if rows:
        peak = max(range(len(rows)), key=lambda i: (rows[i].live_bytes, -i))
        rows[peak] = LayerRow(**{**rows[peak].__dict__, "is_peak": True})
    return rows


def _candidate(c: Any) -> dict[str, Any]:
    return {"split": c.layer, "split_op": c.split_label, "grid": list(c.grid), "mac_overhead": round(c.mac_overhead, 4),
            "arena_bytes": c.arena_bytes, "estimate_bytes": c.estimate_bytes}


def _patch_summary(c: Compiled) -> dict[str, Any]:
    """The plan the generated code runs: split None and grid None when it runs layer by layer."""
    o = c.patch
    if o is None or o.chosen is None or o.patched is None:
        return {"mode": o.mode if o else "off", "split": None, "split_op": None, "grid": None, "mac_overhead": 0.0,
                "input": "whole",
                "arena_bytes": c.plan.arena_bytes, "regions": [],
                "alternatives": [_candidate(a) for a in (o.alternatives if o else ())]}
    ch = o.chosen
    return {"mode": o.mode, "split": ch.layer, "split_op": ch.split_label, "grid": list(ch.grid),
            "input": "stream" if c.graph.streamed else "whole",
            "mac_overhead": round(ch.mac_overhead, 4), "arena_bytes": c.plan.arena_bytes,
            "regions": o.patched.regions(), "alternatives": [_candidate(a) for a in o.alternatives]}


@dataclass(frozen=True)
class CompiledSizes:
    code: int        # .text + .rodata, weights included
    stack: int       # deepest call chain from invoke(), from gcc's call graph
    static_data: int  # .data + .bss outside the arena


def cross_compile_sizes(c: Compiled, cpu: str, fpu: str | None, float_abi: str | None,
                        entry: str = "invoke") -> CompiledSizes | None:
    """Sizes of the model and its kernels as the board's compiler builds them (arm-none-eabi-gcc
    objects and their call graph); None when the toolchain is missing. Static data is read off the
    objects rather than assumed to be zero, so a kernel that grows a table shows up in the peak."""
    if shutil.which("arm-none-eabi-gcc") is None or cpu == "host":
        return None
    with tempfile.TemporaryDirectory(prefix="tinyc-size") as td:
        d = Path(td)
        c.write(d)
        flags = [f"-mcpu={cpu}", "-mthumb", "-O2", "-std=c99", "-ffp-contract=off", "-ffunction-sections", "-fdata-sections",
                 "-fcallgraph-info=su", "-Iruntime/include", "-I."]
        if fpu and fpu != "none":
            flags += [f"-mfpu={fpu}", f"-mfloat-abi={float_abi or 'hard'}"]
        srcs = [f"{model_basename(c.program.name)}.c"] + [f"runtime/src/{s}" for s in c.program.sources]
        r = subprocess.run(["arm-none-eabi-gcc", *flags, "-c", *srcs], cwd=d, capture_output=True, text=True)
        if r.returncode != 0:
            return None
        objs = sorted(d.glob("*.o"))
        sz = subprocess.run(["arm-none-eabi-size", "-A", *map(str, objs)], capture_output=True, text=True)
        text = data = 0
        # -fdata-sections gives every object its own section: the arena is accounted on its own line,
        # everything else is static data (a streamed input's buffer reader is opt-in, not compiled here).
        own = re.compile(rf"^\.bss\.{re.escape(c.program.prefix)}_arena$")
        for line in sz.stdout.splitlines():
            m = re.match(r"^(\.(text|rodata|data|bss)\S*)\s+(\d+)", line)
            if not m:
                continue
            if m.group(2) in ("text", "rodata"):
                text += int(m.group(3))
            elif not own.match(m.group(1)):
                data += int(m.group(3))
        stack = CallGraph.read(sorted(d.glob("*.ci"))).worst(f"{c.program.prefix}_{entry}")
        return CompiledSizes(code=text, stack=stack, static_data=data)


def _input_note(c: Compiled) -> tuple[str, str]:
    """("int8" or "model", a sentence for the report): what --input-type int8 did or would save."""
    src, g = c.source_graph, c.graph
    changed = [k for k, (a, b) in enumerate(zip(src.inputs, g.inputs)) if src.t(a).dtype != g.t(b).dtype]
    if changed:
        saved = sum(src.t(src.inputs[k]).nbytes - g.t(g.inputs[k]).nbytes for k in changed)
        t = g.t(g.inputs[changed[0]])
        q = t.quant
        return "int8", (f"int8{list(t.shape)}" + (f" (scale {q.s:.6g}, zero point {q.zp})" if q is not None else "")
                        + f" with --input-type int8: your application quantizes, not the model's QUANTIZE; "
                          f"{saved:,} B less than the float32 input")
    could = float_inputs_to_strip(src)
    if could:
        saved = sum(src.t(src.inputs[k]).nbytes * 3 // 4 for k in could)
        t = src.t(src.inputs[could[0]])
        return "model", (f"float32{list(t.shape)}, quantized to int8 by the model's first op: --input-type int8 "
                         f"takes it as int8 and saves {saved:,} B while it is live")
    return "model", ""


def build_report(c: Compiled, board: Any | None = None) -> Report:
    plan = c.plan
    # scratch is short-lived: the figure is the most live at any one step, not the sum over the run
    scratch = max((sum(b.size for b in plan.buffers if b.name.startswith("scratch") and b.first <= s <= b.last)
                   for s in range(len(c.graph.ops))), default=0)
    io_bytes = sum(c.graph.t(n).nbytes for n in c.graph.inputs + c.graph.outputs if n not in c.graph.streamed)
    streamed = sum(c.graph.t(n).nbytes for n in c.graph.streamed)
    weights = c.program.weight_bytes
    on_host = board is None or getattr(board, "cpu", "host") == "host"
    why = "not computed for the host" if on_host else "unknown (arm-none-eabi-gcc not installed)"
    code, stack, static = Figure(None, why), Figure(None, why), Figure(None, why)
    board_name = getattr(board, "name", "host")
    if not on_host:
        sizes = cross_compile_sizes(c, board.cpu, getattr(board, "fpu", None), getattr(board, "float_abi", None))
        if sizes is not None:
            code = Figure(max(sizes.code - weights, 0), "compiled")
            stack = Figure(sizes.stack, "estimated")
            static = Figure(sizes.static_data, "compiled")
    input_type, input_note = _input_note(c)
    rep = Report(model=c.model_file, board=board_name, layers=_layers(c), input_type=input_type, input_note=input_note,
                 arena=Figure(plan.arena_bytes, "planned"), lower_bound=Figure(plan.lower_bound_bytes, "planned"),
                 scratch=Figure(scratch, "planned"), static_data=static, stack=stack,
                 weights=Figure(weights, "planned"), code=code, io_bytes=io_bytes, planner=plan.strategy,
                 patch=_patch_summary(c), streamed_input_bytes=streamed,
                 unpatched_arena_bytes=c.patch.unpatched_arena_bytes if c.patch else plan.arena_bytes)
    if board is None or getattr(board, "cpu", "host") == "host":
        return rep
    regions, advice = _fit(rep, board)
    return Report(**{**rep.__dict__, "regions": regions, "advice": advice})


def _fit(rep: Report, board: Any) -> tuple[list[RegionFit], list[str]]:
    mems = list(getattr(board, "memory", ()) or getattr(board, "regions", ()))
    rams = sorted((m for m in mems if m.kind == "ram"), key=lambda m: m.origin)
    flashes = [m for m in mems if m.kind == "flash"]
    fits: list[RegionFit] = []
    # The arena, static data and stack go into the arena region and the RAM contiguous after it.
    start = next((i for i, m in enumerate(rams) if m.name == getattr(board, "arena_region", None)), 0)
    run = [rams[start]] if rams else []
    for m in rams[start + 1:]:
        if m.origin == run[-1].end:
            run.append(m)
    capacity = sum(m.length for m in run)
    if run:
        known = rep.static_data.bytes is not None and rep.stack.bytes is not None
        fits.append(RegionFit(name="+".join(m.name for m in run), kind="ram", capacity=capacity,
                              used=rep.peak_sram_bytes, complete=known))
    # The other RAM regions hold nothing of the model: listed so the user sees what is left for the application.
    fits += [RegionFit(name=m.name, kind="ram", capacity=m.length, used=0) for m in rams if m not in run]
    if flashes:
        fits.append(RegionFit(name=flashes[0].name, kind="flash", capacity=flashes[0].length, used=rep.flash_bytes,
                              complete=rep.code.bytes is not None))
    advice = []
    for f in fits:
        if f.fits is False:
            if f.kind == "ram":
                pt = rep.patch or {}
                if rep.input_type == "model" and rep.input_note:
                    hint = "the model input is float32: --input-type int8 takes it as int8 (a quarter the bytes)"
                elif not pt.get("grid"):
                    hint = ("patch-based inference found no split that lowers the peak within the MAC budget: "
                            "try --patch-max-overhead 0.2 or --patch-input stream" if pt.get("mode") != "off"
                            else "use patch-based inference (--patch auto)")
                elif pt.get("input") != "stream":
                    hint = ("patches are on with the input kept whole: --patch-input stream reads the input box "
                            "by box (your application supplies <name>_read_input())")
                else:
                    hint = "patches are on with a streamed input: try --patch-max-overhead 0.2"
                advice.append(f"SRAM over by {-f.margin:,} B: {hint}; or a smaller input resolution or width "
                              f"multiplier, or a board with more SRAM")
            else:
                advice.append(f"flash over by {-f.margin:,} B: prune or shrink the model, or a board with more flash")
    return fits, advice
