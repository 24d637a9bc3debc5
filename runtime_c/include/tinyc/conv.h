/* tinyc: int8 CONV_2D, bit-exact with TFLM's reference_integer_ops::ConvPerChannel.
 *
 * Layouts: input NHWC, filter OHWI (O = out_c, I = in_c / groups), bias int32[out_c] or NULL,
 * output NHWC. Everything TFLM's Prepare computes (padding, per-channel multiplier and shift,
 * activation clamp) is computed by the compiler (tinyc/ops/conv.py) and arrives in the params.
 * Taps outside the input are skipped, which equals padding with the input zero point. */
#ifndef TINYC_CONV_H
#define TINYC_CONV_H

#include <stdint.h>

typedef struct {
  int32_t batches;
  int32_t in_h, in_w, in_c;
  int32_t out_h, out_w, out_c;
  int32_t filter_h, filter_w;
  int32_t filter_in_c; /* in_c / groups; groups = in_c / filter_in_c */
  int32_t stride_h, stride_w;
  int32_t dilation_h, dilation_w;
  int32_t pad_top, pad_left; /* leading padding; trailing padding is implied by the sizes */
  int32_t input_offset;      /* -input zero point */
  int32_t output_offset;     /* output zero point */
  int32_t act_min, act_max;  /* fused activation clamp, in the output's int8 domain */
  const int32_t *out_mult;   /* [out_c] Q0.31 multipliers */
  const int32_t *out_shift;  /* [out_c] shifts, positive = left */
  /* [out_c] bias + input_offset * (sum of all the channel's weights), for windows wholly inside
   * the input (one group, no column dilation); NULL when the compiler did not fold it */
  const int32_t *folded_bias;
} tinyc_conv2d_params_t;

void tinyc_conv2d_s8(const tinyc_conv2d_params_t *p, const int8_t *input, const int8_t *filter,
                     const int32_t *bias, int8_t *output);

/* 1x1 filter, no padding, one group, any stride (runtime_c/src/conv_1x1.c): the pointwise layers.
 * bias[oc] already holds TFLM's bias + input_offset * (sum of channel oc's weights). */
typedef struct {
  int32_t batches;
  int32_t in_h, in_w, in_c;
  int32_t out_h, out_w, out_c;
  int32_t stride_h, stride_w;
  int32_t output_offset;    /* output zero point */
  int32_t act_min, act_max; /* fused activation clamp, in the output's int8 domain */
  const int32_t *bias;      /* [out_c] with the input offset folded in */
  const int32_t *out_mult;  /* [out_c] Q0.31 multipliers */
  const int32_t *out_shift; /* [out_c] shifts, positive = left */
} tinyc_conv2d_1x1_params_t;

void tinyc_conv2d_s8_1x1(const tinyc_conv2d_1x1_params_t *p, const int8_t *input, const int8_t *filter,
                         int8_t *output);

#endif /* TINYC_CONV_H */
