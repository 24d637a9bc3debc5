/* tinyc: box copies between a feature map and its patches (see copy_box.h). */
#include "tinyc/copy_box.h"

#include <string.h>

void tinyc_copy_box(const tinyc_copy_box_params_t *p, const void *src, void *dst) {
  const uint8_t *s = (const uint8_t *)src + p->src_offset;
  uint8_t *d = (uint8_t *)dst + p->dst_offset;
  for (uint32_t r = 0; r < p->rows; ++r) {
    memcpy(d, s, p->row_bytes);
    s += p->src_stride;
    d += p->dst_stride;
  }
}
