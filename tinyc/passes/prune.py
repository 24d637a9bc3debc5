"""Drop ops whose outputs nobody reads and tensors nothing refers to any more."""

from __future__ import annotations

from tinyc.ir import Graph
from tinyc.passes.manager import PassResult


def run(g: Graph) -> PassResult:
    needed = {g.storage(n) for n in g.outputs} | set(g.outputs)
    kept = []
    for op in reversed(g.ops):
        if any(o in needed or g.storage(o) in needed for o in op.outputs):  # a slice: its storage
            kept.append(op)
            for i in op.inputs:
                if i is not None:
                    needed.add(i)
                    needed.add(g.storage(i))
    kept.reverse()
    used = set(g.inputs) | set(g.outputs) | set(g.aliases) | set(g.aliases.values())
    for op in kept:
        used.update(i for i in op.inputs if i is not None)
        used.update(op.outputs)
    tensors = {n: t for n, t in g.tensors.items() if n in used}
    aliases = {a: b for a, b in g.aliases.items() if a in used}
    offsets = {a: k for a, k in g.alias_offsets.items() if a in aliases}
    changed = len(kept) != len(g.ops) or len(tensors) != len(g.tensors)
    return PassResult(g.replace(ops=tuple(kept), tensors=tensors, aliases=aliases,
                                alias_offsets=offsets), changed)
