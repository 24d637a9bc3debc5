"""Element-wise int8 activations: TFLM's Prepare at compile time, Eval in runtime_c/src/activations.c.

- RELU (activations_common.cc CalculateReluOpData): requantized by input/output scale, clamped
  at the output zero point.
- RELU6 (Relu6Prepare): TFLM clamps to [input zero point, 6.0 in the input's quantization] and
  does not requantize; the output tensor's scale and zero point are ignored, and so does tinyc.
- RELU_N1_TO_1: TFLM has no kernel for it; tinyc computes what LiteRT's reference does (RELU's
  requantization, clamped to [-1, 1] in the output's quantization).
- LEAKY_RELU (leaky_relu_common.cc): identity and alpha multipliers (in double, as the TFLM
  build tinyc is checked against computes them); a negative alpha negates the alpha branch as
  the current TFLM does.
- LOGISTIC, TANH (logistic_common.cc, tanh.cc): gemmlowp fixed point on a Q4.27 input; output
  zero point -128 for LOGISTIC (TFLM checks it); both kernels produce their fixed output scale
  (1/256 and 1/128) whatever the output tensor says, as TFLM does.
- HARD_SWISH (hard_swish_common.cc): TFLM's 16-bit fixed-point reference.
"""

from __future__ import annotations

from tinyc.ir import Graph, Op, Tensor
from tinyc.ops._activations_math import (f32, hard_swish_params, sigmoid_input_params)
from tinyc.ops import _train_math as tm
from tinyc.ops.base import (Arg, Backward, GradContext, KernelCall, OpSupport, OverlapSpec, SpatialWindow, elementwise_overlap,
                             pointwise_spatial, unsupported)
from tinyc.ops.registry import register
from tinyc.quant import activation_range, quantize_multiplier, tflite_round

HEADER = "tinyc/activations.h"
SOURCES = ("activations.c",)


def _io(op: Op, g: Graph) -> tuple[Tensor, Tensor]:
    """The checks every int8 activation shares: one int8 input, one int8 output, same size,
    per-tensor quantization."""
    if len(op.inputs) != 1 or op.inputs[0] is None or len(op.outputs) != 1:
        raise unsupported(op, g, f"{op.kind} needs one input and one output")
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    if x.dtype == "float32" or y.dtype == "float32":
        raise unsupported(op, g, f"float32 {op.kind}: tinyc needs an int8-quantized model "
                                 "(full-integer quantization)")
    if x.dtype != "int8" or y.dtype != "int8":
        raise unsupported(op, g, f"{op.kind} with {x.dtype} input and {y.dtype} output is not supported "
                                 "(int8 only)")
    for t, what in ((x, "input"), (y, "output")):
        if t.quant is None or t.quant.per_channel:
            raise unsupported(op, g, f"{op.kind} {what} needs per-tensor quantization")
        if not -128 <= t.quant.zp <= 127 or not t.quant.s > 0:
            raise unsupported(op, g, f"{op.kind} {what} quantization (scale {t.quant.s}, zero point "
                                     f"{t.quant.zp}) is not valid int8")
    if x.size != y.size:
        raise unsupported(op, g, f"{op.kind} input and output sizes differ ({x.size} vs {y.size})")
    return x, y


def _call(op: Op, fn: str, params_type: str, params: dict, comment: str = "") -> KernelCall:
    return KernelCall(function=fn, header=HEADER, sources=SOURCES, params_type=params_type, params=params,
                      args=(Arg("in", op.inputs[0]), Arg("out", op.outputs[0])), comment=comment)


class _Activation(OpSupport):
    """What every activation kernel in activations.c shares: one pass over the elements in
    index order, reading element i just before writing element i."""

    def overlap(self, op: Op, g: Graph) -> OverlapSpec | None:
        return elementwise_overlap(1, 1, g.t(op.outputs[0]).size)


@register("RELU", "RELU_N1_TO_1")
class Relu(_Activation):
    def spatial(self, op: Op, g: Graph) -> SpatialWindow | None:
        return pointwise_spatial(op, g)

    def check(self, op: Op, g: Graph) -> None:
        _io(op, g)

    def lower(self, op: Op, g: Graph) -> KernelCall:
        x, y = _io(op, g)
        # ReluPrepare: double(input_scale) / double(output_scale)
        mult, shift = quantize_multiplier(x.quant.s / y.quant.s)
        act_min, act_max = activation_range("RELU" if op.kind == "RELU" else "RELU_N1_TO_1",
                                                y.quant.s, y.quant.zp)
        params = dict(size=x.size, input_zero_point=x.quant.zp, output_zero_point=y.quant.zp,
                      output_multiplier=mult, output_shift=shift, act_min=act_min, act_max=act_max)
        return _call(op, "tinyc_relu_s8", "tinyc_relu_params_t", params)

    def backward(self, op: Op, g: Graph, ctx: GradContext) -> Backward:
        return tm.masked_pointwise_backward(op, g, ctx, op.kind)


@register("RELU6")
class Relu6(_Activation):
    def spatial(self, op: Op, g: Graph) -> SpatialWindow | None:
        return pointwise_spatial(op, g)

    def check(self, op: Op, g: Graph) -> None:
        _io(op, g)

    def lower(self, op: Op, g: Graph) -> KernelCall:
        x, _ = _io(op, g)
        # FloatToQuantizedType<int8_t>(6.0f, scale, zp): round(6.0f / scale) in float, + zp, clamped
        six = tflite_round(float(f32(6.0) / f32(x.quant.s))) + x.quant.zp
        six = max(-128, min(127, six))
        params = dict(size=x.size, lower=x.quant.zp, upper=six)
        return _call(op, "tinyc_relu6_s8", "tinyc_relu6_params_t", params,
                     "clamp in the input's quantization (TFLM does not requantize RELU6)")

    def backward(self, op: Op, g: Graph, ctx: GradContext) -> Backward:
        return tm.masked_pointwise_backward(op, g, ctx, "RELU6")


@register("LEAKY_RELU")
class LeakyRelu(_Activation):
    def spatial(self, op: Op, g: Graph) -> SpatialWindow | None:
        return pointwise_spatial(op, g)

    def check(self, op: Op, g: Graph) -> None:
        _io(op, g)

    def lower(self, op: Op, g: Graph) -> KernelCall:
        x, y = _io(op, g)
        alpha = float(f32(op.attrs.get("alpha", 0.0)))
        # The TFLM that tinyc is checked against computes both multipliers in double from the
        # float32 scales and alpha (older sources show a float32 product: it rounds differently
        # at exact ties, e.g. scales 0.05/0.04 with alpha 1.7).
        m_alpha, sh_alpha = quantize_multiplier(x.quant.s * alpha / y.quant.s)
        m_id, sh_id = quantize_multiplier(x.quant.s / y.quant.s)
        params = dict(size=x.size, input_zero_point=x.quant.zp, output_zero_point=y.quant.zp,
                      output_multiplier_identity=m_id, output_shift_identity=sh_id,
                      output_multiplier_alpha=abs(m_alpha), output_shift_alpha=sh_alpha,
                      alpha_negative=1 if m_alpha < 0 else 0)
        return _call(op, "tinyc_leaky_relu_s8", "tinyc_leaky_relu_params_t", params, f"alpha {alpha}")


class _Sigmoid(_Activation):
    """LOGISTIC and TANH share TFLM's input rescaling to Q4.27."""

    function = ""

    def spatial(self, op: Op, g: Graph) -> SpatialWindow | None:
        return pointwise_spatial(op, g)

    def check(self, op: Op, g: Graph) -> None:
        x, y = _io(op, g)
        if op.kind == "LOGISTIC" and y.quant.zp != -128:
            raise unsupported(op, g, f"LOGISTIC output zero point must be -128 as TFLM requires "
                                     f"(got {y.quant.zp})")
        if sigmoid_input_params(x.quant.s) is None:
            raise unsupported(op, g, f"{op.kind} input scale {x.quant.s} is too small (below 2^-28)")

    def lower(self, op: Op, g: Graph) -> KernelCall:
        self.check(op, g)
        x = g.t(op.inputs[0])
        pr = sigmoid_input_params(x.quant.s)
        assert pr is not None
        mult, left_shift, radius = pr
        params = dict(size=x.size, input_zero_point=x.quant.zp, input_range_radius=radius,
                      input_multiplier=mult, input_left_shift=left_shift)
        return _call(op, self.function, "tinyc_sigmoid_params_t", params)


@register("LOGISTIC")
class Logistic(_Sigmoid):
    function = "tinyc_logistic_s8"

    def backward(self, op: Op, g: Graph, ctx: GradContext) -> Backward:
        """d(x) = d(y) * y (1 - y), from the saved int8 output."""
        return _saved_backward(op, g, ctx, "tinyc_logistic_backward_f32", op.outputs[0])


def _saved_backward(op: Op, g: Graph, ctx: GradContext, function: str, saved: str) -> Backward:
    if not (ctx.want and ctx.want[0]):
        return Backward()
    t = g.t(saved)
    dx = ctx.new_tensor(f"dx{op.index}", g.t(op.inputs[0]).shape, "float32")
    step = tm.grad_step(op, function, "tinyc/train_elementwise.h", "train_elementwise.c", "tinyc_act_bwd_params_t",
                        dict(n=t.size, scale=f32(t.quant.s), zp=int(t.quant.zp)),
                        (Arg("in", ctx.dy), Arg("in", saved), Arg("out", dx)), "d(input)",
                        overlap=elementwise_overlap(4, 4, t.size))
    return Backward(ops=(step,), grads={0: dx})


@register("TANH")
class Tanh(_Sigmoid):
    function = "tinyc_tanh_s8"


@register("HARD_SWISH")
class HardSwish(_Activation):
    def spatial(self, op: Op, g: Graph) -> SpatialWindow | None:
        return pointwise_spatial(op, g)

    def check(self, op: Op, g: Graph) -> None:
        x, y = _io(op, g)
        _, out_e, _, _ = hard_swish_params(x.quant.s, y.quant.s)
        if out_e > 0:
            raise unsupported(op, g, f"HARD_SWISH output scale {y.quant.s} is too small for input scale "
                                     f"{x.quant.s}: TFLM needs input_scale / 128 / output_scale < 1")

    def lower(self, op: Op, g: Graph) -> KernelCall:
        self.check(op, g)
        x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
        out_m, out_e, rel_m, rel_e = hard_swish_params(x.quant.s, y.quant.s)
        params = dict(size=x.size, input_zero_point=x.quant.zp, output_zero_point=y.quant.zp,
                      output_multiplier_fixedpoint_int16=out_m, reluish_multiplier_fixedpoint_int16=rel_m,
                      output_multiplier_exponent=out_e, reluish_multiplier_exponent=rel_e)
        return _call(op, "tinyc_hard_swish_s8", "tinyc_hard_swish_params_t", params)

    def backward(self, op: Op, g: Graph, ctx: GradContext) -> Backward:
        """d(x) = d(y) * hard_swish'(x), from the saved int8 input."""
        return _saved_backward(op, g, ctx, "tinyc_hard_swish_backward_f32", op.inputs[0])
