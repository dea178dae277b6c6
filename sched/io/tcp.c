/* sched/io/tcp.c — TCP conveniences: ringo_tcp_listen and ringo_tcp_dial.
 * Responsibility: name resolution (getaddrinfo, a blocking libc call), listeners that take
 * IPv4 and IPv6, and a dial that tries each address in turn with ringo_connect and one
 * deadline. getaddrinfo errors map to negative errno. The dial resolves a numeric host in place
 * (AI_NUMERICHOST never blocks) and any other name through ringo_blocking, so a slow DNS server
 * parks the goroutine, not its worker (on a plain thread it runs inline).
 * Depends on: the public I/O calls (io.c: ringo_connect, ringo_close), ringo_blocking
 * (sched/blocking.c).
 */
#include "sched/io/io.h"
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
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

static void resolve_run(void *p)
{
    struct resolve *r = p;
    r->e = getaddrinfo(r->host, r->port, &r->hints, &r->res);
    r->err = r->e == EAI_SYSTEM ? errno : 0;
}

int ringo_tcp_dial(const char *host, uint16_t port, int64_t deadline)
{
    if (!host)
        return -EINVAL;
    char ps[8];
    snprintf(ps, sizeof ps, "%u", (unsigned)port);
    struct resolve rs = { .host = host, .port = ps,
                          .hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                     .ai_flags = AI_NUMERICSERV | AI_NUMERICHOST } };
    resolve_run(&rs); /* a numeric address: parsed, never a lookup */
    if (rs.e == EAI_NONAME) {
        rs.hints.ai_flags = AI_NUMERICSERV; /* a name: /etc/hosts, DNS... may block */
        int b = ringo_blocking(resolve_run, &rs);
        if (b < 0)
            return b;
    }
    if (rs.e)
        return gai_errno(rs.e, rs.err);
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
    freeaddrinfo(res);
    return r;
}
