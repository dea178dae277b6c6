/* tests/test_park.c — the park/ready protocol under races, goroutines and plain threads mixed.
 * Each round: one side publishes itself and parks, the other spins until it sees the
 * publication and readies it at once — often while the parker is still switching out (the
 * PARKING -> WOKEN path). A lost wake-up hangs: the watchdog fails the test instead. */
#include <ringo.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include "tests/testutil.h"
#include "sched/sched.h"

#define ROUNDS 100000

struct slot {
    _Atomic(struct g *) parked;
    atomic_long done;
};

/* park ROUNDS times on s; the partner readies us each time */
static void parker_loop(struct slot *s, long rounds)
{
    for (long i = 0; i < rounds; i++) {
        struct g *self = sched_self();
        sched_park_prepare(self, WR_CHAN_RECV);
        /* release: publishes PARKING before the waker can see us */
        atomic_store_explicit(&s->parked, self, memory_order_release);
        sched_park(self, -1, NULL, 0);
        atomic_fetch_add(&s->done, 1);
    }
}

static void waker_loop(struct slot *s, long rounds)
{
    for (long i = 0; i < rounds; i++) {
        struct g *g;
        while (!(g = atomic_exchange_explicit(&s->parked, NULL, memory_order_acq_rel))) {
            if (ringo_self())
                ringo_yield();
            else
                sched_yield(); /* a spinning plain thread must not starve the workers on a small box */
        }
        sched_ready(g);
    }
}

struct pair { struct slot *s; long rounds; struct ringo_waitgroup *wg; };
static void g_parker(void *p) { struct pair *a = p; parker_loop(a->s, a->rounds); ringo_wg_done(a->wg); }
static void g_waker(void *p) { struct pair *a = p; waker_loop(a->s, a->rounds); ringo_wg_done(a->wg); }
static void *t_parker(void *p) { struct pair *a = p; parker_loop(a->s, a->rounds); ringo_wg_done(a->wg); return NULL; }
static void *t_waker(void *p) { struct pair *a = p; waker_loop(a->s, a->rounds); ringo_wg_done(a->wg); return NULL; }

static void run_pair(bool parker_is_thread, bool waker_is_thread, long rounds)
{
    struct slot s = { NULL, 0 };
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    struct pair a = { &s, rounds, &wg };
    pthread_t t1, t2;
    ringo_wg_add(&wg, 2);
    tu_watchdog_arm("park/ready race", 120);
    if (parker_is_thread)
        pthread_create(&t1, NULL, t_parker, &a);
    else
        ringo_go(g_parker, &a);
    if (waker_is_thread)
        pthread_create(&t2, NULL, t_waker, &a);
    else
        ringo_go(g_waker, &a);
    ringo_wg_wait(&wg);
    tu_watchdog_disarm();
    if (parker_is_thread)
        pthread_join(t1, NULL);
    if (waker_is_thread)
        pthread_join(t2, NULL);
    assert_int_equal(atomic_load(&s.done), rounds);
}

static long rounds(void) { return (long)(ROUNDS * tu_scale()); }

static void test_park_goroutine_readied_by_goroutine(void **state) { (void)state; run_pair(false, false, rounds()); }
static void test_park_goroutine_readied_by_thread(void **state) { (void)state; run_pair(false, true, rounds() / 4); }
static void test_park_thread_readied_by_goroutine(void **state) { (void)state; run_pair(true, false, rounds() / 4); }
static void test_park_thread_readied_by_thread(void **state) { (void)state; run_pair(true, true, rounds() / 4); }

/* ------------------------------------------------------------------ claim: waker vs deadline */
struct claim_round {
    _Atomic uint32_t claim;
    _Atomic(struct g *) parked;
    int result;
    struct ringo_waitgroup *wg;
};

static void claim_parker(void *p)
{
    struct claim_round *r = p;
    struct g *self = sched_self();
    int64_t deadline = ringo_now() + 20000;
    sched_park_prepare_until(self, WR_SELECT, deadline);
    atomic_store_explicit(&r->parked, self, memory_order_release);
    r->result = sched_park(self, deadline, &r->claim, 2);
    ringo_wg_done(r->wg);
}

static void test_park_deadline_and_waker_race_exactly_one_wins(void **state)
{
    (void)state;
    enum { N = 3000 };
    static struct claim_round rs[N];
    int timeouts = 0, wakes = 0;
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    tu_watchdog_arm("claim race", 120);
    ringo_wg_add(&wg, N);
    for (int i = 0; i < N; i++) {
        struct claim_round *r = &rs[i];
        r->wg = &wg;
        ringo_go(claim_parker, r);
        struct g *g;
        while (!(g = atomic_load_explicit(&r->parked, memory_order_acquire)))
            ;
        /* spin a varying little while, then try to wake: sometimes the timer wins */
        for (volatile int k = 0; k < (i % 50) * 100; k++)
            ;
        uint32_t z = 0;
        if (atomic_compare_exchange_strong(&r->claim, &z, 1))
            sched_ready(g);
    }
    ringo_wg_wait(&wg);
    tu_watchdog_disarm();
    for (int i = 0; i < N; i++) {
        uint32_t c = atomic_load(&rs[i].claim);
        if (c == 2) {
            assert_int_equal(rs[i].result, -ETIMEDOUT);
            timeouts++;
        } else {
            assert_int_equal(c, 1);
            assert_int_equal(rs[i].result, 0);
            wakes++;
        }
    }
    print_message("# %d timer wins, %d waker wins\n", timeouts, wakes);
    assert_int_equal(timeouts + wakes, N);
}

static void test_park_thread_deadline_times_out(void **state)
{
    (void)state;
    _Atomic uint32_t claim = 0;
    struct g *self = sched_self();
    int64_t t0 = ringo_now();
    sched_park_prepare_until(self, WR_SELECT, t0 + 20000000);
    int r = sched_park(self, t0 + 20000000, &claim, 2);
    assert_int_equal(r, -ETIMEDOUT);
    assert_true(ringo_now() - t0 >= 20000000);
    assert_int_equal(atomic_load(&claim), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_park_goroutine_readied_by_goroutine),
        cmocka_unit_test(test_park_goroutine_readied_by_thread),
        cmocka_unit_test(test_park_thread_readied_by_goroutine),
        cmocka_unit_test(test_park_thread_readied_by_thread),
        cmocka_unit_test(test_park_deadline_and_waker_race_exactly_one_wins),
        cmocka_unit_test(test_park_thread_deadline_times_out),
    };
    return TU_RUN_GROUP("park", tests, NULL, NULL);
}
