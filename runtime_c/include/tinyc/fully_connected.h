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

/* bias may be NULL */
void tinyc_fully_connected_s8(const tinyc_fully_connected_params_t *p, const int8_t *input,
                              const int8_t *weights, const int32_t *bias, int8_t *output);
void tinyc_fully_connected_s8_pc(const tinyc_fully_connected_pc_params_t *p, const int8_t *input,
                                 const int8_t *weights, const int32_t *bias, int8_t *output);

#endif /* TINYC_FULLY_CONNECTED_H */
