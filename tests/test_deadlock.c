/* tests/test_deadlock.c — the deadlock report for channels and select (API.md "Deadlock").
 *
 * Each scenario runs in a child process (tu_run_child: a fresh runtime, free to deadlock).
 *   Detected: exit status 2; the output starts exactly with
 *       "fatal error: all goroutines are asleep - deadlock!\n\n"
 *   followed by one "goroutine N [state]:" line per goroutine and one "thread TID [state]:" line
 *   per blocked plain thread, with Go's state names: "chan send", "chan receive", "select",
 *   "select (no cases)". The set of (kind, state) lines is checked exactly. Under each, tab-
 *   indented: "main thread" for the process's main thread, then its stack, one
 *   "#N function+0xoff (object+0xrel)" per frame, where the functions it is blocked in (a
 *   goroutine's, main's, another thread's) are named.
 *   Not detected (exit 0, no report): a goroutine sleeping before it sends; a plain thread busy
 *   outside ringo before it sends (whether or not it used ringo before); a select with a timeout;
 *   main blocked on recv while a goroutine sleeps 200 ms and then sends; main blocked on recv
 *   while a thread is about to send and other threads of the process exit; goroutines and main
 *   blocked on the channels of pending timers and tickers (a goroutine on a stopped timer's or
 *   ticker's channel, or main on a fired and received one's, is a deadlock).
 *   Main leaves first (Go's Goexit in main): after ringo_exit the goroutines finish their work,
 *   then the output ends with "fatal error: no goroutines (main called ringo_exit) - deadlock!"
 *   and the status is 2 (at once when there is no goroutine at all); after pthread_exit the
 *   process exits 0 when the last goroutine returns, their buffered output flushed. With main
 *   gone and a goroutine blocked for good, either way: the ordinary report.
 * Every scenario runs with RINGO_PROCS=1 and RINGO_PROCS=2.
 */
#include <ringo.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <regex.h>
#include "tests/testutil.h"
#include "sched/sched.h"
#include <semaphore.h>

extern void (*sched_test_hook_deadlock)(int phase); /* sched/debug/deadlock.c */

static const char header[] = "fatal error: all goroutines are asleep - deadlock!\n\n";

/* ------------------------------------------------------------------ scenarios: deadlocks */

static ringo_chan *never, *never2; /* nobody ever sends on never, nobody receives on never2 */

/* Channels of the scenarios stay reachable (leak checkers: the process exits with them). */
static ringo_chan *kept[32];
static atomic_int nkept;
static ringo_chan *mk(size_t elem, size_t cap)
{
    ringo_chan *c = ringo_chan_make(elem, cap);
    int i = atomic_fetch_add(&nkept, 1);
    if (i < 32)
        kept[i] = c;
    return c;
}

static int child_main_recv_unbuffered(void)
{
    int v;
    ringo_chan_recv(mk(sizeof(int), 0), &v);
    return 0;
}

static int child_main_send_full_buffer(void)
{
    ringo_chan *c = mk(sizeof(int), 2);
    for (int v = 1; v <= 3; v++)
        ringo_chan_send(c, &v);
    return 0;
}

static void send_forever(void *c)
{
    int v = 1;
    ringo_chan_send(c, &v);
}
static void recv_forever(void *c)
{
    int v;
    ringo_chan_recv(c, &v);
}

/* two goroutines on a channel nobody serves, main on another */
static int child_goroutines_send_and_recv(void)
{
    ringo_chan *a = mk(sizeof(int), 0), *b = mk(sizeof(int), 1);
    ringo_go(send_forever, a);
    ringo_go(recv_forever, b);
    int v;
    ringo_chan_recv(mk(sizeof(int), 0), &v);
    return 0;
}

static void select_forever(void *p)
{
    (void)p;
    int x;
    struct ringo_case cs[] = { { never, RINGO_RECV, &x, 0 }, { never2, RINGO_SEND, &x, 0 } };
    ringo_select(cs, 2, -1);
}
static void select_no_cases(void *p)
{
    (void)p;
    ringo_select(NULL, 0, -1);
}
static int child_selects(void)
{
    never = mk(sizeof(int), 0);
    never2 = mk(sizeof(int), 0);
    ringo_go(select_forever, NULL);
    ringo_go(select_no_cases, NULL);
    int x;
    struct ringo_case cs[] = { { never, RINGO_RECV, &x, 0 } };
    ringo_select(cs, 1, -1); /* main too, in a select */
    return 0;
}

static void select_all_nil(void *p)
{
    (void)p;
    int x;
    struct ringo_case cs[] = { { NULL, RINGO_RECV, &x, 0 }, { NULL, RINGO_SEND, &x, 0 } };
    ringo_select(cs, 2, -1);
}
static int child_select_all_nil(void)
{
    ringo_go(select_all_nil, NULL);
    int v;
    ringo_chan_recv(mk(sizeof(int), 0), &v);
    return 0;
}

static void *thread_send_forever(void *c)
{
    send_forever(c);
    return NULL;
}
/* a plain thread other than main blocked too: both listed as threads */
static int child_two_threads(void)
{
    pthread_t t;
    pthread_create(&t, NULL, thread_send_forever, mk(sizeof(int), 0));
    int v;
    ringo_chan_recv(mk(sizeof(int), 0), &v);
    return 0;
}

/* a pipeline does real work first, then everyone blocks */
struct pipe_arg {
    ringo_chan *c, *stuck;
};
static void pipe_producer(void *p)
{
    struct pipe_arg *a = p;
    for (int i = 0; i < 10000; i++)
        ringo_chan_send(a->c, &i);
    int v;
    ringo_chan_recv(a->stuck, &v); /* nobody sends on stuck */
}
static void pipe_consumer(void *p)
{
    struct pipe_arg *a = p;
    int v;
    for (int i = 0; i < 10000; i++)
        ringo_chan_recv(a->c, &v);
    ringo_chan_send(a->stuck, &v); /* nobody receives on stuck */
}
static int child_after_work(void)
{
    /* producer waits to receive on stuck_p, consumer waits to send on stuck_c: two channels,
     * so they never meet */
    static struct pipe_arg pa, ca;
    ringo_chan *c = mk(sizeof(int), 3);
    pa = (struct pipe_arg){ c, mk(sizeof(int), 0) };
    ca = (struct pipe_arg){ c, mk(sizeof(int), 0) };
    ringo_go(pipe_producer, &pa);
    ringo_go(pipe_consumer, &ca);
    int v;
    ringo_chan_recv(mk(sizeof(int), 0), &v);
    return 0;
}

/* Known frames: a goroutine and main blocked in functions of known names (never inlined). */
__attribute__((noinline)) void deadlock_goroutine_stuck_here(ringo_chan *c);
__attribute__((noinline)) void deadlock_goroutine_stuck_here(ringo_chan *c)
{
    int v;
    ringo_chan_recv(c, &v);
    __asm__ volatile("" ::: "memory"); /* no tail call: this frame stays on the stack */
}
static void stuck_entry(void *c)
{
    deadlock_goroutine_stuck_here(c);
    __asm__ volatile("" ::: "memory");
}
__attribute__((noinline)) void deadlock_main_stuck_here(ringo_chan *c);
__attribute__((noinline)) void deadlock_main_stuck_here(ringo_chan *c)
{
    int v = 1;
    ringo_chan_send(c, &v);
    __asm__ volatile("" ::: "memory");
}
static int child_known_frames(void)
{
    ringo_go(stuck_entry, mk(sizeof(int), 0));
    deadlock_main_stuck_here(mk(sizeof(int), 0));
    return 0;
}

/* ------------------------------------------------------------------ scenarios: no deadlock */

struct relay {
    ringo_chan *c;
    int64_t delay_ns;
};
static void sleep_then_send(void *p)
{
    struct relay *r = p;
    ringo_sleep(r->delay_ns);
    int v = 42;
    ringo_chan_send(r->c, &v);
}
static void recv_then_send(void *p)
{
    ringo_chan **cs = p;
    int v;
    if (ringo_chan_recv(cs[0], &v) == 1 && v == 42)
        ringo_chan_send(cs[1], &v);
}

/* a goroutine sleeps, then sends to another goroutine; main waits for the second one */
static int child_goroutine_sleeps_then_sends(void)
{
    static ringo_chan *cs[2];
    static struct relay r;
    cs[0] = mk(sizeof(int), 0);
    cs[1] = mk(sizeof(int), 0);
    r = (struct relay){ cs[0], 200000000 };
    ringo_go(recv_then_send, cs);
    ringo_go(sleep_then_send, &r);
    int v = 0;
    return ringo_chan_recv(cs[1], &v) == 1 && v == 42 ? 0 : 3;
}

/* main blocked on recv while a goroutine sleeps 200 ms and then sends */
static int child_main_recv_goroutine_sleeps(void)
{
    static struct relay r;
    r = (struct relay){ mk(sizeof(int), 0), 200000000 };
    ringo_go(sleep_then_send, &r);
    int v = 0;
    return ringo_chan_recv(r.c, &v) == 1 && v == 42 ? 0 : 3;
}

static volatile uint64_t sink;
static void *busy_then_send(void *p)
{
    int64_t end = ringo_now() + 250000000;
    uint64_t x = 1;
    while (ringo_now() < end) /* computing, outside any blocking ringo call */
        for (int i = 0; i < 1000; i++)
            x = x * 6364136223846793005ull + 1;
    sink = x;
    int v = 42;
    ringo_chan_send(p, &v);
    return NULL;
}
static void *attach_then_busy_then_send(void *p)
{
    int v;
    ringo_chan *tmp = mk(sizeof(int), 0);
    ringo_chan_try_recv(tmp, &v); /* this thread has used ringo */
    struct ringo_case cs[] = { { tmp, RINGO_RECV, &v, 0 } };
    ringo_select(cs, 1, 1000000); /* and even blocked in it, briefly */
    return busy_then_send(p);
}
static int thread_busy_common(void *(*fn)(void *))
{
    ringo_chan *c = mk(sizeof(int), 0);
    pthread_t t;
    ringo_go(recv_forever, mk(sizeof(int), 0)); /* a goroutine blocked for good */
    pthread_create(&t, NULL, fn, c);
    int v = 0;
    int r = ringo_chan_recv(c, &v);
    pthread_join(t, NULL);
    return r == 1 && v == 42 ? 0 : 3;
}
static int child_thread_busy_then_sends(void) { return thread_busy_common(busy_then_send); }
static int child_attached_thread_busy_then_sends(void) { return thread_busy_common(attach_then_busy_then_send); }

/* a goroutine in a select with a timeout: a timer is pending, not a deadlock */
static void select_with_timeout(void *p)
{
    int x;
    struct ringo_case cs[] = { { never, RINGO_RECV, &x, 0 } };
    int r = ringo_select(cs, 1, 200000000);
    ringo_chan_send(p, &r);
}
static int child_select_with_timeout(void)
{
    never = mk(sizeof(int), 0);
    ringo_chan *res = mk(sizeof(int), 0);
    ringo_go(select_with_timeout, res);
    int r = 0;
    if (ringo_chan_recv(res, &r) != 1 || r != -ETIMEDOUT)
        return 3;
    /* main in a select with a timeout while a goroutine is blocked for good */
    ringo_chan *c = mk(sizeof(int), 0);
    ringo_go(recv_forever, c);
    struct ringo_case cs[] = { { never, RINGO_RECV, &r, 0 } };
    if (ringo_select(cs, 1, 200000000) != -ETIMEDOUT)
        return 4;
    int v = 1;
    return ringo_chan_send(c, &v) == 0 ? 0 : 5; /* frees the goroutine: main returns normally */
}

/* Timer channels (issue 14): a pending timer or a ticker is pending work (sched.ntimers), so
 * goroutines and main blocked on their channels are not deadlocked; a stopped one is not. */
struct tchan_wait { ringo_chan *c, *res; };
static void recv_tchan_then_report(void *p)
{
    struct tchan_wait *w = p;
    int64_t v = 0;
    int r = ringo_chan_recv(w->c, &v);
    ringo_chan_send(w->res, &r);
}
static int child_timer_channels_pending(void)
{
    static struct tchan_wait w1, w2;
    ringo_chan *res = mk(sizeof(int), 0);
    struct ringo_timer *t = ringo_timer_make(200000000);
    struct ringo_ticker *tk = ringo_ticker_make(100000000);
    w1 = (struct tchan_wait){ ringo_timer_chan(t), res };
    w2 = (struct tchan_wait){ ringo_ticker_chan(tk), res };
    ringo_go(recv_tchan_then_report, &w1);
    ringo_go(recv_tchan_then_report, &w2);
    int r1 = 0, r2 = 0;
    if (ringo_chan_recv(res, &r1) != 1 || ringo_chan_recv(res, &r2) != 1 || r1 != 1 || r2 != 1)
        return 3;
    /* main alone, blocked on ringo_after's channel */
    ringo_chan *a = ringo_after(100000000);
    int64_t v;
    if (ringo_chan_recv(a, &v) != 1)
        return 4;
    ringo_chan_free(a);
    ringo_ticker_free(tk);
    ringo_timer_free(t);
    return 0;
}
/* a goroutine on a stopped timer's channel, another on a stopped ticker's, main on a channel
 * nobody sends on: a deadlock, as in Go */
static int child_timer_channels_stopped(void)
{
    static struct tchan_wait w1, w2;
    never = mk(sizeof(int), 0);
    struct ringo_timer *t = ringo_timer_make(10000000000LL);
    struct ringo_ticker *tk = ringo_ticker_make(10000000000LL);
    if (ringo_timer_stop(t) != 1 || ringo_ticker_stop(tk) != 1)
        return 3;
    w1 = (struct tchan_wait){ ringo_timer_chan(t), never };
    w2 = (struct tchan_wait){ ringo_ticker_chan(tk), never };
    ringo_go(recv_tchan_then_report, &w1);
    ringo_go(recv_tchan_then_report, &w2);
    int v;
    ringo_chan_recv(never, &v);
    return 4;
}
/* main alone on a timer channel after the value was received and the timer stopped */
static int child_main_recv_fired_timer(void)
{
    struct ringo_timer *t = ringo_timer_make(1000000);
    int64_t v;
    if (ringo_chan_recv(ringo_timer_chan(t), &v) != 1 || ringo_timer_stop(t) != 0)
        return 3;
    ringo_chan_recv(ringo_timer_chan(t), &v);
    return 4;
}

/* main blocks in recv while a plain thread (that has not used ringo yet) is about to send,
 * and meanwhile other threads of the process exit: the sender is alive, so this is never a
 * deadlock, however the exiting threads overlap with the check. */
static void *just_exit(void *p)
{
    (void)p;
    return NULL;
}
static void *send_soon(void *c)
{
    usleep(200);
    int v = 42;
    ringo_chan_send(c, &v);
    return NULL;
}
static int child_threads_exit_while_main_waits(void)
{
    ringo_chan *c = mk(sizeof(int), 0);
    int rounds = (int)(1000 * tu_scale());
    for (int round = 0; round < rounds; round++) {
        pthread_t t[5], s;
        for (int i = 0; i < 5; i++)
            pthread_create(&t[i], NULL, just_exit, NULL);
        pthread_create(&s, NULL, send_soon, c);
        int v = 0;
        if (ringo_chan_recv(c, &v) != 1 || v != 42)
            return 3;
        for (int i = 0; i < 5; i++)
            pthread_join(t[i], NULL);
        pthread_join(s, NULL);
    }
    return 0;
}

/* main returns while goroutines are blocked: the process just exits, as in Go */
static int child_main_returns_with_blocked_goroutines(void)
{
    ringo_go(recv_forever, mk(sizeof(int), 0));
    ringo_go(send_forever, mk(sizeof(int), 0));
    usleep(200000);
    return 0;
}

/* ------------------------------------------------------------------ scenarios: main exits first */

/* Go's Goexit in main: the other goroutines run on; when none is left the program dies with
 * "no goroutines (main called ringo_exit) - deadlock!". pthread_exit from main (C): the process
 * ends, status 0, when the last goroutine returns. */
static void work_then_print(void *p)
{
    ringo_sleep(50000000);
    fprintf(stderr, "worker %d done\n", (int)(intptr_t)p); /* unbuffered: survives _exit */
}
static int child_ringo_exit_main_goroutines_finish(void)
{
    ringo_chan *started = mk(0, 3);
    for (int i = 0; i < 3; i++)
        ringo_go(work_then_print, (void *)(intptr_t)i);
    ringo_chan_try_recv(started, NULL); /* main has used a channel: an attached thread */
    ringo_exit();
}
static void work_then_printf(void *p)
{
    ringo_sleep(50000000);
    printf("worker %d done\n", (int)(intptr_t)p); /* buffered: flushed by exit(0) */
}
static int child_pthread_exit_main_goroutines_finish(void)
{
    for (int i = 0; i < 3; i++)
        ringo_go(work_then_printf, (void *)(intptr_t)i);
    pthread_exit(NULL); /* main never blocked in ringo: not attached */
}
static int child_ringo_exit_main_alone(void)
{
    ringo_exit();
}
/* main leaves while a goroutine is blocked for good: the ordinary report, without main */
static int child_ringo_exit_main_goroutine_blocked(void)
{
    ringo_go(recv_forever, mk(sizeof(int), 0));
    ringo_exit();
}
static int child_pthread_exit_main_goroutine_blocked(void)
{
    ringo_go(recv_forever, mk(sizeof(int), 0));
    pthread_exit(NULL);
}


/* The ABA of the deadlock check, forced through its test hook (one worker: the checker is the
 * worker going idle after g1 exits, while main waits in round 1 and sender 1 has not touched
 * ringo yet). Phase 0 (after the first look): sender 1 sends, main wakes and joins it. Phase 1
 * (after the thread count, which now sees no sender): main starts sender 2 and blocks again,
 * so the counters read as at the first look. Sender 2 will send: reporting is a false alarm. */
static sem_t aba_s1_go;
static atomic_int aba_state, aba_joined, aba_round2, aba_parked2;
static void aba_wait(atomic_int *flag)
{
    for (int i = 0; i < 5000 && !atomic_load(flag); i++)
        usleep(1000);
}
static void aba_hook(int phase)
{
    if (!sched_cur_worker())
        return; /* main's and the senders' own checks are left alone */
    if (phase == 0 && atomic_load(&aba_state) == 0) {
        atomic_store(&aba_state, 1);
        sem_post(&aba_s1_go);
        aba_wait(&aba_joined);
    } else if (phase == 1 && atomic_load(&aba_state) == 1) {
        atomic_store(&aba_state, 2);
        atomic_store(&aba_round2, 1);
        aba_wait(&aba_parked2);
        for (int i = 0; i < 5000 && sched_dl_read(&sched.nthreads_blocked) != 1; i++)
            usleep(1000);
        usleep(5000); /* main is past its own check (it sees sender 2) and parked */
    }
}
static void *aba_sender1(void *c)
{
    sem_wait(&aba_s1_go);
    int v = 1;
    ringo_chan_send(c, &v);
    return NULL;
}
static void *aba_sender2(void *c)
{
    usleep(200000);
    int v = 2;
    ringo_chan_send(c, &v);
    return NULL;
}
static void aba_g1(void *p)
{
    (void)p;
    ringo_sleep(30000000); /* main's own check sees this timer; the worker checks when g1 ends */
}
static int child_aba_main_woken_and_blocked_again(void)
{
    sem_init(&aba_s1_go, 0, 0);
    sched_test_hook_deadlock = aba_hook;
    ringo_chan *c = mk(sizeof(int), 0);
    pthread_t s1, s2;
    pthread_create(&s1, NULL, aba_sender1, c);
    ringo_go(aba_g1, NULL);
    int v = 0;
    if (ringo_chan_recv(c, &v) != 1 || v != 1)
        return 3;
    pthread_join(s1, NULL);
    atomic_store(&aba_joined, 1);
    aba_wait(&aba_round2);
    pthread_create(&s2, NULL, aba_sender2, c);
    atomic_store(&aba_parked2, 1);
    if (ringo_chan_recv(c, &v) != 1 || v != 2)
        return 3;
    pthread_join(s2, NULL);
    if (atomic_load(&aba_state) != 2) {
        fprintf(stderr, "the hook did not force the interleaving (state %d)\n", atomic_load(&aba_state));
        return 4;
    }
    return 0;
}

static const struct child_scenario scenarios[] = {
    { "main_recv_unbuffered", child_main_recv_unbuffered },
    { "main_send_full_buffer", child_main_send_full_buffer },
    { "goroutines_send_and_recv", child_goroutines_send_and_recv },
    { "selects", child_selects },
    { "select_all_nil", child_select_all_nil },
    { "two_threads", child_two_threads },
    { "after_work", child_after_work },
    { "goroutine_sleeps_then_sends", child_goroutine_sleeps_then_sends },
    { "main_recv_goroutine_sleeps", child_main_recv_goroutine_sleeps },
    { "thread_busy_then_sends", child_thread_busy_then_sends },
    { "attached_thread_busy_then_sends", child_attached_thread_busy_then_sends },
    { "select_with_timeout", child_select_with_timeout },
    { "timer_channels_pending", child_timer_channels_pending },
    { "timer_channels_stopped", child_timer_channels_stopped },
    { "main_recv_fired_timer", child_main_recv_fired_timer },
    { "main_returns_with_blocked_goroutines", child_main_returns_with_blocked_goroutines },
    { "threads_exit_while_main_waits", child_threads_exit_while_main_waits },
    { "aba_main_woken_and_blocked_again", child_aba_main_woken_and_blocked_again },
    { "known_frames", child_known_frames },
    { "ringo_exit_main_goroutines_finish", child_ringo_exit_main_goroutines_finish },
    { "pthread_exit_main_goroutines_finish", child_pthread_exit_main_goroutines_finish },
    { "ringo_exit_main_alone", child_ringo_exit_main_alone },
    { "ringo_exit_main_goroutine_blocked", child_ringo_exit_main_goroutine_blocked },
    { "pthread_exit_main_goroutine_blocked", child_pthread_exit_main_goroutine_blocked },
    { NULL, NULL },
};

/* ------------------------------------------------------------------ checking the report */

/* Each expected line is "goroutine STATE" or "thread STATE"; alternatives separated by '|'
 * ("goroutine select|goroutine select (no cases)"). */
static struct child_result last_report[2]; /* the child's output, per RINGO_PROCS setting */
static void expect_deadlock(const char *name, const char *const *want, size_t nwant)
{
    static const char *const procs[] = { "RINGO_PROCS=1", "RINGO_PROCS=2" };
    for (int p = 0; p < 2; p++) {
        const char *env[] = { procs[p], NULL };
        struct child_result *rp = &last_report[p];
#define r (*rp)
        tu_run_child(name, env, 20, &r);
        if (!r.exited || r.code != 2)
            fail_msg("%s (%s): want exit status 2, got exited=%d code=%d signal=%d; output:\n%s", name, procs[p],
                     r.exited, r.code, r.signo, r.out);
        if (strncmp(r.out, header, sizeof header - 1) != 0)
            fail_msg("%s (%s): output does not start with Go's message:\n%s", name, procs[p], r.out);

        regex_t re;
        assert_int_equal(regcomp(&re, "^(goroutine|thread) ([0-9]+) \\[([^]]+)\\]:$", REG_EXTENDED), 0);
        bool used[16] = { false };
        long ids[64];
        size_t nlines = 0;
        char *rest = strdup(r.out + sizeof header - 1);
        char *save = NULL;
        for (char *line = strtok_r(rest, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            if (line[0] == '\t' && nlines > 0)
                continue; /* what is under a goroutine or thread line: its frames */
            regmatch_t m[4];
            if (regexec(&re, line, 4, m, 0) != 0)
                fail_msg("%s (%s): not a \"goroutine N [state]:\" line: \"%s\"\n%s", name, procs[p], line, r.out);
            char kind[16], state[64];
            snprintf(kind, sizeof kind, "%.*s", (int)(m[1].rm_eo - m[1].rm_so), line + m[1].rm_so);
            snprintf(state, sizeof state, "%.*s", (int)(m[3].rm_eo - m[3].rm_so), line + m[3].rm_so);
            long id = strtol(line + m[2].rm_so, NULL, 10);
            if (id <= 0)
                fail_msg("%s (%s): bad id in \"%s\"", name, procs[p], line);
            for (size_t i = 0; i < nlines && i < 64; i++)
                if (ids[i] == id)
                    fail_msg("%s (%s): id %ld listed twice\n%s", name, procs[p], id, r.out);
            if (nlines < 64)
                ids[nlines] = id;
            nlines++;
            char ks[96];
            snprintf(ks, sizeof ks, "%s %s", kind, state);
            bool found = false;
            for (size_t w = 0; w < nwant && !found; w++) {
                if (used[w])
                    continue;
                char alts[256];
                snprintf(alts, sizeof alts, "%s", want[w]);
                char *s2 = NULL;
                for (char *alt = strtok_r(alts, "|", &s2); alt; alt = strtok_r(NULL, "|", &s2))
                    if (strcmp(alt, ks) == 0) {
                        used[w] = found = true;
                        break;
                    }
            }
            if (!found)
                fail_msg("%s (%s): unexpected line \"%s\"\n%s", name, procs[p], line, r.out);
        }
        free(rest);
        regfree(&re);
        if (nlines != nwant)
            fail_msg("%s (%s): %zu goroutine/thread lines, want %zu\n%s", name, procs[p], nlines, nwant, r.out);
#undef r
    }
}

/* The lines under the first line of the report that starts with `head` (up to the next one
 * that does not start with a tab), as a malloc'd string; fails if there is no such line. */
static char *entry_body(const char *out, const char *head)
{
    const char *p = out;
    size_t hl = strlen(head);
    while (p && strncmp(p, head, hl) != 0) {
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    if (!p)
        fail_msg("no line starting with \"%s\" in:\n%s", head, out);
    p = strchr(p, '\n');
    const char *b = p ? p + 1 : out + strlen(out), *e = b;
    while (*e == '\t') {
        const char *nl = strchr(e, '\n');
        e = nl ? nl + 1 : e + strlen(e);
    }
    return strndup(b, (size_t)(e - b));
}

static bool has_line(const char *body, const char *re_src)
{
    regex_t re;
    assert_int_equal(regcomp(&re, re_src, REG_EXTENDED | REG_NEWLINE), 0);
    bool ok = regexec(&re, body, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static void expect_no_deadlock(const char *name)
{
    static const char *const procs[] = { "RINGO_PROCS=1", "RINGO_PROCS=2" };
    for (int p = 0; p < 2; p++) {
        const char *env[] = { procs[p], NULL };
        struct child_result r;
        tu_run_child(name, env, 20, &r);
        if (!r.exited || r.code != 0 || strstr(r.out, "deadlock"))
            fail_msg("%s (%s): want a normal exit 0, got exited=%d code=%d signal=%d; output:\n%s", name, procs[p],
                     r.exited, r.code, r.signo, r.out);
        assert_string_equal(r.out, "");
    }
}

static void test_deadlock_main_blocked_in_recv(void **state)
{
    (void)state;
    static const char *const want[] = { "thread chan receive" };
    expect_deadlock("main_recv_unbuffered", want, 1);
}

static void test_deadlock_main_blocked_sending_to_a_full_buffer(void **state)
{
    (void)state;
    static const char *const want[] = { "thread chan send" };
    expect_deadlock("main_send_full_buffer", want, 1);
}

static void test_deadlock_goroutines_in_send_and_receive(void **state)
{
    (void)state;
    static const char *const want[] = { "goroutine chan send", "goroutine chan receive", "thread chan receive" };
    expect_deadlock("goroutines_send_and_recv", want, 3);
}

static void test_deadlock_select_states(void **state)
{
    (void)state;
    static const char *const want[] = { "goroutine select", "goroutine select (no cases)", "thread select" };
    expect_deadlock("selects", want, 3);
}

static void test_deadlock_select_with_only_nil_cases(void **state)
{
    (void)state;
    /* Go lists a select whose cases are all nil channels as "select"; an empty one as
     * "select (no cases)". Either is accepted here: the point is that it is detected. */
    static const char *const want[] = { "goroutine select|goroutine select (no cases)", "thread chan receive" };
    expect_deadlock("select_all_nil", want, 2);
}

static void test_deadlock_blocked_plain_threads_are_listed(void **state)
{
    (void)state;
    static const char *const want[] = { "thread chan send", "thread chan receive" };
    expect_deadlock("two_threads", want, 2);
}

static void test_deadlock_after_real_work(void **state)
{
    (void)state;
    static const char *const want[] = { "goroutine chan receive", "goroutine chan send", "thread chan receive" };
    expect_deadlock("after_work", want, 3);
}

static void test_deadlock_not_reported_for_a_sleeping_sender(void **state)
{
    (void)state;
    expect_no_deadlock("goroutine_sleeps_then_sends");
    expect_no_deadlock("main_recv_goroutine_sleeps");
}

static void test_deadlock_not_reported_while_a_thread_computes(void **state)
{
    (void)state;
    expect_no_deadlock("thread_busy_then_sends");
    expect_no_deadlock("attached_thread_busy_then_sends");
}

static void test_deadlock_not_reported_for_a_select_with_timeout(void **state)
{
    (void)state;
    expect_no_deadlock("select_with_timeout");
}

static void test_deadlock_not_reported_while_timer_channels_are_pending(void **state)
{
    (void)state;
    expect_no_deadlock("timer_channels_pending");
}

static void test_deadlock_goroutines_on_stopped_timer_channels(void **state)
{
    (void)state;
    static const char *const want[] = { "goroutine chan receive", "goroutine chan receive", "thread chan receive" };
    expect_deadlock("timer_channels_stopped", want, 3);
    static const char *const want1[] = { "thread chan receive" };
    expect_deadlock("main_recv_fired_timer", want1, 1);
}

static void test_deadlock_not_reported_while_other_threads_exit(void **state)
{
    (void)state;
    expect_no_deadlock("threads_exit_while_main_waits");
}

/* The check's looks and its thread count come from different moments: a thread woke main and
 * main blocked again in between (an ABA of the counters). One worker, forced by the hook. */
static void test_deadlock_not_reported_when_main_is_woken_and_blocks_again_mid_check(void **state)
{
    (void)state;
    const char *env[] = { "RINGO_PROCS=1", NULL };
    struct child_result r;
    tu_run_child("aba_main_woken_and_blocked_again", env, 30, &r);
    if (!r.exited || r.code != 0 || strstr(r.out, "deadlock"))
        fail_msg("want a normal exit 0, got exited=%d code=%d signal=%d; output:\n%s", r.exited, r.code,
                 r.signo, r.out);
}

static void test_deadlock_not_reported_when_main_returns(void **state)
{
    (void)state;
    expect_no_deadlock("main_returns_with_blocked_goroutines");
}

static const char no_goroutines[] = "fatal error: no goroutines (main called ringo_exit) - deadlock!\n";

static void test_deadlock_ringo_exit_in_main_lets_goroutines_finish_then_reports(void **state)
{
    (void)state;
    static const char *const procs[] = { "RINGO_PROCS=1", "RINGO_PROCS=2" };
    for (int p = 0; p < 2; p++) {
        const char *env[] = { procs[p], NULL };
        struct child_result r;
        tu_run_child("ringo_exit_main_goroutines_finish", env, 20, &r);
        if (!r.exited || r.code != 2)
            fail_msg("(%s): want exit status 2, got exited=%d code=%d signal=%d; output:\n%s", procs[p], r.exited,
                     r.code, r.signo, r.out);
        for (int i = 0; i < 3; i++) {
            char want[32];
            snprintf(want, sizeof want, "worker %d done\n", i);
            if (!strstr(r.out, want))
                fail_msg("(%s): the goroutines did not finish their work (no \"%s\"):\n%s", procs[p], want, r.out);
        }
        size_t n = strlen(r.out), m = sizeof no_goroutines - 1;
        if (n < m || strcmp(r.out + n - m, no_goroutines) != 0 || strstr(r.out, "asleep"))
            fail_msg("(%s): want the output to end with Go's message:\n%s", procs[p], r.out);
    }
}

static void test_deadlock_ringo_exit_in_main_alone_reports_at_once(void **state)
{
    (void)state;
    static const char *const procs[] = { "RINGO_PROCS=1", "RINGO_PROCS=2" };
    for (int p = 0; p < 2; p++) {
        const char *env[] = { procs[p], NULL };
        struct child_result r;
        tu_run_child("ringo_exit_main_alone", env, 20, &r);
        if (!r.exited || r.code != 2)
            fail_msg("(%s): want exit status 2, got exited=%d code=%d signal=%d; output:\n%s", procs[p], r.exited,
                     r.code, r.signo, r.out);
        assert_string_equal(r.out, no_goroutines);
    }
}

static void test_deadlock_pthread_exit_in_main_ends_with_the_last_goroutine(void **state)
{
    (void)state;
    static const char *const procs[] = { "RINGO_PROCS=1", "RINGO_PROCS=2" };
    for (int p = 0; p < 2; p++) {
        const char *env[] = { procs[p], NULL };
        struct child_result r;
        tu_run_child("pthread_exit_main_goroutines_finish", env, 20, &r);
        if (!r.exited || r.code != 0)
            fail_msg("(%s): want exit status 0, got exited=%d code=%d signal=%d; output:\n%s", procs[p], r.exited,
                     r.code, r.signo, r.out);
        for (int i = 0; i < 3; i++) {
            char want[32];
            snprintf(want, sizeof want, "worker %d done\n", i);
            if (!strstr(r.out, want))
                fail_msg("(%s): output of the goroutines missing (\"%s\"):\n%s", procs[p], want, r.out);
        }
        if (strstr(r.out, "fatal"))
            fail_msg("(%s): unexpected report:\n%s", procs[p], r.out);
    }
}

static void test_deadlock_main_gone_and_goroutines_blocked_is_a_deadlock(void **state)
{
    (void)state;
    /* as Go after Goexit in main: the blocked goroutines are reported; main is not listed */
    static const char *const want[] = { "goroutine chan receive" };
    expect_deadlock("ringo_exit_main_goroutine_blocked", want, 1);
    expect_deadlock("pthread_exit_main_goroutine_blocked", want, 1);
}

static void test_deadlock_report_shows_stacks_and_marks_main(void **state)
{
    (void)state;
    static const char *const want[] = { "goroutine chan receive", "thread chan send" };
    expect_deadlock("known_frames", want, 2);
    for (int p = 0; p < 2; p++) {
        const char *out = last_report[p].out;
        /* under the goroutine: its frames, "#N name+0xoff (object+0xrel)", with the function
         * it is stuck in and its entry */
        char *gb = entry_body(out, "goroutine ");
        if (!has_line(gb, "^\t#[0-9]+ deadlock_goroutine_stuck_here\\+0x[0-9a-f]+ \\(.+\\+0x[0-9a-f]+\\)$") ||
            !has_line(gb, "^\t#[0-9]+ stuck_entry\\+0x"))
            fail_msg("goroutine frames missing:\n%s", out);
        if (has_line(gb, "main thread"))
            fail_msg("a goroutine marked as the main thread:\n%s", out);
        free(gb);
        /* under main's thread line: that it is main, and its frames down to the test's own */
        char *tb = entry_body(out, "thread ");
        if (!has_line(tb, "^\tmain thread$") || !has_line(tb, "^\t#[0-9]+ deadlock_main_stuck_here\\+0x") ||
            !has_line(tb, "^\t#[0-9]+ child_known_frames\\+0x"))
            fail_msg("main thread not marked, or its frames missing:\n%s", out);
        free(tb);
    }
}

static void test_deadlock_report_shows_the_stack_of_another_thread(void **state)
{
    (void)state;
    static const char *const want[] = { "thread chan send", "thread chan receive" };
    expect_deadlock("two_threads", want, 2);
    for (int p = 0; p < 2; p++) {
        const char *out = last_report[p].out;
        char *sb = entry_body(out, "thread "), *other = NULL;
        /* which of the two thread lines is the sender does not matter: find it */
        const char *second = strstr(strstr(out, "thread ") + 1, "\nthread ");
        if (second)
            other = entry_body(second + 1, "thread ");
        const char *sender = has_line(sb, "thread_send_forever") ? sb : other;
        const char *mainb = sender == sb ? other : sb;
        if (!sender || !has_line(sender, "^\t#[0-9]+ thread_send_forever\\+0x") || has_line(sender, "main thread"))
            fail_msg("the other thread's frames are missing (or it is marked main):\n%s", out);
        if (!mainb || !has_line(mainb, "^\tmain thread$") || !has_line(mainb, "^\t#[0-9]+ child_two_threads\\+0x"))
            fail_msg("main's entry not marked, or its frames missing:\n%s", out);
        free(sb);
        free(other);
    }
}

int main(int argc, char **argv)
{
    tu_maybe_child(argc, argv, scenarios);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadlock_main_blocked_in_recv),
        cmocka_unit_test(test_deadlock_main_blocked_sending_to_a_full_buffer),
        cmocka_unit_test(test_deadlock_goroutines_in_send_and_receive),
        cmocka_unit_test(test_deadlock_select_states),
        cmocka_unit_test(test_deadlock_select_with_only_nil_cases),
        cmocka_unit_test(test_deadlock_blocked_plain_threads_are_listed),
        cmocka_unit_test(test_deadlock_after_real_work),
        cmocka_unit_test(test_deadlock_not_reported_for_a_sleeping_sender),
        cmocka_unit_test(test_deadlock_not_reported_while_a_thread_computes),
        cmocka_unit_test(test_deadlock_not_reported_for_a_select_with_timeout),
        cmocka_unit_test(test_deadlock_not_reported_while_timer_channels_are_pending),
        cmocka_unit_test(test_deadlock_goroutines_on_stopped_timer_channels),
        cmocka_unit_test(test_deadlock_not_reported_when_main_returns),
        cmocka_unit_test(test_deadlock_not_reported_while_other_threads_exit),
        cmocka_unit_test(test_deadlock_not_reported_when_main_is_woken_and_blocks_again_mid_check),
        cmocka_unit_test(test_deadlock_report_shows_stacks_and_marks_main),
        cmocka_unit_test(test_deadlock_report_shows_the_stack_of_another_thread),
        cmocka_unit_test(test_deadlock_ringo_exit_in_main_lets_goroutines_finish_then_reports),
        cmocka_unit_test(test_deadlock_ringo_exit_in_main_alone_reports_at_once),
        cmocka_unit_test(test_deadlock_pthread_exit_in_main_ends_with_the_last_goroutine),
        cmocka_unit_test(test_deadlock_main_gone_and_goroutines_blocked_is_a_deadlock),
    };
    if (getenv("RINGO_TEST_FILTER"))
        cmocka_set_test_filter(getenv("RINGO_TEST_FILTER"));
    return TU_RUN_GROUP("deadlock", tests, NULL, NULL);
}
