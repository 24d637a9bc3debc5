"""Evaluate at compile time every op whose outputs do not depend on the model input.

    SHAPE(x) -> STRIDED_SLICE -> PACK -> RESHAPE(y, shape)      (the MCUNet Wake Vision head)
becomes
    RESHAPE(y, <const shape>)

The op modules compute the values (`OpSupport.fold`); this pass only walks the graph.
"""

from __future__ import annotations

import numpy as np

from tinyc.ir import Graph, Tensor
from tinyc.ops.registry import lookup
from tinyc.passes.manager import PassResult


def run(g: Graph) -> PassResult:
    tensors = dict(g.tensors)
    kept = []
    changed = False
    for op in g.ops:
        mod = lookup(op.kind)
        values = None
        if mod is not None and not any(o in g.outputs for o in op.outputs):
            values = mod.fold(op, g.replace(tensors=tensors))
        if values is None:
            kept.append(op)
            continue
        for name, v in zip(op.outputs, values):
            t = tensors[name]
            arr = np.asarray(v).astype(t.dtype if t.dtype != "bool" else "uint8").reshape(t.shape)
            arr.setflags(write=False)
            tensors[name] = Tensor(name=t.name, shape=t.shape, dtype=t.dtype, quant=t.quant, data=arr,
                                   index=t.index, label=t.label)
        changed = True
    return PassResult(g.replace(tensors=tensors, ops=tuple(kept)), changed)
