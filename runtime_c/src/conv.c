/* tinyc: int8 CONV_2D (see tinyc/conv.h).
 *
 * Same arithmetic as TFLM's ConvPerChannel: acc = sum w * (x + input_offset) over the taps
 * inside the input, + bias, MultiplyByQuantizedMultiplier, + output_offset, clamp. Instead of
 * testing every tap against the image border, the range of filter rows and columns that land
 * inside the input is computed once per output pixel, so the inner loops have no branches.
 * The compiler has checked that the int32 accumulator cannot overflow. Unpadded 1x1 layers
 * take tinyc_conv2d_s8_1x1 (conv_1x1.c) instead. */
#include "tinyc/conv.h"

#include <stdint.h>

#include "tinyc/dot.h"
#include "tinyc/quant.h"

/* The first tap k >= 0 with origin + k * dilation >= 0. */
static int32_t tinyc_conv_first_tap(int32_t origin, int32_t dilation) {
  return origin >= 0 ? 0 : (-origin + dilation - 1) / dilation;
}

/* One past the last tap k < n with origin + k * dilation < size. */
static int32_t tinyc_conv_end_tap(int32_t origin, int32_t dilation, int32_t size, int32_t n) {
  const int32_t room = size - origin;
  if (room <= 0) {
    return 0;
  }
  const int32_t end = (room + dilation - 1) / dilation;
  return end < n ? end : n;
}

/* sum w[i] * (x[i] + offset): the offset is added per element, exactly as TFLM does, so no
 * intermediate can overflow when the final sum does not. */
static int32_t tinyc_conv_dot(const int8_t *w, const int8_t *x, int32_t n, int32_t offset) {
  int32_t acc = 0;
  int32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    acc += (int32_t)w[i] * ((int32_t)x[i] + offset);
    acc += (int32_t)w[i + 1] * ((int32_t)x[i + 1] + offset);
    acc += (int32_t)w[i + 2] * ((int32_t)x[i + 2] + offset);
    acc += (int32_t)w[i + 3] * ((int32_t)x[i + 3] + offset);
  }
  for (; i < n; ++i) {
    acc += (int32_t)w[i] * ((int32_t)x[i] + offset);
  }
  return acc;
}

static int8_t tinyc_conv_requant(const tinyc_conv2d_params_t *p, int32_t acc, const int32_t *bias,
                                 int32_t oc) {
  return tinyc_requant_s8(acc + (bias != 0 ? bias[oc] : 0), p->out_mult[oc], p->out_shift[oc], p->output_offset,
                          p->act_min, p->act_max);
}

/* Whether to produce the output pixels from the last one down: when the output starts above
 * the input (the planner may overlap them, memmove style), descending order reads every input
 * byte before it is overwritten, as ascending order does when the output starts at or below
 * the input. The distances that make either safe come from tinyc/ops/base.py window_overlap. */
static int tinyc_conv_descending(const int8_t *input, const int8_t *output) {
  return (uintptr_t)output > (uintptr_t)input;
}

/* One group, no column dilation (the layers whose folded_bias the compiler set): each filter row
 * reads cols * in_c contiguous input bytes, so a window is `rows` plain dot products per output
 * channel, two channels per pass. A window wholly inside the input adds folded_bias
 * (sum w * (x + off) + bias = sum w * x + folded_bias exactly); a border window adds bias and
 * off times the weight sum of the taps that exist, the same integer TFLM's per-tap offset gives.
 * x: the window's first tap inside the input; rows x cols taps from filter tap (fy0, fx0). */
static void tinyc_conv2d_s8_pixel_rows(const tinyc_conv2d_params_t *p, const int8_t *x, const int8_t *filter,
                                       const int32_t *bias, int32_t fy0, int32_t rows, int32_t fx0, int32_t cols,
                                       int8_t *y) {
  const int32_t w_row = p->filter_w * p->in_c;      /* filter bytes of one filter row */
  const int32_t w_channel = p->filter_h * w_row;    /* filter bytes per output channel */
  const int32_t run = cols * p->in_c;               /* bytes of one row of the window inside the input */
  const int32_t x_row = p->dilation_h * p->in_w * p->in_c;
  const int whole = rows == p->filter_h && cols == p->filter_w;
  const int32_t off = p->input_offset;
  const int32_t *const b = whole ? p->folded_bias : bias;
  const tinyc_requant_t r = {b, p->out_mult, p->out_shift, p->output_offset, p->act_min, p->act_max};
  for (int32_t oc = 0; oc < p->out_c; oc += 2) {
    const int8_t *w0 = filter + oc * w_channel + fy0 * w_row + fx0 * p->in_c;
    const int8_t *w1 = oc + 1 < p->out_c ? w0 + w_channel : w0; /* an odd last channel computed twice */
    int32_t a0 = 0, a1 = 0;
    const int8_t *xr = x;
    if (whole) {
      for (int32_t fy = 0; fy < rows; ++fy, xr += x_row, w0 += w_row, w1 += w_row) {
        int32_t acc[2];
        tinyc_dot_s8_1x2(xr, w0, w1, run, acc);
        a0 += acc[0];
        a1 += acc[1];
      }
    } else {
      int32_t s0 = 0, s1 = 0;
      for (int32_t fy = 0; fy < rows; ++fy, xr += x_row, w0 += w_row, w1 += w_row) {
        int32_t acc[2], sums[2];
        tinyc_dot_s8_1x2_sums(xr, w0, w1, run, acc, sums);
        a0 += acc[0];
        a1 += acc[1];
        s0 += sums[0];
        s1 += sums[1];
      }
      a0 += off * s0;
      a1 += off * s1;
    }
    y[oc] = tinyc_requant_ch(&r, a0, oc);
    if (oc + 1 < p->out_c) {
      y[oc + 1] = tinyc_requant_ch(&r, a1, oc + 1);
    }
  }
}

/* Output pixel (oy, ox) of one image: every output channel, written to y[0 .. out_c). */
static void tinyc_conv2d_s8_pixel(const tinyc_conv2d_params_t *p, const int8_t *in_b, const int8_t *filter,
                                  const int32_t *bias, int32_t oy, int32_t ox, int8_t *y) {
  const int32_t fic = p->filter_in_c;
  const int32_t filters_per_group = p->out_c / (p->in_c / fic);
  const int32_t in_row = p->in_w * p->in_c;          /* bytes per input row */
  const int32_t w_tap_row = p->filter_w * fic;       /* filter bytes per filter row */
  const int32_t w_channel = p->filter_h * w_tap_row; /* filter bytes per output channel */
  const int32_t in_step_y = p->dilation_h * in_row;
  const int32_t in_step_x = p->dilation_w * p->in_c;
  const int32_t iy0 = oy * p->stride_h - p->pad_top;
  const int32_t fy0 = tinyc_conv_first_tap(iy0, p->dilation_h);
  const int32_t fy1 = tinyc_conv_end_tap(iy0, p->dilation_h, p->in_h, p->filter_h);
  const int32_t ix0 = ox * p->stride_w - p->pad_left;
  const int32_t fx0 = tinyc_conv_first_tap(ix0, p->dilation_w);
  const int32_t fx1 = tinyc_conv_end_tap(ix0, p->dilation_w, p->in_w, p->filter_w);
  /* The input pixel of the first valid tap; each group reads its own channel slice.
   * A window entirely outside the input has no taps: point anywhere valid. */
  const int32_t has_taps = fy0 < fy1 && fx0 < fx1;
  const int8_t *in_first = has_taps ? in_b + (iy0 + fy0 * p->dilation_h) * in_row +
                                          (ix0 + fx0 * p->dilation_w) * p->in_c
                                    : in_b;
  if (p->folded_bias != 0 && has_taps) { /* folded only for one group and dilation_w 1 */
    tinyc_conv2d_s8_pixel_rows(p, in_first, filter, bias, fy0, fy1 - fy0, fx0, fx1 - fx0, y);
    return;
  }
  for (int32_t oc = 0; oc < p->out_c; ++oc) {
    const int8_t *in_g = in_first + (oc / filters_per_group) * fic;
    const int8_t *w_oc = filter + oc * w_channel;
    if (has_taps) {
      w_oc += fy0 * w_tap_row + fx0 * fic;
    }
    int32_t acc = 0;
    for (int32_t fy = fy0; has_taps && fy < fy1; ++fy) {
      const int8_t *x = in_g;
      const int8_t *w = w_oc;
      for (int32_t fx = fx0; fx < fx1; ++fx) {
        acc += tinyc_conv_dot(w, x, fic, p->input_offset);
        x += in_step_x;
        w += fic;
      }
      in_g += in_step_y;
      w_oc += w_tap_row;
    }
    y[oc] = tinyc_conv_requant(p, acc, bias, oc);
  }
}

void tinyc_conv2d_s8(const tinyc_conv2d_params_t *p, const int8_t *input, const int8_t *filter,
                     const int32_t *bias, int8_t *output) {
  const int32_t in_image = p->in_h * p->in_w * p->in_c; /* bytes per input image */
  const int32_t pixels = p->out_h * p->out_w;
  if (tinyc_conv_descending(input, output)) {
    for (int32_t b = p->batches - 1; b >= 0; --b) {
      for (int32_t px = pixels - 1; px >= 0; --px) {
        tinyc_conv2d_s8_pixel(p, input + b * in_image, filter, bias, px / p->out_w, px % p->out_w,
                              output + (b * pixels + px) * p->out_c);
      }
    }
  } else {
    for (int32_t b = 0; b < p->batches; ++b) {
      for (int32_t px = 0; px < pixels; ++px) {
        tinyc_conv2d_s8_pixel(p, input + b * in_image, filter, bias, px / p->out_w, px % p->out_w,
                              output + (b * pixels + px) * p->out_c);
      }
    }
  }
}
