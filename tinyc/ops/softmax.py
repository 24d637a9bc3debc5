"""SOFTMAX, int8 input: TFLM's Prepare (micro/kernels/softmax_common.cc) at compile time, Eval in
runtime_c/src/softmax.c (gemmlowp fixed-point exp and reciprocal, as reference_ops::Softmax).

Supported: int8 input of any rank >= 1 (softmax over the last dimension), any beta with
beta * input_scale * 2^26 > 1 (TFLM aborts below that), and the output TFLM requires:
int8 with scale 1/256 and zero point -128, or int16 with scale 1/65536 and zero point -32768.
int16 input (TFLM's LUT kernel) is not supported.
"""

from __future__ import annotations

import numpy as np

from tinyc.ir import Graph, Op
from tinyc.ops._activations_math import calculate_input_radius, preprocess_softmax_scaling
from tinyc.ops.base import Arg, KernelCall, OpSupport, unsupported
from tinyc.ops.registry import register

KIND = "SOFTMAX"
SCALED_DIFF_INTEGER_BITS = 5


def _scaling(op: Op, g: Graph) -> tuple[int, int] | None:
    x = g.t(op.inputs[0])
    return preprocess_softmax_scaling(float(op.attrs.get("beta", 1.0)), x.quant.s, SCALED_DIFF_INTEGER_BITS)


@register("SOFTMAX")
class Softmax(OpSupport):
    def loss_head(self, op: Op, g: Graph) -> float | None:
        """Training's loss is softmax cross-entropy on this op's input, with its beta."""
        return float(op.attrs.get("beta", 1.0))

    def check(self, op: Op, g: Graph) -> None:
        if len(op.inputs) != 1 or op.inputs[0] is None or len(op.outputs) != 1:
            raise unsupported(op, g, f"{KIND} needs one input and one output")
        x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
        if x.dtype == "float32" or y.dtype == "float32":
            raise unsupported(op, g, f"float32 {KIND}: tinyc needs an int8-quantized model "
                                     "(full-integer quantization)")
        if x.dtype != "int8" or y.dtype not in ("int8", "int16"):
            raise unsupported(op, g, f"{KIND} with {x.dtype} input and {y.dtype} output is not supported; "
                                     "tinyc supports int8 input with int8 or int16 output")
        for t, what in ((x, "input"), (y, "output")):
            if t.quant is None or t.quant.per_channel:
                raise unsupported(op, g, f"{KIND} {what} needs per-tensor quantization")
        if not -128 <= x.quant.zp <= 127 or not x.quant.s > 0:
            raise unsupported(op, g, f"{KIND} input quantization (scale {x.quant.s}, zero point "
                                     f"{x.quant.zp}) is not valid int8")
        if y.dtype == "int8":
            if y.quant.zp != -128 or np.float32(y.quant.s) != np.float32(1.0 / 256):
                raise unsupported(op, g, f"int8 {KIND} output must have scale 1/256 and zero point -128 "
                                         f"as TFLM requires (got scale {y.quant.s}, zero point {y.quant.zp})")
        else:
            delta = abs(np.float32(y.quant.s) - np.float32(1.0 / 65536))
            if y.quant.zp != -32768 or delta > np.float32(0.001) * np.float32(1.0 / 65536):
                raise unsupported(op, g, f"int16 {KIND} output must have scale 1/65536 and zero point -32768 "
                                         f"as TFLM requires (got scale {y.quant.s}, zero point {y.quant.zp})")
        if not x.shape or tuple(x.shape) != tuple(y.shape):
            raise unsupported(op, g, f"{KIND} input and output shapes must be equal and of rank >= 1 "
                                     f"({list(x.shape)} vs {list(y.shape)})")
        beta = op.attrs.get("beta", 1.0)
        if _scaling(op, g) is None:
            raise unsupported(op, g, f"{KIND} beta {beta} x input scale {x.quant.s} is too small: TFLM needs "
                                     "beta * input_scale * 2^26 > 1")

    def lower(self, op: Op, g: Graph) -> KernelCall:
        self.check(op, g)
        x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
        scaling = _scaling(op, g)
        assert scaling is not None
        input_multiplier, input_left_shift = scaling
        # TFLM: diff_min = -1.0 * CalculateInputRadius(...), stored in an int
        diff_min = -calculate_input_radius(SCALED_DIFF_INTEGER_BITS, input_left_shift)
        depth = x.shape[-1]
        params = dict(outer_size=x.size // depth if depth else 0, depth=depth,
                      input_multiplier=input_multiplier, input_left_shift=input_left_shift, diff_min=diff_min)
        fn = "tinyc_softmax_s8" if y.dtype == "int8" else "tinyc_softmax_s8_s16"
        return KernelCall(function=fn, header="tinyc/softmax.h", sources=("softmax.c",),
                          params_type="tinyc_softmax_params_t", params=params,
                          args=(Arg("in", op.inputs[0]), Arg("out", op.outputs[0])),
                          comment=f"SOFTMAX beta {op.attrs.get('beta', 1.0)} over {depth}")
