/* tinyc: FULLY_CONNECTED kernels; see tinyc/fully_connected.h. */
#include "tinyc/fully_connected.h"

#include <stddef.h>

#include "tinyc/quant.h"

void tinyc_fully_connected_s8(const tinyc_fully_connected_params_t *p, const int8_t *input,
                              const int8_t *weights, const int32_t *bias, int8_t *output) {
  const int32_t depth = p->accum_depth;
  int32_t b;
  for (b = 0; b < p->batches; ++b) {
    const int8_t *x = input + b * depth;
    int32_t o;
    for (o = 0; o < p->output_depth; ++o) {
      const int8_t *w = weights + o * depth;
      int32_t acc = 0;
      int32_t d;
      for (d = 0; d < depth; ++d) {
        acc += ((int32_t)w[d] + p->filter_offset) * ((int32_t)x[d] + p->input_offset);
      }
      if (bias != NULL) {
        acc += bias[o];
      }
      acc = tinyc_mul_by_qm(acc, p->output_multiplier, (int)p->output_shift) + p->output_offset;
      output[b * p->output_depth + o] = (int8_t)tinyc_clamp_i32(acc, p->act_min, p->act_max);
    }
  }
}

void tinyc_fully_connected_s8_pc(const tinyc_fully_connected_pc_params_t *p, const int8_t *input,
                                 const int8_t *weights, const int32_t *bias, int8_t *output) {
  const int32_t depth = p->accum_depth;
  int32_t b;
  for (b = 0; b < p->batches; ++b) {
    const int8_t *x = input + b * depth;
    int32_t o;
    for (o = 0; o < p->output_depth; ++o) {
      const int8_t *w = weights + o * depth;
      int32_t acc = 0;
      int32_t d;
      for (d = 0; d < depth; ++d) {
        acc += (int32_t)w[d] * ((int32_t)x[d] + p->input_offset);
      }
      if (bias != NULL) {
        acc += bias[o];
      }
      acc = tinyc_mul_by_qm(acc, p->output_multiplier[o], (int)p->output_shift[o]) + p->output_offset;
      output[b * p->output_depth + o] = (int8_t)tinyc_clamp_i32(acc, p->act_min, p->act_max);
    }
  }
}
