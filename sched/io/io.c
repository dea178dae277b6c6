/* sched/io/io.c — the I/O calls of API.md, and the poller the scheduler calls (sched/poller.h).
 *
 * Responsibility: ringo_read/write/recv/send/accept/connect/poll, the message calls (ringo_sendmsg,
 *   ringo_recvmsg, ringo_sendto, ringo_recvfrom), ringo_sendfile, ringo_shutdown; sched_poller, the ops table
 *   of sched/poller.h (per-worker backend setup, poll, flush, idle sleep, kick, stats); choosing
 *   the backend once at start-up. ringo_close and the fd table: fd.c; name resolution and TCP
 *   helpers: tcp.c; Unix sockets: unix.c; lent buffers: lend.c; RINGO_DEBUG=fdcheck: fdcheck.c.
 *
 * Where a call runs:
 *   goroutine, io_uring worker  an SQE on the current worker's ring, park (poll_uring.c)
 *   goroutine, epoll worker     a non-blocking attempt; on EAGAIN park until the worker's epoll
 *                               reports readiness (poll_epoll.c); again
 *   plain thread                the system call itself; with a deadline, ppoll() first
 *   A deadline already past means "try once without waiting" on every path. ringo I/O calls wait
 *   for readiness even on O_NONBLOCK fds (io_uring does so; the other paths follow), so a call
 *   returns -EAGAIN never because of O_NONBLOCK. ringo_tcp_listen returns O_NONBLOCK listeners,
 *   and on io_uring ringo_accept first tries accept4 on such a listener (a burst of queued
 *   connections is taken without a scheduling round each). The epoll path makes a listening
 *   socket O_NONBLOCK the first time ringo_accept waits on it (as Go does with every fd):
 *   accept(2) has no per-call non-blocking flag.
 *
 * Backend choice (once, on the first worker thread): io_uring unless RINGO_DISABLE=io_uring or
 *   the kernel refuses it (ENOSYS, EPERM from kernel.io_uring_disabled or seccomp, missing
 *   operations); then epoll. DEFER_TASKRUN and FUTEX_WAIT are probed inside io_uring
 *   (kernel_iface/uring.c) and can be forced off (defer_taskrun, futex_uring). RINGO_DEBUG
 *   prints the choice once. A worker whose own ring cannot be created falls back to epoll alone.
 *   Operations are single-shot. ringo_recv_lend takes its buffer from a provided-buffer ring
 *   per worker (lend.c; RINGO_DISABLE=pbuf_ring forces its fallback); multishot accept/recv are
 *   not used (lend.c L2 says why not for receives).
 *
 * Doorbell (why the sleep does not wait on w->wake itself): besides proc.c's wake-ups
 *   (w->wake = 1, then sched_io_kick), an idle worker must also wake for cancel requests posted
 *   by ringo_close; a futex wait on w->wake cannot see those. So every backend sleeps on a
 *   per-worker word io_common.bell, and the sleep re-checks w->wake and the cancel list after
 *   resetting the bell. The StoreLoad recipe:
 *     kicker: 1. publish (w->wake = 1, or push a cancel request and ncancel++)
 *             2. atomic_thread_fence(seq_cst)                                        -- K1
 *             3. if exchange(bell, 1) == 0: wake the sleep (futex_wake(&bell) for the io_uring
 *                FUTEX_WAIT, else an eventfd write)                                   -- K2
 *     sleeper: a. bell = 0 (seq_cst store)                                           -- S1
 *              b. if w->wake != 0 or ncancel != 0 (seq_cst loads): do not sleep     -- S2
 *              c. sleep on bell == 0 (FUTEX_WAIT compares in the kernel) / the eventfd
 *              d. afterwards bell = 1 (relaxed): the worker is awake and re-checks before its
 *                 next sleep, so kicks may skip their syscall until the next S1.
 *   If S2 misses the kicker's store, then K2 follows S1 in the bell's modification order (K1 is
 *   before K2 and S1 before S2 in the single seq_cst order), so K2 reads 0 and wakes: the
 *   futex compares bell at arming (mismatch = immediate completion) and the eventfd counter is
 *   sticky. If K2 reads 1 it precedes S1, and S2 sees the kicker's store. No lost wake-up.
 *
 * Close: sched/io/fd.c (the fd table that lets ringo_close end waits on other workers).
 *
 * Invariants: I5 through sched.nio (each backend's top comment); every goroutine call does
 *   fd_enter/fd_leave around its backend call; a plain-thread call touches no runtime state.
 * Contexts: ringo_* from goroutines and plain threads; sched_io_* hooks from the worker (g0 or
 *   a goroutine of that worker switching out), sched_io_kick from any thread.
 * Depends on: sched.h (park protocol), sched/poller.h, kernel_iface (uring, clock), the backends
 *   (poll_uring.c, poll_epoll.c, poll_none.c) and fd.c.
 */
#include "sched/io/io.h"
#include "kernel_iface/clock.h"
#include "kernel_iface/futex.h"
#include "kernel_iface/uring.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

/* ================================================================== backend choice */

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static struct kif_uring_caps caps;  /* written once under probe_once, read-only afterwards */
static int backend;                 /* enum io_kind; idem */

static void io_probe(void)
{
    char why[160] = "";
    backend = IOK_EPOLL;
    if (sched.disable & DIS_IO_URING) {
        snprintf(why, sizeof why, "io_uring disabled by RINGO_DISABLE");
    } else {
        struct kif_uring_want want = {
            .defer_taskrun = !(sched.disable & DIS_DEFER_TASKRUN),
            .futex_wait = !(sched.disable & DIS_FUTEX_URING),
            .shared = !(sched.disable & DIS_RING_HANDOFF),
        };
        if (kif_uring_probe(&want, &caps) == 0)
            backend = IOK_URING;
        snprintf(why, sizeof why, "%s", caps.why);
    }
    if (!sched.debug)
        return;
    if (backend == IOK_URING)
        fprintf(stderr, "ringo: I/O backend: io_uring (%s, idle wake by %s%s%s)\n",
                caps.defer_taskrun ? "single_issuer+defer_taskrun"
                                   : caps.coop_taskrun ? "coop_taskrun" : caps.shared ? "shared" : "plain",
                caps.futex_wait ? "IORING_OP_FUTEX_WAIT" : "eventfd", caps.futex_wait ? "" : ": ", caps.futex_wait ? "" : why);
    else
        fprintf(stderr, "ringo: I/O backend: epoll (%s)\n", why);
}

/* ================================================================== the poller (sched/poller.h) */

/* The process that started the runtime (P5: a forked child shares its rings); set once by the
 * first worker's init, read by the exit hook. relaxed: a pid, written before any exit. */
static _Atomic pid_t io_start_pid;

static int io_worker_init(struct worker *w)
{
    pthread_once(&probe_once, io_probe);
    pid_t none = 0; /* the first worker's: every worker starts in the process that started */
    atomic_compare_exchange_strong_explicit(&io_start_pid, &none, getpid(), memory_order_relaxed,
                                            memory_order_relaxed);
    int r = -ENOSYS;
    if (backend == IOK_URING) {
        r = uring_be_init(w, &caps);
        if (r < 0 && sched.debug)
            fprintf(stderr, "ringo: worker %u: cannot create its io_uring (%s): epoll\n", w->id, strerror(-r));
    }
    if (r < 0)
        r = epoll_be_init(w);
    if (r < 0) {
        /* last resort: futex sleep (poll_none.c), and I/O calls block their worker */
        fprintf(stderr, "ringo: worker %u: no I/O backend (%s): I/O calls will block the worker\n", w->id,
                strerror(-r));
        w->io = NULL;
    }
    return r;
}

static int io_poll(struct worker *w)
{
    struct io_common *c = w->io;
    if (!c)
        return 0;
    return c->kind == IOK_URING ? uring_be_poll(w) : epoll_be_poll(w);
}

static void io_flush(struct worker *w)
{
    struct io_common *c = w->io;
    if (c && c->kind == IOK_URING)
        uring_be_flush(w);
}

static void io_sleep(struct worker *w, int64_t deadline)
{
    struct io_common *c = w->io;
    if (!c)
        none_sleep(w, deadline);
    else if (c->kind == IOK_URING)
        uring_be_sleep(w, deadline);
    else
        epoll_be_sleep(w, deadline);
}

static int io_rescue(struct worker *w)
{
    struct io_common *c = w->io;
    if (!c)
        return 0;
    return c->kind == IOK_URING ? uring_be_rescue(w) : epoll_be_rescue(w);
}

void io_kick(struct worker *w)
{
    struct io_common *c = w->io;
    if (!c) {
        none_kick(w);
        return;
    }
    atomic_thread_fence(memory_order_seq_cst); /* K1: the caller's publish before the bell RMW */
    if (atomic_exchange_explicit(&c->bell, 1, memory_order_seq_cst) != 0) /* K2 */
        return; /* the owner is awake and re-checks before sleeping (S1, S2) */
    if (c->kind == IOK_URING)
        uring_be_ring(w);
    else
        epoll_be_ring(w);
}

bool io_bell_reset_and_check(struct worker *w, struct io_common *c)
{
    atomic_store_explicit(&c->bell, 0, memory_order_seq_cst);                 /* S1 */
    if (atomic_load_explicit(&w->wake, memory_order_seq_cst) != 0)           /* S2: wakep */
        return true;
    return atomic_load_explicit(&c->ncancel, memory_order_seq_cst) != 0;    /* S2: closers */
}

void io_bell_quiet(struct io_common *c)
{
    atomic_store_explicit(&c->bell, 1, memory_order_relaxed); /* step d: a hint; S1 is the truth */
}

_Atomic uint64_t io_st_lent_heap; /* lend.c: stats only (relaxed); the fallback path is the slow one */

static void io_stats(struct ringo_stats *out)
{
    out->io_submitted = out->io_completed = out->io_lent_ring = 0;
    out->io_lent_heap = atomic_load_explicit(&io_st_lent_heap, memory_order_relaxed); /* stats only */
    if (!sched_started())
        return;
    for (unsigned i = 0, n = sched_nworkers(); i < n; i++) {
        struct io_common *c = sched.w[i]->io;
        if (!c)
            continue;
        out->io_submitted += atomic_load_explicit(&c->st_submitted, memory_order_relaxed); /* stats only */
        out->io_completed += atomic_load_explicit(&c->st_completed, memory_order_relaxed);
        out->io_lent_ring += atomic_load_explicit(&c->st_lent, memory_order_relaxed);
    }
}

static uint64_t io_waiting(struct worker *w)
{
    struct io_common *c = w->io;
    if (!c)
        return 0;
    if (c->kind == IOK_EPOLL)
        return epoll_be_nwait(w);
    /* stats only (relaxed): two counters read apart can be out of step, hence the clamp */
    uint64_t done = atomic_load_explicit(&c->st_completed, memory_order_relaxed);
    uint64_t sub = atomic_load_explicit(&c->st_submitted, memory_order_relaxed);
    return sub >= done ? sub - done : 0;
}

/* P5 (poller.h). From here on, goroutine calls are plain system calls on their worker's thread
 * (the exiting thread's exit_group ends them), so no new operation reaches a ring; then every
 * io_uring worker's requests are cancelled synchronously, again until a pass finds none (an
 * SQE filled before the flag may be submitted after the first pass), within EXIT_CANCEL_NS.
 * The epoll backend holds no file: nothing to do. Only in the process that started the
 * runtime: a child of fork(2) shares its parent's rings, and its exit(3) must not cancel the
 * parent's operations. */
_Atomic bool sched_io_exiting;
#define EXIT_CANCEL_NS 100000000LL

static void io_at_exit(void)
{
    if (getpid() != atomic_load_explicit(&io_start_pid, memory_order_relaxed))
        return; /* a forked child's exit */
    /* seq_cst: after it, a call that still missed it is caught by the passes below */
    atomic_store_explicit(&sched_io_exiting, true, memory_order_seq_cst);
    int asked = 0;
    for (unsigned i = 0, n = sched_nworkers(); i < n; i++) {
        struct io_common *c = sched.w[i]->io;
        if (c && c->kind == IOK_URING && uring_be_exit_cancel(sched.w[i], EXIT_CANCEL_NS) == -EEXIST)
            asked += uring_be_exit_request(sched.w[i]); /* owner-only ring: its owner cancels */
    }
    if (asked)
        uring_be_exit_wait(EXIT_CANCEL_NS);
}

static bool io_reclaim(struct worker *w)
{
    struct io_common *c = w->io;
    return c && c->kind == IOK_URING && uring_be_reclaim(w);
}

const struct poller sched_poller = {
    .at_exit = io_at_exit,
    .init = io_worker_init,
    .poll = io_poll,
    .flush = io_flush,
    .sleep = io_sleep,
    .kick = io_kick,
    .rescue = io_rescue,
    .reclaim = io_reclaim,
    .waiting = io_waiting,
    .stats = io_stats,
};

/* ================================================================== readiness path */

static short op_events(const struct io_args *a)
{
    switch (a->op) {
    case IOP_READ:
    case IOP_RECV:
    case IOP_RECVMSG:
    case IOP_ACCEPT:
        return POLLIN;
    case IOP_WRITE:
    case IOP_SEND:
    case IOP_SENDMSG:
    case IOP_CONNECT:
        return POLLOUT;
    default:
        return a->events;
    }
}

/* RWF_NOWAIT refused (EOPNOTSUPP: some file types on older kernels; qemu-user refuses the flag
 * on every file). A socket can still be tried without blocking, with MSG_DONTWAIT (read and
 * write on a socket are recv and send with no flags; send raises SIGPIPE as write does). For
 * anything else errno stays EOPNOTSUPP and ready_loop waits, then makes the blocking call:
 * fine for a file only this call reads, but on a socket two readers woken for one byte would
 * leave the loser blocked in read(2), its worker with it (seen: stress_io's racing readers
 * hung under qemu-user). */
static ssize_t nowait_fallback(const struct io_args *a, bool write_)
{
    ssize_t r = write_ ? send(a->fd, a->buf, a->n, MSG_DONTWAIT) : recv(a->fd, a->buf, a->n, MSG_DONTWAIT);
    if (r < 0 && errno == ENOTSOCK)
        errno = EOPNOTSUPP;
    return r;
}

/* One attempt: never blocking (block == false: RWF_NOWAIT, MSG_DONTWAIT, ...), or the plain
 * system call. Returns the result or -errno (-EAGAIN: not ready). */
static ssize_t attempt(const struct io_args *a, bool block)
{
    ssize_t r;
    struct iovec iov = { .iov_base = a->buf, .iov_len = a->n };
    switch (a->op) {
    case IOP_READ:
        r = block ? read(a->fd, a->buf, a->n) : preadv2(a->fd, &iov, 1, -1, RWF_NOWAIT);
        if (r < 0 && errno == EOPNOTSUPP)
            r = nowait_fallback(a, false);
        break;
    case IOP_WRITE:
        r = block ? write(a->fd, a->buf, a->n) : pwritev2(a->fd, &iov, 1, -1, RWF_NOWAIT);
        if (r < 0 && errno == EOPNOTSUPP)
            r = nowait_fallback(a, true);
        break;
    case IOP_RECV:
        r = recv(a->fd, a->buf, a->n, a->flags | (block ? 0 : MSG_DONTWAIT));
        break;
    case IOP_SEND:
        r = send(a->fd, a->buf, a->n, a->flags | (block ? 0 : MSG_DONTWAIT));
        break;
    case IOP_SENDMSG:
        r = sendmsg(a->fd, a->msg, a->flags | (block ? 0 : MSG_DONTWAIT));
        break;
    case IOP_RECVMSG:
        r = recvmsg(a->fd, a->msg, a->flags | (block ? 0 : MSG_DONTWAIT));
        break;
    case IOP_ACCEPT:
        if (!block && !(fcntl(a->fd, F_GETFL) & O_NONBLOCK)) {
            /* a blocking listener would block accept4: look first (a racing acceptor can still
             * take the connection; the epoll path makes listeners O_NONBLOCK to be sure). Not
             * a listener (or not a socket): accept4 fails at once with the right error. */
            int listening = 0;
            socklen_t len = sizeof listening;
            if (getsockopt(a->fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening) {
                struct pollfd p = { .fd = a->fd, .events = POLLIN };
                r = poll(&p, 1, 0);
                if (r == 0)
                    return -EAGAIN;
            }
        }
        r = accept4(a->fd, a->addr, a->addrlen, a->flags);
        break;
    case IOP_POLL: {
        struct pollfd p = { .fd = a->fd, .events = a->events };
        r = poll(&p, 1, block ? -1 : 0);
        if (r == 0)
            return -EAGAIN;
        if (r > 0)
            return (p.revents & POLLNVAL) ? -EBADF : p.revents;
        break;
    }
    default:
        return -EINVAL;
    }
    return r < 0 ? -errno : r;
}

/* Plain thread: wait until fd is ready for ev or the deadline passes. revents or -errno. */
static int plain_wait(int fd, short ev, int64_t deadline)
{
    for (;;) {
        struct timespec ts, *tsp = NULL;
        if (deadline >= 0) {
            int64_t left = deadline - clk_now();
            ts = clk_to_ts(left > 0 ? left : 0);
            tsp = &ts;
        }
        struct pollfd p = { .fd = fd, .events = ev };
        int r = ppoll(&p, 1, tsp, NULL);
        if (r > 0)
            return (p.revents & POLLNVAL) ? -EBADF : p.revents;
        if (r == 0) {
            if (deadline >= 0 && clk_now() >= deadline)
                return -ETIMEDOUT;
            continue;
        }
        if (errno != EINTR)
            return -errno;
    }
}

/* Wait for readiness: ppoll on a plain thread, the worker's epoll in a goroutine. */
static int wait_ready(const struct io_args *a, short ev, struct g *self)
{
    if (!self)
        return plain_wait(a->fd, ev, a->deadline);
    struct worker *w = sched_cur_worker(); /* I4: re-read, we may have moved */
    struct io_common *c = w->io;
    if (!c || c->kind != IOK_EPOLL)
        return IO_RETRY;
    return epoll_be_wait(w, self, a->fd, a->fdslot, (uint32_t)(unsigned short)ev, a->deadline);
}

static int connect_ready(const struct io_args *a, struct g *self)
{
    int fl = fcntl(a->fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if (!(fl & O_NONBLOCK))
        fcntl(a->fd, F_SETFL, fl | O_NONBLOCK);
    int r = connect(a->fd, a->caddr, a->caddrlen);
    int err = r < 0 ? errno : 0;
    if (!(fl & O_NONBLOCK))
        fcntl(a->fd, F_SETFL, fl);
    if (r == 0)
        return 0;
    if (err != EINPROGRESS && err != EINTR)
        return -err;
    int w = wait_ready(a, POLLOUT, self);
    if (w == IO_RETRY) /* moved to an io_uring worker mid-connect: finish it here */
        w = plain_wait(a->fd, POLLOUT, a->deadline);
    if (w < 0)
        return w;
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        return -errno;
    return -soerr;
}

/* Test hook (tests/test_io.c): called just before a call that may block its thread on a file
 * epoll cannot wait for (a regular file whose data is not in the page cache). NULL otherwise. */
void (*sched_test_hook_io_blocking)(int fd);

struct blocking_attempt {
    const struct io_args *a;
    ssize_t r;
};

static void blocking_attempt_fn(void *p)
{
    struct blocking_attempt *b = p;
    if (unlikely(sched_test_hook_io_blocking))
        sched_test_hook_io_blocking(b->a->fd);
    do
        b->r = attempt(b->a, true);
    while (b->r == -EINTR);
}

/* A file epoll cannot wait for (EPERM from epoll_ctl: a regular file) reads as ready, yet the
 * call may block on the disk, NFS or FUSE: a goroutine makes it on the blocking pool
 * (ringo_blocking), so its worker runs other goroutines meanwhile (issue 13: a 3 s freeze of a
 * worker). Inline on a plain thread, or when the pool has no thread to give. */
static ssize_t unpollable_attempt(const struct io_args *a, struct g *self)
{
    struct blocking_attempt b = { a, -EAGAIN };
    if (!self || ringo_blocking(blocking_attempt_fn, &b) != 0)
        blocking_attempt_fn(&b);
    return b.r;
}

/* The readiness path: try without blocking; on EAGAIN wait (ppoll or epoll) and try again.
 * self == NULL: a plain thread. */
static ssize_t ready_loop(const struct io_args *a, struct g *self)
{
    if (a->op == IOP_CONNECT)
        return connect_ready(a, self);
    if (a->op == IOP_ACCEPT && self) {
        int fl = fcntl(a->fd, F_GETFL);
        if (fl >= 0 && !(fl & O_NONBLOCK))
            fcntl(a->fd, F_SETFL, fl | O_NONBLOCK);
    }
    bool block_after_wait = false; /* RWF_NOWAIT unsupported, or useless (regular files) */
    bool waited = false;
    int stale = 0;
    for (;;) {
        ssize_t r = -EAGAIN;
        if (!block_after_wait) {
            r = attempt(a, false);
            if (r == -EOPNOTSUPP && (a->op == IOP_READ || a->op == IOP_WRITE)) {
                block_after_wait = true;
                r = -EAGAIN;
                /* no RWF_NOWAIT for this file (an old kernel; qemu-user refuses the flag): a
                 * deadline already past must still try once (ringo.h), and the wait below would
                 * time out without looking. The try: a zero-timeout look, then the call, which
                 * cannot block on data that is there (as after any wait on this path). */
                if (a->deadline >= 0 && a->deadline <= clk_now()) {
                    struct pollfd p = { .fd = a->fd, .events = op_events(a) };
                    int pr = poll(&p, 1, 0);
                    if (pr > 0 && (p.revents & POLLNVAL))
                        return -EBADF;
                    if (pr <= 0)
                        return -ETIMEDOUT;
                    r = attempt(a, true);
                    return r == -EAGAIN || r == -EINTR ? -ETIMEDOUT : r;
                }
            }
            if (r == -EINTR)
                continue;
            if (r != -EAGAIN)
                return r;
            /* plain thread: ready, yet EAGAIN again: the fd polls as always ready (a regular
             * file missing the page cache); a goroutine never blocks its worker this way */
            if (!self && waited && ++stale >= 2)
                block_after_wait = a->op == IOP_READ || a->op == IOP_WRITE;
        }
        int wr = wait_ready(a, op_events(a), self);
        if (wr == IO_RETRY)
            return IO_RETRY;
        if (wr == -EPERM) /* not pollable (a regular file) */
            return unpollable_attempt(a, self);
        if (wr < 0)
            return wr;
        waited = true;
        if (block_after_wait) {
            r = attempt(a, true);
            if (r != -EAGAIN && r != -EINTR)
                return r;
        }
    }
}

/* Plain thread: the system call; with a deadline (or on an O_NONBLOCK fd) through ppoll. */
static ssize_t plain_call(const struct io_args *a)
{
    if (a->deadline >= 0 || a->op == IOP_CONNECT || a->op == IOP_POLL)
        return ready_loop(a, NULL);
    for (;;) {
        ssize_t r = attempt(a, true);
        if (r == -EINTR)
            continue;
        if (r != -EAGAIN)
            return r;
        r = plain_wait(a->fd, op_events(a), -1);
        if (r < 0)
            return r;
    }
}

/* ================================================================== the calls */

/* io_uring path, accept only: on an O_NONBLOCK listener (ringo_tcp_listen makes them), take a
 * connection that is already queued at once, as Go does. Through the ring every accept costs a
 * scheduling round (batched submit, reap, run-queue wait), so an acceptor behind a busy server
 * took seconds to drain a burst of 1,000 connections. -EAGAIN: nothing queued, use the ring. */
static ssize_t accept_first(const struct io_args *a)
{
    int fl = fcntl(a->fd, F_GETFL);
    if (fl < 0 || !(fl & O_NONBLOCK))
        return -EAGAIN; /* a blocking listener: accept4 could block the worker */
    int r = accept4(a->fd, a->addr, a->addrlen, a->flags);
    if (r >= 0)
        return r;
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

/* SIGPIPE (issue 13; Go's rule). A write to a reset socket raised SIGPIPE and killed the
 * process (exit 141) unless the program ignored the signal. At the first ringo I/O call, if
 * SIGPIPE still has its default action, ringo ignores it: writes to broken sockets and pipes
 * return -EPIPE. As in Go, a ringo_write or ringo_send to a broken fd 1 or 2 still kills the
 * process (`prog | head` ends when head does), by restoring the default action and raising
 * the signal, unless the program has installed a disposition of its own meanwhile. A program
 * that set its own disposition (a handler, or SIG_IGN) before is left alone. Plain write(2)
 * calls of the program after that first call get EPIPE too (the README says so). */
enum { SP_UNSET, SP_OURS, SP_PROGRAMS };
static _Atomic int sigpipe_state;

static void sigpipe_setup(void)
{
    /* acquire: pairs with the release below (the disposition was set before the state) */
    if (likely(atomic_load_explicit(&sigpipe_state, memory_order_acquire) != SP_UNSET))
        return;
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock);
    if (atomic_load_explicit(&sigpipe_state, memory_order_relaxed) == SP_UNSET) { /* under lock */
        struct sigaction old;
        int st = SP_PROGRAMS;
        if (sigaction(SIGPIPE, NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL) {
            struct sigaction ign;
            memset(&ign, 0, sizeof ign);
            ign.sa_handler = SIG_IGN;
            sigemptyset(&ign.sa_mask);
            if (sigaction(SIGPIPE, &ign, NULL) == 0)
                st = SP_OURS;
        }
        atomic_store_explicit(&sigpipe_state, st, memory_order_release);
    }
    pthread_mutex_unlock(&lock);
}

/* Go's exception: a broken stdout or stderr ends the program, as SIGPIPE's default would. */
static ssize_t sigpipe_std(const struct io_args *a, ssize_t r)
{
    if (r != -EPIPE || (a->fd != 1 && a->fd != 2) || (a->op != IOP_WRITE && a->op != IOP_SEND && a->op != IOP_SENDMSG))
        return r;
    if (atomic_load_explicit(&sigpipe_state, memory_order_relaxed) != SP_OURS) /* set before any call */
        return r;
    struct sigaction cur;
    if (sigaction(SIGPIPE, NULL, &cur) != 0 || (cur.sa_flags & SA_SIGINFO) || cur.sa_handler != SIG_IGN)
        return r; /* the program has chosen since */
    signal(SIGPIPE, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, SIGPIPE);
    pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    raise(SIGPIPE);
    return r; /* blocked elsewhere or caught meanwhile: the error, then */
}

static ssize_t io_call(struct io_args *a)
{
    sigpipe_setup();
    if (a->deadline < 0)
        a->deadline = -1;
    struct worker *w = sched_cur_worker();
    struct g *self = sched_cur_g(w);
    /* relaxed: a hint; the exit hook's passes catch a call that reads it late (P5) */
    if (unlikely(sched_self_canceled(self)))
        return -ECANCELED; /* group.c: every blocking call of a cancelled member (locked ones too) */
    if (!self || !w->io || unlikely(atomic_load_explicit(&sched_io_exiting, memory_order_relaxed)))
        return a->op == IOP_RECV_LEND ? -ENOBUFS : sigpipe_std(a, plain_call(a));
    struct fd_slot *slot;
    if (fd_enter(a->fd, &slot) < 0)
        return -EBADF; /* being closed */
    a->fdslot = slot;
    struct fdcheck_rec chk;
    bool check = unlikely(sched.debug & DBG_FDCHECK);
    if (check)
        fdcheck_begin(&chk, a->fd, a->op, self->id);
    ssize_t r;
    for (;;) {
        w = sched_cur_worker(); /* I4 */
        struct io_common *c = w->io;
        if (a->op == IOP_RECV_LEND && (!c || c->kind != IOK_URING))
            r = -ENOBUFS; /* only a ring lends its pool's buffers: lend.c's other path */
        else if (!c)
            r = plain_call(a);
        else if (c->kind == IOK_URING && a->op == IOP_ACCEPT && (r = accept_first(a)) != -EAGAIN)
            ; /* accepted (or failed) without a trip through the ring */
        else if (c->kind == IOK_URING)
            r = uring_be_do(w, self, a);
        else
            r = ready_loop(a, self);
        if (r != IO_RETRY) {
            if (c && c->kind == IOK_EPOLL) {
                /* one call = one operation; counted on the worker we run on now, its owner */
                struct io_common *now = sched_cur_worker()->io;
                if (now) {
                    sched_stat_add(&now->st_submitted, 1);
                    sched_stat_add(&now->st_completed, 1);
                }
            }
            break;
        }
        ringo_yield(); /* no SQE to be had right now, or moved between backends */
    }
    if (check)
        fdcheck_end(&chk);
    fd_leave(slot);
    return sigpipe_std(a, r);
}

static size_t clamp_n(size_t n)
{
    return n > IO_MAX_RW ? IO_MAX_RW : n;
}

ssize_t ringo_read(int fd, void *buf, size_t n, int64_t deadline)
{
    if (fd < 0)
        return -EBADF;
    if (!buf && n)
        return -EFAULT;
    struct io_args a = { .op = IOP_READ, .fd = fd, .buf = buf, .n = clamp_n(n), .deadline = deadline };
    return io_call(&a);
}

ssize_t ringo_write(int fd, const void *buf, size_t n, int64_t deadline)
{
    if (fd < 0)
        return -EBADF;
    if (!buf && n)
        return -EFAULT;
    struct io_args a = { .op = IOP_WRITE, .fd = fd, .buf = (void *)buf, .n = clamp_n(n), .deadline = deadline };
    return io_call(&a);
}

ssize_t ringo_recv(int fd, void *buf, size_t n, int flags, int64_t deadline)
{
    if (fd < 0)
        return -EBADF;
    if (!buf && n)
        return -EFAULT;
    struct io_args a = { .op = IOP_RECV, .fd = fd, .buf = buf, .n = clamp_n(n), .flags = flags,
                         .deadline = deadline };
    return io_call(&a);
}

ssize_t ringo_send(int fd, const void *buf, size_t n, int flags, int64_t deadline)
{
    if (fd < 0)
        return -EBADF;
    if (!buf && n)
        return -EFAULT;
    struct io_args a = { .op = IOP_SEND, .fd = fd, .buf = (void *)buf, .n = clamp_n(n), .flags = flags,
                         .deadline = deadline };
    return io_call(&a);
}

int ringo_accept(int fd, struct sockaddr *addr, socklen_t *len, int64_t deadline)
{
    if (fd < 0)
        return -EBADF;
    if (addr && !len)
        return -EFAULT;
    struct io_args a = { .op = IOP_ACCEPT, .fd = fd, .addr = addr, .addrlen = addr ? len : NULL,
                         .flags = SOCK_CLOEXEC, .deadline = deadline };
    return (int)io_call(&a);
}

int ringo_connect(int fd, const struct sockaddr *addr, socklen_t len, int64_t deadline)
{
    if (fd < 0)
        return -EBADF;
    if (!addr)
        return -EFAULT;
    struct io_args a = { .op = IOP_CONNECT, .fd = fd, .caddr = addr, .caddrlen = len, .deadline = deadline };
    return (int)io_call(&a);
}

int ringo_poll(int fd, short events, int64_t deadline)
{
    if (fd < 0)
        return -EBADF;
    struct io_args a = { .op = IOP_POLL, .fd = fd, .events = events, .deadline = deadline };
    return (int)io_call(&a);
}

/* The datagram and ancillary-data calls (issue 13). msg, its iovecs and its buffers must stay
 * valid until the call returns, as for recvmsg(2); a goroutine's stack holds them while it
 * parks. recvmsg writes msg_namelen, msg_controllen and msg_flags back, as the system call does. */
ssize_t ringo_sendmsg(int fd, const struct msghdr *msg, int flags, int64_t deadline)
{
    if (fd < 0)
        return -EBADF;
    if (!msg)
        return -EFAULT;
    struct io_args a = { .op = IOP_SENDMSG, .fd = fd, .msg = (struct msghdr *)msg, .flags = flags,
                         .deadline = deadline };
    return io_call(&a);
}

ssize_t ringo_recvmsg(int fd, struct msghdr *msg, int flags, int64_t deadline)
{
    if (fd < 0)
        return -EBADF;
    if (!msg)
        return -EFAULT;
    struct io_args a = { .op = IOP_RECVMSG, .fd = fd, .msg = msg, .flags = flags, .deadline = deadline };
    return io_call(&a);
}

ssize_t ringo_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to, socklen_t tolen,
                     int64_t deadline)
{
    if (!buf && n)
        return -EFAULT;
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = clamp_n(n) };
    struct msghdr m = { .msg_name = (void *)to, .msg_namelen = to ? tolen : 0, .msg_iov = &iov, .msg_iovlen = 1 };
    return ringo_sendmsg(fd, &m, flags, deadline);
}

ssize_t ringo_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *fromlen,
                       int64_t deadline)
{
    if ((!buf && n) || (from && !fromlen))
        return -EFAULT;
    struct iovec iov = { .iov_base = buf, .iov_len = clamp_n(n) };
    struct msghdr m = { .msg_name = from, .msg_namelen = from ? *fromlen : 0, .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t r = ringo_recvmsg(fd, &m, flags, deadline);
    if (r >= 0 && from)
        *fromlen = m.msg_namelen;
    return r;
}

/* shutdown(2) never waits: the call itself. A shut-down read side ends a pending receive on the
 * socket with 0 (end of file) on every backend, as the kernel does for recv(2). */
int ringo_shutdown(int fd, int how)
{
    if (fd < 0)
        return -EBADF;
    if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
        return -EINVAL;
    return shutdown(fd, how) < 0 ? -errno : 0;
}

/* sendfile(2) to a socket (or pipe) with a deadline: the out side is made O_NONBLOCK for the
 * duration of the call (restored after), each EAGAIN waits in ringo_poll (parks a goroutine),
 * and the call goes on until count bytes are sent, in_fd ends, an error, or the deadline. The
 * read side is the page cache: an uncached file blocks the calling thread for its disk read,
 * as in Go; a server that sends files larger than memory can warm them in ringo_blocking.
 * Returns the bytes sent when any were (the error, if one followed, comes back on the next
 * call), else -errno; offset as sendfile(2) (NULL: in_fd's own position). */
ssize_t ringo_sendfile(int out_fd, int in_fd, off_t *offset, size_t count, int64_t deadline)
{
    if (out_fd < 0 || in_fd < 0)
        return -EBADF;
    sigpipe_setup();
    int fl = fcntl(out_fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if (!(fl & O_NONBLOCK) && fcntl(out_fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    size_t done = 0;
    ssize_t err = 0;
    while (done < count) {
        ssize_t r = sendfile(out_fd, in_fd, offset, clamp_n(count - done));
        if (r > 0) {
            done += (size_t)r;
            continue;
        }
        if (r == 0)
            break; /* end of in_fd */
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            err = -errno;
            break;
        }
        int p = ringo_poll(out_fd, POLLOUT, deadline);
        if (p < 0) {
            err = p;
            break;
        }
    }
    if (!(fl & O_NONBLOCK))
        fcntl(out_fd, F_SETFL, fl);
    if (done)
        return (ssize_t)done;
    struct io_args a = { .op = IOP_SEND, .fd = out_fd };
    return sigpipe_std(&a, err);
}

/* lend.c's io_uring path: a receive into a buffer the kernel picks from the current worker's
 * pool (poll_uring.c U9). -ENOBUFS: no pool here, or none free: lend.c's other path. */
ssize_t io_recv_lend_uring(int fd, void **lent, int flags, int64_t deadline)
{
    struct io_args a = { .op = IOP_RECV_LEND, .fd = fd, .lent = lent, .flags = flags, .deadline = deadline };
    return io_call(&a);
}
