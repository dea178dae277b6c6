/* tests/test_handoff.c — nobody is held hostage by a goroutine that computes or blocks (issue 11,
 * item 3; sched/sysmon.c).
 *
 * Each scenario runs in a child with two workers that the OS may put on any CPU (RINGO_PIN=0),
 * and one goroutine (or two) keeping its worker for 500 ms without switching: a loop, or a plain
 * usleep(2). What belongs to that worker must still happen long before the 500 ms are over:
 *   - a read whose SQE waits unsubmitted in the stuck worker's ring, or whose readiness waits
 *     in its epoll, completes (the sysmon rescues the ring);
 *   - the same read behind ringo_block_begin(); usleep(500 ms): faster than the 10 ms after
 *     which an unmarked one is noticed;
 *   - a goroutine readied into the stuck worker's runnext while the other worker computes too
 *     runs (an extra worker steals it);
 *   - with both workers' goroutines in usleep(500 ms), 1,000 goroutines echoing on loopback
 *     still answer (the sysmon reaps, extra workers run them).
 * The hard check is "before the stuck goroutine let go" (seen in every build); the 60 ms (50 ms
 * for the echo) bound of the issue is checked outside sanitizer and valgrind runs, and the
 * figures are printed. Waits are bounded by the child's timeout. */
#include <ringo.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "tests/testutil.h"

#define CHILD_FAIL(code, ...) do { fprintf(stderr, "child: " __VA_ARGS__); fputc('\n', stderr); return code; } while (0)
#define HOLD_NS 500000000LL
#define BOUND_NS 60000000LL
#define ECHO_BOUND_NS 50000000LL

static bool timed_run(void) { return !TU_SANITIZED && !tu_on_valgrind(); }
static long tid(void) { return syscall(SYS_gettid); }
static void compute_for(int64_t ns)
{
    volatile uint64_t sink = 0; /* each caller its own: two hogs compute at once */
    int64_t t0 = ringo_now();
    while (ringo_now() - t0 < ns)
        sink++; /* no ringo call: this worker schedules nothing meanwhile */
}

/* ------------------------------------------------------------------ a read behind a loop */

static int pipefd[2];
static struct ringo_waitgroup rd_wg = RINGO_WAITGROUP_INIT;
static int64_t rd_parked, rd_done, hog_end;
static ssize_t rd_res;
static char rd_buf[8];
static long rd_tid0, hog_tid;

static void reader(void *p)
{
    (void)p;
    rd_tid0 = tid();
    rd_parked = ringo_now();
    rd_res = ringo_read(pipefd[0], rd_buf, sizeof rd_buf, -1);
    rd_done = ringo_now();
    ringo_wg_done(&rd_wg);
}

static bool marked_sleep; /* the hog sleeps in a marked usleep instead of looping */

static void read_hog(void *p)
{
    (void)p;
    ringo_go(reader, NULL); /* child first: it parks in its read on this worker before we go on */
    hog_tid = tid();
    if (write(pipefd[1], "hostage", 7) != 7) /* the data is there; the read's completion is ours */
        abort();
    if (marked_sleep) {
        ringo_block_begin();
        usleep(HOLD_NS / 1000);
        ringo_block_end();
    } else {
        compute_for(HOLD_NS);
    }
    hog_end = ringo_now();
    ringo_wg_done(&rd_wg);
}

static int child_read_behind_hog(void)
{
    if (pipe(pipefd) != 0)
        CHILD_FAIL(2, "pipe");
    ringo_wg_add(&rd_wg, 2);
    ringo_go(read_hog, NULL);
    ringo_wg_wait(&rd_wg);
    if (rd_tid0 != hog_tid)
        return 7; /* the reader did not start on the hog's worker: the case did not arise */
    if (rd_res != 7 || memcmp(rd_buf, "hostage", 7) != 0)
        CHILD_FAIL(3, "read returned %zd", rd_res);
    int64_t lat = rd_done - rd_parked;
    printf("read of data in a pipe behind a 500 ms %s on its worker: %.1f ms, %.1f ms before it ended\n",
           marked_sleep ? "marked usleep" : "loop", lat / 1e6, (hog_end - rd_done) / 1e6);
    if (rd_done > hog_end - 200000000LL)
        CHILD_FAIL(4, "the read waited for the loop (%.1f ms)", lat / 1e6);
    if (timed_run() && lat > BOUND_NS)
        CHILD_FAIL(5, "the read took %.1f ms", lat / 1e6);
    /* marked: handed off at once, not after the 10 ms an unmarked call takes to be noticed */
    if (marked_sleep && lat >= 10000000LL)
        return 8;
    return 0;
}

static int child_read_behind_marked_usleep(void)
{
    marked_sleep = true;
    return child_read_behind_hog();
}

/* ------------------------------------------------------------------ runnext behind two loops */

static _Atomic int far_started;
static struct ringo_waitgroup rq_wg = RINGO_WAITGROUP_INIT;
static ringo_chan *rq_ch;
static int64_t rq_sent, rq_ran, near_end;
static long near_tid, woken_tid0;

static void far_hog(void *p)
{
    (void)p;
    atomic_store_explicit(&far_started, 1, memory_order_release);
    compute_for(HOLD_NS);
    ringo_wg_done(&rq_wg);
}

static void woken(void *p)
{
    (void)p;
    int v;
    woken_tid0 = tid();
    ringo_chan_recv(rq_ch, &v); /* parks; the send below readies us into near_hog's runnext */
    rq_ran = ringo_now();
    ringo_wg_done(&rq_wg);
}

static void near_hog(void *p)
{
    (void)p;
    ringo_go(woken, NULL); /* child first: it parks in its receive on this worker */
    near_tid = tid();
    int v = 1;
    rq_sent = ringo_now();
    ringo_chan_send(rq_ch, &v); /* woken goes to this worker's runnext */
    compute_for(HOLD_NS);
    near_end = ringo_now();
    ringo_wg_done(&rq_wg);
}

static int child_runnext_behind_two_hogs(void)
{
    rq_ch = ringo_chan_make(sizeof(int), 0);
    ringo_wg_add(&rq_wg, 3);
    ringo_go(far_hog, NULL);
    while (!atomic_load_explicit(&far_started, memory_order_acquire))
        ; /* the far hog holds the other worker before the near one starts */
    ringo_go(near_hog, NULL);
    ringo_wg_wait(&rq_wg);
    if (woken_tid0 != near_tid)
        return 7; /* not on the near hog's worker: the case did not arise */
    int64_t lat = rq_ran - rq_sent;
    printf("goroutine readied behind a 500 ms loop, the other worker computing too: ran after %.1f ms, "
           "%.1f ms before the loop ended\n", lat / 1e6, (near_end - rq_ran) / 1e6);
    if (rq_ran > near_end - 200000000LL)
        CHILD_FAIL(4, "it waited for the loop (%.1f ms)", lat / 1e6);
    if (timed_run() && lat > BOUND_NS)
        CHILD_FAIL(5, "it ran after %.1f ms", lat / 1e6);
    return 0;
}

/* ------------------------------------------------------------------ echo behind two usleeps */

#define NCONN 1000
static int lfd;
static _Atomic int accepted, sleepers_in;
static int64_t sleep_end;

static void echo_conn(void *p)
{
    int fd = (int)(intptr_t)p;
    char b[64];
    for (;;) {
        ssize_t n = ringo_recv(fd, b, sizeof b, 0, -1);
        if (n <= 0 || ringo_send(fd, b, (size_t)n, 0, -1) != n)
            break;
    }
    ringo_close(fd);
}

static void acceptor(void *p)
{
    (void)p;
    for (int i = 0; i < NCONN; i++) {
        int fd = ringo_accept(lfd, NULL, NULL, -1);
        if (fd < 0)
            abort();
        ringo_go(echo_conn, (void *)(intptr_t)fd);
        atomic_fetch_add_explicit(&accepted, 1, memory_order_release);
    }
}

static void sleeper(void *p)
{
    (void)p;
    atomic_fetch_add_explicit(&sleepers_in, 1, memory_order_acq_rel);
    while (atomic_load_explicit(&sleepers_in, memory_order_acquire) < 2)
        ; /* hold this worker until the other sleeper holds the other one */
    usleep(HOLD_NS / 1000); /* a plain blocking call: the worker's thread is gone for 500 ms */
    sleep_end = ringo_now();
}

/* Send one byte on every connection and wait for every echo; the latencies in lat[]. */
static int echo_round(const int *cfd, int64_t *lat)
{
    static struct pollfd pf[NCONN];
    int64_t t0 = ringo_now();
    for (int i = 0; i < NCONN; i++) {
        if (send(cfd[i], "x", 1, 0) != 1)
            CHILD_FAIL(2, "send");
        pf[i].fd = cfd[i];
        pf[i].events = POLLIN;
        lat[i] = -1;
    }
    int left = NCONN;
    while (left > 0) {
        int k = poll(pf, NCONN, 5000);
        if (k <= 0)
            CHILD_FAIL(3, "no echo within 5 s (%d missing)", left);
        int64_t now = ringo_now();
        for (int i = 0; i < NCONN; i++) {
            if (!(pf[i].revents & POLLIN))
                continue;
            char c;
            if (recv(cfd[i], &c, 1, 0) != 1 || c != 'x')
                CHILD_FAIL(3, "bad echo on connection %d", i);
            lat[i] = now - t0;
            pf[i].fd = -1;
            left--;
        }
    }
    return 0;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int child_echo_behind_two_usleeps(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2 * NCONN + 64) {
        rl.rlim_cur = rl.rlim_max < 2 * NCONN + 64 ? rl.rlim_max : 2 * NCONN + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < 2 * NCONN + 64)
            return 77; /* not enough fds here */
    }
    lfd = ringo_tcp_listen("127.0.0.1", 0, NCONN);
    if (lfd < 0)
        CHILD_FAIL(2, "listen: %d", lfd);
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &al);
    ringo_go(acceptor, NULL);
    static int cfd[NCONN];
    static int64_t lat[NCONN];
    for (int i = 0; i < NCONN; i++) {
        cfd[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (cfd[i] < 0 || connect(cfd[i], (struct sockaddr *)&a, sizeof a) != 0)
            CHILD_FAIL(2, "connect %d", i);
    }
    while (atomic_load_explicit(&accepted, memory_order_acquire) < NCONN)
        usleep(1000);
    int r = echo_round(cfd, lat); /* every echo goroutine is parked in its recv now */
    if (r)
        return r;
    ringo_go(sleeper, NULL);
    ringo_go(sleeper, NULL);
    while (atomic_load_explicit(&sleepers_in, memory_order_acquire) < 2)
        usleep(100);
    int64_t t_in = ringo_now();
    usleep(20000); /* both workers are inside usleep now */
    r = echo_round(cfd, lat);
    if (r)
        return r;
    int64_t t_done = ringo_now();
    qsort(lat, NCONN, sizeof lat[0], cmp64);
    int64_t p50 = lat[NCONN / 2], p99 = lat[NCONN * 99 / 100], max = lat[NCONN - 1];
    printf("1,000 echoes while both workers sleep in usleep(500 ms): p50 %.1f ms, p99 %.1f ms, "
           "max %.1f ms; all done %.1f ms after the sleeps began\n",
           p50 / 1e6, p99 / 1e6, max / 1e6, (t_done - t_in) / 1e6);
    if (t_done - t_in > HOLD_NS - 150000000LL)
        CHILD_FAIL(4, "the echoes waited for the sleeps (max %.1f ms)", max / 1e6);
    if (timed_run() && max > ECHO_BOUND_NS)
        CHILD_FAIL(5, "an echo took %.1f ms", max / 1e6);
    for (int i = 0; i < NCONN; i++)
        close(cfd[i]);
    return 0;
}

/* ------------------------------------------------------------------ the tests */

/* 7: the placement the case needs did not happen; 5 and 8: over the latency bound, or
 * slower than 10 ms, which a loaded machine (make -j2 check) may cause once but not ten times in
 * a row: all run again. 4 (waited for the loop or sleep) is never retried. */
static const int retry_codes[] = { 7, 8, 5, 0 };

static void run_scenario(const char *name, const char *const *env)
{
    tu_check_child(name, env, 120, retry_codes);
}

static const char *const env_uring[] = { "RINGO_PROCS=2", "RINGO_PIN=0", NULL };
static const char *const env_epoll[] = { "RINGO_PROCS=2", "RINGO_PIN=0", "RINGO_DISABLE=io_uring", NULL };

/* The read-behind cases (and runnext_behind_two_loops) need the spawner to stay on its worker while its child parks in the
 * read (child first, the parent in runnext). An idle worker takes a runnext that waited 5 us
 * (proc.c RUNNEXT_STEAL_NS, wall-clock time); emulated, the child's way to its park takes longer
 * than that, the parent moves, and the case does not arise ten times running (exit 7). */
#define PLACEMENT_UNDER_EMULATION "the spawner must keep its worker while the child parks, and " \
    "emulated that takes longer than the 5 us after which an idle worker takes runnext"

static void test_handoff_read_behind_a_loop_io_uring(void **state)
{
    (void)state;
    if (tu_on_valgrind())
        skip(); /* valgrind runs io_uring-less (epoll): the next test covers it */
    tu_skip_if_emulated(PLACEMENT_UNDER_EMULATION);
    run_scenario("read_behind_hog", env_uring);
}

static void test_handoff_read_behind_a_loop_epoll(void **state)
{
    (void)state;
    tu_skip_if_emulated(PLACEMENT_UNDER_EMULATION);
    run_scenario("read_behind_hog", env_epoll);
}

static void test_handoff_read_behind_a_marked_usleep(void **state)
{
    (void)state;
    if (tu_on_valgrind())
        skip();
    tu_skip_if_emulated(PLACEMENT_UNDER_EMULATION);
    run_scenario("read_behind_marked_usleep", env_uring);
}

static void test_handoff_runnext_behind_two_loops(void **state)
{
    (void)state;
    tu_skip_if_emulated(PLACEMENT_UNDER_EMULATION); /* the same placement (exit 7) */
    run_scenario("runnext_behind_two_hogs", env_uring);
}

static void test_handoff_echo_behind_two_usleeps_io_uring(void **state)
{
    (void)state;
    if (tu_on_valgrind())
        skip();
    tu_skip_if_emulated("qemu-user has no io_uring: this is the epoll case below, run twice");
    run_scenario("echo_behind_two_usleeps", env_uring);
}

static void test_handoff_echo_behind_two_usleeps_epoll(void **state)
{
    (void)state;
    run_scenario("echo_behind_two_usleeps", env_epoll);
}

static const struct child_scenario scenarios[] = {
    { "read_behind_hog", child_read_behind_hog },
    { "read_behind_marked_usleep", child_read_behind_marked_usleep },
    { "runnext_behind_two_hogs", child_runnext_behind_two_hogs },
    { "echo_behind_two_usleeps", child_echo_behind_two_usleeps },
    { NULL, NULL },
};

int main(int argc, char **argv)
{
    tu_maybe_child(argc, argv, scenarios);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handoff_read_behind_a_loop_io_uring),
        cmocka_unit_test(test_handoff_read_behind_a_loop_epoll),
        cmocka_unit_test(test_handoff_read_behind_a_marked_usleep),
        cmocka_unit_test(test_handoff_runnext_behind_two_loops),
        cmocka_unit_test(test_handoff_echo_behind_two_usleeps_io_uring),
        cmocka_unit_test(test_handoff_echo_behind_two_usleeps_epoll),
    };
    return TU_RUN_GROUP("handoff", tests, NULL, NULL);
}
