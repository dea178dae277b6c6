/* sched/debug/deadlock.c — Go's "all goroutines are asleep - deadlock!".
 *
 * Deadlock (API.md "Deadlock"): nothing can ever run again when, all at once,
 *   - every worker is on the idle list (it re-checked every queue after announcing, proc.c),
 *   - no attached plain thread is running outside a forever-park (sched.nthreads_active == 0),
 *   - no timer, no I/O and no ringo_blocking call is pending (sched.ntimers, sched.nio,
 *     sched.nblocking: I5),
 *   - the global queue and every run queue are empty,
 * and something is blocked (a live goroutine, or a thread parked forever), and no other thread of
 * the process could still act: a plain thread that has not used ringo *yet* (it computes, then
 * sends on a channel) is as able to wake someone as an attached one. So the final word comes
 * from /proc: every thread of the process (its "Threads:" count) must be a ringo worker
 * ("ringo-w*"), an io_uring kernel worker ("iou-*"), a ringo_blocking pool thread with no job
 * (sched.nblocking_idle: sched/blocking.c B4), or a thread parked forever in ringo. Only
 * then is it a deadlock. A process with some thread ringo does not know about (a library's idle
 * helper thread) is never declared deadlocked: a missed report is a hang, a false one kills a
 * healthy program.
 *
 * Main gone (sched.main_exited: main called pthread_exit or ringo_exit, Go's Goexit in main): its
 * thread stays in the "Threads:" count as a zombie, so it is subtracted. When then nothing at all
 * is left (no goroutine, no blocked thread, the same quiet conditions), the process ends as Go's
 * checkdead and C say: after ringo_exit "fatal error: no goroutines (main called ringo_exit) -
 * deadlock!" and status 2; after pthread_exit exit(0) (the last thread left: atexit handlers and
 * stdio flush run). Something blocked with main gone is the ordinary report, main not listed.
 *
 * Whoever makes the last of these true checks (through sched_debug_hooks.check_deadlock): a
 * worker about to sleep, a thread about to park forever, a thread that detaches, main leaving. The counters
 * are seq_cst and each side changes its own counter before reading the others', so the last to
 * change sees all the others (Dekker). The check is conservative: any doubt (a counter in
 * motion) means "not a deadlock"; it is repeated under idle_lock so that no worker is being
 * woken while we decide, and sched.dl_epoch must not have moved between the first look and the
 * last: the looks and the /proc count are taken at different moments, and between them a thread
 * may wake main and main block again, so the counters read the same while the thread count
 * belonged to a world without the thread that will wake main next (seen: 1 in 150 runs of
 * test_deadlock's threads_exit_while_main_waits under load).
 * Depends on: sched.h, sched/debug/debug.h (the dump).
 */
#include "sched/sched.h"
#include "sched/debug/debug.h"
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* seq_cst loads throughout: this is the reading half of the Dekker pairs (each party changed
 * its own counter with a seq_cst RMW, or a seq_cst fence, before it read ours). */
static uint32_t sc32(_Atomic uint32_t *p) { return atomic_load_explicit(p, memory_order_seq_cst); }

enum quiet {
    Q_BUSY,     /* something can still run */
    Q_BLOCKED,  /* nothing can run, and something is blocked: a deadlock */
    Q_EMPTY,    /* nothing can run, and nothing is left at all (main gone: the end) */
};

static enum quiet quiet_state(void)
{
    /* nidle before nw (sysmon.c S4): an extra worker published after our read of nw ran
     * nothing before it, and its work came from a queue we look at below */
    uint32_t nidle = sc32(&sched.nidle);
    unsigned nw = sc32(&sched.nw);
    if (sched_dl_read(&sched.nthreads_active) != 0 || nidle != nw)
        return Q_BUSY;
    if (sched_dl_read(&sched.ntimers) != 0 || sched_dl_read(&sched.nio) != 0 ||
        sched_dl_read(&sched.nblocking) != 0 ||
        sc32(&sched.gq_len) != 0 || sc32(&sched.nspinning) != 0)
        return Q_BUSY;
    for (unsigned i = 0; i < nw; i++) {
        struct worker *w = sched.w[i];
        if (sc32(&w->rq.head) != sc32(&w->rq.tail) ||
            atomic_load_explicit(&w->runnext, memory_order_seq_cst))
            return Q_BUSY;
    }
    return ringo_num_goroutines() > 0 || sched_dl_read(&sched.nthreads_blocked) > 0 ? Q_BLOCKED : Q_EMPTY;
}

static void count_quiet(pid_t tid, const char *comm, void *n)
{
    (void)tid;
    if (strncmp(comm, "ringo-w", 7) == 0 || strncmp(comm, "iou-", 4) == 0)
        ++*(long *)n;
}

/* Threads of ours that never act for the program: workers ("ringo-w*", and the monitor,
 * named alike), io_uring's kernel workers ("iou-*"), and blocking-pool threads with no job
 * (they act only on a job, and a job keeps sched.nblocking > 0: blocking.c B4). Counted from
 * a listing of /proc/self/task, which can skip live entries while other threads exit (seen on
 * 6.18): a listing that misses some only makes this count smaller, which is the safe
 * direction. A pool thread stops counting itself idle before it leaves /proc, so the idle
 * count never covers a thread the total no longer has. */
static long count_quiet_threads(void)
{
    long n = 0;
    sched_for_each_thread(count_quiet, &n);
    return n + sched_dl_read(&sched.nblocking_idle);
}

/* The process's thread count, read in one step by the kernel ("Threads:" in status). */
static long total_threads(void)
{
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t k = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (k <= 0)
        return -1;
    buf[k] = 0;
    char *p = strstr(buf, "\nThreads:");
    return p ? strtol(p + 9, NULL, 10) : -1;
}

/* Threads that could still act: all threads, less the quiet ones, less the plain threads
 * parked forever in ringo. `exiting` is 1 when the caller is a thread on its way out (it is
 * still counted); `main_gone`: main has left (a zombie in the count, or the caller on its way
 * out). Any doubt returns a positive number: no deadlock. The quiet threads are
 * counted before and after the total, and must agree, so one that appears or leaves meanwhile
 * cannot make the difference too small. */
/* Test hook (tests/test_deadlock.c): NULL, or called at phase 0 after the first look and at
 * phase 1 between reading the thread count and the blocked count, to force an interleaving. */
void (*sched_test_hook_deadlock)(int phase);

static long other_threads(int exiting, bool main_gone)
{
    /* the exiting caller may be main itself: counted once, not twice */
    if (main_gone && !(exiting && (pid_t)syscall(SYS_gettid) == getpid()))
        exiting++;
    for (int tries = 0; tries < 3; tries++) {
        long q1 = count_quiet_threads();
        long total = total_threads();
        if (sched_test_hook_deadlock)
            sched_test_hook_deadlock(1);
        long q2 = count_quiet_threads();
        if (total < 0)
            return 1;
        if (q1 != q2)
            continue;
        long n = total - q1 - sched_dl_read(&sched.nthreads_blocked) - exiting;
#ifdef RINGO_TSAN
        n -= 1; /* ThreadSanitizer's background thread */
#endif
        return n;
    }
    return 1;
}

void sched_check_deadlock(int exiting)
{
    if (!sched_started())
        return;
    int64_t epoch = sched_dl_read(&sched.dl_epoch);
    int64_t gone = sched_dl_read(&sched.main_exited);
    enum quiet q = quiet_state();
    if (q == Q_BUSY || (q == Q_EMPTY && gone == MAIN_RUNNING))
        return;
    if (sched_test_hook_deadlock)
        sched_test_hook_deadlock(0);
    if (other_threads(exiting, gone != MAIN_RUNNING) > 0)
        return;
    pthread_mutex_lock(&sched.idle_lock);
    q = quiet_state();
    if (sched_dl_read(&sched.dl_epoch) != epoch) {
        /* a thread attached, left or was woken since the first look: the counters may read
         * the same again (main woken, blocked again) while the thread count read in between
         * belonged to another moment. Whoever goes quiet last checks again. */
        pthread_mutex_unlock(&sched.idle_lock);
        return;
    }
    if (q == Q_BLOCKED) {
        static const char msg[] = "fatal error: all goroutines are asleep - deadlock!\n\n";
        (void)!write(2, msg, sizeof msg - 1);
        sched_dump(2, true, true, false); /* Go's lines, each with its stack under it */
        _exit(2);
    }
    if (q == Q_EMPTY && gone == MAIN_RINGO_EXIT) {
        static const char msg[] = "fatal error: no goroutines (main called ringo_exit) - deadlock!\n";
        (void)!write(2, msg, sizeof msg - 1);
        _exit(2);
    }
    /* main_exited is set once and never cleared: a second caller that gets here while the first
     * runs the atexit handlers just returns (exit may not run twice at once) */
    static bool ending; /* under idle_lock */
    bool end = q == Q_EMPTY && gone == MAIN_PTHREAD_EXIT && !ending;
    if (end)
        ending = true;
    pthread_mutex_unlock(&sched.idle_lock);
    if (end)
        exit(0); /* C: the last thread left; not under idle_lock, an atexit handler may use ringo */
}

