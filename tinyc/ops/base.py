"""What every op family module provides: the op's facts, asked by the stages, never re-derived.

An op family module defines one or more `OpSupport` subclasses and registers each with
`@register("BUILTIN_NAME", ...)`. Stages ask the registry (`tinyc.ops.registry.lookup`) for
an op's module rather than switching on op names themselves.

`lower()` is TFLM's Prepare done at compile time: it computes every fixed-point constant and
returns a `KernelCall`, which codegen prints as `function(&params, args...)` without deciding
anything itself.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.ir import Graph, Op, Tensor


@dataclass(frozen=True)
class Arg:
    """One pointer argument of a kernel call.

    kind: "in" (activation read, `const T *`), "out" (activation written, `T *`),
    "const" (a constant tensor in flash, `const T *`), "scratch" (a temporary of `nbytes`
    in the arena, `void *`), "null" (`NULL`, e.g. a missing bias).
    """

    kind: str
    tensor: str | None = None
    nbytes: int = 0
    #: training only. kind "param": a trained weight or bias (`tensor`), the mutable copy in SRAM;
    #: "state": a static buffer of the training step (`tensor` names it, `ctype` its element type,
    #: `nbytes` its size: update residuals, momentum), zero at start; "sgd": the optimizer settings.
    ctype: str = ""


@dataclass(frozen=True)
class KernelCall:
    """A fully prepared kernel invocation.

    params: C struct fields in declaration order. Values may be int, float, bool, a tuple of
    ints (printed as an inline array initializer `{a, b}`) or a numpy array (printed as a
    separate `static const` array; the field receives its pointer).
    """

    function: str
    header: str
    sources: tuple[str, ...]
    params_type: str | None
    params: Mapping[str, Any]
    args: tuple[Arg, ...]
    comment: str = ""


@dataclass(frozen=True)
class OverlapSpec:
    """How an op's output may overlap one of its inputs (in-place / overlapped buffers).

    The kernel writes its output in `units` of `unit_bytes` in ascending address order.
    `safe_limit[p]` is the lowest input byte offset the kernel may still read once it starts
    writing unit p. The output may then start `D` bytes below the input with
    D >= max_p((p + 1) * unit_bytes - safe_limit[p]); D may be negative (output above input).

    `reverse_limit`, when set, says the kernel is memmove-like: when its output starts above
    its input (a higher address) it writes the units in descending order instead, and
    `reverse_limit[p]` is one past the highest input byte it may still read once it starts
    writing unit p. The output may then also start `U` bytes above the input with
    U >= max_p(reverse_limit[p] - p * unit_bytes) (see `min_distance_above`).

    Only valid when the module's kernel really has that write order: the op module is the one
    that knows, so only it may return a spec.
    """

    input_index: int
    unit_bytes: int
    safe_limit: np.ndarray
    reverse_limit: np.ndarray | None = None

    def min_distance(self) -> int:
        p = np.arange(len(self.safe_limit), dtype=np.int64)
        return int(np.max((p + 1) * self.unit_bytes - self.safe_limit.astype(np.int64)))

    def min_distance_above(self) -> int | None:
        """How far above the input the output must start at least when the kernel writes in
        descending order (always > 0); None when the kernel only writes in ascending order."""
        if self.reverse_limit is None:
            return None
        p = np.arange(len(self.reverse_limit), dtype=np.int64)
        return max(1, int(np.max(self.reverse_limit.astype(np.int64) - p * self.unit_bytes)))


def elementwise_overlap(in_bytes_per_elem: int, out_bytes_per_elem: int, n: int, input_index: int = 0,
                        reversible: bool = False) -> OverlapSpec:
    """Element i is read before element i is written, and later reads are of later elements.
    reversible: the kernel walks the elements from the last one down when its output starts
    above its input (then element i is read before it is written, and later reads are of
    earlier elements)."""
    k = np.arange(n, dtype=np.int64)
    return OverlapSpec(input_index, out_bytes_per_elem, (k + 1) * in_bytes_per_elem,
                       (k + 1) * in_bytes_per_elem if reversible else None)


def window_overlap(in_shape: tuple[int, ...], out_shape: tuple[int, ...], stride: tuple[int, int],
                   pad_top: int, pad_left: int, elem_bytes: int = 1, input_index: int = 0,
                   reverse_window: tuple[int, int, int, int] | None = None) -> OverlapSpec:
    """For NHWC window kernels (conv, depthwise, pooling) that produce output pixels in row-major
    order, every channel of a pixel before the next pixel. While writing pixel p the kernel still
    reads windows of pixels >= p, whose lowest byte is their top-left tap (clipped to the image).

    reverse_window: (filter_h, filter_w, dilation_h, dilation_w) of a kernel that produces the
    pixels in descending order when its output starts above its input; while writing pixel p it
    then still reads windows of pixels <= p, whose highest byte is in their bottom-right tap."""
    _, ih, iw, ic = (1,) * (4 - len(in_shape)) + tuple(in_shape)
    n, oh, ow, oc = (1,) * (4 - len(out_shape)) + tuple(out_shape)
    oy, ox = np.meshgrid(np.arange(oh), np.arange(ow), indexing="ij")
    row = np.clip(oy * stride[0] - pad_top, 0, ih - 1)
    col = np.clip(ox * stride[1] - pad_left, 0, iw - 1)
    # A window whose first rows/cols are padding starts at its first real tap; bounded by clip.
    first = ((row * iw + col) * ic * elem_bytes).ravel().astype(np.int64)
    first = np.minimum.accumulate(first[::-1])[::-1]
    per_image = ih * iw * ic * elem_bytes
    limits = np.concatenate([first + b * per_image for b in range(n)]) if n > 1 else first
    reverse = None
    if reverse_window is not None:
        fh, fw, dh, dw = reverse_window
        # The last tap, clipped to the image: a window running past the border ends before it.
        row_end = np.clip(oy * stride[0] - pad_top + (fh - 1) * dh, 0, ih - 1)
        col_end = np.clip(ox * stride[1] - pad_left + (fw - 1) * dw, 0, iw - 1)
        last = (((row_end * iw + col_end) * ic + ic) * elem_bytes).ravel().astype(np.int64)
        last = np.maximum.accumulate(last)
        reverse = np.concatenate([last + b * per_image for b in range(n)]) if n > 1 else last
    return OverlapSpec(input_index, oc * elem_bytes, limits, reverse)


@dataclass(frozen=True)
class InPlace:
    """An op's in-place variant: `call` writes the output starting exactly where input
    `input_index` starts (the same first byte), using the scratch buffers its "scratch" args
    ask for (planned as tensors live only during the op). The planner runs it instead of
    lower()'s call where that gives a smaller arena than the op's OverlapSpec distance.

    Only the op module may return one: it knows its kernel's access order and proves it safe.
    """

    input_index: int
    call: KernelCall


@dataclass(frozen=True)
class SpatialWindow:
    """How an op's output rows and columns depend on its input's, for patch-based inference.

    Output row y reads input rows [y*stride - pad_before, y*stride - pad_before + (filter-1)*dilation]
    (likewise for columns): one (filter, stride, dilation, pad_before) per axis, (height, width).
    A point-wise op (element-wise, activation, quantize) is the 1x1 window with stride 1.
    """

    filter: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    pad_before: tuple[int, int] = (0, 0)

    @property
    def pointwise(self) -> bool:
        return self.filter == (1, 1) and self.stride == (1, 1) and self.pad_before == (0, 0)


POINTWISE = SpatialWindow()


def pointwise_spatial(op: Op, g: Graph) -> SpatialWindow | None:
    """POINTWISE when every activation input has the output's NHWC shape and constant inputs
    broadcast over height and width (a per-channel vector): then a patch of the output needs
    exactly the same patch of each input."""
    y = g.t(op.outputs[0]) if len(op.outputs) == 1 else None
    if y is None or len(y.shape) != 4 or y.shape[0] != 1:
        return None
    for name in op.inputs:
        if name is None:
            continue
        t = g.t(name)
        if t.is_const:
            if t.size != 1 and (len(t.shape) >= 3 and (t.shape[-2] != 1 or t.shape[-3] != 1)):
                return None
        elif tuple(t.shape) != tuple(y.shape):
            return None
    return POINTWISE


class OpSupport:
    """Base for op family modules. Subclasses override what applies to them."""

    #: builtin names handled (filled by @register)
    kinds: tuple[str, ...] = ()

    def check(self, op: Op, g: Graph) -> None:
        """Raise UnsupportedError (via `unsupported`) for anything lower() cannot do exactly."""

    def macs(self, op: Op, g: Graph) -> int:
        """Multiply-accumulates; element-wise ops count one per output element."""
        return sum(g.t(o).size for o in op.outputs)

    def lower(self, op: Op, g: Graph) -> KernelCall:
        raise NotImplementedError(f"{type(self).__name__}.lower")

    def fold(self, op: Op, g: Graph) -> list[np.ndarray] | None:
        """Compute the outputs at compile time when they do not depend on the model input
        (all inputs constant, or SHAPE of a static shape); None when it cannot."""
        return None

    def view_of(self, op: Op, g: Graph) -> str | None:
        """The input whose bytes the output is, unchanged (RESHAPE): the op becomes an alias."""
        return None

    def slices(self, op: Op, g: Graph) -> tuple[int, ...] | None:
        """When the output's bytes are exactly the inputs' bytes laid end to end (CONCATENATION
        whose axes before the concatenation axis are all 1): each input's byte offset in the
        output, so that passes/concat_inplace can let the producers write there. None: never."""
        return None

    def overlap(self, op: Op, g: Graph) -> OverlapSpec | None:
        """How the output may overlap a dying input (see OverlapSpec); None: never."""
        return None

    def in_place(self, op: Op, g: Graph) -> InPlace | None:
        """A kernel variant whose output starts exactly at a dying input (see InPlace); None: none."""
        return None

    def spatial(self, op: Op, g: Graph) -> SpatialWindow | None:
        """How output pixels depend on input pixels (patch-based inference); None: the op cannot
        run on a patch (global ops like MEAN, FULLY_CONNECTED, RESHAPE)."""
        return None

    def on_patch(self, op: Op, g: Graph, padding: tuple[int, int, int, int]) -> dict[str, Any]:
        """The op's attributes when it runs on a patch whose input is padded by `padding`
        (top, bottom, left, right) only where the patch touches the feature-map border.
        Point-wise ops ignore it; window ops override."""
        if any(padding):
            raise NotImplementedError(f"{op.label} cannot pad a patch")
        return dict(op.attrs)

    # ---- training (tinyc/train): the facets the backward graph builder asks ----

    def weights(self, op: Op, g: Graph) -> "Weights | None":
        """The op's trainable weight and bias tensors and how its input channels are counted;
        None for ops without weights."""
        return None

    def loss_head(self, op: Op, g: Graph) -> float | None:
        """Ops after the classifier that training skips because they do not change the arg-max
        (SOFTMAX returns its beta, which scales the logits of the loss; QUANTIZE/DEQUANTIZE 1.0);
        None for every other op."""
        return None

    def keeps_values(self, op: Op, g: Graph) -> bool:
        """True when the output holds the input's real values, only re-typed or re-scaled
        (QUANTIZE, DEQUANTIZE): a new classifier's logits scale carries over to it."""
        return False

    def backward(self, op: Op, g: Graph, ctx: "GradContext") -> "Backward":
        """The backward of this op: the ops to save what it needs during the forward pass, the
        ops computing the gradients its inputs need and applying its parameter update. Ops without
        one raise; the builder names the op and stops only when it lies on the gradient path."""
        raise unsupported(op, g, f"{op.kind} has no backward (training through it is not supported); "
                                 "update only layers after it")

    def absorbs_pad(self, op: Op, g: Graph) -> bool:
        """True when a preceding zero-point PAD can be folded into this op as explicit padding
        (attrs["explicit_padding"] = (top, bottom, left, right))."""
        return False


def unsupported(op: Op, g: Graph, why: str) -> UnsupportedError:
    """An error naming the op, its index in the model and its tensors (Vela's Operation.error)."""
    ins = ", ".join(_describe(g, n) for n in op.inputs)
    outs = ", ".join(_describe(g, n) for n in op.outputs)
    return UnsupportedError(f"{op.label}: {why} [inputs: {ins}; outputs: {outs}]")


def _describe(g: Graph, name: str | None) -> str:
    if name is None:
        return "-"
    t: Tensor = g.t(name)
    return f"{name} {t.dtype}{list(t.shape)}"


def tensor_dims4(t: Tensor) -> tuple[int, int, int, int]:
    """NHWC dims padded on the left with ones (TFLite's RuntimeShape extension)."""
    s = tuple(t.shape)
    if len(s) > 4:
        raise ValueError(f"tensor {t.name} has rank {len(s)} > 4")
    return (1,) * (4 - len(s)) + s  # type: ignore[return-value]




# ---- training ----

@dataclass(frozen=True)
class Weights:
    """An op's trainable parameters. in_channels: how many input channels (CONV_2D: the filter's
    input channels; depthwise: the input's channels; FULLY_CONNECTED: input features) a partial
    update chooses from; channel_norms: per such channel, the L1 norm of its weights (the rule that
    selects which channels a partial update trains)."""

    weight: str
    bias: str | None
    in_channels: int
    channel_norms: np.ndarray
    #: per weight element, the input channel it belongs to (shaped like the weights)
    element_channel: np.ndarray | None = None
    #: the weights' axis that runs over input channels, and how many entries along it one input
    #: channel owns (a depthwise layer's depth multiplier): how a partial update splits the tensor
    axis: int = -1
    group: int = 1

    def along_axis(self, channels: tuple[int, ...]) -> np.ndarray:
        """The entries along `axis` that belong to `channels` (ascending)."""
        return np.array([c * self.group + m for c in channels for m in range(self.group)], dtype=np.int64)

    def mask(self, channels: tuple[int, ...]) -> np.ndarray:
        """1.0 where a weight element belongs to one of `channels`, else 0.0."""
        assert self.element_channel is not None
        return np.isin(self.element_channel, np.asarray(channels, dtype=np.int64)).astype(np.float64)


@dataclass(frozen=True)
class ParamUpdate:
    """What the update scheme trains in one op: its bias, and its weights on the selected input
    channels (`channels`, ascending; empty: weights frozen)."""

    bias: bool = False
    channels: tuple[int, ...] = ()


@dataclass
class GradContext:
    """What the backward builder gives an op's backward facet.

    dy: the float32 tensor holding d(loss)/d(output 0); want: per op input, whether its gradient is
    needed; update: what to train (None: nothing); qas: scale updates by the quantization steps
    (QAS); momentum: keep momentum buffers; residuals: keep what rounding drops per trained
    element (else the update rounds stochastically); new_tensor(hint, shape, dtype) adds a tensor
    and returns its name; state(hint, ctype, count) names a static training buffer."""

    dy: str
    want: tuple[bool, ...]
    update: ParamUpdate | None
    qas: bool
    momentum: bool
    new_tensor: Any
    state: Any
    residuals: bool = True


@dataclass(frozen=True)
class Backward:
    """One op's backward. saves: run right after the forward op (activation masks, the trained
    input channels); ops: run in the backward pass in order (input gradients first, then the
    update that changes the weights they read); grads: input index -> tensor with its gradient
    (possibly `dy` itself for an identity)."""

    saves: tuple[Op, ...] = ()
    ops: tuple[Op, ...] = ()
    grads: Mapping[int, str] = dataclasses.field(default_factory=dict)
