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


def new_head(g: Graph, classes: int) -> tuple[Graph, dict[int, tuple[int, ...]]]:
    """g with an N-way head; also the new shapes of the model's tensors (index -> shape) for export."""
    if classes < 2:
        raise BadInput(f"--classes {classes}: a classifier needs at least 2 classes")
    _, _, clf = find_logits(g)
    w_info = lookup(clf.kind).weights(clf, g)
    w = g.t(w_info.weight)
    old = w.shape[0]
    if w.quant is None:
        raise BadInput(f"{clf.label}: the classifier's weights are not quantized")
    step = float(np.median(np.asarray(w.quant.scale, dtype=np.float64)))
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
    for name in sorted(down):
        t = g.t(name)
        if t.shape and t.shape[-1] == old:
            shape = (*t.shape[:-1], classes)
            updates[name] = dataclasses.replace(t, shape=shape)
            if t.index >= 0:
                reshape[t.index] = shape
    if w.index >= 0:
        reshape[w.index] = new_w.shape
    return g.with_tensors(updates), reshape
