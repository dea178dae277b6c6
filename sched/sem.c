/* sched/sem.c — weighted semaphore (golang.org/x/sync/semaphore), for goroutines and threads.
 *
 * Responsibility: ringo_sem_*. A semaphore of _r_size tokens, _r_cur of them held; acquire
 * takes n at once or waits, FIFO: a waiter that does not fit blocks every later one, even
 * smaller ones that would fit (no starvation of big waiters), as x/sync's. The object is the
 * caller's memory (zeroed = a semaphore of size 0); the waiters' records live on their stacks
 * (waitq.h), each parked on its own claim word, which a releaser handing it its tokens and
 * the deadline (and any other end sched_park may give a claim-park) compete for.
 *
 * Invariants.
 *   E1  Everything but the claim words is under _r_qlock (Q1); 0 <= _r_cur <= _r_size.
 *   E2  FIFO: acquire takes tokens at once only when they fit and nobody is queued; notify
 *       hands tokens to waiters from the front only, stopping at the first that does not fit.
 *   E3  Tokens go to a waiter only with its claim (Q2): the notifier adds them to _r_cur and
 *       unlinks the waiter in the critical section where it won the claim; a waiter whose park
 *       returned non-zero holds nothing (Q3).
 *   E4  Whenever the front of the queue changes otherwise than by notify (a release, or the
 *       front waiter leaving without its tokens), notify runs: a waiter that fit behind a
 *       departed front is not left waiting (x/sync's subtlety with a cancelled front waiter).
 * Ordering: _r_qlock (spinlock.h S1/S2), then the claim CAS and the park protocol carry the
 * releaser's writes to the waiter it hands tokens to.
 *
 * Depends on: waitq.h (the queue, Q1-Q4), sched.h (park protocol, sched_fatal), ringo_now.
 */
#include "sched/sched.h"
#include "sched/waitq.h"
#include <errno.h>

_Static_assert(sizeof(struct ringo_sem) == 24 + 2 * sizeof(void *), "struct ringo_sem layout");

int ringo_sem_init(struct ringo_sem *s, int64_t size)
{
    if (!s || size < 0)
        return -EINVAL;
    *s = (struct ringo_sem)RINGO_SEM_INIT(size);
    return 0;
}

/* Hand tokens to waiters from the front while they fit (E2, E3); the won ones go on the
 * returned list, to be readied after qunlock (Q4). Under _r_qlock. */
static struct wq_rec *notify(struct ringo_sem *s)
{
    struct wq_rec *list = NULL, **tail = &list;
    struct wq_rec *w;
    while ((w = wq_first(&s->_r_head)) && s->_r_size - s->_r_cur >= w->n) {
        wq_unlink(&s->_r_head, &s->_r_tail, w);
        if (!sched_claim(&w->claim, WQ_HANDED))
            continue; /* its park ended otherwise (its deadline): it holds nothing, skip it */
        s->_r_cur += w->n;
        w->wnext = NULL;
        *tail = w;
        tail = &w->wnext;
    }
    return list;
}

int ringo_sem_try_acquire(struct ringo_sem *s, int64_t n)
{
    if (!s || n < 0)
        return -EINVAL;
    int r = -EBUSY;
    wq_lock(&s->_r_qlock);
    if (n > s->_r_size)
        r = -EINVAL;
    else if (s->_r_size - s->_r_cur >= n && !wq_first(&s->_r_head)) { /* E2 */
        s->_r_cur += n;
        r = 0;
    }
    wq_unlock(&s->_r_qlock);
    return r;
}

int ringo_sem_acquire(struct ringo_sem *s, int64_t n, int64_t deadline)
{
    if (!s || n < 0)
        return -EINVAL;
    if (unlikely(sched_cur_canceled()))
        return -ECANCELED; /* group.c: a cancelled member's later call */
    struct g *self = NULL;
    wq_lock(&s->_r_qlock);
    for (;;) {
        if (n > s->_r_size) {
            wq_unlock(&s->_r_qlock);
            return -EINVAL; /* could never be satisfied */
        }
        if (s->_r_size - s->_r_cur >= n && !wq_first(&s->_r_head)) { /* E2 */
            s->_r_cur += n;
            wq_unlock(&s->_r_qlock);
            return 0;
        }
        if (self)
            break;
        /* We must wait. Neither the clock nor sched_self (which may attach a plain thread: a
         * calloc and the runtime's locks) belongs under the spinlock: drop it, then look again */
        wq_unlock(&s->_r_qlock);
        if (deadline >= 0 && ringo_now() >= deadline)
            return -ETIMEDOUT; /* already past: we only try */
        self = sched_self();
        wq_lock(&s->_r_qlock);
    }
    struct wq_rec me = { .g = self, .n = n, .prepared = true };
    wq_push_back(&s->_r_head, &s->_r_tail, &me);
    sched_park_prepare_until(self, WR_SEM, deadline);
    atomic_store_explicit(&self->park_obj, s, memory_order_relaxed); /* proc.c F7: a hint */
    wq_unlock(&s->_r_qlock);
    /* a claim-park even without a deadline: whatever else sched_park learns to end claim-parks
     * with ends this wait too, and we return that */
    int r = sched_park(self, deadline, &me.claim, WQ_DEADLINE);
    if (r == 0)
        return 0; /* a releaser won our claim and added our tokens to _r_cur (E3) */
    /* Q3: we hold nothing. Leave the queue unless a notifier already unlinked us (it lost our
     * claim); leaving the front may let the waiters behind us in (E4) */
    if (unlikely(sched_test_hook_wait_ended))
        sched_test_hook_wait_ended(s);
    struct wq_rec *list = NULL;
    wq_lock(&s->_r_qlock);
    if (me.linked) {
        bool front = wq_first(&s->_r_head) == &me;
        wq_unlink(&s->_r_head, &s->_r_tail, &me);
        if (front)
            list = notify(s);
    }
    wq_unlock(&s->_r_qlock);
    wq_ready_list(list);
    return r;
}

int ringo_sem_release(struct ringo_sem *s, int64_t n)
{
    if (!s || n < 0)
        return -EINVAL;
    wq_lock(&s->_r_qlock);
    if (n > s->_r_cur) {
        wq_unlock(&s->_r_qlock);
        sched_fatal("semaphore: released more than held"); /* x/sync's panic */
    }
    s->_r_cur -= n;
    struct wq_rec *list = notify(s); /* E4 */
    wq_unlock(&s->_r_qlock);
    wq_ready_list(list);
    return 0;
}
