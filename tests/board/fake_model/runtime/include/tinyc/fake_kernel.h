#ifndef TINYC_FAKE_KERNEL_H
#define TINYC_FAKE_KERNEL_H
#include <stdint.h>
int fake_kernel(const uint8_t *in, unsigned n, uint8_t *out, const uint8_t *w);
#endif
