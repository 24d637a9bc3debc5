/* tinyc: FULLY_CONNECTED, int8 input and output, int8 weights, optional int32 bias.
 *
 * Bit-exact with TFLM's reference (reference_integer_ops::FullyConnected and
 * FullyConnectedPerChannel). The input is read as [batches, accum_depth] whatever its shape (TFLM
 * flattens it the same way); weights are [>= output_depth, accum_depth] row-major; the output is
 * [batches, output_depth]. Per output value:
 *   acc = bias[o] + sum_d (w[o][d] + filter_offset) * (x[b][d] + input_offset)
 *   out = clamp(MultiplyByQuantizedMultiplier(acc, multiplier, shift) + output_offset, act_min, act_max)
 * The per-channel variant takes one (multiplier, shift) per output channel and no filter offset
 * (per-channel weights are symmetric). */
#ifndef TINYC_FULLY_CONNECTED_H
#define TINYC_FULLY_CONNECTED_H

#include <stdint.h>

typedef struct {
  int32_t batches;
  int32_t output_depth;
  int32_t accum_depth;
  int32_t input_offset;  /* -input zero point */
  int32_t filter_offset; /* -weights zero point (0 for symmetric weights) */
  int32_t output_offset; /* output zero point */
  int32_t output_multiplier;
  int32_t output_shift; /* > 0: left */
  int32_t act_min;
  int32_t act_max;
} tinyc_fully_connected_params_t;

typedef struct {
  int32_t batches;
  int32_t output_depth;
  int32_t accum_depth;
  int32_t input_offset;
  int32_t output_offset;
  const int32_t *output_multiplier; /* [output_depth] */
  const int32_t *output_shift;      /* [output_depth] */
  int32_t act_min;
  int32_t act_max;
} tinyc_fully_connected_pc_params_t;

/* Compile-time packed weights (tinyc/ops/fully_connected.py pack_weights), for layers whose
 * weights are constant: twice the weights plus the filter offset, widened to int16 and
 * interleaved for SMLAD, so that the inner loop reads two int16 pairs per row and four inputs.
 * Rows go in blocks of 4, then one of 2 and one of 1 for the remainder; within a block, per chunk
 * of four inputs x[4k..4k+3], each row r gives two words: (w[r][4k], w[r][4k+2]) and
 * (w[r][4k+1], w[r][4k+3]), low half first (the lanes SXTB16 makes of the input word). The last
 * chunk is padded with zero weights. The kernel computes acc2 = 2 * (sum_d (w[o][d] +
 * filter_offset) * x[d] + bias + input_offset * sum_d (w[o][d] + filter_offset)), twice TFLM's
 * accumulator (negated for a row with a negative multiplier: its weights and bias are), and
 * requantizes it with tinyc_rq (quant.h): requant[4 * o ..] holds the row's folded, doubled bias
 * and its multiplier, rounding constant (with the output zero point) and shift. */
typedef struct {
  int32_t batches;
  int32_t output_depth;
  int32_t accum_depth;
  int32_t act_min;
  int32_t act_max;
  const int32_t *requant; /* [output_depth][4]: tinyc/quant.py fast_requant */
  const int32_t *weights; /* packed as above */
} tinyc_fully_connected_packed_params_t;

/* bias may be NULL */
void tinyc_fully_connected_s8(const tinyc_fully_connected_params_t *p, const int8_t *input,
                              const int8_t *weights, const int32_t *bias, int8_t *output);
void tinyc_fully_connected_s8_pc(const tinyc_fully_connected_pc_params_t *p, const int8_t *input,
                                 const int8_t *weights, const int32_t *bias, int8_t *output);

void tinyc_fully_connected_s8_packed(const tinyc_fully_connected_packed_params_t *p, const int8_t *input,
                                     int8_t *output);

#endif /* TINYC_FULLY_CONNECTED_H */
