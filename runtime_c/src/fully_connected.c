/* tinyc: FULLY_CONNECTED kernels; see tinyc/fully_connected.h.
 *
 * Every kernel computes TFLM's integer sum per output value. On cores with the DSP extension the
 * dot products run on SMLAD, several output rows per pass so that each input word is loaded and
 * widened once for all of them:
 * - tinyc_fully_connected_s8_packed (constant weights): the weights were widened to int16 with the
 *   filter offset added and interleaved at compile time and the input offset folded into the bias,
 *   so a pass of four rows costs per four inputs one load and two SXTB16 of the input and, per row,
 *   two words of weights and two SMLAD;
 * - tinyc_fully_connected_s8 / _pc (the model's [out][in] layout, as trained layers keep it): the
 *   input offset is added in the int16 lanes (SADD16) and each row's weights widened at run time.
 * Elsewhere (host, Cortex-M0/M3) the same sums in portable C. */
#include "tinyc/fully_connected.h"

#include <stddef.h>

#include "tinyc/quant.h"
#include "tinyc/simd.h"

/* The first n (1..3) bytes at p as the low bytes of a word, the others 0: a chunk's tail without
 * reading past the input. */
static inline uint32_t tinyc_fc_load_tail(const int8_t *p, int32_t n) {
  uint32_t v = (uint8_t)p[0];
  if (n > 1) {
    v |= (uint32_t)(uint8_t)p[1] << 8;
  }
  if (n > 2) {
    v |= (uint32_t)(uint8_t)p[2] << 16;
  }
  return v;
}

/* ------------------------------------------------------------------ the model's layout */

/* acc[r] = sum_d w[r * depth + d] * (x[d] + input_offset) for rows r < `rows` (1..4, a constant
 * where inlined). |x + input_offset| <= 255 fits the int16 lanes. */
TINYC_INLINE void tinyc_fc_rows(const int8_t *x, const int8_t *w, int32_t depth, int32_t input_offset,
                                const int rows, int32_t acc[4]) {
  const int8_t *const w0 = w;
  const int8_t *const w1 = w + (rows > 1 ? depth : 0);
  const int8_t *const w2 = w + (rows > 2 ? 2 * depth : 0);
  const int8_t *const w3 = w + (rows > 3 ? 3 * depth : 0);
  int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  int32_t d = 0;
#if TINYC_DSP
  const int32_t off2 = (int32_t)(((uint32_t)input_offset & 0xffffu) * 0x10001u);
  for (; d + 4 <= depth; d += 4) {
    const uint32_t xv = tinyc_load4(x + d);
    const int32_t xe = __sadd16(__sxtb16(xv), off2), xo = __sadd16(tinyc_sxtb16_ror8(xv), off2);
    uint32_t wv = tinyc_load4(w0 + d);
    a0 = __smlad(xe, __sxtb16(wv), a0);
    a0 = __smlad(xo, tinyc_sxtb16_ror8(wv), a0);
    if (rows > 1) {
      wv = tinyc_load4(w1 + d);
      a1 = __smlad(xe, __sxtb16(wv), a1);
      a1 = __smlad(xo, tinyc_sxtb16_ror8(wv), a1);
    }
    if (rows > 2) {
      wv = tinyc_load4(w2 + d);
      a2 = __smlad(xe, __sxtb16(wv), a2);
      a2 = __smlad(xo, tinyc_sxtb16_ror8(wv), a2);
    }
    if (rows > 3) {
      wv = tinyc_load4(w3 + d);
      a3 = __smlad(xe, __sxtb16(wv), a3);
      a3 = __smlad(xo, tinyc_sxtb16_ror8(wv), a3);
    }
  }
#endif
  for (; d < depth; ++d) {
    const int32_t xv = (int32_t)x[d] + input_offset;
    a0 += (int32_t)w0[d] * xv;
    if (rows > 1) {
      a1 += (int32_t)w1[d] * xv;
    }
    if (rows > 2) {
      a2 += (int32_t)w2[d] * xv;
    }
    if (rows > 3) {
      a3 += (int32_t)w3[d] * xv;
    }
  }
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
}

/* One batch row of the model-layout kernels: the per-row sums sum_d w[o][d] * (x[d] + offset),
 * four rows per pass, each passed to `emit` through acc. */
#define TINYC_FC_MODEL_ROWS(depth, out_depth, x, weights, input_offset, EMIT)                \
  do {                                                                                      \
    int32_t o_ = 0;                                                                         \
    int32_t acc_[4];                                                                        \
    for (; o_ + 4 <= (out_depth); o_ += 4) {                                                \
      tinyc_fc_rows((x), (weights) + o_ * (depth), (depth), (input_offset), 4, acc_);       \
      EMIT(o_, acc_[0]);                                                                    \
      EMIT(o_ + 1, acc_[1]);                                                                \
      EMIT(o_ + 2, acc_[2]);                                                                \
      EMIT(o_ + 3, acc_[3]);                                                                \
    }                                                                                       \
    for (; o_ < (out_depth); ++o_) {                                                        \
      tinyc_fc_rows((x), (weights) + o_ * (depth), (depth), (input_offset), 1, acc_);       \
      EMIT(o_, acc_[0]);                                                                    \
    }                                                                                       \
  } while (0)

void tinyc_fully_connected_s8(const tinyc_fully_connected_params_t *p, const int8_t *input,
                              const int8_t *weights, const int32_t *bias, int8_t *output) {
  const int32_t depth = p->accum_depth;
  const int32_t out_depth = p->output_depth;
  const int32_t mult = p->output_multiplier, shift = p->output_shift;
  const int32_t out_off = p->output_offset, lo = p->act_min, hi = p->act_max;
  int32_t b;
  for (b = 0; b < p->batches; ++b) {
    const int8_t *x = input + b * depth;
    int8_t *y = output + b * out_depth;
    if (p->filter_offset == 0) { /* symmetric weights, the usual case */
#define TINYC_FC_EMIT(o, a) y[o] = tinyc_requant_s8((a) + (bias != NULL ? bias[o] : 0), mult, shift, out_off, lo, hi)
      TINYC_FC_MODEL_ROWS(depth, out_depth, x, weights, p->input_offset, TINYC_FC_EMIT);
#undef TINYC_FC_EMIT
      continue;
    }
    for (int32_t o = 0; o < out_depth; ++o) {
      const int8_t *w = weights + o * depth;
      int32_t acc = 0;
      for (int32_t d = 0; d < depth; ++d) {
        acc += ((int32_t)w[d] + p->filter_offset) * ((int32_t)x[d] + p->input_offset);
      }
      y[o] = tinyc_requant_s8(acc + (bias != NULL ? bias[o] : 0), mult, shift, out_off, lo, hi);
    }
  }
}

void tinyc_fully_connected_s8_pc(const tinyc_fully_connected_pc_params_t *p, const int8_t *input,
                                 const int8_t *weights, const int32_t *bias, int8_t *output) {
  const int32_t depth = p->accum_depth;
  const int32_t out_depth = p->output_depth;
  const int32_t *const mult = p->output_multiplier;
  const int32_t *const shift = p->output_shift;
  const int32_t out_off = p->output_offset, lo = p->act_min, hi = p->act_max;
  int32_t b;
  for (b = 0; b < p->batches; ++b) {
    const int8_t *x = input + b * depth;
    int8_t *y = output + b * out_depth;
#define TINYC_FC_EMIT(o, a) \
  y[o] = tinyc_requant_s8((a) + (bias != NULL ? bias[o] : 0), mult[o], shift[o], out_off, lo, hi)
    TINYC_FC_MODEL_ROWS(depth, out_depth, x, weights, p->input_offset, TINYC_FC_EMIT);
#undef TINYC_FC_EMIT
  }
}

/* ------------------------------------------------------------------ packed int16 weights */

#if !TINYC_DSP
/* The two int16 lanes of a packed weight word. */
static inline int32_t tinyc_fc_lo(int32_t w) {
  return (int32_t)(int16_t)(uint16_t)((uint32_t)w & 0xffffu);
}
static inline int32_t tinyc_fc_hi(int32_t w) {
  return (int32_t)(int16_t)(uint16_t)((uint32_t)w >> 16);
}
#endif

/* acc[r] += one chunk (four inputs, the word xv) of `rows` packed rows at *w; *w advances past them. */
TINYC_INLINE void tinyc_fc_chunk(uint32_t xv, const int32_t **w, const int rows, int32_t *a0, int32_t *a1,
                                 int32_t *a2, int32_t *a3) {
#if TINYC_DSP
  const int32_t xe = __sxtb16(xv), xo = tinyc_sxtb16_ror8(xv);
  int32_t we, wo;
  tinyc_ldrd_next(w, &we, &wo);
  *a0 = __smlad(xe, we, *a0);
  *a0 = __smlad(xo, wo, *a0);
  if (rows > 1) {
    tinyc_ldrd_next(w, &we, &wo);
    *a1 = __smlad(xe, we, *a1);
    *a1 = __smlad(xo, wo, *a1);
  }
  if (rows > 2) {
    tinyc_ldrd_next(w, &we, &wo);
    *a2 = __smlad(xe, we, *a2);
    *a2 = __smlad(xo, wo, *a2);
  }
  if (rows > 3) {
    tinyc_ldrd_next(w, &we, &wo);
    *a3 = __smlad(xe, we, *a3);
    *a3 = __smlad(xo, wo, *a3);
  }
#else
  const int32_t x0 = (int8_t)(xv & 0xffu), x1 = (int8_t)((xv >> 8) & 0xffu);
  const int32_t x2 = (int8_t)((xv >> 16) & 0xffu), x3 = (int8_t)(xv >> 24);
  int32_t *const acc[4] = {a0, a1, a2, a3};
  for (int r = 0; r < rows; ++r) {
    const int32_t we = (*w)[0], wo = (*w)[1];
    *acc[r] += x0 * tinyc_fc_lo(we) + x2 * tinyc_fc_hi(we) + x1 * tinyc_fc_lo(wo) + x3 * tinyc_fc_hi(wo);
    *w += 2;
  }
#endif
}

/* One block of `rows` rows (a constant where inlined) for one batch row x; returns the block's
 * weights end. */
TINYC_INLINE const int32_t *tinyc_fc_block(const int8_t *x, const int32_t *w, int32_t depth, const int rows,
                                           int32_t acc[4]) {
  int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  if (rows <= 2) { /* fewer rows: more chunks per pass, the loop's own instructions amortised */
    const int8_t *const x16 = x + (depth & ~(int32_t)15);
    for (; x < x16; x += 16) {
      tinyc_fc_chunk(tinyc_load4(x), &w, rows, &a0, &a1, &a2, &a3);
      tinyc_fc_chunk(tinyc_load4(x + 4), &w, rows, &a0, &a1, &a2, &a3);
      tinyc_fc_chunk(tinyc_load4(x + 8), &w, rows, &a0, &a1, &a2, &a3);
      tinyc_fc_chunk(tinyc_load4(x + 12), &w, rows, &a0, &a1, &a2, &a3);
    }
  }
  const int8_t *const x_end = x + ((rows <= 2 ? depth & 15 : depth) & ~(int32_t)7);
  for (; x < x_end; x += 8) {
    tinyc_fc_chunk(tinyc_load4(x), &w, rows, &a0, &a1, &a2, &a3);
    tinyc_fc_chunk(tinyc_load4(x + 4), &w, rows, &a0, &a1, &a2, &a3);
  }
  if ((depth & 4) != 0) {
    tinyc_fc_chunk(tinyc_load4(x), &w, rows, &a0, &a1, &a2, &a3);
    x += 4;
  }
  if ((depth & 3) != 0) {
    tinyc_fc_chunk(tinyc_fc_load_tail(x, depth & 3), &w, rows, &a0, &a1, &a2, &a3);
  }
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
  return w;
}

/* acc (twice the weights times the input) with the row's constants rq = {2 * bias, q, rnd, e}. */
TINYC_INLINE int32_t tinyc_fc_rq(int32_t acc, const int32_t *rq) {
  return tinyc_rq(acc + rq[0], rq[1], rq[2], rq[3]);
}

/* One batch row of the packed kernel; full: the clamp is int8's own range (a constant where inlined). */
TINYC_INLINE void tinyc_fc_packed_row(const tinyc_fully_connected_packed_params_t *p, const int8_t *x, int8_t *y,
                                      const int full) {
  const int32_t depth = p->accum_depth;
  const int32_t out_depth = p->output_depth;
  const int32_t lo = p->act_min, hi = p->act_max;
  const int32_t *w = p->weights;
  const int32_t *rq = p->requant;
  int32_t acc[4];
  int32_t o = 0;
  for (; o + 4 <= out_depth; o += 4, rq += 16) {
    w = tinyc_fc_block(x, w, depth, 4, acc);
    y[o] = tinyc_rq_clamp(tinyc_fc_rq(acc[0], rq), full, lo, hi);
    y[o + 1] = tinyc_rq_clamp(tinyc_fc_rq(acc[1], rq + 4), full, lo, hi);
    y[o + 2] = tinyc_rq_clamp(tinyc_fc_rq(acc[2], rq + 8), full, lo, hi);
    y[o + 3] = tinyc_rq_clamp(tinyc_fc_rq(acc[3], rq + 12), full, lo, hi);
  }
  if (o + 2 <= out_depth) {
    w = tinyc_fc_block(x, w, depth, 2, acc);
    y[o] = tinyc_rq_clamp(tinyc_fc_rq(acc[0], rq), full, lo, hi);
    y[o + 1] = tinyc_rq_clamp(tinyc_fc_rq(acc[1], rq + 4), full, lo, hi);
    o += 2;
    rq += 8;
  }
  if (o < out_depth) {
    (void)tinyc_fc_block(x, w, depth, 1, acc);
    y[o] = tinyc_rq_clamp(tinyc_fc_rq(acc[0], rq), full, lo, hi);
  }
}

void tinyc_fully_connected_s8_packed(const tinyc_fully_connected_packed_params_t *p, const int8_t *input,
                                     int8_t *output) {
  const int full = p->act_min == -128 && p->act_max == 127;
  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t *const x = input + b * p->accum_depth;
    int8_t *const y = output + b * p->output_depth;
    if (full) {
      tinyc_fc_packed_row(p, x, y, 1);
    } else {
      tinyc_fc_packed_row(p, x, y, 0);
    }
  }
}
