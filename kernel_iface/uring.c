/* kernel_iface/uring.c — see uring.h.
 *
 * Responsibility: ring setup along the fallback chain, operation probing, the futex SQE,
 *   submit/wait wrappers.
 * Invariants: without want->shared a ring is touched by the thread that created it only
 *   (SINGLE_ISSUER, and DEFER_TASKRUN runs completions only for that thread); with it, by any
 *   thread, one at a time (the caller's lock). kif_uring_probe leaves nothing open.
 * Fallback chain (each step is tried when the previous one is refused with -EINVAL, i.e. the
 *   kernel is too old for a flag):
 *     1. SUBMIT_ALL | SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG   (6.1)
 *     2. SUBMIT_ALL | SINGLE_ISSUER | COOP_TASKRUN | TASKRUN_FLAG    (6.0)
 *     3. SUBMIT_ALL | COOP_TASKRUN | TASKRUN_FLAG                    (5.19)
 *     4. SUBMIT_ALL                                                   (5.18)
 *     5. plain
 *   Shared rings (want->shared) start at step 4: a completion is posted by task work on the
 *   submitting thread, and only the default task work (an IPI, TWA_SIGNAL) runs it while that
 *   thread computes or sleeps in a system call; COOP and DEFER wait for it to enter the kernel
 *   for the ring, which a stuck thread never does.
 *   each with CQSIZE when the kernel takes it. Any other error (ENOSYS: no io_uring; EPERM:
 *   kernel.io_uring_disabled or a seccomp filter; ENOMEM) ends the chain: no io_uring at all.
 * Depends on: liburing, kernel_iface/clock.
 */
#include "kernel_iface/uring.h"
#include "kernel_iface/clock.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Linux 6.7 uapi values, absent from liburing 2.3 / Debian 12 headers. */
#define KIF_IORING_OP_FUTEX_WAIT 51
#define KIF_FUTEX2_SIZE_U32 0x02u
#define KIF_FUTEX2_PRIVATE 128u       /* == FUTEX_PRIVATE_FLAG */
#define KIF_FUTEX_BITSET_MATCH_ANY 0xffffffffu

#ifndef IORING_SETUP_SUBMIT_ALL
#define IORING_SETUP_SUBMIT_ALL (1U << 7)
#endif

void kif_prep_futex_wait(struct io_uring_sqe *sqe, uint32_t *uaddr, uint32_t expected)
{
    /* The one hand-filled SQE (io_uring/futex.c io_futex_prep): fd carries the futex2 flags,
     * addr the word, addr2 (off) the expected value, addr3 the wake mask; len, the op flags
     * (futex_flags aliases rw_flags), buf_index and file_index must be zero. This is what
     * liburing >= 2.5 io_uring_prep_futex_wait does. */
    io_uring_prep_rw(KIF_IORING_OP_FUTEX_WAIT, sqe, (int)(KIF_FUTEX2_SIZE_U32 | KIF_FUTEX2_PRIVATE), uaddr, 0,
                     expected); /* zeroes len, rw_flags, buf_index, personality, file_index, addr3 */
    sqe->addr3 = KIF_FUTEX_BITSET_MATCH_ANY;
}

static int try_setup(unsigned flags, struct io_uring_params *out)
{
    struct io_uring ring;
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = flags;
    p.cq_entries = 64;
    int r = io_uring_queue_init_params(8, &ring, &p);
    if (r == 0) {
        *out = p;
        io_uring_queue_exit(&ring);
    }
    return r;
}

/* Run one SQE on ring and return its CQE's res (the ring must be otherwise idle). */
static int run_one(struct io_uring *ring, struct io_uring_sqe *sqe)
{
    (void)sqe;
    struct io_uring_cqe *cqe;
    int r = io_uring_submit_and_wait(ring, 1);
    if (r < 0)
        return r;
    r = io_uring_peek_cqe(ring, &cqe);
    if (r < 0)
        return r;
    int res = cqe->res;
    io_uring_cqe_seen(ring, cqe);
    return res;
}

/* One story in order, kept as one function (97 lines): create a ring with the best flags the
 * kernel takes, stepping down (SINGLE_ISSUER+DEFER_TASKRUN, COOP_TASKRUN, plain); check the
 * opcodes ringo needs and IORING_ASYNC_CANCEL_FD; try a FUTEX_WAIT; record each answer and the reason for each fallback
 * in caps. Each step reads the result of the one before. */
int kif_uring_probe(const struct kif_uring_want *want, struct kif_uring_caps *caps)
{
    static const struct {
        unsigned flags;
        bool defer, coop, flag;
        const char *name;
    } chain[] = {
        { IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
              IORING_SETUP_TASKRUN_FLAG, true, false, true, "defer_taskrun" },
        { IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN |
              IORING_SETUP_TASKRUN_FLAG, false, true, true, "coop_taskrun" },
        { IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG, false, true, true,
          "coop_taskrun" },
        { IORING_SETUP_SUBMIT_ALL, false, false, false, "submit_all" },
        { 0, false, false, false, "plain" },
    };
    memset(caps, 0, sizeof *caps);
    struct io_uring_params p;
    int r = -EINVAL;
    size_t i;
    for (i = want->shared ? 3 : want->defer_taskrun ? 0 : 1; i < sizeof chain / sizeof chain[0]; i++) {
        r = try_setup(chain[i].flags | IORING_SETUP_CQSIZE, &p);
        if (r == -EINVAL) {
            r = try_setup(chain[i].flags, &p);
            if (r == 0)
                caps->setup_flags = chain[i].flags;
        } else if (r == 0) {
            caps->setup_flags = chain[i].flags | IORING_SETUP_CQSIZE;
        }
        if (r != -EINVAL)
            break;
    }
    if (r < 0) {
        snprintf(caps->why, sizeof caps->why, "io_uring_setup: %s", strerror(-r));
        return r;
    }
    caps->features = p.features;
    caps->defer_taskrun = chain[i].defer;
    caps->coop_taskrun = chain[i].coop;
    caps->taskrun_flag = chain[i].flag;
    caps->shared = want->shared;

    /* Operations ringo cannot do without (all in 5.6, LINK_TIMEOUT and ASYNC_CANCEL included). */
    struct io_uring ring;
    memset(&p, 0, sizeof p);
    p.flags = caps->setup_flags & ~IORING_SETUP_CQSIZE;
    r = io_uring_queue_init_params(8, &ring, &p);
    if (r < 0) {
        snprintf(caps->why, sizeof caps->why, "io_uring_setup: %s", strerror(-r));
        return r;
    }
    struct io_uring_probe *pr = io_uring_get_probe_ring(&ring);
    static const int need[] = { IORING_OP_READ, IORING_OP_WRITE, IORING_OP_RECV, IORING_OP_SEND,
                                IORING_OP_ACCEPT, IORING_OP_CONNECT, IORING_OP_POLL_ADD,
                                IORING_OP_LINK_TIMEOUT, IORING_OP_ASYNC_CANCEL, IORING_OP_SENDMSG,
                                IORING_OP_RECVMSG };
    if (!pr) {
        snprintf(caps->why, sizeof caps->why, "io_uring: cannot probe operations (kernel older than 5.6)");
        io_uring_queue_exit(&ring);
        return -EOPNOTSUPP;
    }
    for (size_t k = 0; k < sizeof need / sizeof need[0]; k++)
        if (!io_uring_opcode_supported(pr, need[k])) {
            snprintf(caps->why, sizeof caps->why, "io_uring: operation %d unsupported", need[k]);
            io_uring_free_probe(pr);
            io_uring_queue_exit(&ring);
            return -EOPNOTSUPP;
        }
    bool futex_op = io_uring_opcode_supported(pr, KIF_IORING_OP_FUTEX_WAIT);
    io_uring_free_probe(pr);

    /* Cancel by fd (5.19): ringo_close needs it to end waits on the fd. Probed by doing it. */
    int efd = eventfd(0, EFD_CLOEXEC);
    if (efd >= 0) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
        io_uring_prep_cancel_fd(sqe, efd, IORING_ASYNC_CANCEL_ALL);
        sqe->user_data = 1;
        int res = run_one(&ring, sqe);
        caps->cancel_fd = res >= 0 || res == -ENOENT;
        close(efd);
    }
    if (!caps->cancel_fd) {
        snprintf(caps->why, sizeof caps->why, "io_uring: no IORING_ASYNC_CANCEL_FD (kernel older than 5.19)");
        io_uring_queue_exit(&ring);
        return -EOPNOTSUPP;
    }

    /* FUTEX_WAIT (6.7): armed on a word that does not hold the expected value it must complete
     * at once with -EAGAIN; anything else (-EINVAL) means the kernel does not do it. */
    if (want->futex_wait && futex_op) {
        uint32_t word = 1;
        struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
        kif_prep_futex_wait(sqe, &word, 0);
        sqe->user_data = 2;
        caps->futex_wait = run_one(&ring, sqe) == -EAGAIN;
    }
    if (!caps->futex_wait)
        snprintf(caps->why, sizeof caps->why, "%s",
                 !want->futex_wait ? "futex wait disabled" : "no IORING_OP_FUTEX_WAIT (kernel older than 6.7)");
    io_uring_queue_exit(&ring);
    return 0;
}

int kif_uring_init(struct io_uring *ring, unsigned sq_entries, unsigned cq_entries,
                   const struct kif_uring_caps *caps)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = caps->setup_flags;
    if (p.flags & IORING_SETUP_CQSIZE)
        p.cq_entries = cq_entries;
    int r = io_uring_queue_init_params(sq_entries, ring, &p);
    if (r < 0)
        return r;
    if (!caps->shared) /* a registration is per thread: a shared ring is entered by its fd */
        (void)io_uring_register_ring_fd(ring); /* 5.18+: saves an fd lookup per enter; optional */
    return 0;
}

void kif_uring_exit(struct io_uring *ring)
{
    io_uring_queue_exit(ring);
}

int kif_uring_cancel_all_sync(struct io_uring *ring, int64_t timeout_ns)
{
    struct io_uring_sync_cancel_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.fd = -1;
    reg.flags = IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL;
    reg.timeout.tv_sec = timeout_ns / 1000000000LL;
    reg.timeout.tv_nsec = timeout_ns % 1000000000LL;
    return io_uring_register_sync_cancel(ring, &reg);
}

int kif_uring_submit(struct io_uring *ring)
{
    return io_uring_submit(ring);
}

int kif_uring_submit_getevents(struct io_uring *ring)
{
    return io_uring_submit_and_get_events(ring);
}

int kif_uring_wait(struct io_uring *ring, int64_t deadline)
{
    if (deadline < 0)
        return io_uring_submit_and_wait(ring, 1);
    int64_t left = deadline - clk_now();
    if (left < 0)
        left = 0;
    struct __kernel_timespec ts = { .tv_sec = left / 1000000000LL, .tv_nsec = left % 1000000000LL };
    struct io_uring_cqe *cqe;
    /* With IORING_FEAT_EXT_ARG (5.11) the timeout rides on the enter itself; older kernels get
     * an internal TIMEOUT SQE whose CQE carries LIBURING_UDATA_TIMEOUT (reapers skip it). */
    return io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, NULL);
}
