/* sched/worker.c — workers: the scheduling loop, run queues, stealing, spinning and parking.
 *
 * Responsibility: start the runtime (config, env, one pinned worker thread per CPU), and run
 * goroutines: per-worker lock-free run queue + runnext slot, one global queue, work stealing,
 * spinning, sleeping on the wake word, and waking exactly one sleeper when work appears.
 *
 * Invariants: see sched.h (I1-I5). In addition:
 *   W1  sched.nidle counts the workers with w->idle set; both change only under sched.idle_lock.
 *   W2  A worker taken off the idle list by sched_wakep is counted in sched.nspinning and has
 *       w->wake == 1 before the lock is dropped; it resumes as a spinning worker.
 *   W3  sched.nspinning counts workers with w->spinning set (plus those being woken, W2).
 *
 * No lost wake-up (the StoreLoad recipe, after Go's proc.go):
 *   Producer of work that only a sleeping worker could run (global queue push from a plain
 *   thread, or from g0):
 *     1. publish the work (push on a node's global queue under its lock; gq_len store);
 *     2. atomic_thread_fence(seq_cst)                                  -- StoreLoad
 *     3. read sched.nspinning and sched.nidle; if nobody spins and someone idles, wake one.
 *   Worker going to sleep:
 *     a. if spinning: nspinning-- (seq_cst RMW), fence, re-check every queue; found -> go on.
 *     b. push self on the idle list, nidle++ (seq_cst RMW under idle_lock);
 *     c. atomic_thread_fence(seq_cst)                                  -- StoreLoad
 *     d. re-check every queue, own timers and the I/O ring; found -> take self off the list
 *        (or, if a waker already took it, accept the wake), go on;
 *     e. sleep until w->wake != 0 (futex or io_uring FUTEX_WAIT), a timer, or I/O.
 *   Either the producer's load (3) sees the worker's increment (b) and wakes it, or the
 *   worker's re-check (d) sees the work: both fences are in the single total order of seq_cst
 *   operations, so it cannot happen that both loads miss both stores. The same argument covers
 *   a spinner that stops spinning (a) against a producer that saw nspinning > 0 and did not wake.
 *
 *   Work a running goroutine readies into its own worker's runnext/ring needs no such fence:
 *   that worker is awake and will run it when the current goroutine next switches (cooperative
 *   scheduling); the wake-up is only for parallelism there, so it reads the counters relaxed.
 *
 * Contexts: findrunnable/worker_main run on g0; sched_switch_out on a goroutine; sched_wakep
 * and sched_global_push from any thread.
 * Depends on: kernel_iface (futex, clock, stackmem, topology).
 */
#include "sched/sched.h"
#include "kernel_iface/clock.h"
#include "kernel_iface/futex.h"
#include "kernel_iface/stackmem.h"
#include "kernel_iface/topology.h"
#include <errno.h>
#include <immintrin.h>
#include <sched.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef RINGO_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef RINGO_TSAN
#include <sanitizer/tsan_interface.h>
#endif

struct sched sched = {
    .idle_lock = PTHREAD_MUTEX_INITIALIZER,
    .tlock = PTHREAD_MUTEX_INITIALIZER,
    .next_id = 1,
};

/* How long an idle worker looks for work before it sleeps. A cross-core futex wake costs tens
 * of microseconds on a VM; spinning for about that long keeps handoffs between workers cheap.
 * After its first SPIN_PAUSE_NS the spin yields the CPU between looks (findrunnable), so it
 * mostly uses a CPU nobody else wants. */
#define SPIN_NS 50000
/* ... and at least this many times, however long the yields between looks take on a loaded
 * machine: a victim's runnext can only be taken on a second look (RUNNEXT_STEAL_NS). */
#define SPIN_MIN_LOOKS 4
/* The first part of the spin only pauses between looks; the rest yields the CPU. */
#define SPIN_PAUSE_NS 10000
/* A thief takes a victim's runnext only when the victim has not scheduled for this long: the
 * owner is about to run it (ping-pong), unless its current goroutine is hogging the worker. */
#define RUNNEXT_STEAL_NS 5000

#ifdef RINGO_TSAN
_Atomic int sched_fence_word;
#endif

static __thread struct worker *tls_worker __attribute__((tls_model("initial-exec")));

/* I4: a non-inlinable accessor with an opaque asm, so the compiler never caches the thread
 * pointer or the value across a context switch (the same goroutine may come back on another
 * thread). */
__attribute__((noinline, noclone)) struct worker *sched_cur_worker(void)
{
    struct worker *w = tls_worker;
    __asm__ volatile("" : "+r"(w));
    return w;
}

uint32_t sched_fastrand(void)
{
    struct worker *w = sched_cur_worker();
    static _Atomic uint64_t seed = 0x9E3779B97F4A7C15ull;
    uint64_t x;
    if (w) {
        x = w->rng;
    } else {
        /* plain threads: a shared state is fine, the quality need only be uniform */
        x = atomic_fetch_add_explicit(&seed, 0x9E3779B97F4A7C15ull, memory_order_relaxed); /* stats-like */
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    if (w)
        w->rng = x;
    return (uint32_t)(x >> 32);
}

/* ================================================================== run queue (I1) */

/* Owner only. Returns false when full. */
static bool runq_push(struct worker *w, struct g *g)
{
    uint32_t t = atomic_load_explicit(&w->rq.tail, memory_order_relaxed);   /* own field */
    uint32_t h = atomic_load_explicit(&w->rq.head, memory_order_acquire);   /* A2: slots consumed */
    if (t - h >= RUNQ_SIZE)
        return false;
    atomic_store_explicit(&w->rq.buf[t % RUNQ_SIZE], g, memory_order_relaxed); /* published by R1 */
    atomic_store_explicit(&w->rq.tail, t + 1, memory_order_release);        /* R1 */
    return true;
}

/* ================================================================== global queues (per node) */

/* Append n goroutines to q. The total sched.gq_len is bumped with an RMW (several queues). */
static void gq_push_list(struct gqueue *q, struct g **gs, uint32_t n)
{
    pthread_mutex_lock(&q->lock);
    for (uint32_t i = 0; i < n; i++) {
        gs[i]->schedlink = NULL;
        if (q->tail)
            q->tail->schedlink = gs[i];
        else
            q->head = gs[i];
        q->tail = gs[i];
    }
    atomic_store_explicit(&q->len, atomic_load_explicit(&q->len, memory_order_relaxed) + n,
                          memory_order_relaxed); /* under q->lock; peeks tolerate staleness */
    atomic_fetch_add(&sched.gq_len, n); /* seq_cst: step 1 of the recipe for sleepers */
    pthread_mutex_unlock(&q->lock);
}

/* Owner only: move half of the ring plus g to the global queue (Go's runqputslow). */
static void runq_push_slow(struct worker *w, struct g *g)
{
    struct g *batch[RUNQ_SIZE / 2 + 1];
    uint32_t h = atomic_load_explicit(&w->rq.head, memory_order_acquire);   /* A2 */
    uint32_t t = atomic_load_explicit(&w->rq.tail, memory_order_relaxed);   /* own */
    uint32_t n = (t - h) / 2;
    if (n != RUNQ_SIZE / 2) {
        if (!runq_push(w, g))
            goto global_one;
        return;
    }
    for (uint32_t i = 0; i < n; i++)
        batch[i] = atomic_load_explicit(&w->rq.buf[(h + i) % RUNQ_SIZE], memory_order_relaxed);
    /* R2: commits the consume of n slots; fails if a thief got there first */
    if (!atomic_compare_exchange_strong_explicit(&w->rq.head, &h, h + n, memory_order_release,
                                                 memory_order_relaxed)) {
        if (!runq_push(w, g))
            goto global_one;
        return;
    }
    batch[n++] = g;
    gq_push_list(&sched.gq[w->node], batch, n);
    return;
global_one:
    sched_global_push(g);
}

static void runq_put(struct worker *w, struct g *g)
{
    if (!runq_push(w, g))
        runq_push_slow(w, g);
}

/* Owner only. */
static struct g *runq_pop(struct worker *w)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&w->rq.head, memory_order_acquire);   /* A2: sync with thieves */
        uint32_t t = atomic_load_explicit(&w->rq.tail, memory_order_relaxed);   /* own */
        if (t == h)
            return NULL;
        struct g *g = atomic_load_explicit(&w->rq.buf[h % RUNQ_SIZE], memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&w->rq.head, &h, h + 1, memory_order_release,
                                                  memory_order_relaxed)) /* R2: commits consume */
            return g;
    }
}

static bool runq_empty(struct worker *v)
{
    uint32_t h = atomic_load_explicit(&v->rq.head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&v->rq.tail, memory_order_acquire);
    return h == t && atomic_load_explicit(&v->runnext, memory_order_acquire) == NULL;
}

/* Thief w takes half of v's ring, as much as fits in w's own ring (a spinning worker's ring is
 * normally empty, but timers and I/O it ran while spinning may have filled it: never overwrite
 * a queued g). Returns one g to run, or NULL. May take v's runnext when v looks stuck (see
 * RUNNEXT_STEAL_NS). */
static struct g *runq_steal(struct worker *w, struct worker *v, bool take_runnext)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&v->rq.head, memory_order_acquire); /* A2: sync with other consumers */
        uint32_t t = atomic_load_explicit(&v->rq.tail, memory_order_acquire); /* A1: sync with the producer */
        uint32_t n = t - h;
        n = n - n / 2;
        if (n == 0) {
            if (!take_runnext)
                return NULL;
            struct g *next = atomic_load_explicit(&v->runnext, memory_order_acquire);
            if (!next)
                return NULL;
            /* acq_rel: pairs with the owner's exchange that published next */
            if (!atomic_compare_exchange_strong_explicit(&v->runnext, &next, NULL, memory_order_acq_rel,
                                                         memory_order_relaxed))
                continue;
            return next;
        }
        if (n > RUNQ_SIZE / 2)
            continue; /* read an inconsistent h/t pair: retry */
        uint32_t wt = atomic_load_explicit(&w->rq.tail, memory_order_relaxed); /* own */
        /* A2: other thieves only advance w's head, so this room can only grow meanwhile */
        uint32_t wh = atomic_load_explicit(&w->rq.head, memory_order_acquire);
        uint32_t room = RUNQ_SIZE - (wt - wh);
        if (n - 1 > room)
            n = room + 1; /* n - 1 go to w's ring, the last one is returned to run */
        for (uint32_t i = 0; i + 1 < n; i++) {
            struct g *g = atomic_load_explicit(&v->rq.buf[(h + i) % RUNQ_SIZE], memory_order_relaxed);
            atomic_store_explicit(&w->rq.buf[(wt + i) % RUNQ_SIZE], g, memory_order_relaxed);
        }
        struct g *g = atomic_load_explicit(&v->rq.buf[(h + n - 1) % RUNQ_SIZE], memory_order_relaxed);
        /* R2: cas-release commits the consume; on failure another consumer won, retry */
        if (!atomic_compare_exchange_strong_explicit(&v->rq.head, &h, h + n, memory_order_acq_rel,
                                                     memory_order_relaxed))
            continue;
        if (n > 1)
            atomic_store_explicit(&w->rq.tail, wt + n - 1, memory_order_release); /* R1 */
        return g;
    }
}

/* Test hooks (tests/test_runq.c): the run queue of workers a test builds by hand. */
bool sched_test_runq_push(struct worker *w, struct g *g) { return runq_push(w, g); }
struct g *sched_test_runq_pop(struct worker *w) { return runq_pop(w); }
struct g *sched_test_runq_steal(struct worker *w, struct worker *v) { return runq_steal(w, v, false); }

/* Node position where work born on the calling plain thread is queued: its CPU's node, or
 * the nearest node that has workers (policy.node_home). */
int sched_thread_node(void)
{
    if (!sched.have_pol)
        return 0;
    return topo_policy_node_of_cpu(&sched.pol, sched_getcpu());
}

static void wakep_node(int node);

void sched_global_push(struct g *g)
{
    struct worker *w = sched_cur_worker();
    int node = w ? (int)w->node : sched_thread_node();
    gq_push_list(&sched.gq[node], &g, 1);
    /* StoreLoad (step 2 of the recipe): the push above before the counter reads in wakep */
    sched_fence_seq_cst();
    wakep_node(node);
}

/* Take a batch from one global queue into w's ring; return one g to run. */
static struct g *gq_get(struct worker *w, struct gqueue *q, uint32_t max)
{
    if (atomic_load_explicit(&q->len, memory_order_relaxed) == 0) /* peek; authoritative under the lock */
        return NULL;
    pthread_mutex_lock(&q->lock);
    uint32_t len = atomic_load_explicit(&q->len, memory_order_relaxed);
    if (len == 0) {
        pthread_mutex_unlock(&q->lock);
        return NULL;
    }
    uint32_t n = len / sched.nprocs + 1;
    if (n > len)
        n = len;
    if (max && n > max)
        n = max;
    if (n > RUNQ_SIZE / 2)
        n = RUNQ_SIZE / 2;
    struct g *first = q->head;
    q->head = first->schedlink;
    for (uint32_t i = 1; i < n; i++) {
        struct g *g = q->head;
        q->head = g->schedlink;
        runq_put(w, g);
    }
    if (!q->head)
        q->tail = NULL;
    atomic_store_explicit(&q->len, len - n, memory_order_relaxed); /* under q->lock */
    atomic_fetch_sub(&sched.gq_len, n);
    pthread_mutex_unlock(&q->lock);
    first->schedlink = NULL;
    return first;
}

/* The global queues, own node first, then the others by distance (policy.node_order). */
static struct g *global_get(struct worker *w, uint32_t max)
{
    if (atomic_load_explicit(&sched.gq_len, memory_order_relaxed) == 0) /* peek */
        return NULL;
    if (!sched.have_pol || sched.nnodes == 1)
        return gq_get(w, &sched.gq[0], max);
    const unsigned *order = &sched.pol.node_order[w->node * sched.pol.nnodes_used];
    for (unsigned k = 0; k < sched.pol.nnodes_used; k++) {
        struct g *g = gq_get(w, &sched.gq[order[k]], max);
        if (g)
            return g;
    }
    return NULL;
}

/* ================================================================== waking */

static void worker_kick(struct worker *v)
{
    sched_io_kick(v); /* futex wake, or whatever the worker's sleep waits on (io.c) */
}

/* Wake one idle worker, the nearest to node (policy.wake_order: same node first). */
static void wakep_node(int node)
{
    /* seq_cst loads: step 3 of the recipe (the caller fenced after publishing, if it must) */
    if (atomic_load(&sched.nspinning) != 0 || atomic_load(&sched.nidle) == 0)
        return;
    pthread_mutex_lock(&sched.idle_lock);
    struct worker *v = NULL;
    if (atomic_load(&sched.nspinning) == 0) {
        if (sched.have_pol) {
            const unsigned *order = &sched.pol.wake_order[(unsigned)node * sched.nprocs];
            for (unsigned k = 0; k < sched.nprocs && !v; k++)
                if (sched.w[order[k]]->idle)
                    v = sched.w[order[k]];
        } else {
            for (unsigned k = 0; k < sched.nprocs && !v; k++)
                if (sched.w[k]->idle)
                    v = sched.w[k];
        }
    }
    if (!v) {
        pthread_mutex_unlock(&sched.idle_lock);
        return;
    }
    v->idle = false;
    atomic_fetch_sub(&sched.nidle, 1);          /* W1 */
    atomic_fetch_add(&sched.nspinning, 1);      /* W2: the woken worker starts out spinning */
    atomic_store_explicit(&v->wake, 1, memory_order_release); /* W2; pairs with the sleeper's acquire */
    pthread_mutex_unlock(&sched.idle_lock);
    worker_kick(v);
}

void sched_wakep(void)
{
    if (atomic_load_explicit(&sched.nidle, memory_order_relaxed) == 0) /* cheap exit; wakep_node re-reads */
        return;
    struct worker *w = sched_cur_worker();
    wakep_node(w ? (int)w->node : sched_thread_node());
}

/* Stop spinning after finding work; if we were the last spinner, start another so that a
 * burst of work is spread (Go's resetspinning). */
static void stop_spinning(struct worker *w, bool found)
{
    if (!w->spinning)
        return;
    w->spinning = false;
    uint32_t left = atomic_fetch_sub(&sched.nspinning, 1) - 1; /* seq_cst (step a) */
    if (found && left == 0)
        sched_wakep();
}

/* ================================================================== switching */

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
    atomic_store_explicit(&w->st_switches, atomic_load_explicit(&w->st_switches, memory_order_relaxed) + 1,
                          memory_order_relaxed); /* stats only */
    sched_ctx_switch(save, to ? to->sp : w->g0_sp);
#ifdef RINGO_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
    (void)dying;
}

static int64_t timers_due(struct worker *w)
{
    return atomic_load_explicit(&w->tfirst, memory_order_relaxed); /* peek; sched_timers_run rechecks under tlock */
}

/* The next goroutine this worker can run without sleeping or stealing. */
static struct g *next_local(struct worker *w)
{
    uint32_t tick = atomic_load_explicit(&w->schedtick, memory_order_relaxed) + 1; /* own */
    atomic_store_explicit(&w->schedtick, tick, memory_order_relaxed);
    if (unlikely((tick & 63) == 0)) {
        /* fairness: timers, I/O completions and the global queue get a turn even when the local
         * queue never empties */
        if (timers_due(w) != INT64_MAX)
            sched_timers_run(w, clk_now());
        sched_io_poll(w);
        struct g *g = global_get(w, 1);
        if (g)
            return g;
    }
    /* exchange: acquire pairs with whoever stored runnext (the owner itself, or nobody else:
     * thieves only take) */
    struct g *g = atomic_load_explicit(&w->runnext, memory_order_relaxed);
    if (g && atomic_compare_exchange_strong_explicit(&w->runnext, &g, NULL, memory_order_acquire,
                                                     memory_order_relaxed))
        return g;
    g = runq_pop(w);
    if (g)
        return g;
    return global_get(w, 0);
}

/* Switch from self to next (a runnable g, or NULL for g0), leaving action for post_switch. */
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
    struct g *next = next_local(w);
    if (!next && action == PA_YIELD)
        return; /* nothing else to run */
    switch_to(w, self, next, action);
}

void sched_switch_to_new(struct worker *w, struct g *self, struct g *child)
{
    switch_to(w, self, child, PA_RUNNEXT);
}

TSAN_NO_FRAMES void sched_switch_exit(struct worker *w, struct g *self)
{
    struct g *next = next_local(w);
    switch_to(w, self, next, PA_EXIT);
    __builtin_unreachable();
}

/* Put g in runnext; a g already there is kicked to the ring. Owner only. */
static void runnext_put(struct worker *w, struct g *g)
{
    /* release: a thief that takes g from runnext sees its saved context */
    struct g *old = atomic_exchange_explicit(&w->runnext, g, memory_order_acq_rel);
    if (old)
        runq_put(w, old);
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
                                                    memory_order_acquire))
            break;
        /* WOKEN while switching out (I3): we enqueue it */
        atomic_store_explicit(&p->status, GS_RUNNABLE, memory_order_relaxed); /* published by R1 */
        runq_put(w, p);
        sched_wakep();
        break;
    }
    case PA_YIELD:
        atomic_store_explicit(&p->status, GS_RUNNABLE, memory_order_relaxed); /* published by R1 */
        runq_put(w, p);
        break;
    case PA_RUNNEXT:
        atomic_store_explicit(&p->status, GS_RUNNABLE, memory_order_relaxed); /* published by the exchange */
        runnext_put(w, p);
        sched_wakep(); /* relaxed reads: the parent is on an awake worker (see top) */
        break;
    case PA_EXIT:
        sched_g_free(w, p);
        break;
    }
}

void sched_enqueue_ready(struct g *g)
{
    struct worker *w = sched_cur_worker();
    if (w) {
        if (w->curg)
            runnext_put(w, g); /* the ping-pong fast path: the readied g runs next */
        else
            runq_put(w, g);    /* on g0: timers, I/O completions */
        sched_wakep();
    } else {
        sched_global_push(g);  /* plain thread: fenced wake (see top) */
    }
}

/* ================================================================== finding work */

static bool work_anywhere(void)
{
    if (atomic_load_explicit(&sched.gq_len, memory_order_relaxed) != 0)
        return true;
    for (unsigned i = 0; i < sched.nprocs; i++)
        if (!runq_empty(sched.w[i]))
            return true;
    return false;
}

struct steal_seen {
    uint32_t tick;
    int64_t since;
};

static struct g *try_steal(struct worker *w, struct steal_seen *seen, int64_t now)
{
    for (unsigned k = 0; k + 1 < sched.nprocs; k++) {
        unsigned vi = w->steal_order[k];
        struct worker *v = sched.w[vi];
        uint32_t tick = atomic_load_explicit(&v->schedtick, memory_order_relaxed); /* heuristic only */
        if (tick != seen[vi].tick) {
            seen[vi].tick = tick;
            seen[vi].since = now;
        }
        bool stuck = now - seen[vi].since >= RUNNEXT_STEAL_NS;
        struct g *g = runq_steal(w, v, stuck);
        if (g) {
            atomic_store_explicit(&w->st_steals, atomic_load_explicit(&w->st_steals, memory_order_relaxed) + 1,
                                  memory_order_relaxed); /* stats only */
            return g;
        }
    }
    return NULL;
}

static bool idle_leave(struct worker *w)
{
    /* true: we took ourselves off the list; false: a waker did (W2: wake == 1, spinning) */
    pthread_mutex_lock(&sched.idle_lock);
    bool was = w->idle;
    if (was) {
        w->idle = false;
        atomic_fetch_sub(&sched.nidle, 1); /* W1 */
    }
    pthread_mutex_unlock(&sched.idle_lock);
    if (!was) {
        atomic_store_explicit(&w->wake, 0, memory_order_relaxed); /* own: consume the wake */
        w->spinning = true;                                         /* W2/W3 */
    }
    return was;
}

static struct g *findrunnable(struct worker *w)
{
    struct steal_seen seen[sched.nprocs];
    memset(seen, 0, sizeof seen);
    for (;;) {
        struct g *g = next_local(w);
        if (g) {
            stop_spinning(w, true);
            return g;
        }
        if (sched_io_poll(w) > 0)
            continue;
        if (timers_due(w) != INT64_MAX && sched_timers_run(w, clk_now()) <= clk_now())
            continue;
        if (!runq_empty(w))
            continue;

        /* spin: look everywhere for a while (only some workers spin at once, as in Go) */
        if (!w->spinning && sched.nprocs > 1) {
            uint32_t busy = sched.nprocs - atomic_load(&sched.nidle);
            if (2 * atomic_load(&sched.nspinning) < busy) {
                w->spinning = true;
                atomic_fetch_add(&sched.nspinning, 1); /* W3 */
            }
        }
        if (w->spinning) {
            int64_t start = clk_now(), now = start;
            for (unsigned looks = 0; looks < SPIN_MIN_LOOKS || now - start < SPIN_NS; looks++) {
                /* What fired here runs before anything is stolen (Go's stealWork runs timers
                 * first and returns what they readied): a spinning worker never has local work
                 * when it steals. */
                sched_io_poll(w);
                if (timers_due(w) <= now)
                    sched_timers_run(w, now);
                if (!runq_empty(w)) {
                    g = next_local(w);
                    if (g) {
                        stop_spinning(w, true);
                        return g;
                    }
                }
                SCHED_CHECK(runq_empty(w), "worker %u is spinning with local work", w->id);
                g = try_steal(w, seen, now);
                if (!g)
                    g = global_get(w, 0);
                if (g) {
                    stop_spinning(w, true);
                    return g;
                }
                /* First look often (a victim's runnext is taken on a second look at least
                 * RUNNEXT_STEAL_NS later with its tick unchanged: looks must come closer
                 * together than the victim's switches). Then give way to any other thread
                 * runnable on this CPU: a pinned worker cannot move, and a spin that keeps a
                 * server's own clients (or anything else) off the CPU costs more than it saves
                 * (B8 echo on 2 shared vCPUs: 52k -> 96k round trips/s). sched_yield returns
                 * at once when nothing else wants the CPU. */
                if (now - start < SPIN_PAUSE_NS)
                    for (int i = 0; i < 32; i++)
                        _mm_pause();
                else
                    sched_yield();
                now = clk_now();
            }
            stop_spinning(w, false);                   /* step a */
            sched_fence_seq_cst();
            if (work_anywhere())
                continue;
        }

        /* step b: announce */
        pthread_mutex_lock(&sched.idle_lock);
        w->idle = true;
        atomic_fetch_add(&sched.nidle, 1); /* W1; seq_cst */
        pthread_mutex_unlock(&sched.idle_lock);
        sched_fence_seq_cst();     /* step c */

        /* step d: re-check */
        sched_io_flush(w);
        if (work_anywhere() || sched_io_poll(w) > 0 || timers_due(w) <= clk_now()) {
            idle_leave(w);
            continue;
        }
        sched_check_deadlock();

        /* step e: sleep until woken, the earliest timer, or I/O */
        int64_t first = timers_due(w);
        sched_io_sleep(w, first == INT64_MAX ? -1 : first);
        if (atomic_load_explicit(&w->wake, memory_order_acquire) == 1) { /* pairs with wakep's release */
            atomic_store_explicit(&w->wake, 0, memory_order_relaxed);     /* own */
            w->spinning = true; /* W2: the waker counted us in nspinning */
        } else {
            idle_leave(w);
        }
    }
}

/* ================================================================== worker threads */

static pthread_barrier_t start_barrier;

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    tls_worker = w;
    char name[16];
    snprintf(name, sizeof name, "ringo-w%u", w->id);
    pthread_setname_np(pthread_self(), name); /* the deadlock check tells workers by name */
    /* a worker's timed sleep ends at its earliest timer: no 50 us default slack on top */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    if (w->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(w->cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set); /* best effort: restricted masks */
    }
    pthread_attr_t a;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        void *lo;
        size_t sz;
        pthread_attr_getstack(&a, &lo, &sz);
        w->g0_lo = lo;
        w->g0_size = sz;
        pthread_attr_destroy(&a);
    }
#ifdef RINGO_TSAN
    w->tsan_g0 = __tsan_get_current_fiber();
#endif
    sched_altstack_init(w);
    sched_io_worker_init(w);
    pthread_barrier_wait(&start_barrier);
    for (;;) {
        struct g *g = findrunnable(w);
        w->curg = g;
        atomic_store_explicit(&g->status, GS_RUNNING, memory_order_relaxed); /* I2 */
        do_switch(w, &w->g0_sp, g, false);
        sched_post_switch(w);
    }
    return NULL;
}

/* ================================================================== configuration and start */

static struct ringo_config user_cfg = { .pin = -1 };
static int started_state; /* 0 no, 1 yes, -errno failed; under start_lock */
static _Atomic int started_flag;
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;

bool sched_started(void)
{
    return atomic_load_explicit(&started_flag, memory_order_acquire) == 1; /* pairs with sched_start */
}

static int validate_cfg(const struct ringo_config *c)
{
    if (c->procs > 4096)
        return -EINVAL;
    if (c->stack_size && (c->stack_size < 16384 || c->stack_size > (1ull << 30)))
        return -EINVAL;
    if (c->pin < -1 || c->pin > 1)
        return -EINVAL;
    if (c->ring_entries && c->ring_entries > 32768)
        return -EINVAL;
    return 0;
}

int ringo_init(const struct ringo_config *cfg)
{
    if (!cfg)
        return -EINVAL;
    int r = validate_cfg(cfg);
    if (r)
        return r;
    pthread_mutex_lock(&start_lock);
    if (started_state != 0) {
        pthread_mutex_unlock(&start_lock);
        return -EALREADY;
    }
    user_cfg = *cfg;
    pthread_mutex_unlock(&start_lock);
    return 0;
}

static long env_long(const char *name, long dflt, long lo, long hi)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return dflt;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (*end == 'k' || *end == 'K')
        v *= 1024, end++;
    else if (*end == 'm' || *end == 'M')
        v *= 1024 * 1024, end++;
    if (errno || *end || v < lo || v > hi) {
        fprintf(stderr, "ringo: ignoring %s=%s (expected %ld..%ld)\n", name, s, lo, hi);
        return dflt;
    }
    return v;
}

static unsigned parse_flags(const char *env, const char *const *names, unsigned n)
{
    const char *s = getenv(env);
    unsigned bits = 0;
    if (!s)
        return 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq)
            *eq = 0;
        unsigned i;
        for (i = 0; i < n; i++)
            if (names[i] && strcmp(tok, names[i]) == 0) {
                bits |= 1u << i;
                if (eq && strcmp(tok, "schedtrace") == 0)
                    sched.schedtrace_ms = (unsigned)atoi(eq + 1);
                if (eq && strcmp(tok, "hog") == 0)
                    sched.hog_ms = (unsigned)atoi(eq + 1);
                break;
            }
        if (i == n)
            fprintf(stderr, "ringo: %s: unknown item '%s'\n", env, tok);
    }
    return bits;
}

static int start_locked(void)
{
    static const char *const dis_names[] = { "guard_madvise", "io_uring", "futex_uring", "defer_taskrun",
                                             "multishot" };
    static const char *const dbg_names[] = { "stats", "schedtrace", "sigquit", "topology", "verbose", "hog" };
    sched.disable = parse_flags("RINGO_DISABLE", dis_names, 5);
    sched.debug = parse_flags("RINGO_DEBUG", dbg_names, 6);

    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
        CPU_SET(0, &allowed);
    int ncpu_allowed = CPU_COUNT(&allowed);

    struct topo topo;
    bool have_topo = topo_load(&topo, NULL) == 0;
    int cpus[CPU_SETSIZE];
    unsigned ncpus = 0;
    char err[256] = "";
    if (have_topo) {
        if (topo_select_cpus(&topo, &allowed, sizeof allowed, getenv("RINGO_CPUS"), getenv("RINGO_NODES"), cpus, &ncpus, err,
                             sizeof err) != 0) {
            fprintf(stderr, "ringo: %s\n", err);
            topo_free(&topo);
            return -EINVAL;
        }
    } else {
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &allowed))
                cpus[ncpus++] = c;
    }
    if (ncpus == 0)
        cpus[ncpus++] = 0;
    (void)ncpu_allowed;

    long procs = user_cfg.procs ? (long)user_cfg.procs : env_long("RINGO_PROCS", (long)ncpus, 1, 4096);
    long stack = user_cfg.stack_size ? (long)user_cfg.stack_size
                                     : env_long("RINGO_STACK_SIZE", 256 * 1024, 16384, 1L << 30);
    long pin = user_cfg.pin != -1 ? user_cfg.pin : env_long("RINGO_PIN", 1, 0, 1);
    sched.nprocs = (unsigned)procs;
    sched.stack_usable = (size_t)stack;
    sched.pin = (int)pin;
    sched.ring_entries = user_cfg.ring_entries ? user_cfg.ring_entries : 256;

    int worker_cpus[4096];
    for (unsigned i = 0; i < sched.nprocs; i++)
        worker_cpus[i] = cpus[i % ncpus];

    sched_stacks_init();
    sched_debug_init();

    struct topo_policy pol;
    bool have_pol = have_topo && topo_policy_build(&pol, &topo, worker_cpus, sched.nprocs, 0x5eed) == 0;
    if (have_topo && (sched.debug & DBG_TOPOLOGY)) {
        topo_print(&topo, stderr);
        if (have_pol)
            topo_policy_print(&pol, stderr);
        for (unsigned i = 0; i < sched.nprocs; i++)
            fprintf(stderr, "ringo: worker %u -> cpu %d -> node %d%s\n", i, worker_cpus[i],
                    have_pol ? topo.node_id[pol.worker_node[i]] : 0, sched.pin ? "" : " (not pinned)");
    }
    sched.have_pol = have_pol;
    sched.nnodes = have_pol ? pol.nnodes : 1;
    sched.node_ids = calloc(sched.nnodes, sizeof(int));
    sched.gq = calloc(sched.nnodes, sizeof *sched.gq);
    sched.gpool = calloc(sched.nnodes, sizeof *sched.gpool);
    if (!sched.node_ids || !sched.gq || !sched.gpool)
        return -ENOMEM;
    for (unsigned n = 0; n < sched.nnodes; n++) {
        sched.node_ids[n] = have_pol ? pol.node_id[n] : -1;
        pthread_mutex_init(&sched.gq[n].lock, NULL);
        pthread_mutex_init(&sched.gpool[n].lock, NULL);
    }
    /* bind stack chunks to their node when the machine has NUMA that libnuma can drive */
    stk_set_numa(have_pol && topo.source && strcmp(topo.source, "libnuma") == 0);

    sched.w = calloc(sched.nprocs, sizeof *sched.w);
    if (!sched.w)
        return -ENOMEM;
    for (unsigned i = 0; i < sched.nprocs; i++) {
        struct worker *w;
        if (posix_memalign((void **)&w, CACHELINE, sizeof *w) != 0)
            return -ENOMEM;
        memset(w, 0, sizeof *w);
        w->id = i;
        w->cpu = sched.pin ? worker_cpus[i] : -1;
        w->node = have_pol ? pol.worker_node[i] : 0;
        w->rng = 0x9E3779B97F4A7C15ull * (i + 1) ^ (uint64_t)clk_now();
        w->steal_order = calloc(sched.nprocs > 1 ? sched.nprocs - 1 : 1, sizeof(unsigned));
        if (!w->steal_order)
            return -ENOMEM;
        for (unsigned k = 0; k + 1 < sched.nprocs; k++)
            w->steal_order[k] = have_pol ? pol.steal_order[i * (sched.nprocs - 1) + k] : (i + 1 + k) % sched.nprocs;
        sched_timers_init(w);
        sched.w[i] = w;
    }
    if (have_pol)
        sched.pol = pol; /* kept for the life of the process: wake order, node order, cpu homes */
    if (have_topo)
        topo_free(&topo);

    sched_segv_install();
    pthread_barrier_init(&start_barrier, NULL, sched.nprocs + 1);
    for (unsigned i = 0; i < sched.nprocs; i++) {
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        int r = pthread_create(&sched.w[i]->thread, &a, worker_main, sched.w[i]);
        pthread_attr_destroy(&a);
        if (r != 0) {
            fprintf(stderr, "ringo: cannot start worker %u: %s\n", i, strerror(r));
            _exit(2); /* the barrier cannot be unwound: a runtime with missing workers would hang */
        }
    }
    pthread_barrier_wait(&start_barrier);
    if (sched.debug & DBG_STATS)
        atexit(sched_stats_at_exit);
    return 0;
}

int sched_start(void)
{
    if (sched_started())
        return 0;
    pthread_mutex_lock(&start_lock);
    if (started_state == 0) {
        int r = start_locked();
        started_state = r == 0 ? 1 : r;
        if (r == 0)
            atomic_store_explicit(&started_flag, 1, memory_order_release); /* publishes sched.* */
    }
    int r = started_state == 1 ? 0 : started_state;
    pthread_mutex_unlock(&start_lock);
    return r;
}

unsigned ringo_procs(void)
{
    if (sched_start() != 0)
        return 0;
    return sched.nprocs;
}

void ringo_yield(void)
{
    struct worker *w = sched_cur_worker();
    struct g *self = sched_cur_g(w);
    if (!self) {
        sched_yield();
        return;
    }
    sched_switch_out(w, self, PA_YIELD);
}
