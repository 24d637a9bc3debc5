"""Live ranges of every arena buffer over the op order: computed apart from placement (Vela's
live_range.py), so the allocators see only (size, first, last)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from tinyc.ir import Graph
from tinyc.ops.base import KernelCall


@dataclass(frozen=True)
class Buffer:
    """An arena buffer live from step `first` to step `last` inclusive.

    Step s is the s-th op of the schedule; graph inputs are live from step 0, graph outputs
    until step len(ops) (after invoke returns, until the caller reads them).
    """

    name: str
    size: int
    first: int
    last: int

    def overlaps_in_time(self, other: "Buffer") -> bool:
        return self.first <= other.last and other.first <= self.last


def scratch_name(step: int, k: int) -> str:
    return f"scratch{step}_{k}"


def buffers(g: Graph, calls: Sequence[KernelCall]) -> list[Buffer]:
    """One Buffer per storage tensor in the arena plus one per kernel scratch request.

    Views and slices count as their storage: a CONCATENATION output written in place lives
    from its first producer on (passes/concat_inplace)."""
    n = len(g.ops)
    first: dict[str, int] = {}
    last: dict[str, int] = {}

    def touch(name: str, step: int) -> None:
        s = g.storage(name)
        if g.t(s).is_const:
            return
        first[s] = min(first.get(s, step), step)
        last[s] = max(last.get(s, step), step)

    for name in g.inputs:
        if name not in g.streamed:
            touch(name, 0)
    for step, op in enumerate(g.ops):
        for name in op.inputs:
            if name is not None:
                touch(name, step)
        for name in op.outputs:
            touch(name, step)
    for name in g.outputs:
        touch(name, n)
    out = [Buffer(name=s, size=g.t(s).nbytes, first=first[s], last=last[s]) for s in first]
    for step, call in enumerate(calls):
        for k, a in enumerate(x for x in call.args if x.kind == "scratch"):
            if a.nbytes > 0:
                out.append(Buffer(name=scratch_name(step, k), size=a.nbytes, first=step, last=step))
    return out


def live_bytes_per_step(bufs: Sequence[Buffer], steps: int, align: int = 1) -> list[int]:
    """Bytes live at each step (aligned sizes); the maximum is the planner's lower bound."""
    live = [0] * (steps + 1)
    for b in bufs:
        sz = align_up(b.size, align)
        for s in range(b.first, b.last + 1):
            live[s] += sz
    return live


def align_up(v: int, a: int) -> int:
    """The smallest multiple of a that is >= v (v may be negative)."""
    return -((-v) // a) * a
