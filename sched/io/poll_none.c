/* sched/io/poll_none.c — a worker's idle sleep without an I/O backend: a futex wait on w->wake.
 * Responsibility: the sleep and kick of sched/poller.h for a worker that has neither an
 * io_uring nor an epoll (both refused: seccomp, fd limits). Its I/O calls block the worker
 * (io.c says so once). No lost wake-up: the waker stores w->wake = 1 (release) before the
 * kick, and the futex wait compares the word to 0 in the kernel.
 * Depends on: sched.h, kernel_iface/futex. */
#include "sched/io/io.h"
#include "kernel_iface/futex.h"
#include <errno.h>

void none_sleep(struct worker *w, int64_t deadline)
{
    /* acquire: pairs with sched_wakep's release store of 1 */
    while (atomic_load_explicit(&w->wake, memory_order_acquire) == 0) {
        if (futex_wait((uint32_t *)&w->wake, 0, deadline) == -ETIMEDOUT)
            return;
    }
}

void none_kick(struct worker *w)
{
    futex_wake((uint32_t *)&w->wake, 1);
}
