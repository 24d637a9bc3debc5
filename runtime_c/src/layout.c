/* tinyc: data-layout kernels on raw bytes (see tinyc/layout.h).
 * Byte-for-byte the output of TFLM's reference Reshape, Transpose, StridedSlice, Pad,
 * Concatenation and Pack: those only move elements, so any order of copies that puts every
 * element in its place is exact. */
#include "tinyc/layout.h"

#include <stddef.h>
#include <string.h>

/* Write `count` copies of the `es`-byte element `value` at dst. The first copy is written
 * directly; the filled prefix then doubles, so a long fill costs O(log n) memcpy calls. */
static void fill_elems(uint8_t *dst, size_t count, const uint8_t *value, size_t es) {
  if (count == 0) {
    return;
  }
  if (es == 1) {
    memset(dst, value[0], count);
    return;
  }
  const size_t total = count * es;
  memcpy(dst, value, es);
  size_t done = es;
  while (done < total) {
    const size_t n = done < total - done ? done : total - done;
    memcpy(dst + done, dst, n);
    done += n;
  }
}

void tinyc_strided_copy(const tinyc_strided_copy_params_t *p, const void *in, void *out) {
  const size_t es = (size_t)p->elem_size;
  const int32_t *d = p->dims;
  ptrdiff_t st[TINYC_LAYOUT_MAX_DIMS]; /* byte strides */
  for (int k = 0; k < TINYC_LAYOUT_MAX_DIMS; ++k) {
    st[k] = (ptrdiff_t)p->in_strides[k] * (ptrdiff_t)es;
  }
  const uint8_t *base = (const uint8_t *)in + (ptrdiff_t)p->in_offset * (ptrdiff_t)es;
  uint8_t *dst = (uint8_t *)out;
  /* The innermost axis is either one contiguous run (memcpy) or a strided gather. */
  const int contiguous = p->in_strides[5] == 1;
  const size_t run = (size_t)d[5] * es;
  for (int32_t i0 = 0; i0 < d[0]; ++i0) {
    const uint8_t *s0 = base + (ptrdiff_t)i0 * st[0];
    for (int32_t i1 = 0; i1 < d[1]; ++i1) {
      const uint8_t *s1 = s0 + (ptrdiff_t)i1 * st[1];
      for (int32_t i2 = 0; i2 < d[2]; ++i2) {
        const uint8_t *s2 = s1 + (ptrdiff_t)i2 * st[2];
        for (int32_t i3 = 0; i3 < d[3]; ++i3) {
          const uint8_t *s3 = s2 + (ptrdiff_t)i3 * st[3];
          for (int32_t i4 = 0; i4 < d[4]; ++i4) {
            const uint8_t *s = s3 + (ptrdiff_t)i4 * st[4];
            if (contiguous) {
              memcpy(dst, s, run);
              dst += run;
            } else if (es == 1) {
              for (int32_t i5 = 0; i5 < d[5]; ++i5) {
                *dst++ = *s;
                s += st[5];
              }
            } else {
              for (int32_t i5 = 0; i5 < d[5]; ++i5) {
                memcpy(dst, s, es);
                dst += es;
                s += st[5];
              }
            }
          }
        }
      }
    }
  }
}

/* True when output index i of axis k falls inside the copied input. */
static int inside(const tinyc_pad_params_t *p, int k, int32_t i) {
  return i >= p->before[k] && i < p->before[k] + p->in_dims[k];
}

void tinyc_pad(const tinyc_pad_params_t *p, const void *in, void *out) {
  const size_t es = (size_t)p->elem_size;
  int32_t od[TINYC_LAYOUT_MAX_DIMS];
  for (int k = 0; k < TINYC_LAYOUT_MAX_DIMS; ++k) {
    od[k] = p->before[k] + p->in_dims[k] + p->after[k];
  }
  const uint8_t *src = (const uint8_t *)in;
  uint8_t *dst = (uint8_t *)out;
  const size_t row = (size_t)od[5];
  const size_t lead = (size_t)p->before[5];
  const size_t body = (size_t)p->in_dims[5];
  const size_t tail = (size_t)p->after[5];
  /* Output rows are visited in order; the rows inside the input are met in the input's own
   * row-major order, so the input is read sequentially. */
  for (int32_t i0 = 0; i0 < od[0]; ++i0) {
    const int in0 = inside(p, 0, i0);
    for (int32_t i1 = 0; i1 < od[1]; ++i1) {
      const int in1 = in0 && inside(p, 1, i1);
      for (int32_t i2 = 0; i2 < od[2]; ++i2) {
        const int in2 = in1 && inside(p, 2, i2);
        for (int32_t i3 = 0; i3 < od[3]; ++i3) {
          const int in3 = in2 && inside(p, 3, i3);
          for (int32_t i4 = 0; i4 < od[4]; ++i4) {
            if (in3 && inside(p, 4, i4)) {
              fill_elems(dst, lead, p->value, es);
              dst += lead * es;
              if (body > 0) {
                memcpy(dst, src, body * es);
              }
              dst += body * es;
              src += body * es;
              fill_elems(dst, tail, p->value, es);
              dst += tail * es;
            } else {
              fill_elems(dst, row, p->value, es);
              dst += row * es;
            }
          }
        }
      }
    }
  }
}

void tinyc_concat(const tinyc_concat_params_t *p, const void *in0, const void *in1, const void *in2,
                  const void *in3, const void *in4, const void *in5, const void *in6,
                  const void *in7, const void *in8, const void *in9, void *out) {
  const uint8_t *src[TINYC_CONCAT_MAX_INPUTS] = {
      (const uint8_t *)in0, (const uint8_t *)in1, (const uint8_t *)in2, (const uint8_t *)in3,
      (const uint8_t *)in4, (const uint8_t *)in5, (const uint8_t *)in6, (const uint8_t *)in7,
      (const uint8_t *)in8, (const uint8_t *)in9};
  uint8_t *dst = (uint8_t *)out;
  for (int32_t o = 0; o < p->outer; ++o) {
    for (int32_t i = 0; i < p->num_inputs; ++i) {
      const size_t n = (size_t)p->copy_bytes[i];
      if (n > 0) {
        memcpy(dst, src[i], n);
        src[i] += n;
        dst += n;
      }
    }
  }
}

void tinyc_write_const(const tinyc_write_const_params_t *p, void *out) {
  if (p->nbytes > 0) {
    memcpy(out, p->data, (size_t)p->nbytes);
  }
}
