/* tests/test_chan.c — every ringo_chan_* call and every error code (API.md "Channels").
 *
 * Element sizes 0, int, a 64-byte struct and a few KiB; capacities 0, 1, 2, 3 (not a power of
 * two), 64 and 1024; goroutines and plain threads on either side in every mix.
 *
 * Conventions of this file:
 *   - Goroutines and threads never call cmocka asserts (a longjmp from another stack or thread
 *     is undefined): they CHECK(), which counts and prints; each test asserts no CHECK failed.
 *   - "Blocked" is observed, not guessed: wait_blocked() reads ringo_dump() until the expected
 *     number of goroutines/threads show the wait state ("chan receive", "chan send").
 *   - Every test that could hang on a lost wake-up arms the watchdog.
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

/* Element contents: a pattern determined by (size, v), distinct for distinct v. */
static void fill(void *buf, size_t sz, uint64_t v)
{
    unsigned char *p = buf;
    for (size_t i = 0; i < sz; i++)
        p[i] = (unsigned char)((v >> (8 * (i % 8))) ^ (i / 8 * 0x9d));
}
static bool holds(const void *buf, size_t sz, uint64_t v)
{
    const unsigned char *p = buf;
    for (size_t i = 0; i < sz; i++)
        if (p[i] != (unsigned char)((v >> (8 * (i % 8))) ^ (i / 8 * 0x9d)))
            return false;
    return true;
}
static bool all_bytes(const void *buf, size_t sz, unsigned char b)
{
    const unsigned char *p = buf;
    for (size_t i = 0; i < sz; i++)
        if (p[i] != b)
            return false;
    return true;
}

struct big64 {
    uint64_t seq;
    uint32_t sender;
    char pad[52];
};
_Static_assert(sizeof(struct big64) == 64, "a 64-byte element");

static const size_t sizes[] = { 0, sizeof(int), sizeof(struct big64), 4100 };
static const size_t caps[] = { 0, 1, 2, 3, 64, 1024 };
#define NSIZES (sizeof sizes / sizeof sizes[0])
#define NCAPS (sizeof caps / sizeof caps[0])
#define ELEM_MAX 4100

/* ------------------------------------------------------------------ make, len, cap */

static void test_chan_make_len_cap_every_size_and_cap(void **state)
{
    (void)state;
    for (size_t s = 0; s < NSIZES; s++)
        for (size_t k = 0; k < NCAPS; k++) {
            ringo_chan *c = ringo_chan_make(sizes[s], caps[k]);
            assert_non_null(c);
            assert_int_equal(ringo_chan_cap(c), caps[k]);
            assert_int_equal(ringo_chan_len(c), 0);
            assert_int_equal(ringo_chan_free(c), 0);
        }
    assert_int_equal(ringo_chan_len(NULL), 0);
    assert_int_equal(ringo_chan_cap(NULL), 0);
}

static void expect_make_fails(size_t elem, size_t cap)
{
    errno = 0;
    ringo_chan *c = ringo_chan_make(elem, cap);
    if (c) {
        ringo_chan_free(c);
        fail_msg("ringo_chan_make(%zu, %zu) succeeded", elem, cap);
    }
    if (errno != EINVAL && errno != ENOMEM)
        fail_msg("ringo_chan_make(%zu, %zu): errno %d, want EINVAL or ENOMEM", elem, cap, errno);
}

static void test_chan_make_absurd_sizes_return_null_and_errno(void **state)
{
    (void)state;
    expect_make_fails(SIZE_MAX, 1);
    expect_make_fails(SIZE_MAX, 0);        /* no buffer, but no value of that size can be copied */
    expect_make_fails(1, SIZE_MAX);
    expect_make_fails(0, SIZE_MAX);
    expect_make_fails(SIZE_MAX / 2 + 1, 2); /* elem * cap wraps to 0 */
    expect_make_fails((size_t)1 << 33, (size_t)1 << 33);   /* 2^66 wraps to 0 */
    expect_make_fails(((size_t)1 << 32) + 1, ((size_t)1 << 32) - 1); /* 2^64 - 1 bytes */
    expect_make_fails((size_t)1 << 40, 4);
    /* large but sane still works */
    ringo_chan *c = ringo_chan_make(1, (size_t)1 << 20);
    assert_non_null(c);
    assert_int_equal(ringo_chan_cap(c), (size_t)1 << 20);
    assert_int_equal(ringo_chan_free(c), 0);
}

/* ------------------------------------------------------------------ buffered, one thread */

/* Fill, overfill, drain, in rounds of varying length so the ring wraps (also for cap 3). */
static void test_chan_buffered_fifo_len_and_eagain_every_size_and_cap(void **state)
{
    (void)state;
    unsigned char *in = malloc(ELEM_MAX), *out = malloc(ELEM_MAX);
    for (size_t s = 0; s < NSIZES; s++)
        for (size_t k = 1; k < NCAPS; k++) {
            size_t sz = sizes[s], cap = caps[k];
            ringo_chan *c = ringo_chan_make(sz, cap);
            assert_non_null(c);
            uint64_t next_in = 1, next_out = 1;
            for (int round = 0; round < 5; round++) {
                size_t n = round == 0 ? cap : (round * 7 + 1) % (cap + 1);
                for (size_t i = 0; i < n; i++) {
                    fill(in, sz, next_in++);
                    int r = (i & 1) ? ringo_chan_send(c, in) : ringo_chan_try_send(c, in);
                    assert_int_equal(r, 0);
                    assert_int_equal(ringo_chan_len(c), i + 1);
                }
                if (n == cap) {
                    fill(in, sz, 999999);
                    int r = ringo_chan_try_send(c, in);
                    if (r != -EAGAIN)
                        fail_msg("size %zu cap %zu round %d: try_send on a full channel returned %d, want -EAGAIN",
                                 sz, cap, round, r);
                    assert_int_equal(ringo_chan_len(c), cap); /* the refused value did not enter */
                }
                for (size_t i = 0; i < n; i++) {
                    memset(out, 0xEE, ELEM_MAX);
                    int r = (i & 1) ? ringo_chan_recv(c, out) : ringo_chan_try_recv(c, out);
                    assert_int_equal(r, 1);
                    if (!holds(out, sz, next_out))
                        fail_msg("size %zu cap %zu: value %llu came out wrong", sz, cap, (unsigned long long)next_out);
                    assert_true(all_bytes(out + sz, ELEM_MAX - sz, 0xEE)); /* exactly elem_size bytes */
                    next_out++;
                    assert_int_equal(ringo_chan_len(c), n - i - 1);
                }
                assert_int_equal(ringo_chan_try_recv(c, out), -EAGAIN);
                assert_int_equal(ringo_chan_len(c), 0);
            }
            assert_int_equal(ringo_chan_cap(c), cap);
            assert_int_equal(ringo_chan_free(c), 0);
        }
    free(in);
    free(out);
}

static void test_chan_zero_size_elements_count_and_touch_nothing(void **state)
{
    (void)state;
    ringo_chan *c = ringo_chan_make(0, 3);
    assert_non_null(c);
    assert_int_equal(ringo_chan_send(c, NULL), 0); /* elem may be NULL: there is nothing to copy */
    char canary = 'x';
    assert_int_equal(ringo_chan_send(c, &canary), 0);
    assert_int_equal(ringo_chan_try_send(c, NULL), 0);
    assert_int_equal(ringo_chan_try_send(c, NULL), -EAGAIN);
    assert_int_equal(ringo_chan_len(c), 3);
    assert_int_equal(ringo_chan_recv(c, &canary), 1);
    assert_int_equal(canary, 'x'); /* zero bytes copied */
    assert_int_equal(ringo_chan_recv(c, NULL), 1);
    assert_int_equal(ringo_chan_close(c), 0);
    assert_int_equal(ringo_chan_try_recv(c, &canary), 1);
    assert_int_equal(ringo_chan_recv(c, &canary), 0);
    assert_int_equal(canary, 'x'); /* "out zeroed" is zero bytes */
    assert_int_equal(ringo_chan_free(c), 0);
}

/* ------------------------------------------------------------------ NULL channel, NULL out */

static void test_chan_null_channel_is_einval_everywhere(void **state)
{
    (void)state;
    int v = 7;
    assert_int_equal(ringo_chan_send(NULL, &v), -EINVAL);
    assert_int_equal(ringo_chan_recv(NULL, &v), -EINVAL);
    assert_int_equal(ringo_chan_try_send(NULL, &v), -EINVAL);
    assert_int_equal(ringo_chan_try_recv(NULL, &v), -EINVAL);
    assert_int_equal(ringo_chan_close(NULL), -EINVAL);
    assert_int_equal(ringo_chan_free(NULL), -EINVAL);
    assert_int_equal(ringo_chan_len(NULL), 0);
    assert_int_equal(ringo_chan_cap(NULL), 0);
    assert_int_equal(v, 7); /* out untouched */
}

struct sender_arg {
    ringo_chan *c;
    size_t sz;
    uint64_t first, n;      /* sends fill(first .. first+n-1) */
    bool close_after;
    atomic_int done;
    atomic_int returned;    /* rendezvous tests: set right after send returned */
    int last_result;
    const unsigned char *peer_out; /* rendezvous: the receiver's out buffer */
    struct ringo_waitgroup *wg;
};

static void sender(void *p)
{
    struct sender_arg *a = p;
    unsigned char *buf = malloc(a->sz ? a->sz : 1);
    for (uint64_t i = 0; i < a->n; i++) {
        fill(buf, a->sz, a->first + i);
        int r = ringo_chan_send(a->c, buf);
        a->last_result = r;
        if (r != 0)
            break;
        if (a->peer_out) /* send returned: the receiver has the value already */
            CHECK(holds(a->peer_out, a->sz, a->first + i));
        atomic_store(&a->returned, 1);
    }
    if (a->close_after)
        CHECK(ringo_chan_close(a->c) == 0);
    free(buf);
    atomic_store(&a->done, 1);
    if (a->wg)
        ringo_wg_done(a->wg);
}

static void test_chan_recv_null_out_discards(void **state)
{
    (void)state;
    for (size_t k = 0; k < NCAPS; k++) {
        size_t cap = caps[k];
        ringo_chan *c = ringo_chan_make(sizeof(uint64_t), cap);
        assert_non_null(c);
        struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
        struct sender_arg a = { .c = c, .sz = sizeof(uint64_t), .first = 1, .n = 6, .close_after = true, .wg = &wg };
        ringo_wg_add(&wg, 1);
        tu_watchdog_arm("recv NULL out", 20);
        spawn(G, sender, &a);
        uint64_t v = 0;
        assert_int_equal(ringo_chan_recv(c, NULL), 1);     /* 1 discarded */
        assert_int_equal(ringo_chan_recv(c, &v), 1);
        assert_true(holds(&v, sizeof v, 2));
        assert_int_equal(ringo_chan_recv(c, NULL), 1);     /* 3 discarded */
        int r;
        while ((r = ringo_chan_try_recv(c, NULL)) == -EAGAIN) /* 4 discarded, without blocking */
            usleep(100);
        assert_int_equal(r, 1);
        assert_int_equal(ringo_chan_recv(c, &v), 1);
        assert_true(holds(&v, sizeof v, 5));
        assert_int_equal(ringo_chan_recv(c, NULL), 1);     /* 6 discarded */
        assert_int_equal(ringo_chan_recv(c, NULL), 0);     /* closed and drained */
        assert_int_equal(ringo_chan_try_recv(c, NULL), 0);
        ringo_wg_wait(&wg);
        tu_watchdog_disarm();
        assert_int_equal(ringo_chan_free(c), 0);
    }
}

/* ------------------------------------------------------------------ close */

static void test_chan_close_semantics_every_size_and_cap(void **state)
{
    (void)state;
    unsigned char *in = malloc(ELEM_MAX), *out = malloc(ELEM_MAX);
    for (size_t s = 0; s < NSIZES; s++)
        for (size_t k = 0; k < NCAPS; k++) {
            size_t sz = sizes[s], cap = caps[k];
            ringo_chan *c = ringo_chan_make(sz, cap);
            assert_non_null(c);
            size_t nbuf = cap < 2 ? cap : 2; /* values left buffered at close */
            if (cap == 3)
                nbuf = 3;                   /* a full ring */
            for (size_t i = 0; i < nbuf; i++) {
                fill(in, sz, 100 + i);
                assert_int_equal(ringo_chan_send(c, in), 0);
            }
            assert_int_equal(ringo_chan_close(c), 0);
            assert_int_equal(ringo_chan_close(c), -EPIPE);
            fill(in, sz, 7);
            assert_int_equal(ringo_chan_send(c, in), -EPIPE);
            assert_int_equal(ringo_chan_try_send(c, in), -EPIPE);
            assert_int_equal(ringo_chan_len(c), nbuf);
            assert_int_equal(ringo_chan_cap(c), cap);
            for (size_t i = 0; i < nbuf; i++) { /* what was sent before close is still received */
                memset(out, 0xAA, ELEM_MAX);
                assert_int_equal((i & 1) ? ringo_chan_try_recv(c, out) : ringo_chan_recv(c, out), 1);
                assert_true(holds(out, sz, 100 + i));
            }
            for (int rep = 0; rep < 2; rep++) { /* then 0, with out zeroed, every time */
                memset(out, 0xAA, ELEM_MAX);
                assert_int_equal(ringo_chan_recv(c, out), 0);
                assert_true(all_bytes(out, sz, 0));
                assert_true(all_bytes(out + sz, ELEM_MAX - sz, 0xAA));
                memset(out, 0xAA, ELEM_MAX);
                assert_int_equal(ringo_chan_try_recv(c, out), 0);
                assert_true(all_bytes(out, sz, 0));
                assert_true(all_bytes(out + sz, ELEM_MAX - sz, 0xAA));
            }
            assert_int_equal(ringo_chan_len(c), 0);
            assert_int_equal(ringo_chan_close(c), -EPIPE);
            assert_int_equal(ringo_chan_free(c), 0);
        }
    free(in);
    free(out);
}

struct blocked_arg {
    ringo_chan *c;
    size_t sz;
    uint64_t v;
    int result;
    unsigned char out[ELEM_MAX];
    struct ringo_waitgroup *wg;
};
static void blocked_recv(void *p)
{
    struct blocked_arg *a = p;
    memset(a->out, 0xAA, sizeof a->out);
    a->result = ringo_chan_recv(a->c, a->out);
    ringo_wg_done(a->wg);
}
static void blocked_send(void *p)
{
    struct blocked_arg *a = p;
    unsigned char buf[ELEM_MAX];
    fill(buf, a->sz, a->v);
    a->result = ringo_chan_send(a->c, buf);
    ringo_wg_done(a->wg);
}

#define NBLOCKED 6 /* 3 goroutines, 3 threads */

static void test_chan_close_wakes_every_blocked_receiver(void **state)
{
    (void)state;
    static const size_t kcaps[] = { 0, 1, 3 };
    static const size_t ksz[] = { sizeof(int), 4100 };
    for (size_t k = 0; k < 3; k++)
        for (size_t s = 0; s < 2; s++) {
            ringo_chan *c = ringo_chan_make(ksz[s], kcaps[k]);
            struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
            static struct blocked_arg a[NBLOCKED];
            tu_watchdog_arm("close wakes receivers", 20);
            ringo_wg_add(&wg, NBLOCKED);
            for (int i = 0; i < NBLOCKED; i++) {
                a[i] = (struct blocked_arg){ .c = c, .sz = ksz[s], .result = 99, .wg = &wg };
                spawn(i & 1, blocked_recv, &a[i]);
            }
            wait_blocked("chan receive", NBLOCKED);
            assert_int_equal(ringo_chan_close(c), 0);
            ringo_wg_wait(&wg);
            tu_watchdog_disarm();
            for (int i = 0; i < NBLOCKED; i++) {
                if (a[i].result != 0)
                    fail_msg("cap %zu: blocked %s receiver %d got %d after close, want 0", kcaps[k],
                             kind_name[i & 1], i, a[i].result);
                assert_true(all_bytes(a[i].out, ksz[s], 0));
                assert_true(all_bytes(a[i].out + ksz[s], ELEM_MAX - ksz[s], 0xAA));
            }
            assert_int_equal(ringo_chan_free(c), 0);
        }
}

static void test_chan_close_wakes_every_blocked_sender_with_epipe(void **state)
{
    (void)state;
    static const size_t kcaps[] = { 0, 1, 2, 3 };
    unsigned char out[ELEM_MAX];
    for (size_t k = 0; k < 4; k++) {
        size_t cap = kcaps[k], sz = sizeof(struct big64);
        ringo_chan *c = ringo_chan_make(sz, cap);
        unsigned char in[sizeof(struct big64)];
        for (size_t i = 0; i < cap; i++) { /* fill the buffer: the next sends block */
            fill(in, sz, 500 + i);
            assert_int_equal(ringo_chan_send(c, in), 0);
        }
        struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
        static struct blocked_arg a[NBLOCKED];
        tu_watchdog_arm("close wakes senders", 20);
        ringo_wg_add(&wg, NBLOCKED);
        for (int i = 0; i < NBLOCKED; i++) {
            a[i] = (struct blocked_arg){ .c = c, .sz = sz, .v = 1000 + (uint64_t)i, .result = 99, .wg = &wg };
            spawn(i & 1, blocked_send, &a[i]);
        }
        wait_blocked("chan send", NBLOCKED);
        assert_int_equal(ringo_chan_close(c), 0);
        ringo_wg_wait(&wg);
        tu_watchdog_disarm();
        for (int i = 0; i < NBLOCKED; i++)
            if (a[i].result != -EPIPE)
                fail_msg("cap %zu: blocked %s sender %d got %d after close, want -EPIPE", cap, kind_name[i & 1], i,
                         a[i].result);
        /* exactly what was buffered before close comes out; nothing of the refused senders */
        for (size_t i = 0; i < cap; i++) {
            assert_int_equal(ringo_chan_recv(c, out), 1);
            assert_true(holds(out, sz, 500 + i));
        }
        assert_int_equal(ringo_chan_recv(c, out), 0);
        assert_int_equal(ringo_chan_free(c), 0);
    }
}

/* Close while senders and receivers (goroutines and threads) are streaming: every value whose
 * send returned 0 is received exactly once, every sender ends with -EPIPE, every receiver with 0. */
#define RACE_SENDERS 3
#define RACE_RECEIVERS 3
#define RACE_MAXV 200000
struct race {
    ringo_chan *c;
    atomic_uchar *seen[RACE_SENDERS];   /* seen[p][seq]: times received */
    uint64_t sent[RACE_SENDERS];        /* successful sends of p (seq 0 .. sent-1) */
    int end[RACE_SENDERS];              /* the failing send's result */
    atomic_long received;
    atomic_int next_id;
    struct ringo_waitgroup wg;
};
static void race_sender(void *p)
{
    struct race *r = p;
    int id = atomic_fetch_add(&r->next_id, 1);
    uint64_t i = 0;
    int res = 0;
    for (; i < RACE_MAXV; i++) {
        uint64_t v = ((uint64_t)id << 32) | i;
        res = ringo_chan_send(r->c, &v);
        if (res != 0)
            break;
    }
    r->sent[id] = i;
    r->end[id] = res;
    ringo_wg_done(&r->wg);
}
static void race_receiver(void *p)
{
    struct race *r = p;
    uint64_t v, last[RACE_SENDERS];
    memset(last, 0xff, sizeof last);
    int res;
    while ((res = ringo_chan_recv(r->c, &v)) == 1) {
        uint32_t id = (uint32_t)(v >> 32), seq = (uint32_t)v;
        CHECK(id < RACE_SENDERS && seq < RACE_MAXV);
        if (id >= RACE_SENDERS || seq >= RACE_MAXV)
            continue;
        CHECK(last[id] == UINT64_MAX || seq > last[id]); /* FIFO per sender */
        last[id] = seq;
        atomic_fetch_add(&r->seen[id][seq], 1);
        atomic_fetch_add(&r->received, 1);
    }
    CHECK(res == 0);
    CHECK(v == 0); /* out zeroed at the end */
    ringo_wg_done(&r->wg);
}

static void test_chan_close_races_with_blocked_senders_and_receivers(void **state)
{
    (void)state;
    static const size_t kcaps[] = { 0, 1, 3, 64 };
    struct race *r = calloc(1, sizeof *r);
    for (int p = 0; p < RACE_SENDERS; p++)
        r->seen[p] = calloc(RACE_MAXV, 1);
    unsigned seed = 12345;
    int rounds = (int)(12 * tu_scale());
    tu_watchdog_arm("close races", 30);
    for (size_t k = 0; k < 4; k++)
        for (int round = 0; round < rounds; round++) {
            r->c = ringo_chan_make(sizeof(uint64_t), kcaps[k]);
            atomic_store(&r->received, 0);
            atomic_store(&r->next_id, 0);
            ringo_wg_add(&r->wg, RACE_SENDERS + RACE_RECEIVERS);
            for (int i = 0; i < RACE_RECEIVERS; i++)
                spawn((i + round) & 1, race_receiver, r);
            for (int i = 0; i < RACE_SENDERS; i++)
                spawn((i + round + 1) & 1, race_sender, r);
            usleep(rand_r(&seed) % 3000);
            assert_int_equal(ringo_chan_close(r->c), 0);
            ringo_wg_wait(&r->wg);
            long total = 0;
            for (int p = 0; p < RACE_SENDERS; p++) {
                if (r->end[p] != -EPIPE && r->sent[p] != RACE_MAXV)
                    fail_msg("cap %zu: sender %d ended with %d, want -EPIPE", kcaps[k], p, r->end[p]);
                for (uint64_t i = 0; i < RACE_MAXV; i++) {
                    unsigned char want = i < r->sent[p] ? 1 : 0;
                    unsigned char got = atomic_load(&r->seen[p][i]);
                    if (got != want)
                        fail_msg("cap %zu round %d: value %d/%llu received %u times, want %u (sent %llu)", kcaps[k],
                                 round, p, (unsigned long long)i, got, want, (unsigned long long)r->sent[p]);
                    atomic_store(&r->seen[p][i], 0);
                }
                total += (long)r->sent[p];
            }
            assert_int_equal(atomic_load(&r->received), total);
            assert_int_equal(atomic_load(&bad), 0);
            assert_int_equal(ringo_chan_free(r->c), 0);
        }
    tu_watchdog_disarm();
    for (int p = 0; p < RACE_SENDERS; p++)
        free(r->seen[p]);
    free(r);
}

/* ------------------------------------------------------------------ unbuffered: rendezvous */

static void test_chan_unbuffered_try_ops_succeed_only_with_a_waiting_partner(void **state)
{
    (void)state;
    ringo_chan *c = ringo_chan_make(sizeof(struct big64), 0);
    unsigned char buf[sizeof(struct big64)];
    fill(buf, sizeof buf, 1);
    assert_int_equal(ringo_chan_try_send(c, buf), -EAGAIN); /* nobody receives */
    assert_int_equal(ringo_chan_try_recv(c, buf), -EAGAIN); /* nobody sends */
    assert_int_equal(ringo_chan_len(c), 0);
    for (int kind = 0; kind < 2; kind++) {
        struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
        struct blocked_arg a = { .c = c, .sz = sizeof buf, .v = 42, .result = 99, .wg = &wg };
        tu_watchdog_arm("unbuffered try ops", 20);
        /* a receiver waits: try_send hands it the value at once */
        ringo_wg_add(&wg, 1);
        spawn(kind, blocked_recv, &a);
        wait_blocked("chan receive", 1);
        fill(buf, sizeof buf, 42);
        assert_int_equal(ringo_chan_try_send(c, buf), 0);
        ringo_wg_wait(&wg);
        assert_int_equal(a.result, 1);
        assert_true(holds(a.out, sizeof buf, 42));
        assert_int_equal(ringo_chan_try_send(c, buf), -EAGAIN); /* and only that one receiver */
        /* a sender waits: try_recv takes its value at once */
        ringo_wg_add(&wg, 1);
        a.result = 99;
        a.v = 43;
        spawn(kind, blocked_send, &a);
        wait_blocked("chan send", 1);
        memset(buf, 0, sizeof buf);
        assert_int_equal(ringo_chan_try_recv(c, buf), 1);
        assert_true(holds(buf, sizeof buf, 43));
        ringo_wg_wait(&wg);
        assert_int_equal(a.result, 0);
        assert_int_equal(ringo_chan_try_recv(c, buf), -EAGAIN);
        tu_watchdog_disarm();
    }
    assert_int_equal(ringo_chan_free(c), 0);
}

static void test_chan_buffered_try_recv_makes_room_for_a_blocked_sender(void **state)
{
    (void)state;
    for (int kind = 0; kind < 2; kind++) {
        ringo_chan *c = ringo_chan_make(sizeof(int), 2);
        int v = 1;
        assert_int_equal(ringo_chan_send(c, &v), 0);
        v = 2;
        assert_int_equal(ringo_chan_send(c, &v), 0);
        struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
        struct blocked_arg a = { .c = c, .sz = sizeof(int), .v = 3, .result = 99, .wg = &wg };
        tu_watchdog_arm("buffered blocked sender", 20);
        ringo_wg_add(&wg, 1);
        spawn(kind, blocked_send, &a);
        wait_blocked("chan send", 1);
        assert_int_equal(ringo_chan_try_recv(c, &v), 1);
        assert_int_equal(v, 1);
        ringo_wg_wait(&wg); /* the blocked sender got the freed slot */
        tu_watchdog_disarm();
        assert_int_equal(a.result, 0);
        assert_int_equal(ringo_chan_len(c), 2);
        assert_int_equal(ringo_chan_try_recv(c, &v), 1);
        assert_int_equal(v, 2);
        int w;
        assert_int_equal(ringo_chan_try_recv(c, &w), 1);
        assert_true(holds(&w, sizeof w, 3));
        assert_int_equal(ringo_chan_try_recv(c, &w), -EAGAIN);
        assert_int_equal(ringo_chan_free(c), 0);
    }
}

struct rdv_recv {
    ringo_chan *c;
    size_t sz;
    struct sender_arg *s;
    unsigned char *out;
    int delay_us;  /* > 0: the sender arrives first and must stay blocked meanwhile */
    int result;
    struct ringo_waitgroup *wg;
};
static void rdv_receiver(void *p)
{
    struct rdv_recv *a = p;
    if (a->delay_us) {
        CHECK(blocked_soon("chan send", 1));
        ringo_sleep((int64_t)a->delay_us * 1000);
        CHECK(atomic_load(&a->s->returned) == 0); /* no receiver yet: send has not returned */
    }
    a->result = ringo_chan_recv(a->c, a->out);
    ringo_wg_done(a->wg);
}

/* An unbuffered send has not returned before a receiver took the value: while no receiver
 * exists it stays blocked, and when it returns the value is already in the receiver's out. */
static void test_chan_unbuffered_send_is_a_rendezvous(void **state)
{
    (void)state;
    static const size_t rsz[] = { sizeof(int), sizeof(struct big64), 4100 };
    for (int sk = 0; sk < 2; sk++)
        for (int rk = 0; rk < 2; rk++)
            for (size_t s = 0; s < 3; s++)
                for (int sender_first = 0; sender_first < 2; sender_first++) {
                    size_t sz = rsz[s];
                    ringo_chan *c = ringo_chan_make(sz, 0);
                    unsigned char *out = calloc(1, sz);
                    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
                    struct sender_arg sa = { .c = c, .sz = sz, .first = 77, .n = 1, .peer_out = out, .wg = &wg };
                    struct rdv_recv ra = { .c = c, .sz = sz, .s = &sa, .out = out,
                                           .delay_us = sender_first ? 20000 : 0, .wg = &wg };
                    tu_watchdog_arm("rendezvous", 20);
                    ringo_wg_add(&wg, 2);
                    if (sender_first) {
                        spawn(sk, sender, &sa);
                        spawn(rk, rdv_receiver, &ra);
                    } else {
                        spawn(rk, rdv_receiver, &ra);
                        wait_blocked("chan receive", 1);
                        spawn(sk, sender, &sa);
                    }
                    ringo_wg_wait(&wg);
                    tu_watchdog_disarm();
                    if (ra.result != 1 || sa.last_result != 0 || !holds(out, sz, 77) || atomic_load(&bad))
                        fail_msg("sender %s, receiver %s, size %zu, %s first: recv %d send %d", kind_name[sk],
                                 kind_name[rk], sz, sender_first ? "sender" : "receiver", ra.result, sa.last_result);
                    free(out);
                    assert_int_equal(ringo_chan_free(c), 0);
                }
}

/* ------------------------------------------------------------------ order and mixes */

struct fifo_recv {
    ringo_chan *c;
    size_t sz;
    int nsenders;
    uint64_t per;
    uint64_t got;
    struct ringo_waitgroup *wg;
};
static void fifo_receiver(void *p)
{
    struct fifo_recv *a = p;
    uint64_t next[8] = { 0 };
    unsigned char buf[ELEM_MAX];
    RINGO_RANGE(a->c, buf)
    {
        /* senders fill big64 {seq, sender}: seq i of sender s is value s<<32 | i */
        uint64_t v;
        memcpy(&v, buf, sizeof v);
        uint32_t s = (uint32_t)(v >> 32) & 7;
        CHECK((v & 0xffffffff) == next[s]); /* in order, none lost */
        CHECK(holds(buf, a->sz, v));
        next[s] = (v & 0xffffffff) + 1;
        a->got++;
    }
    for (int s = 0; s < a->nsenders; s++)
        CHECK(next[s] == a->per);
    ringo_wg_done(a->wg);
}

struct closer_arg {
    struct ringo_waitgroup *senders;
    ringo_chan *c;
    struct ringo_waitgroup *wg;
};
static void closer(void *p)
{
    struct closer_arg *a = p;
    ringo_wg_wait(a->senders);
    CHECK(ringo_chan_close(a->c) == 0);
    ringo_wg_done(a->wg);
}

/* One receiver, several senders (goroutines and threads): each sender's values arrive in the
 * order sent, none lost. */
static void test_chan_fifo_per_sender(void **state)
{
    (void)state;
    static const size_t kcaps[] = { 0, 1, 3, 64 };
    for (size_t k = 0; k < 4; k++) {
        size_t sz = sizeof(struct big64);
        ringo_chan *c = ringo_chan_make(sz, kcaps[k]);
        struct ringo_waitgroup all = RINGO_WAITGROUP_INIT, senders = RINGO_WAITGROUP_INIT;
        struct sender_arg sa[4];
        uint64_t per = 3000;
        struct fifo_recv fr = { .c = c, .sz = sz, .nsenders = 4, .per = per, .wg = &all };
        struct closer_arg ca = { &senders, c, &all };
        tu_watchdog_arm("fifo per sender", 30);
        ringo_wg_add(&senders, 4);
        ringo_wg_add(&all, 2);
        for (int s = 0; s < 4; s++) {
            sa[s] = (struct sender_arg){ .c = c, .sz = sz, .first = (uint64_t)s << 32, .n = per, .wg = &senders };
            spawn(s & 1, sender, &sa[s]);
        }
        spawn(TH, fifo_receiver, &fr);
        spawn(G, closer, &ca);
        ringo_wg_wait(&all);
        tu_watchdog_disarm();
        assert_int_equal(fr.got, 4 * per);
        assert_int_equal(ringo_chan_free(c), 0);
    }
}

/* Every mix of goroutine/thread sender and receiver, every capacity and size. */
static void test_chan_goroutines_and_threads_in_every_mix(void **state)
{
    (void)state;
    for (size_t k = 0; k < NCAPS; k++)
        for (size_t s = 1; s < NSIZES; s++)
            for (int sk = 0; sk < 2; sk++)
                for (int rk = 0; rk < 2; rk++) {
                    size_t sz = sizes[s] < 8 ? 8 : sizes[s]; /* room for the sequence */
                    ringo_chan *c = ringo_chan_make(sz, caps[k]);
                    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
                    uint64_t per = sz > 64 ? 300 : 1500;
                    struct sender_arg sa = { .c = c, .sz = sz, .first = 0, .n = per, .close_after = true, .wg = &wg };
                    struct fifo_recv fr = { .c = c, .sz = sz, .nsenders = 1, .per = per, .wg = &wg };
                    tu_watchdog_arm("every mix", 20);
                    ringo_wg_add(&wg, 2);
                    spawn(rk, fifo_receiver, &fr);
                    spawn(sk, sender, &sa);
                    ringo_wg_wait(&wg);
                    tu_watchdog_disarm();
                    if (fr.got != per || atomic_load(&bad))
                        fail_msg("cap %zu size %zu %s -> %s: received %llu of %llu", caps[k], sz, kind_name[sk],
                                 kind_name[rk], (unsigned long long)fr.got, (unsigned long long)per);
                    assert_int_equal(ringo_chan_free(c), 0);
                }
}

static void test_chan_range_receives_until_closed(void **state)
{
    (void)state;
    for (int kind = 0; kind < 2; kind++)
        for (size_t k = 0; k < NCAPS; k++) {
            ringo_chan *c = ringo_chan_make(sizeof(uint64_t), caps[k]);
            struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
            struct sender_arg sa = { .c = c, .sz = sizeof(uint64_t), .first = 0, .n = 100, .close_after = true,
                                     .wg = &wg };
            tu_watchdog_arm("range", 20);
            ringo_wg_add(&wg, 1);
            spawn(kind, sender, &sa);
            uint64_t v, n = 0;
            RINGO_RANGE(c, &v)
            {
                assert_true(holds(&v, sizeof v, n));
                n++;
            }
            assert_int_equal(n, 100);
            assert_int_equal(v, 0); /* the final recv zeroed out */
            assert_int_equal(ringo_chan_recv(c, &v), 0);
            ringo_wg_wait(&wg);
            tu_watchdog_disarm();
            assert_int_equal(ringo_chan_free(c), 0);
        }
}

/* ------------------------------------------------------------------ progress */

struct stream_arg {
    ringo_chan *c;
    int n;
    struct ringo_waitgroup *wg;
};
static void stream_send(void *p)
{
    struct stream_arg *a = p;
    for (int i = 0; i < a->n; i++)
        CHECK(ringo_chan_send(a->c, &i) == 0);
    ringo_wg_done(a->wg);
}
static void stream_recv(void *p)
{
    struct stream_arg *a = p;
    for (int i = 0; i < a->n; i++) {
        int v = -1;
        CHECK(ringo_chan_recv(a->c, &v) == 1 && v == i);
    }
    ringo_wg_done(a->wg);
}

/* A consumer that polls (try_recv in a loop, Go's select-with-default loop) must not starve a
 * blocking sender on a buffered channel, nor a polling producer (try_send) a blocking receiver:
 * each value normally takes microseconds; allowed here, on a loaded machine: 10 ms per value on
 * average (a bound on starvation, not a benchmark). */
static void test_chan_polling_does_not_starve_the_other_side(void **state)
{
    (void)state;
    const int n = 500;
    for (int kind = 0; kind < 2; kind++)
        for (int poll_recv = 0; poll_recv < 2; poll_recv++) {
            ringo_chan *c = ringo_chan_make(sizeof(int), 4);
            struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
            struct stream_arg a = { c, n, &wg };
            tu_watchdog_arm("polling", 30);
            int64_t t0 = ringo_now();
            ringo_wg_add(&wg, 1);
            spawn(kind, poll_recv ? stream_send : stream_recv, &a);
            bool vg = tu_on_valgrind(); /* one thread at a time there: a spinning poller holds it */
            for (int i = 0; i < n; i++) {
                int v = poll_recv ? -1 : i, r;
                while ((r = poll_recv ? ringo_chan_try_recv(c, &v) : ringo_chan_try_send(c, &v)) == -EAGAIN)
                    if (vg)
                        sched_yield();
                assert_int_equal(r, poll_recv ? 1 : 0);
                assert_int_equal(v, i);
            }
            ringo_wg_wait(&wg);
            int64_t el = ringo_now() - t0;
            tu_watchdog_disarm();
            if (el > (int64_t)n * 10000000)
                fail_msg("%d values between a polling %s (main) and a blocking %s %s took %lld ms (%lld us per value)",
                         n, poll_recv ? "try_recv" : "try_send", kind_name[kind], poll_recv ? "sender" : "receiver",
                         (long long)el / 1000000, (long long)el / n / 1000);
            assert_int_equal(ringo_chan_free(c), 0);
        }
}

/* ------------------------------------------------------------------ free */

/* ringo_chan_free refuses (-EBUSY, nothing freed) while a goroutine or a thread is blocked on
 * the channel, receiving or sending; the channel keeps working; afterwards free returns 0. */
static void test_chan_free_is_ebusy_while_someone_is_blocked(void **state)
{
    (void)state;
    for (int kind = 0; kind < 2; kind++)
        for (int cap = 0; cap < 2; cap++)
            for (int send_side = 0; send_side < 2; send_side++) {
                ringo_chan *c = ringo_chan_make(sizeof(int), (size_t)cap);
                int v = 5;
                if (send_side && cap)
                    assert_int_equal(ringo_chan_send(c, &v), 0); /* full: the next send blocks */
                struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
                struct blocked_arg a = { .c = c, .sz = sizeof(int), .v = 9, .result = 99, .wg = &wg };
                tu_watchdog_arm("free busy", 20);
                ringo_wg_add(&wg, 1);
                spawn(kind, send_side ? blocked_send : blocked_recv, &a);
                wait_blocked(send_side ? "chan send" : "chan receive", 1);
                for (int i = 0; i < 3; i++)
                    if (ringo_chan_free(c) != -EBUSY)
                        fail_msg("free with a %s blocked %s (cap %d) did not return -EBUSY", kind_name[kind],
                                 send_side ? "sending" : "receiving", cap);
                /* not freed: the channel still works and the blocked party completes */
                int w = 0;
                if (send_side) {
                    assert_int_equal(ringo_chan_recv(c, &w), 1);
                    if (cap)
                        assert_int_equal(w, 5);  /* the buffered value first */
                    else
                        assert_true(holds(&w, sizeof w, 9)); /* straight from the blocked sender */
                } else {
                    v = 11;
                    assert_int_equal(ringo_chan_send(c, &v), 0);
                }
                ringo_wg_wait(&wg);
                tu_watchdog_disarm();
                if (send_side) {
                    assert_int_equal(a.result, 0);
                    if (cap) {
                        assert_int_equal(ringo_chan_recv(c, &w), 1);
                        assert_true(holds(&w, sizeof w, 9));
                    }
                } else {
                    assert_int_equal(a.result, 1);
                    assert_int_equal(*(int *)a.out, 11);
                }
                assert_int_equal(ringo_chan_len(c), 0);
                assert_int_equal(ringo_chan_free(c), 0);
            }
}

/* After close wakes blocked receivers, ringo_chan_free may free the channel only once none of
 * them touches it any more: they were blocked on it, and they are still inside
 * ringo_chan_recv(c). Run in a child process (a use-after-free may crash): free is retried
 * while it says -EBUSY; once it returns 0 the memory is handed back to malloc and overwritten
 * (0xFF: a locked spinlock, garbage ring positions), so a receiver that still reads the
 * channel crashes, hangs (killed after 20 s) or returns something other than 0. */
static int child_free_after_close(void)
{
    static struct blocked_arg a[NBLOCKED];
    int rounds = (int)(30 * tu_scale());
    for (int round = 0; round < rounds; round++) {
        static const size_t kcaps[] = { 0, 2, 3 };
        ringo_chan *c = ringo_chan_make(sizeof(int), kcaps[round % 3]);
        struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
        ringo_wg_add(&wg, NBLOCKED);
        for (int i = 0; i < NBLOCKED; i++) {
            a[i] = (struct blocked_arg){ .c = c, .sz = sizeof(int), .result = 99, .wg = &wg };
            spawn((i + round) & 1, blocked_recv, &a[i]);
        }
        if (!blocked_soon("chan receive", NBLOCKED))
            return 10;
        if (ringo_chan_close(c) != 0)
            return 11;
        int r;
        while ((r = ringo_chan_free(c)) == -EBUSY)
            sched_yield();
        if (r != 0)
            return 12;
        void *junk[64];
        for (int i = 0; i < 64; i++) {
            junk[i] = malloc(64 * (size_t)(i % 16 + 1));
            memset(junk[i], 0xFF, 64 * (size_t)(i % 16 + 1));
        }
        ringo_wg_wait(&wg);
        for (int i = 0; i < 64; i++)
            free(junk[i]);
        for (int i = 0; i < NBLOCKED; i++)
            if (a[i].result != 0) {
                fprintf(stderr, "round %d: receiver %d returned %d after close + free, want 0\n", round, i,
                        a[i].result);
                return 13;
            }
    }
    return 0;
}

static void test_chan_free_after_close_waits_for_woken_receivers(void **state)
{
    (void)state;
    struct child_result r;
    tu_run_child("free_after_close", NULL, 20, &r);
    if (!r.exited || r.code != 0)
        fail_msg("close, then free while the woken receivers leave: exited=%d code=%d signal=%d (%s)\n%s", r.exited,
                 r.code, r.signo, r.signo == SIGSEGV ? "use after free" : r.exited ? "" : "crash or hang", r.out);
}

/* A program may free a channel as soon as it has received the last value sent on it (chan.c:
 * a send whose value has been received never touches the channel again), even though the
 * sender may not have returned from ringo_chan_send yet: that is the only moment a receiver
 * can know about. Child process: free (retried while -EBUSY), then overwrite the freed memory;
 * a sender still reading the channel crashes or spins on the 0xFF lock, and the child fails
 * when the senders have not all returned 5 s later. */
static atomic_int senders_left;
struct last_arg {
    ringo_chan *c;
    int k;
};
static void send_k_then_leave(void *p)
{
    struct last_arg a = *(struct last_arg *)p;
    free(p);
    for (int i = 0; i < a.k; i++)
        ringo_chan_send(a.c, &i);
    atomic_fetch_sub(&senders_left, 1);
}
static void *quiet(void *p)
{
    (void)p;
    for (;;)
        pause();
    return NULL;
}
static int child_free_after_last_recv(void)
{
    static const size_t kcaps[] = { 0, 2, 3, 64 };
    /* A thread ringo knows nothing about: the process is never declared deadlocked. This case
     * is about free; main blocked in recv while sender threads come and go is exactly what
     * test_deadlock_not_reported_while_other_threads_exit checks. */
    pthread_t q;
    pthread_create(&q, NULL, quiet, NULL);
    int rounds = (int)(1500 * tu_scale());
    for (int round = 0; round < rounds; round++) {
        size_t cap = kcaps[round % 4];
        int k = 1 + (round / 4) % 5;
        ringo_chan *c = ringo_chan_make(sizeof(int), cap);
        struct last_arg *a = malloc(sizeof *a);
        *a = (struct last_arg){ c, k };
        atomic_fetch_add(&senders_left, 1);
        spawn((round / 20) & 1, send_k_then_leave, a);
        for (int i = 0; i < k; i++) {
            int v = -1, r;
            if (round & 2) {
                /* yield between tries: under valgrind, which runs one thread at a time, a bare
                 * spin was switched out inside the channel lock at the same point of its loop
                 * every time, and the sender never got the lock (a livelock of the test) */
                while ((r = ringo_chan_try_recv(c, &v)) == -EAGAIN)
                    sched_yield();
            } else {
                r = ringo_chan_recv(c, &v);
            }
            if (r != 1 || v != i) {
                fprintf(stderr, "round %d: recv %d got %d (value %d)\n", round, i, r, v);
                return 20;
            }
        }
        int r;
        while ((r = ringo_chan_free(c)) == -EBUSY)
            sched_yield();
        if (r != 0)
            return 21;
        void *junk[8];
        for (int i = 0; i < 8; i++) {
            junk[i] = malloc(64 * (size_t)(i + 1));
            memset(junk[i], 0xFF, 64 * (size_t)(i + 1));
        }
        for (int i = 0; i < 8; i++)
            free(junk[i]);
    }
    for (int i = 0; i < 5000 && atomic_load(&senders_left) > 0; i++)
        usleep(1000);
    if (atomic_load(&senders_left) > 0) {
        fprintf(stderr, "%d sender(s) never returned from ringo_chan_send after their values were received\n",
                atomic_load(&senders_left));
        return 22;
    }
    return 0;
}

static void test_chan_free_right_after_the_last_value_is_received(void **state)
{
    (void)state;
    struct child_result r;
    tu_run_child("free_after_last_recv", NULL, 20, &r);
    if (!r.exited || r.code != 0)
        fail_msg("free after the last receive: exited=%d code=%d signal=%d%s\n%s", r.exited, r.code, r.signo,
                 strstr(r.out, "deadlock!") ? " (a false deadlock report: see test_deadlock)" : "", r.out);
}

static const struct child_scenario scenarios[] = {
    { "free_after_close", child_free_after_close },
    { "free_after_last_recv", child_free_after_last_recv },
    { NULL, NULL },
};

/* ------------------------------------------------------------------ deadlines (issue 14)
 * ringo_chan_send_until / ringo_chan_recv_until: the deadline ends the wait with -ETIMEDOUT and
 * nothing taken or left behind; a partner before it completes the operation; closed and NULL
 * channels answer as the plain calls do; a deadline already past tries once. */
#define MS_NS 1000000LL

struct late_partner {
    ringo_chan *c;
    int64_t after_ns;
    int op; /* RINGO_SEND: sends 42; RINGO_RECV: receives and records it */
    long got;
    struct ringo_waitgroup *wg;
};

static void late_partner_main(void *p)
{
    struct late_partner *l = p;
    ringo_sleep(l->after_ns);
    long v = 42;
    if (l->op == RINGO_SEND)
        CHECK(ringo_chan_send(l->c, &v) == 0);
    else
        CHECK(ringo_chan_recv(l->c, &l->got) == 1);
    ringo_wg_done(l->wg);
}

static void until_in_kind(int kind);

struct until_arg {
    int kind;
    struct ringo_waitgroup *wg;
};

static void until_main(void *p)
{
    struct until_arg *a = p;
    until_in_kind(a->kind);
    ringo_wg_done(a->wg);
}

/* The checks, as a goroutine or a plain thread (kind: for the messages). */
static void until_in_kind(int kind)
{
    (void)kind;
    for (size_t cap = 0; cap <= 1; cap++) {
        ringo_chan *c = ringo_chan_make(sizeof(long), cap);
        long v = 7, out = -1;
        /* nobody there: the deadline, nothing taken */
        int64_t t0 = ringo_now();
        CHECK(ringo_chan_recv_until(c, &out, t0 + 30 * MS_NS) == -ETIMEDOUT);
        CHECK(ringo_now() - t0 >= 29 * MS_NS);
        CHECK(out == -1);
        CHECK(ringo_chan_recv_until(c, &out, 0) == -ETIMEDOUT); /* past: once */
        if (cap) {
            CHECK(ringo_chan_send_until(c, &v, ringo_now() + 30 * MS_NS) == 0); /* room */
            t0 = ringo_now();
            CHECK(ringo_chan_send_until(c, &v, t0 + 30 * MS_NS) == -ETIMEDOUT); /* full */
            CHECK(ringo_now() - t0 >= 29 * MS_NS);
            CHECK(ringo_chan_len(c) == 1);
            CHECK(ringo_chan_recv_until(c, &out, 0) == 1 && out == 7); /* ready: a past deadline takes it */
        } else {
            t0 = ringo_now();
            CHECK(ringo_chan_send_until(c, &v, t0 + 30 * MS_NS) == -ETIMEDOUT); /* no receiver */
            CHECK(ringo_now() - t0 >= 29 * MS_NS);
        }
        /* a partner before the deadline */
        struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
        struct late_partner l = { .c = c, .after_ns = 20 * MS_NS, .op = RINGO_SEND, .wg = &wg };
        ringo_wg_add(&wg, 1);
        ringo_go(late_partner_main, &l);
        out = -1;
        CHECK(ringo_chan_recv_until(c, &out, ringo_now() + 5000 * MS_NS) == 1 && out == 42);
        ringo_wg_wait(&wg);
        l = (struct late_partner){ .c = c, .after_ns = 20 * MS_NS, .op = RINGO_RECV, .wg = &wg };
        ringo_wg_add(&wg, 1);
        ringo_go(late_partner_main, &l);
        v = 42;
        CHECK(ringo_chan_send_until(c, &v, ringo_now() + 5000 * MS_NS) == 0);
        ringo_wg_wait(&wg);
        CHECK(l.got == 42);
        /* closed */
        CHECK(ringo_chan_close(c) == 0);
        CHECK(ringo_chan_send_until(c, &v, ringo_now() + 30 * MS_NS) == -EPIPE);
        out = -1;
        CHECK(ringo_chan_recv_until(c, &out, ringo_now() + 30 * MS_NS) == 0 && out == 0); /* zeroed */
        CHECK(ringo_chan_free(c) == 0);
    }
    long v = 1;
    CHECK(ringo_chan_send_until(NULL, &v, -1) == -EINVAL);
    CHECK(ringo_chan_recv_until(NULL, &v, ringo_now() + MS_NS) == -EINVAL);
}

static void test_chan_deadline_calls(void **state)
{
    (void)state;
    tu_watchdog_arm("deadline calls", 30);
    for (int kind = 0; kind < 2; kind++) {
        struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
        struct until_arg a = { kind, &wg };
        ringo_wg_add(&wg, 1);
        spawn(kind, until_main, &a);
        ringo_wg_wait(&wg);
    }
    tu_watchdog_disarm();
}

/* Stress: senders with short random deadlines race one slow receiver. Every value whose send
 * returned 0 is received exactly once, and none whose send timed out (count and checksum). */
#define UNTIL_SENDERS 16
#define UNTIL_PER 400
struct until_stress {
    ringo_chan *c;
    _Atomic uint64_t sent_n, sent_sum;
    struct ringo_waitgroup *wg;
    uint32_t seed;
};

static void until_sender(void *p)
{
    struct until_stress *u = p;
    uint32_t x = u->seed;
    for (uint64_t i = 0; i < UNTIL_PER; i++) {
        x = x * 1664525u + 1013904223u;
        uint64_t v = ((uint64_t)u->seed << 32) | i;
        int64_t dl = ringo_now() + (int64_t)(x % 200) * 1000; /* 0-200 us */
        int r = ringo_chan_send_until(u->c, &v, (x & 15) == 0 ? 0 : dl);
        CHECK(r == 0 || r == -ETIMEDOUT);
        if (r == 0) {
            atomic_fetch_add_explicit(&u->sent_n, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&u->sent_sum, v * 2654435761u, memory_order_relaxed);
        }
    }
    ringo_wg_done(u->wg);
}

static void test_chan_deadline_stress_loses_and_duplicates_nothing(void **state)
{
    (void)state;
    tu_watchdog_arm("deadline stress", 120);
    for (size_t cap = 0; cap <= 4; cap += 4) {
        ringo_chan *c = ringo_chan_make(sizeof(uint64_t), cap);
        struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
        static struct until_stress us[UNTIL_SENDERS];
        _Atomic uint64_t total_n = 0, total_sum = 0;
        ringo_wg_add(&wg, UNTIL_SENDERS);
        for (int i = 0; i < UNTIL_SENDERS; i++) {
            us[i] = (struct until_stress){ .c = c, .wg = &wg, .seed = 0x1000u + (uint32_t)i };
            spawn(i % 3 == 0 ? TH : G, until_sender, &us[i]);
        }
        /* the receiver, here: slow enough that many sends time out, until every sender is done */
        uint64_t got_n = 0, got_sum = 0, v;
        int idle = 0;
        while (idle < 50) {
            int r = ringo_chan_recv_until(c, &v, ringo_now() + 2 * MS_NS);
            if (r == 1) {
                got_n++;
                got_sum += v * 2654435761u;
                idle = 0;
                if ((got_n & 7) == 0)
                    ringo_sleep(20000);
            } else {
                CHECK(r == -ETIMEDOUT);
                idle++; /* 50 quiet receives in a row (100 ms): every sender has finished */
            }
        }
        ringo_wg_wait(&wg);
        while (ringo_chan_try_recv(c, &v) == 1) {
            got_n++;
            got_sum += v * 2654435761u;
        }
        for (int i = 0; i < UNTIL_SENDERS; i++) {
            total_n += atomic_load(&us[i].sent_n);
            total_sum += atomic_load(&us[i].sent_sum);
        }
        print_message("# cap %zu: %llu of %d sends went through before their deadline\n", cap,
                      (unsigned long long)total_n, UNTIL_SENDERS * UNTIL_PER);
        if (got_n != total_n || got_sum != total_sum)
            fail_msg("cap %zu: received %llu values (checksum %llx), sent %llu (%llx)", cap, (unsigned long long)got_n,
                     (unsigned long long)got_sum, (unsigned long long)total_n, (unsigned long long)total_sum);
        assert_true(total_n > 0 && total_n < UNTIL_SENDERS * UNTIL_PER); /* both outcomes happened */
        assert_int_equal(ringo_chan_free(c), 0);
    }
    tu_watchdog_disarm();
}

int main(int argc, char **argv)
{
    tu_maybe_child(argc, argv, scenarios);
    const struct CMUnitTest tests[] = {
        T(test_chan_make_len_cap_every_size_and_cap),
        T(test_chan_make_absurd_sizes_return_null_and_errno),
        T(test_chan_buffered_fifo_len_and_eagain_every_size_and_cap),
        T(test_chan_zero_size_elements_count_and_touch_nothing),
        T(test_chan_null_channel_is_einval_everywhere),
        T(test_chan_recv_null_out_discards),
        T(test_chan_close_semantics_every_size_and_cap),
        T(test_chan_close_wakes_every_blocked_receiver),
        T(test_chan_close_wakes_every_blocked_sender_with_epipe),
        T(test_chan_close_races_with_blocked_senders_and_receivers),
        T(test_chan_unbuffered_try_ops_succeed_only_with_a_waiting_partner),
        T(test_chan_buffered_try_recv_makes_room_for_a_blocked_sender),
        T(test_chan_unbuffered_send_is_a_rendezvous),
        T(test_chan_fifo_per_sender),
        T(test_chan_goroutines_and_threads_in_every_mix),
        T(test_chan_range_receives_until_closed),
        T(test_chan_polling_does_not_starve_the_other_side),
        T(test_chan_free_is_ebusy_while_someone_is_blocked),
        T(test_chan_free_after_close_waits_for_woken_receivers),
        T(test_chan_free_right_after_the_last_value_is_received),
        T(test_chan_deadline_calls),
        T(test_chan_deadline_stress_loses_and_duplicates_nothing),
    };
    if (getenv("RINGO_TEST_FILTER")) /* run only the cases matching this pattern */
        cmocka_set_test_filter(getenv("RINGO_TEST_FILTER"));
    return TU_RUN_GROUP("chan", tests, NULL, NULL);
}
