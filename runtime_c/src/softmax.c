/* tinyc: SOFTMAX kernels; see tinyc/softmax.h. */
#include "tinyc/softmax.h"

#include "tinyc/activations_math.h"
#include "tinyc/quant.h"

enum {
  kScaledDiffIntegerBits = 5,   /* exp() input is Q5.26 */
  kAccumulationIntegerBits = 12 /* sum of exps is Q12.19 */
};

/* TFLite's MultiplyByQuantizedMultiplierGreaterThanOne; |diff| * 2^shift stays below 2^31 because
 * diff >= diff_min (that is what diff_min is for). */
static int32_t scaled_diff(const tinyc_softmax_params_t *p, int32_t diff) {
  const int64_t shifted = (int64_t)diff * ((int64_t)1 << p->input_left_shift);
  return tinyc_sat_rdhm((int32_t)shifted, p->input_multiplier);
}

/* RoundingDivideByPOT for the output shift. TFLM CHECK-fails when the shift exceeds 31 (a row
 * whose exps add up to 512 or more, int8 output); there the result rounds to 0 or 1 and we give
 * that value instead of stopping. */
static int32_t output_shift(int32_t x, int exponent) {
  if (exponent <= 31) {
    return tinyc_rounding_div_pot(x, exponent);
  }
  {
    const int64_t mask = ((int64_t)1 << exponent) - 1;
    const int64_t remainder = (int64_t)x & mask;
    const int64_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (int32_t)(((int64_t)x >> exponent) + (remainder > threshold ? 1 : 0));
  }
}

/* One row; out8 or out16 is set. out_bits is the output width, out_min its smallest value. */
static void softmax_row(const tinyc_softmax_params_t *p, const int8_t *in, int8_t *out8, int16_t *out16,
                        int out_bits, int32_t out_min, int32_t out_max) {
  const int32_t depth = p->depth;
  int8_t max_in_row = INT8_MIN;
  uint32_t sum_of_exps = 0; /* Q12.19; TFLM's plain int32 sum, kept wrap-around defined */
  int num_bits_over_unit;
  int32_t shifted_scale;
  int exponent;
  int32_t c;
  for (c = 0; c < depth; ++c) {
    if (in[c] > max_in_row) {
      max_in_row = in[c];
    }
  }
  for (c = 0; c < depth; ++c) {
    const int32_t diff = (int32_t)in[c] - max_in_row;
    if (diff >= p->diff_min) {
      const int32_t e = tinyc_fp_exp_on_negative_values(scaled_diff(p, diff), kScaledDiffIntegerBits);
      sum_of_exps += (uint32_t)tinyc_rounding_div_pot(e, kAccumulationIntegerBits);
    }
  }
  shifted_scale = tinyc_fp_get_reciprocal((int32_t)sum_of_exps, kAccumulationIntegerBits, &num_bits_over_unit);
  exponent = num_bits_over_unit + 31 - out_bits;
  for (c = 0; c < depth; ++c) {
    const int32_t diff = (int32_t)in[c] - max_in_row;
    int32_t v = out_min;
    if (diff >= p->diff_min) {
      const int32_t e = tinyc_fp_exp_on_negative_values(scaled_diff(p, diff), kScaledDiffIntegerBits);
      const int32_t unsat = output_shift(tinyc_sat_rdhm(shifted_scale, e), exponent);
      v = tinyc_clamp_i32(unsat + out_min, out_min, out_max);
    }
    if (out8 != 0) {
      out8[c] = (int8_t)v;
    } else {
      out16[c] = (int16_t)v;
    }
  }
}

void tinyc_softmax_s8(const tinyc_softmax_params_t *p, const int8_t *input, int8_t *output) {
  int32_t i;
  for (i = 0; i < p->outer_size; ++i) {
    softmax_row(p, input + i * p->depth, output + i * p->depth, 0, 8, INT8_MIN, INT8_MAX);
  }
}

void tinyc_softmax_s8_s16(const tinyc_softmax_params_t *p, const int8_t *input, int16_t *output) {
  int32_t i;
  for (i = 0; i < p->outer_size; ++i) {
    softmax_row(p, input + i * p->depth, 0, output + i * p->depth, 16, INT16_MIN, INT16_MAX);
  }
}
