/* mobopt's instruction-counting TCG plugin for QEMU 7.2 user mode (plugin API v1).
 *
 * Counts every executed guest instruction (one inline add per translated block) and, on an aarch64
 * guest, by decoding each instruction word once at translation, the instructions of four classes
 * (one inline add per such instruction): AdvSIMD int8 dot products (SDOT/UDOT/USDOT/SUDOT), i8mm
 * matrix multiplies (SMMLA/UMMLA/USMMLA), SVE and SME encodings.  An x86_64 guest's instructions
 * are counted in total only (its classes stay 0).  The guest marks points of interest with a write
 * to file descriptor 0x7777 (it fails with EBADF in the guest, harmlessly); the plugin sees the
 * syscall and snapshots its counters under the length written.  At exit it prints one line per
 * marker to stderr:
 *     ICOUNT marker=<k> total=<n> dot=<n> i8mm=<n> sve=<n> sme=<n>
 * The counters are not atomic: run one guest thread (the benchmark pins num_threads=1).
 *
 * QEMU 7.2 ships no plugin headers in Debian, so the few v1 prototypes used are declared here,
 * as include/qemu/qemu-plugin.h of that version has them. */
#include <stdint.h>
#include <stdio.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct { const char *target_name; struct { int min, cur; } version;
                 bool system_emulation; union { struct { int a, b; } s; }; } qemu_info_t;
struct qemu_plugin_tb; struct qemu_plugin_insn;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*tb_trans_cb)(qemu_plugin_id_t, struct qemu_plugin_tb *);
typedef void (*udata_cb)(qemu_plugin_id_t, void *);
typedef void (*syscall_cb)(qemu_plugin_id_t, unsigned int, int64_t, uint64_t, uint64_t,
                           uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, tb_trans_cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *, enum qemu_plugin_op, void *, uint64_t);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *, enum qemu_plugin_op, void *, uint64_t);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *, size_t);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t, syscall_cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, udata_cb, void *);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

enum { TOTAL, DOT, MM, SVE, SME, NC };
static const char *names[NC] = { "total", "dot", "i8mm", "sve", "sme" };
static uint64_t cnt[NC];
#define MAXM 64
static uint64_t snap[MAXM][NC];
static uint64_t lab[MAXM];
static int nm;
static int arm = 1;              /* the guest is aarch64 (else x86_64) */
static int64_t write_nr = 64;    /* the guest's write syscall: 64 on aarch64, 1 on x86_64 */

/* Which class an A64 instruction word belongs to (-1: none counted apart). */
static int classify(uint32_t i) {
    if ((i & 0x9FE0FC00) == 0x0E809400) return DOT;   /* SDOT/UDOT (vector) */
    if ((i & 0xBFE0FC00) == 0x0E809C00) return DOT;   /* USDOT (vector) */
    if ((i & 0x9FC0F400) == 0x0F80E000) return DOT;   /* SDOT/UDOT (by element) */
    if ((i & 0xBF40F400) == 0x0F00F000) return DOT;   /* SUDOT/USDOT (by element) */
    if ((i & 0xDFE0F400) == 0x4E80A400) return MM;    /* SMMLA/UMMLA/USMMLA */
    if (((i >> 25) & 0xF) == 0x2) return SVE;         /* op0 x, op1 0010: SVE */
    if ((i >> 31) == 1 && ((i >> 25) & 0xF) == 0x0) return SME;
    return -1;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &cnt[TOTAL], n);
    for (size_t k = 0; arm && k < n; k++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, k);
        if (qemu_plugin_insn_size(insn) != 4) continue;
        uint32_t w;
        memcpy(&w, qemu_plugin_insn_data(insn), 4);
        int c = classify(w);
        if (c > 0) qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &cnt[c], 1);
    }
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1,
                       uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6,
                       uint64_t a7, uint64_t a8) {
    if (num == write_nr && a1 == 0x7777 && nm < MAXM) {   /* write(0x7777, buf, k) */
        memcpy(snap[nm], cnt, sizeof cnt);
        lab[nm++] = a3;
    }
}

static void print_line(const char *label, const uint64_t *c) {
    fprintf(stderr, "ICOUNT marker=%s", label);
    for (int k = 0; k < NC; k++) fprintf(stderr, " %s=%llu", names[k], (unsigned long long)c[k]);
    fprintf(stderr, "\n");
}

static void at_exit(qemu_plugin_id_t id, void *p) {
    char label[32];
    for (int m = 0; m < nm; m++) {
        snprintf(label, sizeof label, "%llu", (unsigned long long)lab[m]);
        print_line(label, snap[m]);
    }
    print_line("exit", cnt);
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
    if (info->target_name && strcmp(info->target_name, "x86_64") == 0) {
        arm = 0;
        write_nr = 1;
    } else if (!info->target_name || strcmp(info->target_name, "aarch64") != 0) {
        fprintf(stderr, "icount: unsupported guest %s (aarch64 or x86_64)\n", info->target_name ? info->target_name : "?");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
