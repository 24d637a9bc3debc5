"""tinyc.quant: TFLite's fixed-point requantization, checked against exact big-integer references.

The references below are written from TFLite's definitions (quantization_util.cc,
common.h, gemmlowp fixedpoint.h) with Python's unbounded integers and Fractions, so they
share no code with the module under test.
"""

from __future__ import annotations

import math
from pathlib import Path
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyc.quant import (
    INT32_MAX,
    INT32_MIN,
    activation_range,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    quantize_multiplier_array,
    quantize_multiplier_smaller_than_one_exp,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
    tflite_round,
)

FAST = settings(derandomize=True, max_examples=150, deadline=None, database=None)


# ---------------------------------------------------------------- exact references


def ref_round_half_away(f: Fraction) -> int:
    """std::round of an exact value: nearest integer, halves away from zero."""
    mag = math.floor(abs(f) + Fraction(1, 2))
    return mag if f >= 0 else -mag


def ref_srdhm(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul: (a*b + nudge) / 2**31, truncated toward 0."""
    if a == INT32_MIN and b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return int(Fraction(ab + nudge, 1 << 31))  # int(Fraction) truncates toward zero


def ref_mbqm(x: int, q: int, shift: int) -> int:
    """TFLite MultiplyByQuantizedMultiplier (double rounding)."""
    left, right = max(shift, 0), max(-shift, 0)
    high = ref_srdhm(x * (1 << left), q)
    return ref_round_half_away(Fraction(high, 1 << right))


# ---------------------------------------------------------------- tflite_round


@pytest.mark.parametrize("x, want", [
    (0.0, 0), (0.5, 1), (-0.5, -1), (1.5, 2), (2.5, 3), (-2.5, -3), (0.4, 0), (-0.4, 0),
    (1.49, 1), (-1.51, -2), (1e9 + 0.5, 1000000001), (-(2.0 ** 40) - 0.5, -(2 ** 40) - 1),
])
def test_tflite_round_halves_away_from_zero(x: float, want: int) -> None:
    assert tflite_round(x) == want


@FAST
@given(st.integers(-(2 ** 40), 2 ** 40), st.sampled_from([0.0, 0.25, 0.5, 0.75, 0.125]))
def test_tflite_round_matches_exact_reference(i: int, frac: float) -> None:
    for x in (i + frac, i - frac):
        assert tflite_round(x) == ref_round_half_away(Fraction(x))


def test_tflite_round_largest_double_below_half() -> None:
    x = 0.49999999999999994  # nextafter(0.5, 0)
    assert tflite_round(x) == 0
    assert tflite_round(-x) == 0


def test_tflite_round_large_odd_integer() -> None:
    assert tflite_round(float(2 ** 52 + 1)) == 2 ** 52 + 1


# ---------------------------------------------------------------- quantize_multiplier


@pytest.mark.parametrize("m, want", [
    (0.0, (0, 0)),
    (0.5, (1 << 30, 0)),
    (1.0, (1 << 30, 1)),
    (0.25, (1 << 30, -1)),
    (2.0, (1 << 30, 2)),
    (0.75, (3 << 29, 0)),
    (-0.5, (-(1 << 30), 0)),
    (-1.0, (-(1 << 30), 1)),
    (2.0 ** -32, (1 << 30, -31)),  # the smallest shift TFLite keeps
    (2.0 ** -33, (0, 0)),  # below 2**-32: flushed to zero
    (1e-20, (0, 0)),
])
def test_quantize_multiplier_known_values(m: float, want: tuple[int, int]) -> None:
    assert quantize_multiplier(m) == want


def test_quantize_multiplier_rounding_carry() -> None:
    """frexp's fraction rounds up to 2**31: TFLite halves q and bumps the shift."""
    m = 1.0 - 2.0 ** -40
    assert round(math.frexp(m)[0] * 2 ** 31) == 1 << 31  # the case really carries
    assert quantize_multiplier(m) == (1 << 30, 1)


def test_quantize_multiplier_carry_rescues_a_value_just_below_two_pow_minus_32() -> None:
    """Carry happens before the shift < -31 flush, as in TFLite: m just under 2**-32 is kept."""
    m = 2.0 ** -32 * (1.0 - 2.0 ** -40)
    assert math.frexp(m)[1] == -32
    assert quantize_multiplier(m) == (1 << 30, -31)


@FAST
@given(st.floats(min_value=2.0 ** -31, max_value=2.0 ** 20, allow_nan=False, allow_infinity=False),
       st.booleans())
def test_quantize_multiplier_definition(m: float, negative: bool) -> None:
    """m == q * 2**(shift - 31) within half a unit of q, with q a normalised Q0.31 value."""
    if negative:
        m = -m
    q, shift = quantize_multiplier(m)
    assert INT32_MIN <= q <= INT32_MAX
    assert (1 << 30) <= abs(q) <= (1 << 31)
    approx = Fraction(q) * Fraction(2) ** (shift - 31)
    assert abs(approx - Fraction(m)) <= Fraction(2) ** (shift - 32)


def test_quantize_multiplier_array_matches_scalar() -> None:
    ms = np.array([0.5, 1.0, 2.0 ** -33, 0.3, 1.7e-3], dtype=np.float64)
    qs, shifts = quantize_multiplier_array(ms)
    assert qs.dtype == np.int32 and shifts.dtype == np.int32
    assert [(int(a), int(b)) for a, b in zip(qs, shifts)] == [quantize_multiplier(float(m)) for m in ms]


def test_quantize_multiplier_smaller_than_one_exp() -> None:
    assert quantize_multiplier_smaller_than_one_exp(0.5) == (1 << 30, 0)
    assert quantize_multiplier_smaller_than_one_exp(0.1)[1] <= 0
    with pytest.raises(ValueError, match="not smaller than one"):
        quantize_multiplier_smaller_than_one_exp(1.5)


# ------------------------------------------------------- multiply_by_quantized_multiplier

int32s = st.integers(INT32_MIN, INT32_MAX)


@st.composite
def mbqm_args(draw: st.DrawFn) -> tuple[int, int, int]:
    """(x, q, shift) in TFLite's domain: shift in [-31, 30], x << shift fits int32."""
    shift = draw(st.integers(-31, 30))
    left = max(shift, 0)
    x = draw(st.integers(INT32_MIN >> left, INT32_MAX >> left))
    q = draw(st.one_of(st.integers(1 << 30, INT32_MAX), int32s, st.sampled_from([INT32_MIN, INT32_MAX, 0])))
    return x, q, shift


@FAST
@given(mbqm_args())
def test_multiply_by_quantized_multiplier_matches_reference(args: tuple[int, int, int]) -> None:
    x, q, shift = args
    assert multiply_by_quantized_multiplier(x, q, shift) == ref_mbqm(x, q, shift)


@pytest.mark.parametrize("x, q, shift", [
    (INT32_MIN, INT32_MIN, 0),  # the one saturating product
    (INT32_MAX, INT32_MAX, 0),
    (INT32_MIN, INT32_MAX, -31),
    (-1, 1 << 30, -1),  # -0.25 -> 0 after the doubling high mul, then -0.5 rounds away
    (3, 1 << 30, -1),  # 1.5 -> 2 (half away from zero)
    (-3, 1 << 30, -1),  # -1.5 -> -2
    (12345, 1 << 30, 1),  # multiplier 1.0: identity
    (-12345, 1 << 30, 1),
    (100, 0, 0),
])
def test_multiply_by_quantized_multiplier_edges(x: int, q: int, shift: int) -> None:
    assert multiply_by_quantized_multiplier(x, q, shift) == ref_mbqm(x, q, shift)


def test_multiply_by_quantized_multiplier_identity_for_one() -> None:
    q, shift = quantize_multiplier(1.0)
    for x in (0, 1, -1, 127, -128, 2 ** 29, -(2 ** 29)):
        assert multiply_by_quantized_multiplier(x, q, shift) == x


@FAST
@given(int32s, int32s)
def test_saturating_rounding_doubling_high_mul_matches_reference(a: int, b: int) -> None:
    assert saturating_rounding_doubling_high_mul(a, b) == ref_srdhm(a, b)


@FAST
@given(int32s, st.integers(0, 31))
def test_rounding_divide_by_pot_matches_reference(x: int, exponent: int) -> None:
    assert rounding_divide_by_pot(x, exponent) == ref_round_half_away(Fraction(x, 1 << exponent))


# ---------------------------------------------------------------- activation_range


@pytest.mark.parametrize("act, scale, zp, dtype, want", [
    ("NONE", 0.1, 3, "int8", (-128, 127)),
    (None, 0.1, 3, "int8", (-128, 127)),
    ("RELU", 0.1, 3, "int8", (3, 127)),
    ("RELU", 0.1, -128, "int8", (-128, 127)),
    ("RELU", 0.1, -200, "int8", (-128, 127)),  # zero below qmin clamps to qmin
    ("RELU6", 6.0 / 255, -128, "int8", (-128, 127)),
    ("RELU6", 0.05, -10, "int8", (-10, 110)),
    ("RELU6", 0.01, 0, "int8", (0, 127)),  # 6.0 is out of range: qmax
    ("RELU_N1_TO_1", 0.01, 0, "int8", (-100, 100)),
    ("RELU_N1_TO_1", 1.0 / 64, 5, "int8", (-59, 69)),
    ("RELU", 0.1, 128, "uint8", (128, 255)),
    ("RELU6", 0.001, 0, "int16", (0, 6000)),
    ("NONE", 1.0, 0, "int16", (-32768, 32767)),
])
def test_activation_range(act: str | None, scale: float, zp: int, dtype: str, want: tuple[int, int]) -> None:
    assert activation_range(act, scale, zp, dtype) == want


@pytest.mark.parametrize("act", ["TANH", "SIGN_BIT", "SIGMOID"])
def test_activation_range_rejects_unsupported_activation(act: str) -> None:
    with pytest.raises(ValueError, match=act):
        activation_range(act, 0.1, 0)


def test_activation_range_divides_in_float32_like_tflite() -> None:
    scale = float(np.float32(0.03809523954987526))  # a float32 output scale, ~6/157.5
    want_hi = -128 + tflite_round(float(np.float32(6.0) / np.float32(scale)))
    assert want_hi == 30  # TFLM's clamp, measured with the tflite-micro interpreter
    assert activation_range("RELU6", scale, -128) == (-128, 30)


# ---------------------------------------------------------------- the C runtime's quant.h


_QUANT_MAIN = r"""
#include <inttypes.h>
#include <stdio.h>
#include "tinyc/quant.h"
int main(void) {
  long long x, q, s;
  while (scanf("%lld %lld %lld", &x, &q, &s) == 3) {
    printf("%" PRId32 " %" PRId32 "\n", tinyc_mul_by_qm((int32_t)x, (int32_t)q, (int)s),
           tinyc_sat_rdhm((int32_t)x, (int32_t)q));
  }
  return 0;
}
"""


def test_c_runtime_requantization_matches_the_reference(tmp_path) -> None:
    """quant.h (the one rounding implementation every kernel calls) against TFLM's definition,
    under ASan/UBSan: random triples in TFLM's domain plus the edges above."""
    import subprocess

    from tinyc.target.host import SANITIZE_FLAGS, WARN_FLAGS

    runtime = Path(__file__).resolve().parents[2] / "runtime_c" / "include"
    (tmp_path / "q.c").write_text(_QUANT_MAIN)
    exe = tmp_path / "q"
    subprocess.run(["gcc", *WARN_FLAGS, *SANITIZE_FLAGS, "-O2", f"-I{runtime}", "q.c", "-o", str(exe)],
                   cwd=tmp_path, check=True)
    rng = np.random.default_rng(5)
    cases = [(INT32_MIN, INT32_MIN, 0), (INT32_MAX, INT32_MAX, 0), (INT32_MIN, INT32_MAX, -31), (-1, 1 << 30, -1),
             (3, 1 << 30, -1), (-3, 1 << 30, -1), (-12345, 1 << 30, 1), (100, 0, 0), (-(1 << 30), 1 << 30, 0)]
    for _ in range(20_000):
        shift = int(rng.integers(-31, 31))
        left = max(shift, 0)
        x = int(rng.integers(INT32_MIN >> left, (INT32_MAX >> left) + 1))
        if rng.random() < 0.3:
            x = int(rng.integers(-(1 << 20), 1 << 20)) >> left  # small sums, as kernels see (x << left fits)
        q = int(rng.integers(1 << 30, INT32_MAX, endpoint=True)) if rng.random() < 0.8 else \
            int(rng.integers(INT32_MIN, INT32_MAX, endpoint=True))
        cases.append((x, q, shift))
    r = subprocess.run([str(exe)], input="".join(f"{x} {q} {s}\n" for x, q, s in cases), capture_output=True,
                       text=True, check=True)
    got = [tuple(map(int, line.split())) for line in r.stdout.splitlines()]
    want = [(ref_mbqm(x, q, s), ref_srdhm(x, q)) for x, q, s in cases]
    bad = [(c, g, w) for c, g, w in zip(cases, got, want) if g != w]
    assert len(got) == len(cases) and not bad, bad[:5]


def test_fast_requant_equals_tflm_double_rounding() -> None:
    """The kernels' SMMLAR form (tinyc_rq) gives MultiplyByQuantizedMultiplier + zp for every
    accumulator within the proven bound: random and edge accumulators (rounding ties of the
    divide included), multipliers (negative and zero ones too), shifts 1..31, zero points at both
    ends."""
    from tinyc.quant import fast_requant, fast_requant_reference, multiply_by_quantized_multiplier

    rng = np.random.default_rng(7)
    checked = 0
    for trial in range(600):
        e = int(rng.integers(1, 32))
        q = int(rng.choice([rng.integers(1 << 30, 1 << 31), -int(rng.integers(1 << 30, 1 << 31)), 0,
                            (1 << 31) - 1, 1 << 30, -(1 << 30), -((1 << 31) - 1)]))
        zp = int(rng.choice([-128, 127, 0, int(rng.integers(-128, 128))]))
        bound = int(rng.choice([1000, 1 << 20, (1 << 29), int(rng.integers(1, 1 << 30))]))
        bias = int(rng.integers(-bound, bound + 1))
        fast = fast_requant(np.array([bias]), np.array([q]), np.array([-e]), zp, np.array([bound]))
        if fast is None:
            assert 2 * bound >= (1 << 31) - 2 or bound + (1 << (e - 1)) + abs(zp) * (1 << e) + 2 > (1 << 31) - 1
            continue
        rq, sign = fast
        b2, qq, rnd, ee = (int(v) for v in rq[0])
        s = int(sign[0])
        assert (b2, qq, ee) == (s * 2 * bias, abs(q), e) and s == (-1 if q < 0 else 1)
        accs = [0, 1, -1, 2, -2, bound, -bound]
        if q:  # accumulators whose high multiply lands on a rounding tie of the divide (and next to it)
            for t in (1, -1, 3, -3, 5, -5):
                near = (t << (e - 1) << 31) // q
                accs += [near - 1, near, near + 1]
        accs += [int(v) for v in rng.integers(-bound, bound + 1, size=20)]
        for acc in accs:
            if abs(acc) > bound:
                continue
            want = multiply_by_quantized_multiplier(acc, q, -e) + zp
            assert fast_requant_reference(s * 2 * (acc - bias) + b2, qq, rnd, ee) == want, (acc, q, e, zp)
            checked += 1
    assert checked > 5000


def test_fast_requant_refuses_what_it_cannot_prove() -> None:
    from tinyc.quant import fast_requant

    one = np.array([1 << 30])
    assert fast_requant(np.array([0]), np.array([-(1 << 31)]), np.array([-3]), 0, np.array([10])) is None
    assert fast_requant(np.array([0]), one, np.array([0]), 0, np.array([10])) is None  # no right shift
    assert fast_requant(np.array([0]), one, np.array([2]), 0, np.array([10])) is None  # a left shift
    assert fast_requant(np.array([0]), one, np.array([-3]), 0, np.array([1 << 30])) is None  # 2 acc overflows
    assert fast_requant(np.array([0]), one, np.array([-31]), 100, np.array([10])) is None  # zp << 31
    assert fast_requant(np.array([5]), one, np.array([-3]), -7, np.array([10])) is not None
