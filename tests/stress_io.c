/* tests/stress_io.c — the I/O backend's rare paths, under load (RINGO_STRESS_ITERS scales it).
 *
 * Responsibility: with rings of 4 SQEs (ring_entries = 4) every few operations find the
 *   submission queue full, so goroutines submit themselves, retry after a yield, and the idle
 *   sleep arms its doorbell after reaping; check that echo traffic with a deadline on every call
 *   (two SQEs each) still moves every byte. Then a storm of ringo_close calls ending waits on
 *   other workers' rings (the cancel hand-shake) with no wait left behind and no fd leaked; and
 *   deadlines racing with data: a byte written right at a read's deadline is read exactly once,
 *   by the timed read or by the next one, never lost. And reads with deadlines racing closes of
 *   their fd (issue 11, items 3 and 4), two per fd, often on both workers: each ends with the
 *   data, -EBADF, or -ETIMEDOUT only if its deadline passed before the close was over; on
 *   io_uring and (in a child with RINGO_DISABLE=io_uring) on epoll.
 * Invariants: assertions on the main thread only; goroutines count what they saw. alarm() on
 *   every case. Servers bind 127.0.0.1.
 * Depends on: the public API, cmocka.
 */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "ringo.h"

#include "tests/ioutil.h"
#include "tests/testutil.h"

#define note_bad(...) fail_at(__LINE__, __VA_ARGS__)

static long iters = 1;

static int group_setup(void **state)
{
    (void)state;
    const char *s = getenv("RINGO_STRESS_ITERS");
    if (s && atol(s) > 0)
        iters = atol(s);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    struct ringo_config cfg = { .procs = 2, .pin = -1, .ring_entries = 4 };
    int r = ringo_init(&cfg);
    return (r == 0 || r == -EALREADY) && ringo_procs() == 2 ? 0 : -1;
}

/* ================================================================== tiny rings, echo */

#define CONNS 200
#define ROUNDS 50

struct echo {
    int lfd;
    uint16_t port;
    _Atomic long ok;
    struct ringo_waitgroup servers;
};

static void serve(void *p)
{
    void **a = p;
    struct echo *e = a[0];
    int fd = (int)(intptr_t)a[1];
    free(a);
    char buf[1024];
    for (;;) {
        ssize_t n = ringo_recv(fd, buf, sizeof buf, 0, ringo_now() + 60 * SEC);
        if (n <= 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = ringo_send(fd, buf + off, (size_t)(n - off), 0, ringo_now() + 60 * SEC);
            if (w <= 0)
                goto out;
            off += w;
        }
    }
out:
    ringo_close(fd);
    ringo_wg_done(&e->servers);
}

static void acceptor(void *p)
{
    struct echo *e = p;
    for (long i = 0; i < CONNS * iters; i++) {
        int fd = ringo_accept(e->lfd, NULL, NULL, ringo_now() + 60 * SEC);
        if (fd < 0) {
            note_bad("accept: %d", fd);
            ringo_wg_add(&e->servers, -(CONNS * iters - i));
            return;
        }
        void **a = malloc(2 * sizeof *a);
        a[0] = e;
        a[1] = (void *)(intptr_t)fd;
        ringo_go(serve, a);
    }
}

static void client(void *p, long id)
{
    struct echo *e = p;
    int fd = ringo_tcp_dial("127.0.0.1", e->port, ringo_now() + 60 * SEC);
    if (fd < 0) {
        note_bad("dial: %d", fd);
        return;
    }
    unsigned char out[700], in[700];
    for (int r = 0; r < ROUNDS; r++) {
        size_t len = 1 + (size_t)((id * 53 + r * 11) % (long)sizeof out);
        for (size_t i = 0; i < len; i++)
            out[i] = (unsigned char)(id + r * 3 + i * 7);
        size_t done = 0;
        while (done < len) {
            ssize_t w = ringo_write(fd, out + done, len - done, ringo_now() + 60 * SEC);
            if (w <= 0) {
                note_bad("client %ld write: %zd", id, w);
                goto out;
            }
            done += (size_t)w;
        }
        for (done = 0; done < len;) {
            ssize_t n = ringo_read(fd, in + done, len - done, ringo_now() + 60 * SEC);
            if (n <= 0) {
                note_bad("client %ld read: %zd", id, n);
                goto out;
            }
            done += (size_t)n;
        }
        if (memcmp(in, out, len) != 0) {
            note_bad("client %ld round %d: bytes differ", id, r);
            goto out;
        }
    }
    atomic_fetch_add_explicit(&e->ok, 1, memory_order_relaxed);
out:
    ringo_close(fd);
}

static void stress_io_tiny_ring_echo_with_deadlines(void **state)
{
    (void)state;
    begin(300);
    static struct echo e;
    memset(&e, 0, sizeof e);
    e.lfd = ringo_tcp_listen("127.0.0.1", 0, 4096);
    assert_true(e.lfd >= 0);
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    getsockname(e.lfd, (struct sockaddr *)&sa, &len);
    e.port = ntohs(sa.sin_port);
    ringo_wg_add(&e.servers, CONNS * iters);
    assert_true(ringo_go(acceptor, &e) > 0);
    run_n(CONNS * iters, client, &e);
    ringo_wg_wait(&e.servers);
    ringo_close(e.lfd);
    end();
    assert_int_equal(LOAD(e.ok), CONNS * iters);
}

/* ================================================================== close storm */

struct pairwait {
    int fd;
    ssize_t r;
    _Atomic int reading; /* relaxed: the reader is about to call ringo_read */
    struct ringo_waitgroup done;
};

static void blocked_read(void *p)
{
    struct pairwait *pw = p;
    char c;
    atomic_store_explicit(&pw->reading, 1, memory_order_relaxed);
    pw->r = ringo_read(pw->fd, &c, 1, -1);
    ringo_wg_done(&pw->done);
}

static void closer(void *p, long i)
{
    (void)p;
    for (int k = 0; k < 20; k++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
            note_bad("socketpair: %d", errno);
            return;
        }
        /* A read that starts while the close is in progress may start again once the number is
         * closed (fd.c F5) and read whatever the number names by then: with 100 closers making
         * socketpairs, often another closer's new socket (CI's ASan run: "read on a closed fd
         * returned 0"). So the reader's number is one no other closer's socketpair takes: a
         * copy above the low numbers, in this closer's own range. */
        int hi = fcntl(sv[0], F_DUPFD_CLOEXEC, 600 + (int)(i % 300));
        if (hi < 0) {
            note_bad("F_DUPFD: %d", errno);
            return;
        }
        close(sv[0]);
        sv[0] = hi;
        struct pairwait pw = { .fd = sv[0], .r = 1 };
        ringo_wg_add(&pw.done, 1);
        ringo_go(blocked_read, &pw);
        while (!atomic_load_explicit(&pw.reading, memory_order_relaxed))
            ringo_yield();
        /* let the reader park, often on the other worker */
        if ((i + k) % 3)
            ringo_sleep(1 * MS);
        else
            ringo_yield();
        int r = ringo_close(sv[0]);
        if (r != 0)
            note_bad("close: %d", r);
        ringo_wg_wait(&pw.done);
        if (pw.r >= 0)
            note_bad("read on a closed fd returned %zd", pw.r);
        ringo_close(sv[1]);
    }
}

static void stress_io_close_storm_ends_every_wait(void **state)
{
    (void)state;
    begin(120);
    int fds0 = count_fds();
    run_n(100 * iters, closer, NULL);
    end();
    assert_int_equal(count_fds(), fds0);
}

/* ================================================================== deadlines racing data */

struct race {
    _Atomic long sent, got;
};

static void race_pair(void *p, long i)
{
    struct race *rc = p;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        note_bad("socketpair: %d", errno);
        return;
    }
    for (int k = 0; k < 20; k++) {
        int64_t dl = ringo_now() + (1 + (i + k) % 3) * MS;
        /* the byte goes out around the deadline: sometimes before, sometimes after */
        ringo_sleep((int64_t)((i * 7 + k * 13) % 3) * MS);
        if (ringo_write(sv[1], "b", 1, -1) == 1)
            atomic_fetch_add_explicit(&rc->sent, 1, memory_order_relaxed);
        char c;
        ssize_t r = ringo_read(sv[0], &c, 1, dl);
        if (r == -ETIMEDOUT) /* the timed read consumed nothing: the byte is still there */
            r = ringo_read(sv[0], &c, 1, ringo_now() + 10 * SEC);
        if (r == 1 && c == 'b')
            atomic_fetch_add_explicit(&rc->got, 1, memory_order_relaxed);
        else
            note_bad("pair %ld round %d: %zd", i, k, r);
    }
    /* nothing extra is left behind either */
    char c;
    ssize_t r = ringo_read(sv[0], &c, 1, ringo_now());
    if (r != -ETIMEDOUT)
        note_bad("pair %ld: stray read %zd", i, r);
    ringo_close(sv[0]);
    ringo_close(sv[1]);
}

static void stress_io_deadline_races_lose_no_byte(void **state)
{
    (void)state;
    begin(120);
    struct race rc;
    memset(&rc, 0, sizeof rc);
    run_n(200 * iters, race_pair, &rc);
    end();
    assert_int_equal(LOAD(rc.sent), 200 * iters * 20);
    assert_int_equal(LOAD(rc.got), LOAD(rc.sent));
}

/* ================================================================== deadlines racing closes */

/* Rounds of RACE_PAIRS socket pairs made up front (no descriptor is created while a round runs,
 * so a closed number is not reused under a reader that starts late: that one sees -EBADF). Each
 * pair: two readers with a deadline (spawned apart, so often on both workers: the close must
 * cancel on every ring holding a read, issue 11 item 3, and only there), and a goroutine that
 * after a little while perhaps writes a byte, then closes the readers' end. With the close
 * waiting for the readers to leave, a read that ends with -ETIMEDOUT ended before the close
 * returned, so its deadline is before the close's end; the bug (a wait registered after the
 * close cancelled, on a number being closed, or a ring the close did not ask) shows as
 * -ETIMEDOUT at a deadline long after the close was over. */
#define RACE_PAIRS 40
#define RACE_ROUNDS 100
#define RACE_READERS 2

struct crace {
    int sv[2];
    int64_t deadline[RACE_READERS], close_done, read_done[RACE_READERS];
    ssize_t r[RACE_READERS];
    int how;
    _Atomic int reading;  /* a reader is about to call ringo_read; relaxed: a hint for timing */
    struct ringo_waitgroup closed;
};

enum { CR_DATA, CR_EBADF, CR_TIMEDOUT, CR_BAD, CR_N };
static _Atomic long cr_count[CR_N];

static void crace_closer(struct crace *c)
{
    if (c->how & 1)
        ringo_write(c->sv[1], "d", 1, -1);
    if ((c->how & 6) == 2) {
        ringo_sleep((int64_t)(c->how >> 3) * MS / 2);
    } else if ((c->how & 6) == 4) {
        ringo_yield();
    } else {
        /* close right as the read starts, often from the other worker: the EAGAIN window */
        for (int k = 0; k < 1000 && !atomic_load_explicit(&c->reading, memory_order_relaxed); k++)
            ringo_yield();
        for (volatile int k = (c->how >> 3) * 200; k > 0; k--)
            ;
    }
    ringo_close(c->sv[0]);
    c->close_done = ringo_now();
    ringo_wg_done(&c->closed);
}

/* Job (RACE_READERS + 1) * i + k is reader k of pair i, or (k == RACE_READERS) its closer.
 * Spawned from the main thread, the three often run on different workers at once. */
static void crace_reader(void *p, long i)
{
    struct crace *c = (struct crace *)p + i / (RACE_READERS + 1);
    int k = (int)(i % (RACE_READERS + 1));
    if (k == RACE_READERS) {
        crace_closer(c);
        return;
    }
    static const int64_t dls[] = { 1 * MS, 2 * MS, 3 * MS, 50 * MS };
    c->deadline[k] = ringo_now() + dls[((c->how >> 1) + k) % 4];
    char b = 0;
    atomic_store_explicit(&c->reading, 1, memory_order_relaxed);
    c->r[k] = ringo_read(c->sv[0], &b, 1, c->deadline[k]);
    c->read_done[k] = ringo_now();
    ringo_wg_wait(&c->closed);
    int kind = CR_BAD;
    if (c->r[k] == 1 && b == 'd')
        kind = CR_DATA;
    else if (c->r[k] == -EBADF)
        kind = CR_EBADF;
    else if (c->r[k] == -ETIMEDOUT && c->read_done[k] >= c->deadline[k] && c->close_done >= c->deadline[k])
        kind = CR_TIMEDOUT;
    else
        note_bad("read %zd: ended %+lld us, close done %+lld us from the deadline",
                 c->r[k], (long long)(c->read_done[k] - c->deadline[k]) / 1000,
                 (long long)(c->close_done - c->deadline[k]) / 1000);
    atomic_fetch_add_explicit(&cr_count[kind], 1, memory_order_relaxed);
}

/* Runs the rounds; 0 when every read ended as it may. */
static int crace_run(long rounds)
{
    static struct crace cs[RACE_PAIRS];
    uint32_t rng = 12345;
    for (long round = 0; round < rounds; round++) {
        for (int i = 0; i < RACE_PAIRS; i++) {
            memset(&cs[i], 0, sizeof cs[i]);
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cs[i].sv) != 0)
                return 2;
            rng = rng * 1103515245u + 12345u;
            cs[i].how = (int)((rng >> 16) & 63);
            ringo_wg_add(&cs[i].closed, 1);
        }
        run_n((RACE_READERS + 1) * RACE_PAIRS, crace_reader, cs);
        for (int i = 0; i < RACE_PAIRS; i++)
            close(cs[i].sv[1]);
    }
    printf("# %ld reads: %ld data, %ld -EBADF, %ld -ETIMEDOUT, %ld bad\n", rounds * RACE_PAIRS * RACE_READERS,
           LOAD(cr_count[CR_DATA]), LOAD(cr_count[CR_EBADF]), LOAD(cr_count[CR_TIMEDOUT]),
           LOAD(cr_count[CR_BAD]));
    return LOAD(cr_count[CR_BAD]) != 0;
}

static void stress_io_reads_racing_closes_end_promptly(void **state)
{
    (void)state;
    begin(300);
    int fds0 = count_fds();
    int r = crace_run(RACE_ROUNDS * iters); /* this process's backend (io_uring here) */
    end();
    assert_int_equal(r, 0);
    assert_int_equal(count_fds(), fds0);
    static const char *const env[] = { "RINGO_DISABLE=io_uring", NULL };
    struct child_result cr;
    tu_run_child("reads_racing_closes", env, 300, &cr); /* and on epoll */
    print_message("# epoll child: exited %d code %d signal %d: %s", cr.exited, cr.code, cr.signo, cr.out);
    assert_true(cr.exited);
    assert_int_equal(cr.code, 0);
}

static int child_reads_racing_closes(void)
{
    if (group_setup(NULL) != 0)
        return 2;
    int r = crace_run(RACE_ROUNDS * iters);
    if (atomic_load_explicit(&failures, memory_order_relaxed))
        printf("first failures: %s\n", failmsg);
    return r;
}

static const struct child_scenario child_scenarios[] = {
    { "reads_racing_closes", child_reads_racing_closes },
    { NULL, NULL },
};

int main(int argc, char **argv)
{
    tu_maybe_child(argc, argv, child_scenarios);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stress_io_tiny_ring_echo_with_deadlines),
        cmocka_unit_test(stress_io_close_storm_ends_every_wait),
        cmocka_unit_test(stress_io_deadline_races_lose_no_byte),
        cmocka_unit_test(stress_io_reads_racing_closes_end_promptly),
    };
    return TU_RUN_GROUP("stress_io", tests, group_setup, NULL);
}
