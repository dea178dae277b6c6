/* chan/select.c — ringo_select: wait on several channel operations, take exactly one.
 *
 * Responsibility: ringo_select's cases, timeout and fairness (the first ready case in a random
 * order), a lock-free first pass over the buffered cases; its waiters share one claim word,
 * which the deadline competes for too.
 *
 * Shape. First, without any lock, walk the cases in the random poll order and try each
 * buffered one with the channel's own lock-free fast path (ring_push / ring_pop with fast =
 * true, as ringo_chan_try_send / try_recv do); the first that proceeds is the select's case
 * (S2). When none can be decided that way, the locked path runs as it always did: lock every
 * distinct channel (address order) and try each case in the same random order; if none is
 * ready, count ourselves on every channel and look once more (C3); then queue one sudog per
 * case in the same random order (S1), park until a claimer (or the deadline) wins the claim
 * word, and withdraw from every channel where a case is still counted (C6). A case woken with
 * RETRY starts over (C4), first pass included.
 *
 * Invariants.
 *   S1  Fairness: each call draws one uniformly random permutation of its cases (the poll
 *       order; drawn lazily, a forward Fisher-Yates shuffle: position 0 at the start, the rest
 *       once the first pass goes past it or the locked path runs, the same uniform permutation
 *       either way). Ready cases are tried in it, and a blocked select queues its waiters in
 *       it, so when several cases wait in the same queue (one channel, same direction) the one
 *       a later partner completes is uniformly random too (Go builds its enqueue order from
 *       pollorder). Only the locks go in address order.
 *   S2  The lock-free first pass changes no outcome the locked path could not have produced.
 *       (a) What it does is exactly a fast-path send or receive: a push whose CAS expects
 *           RWAIT clear, a pop whose CAS expects SWAIT clear (ring.c). So it never overtakes a
 *           queued waiter on the other side (DIVERT sends that case to the locked path), C3's
 *           argument covers it unchanged, and C1 holds (the CAS is the linearisation point).
 *           It queues nothing and counts nothing, so it has nothing to withdraw (C6), and
 *           after a success it does not touch that channel again.
 *       (b) Fairness (S1): it walks the same random poll order and stops at the first case
 *           that may be ready. A case it cannot decide without the lock (unbuffered, DIVERT,
 *           closed, a push or pop still in its cell) ends the pass with no effect, and the
 *           locked path starts over in the same order; only cases seen not ready (nil, open
 *           and empty, full) are skipped. So the case chosen is still the first ready one in
 *           a uniformly random permutation, i.e. uniform among the ready ones, and a closed
 *           (always ready) case is never passed over for a later buffered one. Each case is
 *           seen at its own instant, as in the locked path, where the rings also change
 *           under fast-path operations that take no lock.
 *       (c) Closed: a send's ring_push reports CLOSED itself (-EPIPE, final: the bit never
 *           clears, as in chan_send's fast path); a receive that finds the ring empty and the
 *           channel closed goes to the locked path, which drains it or reports closed (C5).
 *   Relied on: C3 (ring.c), C4 and C6 (chan.h), C5 (chan.c), the lock order (chan.h): locks
 *   taken in ascending address order, released in reverse.
 * Depends on: sched/sched.h (park protocol with a deadline, sched_fastrand), sched/list.h
 * (queueing the cases), sched/spinlock.h (channel locks), chan/chan.h: chan.c (the locked
 * attempt, uncount, wake list) and ring.c (the fast-path push and pop, the waiter counts).
 */
#include "chan/chan.h"
#include "sched/list.h"
#include "sched/sched.h"
#include "sched/spinlock.h"
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define CLAIM_TIMEOUT 0xFFFFFFFFu
#define SEL_RETRY INT_MIN /* select_once: woken with R_RETRY (C4), start over */

/* One select call: its cases, their poll order, the channels it locks, one sudog per case.
 * Small selects keep the arrays in the frame; larger ones allocate them. */
struct sel {
    struct ringo_case *cases;
    size_t n;
    int64_t deadline;             /* -1 none, 0 poll only (Go's default:), else ringo_now() clock */
    uint16_t *order;              /* a random permutation of the case indexes: the poll order */
    size_t nshuf;                 /* order[0 .. nshuf) drawn; the rest by order_draw_rest */
    struct ringo_chan **chans;    /* distinct channels in ascending address: the lock order */
    size_t nch;
    struct sudog *sg;             /* sg[i] waits for cases[i] */
    uint16_t order_small[64];
    struct ringo_chan *chans_small[64];
    struct sudog sg_small[16];
    uint8_t one_case_reason;      /* non-zero: a channel operation made as a one-case select
                                     (the _until forms, a group member's wait): its wait reason */
};

static void lock_all(struct ringo_chan **cs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        spin_lock(&cs[i]->lock);
}

static void unlock_all(struct ringo_chan **cs, size_t n)
{
    for (size_t i = n; i-- > 0;)
        spin_unlock(&cs[i]->lock);
}

static int check_cases(const struct ringo_case *cases, size_t n)
{
    if ((n && !cases) || n > 65536)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (cases[i].op != RINGO_RECV && cases[i].op != RINGO_SEND)
            return -EINVAL;
        if (cases[i].chan && cases[i].op == RINGO_SEND && !cases[i].elem && cases[i].chan->elem_size)
            return -EINVAL;
    }
    return 0;
}

static void sel_free(struct sel *s)
{
    if (s->order != s->order_small)
        free(s->order);
    if (s->chans != s->chans_small)
        free(s->chans);
    if (s->sg != s->sg_small)
        free(s->sg);
}

/* j uniform in [0, b), 1 <= b <= 2^16, exactly: Lemire's multiply-shift with its rejection
 * ("Fast random integer generation in an interval", 2019). m = x * b for a uniform 32-bit x;
 * j = m >> 32 comes from floor or ceil(2^32 / b) values of x, and the extra ones are those whose
 * low half is below 2^32 mod b. The division computing that only runs when the low half < b. */
static uint32_t rand_below(uint32_t b)
{
    uint64_t m = (uint64_t)sched_fastrand() * b;
    if ((uint32_t)m < b) {
        uint32_t t = -b % b; /* 2^32 mod b */
        while ((uint32_t)m < t)
            m = (uint64_t)sched_fastrand() * b;
    }
    return (uint32_t)(m >> 32);
}

/* The poll order (S1) is a forward Fisher-Yates shuffle drawn lazily: position k gets a
 * uniformly random one of the cases in order[k..n-1], the ones not placed yet. sel_init draws
 * position 0 only (one sched_fastrand, no division), which is all a first pass that succeeds
 * at once needs; this draws the rest, positions s->nshuf to n - 1. Whatever the first pass saw
 * at the positions before, the permutation is the same uniformly random one.
 * The remaining steps come in batches whose bounds multiply to P <= 2^16, each batch from one
 * 32-bit sched_fastrand x (Lemire's method batched, as in Brackett-Rozinsky and Lemire,
 * "Batched ranged random integer generation", 2024): for each step m = x * bound, j = m >> 32,
 * x = m mod 2^32 (the digits of x * P / 2^32 in mixed radix). Each tuple of j then comes from
 * floor or ceil(2^32 / P) values of x, the extra ones exactly those whose final x is below
 * 2^32 mod P: rejecting them makes the batch exactly uniform. A retry happens with probability
 * < P / 2^32 <= 2^-16, and the threshold's division runs only when the final x < P. */
static void order_draw_rest(struct sel *s)
{
    uint16_t *o = s->order;
    size_t n = s->n;
    for (size_t i = s->nshuf; i + 1 < n;) {
        size_t e = i; /* this batch: steps i .. e-1, step k's bound n - k */
        uint32_t prod = 1;
        while (e + 1 < n && e - i < 16 && (uint64_t)prod * (n - e) <= (1u << 16)) {
            prod *= (uint32_t)(n - e); /* n - i <= 2^16, so e > i */
            e++;
        }
        uint16_t j[16];
        for (;;) {
            uint32_t x = sched_fastrand();
            for (size_t k = i; k < e; k++) {
                uint64_t m = (uint64_t)x * (n - k);
                j[k - i] = (uint16_t)(m >> 32);
                x = (uint32_t)m;
            }
            if (x >= prod || x >= (uint32_t)-prod % prod) /* -prod % prod == 2^32 mod prod */
                break;
        }
        for (size_t k = i; k < e; k++) {
            size_t t = k + j[k - i];
            uint16_t v = o[k];
            o[k] = o[t];
            o[t] = v;
        }
        i = e;
    }
    s->nshuf = n;
}

/* The scratch arrays and the poll order. 0, or -ENOMEM. */
static int sel_init(struct sel *s, struct ringo_case *cases, size_t n, int64_t deadline)
{
    s->cases = cases;
    s->n = n;
    s->deadline = deadline;
    s->nch = 0;
    s->one_case_reason = 0;
    s->order = n <= 64 ? s->order_small : malloc(n * sizeof *s->order);
    s->chans = n <= 64 ? s->chans_small : malloc(n * sizeof *s->chans);
    s->sg = n <= 16 ? s->sg_small : malloc(n * sizeof *s->sg);
    if (!s->order || !s->chans || !s->sg) {
        sel_free(s);
        return -ENOMEM;
    }
    /* random poll order (S1): the first ready case in a uniformly random permutation is
     * uniform among the ready ones. Position 0 now, the rest when needed (order_draw_rest) */
    for (size_t i = 0; i < n; i++)
        s->order[i] = (uint16_t)i;
    if (n > 1) {
        size_t j = rand_below((uint32_t)n);
        s->order[0] = (uint16_t)j;
        s->order[j] = 0;
    }
    s->nshuf = n > 1 ? 1 : n;
    return 0;
}

/* Distinct channels in address order: the lock order. Redone every round (withdraw reuses
 * the array). */
static void collect_chans(struct sel *s)
{
    size_t nch = 0;
    for (size_t i = 0; i < s->n; i++) {
        struct ringo_chan *c = s->cases[i].chan;
        if (!c)
            continue;
        size_t k = 0;
        while (k < nch && s->chans[k] < c)
            k++;
        if (k < nch && s->chans[k] == c)
            continue;
        memmove(&s->chans[k + 1], &s->chans[k], (nch - k) * sizeof *s->chans);
        s->chans[k] = c;
        nch++;
    }
    s->nch = nch;
}

/* With every channel locked, try each case in the random order (only the buffered ones when
 * buffered_only). Returns the index of the case that proceeded (its result set), or -1. */
static int poll_pass(struct sel *s, _Atomic uint32_t *claim, bool buffered_only, struct sudog **wake)
{
    for (size_t k = 0; k < s->n; k++) {
        size_t i = s->order[k];
        struct ringo_chan *c = s->cases[i].chan;
        if (!c || (buffered_only && !c->cap))
            continue;
        int res;
        if (chan_try_locked(c, s->cases[i].op == RINGO_SEND, s->cases[i].elem, claim, &res, wake)) {
            s->cases[i].result = res;
            return (int)i;
        }
    }
    return -1;
}

/* ------------------------------------------------------------------ pass 0: no lock (S2) */
enum { FAST_NOT_READY, FAST_DONE, FAST_LOCKED };

/* One case without any lock: a buffered case tries the fast path of ringo_chan_try_send /
 * ringo_chan_try_recv, ring_push / ring_pop with fast = true, which refuses (DIVERT) while
 * anyone waits on the other side (C3). FAST_DONE: the case proceeded, its result set, and its
 * channel is not touched again (the fast path's promise: a program may free it now).
 * FAST_NOT_READY: it cannot proceed now (a nil channel; an open ring seen empty, a ring seen
 * full). FAST_LOCKED: it may be ready, but only the locked path can tell or do it: an unbuffered
 * channel, a waiter on the other side (DIVERT), a closed ring, or a push / pop still in its cell
 * (the locked path waits those out, so it counts them as ready). */
static int fast_case(struct ringo_case *k)
{
    struct ringo_chan *c = k->chan;
    if (!c)
        return FAST_NOT_READY;
    if (!c->cap)
        return FAST_LOCKED;
    if (k->op == RINGO_SEND) {
        int p = ring_push(c, k->elem, true);
        if (p == 1 || p == -EPIPE) {
            /* -EPIPE is final as in chan_send's fast path: CLOSED never clears (C5) */
            k->result = p == 1 ? 0 : -EPIPE;
            return FAST_DONE;
        }
        if (p == DIVERT)
            return FAST_LOCKED;
        /* full, or a pop still freeing its cell (ring_push_wait would wait for it) */
        return ring_len_raw(c) < (int64_t)c->cap ? FAST_LOCKED : FAST_NOT_READY;
    }
    int p = ring_pop(c, k->elem, true);
    if (p == 1) {
        k->result = 1;
        return FAST_DONE;
    }
    if (p == DIVERT)
        return FAST_LOCKED;
    /* Seen empty: open and drained (not ready), closed (ready: the locked path drains what is
     * left or reports closed, C5), or a push still writing its cell (ring_pop_wait would wait
     * for it). acquire: the deq_pos load stays after it, so a race makes e - d smaller, never
     * larger than it was when we read e. */
    uint64_t e = atomic_load_explicit(&c->enq_pos, memory_order_acquire);
    if (e & CLOSED_BIT)
        return FAST_LOCKED;
    /* relaxed: only compared with e; any value it returns is no older than e's */
    uint64_t d = atomic_load_explicit(&c->deq_pos, memory_order_relaxed);
    return (int64_t)((e & POS_MASK) - (d & POS_MASK)) > 0 ? FAST_LOCKED : FAST_NOT_READY;
}

/* Pass 0 (S2): the cases in the poll order, no lock taken. Returns the index of the case that
 * proceeded, or -1: the locked path must run, because a case that came before any fast-path
 * success may be ready (FAST_LOCKED), or because no case was ready. */
static int fast_pass(struct sel *s)
{
    for (size_t k = 0; k < s->n; k++) {
        if (k == s->nshuf)
            order_draw_rest(s);
        size_t i = s->order[k];
        int r = fast_case(&s->cases[i]);
        if (r == FAST_DONE)
            return (int)i;
        if (r == FAST_LOCKED)
            return -1; /* S2: never skip a case that may be ready */
    }
    return -1;
}

/* Count (inc) or uncount every case on its channel; every channel locked. */
static void count_all(struct sel *s, bool inc)
{
    for (size_t i = 0; i < s->n; i++) {
        if (!s->cases[i].chan)
            continue;
        if (inc)
            chan_wait_inc(s->cases[i].chan, s->cases[i].op == RINGO_SEND); /* C3 */
        else
            chan_wait_dec(s->cases[i].chan, s->cases[i].op == RINGO_SEND);
    }
}

/* Queue one sudog per case, all sharing *claim; every channel locked, every case counted.
 * In the poll order, not the case order (S1): a partner that comes later takes the first of our
 * waiters in a queue. The locks are all held, so the enqueue order has no bearing on the lock
 * order. */
static void enqueue_all(struct sel *s, struct g *self, _Atomic uint32_t *claim)
{
    for (size_t k = 0; k < s->n; k++) {
        size_t i = s->order[k];
        struct ringo_chan *c = s->cases[i].chan;
        if (!c)
            continue;
        bool snd = s->cases[i].op == RINGO_SEND;
        s->sg[i] = (struct sudog){ .g = self, .c = c, .elem = s->cases[i].elem, .claim = claim,
                                   .claim_val = (uint32_t)i + 1, .is_send = snd, .counted = true };
        dlist_push_back(snd ? &c->sendq : &c->recvq, &s->sg[i].node); /* counted above */
    }
}

/* After the park: withdraw from every channel where a case of ours is still counted (C6). Only
 * we uncount our stale cases, so these flags are stable; the winning case was uncounted by its
 * claimer if its result is final, and that channel may already be freed: do not touch it then.
 * Reuses s->chans for the channels it locks. */
static void withdraw(struct sel *s)
{
    size_t nw = 0;
    for (size_t k = 0; k < s->nch; k++) {
        bool mine = false;
        for (size_t i = 0; i < s->n; i++)
            if (s->cases[i].chan == s->chans[k] && s->sg[i].counted)
                mine = true;
        if (mine)
            s->chans[nw++] = s->chans[k]; /* still in address order */
    }
    lock_all(s->chans, nw);
    for (size_t i = 0; i < s->n; i++) {
        struct ringo_chan *c = s->cases[i].chan;
        if (!c || !s->sg[i].counted)
            continue;
        if (s->sg[i].node.linked)
            dlist_unlink(s->cases[i].op == RINGO_SEND ? &c->sendq : &c->recvq, &s->sg[i].node);
        chan_uncount(c, &s->sg[i]);
    }
    unlock_all(s->chans, nw);
}

/* One round: poll, count and look again, queue, park, withdraw. Returns the index of the case
 * that proceeded, -EAGAIN, -ETIMEDOUT, or SEL_RETRY. */
static int select_once(struct sel *s)
{
    struct sudog *wake = NULL;
    /* pass 0 (S2): the first case of the poll order that can proceed without a lock, as long
     * as no case before it might be ready; else the locked passes below decide, unchanged */
    int done = fast_pass(s);
    if (done >= 0)
        return done;
    order_draw_rest(s); /* the whole poll order, for the locked passes and the enqueue (S1) */
    collect_chans(s);

    /* pass 1 (and the re-check of C3/C4): everything locked, try each case in random order */
    lock_all(s->chans, s->nch);
    /* this round's; the sudogs point at it until withdraw. Initialised, not stored: published
     * by the unlock that publishes the sudogs */
    _Atomic uint32_t claim = 0;
    done = poll_pass(s, &claim, false, &wake);
    if (done >= 0) {
        unlock_all(s->chans, s->nch);
        chan_wake_list(wake);
        return done;
    }
    if (s->deadline == 0) {
        unlock_all(s->chans, s->nch);
        return -EAGAIN;
    }
    if (s->deadline > 0 && ringo_now() >= s->deadline) {
        unlock_all(s->chans, s->nch);
        return -ETIMEDOUT;
    }
    /* Count ourselves on every channel (C3), then look once more: a fast-path op that ran
     * before our counters were visible left its trace in a ring. We are not queued yet, so
     * nothing (not even a settle inside our own attempt) can claim us; we hold every lock,
     * so no unbuffered channel changes meanwhile and only buffered cases need the look. */
    count_all(s, true);
    done = poll_pass(s, &claim, true, &wake);
    if (done >= 0) {
        count_all(s, false);
        unlock_all(s->chans, s->nch);
        chan_wake_list(wake);
        return done;
    }

    struct g *self = sched_self();
    enqueue_all(s, self, &claim);
    sched_park_prepare_until(self, s->one_case_reason ? s->one_case_reason : s->nch ? WR_SELECT : WR_SELECT_NONE,
                             s->deadline);
    unlock_all(s->chans, s->nch);
    int pr = sched_park(self, s->deadline, &claim, CLAIM_TIMEOUT);
    withdraw(s);
    if (pr < 0)
        return pr; /* -ETIMEDOUT, or -ECANCELED (a member's group was cancelled: group.c) */
    /* acquire: pairs with the claimer's acq_rel CAS (it wrote the result before readying) */
    uint32_t won = atomic_load_explicit(&claim, memory_order_acquire) - 1;
    if (s->sg[won].result == R_RETRY)
        return SEL_RETRY; /* C4: claimed by close or by a claimer that lost the value */
    s->cases[won].result = s->sg[won].result;
    return (int)won;
}

/* The select with an absolute deadline (-1 none, 0 do not wait); reason: sel.one_case_reason. */
static int select_until_r(struct ringo_case *cases, size_t n, int64_t deadline, uint8_t reason)
{
    int ret = check_cases(cases, n);
    if (ret < 0)
        return ret;
    if (deadline != 0 && unlikely(sched_cur_canceled()))
        return -ECANCELED; /* group.c: every later blocking call of a cancelled member */
    struct sel s;
    if (sel_init(&s, cases, n, deadline) < 0)
        return -ENOMEM;
    s.one_case_reason = reason;
    do
        ret = select_once(&s);
    while (ret == SEL_RETRY); /* a retry collects the channels again */
    sel_free(&s);
    return ret;
}

static int select_until(struct ringo_case *cases, size_t n, int64_t deadline)
{
    return select_until_r(cases, n, deadline, 0);
}

int ringo_select(struct ringo_case *cases, size_t n, int64_t timeout)
{
    return select_until(cases, n, timeout < 0 ? -1 : timeout == 0 ? 0 : ringo_now() + timeout);
}

/* The channel operations with a deadline (issue 14; Boost.Fiber's push_wait_until, libdill's
 * chsend/chrecv): a one-case select on the absolute deadline, so they share its claim word
 * with the timer (a value is either taken or not, never lost to the deadline). A deadline
 * already past tries once. */
static int one_case_until(ringo_chan *c, int op, void *elem, int64_t deadline)
{
    if (!c)
        return -EINVAL; /* as ringo_chan_send/recv (a NULL channel is not Go's nil channel here) */
    struct ringo_case k = { .chan = c, .op = op, .elem = elem };
    int r = select_until_r(&k, 1, deadline < 0 ? -1 : deadline == 0 ? 1 : deadline,
                           op == RINGO_SEND ? WR_CHAN_SEND : WR_CHAN_RECV);
    if (r == 0)
        return k.result;
    return r == -EAGAIN ? -ETIMEDOUT : r;
}

/* chan.c: a group member's blocking send or receive that must wait (a claim park: group.c) */
int chan_op_cancellable(ringo_chan *c, bool send, void *elem)
{
    return one_case_until(c, send ? RINGO_SEND : RINGO_RECV, elem, -1);
}

int ringo_chan_send_until(ringo_chan *c, const void *elem, int64_t deadline)
{
    return one_case_until(c, RINGO_SEND, (void *)elem, deadline);
}

int ringo_chan_recv_until(ringo_chan *c, void *out, int64_t deadline)
{
    return one_case_until(c, RINGO_RECV, out, deadline);
}
