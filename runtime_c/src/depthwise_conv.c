/* tinyc: int8 DEPTHWISE_CONV_2D (see tinyc/depthwise_conv.h).
 *
 * Same arithmetic as TFLM's DepthwiseConvPerChannel: per output channel,
 * acc = sum w * (x + input_offset) over the taps inside the input, + bias,
 * MultiplyByQuantizedMultiplier, + output_offset, clamp. The filter rows and columns that land
 * inside the input are computed once per output pixel, so the tap loops have no branches.
 * No scratch memory: each output channel walks its taps with the channel stride. Pixel by
 * pixel, ascending or descending (see tinyc_depthwise_conv2d_s8). */
#include "tinyc/depthwise_conv.h"

#include <stdint.h>

#include "tinyc/quant.h"

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

/* Output pixel (oy, ox) of one image: every output channel, written to y[0 .. out_c). */
static void tinyc_dw_pixel(const tinyc_depthwise_conv2d_params_t *p, const int8_t *in_b,
                           const int8_t *filter, const int32_t *bias, int32_t oy, int32_t ox, int8_t *y) {
  const int32_t in_c = p->in_c;
  const int32_t out_c = p->out_c;
  const int32_t dm = p->depth_multiplier;
  const int32_t in_row = p->in_w * in_c;
  const int32_t w_row = p->filter_w * out_c; /* filter elements per filter row */
  const int32_t in_step_y = p->dilation_h * in_row;
  const int32_t in_step_x = p->dilation_w * in_c;
  const int32_t offset = p->input_offset;
  const int32_t iy0 = oy * p->stride_h - p->pad_top;
  const int32_t fy0 = tinyc_dw_first_tap(iy0, p->dilation_h);
  const int32_t fy1 = tinyc_dw_end_tap(iy0, p->dilation_h, p->in_h, p->filter_h);
  const int32_t ix0 = ox * p->stride_w - p->pad_left;
  const int32_t fx0 = tinyc_dw_first_tap(ix0, p->dilation_w);
  const int32_t fx1 = tinyc_dw_end_tap(ix0, p->dilation_w, p->in_w, p->filter_w);
  /* A window entirely outside the input has no taps (acc = 0): point anywhere valid. */
  const int32_t has_taps = fy0 < fy1 && fx0 < fx1;
  const int8_t *in_first = has_taps ? in_b + (iy0 + fy0 * p->dilation_h) * in_row +
                                          (ix0 + fx0 * p->dilation_w) * in_c
                                    : in_b;
  const int8_t *w_first = has_taps ? filter + fy0 * w_row + fx0 * out_c : filter;
  for (int32_t ic = 0; ic < in_c; ++ic) {
    for (int32_t m = 0; m < dm; ++m) {
      const int32_t oc = ic * dm + m;
      int32_t acc = 0;
      if (has_taps) {
        const int8_t *x_row = in_first + ic;
        const int8_t *w_rowp = w_first + oc;
        for (int32_t fy = fy0; fy < fy1; ++fy) {
          const int8_t *x = x_row;
          const int8_t *w = w_rowp;
          for (int32_t fx = fx0; fx < fx1; ++fx) {
            acc += (int32_t)*w * ((int32_t)*x + offset);
            x += in_step_x;
            w += out_c;
          }
          x_row += in_step_y;
          w_rowp += w_row;
        }
      }
      if (bias != 0) {
        acc += bias[oc];
      }
      acc = tinyc_mul_by_qm(acc, p->out_mult[oc], (int)p->out_shift[oc]);
      acc += p->output_offset;
      y[oc] = (int8_t)tinyc_clamp_i32(acc, p->act_min, p->act_max);
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
