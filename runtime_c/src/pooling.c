/* tinyc: int8 average and max pooling (see tinyc/pooling.h). */
#include "tinyc/pooling.h"

#include <stddef.h>

/* The filter window of one output position, clipped to the image as TFLM does. */
typedef struct {
  int32_t y0, y1, x0, x1; /* input rows [y0, y1), columns [x0, x1) */
} window_t;

static window_t clip_window(const tinyc_pool_params_t *p, int32_t oy, int32_t ox) {
  const int32_t iy = oy * p->stride_h - p->pad_h;
  const int32_t ix = ox * p->stride_w - p->pad_w;
  window_t w;
  w.y0 = iy > 0 ? iy : 0;
  w.y1 = iy + p->filter_h < p->in_h ? iy + p->filter_h : p->in_h;
  w.x0 = ix > 0 ? ix : 0;
  w.x1 = ix + p->filter_w < p->in_w ? ix + p->filter_w : p->in_w;
  return w;
}

void tinyc_avgpool_s8(const tinyc_pool_params_t *p, const int8_t *in, int8_t *out) {
  const size_t row = (size_t)p->in_w * (size_t)p->depth;
  const size_t image = (size_t)p->in_h * row;
  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t *img = in + (size_t)b * image;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        const window_t w = clip_window(p, oy, ox);
        /* The compiler rejects shapes where a window holds no pixel (TFLM fails on them). */
        const int32_t count = (w.y1 - w.y0) * (w.x1 - w.x0);
        for (int32_t c = 0; c < p->depth; ++c) {
          int32_t acc = 0;
          for (int32_t y = w.y0; y < w.y1; ++y) {
            const int8_t *px = img + (size_t)y * row + (size_t)w.x0 * (size_t)p->depth + (size_t)c;
            for (int32_t x = w.x0; x < w.x1; ++x) {
              acc += *px;
              px += p->depth;
            }
          }
          /* Round half away from zero; C division truncates toward zero, as in TFLM. */
          acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
          acc = acc < p->act_min ? p->act_min : acc;
          acc = acc > p->act_max ? p->act_max : acc;
          *out++ = (int8_t)acc;
        }
      }
    }
  }
}

void tinyc_maxpool_s8(const tinyc_pool_params_t *p, const int8_t *in, int8_t *out) {
  const size_t row = (size_t)p->in_w * (size_t)p->depth;
  const size_t image = (size_t)p->in_h * row;
  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t *img = in + (size_t)b * image;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        const window_t w = clip_window(p, oy, ox);
        for (int32_t c = 0; c < p->depth; ++c) {
          int32_t m = -128; /* numeric_limits<int8_t>::lowest(), kept for empty windows */
          for (int32_t y = w.y0; y < w.y1; ++y) {
            const int8_t *px = img + (size_t)y * row + (size_t)w.x0 * (size_t)p->depth + (size_t)c;
            for (int32_t x = w.x0; x < w.x1; ++x) {
              m = *px > m ? *px : m;
              px += p->depth;
            }
          }
          m = m < p->act_min ? p->act_min : m;
          m = m > p->act_max ? p->act_max : m;
          *out++ = (int8_t)m;
        }
      }
    }
  }
}
