"""RESIZE_NEAREST_NEIGHBOR: every output byte of the generated C against TFLM, for up- and
down-sampling by integer and fractional ratios under every align_corners / half_pixel_centers
combination (the source row/column tables are TFLM's float32 arithmetic replayed in numpy).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.reference import run_tflm
from tests.support.tflite_builder import ModelBuilder
from tinyc.api import run_on_host
from tinyc.compiler import compile_model
from tinyc.errors import UnsupportedError
from tinyc.ops.resize import nearest_map

SIZES = [(8, 10), (16, 20), (7, 13), (3, 2), (1, 1), (5, 5), (11, 4)]  # from a 5x5 input
FLAGS = [(False, False), (True, False), (False, True), (True, True)]


def _rand(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    if dtype == "float32":
        return rng.standard_normal(shape).astype(np.float32)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


def _model(in_shape: tuple[int, int, int, int], dtype: str, flags: list[tuple[bool, bool]],
           sizes: list[tuple[int, int]]) -> tuple[bytes, list[str]]:
    b = ModelBuilder()
    q = dict(scale=0.0235, zero_point=-128) if dtype != "float32" else {}
    x = b.input("x", shape=in_shape, dtype=dtype, **q)
    labels = []
    for i, ((ac, hp), (oh, ow)) in enumerate((f, s) for f in flags for s in sizes):
        y = b.tensor(f"y{i}", shape=(in_shape[0], oh, ow, in_shape[3]), dtype=dtype, **q)
        b.op("RESIZE_NEAREST_NEIGHBOR", [x, b.const(f"size{i}", [oh, ow])], [y],
             dict(align_corners=ac, half_pixel_centers=hp))
        b.output(y)
        labels.append(f"{in_shape[1]}x{in_shape[2]} -> {oh}x{ow} align_corners={ac} half_pixel_centers={hp}")
    return b.build(), labels


def _compare(model: bytes, labels: list[str], x: np.ndarray) -> None:
    got = run_on_host(model, [x])
    want = run_tflm(model, [x])
    for lab, a, w in zip(labels, got, want):
        np.testing.assert_array_equal(a, w, err_msg=lab)


@pytest.mark.parametrize("dtype", ["int8", "float32"])
def test_resize_nearest_every_ratio_and_flag_combination_matches_tflm(dtype):
    model, labels = _model((1, 5, 5, 3), dtype, FLAGS, SIZES)
    _compare(model, labels, _rand(np.random.default_rng(0), (8, 1, 5, 5, 3), dtype))


def test_resize_nearest_detection_model_upsampling_with_batch_matches_tflm():
    # detection.tflite: 4x5x32 -> 8x10 and 8x10x16 -> 16x20, no flags; here with two images.
    model, labels = _model((2, 4, 5, 32), "int8", [(False, False)], [(8, 10), (9, 11), (2, 3)])
    _compare(model, labels, _rand(np.random.default_rng(1), (4, 2, 4, 5, 32), "int8"))


def test_nearest_map_reproduces_tflm_float32_rounding():
    # align_corners 2 -> 3: scale 0.5, output 1 sits on the tie 0.5, which std::round takes
    # away from zero (Python's round() would give 0).
    assert nearest_map(3, 2, True, False).tolist() == [0, 1, 1]
    assert nearest_map(7, 3, True, False).tolist() == [0, 0, 1, 1, 1, 2, 2]
    assert nearest_map(4, 2, False, False).tolist() == [0, 0, 1, 1]
    assert nearest_map(4, 2, False, True).tolist() == [0, 0, 1, 1]
    assert nearest_map(3, 5, False, True).tolist() == [0, 2, 4]


def test_resize_nearest_with_runtime_size_is_rejected():
    b = ModelBuilder()
    x = b.input("x", shape=(1, 2, 2, 1), dtype="int8", scale=0.1, zero_point=0)
    size = b.input("size", shape=(2,), dtype="int32")
    y = b.tensor("y", shape=(1, 4, 4, 1), dtype="int8", scale=0.1, zero_point=0)
    b.op("RESIZE_NEAREST_NEIGHBOR", [x, size], [y])
    b.output(y)
    with pytest.raises(UnsupportedError, match="RESIZE_NEAREST_NEIGHBOR.*size"):
        compile_model(b.build())
