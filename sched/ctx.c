/* sched/ctx.c — switching between goroutines and the worker's own context (g0).
 *
 * Responsibility: the one wrapper around the assembly switch (arch/), which tells ASan, TSan
 * and valgrind about every stack change; the first frame of a new goroutine (ctx_make); and
 * the post-switch step that the context running after a switch performs for the g that left
 * (I3: a g is enqueued only once its context is saved).
 *
 * Invariants: I2-I4 of sched.h. In addition:
 *   X1  w->prev/w->prev_action are set only by switch_to, just before the switch, and consumed
 *       (once) by sched_post_switch in whichever context runs next on that worker.
 *   X2  A context resumed by a switch re-reads its worker (I4): it may be another thread.
 * Contexts: sched_switch_* on a goroutine; sched_post_switch on the context that was switched to.
 * Depends on: sched.h, arch/ (sched_ctx_switch, sched_ctx_trampoline); runq.c and proc.c for
 * what post-switch enqueues and whom it wakes; goroutine.c for freeing a dead g.
 */
#include "sched/sched.h"

#ifdef RINGO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef RINGO_TSAN
#include <sanitizer/tsan_interface.h>
#endif
#ifdef RINGO_VALGRIND
#include <valgrind/valgrind.h>
#endif

TSAN_NO_FRAMES static inline void do_switch(struct worker *w, void **save, struct g *to, bool dying)
{
#ifdef RINGO_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(dying ? NULL : &fake, to ? to->stack_lo : w->g0_lo,
                                   to ? to->stack_size : w->g0_size);
#endif
#ifdef RINGO_TSAN
    __tsan_switch_to_fiber(to ? to->tsan_fiber : w->tsan_g0, 0);
#endif
    sched_stat_inc(&w->st_switches); /* stats only */
    sched_ctx_switch(save, to ? to->sp : w->g0_sp);
#ifdef RINGO_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
    (void)dying;
}

TSAN_NO_FRAMES static void switch_to(struct worker *w, struct g *self, struct g *next, int action)
{
    w->prev = self;
    w->prev_action = action;
    w->curg = next;
    if (next)
        atomic_store_explicit(&next->status, GS_RUNNING, memory_order_relaxed); /* I2: we own it now */
    do_switch(w, &self->sp, next, action == PA_EXIT);
    /* resumed, perhaps on another worker (I4) */
    sched_post_switch(sched_cur_worker());
}

void sched_switch_out(struct worker *w, struct g *self, int action)
{
    struct g *next = sched_next_local(w);
    if (!next && action == PA_YIELD)
        return; /* nothing else to run */
    switch_to(w, self, next, action);
}

void sched_switch_away(struct worker *w, struct g *self, int action)
{
    switch_to(w, self, sched_next_local(w), action);
}

void sched_switch_to_new(struct worker *w, struct g *self, struct g *child)
{
    switch_to(w, self, child, PA_RUNNEXT);
}

TSAN_NO_FRAMES void sched_switch_exit(struct worker *w, struct g *self)
{
    struct g *next = sched_next_local(w);
    switch_to(w, self, next, PA_EXIT);
    __builtin_unreachable();
}


void sched_post_switch(struct worker *w)
{
    struct g *p = w->prev;
    if (!p)
        return;
    w->prev = NULL;
    switch (w->prev_action) {
    case PA_PARK: {
        uint32_t exp = GS_PARKING;
        /* release: p's saved context is visible to whoever readies it from PARKED;
         * acquire on failure: pairs with the waker's CAS to WOKEN (its writes for p) */
        if (atomic_compare_exchange_strong_explicit(&p->status, &exp, GS_PARKED, memory_order_acq_rel,
                                                    memory_order_acquire)) {
            if (unlikely(w->locked))
                sched_lockw_parked(w, p); /* lockthread.c L3 (reads only p's own fields) */
            break;
        }
        /* WOKEN while switching out (I3): we enqueue it */
        atomic_store_explicit(&p->status, GS_RUNNABLE, memory_order_relaxed); /* published by R1 */
        runq_put(w, p);
        sched_wakep();
        break;
    }
    case PA_YIELD:
        atomic_store_explicit(&p->peer_ready, 0, memory_order_relaxed); /* proc.c F7: it computes */
        atomic_store_explicit(&p->status, GS_RUNNABLE, memory_order_relaxed); /* published by R1 */
        runq_put(w, p);
        break;
    case PA_RUNNEXT:
        atomic_store_explicit(&p->peer_ready, 0, memory_order_relaxed); /* proc.c F7: a spawner */
        atomic_store_explicit(&p->status, GS_RUNNABLE, memory_order_relaxed); /* published by the exchange */
        runnext_put(w, p);
        sched_wakep(); /* relaxed reads: the parent is on an awake worker (see top) */
        break;
    case PA_EXIT:
        sched_g_free(w, p);
        break;
    case PA_LOCK:
        sched_lockw_start(w, p);
        break;
    case PA_UNLOCK:
        atomic_store_explicit(&p->status, GS_RUNNABLE, memory_order_relaxed); /* published by the queue lock */
        sched_global_push(p);
        break;
    }
}

/* Run g from the worker's own context; returns when g switches back to g0. */
void sched_run_from_g0(struct worker *w, struct g *g)
{
    w->curg = g;
    atomic_store_explicit(&g->status, GS_RUNNING, memory_order_relaxed); /* I2: we own it now */
    do_switch(w, &w->g0_sp, g, false);
    sched_post_switch(w);
}

/* ------------------------------------------------------------------ new goroutines */

/* The new stack's first frame: what sched_ctx_switch pops (sched/arch/arch.h CTX_*, and the
 * frame table of the arch's switch file), returning into sched_ctx_trampoline with the entry
 * function and its argument in two callee-saved registers, a zero frame pointer (the end of a
 * frame-pointer walk) and the ABI's default FP control state. */
#if defined(__x86_64__)
static void *ctx_make(char *top, void (*entry)(void *), void *arg)
{
    uintptr_t t = (uintptr_t)top & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(t - 8 - 0x38);          /* ret slot at t-8: rsp == t after ret */
    _Static_assert(CTX_FRAME_BYTES == 0x40 && CTX_OFF_FP == 6 * 8 && CTX_OFF_PC == 7 * 8, "arch.h");
    sp[0] = 0x1F80ull | (0x037Full << 32);               /* default MXCSR, x87 control word */
    sp[1] = 0;                                           /* r15 */
    sp[2] = 0;                                           /* r14 */
    sp[3] = (uint64_t)(uintptr_t)entry;                  /* r13 */
    sp[4] = (uint64_t)(uintptr_t)arg;                    /* r12 */
    sp[5] = 0;                                           /* rbx */
    sp[6] = 0;                                           /* rbp */
    sp[7] = (uint64_t)(uintptr_t)sched_ctx_trampoline;   /* return address */
    return sp;
}
#elif defined(__aarch64__)
static void *ctx_make(char *top, void (*entry)(void *), void *arg)
{
    uintptr_t t = (uintptr_t)top & ~(uintptr_t)15;      /* sp == t after the switch (A1) */
    uint64_t *sp = (uint64_t *)(t - CTX_FRAME_BYTES);
    for (unsigned i = 0; i < CTX_FRAME_BYTES / 8; i++)
        sp[i] = 0;                                       /* x29 = 0, d8-d15 = 0, FPCR = 0: round
                                                            to nearest, no traps, no FZ/DN/AH */
    sp[CTX_OFF_X19 / 8] = (uint64_t)(uintptr_t)arg;      /* x19 */
    sp[CTX_OFF_X19 / 8 + 1] = (uint64_t)(uintptr_t)entry; /* x20 */
    /* the switch authenticates the return address against sp == t when return addresses are
     * signed (the helper lives in the same file, so signing and checking always agree) */
    sp[CTX_OFF_PC / 8] = (uint64_t)sched_ctx_sign_pc((uintptr_t)sched_ctx_trampoline, t);
    return sp;
}
#endif

/* A stack slot carved for the first time (goroutine.c): valgrind learns its bounds. */
void sched_ctx_stack_new(struct g *g)
{
#ifdef RINGO_VALGRIND
    VALGRIND_STACK_REGISTER(g->stack_lo, (char *)g);
#else
    (void)g;
#endif
}

/* g's slot is about to lose its pages, descriptor included (goroutine.c S3): what the
 * descriptor holds of the tools' state goes first. */
void sched_ctx_stack_release(struct g *g)
{
#ifdef RINGO_TSAN
    if (g->tsan_fiber) {
        __tsan_destroy_fiber(g->tsan_fiber);
        g->tsan_fiber = NULL;
    }
#else
    (void)g;
#endif
}

/* Prepare g to start in entry(g) at its next switch-in. */
void sched_ctx_init(struct g *g, void (*entry)(void *))
{
#ifdef RINGO_ASAN
    /* a recycled stack still carries the shadow poison of the dead goroutine's frames */
    __asan_unpoison_memory_region(g->stack_lo, g->stack_size);
#endif
    g->sp = ctx_make((char *)g, entry, g);
#ifdef RINGO_TSAN
    /* A TSan fiber costs a few mmaps to make and unmap (~0.7 ms under load): it stays with the
     * descriptor and serves every goroutine this slot runs (the exit path leaves nothing on its
     * shadow stack: TSAN_NO_FRAMES in sched.h), until the pool's decay gives the slot's pages
     * back (sched_ctx_stack_release destroys it first). */
    if (!g->tsan_fiber)
        g->tsan_fiber = __tsan_create_fiber(0);
#endif
}

/* First thing on a new goroutine's stack: end the switch ASan was told about. */
void sched_ctx_entered(void)
{
#ifdef RINGO_ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
}
