"""TINYC_CROP and TINYC_PLACE: the two internal ops patch-based inference adds (tinyc.schedule).

TINYC_CROP copies box (y0, y1, x0, x1) of an NHWC feature map into a patch tensor, for a stage
op whose patch needs a smaller region than its producer computed (e.g. the skip branch of a
residual block inside the stage, or the model input kept whole). TINYC_PLACE copies a patch
of the stage output into its box of the full-size output.

Several PLACE ops fill one buffer, but the IR produces every tensor once: PLACE k outputs a
new name aliased to the full output and takes the previous PLACE's output as a second input,
so lifetimes and op order see the chain while the kernel only gets (patch, full buffer).
"""

from __future__ import annotations

from tinyc.ir import Graph, Op
from tinyc.ops.base import Arg, KernelCall, OpSupport, unsupported
from tinyc.ops.registry import register

Box = tuple[int, int, int, int]


def box_params(full_shape: tuple[int, ...], box: Box, item_bytes: int, patch_is_src: bool) -> dict[str, int]:
    _, h, w, c = full_shape
    y0, y1, x0, x1 = box
    if not (0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w):
        raise ValueError(f"box {box} is not inside a {h}x{w} feature map")
    row = (x1 - x0) * c * item_bytes
    full_off, full_stride = (y0 * w + x0) * c * item_bytes, w * c * item_bytes
    if patch_is_src:
        return dict(rows=y1 - y0, row_bytes=row, src_offset=0, src_stride=row,
                    dst_offset=full_off, dst_stride=full_stride)
    return dict(rows=y1 - y0, row_bytes=row, src_offset=full_off, src_stride=full_stride,
                dst_offset=0, dst_stride=row)


class _CopyBox(OpSupport):
    patch_is_src = False

    def full_and_patch(self, op: Op, g: Graph) -> tuple[str, str]:
        raise NotImplementedError

    def check(self, op: Op, g: Graph) -> None:
        full, patch = (g.t(n) for n in self.full_and_patch(op, g))
        box = op.attrs.get("box")
        if box is None or len(full.shape) != 4 or len(patch.shape) != 4 or full.dtype != patch.dtype:
            raise unsupported(op, g, "needs a 4-D feature map, a 4-D patch of the same dtype and a box")
        y0, y1, x0, x1 = box
        if tuple(patch.shape) != (1, y1 - y0, x1 - x0, full.shape[3]) or full.shape[0] != 1:
            raise unsupported(op, g, f"patch shape {list(patch.shape)} does not match box {box} "
                                     f"of {list(full.shape)}")

    def macs(self, op: Op, g: Graph) -> int:
        return 0

    def lower(self, op: Op, g: Graph) -> KernelCall:
        self.check(op, g)
        full_name, patch_name = self.full_and_patch(op, g)
        full = g.t(full_name)
        params = box_params(full.shape, op.attrs["box"], full.nbytes // full.size, self.patch_is_src)
        y0, y1, x0, x1 = op.attrs["box"]
        src, dst = (patch_name, op.outputs[0]) if self.patch_is_src else (op.inputs[0], op.outputs[0])
        return KernelCall(function="tinyc_copy_box", header="tinyc/copy_box.h", sources=("copy_box.c",),
                          params_type="tinyc_copy_box_params_t", params=params,
                          args=(Arg("in", src), Arg("out", dst)),
                          comment=f"rows {y0}..{y1 - 1}, cols {x0}..{x1 - 1}")


@register("TINYC_CROP")
class Crop(_CopyBox):
    def full_and_patch(self, op: Op, g: Graph) -> tuple[str, str]:
        return op.inputs[0], op.outputs[0]


@register("TINYC_PLACE")
class Place(_CopyBox):
    patch_is_src = True

    def full_and_patch(self, op: Op, g: Graph) -> tuple[str, str]:
        return op.outputs[0], op.inputs[0]


@register("TINYC_READ_INPUT")
class ReadInput(OpSupport):
    """A box of a streamed model input, fetched through the generated `<prefix>_read_input` hook
    (the application's camera or external-RAM reader, or the default buffer reader)."""

    def macs(self, op: Op, g: Graph) -> int:
        return 0

    def lower(self, op: Op, g: Graph) -> KernelCall:
        src = g.t(op.attrs["source"])
        _, h, w, c = src.shape
        y0, y1, x0, x1 = op.attrs["box"]
        item = src.nbytes // src.size
        params = dict(input=op.attrs["input_index"], y0=y0, y1=y1, x0=x0, x1=x1, row_bytes=w * c * item,
                      pixel_bytes=c * item)
        return KernelCall(function="{prefix}_read_input", header="tinyc/copy_box.h", sources=(),
                          params_type="tinyc_input_box_t", params=params, args=(Arg("out", op.outputs[0]),),
                          comment=f"streamed input {op.attrs['input_index']}: rows {y0}..{y1 - 1}, cols {x0}..{x1 - 1}")
