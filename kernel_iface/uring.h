/* kernel_iface/uring.h — one io_uring: setup with feature probing, SQE helpers, submit, wait.
 *
 * Responsibility: a thin, errno-free layer over liburing 2.3 for rings owned by one thread.
 *   kif_uring_probe decides, once, with which setup flags rings are created (SINGLE_ISSUER +
 *   DEFER_TASKRUN, else COOP_TASKRUN, else plain) and which optional operations work
 *   (IORING_OP_FUTEX_WAIT, cancel by fd). kif_uring_init creates a ring with those flags.
 *   The only hand-filled SQE (liburing 2.3 has no futex helpers) is kif_prep_futex_wait.
 * Contract: every function returns 0 / a count or -errno; errno is never relied on. A ring is
 *   created, submitted to and waited on by one thread only (SINGLE_ISSUER, DEFER_TASKRUN).
 * Depends on: liburing, kernel_iface/clock. Knows nothing of goroutines.
 */
#ifndef RINGO_KI_URING_H
#define RINGO_KI_URING_H
#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

/* What the caller is willing to use (the rest of the fallback chain is forced by clearing). */
struct kif_uring_want {
    bool defer_taskrun;    /* try SINGLE_ISSUER | DEFER_TASKRUN first */
    bool futex_wait;       /* probe IORING_OP_FUTEX_WAIT */
    bool shared;           /* rings any thread may submit to and reap (the sysmon's rescue of a
                              stuck worker): no SINGLE_ISSUER, DEFER_TASKRUN or COOP_TASKRUN, and
                              no registered ring fd (a registration is per thread) */
};

/* What the kernel offers. Filled once by kif_uring_probe. */
struct kif_uring_caps {
    unsigned setup_flags;  /* IORING_SETUP_* every ring is created with */
    unsigned features;     /* IORING_FEAT_* reported by the kernel */
    bool defer_taskrun;    /* completions run only when the owner enters with GETEVENTS */
    bool coop_taskrun;     /* completions run at the owner's next kernel entry */
    bool taskrun_flag;     /* the kernel raises IORING_SQ_TASKRUN when task work is pending */
    bool shared;           /* rings were made for want->shared: any thread may enter them */
    bool futex_wait;       /* IORING_OP_FUTEX_WAIT works (Linux 6.7+) */
    bool cancel_fd;        /* IORING_OP_ASYNC_CANCEL with IORING_ASYNC_CANCEL_FD|ALL works (5.19+) */
    char why[128];         /* why a feature (or io_uring itself) is unavailable; for RINGO_DEBUG */
};

/* Probe on the calling thread (a temporary ring is created and destroyed there). Returns 0 when
 * io_uring is usable for ringo's operations, else -errno (ENOSYS: no io_uring; EPERM: refused by
 * kernel.io_uring_disabled or seccomp; EOPNOTSUPP: a required operation is missing). */
int kif_uring_probe(const struct kif_uring_want *want, struct kif_uring_caps *caps);

/* Create a ring on the calling thread with caps->setup_flags, sq_entries SQEs and room for
 * cq_entries CQEs. The ring fd is registered when the kernel allows (cheaper enter). */
int kif_uring_init(struct io_uring *ring, unsigned sq_entries, unsigned cq_entries,
                   const struct kif_uring_caps *caps);
void kif_uring_exit(struct io_uring *ring);
/* IORING_REGISTER_SYNC_CANCEL (6.0) of every request in the ring, waiting at most timeout_ns
 * for them to end; from any thread of a ring without SINGLE_ISSUER. 0: some were cancelled;
 * -ENOENT: none were in flight; -EINVAL (older kernels), -EEXIST (SINGLE_ISSUER), -ETIME. */
int kif_uring_cancel_all_sync(struct io_uring *ring, int64_t timeout_ns);

/* IORING_OP_FUTEX_WAIT on a private 32-bit futex word: completes (res 0) when the word is
 * woken by futex_wake, or at once with -EAGAIN if *uaddr != expected when it is armed. */
void kif_prep_futex_wait(struct io_uring_sqe *sqe, uint32_t *uaddr, uint32_t expected);

/* Submit filled SQEs without waiting. Returns how many the kernel took, or -errno. */
int kif_uring_submit(struct io_uring *ring);
/* Submit filled SQEs and run pending completion work (DEFER_TASKRUN / COOP_TASKRUN), without
 * waiting for anything. One io_uring_enter. */
int kif_uring_submit_getevents(struct io_uring *ring);
/* Submit filled SQEs, then block until at least one CQE is ready or the absolute
 * CLOCK_MONOTONIC deadline (ns, -1 = none) passes. Returns >= 0, -ETIME, or -EINTR. */
int kif_uring_wait(struct io_uring *ring, int64_t deadline);

/* True when the kernel holds completions that only an enter with GETEVENTS releases: task work
 * flagged by IORING_SQ_TASKRUN (needs caps.taskrun_flag), or a CQ overflow backlog. A relaxed
 * read of the shared flags word: a stale answer only delays a reap to the next poll or to the
 * idle sleep, which always enters the kernel with GETEVENTS. */
static inline bool kif_uring_needs_enter(const struct io_uring *ring)
{
    unsigned f = IO_URING_READ_ONCE(*ring->sq.kflags);
    return (f & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) != 0;
}

#endif
