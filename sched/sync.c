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
 * Wait group. _r_count packs the counter (high 32 bits, signed) and the number of waiters
 * (low 32 bits) into one word, as Go's WaitGroup does, so the Add that brings the counter to
 * zero learns in the same atomic step whether anyone waits: if nobody does, it touches the wait
 * group no more (the last Done may race with the waiter returning and freeing it). If some do,
 * it resets the word and, under _r_qlock, readies the queued waiters and leaves a permit for
 * each one that has counted itself but not queued yet; a waiter that finds a permit under
 * _r_qlock consumes it instead of parking. Waiters cannot return before that, so the adder's
 * accesses end before the wait group can go away. Permits carry no round: a released waiter
 * checks that the word is still 0 before it returns, so one that took a permit left for an
 * earlier round's waiter dies instead of returning early.
 *
 * Misuse (fatal, with Go's messages): unlock of an unlocked mutex; a negative wait group
 * counter; an Add from zero while the last Done has not yet released the waiters ("Add called
 * concurrently with Wait"); an Add of a new round before every Wait of the previous one has
 * returned ("WaitGroup is reused before previous Wait has returned").
 * Depends on: sched (park protocol).
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
    for (int i = 0; i < M_SPINS; i++) {
        cpu_relax();
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
    for (;;) {
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
            /* WAITERS was set by a locker that then acquired on its retry: nobody queued. Clear
             * the bit but keep LOCKED: the mutex is still ours, so nobody may free it while we
             * drop qlock; then release it by the fast path. */
            atomic_fetch_and_explicit(A32(&m->_r_state), ~M_WAITERS, memory_order_relaxed); /* under qlock */
            qunlock(&m->_r_qlock);
            continue;
        }
        m->_r_head = w->next;
        if (!w->next) {
            m->_r_tail = NULL;
            atomic_fetch_and_explicit(A32(&m->_r_state), ~M_WAITERS, memory_order_relaxed); /* under qlock */
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
        /* acquire: pairs with the acq_rel add that reached zero */
        int64_t st = atomic_load_explicit(A64(&wg->_r_count), memory_order_acquire);
        if (WG_V(st) == 0)
            return;
        /* count ourselves as a waiter in the same word the adder inspects */
        if (atomic_compare_exchange_weak_explicit(A64(&wg->_r_count), &st, st + 1, memory_order_acq_rel,
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
        qunlock(&wg->_r_qlock);
        sched_park(self, -1, NULL, 0);
    }
    /* Released: the adder that reset the word to 0 happened before this point, so we read that 0
     * or a later value. Later means a new round began before this Wait returned; and the permit
     * we took may have been one an earlier round left for a waiter still on its way (that is
     * the reuse), so returning could end a Wait of this round early. Go's check and message. */
    if (atomic_load_explicit(A64(&wg->_r_count), memory_order_relaxed) != 0)
        sched_fatal("sync: WaitGroup is reused before previous Wait has returned");
}
