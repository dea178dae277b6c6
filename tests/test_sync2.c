/* tests/test_sync2.c — rwmutex, cond and weighted semaphore (issue 14): goroutines and plain
 * threads mixed; writer preference; deadlines that leave nothing taken and the mutex held; the
 * semaphore's FIFO head-of-line and timed-out-head cases; misuse is fatal with Go's messages;
 * randomized stresses that check every value; the deadlock report names the new waits. */
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

/* The waitq.h test hook: a plain thread that sets hk_pause_me is held right after its cond or
 * semaphore park ended without a wake-up (its deadline), before it leaves the queue, until the
 * test lets it go: a waker then meets its lost claim, deterministically. */
extern void (*sched_test_hook_wait_ended)(void *obj);
static sem_t hk_reached, hk_resume;
static __thread int hk_pause_me;
static void hk_hook(void *obj)
{
    (void)obj;
    if (hk_pause_me) {
        sem_post(&hk_reached);
        while (sem_wait(&hk_resume) != 0)
            ;
    }
}
static void hk_install(void)
{
    sem_init(&hk_reached, 0, 0);
    sem_init(&hk_resume, 0, 0);
    sched_test_hook_wait_ended = hk_hook; /* before any thread it may run on is made */
}
static void hk_wait_reached(void)
{
    while (sem_wait(&hk_reached) != 0)
        ;
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
    tu_watchdog_arm("cond deadlines", 60);
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
    tu_watchdog_disarm();
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
    tu_watchdog_arm("cond deadlines, goroutines and threads", 60);
    ringo_wg_add(&cdt_wg, 4);
    for (int i = 0; i < 4; i++)
        spawn(cdt_body, NULL, i & 1);
    ringo_wg_wait(&cdt_wg);
    tu_watchdog_disarm();
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
    while (sg_get(&sg_woken) < 1)
        ringo_sleep(MS / 10);
    ringo_sleep(20 * MS); /* a second waiter woken by the one signal would show by now */
    assert_int_equal(sg_get(&sg_woken), 1);
    assert_int_equal(sg_order[0], 0); /* the longest waiter */
    ringo_mutex_lock(&sg_m);
    ringo_cond_signal(&sg_c); /* signalling with the mutex held works as well */
    ringo_mutex_unlock(&sg_m);
    while (sg_get(&sg_woken) < 2)
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

/* A signal that comes while the first waiter's deadline has passed, but before it has left
 * the queue, is not spent on it: the waiter behind gets it. (A ticket scheme without claims
 * would hand the signal to the departed waiter and lose it.) */
static void sg_thread_waiter(void *p)
{
    hk_pause_me = 1;
    sg_waiter(p);
}

static void test_sync2_cond_signal_racing_a_timeout_is_not_lost(void **state)
{
    (void)state;
    static struct sg_arg args[2];
    tu_watchdog_arm("cond signal racing a timeout", 60);
    sg_woken = sg_timedout = 0;
    ringo_wg_add(&sg_wg, 2);
    args[0] = (struct sg_arg){ 20, 5 };  /* a plain thread, held by the hook after its timeout */
    args[1] = (struct sg_arg){ 21, -1 }; /* a goroutine, no deadline */
    spawn(sg_thread_waiter, &args[0], 1);
    while (sg_get(&sg_waiting) != 1)
        ringo_sleep(MS / 10);
    spawn(sg_waiter, &args[1], 0);
    while (sg_get(&sg_waiting) != 2)
        ringo_sleep(MS / 10);
    hk_wait_reached(); /* the first waiter's deadline won; it is still queued */
    ringo_cond_signal(&sg_c);
    sem_post(&hk_resume);
    ringo_wg_wait(&sg_wg); /* the signal must reach the second waiter */
    tu_watchdog_disarm();
    assert_int_equal(sg_timedout, 1);
    assert_int_equal(sg_woken, 1);
    assert_int_equal(sg_order[0], 21);
    assert_int_equal(atomic_load(&sg_bad), 0);
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

/* ================================================================== semaphore */

static void test_sync2_sem_try_deadline_and_errors(void **state)
{
    (void)state;
    struct ringo_sem s = RINGO_SEM_INIT(5);
    tu_watchdog_arm("sem deadlines", 60);
    assert_int_equal(ringo_sem_acquire(NULL, 1, -1), -EINVAL);
    assert_int_equal(ringo_sem_try_acquire(NULL, 1), -EINVAL);
    assert_int_equal(ringo_sem_release(NULL, 1), -EINVAL);
    assert_int_equal(ringo_sem_init(NULL, 1), -EINVAL);
    assert_int_equal(ringo_sem_acquire(&s, -1, -1), -EINVAL);
    assert_int_equal(ringo_sem_acquire(&s, 6, -1), -EINVAL); /* more than the size: never */
    assert_int_equal(ringo_sem_try_acquire(&s, 6), -EINVAL);
    assert_int_equal(ringo_sem_release(&s, -1), -EINVAL);
    assert_int_equal(ringo_sem_try_acquire(&s, 3), 0);
    assert_int_equal(ringo_sem_try_acquire(&s, 3), -EBUSY);
    assert_int_equal(ringo_sem_acquire(&s, 3, 0), -ETIMEDOUT);                /* past: one try */
    int64_t d = ringo_now() + 30 * MS;
    assert_int_equal(ringo_sem_acquire(&s, 3, d), -ETIMEDOUT);
    assert_true(ringo_now() >= d);
    assert_int_equal(ringo_sem_try_acquire(&s, 2), 0);       /* the timeouts took nothing */
    assert_int_equal(ringo_sem_try_acquire(&s, 1), -EBUSY);
    assert_int_equal(ringo_sem_acquire(&s, 0, -1), 0);       /* nothing, at once: nobody queued */
    assert_int_equal(ringo_sem_release(&s, 5), 0);
    assert_int_equal(ringo_sem_acquire(&s, 5, ringo_now() + MS), 0);
    assert_int_equal(ringo_sem_release(&s, 2), 0);
    assert_int_equal(ringo_sem_release(&s, 3), 0);
    assert_int_equal(ringo_sem_init(&s, -1), -EINVAL);
    assert_int_equal(ringo_sem_init(&s, 2), 0);
    assert_int_equal(ringo_sem_try_acquire(&s, 3), -EINVAL);
    assert_int_equal(ringo_sem_try_acquire(&s, 2), 0);
    assert_int_equal(ringo_sem_release(&s, 2), 0);
    struct ringo_sem z;
    memset(&z, 0, sizeof z); /* zeroed memory: a semaphore of size 0 */
    assert_int_equal(ringo_sem_acquire(&z, 0, -1), 0);
    assert_int_equal(ringo_sem_acquire(&z, 1, -1), -EINVAL);
    tu_watchdog_disarm();
}

/* FIFO head of line: with 2 tokens free, a waiter for 5 at the head blocks a later waiter for
 * 1 (and a try for 1) until the release that lets the head in (one release lets both in: the
 * order in which they then return is not the order of the grant). Then the timed-out head: a
 * waiter for 5 with a deadline at the head, a waiter for 2 behind it; nobody releases; when
 * the head's deadline passes it must let the one behind in (x/sync's subtlety). */
static struct ringo_sem hl_s = RINGO_SEM_INIT(10);
static atomic_int hl_big_done, hl_small_done, hl_bad, hl_started;
static struct ringo_waitgroup hl_wg;
static void hl_big(void *p)
{
    int64_t dl = (int64_t)(intptr_t)p;
    atomic_fetch_add(&hl_started, 1);
    int r = ringo_sem_acquire(&hl_s, 5, dl < 0 ? -1 : ringo_now() + dl * MS);
    if (dl < 0 && r != 0)
        atomic_fetch_add(&hl_bad, 1);
    if (dl >= 0 && r != -ETIMEDOUT)
        atomic_fetch_add(&hl_bad, 1);
    atomic_store(&hl_big_done, 1);
    ringo_wg_done(&hl_wg);
}
static void hl_small(void *p)
{
    int64_t n = (int64_t)(intptr_t)p;
    atomic_fetch_add(&hl_started, 1);
    if (ringo_sem_acquire(&hl_s, n, -1) != 0)
        atomic_fetch_add(&hl_bad, 1);
    atomic_store(&hl_small_done, 1);
    ringo_wg_done(&hl_wg);
}

static void test_sync2_sem_head_of_line(void **state)
{
    (void)state;
    tu_watchdog_arm("sem head of line", 60);
    for (int mode = 0; mode < 2; mode++) {
        atomic_store(&hl_big_done, 0);
        atomic_store(&hl_small_done, 0);
        atomic_store(&hl_started, 0);
        assert_int_equal(ringo_sem_acquire(&hl_s, 8, -1), 0); /* 2 free */
        ringo_wg_add(&hl_wg, 2);
        spawn(hl_big, (void *)(intptr_t)-1, mode);
        while (ringo_sem_try_acquire(&hl_s, 1) == 0) /* -EBUSY once big is queued */
            ringo_sem_release(&hl_s, 1), ringo_sleep(MS / 10);
        spawn(hl_small, (void *)(intptr_t)1, !mode);
        while (atomic_load(&hl_started) != 2)
            ringo_sleep(MS / 10);
        ringo_sleep(20 * MS);
        assert_int_equal(atomic_load(&hl_small_done), 0); /* 1 would fit, but big is first */
        assert_int_equal(ringo_sem_try_acquire(&hl_s, 1), -EBUSY);
        assert_int_equal(ringo_sem_release(&hl_s, 8), 0);
        ringo_wg_wait(&hl_wg);
        assert_int_equal(atomic_load(&hl_bad), 0);
        assert_int_equal(ringo_sem_release(&hl_s, 6), 0);
        assert_int_equal(ringo_sem_try_acquire(&hl_s, 10), 0); /* all back */
        assert_int_equal(ringo_sem_release(&hl_s, 10), 0);
    }
    tu_watchdog_disarm();
}

static void test_sync2_sem_timed_out_head_lets_the_next_in(void **state)
{
    (void)state;
    tu_watchdog_arm("sem timed-out head", 60);
    for (int mode = 0; mode < 2; mode++) {
        atomic_store(&hl_big_done, 0);
        atomic_store(&hl_small_done, 0);
        atomic_store(&hl_started, 0);
        assert_int_equal(ringo_sem_acquire(&hl_s, 8, -1), 0); /* 2 free */
        ringo_wg_add(&hl_wg, 2);
        spawn(hl_big, (void *)(intptr_t)40, mode); /* wants 5, gives up after 40 ms */
        while (ringo_sem_try_acquire(&hl_s, 1) == 0)
            ringo_sem_release(&hl_s, 1), ringo_sleep(MS / 10);
        spawn(hl_small, (void *)(intptr_t)2, !mode); /* wants 2: fits, but queued behind */
        ringo_wg_wait(&hl_wg); /* nobody releases: the head's timeout must let small in */
        assert_int_equal(atomic_load(&hl_small_done), 1);
        assert_int_equal(atomic_load(&hl_bad), 0);
        assert_int_equal(ringo_sem_try_acquire(&hl_s, 1), -EBUSY); /* 8 + 2 held */
        assert_int_equal(ringo_sem_release(&hl_s, 10), 0);
        assert_int_equal(ringo_sem_try_acquire(&hl_s, 10), 0);
        assert_int_equal(ringo_sem_release(&hl_s, 10), 0);
    }
    tu_watchdog_disarm();
}

/* A release that comes while the head's deadline has passed, but before it has left the
 * queue, skips it: the waiter behind gets its tokens, and the departed head holds none. */
static void hl_big_held(void *p)
{
    hk_pause_me = 1;
    hl_big(p);
}

static void test_sync2_sem_release_racing_a_timed_out_head(void **state)
{
    (void)state;
    tu_watchdog_arm("sem release racing a timeout", 60);
    atomic_store(&hl_big_done, 0);
    atomic_store(&hl_small_done, 0);
    atomic_store(&hl_started, 0);
    assert_int_equal(ringo_sem_acquire(&hl_s, 8, -1), 0); /* 2 free */
    ringo_wg_add(&hl_wg, 2);
    spawn(hl_big_held, (void *)(intptr_t)5, 1); /* wants 5 for 5 ms; held by the hook after */
    while (ringo_sem_try_acquire(&hl_s, 1) == 0)
        ringo_sem_release(&hl_s, 1), ringo_sleep(MS / 10);
    spawn(hl_small, (void *)(intptr_t)2, 0); /* wants 2, queued behind */
    hk_wait_reached();                     /* the head's deadline won; it is still queued */
    assert_int_equal(ringo_sem_release(&hl_s, 5), 0); /* 7 free: the head would fit now */
    sem_post(&hk_resume);
    ringo_wg_wait(&hl_wg);
    tu_watchdog_disarm();
    assert_int_equal(atomic_load(&hl_small_done), 1);
    assert_int_equal(atomic_load(&hl_bad), 0); /* the head got -ETIMEDOUT */
    /* held: 3 by us, 2 by small; the head took nothing */
    assert_int_equal(ringo_sem_try_acquire(&hl_s, 6), -EBUSY);
    assert_int_equal(ringo_sem_try_acquire(&hl_s, 5), 0);
    assert_int_equal(ringo_sem_release(&hl_s, 10), 0);
}

/* Stress: goroutines and threads acquire random weights with random deadlines (none, short,
 * past); an atomic counter of tokens in use never exceeds the size; every success is released;
 * at the end every token is back. */
#define SS_SIZE 7
static struct ringo_sem ss_s = RINGO_SEM_INIT(SS_SIZE);
static atomic_long ss_inuse, ss_max, ss_ok, ss_timeouts, ss_bad;
static struct ringo_waitgroup ss_wg;
static long ss_iters;
static void ss_worker(void *p)
{
    int th = (int)(intptr_t)p;
    for (long i = 0; i < ss_iters; i++) {
        uint64_t x = rnd();
        int64_t n = 1 + (int64_t)(x % SS_SIZE);
        int kind = (int)((x >> 8) % 4);
        int64_t dl = kind == 0 ? -1 : kind == 1 ? 0 : ringo_now() + (int64_t)((x >> 16) % 300) * 1000;
        int r = kind == 3 && (x >> 30) % 2 ? ringo_sem_try_acquire(&ss_s, n) : ringo_sem_acquire(&ss_s, n, dl);
        if (r == -ETIMEDOUT || r == -EBUSY) {
            if (kind == 0 && r == -ETIMEDOUT)
                atomic_fetch_add(&ss_bad, 1);
            atomic_fetch_add(&ss_timeouts, 1);
            continue;
        }
        if (r != 0) {
            atomic_fetch_add(&ss_bad, 1);
            continue;
        }
        long u = atomic_fetch_add(&ss_inuse, n) + n;
        if (u > SS_SIZE)
            atomic_fetch_add(&ss_bad, 1);
        long m = atomic_load(&ss_max);
        while (u > m && !atomic_compare_exchange_weak(&ss_max, &m, u))
            ;
        pause_a_bit(th);
        atomic_fetch_sub(&ss_inuse, n);
        atomic_fetch_add(&ss_ok, 1);
        if (ringo_sem_release(&ss_s, n) != 0)
            atomic_fetch_add(&ss_bad, 1);
    }
    ringo_wg_done(&ss_wg);
}

static void test_sync2_sem_stress(void **state)
{
    (void)state;
    ss_iters = (long)((TU_TSAN ? 3000 : 20000) * tu_scale());
    atomic_store(&rng_seq, (unsigned long)time(NULL) * 69069u);
    tu_watchdog_arm("sem stress", 300);
    enum { W = 10 };
    ringo_wg_add(&ss_wg, W);
    for (int i = 0; i < W; i++)
        spawn(ss_worker, (void *)(intptr_t)(i % 3 == 0), i % 3 == 0);
    ringo_wg_wait(&ss_wg);
    tu_watchdog_disarm();
    print_message("# sem stress: %ld acquired, %ld timed out or busy, most in use %ld\n", atomic_load(&ss_ok),
                  atomic_load(&ss_timeouts), atomic_load(&ss_max));
    assert_int_equal(atomic_load(&ss_bad), 0);
    assert_int_equal(atomic_load(&ss_inuse), 0);
    assert_true(atomic_load(&ss_max) <= SS_SIZE);
    assert_int_equal(ringo_sem_try_acquire(&ss_s, SS_SIZE), 0); /* every token is back */
    assert_int_equal(ringo_sem_release(&ss_s, SS_SIZE), 0);
}

/* ================================================================== misuse, deadlock */

static int child_runlock_unlocked(void)
{
    struct ringo_rwmutex rw = RINGO_RWMUTEX_INIT;
    ringo_rwmutex_runlock(&rw);
    return 0;
}
static int child_runlock_write_locked(void)
{
    struct ringo_rwmutex rw = RINGO_RWMUTEX_INIT;
    ringo_rwmutex_lock(&rw);
    ringo_rwmutex_runlock(&rw);
    return 0;
}
static int child_unlock_unlocked_rw(void)
{
    struct ringo_rwmutex rw = RINGO_RWMUTEX_INIT;
    ringo_rwmutex_unlock(&rw);
    return 0;
}
static int child_unlock_read_locked_rw(void)
{
    struct ringo_rwmutex rw = RINGO_RWMUTEX_INIT;
    ringo_rwmutex_rlock(&rw);
    ringo_rwmutex_unlock(&rw);
    return 0;
}
static int child_sem_release_too_much(void)
{
    struct ringo_sem s = RINGO_SEM_INIT(4);
    ringo_sem_acquire(&s, 2, -1);
    ringo_sem_release(&s, 3);
    return 0;
}

static void test_sync2_misuse_is_fatal_with_go_messages(void **state)
{
    (void)state;
    static const struct { const char *child, *msg; } cases[] = {
        { "runlock_unlocked", "fatal error: sync: RUnlock of unlocked RWMutex\n" },
        { "runlock_write_locked", "fatal error: sync: RUnlock of unlocked RWMutex\n" },
        { "unlock_unlocked_rw", "fatal error: sync: Unlock of unlocked RWMutex\n" },
        { "unlock_read_locked_rw", "fatal error: sync: Unlock of unlocked RWMutex\n" },
        { "sem_release_too_much", "fatal error: semaphore: released more than held\n" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct child_result r;
        tu_run_child(cases[i].child, NULL, 30, &r);
        print_message("# %s: exited %d code %d signal %d: %s", cases[i].child, r.exited, r.code, r.signo, r.out);
        assert_false(r.exited && r.code == 0);
        assert_non_null(strstr(r.out, cases[i].msg));
    }
}

static struct ringo_rwmutex dl_rw = RINGO_RWMUTEX_INIT;
static struct ringo_cond dl_c = RINGO_COND_INIT;
static struct ringo_mutex dl_m = RINGO_MUTEX_INIT;
static struct ringo_sem dl_s = RINGO_SEM_INIT(1);
static void dl_rlocker(void *p) { (void)p; ringo_rwmutex_rlock(&dl_rw); }
static void dl_waiter(void *p)
{
    (void)p;
    ringo_mutex_lock(&dl_m);
    ringo_cond_wait(&dl_c, &dl_m);
}
static void dl_acquirer(void *p) { (void)p; ringo_sem_acquire(&dl_s, 1, -1); }
static int child_deadlock_new_waits(void)
{
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    ringo_rwmutex_lock(&dl_rw);
    ringo_sem_acquire(&dl_s, 1, -1);
    ringo_go(dl_rlocker, NULL);
    ringo_go(dl_waiter, NULL);
    ringo_go(dl_acquirer, NULL);
    ringo_wg_add(&wg, 1);
    ringo_wg_wait(&wg); /* nothing can move */
    return 0;
}

static void test_sync2_deadlock_names_the_waits(void **state)
{
    (void)state;
    tu_skip_if_emulated("qemu-user runs a thread of its own, which ringo's deadlock check "
                        "(sched/debug/deadlock.c) rightly counts as one that could still act");
    struct child_result r;
    tu_run_child("deadlock_new_waits", NULL, 30, &r);
    tu_note(r.out);
    assert_true(r.exited);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.out, "fatal error: all goroutines are asleep - deadlock!"));
    assert_non_null(strstr(r.out, "[sync.RWMutex.RLock]:\n"));
    assert_non_null(strstr(r.out, "[sync.Cond.Wait]:\n"));
    assert_non_null(strstr(r.out, "[semaphore.Acquire]:\n"));
}

static const struct child_scenario scenarios[] = {
    { "runlock_unlocked", child_runlock_unlocked },
    { "runlock_write_locked", child_runlock_write_locked },
    { "unlock_unlocked_rw", child_unlock_unlocked_rw },
    { "unlock_read_locked_rw", child_unlock_read_locked_rw },
    { "sem_release_too_much", child_sem_release_too_much },
    { "deadlock_new_waits", child_deadlock_new_waits },
    { NULL, NULL },
};

int main(int argc, char **argv)
{
    tu_maybe_child(argc, argv, scenarios);
    hk_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync2_rwmutex_try_and_errors),
        cmocka_unit_test(test_sync2_rwmutex_writer_preference),
        cmocka_unit_test(test_sync2_rwmutex_no_starvation),
        cmocka_unit_test(test_sync2_rwmutex_stress),
        cmocka_unit_test(test_sync2_cond_deadline_and_errors),
        cmocka_unit_test(test_sync2_cond_deadline_goroutine_and_thread),
        cmocka_unit_test(test_sync2_cond_signal_one_fifo_broadcast),
        cmocka_unit_test(test_sync2_cond_signal_racing_a_timeout_is_not_lost),
        cmocka_unit_test(test_sync2_cond_producer_consumer_stress),
        cmocka_unit_test(test_sync2_sem_try_deadline_and_errors),
        cmocka_unit_test(test_sync2_sem_head_of_line),
        cmocka_unit_test(test_sync2_sem_timed_out_head_lets_the_next_in),
        cmocka_unit_test(test_sync2_sem_release_racing_a_timed_out_head),
        cmocka_unit_test(test_sync2_sem_stress),
        cmocka_unit_test(test_sync2_misuse_is_fatal_with_go_messages),
        cmocka_unit_test(test_sync2_deadlock_names_the_waits),
    };
    return TU_RUN_GROUP("sync2", tests, NULL, NULL);
}
