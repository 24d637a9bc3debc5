/* tinyc: the forward of layers whose weights train on some of their input channels only.
 *
 * Such a layer keeps its weights in two parts (tinyc/train/graph.py split_weights): the trained
 * channels in SRAM, updated by the training step, and the frozen ones in flash. Each part is the
 * whole tensor restricted to its entries along the channel axis (CONV_2D: the last axis of
 * [out_c][fh][fw][in_c]; depthwise: the last axis of [1][fh][fw][out_c]; FULLY_CONNECTED: the last
 * axis of [out][in]). The kernels here compute exactly what the model's kernels compute (TFLM's
 * reference integer arithmetic), reading each weight through the split; they write the output
 * pixel by pixel like the reference kernels (the planner gives these ops no overlap). */
#ifndef TINYC_SPLIT_WEIGHTS_H
#define TINYC_SPLIT_WEIGHTS_H

#include <stdint.h>

#include "tinyc/conv.h"
#include "tinyc/depthwise_conv.h"
#include "tinyc/fully_connected.h"

typedef struct {
  int32_t n_trained, n_frozen; /* entries of each part along the channel axis */
  const uint16_t *slot;        /* per entry along the axis: bit 15 set: the trained part's entry
                                  slot & 0x7fff; else the frozen part's entry slot */
} tinyc_split_t;

/* The weight at row `outer` (everything before the channel axis, flattened) and entry k. */
static inline int8_t tinyc_split_w(const tinyc_split_t *s, const int8_t *frozen, const int8_t *trained,
                                   int32_t outer, int32_t k) {
  const uint32_t v = s->slot[k];
  return (v & 0x8000u) != 0u ? trained[outer * s->n_trained + (int32_t)(v & 0x7fffu)]
                             : frozen[outer * s->n_frozen + (int32_t)v];
}

/* Each kernel's params: the model kernel's own params and the split of its weights. */
typedef struct {
  tinyc_conv2d_params_t conv;
  tinyc_split_t split;
} tinyc_conv2d_split_params_t;
typedef struct {
  tinyc_depthwise_conv2d_params_t conv;
  tinyc_split_t split;
} tinyc_depthwise_split_params_t;
typedef struct {
  tinyc_fully_connected_params_t fc;
  tinyc_split_t split;
} tinyc_fully_connected_split_params_t;
typedef struct {
  tinyc_fully_connected_pc_params_t fc;
  tinyc_split_t split;
} tinyc_fully_connected_pc_split_params_t;

void tinyc_conv2d_s8_split(const tinyc_conv2d_split_params_t *pp, const int8_t *input, const int8_t *frozen,
                           const int8_t *trained, const int32_t *bias, int8_t *output);
void tinyc_depthwise_conv2d_s8_split(const tinyc_depthwise_split_params_t *pp, const int8_t *input,
                                     const int8_t *frozen, const int8_t *trained, const int32_t *bias,
                                     int8_t *output);
void tinyc_fully_connected_s8_split(const tinyc_fully_connected_split_params_t *pp, const int8_t *input,
                                    const int8_t *frozen, const int8_t *trained, const int32_t *bias,
                                    int8_t *output);
void tinyc_fully_connected_s8_pc_split(const tinyc_fully_connected_pc_split_params_t *pp, const int8_t *input,
                                       const int8_t *frozen, const int8_t *trained, const int32_t *bias,
                                       int8_t *output);

#endif /* TINYC_SPLIT_WEIGHTS_H */
