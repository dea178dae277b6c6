/* sched/waitq.h — a FIFO of waiters that park on a claim word (never installed).
 *
 * Responsibility: the wait queue of ringo_cond (cond.c) and ringo_sem (sem.c): waiters whose
 * wait can end in more than one way (a waker, the deadline, and whatever else sched_park may
 * learn to end a claim-park with, such as a cancellation) and so must settle who ended it by
 * one CAS on a claim word (sched.h, the park protocol). The queue is the public object's
 * _r_head/_r_tail pair, guarded by the object's _r_qlock (spinlock.h); the records live on the
 * waiters' stacks, so nothing is allocated.
 *
 * Invariants (cond.c and sem.c rely on them by name):
 *   Q1  The queue and every field of a record but claim are read and written under qlock only.
 *   Q2  A waker hands a waiter anything (a signal, tokens) only by winning its claim,
 *       CAS 0 -> WQ_HANDED (sched_claim), under qlock, and unlinks it in the same critical
 *       section whether it won or lost. A lost claim means the waiter's park ended otherwise
 *       (its deadline): the waker skips it and never touches the record again.
 *   Q3  A waiter whose park returned non-zero was not handed anything (Q2: someone else won its
 *       claim); it takes qlock and unlinks itself if it is still linked, and returns that value.
 *   Q4  Lifetime: a waker touches a record under qlock, and afterwards only a record whose
 *       claim it won and that had parked (prepared), which it collected on its own list (wnext)
 *       under qlock: that waiter cannot return before the waker's sched_ready, so the waker
 *       reads its g and wnext, then readies it, and touches it no more. Any other waiter
 *       returns only after holding qlock once it is unlinked. So no waker reads a record after
 *       its frame is gone.
 * Depends on: sched.h (struct g, sched_claim), spinlock.h.
 */
#ifndef RINGO_SCHED_WAITQ_H
#define RINGO_SCHED_WAITQ_H
#include "sched/sched.h"
#include "sched/spinlock.h"

enum { WQ_HANDED = 1, WQ_DEADLINE = 2 }; /* claim values: a waker won; the timer won */

struct wq_rec {
    struct wq_rec *next, *prev; /* on the queue (Q1) */
    struct g *g;
    _Atomic uint32_t claim;     /* Q2: 0 until a waker or the deadline wins it */
    bool linked;                /* on the queue */
    bool prepared;              /* sched_park_prepare done: a winner must sched_ready g (Q4) */
    int64_t n;                  /* sem.c: tokens wanted */
    struct wq_rec *wnext;       /* a waker's list of winners to ready after qunlock (Q4) */
};

/* The queue lock: spinlock.h's (S1/S2), on the public field. */
static inline void wq_lock(uint32_t *l) { spin_lock((_Atomic uint32_t *)(void *)l); }
static inline void wq_unlock(uint32_t *l) { spin_unlock((_Atomic uint32_t *)(void *)l); }

/* The public fields are void *: convert, never alias them as struct wq_rec *. Under qlock. */
static inline struct wq_rec *wq_first(void *const *head) { return *head; }

static inline void wq_push_back(void **head, void **tail, struct wq_rec *r)
{
    struct wq_rec *last = *tail;
    r->next = NULL;
    r->prev = last;
    if (last)
        last->next = r;
    else
        *head = r;
    *tail = r;
    r->linked = true;
}

static inline void wq_unlink(void **head, void **tail, struct wq_rec *r)
{
    SCHED_CHECK(r->linked, "waitq: unlinking a waiter that is not queued");
    if (r->prev)
        r->prev->next = r->next;
    else
        *head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        *tail = r->prev;
    r->next = r->prev = NULL;
    r->linked = false;
}

/* Test hook (tests/test_sync2.c): called by a waiter of a cond or a semaphore (obj) whose park
 * returned non-zero, before it takes _r_qlock to leave the queue (Q3), so a test can hold it
 * exactly there while a waker finds its claim lost. NULL outside that test; defined in cond.c. */
extern void (*sched_test_hook_wait_ended)(void *obj);

/* Q4: ready every record on a waker's list, after qunlock. */
static inline void wq_ready_list(struct wq_rec *list)
{
    while (list) {
        struct wq_rec *next = list->wnext; /* before the ready: the record is on its stack */
        sched_ready(list->g);
        list = next;
    }
}
#endif
