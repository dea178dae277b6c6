/* tests/test_net.c — the server calls beyond read/write (issue 13): datagrams (ringo_sendto,
 * ringo_recvfrom, ringo_sendmsg, ringo_recvmsg), Unix-domain sockets, ringo_resolve,
 * ringo_sendfile and ringo_shutdown.
 *
 * Responsibility: each call moves every byte (UDP echo of 64 goroutines x 200 datagrams, each
 *   checked; a 4 MiB file through ringo_sendfile, checksummed; Unix echo on a path and in the
 *   abstract namespace), honours its deadline without consuming anything (a datagram sent
 *   after a timed-out receive arrives whole), passes ancillary data (an fd over SCM_RIGHTS),
 *   reports bad input as the system call does, and works on plain threads. ringo_resolve's
 *   deadline is checked with a hook that makes the lookup slow: the caller returns at its
 *   deadline, and the lookup it left behind frees itself. make check runs this binary on the
 *   default backend and with RINGO_DISABLE=io_uring (tests/net_nouring.sh).
 * Invariants: assertions on the main thread only; goroutines CHECK into shared counters read
 *   after a wait group. Every test arms alarm(). Servers bind loopback only.
 * Depends on: the public API (ringo.h), cmocka, tests/ioutil.h, the test hook in sched/io/tcp.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cmocka.h>

#include "ringo.h"
#include "tests/ioutil.h"
#include "tests/testutil.h"

/* ================================================================== helpers */

static int udp_socket(struct sockaddr_in *bound)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof *bound;
    assert_int_equal(getsockname(fd, (struct sockaddr *)bound, &len), 0);
    return fd;
}

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

/* ================================================================== UDP */

#define UDP_CLIENTS 64
#define UDP_ROUNDS 200

struct udp_echo {
    int sfd;
    struct sockaddr_in srv;
    _Atomic long served, echoed;
};

/* The server: every datagram back to its sender, until a 1-byte "q". */
static void udp_server(void *p)
{
    struct udp_echo *u = p;
    char buf[256];
    for (;;) {
        struct sockaddr_in from;
        socklen_t flen = sizeof from;
        ssize_t n = ringo_recvfrom(u->sfd, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen, -1);
        CHECK(n >= 0, "server recvfrom %zd", n);
        if (n < 0)
            return;
        CHECK(flen == sizeof from && from.sin_family == AF_INET, "server fromlen %u", (unsigned)flen);
        if (n == 1 && buf[0] == 'q')
            return;
        ssize_t w = ringo_sendto(u->sfd, buf, (size_t)n, 0, (struct sockaddr *)&from, flen, -1);
        CHECK(w == n, "server sendto %zd of %zd", w, n);
        atomic_fetch_add_explicit(&u->served, 1, memory_order_relaxed);
    }
}

/* A client: UDP_ROUNDS datagrams, each a different length and content, each answered exactly. */
static void udp_client(void *p, long i)
{
    struct udp_echo *u = p;
    struct sockaddr_in me;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0, "socket");
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0, "bind");
    socklen_t ml = sizeof me;
    getsockname(fd, (struct sockaddr *)&me, &ml);
    for (int r = 0; r < UDP_ROUNDS; r++) {
        char out[200], in[256];
        size_t n = 8 + (size_t)((i * 31 + r * 7) % 190);
        for (size_t k = 0; k < n; k++)
            out[k] = (char)(i * 131 + r * 17 + (long)k);
        ssize_t w = ringo_sendto(fd, out, n, 0, (struct sockaddr *)&u->srv, sizeof u->srv, -1);
        CHECK(w == (ssize_t)n, "client %ld sendto %zd", i, w);
        /* a datagram the loopback drops (a full receive buffer) is sent again */
        ssize_t got;
        int tries = 0;
        while ((got = ringo_recv(fd, in, sizeof in, 0, ringo_now() + 500 * MS)) == -ETIMEDOUT && ++tries < 10)
            ringo_sendto(fd, out, n, 0, (struct sockaddr *)&u->srv, sizeof u->srv, -1);
        CHECK(got == (ssize_t)n && memcmp(in, out, n) == 0, "client %ld round %d: got %zd of %zu", i, r, got, n);
        if (got == (ssize_t)n)
            atomic_fetch_add_explicit(&u->echoed, 1, memory_order_relaxed);
    }
    ringo_close(fd);
}

struct udp_srv {
    struct udp_echo *u;
    struct ringo_waitgroup *wg;
};

static void udp_server_main(void *p)
{
    struct udp_srv *s = p;
    udp_server(s->u);
    ringo_wg_done(s->wg);
}

static void test_net_udp_echo_every_datagram(void **state)
{
    (void)state;
    begin(120);
    struct udp_echo u = { 0 };
    u.sfd = udp_socket(&u.srv);
    int rcv = 1 << 20;
    setsockopt(u.sfd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    struct udp_srv srv = { &u, &wg };
    ringo_wg_add(&wg, 1);
    assert_true(ringo_go(udp_server_main, &srv) > 0);
    run_n(UDP_CLIENTS, udp_client, &u);
    int q = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_int_equal(ringo_sendto(q, "q", 1, 0, (struct sockaddr *)&u.srv, sizeof u.srv, -1), 1);
    ringo_wg_wait(&wg);
    close(q);
    end();
    assert_int_equal(LOAD(u.echoed), UDP_CLIENTS * UDP_ROUNDS);
    assert_true(LOAD(u.served) >= UDP_CLIENTS * UDP_ROUNDS);
    ringo_close(u.sfd);
}

/* A receive that times out consumes nothing; the datagram sent after it arrives whole, with
 * its sender's address; MSG_PEEK and MSG_TRUNC pass through; bad input as the system call. */
struct dgram_case {
    int fd;
    struct sockaddr_in srv;
    long ok;
};

static void dgram_deadline_main(void *p, long i)
{
    (void)i;
    struct dgram_case *d = p;
    char buf[64];
    struct sockaddr_in from;
    socklen_t flen = sizeof from;
    int64_t t0 = ringo_now();
    ssize_t r = ringo_recvfrom(d->fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen, t0 + 60 * MS);
    CHECK(r == -ETIMEDOUT && ringo_now() - t0 >= 59 * MS, "timed-out recvfrom %zd after %lld ns", r,
          (long long)(ringo_now() - t0));
    CHECK(flen == sizeof from, "fromlen changed by a timed-out call: %u", (unsigned)flen);
    CHECK(ringo_recvfrom(d->fd, buf, sizeof buf, 0, NULL, NULL, 0) == -ETIMEDOUT, "past deadline: once");
    struct sockaddr_in me;
    int c = udp_socket(&me);
    CHECK(ringo_sendto(c, "datagram", 8, 0, (struct sockaddr *)&d->srv, sizeof d->srv, -1) == 8, "sendto");
    /* peek, then a truncated read that says the real length (MSG_TRUNC), through recvmsg */
    r = ringo_recvfrom(d->fd, buf, 4, MSG_PEEK, (struct sockaddr *)&from, &flen, ringo_now() + 5 * SEC);
    CHECK(r == 4 && memcmp(buf, "data", 4) == 0, "peek %zd", r);
    CHECK(flen == sizeof from && from.sin_port == me.sin_port, "peek sender port %u want %u",
          ntohs(from.sin_port), ntohs(me.sin_port));
    struct iovec iov = { buf, 3 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    r = ringo_recvmsg(d->fd, &m, MSG_TRUNC, ringo_now() + 5 * SEC);
    CHECK(r == 8 && (m.msg_flags & MSG_TRUNC) && memcmp(buf, "dat", 3) == 0, "recvmsg TRUNC %zd flags %x", r,
          (unsigned)m.msg_flags);
    /* a scatter-gather send arrives as one datagram */
    struct iovec two[2] = { { "ab", 2 }, { "cde", 3 } };
    struct msghdr sm = { .msg_name = &d->srv, .msg_namelen = sizeof d->srv, .msg_iov = two, .msg_iovlen = 2 };
    CHECK(ringo_sendmsg(c, &sm, 0, -1) == 5, "sendmsg gather");
    r = ringo_recv(d->fd, buf, sizeof buf, 0, ringo_now() + 5 * SEC);
    CHECK(r == 5 && memcmp(buf, "abcde", 5) == 0, "gathered datagram %zd", r);
    ringo_close(c);
    d->ok = 1;
}

static void test_net_datagram_deadline_flags_and_bad_input(void **state)
{
    (void)state;
    begin(30);
    struct dgram_case d = { 0 };
    d.fd = udp_socket(&d.srv);
    run_n(1, dgram_deadline_main, &d);
    end();
    assert_int_equal(d.ok, 1);
    char b[4];
    assert_int_equal(ringo_sendto(-1, "x", 1, 0, NULL, 0, -1), -EBADF);
    assert_int_equal(ringo_recvfrom(d.fd, NULL, 4, 0, NULL, NULL, 0), -EFAULT);
    assert_int_equal(ringo_recvfrom(d.fd, b, 4, 0, (struct sockaddr *)b, NULL, 0), -EFAULT);
    assert_int_equal(ringo_recvmsg(d.fd, NULL, 0, 0), -EFAULT);
    assert_int_equal(ringo_sendmsg(d.fd, NULL, 0, 0), -EFAULT);
    /* an unconnected UDP socket without a destination: the kernel's answer */
    assert_int_equal(ringo_sendto(d.fd, "x", 1, 0, NULL, 0, -1), -EDESTADDRREQ);
    /* plain thread: a deadline, then data */
    int64_t t0 = ringo_now();
    assert_int_equal(ringo_recvfrom(d.fd, b, sizeof b, 0, NULL, NULL, t0 + 50 * MS), -ETIMEDOUT);
    assert_true(ringo_now() - t0 >= 49 * MS);
    assert_int_equal(ringo_sendto(d.fd, "pt", 2, 0, (struct sockaddr *)&d.srv, sizeof d.srv, -1), 2);
    assert_int_equal(ringo_recvfrom(d.fd, b, sizeof b, 0, NULL, NULL, ringo_now() + 5 * SEC), 2);
    assert_memory_equal(b, "pt", 2);
    ringo_close(d.fd);
}

/* ================================================================== ancillary data */

static void scm_main(void *p, long i)
{
    (void)i;
    int *sv = p;
    int pfd[2];
    CHECK(pipe(pfd) == 0, "pipe");
    /* send the pipe's write end, with one byte of data */
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec iov = { "F", 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &pfd[1], sizeof(int));
    CHECK(ringo_sendmsg(sv[0], &m, 0, ringo_now() + 5 * SEC) == 1, "sendmsg SCM_RIGHTS");
    close(pfd[1]);
    /* the receiver writes through the fd it got; we read it from the pipe */
    char got[8];
    ssize_t n = ringo_read(pfd[0], got, sizeof got, ringo_now() + 5 * SEC);
    CHECK(n == 5 && memcmp(got, "thru!", 5) == 0, "read through the passed fd %zd", n);
    close(pfd[0]);
}

static void scm_recv_main(void *p, long i)
{
    (void)i;
    int *sv = p;
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } ctl;
    char one;
    struct iovec iov = { &one, 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b };
    ssize_t n = ringo_recvmsg(sv[1], &m, MSG_CMSG_CLOEXEC, ringo_now() + 5 * SEC);
    CHECK(n == 1 && one == 'F', "recvmsg %zd", n);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    CHECK(c && c->cmsg_type == SCM_RIGHTS && m.msg_controllen >= CMSG_LEN(sizeof(int)), "no SCM_RIGHTS (controllen %zu)",
          (size_t)m.msg_controllen);
    if (!c)
        return;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC, "MSG_CMSG_CLOEXEC passed through");
    CHECK(ringo_write(fd, "thru!", 5, -1) == 5, "write through the passed fd");
    close(fd);
}

static void scm_both(void *p, long i)
{
    if (i == 0)
        scm_main(p, i);
    else
        scm_recv_main(p, i);
}

static void test_net_recvmsg_passes_an_fd(void **state)
{
    (void)state;
    begin(30);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    run_n(2, scm_both, sv);
    end();
    close(sv[0]);
    close(sv[1]);
}

/* ================================================================== Unix-domain sockets */

struct unix_case {
    const char *path;
    int lfd;
    struct ringo_waitgroup servers; /* the per-connection goroutines: done once each closed */
    _Atomic uint64_t sum_in;
};

#define UNIX_CLIENTS 32
#define UNIX_BYTES (256 * 1024)

struct unix_conn {
    struct unix_case *u;
    int fd;
};

static void unix_serve_one(void *p)
{
    struct unix_conn *c = p;
    int fd = c->fd;
    struct unix_case *u = c->u;
    free(c);
    char buf[8192];
    ssize_t n;
    while ((n = ringo_read(fd, buf, sizeof buf, ringo_now() + 30 * SEC)) > 0)
        if (ringo_write(fd, buf, (size_t)n, ringo_now() + 30 * SEC) != n)
            break;
    ringo_close(fd);
    ringo_wg_done(&u->servers);
}

static void unix_acceptor(void *p, long i)
{
    (void)i;
    struct unix_case *u = p;
    for (int k = 0; k < UNIX_CLIENTS; k++) {
        int fd = ringo_accept(u->lfd, NULL, NULL, ringo_now() + 30 * SEC);
        CHECK(fd >= 0, "accept %d", fd);
        if (fd < 0)
            return;
        struct unix_conn *c = malloc(sizeof *c);
        *c = (struct unix_conn){ u, fd };
        ringo_wg_add(&u->servers, 1);
        ringo_go(unix_serve_one, c);
    }
}

struct unix_pump {
    int fd;
    long i;
    uint64_t sum;
};

struct unix_writer_arg {
    struct unix_pump *w;
    struct ringo_waitgroup *wg;
};

/* Writes UNIX_BYTES (a pattern of its own), then shuts its side: the server's read ends, it
 * closes, and our read ends. */
static void unix_writer(void *p)
{
    struct unix_writer_arg *a = p;
    struct unix_pump *w = a->w;
    char buf[4096];
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t off = 0; off < UNIX_BYTES; off += sizeof buf) {
        for (size_t k = 0; k < sizeof buf; k++)
            buf[k] = (char)((off + k) * 7 + (size_t)w->i);
        h = fnv(buf, sizeof buf, h);
        if (ringo_write(w->fd, buf, sizeof buf, ringo_now() + 30 * SEC) != (ssize_t)sizeof buf) {
            CHECK(0, "client write");
            break;
        }
    }
    w->sum = h;
    CHECK(ringo_shutdown(w->fd, SHUT_WR) == 0, "shutdown");
    ringo_wg_done(a->wg);
}

static void unix_client(void *p, long i)
{
    struct unix_case *u = p;
    int fd = ringo_unix_dial(u->path, ringo_now() + 10 * SEC);
    CHECK(fd >= 0, "dial %s: %d", u->path, fd);
    if (fd < 0)
        return;
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    struct unix_pump w = { fd, i, 0 };
    struct unix_writer_arg arg = { &w, &wg };
    ringo_wg_add(&wg, 1);
    ringo_go(unix_writer, &arg);
    char buf[8192];
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t total = 0;
    ssize_t n;
    while ((n = ringo_read(fd, buf, sizeof buf, ringo_now() + 30 * SEC)) > 0) {
        h = fnv(buf, (size_t)n, h);
        total += (size_t)n;
    }
    ringo_wg_wait(&wg);
    CHECK(n == 0 && total == UNIX_BYTES, "client %ld: %zu bytes back, last %zd", i, total, n);
    CHECK(h == w.sum, "client %ld: checksum", i);
    atomic_fetch_add_explicit(&u->sum_in, total, memory_order_relaxed);
    ringo_close(fd);
}

static void unix_both(void *p, long i)
{
    if (i == 0)
        unix_acceptor(p, i);
    else
        unix_client(p, i - 1);
}

static void unix_echo(const char *path)
{
    struct unix_case u = { .path = path, .servers = RINGO_WAITGROUP_INIT };
    u.lfd = ringo_unix_listen(path, 64);
    assert_true(u.lfd >= 0);
    assert_true(fcntl(u.lfd, F_GETFD) & FD_CLOEXEC);
    run_n(UNIX_CLIENTS + 1, unix_both, &u);
    ringo_wg_wait(&u.servers);
    assert_int_equal(LOAD(u.sum_in), (uint64_t)UNIX_CLIENTS * UNIX_BYTES);
    assert_int_equal(ringo_close(u.lfd), 0);
}

static void test_net_unix_sockets(void **state)
{
    (void)state;
    begin(120);
    char path[108];
    snprintf(path, sizeof path, "/tmp/ringo-test-%d.sock", (int)getpid());
    unlink(path);
    unix_echo(path);
    end();
    /* the file stays; listening again on it is -EADDRINUSE, as in Go */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(ringo_unix_listen(path, 0), -EADDRINUSE);
    unlink(path);
    /* nobody listens: refused (file gone: -ENOENT) */
    assert_int_equal(ringo_unix_dial(path, ringo_now() + SEC), -ENOENT);

    begin(120);
    char abs[64];
    snprintf(abs, sizeof abs, "@ringo-test-%d", (int)getpid());
    unix_echo(abs);
    end();
    /* abstract: no file was made */
    assert_int_equal(stat(abs + 1, &st), -1);
    assert_int_equal(ringo_unix_dial(abs, ringo_now() + SEC), -ECONNREFUSED);

    char longp[200];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = 0;
    assert_int_equal(ringo_unix_listen(longp, 0), -ENAMETOOLONG);
    assert_int_equal(ringo_unix_dial(longp, -1), -ENAMETOOLONG);
    assert_int_equal(ringo_unix_listen("", 0), -EINVAL);
    assert_int_equal(ringo_unix_dial(NULL, -1), -EINVAL);

    /* plain thread: listen, dial, accept, a byte each way */
    snprintf(path, sizeof path, "@ringo-plain-%d", (int)getpid());
    int l = ringo_unix_listen(path, 4);
    assert_true(l >= 0);
    int c = ringo_unix_dial(path, ringo_now() + SEC);
    assert_true(c >= 0);
    int s = ringo_accept(l, NULL, NULL, ringo_now() + SEC);
    assert_true(s >= 0);
    char b;
    assert_int_equal(ringo_write(c, "u", 1, -1), 1);
    assert_int_equal(ringo_read(s, &b, 1, ringo_now() + SEC), 1);
    assert_int_equal(b, 'u');
    ringo_close(s);
    ringo_close(c);
    ringo_close(l);
}

/* ================================================================== shutdown */

/* One goroutine parks in wait(fd); once it has, another ends the wait with end(fd) (the
 * shutdown and the lend tests). */
struct parked {
    int fd;
    _Atomic int parked;
    ssize_t got;
    ssize_t (*wait)(int fd);
    void (*end)(int fd);
};

static void parked_job(void *p, long i)
{
    struct parked *k = p;
    if (i == 0) {
        atomic_store_explicit(&k->parked, 1, memory_order_relaxed);
        k->got = k->wait(k->fd);
    } else {
        while (!atomic_load_explicit(&k->parked, memory_order_relaxed))
            ringo_yield();
        ringo_sleep(30 * MS); /* the other waits in the kernel by now */
        k->end(k->fd);
    }
}

static ssize_t recv_10s(int fd)
{
    char b[16];
    return ringo_recv(fd, b, sizeof b, 0, ringo_now() + 10 * SEC);
}

static void end_by_shutdown(int fd)
{
    CHECK(ringo_shutdown(fd, SHUT_RD) == 0, "shutdown");
}

static void test_net_shutdown_ends_a_pending_receive(void **state)
{
    (void)state;
    begin(30);
    int lfd = ringo_tcp_listen("127.0.0.1", 0, 4);
    assert_true(lfd >= 0);
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &al);
    int c = ringo_tcp_dial("127.0.0.1", ntohs(a.sin_port), ringo_now() + 5 * SEC);
    assert_true(c >= 0);
    int s = ringo_accept(lfd, NULL, NULL, ringo_now() + 5 * SEC);
    assert_true(s >= 0);
    struct parked sc = { .fd = s, .wait = recv_10s, .end = end_by_shutdown };
    int64_t t0 = ringo_now();
    run_n(2, parked_job, &sc);
    end();
    assert_int_equal(sc.got, 0); /* end of file, at once, not at the 10 s deadline */
    assert_true(ringo_now() - t0 < 5 * SEC);
    /* the write side: the peer reads end of file */
    assert_int_equal(ringo_shutdown(c, SHUT_WR), 0);
    char b;
    assert_int_equal(ringo_read(s, &b, 1, ringo_now() + 5 * SEC), 0);
    assert_int_equal(ringo_shutdown(c, 7), -EINVAL);
    assert_int_equal(ringo_shutdown(-1, SHUT_RD), -EBADF);
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(ringo_shutdown(p[0], SHUT_RD), -ENOTSOCK);
    close(p[0]);
    close(p[1]);
    ringo_close(s);
    ringo_close(c);
    ringo_close(lfd);
}

/* ================================================================== sendfile */

#define FILE_BYTES (4 * 1024 * 1024 + 123)

struct sf_case {
    int out, in, file;
    uint64_t sum;
    size_t got;
    ssize_t sent;
    off_t off;
};

static void sf_both(void *p, long i)
{
    struct sf_case *s = p;
    if (i == 0) {
        s->sent = ringo_sendfile(s->out, s->file, &s->off, FILE_BYTES + 1000, ringo_now() + 30 * SEC);
        ringo_shutdown(s->out, SHUT_WR);
    } else {
        char buf[16384];
        uint64_t h = 0xcbf29ce484222325ULL;
        ssize_t n;
        while ((n = ringo_read(s->in, buf, i == 1 ? sizeof buf : 1000, ringo_now() + 30 * SEC)) > 0) {
            h = fnv(buf, (size_t)n, h);
            s->got += (size_t)n;
        }
        s->sum = h;
    }
}

static void test_net_sendfile_every_byte_and_deadline(void **state)
{
    (void)state;
    begin(60);
    char path[64];
    snprintf(path, sizeof path, "/tmp/ringo-sendfile-%d", (int)getpid());
    int file = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(file >= 0);
    unlink(path);
    uint64_t want = 0xcbf29ce484222325ULL;
    char *data = malloc(FILE_BYTES);
    for (size_t k = 0; k < FILE_BYTES; k++)
        data[k] = (char)(k * 2654435761u >> 13);
    want = fnv(data, FILE_BYTES, want);
    assert_int_equal(write(file, data, FILE_BYTES), FILE_BYTES);
    free(data);

    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct sf_case s = { .out = sv[0], .in = sv[1], .file = file, .off = 0 };
    run_n(2, sf_both, &s);
    end();
    assert_int_equal(s.sent, FILE_BYTES); /* the file ended before count */
    assert_int_equal(s.off, FILE_BYTES);
    assert_int_equal(s.got, FILE_BYTES);
    assert_true(s.sum == want);
    assert_false(fcntl(sv[0], F_GETFL) & O_NONBLOCK); /* restored */
    close(sv[0]);
    close(sv[1]);

    /* nobody reads: the socket fills, the deadline ends the call with what was sent; the next
     * call with a past deadline sends nothing and says so */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    off_t off = 0;
    int64_t t0 = ringo_now();
    ssize_t r = ringo_sendfile(sv[0], file, &off, FILE_BYTES, t0 + 80 * MS);
    assert_true(r > 0 && r < FILE_BYTES);
    assert_int_equal(off, r);
    assert_true(ringo_now() - t0 >= 79 * MS);
    assert_int_equal(ringo_sendfile(sv[0], file, &off, FILE_BYTES, 0), -ETIMEDOUT);
    assert_int_equal(off, r);
    /* the bytes that went are the file's first r */
    char head[4096], fh[4096];
    assert_int_equal(ringo_read(sv[1], head, sizeof head, -1), (ssize_t)sizeof head);
    assert_int_equal(pread(file, fh, sizeof fh, 0), (ssize_t)sizeof fh);
    assert_memory_equal(head, fh, sizeof head);
    close(sv[1]);
    /* the peer is gone: -EPIPE, and the process lives (SIGPIPE) */
    assert_int_equal(ringo_sendfile(sv[0], file, &off, FILE_BYTES, ringo_now() + SEC), -EPIPE);
    close(sv[0]);
    assert_int_equal(ringo_sendfile(-1, file, NULL, 1, -1), -EBADF);
    close(file);
}

/* ================================================================== resolve */

/* Every open fd, eventfds included (count_fds leaves those out: workers own some; a lookup's
 * is ours to check), less the fds of the workers. A worker may be made during the test (the
 * sysmon's extra workers: seen under qemu-user, where the slow lookups keep workers in
 * ringo_blocking long enough), and each brings its own: one epoll or io_uring fd, plus an
 * eventfd for its doorbell on epoll (and on io_uring without FUTEX_WAIT). Each worker has
 * exactly one epoll or io_uring fd, so `per` (fds per worker, measured by the first call, before
 * any lookup has an eventfd open) times their number is what the workers hold. */
static int all_fds(void)
{
    static int per;
    DIR *d = opendir("/proc/self/fd");
    int n = 0, workers = 0, runtime = 0;
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        n++;
        char to[64];
        ssize_t k = readlinkat(dirfd(d), e->d_name, to, sizeof to - 1);
        to[k > 0 ? k : 0] = 0;
        bool unit = strcmp(to, "anon_inode:[eventpoll]") == 0 || strcmp(to, "anon_inode:[io_uring]") == 0;
        workers += unit;
        runtime += unit || strcmp(to, "anon_inode:[eventfd]") == 0;
    }
    closedir(d);
    if (!per)
        per = workers ? runtime / workers : 1;
    return n - per * workers;
}

extern void (*sched_test_hook_resolve)(const char *host);
static _Atomic int slow_lookups_done;

/* a DNS server that answers after 400 ms */
static void slow_dns_counted(const char *host)
{
    if (strcmp(host, "localhost") == 0)
        usleep(400000);
    /* release: the main thread's acquire load orders this thread's read of the hook pointer
     * before the main thread clears it */
    atomic_fetch_add_explicit(&slow_lookups_done, 1, memory_order_release);
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) == INADDR_LOOPBACK;
    if (ss->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)ss)->sin6_addr, &in6addr_loopback, 16) == 0;
    return false;
}

struct res_case {
    _Atomic long ok;
};

static void resolve_main(void *p, long i)
{
    struct res_case *rc = p;
    struct sockaddr_storage a[4];
    if (i == 0) {
        int n = ringo_resolve("localhost", AF_UNSPEC, a, 4, ringo_now() + 5 * SEC);
        CHECK(n >= 1, "localhost: %d", n);
        for (int k = 0; k < n; k++)
            CHECK(is_loopback(&a[k]), "localhost address %d is not loopback", k);
        n = ringo_resolve("localhost", AF_INET, a, 4, -1);
        CHECK(n >= 1 && a[0].ss_family == AF_INET && is_loopback(&a[0]), "localhost AF_INET: %d", n);
    } else {
        int n = ringo_resolve("127.0.0.1", AF_UNSPEC, a, 1, 0); /* numeric: no lookup, past deadline fine */
        CHECK(n == 1 && a[0].ss_family == AF_INET && is_loopback(&a[0]), "numeric v4: %d", n);
        n = ringo_resolve("::1", AF_INET6, a, 4, -1);
        CHECK(n == 1 && a[0].ss_family == AF_INET6 && is_loopback(&a[0]), "numeric v6: %d", n);
        n = ringo_resolve("no-such-host.invalid", AF_UNSPEC, a, 4, ringo_now() + 20 * SEC);
        CHECK(n == -ENOENT || n == -EAGAIN, "an unknown host: %d", n);
    }
    atomic_fetch_add_explicit(&rc->ok, 1, memory_order_relaxed);
}

struct slow_case {
    _Atomic long timed_out;
    _Atomic int64_t worst;
};

static void slow_resolve_main(void *p, long i)
{
    (void)i;
    struct slow_case *sc = p;
    struct sockaddr_storage a[2];
    int64_t t0 = ringo_now();
    int n = ringo_resolve("localhost", AF_UNSPEC, a, 2, t0 + 50 * MS);
    int64_t took = ringo_now() - t0;
    CHECK(n == -ETIMEDOUT, "slow lookup: %d", n);
    if (n == -ETIMEDOUT)
        atomic_fetch_add_explicit(&sc->timed_out, 1, memory_order_relaxed);
    int64_t w = atomic_load_explicit(&sc->worst, memory_order_relaxed);
    while (took > w && !atomic_compare_exchange_weak_explicit(&sc->worst, &w, took, memory_order_relaxed,
                                                              memory_order_relaxed))
        ;
    /* and ringo_tcp_dial's lookup keeps the same deadline */
    t0 = ringo_now();
    int fd = ringo_tcp_dial("localhost", 9, t0 + 50 * MS);
    CHECK(fd == -ETIMEDOUT, "slow dial: %d", fd);
    if (fd >= 0)
        ringo_close(fd);
}

static void test_net_resolve_and_its_deadline(void **state)
{
    (void)state;
    (void)ringo_init(NULL); /* started (or -EALREADY): its workers' fds are there for all_fds */
    int fds0 = all_fds(); /* every lookup below, failed or given up, closes its eventfd */
    begin(60);
    struct res_case rc = { 0 };
    run_n(2, resolve_main, &rc);
    end();
    assert_int_equal(LOAD(rc.ok), 2);
    struct sockaddr_storage a[2];
    assert_int_equal(ringo_resolve(NULL, AF_UNSPEC, a, 2, -1), -EINVAL);
    assert_int_equal(ringo_resolve("localhost", AF_UNSPEC, a, 0, -1), -EINVAL);
    assert_int_equal(ringo_resolve("localhost", AF_UNIX, a, 2, -1), -EAFNOSUPPORT);
    /* plain thread */
    assert_true(ringo_resolve("localhost", AF_UNSPEC, a, 2, ringo_now() + 5 * SEC) >= 1);

    /* a slow DNS server: 16 goroutines give up at 50 ms, each lookup finishes later and frees
     * itself (ASan's leak check at exit; the fd count below) */
    begin(60);
    sched_test_hook_resolve = slow_dns_counted;
    struct slow_case sc = { 0 };
    run_n(16, slow_resolve_main, &sc);
    end();
    assert_int_equal(LOAD(sc.timed_out), 16);
    int64_t worst = atomic_load_explicit(&sc.worst, memory_order_relaxed);
    print_message("# 16 lookups of 400 ms with a 50 ms deadline: the slowest caller returned after %lld ms\n",
                  (long long)(worst / MS));
    assert_true(worst < 300 * MS * (TU_TSAN ? 3 : 1)); /* well before the lookup's 400 ms */
    /* plain thread, the same */
    int64_t t0 = ringo_now();
    assert_int_equal(ringo_resolve("localhost", AF_UNSPEC, a, 2, t0 + 50 * MS), -ETIMEDOUT);
    assert_true(ringo_now() - t0 < 300 * MS * (TU_TSAN ? 3 : 1));
    /* the lookups left behind finish */
    t0 = ringo_now();
    while (atomic_load_explicit(&slow_lookups_done, memory_order_acquire) < 16 * 2 + 1 && ringo_now() - t0 < 20 * SEC)
        usleep(10000);
    assert_int_equal(atomic_load_explicit(&slow_lookups_done, memory_order_relaxed), 16 * 2 + 1);
    sched_test_hook_resolve = NULL;
    /* each frees itself after its getaddrinfo, which runs after the hook (slow under ASan: CI
     * saw 30 still open 50 ms after the last hook) */
    t0 = ringo_now();
    while (all_fds() != fds0 && ringo_now() - t0 < 20 * SEC)
        usleep(10000);
    assert_int_equal(all_fds(), fds0);
}

/* ================================================================== lent buffers */

#define LEND_CONNS 48
#define LEND_BYTES (512 * 1024)

struct lend_case {
    _Atomic uint64_t bytes;
    _Atomic long lent_calls;
};

struct lend_writer {
    int fd;
    long i;
    uint64_t sum;
    struct ringo_waitgroup *wg;
};

/* Writes LEND_BYTES of its own pattern in pieces of changing size, then shuts its side. */
static void lend_writer_main(void *p)
{
    struct lend_writer *w = p;
    static const size_t sizes[] = { 1, 100, 4096, 16384, 30000, 777 };
    char *buf = malloc(30000);
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t off = 0;
    for (int k = 0; off < LEND_BYTES; k++) {
        size_t n = sizes[(k + w->i) % 6];
        if (n > LEND_BYTES - off)
            n = LEND_BYTES - off;
        for (size_t j = 0; j < n; j++)
            buf[j] = (char)((off + j) * 13 + (size_t)w->i);
        h = fnv(buf, n, h);
        if (ringo_write(w->fd, buf, n, ringo_now() + 30 * SEC) != (ssize_t)n) {
            CHECK(0, "lend writer %ld", w->i);
            break;
        }
        off += n;
        if (k % 16 == 0)
            ringo_yield();
    }
    free(buf);
    w->sum = h;
    ringo_shutdown(w->fd, SHUT_WR);
    ringo_wg_done(w->wg);
}

static void lend_reader(void *p, long i)
{
    struct lend_case *lc = p;
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    struct lend_writer w = { sv[0], i, 0, &wg };
    ringo_wg_add(&wg, 1);
    ringo_go(lend_writer_main, &w);
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t total = 0;
    ssize_t n;
    void *data;
    while ((n = ringo_recv_lend(sv[1], &data, 0, ringo_now() + 30 * SEC)) > 0) {
        CHECK(n <= 16384, "lent %zd bytes: more than a buffer", n);
        h = fnv(data, (size_t)n, h);
        total += (size_t)n;
        atomic_fetch_add_explicit(&lc->lent_calls, 1, memory_order_relaxed);
        if ((total / 4096) % 3 == 0)
            ringo_yield(); /* released after a switch: perhaps on another worker */
        ringo_buf_release(data);
    }
    CHECK(n == 0 && data == NULL, "the end: %zd, data %p", n, data);
    ringo_wg_wait(&wg);
    CHECK(total == LEND_BYTES && h == w.sum, "conn %ld: %zu bytes, checksum %s", i, total, h == w.sum ? "ok" : "bad");
    atomic_fetch_add_explicit(&lc->bytes, total, memory_order_relaxed);
    close(sv[0]);
    close(sv[1]);
}

/* Every byte through lent buffers (48 connections x 512 KiB, pieces of 1 B to 30 KB). */
static void test_net_recv_lend_every_byte(void **state)
{
    (void)state;
    begin(120);
    struct lend_case lc = { 0 };
    struct ringo_stats s0, s1;
    ringo_stats_get(&s0);
    run_n(LEND_CONNS, lend_reader, &lc);
    ringo_stats_get(&s1);
    end();
    assert_int_equal(LOAD(lc.bytes), (uint64_t)LEND_CONNS * LEND_BYTES);
    uint64_t ring = s1.io_lent_ring - s0.io_lent_ring, heap = s1.io_lent_heap - s0.io_lent_heap;
    print_message("# %d connections x %d KiB in %ld lent buffers: %llu from the kernel's pick, %llu from the heap\n",
                  LEND_CONNS, LEND_BYTES / 1024, LOAD(lc.lent_calls), (unsigned long long)ring,
                  (unsigned long long)heap);
    assert_int_equal(ring + heap, (uint64_t)LOAD(lc.lent_calls));
    /* which path lent them: the environment says (make check runs each) */
    const char *dis = getenv("RINGO_DISABLE");
    bool fallback = (dis && (strstr(dis, "io_uring") || strstr(dis, "pbuf_ring"))) || !io_uring_here();
    if (fallback)
        assert_int_equal(ring, 0);
    else
        assert_true(ring > heap); /* 48 connections never need more than a pool's 128 at once */
}

/* More buffers held at once than any pool has (300: a worker's ring has 128): the rest come
 * from the heap path, none is lost, each holds its own connection's bytes. */
#define HOLDERS 300
struct hold_case {
    int sv[HOLDERS][2];
    struct ringo_waitgroup all_have;
    _Atomic long ok;
};

static void holder(void *p, long i)
{
    struct hold_case *hc = p;
    char msg[32];
    int len = snprintf(msg, sizeof msg, "holder %ld", i);
    void *data;
    ssize_t n = ringo_recv_lend(hc->sv[i][1], &data, 0, ringo_now() + 30 * SEC);
    CHECK(n == len && memcmp(data, msg, (size_t)len) == 0, "holder %ld: %zd", i, n);
    ringo_wg_done(&hc->all_have);
    ringo_wg_wait(&hc->all_have); /* every holder holds one */
    if (n == len && memcmp(data, msg, (size_t)len) == 0)
        atomic_fetch_add_explicit(&hc->ok, 1, memory_order_relaxed); /* nobody wrote over it meanwhile */
    if (n > 0)
        ringo_buf_release(data);
}

static void test_net_recv_lend_more_than_the_pool(void **state)
{
    (void)state;
    begin(60);
    static struct hold_case hc;
    memset(&hc, 0, sizeof hc);
    hc.all_have = (struct ringo_waitgroup)RINGO_WAITGROUP_INIT;
    for (int i = 0; i < HOLDERS; i++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, hc.sv[i]), 0);
        char msg[32];
        int len = snprintf(msg, sizeof msg, "holder %d", i);
        assert_int_equal(write(hc.sv[i][0], msg, (size_t)len), len);
    }
    ringo_wg_add(&hc.all_have, HOLDERS);
    run_n(HOLDERS, holder, &hc);
    end();
    assert_int_equal(LOAD(hc.ok), HOLDERS);
    struct ringo_stats st;
    ringo_stats_get(&st);
    print_message("# %d buffers held at once (the kernel's pick so far %llu, the heap %llu)\n", HOLDERS,
                  (unsigned long long)st.io_lent_ring, (unsigned long long)st.io_lent_heap);
    /* and the buffers came back: another round finds them */
    for (int i = 0; i < HOLDERS; i++) {
        char msg[32];
        int len = snprintf(msg, sizeof msg, "holder %d", i);
        assert_int_equal(write(hc.sv[i][0], msg, (size_t)len), len);
    }
    begin(60);
    atomic_store_explicit(&hc.ok, 0, memory_order_relaxed);
    hc.all_have = (struct ringo_waitgroup)RINGO_WAITGROUP_INIT;
    ringo_wg_add(&hc.all_have, HOLDERS);
    run_n(HOLDERS, holder, &hc);
    end();
    assert_int_equal(LOAD(hc.ok), HOLDERS);
    for (int i = 0; i < HOLDERS; i++) {
        close(hc.sv[i][0]);
        close(hc.sv[i][1]);
    }
}

struct lend_misc {
    int sv[2];
    long ok;
};

static void lend_misc_main(void *p, long i)
{
    struct lend_misc *m = p;
    void *data = (void *)1;
    if (i == 0) {
        int64_t t0 = ringo_now();
        ssize_t n = ringo_recv_lend(m->sv[1], &data, 0, t0 + 60 * MS);
        CHECK(n == -ETIMEDOUT && data == NULL && ringo_now() - t0 >= 59 * MS, "deadline: %zd", n);
        CHECK(ringo_recv_lend(m->sv[1], &data, 0, 0) == -ETIMEDOUT, "past deadline: once");
        /* what comes after the timeout arrives whole */
        CHECK(ringo_write(m->sv[0], "after", 5, -1) == 5, "write");
        n = ringo_recv_lend(m->sv[1], &data, 0, ringo_now() + 5 * SEC);
        CHECK(n == 5 && memcmp(data, "after", 5) == 0, "after the deadline: %zd", n);
        if (n > 0)
            ringo_buf_release(data);
        /* MSG_PEEK lends a copy and leaves the data */
        CHECK(ringo_write(m->sv[0], "peek", 4, -1) == 4, "write");
        n = ringo_recv_lend(m->sv[1], &data, MSG_PEEK, ringo_now() + 5 * SEC);
        CHECK(n == 4, "peek %zd", n);
        if (n > 0)
            ringo_buf_release(data);
        n = ringo_recv_lend(m->sv[1], &data, 0, ringo_now() + 5 * SEC);
        CHECK(n == 4 && memcmp(data, "peek", 4) == 0, "after peek %zd", n);
        if (n > 0)
            ringo_buf_release(data);
        /* a wait ended by ringo_close */
        m->ok++;
    } else {
        ringo_buf_release(NULL); /* a no-op, as free(NULL) */
    }
}

static ssize_t lend_10s(int fd)
{
    void *data;
    ssize_t n = ringo_recv_lend(fd, &data, 0, ringo_now() + 10 * SEC);
    if (n > 0)
        ringo_buf_release(data);
    return n;
}

static void end_by_close(int fd)
{
    ringo_close(fd);
}

static void test_net_recv_lend_deadline_close_and_bad_input(void **state)
{
    (void)state;
    begin(60);
    struct lend_misc m = { 0 };
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, m.sv), 0);
    run_n(2, lend_misc_main, &m);
    assert_int_equal(m.ok, 1);
    /* end of file lends nothing */
    close(m.sv[0]);
    void *data = (void *)1;
    assert_int_equal(ringo_recv_lend(m.sv[1], &data, 0, ringo_now() + 5 * SEC), 0);
    assert_null(data);
    close(m.sv[1]);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct parked lc = { .fd = sv[1], .wait = lend_10s, .end = end_by_close };
    int64_t t0 = ringo_now();
    run_n(2, parked_job, &lc);
    end();
    assert_int_equal(lc.got, -EBADF);
    assert_true(ringo_now() - t0 < 5 * SEC);
    close(sv[0]);
    assert_int_equal(ringo_recv_lend(-1, &data, 0, -1), -EBADF);
    assert_int_equal(ringo_recv_lend(0, NULL, 0, -1), -EFAULT);
    /* plain thread */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(ringo_recv_lend(sv[1], &data, 0, ringo_now() + 30 * MS), -ETIMEDOUT);
    assert_int_equal(write(sv[0], "thread", 6), 6);
    assert_int_equal(ringo_recv_lend(sv[1], &data, 0, ringo_now() + 5 * SEC), 6);
    assert_memory_equal(data, "thread", 6);
    ringo_buf_release(data);
    close(sv[0]);
    close(sv[1]);
}

/* Misuse: a second release of one buffer, and a pointer ringo never lent, end the program with
 * a line that names the mistake. (The foreign pointer's header is read: a pointer into the
 * middle of a static buffer, so the read itself is in bounds.) */
static void double_release_main(void *p)
{
    int *rc = p, sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 || write(sv[0], "x", 1) != 1) {
        *rc = 3;
        return;
    }
    void *data;
    struct ringo_stats s;
    if (ringo_recv_lend(sv[1], &data, 0, ringo_now() + 5 * SEC) != 1) {
        *rc = 4;
        return;
    }
    ringo_stats_get(&s);
    if (s.io_lent_ring == 0) {
        /* a heap buffer (fallback): the second release would read freed memory, which only
         * a sanitizer can tell; the check is for pool buffers */
        ringo_buf_release(data);
        *rc = 77;
        return;
    }
    ringo_buf_release(data);
    ringo_buf_release(data);
    *rc = 0;
}

static void double_release_job(void *p, long i)
{
    (void)i;
    double_release_main(p);
}

static int child_double_release(void)
{
    int rc = 5;
    run_n(1, double_release_job, &rc); /* in a goroutine: the pool's path on io_uring */
    return rc;
}

static int child_foreign_release(void)
{
    static char buf[256];
    ringo_buf_release(buf + 128);
    return 0;
}

static void test_net_recv_lend_misuse_is_fatal(void **state)
{
    (void)state;
    static struct child_result r;
    tu_run_child("double_release", NULL, 30, &r);
    /* sched_fatal: the line, then abort() (Go's throw) */
    if (r.exited && r.code == 77)
        print_message("# double release: not checked (buffers come from the heap here)\n");
    else if (r.signo != SIGABRT || !strstr(r.out, "fatal error: ringo_buf_release: buffer") || !strstr(r.out, "released twice"))
        fail_msg("double release: exited %d code %d signal %d: %.300s", r.exited, r.code, r.signo, r.out);
    tu_run_child("foreign_release", NULL, 30, &r);
    if (r.signo != SIGABRT || !strstr(r.out, "is not a buffer ringo_recv_lend lent"))
        fail_msg("foreign release: exited %d code %d signal %d: %.300s", r.exited, r.code, r.signo, r.out);
}

/* The pool gives its pages back once the load is over (poll_uring.c U9, P6): buffers the kernel
 * filled are resident while connections come and go; a quiet half second later none is. The
 * pages of the lent buffers are looked at with mincore(2). */
#define SEEN_MAX 64
static void *seen_bufs[SEEN_MAX];
static _Atomic int nseen;

static void pool_reader(void *p, long i)
{
    (void)p;
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    static char chunk[16384];
    for (int r = 0; r < 8; r++) {
        CHECK(write(sv[0], chunk, sizeof chunk) == (ssize_t)sizeof chunk, "write");
        size_t got = 0;
        while (got < sizeof chunk) {
            void *data;
            ssize_t n = ringo_recv_lend(sv[1], &data, 0, ringo_now() + 10 * SEC);
            CHECK(n > 0, "lend %zd", n);
            if (n <= 0)
                break;
            int k = atomic_fetch_add_explicit(&nseen, 1, memory_order_relaxed);
            if (k < SEEN_MAX)
                seen_bufs[k] = data;
            got += (size_t)n;
            ringo_buf_release(data);
        }
    }
    (void)i;
    close(sv[0]);
    close(sv[1]);
}

static int resident_pages(void)
{
    long pg = sysconf(_SC_PAGESIZE);
    int n = 0, k = atomic_load_explicit(&nseen, memory_order_relaxed);
    for (int i = 0; i < k && i < SEEN_MAX; i++) {
        unsigned char v = 0;
        void *page = (void *)((uintptr_t)seen_bufs[i] & ~(uintptr_t)(pg - 1));
        if (mincore(page, (size_t)pg, &v) == 0 && (v & 1))
            n++;
    }
    return n;
}

static int child_lend_pool_gives_back(void)
{
    run_n(32, pool_reader, NULL);
    struct ringo_stats st;
    ringo_stats_get(&st);
    if (st.io_lent_ring == 0)
        return 77; /* no ring pool here (epoll, or RINGO_DISABLE=pbuf_ring): nothing to give back */
    int before = resident_pages();
    int64_t t0 = ringo_now();
    int after = before;
    while (after > 0 && ringo_now() - t0 < 5 * SEC) {
        usleep(20000);
        after = resident_pages();
    }
    printf("lent buffers' pages resident: %d of %d after the load, %d %lld ms later\n", before,
           atomic_load_explicit(&nseen, memory_order_relaxed) < SEEN_MAX ? atomic_load_explicit(&nseen, memory_order_relaxed) : SEEN_MAX,
           after, (long long)((ringo_now() - t0) / 1000000));
    if (before == 0)
        return 3; /* nothing was resident: the test proves nothing */
    return after == 0 ? 0 : 4;
}

static void test_net_recv_lend_pool_gives_pages_back(void **state)
{
    (void)state;
    static const char *const env[] = { "RINGO_PROCS=1", NULL };
    tu_check_child("lend_pool_gives_back", env, 60, NULL);
}

static const struct child_scenario scenarios[] = {
    { "double_release", child_double_release },
    { "foreign_release", child_foreign_release },
    { "lend_pool_gives_back", child_lend_pool_gives_back },
    { NULL, NULL },
};

int main(int argc, char **argv)
{
    tu_maybe_child(argc, argv, scenarios);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_udp_echo_every_datagram),
        cmocka_unit_test(test_net_datagram_deadline_flags_and_bad_input),
        cmocka_unit_test(test_net_recvmsg_passes_an_fd),
        cmocka_unit_test(test_net_unix_sockets),
        cmocka_unit_test(test_net_shutdown_ends_a_pending_receive),
        cmocka_unit_test(test_net_sendfile_every_byte_and_deadline),
        cmocka_unit_test(test_net_resolve_and_its_deadline),
        cmocka_unit_test(test_net_recv_lend_every_byte),
        cmocka_unit_test(test_net_recv_lend_more_than_the_pool),
        cmocka_unit_test(test_net_recv_lend_deadline_close_and_bad_input),
        cmocka_unit_test(test_net_recv_lend_misuse_is_fatal),
        cmocka_unit_test(test_net_recv_lend_pool_gives_pages_back),
    };
    return TU_RUN_GROUP("net", tests, NULL, NULL);
}
