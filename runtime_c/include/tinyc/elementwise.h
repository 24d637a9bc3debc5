/* tinyc: int8 element-wise ADD, SUB and MUL, bit-exact with TFLM's reference kernels
 * (tensorflow/lite/micro/kernels/add.cc, sub.cc, mul.cc and reference/integer_ops/add.h, mul.h).
 *
 * Every constant (offsets, multipliers, shifts, activation bounds, broadcast strides) is
 * computed by the compiler (tinyc/ops/elementwise.py); the kernels only move data.
 *
 * Two variants per op, chosen by the compiler:
 *   tinyc_<op>_s8           both inputs and the output have the same shape: `size` elements.
 *   tinyc_<op>_broadcast_s8 numpy-style broadcasting. The output is walked as a row-major
 *                           6-D box `dims`; `in1_strides`/`in2_strides` give each input's step per
 *                           output dimension in elements (0 along a broadcast dimension). The
 *                           compiler merges contiguous dimensions, so [1,H,W,C] x [1,1,1,C] (the
 *                           squeeze-excite scale) is a 2-D box {H*W, C} with in2 strides {0, 1}.
 */
#ifndef TINYC_ELEMENTWISE_H
#define TINYC_ELEMENTWISE_H

#include <stdint.h>

#define TINYC_ELEMENTWISE_MAX_DIMS 6

/* ADD and SUB (TFLM's 8-bit general path): both inputs are brought to a common scale
 * 2*max(s1, s2) with `left_shift` = 20 bits of headroom, added (subtracted), then rescaled to the
 * output. Multipliers are Q0.31 with shifts <= 0 (QuantizeMultiplierSmallerThanOneExp). */
typedef struct {
  int32_t size;                /* output elements (flat variant) */
  int32_t input1_offset;       /* -zero_point of input 1 */
  int32_t input2_offset;       /* -zero_point of input 2 */
  int32_t output_offset;       /* zero_point of the output */
  int32_t left_shift;          /* 20 for int8 */
  int32_t input1_multiplier;
  int32_t input1_shift;        /* <= 0 */
  int32_t input2_multiplier;
  int32_t input2_shift;        /* <= 0 */
  int32_t output_multiplier;
  int32_t output_shift;        /* <= 0 */
  int32_t act_min;             /* fused activation clamp, in output quantized units */
  int32_t act_max;
  int32_t dims[TINYC_ELEMENTWISE_MAX_DIMS];        /* broadcast variant: output box */
  int32_t in1_strides[TINYC_ELEMENTWISE_MAX_DIMS];
  int32_t in2_strides[TINYC_ELEMENTWISE_MAX_DIMS];
} tinyc_add_params_t;

/* MUL: (q1 - z1) * (q2 - z2) requantized by s1*s2/so (MultiplyByQuantizedMultiplier). */
typedef struct {
  int32_t size;
  int32_t input1_offset;
  int32_t input2_offset;
  int32_t output_offset;
  int32_t output_multiplier;
  int32_t output_shift;        /* positive = left */
  int32_t act_min;
  int32_t act_max;
  int32_t dims[TINYC_ELEMENTWISE_MAX_DIMS];
  int32_t in1_strides[TINYC_ELEMENTWISE_MAX_DIMS];
  int32_t in2_strides[TINYC_ELEMENTWISE_MAX_DIMS];
} tinyc_mul_params_t;

void tinyc_add_s8(const tinyc_add_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out);
void tinyc_add_broadcast_s8(const tinyc_add_params_t *p, const int8_t *in1, const int8_t *in2,
                            int8_t *out);
/* SUB shares ADD's parameters: out = in1 - in2. */
void tinyc_sub_s8(const tinyc_add_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out);
void tinyc_sub_broadcast_s8(const tinyc_add_params_t *p, const int8_t *in1, const int8_t *in2,
                            int8_t *out);
void tinyc_mul_s8(const tinyc_mul_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out);
void tinyc_mul_broadcast_s8(const tinyc_mul_params_t *p, const int8_t *in1, const int8_t *in2,
                            int8_t *out);

#endif /* TINYC_ELEMENTWISE_H */
