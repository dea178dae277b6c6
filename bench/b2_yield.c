/* B2 yield — two goroutines alternately call ringo_yield, 10,000,000 switches in all.
 * Defined for one worker (the runner runs it with RINGO_PROCS=1); with more workers the two
 * may run side by side and the number measures yield's cost rather than a switch.
 * Metric: ns per switch (one yield = one switch). Check: both did all their yields.
 * Go peer: bench/go/b2_yield (runtime.Gosched). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* the build passes -D_GNU_SOURCE; standalone builds need it too */
#endif
#include <ringo.h>
#include "bench_util.h"

struct yielder {
    int64_t todo;   /* yields to do */
    int64_t done;   /* yields done: own field, read by the driver after the wait group */
};

static struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;

static void yielder(void *arg)
{
    struct yielder *y = arg;
    for (int64_t i = 0; i < y->todo; i++) {
        ringo_yield();
        y->done++;
    }
    ringo_wg_done(&wg);
}

static void driver(void)
{
    int64_t n = bench_scaled(10000000, 1000) / 2 * 2;
    struct yielder y[2] = { { n / 2, 0 }, { n / 2, 0 } };
    int64_t t0, t1;

    t0 = bench_now_ns();
    ringo_wg_add(&wg, 2);
    bench_go(yielder, &y[0]);
    bench_go(yielder, &y[1]);
    ringo_wg_wait(&wg);
    t1 = bench_now_ns();
    if (y[0].done + y[1].done != n)
        bench_fail("yield: %" PRId64 " + %" PRId64 " yields, want %" PRId64, y[0].done, y[1].done, n);
    bench_result("yield", (double)(t1 - t0) / (double)n, "ns/switch");
}

int main(void)
{
    bench_go_main(driver);
    return 0;
}
