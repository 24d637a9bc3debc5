/* tinyc: copy a box of rows between an NHWC tensor and a patch of it (patch-based inference).
 * A patch of H x W x C bytes is `rows` runs of `row_bytes` contiguous bytes, one per image row;
 * the full tensor's runs are `src_stride` / `dst_stride` bytes apart. The compiler computes
 * every number (tinyc/ops/copy_box.py); the two buffers never overlap (checked by the planner). */
#ifndef TINYC_COPY_BOX_H
#define TINYC_COPY_BOX_H

#include <stdint.h>

typedef struct {
  uint32_t rows;
  uint32_t row_bytes;
  uint32_t src_offset; /* bytes from src to the first byte copied */
  uint32_t src_stride; /* bytes between consecutive rows in src */
  uint32_t dst_offset;
  uint32_t dst_stride;
} tinyc_copy_box_params_t;

void tinyc_copy_box(const tinyc_copy_box_params_t *p, const void *src, void *dst);

/* A box of a streamed model input (compile with --patch-input stream): rows y0..y1-1 and
 * columns x0..x1-1 of input `input`, every channel, to be written packed (row-major) to dst.
 * row_bytes is one full row of the input, pixel_bytes one pixel (channels x element size). */
typedef struct {
  int32_t input;
  int32_t y0, y1, x0, x1;
  uint32_t row_bytes;
  uint32_t pixel_bytes;
} tinyc_input_box_t;

#endif /* TINYC_COPY_BOX_H */
