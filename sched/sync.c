/* sched/sync.c — mutex and wait group, for goroutines and plain threads in any mix.
 *
 * Responsibility: ringo_mutex_*, ringo_wg_* and ringo_once, built on the park protocol (park.c). Every
 * object is the caller's memory (public layout, private fields; zeroed = unlocked / zero);
 * waiter records live on the waiters' stacks, so nothing is allocated.
 *
 * Mutex. _r_state bits: M_LOCKED (held), M_WAITERS (the queue may be non-empty). The queue of
 * waiters (FIFO) is _r_head/_r_tail; _r_qlock is the spinlock of spinlock.h (never held across a
 * park; goroutines are not preempted, so holders are brief).
 *   lock:   CAS 0 -> LOCKED; else spin M_SPINS tries; else under qlock: set WAITERS, retry the
 *           acquire once (the holder may have left meanwhile), else enqueue and park.
 *   unlock: CAS LOCKED -> 0 succeeds only when WAITERS is clear. Otherwise, under qlock,
 *           dequeue the head and hand the lock to it directly; clear WAITERS when the queue
 *           empties.
 *   M1  The queue, and every change of M_WAITERS, happen under _r_qlock.
 *   M2  A queued waiter is behind M_WAITERS: while the queue is non-empty WAITERS is set, so
 *       the unlock fast path fails and the unlocker takes qlock.
 *   M3  Handoff: an unlocker that dequeues a waiter leaves LOCKED set; the waiter owns the
 *       mutex when readied (no barging, no starvation).
 *   M4  No lost wake-up: a locker sets WAITERS before its final acquire attempt, both on the one
 *       word _r_state; an unlocker whose CAS saw no WAITERS is earlier in that word's
 *       modification order, so the final attempt sees the lock free; otherwise the unlocker
 *       takes qlock and finds the waiter queued.
 *   Ordering: acquire on every successful lock CAS, release on the unlock CAS; the handoff
 *   publishes the previous holder's writes through qlock and the park protocol's acq_rel CAS.
 *   The M_WAITERS changes are relaxed: M1 orders them, M4 is a single-word argument.
 *
 * Wait group. _r_count packs the counter (high 32 bits, signed) and the number of counted
 * waiters (low 32 bits) into one word, as Go's WaitGroup does, so the Add that brings the
 * counter to zero learns in the same atomic step whether anyone waits. _r_head is the queue
 * (LIFO) and _r_permits the permits, both under _r_qlock.
 *   W1  A waiter counts itself (CAS) only while the counter is non-zero; at zero it returns.
 *   W2  The Add that reaches zero with no waiters touches the wait group no more (the waiter
 *       may return and free it). With waiters, it resets the word to 0 by a CAS from the value
 *       it produced (else a racing Add was misuse: fatal), and under _r_qlock takes the queue
 *       and leaves a permit for each counted waiter not queued yet; then readies the queue.
 *       Waiters cannot return before that, so its accesses end before the wait group goes.
 *   W3  A counted waiter under _r_qlock consumes a permit if there is one, else queues and
 *       parks; each counted waiter is released exactly once, by a permit or a ready.
 *   W4  A released waiter returns only if the word still reads 0 (the reset of W2 happened
 *       before): permits carry no round, so a permit left for an earlier round's waiter that
 *       has not taken it yet could otherwise end a later round's Wait early (issue 11).
 *   Ordering: Adds are acq_rel RMWs on one word (a release sequence): the Add that reaches zero
 *   acquires every earlier Done; a Wait that reads the counter at zero acquires, pairing with
 *   that Add or with its release reset; a released waiter gets it through _r_qlock or the park
 *   protocol.
 *
 * Misuse (fatal, with Go's messages): unlock of an unlocked mutex; a negative wait group
 * counter; an Add from zero while the last Done has not yet released the waiters ("Add called
 * concurrently with Wait"); an Add of a new round before every Wait of the previous one has
 * returned ("WaitGroup is reused before previous Wait has returned").
 *
 * Depends on: sched.h (park protocol: sched_self, sched_park_prepare, sched_park, sched_ready;
 * sched_fatal), spinlock.h (spin_lock/spin_unlock, cpu_relax), ringo.h (the public layouts).
 */
#include "sched/sched.h"
#include "sched/spinlock.h"
#include <errno.h>

#define M_LOCKED  1u
#define M_WAITERS 2u
#define M_SPINS   100 /* tries of a contended lock before it queues (about 2 us of cpu_relax) */

struct waiter {
    struct g *g;
    struct waiter *next;
};

#define A32(p) ((_Atomic uint32_t *)(void *)(p))
#define A64(p) ((_Atomic int64_t *)(void *)(p))

/* The wait-queue lock of a mutex or a wait group: spinlock.h's (S1/S2), on the public field. */
static void qlock(uint32_t *l) { spin_lock(A32(l)); }
static void qunlock(uint32_t *l) { spin_unlock(A32(l)); }

static bool mutex_try(struct ringo_mutex *m)
{
    /* relaxed: a peek; the CAS is what acquires */
    uint32_t s = atomic_load_explicit(A32(&m->_r_state), memory_order_relaxed);
    while (!(s & M_LOCKED))
        /* acquire: the previous holder's critical section; failure relaxed: s is only re-tested */
        if (atomic_compare_exchange_weak_explicit(A32(&m->_r_state), &s, s | M_LOCKED, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
}

int ringo_mutex_trylock(struct ringo_mutex *m)
{
    return mutex_try(m) ? 0 : -EBUSY;
}

void ringo_mutex_lock(struct ringo_mutex *m)
{
    uint32_t z = 0;
    /* acquire: the previous holder's critical section; failure relaxed: we spin and retry */
    if (likely(atomic_compare_exchange_strong_explicit(A32(&m->_r_state), &z, M_LOCKED, memory_order_acquire,
                                                       memory_order_relaxed)))
        return;
    for (int i = 0; i < M_SPINS; i++) {
        cpu_relax();
        if (mutex_try(m))
            return;
    }
    struct g *self = sched_self();
    struct waiter me = { .g = self, .next = NULL };
    qlock(&m->_r_qlock);
    /* relaxed: under qlock (M1), and M4 rests on this one word's modification order only */
    atomic_fetch_or_explicit(A32(&m->_r_state), M_WAITERS, memory_order_relaxed);
    if (mutex_try(m)) {
        if (!m->_r_head) /* relaxed: under qlock (M1); we hold the mutex, nobody else clears */
            atomic_fetch_and_explicit(A32(&m->_r_state), ~M_WAITERS, memory_order_relaxed);
        qunlock(&m->_r_qlock);
        return;
    }
    if (m->_r_tail)
        ((struct waiter *)m->_r_tail)->next = &me;
    else
        m->_r_head = &me;
    m->_r_tail = &me;
    sched_park_prepare(self, WR_MUTEX);
    atomic_store_explicit(&self->park_obj, m, memory_order_relaxed); /* proc.c F7: a hint */
    qunlock(&m->_r_qlock);
    sched_park(self, -1, NULL, 0);
    /* the unlocker handed us the lock (LOCKED stayed set); its writes reach us through the park
     * protocol's acq_rel CAS */
}

void ringo_mutex_unlock(struct ringo_mutex *m)
{
    for (;;) {
        uint32_t s = M_LOCKED;
        /* release: our critical section to the next holder; failure relaxed: s is only tested,
         * the slow path's order comes from qlock */
        if (likely(atomic_compare_exchange_strong_explicit(A32(&m->_r_state), &s, 0, memory_order_release,
                                                           memory_order_relaxed)))
            return;
        if (!(s & M_LOCKED))
            sched_fatal("sync: unlock of unlocked mutex");
        qlock(&m->_r_qlock);
        struct waiter *w = m->_r_head;
        if (!w) {
            /* WAITERS was set by a locker that then acquired on its retry: nobody queued. Clear
             * the bit but keep LOCKED: the mutex is still ours, so nobody may free it while we
             * drop qlock; then release it by the fast path. */
            atomic_fetch_and_explicit(A32(&m->_r_state), ~M_WAITERS, memory_order_relaxed); /* relaxed: M1 */
            qunlock(&m->_r_qlock);
            continue;
        }
        m->_r_head = w->next;
        if (!w->next) {
            m->_r_tail = NULL;
            atomic_fetch_and_explicit(A32(&m->_r_state), ~M_WAITERS, memory_order_relaxed); /* relaxed: M1 */
        }
        struct g *g = w->g; /* w lives on the waiter's stack: read before readying it */
        qunlock(&m->_r_qlock);
        sched_ready(g);     /* handoff: LOCKED stays set, g owns the mutex now */
        return;
    }
}

/* Test hook (tests/test_sync.c): called by a waiter right after it counted itself, before it
 * takes _r_qlock, so a test can hold it exactly there. NULL outside that test. */
void (*sched_test_hook_wg_counted)(struct ringo_waitgroup *wg);

/* _r_permits was named _r_pad: the public layout (ABI) must not move */
_Static_assert(offsetof(struct ringo_waitgroup, _r_permits) == 12 &&
                   sizeof(struct ringo_waitgroup) == 16 + sizeof(void *),
               "struct ringo_waitgroup layout");

#define WG_V(x) ((int32_t)((uint64_t)(x) >> 32))  /* counter */
#define WG_W(x) ((uint32_t)(x))                   /* waiters */

void ringo_wg_add(struct ringo_waitgroup *wg, int64_t delta)
{
    if (delta > INT32_MAX || delta < INT32_MIN)
        sched_fatal("sync: WaitGroup delta out of range");
    /* acq_rel: our prior writes happen before a waiter's return (release), and reaching zero
     * we see every Done before us (acquire) */
    uint64_t st = (uint64_t)atomic_fetch_add_explicit(A64(&wg->_r_count), (int64_t)((uint64_t)delta << 32),
                                                      memory_order_acq_rel) + ((uint64_t)delta << 32);
    int32_t v = WG_V(st);
    uint32_t w = WG_W(st);
    if (v < 0)
        sched_fatal("sync: negative WaitGroup counter");
    /* the counter left zero while waiters are counted: the last Done has not reset the word
     * yet, so this Add races with the end of a Wait (Go's check) */
    if (w != 0 && delta > 0 && v == (int32_t)delta)
        sched_fatal("sync: WaitGroup misuse: Add called concurrently with Wait");
    if (v > 0 || w == 0)
        return; /* not zero, or nobody waits: do not touch wg again */
    /* v == 0 with w waiters: they cannot return until we release them, so wg is alive. No waiter
     * counts itself now (it sees v == 0): the word changes only by a misused Add, which the CAS
     * catches instead of wiping that Add and the waiters it let in */
    qlock(&wg->_r_qlock);
    int64_t exp = (int64_t)st;
    /* release (W2): a Wait that reads this 0 acquires every Done through us; failure relaxed:
     * fatal */
    if (!atomic_compare_exchange_strong_explicit(A64(&wg->_r_count), &exp, 0, memory_order_release,
                                                 memory_order_relaxed))
        sched_fatal("sync: WaitGroup misuse: Add called concurrently with Wait");
    struct waiter *list = wg->_r_head;
    wg->_r_head = NULL;
    uint32_t queued = 0;
    for (struct waiter *x = list; x; x = x->next)
        queued++;
    wg->_r_permits += w - queued; /* permits for those counted but not queued yet */
    qunlock(&wg->_r_qlock);
    while (list) {
        struct waiter *next = list->next; /* read before readying: the record is on its stack */
        sched_ready(list->g);
        list = next;
    }
}

void ringo_wg_done(struct ringo_waitgroup *wg)
{
    ringo_wg_add(wg, -1);
}

void ringo_wg_wait(struct ringo_waitgroup *wg)
{
    for (;;) {
        /* acquire: pairs with the Add that reached zero (the Adds' release sequence) or with its
         * release reset (W2) */
        int64_t st = atomic_load_explicit(A64(&wg->_r_count), memory_order_acquire);
        if (WG_V(st) == 0)
            return;
        /* count ourselves as a waiter in the same word the adder inspects (W1). relaxed: this
         * publishes nothing, and what the releasing adder wrote reaches us through _r_qlock or
         * the park protocol (W3); it stays in the Adds' release sequence, being an RMW. Failure
         * relaxed: we load again */
        if (atomic_compare_exchange_weak_explicit(A64(&wg->_r_count), &st, st + 1, memory_order_relaxed,
                                                  memory_order_relaxed))
            break;
    }
    if (unlikely(sched_test_hook_wg_counted))
        sched_test_hook_wg_counted(wg);
    struct g *self = sched_self();
    struct waiter me = { .g = self, .next = NULL };
    qlock(&wg->_r_qlock);
    if (wg->_r_permits) {
        wg->_r_permits--; /* the adder already released us */
        qunlock(&wg->_r_qlock);
    } else {
        me.next = wg->_r_head;
        wg->_r_head = &me;
        sched_park_prepare(self, WR_WAITGROUP);
        atomic_store_explicit(&self->park_obj, wg, memory_order_relaxed); /* proc.c F7: a hint */
        qunlock(&wg->_r_qlock);
        sched_park(self, -1, NULL, 0);
    }
    /* W4. relaxed: coherence is enough; the adder that reset the word to 0 happened before this
     * point, so we read that 0 or a later value. Later means a new round began before this Wait
     * returned; and the permit we took may have been one an earlier round left for a waiter
     * still on its way (that is the reuse), so returning could end a Wait of this round early.
     * Go's check and message. */
    if (atomic_load_explicit(A64(&wg->_r_count), memory_order_relaxed) != 0)
        sched_fatal("sync: WaitGroup is reused before previous Wait has returned");
}

/* Once (issue 14; Go's sync.Once). _r_done goes 0 -> 1 (running, under _r_m) -> 2 (done):
 *   O1  fn runs at most once: only a holder of _r_m that read 0 under it runs fn.
 *   O2  every caller returns after fn returned, and sees its writes: the fast path's acquire
 *       load of 2 pairs with the release store of 2 after fn; a slow caller takes _r_m, which
 *       the runner holds until after that store.
 * The states other than 2 are read under _r_m only (relaxed). */
int ringo_once(struct ringo_once *o, void (*fn)(void *arg), void *arg)
{
    if (!o || !fn)
        return -EINVAL;
    if (likely(atomic_load_explicit(A32(&o->_r_done), memory_order_acquire) == 2)) /* O2 */
        return 0;
    ringo_mutex_lock(&o->_r_m);
    int ran = 0;
    if (atomic_load_explicit(A32(&o->_r_done), memory_order_relaxed) == 0) { /* under _r_m: O1 */
        atomic_store_explicit(A32(&o->_r_done), 1, memory_order_relaxed);
        fn(arg);
        atomic_store_explicit(A32(&o->_r_done), 2, memory_order_release); /* O2 */
        ran = 1;
    }
    ringo_mutex_unlock(&o->_r_m);
    return ran;
}
