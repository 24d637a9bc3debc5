"""QUANTIZE and DEQUANTIZE: the float boundary of a model, and integer requantization.

TFLM's Prepare (tensorflow/lite/micro/kernels/quantize_common.cc, dequantize_common.cc):

- float32 -> int8/uint8: q = round(x / s) + z with a float32 division and std::round; the
  kernel gets the model's float32 scale as is (no reciprocal: that would round differently).
- int8 -> int8, int8 -> uint8, uint8 -> int8: a requantization by s_in / s_out
  (QuantizeMultiplier in double, MultiplyByQuantizedMultiplier at run time). TFLM's XOR-0x80
  fast path for a pure zero-point shift of 128 produces the same bytes, so it needs no variant.
- int8/uint8 -> float32: x = s * (q - z).

float32 -> uint8 is not in TFLM's reference QUANTIZE (it refuses it at run time); tinyc
implements it with the same formula as float32 -> int8, which is what LiteRT's reference
kernel computes.
"""

from __future__ import annotations

import numpy as np

from tinyc.ir import DTYPE_BYTES, Graph, Op, Tensor
from tinyc.ops import _train_math as tm
from tinyc.ops.base import (Arg, Backward, GradContext, KernelCall, OpSupport, OverlapSpec, SpatialWindow, elementwise_overlap,
                             pointwise_spatial, unsupported)
from tinyc.ops.registry import register
from tinyc.quant import quantize_multiplier

_SHORT = {"int8": "s8", "uint8": "u8", "float32": "f32"}
QUANTIZE_PAIRS = {("float32", "int8"), ("float32", "uint8"), ("int8", "int8"), ("int8", "uint8"),
                  ("uint8", "int8")}
DEQUANTIZE_PAIRS = {("int8", "float32"), ("uint8", "float32")}


def _per_tensor(t: Tensor) -> bool:
    return t.quant is not None and len(t.quant.scale) == 1


def _check_io(op: Op, g: Graph, pairs: set[tuple[str, str]]) -> tuple[Tensor, Tensor]:
    if len([n for n in op.inputs if n is not None]) != 1 or len(op.outputs) != 1:
        raise unsupported(op, g, f"{op.kind} needs one input and one output")
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    if (x.dtype, y.dtype) not in pairs:
        ok = ", ".join(f"{a}->{b}" for a, b in sorted(pairs))
        raise unsupported(op, g, f"{op.kind} {x.dtype}->{y.dtype} is not supported (supported: {ok})")
    for t in (x, y):
        if t.dtype != "float32" and not _per_tensor(t):
            raise unsupported(op, g, f"{op.kind}: tensor {t.name} must have per-tensor quantization"
                                     f"{' (it is per-channel)' if t.quant is not None else ' (it has none)'}")
    if x.size != y.size:
        raise unsupported(op, g, f"{op.kind}: input and output sizes differ ({x.size} vs {y.size})")
    return x, y


def _elementwise(op: Op, g: Graph) -> OverlapSpec | None:
    """quantize.c converts element i (reading it) before it writes element i, in index order,
    so the output may overlap the input, whatever the two element sizes."""
    x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
    if x.is_const or x.size != y.size:
        return None
    return elementwise_overlap(DTYPE_BYTES[x.dtype], DTYPE_BYTES[y.dtype], y.size)


@register("QUANTIZE")
class Quantize(OpSupport):
    def loss_head(self, op: Op, g: Graph) -> float | None:
        return 1.0  # a change of scale or type: the arg-max and the loss see the same logits

    def keeps_values(self, op: Op, g: Graph) -> bool:
        return True

    def backward(self, op: Op, g: Graph, ctx: GradContext) -> Backward:
        return tm.identity_backward(op, g, ctx)

    def spatial(self, op: Op, g: Graph) -> SpatialWindow | None:
        return pointwise_spatial(op, g)

    def check(self, op: Op, g: Graph) -> None:
        _check_io(op, g, QUANTIZE_PAIRS)

    def overlap(self, op: Op, g: Graph) -> OverlapSpec | None:
        return _elementwise(op, g)

    def lower(self, op: Op, g: Graph) -> KernelCall:
        x, y = _check_io(op, g, QUANTIZE_PAIRS)
        fn = f"tinyc_{'quantize' if x.dtype == 'float32' else 'requantize'}_{_SHORT[x.dtype]}_{_SHORT[y.dtype]}"
        args = (Arg("in", op.inputs[0]), Arg("out", op.outputs[0]))
        if x.dtype == "float32":
            scale = np.float32(y.quant.s)
            return KernelCall(function=fn, header="tinyc/quantize.h", sources=("quantize.c",),
                              params_type="tinyc_quantize_params_t",
                              params=dict(size=y.size, scale=scale, zero_point=y.quant.zp), args=args,
                              comment=f"x / {float(scale)!r} + {y.quant.zp}")
        mult, shift = quantize_multiplier(float(x.quant.s) / float(y.quant.s))
        return KernelCall(function=fn, header="tinyc/quantize.h", sources=("quantize.c",),
                          params_type="tinyc_requantize_params_t",
                          params=dict(size=y.size, input_offset=-x.quant.zp, output_offset=y.quant.zp,
                                      multiplier=mult, shift=shift), args=args,
                          comment=f"zero point {x.quant.zp} -> {y.quant.zp}, scale x{x.quant.s / y.quant.s:.6g}")


@register("DEQUANTIZE")
class Dequantize(OpSupport):
    def loss_head(self, op: Op, g: Graph) -> float | None:
        return 1.0  # a change of scale or type: the arg-max and the loss see the same logits

    def keeps_values(self, op: Op, g: Graph) -> bool:
        return True

    def backward(self, op: Op, g: Graph, ctx: GradContext) -> Backward:
        return tm.identity_backward(op, g, ctx)

    def check(self, op: Op, g: Graph) -> None:
        if op.inputs and op.inputs[0] is not None and g.t(op.inputs[0]).is_const:
            if self.fold(op, g) is not None:
                return  # folded at compile time, whatever its quantization
        _check_io(op, g, DEQUANTIZE_PAIRS)

    def overlap(self, op: Op, g: Graph) -> OverlapSpec | None:
        return _elementwise(op, g)

    def fold(self, op: Op, g: Graph) -> list[np.ndarray] | None:
        """A constant's dequantized value (float weights of a hybrid graph), as TFLM computes it:
        float32(double(scale) * (q - zero_point)), per channel when the tensor is."""
        x = g.t(op.inputs[0]) if op.inputs and op.inputs[0] is not None else None
        if x is None or not x.is_const or x.quant is None or x.dtype not in ("int8", "uint8", "int16"):
            return None
        q = np.asarray(x.data, dtype=np.float64)
        shape = [1] * q.ndim
        if x.quant.per_channel:
            shape[x.quant.axis] = len(x.quant.scale)
        s = np.asarray(x.quant.scale, dtype=np.float64).reshape(shape)
        z = np.asarray(x.quant.zero_point, dtype=np.float64).reshape(shape)
        return [(s * (q - z)).astype(np.float32)]

    def lower(self, op: Op, g: Graph) -> KernelCall:
        x, y = _check_io(op, g, DEQUANTIZE_PAIRS)
        scale = np.float32(x.quant.s)
        return KernelCall(function=f"tinyc_dequantize_{_SHORT[x.dtype]}_f32", header="tinyc/quantize.h",
                          sources=("quantize.c",), params_type="tinyc_dequantize_params_t",
                          params=dict(size=y.size, scale=scale, zero_point=x.quant.zp),
                          args=(Arg("in", op.inputs[0]), Arg("out", op.outputs[0])),
                          comment=f"{float(scale)!r} * (q - {x.quant.zp})")
