"""CONV_2D, int8: TFLM's conv Prepare done at compile time, Eval in runtime_c/src/conv.c.

Supported: int8 input and output, int8 OHWI filter with per-tensor or per-output-channel
(axis 0) scales and zero point 0, int32 bias or none, any kernel size, stride, dilation,
SAME/VALID padding, fused NONE/RELU/RELU6/RELU_N1_TO_1, and grouped convolution
(input channels = filter input channels x groups) as TFLM's ConvPerChannel implements it.
A preceding zero-point PAD is absorbed as extra leading/trailing padding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyc.ir import Graph, Op
from tinyc.ops import _conv_math as cm
from tinyc.ops import _train_math as tm
from tinyc.ops.base import Arg, Backward, GradContext, KernelCall, Weights, unsupported
from tinyc.ops.registry import register

KIND = "CONV_2D"


@register("CONV_2D")
class Conv2D(cm.WindowConv):
    def check(self, op: Op, g: Graph) -> None:
        cm.check_common(op, g, KIND, channel_axis=0)
        x, w = g.t(op.inputs[0]), g.t(op.inputs[1])
        out_c, fh, fw, fic = w.shape
        in_c = x.shape[3]
        if fic < 1 or in_c % fic != 0:
            raise unsupported(op, g, f"{KIND} input has {in_c} channels, not a multiple of the filter's "
                                     f"{fic} input channels")
        groups = in_c // fic
        if out_c % groups != 0:
            raise unsupported(op, g, f"grouped {KIND} with {groups} groups needs output channels "
                                     f"({out_c}) divisible by the group count")
        cm.check_shapes(op, g, KIND, fh, fw, out_c)
        bias = cm.bias_of(op, g)
        if not op.attrs.get("trained"):  # trained: the update bounds the bias instead (tm.bias_limit)
            cm.check_accumulator(op, g, KIND, w.data.reshape(out_c, -1),
                                 g.t(bias).data if bias is not None else None)

    def macs(self, op: Op, g: Graph) -> int:
        w, y = g.t(op.inputs[1]), g.t(op.outputs[0])
        _, fh, fw, fic = w.shape
        return y.size * fh * fw * fic

    def lower(self, op: Op, g: Graph) -> KernelCall:
        self.check(op, g)
        x, w, y = g.t(op.inputs[0]), g.t(op.inputs[1]), g.t(op.outputs[0])
        out_c, fh, fw, fic = w.shape
        wh, ww = cm.windows(op, g, fh, fw)
        mult, shift = cm.output_multipliers(x, w, y, out_c)
        act_min, act_max = cm.clamp_range(op, y)
        bias = cm.bias_of(op, g)
        n, h, wd, c = x.shape
        params = dict(
            batches=n, in_h=h, in_w=wd, in_c=c,
            out_h=wh.out_size, out_w=ww.out_size, out_c=out_c,
            filter_h=fh, filter_w=fw, filter_in_c=fic,
            stride_h=wh.stride, stride_w=ww.stride,
            dilation_h=wh.dilation, dilation_w=ww.dilation,
            pad_top=wh.pad_before, pad_left=ww.pad_before,
            input_offset=-x.quant.zp, output_offset=y.quant.zp,
            act_min=act_min, act_max=act_max,
            out_mult=mult, out_shift=shift,
        )
        groups = c // fic
        # trained weights change at run time: nothing may be folded from them at compile time
        folded = None if op.attrs.get("trained") else cm.folded_bias(w.data.reshape(out_c, -1), g.t(bias).data if bias is not None else None,
                                -x.quant.zp)
        if folded is not None and fh == fw == 1 and groups == 1 and wh.pad_before == ww.pad_before == 0 \
                and _no_trailing_pad(params):
            return self._lower_1x1(op, params, folded)
        # the general kernel's fast path (windows inside the input) reads a filter row as one run
        params["folded_bias"] = folded if folded is not None and groups == 1 and ww.dilation == 1 else "NULL"
        comment = (f"CONV_2D {fh}x{fw} stride {wh.stride}x{ww.stride} dilation {wh.dilation}x{ww.dilation} "
                   f"pad {wh.pad_before},{ww.pad_before} {c}->{out_c}"
                   + (f" groups {groups}" if groups > 1 else "")
                   + f" {op.attrs.get('fused_activation_function', 'NONE')}")
        return tm.forward_call(op, KernelCall(
            function="tinyc_conv2d_s8", header="tinyc/conv.h", sources=("conv.c",),
            params_type="tinyc_conv2d_params_t", params=params,
            args=(Arg("in", op.inputs[0]), Arg("const", op.inputs[1]),
                  Arg("const", bias) if bias is not None else Arg("null"), Arg("out", op.outputs[0])),
            comment=comment))

    def weights(self, op: Op, g: Graph) -> Weights | None:
        w = g.t(op.inputs[1])
        return Weights(weight=op.inputs[1], bias=cm.bias_of(op, g), in_channels=w.shape[3],
                       channel_norms=tm.weight_norms(w.data, 3),
                       element_channel=np.broadcast_to(np.arange(w.shape[3]), w.shape), axis=3)

    def backward(self, op: Op, g: Graph, ctx: GradContext) -> Backward:
        x, w = g.t(op.inputs[0]), g.t(op.inputs[1])
        out_c, fh, fw, fic = w.shape
        n, h, wd, c = x.shape
        if ctx.update is not None and ctx.update.channels and c != fic:
            raise unsupported(op, g, f"training the weights of a grouped {KIND} ({c // fic} groups) is not "
                                     "supported; train its bias or other layers")
        geom, scales = cm.backward_geometry(op, g, fh, fw, out_c, fic, 0)
        macs = self.macs(op, g)
        fam = tm.WeightedFamily(
            header="tinyc/train_conv.h", source="train_conv.c", backward_input="tinyc_conv2d_backward_input_f32",
            update="tinyc_conv2d_update", bwd_type="tinyc_conv_bwd_params_t",
            update_type="tinyc_conv_update_params_t", bwd_params=geom, out_channels=out_c, w_scale=scales,
            taps=fh * fw * fic, pixels=n * h * wd, in_c=fic, residuals_per_sel=out_c * fh * fw,
            scratch_per_sel=fh * fw, scratch_fixed=0, macs_input=macs, macs_update=macs)
        return tm.weighted_backward(op, g, ctx, fam, self.weights(op, g))

    def _lower_1x1(self, op: Op, params: dict, bias: Any) -> KernelCall:
        """The pointwise kernel: the input offset folded into the bias, a plain int8 dot product."""
        keep = ("batches", "in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "stride_h", "stride_w",
                "output_offset", "act_min", "act_max")
        p = {k: params[k] for k in keep}
        p.update(bias=bias, out_mult=params["out_mult"], out_shift=params["out_shift"])
        return KernelCall(
            function="tinyc_conv2d_s8_1x1", header="tinyc/conv.h", sources=("conv_1x1.c",),
            params_type="tinyc_conv2d_1x1_params_t", params=p,
            args=(Arg("in", op.inputs[0]), Arg("const", op.inputs[1]), Arg("out", op.outputs[0])),
            comment=(f"CONV_2D 1x1 stride {p['stride_h']}x{p['stride_w']} {p['in_c']}->{p['out_c']} "
                     f"{op.attrs.get('fused_activation_function', 'NONE')}, input offset folded into the bias"))


def _no_trailing_pad(params: dict) -> bool:
    """Every output pixel's single tap lies inside the input (no bottom/right padding either)."""
    return ((params["out_h"] - 1) * params["stride_h"] < params["in_h"]
            and (params["out_w"] - 1) * params["stride_w"] < params["in_w"])
