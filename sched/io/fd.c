/* sched/io/fd.c — ringo_close, and the per-fd table that lets it end other goroutines' waits.
 *
 * Close (ringo_close while other goroutines wait on the fd; after Go's fdMutex and netpollblock):
 *   the fd table counts, per fd, the goroutine I/O calls in progress (FD_NOPS bits) and has a
 *   CLOSING bit. A call adds 1 and gives up with -EBADF if CLOSING was set; ringo_close, if
 *   calls are in progress, sets CLOSING (so no new call starts while it cancels), ends their
 *   waits, then waits until every counted call has left (the drain), clears CLOSING and only
 *   then calls close(2) (after it the number may be reused at once). The drain is what makes a
 *   call that was between its EAGAIN and its registration when the cancels ran safe: it cannot
 *   register on a closed or reused number, because the number stays open until it leaves, and
 *   it leaves at once, because it re-checks CLOSING where its wait becomes visible to a cancel
 *   (F3) and CLOSING stays set until it left. Ending the waits: epoll workers directly (under
 *   their lock, -EBADF);
 *   the closer's own io_uring ring directly (it is the owner thread); every other io_uring
 *   worker through a cancel request in its list plus a kick: the owner issues
 *   IORING_OP_ASYNC_CANCEL(IORING_ASYNC_CANCEL_FD|ALL) — rings are SINGLE_ISSUER — and
 *   acknowledges; the closer parks until the last acknowledgement (the cancel must reach the
 *   kernel while the fd still names the file), then closes. Cancelled calls return -EBADF.
 *   Both sides RMW the same word, so one of them sees the other (no fence needed).
 *
 * Memory orders on the fd word (the fast path stays one relaxed/release RMW per side):
 *   fd_enter's add is relaxed: RMWs of one word are totally ordered, so either the add sees
 *     CLOSING or the closer's fetch_or sees the count. The F3 re-checks are relaxed loads: the
 *     closer's fetch_or is sequenced before its cancel's lock release (epoll c.lock; io_uring
 *     the cancel list's lock, or the same thread), the re-check after that lock's acquisition,
 *     so coherence makes it read the fetch_or or a later value; and every later value still has
 *     CLOSING, since the closer clears it only after reading the count 0, which needs our own
 *     fd_leave (sequenced after the re-check) first.
 *   fd_leave's sub is release and the drain's load acquire: what a call did on the fd (its
 *     system calls included) happens before the closer's close(2). The wake-up of a parked
 *     closer goes through drain_lock (lost-wake-up argument at fd_drain).
 *
 * Invariants:
 *   F1  An fd word counts (FD_NOPS bits) the goroutine I/O calls between fd_enter and fd_leave
 *       on that fd; CLOSING is set only by ringo_close, and cleared by it after the count
 *       drained to 0, before close(2).
 *   F2  A closer that found calls in progress returns only after every worker that may hold an
 *       operation on the fd has ended it (epoll: directly; io_uring: cancel + acknowledgement)
 *       and every call counted in the word has left (the drain), unless some worker has no I/O
 *       backend (its calls block their thread and no cancel reaches them: no drain then).
 *   F3  A counted call never starts a wait once the closer's cancel for that worker has run: it
 *       re-checks CLOSING (fd_closing) where the cancel would have found it — epoll: under the
 *       worker's c.lock, with its record linked; io_uring: on the owner thread, just before
 *       filling its SQE — and returns -EBADF instead.
 * Depends on: sched.h (park protocol, deadlock accounting), sched/io/io.h (backends' cancel).
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
#define FD_NOPS 0x7fffffffu

/* Chunks are allocated on first use and never freed; the top level is zero pages until used. */
static _Atomic(_Atomic uint32_t *) fdtop[FD_TOP];

static _Atomic uint32_t *fd_word(int fd, bool create)
{
    unsigned hi = (unsigned)fd >> FD_CHUNK_BITS, lo = (unsigned)fd & (FD_CHUNK - 1);
    if (hi >= FD_TOP)
        return NULL;
    /* acquire: pairs with the CAS release below (the chunk's zeroes are visible) */
    _Atomic uint32_t *chunk = atomic_load_explicit(&fdtop[hi], memory_order_acquire);
    if (!chunk) {
        if (!create)
            return NULL;
        _Atomic uint32_t *fresh = calloc(FD_CHUNK, sizeof *fresh);
        if (!fresh)
            return NULL; /* untracked: this call cannot be ended by ringo_close */
        _Atomic uint32_t *exp = NULL;
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
    _Atomic uint32_t *word;
    struct g *g;
};
static pthread_mutex_t drain_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fd_drainer *drainers;

/* The last call left a word with CLOSING set: ready the closers draining it (if they parked
 * already; one that has not yet will read the count 0 under drain_lock). */
static void fd_wake_drainers(_Atomic uint32_t *word)
{
    struct fd_drainer *list = NULL;
    pthread_mutex_lock(&drain_lock);
    for (struct fd_drainer **pp = &drainers; *pp;) {
        struct fd_drainer *d = *pp;
        if (d->word == word) {
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
static void fd_put(_Atomic uint32_t *word)
{
    uint32_t old = atomic_fetch_sub_explicit(word, 1, memory_order_release);
    if (unlikely(old == (FD_CLOSING | 1)))
        fd_wake_drainers(word);
}

int fd_enter(int fd, _Atomic uint32_t **wordp)
{
    _Atomic uint32_t *word = fd_word(fd, true);
    *wordp = word;
    if (!word)
        return 0;
    /* relaxed: RMWs of one word are totally ordered, so either this add sees CLOSING or the
     * closer's fetch_or sees our count; the cancel request itself travels under a lock */
    uint32_t old = atomic_fetch_add_explicit(word, 1, memory_order_relaxed);
    if (old & FD_CLOSING) {
        fd_put(word); /* may be the last one a draining closer waits for */
        *wordp = NULL;
        return -EBADF;
    }
    return 0;
}

void fd_leave(_Atomic uint32_t *word)
{
    if (word)
        fd_put(word);
}

bool fd_closing(_Atomic uint32_t *word)
{
    /* relaxed: the caller holds (or runs after, on the same thread) the lock the closer's
     * cancel took after setting CLOSING, and CLOSING stays set while we are counted (top) */
    return word && (atomic_load_explicit(word, memory_order_relaxed) & FD_CLOSING);
}

/* Test hook (tests/test_io.c): called by a ringo_close that waits for the calls in progress on
 * fd to leave, just before it parks. NULL otherwise. */
void (*sched_test_hook_close_draining)(int fd);

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
        sched_ready(g);
        sched_dl_add(&sched.nio, -1); /* I5: after the ready */
    }
}

/* End every goroutine wait on fd (see "Close" at the top). fd is still open. */
static void cancel_everywhere(int fd)
{
    if (!sched_started())
        return;
    struct worker *me = sched_cur_worker();
    bool on_owner = sched_cur_g(me) != NULL; /* a goroutine on me: may use me's ring itself */
    unsigned nremote = 0;
    for (unsigned i = 0; i < sched.nprocs; i++) {
        struct worker *v = sched.w[i];
        struct io_common *c = v->io;
        if (!c)
            continue;
        if (c->kind == IOK_EPOLL)
            epoll_be_cancel_fd(v, fd);
        else if (v == me && on_owner)
            uring_be_cancel_fd(v, fd);
        else
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
    for (unsigned i = 0; i < sched.nprocs; i++) {
        struct worker *v = sched.w[i];
        struct io_common *c = v->io;
        if (!c || c->kind != IOK_URING || (v == me && on_owner))
            continue;
        struct io_cancelreq *r = &reqs[k++];
        r->fd = fd;
        r->cw = &cw;
        pthread_mutex_lock(&c->lock);
        r->next = c->cancels;
        c->cancels = r;
        atomic_fetch_add_explicit(&c->ncancel, 1, memory_order_seq_cst); /* doorbell step 1 */
        pthread_mutex_unlock(&c->lock);
        io_kick(v);
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
static void fd_drain(int fd, _Atomic uint32_t *word)
{
    for (unsigned i = 0; i < sched.nprocs; i++)
        if (!sched.w[i]->io)
            return; /* F2: a worker without a backend blocks in calls nothing can end */
    struct g *self = sched_self();
    struct fd_drainer me = { .next = NULL, .word = word, .g = self };
    pthread_mutex_lock(&drain_lock);
    /* acquire: pairs with fd_put's release (the last call's sub, or an RMW after it) */
    if (!(atomic_load_explicit(word, memory_order_acquire) & FD_NOPS)) {
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
    _Atomic uint32_t *word = fd_word(fd, false); /* no chunk: no call ever waited on this fd */
    /* relaxed peek: a call that starts after it races with this close as it would with close(2) */
    if (word && (atomic_load_explicit(word, memory_order_relaxed) & FD_NOPS)) {
        uint32_t old = atomic_fetch_or_explicit(word, FD_CLOSING, memory_order_relaxed); /* see fd_enter */
        if ((old & FD_NOPS) && sched_started()) {
            cancel_everywhere(fd);
            fd_drain(fd, word); /* F2: no call may still be on its way to a wait on fd */
        }
        /* clear before close(2): once closed, the number may be reused at once (an accept on
         * another worker), and its new calls must not see CLOSING */
        if (!(old & FD_CLOSING))
            atomic_fetch_and_explicit(word, ~FD_CLOSING, memory_order_relaxed);
    }
    int r = close(fd);
    int err = errno;
    if (r < 0 && err != EINTR) /* EINTR: Linux has released the fd anyway; retrying would be wrong */
        return -err;
    return 0;
}

