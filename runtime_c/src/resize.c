/* tinyc: nearest-neighbour resize (see tinyc/resize.h). */
#include "tinyc/resize.h"

#include <stddef.h>
#include <string.h>

void tinyc_resize_nearest(const tinyc_resize_nearest_params_t *p, const void *in, void *out) {
  const size_t px = (size_t)p->pixel_bytes;
  const size_t in_row = (size_t)p->in_w * px;
  const size_t out_row = (size_t)p->out_w * px;
  const uint8_t *src = (const uint8_t *)in;
  uint8_t *dst = (uint8_t *)out;
  for (int32_t b = 0; b < p->batches; ++b) {
    for (int32_t y = 0; y < p->out_h; ++y) {
      if (y > 0 && p->y_map[y] == p->y_map[y - 1]) {
        /* Upsampling repeats source rows: copy the row just written, one memcpy. */
        memcpy(dst, dst - out_row, out_row);
      } else {
        const uint8_t *s = src + (size_t)p->y_map[y] * in_row;
        for (int32_t x = 0; x < p->out_w; ++x) {
          memcpy(dst + (size_t)x * px, s + (size_t)p->x_map[x] * px, px);
        }
      }
      dst += out_row;
    }
    src += (size_t)p->in_h * in_row;
  }
}
