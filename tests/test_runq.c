/* tests/test_runq.c — a worker's run queue alone, on workers the test builds by hand.
 *
 * Deterministic: no runtime is started; the rings are filled, stolen from and drained from one
 * thread, so each interleaving that matters is spelled out. Every goroutine put in must come
 * out exactly once, whatever was in the thief's ring when it stole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "tests/testutil.h"
#include "sched/sched.h"

#define NG (3 * RUNQ_SIZE)
static struct g gs[NG];
static unsigned seen[NG];

static struct worker *new_worker(void)
{
    struct worker *w = NULL;
    assert_int_equal(posix_memalign((void **)&w, CACHELINE, sizeof *w), 0);
    memset(w, 0, sizeof *w);
    return w;
}

static unsigned fill(struct worker *w, unsigned from, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        assert_true(sched_test_runq_push(w, &gs[from + i]));
    return from + n;
}

static void count(struct g *g)
{
    assert_non_null(g);
    assert_true(g >= gs && g < gs + NG);
    seen[g - gs]++;
}

static void drain(struct worker *w)
{
    struct g *g;
    while ((g = sched_test_runq_pop(w)) != NULL)
        count(g);
}

static void expect_each_once(unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (seen[i] != 1)
            fail_msg("g %u came out %u times", i, seen[i]);
    for (unsigned i = n; i < NG; i++)
        assert_int_equal(seen[i], 0);
}

/* The bug of issue 11 item 1: a thief whose ring already holds goroutines (timers fired while
 * it spun) copied half the victim's ring over its own head. */
static void test_runq_steal_into_a_nearly_full_ring_loses_nothing(void **state)
{
    (void)state;
    memset(seen, 0, sizeof seen);
    struct worker *thief = new_worker(), *victim = new_worker();
    unsigned n = fill(thief, 0, RUNQ_SIZE - 6);
    n = fill(victim, n, 100);
    struct g *g = sched_test_runq_steal(thief, victim);
    count(g);
    drain(thief);
    drain(victim);
    expect_each_once(n);
    free(thief);
    free(victim);
}

static void test_runq_steal_into_a_full_ring_takes_just_one(void **state)
{
    (void)state;
    memset(seen, 0, sizeof seen);
    struct worker *thief = new_worker(), *victim = new_worker();
    unsigned n = fill(thief, 0, RUNQ_SIZE);
    n = fill(victim, n, RUNQ_SIZE);
    count(sched_test_runq_steal(thief, victim));
    /* the one stolen g is returned to run; the thief's ring is untouched */
    unsigned left = 0;
    struct g *g;
    while ((g = sched_test_runq_pop(victim)) != NULL)
        count(g), left++;
    assert_int_equal(left, RUNQ_SIZE - 1);
    drain(thief);
    expect_each_once(n);
    free(thief);
    free(victim);
}

/* Random fills and positions (the ring indexes wrap): every g once. */
static void test_runq_steal_random_fills_every_g_once(void **state)
{
    (void)state;
    srand(12345);
    for (int round = 0; round < 2000; round++) {
        memset(seen, 0, sizeof seen);
        struct worker *thief = new_worker(), *victim = new_worker();
        /* move both rings' indexes to a random place first */
        unsigned skew = (unsigned)rand() % (5 * RUNQ_SIZE);
        for (unsigned i = 0; i < skew; i++) {
            sched_test_runq_push(thief, &gs[0]);
            sched_test_runq_pop(thief);
            sched_test_runq_push(victim, &gs[0]);
            sched_test_runq_pop(victim);
        }
        unsigned n = fill(thief, 0, (unsigned)rand() % (RUNQ_SIZE + 1));
        n = fill(victim, n, (unsigned)rand() % (RUNQ_SIZE + 1));
        struct g *g;
        while ((g = sched_test_runq_steal(thief, victim)) != NULL) {
            count(g);
            if (rand() % 2 && (g = sched_test_runq_pop(thief)) != NULL)
                count(g); /* the owner runs something between steals */
        }
        drain(thief);
        drain(victim);
        expect_each_once(n);
        free(thief);
        free(victim);
    }
}

/* Issue 11 item 2b: gq_get moved its batch into the ring with runq_put while it held the global
 * queue's lock; a ring without room for the batch overflows half of itself back into the same
 * global queue (runq_push_slow -> gq_push_list), which locks it again: a self-deadlock. A
 * batch from the global queue into a full ring must take only what fits and lose nothing. */
static void gq_setup(void)
{
    static struct gqueue q;
    memset(&q, 0, sizeof q);
    pthread_mutex_init(&q.lock, NULL);
    sched.gq = &q;
    sched.nprocs = 1;
    sched.nnodes = 1;
    sched.have_pol = false;
    atomic_store_explicit(&sched.gq_len, 0, memory_order_relaxed);
}

static void gq_fill(unsigned from, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        struct g *g = &gs[from + i];
        gq_push_list(&sched.gq[0], &g, 1);
    }
}

static void gq_drain(struct worker *w)
{
    struct g *g;
    while ((g = global_get(w, 0)) != NULL) {
        count(g);
        drain(w);
    }
}

static void run_gq_into_ring(unsigned in_ring, unsigned in_gq)
{
    memset(seen, 0, sizeof seen);
    gq_setup();
    struct worker *w = new_worker();
    unsigned n = fill(w, 0, in_ring);
    gq_fill(n, in_gq);
    n += in_gq;
    tu_watchdog_arm("global_get into a full ring", 20); /* the deadlock hangs: fail loudly */
    struct g *g = global_get(w, 0);
    tu_watchdog_disarm();
    count(g);
    uint32_t h = atomic_load_explicit(&w->rq.head, memory_order_relaxed);
    uint32_t t = atomic_load_explicit(&w->rq.tail, memory_order_relaxed);
    assert_true(t - h <= RUNQ_SIZE); /* Q1 */
    drain(w);
    gq_drain(w);
    expect_each_once(n);
    assert_int_equal(atomic_load_explicit(&sched.gq_len, memory_order_relaxed), 0); /* Q4 */
    free(w);
}

static void test_runq_global_batch_into_a_full_ring_does_not_deadlock(void **state)
{
    (void)state;
    run_gq_into_ring(RUNQ_SIZE, RUNQ_SIZE);      /* no room at all: one g to run, nothing moved */
    run_gq_into_ring(RUNQ_SIZE - 3, RUNQ_SIZE);  /* room for 3 */
    run_gq_into_ring(RUNQ_SIZE / 2, RUNQ_SIZE);  /* room for half a ring */
    run_gq_into_ring(0, 2 * RUNQ_SIZE);          /* empty ring: half a ring at most */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runq_steal_into_a_nearly_full_ring_loses_nothing),
        cmocka_unit_test(test_runq_steal_into_a_full_ring_takes_just_one),
        cmocka_unit_test(test_runq_steal_random_fills_every_g_once),
        cmocka_unit_test(test_runq_global_batch_into_a_full_ring_does_not_deadlock),
    };
    return TU_RUN_GROUP("runq", tests, NULL, NULL);
}
