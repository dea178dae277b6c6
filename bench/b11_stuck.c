/* B11 stuck — echo latency while every worker is held by a goroutine in a plain usleep(2)
 * (issue 11, item 3: nobody held hostage). 1,000 goroutines echo on loopback connections; a
 * plain thread is the client. Each of 10 rounds: one goroutine per worker spins until all hold
 * their workers, then sleeps 200 ms in usleep (the worker's thread is gone); 20 ms in, the
 * client sends one byte on every connection and times each echo. Metrics (RESULT lines): p50,
 * p99 and max echo latency in ms over all rounds. Without the sysmon every echo waits for the
 * sleeps (about 180 ms). Check: every echo returns its byte, and every round ends before its
 * sleeps do. ringo only (Go hands a P blocked in a system call to another thread, which is what
 * this measures ringo's answer to). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* the build passes -D_GNU_SOURCE; standalone builds need it too */
#endif
#include <ringo.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include "bench_util.h"

#define ROUNDS 10
#define HOLD_US 200000
#define SEND_AFTER_US 20000

static int lfd, nconn;
static _Atomic int accepted, holders_in;
static unsigned nprocs;

static void echo_conn(void *p)
{
    int fd = (int)(intptr_t)p;
    char b[64];
    for (;;) {
        ssize_t n = ringo_recv(fd, b, sizeof b, 0, -1);
        if (n <= 0 || ringo_send(fd, b, (size_t)n, 0, -1) != n)
            break;
    }
    ringo_close(fd);
}

static void acceptor(void *p)
{
    (void)p;
    for (int i = 0; i < nconn; i++) {
        int fd = ringo_accept(lfd, NULL, NULL, -1);
        if (fd < 0)
            bench_fail("stuck: accept: %d", fd);
        bench_go(echo_conn, (void *)(intptr_t)fd);
        atomic_fetch_add_explicit(&accepted, 1, memory_order_release); /* the client waits on it */
    }
}

static void holder(void *p)
{
    (void)p;
    atomic_fetch_add_explicit(&holders_in, 1, memory_order_acq_rel); /* a barrier for holders */
    while (atomic_load_explicit(&holders_in, memory_order_acquire) < (int)nprocs)
        ; /* keep this worker until every worker is held */
    usleep(HOLD_US);
}

/* One byte on every connection, every echo waited for; latencies (ns) appended to lat. */
static void echo_round(const int *cfd, struct pollfd *pf, int64_t *lat)
{
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < nconn; i++) {
        if (send(cfd[i], "x", 1, 0) != 1)
            bench_fail("stuck: send");
        pf[i].fd = cfd[i];
        pf[i].events = POLLIN;
    }
    for (int left = nconn; left > 0;) {
        if (poll(pf, (nfds_t)nconn, 10000) <= 0)
            bench_fail("stuck: %d echoes missing after 10 s", left);
        int64_t now = bench_now_ns();
        for (int i = 0; i < nconn; i++) {
            char c;
            if (!(pf[i].revents & POLLIN))
                continue;
            if (recv(cfd[i], &c, 1, 0) != 1 || c != 'x')
                bench_fail("stuck: bad echo on connection %d", i);
            lat[i] = now - t0;
            pf[i].fd = -1;
            left--;
        }
    }
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(void)
{
    nconn = (int)bench_scaled(1000, 50);
    nprocs = ringo_procs();
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)(2 * nconn + 64)) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)(2 * nconn + 64) ? rl.rlim_max : (rlim_t)(2 * nconn + 64);
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    lfd = ringo_tcp_listen("127.0.0.1", 0, nconn);
    if (lfd < 0)
        bench_fail("stuck: listen: %d", lfd);
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &al);
    bench_go(acceptor, NULL);
    int *cfd = malloc((size_t)nconn * sizeof *cfd);
    struct pollfd *pf = malloc((size_t)nconn * sizeof *pf);
    int64_t *lat = malloc((size_t)nconn * ROUNDS * sizeof *lat);
    if (!cfd || !pf || !lat)
        bench_fail("stuck: allocation failed");
    for (int i = 0; i < nconn; i++) {
        cfd[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (cfd[i] < 0 || connect(cfd[i], (struct sockaddr *)&a, sizeof a) != 0)
            bench_fail("stuck: connect %d (fd limit %ld?)", i, (long)rl.rlim_cur);
    }
    while (atomic_load_explicit(&accepted, memory_order_acquire) < nconn)
        usleep(1000);
    echo_round(cfd, pf, lat); /* warm-up: every echo goroutine parks in its recv */
    for (int r = 0; r < ROUNDS; r++) {
        atomic_store_explicit(&holders_in, 0, memory_order_relaxed); /* the last round's are gone */
        for (unsigned k = 0; k < nprocs; k++)
            bench_go(holder, NULL);
        while (atomic_load_explicit(&holders_in, memory_order_acquire) < (int)nprocs)
            usleep(100);
        int64_t t_in = bench_now_ns();
        usleep(SEND_AFTER_US);
        echo_round(cfd, pf, lat + (size_t)r * nconn);
        if (bench_now_ns() - t_in > (HOLD_US - 10000) * 1000LL)
            bench_fail("stuck: round %d waited for the sleeps", r);
        usleep(HOLD_US + 50000); /* the holders are done before the next round */
    }
    size_t n = (size_t)nconn * ROUNDS;
    qsort(lat, n, sizeof *lat, cmp64);
    bench_result("stuck/p50", lat[n / 2] / 1e6, "ms");
    bench_result("stuck/p99", lat[n * 99 / 100] / 1e6, "ms");
    bench_result("stuck/max", lat[n - 1] / 1e6, "ms");
    return 0;
}
