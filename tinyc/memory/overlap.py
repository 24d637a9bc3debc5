"""Overlapped buffers: let an op write its output over a dying input, at a proven distance.

    before:  [ input X ........ ][ output Y ............. ]      X + Y bytes
    after:   [ output Y ............. ]                           Y + lag bytes
                    [ input X ........ ]
                    ^ X starts D bytes above Y, D from the op's OverlapSpec

The op module proves D from its kernel's access order (OverlapSpec.min_distance); this module
only decides which pairs to merge. Merged buffers form an `Item`: buffers with fixed relative
offsets that the allocators place as one piece, checking each member against what is live at
its own steps (a group is not a rectangle in time x address).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from tinyc.ir import Graph
from tinyc.memory.lifetimes import Buffer, align_up, live_bytes_per_step
from tinyc.ops.registry import lookup


@dataclass(frozen=True)
class Item:
    members: tuple[tuple[Buffer, int], ...]  # (buffer, offset relative to the item's base)

    @property
    def size(self) -> int:
        return max(r + b.size for b, r in self.members)

    @property
    def first(self) -> int:
        return min(b.first for b, _ in self.members)

    @property
    def last(self) -> int:
        return max(b.last for b, _ in self.members)

    @property
    def name(self) -> str:
        return self.members[0][0].name


@dataclass(frozen=True)
class Overlap:
    """Y may overlap X when offset(X) - offset(Y) >= distance."""

    x: str
    y: str
    distance: int
    step: int


def _disjoint(a: Buffer, ra: int, b: Buffer, rb: int) -> bool:
    return ra + a.size <= rb or rb + b.size <= ra or not a.overlaps_in_time(b)


def find_overlaps(g: Graph, bufs: Sequence[Buffer], align: int) -> tuple[list[Item], list[Overlap]]:
    """Group buffers by the overlaps the op modules allow; every other buffer is its own item."""
    by_name = {b.name: b for b in bufs}
    group_of: dict[str, dict[str, int]] = {}
    overlaps: list[Overlap] = []
    keep = set(g.storage(n) for n in g.inputs)  # the caller's input stays intact through invoke
    for step, op in enumerate(g.ops):
        mod = lookup(op.kind)
        spec = mod.overlap(op, g) if mod is not None else None
        if spec is None or not op.outputs or spec.input_index >= len(op.inputs):
            continue
        xin = op.inputs[spec.input_index]
        if xin is None or g.t(xin).is_const:
            continue
        x, y = g.storage(xin), g.storage(op.outputs[0])
        if x == y or x in keep or x not in by_name or y not in by_name or y in group_of:
            continue
        bx, by = by_name[x], by_name[y]
        if bx.last != step or by.first != step:
            continue
        # Another input of this op must not be x too (e.g. ADD(x, x)).
        if sum(1 for i in op.inputs if i is not None and g.storage(i) == x) > 1:
            continue
        d = align_up(spec.min_distance(), align)
        grp = group_of.get(x, {x: 0})
        ry = grp[x] - d
        span = max(grp[x] + bx.size, ry + by.size) - min(grp[x], ry)
        if span >= bx.size + by.size:
            continue  # the op's access order leaves nothing to share
        if not all(_disjoint(by, ry, by_name[m], r) for m, r in grp.items() if m != x):
            continue
        old_lo = min(grp.values())
        old_hi = max(r + by_name[m].size for m, r in grp.items())
        if len(grp) > 1 and max(old_hi, ry + by.size) - min(old_lo, ry) > max(old_hi - old_lo, span):
            continue  # a chain drifting down would make the group wider than any step needs
        grp[y] = ry
        for m in grp:
            group_of[m] = grp
        overlaps.append(Overlap(x=x, y=y, distance=d, step=step))
    items: list[Item] = []
    seen: set[int] = set()
    for b in bufs:
        grp = group_of.get(b.name)
        if grp is None:
            items.append(Item(((b, 0),)))
        elif id(grp) not in seen:
            seen.add(id(grp))
            low = min(grp.values())
            items.append(Item(tuple((by_name[m], r - low) for m, r in sorted(grp.items(), key=lambda kv: kv[1]))))
    return items, overlaps


def live_bytes_with_overlaps(bufs: Sequence[Buffer], overlaps: Sequence[Overlap], items: Sequence[Item],
                             steps: int, align: int) -> list[int]:
    """Bytes live per step, counting each overlapped pair at its step as the span it occupies."""
    live = live_bytes_per_step(bufs, steps, align)
    rel: Mapping[str, int] = {b.name: r for it in items for b, r in it.members}
    size = {b.name: align_up(b.size, align) for b in bufs}
    for o in overlaps:
        lo = min(rel[o.x], rel[o.y])
        hi = max(rel[o.x] + size[o.x], rel[o.y] + size[o.y])
        live[o.step] -= size[o.x] + size[o.y] - (hi - lo)
    return live
