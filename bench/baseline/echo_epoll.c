/* echo_epoll — B8 baseline: TCP echo server, a single thread running a
 * level-triggered epoll loop.
 * Usage: echo_epoll PORT [SECONDS]   (binds 127.0.0.1 only; exits after SECONDS, default 600,
 * or on SIGTERM). The shape lives in server_shapes.c; this file only picks it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "../bench_util.h"

int main(int argc, char **argv)
{
    return bs_serve_epoll(argc, argv, bs_echo_handler);
}
