"""ADD, SUB, MUL on int8 tensors, with numpy-style broadcasting (TFLM supports up to 6-D).

TFLM's Prepare (tensorflow/lite/micro/kernels/add_common.cc, sub_common.cc, mul_common.cc),
done here at compile time:

- ADD: both inputs are rescaled to twice the larger input scale after a left shift of 20 bits;
  the three real multipliers (s_i / 2max, 2max / (2^20 s_out)) are computed in double and
  quantized with QuantizeMultiplierSmallerThanOneExp.
- SUB: the same scheme, but TFLM's sub_common.cc computes those three ratios in float32
  before widening to double; we reproduce that with numpy float32 arithmetic, so a SUB and an
  ADD with the same scales may get multipliers that differ in the last bit, as in TFLM.
- MUL: one multiplier s1*s2/s_out (double, QuantizeMultiplier).

Integer ADD/SUB/MUL of constant int32 tensors (shape arithmetic) is folded at compile time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyc.ir import Graph, Op, Tensor
from tinyc.ops.base import (Arg, Backward, GradContext, KernelCall, OpSupport, OverlapSpec, SpatialWindow, elementwise_overlap,
                             pointwise_spatial, unsupported)
from tinyc.ops import _train_math as tm
from tinyc.ops.registry import register
from tinyc.quant import activation_range, quantize_multiplier, quantize_multiplier_smaller_than_one_exp

MAX_DIMS = 6
FUSED_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
ADD_LEFT_SHIFT = 20  # TFLM: 20 for int8 (15 for int16)


@dataclass(frozen=True)
class Broadcast:
    """How the output box is walked: `dims` row-major, each input stepping by its strides
    (0 along a dimension it is broadcast on). Always MAX_DIMS long, padded on the left."""

    dims: tuple[int, ...]
    in1_strides: tuple[int, ...]
    in2_strides: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.dims, dtype=np.int64))


def broadcast_plan(s1: tuple[int, ...], s2: tuple[int, ...], out: tuple[int, ...]) -> Broadcast | None:
    """Strides for walking `out` while reading inputs of shapes s1 and s2; None if the shapes
    do not broadcast to `out`. Size-1 output dimensions are dropped and neighbouring dimensions
    that are contiguous in both inputs are merged, so the C loop runs over as few, as long,
    rows as possible: [1,H,W,C] x [1,1,1,C] -> dims (H*W, C), in2 strides (0, 1)."""
    r = len(out)
    if len(s1) > r or len(s2) > r:
        return None
    a = (1,) * (r - len(s1)) + tuple(s1)
    b = (1,) * (r - len(s2)) + tuple(s2)
    for da, db, do in zip(a, b, out):
        if da not in (1, do) or db not in (1, do) or max(da, db) != do:
            return None

    def strides(shape: tuple[int, ...]) -> list[int]:
        st, acc = [0] * r, 1
        for i in range(r - 1, -1, -1):
            st[i] = acc if shape[i] != 1 else 0
            acc *= shape[i]
        return st

    sa, sb = strides(a), strides(b)
    dims: list[int] = []
    st1: list[int] = []
    st2: list[int] = []
    for d, x, y in zip(out, sa, sb):
        if d == 1:
            continue
        # Merge into the previous (outer) dimension when stepping it equals running through
        # this one completely, in both inputs.
        if dims and st1[-1] == x * d and st2[-1] == y * d:
            dims[-1] *= d
            st1[-1], st2[-1] = x, y
        else:
            dims.append(d)
            st1.append(x)
            st2.append(y)
    pad = MAX_DIMS - len(dims)
    if pad < 0:
        return None
    return Broadcast(dims=(1,) * pad + tuple(dims), in1_strides=(0,) * pad + tuple(st1),
                     in2_strides=(0,) * pad + tuple(st2))


def _activation(op: Op) -> str:
    return op.attrs.get("fused_activation_function", "NONE") or "NONE"


def _per_tensor_int8(t: Tensor) -> bool:
    return t.dtype == "int8" and t.quant is not None and len(t.quant.scale) == 1


def _is_int32_const_op(op: Op, g: Graph) -> bool:
    ins = [g.t(n) for n in op.inputs if n is not None]
    return all(t.is_const and t.dtype == "int32" and t.quant is None for t in ins) and \
        g.t(op.outputs[0]).dtype == "int32"


def add_sub_multipliers(s1: float, s2: float, so: float, float32_math: bool) -> dict[str, int] | None:
    """TFLM's CalculateOpDataAdd / CalculateOpDataSub multipliers; None if the output
    multiplier is not smaller than one (TFLM aborts in QuantizeMultiplierSmallerThanOneExp)."""
    if float32_math:  # sub_common.cc: float32 ratios, widened to double afterwards
        f1, f2, fo = np.float32(s1), np.float32(s2), np.float32(so)
        twice = np.float32(2) * max(f1, f2)
        m1 = float(f1 / twice)
        m2 = float(f2 / twice)
        mo = float(twice / (np.float32(1 << ADD_LEFT_SHIFT) * fo))
    else:  # add_common.cc: double throughout
        twice = 2 * max(float(s1), float(s2))
        m1 = float(s1) / twice
        m2 = float(s2) / twice
        mo = twice / ((1 << ADD_LEFT_SHIFT) * float(so))
    if not (0 < mo < 1) or not (0 < m1 < 1) or not (0 < m2 < 1):
        return None
    q1, sh1 = quantize_multiplier_smaller_than_one_exp(m1)
    q2, sh2 = quantize_multiplier_smaller_than_one_exp(m2)
    qo, sho = quantize_multiplier_smaller_than_one_exp(mo)
    return dict(input1_multiplier=q1, input1_shift=sh1, input2_multiplier=q2, input2_shift=sh2,
                output_multiplier=qo, output_shift=sho)


class _Binary(OpSupport):
    """What ADD, SUB and MUL share: type rules, broadcasting, folding of int32 constants."""

    def spatial(self, op: Op, g: Graph) -> SpatialWindow | None:
        return pointwise_spatial(op, g)

    def overlap(self, op: Op, g: Graph) -> OverlapSpec | None:
        """elementwise.c walks the output in index order; a full-size input is read at the same
        index just before that index is written, so it may share the output's bytes. Of two such
        inputs, the one that can die here is offered: read by no other op and not a model output
        (a residual ADD's skip tensor is often read again later, the block's own output is not)."""
        y = g.t(op.outputs[0])
        full = [k for k, name in enumerate(op.inputs[:2])
                if name is not None and not g.t(name).is_const and tuple(g.t(name).shape) == tuple(y.shape)
                and g.t(name).dtype == y.dtype]
        if not full:
            return None
        if len(full) > 1:
            users = g.consumers()
            full.sort(key=lambda k: (op.inputs[k] in g.outputs, len(users.get(op.inputs[k], ()))))
        return elementwise_overlap(1, 1, y.size, input_index=full[0])

    def check(self, op: Op, g: Graph) -> None:
        if len(op.inputs) != 2 or any(n is None for n in op.inputs) or len(op.outputs) != 1:
            raise unsupported(op, g, f"{op.kind} needs exactly two inputs and one output")
        if _is_int32_const_op(op, g):
            return  # folded at compile time
        x1, x2, y = (g.t(n) for n in (*op.inputs, op.outputs[0]))
        for t in (x1, x2, y):
            if t.dtype == "float32":
                raise unsupported(op, g, f"float32 {op.kind}: tinyc needs an int8-quantized model "
                                         f"(full-integer quantization)")
            if not _per_tensor_int8(t):
                raise unsupported(op, g, f"{op.kind} on {t.dtype} tensor {t.name}"
                                         f"{' (per-channel quantized)' if t.quant and t.quant.per_channel else ''}"
                                         f"{' (not quantized)' if t.quant is None else ''}: only int8 with "
                                         f"per-tensor quantization is supported")
        act = _activation(op)
        if act not in FUSED_ACTIVATIONS:
            raise unsupported(op, g, f"fused activation {act} is not supported "
                                     f"(supported: {', '.join(FUSED_ACTIVATIONS)})")
        if len(y.shape) > MAX_DIMS or len(x1.shape) > MAX_DIMS or len(x2.shape) > MAX_DIMS:
            raise unsupported(op, g, f"rank > {MAX_DIMS} is not supported")
        if broadcast_plan(x1.shape, x2.shape, y.shape) is None:
            raise unsupported(op, g, f"input shapes {list(x1.shape)} and {list(x2.shape)} do not "
                                     f"broadcast to the output shape {list(y.shape)}")
        if y.size == 0:
            raise unsupported(op, g, "empty tensors are not supported")
        self.check_scales(op, g, x1, x2, y)

    def check_scales(self, op: Op, g: Graph, x1: Tensor, x2: Tensor, y: Tensor) -> None:
        """Subclass hook: reject scale combinations TFLM itself refuses."""

    def fold(self, op: Op, g: Graph) -> list[np.ndarray] | None:
        if not _is_int32_const_op(op, g):
            return None
        a, b = (np.asarray(g.t(n).data, dtype=np.int64) for n in op.inputs)
        v = self.fold_int(a, b)
        lo, hi = {"NONE": (None, None), "RELU": (0, None), "RELU6": (0, 6),
                  "RELU_N1_TO_1": (-1, 1)}.get(_activation(op), (None, None))
        if lo is not None or hi is not None:
            v = np.clip(v, lo, hi)
        # int32 arithmetic wraps in TFLM (two's complement), as numpy's int32 cast does.
        return [np.broadcast_to(v.astype(np.int32), g.t(op.outputs[0]).shape).copy()]

    def fold_int(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _call(self, op: Op, g: Graph, base: str, params_type: str, params: dict, comment: str) -> KernelCall:
        x1, x2, y = (g.t(n) for n in (*op.inputs, op.outputs[0]))
        plan = broadcast_plan(x1.shape, x2.shape, y.shape)
        assert plan is not None
        # Equal element counts under a valid broadcast mean no dimension is broadcast: a flat loop.
        flat = x1.size == x2.size == y.size
        full = dict(size=y.size, **params, dims=plan.dims, in1_strides=plan.in1_strides,
                    in2_strides=plan.in2_strides)
        return KernelCall(function=f"tinyc_{base}_s8" if flat else f"tinyc_{base}_broadcast_s8",
                          header="tinyc/elementwise.h", sources=("elementwise.c",), params_type=params_type,
                          params=full, args=(Arg("in", op.inputs[0]), Arg("in", op.inputs[1]),
                                             Arg("out", op.outputs[0])),
                          comment=comment + ("" if flat else f", broadcast {list(x1.shape)} x {list(x2.shape)}"))


class _AddSub(_Binary):
    subtract = False

    def check_scales(self, op: Op, g: Graph, x1: Tensor, x2: Tensor, y: Tensor) -> None:
        if add_sub_multipliers(x1.quant.s, x2.quant.s, y.quant.s, self.subtract) is None:
            raise unsupported(op, g, f"scales {x1.quant.s}, {x2.quant.s} -> {y.quant.s} give a rescale "
                                     f"factor >= 1, which TFLM's int8 {op.kind} refuses")

    def lower(self, op: Op, g: Graph) -> KernelCall:
        x1, x2, y = (g.t(n) for n in (*op.inputs, op.outputs[0]))
        m = add_sub_multipliers(x1.quant.s, x2.quant.s, y.quant.s, self.subtract)
        assert m is not None
        lo, hi = activation_range(_activation(op), y.quant.s, y.quant.zp, "int8")
        params = dict(input1_offset=-x1.quant.zp, input2_offset=-x2.quant.zp, output_offset=y.quant.zp,
                      left_shift=ADD_LEFT_SHIFT,
                      input1_multiplier=m["input1_multiplier"], input1_shift=m["input1_shift"],
                      input2_multiplier=m["input2_multiplier"], input2_shift=m["input2_shift"],
                      output_multiplier=m["output_multiplier"], output_shift=m["output_shift"],
                      act_min=lo, act_max=hi)
        return self._call(op, g, "sub" if self.subtract else "add", "tinyc_add_params_t", params,
                          f"act [{lo}, {hi}]")


@register("ADD")
class Add(_AddSub):
    subtract = False

    def backward(self, op: Op, g: Graph, ctx: GradContext) -> Backward:
        """d(x_k) = d(y) (after the fused activation's mask), summed over broadcast axes."""
        y = g.t(op.outputs[0])
        saves, ops, dz = tm.activation_mask(op, g, ctx, op.outputs[0], _activation(op))
        grads: dict[int, str] = {}
        for k, name in enumerate(op.inputs[:2]):
            if not (k < len(ctx.want) and ctx.want[k]):
                continue
            x = g.t(name)
            if tuple(x.shape) == tuple(y.shape):
                grads[k] = dz
                continue
            dx = ctx.new_tensor(f"dx{op.index}_{k}", x.shape, "float32")
            params = dict(out_shape=tm.dims4(y.shape), in_shape=tm.dims4(x.shape), other_shape=(1, 1, 1, 1),
                          other_scale=np.float32(0.0), other_zp=0)
            ops.append(tm.grad_step(op, "tinyc_add_backward_f32", "tinyc/train_elementwise.h", "train_elementwise.c",
                                    "tinyc_broadcast_bwd_params_t", params, (Arg("in", dz), Arg("out", dx)),
                                    f"d(input {k}) summed over broadcast axes"))
            grads[k] = dx
        return Backward(saves=tuple(saves), ops=tuple(ops), grads=grads)

    def fold_int(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a + b


@register("SUB")
class Sub(_AddSub):
    subtract = True

    def fold_int(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a - b


@register("MUL")
class Mul(_Binary):
    def fold_int(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a * b

    def backward(self, op: Op, g: Graph, ctx: GradContext) -> Backward:
        """d(x1) = d(y) * x2 and d(x2) = d(y) * x1 (the saved int8 inputs), summed over broadcast axes."""
        y = g.t(op.outputs[0])
        saves, ops, dz = tm.activation_mask(op, g, ctx, op.outputs[0], _activation(op))
        grads: dict[int, str] = {}
        for k, name in enumerate(op.inputs[:2]):
            if not (k < len(ctx.want) and ctx.want[k]):
                continue
            x, other = g.t(name), g.t(op.inputs[1 - k])
            if other.quant is None or other.quant.per_channel:
                raise unsupported(op, g, "no MUL backward for a per-channel quantized operand")
            dx = ctx.new_tensor(f"dx{op.index}_{k}", x.shape, "float32")
            params = dict(out_shape=tm.dims4(y.shape), in_shape=tm.dims4(x.shape), other_shape=tm.dims4(other.shape),
                          other_scale=np.float32(other.quant.s), other_zp=int(other.quant.zp))
            ops.append(tm.grad_step(op, "tinyc_mul_backward_f32", "tinyc/train_elementwise.h", "train_elementwise.c",
                                    "tinyc_broadcast_bwd_params_t", params,
                                    (Arg("in", dz), Arg("const" if other.is_const else "in", other.name),
                                     Arg("out", dx)), f"d(input {k})", macs=y.size))
            grads[k] = dx
        return Backward(saves=tuple(saves), ops=tuple(ops), grads=grads)

    def lower(self, op: Op, g: Graph) -> KernelCall:
        x1, x2, y = (g.t(n) for n in (*op.inputs, op.outputs[0]))
        mult, shift = quantize_multiplier(float(x1.quant.s) * float(x2.quant.s) / float(y.quant.s))
        lo, hi = activation_range(_activation(op), y.quant.s, y.quant.zp, "int8")
        params = dict(input1_offset=-x1.quant.zp, input2_offset=-x2.quant.zp, output_offset=y.quant.zp,
                      output_multiplier=mult, output_shift=shift, act_min=lo, act_max=hi)
        return self._call(op, g, "mul", "tinyc_mul_params_t", params, f"act [{lo}, {hi}]")
