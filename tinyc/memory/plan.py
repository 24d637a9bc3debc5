"""Build the MemoryPlan: overlaps from the op modules, every registered allocator, the verifier
on each result, and the smallest arena kept, with its distance to the lower bound."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from tinyc.errors import BadInput
from tinyc.ir import Graph
from tinyc.memory.allocators import allocators
from tinyc.memory.lifetimes import Buffer, align_up, buffers
from tinyc.memory.overlap import Item, Overlap, find_overlaps, live_bytes_with_overlaps
from tinyc.memory.verify import verify
from tinyc.ops.base import KernelCall


@dataclass(frozen=True)
class MemoryPlan:
    """Offsets of every arena buffer, the arena size, and how far it is from the lower bound."""

    buffers: tuple[Buffer, ...]
    offsets: Mapping[str, int]
    arena_bytes: int
    lower_bound_bytes: int
    live_per_step: tuple[int, ...]
    strategy: str
    alignment: int
    overlaps: tuple[Overlap, ...] = ()
    candidates: Mapping[str, int] | None = None  # arena bytes of every strategy tried

    def offset(self, g: Graph, tensor: str) -> int:
        return self.offsets[g.storage(tensor)]

    @property
    def overhead(self) -> float:
        return self.arena_bytes / self.lower_bound_bytes - 1.0 if self.lower_bound_bytes else 0.0


def plan_memory(g: Graph, calls: Sequence[KernelCall], alignment: int = 4, strategy: str | None = None,
                overlap: bool = True) -> MemoryPlan:
    algos = allocators()
    if strategy is not None and strategy not in algos:
        raise BadInput(f"unknown planner strategy {strategy!r} (known: {', '.join(sorted(algos))})")
    bufs = buffers(g, calls)
    plain = [Item(((b, 0),)) for b in bufs]
    items, overlaps = find_overlaps(g, bufs, alignment) if overlap else (plain, [])
    live = live_bytes_with_overlaps(bufs, overlaps, items, len(g.ops), alignment)
    lower = max(live) if live else 0
    best: tuple[int, str, dict[str, int], list[Overlap]] | None = None
    tried: dict[str, int] = {}
    # Overlap groups are not rectangles, so greedy placement of them can lose to plain buffers:
    # try both and keep the smaller arena (overlaps never make the result worse).
    variants = [("", plain, [])] + ([("overlap+", items, overlaps)] if overlaps else [])
    for tag, its, ovs in variants:
        for name, algo in algos.items():
            if strategy is not None and name != strategy:
                continue
            offs = algo(its, alignment)
            verify(bufs, offs, alignment, ovs)
            size = max((offs[b.name] + b.size for b in bufs), default=0)
            size = align_up(size, alignment)
            tried[tag + name] = size
            if best is None or size < best[0]:
                best = (size, tag + name, offs, ovs)
            if size <= lower:
                break
    assert best is not None
    return MemoryPlan(buffers=tuple(bufs), offsets=best[2], arena_bytes=best[0], lower_bound_bytes=lower,
                      live_per_step=tuple(live), strategy=best[1], alignment=alignment, overlaps=tuple(best[3]),
                      candidates=tried)
