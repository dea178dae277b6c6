/* tests/test_group.c — groups: wait for members, cancel them in every kind of wait, nesting,
 * inheritance, bad input; no value lost to a cancel (counted and checksummed stresses).
 * Runs on the default backend and, through group_nouring.sh, with RINGO_DISABLE=io_uring. */
#include <ringo.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "tests/testutil.h"

#define SEC 1000000000LL

/* Poll ringo_dump until goroutine id shows as waiting for `reason` (bounded: 10 s). */
static void wait_parked(int64_t id, const char *reason)
{
    char want[96];
    snprintf(want, sizeof want, "goroutine %lld [%s", (long long)id, reason);
    for (int i = 0; i < 10000; i++) {
        char *d = tu_dump_string();
        bool found = strstr(d, want) != NULL;
        free(d);
        if (found)
            return;
        usleep(1000);
    }
    fail_msg("goroutine %lld never parked in '%s'", (long long)id, reason);
}

/* ---------------------------------------------------------------- wait, bad input */

static atomic_long ran;
static void count_and_sleep(void *p)
{
    ringo_sleep((int64_t)(intptr_t)p);
    atomic_fetch_add(&ran, 1);
}

static void test_group_wait_for_members(void **state)
{
    (void)state;
    atomic_store(&ran, 0);
    ringo_group *g = ringo_group_make();
    assert_non_null(g);
    assert_int_equal(ringo_group_wait(g, -1), 0); /* empty: at once */
    for (int i = 0; i < 100; i++)
        assert_true(ringo_group_go(g, count_and_sleep, (void *)(intptr_t)(i % 10 * 100000)) > 0);
    assert_int_equal(ringo_group_wait(g, ringo_now() + 30 * SEC), 0);
    assert_int_equal(atomic_load(&ran), 100);
    assert_int_equal(ringo_group_free(g), 0);
}

static void test_group_bad_input_and_busy(void **state)
{
    (void)state;
    assert_int_equal(ringo_group_go(NULL, count_and_sleep, NULL), -EINVAL);
    assert_int_equal(ringo_group_wait(NULL, -1), -EINVAL);
    assert_int_equal(ringo_group_cancel(NULL), -EINVAL);
    assert_int_equal(ringo_group_free(NULL), -EINVAL);
    assert_int_equal(ringo_canceled(), 0); /* a plain thread */
    ringo_group *g = ringo_group_make();
    assert_int_equal(ringo_group_go(g, NULL, NULL), -EINVAL);
    atomic_store(&ran, 0);
    assert_true(ringo_group_go(g, count_and_sleep, (void *)(intptr_t)(300 * 1000000LL)) > 0);
    assert_int_equal(ringo_group_wait(g, 0), -ETIMEDOUT);                          /* no wait */
    assert_int_equal(ringo_group_wait(g, ringo_now() + 20000000), -ETIMEDOUT);     /* 20 ms */
    assert_int_equal(ringo_group_free(g), -EBUSY); /* a member is alive: nothing freed */
    assert_int_equal(ringo_group_wait(g, ringo_now() + 30 * SEC), 0);
    assert_int_equal(atomic_load(&ran), 1);
    assert_int_equal(ringo_group_free(g), 0);
}

static atomic_int self_wait_rc;
static void waits_for_own_group(void *p)
{
    atomic_store(&self_wait_rc, ringo_group_wait(p, -1));
}

static void test_group_member_waiting_for_its_group_is_refused(void **state)
{
    (void)state;
    ringo_group *g = ringo_group_make();
    atomic_store(&self_wait_rc, 1);
    ringo_group_go(g, waits_for_own_group, g);
    assert_int_equal(ringo_group_wait(g, ringo_now() + 30 * SEC), 0);
    assert_int_equal(atomic_load(&self_wait_rc), -EDEADLK);
    assert_int_equal(ringo_group_free(g), 0);
}

/* ---------------------------------------------------------------- cancel ends every wait */

enum wait_kind { K_RECV, K_SEND, K_BUF_RECV, K_SELECT, K_SELECT_TIMEOUT, K_RECV_UNTIL, K_SLEEP,
                 K_READ, K_POLL, K_ACCEPT, K_RECV_LEND, K_GROUP_WAIT, K_COND, K_SEM, K_COUNT };
static const char *const kind_reason[K_COUNT] = {
    "chan receive", "chan send", "chan receive", "select", "select", "chan receive", "sleep",
    "IO wait", "IO wait", "IO wait", "IO wait", "group wait", "sync.Cond.Wait", "semaphore.Acquire",
};

struct env {
    ringo_chan *unbuf, *buf, *other, *sendc;
    int pipe_r, lsock, sock_a;
    ringo_group *inner; /* K_GROUP_WAIT waits for it (it has a sleeper) */
    struct ringo_mutex m;
    struct ringo_cond cond;
    struct ringo_sem sem; /* size 1, held by the test: an acquire waits */
};
static struct env E;
static atomic_int rc_of[K_COUNT];
static atomic_int later_rc[K_COUNT];

static int do_wait(int k)
{
    int v = 0;
    char b[16];
    void *lent = NULL;
    struct ringo_case cs[2] = { { .chan = E.unbuf, .op = RINGO_RECV, .elem = &v },
                                { .chan = E.other, .op = RINGO_RECV, .elem = &v } };
    switch (k) {
    case K_RECV: return ringo_chan_recv(E.unbuf, &v);
    case K_SEND: return ringo_chan_send(E.sendc, &v);
    case K_BUF_RECV: return ringo_chan_recv(E.buf, &v);
    case K_SELECT: return ringo_select(cs, 2, -1);
    case K_SELECT_TIMEOUT: return ringo_select(cs, 2, 60 * SEC);
    case K_RECV_UNTIL: return ringo_chan_recv_until(E.unbuf, &v, ringo_now() + 60 * SEC);
    case K_SLEEP: return ringo_sleep(60 * SEC);
    case K_READ: return (int)ringo_read(E.pipe_r, b, sizeof b, -1);
    case K_POLL: return ringo_poll(E.pipe_r, POLLIN, ringo_now() + 60 * SEC);
    case K_ACCEPT: return ringo_accept(E.lsock, NULL, NULL, -1);
    case K_RECV_LEND: {
        ssize_t r = ringo_recv_lend(E.sock_a, &lent, 0, -1);
        if (r > 0)
            ringo_buf_release(lent);
        return (int)r;
    }
    case K_GROUP_WAIT: return ringo_group_wait(E.inner, -1);
    case K_COND: {
        ringo_mutex_lock(&E.m);
        int r = ringo_cond_wait(&E.cond, &E.m); /* the mutex is held again either way */
        ringo_mutex_unlock(&E.m);
        return r;
    }
    case K_SEM: return ringo_sem_acquire(&E.sem, 1, -1);
    }
    return 1;
}

static void waiter(void *p)
{
    int k = (int)(intptr_t)p;
    atomic_store(&rc_of[k], do_wait(k));
    atomic_store(&later_rc[k], do_wait(k)); /* every later call: -ECANCELED at once */
}

static void long_sleeper(void *p) { (void)p; ringo_sleep(60 * SEC); }

static void test_group_cancel_ends_every_kind_of_wait(void **state)
{
    (void)state;
    int p[2], sv[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    E.unbuf = ringo_chan_make(sizeof(int), 0);
    E.buf = ringo_chan_make(sizeof(int), 4);
    E.other = ringo_chan_make(sizeof(int), 0);
    E.sendc = ringo_chan_make(sizeof(int), 0);
    E.pipe_r = p[0];
    E.lsock = ringo_tcp_listen("127.0.0.1", 0, 16);
    E.sock_a = sv[0];
    assert_true(E.lsock >= 0);
    E.inner = ringo_group_make(); /* not nested: made by a plain thread */
    memset(&E.m, 0, sizeof E.m);
    memset(&E.cond, 0, sizeof E.cond);
    assert_int_equal(ringo_sem_init(&E.sem, 1), 0);
    assert_int_equal(ringo_sem_try_acquire(&E.sem, 1), 0); /* held: K_SEM waits */
    ringo_group_go(E.inner, long_sleeper, NULL);

    ringo_group *g = ringo_group_make();
    int64_t ids[K_COUNT];
    tu_watchdog_arm("cancel every kind of wait", 60);
    for (int k = 0; k < K_COUNT; k++) {
        atomic_store(&rc_of[k], 12345);
        ids[k] = ringo_group_go(g, waiter, (void *)(intptr_t)k);
        assert_true(ids[k] > 0);
    }
    for (int k = 0; k < K_COUNT; k++)
        wait_parked(ids[k], kind_reason[k]); /* the cancel ends a parked wait, not an entry check */
    assert_int_equal(ringo_group_cancel(g), 0);
    assert_int_equal(ringo_group_cancel(g), 0); /* idempotent */
    assert_int_equal(ringo_group_wait(g, ringo_now() + 30 * SEC), 0);
    for (int k = 0; k < K_COUNT; k++) {
        if (atomic_load(&rc_of[k]) != -ECANCELED || atomic_load(&later_rc[k]) != -ECANCELED)
            fail_msg("wait kind %d (%s): %d then %d, not -ECANCELED", k, kind_reason[k],
                     atomic_load(&rc_of[k]), atomic_load(&later_rc[k]));
    }
    /* nothing was consumed by the cancelled I/O: the data written now is all there */
    assert_int_equal(write(p[1], "abc", 3), 3);
    char b[8];
    assert_int_equal(ringo_read(p[0], b, sizeof b, ringo_now() + 5 * SEC), 3);
    assert_int_equal(write(sv[1], "xy", 2), 2);
    assert_int_equal(ringo_recv(sv[0], b, sizeof b, 0, ringo_now() + 5 * SEC), 2);
    /* the channels still work for everyone else (no stale waiter left queued) */
    int v = 7;
    assert_int_equal(ringo_chan_try_send(E.unbuf, &v), -EAGAIN);
    assert_int_equal(ringo_chan_send(E.buf, &v), 0);
    assert_int_equal(ringo_chan_recv(E.buf, &v), 1);
    /* the cancelled acquire took nothing: the semaphore is whole again after one release */
    assert_int_equal(ringo_sem_release(&E.sem, 1), 0);
    assert_int_equal(ringo_sem_try_acquire(&E.sem, 1), 0);
    assert_int_equal(ringo_sem_release(&E.sem, 1), 0);
    assert_int_equal(ringo_group_free(g), 0);
    assert_int_equal(ringo_group_cancel(E.inner), 0);
    assert_int_equal(ringo_group_wait(E.inner, ringo_now() + 30 * SEC), 0);
    tu_watchdog_disarm();
    assert_int_equal(ringo_group_free(E.inner), 0);
    ringo_chan_free(E.unbuf);
    ringo_chan_free(E.buf);
    ringo_chan_free(E.other);
    ringo_chan_free(E.sendc);
    ringo_close(E.lsock);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}

/* ---------------------------------------------------------------- inheritance and nesting */

static atomic_int child_rc, grandchild_rc, nested_rc, canceled_seen;
static ringo_chan *never;

static void grandchild(void *p)
{
    (void)p;
    atomic_store(&grandchild_rc, ringo_chan_recv(never, NULL));
}
static void child(void *p)
{
    (void)p;
    ringo_go(grandchild, NULL); /* a member's goroutine is a member */
    atomic_store(&child_rc, ringo_chan_recv(never, NULL));
}
static void nested_member(void *p)
{
    (void)p;
    atomic_store(&nested_rc, ringo_sleep(60 * SEC));
    atomic_store(&canceled_seen, ringo_canceled());
}
static ringo_group *nested;
static void maker(void *p)
{
    (void)p;
    nested = ringo_group_make(); /* nested in this member's group */
    ringo_group_go(nested, nested_member, NULL);
    ringo_go(child, NULL);
    ringo_group_wait(nested, -1); /* -ECANCELED when g is cancelled: the test waits for nested */
}

static void test_group_members_spawn_members_and_nested_groups_are_cancelled(void **state)
{
    (void)state;
    never = ringo_chan_make(0, 0);
    atomic_store(&child_rc, 1);
    atomic_store(&grandchild_rc, 1);
    atomic_store(&nested_rc, 1);
    ringo_group *g = ringo_group_make();
    tu_watchdog_arm("nested cancel", 60);
    ringo_group_go(g, maker, NULL);
    while (ringo_num_goroutines() < 4)
        usleep(1000);
    usleep(20000);
    /* the inner group cannot go while its member lives, and the outer one has a nested group */
    assert_int_equal(ringo_group_free(g), -EBUSY);
    assert_int_equal(ringo_group_cancel(g), 0);
    assert_int_equal(ringo_group_wait(g, ringo_now() + 30 * SEC), 0);
    assert_int_equal(ringo_group_wait(nested, ringo_now() + 30 * SEC), 0);
    tu_watchdog_disarm();
    assert_int_equal(atomic_load(&child_rc), -ECANCELED);
    assert_int_equal(atomic_load(&grandchild_rc), -ECANCELED); /* waited for by g's wait too */
    assert_int_equal(atomic_load(&nested_rc), -ECANCELED);
    assert_int_equal(atomic_load(&canceled_seen), 1);
    assert_int_equal(ringo_group_free(g), -EBUSY); /* the nested group still exists */
    assert_int_equal(ringo_group_free(nested), 0);
    assert_int_equal(ringo_group_free(g), 0);
    ringo_chan_free(never);
}

static atomic_int outer_rc;
static void inner_maker(void *p)
{
    nested = ringo_group_make();
    ringo_group_go(nested, nested_member, NULL);
    ringo_chan_send(p, NULL); /* tell the test the nested group exists */
    atomic_store(&outer_rc, ringo_sleep(200 * 1000000LL));
}

static void test_group_cancelling_a_nested_group_leaves_the_outer_alone(void **state)
{
    (void)state;
    ringo_chan *made = ringo_chan_make(0, 1);
    atomic_store(&outer_rc, 1);
    atomic_store(&nested_rc, 1);
    ringo_group *g = ringo_group_make();
    ringo_group_go(g, inner_maker, made);
    assert_int_equal(ringo_chan_recv(made, NULL), 1);
    assert_int_equal(ringo_group_cancel(nested), 0);
    assert_int_equal(ringo_group_wait(nested, ringo_now() + 30 * SEC), 0);
    assert_int_equal(atomic_load(&nested_rc), -ECANCELED);
    assert_int_equal(ringo_group_wait(g, ringo_now() + 30 * SEC), 0);
    assert_int_equal(atomic_load(&outer_rc), 0); /* slept its whole time */
    assert_int_equal(ringo_group_free(nested), 0);
    assert_int_equal(ringo_group_free(g), 0);
    ringo_chan_free(made);
}

/* A group made inside a cancelled group starts cancelled; ringo_group_go still starts members. */
static atomic_int late_rc, late_ran;
static void late_member(void *p)
{
    (void)p;
    atomic_store(&late_ran, 1);
    atomic_store(&late_rc, ringo_sleep(SEC));
}
static void makes_after_cancel(void *p)
{
    ringo_chan *go_on = p;
    ringo_chan_recv(go_on, NULL); /* -ECANCELED: the group was cancelled */
    ringo_group *n = ringo_group_make();
    ringo_group_go(n, late_member, NULL);
    ringo_group_wait(n, -1); /* -ECANCELED at once too, so wait by polling */
    while (ringo_group_free(n) == -EBUSY)
        ringo_yield();
}

static void test_group_made_inside_a_cancelled_group_starts_cancelled(void **state)
{
    (void)state;
    ringo_chan *go_on = ringo_chan_make(0, 0);
    atomic_store(&late_rc, 1);
    atomic_store(&late_ran, 0);
    ringo_group *g = ringo_group_make();
    assert_int_equal(ringo_group_cancel(g), 0); /* cancelled before any member */
    ringo_group_go(g, makes_after_cancel, go_on);
    assert_int_equal(ringo_group_wait(g, ringo_now() + 30 * SEC), 0);
    assert_int_equal(atomic_load(&late_ran), 1);
    assert_int_equal(atomic_load(&late_rc), -ECANCELED);
    assert_int_equal(ringo_group_free(g), 0);
    ringo_chan_free(go_on);
}

/* RINGO_GO_NO_GROUP: a member's goroutine that is not a member (not cancelled, not waited for). */
static atomic_int detached_rc, inherited_rc;
static ringo_chan *release_detached;
static void detached(void *p)
{
    (void)p;
    atomic_store(&detached_rc, ringo_chan_recv(release_detached, NULL));
}
static void inherited(void *p)
{
    (void)p;
    atomic_store(&inherited_rc, ringo_chan_recv(release_detached, NULL));
}
static void spawns_both(void *p)
{
    (void)p;
    struct ringo_go_opts o = { .flags = RINGO_GO_NO_GROUP, .name = "detached" };
    ringo_go_opts(detached, NULL, &o);
    ringo_go(inherited, NULL);
}

static void test_group_no_group_flag_leaves_the_group(void **state)
{
    (void)state;
    release_detached = ringo_chan_make(0, 0);
    atomic_store(&detached_rc, 7);
    atomic_store(&inherited_rc, 7);
    ringo_group *g = ringo_group_make();
    ringo_group_go(g, spawns_both, NULL);
    while (atomic_load(&inherited_rc) == 7) {
        usleep(1000);
        ringo_group_cancel(g); /* the inherited one returns -ECANCELED; the detached one waits on */
    }
    assert_int_equal(ringo_group_wait(g, ringo_now() + 30 * SEC), 0); /* not waiting for it */
    assert_int_equal(atomic_load(&inherited_rc), -ECANCELED);
    usleep(20000);
    assert_int_equal(atomic_load(&detached_rc), 7); /* still blocked: not cancelled */
    assert_int_equal(ringo_chan_close(release_detached), 0);
    while (atomic_load(&detached_rc) == 7)
        usleep(1000);
    assert_int_equal(atomic_load(&detached_rc), 0); /* the close woke it, not a cancel */
    assert_int_equal(ringo_group_free(g), 0);
    ringo_chan_free(release_detached);
}

/* ---------------------------------------------------------------- nothing lost, outsiders unharmed */

/* Non-member producers send 1..N on a channel; member consumers receive until cancelled at a
 * random moment; then the test drains the rest. Every value arrives exactly once: a cancelled
 * receive took nothing. The reverse with member senders: a send that returned 0 delivered its
 * value, one that returned -ECANCELED did not. */
#define NPROD 4
static ringo_chan *lc;
static long per_prod;
static atomic_long got_sum, got_n, sent_sum, sent_n;
static atomic_long bad_rc; /* results a member should never see (checked on the test's thread) */
static struct ringo_waitgroup prod_wg;

static void producer(void *p)
{
    long base = (long)(intptr_t)p * per_prod;
    for (long i = 1; i <= per_prod; i++) {
        long v = base + i;
        if (ringo_chan_send(lc, &v) != 0)
            break;
    }
    ringo_wg_done(&prod_wg);
}
static void consumer(void *p)
{
    (void)p;
    long v;
    int r;
    while ((r = ringo_chan_recv(lc, &v)) == 1) {
        atomic_fetch_add(&got_sum, v);
        atomic_fetch_add(&got_n, 1);
    }
    if (r != -ECANCELED)
        atomic_fetch_add(&bad_rc, 1);
}
static void member_sender(void *p)
{
    long base = (long)(intptr_t)p * per_prod;
    for (long i = 1; i <= per_prod; i++) {
        long v = base + i;
        int r = ringo_chan_send(lc, &v);
        if (r == -ECANCELED)
            return;
        if (r != 0) {
            atomic_fetch_add(&bad_rc, 1);
            return;
        }
        atomic_fetch_add(&sent_sum, v);
        atomic_fetch_add(&sent_n, 1);
    }
}

static void run_no_value_lost(size_t cap, unsigned seed)
{
    lc = ringo_chan_make(sizeof(long), cap);
    per_prod = (long)(20000 * tu_scale());
    atomic_store(&got_sum, 0);
    atomic_store(&got_n, 0);
    ringo_wg_add(&prod_wg, NPROD);
    ringo_group *g = ringo_group_make();
    for (int i = 0; i < 3; i++)
        ringo_group_go(g, consumer, NULL);
    for (int i = 0; i < NPROD; i++)
        ringo_go(producer, (void *)(intptr_t)i);
    usleep(1000 + rand_r(&seed) % 20000);
    ringo_group_cancel(g);
    assert_int_equal(ringo_group_wait(g, ringo_now() + 60 * SEC), 0);
    /* drain what the producers still send (they are not members: unharmed by the cancel) */
    long total = (long)NPROD * per_prod, expect_sum = 0;
    for (long i = 1; i <= total; i++)
        expect_sum += i;
    long v;
    while (atomic_load(&got_n) < total) {
        assert_int_equal(ringo_chan_recv(lc, &v), 1);
        atomic_fetch_add(&got_sum, v);
        atomic_fetch_add(&got_n, 1);
    }
    ringo_wg_wait(&prod_wg);
    assert_int_equal(ringo_chan_try_recv(lc, &v), -EAGAIN);
    assert_int_equal(atomic_load(&got_n), total);
    assert_int_equal(atomic_load(&got_sum), expect_sum);
    assert_int_equal(ringo_group_free(g), 0);

    /* member senders, outsider receiver */
    atomic_store(&sent_sum, 0);
    atomic_store(&sent_n, 0);
    g = ringo_group_make();
    for (int i = 0; i < NPROD; i++)
        ringo_group_go(g, member_sender, (void *)(intptr_t)i);
    long rsum = 0, rn = 0;
    int64_t stop = ringo_now() + 1000000 + rand_r(&seed) % 20000000;
    while (ringo_now() < stop && ringo_chan_recv_until(lc, &v, stop) == 1) {
        rsum += v;
        rn++;
    }
    ringo_group_cancel(g);
    assert_int_equal(ringo_group_wait(g, ringo_now() + 60 * SEC), 0);
    while (ringo_chan_try_recv(lc, &v) == 1) { /* buffered values of sends that returned 0 */
        rsum += v;
        rn++;
    }
    assert_int_equal(atomic_load(&bad_rc), 0);
    assert_int_equal(rn, atomic_load(&sent_n));
    assert_int_equal(rsum, atomic_load(&sent_sum));
    assert_int_equal(ringo_group_free(g), 0);
    ringo_chan_free(lc);
}

static void test_group_cancel_loses_no_value_unbuffered(void **state)
{
    (void)state;
    tu_watchdog_arm("no value lost (unbuffered)", 120);
    for (unsigned i = 0; i < 5; i++)
        run_no_value_lost(0, 1234 + i);
    tu_watchdog_disarm();
}

static void test_group_cancel_loses_no_value_buffered(void **state)
{
    (void)state;
    tu_watchdog_arm("no value lost (buffered)", 120);
    for (unsigned i = 0; i < 5; i++)
        run_no_value_lost(16, 4321 + i);
    tu_watchdog_disarm();
}

/* Many groups on both workers: members that sleep, select with short deadlines, read pipes
 * and spawn; each group cancelled at a random moment by a goroutine or a plain thread, waited
 * for and freed. Every member ran and returned (counted). */
static atomic_long members_started, members_done;
struct sgroup { ringo_group *g; int pfd[2]; unsigned seed; };

static void stress_member(void *p)
{
    struct sgroup *s = p;
    atomic_fetch_add(&members_started, 1);
    unsigned seed = s->seed ^ (unsigned)ringo_self();
    for (int i = 0; i < 50; i++) {
        int r;
        char b[4];
        switch (rand_r(&seed) % 4) {
        case 0: r = ringo_sleep(rand_r(&seed) % 200000); break;
        case 1: r = (int)ringo_read(s->pfd[0], b, sizeof b, ringo_now() + rand_r(&seed) % 300000); break;
        case 2: {
            struct ringo_case c = { .chan = NULL, .op = RINGO_RECV };
            r = ringo_select(&c, 1, rand_r(&seed) % 300000);
            break;
        }
        default:
            if (i < 3 && ringo_go(stress_member, s) > 0) /* a member of the same group */
                continue;
            r = 0;
        }
        if (r == -ECANCELED) {
            if (ringo_canceled() != 1)
                atomic_fetch_add(&bad_rc, 1);
            break;
        }
        if (r != 0 && r != -ETIMEDOUT)
            atomic_fetch_add(&bad_rc, 1);
    }
    atomic_fetch_add(&members_done, 1);
}

static void *thread_canceller(void *p)
{
    struct sgroup *s = p;
    usleep(rand_r(&s->seed) % 3000);
    ringo_group_cancel(s->g);
    return NULL;
}

static void test_group_stress_cancel_wait_free(void **state)
{
    (void)state;
    atomic_store(&members_started, 0);
    atomic_store(&members_done, 0);
    int rounds = (int)(40 * tu_scale());
    tu_watchdog_arm("group stress", 240);
    for (int r = 0; r < rounds; r++) {
        struct sgroup s[4];
        pthread_t t[4];
        for (int i = 0; i < 4; i++) {
            s[i].g = ringo_group_make();
            s[i].seed = (unsigned)(r * 4 + i);
            assert_int_equal(pipe2(s[i].pfd, O_CLOEXEC), 0);
            for (int m = 0; m < 8; m++)
                ringo_group_go(s[i].g, stress_member, &s[i]);
        }
        for (int i = 0; i < 4; i++)
            pthread_create(&t[i], NULL, thread_canceller, &s[i]);
        for (int i = 0; i < 4; i++) {
            pthread_join(t[i], NULL);
            assert_int_equal(ringo_group_wait(s[i].g, ringo_now() + 60 * SEC), 0);
            assert_int_equal(ringo_group_free(s[i].g), 0);
            close(s[i].pfd[0]);
            close(s[i].pfd[1]);
        }
        assert_int_equal(atomic_load(&members_done), atomic_load(&members_started));
    }
    tu_watchdog_disarm();
    assert_int_equal(atomic_load(&bad_rc), 0);
    assert_true(atomic_load(&members_started) >= (long)rounds * 32);
}

/* Outsiders are never cancelled: a non-member blocked on the same channel as members. */
static atomic_int outsider_got;
static void outsider(void *p)
{
    int v = 0;
    atomic_store(&outsider_got, ringo_chan_recv(p, &v) == 1 ? v : -1);
}
static void member_recv(void *p) { ringo_chan_recv(p, NULL); }

static void test_group_outsiders_are_not_cancelled(void **state)
{
    (void)state;
    ringo_chan *c = ringo_chan_make(sizeof(int), 0);
    atomic_store(&outsider_got, 0);
    int64_t oid = ringo_go(outsider, c);
    ringo_group *g = ringo_group_make();
    int64_t mid = ringo_group_go(g, member_recv, c);
    wait_parked(oid, "chan receive");
    wait_parked(mid, "chan receive");
    ringo_group_cancel(g);
    assert_int_equal(ringo_group_wait(g, ringo_now() + 30 * SEC), 0);
    int v = 42;
    assert_int_equal(ringo_chan_send_until(c, &v, ringo_now() + 30 * SEC), 0);
    while (atomic_load(&outsider_got) == 0)
        usleep(1000);
    assert_int_equal(atomic_load(&outsider_got), 42);
    assert_int_equal(ringo_group_free(g), 0);
    ringo_chan_free(c);
}

/* Misuse: a pointer that is not a group (here: zeroed memory) is fatal with a one-line message. */
static int child_not_a_group(void)
{
    static long junk[16];
    ringo_group_wait((ringo_group *)(void *)junk, -1);
    return 0; /* not reached */
}

static const struct child_scenario scenarios[] = {
    { "not_a_group", child_not_a_group },
    { NULL, NULL },
};

static void test_group_not_a_group_is_fatal(void **state)
{
    (void)state;
    struct child_result r;
    tu_run_child("not_a_group", NULL, 30, &r);
    assert_false(r.exited && r.code == 0);
    assert_non_null(strstr(r.out, "fatal error: ringo_group_wait: not a group"));
}

int main(int argc, char **argv)
{
    tu_maybe_child(argc, argv, scenarios);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_not_a_group_is_fatal),
        cmocka_unit_test(test_group_wait_for_members),
        cmocka_unit_test(test_group_bad_input_and_busy),
        cmocka_unit_test(test_group_member_waiting_for_its_group_is_refused),
        cmocka_unit_test(test_group_cancel_ends_every_kind_of_wait),
        cmocka_unit_test(test_group_members_spawn_members_and_nested_groups_are_cancelled),
        cmocka_unit_test(test_group_cancelling_a_nested_group_leaves_the_outer_alone),
        cmocka_unit_test(test_group_made_inside_a_cancelled_group_starts_cancelled),
        cmocka_unit_test(test_group_outsiders_are_not_cancelled),
        cmocka_unit_test(test_group_no_group_flag_leaves_the_group),
        cmocka_unit_test(test_group_cancel_loses_no_value_unbuffered),
        cmocka_unit_test(test_group_cancel_loses_no_value_buffered),
        cmocka_unit_test(test_group_stress_cancel_wait_free),
    };
    return TU_RUN_GROUP("group", tests, NULL, NULL);
}
