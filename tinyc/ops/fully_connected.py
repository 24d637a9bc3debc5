"""FULLY_CONNECTED, int8: TFLM's Prepare (micro/kernels/fully_connected_common.cc) at compile
time, Eval in runtime_c/src/fully_connected.c.

Supported: int8 input and output; constant int8 weights [units, in_features] with per-tensor
quantization (any zero point: TFLM's per-tensor kernel applies the weights offset) or
per-output-channel scales along axis 0 with zero points 0; int32 bias or none; fused
NONE/RELU/RELU6/RELU_N1_TO_1; keep_num_dims either way. Like TFLM, the input is read as
[batches, in_features] whatever its shape, with batches = output size / units.
"""

from __future__ import annotations

import numpy as np

from tinyc.ir import Graph, Op, Tensor
from tinyc.ops.base import Arg, Backward, GradContext, KernelCall, OpSupport, Weights, unsupported
from tinyc.ops import _conv_math as cm
from tinyc.ops import _train_math as tm
from tinyc.ops.registry import register
from tinyc.quant import activation_range, fast_requant, INT32_MAX, quantize_multiplier, quantize_multiplier_array

KIND = "FULLY_CONNECTED"
#: the packed kernel's int16 weights may cost at most this much flash over the int8 tensor they
#: replace (per layer); larger layers run the model-layout kernel on the int8 weights
PACK_MAX_EXTRA_BYTES = 32 * 1024
FUSED_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def _bias(op: Op, g: Graph) -> Tensor | None:
    return g.t(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] is not None else None


def _dims(op: Op, g: Graph) -> tuple[int, int, int]:
    """(batches, output_depth, accum_depth) exactly as TFLM's kernel derives them."""
    w, y = g.t(op.inputs[1]), g.t(op.outputs[0])
    output_depth = y.shape[-1] if y.shape else 1
    batches = y.size // output_depth if output_depth else 0
    return batches, output_depth, w.shape[-1]


@register("FULLY_CONNECTED")
class FullyConnected(OpSupport):
    def check(self, op: Op, g: Graph) -> None:
        if len(op.inputs) < 2 or op.inputs[0] is None or op.inputs[1] is None or len(op.outputs) != 1:
            raise unsupported(op, g, f"{KIND} needs an input, weights, an optional bias and one output")
        x, w, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
        bias = _bias(op, g)
        if x.dtype == "float32" or w.dtype == "float32" or y.dtype == "float32":
            raise unsupported(op, g, f"float32 {KIND}: tinyc needs an int8-quantized model "
                                     "(full-integer quantization)")
        if x.dtype == "int16":
            raise unsupported(op, g, f"int16 activations (16x8 quantization) in {KIND} are not supported; "
                                     "tinyc supports int8 input and output with int8 weights")
        if (x.dtype, w.dtype, y.dtype) != ("int8", "int8", "int8"):
            raise unsupported(op, g, f"{KIND} with {x.dtype} input, {w.dtype} weights and {y.dtype} output "
                                     "is not supported; tinyc supports int8 input, weights and output")
        if w.data is None:
            raise unsupported(op, g, f"{KIND} with weights computed at run time is not supported "
                                     "(the weights must be a constant)")
        if bias is not None and bias.dtype != "int32":
            raise unsupported(op, g, f"{KIND} bias of dtype {bias.dtype} is not supported (int32 only)")
        if op.attrs.get("weights_format", 0) not in (0, "DEFAULT"):
            raise unsupported(op, g, f"{KIND} weights_format {op.attrs.get('weights_format')} (shuffled "
                                     "weights) is not supported; only the default layout is")
        act = op.attrs.get("fused_activation_function", "NONE")
        if act not in FUSED_ACTIVATIONS:
            raise unsupported(op, g, f"fused activation {act} on {KIND} is not supported "
                                     f"(supported: {', '.join(FUSED_ACTIVATIONS)})")
        for t, what in ((x, "input"), (y, "output")):
            if t.quant is None:
                raise unsupported(op, g, f"{KIND} {what} has no quantization parameters")
            if t.quant.per_channel:
                raise unsupported(op, g, f"{KIND} {what} has per-channel quantization; only the weights may")
            if not -128 <= t.quant.zp <= 127:
                raise unsupported(op, g, f"{KIND} {what} zero point {t.quant.zp} is outside int8")
            if not t.quant.s > 0:
                raise unsupported(op, g, f"{KIND} {what} scale {t.quant.s} is not positive")
        if len(w.shape) != 2:
            raise unsupported(op, g, f"{KIND} weights of rank {len(w.shape)} are not supported "
                                     "(rank 2: [units, in_features])")
        units, accum_depth = w.shape
        if w.quant is None:
            raise unsupported(op, g, f"{KIND} weights have no quantization parameters")
        if not all(s > 0 for s in w.quant.scale):
            raise unsupported(op, g, f"{KIND} weights have a scale that is not positive")
        if w.quant.per_channel:
            if w.quant.axis != 0 or len(w.quant.scale) != units:
                raise unsupported(op, g, f"{KIND} weights have {len(w.quant.scale)} scales along axis "
                                         f"{w.quant.axis}; TFLM needs one per tensor or one per unit "
                                         f"({units}) along axis 0")
            if any(z != 0 for z in w.quant.zero_point):
                raise unsupported(op, g, f"per-channel {KIND} weights need zero points 0 (TFLM ignores "
                                         f"them), got {sorted(set(w.quant.zero_point))}")
        elif not -128 <= w.quant.zp <= 127:
            raise unsupported(op, g, f"{KIND} weights zero point {w.quant.zp} is outside int8")
        if not y.shape:
            raise unsupported(op, g, f"{KIND} output must have at least one dimension")
        batches, output_depth, _ = _dims(op, g)
        if output_depth != units:
            raise unsupported(op, g, f"{KIND} output has {output_depth} features but the weights have "
                                     f"{units} units")
        if x.size != batches * accum_depth:
            raise unsupported(op, g, f"{KIND} input has {x.size} values; {batches} batch(es) of "
                                     f"{accum_depth} features need {batches * accum_depth}")
        if bias is not None:
            if bias.size != units:
                raise unsupported(op, g, f"{KIND} bias has {bias.size} values for {units} units")
            if not w.quant.per_channel:
                # TFLM's GetQuantizedConvolutionMultipler refuses a bias scale that is not
                # input_scale * weights_scale (within 2 % of an output step)
                bias_scale = bias.quant.s if bias.quant is not None else 0.0
                diff = abs(x.quant.s * w.quant.s - bias_scale)
                if not diff / y.quant.s <= 0.02:
                    raise unsupported(op, g, f"{KIND} bias scale {bias_scale} is not input scale x weights "
                                             f"scale ({x.quant.s * w.quant.s}); TFLM refuses this model")
        if not op.attrs.get("trained"):  # trained: the update bounds the bias instead (tm.bias_limit)
            self._check_accumulator(op, g)

    def _check_accumulator(self, op: Op, g: Graph) -> None:
        """The int32 accumulator must not overflow (TFLM relies on it silently; tinyc proves it)."""
        x, w = g.t(op.inputs[0]), g.t(op.inputs[1])
        bias = _bias(op, g)
        w_off = 0 if w.quant.per_channel else -w.quant.zp
        span = max(abs(-128 - x.quant.zp), abs(127 - x.quant.zp))
        bound = np.abs(w.data.astype(np.int64) + w_off).sum(axis=1) * span
        if bias is not None and bias.data is not None:
            bound = bound + np.abs(bias.data.astype(np.int64))
        elif bias is not None:
            bound = bound + INT32_MAX  # a bias computed at run time can be anything
        if int(bound.max(initial=0)) > INT32_MAX:
            raise unsupported(op, g, f"{KIND} int32 accumulator could overflow ({w.shape[1]} features "
                                     "with these weights and bias)")

    def weights(self, op: Op, g: Graph) -> Weights | None:
        w = g.t(op.inputs[1])
        b = _bias(op, g)
        return Weights(weight=op.inputs[1], bias=b.name if b is not None else None, in_channels=w.shape[1],
                       channel_norms=tm.weight_norms(w.data, 1),
                       element_channel=np.broadcast_to(np.arange(w.shape[1]), w.shape), axis=1)

    def backward(self, op: Op, g: Graph, ctx: GradContext) -> Backward:
        w = g.t(op.inputs[1])
        batches, output_depth, accum_depth = _dims(op, g)
        scales = np.array(w.quant.scale if w.quant.per_channel else w.quant.scale[:1] * output_depth,
                          dtype=np.float64)
        macs = self.macs(op, g)
        fam = tm.WeightedFamily(
            header="tinyc/train_fully_connected.h", source="train_fully_connected.c",
            backward_input="tinyc_fc_backward_input_f32", update="tinyc_fc_update", bwd_type="tinyc_fc_bwd_params_t",
            update_type="tinyc_fc_update_params_t",
            bwd_params=dict(rows=batches, in_depth=accum_depth, out_depth=output_depth), out_channels=output_depth,
            w_scale=scales, taps=accum_depth, pixels=batches, in_c=accum_depth, residuals_per_sel=output_depth,
            scratch_per_sel=1, scratch_fixed=0, macs_input=macs, macs_update=macs)
        return tm.weighted_backward(op, g, ctx, fam, self.weights(op, g))

    def _lower_packed(self, op: Op, g: Graph, comment: str, act_min: int, act_max: int) -> KernelCall | None:
        """tinyc_fully_connected_s8_packed: the weights (+ filter offset) widened to int16 and
        interleaved for SMLAD at compile time (doubled: the fast requantization), the input offset
        folded into the bias. Not for trained layers (their weights change at run time, in the
        model's layout), a bias computed at run time, a fold that would not fit int32, layers
        tinyc/quant.py fast_requant cannot prove (a multiplier of 0.5 or more, huge accumulators),
        or weights whose int16 copy would cost more than PACK_MAX_EXTRA_BYTES of flash over the
        int8 tensor it replaces."""
        x, w, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
        bias = _bias(op, g)
        if op.attrs.get("trained") or op.attrs.get("split") or (bias is not None and bias.data is None):
            return None
        units, depth = w.shape
        if packed_weight_bytes(units, depth) - w.nbytes > PACK_MAX_EXTRA_BYTES:
            return None
        w_off = 0 if w.quant.per_channel else -w.quant.zp
        wide = w.data.astype(np.int64) + w_off
        folded = cm.folded_bias(wide, bias.data if bias is not None else None, -x.quant.zp)
        if folded is None:
            return None
        if w.quant.per_channel:
            mult, shift = quantize_multiplier_array(
                np.array([x.quant.s * s / y.quant.s for s in w.quant.scale], dtype=np.float64))
        else:
            mult_i, shift_i = quantize_multiplier(x.quant.s * w.quant.s / y.quant.s)
            mult, shift = np.full(units, mult_i, dtype=np.int32), np.full(units, shift_i, dtype=np.int32)
        # |acc + bias| <= span * sum |w| + |bias|; the partial sums of w * x (offset folded) stay
        # within 128 * sum |w| <= that
        span = max(abs(-128 - x.quant.zp), abs(127 - x.quant.zp))
        bound = span * np.abs(wide).sum(axis=1) + (np.abs(bias.data.astype(np.int64)) if bias is not None else 0)
        fast = fast_requant(folded, mult, shift, y.quant.zp, bound)
        if fast is None:
            return None
        requant, sign = fast
        batches, _, _ = _dims(op, g)
        params = dict(batches=batches, output_depth=units, accum_depth=depth, act_min=act_min, act_max=act_max,
                      requant=requant.ravel(), weights=pack_weights(2 * sign[:, None] * wide))
        return KernelCall(function="tinyc_fully_connected_s8_packed", header="tinyc/fully_connected.h",
                          sources=("fully_connected.c",), params_type="tinyc_fully_connected_packed_params_t",
                          params=params, args=(Arg("in", op.inputs[0]), Arg("out", op.outputs[0])),
                          comment=comment + (" per-channel" if w.quant.per_channel else "")
                          + f", int16 weights packed for SMLAD ({packed_weight_bytes(units, depth):,} B)")

    def macs(self, op: Op, g: Graph) -> int:
        batches, output_depth, accum_depth = _dims(op, g)
        return batches * output_depth * accum_depth

    def lower(self, op: Op, g: Graph) -> KernelCall:
        self.check(op, g)
        x, w, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
        bias = _bias(op, g)
        batches, output_depth, accum_depth = _dims(op, g)
        act = op.attrs.get("fused_activation_function", "NONE")
        act_min, act_max = activation_range(act, y.quant.s, y.quant.zp)
        bias_arg = Arg("null") if bias is None else Arg("const" if bias.is_const else "in", bias.name)
        args = (Arg("in", op.inputs[0]), Arg("const", op.inputs[1]), bias_arg, Arg("out", op.outputs[0]))
        comment = f"FULLY_CONNECTED {batches}x{accum_depth} -> {output_depth} {act}"
        packed = self._lower_packed(op, g, comment, act_min, act_max)
        if packed is not None:
            return packed
        if w.quant.per_channel:
            # per channel: double(input_scale) * double(filter_scale) / double(output_scale)
            mult, shift = quantize_multiplier_array(
                np.array([x.quant.s * s / y.quant.s for s in w.quant.scale], dtype=np.float64))
            params = dict(batches=batches, output_depth=output_depth, accum_depth=accum_depth,
                          input_offset=-x.quant.zp, output_offset=y.quant.zp,
                          output_multiplier=mult, output_shift=shift, act_min=act_min, act_max=act_max)
            return tm.forward_call(op, KernelCall(
                function="tinyc_fully_connected_s8_pc", header="tinyc/fully_connected.h", sources=("fully_connected.c",),
                params_type="tinyc_fully_connected_pc_params_t", params=params, args=args, comment=comment + " per-channel"))
        # per tensor: GetQuantizedConvolutionMultipler, in double from the float32 scales
        mult_i, shift_i = quantize_multiplier(x.quant.s * w.quant.s / y.quant.s)
        params = dict(batches=batches, output_depth=output_depth, accum_depth=accum_depth,
                      input_offset=-x.quant.zp, filter_offset=-w.quant.zp, output_offset=y.quant.zp,
                      output_multiplier=mult_i, output_shift=shift_i, act_min=act_min, act_max=act_max)
        return tm.forward_call(op, KernelCall(
            function="tinyc_fully_connected_s8", header="tinyc/fully_connected.h", sources=("fully_connected.c",),
            params_type="tinyc_fully_connected_params_t", params=params, args=args, comment=comment))


def _row_blocks(units: int) -> list[int]:
    """The packed kernel's row blocks: fours, then a two and a one for the remainder."""
    return [4] * (units // 4) + ([2] if units % 4 >= 2 else []) + ([1] if units % 2 else [])


def packed_weight_bytes(units: int, depth: int) -> int:
    return units * (-(-depth // 4)) * 4 * 2


def pack_weights(wide: np.ndarray) -> np.ndarray:
    """The [units, depth] int16-range weights in tinyc_fully_connected_packed_params_t's layout
    (tinyc/fully_connected.h): per row block, per chunk of four inputs, per row of the block, the
    words (w[4k], w[4k+2]) and (w[4k+1], w[4k+3]), low half first; zeros past the last input."""
    units, depth = wide.shape
    chunks = -(-depth // 4)
    w = np.zeros((units, chunks * 4), dtype=np.int64)
    w[:, :depth] = wide
    assert np.abs(w).max(initial=0) <= 0x7fff
    lanes = (w & 0xffff).reshape(units, chunks, 4)
    even = lanes[:, :, 0] | (lanes[:, :, 2] << 16)
    odd = lanes[:, :, 1] | (lanes[:, :, 3] << 16)
    words = np.stack([even, odd], axis=-1)  # [units, chunks, 2]
    out, row = [], 0
    for r in _row_blocks(units):
        out.append(words[row:row + r].transpose(1, 0, 2).ravel())
        row += r
    flat = np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
    return flat.astype(np.uint32).view(np.int32)
