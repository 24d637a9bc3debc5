/* tinyc training: softmax cross-entropy, and tinyc's own expf and logf (see tinyc/train_loss.h).
 *
 * tinyc_expf and tinyc_logf follow the classic fdlibm single-precision algorithms (as in FreeBSD's
 * and musl's e_expf.c / e_logf.c): a range reduction by ln 2 split into a short high part (so that
 * k * ln2_hi is exact) and a low part, then a small rational / polynomial kernel; both are within
 * about 1 ulp. Only IEEE single-precision +, -, *, /, compares and exponent-bit arithmetic on the
 * float's representation are used, so built with -ffp-contract=off the host and a Cortex-M FPU
 * compute the same bits, whatever their C library. */
#include "tinyc/train_loss.h"

#include <stdint.h>

/* The bits of a float (type punning through a union is defined in C99). */
typedef union {
  float f;
  uint32_t u;
} tinyc_f32_bits_t;

/* 2^k for -126 <= k <= 127, built from its bits (exact). */
static float tinyc_pow2i(int32_t k) {
  tinyc_f32_bits_t b;
  b.u = (uint32_t)(k + 127) << 23;
  return b.f;
}

/* exp(x). NaN gives NaN; x above ln(FLT_MAX) is clamped to 88.7228317 (e^x = 3.40e38, finite);
 * x below -103.972084 (e^x under half the smallest subnormal) gives 0; subnormal results are
 * rounded once. */
float tinyc_expf(float x) {
  const float ln2_hi = 6.9314575195e-01f; /* 0x3f317200: 15 significant bits, k * ln2_hi exact */
  const float ln2_lo = 1.4286067653e-06f; /* 0x35bfbe8e */
  const float inv_ln2 = 1.4426950216e+00f; /* 0x3fb8aa3b */
  /* r * (exp(r) + 1) / (exp(r) - 1) ~ 2 + P1 r^2 + P2 r^4 on |r| <= 0.347, error < 2^-27.7 */
  const float p1 = 1.6666625440e-01f;
  const float p2 = -2.7667332906e-03f;
  if (x != x) {
    return x;
  }
  if (x > 88.7228317f) {
    x = 88.7228317f;
  }
  if (x < -103.972084f) {
    return 0.0f;
  }
  /* x = k ln2 + r, |r| <= ln2 / 2 (a hair more from rounding t) */
  const float t = x * inv_ln2;
  const int32_t k = (int32_t)(t < 0.0f ? t - 0.5f : t + 0.5f);
  const float hi = x - (float)k * ln2_hi; /* exact */
  const float lo = (float)k * ln2_lo;
  const float r = hi - lo;
  /* exp(r) = 1 + r + r c / (2 - c), c = r - r^2 (P1 + r^2 P2) */
  const float rr = r * r;
  const float c = r - rr * (p1 + rr * p2);
  const float y = 1.0f + ((r * c / (2.0f - c) - lo) + hi);
  /* y * 2^k, exact except the final rounding of a subnormal */
  if (k > 127) {
    return y * tinyc_pow2i(127) * 2.0f;
  }
  if (k < -125) {
    return y * tinyc_pow2i(k + 64) * 0x1p-64f;
  }
  return y * tinyc_pow2i(k);
}

/* Natural logarithm. NaN gives NaN, +inf gives +inf, x <= 0 gives -1e30 (finite: "minus
 * infinity" for the loss, which never takes the log of anything below 1). */
float tinyc_logf(float x) {
  const float ln2_hi = 6.9313812256e-01f; /* 0x3f317180 */
  const float ln2_lo = 9.0580006145e-06f; /* 0x3717f7d1 */
  /* |(log(1+f) - f + f^2/2 - s (f^2/2 + R)) / ...| < 2^-25.5 on |s| < 0.1716, s = f / (2 + f) */
  const float lg1 = 0xaaaaaa.0p-24f; /* 0.66666662693 */
  const float lg2 = 0xccce13.0p-25f; /* 0.40000972152 */
  const float lg3 = 0x91e9ee.0p-25f; /* 0.28498786688 */
  const float lg4 = 0xf89e26.0p-26f; /* 0.24279078841 */
  if (x != x) {
    return x;
  }
  if (x <= 0.0f) {
    return -1.0e30f;
  }
  tinyc_f32_bits_t b;
  b.f = x;
  if (b.u >= 0x7f800000u) {
    return x; /* +inf */
  }
  int32_t k = 0;
  if (b.u < 0x00800000u) { /* subnormal: scale into the normal range */
    b.f = x * 0x1p25f;
    k = -25;
  }
  /* x = 2^k * m with m in [sqrt(2)/2, sqrt(2)) */
  uint32_t ix = b.u + (0x3f800000u - 0x3f3504f3u);
  k += (int32_t)(ix >> 23) - 127;
  ix = (ix & 0x007fffffu) + 0x3f3504f3u;
  b.u = ix;
  const float f = b.f - 1.0f;
  const float s = f / (2.0f + f);
  const float z = s * s;
  const float w = z * z;
  const float t1 = w * (lg2 + w * lg4);
  const float t2 = z * (lg1 + w * lg3);
  const float big_r = t2 + t1;
  const float hfsq = 0.5f * f * f;
  const float dk = (float)k;
  return s * (hfsq + big_r) + dk * ln2_lo - hfsq + f + dk * ln2_hi;
}

/* log(1 + s) for s >= 0, accurate for tiny s too (Goldberg's trick: u = 1 + s rounded,
 * log(u) * s / (u - 1)). */
static float tinyc_log1p_pos(float s) {
  const float u = 1.0f + s;
  if (u == 1.0f) {
    return s;
  }
  return tinyc_logf(u) * (s / (u - 1.0f));
}

/* Order: pred (first maximum of the int8 logits); z_i = (beta * scale) * (q_i - zp) and their
 * first maximum z_max; e_i = exp(z_i - z_max) into dlogits, i ascending, while summing
 * rest_max = sum of e_i over i != argmax z and rest_label = sum over i != label (both ascending);
 * sum = 1 + rest_max (e of the argmax is exactly 1); loss = log1p(rest_max) - (z_label - z_max);
 * dlogits_i = beta * e_i / sum, and for the label beta * -rest_label / sum (p - 1 without
 * cancellation, so a confident prediction still gets its tiny gradient). */
void tinyc_softmax_ce_s8(const tinyc_softmax_ce_params_t *p, const int8_t *logits, const int32_t *label,
                         float *dlogits, float *loss, int32_t *pred) {
  const int32_t n = p->classes;
  int32_t best = 0;
  for (int32_t i = 1; i < n; ++i) {
    if (logits[i] > logits[best]) {
      best = i;
    }
  }
  *pred = best;
  const int32_t lab = *label;
  if (lab < 0 || lab >= n) {
    for (int32_t i = 0; i < n; ++i) {
      dlogits[i] = 0.0f;
    }
    *loss = 0.0f;
    return;
  }
  const float bs = p->beta * p->scale;
  int32_t zi_max = 0;
  float z_max = bs * (float)((int32_t)logits[0] - p->zp);
  for (int32_t i = 1; i < n; ++i) {
    const float z = bs * (float)((int32_t)logits[i] - p->zp);
    if (z > z_max) {
      z_max = z;
      zi_max = i;
    }
  }
  float rest_max = 0.0f;
  float rest_label = 0.0f;
  for (int32_t i = 0; i < n; ++i) {
    const float e = tinyc_expf(bs * (float)((int32_t)logits[i] - p->zp) - z_max);
    dlogits[i] = e;
    if (i != zi_max) {
      rest_max += e;
    }
    if (i != lab) {
      rest_label += e;
    }
  }
  const float sum = 1.0f + rest_max;
  const float z_lab = bs * (float)((int32_t)logits[lab] - p->zp);
  *loss = tinyc_log1p_pos(rest_max) - (z_lab - z_max);
  for (int32_t i = 0; i < n; ++i) {
    dlogits[i] = p->beta * (i == lab ? -rest_label / sum : dlogits[i] / sum);
  }
}
