/* kernel_iface/futex.c — see futex.h.
 * Private futexes (FUTEX_PRIVATE_FLAG): ringo's waiters never share a word across processes.
 * Deadlines use FUTEX_WAIT_BITSET, which takes an absolute CLOCK_MONOTONIC time, so a retry
 * loop after EINTR or a spurious wake never stretches the total wait. */
#include "kernel_iface/futex.h"
#include "kernel_iface/clock.h"
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

int futex_wait(uint32_t *addr, uint32_t val, int64_t deadline)
{
    struct timespec ts, *tsp = NULL;
    if (deadline >= 0) {
        ts = clk_to_ts(deadline);
        tsp = &ts;
    }
    long r = syscall(SYS_futex, addr, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, val, tsp, NULL,
                     FUTEX_BITSET_MATCH_ANY);
    if (r == 0)
        return 0;
    if (errno == EAGAIN)
        return 0; /* *addr != val: the caller's condition already changed */
    return -errno;
}

int futex_wake(uint32_t *addr, int n)
{
    long r = syscall(SYS_futex, addr, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n, NULL, NULL, 0);
    return r < 0 ? -errno : (int)r;
}
