"""Build the MemoryPlan: run every registered allocator, verify each, keep the smallest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from tinyc.ir import Graph
from tinyc.memory.allocators import allocators
from tinyc.memory.lifetimes import Buffer, buffers, live_bytes_per_step
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

    def offset(self, g: Graph, tensor: str) -> int:
        return self.offsets[g.storage(tensor)]

    @property
    def overhead(self) -> float:
        return self.arena_bytes / self.lower_bound_bytes - 1.0 if self.lower_bound_bytes else 0.0


def plan_memory(g: Graph, calls: Sequence[KernelCall], alignment: int = 4,
                strategy: str | None = None) -> MemoryPlan:
    bufs = buffers(g, calls)
    live = live_bytes_per_step(bufs, len(g.ops), alignment)
    lower = max(live) if live else 0
    best: tuple[int, str, dict[str, int]] | None = None
    for name, algo in allocators().items():
        if strategy is not None and name != strategy:
            continue
        offs = algo(bufs, alignment)
        verify(bufs, offs, alignment)
        size = max((offs[b.name] + b.size for b in bufs), default=0)
        size = (size + alignment - 1) // alignment * alignment
        if best is None or size < best[0]:
            best = (size, name, offs)
        if size <= lower:
            break
    assert best is not None, f"unknown allocator {strategy}"
    return MemoryPlan(buffers=tuple(bufs), offsets=best[2], arena_bytes=best[0], lower_bound_bytes=lower,
                      live_per_step=tuple(live), strategy=best[1], alignment=alignment)
