/* echo_load — the one B8 load client, used against every echo server (ringo, Go, threads, epoll).
 *
 * Usage: echo_load -p PORT [-c CONNS] [-d SECONDS] [-n RTS] [-s SIZE] [-t THREADS]
 *   -c  connections to 127.0.0.1:PORT (default 100, at most 10000)
 *   -d  how long to run, seconds, fractions allowed (default 5, at most 600)
 *   -n  stop each connection after RTS round trips (default 0: only the time bound)
 *   -s  message size in bytes (default 64, at most 4096)
 *   -t  client threads, each running its own epoll loop over a slice of the connections
 *       (default 1)
 * Every connection keeps one message in flight: send SIZE bytes, wait until exactly those SIZE
 * bytes come back, check every byte, send the next. Before the clock starts, each connection is
 * opened and does one checked round trip (within 30 s), so the measured window is steady state:
 * it does not include the server accepting or spawning anything. If no round trip at all has
 * completed when the time is up, the window is stretched to the first completion (at most 10 s
 * more), so a server that stalls gets a low rate, not a division by zero; none in 10 s fails. Message bytes are derived from
 * (connection, sequence number), so a reply crossed between connections, reordered, duplicated
 * or corrupted is caught. A mismatch, or a server closing a connection, is a failure (exit 1).
 * Prints: RESULT name=echo/c=<CONNS> metric=<round trips per second> unit=rt/s
 * and one line of per-connection spread on stderr. Loopback only. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <stdatomic.h>
#include "../bench_util.h"

#define MAX_SIZE 4096

struct lconn {
    int      fd;
    uint32_t id;
    uint32_t seq;          /* sequence number of the message in flight */
    size_t   sent, got;    /* bytes of it written so far / echoed back so far */
    int      want_out;     /* waiting for EPOLLOUT to finish a short write */
    int      done;         /* reached -n */
    uint64_t rts;          /* completed round trips */
    unsigned char msg[MAX_SIZE], back[MAX_SIZE];
};

struct lthread {
    pthread_t     tid;
    struct lconn *conns;
    int           n;
    uint64_t      rts;
    int64_t       end_ns;
};

static size_t   msg_size = 64;
static uint64_t max_rts;             /* 0: unbounded */
static int64_t  deadline_ns;
static _Atomic uint64_t threads_with_rts;  /* threads that completed a round trip: stretch or not */
static pthread_barrier_t start_barrier;

static void fill(struct lconn *c)
{
    uint64_t st = ((uint64_t)c->id << 32) ^ c->seq ^ 0x5eedULL;
    for (size_t i = 0; i < msg_size; i += 8) {
        uint64_t r = bench_splitmix64(&st);
        memcpy(c->msg + i, &r, msg_size - i < 8 ? msg_size - i : 8);
    }
    c->sent = c->got = 0;
}

/* Write the rest of the message in flight; arm EPOLLOUT if the socket is full. */
static void push(int ep, struct lconn *c)
{
    while (c->sent < msg_size) {
        ssize_t w = write(c->fd, c->msg + c->sent, msg_size - c->sent);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            if (!c->want_out) {
                struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                c->want_out = 1;
            }
            return;
        }
        if (w <= 0)
            bench_fail("echo_load: conn %u: write: %s", c->id, w < 0 ? strerror(errno) : "0");
        c->sent += (size_t)w;
    }
    if (c->want_out) {
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = 0;
    }
}

static void *run_thread(void *p)
{
    struct lthread *t = p;
    struct epoll_event evs[256];
    int ep = epoll_create1(EPOLL_CLOEXEC), active = t->n;

    if (ep < 0)
        bench_fail("epoll_create1: %s", strerror(errno));
    for (int i = 0; i < t->n; i++) {
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &t->conns[i] };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, t->conns[i].fd, &ev) != 0)
            bench_fail("epoll_ctl: %s", strerror(errno));
    }
    pthread_barrier_wait(&start_barrier);
    for (int i = 0; i < t->n; i++) {
        fill(&t->conns[i]);
        push(ep, &t->conns[i]);
    }
    while (active > 0) {
        int64_t now = bench_now_ns(), left = deadline_ns - now;
        int k;
        if (left <= 0 && (atomic_load_explicit(&threads_with_rts, memory_order_relaxed) > 0 ||
                          now > deadline_ns + 10 * (int64_t)1000000000))
            break;
        if (left <= 0)
            left = 1000000;              /* stretched window: poll in 1 ms steps */
        k = epoll_wait(ep, evs, 256, (int)(left / 1000000 + 1));
        if (k < 0 && errno != EINTR)
            bench_fail("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < k; i++) {
            struct lconn *c = evs[i].data.ptr;
            if (c->done)
                continue;
            if ((evs[i].events & EPOLLOUT) && c->sent < msg_size)
                push(ep, c);
            if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            for (;;) {
                ssize_t n = read(c->fd, c->back + c->got, msg_size - c->got);
                if (n < 0 && errno == EINTR)
                    continue;
                if (n < 0 && errno == EAGAIN)
                    break;
                if (n == 0)
                    bench_fail("echo_load: conn %u: server closed the connection after %" PRIu64
                               " round trips", c->id, c->rts);
                if (n < 0)
                    bench_fail("echo_load: conn %u: read: %s", c->id, strerror(errno));
                c->got += (size_t)n;
                if (c->got < msg_size)
                    continue;
                if (c->sent < msg_size || memcmp(c->back, c->msg, msg_size) != 0)
                    bench_fail("echo_load: conn %u: round trip %" PRIu64 ": echoed bytes differ"
                               " from the bytes sent", c->id, c->rts);
                c->rts++;
                if (t->rts++ == 0)
                    atomic_fetch_add_explicit(&threads_with_rts, 1, memory_order_relaxed); /* a hint only */
                if (max_rts != 0 && c->rts >= max_rts) {
                    c->done = 1;
                    active--;
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    break;
                }
                c->seq++;
                fill(c);
                push(ep, c);
                break;       /* one message in flight: nothing more to read until it is echoed */
            }
        }
    }
    t->end_ns = bench_now_ns();
    close(ep);
    return NULL;
}

/* One checked round trip on a fresh blocking socket, before the measured window. */
static void handshake(struct lconn *c)
{
    struct timeval tv = { 30, 0 };
    size_t off = 0;

    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    fill(c);
    while (off < msg_size) {
        ssize_t w = write(c->fd, c->msg + off, msg_size - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            bench_fail("echo_load: conn %u: first write: %s", c->id, w < 0 ? strerror(errno) : "0");
        off += (size_t)w;
    }
    while (c->got < msg_size) {
        ssize_t n = read(c->fd, c->back + c->got, msg_size - c->got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            bench_fail("echo_load: conn %u: no echo of the first message within 30 s (%s)", c->id,
                       n < 0 ? strerror(errno) : "closed");
        c->got += (size_t)n;
    }
    if (memcmp(c->back, c->msg, msg_size) != 0)
        bench_fail("echo_load: conn %u: first echo differs from the bytes sent", c->id);
    c->seq++;
}

static int dial(uint16_t port, int64_t give_up_ns)
{
    struct sockaddr_in sa;
    int one = 1;

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            bench_fail("socket: %s (raise ulimit -n?)", strerror(errno));
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            return fd;
        }
        if ((errno != ECONNREFUSED && errno != EAGAIN && errno != EINTR) || bench_now_ns() > give_up_ns)
            bench_fail("connect 127.0.0.1:%u: %s", port, strerror(errno));
        close(fd);
        usleep(20000);
    }
}

int main(int argc, char **argv)
{
    long port = 0, conns = 100, threads = 1, size = 64;
    double seconds = 5;
    struct lconn *cs;
    struct lthread *ts;
    uint64_t total = 0, lo = UINT64_MAX, hi = 0;
    int64_t t0, t_end = 0;
    int opt;

    while ((opt = getopt(argc, argv, "p:c:d:n:s:t:")) != -1) {
        switch (opt) {
        case 'p': port = strtol(optarg, NULL, 10); break;
        case 'c': conns = strtol(optarg, NULL, 10); break;
        case 'd': seconds = strtod(optarg, NULL); break;
        case 'n': max_rts = strtoull(optarg, NULL, 10); break;
        case 's': size = strtol(optarg, NULL, 10); break;
        case 't': threads = strtol(optarg, NULL, 10); break;
        default:
            fprintf(stderr, "usage: %s -p PORT [-c CONNS] [-d SECONDS] [-n RTS] [-s SIZE] [-t THREADS]\n",
                    argv[0]);
            return 2;
        }
    }
    if (port <= 0 || port > 65535 || conns < 1 || conns > 10000 || !(seconds > 0) || seconds > 600 ||
        size < 1 || size > MAX_SIZE || threads < 1 || threads > 64) {
        fprintf(stderr, "echo_load: bad arguments (need -p PORT; 1<=c<=10000, 0<d<=600, 1<=s<=%d, 1<=t<=64)\n",
                MAX_SIZE);
        return 2;
    }
    if (threads > conns)
        threads = conns;
    msg_size = (size_t)size;
    signal(SIGPIPE, SIG_IGN);
    {   /* one descriptor per connection: make sure the soft limit allows it */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)conns + 64) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }

    cs = calloc((size_t)conns, sizeof *cs);
    ts = calloc((size_t)threads, sizeof *ts);
    if (cs == NULL || ts == NULL)
        bench_fail("out of memory");
    {
        int64_t give_up = bench_now_ns() + 5 * (int64_t)1000000000;
        for (long i = 0; i < conns; i++) {
            cs[i].id = (uint32_t)i;
            cs[i].fd = dial((uint16_t)port, give_up);
            handshake(&cs[i]);
            fcntl(cs[i].fd, F_SETFL, fcntl(cs[i].fd, F_GETFL) | O_NONBLOCK);
        }
    }
    pthread_barrier_init(&start_barrier, NULL, (unsigned)threads + 1);
    for (long i = 0; i < threads; i++) {
        long first = conns * i / threads, last = conns * (i + 1) / threads;
        ts[i].conns = cs + first;
        ts[i].n = (int)(last - first);
        if (pthread_create(&ts[i].tid, NULL, run_thread, &ts[i]) != 0)
            bench_fail("pthread_create");
    }
    t0 = bench_now_ns();
    deadline_ns = t0 + (int64_t)(seconds * 1e9);
    pthread_barrier_wait(&start_barrier);
    for (long i = 0; i < threads; i++) {
        pthread_join(ts[i].tid, NULL);
        total += ts[i].rts;
        if (ts[i].end_ns > t_end)
            t_end = ts[i].end_ns;
    }
    for (long i = 0; i < conns; i++) {
        if (cs[i].rts < lo)
            lo = cs[i].rts;
        if (cs[i].rts > hi)
            hi = cs[i].rts;
        close(cs[i].fd);
    }
    if (total == 0)
        bench_fail("echo_load: no round trip completed in %.2f s + 10 s", seconds);
    fprintf(stderr, "echo_load: conns=%ld threads=%ld size=%zu rts=%" PRIu64 " elapsed=%.3fs per-conn min=%"
            PRIu64 " max=%" PRIu64 "\n", conns, threads, msg_size, total, (double)(t_end - t0) / 1e9, lo, hi);
    {
        char name[64];
        snprintf(name, sizeof name, "echo/c=%ld", conns);
        bench_result(name, (double)total / ((double)(t_end - t0) / 1e9), "rt/s");
    }
    free(cs);
    free(ts);
    return 0;
}
