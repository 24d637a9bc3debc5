"""SOFTMAX (int8 input, int8 or int16 output, any beta): every output value equals TFLM's.

The TFLM goldens of all cases are computed in one reference worker (run_many); each case is then
compiled and run on the host (ASan + UBSan) by tinyc.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pytest

from tests.support.golden import assert_outputs_equal, tflm_goldens
from tests.support.tflite_builder import ModelBuilder
from tinyc.api import run_on_host
from tinyc.errors import UnsupportedError
from tinyc.ops._activations_math import calculate_input_radius, preprocess_softmax_scaling

N = 16  # inputs per batch
OUT8 = (1.0 / 256, -128)
OUT16 = (1.0 / 65536, -32768)


@dataclass(frozen=True)
class Case:
    model: bytes
    inputs: tuple[np.ndarray, ...]


def softmax_model(shape: Sequence[int], in_q=(0.1, 0), beta: float = 1.0, out_q=OUT8, out_dtype: str = "int8",
                  in_dtype: str = "int8") -> bytes:
    b = ModelBuilder()
    x = b.input("x", shape=tuple(shape), dtype=in_dtype, scale=in_q[0], zero_point=in_q[1])
    y = b.tensor("y", shape=tuple(shape), dtype=out_dtype, scale=out_q[0], zero_point=out_q[1])
    b.op("SOFTMAX", inputs=[x], outputs=[y], options=dict(beta=beta))
    b.output(y)
    return b.build()


def _case(shape, seed, spread: int = 256, equal_rows: bool = False, **kw) -> Case:
    """Random int8 rows; `spread` narrows the values around a random centre (close logits make
    every exp() count), `equal_rows` makes two rows constant (every exp is one)."""
    rng = np.random.default_rng(seed)
    lo = rng.integers(-128, 128 - spread + 1) if spread < 256 else -128
    x = rng.integers(lo, lo + spread, size=(N, *shape)).astype(np.int8)
    if shape[-1] >= 2:
        x.reshape(N, -1)[0, :2] = [-128, 127]  # the widest difference a row can have
    if equal_rows:
        x.reshape(N, -1)[1] = 5
        x.reshape(N, -1)[2] = -128
    return Case(softmax_model(shape, **kw), (x,))


CASES: dict[str, Callable[[], Case]] = {
    "softmax_10_classes_beta1": lambda: _case((1, 10), 1, in_q=(0.1, 3)),
    "softmax_12_classes_close_logits": lambda: _case((1, 12), 2, spread=20, in_q=(0.05, -10)),
    "softmax_4d_rows_over_channels": lambda: _case((1, 4, 4, 12), 3, in_q=(0.08, 0)),
    "softmax_rank1": lambda: _case((10,), 4, in_q=(0.1, 0)),
    "softmax_3d_keyword_spotting_like": lambda: _case((1, 1, 4), 5, in_q=(0.2, -128)),
    "softmax_beta_half": lambda: _case((1, 16), 6, beta=0.5, in_q=(0.1, 0)),
    "softmax_beta_2_5": lambda: _case((1, 16), 7, beta=2.5, spread=60, in_q=(0.07, 20)),
    "softmax_multiplier_capped_large_beta": lambda: _case((1, 8), 8, beta=40.0, in_q=(1.0, 0)),
    "softmax_tiny_input_scale_wide_radius": lambda: _case((1, 20), 9, in_q=(0.002, 0), spread=200),
    "softmax_input_zero_point_127": lambda: _case((2, 7), 10, in_q=(0.3, 127)),
    "softmax_equal_logits_rows": lambda: _case((1, 33), 11, equal_rows=True, in_q=(0.1, 0)),
    "softmax_single_class": lambda: _case((1, 1), 12, in_q=(0.1, 0)),
    "softmax_1000_classes_imagenet": lambda: _case((1, 1000), 13, in_q=(0.15, -20)),
    "softmax_int16_output": lambda: _case((1, 10), 14, out_q=OUT16, out_dtype="int16", in_q=(0.1, 0)),
    "softmax_int16_output_close_logits_beta_0_3": lambda: _case((1, 4, 9), 15, beta=0.3, spread=30, out_q=OUT16,
                                                                out_dtype="int16", in_q=(0.25, -7)),
}


def _random_case(seed: int) -> Case:
    rng = np.random.default_rng(500 + seed)
    depth = int(rng.integers(1, 120))
    rows = int(rng.integers(1, 4))
    beta = float(rng.choice([1.0, float(rng.uniform(0.05, 4.0))]))
    scale = float(rng.uniform(0.002, 0.5))
    if preprocess_softmax_scaling(beta, float(np.float32(scale)), 5) is None:
        beta = 1.0
    int16 = bool(rng.integers(0, 2))
    return _case((rows, depth), seed, spread=int(rng.integers(2, 257)), beta=beta,
                 in_q=(scale, int(rng.integers(-128, 128))),
                 out_q=OUT16 if int16 else OUT8, out_dtype="int16" if int16 else "int8")


CASES.update({f"softmax_random_config_{i}": (lambda i=i: _random_case(i)) for i in range(8)})


@pytest.fixture(scope="module")
def cases() -> dict[str, Case]:
    return {name: make() for name, make in CASES.items()}


@pytest.fixture(scope="module")
def goldens(cases: dict[str, Case]) -> dict[str, list[np.ndarray]]:
    return tflm_goldens(cases)


@pytest.mark.parametrize("name", list(CASES))
def test_matches_tflm(name: str, cases: dict[str, Case], goldens: dict[str, list[np.ndarray]]) -> None:
    case = cases[name]
    got = run_on_host(case.model, list(case.inputs))
    assert_outputs_equal(got, goldens[name])


# ---------------------------------------------------------------------------- Prepare constants
def test_softmax_prepare_constants_match_tflm_formulas() -> None:
    # beta * scale * 2^26 = 2^22 for scale 1/16: Q0.31 one half, left shift 23, radius 31 * 2^3
    assert preprocess_softmax_scaling(1.0, 1.0 / 16, 5) == (1 << 30, 23)
    assert calculate_input_radius(5, 23) == 248
    # capped at 2^31 - 1: left shift 31, no difference below zero survives
    mult, shift = preprocess_softmax_scaling(100.0, 1.0, 5)
    assert (mult, shift) == ((1 << 31) - 1, 31)
    assert calculate_input_radius(5, 31) == 0
    # below one TFLM's QuantizeMultiplierGreaterThanOne aborts
    assert preprocess_softmax_scaling(1.0, 1e-9, 5) is None


# ---------------------------------------------------------------------------- unsupported
@pytest.mark.parametrize("make, why", [
    (lambda: softmax_model((1, 8), out_q=(1.0 / 128, -128)), "scale 1/256 and zero point -128"),
    (lambda: softmax_model((1, 8), out_q=(1.0 / 256, 0)), "scale 1/256 and zero point -128"),
    (lambda: softmax_model((1, 8), out_q=(1.0 / 32768, 0), out_dtype="int16"), "zero point -32768"),
    (lambda: softmax_model((1, 8), in_q=(0.01, 0), in_dtype="int16", out_q=(1.0 / 32768, 0), out_dtype="int16"),
     "int16 input"),
    (lambda: softmax_model((1, 8), in_q=(1e-9, 0)), "too small"),
])
def test_unsupported_raises_naming_the_op(make, why: str) -> None:
    with pytest.raises(UnsupportedError) as e:
        run_on_host(make(), [np.zeros((1, 1, 8), dtype=np.int8)])
    assert "SOFTMAX (op #0)" in str(e.value)
    assert why in str(e.value)
