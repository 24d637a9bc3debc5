"""A fresh N-way classifier head (`--classes N`): what users do to adapt a model to their labels.

The classifier (the weighted op producing the logits) gets weights and bias for N outputs,
starting at zero (a linear head trained by SGD needs no random start; every class starts equal),
quantized per output channel with the median step of the old head's channels (the features are
the same, so the old head's weight range is the best guess of the new one's; QAS makes SGD on
those integers float SGD on the real weights). Every tensor downstream of the classifier whose
last dimension was the old class count gets N instead.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tinyc.errors import BadInput
from tinyc.ir import Graph, QuantParams, Tensor
from tinyc.ops.registry import lookup
from tinyc.train.graph import find_logits


#: the new head's logits are quantized over [-LOGIT_RANGE, LOGIT_RANGE): room for confident
#: predictions (a 2-class head's logits often span only a few units, which would clamp the loss)
LOGIT_RANGE = 16.0
#: the new weights' step is this many times the old head's median step: room to grow
WEIGHT_HEADROOM = 4.0


def new_head(g: Graph, classes: int) -> tuple[Graph, dict[int, tuple[int, ...]], dict[int, tuple[float, int]]]:
    """g with an N-way head; also, for export, the new shapes (tensor index -> shape) and the new
    quantization of activations (tensor index -> (scale, zero point))."""
    if classes < 2:
        raise BadInput(f"--classes {classes}: a classifier needs at least 2 classes")
    _, _, clf = find_logits(g)
    w_info = lookup(clf.kind).weights(clf, g)
    w = g.t(w_info.weight)
    old = w.shape[0]
    if w.quant is None:
        raise BadInput(f"{clf.label}: the classifier's weights are not quantized")
    step = WEIGHT_HEADROOM * float(np.median(np.asarray(w.quant.scale, dtype=np.float64)))
    new_w = dataclasses.replace(w, shape=(classes, *w.shape[1:]), data=np.zeros((classes, *w.shape[1:]), np.int8),
                                quant=QuantParams(scale=(step,) * classes, zero_point=(0,) * classes, axis=0))
    updates: dict[str, Tensor] = {w.name: new_w}
    x = g.t(clf.inputs[0])
    if w_info.bias is not None:
        b = g.t(w_info.bias)
        updates[b.name] = dataclasses.replace(
            b, shape=(classes,), data=np.zeros((classes,), np.int32),
            quant=QuantParams(scale=(x.quant.s * step,) * classes, zero_point=(0,) * classes, axis=0))
    # tensors downstream of the classifier whose last dimension counts the classes
    down: set[str] = set(clf.outputs)
    for op in g.ops:
        if any(i is not None and (i in down or g.storage(i) in down) for i in op.inputs):
            down.update(op.outputs)
    for a, target in g.aliases.items():
        if g.storage(a) in down or target in down:
            down.add(a)
    reshape: dict[int, tuple[int, ...]] = {}
    requant: dict[int, tuple[float, int]] = {}
    logits_scale = 2 * LOGIT_RANGE / 256
    same_values = _same_values_chain(g, clf.outputs[0])  # logits and what only re-types them
    for name in sorted(down):
        t = g.t(name)
        if t.shape and t.shape[-1] == old:
            shape = (*t.shape[:-1], classes)
            quant = t.quant
            if g.storage(name) in same_values and t.quant is not None and t.dtype in ("int8", "uint8"):
                quant = QuantParams(scale=(logits_scale,), zero_point=(0 if t.dtype == "int8" else 128,))
                if t.index >= 0:
                    requant[t.index] = (logits_scale, quant.zp)
            updates[name] = dataclasses.replace(t, shape=shape, quant=quant)
            if t.index >= 0:
                reshape[t.index] = shape
    if w.index >= 0:
        reshape[w.index] = new_w.shape
    return g.with_tensors(updates), reshape, requant


def _same_values_chain(g: Graph, logits: str) -> set[str]:
    """The logits' storage and the outputs of the ops after it that keep real values (the op
    modules' keeps_values: QUANTIZE, DEQUANTIZE), which take the logits' new scale."""
    from tinyc.ops.registry import lookup as _lookup

    chain = {g.storage(logits)}
    for op in g.ops:
        if op.inputs and op.inputs[0] is not None and g.storage(op.inputs[0]) in chain:
            mod = _lookup(op.kind)
            if mod is not None and mod.keeps_values(op, g):
                chain.update(g.storage(o) for o in op.outputs)
    return chain
