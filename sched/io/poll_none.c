/* sched/idle.c — a worker's idle sleep without an I/O ring: a plain futex wait on w->wake.
 * Responsibility: the sleep hooks of sched.h when no I/O backend owns the worker's sleep.
 * sched/io.c calls it for a worker that has no ring and no epoll backend of its own.
 * Depends on: kernel_iface/futex. */
#include "sched/sched.h"
#include "kernel_iface/futex.h"
#include <errno.h>

void sched_idle_futex_sleep(struct worker *w, int64_t deadline);
void sched_idle_futex_sleep(struct worker *w, int64_t deadline)
{
    /* acquire: pairs with sched_wakep's release store of 1 */
    while (atomic_load_explicit(&w->wake, memory_order_acquire) == 0) {
        if (futex_wait((uint32_t *)&w->wake, 0, deadline) == -ETIMEDOUT)
            return;
    }
}
