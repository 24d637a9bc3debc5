"""Local search over placement orders (Vela's hill-climb allocator, with overlap rules).

A placement order fully determines a first-fit placement (allocators.Placer). Starting from the
best greedy order, each step moves one buffer that sets the arena top (the "bottleneck"), or a
buffer live at the same time as it, to an earlier position in the order, and keeps the new
order when the arena does not grow:

    address ^        +---+   <- bottleneck: placed late, it found room only at the top
            | +----+ | b |
            | | a  | +---+          move b before a: b takes the low spot, a goes on top
            | +----+----------+     of something shorter-lived
            +---------------------> step

Deterministic: a fixed seed and a fixed number of steps; the time budget only cuts the search
short on a slow machine. It stops as soon as the arena reaches the lower bound, or after
PATIENCE steps without a gain.
"""

from __future__ import annotations

import random
import time
from typing import Sequence

from tinyc.memory.allocators import Placer
from tinyc.memory.lifetimes import align_up

#: search steps per second of budget (a step is one first-fit placement of every buffer)
STEPS_PER_SECOND = 400
#: steps without a strictly smaller arena after which the search gives up (the bound may be
#: out of reach: it ignores how the op order chains the overlaps)
PATIENCE = 200


def improve(placer: Placer, order: Sequence[int], lower: int, seconds: float, seed: int = 0) -> tuple[int, list[int]]:
    """The smallest arena found (in the placer's sizes) and the order that gives it."""
    align = placer.align
    rng = random.Random(seed)
    best = list(order)
    best_off = placer.place(best)
    best_size = align_up(placer.extent(best_off), align)
    deadline = time.monotonic() + seconds
    steps = max(1, int(seconds * STEPS_PER_SECOND))
    bufs = placer.bufs
    n = len(best)
    if n < 2:
        return best_size, best
    pos_of = {b: k for k, b in enumerate(best)}
    last_gain = 0
    for step in range(steps):
        if best_size <= lower or step - last_gain > PATIENCE or (step & 15 == 0 and time.monotonic() > deadline):
            break
        top = [i for i in range(n) if best_off[i] + placer.size[i] >= best_size - align + 1 and placer.size[i]]
        b = rng.choice(top)
        # The bottleneck itself, or a buffer live while it is (they compete for its spot).
        if rng.random() < 0.5:
            near = [j for j, _, _ in placer.conflicts[b]]
            if near:
                b = rng.choice(near)
        p = pos_of[b]
        if p == 0:
            continue
        q = rng.randrange(0, p)
        cand = best[:q] + [b] + best[q:p] + best[p + 1:]
        off = placer.place(cand)
        size = align_up(placer.extent(off), align)
        if size <= best_size:
            if size < best_size:
                last_gain = step
            best, best_off, best_size = cand, off, size
            pos_of = {x: k for k, x in enumerate(best)}
    return best_size, best
