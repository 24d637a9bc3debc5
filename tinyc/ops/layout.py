"""Data-layout ops: RESHAPE, SQUEEZE, EXPAND_DIMS, TRANSPOSE, STRIDED_SLICE, PAD, PADV2,
CONCATENATION, PACK, SHAPE (runtime_c/src/layout.c).

None of them computes on values, so each lowers to one of four byte-generic kernels with an
element size: a strided copy (views, TRANSPOSE, STRIDED_SLICE), a pad, a concatenation
(CONCATENATION, PACK) and a write of compile-time bytes (SHAPE). TFLM's Prepare work (masks,
negative indices, permutations, pad amounts) is resolved here into plain extents and strides,
then `_strided_copy` drops size-1 axes and merges axes contiguous on both sides, so e.g. a
RESHAPE copy is one memcpy.

Views (RESHAPE, SQUEEZE, EXPAND_DIMS) normally vanish: `view_of` lets passes/alias_views make
them zero-copy aliases; `lower` is the copy used when aliasing is impossible. Likewise a
CONCATENATION or PACK whose inputs are contiguous in the output (`slices`) usually vanishes:
passes/concat_inplace makes its producers write straight into the output. SHAPE, PACK,
STRIDED_SLICE, RESHAPE (and TRANSPOSE, PAD, CONCATENATION) `fold` to constants when their
inputs are known at compile time, which removes the SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE
chain of the MCUNet Wake Vision head.

Like TFLM, these ops copy bytes and never requantize: TFLM's int8 CONCATENATION rejects inputs
whose scale or zero point differ from the output's (so does tinyc), while RESHAPE, PACK and
STRIDED_SLICE ignore a change of quantization and copy the bytes (so does tinyc).
"""

from __future__ import annotations

import numpy as np

from tinyc.ir import DTYPE_BYTES, Graph, Op, Tensor
from tinyc.ops import _train_math as tm
from tinyc.ops.base import Arg, Backward, GradContext, KernelCall, OpSupport, unsupported
from tinyc.ops.registry import register

MAX_DIMS = 6  # TINYC_LAYOUT_MAX_DIMS
MAX_CONCAT_INPUTS = 10  # TINYC_CONCAT_MAX_INPUTS, TFLM's kMaxInputNum
_INDEX_DTYPES = ("int32", "int64")


# ----------------------------------------------------------------------------- helpers

def _contiguous_strides(shape: tuple[int, ...]) -> list[int]:
    strides = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        strides[i] = strides[i + 1] * shape[i + 1]
    return strides


def _np_dtype(dtype: str) -> np.dtype:
    return np.dtype("uint8" if dtype == "bool" else dtype)


def _const_ints(g: Graph, name: str | None) -> list[int] | None:
    if name is None:
        return None
    t = g.t(name)
    if t.data is None or t.dtype not in _INDEX_DTYPES:
        return None
    return [int(v) for v in t.data.ravel()]


def _arg(g: Graph, name: str) -> Arg:
    return Arg("const" if g.t(name).is_const else "in", name)


def _strided_copy(op: Op, g: Graph, dims: list[int], strides: list[int], offset: int,
                  comment: str) -> KernelCall:
    """out (dense, row-major over dims) = in[offset + sum(i_k * strides_k)], canonicalised."""
    x = g.t(op.inputs[0])
    if any(d == 0 for d in dims):
        dims, strides, offset = [0], [1], 0
    kept = [(d, s) for d, s in zip(dims, strides) if d != 1]
    merged: list[list[int]] = []
    for d, s in kept:
        # Axis k folds into the previous one when stepping it once equals stepping k all the way.
        if merged and merged[-1][1] == s * d:
            merged[-1] = [merged[-1][0] * d, s]
        else:
            merged.append([d, s])
    if len(merged) > MAX_DIMS:
        raise unsupported(op, g, f"needs a {len(merged)}-D copy; at most {MAX_DIMS} dimensions are supported")
    pad = MAX_DIMS - len(merged)
    d6 = tuple([1] * pad + [m[0] for m in merged])
    s6 = tuple([1] * pad + [m[1] for m in merged])
    params = dict(elem_size=DTYPE_BYTES[x.dtype], dims=d6, in_strides=s6, in_offset=int(offset))
    return KernelCall(function="tinyc_strided_copy", header="tinyc/layout.h", sources=("layout.c",),
                      params_type="tinyc_strided_copy_params_t", params=params,
                      args=(_arg(g, op.inputs[0]), Arg("out", op.outputs[0])), comment=comment)


def _same_dtype(op: Op, g: Graph, a: Tensor, b: Tensor) -> None:
    if a.dtype != b.dtype:
        raise unsupported(op, g, f"input dtype {a.dtype} differs from output dtype {b.dtype}")


def _rank_ok(op: Op, g: Graph, t: Tensor, limit: int = MAX_DIMS) -> None:
    if len(t.shape) > limit:
        raise unsupported(op, g, f"rank {len(t.shape)} is not supported (at most {limit})")


# ----------------------------------------------------------------------------- views

@register("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
class View(OpSupport):
    """Same bytes, new shape: a zero-copy alias when possible, otherwise one memcpy."""

    def check(self, op: Op, g: Graph) -> None:
        if not op.inputs or op.inputs[0] is None or len(op.outputs) != 1:
            raise unsupported(op, g, "expects a data input and one output")
        x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
        _same_dtype(op, g, x, y)
        if x.size != y.size:
            raise unsupported(op, g, f"{x.size} input elements cannot be viewed as {y.size} output elements")

    def view_of(self, op: Op, g: Graph) -> str | None:
        return op.inputs[0]

    def backward(self, op: Op, g: Graph, ctx: GradContext) -> Backward:
        return tm.identity_backward(op, g, ctx)

    def fold(self, op: Op, g: Graph) -> list[np.ndarray] | None:
        x = g.t(op.inputs[0])
        if x.data is None:
            return None
        return [x.data.reshape(g.t(op.outputs[0]).shape)]

    def lower(self, op: Op, g: Graph) -> KernelCall:
        x = g.t(op.inputs[0])
        return _strided_copy(op, g, [x.size], [1], 0, "copy (could not alias)")


# ----------------------------------------------------------------------------- SHAPE

@register("SHAPE")
class Shape(OpSupport):
    """The input's static shape: always known at compile time."""

    def check(self, op: Op, g: Graph) -> None:
        x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
        if y.dtype not in _INDEX_DTYPES:
            raise unsupported(op, g, f"output dtype {y.dtype} is not supported (int32 or int64)")
        if tuple(y.shape) != (len(x.shape),):
            raise unsupported(op, g, f"output shape {list(y.shape)} should be [{len(x.shape)}]")

    def fold(self, op: Op, g: Graph) -> list[np.ndarray] | None:
        y = g.t(op.outputs[0])
        return [np.array(g.t(op.inputs[0]).shape, dtype=y.dtype)]

    def macs(self, op: Op, g: Graph) -> int:
        return 0

    def lower(self, op: Op, g: Graph) -> KernelCall:
        # Only reached when the result is a model output (fold_constants keeps those ops).
        (arr,) = self.fold(op, g)  # type: ignore[misc]
        data = np.frombuffer(arr.astype(arr.dtype.newbyteorder("<")).tobytes(), dtype=np.uint8).copy()
        return KernelCall(function="tinyc_write_const", header="tinyc/layout.h", sources=("layout.c",),
                          params_type="tinyc_write_const_params_t", params=dict(nbytes=int(data.size), data=data),
                          args=(Arg("out", op.outputs[0]),), comment=f"shape {list(arr)}")


# ----------------------------------------------------------------------------- TRANSPOSE

@register("TRANSPOSE")
class Transpose(OpSupport):
    def _perm(self, op: Op, g: Graph) -> list[int] | None:
        return _const_ints(g, op.inputs[1] if len(op.inputs) > 1 else None)

    def check(self, op: Op, g: Graph) -> None:
        x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
        _same_dtype(op, g, x, y)
        _rank_ok(op, g, x, 5)  # TFLM: "Transpose op only supports 1D-5D input arrays"
        perm = self._perm(op, g)
        if perm is None:
            raise unsupported(op, g, "the permutation must be a constant int32 tensor")
        rank = len(x.shape)
        perm = [p + rank if p < 0 else p for p in perm]
        if sorted(perm) != list(range(rank)):
            raise unsupported(op, g, f"permutation {perm} is not a permutation of {rank} axes")
        want = tuple(x.shape[p] for p in perm)
        if tuple(y.shape) != want:
            raise unsupported(op, g, f"output shape {list(y.shape)} does not match the permuted shape {list(want)}")

    def fold(self, op: Op, g: Graph) -> list[np.ndarray] | None:
        x = g.t(op.inputs[0])
        perm = self._perm(op, g)
        if x.data is None or perm is None:
            return None
        return [np.transpose(x.data, [p % max(len(x.shape), 1) for p in perm])]

    def lower(self, op: Op, g: Graph) -> KernelCall:
        x = g.t(op.inputs[0])
        rank = len(x.shape)
        perm = [p + rank if p < 0 else p for p in self._perm(op, g) or []]
        s = _contiguous_strides(x.shape)
        return _strided_copy(op, g, [x.shape[p] for p in perm], [s[p] for p in perm], 0, f"perm {perm}")

    def backward(self, op: Op, g: Graph, ctx: GradContext) -> Backward:
        """d(x) = d(y) transposed back (the inverse permutation)."""
        if not (ctx.want and ctx.want[0]):
            return Backward()
        x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
        rank = len(x.shape)
        if rank > 4:
            raise unsupported(op, g, f"no TRANSPOSE backward for rank {rank} > 4")
        perm = [p + rank if p < 0 else p for p in self._perm(op, g) or []]
        inverse = [perm.index(k) for k in range(rank)]
        lead = 4 - rank
        perm4 = tuple(list(range(lead)) + [p + lead for p in inverse])
        dx = ctx.new_tensor(f"dx{op.index}", x.shape, "float32")
        step = tm.grad_step(op, "tinyc_transpose_f32", "tinyc/train_elementwise.h", "train_elementwise.c",
                            "tinyc_transpose_f32_params_t", dict(in_shape=tm.dims4(y.shape), perm=perm4),
                            (Arg("in", ctx.dy), Arg("out", dx)), "d(input)")
        return Backward(ops=(step,), grads={0: dx})


# ----------------------------------------------------------------------------- STRIDED_SLICE

def _clamp(v: int, lo: int, hi: int) -> int:
    return hi if v > hi else (lo if v < lo else v)


@register("STRIDED_SLICE")
class StridedSlice(OpSupport):
    """TFLM's StridedSliceStartForAxis / StridedSliceEndForAxis resolved per axis at compile time."""

    def _plan(self, op: Op, g: Graph) -> tuple[list[int], list[int], list[int], list[int]]:
        """(starts, counts, steps, output shape without the shrunk axes)."""
        x = g.t(op.inputs[0])
        begin, end, steps = (_const_ints(g, n) for n in op.inputs[1:4])
        assert begin is not None and end is not None and steps is not None
        a = op.attrs
        bm, em, sm = int(a.get("begin_mask", 0)), int(a.get("end_mask", 0)), int(a.get("shrink_axis_mask", 0))
        starts, counts, out_shape = [], [], []
        for k, size in enumerate(x.shape):
            st = steps[k]
            start = begin[k] + size if begin[k] < 0 else begin[k]
            start = _clamp(start, 0, size) if st > 0 else _clamp(start, -1, size - 1)
            if bm >> k & 1:
                start = 0 if st > 0 else size - 1
            shrink = bool(sm >> k & 1)
            if shrink:
                stop = start if start >= size else start + 1
            else:
                stop = end[k] + size if end[k] < 0 else end[k]
                stop = _clamp(stop, 0, size) if st > 0 else _clamp(stop, -1, size - 1)
                if em >> k & 1:
                    stop = size if st > 0 else -1
            if st > 0:
                n = (stop - start + st - 1) // st if stop > start else 0
            else:
                n = (start - stop - st - 1) // -st if start > stop else 0
            starts.append(start)
            counts.append(n)
            if not shrink:
                out_shape.append(n)
        return starts, counts, list(steps), out_shape

    def check(self, op: Op, g: Graph) -> None:
        if len(op.inputs) != 4 or any(i is None for i in op.inputs):
            raise unsupported(op, g, "expects input, begin, end and strides")
        x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
        _same_dtype(op, g, x, y)
        _rank_ok(op, g, x)
        if len(x.shape) == 0:
            raise unsupported(op, g, "slicing a scalar is not supported")
        idx = [_const_ints(g, n) for n in op.inputs[1:4]]
        if any(v is None or len(v) != len(x.shape) for v in idx):
            raise unsupported(op, g, f"begin, end and strides must be constant int32 tensors of length "
                                     f"{len(x.shape)} (TFLM requires constants too)")
        a = op.attrs
        for m in ("ellipsis_mask", "new_axis_mask"):
            if int(a.get(m, 0)):
                raise unsupported(op, g, f"{m} is not supported (TFLM ignores it; only begin_mask, end_mask and "
                                         f"shrink_axis_mask are)")
        if a.get("offset", False):
            raise unsupported(op, g, "offset=True is not supported (TFLM ignores it)")
        steps = idx[2]
        assert steps is not None
        if any(s == 0 for s in steps):
            raise unsupported(op, g, "a stride of 0 is invalid")
        sm = int(a.get("shrink_axis_mask", 0))
        if any(sm >> k & 1 and s < 0 for k, s in enumerate(steps)):
            raise unsupported(op, g, "shrink_axis_mask on an axis with a negative stride is not supported "
                                     "(TFLM writes no element for it)")
        _, counts, _, out_shape = self._plan(op, g)
        if any(sm >> k & 1 and c != 1 for k, c in enumerate(counts)):
            raise unsupported(op, g, "a shrunk axis selects no element (begin is out of range)")
        if tuple(out_shape) != tuple(y.shape):
            raise unsupported(op, g, f"output shape {list(y.shape)} does not match the slice shape {out_shape}")

    def fold(self, op: Op, g: Graph) -> list[np.ndarray] | None:
        x = g.t(op.inputs[0])
        if x.data is None:
            return None
        starts, counts, steps, _ = self._plan(op, g)
        index = np.ix_(*[np.arange(n, dtype=np.int64) * st + s for s, n, st in zip(starts, counts, steps)])
        return [x.data[index].reshape(g.t(op.outputs[0]).shape)]

    def lower(self, op: Op, g: Graph) -> KernelCall:
        x = g.t(op.inputs[0])
        starts, counts, steps, _ = self._plan(op, g)
        s = _contiguous_strides(x.shape)
        offset = sum(b * sk for b, sk in zip(starts, s)) if all(counts) else 0
        return _strided_copy(op, g, counts, [st * sk for st, sk in zip(steps, s)], offset,
                             f"begin {starts} step {steps}")


# ----------------------------------------------------------------------------- PAD

@register("PAD", "PADV2")
class Pad(OpSupport):
    """Constant padding. Pad value: PADV2's constant_values; otherwise the output zero point
    for int8/uint8 (TFLM: output zero point for int8), 0 for int16/int32/float32 (TFLM)."""

    _DTYPES = ("int8", "uint8", "int16", "int32", "float32")

    def _paddings(self, op: Op, g: Graph) -> list[tuple[int, int]] | None:
        v = _const_ints(g, op.inputs[1] if len(op.inputs) > 1 else None)
        if v is None or len(v) % 2:
            return None
        return [(v[2 * i], v[2 * i + 1]) for i in range(len(v) // 2)]

    def backward(self, op: Op, g: Graph, ctx: GradContext) -> Backward:
        """d(x) = the window of d(y) the input was copied to (a pad value gets no gradient)."""
        if not (ctx.want and ctx.want[0]):
            return Backward()
        x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
        pads = self._paddings(op, g) or []
        if len(x.shape) > 4:
            raise unsupported(op, g, f"no PAD backward for rank {len(x.shape)} > 4")
        before = tuple([0] * (4 - len(pads)) + [p[0] for p in pads])
        dx = ctx.new_tensor(f"dx{op.index}", x.shape, "float32")
        step = tm.grad_step(op, "tinyc_pad_backward_f32", "tinyc/train_elementwise.h", "train_elementwise.c",
                            "tinyc_pad_bwd_params_t", dict(in_shape=tm.dims4(x.shape), out_shape=tm.dims4(y.shape),
                                                           pad_before=before),
                            (Arg("in", ctx.dy), Arg("out", dx)), "d(input)")
        return Backward(ops=(step,), grads={0: dx})

    def _value(self, op: Op, g: Graph) -> np.ndarray:
        """The pad element as a 0-d array of the tensor dtype."""
        x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
        dt = _np_dtype(x.dtype)
        if len(op.inputs) > 2 and op.inputs[2] is not None:
            c = g.t(op.inputs[2])
            assert c.data is not None
            return np.asarray(c.data.ravel()[0], dtype=dt)
        if x.dtype in ("int8", "uint8") and y.quant is not None:
            return np.asarray(y.quant.zp, dtype=dt)
        return np.zeros((), dtype=dt)

    def check(self, op: Op, g: Graph) -> None:
        x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
        _same_dtype(op, g, x, y)
        if x.dtype not in self._DTYPES:
            raise unsupported(op, g, f"dtype {x.dtype} is not supported ({', '.join(self._DTYPES)})")
        _rank_ok(op, g, x)
        pads = self._paddings(op, g)
        if pads is None:
            raise unsupported(op, g, "paddings must be a constant int32 tensor (TFLM requires it too)")
        if len(pads) != len(x.shape):
            raise unsupported(op, g, f"{len(pads)} padding pairs for a rank-{len(x.shape)} input")
        if any(b < 0 or a < 0 for b, a in pads):
            raise unsupported(op, g, f"negative paddings {pads} are not supported")
        want = tuple(n + b + a for n, (b, a) in zip(x.shape, pads))
        if tuple(y.shape) != want:
            raise unsupported(op, g, f"output shape {list(y.shape)} does not match the padded shape {list(want)}")
        if x.dtype == "int8" and y.quant is not None and not -128 <= y.quant.zp <= 127:
            raise unsupported(op, g, f"output zero point {y.quant.zp} is outside the int8 range")
        if len(op.inputs) > 2 and op.inputs[2] is not None:
            c = g.t(op.inputs[2])
            if c.data is None or c.size != 1 or c.dtype != x.dtype:
                raise unsupported(op, g, "constant_values must be a constant scalar of the input's dtype")
            if x.dtype == "int8" and (c.quant is None or y.quant is None or c.quant.zp != y.quant.zp
                                      or c.quant.s != y.quant.s):
                raise unsupported(op, g, "constant_values must have the output's scale and zero point "
                                         "(TFLM requires it)")

    def fold(self, op: Op, g: Graph) -> list[np.ndarray] | None:
        x = g.t(op.inputs[0])
        pads = self._paddings(op, g)
        if x.data is None or pads is None:
            return None
        return [np.pad(x.data, pads, mode="constant", constant_values=self._value(op, g))]

    def lower(self, op: Op, g: Graph) -> KernelCall:
        x = g.t(op.inputs[0])
        pads = self._paddings(op, g) or []
        axes = [(n, b, a) for n, (b, a) in zip(x.shape, pads) if not (n == 1 and b == 0 and a == 0)]
        merged: list[tuple[int, int, int]] = []
        for n, b, a in reversed(axes):  # innermost first
            if merged and merged[-1][1] == 0 and merged[-1][2] == 0:
                # The inner axis is unpadded: each step of this axis is one contiguous block.
                m = merged[-1][0]
                merged[-1] = (n * m, b * m, a * m)
            else:
                merged.append((n, b, a))
        merged.reverse()
        if len(merged) > MAX_DIMS:
            raise unsupported(op, g, f"needs {len(merged)} padded dimensions; at most {MAX_DIMS} are supported")
        merged = [(1, 0, 0)] * (MAX_DIMS - len(merged)) + merged
        value = self._value(op, g)
        raw = list(value.astype(value.dtype.newbyteorder("<")).tobytes())
        params = dict(elem_size=DTYPE_BYTES[x.dtype], value=tuple(raw + [0] * (8 - len(raw))),
                      in_dims=tuple(m[0] for m in merged), before=tuple(m[1] for m in merged),
                      after=tuple(m[2] for m in merged))
        return KernelCall(function="tinyc_pad", header="tinyc/layout.h", sources=("layout.c",),
                          params_type="tinyc_pad_params_t", params=params,
                          args=(_arg(g, op.inputs[0]), Arg("out", op.outputs[0])),
                          comment=f"paddings {[list(p) for p in pads]} value {value.item()!r}")


# ----------------------------------------------------------------------------- CONCATENATION, PACK

def _concat_call(op: Op, g: Graph, outer: int, copy_elems: list[int], comment: str) -> KernelCall:
    es = DTYPE_BYTES[g.t(op.outputs[0]).dtype]
    n = len(op.inputs)
    params = dict(num_inputs=n, outer=outer,
                  copy_bytes=tuple([c * es for c in copy_elems] + [0] * (MAX_CONCAT_INPUTS - n)))
    args = tuple(_arg(g, i) for i in op.inputs if i is not None) + \
        (Arg("null"),) * (MAX_CONCAT_INPUTS - n) + (Arg("out", op.outputs[0]),)
    return KernelCall(function="tinyc_concat", header="tinyc/layout.h", sources=("layout.c",),
                      params_type="tinyc_concat_params_t", params=params, args=args, comment=comment)


def _end_to_end(op: Op, g: Graph, axis: int) -> tuple[int, ...] | None:
    """Byte offsets of the inputs in the output when nothing varies before `axis` in the
    output (every outer dimension 1): the inputs are then contiguous, in order."""
    y = g.t(op.outputs[0])
    if any(d != 1 for d in y.shape[:axis]):
        return None
    offsets, at = [], 0
    for i in op.inputs:
        if i is None:
            return None
        offsets.append(at)
        at += g.t(i).nbytes
    return tuple(offsets) if at == y.nbytes else None


def _check_inputs(op: Op, g: Graph, dtypes: tuple[str, ...]) -> None:
    if not op.inputs or any(i is None for i in op.inputs) or len(op.outputs) != 1:
        raise unsupported(op, g, "expects at least one input and one output")
    if len(op.inputs) > MAX_CONCAT_INPUTS:
        raise unsupported(op, g, f"{len(op.inputs)} inputs; at most {MAX_CONCAT_INPUTS} are supported "
                                 f"(TFLM's limit for CONCATENATION)")
    y = g.t(op.outputs[0])
    if y.dtype not in dtypes:
        raise unsupported(op, g, f"dtype {y.dtype} is not supported ({', '.join(dtypes)})")
    for i in op.inputs:
        _same_dtype(op, g, g.t(i), y)  # type: ignore[arg-type]
    _rank_ok(op, g, y)


@register("CONCATENATION")
class Concatenation(OpSupport):
    """Bytes copied as TFLM does: every quantized input must share the output's scale and zero
    point (TFLM rejects anything needing requantization)."""

    # TFLM's list, plus uint8 under the same no-requantization rule.
    _DTYPES = ("int8", "uint8", "int16", "int32", "int64", "float32")

    def _axis(self, op: Op, g: Graph) -> int:
        axis = int(op.attrs.get("axis", 0))
        return axis + len(g.t(op.outputs[0]).shape) if axis < 0 else axis

    def check(self, op: Op, g: Graph) -> None:
        _check_inputs(op, g, self._DTYPES)
        act = op.attrs.get("fused_activation_function", "NONE")
        if act != "NONE":
            raise unsupported(op, g, f"fused activation {act} is not supported (TFLM requires NONE)")
        y = g.t(op.outputs[0])
        axis = self._axis(op, g)
        if not 0 <= axis < len(y.shape):
            raise unsupported(op, g, f"axis {op.attrs.get('axis')} is out of range for rank {len(y.shape)}")
        total = 0
        for i in op.inputs:
            t = g.t(i)  # type: ignore[arg-type]
            if len(t.shape) != len(y.shape) or any(a != b for k, (a, b) in enumerate(zip(t.shape, y.shape))
                                                   if k != axis):
                raise unsupported(op, g, f"input {i} shape {list(t.shape)} does not fit output {list(y.shape)} "
                                         f"on axis {axis}")
            total += t.shape[axis]
            if y.dtype in ("int8", "uint8") and (t.quant is None or y.quant is None or t.quant.s != y.quant.s
                                                 or t.quant.zp != y.quant.zp):
                # TFLM: "Make sure there is no re-scaling needed for Int8 quantized kernel".
                raise unsupported(op, g, f"input {i} quantization differs from the output's; TFLM's int8 "
                                         f"CONCATENATION does not requantize and rejects this, so does tinyc "
                                         f"(requantize the inputs first)")
            if y.dtype == "int16" and t.quant is not None and t.quant.zp != 0:
                raise unsupported(op, g, f"int16 input {i} has zero point {t.quant.zp}; TFLM requires 0")
        if total != y.shape[axis]:
            raise unsupported(op, g, f"inputs sum to {total} along axis {axis}, output has {y.shape[axis]}")

    def fold(self, op: Op, g: Graph) -> list[np.ndarray] | None:
        ts = [g.t(i) for i in op.inputs if i is not None]
        if any(t.data is None for t in ts):
            return None
        return [np.concatenate([t.data for t in ts], axis=self._axis(op, g))]  # type: ignore[misc]

    def slices(self, op: Op, g: Graph) -> tuple[int, ...] | None:
        return _end_to_end(op, g, self._axis(op, g))

    def lower(self, op: Op, g: Graph) -> KernelCall:
        y = g.t(op.outputs[0])
        axis = self._axis(op, g)
        outer = int(np.prod(y.shape[:axis], dtype=np.int64))
        copy = [int(np.prod(g.t(i).shape[axis:], dtype=np.int64)) for i in op.inputs]  # type: ignore[arg-type]
        return _concat_call(op, g, outer, copy, f"axis {axis}, {len(op.inputs)} inputs")


@register("PACK")
class Pack(OpSupport):
    """N equally shaped inputs stacked along a new axis: a concatenation of equal blocks."""

    _DTYPES = ("int8", "uint8", "int16", "int32", "int64", "float32")

    def _axis(self, op: Op, g: Graph) -> int:
        axis = int(op.attrs.get("axis", 0))
        return axis + len(g.t(op.outputs[0]).shape) if axis < 0 else axis

    def check(self, op: Op, g: Graph) -> None:
        _check_inputs(op, g, self._DTYPES)
        y = g.t(op.outputs[0])
        n = int(op.attrs.get("values_count", len(op.inputs)))
        if n != len(op.inputs):
            raise unsupported(op, g, f"values_count {n} differs from the {len(op.inputs)} inputs")
        axis = self._axis(op, g)
        x0 = g.t(op.inputs[0])  # type: ignore[arg-type]
        if not 0 <= axis <= len(x0.shape):
            raise unsupported(op, g, f"axis {op.attrs.get('axis')} is out of range")
        if any(tuple(g.t(i).shape) != tuple(x0.shape) for i in op.inputs):  # type: ignore[arg-type]
            raise unsupported(op, g, "all inputs must have the same shape")
        want = tuple(x0.shape[:axis]) + (n,) + tuple(x0.shape[axis:])
        if tuple(y.shape) != want:
            raise unsupported(op, g, f"output shape {list(y.shape)} should be {list(want)}")

    def fold(self, op: Op, g: Graph) -> list[np.ndarray] | None:
        ts = [g.t(i) for i in op.inputs if i is not None]
        if any(t.data is None for t in ts):
            return None
        return [np.stack([t.data for t in ts], axis=self._axis(op, g))]  # type: ignore[misc]

    def slices(self, op: Op, g: Graph) -> tuple[int, ...] | None:
        return _end_to_end(op, g, self._axis(op, g))

    def lower(self, op: Op, g: Graph) -> KernelCall:
        y = g.t(op.outputs[0])
        axis = self._axis(op, g)
        outer = int(np.prod(y.shape[:axis], dtype=np.int64))
        inner = int(np.prod(y.shape[axis + 1:], dtype=np.int64))
        return _concat_call(op, g, outer, [inner] * len(op.inputs), f"axis {axis}, {len(op.inputs)} inputs")
