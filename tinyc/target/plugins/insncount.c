/* insncount: QEMU TCG plugin counting guest instructions between two marker functions.
 *
 * Why: QEMU has no DWT cycle counter (CYCCNT reads 0), but instruction counts are exact and
 * reproducible. The firmware calls tinyc_mark_begin() and tinyc_mark_end() around each
 * inference; this plugin records the instructions executed in between.
 *
 * Arguments: start=ADDR end=ADDR (marker addresses, Thumb bit ignored), out=PATH (optional:
 * each region count is appended to PATH and flushed at once, so the host can read it while the
 * guest keeps running). Counts also go to the QEMU log at exit (-d plugin).
 *
 * Written against QEMU 7.2's plugin API version 1; the declarations below replace
 * qemu-plugin.h, which Debian does not ship. Build: gcc -O2 -shared -fPIC -o insncount.so insncount.c
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))
typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, void (*)(qemu_plugin_id_t, struct qemu_plugin_tb *));
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *, void (*)(unsigned, void *),
                                          enum qemu_plugin_cb_flags, void *);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *, enum qemu_plugin_op, void *, uint64_t);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, void (*)(qemu_plugin_id_t, void *), void *);
void qemu_plugin_outs(const char *);

EXPORT int qemu_plugin_version = 1;

static uint64_t insns, start_addr = ~0ull, end_addr = ~0ull, snap, regions;
static FILE *out;

static void on_start(unsigned vcpu, void *udata)
{
    (void)vcpu;
    (void)udata;
    snap = insns;
}

static void on_end(unsigned vcpu, void *udata)
{
    (void)vcpu;
    (void)udata;
    regions++;
    if (out) {
        fprintf(out, "%llu\n", (unsigned long long)(insns - snap));
        fflush(out);
    }
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    uint64_t va = qemu_plugin_tb_vaddr(tb);
    if (va == start_addr) {
        qemu_plugin_register_vcpu_tb_exec_cb(tb, on_start, QEMU_PLUGIN_CB_NO_REGS, NULL);
    }
    if (va == end_addr) {
        qemu_plugin_register_vcpu_tb_exec_cb(tb, on_end, QEMU_PLUGIN_CB_NO_REGS, NULL);
    }
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &insns, qemu_plugin_tb_n_insns(tb));
}

static void on_exit_cb(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    char b[96];
    snprintf(b, sizeof b, "insncount: total=%llu regions=%llu\n", (unsigned long long)insns,
             (unsigned long long)regions);
    qemu_plugin_outs(b);
    if (out) {
        fclose(out);
        out = NULL;
    }
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (!strncmp(argv[i], "start=", 6)) {
            start_addr = strtoull(argv[i] + 6, NULL, 0) & ~1ull;
        } else if (!strncmp(argv[i], "end=", 4)) {
            end_addr = strtoull(argv[i] + 4, NULL, 0) & ~1ull;
        } else if (!strncmp(argv[i], "out=", 4)) {
            out = fopen(argv[i] + 4, "w");
            if (!out) {
                return -1;
            }
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_exit_cb, NULL);
    return 0;
}
