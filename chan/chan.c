/* chan/chan.c — channels: make, free, len, cap, send, recv, close, and the wait queues.
 *
 * Responsibility: every ringo_chan_* function (RINGO_RANGE's recv included); the attempt one
 * operation makes under c->lock (select.c makes it too); the wait queues, and settle, which
 * pairs queued waiters with the ring. The ring itself is ring.c; ringo_select is select.c.
 *
 * Shape.
 *   Buffered (cap > 0): the fast path is one ring_push / ring_pop (ring.c); when a waiter flag
 *   refuses it the operation takes the slow path here under c->lock: count itself (C3), try
 *   once more, else queue a sudog and park.
 *   Unbuffered (cap == 0): every operation takes the channel lock; a sender hands its value
 *   straight to a waiting receiver (or a receiver takes it straight from a waiting sender), as in
 *   Go's chan.go.
 *
 * Invariants.
 *   C2  FIFO per sender: the ring is FIFO, a sender's next value is sent only after its previous
 *       send returned, and a waiting sender's value is pushed only by settle, which serves sendq
 *       in order.
 *   C5  Close: closed is set under c->lock (enq_pos bit 63, or c->closed_unbuf) and every queued
 *       waiter is woken: senders get -EPIPE, receivers re-check (they drain the ring, then get 0).
 *       After close returns no push can succeed, so a receiver that sees closed with enq == deq
 *       has seen every value ever sent.
 *   Relies on: C1, C4, C6 (chan.h), C3 (ring.c), the lock order (chan.h).
 * Depends on: sched/sched.h (park protocol, sched_claim), sched/list.h (the wait queues),
 * sched/spinlock.h (c->lock), chan/chan.h and ring.c (the ring, the waiter flags).
 */
#include "chan/chan.h"
#include "sched/list.h"
#include "sched/sched.h"
#include "sched/spinlock.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The waiter s is done with c for good (C6). Under c->lock. */
void chan_uncount(struct ringo_chan *c, struct sudog *s)
{
    if (s->counted) {
        s->counted = false;
        chan_wait_dec(c, s->is_send);
    }
}

/* Take the first waiter of q that we can claim; skip waiters of the caller's own select (same
 * claim word). Stale ones (their select won elsewhere, or timed out) are unlinked on the way but
 * stay counted: their select uncounts them when it withdraws (C6). The caller sets the claimed
 * waiter's result and uncounts it if that result is final. */
static struct sudog *wq_claim(struct dlist *q, _Atomic uint32_t *mine)
{
    struct dnode *n = q->first;
    while (n) {
        struct dnode *next = n->next;
        struct sudog *s = dlist_entry(n, struct sudog, node);
        if (s->claim == mine) {
            n = next;
            continue;
        }
        /* sched_claim's acq_rel: we own the waiter's completion; its elem was published by its
         * lock release */
        bool won = sched_claim(s->claim, s->claim_val);
        dlist_unlink(q, &s->node);
        if (won)
            return s;
        n = next; /* a select that already won elsewhere, or timed out */
    }
    return NULL;
}

/* Finish the claimed waiter s with result, under c->lock: a final result uncounts it (C6),
 * R_RETRY leaves it counted for itself (C4). It is readied after the lock is dropped
 * (chan_wake_list on *wake). */
static void complete(struct ringo_chan *c, struct sudog *s, int result, struct sudog **wake)
{
    s->result = result;
    if (result != R_RETRY)
        chan_uncount(c, s);
    s->wake_next = *wake;
    *wake = s;
}

/* A receive of a closed channel yields the zero value (Go's semantics). */
static void clear_elem(struct ringo_chan *c, void *out)
{
    if (out && c->elem_size)
        memset(out, 0, c->elem_size);
}

/* Under lock: match waiting receivers with buffered values and waiting senders with free cells
 * until neither can progress. Waiters are readied after the lock is dropped (list in *wake). */
static void settle(struct ringo_chan *c, struct sudog **wake)
{
    bool progress = true;
    while (progress) {
        progress = false;
        while (!dlist_empty(&c->recvq) && ring_len_raw(c) > 0) {
            struct sudog *r = wq_claim(&c->recvq, NULL);
            if (!r)
                break;
            complete(c, r, ring_pop_wait(c, r->elem) ? 1 : R_RETRY, wake); /* C4 */
            progress = true;
        }
        while (!dlist_empty(&c->sendq) && ring_len_raw(c) < (int64_t)c->cap) {
            struct sudog *s = wq_claim(&c->sendq, NULL);
            if (!s)
                break;
            int p = ring_push_wait(c, s->elem);
            complete(c, s, p == 1 ? 0 : p == -EPIPE ? -EPIPE : R_RETRY, wake);
            progress = true;
        }
    }
}

void chan_wake_list(struct sudog *s)
{
    while (s) {
        struct sudog *next = s->wake_next; /* read before readying: s lives on that stack */
        sched_ready(s->g);
        s = next;
    }
}

/* ------------------------------------------------------------------ make / free / len / cap */
ringo_chan *ringo_chan_make(size_t elem_size, size_t cap)
{
    if (elem_size > (1u << 30) || cap > (1ull << 40) || (cap && elem_size > ((size_t)1 << 46) / cap)) {
        errno = EINVAL;
        return NULL;
    }
    struct ringo_chan *c;
    if (posix_memalign((void **)&c, CACHELINE, sizeof *c) != 0) {
        errno = ENOMEM;
        return NULL;
    }
    memset(c, 0, sizeof *c);
    c->elem_size = elem_size;
    c->cap = cap;
    if (cap) {
        c->ncells = cap == 1 ? 2 : cap;
        c->cell_size = (sizeof(struct cell) + elem_size + 7) & ~(size_t)7;
        c->mask = (c->ncells & (c->ncells - 1)) == 0 ? c->ncells - 1 : 0;
        if (posix_memalign((void **)&c->cells, CACHELINE, c->cell_size * c->ncells) != 0) {
            free(c);
            errno = ENOMEM;
            return NULL;
        }
        /* atomic_init: not shared yet; whoever hands c to another thread publishes it */
        for (size_t i = 0; i < c->ncells; i++)
            atomic_init(&((struct cell *)(c->cells + i * c->cell_size))->seq, i);
    }
    return c;
}

bool chan_busy(struct ringo_chan *c)
{
    spin_lock(&c->lock);
    bool busy = c->nrecv_wait || c->nsend_wait;
    spin_unlock(&c->lock);
    return busy;
}

void chan_dealloc(struct ringo_chan *c)
{
    free(c->cells);
    free(c);
}

int ringo_chan_free(ringo_chan *c)
{
    if (!c)
        return -EINVAL;
    if (unlikely(c->timer != NULL))
        return tchan_free_chan(c->timer); /* a timer's channel: timechan.c */
    if (chan_busy(c))
        return -EBUSY;
    chan_dealloc(c);
    return 0;
}

size_t ringo_chan_len(const ringo_chan *cc)
{
    struct ringo_chan *c = (struct ringo_chan *)cc;
    if (!c || !c->cap)
        return 0;
    int64_t n = ring_len_raw(c);
    return n < 0 ? 0 : (size_t)n > c->cap ? c->cap : (size_t)n;
}

size_t ringo_chan_cap(const ringo_chan *c)
{
    return c ? c->cap : 0;
}

static bool is_closed(struct ringo_chan *c)
{
    /* acquire: pairs with close's acq_rel RMW (C5); c->lock, held by both, orders it too */
    if (c->cap)
        return atomic_load_explicit(&c->enq_pos, memory_order_acquire) & CLOSED_BIT;
    return c->closed_unbuf; /* under lock */
}

/* ------------------------------------------------------------------ one operation, locked
 * The attempt an operation makes with c->lock held. Returns 1 done (result in *res), 0 would
 * block. `mine` is the caller's claim word (to skip its own select cases). Readies collected in
 * *wake. */
static int try_send_locked(struct ringo_chan *c, const void *elem, _Atomic uint32_t *mine, int *res,
                           struct sudog **wake)
{
    if (c->cap == 0) {
        if (c->closed_unbuf) {
            *res = -EPIPE;
            return 1;
        }
        struct sudog *r = wq_claim(&c->recvq, mine);
        if (!r)
            return 0;
        copy_elem(c, r->elem, elem);
        complete(c, r, 1, wake);
        *res = 0;
        return 1;
    }
    int p = ring_push_wait(c, elem);
    if (p == 0)
        return 0;
    *res = p == 1 ? 0 : -EPIPE;
    if (p == 1)
        settle(c, wake);
    return 1;
}

static int try_recv_locked(struct ringo_chan *c, void *out, _Atomic uint32_t *mine, int *res,
                           struct sudog **wake)
{
    if (c->cap == 0) {
        struct sudog *s = wq_claim(&c->sendq, mine);
        if (s) {
            copy_elem(c, out, s->elem);
            complete(c, s, 0, wake);
            *res = 1;
            return 1;
        }
        if (c->closed_unbuf) {
            clear_elem(c, out);
            *res = 0;
            return 1;
        }
        return 0;
    }
    if (ring_pop_wait(c, out)) {
        *res = 1;
        settle(c, wake);
        return 1;
    }
    if (is_closed(c)) {
        clear_elem(c, out);
        *res = 0;
        return 1;
    }
    return 0;
}

int chan_try_locked(struct ringo_chan *c, bool send, void *elem, _Atomic uint32_t *mine, int *res,
                    struct sudog **wake)
{
    return send ? try_send_locked(c, elem, mine, res, wake) : try_recv_locked(c, elem, mine, res, wake);
}

/* ------------------------------------------------------------------ send / recv */
/* The slow path of one send or receive; both sides run the same steps, only the queue, the
 * wait reason and the attempt differ. Under c->lock: count ourselves (C3: before the re-check),
 * try once, else queue a sudog and park until a claimer completes it. A waiter woken with
 * R_RETRY is still counted (C6): the next round swaps its count for a fresh one under the lock.
 * Returns the operation's result, or -EAGAIN when !block and it would have to wait. */
static int slow_path(struct ringo_chan *c, bool send, void *elem, bool block)
{
    for (bool retry = false;; retry = true) {
        struct sudog *wake = NULL;
        int res;
        spin_lock(&c->lock);
        if (retry)
            chan_wait_dec(c, send); /* still counted from the last round (C6) */
        chan_wait_inc(c, send); /* C3: announce before the re-check */
        if (chan_try_locked(c, send, elem, NULL, &res, &wake)) {
            chan_wait_dec(c, send);
            spin_unlock(&c->lock);
            chan_wake_list(wake);
            return res;
        }
        if (!block) {
            chan_wait_dec(c, send);
            spin_unlock(&c->lock);
            return -EAGAIN;
        }
        struct g *self = sched_self();
        if (unlikely(self->grp != NULL)) {
            /* a group member: wait where a cancel can end it (select's claim park, group.c) */
            chan_wait_dec(c, send);
            spin_unlock(&c->lock);
            return chan_op_cancellable(c, send, elem);
        }
        _Atomic uint32_t claim = 0; /* initialised, not stored: published by the unlock below */
        struct sudog me = { .g = self, .c = c, .elem = elem, .claim = &claim, .claim_val = 1,
                            .is_send = send, .counted = true };
        dlist_push_back(send ? &c->sendq : &c->recvq, &me.node); /* counted above */
        sched_park_prepare(self, send ? WR_CHAN_SEND : WR_CHAN_RECV);
        atomic_store_explicit(&self->park_obj, c, memory_order_relaxed); /* proc.c F7: a hint */
        spin_unlock(&c->lock);
        sched_park(self, -1, NULL, 0);
        /* send: 0 or -EPIPE; recv: 1 value, or 0 closed with out zeroed by the closer (C5, C6) */
        if (me.result != R_RETRY)
            return me.result;
        /* R_RETRY: the claimer lost the value (or the room) to a fast-path op (C4): look again */
    }
}

static int chan_send(struct ringo_chan *c, const void *elem, bool block)
{
    if (!c || (!elem && c->elem_size))
        return -EINVAL;
    if (block && unlikely(sched_cur_canceled()))
        return -ECANCELED; /* group.c: every blocking call of a cancelled member */
    if (c->cap) {
        /* fast path: succeeds only while no receiver waits, and then has nothing left to do */
        int p = ring_push(c, elem, true);
        if (p == 1)
            return 0;
        if (p == -EPIPE)
            return -EPIPE;
    }
    return slow_path(c, true, (void *)elem, block); /* a waiting sender's elem is only read */
}

static int chan_recv(struct ringo_chan *c, void *out, bool block)
{
    if (!c)
        return -EINVAL;
    if (block && unlikely(sched_cur_canceled()))
        return -ECANCELED; /* group.c: every blocking call of a cancelled member */
    if (c->cap) {
        /* fast path: succeeds only while no sender waits, and then has nothing left to do */
        if (ring_pop(c, out, true) == 1)
            return 1;
    }
    return slow_path(c, false, out, block);
}

int ringo_chan_send(ringo_chan *c, const void *elem) { return chan_send(c, elem, true); }
int ringo_chan_try_send(ringo_chan *c, const void *elem) { return chan_send(c, elem, false); }
int ringo_chan_recv(ringo_chan *c, void *out) { return chan_recv(c, out, true); }
int ringo_chan_try_recv(ringo_chan *c, void *out) { return chan_recv(c, out, false); }

int ringo_chan_close(ringo_chan *c)
{
    if (!c)
        return -EINVAL;
    struct sudog *wake = NULL;
    spin_lock(&c->lock);
    if (c->cap) {
        /* RMW on enq_pos: after it no push CAS can succeed (C5). acq_rel: release pairs with
         * is_closed's acquire; acquire keeps the drain below after the RMW */
        if (atomic_fetch_or_explicit(&c->enq_pos, CLOSED_BIT, memory_order_acq_rel) & CLOSED_BIT) {
            spin_unlock(&c->lock);
            return -EPIPE;
        }
    } else {
        if (c->closed_unbuf) {
            spin_unlock(&c->lock);
            return -EPIPE;
        }
        c->closed_unbuf = 1;
    }
    struct sudog *s;
    while ((s = wq_claim(&c->sendq, NULL)))
        complete(c, s, -EPIPE, &wake);
    /* receivers queue only on an empty ring; hand them whatever pushes were still completing,
     * then, with no push possible any more (C5), the rest get "closed" (C6: final, out zeroed) */
    if (c->cap)
        settle(c, &wake);
    while ((s = wq_claim(&c->recvq, NULL))) {
        bool got = c->cap && ring_pop_wait(c, s->elem);
        if (!got)
            clear_elem(c, s->elem);
        complete(c, s, got ? 1 : 0, &wake);
    }
    spin_unlock(&c->lock);
    chan_wake_list(wake);
    return 0;
}
