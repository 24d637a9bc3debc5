/* Fake model following the compiler contract (tests only): one int8 input of 64 bytes,
 * output[0] = low byte of the sum of input bytes, output[1] = xor of them, output[2..3] = sum >> 8.
 * TINYC_FAKE_ARENA overrides the arena size to test the link-time fit check. */
#ifndef TINYC_MODEL_H
#define TINYC_MODEL_H
#ifndef TINYC_FAKE_ARENA
#define TINYC_FAKE_ARENA 256u
#endif
#define TINYC_ARENA_BYTES TINYC_FAKE_ARENA
#define TINYC_NUM_INPUTS 1u
#define TINYC_NUM_OUTPUTS 1u
#define TINYC_MODEL_HASH 0x1234abcdu
void *tinyc_input(int i);
void *tinyc_output(int i);
unsigned tinyc_input_bytes(int i);
unsigned tinyc_output_bytes(int i);
int tinyc_invoke(void);
#endif
