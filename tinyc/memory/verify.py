"""The always-on overlap check: no two buffers live at the same step may share a byte, except
the overlapped pairs an op module proved safe, and only at their proven distance."""

from __future__ import annotations

from typing import Mapping, Sequence

from tinyc.errors import InternalError
from tinyc.memory.lifetimes import Buffer
from tinyc.memory.overlap import Overlap


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
                both_at_step = a.first <= rule.step <= a.last and b.first <= rule.step <= b.last
                if x - y >= rule.distance and both_at_step and min(a.last, b.last) == rule.step == max(a.first, b.first):
                    continue
            raise InternalError(f"memory plan overlap: {a.name} [{oa}, {oa + a.size}) steps "
                                f"{a.first}-{a.last} and {b.name} [{ob}, {ob + b.size}) steps {b.first}-{b.last}")
