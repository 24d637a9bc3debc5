"""AVERAGE_POOL_2D and MAX_POOL_2D, int8 NHWC (runtime_c/src/pooling.c).

TFLM's Prepare, done here: padding from ComputePaddingHeightWidth, activation bounds from
CalculateActivationRangeQuantized. TFLM refuses pooling whose input and output quantization
differ (|scale difference| > 1e-6 or different zero points), because the kernel does not
requantize; so do we.
"""

from __future__ import annotations

from tinyc.ir import Graph, Op
from typing import Any

from tinyc.ops import _train_math as tm
from tinyc.ops.base import Arg, Backward, GradContext, KernelCall, OpSupport, OverlapSpec, SpatialWindow, unsupported, window_overlap
from tinyc.ops.registry import register
from tinyc.quant import activation_range

_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def out_size(padding: str, size: int, filt: int, stride: int) -> int:
    """TFLite's ComputeOutSize (dilation 1); C++ truncating division."""
    if padding == "SAME":
        return (size + stride - 1) // stride
    n = size + stride - filt
    return int(n / stride) if n < 0 else n // stride


def pad_before(size: int, filt: int, stride: int, out: int) -> int:
    """TFLite's ComputePadding: the top/left padding; any odd extra goes to the bottom/right."""
    total = (out - 1) * stride + filt - size
    return max(total // 2, 0)


class _Pool(OpSupport):
    c_function = ""

    def _geometry(self, op: Op, g: Graph) -> dict[str, int]:
        x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
        n, h, w, c = x.shape
        a = op.attrs
        fh, fw = int(a.get("filter_height", 0)), int(a.get("filter_width", 0))
        sh, sw = int(a.get("stride_h", 0)), int(a.get("stride_w", 0))
        pad = a.get("padding", "SAME")
        # explicit_padding: a patch of the op (tinyc.schedule) padded only at the map border.
        top, bottom, left, right = a.get("explicit_padding", (0, 0, 0, 0))
        ph, pw = h + top + bottom, w + left + right
        oh, ow = out_size(pad, ph, fh, sh), out_size(pad, pw, fw, sw)
        return dict(batches=n, in_h=h, in_w=w, depth=c, out_h=oh, out_w=ow, filter_h=fh, filter_w=fw,
                    stride_h=sh, stride_w=sw, pad_h=pad_before(ph, fh, sh, oh) + top,
                    pad_w=pad_before(pw, fw, sw, ow) + left)

    def check(self, op: Op, g: Graph) -> None:
        if len(op.inputs) != 1 or op.inputs[0] is None or len(op.outputs) != 1:
            raise unsupported(op, g, "expects one input and one output")
        x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
        if x.dtype != "int8" or y.dtype != "int8":
            raise unsupported(op, g, f"{x.dtype} -> {y.dtype} pooling is not supported (int8 only: "
                                     f"tinyc needs an int8-quantized model)")
        if len(x.shape) != 4 or len(y.shape) != 4:
            raise unsupported(op, g, "input and output must be 4-D NHWC")
        if x.quant is None or y.quant is None:
            raise unsupported(op, g, "int8 pooling needs quantized input and output")
        if abs(x.quant.s - y.quant.s) > 1e-6 or x.quant.zp != y.quant.zp:
            raise unsupported(op, g, f"input (scale {x.quant.s}, zero point {x.quant.zp}) and output (scale "
                                     f"{y.quant.s}, zero point {y.quant.zp}) quantization differ; TFLM's pooling "
                                     f"does not requantize and rejects this, so does tinyc")
        act = op.attrs.get("fused_activation_function", "NONE")
        if act not in _ACTIVATIONS:
            raise unsupported(op, g, f"fused activation {act} is not supported (supported: {', '.join(_ACTIVATIONS)})")
        pad = op.attrs.get("padding", "SAME")
        if pad not in ("SAME", "VALID"):
            raise unsupported(op, g, f"padding {pad} is not supported (SAME or VALID)")
        a = op.attrs
        for k in ("filter_height", "filter_width", "stride_h", "stride_w"):
            if int(a.get(k, 0)) < 1:
                raise unsupported(op, g, f"{k} = {a.get(k, 0)} must be at least 1")
        geo = self._geometry(op, g)
        want = (geo["batches"], geo["out_h"], geo["out_w"], geo["depth"])
        if tuple(y.shape) != want:
            raise unsupported(op, g, f"output shape {list(y.shape)} does not match the {pad} pooling shape "
                                     f"{list(want)}")
        if self.c_function == "tinyc_avgpool_s8":
            # TFLM's AveragePool returns an error when a window covers no input pixel.
            for o, size, f, s, p in ((geo["out_h"], geo["in_h"], geo["filter_h"], geo["stride_h"], geo["pad_h"]),
                                     (geo["out_w"], geo["in_w"], geo["filter_w"], geo["stride_w"], geo["pad_w"])):
                for i in range(o):
                    origin = i * s - p
                    if min(f, size - origin) <= max(0, -origin):
                        raise unsupported(op, g, "a pooling window lies entirely in the padding (TFLM fails "
                                                 "on this shape)")

    def macs(self, op: Op, g: Graph) -> int:
        a = op.attrs
        return g.t(op.outputs[0]).size * int(a.get("filter_height", 1)) * int(a.get("filter_width", 1))

    def overlap(self, op: Op, g: Graph) -> OverlapSpec | None:
        """pooling.c writes output pixels in row-major order, all channels of a pixel together,
        reading only that pixel's window."""
        geo = self._geometry(op, g)
        return window_overlap(g.t(op.inputs[0]).shape, g.t(op.outputs[0]).shape,
                              (geo["stride_h"], geo["stride_w"]), geo["pad_h"], geo["pad_w"])

    def spatial(self, op: Op, g: Graph) -> SpatialWindow | None:
        geo = self._geometry(op, g)
        if geo["batches"] != 1:
            return None
        return SpatialWindow(filter=(geo["filter_h"], geo["filter_w"]), stride=(geo["stride_h"], geo["stride_w"]),
                             pad_before=(geo["pad_h"], geo["pad_w"]))

    def on_patch(self, op: Op, g: Graph, padding: tuple[int, int, int, int]) -> dict[str, Any]:
        return {**op.attrs, "padding": "VALID", "explicit_padding": tuple(padding)}

    def lower(self, op: Op, g: Graph) -> KernelCall:
        y = g.t(op.outputs[0])
        act = op.attrs.get("fused_activation_function", "NONE")
        lo, hi = activation_range(act, y.quant.s, y.quant.zp, "int8")
        geo = self._geometry(op, g)
        params = dict(geo, act_min=lo, act_max=hi)
        comment = (f"{geo['filter_h']}x{geo['filter_w']} stride {geo['stride_h']}x{geo['stride_w']} "
                   f"{op.attrs.get('padding', 'SAME')}" + (f" {act}" if act != "NONE" else ""))
        return KernelCall(function=self.c_function, header="tinyc/pooling.h", sources=("pooling.c",),
                          params_type="tinyc_pool_params_t", params=params,
                          args=(Arg("in", op.inputs[0]), Arg("out", op.outputs[0])), comment=comment)


@register("AVERAGE_POOL_2D")
class AveragePool2D(_Pool):
    c_function = "tinyc_avgpool_s8"

    def backward(self, op: Op, g: Graph, ctx: GradContext) -> Backward:
        """Each input tap of a window gets d(y) / (the window's taps inside the input)."""
        saves, ops, dz = tm.activation_mask(op, g, ctx, op.outputs[0], op.attrs.get("fused_activation_function", "NONE"))
        if not (ctx.want and ctx.want[0]):
            return Backward(saves=tuple(saves), ops=tuple(ops))
        dx = ctx.new_tensor(f"dx{op.index}", g.t(op.inputs[0]).shape, "float32")
        params = dict(self._geometry(op, g), act_min=-128, act_max=127)
        ops.append(tm.grad_step(op, "tinyc_avgpool_backward_f32", "tinyc/train_pooling.h", "train_pooling.c",
                                "tinyc_pool_params_t", params, (Arg("in", dz), Arg("out", dx)), "d(input)",
                                macs=self.macs(op, g)))
        return Backward(saves=tuple(saves), ops=tuple(ops), grads={0: dx})


@register("MAX_POOL_2D")
class MaxPool2D(_Pool):
    c_function = "tinyc_maxpool_s8"
