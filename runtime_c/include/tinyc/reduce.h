/* tinyc: int8 MEAN and SUM over any set of axes, bit-exact with TFLM's reference
 * (tensorflow/lite/micro/kernels/reduce_common.cc, reference/reduce.h).
 *
 * The compiler describes the reduction as two boxes of at most three dimensions each, with
 * strides in input elements: `outer` walks the kept dimensions (row-major, which is the output's
 * layout) and `inner` the reduced ones. Neighbouring dimensions of the same kind are merged, so a
 * global average pool [1,H,W,C] -> [1,1,1,C] is outer {C} stride {1}, inner {H*W} stride {C}.
 *
 * tinyc_reduce_requant_s8: per output, the int32 sum of the raw inputs minus `sum_offset`
 * (input zero point * count), requantized by (multiplier, shift) -- TFLM's QuantizedMeanOrSum,
 * which current TFLM uses for every int8 MEAN and SUM. For MEAN the compiler folds 1/count into
 * the multiplier exactly as TFLM does.
 */
#ifndef TINYC_REDUCE_H
#define TINYC_REDUCE_H

#include <stdint.h>

#define TINYC_REDUCE_MAX_DIMS 3

typedef struct {
  int32_t outer[TINYC_REDUCE_MAX_DIMS];          /* kept dimensions (product = output size) */
  int32_t outer_strides[TINYC_REDUCE_MAX_DIMS];
  int32_t inner[TINYC_REDUCE_MAX_DIMS];          /* reduced dimensions (product = count) */
  int32_t inner_strides[TINYC_REDUCE_MAX_DIMS];
  int32_t count;          /* elements summed per output */
  int32_t sum_offset;     /* input zero point * count */
  int32_t multiplier;     /* Q0.31 */
  int32_t shift;          /* positive = left */
  int32_t output_offset;  /* output zero point */
} tinyc_reduce_params_t;

void tinyc_reduce_requant_s8(const tinyc_reduce_params_t *p, const int8_t *in, int8_t *out);

#endif /* TINYC_REDUCE_H */
