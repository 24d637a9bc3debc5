"""DEPTHWISE_CONV_2D: every output byte of the generated C against TFLM's reference kernel.

Models hold several depthwise convolutions reading one input (see test_conv.py's helpers);
the folded-PAD case is covered for both conv kinds in test_conv.py.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from tests.ops.test_conv import Branch, assert_matches_tflm, check, check_op, model, random_inputs
from tests.support.reference import run_tflm
from tests.support.tflite_builder import ModelBuilder
from tinyc.api import run_on_host
from tinyc.compiler import compile_model
from tinyc.errors import UnsupportedError


def dw(**kw) -> Branch:
    kw.setdefault("depth_multiplier", 1)
    return Branch(**kw)


def test_depthwise_mcunet_kernels_3_5_7_stride_1_and_2_matches_tflm():
    check([dw(kernel=(k, k), stride=(s, s), act="RELU6")
           for k in (3, 5, 7) for s in (1, 2)], in_shape=(1, 15, 14, 8))


def test_depthwise_kernel_sizes_same_and_valid_odd_input_matches_tflm():
    check([dw(kernel=k, padding=p)
           for k in ((1, 1), (3, 3), (2, 2), (1, 5), (4, 3))
           for p in ("SAME", "VALID")], in_shape=(1, 9, 11, 5))


@pytest.mark.parametrize("dm", [2, 3, 8])
def test_depthwise_depth_multiplier_matches_tflm(dm):
    check([dw(depth_multiplier=dm, kernel=(3, 3)), dw(depth_multiplier=dm, kernel=(5, 5), stride=(2, 2),
                                                     padding="VALID", per_channel=False)],
          in_shape=(1, 8, 9, 3), seed=dm)


def test_depthwise_single_input_channel_with_multiplier_matches_tflm():
    check([dw(depth_multiplier=16, kernel=(3, 3), stride=(2, 2))], in_shape=(1, 10, 10, 1))


def test_depthwise_strides_and_dilations_matches_tflm():
    check([dw(kernel=k, stride=s, dilation=d, padding=p)
           for k, s, d in (((3, 3), (2, 2), (2, 2)), ((3, 3), (1, 1), (3, 2)), ((5, 5), (3, 1), (1, 1)),
                           ((2, 3), (2, 3), (2, 1)))
           for p in ("SAME", "VALID")], in_shape=(1, 13, 12, 4))


def test_depthwise_every_fused_activation_matches_tflm():
    check([dw(act=a, out_zp=zp, out_gain=g)
           for a in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
           for zp, g in ((-128, 0.5), (5, 0.02), (100, 1.0))], in_shape=(1, 6, 7, 6))


def test_depthwise_per_tensor_filter_scale_and_no_bias_matches_tflm():
    check([dw(per_channel=pc, bias=bi, depth_multiplier=m)
           for pc in (True, False) for bi in (True, False) for m in (1, 2)], in_shape=(1, 7, 7, 5))


def test_depthwise_absent_bias_slot_matches_tflm_with_zero_bias():
    # TFLM's depthwise Prepare crashes (SIGSEGV) when the bias input is present but -1 (it
    # releases the missing tensor unconditionally), and LiteRT refuses that form; so compare
    # with the same weights carrying an explicit zero bias.
    shape = (1, 7, 7, 5)
    inputs = [random_inputs(shape, 12, seed=4)]
    branches = [dw(per_channel=pc, depth_multiplier=m, act=a)
                for pc, m, a in ((True, 1, "NONE"), (False, 2, "RELU6"), (True, 3, "RELU"))]
    absent = model([dataclasses.replace(br, bias=False, bias_slot=True) for br in branches], shape)
    zero_bias = model([dataclasses.replace(br, zero_bias=True) for br in branches], shape)
    for br, g_, w_ in zip(branches, run_on_host(absent, inputs), run_tflm(zero_bias, inputs)):
        np.testing.assert_array_equal(g_, w_, err_msg=f"{br} with an absent bias differs from TFLM with zero bias")


@pytest.mark.parametrize("in_zp", [-128, 127])
def test_depthwise_zero_points_at_extremes_matches_tflm(in_zp):
    check([dw(out_zp=zp, kernel=k, padding=p)
           for zp in (-128, 127) for k, p in (((3, 3), "SAME"), ((7, 7), "SAME"), ((3, 3), "VALID"))],
          in_shape=(1, 8, 6, 4), in_zp=in_zp, seed=in_zp + 300)


def test_depthwise_window_larger_than_input_and_batch_two_matches_tflm():
    check([dw(kernel=(7, 7)), dw(kernel=(5, 5), stride=(3, 3), depth_multiplier=2)], in_shape=(2, 3, 4, 3))


def test_depthwise_multiplier_above_one_left_shift_matches_tflm():
    branches = [dw(out_gain=g, bias=False, kernel=(1, 1), w_max=1, out_zp=0, per_channel=False)
                for g in (0.5, 0.25)]
    m = model(branches, in_shape=(1, 6, 6, 4))
    assert all((c.params["out_shift"] > 0).all() for c in compile_model(m).calls)
    assert_matches_tflm(m, [random_inputs((1, 6, 6, 4))], branches)


@settings(max_examples=6, derandomize=True, deadline=None, phases=(Phase.explicit, Phase.generate))
@given(st.data())
def test_depthwise_random_configurations_match_tflm(data):
    h, w = data.draw(st.integers(1, 12)), data.draw(st.integers(1, 12))
    c = data.draw(st.integers(1, 9))
    branches = []
    for _ in range(4):
        kh, kw = data.draw(st.integers(1, 7)), data.draw(st.integers(1, 7))
        dh, dw_ = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
        pad = data.draw(st.sampled_from(["SAME", "VALID"]))
        if pad == "VALID" and ((kh - 1) * dh + 1 > h or (kw - 1) * dw_ + 1 > w):
            pad = "SAME"
        branches.append(dw(
            kernel=(kh, kw), dilation=(dh, dw_), padding=pad,
            stride=(data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))),
            depth_multiplier=data.draw(st.integers(1, 4)),
            act=data.draw(st.sampled_from(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"])),
            per_channel=data.draw(st.booleans()), bias=data.draw(st.booleans()),
            out_zp=data.draw(st.integers(-128, 127))))
    m = model(branches, (1, h, w, c), in_zp=data.draw(st.integers(-128, 127)), seed=h * 100 + w)
    inputs = [random_inputs((1, h, w, c), 8, seed=c)]
    want, got = run_tflm(m, inputs), run_on_host(m, inputs)
    for br, g_, w_ in zip(branches, got, want):
        np.testing.assert_array_equal(g_, w_, err_msg=f"{br} on input {(h, w, c)} differs from TFLM")


# --- what is refused ---------------------------------------------------------------------------

def single_dw(x_dtype="int8", w_zp=0, act="NONE", w_axis=3, dm=1, in_c=3, out_c=3, per_channel=True,
              filter_first=1, y_shape=None) -> bytes:
    b = ModelBuilder()
    q = x_dtype != "float32"
    x = b.input("x", shape=(1, 5, 5, in_c), dtype=x_dtype, scale=0.1 if q else None, zero_point=0 if q else None)
    fshape = (filter_first, 3, 3, out_c)
    n_s = (fshape[w_axis]) if per_channel else 1
    if x_dtype == "float32":
        w = b.const("w", np.ones(fshape, dtype=np.float32))
    else:
        w = b.const("w", np.ones(fshape, dtype=np.int8), scale=[0.01] * n_s, zero_point=[w_zp] * n_s,
                    quantized_dimension=w_axis)
    y = b.tensor("y", shape=y_shape or (1, 5, 5, out_c), dtype=x_dtype, scale=0.2 if q else None,
                 zero_point=0 if q else None)
    b.op("DEPTHWISE_CONV_2D", inputs=[x, w, None], outputs=[y],
         options=dict(padding="SAME", fused_activation_function=act, depth_multiplier=dm))
    b.output(y)
    return b.build()


@pytest.mark.parametrize("kwargs,why", [
    (dict(x_dtype="float32"), "int8-quantized model"),
    (dict(x_dtype="int16"), "int16"),
    (dict(w_zp=-1), "zero points must be 0"),
    (dict(act="TANH"), "fused activation TANH"),
    (dict(w_axis=1, out_c=3), "along axis 1"),
    (dict(dm=2, out_c=3), "depth_multiplier 2"),
    (dict(dm=1, out_c=6), "depth_multiplier 1"),
    (dict(y_shape=(1, 5, 4, 3)), "output shape"),
])
def test_depthwise_unsupported_combination_raises_naming_the_op(kwargs, why):
    with pytest.raises(UnsupportedError) as e:
        check_op(single_dw(**kwargs))
    assert "DEPTHWISE_CONV_2D (op #0)" in str(e.value)
    assert why in str(e.value)


def test_depthwise_macs_count_taps_per_output():
    c = compile_model(model([dw(kernel=(5, 5), depth_multiplier=2, stride=(2, 2))], in_shape=(1, 9, 11, 3)))
    assert c.macs == (5 * 6 * 6 * 25,)
