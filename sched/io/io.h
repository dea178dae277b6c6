/* sched/io/io.h — what the I/O layer's files share (never installed).
 *
 * Responsibility: the per-worker I/O state header (struct io_common, first member of each
 *   backend's state in w->io), the operation descriptor, the doorbell that ends an idle sleep,
 *   and the close/cancel hand-shake between a closer and the rings that may hold ops on its fd.
 * Backends (after Redis ae: one file per kernel API, the same entry points in each):
 *   poll_uring.c   one io_uring per worker (the design's primary backend)
 *   poll_epoll.c   one epoll per worker, for kernels or containers without io_uring
 *   poll_none.c    neither: the worker sleeps on its wake word, I/O calls block it
 * Depends on: sched/sched.h, sched/poller.h.
 */
#ifndef RINGO_SCHED_IO_BACKEND_H
#define RINGO_SCHED_IO_BACKEND_H
#include "sched/sched.h"
#include "sched/poller.h"
#include <sys/socket.h>
#include <sys/types.h>

enum io_kind { IOK_URING = 1, IOK_EPOLL = 2 };

enum io_opcode { IOP_READ = 0, IOP_WRITE, IOP_RECV, IOP_SEND, IOP_ACCEPT, IOP_CONNECT, IOP_POLL, IOP_SENDMSG,
                 IOP_RECVMSG, IOP_RECV_LEND };

/* One I/O call of API.md, as the public function received it (fd >= 0 checked). */
struct io_args {
    int op;                        /* enum io_opcode */
    int fd;
    void *buf;                     /* READ/WRITE/RECV/SEND */
    size_t n;                      /* clamped to IO_MAX_RW */
    int flags;                     /* RECV/SEND: MSG_*; ACCEPT: SOCK_* for the new fd */
    struct sockaddr *addr;         /* ACCEPT: peer address out (may be NULL) */
    socklen_t *addrlen;            /* ACCEPT */
    const struct sockaddr *caddr;  /* CONNECT */
    socklen_t caddrlen;            /* CONNECT */
    short events;                  /* POLL */
    struct msghdr *msg;            /* SENDMSG/RECVMSG (flags: MSG_*) */
    void **lent;                   /* RECV_LEND (io_uring only): out, the data of the buffer the
                                    * kernel picked from the worker's pool (lend.c L2) */
    int64_t deadline;              /* absolute, CLOCK_MONOTONIC ns; -1 none */
    struct fd_slot *fdslot;        /* fd.c's table entry for fd (goroutine calls), NULL: untracked */
};

/* Linux never moves more than this in one read/write (MAX_RW_COUNT); io_uring's len is 32-bit. */
#define IO_MAX_RW 0x7ffff000u

/* Internal result: the backend could not start the operation on this worker (no SQE to be had,
 * or the goroutine now runs on a worker with another backend). io.c yields and tries again. */
#define IO_RETRY (-100000)

/* A ringo_close waiting until every io_uring worker has issued IORING_ASYNC_CANCEL_FD for its
 * fd (the cancel must reach the kernel while the fd still names the file). Lives on the closer's
 * stack; the last io_closewait_ack readies the closer. */
struct io_closewait {
    struct g *g;                   /* the closer (a goroutine, or a plain thread's stand-in) */
    _Atomic uint32_t pending;      /* acks still due; acq_rel decrements (io_closewait_ack) */
};
struct io_cancelreq {
    struct io_cancelreq *next;     /* in the target worker's list, under its io_common.lock */
    int fd;                        /* >= 0: every op on fd (ringo_close); -1: every op (exit hook) */
    uint64_t ud;                   /* non-zero: only the op with this user_data (a group's cancel) */
    struct io_closewait *cw;
};

/* Head of every backend's per-worker state. */
struct io_common {
    int kind;                      /* enum io_kind; set before the worker starts, then constant */
    /* The doorbell: 0 while the owner is (about to be) asleep, 1 otherwise. sched_io_kick
     * exchanges it to 1 and, if it was 0, wakes the sleep in the backend's way (futex wake on
     * this word, or an eventfd write). See "Doorbell" in io.c for the StoreLoad argument. */
    _Atomic uint32_t bell;
    pthread_mutex_t lock;          /* cancels (both backends); the waiter table (epoll) */
    struct io_cancelreq *cancels;  /* under lock: cancel requests from other threads (io_uring) */
    _Atomic uint32_t ncancel;      /* mirrors cancels != NULL; seq_cst (doorbell recipe) */
    _Atomic uint64_t st_submitted; /* stats only: owner writes relaxed, anyone reads relaxed */
    _Atomic uint64_t st_completed;
    _Atomic uint64_t st_lent;      /* stats only: buffers of this worker's lend pool handed out
                                    * (relaxed RMW: by whichever thread the receiver resumed on) */
};
extern _Atomic uint64_t io_st_lent_heap; /* stats only: ringo_recv_lend's heap buffers */

/* ---- fd.c: the fd table (one entry per fd number, allocated in chunks, never freed). */
struct fd_slot {
    _Atomic uint32_t word;         /* FD_NOPS count | FD_CLOSING (fd.c, F1) */
    uint32_t unused;
    /* io_uring workers (bit = worker id) that may hold an operation on the fd; each bit is set
     * and cleared by its worker only (F4). Unused with more than FD_RING_BITS workers. */
    _Atomic uint64_t rings;
};
#define FD_RING_BITS 64
/* Every goroutine I/O call brackets its backend call with these (F1). fd_enter returns -EBADF
 * when a ringo_close of fd is in progress; *slotp is NULL when untracked. */
int  fd_enter(int fd, struct fd_slot **slotp);
void fd_leave(struct fd_slot *slot);
/* F3: whether a ringo_close of the slot's fd is in progress. Call it where the closer's cancel
 * would find the wait (epoll: under the worker's c.lock; io_uring: fd_ring_enter instead);
 * true: return -EBADF without waiting. NULL slot: false. */
bool fd_closing(struct fd_slot *slot);
/* io_uring owner w (under its ring lock), just before filling an SQE on the slot's fd (F4): first = this worker's
 * count of operations on the fd went from 0 to 1 (set its bit in rings), then the F3 re-check.
 * True: a close is in progress; return -EBADF (after fd_ring_leave if first). NULL slot: false. */
bool fd_ring_enter(struct fd_slot *slot, unsigned wid, bool first);
/* io_uring owner: its last operation on the fd has completed (count back to 0): clear its bit. */
void fd_ring_leave(struct fd_slot *slot, unsigned wid);
/* Whether workers set and read the rings masks (every worker that may exist, extra ones
 * included, has a bit: sched.nw_max <= FD_RING_BITS); else a closer sends its cancel request
 * to every io_uring worker. Constant once the scheduler started. */
static inline bool fd_rings_tracked(void)
{
    return sched.nw_max <= FD_RING_BITS;
}

/* ---- io.c, for the backends */
void io_kick(struct worker *w);                 /* sched_poller.kick */
/* Owner, before sleeping: reset the doorbell, then re-check what may end the sleep. True: do
 * not sleep. */
bool io_bell_reset_and_check(struct worker *w, struct io_common *c);
/* Owner, after sleeping: kicks may skip their syscall until the next reset. */
void io_bell_quiet(struct io_common *c);
/* Count one acknowledgement of a close; the last one readies the closer. Any thread. */
void io_closewait_ack(struct io_closewait *cw);
/* Queue r on io_uring worker v's cancel list (under its lock) and kick v (fd.c). */
void io_cancel_request(struct worker *v, struct io_cancelreq *r);
/* Take the whole list of cancel requests (owner). */
struct io_cancelreq *io_cancels_take(struct io_common *c);

/* ---- poll_uring.c */
struct kif_uring_caps;
int  uring_be_init(struct worker *w, const struct kif_uring_caps *caps);
int  uring_be_poll(struct worker *w);
void uring_be_flush(struct worker *w);
void uring_be_sleep(struct worker *w, int64_t deadline);
void uring_be_ring(struct worker *w);           /* the doorbell's kernel half (any thread) */
ssize_t uring_be_do(struct worker *w, struct g *self, const struct io_args *a);
void uring_be_cancel_fd(struct worker *w, int fd);  /* owner thread only */
int  uring_be_rescue(struct worker *w);         /* the sysmon, for a stuck worker (U1) */

/* io.c: ringo_recv_lend's io_uring path (-ENOBUFS: take the other) */
ssize_t io_recv_lend_uring(int fd, void **lent, int flags, int64_t deadline);
/* ---- fdcheck.c: RINGO_DEBUG=fdcheck (a record on the calling goroutine's stack) */
struct fdcheck_rec {
    struct fdcheck_rec *prev, *next;
    int fd, op;
    int64_t gid;
    dev_t dev;
    ino_t ino;
    bool told;
};
void fdcheck_begin(struct fdcheck_rec *r, int fd, int op, int64_t gid);
void fdcheck_end(struct fdcheck_rec *r);

/* ---- lend.c / poll_uring.c: buffers ringo lends to ringo_recv_lend (lend.c top) */
#define LEND_SIZE 16384u           /* the data of one buffer */
#define LEND_HDR 64u               /* the header before it (struct lend_hdr, lend.c) */
/* The header of a pool buffer about to be lent: kind, worker, buffer id; marks it out (L3). */
void lend_hdr_init_pool(void *hdr, unsigned wid, uint32_t bid);
/* io_uring owner, under its ring lock: the worker's pool, made on first use (false: none:
 * RINGO_DISABLE=pbuf_ring, a kernel before 5.19, no memory). */
bool uring_be_lend_ready(struct worker *w);
/* Any thread: buffer bid goes back to worker wid's ring (L4). */
void uring_be_lend_recycle(unsigned wid, uint32_t bid);
bool uring_be_reclaim(struct worker *w);        /* P6, the sysmon (U9) */

/* ---- poll_epoll.c */
int  epoll_be_init(struct worker *w);
int  epoll_be_poll(struct worker *w);
void epoll_be_sleep(struct worker *w, int64_t deadline);
void epoll_be_ring(struct worker *w);
/* Park self until fd is ready for events (EPOLL* == POLL* bits), the deadline passes
 * (-ETIMEDOUT) or ringo_close ends the wait (-EBADF; also when a close of fd is in progress,
 * fdslot's CLOSING: F3). -EPERM: fd cannot be polled (a regular file): the caller may simply
 * block. */
/* P5 (io.c): set by the exit hook; goroutine calls then make plain system calls */
extern _Atomic bool sched_io_exiting;
/* P5, on the exiting thread: cancel w's requests synchronously (0, or -EEXIST for an owner-only
 * ring, -EINVAL before 6.0, -ETIME); or ask w's owner to (1 when asked), then wait for every
 * owner asked, at most timeout_ns. */
int  uring_be_exit_cancel(struct worker *w, int64_t timeout_ns);
int  uring_be_exit_request(struct worker *w);
void uring_be_exit_wait(int64_t timeout_ns);
void io_kick(struct worker *w);
int  epoll_be_wait(struct worker *w, struct g *self, int fd, struct fd_slot *fdslot, uint32_t events,
                   int64_t deadline);
void epoll_be_cancel_fd(struct worker *w, int fd);  /* any thread */
uint32_t epoll_be_nwait(struct worker *w);           /* any thread; relaxed snapshot */
int  epoll_be_rescue(struct worker *w);              /* the sysmon, for a stuck worker (E4) */

/* ---- poll_none.c: a worker without a backend sleeps on w->wake alone */
void none_sleep(struct worker *w, int64_t deadline);
void none_kick(struct worker *w);

#endif
