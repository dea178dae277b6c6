/* tests/test_sync.c — mutex and wait group, goroutines and plain threads mixed; misuse is fatal;
 * the deadlock report for goroutines stuck on them, and no false report for a sleeper. */
#include <ringo.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <semaphore.h>
#include <string.h>
#include <unistd.h>
#include "tests/testutil.h"

#define PER 100000
static struct ringo_mutex mu = RINGO_MUTEX_INIT;
static long counter; /* protected by mu, deliberately not atomic */
static struct ringo_waitgroup cwg;

static void add_many(long n)
{
    for (long i = 0; i < n; i++) {
        ringo_mutex_lock(&mu);
        long v = counter;
        if ((i & 255) == 0)
            ringo_yield(); /* hold the lock across a switch now and then */
        counter = v + 1;
        ringo_mutex_unlock(&mu);
    }
}
static void g_adder(void *p) { add_many((long)p); ringo_wg_done(&cwg); }
static void *t_adder(void *p) { add_many((long)p); ringo_wg_done(&cwg); return NULL; }

static void test_sync_mutex_counter_goroutines_and_threads(void **state)
{
    (void)state;
    long per = (long)(PER * tu_scale());
    pthread_t t[2];
    counter = 0;
    ringo_wg_add(&cwg, 6);
    tu_watchdog_arm("mutex counter", 120);
    for (int i = 0; i < 4; i++)
        ringo_go(g_adder, (void *)per);
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, t_adder, (void *)per);
    ringo_wg_wait(&cwg);
    tu_watchdog_disarm();
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(counter, 6 * per);
}

static void test_sync_mutex_trylock(void **state)
{
    (void)state;
    struct ringo_mutex m = RINGO_MUTEX_INIT;
    assert_int_equal(ringo_mutex_trylock(&m), 0);
    assert_int_equal(ringo_mutex_trylock(&m), -EBUSY);
    ringo_mutex_unlock(&m);
    assert_int_equal(ringo_mutex_trylock(&m), 0);
    ringo_mutex_unlock(&m);
    struct ringo_mutex z;
    memset(&z, 0, sizeof z); /* zeroed memory is an unlocked mutex */
    ringo_mutex_lock(&z);
    ringo_mutex_unlock(&z);
}

static atomic_long wg_work;
static void wg_worker(void *p)
{
    ringo_sleep(1000000);
    atomic_fetch_add(&wg_work, 1);
    ringo_wg_done(p);
}
struct waiter_arg { struct ringo_waitgroup *wg, *out; };
static void wg_waiter(void *p)
{
    struct waiter_arg *a = p;
    ringo_wg_wait(a->wg);
    assert_int_equal(atomic_load(&wg_work), 100);
    ringo_wg_done(a->out);
}
static void *wg_thread_waiter(void *p) { wg_waiter(p); return NULL; }

static void test_sync_waitgroup_waiters_of_both_kinds(void **state)
{
    (void)state;
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT, out = RINGO_WAITGROUP_INIT;
    struct waiter_arg a = { &wg, &out };
    pthread_t t;
    atomic_store(&wg_work, 0);
    ringo_wg_add(&wg, 100);
    ringo_wg_add(&out, 4);
    for (int i = 0; i < 3; i++)
        ringo_go(wg_waiter, &a);
    pthread_create(&t, NULL, wg_thread_waiter, &a);
    for (int i = 0; i < 100; i++)
        ringo_go(wg_worker, &wg);
    ringo_wg_wait(&out);
    pthread_join(t, NULL);
    /* reuse after reaching zero */
    ringo_wg_add(&wg, 1);
    ringo_go(wg_worker, &wg);
    ringo_wg_wait(&wg);
    assert_int_equal(atomic_load(&wg_work), 101);
    ringo_wg_wait(&wg); /* zero: returns at once */
}

/* ------------------------------------------------------------------ wait group stress
 * Many rounds of one wait group, on 2 workers: doers (goroutines and plain threads) decrement a
 * shadow counter and then call Done, some first Add for a sub-doer (the counter is > 0 then, so
 * that Add may race with anything); waiters (goroutines, plain threads, the main thread) Wait and
 * then read the shadow counter. Every value read is counted: a Wait that returned early reads a
 * positive one. The next round's Add comes after every Wait of this round returned, as Go's rules
 * for reuse ask. */
#define ST_HIST 16
static struct ringo_waitgroup st_wg;
static atomic_long st_shadow;                /* work not yet done; Done follows the decrement */
static atomic_long st_hist[ST_HIST];         /* shadow values seen by returning waits */
static atomic_ulong st_seq;
static ringo_chan *st_jobs, *st_back;
enum { JOB_DOER = 1, JOB_WAITER, JOB_QUIT };

static uint64_t st_rand(void)
{
    uint64_t z = atomic_fetch_add(&st_seq, 0x9e3779b97f4a7c15ull) + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static void st_dither(int thread)
{
    unsigned n = (unsigned)(st_rand() % 4);
    for (unsigned i = 0; i < n; i++)
        thread ? (void)sched_yield() : ringo_yield();
}
static void st_record(void)
{
    long v = atomic_load(&st_shadow);
    atomic_fetch_add(&st_hist[v < 0 ? ST_HIST - 1 : v >= ST_HIST - 1 ? ST_HIST - 2 : v], 1);
}
static void st_g_doer(void *p);
static void st_do(int thread)
{
    st_dither(thread);
    if (!thread && st_rand() % 4 == 0) { /* Add while the counter is > 0: one more doer */
        atomic_fetch_add(&st_shadow, 1);
        ringo_wg_add(&st_wg, 1);
        ringo_go(st_g_doer, NULL);
        st_dither(thread);
    }
    atomic_fetch_sub(&st_shadow, 1);
    ringo_wg_done(&st_wg);
}
static void st_g_doer(void *p) { (void)p; st_do(0); }
static void st_g_waiter(void *p)
{
    (void)p;
    int one = 1;
    st_dither(0);
    ringo_wg_wait(&st_wg);
    st_record();
    ringo_chan_send(st_back, &one);
}
static void *st_thread(void *p)
{
    (void)p;
    int job, one = 1;
    while (ringo_chan_recv(st_jobs, &job) == 1 && job != JOB_QUIT) {
        if (job == JOB_DOER) {
            st_do(1);
        } else {
            st_dither(1);
            ringo_wg_wait(&st_wg);
            st_record();
            ringo_chan_send(st_back, &one);
        }
    }
    return NULL;
}

static int child_wg_stress(void)
{
    long rounds = (long)(3000 * tu_scale()), waits = 0;
    atomic_store(&st_seq, (unsigned long)time(NULL) * 2654435761u);
    st_jobs = ringo_chan_make(sizeof(int), 4);
    st_back = ringo_chan_make(sizeof(int), 16);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, st_thread, NULL);
    for (long r = 0; r < rounds; r++) {
        uint64_t x = st_rand();
        int ndo = 1 + (int)(x % 6), ngw = (int)((x >> 8) % 4), ntj = (int)((x >> 16) % 3), nback = ngw;
        int waiters_first = (int)((x >> 24) & 1), split = (int)((x >> 25) & 1), jobs[2], ntdo = 0;
        for (int i = 0; i < ntj; i++) {
            jobs[i] = (x >> (28 + i)) & 1 ? JOB_WAITER : JOB_DOER;
            ntdo += jobs[i] == JOB_DOER;
            nback += jobs[i] == JOB_WAITER;
        }
        /* every Add from zero comes before anyone of this round runs */
        atomic_store(&st_shadow, ndo + ntdo);
        if (split)
            for (int i = 0; i < ndo + ntdo; i++)
                ringo_wg_add(&st_wg, 1);
        else
            ringo_wg_add(&st_wg, ndo + ntdo);
        for (int pass = 0; pass < 2; pass++) {
            if (pass == waiters_first)
                for (int i = 0; i < ngw; i++)
                    ringo_go(st_g_waiter, NULL);
            else
                for (int i = 0; i < ndo; i++)
                    ringo_go(st_g_doer, NULL);
        }
        /* plain-thread jobs: at most one per thread, so a waiting thread never holds back a doer */
        for (int i = 0; i < ntj; i++)
            ringo_chan_send(st_jobs, &jobs[i]);
        ringo_wg_wait(&st_wg);
        st_record();
        for (int i = 0, one; i < nback; i++)
            ringo_chan_recv(st_back, &one);
        waits += 1 + nback;
    }
    for (int i = 0, job = JOB_QUIT; i < 2; i++)
        ringo_chan_send(st_jobs, &job);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    long seen = 0;
    printf("rounds %ld waits %ld; shadow counter at return:", rounds, waits);
    for (int v = 0; v < ST_HIST; v++) {
        long n = atomic_load(&st_hist[v]);
        seen += n;
        if (n)
            printf(" %s%d:%ld", v == ST_HIST - 1 ? "<0" : v == ST_HIST - 2 ? ">=" : "", v, n);
    }
    printf("\n");
    if (seen != waits || atomic_load(&st_hist[0]) != waits) {
        printf("FAIL: a wait returned while the counter was not zero\n");
        return 3;
    }
    return 0;
}

static void test_sync_waitgroup_stress_rounds(void **state)
{
    (void)state;
    struct child_result r;
    const char *env[] = { "RINGO_PROCS=2", NULL };
    tu_run_child("wg_stress", env, 600, &r);
    print_message("%s", r.out);
    assert_true(r.exited);
    assert_int_equal(r.code, 0);
}

/* ------------------------------------------------------------------ wait group reuse (issue 11)
 * A waiter counts itself in the wait group's word, then takes _r_qlock to queue itself or to
 * take a permit the last Done left for it. The hook holds waiter A between those two steps
 * (A is a plain thread, so it may block in the hook), which makes the rest deterministic:
 * round 1 ends (A gets a permit), round 2 Adds before A's Wait has returned (misuse, as in Go),
 * and a round-2 Wait must neither return with the counter at 1 on A's permit (the bug) nor park
 * forever; like Go it dies with "sync: WaitGroup is reused before previous Wait has returned".
 * In the second scenario A itself resumes after the round-2 Add: Go's message again. */
extern void (*sched_test_hook_wg_counted)(struct ringo_waitgroup *wg);
static struct ringo_waitgroup sp_wg;
static sem_t sp_counted, sp_resume;
static __thread int sp_pause_me;
static void sp_hook(struct ringo_waitgroup *wg)
{
    if (wg == &sp_wg && sp_pause_me) {
        sem_post(&sp_counted);
        while (sem_wait(&sp_resume) != 0)
            ;
    }
}
static void *sp_waiter_a(void *p)
{
    (void)p;
    sp_pause_me = 1;
    ringo_wg_wait(&sp_wg); /* round 1 */
    printf("round-1 wait returned after round 2 began\n");
    return NULL;
}
/* Rounds 1 ends while A is held after counting itself; round 2 begins. Returns with A held. */
static pthread_t sp_setup(void)
{
    pthread_t a;
    sem_init(&sp_counted, 0, 0);
    sem_init(&sp_resume, 0, 0);
    sched_test_hook_wg_counted = sp_hook;
    tu_watchdog_arm("wg stale permit", 30);
    ringo_wg_add(&sp_wg, 1);
    pthread_create(&a, NULL, sp_waiter_a, NULL);
    while (sem_wait(&sp_counted) != 0)
        ;
    ringo_wg_done(&sp_wg);   /* round 1 over: A, counted but not queued, is owed a permit */
    ringo_wg_add(&sp_wg, 1); /* round 2, before A's Wait has returned */
    return a;
}
static int child_wg_stale_permit(void)
{
    sp_setup();
    ringo_wg_wait(&sp_wg); /* round 2's counter is 1: must not return */
    printf("FAIL: round-2 wait returned with the counter at 1\n");
    return 3;
}
static int child_wg_reused_before_wait_returned(void)
{
    pthread_t a = sp_setup();
    sem_post(&sp_resume); /* A goes on to take its permit, with round 2 under way */
    pthread_join(a, NULL);
    return 3;
}

static void test_sync_waitgroup_reuse_before_wait_returned_is_fatal(void **state)
{
    (void)state;
    static const char *const names[] = { "wg_stale_permit", "wg_reused_before_wait_returned" };
    for (int i = 0; i < 2; i++) {
        struct child_result r;
        tu_run_child(names[i], NULL, 60, &r);
        print_message("# %s: exited %d code %d signal %d: %s", names[i], r.exited, r.code, r.signo, r.out);
        assert_null(strstr(r.out, "FAIL"));
        assert_null(strstr(r.out, "watchdog"));
        assert_false(r.exited && (r.code == 0 || r.code == 3));
        assert_non_null(
            strstr(r.out, "fatal error: sync: WaitGroup is reused before previous Wait has returned"));
    }
}

/* ------------------------------------------------------------------ misuse and deadlock */
static int child_unlock_unlocked(void)
{
    struct ringo_mutex m = RINGO_MUTEX_INIT;
    ringo_mutex_unlock(&m);
    return 0;
}
static int child_negative_wg(void)
{
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    ringo_wg_done(&wg);
    return 0;
}

static void test_sync_misuse_is_fatal_with_a_message(void **state)
{
    (void)state;
    struct child_result r;
    tu_run_child("unlock_unlocked", NULL, 30, &r);
    assert_false(r.exited && r.code == 0);
    assert_non_null(strstr(r.out, "fatal error: sync: unlock of unlocked mutex"));
    tu_run_child("negative_wg", NULL, 30, &r);
    assert_false(r.exited && r.code == 0);
    assert_non_null(strstr(r.out, "fatal error: sync: negative WaitGroup counter"));
}

static struct ringo_mutex dl_mu;
static void lock_forever(void *p)
{
    ringo_mutex_lock(&dl_mu);
    ringo_wg_done(p);
}
static int child_deadlock(void)
{
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    ringo_mutex_lock(&dl_mu);
    ringo_wg_add(&wg, 1);
    ringo_go(lock_forever, &wg);
    ringo_wg_wait(&wg); /* the goroutine waits for the mutex we hold: nothing can move */
    return 0;
}
static void sleep_then_done(void *p)
{
    ringo_sleep(300000000);
    ringo_wg_done(p);
}
static int child_no_false_deadlock(void)
{
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    ringo_wg_add(&wg, 1);
    ringo_go(sleep_then_done, &wg);
    ringo_wg_wait(&wg); /* everyone blocked, but a timer is pending: not a deadlock */
    return 0;
}
static void *thread_busy_then_unlock(void *p)
{
    usleep(300000); /* running outside ringo */
    ringo_mutex_unlock(p);
    return NULL;
}
static int child_thread_outside_ringo(void)
{
    static struct ringo_mutex m;
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    pthread_t t;
    ringo_mutex_lock(&m);
    ringo_wg_add(&wg, 1);
    /* this thread has used ringo (it will unlock) and is running outside ringo meanwhile */
    ringo_mutex_trylock(&dl_mu);
    pthread_create(&t, NULL, thread_busy_then_unlock, &m);
    ringo_go(lock_forever, &wg);
    ringo_mutex_lock(&m); /* waits for the thread */
    ringo_mutex_unlock(&dl_mu);
    ringo_wg_wait(&wg);
    pthread_join(t, NULL);
    return 0;
}

static void *thread_later_done(void *p)
{
    usleep(300000); /* has never used ringo so far */
    ringo_wg_done(p);
    return NULL;
}
static struct ringo_mutex held_by_main;
static void lock_then_unlock(void *p)
{
    (void)p;
    ringo_mutex_lock(&held_by_main);
    ringo_mutex_unlock(&held_by_main);
}
static int child_thread_not_yet_used(void)
{
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    pthread_t t;
    ringo_mutex_lock(&held_by_main);
    ringo_wg_add(&wg, 1);
    pthread_create(&t, NULL, thread_later_done, &wg);
    ringo_go(lock_then_unlock, NULL); /* parks on the mutex main holds... */
    ringo_wg_wait(&wg);               /* ...and main waits: only the thread can move things */
    ringo_mutex_unlock(&held_by_main);
    pthread_join(t, NULL);
    return 0;
}

static void test_sync_deadlock_reported_like_go(void **state)
{
    (void)state;
    tu_skip_if_emulated("qemu-user runs a thread of its own, which ringo's deadlock check "
                        "(sched/debug/deadlock.c) rightly counts as one that could still act");
    struct child_result r;
    tu_run_child("deadlock", NULL, 30, &r);
    assert_true(r.exited);
    assert_int_equal(r.code, 2);
    assert_memory_equal(r.out, "fatal error: all goroutines are asleep - deadlock!\n\n", 52);
    assert_non_null(strstr(r.out, "[sync.Mutex.Lock]:\n"));
    assert_non_null(strstr(r.out, "[sync.WaitGroup.Wait]:\n"));
}

static void test_sync_no_false_deadlock(void **state)
{
    (void)state;
    struct child_result r;
    tu_run_child("no_false_deadlock", NULL, 30, &r);
    assert_true(r.exited);
    assert_int_equal(r.code, 0);
    assert_null(strstr(r.out, "deadlock"));
    tu_run_child("thread_not_yet_used", NULL, 30, &r);
    assert_true(r.exited);
    assert_int_equal(r.code, 0);
    assert_null(strstr(r.out, "deadlock"));
    tu_run_child("thread_outside_ringo", NULL, 30, &r);
    assert_true(r.exited);
    assert_int_equal(r.code, 0);
    assert_null(strstr(r.out, "deadlock"));
}

/* ringo_once (issue 14): 200 goroutines and 8 threads race one once; fn runs exactly once, every
 * caller returns after it and sees what it wrote (a slow fn, so most callers wait); later calls
 * return 0 at once; NULL is -EINVAL; a zeroed struct is a fresh once. */
static struct ringo_once once_obj = RINGO_ONCE_INIT;
static _Atomic int once_runs, once_ran_returns, once_bad;
static long once_value; /* written by fn only, read by every caller after ringo_once returned */
static struct ringo_waitgroup once_wg = RINGO_WAITGROUP_INIT;

static void once_fn(void *arg)
{
    atomic_fetch_add_explicit(&once_runs, 1, memory_order_relaxed);
    ringo_sleep(20000000); /* the others pile up on the mutex meanwhile */
    once_value = (long)(intptr_t)arg;
}

static void once_caller(void *arg)
{
    (void)arg;
    int r = ringo_once(&once_obj, once_fn, (void *)(intptr_t)4242);
    if (r == 1)
        atomic_fetch_add_explicit(&once_ran_returns, 1, memory_order_relaxed);
    if (r < 0 || once_value != 4242) /* fn's write is visible to every caller (O2) */
        atomic_fetch_add_explicit(&once_bad, 1, memory_order_relaxed);
    ringo_wg_done(&once_wg);
}

static void *once_thread(void *arg)
{
    once_caller(arg);
    return NULL;
}

static void test_sync_once_runs_exactly_once(void **state)
{
    (void)state;
    enum { G = 200, T = 8 };
    ringo_wg_add(&once_wg, G + T);
    pthread_t th[T];
    for (int i = 0; i < T; i++)
        assert_int_equal(pthread_create(&th[i], NULL, once_thread, NULL), 0);
    for (int i = 0; i < G; i++)
        assert_true(ringo_go(once_caller, NULL) > 0);
    ringo_wg_wait(&once_wg);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&once_runs), 1);
    assert_int_equal(atomic_load(&once_ran_returns), 1);
    assert_int_equal(atomic_load(&once_bad), 0);
    assert_int_equal(ringo_once(&once_obj, once_fn, NULL), 0); /* done: fn is not run again */
    assert_int_equal(atomic_load(&once_runs), 1);
    assert_int_equal(ringo_once(NULL, once_fn, NULL), -EINVAL);
    assert_int_equal(ringo_once(&once_obj, NULL, NULL), -EINVAL);
    struct ringo_once fresh;
    memset(&fresh, 0, sizeof fresh);
    assert_int_equal(ringo_once(&fresh, once_fn, (void *)(intptr_t)7), 1);
    assert_int_equal(once_value, 7);
    assert_int_equal(atomic_load(&once_runs), 2);
}

static const struct child_scenario scenarios[] = {
    { "unlock_unlocked", child_unlock_unlocked },
    { "negative_wg", child_negative_wg },
    { "deadlock", child_deadlock },
    { "no_false_deadlock", child_no_false_deadlock },
    { "thread_outside_ringo", child_thread_outside_ringo },
    { "thread_not_yet_used", child_thread_not_yet_used },
    { "wg_stress", child_wg_stress },
    { "wg_stale_permit", child_wg_stale_permit },
    { "wg_reused_before_wait_returned", child_wg_reused_before_wait_returned },
    { NULL, NULL },
};

int main(int argc, char **argv)
{
    tu_maybe_child(argc, argv, scenarios);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_mutex_counter_goroutines_and_threads),
        cmocka_unit_test(test_sync_mutex_trylock),
        cmocka_unit_test(test_sync_waitgroup_waiters_of_both_kinds),
        cmocka_unit_test(test_sync_waitgroup_stress_rounds),
        cmocka_unit_test(test_sync_waitgroup_reuse_before_wait_returned_is_fatal),
        cmocka_unit_test(test_sync_misuse_is_fatal_with_a_message),
        cmocka_unit_test(test_sync_deadlock_reported_like_go),
        cmocka_unit_test(test_sync_no_false_deadlock),
        cmocka_unit_test(test_sync_once_runs_exactly_once),
    };
    return TU_RUN_GROUP("sync", tests, NULL, NULL);
}
