/* tinyc: gemmlowp's fixed-point transcendental functions (exp, logistic, tanh, 1/(1+x)), as used
 * by TFLM's int8 SOFTMAX, LOGISTIC and TANH reference kernels, bit for bit.
 *
 * gemmlowp's FixedPoint<int32_t, N> is a raw int32 with N integer bits (Q N.(31-N)); here the raw
 * value is a plain int32_t and each function says which format it takes and returns. Products of
 * fixed-point values are tinyc_sat_rdhm (their integer bits add up); all rounding comes from
 * tinyc/quant.h. The additions below cannot overflow for the inputs these kernels feed in (the
 * same ranges gemmlowp relies on), so they are plain int32 additions, as in gemmlowp. */
#ifndef TINYC_ACTIVATIONS_MATH_H
#define TINYC_ACTIVATIONS_MATH_H

#include <stdint.h>

#include "tinyc/quant.h"

/* gemmlowp SaturatingRoundingMultiplyByPOT<exponent> for exponent > 0: a saturating left shift. */
static inline int32_t tinyc_fp_sat_shl(int32_t x, int exponent) {
  const int32_t threshold = (int32_t)((1u << (31 - exponent)) - 1u);
  if (x > threshold) {
    return INT32_MAX;
  }
  if (x < -threshold) {
    return INT32_MIN;
  }
  return (int32_t)((uint32_t)x << exponent);
}

/* gemmlowp RoundingHalfSum: (a + b) / 2 rounded half away from zero. */
static inline int32_t tinyc_fp_rounding_half_sum(int32_t a, int32_t b) {
  const int64_t sum = (int64_t)a + (int64_t)b;
  const int64_t sign = sum >= 0 ? 1 : -1;
  return (int32_t)((sum + sign) / 2);
}

/* exp(a) for a in [-1/4, 0): Q0.31 in, Q0.31 out. Taylor expansion around -1/8. */
static inline int32_t tinyc_fp_exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a) {
  const int32_t constant_term = 1895147668;     /* exp(-1/8) in Q0.31 */
  const int32_t constant_1_over_3 = 715827883;  /* 1/3 in Q0.31 */
  const int32_t x = a + (1 << 28);              /* x = a + 1/8 */
  const int32_t x2 = tinyc_sat_rdhm(x, x);
  const int32_t x3 = tinyc_sat_rdhm(x2, x);
  const int32_t x4 = tinyc_sat_rdhm(x2, x2);
  const int32_t x4_over_4 = tinyc_rounding_div_pot(x4, 2);
  const int32_t x4_over_24_plus_x3_over_6_plus_x2_over_2 =
      tinyc_rounding_div_pot(tinyc_sat_rdhm(x4_over_4 + x3, constant_1_over_3) + x2, 1);
  return constant_term + tinyc_sat_rdhm(constant_term, x + x4_over_24_plus_x3_over_6_plus_x2_over_2);
}

/* One step of gemmlowp's exp barrel shifter: multiply by exp(-2^exponent) when that bit of the
 * remainder is set. */
static inline int32_t tinyc_fp_exp_barrel_step(int32_t result, int32_t remainder, int integer_bits, int exponent,
                                               int32_t multiplier) {
  if (integer_bits > exponent) {
    const int shift = 31 - integer_bits + exponent;
    if ((remainder & ((int32_t)1 << shift)) != 0) {
      return tinyc_sat_rdhm(result, multiplier);
    }
  }
  return result;
}

/* exp(a) for a <= 0; a in Q(integer_bits).(31 - integer_bits), result Q0.31 (gemmlowp
 * exp_on_negative_values). integer_bits is 4 or 5 in TFLM's kernels. */
static inline int32_t tinyc_fp_exp_on_negative_values(int32_t a, int integer_bits) {
  const int fractional_bits = 31 - integer_bits;
  const int32_t one_quarter = (int32_t)1 << (fractional_bits - 2);
  const int32_t mask = one_quarter - 1;
  const int32_t a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter;
  int32_t result = tinyc_fp_exp_on_interval_between_negative_one_quarter_and_0_excl(
      tinyc_fp_sat_shl(a_mod_quarter_minus_one_quarter, integer_bits));
  const int32_t remainder = a_mod_quarter_minus_one_quarter - a;
  result = tinyc_fp_exp_barrel_step(result, remainder, integer_bits, -2, 1672461947);
  result = tinyc_fp_exp_barrel_step(result, remainder, integer_bits, -1, 1302514674);
  result = tinyc_fp_exp_barrel_step(result, remainder, integer_bits, 0, 790015084);
  result = tinyc_fp_exp_barrel_step(result, remainder, integer_bits, 1, 290630308);
  result = tinyc_fp_exp_barrel_step(result, remainder, integer_bits, 2, 39332535);
  result = tinyc_fp_exp_barrel_step(result, remainder, integer_bits, 3, 720401);
  result = tinyc_fp_exp_barrel_step(result, remainder, integer_bits, 4, 242);
  if (integer_bits > 5) {
    /* below -32 exp() is zero in Q0.31 */
    const int32_t clamp = -((int32_t)1 << (36 - integer_bits));
    if (a < clamp) {
      result = 0;
    }
  }
  if (a == 0) {
    result = INT32_MAX; /* exactly one */
  }
  return result;
}

/* Newton-Raphson iterations of gemmlowp's division: returns ~1/half_denominator in Q2.29, with
 * half_denominator in Q0.31 (in [1/2, 1)). */
static inline int32_t tinyc_fp_newton_reciprocal_q2(int32_t half_denominator) {
  const int32_t constant_48_over_17 = 1515870810;     /* Q2.29 */
  const int32_t constant_neg_32_over_17 = -1010580540; /* Q2.29 */
  const int32_t one_q2 = (int32_t)1 << 29;
  int32_t x = constant_48_over_17 + tinyc_sat_rdhm(half_denominator, constant_neg_32_over_17);
  int i;
  for (i = 0; i < 3; ++i) {
    const int32_t half_denominator_times_x = tinyc_sat_rdhm(half_denominator, x);
    const int32_t one_minus_half_denominator_times_x = one_q2 - half_denominator_times_x;
    /* Q2 * Q2 = Q4, rescaled to Q2 */
    x = x + tinyc_fp_sat_shl(tinyc_sat_rdhm(x, one_minus_half_denominator_times_x), 2);
  }
  return x;
}

/* 1 / (1 + a) for a in [0, 1): Q0.31 in and out (gemmlowp one_over_one_plus_x_for_x_in_0_1). */
static inline int32_t tinyc_fp_one_over_one_plus_x_for_x_in_0_1(int32_t a) {
  const int32_t half_denominator = tinyc_fp_rounding_half_sum(a, INT32_MAX);
  const int32_t x = tinyc_fp_newton_reciprocal_q2(half_denominator);
  /* x/2 is exactly x read as Q1.30; rescale Q1 -> Q0 */
  return tinyc_fp_sat_shl(x, 1);
}

/* (1 - a) / (1 + a) for a in [0, 1): Q0.31 in and out. */
static inline int32_t tinyc_fp_one_minus_x_over_one_plus_x_for_x_in_0_1(int32_t a) {
  const int32_t half_denominator = tinyc_fp_rounding_half_sum(a, INT32_MAX);
  const int32_t x = tinyc_fp_newton_reciprocal_q2(half_denominator);
  return tinyc_fp_sat_shl(x - ((int32_t)1 << 29), 2);
}

/* logistic(a) = 1 / (1 + exp(-a)); a in Q(integer_bits), result Q0.31. */
static inline int32_t tinyc_fp_logistic(int32_t a, int integer_bits) {
  int32_t positive;
  if (a == 0) {
    return (int32_t)1 << 30; /* one half */
  }
  positive = tinyc_fp_one_over_one_plus_x_for_x_in_0_1(tinyc_fp_exp_on_negative_values(a > 0 ? -a : a, integer_bits));
  return a > 0 ? positive : INT32_MAX - positive;
}

/* tanh(a); a in Q(integer_bits), result Q0.31. exp(2n) is exp of the same raw value read with one
 * more integer bit. */
static inline int32_t tinyc_fp_tanh(int32_t a, int integer_bits) {
  int32_t t;
  if (a == 0) {
    return 0;
  }
  t = tinyc_fp_one_minus_x_over_one_plus_x_for_x_in_0_1(
      tinyc_fp_exp_on_negative_values(a < 0 ? a : -a, integer_bits + 1));
  return a < 0 ? -t : t;
}

/* TFLite's GetReciprocal: 1/x for x in Q(x_integer_digits) > 0, returned in Q0.31 together with
 * the number of bits x has above one. */
static inline int32_t tinyc_fp_get_reciprocal(int32_t x, int x_integer_digits, int *num_bits_over_unit) {
  int headroom_plus_one = 0;
  uint32_t ux = (uint32_t)x;
  int32_t shifted_sum_minus_one;
  while (headroom_plus_one < 32 && (ux & 0x80000000u) == 0u) {
    ux <<= 1;
    ++headroom_plus_one;
  }
  *num_bits_over_unit = x_integer_digits - headroom_plus_one;
  shifted_sum_minus_one = (int32_t)(ux - 0x80000000u);
  return tinyc_fp_one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
}

#endif /* TINYC_ACTIVATIONS_MATH_H */
