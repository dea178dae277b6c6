/* sched/io/tcp.c — name resolution and TCP conveniences: ringo_resolve, ringo_tcp_listen,
 * ringo_tcp_dial.
 * Responsibility: name resolution (getaddrinfo, a blocking libc call), listeners that take
 * IPv4 and IPv6, and a dial that tries each address in turn with ringo_connect and one
 * deadline. getaddrinfo errors map to negative errno. A numeric host is parsed in place
 * (AI_NUMERICHOST never blocks); any other name is looked up on the blocking pool, so a slow DNS
 * server parks the goroutine, not its worker.
 *
 * The deadline of a lookup (R1): without one, the caller makes the lookup through ringo_blocking
 *   itself. With one: getaddrinfo cannot be interrupted, so a lookup runs in a
 *   goroutine of its own (struct lookup, on the heap) that makes it through ringo_blocking and
 *   then writes an eventfd; the caller waits for that eventfd with ringo_poll until its
 *   deadline (an I/O wait: the io layer may not use channels, tools/check-layers). A caller
 *   that gives up returns -ETIMEDOUT at once and the lookup finishes alone. Two references
 *   (caller, lookup goroutine): whoever drops the last frees the job, its eventfd and the
 *   addrinfo list, so nothing leaks or is freed under the other. A plain thread waits the same
 *   way (ringo_poll is a ppoll there).
 * Depends on: the public I/O calls (io.c: ringo_connect, ringo_poll, ringo_close),
 *   ringo_blocking (sched/blocking.c), ringo_go.
 */
#include "sched/io/io.h"
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* e: getaddrinfo's result; err: errno right after it, on the thread that called it */
static int gai_errno(int e, int err)
{
    switch (e) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
    case EAI_FAIL:
        return -ENOENT; /* no such host */
    case EAI_AGAIN:
        return -EAGAIN;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_FAMILY:
        return -EAFNOSUPPORT;
    case EAI_SYSTEM:
        return err ? -err : -EIO;
    default:
        return -EINVAL;
    }
}

/* Listeners are O_NONBLOCK: ringo_accept still waits (every path handles EAGAIN), but it can
 * take queued connections without a trip through the ring (accept_first). */
static int listen_on(int family, const struct sockaddr *sa, socklen_t salen, int backlog)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero); /* "::" takes IPv4 too */
    if (bind(fd, sa, salen) < 0 || listen(fd, backlog) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int ringo_tcp_listen(const char *host, uint16_t port, int backlog)
{
    if (backlog <= 0)
        backlog = SOMAXCONN;
    if (!host) {
        struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = in6addr_any };
        int fd = listen_on(AF_INET6, (struct sockaddr *)&a6, sizeof a6, backlog);
        if (fd >= 0 || fd == -EADDRINUSE || fd == -EACCES)
            return fd;
        struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY) };
        return listen_on(AF_INET, (struct sockaddr *)&a4, sizeof a4, backlog); /* no IPv6 here */
    }
    char ps[8];
    snprintf(ps, sizeof ps, "%u", (unsigned)port);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *res;
    int e = getaddrinfo(host, ps, &hints, &res);
    if (e)
        return gai_errno(e, errno);
    int fd = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = listen_on(ai->ai_family, ai->ai_addr, ai->ai_addrlen, backlog);
        if (fd >= 0)
            break;
    }
    freeaddrinfo(res);
    return fd;
}

/* One getaddrinfo call, made on whatever thread runs it (a blocking-pool thread). */
struct resolve {
    const char *host, *port;
    struct addrinfo hints;
    struct addrinfo *res;
    int e, err;  /* getaddrinfo's result, and errno on the thread that ran it */
};

/* Test hook (tests/test_net.c): called on the thread about to call getaddrinfo for a name (a
 * slow DNS server, made). NULL otherwise. */
void (*sched_test_hook_resolve)(const char *host);

static void resolve_run(void *p)
{
    struct resolve *r = p;
    if (unlikely(sched_test_hook_resolve) && !(r->hints.ai_flags & AI_NUMERICHOST))
        sched_test_hook_resolve(r->host);
    r->e = getaddrinfo(r->host, r->port, &r->hints, &r->res);
    r->err = r->e == EAI_SYSTEM ? errno : 0;
}

/* R1 (top): a lookup that may outlive its caller. */
struct lookup {
    struct resolve rs;
    char host[256], port[8];
    int efd;                   /* the lookup goroutine's "finished": an eventfd it writes */
    _Atomic int refs;          /* 2 at start; acq_rel: the last dropper sees the other's writes */
    _Atomic int finished;      /* 1 once rs holds the result: release before the eventfd write */
};

static void lookup_unref(struct lookup *l)
{
    if (atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (l->rs.e == 0 && l->rs.res)
        freeaddrinfo(l->rs.res);
    ringo_close(l->efd);
    free(l);
}

static void lookup_main(void *p)
{
    struct lookup *l = p;
    if (ringo_blocking(resolve_run, &l->rs) < 0) {
        l->rs.e = EAI_SYSTEM; /* no pool thread could be had */
        l->rs.err = EAGAIN;
    }
    /* release: the caller's acquire load after its poll sees rs (the eventfd orders nothing in
     * the C memory model) */
    atomic_store_explicit(&l->finished, 1, memory_order_release);
    uint64_t one = 1;
    (void)!write(l->efd, &one, sizeof one); /* never blocks: the counter is far from full */
    lookup_unref(l);
}

/* getaddrinfo for host (port: a numeric string) with the caller's deadline: a numeric host in
 * place, a name as R1 says. 0 and rs->res set (the caller frees it with resolved_free), or a
 * negative errno. */
static int resolve_deadline(struct resolve *rs, struct lookup **lp, int64_t deadline)
{
    *lp = NULL;
    struct addrinfo hints = rs->hints;
    rs->hints.ai_flags |= AI_NUMERICHOST;
    resolve_run(rs); /* a numeric address: parsed, never a lookup */
    rs->hints = hints;
    if (rs->e != EAI_NONAME)
        return rs->e ? gai_errno(rs->e, rs->err) : 0;
    if (deadline < 0) {
        /* no deadline: nothing to leave behind, so no goroutine or eventfd of its own */
        int b = ringo_blocking(resolve_run, rs);
        if (b < 0)
            return b;
        return rs->e ? gai_errno(rs->e, rs->err) : 0;
    }
    size_t hl = strlen(rs->host);
    if (hl >= sizeof (*lp)->host)
        return -EINVAL; /* longer than any DNS name */
    struct lookup *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    memcpy(l->host, rs->host, hl + 1);
    snprintf(l->port, sizeof l->port, "%s", rs->port ? rs->port : "0");
    l->rs = (struct resolve){ .host = l->host, .port = rs->port ? l->port : NULL, .hints = hints };
    l->efd = eventfd(0, EFD_CLOEXEC);
    if (l->efd < 0) {
        int err = -errno;
        free(l);
        return err;
    }
    atomic_store_explicit(&l->refs, 2, memory_order_relaxed); /* before ringo_go publishes l */
    int64_t id = ringo_go(lookup_main, l);
    if (id < 0) {
        close(l->efd);
        free(l);
        return (int)id;
    }
    int r;
    do
        r = ringo_poll(l->efd, POLLIN, deadline);
    while (r == -EINTR);
    if (r < 0) {
        lookup_unref(l); /* the lookup goroutine frees what it finds */
        return r;        /* -ETIMEDOUT */
    }
    /* acquire: pairs with lookup_main's release; the store came before the eventfd write our
     * poll saw, so it is there */
    if (!atomic_load_explicit(&l->finished, memory_order_acquire))
        sched_fatal("ringo_resolve: the lookup's eventfd was ready before its result");
    rs->e = l->rs.e;
    rs->err = l->rs.err;
    if (rs->e) {
        lookup_unref(l); /* nothing to hand over */
        return gai_errno(rs->e, rs->err);
    }
    *lp = l;
    rs->res = l->rs.res;
    return 0;
}

/* Frees what resolve_deadline returned: the lookup (and its list) or the list alone. */
static void resolved_free(struct resolve *rs, struct lookup *l)
{
    if (l)
        lookup_unref(l);
    else if (rs->e == 0 && rs->res)
        freeaddrinfo(rs->res);
}

int ringo_resolve(const char *host, int family, struct sockaddr_storage *out, int max, int64_t deadline)
{
    if (!host || !host[0] || max <= 0 || !out)
        return -EINVAL;
    if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
        return -EAFNOSUPPORT;
    struct resolve rs = { .host = host, .hints = { .ai_family = family, .ai_socktype = SOCK_STREAM } };
    struct lookup *l;
    int r = resolve_deadline(&rs, &l, deadline);
    if (r < 0)
        return r;
    int n = 0;
    for (struct addrinfo *ai = rs.res; ai && n < max; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof *out)
            continue;
        memset(&out[n], 0, sizeof out[n]);
        memcpy(&out[n], ai->ai_addr, ai->ai_addrlen);
        n++;
    }
    resolved_free(&rs, l);
    return n ? n : -ENOENT;
}

int ringo_tcp_dial(const char *host, uint16_t port, int64_t deadline)
{
    if (!host)
        return -EINVAL;
    char ps[8];
    snprintf(ps, sizeof ps, "%u", (unsigned)port);
    struct resolve rs = { .host = host, .port = ps,
                          .hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                     .ai_flags = AI_NUMERICSERV } };
    struct lookup *l;
    int rr = resolve_deadline(&rs, &l, deadline); /* a name: /etc/hosts, DNS... within the deadline */
    if (rr < 0)
        return rr;
    struct addrinfo *res = rs.res;
    int r = -ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            r = -errno;
            continue;
        }
        r = ringo_connect(fd, ai->ai_addr, ai->ai_addrlen, deadline);
        if (r == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* as Go's net.Dial does */
            r = fd;
            break;
        }
        ringo_close(fd);
        if (r == -ETIMEDOUT)
            break;
    }
    resolved_free(&rs, l);
    return r;
}
