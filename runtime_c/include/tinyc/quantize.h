/* tinyc: QUANTIZE and DEQUANTIZE, bit-exact with TFLM's reference kernels
 * (tensorflow/lite/micro/kernels/quantize_common.cc, dequantize_common.cc and
 * reference/quantize.h, requantize.h, dequantize.h).
 *
 * The only float arithmetic in tinyc's runtime lives here, because the model's own float input
 * or output is converted here:
 *   tinyc_quantize_f32_{s8,u8}    q = clamp(round(x / scale) + zero_point), float32 division
 *                                 and round-half-away-from-zero, exactly as TFLM's AffineQuantize.
 *   tinyc_dequantize_{s8,u8}_f32  x = scale * (q - zero_point).
 * Integer-to-integer QUANTIZE (a requantization, e.g. the uint8 image input of Wake Vision models)
 * uses the fixed-point multiplier of s_in / s_out computed by the compiler:
 *   tinyc_requantize_{s8_s8,s8_u8,u8_s8}  q' = clamp(MultiplyByQuantizedMultiplier(q - z_in) + z_out).
 */
#ifndef TINYC_QUANTIZE_H
#define TINYC_QUANTIZE_H

#include <stdint.h>

typedef struct {
  int32_t size;        /* elements */
  float scale;         /* output scale (float32, as stored in the model) */
  int32_t zero_point;  /* output zero point */
} tinyc_quantize_params_t;

typedef struct {
  int32_t size;
  int32_t input_offset;   /* -input zero point */
  int32_t output_offset;  /* output zero point */
  int32_t multiplier;     /* Q0.31 of s_in / s_out */
  int32_t shift;          /* positive = left */
} tinyc_requantize_params_t;

typedef struct {
  int32_t size;
  float scale;         /* input scale */
  int32_t zero_point;  /* input zero point */
} tinyc_dequantize_params_t;

void tinyc_quantize_f32_s8(const tinyc_quantize_params_t *p, const float *in, int8_t *out);
void tinyc_quantize_f32_u8(const tinyc_quantize_params_t *p, const float *in, uint8_t *out);

void tinyc_requantize_s8_s8(const tinyc_requantize_params_t *p, const int8_t *in, int8_t *out);
void tinyc_requantize_s8_u8(const tinyc_requantize_params_t *p, const int8_t *in, uint8_t *out);
void tinyc_requantize_u8_s8(const tinyc_requantize_params_t *p, const uint8_t *in, int8_t *out);

void tinyc_dequantize_s8_f32(const tinyc_dequantize_params_t *p, const int8_t *in, float *out);
void tinyc_dequantize_u8_f32(const tinyc_dequantize_params_t *p, const uint8_t *in, float *out);

#endif /* TINYC_QUANTIZE_H */
