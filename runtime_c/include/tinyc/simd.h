/* tinyc: the Cortex-M DSP-extension helpers the fast kernel paths share (ACLE intrinsics where
 * GCC has them, one instruction of inline assembly where it does not). TINYC_DSP is 1 on cores
 * with the DSP extension (Cortex-M4, M7, M33, M55), else 0 and the kernels use portable C. */
#ifndef TINYC_SIMD_H
#define TINYC_SIMD_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define TINYC_DSP 1

/* Bytes 1 and 3 of x sign-extended into two int16 lanes: SXTB16 with ROR #8, one instruction
 * (__sxtb16 of a rotated word compiles to two). */
static inline int32_t tinyc_sxtb16_ror8(uint32_t x) {
  int32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}

/* *a, *b = the next two words at *p (word-aligned), *p advanced past them: one LDRD with
 * write-back (the compiler splits a 64-bit copy into two loads and pointer arithmetic). */
static inline void tinyc_ldrd_next(const int32_t **p, int32_t *a, int32_t *b) {
  __asm__("ldrd %0, %1, [%2], #8" : "=&r"(*a), "=&r"(*b), "+r"(*p) : "m"(*(const int32_t(*)[2]) * p));
}
#else
#define TINYC_DSP 0
#endif

/* Four int8 as one word: a single LDR on Cortex-M3 and up, which read unaligned words. */
static inline uint32_t tinyc_load4(const int8_t *p) {
  uint32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

#endif /* TINYC_SIMD_H */
