/* tests/test_timechan.c — timers as channels (issue 14): ringo_after, ringo_timer_*, ringo_ticker_*.
 *
 * After fires once, never early, with the time it fired; in a select beside other channels;
 * ns <= 0 fires at once. Stop before the fire: 1, nothing ever received; after the value was
 * received: 0; fired but unreceived: 1 and the value is gone (Go 1.23). Reset leaves no stale
 * value (deterministic: the value sits in the channel, Reset, nothing there, the next one is
 * the new deadline's). Tickers tick on their grid and drop unread ticks. The deadlock counter
 * (sched.ntimers) follows pending timers. Errors. Free while someone is blocked: -EBUSY.
 * Many timers made and freed in every state (leak checkers see the rest). Goroutines and plain
 * threads mixed. A randomized stress on 2 workers plus threads: every arm is accounted for
 * exactly once, as a received value or as a stop/reset that returned 1; private timers are
 * freed right at their deadline, racing with the fire.
 */
#include <ringo.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include "tests/testutil.h"
#include "chan/chan.h"
#include "sched/sched.h"

#define MS 1000000LL

/* Wait (polling, any thread) until c holds a value: the timer fired into it. */
static void wait_len(ringo_chan *c, size_t n)
{
    int64_t end = ringo_now() + 10000 * MS;
    while (ringo_chan_len(c) < n) {
        assert_true(ringo_now() < end);
        ringo_sleep(MS / 2);
    }
}

/* Wait until someone is blocked on c (a goroutine or thread parked in a receive). */
static void wait_busy(ringo_chan *c)
{
    int64_t end = ringo_now() + 10000 * MS;
    while (!chan_busy(c)) {
        assert_true(ringo_now() < end);
        ringo_sleep(MS / 2);
    }
}

static int64_t ntimers(void)
{
    return atomic_load_explicit(&sched.ntimers, memory_order_seq_cst);
}

/* ------------------------------------------------------------------ after */

static void after_once(void)
{
    int64_t t0 = ringo_now();
    ringo_chan *c = ringo_after(20 * MS);
    assert_non_null(c);
    assert_int_equal(ringo_chan_cap(c), 1);
    int64_t v = 0;
    assert_int_equal(ringo_chan_recv(c, &v), 1);
    assert_true(v >= t0 + 20 * MS); /* never early */
    assert_true(v <= ringo_now());  /* the time it fired, not later */
    assert_int_equal(ringo_chan_recv_until(c, &v, ringo_now() + 30 * MS), -ETIMEDOUT); /* once */
    assert_int_equal(ringo_chan_free(c), 0);
}

static void g_after_once(void *p)
{
    after_once();
    ringo_wg_done(p);
}

static void test_timechan_after_fires_once_never_early(void **state)
{
    (void)state;
    after_once(); /* plain thread */
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    ringo_wg_add(&wg, 1);
    ringo_go(g_after_once, &wg);
    ringo_wg_wait(&wg);
}

static void test_timechan_after_zero_or_negative_fires_at_once(void **state)
{
    (void)state;
    int64_t ns[] = { 0, -1, INT64_MIN };
    for (int i = 0; i < 3; i++) {
        int64_t t0 = ringo_now(), v = 0;
        ringo_chan *c = ringo_after(ns[i]);
        assert_non_null(c);
        assert_int_equal(ringo_chan_try_recv(c, &v), 1); /* in the channel on return */
        assert_true(v >= t0 && v <= ringo_now());
        assert_int_equal(ringo_chan_try_recv(c, &v), -EAGAIN);
        assert_int_equal(ringo_chan_free(c), 0);
    }
}

struct sel_arg { ringo_chan *other; int64_t delay; int v; };
static void send_later(void *p)
{
    struct sel_arg *a = p;
    ringo_sleep(a->delay);
    ringo_chan_send(a->other, &a->v);
}

static void select_once(void *p)
{
    (void)p;
    ringo_chan *never = ringo_chan_make(sizeof(int), 0), *other = ringo_chan_make(sizeof(int), 1);
    /* the timer wins: the others stay silent */
    int64_t t0 = ringo_now(), tv = 0;
    int x;
    ringo_chan *a = ringo_after(15 * MS);
    struct ringo_case cs[] = { { never, RINGO_RECV, &x, 0 }, { a, RINGO_RECV, &tv, 0 }, { other, RINGO_RECV, &x, 0 } };
    assert_int_equal(ringo_select(cs, 3, -1), 1);
    assert_int_equal(cs[1].result, 1);
    assert_true(tv >= t0 + 15 * MS);
    assert_int_equal(ringo_chan_free(a), 0);
    /* another channel wins: the pending timer is freed with its channel, never fires */
    struct sel_arg sa = { other, 5 * MS, 7 };
    ringo_go(send_later, &sa);
    a = ringo_after(10000 * MS);
    cs[1].chan = a;
    assert_int_equal(ringo_select(cs, 3, -1), 2);
    assert_int_equal(x, 7);
    int64_t before = ntimers();
    assert_int_equal(ringo_chan_free(a), 0);
    assert_int_equal(ntimers(), before - 1); /* it was pending, and is no more */
    /* a select with a timer that already fired into its channel takes it at once */
    a = ringo_after(0);
    cs[1].chan = a;
    assert_int_equal(ringo_select(cs, 3, 0), 1);
    assert_int_equal(ringo_chan_free(a), 0);
    ringo_chan_free(never);
    ringo_chan_free(other);
}

static void g_select_once(void *p)
{
    select_once(NULL);
    ringo_wg_done(p);
}

static void test_timechan_after_in_a_select_with_other_channels(void **state)
{
    (void)state;
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    ringo_wg_add(&wg, 1);
    ringo_go(g_select_once, &wg);
    ringo_wg_wait(&wg);
    select_once(NULL); /* and from a plain thread */
}

/* ------------------------------------------------------------------ timer stop / reset */

static void test_timechan_timer_stop_before_fire_never_fires(void **state)
{
    (void)state;
    int64_t n0 = ntimers();
    struct ringo_timer *t = ringo_timer_make(30 * MS);
    assert_non_null(t);
    assert_int_equal(ntimers(), n0 + 1); /* pending: counted (deadlock check) */
    assert_int_equal(ringo_timer_stop(t), 1);
    assert_int_equal(ntimers(), n0);     /* stopped: no longer */
    int64_t v;
    assert_int_equal(ringo_chan_recv_until(ringo_timer_chan(t), &v, ringo_now() + 80 * MS), -ETIMEDOUT);
    assert_int_equal(ringo_timer_stop(t), 0); /* already stopped */
    assert_int_equal(ringo_timer_free(t), 0);
}

static void test_timechan_timer_stop_after_fire(void **state)
{
    (void)state;
    int64_t n0 = ntimers(), v;
    /* received, then stopped: 0 */
    struct ringo_timer *t = ringo_timer_make(2 * MS);
    assert_int_equal(ringo_chan_recv(ringo_timer_chan(t), &v), 1);
    assert_int_equal(ntimers(), n0); /* fired: no longer counted */
    assert_int_equal(ringo_timer_stop(t), 0);
    /* fired into the channel but not received: 1, and the value is gone (Go 1.23) */
    assert_int_equal(ringo_timer_reset(t, 2 * MS), 0); /* its value was received: 0 */
    wait_len(ringo_timer_chan(t), 1);
    assert_int_equal(ringo_timer_stop(t), 1);
    assert_int_equal(ringo_chan_len(ringo_timer_chan(t)), 0);
    assert_int_equal(ringo_chan_try_recv(ringo_timer_chan(t), &v), -EAGAIN);
    assert_int_equal(ringo_timer_stop(t), 0);
    assert_int_equal(ringo_timer_free(t), 0);
    assert_int_equal(ntimers(), n0);
}

static void test_timechan_timer_reset_leaves_no_stale_value(void **state)
{
    (void)state;
    int64_t v = 0;
    struct ringo_timer *t = ringo_timer_make(1 * MS);
    ringo_chan *c = ringo_timer_chan(t);
    wait_len(c, 1); /* fired: its value waits in the channel */
    int64_t tr = ringo_now();
    assert_int_equal(ringo_timer_reset(t, 50 * MS), 1); /* the value was never delivered */
    assert_int_equal(ringo_chan_try_recv(c, &v), -EAGAIN); /* nothing stale */
    assert_int_equal(ringo_chan_recv(c, &v), 1);
    assert_true(v >= tr + 50 * MS); /* the new deadline's value */
    /* reset of a pending timer: 1, the deadline moves (earlier and later) */
    assert_int_equal(ringo_timer_reset(t, 10000 * MS), 0);
    tr = ringo_now();
    assert_int_equal(ringo_timer_reset(t, 5 * MS), 1);
    assert_int_equal(ringo_chan_recv_until(c, &v, ringo_now() + 5000 * MS), 1);
    assert_true(v >= tr + 5 * MS && v < tr + 5000 * MS);
    tr = ringo_now();
    assert_int_equal(ringo_timer_reset(t, 3 * MS), 0);
    assert_int_equal(ringo_timer_reset(t, 60 * MS), 1); /* later */
    assert_int_equal(ringo_chan_recv(c, &v), 1);
    assert_true(v >= tr + 60 * MS);
    /* reset to 0: the value is there on return, and only one */
    assert_int_equal(ringo_timer_reset(t, 0), 0);
    assert_int_equal(ringo_chan_try_recv(c, &v), 1);
    assert_int_equal(ringo_chan_try_recv(c, &v), -EAGAIN);
    assert_int_equal(ringo_timer_free(t), 0);
}

static void recv_one(void *p)
{
    int64_t v;
    ringo_chan_recv(p, &v);
}

static void select_one(void *p)
{
    ringo_select(p, 2, -1);
}

static void test_timechan_errors_and_free_while_blocked(void **state)
{
    (void)state;
    assert_null(ringo_timer_chan(NULL));
    assert_int_equal(ringo_timer_stop(NULL), -EINVAL);
    assert_int_equal(ringo_timer_reset(NULL, 1), -EINVAL);
    assert_int_equal(ringo_timer_free(NULL), -EINVAL);
    assert_null(ringo_ticker_chan(NULL));
    assert_int_equal(ringo_ticker_stop(NULL), -EINVAL);
    assert_int_equal(ringo_ticker_reset(NULL, 1), -EINVAL);
    assert_int_equal(ringo_ticker_free(NULL), -EINVAL);
    errno = 0;
    assert_null(ringo_ticker_make(0));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(ringo_ticker_make(-5));
    assert_int_equal(errno, EINVAL);
    /* long enough that the receivers below block before anything fires, even under valgrind */
    struct ringo_ticker *tk = ringo_ticker_make(100000 * MS);
    assert_int_equal(ringo_ticker_reset(tk, 0), -EINVAL);
    assert_int_equal(ringo_ticker_reset(tk, -1), -EINVAL);
    assert_int_equal(ringo_chan_free(ringo_ticker_chan(tk)), -EINVAL); /* the ticker's */
    struct ringo_timer *t = ringo_timer_make(100000 * MS);
    assert_int_equal(ringo_chan_free(ringo_timer_chan(t)), -EINVAL);   /* the timer's */
    /* someone blocked on the channel: free refuses, nothing is stopped */
    ringo_go(recv_one, ringo_timer_chan(t));
    wait_busy(ringo_timer_chan(t));
    assert_int_equal(ringo_timer_free(t), -EBUSY);
    assert_int_equal(ringo_timer_reset(t, 0), 1); /* fires at once: the goroutine gets it */
    while (ringo_timer_free(t) == -EBUSY)
        ringo_sleep(MS / 2);
    ringo_chan *a = ringo_after(100000 * MS), *quit = ringo_chan_make(0, 0);
    struct ringo_case qa[2] = { { a, RINGO_RECV, NULL, 0 }, { quit, RINGO_RECV, NULL, 0 } };
    ringo_go(select_one, qa);
    wait_busy(a);
    assert_int_equal(ringo_chan_free(a), -EBUSY);
    ringo_chan_close(quit); /* the select leaves; the pending timer is freed with a below */
    ringo_go(recv_one, ringo_ticker_chan(tk));
    wait_busy(ringo_ticker_chan(tk));
    assert_int_equal(ringo_ticker_free(tk), -EBUSY);
    assert_int_equal(ringo_ticker_reset(tk, 2 * MS), 0);
    while (ringo_ticker_free(tk) == -EBUSY)
        ringo_sleep(MS / 2);
    int64_t n0 = ntimers();
    while (ringo_chan_free(a) == -EBUSY)
        ringo_sleep(MS / 2);
    assert_int_equal(ntimers(), n0 - 1);
    ringo_chan_free(quit);
}

/* ------------------------------------------------------------------ tickers */

static void ticker_grid(void)
{
    const int64_t P = 10 * MS;
    int64_t t0 = ringo_now();
    struct ringo_ticker *tk = ringo_ticker_make(P);
    assert_non_null(tk);
    int64_t prev = 0;
    for (int k = 1; k <= 10; k++) {
        int64_t v = 0;
        assert_int_equal(ringo_chan_recv(ringo_ticker_chan(tk), &v), 1);
        /* the k-th value received is at least the k-th tick of the grid (drops only skip) */
        assert_true(v >= t0 + k * P);
        assert_true(v > prev);
        prev = v;
    }
    int64_t el = ringo_now() - t0;
    print_message("# 10 ticks of 10 ms took %.1f ms\n", el / 1e6);
    assert_true(el >= 10 * P);
    if (!TU_SANITIZED && !tu_on_valgrind())
        assert_true(el < 10 * P + 500 * MS); /* loose: a loaded shared machine */
    assert_int_equal(ringo_ticker_stop(tk), 1);
    assert_int_equal(ringo_ticker_free(tk), 0);
}

static void g_ticker_grid(void *p)
{
    ticker_grid();
    ringo_wg_done(p);
}

static void test_timechan_ticker_ticks_on_its_grid(void **state)
{
    (void)state;
    ticker_grid(); /* plain thread */
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    ringo_wg_add(&wg, 1);
    ringo_go(g_ticker_grid, &wg);
    ringo_wg_wait(&wg);
}

static void test_timechan_ticker_drops_unread_ticks(void **state)
{
    (void)state;
    const int64_t P = 5 * MS;
    int64_t n0 = ntimers(), t0 = ringo_now(), v;
    struct ringo_ticker *tk = ringo_ticker_make(P);
    ringo_chan *c = ringo_ticker_chan(tk);
    assert_int_equal(ntimers(), n0 + 1);
    ringo_sleep(12 * P); /* at least 10 periods unread */
    assert_int_equal(ringo_chan_len(c), 1);
    assert_int_equal(ringo_chan_try_recv(c, &v), 1); /* one value, not ten */
    assert_true(v >= t0 + P);
    assert_int_equal(ringo_chan_try_recv(c, &v), -EAGAIN);
    assert_int_equal(ntimers(), n0 + 1); /* a ticker stays pending */
    /* the grid survives the drops: the next tick comes within one period */
    assert_int_equal(ringo_chan_recv(c, &v), 1);
    int64_t v2;
    assert_int_equal(ringo_chan_recv(c, &v2), 1);
    assert_true(v2 > v);
    /* stop removes an unread tick, and nothing comes after */
    wait_len(c, 1);
    assert_int_equal(ringo_ticker_stop(tk), 1);
    assert_int_equal(ntimers(), n0);
    assert_int_equal(ringo_chan_try_recv(c, &v), -EAGAIN);
    assert_int_equal(ringo_chan_recv_until(c, &v, ringo_now() + 6 * P), -ETIMEDOUT);
    assert_int_equal(ringo_ticker_stop(tk), 0);
    /* reset restarts it with the new period, from now */
    int64_t tr = ringo_now();
    assert_int_equal(ringo_ticker_reset(tk, 2 * P), 0);
    assert_int_equal(ringo_chan_recv(c, &v), 1);
    assert_true(v >= tr + 2 * P);
    /* reset of a running ticker with a tick unread: the tick is gone */
    wait_len(c, 1);
    tr = ringo_now();
    assert_int_equal(ringo_ticker_reset(tk, 30 * MS), 0);
    assert_int_equal(ringo_chan_try_recv(c, &v), -EAGAIN);
    assert_int_equal(ringo_chan_recv(c, &v), 1);
    assert_true(v >= tr + 30 * MS);
    assert_int_equal(ringo_ticker_free(tk), 0); /* free of a running ticker */
    assert_int_equal(ntimers(), n0);
}

/* ------------------------------------------------------------------ many made and freed */

/* Every state at free: pending, fired and unread, fired and received, stopped; timers, after
 * channels, tickers. Leak checkers (ASan, valgrind) see anything left behind. */
static void make_and_free_many(int n, uint64_t seed)
{
    uint64_t r = seed;
    for (int i = 0; i < n; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        int kind = (int)(r >> 60) % 4;
        int64_t ns = (int64_t)((r >> 33) % 300000) - 50000; /* -50 us .. 250 us: some at once */
        int64_t v;
        if (kind == 0) {
            ringo_chan *c = ringo_after(ns);
            if ((r >> 20) & 1)
                ringo_chan_recv(c, &v);
            assert_int_equal(ringo_chan_free(c), 0);
        } else if (kind == 1) {
            struct ringo_timer *t = ringo_timer_make(ns);
            if ((r >> 20) & 1)
                ringo_timer_stop(t);
            if ((r >> 21) & 1)
                ringo_timer_reset(t, ns);
            assert_int_equal(ringo_timer_free(t), 0);
        } else if (kind == 2) {
            struct ringo_ticker *tk = ringo_ticker_make(ns > 10000 ? ns : 10000);
            if ((r >> 20) & 1)
                ringo_chan_recv(ringo_ticker_chan(tk), &v);
            assert_int_equal(ringo_ticker_free(tk), 0);
        } else {
            struct ringo_timer *t = ringo_timer_make(ns + 10000000); /* pending for sure */
            assert_int_equal(ringo_timer_free(t), 0);
        }
    }
}

struct many_arg { int n; uint64_t seed; struct ringo_waitgroup *wg; };
static void g_many(void *p)
{
    struct many_arg *a = p;
    make_and_free_many(a->n, a->seed);
    ringo_wg_done(a->wg);
}
static void *t_many(void *p)
{
    g_many(p);
    return NULL;
}

static void test_timechan_many_made_and_freed_in_every_state(void **state)
{
    (void)state;
    int n = tu_on_valgrind() ? 300 : TU_SANITIZED ? 1500 : 5000;
    int64_t n0 = ntimers();
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    struct many_arg a[6];
    pthread_t th[2];
    ringo_wg_add(&wg, 6);
    for (int i = 0; i < 6; i++) {
        a[i] = (struct many_arg){ n / 6, 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1), &wg };
        if (i < 2)
            pthread_create(&th[i], NULL, t_many, &a[i]);
        else
            ringo_go(g_many, &a[i]);
    }
    ringo_wg_wait(&wg);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(ntimers(), n0); /* every pending one was uncounted at its free */
}

/* ------------------------------------------------------------------ goroutines and threads */

/* A thread waits on timers a goroutine makes and resets, and the other way round. */
struct mix { struct ringo_timer *t; ringo_chan *ack; int rounds; };
static void mix_receiver(struct mix *m)
{
    for (int i = 0; i < m->rounds; i++) {
        int64_t v;
        assert_int_equal(ringo_chan_recv(ringo_timer_chan(m->t), &v), 1);
        int one = 1;
        ringo_chan_send(m->ack, &one);
    }
}
static void mix_driver(struct mix *m)
{
    for (int i = 0; i < m->rounds; i++) {
        int one;
        assert_int_equal(ringo_timer_reset(m->t, (i % 3) * MS / 2), 0); /* received: 0 */
        ringo_chan_recv(m->ack, &one);
    }
}
static void *t_mix_receiver(void *p) { mix_receiver(p); return NULL; }
static void g_mix_driver(void *p) { mix_driver(p); }
static void *t_mix_driver(void *p) { mix_driver(p); return NULL; }
static struct ringo_waitgroup mixwg = RINGO_WAITGROUP_INIT;
static void g_mix_receiver(void *p) { mix_receiver(p); ringo_wg_done(&mixwg); }

static void test_timechan_goroutines_and_threads_mixed(void **state)
{
    (void)state;
    int rounds = TU_SANITIZED ? 100 : 300;
    /* goroutine drives, thread receives */
    struct mix m1 = { ringo_timer_make(-1), ringo_chan_make(sizeof(int), 0), rounds };
    int64_t v;
    assert_int_equal(ringo_chan_recv(ringo_timer_chan(m1.t), &v), 1); /* the first, at once */
    pthread_t th;
    pthread_create(&th, NULL, t_mix_receiver, &m1);
    ringo_go(g_mix_driver, &m1);
    pthread_join(th, NULL);
    /* thread drives, goroutine receives */
    struct mix m2 = { ringo_timer_make(0), ringo_chan_make(sizeof(int), 0), rounds };
    assert_int_equal(ringo_chan_recv(ringo_timer_chan(m2.t), &v), 1);
    ringo_wg_add(&mixwg, 1);
    ringo_go(g_mix_receiver, &m2);
    pthread_create(&th, NULL, t_mix_driver, &m2);
    pthread_join(th, NULL);
    ringo_wg_wait(&mixwg);
    assert_int_equal(ringo_timer_free(m1.t), 0);
    assert_int_equal(ringo_timer_free(m2.t), 0);
    ringo_chan_free(m1.ack);
    ringo_chan_free(m2.ack);
}

/* ------------------------------------------------------------------ randomized stress */

/* Shared one-shot timers; goroutines (on 2 workers) and plain threads stop, reset and receive
 * them at random while they fire. Every arm (the make, each reset) ends exactly once: as a value
 * someone received, or as a stop / reset that returned 1 (it was pending, or its fired value
 * was removed unreceived). Then arms == deliveries + cancels, exactly. */
#define ST_SLOTS 16
static struct ringo_timer *st_t[ST_SLOTS];
static atomic_llong st_arms, st_deliv, st_cancel, st_bad;
static struct ringo_waitgroup st_wg = RINGO_WAITGROUP_INIT;
static int st_iters;

static void stress_actor(uint64_t r)
{
    long long arms = 0, deliv = 0, cancel = 0;
    for (int i = 0; i < st_iters; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        struct ringo_timer *t = st_t[r % ST_SLOTS];
        int64_t ns = (int64_t)((r >> 16) % 400000) - 40000, v; /* some fire at once */
        switch ((r >> 40) % 7) {
        case 0:
            cancel += ringo_timer_stop(t);
            break;
        case 1:
        case 2:
            cancel += ringo_timer_reset(t, ns);
            arms++;
            break;
        case 3:
            deliv += ringo_chan_try_recv(ringo_timer_chan(t), &v) == 1;
            break;
        case 4:
            deliv += ringo_chan_recv_until(ringo_timer_chan(t), &v, ringo_now() + 200000) == 1;
            break;
        case 5: {
            /* a private timer freed right at its deadline: the free races with the fire on
             * whichever worker runs it (timechan.c TC1: no use after free) */
            int64_t d = ringo_now() + (ns & 0x7fff);
            struct ringo_timer *p = ringo_timer_make(d - ringo_now());
            ringo_chan *a = ringo_after(d - ringo_now());
            while (ringo_now() < d)
                ;
            if (ringo_timer_free(p) != 0 || ringo_chan_free(a) != 0)
                atomic_fetch_add(&st_bad, 1);
            break;
        }
        default: {
            struct ringo_case cs[2] = { { ringo_timer_chan(t), RINGO_RECV, &v, 0 },
                                        { ringo_timer_chan(st_t[(r >> 8) % ST_SLOTS]), RINGO_RECV, &v, 0 } };
            if (cs[1].chan == cs[0].chan)
                cs[1].chan = NULL;
            int k = ringo_select(cs, 2, 300000);
            deliv += k >= 0 && cs[k].result == 1;
            break;
        }
        }
        if ((i & 63) == 0)
            ringo_yield();
    }
    atomic_fetch_add(&st_arms, arms);
    atomic_fetch_add(&st_deliv, deliv);
    atomic_fetch_add(&st_cancel, cancel);
}
static void g_stress(void *p)
{
    stress_actor((uint64_t)(uintptr_t)p);
    ringo_wg_done(&st_wg);
}
static void *t_stress(void *p)
{
    stress_actor((uint64_t)(uintptr_t)p);
    ringo_wg_done(&st_wg);
    return NULL;
}

static int child_stress(void)
{
    int ng = 24, nt = 3;
    st_iters = (int)((TU_SANITIZED ? 400 : 3000) * tu_scale());
    for (int i = 0; i < ST_SLOTS; i++)
        st_t[i] = ringo_timer_make((int64_t)i * 20000);
    st_arms = ST_SLOTS;
    tu_watchdog_arm("timer stress", 120);
    ringo_wg_add(&st_wg, ng + nt);
    pthread_t th[3];
    for (int i = 0; i < nt; i++)
        pthread_create(&th[i], NULL, t_stress, (void *)(uintptr_t)(0x1234567ull * (uint64_t)(i + 1)));
    for (int i = 0; i < ng; i++)
        ringo_go(g_stress, (void *)(uintptr_t)(0x9e3779b97f4a7c15ull ^ (uint64_t)(i + 100) * 0x51ed27ull));
    ringo_wg_wait(&st_wg);
    for (int i = 0; i < nt; i++)
        pthread_join(th[i], NULL);
    /* the end of every slot's last arm: a final stop takes whatever is left */
    for (int i = 0; i < ST_SLOTS; i++) {
        st_cancel += ringo_timer_stop(st_t[i]);
        int64_t v;
        if (ringo_chan_try_recv(ringo_timer_chan(st_t[i]), &v) != -EAGAIN)
            return 3; /* stale after stop */
        if (ringo_timer_free(st_t[i]) != 0)
            return 4;
    }
    tu_watchdog_disarm();
    long long arms = st_arms, deliv = st_deliv, cancel = st_cancel;
    printf("%lld arms: %lld received, %lld stopped; timers pending now %lld\n", arms, deliv, cancel,
           (long long)ntimers());
    if (arms != deliv + cancel)
        return 5;
    if (st_bad)
        return 7;
    return ntimers() == 0 ? 0 : 6;
}

static void test_timechan_stress_every_arm_ends_exactly_once(void **state)
{
    (void)state;
    static const char *const env[] = { "RINGO_PROCS=2", NULL };
    tu_check_child("stress", env, 180, NULL);
}

static const struct child_scenario scenarios[] = {
    { "stress", child_stress },
    { NULL, NULL },
};

int main(int argc, char **argv)
{
    tu_maybe_child(argc, argv, scenarios);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timechan_after_fires_once_never_early),
        cmocka_unit_test(test_timechan_after_zero_or_negative_fires_at_once),
        cmocka_unit_test(test_timechan_after_in_a_select_with_other_channels),
        cmocka_unit_test(test_timechan_timer_stop_before_fire_never_fires),
        cmocka_unit_test(test_timechan_timer_stop_after_fire),
        cmocka_unit_test(test_timechan_timer_reset_leaves_no_stale_value),
        cmocka_unit_test(test_timechan_errors_and_free_while_blocked),
        cmocka_unit_test(test_timechan_ticker_ticks_on_its_grid),
        cmocka_unit_test(test_timechan_ticker_drops_unread_ticks),
        cmocka_unit_test(test_timechan_many_made_and_freed_in_every_state),
        cmocka_unit_test(test_timechan_goroutines_and_threads_mixed),
        cmocka_unit_test(test_timechan_stress_every_arm_ends_exactly_once),
    };
    if (getenv("RINGO_TEST_FILTER"))
        cmocka_set_test_filter(getenv("RINGO_TEST_FILTER"));
    return TU_RUN_GROUP("timechan", tests, NULL, NULL);
}
