/* B7 memory — 100,000 goroutines parked on a receive from one unbuffered channel. Metric:
 * (RSS with them parked - RSS before they were started) / 100,000, in bytes, from
 * /proc/self/statm. Then the driver sends 0..n-1 and checks that every goroutine got exactly
 * one value and every value went to exactly one goroutine. Go peer: bench/go/b7_memory. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* the build passes -D_GNU_SOURCE; standalone builds need it too */
#endif
#include <ringo.h>
#include <stdatomic.h>
#include "bench_util.h"

static ringo_chan *chan;
static int64_t *got;                     /* got[i]: value goroutine i received; own slot only */
static _Atomic int64_t started;          /* goroutines that reached their receive */
static struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;

static void parked(void *arg)
{
    int64_t idx = (int64_t)(intptr_t)arg, v = -1;

    atomic_fetch_add_explicit(&started, 1, memory_order_relaxed);  /* progress hint only */
    if (ringo_chan_recv(chan, &v) != 1)
        bench_fail("memory: recv failed");
    got[idx] = v;
    ringo_wg_done(&wg);                  /* orders got[idx] before the driver's wg_wait */
}

static void driver(void)
{
    int64_t n = bench_scaled(100000, 100), rss0, rss1, t_end;
    unsigned char *seen;

    chan = ringo_chan_make(sizeof(int64_t), 0);
    got = malloc((size_t)n * sizeof *got);
    seen = malloc((size_t)n);
    if (chan == NULL || got == NULL || seen == NULL)
        bench_fail("memory: allocation failed");
    memset(got, 0xff, (size_t)n * sizeof *got);   /* touch now so it is in the "before" RSS */
    memset(seen, 0, (size_t)n);

    rss0 = bench_rss_bytes();
    ringo_wg_add(&wg, n);
    for (int64_t i = 0; i < n; i++)
        bench_go(parked, (void *)(intptr_t)i);
    t_end = bench_now_ns() + 60 * (int64_t)1000000000;
    while (atomic_load_explicit(&started, memory_order_relaxed) < n) {
        if (bench_now_ns() > t_end)
            bench_fail("memory: only %" PRId64 " of %" PRId64 " goroutines started in 60 s",
                       atomic_load_explicit(&started, memory_order_relaxed), n);
        ringo_sleep(1000000);
    }
    ringo_sleep(20000000);   /* let the last ones get from the counter into the receive */
    rss1 = bench_rss_bytes();

    for (int64_t i = 0; i < n; i++)
        if (ringo_chan_send(chan, &i) != 0)
            bench_fail("memory: send failed");
    ringo_wg_wait(&wg);
    for (int64_t i = 0; i < n; i++) {
        if (got[i] < 0 || got[i] >= n || seen[got[i]])
            bench_fail("memory: goroutine %" PRId64 " got %" PRId64 " (duplicate or out of range)", i, got[i]);
        seen[got[i]] = 1;
    }
    ringo_chan_free(chan);
    free(seen);
    free(got);
    bench_result("memory", (double)(rss1 - rss0) / (double)n, "bytes/goroutine");
}

int main(void)
{
    bench_go_main(driver);
    return 0;
}
