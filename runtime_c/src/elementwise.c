/* tinyc: int8 element-wise ADD, SUB, MUL (see tinyc/elementwise.h). Integer math identical to
 * TFLM's reference AddFunc / SubElementwise / MulElementwise; rounding from tinyc/quant.h only. */
#include "tinyc/elementwise.h"

#include "tinyc/quant.h"

/* One contiguous run of the output: n elements, inputs read with strides sa and sb (0 = the same
 * element repeated, i.e. broadcast along this run). */
typedef void (*tinyc_row_fn)(const void *params, int32_t n, const int8_t *a, int32_t sa,
                             const int8_t *b, int32_t sb, int8_t *out);

/* ADD/SUB: TFLM scales both inputs to 2*max(s1, s2) after a left shift of 20 bits; the shifted
 * value |q - z| << 20 < 2^28 and the sum of two rescaled values (each < 2^27) cannot overflow.
 * MultiplyByQuantizedMultiplierSmallerThanOneExp is tinyc_mul_by_qm with shift <= 0. */
static inline int8_t add_sub_one(const tinyc_add_params_t *p, int8_t x, int8_t y, int subtract) {
  const int32_t shifted1 = (p->input1_offset + (int32_t)x) * ((int32_t)1 << p->left_shift);
  const int32_t shifted2 = (p->input2_offset + (int32_t)y) * ((int32_t)1 << p->left_shift);
  const int32_t scaled1 = tinyc_mul_by_qm(shifted1, p->input1_multiplier, (int)p->input1_shift);
  const int32_t scaled2 = tinyc_mul_by_qm(shifted2, p->input2_multiplier, (int)p->input2_shift);
  const int32_t raw = subtract ? scaled1 - scaled2 : scaled1 + scaled2;
  const int32_t out =
      tinyc_mul_by_qm(raw, p->output_multiplier, (int)p->output_shift) + p->output_offset;
  return (int8_t)tinyc_clamp_i32(out, p->act_min, p->act_max);
}

static void add_row(const void *params, int32_t n, const int8_t *a, int32_t sa, const int8_t *b,
                    int32_t sb, int8_t *out) {
  const tinyc_add_params_t *p = (const tinyc_add_params_t *)params;
  int32_t i;
  for (i = 0; i < n; ++i) {
    out[i] = add_sub_one(p, *a, *b, 0);
    a += sa;
    b += sb;
  }
}

static void sub_row(const void *params, int32_t n, const int8_t *a, int32_t sa, const int8_t *b,
                    int32_t sb, int8_t *out) {
  const tinyc_add_params_t *p = (const tinyc_add_params_t *)params;
  int32_t i;
  for (i = 0; i < n; ++i) {
    out[i] = add_sub_one(p, *a, *b, 1);
    a += sa;
    b += sb;
  }
}

/* MUL: |(q1 - z1) * (q2 - z2)| <= 256 * 256, well inside int32. */
static void mul_row(const void *params, int32_t n, const int8_t *a, int32_t sa, const int8_t *b,
                    int32_t sb, int8_t *out) {
  const tinyc_mul_params_t *p = (const tinyc_mul_params_t *)params;
  int32_t i;
  for (i = 0; i < n; ++i) {
    const int32_t prod = (p->input1_offset + (int32_t)*a) * (p->input2_offset + (int32_t)*b);
    const int32_t v =
        tinyc_mul_by_qm(prod, p->output_multiplier, (int)p->output_shift) + p->output_offset;
    out[i] = (int8_t)tinyc_clamp_i32(v, p->act_min, p->act_max);
    a += sa;
    b += sb;
  }
}

/* Walk the output box dims[0..5] row-major; the last dimension is one call of `row`. The outer
 * five dimensions advance like an odometer, so each step costs O(1) amortised. */
static void broadcast_walk(const void *params, const int32_t *dims, const int32_t *s1,
                           const int32_t *s2, const int8_t *in1, const int8_t *in2, int8_t *out,
                           tinyc_row_fn row) {
  const int last = TINYC_ELEMENTWISE_MAX_DIMS - 1;
  int32_t idx[TINYC_ELEMENTWISE_MAX_DIMS - 1] = {0, 0, 0, 0, 0};
  int32_t outer = 1;
  int32_t off1 = 0;
  int32_t off2 = 0;
  int32_t k;
  int d;
  for (d = 0; d < last; ++d) {
    outer *= dims[d];
  }
  for (k = 0; k < outer; ++k) {
    row(params, dims[last], in1 + off1, s1[last], in2 + off2, s2[last], out);
    out += dims[last];
    for (d = last - 1; d >= 0; --d) {
      off1 += s1[d];
      off2 += s2[d];
      if (++idx[d] < dims[d]) {
        break;
      }
      off1 -= s1[d] * dims[d];
      off2 -= s2[d] * dims[d];
      idx[d] = 0;
    }
  }
}

void tinyc_add_s8(const tinyc_add_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out) {
  add_row(p, p->size, in1, 1, in2, 1, out);
}

void tinyc_add_broadcast_s8(const tinyc_add_params_t *p, const int8_t *in1, const int8_t *in2,
                            int8_t *out) {
  broadcast_walk(p, p->dims, p->in1_strides, p->in2_strides, in1, in2, out, add_row);
}

void tinyc_sub_s8(const tinyc_add_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out) {
  sub_row(p, p->size, in1, 1, in2, 1, out);
}

void tinyc_sub_broadcast_s8(const tinyc_add_params_t *p, const int8_t *in1, const int8_t *in2,
                            int8_t *out) {
  broadcast_walk(p, p->dims, p->in1_strides, p->in2_strides, in1, in2, out, sub_row);
}

void tinyc_mul_s8(const tinyc_mul_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out) {
  mul_row(p, p->size, in1, 1, in2, 1, out);
}

void tinyc_mul_broadcast_s8(const tinyc_mul_params_t *p, const int8_t *in1, const int8_t *in2,
                            int8_t *out) {
  broadcast_walk(p, p->dims, p->in1_strides, p->in2_strides, in1, in2, out, mul_row);
}
