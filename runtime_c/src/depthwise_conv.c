/* tinyc: int8 DEPTHWISE_CONV_2D (see tinyc/depthwise_conv.h).
 *
 * Same arithmetic as TFLM's DepthwiseConvPerChannel: per output channel,
 * acc = sum w * (x + input_offset) over the taps inside the input, + bias,
 * MultiplyByQuantizedMultiplier, + output_offset, clamp. The filter rows and columns that land
 * inside the input are computed once per output pixel, so the tap loops have no branches.
 * tinyc_depthwise_conv2d_s8 needs no scratch memory: each output channel walks its taps with
 * the channel stride, pixel by pixel, ascending or descending. tinyc_depthwise_conv2d_s8_channels
 * goes channel by channel through a one-channel temporary, so that its output may start exactly
 * where its input starts. */
#include "tinyc/depthwise_conv.h"

#include <stdint.h>

#include "tinyc/quant.h"
#include "tinyc/simd.h"

/* The first tap k >= 0 with origin + k * dilation >= 0. */
static int32_t tinyc_dw_first_tap(int32_t origin, int32_t dilation) {
  return origin >= 0 ? 0 : (-origin + dilation - 1) / dilation;
}

/* One past the last tap k < n with origin + k * dilation < size. */
static int32_t tinyc_dw_end_tap(int32_t origin, int32_t dilation, int32_t size, int32_t n) {
  const int32_t room = size - origin;
  if (room <= 0) {
    return 0;
  }
  const int32_t end = (room + dilation - 1) / dilation;
  return end < n ? end : n;
}

/* The taps of output pixel (oy, ox) that land inside the input: filter rows [fy0, fy1) and
 * columns [fx0, fx1), and the input pixel (iy, ix) of the first of them. */
typedef struct {
  int32_t fy0, fy1, fx0, fx1;
  int32_t iy, ix;
} tinyc_dw_window_t;

/* Whether the window of output pixel (oy, ox) has a tap inside the input (if not, acc = 0). */
static int tinyc_dw_window(const tinyc_depthwise_conv2d_params_t *p, int32_t oy, int32_t ox,
                           tinyc_dw_window_t *win) {
  const int32_t iy0 = oy * p->stride_h - p->pad_top;
  const int32_t ix0 = ox * p->stride_w - p->pad_left;
  win->fy0 = tinyc_dw_first_tap(iy0, p->dilation_h);
  win->fy1 = tinyc_dw_end_tap(iy0, p->dilation_h, p->in_h, p->filter_h);
  win->fx0 = tinyc_dw_first_tap(ix0, p->dilation_w);
  win->fx1 = tinyc_dw_end_tap(ix0, p->dilation_w, p->in_w, p->filter_w);
  win->iy = iy0 + win->fy0 * p->dilation_h;
  win->ix = ix0 + win->fx0 * p->dilation_w;
  return win->fy0 < win->fy1 && win->fx0 < win->fx1;
}

/* sum w * (x + offset) over rows x rows, cols taps: x and w point at the first tap, the steps
 * are between taps of one row (x_col, w_col) and between rows (x_row, w_row). */
TINYC_INLINE int32_t tinyc_dw_acc(const int8_t *x, int32_t x_row, int32_t x_col, const int8_t *w, int32_t w_row,
                                  int32_t w_col, int32_t rows, int32_t cols, int32_t offset) {
  int32_t acc = 0;
  for (int32_t fy = 0; fy < rows; ++fy) {
    const int8_t *xp = x;
    const int8_t *wp = w;
    for (int32_t fx = 0; fx < cols; ++fx) {
      acc += (int32_t)*wp * ((int32_t)*xp + offset);
      xp += x_col;
      wp += w_col;
    }
    x += x_row;
    w += w_row;
  }
  return acc;
}

/* Output channel oc from its accumulator with the bias already added. */
TINYC_INLINE int8_t tinyc_dw_out(const tinyc_depthwise_conv2d_params_t *p, int32_t oc, int32_t acc) {
  return tinyc_requant_s8(acc, p->out_mult[oc], p->out_shift[oc], p->output_offset, p->act_min, p->act_max);
}

#if TINYC_DSP
/* The DSP loop over a window's taps for four channels: one word of input and one of filter per
 * tap, two 16x16 multiply-accumulates per half. With `sums`, also the four channels' weight sums
 * in int16 lanes (SADD16; exact while the window has at most 255 taps: |sum| <= 255 * 128). */
TINYC_INLINE void tinyc_dw_taps4_dsp(const int8_t *x, int32_t x_row, int32_t x_col, const int8_t *w, int32_t w_row,
                                     int32_t w_col, int32_t rows, int32_t cols, const int sums, int32_t a[4],
                                     int32_t s[2]) {
  int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, s02 = 0, s13 = 0;
  for (int32_t fy = 0; fy < rows; ++fy, x += x_row, w += w_row) {
    const int8_t *xp = x;
    const int8_t *wp = w;
    for (int32_t fx = 0; fx < cols; ++fx, xp += x_col, wp += w_col) {
      const uint32_t xv = tinyc_load4(xp), wv = tinyc_load4(wp);
      const int32_t xe = __sxtb16(xv), xo = tinyc_sxtb16_ror8(xv);
      const int32_t we = __sxtb16(wv), wo = tinyc_sxtb16_ror8(wv);
      a0 = __smlabb(xe, we, a0);
      a2 = __smlatt(xe, we, a2);
      a1 = __smlabb(xo, wo, a1);
      a3 = __smlatt(xo, wo, a3);
      if (sums) {
        s02 = __sadd16(s02, we);
        s13 = __sadd16(s13, wo);
      }
    }
  }
  a[0] = a0;
  a[1] = a1;
  a[2] = a2;
  a[3] = a3;
  s[0] = s02;
  s[1] = s13;
}
#endif

/* Depth multiplier 1, four channels at a time: acc[i] = sum over the window's taps of
 * w * (x + offset) for channels c..c+3 (offset 0 when the caller folded it into the bias). x and
 * w point at channel c of the first tap. The DSP path computes sum w * x + offset * sum w, the
 * same integer. */
TINYC_INLINE void tinyc_dw_acc4(const int8_t *x, int32_t x_row, int32_t x_col, const int8_t *w, int32_t w_row,
                                int32_t w_col, int32_t rows, int32_t cols, int32_t offset, int32_t acc[4]) {
#if TINYC_DSP
  int32_t s[2];
  if (offset == 0) {
    tinyc_dw_taps4_dsp(x, x_row, x_col, w, w_row, w_col, rows, cols, 0, acc, s);
    return;
  }
  if (rows * cols <= 255) {
    tinyc_dw_taps4_dsp(x, x_row, x_col, w, w_row, w_col, rows, cols, 1, acc, s);
    acc[0] += offset * (int32_t)(int16_t)(s[0] & 0xffff); /* channel c: s02's low lane */
    acc[1] += offset * (int32_t)(int16_t)(s[1] & 0xffff);
    acc[2] += offset * (s[0] >> 16); /* channel c + 2: the high lane, sign-extended */
    acc[3] += offset * (s[1] >> 16);
    return;
  }
#endif
  int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (int32_t fy = 0; fy < rows; ++fy, x += x_row, w += w_row) {
    const int8_t *xp = x;
    const int8_t *wp = w;
    for (int32_t fx = 0; fx < cols; ++fx, xp += x_col, wp += w_col) {
      a0 += (int32_t)wp[0] * ((int32_t)xp[0] + offset);
      a1 += (int32_t)wp[1] * ((int32_t)xp[1] + offset);
      a2 += (int32_t)wp[2] * ((int32_t)xp[2] + offset);
      a3 += (int32_t)wp[3] * ((int32_t)xp[3] + offset);
    }
  }
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
}

/* Depth multiplier 1: a window wholly inside the input uses the folded bias and no per-tap
 * offset (the same sum: sum w * (x + off) = sum w * x + off * sum w); a border window adds the
 * offset times the weight sum of the taps that exist (per tap without the DSP extension). */
static void tinyc_dw_pixel_dm1(const tinyc_depthwise_conv2d_params_t *p, const int8_t *in_b,
                               const int8_t *filter, const int32_t *bias, int32_t oy, int32_t ox, int8_t *y) {
  const int32_t ch = p->out_c;
  const int32_t in_row = p->in_w * ch;
  const int32_t w_row = p->filter_w * ch;
  tinyc_dw_window_t win;
  if (!tinyc_dw_window(p, oy, ox, &win)) {
    for (int32_t c = 0; c < ch; ++c) {
      y[c] = tinyc_dw_out(p, c, bias != 0 ? bias[c] : 0);
    }
    return;
  }
  const int32_t rows = win.fy1 - win.fy0, cols = win.fx1 - win.fx0;
  const int whole = p->folded_bias != 0 && rows == p->filter_h && cols == p->filter_w;
  const int32_t offset = whole ? 0 : p->input_offset;
  const int32_t *b = whole ? p->folded_bias : bias;
  const int8_t *x = in_b + win.iy * in_row + win.ix * ch;
  const int8_t *w = filter + win.fy0 * w_row + win.fx0 * ch;
  const int32_t x_row = p->dilation_h * in_row, x_col = p->dilation_w * ch;
  int32_t c = 0;
  for (; c + 4 <= ch; c += 4) {
    int32_t acc[4];
    tinyc_dw_acc4(x + c, x_row, x_col, w + c, w_row, ch, rows, cols, offset, acc);
    for (int32_t i = 0; i < 4; ++i) {
      y[c + i] = tinyc_dw_out(p, c + i, acc[i] + (b != 0 ? b[c + i] : 0));
    }
  }
  for (; c < ch; ++c) {
    const int32_t acc = tinyc_dw_acc(x + c, x_row, x_col, w + c, w_row, ch, rows, cols, offset);
    y[c] = tinyc_dw_out(p, c, acc + (b != 0 ? b[c] : 0));
  }
}

/* Output pixel (oy, ox) of one image: every output channel, written to y[0 .. out_c). */
static void tinyc_dw_pixel(const tinyc_depthwise_conv2d_params_t *p, const int8_t *in_b,
                           const int8_t *filter, const int32_t *bias, int32_t oy, int32_t ox, int8_t *y) {
  const int32_t in_c = p->in_c;
  const int32_t out_c = p->out_c;
  const int32_t dm = p->depth_multiplier;
  if (dm == 1) {
    tinyc_dw_pixel_dm1(p, in_b, filter, bias, oy, ox, y);
    return;
  }
  const int32_t in_row = p->in_w * in_c;
  const int32_t w_row = p->filter_w * out_c; /* filter elements per filter row */
  tinyc_dw_window_t win;
  const int has_taps = tinyc_dw_window(p, oy, ox, &win);
  const int32_t rows = win.fy1 - win.fy0;
  const int32_t cols = win.fx1 - win.fx0;
  /* A window entirely outside the input has no taps: point anywhere valid. */
  const int8_t *in_first = has_taps ? in_b + win.iy * in_row + win.ix * in_c : in_b;
  const int8_t *w_first = has_taps ? filter + win.fy0 * w_row + win.fx0 * out_c : filter;
  for (int32_t ic = 0; ic < in_c; ++ic) {
    for (int32_t m = 0; m < dm; ++m) {
      const int32_t oc = ic * dm + m;
      const int32_t acc = has_taps ? tinyc_dw_acc(in_first + ic, p->dilation_h * in_row, p->dilation_w * in_c,
                                                  w_first + oc, w_row, out_c, rows, cols, p->input_offset)
                                   : 0;
      y[oc] = tinyc_dw_out(p, oc, acc + (bias != 0 ? bias[oc] : 0));
    }
  }
}

/* Pixels in row-major order, or from the last one down when the output starts above the input
 * (memmove style): the planner may overlap output and input at the distances
 * tinyc/ops/base.py window_overlap proves for either order. */
void tinyc_depthwise_conv2d_s8(const tinyc_depthwise_conv2d_params_t *p, const int8_t *input,
                               const int8_t *filter, const int32_t *bias, int8_t *output) {
  const int32_t in_image = p->in_h * p->in_w * p->in_c;
  const int32_t pixels = p->out_h * p->out_w;
  if ((uintptr_t)output > (uintptr_t)input) {
    for (int32_t b = p->batches - 1; b >= 0; --b) {
      for (int32_t px = pixels - 1; px >= 0; --px) {
        tinyc_dw_pixel(p, input + b * in_image, filter, bias, px / p->out_w, px % p->out_w,
                       output + (b * pixels + px) * p->out_c);
      }
    }
  } else {
    for (int32_t b = 0; b < p->batches; ++b) {
      for (int32_t px = 0; px < pixels; ++px) {
        tinyc_dw_pixel(p, input + b * in_image, filter, bias, px / p->out_w, px % p->out_w,
                       output + (b * pixels + px) * p->out_c);
      }
    }
  }
}

/* Channel by channel (depth multiplier 1): input channel c of every image is copied to temp, then
 * output channel c is computed from temp. Output channel c only ever writes bytes
 * (pixel * out_c + c), and out_c == in_c, so when the output starts where the input starts every
 * byte it overwrites belongs to input channel c, already in temp; the other channels' bytes are
 * untouched. Any stride, padding and output size: the output may also be larger or smaller. */
void tinyc_depthwise_conv2d_s8_channels(const tinyc_depthwise_conv2d_params_t *p, const int8_t *input,
                                        const int8_t *filter, const int32_t *bias, int8_t *output,
                                        void *temp) {
  int8_t *const t = (int8_t *)temp;
  const int32_t c_count = p->in_c; /* == out_c: depth multiplier 1 */
  const int32_t in_pixels = p->in_h * p->in_w;
  const int32_t out_pixels = p->out_h * p->out_w;
  const int32_t all_in = p->batches * in_pixels;
  const int32_t w_row = p->filter_w * c_count;
  const int32_t x_step = p->dilation_h * p->in_w; /* temp bytes between filter rows */
  const int32_t *const folded = p->folded_bias;
  for (int32_t c = 0; c < c_count; ++c) {
    for (int32_t i = 0; i < all_in; ++i) {
      t[i] = input[i * c_count + c];
    }
    /* 3x3, dilation 1, offset folded: channel c's nine weights, read once per channel */
    const int k3x3 = folded != 0 && p->filter_h == 3 && p->filter_w == 3 && p->dilation_h == 1 &&
                     p->dilation_w == 1;
    int32_t k[9];
    for (int32_t i = 0; i < 9; ++i) {
      k[i] = k3x3 ? filter[i * c_count + c] : 0;
    }
    for (int32_t b = 0; b < p->batches; ++b) {
      const int8_t *t_b = t + b * in_pixels;
      int8_t *y = output + b * out_pixels * c_count + c;
      for (int32_t oy = 0; oy < p->out_h; ++oy) {
        /* the filter rows inside the input, once per output row */
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        const int32_t fy0 = tinyc_dw_first_tap(iy0, p->dilation_h);
        const int32_t fy1 = tinyc_dw_end_tap(iy0, p->dilation_h, p->in_h, p->filter_h);
        const int32_t rows = fy1 - fy0;
        const int8_t *t_row = t_b + (iy0 + fy0 * p->dilation_h) * p->in_w;
        const int8_t *w_c = filter + fy0 * w_row + c;
        for (int32_t ox = 0; ox < p->out_w; ++ox, y += c_count) {
          const int32_t ix0 = ox * p->stride_w - p->pad_left;
          const int32_t fx0 = tinyc_dw_first_tap(ix0, p->dilation_w);
          const int32_t fx1 = tinyc_dw_end_tap(ix0, p->dilation_w, p->in_w, p->filter_w);
          const int32_t cols = fx1 - fx0;
          if (rows <= 0 || cols <= 0) {
            *y = tinyc_dw_out(p, c, bias != 0 ? bias[c] : 0);
            continue;
          }
          const int8_t *x = t_row + ix0 + fx0 * p->dilation_w;
          const int8_t *w = w_c + fx0 * c_count;
          if (k3x3 && rows == 3 && cols == 3) { /* the whole 3x3 window, weights in registers */
            const int8_t *r0 = x, *r1 = x + p->in_w, *r2 = r1 + p->in_w;
            const int32_t acc = k[0] * r0[0] + k[1] * r0[1] + k[2] * r0[2] + k[3] * r1[0] + k[4] * r1[1] +
                                k[5] * r1[2] + k[6] * r2[0] + k[7] * r2[1] + k[8] * r2[2];
            *y = tinyc_dw_out(p, c, acc + folded[c]);
          } else if (folded != 0 && rows == p->filter_h && cols == p->filter_w) { /* no per-tap offset */
            *y = tinyc_dw_out(p, c, tinyc_dw_acc(x, x_step, p->dilation_w, w, w_row, c_count, rows, cols, 0) +
                                        folded[c]);
          } else {
            *y = tinyc_dw_out(p, c, tinyc_dw_acc(x, x_step, p->dilation_w, w, w_row, c_count, rows, cols,
                                                 p->input_offset) + (bias != 0 ? bias[c] : 0));
          }
        }
      }
    }
  }
}
