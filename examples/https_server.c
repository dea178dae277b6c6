/* examples/https_server.c — "Hello, World!" over HTTPS: OpenSSL on ringo's I/O, one goroutine per
 * connection.
 *
 * Usage: https_server [PORT [WORKERS [CERT.pem KEY.pem]]]
 *   PORT      TCP port on 127.0.0.1 (default 8443; 0 = any free port)
 *   WORKERS   worker threads (default 0 = one per CPU)
 *   CERT KEY  a PEM certificate and its key; without them the server makes a self-signed
 *             P-256 certificate for "localhost" at start (clients need curl -k or the like)
 * Prints "https_server: listening on 127.0.0.1:PORT with N workers" once it accepts.
 *
 * How OpenSSL meets goroutines: each connection's socket is O_NONBLOCK and handed to OpenSSL
 * with SSL_set_fd. Every SSL_accept / SSL_read / SSL_write that reports SSL_ERROR_WANT_READ or
 * SSL_ERROR_WANT_WRITE is retried after ringo_poll(fd, POLLIN or POLLOUT, deadline), which
 * parks the goroutine (io_uring or epoll waits) instead of blocking its worker thread. The
 * handshake costs CPU on the worker (as in Go's crypto/tls). An SSL object is used by one
 * goroutine at a time, which may move between worker threads between calls: OpenSSL 3 keeps no
 * per-thread state for a connection, so that is safe (its error queue is per thread: read it
 * right after the failing call, before any call that can park, as here).
 *
 * HTTP: each request head (ending in CRLF CRLF, or bare LF LF) gets "Hello, World!"; keep-alive
 * as HTTP/1.1 (HTTP/1.0 only with "Connection: keep-alive"); "Connection: close" closes. A
 * client that sends nothing for 10 s, or takes longer over its handshake, is disconnected.
 * Requests carry no body here (a teaching example; examples/http_server.c has the full rules).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <ringo.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define TIMEOUT_NS (10LL * 1000000000)

static SSL_CTX *ctx;
static int lfd;

static const char ok_keep[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
static const char ok_keep10[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
                                "Connection: keep-alive\r\n\r\nHello, World!";
static const char ok_close[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
                               "Connection: close\r\n\r\nHello, World!";

/* One TLS call, retried while OpenSSL wants the socket readable or writable: the goroutine
 * parks in ringo_poll meanwhile. Returns the call's result (> 0) or -1 (closed, error, or the
 * deadline). */
static int tls_io(SSL *ssl, int fd, int (*call)(SSL *, void *, int), void *buf, int n, int64_t deadline)
{
    for (;;) {
        ERR_clear_error();
        int r = call(ssl, buf, n);
        if (r > 0)
            return r;
        int e = SSL_get_error(ssl, r); /* right away: the error queue is per thread */
        short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (!ev)
            return -1; /* SSL_ERROR_ZERO_RETURN (close_notify), SYSCALL (reset), SSL (bad record) */
        if (ringo_poll(fd, ev, deadline) < 0)
            return -1; /* -ETIMEDOUT, or ringo_close */
    }
}

static int do_accept(SSL *ssl, void *buf, int n)
{
    (void)buf;
    (void)n;
    return SSL_accept(ssl);
}

static int do_read(SSL *ssl, void *buf, int n)
{
    return SSL_read(ssl, buf, n);
}

static int do_write(SSL *ssl, void *buf, int n)
{
    return SSL_write(ssl, buf, n);
}

/* The kind of the head in [h, h+n): 0 keep-alive (1.1), 1 keep-alive (1.0, say so), 2 close.
 * Read from its first 511 bytes (the request line and the first fields). */
static int head_kind(const char *h, size_t n)
{
    char t[512];
    size_t l = n < sizeof t - 1 ? n : sizeof t - 1;
    memcpy(t, h, l);
    t[l] = 0;
    char *eol = strchr(t, '\n');
    if (!eol)
        return 2;
    size_t rl = (size_t)(eol - t) - (eol > t && eol[-1] == '\r');
    bool http10 = rl >= 8 && memcmp(t + rl - 8, "HTTP/1.0", 8) == 0, ka = false, close = false;
    for (char *line = eol + 1; *line; ) {
        char *next = strchr(line, '\n');
        if (next)
            *next = 0; /* the line alone */
        if (strncasecmp(line, "connection:", 11) == 0) {
            ka |= strcasestr(line + 11, "keep-alive") != NULL;
            close |= strcasestr(line + 11, "close") != NULL;
        }
        if (!next)
            break;
        line = next + 1;
    }
    return close || (http10 && !ka) ? 2 : http10 ? 1 : 0;
}

/* The length of the head at the start of [p, p+n) (through its empty line), 0 if incomplete. */
static size_t head_length(const char *p, size_t n)
{
    for (const char *lf = p; (lf = memchr(lf, '\n', (size_t)(p + n - lf))); lf++) {
        const char *q = lf + 1;
        if (q < p + n && *q == '\r')
            q++;
        if (q < p + n && *q == '\n')
            return (size_t)(q + 1 - p);
    }
    return 0;
}

static void serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    SSL *ssl = SSL_new(ctx);
    char in[8192];
    size_t len = 0;
    if (!ssl || !SSL_set_fd(ssl, fd))
        goto out;
    if (tls_io(ssl, fd, do_accept, NULL, 0, ringo_now() + TIMEOUT_NS) <= 0)
        goto out; /* a client that is not TLS, or too slow */
    for (;;) {
        size_t head;
        while ((head = head_length(in, len)) != 0) {
            int kind = head_kind(in, head);
            const char *resp = kind == 0 ? ok_keep : kind == 1 ? ok_keep10 : ok_close;
            int rlen = (int)(kind == 0 ? sizeof ok_keep : kind == 1 ? sizeof ok_keep10 : sizeof ok_close) - 1;
            if (tls_io(ssl, fd, do_write, (void *)resp, rlen, ringo_now() + TIMEOUT_NS) != rlen)
                goto out;
            if (kind == 2) {
                SSL_shutdown(ssl); /* close_notify; the client's answer is not awaited */
                goto out;
            }
            memmove(in, in + head, len - head);
            len -= head;
        }
        if (len == sizeof in)
            goto out; /* a head larger than 8 KiB */
        int n = tls_io(ssl, fd, do_read, in + len, (int)(sizeof in - len), ringo_now() + TIMEOUT_NS);
        if (n <= 0)
            goto out;
        len += (size_t)n;
    }
out:
    SSL_free(ssl);
    ringo_close(fd);
}

static void acceptor(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = ringo_accept(lfd, NULL, NULL, -1);
        if (fd < 0) {
            if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
                ringo_sleep(10 * 1000000);
                continue;
            }
            if (fd == -EBADF || fd == -EINVAL || fd == -ENOTSOCK)
                return;
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); /* OpenSSL's calls must not block */
        if (ringo_go(serve, (void *)(intptr_t)fd) < 0)
            ringo_close(fd);
    }
}

/* A self-signed P-256 certificate for "localhost", valid for a day. */
static bool self_signed(SSL_CTX *c)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    bool ok = false;
    if (key && x) {
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), 0);
        X509_gmtime_adj(X509_getm_notAfter(x), 86400);
        X509_set_pubkey(x, key);
        X509_NAME *name = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
        X509_set_issuer_name(x, name);
        ok = X509_sign(x, key, EVP_sha256()) > 0 && SSL_CTX_use_certificate(c, x) == 1 &&
             SSL_CTX_use_PrivateKey(c, key) == 1;
    }
    X509_free(x);
    EVP_PKEY_free(key);
    return ok;
}

int main(int argc, char **argv)
{
    long port = argc > 1 ? strtol(argv[1], NULL, 10) : 8443;
    long workers = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
    if (port < 0 || port > 65535 || workers < 0 || workers > 4096 || argc == 4 || argc > 5) {
        fprintf(stderr, "usage: %s [PORT [WORKERS [CERT.pem KEY.pem]]]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        fprintf(stderr, "https_server: SSL_CTX_new failed\n");
        return 1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    bool ok = argc == 5 ? SSL_CTX_use_certificate_chain_file(ctx, argv[3]) == 1 &&
                              SSL_CTX_use_PrivateKey_file(ctx, argv[4], SSL_FILETYPE_PEM) == 1
                        : self_signed(ctx);
    if (!ok) {
        fprintf(stderr, "https_server: no certificate: ");
        ERR_print_errors_fp(stderr);
        return 1;
    }
    struct ringo_config cfg = { .procs = (unsigned)workers, .pin = -1 };
    int r = ringo_init(&cfg);
    if (r < 0) {
        fprintf(stderr, "https_server: ringo_init: %s\n", strerror(-r));
        return 1;
    }
    lfd = ringo_tcp_listen("127.0.0.1", (uint16_t)port, 4096);
    if (lfd < 0) {
        fprintf(stderr, "https_server: listen on 127.0.0.1:%ld: %s\n", port, strerror(-lfd));
        return 1;
    }
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &len);
    printf("https_server: listening on 127.0.0.1:%u with %u workers\n", ntohs(sa.sin_port), ringo_procs());
    fflush(stdout);
    acceptor(NULL); /* main is a plain thread: it accepts; each connection is a goroutine */
    return 0;
}
