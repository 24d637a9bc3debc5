"""Overlapped buffers: let an op write its output over a dying input, at a proven distance.

    before:  [ input X ........ ][ output Y ............. ]      X + Y bytes
    after:   [ output Y ............. ]                           Y + lag bytes
                    [ input X ........ ]
                    ^ X starts D bytes above Y, D from the op's OverlapSpec

The op module proves D from its kernel's access order (OverlapSpec.min_distance); this module
only lists the pairs the ops allow, as pairwise rules "offset(X) - offset(Y) >= D at step s".
The allocators decide, pair by pair, whether to use a rule: a chain of ops (expand, depthwise,
project, ...) may drift across the arena or be cut wherever a plain placement is lower.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from tinyc.ir import Graph
from tinyc.memory.lifetimes import Buffer, align_up, live_bytes_per_step
from tinyc.ops.registry import lookup


@dataclass(frozen=True)
class Overlap:
    """Y may share bytes with X at `step` (X dies and Y is born there), at these distances.

    With delta = offset(X) - offset(Y): Y may start at or below X when delta >= distance (the
    kernel writes in ascending order). When `above` is set the kernel is memmove-like and writes
    in descending order when Y starts above X: then Y may also start above X when
    -delta >= above. Any placement where X and Y share no byte is allowed too.
    """

    x: str
    y: str
    distance: int
    step: int
    above: int | None = None

    def allows(self, delta: int) -> bool:
        """Whether Y may start `delta` bytes below X (X and Y sharing bytes)."""
        if self.above is None:
            return delta >= self.distance
        return delta >= max(self.distance, 0) or -delta >= self.above

    def forbidden(self, size_x: int, size_y: int) -> tuple[int, int]:
        """The deltas this rule forbids: the open interval (lo, hi), empty when lo >= hi.
        Without the rule it would be (-size_x, size_y): every delta where X and Y share a byte."""
        if self.above is None:
            return -size_x, min(size_y, self.distance)
        return max(-size_x, -self.above), min(size_y, max(self.distance, 0))


def find_overlaps(g: Graph, bufs: Sequence[Buffer], align: int) -> list[Overlap]:
    """Every overlap an op module proves safe and that can save bytes: at most one per op,
    between its output and an input whose lifetime ends at that op. The model's input is no
    exception: like every buffer, its bytes are free once its last reader has run (invoke does
    not promise to leave it intact; the caller writes it again before each invoke). Ops
    reading or writing a slice (CONCATENATION in place) get no rule."""
    by_name = {b.name: b for b in bufs}
    overlaps: list[Overlap] = []
    for step, op in enumerate(g.ops):
        mod = lookup(op.kind)
        spec = mod.overlap(op, g) if mod is not None else None
        if spec is None or not op.outputs or spec.input_index >= len(op.inputs):
            continue
        xin = op.inputs[spec.input_index]
        if xin is None or g.t(xin).is_const:
            continue
        if g.is_slice(xin) or g.is_slice(op.outputs[0]):
            continue  # the rule's distance is between whole buffers; a slice starts inside one
        x, y = g.storage(xin), g.storage(op.outputs[0])
        if x == y or x not in by_name or y not in by_name:
            continue
        bx, by = by_name[x], by_name[y]
        if bx.last != step or by.first != step:
            continue  # X is read later, or Y was written before this op
        # Another input of this op must not be x too (e.g. ADD(x, x)).
        if sum(1 for i in op.inputs if i is not None and g.storage(i) == x) > 1:
            continue
        above = spec.min_distance_above()
        o = Overlap(x=x, y=y, distance=align_up(spec.min_distance(), align), step=step,
                    above=None if above is None else align_up(above, align))
        sx, sy = align_up(bx.size, align), align_up(by.size, align)
        if pair_span(o, sx, sy) < sx + sy:
            overlaps.append(o)
    return overlaps


def pair_span(o: Overlap, size_x: int, size_y: int) -> int:
    """The fewest bytes X and Y can occupy together under the rule. With Y at 0 and X at delta,
    the span max(delta + X, Y) - min(delta, 0) is convex in delta and flat on
    [min(0, Y - X), max(0, Y - X)]; the rule allows every delta outside its forbidden interval
    (lo, hi), so the best allowed delta is the flat part clamped to either side of it."""
    def span(delta: int) -> int:
        return max(delta + size_x, size_y) - min(delta, 0)

    lo, hi = o.forbidden(size_x, size_y)
    best = size_x + size_y
    for delta in (min(0, size_y - size_x), max(0, size_y - size_x)):
        if lo < delta < hi:
            delta = hi if span(hi) <= span(lo) else lo
        best = min(best, span(delta))
    return best


def live_bytes_with_overlaps(bufs: Sequence[Buffer], overlaps: Sequence[Overlap], steps: int,
                             align: int) -> list[int]:
    """Bytes live per step (aligned sizes), each overlapped pair counted at its step as the
    fewest bytes its rule lets it occupy: the lower bound of any placement using these rules."""
    live = live_bytes_per_step(bufs, steps, align)
    size = {b.name: align_up(b.size, align) for b in bufs}
    for o in overlaps:
        live[o.step] -= size[o.x] + size[o.y] - pair_span(o, size[o.x], size[o.y])
    return live


def used_overlaps(bufs: Sequence[Buffer], offsets: Mapping[str, int], overlaps: Sequence[Overlap]) -> list[Overlap]:
    """The rules a placement actually relies on: pairs whose bytes do overlap."""
    size = {b.name: b.size for b in bufs}
    out = []
    for o in overlaps:
        ox, oy = offsets[o.x], offsets[o.y]
        if ox < oy + size[o.y] and oy < ox + size[o.x]:
            out.append(o)
    return out
