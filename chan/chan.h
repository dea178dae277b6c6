/* chan/chan.h — a channel's internal shape, shared by chan.c, ring.c and select.c (never
 * installed).
 *
 * Responsibility: struct ringo_chan and struct sudog, the layout of the enq_pos / deq_pos
 * words, and the calls the three files make on each other: the ring and its waiter flags
 * (ring.c), the locked attempt of one operation and the waiter bookkeeping (chan.c).
 *
 * Shape.
 *   Buffered (cap > 0): a lock-free bounded ring (ring.c); flag bits in its position words
 *   (CLOSED, RWAIT, SWAIT) send an operation to the slow path under c->lock.
 *   Unbuffered (cap == 0): every operation takes c->lock and hands its value over directly
 *   (chan.c).
 *   Waiters (struct sudog, on the waiter's own stack) queue on recvq / sendq under c->lock. Each
 *   carries a claim word: whoever completes a waiter first CASes its claim from 0 (for a select
 *   the word is shared by all its cases, so exactly one case wins, and a deadline competes for it
 *   too). A claimed waiter is unlinked by its claimer; losers unlink stale waiters they meet.
 *
 * Invariants shared by the three files (C2 and C5 are chan.c's, C3 is ring.c's).
 *   C1  No value lost or duplicated: a value is in exactly one place at a time — the sender's
 *       elem (until a push or a handoff copies it and the send returns 0), a ring cell (between a
 *       successful push and the pop that takes it), or the receiver's out (after recv returns 1).
 *       Pushes and pops are linearised by the CASes on enq_pos / deq_pos; handoffs happen under
 *       c->lock with the receiver's claim won.
 *   C4  No lost wake-up (select). A claimed waiter for which the claimer then finds nothing
 *       (a fast-path op took the value first) is woken with RETRY and re-runs the whole
 *       operation; a wake-up may be spurious, never lost.
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
 * Depends on: sched/sched.h (struct g, CACHELINE), sched/list.h (the wait queues),
 * sched/spinlock.h (c->lock).
 */
#ifndef RINGO_CHAN_H
#define RINGO_CHAN_H
#include "ringo.h"
#include "sched/list.h"
#include "sched/sched.h"
#include "sched/spinlock.h"
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define CLOSED_BIT  (1ull << 63)  /* enq_pos */
#define RWAIT_BIT   (1ull << 62)  /* enq_pos */
#define SWAIT_BIT   (1ull << 62)  /* deq_pos */
#define POS_MASK    ((1ull << 62) - 1)
enum { R_NONE = 0, R_RETRY = 2 };

struct sudog {
    struct g *g;
    struct dnode node;            /* in c->recvq / c->sendq; under c->lock (node.linked: L1) */
    struct sudog *wake_next;      /* on a claimer's wake list, once unlinked (chan_wake_list) */
    struct ringo_chan *c;
    void *elem;                   /* recv: where to store (may be NULL); send: the value */
    _Atomic uint32_t *claim;      /* shared by the cases of one select */
    uint32_t claim_val;           /* what a claimer writes: case index + 1 */
    int result;                   /* written by the claimer before sched_ready */
    bool counted;                 /* counted in nrecv_wait/nsend_wait (C6); under c->lock */
    bool is_send;
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
    struct tchan *timer;          /* a timer's channel (timechan.c): its timer; else NULL; constant */
    char pad0[CACHELINE - 7 * sizeof(size_t)];
    _Atomic uint64_t enq_pos;     /* pushes | CLOSED | RWAIT (buffered) */
    char pad1[CACHELINE - sizeof(uint64_t)];
    _Atomic uint64_t deq_pos;     /* pops | SWAIT */
    char pad2[CACHELINE - sizeof(uint64_t)];
    uint32_t nrecv_wait;          /* under lock; RWAIT mirrors nrecv_wait != 0 (buffered) */
    uint32_t nsend_wait;          /* under lock; SWAIT mirrors nsend_wait != 0 (buffered) */
    _Atomic uint32_t lock;        /* spin_lock / spin_unlock (sched/spinlock.h) */
    uint32_t closed_unbuf;        /* unbuffered closed flag; under lock */
    struct dlist recvq, sendq;    /* of struct sudog .node; under lock */
};

static inline void copy_elem(struct ringo_chan *c, void *dst, const void *src)
{
    if (c->elem_size && dst)
        memcpy(dst, src, c->elem_size);
}

/* ------------------------------------------------------------------ ring (ring.c) */
#define DIVERT 2 /* fast path refused: someone waits on the other side */

/* 1 pushed; 0 full; -EPIPE closed; DIVERT (fast only) receivers wait: take the slow path. */
int ring_push(struct ringo_chan *c, const void *elem, bool fast);
/* 1 popped; 0 empty (or a push still writing its cell); DIVERT (fast only) senders wait. */
int ring_pop(struct ringo_chan *c, void *out, bool fast);
/* Values pushed and not yet popped, counting pushes and pops still in progress. */
int64_t ring_len_raw(struct ringo_chan *c);
/* Pop, waiting out a push that has reserved a cell but not yet filled it. 1 got; 0 empty. */
int ring_pop_wait(struct ringo_chan *c, void *out);
/* Push, waiting out a pop that has taken a cell but not yet freed it. 1; 0 full; -EPIPE. */
int ring_push_wait(struct ringo_chan *c, const void *elem);
/* Count a waiter on one side (under lock); on a buffered channel the RMW that raises RWAIT /
 * SWAIT is the point after which the caller's re-check of the ring is valid (C3). */
void chan_wait_inc(struct ringo_chan *c, bool send);
void chan_wait_dec(struct ringo_chan *c, bool send);

/* ------------------------------------------------------------------ waiters (chan.c) */
/* The waiter s is done with c for good (C6). Under c->lock. */
void chan_uncount(struct ringo_chan *c, struct sudog *s);
/* Ready every waiter of a list collected under a lock, after dropping it. */
void chan_wake_list(struct sudog *s);
/* select.c: a blocking send or receive as a one-case select (a claim park a group's cancel can
 * end); chan.c sends a group member's waits there. */
int chan_op_cancellable(struct ringo_chan *c, bool send, void *elem);
/* The attempt one send (send) or receive makes with c->lock held. Returns 1 done (result in
 * *res), 0 would block. `mine` is the caller's claim word (to skip its own select cases).
 * Readies collected in *wake. */
int chan_try_locked(struct ringo_chan *c, bool send, void *elem, _Atomic uint32_t *mine, int *res,
                    struct sudog **wake);
/* Anyone counted as waiting on c (C6): ringo_chan_free's refusal. Takes c->lock. */
bool chan_busy(struct ringo_chan *c);
/* Free c's memory, no questions asked (the caller checked chan_busy). */
void chan_dealloc(struct ringo_chan *c);

/* ------------------------------------------------------------------ timer channels (timechan.c) */
/* ringo_chan_free of a timer's channel (c->timer != NULL): ringo_after's channel frees its
 * timer with it; the channel of a ringo_timer / ringo_ticker is not the caller's: -EINVAL. */
int tchan_free_chan(struct tchan *tc);
#endif
