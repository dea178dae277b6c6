/* sched/io/fdcheck.c — RINGO_DEBUG=fdcheck: a plain close(2) of an fd a goroutine waits on.
 *
 * Why (issue 13): close(2) ends no ringo wait. Under io_uring the operation keeps the file open
 *   (a closed listener keeps accepting; a reader later gets data from an fd the program
 *   closed); under epoll the waiter sits until its deadline, or forever. ringo_close is the
 *   close for such fds; this check names the misuse where it happens.
 * How: with the flag, every goroutine I/O call registers a record (on its own stack, linked in
 *   one list under a mutex: a debug mode, not a fast path) with the fd and the identity of the
 *   open file (st_dev, st_ino) at the start of the call; a checker thread looks at every record
 *   every CHECK_NS: a number that is closed (EBADF) or names another file now was closed under
 *   the waiting call, and the checker prints, once per call,
 *     ringo: fdcheck: fd 7 was closed with close(2) while goroutine 12 waits in ringo_read on
 *     it (use ringo_close: close(2) does not end the wait)
 *   A call that ends unregisters before it returns; ringo_close's own close(2) happens after
 *   every counted call has left (fd.c F2), so it never trips the check.
 * Invariants: a record is in the list exactly while its call is between fdcheck_begin and
 *   fdcheck_end; the list and each record's `told` are under `lock`.
 * Contexts: begin/end on the goroutine making the call; the checker on its own thread (not a
 *   ringo thread: it makes no ringo call, so it takes no part in deadlock detection).
 * Depends on: sched.h (sched.debug, the goroutine's id), io.h.
 */
#include "sched/io/io.h"
#include "kernel_iface/clock.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#define CHECK_NS 100000000LL

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct fdcheck_rec *head; /* under lock */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static const char *op_name(int op)
{
    static const char *const names[] = { "ringo_read", "ringo_write", "ringo_recv", "ringo_send", "ringo_accept",
                                         "ringo_connect", "ringo_poll", "ringo_sendmsg", "ringo_recvmsg",
                                         "ringo_recv_lend" };
    return op >= 0 && op < (int)(sizeof names / sizeof names[0]) ? names[op] : "an I/O call";
}

static void *checker(void *arg)
{
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* the program's signals are for its own threads */
    for (;;) {
        struct timespec ts = clk_to_ts(CHECK_NS);
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&lock);
        for (struct fdcheck_rec *r = head; r; r = r->next) {
            if (r->told)
                continue;
            struct stat st;
            bool closed = fstat(r->fd, &st) != 0 && errno == EBADF;
            if (!closed && (st.st_dev != r->dev || st.st_ino != r->ino))
                closed = true; /* the number was closed and reused for another file */
            if (!closed)
                continue;
            r->told = true;
            fprintf(stderr,
                    "ringo: fdcheck: fd %d was closed with close(2) while goroutine %lld waits in %s on it "
                    "(use ringo_close: close(2) does not end the wait)\n",
                    r->fd, (long long)r->gid, op_name(r->op));
        }
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static void start_checker(void)
{
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &a, checker, NULL) != 0)
        fprintf(stderr, "ringo: fdcheck: cannot start its thread: no checks\n");
    pthread_attr_destroy(&a);
}

void fdcheck_begin(struct fdcheck_rec *r, int fd, int op, int64_t gid)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        r->fd = -1; /* not open: the call fails by itself */
        return;
    }
    pthread_once(&once, start_checker);
    r->fd = fd;
    r->op = op;
    r->gid = gid;
    r->dev = st.st_dev;
    r->ino = st.st_ino;
    r->told = false;
    pthread_mutex_lock(&lock);
    r->prev = NULL;
    r->next = head;
    if (head)
        head->prev = r;
    head = r;
    pthread_mutex_unlock(&lock);
}

void fdcheck_end(struct fdcheck_rec *r)
{
    if (r->fd < 0)
        return;
    pthread_mutex_lock(&lock);
    if (r->prev)
        r->prev->next = r->next;
    else
        head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    pthread_mutex_unlock(&lock);
}
