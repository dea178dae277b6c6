/* tests/test_blocking.c — ringo_blocking and its pool (sched/blocking.c), and ringo_tcp_dial's
 * name resolution through it.
 *
 * Scenarios that need their own pool settings (RINGO_PROCS, RINGO_BLOCKING_THREADS,
 * RINGO_BLOCKING_IDLE_MS) or may deadlock run in a child process (tests/testutil.h); a child
 * prints what went wrong and exits non-zero. Waits are bounded hangs, never timing asserts. */
#include <ringo.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sched.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/syscall.h>
#include "tests/testutil.h"

static pid_t tid(void) { return (pid_t)syscall(SYS_gettid); }

#define CHILD_FAIL(...) do { fprintf(stderr, "child: " __VA_ARGS__); fputc('\n', stderr); return 1; } while (0)

/* "Threads:" of /proc/self/status */
static long thread_count(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long n = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "Threads:", 8) == 0)
            n = strtol(line + 8, NULL, 10);
    if (f)
        fclose(f);
    return n;
}


/* ------------------------------------------------------------------ runs elsewhere, result back */

struct where {
    pid_t fn_tid;
    char fn_comm[32];
    int result;
};

static void fn_where(void *p)
{
    struct where *w = p;
    w->fn_tid = tid();
    FILE *f = fopen("/proc/thread-self/comm", "r");
    if (f) {
        if (!fgets(w->fn_comm, sizeof w->fn_comm, f))
            w->fn_comm[0] = 0;
        fclose(f);
    }
    w->result = 42;
}

struct g_where {
    struct where w;
    pid_t caller_tid;
    int r;
    ringo_chan *done;
};

static void g_call_where(void *p)
{
    struct g_where *a = p;
    a->caller_tid = tid();
    a->r = ringo_blocking(fn_where, &a->w);
    int one = 1;
    ringo_chan_send(a->done, &one);
}

static void test_blocking_runs_fn_on_another_thread_and_returns_its_result(void **state)
{
    (void)state;
    struct g_where a = { .w = { 0 }, .done = ringo_chan_make(sizeof(int), 0) };
    assert_non_null(a.done);
    tu_watchdog_arm("runs_on_another_thread", 60);
    assert_true(ringo_go(g_call_where, &a) > 0);
    int v;
    assert_int_equal(ringo_chan_recv(a.done, &v), 1);
    tu_watchdog_disarm();
    assert_int_equal(a.r, 0);
    assert_int_equal(a.w.result, 42);
    assert_true(a.w.fn_tid > 0);
    assert_int_not_equal(a.w.fn_tid, a.caller_tid);
    assert_int_not_equal(a.w.fn_tid, tid());
    if (strncmp(a.w.fn_comm, "ringo-b", 7) != 0)
        fail_msg("fn ran on thread \"%s\", want a pool thread ringo-b*", a.w.fn_comm);
    ringo_chan_free(a.done);
}

static void test_blocking_on_a_plain_thread_runs_inline(void **state)
{
    (void)state;
    struct where w = { 0 };
    assert_int_equal(ringo_blocking(fn_where, &w), 0);
    assert_int_equal(w.result, 42);
    assert_int_equal(w.fn_tid, tid());
}

static void g_null_fn(void *p)
{
    struct g_where *a = p;
    a->r = ringo_blocking(NULL, NULL);
    int one = 1;
    ringo_chan_send(a->done, &one);
}

static void test_blocking_null_fn_is_einval(void **state)
{
    (void)state;
    assert_int_equal(ringo_blocking(NULL, NULL), -EINVAL);
    struct g_where a = { .r = 1, .done = ringo_chan_make(sizeof(int), 0) };
    assert_non_null(a.done);
    assert_true(ringo_go(g_null_fn, &a) > 0);
    int v;
    assert_int_equal(ringo_chan_recv(a.done, &v), 1);
    assert_int_equal(a.r, -EINVAL);
    ringo_chan_free(a.done);
}

/* ------------------------------------------------------------------ the dump names the wait */

static atomic_int dump_in_fn, dump_release;

static void fn_wait_release(void *p)
{
    (void)p;
    atomic_store_explicit(&dump_in_fn, 1, memory_order_release);
    for (int i = 0; i < 60000 && !atomic_load_explicit(&dump_release, memory_order_acquire); i++)
        usleep(1000);
}

static void g_blocked_for_dump(void *p)
{
    ringo_blocking(fn_wait_release, NULL);
    int one = 1;
    ringo_chan_send(p, &one);
}

static void test_blocking_dump_shows_blocking_call(void **state)
{
    (void)state;
    ringo_chan *done = ringo_chan_make(sizeof(int), 0);
    assert_non_null(done);
    tu_watchdog_arm("dump_shows_blocking_call", 60);
    assert_true(ringo_go(g_blocked_for_dump, done) > 0);
    while (!atomic_load_explicit(&dump_in_fn, memory_order_acquire))
        usleep(1000);
    char *dump = NULL;
    for (int i = 0; i < 5000; i++) { /* fn started: the goroutine is parked or about to be */
        free(dump);
        dump = tu_dump_string();
        if (strstr(dump, "[blocking call"))
            break;
        usleep(1000);
    }
    atomic_store_explicit(&dump_release, 1, memory_order_release);
    int v;
    assert_int_equal(ringo_chan_recv(done, &v), 1);
    tu_watchdog_disarm();
    if (!strstr(dump, "[blocking call"))
        fail_msg("no goroutine in \"blocking call\" in the dump:\n%s", dump);
    free(dump);
    ringo_chan_free(done);
}

/* ------------------------------------------------------------------ the worker keeps running */

static atomic_long progress;
static atomic_int blocked_done;
static long progress_during;

static void fn_sleep_while_counting(void *p)
{
    (void)p;
    long p0 = atomic_load_explicit(&progress, memory_order_relaxed);
    usleep(200 * 1000);
    /* bounded hang: a blocked worker never makes progress, a free one does long before this */
    for (int i = 0; i < 1000 && atomic_load_explicit(&progress, memory_order_relaxed) == p0; i++)
        usleep(10 * 1000);
    progress_during = atomic_load_explicit(&progress, memory_order_relaxed) - p0;
}

static void g_blocker(void *p)
{
    (void)p;
    ringo_blocking(fn_sleep_while_counting, NULL);
    atomic_store_explicit(&blocked_done, 1, memory_order_release);
}

static void g_counter(void *p)
{
    struct ringo_waitgroup *wg = p;
    while (!atomic_load_explicit(&blocked_done, memory_order_acquire)) {
        atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
        ringo_sleep(1000 * 1000);
    }
    ringo_wg_done(wg);
}

static void g_procs1_main(void *p)
{
    struct ringo_waitgroup *wg = p;
    ringo_wg_add(wg, 2);
    ringo_go(g_counter, wg);
    ringo_go(g_counter, wg);
    g_blocker(NULL);
    ringo_wg_done(wg);
}

static int child_procs1_progress(void)
{
    if (ringo_procs() != 1)
        CHILD_FAIL("want 1 worker, have %u", ringo_procs());
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    ringo_wg_add(&wg, 1);
    ringo_go(g_procs1_main, &wg);
    ringo_wg_wait(&wg);
    if (progress_during <= 0)
        CHILD_FAIL("no goroutine ran on the only worker during the blocking call (progress %ld)", progress_during);
    return 0;
}

/* ------------------------------------------------------------------ bounded pool */

static atomic_int conc_now, conc_max, jobs_done;

static void fn_count_concurrency(void *p)
{
    (void)p;
    int now = atomic_fetch_add_explicit(&conc_now, 1, memory_order_relaxed) + 1;
    int m = atomic_load_explicit(&conc_max, memory_order_relaxed);
    while (now > m && !atomic_compare_exchange_weak_explicit(&conc_max, &m, now, memory_order_relaxed,
                                                              memory_order_relaxed))
        ;
    usleep(10 * 1000);
    atomic_fetch_sub_explicit(&conc_now, 1, memory_order_relaxed);
}

static void g_one_job(void *p)
{
    if (ringo_blocking(fn_count_concurrency, NULL) == 0)
        atomic_fetch_add_explicit(&jobs_done, 1, memory_order_relaxed);
    ringo_wg_done(p);
}

static int child_bounded_pool(void)
{
    int n = (int)(1000 * tu_scale());
    if (n < 100)
        n = 100;
    if (n > 1000)
        n = 1000;
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    ringo_wg_add(&wg, n);
    for (int i = 0; i < n; i++)
        if (ringo_go(g_one_job, &wg) <= 0)
            CHILD_FAIL("ringo_go failed");
    ringo_wg_wait(&wg);
    int done = atomic_load_explicit(&jobs_done, memory_order_relaxed);
    int m = atomic_load_explicit(&conc_max, memory_order_relaxed);
    if (done != n)
        CHILD_FAIL("%d of %d blocking calls completed", done, n);
    if (m < 1 || m > 8)
        CHILD_FAIL("%d calls ran at once, want 1..8 (RINGO_BLOCKING_THREADS=8)", m);
    if (tu_threads_named("ringo-b") > 8)
        CHILD_FAIL("%ld pool threads alive, max 8", tu_threads_named("ringo-b"));
    fprintf(stderr, "child: %d calls, at most %d at once\n", n, m);
    return 0;
}

/* ------------------------------------------------------------------ idle threads retire */

static atomic_long peak_threads;

/* Threads but the workers ("ringo-w*": regular and extra workers, the sysmon): an extra worker
 * the sysmon makes during the test (a slow TSan run looks stuck) is not a pool thread. */
static long other_threads(void)
{
    return thread_count() - tu_threads_named("ringo-w");
}

static void fn_note_threads(void *p)
{
    (void)p;
    long t = other_threads();
    long m = atomic_load_explicit(&peak_threads, memory_order_relaxed);
    while (t > m && !atomic_compare_exchange_weak_explicit(&peak_threads, &m, t, memory_order_relaxed,
                                                            memory_order_relaxed))
        ;
    usleep(20 * 1000);
}

static void g_note_threads(void *p)
{
    ringo_blocking(fn_note_threads, NULL);
    ringo_wg_done(p);
}

static void run_note_threads(int n)
{
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    ringo_wg_add(&wg, n);
    for (int i = 0; i < n; i++)
        ringo_go(g_note_threads, &wg);
    ringo_wg_wait(&wg);
}

/* waits (bounded) until no pool thread is left and the thread count is back to base */
static bool wait_retired(long base)
{
    for (int i = 0; i < 2000; i++) {
        if (tu_threads_named("ringo-b") == 0 && other_threads() <= base)
            return true;
        usleep(10 * 1000);
    }
    return false;
}

static int child_retire(void)
{
    ringo_procs(); /* the workers are up */
    long base = other_threads();
    run_note_threads(4);
    if (atomic_load_explicit(&peak_threads, memory_order_relaxed) <= base)
        CHILD_FAIL("no pool thread seen (threads %ld, before %ld)", (long)peak_threads, base);
    if (!wait_retired(base))
        CHILD_FAIL("pool threads did not retire: %ld left, threads %ld, before %ld", tu_threads_named("ringo-b"),
                   other_threads(), base);
    /* and the pool makes threads again after they all retired */
    atomic_store_explicit(&peak_threads, 0, memory_order_relaxed);
    run_note_threads(2);
    if (atomic_load_explicit(&peak_threads, memory_order_relaxed) <= base)
        CHILD_FAIL("no pool thread the second time");
    if (!wait_retired(base))
        CHILD_FAIL("pool threads did not retire the second time");
    return 0;
}

/* ------------------------------------------------------------------ deadlock accounting */

static void fn_sleep_300ms(void *p)
{
    (void)p;
    usleep(300 * 1000);
}

static void g_block_then_send(void *p)
{
    ringo_blocking(fn_sleep_300ms, NULL);
    int v = 7;
    ringo_chan_send(p, &v);
}

/* main waits on a channel; the only goroutine that will send is in a blocking call */
static int child_no_false_deadlock(void)
{
    ringo_chan *c = ringo_chan_make(sizeof(int), 0);
    for (int round = 0; round < 3; round++) {
        ringo_go(g_block_then_send, c);
        int v = 0;
        if (ringo_chan_recv(c, &v) != 1 || v != 7)
            CHILD_FAIL("recv got %d", v);
    }
    /* the last sender may still be leaving ringo_chan_send: free waits it out (-EBUSY) */
    while (ringo_chan_free(c) == -EBUSY)
        sched_yield();
    return 0; /* freed: LeakSanitizer fails a child that leaks */
}

static void fn_short(void *p)
{
    (void)p;
    usleep(10 * 1000);
}

static void g_block_then_stuck(void *p)
{
    ringo_blocking(fn_short, NULL);
    int v;
    ringo_chan_recv(p, &v); /* nobody ever sends */
}

/* after a blocking call, a real deadlock: the idle pool thread (it retires only after 10
 * minutes here) must not hide it */
static int child_deadlock_after_blocking(void)
{
    ringo_chan *c = ringo_chan_make(sizeof(int), 0);
    ringo_chan *never = ringo_chan_make(sizeof(int), 0);
    ringo_go(g_block_then_stuck, c);
    int v;
    ringo_chan_recv(never, &v);
    CHILD_FAIL("main's receive returned");
}

static void test_blocking_no_false_deadlock_while_main_waits(void **state)
{
    (void)state;
    static const char *const procs[] = { "RINGO_PROCS=1", "RINGO_PROCS=2" };
    for (int p = 0; p < 2; p++) {
        const char *env[] = { procs[p], NULL };
        struct child_result r;
        tu_run_child("no_false_deadlock", env, 60, &r);
        if (!r.exited || r.code != 0 || strstr(r.out, "deadlock"))
            fail_msg("%s: exited=%d code=%d signal=%d; output:\n%s", procs[p], r.exited, r.code, r.signo, r.out);
    }
}

static void test_blocking_deadlock_after_a_blocking_call_is_reported(void **state)
{
    (void)state;
    tu_skip_if_emulated("qemu-user runs a thread of its own, which ringo's deadlock check "
                        "(sched/debug/deadlock.c) rightly counts as one that could still act");
    static const char *const procs[] = { "RINGO_PROCS=1", "RINGO_PROCS=2" };
    for (int p = 0; p < 2; p++) {
        const char *env[] = { procs[p], "RINGO_BLOCKING_IDLE_MS=600000", NULL };
        struct child_result r;
        tu_run_child("deadlock_after_blocking", env, 60, &r);
        if (!r.exited || r.code != 2 || !strstr(r.out, "fatal error: all goroutines are asleep - deadlock!"))
            fail_msg("%s: want the deadlock report and status 2, got exited=%d code=%d signal=%d; output:\n%s",
                     procs[p], r.exited, r.code, r.signo, r.out);
        if (!strstr(r.out, "[chan receive]"))
            fail_msg("%s: the stuck goroutine is not listed:\n%s", procs[p], r.out);
    }
}

/* ------------------------------------------------------------------ child-run tests */

static void run_child_ok(const char *name, const char *const *env)
{
    struct child_result r;
    tu_run_child(name, env, 120, &r);
    if (!r.exited || r.code != 0)
        fail_msg("%s: exited=%d code=%d signal=%d; output:\n%s", name, r.exited, r.code, r.signo, r.out);
}

static void test_blocking_worker_runs_other_goroutines_meanwhile(void **state)
{
    (void)state;
    const char *env[] = { "RINGO_PROCS=1", NULL };
    run_child_ok("procs1_progress", env);
}

static void test_blocking_pool_is_bounded_and_every_call_completes(void **state)
{
    (void)state;
    const char *env[] = { "RINGO_BLOCKING_THREADS=8", NULL };
    run_child_ok("bounded_pool", env);
}

static void test_blocking_idle_pool_threads_retire(void **state)
{
    (void)state;
    /* epoll: no io_uring kernel workers to come and go in the thread count */
    const char *env[] = { "RINGO_BLOCKING_IDLE_MS=50", "RINGO_DISABLE=io_uring", NULL };
    run_child_ok("retire", env);
}

/* ------------------------------------------------------------------ ringo_tcp_dial by name */

struct dial {
    uint16_t port;
    int fd;
    const char *host;
    ringo_chan *done;
};

static void g_dial(void *p)
{
    struct dial *d = p;
    d->fd = ringo_tcp_dial(d->host, d->port, ringo_now() + 20 * 1000000000LL);
    int one = 1;
    ringo_chan_send(d->done, &one);
}

static void dial_and_echo(const char *host)
{
    int lfd = ringo_tcp_listen(NULL, 0, 16);
    assert_true(lfd >= 0);
    struct sockaddr_in6 sa;
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
    struct dial d = { .port = ntohs(sa.sin6_family == AF_INET6 ? sa.sin6_port : ((struct sockaddr_in *)&sa)->sin_port),
                      .fd = -1, .host = host, .done = ringo_chan_make(sizeof(int), 0) };
    assert_non_null(d.done);
    tu_watchdog_arm("tcp_dial", 60);
    assert_true(ringo_go(g_dial, &d) > 0);
    int cfd = ringo_accept(lfd, NULL, NULL, ringo_now() + 20 * 1000000000LL);
    int v;
    assert_int_equal(ringo_chan_recv(d.done, &v), 1);
    if (d.fd < 0)
        fail_msg("ringo_tcp_dial(\"%s\", %u): %d", host, d.port, d.fd);
    assert_true(cfd >= 0);
    assert_int_equal(ringo_write(d.fd, "x", 1, -1), 1);
    char c = 0;
    assert_int_equal(ringo_read(cfd, &c, 1, ringo_now() + 20 * 1000000000LL), 1);
    assert_int_equal(c, 'x');
    tu_watchdog_disarm();
    ringo_close(cfd);
    ringo_close(d.fd);
    ringo_close(lfd);
    ringo_chan_free(d.done);
}

static void test_blocking_tcp_dial_localhost_from_a_goroutine(void **state)
{
    (void)state;
    dial_and_echo("localhost");
    dial_and_echo("127.0.0.1"); /* the numeric fast path */
}

static const struct child_scenario scenarios[] = {
    { "procs1_progress", child_procs1_progress },
    { "bounded_pool", child_bounded_pool },
    { "retire", child_retire },
    { "no_false_deadlock", child_no_false_deadlock },
    { "deadlock_after_blocking", child_deadlock_after_blocking },
    { NULL, NULL },
};

int main(int argc, char **argv)
{
    tu_maybe_child(argc, argv, scenarios);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocking_runs_fn_on_another_thread_and_returns_its_result),
        cmocka_unit_test(test_blocking_on_a_plain_thread_runs_inline),
        cmocka_unit_test(test_blocking_null_fn_is_einval),
        cmocka_unit_test(test_blocking_dump_shows_blocking_call),
        cmocka_unit_test(test_blocking_worker_runs_other_goroutines_meanwhile),
        cmocka_unit_test(test_blocking_pool_is_bounded_and_every_call_completes),
        cmocka_unit_test(test_blocking_idle_pool_threads_retire),
        cmocka_unit_test(test_blocking_no_false_deadlock_while_main_waits),
        cmocka_unit_test(test_blocking_deadlock_after_a_blocking_call_is_reported),
        cmocka_unit_test(test_blocking_tcp_dial_localhost_from_a_goroutine),
    };
    if (getenv("RINGO_TEST_FILTER"))
        cmocka_set_test_filter(getenv("RINGO_TEST_FILTER"));
    return TU_RUN_GROUP("blocking", tests, NULL, NULL);
}
