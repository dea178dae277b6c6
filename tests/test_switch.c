/* tests/test_switch.c — the context switch keeps what the ABI says a call keeps.
 * Callee-saved registers (rbx, rbp, r12-r15) are loaded with known values in assembly, a
 * function that yields (and so switches to a goroutine that loads other values) is called, and
 * the registers are compared afterwards. The FP control state (MXCSR, x87 control word) is set
 * differently in two goroutines that interleave, and each checks its own after every switch. */
#include <ringo.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tests/testutil.h"

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

struct fp_arg {
    uint32_t mxcsr;
    uint16_t cw;
    int ok;
    struct ringo_waitgroup *wg;
};

static void fp_g(void *p)
{
    struct fp_arg *a = p;
    set_mxcsr(a->mxcsr);
    set_x87cw(a->cw);
    a->ok = 1;
    for (int i = 0; i < 20000; i++) {
        ringo_yield();
        if (get_mxcsr() != a->mxcsr || get_x87cw() != a->cw)
            a->ok = 0;
    }
    ringo_wg_done(a->wg);
}

static int run_fp(void)
{
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    /* rounding toward zero / down, FTZ in one of them; x87 rounding up / precision single */
    struct fp_arg a[3] = {
        { .mxcsr = 0x1F80 | (3u << 13), .cw = 0x037F | (2u << 10), .wg = &wg },
        { .mxcsr = 0x1F80 | (1u << 13) | (1u << 15), .cw = (0x037F & ~(3u << 8)), .wg = &wg },
        { .mxcsr = 0x1F80, .cw = 0x037F, .wg = &wg },
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
    a->ok = get_mxcsr() == 0x1F80 && get_x87cw() == 0x037F;
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
    };
    return TU_RUN_GROUP("switch", tests, NULL, NULL);
}
