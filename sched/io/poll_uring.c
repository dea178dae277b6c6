/* sched/io/poll_uring.c — the io_uring backend: one ring per worker.
 *
 * Responsibility: a goroutine's I/O call becomes an SQE on its current worker's ring with a
 *   completion record (struct uring_req) on the goroutine's own stack; the goroutine parks; the
 *   worker reaps CQEs in sched_io_poll and readies the owners. The idle sleep is one
 *   io_uring_enter(GETEVENTS) that also waits on the doorbell (a FUTEX_WAIT, or an eventfd READ).
 *
 * Invariants:
 *   U1  A ring and the fields marked "ring" below are touched only under b->lock. The owner
 *       thread takes it for every session with its ring (goroutines fill SQEs on the worker they
 *       run on; the worker submits, reaps and sleeps, holding it across the sleep's enter). The
 *       one other taker is the sysmon (sched/sysmon.c), with a trylock, and only for a worker it
 *       found stuck (a goroutine has kept it for 10 ms): uring_be_rescue submits what waits in
 *       the SQ, runs the cancel list and reaps, readying the owners into the global queue, so
 *       I/O never waits for a thread that computes or blocks (issue 11, item 3). A trylock that
 *       fails means the owner is using its ring: it is not stuck. Shared rings need the flags
 *       of kernel_iface/uring.c's step 4 (no SINGLE_ISSUER, DEFER_TASKRUN, COOP_TASKRUN, no
 *       registered ring fd); with RINGO_DISABLE=ring_handoff rings keep those flags, only the
 *       owner thread ever takes the lock, and the rescue does nothing. The lock costs one CAS
 *       and one store per session, uncontended: B8/B9 measurements are in README.md.
 *       Other threads reach a ring otherwise only through the doorbell and the cancel list
 *       (struct io_common).
 *   U2  A uring_req stays valid until every CQE of its SQEs is reaped: 1 for a lone op, 2 for
 *       an op with a linked IORING_OP_LINK_TIMEOUT. req->pending counts them down, and the
 *       goroutine is readied only at zero, so the record on its stack never goes away under
 *       the kernel or the reaper.
 *   U3  sched.nio (I5) is incremented before the SQE can reach the kernel and decremented only
 *       after sched_ready of the owner (batched per reap).
 *   U4  Deadlines: op + LINK_TIMEOUT(IORING_TIMEOUT_ABS, CLOCK_MONOTONIC). The op is returned as
 *       -ETIMEDOUT only when the timeout fired (-ETIME) and the op was cancelled (-ECANCELED /
 *       -EINTR): a cancelled op consumed nothing. An op that completed in the race keeps its
 *       result. An op cancelled by ringo_close (IORING_ASYNC_CANCEL_FD) ends with -EBADF.
 *   U5  Submission is batched: SQEs wait in the SQ until sched_io_poll / sched_io_flush (the
 *       worker runs out of work, or every 64 schedules) or until URING_BATCH are pending. (One
 *       exception, in io.c: ringo_accept on an O_NONBLOCK listener tries accept4 first.)
 *   U6  With DEFER_TASKRUN, completions exist only after the owner enters with GETEVENTS; the
 *       kernel raises IORING_SQ_TASKRUN (TASKRUN_FLAG) when there is such work, so poll enters
 *       only then, or to submit: no syscall when nothing is pending.
 *   U7  fdc (owner only) maps each fd with ops of this ring not yet reaped to their number (an
 *       op counts from just before its F3 re-check until its final CQE is reaped); its bit in
 *       the fd's rings mask is set while the number is above 0 (fd.c F4: a 0 -> 1 step calls
 *       fd_ring_enter with first, the step back to 0 fd_ring_leave). Open addressing, linear
 *       probing, at most half full; memory: twice the peak number of distinct fds with ops in
 *       flight here, times 8 bytes (it shrinks again when an eighth full).
 *
 *   U8  The owner reaps at most as many completions per poll as its run queue has room for
 *       (sched_poll_budget: less one for a kicked-out runnext, at least one, so a ring that
 *       stays full spills at most once per poll instead of starving completions):
 *       the rest wait in the CQ, in completion order, for the next poll (every 64 schedules,
 *       F1, or when the worker runs out of work). Reaping them all overflowed the ring: a full
 *       ring spills half of itself to the global queue (proc.c F6), where those goroutines wait
 *       for a batch of 8 every 64 schedules — B9's p99 at 1,000 connections (issue 11, 2b). The
 *       kernel's CQ (8x the SQ, at least 4096) holds them instead, and the idle sleep never
 *       starts while the CQ has entries. The sysmon's rescue has no bound: it fills no ring.
 *
 *   U9  The lend pool of ringo_recv_lend (struct lend_pool below; lend.c's top comment).
 *
 *   U10 A group member's op can be cancelled by its group (group.c): its wait registers a
 *       grp_cancel (in its frame) with the member's cl_ fields; a canceller posts its request
 *       (IORING_OP_ASYNC_CANCEL of the op's user_data) to the ring's owner through the cancel
 *       list, as ringo_close does. The op then ends with -ECANCELED and the call returns
 *       -ECANCELED. The member does not leave the frame that holds the request and the req
 *       whose address is the user_data before the owner acknowledged it, so the cancel can
 *       never hit a later op that reuses the address (ABA).
 *
 * user_data: the address of a uring_req (>= 4096, 8-aligned) for the op, that address | 1 for
 *   its link timeout; the small constants below for the runtime's own SQEs.
 * Contexts: uring_be_do on a goroutine; poll/flush/sleep/cancel on the owner (g0, or a goroutine
 *   of that worker switching out); uring_be_rescue on the sysmon; uring_be_ring from any thread.
 * Depends on: sched/io/io.h, kernel_iface/uring, kernel_iface/futex, sched.h (park protocol),
 *   sched/io/fd.c (fd_ring_enter/fd_ring_leave: the close re-check before an SQE, F3, and the
 *   rings mask, F4).
 */
#include "sched/io/io.h"
#include "sched/spinlock.h"
#include "kernel_iface/clock.h"
#include "kernel_iface/futex.h"
#include "kernel_iface/uring.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>
#include <time.h>

#define UD_BELL 1u     /* the doorbell's FUTEX_WAIT or eventfd READ */
#define UD_IGNORE 2u   /* ASYNC_CANCEL for ringo_close, or a filler NOP: the result is of no interest */
#define UD_MIN_PTR 4096u
#define URING_BATCH 32 /* SQEs pending before a goroutine submits them itself (U5) */

struct uring_req {
    struct g *g;                  /* readied when pending reaches 0 */
    int32_t res;                  /* the op's CQE res */
    int32_t tres;                 /* the link timeout's CQE res (deadline only) */
    uint32_t pending;             /* CQEs still due (U2); the owner worker only */
    int fd;                       /* counted in fdc when slot != NULL (U7) */
    uint32_t cflags;              /* the op's CQE flags (IORING_CQE_F_BUFFER: the buffer id) */
    bool lend;                    /* an IOP_RECV_LEND (U9: counted in the pool's inflight) */
    struct fd_slot *slot;
    struct __kernel_timespec ts;  /* LINK_TIMEOUT reads it at submission */
};

/* U9: the lend pool (lend.c): LEND_COUNT buffers in one mapping and a provided-buffer ring
 * (IORING_REGISTER_PBUF_RING, group LEND_BGID) from which the kernel picks one when data
 * arrives for a ringo_recv_lend. Made by the owner under the ring lock on first use; buffers go
 * back from any thread under plock (never the ring lock, which the owner holds while it
 * sleeps): the kernel reads the ring's tail with acquire, io_uring_buf_ring_advance stores it
 * with release after the entry.
 * Giving the pages back (issue 13, P6): a buffer the kernel filled stays resident. Once the
 * sysmon sees a dirty pool lend nothing for a whole decay tick it sets `want` and kicks the
 * owner, which on its way to sleep, under the ring lock (no RECV_LEND can be filled then), with
 * no RECV_LEND in flight (the kernel picks no buffer) and none out (`out` counts buffers from
 * the reap that carried them until their recycle), drops every page with MADV_DONTNEED. The
 * buffers stay in the ring: their next use faults zero pages in. */
#define LEND_COUNT 128u
#define LEND_BGID 0
struct lend_pool {
    struct io_uring_buf_ring *br; /* LEND_COUNT entries, under plock */
    char *base;                   /* LEND_COUNT slots of LEND_HDR + LEND_SIZE */
    _Atomic uint32_t plock;       /* sched/spinlock.h */
    unsigned inflight;            /* ring: RECV_LEND ops not reaped */
    _Atomic uint32_t out;         /* buffers reaped and not yet recycled: acq_rel */
    _Atomic bool dirty;           /* pages may be resident: owner sets, owner clears (relaxed) */
    _Atomic bool want;            /* the sysmon asks for the pages back (relaxed; a kick follows) */
    uint64_t seen;                /* the sysmon's: st_lent at its last tick */
};

struct fdc_ent {
    int fd;                       /* -1: empty */
    uint32_t n;                   /* ops of this ring on fd not yet reaped (U7) */
};

struct uring_be {
    struct io_common c;           /* first: w->io points here */
    _Atomic uint32_t lock;        /* U1: sched/spinlock.h */
    struct io_uring ring;         /* ring (U1) */
    unsigned unsub;               /* ring: SQEs filled but not yet submitted */
    unsigned inflight;            /* ring: ops (not timeouts) whose final CQE is not reaped yet */
    bool bell_armed;              /* ring: the doorbell wait is in the ring */
    bool shared;                  /* the sysmon may take the lock (U1); constant */
    bool futex;                   /* doorbell = FUTEX_WAIT on c.bell (else eventfd READ) */
    bool taskrun_flag;            /* the kernel flags pending task work (U6) */
    bool defer;
    int efd;                      /* eventfd doorbell (no FUTEX_WAIT); -1 otherwise */
    uint64_t efd_buf;             /* the eventfd READ's target */
    unsigned wid;                 /* the owner's worker id: its bit in rings masks (U7) */
    struct fdc_ent *fdc;          /* ring: U7; NULL until the first tracked op */
    /* U9: made once under the ring lock; read by recyclers of any thread (acquire: they got a
     * buffer of it, through the owner's completion and their goroutine's resume) */
    _Atomic(struct lend_pool *) lend;
    bool lend_failed;             /* ring: no pool can be made here; RECV_LEND gets -ENOBUFS */
    unsigned fdc_cap, fdc_used;   /* ring: a power of 2 (or 0), entries in use */
};

static inline struct uring_be *be_of(struct worker *w)
{
    return (struct uring_be *)w->io;
}

/* ---- fdc: the owner's count of unreaped ops per fd (U7) */
#define FDC_MIN 16u

static inline unsigned fdc_home(int fd, unsigned cap)
{
    uint32_t h = (uint32_t)fd * 0x9e3779b1u; /* Fibonacci hashing: the high bits mix best */
    return (unsigned)(h ^ (h >> 16)) & (cap - 1);
}

/* Rehash into cap entries; false (table unchanged) without memory. */
static bool fdc_resize(struct uring_be *b, unsigned cap)
{
    struct fdc_ent *t = malloc(cap * sizeof *t);
    if (!t)
        return false;
    for (unsigned i = 0; i < cap; i++)
        t[i].fd = -1;
    for (unsigned i = 0; i < b->fdc_cap; i++) {
        if (b->fdc[i].fd < 0)
            continue;
        unsigned j = fdc_home(b->fdc[i].fd, cap);
        while (t[j].fd >= 0)
            j = (j + 1) & (cap - 1);
        t[j] = b->fdc[i];
    }
    free(b->fdc);
    b->fdc = t;
    b->fdc_cap = cap;
    return true;
}

/* The entry of fd, inserted (n = 0) if absent; NULL without memory for it. */
static struct fdc_ent *fdc_get(struct uring_be *b, int fd)
{
    if ((b->fdc_used + 1) * 2 > b->fdc_cap && !fdc_resize(b, b->fdc_cap ? b->fdc_cap * 2 : FDC_MIN) &&
        b->fdc_used + 1 >= b->fdc_cap)
        return NULL; /* cannot grow and no free entry would be left for probing to stop at */
    unsigned mask = b->fdc_cap - 1, i = fdc_home(fd, b->fdc_cap);
    while (b->fdc[i].fd >= 0 && b->fdc[i].fd != fd)
        i = (i + 1) & mask;
    if (b->fdc[i].fd < 0) {
        b->fdc[i].fd = fd;
        b->fdc[i].n = 0;
        b->fdc_used++;
    }
    return &b->fdc[i];
}

/* One op on fd is gone (reaped, or never submitted); true when it was the last one. */
static bool fdc_put(struct uring_be *b, int fd)
{
    unsigned mask = b->fdc_cap - 1, i = fdc_home(fd, b->fdc_cap);
    while (b->fdc[i].fd != fd)
        i = (i + 1) & mask; /* present: counted ops keep their entry */
    if (--b->fdc[i].n != 0)
        return false;
    /* delete by backward shift: move up every later entry of the run whose home does not lie
     * cyclically in (i, j], so no lookup meets a hole before its key */
    for (unsigned j = (i + 1) & mask; b->fdc[j].fd >= 0; j = (j + 1) & mask) {
        unsigned h = fdc_home(b->fdc[j].fd, b->fdc_cap);
        bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
        if (!stays) {
            b->fdc[i] = b->fdc[j];
            i = j;
        }
    }
    b->fdc[i].fd = -1;
    b->fdc_used--;
    if (b->fdc_cap > 4 * FDC_MIN && b->fdc_used * 8 < b->fdc_cap)
        (void)fdc_resize(b, b->fdc_cap / 2); /* keep memory near the current need (U7) */
    return true;
}

/* The op's final CQE was reaped: uncount it (U7). */
static inline void fdc_done(struct uring_be *b, struct uring_req *req)
{
    if (req->slot && fdc_put(b, req->fd))
        fd_ring_leave(req->slot, b->wid);
}

int uring_be_init(struct worker *w, const struct kif_uring_caps *caps)
{
    struct uring_be *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    unsigned sq = sched.ring_entries ? sched.ring_entries : 256;
    unsigned cq = sq * 8 < 4096 ? 4096 : sq * 8;
    if (cq > 65536)
        cq = 65536;
    int r = kif_uring_init(&b->ring, sq, cq, caps);
    if (r < 0) {
        free(b);
        return r;
    }
    b->c.kind = IOK_URING;
    b->wid = w->id;
    atomic_store_explicit(&b->c.bell, 1, memory_order_relaxed); /* awake; published by the start barrier */
    pthread_mutex_init(&b->c.lock, NULL);
    b->futex = caps->futex_wait;
    b->taskrun_flag = caps->taskrun_flag;
    b->defer = caps->defer_taskrun;
    b->shared = caps->shared;
    b->efd = -1;
    if (!b->futex) {
        b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (b->efd < 0) {
            r = -errno;
            kif_uring_exit(&b->ring);
            free(b);
            return r;
        }
    }
    w->io = &b->c;
    return 0;
}

/* P5 (io.c io_at_exit), on the exiting thread: cancel every request of w's ring, pass after
 * pass until one finds none (ENOENT) or the bound is spent. The ring's lock is not taken (its
 * owner may sleep holding it): IORING_REGISTER_SYNC_CANCEL goes through the kernel's own ring
 * lock, and the CQEs it makes are reaped by the owner as usual (or never: the process exits).
 * Owner-only rings (SINGLE_ISSUER: RINGO_DISABLE=ring_handoff) refuse it (-EEXIST), and
 * kernels before 6.0 lack it (-EINVAL): their files are released by the ring's teardown. */
/* The exit hook's requests to owner-only rings (P5): static, since the hook stops waiting for
 * the acknowledgements at its bound and returns while an owner may still hold one. */
static struct io_cancelreq exit_reqs[FD_RING_BITS];
static struct io_closewait exit_cw; /* .g NULL: acknowledged by count only (io_closewait_ack) */

int uring_be_exit_request(struct worker *w)
{
    if (w->id >= FD_RING_BITS)
        return 0;
    struct io_cancelreq *r = &exit_reqs[w->id];
    r->fd = -1;
    r->ud = 0;
    r->cw = &exit_cw;
    atomic_fetch_add_explicit(&exit_cw.pending, 1, memory_order_relaxed); /* the list lock publishes it */
    io_cancel_request(w, r);
    return 1;
}

void uring_be_exit_wait(int64_t timeout_ns)
{
    int64_t end = clk_now() + timeout_ns;
    /* acquire: pairs with the acks' acq_rel decrements */
    while (atomic_load_explicit(&exit_cw.pending, memory_order_acquire) != 0 && clk_now() < end) {
        struct timespec ts = { 0, 200000 };
        nanosleep(&ts, NULL);
    }
}

int uring_be_exit_cancel(struct worker *w, int64_t timeout_ns)
{
    struct uring_be *b = be_of(w);
    /* relaxed stats counters (the ring's own fields are the lock holder's): nothing was ever
     * left in flight here, so no pass (and no 1 ms pause) at every exit */
    if (atomic_load_explicit(&b->c.st_submitted, memory_order_relaxed) ==
        atomic_load_explicit(&b->c.st_completed, memory_order_relaxed))
        return 0;
    int64_t end = clk_now() + timeout_ns;
    for (int quiet = 0; quiet < 2;) {
        int64_t left = end - clk_now();
        if (left <= 0)
            return -ETIME;
        int r = kif_uring_cancel_all_sync(&b->ring, left);
        if (r == -ENOENT)
            quiet++;
        else if (r == 0)
            quiet = 0;
        else
            return r; /* -EEXIST (owner-only: ask the owner), -EINVAL (before 6.0), -ETIME */
        if (quiet == 1) {
            struct timespec ts = { 0, 1000000 }; /* 1 ms: a flush in progress submits */
            nanosleep(&ts, NULL);
        }
    }
    return 0;
}

/* Submit what is pending; unsub keeps what the kernel did not take (it stays in the SQ). */
static void submit(struct uring_be *b, bool getevents)
{
    if (getevents)
        kif_uring_submit_getevents(&b->ring);
    else
        kif_uring_submit(&b->ring);
    b->unsub = io_uring_sq_ready(&b->ring);
}

/* Reap CQEs until max goroutines are readied (or the CQ is empty); ready the goroutines whose
 * records are complete. Returns how many. U8: the rest stay in the CQ, in order. */
static int reap_max(struct uring_be *b, int max)
{
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    int nready = 0;
    io_uring_for_each_cqe(&b->ring, head, cqe) {
        if (nready >= max)
            break;
        seen++;
        uint64_t ud = cqe->user_data;
        if (ud < UD_MIN_PTR || ud == LIBURING_UDATA_TIMEOUT) {
            if (ud == UD_BELL)
                b->bell_armed = false;
            continue;
        }
        struct uring_req *req = (struct uring_req *)(uintptr_t)(ud & ~(uint64_t)1);
        if (ud & 1) {
            req->tres = cqe->res;
        } else {
            req->res = cqe->res;
            req->cflags = cqe->flags;
            if (cqe->flags & IORING_CQE_F_BUFFER) /* U9: out from here until its recycle */
                atomic_fetch_add_explicit(&atomic_load_explicit(&b->lend, memory_order_relaxed)->out, 1,
                                          memory_order_relaxed); /* ring lock held: the pool is ours */
        }
        if (--req->pending == 0) {
            b->inflight--;
            if (req->lend)
                atomic_load_explicit(&b->lend, memory_order_relaxed)->inflight--; /* U9, ring lock */
            fdc_done(b, req);
            struct g *g = req->g; /* the last touch of req (U2): g may run and return at once */
            sched_ready(g);
            nready++;
        }
    }
    io_uring_cq_advance(&b->ring, seen);
    if (nready) {
        sched_stat_add(&b->c.st_completed, (uint64_t)nready);
        /* seq_cst, after the readies (U3, I5): the deadlock check pairs with it */
        sched_dl_add(&sched.nio, -(int64_t)nready);
    }
    return nready;
}

static int reap(struct uring_be *b)
{
    return reap_max(b, INT32_MAX);
}

/* An SQE for the owner's own use, submitting (and reaping, to make CQ room) if the SQ is full. */
static struct io_uring_sqe *own_sqe(struct uring_be *b)
{
    for (int tries = 0; tries < 4; tries++) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
        if (sqe)
            return sqe;
        submit(b, true);
        reap(b);
    }
    return NULL;
}

/* Issue IORING_ASYNC_CANCEL_FD|ALL for fd now, after everything already filled. The kernel runs
 * the cancel inside this submit, while fd still names the file (the closer has not closed it).
 * ud != 0: cancel the one op with that user_data instead (a group's cancel, U10). */
static bool prep_cancel(struct uring_be *b, int fd, uint64_t ud)
{
    if (b->inflight == 0)
        return false; /* nothing of this ring can wait on fd */
    struct io_uring_sqe *sqe = own_sqe(b);
    if (!sqe)
        return false;
    if (ud)
        io_uring_prep_cancel64(sqe, ud, 0);
    else if (fd >= 0)
        io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    else /* P5: the exit hook's request for an owner-only ring: everything */
        io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
    sqe->user_data = UD_IGNORE;
    b->unsub++;
    return true;
}

static void flush_cancels(struct uring_be *b)
{
    for (int tries = 0; b->unsub && tries < 4; tries++) {
        submit(b, true);
        if (b->unsub)
            reap(b); /* -EBUSY: CQ overflow backlog; make room and go again */
    }
}

void uring_be_cancel_fd(struct worker *w, int fd)
{
    struct uring_be *b = be_of(w);
    spin_lock(&b->lock);
    if (prep_cancel(b, fd, 0))
        flush_cancels(b);
    spin_unlock(&b->lock);
}

static void process_cancels(struct uring_be *b)
{
    struct io_cancelreq *list = io_cancels_take(&b->c);
    bool any = false;
    for (struct io_cancelreq *r = list; r; r = r->next)
        any |= prep_cancel(b, r->fd, r->ud);
    if (any)
        flush_cancels(b);
    while (list) {
        struct io_cancelreq *next = list->next; /* read before the ack: the closer frees list */
        io_closewait_ack(list->cw);
        list = next;
    }
}

/* poll's work, under the lock: cancels, submission, at most max completions (U6, U8). */
static int poll_locked(struct uring_be *b, int max)
{
    /* relaxed peek: the sleep re-checks with seq_cst after resetting the doorbell */
    if (unlikely(atomic_load_explicit(&b->c.ncancel, memory_order_relaxed) != 0))
        process_cancels(b);
    if (b->unsub) {
        submit(b, true);
    } else if (b->inflight || b->bell_armed) {
        if (b->taskrun_flag || !b->defer ? kif_uring_needs_enter(&b->ring)
                                         : io_uring_cq_ready(&b->ring) == 0)
            submit(b, true); /* U6: run the deferred completions, or flush a CQ overflow */
    }
    if (io_uring_cq_ready(&b->ring) == 0)
        return 0;
    return reap_max(b, max);
}

int uring_be_poll(struct worker *w)
{
    struct uring_be *b = be_of(w);
    int max = sched_poll_budget(w); /* U8 */
    spin_lock(&b->lock);
    int n = poll_locked(b, max);
    spin_unlock(&b->lock);
    return n;
}

int uring_be_rescue(struct worker *w)
{
    struct uring_be *b = be_of(w);
    if (!b->shared || !spin_trylock(&b->lock))
        return 0; /* U1: not a shared ring, or its owner is using it (so it is not stuck) */
    /* on the sysmon thread: reap's sched_ready puts the owners on the global queue and wakes
     * a worker (sched_enqueue_ready from a plain thread) */
    int n = poll_locked(b, INT32_MAX); /* into the global queue: no ring to fit */
    spin_unlock(&b->lock);
    return n;
}

void uring_be_flush(struct worker *w)
{
    struct uring_be *b = be_of(w);
    spin_lock(&b->lock);
    if (b->unsub)
        submit(b, false);
    spin_unlock(&b->lock);
}

static void sleep_locked(struct worker *w, struct uring_be *b, int64_t deadline);
static void lend_reclaim_locked(struct uring_be *b);

void uring_be_sleep(struct worker *w, int64_t deadline)
{
    struct uring_be *b = be_of(w);
    spin_lock(&b->lock); /* held across the enter: a sleeping owner is not stuck (U1) */
    lend_reclaim_locked(b);
    sleep_locked(w, b, deadline);
    spin_unlock(&b->lock);
}

static void sleep_locked(struct worker *w, struct uring_be *b, int64_t deadline)
{
    if (io_uring_cq_ready(&b->ring) != 0)
        return; /* completions to reap first */
    if (io_bell_reset_and_check(w, &b->c)) {
        io_bell_quiet(&b->c);
        return;
    }
    if (!b->bell_armed) {
        uint64_t reaped = atomic_load_explicit(&b->c.st_completed, memory_order_relaxed); /* own */
        struct io_uring_sqe *sqe = own_sqe(b);
        if (atomic_load_explicit(&b->c.st_completed, memory_order_relaxed) != reaped) {
            /* the SQ was full and own_sqe reaped to make room: goroutines are runnable now */
            if (sqe) {
                io_uring_prep_nop(sqe);
                sqe->user_data = UD_IGNORE;
                b->unsub++;
            }
            io_bell_quiet(&b->c);
            return;
        }
        if (sqe) {
            if (b->futex)
                kif_prep_futex_wait(sqe, (uint32_t *)&b->c.bell, 0);
            else
                io_uring_prep_read(sqe, b->efd, &b->efd_buf, sizeof b->efd_buf, 0);
            sqe->user_data = UD_BELL;
            b->unsub++;
            b->bell_armed = true;
        }
    }
    if (b->bell_armed)
        kif_uring_wait(&b->ring, deadline);
    else /* no SQE for the doorbell (the kernel refuses submissions): do not sleep past 1 ms */
        kif_uring_wait(&b->ring, deadline >= 0 && deadline < clk_now() + 1000000 ? deadline : clk_now() + 1000000);
    b->unsub = io_uring_sq_ready(&b->ring);
    io_bell_quiet(&b->c);
}

void uring_be_ring(struct worker *w)
{
    struct uring_be *b = be_of(w);
    if (b->futex) {
        futex_wake((uint32_t *)&b->c.bell, 1);
    } else {
        uint64_t one = 1;
        (void)!write(b->efd, &one, sizeof one); /* EAGAIN: the counter is full, the wait ends anyway */
    }
}

static void prep_op(struct io_uring_sqe *sqe, const struct io_args *a)
{
    switch (a->op) {
    case IOP_READ:
        io_uring_prep_read(sqe, a->fd, a->buf, (unsigned)a->n, (uint64_t)-1); /* current position */
        break;
    case IOP_WRITE:
        io_uring_prep_write(sqe, a->fd, a->buf, (unsigned)a->n, (uint64_t)-1);
        break;
    case IOP_RECV:
        io_uring_prep_recv(sqe, a->fd, a->buf, a->n, a->flags);
        break;
    case IOP_SEND:
        io_uring_prep_send(sqe, a->fd, a->buf, a->n, a->flags);
        break;
    case IOP_ACCEPT:
        io_uring_prep_accept(sqe, a->fd, a->addr, a->addrlen, a->flags);
        break;
    case IOP_CONNECT:
        io_uring_prep_connect(sqe, a->fd, a->caddr, a->caddrlen);
        break;
    case IOP_POLL:
        io_uring_prep_poll_add(sqe, a->fd, (unsigned)(unsigned short)a->events);
        break;
    case IOP_SENDMSG:
        io_uring_prep_sendmsg(sqe, a->fd, a->msg, (unsigned)a->flags);
        break;
    case IOP_RECVMSG:
        io_uring_prep_recvmsg(sqe, a->fd, a->msg, (unsigned)a->flags);
        break;
    case IOP_RECV_LEND: /* U9: the kernel picks the buffer when data arrives */
        io_uring_prep_recv(sqe, a->fd, NULL, LEND_SIZE, a->flags);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = LEND_BGID;
        break;
    }
}

static ssize_t fill_locked(struct uring_be *b, struct g *self, const struct io_args *a, struct uring_req *rq,
                           unsigned need);

/* U10: what a group's canceller posts for a member's op (group.c calls fn under the member's
 * cl_lock, at most once per park). */
struct grp_cancel {
    struct sched_cancel_io io;
    struct worker *w;              /* the ring the op is on */
    struct io_cancelreq req;
    struct io_closewait cw;
};

static void grp_cancel_post(struct sched_cancel_io *io)
{
    struct grp_cancel *gc = (struct grp_cancel *)(void *)io;
    /* relaxed: the list lock of io_cancel_request publishes it with the request */
    atomic_store_explicit(&gc->cw.pending, 1, memory_order_relaxed);
    io_cancel_request(gc->w, &gc->req);
}

ssize_t uring_be_do(struct worker *w, struct g *self, const struct io_args *a)
{
    struct uring_be *b = be_of(w);
    struct uring_req req;
    unsigned need = a->deadline >= 0 ? 2 : 1;
    spin_lock(&b->lock); /* U1: until our SQEs are in the ring (never across the park) */
    ssize_t r = a->op == IOP_RECV_LEND && !uring_be_lend_ready(w) ? -ENOBUFS : fill_locked(b, self, a, &req, need);
    spin_unlock(&b->lock);
    if (r != 0)
        return r;
    struct grp_cancel gc;
    bool posted = false;
    if (unlikely(self->grp != NULL)) {
        /* U10: a group member's op can be ended by its group's cancel (group.c) */
        gc.io.fn = grp_cancel_post;
        gc.w = w;
        gc.req.fd = -1;
        gc.req.ud = (uint64_t)(uintptr_t)&req;
        gc.req.cw = &gc.cw;
        gc.cw.g = NULL; /* acknowledged by count: we poll it below */
        atomic_store_explicit(&gc.cw.pending, 0, memory_order_relaxed); /* before publication */
        if (sched_cancel_arm_io(self, &gc.io)) {
            grp_cancel_post(&gc.io); /* cancelled already: ask our own ring */
            posted = true;
        }
    }
    sched_park(self, -1, NULL, 0);
    if (unlikely(self->grp != NULL)) {
        posted |= sched_cancel_disarm_io(self);
        /* U10: gc and req live in this frame: stay until the owner has processed the request
         * (it acknowledges after its submit, and never touches gc again) */
        if (posted)
            /* acquire: pairs with io_closewait_ack's acq_rel decrement */
            while (atomic_load_explicit(&gc.cw.pending, memory_order_acquire) != 0)
                ringo_yield();
    }
    if (a->op == IOP_RECV_LEND && (req.cflags & IORING_CQE_F_BUFFER)) {
        /* U9: the buffer of b's pool the kernel filled (or took for an end of file) */
        uint32_t bid = req.cflags >> IORING_CQE_BUFFER_SHIFT;
        if (req.res > 0) {
            /* acquire: the pool pointer was published by its maker (this ring's owner) */
            struct lend_pool *lp = atomic_load_explicit(&b->lend, memory_order_acquire);
            char *hdr = lp->base + (size_t)bid * (LEND_HDR + LEND_SIZE);
            lend_hdr_init_pool(hdr, b->wid, bid);
            /* stats only, relaxed; an RMW: we may have resumed on another worker's thread */
            atomic_fetch_add_explicit(&b->c.st_lent, 1, memory_order_relaxed);
            *a->lent = hdr + LEND_HDR;
        } else {
            uring_be_lend_recycle(b->wid, bid);
        }
    }
    /* resumed, perhaps on another worker (I4): only req is read from here on */
    if (req.res == -ECANCELED || req.res == -EINTR) {
        if (need == 2 && req.tres == -ETIME)
            return -ETIMEDOUT; /* U4 */
        if (req.res == -ECANCELED)
            return posted ? -ECANCELED : -EBADF; /* a group's cancel (U10), or ringo_close */
    }
    return req.res;
}

/* uring_be_do's part under the lock: the SQE(s) of req, or IO_RETRY / -errno (nothing filled). */
static ssize_t fill_locked(struct uring_be *b, struct g *self, const struct io_args *a, struct uring_req *rq,
                           unsigned need)
{
    if (io_uring_sq_space_left(&b->ring) < need) {
        /* submit only: reaping or cancel processing here could run before our SQE exists */
        submit(b, false);
        if (io_uring_sq_space_left(&b->ring) < need)
            return IO_RETRY;
    }
    /* U7, F4: count the op on fd first; the 0 -> 1 step publishes our bit in the rings mask
     * before the re-check, so a closer either sees the bit (and sends us its cancel) or this
     * re-check sees CLOSING (fd.c top: the Dekker pair) */
    rq->slot = fd_rings_tracked() ? a->fdslot : NULL;
    rq->fd = a->fd;
    bool first = false;
    if (rq->slot) {
        struct fdc_ent *e = fdc_get(b, a->fd);
        if (!e)
            return -ENOMEM;
        first = e->n++ == 0;
    }
    /* F3: under the ring lock, so after any cancel this ring processed (a later one is queued
     * after our SQE and cancels it): a close in progress has ended, or will end, every other
     * wait on fd, and waits for us to leave */
    if (fd_ring_enter(a->fdslot, b->wid, first)) {
        fdc_done(b, rq);
        return -EBADF;
    }
    rq->g = self;
    rq->res = 0;
    rq->tres = 0;
    rq->pending = need;
    rq->lend = a->op == IOP_RECV_LEND;
    if (rq->lend) {
        struct lend_pool *lp = atomic_load_explicit(&b->lend, memory_order_relaxed); /* ring lock */
        lp->inflight++;
        atomic_store_explicit(&lp->dirty, true, memory_order_relaxed); /* the owner's flag */
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
    prep_op(sqe, a);
    sqe->user_data = (uint64_t)(uintptr_t)rq;
    if (a->deadline >= 0) {
        /* both SQEs go to the kernel in the same submit: nothing submits between these gets */
        sqe->flags |= IOSQE_IO_LINK;
        rq->ts.tv_sec = a->deadline / 1000000000LL;
        rq->ts.tv_nsec = a->deadline % 1000000000LL;
        struct io_uring_sqe *t = io_uring_get_sqe(&b->ring);
        io_uring_prep_link_timeout(t, &rq->ts, IORING_TIMEOUT_ABS);
        t->user_data = (uint64_t)(uintptr_t)rq | 1;
    }
    b->unsub += need;
    b->inflight++;
    sched_stat_add(&b->c.st_submitted, 1);
    /* before the SQE can complete: a reaper (this worker, or the sysmon, U1) that finds us
     * still PARKING leaves the enqueue to our switch-out (park.c) */
    sched_park_prepare(self, WR_IO);
    sched_dl_add(&sched.nio, 1); /* U3: before submission */
    if (b->unsub >= URING_BATCH)
        submit(b, false);
    return 0;
}

/* ---- U9: the lend pool */

bool uring_be_lend_ready(struct worker *w)
{
    struct uring_be *b = be_of(w);
    if (likely(atomic_load_explicit(&b->lend, memory_order_relaxed) != NULL)) /* ring lock held: ours */
        return true;
    if (b->lend_failed)
        return false;
    b->lend_failed = true; /* until it succeeds below */
    if (sched.disable & DIS_PBUF_RING)
        return false;
    struct lend_pool *lp = calloc(1, sizeof *lp);
    if (!lp)
        return false;
    size_t slots = (size_t)LEND_COUNT * (LEND_HDR + LEND_SIZE);
    size_t ringsz = LEND_COUNT * sizeof(struct io_uring_buf);
    /* untouched pages cost nothing: a buffer's pages become resident when the kernel first
     * fills it (lend.c L5 gives them back when the load is over) */
    lp->base = mmap(NULL, slots, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    void *ring = mmap(NULL, ringsz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (lp->base == MAP_FAILED || ring == MAP_FAILED)
        goto fail;
    lp->br = ring;
    io_uring_buf_ring_init(lp->br);
    struct io_uring_buf_reg reg = { .ring_addr = (uint64_t)(uintptr_t)ring, .ring_entries = LEND_COUNT,
                                    .bgid = LEND_BGID };
    int r = io_uring_register_buf_ring(&b->ring, &reg, 0); /* the owner: fine for SINGLE_ISSUER */
    if (r < 0) {
        if (sched.debug)
            fprintf(stderr, "ringo: worker %u: no provided-buffer ring (%s): ringo_recv_lend polls, then "
                            "receives into a heap buffer\n", w->id, strerror(-r));
        goto fail;
    }
    for (uint32_t i = 0; i < LEND_COUNT; i++)
        io_uring_buf_ring_add(lp->br, lp->base + (size_t)i * (LEND_HDR + LEND_SIZE) + LEND_HDR, LEND_SIZE,
                              (unsigned short)i, io_uring_buf_ring_mask(LEND_COUNT), (int)i);
    io_uring_buf_ring_advance(lp->br, LEND_COUNT);
    /* release: recyclers on other threads read the pool through this pointer */
    atomic_store_explicit(&b->lend, lp, memory_order_release);
    b->lend_failed = false;
    return true;
fail:
    if (lp->base && lp->base != MAP_FAILED)
        munmap(lp->base, slots);
    if (ring != MAP_FAILED)
        munmap(ring, ringsz);
    free(lp);
    return false;
}

void uring_be_lend_recycle(unsigned wid, uint32_t bid)
{
    struct uring_be *b = be_of(sched.w[wid]);
    /* acquire: pairs with the pool's publication (the buffer came from it) */
    struct lend_pool *lp = atomic_load_explicit(&b->lend, memory_order_acquire);
    SCHED_CHECK(lp && bid < LEND_COUNT, "ringo_buf_release: buffer %u of worker %u has no pool", bid, wid);
    spin_lock(&lp->plock);
    io_uring_buf_ring_add(lp->br, lp->base + (size_t)bid * (LEND_HDR + LEND_SIZE) + LEND_HDR, LEND_SIZE,
                          (unsigned short)bid, io_uring_buf_ring_mask(LEND_COUNT), 0);
    io_uring_buf_ring_advance(lp->br, 1); /* release store of the tail: the kernel's acquire */
    spin_unlock(&lp->plock);
    /* release: the owner's reclaim that reads 0 sees this buffer back in the ring */
    atomic_fetch_sub_explicit(&lp->out, 1, memory_order_release);
}

/* P6, the owner under its ring lock on its way to sleep (U9). */
static void lend_reclaim_locked(struct uring_be *b)
{
    struct lend_pool *lp = atomic_load_explicit(&b->lend, memory_order_relaxed); /* ring lock: ours */
    if (likely(!lp || !atomic_load_explicit(&lp->want, memory_order_relaxed)))
        return;
    /* acquire: pairs with the recycles' release (every buffer is home) */
    if (lp->inflight != 0 || atomic_load_explicit(&lp->out, memory_order_acquire) != 0)
        return; /* in use after all: asked again at the next quiet tick */
    atomic_store_explicit(&lp->want, false, memory_order_relaxed);
    madvise(lp->base, (size_t)LEND_COUNT * (LEND_HDR + LEND_SIZE), MADV_DONTNEED);
    atomic_store_explicit(&lp->dirty, false, memory_order_relaxed);
}

bool uring_be_reclaim(struct worker *w)
{
    struct uring_be *b = be_of(w);
    /* acquire: the pool's publication */
    struct lend_pool *lp = atomic_load_explicit(&b->lend, memory_order_acquire);
    if (!lp || !atomic_load_explicit(&lp->dirty, memory_order_relaxed)) /* a hint */
        return false;
    uint64_t lent = atomic_load_explicit(&b->c.st_lent, memory_order_relaxed); /* activity, as a hint */
    if (lent != lp->seen)
        atomic_store_explicit(&lp->want, false, memory_order_relaxed); /* lending again: not now */
    else if (!atomic_load_explicit(&lp->want, memory_order_relaxed)) {
        atomic_store_explicit(&lp->want, true, memory_order_relaxed);
        io_kick(w); /* its sleep ends; it gives the pages back before the next one */
    }
    lp->seen = lent;
    return true;
}
