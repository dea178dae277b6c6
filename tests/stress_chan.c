/* tests/stress_chan.c — exactly-once delivery under load (API.md "Channels": nothing that was
 * successfully sent is ever lost or received twice; FIFO per sender).
 *
 * 4 producers x 250,000 distinct values (x RINGO_STRESS_ITERS), 4 consumers, for capacities 0,
 * 1, 64 and 1024; producers and consumers are half goroutines, half plain threads. A value
 * encodes its producer and sequence number (p << 32 | seq). Checked:
 *   - by count, by sum and by an order-independent hash (sum and xor of a 64-bit mix) over
 *     everything received, against the same over everything sent;
 *   - FIFO per sender: every consumer sees each producer's sequence numbers increase.
 * The last producer to finish closes the channel; consumers RINGO_RANGE until it is drained.
 * A variant has consumers ringo_select over two channels (each fed by two producers), closing
 * each channel when its producers are done; a closed case is turned into a NULL case.
 * The watchdog turns a lost wake-up into a failure instead of a hang.
 */
#include <ringo.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include "tests/testutil.h"
#include "tests/chanutil.h"

#define NPROD 4
#define NCONS 4
#define BASE_PER 250000

static uint64_t mix64(uint64_t x) /* splitmix64 finaliser */
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

struct tally {
    uint64_t count, sum, hsum, hxor;
};
static void tally_add(struct tally *t, uint64_t v)
{
    t->count++;
    t->sum += v;
    uint64_t h = mix64(v);
    t->hsum += h;
    t->hxor ^= h;
}

struct stress {
    ringo_chan *ch[2];            /* producers p send to ch[p % nch] */
    int nch;
    uint64_t per;
    atomic_int left[2];           /* producers still sending on ch[i]; the last one closes it */
    pthread_mutex_t mu;
    struct tally got;             /* under mu */
    struct ringo_waitgroup wg;
};

struct prod_arg {
    struct stress *s;
    int id;
};
static void producer(void *p)
{
    struct stress *s = ((struct prod_arg *)p)->s;
    int id = ((struct prod_arg *)p)->id;
    int ci = id % s->nch;
    ringo_chan *c = s->ch[ci];
    for (uint64_t i = 0; i < s->per; i++) {
        uint64_t v = ((uint64_t)id << 32) | i;
        int r = ringo_chan_send(c, &v);
        if (r != 0) {
            CHECK(r == 0);
            break;
        }
    }
    if (atomic_fetch_sub(&s->left[ci], 1) == 1)
        CHECK(ringo_chan_close(c) == 0);
    ringo_wg_done(&s->wg);
}

/* per-producer FIFO: the sequence numbers a consumer sees from one producer increase */
static void see(uint64_t v, int64_t *last, struct tally *t)
{
    uint32_t id = (uint32_t)(v >> 32);
    int64_t seq = (int64_t)(uint32_t)v;
    CHECK(id < NPROD);
    if (id >= NPROD)
        return;
    CHECK(seq > last[id]);
    last[id] = seq;
    tally_add(t, v);
}

static void consumer_range(void *p)
{
    struct stress *s = p;
    int64_t last[NPROD];
    struct tally t = { 0 };
    for (int i = 0; i < NPROD; i++)
        last[i] = -1;
    uint64_t v;
    RINGO_RANGE(s->ch[0], &v)
    see(v, last, &t);
    CHECK(v == 0);
    pthread_mutex_lock(&s->mu);
    s->got.count += t.count;
    s->got.sum += t.sum;
    s->got.hsum += t.hsum;
    s->got.hxor ^= t.hxor;
    pthread_mutex_unlock(&s->mu);
    ringo_wg_done(&s->wg);
}

static void consumer_select(void *p)
{
    struct stress *s = p;
    int64_t last[NPROD];
    struct tally t = { 0 };
    for (int i = 0; i < NPROD; i++)
        last[i] = -1;
    uint64_t v[2];
    struct ringo_case cs[2] = { { s->ch[0], RINGO_RECV, &v[0], 0 }, { s->ch[1], RINGO_RECV, &v[1], 0 } };
    int open = 2;
    while (open > 0) {
        int i = ringo_select(cs, 2, -1);
        if (i < 0 || i > 1) {
            CHECK(i == 0 || i == 1);
            break;
        }
        if (cs[i].result == 0) { /* closed and drained: Go's "c = nil" */
            CHECK(v[i] == 0);
            cs[i].chan = NULL;
            open--;
            continue;
        }
        CHECK(cs[i].result == 1);
        see(v[i], last, &t);
    }
    pthread_mutex_lock(&s->mu);
    s->got.count += t.count;
    s->got.sum += t.sum;
    s->got.hsum += t.hsum;
    s->got.hxor ^= t.hxor;
    pthread_mutex_unlock(&s->mu);
    ringo_wg_done(&s->wg);
}

static void run(const char *what, size_t cap0, size_t cap1, int nch)
{
    struct stress *s = calloc(1, sizeof *s);
    assert_non_null(s);
    pthread_mutex_init(&s->mu, NULL);
    double scale = tu_scale();
    s->per = (uint64_t)(BASE_PER * scale);
    s->nch = nch;
    s->ch[0] = ringo_chan_make(sizeof(uint64_t), cap0);
    assert_non_null(s->ch[0]);
    if (nch == 2) {
        s->ch[1] = ringo_chan_make(sizeof(uint64_t), cap1);
        assert_non_null(s->ch[1]);
    }
    for (int i = 0; i < nch; i++)
        atomic_store(&s->left[i], NPROD / nch);
    atomic_store(&bad, 0);

    tu_watchdog_arm(what, (int)(20 * scale) + 10);
    int64_t t0 = ringo_now();
    ringo_wg_add(&s->wg, NPROD + NCONS);
    for (int i = 0; i < NCONS; i++)
        spawn(i & 1, nch == 2 ? consumer_select : consumer_range, s);
    struct prod_arg pa[NPROD];
    for (int i = 0; i < NPROD; i++) {
        /* 0, 1 goroutines, 2, 3 threads; with two channels, each gets one of each (p % 2) */
        pa[i] = (struct prod_arg){ s, i };
        spawn(i >> 1, producer, &pa[i]);
    }
    ringo_wg_wait(&s->wg);
    tu_watchdog_disarm();
    int64_t el = ringo_now() - t0;

    struct tally want = { 0 };
    for (uint64_t p = 0; p < NPROD; p++)
        for (uint64_t i = 0; i < s->per; i++)
            tally_add(&want, (p << 32) | i);
    fprintf(stderr, "# %s: %llu values in %.2f s\n", what, (unsigned long long)want.count, (double)el / 1e9);
    assert_int_equal(atomic_load(&bad), 0);
    if (s->got.count != want.count)
        fail_msg("%s: received %llu values, sent %llu", what, (unsigned long long)s->got.count,
                 (unsigned long long)want.count);
    assert_int_equal(s->got.sum, want.sum);
    assert_int_equal(s->got.hsum, want.hsum);
    assert_int_equal(s->got.hxor, want.hxor);
    for (int i = 0; i < nch; i++)
        assert_int_equal(ringo_chan_free(s->ch[i]), 0);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void test_stress_chan_exactly_once_unbuffered(void **state)
{
    (void)state;
    run("cap 0", 0, 0, 1);
}
static void test_stress_chan_exactly_once_cap1(void **state)
{
    (void)state;
    run("cap 1", 1, 0, 1);
}
static void test_stress_chan_exactly_once_cap64(void **state)
{
    (void)state;
    run("cap 64", 64, 0, 1);
}
static void test_stress_chan_exactly_once_cap1024(void **state)
{
    (void)state;
    run("cap 1024", 1024, 0, 1);
}
static void test_stress_chan_select_consumers_unbuffered(void **state)
{
    (void)state;
    run("select over cap 0 + cap 0", 0, 0, 2);
}
static void test_stress_chan_select_consumers_mixed_caps(void **state)
{
    (void)state;
    run("select over cap 1 + cap 64", 1, 64, 2);
}
static void test_stress_chan_select_consumers_cap1024(void **state)
{
    (void)state;
    run("select over cap 0 + cap 1024", 0, 1024, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress_chan_exactly_once_unbuffered),
        cmocka_unit_test(test_stress_chan_exactly_once_cap1),
        cmocka_unit_test(test_stress_chan_exactly_once_cap64),
        cmocka_unit_test(test_stress_chan_exactly_once_cap1024),
        cmocka_unit_test(test_stress_chan_select_consumers_unbuffered),
        cmocka_unit_test(test_stress_chan_select_consumers_mixed_caps),
        cmocka_unit_test(test_stress_chan_select_consumers_cap1024),
    };
    if (getenv("RINGO_TEST_FILTER"))
        cmocka_set_test_filter(getenv("RINGO_TEST_FILTER"));
    return TU_RUN_GROUP("stress_chan", tests, NULL, NULL);
}
