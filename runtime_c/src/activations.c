/* tinyc: element-wise int8 activation kernels; see tinyc/activations.h. */
#include "tinyc/activations.h"

#include "tinyc/activations_math.h"
#include "tinyc/quant.h"

void tinyc_relu_s8(const tinyc_relu_params_t *p, const int8_t *input, int8_t *output) {
  int32_t i;
  for (i = 0; i < p->size; ++i) {
    const int32_t v = p->output_zero_point +
                      tinyc_mul_by_qm((int32_t)input[i] - p->input_zero_point, p->output_multiplier, (int)p->output_shift);
    output[i] = (int8_t)tinyc_clamp_i32(v, p->act_min, p->act_max);
  }
}

void tinyc_relu6_s8(const tinyc_relu6_params_t *p, const int8_t *input, int8_t *output) {
  int32_t i;
  for (i = 0; i < p->size; ++i) {
    const int32_t v = input[i];
    /* TFLM's order of tests: upper first */
    output[i] = (int8_t)(v > p->upper ? p->upper : (v < p->lower ? p->lower : v));
  }
}

void tinyc_leaky_relu_s8(const tinyc_leaky_relu_params_t *p, const int8_t *input, int8_t *output) {
  int32_t i;
  for (i = 0; i < p->size; ++i) {
    const int32_t x = (int32_t)input[i] - p->input_zero_point;
    int32_t v = p->output_zero_point;
    if (x >= 0) {
      v += tinyc_mul_by_qm(x, p->output_multiplier_identity, (int)p->output_shift_identity);
    } else {
      const int32_t scaled = tinyc_mul_by_qm(x, p->output_multiplier_alpha, (int)p->output_shift_alpha);
      v += p->alpha_negative ? -scaled : scaled;
    }
    output[i] = (int8_t)tinyc_clamp_i32(v, INT8_MIN, INT8_MAX);
  }
}

enum { kSigmoidInputIntegerBits = 4 };

void tinyc_logistic_s8(const tinyc_sigmoid_params_t *p, const int8_t *input, int8_t *output) {
  int32_t i;
  for (i = 0; i < p->size; ++i) {
    const int32_t x = (int32_t)input[i] - p->input_zero_point;
    if (x <= -p->input_range_radius) {
      output[i] = INT8_MIN;
    } else if (x >= p->input_range_radius) {
      output[i] = INT8_MAX;
    } else {
      const int32_t x_q4 = tinyc_mul_by_qm(x, p->input_multiplier, (int)p->input_left_shift);
      const int32_t y_q0 = tinyc_fp_logistic(x_q4, kSigmoidInputIntegerBits);
      /* Q0.31 -> 1/256 steps, output zero point -128 */
      const int32_t y = tinyc_rounding_div_pot(y_q0, 23) - 128;
      output[i] = (int8_t)tinyc_clamp_i32(y, INT8_MIN, INT8_MAX);
    }
  }
}

void tinyc_tanh_s8(const tinyc_sigmoid_params_t *p, const int8_t *input, int8_t *output) {
  int32_t i;
  for (i = 0; i < p->size; ++i) {
    const int32_t x = (int32_t)input[i] - p->input_zero_point;
    if (x <= -p->input_range_radius) {
      output[i] = INT8_MIN;
    } else if (x >= p->input_range_radius) {
      output[i] = INT8_MAX;
    } else {
      const int32_t x_q4 = tinyc_mul_by_qm(x, p->input_multiplier, (int)p->input_left_shift);
      const int32_t y_q0 = tinyc_fp_tanh(x_q4, kSigmoidInputIntegerBits);
      /* Q0.31 -> 1/128 steps, output zero point 0 */
      const int32_t y = tinyc_rounding_div_pot(y_q0, 24);
      output[i] = (int8_t)tinyc_clamp_i32(y, INT8_MIN, INT8_MAX);
    }
  }
}

/* gemmlowp's int16 SaturatingRoundingDoublingHighMul */
static int16_t sat_rdhm16(int16_t a, int16_t b) {
  int32_t ab;
  if (a == b && a == INT16_MIN) {
    return INT16_MAX;
  }
  ab = (int32_t)a * (int32_t)b;
  return (int16_t)((ab + (ab >= 0 ? (1 << 14) : (1 - (1 << 14)))) / (1 << 15));
}

/* TFLM's SaturatingDoublingHighMul: as above but truncating toward zero */
static int16_t sat_dhm16(int16_t a, int16_t b) {
  if (a == b && a == INT16_MIN) {
    return INT16_MAX;
  }
  return (int16_t)(((int32_t)a * (int32_t)b) / (1 << 15));
}

/* gemmlowp's RoundingDivideByPOT on int16, including its mask truncated to 16 bits (exponents of
 * 16 or more then give 1 for x >= 0 and -1 for x < 0, as TFLM does). */
static int16_t rounding_div_pot16(int16_t x, int exponent) {
  const int16_t mask = (int16_t)((1ll << exponent) - 1);
  const int16_t remainder = (int16_t)(x & mask);
  const int16_t threshold = (int16_t)((mask >> 1) + (x < 0 ? 1 : 0));
  return (int16_t)((x >> exponent) + (remainder > threshold ? 1 : 0));
}

static int16_t sat_shl16(int16_t x, int amount) {
  const int64_t v = (int64_t)x * ((int64_t)1 << amount);
  return (int16_t)(v > INT16_MAX ? INT16_MAX : (v < INT16_MIN ? INT16_MIN : v));
}

void tinyc_hard_swish_s8(const tinyc_hard_swish_params_t *p, const int8_t *input, int8_t *output) {
  const int reluish_exponent = (int)p->reluish_multiplier_exponent;
  int32_t i;
  for (i = 0; i < p->size; ++i) {
    const int16_t x = (int16_t)((int32_t)input[i] - p->input_zero_point);
    /* x * 2^7: the input on a 128x finer scale, still within int16 */
    const int16_t x_hires = (int16_t)(x * (1 << 7));
    const int16_t x_preshift_out = sat_rdhm16(x_hires, p->output_multiplier_fixedpoint_int16);
    /* rescale x so that 3.0 maps to 32768 (saturating): the "relu-ish" factor in [-1, 1] */
    int16_t reluish = x_hires;
    int16_t preshift_out;
    int32_t y;
    if (reluish_exponent > 0) {
      reluish = sat_shl16(reluish, reluish_exponent - 1);
    }
    reluish = sat_rdhm16(reluish, p->reluish_multiplier_fixedpoint_int16);
    if (reluish_exponent > 0) {
      reluish = sat_shl16(reluish, 1);
    }
    if (reluish_exponent < 0) {
      reluish = rounding_div_pot16(reluish, -reluish_exponent);
    }
    /* [-1, 1] -> [0, 1] */
    reluish = (int16_t)(((int32_t)reluish + (1 << 15)) >> 1);
    preshift_out = sat_dhm16(reluish, x_preshift_out);
    /* TFLM adds the zero point in int16 */
    y = (int16_t)(rounding_div_pot16(preshift_out, -(int)p->output_multiplier_exponent) + p->output_zero_point);
    output[i] = (int8_t)tinyc_clamp_i32(y, INT8_MIN, INT8_MAX);
  }
}
