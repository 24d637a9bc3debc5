/* tinyc training: the SGD update of one int8 weight or int32 bias, shared by every update kernel.
 *
 * Backward runs in float32 and reads the int8 weights; the trained parameters stay integers in
 * SRAM with the model's own (fixed) quantization, so the forward pass is always the inference
 * kernels, bit-exact with TFLM for the current weights.
 *
 * An update is worked out in quantization steps of the parameter:
 *   g_steps  = g_real * step_inv          step_inv = 1/s (QAS on: float SGD on the real value)
 *                                                   = s   (QAS off: SGD on the integer, TTE's "int8 SGD")
 *   v        = momentum * v + g_steps     (only when a momentum buffer is given)
 *   acc      = residual / 65536 - lr * v  (or - lr * g_steps without momentum)
 *   n        = acc rounded to nearest, ties away from zero
 *   q        = clamp(q + n, q_min, q_max) ; residual = round((acc - n) * 65536), 0 when clamped
 * The residual (int16, 1/65536 of a step) keeps what rounding dropped, so updates smaller than one
 * step accumulate instead of being lost; it costs 2 bytes per trained element.
 * Without a residual buffer (residual == NULL: the compiler's --rounding stochastic), the update
 * rounds stochastically instead, n = floor(acc + u) with u uniform in [0, 1) from a xorshift32
 * generator (`rng`, part of the saved training state): unbiased, no memory per element.
 *
 * Only IEEE single-precision +, -, * and compares are used, in a fixed order: built without FMA
 * contraction (-ffp-contract=off) the host and a Cortex-M FPU compute the same bits. */
#ifndef TINYC_TRAIN_UPDATE_H
#define TINYC_TRAIN_UPDATE_H

#include <stddef.h>
#include <stdint.h>

/* Optimizer settings, one per model (set by <prefix>_set_learning_rate / _set_momentum). */
typedef struct {
  float lr;       /* learning rate */
  float momentum; /* 0: plain SGD (momentum buffers, if any, are not touched) */
  uint32_t *rng;  /* xorshift32 state of stochastic rounding (never 0) */
} tinyc_sgd_t;

/* The next uniform number in [0, 1) (24 bits) of the stochastic rounding generator. */
static inline float tinyc_sgd_uniform(const tinyc_sgd_t *sgd) {
  uint32_t x = *sgd->rng;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *sgd->rng = x;
  return (float)(x >> 8) * (1.0f / 16777216.0f);
}

/* floor(x), saturated to +-2^30 like tinyc_round_f32; NaN gives 0. */
static inline int32_t tinyc_floor_f32(float x) {
  if (x != x) {
    return 0;
  }
  if (x >= 1073741824.0f) {
    return 1073741824;
  }
  if (x <= -1073741824.0f) {
    return -1073741824;
  }
  int32_t t = (int32_t)x;
  if ((float)t > x) {
    --t;
  }
  return t;
}

/* x rounded to the nearest integer, ties away from zero, saturated to +-2^30: exact for every
 * float (no libm, no float->int overflow); NaN gives 0 (converting it would be undefined). */
static inline int32_t tinyc_round_f32(float x) {
  if (x != x) {
    return 0;
  }
  if (x >= 1073741824.0f) {
    return 1073741824;
  }
  if (x <= -1073741824.0f) {
    return -1073741824;
  }
  int32_t t = (int32_t)x; /* truncates toward zero */
  const float frac = x - (float)t; /* exact: |x| < 2^30 */
  if (frac >= 0.5f) {
    ++t;
  } else if (frac <= -0.5f) {
    --t;
  }
  return t;
}

/* Update one parameter in place; returns its new integer value. g is the real gradient.
 * mom may be NULL (no momentum); with sgd->momentum == 0 it is neither read nor written.
 * residual may be NULL: stochastic rounding (see above). */
static inline int32_t tinyc_sgd_step(const tinyc_sgd_t *sgd, float g, float step_inv, int32_t q,
                                     int16_t *residual, float *mom, int32_t q_min, int32_t q_max) {
  float v = g * step_inv;
  if (mom != NULL && sgd->momentum != 0.0f) {
    v = sgd->momentum * (*mom) + v;
    *mom = v;
  }
  if (residual == NULL) {
    const float step = -(sgd->lr * v);
    const int64_t nq = (int64_t)q + (int64_t)tinyc_floor_f32(step + tinyc_sgd_uniform(sgd));
    return nq > q_max ? q_max : nq < q_min ? q_min : (int32_t)nq;
  }
  const float acc = (float)(*residual) * (1.0f / 65536.0f) - sgd->lr * v;
  const int32_t n = tinyc_round_f32(acc);
  int64_t nq = (int64_t)q + (int64_t)n;
  if (nq > q_max) {
    *residual = 0;
    return q_max;
  }
  if (nq < q_min) {
    *residual = 0;
    return q_min;
  }
  int32_t r = tinyc_round_f32((acc - (float)n) * 65536.0f);
  if (r > 32767) {
    r = 32767;
  } else if (r < -32767) {
    r = -32767;
  }
  *residual = (int16_t)r;
  return (int32_t)nq;
}

/* Debug hook: when TINYC_TRAIN_GRAD_HOOK is defined, every update kernel reports each real
 * gradient it is about to apply (tests compare them with a float reference). layer: the forward
 * op's index in the model (the params' `layer` field); kind: 0 weights, 1 bias; index: the
 * element's position in the whole parameter tensor, row-major in the model's layout. */
#ifdef TINYC_TRAIN_GRAD_HOOK
void tinyc_train_grad_hook(int32_t layer, int32_t kind, int32_t index, float g);
#define TINYC_GRAD_HOOK(layer, kind, index, g) tinyc_train_grad_hook((layer), (kind), (index), (g))
#else
#define TINYC_GRAD_HOOK(layer, kind, index, g) ((void)(layer), (void)(kind), (void)(index), (void)(g))
#endif

#endif /* TINYC_TRAIN_UPDATE_H */
