/* tests/test_timer.c — sleeps: never early, close to on time, and many at once cost about one. */
#include <ringo.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include "tests/testutil.h"

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

struct acc { int64_t over[20]; struct ringo_waitgroup *wg; };
static void measure_sleeps(void *p)
{
    struct acc *a = p;
    for (int i = 0; i < 20; i++) {
        int64_t t0 = ringo_now();
        assert_int_equal(ringo_sleep(5000000), 0);
        a->over[i] = ringo_now() - t0 - 5000000;
    }
    ringo_wg_done(a->wg);
}

static void test_timer_sleep_is_never_early_and_close(void **state)
{
    (void)state;
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    struct acc a = { .wg = &wg };
    ringo_wg_add(&wg, 1);
    ringo_go(measure_sleeps, &a);
    ringo_wg_wait(&wg);
    qsort(a.over, 20, sizeof a.over[0], cmp64);
    print_message("# 5 ms sleep overshoot: min %.3f ms, median %.3f ms, max %.3f ms\n", a.over[0] / 1e6,
                  a.over[10] / 1e6, a.over[19] / 1e6);
    assert_true(a.over[0] >= 0);               /* never early */
    assert_true(a.over[10] < 20000000);        /* the median within 20 ms, even on a loaded VM */
}

static atomic_int woke;
static void sleeper(void *p)
{
    ringo_sleep(100000000);
    atomic_fetch_add(&woke, 1);
    ringo_wg_done(p);
}

static void test_timer_10000_sleepers_finish_in_about_one_sleep(void **state)
{
    (void)state;
    /* 10,000 at scale 1; sanitizer runs scale down (ThreadSanitizer's fibers are heavy) */
    int n = tu_scale() >= 1.0 ? 10000 : (int)(10000 * tu_scale()) < 500 ? 500 : (int)(10000 * tu_scale());
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    ringo_wg_add(&wg, n);
    int64_t t0 = ringo_now();
    for (int i = 0; i < n; i++)
        ringo_go(sleeper, &wg);
    ringo_wg_wait(&wg);
    int64_t el = ringo_now() - t0;
    print_message("# %d x 100 ms sleeps took %.1f ms\n", n, el / 1e6);
    assert_int_equal(atomic_load(&woke), n);
    assert_true(el >= 100000000);
    /* the sleeps overlap: one after another they would take n x 100 ms (1,000 s). A loose bound
     * (the suite runs two tests at once on a shared 2-CPU machine, sanitizers slower still) */
    assert_true(el < (tu_scale() >= 1.0 ? 5000000000LL : 20000000000LL));
}

static void test_timer_sleep_on_plain_thread(void **state)
{
    (void)state;
    int64_t t0 = ringo_now();
    assert_int_equal(ringo_sleep(10000000), 0);
    assert_true(ringo_now() - t0 >= 10000000);
    assert_int_equal(ringo_sleep(0), 0);
    assert_int_equal(ringo_sleep(-5), 0);
}

static void short_sleeps(void *p)
{
    for (int i = 0; i < 200; i++)
        ringo_sleep((int64_t)(ringo_now() % 200000));
    ringo_wg_done(p);
}

static void test_timer_many_short_sleeps_across_workers(void **state)
{
    (void)state;
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    ringo_wg_add(&wg, 100);
    tu_watchdog_arm("short sleeps", 60);
    for (int i = 0; i < 100; i++)
        ringo_go(short_sleeps, &wg);
    ringo_wg_wait(&wg);
    tu_watchdog_disarm();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timer_sleep_is_never_early_and_close),
        cmocka_unit_test(test_timer_10000_sleepers_finish_in_about_one_sleep),
        cmocka_unit_test(test_timer_sleep_on_plain_thread),
        cmocka_unit_test(test_timer_many_short_sleeps_across_workers),
    };
    return TU_RUN_GROUP("timer", tests, NULL, NULL);
}
