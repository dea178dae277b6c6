/* sched/timer.c — sleeps and deadlines: one binary min-heap of timers per worker.
 *
 * Responsibility: ringo_sleep, and timers owned by parked goroutines (struct timer lives in the parked frame);
 * the heaps also hold callback timers (T7: the timer channels of chan/timechan.c).
 * A goroutine adds its timer to the heap of the worker it runs on. That worker fires it in its
 * scheduling loop, and so does any other worker that looks for work or sleeps (proc.c X1, X2:
 * a worker stuck in a long goroutine does not hold up its timers while another is idle).
 *
 * Invariants:
 *   T1  t->idx >= 0 iff t is in t->w's heap; heap and idx change only under t->w->tlock.
 *   T2  sched.ntimers counts timers in all heaps; it is decremented only after a fired timer's
 *       goroutine is on a run queue (I5), so the deadlock check never sees "nothing pending"
 *       while a timer is about to ready someone.
 *   T3  A firing timer decides (claim CAS) and readies its goroutine while holding tlock, so a
 *       goroutine returning from park, which calls sched_timer_del (takes tlock), never leaves
 *       the frame that holds t or the claim word while the firing side still touches them.
 *   T4  A timer that becomes the earliest of its heap is followed, after tlock is dropped, by a
 *       seq_cst fence and a wakep (proc.c X2): a worker asleep with a later deadline (or none)
 *       wakes and sleeps again until the earliest timer of all workers.
 *   T5  theap[i].when == theap[i].t->when and theap[i].t->idx == i for i < tn; no entry is
 *       earlier than its parent (i - 1) / 4.
 *   T6  One sched_timers_run readies at most as many goroutines as the caller's run queue has
 *       room for (sched_poll_budget, as the I/O polls do: poll_uring.c U8); due timers left
 *       over stay in the heap, earliest first, and fire at the next schedule. Firing them all
 *       overflowed the ring when many were due at once (B10: 100,000 sleepers on one worker
 *       spilled 49,149 goroutines to the global queue, where they waited for batches of 8
 *       every 64 schedules: p99 overshoot 7-10 ms with p50 0.002).
 *   T7  A callback timer (t->fn != NULL, t->g unused) fires by t->fn(t, now), called under
 *       tlock with t still at heap[0]: fn returns the next deadline (> now) and t stays in the
 *       heap, counted in ntimers (a ticker), or -1 and t leaves the heap and ntimers after fn
 *       returned (T2: whatever fn readied is on a run queue by then). Its owner removes it with
 *       sched_timer_del, which takes the same tlock: when that returns, no fire of t is under
 *       way nor can start (T1), so the owner may free t (as T3 for a goroutine's frame). The
 *       owner changes when, fn's data, or t->w (a re-add elsewhere) only while t is in no
 *       heap; the re-add's tlock publishes them to the next fire. One fire is one unit of T6's
 *       budget: fn readies at most one goroutine (a channel send: one receiver).
 *   w->tfirst mirrors heap[0].when (INT64_MAX when empty): written under tlock, peeked relaxed.
 * Lock order: a worker's tlock may be held while readying (idle_lock and the global queue locks are taken inside);
 * nothing takes tlock while holding those. Any worker may take any worker's tlock (X1), but
 * never two at once: nothing under one tlock reaches another. A goroutine timer readies a
 * goroutine (run queues, idle list). A callback timer's fn (timechan.c) makes a non-blocking
 * channel send: the channel's spinlock, then sched_ready of at most one receiver, a goroutine
 * (as above) or a plain thread (seq_cst counter adds, a CAS and a futex wake: no lock at all).
 * So tlock > channel lock, and no channel code takes a tlock while holding a channel lock
 * (a park's deadline timer is added after the channel lock is dropped). timechan.c's own
 * per-timer mutex is taken before tlock (stop, reset, free), never under it: fn never takes it.
 * Depends on: sched.h (the park protocol, run queues), kernel_iface/clock.
 */
#include "sched/sched.h"
#include "kernel_iface/clock.h"
#include <errno.h>
#include <stdlib.h>
#include <time.h>

void sched_timers_init(struct worker *w)
{
    pthread_mutex_init(&w->tlock, NULL);
    atomic_store_explicit(&w->tfirst, INT64_MAX, memory_order_relaxed);
}

/* The heap (T5): 4-ary, entries {when, t} in one array, so the sifts compare within the array
 * and touch a timer (in its goroutine's frame, one cache line per stack) only to note its new
 * index. A binary heap of pointers made every comparison a miss into some goroutine's stack:
 * heap_remove was 25 % of B10's CPU with 100,000 timers (perf record -e cpu-clock). */
#define HEAP_D 4

static inline void heap_set(struct worker *w, unsigned i, struct theap_ent e)
{
    w->theap[i] = e;
    e.t->idx = (int)i;
}

static void sift_up(struct worker *w, unsigned i)
{
    struct theap_ent e = w->theap[i];
    while (i > 0) {
        unsigned p = (i - 1) / HEAP_D;
        if (w->theap[p].when <= e.when)
            break;
        heap_set(w, i, w->theap[p]);
        i = p;
    }
    heap_set(w, i, e);
}

static void sift_down(struct worker *w, unsigned i)
{
    struct theap_ent e = w->theap[i];
    for (;;) {
        unsigned c = HEAP_D * i + 1, best = c;
        if (c >= w->tn)
            break;
        unsigned last = c + HEAP_D < w->tn ? c + HEAP_D : w->tn;
        for (unsigned k = c + 1; k < last; k++)
            if (w->theap[k].when < w->theap[best].when)
                best = k;
        if (e.when <= w->theap[best].when)
            break;
        heap_set(w, i, w->theap[best]);
        i = best;
    }
    heap_set(w, i, e);
}

static void heap_remove(struct worker *w, unsigned i)
{
    struct timer *t = w->theap[i].t;
    t->idx = -1;
    w->tn--;
    if (i != w->tn) {
        struct timer *moved = w->theap[w->tn].t;
        heap_set(w, i, w->theap[w->tn]);
        sift_down(w, i);
        sift_up(w, (unsigned)moved->idx); /* it may also be earlier than its new parent */
    }
}

static void update_first(struct worker *w)
{
    atomic_store_explicit(&w->tfirst, w->tn ? w->theap[0].when : INT64_MAX,
                          memory_order_relaxed); /* peek hint; truth is under tlock */
}

void sched_timer_add(struct worker *w, struct timer *t)
{
    t->w = w;
    pthread_mutex_lock(&w->tlock);
    if (w->tn == w->tcap) {
        unsigned cap = w->tcap ? w->tcap * 2 : 64;
        struct theap_ent *h = realloc(w->theap, cap * sizeof *h);
        if (!h) {
            pthread_mutex_unlock(&w->tlock);
            sched_fatal("out of memory growing the timer heap");
        }
        w->theap = h;
        w->tcap = cap;
    }
    heap_set(w, w->tn, (struct theap_ent){ t->when, t });
    w->tn++;
    sift_up(w, (unsigned)t->idx);
    bool earliest = t->idx == 0;
    update_first(w);
    sched_dl_add(&sched.ntimers, 1); /* T2 */
    pthread_mutex_unlock(&w->tlock);
    if (earliest) {
        /* T4, step 2 of proc.c's recipe: the tfirst store above before wakep's reads of the
         * idle and spinning counts; pairs with a sleeper's step-c fence before it reads tfirst */
        sched_fence_seq_cst();
        sched_wakep();
    }
}

bool sched_timer_del(struct timer *t)
{
    struct worker *w = t->w;
    pthread_mutex_lock(&w->tlock);
    bool pending = t->idx >= 0;
    if (pending) {
        heap_remove(w, (unsigned)t->idx);
        update_first(w);
        sched_dl_add(&sched.ntimers, -1); /* T2 */
    }
    pthread_mutex_unlock(&w->tlock);
    return pending;
}

/* T7: t is heap[0], due; under w->tlock. */
static void fire_callback(struct worker *w, struct timer *t, int64_t now)
{
    int64_t next = t->fn(t, now);
    if (next >= 0) {
        /* a ticker: the next tick in place; it stays counted (T2) */
        t->when = next;
        w->theap[0].when = next; /* T5 */
        sift_down(w, 0);
        return;
    }
    heap_remove(w, 0);
    sched_dl_add(&sched.ntimers, -1); /* T2: after fn's ready */
}

int64_t sched_timers_run(struct worker *w, int64_t now)
{
    if (atomic_load_explicit(&w->tfirst, memory_order_relaxed) > now)
        return atomic_load_explicit(&w->tfirst, memory_order_relaxed);
    /* T6: at most what the ring we ready into has room for (sched_poll_budget); the rest
     * stay due in the heap, earliest first, for the next schedule */
    struct worker *me = sched_cur_worker();
    int budget = me ? sched_poll_budget(me) : INT32_MAX;
    pthread_mutex_lock(&w->tlock);
    while (w->tn && w->theap[0].when <= now && budget-- > 0) {
        struct timer *t = w->theap[0].t;
        if (unlikely(t->fn != NULL)) { /* T7: the one branch callback timers add here */
            fire_callback(w, t, now);
            continue;
        }
        heap_remove(w, 0);
        /* T3: decide and ready under tlock; whoever wins the claim owns the wake-up */
        if (!t->claim || sched_claim(t->claim, t->claim_val))
            sched_ready(t->g);
        sched_dl_add(&sched.ntimers, -1); /* T2: after the ready */
    }
    update_first(w);
    int64_t first = w->tn ? w->theap[0].when : INT64_MAX;
    pthread_mutex_unlock(&w->tlock);
    return first;
}

struct worker *sched_timer_home(void)
{
    struct worker *w = sched_cur_worker();
    if (w)
        return w;
    if (sched_start() != 0)
        return NULL;
    return sched.w[sched_fastrand() % sched.nprocs]; /* a regular worker: extra ones retire */
}

int ringo_sleep(int64_t ns)
{
    struct worker *w = sched_cur_worker();
    struct g *self = sched_cur_g(w);
    if (ns <= 0) {
        ringo_yield();
        return 0;
    }
    if (!self) {
        struct timespec ts = clk_to_ts(clk_now() + ns);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
        return 0;
    }
    int64_t deadline = clk_now() + ns;
    if (unlikely(self->grp != NULL)) {
        /* a group member sleeps on a claim, so that a cancel can end it (group.c) */
        if (sched_cur_canceled())
            return -ECANCELED;
        _Atomic uint32_t claim = 0;
        sched_park_prepare_until(self, WR_SLEEP, deadline);
        return sched_park(self, deadline, &claim, 1) == -ECANCELED ? -ECANCELED : 0;
    }
    sched_park_prepare_until(self, WR_SLEEP, deadline);
    sched_park(self, deadline, NULL, 0);
    return 0;
}
