/* tinyc: RESIZE_NEAREST_NEIGHBOR, NHWC, any element type (it only copies pixels).
 * TFLM picks each source row and column with float arithmetic (GetNearestNeighbor:
 * align_corners, half_pixel_centers); the compiler evaluates that in float32 exactly as TFLM
 * does and stores the result as two index tables, so the kernel needs no float at all. */
#ifndef TINYC_RESIZE_H
#define TINYC_RESIZE_H

#include <stdint.h>

typedef struct {
  int32_t batches;
  int32_t in_h;
  int32_t in_w;
  int32_t out_h;
  int32_t out_w;
  int32_t pixel_bytes;  /* depth * element size */
  const int32_t *y_map; /* out_h entries: the input row of each output row */
  const int32_t *x_map; /* out_w entries: the input column of each output column */
} tinyc_resize_nearest_params_t;

void tinyc_resize_nearest(const tinyc_resize_nearest_params_t *p, const void *in, void *out);

#endif /* TINYC_RESIZE_H */
