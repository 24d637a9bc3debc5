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


@pytest.fixture(params=["fast_3x3", "reference_layout"])
def kernel(request, monkeypatch: pytest.MonkeyPatch, tmp_path) -> str:
    """Both kernels of constant-weight layers: tinyc_depthwise_conv2d_s8_3x3 (the default for 3x3
    filters with depth multipliers 1 and 4k) and tinyc_depthwise_conv2d_s8 on the model's layout
    (trained layers and everything else), forced here by switching the first off."""
    if request.param == "reference_layout":
        import tinyc.ops.depthwise_conv as dwc

        monkeypatch.setattr(dwc, "FAST_3X3", False)
        monkeypatch.setenv("TINYC_CACHE", str(tmp_path))  # the host build cache does not key on it
    return request.param


def test_depthwise_mcunet_kernels_3_5_7_stride_1_and_2_matches_tflm():
    check([dw(kernel=(k, k), stride=(s, s), act="RELU6")
           for k in (3, 5, 7) for s in (1, 2)], in_shape=(1, 15, 14, 8))


def test_depthwise_kernel_sizes_same_and_valid_odd_input_matches_tflm():
    check([dw(kernel=k, padding=p)
           for k in ((1, 1), (3, 3), (2, 2), (1, 5), (4, 3))
           for p in ("SAME", "VALID")], in_shape=(1, 9, 11, 5))


@pytest.mark.parametrize("dm", [2, 3, 4, 8])
def test_depthwise_depth_multiplier_matches_tflm(dm, kernel):
    check([dw(depth_multiplier=dm, kernel=(3, 3)), dw(depth_multiplier=dm, kernel=(5, 5), stride=(2, 2),
                                                     padding="VALID", per_channel=False)],
          in_shape=(1, 8, 9, 3), seed=dm)


def test_depthwise_single_input_channel_with_multiplier_matches_tflm():
    check([dw(depth_multiplier=16, kernel=(3, 3), stride=(2, 2))], in_shape=(1, 10, 10, 1))


def test_depthwise_strides_and_dilations_matches_tflm(kernel):
    check([dw(kernel=k, stride=s, dilation=d, padding=p)
           for k, s, d in (((3, 3), (2, 2), (2, 2)), ((3, 3), (1, 1), (3, 2)), ((5, 5), (3, 1), (1, 1)),
                           ((2, 3), (2, 3), (2, 1)))
           for p in ("SAME", "VALID")], in_shape=(1, 13, 12, 4))


def test_depthwise_every_fused_activation_matches_tflm(kernel):
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


def test_depthwise_3x3_tails_strides_padding_and_batches_matches_tflm(kernel):
    """Channel counts off the group of four (the last group's 1-3 channels), every stride and
    padding, dilation, both clamps (int8's own range: one SSAT; narrower: per-byte max and min),
    two images."""
    check([dw(kernel=(3, 3), stride=s, padding=p, dilation=d, act=a, out_zp=zp)
           for s, p, d, a, zp in (((1, 1), "SAME", (1, 1), "RELU6", -128), ((2, 2), "SAME", (1, 1), "NONE", 5),
                                  ((1, 2), "VALID", (1, 1), "RELU", -20), ((2, 1), "VALID", (2, 1), "RELU6", 40),
                                  ((1, 1), "SAME", (2, 2), "NONE", -128), ((3, 3), "SAME", (1, 1), "RELU_N1_TO_1", 0))],
          in_shape=(2, 9, 10, 7), seed=21)


@pytest.mark.parametrize("in_c", [1, 2, 3])
def test_depthwise_3x3_depth_multiplier_4k_matches_tflm(in_c, kernel):
    """Depth multipliers 4 and 8 (person_detect's first layer: one input channel times 8): the
    input channel's byte serves groups of four output channels (and 4k on other filters: the
    model-layout kernel)."""
    check([dw(depth_multiplier=m, kernel=k, stride=s, padding=p, act=a, dilation=d)
           for m, k, s, p, a, d in ((8, (3, 3), (2, 2), "SAME", "RELU6", (1, 1)),
                                    (4, (3, 3), (1, 1), "SAME", "NONE", (1, 1)),
                                    (8, (3, 3), (1, 1), "VALID", "RELU", (1, 1)),
                                    (4, (3, 3), (2, 1), "SAME", "RELU6", (1, 2)),
                                    (4, (5, 5), (2, 2), "SAME", "RELU6", (1, 1)))],
          in_shape=(1, 10, 9, in_c), seed=30 + in_c)


def test_depthwise_negative_and_mixed_filter_scales_matches_tflm(kernel):
    """Sign-folded channels (negative per-channel scales, as MCUNet has): TFLM's negative
    multipliers; the 3x3 kernel negates those channels' weights and bias."""
    check([dw(negative_scales=True, kernel=(3, 3), act=a, depth_multiplier=m, stride=s)
           for a, m, s in (("NONE", 1, (1, 1)), ("RELU6", 1, (2, 2)), ("NONE", 4, (1, 1)), ("RELU", 8, (2, 2)))],
          in_shape=(1, 8, 8, 6), seed=41)


def test_depthwise_kernel_choice():
    """Constant 3x3 weights, depth multiplier 1 or 4k: the 3x3 kernel, which no longer reads the
    int8 filter tensor (its stream replaces it); other multipliers and filters, and trained layers
    (weights changed at run time in the model's layout, nothing folded), the model-layout kernel;
    likewise for the in-place variant."""
    from tinyc.frontend.tflite_reader import read_tflite
    from tinyc.ops.registry import lookup

    mod = lookup("DEPTHWISE_CONV_2D")
    for m, fn in ((1, "tinyc_depthwise_conv2d_s8_3x3"), (2, "tinyc_depthwise_conv2d_s8"),
                  (3, "tinyc_depthwise_conv2d_s8"), (4, "tinyc_depthwise_conv2d_s8_3x3"),
                  (8, "tinyc_depthwise_conv2d_s8_3x3")):
        g = read_tflite(data=model([dw(depth_multiplier=m, kernel=(3, 3))], in_shape=(1, 6, 6, 5)))
        op = g.ops[0]
        call = mod.lower(op, g)
        assert call.function == fn, (m, call.function)
        if fn.endswith("3x3"):
            assert [a.kind for a in call.args] == ["in", "out"]
            groups = -(-5 * m // 4)
            assert call.params["stream"].size == groups * (16 + 2 * 9)
            assert call.params["zero_points"].size == 8
        trained = dataclasses.replace(op, attrs={**op.attrs, "trained": True})
        call = mod.lower(trained, g)
        assert call.function == "tinyc_depthwise_conv2d_s8" and call.params["folded_bias"] == "NULL"
        assert [a.kind for a in call.args][:2] == ["in", "const"]
        if m == 1:  # the in-place variant: its 3x3 kernel, and for a trained layer the model-layout one
            assert mod.in_place(op, g).call.function == "tinyc_depthwise_conv2d_s8_3x3_channels"
            assert mod.in_place(trained, g).call.function == "tinyc_depthwise_conv2d_s8_channels"
    g = read_tflite(data=model([dw(kernel=(5, 5))], in_shape=(1, 6, 6, 5)))
    assert mod.lower(g.ops[0], g).function == "tinyc_depthwise_conv2d_s8"


def test_depthwise_3x3_stream_layout():
    """Per group: four biases, per tap the (c, c+2) and (c+1, c+3) int16 pairs, (q, rnd) per
    channel, four shifts; the last group zero padded."""
    from tinyc.ops.depthwise_conv import pack_stream

    w = np.arange(6 * 2).reshape(6, 2) - 5  # 6 channels (a group and a padded one), 2 taps
    rq = np.array([[10 + c, 100 + c, 1000 + c, 1 + c] for c in range(6)])
    words = pack_stream(w, rq).view(np.uint32).astype(np.int64)
    assert words.size == 2 * (16 + 2 * 2)
    lo = (words & 0xffff).astype(np.uint16).view(np.int16)
    hi = (words >> 16).astype(np.uint16).view(np.int16)
    g0 = words[:20]
    assert list(g0[:4]) == [10, 11, 12, 13]
    assert [(int(lo[4 + 2 * t + k]), int(hi[4 + 2 * t + k])) for t in range(2) for k in range(2)] == \
        [(w[0, 0], w[2, 0]), (w[1, 0], w[3, 0]), (w[0, 1], w[2, 1]), (w[1, 1], w[3, 1])]
    assert list(g0[8:16]) == [100, 1000, 101, 1001, 102, 1002, 103, 1003] and list(g0[16:20]) == [1, 2, 3, 4]
    g1 = words[20:]
    assert list(g1[:4]) == [14, 15, 0, 0] and list(g1[16:20]) == [5, 6, 1, 1]
    assert [(int(lo[24 + k]), int(hi[24 + k])) for k in range(2)] == [(w[4, 0], 0), (w[5, 0], 0)]


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
