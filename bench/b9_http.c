/* B9 http — HTTP/1.1 keep-alive "Hello, World!" server, one goroutine per connection, on
 * 127.0.0.1 only. Requests are GETs without bodies (what wrk and ab send); each request head
 * (ending in CRLF CRLF, pipelined or split across reads) gets BENCH_HTTP_RESPONSE, or its
 * keep-alive variant for HTTP/1.0 with keep-alive (ab -k); an HTTP/1.0 request without it (ab)
 * or "Connection: close" is answered and the connection closed (bench_http_feed).
 * Usage: b9_http PORT [SECONDS]   (exits by itself after SECONDS, default 600, or on SIGTERM)
 * Load: wrk -t1 -c100 (the runner). Peers: bench/go/b9_http, bench/baseline/http_threads,
 * bench/baseline/http_epoll, nginx. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* the build passes -D_GNU_SOURCE; standalone builds need it too */
#endif
#include <ringo.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include "bench_util.h"

#define BATCH 32                        /* responses written per write() for pipelined requests */

static int lfd;

/* EOF and a reset peer end a connection quietly; anything else is worth a line on stderr
 * (the runner keeps it in the server's log), since a load generator will see it as an error. */
static void conn_error(const char *what, ssize_t err)
{
    if (err < 0 && err != -ECONNRESET && err != -EPIPE)
        fprintf(stderr, "%s: %s: %s\n", "http", what, strerror((int)-err));
}
static char responses[BATCH * (sizeof BENCH_HTTP_RESPONSE - 1)];
static const size_t resp_len = sizeof BENCH_HTTP_RESPONSE - 1;
static const size_t ka10_len = sizeof BENCH_HTTP_RESPONSE_KA10 - 1;

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = ringo_write(fd, p, n, -1);
        if (w <= 0) {
            conn_error("ringo_write", w);
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    struct bench_http_state st = { 0 };
    char buf[4096];

    for (;;) {
        ssize_t n = ringo_read(fd, buf, sizeof buf, -1);
        if (n <= 0) {
            conn_error("ringo_read", n);
            break;
        }
        for (size_t off = 0; off < (size_t)n;) {
            unsigned char kinds[BATCH];
            size_t used;
            unsigned k = bench_http_feed(buf + off, (size_t)n - off, &st, kinds, BATCH, &used), i = 0;
            off += used;
            while (i < k) { /* runs of one response: wrk's requests are all KEEP, one write */
                unsigned j = i;
                while (j < k && (kinds[j] == BENCH_HTTP_KEEP10) == (kinds[i] == BENCH_HTTP_KEEP10))
                    j++;
                int rc = 0;
                if (kinds[i] == BENCH_HTTP_KEEP10)
                    for (unsigned q = i; q < j && rc == 0; q++)
                        rc = write_all(fd, BENCH_HTTP_RESPONSE_KA10, ka10_len);
                else
                    rc = write_all(fd, responses, (j - i) * resp_len);
                if (rc != 0)
                    goto out;
                i = j;
            }
            if (k && kinds[k - 1] == BENCH_HTTP_CLOSE)
                goto out; /* HTTP/1.0 without keep-alive, or Connection: close: answered, closed */
        }
    }
out:
    ringo_close(fd);
}

static void acceptor(void *arg)
{
    int one = 1;
    (void)arg;
    for (;;) {
        int fd = ringo_accept(lfd, NULL, NULL, -1);
        if (fd < 0) {
            if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
                ringo_sleep(10000000);
                continue;
            }
            if (fd == -EINTR || fd == -ECONNABORTED || fd == -EAGAIN)
                continue;
            bench_fail("http: ringo_accept: %s", strerror(-fd));
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        bench_go(conn, (void *)(intptr_t)fd);
    }
}

int main(int argc, char **argv)
{
    uint16_t port;
    int seconds;

    bench_server_args(argc, argv, &port, &seconds);
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < BATCH; i++)
        memcpy(responses + (size_t)i * resp_len, BENCH_HTTP_RESPONSE, resp_len);
    lfd = ringo_tcp_listen("127.0.0.1", port, 4096);
    if (lfd < 0)
        bench_fail("http: ringo_tcp_listen 127.0.0.1:%u: %s", port, strerror(-lfd));
    bench_go(acceptor, NULL);
    printf("LISTENING 127.0.0.1:%u procs=%u\n", port, ringo_procs());
    fflush(stdout);
    ringo_sleep((int64_t)seconds * 1000000000);
    return 0;
}
