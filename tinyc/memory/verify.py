"""The always-on overlap check: no two buffers live at the same step may share a byte."""

from __future__ import annotations

from typing import Mapping, Sequence

from tinyc.errors import InternalError
from tinyc.memory.lifetimes import Buffer


def verify(bufs: Sequence[Buffer], offsets: Mapping[str, int], align: int) -> None:
    events = sorted(bufs, key=lambda b: b.first)
    for i, a in enumerate(events):
        oa = offsets[a.name]
        if oa % align:
            raise InternalError(f"buffer {a.name} at offset {oa} breaks {align}-byte alignment")
        for b in events[i + 1:]:
            if b.first > a.last:
                break
            ob = offsets[b.name]
            if oa < ob + b.size and ob < oa + a.size and a.size and b.size:
                raise InternalError(f"memory plan overlap: {a.name} [{oa}, {oa + a.size}) steps "
                                    f"{a.first}-{a.last} and {b.name} [{ob}, {ob + b.size}) steps {b.first}-{b.last}")
