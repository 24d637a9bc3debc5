/* tinyc: the only place integer rounding is defined in the runtime.
 * Bit-exact with TFLite's reference: SaturatingRoundingDoublingHighMul, RoundingDivideByPOT and
 * MultiplyByQuantizedMultiplier (double rounding). Multipliers are Q0.31, shifts are powers of two
 * (positive = left); both computed by the compiler (tinyc/quant.py), never at run time. */
#ifndef TINYC_QUANT_H
#define TINYC_QUANT_H

#include <stdint.h>

/* TFLM adds a sign-dependent nudge (2^30, or 1 - 2^30 below zero) and divides by 2^31 truncating
 * toward zero. For a negative product p, trunc((p + 1 - 2^30) / 2^31) = ceil(...) =
 * floor((p + 2^30) / 2^31), which is also the value for p >= 0: so one multiply-accumulate of
 * 2^30 and an arithmetic shift (SMLAL + shifts on Cortex-M, no branch) give TFLM's value for
 * every product. */
static inline int32_t tinyc_sat_rdhm(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) {
    return INT32_MAX;
  }
  const int64_t ab = (int64_t)a * (int64_t)b + ((int64_t)1 << 30);
  return (int32_t)(ab >> 31); /* arithmetic shift: gcc and clang define >> of negatives so */
}

static inline int32_t tinyc_rounding_div_pot(int32_t x, int exponent) {
  const int32_t mask = (int32_t)((1ll << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

static inline int32_t tinyc_mul_by_qm(int32_t x, int32_t multiplier, int shift) {
  const int left = shift > 0 ? shift : 0;
  const int right = shift > 0 ? 0 : -shift;
  return tinyc_rounding_div_pot(tinyc_sat_rdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

static inline int32_t tinyc_clamp_i32(int32_t v, int32_t lo, int32_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

#endif /* TINYC_QUANT_H */
