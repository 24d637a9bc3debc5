/* tinyc firmware services: UART, time, exit. One interface, one driver per board family. */
#ifndef TINYC_FW_H
#define TINYC_FW_H
#include <stdint.h>

void uart_init(void);
void uart_putc(uint8_t c);
int uart_poll(void);                  /* next received byte, or -1 if none yet */
void uart_write(const uint8_t *p, uint32_t n);

void time_init(void);
uint32_t time_ticks(void);            /* free-running, TINYC_TICK_HZ, wraps at 2^32 */

void fw_exit(int code);               /* QEMU: semihosting exit; board: reset */
uint32_t stack_used_bytes(void);      /* high-water mark from stack painting */
int semihost_call(int op, void *arg); /* only meaningful under QEMU */
#endif
