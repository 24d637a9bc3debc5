#include "tinyc/fake_kernel.h"
int fake_kernel(const uint8_t *in, unsigned n, uint8_t *out, const uint8_t *w)
{
    uint32_t sum = 0;
    uint8_t x = 0;
    for (unsigned i = 0; i < n; i++) {
        sum += in[i];
        x ^= in[i];
    }
    out[0] = (uint8_t)sum;
    out[1] = x;
    out[2] = (uint8_t)(sum >> 8);
    out[3] = (uint8_t)(w[0] + w[3]);
    return 0;
}
