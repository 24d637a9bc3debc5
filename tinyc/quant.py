"""TFLite's fixed-point requantization, computed at compile time.

Rounding rules are defined here and in runtime_c/include/tinyc/quant.h only, and they follow
TFLite's reference (`QuantizeMultiplier`, `MultiplyByQuantizedMultiplier`, double rounding):
a real multiplier m becomes a Q0.31 integer and a power-of-two shift so that the int8 path
never touches a float.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def tflite_round(x: float) -> int:
    """std::round: halves away from zero (Python's round() rounds half to even).

    Written as floor + exact fraction test: floor(|x| + 0.5) would round 0.49999999999999994
    and 2**52 + 1 wrongly, because the addition itself rounds."""
    a = abs(float(x))
    f = math.floor(a)
    r = f + 1 if a - f >= 0.5 else f
    return int(r) if x >= 0 else -int(r)


def quantize_multiplier(m: float) -> tuple[int, int]:
    """Real multiplier -> (Q0.31 multiplier, shift); m == q * 2**(shift - 31). TFLite's QuantizeMultiplier."""
    if m == 0.0:
        return 0, 0
    frac, shift = math.frexp(m)
    q = tflite_round(frac * (1 << 31))
    if q == (1 << 31):
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q), int(shift)


def quantize_multiplier_array(ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel `quantize_multiplier`; returns int32 multipliers and int32 shifts."""
    pairs = [quantize_multiplier(float(m)) for m in np.asarray(ms, dtype=np.float64).ravel()]
    return (np.array([p[0] for p in pairs], dtype=np.int32), np.array([p[1] for p in pairs], dtype=np.int32))


def quantize_multiplier_smaller_than_one_exp(m: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplierSmallerThanOneExp: requires m < 1, returns a left shift <= 0."""
    q, shift = quantize_multiplier(m)
    if shift > 0:
        raise ValueError(f"multiplier {m} is not smaller than one")
    return q, shift


def saturating_rounding_doubling_high_mul(a: int, b: int) -> int:
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    v = ab + nudge
    # C++ integer division truncates toward zero.
    q = abs(v) >> 31
    return q if v >= 0 else -q


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def multiply_by_quantized_multiplier(x: int, q: int, shift: int) -> int:
    """The int32 requantization every int8 kernel ends with (TFLite's double-rounding form)."""
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x * (1 << left), q), right)


def activation_range(activation: str, scale: float, zero_point: int, dtype: str = "int8") -> tuple[int, int]:
    """Clamp bounds for a fused activation in the quantized domain (TFLite CalculateActivationRangeQuantized)."""
    qmin, qmax = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}[dtype]

    def q(v: float) -> int:
        # TFLite divides in float32 (float f / float scale), then std::round.
        return zero_point + tflite_round(float(np.float32(v) / np.float32(scale)))

    if activation in ("NONE", None):
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, q(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    if activation == "RELU_N1_TO_1":
        return max(qmin, q(-1.0)), min(qmax, q(1.0))
    raise ValueError(f"fused activation {activation} is not supported")


def fast_requant(bias: np.ndarray, mult: np.ndarray, shift: np.ndarray, output_zp: int,
                 acc_bound: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-channel constants of the kernels' fast requantization (runtime_c quant.h tinyc_rq),
    or None when it would not give TFLM's value for every accumulator the layer can produce.

    TFLM: y = RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc, q), e) + zp, acc the
    int32 sum with the bias, shift = -e <= -1 (real multipliers below 0.5). The kernel
    accumulates acc2 = s * 2 * acc (weights and bias doubled, and negated where q < 0: s = -1,
    q' = -q > 0) and computes
      u = rnd + floor((acc2 * q' + 2^31) / 2^32)    one SMMLAR, rnd = 2^(e-1) + zp * 2^e
      y = (u + (acc2 < 0 ? -1 : 0)) >> e
    With |acc2| < 2^31, t = floor((acc2 q' + 2^31) / 2^32) = floor((acc q + 2^30) / 2^31) is
    SaturatingRoundingDoublingHighMul (no saturation), and (t + 2^(e-1) - (t < 0)) >> e its
    rounding divide, halves away from zero; zp * 2^e adds zp exactly. acc2 < 0 stands for t < 0:
    with q' >= 0, t >= 0 whenever acc2 >= 0, t <= 0 whenever acc2 < 0, and at t = 0 the
    correction cannot change the result (2^(e-1) - 1 < 2^e).

    acc_bound: per channel, a bound on |acc| over every input. Returns (int32 [channels, 4]:
    s * 2 * bias, q', rnd, e; and s, int64 [channels], the sign to multiply the weights by)."""
    bias = np.asarray(bias, dtype=np.int64)
    mult = np.asarray(mult, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    bound = np.asarray(acc_bound, dtype=np.int64)
    if shift.size == 0 or (shift > -1).any() or (shift < -31).any() or (mult == INT32_MIN).any():
        return None
    e = -shift
    if (2 * bound >= (1 << 31) - 2).any() or (2 * np.abs(bias) > INT32_MAX).any():
        return None
    rnd = (np.int64(1) << (e - 1)) + (np.int64(output_zp) << e)
    # |t| <= |acc| + 1 (|q| <= 2^31); u - 1 and u must fit int32
    if (bound + 1 + np.abs(rnd) + 1 > INT32_MAX).any():
        return None
    sign = np.where(mult < 0, -1, 1).astype(np.int64)
    return np.stack([sign * 2 * bias, sign * mult, rnd, e], axis=1).astype(np.int32), sign


def fast_requant_reference(acc2: int, q: int, rnd: int, e: int) -> int:
    """What tinyc_rq computes (for tests), acc2 = s * 2 * acc with the bias."""
    u = rnd + ((acc2 * q + (1 << 31)) >> 32)
    return (u + (-1 if acc2 < 0 else 0)) >> e
