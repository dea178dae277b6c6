/* tests/test_lockthread.c — ringo_lock_thread / ringo_unlock_thread: a locked goroutine runs only
 * on its thread across every kind of wait, the thread runs nothing else, locks nest, a locked
 * goroutine that returns ends its thread, deadlock detection sees locked goroutines right. */
#include <ringo.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "tests/testutil.h"

/* The calling thread. Not pthread_self(): glibc declares it const, so the compiler may keep
 * one value across a call after which the goroutine runs on another thread (the M:N caveat). */
static long tid(void) { return syscall(SYS_gettid); }

#define MS 1000000LL
#define SEC 1000000000LL

static bool name_is(const char *prefix)
{
    char n[17] = "";
    prctl(PR_GET_NAME, n); /* the calling thread's, as tid() */
    return strncmp(n, prefix, strlen(prefix)) == 0;
}

/* Locked workers' threads alive now: those named "ringo-L..." (other threads come and go on
 * their own: the sysmon's extra workers, the blocking pool, a sanitizer's). */
static int count_locked_threads(void)
{
    return (int)tu_threads_named("ringo-L");
}

/* ---------------------------------------------------------------- stays on its thread */

static atomic_long moved, bad;       /* checked on the test's thread */
static ringo_chan *ping, *pong;
static struct ringo_mutex mu = RINGO_MUTEX_INIT;
static int pfd[2];
static atomic_long locked_thread; /* the locked goroutine's thread id */
static atomic_int done;

static void check_same(long t)
{
    if (t != tid())
        atomic_fetch_add(&moved, 1);
}

static void blocking_fn(void *p) { check_same(*(long *)p); }

static void locked_main(void *p)
{
    (void)p;
    if (ringo_lock_thread() != 0)
        atomic_fetch_add(&bad, 1);
    long me = tid();
    atomic_store(&locked_thread, me);
    if (!name_is("ringo-L"))
        atomic_fetch_add(&bad, 1);
    for (int i = 0; i < 300; i++) {
        int v = i;
        ringo_yield();
        check_same(me);
        ringo_sleep(i % 3 ? 0 : 100000); /* a timer readies it */
        check_same(me);
        ringo_chan_send(ping, &v);        /* a goroutine receives ... */
        ringo_chan_recv(pong, &v);        /* ... and readies us from another worker */
        check_same(me);
        if (v != i + 1)
            atomic_fetch_add(&bad, 1);
        ringo_mutex_lock(&mu);
        check_same(me);
        ringo_mutex_unlock(&mu);
        if (i % 50 == 0) {
            char c;
            if (ringo_read(pfd[0], &c, 1, ringo_now() + 10 * SEC) != 1) /* a thread writes it */
                atomic_fetch_add(&bad, 1);
            check_same(me);
            ringo_blocking(blocking_fn, &me); /* runs here: this thread is the goroutine's */
        }
    }
    if (ringo_unlock_thread() != 0)
        atomic_fetch_add(&bad, 1);
    ringo_sleep(1000000);
    if (!name_is("ringo-w")) /* back on a worker */
        atomic_fetch_add(&bad, 1);
    atomic_store(&done, 1);
}

static void echo(void *p)
{
    (void)p;
    int v;
    while (ringo_chan_recv(ping, &v) == 1) {
        ringo_mutex_lock(&mu);
        ringo_mutex_unlock(&mu);
        v++;
        ringo_chan_send(pong, &v);
    }
}

/* Short goroutines, none of which may run on the locked thread. */
static atomic_long others_ran, others_on_locked;
static void other(void *p)
{
    (void)p;
    long lt = atomic_load(&locked_thread);
    if (lt && lt == tid())
        atomic_fetch_add(&others_on_locked, 1);
    atomic_fetch_add(&others_ran, 1);
}

static void *writer(void *p)
{
    (void)p;
    for (int i = 0; i < 6; i++) {
        usleep(2000);
        (void)!write(pfd[1], "x", 1);
    }
    return NULL;
}

static void test_lockthread_goroutine_stays_and_thread_runs_nothing_else(void **state)
{
    (void)state;
    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    ping = ringo_chan_make(sizeof(int), 0);
    pong = ringo_chan_make(sizeof(int), 0);
    atomic_store(&done, 0);
    tu_watchdog_arm("locked goroutine", 120);
    ringo_go(echo, NULL);
    ringo_go(locked_main, NULL);
    pthread_t w;
    pthread_create(&w, NULL, writer, NULL);
    while (!atomic_load(&done)) {
        for (int i = 0; i < 50; i++)
            ringo_go(other, NULL);
        usleep(500);
    }
    pthread_join(w, NULL);
    tu_watchdog_disarm();
    ringo_chan_close(ping);
    assert_int_equal(atomic_load(&moved), 0);
    assert_int_equal(atomic_load(&bad), 0);
    assert_true(atomic_load(&others_ran) > 0);
    assert_int_equal(atomic_load(&others_on_locked), 0);
    close(pfd[0]);
    close(pfd[1]);
}

/* ---------------------------------------------------------------- nesting, children, exit */

static atomic_int child_on_locked, nest_bad;
static void child_of_locked(void *p)
{
    if (*(long *)p == tid())
        atomic_store(&child_on_locked, 1);
}
static void nester(void *p)
{
    ringo_chan *fin = p;
    ringo_lock_thread();
    long t = tid();
    ringo_lock_thread(); /* nested */
    ringo_unlock_thread();
    ringo_sleep(MS);
    if (t != tid() || !name_is("ringo-L"))
        atomic_store(&nest_bad, 1); /* one unlock of two: still locked */
    ringo_go(child_of_locked, &t); /* the child runs on a worker, never here */
    ringo_sleep(5 * MS);
    ringo_unlock_thread();
    ringo_unlock_thread(); /* one too many: nothing, as in Go */
    ringo_sleep(MS);
    if (!name_is("ringo-w"))
        atomic_store(&nest_bad, 2);
    ringo_chan_send(fin, NULL);
}

static void test_lockthread_locks_nest_and_children_run_elsewhere(void **state)
{
    (void)state;
    ringo_chan *fin = ringo_chan_make(0, 1);
    atomic_store(&child_on_locked, 0);
    atomic_store(&nest_bad, 0);
    ringo_go(nester, fin);
    assert_int_equal(ringo_chan_recv_until(fin, NULL, ringo_now() + 30 * SEC), 1);
    assert_int_equal(atomic_load(&nest_bad), 0);
    assert_int_equal(atomic_load(&child_on_locked), 0);
    ringo_chan_free(fin);
    assert_int_equal(ringo_lock_thread(), 0);   /* a plain thread: nothing to do */
    assert_int_equal(ringo_unlock_thread(), 0);
}

static void exits_locked(void *p)
{
    ringo_lock_thread();
    ringo_sleep(MS);
    ringo_wg_done(p); /* returns locked: its thread ends */
}

static void test_lockthread_returning_locked_ends_the_thread(void **state)
{
    (void)state;
    ringo_sleep(10 * MS);
    int base = count_locked_threads();
    size_t g0 = ringo_num_goroutines();
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    tu_watchdog_arm("locked exits", 60);
    for (int round = 0; round < 20; round++) {
        ringo_wg_add(&wg, 5);
        for (int i = 0; i < 5; i++)
            ringo_go(exits_locked, &wg);
        ringo_wg_wait(&wg);
    }
    int n = count_locked_threads();
    for (int i = 0; i < 20000 && n > base; i++) { /* the threads end just after the goroutines */
        usleep(1000);
        n = count_locked_threads();
    }
    tu_watchdog_disarm();
    assert_true(n <= base);
    for (int i = 0; i < 5000 && ringo_num_goroutines() > g0; i++)
        usleep(1000);
    assert_int_equal(ringo_num_goroutines(), g0);
}

/* A locked member of a cancelled group: its channel wait is cancelled like any member's, and
 * its later calls, I/O included (plain system calls on its thread), return -ECANCELED. */
static atomic_int lk_recv_rc, lk_read_rc;
static void locked_member(void *p)
{
    int *fds = p;
    ringo_lock_thread();
    ringo_chan *never_sent = ringo_chan_make(0, 0);
    atomic_store(&lk_recv_rc, ringo_chan_recv(never_sent, NULL));
    char c;
    atomic_store(&lk_read_rc, (int)ringo_read(fds[0], &c, 1, -1));
    ringo_chan_free(never_sent);
    ringo_unlock_thread();
}

static void test_lockthread_locked_member_is_cancelled(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    atomic_store(&lk_recv_rc, 1);
    atomic_store(&lk_read_rc, 1);
    ringo_group *g = ringo_group_make();
    ringo_group_go(g, locked_member, fds);
    usleep(20000);
    assert_int_equal(ringo_group_cancel(g), 0);
    assert_int_equal(ringo_group_wait(g, ringo_now() + 30 * SEC), 0);
    assert_int_equal(atomic_load(&lk_recv_rc), -ECANCELED);
    assert_int_equal(atomic_load(&lk_read_rc), -ECANCELED); /* at entry: nothing read */
    assert_int_equal(write(fds[1], "z", 1), 1);
    char c;
    assert_int_equal(read(fds[0], &c, 1), 1);
    assert_int_equal(ringo_group_free(g), 0);
    close(fds[0]);
    close(fds[1]);
}

/* ---------------------------------------------------------------- stress */

#define NLOCKERS 6
static atomic_long rounds_done;
static ringo_chan *token;
static void locker(void *p)
{
    long n = (long)(intptr_t)p;
    for (long i = 0; i < n; i++) {
        ringo_lock_thread();
        long t = tid();
        long v;
        if (ringo_chan_recv(token, &v) == 1) { /* pass a token among locked and unlocked ones */
            v++;
            ringo_chan_send(token, &v);
        }
        ringo_sleep(i % 4 == 0 ? 50000 : 0);
        check_same(t);
        ringo_unlock_thread();
        atomic_fetch_add(&rounds_done, 1);
    }
}

static void test_lockthread_stress(void **state)
{
    (void)state;
    long per = (long)(60 * tu_scale());
    atomic_store(&moved, 0);
    atomic_store(&rounds_done, 0);
    token = ringo_chan_make(sizeof(long), 1);
    long v = 0;
    ringo_chan_send(token, &v);
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    tu_watchdog_arm("lock stress", 180);
    for (int i = 0; i < NLOCKERS; i++)
        ringo_go(locker, (void *)(intptr_t)per);
    while (atomic_load(&rounds_done) < NLOCKERS * per)
        usleep(1000);
    tu_watchdog_disarm();
    (void)wg;
    assert_int_equal(ringo_chan_recv(token, &v), 1);
    assert_int_equal(v, NLOCKERS * per); /* every pass counted once */
    assert_int_equal(atomic_load(&moved), 0);
    ringo_chan_free(token);
}

/* ---------------------------------------------------------------- deadlock detection */

static void locked_forever(void *p)
{
    ringo_lock_thread();
    ringo_chan_recv(p, NULL); /* nobody sends */
}
static int child_locked_deadlock(void)
{
    ringo_chan *c = ringo_chan_make(0, 0);
    ringo_go(locked_forever, c);
    ringo_chan_recv(c, NULL); /* main too: everyone asleep */
    return 1;
}

static struct ringo_waitgroup cwg = RINGO_WAITGROUP_INIT;
static void locked_computes(void *p)
{
    (void)p;
    ringo_lock_thread();
    int64_t end = ringo_now() + 300 * MS;
    volatile uint64_t x = 0;
    while (ringo_now() < end)
        x++;
    ringo_sleep(50 * MS);
    ringo_wg_done(&cwg);
}
static int child_locked_no_false_deadlock(void)
{
    ringo_wg_add(&cwg, 1);
    ringo_go(locked_computes, NULL);
    ringo_wg_wait(&cwg); /* the workers idle, main blocked: the locked thread still counts */
    printf("no false report\n");
    return 0;
}

static const struct child_scenario scenarios[] = {
    { "locked_deadlock", child_locked_deadlock },
    { "locked_no_false_deadlock", child_locked_no_false_deadlock },
    { NULL, NULL },
};

static void test_lockthread_deadlock_reported(void **state)
{
    (void)state;
    tu_skip_if_emulated("qemu-user runs a thread of its own, which ringo's deadlock check "
                        "(sched/debug/deadlock.c) rightly counts as one that could still act");
    struct child_result r;
    tu_run_child("locked_deadlock", NULL, 60, &r);
    assert_true(r.exited);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.out, "fatal error: all goroutines are asleep - deadlock!"));
}

static void test_lockthread_no_false_deadlock_while_it_computes(void **state)
{
    (void)state;
    tu_check_child("locked_no_false_deadlock", NULL, 60, NULL);
}

int main(int argc, char **argv)
{
    tu_maybe_child(argc, argv, scenarios);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lockthread_goroutine_stays_and_thread_runs_nothing_else),
        cmocka_unit_test(test_lockthread_locks_nest_and_children_run_elsewhere),
        cmocka_unit_test(test_lockthread_returning_locked_ends_the_thread),
        cmocka_unit_test(test_lockthread_locked_member_is_cancelled),
        cmocka_unit_test(test_lockthread_stress),
        cmocka_unit_test(test_lockthread_deadlock_reported),
        cmocka_unit_test(test_lockthread_no_false_deadlock_while_it_computes),
    };
    return TU_RUN_GROUP("lockthread", tests, NULL, NULL);
}
