/* tinyc training: backward of AVERAGE_POOL_2D and MEAN in float32.
 * AVERAGE_POOL_2D: like TFLM's forward, a window counts only its taps inside the input; each
 * gets dy / count. MEAN: every input element gets dy of its reduced position / (elements reduced). */
#ifndef TINYC_TRAIN_POOLING_H
#define TINYC_TRAIN_POOLING_H

#include <stdint.h>

#include "tinyc/pooling.h"

/* p: the forward's params (act_min/act_max unused). dx overwritten. */
void tinyc_avgpool_backward_f32(const tinyc_pool_params_t *p, const float *dy, float *dx);

typedef struct {
  int32_t in_shape[4]; /* forward input, 4-D */
  uint8_t reduce[4];   /* 1: this axis is averaged over */
} tinyc_mean_bwd_params_t;
void tinyc_mean_backward_f32(const tinyc_mean_bwd_params_t *p, const float *dy, float *dx);

#endif /* TINYC_TRAIN_POOLING_H */
