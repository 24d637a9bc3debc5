"""Placement strategies, registered by name (ExecuTorch's register_algo): each maps buffers to
offsets; `plan.py` runs them all, verifies each result and keeps the smallest arena."""

from __future__ import annotations

from typing import Callable, Sequence

from tinyc.memory.lifetimes import Buffer

Allocator = Callable[[Sequence[Buffer], int], dict[str, int]]
_ALGOS: dict[str, Allocator] = {}


def register_allocator(name: str) -> Callable[[Allocator], Allocator]:
    def deco(fn: Allocator) -> Allocator:
        _ALGOS[name] = fn
        return fn

    return deco


def allocators() -> dict[str, Allocator]:
    return dict(_ALGOS)


def _align(v: int, a: int) -> int:
    return (v + a - 1) // a * a


def place_in_order(order: Sequence[Buffer], align: int) -> dict[str, int]:
    """Put each buffer at the lowest aligned offset where it overlaps no placed buffer that is
    live at the same time (TFLM's greedy planner, with the order left to the caller)."""
    placed: list[tuple[Buffer, int]] = []
    offsets: dict[str, int] = {}
    for b in order:
        conflicts = sorted((off, off + p.size) for p, off in placed if p.overlaps_in_time(b))
        cand = 0
        for lo, hi in conflicts:
            if cand + b.size <= lo:
                break
            cand = max(cand, _align(hi, align))
        offsets[b.name] = cand
        placed.append((b, cand))
    return offsets


@register_allocator("greedy_by_size")
def greedy_by_size(bufs: Sequence[Buffer], align: int) -> dict[str, int]:
    """Largest first (TFLM GreedyMemoryPlanner): big buffers claim low addresses early."""
    return place_in_order(sorted(bufs, key=lambda b: (-b.size, b.first, b.name)), align)


@register_allocator("greedy_by_conflicts")
def greedy_by_conflicts(bufs: Sequence[Buffer], align: int) -> dict[str, int]:
    """Buffers that overlap the most bytes of others go first: they constrain the layout most."""
    def pressure(b: Buffer) -> int:
        return sum(o.size for o in bufs if o is not b and o.overlaps_in_time(b))

    return place_in_order(sorted(bufs, key=lambda b: (-(pressure(b) + b.size), -b.size, b.name)), align)


@register_allocator("by_first_use")
def by_first_use(bufs: Sequence[Buffer], align: int) -> dict[str, int]:
    """Lifetime-ordered best fit: in schedule order, longest-lived first among equals."""
    return place_in_order(sorted(bufs, key=lambda b: (b.first, -(b.last - b.first), -b.size, b.name)), align)
