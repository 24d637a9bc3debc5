"""Unroll a stage into per-patch ops: the graph the rest of the compiler plans and emits.

For patch (i, j) every stage op gets a patch-sized output tensor computed over the span its
readers need (receptive_field.AxisPlan), its attributes from the op module for the padding
that patch has at the map border (`OpSupport.on_patch`), and, where a reader needs less than
the producer computed (a model input kept whole, the skip branch of a residual block), a
TINYC_CROP. The stage output is assembled by TINYC_PLACE ops into its full-size buffer.
Nothing else changes, so the planner sees short-lived patch tensors like any others.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tinyc.ir import Graph, Op, Tensor
from tinyc.ops.registry import lookup
from tinyc.schedule.receptive_field import AxisPlan, axis_plan, split
from tinyc.schedule.stage import Stage

Box = tuple[int, int, int, int]  # y0, y1, x0, x1


@dataclass(frozen=True)
class Patched:
    graph: Graph
    rows: AxisPlan
    cols: AxisPlan
    grid: tuple[int, int]
    stage: Stage

    def regions(self) -> list[dict[str, object]]:
        """Per patch: the box of the stage output it computes and of each model input it reads."""
        out = []
        for i, (r0, r1) in enumerate(self.rows.parts):
            for j, (c0, c1) in enumerate(self.cols.parts):
                ins = {x: [*self.rows.need[x][i], *self.cols.need[x][j]] for x in self.stage.inputs
                       if x in self.rows.need}
                out.append({"patch": [i, j], "output": [r0, r1, c0, c1], "inputs": ins})
        return out


def plans(g: Graph, stage: Stage, grid: tuple[int, int]) -> tuple[AxisPlan, AxisPlan]:
    _, h, w, _ = g.t(stage.output).shape
    return (axis_plan(g, stage, 0, split(h, grid[0])), axis_plan(g, stage, 1, split(w, grid[1])))


def streamable(g: Graph, stage: Stage) -> set[str]:
    """Model inputs nothing after the stage reads: they can be streamed patch by patch."""
    later = {n for op in g.ops[stage.split + 1:] for n in op.inputs if n is not None}
    return {x for x in stage.inputs if x not in later and x not in g.outputs}


def patch_graph(g: Graph, stage: Stage, grid: tuple[int, int], stream: bool = False) -> Patched:
    """stream: model inputs only the stage reads are fetched per patch with TINYC_READ_INPUT
    (the application's reader) instead of being held whole in the arena."""
    rows, cols = plans(g, stage, grid)
    streamed = streamable(g, stage) if stream else set()
    n, m = grid
    tensors: dict[str, Tensor] = {}
    aliases = dict(g.aliases)
    new_ops: list[Op] = []
    y = stage.output
    full_y = g.t(y)

    def patch_tensor(base: str, name: str, box: Box) -> str:
        t = g.t(base)
        tensors[name] = replace(t, name=name, shape=(1, box[1] - box[0], box[3] - box[2], t.shape[3]),
                                index=-1, label=f"{t.label or base} patch")
        return name

    for i in range(n):
        for j in range(m):
            tag = {"patch": (i, j), "grid": grid}
            have: dict[str, tuple[str, Box]] = {}  # stage tensor -> (patch tensor, its box)
            for x in stage.inputs:
                _, h, w, _ = g.t(x).shape
                have[x] = (x, (0, h, 0, w))
            for pos, op in enumerate(stage.ops):
                ins: list[str | None] = []
                pads = (0, 0, 0, 0)
                for slot, name in enumerate(op.inputs):
                    if name is None or g.t(name).is_const:
                        ins.append(name)
                        continue
                    r, c = rows.reads[(pos, slot)][i], cols.reads[(pos, slot)][j]
                    want: Box = (r.lo, r.hi, c.lo, c.hi)
                    if slot == 0:
                        pads = (r.pad_before, r.pad_after, c.pad_before, c.pad_after)
                    src, box = have[name]
                    if name in streamed:
                        fetched = patch_tensor(name, f"{name}@read{pos}_{slot}p{i}_{j}", want)
                        new_ops.append(Op("TINYC_READ_INPUT", (), (fetched,),
                                          {"box": want, "source": name, "input_index": g.inputs.index(name), **tag},
                                          index=op.index))
                        src = fetched
                    elif box != want:
                        rel = (want[0] - box[0], want[1] - box[0], want[2] - box[2], want[3] - box[2])
                        crop = patch_tensor(name, f"{name}@crop{pos}_{slot}p{i}_{j}", want)
                        new_ops.append(Op("TINYC_CROP", (src,), (crop,), {"box": rel, **tag}, index=op.index))
                        src = crop
                    ins.append(src)
                out = op.outputs[0]
                box = (*rows.need[out][i], *cols.need[out][j])
                name = patch_tensor(out, f"{out}@p{i}_{j}", box)
                mod = lookup(op.kind)
                assert mod is not None
                attrs = {**mod.on_patch(op, g, pads), **tag}
                new_ops.append(Op(op.kind, tuple(ins), (name,), attrs, index=op.index))
                have[out] = (name, box)
            last = i == n - 1 and j == m - 1
            k = i * m + j
            dst = y if last else f"{y}@full{k}"
            if not last:
                tensors[dst] = replace(full_y, name=dst, index=-1)
                aliases[dst] = y
            prev = () if k == 0 else (f"{y}@full{k - 1}",)
            src, box = have[y]
            new_ops.append(Op("TINYC_PLACE", (src, *prev), (dst,), {"box": box, **tag}, index=stage.ops[-1].index))
    dropped = {o for op in stage.ops for o in op.outputs} - {y}
    all_tensors = {k: v for k, v in g.tensors.items() if k not in dropped}
    all_tensors.update(tensors)
    out = g.replace(tensors=all_tensors, ops=tuple(new_ops) + tuple(g.ops[stage.split + 1:]), aliases=aliases,
                    streamed=frozenset(streamed))
    out.lint()
    return Patched(graph=out, rows=rows, cols=cols, grid=grid, stage=stage)
