/* tinyc: int8 dot products without offsets, the inner loops of the convolution kernels: several
 * outputs per pass so that each load serves more than one multiply-accumulate, SMLAD on cores
 * with the DSP extension (four MACs per two instructions), portable C elsewhere. The caller
 * guarantees the int32 sums cannot overflow (tinyc/ops/_conv_math.py check_accumulator). */
#ifndef TINYC_DOT_H
#define TINYC_DOT_H

#include <stdint.h>

#include "tinyc/quant.h"
#include "tinyc/simd.h"

/* acc[i][j] = sum_k x_i[k] * w_j[k] for two pixels and two output channels. */
TINYC_INLINE void tinyc_dot_s8_2x2(const int8_t *x0, const int8_t *x1, const int8_t *w0, const int8_t *w1,
                                   int32_t n, int32_t acc[4]) {
  int32_t a00 = 0, a01 = 0, a10 = 0, a11 = 0;
  int32_t k = 0;
#if TINYC_DSP
  for (; k + 4 <= n; k += 4) {
    const uint32_t xa = tinyc_load4(x0 + k), xb = tinyc_load4(x1 + k);
    const uint32_t wa = tinyc_load4(w0 + k), wb = tinyc_load4(w1 + k);
    const int32_t xa_e = __sxtb16(xa), xa_o = tinyc_sxtb16_ror8(xa);
    const int32_t xb_e = __sxtb16(xb), xb_o = tinyc_sxtb16_ror8(xb);
    const int32_t wa_e = __sxtb16(wa), wa_o = tinyc_sxtb16_ror8(wa);
    const int32_t wb_e = __sxtb16(wb), wb_o = tinyc_sxtb16_ror8(wb);
    a00 = __smlad(xa_e, wa_e, a00);
    a00 = __smlad(xa_o, wa_o, a00);
    a01 = __smlad(xa_e, wb_e, a01);
    a01 = __smlad(xa_o, wb_o, a01);
    a10 = __smlad(xb_e, wa_e, a10);
    a10 = __smlad(xb_o, wa_o, a10);
    a11 = __smlad(xb_e, wb_e, a11);
    a11 = __smlad(xb_o, wb_o, a11);
  }
#endif
  for (; k < n; ++k) {
    const int32_t xa = x0[k], xb = x1[k], wa = w0[k], wb = w1[k];
    a00 += xa * wa;
    a01 += xa * wb;
    a10 += xb * wa;
    a11 += xb * wb;
  }
  acc[0] = a00;
  acc[1] = a01;
  acc[2] = a10;
  acc[3] = a11;
}

/* acc[j] = sum_k x[k] * w_j[k] for one pixel and two output channels; with `sums` (a constant
 * at every call, so the inlined loop keeps only what it needs) also sums[j] = sum_k w_j[k]: a
 * window on the border adds the input offset times the weight sum of the taps it has. */
TINYC_INLINE void tinyc_dot_s8_1x2_impl(const int8_t *x, const int8_t *w0, const int8_t *w1, int32_t n,
                                        const int sums, int32_t acc[2], int32_t wsum[2]) {
  int32_t a0 = 0, a1 = 0, s0 = 0, s1 = 0;
  int32_t k = 0;
#if TINYC_DSP
  const int32_t ones = 0x00010001; /* SMLAD against 1, 1 adds both lanes */
  for (; k + 4 <= n; k += 4) {
    const uint32_t xv = tinyc_load4(x + k), wa = tinyc_load4(w0 + k), wb = tinyc_load4(w1 + k);
    const int32_t x_e = __sxtb16(xv), x_o = tinyc_sxtb16_ror8(xv);
    const int32_t wa_e = __sxtb16(wa), wa_o = tinyc_sxtb16_ror8(wa);
    const int32_t wb_e = __sxtb16(wb), wb_o = tinyc_sxtb16_ror8(wb);
    a0 = __smlad(x_e, wa_e, a0);
    a0 = __smlad(x_o, wa_o, a0);
    a1 = __smlad(x_e, wb_e, a1);
    a1 = __smlad(x_o, wb_o, a1);
    if (sums) {
      s0 = __smlad(wa_e, ones, s0);
      s0 = __smlad(wa_o, ones, s0);
      s1 = __smlad(wb_e, ones, s1);
      s1 = __smlad(wb_o, ones, s1);
    }
  }
#endif
  for (; k < n; ++k) {
    const int32_t xv = x[k], wa = w0[k], wb = w1[k];
    a0 += xv * wa;
    a1 += xv * wb;
    if (sums) {
      s0 += wa;
      s1 += wb;
    }
  }
  acc[0] = a0;
  acc[1] = a1;
  wsum[0] = s0;
  wsum[1] = s1;
}

TINYC_INLINE void tinyc_dot_s8_1x2(const int8_t *x, const int8_t *w0, const int8_t *w1, int32_t n, int32_t acc[2]) {
  int32_t unused[2];
  tinyc_dot_s8_1x2_impl(x, w0, w1, n, 0, acc, unused);
}

TINYC_INLINE void tinyc_dot_s8_1x2_sums(const int8_t *x, const int8_t *w0, const int8_t *w1, int32_t n,
                                        int32_t acc[2], int32_t sums[2]) {
  tinyc_dot_s8_1x2_impl(x, w0, w1, n, 1, acc, sums);
}

#endif /* TINYC_DOT_H */
