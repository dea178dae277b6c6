/* sched/sync.c — mutex and wait group, for goroutines and plain threads in any mix.
 *
 * Responsibility: ringo_mutex_* and ringo_wg_*, built on the park protocol (park.c).
 *
 * Mutex. _r_state bits: M_LOCKED (held), M_WAITERS (the queue may be non-empty). The queue of
 * waiters (FIFO, records on the waiters' stacks) and M_WAITERS change only under _r_qlock, a
 * tiny spinlock (never held across a park; goroutines are not preempted, so holders are brief).
 *   lock:   CAS 0 -> LOCKED; else spin a little; else under qlock: set WAITERS, retry the
 *           acquire once (the holder may have left meanwhile), else enqueue and park.
 *   unlock: CAS LOCKED -> 0 succeeds only when WAITERS is clear. Otherwise, under qlock,
 *           dequeue the head and hand the lock to it directly (LOCKED stays set: no barging,
 *           no starvation); clear WAITERS when the queue empties.
 *   No lost wake-up: a locker sets WAITERS under qlock before its final acquire attempt; an
 *   unlocker whose CAS saw no WAITERS released the lock before that bit was set, so the final
 *   attempt succeeds; otherwise the unlocker takes qlock and finds the waiter queued.
 *   Ordering: acquire on every successful lock CAS, release on the unlock CAS; the handoff path
 *   publishes the previous holder's writes through qlock and the park protocol's acq_rel CAS.
 *
 * Wait group. _r_count is changed by atomic add; waiters queue under _r_qlock. The add that
 * brings the count to zero takes qlock afterwards and wakes every queued waiter; a waiter checks
 * the count under qlock before queueing, so either it sees zero or the adder sees it queued.
 *
 * Misuse (fatal, as in Go): unlock of an unlocked mutex; a negative wait group counter.
 * Depends on: sched (park protocol).
 */
#include "sched/sched.h"
#include <errno.h>
#include <immintrin.h>
#include <sched.h>

#define M_LOCKED  1u
#define M_WAITERS 2u

struct waiter {
    struct g *g;
    struct waiter *next;
};

#define A32(p) ((_Atomic uint32_t *)(void *)(p))
#define A64(p) ((_Atomic int64_t *)(void *)(p))

static void qlock(uint32_t *l)
{
    for (unsigned spins = 0;; spins++) {
        uint32_t z = 0;
        /* acquire: the queue as the previous holder left it */
        if (atomic_compare_exchange_weak_explicit(A32(l), &z, 1, memory_order_acquire, memory_order_relaxed))
            return;
        if (spins < 64)
            _mm_pause();
        else
            sched_yield(); /* the holder's thread was preempted */
    }
}

static void qunlock(uint32_t *l)
{
    atomic_store_explicit(A32(l), 0, memory_order_release); /* publishes the queue */
}

static bool mutex_try(struct ringo_mutex *m)
{
    uint32_t s = atomic_load_explicit(A32(&m->_r_state), memory_order_relaxed);
    while (!(s & M_LOCKED))
        /* acquire: the previous holder's critical section */
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
    if (likely(atomic_compare_exchange_strong_explicit(A32(&m->_r_state), &z, M_LOCKED, memory_order_acquire,
                                                       memory_order_relaxed)))
        return;
    for (int i = 0; i < 100; i++) {
        _mm_pause();
        if (mutex_try(m))
            return;
    }
    struct g *self = sched_self();
    struct waiter me = { .g = self, .next = NULL };
    qlock(&m->_r_qlock);
    atomic_fetch_or_explicit(A32(&m->_r_state), M_WAITERS, memory_order_relaxed); /* under qlock */
    if (mutex_try(m)) {
        if (!m->_r_head)
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
    qunlock(&m->_r_qlock);
    sched_park(self, -1, NULL, 0);
    /* the unlocker handed us the lock (LOCKED stayed set); its writes reach us through the park
     * protocol's acq_rel CAS */
}

void ringo_mutex_unlock(struct ringo_mutex *m)
{
    uint32_t s = M_LOCKED;
    /* release: our critical section to the next holder */
    if (likely(atomic_compare_exchange_strong_explicit(A32(&m->_r_state), &s, 0, memory_order_release,
                                                       memory_order_relaxed)))
        return;
    if (!(s & M_LOCKED))
        sched_fatal("sync: unlock of unlocked mutex");
    qlock(&m->_r_qlock);
    struct waiter *w = m->_r_head;
    if (!w) {
        /* WAITERS was set by a locker that then acquired on its retry: nobody queued */
        atomic_fetch_and_explicit(A32(&m->_r_state), ~(M_LOCKED | M_WAITERS), memory_order_release);
        qunlock(&m->_r_qlock);
        return;
    }
    m->_r_head = w->next;
    if (!w->next) {
        m->_r_tail = NULL;
        atomic_fetch_and_explicit(A32(&m->_r_state), ~M_WAITERS, memory_order_relaxed); /* under qlock */
    }
    struct g *g = w->g; /* w lives on the waiter's stack: read before readying it */
    qunlock(&m->_r_qlock);
    sched_ready(g);     /* handoff: LOCKED stays set, g owns the mutex now */
}

void ringo_wg_add(struct ringo_waitgroup *wg, int64_t delta)
{
    /* acq_rel: the adder's prior writes happen before a waiter's return (release), and a zero
     * count seen here covers every done() before it (acquire) */
    int64_t v = atomic_fetch_add_explicit(A64(&wg->_r_count), delta, memory_order_acq_rel) + delta;
    if (v < 0)
        sched_fatal("sync: negative WaitGroup counter");
    if (v != 0 || delta == 0)
        return;
    qlock(&wg->_r_qlock);
    struct waiter *list = wg->_r_head;
    wg->_r_head = NULL;
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
    /* acquire: pairs with the acq_rel add that reached zero */
    if (atomic_load_explicit(A64(&wg->_r_count), memory_order_acquire) == 0)
        return;
    struct g *self = sched_self();
    struct waiter me = { .g = self, .next = NULL };
    qlock(&wg->_r_qlock);
    if (atomic_load_explicit(A64(&wg->_r_count), memory_order_acquire) == 0) {
        qunlock(&wg->_r_qlock);
        return;
    }
    me.next = wg->_r_head;
    wg->_r_head = &me;
    sched_park_prepare(self, WR_WAITGROUP);
    qunlock(&wg->_r_qlock);
    sched_park(self, -1, NULL, 0);
}
