/* tests/test_sync2.c — rwmutex and cond (issue 14): goroutines and plain threads mixed; cond
 * deadlines that leave the mutex held; randomized stresses that check every value. */
#include <ringo.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include "tests/testutil.h"

#define MS 1000000LL

/* Run fn(arg) as a goroutine or on a new detached plain thread; callers count completion
 * with a wait group. */
struct tramp {
    void (*fn)(void *);
    void *arg;
};
static void *tramp_main(void *p)
{
    struct tramp t = *(struct tramp *)p;
    free(p);
    t.fn(t.arg);
    return NULL;
}
static void spawn(void (*fn)(void *), void *arg, int as_thread)
{
    if (!as_thread) {
        assert_true(ringo_go(fn, arg) > 0);
        return;
    }
    struct tramp *t = malloc(sizeof *t);
    assert_non_null(t);
    t->fn = fn;
    t->arg = arg;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, tramp_main, t), 0);
    pthread_detach(th);
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static atomic_ulong rng_seq;
static uint64_t rnd(void)
{
    return mix64(atomic_fetch_add_explicit(&rng_seq, 0x9e3779b97f4a7c15ull, memory_order_relaxed));
}
static void pause_a_bit(int as_thread)
{
    unsigned n = (unsigned)(rnd() % 3);
    for (unsigned i = 0; i < n; i++)
        as_thread ? (void)sched_yield() : ringo_yield();
}

/* ================================================================== rwmutex */

static void test_sync2_rwmutex_try_and_errors(void **state)
{
    (void)state;
    struct ringo_rwmutex rw = RINGO_RWMUTEX_INIT;
    assert_int_equal(ringo_rwmutex_tryrlock(NULL), -EINVAL);
    assert_int_equal(ringo_rwmutex_trylock(NULL), -EINVAL);
    assert_int_equal(ringo_rwmutex_tryrlock(&rw), 0);
    assert_int_equal(ringo_rwmutex_tryrlock(&rw), 0); /* readers share */
    assert_int_equal(ringo_rwmutex_trylock(&rw), -EBUSY);
    ringo_rwmutex_runlock(&rw);
    assert_int_equal(ringo_rwmutex_trylock(&rw), -EBUSY);
    ringo_rwmutex_runlock(&rw);
    assert_int_equal(ringo_rwmutex_trylock(&rw), 0);
    assert_int_equal(ringo_rwmutex_tryrlock(&rw), -EBUSY);
    assert_int_equal(ringo_rwmutex_trylock(&rw), -EBUSY);
    ringo_rwmutex_unlock(&rw);
    ringo_rwmutex_rlock(&rw);
    ringo_rwmutex_runlock(&rw);
    ringo_rwmutex_lock(&rw);
    ringo_rwmutex_unlock(&rw);
    struct ringo_rwmutex z;
    memset(&z, 0, sizeof z); /* zeroed memory is an unlocked rwmutex */
    ringo_rwmutex_lock(&z);
    ringo_rwmutex_unlock(&z);
    assert_int_equal(ringo_rwmutex_tryrlock(&z), 0);
    ringo_rwmutex_runlock(&z);
}

/* Writer preference: main holds a read lock; a writer W blocks in lock; a reader R that comes
 * after W is pending must not get in until W is done, although only readers hold the lock.
 * Each role in turn a goroutine and a plain thread. */
static struct ringo_rwmutex wp_rw = RINGO_RWMUTEX_INIT;
static atomic_int wp_writer_in, wp_writer_done, wp_reader_in, wp_reader_saw_done, wp_reader_arriving;
static struct ringo_waitgroup wp_wg;

static void wp_writer(void *p)
{
    (void)p;
    ringo_rwmutex_lock(&wp_rw);
    atomic_store(&wp_writer_in, 1);
    ringo_sleep(20 * MS); /* a reader that wrongly got in would be seen meanwhile */
    atomic_store(&wp_writer_done, 1);
    ringo_rwmutex_unlock(&wp_rw);
    ringo_wg_done(&wp_wg);
}
static void wp_reader(void *p)
{
    (void)p;
    atomic_store(&wp_reader_arriving, 1);
    ringo_rwmutex_rlock(&wp_rw);
    atomic_store(&wp_reader_saw_done, atomic_load(&wp_writer_done));
    atomic_store(&wp_reader_in, 1);
    ringo_rwmutex_runlock(&wp_rw);
    ringo_wg_done(&wp_wg);
}

static void test_sync2_rwmutex_writer_preference(void **state)
{
    (void)state;
    tu_watchdog_arm("rwmutex writer preference", 60);
    for (int mode = 0; mode < 4; mode++) {
        atomic_store(&wp_writer_in, 0);
        atomic_store(&wp_writer_done, 0);
        atomic_store(&wp_reader_in, 0);
        atomic_store(&wp_reader_saw_done, 0);
        atomic_store(&wp_reader_arriving, 0);
        ringo_wg_add(&wp_wg, 2);
        ringo_rwmutex_rlock(&wp_rw);
        spawn(wp_writer, NULL, mode & 1);
        while (ringo_rwmutex_tryrlock(&wp_rw) == 0) { /* -EBUSY once W is pending */
            ringo_rwmutex_runlock(&wp_rw);
            ringo_sleep(MS / 10);
        }
        spawn(wp_reader, NULL, mode & 2);
        while (!atomic_load(&wp_reader_arriving))
            ringo_sleep(MS / 10);
        ringo_sleep(20 * MS); /* R reaches rlock (if it were let in, it would be now) */
        assert_int_equal(atomic_load(&wp_writer_in), 0); /* we still read */
        assert_int_equal(atomic_load(&wp_reader_in), 0); /* a pending writer stops new readers */
        ringo_rwmutex_runlock(&wp_rw);
        ringo_wg_wait(&wp_wg);
        assert_int_equal(atomic_load(&wp_writer_in), 1);
        assert_int_equal(atomic_load(&wp_reader_in), 1);
        assert_int_equal(atomic_load(&wp_reader_saw_done), 1); /* R went in after W's turn */
    }
    tu_watchdog_disarm();
}

/* No writer starvation: readers (goroutines and threads) keep the lock read-held at every
 * moment, overlapping; writers still get their turns, and readers go on between them. */
static struct ringo_rwmutex ns_rw = RINGO_RWMUTEX_INIT;
static atomic_int ns_stop;
static atomic_long ns_reads, ns_writes;
static struct ringo_waitgroup ns_wg;
static void ns_reader(void *p)
{
    int th = (int)(intptr_t)p;
    while (!atomic_load(&ns_stop)) {
        ringo_rwmutex_rlock(&ns_rw);
        atomic_fetch_add(&ns_reads, 1);
        pause_a_bit(th);
        ringo_rwmutex_runlock(&ns_rw);
    }
    ringo_wg_done(&ns_wg);
}
static void ns_writer(void *p)
{
    int th = (int)(intptr_t)p;
    for (int i = 0; i < 200; i++) {
        ringo_rwmutex_lock(&ns_rw);
        atomic_fetch_add(&ns_writes, 1);
        ringo_rwmutex_unlock(&ns_rw);
        pause_a_bit(th);
    }
    ringo_wg_done(&ns_wg);
}

static void test_sync2_rwmutex_no_starvation(void **state)
{
    (void)state;
    tu_watchdog_arm("rwmutex writer starvation", 120);
    ringo_wg_add(&ns_wg, 6);
    for (int i = 0; i < 6; i++) /* 4 goroutines, 2 threads */
        spawn(ns_reader, (void *)(intptr_t)(i >= 4), i >= 4);
    ringo_sleep(5 * MS);
    long reads0 = atomic_load(&ns_reads);
    ringo_wg_add(&ns_wg, 2);
    spawn(ns_writer, (void *)(intptr_t)0, 0);
    spawn(ns_writer, (void *)(intptr_t)1, 1);
    while (atomic_load(&ns_writes) < 400) /* the writers finish although readers never stop */
        ringo_sleep(MS);
    long reads1 = atomic_load(&ns_reads);
    atomic_store(&ns_stop, 1);
    ringo_wg_wait(&ns_wg);
    tu_watchdog_disarm();
    assert_int_equal(atomic_load(&ns_writes), 400);
    assert_true(reads1 > reads0); /* readers got in between the writers' turns */
}

/* Stress: writers keep an invariant over an array of plain longs (all equal, and the count of
 * writes); readers check it under the read lock. Goroutines and threads, with try calls. */
#define RS_N 8
static struct ringo_rwmutex rs_rw = RINGO_RWMUTEX_INIT;
static long rs_vals[RS_N]; /* protected by rs_rw, deliberately not atomic */
static atomic_long rs_writes, rs_reads, rs_bad;
static struct ringo_waitgroup rs_wg;
static long rs_iters;

static void rs_worker(void *p)
{
    intptr_t k = (intptr_t)p;
    int th = (int)(k & 1), writer = (int)((k >> 1) & 1);
    for (long i = 0; i < rs_iters; i++) {
        uint64_t x = rnd();
        if (writer && x % 4 != 0) {
            if (x % 8 == 1) {
                if (ringo_rwmutex_trylock(&rs_rw) != 0)
                    continue;
            } else {
                ringo_rwmutex_lock(&rs_rw);
            }
            long v = rs_vals[0];
            for (int j = 0; j < RS_N; j++) {
                if (rs_vals[j] != v)
                    atomic_fetch_add(&rs_bad, 1);
                if (j == RS_N / 2)
                    pause_a_bit(th); /* hold it across a switch */
                rs_vals[j] = v + 1;
            }
            atomic_fetch_add(&rs_writes, 1);
            ringo_rwmutex_unlock(&rs_rw);
        } else {
            if (x % 8 == 2) {
                if (ringo_rwmutex_tryrlock(&rs_rw) != 0)
                    continue;
            } else {
                ringo_rwmutex_rlock(&rs_rw);
            }
            long v = rs_vals[0];
            pause_a_bit(th);
            for (int j = 1; j < RS_N; j++)
                if (rs_vals[j] != v)
                    atomic_fetch_add(&rs_bad, 1);
            atomic_fetch_add(&rs_reads, 1);
            ringo_rwmutex_runlock(&rs_rw);
        }
        pause_a_bit(th);
    }
    ringo_wg_done(&rs_wg);
}

static void test_sync2_rwmutex_stress(void **state)
{
    (void)state;
    rs_iters = (long)((TU_TSAN ? 3000 : 20000) * tu_scale());
    atomic_store(&rng_seq, (unsigned long)time(NULL) * 2654435761u);
    tu_watchdog_arm("rwmutex stress", 300);
    enum { W = 12 };
    ringo_wg_add(&rs_wg, W);
    for (intptr_t k = 0; k < W; k++) /* k&1 thread, k&2 writer: 3 of each kind */
        spawn(rs_worker, (void *)k, (int)(k & 1));
    ringo_wg_wait(&rs_wg);
    tu_watchdog_disarm();
    print_message("# rwmutex stress: %ld writes, %ld reads\n", atomic_load(&rs_writes), atomic_load(&rs_reads));
    assert_int_equal(atomic_load(&rs_bad), 0);
    ringo_rwmutex_lock(&rs_rw);
    for (int j = 0; j < RS_N; j++)
        assert_int_equal(rs_vals[j], atomic_load(&rs_writes));
    ringo_rwmutex_unlock(&rs_rw);
    assert_true(atomic_load(&rs_reads) > 0);
}

/* ================================================================== cond */

static void test_sync2_cond_deadline_and_errors(void **state)
{
    (void)state;
    struct ringo_cond c = RINGO_COND_INIT;
    struct ringo_mutex m = RINGO_MUTEX_INIT;
    assert_int_equal(ringo_cond_wait(NULL, &m), -EINVAL);
    assert_int_equal(ringo_cond_wait(&c, NULL), -EINVAL);
    assert_int_equal(ringo_cond_wait_until(NULL, &m, -1), -EINVAL);
    assert_int_equal(ringo_mutex_trylock(&m), 0); /* -EINVAL left m as it was */
    /* a deadline already past: -ETIMEDOUT, m held again */
    assert_int_equal(ringo_cond_wait_until(&c, &m, 0), -ETIMEDOUT);
    assert_int_equal(ringo_mutex_trylock(&m), -EBUSY);
    assert_int_equal(ringo_cond_wait_until(&c, &m, ringo_now() - MS), -ETIMEDOUT);
    assert_int_equal(ringo_mutex_trylock(&m), -EBUSY);
    /* nobody signals: -ETIMEDOUT no earlier than the deadline, m held again */
    int64_t d = ringo_now() + 30 * MS;
    assert_int_equal(ringo_cond_wait_until(&c, &m, d), -ETIMEDOUT);
    assert_true(ringo_now() >= d);
    assert_int_equal(ringo_mutex_trylock(&m), -EBUSY);
    ringo_mutex_unlock(&m);
    /* signal and broadcast with nobody waiting do nothing */
    ringo_cond_signal(&c);
    ringo_cond_broadcast(&c);
    struct ringo_cond z;
    memset(&z, 0, sizeof z);
    ringo_mutex_lock(&m);
    assert_int_equal(ringo_cond_wait_until(&z, &m, ringo_now() + MS), -ETIMEDOUT);
    ringo_mutex_unlock(&m);
}

/* The same on a plain thread and in a goroutine. */
static atomic_int cdt_bad;
static struct ringo_waitgroup cdt_wg;
static void cdt_body(void *p)
{
    (void)p;
    struct ringo_cond c = RINGO_COND_INIT;
    struct ringo_mutex m = RINGO_MUTEX_INIT;
    ringo_mutex_lock(&m);
    int64_t d = ringo_now() + 20 * MS;
    if (ringo_cond_wait_until(&c, &m, d) != -ETIMEDOUT || ringo_now() < d || ringo_mutex_trylock(&m) != -EBUSY)
        atomic_fetch_add(&cdt_bad, 1);
    ringo_mutex_unlock(&m);
    ringo_wg_done(&cdt_wg);
}
static void test_sync2_cond_deadline_goroutine_and_thread(void **state)
{
    (void)state;
    ringo_wg_add(&cdt_wg, 4);
    for (int i = 0; i < 4; i++)
        spawn(cdt_body, NULL, i & 1);
    ringo_wg_wait(&cdt_wg);
    assert_int_equal(atomic_load(&cdt_bad), 0);
}

/* Signal wakes exactly one waiter, the longest waiting (FIFO); broadcast wakes the rest; a
 * waiter whose deadline passed takes no signal (the next signal goes to a live waiter). */
static struct ringo_cond sg_c = RINGO_COND_INIT;
static struct ringo_mutex sg_m = RINGO_MUTEX_INIT;
static int sg_waiting, sg_woken, sg_order[8], sg_timedout; /* under sg_m */
static atomic_int sg_bad;
static struct ringo_waitgroup sg_wg;
struct sg_arg { int id; int64_t deadline_ms; };
static void sg_waiter(void *p)
{
    struct sg_arg *a = p;
    ringo_mutex_lock(&sg_m);
    sg_waiting++;
    int r = ringo_cond_wait_until(&sg_c, &sg_m, a->deadline_ms < 0 ? -1 : ringo_now() + a->deadline_ms * MS);
    if (ringo_mutex_trylock(&sg_m) != -EBUSY)
        atomic_fetch_add(&sg_bad, 1);
    if (r == 0)
        sg_order[sg_woken++] = a->id;
    else if (r == -ETIMEDOUT)
        sg_timedout++;
    else
        atomic_fetch_add(&sg_bad, 1);
    sg_waiting--;
    ringo_mutex_unlock(&sg_m);
    ringo_wg_done(&sg_wg);
}
static int sg_get(int *v)
{
    ringo_mutex_lock(&sg_m);
    int x = *v;
    ringo_mutex_unlock(&sg_m);
    return x;
}

static void test_sync2_cond_signal_one_fifo_broadcast(void **state)
{
    (void)state;
    tu_watchdog_arm("cond signal/broadcast", 60);
    static struct sg_arg args[4];
    ringo_wg_add(&sg_wg, 4);
    for (int i = 0; i < 4; i++) { /* queue them in order: each is queued before the next starts */
        args[i] = (struct sg_arg){ i, -1 };
        spawn(sg_waiter, &args[i], i & 1);
        while (sg_get(&sg_waiting) != i + 1) /* it counts itself and waits in one hold of m */
            ringo_sleep(MS / 10);
    }
    ringo_cond_signal(&sg_c);
    while (sg_get(&sg_woken) != 1)
        ringo_sleep(MS / 10);
    ringo_sleep(20 * MS); /* a second waiter woken by the one signal would show by now */
    assert_int_equal(sg_get(&sg_woken), 1);
    assert_int_equal(sg_order[0], 0); /* the longest waiter */
    ringo_mutex_lock(&sg_m);
    ringo_cond_signal(&sg_c); /* signalling with the mutex held works as well */
    ringo_mutex_unlock(&sg_m);
    while (sg_get(&sg_woken) != 2)
        ringo_sleep(MS / 10);
    assert_int_equal(sg_order[1], 1);
    ringo_cond_broadcast(&sg_c);
    ringo_wg_wait(&sg_wg);
    assert_int_equal(sg_woken, 4);
    assert_int_equal(sg_waiting, 0);
    assert_int_equal(atomic_load(&sg_bad), 0);

    /* a timed-out waiter, queued first, takes no signal: the next one goes to the live waiter */
    sg_woken = sg_timedout = 0;
    ringo_wg_add(&sg_wg, 2);
    args[0] = (struct sg_arg){ 10, 10 };
    args[1] = (struct sg_arg){ 11, -1 };
    spawn(sg_waiter, &args[0], 1);
    while (sg_get(&sg_waiting) != 1)
        ringo_sleep(MS / 10);
    spawn(sg_waiter, &args[1], 0);
    while (sg_get(&sg_waiting) != 2)
        ringo_sleep(MS / 10);
    while (sg_get(&sg_timedout) != 1)
        ringo_sleep(MS / 10);
    ringo_cond_signal(&sg_c);
    ringo_wg_wait(&sg_wg);
    assert_int_equal(sg_woken, 1);
    assert_int_equal(sg_order[0], 11);
    assert_int_equal(atomic_load(&sg_bad), 0);
    tu_watchdog_disarm();
}

/* Producer/consumer over a bounded ring guarded by one mutex and two conds: producers and
 * consumers, goroutines and threads, some consumers waiting with short deadlines (and looping
 * on -ETIMEDOUT); every item is counted once, the checksum matches, nothing is lost. Signals
 * are sometimes made outside the mutex, and sometimes broadcasts. */
#define PC_CAP 4
#define PC_PROD 4
#define PC_CONS 4
static struct ringo_mutex pc_m = RINGO_MUTEX_INIT;
static struct ringo_cond pc_notempty = RINGO_COND_INIT, pc_notfull = RINGO_COND_INIT;
static long pc_ring[PC_CAP], pc_head, pc_len, pc_done_producers; /* under pc_m */
static long pc_items;
static atomic_long pc_got, pc_sum, pc_timeouts, pc_bad;
static atomic_uchar *pc_seen;
static struct ringo_waitgroup pc_wg;

static void pc_producer(void *p)
{
    intptr_t id = (intptr_t)p;
    int th = (int)(id & 1);
    for (long i = 0; i < pc_items; i++) {
        long v = id * pc_items + i;
        ringo_mutex_lock(&pc_m);
        while (pc_len == PC_CAP)
            if (ringo_cond_wait(&pc_notfull, &pc_m) != 0)
                atomic_fetch_add(&pc_bad, 1);
        pc_ring[(pc_head + pc_len) % PC_CAP] = v;
        pc_len++;
        uint64_t x = rnd();
        if (x % 2) {
            ringo_cond_signal(&pc_notempty);
            ringo_mutex_unlock(&pc_m);
        } else {
            ringo_mutex_unlock(&pc_m);
            if (x % 8 == 0)
                ringo_cond_broadcast(&pc_notempty);
            else
                ringo_cond_signal(&pc_notempty);
        }
        pause_a_bit(th);
    }
    ringo_mutex_lock(&pc_m);
    pc_done_producers++;
    ringo_cond_broadcast(&pc_notempty);
    ringo_mutex_unlock(&pc_m);
    ringo_wg_done(&pc_wg);
}
static void pc_consumer(void *p)
{
    intptr_t id = (intptr_t)p;
    int th = (int)(id & 1), timed = (int)((id >> 1) & 1);
    for (;;) {
        ringo_mutex_lock(&pc_m);
        while (pc_len == 0 && pc_done_producers < PC_PROD) {
            int r = timed ? ringo_cond_wait_until(&pc_notempty, &pc_m, ringo_now() + (int64_t)(rnd() % 200) * 1000)
                          : ringo_cond_wait(&pc_notempty, &pc_m);
            if (r == -ETIMEDOUT)
                atomic_fetch_add(&pc_timeouts, 1);
            else if (r != 0)
                atomic_fetch_add(&pc_bad, 1);
        }
        if (pc_len == 0) {
            ringo_mutex_unlock(&pc_m);
            break;
        }
        long v = pc_ring[pc_head];
        pc_head = (pc_head + 1) % PC_CAP;
        pc_len--;
        ringo_cond_signal(&pc_notfull);
        ringo_mutex_unlock(&pc_m);
        if (v < 0 || v >= PC_PROD * pc_items || atomic_fetch_add(&pc_seen[v], 1) != 0)
            atomic_fetch_add(&pc_bad, 1); /* out of range, or received twice */
        atomic_fetch_add(&pc_got, 1);
        atomic_fetch_add(&pc_sum, v);
        pause_a_bit(th);
    }
    ringo_wg_done(&pc_wg);
}

static void test_sync2_cond_producer_consumer_stress(void **state)
{
    (void)state;
    pc_items = (long)((TU_TSAN ? 3000 : 30000) * tu_scale());
    long n = PC_PROD * pc_items;
    pc_seen = calloc((size_t)n, 1);
    assert_non_null(pc_seen);
    atomic_store(&rng_seq, (unsigned long)time(NULL) * 40503u);
    tu_watchdog_arm("cond producer/consumer", 300);
    ringo_wg_add(&pc_wg, PC_PROD + PC_CONS);
    for (intptr_t i = 0; i < PC_CONS; i++) /* i&1 thread, i&2 timed */
        spawn(pc_consumer, (void *)i, (int)(i & 1));
    for (intptr_t i = 0; i < PC_PROD; i++)
        spawn(pc_producer, (void *)i, (int)(i & 1));
    ringo_wg_wait(&pc_wg);
    tu_watchdog_disarm();
    print_message("# cond stress: %ld items, %ld timed-out waits\n", atomic_load(&pc_got), atomic_load(&pc_timeouts));
    assert_int_equal(atomic_load(&pc_bad), 0);
    assert_int_equal(atomic_load(&pc_got), n);
    assert_int_equal(atomic_load(&pc_sum), n * (n - 1) / 2);
    for (long v = 0; v < n; v++)
        if (atomic_load(&pc_seen[v]) != 1)
            fail_msg("item %ld seen %d times", v, (int)atomic_load(&pc_seen[v]));
    free(pc_seen);
}

static const struct child_scenario scenarios[] = {
    { NULL, NULL },
};

int main(int argc, char **argv)
{
    tu_maybe_child(argc, argv, scenarios);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync2_rwmutex_try_and_errors),
        cmocka_unit_test(test_sync2_rwmutex_writer_preference),
        cmocka_unit_test(test_sync2_rwmutex_no_starvation),
        cmocka_unit_test(test_sync2_rwmutex_stress),
        cmocka_unit_test(test_sync2_cond_deadline_and_errors),
        cmocka_unit_test(test_sync2_cond_deadline_goroutine_and_thread),
        cmocka_unit_test(test_sync2_cond_signal_one_fifo_broadcast),
        cmocka_unit_test(test_sync2_cond_producer_consumer_stress),
    };
    return TU_RUN_GROUP("sync2", tests, NULL, NULL);
}
