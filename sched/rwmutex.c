/* sched/rwmutex.c — reader/writer mutex (Go's sync.RWMutex), for goroutines and plain threads.
 *
 * Responsibility: ringo_rwmutex_*. Writer-preferring as Go's: once a writer is waiting, new
 * readers wait for it, so a stream of readers cannot starve writers, and the readers that came
 * during a writer's turn all go in when it unlocks, so writers cannot starve readers either.
 * The object is the caller's memory (zeroed = unlocked); waiter records live on the waiters'
 * stacks.
 *
 * Shape (Go's rwmutex.go). _r_w is a ringo_mutex that writers hold from lock to unlock, so
 * there is at most one writer past it. _r_readers counts readers that hold or want the lock;
 * a writer subtracts RW_MAX from it, so it is negative exactly while a writer is pending or
 * active, and a reader that makes it negative waits. _r_departing counts the readers the
 * pending writer still waits for. Two counting semaphores, both under _r_qlock: reader permits
 * (_r_rperm, waiters _r_rq) and writer permits (_r_wperm, waiter _r_wq).
 *   rlock:   _r_readers += 1; negative: acquire a reader permit.
 *   runlock: _r_readers -= 1; negative (a writer is pending): _r_departing -= 1, and the reader
 *            that brings it to 0 releases the writer permit.
 *   lock:    lock _r_w; r = (_r_readers -= RW_MAX) + RW_MAX, the readers inside; if r != 0 and
 *            (_r_departing += r) != 0, acquire the writer permit.
 *   unlock:  r = (_r_readers += RW_MAX), the readers that arrived meanwhile; release r reader
 *            permits; unlock _r_w.
 * Invariants.
 *   RW1 Exclusion: a writer passes lock only once as many readers have left as were inside when
 *       it subtracted RW_MAX (the departures are anonymous: which reader leaves does not
 *       matter, only how many). Readers arriving after that subtraction wait for a permit, and
 *       permits come only from unlock, one per such reader.
 *   RW2 No lost wake-up: a semaphore release that finds no waiter leaves a permit (under
 *       _r_qlock), and an acquirer takes a permit before it queues (under _r_qlock); a release
 *       that finds a waiter hands the permit to it directly (it is readied and owns it).
 *   RW3 At most one writer waits on the writer semaphore (it holds _r_w), so _r_departing
 *       belongs to it; it reaches 0 exactly once per writer turn that found readers inside.
 *   RW4 Misuse (fatal, Go's checks and words): a runlock that finds _r_readers was 0 or -RW_MAX
 *       (no reader inside); an unlock that finds no writer (_r_readers was not below 0). Up to
 *       RW_MAX - 1 readers at a time.
 * Ordering. rlock's add is acquire: it pairs with the release add of the unlock that ended the
 * last writer turn (a reader that waited gets that through _r_qlock or the park protocol).
 * runlock's sub is release: a writer's acq_rel subtraction later in that word's modification
 * order acquires it (a release sequence of RMWs); a reader leaving during a pending writer's
 * wait hands over through the acq_rel RMWs on _r_departing, then _r_qlock and the park
 * protocol. Writer-to-writer order is _r_w's.
 *
 * Depends on: sync.c (ringo_mutex), sched.h (park protocol, sched_fatal), spinlock.h.
 */
#include "sched/sched.h"
#include "sched/spinlock.h"
#include <errno.h>

#define RW_MAX (1 << 30) /* most readers at a time, plus one (Go's rwmutexMaxReaders) */

#define A32(p) ((_Atomic uint32_t *)(void *)(p))
#define AI32(p) ((_Atomic int32_t *)(void *)(p))

_Static_assert(sizeof(struct ringo_rwmutex) == sizeof(struct ringo_mutex) + 24 + 2 * sizeof(void *),
               "struct ringo_rwmutex layout");

struct rwaiter {
    struct g *g;
    struct rwaiter *next;
};

/* Take one permit of the semaphore (*perm, waiters *q), waiting for it if there is none (RW2). */
static void sema_acquire(struct ringo_rwmutex *rw, uint32_t *perm, void **q, int reason)
{
    struct g *self = sched_self();
    struct rwaiter me = { .g = self, .next = NULL };
    spin_lock(A32(&rw->_r_qlock));
    if (*perm) {
        (*perm)--;
        spin_unlock(A32(&rw->_r_qlock));
        return;
    }
    me.next = *q; /* LIFO: every waiting reader goes in together at the writer's unlock */
    *q = &me;
    sched_park_prepare(self, reason);
    atomic_store_explicit(&self->park_obj, rw, memory_order_relaxed); /* proc.c F7: a hint */
    spin_unlock(A32(&rw->_r_qlock));
    sched_park(self, -1, NULL, 0);
    /* the releaser handed us the permit (RW2) */
}

/* Release n permits: hand them to waiters, keep the rest (RW2). */
static void sema_release(struct ringo_rwmutex *rw, uint32_t *perm, void **q, uint32_t n)
{
    struct rwaiter *list = NULL;
    spin_lock(A32(&rw->_r_qlock));
    while (n && *q) {
        struct rwaiter *w = *q;
        *q = w->next;
        w->next = list;
        list = w;
        n--;
    }
    *perm += n;
    spin_unlock(A32(&rw->_r_qlock));
    while (list) {
        struct rwaiter *next = list->next; /* read before readying: the record is on its stack */
        sched_ready(list->g);
        list = next;
    }
}

void ringo_rwmutex_rlock(struct ringo_rwmutex *rw)
{
    /* acquire: the last writer's critical section (its unlock's release add) */
    if (unlikely(atomic_fetch_add_explicit(AI32(&rw->_r_readers), 1, memory_order_acquire) + 1 < 0))
        sema_acquire(rw, &rw->_r_rperm, &rw->_r_rq, WR_RWMUTEX_R); /* a writer is pending (RW1) */
}

int ringo_rwmutex_tryrlock(struct ringo_rwmutex *rw)
{
    if (!rw)
        return -EINVAL;
    /* relaxed: a peek; the CAS is what acquires */
    int32_t c = atomic_load_explicit(AI32(&rw->_r_readers), memory_order_relaxed);
    while (c >= 0)
        /* acquire: as rlock; failure relaxed: c is only re-tested */
        if (atomic_compare_exchange_weak_explicit(AI32(&rw->_r_readers), &c, c + 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return 0;
    return -EBUSY; /* a writer is pending or active: we would wait */
}

void ringo_rwmutex_runlock(struct ringo_rwmutex *rw)
{
    /* release: our reads come before the next writer's critical section */
    int32_t r = atomic_fetch_sub_explicit(AI32(&rw->_r_readers), 1, memory_order_release) - 1;
    if (likely(r >= 0))
        return;
    if (r + 1 == 0 || r + 1 == -RW_MAX)
        sched_fatal("sync: RUnlock of unlocked RWMutex"); /* RW4 */
    /* a writer is pending: we are one of the readers it waits for (RW3). acq_rel: the last
     * departure carries every earlier one (and the writer's add) to the writer */
    if (atomic_fetch_sub_explicit(AI32(&rw->_r_departing), 1, memory_order_acq_rel) - 1 == 0)
        sema_release(rw, &rw->_r_wperm, &rw->_r_wq, 1);
}

void ringo_rwmutex_lock(struct ringo_rwmutex *rw)
{
    ringo_mutex_lock(&rw->_r_w); /* no other writer past this point */
    /* acq_rel: announce ourselves to readers (release, for the RW4 checks' consistency) and
     * acquire every reader that left before (their release subs, an RMW chain) */
    int32_t r = atomic_fetch_sub_explicit(AI32(&rw->_r_readers), RW_MAX, memory_order_acq_rel);
    /* acq_rel: if the readers inside have all left already, acquire their departures */
    if (r != 0 && atomic_fetch_add_explicit(AI32(&rw->_r_departing), r, memory_order_acq_rel) + r != 0)
        sema_acquire(rw, &rw->_r_wperm, &rw->_r_wq, WR_RWMUTEX_W); /* the last to leave wakes us */
}

int ringo_rwmutex_trylock(struct ringo_rwmutex *rw)
{
    if (!rw)
        return -EINVAL;
    if (ringo_mutex_trylock(&rw->_r_w) != 0)
        return -EBUSY;
    int32_t z = 0;
    /* acquire: the readers that left before (as lock); failure relaxed: we give up */
    if (!atomic_compare_exchange_strong_explicit(AI32(&rw->_r_readers), &z, -RW_MAX, memory_order_acq_rel,
                                                 memory_order_relaxed)) {
        ringo_mutex_unlock(&rw->_r_w);
        return -EBUSY; /* readers inside */
    }
    return 0;
}

void ringo_rwmutex_unlock(struct ringo_rwmutex *rw)
{
    /* release: our critical section to the readers that see the count non-negative */
    int32_t r = atomic_fetch_add_explicit(AI32(&rw->_r_readers), RW_MAX, memory_order_release) + RW_MAX;
    if (r >= RW_MAX)
        sched_fatal("sync: Unlock of unlocked RWMutex"); /* RW4 */
    if (r > 0)
        sema_release(rw, &rw->_r_rperm, &rw->_r_rq, (uint32_t)r); /* the readers that came meanwhile */
    ringo_mutex_unlock(&rw->_r_w);
}
