/* examples/http_server.c — an HTTP/1.1 "Hello, World!" server: one goroutine per connection.
 *
 * Usage: http_server [PORT [WORKERS [READ_TIMEOUT_MS]]]
 *   PORT             TCP port on 127.0.0.1 (default 8080; 0 = any free port)
 *   WORKERS          worker threads (default 0 = one per CPU)
 *   READ_TIMEOUT_MS  how long a client may take to send one whole request, and how long an idle
 *                    keep-alive connection is kept (default 10000)
 * Prints "http_server: listening on 127.0.0.1:PORT with N workers" once it accepts.
 *
 * Every request gets "Hello, World!" (HEAD: the same head, no body). The HTTP/1.1 rules of RFC
 * 9112 a real client relies on: keep-alive is HTTP/1.1's default and HTTP/1.0's on request
 * ("Connection: keep-alive", answered in kind); "Connection: close" closes after the response;
 * pipelined requests are answered in order with one write per batch; lines may end in bare LF;
 * empty lines between requests are skipped; "Expect: 100-continue" gets "100 Continue" before
 * the body is read (any other expectation 417). A malformed request gets 400 and the
 * connection is closed; so does a request whose header exceeds 8 KiB (431), whose body exceeds
 * the buffer (413) or that uses a transfer coding (501); each error reply is followed by a
 * lingering close (FIN, then the client's remaining data read and dropped) so that it is not
 * lost to a reset. A client that does not finish its request within the read timeout (a slow
 * or stalled client) is disconnected: each read carries a deadline.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* memmem, accept4; the build passes -D_GNU_SOURCE, standalone builds need it */
#endif
#include <ringo.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define IN_SIZE 8192
#define OUT_SIZE 16384

static int lfd;
static int64_t read_timeout_ns = 10LL * 1000000000;
static struct ringo_waitgroup done = RINGO_WAITGROUP_INIT;

static const char ok_close[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
                               "Connection: close\r\n\r\nHello, World!";
static const char ok_keep[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
/* An HTTP/1.0 client closes after each response unless the response says it stays open
 * (RFC 9112, 9.3: ab -k waited its 10 s timeout on every connection without it). */
static const char ok_keep10[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
                                "Connection: keep-alive\r\n\r\nHello, World!";

struct request {
    bool keep_alive;
    bool http10;
    bool head;          /* HEAD: the response without its body */
    bool expect_100;    /* Expect: 100-continue */
    size_t body;        /* Content-Length */
};

enum { REQ_OK = 200, REQ_BAD = 400, REQ_BODY_TOO_LARGE = 413, REQ_TOO_LARGE = 431, REQ_NOT_IMPL = 501,
       REQ_EXPECT = 417 };

static bool is_tchar(int c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool token_eq(const char *p, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(p, word, n) == 0;
}

/* Lines end with LF, a CR before it ignored (RFC 9112, 2.2: curl and browsers send CRLF, some
 * scripts and `printf ... | nc` send bare LF; both are answered). The length of the head (up to
 * and including its empty line) in [p, p+n), or 0 while it is incomplete. */
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

/* The line at *pos within [.., end): its start, *len without the CR LF; *pos moves past it.
 * NULL at the end. A CR anywhere but before the LF makes *len (size_t)-1 (400, RFC 9112 2.2). */
static const char *next_line(const char **pos, const char *end, size_t *len)
{
    const char *l = *pos;
    if (l >= end)
        return NULL;
    const char *lf = memchr(l, '\n', (size_t)(end - l));
    if (!lf)
        return NULL;
    *pos = lf + 1;
    const char *e = lf > l && lf[-1] == '\r' ? lf - 1 : lf;
    *len = memchr(l, '\r', (size_t)(e - l)) ? (size_t)-1 : (size_t)(e - l);
    return l;
}

/* Parse the head in [p, p+n) (head_length's). Returns REQ_OK or an error status. */
static int parse(const char *p, size_t n, struct request *rq)
{
    const char *pos = p, *end = p + n;
    size_t ll;
    const char *line = next_line(&pos, end, &ll);
    if (!line || ll == (size_t)-1)
        return REQ_BAD;
    const char *eol = line + ll;
    /* request line: METHOD SP TARGET SP HTTP/1.x */
    const char *s = line;
    while (s < eol && is_tchar((unsigned char)*s))
        s++;
    if (s == line || s >= eol || *s != ' ')
        return REQ_BAD;
    rq->head = s - line == 4 && memcmp(line, "HEAD", 4) == 0; /* methods are case-sensitive */
    const char *t = ++s;
    while (s < eol && (unsigned char)*s > ' ' && *s != 0x7f)
        s++;
    if (s == t || s >= eol || *s != ' ')
        return REQ_BAD;
    s++;
    if (eol - s != 8 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1'))
        return REQ_BAD;
    bool http11 = s[7] == '1';
    rq->keep_alive = http11;
    rq->http10 = !http11;
    rq->expect_100 = false;
    rq->body = 0;
    bool host = false, have_len = false;
    /* header fields: NAME ":" OWS VALUE OWS, up to the empty line */
    while ((line = next_line(&pos, end, &ll)) && ll != 0) {
        if (ll == (size_t)-1)
            return REQ_BAD;
        eol = line + ll;
        const char *c = line;
        while (c < eol && is_tchar((unsigned char)*c))
            c++;
        if (c == line || c >= eol || *c != ':')
            return REQ_BAD; /* also an obsolete folded line (starts with SP/HTAB): RFC 9112 5.2 */
        size_t nlen = (size_t)(c - line);
        const char *v = c + 1, *ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        for (const char *q = v; q < ve; q++)
            if (((unsigned char)*q < ' ' && *q != '\t') || *q == 0x7f)
                return REQ_BAD;
        if (token_eq(line, nlen, "host")) {
            if (host)
                return REQ_BAD;
            host = true;
        } else if (token_eq(line, nlen, "content-length")) {
            if (have_len || v == ve || ve - v > 9)
                return REQ_BAD;
            size_t len = 0;
            for (const char *q = v; q < ve; q++) {
                if (!isdigit((unsigned char)*q))
                    return REQ_BAD;
                len = len * 10 + (size_t)(*q - '0');
            }
            have_len = true;
            rq->body = len;
        } else if (token_eq(line, nlen, "transfer-encoding")) {
            return REQ_NOT_IMPL;
        } else if (token_eq(line, nlen, "expect")) {
            if (!token_eq(v, (size_t)(ve - v), "100-continue"))
                return REQ_EXPECT; /* RFC 9110 10.1.1: an expectation we cannot meet */
            rq->expect_100 = http11;
        } else if (token_eq(line, nlen, "connection")) {
            /* a comma-separated list of tokens */
            for (const char *q = v; q < ve;) {
                while (q < ve && (*q == ',' || *q == ' ' || *q == '\t'))
                    q++;
                const char *w = q;
                while (q < ve && *q != ',' && *q != ' ' && *q != '\t')
                    q++;
                if (token_eq(w, (size_t)(q - w), "close"))
                    rq->keep_alive = false;
                else if (token_eq(w, (size_t)(q - w), "keep-alive") && !http11)
                    rq->keep_alive = true;
            }
        }
    }
    if (http11 && !host)
        return REQ_BAD; /* RFC 9112 3.2: a 1.1 request without Host gets 400 */
    return REQ_OK;
}

/* The response to rq: the keep-alive variant it asks for, without the body for HEAD. */
static size_t response(const struct request *rq, const char **text)
{
    const char *r = !rq->keep_alive ? ok_close : rq->http10 ? ok_keep10 : ok_keep;
    size_t n = !rq->keep_alive ? sizeof ok_close - 1 : rq->http10 ? sizeof ok_keep10 - 1 : sizeof ok_keep - 1;
    *text = r;
    return rq->head ? n - 13 : n; /* "Hello, World!" is the last 13 bytes */
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = ringo_write(fd, p, n, ringo_now() + read_timeout_ns);
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static void reply_error(int fd, int status)
{
    const char *msg = status == REQ_TOO_LARGE        ? "431 Request Header Fields Too Large"
                      : status == REQ_BODY_TOO_LARGE ? "413 Content Too Large"
                      : status == REQ_NOT_IMPL       ? "501 Not Implemented"
                      : status == REQ_EXPECT         ? "417 Expectation Failed"
                                                     : "400 Bad Request";
    char buf[256];
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
                     msg, strlen(msg) + 1, msg);
    write_all(fd, buf, (size_t)n);
    /* Lingering close (RFC 9112, 9.6): closing with the client's data unread makes the kernel
     * send RST, which can destroy the reply before the client reads it. Send FIN, then read and
     * drop what still comes until the client closes, for at most a second and 1 MiB. */
    ringo_shutdown(fd, SHUT_WR);
    int64_t until = ringo_now() + 1000000000LL;
    size_t drained = 0;
    while (drained < (1u << 20)) {
        ssize_t r = ringo_read(fd, buf, sizeof buf, until);
        if (r <= 0)
            break;
        drained += (size_t)r;
    }
}

/* Memory per idle connection (issue 13): a connection waiting for its next request holds no
 * buffer. Reads borrow a buffer ringo picks when data arrives (ringo_recv_lend); the request
 * buffer `in` exists only while a request is incomplete, and `out` only while a batch of
 * responses is being written, so an idle keep-alive connection costs its goroutine's stack page. */
static void serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char *in = NULL, *out = NULL; /* IN_SIZE and OUT_SIZE bytes while in use */
    size_t len = 0, outlen = 0;
    char *lent = NULL;            /* the lent buffer being copied into `in`, and what is left of it */
    size_t lent_off = 0, lent_len = 0;
    int64_t deadline = ringo_now() + read_timeout_ns; /* for the request being received */
    bool continued = false; /* "100 Continue" sent for the request being received */
    for (;;) {
        /* answer every complete request in the buffer (pipelining) */
        bool keep = true;
        while (keep && len > 0) {
            /* empty lines before a request line are ignored (RFC 9112, 2.2) */
            size_t skip = 0;
            while (skip < len && (in[skip] == '\n' || (in[skip] == '\r' && skip + 1 < len && in[skip + 1] == '\n')))
                skip += in[skip] == '\r' ? 2 : 1;
            if (skip) {
                memmove(in, in + skip, len - skip);
                len -= skip;
            }
            size_t head = head_length(in, len);
            if (!head)
                break;
            struct request rq;
            int st = parse(in, head, &rq);
            if (st != REQ_OK) {
                if (outlen)
                    write_all(fd, out, outlen);
                reply_error(fd, st);
                goto close;
            }
            if (rq.body > IN_SIZE - head) { /* a body we will not buffer */
                if (outlen)
                    write_all(fd, out, outlen);
                reply_error(fd, REQ_BODY_TOO_LARGE);
                goto close;
            }
            if (len < head + rq.body) {
                /* the body is still coming; a client that asked first is told to send it */
                if (rq.expect_100 && !continued) {
                    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                    if (outlen && !write_all(fd, out, outlen))
                        goto close;
                    outlen = 0;
                    if (!write_all(fd, cont, sizeof cont - 1))
                        goto close;
                    continued = true;
                }
                break;
            }
            continued = false;
            const char *resp;
            size_t rlen = response(&rq, &resp);
            if (outlen + rlen > OUT_SIZE) {
                if (!write_all(fd, out, outlen))
                    goto close;
                outlen = 0;
            }
            if (!out && !(out = malloc(OUT_SIZE)))
                goto close;
            memcpy(out + outlen, resp, rlen);
            outlen += rlen;
            memmove(in, in + head + rq.body, len - head - rq.body);
            len -= head + rq.body;
            keep = rq.keep_alive;
            deadline = ringo_now() + read_timeout_ns; /* the next request's clock starts now */
        }
        if (outlen) {
            if (!write_all(fd, out, outlen))
                goto close;
            outlen = 0;
        }
        if (!keep)
            goto close;
        if (len == IN_SIZE) {
            reply_error(fd, REQ_TOO_LARGE);
            goto close;
        }
        if (lent_off == lent_len) {
            /* nothing left to parse: wait holding no buffer */
            ringo_buf_release(lent);
            lent = NULL;
            lent_off = lent_len = 0;
            free(out);
            out = NULL;
            if (len == 0) {
                free(in);
                in = NULL;
            }
            void *data;
            ssize_t n = ringo_recv_lend(fd, &data, 0, deadline);
            if (n <= 0)
                goto close; /* EOF, reset, or the client was too slow (-ETIMEDOUT) */
            lent = data;
            lent_len = (size_t)n;
        }
        if (!in && !(in = malloc(IN_SIZE)))
            goto close;
        size_t take = lent_len - lent_off < IN_SIZE - len ? lent_len - lent_off : IN_SIZE - len;
        memcpy(in + len, lent + lent_off, take);
        len += take;
        lent_off += take;
    }
close:
    ringo_buf_release(lent);
    free(in);
    free(out);
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
                break;
            continue;
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
    long port = argc > 1 ? strtol(argv[1], NULL, 10) : 8080;
    long workers = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
    long timeout_ms = argc > 3 ? strtol(argv[3], NULL, 10) : 10000;
    if (port < 0 || port > 65535 || workers < 0 || workers > 4096 || timeout_ms <= 0) {
        fprintf(stderr, "usage: %s [PORT [WORKERS [READ_TIMEOUT_MS]]]\n", argv[0]);
        return 2;
    }
    read_timeout_ns = (int64_t)timeout_ms * 1000000;
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max; /* one descriptor per connection: 1,000+ clients */
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct ringo_config cfg = { .procs = (unsigned)workers, .pin = -1 };
    int r = ringo_init(&cfg);
    if (r < 0) {
        fprintf(stderr, "http_server: ringo_init: %s\n", strerror(-r));
        return 1;
    }
    lfd = ringo_tcp_listen("127.0.0.1", (uint16_t)port, 4096);
    if (lfd < 0) {
        fprintf(stderr, "http_server: listen on 127.0.0.1:%ld: %s\n", port, strerror(-lfd));
        return 1;
    }
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &len);
    ringo_wg_add(&done, 1);
    if (ringo_go(acceptor, NULL) < 0) {
        fprintf(stderr, "http_server: cannot start the acceptor\n");
        return 1;
    }
    printf("http_server: listening on 127.0.0.1:%u with %u workers\n", ntohs(sa.sin_port), ringo_procs());
    fflush(stdout);
    ringo_wg_wait(&done);
    return 0;
}
