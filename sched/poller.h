/* sched/poller.h — the only thing the scheduler knows about I/O (never installed).
 *
 * Responsibility: the small ops table through which proc.c reaches the I/O layer
 * (sched/io/): set up a worker's backend, reap completions, submit what is batched, sleep until
 * work / a deadline / a completion, and kick a sleeping worker awake. The I/O layer defines the
 * one table (sched/io/io.c) and picks, per worker, io_uring, epoll or no backend behind it. The
 * scheduler never includes sched/io/ headers nor calls its functions by name: tools/check-layers
 * fails the build's tests when it does.
 *
 * Contract (what proc.c relies on):
 *   P1  poll and flush run on the worker's own thread (g0, or a goroutine of that worker in its
 *       switch-out); poll readies the goroutines of completed operations with sched_ready and
 *       returns how many it reaped.
 *   P2  sleep(w, deadline) returns when w->wake != 0 (a wakep), an operation of w's completes,
 *       the deadline passes (-1: none), or spuriously; the caller re-checks everything.
 *   P3  kick(w) may be called from any thread after w->wake = 1 was stored; it ends a sleep that
 *       is in progress or makes the next one return at once (no lost wake-up: sched/io/io.c,
 *       "Doorbell").
 *   P4  rescue(w) (below) may run on another thread while w's thread is stuck in a goroutine.
 *   P5  at_exit() runs once, on the thread that calls exit(3), while the workers may still run:
 *       it ends the operations in flight within a bound (issue 13: a pending accept kept a
 *       server's port taken for 10-200 ms after exit, so a restart failed with EADDRINUSE).
 *   P6  reclaim(w) runs on the sysmon thread at any time; it only asks (and kicks): what w's
 *       backend gives back, it gives back on w's own thread (issue 13: memory after a load).
 * Depends on: sched.h.
 */
#ifndef RINGO_SCHED_POLLER_H
#define RINGO_SCHED_POLLER_H
#include "sched/sched.h"

struct poller {
    int  (*init)(struct worker *w);                    /* on the worker thread, before it runs */
    int  (*poll)(struct worker *w);                    /* P1 */
    void (*flush)(struct worker *w);                   /* P1: submit batched operations */
    void (*sleep)(struct worker *w, int64_t deadline); /* P2 */
    void (*kick)(struct worker *w);                    /* P3 */
    /* operations waiting on w right now (a racy snapshot, for schedtrace) */
    uint64_t (*waiting)(struct worker *w);
    /* P4: on the sysmon thread, for a worker w whose thread is stuck in a goroutine: submit
     * its batched operations and reap its completions, readying their goroutines (into the
     * global queue); returns how many. Does nothing (0) when w's owner is using its backend,
     * or when the backend cannot be shared (RINGO_DISABLE=ring_handoff). */
    int  (*rescue)(struct worker *w);
    void (*at_exit)(void);                             /* P5 */
    /* P6: on the sysmon thread, every decay tick (goroutine.c S3): memory w's backend keeps for
     * a load that has ended may go back (the owner gives it back itself, on its way to sleep,
     * when asked: poll_uring.c U9). Returns whether w still keeps such memory. */
    bool (*reclaim)(struct worker *w);
    /* totals over all workers (stats only) */
    void (*stats)(struct ringo_stats *out); /* its io_* fields */
};

extern const struct poller sched_poller;  /* sched/io/io.c */
#endif
