/* chan/chan.c — channels: buffered ring, rendezvous, close, select.
 *
 * Responsibility: every ringo_chan_* function, RINGO_RANGE's recv, and ringo_select.
 *
 * Shape.
 *   Buffered (cap > 0): a bounded MPMC ring of cells with sequence numbers (Vyukov). enq_pos and
 *   deq_pos count pushes and pops (low 62 bits); cell i holds seq == pos when free for the push
 *   at pos, and seq == pos + 1 when it holds the value pushed at pos. Flag bits ride in the same
 *   words, so the CAS that moves a position also reads them atomically:
 *     enq_pos bit 63 CLOSED  - no push can succeed once close set it;
 *     enq_pos bit 62 RWAIT   - some receiver is queued or about to queue;
 *     deq_pos bit 62 SWAIT   - some sender is queued or about to queue.
 *   Fast path: a push whose CAS expects RWAIT clear, a pop whose CAS expects SWAIT clear. When it
 *   succeeds nobody waits on the other side, so it has nothing to do afterwards: it never touches
 *   the channel again once its value (or its freed cell) is visible, and a program may free the
 *   channel as soon as it has received the last value. No lock, no syscall, no extra load.
 *   When the flag is set the operation takes the slow path under c->lock.
 *   Unbuffered (cap == 0): every operation takes the channel lock; a sender hands its value
 *   straight to a waiting receiver (or a receiver takes it straight from a waiting sender), as in
 *   Go's chan.go.
 *   Waiters (struct sudog, on the waiter's own stack) queue on recvq / sendq under c->lock. Each
 *   carries a claim word: whoever completes a waiter first CASes its claim from 0 (for a select
 *   the word is shared by all its cases, so exactly one case wins, and a deadline competes for it
 *   too). A claimed waiter is unlinked by its claimer; losers unlink stale waiters they meet.
 *
 * Invariants.
 *   C1  No value lost or duplicated: a value is in exactly one place at a time — the sender's
 *       elem (until a push or a handoff copies it and the send returns 0), a ring cell (between a
 *       successful push and the pop that takes it), or the receiver's out (after recv returns 1).
 *       Pushes and pops are linearised by the CASes on enq_pos / deq_pos; handoffs happen under
 *       c->lock with the receiver's claim won.
 *   C2  FIFO per sender: the ring is FIFO, a sender's next value is sent only after its previous
 *       send returned, and a waiting sender's value is pushed only by settle, which serves sendq
 *       in order.
 *   C3  No lost wake-up (buffered), on one memory location. A receiver that finds the ring empty
 *       takes c->lock, sets RWAIT with an RMW on enq_pos, and only then looks at the ring again.
 *       A fast-path push is a CAS on enq_pos expecting RWAIT clear. In enq_pos's modification
 *       order either the push comes first (the receiver's later read of enq_pos, by coherence,
 *       sees it: enq != deq, so it waits for the cell instead of parking), or the RMW comes first
 *       (the push's CAS fails, it re-reads RWAIT and takes the slow path under c->lock, where it
 *       finds the receiver queued, since the receiver queues before dropping the lock). The same
 *       holds for a sender waiting for room with SWAIT on deq_pos.
 *   C4  No lost wake-up (select). A claimed waiter for which the claimer then finds nothing
 *       (a fast-path op took the value first) is woken with RETRY and re-runs the whole
 *       operation; a wake-up may be spurious, never lost.
 *   C5  Close: closed is set under c->lock (enq_pos bit 63, or c->closed_unbuf) and every queued
 *       waiter is woken: senders get -EPIPE, receivers re-check (they drain the ring, then get 0).
 *       After close returns no push can succeed, so a receiver that sees closed with enq == deq
 *       has seen every value ever sent.
 *   C6  A waiter stays counted (nrecv_wait / nsend_wait, under c->lock) until it can no longer
 *       touch the channel: a claimer uncounts it only with a final result (a value, closed, or
 *       -EPIPE: the woken waiter returns without looking at c again); a waiter woken with RETRY
 *       stays counted and uncounts itself under the lock; a select's stale cases (unlinked by
 *       others after another case won) are uncounted only by the select itself, when it
 *       withdraws. Close completes every waiter with a final result. So ringo_chan_free, which
 *       refuses while a count is non-zero, never frees a channel someone may still touch, and a
 *       program may free a channel right after close or after its last value is received.
 *   RWAIT / SWAIT are set while the matching count is non-zero.
 *
 * Lock order: channel locks in ascending address order (select takes several). A channel lock
 * is a spinlock never held across a park; the park protocol's locks (run queues, idle list)
 * may be taken inside it (sched_ready).
 * Depends on: sched (park protocol). */
#include "ringo.h"
#include "sched/sched.h"
#include <errno.h>
#include <immintrin.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#define CLOSED_BIT  (1ull << 63)  /* enq_pos */
#define RWAIT_BIT   (1ull << 62)  /* enq_pos */
#define SWAIT_BIT   (1ull << 62)  /* deq_pos */
#define POS_MASK    ((1ull << 62) - 1)
#define CLAIM_TIMEOUT 0xFFFFFFFFu
enum { R_NONE = 0, R_RETRY = 2 };

struct sudog {
    struct g *g;
    struct sudog *next, *prev;    /* in c->recvq / c->sendq; under c->lock */
    struct ringo_chan *c;
    void *elem;                   /* recv: where to store (may be NULL); send: the value */
    _Atomic uint32_t *claim;      /* shared by the cases of one select */
    uint32_t claim_val;           /* what a claimer writes: case index + 1 */
    int result;                   /* written by the claimer before sched_ready */
    bool linked;                  /* in a queue; under c->lock */
    bool counted;                 /* counted in nrecv_wait/nsend_wait (C6); under c->lock */
    bool is_send;
};

struct waitq {
    struct sudog *head, *tail;
};

struct cell {
    _Atomic uint64_t seq;
    /* elem_size bytes follow */
};

struct ringo_chan {
    /* read-mostly */
    size_t elem_size;
    size_t cap;
    size_t cell_size;
    uint64_t mask;                /* ncells - 1 when ncells is a power of two, else 0 */
    size_t ncells;                /* cap, or 2 when cap == 1 (see ring_push) */
    char *cells;
    char pad0[CACHELINE - 6 * sizeof(size_t)];
    _Atomic uint64_t enq_pos;     /* pushes | CLOSED | RWAIT (buffered) */
    char pad1[CACHELINE - sizeof(uint64_t)];
    _Atomic uint64_t deq_pos;     /* pops | SWAIT */
    char pad2[CACHELINE - sizeof(uint64_t)];
    uint32_t nrecv_wait;          /* under lock; RWAIT mirrors nrecv_wait != 0 (buffered) */
    uint32_t nsend_wait;          /* under lock; SWAIT mirrors nsend_wait != 0 (buffered) */
    _Atomic uint32_t lock;        /* spinlock */
    uint32_t closed_unbuf;        /* unbuffered closed flag; under lock */
    struct waitq recvq, sendq;    /* under lock */
};

/* ------------------------------------------------------------------ lock */
static void chan_lock(struct ringo_chan *c)
{
    for (unsigned spins = 0;; spins++) {
        uint32_t z = 0;
        /* acquire: the queues as the previous holder left them */
        if (atomic_load_explicit(&c->lock, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(&c->lock, &z, 1, memory_order_acquire, memory_order_relaxed))
            return;
        if (spins < 100)
            _mm_pause();
        else
            sched_yield(); /* the holder's thread was preempted */
    }
}

static void chan_unlock(struct ringo_chan *c)
{
    atomic_store_explicit(&c->lock, 0, memory_order_release); /* publishes the queues */
}

/* ------------------------------------------------------------------ waiter counts (under lock) */
/* Count a waiter on one side. The RMW is done every time, not only on 0 -> 1: it is the
 * linearisation point after which the caller's re-check of the ring is valid (C3). */
static void wait_inc(struct ringo_chan *c, bool send)
{
    if (send) {
        c->nsend_wait++;
        if (c->cap)
            atomic_fetch_or_explicit(&c->deq_pos, SWAIT_BIT, memory_order_acq_rel); /* C3 */
    } else {
        c->nrecv_wait++;
        if (c->cap)
            atomic_fetch_or_explicit(&c->enq_pos, RWAIT_BIT, memory_order_acq_rel); /* C3 */
    }
}

static void wait_dec(struct ringo_chan *c, bool send)
{
    if (send) {
        if (--c->nsend_wait == 0 && c->cap)
            atomic_fetch_and_explicit(&c->deq_pos, ~SWAIT_BIT, memory_order_relaxed); /* under lock */
    } else {
        if (--c->nrecv_wait == 0 && c->cap)
            atomic_fetch_and_explicit(&c->enq_pos, ~RWAIT_BIT, memory_order_relaxed); /* under lock */
    }
}

/* ------------------------------------------------------------------ wait queues (under lock) */
static void wq_push(struct waitq *q, struct sudog *s)
{
    s->next = NULL;
    s->prev = q->tail;
    if (q->tail)
        q->tail->next = s;
    else
        q->head = s;
    q->tail = s;
    s->linked = true;
}

static void wq_unlink(struct ringo_chan *c, struct waitq *q, struct sudog *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        q->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        q->tail = s->prev;
    s->linked = false;
}

/* The waiter s is done with c for good (C6). Under c->lock. */
static void uncount(struct ringo_chan *c, struct sudog *s)
{
    if (s->counted) {
        s->counted = false;
        wait_dec(c, s->is_send);
    }
}

/* Take the first waiter of q that we can claim; skip waiters of the caller's own select (same
 * claim word). Stale ones (their select won elsewhere, or timed out) are unlinked on the way but
 * stay counted: their select uncounts them when it withdraws (C6). The caller sets the claimed
 * waiter's result and uncounts it if that result is final. */
static struct sudog *wq_claim(struct ringo_chan *c, struct waitq *q, _Atomic uint32_t *mine)
{
    struct sudog *s = q->head;
    while (s) {
        struct sudog *next = s->next;
        if (s->claim == mine) {
            s = next;
            continue;
        }
        uint32_t z = 0;
        /* acq_rel: we own the waiter's completion; its elem was published by its lock release */
        bool won = atomic_compare_exchange_strong_explicit(s->claim, &z, s->claim_val, memory_order_acq_rel,
                                                           memory_order_acquire);
        wq_unlink(c, q, s);
        if (won)
            return s;
        s = next; /* a select that already won elsewhere, or timed out */
    }
    return NULL;
}

/* ------------------------------------------------------------------ ring */
static inline struct cell *cell_at(struct ringo_chan *c, uint64_t pos)
{
    uint64_t i = c->mask ? (pos & c->mask) : (pos % c->ncells);
    return (struct cell *)(c->cells + i * c->cell_size);
}

static inline void copy_elem(struct ringo_chan *c, void *dst, const void *src)
{
    if (c->elem_size && dst)
        memcpy(dst, src, c->elem_size);
}

#define DIVERT 2 /* fast path refused: someone waits on the other side */

/* 1 pushed; 0 full; -EPIPE closed; DIVERT (fast only) receivers wait: take the slow path. */
static int ring_push(struct ringo_chan *c, const void *elem, bool fast)
{
    uint64_t e = atomic_load_explicit(&c->enq_pos, memory_order_relaxed);
    for (;;) {
        if (e & CLOSED_BIT)
            return -EPIPE;
        if (fast && (e & RWAIT_BIT))
            return DIVERT;
        uint64_t pos = e & POS_MASK;
        /* One cell cannot tell "full with the value pushed at pos-1" (seq == pos) from "free for
         * the push at pos" (seq == pos): a cap-1 channel has two cells and this check. A stale
         * deq_pos only overstates the length (positions only grow): at worst a needless slow
         * path, never an extra value. */
        if (c->cap == 1 && pos - (atomic_load_explicit(&c->deq_pos, memory_order_acquire) & POS_MASK) >= 1)
            return 0;
        struct cell *cl = cell_at(c, pos);
        /* acquire: the pop that freed this cell is done reading it */
        uint64_t seq = atomic_load_explicit(&cl->seq, memory_order_acquire);
        int64_t dif = (int64_t)(seq - pos);
        if (dif == 0) {
            /* the CAS expects the flags as read: it fails if RWAIT or CLOSED appeared (C3, C5).
             * relaxed: the value is published by the cell's seq (release) below */
            if (atomic_compare_exchange_weak_explicit(&c->enq_pos, &e, e + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                copy_elem(c, cl + 1, elem);
                /* release: the value before the cell reads as full */
                atomic_store_explicit(&cl->seq, pos + 1, memory_order_release);
                return 1;
            }
        } else if (dif < 0) {
            return 0; /* full */
        } else {
            e = atomic_load_explicit(&c->enq_pos, memory_order_relaxed);
        }
    }
}

/* 1 popped; 0 empty (or a push still writing its cell); DIVERT (fast only) senders wait. */
static int ring_pop(struct ringo_chan *c, void *out, bool fast)
{
    uint64_t d = atomic_load_explicit(&c->deq_pos, memory_order_relaxed);
    for (;;) {
        if (fast && (d & SWAIT_BIT))
            return DIVERT;
        uint64_t pos = d & POS_MASK;
        struct cell *cl = cell_at(c, pos);
        /* acquire: pairs with the push's release; the value is complete */
        uint64_t seq = atomic_load_explicit(&cl->seq, memory_order_acquire);
        int64_t dif = (int64_t)(seq - (pos + 1));
        if (dif == 0) {
            /* expects the flags as read: fails if SWAIT appeared (C3); relaxed as in ring_push */
            if (atomic_compare_exchange_weak_explicit(&c->deq_pos, &d, d + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                copy_elem(c, out, cl + 1);
                /* release: our read of the value before the cell reads as free */
                atomic_store_explicit(&cl->seq, pos + c->ncells, memory_order_release);
                return 1;
            }
        } else if (dif < 0) {
            return 0;
        } else {
            d = atomic_load_explicit(&c->deq_pos, memory_order_relaxed);
        }
    }
}

/* Values pushed and not yet popped, counting pushes and pops still in progress. A read of
 * enq_pos after our own RMW on it sees that RMW or later (coherence): the re-check of C3. */
static inline int64_t ring_len_raw(struct ringo_chan *c)
{
    uint64_t e = atomic_load_explicit(&c->enq_pos, memory_order_acquire) & POS_MASK;
    uint64_t d = atomic_load_explicit(&c->deq_pos, memory_order_acquire) & POS_MASK;
    return (int64_t)(e - d);
}

static void spin_pause(unsigned *n)
{
    if (++*n < 200)
        _mm_pause();
    else
        sched_yield();
}

/* Pop, waiting out a push that has reserved a cell but not yet filled it. 1 got; 0 empty. */
static int ring_pop_wait(struct ringo_chan *c, void *out)
{
    unsigned spins = 0;
    for (;;) {
        if (ring_pop(c, out, false))
            return 1;
        if (ring_len_raw(c) <= 0)
            return 0;
        spin_pause(&spins);
    }
}

/* Push, waiting out a pop that has taken a cell but not yet freed it. 1; 0 full; -EPIPE. */
static int ring_push_wait(struct ringo_chan *c, const void *elem)
{
    unsigned spins = 0;
    for (;;) {
        int r = ring_push(c, elem, false);
        if (r != 0)
            return r;
        if (ring_len_raw(c) >= (int64_t)c->cap)
            return 0;
        spin_pause(&spins);
    }
}

/* Under lock: match waiting receivers with buffered values and waiting senders with free cells
 * until neither can progress. Waiters are readied after the lock is dropped (list in *wake). */
static void settle(struct ringo_chan *c, struct sudog **wake)
{
    bool progress = true;
    while (progress) {
        progress = false;
        while (c->recvq.head && ring_len_raw(c) > 0) {
            struct sudog *r = wq_claim(c, &c->recvq, NULL);
            if (!r)
                break;
            r->result = ring_pop_wait(c, r->elem) ? 1 : R_RETRY; /* C4 */
            if (r->result != R_RETRY)
                uncount(c, r);
            r->next = *wake;
            *wake = r;
            progress = true;
        }
        while (c->sendq.head && ring_len_raw(c) < (int64_t)c->cap) {
            struct sudog *s = wq_claim(c, &c->sendq, NULL);
            if (!s)
                break;
            int p = ring_push_wait(c, s->elem);
            s->result = p == 1 ? 0 : p == -EPIPE ? -EPIPE : R_RETRY;
            if (s->result != R_RETRY)
                uncount(c, s);
            s->next = *wake;
            *wake = s;
            progress = true;
        }
    }
}

static void wake_list(struct sudog *s)
{
    while (s) {
        struct sudog *next = s->next; /* read before readying: s lives on that stack */
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
        for (size_t i = 0; i < c->ncells; i++)
            atomic_init(&((struct cell *)(c->cells + i * c->cell_size))->seq, i);
    }
    return c;
}

int ringo_chan_free(ringo_chan *c)
{
    if (!c)
        return -EINVAL;
    chan_lock(c);
    bool busy = c->nrecv_wait || c->nsend_wait;
    chan_unlock(c);
    if (busy)
        return -EBUSY;
    free(c->cells);
    free(c);
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
        struct sudog *r = wq_claim(c, &c->recvq, mine);
        if (!r)
            return 0;
        copy_elem(c, r->elem, elem);
        r->result = 1;
        uncount(c, r);
        r->next = *wake;
        *wake = r;
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
        struct sudog *s = wq_claim(c, &c->sendq, mine);
        if (s) {
            copy_elem(c, out, s->elem);
            s->result = 0;
            uncount(c, s);
            s->next = *wake;
            *wake = s;
            *res = 1;
            return 1;
        }
        if (c->closed_unbuf) {
            if (out && c->elem_size)
                memset(out, 0, c->elem_size);
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
        if (out && c->elem_size)
            memset(out, 0, c->elem_size);
        *res = 0;
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ send / recv */
static int chan_send(struct ringo_chan *c, const void *elem, bool block)
{
    if (!c || (!elem && c->elem_size))
        return -EINVAL;
    if (c->cap) {
        /* fast path: succeeds only while no receiver waits, and then has nothing left to do */
        int p = ring_push(c, elem, true);
        if (p == 1)
            return 0;
        if (p == -EPIPE)
            return -EPIPE;
    }
    for (bool retry = false;; retry = true) {
        struct sudog *wake = NULL;
        int res;
        chan_lock(c);
        if (retry)
            wait_dec(c, true); /* still counted from the last round (C6) */
        wait_inc(c, true); /* C3: announce before the re-check */
        if (try_send_locked(c, elem, NULL, &res, &wake)) {
            wait_dec(c, true);
            chan_unlock(c);
            wake_list(wake);
            return res;
        }
        if (!block) {
            wait_dec(c, true);
            chan_unlock(c);
            return -EAGAIN;
        }
        struct g *self = sched_self();
        _Atomic uint32_t claim = 0;
        struct sudog me = { .g = self, .c = c, .elem = (void *)elem, .claim = &claim, .claim_val = 1,
                            .is_send = true, .counted = true };
        wq_push(&c->sendq, &me); /* counted above */
        sched_park_prepare(self, WR_CHAN_SEND);
        chan_unlock(c);
        sched_park(self, -1, NULL, 0);
        if (me.result != R_RETRY)
            return me.result;
    }
}

static int chan_recv(struct ringo_chan *c, void *out, bool block)
{
    if (!c)
        return -EINVAL;
    if (c->cap) {
        /* fast path: succeeds only while no sender waits, and then has nothing left to do */
        if (ring_pop(c, out, true) == 1)
            return 1;
    }
    for (bool retry = false;; retry = true) {
        struct sudog *wake = NULL;
        int res;
        chan_lock(c);
        if (retry)
            wait_dec(c, false); /* still counted from the last round (C6) */
        wait_inc(c, false); /* C3: announce before the re-check */
        if (try_recv_locked(c, out, NULL, &res, &wake)) {
            wait_dec(c, false);
            chan_unlock(c);
            wake_list(wake);
            return res;
        }
        if (!block) {
            wait_dec(c, false);
            chan_unlock(c);
            return -EAGAIN;
        }
        struct g *self = sched_self();
        _Atomic uint32_t claim = 0;
        struct sudog me = { .g = self, .c = c, .elem = out, .claim = &claim, .claim_val = 1, .counted = true };
        wq_push(&c->recvq, &me);
        sched_park_prepare(self, WR_CHAN_RECV);
        chan_unlock(c);
        sched_park(self, -1, NULL, 0);
        if (me.result != R_RETRY)
            return me.result; /* 1 value, or 0 closed with out zeroed by the closer (C5, C6) */
        /* R_RETRY: the claimer lost the value to a fast-path receiver (C4): look again */
    }
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
    chan_lock(c);
    if (c->cap) {
        /* RMW on enq_pos: after it no push CAS can succeed (C5) */
        if (atomic_fetch_or_explicit(&c->enq_pos, CLOSED_BIT, memory_order_acq_rel) & CLOSED_BIT) {
            chan_unlock(c);
            return -EPIPE;
        }
    } else {
        if (c->closed_unbuf) {
            chan_unlock(c);
            return -EPIPE;
        }
        c->closed_unbuf = 1;
    }
    struct sudog *s;
    while ((s = wq_claim(c, &c->sendq, NULL))) {
        s->result = -EPIPE;
        uncount(c, s);
        s->next = wake;
        wake = s;
    }
    /* receivers queue only on an empty ring; hand them whatever pushes were still completing,
     * then, with no push possible any more (C5), the rest get "closed" (C6: final, out zeroed) */
    if (c->cap)
        settle(c, &wake);
    while ((s = wq_claim(c, &c->recvq, NULL))) {
        if (c->cap && ring_pop_wait(c, s->elem)) {
            s->result = 1;
        } else {
            if (s->elem && c->elem_size)
                memset(s->elem, 0, c->elem_size);
            s->result = 0;
        }
        uncount(c, s);
        s->next = wake;
        wake = s;
    }
    chan_unlock(c);
    wake_list(wake);
    return 0;
}

/* ------------------------------------------------------------------ select */
static void lock_all(struct ringo_chan **cs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        chan_lock(cs[i]);
}

static void unlock_all(struct ringo_chan **cs, size_t n)
{
    for (size_t i = n; i-- > 0;)
        chan_unlock(cs[i]);
}

int ringo_select(struct ringo_case *cases, size_t n, int64_t timeout)
{
    if ((n && !cases) || n > 65536)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (cases[i].op != RINGO_RECV && cases[i].op != RINGO_SEND)
            return -EINVAL;
        if (cases[i].chan && cases[i].op == RINGO_SEND && !cases[i].elem && cases[i].chan->elem_size)
            return -EINVAL;
    }
    int64_t deadline = timeout < 0 ? -1 : timeout == 0 ? 0 : ringo_now() + timeout;

    /* random poll order: the first ready case in a uniformly random permutation is uniform
     * among the ready ones */
    uint16_t order_small[64];
    uint16_t *order = n <= 64 ? order_small : malloc(n * sizeof *order);
    struct ringo_chan *chans_small[64];
    struct ringo_chan **chans = n <= 64 ? chans_small : malloc(n * sizeof *chans);
    struct sudog sg_small[16];
    struct sudog *sg = n <= 16 ? sg_small : malloc(n * sizeof *sg);
    if (!order || !chans || !sg) {
        if (order != order_small)
            free(order);
        if (chans != chans_small)
            free(chans);
        if (sg != sg_small)
            free(sg);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        size_t j = n > 1 ? sched_fastrand() % (i + 1) : 0;
        order[i] = order[j];
        order[j] = (uint16_t)i;
    }
    int ret;
    for (;;) {
        struct sudog *wake = NULL;
        int res;
        /* distinct channels in address order: the lock order */
        size_t nch = 0;
        for (size_t i = 0; i < n; i++) {
            struct ringo_chan *c = cases[i].chan;
            if (!c)
                continue;
            size_t k = 0;
            while (k < nch && chans[k] < c)
                k++;
            if (k < nch && chans[k] == c)
                continue;
            memmove(&chans[k + 1], &chans[k], (nch - k) * sizeof *chans);
            chans[k] = c;
            nch++;
        }

        /* pass 1 (and the re-check of C3/C4): everything locked, try each case in random order */
        lock_all(chans, nch);
        _Atomic uint32_t claim = 0;
        int done = -1;
        for (size_t k = 0; k < n && done < 0; k++) {
            size_t i = order[k];
            struct ringo_chan *c = cases[i].chan;
            if (!c)
                continue;
            int ok = cases[i].op == RINGO_SEND ? try_send_locked(c, cases[i].elem, &claim, &res, &wake)
                                               : try_recv_locked(c, cases[i].elem, &claim, &res, &wake);
            if (ok) {
                cases[i].result = res;
                done = (int)i;
            }
        }
        if (done >= 0) {
            unlock_all(chans, nch);
            wake_list(wake);
            ret = done;
            break;
        }
        if (deadline == 0) {
            unlock_all(chans, nch);
            ret = -EAGAIN;
            break;
        }
        if (deadline > 0 && ringo_now() >= deadline) {
            unlock_all(chans, nch);
            ret = -ETIMEDOUT;
            break;
        }
        /* Count ourselves on every channel (C3), then look once more: a fast-path op that ran
         * before our counters were visible left its trace in a ring. We are not queued yet, so
         * nothing (not even a settle inside our own attempt) can claim us; we hold every lock,
         * so no unbuffered channel changes meanwhile and only buffered cases need the look. */
        for (size_t i = 0; i < n; i++)
            if (cases[i].chan)
                wait_inc(cases[i].chan, cases[i].op == RINGO_SEND); /* C3 */
        for (size_t k = 0; k < n && done < 0; k++) {
            size_t i = order[k];
            struct ringo_chan *c = cases[i].chan;
            if (!c || !c->cap)
                continue;
            int ok = cases[i].op == RINGO_SEND ? try_send_locked(c, cases[i].elem, &claim, &res, &wake)
                                               : try_recv_locked(c, cases[i].elem, &claim, &res, &wake);
            if (ok) {
                cases[i].result = res;
                done = (int)i;
            }
        }
        if (done >= 0) {
            for (size_t i = 0; i < n; i++)
                if (cases[i].chan)
                    wait_dec(cases[i].chan, cases[i].op == RINGO_SEND);
            unlock_all(chans, nch);
            wake_list(wake);
            ret = done;
            break;
        }
        struct g *self = sched_self();
        for (size_t i = 0; i < n; i++) {
            struct ringo_chan *c = cases[i].chan;
            if (!c)
                continue;
            bool snd = cases[i].op == RINGO_SEND;
            sg[i] = (struct sudog){ .g = self, .c = c, .elem = cases[i].elem, .claim = &claim,
                                    .claim_val = (uint32_t)i + 1, .is_send = snd, .counted = true };
            wq_push(snd ? &c->sendq : &c->recvq, &sg[i]); /* counted above */
        }
        sched_park_prepare_until(self, nch ? WR_SELECT : WR_SELECT_NONE, deadline);
        unlock_all(chans, nch);
        int pr = sched_park(self, deadline, &claim, CLAIM_TIMEOUT);
        /* Withdraw from every channel where a case of ours is still counted (C6). Only we
         * uncount our stale cases, so these flags are stable; the winning case was uncounted by
         * its claimer if its result is final, and that channel may already be freed: do not
         * touch it then. */
        size_t nw = 0;
        for (size_t k = 0; k < nch; k++) {
            bool mine = false;
            for (size_t i = 0; i < n; i++)
                if (cases[i].chan == chans[k] && sg[i].counted)
                    mine = true;
            if (mine)
                chans[nw++] = chans[k]; /* still in address order */
        }
        lock_all(chans, nw);
        for (size_t i = 0; i < n; i++) {
            if (!cases[i].chan || !sg[i].counted)
                continue;
            if (sg[i].linked)
                wq_unlink(cases[i].chan, cases[i].op == RINGO_SEND ? &cases[i].chan->sendq : &cases[i].chan->recvq,
                          &sg[i]);
            uncount(cases[i].chan, &sg[i]);
        }
        unlock_all(chans, nw);
        /* a retry (below) collects the channels again at the top */
        if (pr == -ETIMEDOUT) {
            ret = -ETIMEDOUT;
            break;
        }
        /* acquire: pairs with the claimer's acq_rel CAS (it wrote the result before readying) */
        uint32_t won = atomic_load_explicit(&claim, memory_order_acquire) - 1;
        if (sg[won].result == R_RETRY)
            continue; /* C4: claimed by close or by a claimer that lost the value: start over */
        cases[won].result = sg[won].result;
        ret = (int)won;
        break;
    }
    if (order != order_small)
        free(order);
    if (chans != chans_small)
        free(chans);
    if (sg != sg_small)
        free(sg);
    return ret;
}
