"""TFLite Prepare-time helpers used by FULLY_CONNECTED, SOFTMAX and the activations.

Each function mirrors one TFLite/TFLM function (named in its docstring) operation by
operation, including where TFLite computes in float32 rather than double: the scales stored
in a model are float32, so `np.float32` arithmetic here rounds exactly as the C++ does.
"""

from __future__ import annotations

import math

import numpy as np

from tinyc.quant import quantize_multiplier, tflite_round



def f32(x: float) -> np.float32:
    return np.float32(x)


def preprocess_softmax_scaling(beta: float, input_scale: float, input_integer_bits: int) -> tuple[int, int] | None:
    """PreprocessSoftmaxScaling (double rounding build): beta * scale * 2^(31 - bits), capped at
    2^31 - 1, as (Q0.31 multiplier, left shift). None where TFLM's
    QuantizeMultiplierGreaterThanOne would CHECK-fail (multiplier <= 1)."""
    real = min(beta * input_scale * float(1 << (31 - input_integer_bits)), float((1 << 31) - 1))
    if not real > 1.0:
        return None
    q, shift = quantize_multiplier(real)
    if shift < 0:
        return None
    return q, shift


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    """CalculateInputRadius: the largest |input| whose rescaled value cannot overflow."""
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1) * float(1 << (total_signed_bits - input_integer_bits))
                          / float(1 << input_left_shift))
    return int(math.floor(max_input_rescaled))


def sigmoid_input_params(input_scale: float, input_integer_bits: int = 4) -> tuple[int, int, int] | None:
    """TFLM's int8 LOGISTIC/TANH Prepare: input_scale * 2^(31 - bits) split with frexp into a
    Q0.31 multiplier and a left shift (no QuantizeMultiplier: plain TfLiteRound of q * 2^31),
    plus the saturation radius. None where the left shift would be negative (TFLM shifts by it)."""
    real = float(input_scale) * float(1 << (31 - input_integer_bits))
    q, left_shift = math.frexp(real)
    if left_shift < 0:
        return None
    mult = tflite_round(q * float(1 << 31))
    if mult > (1 << 31) - 1:  # cannot happen for a float32 scale (24-bit mantissa)
        return None
    return mult, left_shift, calculate_input_radius(input_integer_bits, left_shift, 31)


def downscale_int32_to_int16_multiplier(m: int) -> int:
    """DownScaleInt32ToInt16Multiplier: round a Q0.31 multiplier to Q0.15."""
    rounding_offset = 1 << 15
    if m >= (1 << 31) - 1 - rounding_offset:
        return (1 << 15) - 1
    return (m + rounding_offset) >> 16


def hard_swish_params(input_scale: float, output_scale: float) -> tuple[int, int, int, int]:
    """TFLM HardSwishPrepare (int8). Returns (output_multiplier_int16, output_exponent,
    reluish_multiplier_int16, reluish_exponent).

    The scales are combined in double: older TFLM sources show float32 arithmetic, but the TFLM
    build tinyc is checked against rounds like double (the two differ by one in the Q0.15
    multiplier for about one scale pair in a thousand, and then outputs differ).
    """
    hires_input_scale = (1.0 / 128.0) * float(input_scale)
    reluish_scale = 3.0 / 32768.0
    out_m, out_e = quantize_multiplier(hires_input_scale / float(output_scale))
    rel_m, rel_e = quantize_multiplier(hires_input_scale / reluish_scale)
    return downscale_int32_to_int16_multiplier(out_m), out_e, downscale_int32_to_int16_multiplier(rel_m), rel_e
