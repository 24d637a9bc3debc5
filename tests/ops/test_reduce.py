"""MEAN and SUM (int8, constant axes): every output byte equals TFLM's.

Same quantization in and out is covered on purpose: older TFLM took a truncating integer
average there; current TFLM (the golden) requantizes like every other case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

from tests.support.reference import run_many
from tests.support.tflite_builder import ModelBuilder
from tinyc.api import run_on_host
from tinyc.errors import UnsupportedError
from tinyc.ops.reduce import reduce_plan, resolve_axes

N = 12


def reduce_model(kind: str, shape, axes, out_shape, qin, qout, keep_dims: bool, dtype: str = "int8",
                 axis_dtype: str = "int32", axis_const: bool = True) -> bytes:
    b = ModelBuilder()
    x = b.input("x", shape=shape, dtype=dtype, scale=qin[0], zero_point=qin[1])
    if axis_const:
        a = b.const("axis", np.asarray(axes, dtype=axis_dtype))
    else:
        a = b.input("axis", shape=(len(axes),), dtype="int32")
    y = b.tensor("y", shape=out_shape, dtype=dtype, scale=qout[0], zero_point=qout[1])
    b.op(kind, inputs=[x, a], outputs=[y], options=dict(keep_dims=keep_dims))
    b.output(y)
    return b.build()


def reduced_shape(shape, axes, keep: bool):
    ax = resolve_axes(np.asarray(axes), len(shape))
    return tuple((1 if i in ax else d) for i, d in enumerate(shape) if keep or i not in ax)


@dataclass(frozen=True)
class Case:
    model: bytes
    inputs: tuple[np.ndarray, ...]


def _case(kind, shape, axes, qin, qout, keep=True, seed=0, extreme=False) -> Case:
    rng = np.random.default_rng(seed)
    model = reduce_model(kind, shape, axes, reduced_shape(shape, axes, keep), qin, qout, keep)
    x = rng.integers(-128, 128, size=(N, *shape), dtype=np.int8)
    if extreme:  # all-minimum and all-maximum samples: the sums at both ends
        x[0] = -128
        x[1] = 127
    return Case(model, (x,))


QI = (0.05, -3)
QO = (0.02, 7)

CASES: dict[str, Callable[[], Case]] = {
    "mean_global_pool_keep_dims_requant": lambda: _case("MEAN", (1, 7, 7, 32), [1, 2], QI, QO, True, 1, True),
    "mean_global_pool_no_keep_dims_requant": lambda: _case("MEAN", (1, 5, 5, 16), [1, 2], QI, QO, False, 2),
    "mean_global_pool_same_quant_requantizes": lambda: _case("MEAN", (1, 6, 6, 20), [1, 2], QI, QI, True, 3, True),
    "mean_global_pool_same_quant_no_keep_dims": lambda: _case("MEAN", (1, 3, 9, 8), [2, 1], (0.1, 12), (0.1, 12),
                                                              False, 4),
    "mean_same_quant_zp_minus128": lambda: _case("MEAN", (1, 4, 4, 5), [1, 2], (0.02, -128), (0.02, -128), True, 5),
    "mean_large_count_1024": lambda: _case("MEAN", (1, 32, 32, 3), [1, 2], (0.03, 10), (0.015, -20), True, 6, True),
    "mean_count_not_power_of_two": lambda: _case("MEAN", (1, 7, 3, 4), [1, 2], (0.5, 0), (0.3, 1), True, 7),
    "mean_channel_axis_negative": lambda: _case("MEAN", (1, 4, 4, 10), [-1], QI, QO, True, 8),
    "mean_height_axis_only": lambda: _case("MEAN", (2, 6, 5, 3), [1], QI, QO, False, 9),
    "mean_batch_and_channel_axes": lambda: _case("MEAN", (3, 4, 2, 5), [0, 3], QI, QO, True, 10),
    "mean_duplicate_axes": lambda: _case("MEAN", (1, 5, 4, 6), [1, 2, -3], QI, QO, True, 11),
    "mean_three_axes": lambda: _case("MEAN", (2, 3, 4, 5), [1, 2, 3], QI, QO, False, 12),
    "mean_2d_last_axis": lambda: _case("MEAN", (6, 17), [1], QI, QO, False, 13),
    "mean_5d": lambda: _case("MEAN", (2, 3, 2, 4, 3), [1, 3], QI, QO, True, 14),
    "mean_output_saturates": lambda: _case("MEAN", (1, 4, 4, 8), [1, 2], (0.5, 0), (0.001, 0), True, 15),
    "sum_global_pool": lambda: _case("SUM", (1, 4, 4, 8), [1, 2], (0.01, 2), (0.2, -5), True, 16, True),
    "sum_same_quant_still_requantizes": lambda: _case("SUM", (1, 3, 3, 4), [1, 2], (0.05, 1), (0.05, 1), False, 17),
    "sum_channel_axis": lambda: _case("SUM", (1, 2, 3, 12), [3], (0.01, -4), (0.09, 3), False, 18),
}


@pytest.fixture(scope="module")
def cases() -> dict[str, Case]:
    return {name: make() for name, make in CASES.items()}


@pytest.fixture(scope="module")
def goldens(cases: dict[str, Case]) -> dict[str, list[np.ndarray]]:
    names = list(cases)
    out = {}
    for n, r in zip(names, run_many("tflm", [(cases[n].model, list(cases[n].inputs)) for n in names])):
        if isinstance(r, Exception):
            raise r
        out[n] = r
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_matches_tflm(name: str, cases: dict[str, Case], goldens: dict[str, list[np.ndarray]]) -> None:
    got = run_on_host(cases[name].model, list(cases[name].inputs))
    for g, w in zip(got, goldens[name]):
        np.testing.assert_array_equal(g, w)


def test_reduce_plan_global_pool_is_one_kept_and_one_reduced_run() -> None:
    p = reduce_plan((1, 7, 7, 32), (1, 2))
    assert p is not None
    assert (p.outer, p.outer_strides) == ((1, 1, 32), (0, 0, 1))
    assert (p.inner, p.inner_strides) == ((1, 1, 49), (0, 0, 32))


def test_reduce_plan_visits_every_input_once() -> None:
    rng = np.random.default_rng(0)
    for _ in range(100):
        r = int(rng.integers(1, 6))
        shape = tuple(int(d) for d in rng.integers(1, 4, size=r))
        axes = tuple(int(a) for a in np.flatnonzero(rng.random(r) < 0.5))
        p = reduce_plan(shape, axes)
        assert p is not None
        x = np.arange(int(np.prod(shape))).reshape(shape)
        want = x.sum(axis=axes).ravel() if axes else x.ravel()
        got = [sum(x.ravel()[o + i] for i in _offsets(p.inner, p.inner_strides))
               for o in _offsets(p.outer, p.outer_strides)]
        np.testing.assert_array_equal(got, want)


def _offsets(dims, strides):
    for idx in np.ndindex(*dims):
        yield sum(i * s for i, s in zip(idx, strides))


@pytest.mark.parametrize("model, why", [
    (lambda: reduce_model("MEAN", (1, 4, 4, 2), [1, 2], (1, 1, 1, 2), (0.1, 0), (0.1, 0), True, dtype="int16"),
     "only int8"),
    (lambda: reduce_model("MEAN", (1, 4, 4, 2), [1, 2], (1, 1, 1, 2), (0.1, 0), (0.1, 0), True, axis_const=False),
     "constant int32"),
    (lambda: reduce_model("SUM", (1, 4, 4, 2), [4], (1, 4, 4, 2), (0.1, 0), (0.1, 0), True), "out of range"),
])
def test_unsupported_raises_naming_the_op(model, why: str) -> None:
    m = model()
    with pytest.raises(UnsupportedError) as e:
        run_on_host(m, [np.zeros((1, 1, 4, 4, 2))])
    assert "(op #0)" in str(e.value) and why in str(e.value)
