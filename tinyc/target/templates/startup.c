/* Cortex-M startup for tinyc firmware: vector table, stack painting, .data/.bss init, FPU
 * enable, fault reporting, SysTick time base, exit. Addresses come from the generated tinyc.ld. */
#include <stdint.h>
#include "tinyc_board.h"
#include "tinyc_fw.h"

extern uint32_t __StackTop, __StackLimit, __etext_data, __data_start__, __data_end__, __bss_start__, __bss_end__;
int main(void);
void Reset_Handler(void);
void reset_c(void);
void Default_Handler(void);
void HardFault_Handler(void);

#define STACK_PAINT 0xC5C5C5C5u
#define STACK_UNPAINTED 64u /* Reset_Handler leaves the top 64 bytes alone */

__attribute__((section(".isr_vector"), used)) void (*const tinyc_vectors[16 + 160])(void) = {
    (void (*)(void))(uintptr_t)&__StackTop, Reset_Handler, Default_Handler, HardFault_Handler,
    HardFault_Handler, HardFault_Handler, HardFault_Handler, 0, 0, 0, 0, Default_Handler,
    Default_Handler, 0, Default_Handler, Default_Handler, [16 ... 175] = Default_Handler};

/* Paint the stack with registers only (no stack exists yet), then continue in C. */
__attribute__((noreturn, naked)) void Reset_Handler(void)
{
    __asm__ volatile("ldr r0, =__StackLimit\n"
                     "ldr r1, =__StackTop\n"
                     "sub r1, r1, #64\n"
                     "ldr r2, =0xC5C5C5C5\n"
                     "1: cmp r0, r1\n"
                     "bhs 2f\n"
                     "str r2, [r0], #4\n"
                     "b 1b\n"
                     "2: b reset_c\n");
}

void reset_c(void)
{
    uint32_t *s = &__etext_data, *d = &__data_start__;
    while (d < &__data_end__) {
        *d++ = *s++;
    }
    for (d = &__bss_start__; d < &__bss_end__;) {
        *d++ = 0;
    }
#ifdef __ARM_FP
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: CP10/CP11 full access */
    __asm__ volatile("dsb\n isb");
#endif
    fw_exit(main());
}

uint32_t stack_used_bytes(void)
{
    const uint32_t *p = &__StackLimit;
    while (p < &__StackTop && *p == STACK_PAINT) {
        p++;
    }
    return (uint32_t)((uintptr_t)&__StackTop - (uintptr_t)p);
}

int semihost_call(int op, void *arg)
{
#if TINYC_SEMIHOSTING
    register int r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
#else
    (void)op;
    (void)arg;
    return -1;
#endif
}

void fw_exit(int code)
{
#if TINYC_SEMIHOSTING
    uint32_t blk[2] = {0x20026u /* ADP_Stopped_ApplicationExit */, (uint32_t)code};
    semihost_call(0x20 /* SYS_EXIT_EXTENDED */, blk);
#else
    (void)code;
    *(volatile uint32_t *)0xE000ED0Cu = 0x05FA0004u; /* AIRCR.SYSRESETREQ */
#endif
    for (;;) {
    }
}

static void put_hex(uint32_t v)
{
    for (int i = 28; i >= 0; i -= 4) {
        uart_putc((uint8_t)"0123456789abcdef"[(v >> i) & 0xFu]);
    }
}

static void fault(const char *what)
{
    /* Text on the binary link: the host sees a garbled reply and reports it with this text. */
    while (*what) {
        uart_putc((uint8_t)*what++);
    }
    uart_write((const uint8_t *)" CFSR=0x", 8);
    put_hex(*(volatile uint32_t *)0xE000ED28u);
    uart_write((const uint8_t *)" HFSR=0x", 8);
    put_hex(*(volatile uint32_t *)0xE000ED2Cu);
    uart_putc('\n');
    fw_exit(99);
}

void HardFault_Handler(void) { fault("tinyc-fault: HardFault"); }
void Default_Handler(void) { fault("tinyc-fault: unexpected interrupt"); }

/* Time base for receive timeouts and the EnergyRunner lap time.
 * SysTick runs in any case: on the CMSDK UART boards its wrap (pended, never taken) wakes the
 * UART's WFI so idle timeouts advance. Where the QEMU machine has a CMSDK TIMER0 (32 bits at
 * the SysTick clock) it is the time base: a 24-bit SysTick read after a long stall of the
 * emulator could have wrapped more than once and under-measure a gap; TIMER0 wraps after
 * minutes. Elsewhere SysTick is extended to 32 bits by polling (every UART poll). */
static uint32_t t_last, t_acc;

void time_init(void)
{
    *(volatile uint32_t *)0xE000E014u = 0x00FFFFFFu; /* LOAD */
    *(volatile uint32_t *)0xE000E018u = 0;           /* VAL */
#if defined(TINYC_UART_CMSDK)
    /* TICKINT too: the pended (never taken, PRIMASK is set) SysTick wakes the UART's WFI. */
    *(volatile uint32_t *)0xE000E010u = 0x7u;
#else
    *(volatile uint32_t *)0xE000E010u = 0x5u; /* CLKSOURCE=core, ENABLE, no interrupt */
#endif
    t_last = 0x00FFFFFFu;
    t_acc = 0;
#ifdef TINYC_TIMER0_BASE
    *(volatile uint32_t *)(TINYC_TIMER0_BASE + 0x8u) = 0xFFFFFFFFu; /* RELOAD */
    *(volatile uint32_t *)(TINYC_TIMER0_BASE + 0x4u) = 0xFFFFFFFFu; /* VALUE */
    *(volatile uint32_t *)(TINYC_TIMER0_BASE + 0x0u) = 1u;          /* CTRL.EN */
#endif
}

uint32_t time_ticks(void)
{
#ifdef TINYC_TIMER0_BASE
    return ~*(volatile uint32_t *)(TINYC_TIMER0_BASE + 0x4u); /* counts down from 2^32-1 */
#else
    uint32_t now = *(volatile uint32_t *)0xE000E018u & 0x00FFFFFFu;
    t_acc += (t_last - now) & 0x00FFFFFFu;
    t_last = now;
    return t_acc;
#endif
}
