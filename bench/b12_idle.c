/* B12 idle — what an idle connection costs a server: resident memory per connection while N
 * connections sit idle, and what stays resident after they leave.
 *
 * Usage: b12_idle PORT N echo|http PID...
 *   Opens N connections to 127.0.0.1:PORT; on each, one exchange (echo: 1 byte and its echo;
 *   http: one keep-alive GET and its whole "Hello, World!" response), so every server has
 *   accepted and served each connection and waits for its next message; then the connections
 *   stay idle. It reads the summed VmRSS of the PIDs (a server's processes: nginx's master and
 *   workers) before (after a warm-up of 200 exchanges), 1 s into the idle period, and 1 s after
 *   closing every connection, and prints
 *     RESULT idle conns=N rss_before_kib=A rss_idle_kib=B rss_after_kib=C bytes_per_conn=D
 *   bytes_per_conn = (B - A) * 1024 / N. Every exchange is checked (the byte, or the status
 *   line and body); any failure exits 1 with a message.
 * Plain C with epoll, no ringo: the same client for every server. Raises its own fd limit to
 * the hard limit (N + a few must fit: 19,000 under a limit of 20,000).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

static const char http_req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

static void die(const char *fmt, const char *arg, long v)
{
    fprintf(stderr, "b12_idle: ");
    fprintf(stderr, fmt, arg, v);
    fputc('\n', stderr);
    exit(1);
}

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

static long rss_all(pid_t *pids, int n)
{
    long sum = 0;
    for (int i = 0; i < n; i++) {
        long k = rss_kib(pids[i]);
        if (k < 0)
            die("cannot read the RSS of pid %s%ld", "", (long)pids[i]);
        sum += k;
    }
    return sum;
}

static int dial(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s (%ld)", strerror(errno), errno);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    for (int tries = 0; connect(fd, (struct sockaddr *)&a, sizeof a) != 0; tries++) {
        if ((errno != EAGAIN && errno != ECONNREFUSED && errno != EINTR) || tries > 200)
            die("connect: %s (%ld)", strerror(errno), errno);
        usleep(10000); /* a full accept queue: the server catches up */
        close(fd);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* One exchange on fd, blocking with a 10 s bound (SO_RCVTIMEO). */
static void exchange(int fd, int http)
{
    struct timeval tv = { 10, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (!http) {
        char c = 'x', back = 0;
        if (write(fd, &c, 1) != 1 || read(fd, &back, 1) != 1 || back != 'x')
            die("echo exchange failed: %s (%ld)", strerror(errno), errno);
        return;
    }
    if (write(fd, http_req, sizeof http_req - 1) != (ssize_t)(sizeof http_req - 1))
        die("http write: %s (%ld)", strerror(errno), errno);
    char buf[1024];
    size_t n = 0;
    while (n < sizeof buf - 1) {
        ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
        if (r <= 0)
            die("http read: %s (%ld)", r == 0 ? "end of file" : strerror(errno), errno);
        n += (size_t)r;
        buf[n] = 0;
        if (strstr(buf, "Hello, World!"))
            break;
    }
    if (strncmp(buf, "HTTP/1.1 200", 12) != 0 || !strstr(buf, "\r\n\r\nHello, World!"))
        die("http: unexpected response '%.40s'%ld", buf, 0);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: b12_idle PORT N echo|http PID...\n");
        return 2;
    }
    uint16_t port = (uint16_t)atoi(argv[1]);
    long n = atol(argv[2]);
    int http = strcmp(argv[3], "http") == 0;
    int npids = argc - 4;
    pid_t pids[64];
    if (npids > 64 || n <= 0 || port == 0)
        die("bad arguments%s%ld", "", 0);
    for (int i = 0; i < npids; i++)
        pids[i] = (pid_t)atoi(argv[4 + i]);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if ((long)rl.rlim_cur < n + 16)
            die("the fd limit (%s%ld) is too low for N", "", (long)rl.rlim_cur);
    }
    /* warm-up: what every server allocates once (threads, pools, first stacks) */
    for (int i = 0; i < 200; i++) {
        int fd = dial(port);
        exchange(fd, http);
        close(fd);
    }
    sleep_ms(1000);
    long before = rss_all(pids, npids);
    int *fds = malloc((size_t)n * sizeof *fds);
    for (long i = 0; i < n; i++) {
        fds[i] = dial(port);
        exchange(fds[i], http);
    }
    sleep_ms(1000);
    long idle = rss_all(pids, npids);
    /* still served: one more exchange on a few of them */
    for (long i = 0; i < n; i += n / 10 + 1)
        exchange(fds[i], http);
    for (long i = 0; i < n; i++)
        close(fds[i]);
    free(fds);
    sleep_ms(1000);
    long after = rss_all(pids, npids);
    printf("RESULT idle conns=%ld rss_before_kib=%ld rss_idle_kib=%ld rss_after_kib=%ld bytes_per_conn=%ld\n", n,
           before, idle, after, (idle - before) * 1024 / n);
    return 0;
}
