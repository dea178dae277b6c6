/* sched/debug/stats.c — ringo_stats_get and RINGO_DEBUG=stats.
 * Responsibility: sum the per-worker counters (each written by its owner, relaxed) into the
 * public struct ringo_stats; print them at exit when asked. Sums are racy snapshots.
 * Depends on: sched.h, sched/poller.h (the I/O totals). */
#include "sched/sched.h"
#include "sched/debug/debug.h"
#include "sched/poller.h"
#include <stdio.h>
#include <string.h>

void ringo_stats_get(struct ringo_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!sched_started())
        return;
    out->goroutines = ringo_num_goroutines();
    out->spawned = (uint64_t)atomic_load_explicit(&sched.thread_spawned, memory_order_relaxed);
    out->wakeups = atomic_load_explicit(&sched.thread_wakeups, memory_order_relaxed);
    for (unsigned i = 0, n = sched_nworkers(); i < n; i++) {
        struct worker *w = sched.w[i];
        out->spawned += atomic_load_explicit(&w->st_spawned, memory_order_relaxed);   /* stats only */
        out->switches += atomic_load_explicit(&w->st_switches, memory_order_relaxed);
        out->steals += atomic_load_explicit(&w->st_steals, memory_order_relaxed);
        out->parks += atomic_load_explicit(&w->st_parks, memory_order_relaxed);
        out->wakeups += atomic_load_explicit(&w->st_wakeups, memory_order_relaxed);
        out->spilled += atomic_load_explicit(&w->st_spilled, memory_order_relaxed);
    }
    sched_poller.stats(out);
}

void sched_stats_at_exit(void)
{
    struct ringo_stats s;
    ringo_stats_get(&s);
    fprintf(stderr,
            "ringo stats: goroutines=%llu spawned=%llu switches=%llu steals=%llu parks=%llu wakeups=%llu "
            "io_submitted=%llu io_completed=%llu spilled=%llu io_lent_ring=%llu io_lent_heap=%llu\n",
            (unsigned long long)s.goroutines, (unsigned long long)s.spawned, (unsigned long long)s.switches,
            (unsigned long long)s.steals, (unsigned long long)s.parks, (unsigned long long)s.wakeups,
            (unsigned long long)s.io_submitted, (unsigned long long)s.io_completed,
            (unsigned long long)s.spilled, (unsigned long long)s.io_lent_ring, (unsigned long long)s.io_lent_heap);
}

