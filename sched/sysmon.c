/* sched/sysmon.c — the system monitor: nobody is held hostage by a goroutine that computes or
 * blocks (issue 11, item 3; after Go's sysmon, retake and handoffp).
 *
 * Responsibility: one thread ("ringo-wsys") that notices a worker whose thread has been inside
 * one goroutine for STUCK_NS (a loop, a plain read(2), usleep, a database client library) and
 * gets everything that worker owns done elsewhere:
 *   - its I/O: the sysmon submits what waits in its SQ and reaps its completions, readying the
 *     goroutines into the global queue (sched/poller.h P4; poll_uring.c U1, poll_epoll.c E4),
 *     and runs its close-cancel requests, so ringo_close does not wait for it either;
 *   - its run queue and runnext: other workers steal them (a stuck victim's runnext too,
 *     proc.c try_steal);
 *   - its timers: every worker that looks for work fires every worker's due timers (proc.c X1);
 *   - and when no worker is free to do the above (all of them stuck, or busy), an extra worker:
 *     a thread with a worker of its own (run queue, timers, I/O ring), made on demand, allowed
 *     to take work from anywhere while workers are stuck (S2).
 *   When the stuck thread comes back it finds its queue emptied by thieves and goes on as a
 *   worker; the last extra worker allowed gives its local work back and sleeps (proc.c
 *   extra_retire).
 *
 * Why not Go's handoff of the P itself: in Go a P is handed to another M only while its M is in
 * a system call, which the M entered through entersyscall and leaves through exitsyscall, so the
 * M never touches the P in between. A ringo goroutine that computes or calls libc made no such
 * promise: it may touch its worker's run queue, timers or ring at any instant (a channel send
 * readies into runnext), so handing the worker away would need a check on every runtime entry
 * (a fence on the hot path: B2/B3). Extra workers need no such check: everything the sysmon and
 * other workers touch of a stuck worker is already made for other threads (steal, the timer
 * heap's lock, the ring lock that costs the owner one uncontended CAS per ring session).
 * What it costs: up to nprocs extra threads (each with a ring), made only when some worker was
 * stuck, and while they run more threads than procs compete for the CPUs the stuck ones hold.
 *
 * Invariants:
 *   S1  A worker is stuck when the sysmon saw it run a goroutine (w->curg != NULL) with the
 *       same schedtick on every look for STUCK_NS, or at once while its goroutine is inside
 *       ringo_block_begin/end (w->marked; the begin wakes the sysmon). Both are read racily (a
 *       stale read costs one look: a rescue whose trylock fails, or an extra worker allowed one
 *       tick too long).
 *   S2  sched.extra_allowed is written by the sysmon only: the number of stuck workers, at
 *       most the extra workers that exist. Extra worker nprocs+i takes work from anywhere
 *       (steals, global queues, wakep's choice) iff i < extra_allowed; otherwise it gives its
 *       local work to the global queue and sleeps on the idle list, never spinning. Raising it,
 *       the sysmon then wakes the newly allowed worker (sched_wake_worker): the extra worker's
 *       announcement (idle_lock) and the sysmon's wake (idle_lock) meet under one lock, so an
 *       extra worker either sees the new value in its re-check or is woken.
 *   S3  Extra workers are made when workers are stuck, as many as are stuck (at most nprocs
 *       in the life of the process; they are never destroyed, an idle one sleeps on the idle
 *       list). Made at once rather than when work shows up: the first echo behind two stuck
 *       workers then waits for a wake-up, not for a thread and its ring to be made.
 *   S4  An extra worker is published by its own thread, once its I/O backend is set up:
 *       sched.nw = id + 1 with a seq_cst store (release for sched_nworkers' acquire; seq_cst for
 *       the deadlock check, which reads nidle then nw); the sysmon waits for it (made_sem)
 *       before it looks again, so extra workers are published in id order and w[0 .. nw-1] are
 *       always complete.
 *   S5  No CPU burns while nothing happens: when every worker has been idle for DEEP_AFTER
 *       looks (50 ms) the sysmon sleeps on sysmon_deep until a worker leaves its idle sleep
 *       (sched_sysmon_kick) or 1 s passes. Not at once: workers that go idle and busy again
 *       many times a second would each pay a futex wake to bring it back (under valgrind,
 *       stress_chan went from 1.6 s to past its 11 s watchdog). The
 *       Dekker pair: the sysmon stores deep = 1 then reads nidle, a worker changes nidle then
 *       reads deep, all seq_cst; so either the sysmon sees the busy worker or the worker sees
 *       deep and wakes it. While some worker runs, it looks every LOOK_NS.
 *   S6  A lost wake-up fails loudly in debug builds (all_idle_with_work).
 * Contexts: sysmon_main on its own thread (every signal blocked); sched_sysmon_kick on workers;
 *   sched_extra_started on a new extra worker's thread.
 * Depends on: sched.h, sched/poller.h (P4 rescue), proc.c (sched_wake_worker, sched_wakep),
 *   start.c (sched_extra_new), kernel_iface (clock, futex).
 */
#include "sched/sched.h"
#include "sched/poller.h"
#include "kernel_iface/clock.h"
#include "kernel_iface/futex.h"
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STUCK_NS 10000000LL /* S1: Go's forcePreemptNS, the time slice */
#define STUCK_NS_VALGRIND 200000000LL
/* ThreadSanitizer runs everything 5-15x slower: a goroutine in the middle of ordinary work
 * keeps its worker for 10 ms, and extra workers would change every test's interleavings. */
#ifdef RINGO_TSAN
#define STUCK_SLOWDOWN 5
#else
#define STUCK_SLOWDOWN 1
#endif
#define DEEP_AFTER 50       /* S5: looks with every worker idle before the sysmon sleeps deep */
#define LOOK_NS 1000000LL   /* between looks while some worker runs a goroutine */
#define DEEP_NS 1000000000LL
#define DECAY_NS 250000000LL /* goroutine.c S3: stacks unused this long give their pages back */
#define LOST_NS 1000000000LL /* S6: no wake-up in flight takes this long, even under valgrind */

static _Atomic uint32_t sysmon_deep;  /* S5: 1 while the sysmon sleeps because all are idle */
static _Atomic uint32_t sysmon_bell;  /* futex word of the sysmon's look-to-look wait */
static sem_t made_sem;                /* S4: posted by a new extra worker once published */
static sigset_t starter_mask;         /* the signal mask of the thread that started the runtime */

/* Test hook (tests/test_handoff.c): how many workers the sysmon found stuck, ever. */
_Atomic uint64_t sched_sysmon_stuck_seen;


void sched_extra_started(struct worker *w)
{
    /* S4: seq_cst store (release included): w and its backend before anyone iterates to it */
    atomic_store_explicit(&sched.nw, w->id + 1, memory_order_seq_cst);
    sem_post(&made_sem);
}

void sched_sysmon_kick(void)
{
    /* S5: seq_cst load after our nidle change (or the waker's, which happened before) */
    if (atomic_load_explicit(&sysmon_deep, memory_order_seq_cst) == 0)
        return;
    /* relaxed: the futex word itself; the wake below is what the sysmon waits for */
    if (atomic_exchange_explicit(&sysmon_deep, 0, memory_order_relaxed) == 1)
        futex_wake((uint32_t *)&sysmon_deep, 1);
}

struct look {
    uint32_t tick;
    int64_t since;
};

/* Work waiting that no one takes: a global queue or a stuck worker's queue (S3). */
static bool work_waiting(const bool *stuck, unsigned n)
{
    if (atomic_load_explicit(&sched.gq_len, memory_order_relaxed) != 0) /* a peek */
        return true;
    for (unsigned i = 0; i < n; i++)
        if (stuck[i] && !runq_empty(sched.w[i]))
            return true;
    return false;
}

/* S3: make an extra worker and wait until it is published (S4). Its thread gets the signal
 * mask the runtime's starter had, as the regular workers did, not the sysmon's (all blocked: a
 * worker must take SIGSEGV for the overflow report, and SIGURG for RINGO_DEBUG's samples). */
static bool make_extra(void)
{
    sigset_t mine;
    pthread_sigmask(SIG_SETMASK, &starter_mask, &mine);
    int r = sched_extra_new();
    pthread_sigmask(SIG_SETMASK, &mine, NULL);
    if (r != 0)
        return false;
    while (sem_wait(&made_sem) != 0) /* S4: published before we look again */
        ;
    return true;
}

/* S2, S3: as many extra workers allowed as workers are stuck (made when missing); when work
 * waits that no one takes, wake a worker that can take it. */
static void adjust_extras(unsigned nstuck, const bool *stuck, unsigned n)
{
    unsigned want = nstuck < sched.nw_max - sched.nprocs ? nstuck : sched.nw_max - sched.nprocs;
    if (sched.disable & DIS_EXTRA_WORKERS)
        want = 0; /* RINGO_DISABLE=extra_workers: never more threads than procs */
    while (n - sched.nprocs < want && make_extra())
        n++;
    unsigned nextra = n - sched.nprocs;
    unsigned allowed = nstuck < nextra ? nstuck : nextra;
    unsigned before = atomic_load_explicit(&sched.extra_allowed, memory_order_relaxed); /* ours (S2) */
    /* seq_cst: the extra worker's step-c fence and re-check read it (S2, proc.c extra_retire) */
    if (allowed != before)
        atomic_store_explicit(&sched.extra_allowed, allowed, memory_order_seq_cst);
    if (nstuck == 0 || !work_waiting(stuck, n))
        return;
    sched_fence_seq_cst(); /* step 2 of proc.c's recipe: the work was published before */
    if (sched_wakep_any())
        return; /* an idle worker (regular, or an allowed extra one) was woken, or one spins */
    for (unsigned i = sched.nprocs; i < sched.nprocs + allowed; i++)
        sched_wake_worker(sched.w[i]);
}

/* S6: every worker asleep on the idle list while a queue holds work is a lost wake-up. Debug
 * builds die of it (Go's throw) once it lasts LOST_NS, which no wake-up in flight takes; other
 * builds wake a worker, so that a bug costs a delay, not a hang. True while it lasts. */
static bool all_idle_with_work(int64_t now, int64_t *since)
{
    /* seq_cst: the same reads as a sleeping worker's re-check */
    if (atomic_load_explicit(&sched.nidle, memory_order_seq_cst) != sched_nworkers() || !runq_work_anywhere()) {
        *since = 0;
        return false;
    }
    if (*since == 0)
        *since = now;
    if (now - *since >= LOST_NS) {
#if SCHED_DEBUG
        /* where the work waits, and each worker's state, before the debug build dies (racy
         * snapshots: all of them are asleep) */
        fprintf(stderr, "ringo: lost wake-up: global queues %u;",
                (unsigned)atomic_load_explicit(&sched.gq_len, memory_order_relaxed));
        for (unsigned i = 0, n = sched_nworkers(); i < n; i++) {
            struct worker *v = sched.w[i];
            uint32_t h = atomic_load_explicit(&v->rq.head, memory_order_relaxed);
            uint32_t t = atomic_load_explicit(&v->rq.tail, memory_order_relaxed);
            fprintf(stderr, " w%u%s ring %u next %s%s;", i, v->extra ? (sched_extra_allowed(v) ? " extra" : " extra-off") : "",
                    t - h, atomic_load_explicit(&v->runnext, memory_order_relaxed) ? "1" : "0",
                    sched_racy_curg(v) ? " on a goroutine" : "");
        }
        fprintf(stderr, "\n");
#endif
        SCHED_CHECK(false, "lost wake-up: every worker is asleep and a run queue holds goroutines");
        sched_fence_seq_cst();
        (void)sched_wakep_any();
        *since = 0;
    }
    return true;
}

static void *sysmon_main(void *arg)
{
    (void)arg;
    struct look *seen = calloc(sched.nw_max, sizeof *seen);
    bool *stuck = calloc(sched.nw_max, sizeof *stuck);
    if (!seen || !stuck) {
        fprintf(stderr, "ringo: sysmon: out of memory: stuck workers will hold their work\n");
        return NULL;
    }
    int64_t lost_since = 0, decayed = clk_now();
    bool io_keeps = false; /* P6: some backend kept memory for a load at the last decay tick */
    unsigned idle_looks = 0; /* S5: looks in a row that found every worker idle */
    /* Under valgrind threads run one at a time (its big lock): a worker waits its turn for
     * tens of milliseconds in the middle of anything, which is no reason for extra workers. */
    const int64_t stuck_ns = sched.on_valgrind ? STUCK_NS_VALGRIND : STUCK_NS * STUCK_SLOWDOWN;
    for (;;) {
        int64_t now = clk_now();
        unsigned n = sched_nworkers(), nstuck = 0, running = 0;
        for (unsigned i = 0; i < n; i++) {
            struct worker *w = sched.w[i];
            /* relaxed: a heuristic (S1) */
            uint32_t tick = atomic_load_explicit(&w->schedtick, memory_order_relaxed);
            bool on_g = sched_racy_curg(w) != NULL;
            /* relaxed: the owner's flag, a heuristic as the rest (S1) */
            bool marked = atomic_load_explicit(&w->marked, memory_order_relaxed) != 0;
            if (!marked && (!on_g || tick != seen[i].tick)) {
                seen[i].tick = tick;
                seen[i].since = now;
                stuck[i] = false;
                running += on_g;
                continue;
            }
            running++;
            if (!marked && now - seen[i].since < stuck_ns)
                continue;
            if (!stuck[i]) /* relaxed: a counter for tests */
                atomic_fetch_add_explicit(&sched_sysmon_stuck_seen, 1, memory_order_relaxed);
            stuck[i] = true;
            nstuck++;
            sched_poller.rescue(w); /* P4: its I/O, readied into the global queue */
        }
        adjust_extras(nstuck, stuck, n);
        if (now - decayed >= DECAY_NS) {
            sched_g_pools_decay();
            io_keeps = false;
            for (unsigned i = 0; i < n; i++)
                io_keeps |= sched_poller.reclaim(sched.w[i]); /* P6 */
            decayed = now;
        }
        if (running == 0 && nstuck == 0 && all_idle_with_work(now, &lost_since)) {
            struct timespec ts = clk_to_ts(LOOK_NS);
            nanosleep(&ts, NULL);
            continue;
        }
        idle_looks = running == 0 && nstuck == 0 ? idle_looks + 1 : 0;
        if (idle_looks >= DEEP_AFTER) {
            /* S5: seq_cst store, then the seq_cst load of nidle */
            atomic_store_explicit(&sysmon_deep, 1, memory_order_seq_cst);
            if (atomic_load_explicit(&sched.nidle, memory_order_seq_cst) == sched_nworkers())
                /* stacks still warm in a global pool: wake for the next decay (S3) */
                futex_wait((uint32_t *)&sysmon_deep, 1,
                           clk_now() + (sched_g_pools_warm() || io_keeps ? DECAY_NS : DEEP_NS));
            atomic_store_explicit(&sysmon_deep, 0, memory_order_relaxed); /* ours again */
            continue;
        }
        /* relaxed: only a futex word; a begin that bumps it ends this wait early */
        uint32_t v = atomic_load_explicit(&sysmon_bell, memory_order_relaxed);
        futex_wait((uint32_t *)&sysmon_bell, v, clk_now() + LOOK_NS);
    }
    return NULL;
}

void ringo_block_begin(void)
{
    struct worker *w = sched_cur_worker();
    if (!w || !w->curg || w->locked)
        return; /* a locked worker (lockthread.c) has nothing for others to take */
    sched_poller.flush(w); /* what this worker's goroutines filled reaches the kernel now */
    /* relaxed: the sysmon's heuristic read (S1); the wake below makes it look now */
    atomic_store_explicit(&w->marked, 1, memory_order_relaxed);
    if (runq_empty(w) && sched_poller.waiting(w) == 0 && atomic_load_explicit(&w->tfirst, memory_order_relaxed) == INT64_MAX)
        return; /* nothing of ours waits: the sysmon finds us on its next look */
    atomic_fetch_add_explicit(&sysmon_bell, 1, memory_order_relaxed); /* the futex word only */
    if (atomic_load_explicit(&sysmon_deep, memory_order_seq_cst) != 0)
        sched_sysmon_kick();
    else
        futex_wake((uint32_t *)&sysmon_bell, 1);
}

void ringo_block_end(void)
{
    struct worker *w = sched_cur_worker();
    if (!w)
        return;
    atomic_store_explicit(&w->marked, 0, memory_order_relaxed); /* the sysmon's heuristic (S1) */
}

void sched_sysmon_start(void)
{
    sem_init(&made_sem, 0, 0);
    sigset_t all;
    sigfillset(&all);
    /* the thread inherits it: signals go to the program (extra workers get starter_mask back) */
    pthread_sigmask(SIG_SETMASK, &all, &starter_mask);
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int r = pthread_create(&t, &a, sysmon_main, NULL);
    pthread_attr_destroy(&a);
    pthread_sigmask(SIG_SETMASK, &starter_mask, NULL);
    /* Named here, before the runtime counts as started: the deadlock check takes a thread
     * whose name does not start with "ringo-w" for one that may still wake someone, and a
     * main that blocks at once must not find the sysmon still unnamed (test_deadlock). */
    if (r == 0)
        pthread_setname_np(t, "ringo-wsys");
    if (r != 0)
        fprintf(stderr, "ringo: cannot start the sysmon (%s): stuck workers will hold their work\n",
                strerror(r));
}
