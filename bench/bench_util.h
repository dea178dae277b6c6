/* bench_util.h — helpers shared by the ringo bench programs (bench/b*.c) and the C baselines
 * (bench/baseline/). See bench/README.md and ../shared/design/BENCH.md.
 *
 * Responsibility: the pieces every bench program needs and that must behave identically in
 * each of them — the scale knob (RINGO_BENCH_SCALE), the RESULT line format, failure exits,
 * resident-memory and CPU-time probes, the tiny HTTP request scanner, the PRNG that B10 shares
 * with its Go peer. Everything is static inline: no object file, no link dependency.
 *
 * The libc part works everywhere. The part at the end (bench_go_main) appears only when
 * <ringo.h> was included first, so the baselines, which do not link ringo, can use this file too.
 *
 * The Go peers (bench/go/benchutil) mirror these helpers; keep the two in step.
 */
#ifndef RINGO_BENCH_UTIL_H
#define RINGO_BENCH_UTIL_H

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

/* ---------------------------------------------------------------- failure and results */

/* Print "ERROR <what>" on stderr and exit 1. A bench program that computes a wrong answer
 * fails; it never prints a number. */
__attribute__((format(printf, 1, 2), noreturn))
static inline void bench_fail(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fflush(stdout);
    fprintf(stderr, "ERROR %s\n", msg);
    exit(1);
}

/* The one machine-readable line per variant: RESULT name=<case/variant> metric=<v> unit=<u>.
 * The value is printed with 6 significant digits (%.6g), or with one decimal from 1000 up so
 * large rates never turn into exponents; the Go peers format it the same way. */
static inline void bench_result(const char *name, double metric, const char *unit)
{
    if (metric >= 1000.0 || metric <= -1000.0)
        printf("RESULT name=%s metric=%.1f unit=%s\n", name, metric, unit);
    else
        printf("RESULT name=%s metric=%.6g unit=%s\n", name, metric, unit);
    fflush(stdout);
}

/* ---------------------------------------------------------------- sizes */

/* RINGO_BENCH_SCALE: a positive factor applied to every work count (QUICK=1 uses 0.1). */
static inline double bench_scale(void)
{
    const char *s = getenv("RINGO_BENCH_SCALE");
    char *end;
    double v;

    if (s == NULL || *s == '\0')
        return 1.0;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !(v > 0.0) || v > 100.0)
        bench_fail("RINGO_BENCH_SCALE=%s: want a number in (0, 100]", s);
    return v;
}

/* n scaled by RINGO_BENCH_SCALE, rounded, at least min. */
static inline int64_t bench_scaled(int64_t n, int64_t min)
{
    double v = (double)n * bench_scale() + 0.5;
    int64_t r = (int64_t)v;
    return r < min ? min : r;
}

/* ---------------------------------------------------------------- clocks and probes */

static inline int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Resident set size in bytes, from /proc/self/statm (field 2, pages). */
static inline int64_t bench_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long long size = 0, resident = 0;

    if (f == NULL)
        bench_fail("open /proc/self/statm: %s", strerror(errno));
    if (fscanf(f, "%lld %lld", &size, &resident) != 2)
        bench_fail("parse /proc/self/statm");
    fclose(f);
    return (int64_t)resident * (int64_t)sysconf(_SC_PAGESIZE);
}

/* User + system CPU seconds of the whole process (all threads). */
static inline double bench_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---------------------------------------------------------------- PRNG (B10) */

/* splitmix64: the Go peer uses the same function, so both sleep the same durations. */
static inline uint64_t bench_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* ---------------------------------------------------------------- servers (B8, B9) */

/* Parse "PORT [SECONDS]" from argv; SECONDS (default 600) bounds the server's lifetime. */
static inline void bench_server_args(int argc, char **argv, uint16_t *port, int *seconds)
{
    long p, s = 600;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s PORT [SECONDS]   (binds 127.0.0.1:PORT, exits after SECONDS)\n",
                argv[0]);
        exit(2);
    }
    p = strtol(argv[1], NULL, 10);
    if (argc == 3)
        s = strtol(argv[2], NULL, 10);
    if (p <= 0 || p > 65535 || s <= 0 || s > 86400) {
        fprintf(stderr, "%s: bad PORT or SECONDS\n", argv[0]);
        exit(2);
    }
    *port = (uint16_t)p;
    *seconds = (int)s;
}

/* The B9 response. Every B9 server (ringo, Go, the C baselines) sends exactly these bytes. */
#define BENCH_HTTP_RESPONSE                                                      \
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n" \
    "Hello, World!"

/* The answer to an HTTP/1.0 request that asks to stay open (ab -k): an HTTP/1.0 client closes
 * after a response that does not say it stays open (RFC 9112, 9.3). */
#define BENCH_HTTP_RESPONSE_KA10                                                 \
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"   \
    "Connection: keep-alive\r\n\r\nHello, World!"

/* Request heads (ending in CRLF CRLF) in a byte stream read in arbitrary pieces. Requests are
 * assumed to have no body (wrk and ab send GETs), so one head = one request; pipelined requests
 * are counted one by one. Each head has a kind: KEEP (HTTP/1.1, the default response), KEEP10
 * (HTTP/1.0 with "Connection: keep-alive": BENCH_HTTP_RESPONSE_KA10) or CLOSE (HTTP/1.0 without
 * it, or "Connection: close": the default response, then the server closes). The kind is read
 * from the head's first BENCH_HTTP_KEEP_BYTES bytes (the request line and the first fields). */
enum { BENCH_HTTP_KEEP = 0, BENCH_HTTP_KEEP10 = 1, BENCH_HTTP_CLOSE = 2 };
#define BENCH_HTTP_KEEP_BYTES 256
struct bench_http_state {
    unsigned m;                        /* terminator bytes matched */
    unsigned len;                      /* bytes of the current head kept */
    char head[BENCH_HTTP_KEEP_BYTES];
};

static inline unsigned bench_http_kind(const char *h, size_t n)
{
    size_t eol = 0;
    while (eol < n && h[eol] != '\r')
        eol++;
    int http10 = eol >= 8 && memcmp(h + eol - 8, "HTTP/1.0", 8) == 0;
    int ka = 0, close = 0;
    for (size_t i = eol; i + 11 <= n; i++) {
        if (h[i] != '\n' || strncasecmp(h + i + 1, "connection:", 11) != 0)
            continue;
        size_t e = i + 12;
        while (e < n && h[e] != '\r')
            e++;
        for (size_t j = i + 12; j + 5 <= e; j++) {
            close |= strncasecmp(h + j, "close", 5) == 0;
            ka |= j + 10 <= e && strncasecmp(h + j, "keep-alive", 10) == 0;
        }
    }
    if (close || (http10 && !ka))
        return BENCH_HTTP_CLOSE;
    return http10 ? BENCH_HTTP_KEEP10 : BENCH_HTTP_KEEP;
}

/* Feed p[0..n): the kinds of the heads it completes go to kinds[], at most max; it stops after
 * max heads or a CLOSE head (what follows is never answered). *used: the bytes consumed.
 * Returns how many heads. */
static inline unsigned bench_http_feed(const char *p, size_t n, struct bench_http_state *st, unsigned char *kinds,
                                       unsigned max, size_t *used)
{
    static const char term[4] = { '\r', '\n', '\r', '\n' };
    unsigned m = st->m, k = 0;
    size_t i = 0;

    while (i < n && k < max) {
        char c = p[i++];
        if (st->len < BENCH_HTTP_KEEP_BYTES)
            st->head[st->len++] = c;
        if (c == term[m])
            m++;
        else
            m = c == '\r' ? 1 : 0;
        if (m == 4) {
            kinds[k] = (unsigned char)bench_http_kind(st->head, st->len);
            m = 0;
            st->len = 0;
            if (kinds[k++] == BENCH_HTTP_CLOSE)
                break;
        }
    }
    st->m = m;
    *used = i;
    return k;
}

/* ---------------------------------------------------------------- baseline servers */
/* Implemented in baseline/server_shapes.c, linked into the four C baseline servers only. */
struct bs_out {
    char  *p;
    size_t len, off, cap;   /* bytes p[off..len) are still to be written */
};
/* A handler turns input bytes into output bytes; state is per connection (zeroed at start).
 * Returns 1 when the connection closes once out is written (an HTTP/1.0 request), else 0. */
typedef int (*bs_handler)(struct bench_http_state *state, const char *in, size_t n, struct bs_out *out);
int bs_echo_handler(struct bench_http_state *state, const char *in, size_t n, struct bs_out *out); /* echo */
int bs_http_handler(struct bench_http_state *state, const char *in, size_t n, struct bs_out *out); /* B9 */
/* Serve "PORT [SECONDS]" from argv: accept loop + one pthread per connection. Never returns. */
int bs_serve_threads(int argc, char **argv, bs_handler handler);
/* Serve "PORT [SECONDS]" from argv: one thread, level-triggered epoll. Returns 0 after SECONDS. */
int bs_serve_epoll(int argc, char **argv, bs_handler handler);

/* ---------------------------------------------------------------- ringo only */
#ifdef RINGO_H
/* Go's main is a goroutine; ringo's main() is a plain thread. Run the benchmark body as a
 * goroutine started from main and block main on a wait group until it returns, so every spawn
 * and channel operation measured is goroutine-to-goroutine. */
struct bench_main_ctx {
    void (*fn)(void);
    struct ringo_waitgroup wg;
};

static inline void bench_main_trampoline(void *arg)
{
    struct bench_main_ctx *ctx = arg;
    ctx->fn();
    ringo_wg_done(&ctx->wg);
}

static inline void bench_go_main(void (*fn)(void))
{
    static struct bench_main_ctx ctx = { NULL, RINGO_WAITGROUP_INIT };
    int64_t id;

    ctx.fn = fn;
    ringo_wg_add(&ctx.wg, 1);
    id = ringo_go(bench_main_trampoline, &ctx);
    if (id < 0)
        bench_fail("ringo_go(driver): %s", strerror((int)-id));
    ringo_wg_wait(&ctx.wg);
}

/* ringo_go or die: the bench cannot measure anything if a spawn fails. */
static inline void bench_go(void (*fn)(void *), void *arg)
{
    int64_t id = ringo_go(fn, arg);
    if (id < 0)
        bench_fail("ringo_go: %s", strerror((int)-id));
}
#endif /* RINGO_H */

#endif /* RINGO_BENCH_UTIL_H */
