/* sched/io.c — the I/O backend seam: a worker's idle sleep and completion polling.
 * Responsibility: sched_io_* hooks (sched.h). Without a ring (until the io_uring backend is
 * initialised for the worker), the idle sleep is a futex wait on w->wake (sched/idle.c) and
 * there are no completions to poll.
 * Depends on: kernel_iface/futex. */
#include "sched/sched.h"
#include "kernel_iface/futex.h"

void sched_idle_futex_sleep(struct worker *w, int64_t deadline);

int sched_io_worker_init(struct worker *w) { (void)w; return 0; }
int sched_io_poll(struct worker *w) { (void)w; return 0; }
void sched_io_flush(struct worker *w) { (void)w; }
void sched_io_sleep(struct worker *w, int64_t deadline) { sched_idle_futex_sleep(w, deadline); }
void sched_io_kick(struct worker *w) { futex_wake((uint32_t *)&w->wake, 1); }
void sched_io_stats(uint64_t *submitted, uint64_t *completed) { *submitted = 0; *completed = 0; }
