/* tinyc training: backward of CONV_2D and DEPTHWISE_CONV_2D in float32, reading int8 weights.
 *
 * Real values: x = x_scale * (x_q - x_zp), w = w_scale[oc] * w_q, b = x_scale * w_scale[oc] * b_q.
 * dz is the gradient of the loss with respect to the op's (pre-activation) output, float32, NHWC,
 * with the activation's mask already applied. Geometry fields mean what they mean in the forward
 * params (tinyc/conv.h, tinyc/depthwise_conv.h): taps outside the input are padding and get no
 * gradient.
 *
 * Update kernels compute the gradient of one output channel at a time into `scratch`
 * (filter_h * filter_w * n_sel floats) and apply it at once (tinyc/train_update.h): weight
 * gradients never exist whole. Only the `n_sel` selected input channels `sel[]` (ascending
 * indices into the filter's input channels) are trained; `x_sel` holds exactly those channels of
 * the forward input, NHW x n_sel (the compiler keeps only them for backward). Residuals and
 * momentum buffers are compact: [out_c][filter_h][filter_w][n_sel] for weights, [out_c] for biases. */
#ifndef TINYC_TRAIN_CONV_H
#define TINYC_TRAIN_CONV_H

#include <stdint.h>

#include "tinyc/split_weights.h"
#include "tinyc/train_update.h"

typedef struct {
  int32_t batches;
  int32_t in_h, in_w, in_c;
  int32_t out_h, out_w, out_c;
  int32_t filter_h, filter_w;
  int32_t filter_in_c; /* in_c / groups (CONV_2D); 1 for depthwise */
  int32_t depth_multiplier; /* depthwise: out_c = in_c * depth_multiplier; CONV_2D: 0 */
  int32_t stride_h, stride_w;
  int32_t dilation_h, dilation_w;
  int32_t pad_top, pad_left;
  const float *w_scale; /* [out_c] real step of each output channel's weights */
} tinyc_conv_bwd_params_t;

/* dx = d(loss)/d(input), float32 NHWC [batches, in_h, in_w, in_c] (overwritten). */
void tinyc_conv2d_backward_input_f32(const tinyc_conv_bwd_params_t *p, const float *dz, const int8_t *w,
                                     float *dx);
void tinyc_depthwise_backward_input_f32(const tinyc_conv_bwd_params_t *p, const float *dz, const int8_t *w,
                                        float *dx);
/* The same for weights split into a frozen and a trained part (tinyc/split_weights.h); same sums. */
typedef struct {
  tinyc_conv_bwd_params_t g;
  tinyc_split_t split;
} tinyc_conv_bwd_split_params_t;
void tinyc_conv2d_backward_input_split_f32(const tinyc_conv_bwd_split_params_t *pp, const float *dz,
                                           const int8_t *frozen, const int8_t *trained, float *dx);
void tinyc_depthwise_backward_input_split_f32(const tinyc_conv_bwd_split_params_t *pp, const float *dz,
                                              const int8_t *frozen, const int8_t *trained, float *dx);

typedef struct {
  tinyc_conv_bwd_params_t g; /* geometry */
  int32_t layer;             /* forward op index, for the gradient hook */
  float x_scale;             /* real step of the input */
  int32_t x_zp;              /* input zero point */
  int32_t n_sel;             /* trained input channels (0: bias only) */
  const uint16_t *sel;       /* [n_sel] which ones, ascending; CONV_2D: into filter_in_c, depthwise: into in_c */
  const float *w_step_inv;   /* [out_c] QAS factor of the weights (see train_update.h) */
  const float *b_step_inv;   /* [out_c] QAS factor of the bias; NULL: the bias is not trained */
  int32_t b_limit;          /* trained biases stay within +-b_limit (the int32 accumulator cannot overflow) */
} tinyc_conv_update_params_t;

/* CONV_2D with one group. w: the trained part of the weights, [out_c][filter_h][filter_w][n_sel] (the
 * selected input channels only, in SRAM; the whole tensor when every channel is selected).
 * bias, b_res, b_mom: [out_c] (bias trained when p->b_step_inv != NULL). w_mom, b_mom may be NULL. */
void tinyc_conv2d_update(const tinyc_conv_update_params_t *p, const tinyc_sgd_t *sgd, const float *dz,
                         const int8_t *x_sel, int8_t *w, int16_t *w_res, float *w_mom, int32_t *bias,
                         int16_t *b_res, float *b_mom, float *scratch);

/* DEPTHWISE_CONV_2D. w: the trained part [1][filter_h][filter_w][n_sel * depth_multiplier] (the output
 * channels of the selected inputs; the whole tensor when all are). Output channel oc = c * depth_multiplier + m
 * is trained when its input channel c is selected; residuals/momentum of weights are
 * [n_sel * depth_multiplier][filter_h][filter_w] in that order. scratch: filter_h * filter_w floats. */
void tinyc_depthwise_update(const tinyc_conv_update_params_t *p, const tinyc_sgd_t *sgd, const float *dz,
                            const int8_t *x_sel, int8_t *w, int16_t *w_res, float *w_mom, int32_t *bias,
                            int16_t *b_res, float *b_mom, float *scratch);

#endif /* TINYC_TRAIN_CONV_H */
