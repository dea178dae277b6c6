/* server_shapes.c — the two classic server shapes the B8/B9 baselines are built from, shared
 * so that echo and HTTP differ only in their handler (declarations in ../bench_util.h):
 *   bs_serve_threads(): accept loop + one detached pthread per connection, blocking I/O;
 *   bs_serve_epoll():   one thread, non-blocking sockets, level-triggered epoll.
 * Both bind 127.0.0.1 only, set TCP_NODELAY on accepted sockets (as Go and the ringo programs
 * do), ignore SIGPIPE, die on SIGTERM (default action) and exit by themselves after a bounded
 * number of seconds. Libc only; no ringo. */
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
#include "../bench_util.h"

/* ---------------------------------------------------------------- output buffer */

static void bs_out_append(struct bs_out *o, const void *src, size_t n)
{
    if (o->off > 0 && o->off == o->len)
        o->off = o->len = 0;
    if (o->len + n > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + n)
            cap *= 2;
        o->p = realloc(o->p, cap);
        if (o->p == NULL)
            bench_fail("out of memory");
        o->cap = cap;
    }
    memcpy(o->p + o->len, src, n);
    o->len += n;
}

/* ---------------------------------------------------------------- listening */

static int bs_listen(uint16_t port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    if (fd < 0)
        bench_fail("socket: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);     /* loopback only */
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        bench_fail("bind 127.0.0.1:%u: %s", port, strerror(errno));
    if (listen(fd, 4096) != 0)
        bench_fail("listen: %s", strerror(errno));
    return fd;
}

static void bs_announce(uint16_t port, const char *shape)
{
    printf("LISTENING 127.0.0.1:%u %s\n", port, shape);
    fflush(stdout);
}

/* ---------------------------------------------------------------- thread per connection */

struct bs_thread_arg {
    int fd;
    bs_handler handler;
};

static void *bs_conn_thread(void *p)
{
    struct bs_thread_arg a = *(struct bs_thread_arg *)p;
    struct bs_out out = { 0 };
    struct bench_http_state *state = calloc(1, sizeof *state);
    char buf[4096];

    free(p);
    if (!state)
        goto done;
    for (;;) {
        ssize_t n = read(a.fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        int last = a.handler(state, buf, (size_t)n, &out);
        while (out.off < out.len) {
            ssize_t w = write(a.fd, out.p + out.off, out.len - out.off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                goto done;
            out.off += (size_t)w;
        }
        out.off = out.len = 0;
        if (last)
            break;
    }
done:
    close(a.fd);
    free(out.p);
    free(state);
    return NULL;
}

static void *bs_watchdog(void *p)
{
    sleep((unsigned)(uintptr_t)p);
    _exit(0);
}

int bs_serve_threads(int argc, char **argv, bs_handler handler)
{
    uint16_t port;
    int seconds, lfd, one = 1;
    pthread_attr_t attr;
    pthread_t t;

    bench_server_args(argc, argv, &port, &seconds);
    signal(SIGPIPE, SIG_IGN);
    lfd = bs_listen(port);
    if (pthread_create(&t, NULL, bs_watchdog, (void *)(uintptr_t)seconds) != 0)
        bench_fail("pthread_create");
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    bs_announce(port, "threads");
    for (;;) {
        struct bs_thread_arg *a;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), err;
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                usleep(10000);
            else if (errno != EINTR && errno != ECONNABORTED)
                bench_fail("accept: %s", strerror(errno));
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        a = malloc(sizeof *a);
        if (a == NULL)
            bench_fail("out of memory");
        a->fd = fd;
        a->handler = handler;
        err = pthread_create(&t, &attr, bs_conn_thread, a);
        if (err != 0) {                  /* out of threads: drop this connection, keep serving */
            fprintf(stderr, "pthread_create: %s\n", strerror(err));
            close(fd);
            free(a);
        }
    }
}

/* ---------------------------------------------------------------- single-thread epoll */

struct bs_conn {
    struct bs_out out;
    struct bench_http_state state;
    int fd;
    int want_out;   /* 1: output pending, waiting for EPOLLOUT (input paused: backpressure) */
    int last;       /* 1: close once out is written (bs_handler) */
};

static void bs_conn_close(int ep, struct bs_conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->out.p);
    free(c);
}

/* Write what is pending; 0 all written, 1 would block (now waiting for EPOLLOUT), -1 error. */
static int bs_conn_flush(int ep, struct bs_conn *c)
{
    while (c->out.off < c->out.len) {
        ssize_t w = write(c->fd, c->out.p + c->out.off, c->out.len - c->out.off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            if (!c->want_out) {
                struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                c->want_out = 1;
            }
            return 1;
        }
        if (w <= 0)
            return -1;
        c->out.off += (size_t)w;
    }
    c->out.off = c->out.len = 0;
    if (c->want_out) {
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = 0;
    }
    return 0;
}

int bs_serve_epoll(int argc, char **argv, bs_handler handler)
{
    static char buf[65536];
    struct epoll_event evs[256];
    uint16_t port;
    int seconds, lfd, ep, one = 1;
    int64_t end;

    bench_server_args(argc, argv, &port, &seconds);
    signal(SIGPIPE, SIG_IGN);
    end = bench_now_ns() + (int64_t)seconds * 1000000000;
    lfd = bs_listen(port);
    fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        bench_fail("epoll_create1: %s", strerror(errno));
    {
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };   /* NULL = listener */
        epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    }
    bs_announce(port, "epoll");
    while (bench_now_ns() < end) {
        int k = epoll_wait(ep, evs, 256, 1000);
        if (k < 0 && errno != EINTR)
            bench_fail("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < k; i++) {
            struct bs_conn *c = evs[i].data.ptr;
            if (c == NULL) {                 /* accept everything pending */
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    struct epoll_event ev;
                    if (fd < 0)
                        break;               /* EAGAIN, or EMFILE: retried on the next event */
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    c = calloc(1, sizeof *c);
                    if (c == NULL)
                        bench_fail("out of memory");
                    c->fd = fd;
                    ev.events = EPOLLIN;
                    ev.data.ptr = c;
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            if (c->want_out) {
                int f = bs_conn_flush(ep, c);
                if (f < 0 || (f == 0 && c->last))
                    bs_conn_close(ep, c);
                continue;
            }
            {
                ssize_t n = read(c->fd, buf, sizeof buf);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                    continue;
                if (n <= 0) {
                    bs_conn_close(ep, c);
                    continue;
                }
                c->last = handler(&c->state, buf, (size_t)n, &c->out);
                int f = bs_conn_flush(ep, c);
                if (f < 0 || (f == 0 && c->last))
                    bs_conn_close(ep, c);
            }
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- handlers */

int bs_echo_handler(struct bench_http_state *state, const char *in, size_t n, struct bs_out *out)
{
    (void)state;
    bs_out_append(out, in, n);
    return 0;
}

int bs_http_handler(struct bench_http_state *state, const char *in, size_t n, struct bs_out *out)
{
    for (size_t off = 0; off < n;) {
        unsigned char kinds[32];
        size_t used;
        unsigned k = bench_http_feed(in + off, n - off, state, kinds, 32, &used);
        off += used;
        for (unsigned i = 0; i < k; i++) {
            if (kinds[i] == BENCH_HTTP_KEEP10)
                bs_out_append(out, BENCH_HTTP_RESPONSE_KA10, sizeof BENCH_HTTP_RESPONSE_KA10 - 1);
            else
                bs_out_append(out, BENCH_HTTP_RESPONSE, sizeof BENCH_HTTP_RESPONSE - 1);
        }
        if (k && kinds[k - 1] == BENCH_HTTP_CLOSE)
            return 1; /* the rest is never answered */
    }
    return 0;
}

