/* tinyc: QUANTIZE / DEQUANTIZE (see tinyc/quantize.h). */
#include "tinyc/quantize.h"

#include "tinyc/quant.h"

/* Any |x / scale| beyond this saturates every 8-bit output anyway (|zero_point| <= 255), and
 * keeping the value this small makes the float -> int32 conversion below well defined. */
#define TINYC_QUANTIZE_LIMIT 65536.0f

/* std::round(float) (TFLM's TfLiteRound on a float): round half away from zero, without libm.
 * v - (float)t is exact: t = trunc(v) and v are within a factor of two of each other
 * (Sterbenz), or t == 0. */
static int32_t round_half_away_f32(float v) {
  const int32_t t = (int32_t)v;
  const float frac = v - (float)t;
  if (frac >= 0.5f) {
    return t + 1;
  }
  if (frac <= -0.5f) {
    return t - 1;
  }
  return t;
}

/* TFLM AffineQuantize: static_cast<int32_t>(TfLiteRound(val / static_cast<float>(scale))) + zp,
 * the division in float32 (not a multiplication by a precomputed reciprocal, which would round
 * differently). NaN maps to the lowest value, as TFLM's conversion does on the host; values
 * beyond the limit saturate (TFLM's own conversion is undefined there). */
static int32_t quantize_one(const tinyc_quantize_params_t *p, float x) {
  float v = x / p->scale;
  if (!(v >= -TINYC_QUANTIZE_LIMIT)) {
    v = -TINYC_QUANTIZE_LIMIT;
  }
  if (v > TINYC_QUANTIZE_LIMIT) {
    v = TINYC_QUANTIZE_LIMIT;
  }
  return round_half_away_f32(v) + p->zero_point;
}

void tinyc_quantize_f32_s8(const tinyc_quantize_params_t *p, const float *in, int8_t *out) {
  int32_t i;
  for (i = 0; i < p->size; ++i) {
    out[i] = (int8_t)tinyc_clamp_i32(quantize_one(p, in[i]), -128, 127);
  }
}

void tinyc_quantize_f32_u8(const tinyc_quantize_params_t *p, const float *in, uint8_t *out) {
  int32_t i;
  for (i = 0; i < p->size; ++i) {
    out[i] = (uint8_t)tinyc_clamp_i32(quantize_one(p, in[i]), 0, 255);
  }
}

/* TFLM Requantize. Its XOR-0x80 fast path (same scale, zero points 128 apart) gives the same
 * bytes as this general path, whose multiplier is then exactly 1 (2^30, shift 1). */
static int32_t requantize_one(const tinyc_requantize_params_t *p, int32_t q) {
  return tinyc_mul_by_qm(q + p->input_offset, p->multiplier, (int)p->shift) + p->output_offset;
}

void tinyc_requantize_s8_s8(const tinyc_requantize_params_t *p, const int8_t *in, int8_t *out) {
  int32_t i;
  for (i = 0; i < p->size; ++i) {
    out[i] = (int8_t)tinyc_clamp_i32(requantize_one(p, in[i]), -128, 127);
  }
}

void tinyc_requantize_s8_u8(const tinyc_requantize_params_t *p, const int8_t *in, uint8_t *out) {
  int32_t i;
  for (i = 0; i < p->size; ++i) {
    out[i] = (uint8_t)tinyc_clamp_i32(requantize_one(p, in[i]), 0, 255);
  }
}

void tinyc_requantize_u8_s8(const tinyc_requantize_params_t *p, const uint8_t *in, int8_t *out) {
  int32_t i;
  for (i = 0; i < p->size; ++i) {
    out[i] = (int8_t)tinyc_clamp_i32(requantize_one(p, in[i]), -128, 127);
  }
}

/* TFLM Dequantize computes static_cast<float>(double(scale) * (q - zp)). The exact product of a
 * float32 (24-bit significand) and an integer of at most 9 bits fits a double, so that is one
 * rounding of the exact product to float -- which is what a float32 multiply does. Same bytes,
 * no double arithmetic on a single-precision FPU. */
void tinyc_dequantize_s8_f32(const tinyc_dequantize_params_t *p, const int8_t *in, float *out) {
  int32_t i;
  for (i = 0; i < p->size; ++i) {
    out[i] = p->scale * (float)((int32_t)in[i] - p->zero_point);
  }
}

void tinyc_dequantize_u8_f32(const tinyc_dequantize_params_t *p, const uint8_t *in, float *out) {
  int32_t i;
  for (i = 0; i < p->size; ++i) {
    out[i] = p->scale * (float)((int32_t)in[i] - p->zero_point);
  }
}
