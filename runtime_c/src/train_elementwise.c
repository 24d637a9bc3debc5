/* tinyc training: element-wise pieces of the backward pass (see tinyc/train_elementwise.h).
 *
 * Every loop walks its output in ascending row-major order; a sum over broadcast positions adds
 * its terms in the output's row-major order. Aliasing, kernel by kernel:
 *   tinyc_apply_mask_f32, tinyc_grad_add_f32, tinyc_hard_swish_backward_f32,
 *   tinyc_logistic_backward_f32: the output may be an input (same start), element-wise;
 *   tinyc_gather_channels_s8, tinyc_pad_backward_f32, tinyc_add_backward_f32,
 *   tinyc_mul_backward_f32: the output may start exactly where the gradient input (x, dy) starts
 *   (each write lands on an element already read);
 *   tinyc_act_mask_s8, tinyc_transpose_f32: no overlap. */
#include "tinyc/train_elementwise.h"

#include <stddef.h>
#include <stdint.h>

void tinyc_act_mask_s8(const tinyc_mask_params_t *p, const int8_t *y, uint8_t *mask) {
  const int32_t bytes = (p->n + 7) / 8;
  for (int32_t j = 0; j < bytes; ++j) {
    mask[j] = 0;
  }
  for (int32_t i = 0; i < p->n; ++i) {
    const int32_t v = y[i];
    if (p->lo < v && v < p->hi) {
      mask[i >> 3] = (uint8_t)(mask[i >> 3] | (1u << (i & 7)));
    }
  }
}

void tinyc_apply_mask_f32(const tinyc_mask_params_t *p, const float *dy, const uint8_t *mask, float *dz) {
  for (int32_t i = 0; i < p->n; ++i) {
    dz[i] = ((mask[i >> 3] >> (i & 7)) & 1u) != 0 ? dy[i] : 0.0f;
  }
}

void tinyc_grad_add_f32(const tinyc_size_params_t *p, const float *a, const float *b, float *out) {
  for (int32_t i = 0; i < p->n; ++i) {
    out[i] = a[i] + b[i];
  }
}

void tinyc_gather_channels_s8(const tinyc_gather_params_t *p, const int8_t *x, int8_t *out) {
  for (int32_t px = 0; px < p->pixels; ++px) {
    const int8_t *const x_px = x + px * p->c;
    int8_t *const o_px = out + px * p->n_sel;
    for (int32_t s = 0; s < p->n_sel; ++s) {
      o_px[s] = x_px[p->sel[s]];
    }
  }
}

/* Row-major strides of a 4-D shape, 0 along the dims of size 1 (broadcast). */
static void tinyc_bstrides(const int32_t shape[4], int32_t strides[4]) {
  int32_t s = 1;
  for (int32_t k = 3; k >= 0; --k) {
    strides[k] = shape[k] == 1 ? 0 : s;
    s *= shape[k];
  }
}

/* dx[j] = sum over the output positions o that broadcast from j of dy[o] * factor[o], in o's
 * ascending order: the first term of each dx element (all its broadcast coordinates 0, the
 * earliest such o in row-major order) overwrites, later ones add. No zeroing pass, so dx may start
 * where dy starts: j <= o, so a write never lands on a dy element not yet read. */
static void tinyc_broadcast_bwd(const tinyc_broadcast_bwd_params_t *p, const float *dy, const int8_t *other,
                                float *dx) {
  const int32_t *const os = p->out_shape;
  int32_t si[4], st[4];
  tinyc_bstrides(p->in_shape, si);
  tinyc_bstrides(p->other_shape, st);
  int32_t o = 0;
  for (int32_t n = 0; n < os[0]; ++n) {
    for (int32_t h = 0; h < os[1]; ++h) {
      for (int32_t w = 0; w < os[2]; ++w) {
        const int first_nhw = (si[0] != 0 || n == 0) && (si[1] != 0 || h == 0) && (si[2] != 0 || w == 0);
        const int32_t j_nhw = n * si[0] + h * si[1] + w * si[2];
        const int32_t t_nhw = n * st[0] + h * st[1] + w * st[2];
        for (int32_t c = 0; c < os[3]; ++c, ++o) {
          const int32_t j = j_nhw + c * si[3];
          float v = dy[o];
          if (other != NULL) {
            v = v * (p->other_scale * (float)((int32_t)other[t_nhw + c * st[3]] - p->other_zp));
          }
          dx[j] = first_nhw && (si[3] != 0 || c == 0) ? v : dx[j] + v;
        }
      }
    }
  }
}

void tinyc_add_backward_f32(const tinyc_broadcast_bwd_params_t *p, const float *dy, float *dx) {
  tinyc_broadcast_bwd(p, dy, NULL, dx);
}

void tinyc_mul_backward_f32(const tinyc_broadcast_bwd_params_t *p, const float *dy, const int8_t *other,
                            float *dx) {
  tinyc_broadcast_bwd(p, dy, other, dx);
}

void tinyc_hard_swish_backward_f32(const tinyc_act_bwd_params_t *p, const float *dy, const int8_t *x, float *dx) {
  for (int32_t i = 0; i < p->n; ++i) {
    const float xr = p->scale * (float)((int32_t)x[i] - p->zp);
    float d;
    if (xr < -3.0f) {
      d = 0.0f;
    } else if (xr > 3.0f) {
      d = 1.0f;
    } else {
      d = (2.0f * xr + 3.0f) / 6.0f;
    }
    dx[i] = dy[i] * d;
  }
}

void tinyc_logistic_backward_f32(const tinyc_act_bwd_params_t *p, const float *dy, const int8_t *y, float *dx) {
  for (int32_t i = 0; i < p->n; ++i) {
    const float yr = p->scale * (float)((int32_t)y[i] - p->zp);
    dx[i] = dy[i] * (yr * (1.0f - yr));
  }
}

void tinyc_transpose_f32(const tinyc_transpose_f32_params_t *p, const float *in, float *out) {
  int32_t in_strides[4];
  int32_t s = 1;
  for (int32_t k = 3; k >= 0; --k) {
    in_strides[k] = s;
    s *= p->in_shape[k];
  }
  int32_t shape[4], step[4]; /* the output's dims and the input stride along each */
  for (int32_t k = 0; k < 4; ++k) {
    shape[k] = p->in_shape[p->perm[k]];
    step[k] = in_strides[p->perm[k]];
  }
  int32_t o = 0;
  for (int32_t a = 0; a < shape[0]; ++a) {
    for (int32_t b = 0; b < shape[1]; ++b) {
      for (int32_t c = 0; c < shape[2]; ++c) {
        const float *const src = in + a * step[0] + b * step[1] + c * step[2];
        for (int32_t d = 0; d < shape[3]; ++d) {
          out[o++] = src[d * step[3]];
        }
      }
    }
  }
}

void tinyc_pad_backward_f32(const tinyc_pad_bwd_params_t *p, const float *dy, float *dx) {
  const int32_t *const is = p->in_shape;
  const int32_t *const os = p->out_shape;
  const int32_t *const pb = p->pad_before;
  int32_t o = 0;
  for (int32_t n = 0; n < is[0]; ++n) {
    for (int32_t h = 0; h < is[1]; ++h) {
      for (int32_t w = 0; w < is[2]; ++w) {
        const float *const src = dy + (((n + pb[0]) * os[1] + h + pb[1]) * os[2] + w + pb[2]) * os[3] + pb[3];
        for (int32_t c = 0; c < is[3]; ++c) {
          dx[o++] = src[c];
        }
      }
    }
  }
}
