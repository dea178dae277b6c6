/* B3 pingpong — two goroutines bounce an integer over two unbuffered channels, 1,000,000 round
 * trips (run on 1 worker and on all). Metric: ns per round trip. Check: every reply is the
 * request plus one. Go peer: bench/go/b3_pingpong. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* the build passes -D_GNU_SOURCE; standalone builds need it too */
#endif
#include <ringo.h>
#include "bench_util.h"

static ringo_chan *ping, *pong;
static struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;

static void ponger(void *arg)
{
    int64_t v;
    (void)arg;
    RINGO_RANGE(ping, &v) {
        v++;
        if (ringo_chan_send(pong, &v) != 0)
            bench_fail("pingpong: send on pong failed");
    }
    ringo_wg_done(&wg);
}

static void driver(void)
{
    int64_t n = bench_scaled(1000000, 1000);
    int64_t t0, t1, v = 0;

    ping = ringo_chan_make(sizeof(int64_t), 0);
    pong = ringo_chan_make(sizeof(int64_t), 0);
    if (ping == NULL || pong == NULL)
        bench_fail("ringo_chan_make: %s", strerror(errno));
    ringo_wg_add(&wg, 1);
    bench_go(ponger, NULL);
    t0 = bench_now_ns();
    for (int64_t i = 0; i < n; i++) {
        if (ringo_chan_send(ping, &i) != 0)
            bench_fail("pingpong: send on ping failed");
        if (ringo_chan_recv(pong, &v) != 1 || v != i + 1)
            bench_fail("pingpong: round trip %" PRId64 " got %" PRId64 ", want %" PRId64, i, v, i + 1);
    }
    t1 = bench_now_ns();
    ringo_chan_close(ping);
    ringo_wg_wait(&wg);
    if (ringo_chan_free(ping) != 0 || ringo_chan_free(pong) != 0)
        bench_fail("pingpong: ringo_chan_free failed");
    bench_result("pingpong", (double)(t1 - t0) / (double)n, "ns/rt");
}

int main(void)
{
    bench_go_main(driver);
    return 0;
}
