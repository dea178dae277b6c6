/* sched/proc.c — workers: finding work, spinning, sleeping, waking (after Go's proc.go).
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
 *   W4  sched_fastrand differs from one process to the next: workers seed w->rng from the clock
 *       (start.c); plain threads share thread_rng, seeded once per process on first use
 *       (getrandom(2), else clock, pid and an address), lock-free.
 *   X1  A worker looking for work (spinning, or about to sleep) fires the due timers of every
 *       other worker, one heap at a time under that heap's tlock (timer.c T3, lock order), and
 *       runs what they readied: a timer never waits for its owner when someone is idle (Go's
 *       stealWork checks every P's timers). Issue 11: a 10 ms sleep behind a 500 ms loop.
 *   X2  A sleeping worker's deadline is the earliest timer of all workers (timers_first_all,
 *       read after its step-c fence). A timer that becomes the earliest of its heap later is
 *       followed by a fence and a wakep (timer.c, sched_timer_add): the same StoreLoad recipe as
 *       work (below), with w->tfirst as the published work, so a sleeper either sees the new
 *       timer or is woken (or a spinner is, which reads every tfirst before it sleeps).
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
 *     d. re-check every queue, every worker's timers (X2) and the I/O ring; found -> take self
 *        off the list (or, if a waker already took it, accept the wake), go on;
 *     e. sleep until w->wake != 0 (futex or io_uring FUTEX_WAIT), the earliest timer of any
 *        worker (X2), or I/O.
 *   Either the producer's load (3) sees the worker's increment (b) and wakes it, or the
 *   worker's re-check (d) sees the work: both fences are in the single total order of seq_cst
 *   operations, so it cannot happen that both loads miss both stores. The same argument covers
 *   a spinner that stops spinning (a) against a producer that saw nspinning > 0 and did not wake.
 *
 *   Work a running goroutine readies into its own worker's runnext/ring needs no such fence:
 *   that worker is awake and will run it when the current goroutine next switches (cooperative
 *   scheduling); the wake-up is only for parallelism there, so it reads the counters relaxed.
 *
 * Fairness policy (sched_next_local, findrunnable; issue 11 items 2 and 2b). Where a worker takes
 * the next goroutine from, in order:
 *   F0  Every schedule, first: the worker's due timers fire (a peek at w->tfirst, and a clock
 *       read only while the worker has timers), readying into runnext/the ring. Checking only
 *       every 64th schedule left a fired sleeper waiting up to 64 schedules plus the queue
 *       ahead of it (B10 p50 0.2 ms, Go 0.003 ms; issue 12).
 *   F1  Every 64th schedule (w->schedtick), first: its I/O completions are reaped (readying
 *       goroutines into this worker's runnext/ring), and the global queues (own node first)
 *       give a batch: len/nprocs + 1, at most GQ_TICK_BATCH (8), and only into the ring's
 *       lower half (a ring more than half full takes one, Go's choice). The first of the
 *       batch runs now, the rest join the ring's tail.
 *       Bound: a goroutine in a global queue with L ahead of it runs within about
 *       64 * (L / 8 + 1) schedules plus the batches queued ahead of it in the ring, however busy
 *       the ring is (a batch of one every 64, Go's choice, made that 64 * L: p99 203 ms at 1,000
 *       connections). Not more than 8: an unbounded batch (half a ring) made skynet (B6, one
 *       worker) 2.6x slower by pulling spilled goroutines back into a full ring only to spill
 *       them again, and broke its depth-first order. Not past half a ring: a spill (F6) leaves
 *       the ring exactly half full, and a batch on top of that only brings on the next spill of
 *       128 (8 into a ring above half made skynet at 2 workers 2x slower: 429 -> 880 ms, the
 *       churn of cold goroutines through the global queue's lock and of stacks between the
 *       workers' pools). The bound above holds while the ring is at most half full; above, a
 *       newcomer also waits behind the 128 or more goroutines of the ring itself.
 *   F2  runnext, unless it was taken RUNNEXT_CAP (64) times in a row and the ring has work: then
 *       the ring's head first. A pick from the ring or a global queue resets the count. Bound:
 *       the ring's head waits at most RUNNEXT_CAP runnext picks (Tokio caps LIFO picks at 3; Go
 *       lets runnext inherit the time slice and preempts after 10 ms). 64 picks are a few
 *       microseconds of ping-pong; a cap of 3 made skynet (B6, one worker) 2x slower, as it
 *       turned the depth-first spawn tree breadth-first (more stacks alive at once). A
 *       ping-pong alone on a worker keeps runnext every time: the ring is empty.
 *   F3  the ring's head (FIFO: yields, I/O completions and timers reaped on g0, kicked-out
 *       runnext goroutines, stolen batches).
 *   F4  the global queues: a batch as in F1 (the ring is empty, so up to half a ring).
 *   F5  nothing local (findrunnable): poll I/O, run timers, then spin (steal half a victim's
 *       ring as F7 allows, its runnext only when the victim looks stuck, the global queues),
 *       then sleep.
 *   F6  A full ring spills half of itself plus the newcomer to the own node's global queue
 *       (runq_push_slow), where F1 brings it back within the F1 bound; nothing is pushed on a
 *       ring under a global queue's lock (runq.c Q5).
 *   F7  Goroutines that talk stay together (issue 12, B4). A goroutine made runnable by a
 *       running goroutine (a channel or sync wake: g->peer_ready) joins its waker's worker, and
 *       a thief leaves it there: it does not take a victim's ring whose head is peer_ready, nor
 *       a peer_ready runnext, unless the victim's goroutine has run PEER_AGE_NS (100 us) without
 *       a switch (it computes: its peers may run elsewhere), or the ring holds STEAL_BACKLOG
 *       (32) or more, or the head waited PEER_AGE_NS and last parked on another object than the
 *       victim's running goroutine (g->park_obj: another group, e.g. a second ping-pong pair).
 *       Stealing every ring that had work split B4's four producers and consumers over both
 *       CPUs, which then paid a cache-line transfer for every message on the one channel (and
 *       the split never healed: parks are 1 in 700 messages): 4p4c at 2 workers 12.9 -> 49.2
 *       M/s, against 36.6/53.1 at 1 worker (interleaved, 5 runs each). The price: a pool of
 *       goroutines fed by a goroutine over a channel, with jobs shorter than PEER_AGE_NS,
 *       spreads later (8 workers, 20 us jobs, 2 workers: 107.7 -> 123.5 ms, 1 worker 206);
 *       200 us made that 149 ms, 50 us made B4 28 M/s. Goroutines readied by g0 (I/O,
 *       timers), plain threads, spawners and yielders are stolen as before.
 *   Readies: from a running goroutine into its worker's runnext (the previous occupant to the
 *   ring's tail); from g0 (timers, I/O) into the ring; from a plain thread into its node's
 *   global queue (with a wake-up).
 *
 * Contexts: findrunnable/worker_main run on g0; sched_switch_out on a goroutine; sched_wakep
 * and sched_global_push from any thread.
 * Depends on: sched.h, runq.c (queues), ctx.c (switching), timer.c, sched/poller.h (I/O, the
 * idle sleep), sched_debug_hooks (the deadlock check), kernel_iface (clock, topology); libc's
 * getrandom (W4).
 */
#include "sched/sched.h"
#include "sched/poller.h"
#include "sched/spinlock.h"
#include "kernel_iface/clock.h"
#include "kernel_iface/futex.h"
#include "kernel_iface/stackmem.h"
#include "kernel_iface/topology.h"
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef RINGO_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef RINGO_TSAN
#include <sanitizer/tsan_interface.h>
#endif

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
/* ... and then looks at most every LOOK_GAP_NS (spin_for_work). */
#define LOOK_GAP_NS 5000
/* A thief takes a victim's runnext only when the victim has not scheduled for this long: the
 * owner is about to run it (ping-pong), unless its current goroutine is hogging the worker. */
#define RUNNEXT_STEAL_NS 5000
/* F7: goroutines made runnable by a peer are left with it until they waited this long (the
 * victim's ring head or schedtick unchanged), unless the ring holds STEAL_BACKLOG or more. */
#define PEER_AGE_NS 100000
#define STEAL_BACKLOG 32

#ifdef RINGO_TSAN
_Atomic int sched_fence_word;
#endif

static __thread struct worker *tls_worker __attribute__((tls_model("initial-exec")));

/* I4: a non-inlinable accessor with an opaque asm, so the compiler never caches the thread
 * pointer or the value across a context switch (the same goroutine may come back on another
 * thread). GCC's noclone keeps it from cloning the function into a constant-propagated copy;
 * clang has no such pass and no such attribute. */
#if defined(__clang__)
#define NOINLINE_NOCLONE __attribute__((noinline))
#else
#define NOINLINE_NOCLONE __attribute__((noinline, noclone))
#endif
NOINLINE_NOCLONE struct worker *sched_cur_worker(void)
{
    struct worker *w = tls_worker;
    __asm__ volatile("" : "+r"(w));
    return w;
}

/* The plain threads' shared xorshift input: a Weyl sequence from a per-process seed. 0 until
 * the first sched_fastrand on a plain thread seeds it (W4). */
static _Atomic uint64_t thread_rng;

/* A seed for this process: getrandom(2), or the clock, pid and an ASLR'd address if it fails
 * (old kernel, seccomp). Never 0 (thread_rng's "unseeded"). */
static uint64_t process_seed(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s)
        s = ((uint64_t)clk_now() * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)getpid() << 32) ^
            (uint64_t)(uintptr_t)&s;
    return s ? s : 1;
}

uint32_t sched_fastrand(void)
{
    struct worker *w = sched_cur_worker();
    uint64_t x;
    if (w) {
        x = w->rng;
    } else {
        /* plain threads: a shared state is fine, the quality need only be uniform. relaxed: only
         * the value matters, it publishes nothing */
        uint64_t cur = atomic_load_explicit(&thread_rng, memory_order_relaxed);
        if (unlikely(cur == 0)) {
            /* first use in this process (W4); relaxed: a racing thread's seed is as good as ours,
             * the CAS only keeps one of them */
            uint64_t s = process_seed();
            (void)atomic_compare_exchange_strong_explicit(&thread_rng, &cur, s, memory_order_relaxed,
                                                          memory_order_relaxed);
        }
        /* relaxed: a counter, nothing published through it */
        x = atomic_fetch_add_explicit(&thread_rng, 0x9E3779B97F4A7C15ull, memory_order_relaxed);
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    if (w)
        w->rng = x;
    return (uint32_t)(x >> 32);
}

static bool wakep_node(int node);
static void wake_locked(struct worker *v);
void sched_global_push(struct g *g)
{
    struct worker *w = sched_cur_worker();
    int node = w ? (int)w->node : sched_thread_node();
    gq_push_list(&sched.gq[node], &g, 1);
    /* StoreLoad (step 2 of the recipe): the push above before the counter reads in wakep */
    sched_fence_seq_cst();
    wakep_node(node);
}


/* ================================================================== waking */

static void worker_kick(struct worker *v)
{
    sched_poller.kick(v); /* P3: futex wake, or whatever the worker's sleep waits on */
}

/* Wake one idle worker, the nearest to node (policy.wake_order: same node first). True when a
 * worker is spinning or was woken: someone will look for the work. */
static bool wakep_node(int node)
{
    /* seq_cst loads: step 3 of the recipe (the caller fenced after publishing, if it must) */
    if (atomic_load_explicit(&sched.nspinning, memory_order_seq_cst) != 0)
        return true;
    if (atomic_load_explicit(&sched.nidle, memory_order_seq_cst) == 0)
        return false;
    pthread_mutex_lock(&sched.idle_lock);
    struct worker *v = NULL;
    if (atomic_load_explicit(&sched.nspinning, memory_order_seq_cst) == 0) { /* re-read under idle_lock */
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
        /* then the extra workers allowed to take work (sysmon.c S2): the others only give
         * theirs away, waking them would not run it */
        for (unsigned k = sched.nprocs, n = sched_nworkers(); k < n && !v; k++)
            if (sched.w[k]->idle && sched_extra_allowed(sched.w[k]))
                v = sched.w[k];
    }
    if (!v) {
        pthread_mutex_unlock(&sched.idle_lock);
        /* seq_cst, as above: someone may have started spinning meanwhile */
        return atomic_load_explicit(&sched.nspinning, memory_order_seq_cst) != 0;
    }
    wake_locked(v);
    return true;
}

/* Under idle_lock, v idle: take it off the list and wake it as a spinning worker (W2). */
static void wake_locked(struct worker *v)
{
    v->idle = false;
    /* seq_cst: the counters are the sleepers' half of the recipe (steps b-d read them) */
    atomic_fetch_sub_explicit(&sched.nidle, 1, memory_order_seq_cst);     /* W1 */
    atomic_fetch_add_explicit(&sched.nspinning, 1, memory_order_seq_cst); /* W2: it starts out spinning */
    atomic_store_explicit(&v->wake, 1, memory_order_release); /* W2; pairs with the sleeper's acquire */
    pthread_mutex_unlock(&sched.idle_lock);
    worker_kick(v);
}

void sched_wake_worker(struct worker *v)
{
    pthread_mutex_lock(&sched.idle_lock);
    if (v->idle)
        wake_locked(v); /* unlocks */
    else
        pthread_mutex_unlock(&sched.idle_lock); /* awake: it looks for work before it sleeps */
}

void sched_wakep(void)
{
    if (atomic_load_explicit(&sched.nidle, memory_order_relaxed) == 0) /* cheap exit; wakep_node re-reads */
        return;
    struct worker *w = sched_cur_worker();
    wakep_node(w ? (int)w->node : sched_thread_node());
}

bool sched_wakep_any(void)
{
    return wakep_node(sched_thread_node());
}

/* Stop spinning after finding work; if we were the last spinner, start another so that a
 * burst of work is spread (Go's resetspinning). */
static void stop_spinning(struct worker *w, bool found)
{
    if (!w->spinning)
        return;
    w->spinning = false;
    uint32_t left = atomic_fetch_sub_explicit(&sched.nspinning, 1, memory_order_seq_cst) - 1; /* step a */
    if (found && left == 0)
        sched_wakep();
}

static int64_t timers_due(struct worker *w)
{
    return atomic_load_explicit(&w->tfirst, memory_order_relaxed); /* peek; sched_timers_run rechecks under tlock */
}

/* F2 (top): runnext is taken at most this many times in a row while the ring has work. */
#define RUNNEXT_CAP 64
/* F1 (top): the most the every-64th-schedule look takes from a global queue. */
#define GQ_TICK_BATCH 8

/* The next goroutine this worker can run without sleeping or stealing: the policy at the top. */
struct g *sched_next_local(struct worker *w)
{
    if (unlikely(w->extra) && !sched_extra_allowed(w))
        return NULL; /* findrunnable gives the local work away (extra_retire) */
    if (unlikely(w->locked))
        return NULL; /* lockthread.c: only its loop picks its one goroutine */
    uint32_t tick = atomic_load_explicit(&w->schedtick, memory_order_relaxed) + 1; /* own */
    atomic_store_explicit(&w->schedtick, tick, memory_order_relaxed);
    struct g *g;
    /* F0: due timers fire on every schedule (one clock read, only while this worker has
     * timers); what they ready goes to runnext / the ring like any ready */
    int64_t tf = timers_due(w);
    if (unlikely(tf != INT64_MAX)) {
        int64_t now = clk_now();
        if (tf <= now)
            sched_timers_run(w, now);
    }
    if (unlikely((tick & 63) == 0)) {
        /* F1: I/O completions and the global queue get a turn even when the local queue
         * never empties; the global queue gives a batch of up to GQ_TICK_BATCH */
        sched_poller.poll(w);
        g = global_get(w, GQ_TICK_BATCH);
        if (g) {
            w->runnext_streak = 0;
            return g;
        }
    }
    if (w->runnext_streak >= RUNNEXT_CAP) {
        /* F2: runnext has had its turns; the ring goes first */
        g = runq_pop(w);
        if (g) {
            w->runnext_streak = 0;
            return g;
        }
    }
    /* CAS: acquire pairs with whoever stored runnext (the owner itself, or nobody else:
     * thieves only take) */
    g = atomic_load_explicit(&w->runnext, memory_order_relaxed);
    if (g && atomic_compare_exchange_strong_explicit(&w->runnext, &g, NULL, memory_order_acquire,
                                                     memory_order_relaxed)) {
        if (w->runnext_streak < RUNNEXT_CAP)
            w->runnext_streak++;
        return g;
    }
    w->runnext_streak = 0;
    g = runq_pop(w);
    if (g)
        return g;
    return global_get(w, 0);
}


void sched_enqueue_ready(struct g *g)
{
    if (unlikely(g->lockw != NULL)) {
        sched_lockw_hand(g->lockw, g); /* lockthread.c L2: it runs only on its thread */
        return;
    }
    struct worker *w = sched_cur_worker();
    if (unlikely(w && w->locked))
        w = NULL; /* readied by a locked goroutine (lockthread.c): its thread runs nothing else */
    /* F7: relaxed; published with g by the queue's release (and a heuristic anyway) */
    atomic_store_explicit(&g->peer_ready, w && w->curg, memory_order_relaxed);
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

struct steal_seen {
    uint32_t tick;
    int64_t since;      /* when tick was last seen to change */
    uint32_t head;
    int64_t head_since; /* when the ring's head was last seen to move */
};

static struct g *try_steal(struct worker *w, struct steal_seen *seen, int64_t now)
{
    /* the regular workers in w's order (nearest first; an extra worker's order has them all),
     * then the extra workers */
    unsigned nreg = w->extra ? sched.nprocs : sched.nprocs - 1, n = sched_nworkers();
    for (unsigned k = 0; k < nreg + (n - sched.nprocs); k++) {
        unsigned vi = k < nreg ? w->steal_order[k] : sched.nprocs + (k - nreg);
        struct worker *v = sched.w[vi];
        if (v == w)
            continue;
        uint32_t tick = atomic_load_explicit(&v->schedtick, memory_order_relaxed); /* heuristic only */
        if (tick != seen[vi].tick) {
            seen[vi].tick = tick;
            seen[vi].since = now;
        }
        int64_t tick_age = now - seen[vi].since;
        /* F7 (heuristic loads: a stale answer only delays or hastens one steal) */
        uint32_t head = atomic_load_explicit(&v->rq.head, memory_order_relaxed);
        uint32_t len = atomic_load_explicit(&v->rq.tail, memory_order_relaxed) - head;
        if (head != seen[vi].head) {
            seen[vi].head = head;
            seen[vi].head_since = now;
        }
        bool waited = tick_age >= PEER_AGE_NS; /* v's goroutine computes: its peers may go */
        if (len != 0 && len < STEAL_BACKLOG && !waited) {
            struct g *first = atomic_load_explicit(&v->rq.buf[head % RUNQ_SIZE], memory_order_relaxed);
            if (first && atomic_load_explicit(&first->peer_ready, memory_order_relaxed)) {
                /* its peers are on v: leave the group together, unless it waited long and
                 * waits on something else than what v runs now (another group) */
                struct g *cur = sched_racy_curg(v);
                void *obj = atomic_load_explicit(&first->park_obj, memory_order_relaxed);
                if (now - seen[vi].head_since < PEER_AGE_NS || !obj || !cur ||
                    obj == atomic_load_explicit(&cur->park_obj, memory_order_relaxed))
                    continue;
            }
        }
        bool take_next = tick_age >= RUNNEXT_STEAL_NS;
        if (take_next && !waited) {
            struct g *next = atomic_load_explicit(&v->runnext, memory_order_relaxed);
            take_next = !(next && atomic_load_explicit(&next->peer_ready, memory_order_relaxed));
        }
        struct g *g = runq_steal(w, v, take_next);
        if (g) {
            sched_stat_inc(&w->st_steals); /* stats only */
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
        atomic_fetch_sub_explicit(&sched.nidle, 1, memory_order_seq_cst); /* W1; recipe counter */
    }
    pthread_mutex_unlock(&sched.idle_lock);
    if (!was) {
        atomic_store_explicit(&w->wake, 0, memory_order_relaxed); /* own: consume the wake */
        w->spinning = true;                                         /* W2/W3 */
    }
    return was;
}

/* Steps b and c of the recipe: on the idle list (W1), then the StoreLoad fence. */
static void idle_announce(struct worker *w)
{
    pthread_mutex_lock(&sched.idle_lock);
    w->idle = true;
    atomic_fetch_add_explicit(&sched.nidle, 1, memory_order_seq_cst); /* W1; step b of the recipe */
    pthread_mutex_unlock(&sched.idle_lock);
    sched_fence_seq_cst(); /* step c */
}

/* The end of an announced idle spell, slept or not: accept a waker's wake (W2) or take ourselves
 * off the list, then wake the sysmon if it went to sleep deep meanwhile (S5: nidle fell, ours
 * or the waker's decrement, before this). */
static void idle_end(struct worker *w)
{
    if (atomic_load_explicit(&w->wake, memory_order_acquire) == 1) { /* pairs with wakep's release */
        atomic_store_explicit(&w->wake, 0, memory_order_relaxed);     /* own */
        w->spinning = true; /* W2: the waker counted us in nspinning */
    } else {
        idle_leave(w);
    }
    sched_sysmon_kick();
}

/* The racy read of another worker's curg (sysmon.c S1, F7 here): the owner writes it plainly;
 * a heuristic, and the g descriptors are never freed, so reading through it is safe. */
__attribute__((noinline, no_sanitize_thread)) struct g *sched_racy_curg(struct worker *w)
{
    return *(struct g *volatile *)&w->curg;
}

/* Start spinning if few enough workers spin already (only some do at once, as in Go). */
static void maybe_start_spinning(struct worker *w)
{
    unsigned n = sched_nworkers();
    if (w->spinning || n < 2)
        return;
    /* relaxed: only a heuristic of how many spin (Go's "half the busy Ps") */
    uint32_t busy = n - atomic_load_explicit(&sched.nidle, memory_order_relaxed);
    if (2 * atomic_load_explicit(&sched.nspinning, memory_order_relaxed) < busy) {
        w->spinning = true;
        /* seq_cst: a producer that sees nspinning > 0 skips its wake-up (step 3) */
        atomic_fetch_add_explicit(&sched.nspinning, 1, memory_order_seq_cst); /* W3 */
    }
}

/* X1: fire the due timers of the other workers (Go's stealWork runs every P's timers), one heap
 * at a time under its own tlock (never two tlocks at once: timer.c's lock order). We are on g0,
 * so what they ready goes to our own ring (sched_enqueue_ready). Returns nothing: the caller
 * looks at its ring. */
static void run_other_timers(struct worker *w, int64_t now)
{
    for (unsigned k = 0, n = sched_nworkers(); k < n; k++) {
        struct worker *v = sched.w[k];
        if (v != w && timers_due(v) <= now)
            sched_timers_run(v, now); /* rechecks under v->tlock */
    }
}

/* X2: the earliest deadline over every worker's heap (peeks), INT64_MAX when none. */
static int64_t timers_first_all(void)
{
    int64_t first = INT64_MAX;
    for (unsigned k = 0, n = sched_nworkers(); k < n; k++) {
        int64_t t = timers_due(sched.w[k]);
        if (t < first)
            first = t;
    }
    return first;
}

/* Test hooks (tests/test_worker.c), NULL otherwise: called by an extra worker at each look of
 * its spin, before it checks whether it is still allowed; and when that look found local work,
 * right before it takes it. */
void (*sched_test_hook_extra_look)(struct worker *w);
void (*sched_test_hook_extra_local)(struct worker *w);

/* A spinning worker looks everywhere for a while: its own I/O and timers, other workers' timers
 * (X1), other workers' rings (stealing) and the global queues. Returns a g to run (spinning stopped), or NULL when the
 * spin is over (spinning stopped, step a done). */
static struct g *spin_for_work(struct worker *w, struct steal_seen *seen)
{
    int64_t start = clk_now(), now = start;
    for (unsigned looks = 0; looks < SPIN_MIN_LOOKS || now - start < SPIN_NS; looks++) {
        if (unlikely(w->extra && sched_test_hook_extra_look))
            sched_test_hook_extra_look(w);
        if (unlikely(w->extra) && !sched_extra_allowed(w))
            /* disallowed mid-spin (sysmon.c S2): return still spinning, so that findrunnable's
             * disallowed branch stops the spin and wakes whoever can take the work a producer
             * left to us because we spun (stopping here and sleeping lost that wake-up: CI's
             * ASan run of test_worker pair_global, 2 goroutines in the global queue and every
             * worker asleep) */
            return NULL;
        /* What fired here runs before anything is stolen (Go's stealWork runs timers first and
         * returns what they readied): a spinning worker never has local work when it steals. */
        sched_poller.poll(w);
        if (timers_due(w) <= now)
            sched_timers_run(w, now);
        run_other_timers(w, now); /* X1: what they ready is on our ring now */
        struct g *g = NULL;
        if (!runq_empty(w)) {
            if (unlikely(w->extra && sched_test_hook_extra_local))
                sched_test_hook_extra_local(w);
            g = sched_next_local(w);
            if (!g && unlikely(w->extra))
                /* sched_next_local refuses an extra worker disallowed since the check above
                 * (CI's ASan run of test_io: "worker 2 is spinning with local work"): the
                 * local work is findrunnable's to give away, as mid-spin above */
                return NULL;
        }
        if (!g) {
            SCHED_CHECK(runq_empty(w), "worker %u is spinning with local work", w->id);
            g = try_steal(w, seen, now);
        }
        if (!g)
            g = global_get(w, 0);
        if (g) {
            stop_spinning(w, true);
            return g;
        }
        /* First look often (a victim's runnext is taken on a second look at least
         * RUNNEXT_STEAL_NS later with its tick unchanged: looks must come closer together than
         * the victim's switches). Then give way to any other thread runnable on this CPU: a
         * pinned worker cannot move, and a spin that keeps a server's own clients (or anything
         * else) off the CPU costs more than it saves (B8 echo on 2 shared vCPUs: 52k -> 96k
         * round trips/s). sched_yield returns at once when nothing else wants the CPU. */
        if (now - start < SPIN_PAUSE_NS) {
            for (int i = 0; i < 32; i++)
                cpu_relax();
        } else {
            /* Pace the looks at least LOOK_GAP_NS apart: each reads the victims' hot lines
             * (schedtick, ring head/tail, runnext) that their owners write on every switch,
             * and a look every 0.4 us (sched_yield returns at once when no other thread
             * wants this CPU) made a ping-pong on the other worker pay for the transfers
             * (B3 at 2 workers, issue 12). */
            int64_t last = now;
            sched_yield();
            while ((now = clk_now()) - last < LOOK_GAP_NS)
                for (int i = 0; i < 16; i++)
                    cpu_relax();
        }
        now = clk_now();
    }
    stop_spinning(w, false); /* step a */
    return NULL;
}

/* Steps b-e of the recipe (top of this file): announce, re-check, sleep. Returns when the
 * worker should look for work again (woken: spinning; or it found work in the re-check). */
static void idle_sleep(struct worker *w)
{
    /* X1: due timers of other workers first (a non-spinning worker comes here straight from
     * findrunnable); what they ready is ours to run */
    run_other_timers(w, clk_now());
    if (!runq_empty(w))
        return;
    sched_g_pool_trim(w); /* goroutine.c S3: what a quiet worker does not need can go back */

    idle_announce(w);

    /* step d: re-check */
    sched_poller.flush(w);
    /* X2: the earliest timer of every worker, read after the fence (the Dekker pair of
     * sched_timer_add's fence and wakep) */
    int64_t first = timers_first_all();
    if (runq_work_anywhere() || sched_poller.poll(w) > 0 || first <= clk_now()) {
        idle_end(w);
        return;
    }
    sched_debug_hooks.check_deadlock(0);

    /* step e: sleep until woken, the earliest timer of any worker (X2), or I/O */
    sched_poller.sleep(w, first == INT64_MAX ? -1 : first);
    idle_end(w);
}

/* An extra worker that may not take work (sysmon.c S2): give the local work to the global queue,
 * then sleep on the idle list until allowed again (the sysmon wakes it) or until its own timers
 * or I/O have more to give away. Never spins, steals or takes from a global queue: extra workers
 * add threads only while workers are stuck. */
static void extra_retire(struct worker *w)
{
    sched_poller.poll(w);                     /* its I/O readies into its ring (g0) */
    int64_t now = clk_now();
    if (timers_due(w) <= now)
        sched_timers_run(w, now);
    struct g *gs[RUNQ_SIZE + 1];
    uint32_t n = 0;
    /* acquire: pairs with the release of whoever stored runnext (the owner: us) */
    struct g *g = atomic_exchange_explicit(&w->runnext, NULL, memory_order_acquire);
    if (g)
        gs[n++] = g;
    while (n < RUNQ_SIZE + 1 && (g = runq_pop(w)))
        gs[n++] = g;
    if (n) {
        /* to the front: most of it came from there, and none of it should wait behind what
         * queued meanwhile (test_worker's global-queue bound failed under TSan otherwise) */
        gq_push_front_list(&sched.gq[w->node], gs, n);
        sched_fence_seq_cst(); /* step 2 of the recipe: the push before wakep's counter reads */
        wakep_node((int)w->node);
        return;
    }
    sched_g_pool_trim(w); /* goroutine.c S3, as idle_sleep */
    idle_announce(w); /* its step-c fence also orders us against the sysmon's extra_allowed store + wake (S2) */
    sched_poller.flush(w);
    if (!sched_extra_allowed(w) && runq_empty(w) && sched_poller.poll(w) == 0 && timers_due(w) > clk_now()) {
        sched_debug_hooks.check_deadlock(0);
        int64_t first = timers_due(w);
        sched_poller.sleep(w, first == INT64_MAX ? -1 : first);
    }
    idle_end(w);
}

/* The scheduling loop's question "what next?" on g0: local work, then spinning, then sleep. */
static struct g *findrunnable(struct worker *w)
{
    struct steal_seen seen[sched.nw_max];
    memset(seen, 0, sizeof seen);
    for (;;) {
        if (unlikely(w->extra) && !sched_extra_allowed(w)) {
            /* step a: a producer that saw us spinning (now, or until the spin that just ended)
             * did not wake anyone; we may not take its work, so whoever can must be woken (the
             * test_sync hang, and CI's ASan run of test_worker pair_global: all asleep with
             * goroutines in a global queue). Every time, not only while spinning: a spin that
             * ended, re-checked and saw the work comes back here unable to take it. */
            if (w->spinning)
                stop_spinning(w, false);
            sched_fence_seq_cst();
            if (runq_work_anywhere())
                wakep_node((int)w->node);
            extra_retire(w);
            continue;
        }
        struct g *g = sched_next_local(w);
        if (g) {
            stop_spinning(w, true);
            return g;
        }
        if (sched_poller.poll(w) > 0)
            continue;
        if (timers_due(w) != INT64_MAX && sched_timers_run(w, clk_now()) <= clk_now())
            continue;
        if (!runq_empty(w))
            continue;
        maybe_start_spinning(w);
        if (w->spinning) {
            g = spin_for_work(w, seen);
            if (g)
                return g;
            if (unlikely(w->spinning))
                continue; /* an extra worker disallowed mid-spin: the branch at the top */
            sched_fence_seq_cst(); /* step a: nspinning-- before the re-check */
            if (runq_work_anywhere())
                continue;
        }
        idle_sleep(w);
    }
}


/* ================================================================== worker threads */


void sched_set_cur_worker(struct worker *w)
{
    tls_worker = w;
}

/* On a worker's thread (regular, extra or locked): its g0 for the sanitizers, its signal stack. */
void sched_thread_g0_setup(struct worker *w)
{
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
}

void *sched_worker_main(void *arg)
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
    sched_thread_g0_setup(w);
    sched_poller.init(w);
    if (w->extra)
        sched_extra_started(w);   /* sysmon.c S4: published, then it runs */
    else
        pthread_barrier_wait(&sched_start_barrier);
    for (;;) {
        struct g *g = findrunnable(w);
        sched_run_from_g0(w, g);
    }
    return NULL;
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

