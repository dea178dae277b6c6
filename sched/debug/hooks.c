/* sched/debug/hooks.c — the table through which the scheduler calls the debug layer.
 * Responsibility: sched_debug_hooks (declared in sched/sched.h): start the monitor, check for a
 * deadlock, print stats at exit. One table, so the direction check (tools/check-layers) can
 * allow exactly this one reference from below.
 * Depends on: sched.h, sched/debug/debug.h. */
#include "sched/sched.h"
#include "sched/debug/debug.h"

const struct debug_hooks sched_debug_hooks = {
    .init = sched_monitor_init,
    .check_deadlock = sched_check_deadlock,
    .at_exit = sched_stats_at_exit,
};
