/* tinyc training: softmax cross-entropy on the classifier's int8 logits.
 *   z = beta * scale * (logits_q - zp);  p = softmax(z);  loss = -log p[label]
 *   dlogits = beta * (p - onehot(label))   (gradient w.r.t. the real logits)
 * exp and log are tinyc's own (tinyc_expf, tinyc_logf: only +, -, *, / and compares), so that
 * the host and a Cortex-M compute the same bits whatever their C library. */
#ifndef TINYC_TRAIN_LOSS_H
#define TINYC_TRAIN_LOSS_H

#include <stdint.h>

typedef struct {
  int32_t classes;
  float scale;
  int32_t zp;
  float beta;
} tinyc_softmax_ce_params_t;

/* label: one int32 (0 <= label < classes; anything else gives loss 0 and zero gradients).
 * loss: one float; pred: one int32, the argmax of the logits (first of ties). */
void tinyc_softmax_ce_s8(const tinyc_softmax_ce_params_t *p, const int8_t *logits, const int32_t *label,
                         float *dlogits, float *loss, int32_t *pred);

float tinyc_expf(float x);
float tinyc_logf(float x);

#endif /* TINYC_TRAIN_LOSS_H */
