"""Fold a zero-point PAD into the convolution that consumes it.

    x[1,H,W,C] --PAD(top,bottom,left,right)--> p --CONV_2D(VALID)--> y
becomes
    x[1,H,W,C] --CONV_2D(VALID, explicit_padding=(top,bottom,left,right))--> y

Exact because the kernels skip out-of-image taps, which contribute (zp - zp) * w = 0, the
same as a padded pixel holding the input zero point. Only spatial padding of int8 tensors
whose PAD output has this single consumer is folded; the consumer's module must say it can
absorb padding (`OpSupport.absorbs_pad`).
"""

from __future__ import annotations

import dataclasses

from tinyc.ir import Graph
from tinyc.ops.registry import lookup
from tinyc.passes.manager import PassResult


def _spatial_pads(g: Graph, pad_op) -> tuple[int, int, int, int] | None:
    if pad_op.kind not in ("PAD", "PADV2") or len(pad_op.inputs) < 2 or pad_op.inputs[1] is None:
        return None
    x, p = g.t(pad_op.inputs[0]), g.t(pad_op.inputs[1])
    y = g.t(pad_op.outputs[0])
    if p.data is None or x.dtype != "int8" or len(x.shape) != 4 or x.quant is None or y.quant is None:
        return None
    if x.quant.zero_point != y.quant.zero_point or x.quant.scale != y.quant.scale:
        return None
    if pad_op.kind == "PADV2":
        if len(pad_op.inputs) < 3 or pad_op.inputs[2] is None:
            return None
        v = g.t(pad_op.inputs[2])
        if v.data is None or int(v.data.ravel()[0]) != x.quant.zp:
            return None
    pads = p.data.reshape(-1, 2)
    if pads.shape[0] != 4 or pads[0].any() or pads[3].any() or (pads < 0).any():
        return None
    return int(pads[1][0]), int(pads[1][1]), int(pads[2][0]), int(pads[2][1])


def run(g: Graph) -> PassResult:
    producers = g.producers()
    consumers = g.consumers()
    replaced: dict[int, object] = {}
    dropped: set[int] = set()
    for op in g.ops:
        if not op.inputs or op.inputs[0] is None:
            continue
        pad = producers.get(op.inputs[0])
        if pad is None or len(consumers.get(op.inputs[0], [])) != 1 or op.inputs[0] in g.outputs:
            continue
        pads = _spatial_pads(g, pad)
        mod = lookup(op.kind)
        if pads is None or mod is None or "explicit_padding" in op.attrs or not mod.absorbs_pad(op, g):
            continue
        attrs = dict(op.attrs)
        attrs["explicit_padding"] = pads
        replaced[id(op)] = dataclasses.replace(op, inputs=(pad.inputs[0],) + op.inputs[1:], attrs=attrs)
        dropped.add(id(pad))
    if not replaced:
        return PassResult(g, False)
    ops = tuple(replaced.get(id(op), op) for op in g.ops if id(op) not in dropped)  # type: ignore[misc]
    return PassResult(g.replace(ops=ops), True)
