"""MEAN and SUM over constant axes, int8 (tensorflow/lite/micro/kernels/reduce_common.cc).

Current TFLM (the tflite-micro package, our golden) computes every int8 MEAN with
QuantizedMeanOrSum: QuantizeMultiplier(s_in / s_out), then 1/count folded into it (shift =
floor(log2(count)) clamped to 32 and to 31 + shift, multiplier = (m << shift) / count), and the
zero-point-corrected int32 sum requantized with MultiplyByQuantizedMultiplier. Older TFLM took a
truncating integer average when input and output quantization were equal; the package no longer
does, and the tests check that case. SUM is the same without the 1/count. The axes must be a constant tensor;
they may be negative or repeated. keep_dims does not change the bytes, only the shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyc.ir import Graph, Op, Tensor
from tinyc.ops import _train_math as tm
from tinyc.ops.base import Arg, Backward, GradContext, KernelCall, OpSupport, unsupported
from tinyc.ops.registry import register
from tinyc.quant import quantize_multiplier

MAX_BOX_DIMS = 3  # per box (kept / reduced) after merging, see tinyc/reduce.h
MAX_RANK = 5  # TFLM's reduce kernels index at most 5 input dimensions
MAX_COUNT = (1 << 31) // 256  # the int32 sum of `count` int8 values cannot overflow


@dataclass(frozen=True)
class ReducePlan:
    """The reduction as two boxes in input-element strides (see tinyc/reduce.h)."""

    outer: tuple[int, ...]
    outer_strides: tuple[int, ...]
    inner: tuple[int, ...]
    inner_strides: tuple[int, ...]

    @property
    def count(self) -> int:
        return int(np.prod(self.inner, dtype=np.int64))

    @property
    def out_size(self) -> int:
        return int(np.prod(self.outer, dtype=np.int64))


def resolve_axes(axes: np.ndarray, rank: int) -> tuple[int, ...] | None:
    """TFLM ResolveAxis: negative axes count from the end, duplicates dropped; None if out of range."""
    out: list[int] = []
    for a in np.asarray(axes).ravel().tolist():
        a = int(a) + rank if int(a) < 0 else int(a)
        if not 0 <= a < rank:
            return None
        if a not in out:
            out.append(a)
    return tuple(out)


def reduce_plan(shape: tuple[int, ...], axes: tuple[int, ...]) -> ReducePlan | None:
    """Merge the input dimensions into alternating kept/reduced runs; None if either kind needs
    more than MAX_BOX_DIMS runs."""
    strides, acc = [0] * len(shape), 1
    for i in range(len(shape) - 1, -1, -1):
        strides[i] = acc
        acc *= shape[i]
    runs: list[list] = []  # [size, stride, reduced]
    for i, d in enumerate(shape):
        if d == 1:
            continue
        red = i in axes
        if runs and runs[-1][2] == red:  # row-major neighbours are contiguous: merge
            runs[-1][0] *= d
            runs[-1][1] = strides[i]
        else:
            runs.append([d, strides[i], red])
    kept = [(s, st) for s, st, r in runs if not r]
    red = [(s, st) for s, st, r in runs if r]
    if len(kept) > MAX_BOX_DIMS or len(red) > MAX_BOX_DIMS:
        return None

    def box(items: list[tuple[int, int]]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        pad = [(1, 0)] * (MAX_BOX_DIMS - len(items))
        full = pad + items
        return tuple(s for s, _ in full), tuple(st for _, st in full)

    o, ost = box(kept)
    i, ist = box(red)
    return ReducePlan(outer=o, outer_strides=ost, inner=i, inner_strides=ist)


def mean_multiplier(multiplier: int, shift: int, count: int) -> tuple[int, int]:
    """TFLM QuantizedMeanOrSum: fold 1/count into (multiplier, shift)."""
    s = count.bit_length() - 1  # 63 - CountLeadingZeros(uint64(count))
    s = min(s, 32)
    s = max(min(s, 31 + shift), 0)  # 31 + shift >= 0: quantize_multiplier never returns shift < -31
    return int((multiplier << s) // count), shift - s  # int64 division of non-negative values


class _Reduce(OpSupport):
    is_sum = False

    def _analyse(self, op: Op, g: Graph) -> tuple[Tensor, Tensor, ReducePlan]:
        if len(op.inputs) != 2 or op.inputs[0] is None or op.inputs[1] is None or len(op.outputs) != 1:
            raise unsupported(op, g, f"{op.kind} needs an input, an axis tensor and one output")
        x, ax, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
        if x.dtype == "float32":
            raise unsupported(op, g, f"float32 {op.kind}: tinyc needs an int8-quantized model "
                                     f"(full-integer quantization)")
        for t in (x, y):
            if t.dtype != "int8" or t.quant is None or t.quant.per_channel:
                raise unsupported(op, g, f"{op.kind} on {t.dtype} tensor {t.name}: only int8 with "
                                         f"per-tensor quantization is supported")
        if not ax.is_const or ax.dtype != "int32":
            raise unsupported(op, g, f"{op.kind}: the axis tensor must be a constant int32 tensor")
        if len(x.shape) > MAX_RANK:
            raise unsupported(op, g, f"{op.kind}: input rank {len(x.shape)} > {MAX_RANK} is not supported")
        axes = resolve_axes(ax.data, len(x.shape))
        if axes is None:
            raise unsupported(op, g, f"{op.kind}: axis {ax.data.ravel().tolist()} out of range for rank "
                                     f"{len(x.shape)}")
        if x.size == 0:
            raise unsupported(op, g, "empty tensors are not supported")
        plan = reduce_plan(x.shape, axes)
        if plan is None:
            raise unsupported(op, g, f"{op.kind} over axes {list(axes)} of {list(x.shape)} is not supported")
        if plan.out_size != y.size:
            raise unsupported(op, g, f"{op.kind}: output shape {list(y.shape)} does not match the reduction "
                                     f"of {list(x.shape)} over axes {list(axes)}")
        if plan.count > MAX_COUNT:
            raise unsupported(op, g, f"{op.kind} of {plan.count} elements could overflow the int32 sum")
        return x, y, plan

    def check(self, op: Op, g: Graph) -> None:
        self._analyse(op, g)

    def lower(self, op: Op, g: Graph) -> KernelCall:
        x, y, plan = self._analyse(op, g)
        box = dict(outer=plan.outer, outer_strides=plan.outer_strides, inner=plan.inner,
                   inner_strides=plan.inner_strides, count=plan.count)
        args = (Arg("in", op.inputs[0]), Arg("out", op.outputs[0]))
        m, s = quantize_multiplier(float(x.quant.s) / float(y.quant.s))
        if not self.is_sum:
            m, s = mean_multiplier(m, s, plan.count)
        return KernelCall(function="tinyc_reduce_requant_s8", header="tinyc/reduce.h", sources=("reduce.c",),
                          params_type="tinyc_reduce_params_t",
                          params=dict(box, sum_offset=x.quant.zp * plan.count, multiplier=m, shift=s,
                                      output_offset=y.quant.zp), args=args,
                          comment=f"{'sum' if self.is_sum else 'mean'} of {plan.count}, requantized")


@register("MEAN")
class Mean(_Reduce):
    is_sum = False

    def backward(self, op: Op, g: Graph, ctx: GradContext) -> Backward:
        """Every element averaged gets d(y) of its output / the count."""
        if not (ctx.want and ctx.want[0]):
            return Backward()
        x = g.t(op.inputs[0])
        axes = resolve_axes(g.t(op.inputs[1]).data, len(x.shape)) or ()
        if len(x.shape) > 4:
            raise unsupported(op, g, f"no MEAN backward for rank {len(x.shape)} > 4")
        lead = 4 - len(x.shape)
        reduce = tuple(1 if (a - lead) in axes else 0 for a in range(4))
        dx = ctx.new_tensor(f"dx{op.index}", x.shape, "float32")
        step = tm.grad_step(op, "tinyc_mean_backward_f32", "tinyc/train_pooling.h", "train_pooling.c",
                            "tinyc_mean_bwd_params_t", dict(in_shape=tm.dims4(x.shape), reduce=reduce),
                            (Arg("in", ctx.dy), Arg("out", dx)), "d(input)", macs=x.size)
        return Backward(ops=(step,), grads={0: dx})


@register("SUM")
class Sum(_Reduce):
    is_sum = True
