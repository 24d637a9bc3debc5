/* tinyc: int8 AVERAGE_POOL_2D and MAX_POOL_2D, NHWC.
 * Bit-exact with TFLM's reference_integer_ops::AveragePool / MaxPool: the window is clipped to
 * the image (padded taps are skipped, not counted), the average rounds half away from zero as
 * (sum +- count/2) / count with C's truncating division, and the result is clamped to the
 * fused activation's range. TFLM requires input and output to share scale and zero point, so
 * there is no requantization. Padding and the activation bounds are computed by the compiler
 * (tinyc/ops/pooling.py). */
#ifndef TINYC_POOLING_H
#define TINYC_POOLING_H

#include <stdint.h>

typedef struct {
  int32_t batches;
  int32_t in_h;
  int32_t in_w;
  int32_t depth;
  int32_t out_h;
  int32_t out_w;
  int32_t filter_h;
  int32_t filter_w;
  int32_t stride_h;
  int32_t stride_w;
  int32_t pad_h; /* top padding (TFLM padding_values.height) */
  int32_t pad_w; /* left padding */
  int32_t act_min;
  int32_t act_max;
} tinyc_pool_params_t;

void tinyc_avgpool_s8(const tinyc_pool_params_t *p, const int8_t *in, int8_t *out);
void tinyc_maxpool_s8(const tinyc_pool_params_t *p, const int8_t *in, int8_t *out);

#endif /* TINYC_POOLING_H */
