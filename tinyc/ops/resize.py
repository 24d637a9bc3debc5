"""RESIZE_NEAREST_NEIGHBOR, NHWC (runtime_c/src/resize.c).

TFLM chooses each source row/column in float32 (reference_ops::GetNearestNeighbor). That is
index arithmetic, not data arithmetic, so it is done here once, in numpy float32 with the same
operation order, and the kernel reads two int32 tables.

Like TFLM, the op copies values: it never requantizes, whatever the output's quantization.
"""

from __future__ import annotations

import numpy as np

from tinyc.ir import DTYPE_BYTES, Graph, Op
from tinyc.ops.base import Arg, KernelCall, OpSupport, unsupported
from tinyc.ops.registry import register
from tinyc.quant import tflite_round

_DTYPES = ("int8", "uint8", "int16", "int32", "float32")


def nearest_map(out_size: int, in_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """TFLM's GetNearestNeighbor for every output index, in float32 as the C++ computes it."""
    f32 = np.float32
    if align_corners and out_size > 1:
        scale = f32(in_size - 1) / f32(out_size - 1)
    else:
        scale = f32(in_size) / f32(out_size)
    offset = f32(0.5) if half_pixel_centers else f32(0.0)
    out = np.empty(out_size, dtype=np.int32)
    for i in range(out_size):
        v = (f32(i) + offset) * scale  # int + float -> float; float * float, float32 throughout
        if align_corners:
            r = tflite_round(float(v))  # std::round on the float32 value (exact in double)
        else:
            r = int(np.floor(v))
        r = min(r, in_size - 1)
        if half_pixel_centers:
            r = max(0, r)
        out[i] = r
    return out


@register("RESIZE_NEAREST_NEIGHBOR")
class ResizeNearestNeighbor(OpSupport):
    def check(self, op: Op, g: Graph) -> None:
        if len(op.inputs) < 2 or op.inputs[0] is None or op.inputs[1] is None:
            raise unsupported(op, g, "expects an input and a size tensor")
        x, size, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
        if x.dtype not in _DTYPES or y.dtype != x.dtype:
            raise unsupported(op, g, f"{x.dtype} -> {y.dtype} is not supported (same dtype in and out, one of "
                                     f"{', '.join(_DTYPES)})")
        if len(x.shape) != 4 or len(y.shape) != 4:
            raise unsupported(op, g, "input and output must be 4-D NHWC")
        if size.data is None or size.size != 2:
            raise unsupported(op, g, "the size input must be a constant [new_height, new_width] "
                                     "(TFLM needs it at Prepare too)")
        oh, ow = (int(v) for v in size.data.ravel())
        want = (x.shape[0], oh, ow, x.shape[3])
        if tuple(y.shape) != want:
            raise unsupported(op, g, f"output shape {list(y.shape)} does not match the size input {list(want)}")
        if oh < 1 or ow < 1:
            raise unsupported(op, g, "empty output size")

    def lower(self, op: Op, g: Graph) -> KernelCall:
        x, y = g.t(op.inputs[0]), g.t(op.outputs[0])
        n, ih, iw, c = x.shape
        _, oh, ow, _ = y.shape
        ac = bool(op.attrs.get("align_corners", False))
        hp = bool(op.attrs.get("half_pixel_centers", False))
        params = dict(batches=n, in_h=ih, in_w=iw, out_h=oh, out_w=ow, pixel_bytes=c * DTYPE_BYTES[x.dtype],
                      y_map=nearest_map(oh, ih, ac, hp), x_map=nearest_map(ow, iw, ac, hp))
        flags = " ".join(f for f, on in (("align_corners", ac), ("half_pixel_centers", hp)) if on)
        return KernelCall(function="tinyc_resize_nearest", header="tinyc/resize.h", sources=("resize.c",),
                          params_type="tinyc_resize_nearest_params_t", params=params,
                          args=(Arg("in", op.inputs[0]), Arg("out", op.outputs[0])),
                          comment=f"{ih}x{iw} -> {oh}x{ow}" + (f" {flags}" if flags else ""))
