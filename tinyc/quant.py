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
