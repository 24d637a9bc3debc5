/* tinyc: element-wise int8 activations, bit-exact with TFLM's reference kernels.
 *
 *   RELU        requantize to the output scale, then clamp at the output zero point
 *               (TFLM ReluQuantized)
 *   RELU6       clamp to [zero, six] in the INPUT's quantization, no requantization: TFLM's
 *               Relu6Quantized ignores the output tensor's scale and zero point
 *   LEAKY_RELU  two requantizations, identity for x >= 0 and alpha for x < 0 (TFLM QuantizeLeakyRelu)
 *   LOGISTIC    input rescaled to Q4.27, gemmlowp fixed-point logistic, output scale 1/256 zp -128
 *   TANH        input rescaled to Q4.27, gemmlowp fixed-point tanh, output scale 1/128 zp 0
 *   HARD_SWISH  TFLM's 16-bit fixed-point reference (reference_ops::HardSwish<int8_t>)
 * Every constant is computed by the compiler (TFLM's Prepare). */
#ifndef TINYC_ACTIVATIONS_H
#define TINYC_ACTIVATIONS_H

#include <stdint.h>

typedef struct {
  int32_t size;
  int32_t input_zero_point;
  int32_t output_zero_point;
  int32_t output_multiplier; /* input_scale / output_scale */
  int32_t output_shift;      /* > 0: left */
  int32_t act_min;
  int32_t act_max;
} tinyc_relu_params_t;

typedef struct {
  int32_t size;
  int32_t lower; /* input zero point */
  int32_t upper; /* 6.0 in the input's quantization */
} tinyc_relu6_params_t;

typedef struct {
  int32_t size;
  int32_t input_zero_point;
  int32_t output_zero_point;
  int32_t output_multiplier_identity; /* input_scale / output_scale */
  int32_t output_shift_identity;
  int32_t output_multiplier_alpha; /* |input_scale * alpha / output_scale| */
  int32_t output_shift_alpha;
  int32_t alpha_negative; /* 1: negate the alpha branch */
} tinyc_leaky_relu_params_t;

/* LOGISTIC and TANH */
typedef struct {
  int32_t size;
  int32_t input_zero_point;
  int32_t input_range_radius; /* |x - zp| at or beyond this saturates */
  int32_t input_multiplier;   /* input_scale * 2^27 as (Q0.31, left shift) */
  int32_t input_left_shift;
} tinyc_sigmoid_params_t;

typedef struct {
  int32_t size;
  int32_t input_zero_point;
  int32_t output_zero_point;
  int16_t output_multiplier_fixedpoint_int16;
  int16_t reluish_multiplier_fixedpoint_int16;
  int32_t output_multiplier_exponent; /* <= 0 */
  int32_t reluish_multiplier_exponent;
} tinyc_hard_swish_params_t;

void tinyc_relu_s8(const tinyc_relu_params_t *p, const int8_t *input, int8_t *output);
void tinyc_relu6_s8(const tinyc_relu6_params_t *p, const int8_t *input, int8_t *output);
void tinyc_leaky_relu_s8(const tinyc_leaky_relu_params_t *p, const int8_t *input, int8_t *output);
void tinyc_logistic_s8(const tinyc_sigmoid_params_t *p, const int8_t *input, int8_t *output);
void tinyc_tanh_s8(const tinyc_sigmoid_params_t *p, const int8_t *input, int8_t *output);
void tinyc_hard_swish_s8(const tinyc_hard_swish_params_t *p, const int8_t *input, int8_t *output);

#endif /* TINYC_ACTIVATIONS_H */
