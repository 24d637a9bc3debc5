/* tinyc: forward kernels of partially trained layers; see tinyc/split_weights.h. */
#include "tinyc/split_weights.h"

#include <stddef.h>

#include "tinyc/quant.h"

void tinyc_conv2d_s8_split(const tinyc_conv2d_split_params_t *pp, const int8_t *input,
                           const int8_t *frozen, const int8_t *trained, const int32_t *bias, int8_t *output) {
  const tinyc_conv2d_params_t *const p = &pp->conv;
  const tinyc_split_t *const s = &pp->split;
  const int32_t fic = p->filter_in_c;
  const int32_t per_group = p->out_c / (p->in_c / fic);
  for (int32_t b = 0; b < p->batches; ++b) {
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        int8_t *const out = output + ((b * p->out_h + oy) * p->out_w + ox) * p->out_c;
        for (int32_t oc = 0; oc < p->out_c; ++oc) {
          const int32_t group = oc / per_group;
          int32_t acc = 0;
          for (int32_t ky = 0; ky < p->filter_h; ++ky) {
            const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
            if (iy < 0 || iy >= p->in_h) {
              continue;
            }
            for (int32_t kx = 0; kx < p->filter_w; ++kx) {
              const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dilation_w;
              if (ix < 0 || ix >= p->in_w) {
                continue;
              }
              const int8_t *const xp = input + ((b * p->in_h + iy) * p->in_w + ix) * p->in_c + group * fic;
              const int32_t row = (oc * p->filter_h + ky) * p->filter_w + kx;
              for (int32_t ci = 0; ci < fic; ++ci) {
                acc += (int32_t)tinyc_split_w(s, frozen, trained, row, ci) * ((int32_t)xp[ci] + p->input_offset);
              }
            }
          }
          if (bias != NULL) {
            acc += bias[oc];
          }
          out[oc] = tinyc_requant_s8(acc, p->out_mult[oc], p->out_shift[oc], p->output_offset, p->act_min,
                                     p->act_max);
        }
      }
    }
  }
}

void tinyc_depthwise_conv2d_s8_split(const tinyc_depthwise_split_params_t *pp,
                                     const int8_t *input, const int8_t *frozen, const int8_t *trained,
                                     const int32_t *bias, int8_t *output) {
  const tinyc_depthwise_conv2d_params_t *const p = &pp->conv;
  const tinyc_split_t *const s = &pp->split;
  const int32_t dm = p->depth_multiplier;
  for (int32_t b = 0; b < p->batches; ++b) {
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        int8_t *const out = output + ((b * p->out_h + oy) * p->out_w + ox) * p->out_c;
        for (int32_t c = 0; c < p->in_c; ++c) {
          for (int32_t m = 0; m < dm; ++m) {
            const int32_t oc = c * dm + m;
            int32_t acc = 0;
            for (int32_t ky = 0; ky < p->filter_h; ++ky) {
              const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
              if (iy < 0 || iy >= p->in_h) {
                continue;
              }
              for (int32_t kx = 0; kx < p->filter_w; ++kx) {
                const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dilation_w;
                if (ix < 0 || ix >= p->in_w) {
                  continue;
                }
                const int32_t x = input[((b * p->in_h + iy) * p->in_w + ix) * p->in_c + c];
                acc += (int32_t)tinyc_split_w(s, frozen, trained, ky * p->filter_w + kx, oc) * (x + p->input_offset);
              }
            }
            if (bias != NULL) {
              acc += bias[oc];
            }
            out[oc] = tinyc_requant_s8(acc, p->out_mult[oc], p->out_shift[oc], p->output_offset, p->act_min,
                                       p->act_max);
          }
        }
      }
    }
  }
}

void tinyc_fully_connected_s8_split(const tinyc_fully_connected_split_params_t *pp,
                                    const int8_t *input, const int8_t *frozen, const int8_t *trained,
                                    const int32_t *bias, int8_t *output) {
  const tinyc_fully_connected_params_t *const p = &pp->fc;
  const tinyc_split_t *const s = &pp->split;
  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t *const x = input + b * p->accum_depth;
    for (int32_t o = 0; o < p->output_depth; ++o) {
      int32_t acc = 0;
      for (int32_t d = 0; d < p->accum_depth; ++d) {
        acc += ((int32_t)tinyc_split_w(s, frozen, trained, o, d) + p->filter_offset) * ((int32_t)x[d] + p->input_offset);
      }
      if (bias != NULL) {
        acc += bias[o];
      }
      output[b * p->output_depth + o] = tinyc_requant_s8(acc, p->output_multiplier, p->output_shift,
                                                         p->output_offset, p->act_min, p->act_max);
    }
  }
}

void tinyc_fully_connected_s8_pc_split(const tinyc_fully_connected_pc_split_params_t *pp,
                                       const int8_t *input, const int8_t *frozen, const int8_t *trained,
                                       const int32_t *bias, int8_t *output) {
  const tinyc_fully_connected_pc_params_t *const p = &pp->fc;
  const tinyc_split_t *const s = &pp->split;
  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t *const x = input + b * p->accum_depth;
    for (int32_t o = 0; o < p->output_depth; ++o) {
      int32_t acc = 0;
      for (int32_t d = 0; d < p->accum_depth; ++d) {
        acc += (int32_t)tinyc_split_w(s, frozen, trained, o, d) * ((int32_t)x[d] + p->input_offset);
      }
      if (bias != NULL) {
        acc += bias[o];
      }
      output[b * p->output_depth + o] = tinyc_requant_s8(acc, p->output_multiplier[o], p->output_shift[o],
                                                         p->output_offset, p->act_min, p->act_max);
    }
  }
}
