/* tinyc: int8 MEAN / SUM (see tinyc/reduce.h). */
#include "tinyc/reduce.h"

#include "tinyc/quant.h"

/* The int32 sum of the inner box starting at `in`. The compiler bounds count * 128 below 2^31,
 * so the sum cannot overflow. */
static int32_t inner_sum(const tinyc_reduce_params_t *p, const int8_t *in) {
  int32_t sum = 0;
  int32_t a;
  int32_t b;
  int32_t c;
  for (a = 0; a < p->inner[0]; ++a) {
    const int8_t *pa = in + a * p->inner_strides[0];
    for (b = 0; b < p->inner[1]; ++b) {
      const int8_t *pb = pa + b * p->inner_strides[1];
      for (c = 0; c < p->inner[2]; ++c) {
        sum += pb[c * p->inner_strides[2]];
      }
    }
  }
  return sum;
}

/* TFLM QuantizedMeanOrSum: remove the zero point from the sum, then requantize. */
static int8_t finish_requant(const tinyc_reduce_params_t *p, int32_t sum) {
  const int32_t v =
      tinyc_mul_by_qm(sum - p->sum_offset, p->multiplier, (int)p->shift) + p->output_offset;
  return (int8_t)tinyc_clamp_i32(v, -128, 127);
}

/* Every output element, in output order. */
void tinyc_reduce_requant_s8(const tinyc_reduce_params_t *p, const int8_t *in, int8_t *out) {
  int32_t a;
  int32_t b;
  int32_t c;
  for (a = 0; a < p->outer[0]; ++a) {
    const int8_t *pa = in + a * p->outer_strides[0];
    for (b = 0; b < p->outer[1]; ++b) {
      const int8_t *pb = pa + b * p->outer_strides[1];
      for (c = 0; c < p->outer[2]; ++c) {
        *out++ = finish_requant(p, inner_sum(p, pb + c * p->outer_strides[2]));
      }
    }
  }
}

