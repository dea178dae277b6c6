/* http_threads — B9 baseline: HTTP/1.1 keep-alive "Hello, World!" server, one pthread per connection,
 * blocking I/O.
 * Usage: http_threads PORT [SECONDS]   (binds 127.0.0.1 only; exits after SECONDS, default 600,
 * or on SIGTERM). The shape lives in server_shapes.c; this file only picks it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "../bench_util.h"

int main(int argc, char **argv)
{
    return bs_serve_threads(argc, argv, bs_http_handler);
}
