/* examples/echo_server.c — a TCP echo server: one goroutine per connection, as in Go.
 *
 * Usage: echo_server [PORT [WORKERS]]
 *   PORT     TCP port on 127.0.0.1 (default 7007; 0 = any free port)
 *   WORKERS  worker threads (default 0 = one per CPU)
 * Prints "echo_server: listening on 127.0.0.1:PORT with N workers" once it accepts.
 *
 * Every connection gets its own goroutine that reads and writes back until EOF. The calls look
 * blocking; underneath, each one parks its goroutine while io_uring (or epoll) waits.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* memmem, accept4; the build passes -D_GNU_SOURCE, standalone builds need it */
#endif
#include <ringo.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static int lfd;
static struct ringo_waitgroup done = RINGO_WAITGROUP_INIT;

static void serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[16384];
    for (;;) {
        ssize_t n = ringo_read(fd, buf, sizeof buf, -1);
        if (n <= 0)
            break; /* EOF, or an error such as a reset */
        for (ssize_t off = 0; off < n;) {
            ssize_t w = ringo_write(fd, buf + off, (size_t)(n - off), -1);
            if (w <= 0)
                goto out;
            off += w;
        }
    }
out:
    ringo_close(fd);
}

static void acceptor(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = ringo_accept(lfd, NULL, NULL, -1);
        if (fd < 0) {
            if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
                ringo_sleep(10 * 1000000); /* out of descriptors: back off */
                continue;
            }
            if (fd == -EBADF || fd == -EINVAL || fd == -ENOTSOCK)
                break; /* the listener is gone */
            continue; /* ECONNABORTED and friends: the next one */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (ringo_go(serve, (void *)(intptr_t)fd) < 0)
            ringo_close(fd);
    }
    ringo_wg_done(&done);
}

int main(int argc, char **argv)
{
    long port = argc > 1 ? strtol(argv[1], NULL, 10) : 7007;
    long workers = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
    if (port < 0 || port > 65535 || workers < 0 || workers > 4096) {
        fprintf(stderr, "usage: %s [PORT [WORKERS]]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a peer that went away is an error return, not a kill */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max; /* one descriptor per connection */
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct ringo_config cfg = { .procs = (unsigned)workers, .pin = -1 };
    int r = ringo_init(&cfg);
    if (r < 0) {
        fprintf(stderr, "echo_server: ringo_init: %s\n", strerror(-r));
        return 1;
    }
    lfd = ringo_tcp_listen("127.0.0.1", (uint16_t)port, 4096);
    if (lfd < 0) {
        fprintf(stderr, "echo_server: listen on 127.0.0.1:%ld: %s\n", port, strerror(-lfd));
        return 1;
    }
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &len);
    ringo_wg_add(&done, 1);
    if (ringo_go(acceptor, NULL) < 0) {
        fprintf(stderr, "echo_server: cannot start the acceptor\n");
        return 1;
    }
    printf("echo_server: listening on 127.0.0.1:%u with %u workers\n", ntohs(sa.sin_port), ringo_procs());
    fflush(stdout);
    ringo_wg_wait(&done); /* main is a plain thread: it blocks here until the listener dies */
    return 0;
}
