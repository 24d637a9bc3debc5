"""CONV_2D: every output byte of the generated C against TFLM's reference kernel.

To keep compile time down, one model holds several convolutions ("branches") reading the
same input, each its own model output; a mismatch names the branch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from tests.support.reference import run_tflm
from tests.support.tflite_builder import ModelBuilder
from tinyc.api import run_on_host
from tinyc.compiler import compile_model
from tinyc.errors import UnsupportedError
from tinyc.frontend.tflite_reader import read_tflite
from tinyc.ops.registry import lookup


@dataclass(frozen=True)
class Branch:
    """One convolution of a test model (CONV_2D, or DEPTHWISE_CONV_2D when depth_multiplier is set)."""

    kernel: tuple[int, int] = (3, 3)
    out_c: int = 4  # CONV_2D only
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: str = "SAME"
    act: str = "NONE"
    per_channel: bool = True
    bias: bool = True
    out_zp: int = 3
    out_gain: float = 1.0  # output scale multiplier: < 1 saturates more, > 1 less
    groups: int = 1  # CONV_2D only
    depth_multiplier: int | None = None  # set: DEPTHWISE_CONV_2D
    w_max: int = 127  # filter values in [-w_max, w_max]
    zero_bias: bool = False  # a bias tensor of zeros (equivalent to no bias)
    bias_slot: bool = False  # without bias: write the op with an absent (-1) third input, not 2 inputs
    negative_scales: bool = False  # every third per-channel filter scale negative (sign-folded channels)

    @property
    def kind(self) -> str:
        return "CONV_2D" if self.depth_multiplier is None else "DEPTHWISE_CONV_2D"

    def __str__(self) -> str:
        d = {k: v for k, v in vars(self).items() if v != getattr(Branch, k, None)}
        return f"{self.kind}({', '.join(f'{k}={v}' for k, v in d.items())})"


def out_size(padding: str, size: int, k: int, s: int, d: int) -> int:
    eff = (k - 1) * d + 1
    return -(-size // s) if padding == "SAME" else (size - eff + s) // s


def add_branch(b: ModelBuilder, x: int, in_shape: tuple[int, ...], in_scale: float, br: Branch,
               rng: np.random.Generator, i: int) -> int:
    n, h, w, c = in_shape
    kh, kw = br.kernel
    if br.depth_multiplier is None:
        oc, fshape, axis = br.out_c, (br.out_c, kh, kw, c // br.groups), 0
        taps = kh * kw * (c // br.groups)
    else:
        oc = c * br.depth_multiplier
        fshape, axis, taps = (1, kh, kw, oc), 3, kh * kw
    wq = rng.integers(-br.w_max, br.w_max + 1, fshape, dtype=np.int8)
    wscale = rng.uniform(0.002, 0.02, oc) if br.per_channel else np.full(1, rng.uniform(0.002, 0.02))
    if br.negative_scales:
        wscale[1::3] *= -1
    wt = b.const(f"w{i}", wq, scale=[float(s) for s in wscale], zero_point=[0] * len(wscale),
                 quantized_dimension=axis)
    bt = None
    full_scale = np.broadcast_to(wscale, (oc,)) * in_scale
    bq = rng.integers(-20000, 20000, oc, dtype=np.int32)  # drawn even when unused: same weights after
    if br.zero_bias:
        bq[:] = 0
    if br.bias:
        bt = b.const(f"b{i}", bq, scale=[float(s) for s in full_scale], zero_point=[0] * oc)
    # Typical |acc| is ~74 * std(w) * sqrt(taps) steps; aim the output at ~40 steps of spread.
    out_scale = float(np.mean(np.abs(full_scale))) * 74 * max(float(np.std(wq)), 1.0) * math.sqrt(taps) / 40 * br.out_gain
    oh = out_size(br.padding, h, kh, br.stride[0], br.dilation[0])
    ow = out_size(br.padding, w, kw, br.stride[1], br.dilation[1])
    y = b.tensor(f"y{i}", shape=(n, oh, ow, oc), dtype="int8", scale=out_scale, zero_point=br.out_zp)
    opts = dict(padding=br.padding, stride_h=br.stride[0], stride_w=br.stride[1],
                dilation_h_factor=br.dilation[0], dilation_w_factor=br.dilation[1],
                fused_activation_function=br.act)
    if br.depth_multiplier is not None:
        opts["depth_multiplier"] = br.depth_multiplier
    inputs = [x, wt, bt] if bt is not None or br.bias_slot else [x, wt]
    b.op(br.kind, inputs=inputs, outputs=[y], options=opts)
    b.output(y)
    return y


def model(branches: list[Branch], in_shape: tuple[int, ...] = (1, 9, 11, 3), in_scale: float = 0.05,
          in_zp: int = -3, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input("x", shape=in_shape, dtype="int8", scale=in_scale, zero_point=in_zp)
    for i, br in enumerate(branches):
        add_branch(b, x, in_shape, in_scale, br, rng, i)
    return b.build()


def random_inputs(shape: tuple[int, ...], n: int = 12, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, (n, *shape), dtype=np.int8)


def assert_matches_tflm(m: bytes, inputs: list[np.ndarray], names: list[object]) -> None:
    want = run_tflm(m, inputs)
    got = run_on_host(m, inputs)
    assert len(got) == len(want) == len(names)
    for name, g, w in zip(names, got, want):
        np.testing.assert_array_equal(g, w, err_msg=f"{name} differs from TFLM")
        assert len(np.unique(w)) > 4, f"{name}: degenerate test, TFLM output has {np.unique(w)}"


def check(branches: list[Branch], in_shape: tuple[int, ...] = (1, 9, 11, 3), in_zp: int = -3,
          seed: int = 0, n: int = 12, in_scale: float = 0.05) -> None:
    m = model(branches, in_shape, in_scale=in_scale, in_zp=in_zp, seed=seed)
    assert_matches_tflm(m, [random_inputs(in_shape, n, seed + 1)], branches)


# --- bit-exactness ---------------------------------------------------------------------------

def test_conv_kernel_sizes_same_and_valid_odd_input_per_channel_matches_tflm():
    check([Branch(kernel=k, padding=p, out_c=5)
           for k in ((1, 1), (3, 3), (5, 5), (7, 7), (1, 3), (3, 1), (2, 2), (4, 3))
           for p in ("SAME", "VALID")], in_shape=(1, 9, 11, 3))


def test_conv_strides_and_dilations_same_and_valid_matches_tflm():
    check([Branch(kernel=k, stride=s, dilation=d, padding=p)
           for k, s, d in (((3, 3), (2, 2), (1, 1)), ((3, 3), (3, 1), (1, 1)), ((1, 1), (2, 2), (1, 1)),
                           ((3, 3), (1, 1), (2, 2)), ((3, 2), (1, 2), (1, 3)),
                           ((5, 5), (2, 2), (2, 2)), ((2, 2), (2, 2), (1, 1)), ((4, 4), (3, 3), (1, 1)))
           for p in ("SAME", "VALID")], in_shape=(1, 13, 12, 3))


def test_conv_every_fused_activation_matches_tflm():
    check([Branch(act=a, out_zp=zp, out_gain=g)
           for a in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
           for zp, g in ((-128, 0.5), (5, 0.02), (100, 1.0))], in_shape=(1, 6, 7, 4))


def test_conv_per_tensor_filter_scale_and_no_bias_matches_tflm():
    check([Branch(per_channel=pc, bias=bi, kernel=(3, 3), out_c=6)
           for pc in (True, False) for bi in (True, False)]
          + [Branch(bias=False, bias_slot=True)], in_shape=(1, 7, 7, 5))


@pytest.mark.parametrize("in_zp", [-128, 127, 0])
def test_conv_zero_points_at_extremes_matches_tflm(in_zp):
    check([Branch(out_zp=zp, kernel=k, padding=p)
           for zp in (-128, 127) for k, p in (((3, 3), "SAME"), ((1, 1), "VALID"), ((5, 3), "SAME"))],
          in_shape=(1, 8, 6, 3), in_zp=in_zp, seed=in_zp + 200)


def test_conv_1x1_pointwise_many_channels_and_strided_matches_tflm():
    check([Branch(kernel=(1, 1), out_c=32, padding="VALID"), Branch(kernel=(1, 1), out_c=17),
           Branch(kernel=(1, 1), out_c=8, stride=(2, 2)), Branch(kernel=(1, 1), out_c=8, act="RELU6")],
          in_shape=(1, 6, 5, 24))


def test_conv_multiplier_above_one_left_shift_matches_tflm():
    # Tiny filters and a small output scale: input_scale * filter_scale / output_scale > 1.
    branches = [Branch(out_gain=g, kernel=(1, 1), bias=False, w_max=1, out_zp=0, per_channel=pc)
                for g, pc in ((0.5, False), (0.25, True))]
    m = model(branches, in_shape=(1, 6, 6, 1))
    shifts = [call.params["out_shift"] for call in compile_model(m).calls]
    assert all((s > 0).any() for s in shifts), shifts
    assert_matches_tflm(m, [random_inputs((1, 6, 6, 1))], branches)


def test_conv_window_larger_than_input_same_padding_matches_tflm():
    check([Branch(kernel=(7, 7)), Branch(kernel=(5, 5), stride=(3, 3)), Branch(kernel=(3, 3), dilation=(3, 3))],
          in_shape=(1, 3, 4, 3))


def test_conv_batch_of_two_in_the_model_matches_tflm():
    check([Branch(kernel=(3, 3)), Branch(kernel=(1, 1))], in_shape=(2, 5, 6, 4))


def test_conv_grouped_matches_tflm():
    check([Branch(groups=2, out_c=4), Branch(groups=4, out_c=8, kernel=(1, 1)),
           Branch(groups=8, out_c=8, kernel=(3, 3), stride=(2, 2))], in_shape=(1, 7, 6, 8))


@settings(max_examples=6, derandomize=True, deadline=None, phases=(Phase.explicit, Phase.generate))
@given(st.data())
def test_conv_random_configurations_match_tflm(data):
    h, w = data.draw(st.integers(1, 12)), data.draw(st.integers(1, 12))
    c = data.draw(st.integers(1, 9))
    branches = []
    for _ in range(4):
        kh, kw = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
        dh, dw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
        pad = data.draw(st.sampled_from(["SAME", "VALID"]))
        if pad == "VALID" and ((kh - 1) * dh + 1 > h or (kw - 1) * dw + 1 > w):
            pad = "SAME"
        branches.append(Branch(
            kernel=(kh, kw), dilation=(dh, dw), padding=pad,
            stride=(data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))),
            out_c=data.draw(st.integers(1, 9)), act=data.draw(st.sampled_from(["NONE", "RELU", "RELU6"])),
            per_channel=data.draw(st.booleans()), bias=data.draw(st.booleans()),
            out_zp=data.draw(st.integers(-128, 127))))
    m = model(branches, (1, h, w, c), in_zp=data.draw(st.integers(-128, 127)), seed=h * 100 + w)
    inputs = [random_inputs((1, h, w, c), 8, seed=c)]
    want, got = run_tflm(m, inputs), run_on_host(m, inputs)
    for br, g_, w_ in zip(branches, got, want):
        np.testing.assert_array_equal(g_, w_, err_msg=f"{br} on input {(h, w, c)} differs from TFLM")


# --- a folded PAD -----------------------------------------------------------------------------

def pad_conv_model(pads: tuple[int, int, int, int], padding: str, kind: str = "CONV_2D",
                   in_zp: int = -7, seed: int = 5) -> bytes:
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    shape = (1, 7, 6, 4)
    x = b.input("x", shape=shape, dtype="int8", scale=0.04, zero_point=in_zp)
    top, bottom, left, right = pads
    ps = (1, 7 + top + bottom, 6 + left + right, 4)
    p = b.tensor("p", shape=ps, dtype="int8", scale=0.04, zero_point=in_zp)
    b.op("PAD", inputs=[x, b.const("pads", np.array([[0, 0], [top, bottom], [left, right], [0, 0]],
                                                    dtype=np.int32))], outputs=[p])
    add_branch(b, p, ps, 0.04, Branch(kernel=(3, 3), padding=padding, stride=(2, 1),
                                      depth_multiplier=None if kind == "CONV_2D" else 2), rng, 0)
    return b.build()


@pytest.mark.parametrize("pads,padding", [((1, 1, 1, 1), "VALID"), ((2, 0, 1, 3), "VALID"),
                                          ((1, 2, 0, 1), "SAME")])
@pytest.mark.parametrize("kind", ["CONV_2D", "DEPTHWISE_CONV_2D"])
def test_pad_then_conv_is_folded_and_matches_tflm(pads, padding, kind):
    m = pad_conv_model(pads, padding, kind)
    compiled = compile_model(m)
    assert [op.kind for op in compiled.graph.ops] == [kind], "the PAD was not folded into the conv"
    assert compiled.graph.ops[0].attrs["explicit_padding"] == pads
    assert_matches_tflm(m, [random_inputs((1, 7, 6, 4), 12, seed=9)], [f"PAD{pads} -> {kind} {padding}"])


# --- what is refused ---------------------------------------------------------------------------

def single_conv(x_dtype="int8", w_dtype="int8", w_zp=0, act="NONE", w_axis=0, y_shape=None, per_channel=True,
                in_c=3, filter_in_c=3, out_c=4, bias_dtype="int32") -> bytes:
    b = ModelBuilder()
    q = x_dtype != "float32"
    x = b.input("x", shape=(1, 5, 5, in_c), dtype=x_dtype, scale=0.1 if q else None, zero_point=0 if q else None)
    wdata = np.ones((out_c, 3, 3, filter_in_c), dtype=np.float32 if w_dtype == "float32" else np.int8)
    n_s = (out_c if w_axis == 0 else 3) if per_channel else 1
    w = b.const("w", wdata, scale=[0.01] * n_s if w_dtype != "float32" else None,
                zero_point=[w_zp] * n_s if w_dtype != "float32" else None, quantized_dimension=w_axis)
    bias = None
    if bias_dtype != "none":
        bias = b.const("b", np.zeros(out_c, dtype=np.float32 if bias_dtype == "float32" else np.int32),
                       dtype=bias_dtype, scale=[0.001] * out_c if bias_dtype != "float32" else None,
                       zero_point=[0] * out_c if bias_dtype != "float32" else None)
    y = b.tensor("y", shape=y_shape or (1, 5, 5, out_c), dtype=x_dtype, scale=0.2 if q else None,
                 zero_point=0 if q else None)
    b.op("CONV_2D", inputs=[x, w, bias], outputs=[y], options=dict(padding="SAME", fused_activation_function=act))
    b.output(y)
    return b.build()


@pytest.mark.parametrize("kwargs,why", [
    (dict(x_dtype="float32", w_dtype="float32", bias_dtype="float32"), "int8-quantized model"),
    (dict(x_dtype="int16", bias_dtype="none"), "int16"),
    (dict(w_zp=3), "zero points must be 0"),
    (dict(act="TANH"), "fused activation TANH"),
    (dict(act="SIGN_BIT"), "fused activation SIGN_BIT"),
    (dict(w_axis=3, out_c=3), "along axis 3"),
    (dict(y_shape=(1, 4, 4, 4)), "output shape"),
    (dict(in_c=6, filter_in_c=4), "not a multiple"),
    (dict(in_c=6, filter_in_c=2, out_c=4), "divisible by the group count"),
])
def test_conv_unsupported_combination_raises_naming_the_op(kwargs, why):
    with pytest.raises(UnsupportedError) as e:
        check_op(single_conv(**kwargs))
    assert "CONV_2D (op #0)" in str(e.value)
    assert why in str(e.value)


def check_op(m: bytes) -> None:
    """The op module's own check, without the frontend's earlier whole-model rejections."""
    g = read_tflite(data=m)
    for op in g.ops:
        lookup(op.kind).check(op, g)


def test_conv_unsupported_is_reported_by_compile():
    with pytest.raises(UnsupportedError, match=r"CONV_2D \(op #0\).*fused activation TANH"):
        compile_model(single_conv(act="TANH"))


def test_conv_accumulator_overflow_risk_is_refused():
    b = ModelBuilder()
    x = b.input("x", shape=(1, 1, 1, 1), dtype="int8", scale=0.1, zero_point=-128)
    w = b.const("w", np.full((1, 1, 1, 1), 127, dtype=np.int8), scale=[0.01], zero_point=[0])
    bias = b.const("b", np.array([2**31 - 100], dtype=np.int32), scale=[0.001], zero_point=[0])
    y = b.tensor("y", shape=(1, 1, 1, 1), dtype="int8", scale=0.2, zero_point=0)
    b.op("CONV_2D", inputs=[x, w, bias], outputs=[y], options=dict(padding="VALID"))
    b.output(y)
    with pytest.raises(UnsupportedError, match=r"CONV_2D \(op #0\).*overflow"):
        check_op(b.build())


def test_conv_macs_count_filter_taps_per_output():
    c = compile_model(model([Branch(kernel=(3, 3), out_c=4, stride=(2, 2))], in_shape=(1, 9, 11, 3)))
    # output 5x6x4, 3x3x3 taps each
    assert c.macs == (5 * 6 * 4 * 27,)
