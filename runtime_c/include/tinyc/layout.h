/* tinyc: data-layout kernels (RESHAPE copy, SQUEEZE, EXPAND_DIMS, TRANSPOSE, STRIDED_SLICE, PAD,
 * PADV2, CONCATENATION, PACK, SHAPE).
 *
 * These ops move bytes and never compute on them, so every kernel here works on raw bytes with
 * an element size taken from the params: one implementation serves int8, uint8, int16, int32
 * and float32 alike (TFLM's transpose makes the same observation).
 *
 * The compiler (tinyc/ops/layout.py) does all the index arithmetic of TFLM's Prepare: it
 * resolves masks, negative indices and permutations into plain extents and strides, drops
 * size-1 axes and merges axes that are contiguous on both sides, so a RESHAPE copy becomes a
 * single memcpy and a TRANSPOSE an at most 6-deep loop of short runs.
 *
 * Multi-byte pad values are stored as their little-endian bytes (every supported target,
 * Cortex-M and the x86-64/AArch64 host, is little-endian). */
#ifndef TINYC_LAYOUT_H
#define TINYC_LAYOUT_H

#include <stdint.h>

#define TINYC_LAYOUT_MAX_DIMS 6
#define TINYC_CONCAT_MAX_INPUTS 10 /* TFLM's kMaxInputNum for CONCATENATION */

/* out[i0..i5] = in[in_offset + sum_k i_k * in_strides[k]], output dense in row-major order.
 * dims are the output extents, outermost first, padded on the left with 1. Strides and the
 * offset are in elements; strides may be negative (reversed STRIDED_SLICE). When
 * in_strides[5] == 1 the innermost axis is copied with one memcpy per run. */
typedef struct {
  int32_t elem_size;
  int32_t dims[TINYC_LAYOUT_MAX_DIMS];
  int32_t in_strides[TINYC_LAYOUT_MAX_DIMS];
  int32_t in_offset;
} tinyc_strided_copy_params_t;

void tinyc_strided_copy(const tinyc_strided_copy_params_t *p, const void *in, void *out);

/* Constant padding. in_dims, before and after per axis, outermost first, padded on the left
 * with (1, 0, 0); the output extent of axis k is before[k] + in_dims[k] + after[k].
 * value holds the bytes of the one pad element (elem_size <= 8). */
typedef struct {
  int32_t elem_size;
  uint8_t value[8];
  int32_t in_dims[TINYC_LAYOUT_MAX_DIMS];
  int32_t before[TINYC_LAYOUT_MAX_DIMS];
  int32_t after[TINYC_LAYOUT_MAX_DIMS];
} tinyc_pad_params_t;

void tinyc_pad(const tinyc_pad_params_t *p, const void *in, void *out);

/* CONCATENATION and PACK: for each of `outer` steps, input i contributes copy_bytes[i]
 * contiguous bytes, in input order. Unused input pointers are NULL. No requantization: TFLM's
 * int8 CONCATENATION copies the bytes whatever the input scales are, and so do we. */
typedef struct {
  int32_t num_inputs;
  int32_t outer;
  int32_t copy_bytes[TINYC_CONCAT_MAX_INPUTS];
} tinyc_concat_params_t;

void tinyc_concat(const tinyc_concat_params_t *p, const void *in0, const void *in1, const void *in2,
                  const void *in3, const void *in4, const void *in5, const void *in6,
                  const void *in7, const void *in8, const void *in9, void *out);

/* Writes bytes known at compile time (SHAPE of a static shape that could not be folded away
 * because it is a model output). */
typedef struct {
  int32_t nbytes;
  const uint8_t *data;
} tinyc_write_const_params_t;

void tinyc_write_const(const tinyc_write_const_params_t *p, void *out);

#endif /* TINYC_LAYOUT_H */
