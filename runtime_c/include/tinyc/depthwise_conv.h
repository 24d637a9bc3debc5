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

/* 3x3 filter, constant weights, depth multiplier 1 or a multiple of 4
 * (runtime_c/src/depthwise_3x3.c): the compiler (tinyc/ops/depthwise_conv.py pack_stream) lays
 * out everything a group of four output channels c..c+3 needs as one stream of words (the last
 * group of depth multiplier 1 zero padded), read front to back:
 *   4 words   the channels' biases with input_offset * (sum of the channel's nine taps) folded
 *             in, doubled;
 *   2 / tap   (nine taps: filter rows, then columns) twice the weights as int16 pairs
 *             (w[c], w[c+2]) and (w[c+1], w[c+3]), low half first: the lanes SXTB16 makes of four
 *             input channels;
 *   8 words   per channel its multiplier q and rounding constant (tinyc/quant.py fast_requant);
 *   4 words   the four shifts.
 * A channel whose multiplier is negative has its weights and bias negated (q > 0: tinyc_rq). Taps
 * outside the input read the input zero point (zero_points: in_c bytes, rounded up to a word),
 * which the folded offset cancels: the same integer as TFLM's skipped taps. Pixels ascending, or
 * descending when the output starts above the input, as tinyc_depthwise_conv2d_s8 (the same
 * overlap rules); no scratch memory. */
typedef struct {
  int32_t batches;
  int32_t in_h, in_w, in_c;
  int32_t out_h, out_w, out_c;
  int32_t depth_multiplier; /* 1 or a multiple of 4 */
  int32_t stride_h, stride_w;
  int32_t dilation_h, dilation_w;
  int32_t pad_top, pad_left;
  int32_t act_min, act_max;
  const int32_t *stream;     /* per group of four channels, as above */
  const int8_t *zero_points; /* [in_c rounded up to 4] input zero point */
} tinyc_depthwise_3x3_params_t;

void tinyc_depthwise_conv2d_s8_3x3(const tinyc_depthwise_3x3_params_t *p, const int8_t *input, int8_t *output);

/* The same layers (3x3, stride 1, dilation 1, constant weights), depth multiplier 1, channel by
 * channel in place like tinyc_depthwise_conv2d_s8_channels (temp: batches * in_h * in_w bytes; the
 * planner takes that variant at stride 1 only, where it can need fewer bytes): per channel
 * the nine weights are read from the model's filter, doubled (negated with a negative multiplier,
 * from bit 8 of the shift word) and kept as int16 pairs, so that one word of four input columns
 * feeds two outputs of a row (stride 1: SMLAD); a filter row outside the input adds
 * zero point * its weights, taps left or right of it read the zero point. requant[4 * c ..]:
 * 2 * (bias + input_offset * sum of the nine weights) (negated with q), q, rnd, e | negated << 8. */
typedef struct {
  int32_t batches;
  int32_t in_h, in_w, in_c;
  int32_t out_h, out_w;
  int32_t pad_top, pad_left;
  int32_t input_zp;
  int32_t act_min, act_max;
  const int32_t *requant; /* [in_c][4], as above */
} tinyc_depthwise_3x3_channels_params_t;

void tinyc_depthwise_conv2d_s8_3x3_channels(const tinyc_depthwise_3x3_channels_params_t *p, const int8_t *input,
                                            const int8_t *filter, int8_t *output, void *temp);

#endif /* TINYC_DEPTHWISE_CONV_H */
