"""Build the MemoryPlan: overlap rules from the op modules, every registered allocator bottom-up
and top-down, a local search from the best of them under a time budget, the verifier on the
result, and the arena kept with its distance to the lower bound."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from tinyc.errors import BadInput
from tinyc.ir import Graph
from tinyc.memory.allocators import Placer, orders
from tinyc.memory.lifetimes import Buffer, align_up, buffers
from tinyc.memory.overlap import Overlap, find_overlaps, live_bytes_with_overlaps, used_overlaps
from tinyc.memory.search import improve
from tinyc.memory.verify import verify, verify_slices
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
    overlaps: tuple[Overlap, ...] = ()  # the overlap rules this placement relies on
    candidates: Mapping[str, int] | None = None  # arena bytes of every strategy tried

    def offset(self, g: Graph, tensor: str) -> int:
        """Where `tensor` starts in the arena: its storage buffer's offset, plus its place in
        that buffer when it is a slice (CONCATENATION in place)."""
        return self.offsets[g.storage(tensor)] + g.offset_in_storage(tensor)

    @property
    def overhead(self) -> float:
        return self.arena_bytes / self.lower_bound_bytes - 1.0 if self.lower_bound_bytes else 0.0


def plan_memory(g: Graph, calls: Sequence[KernelCall], alignment: int = 4, strategy: str | None = None,
                overlap: bool = True, search_seconds: float = 2.0) -> MemoryPlan:
    """Plan the arena of `g` run in its op order with the kernel calls `calls`.

    strategy: one registered allocator (bottom-up and top-down, with and without overlaps),
    no search; None: all of them, then the local search. search_seconds: the search's time
    budget (0: none); it stops as soon as the arena reaches the lower bound.
    """
    bufs = buffers(g, calls)
    rules = find_overlaps(g, bufs, alignment) if overlap else []
    verify_slices(g, bufs)
    return plan_buffers(bufs, rules, len(g.ops), alignment, strategy, search_seconds)


def plan_buffers(bufs: Sequence[Buffer], rules: Sequence[Overlap], steps: int, alignment: int = 4,
                 strategy: str | None = None, search_seconds: float = 2.0) -> MemoryPlan:
    """plan_memory on buffers and overlap rules already worked out (steps: the op count)."""
    algos = orders()
    if strategy is not None and strategy not in algos:
        raise BadInput(f"unknown planner strategy {strategy!r} (known: {', '.join(sorted(algos))})")
    bufs = list(bufs)
    live = live_bytes_with_overlaps(bufs, rules, steps, alignment)
    lower = max(live) if live else 0
    tried: dict[str, int] = {}
    best: tuple[int, str, Placer, list[int]] | None = None
    # Overlap rules help chains but can cost elsewhere (a rule can pull a buffer into a spot
    # that blocks a later, bigger one): try plain placements too and keep the smaller arena.
    variants = [("", [])] + ([("overlap+", list(rules))] if rules else [])
    for tag, ovs in variants:
        for top_down in (False, True):
            placer = Placer(bufs, alignment, ovs, top_down)
            for name, order in algos.items():
                if strategy is not None and name != strategy:
                    continue
                idx = placer.indices(order(bufs, ovs))
                size = align_up(placer.extent(placer.place(idx)), alignment)
                label = tag + ("top-down+" if top_down else "") + name
                tried[label] = size
                if best is None or size < best[0]:
                    best = (size, label, placer, idx)
                if best[0] <= lower:
                    break
            if best is not None and best[0] <= lower:
                break
        if best is not None and best[0] <= lower:
            break
    assert best is not None
    size, label, placer, idx = best
    if strategy is None and search_seconds > 0 and size > lower:
        found = improve(placer, idx, lower, search_seconds)
        if found[0] < size:
            size, idx = found
            label = "search+" + label
            tried[label] = size
    offs = placer.offsets(idx)
    used = used_overlaps(bufs, offs, rules)
    verify(bufs, offs, alignment, used)
    arena = align_up(max((offs[b.name] + b.size for b in bufs), default=0), alignment)
    return MemoryPlan(buffers=tuple(bufs), offsets=offs, arena_bytes=arena, lower_bound_bytes=lower,
                      live_per_step=tuple(live), strategy=label, alignment=alignment, overlaps=tuple(used),
                      candidates=tried)
