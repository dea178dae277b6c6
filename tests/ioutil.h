/* tests/ioutil.h — what the I/O tests share (include after cmocka.h): failures noted by
 * goroutines (CHECK; the first three messages kept), begin/end of a case with an alarm against
 * hangs, run_n (n goroutines, waited for from the main thread), count_fds, io_uring_here. */
#ifndef RINGO_IOUTIL_H
#define RINGO_IOUTIL_H

#include "ringo.h"
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MS 1000000LL

/* Whether the kernel (or the emulator) offers io_uring at all: io_uring_setup with 0 entries is
 * EINVAL where it exists, ENOSYS under qemu-user or a kernel built without it, EPERM when
 * sysctl kernel.io_uring_disabled or seccomp forbids it. Then the runtime runs on epoll (io.c)
 * as if RINGO_DISABLE=io_uring were set. */
static inline bool io_uring_here(void)
{
    return !(syscall(__NR_io_uring_setup, 0, NULL) < 0 && (errno == ENOSYS || errno == EPERM));
}
#define SEC 1000000000LL

static _Atomic long failures;     /* goroutine-side check failures; relaxed: read after a wait group */
static char failmsg[768];         /* the first three, for the report */
static pthread_mutex_t failmu = PTHREAD_MUTEX_INITIALIZER;

static inline void fail_at(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void fail_at(int line, const char *fmt, ...)
{
    if (atomic_fetch_add_explicit(&failures, 1, memory_order_relaxed) < 3) {
        pthread_mutex_lock(&failmu);
        size_t at = strlen(failmsg);
        va_list ap;
        va_start(ap, fmt);
        int n = snprintf(failmsg + at, sizeof failmsg - at, "%sline %d: ", at ? "; " : "", line);
        if (n > 0 && (size_t)n < sizeof failmsg - at)
            vsnprintf(failmsg + at + (size_t)n, sizeof failmsg - at - (size_t)n, fmt, ap);
        va_end(ap);
        pthread_mutex_unlock(&failmu);
    }
}
/* counters shared with goroutines are read after a wait group, which orders them: relaxed */
#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)
#define CHECK(cond, ...) do { if (!(cond)) fail_at(__LINE__, __VA_ARGS__); } while (0)

static inline void begin(unsigned seconds)
{
    atomic_store_explicit(&failures, 0, memory_order_relaxed);
    failmsg[0] = 0;
    alarm(seconds); /* a hang fails the run (SIGALRM kills) instead of stalling it */
}

static inline void end(void)
{
    alarm(0);
    long f = atomic_load_explicit(&failures, memory_order_relaxed);
    if (f)
        fail_msg("%ld goroutine check(s) failed; first: %s", f, failmsg);
}

/* Run fn(arg) in n goroutines; wait for all from the main (plain) thread. */
struct job {
    void (*fn)(void *arg, long i);
    void *arg;
    long i;
    struct ringo_waitgroup *wg;
};

static inline void job_main(void *p)
{
    struct job *j = p;
    j->fn(j->arg, j->i);
    ringo_wg_done(j->wg);
}

static inline void run_n(long n, void (*fn)(void *, long), void *arg)
{
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    struct job *jobs = calloc((size_t)n, sizeof *jobs);
    assert_non_null(jobs);
    ringo_wg_add(&wg, n);
    for (long i = 0; i < n; i++) {
        jobs[i] = (struct job){ fn, arg, i, &wg };
        assert_true(ringo_go(job_main, &jobs[i]) > 0);
    }
    ringo_wg_wait(&wg);
    free(jobs);
}

/* The fds the program opened: every fd but the kinds the runtime itself opens per worker (an
 * io_uring, an eventfd, an epoll), since a worker may be made during a test (the sysmon's extra
 * workers, sched/sysmon.c), and the directory's own. */
static inline int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
            continue;
        char to[64];
        ssize_t k = readlinkat(dirfd(d), e->d_name, to, sizeof to - 1);
        to[k > 0 ? k : 0] = 0;
        if (strcmp(to, "anon_inode:[io_uring]") == 0 || strcmp(to, "anon_inode:[eventfd]") == 0 ||
            strcmp(to, "anon_inode:[eventpoll]") == 0)
            continue;
        n++;
    }
    closedir(d);
    return n;
}

#endif
