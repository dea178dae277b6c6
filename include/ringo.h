/* ringo.h — goroutines and channels for C on Linux, with io_uring doing the waiting.
 *
 * The whole public API: names, argument orders, return conventions and semantics below are
 * the contract (README.md "API in brief" and the comments here); programs written against it
 * keep compiling and behaving.
 *
 * Conventions
 *   - Errors are negative errno values; errno is never set, except by the pointer-returning
 *     makers (ringo_chan_make, ringo_after, ringo_timer_make, ringo_ticker_make return NULL and
 *     set errno).
 *   - Times are int64_t nanoseconds on CLOCK_MONOTONIC (ringo_now()). A deadline is absolute,
 *     -1 = none. A timeout is relative, -1 = forever, 0 = do not wait.
 *   - Every blocking call works inside a goroutine (the goroutine parks; its worker runs others)
 *     and on a plain thread (the thread blocks on a futex or a plain system call).
 *   - M:N caveat: a goroutine may resume on another worker thread after any blocking call or
 *     yield. Do not keep pointers to thread-local data (errno included) across such a call.
 */
#ifndef RINGO_H
#define RINGO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define RINGO_API __attribute__((visibility("default")))
#else
#define RINGO_API
#endif

/* ---------------------------------------------------------------- runtime */

struct ringo_config {
    unsigned procs;        /* worker threads; 0 = CPUs in the process affinity mask (env RINGO_PROCS) */
    size_t   stack_size;   /* usable bytes per goroutine stack; 0 = 256 KiB (env RINGO_STACK_SIZE) */
    int      pin;          /* -1 = default (1); 0 = do not pin; 1 = pin each worker to one CPU (env RINGO_PIN) */
    unsigned ring_entries; /* io_uring submission queue size per worker; 0 = 256 */
};

/* Choose settings before the runtime starts. Environment variables override defaults; explicit
 * non-zero (non -1) fields here override both. Returns 0; -EALREADY if the runtime already
 * started; -EINVAL for an invalid value (nothing is started then). Any thread. */
RINGO_API int ringo_init(const struct ringo_config *cfg);

/* Number of worker threads. Starts the runtime. Any thread. */
RINGO_API unsigned ringo_procs(void);

/* ---------------------------------------------------------------- goroutines */

/* Start fn(arg) as a goroutine. Returns its id (> 0), -EINVAL if fn is NULL, -ENOMEM when no
 * stack can be had, -EAGAIN when the runtime cannot start. Never blocks. Any thread. */
RINGO_API int64_t ringo_go(void (*fn)(void *arg), void *arg);

/* Options for ringo_go_opts. Zero every field you do not set (designated initializers do). */
struct ringo_go_opts {
    size_t      stack_size;       /* usable stack bytes, at least this many; 0 = the runtime's
                                     (RINGO_STACK_SIZE); at most 1 GiB */
    const char *name;             /* shown in ringo_dump, the deadlock report, the stack-overflow
                                     report and gdb's "info goroutines"; copied (the first 31
                                     bytes; control characters, '"' and '\' become '_'); NULL =
                                     none */
    unsigned    flags;            /* RINGO_GO_* below, or 0 */
    void       *_r_reserved[4];   /* private: zero */
};
/* flags: the new goroutine is in no group, even when the caller is a member (ringo_group_make) */
#define RINGO_GO_NO_GROUP 1u

/* ringo_go with options (opts NULL: as ringo_go). A stack_size above the runtime's gets a
 * stack of its own, rounded up to a power of two (address space, not memory: pages are used
 * as the stack grows into them, and given back when the goroutine ends), with the same guard
 * and overflow report as the others; at or below it, an ordinary stack. Returns its id (> 0);
 * -EINVAL fn NULL, stack_size above 1 GiB, an unknown flag, or a reserved field not zero;
 * -ENOMEM no stack can be had; -EAGAIN the runtime cannot start. Never blocks. Any thread. */
RINGO_API int64_t ringo_go_opts(void (*fn)(void *arg), void *arg, const struct ringo_go_opts *opts);

/* Name the calling goroutine (on a plain thread: the thread, in the dump's "thread TID" line),
 * as ringo_go_opts' name; "" removes the name. 0; -EINVAL name NULL. */
RINGO_API int ringo_set_name(const char *name);

/* Let other goroutines run (Go's runtime.Gosched). On a plain thread: sched_yield(). */
RINGO_API void ringo_yield(void);

/* Id of the calling goroutine; 0 on a plain thread. */
RINGO_API int64_t ringo_self(void);

/* Goroutines that exist: started and not yet returned. */
RINGO_API size_t ringo_num_goroutines(void);

/* End the calling goroutine now (Go's runtime.Goexit). On a plain thread: pthread_exit(NULL).
 * On the main thread, as Goexit in Go's main: the goroutines run on; when none is left the
 * process prints "fatal error: no goroutines (main called ringo_exit) - deadlock!" and exits 2.
 * (After a plain pthread_exit from main, it exits 0 when the last goroutine returns; if they
 * all block for good instead, either way, the deadlock report.) */
RINGO_API _Noreturn void ringo_exit(void);

/* Wire the calling goroutine to a thread of its own, for libraries that keep state per thread
 * (OpenGL, C libraries with thread-local state): Go's runtime.LockOSThread. From this call until
 * the matching ringo_unlock_thread (calls nest and are counted, as in Go) the goroutine runs
 * only on that thread, and the thread runs nothing else: goroutines it starts run on the
 * workers, its I/O calls are the plain system calls (they block that thread, not a worker),
 * ringo_blocking runs fn on it. Unlike Go, the goroutine moves to a new thread at the call, so
 * set up the thread-affine state after it. A goroutine that returns while locked ends its
 * thread, as in Go. 0; -EAGAIN no thread could be made, -ENOMEM (not locked then). A plain
 * thread is its own thread: 0, nothing done. */
RINGO_API int ringo_lock_thread(void);
/* Undo one ringo_lock_thread; the last one sends the goroutine back to the workers. 0 (also
 * when not locked, as in Go). */
RINGO_API int ringo_unlock_thread(void);

/* CLOCK_MONOTONIC in nanoseconds. */
RINGO_API int64_t ringo_now(void);

/* Sleep for ns nanoseconds (<= 0: return at once, after a yield). Returns 0 (-ECANCELED in a
 * cancelled group, see ringo_group_make). Blocking. */
RINGO_API int ringo_sleep(int64_t ns);

/* Run fn(arg), a call known to block its thread (a library without an async API, getaddrinfo,
 * a stat on NFS), without holding a worker: from a goroutine, fn runs on a thread of ringo's
 * blocking pool while the goroutine parks (wait reason "blocking call"), and the call returns
 * when fn has. The pool has at most RINGO_BLOCKING_THREADS threads (default 512), made on
 * demand, each retiring after RINGO_BLOCKING_IDLE_MS (default 10000) idle; when all are busy,
 * the call waits for the next free one. On a plain thread fn runs inline. fn runs on another
 * thread: its thread-local data (errno) is not the caller's; fn should not wait on goroutines
 * for long. Returns 0 when fn returned; -EINVAL fn NULL; -EAGAIN no pool thread exists and
 * none could be created (fn did not run); -ECANCELED the caller's group is cancelled (fn did
 * not run). Blocking. */
RINGO_API int ringo_blocking(void (*fn)(void *arg), void *arg);

/* Mark a blocking call made right here, on the worker's own thread (when it cannot move to the
 * pool: thread-local state of a library, a lock it holds): between ringo_block_begin() and
 * ringo_block_end() the worker counts as stuck at once (Go's entersyscallblock), so its queued
 * goroutines, timers and I/O go on elsewhere within about a millisecond instead of the 10 ms
 * after which the sysmon notices an unmarked one. Call no other ringo function in between; the
 * pair must be made by the same goroutine and not nested. No-ops on a plain thread. */
RINGO_API void ringo_block_begin(void);
RINGO_API void ringo_block_end(void);

/* ---------------------------------------------------------------- groups and cancellation */

/* A group of goroutines that can be waited for and cancelled together (structured concurrency:
 * libdill's bundles, Go's errgroup + context). A goroutine belongs to at most one group, for
 * life: the one ringo_group_go started it in, else the group of the goroutine that started it
 * (a goroutine started by a member is a member, unless ringo_go_opts gives it RINGO_GO_NO_GROUP).
 * A group made by a member is nested in the
 * member's group: cancelling a group cancels every group nested in it.
 *
 * Cancelling a group makes every blocking ringo call of its goroutines (and of its nested
 * groups' goroutines) return -ECANCELED: the calls parked at that moment end at once, and
 * every later one returns -ECANCELED at entry. Blocking calls: the channel operations that may
 * wait (ringo_chan_send/recv and their _until forms), ringo_select with a timeout other than 0,
 * ringo_sleep, every I/O call of the I/O section (both backends), ringo_group_wait,
 * ringo_cond_wait/_until (the mutex held again on return), ringo_sem_acquire (nothing taken),
 * ringo_blocking (at entry only: a function already running on the pool runs to its end).
 * Not cancelled (they return no error, as in Go): ringo_mutex_lock, ringo_rwmutex_*lock,
 * ringo_wg_wait, ringo_once, ringo_yield, and the try_ forms. An I/O operation that completed before the cancel reached it
 * returns its result. Plain threads are never members. */
typedef struct ringo_group ringo_group;
/* A new group; nested in the calling goroutine's group if it has one (cancelled at once if that
 * one is). NULL and errno ENOMEM on failure. Any thread. */
RINGO_API ringo_group *ringo_group_make(void);
/* Start fn(arg) as a member of g (even when g is cancelled: the member sees ringo_canceled()).
 * The goroutine's id (> 0), or as ringo_go; -EINVAL g or fn NULL. Never blocks. Any thread. */
RINGO_API int64_t ringo_group_go(ringo_group *g, void (*fn)(void *arg), void *arg);
/* Wait until every member of g has returned (members started meanwhile included; nested
 * groups are waited for by their own ringo_group_wait). 0; -ETIMEDOUT the deadline passed
 * first; -ECANCELED the caller's own group was cancelled; -EDEADLK a member waits for its own
 * group; -EINVAL g NULL. Blocking. */
RINGO_API int ringo_group_wait(ringo_group *g, int64_t deadline);
/* Cancel g and every group nested in it (see above). Idempotent: 0; -EINVAL g NULL. Never
 * blocks. Any thread, members included. */
RINGO_API int ringo_group_cancel(ringo_group *g);
/* Free g: 0; -EBUSY while g has members that have not returned, or nested groups (nothing
 * freed); -EINVAL g NULL. */
RINGO_API int ringo_group_free(ringo_group *g);
/* 1 if the calling goroutine's group is cancelled, else 0 (plain threads: 0). For a goroutine
 * that computes and wants to stop early. */
RINGO_API int ringo_canceled(void);

/* ---------------------------------------------------------------- goroutine-local storage */

/* pthread_key_t for goroutines: a goroutine moves between threads, so __thread cannot hold its
 * context; a GLS value belongs to the goroutine (on a plain thread, to the thread; in the fn of
 * ringo_blocking, to the pool thread that runs it: pass what it needs in arg). */
typedef unsigned ringo_gls_key;

/* A new key (at most 128 exist at once); every goroutine's value for it is NULL. destructor
 * (may be NULL) runs at the exit of each goroutine (its function returns, or ringo_exit) and
 * each plain thread (pthread_exit or the end of its start routine; not exit() or a return from
 * main) that holds a non-NULL value for the key, with that value, on that goroutine, after the
 * value was set to NULL; values set again by destructors get up to 4 rounds in all, as pthread
 * keys. 0; -EINVAL key NULL; -EAGAIN all keys in use. Any thread. */
RINGO_API int   ringo_gls_key_create(ringo_gls_key *key, void (*destructor)(void *));
/* Delete key: its destructor is no longer called (a goroutine exiting meanwhile may still run
 * it once), the values are dropped, and a new key never sees them. 0; -EINVAL not a live key
 * (never created, deleted already). */
RINGO_API int   ringo_gls_key_delete(ringo_gls_key key);
/* The calling goroutine's value for key; NULL when unset or key is not a live key. Never
 * allocates or blocks. */
RINGO_API void *ringo_gls_get(ringo_gls_key key);
/* Set the calling goroutine's value for key. 0; -EINVAL key not live; -ENOMEM no memory for
 * the goroutine's storage (made at its first non-NULL value; the old values are kept). Never
 * blocks. On a plain thread that never used ringo, a non-NULL value starts the runtime. */
RINGO_API int   ringo_gls_set(ringo_gls_key key, const void *value);

/* ---------------------------------------------------------------- channels */

typedef struct ringo_chan ringo_chan;

/* A channel of elem_size-byte values with cap buffered slots (0 = unbuffered). elem_size 0 is
 * allowed. Returns NULL and sets errno (EINVAL, ENOMEM) on failure. */
RINGO_API ringo_chan *ringo_chan_make(size_t elem_size, size_t cap);
/* Blocking. 0 sent; -EPIPE closed; -EINVAL c NULL. */
RINGO_API int    ringo_chan_send(ringo_chan *c, const void *elem);
/* Blocking. 1 got a value; 0 closed and drained (out zeroed); -EINVAL. out may be NULL. */
RINGO_API int    ringo_chan_recv(ringo_chan *c, void *out);
/* Non-blocking. 0; -EAGAIN would block; -EPIPE closed; -EINVAL. */
RINGO_API int    ringo_chan_try_send(ringo_chan *c, const void *elem);
/* Non-blocking. 1; 0 closed and drained; -EAGAIN; -EINVAL. */
RINGO_API int    ringo_chan_try_recv(ringo_chan *c, void *out);
/* With a deadline (absolute, -1 none; one already past tries once): as ringo_chan_send /
 * ringo_chan_recv, or -ETIMEDOUT when the deadline passed first (nothing sent or taken). */
RINGO_API int    ringo_chan_send_until(ringo_chan *c, const void *elem, int64_t deadline);
RINGO_API int    ringo_chan_recv_until(ringo_chan *c, void *out, int64_t deadline);
/* 0; -EPIPE already closed; -EINVAL. Wakes every blocked receiver and sender. */
RINGO_API int    ringo_chan_close(ringo_chan *c);
RINGO_API size_t ringo_chan_len(const ringo_chan *c);
RINGO_API size_t ringo_chan_cap(const ringo_chan *c);
/* 0; -EBUSY while anyone is blocked on c (nothing freed); -EINVAL c NULL, or the channel of a
 * ringo_timer or ringo_ticker (theirs: ringo_timer_free, ringo_ticker_free). The channel of
 * ringo_after is the caller's: this frees its timer too (timers, below). */
RINGO_API int    ringo_chan_free(ringo_chan *c);

#define RINGO_RANGE(c, out_ptr) while (ringo_chan_recv((c), (out_ptr)) == 1)

/* ---------------------------------------------------------------- select */

enum { RINGO_RECV = 1, RINGO_SEND = 2 };

struct ringo_case {
    ringo_chan *chan;   /* NULL: this case never proceeds (Go's nil channel) */
    int         op;     /* RINGO_RECV or RINGO_SEND */
    void       *elem;   /* RECV: where to store (may be NULL); SEND: the value to send */
    int         result; /* out. RECV: 1 value, 0 closed. SEND: 0 sent, -EPIPE closed */
};

/* Index of the one case that proceeded; -EAGAIN when timeout == 0 and none is ready (Go's
 * default:); -ETIMEDOUT when the timeout passed; -EINVAL bad arguments. Among ready cases the
 * choice is uniformly random. */
RINGO_API int ringo_select(struct ringo_case *cases, size_t n, int64_t timeout);

/* ---------------------------------------------------------------- timers */

/* Go's time.After, time.Timer and time.Ticker: a channel (elements int64_t, capacity 1) that
 * receives ringo_now() as read when the timer fires (at or after its deadline). Receive from it
 * like from any channel (ringo_chan_recv, ringo_chan_recv_until, a RINGO_RECV case of
 * ringo_select); do not send on it or close it. Any thread: a goroutine's timer goes to the heap
 * of its worker, a plain thread's to one of the workers (the runtime starts if need be); none of
 * these calls blocks beyond short internal locks. Calls on one timer from several threads at
 * once are serialised; a call after its free is a use after free.
 * Stop and Reset are Go 1.23's: once they return, no value from before is received, neither
 * one already in the channel (it is removed) nor a late send. A pending timer or a ticker is
 * pending work for the deadlock check (a goroutine blocked on its channel is not deadlocked);
 * a stopped or fired one is not. ns <= 0 fires at once: the value is in the channel on return. */

/* A channel that receives once, ns from now (Go's time.After). The channel is the caller's:
 * free it with ringo_chan_free, fired or not, received or not; that stops the timer if it is
 * still pending and frees it with the channel (ringo_chan_free's -EBUSY while anyone is blocked
 * on it: nothing stopped, nothing freed). NULL and errno ENOMEM, or EAGAIN when the runtime
 * cannot start. */
RINGO_API ringo_chan *ringo_after(int64_t ns);

/* A one-shot timer that fires ns from now (Go's time.NewTimer). NULL and errno ENOMEM, or
 * EAGAIN when the runtime cannot start. */
struct ringo_timer;
RINGO_API struct ringo_timer *ringo_timer_make(int64_t ns);
/* Its channel (NULL for t NULL). It belongs to the timer: ringo_chan_free on it is -EINVAL. */
RINGO_API ringo_chan *ringo_timer_chan(struct ringo_timer *t);
/* Stop t. 1: this call stopped it before its value was received (it was pending, or it had
 * fired and the value, still unreceived, was removed from the channel); 0: it had been stopped
 * already, or its value was received; -EINVAL t NULL. */
RINGO_API int ringo_timer_stop(struct ringo_timer *t);
/* Stop t as ringo_timer_stop (the same return value), then start it to fire ns from now. */
RINGO_API int ringo_timer_reset(struct ringo_timer *t, int64_t ns);
/* Stop t and free it with its channel: 0; -EBUSY while anyone is blocked on the channel
 * (nothing stopped, nothing freed); -EINVAL t NULL. */
RINGO_API int ringo_timer_free(struct ringo_timer *t);

/* A ticker (Go's time.Ticker): ticks every period ns, the first one period from now, on that
 * grid (tick k is due at start + k * period). A tick that finds the channel full (the last one
 * unread) is dropped, and ticks missed while no worker could run the timer are skipped: the
 * next one is the next point of the grid. NULL and errno EINVAL for period <= 0, ENOMEM, or
 * EAGAIN when the runtime cannot start. */
struct ringo_ticker;
RINGO_API struct ringo_ticker *ringo_ticker_make(int64_t period);
/* Its channel (NULL for t NULL). It belongs to the ticker: ringo_chan_free on it is -EINVAL. */
RINGO_API ringo_chan *ringo_ticker_chan(struct ringo_ticker *t);
/* Stop ticking; an unread tick is removed. 1: it was ticking; 0: it was stopped; -EINVAL. */
RINGO_API int ringo_ticker_stop(struct ringo_ticker *t);
/* Stop as ringo_ticker_stop, then tick every period from now (a stopped ticker starts again):
 * 0; -EINVAL t NULL or period <= 0 (nothing changed). */
RINGO_API int ringo_ticker_reset(struct ringo_ticker *t, int64_t period);
/* Stop t and free it with its channel: 0; -EBUSY while anyone is blocked on the channel
 * (nothing stopped, nothing freed); -EINVAL t NULL. */
RINGO_API int ringo_ticker_free(struct ringo_ticker *t);

/* ---------------------------------------------------------------- sync */

/* Layouts are public so the objects can live in static or embedded storage; the fields are not.
 * Zeroed memory is an unlocked mutex / a zero wait group. */
struct ringo_mutex {
    uint32_t _r_state;   /* private */
    uint32_t _r_qlock;   /* private */
    void    *_r_head;    /* private */
    void    *_r_tail;    /* private */
};
#define RINGO_MUTEX_INIT { 0, 0, 0, 0 }

/* Blocking. Any mix of goroutines and plain threads. Unlocking an unlocked mutex is fatal. */
RINGO_API void ringo_mutex_lock(struct ringo_mutex *m);
RINGO_API int  ringo_mutex_trylock(struct ringo_mutex *m);   /* 0; -EBUSY */
RINGO_API void ringo_mutex_unlock(struct ringo_mutex *m);

struct ringo_waitgroup {
    int64_t  _r_count;   /* private */
    uint32_t _r_qlock;   /* private */
    uint32_t _r_permits; /* private */
    void    *_r_head;    /* private */
};
#define RINGO_WAITGROUP_INIT { 0, 0, 0, 0 }

/* A negative counter is fatal, as in Go. */
RINGO_API void ringo_wg_add(struct ringo_waitgroup *wg, int64_t delta);
RINGO_API void ringo_wg_done(struct ringo_waitgroup *wg);
RINGO_API void ringo_wg_wait(struct ringo_waitgroup *wg);

/* Go's sync.Once: the first caller runs fn(arg); every other caller, concurrent or later, returns
 * after fn has returned, and sees what fn wrote. 1: this call ran fn; 0: it had been run;
 * -EINVAL o or fn NULL. Calling it from inside fn on the same object deadlocks, as in Go.
 * Zeroed memory is a fresh once. */
struct ringo_once {
    uint32_t           _r_done;  /* private */
    struct ringo_mutex _r_m;     /* private */
};
#define RINGO_ONCE_INIT { 0, RINGO_MUTEX_INIT }
RINGO_API int ringo_once(struct ringo_once *o, void (*fn)(void *arg), void *arg);

/* Go's sync.RWMutex: any number of readers or one writer. Writer-preferring as Go's: once a
 * writer waits in ringo_rwmutex_lock, new readers wait until it has had its turn, and the
 * readers that came during that turn all go in at its unlock (neither side starves). Blocking,
 * any mix of goroutines and plain threads; not reentrant (a reader that rlocks again while a
 * writer waits deadlocks, as in Go); at most 2^30 - 1 readers at a time. A lock held by one
 * goroutine or thread may be unlocked by another. Fatal, with Go's messages: runlock of a
 * mutex no reader holds ("sync: RUnlock of unlocked RWMutex"), unlock of a mutex no writer
 * holds ("sync: Unlock of unlocked RWMutex"). The try calls never wait: 0 locked; -EBUSY
 * (a writer is active or pending, or for trylock readers are inside); -EINVAL rw NULL.
 * Zeroed memory is an unlocked rwmutex. */
struct ringo_rwmutex {
    struct ringo_mutex _r_w;         /* private */
    int32_t            _r_readers;   /* private */
    int32_t            _r_departing; /* private */
    uint32_t           _r_qlock;     /* private */
    uint32_t           _r_rperm;     /* private */
    uint32_t           _r_wperm;     /* private */
    uint32_t           _r_pad;       /* private */
    void              *_r_rq;        /* private */
    void              *_r_wq;        /* private */
};
#define RINGO_RWMUTEX_INIT { RINGO_MUTEX_INIT, 0, 0, 0, 0, 0, 0, 0, 0 }
RINGO_API void ringo_rwmutex_rlock(struct ringo_rwmutex *rw);
RINGO_API void ringo_rwmutex_runlock(struct ringo_rwmutex *rw);
RINGO_API void ringo_rwmutex_lock(struct ringo_rwmutex *rw);
RINGO_API void ringo_rwmutex_unlock(struct ringo_rwmutex *rw);
RINGO_API int  ringo_rwmutex_tryrlock(struct ringo_rwmutex *rw); /* 0; -EBUSY; -EINVAL */
RINGO_API int  ringo_rwmutex_trylock(struct ringo_rwmutex *rw);  /* 0; -EBUSY; -EINVAL */

/* Go's sync.Cond, with a deadline. The caller holds m; the wait unlocks it, waits for a
 * signal, and locks m again before it returns, whatever ended the wait. A signal or broadcast
 * made after the waiter unlocked m (by a holder of m, or by anyone after what it waits for was
 * published under m) wakes it: no lost wake-ups, and no spurious ones (a wait returns 0 only
 * for a signal or broadcast made after it began; still wait in a loop on the condition, as in
 * Go: another party may change it before the waiter has m back). ringo_cond_signal wakes the
 * longest waiter, ringo_cond_broadcast every waiter; with none, they do nothing. Waits are
 * blocking, any mix of goroutines and plain threads; one cond should be used with one mutex.
 * ringo_cond_wait: 0 signalled; -EINVAL c or m NULL (m is then left as it was).
 * ringo_cond_wait_until (deadline absolute, -1 none; with one already past the wait still
 * unlocks m, and returns 0 if a signal took it meanwhile): 0 signalled; -ETIMEDOUT the
 * deadline passed first (the wait took no signal: one made meanwhile went to another waiter);
 * -EINVAL. Zeroed memory is a cond with no waiters. */
struct ringo_cond {
    uint32_t _r_qlock;   /* private */
    uint32_t _r_pad;     /* private */
    void    *_r_head;    /* private */
    void    *_r_tail;    /* private */
};
#define RINGO_COND_INIT { 0, 0, 0, 0 }
RINGO_API int  ringo_cond_wait(struct ringo_cond *c, struct ringo_mutex *m);
RINGO_API int  ringo_cond_wait_until(struct ringo_cond *c, struct ringo_mutex *m, int64_t deadline);
RINGO_API void ringo_cond_signal(struct ringo_cond *c);
RINGO_API void ringo_cond_broadcast(struct ringo_cond *c);

/* A weighted semaphore (golang.org/x/sync/semaphore) of size tokens: ringo_sem_acquire takes
 * n of them at once, waiting (blocking; any mix of goroutines and plain threads) until they
 * are free; FIFO, as x/sync's: while a waiter is queued, later callers queue behind it even
 * if they would fit, so a big request is not starved by small ones. n == 0 takes nothing but
 * still waits its turn. ringo_sem_acquire (deadline absolute, -1 none; one already past tries
 * once): 0 acquired; -ETIMEDOUT the deadline passed first (nothing taken); -EINVAL s NULL,
 * n < 0 or n > size (it could never succeed). ringo_sem_try_acquire: 0; -EBUSY they are not
 * free, or others wait; -EINVAL as acquire. ringo_sem_release gives n back (never blocks;
 * any caller, not only the acquirer): 0; -EINVAL s NULL or n < 0; releasing more than is held
 * is fatal ("semaphore: released more than held"). RINGO_SEM_INIT(size) or ringo_sem_init
 * (0; -EINVAL s NULL or size < 0; not while the semaphore is in use) make a semaphore of size
 * tokens, none held; zeroed memory is one of size 0. */
struct ringo_sem {
    int64_t  _r_size;    /* private */
    int64_t  _r_cur;     /* private */
    uint32_t _r_qlock;   /* private */
    uint32_t _r_pad;     /* private */
    void    *_r_head;    /* private */
    void    *_r_tail;    /* private */
};
#define RINGO_SEM_INIT(size) { (size), 0, 0, 0, 0, 0 }
RINGO_API int ringo_sem_init(struct ringo_sem *s, int64_t size);
RINGO_API int ringo_sem_acquire(struct ringo_sem *s, int64_t n, int64_t deadline);
RINGO_API int ringo_sem_try_acquire(struct ringo_sem *s, int64_t n);
RINGO_API int ringo_sem_release(struct ringo_sem *s, int64_t n);

/* ---------------------------------------------------------------- I/O */

/* Each call behaves like the system call of the same name, but a goroutine that must wait parks
 * (io_uring does the waiting). >= 0 as the system call, or -errno; -ETIMEDOUT when the deadline
 * passed first (the operation is then cancelled: nothing consumed or written after return). */
RINGO_API ssize_t ringo_read (int fd, void *buf, size_t n, int64_t deadline);
RINGO_API ssize_t ringo_write(int fd, const void *buf, size_t n, int64_t deadline);
RINGO_API ssize_t ringo_recv (int fd, void *buf, size_t n, int flags, int64_t deadline);
RINGO_API ssize_t ringo_send (int fd, const void *buf, size_t n, int flags, int64_t deadline);
RINGO_API int     ringo_accept (int fd, struct sockaddr *addr, socklen_t *len, int64_t deadline); /* new fd is SOCK_CLOEXEC */
RINGO_API int     ringo_connect(int fd, const struct sockaddr *addr, socklen_t len, int64_t deadline);
RINGO_API int     ringo_poll (int fd, short events, int64_t deadline);  /* revents */
/* The close for fds that goroutines may be waiting on: every call waiting on fd (any worker,
 * either backend) ends with -EBADF before the fd is closed, and a call that starts while the
 * close is in progress gets -EBADF or waits for it and then sees whatever the number names
 * (as after close(2)). A plain close(2) ends none of them: under io_uring the file stays open
 * while an operation holds it; under epoll the waiter waits for its deadline.
 * RINGO_DEBUG=fdcheck names such a close(2): the fd, the goroutine and its call. */
RINGO_API int     ringo_close(int fd);
/* Datagrams and ancillary data (UDP, Unix sockets): as the system calls, with a deadline. msg,
 * its iovecs and buffers stay the caller's until the call returns; ringo_recvmsg writes back
 * msg_namelen, msg_controllen and msg_flags, ringo_recvfrom *fromlen. */
RINGO_API ssize_t ringo_sendto  (int fd, const void *buf, size_t n, int flags, const struct sockaddr *to,
                                 socklen_t tolen, int64_t deadline);
RINGO_API ssize_t ringo_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from,
                                 socklen_t *fromlen, int64_t deadline);
RINGO_API ssize_t ringo_sendmsg (int fd, const struct msghdr *msg, int flags, int64_t deadline);
RINGO_API ssize_t ringo_recvmsg (int fd, struct msghdr *msg, int flags, int64_t deadline);
/* Receive into a buffer ringo lends (up to 16 KiB): an idle connection waiting here holds no
 * buffer; one is chosen only when data has arrived (io_uring: the kernel picks it from the
 * worker's provided-buffer ring). > 0: that many bytes at *data, the caller's until
 * ringo_buf_release(*data) (any thread; twice is fatal); 0 end of file, -errno: nothing lent. */
RINGO_API ssize_t ringo_recv_lend(int fd, void **data, int flags, int64_t deadline);
RINGO_API void    ringo_buf_release(void *data);
/* shutdown(2) (never waits): a shut read side ends a pending receive with 0. 0 or -errno. */
RINGO_API int     ringo_shutdown(int fd, int how);
/* sendfile(2) until count bytes are sent, in_fd ends, an error, or the deadline: the bytes sent
 * (> 0 even when an error or the deadline ended the call after some), else -errno. out_fd is
 * O_NONBLOCK during the call. The file is read from the page cache on the calling thread (an
 * uncached file blocks it for the disk read, as in Go). offset as sendfile(2). */
RINGO_API ssize_t ringo_sendfile(int out_fd, int in_fd, off_t *offset, size_t count, int64_t deadline);
/* conveniences */
RINGO_API int     ringo_tcp_listen(const char *host, uint16_t port, int backlog); /* host NULL = any; SO_REUSEADDR */
RINGO_API int     ringo_tcp_dial  (const char *host, uint16_t port, int64_t deadline); /* the lookup within the deadline too */
/* Unix-domain stream sockets. path "@name": the abstract namespace (no file). A listener's
 * file is not removed first: an existing one gives -EADDRINUSE (as in Go). */
RINGO_API int     ringo_unix_listen(const char *path, int backlog);
RINGO_API int     ringo_unix_dial  (const char *path, int64_t deadline);
/* The addresses of host (a name or a numeric address; family AF_UNSPEC, AF_INET, AF_INET6),
 * port 0, at most max of them: how many (>= 1), or -ENOENT (no such host), -ETIMEDOUT (the
 * deadline passed; the lookup finishes in the background and is freed), -EAGAIN (temporary
 * DNS failure), -EINVAL, -EAFNOSUPPORT. A name is looked up on the blocking pool. */
struct sockaddr_storage;
RINGO_API int     ringo_resolve(const char *host, int family, struct sockaddr_storage *out, int max,
                                int64_t deadline);

/* ---------------------------------------------------------------- observability */

struct ringo_stats {
    uint64_t goroutines, spawned, switches, steals, parks, wakeups,
             io_submitted, io_completed;
    uint64_t spilled;   /* goroutines a worker's full run queue sent to the global queue */
    uint64_t io_lent_ring, io_lent_heap; /* ringo_recv_lend buffers the kernel picked from a
                                          * worker's ring; taken from the heap (fallback) */
    /* more fields may follow */
};
RINGO_API void ringo_stats_get(struct ringo_stats *out);
/* Every goroutine: id, state, what it waits on. */
RINGO_API void ringo_dump(int fd);

#ifdef __cplusplus
}
#endif
#endif /* RINGO_H */
