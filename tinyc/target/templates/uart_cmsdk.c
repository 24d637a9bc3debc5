/* Arm CMSDK APB UART (MPS2 boards in QEMU). Registers: DATA +0, STATE +4 (bit0 TXFULL,
 * bit1 RXFULL), CTRL +8 (bit0 TXEN, bit1 RXEN), BAUDDIV +0x10. Polled: no interrupts. */
#include "tinyc_board.h"
#include "tinyc_fw.h"

#if defined(TINYC_UART_CMSDK)
typedef struct {
    volatile uint32_t DATA, STATE, CTRL, INTSTATUS, BAUDDIV;
} cmsdk_uart_t;
#define UART ((cmsdk_uart_t *)TINYC_UART_BASE)

void uart_init(void)
{
    UART->BAUDDIV = 16; /* QEMU ignores the rate but warns below 16 */
    UART->CTRL = 0x3;   /* TXEN | RXEN: without TXEN, TXFULL sticks and putc hangs */
}

void uart_putc(uint8_t c)
{
    while (UART->STATE & 1u) {
    }
    UART->DATA = c;
}

int uart_poll(void)
{
    if (UART->STATE & 2u) {
        return (int)(UART->DATA & 0xFFu);
    }
    return -1;
}

void uart_write(const uint8_t *p, uint32_t n)
{
    while (n--) {
        uart_putc(*p++);
    }
}
#endif
