/* Arm CMSDK APB UART (MPS2 boards in QEMU). Registers: DATA +0, STATE +4 (bit0 TXFULL,
 * bit1 RXFULL), CTRL +8 (bit0 TXEN, bit1 RXEN), BAUDDIV +0x10. Polled: no interrupts. */
#include "tinyc_board.h"
#include "tinyc_fw.h"

#if defined(TINYC_UART_CMSDK)
typedef struct {
    volatile uint32_t DATA, STATE, CTRL, INTSTATUS, BAUDDIV;
} cmsdk_uart_t;
#define UART ((cmsdk_uart_t *)TINYC_UART_BASE)

#define NVIC_ISER ((volatile uint32_t *)0xE000E100u)
#define NVIC_ICPR ((volatile uint32_t *)0xE000E280u)
#define ICSR (*(volatile uint32_t *)0xE000ED04u)

void uart_init(void)
{
    UART->BAUDDIV = 16; /* QEMU ignores the rate but warns below 16 */
    /* TXEN | RXEN (without TXEN, TXFULL sticks and putc hangs) | RXINTEN: the RX interrupt is
     * never taken (PRIMASK stays set) but wakes WFI. Sleeping instead of spinning on STATE lets
     * QEMU's I/O thread run: the frame round trip drops from ~45 ms to about a millisecond. */
    UART->CTRL = 0x3u | (1u << 3);
    __asm__ volatile("cpsid i" ::: "memory");
    for (int i = 0; i < 8; i++) {
        NVIC_ISER[i] = 0xFFFFFFFFu;
    }
}

void uart_putc(uint8_t c)
{
    while (UART->STATE & 1u) {
    }
    UART->DATA = c;
}

int uart_poll(void)
{
    if (!(UART->STATE & 2u)) {
        /* Sleep until a byte or a SysTick wrap (enabled with TICKINT in time_init): the
         * receive timeout still advances. Clear what woke us so the next WFI sleeps again. */
        __asm__ volatile("wfi" ::: "memory");
        UART->INTSTATUS = 0xFu;
        for (int i = 0; i < 8; i++) {
            NVIC_ICPR[i] = 0xFFFFFFFFu;
        }
        ICSR = 1u << 25; /* PENDSTCLR */
        if (!(UART->STATE & 2u)) {
            return -1;
        }
    }
    return (int)(UART->DATA & 0xFFu);
}

void uart_write(const uint8_t *p, uint32_t n)
{
    while (n--) {
        uart_putc(*p++);
    }
}
#endif
