/* tests/test_select.c — ringo_select (API.md "Select").
 *
 * Receive and send cases; NULL channels never proceed; timeout 0 is Go's default (-EAGAIN), a
 * finite timeout returns -ETIMEDOUT no earlier than asked and not much later, -1 waits forever;
 * -EINVAL for bad arguments; exactly one case proceeds; the choice among ready cases is fair,
 * and so is the choice a later partner makes among a blocked select's cases on one channel;
 * a waiting select is completed by whichever case becomes ready first and leaves nothing behind
 * on the other channels; closed channels; plain threads; races with close; selects on both
 * sides of the same channels; the random choices differ from one process to the next.
 *
 * Goroutines and threads never call cmocka asserts: they CHECK() (counted, then asserted by the
 * test's teardown). Blocking is observed with ringo_dump(), not guessed.
 */
#include <ringo.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include "tests/testutil.h"
#include "tests/chanutil.h"

/* ------------------------------------------------------------------ helpers */

static int64_t ms(int64_t n) { return n * 1000000; }

/* ------------------------------------------------------------------ ready cases */

static void test_select_recv_case_takes_a_ready_value(void **state)
{
    (void)state;
    ringo_chan *empty = ringo_chan_make(sizeof(int), 2), *full = ringo_chan_make(sizeof(int), 2);
    int v = 41;
    assert_int_equal(ringo_chan_send(full, &v), 0);
    int got_e = -1, got_f = -1;
    struct ringo_case cs[] = {
        { empty, RINGO_RECV, &got_e, 99 },
        { full, RINGO_RECV, &got_f, 99 },
    };
    assert_int_equal(ringo_select(cs, 2, 0), 1);
    assert_int_equal(cs[1].result, 1);
    assert_int_equal(got_f, 41);
    assert_int_equal(got_e, -1); /* the case that did not proceed wrote nothing */
    assert_int_equal(ringo_chan_len(full), 0);
    /* elem NULL discards */
    assert_int_equal(ringo_chan_send(full, &v), 0);
    cs[1].elem = NULL;
    assert_int_equal(ringo_select(cs, 2, -1), 1);
    assert_int_equal(cs[1].result, 1);
    assert_int_equal(ringo_chan_len(full), 0);
    assert_int_equal(ringo_chan_free(empty), 0);
    assert_int_equal(ringo_chan_free(full), 0);
}

struct peer {
    ringo_chan *c;
    int v;
    int result;
    struct ringo_waitgroup *wg;
};
static void peer_send(void *p)
{
    struct peer *a = p;
    a->result = ringo_chan_send(a->c, &a->v);
    ringo_wg_done(a->wg);
}
static void peer_recv(void *p)
{
    struct peer *a = p;
    a->v = -1;
    a->result = ringo_chan_recv(a->c, &a->v);
    ringo_wg_done(a->wg);
}

/* Unbuffered: a select case proceeds with a partner that is already blocked. */
static void test_select_unbuffered_cases_meet_a_blocked_partner(void **state)
{
    (void)state;
    for (int kind = 0; kind < 2; kind++) {
        ringo_chan *c = ringo_chan_make(sizeof(int), 0), *other = ringo_chan_make(sizeof(int), 0);
        struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
        struct peer p = { .c = c, .v = 7, .wg = &wg };
        tu_watchdog_arm("select meets blocked partner", 20);
        ringo_wg_add(&wg, 1);
        spawn(kind, peer_send, &p);
        wait_blocked("chan send", 1);
        int got = 0, o = 0;
        struct ringo_case cs[] = { { other, RINGO_RECV, &o, 99 }, { c, RINGO_RECV, &got, 99 } };
        assert_int_equal(ringo_select(cs, 2, 0), 1);
        assert_int_equal(cs[1].result, 1);
        assert_int_equal(got, 7);
        ringo_wg_wait(&wg);
        assert_int_equal(p.result, 0);

        ringo_wg_add(&wg, 1);
        spawn(kind, peer_recv, &p);
        wait_blocked("chan receive", 1);
        int out = 8;
        struct ringo_case ss[] = { { other, RINGO_SEND, &o, 99 }, { c, RINGO_SEND, &out, 99 } };
        assert_int_equal(ringo_select(ss, 2, 0), 1);
        assert_int_equal(ss[1].result, 0);
        ringo_wg_wait(&wg);
        tu_watchdog_disarm();
        assert_int_equal(p.result, 1);
        assert_int_equal(p.v, 8);
        assert_int_equal(ringo_chan_free(c), 0);
        assert_int_equal(ringo_chan_free(other), 0);
    }
}

static void test_select_send_case_delivers_when_there_is_room(void **state)
{
    (void)state;
    ringo_chan *full = ringo_chan_make(sizeof(int), 2), *room = ringo_chan_make(sizeof(int), 2);
    int v = 1;
    assert_int_equal(ringo_chan_send(full, &v), 0);
    assert_int_equal(ringo_chan_send(full, &v), 0);
    int a = 10, b = 20;
    struct ringo_case cs[] = { { full, RINGO_SEND, &a, 99 }, { room, RINGO_SEND, &b, 99 } };
    for (int i = 0; i < 2; i++) {
        b = 20 + i;
        assert_int_equal(ringo_select(cs, 2, 0), 1);
        assert_int_equal(cs[1].result, 0);
    }
    assert_int_equal(ringo_select(cs, 2, 0), -EAGAIN); /* both full now */
    assert_int_equal(ringo_chan_len(full), 2);
    assert_int_equal(ringo_chan_len(room), 2);
    assert_int_equal(ringo_chan_recv(room, &v), 1);
    assert_int_equal(v, 20);
    assert_int_equal(ringo_chan_recv(room, &v), 1);
    assert_int_equal(v, 21);
    assert_int_equal(ringo_chan_recv(full, &v), 1);
    assert_int_equal(v, 1); /* nothing of a got into full */
    assert_int_equal(ringo_chan_recv(full, &v), 1);
    assert_int_equal(ringo_chan_try_recv(full, &v), -EAGAIN);
    assert_int_equal(ringo_chan_free(full), 0);
    assert_int_equal(ringo_chan_free(room), 0);
}

/* ------------------------------------------------------------------ NULL, default, timeouts */

static void test_select_null_channel_cases_never_proceed(void **state)
{
    (void)state;
    ringo_chan *c = ringo_chan_make(sizeof(int), 4);
    int v = 3, x = 0;
    struct ringo_case cs[] = {
        { NULL, RINGO_RECV, &x, 99 },
        { NULL, RINGO_SEND, &v, 99 },
        { c, RINGO_RECV, &x, 99 },
        { NULL, RINGO_RECV, NULL, 99 },
    };
    for (int i = 0; i < 500; i++) {
        assert_int_equal(ringo_chan_send(c, &v), 0);
        assert_int_equal(ringo_select(cs, 4, i & 1 ? 0 : -1), 2);
        assert_int_equal(cs[2].result, 1);
    }
    assert_int_equal(cs[0].result, 99);
    assert_int_equal(cs[1].result, 99);
    /* only NULL channels: default, or a timeout */
    struct ringo_case nil[] = { { NULL, RINGO_RECV, &x, 99 }, { NULL, RINGO_SEND, &v, 99 } };
    assert_int_equal(ringo_select(nil, 2, 0), -EAGAIN);
    int64_t t0 = ringo_now();
    assert_int_equal(ringo_select(nil, 2, ms(20)), -ETIMEDOUT);
    assert_true(ringo_now() - t0 >= ms(20));
    assert_int_equal(ringo_chan_free(c), 0);
}

/* Timeout 0 never waits and leaves nothing behind: no receiver or sender stays queued. */
static void test_select_timeout_zero_is_go_default(void **state)
{
    (void)state;
    ringo_chan *u = ringo_chan_make(sizeof(int), 0), *empty = ringo_chan_make(sizeof(int), 2),
               *full = ringo_chan_make(sizeof(int), 2);
    int v = 5, x = 0;
    assert_int_equal(ringo_chan_send(full, &v), 0);
    assert_int_equal(ringo_chan_send(full, &v), 0);
    struct ringo_case cs[] = {
        { u, RINGO_RECV, &x, 99 },
        { u, RINGO_SEND, &v, 99 },
        { empty, RINGO_RECV, &x, 99 },
        { full, RINGO_SEND, &v, 99 },
    };
    int64_t t0 = ringo_now();
    for (int i = 0; i < 1000; i++)
        assert_int_equal(ringo_select(cs, 4, 0), -EAGAIN);
    assert_true(ringo_now() - t0 < ms(500)); /* 1000 non-blocking selects */
    assert_int_equal(ringo_chan_try_send(u, &v), -EAGAIN); /* no stale receiver on u */
    assert_int_equal(ringo_chan_try_recv(u, &x), -EAGAIN); /* no stale sender on u */
    assert_int_equal(ringo_chan_len(empty), 0);
    assert_int_equal(ringo_chan_len(full), 2);
    assert_int_equal(ringo_chan_free(u), 0);
    assert_int_equal(ringo_chan_free(empty), 0);
    assert_int_equal(ringo_chan_free(full), 0);
}

struct timing {
    ringo_chan *c;
    int64_t timeout;
    int ret;
    int64_t elapsed;
    struct ringo_waitgroup *wg;
};
static void timed_select(void *p)
{
    struct timing *t = p;
    int x;
    struct ringo_case cs[] = { { t->c, RINGO_RECV, &x, 99 }, { NULL, RINGO_SEND, &x, 99 } };
    int64_t t0 = ringo_now();
    t->ret = ringo_select(cs, t->c ? 2 : 0, t->timeout);
    t->elapsed = ringo_now() - t0;
    ringo_wg_done(t->wg);
}

/* -ETIMEDOUT, never before the timeout, and not wildly after it (how close is B10's business:
 * a test on a shared, loaded machine may only bound a hang). From a goroutine and a plain
 * thread, with cases and with none (n == 0). */
static void test_select_finite_timeout_is_not_early_and_close_to_deadline(void **state)
{
    (void)state;
    static const int64_t tos[] = { 1, 10, 50 };
    ringo_chan *c = ringo_chan_make(sizeof(int), 0);
    tu_watchdog_arm("select timeouts", 30);
    for (int kind = 0; kind < 2; kind++)
        for (int with_cases = 0; with_cases < 2; with_cases++)
            for (size_t i = 0; i < 3; i++) {
                int64_t best = INT64_MAX;
                for (int rep = 0; rep < 3; rep++) {
                    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
                    struct timing t = { .c = with_cases ? c : NULL, .timeout = ms(tos[i]), .wg = &wg };
                    ringo_wg_add(&wg, 1);
                    spawn(kind, timed_select, &t);
                    ringo_wg_wait(&wg);
                    if (t.ret != -ETIMEDOUT)
                        fail_msg("%s, %s, %lld ms: returned %d, want -ETIMEDOUT", kind_name[kind],
                                 with_cases ? "a case" : "no cases", (long long)tos[i], t.ret);
                    if (t.elapsed < t.timeout)
                        fail_msg("%s, %s: timed out after %lld us, before the %lld ms asked", kind_name[kind],
                                 with_cases ? "a case" : "no cases", (long long)t.elapsed / 1000, (long long)tos[i]);
                    if (t.elapsed - t.timeout < best)
                        best = t.elapsed - t.timeout;
                    if (t.elapsed - t.timeout > ms(5000))
                        fail_msg("%s: %lld ms timeout took %lld ms", kind_name[kind], (long long)tos[i],
                                 (long long)t.elapsed / 1000000);
                }
                if (best > ms(1000)) /* the best of three is late by more than a second: a lost timer */
                    fail_msg("%s, %s: %lld ms timeout is late by %lld us at best", kind_name[kind],
                             with_cases ? "a case" : "no cases", (long long)tos[i], (long long)best / 1000);
            }
    tu_watchdog_disarm();
    /* the timed-out selects left nothing queued on c */
    int v = 1;
    assert_int_equal(ringo_chan_try_send(c, &v), -EAGAIN);
    assert_int_equal(ringo_chan_free(c), 0);
}

static void test_select_no_cases(void **state)
{
    (void)state;
    struct ringo_case dummy = { NULL, RINGO_RECV, NULL, 99 };
    assert_int_equal(ringo_select(NULL, 0, 0), -EAGAIN);
    assert_int_equal(ringo_select(&dummy, 0, 0), -EAGAIN);
    int64_t t0 = ringo_now();
    assert_int_equal(ringo_select(NULL, 0, ms(15)), -ETIMEDOUT);
    int64_t el = ringo_now() - t0;
    assert_true(el >= ms(15));
    assert_true(el < ms(15) + ms(250));
    assert_int_equal(dummy.result, 99);
    /* n == 0 with timeout -1 blocks forever: see test_deadlock ("select (no cases)") */
}

static void test_select_bad_arguments_are_einval(void **state)
{
    (void)state;
    ringo_chan *c = ringo_chan_make(sizeof(int), 2);
    int v = 4, x = 0;
    assert_int_equal(ringo_chan_send(c, &v), 0);
    assert_int_equal(ringo_select(NULL, 1, 0), -EINVAL);
    assert_int_equal(ringo_select(NULL, 3, -1), -EINVAL);
    static const int bad_ops[] = { 0, 3, -1, RINGO_RECV | RINGO_SEND | 4 };
    for (size_t i = 0; i < 4; i++) {
        struct ringo_case one[] = { { c, bad_ops[i], &x, 99 } };
        assert_int_equal(ringo_select(one, 1, 0), -EINVAL);
        struct ringo_case nil[] = { { NULL, bad_ops[i], &x, 99 } }; /* even on a NULL channel */
        assert_int_equal(ringo_select(nil, 1, -1), -EINVAL);
        /* a ready case next to a bad one: nothing proceeds */
        struct ringo_case mix[] = { { c, RINGO_RECV, &x, 99 }, { c, bad_ops[i], &x, 99 } };
        assert_int_equal(ringo_select(mix, 2, -1), -EINVAL);
        assert_int_equal(ringo_chan_len(c), 1);
        assert_int_equal(x, 0);
    }
    /* a send case without a value for a non-empty element */
    struct ringo_case nosrc[] = { { c, RINGO_SEND, NULL, 99 } };
    assert_int_equal(ringo_select(nosrc, 1, 0), -EINVAL);
    assert_int_equal(ringo_chan_len(c), 1);
    assert_int_equal(ringo_chan_free(c), 0);
}

/* ------------------------------------------------------------------ exactly one, fairness */

/* Several ready cases: exactly one proceeds each time, the one returned. */
static void test_select_exactly_one_case_proceeds(void **state)
{
    (void)state;
    ringo_chan *r1 = ringo_chan_make(sizeof(int), 8), *r2 = ringo_chan_make(sizeof(int), 8),
               *s1 = ringo_chan_make(sizeof(int), 8), *s2 = ringo_chan_make(sizeof(int), 8);
    int v = 1, x1 = 0, x2 = 0;
    struct ringo_case cs[] = {
        { r1, RINGO_RECV, &x1, 99 }, { s1, RINGO_SEND, &v, 99 },
        { r2, RINGO_RECV, &x2, 99 }, { s2, RINGO_SEND, &v, 99 },
    };
    ringo_chan *ch[] = { r1, s1, r2, s2 };
    long hits[4] = { 0 };
    for (int round = 0; round < 4000; round++) {
        /* reset: r1, r2 hold 4 values; s1, s2 hold 4 (room for 4 more) */
        for (int i = 0; i < 4; i++) {
            while (ringo_chan_len(ch[i]) < 4)
                assert_int_equal(ringo_chan_send(ch[i], &v), 0);
            while (ringo_chan_len(ch[i]) > 4)
                assert_int_equal(ringo_chan_recv(ch[i], NULL), 1);
        }
        int idx = ringo_select(cs, 4, round & 1 ? 0 : -1);
        assert_true(idx >= 0 && idx < 4);
        hits[idx]++;
        for (int i = 0; i < 4; i++) {
            size_t want = i != idx ? 4 : cs[i].op == RINGO_RECV ? 3 : 5;
            if (ringo_chan_len(ch[i]) != want)
                fail_msg("round %d: select returned %d, but channel %d has %zu values (want %zu)", round, idx, i,
                         ringo_chan_len(ch[i]), want);
        }
        assert_int_equal(cs[idx].result, cs[idx].op == RINGO_RECV ? 1 : 0);
    }
    for (int i = 0; i < 4; i++)
        assert_true(hits[i] > 700); /* each about 1000 */
    for (int i = 0; i < 4; i++)
        assert_int_equal(ringo_chan_free(ch[i]), 0);
}

static void check_fair(const char *what, ringo_chan *a, int opa, ringo_chan *b, int opb)
{
    int va = 1, vb = 2, xa, xb;
    struct ringo_case cs[] = { { a, opa, opa == RINGO_SEND ? &va : &xa, 99 },
                               { b, opb, opb == RINGO_SEND ? &vb : &xb, 99 } };
    long n = 20000, hits[2] = { 0, 0 };
    for (long i = 0; i < n; i++) {
        int idx = ringo_select(cs, 2, (i & 3) == 0 ? -1 : 0);
        assert_true(idx == 0 || idx == 1);
        hits[idx]++;
        ringo_chan *c = idx ? b : a;
        int op = idx ? opb : opa; /* put the channel back as it was: always ready */
        if (op == RINGO_RECV)
            assert_int_equal(ringo_chan_send(c, &va), 0);
        else
            assert_int_equal(ringo_chan_recv(c, NULL), 1);
    }
    double pa = (double)hits[0] / (double)n;
    if (pa < 0.45 || pa > 0.55)
        fail_msg("%s: first case chosen %.1f %% of %ld rounds (want 45-55 %%)", what, pa * 100, n);
}

static void test_select_choice_among_ready_cases_is_fair(void **state)
{
    (void)state;
    ringo_chan *a = ringo_chan_make(sizeof(int), 4), *b = ringo_chan_make(sizeof(int), 4);
    int v = 0;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ringo_chan_send(a, &v), 0);
        assert_int_equal(ringo_chan_send(b, &v), 0);
    }
    check_fair("recv/recv", a, RINGO_RECV, b, RINGO_RECV);
    check_fair("send/send", a, RINGO_SEND, b, RINGO_SEND);
    check_fair("recv/send", a, RINGO_RECV, b, RINGO_SEND);
    check_fair("send/recv", a, RINGO_SEND, b, RINGO_RECV);
    assert_int_equal(ringo_chan_free(a), 0);
    assert_int_equal(ringo_chan_free(b), 0);
}

/* ------------------------------------------------------------------ waiting selects */

struct waiter {
    struct ringo_case cs[3];
    size_t n;
    int64_t timeout;
    int ret;
    int vals[3];
    struct ringo_waitgroup *wg;
};
static void select_waiter(void *p)
{
    struct waiter *w = p;
    w->ret = ringo_select(w->cs, w->n, w->timeout);
    ringo_wg_done(w->wg);
}

/* A select waiting on recv cases (a unbuffered, b buffered, c NULL) is completed by whichever
 * becomes ready first; afterwards the other channel holds no trace of it. */
static void test_select_waiting_recv_woken_by_first_ready_and_withdrawn(void **state)
{
    (void)state;
    for (int kind = 0; kind < 2; kind++)
        for (int which = 0; which < 2; which++) {
            ringo_chan *a = ringo_chan_make(sizeof(int), 0), *b = ringo_chan_make(sizeof(int), 2);
            ringo_chan *ch[2] = { a, b };
            struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
            struct waiter w = { .n = 3, .timeout = which ? ms(10000) : -1, .wg = &wg };
            w.vals[0] = w.vals[1] = -1;
            w.cs[0] = (struct ringo_case){ a, RINGO_RECV, &w.vals[0], 99 };
            w.cs[1] = (struct ringo_case){ NULL, RINGO_RECV, &w.vals[2], 99 };
            w.cs[2] = (struct ringo_case){ b, RINGO_RECV, &w.vals[1], 99 };
            tu_watchdog_arm("waiting select recv", 20);
            ringo_wg_add(&wg, 1);
            spawn(kind, select_waiter, &w);
            wait_blocked("select", 1);
            assert_int_equal(ringo_chan_free(a), -EBUSY); /* the select is blocked on both */
            assert_int_equal(ringo_chan_free(b), -EBUSY);
            int v = 100 + which;
            assert_int_equal(ringo_chan_send(ch[which], &v), 0);
            ringo_wg_wait(&wg);
            if (w.ret != (which ? 2 : 0))
                fail_msg("%s select: send on %s, returned %d", kind_name[kind], which ? "b" : "a", w.ret);
            assert_int_equal(w.cs[w.ret].result, 1);
            assert_int_equal(w.vals[which], 100 + which);
            assert_int_equal(w.vals[!which], -1);
            /* withdrawn from the other channel: a later send there is not taken by the select */
            ringo_chan *o = ch[!which];
            v = 200;
            if (o == a) {
                assert_int_equal(ringo_chan_try_send(a, &v), -EAGAIN); /* no receiver left on a */
                struct ringo_waitgroup wg2 = RINGO_WAITGROUP_INIT;
                struct peer p = { .c = a, .wg = &wg2 };
                ringo_wg_add(&wg2, 1);
                spawn(kind, peer_recv, &p); /* a plain receiver gets the next value */
                assert_int_equal(ringo_chan_send(a, &v), 0);
                ringo_wg_wait(&wg2);
                assert_int_equal(p.v, 200);
            } else {
                assert_int_equal(ringo_chan_send(b, &v), 0);
                int x = 0;
                assert_int_equal(ringo_chan_recv(b, &x), 1);
                assert_int_equal(x, 200);
                assert_int_equal(ringo_chan_len(b), 0);
            }
            assert_int_equal(w.vals[!which], -1);
            tu_watchdog_disarm();
            assert_int_equal(ringo_chan_free(a), 0);
            assert_int_equal(ringo_chan_free(b), 0);
        }
}

/* A select waiting on send cases (a unbuffered, b full) is completed by whichever gets a
 * receiver or room first; its value for the other channel is never delivered. */
static void test_select_waiting_send_woken_by_first_ready_and_withdrawn(void **state)
{
    (void)state;
    for (int kind = 0; kind < 2; kind++)
        for (int which = 0; which < 2; which++) {
            ringo_chan *a = ringo_chan_make(sizeof(int), 0), *b = ringo_chan_make(sizeof(int), 2);
            int v = 1;
            assert_int_equal(ringo_chan_send(b, &v), 0);
            v = 2;
            assert_int_equal(ringo_chan_send(b, &v), 0);
            struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
            struct waiter w = { .n = 2, .timeout = -1, .wg = &wg };
            w.vals[0] = 300;
            w.vals[1] = 400;
            w.cs[0] = (struct ringo_case){ a, RINGO_SEND, &w.vals[0], 99 };
            w.cs[1] = (struct ringo_case){ b, RINGO_SEND, &w.vals[1], 99 };
            tu_watchdog_arm("waiting select send", 20);
            ringo_wg_add(&wg, 1);
            spawn(kind, select_waiter, &w);
            wait_blocked("select", 1);
            int x = 0;
            if (which == 0) {
                assert_int_equal(ringo_chan_recv(a, &x), 1);
                assert_int_equal(x, 300);
            } else {
                assert_int_equal(ringo_chan_recv(b, &x), 1);
                assert_int_equal(x, 1);
            }
            ringo_wg_wait(&wg);
            assert_int_equal(w.ret, which);
            assert_int_equal(w.cs[which].result, 0);
            if (which == 0) {
                /* b still holds exactly 1, 2 */
                assert_int_equal(ringo_chan_len(b), 2);
                assert_int_equal(ringo_chan_recv(b, &x), 1);
                assert_int_equal(x, 1);
                assert_int_equal(ringo_chan_recv(b, &x), 1);
                assert_int_equal(x, 2);
            } else {
                assert_int_equal(ringo_chan_try_recv(a, &x), -EAGAIN); /* no sender left on a */
                assert_int_equal(ringo_chan_recv(b, &x), 1);
                assert_int_equal(x, 2);
                assert_int_equal(ringo_chan_recv(b, &x), 1);
                assert_int_equal(x, 400);
            }
            assert_int_equal(ringo_chan_try_recv(b, &x), -EAGAIN);
            tu_watchdog_disarm();
            assert_int_equal(ringo_chan_free(a), 0);
            assert_int_equal(ringo_chan_free(b), 0);
        }
}

/* ------------------------------------------------------------------ closed channels */

static void test_select_on_closed_channels(void **state)
{
    (void)state;
    ringo_chan *u = ringo_chan_make(sizeof(int), 0), *b = ringo_chan_make(sizeof(int), 3);
    int v = 9, x = 77;
    assert_int_equal(ringo_chan_send(b, &v), 0);
    assert_int_equal(ringo_chan_close(u), 0);
    assert_int_equal(ringo_chan_close(b), 0);
    struct ringo_case r[] = { { u, RINGO_RECV, &x, 99 } };
    assert_int_equal(ringo_select(r, 1, 0), 0);
    assert_int_equal(r[0].result, 0);
    assert_int_equal(x, 0); /* zeroed */
    struct ringo_case s[] = { { NULL, RINGO_RECV, &x, 99 }, { u, RINGO_SEND, &v, 99 } };
    assert_int_equal(ringo_select(s, 2, -1), 1);
    assert_int_equal(s[1].result, -EPIPE);
    /* buffered and closed: the buffered value first, then 0 */
    struct ringo_case rb[] = { { b, RINGO_RECV, &x, 99 } };
    assert_int_equal(ringo_select(rb, 1, -1), 0);
    assert_int_equal(rb[0].result, 1);
    assert_int_equal(x, 9);
    x = 5;
    assert_int_equal(ringo_select(rb, 1, 0), 0);
    assert_int_equal(rb[0].result, 0);
    assert_int_equal(x, 0);
    struct ringo_case sb[] = { { b, RINGO_SEND, &v, 99 } };
    assert_int_equal(ringo_select(sb, 1, 0), 0);
    assert_int_equal(sb[0].result, -EPIPE);
    assert_int_equal(ringo_chan_free(u), 0);
    assert_int_equal(ringo_chan_free(b), 0);
}

/* A waiting select is woken by close: a recv case gets 0, a send case -EPIPE. */
static void test_select_waiting_select_woken_by_close(void **state)
{
    (void)state;
    for (int kind = 0; kind < 2; kind++)
        for (int cap = 0; cap < 3; cap += 2)
            for (int op = RINGO_RECV; op <= RINGO_SEND; op++) {
                ringo_chan *c = ringo_chan_make(sizeof(int), (size_t)cap), *idle = ringo_chan_make(sizeof(int), 0);
                int v = 1;
                for (int i = 0; op == RINGO_SEND && i < cap; i++)
                    assert_int_equal(ringo_chan_send(c, &v), 0);
                struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
                struct waiter w = { .n = 2, .timeout = -1, .wg = &wg };
                w.vals[0] = 55;
                w.vals[1] = 66;
                w.cs[0] = (struct ringo_case){ idle, RINGO_RECV, &w.vals[1], 99 };
                w.cs[1] = (struct ringo_case){ c, op, &w.vals[0], 99 };
                tu_watchdog_arm("select woken by close", 20);
                ringo_wg_add(&wg, 1);
                spawn(kind, select_waiter, &w);
                wait_blocked("select", 1);
                assert_int_equal(ringo_chan_close(c), 0);
                ringo_wg_wait(&wg);
                tu_watchdog_disarm();
                if (w.ret != 1 || w.cs[1].result != (op == RINGO_RECV ? 0 : -EPIPE))
                    fail_msg("%s select, cap %d, %s case: returned %d result %d", kind_name[kind], cap,
                             op == RINGO_RECV ? "recv" : "send", w.ret, w.cs[1].result);
                if (op == RINGO_RECV)
                    assert_int_equal(w.vals[0], 0);
                assert_int_equal(w.vals[1], 66);
                assert_int_equal(ringo_chan_try_send(idle, &v), -EAGAIN); /* withdrawn from idle */
                assert_int_equal(ringo_chan_free(c), 0);
                assert_int_equal(ringo_chan_free(idle), 0);
            }
}

/* ------------------------------------------------------------------ races */

#define NSEND 2
#define MAXV 100000
struct selrace {
    ringo_chan *ch[2];
    atomic_uchar *seen[2 * NSEND];
    uint64_t sent[2 * NSEND];
    atomic_int next_sender;
    atomic_long received;
    struct ringo_waitgroup wg;
};
static void plain_sender(void *p)
{
    struct selrace *r = p;
    int id = atomic_fetch_add(&r->next_sender, 1);
    ringo_chan *c = r->ch[id & 1];
    uint64_t i = 0;
    for (; i < MAXV; i++) {
        uint64_t v = ((uint64_t)id << 32) | i;
        int res = ringo_chan_send(c, &v);
        if (res != 0) {
            CHECK(res == -EPIPE);
            break;
        }
    }
    r->sent[id] = i;
    ringo_wg_done(&r->wg);
}
/* last[2 * id + ch]: the sequence last seen from sender id through channel ch */
static void record(struct selrace *r, uint64_t v, int ch, uint64_t *last)
{
    uint32_t id = (uint32_t)(v >> 32), seq = (uint32_t)v;
    CHECK(id < 2 * NSEND && seq < MAXV);
    if (id >= 2 * NSEND || seq >= MAXV)
        return;
    uint64_t *l = &last[2 * id + ch];
    CHECK(*l == UINT64_MAX || seq > *l); /* FIFO per sender, per channel */
    *l = seq;
    atomic_fetch_add(&r->seen[id][seq], 1);
    atomic_fetch_add(&r->received, 1);
}
/* select-receive on both channels until both are closed (a closed case is set to NULL) */
static void select_receiver(void *p)
{
    struct selrace *r = p;
    uint64_t v[2], last[2 * 2 * NSEND];
    memset(last, 0xff, sizeof last);
    struct ringo_case cs[] = { { r->ch[0], RINGO_RECV, &v[0], 99 }, { r->ch[1], RINGO_RECV, &v[1], 99 } };
    int open = 2;
    while (open) {
        int i = ringo_select(cs, 2, -1);
        CHECK(i == 0 || i == 1);
        if (i < 0)
            break;
        if (cs[i].result == 0) {
            CHECK(v[i] == 0);
            cs[i].chan = NULL;
            open--;
            continue;
        }
        CHECK(cs[i].result == 1);
        record(r, v[i], i, last);
    }
    ringo_wg_done(&r->wg);
}

static void check_seen(struct selrace *r, const char *what)
{
    long total = 0;
    for (int p = 0; p < 2 * NSEND; p++) {
        for (uint64_t i = 0; i < MAXV; i++) {
            unsigned char want = i < r->sent[p], got = atomic_load(&r->seen[p][i]);
            if (got != want)
                fail_msg("%s: value %d/%llu received %u times, want %u (sender sent %llu)", what, p,
                         (unsigned long long)i, got, want, (unsigned long long)r->sent[p]);
            atomic_store(&r->seen[p][i], 0);
        }
        total += (long)r->sent[p];
    }
    assert_int_equal(atomic_load(&r->received), total);
}

static struct selrace *selrace_new(void)
{
    struct selrace *r = calloc(1, sizeof *r);
    for (int p = 0; p < 2 * NSEND; p++)
        r->seen[p] = calloc(MAXV, 1);
    return r;
}
static void selrace_free(struct selrace *r)
{
    for (int p = 0; p < 2 * NSEND; p++)
        free(r->seen[p]);
    free(r);
}

/* Selecting receivers (goroutines and threads) and plain senders while both channels are
 * closed at a random moment: every value whose send returned 0 is received exactly once. */
static void test_select_races_with_close(void **state)
{
    (void)state;
    static const size_t kcaps[][2] = { { 0, 0 }, { 0, 4 }, { 2, 64 } };
    struct selrace *r = selrace_new();
    unsigned seed = 777;
    int rounds = (int)(10 * tu_scale());
    tu_watchdog_arm("select races with close", 60);
    for (size_t k = 0; k < 3; k++)
        for (int round = 0; round < rounds; round++) {
            r->ch[0] = ringo_chan_make(sizeof(uint64_t), kcaps[k][0]);
            r->ch[1] = ringo_chan_make(sizeof(uint64_t), kcaps[k][1]);
            atomic_store(&r->next_sender, 0);
            atomic_store(&r->received, 0);
            ringo_wg_add(&r->wg, 2 * NSEND + 3);
            for (int i = 0; i < 3; i++)
                spawn((i + round) & 1, select_receiver, r);
            for (int i = 0; i < 2 * NSEND; i++)
                spawn((i / 2 + round) & 1, plain_sender, r);
            usleep(rand_r(&seed) % 3000);
            assert_int_equal(ringo_chan_close(r->ch[round & 1]), 0);
            usleep(rand_r(&seed) % 500);
            assert_int_equal(ringo_chan_close(r->ch[!(round & 1)]), 0);
            ringo_wg_wait(&r->wg);
            char what[64];
            snprintf(what, sizeof what, "caps %zu/%zu round %d", kcaps[k][0], kcaps[k][1], round);
            check_seen(r, what);
            assert_int_equal(atomic_load(&bad), 0);
            assert_int_equal(ringo_chan_free(r->ch[0]), 0);
            assert_int_equal(ringo_chan_free(r->ch[1]), 0);
        }
    tu_watchdog_disarm();
    selrace_free(r);
}

/* select-send the values of one sender id over both channels */
struct selsender {
    struct selrace *r;
    int id;
    uint64_t n;
    struct ringo_waitgroup *senders; /* done when every sender is */
};
static void select_sender(void *p)
{
    struct selsender *s = p;
    struct selrace *r = s->r;
    for (uint64_t i = 0; i < s->n; i++) {
        uint64_t v = ((uint64_t)s->id << 32) | i;
        struct ringo_case cs[] = { { r->ch[0], RINGO_SEND, &v, 99 }, { r->ch[1], RINGO_SEND, &v, 99 } };
        int k = ringo_select(cs, 2, -1);
        CHECK(k == 0 || k == 1);
        if (k >= 0)
            CHECK(cs[k].result == 0);
    }
    r->sent[s->id] = s->n;
    ringo_wg_done(s->senders);
    ringo_wg_done(&r->wg);
}
struct closer {
    struct selrace *r;
    struct ringo_waitgroup *senders;
};
static void close_both_after(void *p)
{
    struct closer *c = p;
    ringo_wg_wait(c->senders);
    CHECK(ringo_chan_close(c->r->ch[0]) == 0);
    CHECK(ringo_chan_close(c->r->ch[1]) == 0);
    ringo_wg_done(&c->r->wg);
}
/* Selects on both sides of the same channels: select-senders against select-receivers, on
 * unbuffered and buffered channels, goroutines and threads. Every value exactly once. (A
 * select-send of a value to a select-recv on an unbuffered channel is a handoff between two
 * waiting selects: each must be claimed exactly once.) */
static void test_select_selects_on_both_sides(void **state)
{
    (void)state;
    static const size_t kcaps[][2] = { { 0, 0 }, { 0, 3 }, { 16, 16 } };
    struct selrace *r = selrace_new();
    uint64_t per = (uint64_t)(5000 * tu_scale());
    if (per > MAXV)
        per = MAXV;
    tu_watchdog_arm("selects on both sides", 60);
    for (size_t k = 0; k < 3; k++) {
        r->ch[0] = ringo_chan_make(sizeof(uint64_t), kcaps[k][0]);
        r->ch[1] = ringo_chan_make(sizeof(uint64_t), kcaps[k][1]);
        atomic_store(&r->received, 0);
        memset(r->sent, 0, sizeof r->sent);
        struct ringo_waitgroup senders = RINGO_WAITGROUP_INIT;
        struct selsender ss[2 * NSEND];
        struct closer cl = { r, &senders };
        ringo_wg_add(&r->wg, 2 * NSEND + 3 + 1);
        ringo_wg_add(&senders, 2 * NSEND);
        for (int i = 0; i < 3; i++)
            spawn(i & 1, select_receiver, r);
        for (int i = 0; i < 2 * NSEND; i++) {
            ss[i] = (struct selsender){ r, i, per, &senders };
            spawn((i / 2) & 1, select_sender, &ss[i]);
        }
        spawn(G, close_both_after, &cl); /* closes both once every sender is done */
        ringo_wg_wait(&r->wg);
        char what[64];
        snprintf(what, sizeof what, "caps %zu/%zu", kcaps[k][0], kcaps[k][1]);
        check_seen(r, what);
        assert_int_equal(atomic_load(&bad), 0);
        assert_int_equal(ringo_chan_free(r->ch[0]), 0);
        assert_int_equal(ringo_chan_free(r->ch[1]), 0);
    }
    tu_watchdog_disarm();
    selrace_free(r);
}

struct selfpair {
    ringo_chan *c;
    int out, in;
    int ret;
    struct ringo_waitgroup *wg;
};
static void send_or_recv_same_chan(void *p)
{
    struct selfpair *s = p;
    struct ringo_case cs[] = { { s->c, RINGO_SEND, &s->out, 99 }, { s->c, RINGO_RECV, &s->in, 99 } };
    s->ret = ringo_select(cs, 2, -1);
    ringo_wg_done(s->wg);
}

/* A select with a send and a receive case on the same unbuffered channel never matches itself;
 * two such selects match each other: one sends, the other receives. */
static void test_select_never_matches_itself(void **state)
{
    (void)state;
    ringo_chan *c = ringo_chan_make(sizeof(int), 0);
    int out = 1, in = 0;
    struct ringo_case cs[] = { { c, RINGO_SEND, &out, 99 }, { c, RINGO_RECV, &in, 99 } };
    assert_int_equal(ringo_select(cs, 2, 0), -EAGAIN);
    assert_int_equal(ringo_select(cs, 2, ms(20)), -ETIMEDOUT);
    assert_int_equal(in, 0);
    for (int kind = 0; kind < 2; kind++)
        for (int rep = 0; rep < 50; rep++) {
            struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
            struct selfpair a = { .c = c, .out = 10, .in = -1, .wg = &wg };
            struct selfpair b = { .c = c, .out = 20, .in = -1, .wg = &wg };
            tu_watchdog_arm("two self-selects", 20);
            ringo_wg_add(&wg, 2);
            spawn(kind, send_or_recv_same_chan, &a);
            spawn(!kind, send_or_recv_same_chan, &b);
            ringo_wg_wait(&wg);
            tu_watchdog_disarm();
            if (!((a.ret == 0 && b.ret == 1 && b.in == 10 && a.in == -1) ||
                  (a.ret == 1 && b.ret == 0 && a.in == 20 && b.in == -1)))
                fail_msg("two [send c, recv c] selects: a returned %d (in %d), b returned %d (in %d)", a.ret, a.in,
                         b.ret, b.in);
        }
    assert_int_equal(ringo_chan_free(c), 0);
}

/* The same channel in several cases, and many cases (past any small fixed-size array): still
 * exactly one case proceeds, no value is taken twice, and nothing stays queued. */
struct many {
    struct ringo_case cs[130];
    int vals[130];
    int ret;
    struct ringo_waitgroup *wg;
};
static void many_waiter(void *p)
{
    struct many *m = p;
    m->ret = ringo_select(m->cs, 130, -1);
    ringo_wg_done(m->wg);
}

static void test_select_same_channel_twice_and_many_cases(void **state)
{
    (void)state;
    /* ready: one value, two cases on it */
    ringo_chan *a = ringo_chan_make(sizeof(int), 2);
    int v = 5, x = 0, y = 0;
    struct ringo_case two[] = { { a, RINGO_RECV, &x, 99 }, { a, RINGO_RECV, &y, 99 } };
    long hits[2] = { 0, 0 };
    for (int i = 0; i < 2000; i++) {
        x = y = 0;
        assert_int_equal(ringo_chan_send(a, &v), 0);
        int k = ringo_select(two, 2, -1);
        assert_true(k == 0 || k == 1);
        hits[k]++;
        assert_int_equal(k == 0 ? x : y, 5);
        assert_int_equal(k == 0 ? y : x, 0);
        assert_int_equal(ringo_chan_len(a), 0);
    }
    assert_true(hits[0] > 800 && hits[1] > 800);
    assert_int_equal(ringo_chan_free(a), 0);

    /* waiting: 130 cases over 65 unbuffered channels (each twice: recv and send) and NULLs */
    for (int kind = 0; kind < 2; kind++) {
        ringo_chan *ch[65];
        for (int i = 0; i < 65; i++)
            ch[i] = ringo_chan_make(sizeof(int), 0);
        struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
        static struct many m;
        m.wg = &wg;
        for (int i = 0; i < 130; i++) {
            m.vals[i] = 1000 + i;
            m.cs[i] = (struct ringo_case){ i % 13 == 12 ? NULL : ch[i / 2], (i & 1) ? RINGO_SEND : RINGO_RECV,
                                           &m.vals[i], 99 };
        }
        tu_watchdog_arm("many cases", 20);
        ringo_wg_add(&wg, 1);
        spawn(kind, many_waiter, &m);
        wait_blocked("select", 1);
        int got = 0;
        assert_int_equal(ringo_chan_recv(ch[40], &got), 1); /* the send case at index 81 */
        ringo_wg_wait(&wg);
        tu_watchdog_disarm();
        assert_int_equal(m.ret, 81);
        assert_int_equal(got, 1081);
        assert_int_equal(m.cs[81].result, 0);
        for (int i = 0; i < 65; i++) { /* withdrawn everywhere */
            assert_int_equal(ringo_chan_try_send(ch[i], &v), -EAGAIN);
            assert_int_equal(ringo_chan_try_recv(ch[i], &x), -EAGAIN);
            assert_int_equal(ringo_chan_free(ch[i]), 0);
        }
    }
}

/* ------------------------------------------------------------------ a blocked select's choice */

/* Go's TestPseudoRandomSend and libmill's "random when nothing is ready": a select whose cases
 * are all on one channel blocks first, then a partner arrives; which case the partner completes
 * must be uniformly random, as among ready cases. The partner waits until the select is blocked
 * (ringo_dump) before each operation, so every round tests the blocked path. */
#define RSEL_ROUNDS 100
struct rsel {
    ringo_chan *c;
    int op;                   /* the op of both select cases */
    int pick[RSEL_ROUNDS];    /* the case the select returned */
    int got[RSEL_ROUNDS];     /* send cases: what the partner received; recv cases: what the select got */
};
#define RSEL_FILL 100 /* send cases on a buffered channel: the value that keeps it full */
static void rsel_selector(void *p)
{
    struct rsel *r = p;
    for (int round = 0; round < RSEL_ROUNDS; round++) {
        int fill = RSEL_FILL, v[2] = { 0, 1 }, x[2] = { -1, -1 };
        if (r->op == RINGO_SEND && ringo_chan_cap(r->c))
            CHECK(ringo_chan_send(r->c, &fill) == 0); /* full: the send cases block */
        struct ringo_case cs[] = { { r->c, r->op, r->op == RINGO_SEND ? &v[0] : &x[0], 99 },
                                   { r->c, r->op, r->op == RINGO_SEND ? &v[1] : &x[1], 99 } };
        int k = ringo_select(cs, 2, -1);
        CHECK(k == 0 || k == 1);
        if (k != 0 && k != 1)
            k = 0;
        r->pick[round] = k;
        CHECK(cs[k].result == (r->op == RINGO_SEND ? 0 : 1));
        CHECK(cs[!k].result == 99);
        if (r->op == RINGO_RECV) {
            CHECK(x[!k] == -1); /* the other case wrote nothing */
            r->got[round] = x[k];
        }
    }
}
static void rsel_partner(void *p)
{
    struct rsel *r = p;
    for (int round = 0; round < RSEL_ROUNDS; round++) {
        /* after our last operation returned the select was readied: a [select] now is this round's */
        CHECK(blocked_soon("select", 1));
        if (r->op == RINGO_SEND) {
            int x = -1;
            if (ringo_chan_cap(r->c)) {
                CHECK(ringo_chan_recv(r->c, &x) == 1); /* makes room: the select's value goes in */
                CHECK(x == RSEL_FILL);
            }
            CHECK(ringo_chan_recv(r->c, &x) == 1);
            r->got[round] = x;
        } else {
            int v = 1000 + round;
            CHECK(ringo_chan_send(r->c, &v) == 0);
        }
    }
}
struct rsel_arg {
    struct rsel *r;
    void (*fn)(void *);
    struct ringo_waitgroup *wg;
};
static void rsel_run(void *p)
{
    struct rsel_arg *a = p;
    a->fn(a->r);
    ringo_wg_done(a->wg);
}

static void test_select_blocked_select_choice_is_random(void **state)
{
    (void)state;
    static const int ops[] = { RINGO_SEND, RINGO_RECV };
    int unfair = 0;
    tu_watchdog_arm("blocked select's choice", 60);
    for (int sel_kind = 0; sel_kind < 2; sel_kind++) /* the select on this thread, or in a goroutine */
        for (size_t o = 0; o < 2; o++)
            for (size_t cap = 0; cap < 2; cap++) {
                static struct rsel r;
                memset(&r, 0, sizeof r);
                r.c = ringo_chan_make(sizeof(int), cap);
                r.op = ops[o];
                struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
                struct rsel_arg a = { &r, sel_kind ? rsel_selector : rsel_partner, &wg };
                ringo_wg_add(&wg, 1);
                spawn(G, rsel_run, &a); /* the other side in a goroutine */
                (sel_kind ? rsel_partner : rsel_selector)(&r);
                ringo_wg_wait(&wg);
                assert_int_equal(atomic_load(&bad), 0);
                int hits[2] = { 0, 0 };
                for (int i = 0; i < RSEL_ROUNDS; i++) {
                    hits[r.pick[i]]++;
                    int want = r.op == RINGO_SEND ? r.pick[i] : 1000 + i;
                    if (r.got[i] != want)
                        fail_msg("round %d: select returned case %d, value %d went through (want %d)", i,
                                 r.pick[i], r.got[i], want);
                }
                char seq[RSEL_ROUNDS + 1];
                for (int i = 0; i < RSEL_ROUNDS; i++)
                    seq[i] = (char)('0' + r.pick[i]);
                seq[RSEL_ROUNDS] = 0;
                printf("# select in %s, two %s cases, cap %zu: case 0 %d, case 1 %d: %s\n",
                       sel_kind ? "a goroutine" : "a plain thread", r.op == RINGO_SEND ? "send" : "recv", cap,
                       hits[0], hits[1], seq);
                /* each case more than a tenth of the rounds (Go's threshold): a fair choice fails
                 * that with probability 3e-17 */
                if (hits[0] <= RSEL_ROUNDS / 10 || hits[1] <= RSEL_ROUNDS / 10) {
                    printf("# not random: select in %s blocked first with two %s cases on one channel (cap %zu)\n",
                           sel_kind ? "a goroutine" : "a plain thread", r.op == RINGO_SEND ? "send" : "recv", cap);
                    unfair++;
                }
                assert_int_equal(ringo_chan_free(r.c), 0);
            }
    tu_watchdog_disarm();
    if (unfair) /* after every configuration ran: the report shows all of them */
        fail_msg("%d of 8 configurations: one case won all but a tenth of %d rounds", unfair, RSEL_ROUNDS);
}

/* ------------------------------------------------------------------ the lock-free first pass */

/* The first pass (select.c S2) takes a buffered case without a lock, and must not prefer it
 * over a ready case only the locked path can take. Ready cases of every kind at once, each
 * kept ready; over 2,000 selects each kind must come up about 1/N of the time. A first pass
 * that skipped what it cannot do lock-free would never (or hardly ever) return the closed
 * cases, nor the full channel whose sender is parked (its pop is refused: DIVERT). */
struct feeder {
    ringo_chan *c;
    struct ringo_waitgroup *wg;
};
static void feed_until_closed(void *p)
{
    struct feeder *f = p;
    int v = 0;
    while (ringo_chan_send(f->c, &v) == 0)
        v++;
    ringo_wg_done(f->wg);
}

#define FAIR_ROUNDS 2000
static void check_spread(const char *what, const long *hits, int n, long rounds)
{
    double want = (double)rounds / n;
    print_message("# %s:", what);
    for (int i = 0; i < n; i++)
        print_message(" %ld", hits[i]);
    print_message("\n");
    for (int i = 0; i < n; i++)
        if (hits[i] < 0.6 * want || hits[i] > 1.4 * want)
            fail_msg("%s: case %d chosen %ld of %ld times (want %.0f +- 40 %%)", what, i, hits[i], rounds, want);
}

static void test_select_first_pass_keeps_every_ready_case_fair(void **state)
{
    (void)state;
    /* 1. six ready buffered cases, all within the first pass: its walk is the random order */
    {
        ringo_chan *ch[6];
        int v = 3, x[6];
        struct ringo_case cs[6];
        for (int i = 0; i < 6; i++) {
            ch[i] = ringo_chan_make(sizeof(int), 4);
            for (int k = 0; k < 2; k++)
                assert_int_equal(ringo_chan_send(ch[i], &v), 0);
            cs[i] = (struct ringo_case){ ch[i], i & 1 ? RINGO_SEND : RINGO_RECV, i & 1 ? &v : &x[i], 99 };
        }
        long hits[6] = { 0 };
        for (long r = 0; r < FAIR_ROUNDS; r++) {
            int k = ringo_select(cs, 6, r & 1 ? 0 : -1);
            assert_true(k >= 0 && k < 6);
            assert_int_equal(cs[k].result, k & 1 ? 0 : 1);
            hits[k]++;
            for (int i = 0; i < 6; i++) /* exactly one case proceeded */
                if (ringo_chan_len(ch[i]) != (i != k ? 2u : k & 1 ? 3u : 1u))
                    fail_msg("round %ld: case %d returned, channel %d holds %zu", r, k, i, ringo_chan_len(ch[i]));
            if (k & 1) /* ready again */
                assert_int_equal(ringo_chan_recv(ch[k], NULL), 1);
            else
                assert_int_equal(ringo_chan_send(ch[k], &v), 0);
        }
        check_spread("six buffered cases", hits, 6, FAIR_ROUNDS);
        for (int i = 0; i < 6; i++)
            assert_int_equal(ringo_chan_free(ch[i]), 0);
    }

    /* 2. six kinds of ready case, and a nil one (never) */
    ringo_chan *r = ringo_chan_make(sizeof(int), 4);  /* 0 recv: holds 2, fast pop */
    ringo_chan *s = ringo_chan_make(sizeof(int), 4);  /* 1 send: holds 2, fast push */
    ringo_chan *cb = ringo_chan_make(sizeof(int), 4); /* 2 recv: closed and drained: locked path */
    ringo_chan *cu = ringo_chan_make(sizeof(int), 0); /* 3 recv: unbuffered, closed: locked path */
    ringo_chan *f = ringo_chan_make(sizeof(int), 1);  /* 4 recv: full, its sender parked: DIVERT */
    ringo_chan *cs2 = ringo_chan_make(sizeof(int), 4); /* 5 send: closed, -EPIPE from the push */
    int v = 7, x[7] = { 0 };
    for (int k = 0; k < 2; k++) {
        assert_int_equal(ringo_chan_send(r, &v), 0);
        assert_int_equal(ringo_chan_send(s, &v), 0);
    }
    assert_int_equal(ringo_chan_close(cb), 0);
    assert_int_equal(ringo_chan_close(cu), 0);
    assert_int_equal(ringo_chan_close(cs2), 0);
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    struct feeder fd = { f, &wg };
    tu_watchdog_arm("first pass fairness", 60);
    ringo_wg_add(&wg, 1);
    spawn(G, feed_until_closed, &fd);
    wait_blocked("chan send", 1); /* f is full and its sender parked */
    struct ringo_case cs[] = {
        { r, RINGO_RECV, &x[0], 99 },  { s, RINGO_SEND, &v, 99 },    { cb, RINGO_RECV, &x[2], 99 },
        { cu, RINGO_RECV, &x[3], 99 }, { f, RINGO_RECV, &x[4], 99 }, { cs2, RINGO_SEND, &v, 99 },
        { NULL, RINGO_RECV, &x[6], 99 },
    };
    static const int want_res[] = { 1, 0, 0, 0, 1, -EPIPE };
    long hits[6] = { 0 };
    int next_fed = 0;
    for (long round = 0; round < FAIR_ROUNDS; round++) {
        x[2] = x[3] = 5;
        int k = ringo_select(cs, 7, round & 1 ? 0 : -1);
        if (k < 0 || k > 5) {
            fail_msg("round %ld: select returned %d", round, k);
            return;
        }
        if (cs[k].result != want_res[k])
            fail_msg("round %ld: case %d result %d, want %d", round, k, cs[k].result, want_res[k]);
        hits[k]++;
        switch (k) {
        case 0: /* ready again */
            assert_int_equal(ringo_chan_send(r, &v), 0);
            break;
        case 1:
            assert_int_equal(ringo_chan_recv(s, NULL), 1);
            break;
        case 2:
        case 3:
            assert_int_equal(x[k], 0); /* closed: the zero value */
            break;
        case 4:
            assert_int_equal(x[4], next_fed++); /* the feeder's values in order */
            for (int spin = 0; ringo_chan_len(f) != 1; spin++) /* full again */
                sched_yield();
            break;
        }
    }
    assert_int_equal(x[6], 0); /* the nil case never wrote */
    assert_int_equal(ringo_chan_close(f), 0);
    ringo_wg_wait(&wg);
    tu_watchdog_disarm();
    check_spread("six kinds of ready case", hits, 6, FAIR_ROUNDS);
    assert_int_equal(ringo_chan_len(r), 2);
    assert_int_equal(ringo_chan_len(s), 2);
    ringo_chan *all[] = { r, s, cb, cu, f, cs2 };
    for (int i = 0; i < 6; i++)
        assert_int_equal(ringo_chan_free(all[i]), 0);
}

/* Exactly once through the first pass, under contention: 4 buffered channels (caps 1, 2, 8,
 * 64), 2 producers per channel (one ringo_chan_send, one select-send whose other case is never
 * ready; some of its selects poll first), 4 consumers selecting over all four channels (half of
 * their selects poll), in a child with 2 workers. Every value is received exactly once (a seen
 * count per value, the count and the sum), FIFO per producer; each channel is closed by the
 * last of its producers, a closed case becomes nil. A first pass that broke C3 would hang
 * (watchdog), one that broke C1 would lose or duplicate values. */
#define FP_NCH 4
#define FP_NPROD (2 * FP_NCH)
#define FP_NCONS 4
struct fpstress {
    ringo_chan *ch[FP_NCH];
    ringo_chan *idle;             /* never sent to: a case that is never ready */
    uint64_t per;
    atomic_uchar *seen[FP_NPROD];
    atomic_int left[FP_NCH];
    atomic_ulong count, sum;
    atomic_long polls_empty;      /* polling selects that found nothing (-EAGAIN) */
    atomic_int next_prod, next_cons;
    struct ringo_waitgroup wg;
};
static void fp_producer(void *p)
{
    struct fpstress *s = p;
    int id = atomic_fetch_add(&s->next_prod, 1), ci = id / 2;
    int idle_x;
    uint64_t v;
    struct ringo_case cs[] = { { s->idle, RINGO_RECV, &idle_x, 99 }, { s->ch[ci], RINGO_SEND, &v, 99 } };
    for (uint64_t i = 0; i < s->per; i++) {
        v = ((uint64_t)id << 32) | i;
        if (!(id & 1)) {
            CHECK(ringo_chan_send(s->ch[ci], &v) == 0);
            continue;
        }
        int k = (i & 3) == 0 ? ringo_select(cs, 2, 0) : -EAGAIN;
        if (k == -EAGAIN)
            k = ringo_select(cs, 2, -1);
        CHECK(k == 1 && cs[1].result == 0);
    }
    if (atomic_fetch_sub(&s->left[ci], 1) == 1)
        CHECK(ringo_chan_close(s->ch[ci]) == 0);
    ringo_wg_done(&s->wg);
}
static void fp_consumer(void *p)
{
    struct fpstress *s = p;
    int me = atomic_fetch_add(&s->next_cons, 1);
    int64_t last[FP_NPROD];
    for (int i = 0; i < FP_NPROD; i++)
        last[i] = -1;
    uint64_t v[FP_NCH], count = 0, sum = 0;
    struct ringo_case cs[FP_NCH];
    for (int i = 0; i < FP_NCH; i++)
        cs[i] = (struct ringo_case){ s->ch[i], RINGO_RECV, &v[i], 99 };
    int open = FP_NCH;
    for (uint64_t n = 0; open > 0; n++) {
        int k = ringo_select(cs, FP_NCH, (me & 1) && (n & 1) ? 0 : -1);
        if (k == -EAGAIN) {
            atomic_fetch_add_explicit(&s->polls_empty, 1, memory_order_relaxed);
            ringo_yield();
            continue;
        }
        CHECK(k >= 0 && k < FP_NCH);
        if (k < 0 || k >= FP_NCH)
            break;
        if (cs[k].result == 0) {
            CHECK(v[k] == 0);
            cs[k].chan = NULL;
            open--;
            continue;
        }
        CHECK(cs[k].result == 1);
        uint32_t id = (uint32_t)(v[k] >> 32), seq = (uint32_t)v[k];
        CHECK(id < FP_NPROD && seq < s->per && (int)id / 2 == k);
        if (id >= FP_NPROD || seq >= s->per)
            continue;
        CHECK((int64_t)seq > last[id]); /* FIFO per producer */
        last[id] = seq;
        atomic_fetch_add_explicit(&s->seen[id][seq], 1, memory_order_relaxed);
        count++;
        sum += v[k];
    }
    atomic_fetch_add(&s->count, count);
    atomic_fetch_add(&s->sum, sum);
    ringo_wg_done(&s->wg);
}
static int child_fast_pass_stress(void)
{
    static const size_t caps[FP_NCH] = { 1, 2, 8, 64 };
    struct fpstress *s = calloc(1, sizeof *s);
    if (!s)
        return 2;
    s->per = (uint64_t)(20000 * tu_scale());
    for (int i = 0; i < FP_NCH; i++) {
        s->ch[i] = ringo_chan_make(sizeof(uint64_t), caps[i]);
        atomic_store(&s->left[i], 2);
    }
    s->idle = ringo_chan_make(sizeof(int), 1);
    for (int p = 0; p < FP_NPROD; p++)
        s->seen[p] = calloc(s->per, 1);
    tu_watchdog_arm("first-pass stress", 120);
    ringo_wg_add(&s->wg, FP_NPROD + FP_NCONS);
    for (int i = 0; i < FP_NCONS; i++)
        if (ringo_go(fp_consumer, s) <= 0)
            return 3;
    for (int i = 0; i < FP_NPROD; i++)
        if (ringo_go(fp_producer, s) <= 0)
            return 3;
    ringo_wg_wait(&s->wg);
    tu_watchdog_disarm();
    uint64_t want_n = 0, want_sum = 0, wrong = 0;
    for (uint64_t p = 0; p < FP_NPROD; p++)
        for (uint64_t i = 0; i < s->per; i++) {
            want_n++;
            want_sum += (p << 32) | i;
            unsigned got = atomic_load(&s->seen[p][i]);
            if (got != 1 && wrong++ < 10)
                printf("# value %llu/%llu received %u times\n", (unsigned long long)p, (unsigned long long)i, got);
        }
    printf("# %llu values, %llu received, %ld empty polls, %d CHECK failures\n", (unsigned long long)want_n,
           (unsigned long long)atomic_load(&s->count), atomic_load(&s->polls_empty), atomic_load(&bad));
    int ok = !wrong && atomic_load(&s->count) == want_n && atomic_load(&s->sum) == want_sum && !atomic_load(&bad);
    for (int i = 0; i < FP_NCH; i++)
        if (ringo_chan_free(s->ch[i]) != 0)
            ok = 0;
    if (ringo_chan_free(s->idle) != 0)
        ok = 0;
    for (int p = 0; p < FP_NPROD; p++)
        free(s->seen[p]);
    free(s);
    return ok ? 0 : 1;
}

static void test_select_first_pass_exactly_once_under_contention(void **state)
{
    (void)state;
    static struct child_result r;
    const char *env[] = { "RINGO_PROCS=2", NULL };
    tu_run_child("fast_pass_stress", env, 150, &r);
    print_message("%s", r.out);
    if (!r.exited || r.code != 0)
        fail_msg("child exited %d code %d signal %d", r.exited, r.code, r.signo);
}

/* ------------------------------------------------------------------ a fresh choice per process */

#define NCHOICES 64
/* Child: NCHOICES selects from main (a plain thread, no goroutine ever) between two ready
 * cases; prints the cases chosen. */
static int child_select_choices_from_main(void)
{
    ringo_chan *ch[2] = { ringo_chan_make(sizeof(int), 1), ringo_chan_make(sizeof(int), 1) };
    int v = 0, x[2];
    if (ringo_chan_send(ch[0], &v) != 0 || ringo_chan_send(ch[1], &v) != 0)
        return 3;
    struct ringo_case cs[] = { { ch[0], RINGO_RECV, &x[0], 99 }, { ch[1], RINGO_RECV, &x[1], 99 } };
    char seq[NCHOICES + 1];
    for (int i = 0; i < NCHOICES; i++) {
        int k = ringo_select(cs, 2, 0);
        if (k != 0 && k != 1)
            return 4;
        seq[i] = (char)('0' + k);
        if (ringo_chan_send(ch[k], &v) != 0) /* ready again */
            return 5;
    }
    seq[NCHOICES] = 0;
    printf("choices=%s\n", seq);
    int x0;
    for (int k = 0; k < 2; k++) /* empty and free them: LeakSanitizer fails a child that leaks */
        if (ringo_chan_try_recv(ch[k], &x0) != 1 || ringo_chan_free(ch[k]) != 0)
            return 6;
    return 0;
}

/* The random choice is seeded per process: two runs of the same program choose differently. */
static void test_select_choices_differ_between_processes(void **state)
{
    (void)state;
    static struct child_result r[2];
    char seq[2][NCHOICES + 1];
    for (int run = 0; run < 2; run++) {
        tu_run_child("select_choices_from_main", NULL, 30, &r[run]);
        if (!r[run].exited || r[run].code != 0)
            fail_msg("run %d: child exited %d code %d signal %d: %s", run, r[run].exited, r[run].code,
                     r[run].signo, r[run].out);
        const char *p = strstr(r[run].out, "choices=");
        if (!p || sscanf(p, "choices=%64[01]", seq[run]) != 1 || strlen(seq[run]) != NCHOICES)
            fail_msg("run %d: no choices in the output: %s", run, r[run].out);
        printf("# run %d: %s\n", run, seq[run]);
    }
    /* two independent seeds give the same 64 fair choices with probability 2^-64 */
    if (strcmp(seq[0], seq[1]) == 0)
        fail_msg("two processes chose the same %d cases: %s", NCHOICES, seq[0]);
}

static const struct child_scenario child_scenarios[] = {
    { "select_choices_from_main", child_select_choices_from_main },
    { "fast_pass_stress", child_fast_pass_stress },
    { NULL, NULL },
};

int main(int argc, char **argv)
{
    tu_maybe_child(argc, argv, child_scenarios);
    const struct CMUnitTest tests[] = {
        T(test_select_recv_case_takes_a_ready_value),
        T(test_select_unbuffered_cases_meet_a_blocked_partner),
        T(test_select_send_case_delivers_when_there_is_room),
        T(test_select_null_channel_cases_never_proceed),
        T(test_select_timeout_zero_is_go_default),
        T(test_select_finite_timeout_is_not_early_and_close_to_deadline),
        T(test_select_no_cases),
        T(test_select_bad_arguments_are_einval),
        T(test_select_exactly_one_case_proceeds),
        T(test_select_choice_among_ready_cases_is_fair),
        T(test_select_waiting_recv_woken_by_first_ready_and_withdrawn),
        T(test_select_waiting_send_woken_by_first_ready_and_withdrawn),
        T(test_select_on_closed_channels),
        T(test_select_waiting_select_woken_by_close),
        T(test_select_races_with_close),
        T(test_select_selects_on_both_sides),
        T(test_select_never_matches_itself),
        T(test_select_same_channel_twice_and_many_cases),
        T(test_select_blocked_select_choice_is_random),
        T(test_select_choices_differ_between_processes),
        T(test_select_first_pass_keeps_every_ready_case_fair),
        T(test_select_first_pass_exactly_once_under_contention),
    };
    if (getenv("RINGO_TEST_FILTER"))
        cmocka_set_test_filter(getenv("RINGO_TEST_FILTER"));
    return TU_RUN_GROUP("select", tests, NULL, NULL);
}
