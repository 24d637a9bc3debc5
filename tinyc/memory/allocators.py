"""Placement strategies, registered by name (ExecuTorch's register_algo).

A strategy only chooses the order in which buffers are placed; `Placer` does the placing: each
buffer goes to the lowest aligned offset where it shares no byte with a placed buffer live at
the same time, except where an overlap rule (overlap.py) lets it (TFLM's greedy planner, with
pairwise overlap distances). `plan.py` runs every strategy bottom-up and top-down, verifies
each result and keeps the smallest arena.

Top-down placement fills the arena from its end: the mirror image of bottom-up. It matters with
overlaps: a chain of ops whose outputs start a little below their inputs (expansion,
depthwise, projection) can only follow its rules downwards, which bottom-up placement from
offset 0 never allows.
"""

from __future__ import annotations

from typing import Callable, Sequence

from tinyc.memory.lifetimes import Buffer, align_up
from tinyc.memory.overlap import Overlap

Order = Callable[[Sequence[Buffer], Sequence[Overlap]], list[Buffer]]
Allocator = Callable[..., dict[str, int]]
_ORDERS: dict[str, Order] = {}


def register_allocator(name: str) -> Callable[[Order], Order]:
    def deco(fn: Order) -> Order:
        _ORDERS[name] = fn
        return fn

    return deco


def orders() -> dict[str, Order]:
    """Every registered strategy: name -> the placement order it picks."""
    return dict(_ORDERS)


def allocators() -> dict[str, Allocator]:
    """name -> fn(bufs, align, overlaps=(), top_down=False) returning each buffer's offset."""
    def make(order: Order) -> Allocator:
        def allocate(bufs: Sequence[Buffer], align: int, overlaps: Sequence[Overlap] = (),
                     top_down: bool = False) -> dict[str, int]:
            placer = Placer(bufs, align, overlaps, top_down)
            return placer.offsets(placer.indices(order(bufs, overlaps)))
        allocate.__doc__ = order.__doc__
        return allocate

    return {name: make(order) for name, order in _ORDERS.items()}


class Placer:
    """First-fit placement of buffers in a given order, with the time conflicts and overlap
    rules worked out once so that a search can try many orders cheaply.

    For a buffer i placed after a conflicting buffer j at offset o, the bases c with
    o + lo < c < o + hi are forbidden: (lo, hi) = (-size(i), size(j)) without a rule, the parts
    of it the rule forbids with one (two for an exact rule: all but c = o).
    """

    def __init__(self, bufs: Sequence[Buffer], align: int, overlaps: Sequence[Overlap] = (),
                 top_down: bool = False) -> None:
        self.bufs = list(bufs)
        self.align = align
        self.top_down = top_down
        self.index = {b.name: k for k, b in enumerate(self.bufs)}
        # Top-down: place the mirror image (offset' = A - offset - size, sizes padded so that
        # A - offset' - size stays aligned): delta = off(X) - off(Y) becomes
        # delta' = off'(X) - off'(Y) = size(Y) - size(X) - delta.
        size = [align_up(b.size, align) if top_down else b.size for b in self.bufs]
        self.size = size
        rule: dict[tuple[int, int], list[tuple[int, int]]] = {}  # (X, Y) -> forbidden deltas
        for o in overlaps:
            x, y = self.index[o.x], self.index[o.y]
            rule[(x, y)] = [(size[y] - size[x] - hi, size[y] - size[x] - lo) if top_down else (lo, hi)
                            for lo, hi in o.forbidden_all(size[x], size[y])]
        n = len(self.bufs)
        self.conflicts: list[list[tuple[int, int, int]]] = [[] for _ in range(n)]
        by_first = sorted(range(n), key=lambda k: self.bufs[k].first)
        for a_pos, i in enumerate(by_first):
            bi = self.bufs[i]
            for j in by_first[a_pos + 1:]:
                bj = self.bufs[j]
                if bj.first > bi.last:
                    break
                if not size[i] or not size[j]:
                    continue
                self._add(i, j, rule)
                self._add(j, i, rule)

    def _add(self, i: int, j: int, rule: dict[tuple[int, int], list[tuple[int, int]]]) -> None:
        """The forbidden intervals for i placed after j, relative to j's offset."""
        lo, hi = -self.size[i], self.size[j]
        spans = [(lo, hi)]
        if (j, i) in rule:  # j is X, i is Y: off(i) = off(j) - delta
            spans = [(max(lo, -dhi), min(hi, -dlo)) for dlo, dhi in rule[(j, i)]]
        elif (i, j) in rule:  # i is X, j is Y: off(i) = off(j) + delta
            spans = [(max(lo, dlo), min(hi, dhi)) for dlo, dhi in rule[(i, j)]]
        for a, b in spans:
            if a < b:
                self.conflicts[i].append((j, a, b))

    def indices(self, order: Sequence[Buffer]) -> list[int]:
        return [self.index[b.name] for b in order]

    def place(self, order: Sequence[int]) -> list[int]:
        """Offsets (in this placer's orientation) of every buffer, placed in `order`."""
        align = self.align
        off = [-1] * len(self.bufs)
        for i in order:
            forbidden = sorted((off[j] + lo, off[j] + hi) for j, lo, hi in self.conflicts[i] if off[j] >= 0)
            cand = 0
            for lo, hi in forbidden:
                if lo >= cand:
                    break  # sorted by lo: every later interval starts at or above cand too
                if cand < hi:
                    cand = align_up(hi, align)
            off[i] = cand
        return off

    def extent(self, off: Sequence[int]) -> int:
        return max((o + s for o, s in zip(off, self.size)), default=0)

    def offsets(self, order: Sequence[int]) -> dict[str, int]:
        """Real offsets of every buffer for a placement order."""
        off = self.place(order)
        if self.top_down:
            top = align_up(self.extent(off), self.align)
            off = [top - o - s for o, s in zip(off, self.size)]
        return {b.name: o for b, o in zip(self.bufs, off)}


@register_allocator("greedy_by_size")
def greedy_by_size(bufs: Sequence[Buffer], overlaps: Sequence[Overlap]) -> list[Buffer]:
    """Largest first (TFLM GreedyMemoryPlanner): big buffers claim low addresses early."""
    return sorted(bufs, key=lambda b: (-b.size, b.first, b.name))


@register_allocator("greedy_by_conflicts")
def greedy_by_conflicts(bufs: Sequence[Buffer], overlaps: Sequence[Overlap]) -> list[Buffer]:
    """Buffers that overlap the most bytes of others in time go first: they constrain the layout most."""
    def pressure(b: Buffer) -> int:
        return sum(o.size for o in bufs if o is not b and o.first <= b.last and b.first <= o.last)

    return sorted(bufs, key=lambda b: (-(pressure(b) + b.size), -b.size, b.name))


@register_allocator("by_first_use")
def by_first_use(bufs: Sequence[Buffer], overlaps: Sequence[Overlap]) -> list[Buffer]:
    """Lifetime-ordered best fit: in schedule order, the longest-lived first among equals."""
    return sorted(bufs, key=lambda b: (b.first, -(b.last - b.first), -b.size, b.name))


@register_allocator("by_lifetime")
def by_lifetime(bufs: Sequence[Buffer], overlaps: Sequence[Overlap]) -> list[Buffer]:
    """Longest-lived first: long-lived tensors (skips, model I/O) sit at the bottom, out of the way."""
    return sorted(bufs, key=lambda b: (-(b.last - b.first), -b.size, b.name))
