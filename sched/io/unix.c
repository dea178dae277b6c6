/* sched/io/unix.c — Unix-domain stream sockets: ringo_unix_listen and ringo_unix_dial.
 *
 * Responsibility: the sockaddr_un of a path, listeners as ringo_tcp_listen makes them (O_NONBLOCK,
 *   CLOEXEC: ringo_accept takes queued connections without a trip through the ring), and a dial
 *   through ringo_connect with its deadline. A path that starts with '@' names a socket in the
 *   abstract namespace (Go's convention: the '@' becomes the leading NUL byte, no file is made).
 *   As in Go, listening on a path whose file exists fails with -EADDRINUSE: the program removes
 *   a stale socket file itself (ringo cannot know that no server still owns it).
 * Invariants: none beyond the calls' (no state).
 * Depends on: ringo_connect, ringo_close (io.c, fd.c).
 */
#include "sched/io/io.h"
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* The address of path; its length, or -EINVAL (empty, NULL) / -ENAMETOOLONG. */
static int unix_addr(const char *path, struct sockaddr_un *sa, socklen_t *len)
{
    if (!path || !path[0])
        return -EINVAL;
    size_t n = strlen(path);
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (path[0] == '@') {
        if (n > sizeof sa->sun_path)
            return -ENAMETOOLONG;
        memcpy(sa->sun_path + 1, path + 1, n - 1); /* sun_path[0] stays NUL: abstract */
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
        return 0;
    }
    if (n >= sizeof sa->sun_path)
        return -ENAMETOOLONG;
    memcpy(sa->sun_path, path, n + 1);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

int ringo_unix_listen(const char *path, int backlog)
{
    struct sockaddr_un sa;
    socklen_t len;
    int r = unix_addr(path, &sa, &len);
    if (r < 0)
        return r;
    if (backlog <= 0)
        backlog = SOMAXCONN;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, backlog) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int ringo_unix_dial(const char *path, int64_t deadline)
{
    struct sockaddr_un sa;
    socklen_t len;
    int r = unix_addr(path, &sa, &len);
    if (r < 0)
        return r;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    r = ringo_connect(fd, (struct sockaddr *)&sa, len, deadline);
    if (r < 0) {
        ringo_close(fd);
        return r;
    }
    return fd;
}
