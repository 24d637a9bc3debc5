"""AVERAGE_POOL_2D and MAX_POOL_2D: every output byte of the generated C against TFLM.

One model holds several pooling ops ("branches") reading the same input, each its own model
output, so one compile covers many cases; a mismatch names the branch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.reference import run_tflm
from tests.support.tflite_builder import ModelBuilder
from tinyc.api import run_on_host
from tinyc.compiler import compile_model
from tinyc.errors import UnsupportedError
from tinyc.ops.pooling import out_size


@dataclass(frozen=True)
class Pool:
    kind: str = "AVERAGE_POOL_2D"
    filt: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    padding: str = "VALID"
    act: str = "NONE"


def build(in_shape: tuple[int, int, int, int], pools: list[Pool], scale: float = 0.05, zp: int = -3) -> bytes:
    b = ModelBuilder()
    x = b.input("x", shape=in_shape, dtype="int8", scale=scale, zero_point=zp)
    n, h, w, c = in_shape
    for i, p in enumerate(pools):
        oh = out_size(p.padding, h, p.filt[0], p.stride[0])
        ow = out_size(p.padding, w, p.filt[1], p.stride[1])
        y = b.tensor(f"y{i}", shape=(n, oh, ow, c), dtype="int8", scale=scale, zero_point=zp)
        b.op(p.kind, [x], [y], dict(padding=p.padding, stride_h=p.stride[0], stride_w=p.stride[1],
                                    filter_height=p.filt[0], filter_width=p.filt[1],
                                    fused_activation_function=p.act))
        b.output(y)
    return b.build()


def check(in_shape: tuple[int, int, int, int], pools: list[Pool], scale: float = 0.05, zp: int = -3,
          batch: int = 16, seed: int = 0) -> None:
    model = build(in_shape, pools, scale, zp)
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(batch, *in_shape), dtype=np.int8)
    x[0] = -128  # extremes: every window saturated low / high
    x[1] = 127
    got = run_on_host(model, [x])
    want = run_tflm(model, [x])
    for p, a, b in zip(pools, got, want):
        np.testing.assert_array_equal(a, b, err_msg=str(p))


def test_average_pool_filters_strides_paddings_match_tflm():
    pools = [Pool("AVERAGE_POOL_2D", f, s, pad)
             for f, s in (((2, 2), (2, 2)), ((3, 3), (2, 2)), ((3, 3), (1, 1)), ((1, 1), (1, 1)),
                          ((5, 3), (2, 3)), ((2, 4), (3, 1)), ((4, 4), (4, 4)))
             for pad in ("SAME", "VALID")]
    check((1, 9, 11, 5), pools)


def test_max_pool_filters_strides_paddings_match_tflm():
    pools = [Pool("MAX_POOL_2D", f, s, pad)
             for f, s in (((2, 2), (2, 2)), ((3, 3), (2, 2)), ((3, 3), (1, 1)), ((1, 1), (1, 1)),
                          ((5, 3), (2, 3)), ((2, 4), (3, 1)), ((4, 4), (4, 4)))
             for pad in ("SAME", "VALID")]
    check((1, 9, 11, 5), pools)


@pytest.mark.parametrize("zp", [-128, 127, 0])
def test_pool_every_fused_activation_at_zero_point_extremes_matches_tflm(zp):
    pools = [Pool(k, (3, 3), (2, 2), "SAME", act) for k in ("AVERAGE_POOL_2D", "MAX_POOL_2D")
             for act in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")]
    check((1, 7, 6, 3), pools, scale=0.03, zp=zp, seed=zp & 0xFF)


def test_global_average_pool_like_mlperf_models_matches_tflm():
    # kws_ref_model: 25x5 window over a 25x5x64 map; vww_96 3x3; ResNet-8 8x8.
    check((1, 25, 5, 64), [Pool("AVERAGE_POOL_2D", (25, 5), (25, 5), "VALID")], scale=0.08, zp=-128)
    check((1, 8, 8, 64), [Pool("AVERAGE_POOL_2D", (8, 8), (8, 8), "VALID")], scale=0.127, zp=-128)


def test_pool_batch_of_three_in_one_tensor_matches_tflm():
    check((3, 6, 5, 4), [Pool("AVERAGE_POOL_2D", (3, 2), (1, 2), "SAME"),
                         Pool("MAX_POOL_2D", (2, 3), (2, 1), "SAME", "RELU")], batch=4)


@settings(max_examples=6, derandomize=True, deadline=None)
@given(h=st.integers(1, 12), w=st.integers(1, 12), c=st.integers(1, 6),
       fh=st.integers(1, 5), fw=st.integers(1, 5), sh=st.integers(1, 4), sw=st.integers(1, 4),
       pad=st.sampled_from(["SAME", "VALID"]), act=st.sampled_from(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]),
       zp=st.integers(-128, 127))
def test_pool_random_geometry_matches_tflm(h, w, c, fh, fw, sh, sw, pad, act, zp):
    if pad == "VALID":
        fh, fw = min(fh, h), min(fw, w)
    pools = [Pool(k, (fh, fw), (sh, sw), pad, act) for k in ("AVERAGE_POOL_2D", "MAX_POOL_2D")]
    check((1, h, w, c), pools, scale=0.02, zp=zp, batch=8, seed=h * 100 + w)


# ----------------------------------------------------------------------------- rejections

def _single(kind: str, dtype: str = "int8", in_q=(0.05, 0), out_q=(0.05, 0), act: str = "NONE") -> bytes:
    b = ModelBuilder()
    x = b.input("x", shape=(1, 4, 4, 2), dtype=dtype, scale=in_q[0], zero_point=in_q[1])
    y = b.tensor("y", shape=(1, 2, 2, 2), dtype=dtype, scale=out_q[0], zero_point=out_q[1])
    b.op(kind, [x], [y], dict(padding="VALID", stride_h=2, stride_w=2, filter_height=2, filter_width=2,
                              fused_activation_function=act))
    b.output(y)
    return b.build()


@pytest.mark.parametrize("kind", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
def test_pool_int16_is_rejected_naming_the_op(kind):
    with pytest.raises(UnsupportedError, match=kind):
        compile_model(_single(kind, dtype="int16"))


@pytest.mark.parametrize("kind", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
def test_pool_requantizing_output_is_rejected_like_tflm(kind):
    with pytest.raises(UnsupportedError, match=f"{kind}.*quantization differ"):
        compile_model(_single(kind, out_q=(0.1, 0)))
    with pytest.raises(UnsupportedError, match=kind):
        compile_model(_single(kind, out_q=(0.05, 3)))


def test_pool_tanh_fused_activation_is_rejected():
    with pytest.raises(UnsupportedError, match="AVERAGE_POOL_2D.*TANH"):
        compile_model(_single("AVERAGE_POOL_2D", act="TANH"))
