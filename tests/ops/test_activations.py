"""LOGISTIC, TANH, HARD_SWISH, RELU, RELU6, LEAKY_RELU (int8): every output byte equals TFLM's.
RELU_N1_TO_1 has no TFLM kernel; it is checked against LiteRT's reference kernels.

Every batch starts with one sample holding all 256 int8 values, so each case covers the whole
input range; the other samples are random. The TFLM goldens of all cases are computed in one
reference worker (run_many); each case is then compiled and run on the host (ASan + UBSan).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pytest

from tests.support.reference import run_litert_ref
from tests.support.golden import assert_outputs_equal, tflm_goldens
from tests.support.tflite_builder import ModelBuilder
from tinyc.api import run_on_host
from tinyc.errors import UnsupportedError

N = 8  # inputs per batch


@dataclass(frozen=True)
class Case:
    model: bytes
    inputs: tuple[np.ndarray, ...]


def act_model(kind: str, shape: Sequence[int], in_q, out_q, options: dict | None = None, dtype: str = "int8") -> bytes:
    b = ModelBuilder()
    x = b.input("x", shape=tuple(shape), dtype=dtype, scale=in_q[0], zero_point=in_q[1])
    y = b.tensor("y", shape=tuple(shape), dtype=dtype, scale=out_q[0], zero_point=out_q[1])
    b.op(kind, inputs=[x], outputs=[y], options=options or {})
    b.output(y)
    return b.build()


def _inputs(shape: Sequence[int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(N, *shape), dtype=np.int8)
    flat = x.reshape(N, -1)
    every = np.arange(-128, 128, dtype=np.int8)
    flat[0, :] = np.resize(every, flat.shape[1])
    return x


def _case(kind: str, in_q, out_q, seed: int = 0, shape=(1, 16, 16), options: dict | None = None) -> Case:
    return Case(act_model(kind, shape, in_q, out_q, options), (_inputs(shape, seed),))


SIG = (1.0 / 256, -128)  # LOGISTIC output
TANH_OUT = (1.0 / 128, 0)

CASES: dict[str, Callable[[], Case]] = {
    # LOGISTIC: the input scale sets the Q4.27 multiplier, its shift and the saturation radius
    "logistic_scale_0_05": lambda: _case("LOGISTIC", (0.05, 3), SIG, 1),
    "logistic_small_scale_no_saturation": lambda: _case("LOGISTIC", (0.007, 50), SIG, 2),
    "logistic_large_scale_mostly_saturated": lambda: _case("LOGISTIC", (0.5, -128), SIG, 3, shape=(2, 64)),
    "logistic_zero_point_127": lambda: _case("LOGISTIC", (0.0625, 127), SIG, 4, shape=(1, 4, 4, 16)),
    "logistic_power_of_two_scale": lambda: _case("LOGISTIC", (1.0 / 16, 0), SIG, 5),
    # TANH
    "tanh_scale_0_05": lambda: _case("TANH", (0.05, 3), TANH_OUT, 6),
    "tanh_scale_0_3_zp_minus_100": lambda: _case("TANH", (0.3, -100), TANH_OUT, 7),
    "tanh_small_scale": lambda: _case("TANH", (0.004, -7), TANH_OUT, 8, shape=(3, 50)),
    # HARD_SWISH: reluish exponent left (large input scale), zero and right (small input scale)
    "hard_swish_typical_mobilenetv3": lambda: _case("HARD_SWISH", (0.05, 3), (0.03, -20), 9),
    "hard_swish_large_input_scale_left_shift": lambda: _case("HARD_SWISH", (0.5, 3), (0.006, -20), 10),
    "hard_swish_small_input_scale_right_shift": lambda: _case("HARD_SWISH", (0.0005, 3), (0.3, -20), 11),
    "hard_swish_zero_points_at_extremes": lambda: _case("HARD_SWISH", (0.1, -128), (0.05, 127), 12),
    "hard_swish_output_scale_close_to_limit": lambda: _case("HARD_SWISH", (0.2, 0), (0.00157, -128), 13),
    # RELU: requantized to the output scale
    "relu_output_scale_larger": lambda: _case("RELU", (0.05, -10), (0.1, -100), 14),
    "relu_output_scale_smaller_saturates": lambda: _case("RELU", (0.1, 20), (0.03, -128), 15),
    "relu_output_zero_point_above_int8_clamp": lambda: _case("RELU", (0.05, 0), (0.05, 100), 17),
    # RELU6: TFLM clamps in the input's quantization and ignores the output's
    "relu6_same_quantization": lambda: _case("RELU6", (0.05, -128), (0.05, -128), 18),
    "relu6_output_quantization_ignored_like_tflm": lambda: _case("RELU6", (0.05, -10), (0.1, -128), 19),
    "relu6_six_above_int8_range": lambda: _case("RELU6", (0.01, 0), (0.01, 0), 20),
    "relu6_zero_point_127": lambda: _case("RELU6", (0.1, 127), (0.1, 127), 21),
    # LEAKY_RELU: identity and alpha branches with their own multipliers
    "leaky_relu_alpha_0_2": lambda: _case("LEAKY_RELU", (0.05, 3), (0.04, -5), 22, options=dict(alpha=0.2)),
    "leaky_relu_alpha_above_one_exact_ties": lambda: _case("LEAKY_RELU", (0.05, 3), (0.04, -5), 23,
                                                           options=dict(alpha=1.7)),
    "leaky_relu_alpha_0_9_exact_ties": lambda: _case("LEAKY_RELU", (0.05, 3), (0.04, -5), 24,
                                                     options=dict(alpha=0.9)),
    "leaky_relu_negative_alpha": lambda: _case("LEAKY_RELU", (0.05, 3), (0.04, -5), 25, options=dict(alpha=-0.3)),
    "leaky_relu_alpha_zero": lambda: _case("LEAKY_RELU", (0.1, -20), (0.1, -20), 26, options=dict(alpha=0.0)),
    "leaky_relu_power_of_two_scales": lambda: _case("LEAKY_RELU", (1 / 16, 0), (1 / 32, 0), 27,
                                                    options=dict(alpha=1.25)),
}


def _random_case(seed: int) -> Case:
    rng = np.random.default_rng(700 + seed)
    kind = ["LOGISTIC", "TANH", "HARD_SWISH", "RELU", "LEAKY_RELU"][seed % 5]
    in_q = (float(rng.uniform(0.002, 0.3)), int(rng.integers(-128, 128)))
    out_q = {"LOGISTIC": SIG, "TANH": TANH_OUT}.get(kind, (float(rng.uniform(0.01, 0.3)), int(rng.integers(-128, 128))))
    if kind == "HARD_SWISH":
        out_q = (max(out_q[0], in_q[0] / 100), out_q[1])  # TFLM needs input_scale / 128 / output_scale < 1
    options = dict(alpha=float(rng.uniform(-1.0, 3.0))) if kind == "LEAKY_RELU" else None
    return _case(kind, in_q, out_q, seed, shape=(1, 300), options=options)


CASES.update({f"activation_random_config_{i}": (lambda i=i: _random_case(i)) for i in range(5)})


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


@pytest.mark.parametrize("in_q, out_q", [((0.02, 5), (0.01, -3)), ((0.01, -128), (0.004, 0))])
def test_relu_n1_to_1_matches_litert_reference(in_q, out_q) -> None:
    """TFLM has no RELU_N1_TO_1 kernel; LiteRT's reference is the golden."""
    case = _case("RELU_N1_TO_1", in_q, out_q, 30)
    want = run_litert_ref(case.model, list(case.inputs))
    got = run_on_host(case.model, list(case.inputs))
    np.testing.assert_array_equal(got[0], want[0])


# ---------------------------------------------------------------------------- unsupported
@pytest.mark.parametrize("make, op, why", [
    (lambda: act_model("LOGISTIC", (1, 8), (0.01, 0), (1 / 256, 0)), "LOGISTIC", "zero point must be -128"),
    (lambda: act_model("TANH", (1, 8), (0.01, 0), (1 / 32768, 0), dtype="int16"), "TANH", "int8 only"),
    (lambda: act_model("RELU", (1, 8), (0.01, 0), (0.01, 0), dtype="uint8"), "RELU", "int8 only"),
    (lambda: act_model("HARD_SWISH", (1, 8), (0.5, 0), (0.003, 0)), "HARD_SWISH", "too small"),
    (lambda: act_model("LOGISTIC", (1, 8), (1e-10, 0), (1 / 256, -128)), "LOGISTIC", "too small"),
])
def test_unsupported_raises_naming_the_op(make, op: str, why: str) -> None:
    with pytest.raises(UnsupportedError) as e:
        run_on_host(make(), [np.zeros((1, 1, 8), dtype=np.int8)])
    assert f"{op} (op #0)" in str(e.value)
    assert why in str(e.value)


def test_float_logistic_is_rejected_by_the_op_module() -> None:
    from tinyc.frontend.tflite_reader import read_tflite
    from tinyc.ops.registry import lookup

    b = ModelBuilder()
    x = b.input("x", shape=(1, 4), dtype="float32")
    y = b.tensor("y", shape=(1, 4), dtype="float32")
    b.op("LOGISTIC", inputs=[x], outputs=[y])
    b.output(y)
    g = read_tflite(data=b.build())
    with pytest.raises(UnsupportedError, match=r"LOGISTIC \(op #0\): float32 LOGISTIC"):
        lookup("LOGISTIC").check(g.ops[0], g)
