/* sched/io/fd.c — ringo_close, and the per-fd table that lets it end other goroutines' waits.
 *
 * Close (ringo_close while other goroutines wait on the fd): the fd table counts, per fd, the
 *   goroutine I/O calls in progress (FD_NOPS bits) and has a CLOSING bit. A call adds 1 and
 *   gives up with -EBADF if CLOSING was set; ringo_close, if calls are in progress, sets
 *   CLOSING (so no new call starts while it cancels), ends them, clears CLOSING and only then
 *   calls close(2) (after it the number may be reused at once). Ending the calls: epoll
 *   workers directly (under their lock, -EBADF);
 *   the closer's own io_uring ring directly (it is the owner thread); every other io_uring
 *   worker through a cancel request in its list plus a kick: the owner issues
 *   IORING_OP_ASYNC_CANCEL(IORING_ASYNC_CANCEL_FD|ALL) — rings are SINGLE_ISSUER — and
 *   acknowledges; the closer parks until the last acknowledgement (the cancel must reach the
 *   kernel while the fd still names the file), then closes. Cancelled calls return -EBADF.
 *   Both sides RMW the same word, so one of them sees the other (no fence needed).
 *
 * Invariants:
 *   F1  An fd word counts (FD_NOPS bits) the goroutine I/O calls between fd_enter and fd_leave
 *       on that fd; CLOSING is set only by ringo_close, and cleared by it before close(2).
 *   F2  A closer that found calls in progress returns only after every worker that may hold an
 *       operation on the fd has ended it (epoll: directly; io_uring: cancel + acknowledgement).
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
        atomic_fetch_sub_explicit(word, 1, memory_order_relaxed);
        *wordp = NULL;
        return -EBADF;
    }
    return 0;
}

void fd_leave(_Atomic uint32_t *word)
{
    if (word)
        atomic_fetch_sub_explicit(word, 1, memory_order_relaxed); /* see fd_enter */
}

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

int ringo_close(int fd)
{
    if (fd < 0)
        return -EBADF;
    _Atomic uint32_t *word = fd_word(fd, false); /* no chunk: no call ever waited on this fd */
    /* relaxed peek: a call that starts after it races with this close as it would with close(2) */
    if (word && (atomic_load_explicit(word, memory_order_relaxed) & FD_NOPS)) {
        uint32_t old = atomic_fetch_or_explicit(word, FD_CLOSING, memory_order_relaxed); /* see fd_enter */
        if (old & FD_NOPS)
            cancel_everywhere(fd);
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

