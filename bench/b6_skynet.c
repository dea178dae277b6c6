/* B6 skynet — a 10-ary tree of goroutines, depth 6: 1,111,111 goroutines, 1,000,000 leaves. Each
 * leaf sends its ordinal up an unbuffered channel; each inner node sums its ten children and
 * sends the sum to its parent. Metric: ms for the whole tree. Check: the root's sum is
 * leaves*(leaves-1)/2 (499999500000 at full size). RINGO_BENCH_SCALE picks the depth whose
 * leaf count is nearest 1,000,000*scale. Go peer: bench/go/b6_skynet. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* the build passes -D_GNU_SOURCE; standalone builds need it too */
#endif
#include <ringo.h>
#include "bench_util.h"

#define DIV 10

struct node {
    int64_t num;       /* ordinal of the first leaf below */
    int64_t size;      /* leaves below */
    ringo_chan *out;   /* parent's channel */
};

static void skynet(void *arg)
{
    /* Copy: arg lives in the parent's frame, which stays alive until this node has sent. */
    struct node me = *(struct node *)arg;
    struct node kids[DIV];
    ringo_chan *rc;
    int64_t sum = 0, v;

    if (me.size == 1) {
        if (ringo_chan_send(me.out, &me.num) != 0)
            bench_fail("skynet: send failed");
        return;
    }
    rc = ringo_chan_make(sizeof(int64_t), 0);
    if (rc == NULL)
        bench_fail("ringo_chan_make: %s", strerror(errno));
    for (int i = 0; i < DIV; i++) {
        kids[i] = (struct node){ me.num + i * (me.size / DIV), me.size / DIV, rc };
        bench_go(skynet, &kids[i]);
    }
    for (int i = 0; i < DIV; i++) {
        if (ringo_chan_recv(rc, &v) != 1)
            bench_fail("skynet: recv failed");
        sum += v;
    }
    /* All ten sends have completed, so nobody is blocked on rc any more. */
    if (ringo_chan_free(rc) != 0)
        bench_fail("skynet: ringo_chan_free failed after all children sent");
    if (ringo_chan_send(me.out, &sum) != 0)
        bench_fail("skynet: send failed");
}

static void driver(void)
{
    int64_t target = bench_scaled(1000000, 10), leaves = 10, sum = 0, t0, t1;
    struct node root;
    ringo_chan *out;

    /* nearest power of ten: grow while the next one is within a factor sqrt(10) ~ 3.16 */
    while (leaves * 10 * 10 <= target * 32 && leaves < 1000000)
        leaves *= 10;
    out = ringo_chan_make(sizeof(int64_t), 0);
    if (out == NULL)
        bench_fail("ringo_chan_make: %s", strerror(errno));
    root = (struct node){ 0, leaves, out };
    t0 = bench_now_ns();
    bench_go(skynet, &root);
    if (ringo_chan_recv(out, &sum) != 1)
        bench_fail("skynet: recv at root failed");
    t1 = bench_now_ns();
    if (sum != leaves * (leaves - 1) / 2)
        bench_fail("skynet: sum %" PRId64 ", want %" PRId64, sum, leaves * (leaves - 1) / 2);
    ringo_chan_free(out);
    bench_result("skynet", (double)(t1 - t0) / 1e6, "ms");
}

int main(void)
{
    bench_go_main(driver);
    return 0;
}
