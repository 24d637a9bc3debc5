"""Which prefixes of a model can run patch by patch.

A stage is ops[0..split] of the schedule when every op in it works on a patch (its op module
describes a `SpatialWindow`), every tensor it reads comes from inside the stage or is a model
input, and the split op's output is the only stage tensor used after the stage: then the rest
of the model sees the same full-size tensor it always did.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinyc.ir import Graph, Op
from tinyc.ops.base import SpatialWindow
from tinyc.ops.registry import lookup


@dataclass(frozen=True)
class Stage:
    """ops[0..split] of `g`, with each op's window; `output` is the split op's output."""

    split: int
    ops: tuple[Op, ...]
    windows: tuple[SpatialWindow, ...]
    inputs: tuple[str, ...]  # model inputs the stage reads (kept whole)

    @property
    def output(self) -> str:
        return self.ops[-1].outputs[0]


def _is_map(g: Graph, name: str) -> bool:
    t = g.t(name)
    return len(t.shape) == 4 and t.shape[0] == 1 and name not in g.aliases


def stages(g: Graph) -> list[Stage]:
    """Every valid stage, shortest first (at least two ops: one op alone saves nothing)."""
    out: list[Stage] = []
    windows: list[SpatialWindow] = []
    produced: set[str] = set()
    readers_after: dict[str, int] = {}  # tensor -> index of its last reader
    for k, op in enumerate(g.ops):
        for name in op.inputs:
            if name is not None:
                readers_after[name] = k
    graph_inputs = set(g.inputs)
    for k, op in enumerate(g.ops):
        mod = lookup(op.kind)
        win = mod.spatial(op, g) if mod is not None else None
        if win is None or len(op.outputs) != 1 or not _is_map(g, op.outputs[0]):
            break
        acts = [n for n in op.inputs if n is not None and not g.t(n).is_const]
        if not acts or any(n not in produced and n not in graph_inputs for n in acts) \
                or not all(_is_map(g, n) for n in acts):
            break
        windows.append(win)
        produced.add(op.outputs[0])
        y = op.outputs[0]
        escaping = {n for n in produced if readers_after.get(n, -1) > k or n in g.outputs}
        if k >= 1 and escaping <= {y}:
            ins = tuple(n for n in g.inputs if any(n in o.inputs for o in g.ops[:k + 1]))
            out.append(Stage(split=k, ops=tuple(g.ops[:k + 1]), windows=tuple(windows), inputs=ins))
    return out
