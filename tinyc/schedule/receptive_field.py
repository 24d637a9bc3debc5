"""Receptive fields along one axis: which input rows (or columns) each patch of each op needs.

Height and width are independent (every supported window is separable), so a grid of n x m
patches is two one-dimensional problems of n and m parts. For output span [lo, hi) of an op
with filter f, stride s, dilation d and leading padding p, the input it reads is
[lo*s - p, (hi-1)*s - p + (f-1)*d + 1); the part outside [0, size) is padding, and only a
patch that touches the border has any: exactly the unsplit op's padding there.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinyc.ir import Graph
from tinyc.schedule.stage import Stage

Span = tuple[int, int]  # half-open [lo, hi)


def split(size: int, parts: int) -> list[Span]:
    """`parts` contiguous spans covering [0, size), sizes differing by at most one (larger first)."""
    if not 1 <= parts <= size:
        raise ValueError(f"cannot split {size} rows into {parts} parts")
    base, extra = divmod(size, parts)
    spans, lo = [], 0
    for k in range(parts):
        hi = lo + base + (1 if k < extra else 0)
        spans.append((lo, hi))
        lo = hi
    return spans


@dataclass(frozen=True)
class Read:
    """The input span an op reads for one patch, clipped to the map, and the padding around it."""

    lo: int
    hi: int
    pad_before: int
    pad_after: int


def read_span(out: Span, filt: int, stride: int, dilation: int, pad_before: int, in_size: int) -> Read:
    start = out[0] * stride - pad_before
    end = (out[1] - 1) * stride - pad_before + (filt - 1) * dilation + 1
    lo, hi = max(0, start), min(in_size, end)
    if hi <= lo:
        raise ValueError(f"output span {out} reads only padding")
    return Read(lo, hi, lo - start, end - hi)


@dataclass(frozen=True)
class AxisPlan:
    """For every part: the span each stage tensor is computed over (the union of what its
    readers need) and the span each (op position, input slot) reads."""

    parts: tuple[Span, ...]
    need: dict[str, tuple[Span, ...]]
    reads: dict[tuple[int, int], tuple[Read, ...]]


def axis_plan(g: Graph, stage: Stage, axis: int, parts: list[Span]) -> AxisPlan:
    """axis 0: rows (NHWC dim 1), axis 1: columns (dim 2)."""
    dim = 1 + axis
    need: dict[str, list[Span]] = {stage.output: list(parts)}
    reads: dict[tuple[int, int], tuple[Read, ...]] = {}
    for pos in range(len(stage.ops) - 1, -1, -1):
        op, win = stage.ops[pos], stage.windows[pos]
        out_need = need.get(op.outputs[0])
        if out_need is None:
            raise ValueError(f"{op.label} in the stage does not feed the stage output")
        for slot, name in enumerate(op.inputs):
            if name is None or g.t(name).is_const:
                continue
            size = g.t(name).shape[dim]
            r = tuple(read_span(s, win.filter[axis], win.stride[axis], win.dilation[axis], win.pad_before[axis], size)
                      for s in out_need)
            reads[(pos, slot)] = r
            have = need.get(name)
            need[name] = [(x.lo, x.hi) for x in r] if have is None else \
                [(min(a[0], x.lo), max(a[1], x.hi)) for a, x in zip(have, r)]
    return AxisPlan(parts=tuple(parts), need={k: tuple(v) for k, v in need.items()}, reads=reads)
