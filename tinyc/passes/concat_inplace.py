"""CONCATENATION in place: the producers write straight into their slice of the output.

    a = CONV(..)  b = CONV(..)               a = CONV(..) -> bytes [0, |a|) of y
    y = CONCATENATION(a, b) --> consumer     b = CONV(..) -> bytes [|a|, |a| + |b|) of y
                                             y --> consumer         (no copy, a and b never apart)

Applies when the op module says the output is its inputs laid end to end (`slices`: the axes
before the concatenation axis are all 1, e.g. NHWC with N=1 joined along H, or along C when
H=W=1). Then `Graph.aliases[a] = y` with `Graph.alias_offsets[a]` = a's byte offset in y, and
the planner keeps y's bytes from the first producer on (memory/lifetimes works on storage).

An input qualifies when it is written by an op of this graph, appears once in the op, is no
view or slice already, no graph input or output (nor is any view of it), and nothing reads it
(or a view of it) after the concatenation: a later reader would keep the whole output alive.
Inputs that do not qualify (a model input, a constant, a graph output, ...) keep a copy: a
one-input CONCATENATION (a plain byte copy, also for PACK) into their slice, at the op's place. No qualifying input: the op stays.

Concatenations are visited last to first, so a concatenation feeding another one becomes a
slice of it and its own inputs slices of that slice (offsets add up along the alias chain).
"""

from __future__ import annotations

import dataclasses

from tinyc.ir import Graph, Op
from tinyc.ops.registry import lookup
from tinyc.passes.manager import PassResult


def run(g: Graph) -> PassResult:
    aliases, offsets = dict(g.aliases), dict(g.alias_offsets)
    tensors = dict(g.tensors)
    produced = {o for op in g.ops for o in op.outputs}
    last_read: dict[str, int] = {}
    for step, op in enumerate(g.ops):
        for i in op.inputs:
            if i is not None:
                last_read[i] = step
    ops: list[list[Op]] = [[op] for op in g.ops]  # what each op becomes
    changed = False

    def chain(name: str) -> list[str]:
        out = [name]
        while out[-1] in aliases:
            out.append(aliases[out[-1]])
        return out

    def views(x: str) -> list[str]:
        """x and every tensor aliasing x's bytes (whole views such as RESHAPE outputs)."""
        return [n for n in tensors if x in chain(n)]

    def qualifies(x: str | None, op: Op, step: int) -> bool:
        if x is None or tensors[x].is_const or x not in produced or x in aliases:
            return False
        if sum(1 for i in op.inputs if i == x) != 1:
            return False
        io = set(g.inputs) | set(g.outputs)
        return all(v not in io and last_read.get(v, -1) <= step for v in views(x))

    for step in range(len(g.ops) - 1, -1, -1):
        op = g.ops[step]
        mod = lookup(op.kind)
        where = mod.slices(op, g) if mod is not None else None
        if where is None or len(op.outputs) != 1:
            continue
        y = op.outputs[0]
        ok = [qualifies(x, op, step) for x in op.inputs]
        if not any(ok):
            continue
        copies: list[Op] = []
        for k, (x, off, fits) in enumerate(zip(op.inputs, where, ok)):
            assert x is not None
            if fits:
                aliases[x], offsets[x] = y, off
                continue
            part = f"{y}@slice{k}"  # the copy's output: x's bytes, at x's place in y
            tensors[part] = dataclasses.replace(tensors[x], name=part, data=None, quant=tensors[y].quant,
                                                label=f"{tensors[x].label or x} copied into {tensors[y].label or y}")
            aliases[part], offsets[part] = y, off
            copies.append(Op("CONCATENATION", (x,), (part,), {"axis": 0}, index=op.index))  # a copy
        ops[step] = copies
        changed = True
    if not changed:
        return PassResult(g, False)
    return PassResult(g.replace(ops=tuple(o for group in ops for o in group), tensors=tensors,
                                aliases=aliases, alias_offsets=offsets), True)
