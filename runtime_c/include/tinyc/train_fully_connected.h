/* tinyc training: backward of FULLY_CONNECTED in float32, reading int8 weights [out][in].
 * Real values as in tinyc/train_conv.h (per-tensor weights: w_scale has one value repeated per
 * output). The input is [rows][in] whatever its shape, dz is [rows][out]. */
#ifndef TINYC_TRAIN_FULLY_CONNECTED_H
#define TINYC_TRAIN_FULLY_CONNECTED_H

#include <stdint.h>

#include "tinyc/split_weights.h"
#include "tinyc/train_update.h"

typedef struct {
  int32_t rows;          /* batches */
  int32_t in_depth;      /* accum_depth */
  int32_t out_depth;
  const float *w_scale;  /* [out_depth] */
} tinyc_fc_bwd_params_t;

/* dx [rows][in_depth] (overwritten) */
void tinyc_fc_backward_input_f32(const tinyc_fc_bwd_params_t *p, const float *dz, const int8_t *w, float *dx);
/* The same for weights split into a frozen and a trained part (tinyc/split_weights.h); same sums. */
typedef struct {
  tinyc_fc_bwd_params_t g;
  tinyc_split_t split;
} tinyc_fc_bwd_split_params_t;
void tinyc_fc_backward_input_split_f32(const tinyc_fc_bwd_split_params_t *pp, const float *dz, const int8_t *frozen,
                                       const int8_t *trained, float *dx);

typedef struct {
  tinyc_fc_bwd_params_t g;
  int32_t layer;
  float x_scale;
  int32_t x_zp;
  int32_t n_sel;           /* trained input features (0: bias only) */
  const uint16_t *sel;     /* [n_sel] ascending */
  const float *w_step_inv; /* [out_depth] */
  const float *b_step_inv; /* [out_depth] or NULL: bias not trained */
  int32_t b_limit;          /* trained biases stay within +-b_limit (the int32 accumulator cannot overflow) */
} tinyc_fc_update_params_t;

/* x_sel: [rows][n_sel] the selected input features; w: the trained part of the weights [out_depth][n_sel]
 * (the whole tensor when every feature is selected); w_res/w_mom: [out_depth][n_sel];
 * scratch: n_sel floats. w_mom, b_mom may be NULL. */
void tinyc_fc_update(const tinyc_fc_update_params_t *p, const tinyc_sgd_t *sgd, const float *dz,
                     const int8_t *x_sel, int8_t *w, int16_t *w_res, float *w_mom, int32_t *bias,
                     int16_t *b_res, float *b_mom, float *scratch);

#endif /* TINYC_TRAIN_FULLY_CONNECTED_H */
