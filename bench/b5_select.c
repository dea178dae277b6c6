/* B5 select — one consumer selects over 4 channels (cap 128), each fed by its own producer;
 * 4,000,000 messages in all. A closed channel's case is set to NULL (Go's nil-channel idiom)
 * until all four are closed. Metric: ns per message. Check: every value received once (count
 * and sum). Go peer: bench/go/b5_select. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* the build passes -D_GNU_SOURCE; standalone builds need it too */
#endif
#include <ringo.h>
#include "bench_util.h"

#define NCHAN 4
#define CAP 128

struct producer {
    ringo_chan *c;
    int64_t first, count;
};

static struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;

static void producer(void *arg)
{
    struct producer *p = arg;
    for (int64_t v = p->first; v < p->first + p->count; v++)
        if (ringo_chan_send(p->c, &v) != 0)
            bench_fail("select: send failed");
    ringo_chan_close(p->c);
    ringo_wg_done(&wg);
}

static void driver(void)
{
    int64_t per = bench_scaled(4000000, 1000) / NCHAN, n = per * NCHAN;
    int64_t v, sum = 0, count = 0, t0, t1;
    struct producer prod[NCHAN];
    struct ringo_case cases[NCHAN];
    ringo_chan *chans[NCHAN];
    int open = NCHAN;

    for (int i = 0; i < NCHAN; i++) {
        chans[i] = ringo_chan_make(sizeof(int64_t), CAP);
        if (chans[i] == NULL)
            bench_fail("ringo_chan_make: %s", strerror(errno));
        cases[i] = (struct ringo_case){ .chan = chans[i], .op = RINGO_RECV, .elem = &v };
    }
    t0 = bench_now_ns();
    ringo_wg_add(&wg, NCHAN);
    for (int i = 0; i < NCHAN; i++) {
        prod[i] = (struct producer){ chans[i], per * i, per };
        bench_go(producer, &prod[i]);
    }
    while (open > 0) {
        int k = ringo_select(cases, NCHAN, -1);
        if (k < 0 || k >= NCHAN)
            bench_fail("select: ringo_select returned %d", k);
        if (cases[k].result == 1) {
            sum += v;
            count++;
        } else if (cases[k].result == 0) {
            cases[k].chan = NULL;   /* closed and drained: never pick it again */
            open--;
        } else {
            bench_fail("select: case %d result %d", k, cases[k].result);
        }
    }
    t1 = bench_now_ns();
    ringo_wg_wait(&wg);
    if (count != n || sum != n * (n - 1) / 2)
        bench_fail("select: got %" PRId64 " msgs sum %" PRId64 ", want %" PRId64 " sum %" PRId64,
                   count, sum, n, n * (n - 1) / 2);
    for (int i = 0; i < NCHAN; i++)
        if (ringo_chan_free(chans[i]) != 0)
            bench_fail("select: ringo_chan_free failed");
    bench_result("select", (double)(t1 - t0) / (double)n, "ns/msg");
}

int main(void)
{
    bench_go_main(driver);
    return 0;
}
