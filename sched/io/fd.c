/* sched/io/fd.c — ringo_close, and the per-fd table that lets it end other goroutines' waits.
 *
 * Close (ringo_close while other goroutines wait on the fd; after Go's fdMutex and netpollblock):
 *   the fd table counts, per fd, the goroutine I/O calls in progress (FD_NOPS bits) and has a
 *   CLOSING bit. A call adds 1 and gives up with -EBADF if CLOSING was set; ringo_close, if
 *   calls are in progress, sets CLOSING (so no new call starts while it cancels), ends their
 *   waits, then waits until every counted call has left (the drain), turns CLOSING into CLOSE2
 *   and calls close(2); a call that starts meanwhile waits for it (F5), since after close(2)
 *   the number may be reused at once and name a new file. The drain is what makes a
 *   call that was between its EAGAIN and its registration when the cancels ran safe: it cannot
 *   register on a closed or reused number, because the number stays open until it leaves, and
 *   it leaves at once, because it re-checks CLOSING where its wait becomes visible to a cancel
 *   (F3) and CLOSING stays set until it left. Ending the waits: epoll workers directly (under
 *   their lock, -EBADF);
 *   the closer's own io_uring ring directly (it is the owner thread); every other io_uring
 *   worker whose bit is set in the fd's rings mask (F4) through a cancel request in its list
 *   plus a kick: the owner issues IORING_OP_ASYNC_CANCEL(IORING_ASYNC_CANCEL_FD|ALL) — rings
 *   are SINGLE_ISSUER — and acknowledges; the closer parks until the last acknowledgement (the
 *   cancel must reach the kernel while the fd still names the file), then closes. Cancelled
 *   calls return -EBADF. A worker that never held an operation on the fd, or whose last one
 *   completed, gets no request, so a worker stuck in a plain system call (or computing) delays
 *   only closes of fds it has operations on (issue 11, item 3). With more than FD_RING_BITS
 *   workers the mask is not kept and every io_uring worker gets a request.
 *
 * The rings mask (F4): worker W sets its bit (seq_cst fetch_or) when its count of ops on the fd
 *   goes 0 -> 1, before the F3 re-check and the SQE; it clears it (relaxed fetch_and) when the
 *   last of them is reaped; the counts live in W's own table (poll_uring.c). The closer sets
 *   CLOSING (seq_cst fetch_or on the word), then reads the mask (seq_cst load). The two sides
 *   write one location each and read the other's — the store-buffering (Dekker) pattern, which
 *   relaxed or acquire/release orders do not settle (on x86 the StoreLoad pair may reorder; on
 *   AArch64 too): so all four are seq_cst and lie in the single total order S. If W's bit-set
 *   precedes the closer's mask load in S, the load reads it or a later value of the mask; a
 *   later value without W's bit is a clear by W, which W makes only after reaping every op it
 *   had on the fd (the op completed: nothing to cancel). Otherwise the mask load precedes the
 *   bit-set, so the fetch_or of CLOSING precedes W's re-check (a seq_cst load, sequenced after
 *   the bit-set) in S, and the re-check reads it or a later value, all with CLOSING (F1 below):
 *   W returns -EBADF without an SQE. When the count was already above 0 (no RMW), the bit-set
 *   of W's first op on the fd, sequenced before this re-check, plays its part, and the bit
 *   stays set until the count is 0 again. A closer that sees the bit queues its request under
 *   W's list lock; W processes it on the owner thread either before the re-check (the lock
 *   orders the closer's fetch_or before it: CLOSING is seen) or after the SQE is filled (the
 *   cancel is submitted after it and finds it). An op that completes between the mask load and
 *   the cancel is harmless: the cancel finds nothing, and W acknowledges all the same.
 *
 * Memory orders on the fd word (the fast path stays one relaxed/release RMW per side):
 *   fd_enter's add is relaxed: RMWs of one word are totally ordered, so either the add sees
 *     CLOSING or the closer's fetch_or sees the count. The epoll F3 re-check is a relaxed load:
 *     the closer's fetch_or is sequenced before its cancel's lock release (epoll c.lock), the
 *     re-check after that lock's acquisition, so coherence makes it read the fetch_or or a
 *     later value; and every later value still has CLOSING, since the closer clears it only
 *     after reading the count 0, which needs our own fd_leave (sequenced after the re-check)
 *     first. The io_uring re-check is seq_cst (fd_ring_enter, the Dekker pair above).
 *   fd_leave's sub is release and the drain's load acquire: what a call did on the fd (its
 *     system calls included) happens before the closer's close(2). The wake-up of a parked
 *     closer goes through drain_lock (lost-wake-up argument at fd_drain).
 *   CLOSING -> CLOSE2 is a relaxed RMW (a call that reads CLOSE2 only waits); the clear of
 *     CLOSE2 after close(2) is release and the waiting call's load acquire: close(2) happens
 *     before the system calls of its retry.
 *
 * Invariants:
 *   F1  An fd word counts (FD_NOPS bits) the goroutine I/O calls between fd_enter and fd_leave
 *       on that fd; CLOSING and CLOSE2 are set only by ringo_close: CLOSING until the count
 *       drained to 0, then CLOSE2 (F5) until close(2) returned.
 *   F2  A closer that found calls in progress returns only after every worker that may hold an
 *       operation on the fd has ended it (epoll: directly; io_uring: cancel + acknowledgement,
 *       from the workers in the rings mask, F4) and every call counted in the word has left
 *       (the drain), unless some worker has no I/O backend (its calls block their thread and no
 *       cancel reaches them: no drain then).
 *   F3  A counted call never starts a wait once the closer's cancel for that worker has run: it
 *       re-checks CLOSING (fd_closing) where the cancel would have found it — epoll: under the
 *       worker's c.lock, with its record linked; io_uring: on the owner thread, just before
 *       filling its SQE (fd_ring_enter) — and returns -EBADF instead.
 *   F5  No goroutine call on fd reaches the kernel while ringo_close(fd) is on its way into
 *       close(2): every ringo_close sets CLOSING, so a call either was counted before it (and
 *       is ended and drained, F2) or sees CLOSING (-EBADF) or CLOSE2, the bit that replaces
 *       CLOSING in one RMW for the close(2) itself: such a call waits (yielding) until the
 *       closer clears CLOSE2 after close(2), then starts again on whatever the number names
 *       now (closed: -EBADF from the kernel). Before, a closer that saw no call in progress
 *       made no mark, and a read starting in that window made its SQE or epoll registration
 *       on the open fd, which close(2) did not end: it sat until its deadline (test_io
 *       read_starting_during_close_syscall; CI's TSan saw close(2) race epoll_ctl). The clear
 *       cannot come before close(2): a call on the old file could slip in; nor may CLOSING
 *       stay set across it: a call on a new file of that number would get -EBADF. The wait
 *       lasts one close(2) (longer only with SO_LINGER, whose close blocks).
 *   F4  With at most FD_RING_BITS workers, bit W of an fd's rings mask is set from before io_uring
 *       worker W's re-check for its first op on the fd until W reaped the last one; only W
 *       writes it. A closer sends cancel requests to the workers whose bit it read after setting
 *       CLOSING.
 * Depends on: sched.h (park protocol, deadlock accounting), sched/io/io.h (backends' cancel),
 *   poll_uring.c (calls fd_ring_enter/fd_ring_leave as F4 says).
 */
#include "sched/io/io.h"
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define FD_CHUNK_BITS 12
#define FD_CHUNK (1u << FD_CHUNK_BITS)
#define FD_TOP (1u << 19) /* FD_TOP * FD_CHUNK = 2^31: every possible fd */
#define FD_CLOSING 0x80000000u
#define FD_CLOSE2 0x40000000u
#define FD_NOPS 0x3fffffffu

/* Chunks are allocated on first use and never freed; the top level is zero pages until used. */
static _Atomic(struct fd_slot *) fdtop[FD_TOP];

static struct fd_slot *fd_slot_of(int fd, bool create)
{
    unsigned hi = (unsigned)fd >> FD_CHUNK_BITS, lo = (unsigned)fd & (FD_CHUNK - 1);
    if (hi >= FD_TOP)
        return NULL;
    /* acquire: pairs with the CAS release below (the chunk's zeroes are visible) */
    struct fd_slot *chunk = atomic_load_explicit(&fdtop[hi], memory_order_acquire);
    if (!chunk) {
        if (!create)
            return NULL;
        struct fd_slot *fresh = calloc(FD_CHUNK, sizeof *fresh);
        if (!fresh)
            return NULL; /* untracked: this call cannot be ended by ringo_close */
        struct fd_slot *exp = NULL;
        if (atomic_compare_exchange_strong_explicit(&fdtop[hi], &exp, fresh, memory_order_acq_rel,
                                                    memory_order_acquire)) {
            chunk = fresh;
        } else {
            free(fresh);
            chunk = exp;
        }
    }
    return &chunk[lo];
}

/* Closers parked in fd_drain (on their stacks), found by the fd word; under drain_lock. */
struct fd_drainer {
    struct fd_drainer *next;
    struct fd_slot *slot;
    struct g *g;
};
static pthread_mutex_t drain_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fd_drainer *drainers;

/* The last call left a word with CLOSING set: ready the closers draining it (if they parked
 * already; one that has not yet will read the count 0 under drain_lock). */
static void fd_wake_drainers(struct fd_slot *slot)
{
    struct fd_drainer *list = NULL;
    pthread_mutex_lock(&drain_lock);
    for (struct fd_drainer **pp = &drainers; *pp;) {
        struct fd_drainer *d = *pp;
        if (d->slot == slot) {
            *pp = d->next;
            d->next = list;
            list = d;
        } else {
            pp = &d->next;
        }
    }
    pthread_mutex_unlock(&drain_lock);
    while (list) {
        struct fd_drainer *next = list->next; /* on the closer's stack: read before its ready */
        sched_ready(list->g);
        sched_dl_add(&sched.nio, -1); /* I5: after the ready */
        list = next;
    }
}

/* One call leaves. release: what it did on the fd happens before a draining closer's close(2)
 * (the acquire load in fd_drain, or drain_lock and the ready). */
static void fd_put(struct fd_slot *slot)
{
    uint32_t old = atomic_fetch_sub_explicit(&slot->word, 1, memory_order_release);
    if (unlikely(old == (FD_CLOSING | 1)))
        fd_wake_drainers(slot);
}

int fd_enter(int fd, struct fd_slot **slotp)
{
    struct fd_slot *slot = fd_slot_of(fd, true);
    *slotp = slot;
    if (!slot)
        return 0;
    for (;;) {
        /* relaxed: RMWs of one word are totally ordered, so either this add sees CLOSING or the
         * closer's fetch_or sees our count; the cancel request itself travels under a lock */
        uint32_t old = atomic_fetch_add_explicit(&slot->word, 1, memory_order_relaxed);
        if (likely(!(old & (FD_CLOSING | FD_CLOSE2))))
            return 0;
        fd_put(slot); /* may be the last one a draining closer waits for */
        if (old & FD_CLOSING) {
            *slotp = NULL;
            return -EBADF;
        }
        /* F5: close(2) is in flight. The number may name a new file once it returns (an accept
         * elsewhere): wait for the closer's clear, then try again. acquire: pairs with the
         * clear's release (the close happened before our retry's system call). */
        while (atomic_load_explicit(&slot->word, memory_order_acquire) & FD_CLOSE2)
            ringo_yield();
    }
}

void fd_leave(struct fd_slot *slot)
{
    if (slot)
        fd_put(slot);
}

bool fd_closing(struct fd_slot *slot)
{
    /* relaxed: the caller holds the lock the closer's cancel took after setting CLOSING, and
     * CLOSING stays set while we are counted (top) */
    return slot && (atomic_load_explicit(&slot->word, memory_order_relaxed) & FD_CLOSING);
}

bool fd_ring_enter(struct fd_slot *slot, unsigned wid, bool first)
{
    if (!slot)
        return false;
    if (first) /* seq_cst: the Dekker pair with ringo_close's fetch_or and mask load (top) */
        atomic_fetch_or_explicit(&slot->rings, (uint64_t)1 << wid, memory_order_seq_cst);
    /* seq_cst: the other half of the pair: after our bit-set (this op's or the first one's) */
    return atomic_load_explicit(&slot->word, memory_order_seq_cst) & FD_CLOSING;
}

void fd_ring_leave(struct fd_slot *slot, unsigned wid)
{
    /* relaxed: a closer that reads the cleared bit needs nothing from us (our ops completed;
     * their callers' fd_leave orders their effects before its close(2)); a later bit-set of
     * ours is a seq_cst RMW again */
    atomic_fetch_and_explicit(&slot->rings, ~((uint64_t)1 << wid), memory_order_relaxed);
}

/* Test hook (tests/test_io.c): called by a ringo_close that waits for the calls in progress on
 * fd to leave, just before it parks. NULL otherwise. */
void (*sched_test_hook_close_draining)(int fd);

/* Test hook (tests/test_io.c): called by ringo_close just before close(2). NULL otherwise. */
void (*sched_test_hook_close_syscall)(int fd);

struct io_cancelreq *io_cancels_take(struct io_common *c)
{
    pthread_mutex_lock(&c->lock);
    struct io_cancelreq *list = c->cancels;
    c->cancels = NULL;
    atomic_store_explicit(&c->ncancel, 0, memory_order_relaxed); /* under lock, as the increments */
    pthread_mutex_unlock(&c->lock);
    return list;
}

void io_closewait_ack(struct io_closewait *cw)
{
    /* acq_rel: each ack releases its worker's finished cancel; the last one acquires them all
     * before readying the closer */
    if (atomic_fetch_sub_explicit(&cw->pending, 1, memory_order_acq_rel) == 1) {
        struct g *g = cw->g;
        if (!g)
            return; /* the exit hook's (poll_uring.c): it polls the count */
        sched_ready(g);
        sched_dl_add(&sched.nio, -1); /* I5: after the ready */
    }
}

void io_cancel_request(struct worker *v, struct io_cancelreq *r)
{
    struct io_common *c = v->io;
    pthread_mutex_lock(&c->lock);
    r->next = c->cancels;
    c->cancels = r;
    atomic_fetch_add_explicit(&c->ncancel, 1, memory_order_seq_cst); /* doorbell step 1 (io.c) */
    pthread_mutex_unlock(&c->lock);
    io_kick(v);
}

/* Whether worker i gets a cancel request, from the rings mask the closer read (F4). */
static inline bool wants_request(uint64_t rings, unsigned i)
{
    return i >= FD_RING_BITS || ((rings >> i) & 1);
}

/* End every goroutine wait on fd (see "Close" at the top). fd is still open; CLOSING is set. */
static void cancel_everywhere(int fd, struct fd_slot *slot)
{
    if (!sched_started())
        return;
    /* seq_cst: after ringo_close's seq_cst fetch_or of CLOSING, the Dekker pair of F4 (top) */
    uint64_t rings = fd_rings_tracked() ? atomic_load_explicit(&slot->rings, memory_order_seq_cst)
                                        : ~(uint64_t)0;
    struct worker *me = sched_cur_worker();
    bool on_owner = sched_cur_g(me) != NULL; /* a goroutine on me: may use me's ring itself */
    unsigned nremote = 0;
    unsigned nw = sched_nworkers();
    for (unsigned i = 0; i < nw; i++) {
        struct worker *v = sched.w[i];
        struct io_common *c = v->io;
        if (!c)
            continue;
        if (c->kind == IOK_EPOLL)
            epoll_be_cancel_fd(v, fd);
        else if (v == me && on_owner)
            uring_be_cancel_fd(v, fd);
        else if (wants_request(rings, i))
            nremote++;
    }
    if (nremote == 0)
        return;
    struct io_cancelreq local[16];
    struct io_cancelreq *reqs = nremote <= 16 ? local : malloc(nremote * sizeof *reqs);
    if (!reqs) {
        shutdown(fd, SHUT_RDWR); /* best effort without memory: ends socket waits */
        return;
    }
    struct io_closewait cw;
    struct g *self = sched_self();
    cw.g = self;
    atomic_store_explicit(&cw.pending, nremote + 1, memory_order_relaxed); /* published by the list locks */
    sched_park_prepare(self, WR_IO); /* forever: a plain thread's deadlock accounting needs it set now */
    sched_dl_add(&sched.nio, 1); /* I5: we wait on other rings */
    unsigned k = 0;
    for (unsigned i = 0; i < nw; i++) {
        struct worker *v = sched.w[i];
        struct io_common *c = v->io;
        if (!c || c->kind != IOK_URING || (v == me && on_owner) || !wants_request(rings, i))
            continue;
        struct io_cancelreq *r = &reqs[k++];
        r->fd = fd;
        r->ud = 0;
        r->cw = &cw;
        io_cancel_request(v, r);
    }
    io_closewait_ack(&cw); /* our own share: if every worker already acknowledged, ready ourselves */
    sched_park(self, -1, NULL, 0);
    if (reqs != local)
        free(reqs);
}

/* Wait until no call is counted in word (CLOSING is set, and the waits were ended). A call
 * leaving last with CLOSING set takes drain_lock after its sub; we read the count under
 * drain_lock after queueing ourselves: either our read comes after its critical section (and
 * so after its sub: we read 0) or it finds us queued and readies us. */
static void fd_drain(int fd, struct fd_slot *slot)
{
    for (unsigned i = 0, nw = sched_nworkers(); i < nw; i++)
        if (!sched.w[i]->io)
            return; /* F2: a worker without a backend blocks in calls nothing can end */
    struct g *self = sched_self();
    struct fd_drainer me = { .next = NULL, .slot = slot, .g = self };
    pthread_mutex_lock(&drain_lock);
    /* acquire: pairs with fd_put's release (the last call's sub, or an RMW after it) */
    if (!(atomic_load_explicit(&slot->word, memory_order_acquire) & FD_NOPS)) {
        pthread_mutex_unlock(&drain_lock);
        return;
    }
    me.next = drainers;
    drainers = &me;
    sched_park_prepare(self, WR_IO); /* before the unlock publishes us (park protocol) */
    sched_dl_add(&sched.nio, 1);     /* I5: calls in progress will ready us */
    pthread_mutex_unlock(&drain_lock);
    if (unlikely(sched_test_hook_close_draining))
        sched_test_hook_close_draining(fd);
    sched_park(self, -1, NULL, 0);
}

int ringo_close(int fd)
{
    if (fd < 0)
        return -EBADF;
    /* create: a call on fd may be making the chunk right now (F5: it must see our bits) */
    struct fd_slot *slot = fd_slot_of(fd, true);
    uint32_t old = FD_CLOSING; /* no slot (no memory): a plain close(2) */
    if (slot) {
        /* seq_cst: fd_enter's add needs only the one word's RMW order, but the rings mask read
         * in cancel_everywhere needs this in the single total order (the Dekker pair, top) */
        old = atomic_fetch_or_explicit(&slot->word, FD_CLOSING, memory_order_seq_cst);
        if (unlikely(old & (FD_CLOSING | FD_CLOSE2))) {
            /* another ringo_close of this number is in progress (a double close: the caller's
             * race, as with close(2)); leave its phases alone, ours is a plain close(2) */
            if (!(old & FD_CLOSING))
                atomic_fetch_and_explicit(&slot->word, ~FD_CLOSING, memory_order_relaxed);
            old = FD_CLOSING;
        } else if ((old & FD_NOPS) && sched_started()) {
            cancel_everywhere(fd, slot);
            fd_drain(fd, slot); /* F2: no call may still be on its way to a wait on fd */
        }
        if (!(old & FD_CLOSING))
            /* F5: CLOSING -> CLOSE2 in one RMW (CLOSING set and CLOSE2 clear: subtracting their
             * difference borrows nothing from the count). relaxed: a call that sees CLOSE2 only
             * waits, for the clear's release below. */
            atomic_fetch_sub_explicit(&slot->word, FD_CLOSING - FD_CLOSE2, memory_order_relaxed);
    }
    if (unlikely(sched_test_hook_close_syscall))
        sched_test_hook_close_syscall(fd);
    int r = close(fd);
    int err = errno;
    if (!(old & FD_CLOSING))
        /* F5: after close(2), so no call reaches the kernel with the old file in between;
         * release: the close happens before the waiting calls' retries (their acquire load) */
        atomic_fetch_and_explicit(&slot->word, ~FD_CLOSE2, memory_order_release);
    if (r < 0 && err != EINTR) /* EINTR: Linux has released the fd anyway; retrying would be wrong */
        return -err;
    return 0;
}
