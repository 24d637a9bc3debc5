/* tinyc: the only place integer rounding is defined in the runtime.
 * Bit-exact with TFLite's reference: SaturatingRoundingDoublingHighMul, RoundingDivideByPOT and
 * MultiplyByQuantizedMultiplier (double rounding). Multipliers are Q0.31, shifts are powers of two
 * (positive = left); both computed by the compiler (tinyc/quant.py), never at run time. */
#ifndef TINYC_QUANT_H
#define TINYC_QUANT_H

#include <stdint.h>

#include "tinyc/simd.h"

/* Inlined into the kernels' inner loops whatever the optimiser's size heuristics say: a call per
 * output element costs more than the requantization itself. */
#if defined(__GNUC__)
#define TINYC_INLINE static inline __attribute__((always_inline))
#else
#define TINYC_INLINE static inline
#endif

/* TFLM adds a sign-dependent nudge (2^30, or 1 - 2^30 below zero) and divides by 2^31 truncating
 * toward zero. For a negative product p, trunc((p + 1 - 2^30) / 2^31) = ceil(...) =
 * floor((p + 2^30) / 2^31), which is also the value for p >= 0: so one multiply-accumulate of
 * 2^30 and an arithmetic shift (SMLAL + shifts on Cortex-M, no branch) give TFLM's value for
 * every product. */
TINYC_INLINE int32_t tinyc_sat_rdhm(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) {
    return INT32_MAX;
  }
  const int64_t ab = (int64_t)a * (int64_t)b + ((int64_t)1 << 30);
  return (int32_t)(ab >> 31); /* arithmetic shift: gcc and clang define >> of negatives so */
}

TINYC_INLINE int32_t tinyc_rounding_div_pot(int32_t x, int exponent) {
  const int32_t mask = (int32_t)((1u << exponent) - 1u); /* exponent <= 31 */
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

TINYC_INLINE int32_t tinyc_mul_by_qm(int32_t x, int32_t multiplier, int shift) {
  if (shift <= 0) { /* the usual case, a multiplier below 1: no left shift */
    return tinyc_rounding_div_pot(tinyc_sat_rdhm(x, multiplier), -shift);
  }
  return tinyc_sat_rdhm((int32_t)((uint32_t)x << shift), multiplier);
}

TINYC_INLINE int32_t tinyc_clamp_i32(int32_t v, int32_t lo, int32_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

/* An int32 accumulator (bias included) to an int8 output: TFLM's MultiplyByQuantizedMultiplier,
 * + output zero point, clamp to the fused activation. */
TINYC_INLINE int8_t tinyc_requant_s8(int32_t acc, int32_t multiplier, int32_t shift, int32_t output_offset,
                                     int32_t act_min, int32_t act_max) {
  acc = tinyc_mul_by_qm(acc, multiplier, (int)shift) + output_offset;
  return (int8_t)tinyc_clamp_i32(acc, act_min, act_max);
}

/* A layer's per-channel requantization, copied out of its params into a local by the kernels:
 * int8 output stores may alias anything (char type), so fields read through the params pointer
 * would be reloaded after every output byte; a local copy stays in registers. */
typedef struct {
  const int32_t *bias; /* [channels], or NULL */
  const int32_t *mult;
  const int32_t *shift;
  int32_t output_offset, act_min, act_max;
} tinyc_requant_t;

TINYC_INLINE int8_t tinyc_requant_ch(const tinyc_requant_t *r, int32_t acc, int32_t c) {
  return tinyc_requant_s8(acc + (r->bias != 0 ? r->bias[c] : 0), r->mult[c], r->shift[c], r->output_offset,
                          r->act_min, r->act_max);
}

/* The fast requantization of the kernels that accumulate twice the sum (weights and bias doubled
 * at compile time, and negated for a negative multiplier): per channel the constants q (>= 0),
 * rnd = 2^(e-1) + zp * 2^e and e from tinyc/quant.py fast_requant, which proves for the layer that
 *   u = rnd + floor((acc2 * q + 2^31) / 2^32)     SMMLAR: the doubling high multiply, rounded
 *   y = (u + (acc2 < 0 ? -1 : 0)) >> e           rounding divide by 2^e (halves away from 0)
 * is TFLM's MultiplyByQuantizedMultiplier(acc, q, -e) + zp; acc2 = 2 * acc, the bias included. */
TINYC_INLINE int32_t tinyc_rq(int32_t acc2, int32_t q, int32_t rnd, int32_t e) {
#if TINYC_DSP
  int32_t u;
  __asm__("smmlar %0, %1, %2, %3" : "=r"(u) : "r"(acc2), "r"(q), "r"(rnd));
#else
  const int32_t u = rnd + (int32_t)(((int64_t)acc2 * q + ((int64_t)1 << 31)) >> 32);
#endif
  return (u + (acc2 >> 31)) >> e; /* acc2 >> 31: -1 below zero (arithmetic shift) */
}

/* The clamp to [lo, hi] after tinyc_rq; full: lo = -128 and hi = 127 (a constant where inlined),
 * one SSAT on cores with the DSP extension. */
TINYC_INLINE int8_t tinyc_rq_clamp(int32_t v, const int full, int32_t lo, int32_t hi) {
#if TINYC_DSP
  if (full) {
    return (int8_t)__ssat(v, 8);
  }
#else
  (void)full;
#endif
  return (int8_t)tinyc_clamp_i32(v, lo, hi);
}

#endif /* TINYC_QUANT_H */
