/* tinyc training: FULLY_CONNECTED backward in float32 (see tinyc/train_fully_connected.h).
 *
 * Loops run in the fixed order written next to each kernel (built with -ffp-contract=off, the host
 * and a Cortex-M compute the same bits). Zero dz elements are skipped. Aliasing: dx must not
 * overlap dz or w; the update kernel's buffers must not overlap each other. */
#include "tinyc/train_fully_connected.h"

#include <stddef.h>
#include <stdint.h>

#include "tinyc/train_update.h"

/* dx[r, i] = sum over o of dz[r, o] * w_scale[o] * w[o, i].
 * Order: dx zeroed, then r, o, i ascending. */
void tinyc_fc_backward_input_f32(const tinyc_fc_bwd_params_t *p, const float *dz, const int8_t *w, float *dx) {
  const int32_t in = p->in_depth;
  const int32_t out = p->out_depth;
  for (int32_t i = 0; i < p->rows * in; ++i) {
    dx[i] = 0.0f;
  }
  for (int32_t r = 0; r < p->rows; ++r) {
    float *const dx_r = dx + r * in;
    for (int32_t o = 0; o < out; ++o) {
      const float d = dz[r * out + o] * p->w_scale[o];
      if (d == 0.0f) {
        continue;
      }
      const int8_t *const w_o = w + o * in;
      for (int32_t i = 0; i < in; ++i) {
        dx_r[i] += d * (float)w_o[i];
      }
    }
  }
}

void tinyc_fc_backward_input_split_f32(const tinyc_fc_bwd_split_params_t *pp, const float *dz, const int8_t *frozen,
                                       const int8_t *trained, float *dx) {
  const tinyc_fc_bwd_params_t *const p = &pp->g;
  const tinyc_split_t *const s = &pp->split;
  const int32_t in = p->in_depth;
  const int32_t out = p->out_depth;
  for (int32_t i = 0; i < p->rows * in; ++i) {
    dx[i] = 0.0f;
  }
  for (int32_t r = 0; r < p->rows; ++r) {
    float *const dx_r = dx + r * in;
    for (int32_t o = 0; o < out; ++o) {
      const float d = dz[r * out + o] * p->w_scale[o];
      if (d == 0.0f) {
        continue;
      }
      for (int32_t i = 0; i < in; ++i) {
        dx_r[i] += d * (float)tinyc_split_w(s, frozen, trained, o, i);
      }
    }
  }
}

/* Output by output (ascending): scratch[s] = sum over rows r (ascending) of
 * dz[r, o] * (x_sel[r, s] - x_zp); then for s ascending g = x_scale * scratch[s] goes to the hook
 * and the SGD step of w[o][sel[s]] (residual [o][s]); last the bias of o (the sum of dz[., o]),
 * kept within +-b_limit. */
void tinyc_fc_update(const tinyc_fc_update_params_t *p, const tinyc_sgd_t *sgd, const float *dz,
                     const int8_t *x_sel, int8_t *w, int16_t *w_res, float *w_mom, int32_t *bias,
                     int16_t *b_res, float *b_mom, float *scratch) {
  const int32_t n_sel = p->n_sel;
  const int32_t out = p->g.out_depth;
  const int train_bias = p->b_step_inv != NULL && bias != NULL;
  if (n_sel == 0 && !train_bias) {
    return;
  }
  for (int32_t o = 0; o < out; ++o) {
    float gb = 0.0f;
    for (int32_t s = 0; s < n_sel; ++s) {
      scratch[s] = 0.0f;
    }
    for (int32_t r = 0; r < p->g.rows; ++r) {
      const float d = dz[r * out + o];
      if (d == 0.0f) {
        continue;
      }
      gb += d;
      if (n_sel > 0) { /* x_sel may be NULL then */
        const int8_t *const x_r = x_sel + r * n_sel;
        for (int32_t s = 0; s < n_sel; ++s) {
          scratch[s] += d * (float)((int32_t)x_r[s] - p->x_zp);
        }
      }
    }
    if (n_sel > 0) {
      const float step_inv = p->w_step_inv[o];
      for (int32_t s = 0; s < n_sel; ++s) {
        const int32_t ci = o * n_sel + s;                           /* in w_res, w_mom */
        const int32_t wi = o * p->g.in_depth + (int32_t)p->sel[s]; /* in w */
        const float gr = p->x_scale * scratch[s];
        TINYC_GRAD_HOOK(p->layer, 0, wi, gr);
        w[ci] = (int8_t)tinyc_sgd_step(sgd, gr, step_inv, w[ci], w_res != NULL ? &w_res[ci] : NULL,
                                       w_mom != NULL ? &w_mom[ci] : NULL, -127, 127);
      }
    }
    if (train_bias) {
      TINYC_GRAD_HOOK(p->layer, 1, o, gb);
      bias[o] = tinyc_sgd_step(sgd, gb, p->b_step_inv[o], bias[o], b_res != NULL ? &b_res[o] : NULL, b_mom != NULL ? &b_mom[o] : NULL,
                               -p->b_limit, p->b_limit);
    }
  }
}
