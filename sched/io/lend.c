/* sched/io/lend.c — receives into buffers ringo lends: ringo_recv_lend and ringo_buf_release.
 *
 * Why (issue 13): a goroutine parked in ringo_read(fd, buf, 4096) holds its buffer, and the
 *   stack pages under it, for as long as the connection is idle: B8's echo cost 8 KiB per idle
 *   connection. ringo_recv_lend waits holding nothing; a buffer is chosen only when data has
 *   arrived, and goes back with ringo_buf_release once the program is done with it. An idle
 *   connection then costs its goroutine's one stack page.
 *
 * L1  ringo_recv_lend(fd, &data, flags, deadline): > 0 bytes at data (at most LEND_SIZE); 0 end
 *     of file and -errno lend nothing. The buffer is the caller's until ringo_buf_release(data)
 *     from any thread or goroutine; releasing twice, or a pointer ringo did not lend, is fatal
 *     (a one-line message, as Go's runtime does for a double close).
 * L2  On an io_uring worker: a single-shot IORING_OP_RECV with IOSQE_BUFFER_SELECT from the
 *     worker's provided-buffer ring (poll_uring.c U9, made on first use; kernel 5.19). The
 *     kernel picks the buffer when data arrives. Multishot receive is not used: a goroutine
 *     wants one result per call, and a multishot's later completions would need somewhere to
 *     wait that the goroutine does not own.
 * L3  Every buffer has a header of LEND_HDR bytes before its data: magic, kind (a ring's pool,
 *     or the heap), the pool's worker and buffer id, and out (1 while lent: acq_rel exchange
 *     on release catches a double release).
 * L4  Otherwise (epoll, a plain thread, no pool here: RINGO_DISABLE=pbuf_ring or an old
 *     kernel, or the pool empty: -ENOBUFS from the kernel): wait for POLLIN with ringo_poll
 *     (holding nothing), then take a heap buffer and receive without waiting; EAGAIN (another
 *     reader was first) gives the buffer back and waits again. A heap buffer is freed on
 *     release.
 * Invariants: L3's header is written before the buffer is handed out (the kernel wrote the
 *   data before its completion, which readied the goroutine: sched_ready orders both).
 * Depends on: io.c (io_recv_lend_uring), poll_uring.c (the pool), ringo_poll.
 */
#include "sched/io/io.h"
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define LEND_MAGIC 0x72696e67u /* "ring" */
enum { LEND_POOL = 1, LEND_HEAP = 2 };

struct lend_hdr {
    uint32_t magic;
    uint32_t kind;       /* LEND_POOL, LEND_HEAP */
    uint32_t wid, bid;   /* LEND_POOL: whose pool, which buffer */
    _Atomic uint32_t out;
};
_Static_assert(sizeof(struct lend_hdr) <= LEND_HDR, "the header fits before the data");

void lend_hdr_init_pool(void *p, unsigned wid, uint32_t bid)
{
    struct lend_hdr *h = p;
    h->magic = LEND_MAGIC;
    h->kind = LEND_POOL;
    h->wid = wid;
    h->bid = bid;
    atomic_store_explicit(&h->out, 1, memory_order_relaxed); /* handed out by this thread */
}

/* L4 */
static ssize_t recv_lend_heap(int fd, void **data, int flags, int64_t deadline)
{
    for (;;) {
        int p = ringo_poll(fd, POLLIN, deadline);
        if (p < 0)
            return p;
        struct lend_hdr *h = malloc(LEND_HDR + LEND_SIZE);
        if (!h)
            return -ENOMEM;
        ssize_t n;
        do
            n = recv(fd, (char *)h + LEND_HDR, LEND_SIZE, flags | MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        int err = n < 0 ? errno : 0;
        if (n > 0) {
            h->magic = LEND_MAGIC;
            h->kind = LEND_HEAP;
            h->wid = h->bid = 0;
            atomic_store_explicit(&h->out, 1, memory_order_relaxed); /* handed out by this thread */
            *data = (char *)h + LEND_HDR;
            atomic_fetch_add_explicit(&io_st_lent_heap, 1, memory_order_relaxed); /* stats only; any thread */
            return n;
        }
        free(h);
        if (n == 0)
            return 0;
        if (err != EAGAIN)
            return -err;
        if (deadline >= 0 && ringo_now() >= deadline)
            return -ETIMEDOUT; /* ready, yet taken by another reader, and no time left */
    }
}

ssize_t ringo_recv_lend(int fd, void **data, int flags, int64_t deadline)
{
    if (fd < 0)
        return -EBADF;
    if (!data)
        return -EFAULT;
    *data = NULL;
    void *lent = NULL;
    ssize_t n = io_recv_lend_uring(fd, &lent, flags, deadline); /* L2 */
    if (n == -ENOBUFS)
        return recv_lend_heap(fd, data, flags, deadline);
    if (n > 0) {
        SCHED_CHECK(lent != NULL, "ringo_recv_lend: %zd bytes but no buffer", n);
        *data = lent;
    }
    return n;
}

void ringo_buf_release(void *data)
{
    if (!data)
        return;
    struct lend_hdr *h = (struct lend_hdr *)((char *)data - LEND_HDR);
    if (h->magic != LEND_MAGIC)
        sched_fatal("ringo_buf_release: %p is not a buffer ringo_recv_lend lent", data);
    /* acq_rel: the release of the last user of the data before it goes back (to the kernel
     * or to free) */
    if (atomic_exchange_explicit(&h->out, 0, memory_order_acq_rel) != 1)
        sched_fatal("ringo_buf_release: buffer %p released twice", data);
    if (h->kind == LEND_POOL)
        uring_be_lend_recycle(h->wid, h->bid);
    else
        free(h);
}
