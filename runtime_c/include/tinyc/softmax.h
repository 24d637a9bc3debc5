/* tinyc: SOFTMAX over the last dimension, int8 input, int8 or int16 output.
 *
 * Bit-exact with TFLM's reference (reference_ops::Softmax<int8_t, OutputT>): the input difference
 * to the row maximum is scaled by beta * input_scale into Q5.26 (input_multiplier,
 * input_left_shift), exponentiated with gemmlowp's fixed-point exp, summed in Q12.19 and divided
 * by the sum with gemmlowp's Newton-Raphson reciprocal. Differences below diff_min contribute
 * nothing. All three constants come from the compiler (TFLM's PreprocessSoftmaxScaling and
 * CalculateInputRadius at Prepare). Output: scale 1/256, zero point -128 (int8) or scale 1/65536,
 * zero point -32768 (int16). */
#ifndef TINYC_SOFTMAX_H
#define TINYC_SOFTMAX_H

#include <stdint.h>

typedef struct {
  int32_t outer_size;       /* rows: product of all but the last dimension */
  int32_t depth;            /* last dimension */
  int32_t input_multiplier; /* Q0.31, beta * input_scale * 2^26 with input_left_shift */
  int32_t input_left_shift; /* >= 0 */
  int32_t diff_min;         /* <= 0: smaller differences give exp() == 0 */
} tinyc_softmax_params_t;

void tinyc_softmax_s8(const tinyc_softmax_params_t *p, const int8_t *input, int8_t *output);
void tinyc_softmax_s8_s16(const tinyc_softmax_params_t *p, const int8_t *input, int16_t *output);

#endif /* TINYC_SOFTMAX_H */
