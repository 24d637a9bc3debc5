/* tinyc training: CONV_2D and DEPTHWISE_CONV_2D backward in float32 (see tinyc/train_conv.h).
 *
 * Every loop runs in a fixed order, written next to each kernel, so that a float sum is the same
 * sum on every target (built with -ffp-contract=off). A zero dz element contributes nothing and
 * is skipped (adding d * x = +-0 would not change any sum either). Indices are int32_t like the
 * forward kernels': the compiler only emits tensors far below 2^31 elements.
 *
 * Aliasing: dx must not overlap dz or w; the update kernels' dz, x_sel, scratch, parameters and
 * their residual/momentum buffers must not overlap each other. */
#include "tinyc/train_conv.h"

#include <stddef.h>
#include <stdint.h>

#include "tinyc/train_update.h"

/* The first tap k >= 0 with origin + k * dilation >= 0. */
static int32_t tinyc_tconv_first_tap(int32_t origin, int32_t dilation) {
  return origin >= 0 ? 0 : (-origin + dilation - 1) / dilation;
}

/* One past the last tap k < n with origin + k * dilation < size. */
static int32_t tinyc_tconv_end_tap(int32_t origin, int32_t dilation, int32_t size, int32_t n) {
  const int32_t room = size - origin;
  if (room <= 0) {
    return 0;
  }
  const int32_t end = (room + dilation - 1) / dilation;
  return end < n ? end : n;
}

/* The taps of output pixel (oy, ox) inside the input: filter rows [fy0, fy1), columns [fx0, fx1);
 * tap (ky, kx) reads input pixel (iy0 + ky * dilation_h, ix0 + kx * dilation_w). */
typedef struct {
  int32_t fy0, fy1, fx0, fx1;
  int32_t iy0, ix0;
} tinyc_tconv_window_t;

/* Whether output pixel (oy, ox) has any tap inside the input. */
static int tinyc_tconv_window(const tinyc_conv_bwd_params_t *p, int32_t oy, int32_t ox, tinyc_tconv_window_t *win) {
  win->iy0 = oy * p->stride_h - p->pad_top;
  win->ix0 = ox * p->stride_w - p->pad_left;
  win->fy0 = tinyc_tconv_first_tap(win->iy0, p->dilation_h);
  win->fy1 = tinyc_tconv_end_tap(win->iy0, p->dilation_h, p->in_h, p->filter_h);
  win->fx0 = tinyc_tconv_first_tap(win->ix0, p->dilation_w);
  win->fx1 = tinyc_tconv_end_tap(win->ix0, p->dilation_w, p->in_w, p->filter_w);
  return win->fy0 < win->fy1 && win->fx0 < win->fx1;
}

static void tinyc_tconv_zero(float *x, int32_t n) {
  for (int32_t i = 0; i < n; ++i) {
    x[i] = 0.0f;
  }
}

/* dx[b, iy, ix, g * fic + ci] = sum over the output channels oc of group g and the taps reading that
 * pixel of dz[b, oy, ox, oc] * w_scale[oc] * w[oc, ky, kx, ci].
 * Order: dx zeroed, then b, oy, ox, oc, ky, kx, ci ascending (scatter). */
void tinyc_conv2d_backward_input_f32(const tinyc_conv_bwd_params_t *p, const float *dz, const int8_t *w,
                                     float *dx) {
  const int32_t fic = p->filter_in_c;
  const int32_t per_group = p->out_c / (p->in_c / fic); /* output channels per group */
  const int32_t w_row = p->filter_w * fic;
  const int32_t w_channel = p->filter_h * w_row;
  const int32_t in_image = p->in_h * p->in_w * p->in_c;
  tinyc_tconv_zero(dx, p->batches * in_image);
  for (int32_t b = 0; b < p->batches; ++b) {
    float *const dx_b = dx + b * in_image;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        tinyc_tconv_window_t win;
        if (!tinyc_tconv_window(p, oy, ox, &win)) {
          continue;
        }
        const float *const dz_px = dz + ((b * p->out_h + oy) * p->out_w + ox) * p->out_c;
        for (int32_t oc = 0; oc < p->out_c; ++oc) {
          const float d = dz_px[oc] * p->w_scale[oc];
          if (d == 0.0f) {
            continue;
          }
          const int8_t *const w_oc = w + oc * w_channel;
          float *const dx_g = dx_b + (oc / per_group) * fic;
          for (int32_t ky = win.fy0; ky < win.fy1; ++ky) {
            const int32_t iy = win.iy0 + ky * p->dilation_h;
            for (int32_t kx = win.fx0; kx < win.fx1; ++kx) {
              const int32_t ix = win.ix0 + kx * p->dilation_w;
              float *const dxp = dx_g + (iy * p->in_w + ix) * p->in_c;
              const int8_t *const wp = w_oc + ky * w_row + kx * fic;
              for (int32_t ci = 0; ci < fic; ++ci) {
                dxp[ci] += d * (float)wp[ci];
              }
            }
          }
        }
      }
    }
  }
}

/* dx[b, iy, ix, c] = sum over m and the taps reading that pixel of
 * dz[b, oy, ox, c * dm + m] * w_scale[oc] * w[ky, kx, c * dm + m].
 * Order: dx zeroed, then b, oy, ox, ky, kx, c, m ascending. */
void tinyc_depthwise_backward_input_f32(const tinyc_conv_bwd_params_t *p, const float *dz, const int8_t *w,
                                        float *dx) {
  const int32_t dm = p->depth_multiplier;
  const int32_t in_image = p->in_h * p->in_w * p->in_c;
  tinyc_tconv_zero(dx, p->batches * in_image);
  for (int32_t b = 0; b < p->batches; ++b) {
    float *const dx_b = dx + b * in_image;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        tinyc_tconv_window_t win;
        if (!tinyc_tconv_window(p, oy, ox, &win)) {
          continue;
        }
        const float *const dz_px = dz + ((b * p->out_h + oy) * p->out_w + ox) * p->out_c;
        for (int32_t ky = win.fy0; ky < win.fy1; ++ky) {
          const int32_t iy = win.iy0 + ky * p->dilation_h;
          for (int32_t kx = win.fx0; kx < win.fx1; ++kx) {
            const int32_t ix = win.ix0 + kx * p->dilation_w;
            float *const dxp = dx_b + (iy * p->in_w + ix) * p->in_c;
            const int8_t *const wp = w + (ky * p->filter_w + kx) * p->out_c;
            for (int32_t c = 0; c < p->in_c; ++c) {
              for (int32_t m = 0; m < dm; ++m) {
                const int32_t oc = c * dm + m;
                const float d = dz_px[oc];
                if (d != 0.0f) {
                  dxp[c] += d * p->w_scale[oc] * (float)wp[oc];
                }
              }
            }
          }
        }
      }
    }
  }
}

/* tinyc_conv2d_backward_input_f32 reading split weights: the same loops and sums. */
void tinyc_conv2d_backward_input_split_f32(const tinyc_conv_bwd_split_params_t *pp, const float *dz,
                                           const int8_t *frozen, const int8_t *trained, float *dx) {
  const tinyc_conv_bwd_params_t *const p = &pp->g;
  const tinyc_split_t *const s = &pp->split;
  const int32_t fic = p->filter_in_c;
  const int32_t per_group = p->out_c / (p->in_c / fic);
  const int32_t in_image = p->in_h * p->in_w * p->in_c;
  tinyc_tconv_zero(dx, p->batches * in_image);
  for (int32_t b = 0; b < p->batches; ++b) {
    float *const dx_b = dx + b * in_image;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        tinyc_tconv_window_t win;
        if (!tinyc_tconv_window(p, oy, ox, &win)) {
          continue;
        }
        const float *const dz_px = dz + ((b * p->out_h + oy) * p->out_w + ox) * p->out_c;
        for (int32_t oc = 0; oc < p->out_c; ++oc) {
          const float d = dz_px[oc] * p->w_scale[oc];
          if (d == 0.0f) {
            continue;
          }
          float *const dx_g = dx_b + (oc / per_group) * fic;
          for (int32_t ky = win.fy0; ky < win.fy1; ++ky) {
            const int32_t iy = win.iy0 + ky * p->dilation_h;
            for (int32_t kx = win.fx0; kx < win.fx1; ++kx) {
              const int32_t ix = win.ix0 + kx * p->dilation_w;
              float *const dxp = dx_g + (iy * p->in_w + ix) * p->in_c;
              const int32_t row = (oc * p->filter_h + ky) * p->filter_w + kx;
              for (int32_t ci = 0; ci < fic; ++ci) {
                dxp[ci] += d * (float)tinyc_split_w(s, frozen, trained, row, ci);
              }
            }
          }
        }
      }
    }
  }
}

/* tinyc_depthwise_backward_input_f32 reading split weights: the same loops and sums. */
void tinyc_depthwise_backward_input_split_f32(const tinyc_conv_bwd_split_params_t *pp, const float *dz,
                                              const int8_t *frozen, const int8_t *trained, float *dx) {
  const tinyc_conv_bwd_params_t *const p = &pp->g;
  const tinyc_split_t *const s = &pp->split;
  const int32_t dm = p->depth_multiplier;
  const int32_t in_image = p->in_h * p->in_w * p->in_c;
  tinyc_tconv_zero(dx, p->batches * in_image);
  for (int32_t b = 0; b < p->batches; ++b) {
    float *const dx_b = dx + b * in_image;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        tinyc_tconv_window_t win;
        if (!tinyc_tconv_window(p, oy, ox, &win)) {
          continue;
        }
        const float *const dz_px = dz + ((b * p->out_h + oy) * p->out_w + ox) * p->out_c;
        for (int32_t ky = win.fy0; ky < win.fy1; ++ky) {
          const int32_t iy = win.iy0 + ky * p->dilation_h;
          for (int32_t kx = win.fx0; kx < win.fx1; ++kx) {
            const int32_t ix = win.ix0 + kx * p->dilation_w;
            float *const dxp = dx_b + (iy * p->in_w + ix) * p->in_c;
            const int32_t row = ky * p->filter_w + kx;
            for (int32_t c = 0; c < p->in_c; ++c) {
              for (int32_t m = 0; m < dm; ++m) {
                const int32_t oc = c * dm + m;
                const float d = dz_px[oc];
                if (d != 0.0f) {
                  dxp[c] += d * p->w_scale[oc] * (float)tinyc_split_w(s, frozen, trained, row, oc);
                }
              }
            }
          }
        }
      }
    }
  }
}

/* Applies one output channel's bias gradient gb (a plain sum of its dz), keeping |bias| <= b_limit. */
static void tinyc_tconv_bias_step(const tinyc_conv_update_params_t *p, const tinyc_sgd_t *sgd, int32_t oc, float gb,
                                  int32_t *bias, int16_t *b_res, float *b_mom) {
  TINYC_GRAD_HOOK(p->layer, 1, oc, gb);
  bias[oc] = tinyc_sgd_step(sgd, gb, p->b_step_inv[oc], bias[oc], b_res != NULL ? &b_res[oc] : NULL, b_mom != NULL ? &b_mom[oc] : NULL,
                            -p->b_limit, p->b_limit);
}

/* Output channel by output channel (ascending): scratch[ky][kx][s] = sum over b, oy, ox (ascending)
 * of dz[b, oy, ox, oc] * (x_sel[b, iy, ix, s] - x_zp), taps ky, kx, s ascending within a pixel;
 * then, in scratch order, g = x_scale * scratch[...] goes to the hook and the SGD step of
 * w[oc][ky][kx][sel[s]]; last the channel's bias (gradient: the sum of its dz, same order). */
void tinyc_conv2d_update(const tinyc_conv_update_params_t *p, const tinyc_sgd_t *sgd, const float *dz,
                         const int8_t *x_sel, int8_t *w, int16_t *w_res, float *w_mom, int32_t *bias,
                         int16_t *b_res, float *b_mom, float *scratch) {
  const tinyc_conv_bwd_params_t *const g = &p->g;
  const int32_t n_sel = p->n_sel;
  const int32_t taps = g->filter_h * g->filter_w;
  const int32_t per_oc = taps * n_sel; /* compact weights of one output channel */
  const int train_bias = p->b_step_inv != NULL && bias != NULL;
  if (per_oc == 0 && !train_bias) {
    return;
  }
  for (int32_t oc = 0; oc < g->out_c; ++oc) {
    float gb = 0.0f;
    tinyc_tconv_zero(scratch, per_oc);
    for (int32_t b = 0; b < g->batches; ++b) {
      for (int32_t oy = 0; oy < g->out_h; ++oy) {
        for (int32_t ox = 0; ox < g->out_w; ++ox) {
          const float d = dz[((b * g->out_h + oy) * g->out_w + ox) * g->out_c + oc];
          if (d == 0.0f) {
            continue;
          }
          gb += d;
          tinyc_tconv_window_t win;
          if (n_sel == 0 || !tinyc_tconv_window(g, oy, ox, &win)) {
            continue;
          }
          for (int32_t ky = win.fy0; ky < win.fy1; ++ky) {
            const int32_t iy = win.iy0 + ky * g->dilation_h;
            for (int32_t kx = win.fx0; kx < win.fx1; ++kx) {
              const int32_t ix = win.ix0 + kx * g->dilation_w;
              const int8_t *const xp = x_sel + ((b * g->in_h + iy) * g->in_w + ix) * n_sel;
              float *const sp = scratch + (ky * g->filter_w + kx) * n_sel;
              for (int32_t s = 0; s < n_sel; ++s) {
                sp[s] += d * (float)((int32_t)xp[s] - p->x_zp);
              }
            }
          }
        }
      }
    }
    if (per_oc > 0) {
      const float step_inv = p->w_step_inv[oc];
      for (int32_t t = 0; t < taps; ++t) {
        for (int32_t s = 0; s < n_sel; ++s) {
          const int32_t i = t * n_sel + s;                                          /* in scratch */
          const int32_t ci = oc * per_oc + i;                                       /* in w_res, w_mom */
          const int32_t wi = (oc * taps + t) * g->filter_in_c + (int32_t)p->sel[s]; /* in w */
          const float gr = p->x_scale * scratch[i];
          TINYC_GRAD_HOOK(p->layer, 0, wi, gr);
          w[ci] = (int8_t)tinyc_sgd_step(sgd, gr, step_inv, w[ci], w_res != NULL ? &w_res[ci] : NULL,
                                         w_mom != NULL ? &w_mom[ci] : NULL, -127, 127);
        }
      }
    }
    if (train_bias) {
      tinyc_tconv_bias_step(p, sgd, oc, gb, bias, b_res, b_mom);
    }
  }
}

/* Output channel by output channel (ascending) oc = c * dm + m: when c = sel[s],
 * scratch[ky][kx] = sum over b, oy, ox (ascending) of dz[b, oy, ox, oc] * (x_sel[b, iy, ix, s] - x_zp)
 * and, in scratch order, g = x_scale * scratch[...] goes to the hook and the SGD step of
 * w[ky][kx][oc] (residual [(s * dm + m)][ky][kx]); then, selected or not, the channel's bias. */
void tinyc_depthwise_update(const tinyc_conv_update_params_t *p, const tinyc_sgd_t *sgd, const float *dz,
                            const int8_t *x_sel, int8_t *w, int16_t *w_res, float *w_mom, int32_t *bias,
                            int16_t *b_res, float *b_mom, float *scratch) {
  const tinyc_conv_bwd_params_t *const g = &p->g;
  const int32_t n_sel = p->n_sel;
  const int32_t dm = g->depth_multiplier;
  const int32_t taps = g->filter_h * g->filter_w;
  const int train_bias = p->b_step_inv != NULL && bias != NULL;
  int32_t s = 0; /* the first selected input channel >= c */
  for (int32_t oc = 0; oc < g->out_c; ++oc) {
    const int32_t c = oc / dm;
    const int32_t m = oc - c * dm;
    while (s < n_sel && (int32_t)p->sel[s] < c) {
      ++s;
    }
    const int selected = s < n_sel && (int32_t)p->sel[s] == c;
    if (!selected && !train_bias) {
      continue;
    }
    float gb = 0.0f;
    if (selected) {
      tinyc_tconv_zero(scratch, taps);
    }
    for (int32_t b = 0; b < g->batches; ++b) {
      for (int32_t oy = 0; oy < g->out_h; ++oy) {
        for (int32_t ox = 0; ox < g->out_w; ++ox) {
          const float d = dz[((b * g->out_h + oy) * g->out_w + ox) * g->out_c + oc];
          if (d == 0.0f) {
            continue;
          }
          gb += d;
          tinyc_tconv_window_t win;
          if (!selected || !tinyc_tconv_window(g, oy, ox, &win)) {
            continue;
          }
          for (int32_t ky = win.fy0; ky < win.fy1; ++ky) {
            const int32_t iy = win.iy0 + ky * g->dilation_h;
            const int8_t *const x_row = x_sel + (b * g->in_h + iy) * g->in_w * n_sel + s;
            float *const sp = scratch + ky * g->filter_w;
            for (int32_t kx = win.fx0; kx < win.fx1; ++kx) {
              const int32_t ix = win.ix0 + kx * g->dilation_w;
              sp[kx] += d * (float)((int32_t)x_row[ix * n_sel] - p->x_zp);
            }
          }
        }
      }
    }
    if (selected) {
      const float step_inv = p->w_step_inv[oc];
      const int32_t base = (s * dm + m) * taps; /* the channel's compact residual / momentum */
      for (int32_t t = 0; t < taps; ++t) {
        const int32_t wi = t * g->out_c + oc;                 /* in the whole tensor (the hook) */
        const int32_t ti = t * n_sel * dm + s * dm + m;       /* in the trained part w */
        const float gr = p->x_scale * scratch[t];
        TINYC_GRAD_HOOK(p->layer, 0, wi, gr);
        w[ti] = (int8_t)tinyc_sgd_step(sgd, gr, step_inv, w[ti], w_res != NULL ? &w_res[base + t] : NULL,
                                       w_mom != NULL ? &w_mom[base + t] : NULL, -127, 127);
      }
    }
    if (train_bias) {
      tinyc_tconv_bias_step(p, sgd, oc, gb, bias, b_res, b_mom);
    }
  }
}
