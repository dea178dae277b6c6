/* tests/test_switch.c — the context switch keeps what the ABI says a call keeps.
 * Callee-saved registers are loaded with known values in assembly, a function that yields (and
 * so switches to a goroutine that loads other values) is called, and the registers are compared
 * afterwards: on x86-64 rbx, rbp, r12-r15; on AArch64 x19-x28, the frame pointer x29, d8-d15
 * and sp, with the caller's lr kept on its stack across the switch (the check only returns to
 * its caller if the switch brought it back to the instruction after its call). The FP control
 * state (x86-64: MXCSR and the x87 control word; AArch64: FPCR) is set differently in
 * goroutines that interleave, and each checks its own after every switch; a new goroutine starts
 * with the ABI's default. */
#include <ringo.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tests/testutil.h"
#include "sched/sched.h" /* sched_ctx_switch, sched_ctx_init: the direct test below */

#if defined(__x86_64__)
/* int regs_check(void (*fn)(void), uint64_t seed): 1 if rbx, rbp, r12-r15 survived fn(). */
int regs_check(void (*fn)(void), uint64_t seed);
__asm__(".text\n"
        ".globl regs_check\n"
        ".type regs_check,@function\n"
        "regs_check:\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  subq $24, %rsp\n"
        "  movq %rdi, 0(%rsp)\n"           /* fn */
        "  movq %rsi, 8(%rsp)\n"           /* seed */
        "  movq %rsi, %rbx\n  leaq 1(%rsi), %r12\n  leaq 2(%rsi), %r13\n"
        "  leaq 3(%rsi), %r14\n  leaq 4(%rsi), %r15\n  leaq 5(%rsi), %rbp\n"
        "  callq *0(%rsp)\n"
        "  movq 8(%rsp), %rsi\n"
        "  xorl %eax, %eax\n"
        "  cmpq %rsi, %rbx\n  jne 1f\n"
        "  leaq 1(%rsi), %rdx\n  cmpq %rdx, %r12\n  jne 1f\n"
        "  leaq 2(%rsi), %rdx\n  cmpq %rdx, %r13\n  jne 1f\n"
        "  leaq 3(%rsi), %rdx\n  cmpq %rdx, %r14\n  jne 1f\n"
        "  leaq 4(%rsi), %rdx\n  cmpq %rdx, %r15\n  jne 1f\n"
        "  leaq 5(%rsi), %rdx\n  cmpq %rdx, %rbp\n  jne 1f\n"
        "  movl $1, %eax\n"
        "1:\n"
        "  addq $24, %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
        "  ret\n"
        ".size regs_check,.-regs_check\n");
#elif defined(__aarch64__)
/* int regs_check(void (*fn)(void), uint64_t seed): 1 if x19-x28, x29, d8-d15 and sp survived
 * fn(). x19 = seed, x20..x28 = seed+1..seed+9, x29 = seed+10, d8..d15 = the bit patterns
 * seed+11..seed+18 (every bit of the 64 that AAPCS64 keeps; the 0x..._0000_0000 seeds below
 * also make the high halves differ between goroutines). Frame (192 bytes): 0 x29/x30 (our
 * caller's), 16..95 x19-x28, 96..159 d8-d15, 160 fn, 168 seed, 176 sp. */
int regs_check(void (*fn)(void), uint64_t seed);
#define RC_SET(r, k) "  add " #r ", x1, #" #k "\n"
#define RC_CMP(r, k) "  add x9, x1, #" #k "\n  cmp " #r ", x9\n  b.ne 1f\n"
#define RC_DSET(d, k) "  add x9, x1, #" #k "\n  fmov " #d ", x9\n"
#define RC_DCMP(d, k) "  add x9, x1, #" #k "\n  fmov x10, " #d "\n  cmp x10, x9\n  b.ne 1f\n"
__asm__(".text\n"
        ".globl regs_check\n"
        ".type regs_check,%function\n"
        ".p2align 2\n"
        "regs_check:\n"
#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT == 1
        "  hint #34\n" /* bti c: called through a pointer in a BTI build */
#endif
        "  stp x29, x30, [sp, #-192]!\n"
        "  stp x19, x20, [sp, #16]\n  stp x21, x22, [sp, #32]\n  stp x23, x24, [sp, #48]\n"
        "  stp x25, x26, [sp, #64]\n  stp x27, x28, [sp, #80]\n"
        "  stp d8, d9, [sp, #96]\n  stp d10, d11, [sp, #112]\n  stp d12, d13, [sp, #128]\n"
        "  stp d14, d15, [sp, #144]\n"
        "  str x0, [sp, #160]\n  str x1, [sp, #168]\n"
        "  mov x9, sp\n  str x9, [sp, #176]\n"
        "  mov x19, x1\n"
        RC_SET(x20, 1) RC_SET(x21, 2) RC_SET(x22, 3) RC_SET(x23, 4) RC_SET(x24, 5)
        RC_SET(x25, 6) RC_SET(x26, 7) RC_SET(x27, 8) RC_SET(x28, 9) RC_SET(x29, 10)
        RC_DSET(d8, 11) RC_DSET(d9, 12) RC_DSET(d10, 13) RC_DSET(d11, 14)
        RC_DSET(d12, 15) RC_DSET(d13, 16) RC_DSET(d14, 17) RC_DSET(d15, 18)
        "  ldr x9, [sp, #160]\n"
        "  blr x9\n"
        "  mov w0, #0\n"
        "  ldr x9, [sp, #176]\n  mov x10, sp\n  cmp x9, x10\n  b.ne 1f\n"
        "  ldr x1, [sp, #168]\n"
        "  cmp x19, x1\n  b.ne 1f\n"
        RC_CMP(x20, 1) RC_CMP(x21, 2) RC_CMP(x22, 3) RC_CMP(x23, 4) RC_CMP(x24, 5)
        RC_CMP(x25, 6) RC_CMP(x26, 7) RC_CMP(x27, 8) RC_CMP(x28, 9) RC_CMP(x29, 10)
        RC_DCMP(d8, 11) RC_DCMP(d9, 12) RC_DCMP(d10, 13) RC_DCMP(d11, 14)
        RC_DCMP(d12, 15) RC_DCMP(d13, 16) RC_DCMP(d14, 17) RC_DCMP(d15, 18)
        "  mov w0, #1\n"
        "1:\n"
        "  ldp x19, x20, [sp, #16]\n  ldp x21, x22, [sp, #32]\n  ldp x23, x24, [sp, #48]\n"
        "  ldp x25, x26, [sp, #64]\n  ldp x27, x28, [sp, #80]\n"
        "  ldp d8, d9, [sp, #96]\n  ldp d10, d11, [sp, #112]\n  ldp d12, d13, [sp, #128]\n"
        "  ldp d14, d15, [sp, #144]\n"
        "  ldp x29, x30, [sp], #192\n"
        "  ret\n"
        ".size regs_check,.-regs_check\n");
#else
#error "tests/test_switch.c: no register check for this architecture"
#endif

static void yield_a_few(void)
{
    for (int i = 0; i < 5; i++)
        ringo_yield();
}

struct regs_arg {
    uint64_t seed;
    int rounds;
    int ok;
    struct ringo_waitgroup *wg;
};

static void regs_g(void *p)
{
    struct regs_arg *a = p;
    a->ok = 1;
    for (int i = 0; i < a->rounds; i++)
        if (!regs_check(yield_a_few, a->seed + (uint64_t)i * 16))
            a->ok = 0;
    ringo_wg_done(a->wg);
}

static int run_regs(void)
{
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    struct regs_arg a[4];
    ringo_wg_add(&wg, 4);
    for (int i = 0; i < 4; i++) {
        a[i] = (struct regs_arg){ .seed = 0x1000000000ull * (uint64_t)(i + 1), .rounds = 2000, .wg = &wg };
        ringo_go(regs_g, &a[i]);
    }
    ringo_wg_wait(&wg);
    return a[0].ok && a[1].ok && a[2].ok && a[3].ok;
}

static void test_switch_callee_saved_registers_survive(void **state)
{
    (void)state;
    assert_true(run_regs());
}

#if defined(__x86_64__)
static uint32_t get_mxcsr(void)
{
    uint32_t v;
    __asm__ volatile("stmxcsr %0" : "=m"(v));
    return v;
}
static void set_mxcsr(uint32_t v) { __asm__ volatile("ldmxcsr %0" ::"m"(v)); }
static uint16_t get_x87cw(void)
{
    uint16_t v;
    __asm__ volatile("fnstcw %0" : "=m"(v));
    return v;
}
static void set_x87cw(uint16_t v) { __asm__ volatile("fldcw %0" ::"m"(v)); }

/* the FP control state: MXCSR in the low 32 bits, the x87 control word above */
static uint64_t fpctl_get(void) { return get_mxcsr() | ((uint64_t)get_x87cw() << 32); }
static void fpctl_set(uint64_t v)
{
    set_mxcsr((uint32_t)v);
    set_x87cw((uint16_t)(v >> 32));
}
#define FPCTL(mxcsr, cw) ((uint64_t)(mxcsr) | ((uint64_t)(cw) << 32))
#define FPCTL_DEFAULT FPCTL(0x1F80, 0x037F)
/* rounding toward zero / down, FTZ in one of them; x87 rounding up / precision single */
#define FPCTL_A FPCTL(0x1F80 | (3u << 13), 0x037F | (2u << 10))
#define FPCTL_B FPCTL(0x1F80 | (1u << 13) | (1u << 15), 0x037F & ~(3u << 8))
#elif defined(__aarch64__)
static uint64_t fpctl_get(void)
{
    uint64_t v;
    __asm__ volatile("mrs %0, fpcr" : "=r"(v));
    return v;
}
static void fpctl_set(uint64_t v) { __asm__ volatile("msr fpcr, %0" ::"r"(v)); }
/* FPCR: RMode [23:22], FZ 24, DN 25, AHP 26 (bits every Armv8-A core implements) */
#define FPCR_RMODE(m) ((uint64_t)(m) << 22)
#define FPCR_FZ (1ull << 24)
#define FPCR_DN (1ull << 25)
#define FPCR_AHP (1ull << 26)
#define FPCTL_DEFAULT 0ull /* round to nearest, no flush-to-zero, no default NaN, no traps */
#define FPCTL_A (FPCR_RMODE(3) | FPCR_FZ)            /* toward zero, flush-to-zero */
#define FPCTL_B (FPCR_RMODE(1) | FPCR_DN | FPCR_AHP) /* toward +inf, default NaN, alt. half */
#endif

struct fp_arg {
    uint64_t ctl;
    int ok;
    struct ringo_waitgroup *wg;
};

static void fp_g(void *p)
{
    struct fp_arg *a = p;
    fpctl_set(a->ctl);
    a->ok = fpctl_get() == a->ctl; /* the bits are implemented: a check that can fail below */
    for (int i = 0; i < 20000; i++) {
        ringo_yield();
        if (fpctl_get() != a->ctl)
            a->ok = 0;
    }
    fpctl_set(FPCTL_DEFAULT); /* the worker's state is left as the ABI expects it */
    ringo_wg_done(a->wg);
}

static int run_fp(void)
{
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    struct fp_arg a[3] = {
        { .ctl = FPCTL_A, .wg = &wg },
        { .ctl = FPCTL_B, .wg = &wg },
        { .ctl = FPCTL_DEFAULT, .wg = &wg },
    };
    ringo_wg_add(&wg, 3);
    for (int i = 0; i < 3; i++)
        ringo_go(fp_g, &a[i]);
    ringo_wg_wait(&wg);
    return a[0].ok && a[1].ok && a[2].ok;
}

static void test_switch_fp_control_state_survives(void **state)
{
    (void)state;
    if (tu_on_valgrind())
        skip(); /* valgrind's CPU keeps round-to-nearest whatever MXCSR and the x87 CW say */
    assert_true(run_fp());
}

struct fp_default { int ok; struct ringo_waitgroup wg; };
static void default_fp_g(void *p)
{
    struct fp_default *a = p;
    a->ok = fpctl_get() == FPCTL_DEFAULT;
    ringo_wg_done(&a->wg);
}

static void test_switch_new_goroutine_has_default_fp_state(void **state)
{
    (void)state;
    struct fp_default a = { .ok = 0, .wg = RINGO_WAITGROUP_INIT };
    ringo_wg_add(&a.wg, 1);
    ringo_go(default_fp_g, &a);
    ringo_wg_wait(&a.wg);
    assert_true(a.ok);
}

#if defined(__aarch64__)
/* The direct test: sched_ctx_switch called from assembly, with no C frame in between. Through
 * ringo_yield, the C functions between regs_check and the switch restore x29 (and any x19-x28
 * they use) from their own frames, which would hide a switch that loses them; here the switch
 * alone must bring back every callee-saved register, the frame pointer and FPCR.
 *   direct_check(save, to, seed): sets x19-x29 and d8-d15 from seed (as regs_check) and FPCR to
 *     FPCTL_A, calls sched_ctx_switch(save, to), and returns 1 if all of them, and sp, came back.
 *   scramble_switch(save, to): loads other values into all of them (FPCR = FPCTL_B) and calls
 *     sched_ctx_switch(save, to); it is never resumed. */
int direct_check(void **save, void *to, uint64_t seed);
void scramble_switch(void **save, void *to);
#define DC_FPCR_A "0x1c00000" /* FPCTL_A: RMode 3 | FZ */
#define DC_FPCR_B "0x6400000" /* FPCTL_B: RMode 1 | DN | AHP */
_Static_assert(FPCTL_A == 0x1c00000 && FPCTL_B == 0x6400000, "DC_FPCR_*");
#define RC_SET2(r, k) "  add " #r ", x2, #" #k "\n"
#define RC_DSET2(d, k) "  add x9, x2, #" #k "\n  fmov " #d ", x9\n"
__asm__(".text\n"
        ".globl direct_check\n"
        ".type direct_check,%function\n"
        ".p2align 2\n"
        "direct_check:\n"
#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT == 1
        "  hint #34\n"
#endif
        "  stp x29, x30, [sp, #-192]!\n"
        "  stp x19, x20, [sp, #16]\n  stp x21, x22, [sp, #32]\n  stp x23, x24, [sp, #48]\n"
        "  stp x25, x26, [sp, #64]\n  stp x27, x28, [sp, #80]\n"
        "  stp d8, d9, [sp, #96]\n  stp d10, d11, [sp, #112]\n  stp d12, d13, [sp, #128]\n"
        "  stp d14, d15, [sp, #144]\n"
        "  mrs x9, fpcr\n  str x9, [sp, #160]\n  str x2, [sp, #168]\n"
        "  mov x9, sp\n  str x9, [sp, #176]\n"
        "  mov x19, x2\n"
        RC_SET2(x20, 1) RC_SET2(x21, 2) RC_SET2(x22, 3) RC_SET2(x23, 4) RC_SET2(x24, 5)
        RC_SET2(x25, 6) RC_SET2(x26, 7) RC_SET2(x27, 8) RC_SET2(x28, 9) RC_SET2(x29, 10)
        RC_DSET2(d8, 11) RC_DSET2(d9, 12) RC_DSET2(d10, 13) RC_DSET2(d11, 14)
        RC_DSET2(d12, 15) RC_DSET2(d13, 16) RC_DSET2(d14, 17) RC_DSET2(d15, 18)
        "  mov x9, #" DC_FPCR_A "\n  msr fpcr, x9\n"
        "  bl sched_ctx_switch\n"
        "  mov w0, #0\n"
        "  ldr x9, [sp, #176]\n  mov x10, sp\n  cmp x9, x10\n  b.ne 1f\n"
        "  mrs x10, fpcr\n  mov x9, #" DC_FPCR_A "\n  cmp x10, x9\n  b.ne 1f\n"
        "  ldr x1, [sp, #168]\n"
        "  cmp x19, x1\n  b.ne 1f\n"
        RC_CMP(x20, 1) RC_CMP(x21, 2) RC_CMP(x22, 3) RC_CMP(x23, 4) RC_CMP(x24, 5)
        RC_CMP(x25, 6) RC_CMP(x26, 7) RC_CMP(x27, 8) RC_CMP(x28, 9) RC_CMP(x29, 10)
        RC_DCMP(d8, 11) RC_DCMP(d9, 12) RC_DCMP(d10, 13) RC_DCMP(d11, 14)
        RC_DCMP(d12, 15) RC_DCMP(d13, 16) RC_DCMP(d14, 17) RC_DCMP(d15, 18)
        "  mov w0, #1\n"
        "1:\n"
        "  ldr x9, [sp, #160]\n  msr fpcr, x9\n"
        "  ldp x19, x20, [sp, #16]\n  ldp x21, x22, [sp, #32]\n  ldp x23, x24, [sp, #48]\n"
        "  ldp x25, x26, [sp, #64]\n  ldp x27, x28, [sp, #80]\n"
        "  ldp d8, d9, [sp, #96]\n  ldp d10, d11, [sp, #112]\n  ldp d12, d13, [sp, #128]\n"
        "  ldp d14, d15, [sp, #144]\n"
        "  ldp x29, x30, [sp], #192\n"
        "  ret\n"
        ".size direct_check,.-direct_check\n"
        ".globl scramble_switch\n"
        ".type scramble_switch,%function\n"
        ".p2align 2\n"
        "scramble_switch:\n"
#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT == 1
        "  hint #34\n"
#endif
        "  mov x2, #0x5a5a\n  movk x2, #0xa5a5, lsl #48\n"
        RC_SET2(x19, 100) RC_SET2(x20, 101) RC_SET2(x21, 102) RC_SET2(x22, 103) RC_SET2(x23, 104)
        RC_SET2(x24, 105) RC_SET2(x25, 106) RC_SET2(x26, 107) RC_SET2(x27, 108) RC_SET2(x28, 109)
        RC_SET2(x29, 110)
        RC_DSET2(d8, 111) RC_DSET2(d9, 112) RC_DSET2(d10, 113) RC_DSET2(d11, 114)
        RC_DSET2(d12, 115) RC_DSET2(d13, 116) RC_DSET2(d14, 117) RC_DSET2(d15, 118)
        "  mov x9, #" DC_FPCR_B "\n  msr fpcr, x9\n"
        "  bl sched_ctx_switch\n"
        "  brk #1\n"
        ".size scramble_switch,.-scramble_switch\n");

static void *dc_main_sp, *dc_other_sp;
static void dc_other_entry(void *arg)
{
    (void)arg;
    scramble_switch(&dc_other_sp, dc_main_sp);
}

static void test_switch_direct_keeps_every_callee_saved_register(void **state)
{
    (void)state;
    if (TU_SANITIZED || tu_on_valgrind())
        skip(); /* a switch the sanitizer (valgrind) is not told about; the tests above run there */
    enum { STK = 64 * 1024 };
    char *stk = aligned_alloc(64, STK);
    assert_non_null(stk);
    /* a stand-in descriptor at the stack's top, as goroutine.c places struct g */
    struct g *fake = (struct g *)(stk + STK - ((sizeof(struct g) + 63) & ~(size_t)63));
    memset(fake, 0, sizeof *fake);
    for (int i = 0; i < 100; i++) {
        sched_ctx_init(fake, dc_other_entry);
        dc_other_sp = fake->sp;
        assert_int_equal(direct_check(&dc_main_sp, dc_other_sp, 0x1000000000ull * (uint64_t)(i + 1)), 1);
    }
    free(stk);
}
#endif

/* One worker: the goroutines must interleave on the same thread. */
static int child_one_worker(void) { return run_regs() && (tu_on_valgrind() || run_fp()) ? 0 : 1; }

static void test_switch_on_one_worker(void **state)
{
    (void)state;
    struct child_result r;
    const char *env[] = { "RINGO_PROCS=1", NULL };
    tu_run_child("one_worker", env, 60, &r);
    assert_true(r.exited);
    assert_int_equal(r.code, 0);
}

static const struct child_scenario scenarios[] = {
    { "one_worker", child_one_worker },
    { NULL, NULL },
};

int main(int argc, char **argv)
{
    tu_maybe_child(argc, argv, scenarios);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_switch_callee_saved_registers_survive),
        cmocka_unit_test(test_switch_fp_control_state_survives),
        cmocka_unit_test(test_switch_new_goroutine_has_default_fp_state),
        cmocka_unit_test(test_switch_on_one_worker),
#if defined(__aarch64__)
        cmocka_unit_test(test_switch_direct_keeps_every_callee_saved_register),
#endif
    };
    return TU_RUN_GROUP("switch", tests, NULL, NULL);
}
