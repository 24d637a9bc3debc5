"""Overlapped buffers: let an op write its output over a dying input, at a proven distance.

    before:  [ input X ........ ][ output Y ............. ]      X + Y bytes
    after:   [ output Y ............. ]                           Y + lag bytes
                    [ input X ........ ]
                    ^ X starts D bytes above Y, D from the op's OverlapSpec

The op module proves D from its kernel's access order (OverlapSpec.min_distance); this module
only lists the pairs the ops allow, as pairwise rules "offset(X) - offset(Y) >= D at step s".
The allocators decide, pair by pair, whether to use a rule: a chain of ops (expand, depthwise,
project, ...) may drift across the arena or be cut wherever a plain placement is lower.

An op may also offer an in-place variant (OpSupport.in_place: a kernel whose output starts
exactly where its input starts, with a short-lived scratch buffer). Its rule is `exact`: Y may
share bytes with X only at delta = 0. find_in_place lists those; memory/plan.py decides per op
which rule to use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

from tinyc.ir import Graph, Op
from tinyc.memory.lifetimes import Buffer, align_up, live_bytes_per_step
from tinyc.ops.base import InPlace
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
    exact: bool = False  # an in-place kernel: Y may share bytes with X only starting where X starts

    def allows(self, delta: int) -> bool:
        """Whether Y may start `delta` bytes below X (X and Y sharing bytes)."""
        if self.exact:
            return delta == 0
        if self.above is None:
            return delta >= self.distance
        return delta >= max(self.distance, 0) or -delta >= self.above

    def forbidden_all(self, size_x: int, size_y: int) -> list[tuple[int, int]]:
        """The deltas this rule forbids, as open intervals (lo, hi), each empty when lo >= hi:
        `forbidden`, or for an exact rule every sharing delta except 0."""
        if self.exact:
            return [(-size_x, 0), (0, size_y)]
        return [self.forbidden(size_x, size_y)]

    def forbidden(self, size_x: int, size_y: int) -> tuple[int, int]:
        """The deltas this (non-exact) rule forbids: the open interval (lo, hi), empty when lo >= hi.
        Without the rule it would be (-size_x, size_y): every delta where X and Y share a byte."""
        assert not self.exact, "an exact rule forbids two intervals: use forbidden_all"
        if self.above is None:
            return -size_x, min(size_y, self.distance)
        return max(-size_x, -self.above), min(size_y, max(self.distance, 0))


def _dying_pair(g: Graph, op, step: int, input_index: int, by_name: Mapping[str, Buffer]) -> tuple[str, str] | None:
    """(X, Y) storage buffers when op's output Y may share bytes with input `input_index` X:
    X dies at this op and Y is born there, both whole buffers, X read once by the op."""
    if not op.outputs or input_index >= len(op.inputs):
        return None
    xin = op.inputs[input_index]
    if xin is None or g.t(xin).is_const:
        return None
    if g.is_slice(xin) or g.is_slice(op.outputs[0]):
        return None  # the rule's distance is between whole buffers; a slice starts inside one
    x, y = g.storage(xin), g.storage(op.outputs[0])
    if x == y or x not in by_name or y not in by_name:
        return None
    if by_name[x].last != step or by_name[y].first != step:
        return None  # X is read later, or Y was written before this op
    # Another input of this op must not be x too (e.g. ADD(x, x)).
    if sum(1 for i in op.inputs if i is not None and g.storage(i) == x) > 1:
        return None
    return x, y


def _offers(g: Graph, by_name: dict[str, Buffer],
            facet: Callable[[Any, Op], Any]) -> Iterator[tuple[int, Any, str, str]]:
    """(step, offer, x, y) for every op whose module makes an offer (`facet`: an overlap spec or
    an in-place variant, with its input_index) where that input dies and the output is born."""
    for step, op in enumerate(g.ops):
        mod = lookup(op.kind)
        offer = facet(mod, op) if mod is not None else None
        pair = _dying_pair(g, op, step, offer.input_index, by_name) if offer is not None else None
        if pair is not None:
            yield step, offer, *pair


def find_overlaps(g: Graph, bufs: Sequence[Buffer], align: int) -> list[Overlap]:
    """Every overlap an op module proves safe and that can save bytes: at most one per op,
    between its output and an input whose lifetime ends at that op. The model's input is no
    exception: like every buffer, its bytes are free once its last reader has run (invoke does
    not promise to leave it intact; the caller writes it again before each invoke). Ops
    reading or writing a slice (CONCATENATION in place) get no rule."""
    by_name = {b.name: b for b in bufs}
    overlaps: list[Overlap] = []
    for step, spec, x, y in _offers(g, by_name, lambda mod, op: mod.overlap(op, g)):
        above = spec.min_distance_above()
        o = Overlap(x=x, y=y, distance=align_up(spec.min_distance(), align), step=step,
                    above=None if above is None else align_up(above, align))
        sx, sy = align_up(by_name[x].size, align), align_up(by_name[y].size, align)
        if pair_span(o, sx, sy) < sx + sy:
            overlaps.append(o)
    return overlaps


@dataclass(frozen=True)
class InPlaceOption:
    """Op `step` may run `in_place.call` with Y exactly over X (`rule`, exact) instead of its
    own call: worth it when `bytes` (X, Y and the variant's scratch together) is less than what
    the op's distance rule (or no rule) needs at that step."""

    step: int
    rule: Overlap
    in_place: InPlace
    bytes: int


def find_in_place(g: Graph, bufs: Sequence[Buffer], align: int) -> list[InPlaceOption]:
    """Every op whose module offers an in-place variant, where its input dies and its output
    is born (as for find_overlaps)."""
    by_name = {b.name: b for b in bufs}
    out = []
    for step, ip, x, y in _offers(g, by_name, lambda mod, op: mod.in_place(op, g)):
        scratch = sum(align_up(a.nbytes, align) for a in ip.call.args if a.kind == "scratch")
        total = max(align_up(by_name[x].size, align), align_up(by_name[y].size, align)) + scratch
        out.append(InPlaceOption(step=step, rule=Overlap(x=x, y=y, distance=0, step=step, exact=True),
                                 in_place=ip, bytes=total))
    return out


def pair_span(o: Overlap, size_x: int, size_y: int) -> int:
    """The fewest bytes X and Y can occupy together under the rule. With Y at 0 and X at delta,
    the span max(delta + X, Y) - min(delta, 0) is convex in delta and flat on
    [min(0, Y - X), max(0, Y - X)]; the rule allows every delta outside its forbidden interval
    (lo, hi), so the best allowed delta is the flat part clamped to either side of it."""
    def span(delta: int) -> int:
        return max(delta + size_x, size_y) - min(delta, 0)

    if o.exact:
        return max(size_x, size_y)
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
