/* sched/cond.c — condition variable (Go's sync.Cond), with a deadline, for goroutines and threads.
 *
 * Responsibility: ringo_cond_*. The object is the caller's memory (zeroed = no waiters); the
 * waiters' records live on their stacks (waitq.h), queued FIFO, so signal wakes the longest
 * waiter. Each waiter parks on its own claim word (the park protocol's deadline rule), which
 * the signaller, the deadline, and any other end sched_park may give a claim-park compete for.
 *
 * Shape.
 *   wait:      queue our record (under _r_qlock) while still holding the mutex; unlock the
 *              mutex; under _r_qlock, if our claim is still 0, mark the record prepared and
 *              park, else a signal already took us. Then lock the mutex again (always; that
 *              lock cannot be cancelled) and return 0 (signalled) or what the park returned.
 *   signal:    under _r_qlock, unlink waiters from the front until one's claim is won (Q2);
 *              ready it after qunlock if it had parked (prepared), else it sees its claim.
 *   broadcast: the same for every queued waiter.
 * Invariants.
 *   C1  No lost wake-up: a waiter is queued before it unlocks the mutex, so a signal or
 *       broadcast that comes after the unlock (in particular by a holder of the mutex after the
 *       waiter's unlock) finds it, unless its claim was already won otherwise.
 *   C2  Only a signaller can win a claim before the waiter parks: the deadline is armed inside
 *       sched_park. So a claim seen set before the park is a signal (WQ_HANDED).
 *   C3  A signal is never spent on a waiter that has already left: a waiter whose deadline won
 *       loses nothing and takes nothing (Q3), and the signaller that finds its claim taken skips
 *       to the next waiter (Q2). Each signal ends at most one wait; broadcast ends every wait
 *       queued when it took _r_qlock.
 *   C4  There are no spurious wake-ups: a wait that returns 0 was ended by a signal or broadcast
 *       that came after the wait queued itself.
 * Ordering: what the signaller wrote before signalling reaches the waiter through the claim
 * CAS (acq_rel), _r_qlock and the park protocol; the user's data is ordered by the mutex,
 * which the waiter holds again before it returns.
 *
 * Depends on: waitq.h (the queue, Q1-Q4), sync.c (ringo_mutex), sched.h (park protocol).
 */
#include "sched/sched.h"
#include "sched/waitq.h"
#include <errno.h>

void (*sched_test_hook_wait_ended)(void *obj);

_Static_assert(sizeof(struct ringo_cond) == 8 + 2 * sizeof(void *), "struct ringo_cond layout");

int ringo_cond_wait_until(struct ringo_cond *c, struct ringo_mutex *m, int64_t deadline)
{
    if (!c || !m)
        return -EINVAL;
    if (unlikely(sched_cur_canceled()))
        return -ECANCELED; /* group.c: a cancelled member's later call; the mutex stays held */
    struct g *self = sched_self();
    struct wq_rec me = { .g = self };
    wq_lock(&c->_r_qlock);
    wq_push_back(&c->_r_head, &c->_r_tail, &me); /* C1: before the mutex goes */
    wq_unlock(&c->_r_qlock);
    ringo_mutex_unlock(m);
    int r = 0;
    wq_lock(&c->_r_qlock);
    /* relaxed: under _r_qlock, where a signaller wins it (Q2); its writes come with the lock */
    if (atomic_load_explicit(&me.claim, memory_order_relaxed) == 0) {
        me.prepared = true; /* Q4: a signaller that wins us from now on readies us */
        sched_park_prepare_until(self, WR_COND, deadline);
        atomic_store_explicit(&self->park_obj, c, memory_order_relaxed); /* proc.c F7: a hint */
        wq_unlock(&c->_r_qlock);
        r = sched_park(self, deadline, &me.claim, WQ_DEADLINE);
        if (r != 0) { /* Q3: not signalled; leave the queue if no signaller unlinked us */
            if (unlikely(sched_test_hook_wait_ended))
                sched_test_hook_wait_ended(c);
            wq_lock(&c->_r_qlock);
            if (me.linked)
                wq_unlink(&c->_r_head, &c->_r_tail, &me);
            wq_unlock(&c->_r_qlock);
        }
    } else {
        wq_unlock(&c->_r_qlock); /* C2: signalled before we parked; the signaller unlinked us */
    }
    ringo_mutex_lock(m); /* uncancellable: the caller always gets the mutex back */
    return r;
}

int ringo_cond_wait(struct ringo_cond *c, struct ringo_mutex *m)
{
    /* a claim-park even without a deadline: the wait can be ended by whatever else sched_park
     * learns to end claim-parks with, and returns that */
    return ringo_cond_wait_until(c, m, -1);
}

/* Unlink and claim waiters from the front until `all` is false and one is won; the won ones
 * that parked go on the returned list (Q4). Under _r_qlock. */
static struct wq_rec *take(struct ringo_cond *c, bool all)
{
    struct wq_rec *list = NULL, **tail = &list;
    struct wq_rec *w;
    while ((w = wq_first(&c->_r_head))) {
        wq_unlink(&c->_r_head, &c->_r_tail, w);
        if (!sched_claim(&w->claim, WQ_HANDED))
            continue; /* its park ended otherwise (C3): it leaves by itself */
        if (w->prepared) { /* else it sees the claim under _r_qlock and does not park (C2) */
            w->wnext = NULL;
            *tail = w; /* FIFO: the longest waiter is readied first */
            tail = &w->wnext;
        }
        if (!all)
            break;
    }
    return list;
}

/* No unlocked peek at the queue (Go's fast path): the queue's fields are plain, written under
 * _r_qlock, and a signaller that holds no mutex would race with them. */
void ringo_cond_signal(struct ringo_cond *c)
{
    wq_lock(&c->_r_qlock);
    struct wq_rec *list = take(c, false);
    wq_unlock(&c->_r_qlock);
    wq_ready_list(list);
}

void ringo_cond_broadcast(struct ringo_cond *c)
{
    wq_lock(&c->_r_qlock);
    struct wq_rec *list = take(c, true);
    wq_unlock(&c->_r_qlock);
    wq_ready_list(list);
}
