"""Placement strategies, registered by name (ExecuTorch's register_algo).

Each maps items (a buffer, or buffers merged by an overlap with fixed relative offsets) to
base offsets; `plan.py` runs them all, verifies each result and keeps the smallest arena.
"""

from __future__ import annotations

from typing import Callable, Sequence

from tinyc.memory.lifetimes import align_up
from tinyc.memory.overlap import Item

Allocator = Callable[[Sequence[Item], int], dict[str, int]]
_ALGOS: dict[str, Allocator] = {}


def register_allocator(name: str) -> Callable[[Allocator], Allocator]:
    def deco(fn: Allocator) -> Allocator:
        _ALGOS[name] = fn
        return fn

    return deco


def allocators() -> dict[str, Allocator]:
    return dict(_ALGOS)


def place_in_order(order: Sequence[Item], align: int) -> dict[str, int]:
    """Put each item at the lowest aligned base where none of its members overlaps a placed
    buffer live at the same time (TFLM's greedy planner, the order left to the caller).
    Returns the offset of every buffer."""
    placed: list[tuple[int, int, int, int]] = []  # (first, last, offset, size) of placed buffers
    offsets: dict[str, int] = {}
    for item in order:
        forbidden: list[tuple[int, int]] = []  # base c is forbidden when lo < c < hi
        for b, r in item.members:
            for first, last, off, size in placed:
                if first <= b.last and b.first <= last and size and b.size:
                    forbidden.append((off - r - b.size, off + size - r))
        forbidden.sort()
        cand = 0
        moved = True
        while moved:
            moved = False
            for lo, hi in forbidden:
                if lo < cand < hi:
                    cand = align_up(hi, align)
                    moved = True
        for b, r in item.members:
            offsets[b.name] = cand + r
            placed.append((b.first, b.last, cand + r, b.size))
    return offsets


@register_allocator("greedy_by_size")
def greedy_by_size(items: Sequence[Item], align: int) -> dict[str, int]:
    """Largest first (TFLM GreedyMemoryPlanner): big buffers claim low addresses early."""
    return place_in_order(sorted(items, key=lambda it: (-it.size, it.first, it.name)), align)


@register_allocator("greedy_by_conflicts")
def greedy_by_conflicts(items: Sequence[Item], align: int) -> dict[str, int]:
    """Items that overlap the most bytes of others in time go first: they constrain the layout most."""
    def pressure(it: Item) -> int:
        return sum(o.size for o in items if o is not it and o.first <= it.last and it.first <= o.last)

    return place_in_order(sorted(items, key=lambda it: (-(pressure(it) + it.size), -it.size, it.name)), align)


@register_allocator("by_first_use")
def by_first_use(items: Sequence[Item], align: int) -> dict[str, int]:
    """Lifetime-ordered best fit: in schedule order, the longest-lived first among equals."""
    return place_in_order(sorted(items, key=lambda it: (it.first, -(it.last - it.first), -it.size, it.name)), align)


@register_allocator("by_lifetime")
def by_lifetime(items: Sequence[Item], align: int) -> dict[str, int]:
    """Longest-lived first: long-lived tensors (skips, model I/O) sit at the bottom, out of the way."""
    return place_in_order(sorted(items, key=lambda it: (-(it.last - it.first), -it.size, it.name)), align)
