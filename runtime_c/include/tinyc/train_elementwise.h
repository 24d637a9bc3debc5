/* tinyc training: element-wise pieces of the backward pass (float32 gradients).
 *
 * Activation masks are kept as bits: bit i of mask (byte i/8, bit i%8) is 1 when the forward
 * output y[i] was inside its activation's range, lo < y[i] < hi (int8 domain), i.e. the gradient
 * passes. Shapes of the broadcast kernels are 4-D (NHWC, padded on the left with ones). */
#ifndef TINYC_TRAIN_ELEMENTWISE_H
#define TINYC_TRAIN_ELEMENTWISE_H

#include <stdint.h>

typedef struct {
  int32_t n;
  int32_t lo, hi;
} tinyc_mask_params_t;

/* mask: (n + 7) / 8 bytes */
void tinyc_act_mask_s8(const tinyc_mask_params_t *p, const int8_t *y, uint8_t *mask);
/* dz[i] = bit i ? dy[i] : 0; dz may be dy */
void tinyc_apply_mask_f32(const tinyc_mask_params_t *p, const float *dy, const uint8_t *mask, float *dz);

typedef struct {
  int32_t n;
} tinyc_size_params_t;

/* out = a + b (gradients of one tensor from two consumers); out may be a or b */
void tinyc_grad_add_f32(const tinyc_size_params_t *p, const float *a, const float *b, float *out);

/* out = the selected channels of x (NHWC with c channels, `pixels` = N*H*W): [pixels][n_sel] */
typedef struct {
  int32_t pixels;
  int32_t c;
  int32_t n_sel;
  const uint16_t *sel;
} tinyc_gather_params_t;
void tinyc_gather_channels_s8(const tinyc_gather_params_t *p, const int8_t *x, int8_t *out);

/* Broadcast backward of ADD and MUL. out_shape is the forward output's; in_shape the input
 * whose gradient is computed (each dim 1 or equal to out_shape's). dx = sum over the broadcast
 * dims of dy * factor, factor = 1 (ADD) or the other input's real value broadcast to
 * out_shape (MUL: other_scale * (other_q - other_zp), other_shape). dx overwritten. */
typedef struct {
  int32_t out_shape[4];
  int32_t in_shape[4];
  int32_t other_shape[4];
  float other_scale;
  int32_t other_zp;
} tinyc_broadcast_bwd_params_t;
void tinyc_add_backward_f32(const tinyc_broadcast_bwd_params_t *p, const float *dy, float *dx);
void tinyc_mul_backward_f32(const tinyc_broadcast_bwd_params_t *p, const float *dy, const int8_t *other,
                            float *dx);

/* Point-wise activations: dx = dy * f'(.) from the saved int8 tensor (real = scale * (q - zp)).
 * HARD_SWISH reads its input x: f' = 0 for x < -3, 1 for x > 3, (2x + 3) / 6 between.
 * LOGISTIC reads its output y: f' = y (1 - y). dx may be dy. */
typedef struct {
  int32_t n;
  float scale;
  int32_t zp;
} tinyc_act_bwd_params_t;
void tinyc_hard_swish_backward_f32(const tinyc_act_bwd_params_t *p, const float *dy, const int8_t *x, float *dx);
void tinyc_logistic_backward_f32(const tinyc_act_bwd_params_t *p, const float *dy, const int8_t *y, float *dx);

/* Float transpose of a 4-D tensor: out[i'] = in[i] with out dim k = in dim perm[k]
 * (TRANSPOSE's backward runs it with the inverse permutation). */
typedef struct {
  int32_t in_shape[4];
  int32_t perm[4];
} tinyc_transpose_f32_params_t;
void tinyc_transpose_f32(const tinyc_transpose_f32_params_t *p, const float *in, float *out);

/* PAD's backward: dx = the un-padded window of dy. pad_before[k]: elements added before dim k. */
typedef struct {
  int32_t in_shape[4];  /* the forward input (= dx) */
  int32_t out_shape[4]; /* the forward output (= dy) */
  int32_t pad_before[4];
} tinyc_pad_bwd_params_t;
void tinyc_pad_backward_f32(const tinyc_pad_bwd_params_t *p, const float *dy, float *dx);

#endif /* TINYC_TRAIN_ELEMENTWISE_H */
