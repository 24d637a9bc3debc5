/* tinyc training: AVERAGE_POOL_2D and MEAN backward in float32 (see tinyc/train_pooling.h). */
#include "tinyc/train_pooling.h"

#include <stddef.h>
#include <stdint.h>

#include "tinyc/pooling.h"

/* Every tap of a window gets dy / count, count = the window's taps inside the input (the forward's
 * clipped window, runtime_c/src/pooling.c). Order: dx zeroed, then b, oy, ox, c, y, x ascending.
 * dx must not overlap dy. */
void tinyc_avgpool_backward_f32(const tinyc_pool_params_t *p, const float *dy, float *dx) {
  const int32_t depth = p->depth;
  const int32_t in_image = p->in_h * p->in_w * depth;
  for (int32_t i = 0; i < p->batches * in_image; ++i) {
    dx[i] = 0.0f;
  }
  for (int32_t b = 0; b < p->batches; ++b) {
    float *const dx_b = dx + b * in_image;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      const int32_t iy = oy * p->stride_h - p->pad_h;
      const int32_t y0 = iy > 0 ? iy : 0;
      const int32_t y1 = iy + p->filter_h < p->in_h ? iy + p->filter_h : p->in_h;
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        const int32_t ix = ox * p->stride_w - p->pad_w;
        const int32_t x0 = ix > 0 ? ix : 0;
        const int32_t x1 = ix + p->filter_w < p->in_w ? ix + p->filter_w : p->in_w;
        if (y1 <= y0 || x1 <= x0) {
          continue; /* no tap inside the input (the compiler rejects such shapes) */
        }
        const float count = (float)((y1 - y0) * (x1 - x0));
        const float *const dy_px = dy + ((b * p->out_h + oy) * p->out_w + ox) * depth;
        for (int32_t c = 0; c < depth; ++c) {
          const float g = dy_px[c] / count;
          for (int32_t y = y0; y < y1; ++y) {
            float *const dx_row = dx_b + y * p->in_w * depth + c;
            for (int32_t x = x0; x < x1; ++x) {
              dx_row[x * depth] += g;
            }
          }
        }
      }
    }
  }
}

/* dx[i] = dy[i with the reduced coordinates set to 0] / (number of elements reduced), walked from
 * the last element down: dy's index never exceeds dx's, so dx may start where dy starts. */
void tinyc_mean_backward_f32(const tinyc_mean_bwd_params_t *p, const float *dy, float *dx) {
  int32_t strides[4]; /* dy's, 0 along the reduced axes */
  int32_t s = 1;
  int32_t count = 1;
  for (int32_t k = 3; k >= 0; --k) {
    if (p->reduce[k] != 0) {
      strides[k] = 0;
      count *= p->in_shape[k];
    } else {
      strides[k] = s;
      s *= p->in_shape[k];
    }
  }
  const float fcount = (float)count;
  const int32_t *const is = p->in_shape;
  int32_t i = is[0] * is[1] * is[2] * is[3];
  for (int32_t n = is[0] - 1; n >= 0; --n) {
    for (int32_t h = is[1] - 1; h >= 0; --h) {
      for (int32_t w = is[2] - 1; w >= 0; --w) {
        const float *const src = dy + n * strides[0] + h * strides[1] + w * strides[2];
        for (int32_t c = is[3] - 1; c >= 0; --c) {
          dx[--i] = src[c * strides[3]] / fcount;
        }
      }
    }
  }
}
