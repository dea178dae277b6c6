/* B4 buffered — one channel of cap 1024 carrying int64_t (Go's int), 10,000,000 messages in all,
 * with 1 producer / 1 consumer and with 4 / 4. Metric: million messages per second.
 * Check: every value 0..n-1 is received exactly once (count and sum).
 * Usage: b4_buffered [1p1c|4p4c]...  (no argument: both, one RESULT line each).
 * Go peer: bench/go/b4_buffered. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* the build passes -D_GNU_SOURCE; standalone builds need it too */
#endif
#include <ringo.h>
#include <stdatomic.h>
#include "bench_util.h"

#define CAP 1024

struct producer {
    ringo_chan *c;
    int64_t first, count;   /* sends first, first+1, ..., first+count-1 */
};

static ringo_chan *chan;
static _Atomic int64_t got_sum, got_count;      /* consumers add their totals at the end */
static struct ringo_waitgroup prod_wg = RINGO_WAITGROUP_INIT, cons_wg = RINGO_WAITGROUP_INIT;
static int variants[8], nvariants;

static void producer(void *arg)
{
    struct producer *p = arg;
    for (int64_t v = p->first; v < p->first + p->count; v++)
        if (ringo_chan_send(p->c, &v) != 0)
            bench_fail("buffered: send failed");
    ringo_wg_done(&prod_wg);
}

static void consumer(void *arg)
{
    int64_t v, sum = 0, count = 0;
    (void)arg;
    RINGO_RANGE(chan, &v) {
        sum += v;
        count++;
    }
    atomic_fetch_add_explicit(&got_sum, sum, memory_order_relaxed);     /* read after cons_wg */
    atomic_fetch_add_explicit(&got_count, count, memory_order_relaxed);
    ringo_wg_done(&cons_wg);
}

static void run(int k)
{
    int64_t per = bench_scaled(10000000, 1000) / k, n = per * k;
    struct producer prod[4];
    char name[32];
    int64_t t0, t1;

    chan = ringo_chan_make(sizeof(int64_t), CAP);
    if (chan == NULL)
        bench_fail("ringo_chan_make: %s", strerror(errno));
    atomic_store_explicit(&got_sum, 0, memory_order_relaxed);
    atomic_store_explicit(&got_count, 0, memory_order_relaxed);

    t0 = bench_now_ns();
    ringo_wg_add(&cons_wg, k);
    for (int i = 0; i < k; i++)
        bench_go(consumer, NULL);
    ringo_wg_add(&prod_wg, k);
    for (int i = 0; i < k; i++) {
        prod[i] = (struct producer){ chan, per * i, per };
        bench_go(producer, &prod[i]);
    }
    ringo_wg_wait(&prod_wg);
    ringo_chan_close(chan);
    ringo_wg_wait(&cons_wg);
    t1 = bench_now_ns();

    if (atomic_load_explicit(&got_count, memory_order_relaxed) != n ||
        atomic_load_explicit(&got_sum, memory_order_relaxed) != n * (n - 1) / 2)
        bench_fail("buffered/%dp%dc: got %" PRId64 " msgs sum %" PRId64 ", want %" PRId64 " sum %" PRId64,
                   k, k, atomic_load_explicit(&got_count, memory_order_relaxed),
                   atomic_load_explicit(&got_sum, memory_order_relaxed), n, n * (n - 1) / 2);
    if (ringo_chan_free(chan) != 0)
        bench_fail("buffered: ringo_chan_free failed");
    snprintf(name, sizeof name, "buffered/%dp%dc", k, k);
    bench_result(name, (double)n / ((double)(t1 - t0) / 1e9) / 1e6, "Mmsg/s");
}

static void driver(void)
{
    for (int i = 0; i < nvariants; i++)
        run(variants[i]);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc && nvariants < 8; i++) {
        if (strcmp(argv[i], "1p1c") == 0 || strcmp(argv[i], "1") == 0)
            variants[nvariants++] = 1;
        else if (strcmp(argv[i], "4p4c") == 0 || strcmp(argv[i], "4") == 0)
            variants[nvariants++] = 4;
        else {
            fprintf(stderr, "usage: %s [1p1c|4p4c]...\n", argv[0]);
            return 2;
        }
    }
    if (nvariants == 0) {
        variants[nvariants++] = 1;
        variants[nvariants++] = 4;
    }
    bench_go_main(driver);
    return 0;
}
