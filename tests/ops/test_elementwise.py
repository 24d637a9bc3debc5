"""ADD, SUB, MUL (int8, broadcasting, fused activations): every output byte equals TFLM's.

The TFLM goldens of all cases are computed in one reference worker (run_many); each case is
then compiled and run on the host (ASan + UBSan) by tinyc.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

from tests.support.golden import assert_outputs_equal, tflm_goldens
from tests.support.tflite_builder import ModelBuilder
from tinyc.api import run_on_host
from tinyc.errors import UnsupportedError
from tinyc.ops.elementwise import broadcast_plan

N = 12  # inputs per batch


@dataclass(frozen=True)
class Q:
    """A per-tensor int8 quantization."""

    scale: float
    zp: int


def binary_model(kind: str, s1, s2, so, q1: Q, q2: Q, qo: Q, act: str = "NONE", dtype: str = "int8",
                 const2: np.ndarray | None = None) -> bytes:
    b = ModelBuilder()
    x1 = b.input("x1", shape=s1, dtype=dtype, scale=q1.scale, zero_point=q1.zp)
    if const2 is None:
        x2 = b.input("x2", shape=s2, dtype=dtype, scale=q2.scale, zero_point=q2.zp)
    else:
        x2 = b.const("x2", const2, scale=q2.scale, zero_point=q2.zp)
    y = b.tensor("y", shape=so, dtype=dtype, scale=qo.scale, zero_point=qo.zp)
    b.op(kind, inputs=[x1, x2], outputs=[y], options=dict(fused_activation_function=act))
    b.output(y)
    return b.build()


def rand_i8(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


@dataclass(frozen=True)
class Case:
    model: bytes
    inputs: tuple[np.ndarray, ...]


def _case(kind, s1, s2, so, q1, q2, qo, act="NONE", seed=0, const2=False, extreme=False) -> Case:
    rng = np.random.default_rng(seed)
    c2 = rand_i8(rng, s2) if const2 else None
    model = binary_model(kind, s1, s2, so, q1, q2, qo, act, const2=c2)
    x1 = rand_i8(rng, (N, *s1))
    if extreme:  # hit both ends of the int8 range on purpose
        x1.reshape(N, -1)[:, :2] = [-128, 127]
    ins = [x1] if const2 else [x1, rand_i8(rng, (N, *s2))]
    return Case(model, tuple(ins))


A = Q(0.05, -3)
B = Q(0.11, 17)
O = Q(0.09, 5)

CASES: dict[str, Callable[[], Case]] = {
    # ADD
    "add_same_shape_4d": lambda: _case("ADD", (1, 7, 5, 8), (1, 7, 5, 8), (1, 7, 5, 8), A, B, O, seed=1),
    "add_same_scale_inputs_zero_points_at_extremes": lambda: _case(
        "ADD", (1, 6, 6, 3), (1, 6, 6, 3), (1, 6, 6, 3), Q(0.02, -128), Q(0.02, 127), Q(0.03, -128), seed=2,
        extreme=True),
    "add_relu": lambda: _case("ADD", (1, 4, 4, 16), (1, 4, 4, 16), (1, 4, 4, 16), A, B, Q(0.04, -20), "RELU", 3),
    "add_relu6": lambda: _case("ADD", (1, 3, 5, 7), (1, 3, 5, 7), (1, 3, 5, 7), B, A, Q(0.03, -100), "RELU6", 4),
    "add_relu_n1_to_1": lambda: _case("ADD", (2, 9), (2, 9), (2, 9), A, B, Q(0.01, 0), "RELU_N1_TO_1", 5),
    "add_broadcast_channel_vector": lambda: _case("ADD", (1, 5, 6, 8), (1, 1, 1, 8), (1, 5, 6, 8), A, B, O, seed=6),
    "add_broadcast_both_sides": lambda: _case("ADD", (1, 4, 1, 3), (1, 1, 5, 3), (1, 4, 5, 3), A, B, O, seed=7),
    "add_broadcast_scalar_const": lambda: _case("ADD", (1, 4, 4, 5), (1,), (1, 4, 4, 5), A, B, O, seed=8,
                                                const2=True),
    "add_broadcast_rank_mismatch_5d": lambda: _case("ADD", (2, 3, 1, 4, 5), (4, 1), (2, 3, 1, 4, 5), B, A, O,
                                                    seed=9),
    "add_large_output_scale": lambda: _case("ADD", (1, 16, 16, 4), (1, 16, 16, 4), (1, 16, 16, 4),
                                            Q(0.003, 10), Q(0.5, -7), Q(0.7, 3), seed=10),
    # SUB (float32 multiplier math in TFLM)
    "sub_same_shape": lambda: _case("SUB", (1, 8, 8, 3), (1, 8, 8, 3), (1, 8, 8, 3), A, B, O, seed=11),
    "sub_broadcast_relu": lambda: _case("SUB", (1, 6, 6, 4), (1, 1, 6, 4), (1, 6, 6, 4), B, A, Q(0.05, -30),
                                        "RELU", 12),
    "sub_odd_scales": lambda: _case("SUB", (3, 17), (3, 17), (3, 17), Q(0.0123457, 1), Q(0.0370371, -9),
                                    Q(0.0456789, 2), seed=13),
    # MUL
    "mul_same_shape": lambda: _case("MUL", (1, 7, 7, 6), (1, 7, 7, 6), (1, 7, 7, 6), A, B, Q(0.2, 4), seed=14),
    "mul_squeeze_excite_1hwc_by_111c": lambda: _case("MUL", (1, 10, 10, 24), (1, 1, 1, 24), (1, 10, 10, 24),
                                                     Q(0.08, -12), Q(1 / 256, -128), Q(0.07, -10), seed=15),
    "mul_relu6": lambda: _case("MUL", (1, 4, 4, 8), (1, 4, 4, 8), (1, 4, 4, 8), A, B, Q(0.03, -128), "RELU6", 16),
    "mul_small_multiplier_extremes": lambda: _case("MUL", (1, 5, 5, 5), (1, 5, 5, 5), (1, 5, 5, 5),
                                                   Q(0.001, -128), Q(0.002, 127), Q(0.5, 0), seed=17, extreme=True),
    "mul_large_multiplier_saturates": lambda: _case("MUL", (1, 9, 9, 2), (1, 1, 9, 2), (1, 9, 9, 2),
                                                    Q(0.5, 3), Q(0.4, -4), Q(0.01, 1), seed=18),
    "mul_broadcast_const_row": lambda: _case("MUL", (2, 3, 4, 6), (4, 6), (2, 3, 4, 6), B, A, O, seed=19,
                                             const2=True),
    # The hard-sigmoid of mcunetv2's squeeze-excite blocks: scalar constants on a [1,1,1,C] vector.
    "add_hard_sigmoid_scalar_const_relu6": lambda: _case("ADD", (1, 1, 1, 240), (1,), (1, 1, 1, 240),
                                                         Q(0.04, 9), Q(0.0235, -128), Q(0.0235, -128), "RELU6",
                                                         20, const2=True),
    "mul_hard_sigmoid_scalar_const": lambda: _case("MUL", (1, 1, 1, 240), (1,), (1, 1, 1, 240),
                                                   Q(0.0235, -128), Q(0.00065, -128), Q(1 / 256, -128), seed=21,
                                                   const2=True),
}


def _random_case(kind: str, seed: int) -> Case:
    """Log-uniform scales over three decades, zero points anywhere, any fused activation."""
    rng = np.random.default_rng(1000 + seed)

    def q() -> Q:
        return Q(float(10 ** rng.uniform(-3, 0)), int(rng.integers(-128, 128)))

    shape = tuple(int(d) for d in rng.integers(1, 6, size=int(rng.integers(1, 5))))
    other = tuple(d if rng.random() < 0.5 else 1 for d in shape)[int(rng.integers(0, len(shape))):]
    s1, s2 = (shape, other) if rng.random() < 0.5 else (other, shape)
    act = str(rng.choice(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]))
    return _case(kind, s1, s2, shape, q(), q(), q(), act, seed=2000 + seed)


for _i in range(4):
    for _kind in ("ADD", "SUB", "MUL"):
        CASES[f"{_kind.lower()}_random_scales_shapes_activation_{_i}"] = \
            (lambda k=_kind, i=_i: _random_case(k, i))


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


# ---------------------------------------------------------------------------- broadcast plan
def test_broadcast_plan_merges_squeeze_excite_into_two_dims() -> None:
    p = broadcast_plan((1, 7, 7, 32), (1, 1, 1, 32), (1, 7, 7, 32))
    assert p is not None
    assert p.dims[-2:] == (49, 32) and p.in1_strides[-2:] == (32, 1) and p.in2_strides[-2:] == (0, 1)
    assert p.dims[:-2] == (1,) * 4


def test_broadcast_plan_matches_numpy_broadcasting() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        r = int(rng.integers(1, 6))
        full = tuple(int(d) for d in rng.integers(1, 4, size=r))
        s1 = tuple(d if rng.random() < 0.6 else 1 for d in full)[int(rng.integers(0, r)):]
        s2 = tuple(d if rng.random() < 0.6 else 1 for d in full)[int(rng.integers(0, r)):]
        out = np.broadcast_shapes(s1, s2)
        a = np.arange(int(np.prod(s1)), dtype=np.int64).reshape(s1)
        b = np.arange(int(np.prod(s2)), dtype=np.int64).reshape(s2) * 1000
        want = (np.broadcast_to(a, out) + np.broadcast_to(b, out)).ravel()
        p = broadcast_plan(s1, s2, out)
        assert p is not None
        got = [a.ravel()[o1] + b.ravel()[o2] for o1, o2 in _walk(p)]
        np.testing.assert_array_equal(got, want)
    assert broadcast_plan((2, 3), (3, 3), (2, 3)) is None


def _walk(p):
    """The C kernel's walk, in Python: yields (in1 offset, in2 offset) per output element."""
    for idx in np.ndindex(*p.dims):
        yield (sum(i * s for i, s in zip(idx, p.in1_strides)), sum(i * s for i, s in zip(idx, p.in2_strides)))


# ---------------------------------------------------------------------------- unsupported
def _float_add() -> bytes:
    b = ModelBuilder()
    x = b.input("x", shape=(1, 4), dtype="float32")
    y = b.input("y", shape=(1, 4), dtype="float32")
    z = b.tensor("z", shape=(1, 4), dtype="float32")
    b.op("ADD", inputs=[x, y], outputs=[z])
    b.output(z)
    return b.build()


def _int16_mul() -> bytes:
    return binary_model("MUL", (1, 4), (1, 4), (1, 4), Q(0.01, 0), Q(0.01, 0), Q(0.01, 0), dtype="int16")


@pytest.mark.parametrize("make, op, why", [
    (_float_add, "ADD", "float32 ADD"),
    (_int16_mul, "MUL", "only int8"),
    (lambda: binary_model("ADD", (1, 4), (1, 4), (1, 4), A, B, O, act="TANH"), "ADD", "TANH"),
    (lambda: binary_model("SUB", (1, 4), (1, 4), (1, 4), A, B, O, act="SIGN_BIT"), "SUB", "SIGN_BIT"),
    (lambda: binary_model("ADD", (1, 4), (1, 4), (1, 4), Q(0.5, 0), Q(0.5, 0), Q(1e-7, 0)), "ADD", ">= 1"),
])
def test_unsupported_raises_naming_the_op(make, op: str, why: str) -> None:
    with pytest.raises(UnsupportedError) as e:
        run_on_host(make(), [np.zeros((1, 1, 4), dtype=np.int8)] * 2)
    assert f"{op} (op #0)" in str(e.value)
    assert why in str(e.value)
