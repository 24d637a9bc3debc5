/* tinyc: int8 1x1 CONV_2D without padding (see tinyc/conv.h), the pointwise layers that hold
 * most of a MobileNet's MACs.
 *
 * TFLM computes acc = sum w * (x + input_offset) + bias. The compiler folds input_offset * sum w
 * into the bias (exact in int32: tinyc/ops/conv.py proves no sum can overflow), so the inner
 * loop is a plain int8 dot product: on cores with the DSP extension (Cortex-M4/M7/M33) four
 * MACs per SMLAD pair, elsewhere portable C. Both give TFLM's bytes.
 *
 * Access order: output pixels ascending, or descending when the output starts above the input
 * (as tinyc_conv2d_s8, so the planner's overlap distances hold). Two pixels are computed
 * together, sharing each weight load, only when input and output do not overlap at all; an
 * overlapped call runs one pixel at a time, reading pixel p while writing only pixel p. */
#include <stdint.h>

#include "tinyc/conv.h"
#include "tinyc/dot.h"
#include "tinyc/quant.h"

static tinyc_requant_t tinyc_1x1_requant(const tinyc_conv2d_1x1_params_t *p) {
  const tinyc_requant_t r = {p->bias, p->out_mult, p->out_shift, p->output_offset, p->act_min, p->act_max};
  return r;
}

/* The input pixel under output pixel px (all batches counted). */
static const int8_t *tinyc_1x1_source(const tinyc_conv2d_1x1_params_t *p, const int8_t *input, int32_t px) {
  const int32_t per_image = p->out_h * p->out_w;
  const int32_t b = px / per_image, r = px % per_image;
  const int32_t iy = (r / p->out_w) * p->stride_h, ix = (r % p->out_w) * p->stride_w;
  return input + ((b * p->in_h + iy) * p->in_w + ix) * p->in_c;
}

static void tinyc_1x1_one_pixel(const tinyc_conv2d_1x1_params_t *p, const int8_t *x, const int8_t *filter,
                                int8_t *y) {
  const tinyc_requant_t r = tinyc_1x1_requant(p);
  const int32_t in_c = p->in_c, out_c = p->out_c;
  int32_t acc[2];
  int32_t oc = 0;
  for (; oc + 2 <= out_c; oc += 2) {
    tinyc_dot_s8_1x2(x, filter + oc * in_c, filter + (oc + 1) * in_c, in_c, acc);
    y[oc] = tinyc_requant_ch(&r, acc[0], oc);
    y[oc + 1] = tinyc_requant_ch(&r, acc[1], oc + 1);
  }
  if (oc < out_c) {
    const int8_t *w = filter + oc * in_c;
    tinyc_dot_s8_1x2(x, w, w, in_c, acc);
    y[oc] = tinyc_requant_ch(&r, acc[0], oc);
  }
}

static void tinyc_1x1_two_pixels(const tinyc_conv2d_1x1_params_t *p, const int8_t *x0, const int8_t *x1,
                                 const int8_t *filter, int8_t *y0, int8_t *y1) {
  const tinyc_requant_t r = tinyc_1x1_requant(p);
  const int32_t in_c = p->in_c, out_c = p->out_c;
  int32_t acc[4];
  int32_t oc = 0;
  for (; oc + 2 <= out_c; oc += 2) {
    tinyc_dot_s8_2x2(x0, x1, filter + oc * in_c, filter + (oc + 1) * in_c, in_c, acc);
    y0[oc] = tinyc_requant_ch(&r, acc[0], oc);
    y0[oc + 1] = tinyc_requant_ch(&r, acc[1], oc + 1);
    y1[oc] = tinyc_requant_ch(&r, acc[2], oc);
    y1[oc + 1] = tinyc_requant_ch(&r, acc[3], oc + 1);
  }
  if (oc < out_c) {
    const int8_t *w = filter + oc * in_c;
    tinyc_dot_s8_2x2(x0, x1, w, w, in_c, acc);
    y0[oc] = tinyc_requant_ch(&r, acc[0], oc);
    y1[oc] = tinyc_requant_ch(&r, acc[2], oc);
  }
}

void tinyc_conv2d_s8_1x1(const tinyc_conv2d_1x1_params_t *p, const int8_t *input, const int8_t *filter,
                         int8_t *output) {
  const int32_t pixels = p->batches * p->out_h * p->out_w;
  const int32_t out_c = p->out_c;
  const uintptr_t in0 = (uintptr_t)input, in1 = in0 + (uintptr_t)(p->batches * p->in_h * p->in_w * p->in_c);
  const uintptr_t out0 = (uintptr_t)output, out1 = out0 + (uintptr_t)(pixels * out_c);
  const int disjoint = out1 <= in0 || in1 <= out0;
  if (disjoint) {
    int32_t px = 0;
    for (; px + 2 <= pixels; px += 2) {
      tinyc_1x1_two_pixels(p, tinyc_1x1_source(p, input, px), tinyc_1x1_source(p, input, px + 1), filter,
                           output + px * out_c, output + (px + 1) * out_c);
    }
    if (px < pixels) {
      tinyc_1x1_one_pixel(p, tinyc_1x1_source(p, input, px), filter, output + px * out_c);
    }
  } else if (out0 > in0) { /* output above the input: last pixel first, like memmove */
    for (int32_t px = pixels - 1; px >= 0; --px) {
      tinyc_1x1_one_pixel(p, tinyc_1x1_source(p, input, px), filter, output + px * out_c);
    }
  } else {
    for (int32_t px = 0; px < pixels; ++px) {
      tinyc_1x1_one_pixel(p, tinyc_1x1_source(p, input, px), filter, output + px * out_c);
    }
  }
}
