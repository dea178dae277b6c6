/* tests/test_timer.c — sleeps: never early, close to on time, many at once cost about one, and
 * a sleep on a worker stuck in a long computation is fired by an idle worker (issue 11). */
#include <ringo.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include "tests/testutil.h"
#include "sched/sched.h"
#include <string.h>


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

/* Issue 11: a 10 ms sleep behind a 500 ms loop on the same worker. A spawns B (child first: B
 * runs at once on A's worker and parks in its 10 ms sleep there, its timer in that worker's
 * heap), then A computes 500 ms without yielding. The other worker is idle: it must fire B's
 * timer, so B resumes long before A ends. */
#define HOG_NS   500000000LL
#define NAP_NS   10000000LL
static struct ringo_waitgroup stuck_wg = RINGO_WAITGROUP_INIT;
static int64_t nap_asked, nap_woke, hog_end; /* written before wg_done, read after wg_wait */
static long nap_tid, hog_tid;
static volatile uint64_t hog_sink;

static void napper(void *p)
{
    (void)p;
    nap_tid = syscall(SYS_gettid);
    nap_asked = ringo_now() + NAP_NS; /* ringo_sleep's own deadline is at or after this */
    ringo_sleep(NAP_NS);
    nap_woke = ringo_now();
    ringo_wg_done(&stuck_wg);
}

static void hog(void *p)
{
    (void)p;
    ringo_go(napper, NULL); /* child first: it parks before we come back */
    hog_tid = syscall(SYS_gettid);
    int64_t t0 = ringo_now();
    while (ringo_now() - t0 < HOG_NS)
        hog_sink++; /* no yield: this worker schedules nothing for 500 ms */
    hog_end = ringo_now();
    ringo_wg_done(&stuck_wg);
}

static int child_sleep_behind_hog(void)
{
    ringo_wg_add(&stuck_wg, 2);
    ringo_go(hog, NULL);
    ringo_wg_wait(&stuck_wg);
    if (nap_tid != hog_tid)
        return 7; /* a thief took the hog off the napper's worker: the case did not arise */
    int64_t late = nap_woke - nap_asked;
    printf("sleep of 10 ms behind a 500 ms loop on its worker: woke %.1f ms after its deadline, "
           "%.1f ms before the loop ended\n", late / 1e6, (hog_end - nap_woke) / 1e6);
    if (late < 0)
        return 3; /* early */
    if (nap_woke > hog_end - 200000000LL)
        return 4; /* waited for the loop: nobody else fired the timer */
    /* issue 11: "within 20 ms (limit in the test: 60 ms)"; sanitizer runs only check the above */
    if (!TU_SANITIZED && !tu_on_valgrind() && late > 60000000LL)
        return 5;
    return 0;
}

static void test_timer_sleep_behind_a_busy_worker_is_fired_by_an_idle_one(void **state)
{
    (void)state;
    /* two workers the OS may run on any CPU (a pinned idle worker could share the hog's CPU) */
    const char *env[] = { "RINGO_PROCS=2", "RINGO_PIN=0", NULL };
    static const int retry[] = { 7, 0 }; /* a thief moved the hog: the case did not arise */
    tu_check_child("sleep_behind_hog", env, 60, retry);
}

static int child_sleep_burst_fits_the_ring(void); /* below */
static const struct child_scenario scenarios[] = {
    { "sleep_behind_hog", child_sleep_behind_hog },
    { "sleep_burst_fits_the_ring", child_sleep_burst_fits_the_ring },
    { NULL, NULL },
};

/* timer.c T5: the 4-ary heap of one hand-built worker fires in deadline order, with deletions
 * mixed in. Timers carry a claim word that is already taken, so firing readies nobody; each
 * sched_timers_run(now = the k-th deadline) must remove exactly the timers due by then and
 * return the next deadline. 3000 timers with colliding deadlines, 1000 deleted first. */
#define HT 3000
static struct timer ht[HT];
static int64_t ht_sorted[HT];

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void test_timer_heap_fires_in_deadline_order_with_deletions(void **state)
{
    (void)state;
    struct worker *w = NULL;
    assert_int_equal(posix_memalign((void **)&w, CACHELINE, sizeof *w), 0);
    memset(w, 0, sizeof *w);
    sched_timers_init(w);
    static _Atomic uint32_t taken = 1;
    uint64_t rng = 42;
    for (int i = 0; i < HT; i++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        ht[i] = (struct timer){ .when = (int64_t)(rng >> 40) % 1000 + 1, .claim = &taken, .claim_val = 2 };
        sched_timer_add(w, &ht[i]);
        assert_int_equal(ht[i].w, w);
    }
    int n = 0;
    for (int i = 0; i < HT; i++) {
        if (i % 3 == 1) {
            assert_true(sched_timer_del(&ht[i]));
            assert_int_equal(ht[i].idx, -1);
            assert_false(sched_timer_del(&ht[i])); /* twice: not pending any more */
        } else {
            ht_sorted[n++] = ht[i].when;
        }
    }
    qsort(ht_sorted, (size_t)n, sizeof *ht_sorted, cmp_i64);
    for (int k = 0; k < n; k++) {
        if (k + 1 < n && ht_sorted[k + 1] == ht_sorted[k])
            continue; /* run once per distinct deadline */
        int64_t next = sched_timers_run(w, ht_sorted[k]);
        assert_int_equal(next, k + 1 < n ? ht_sorted[k + 1] : INT64_MAX);
        assert_int_equal(w->tn, (unsigned)(n - k - 1));
    }
    for (int i = 0; i < HT; i++)
        assert_int_equal(ht[i].idx, -1);
    free(w->theap);
    free(w);
}

/* timer.c T6: 1000 sleepers become due at once behind a 5 ms loop on their one worker (under
 * the sysmon's 10 ms); firing them all overflowed the 256-slot ring and spilled the oldest
 * half to the global queue, where they wait for batches of 8 every 64 schedules (B10's p99).
 * Every sleep must end, none early, and no goroutine may be spilled. */
#define BURST_SLEEPERS 1000
#define MS 1000000LL
static _Atomic int bs_parked, bs_ok;
static struct ringo_waitgroup bs_wg = RINGO_WAITGROUP_INIT;

static void bs_sleeper(void *p)
{
    (void)p;
    atomic_fetch_add_explicit(&bs_parked, 1, memory_order_relaxed);
    int64_t t0 = ringo_now();
    ringo_sleep(MS);
    if (ringo_now() - t0 >= MS)
        atomic_fetch_add_explicit(&bs_ok, 1, memory_order_relaxed);
    ringo_wg_done(&bs_wg);
}

static void bs_hog(void *p)
{
    (void)p;
    int64_t t0 = ringo_now();
    while (ringo_now() - t0 < 5 * MS)
        ;
    ringo_wg_done(&bs_wg);
}

static void bs_main(void *p)
{
    (void)p;
    for (int i = 0; i < BURST_SLEEPERS; i++)
        ringo_go(bs_sleeper, NULL);
    ringo_go(bs_hog, NULL); /* each child ran to its sleep before we got back here */
    ringo_wg_done(&bs_wg);
}

static int child_sleep_burst_fits_the_ring(void)
{
    ringo_wg_add(&bs_wg, BURST_SLEEPERS + 2);
    ringo_go(bs_main, NULL);
    ringo_wg_wait(&bs_wg);
    struct ringo_stats st;
    ringo_stats_get(&st);
    int ok = atomic_load_explicit(&bs_ok, memory_order_relaxed);
    printf("%d sleeps due at once: %d right, %llu goroutines spilled to the global queue\n", BURST_SLEEPERS, ok,
           (unsigned long long)st.spilled);
    if (ok != BURST_SLEEPERS)
        return 3;
    return st.spilled == 0 ? 0 : 4;
}

static void test_timer_sleeps_due_at_once_do_not_spill_the_run_queue(void **state)
{
    (void)state;
    static const char *const env[] = { "RINGO_PROCS=1", NULL };
    tu_check_child("sleep_burst_fits_the_ring", env, 120, NULL);
}

int main(int argc, char **argv)
{
    tu_maybe_child(argc, argv, scenarios);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timer_sleep_is_never_early_and_close),
        cmocka_unit_test(test_timer_heap_fires_in_deadline_order_with_deletions),
        cmocka_unit_test(test_timer_sleeps_due_at_once_do_not_spill_the_run_queue),
        cmocka_unit_test(test_timer_10000_sleepers_finish_in_about_one_sleep),
        cmocka_unit_test(test_timer_sleep_on_plain_thread),
        cmocka_unit_test(test_timer_many_short_sleeps_across_workers),
        cmocka_unit_test(test_timer_sleep_behind_a_busy_worker_is_fired_by_an_idle_one),
    };
    return TU_RUN_GROUP("timer", tests, NULL, NULL);
}
