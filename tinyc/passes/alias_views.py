"""Turn view ops (RESHAPE, SQUEEZE, EXPAND_DIMS) into zero-copy aliases.

    x --RESHAPE--> y --> consumer        becomes        x (y aliases x's bytes) --> consumer

The op disappears; `Graph.aliases[y] = x`, and the planner gives y's users x's bytes.
A view whose input and output are both graph I/O keeps its copy so the caller's input
buffer and output buffer stay distinct.
"""

from __future__ import annotations

from tinyc.ir import Graph
from tinyc.ops.registry import lookup
from tinyc.passes.manager import PassResult


def run(g: Graph) -> PassResult:
    aliases = dict(g.aliases)
    kept = []
    for op in g.ops:
        mod = lookup(op.kind)
        src = mod.view_of(op, g) if mod is not None else None
        out = op.outputs[0] if op.outputs else None
        if src is None or out is None or g.t(src).is_const or \
                (out in g.outputs and (g.storage(src) in g.inputs or src in g.outputs)) or \
                out in g.inputs or g.t(src).nbytes != g.t(out).nbytes:
            kept.append(op)
            continue
        aliases[out] = src
    changed = len(kept) != len(g.ops)
    return PassResult(g.replace(ops=tuple(kept), aliases=aliases), changed)
