/* tinyc: int8 DEPTHWISE_CONV_2D, bit-exact with TFLM's
 * reference_integer_ops::DepthwiseConvPerChannel, for any depth multiplier.
 *
 * Layouts: input NHWC, filter 1HWC with C = out_c = in_c * depth_multiplier (output channel
 * ic * depth_multiplier + m reads input channel ic), bias int32[out_c] or NULL, output NHWC.
 * Padding, per-channel multipliers and the activation clamp come from the compiler
 * (tinyc/ops/depthwise_conv.py). Taps outside the input are skipped (= input zero point). */
#ifndef TINYC_DEPTHWISE_CONV_H
#define TINYC_DEPTHWISE_CONV_H

#include <stdint.h>

typedef struct {
  int32_t batches;
  int32_t in_h, in_w, in_c;
  int32_t out_h, out_w, out_c;
  int32_t filter_h, filter_w;
  int32_t depth_multiplier;
  int32_t stride_h, stride_w;
  int32_t dilation_h, dilation_w;
  int32_t pad_top, pad_left; /* leading padding; trailing padding is implied by the sizes */
  int32_t input_offset;      /* -input zero point */
  int32_t output_offset;     /* output zero point */
  int32_t act_min, act_max;  /* fused activation clamp, in the output's int8 domain */
  const int32_t *out_mult;   /* [out_c] Q0.31 multipliers */
  const int32_t *out_shift;  /* [out_c] shifts, positive = left */
  /* [out_c] bias + input_offset * (sum of all the channel's taps), for windows wholly inside the
   * input (depth multiplier 1); NULL when the compiler could not fold it into int32 */
  const int32_t *folded_bias;
} tinyc_depthwise_conv2d_params_t;

void tinyc_depthwise_conv2d_s8(const tinyc_depthwise_conv2d_params_t *p, const int8_t *input,
                               const int8_t *filter, const int32_t *bias, int8_t *output);

/* The same result, computed channel by channel for depth multiplier 1 (in_c == out_c): temp holds
 * batches * in_h * in_w bytes (one input channel of every image). output may start exactly where
 * input starts (the two then share bytes: in place); otherwise they must not overlap. */
void tinyc_depthwise_conv2d_s8_channels(const tinyc_depthwise_conv2d_params_t *p, const int8_t *input,
                                        const int8_t *filter, const int32_t *bias, int8_t *output,
                                        void *temp);

#endif /* TINYC_DEPTHWISE_CONV_H */
