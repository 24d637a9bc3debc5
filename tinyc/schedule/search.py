"""Choose the split point and grid: the smallest peak within a MAC-overhead budget.

Every (stage, grid) candidate is first scored with a closed-form estimate (per patch, the
bytes live at each stage op: the whole model input, the whole stage output, and the patch
tensors alive at that op; after the stage, the unsplit plan's live bytes), which is cheap
because rows and columns are independent. The best few are then unrolled and planned for
real by the memory planner, and the smallest arena wins (ties: fewer MACs). The unsplit
schedule is always a candidate, so patch mode never raises the peak.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from tinyc.errors import BadInput
from tinyc.ir import Graph
from tinyc.schedule.receptive_field import AxisPlan, axis_plan, split
from tinyc.schedule.rewrite import Patched, patch_graph, streamable
from tinyc.schedule.stage import Stage, stages

MAX_PARTS = 8
REAL_PLANS = 4  # candidates planned for real after the estimate
# A patch loop adds a stack frame (the patch function) that the arena figure does not show:
# auto mode wants at least this much arena saved, so the peak SRAM can only go down.
MIN_SAVING = 64


@dataclass(frozen=True)
class Candidate:
    split: int  # schedule index of the op whose output ends the stage
    layer: int  # that op's index in the model (the report's "#", and --patch NxM@LAYER)
    split_label: str
    grid: tuple[int, int]
    estimate_bytes: int
    macs: int  # MACs of the whole model with this plan
    mac_overhead: float
    arena_bytes: int | None = None  # after real planning


@dataclass(frozen=True)
class PatchRequest:
    """--patch: "off", "auto" or "NxM@LAYER" (LAYER: the model op index of the split op, the "#"
    column of `tinyc report`)."""

    mode: str = "auto"
    grid: tuple[int, int] | None = None
    split: int | None = None
    max_overhead: float = 0.10
    stream: bool = False  # --patch-input stream: the stage's model inputs are read per patch

    @staticmethod
    def parse(text: str, max_overhead: float = 0.10, patch_input: str = "whole") -> "PatchRequest":
        if not 0 <= max_overhead:
            raise BadInput(f"--patch-max-overhead must be >= 0, got {max_overhead}")
        if patch_input not in ("whole", "stream"):
            raise BadInput(f"--patch-input {patch_input!r}: expected whole or stream")
        stream = patch_input == "stream"
        t = text.strip().lower()
        if t in ("off", "auto"):
            if t == "off" and stream:
                raise BadInput("--patch-input stream needs patch-based inference (--patch auto or NxM@LAYER)")
            return PatchRequest(mode=t, max_overhead=max_overhead, stream=stream)
        mt = re.fullmatch(r"(\d+)x(\d+)@(\d+)", t)
        if not mt:
            raise BadInput(f"--patch {text!r}: expected off, auto or NxM@LAYER (e.g. 4x4@7, LAYER being "
                           "the layer index tinyc report shows for the op that ends the patch stage)")
        n, m, s = (int(v) for v in mt.groups())
        if not (1 <= n <= 64 and 1 <= m <= 64):
            raise BadInput(f"--patch {text!r}: grid sizes must be between 1 and 64")
        return PatchRequest(mode="fixed", grid=(n, m), split=s, max_overhead=max_overhead, stream=stream)


@dataclass(frozen=True)
class Outcome:
    chosen: Candidate | None
    patched: Patched | None
    unpatched_arena_bytes: int
    alternatives: tuple[Candidate, ...] = field(default_factory=tuple)
    mode: str = "auto"  # the request: auto, off or fixed


def _lens(spans: Sequence[tuple[int, int]]) -> np.ndarray:
    return np.array([b - a for a, b in spans], dtype=np.int64)


@dataclass(frozen=True)
class _Axis:
    """One axis plan reduced to what the estimate needs: span lengths and crop flags as arrays."""

    plan: AxisPlan
    need: dict[str, np.ndarray]  # tensor -> length of the span computed, per part
    reads: dict[tuple[int, int], np.ndarray]  # (pos, slot) -> length read, per part
    crops: dict[tuple[int, int], np.ndarray]  # (pos, slot) -> True where the read needs its own copy


def _axis(g: Graph, stage: Stage, plan: AxisPlan, axis: int, streamed: set[str]) -> _Axis:
    dim = 1 + axis
    need = {t: _lens(v) for t, v in plan.need.items()}
    reads, crops = {}, {}
    for (pos, slot), rr in plan.reads.items():
        name = stage.ops[pos].inputs[slot]
        assert name is not None
        have = [(0, g.t(name).shape[dim])] * len(rr) if name in stage.inputs else list(plan.need[name])
        reads[(pos, slot)] = _lens([(x.lo, x.hi) for x in rr])
        crops[(pos, slot)] = np.array([name in streamed or (x.lo, x.hi) != h for x, h in zip(rr, have)])
    return _Axis(plan, need, reads, crops)


def estimate(g: Graph, stage: Stage, rows: _Axis, cols: _Axis, rest_peak: int, fixed: int) -> int:
    """Peak bytes: the fixed part (whole inputs, the stage output) plus, per patch, the patch
    tensors alive at each stage op; after the stage, the unsplit plan's live bytes."""
    last_reader: dict[str, int] = {stage.output: len(stage.ops) - 1}
    for pos, op in enumerate(stage.ops):
        for name in op.inputs:
            if name is not None:
                last_reader[name] = pos
    per_pos = np.zeros((len(stage.ops), len(rows.plan.parts), len(cols.plan.parts)), dtype=np.int64)
    for pos, op in enumerate(stage.ops):
        t = g.t(op.outputs[0])
        out = op.outputs[0]
        per_pos[pos:last_reader.get(out, pos) + 1] += np.outer(rows.need[out], cols.need[out]) * (t.nbytes // t.shape[1]
                                                                                                // t.shape[2])
        for slot, name in enumerate(op.inputs):
            if name is None or (pos, slot) not in rows.reads:
                continue
            mask = np.logical_or.outer(rows.crops[(pos, slot)], cols.crops[(pos, slot)])
            if mask.any():
                src = g.t(name)
                px = src.nbytes // src.shape[1] // src.shape[2]
                per_pos[pos] += np.where(mask, np.outer(rows.reads[(pos, slot)], cols.reads[(pos, slot)]) * px, 0)
    return max(int(per_pos.max()) + fixed, rest_peak)


def stage_macs(g: Graph, stage: Stage, rows: _Axis, cols: _Axis, macs: Sequence[int]) -> int:
    """MACs of the stage run patch by patch (halos recomputed)."""
    total = 0
    for pos, op in enumerate(stage.ops):
        _, oh, ow, _ = g.t(op.outputs[0]).shape
        out = op.outputs[0]
        total += (macs[pos] // (oh * ow)) * int(rows.need[out].sum()) * int(cols.need[out].sum())
    return total


def search(g: Graph, macs: Sequence[int], live_per_step: Sequence[int], unpatched_arena: int,
           request: PatchRequest, plan_arena: Callable[[Graph], int]) -> Outcome:
    """Pick the plan; `plan_arena(graph)` runs the real planner on an unrolled candidate."""
    if request.mode == "off":
        return Outcome(None, None, unpatched_arena, mode="off")
    total = max(int(sum(macs)), 1)
    cands: list[Candidate] = []
    found = stages(g)
    if request.mode == "fixed":
        st = next((s for s in found if s.ops[-1].index == request.split), None)
        if st is None:
            valid = ", ".join(str(s.ops[-1].index) for s in found) or "none"
            raise BadInput(f"--patch {request.grid[0]}x{request.grid[1]}@{request.split}: layer {request.split} "
                           f"cannot end a patch stage (valid split layers for this model: {valid})")
        _, h, w, _ = g.t(st.output).shape
        if request.grid[0] > h or request.grid[1] > w:
            raise BadInput(f"--patch {request.grid[0]}x{request.grid[1]}@{request.split}: layer {request.split}'s "
                           f"output is only {h}x{w}")
        found, grids = [st], [request.grid]
    best_bound = unpatched_arena
    for st in found:
        rest = max(live_per_step[st.split + 1:], default=0)
        streamed = streamable(g, st) if request.stream else set()
        fixed = sum(g.t(x).nbytes for x in st.inputs if x not in streamed) + g.t(st.output).nbytes
        if request.mode == "auto" and max(rest, fixed) >= best_bound:
            continue
        _, h, w, _ = g.t(st.output).shape
        if request.mode == "auto":
            grids = [(a, b) for a in range(1, min(MAX_PARTS, h) + 1) for b in range(1, min(MAX_PARTS, w) + 1)
                     if a * b > 1]
        orig = sum(macs[:st.split + 1])
        axes: dict[tuple[int, int], _Axis | None] = {}

        def axis(a: int, parts: int) -> _Axis | None:
            if (a, parts) not in axes:
                try:
                    plan = axis_plan(g, st, a, split(g.t(st.output).shape[1 + a], parts))
                    axes[(a, parts)] = _axis(g, st, plan, a, streamed)
                except ValueError:
                    axes[(a, parts)] = None  # a patch would read only padding: not a useful split
            return axes[(a, parts)]

        for grid in grids:
            rows, cols = axis(0, grid[0]), axis(1, grid[1])
            if rows is None or cols is None:
                continue
            sm = stage_macs(g, st, rows, cols, macs)
            over = (sm - orig) / total
            if request.mode == "auto" and over > request.max_overhead:
                continue
            est = estimate(g, st, rows, cols, rest, fixed)
            cands.append(Candidate(split=st.split, layer=st.ops[-1].index, split_label=st.ops[-1].label, grid=grid,
                                   estimate_bytes=est, macs=total - orig + sm, mac_overhead=over))
            if request.mode == "auto":
                best_bound = min(best_bound, est)
    if request.mode == "fixed" and not cands:
        raise BadInput(f"--patch {request.grid[0]}x{request.grid[1]}@{request.split}: with this grid some patch "
                       "would read only padding; use fewer patches")
    cands.sort(key=lambda c: (c.estimate_bytes, c.macs))
    real: list[tuple[Candidate, Patched]] = []
    for c in cands[:REAL_PLANS]:
        st = next(s for s in found if s.split == c.split)
        p = patch_graph(g, st, c.grid, stream=request.stream)
        real.append((Candidate(**{**c.__dict__, "arena_bytes": plan_arena(p.graph)}), p))
    real.sort(key=lambda cp: (cp[0].arena_bytes, cp[0].macs))
    alternatives = tuple(c for c, _ in real[1:]) + tuple(cands[REAL_PLANS:REAL_PLANS + 3])
    if real and (request.mode == "fixed" or real[0][0].arena_bytes <= unpatched_arena - MIN_SAVING):
        return Outcome(real[0][0], real[0][1], unpatched_arena, alternatives, mode=request.mode)
    return Outcome(None, None, unpatched_arena, tuple(c for c, _ in real[:3]), mode=request.mode)
