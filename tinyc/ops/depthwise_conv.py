"""DEPTHWISE_CONV_2D, int8: TFLM's depthwise Prepare at compile time, Eval in
runtime_c/src/depthwise_conv.c (any layer: the model's filter layout) and
runtime_c/src/depthwise_3x3.c (3x3 filters with constant weights: the input offset folded into the
bias, the fast requantization, weights packed as int16 for depth multipliers 1 and 4k).
Trained layers (attrs["trained"]) always run depthwise_conv.c on their weights as they are.

Supported: int8 input and output, int8 1HWC filter (C = input channels x depth_multiplier)
with per-tensor or per-output-channel (axis 3) scales and zero point 0, int32 bias or none,
any kernel size, depth multiplier, stride, dilation, SAME/VALID padding, fused
NONE/RELU/RELU6/RELU_N1_TO_1. A preceding zero-point PAD is absorbed as extra padding.

In place, two ways; the planner (memory/plan.py) picks per op whichever gives the smaller arena:
- Overlap at a distance: tinyc_depthwise_conv2d_s8 and _3x3 are memmove-like (pixels in
  descending order when the output starts above the input), so the output may overlap the input at
  window_overlap's distances either way: about one input row of lag at stride 1 (W*C bytes plus
  the window's reach), a pixel or so at stride 2.
- Channel by channel (TinyEngine's rule, depth multiplier 1 only): tinyc_depthwise_conv2d_s8_channels
  (and _3x3_channels) copies input channel c (N*H*W bytes, unpadded: taps outside the input are skipped as in the
  other kernel) to a scratch buffer, then writes output channel c from it. Output channel c
  writes only bytes pixel*C + c, all of which belong to input channel c (already copied) when
  the output starts exactly where the input starts, whatever the stride, padding or output size.
  It costs max(in, out) + one input channel instead of in + distance: it wins at stride 1 on
  wide maps with many channels (MCUNetV2 after patches: 28x28x240 5x5 costs 784 B of temp vs a
  14,160 B distance), never at stride 2, where the distance is a pixel or so.
"""

from __future__ import annotations

import numpy as np

from tinyc.ir import Graph, Op
from tinyc.ops import _conv_math as cm
from tinyc.ops import _train_math as tm
from tinyc.ops.base import Arg, Backward, GradContext, InPlace, KernelCall, Weights, unsupported
from tinyc.ops.registry import register
from tinyc.quant import fast_requant

KIND = "DEPTHWISE_CONV_2D"
#: constant 3x3 layers run tinyc_depthwise_conv2d_s8_3x3 (False: always the model-layout kernel; tests)
FAST_3X3 = True


@register("DEPTHWISE_CONV_2D")
class DepthwiseConv2D(cm.WindowConv):
    def check(self, op: Op, g: Graph) -> None:
        cm.check_common(op, g, KIND, channel_axis=3)
        x, w = g.t(op.inputs[0]), g.t(op.inputs[1])
        one, fh, fw, out_c = w.shape
        in_c = x.shape[3]
        dm = op.attrs.get("depth_multiplier")
        if one != 1:
            raise unsupported(op, g, f"{KIND} filter shape {list(w.shape)}: the first dimension must be 1")
        # TFLM only DCHECKs this; the kernel indexes channels with the attribute, so an
        # inconsistent attribute would read the wrong weights. Refuse it.
        if not isinstance(dm, int) or dm < 1 or in_c * dm != out_c:
            raise unsupported(op, g, f"{KIND} depth_multiplier {dm!r} with {in_c} input channels does not "
                                     f"give the filter's {out_c} output channels")
        cm.check_shapes(op, g, KIND, fh, fw, out_c)
        bias = cm.bias_of(op, g)
        if not op.attrs.get("trained"):  # trained: the update bounds the bias instead (tm.bias_limit)
            cm.check_accumulator(op, g, KIND, w.data.reshape(fh * fw, out_c).T,
                                 g.t(bias).data if bias is not None else None)

    def macs(self, op: Op, g: Graph) -> int:
        w, y = g.t(op.inputs[1]), g.t(op.outputs[0])
        return y.size * w.shape[1] * w.shape[2]

    def lower(self, op: Op, g: Graph) -> KernelCall:
        return self._call(op, g, channels=False)

    def weights(self, op: Op, g: Graph) -> Weights | None:
        w, x = g.t(op.inputs[1]), g.t(op.inputs[0])
        per_out = tm.weight_norms(w.data, 3)
        dm = w.shape[3] // x.shape[3]
        return Weights(weight=op.inputs[1], bias=cm.bias_of(op, g), in_channels=x.shape[3],
                       channel_norms=per_out.reshape(x.shape[3], -1).sum(axis=1),
                       element_channel=np.broadcast_to(np.arange(w.shape[3]) // dm, w.shape), axis=3, group=dm)

    def backward(self, op: Op, g: Graph, ctx: GradContext) -> Backward:
        x, w = g.t(op.inputs[0]), g.t(op.inputs[1])
        _, fh, fw, out_c = w.shape
        n, h, wd, c = x.shape
        dm = op.attrs["depth_multiplier"]
        geom, scales = cm.backward_geometry(op, g, fh, fw, out_c, 1, dm)
        macs = self.macs(op, g)
        fam = tm.WeightedFamily(
            header="tinyc/train_conv.h", source="train_conv.c", backward_input="tinyc_depthwise_backward_input_f32",
            update="tinyc_depthwise_update", bwd_type="tinyc_conv_bwd_params_t",
            update_type="tinyc_conv_update_params_t", bwd_params=geom, out_channels=out_c, w_scale=scales,
            taps=fh * fw, pixels=n * h * wd, in_c=c, residuals_per_sel=dm * fh * fw,
            scratch_per_sel=0, scratch_fixed=fh * fw, macs_input=macs, macs_update=macs)
        return tm.weighted_backward(op, g, ctx, fam, self.weights(op, g))

    def in_place(self, op: Op, g: Graph) -> InPlace | None:
        """Depth multiplier 1: the channel-by-channel kernel, output over the input's first byte."""
        if op.attrs.get("depth_multiplier") != 1 or op.attrs.get("split"):
            return None
        return InPlace(input_index=0, call=self._call(op, g, channels=True))

    def _call(self, op: Op, g: Graph, channels: bool) -> KernelCall:
        self.check(op, g)
        x, w, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
        _, fh, fw, out_c = w.shape
        wh, ww = cm.windows(op, g, fh, fw)
        mult, shift = cm.output_multipliers(x, w, y, out_c)
        act_min, act_max = cm.clamp_range(op, y)
        bias = cm.bias_of(op, g)
        n, h, wd, c = x.shape
        dm = op.attrs["depth_multiplier"]
        params = dict(
            batches=n, in_h=h, in_w=wd, in_c=c,
            out_h=wh.out_size, out_w=ww.out_size, out_c=out_c,
            filter_h=fh, filter_w=fw, depth_multiplier=dm,
            stride_h=wh.stride, stride_w=ww.stride,
            dilation_h=wh.dilation, dilation_w=ww.dilation,
            pad_top=wh.pad_before, pad_left=ww.pad_before,
            input_offset=-x.quant.zp, output_offset=y.quant.zp,
            act_min=act_min, act_max=act_max,
            out_mult=mult, out_shift=shift,
            # windows inside the input skip the per-tap offset (depth multiplier 1 only)
            folded_bias=_or_null(cm.folded_bias(w.data.reshape(fh * fw, out_c).T,
                                                g.t(bias).data if bias is not None else None, -x.quant.zp)
                                 if dm == 1 and not op.attrs.get("trained") else None),
        )
        how = " in place, channel by channel" if channels else ""
        fast = _lower_3x3(op, g, params, channels, comment=(
            f"DEPTHWISE_CONV_2D{how} {fh}x{fw} stride {wh.stride}x{ww.stride} dilation {wh.dilation}x{ww.dilation} "
            f"pad {wh.pad_before},{ww.pad_before} {c}x{dm} {op.attrs.get('fused_activation_function', 'NONE')}"))
        if fast is not None:
            return fast
        comment = (f"DEPTHWISE_CONV_2D{how} {fh}x{fw} stride {wh.stride}x{ww.stride} dilation "
                   f"{wh.dilation}x{ww.dilation} pad {wh.pad_before},{ww.pad_before} {c}x{dm} "
                   f"{op.attrs.get('fused_activation_function', 'NONE')}")
        args = (Arg("in", op.inputs[0]), Arg("const", op.inputs[1]),
                Arg("const", bias) if bias is not None else Arg("null"), Arg("out", op.outputs[0]))
        if channels:  # one input channel of every image
            args += (Arg("scratch", nbytes=n * h * wd),)
        return tm.forward_call(op, KernelCall(
            function="tinyc_depthwise_conv2d_s8_channels" if channels else "tinyc_depthwise_conv2d_s8",
            header="tinyc/depthwise_conv.h",
            sources=("depthwise_conv.c",),
            params_type="tinyc_depthwise_conv2d_params_t", params=params,
            args=args, comment=comment))


def _lower_3x3(op: Op, g: Graph, params: dict, channels: bool, comment: str) -> KernelCall | None:
    """The 3x3 kernels (runtime_c/src/depthwise_3x3.c): the input offset folded into the doubled
    bias, the fast requantization. tinyc_depthwise_conv2d_s8_3x3: twice the filter as int16 in
    groups of four channels, depth multipliers 1 or 4k; tinyc_depthwise_conv2d_s8_3x3_channels,
    the in-place variant (channels): the model's filter read per channel, stride and dilation 1.
    Not for trained layers (their weights change at run time in the model's layout: nothing may
    be folded from them), filters other than 3x3 (the model-layout kernel's whole-window path is
    as fast there), or what tinyc/quant.py fast_requant cannot prove."""
    x, w, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    _, fh, fw, out_c = w.shape
    dm = params["depth_multiplier"]
    if not FAST_3X3 or op.attrs.get("trained") or op.attrs.get("split") or (fh, fw) != (3, 3):
        return None
    if channels and not (params["dilation_h"] == params["dilation_w"] == 1 and params["stride_h"] == 1
                         and params["stride_w"] == 1):
        return None  # the planner takes the channel-by-channel variant at stride 1 only (module docstring)
    if not (dm == 1 or dm % 4 == 0):
        return None
    bias_name = cm.bias_of(op, g)
    bias = g.t(bias_name).data if bias_name is not None else None
    per_channel = w.data.reshape(fh * fw, out_c).T.astype(np.int64)  # [out_c, taps]
    folded = cm.folded_bias(per_channel, bias, -x.quant.zp)
    if folded is None:
        return None
    span = max(abs(-128 - x.quant.zp), abs(127 - x.quant.zp))
    bound = span * np.abs(per_channel).sum(axis=1) + (np.abs(bias.astype(np.int64)) if bias is not None else 0)
    fast = fast_requant(folded, params["out_mult"], params["out_shift"], y.quant.zp, bound)
    if fast is None:
        return None
    requant, sign = fast
    in_c = params["in_c"]
    if channels:
        keep = ("batches", "in_h", "in_w", "in_c", "out_h", "out_w", "pad_top", "pad_left", "act_min", "act_max")
        p = {k: params[k] for k in keep}
        rq = requant.astype(np.int64)
        rq[:, 3] |= (sign < 0).astype(np.int64) << 8  # the kernel negates those channels' weights
        p.update(input_zp=x.quant.zp, requant=rq.astype(np.int32).ravel())
        return KernelCall(function="tinyc_depthwise_conv2d_s8_3x3_channels", header="tinyc/depthwise_conv.h",
                          sources=("depthwise_3x3.c",), params_type="tinyc_depthwise_3x3_channels_params_t",
                          params=p, args=(Arg("in", op.inputs[0]), Arg("const", op.inputs[1]),
                                          Arg("out", op.outputs[0]),
                                          Arg("scratch", nbytes=params["batches"] * params["in_h"] * params["in_w"])),
                          comment=comment + ", offset folded")
    keep = ("batches", "in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "depth_multiplier", "stride_h",
            "stride_w", "dilation_h", "dilation_w", "pad_top", "pad_left", "act_min", "act_max")
    p = {k: params[k] for k in keep}
    p.update(stream=pack_stream(2 * sign[:, None] * per_channel, requant),
             zero_points=np.full(-(-in_c // 4) * 4, x.quant.zp, dtype=np.int8))
    return KernelCall(function="tinyc_depthwise_conv2d_s8_3x3", header="tinyc/depthwise_conv.h",
                      sources=("depthwise_3x3.c",), params_type="tinyc_depthwise_3x3_params_t", params=p,
                      args=(Arg("in", op.inputs[0]), Arg("out", op.outputs[0])),
                      comment=comment + ", int16 weights packed per 4 channels, offset folded")


def pack_stream(per_channel: np.ndarray, requant: np.ndarray) -> np.ndarray:
    """tinyc_depthwise_3x3_params_t's stream (tinyc/depthwise_conv.h): per group of four
    channels (the last zero padded), the four biases, per tap the int16 words (w[c], w[c+2]) and
    (w[c+1], w[c+3]) low half first, then (q, rnd) per channel and the four shifts.
    per_channel: [out_c, taps] int16-range weights; requant: fast_requant's [out_c, 4]."""
    out_c, taps = per_channel.shape
    groups = -(-out_c // 4)
    w = np.zeros((groups * 4, taps), dtype=np.int64)
    w[:out_c] = per_channel
    assert np.abs(w).max(initial=0) <= 0x7fff
    rq = np.zeros((groups * 4, 4), dtype=np.int64)
    rq[:, 3] = 1  # a padded channel's shift (never stored)
    rq[:out_c] = requant
    lanes = (w & 0xffff).reshape(groups, 4, taps)
    even = lanes[:, 0] | (lanes[:, 2] << 16)  # [groups, taps]
    odd = lanes[:, 1] | (lanes[:, 3] << 16)
    rq = rq.reshape(groups, 4, 4)
    stream = np.concatenate([rq[:, :, 0] & 0xffffffff,                              # biases
                             np.stack([even, odd], axis=-1).reshape(groups, 2 * taps),  # taps
                             rq[:, :, 1:3].reshape(groups, 8) & 0xffffffff,          # (q, rnd) x 4
                             rq[:, :, 3]], axis=1)                                    # shifts
    return stream.ravel().astype(np.uint32).view(np.int32)


def _or_null(a: np.ndarray | None) -> np.ndarray | str:
    return "NULL" if a is None else a
