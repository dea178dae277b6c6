/* B1 spawn — start 1,000,000 goroutines that each bump an atomic counter and return; the
 * driver waits for all of them on a wait group. Metric: ns per goroutine (spawn + run + exit).
 * Check: the counter equals the number spawned. Go peer: bench/go/b1_spawn. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* the build passes -D_GNU_SOURCE; standalone builds need it too */
#endif
#include <ringo.h>
#include <stdatomic.h>
#include "bench_util.h"

static _Atomic int64_t counter;          /* bumped by every goroutine */
static struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;

static void bump(void *arg)
{
    (void)arg;
    atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed); /* counted only; wg orders */
    ringo_wg_done(&wg);
}

static void driver(void)
{
    int64_t n = bench_scaled(1000000, 1000);
    int64_t t0 = bench_now_ns(), t1;

    for (int64_t i = 0; i < n; i++) {
        ringo_wg_add(&wg, 1);
        bench_go(bump, NULL);
    }
    ringo_wg_wait(&wg);
    t1 = bench_now_ns();
    if (atomic_load_explicit(&counter, memory_order_relaxed) != n) /* after wg_wait: all done */
        bench_fail("spawn: counter %" PRId64 ", want %" PRId64,
                   atomic_load_explicit(&counter, memory_order_relaxed), n);
    bench_result("spawn", (double)(t1 - t0) / (double)n, "ns/goroutine");
}

int main(void)
{
    bench_go_main(driver);
    return 0;
}
