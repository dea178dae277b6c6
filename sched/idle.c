/* sched/idle.c — a worker's idle sleep without an I/O ring: a plain futex wait on w->wake.
 * Responsibility: the sleep hooks of sched.h when no I/O backend owns the worker's sleep.
 * The io_uring backend (sched/io.c) replaces these per worker at start-up by setting the
 * function pointers in struct idle_ops; this file is also the forced fallback.
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
