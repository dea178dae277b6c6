/* B8 echo — TCP echo server, one goroutine per connection, on 127.0.0.1 only.
 * Usage: b8_echo PORT [SECONDS]   (exits by itself after SECONDS, default 600, or on SIGTERM)
 * The server only serves; the load (and the RESULT line) comes from bench/baseline/echo_load,
 * the one client used against every echo server. Peers: bench/go/b8_echo,
 * bench/baseline/echo_threads, bench/baseline/echo_epoll. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* the build passes -D_GNU_SOURCE; standalone builds need it too */
#endif
#include <ringo.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include "bench_util.h"

static int lfd;

/* EOF and a reset peer end a connection quietly; anything else is worth a line on stderr
 * (the runner keeps it in the server's log), since a load generator will see it as an error. */
static void conn_error(const char *what, ssize_t err)
{
    if (err < 0 && err != -ECONNRESET && err != -EPIPE)
        fprintf(stderr, "%s: %s: %s\n", "echo", what, strerror((int)-err));
}

/* Each read borrows a buffer ringo picks when the data is there (ringo_recv_lend): a connection
 * waiting for its next message holds no buffer, only its goroutine's stack page (B12 idle). */
static void conn(void *arg)
{
    int fd = (int)(intptr_t)arg;

    for (;;) {
        void *data;
        ssize_t n = ringo_recv_lend(fd, &data, 0, -1), off = 0;
        if (n <= 0) {                     /* EOF or error: drop the connection */
            conn_error("ringo_recv_lend", n);
            break;
        }
        while (off < n) {
            ssize_t w = ringo_write(fd, (char *)data + off, (size_t)(n - off), -1);
            if (w <= 0) {
                conn_error("ringo_write", w);
                ringo_buf_release(data);
                goto out;
            }
            off += w;
        }
        ringo_buf_release(data);
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
                ringo_sleep(10000000);   /* out of descriptors: back off, as Go does */
                continue;
            }
            if (fd == -EINTR || fd == -ECONNABORTED || fd == -EAGAIN)
                continue;
            bench_fail("echo: ringo_accept: %s", strerror(-fd));
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);   /* as Go's net does */
        bench_go(conn, (void *)(intptr_t)fd);
    }
}

int main(int argc, char **argv)
{
    uint16_t port;
    int seconds;

    bench_server_args(argc, argv, &port, &seconds);
    signal(SIGPIPE, SIG_IGN);            /* a peer that went away is an error return, not a kill */
    lfd = ringo_tcp_listen("127.0.0.1", port, 4096);
    if (lfd < 0)
        bench_fail("echo: ringo_tcp_listen 127.0.0.1:%u: %s", port, strerror(-lfd));
    bench_go(acceptor, NULL);
    printf("LISTENING 127.0.0.1:%u procs=%u\n", port, ringo_procs());
    fflush(stdout);
    ringo_sleep((int64_t)seconds * 1000000000);   /* main is a plain thread: bounded lifetime */
    return 0;
}
