/* tinyc: int8 3x3 DEPTHWISE_CONV_2D with compile-time packed weights (see tinyc/depthwise_conv.h,
 * tinyc_depthwise_conv2d_s8_3x3).
 *
 * TFLM's sum per output channel, acc = bias + sum over the taps inside the input of
 * w * (x + input_offset), is computed as
 *   acc = bias + input_offset * (sum of all nine taps' w) + sum over the nine taps of w * x',
 * x' the input where the tap lies inside and the input zero point where it does not (a
 * zero-point tap adds w * zp = -input_offset * w, cancelling its share of the folded offset): the
 * same integer, with every window the same shape. The compiler folds the first two terms and
 * doubles everything (weights as int16; negated for a channel with a negative multiplier), so
 * the loop accumulates 2 * acc and the requantization is tinyc_rq (quant.h).
 *
 * Output pixels go in the order of tinyc_depthwise_conv2d_s8 (ascending, or descending when the
 * output starts above the input), each pixel's channels in groups of four: per tap, one word of
 * input (four channels; with a depth multiplier of 4 or more, the one input channel's byte) and
 * two words of weights feed four 16x16 multiply-accumulates (SMLABB/SMLATT on cores with the DSP
 * extension), and four outputs leave as one word. Windows inside the input go by runs along a
 * row, their taps addressed from three row pointers; windows on the border through a table of
 * the nine tap pointers (taps outside the input point at the zero points). With the DSP
 * extension and optimisation on, a group is one block of assembly (taps, requantization,
 * packing, clamp): left to the compiler, the taps' loads are scheduled ahead and their widened
 * inputs spilled. The blocks clobber "memory": they read the input, which the kernel's own stores
 * may overlap (at the planner's proven distances), so they must stay between the stores before
 * and after them. */
#include <stdint.h>
#include <string.h>

#include "tinyc/depthwise_conv.h"
#include "tinyc/quant.h"
#include "tinyc/simd.h"

#if TINYC_DSP && defined(__OPTIMIZE__) && defined(__GNUC__)
#define TINYC_DWP_ASM 1 /* fourteen registers for one asm block: not at -O0 (frame pointer) */
#else
#define TINYC_DWP_ASM 0
#endif

/* The first n (1..3) bytes at p, the others 0: the last channels without reading past them. */
static inline uint32_t tinyc_dwp_load_tail(const int8_t *p, int32_t n) {
  uint32_t v = (uint8_t)p[0];
  if (n > 1) {
    v |= (uint32_t)(uint8_t)p[1] << 8;
  }
  if (n > 2) {
    v |= (uint32_t)(uint8_t)p[2] << 16;
  }
  return v;
}

/* The input at q for one tap of a group: depth multiplier 1, the n channels there (n == 4 a
 * constant where inlined); else the input channel's byte, sign-extended. */
TINYC_INLINE uint32_t tinyc_dwp_load(const int8_t *q, const int dm1, int32_t n) {
  if (!dm1) {
    return (uint32_t)(int32_t)*q;
  }
  return n == 4 ? tinyc_load4(q) : tinyc_dwp_load_tail(q, n);
}

#if !TINYC_DSP
static inline int32_t tinyc_dwp_lo(int32_t w) {
  return (int32_t)(int16_t)(uint16_t)((uint32_t)w & 0xffffu);
}
static inline int32_t tinyc_dwp_hi(int32_t w) {
  return (int32_t)(int16_t)(uint16_t)((uint32_t)w >> 16);
}
#endif

/* a[i] += the tap's products for channels c + i; *w advances past the tap's two words. */
TINYC_INLINE void tinyc_dwp_tap(uint32_t xv, const int32_t **w, const int dm1, int32_t a[4]) {
  int32_t we, wo;
#if TINYC_DSP
  tinyc_ldrd_next(w, &we, &wo);
  if (dm1) {
    const int32_t xe = __sxtb16(xv), xo = tinyc_sxtb16_ror8(xv);
    a[0] = __smlabb(xe, we, a[0]);
    a[2] = __smlatt(xe, we, a[2]);
    a[1] = __smlabb(xo, wo, a[1]);
    a[3] = __smlatt(xo, wo, a[3]);
  } else {
    const int32_t xs = (int32_t)xv;
    a[0] = __smlabb(xs, we, a[0]);
    a[2] = __smlabt(xs, we, a[2]);
    a[1] = __smlabb(xs, wo, a[1]);
    a[3] = __smlabt(xs, wo, a[3]);
  }
#else
  we = (*w)[0];
  wo = (*w)[1];
  *w += 2;
  if (dm1) {
    a[0] += (int32_t)(int8_t)(xv & 0xffu) * tinyc_dwp_lo(we);
    a[1] += (int32_t)(int8_t)((xv >> 8) & 0xffu) * tinyc_dwp_lo(wo);
    a[2] += (int32_t)(int8_t)((xv >> 16) & 0xffu) * tinyc_dwp_hi(we);
    a[3] += (int32_t)(int8_t)((xv >> 24) & 0xffu) * tinyc_dwp_hi(wo);
  } else {
    const int32_t xs = (int32_t)xv;
    a[0] += xs * tinyc_dwp_lo(we);
    a[1] += xs * tinyc_dwp_lo(wo);
    a[2] += xs * tinyc_dwp_hi(we);
    a[3] += xs * tinyc_dwp_hi(wo);
  }
#endif
}

/* A group's channels c .. c + n - 1 (n == 4 a constant where inlined) from the stream after its
 * taps (w: (q, rnd) x 4, then 4 shifts) and its accumulators a, started at zero; bias: the
 * group's 4 biases. The bias is added here so that the accumulation cannot overflow on the way. */
TINYC_INLINE void tinyc_dwp_store(const int32_t *w, const int32_t *bias, const int32_t a[4], int32_t n,
                                  const int full, int32_t lo, int32_t hi, int8_t *y) {
  for (int32_t k = 0; k < 4; ++k) {
    if (k < n) {
      y[k] = tinyc_rq_clamp(tinyc_rq(a[k] + bias[k], w[2 * k], w[2 * k + 1], w[8 + k]), full, lo, hi);
    }
  }
}

/* One group in portable C (or C with DSP intrinsics): tap t at tp[t] + off, or without a table
 * at x + (t / 3) * rs + (t % 3) * cs + off. */
TINYC_INLINE const int32_t *tinyc_dwp_group_c(const int8_t *const *tp, const int8_t *x, int32_t cs, int32_t rs,
                                              int32_t off, const int32_t *w, const int dm1, int32_t n, const int full,
                                              int32_t lo, int32_t hi, int8_t *y) {
  const int32_t *const bias = w;
  int32_t a[4] = {0, 0, 0, 0};
  w += 4;
  for (int32_t t = 0; t < 9; ++t) {
    const int8_t *q = tp != 0 ? tp[t] : x + (t / 3) * rs + (t % 3) * cs;
    tinyc_dwp_tap(tinyc_dwp_load(q + off, dm1, n), &w, dm1, a);
  }
  tinyc_dwp_store(w, bias, a, n, full, lo, hi, y);
  return w + 12;
}

#if TINYC_DWP_ASM
/* One tap of a group. dm1: the word at addr (four channels) in two int16 pairs; dm4: the byte at
 * addr, sign-extended. */
#define TINYC_DWP_TAP_DM1(load)                 \
  load "\n\t"                                   \
  "ldrd %[we], %[wo], [%[w]], #8\n\t"           \
  "sxtb16 %[xo], %[x], ror #8\n\t"              \
  "sxtb16 %[x], %[x]\n\t"                       \
  "smlabb %[a0], %[x], %[we], %[a0]\n\t"        \
  "smlatt %[a2], %[x], %[we], %[a2]\n\t"        \
  "smlabb %[a1], %[xo], %[wo], %[a1]\n\t"       \
  "smlatt %[a3], %[xo], %[wo], %[a3]\n\t"
#define TINYC_DWP_TAP_DM4(load)                 \
  load "\n\t"                                   \
  "ldrd %[we], %[wo], [%[w]], #8\n\t"           \
  "smlabb %[a0], %[x], %[we], %[a0]\n\t"        \
  "smlabt %[a2], %[x], %[we], %[a2]\n\t"        \
  "smlabb %[a1], %[x], %[wo], %[a1]\n\t"        \
  "smlabt %[a3], %[x], %[wo], %[a3]\n\t"

/* The group's start (its biases) and, after the taps, its requantization: (q, rnd) per channel,
 * SMMLAR, the sign correction, the shifts, SSAT, the four bytes into a0 (BFI), and unless the
 * clamp is int8's own range the per-byte max and min (SSUB8 + SEL). */
#define TINYC_DWP_START                          \
  "ldrd %[a0], %[a1], [%[w]], #8\n\t"            \
  "ldrd %[a2], %[a3], [%[w]], #8\n\t"
#define TINYC_DWP_RQ1(a)                         \
  "ldrd %[x], %[xo], [%[w]], #8\n\t"             \
  "smmlar %[x], " a ", %[x], %[xo]\n\t"          \
  "add " a ", %[x], " a ", asr #31\n\t"
#define TINYC_DWP_REQUANT                                                                          \
  TINYC_DWP_RQ1("%[a0]") TINYC_DWP_RQ1("%[a1]") TINYC_DWP_RQ1("%[a2]") TINYC_DWP_RQ1("%[a3]")        \
  "ldrd %[x], %[xo], [%[w]], #8\n\t"                                                               \
  "asr %[a0], %[a0], %[x]\n\t"                                                                     \
  "asr %[a1], %[a1], %[xo]\n\t"                                                                    \
  "ldrd %[x], %[xo], [%[w]], #8\n\t"                                                               \
  "asr %[a2], %[a2], %[x]\n\t"                                                                     \
  "asr %[a3], %[a3], %[xo]\n\t"                                                                    \
  "ssat %[a0], #8, %[a0]\n\t"                                                                      \
  "ssat %[a1], #8, %[a1]\n\t"                                                                      \
  "ssat %[a2], #8, %[a2]\n\t"                                                                      \
  "ssat %[a3], #8, %[a3]\n\t"                                                                      \
  "bfi %[a0], %[a1], #8, #8\n\t"                                                                   \
  "bfi %[a0], %[a2], #16, #8\n\t"                                                                  \
  "bfi %[a0], %[a3], #24, #8\n\t"
#define TINYC_DWP_CLAMP                          \
  "ldr %[x], %[lo4]\n\t"                         \
  "ssub8 %[xo], %[a0], %[x]\n\t"                 \
  "sel %[a0], %[a0], %[x]\n\t"                   \
  "ldr %[x], %[hi4]\n\t"                         \
  "ssub8 %[xo], %[a0], %[x]\n\t"                 \
  "sel %[a0], %[x], %[a0]\n\t"

/* 3x3 window inside the input, depth multiplier 1: rows r0, r1, r2 at the group's channels, each
 * advanced by 4 by its first tap; the row's other taps at cs4 = cs - 4 and cs24 = 2 * cs - 4 from
 * there. */
#define TINYC_DWP_ROW_DM1(r)                                         \
  TINYC_DWP_TAP_DM1("ldr %[x], [%[" r "]], #4")                     \
  TINYC_DWP_TAP_DM1("ldr %[x], [%[" r "], %[cs4]]")                 \
  TINYC_DWP_TAP_DM1("ldr %[x], [%[" r "], %[cs24]]")
#define TINYC_DWP_BODY_IN_DM1 \
  TINYC_DWP_START TINYC_DWP_ROW_DM1("r0") TINYC_DWP_ROW_DM1("r1") TINYC_DWP_ROW_DM1("r2") TINYC_DWP_REQUANT

TINYC_INLINE uint32_t tinyc_dwp_asm_in_dm1(const int8_t **r0, const int8_t **r1, const int8_t **r2, int32_t cs4,
                                           int32_t cs24, const int32_t **w, const int full, const uint32_t *lo4,
                                           const uint32_t *hi4) {
  int32_t a0, a1, a2, a3, x, xo, we, wo;
  if (full) {
    __asm__(TINYC_DWP_BODY_IN_DM1
            : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [x] "=&r"(x), [xo] "=&r"(xo),
              [we] "=&r"(we), [wo] "=&r"(wo), [w] "+&r"(*w), [r0] "+&r"(*r0), [r1] "+&r"(*r1), [r2] "+&r"(*r2)
            : [cs4] "r"(cs4), [cs24] "r"(cs24)
            : "memory");
  } else {
    __asm__(TINYC_DWP_BODY_IN_DM1 TINYC_DWP_CLAMP
            : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [x] "=&r"(x), [xo] "=&r"(xo),
              [we] "=&r"(we), [wo] "=&r"(wo), [w] "+&r"(*w), [r0] "+&r"(*r0), [r1] "+&r"(*r1), [r2] "+&r"(*r2)
            : [cs4] "r"(cs4), [cs24] "r"(cs24), [lo4] "m"(*lo4), [hi4] "m"(*hi4)
            : "cc", "memory");
  }
  return (uint32_t)a0;
}

/* 3x3 window inside the input, depth multiplier a multiple of 4: the input channel's byte at
 * r0, r1, r2 and cs, 2 * cs from them (the rows do not move: one input channel serves
 * depth_multiplier / 4 groups). */
#define TINYC_DWP_ROW_DM4(r)                                        \
  TINYC_DWP_TAP_DM4("ldrsb %[x], [%[" r "]]")                      \
  TINYC_DWP_TAP_DM4("ldrsb %[x], [%[" r "], %[cs4]]")              \
  TINYC_DWP_TAP_DM4("ldrsb %[x], [%[" r "], %[cs24]]")
#define TINYC_DWP_BODY_IN_DM4 \
  TINYC_DWP_START TINYC_DWP_ROW_DM4("r0") TINYC_DWP_ROW_DM4("r1") TINYC_DWP_ROW_DM4("r2") TINYC_DWP_REQUANT

TINYC_INLINE uint32_t tinyc_dwp_asm_in_dm4(const int8_t *r0, const int8_t *r1, const int8_t *r2, int32_t cs,
                                           int32_t cs2, const int32_t **w, const int full, const uint32_t *lo4,
                                           const uint32_t *hi4) {
  int32_t a0, a1, a2, a3, x, xo, we, wo;
  if (full) {
    __asm__(TINYC_DWP_BODY_IN_DM4
            : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [x] "=&r"(x), [xo] "=&r"(xo),
              [we] "=&r"(we), [wo] "=&r"(wo), [w] "+&r"(*w)
            : [r0] "r"(r0), [r1] "r"(r1), [r2] "r"(r2), [cs4] "r"(cs), [cs24] "r"(cs2)
            : "memory");
  } else {
    __asm__(TINYC_DWP_BODY_IN_DM4 TINYC_DWP_CLAMP
            : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [x] "=&r"(x), [xo] "=&r"(xo),
              [we] "=&r"(we), [wo] "=&r"(wo), [w] "+&r"(*w)
            : [r0] "r"(r0), [r1] "r"(r1), [r2] "r"(r2), [cs4] "r"(cs), [cs24] "r"(cs2), [lo4] "m"(*lo4),
              [hi4] "m"(*hi4)
            : "cc", "memory");
  }
  return (uint32_t)a0;
}

/* A 3x3 window through the tap table tp, the group's input at tp[t] + off. */
#define TINYC_DWP_T9(TAP, LD)                                                                              \
  TAP(LD(0)) TAP(LD(4)) TAP(LD(8)) TAP(LD(12)) TAP(LD(16)) TAP(LD(20)) TAP(LD(24)) TAP(LD(28)) TAP(LD(32))
#define TINYC_DWP_LD_DM1(k) "ldr %[xo], [%[tp], #" #k "]\n\tldr %[x], [%[xo], %[off]]"
#define TINYC_DWP_LD_DM4(k) "ldr %[xo], [%[tp], #" #k "]\n\tldrsb %[x], [%[xo], %[off]]"

TINYC_INLINE uint32_t tinyc_dwp_asm_t9(const int8_t *const *tp, int32_t off, const int32_t **w, const int dm1,
                                       const int full, const uint32_t *lo4, const uint32_t *hi4) {
  int32_t a0, a1, a2, a3, x, xo, we, wo;
#define TINYC_DWP_T9_OPS                                                                                      \
  : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [x] "=&r"(x), [xo] "=&r"(xo),            \
    [we] "=&r"(we), [wo] "=&r"(wo), [w] "+&r"(*w)                                                             \
  : [tp] "r"(tp), [off] "r"(off), [lo4] "m"(*lo4), [hi4] "m"(*hi4)                                            \
  : "cc", "memory"
  if (dm1 && full) {
    __asm__(TINYC_DWP_START TINYC_DWP_T9(TINYC_DWP_TAP_DM1, TINYC_DWP_LD_DM1) TINYC_DWP_REQUANT TINYC_DWP_T9_OPS);
  } else if (dm1) {
    __asm__(TINYC_DWP_START TINYC_DWP_T9(TINYC_DWP_TAP_DM1, TINYC_DWP_LD_DM1) TINYC_DWP_REQUANT TINYC_DWP_CLAMP
                TINYC_DWP_T9_OPS);
  } else if (full) {
    __asm__(TINYC_DWP_START TINYC_DWP_T9(TINYC_DWP_TAP_DM4, TINYC_DWP_LD_DM4) TINYC_DWP_REQUANT TINYC_DWP_T9_OPS);
  } else {
    __asm__(TINYC_DWP_START TINYC_DWP_T9(TINYC_DWP_TAP_DM4, TINYC_DWP_LD_DM4) TINYC_DWP_REQUANT TINYC_DWP_CLAMP
                TINYC_DWP_T9_OPS);
  }
#undef TINYC_DWP_T9_OPS
  return (uint32_t)a0;
}
#endif /* TINYC_DWP_ASM */

/* What every pixel of a call shares. */
typedef struct {
  const tinyc_depthwise_3x3_params_t *p;
  int32_t cs, rs;       /* bytes between a window's taps along a row, and between its rows */
  uint32_t lo4, hi4;    /* the clamp bounds in every byte */
  int32_t kind;         /* bit 0: the clamp is int8's own range; bit 1: depth multiplier 4k */
  int32_t ox_lo, ox_hi; /* the output columns whose window lies inside the input along a row */
  int desc;             /* pixels in descending order */
} tinyc_dwp_ctx_t;

/* Every channel of one output pixel: inside, a window inside the input, x its first tap's pixel;
 * else through the tap table tp. */
TINYC_INLINE void tinyc_dwp_pixel(const tinyc_dwp_ctx_t *ctx, const int inside, const int8_t *x,
                                  const int8_t *const *tp, const int dm1, const int full, int8_t *y) {
  const tinyc_depthwise_3x3_params_t *const p = ctx->p;
  const int32_t out_c = p->out_c, dm = p->depth_multiplier;
  const int32_t lo = p->act_min, hi = p->act_max;
  const int32_t cs = ctx->cs, rs = ctx->rs;
  const int32_t *w = p->stream;
  int8_t *const y_end = y + (out_c & ~(int32_t)3);
  int32_t ic = 0, m = 0; /* depth multiplier > 1: the group's input channel, and its first output's place */
#if TINYC_DWP_ASM
  const int8_t *r0 = x, *r1 = x + rs, *r2 = x + 2 * rs; /* inside: the rows, at the group's input */
  const uint32_t lo4 = ctx->lo4, hi4 = ctx->hi4;        /* on the stack: the asm reads them sp-relative */
#endif
  for (; y < y_end; y += 4) {
    const int32_t off = dm1 ? out_c - (int32_t)(y_end - y) - (out_c & 3) : ic; /* the group's channel */
#if TINYC_DWP_ASM
    uint32_t word;
    if (inside && dm1) {
      word = tinyc_dwp_asm_in_dm1(&r0, &r1, &r2, cs - 4, 2 * cs - 4, &w, full, &lo4, &hi4);
    } else if (inside) {
      word = tinyc_dwp_asm_in_dm4(r0 + ic, r1 + ic, r2 + ic, cs, 2 * cs, &w, full, &lo4, &hi4);
    } else {
      word = tinyc_dwp_asm_t9(tp, off, &w, dm1, full, &lo4, &hi4);
    }
    memcpy(y, &word, sizeof word);
#else
    w = tinyc_dwp_group_c(inside ? 0 : tp, x, cs, rs, off, w, dm1, 4, full, lo, hi, y);
#endif
    if (!dm1) {
      m += 4;
      if (m == dm) {
        m = 0;
        ++ic;
      }
    }
  }
  if (dm1 && (out_c & 3) != 0) { /* the last 1-3 channels */
    (void)tinyc_dwp_group_c(inside ? 0 : tp, x, cs, rs, out_c & ~(int32_t)3, w, 1, out_c & 3, full, lo, hi, y);
  }
}

/* The window's tap table: tap t's pixel in the input, or the zero points where it lies outside. */
static inline void tinyc_dwp_taps(const tinyc_dwp_ctx_t *ctx, const int8_t *in_b, int32_t iy0, int32_t ix0,
                                  const int8_t **tp) {
  const tinyc_depthwise_3x3_params_t *const p = ctx->p;
  const int32_t in_h = p->in_h, in_w = p->in_w, in_c = p->in_c, dh = p->dilation_h, dw = p->dilation_w;
  int32_t t = 0;
  for (int32_t r = 0, iy = iy0; r < 3; ++r, iy += dh) {
    const int row_ok = iy >= 0 && iy < in_h;
    for (int32_t j = 0, ix = ix0; j < 3; ++j, ix += dw, ++t) {
      tp[t] = row_ok && ix >= 0 && ix < in_w ? in_b + (iy * in_w + ix) * in_c : p->zero_points;
    }
  }
}

#if defined(__GNUC__)
#define TINYC_DWP_NOINLINE __attribute__((noinline))
#else
#define TINYC_DWP_NOINLINE
#endif

/* Output row oy of one image: runs of windows inside the input, the others through the tap
 * table. One function per (depth multiplier 1 or 4k, full clamp or not), called directly (the
 * stack estimate follows direct calls), so that its loops have the registers to themselves. */
TINYC_INLINE void tinyc_dwp_row(const tinyc_dwp_ctx_t *ctx, const int8_t *in_b, int8_t *out_b, int32_t oy,
                                const int dm1, const int full) {
  const tinyc_depthwise_3x3_params_t *const p = ctx->p;
  const int32_t out_w = p->out_w, out_c = p->out_c, in_c = p->in_c;
  const int32_t sw = p->stride_w, pl = p->pad_left;
  const int32_t iy0 = oy * p->stride_h - p->pad_top;
  const int rows_in = iy0 >= 0 && iy0 + 2 * p->dilation_h < p->in_h;
  const int desc = ctx->desc;
  int8_t *const y_row = out_b + oy * out_w * out_c;
  const int8_t *tp[9];
  /* the row in three parts, in the kernel's order: columns before the windows inside the input,
   * those (a run: the input and output advance by fixed steps), the ones after */
  const int32_t lo = rows_in ? ctx->ox_lo : out_w, hi = rows_in ? ctx->ox_hi : out_w;
  for (int32_t part = 0; part < 3; ++part) {
    const int32_t k = desc ? 2 - part : part;
    const int32_t first = k == 0 ? 0 : (k == 1 ? lo : hi), end = k == 0 ? lo : (k == 1 ? hi : out_w);
    if (first >= end) {
      continue;
    }
    if (k == 1) {
      const int32_t ox = desc ? end - 1 : first;
      const int32_t x_step = desc ? -sw * in_c : sw * in_c, y_step = desc ? -out_c : out_c;
      const int8_t *x = in_b + (iy0 * p->in_w + ox * sw - pl) * in_c;
      int8_t *y = y_row + ox * out_c;
      for (int32_t i = first; i < end; ++i, x += x_step, y += y_step) {
        tinyc_dwp_pixel(ctx, 1, x, tp, dm1, full, y);
      }
      continue;
    }
    for (int32_t i = first; i < end; ++i) {
      const int32_t ox = desc ? first + end - 1 - i : i;
      tinyc_dwp_taps(ctx, in_b, iy0, ox * sw - pl, tp);
      tinyc_dwp_pixel(ctx, 0, tp[0], tp, dm1, full, y_row + ox * out_c);
    }
  }
}

#define TINYC_DWP_ROW(name, dm1, full)                                                                        \
  static TINYC_DWP_NOINLINE void name(const tinyc_dwp_ctx_t *ctx, const int8_t *in_b, int8_t *out_b, int32_t oy) { \
    tinyc_dwp_row(ctx, in_b, out_b, oy, dm1, full);                                                          \
  }
TINYC_DWP_ROW(tinyc_dwp_row_dm1_clamp, 1, 0)
TINYC_DWP_ROW(tinyc_dwp_row_dm1_full, 1, 1)
TINYC_DWP_ROW(tinyc_dwp_row_dm4_clamp, 0, 0)
TINYC_DWP_ROW(tinyc_dwp_row_dm4_full, 0, 1)

void tinyc_depthwise_conv2d_s8_3x3(const tinyc_depthwise_3x3_params_t *p, const int8_t *input, int8_t *output) {
  /* The loops read what they need through ctx (its address is taken: the fields are reloaded after
   * each call rather than kept in spilled copies, which keeps this frame, part of the peak stack,
   * small). */
  tinyc_dwp_ctx_t ctx;
  const int32_t sw = p->stride_w, pl = p->pad_left;
  ctx.p = p;
  ctx.cs = p->dilation_w * p->in_c;
  ctx.rs = p->dilation_h * p->in_w * p->in_c;
  ctx.lo4 = ((uint32_t)p->act_min & 0xffu) * 0x01010101u;
  ctx.hi4 = ((uint32_t)p->act_max & 0xffu) * 0x01010101u;
  ctx.kind = (p->depth_multiplier == 1 ? 0 : 2) + (p->act_min == -128 && p->act_max == 127 ? 1 : 0);
  /* the output columns whose window lies inside the input along a row: [ox_lo, ox_hi) */
  const int32_t ox_lo = (pl + sw - 1) / sw;
  int32_t ox_hi = 0;
  if (p->in_w - 1 - 2 * p->dilation_w + pl >= 0) {
    ox_hi = (p->in_w - 1 - 2 * p->dilation_w + pl) / sw + 1;
  }
  ctx.ox_hi = ox_hi < p->out_w ? ox_hi : p->out_w;
  ctx.ox_lo = ox_lo < ctx.ox_hi ? ox_lo : ctx.ox_hi;
  ctx.desc = (uintptr_t)output > (uintptr_t)input; /* memmove-like, as tinyc_depthwise_conv2d_s8 */
  const int32_t in_image = p->in_h * p->in_w * p->in_c, out_image = p->out_h * p->out_w * p->out_c;
  for (int32_t bi = 0; bi < p->batches; ++bi) {
    const int32_t b = ctx.desc ? p->batches - 1 - bi : bi;
    const int8_t *const in_b = input + b * in_image;
    int8_t *const out_b = output + b * out_image;
    for (int32_t yi = 0; yi < p->out_h; ++yi) {
      const int32_t oy = ctx.desc ? p->out_h - 1 - yi : yi;
      switch (ctx.kind) {
        case 0: tinyc_dwp_row_dm1_clamp(&ctx, in_b, out_b, oy); break;
        case 1: tinyc_dwp_row_dm1_full(&ctx, in_b, out_b, oy); break;
        case 2: tinyc_dwp_row_dm4_clamp(&ctx, in_b, out_b, oy); break;
        default: tinyc_dwp_row_dm4_full(&ctx, in_b, out_b, oy); break;
      }
    }
  }
}

/* ------------------------------------------------------------------ channel by channel, in place */

/* The word of input row `row` from column ix: x[ix .. ix + 3], the zero point where a column lies
 * outside [0, w) (a window on the left or right border). Rows of 4 or more: one word load and
 * shifts (one column left of the row; 1-3 columns right of it), else byte by byte. */
static inline uint32_t tinyc_dwc_word_edge(const int8_t *row, int32_t ix, int32_t w, uint32_t zp) {
  if (w >= 4 && ix == -1) {
    return (tinyc_load4(row) << 8) | zp;
  }
  if (w >= 4 && ix >= w - 3 && ix < w) {
    const uint32_t d = 8u * (uint32_t)(ix - (w - 4)); /* 8, 16 or 24 bits past the row */
    return (tinyc_load4(row + w - 4) >> d) | ((zp * 0x01010101u) << (32u - d));
  }
  uint32_t v = 0;
  for (int32_t k = 0; k < 4; ++k) {
    const int32_t j = ix + k;
    v |= (j >= 0 && j < w ? (uint32_t)(uint8_t)row[j] : zp) << (8 * k);
  }
  return v;
}

/* One filter row on one word x[0..3]: o0 += k0 x0 + k1 x1 + k2 x2 and o1 += k0 x1 + k1 x2 + k2 x3,
 * two neighbouring outputs. k02: (k0, k2) as int16 lanes, k1 in the low half. */
TINYC_INLINE void tinyc_dwc_row(uint32_t xv, int32_t k02, int32_t k1, int32_t *o0, int32_t *o1) {
#if TINYC_DSP
  const int32_t e = __sxtb16(xv), o = tinyc_sxtb16_ror8(xv); /* (x0, x2), (x1, x3) */
  *o0 = __smlabb(o, k1, __smlad(e, k02, *o0));
  *o1 = __smlatb(e, k1, __smlad(o, k02, *o1));
#else
  const int32_t x0 = (int8_t)(xv & 0xffu), x1 = (int8_t)((xv >> 8) & 0xffu);
  const int32_t x2 = (int8_t)((xv >> 16) & 0xffu), x3 = (int8_t)((xv >> 24) & 0xffu);
  const int32_t k0 = tinyc_dwp_lo(k02), k2 = tinyc_dwp_hi(k02);
  *o0 += k0 * x0 + k1 * x1 + k2 * x2;
  *o1 += k0 * x1 + k1 * x2 + k2 * x3;
#endif
}

/* What one channel's output rows share: its weights (per filter row (k0, k2) as int16 lanes and
 * k1; zero for a filter row outside the input), its requantization, the clamp. */
typedef struct {
  int32_t k02[3], k1[3];
  int32_t q, rnd, e, lo, hi;
} tinyc_dwc_chan_t;

/* Outputs [first, end) of one output row, two per step, from the three input rows r0..r2: words
 * from column ox - pad_left (inside: wholly inside the row, else assembled with the zero point). */
TINYC_INLINE void tinyc_dwc_run(const tinyc_dwc_chan_t *k, const int8_t *r0, const int8_t *r1, const int8_t *r2,
                                int32_t bias, int32_t first, int32_t end, int32_t pad_left, int32_t w, uint32_t zp,
                                int8_t *y, int32_t c_stride, const int inside, const int full) {
  const int32_t k02_0 = k->k02[0], k02_1 = k->k02[1], k02_2 = k->k02[2];
  const int32_t k1_0 = k->k1[0], k1_1 = k->k1[1], k1_2 = k->k1[2];
  const int32_t q = k->q, rnd = k->rnd, e = k->e, lo = k->lo, hi = k->hi;
  for (int32_t ox = first; ox < end; ox += 2) {
    const int32_t ix = ox - pad_left;
    int32_t o0 = TINYC_DSP ? bias : 0, o1 = o0;
    const uint32_t w0 = inside ? tinyc_load4(r0 + ix) : tinyc_dwc_word_edge(r0, ix, w, zp);
    const uint32_t w1 = inside ? tinyc_load4(r1 + ix) : tinyc_dwc_word_edge(r1, ix, w, zp);
    const uint32_t w2 = inside ? tinyc_load4(r2 + ix) : tinyc_dwc_word_edge(r2, ix, w, zp);
    tinyc_dwc_row(w0, k02_0, k1_0, &o0, &o1);
    tinyc_dwc_row(w1, k02_1, k1_1, &o0, &o1);
    tinyc_dwc_row(w2, k02_2, k1_2, &o0, &o1);
#if !TINYC_DSP
    o0 += bias;
    o1 += bias;
#endif
    y[ox * c_stride] = tinyc_rq_clamp(tinyc_rq(o0, q, rnd, e), full, lo, hi);
    if (ox + 1 < end) {
      y[(ox + 1) * c_stride] = tinyc_rq_clamp(tinyc_rq(o1, q, rnd, e), full, lo, hi);
    }
  }
}

/* One output row of a channel: the steps whose words reach left of the input row, those inside
 * it (ix = ox - pad_left >= 0 and ix + 3 < w), those reaching right of it. */
TINYC_INLINE void tinyc_dwc_out_row(const tinyc_dwc_chan_t *k, const int8_t *r0, const int8_t *r1, const int8_t *r2,
                                    int32_t bias, int32_t out_w, int32_t pad_left, int32_t w, uint32_t zp, int8_t *y,
                                    int32_t c_stride, const int full) {
  const int32_t first = pad_left, last = w - 4 + pad_left; /* the steps' ox inside */
  const int32_t n = last >= first ? (last - first) / 2 + 1 : 0;
  const int32_t lo = first < out_w ? first : out_w;
  const int32_t hi = first + 2 * n < out_w ? first + 2 * n : out_w;
  tinyc_dwc_run(k, r0, r1, r2, bias, 0, lo, pad_left, w, zp, y, c_stride, 0, full);
  tinyc_dwc_run(k, r0, r1, r2, bias, lo, hi, pad_left, w, zp, y, c_stride, 1, full);
  tinyc_dwc_run(k, r0, r1, r2, bias, hi, out_w, pad_left, w, zp, y, c_stride, 0, full);
}

void tinyc_depthwise_conv2d_s8_3x3_channels(const tinyc_depthwise_3x3_channels_params_t *p, const int8_t *input,
                                            const int8_t *filter, int8_t *output, void *temp) {
  int8_t *const t = (int8_t *)temp;
  const int32_t c_count = p->in_c, in_h = p->in_h, in_w = p->in_w, out_h = p->out_h, out_w = p->out_w;
  const int32_t in_pixels = in_h * in_w, out_pixels = out_h * out_w, all_in = p->batches * in_pixels;
  const uint32_t zp = (uint32_t)(uint8_t)p->input_zp;
  const int full = p->act_min == -128 && p->act_max == 127;
  for (int32_t c = 0; c < c_count; ++c) {
    { /* input channel c of every image into temp; then output channel c overwrites only its own bytes */
      const int8_t *src = input + c;
      for (int32_t i = 0; i < all_in; ++i, src += c_count) {
        t[i] = *src;
      }
    }
    const int32_t *const rq = p->requant + 4 * c;
    const int32_t scale = (rq[3] >> 8) != 0 ? -2 : 2; /* doubled, negated with q */
    tinyc_dwc_chan_t k;
    int32_t k02[3], k1[3], zrow[3];
    for (int32_t r = 0; r < 3; ++r) {
      const int32_t k0 = scale * filter[(3 * r) * c_count + c], kk = scale * filter[(3 * r + 1) * c_count + c];
      const int32_t k2 = scale * filter[(3 * r + 2) * c_count + c];
      k02[r] = (int32_t)(((uint32_t)k0 & 0xffffu) | ((uint32_t)k2 << 16));
      k1[r] = kk;
      zrow[r] = p->input_zp * (k0 + kk + k2); /* a whole filter row outside the input */
    }
    k.q = rq[1];
    k.rnd = rq[2];
    k.e = rq[3] & 0xff;
    k.lo = p->act_min;
    k.hi = p->act_max;
    for (int32_t b = 0; b < p->batches; ++b) {
      const int8_t *const plane = t + b * in_pixels;
      int8_t *const y_b = output + b * out_pixels * c_count + c;
      for (int32_t oy = 0; oy < out_h; ++oy) {
        const int32_t iy0 = oy - p->pad_top;
        const int8_t *rows[3];
        int32_t bias = rq[0];
        for (int32_t r = 0; r < 3; ++r) { /* a row outside: zero weights on any row inside, its share in bias */
          const int32_t iy = iy0 + r;
          const int in = iy >= 0 && iy < in_h;
          rows[r] = plane + (in ? iy : (iy < 0 ? 0 : in_h - 1)) * in_w;
          k.k02[r] = in ? k02[r] : 0;
          k.k1[r] = in ? k1[r] : 0;
          bias += in ? 0 : zrow[r];
        }
        int8_t *const y = y_b + oy * out_w * c_count;
        if (full) {
          tinyc_dwc_out_row(&k, rows[0], rows[1], rows[2], bias, out_w, p->pad_left, in_w, zp, y, c_count, 1);
        } else {
          tinyc_dwc_out_row(&k, rows[0], rows[1], rows[2], bias, out_w, p->pad_left, in_w, zp, y, c_count, 0);
        }
      }
    }
  }
}
