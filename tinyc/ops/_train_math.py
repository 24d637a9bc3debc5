"""What the backward facets of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED share.

The three differ only in geometry and kernel names; each op module calls `weighted_backward` from
its `backward` with its own `WeightedFamily`. Numerics (see runtime_c/include/tinyc/train_*.h):
backward in float32 reading the int8 weights, straight through the quantization, the fused
activation's gradient as a 1-bit mask of the saved int8 output, updates applied per output channel
right after their gradient exists (never a whole weight gradient in memory)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyc.ir import Graph, Op, Tensor
from tinyc.ops.base import Arg, Backward, GradContext, KernelCall, ParamUpdate, Weights, elementwise_overlap, \
    unsupported
from tinyc.ops.kernel import kernel_op
from tinyc.quant import INT32_MAX, activation_range

MASKED_ACTIVATIONS = ("RELU", "RELU6", "RELU_N1_TO_1")
WEIGHT_LIMIT = 127  # trained int8 weights stay symmetric, as TFLite's per-channel weights are


def activation_mask(op: Op, g: Graph, ctx: GradContext, y_name: str, act: str) -> tuple[list[Op], list[Op], str]:
    """For a fused RELU/RELU6/RELU_N1_TO_1: a save step turning the int8 output into one bit per
    element (inside the clamp: the gradient passes) and a backward step applying it to dy.
    Returns (saves, backward ops, the masked gradient)."""
    if act in ("NONE", None):
        return [], [], ctx.dy
    if act not in MASKED_ACTIVATIONS:
        raise unsupported(op, g, f"no backward for fused activation {act}")
    y = g.t(y_name)
    lo, hi = activation_range(act, y.quant.s, y.quant.zp, y.dtype)
    n = y.size
    mask = ctx.new_tensor(f"mask{op.index}", ((n + 7) // 8,), "uint8")
    params = dict(n=n, lo=lo, hi=hi)
    save = KernelCall(function="tinyc_act_mask_s8", header="tinyc/train_elementwise.h",
                      sources=("train_elementwise.c",), params_type="tinyc_mask_params_t", params=params,
                      args=(Arg("in", y_name), Arg("out", mask)),
                      comment=f"{act} mask of #{op.index}'s output, 1 bit per element")
    dz = ctx.new_tensor(f"dz{op.index}", g.t(ctx.dy).shape, "float32")
    apply = KernelCall(function="tinyc_apply_mask_f32", header="tinyc/train_elementwise.h",
                       sources=("train_elementwise.c",), params_type="tinyc_mask_params_t", params=params,
                       args=(Arg("in", ctx.dy), Arg("in", mask), Arg("out", dz)),
                       comment=f"d(pre-activation) of #{op.index}: dy where the {act} mask is set")
    return ([kernel_op(save, op.index, "mask")],
            [kernel_op(apply, op.index, "apply mask", overlap=elementwise_overlap(4, 4, n))], dz)


_SPLIT_PARAMS = {"tinyc_conv2d_params_t": ("tinyc_conv2d_split_params_t", "conv"),
                 "tinyc_depthwise_conv2d_params_t": ("tinyc_depthwise_split_params_t", "conv"),
                 "tinyc_fully_connected_params_t": ("tinyc_fully_connected_split_params_t", "fc"),
                 "tinyc_fully_connected_pc_params_t": ("tinyc_fully_connected_pc_split_params_t", "fc")}


def split_struct(split: dict[str, Any]) -> "NestedStruct":
    return NestedStruct(n_trained=split["n_trained"], n_frozen=split["n_frozen"], slot=split["slot"])


def forward_call(op: Op, call: KernelCall) -> KernelCall:
    """The forward kernel call of a weighted op, as lowered for inference; for an op that trains
    some of its input channels (attrs["split"], set by tinyc/train/graph.py), its twin that reads
    the weights from their trained part (SRAM) and frozen part (flash): tinyc/split_weights.h."""
    split = op.attrs.get("split")
    if split is None:
        return call
    params_type, inner = _SPLIT_PARAMS[call.params_type or ""]
    args = list(call.args)
    args[1:2] = [Arg("const", split["frozen"]), Arg("param", split["trained"])]
    return KernelCall(function=call.function + "_split", header="tinyc/split_weights.h", sources=("split_weights.c",),
                      params_type=params_type, params={inner: NestedStruct(call.params), "split": split_struct(split)},
                      args=tuple(args), comment=call.comment + f"; weights: {split['n_trained']} trained channels in "
                                                                f"SRAM, {split['n_frozen']} frozen in flash")


def weight_norms(w: np.ndarray, axis: int) -> np.ndarray:
    """L1 norm of the weights of each channel along `axis` (the channel-selection rule)."""
    a = np.abs(w.astype(np.int64))
    return a.sum(axis=tuple(i for i in range(a.ndim) if i != axis)).astype(np.float64)


def select_channels(weights: Weights, k: int) -> tuple[int, ...]:
    """THE channel-selection rule of a partial update, used by every code path (C, the float
    reference, the report): the k input channels whose weights have the largest L1 norm, ties to
    the lower index, returned in ascending order."""
    k = max(0, min(k, weights.in_channels))
    order = sorted(range(weights.in_channels), key=lambda c: (-weights.channel_norms[c], c))
    return tuple(sorted(order[:k]))


def bias_limit(op: Op, g: Graph, taps: int, x: Tensor) -> int:
    """The largest |bias| a trained op may reach so that its int32 accumulator cannot overflow
    whatever its trained weights become (each within +-127): the forward kernels and TFLM rely
    on the accumulator never overflowing."""
    span = max(abs(-128 - x.quant.zp), abs(127 - x.quant.zp))
    room = INT32_MAX - taps * WEIGHT_LIMIT * span
    if room <= 0:
        raise unsupported(op, g, f"cannot train {op.kind} with {taps} taps per output: its int32 accumulator "
                                 "could overflow once the weights change")
    return int(room)


@dataclass(frozen=True)
class WeightedFamily:
    """One weighted op family's backward kernels.

    bwd_type/bwd_params: the geometry struct of the input-gradient kernel; update_type: the update
    kernel's params struct (geometry under field `g`); out_channels: output channels (bias size);
    residuals(channels): trained weight elements; scratch(channels): floats of the update kernel's
    scratch; x_saved_shape(channels): shape of the saved input channels."""

    header: str
    source: str
    backward_input: str
    update: str
    bwd_type: str
    update_type: str
    bwd_params: dict[str, Any]
    out_channels: int
    w_scale: np.ndarray  # per output channel
    taps: int  # weights per output (accumulator bound)
    pixels: int  # N*H*W of the input (rows for FULLY_CONNECTED)
    in_c: int  # input channels (features) of the activation
    residuals_per_sel: int  # trained weight elements per selected input channel
    scratch_per_sel: int  # update scratch floats per selected input channel
    scratch_fixed: int  # update scratch floats regardless of the selection
    macs_input: int
    macs_update: int


def weighted_backward(op: Op, g: Graph, ctx: GradContext, fam: WeightedFamily, weights: Weights) -> Backward:
    """Mask, input gradient, then the update of the selected weights and the bias."""
    x_name, y_name = op.inputs[0], op.outputs[0]
    x, w = g.t(x_name), g.t(weights.weight)
    if w.quant is None or any(z != 0 for z in w.quant.zero_point):
        raise unsupported(op, g, f"no backward for {op.kind} weights with a non-zero zero point")
    act = op.attrs.get("fused_activation_function", "NONE")
    saves, ops, dz = activation_mask(op, g, ctx, y_name, act)
    grads: dict[int, str] = {}
    f32 = np.float32
    w_scale = fam.w_scale.astype(f32)
    bwd = dict(fam.bwd_params, w_scale=w_scale)
    split = op.attrs.get("split")
    if ctx.want and ctx.want[0]:
        dx = ctx.new_tensor(f"dx{op.index}", x.shape, "float32")
        call = KernelCall(function=fam.backward_input, header=fam.header, sources=(fam.source,),
                          params_type=fam.bwd_type, params=bwd,
                          args=(Arg("in", dz), Arg("const", weights.weight), Arg("out", dx)),
                          comment=f"d(input) of #{op.index} {op.kind}")
        if split is not None:  # the weights read through their two parts
            call = KernelCall(function=fam.backward_input.replace("_f32", "_split_f32"), header=fam.header,
                              sources=(fam.source,), params_type=fam.bwd_type.replace("_params_t", "_split_params_t"),
                              params=dict(g=NestedStruct(bwd), split=split_struct(split)),
                              args=(Arg("in", dz), Arg("const", split["frozen"]), Arg("param", split["trained"]),
                                    Arg("out", dx)), comment=call.comment + " (split weights)")
        ops.append(kernel_op(call, op.index, "input gradient", macs=fam.macs_input))
        grads[0] = dx
    up = ctx.update or ParamUpdate()
    train_bias = up.bias and weights.bias is not None
    if not up.channels and not train_bias:
        return Backward(saves=tuple(saves), ops=tuple(ops), grads=grads)
    sel = tuple(up.channels)
    x_sel = x_name
    if sel and len(sel) < fam.in_c:
        x_sel = ctx.new_tensor(f"xsel{op.index}", (fam.pixels, len(sel)), "int8")
        gather = KernelCall(function="tinyc_gather_channels_s8", header="tinyc/train_elementwise.h",
                            sources=("train_elementwise.c",), params_type="tinyc_gather_params_t",
                            params=dict(pixels=fam.pixels, c=fam.in_c, n_sel=len(sel),
                                        sel=np.array(sel, dtype=np.uint16)),
                            args=(Arg("in", x_name), Arg("out", x_sel)),
                            comment=f"keep the {len(sel)} of {fam.in_c} input channels #{op.index} trains")
        saves.append(kernel_op(gather, op.index, "save trained input channels"))
    s_x = float(x.quant.s)
    scale64 = fam.w_scale.astype(np.float64)
    w_inv = (1.0 / scale64) if ctx.qas else scale64
    b_inv = (1.0 / (s_x * scale64)) if ctx.qas else (s_x * scale64)
    n_w = len(sel) * fam.residuals_per_sel
    params = dict(g=NestedStruct(bwd), layer=op.index, x_scale=f32(s_x), x_zp=int(x.quant.zp),
                  n_sel=len(sel), sel=np.array(sel or (0,), dtype=np.uint16) if sel else "NULL",
                  w_step_inv=w_inv.astype(f32), b_step_inv=b_inv.astype(f32) if train_bias else "NULL",
                  b_limit=bias_limit(op, g, fam.taps, x) if train_bias else INT32_MAX)
    tag = f"l{op.index}"

    def state(what: str, ctype: str, count: int, on: bool) -> Arg:
        if not on or count == 0:
            return Arg("null")
        return Arg("state", ctx.state(f"{tag}_{what}", ctype, count), nbytes=count * _CSIZE[ctype], ctype=ctype)

    args = (Arg("sgd"), Arg("in", dz), Arg("in", x_sel) if sel else Arg("null"),
            # the trained part of the weights (the whole tensor when every channel trains); bias only: none
            Arg("param", split["trained"] if split is not None else weights.weight) if sel else Arg("null"),
            state("wres", "int16_t", n_w, bool(sel) and ctx.residuals),
            state("wmom", "float", n_w, bool(sel) and ctx.momentum),
            Arg("param", weights.bias) if train_bias else Arg("null"),  # a frozen bias is not touched
            state("bres", "int16_t", fam.out_channels, train_bias and ctx.residuals),
            state("bmom", "float", fam.out_channels, train_bias and ctx.momentum),
            Arg("scratch", nbytes=4 * (fam.scratch_fixed + fam.scratch_per_sel * len(sel)) if sel else 0))
    what = (f"{len(sel)} of {fam.in_c} input channels" if sel else "no weights") + (" + bias" if train_bias else "")
    call = KernelCall(function=fam.update, header=fam.header, sources=(fam.source,), params_type=fam.update_type,
                      params=params, args=args, comment=f"SGD update of #{op.index} {op.kind}: {what}")
    ops.append(kernel_op(call, op.index, "update", macs=fam.macs_update * max(1, len(sel)) // max(1, fam.in_c)))
    return Backward(saves=tuple(saves), ops=tuple(ops), grads=grads)


_CSIZE = {"int16_t": 2, "float": 4, "int8_t": 1, "int32_t": 4}


class NestedStruct(dict):
    """A struct-valued params field (printed as a nested initializer `{.a = 1, ...}`)."""


def dims4(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape padded on the left with ones to rank 4 (the train kernels' broadcast shapes)."""
    if len(shape) > 4:
        raise ValueError(f"rank {len(shape)} > 4")
    return (1,) * (4 - len(shape)) + tuple(shape)


def grad_step(op: Op, function: str, header: str, source: str, params_type: str | None, params: dict[str, Any],
              args: tuple[Arg, ...], what: str, macs: int = 0, overlap: Any = None) -> Op:
    """One backward step of `op` running `function` (a train_*.c kernel)."""
    call = KernelCall(function=function, header=header, sources=(source,), params_type=params_type, params=params,
                      args=args, comment=f"{what} of #{op.index} {op.kind}")
    return kernel_op(call, op.index, what, macs=macs, overlap=overlap)


def identity_backward(op: Op, g: Graph, ctx: GradContext) -> Backward:
    """d(input 0) = d(output): the op does not change real values (QUANTIZE, DEQUANTIZE, RESHAPE)."""
    return Backward(grads={0: ctx.dy} if ctx.want and ctx.want[0] else {})


def masked_pointwise_backward(op: Op, g: Graph, ctx: GradContext, act: str) -> Backward:
    """RELU, RELU6, RELU_N1_TO_1 as standalone ops: the mask of their output."""
    saves, ops, dz = activation_mask(op, g, ctx, op.outputs[0], act)
    return Backward(saves=tuple(saves), ops=tuple(ops), grads={0: dz} if ctx.want and ctx.want[0] else {})
