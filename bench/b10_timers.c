/* B10 timers — 100,000 goroutines each sleep a random 0..10 ms (uniform, in ns), 10 rounds.
 * Overshoot = time actually slept - time asked. Metrics (three RESULT lines): overshoot p50 and
 * p99 in ms over all sleeps, and the CPU seconds (user + system, getrusage) the process used
 * for the whole run. Check: every sleep finished and none returned early.
 * The durations come from splitmix64 seeded with the goroutine's index: the Go peer
 * (bench/go/b10_timers) sleeps exactly the same durations. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* the build passes -D_GNU_SOURCE; standalone builds need it too */
#endif
#include <ringo.h>
#include "bench_util.h"

#define ROUNDS 10
#define MAX_NS 10000000   /* 10 ms */

static int64_t *over;     /* over[i*ROUNDS + r]: overshoot in ns; own slots only */
static struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;

static void sleeper(void *arg)
{
    int64_t idx = (int64_t)(intptr_t)arg;
    uint64_t rng = (uint64_t)idx;

    for (int r = 0; r < ROUNDS; r++) {
        int64_t d = (int64_t)(bench_splitmix64(&rng) % (MAX_NS + 1));
        int64_t t0 = ringo_now();
        ringo_sleep(d);
        over[idx * ROUNDS + r] = ringo_now() - t0 - d;
    }
    ringo_wg_done(&wg);
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void driver(void)
{
    int64_t n = bench_scaled(100000, 100), total;
    double cpu0, cpu1;

    total = n * ROUNDS;
    over = malloc((size_t)total * sizeof *over);
    if (over == NULL)
        bench_fail("timers: allocation failed");
    for (int64_t i = 0; i < total; i++)
        over[i] = INT64_MIN;             /* "never finished" */

    cpu0 = bench_cpu_seconds();
    ringo_wg_add(&wg, n);
    for (int64_t i = 0; i < n; i++)
        bench_go(sleeper, (void *)(intptr_t)i);
    ringo_wg_wait(&wg);
    cpu1 = bench_cpu_seconds();

    for (int64_t i = 0; i < total; i++) {
        if (over[i] == INT64_MIN)
            bench_fail("timers: sleep %" PRId64 " never finished", i);
        if (over[i] < 0)
            bench_fail("timers: sleep %" PRId64 " returned %" PRId64 " ns early", i, -over[i]);
    }
    qsort(over, (size_t)total, sizeof *over, cmp64);
    bench_result("timers/p50", (double)over[(total - 1) * 50 / 100] / 1e6, "ms");
    bench_result("timers/p99", (double)over[(total - 1) * 99 / 100] / 1e6, "ms");
    bench_result("timers/cpu", cpu1 - cpu0, "s");
    free(over);
}

int main(void)
{
    bench_go_main(driver);
    return 0;
}
