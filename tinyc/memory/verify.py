"""The always-on overlap check: no two buffers live at the same step may share a byte, except
the overlapped pairs an op module proved safe, and only at their proven distances.

Written from the kernels' contract, not from the allocators' interval arithmetic: with
delta = offset(X) - offset(Y), an ascending kernel is safe when delta >= distance; a memmove-like
kernel (rule.above set) runs ascending when Y starts at or below X (delta >= 0) and descending
when Y starts above X, where it is safe when -delta >= above. An in-place (exact) rule is safe
only at delta == 0.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from tinyc.errors import InternalError
from tinyc.ir import Graph
from tinyc.memory.lifetimes import Buffer
from tinyc.memory.overlap import Overlap


def _safe(rule: Overlap, delta: int) -> bool:
    if rule.exact:  # an in-place kernel: output and input start at the same byte
        return delta == 0
    if rule.above is None:
        return delta >= rule.distance
    if delta >= 0:
        return delta >= rule.distance
    return -delta >= rule.above


def verify(bufs: Sequence[Buffer], offsets: Mapping[str, int], align: int,
           overlaps: Sequence[Overlap] = ()) -> None:
    allowed = {(o.x, o.y): o for o in overlaps}
    events = sorted(bufs, key=lambda b: b.first)
    for i, a in enumerate(events):
        oa = offsets[a.name]
        if oa % align or oa < 0:
            raise InternalError(f"buffer {a.name} at offset {oa} breaks {align}-byte alignment or is negative")
        for b in events[i + 1:]:
            if b.first > a.last:
                break
            ob = offsets[b.name]
            if not (oa < ob + b.size and ob < oa + a.size and a.size and b.size):
                continue
            rule = allowed.get((a.name, b.name)) or allowed.get((b.name, a.name))
            if rule is not None:
                x, y = (oa, ob) if rule.x == a.name else (ob, oa)
                bx, by = (a, b) if rule.x == a.name else (b, a)
                # X dies and Y is born at the rule's step: they share no other step.
                if bx.last == rule.step == by.first and _safe(rule, x - y):
                    continue
            raise InternalError(f"memory plan overlap: {a.name} [{oa}, {oa + a.size}) steps "
                                f"{a.first}-{a.last} and {b.name} [{ob}, {ob + b.size}) steps {b.first}-{b.last}")


def verify_slices(g: Graph, bufs: Sequence[Buffer]) -> None:
    """Slices (CONCATENATION in place) checked from the graph alone, apart from lifetimes.py:
    every tensor an op writes into a buffer lies inside it, no two of them share a byte, and
    the buffer is live at every step that writes or reads one of its slices."""
    by_name = {b.name: b for b in bufs}
    written: dict[str, list[tuple[int, int, str]]] = {}
    for step, op in enumerate(g.ops):
        for name in [i for i in op.inputs if i is not None] + list(op.outputs):
            if g.t(name).is_const or not g.is_slice(name):
                continue
            s = g.storage(name)
            lo = g.offset_in_storage(name)
            b = by_name.get(s)
            if b is None or not 0 <= lo <= lo + g.t(name).nbytes <= b.size:
                raise InternalError(f"slice {name} [{lo}, {lo + g.t(name).nbytes}) is outside its buffer {s}")
            if not b.first <= step <= b.last:
                raise InternalError(f"slice {name} is used at step {step}, buffer {s} lives "
                                    f"steps {b.first}-{b.last}")
            if name in op.outputs:
                written.setdefault(s, []).append((lo, lo + g.t(name).nbytes, name))
    for s, spans in written.items():
        spans.sort()
        for (_, end, p), (start, _, q) in zip(spans, spans[1:]):
            if start < end:
                raise InternalError(f"slices {p} and {q} of buffer {s} share bytes")
