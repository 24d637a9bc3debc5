"""What CONV_2D and DEPTHWISE_CONV_2D share: TFLM's Prepare for windowed int8 convolutions.

Mirrors tensorflow/lite/micro/kernels/conv_common.cc and depthwise_conv_common.cc:
output size and padding (ComputePaddingHeightWidth), per-channel multipliers
(PopulateConvolutionQuantizationParams) and the fused activation clamp. Both op modules
call `check_common` from their `check` and `prepare` from their `lower`, so the checks and
the constants cannot drift apart.
"""

from __future__ import annotations

import math

from dataclasses import dataclass

import numpy as np

from tinyc.ir import Graph, Op, Tensor
from typing import Any

from tinyc.ops.base import OpSupport, OverlapSpec, SpatialWindow, unsupported, window_overlap
from tinyc.quant import INT32_MAX, activation_range, quantize_multiplier_array

FUSED_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


@dataclass(frozen=True)
class Window:
    """One spatial axis of a convolution: sizes, stride, dilation and the leading padding."""

    in_size: int  # the size the kernel reads (after a folded PAD was removed)
    filter_size: int
    stride: int
    dilation: int
    out_size: int
    pad_before: int  # taps before the first input pixel (TFLM's padding_values + folded PAD)


def out_size(padding: str, in_size: int, filter_size: int, stride: int, dilation: int) -> int:
    """TFLite's ComputeOutSize."""
    effective = (filter_size - 1) * dilation + 1
    if padding == "SAME":
        return (in_size + stride - 1) // stride
    return (in_size + stride - effective) // stride


def padding_before(stride: int, dilation: int, in_size: int, filter_size: int, out: int) -> int:
    """TFLite's ComputePaddingWithOffset (the leading half; the odd pixel goes after)."""
    effective = (filter_size - 1) * dilation + 1
    total = max((out - 1) * stride + effective - in_size, 0)
    return total // 2


def windows(op: Op, g: Graph, filter_h: int, filter_w: int) -> tuple[Window, Window]:
    """The (height, width) windows, adding a folded PAD (attrs["explicit_padding"]) to the
    padding TFLite computes from `padding` on the size the original, padded input had."""
    x = g.t(op.inputs[0])
    _, h, w, _ = x.shape
    top, bottom, left, right = op.attrs.get("explicit_padding", (0, 0, 0, 0))
    a = op.attrs
    out = []
    for size, before, after, f, s, d in (
            (h, top, bottom, filter_h, a["stride_h"], a["dilation_h_factor"]),
            (w, left, right, filter_w, a["stride_w"], a["dilation_w_factor"])):
        padded = size + before + after
        o = out_size(a["padding"], padded, f, s, d)
        p = padding_before(s, d, padded, f, o)
        out.append(Window(in_size=size, filter_size=f, stride=s, dilation=d, out_size=o,
                          pad_before=p + before))
    return out[0], out[1]


def check_common(op: Op, g: Graph, kind: str, channel_axis: int) -> None:
    """The dtype, quantization and attribute rules both int8 convolutions share.

    channel_axis: the filter axis TFLM takes per-channel scales along (0 for CONV_2D's OHWI,
    3 for DEPTHWISE_CONV_2D's 1HWC).
    """
    if len(op.inputs) < 2 or op.inputs[0] is None or op.inputs[1] is None or len(op.outputs) != 1:
        raise unsupported(op, g, f"{kind} needs an input, a filter, an optional bias and one output")
    x, w, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
    bias = g.t(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] is not None else None

    if x.dtype == "float32" or w.dtype == "float32":
        raise unsupported(op, g, f"float32 {kind}: tinyc needs an int8-quantized model "
                                 "(full-integer quantization)")
    if x.dtype == "int16":
        raise unsupported(op, g, f"int16 activations (16x8 quantization) in {kind} are not supported; "
                                 "tinyc supports int8 input and output with int8 weights")
    if x.dtype != "int8" or y.dtype != "int8" or w.dtype != "int8":
        raise unsupported(op, g, f"{kind} with {x.dtype} input, {w.dtype} filter and {y.dtype} output "
                                 "is not supported; tinyc supports int8 input, filter and output")
    if bias is not None and bias.dtype != "int32":
        raise unsupported(op, g, f"{kind} bias of dtype {bias.dtype} is not supported (int32 only)")
    if w.data is None:
        raise unsupported(op, g, f"{kind} with a filter computed at run time is not supported "
                                 "(the filter must be a constant)")
    if bias is not None and bias.data is None:
        raise unsupported(op, g, f"{kind} with a bias computed at run time is not supported")
    for t, what in ((x, "input"), (y, "output")):
        if len(t.shape) != 4:
            raise unsupported(op, g, f"{kind} {what} of rank {len(t.shape)} is not supported (NHWC, rank 4)")
        if t.quant is None:
            raise unsupported(op, g, f"{kind} {what} has no quantization parameters")
        if t.quant.per_channel:
            raise unsupported(op, g, f"{kind} {what} has per-channel quantization; only the filter may")
        if not -128 <= t.quant.zp <= 127:
            raise unsupported(op, g, f"{kind} {what} zero point {t.quant.zp} is outside int8")
        if not t.quant.s > 0:
            raise unsupported(op, g, f"{kind} {what} scale {t.quant.s} is not positive")
    if len(w.shape) != 4:
        raise unsupported(op, g, f"{kind} filter of rank {len(w.shape)} is not supported (rank 4)")
    if w.quant is None:
        raise unsupported(op, g, f"{kind} filter has no quantization parameters")
    if any(z != 0 for z in w.quant.zero_point):
        raise unsupported(op, g, f"{kind} filter zero points must be 0 (symmetric int8 weights), "
                                 f"got {sorted(set(w.quant.zero_point))}")
    n_ch = w.shape[channel_axis]
    if w.quant.per_channel and (len(w.quant.scale) != n_ch or w.quant.axis != channel_axis):
        raise unsupported(op, g, f"{kind} filter has {len(w.quant.scale)} scales along axis "
                                 f"{w.quant.axis}; TFLM needs one per tensor or one per output channel "
                                 f"({n_ch}) along axis {channel_axis}")
    if not all(math.isfinite(s) for s in w.quant.scale):
        raise unsupported(op, g, f"{kind} filter has a scale that is not finite")
    # Zero and negative filter scales occur in real models (MCUNet: pruned and sign-folded
    # channels); TFLM turns them into a zero or negative Q31 multiplier, and so do we.
    if bias is not None and bias.size != n_ch:
        raise unsupported(op, g, f"{kind} bias has {bias.size} values for {n_ch} output channels")

    a = op.attrs
    act = a.get("fused_activation_function", "NONE")
    if act not in FUSED_ACTIVATIONS:
        raise unsupported(op, g, f"fused activation {act} on {kind} is not supported "
                                 f"(supported: {', '.join(FUSED_ACTIVATIONS)})")
    if a.get("padding") not in ("SAME", "VALID"):
        raise unsupported(op, g, f"{kind} padding {a.get('padding')!r} is not supported (SAME or VALID)")
    for k in ("stride_h", "stride_w", "dilation_h_factor", "dilation_w_factor"):
        if not isinstance(a.get(k), int) or a[k] < 1:
            raise unsupported(op, g, f"{kind} {k} = {a.get(k)!r} is not supported (must be >= 1)")
    pads = a.get("explicit_padding", (0, 0, 0, 0))
    if len(pads) != 4 or any(p < 0 for p in pads):
        raise unsupported(op, g, f"{kind} explicit padding {pads} is not supported")


def check_shapes(op: Op, g: Graph, kind: str, filter_h: int, filter_w: int, out_c: int) -> tuple[Window, Window]:
    """The output shape TFLM computes must be the one the model declares (TFLM loops over the
    declared shape but pads for the computed one: a mismatch would be silently wrong)."""
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    wh, ww = windows(op, g, filter_h, filter_w)
    if wh.out_size < 1 or ww.out_size < 1:
        raise unsupported(op, g, f"{kind} window ({filter_h}x{filter_w}, dilation "
                                 f"{wh.dilation}x{ww.dilation}) is larger than the padded input")
    want = (x.shape[0], wh.out_size, ww.out_size, out_c)
    if tuple(y.shape) != want:
        raise unsupported(op, g, f"{kind} output shape {list(y.shape)} differs from the {list(want)} "
                                 "the input, filter, strides and padding give")
    return wh, ww


def output_multipliers(x: Tensor, w: Tensor, y: Tensor, n_ch: int) -> tuple[np.ndarray, np.ndarray]:
    """PopulateConvolutionQuantizationParams: per channel, in double, from the float32 scales;
    a per-tensor filter scale is broadcast to every channel."""
    f32 = np.float32
    s_in, s_out = float(f32(x.quant.s)), float(f32(y.quant.s))
    scales = [float(f32(s)) for s in (w.quant.scale if w.quant.per_channel else w.quant.scale[:1] * n_ch)]
    return quantize_multiplier_array(np.array([s_in * s / s_out for s in scales], dtype=np.float64))


def check_accumulator(op: Op, g: Graph, kind: str, w_per_channel: np.ndarray, bias: np.ndarray | None) -> None:
    """The int32 accumulator must not overflow (TFLM relies on it silently; tinyc proves it).

    w_per_channel: the filter as (channels, taps). |x - zp| <= 255 for int8 input.
    """
    x = g.t(op.inputs[0])
    span = max(abs(-128 - x.quant.zp), abs(127 - x.quant.zp))
    bound = np.abs(w_per_channel.astype(np.int64)).sum(axis=1) * span
    if bias is not None:
        bound = bound + np.abs(bias.astype(np.int64))
    if int(bound.max(initial=0)) > INT32_MAX:
        raise unsupported(op, g, f"{kind} int32 accumulator could overflow (filter too large for "
                                 "int8 x int8 sums with this bias)")


def folded_bias(w_per_channel: np.ndarray, bias: np.ndarray | None, input_offset: int) -> np.ndarray | None:
    """bias + input_offset * (sum of each output channel's weights), w_per_channel as (channels,
    taps): a window wholly inside the input then needs no per-tap offset, since
    sum w * (x + offset) + bias = sum w * x + folded exactly. None when a folded value would not
    fit int32 (the kernels then add the offset per tap, as TFLM does). The sum w * x alone is
    bounded by 128 * sum |w|, within check_accumulator's bound: only the fold itself can overflow."""
    sums = w_per_channel.astype(np.int64).sum(axis=1)
    folded = sums * input_offset + (bias.astype(np.int64) if bias is not None else 0)
    if np.abs(folded).max(initial=0) > INT32_MAX:
        return None
    return folded.astype(np.int32)


def clamp_range(op: Op, y: Tensor) -> tuple[int, int]:
    """CalculateActivationRangeQuantized. TFLite divides in float32 (`f / scale`, both float)
    and rounds that float, so do the same: double division can land on the other side of .5."""
    return activation_range(op.attrs.get("fused_activation_function", "NONE"), y.quant.s, y.quant.zp, "int8")


def backward_geometry(op: Op, g: Graph, fh: int, fw: int, out_c: int, filter_in_c: int,
                      depth_multiplier: int) -> tuple[dict[str, int], np.ndarray]:
    """The backward kernels' geometry (tinyc_conv_bwd_params_t without w_scale) and the per output
    channel weight scales, for both convolutions (CONV_2D: depth_multiplier 0)."""
    n, h, w_, c = g.t(op.inputs[0]).shape
    wh, ww = windows(op, g, fh, fw)
    geom = dict(batches=n, in_h=h, in_w=w_, in_c=c, out_h=wh.out_size, out_w=ww.out_size, out_c=out_c,
                filter_h=fh, filter_w=fw, filter_in_c=filter_in_c, depth_multiplier=depth_multiplier,
                stride_h=wh.stride, stride_w=ww.stride, dilation_h=wh.dilation, dilation_w=ww.dilation,
                pad_top=wh.pad_before, pad_left=ww.pad_before)
    q = g.t(op.inputs[1]).quant
    scales = np.array(q.scale if q.per_channel else q.scale[:1] * out_c, dtype=np.float64)
    return geom, scales


def bias_of(op: Op, g: Graph) -> str | None:
    return op.inputs[2] if len(op.inputs) > 2 else None


class WindowConv(OpSupport):
    """What CONV_2D and DEPTHWISE_CONV_2D share beyond the math: both kernels (conv.c,
    depthwise_conv.c) write output pixels in row-major order, every channel of a pixel before
    the next, reading only the window of the pixel being written, and in the reverse order
    when the output starts above the input (memmove style); both absorb a folded PAD."""

    def overlap(self, op: Op, g: Graph) -> OverlapSpec | None:
        """The output may start below the input, or above it, by the distances window_overlap
        proves (1x1 expansion: the input in the output's tail or, descending, in its head;
        stride-1 depthwise: about one input row either way)."""
        if op.attrs.get("split"):
            return None  # the split-weights kernel (training) has no descending order
        x, w, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
        wh, ww = windows(op, g, w.shape[1], w.shape[2])
        return window_overlap(x.shape, y.shape, (wh.stride, ww.stride), wh.pad_before, ww.pad_before,
                              reverse_window=(wh.filter_size, ww.filter_size, wh.dilation, ww.dilation))

    def absorbs_pad(self, op: Op, g: Graph) -> bool:
        return op.attrs.get("padding") in ("SAME", "VALID")

    def spatial(self, op: Op, g: Graph) -> SpatialWindow | None:
        x, w = g.t(op.inputs[0]), g.t(op.inputs[1])
        if len(x.shape) != 4 or x.shape[0] != 1:
            return None
        wh, ww = windows(op, g, w.shape[1], w.shape[2])
        return SpatialWindow(filter=(wh.filter_size, ww.filter_size), stride=(wh.stride, ww.stride),
                             dilation=(wh.dilation, ww.dilation), pad_before=(wh.pad_before, ww.pad_before))

    def on_patch(self, op: Op, g: Graph, padding: tuple[int, int, int, int]) -> dict[str, Any]:
        """VALID over the patch plus exactly the border padding: `windows` then gives
        pad_before = top/left, the unsplit op's taps."""
        return {**op.attrs, "padding": "VALID", "explicit_padding": tuple(padding)}
