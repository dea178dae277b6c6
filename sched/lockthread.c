/* sched/lockthread.c — ringo_lock_thread / ringo_unlock_thread: a goroutine wired to a thread.
 *
 * Responsibility: Go's LockOSThread for thread-affine libraries (OpenGL, C libraries that keep
 * state in thread-local storage): while locked, the goroutine runs only on its thread, and that
 * thread runs nothing else.
 *
 * How (and how it differs from Go). Go keeps the goroutine on the thread it runs on and hands
 * that thread's P to another thread. A ringo worker's thread owns its io_uring ring and its run
 * queue and cannot be given away cheaply, so the goroutine moves instead: to a locked worker
 * (struct lockw), a thread of its own with a struct worker that is not in sched.w — no thief,
 * timer scan, sysmon or wake-up ever looks at it — and whose scheduling loop runs only its one
 * goroutine. Thread-local state set before ringo_lock_thread belongs to the old thread; set it
 * up after the call (as with Go's usual "LockOSThread first" pattern, this is where it matters).
 * On the locked worker:
 *   - a park switches to the loop (sched_next_local returns NULL for it), which sleeps on its
 *     bell until the goroutine is readied or its earliest timer is due (its timers live in its
 *     own heap and only it fires them);
 *   - a ready from anywhere else is handed over by the mailbox (sched_enqueue_ready ->
 *     sched_lockw_hand); from the locked worker itself it goes to its own run queue;
 *   - goroutines it starts go to the global queue (never child-first on this thread);
 *   - I/O calls are the plain system calls (w->io is NULL: the thread may block, it is the
 *     goroutine's), ringo_blocking runs fn inline, ringo_block_begin/end do nothing;
 *   - a yield returns at once (nothing else may run here).
 * ringo_unlock_thread (the last of nested locks, as Go counts them) sends the goroutine back to
 * the global queue; a goroutine that returns while locked ends the thread (as in Go: the
 * thread's state is presumed spoiled). A lockw is made with its thread at the first lock and,
 * after its thread ended, kept on a free list for the next one, never freed: a waker that
 * read g->lockw touches valid memory.
 *
 * Invariants:
 *   L1  A lockw runs at most one goroutine, its lg, for the life of one lock; g->lockw == lw
 *       exactly while g is locked (set by g before it moves, cleared by g before it leaves).
 *   L2  Mailbox: a waker on another thread stores g into lw->mail (seq_cst) and then exchanges
 *       lw->bell to 1 (seq_cst), futex-waking if it was 0; the loop stores bell = 0 (seq_cst)
 *       and then reads mail (seq_cst) before sleeping on bell == 0. If the loop's read misses
 *       the store, the waker's exchange follows the loop's store in the single order and reads
 *       0: it wakes the loop (or the futex sees 1 and returns). No lost wake-up.
 *   L3  Deadlock accounting: a locked worker counts as an active thread (sched.nthreads_active)
 *       from the lock to its end, except while its goroutine is parked forever: the loop drops
 *       the count after the PARKING -> PARKED step of a forever park, and sched_ready, which
 *       alone makes it runnable again (a forever park has no deadline), adds it back before
 *       its CAS (park.c I5), in the PARKED branch only — the one in which the loop dropped it.
 * Contexts: ringo_lock_thread/unlock on goroutines; sched_lockw_hand from any thread.
 * Depends on: sched.h (worker, park protocol, timers, post-switch actions), proc.c (the global
 *   queue, the current-worker TLS), kernel_iface/futex, kernel_iface/clock.
 */
#include "sched/sched.h"
#include "kernel_iface/clock.h"
#include "kernel_iface/futex.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

struct lockw {
    struct worker w;              /* first: a struct worker * is a struct lockw * when locked */
    _Atomic(struct g *) mail;     /* L2: the goroutine, readied by another thread */
    _Atomic uint32_t bell;        /* L2: futex word, 0 while the loop sleeps */
    struct g *lg;                 /* L1: the goroutine (NULL once it left or ended) */
    struct lockw *next_free;      /* under free_lock */
};

static pthread_mutex_t free_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lockw *free_list;
static atomic_uint lockw_seq;

static void bell_ring(struct lockw *lw)
{
    /* seq_cst: L2 */
    if (atomic_exchange_explicit(&lw->bell, 1, memory_order_seq_cst) == 0)
        futex_wake((uint32_t *)&lw->bell, 1);
}

void sched_lockw_hand(struct worker *w, struct g *g)
{
    struct lockw *lw = (struct lockw *)(void *)w;
    if (sched_cur_worker() == w) {
        runq_put(w, g); /* the loop itself (its timers): the owner pushes its own ring */
        return;
    }
    atomic_store_explicit(&lw->mail, g, memory_order_seq_cst); /* L2 */
    bell_ring(lw);
}

/* Post-switch on the locked worker after a park that reached PARKED (ctx.c): L3. */
void sched_lockw_parked(struct worker *w, struct g *p)
{
    (void)w;
    if (!p->forever)
        return;
    sched_dl_add(&sched.nthreads_blocked, 1);
    /* seq_cst: the Dekker pair with workers going idle, as thread_park's (park.c) */
    if (sched_dl_add(&sched.nthreads_active, -1) == 1)
        sched_debug_hooks.check_deadlock(0);
}

static struct g *take(struct lockw *lw)
{
    struct g *g = atomic_exchange_explicit(&lw->mail, NULL, memory_order_seq_cst); /* L2 */
    if (!g)
        g = runq_pop(&lw->w);
    return g;
}

static void *lockw_main(void *arg)
{
    struct lockw *lw = arg;
    struct worker *w = &lw->w;
    sched_set_cur_worker(w);
    char name[16];
    snprintf(name, sizeof name, "ringo-L%u", w->id);
    pthread_setname_np(pthread_self(), name);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    sched_thread_g0_setup(w);
    struct g *g = take(lw); /* the goroutine arrives by the mailbox (sched_lockw_start) */
    for (;;) {
        if (!g) {
            if (!lw->lg)
                break; /* it unlocked, or ended */
            atomic_store_explicit(&lw->bell, 0, memory_order_seq_cst); /* L2 */
            g = take(lw);
            if (g)
                continue;
            int64_t now = clk_now();
            int64_t next = sched_timers_run(w, now); /* its own timers only */
            g = take(lw);
            if (g)
                continue;
            futex_wait((uint32_t *)&lw->bell, 0, next == INT64_MAX ? -1 : next);
            g = take(lw);
            continue;
        }
        sched_run_from_g0(w, g);
        g = take(lw);
    }
    /* the end of the lock: back to the pools and the free list (never freed: L1's readers) */
    sched_g_pool_flush(w);
    stack_t off = { .ss_flags = SS_DISABLE };
    sigaltstack(&off, NULL);
    free(w->altstack);
    w->altstack = NULL;
    sched_dl_add(&sched.nthreads_active, -1); /* L3: the lock's count */
    sched_dl_add(&sched.dl_epoch, 1);
    pthread_mutex_lock(&free_lock);
    lw->next_free = free_list;
    free_list = lw;
    pthread_mutex_unlock(&free_lock);
    sched_debug_hooks.check_deadlock(1); /* as a thread that detaches on its way out */
    return NULL;
}

static struct lockw *lockw_get(void)
{
    pthread_mutex_lock(&free_lock);
    struct lockw *lw = free_list;
    if (lw)
        free_list = lw->next_free;
    pthread_mutex_unlock(&free_lock);
    if (!lw) {
        if (posix_memalign((void **)&lw, CACHELINE, sizeof *lw) != 0)
            return NULL;
        memset(lw, 0, sizeof *lw);
        lw->w.id = atomic_fetch_add_explicit(&lockw_seq, 1, memory_order_relaxed); /* names only */
        lw->w.cpu = -1;
        lw->w.locked = true;
        sched_timers_init(&lw->w);
    }
    lw->w.rng = 0x9E3779B97F4A7C15ull * (lw->w.id + 7) ^ (uint64_t)clk_now();
    atomic_store_explicit(&lw->mail, NULL, memory_order_relaxed); /* published by pthread_create */
    atomic_store_explicit(&lw->bell, 0, memory_order_relaxed);
    return lw;
}

/* Post-switch on the old worker (PA_LOCK): p's context is saved; start the locked worker. */
void sched_lockw_start(struct worker *w, struct g *p)
{
    (void)w;
    struct lockw *lw = (struct lockw *)(void *)p->lockw;
    atomic_store_explicit(&p->status, GS_RUNNABLE, memory_order_relaxed); /* published below */
    /* seq_cst (L2; its release half publishes p's saved context and status to take()) */
    atomic_store_explicit(&lw->mail, p, memory_order_seq_cst);
    bell_ring(lw);
}

int ringo_lock_thread(void)
{
    struct worker *w = sched_cur_worker();
    struct g *self = sched_cur_g(w);
    if (!self)
        return 0; /* a plain thread is its own thread already */
    if (self->lock_depth++ > 0)
        return 0; /* nested: counted, as Go's LockOSThread */
    struct lockw *lw = lockw_get();
    if (!lw) {
        self->lock_depth = 0;
        return -ENOMEM;
    }
    lw->w.node = w->node;
    lw->lg = self;
    self->lockw = &lw->w;
    sched_dl_add(&sched.nthreads_active, 1); /* L3: before the goroutine leaves its worker */
    sched_dl_add(&sched.dl_epoch, 1);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int e = pthread_create(&lw->w.thread, &a, lockw_main, lw);
    pthread_attr_destroy(&a);
    if (e != 0) {
        self->lockw = NULL;
        self->lock_depth = 0;
        lw->lg = NULL;
        sched_dl_add(&sched.nthreads_active, -1);
        pthread_mutex_lock(&free_lock);
        lw->next_free = free_list;
        free_list = lw;
        pthread_mutex_unlock(&free_lock);
        return -EAGAIN;
    }
    sched_switch_away(w, self, PA_LOCK); /* resumes on the locked worker's thread */
    return 0;
}

int ringo_unlock_thread(void)
{
    struct worker *w = sched_cur_worker();
    struct g *self = sched_cur_g(w);
    if (!self || self->lock_depth == 0)
        return 0; /* not locked: nothing to do, as in Go */
    if (--self->lock_depth > 0)
        return 0;
    struct lockw *lw = (struct lockw *)(void *)self->lockw;
    if (w != &lw->w)
        sched_fatal("ringo_unlock_thread: goroutine %lld is not on its locked thread", (long long)self->id);
    lw->lg = NULL;     /* L1: the loop ends once we are gone */
    self->lockw = NULL;
    sched_switch_away(w, self, PA_UNLOCK); /* resumes on a worker */
    return 0;
}

/* A locked goroutine returning (goroutine.c): the thread ends after it, as in Go. */
void sched_lockw_exit(struct g *self)
{
    struct lockw *lw = (struct lockw *)(void *)self->lockw;
    lw->lg = NULL;
    self->lockw = NULL;
    self->lock_depth = 0;
}
