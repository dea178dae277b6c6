/* chan/ring.c — a buffered channel's lock-free ring and its waiter flags.
 *
 * Responsibility: push and pop on the bounded ring (the fast path, which never takes the lock,
 * and the waiting variants the slow path uses under c->lock), its length, and the waiter counts
 * whose RMWs raise RWAIT / SWAIT.
 *
 * Shape. A bounded MPMC ring of cells with sequence numbers (Vyukov). enq_pos and deq_pos count
 * pushes and pops (low 62 bits); cell i holds seq == pos when free for the push at pos, and
 * seq == pos + 1 when it holds the value pushed at pos. Flag bits ride in the same words, so the
 * CAS that moves a position also reads them atomically:
 *     enq_pos bit 63 CLOSED  - no push can succeed once close set it;
 *     enq_pos bit 62 RWAIT   - some receiver is queued or about to queue;
 *     deq_pos bit 62 SWAIT   - some sender is queued or about to queue.
 * Fast path: a push whose CAS expects RWAIT clear, a pop whose CAS expects SWAIT clear. When it
 * succeeds nobody waits on the other side, so it has nothing to do afterwards: it never touches
 * the channel again once its value (or its freed cell) is visible, and a program may free the
 * channel as soon as it has received the last value. No lock, no syscall, no extra load.
 * When the flag is set the operation takes the slow path under c->lock (chan.c).
 *
 * Invariants.
 *   C3  No lost wake-up (buffered), on one memory location. A receiver that finds the ring empty
 *       takes c->lock, sets RWAIT with an RMW on enq_pos, and only then looks at the ring again.
 *       A fast-path push is a CAS on enq_pos expecting RWAIT clear. In enq_pos's modification
 *       order either the push comes first (the receiver's later read of enq_pos, by coherence,
 *       sees it: enq != deq, so it waits for the cell instead of parking), or the RMW comes first
 *       (the push's CAS fails, it re-reads RWAIT and takes the slow path under c->lock, where it
 *       finds the receiver queued, since the receiver queues before dropping the lock). The same
 *       holds for a sender waiting for room with SWAIT on deq_pos.
 *   Relies on: C1 (chan.h: the CASes here are the linearisation points of pushes and pops) and
 *   C5 (chan.c: close sets CLOSED under c->lock).
 * Depends on: chan/chan.h (struct ringo_chan, the position-word layout), sched/spinlock.h
 * (cpu_relax).
 */
#include "chan/chan.h"
#include "sched/spinlock.h"
#include <errno.h>
#include <sched.h>
#include <string.h>

/* ------------------------------------------------------------------ waiter counts (under lock) */
/* Count a waiter on one side. The RMW is done every time, not only on 0 -> 1: it is the
 * linearisation point after which the caller's re-check of the ring is valid (C3). */
void chan_wait_inc(struct ringo_chan *c, bool send)
{
    if (send) {
        c->nsend_wait++;
        if (c->cap)
            /* C3; acq_rel: its acquire half keeps the loads of the re-check that follows
             * after the RMW */
            atomic_fetch_or_explicit(&c->deq_pos, SWAIT_BIT, memory_order_acq_rel);
    } else {
        c->nrecv_wait++;
        if (c->cap)
            /* C3; acq_rel as above */
            atomic_fetch_or_explicit(&c->enq_pos, RWAIT_BIT, memory_order_acq_rel);
    }
}

void chan_wait_dec(struct ringo_chan *c, bool send)
{
    if (send) {
        if (--c->nsend_wait == 0 && c->cap)
            /* relaxed: under c->lock; a pop that still sees SWAIT only takes the slow path */
            atomic_fetch_and_explicit(&c->deq_pos, ~SWAIT_BIT, memory_order_relaxed);
    } else {
        if (--c->nrecv_wait == 0 && c->cap)
            /* relaxed: under c->lock; a push that still sees RWAIT only takes the slow path */
            atomic_fetch_and_explicit(&c->enq_pos, ~RWAIT_BIT, memory_order_relaxed);
    }
}

/* ------------------------------------------------------------------ ring */
static inline struct cell *cell_at(struct ringo_chan *c, uint64_t pos)
{
    uint64_t i = c->mask ? (pos & c->mask) : (pos % c->ncells);
    return (struct cell *)(c->cells + i * c->cell_size);
}

/* 1 pushed; 0 full; -EPIPE closed; DIVERT (fast only) receivers wait: take the slow path. */
int ring_push(struct ringo_chan *c, const void *elem, bool fast)
{
    /* relaxed: a first guess; the CAS below checks it */
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
         * path, never an extra value. acquire: the cell's seq is read after it. */
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
            /* relaxed: another push took pos; a fresh guess for the next CAS */
            e = atomic_load_explicit(&c->enq_pos, memory_order_relaxed);
        }
    }
}

/* 1 popped; 0 empty (or a push still writing its cell); DIVERT (fast only) senders wait. */
int ring_pop(struct ringo_chan *c, void *out, bool fast)
{
    /* relaxed: a first guess; the CAS below checks it */
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
            /* relaxed: another pop took pos; a fresh guess for the next CAS */
            d = atomic_load_explicit(&c->deq_pos, memory_order_relaxed);
        }
    }
}

/* Values pushed and not yet popped, counting pushes and pops still in progress. A read of
 * enq_pos after our own RMW on it sees that RMW or later (coherence): the re-check of C3. */
int64_t ring_len_raw(struct ringo_chan *c)
{
    /* acquire: enq_pos is read before deq_pos, and both before the ring accesses that follow */
    uint64_t e = atomic_load_explicit(&c->enq_pos, memory_order_acquire) & POS_MASK;
    uint64_t d = atomic_load_explicit(&c->deq_pos, memory_order_acquire) & POS_MASK;
    return (int64_t)(e - d);
}

/* The other side is a few instructions into one cell: pause, and after 200 tries yield (its
 * thread was preempted). Called under c->lock, from the slow path only. */
static void ring_wait_pause(unsigned *n)
{
    if (++*n < 200)
        cpu_relax();
    else
        sched_yield();
}

/* Pop, waiting out a push that has reserved a cell but not yet filled it. 1 got; 0 empty. */
int ring_pop_wait(struct ringo_chan *c, void *out)
{
    unsigned spins = 0;
    for (;;) {
        if (ring_pop(c, out, false))
            return 1;
        if (ring_len_raw(c) <= 0)
            return 0;
        ring_wait_pause(&spins);
    }
}

/* Push, waiting out a pop that has taken a cell but not yet freed it. 1; 0 full; -EPIPE. */
int ring_push_wait(struct ringo_chan *c, const void *elem)
{
    unsigned spins = 0;
    for (;;) {
        int r = ring_push(c, elem, false);
        if (r != 0)
            return r;
        if (ring_len_raw(c) >= (int64_t)c->cap)
            return 0;
        ring_wait_pause(&spins);
    }
}
