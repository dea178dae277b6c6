/* tests/test_gls.c — goroutine-local storage (issue 14): keys, values per goroutine and per
 * thread, destructors at exit, stale keys, and a stress for TSan. */
#include <ringo.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tests/testutil.h"
#include "sched/sched.h"

static void wait_all_gone(void)
{
    for (int i = 0; i < 10000 && ringo_num_goroutines() != 0; i++)
        ringo_sleep(1000000);
}

/* ------------------------------------------------------------------ errors */

static void test_gls_bad_arguments(void **state)
{
    (void)state;
    ringo_gls_key k = 0;
    assert_int_equal(ringo_gls_key_create(NULL, NULL), -EINVAL);
    /* a never-created (zeroed) key and made-up ones are not live */
    assert_int_equal(ringo_gls_key_delete(0), -EINVAL);
    assert_null(ringo_gls_get(0));
    assert_int_equal(ringo_gls_set(0, &k), -EINVAL);
    assert_int_equal(ringo_gls_set(12345, &k), -EINVAL);
    assert_null(ringo_gls_get(~0u));
    /* a deleted key: every call refuses it, the second delete too */
    assert_int_equal(ringo_gls_key_create(&k, NULL), 0);
    assert_int_not_equal(k, 0);
    assert_int_equal(ringo_gls_set(k, &k), 0);
    assert_ptr_equal(ringo_gls_get(k), &k);
    assert_int_equal(ringo_gls_key_delete(k), 0);
    assert_null(ringo_gls_get(k));
    assert_int_equal(ringo_gls_set(k, &k), -EINVAL);
    assert_int_equal(ringo_gls_key_delete(k), -EINVAL);
}

static void test_gls_keys_run_out_then_come_back(void **state)
{
    (void)state;
    ringo_gls_key ks[200];
    int n = 0, r;
    while ((r = ringo_gls_key_create(&ks[n], NULL)) == 0 && n < 199)
        n++;
    assert_int_equal(r, -EAGAIN);
    assert_true(n >= 100); /* 128 at once, less the few other tests hold */
    for (int i = 0; i < n; i++)
        assert_int_equal(ringo_gls_key_delete(ks[i]), 0);
    assert_int_equal(ringo_gls_key_create(&ks[0], NULL), 0);
    assert_int_equal(ringo_gls_key_delete(ks[0]), 0);
}

/* ------------------------------------------------------------------ per goroutine */
enum { PER_N = 1000, PER_STEPS = 20 };
static ringo_gls_key per_key, per_key2;
static atomic_int per_bad, per_moves;
static struct ringo_waitgroup per_wg;
static long per_vals[PER_N];

static void per_goroutine(void *a)
{
    long *mine = a;
    /* a fresh goroutine sees nothing, whatever the previous user of its stack set */
    if (ringo_gls_get(per_key) || ringo_gls_get(per_key2))
        atomic_fetch_add(&per_bad, 1);
    if (ringo_gls_set(per_key, mine) != 0 || ringo_gls_set(per_key2, mine + 1) != 0)
        atomic_fetch_add(&per_bad, 1);
    unsigned last = sched_cur_worker()->id;
    for (int s = 0; s < PER_STEPS; s++) {
        if (s % 3 == 0)
            ringo_sleep((s * 7919 + (int)(mine - per_vals)) % 200000);
        else
            ringo_yield();
        if (ringo_gls_get(per_key) != mine || ringo_gls_get(per_key2) != mine + 1)
            atomic_fetch_add(&per_bad, 1);
        unsigned now = sched_cur_worker()->id; /* re-read after the switch (I4) */
        if (now != last)
            atomic_fetch_add(&per_moves, 1);
        last = now;
    }
    ringo_wg_done(&per_wg);
}

static void test_gls_values_are_per_goroutine_across_workers(void **state)
{
    (void)state;
    assert_int_equal(ringo_gls_key_create(&per_key, NULL), 0);
    assert_int_equal(ringo_gls_key_create(&per_key2, NULL), 0);
    tu_watchdog_arm("gls per goroutine", 120);
    ringo_wg_add(&per_wg, PER_N);
    for (int i = 0; i < PER_N; i++)
        assert_true(ringo_go(per_goroutine, &per_vals[i]) > 0);
    ringo_wg_wait(&per_wg);
    wait_all_gone();
    tu_watchdog_disarm();
    print_message("# %d goroutines x %d checks, %d moves between workers\n", PER_N, PER_STEPS,
                  atomic_load(&per_moves));
    assert_int_equal(atomic_load(&per_bad), 0);
    if (ringo_procs() >= 2)
        assert_true(atomic_load(&per_moves) > 0); /* the values did travel */
    /* the plain thread has values of its own: none of theirs */
    assert_null(ringo_gls_get(per_key));
    assert_int_equal(ringo_gls_key_delete(per_key), 0);
    assert_int_equal(ringo_gls_key_delete(per_key2), 0);
}

/* A spawn loop of short goroutines reuses one stack and descriptor (child first): each must
 * start with no storage, though the one before set values on that same descriptor. */
static ringo_gls_key reuse_key;
static atomic_int reuse_bad, reuse_freed;
static void reuse_dtor(void *v)
{
    (void)v;
    atomic_fetch_add(&reuse_freed, 1);
}
static void reuse_child(void *a)
{
    if (ringo_gls_get(reuse_key))
        atomic_fetch_add(&reuse_bad, 1);
    ringo_gls_set(reuse_key, a);
}
static void reuse_parent(void *wg)
{
    for (long i = 1; i <= 10000; i++)
        ringo_go(reuse_child, (void *)i);
    ringo_wg_done(wg);
}

static void test_gls_recycled_descriptor_starts_empty(void **state)
{
    (void)state;
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    assert_int_equal(ringo_gls_key_create(&reuse_key, reuse_dtor), 0);
    ringo_wg_add(&wg, 1);
    ringo_go(reuse_parent, &wg);
    ringo_wg_wait(&wg);
    wait_all_gone();
    assert_int_equal(atomic_load(&reuse_bad), 0);
    assert_int_equal(atomic_load(&reuse_freed), 10000);
    assert_int_equal(ringo_gls_key_delete(reuse_key), 0);
}

/* ------------------------------------------------------------------ destructors */
enum { DT_N = 500 };
static ringo_gls_key dt_a, dt_b, dt_none;
static atomic_long dt_calls_a, dt_calls_b, dt_sum, dt_not_null;
static struct ringo_waitgroup dt_wg;

static void dtor_a(void *v)
{
    /* pthread-style: the value is NULL by the time the destructor runs */
    if (ringo_gls_get(dt_a) != NULL)
        atomic_fetch_add(&dt_not_null, 1);
    atomic_fetch_add(&dt_calls_a, 1);
    atomic_fetch_add(&dt_sum, (long)(intptr_t)v);
}
static void dtor_b(void *v)
{
    atomic_fetch_add(&dt_calls_b, 1);
    atomic_fetch_add(&dt_sum, (long)(intptr_t)v);
    /* a destructor may use ringo: it runs as the goroutine, which may block and move */
    ringo_sleep(1000);
}

static void dt_goroutine(void *a)
{
    intptr_t i = (intptr_t)a;
    ringo_gls_set(dt_a, (void *)(i + 1));
    ringo_gls_set(dt_b, (void *)(i + 1));
    ringo_gls_set(dt_none, (void *)(i + 1)); /* no destructor: dropped */
    if (i % 4 == 1)
        ringo_gls_set(dt_b, NULL); /* unset again: no call for b */
    ringo_yield();
    ringo_wg_done(&dt_wg);
    if (i % 2)
        ringo_exit(); /* destructors at ringo_exit too */
}

static void test_gls_destructors_run_once_per_value_at_exit(void **state)
{
    (void)state;
    assert_int_equal(ringo_gls_key_create(&dt_a, dtor_a), 0);
    assert_int_equal(ringo_gls_key_create(&dt_b, dtor_b), 0);
    assert_int_equal(ringo_gls_key_create(&dt_none, NULL), 0);
    ringo_wg_add(&dt_wg, DT_N);
    for (intptr_t i = 0; i < DT_N; i++)
        assert_true(ringo_go(dt_goroutine, (void *)i) > 0);
    ringo_wg_wait(&dt_wg);
    wait_all_gone();
    long unset_b = 0, sum = 0;
    for (intptr_t i = 0; i < DT_N; i++) {
        unset_b += i % 4 == 1;
        sum += (i + 1) * (i % 4 == 1 ? 1 : 2);
    }
    assert_int_equal(atomic_load(&dt_calls_a), DT_N);
    assert_int_equal(atomic_load(&dt_calls_b), DT_N - unset_b);
    assert_int_equal(atomic_load(&dt_sum), sum);
    assert_int_equal(atomic_load(&dt_not_null), 0);
    ringo_gls_key_delete(dt_a);
    ringo_gls_key_delete(dt_b);
    ringo_gls_key_delete(dt_none);
}

/* A destructor that sets its value again gets 4 rounds in all, then the value is dropped. */
static ringo_gls_key again_key, again_other;
static atomic_int again_calls, other_calls;
static void again_dtor(void *v)
{
    atomic_fetch_add(&again_calls, 1);
    ringo_gls_set(again_key, v);
}
static void other_dtor(void *v)
{
    (void)v;
    atomic_fetch_add(&other_calls, 1);
    ringo_gls_set(again_other, NULL); /* stays unset */
}
static void again_g(void *wg)
{
    ringo_gls_set(again_key, wg);
    ringo_gls_set(again_other, wg);
    ringo_wg_done(wg);
}

static void test_gls_destructor_rounds_are_bounded(void **state)
{
    (void)state;
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    assert_int_equal(ringo_gls_key_create(&again_key, again_dtor), 0);
    assert_int_equal(ringo_gls_key_create(&again_other, other_dtor), 0);
    ringo_wg_add(&wg, 1);
    ringo_go(again_g, &wg);
    ringo_wg_wait(&wg);
    wait_all_gone();
    assert_int_equal(atomic_load(&again_calls), 4);
    assert_int_equal(atomic_load(&other_calls), 1);
    ringo_gls_key_delete(again_key);
    ringo_gls_key_delete(again_other);
}

/* Deleting a key: no destructor call for it afterwards, and a key made later on the same entry
 * (the table is small: the first free entry is reused) never sees the old values. */
static ringo_gls_key del_key, new_key;
static atomic_int del_calls, del_bad;
static struct ringo_waitgroup del_set, del_go, del_done;
static void del_dtor(void *v)
{
    (void)v;
    atomic_fetch_add(&del_calls, 1);
}
static void del_g(void *a)
{
    ringo_gls_set(del_key, a);
    ringo_wg_done(&del_set);
    ringo_wg_wait(&del_go); /* main deletes the key and makes a new one meanwhile */
    if (ringo_gls_get(del_key) != NULL || ringo_gls_get(new_key) != NULL)
        atomic_fetch_add(&del_bad, 1);
    if (ringo_gls_set(del_key, a) != -EINVAL)
        atomic_fetch_add(&del_bad, 1);
    ringo_wg_done(&del_done);
}

static void test_gls_deleted_key_no_destructor_no_stale_values(void **state)
{
    (void)state;
    enum { N = 50 };
    assert_int_equal(ringo_gls_key_create(&del_key, del_dtor), 0);
    ringo_wg_add(&del_set, N);
    ringo_wg_add(&del_go, 1);
    ringo_wg_add(&del_done, N);
    for (intptr_t i = 0; i < N; i++)
        ringo_go(del_g, (void *)(i + 1));
    ringo_wg_wait(&del_set);
    assert_int_equal(ringo_gls_key_delete(del_key), 0);
    assert_int_equal(ringo_gls_key_create(&new_key, del_dtor), 0);
    /* the same entry, another generation */
    assert_int_equal(new_key & 127u, del_key & 127u);
    assert_int_not_equal(new_key, del_key);
    ringo_wg_done(&del_go);
    ringo_wg_wait(&del_done);
    wait_all_gone();
    assert_int_equal(atomic_load(&del_bad), 0);
    assert_int_equal(atomic_load(&del_calls), 0);
    ringo_gls_key_delete(new_key);
}

/* ------------------------------------------------------------------ plain threads */
static ringo_gls_key th_key;
static atomic_int th_calls, th_bad;
static void th_dtor(void *v)
{
    (void)v;
    atomic_fetch_add(&th_calls, 1);
}
struct th_arg {
    ringo_chan *c;
    long v;
};
static void th_sender(void *a)
{
    struct th_arg *t = a;
    if (ringo_gls_get(th_key)) /* the thread's value is not its goroutines' */
        atomic_fetch_add(&th_bad, 1);
    ringo_gls_set(th_key, &t->v);
    int x = 1;
    ringo_chan_send(t->c, &x);
}
static void *th_main(void *a)
{
    struct th_arg t = { ringo_chan_make(sizeof(int), 0), (long)(intptr_t)a };
    if (ringo_gls_get(th_key)) /* before any use: NULL, nothing attached */
        atomic_fetch_add(&th_bad, 1);
    if (ringo_gls_set(th_key, &t) != 0)
        atomic_fetch_add(&th_bad, 1);
    /* a goroutine/thread mix: block on a goroutine, the value stays the thread's */
    ringo_go(th_sender, &t);
    int x;
    ringo_chan_recv(t.c, &x);
    if (ringo_gls_get(th_key) != &t)
        atomic_fetch_add(&th_bad, 1);
    while (ringo_num_goroutines() != 0)
        usleep(1000);
    ringo_chan_free(t.c);
    if ((intptr_t)a % 2)
        pthread_exit(NULL); /* destructors either way */
    return NULL;
}

static void test_gls_plain_threads_have_their_own_values(void **state)
{
    (void)state;
    enum { N = 8 };
    assert_int_equal(ringo_gls_key_create(&th_key, th_dtor), 0);
    pthread_t t[N];
    for (intptr_t i = 0; i < N; i++)
        assert_int_equal(pthread_create(&t[i], NULL, th_main, (void *)i), 0);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    wait_all_gone();
    assert_int_equal(atomic_load(&th_bad), 0);
    /* one value per thread and one per goroutine, each destroyed once */
    assert_int_equal(atomic_load(&th_calls), 2 * N);
    ringo_gls_key_delete(th_key);
}

/* ------------------------------------------------------------------ stress (TSan) */
enum { ST_KEYS = 4 };
static ringo_gls_key st_keys[ST_KEYS];
static atomic_long st_sets, st_dtors, st_bad;
static atomic_int st_stop;
static void st_dtor(void *v)
{
    (void)v;
    atomic_fetch_add_explicit(&st_dtors, 1, memory_order_relaxed);
}
static void st_g(void *a)
{
    uintptr_t me = (uintptr_t)a;
    for (int r = 0; r < 10; r++) {
        for (int k = 0; k < ST_KEYS; k++) {
            bool had = ringo_gls_get(st_keys[k]) != NULL;
            ringo_gls_set(st_keys[k], (void *)(me * 16 + (uintptr_t)k + 1));
            if (!had)
                atomic_fetch_add_explicit(&st_sets, 1, memory_order_relaxed);
        }
        ringo_yield();
        for (int k = 0; k < ST_KEYS; k++)
            if (ringo_gls_get(st_keys[k]) != (void *)(me * 16 + (uintptr_t)k + 1))
                atomic_fetch_add_explicit(&st_bad, 1, memory_order_relaxed);
        if (r == 5 && me % 3 == 0) {
            ringo_gls_set(st_keys[0], NULL); /* one fewer value to destroy, unless set again */
            atomic_fetch_sub_explicit(&st_sets, 1, memory_order_relaxed);
        }
    }
}
static void st_spawner(void *a)
{
    uintptr_t base = (uintptr_t)a;
    for (uintptr_t i = 0; i < 500; i++)
        ringo_go(st_g, (void *)(base + i));
}
/* Another thread creates and deletes keys all along: the table changes under the readers. */
static void *st_churn(void *a)
{
    (void)a;
    while (!atomic_load(&st_stop)) {
        ringo_gls_key k;
        if (ringo_gls_key_create(&k, st_dtor) == 0) {
            ringo_gls_set(k, &k);
            ringo_gls_key_delete(k); /* the thread's value for it: never destroyed */
        }
    }
    return NULL;
}

static void test_gls_stress(void **state)
{
    (void)state;
    int rounds = (int)(4 * tu_scale());
    if (rounds < 1)
        rounds = 1; /* a scaled-down run (valgrind) still runs one */
    for (int k = 0; k < ST_KEYS; k++)
        assert_int_equal(ringo_gls_key_create(&st_keys[k], st_dtor), 0);
    pthread_t churn;
    assert_int_equal(pthread_create(&churn, NULL, st_churn, NULL), 0);
    tu_watchdog_arm("gls stress", 120);
    for (int r = 0; r < rounds; r++) {
        for (uintptr_t s = 0; s < 4; s++)
            ringo_go(st_spawner, (void *)((uintptr_t)r * 10000 + s * 1000 + 1));
        wait_all_gone();
    }
    atomic_store(&st_stop, 1);
    pthread_join(churn, NULL);
    tu_watchdog_disarm();
    print_message("# %ld values set, %ld destroyed\n", atomic_load(&st_sets), atomic_load(&st_dtors));
    assert_int_equal(atomic_load(&st_bad), 0);
    assert_int_equal(atomic_load(&st_dtors), atomic_load(&st_sets));
    for (int k = 0; k < ST_KEYS; k++)
        ringo_gls_key_delete(st_keys[k]);
}

int main(void)
{
    struct ringo_config c = { .procs = 2, .pin = -1 };
    ringo_init(&c);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gls_bad_arguments),
        cmocka_unit_test(test_gls_keys_run_out_then_come_back),
        cmocka_unit_test(test_gls_values_are_per_goroutine_across_workers),
        cmocka_unit_test(test_gls_recycled_descriptor_starts_empty),
        cmocka_unit_test(test_gls_destructors_run_once_per_value_at_exit),
        cmocka_unit_test(test_gls_destructor_rounds_are_bounded),
        cmocka_unit_test(test_gls_deleted_key_no_destructor_no_stale_values),
        cmocka_unit_test(test_gls_plain_threads_have_their_own_values),
        cmocka_unit_test(test_gls_stress),
    };
    return TU_RUN_GROUP("gls", tests, NULL, NULL);
}
