"""QUANTIZE / DEQUANTIZE: every output byte (every float bit) equals TFLM's.

float32 -> uint8 QUANTIZE is not implemented by TFLM's reference kernel, so its golden is
LiteRT's reference kernel (BUILTIN_REF) instead.
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

N = 16


def unary_model(kind: str, shape, in_dtype: str, out_dtype: str, qin=None, qout=None) -> bytes:
    b = ModelBuilder()
    x = b.input("x", shape=shape, dtype=in_dtype, scale=qin[0] if qin else None,
                zero_point=qin[1] if qin else None)
    y = b.tensor("y", shape=shape, dtype=out_dtype, scale=qout[0] if qout else None,
                 zero_point=qout[1] if qout else None)
    b.op(kind, inputs=[x], outputs=[y])
    b.output(y)
    return b.build()


@dataclass(frozen=True)
class Case:
    model: bytes
    inputs: tuple[np.ndarray, ...]
    golden: str = "tflm"


def float_inputs(rng: np.random.Generator, shape, scale: float, zp: int) -> np.ndarray:
    """Random floats over (and beyond) the representable range, plus exact rounding ties."""
    n = int(np.prod(shape))
    x = rng.uniform(-140, 140, size=(N, n)) * scale + (-zp * scale)
    # Ties: (k + 1/2) * scale is an exact float32 tie when the scale is a power of two; for other
    # scales these still land within an ulp of a tie, where division rounding decides.
    k = rng.integers(-130, 130, size=(N, n))
    ties = (k + 0.5) * scale
    pick = rng.random((N, n)) < 0.3
    x = np.where(pick, ties, x).astype(np.float32)
    x[:, :4] = np.float32([0.0, -0.0, 1e6, -1e6])[: min(4, n)]
    return x.reshape(N, *shape)


def _quant_f32(shape, out_dtype, scale, zp, seed, golden="tflm") -> Case:
    rng = np.random.default_rng(seed)
    return Case(unary_model("QUANTIZE", shape, "float32", out_dtype, qout=(scale, zp)),
                (float_inputs(rng, shape, scale, zp),), golden)


def _requant(shape, in_dtype, out_dtype, qin, qout, seed) -> Case:
    rng = np.random.default_rng(seed)
    lo, hi = (-128, 128) if in_dtype == "int8" else (0, 256)
    x = rng.integers(lo, hi, size=(N, *shape)).astype(in_dtype)
    x.reshape(N, -1)[0, :2] = [lo, hi - 1]
    return Case(unary_model("QUANTIZE", shape, in_dtype, out_dtype, qin=qin, qout=qout), (x,))


def _dequant(shape, in_dtype, qin, seed) -> Case:
    rng = np.random.default_rng(seed)
    lo, hi = (-128, 128) if in_dtype == "int8" else (0, 256)
    x = rng.integers(lo, hi, size=(N, *shape)).astype(in_dtype)
    return Case(unary_model("DEQUANTIZE", shape, in_dtype, "float32", qin=qin), (x,))


CASES: dict[str, Callable[[], Case]] = {
    "quantize_f32_s8_power_of_two_scale_ties": lambda: _quant_f32((1, 8, 8, 3), "int8", 0.25, -3, 1),
    "quantize_f32_s8_odd_scale": lambda: _quant_f32((1, 96, 3), "int8", 0.0078125 * 1.37, 11, 2),
    "quantize_f32_s8_image_scale_zp_minus128": lambda: _quant_f32((1, 12, 12, 3), "int8", 1 / 255, -128, 3),
    "quantize_f32_s8_zp_127": lambda: _quant_f32((40,), "int8", 0.0371, 127, 4),
    "quantize_f32_u8_litert_ref": lambda: _quant_f32((1, 6, 6, 2), "uint8", 0.02, 128, 5, golden="litert"),
    "quantize_f32_u8_zp0_litert_ref": lambda: _quant_f32((33,), "uint8", 0.5, 0, 6, golden="litert"),
    "requantize_u8_s8_shift_128": lambda: _requant((1, 16, 16, 3), "uint8", "int8", (0.0039, 128), (0.0039, 0), 7),
    "requantize_u8_s8_zp0_to_minus128": lambda: _requant((1, 8, 8, 3), "uint8", "int8", (1 / 255, 0),
                                                         (1 / 255, -128), 8),
    "requantize_u8_s8_rescale": lambda: _requant((1, 5, 7, 3), "uint8", "int8", (0.02, 100), (0.031, -5), 9),
    "requantize_s8_u8_shift_128": lambda: _requant((1, 2), "int8", "uint8", (0.0039, -128), (0.0039, 0), 10),
    "requantize_s8_u8_rescale": lambda: _requant((3, 21), "int8", "uint8", (0.05, 3), (0.04, 120), 11),
    "requantize_s8_s8_downscale": lambda: _requant((1, 9, 9, 4), "int8", "int8", (0.05, -7), (0.21, 10), 12),
    "requantize_s8_s8_upscale_saturates": lambda: _requant((64,), "int8", "int8", (0.3, 0), (0.01, -3), 13),
    "dequantize_s8": lambda: _dequant((1, 10), "int8", (0.0390625, -128), 14),
    "dequantize_s8_odd_scale": lambda: _dequant((2, 5, 5, 3), "int8", (0.0123456789, 17), 15),
    "dequantize_u8": lambda: _dequant((1, 7, 3), "uint8", (0.0234567, 128), 16),
    "dequantize_u8_zp0": lambda: _dequant((50,), "uint8", (1 / 255, 0), 17),
}


@pytest.fixture(scope="module")
def cases() -> dict[str, Case]:
    return {name: make() for name, make in CASES.items()}


@pytest.fixture(scope="module")
def goldens(cases: dict[str, Case]) -> dict[str, list[np.ndarray]]:
    out: dict[str, list[np.ndarray]] = {}
    for backend in ("tflm", "litert"):
        names = [n for n, c in cases.items() if c.golden == backend]
        for n, r in zip(names, run_many(backend, [(cases[n].model, list(cases[n].inputs)) for n in names])):
            if isinstance(r, Exception):
                raise r
            out[n] = r
    return out


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint32) if a.dtype == np.float32 else a


@pytest.mark.parametrize("name", list(CASES))
def test_matches_reference(name: str, cases: dict[str, Case], goldens: dict[str, list[np.ndarray]]) -> None:
    case = cases[name]
    got = run_on_host(case.model, list(case.inputs))
    for g, w in zip(got, goldens[name]):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(_bits(g), _bits(w))


@pytest.mark.parametrize("model, why", [
    (lambda: unary_model("QUANTIZE", (1, 4), "int16", "int8", (0.01, 0), (0.01, 0)), "int16->int8"),
    (lambda: unary_model("QUANTIZE", (1, 4), "uint8", "uint8", (0.01, 0), (0.01, 0)), "uint8->uint8"),
    (lambda: unary_model("QUANTIZE", (1, 4), "float32", "int16", None, (0.01, 0)), "float32->int16"),
    (lambda: unary_model("DEQUANTIZE", (1, 4), "int16", "float32", (0.01, 0)), "int16->float32"),
])
def test_unsupported_raises_naming_the_op(model, why: str) -> None:
    with pytest.raises(UnsupportedError) as e:
        run_on_host(model(), [np.zeros((1, 1, 4))])
    assert "(op #0)" in str(e.value) and why in str(e.value)


def test_dequantize_of_a_per_channel_constant_folds_like_tflm() -> None:
    from tinyc.frontend.tflite_reader import read_tflite
    from tinyc.ops.registry import lookup

    w = np.arange(-12, 12, dtype=np.int8).reshape(2, 3, 4)
    b = ModelBuilder()
    x = b.input("x", shape=(2, 3, 4), dtype="float32")
    c = b.const("w", w, scale=[0.1, 0.37, 0.0123], zero_point=[0, 2, -5], quantized_dimension=1)
    y = b.tensor("y", shape=(2, 3, 4), dtype="float32")
    b.op("DEQUANTIZE", inputs=[c], outputs=[y])
    b.output(x)
    g = read_tflite(data=b.build(), name="m")
    (got,) = lookup("DEQUANTIZE").fold(g.ops[0], g)
    s = np.float32([0.1, 0.37, 0.0123]).astype(np.float64).reshape(1, 3, 1)
    z = np.array([0, 2, -5], dtype=np.float64).reshape(1, 3, 1)
    np.testing.assert_array_equal(got.view(np.uint32), (s * (w - z)).astype(np.float32).view(np.uint32))
