/* tests/test_debug.c — the debugging and profiling tools (README "Debugging and profiling").
 *
 *   ringo_dump           names each goroutine's function and, for a parked one, its callers
 *                        down to g_entry and sched_ctx_trampoline.
 *   RINGO_DEBUG=stats    counters at exit; schedtrace=MS: a SCHED line plus one line per worker
 *                        per interval; hog=MS: a goroutine holding a worker is named with the
 *                        frames it runs (or the system call it is blocked in), then its release;
 *                        sigquit: SIGQUIT prints every goroutine and exits with status 2. The
 *                        monitor thread does not hide a deadlock.
 *   gdb                  tools/ringo-gdb.py: `info goroutines`, `goroutine N bt` on parked and
 *                        running goroutines, registers restored afterwards.
 *   perf                 a sample taken in a goroutine unwinds, unbroken, from the leaf to
 *                        g_entry and sched_ctx_trampoline, and stops there.
 *   valgrind             a small program runs to the end under memcheck (it used to hang).
 *   ASan / TSan          builds with -fsanitize=address still catch a heap-use-after-free and a
 *                        stack-buffer-overflow inside a goroutine; -fsanitize=thread a race
 *                        between two goroutines.
 * Every program under test runs in a child process with a timeout (tu_run_child or run_prog):
 * a hang fails the case, never the suite. Cases whose tool is missing or not permitted, or that
 * need another build, call skip().
 */
#ifdef HAVE_CONFIG_H
#include "config.h" /* RINGO_VALGRIND (configure --enable-valgrind) */
#endif
#include <ringo.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <regex.h>
#include <strings.h>
#include <sys/mman.h>
#include "tests/testutil.h"

#ifndef RINGO_SRCDIR
#define RINGO_SRCDIR "."
#endif

#define KEEP() __asm__ volatile("" ::: "memory") /* after a call: no tail call, the frame stays */

/* ------------------------------------------------------------------ helpers */

static struct child_result res; /* 64 KiB: not on the stack */

/* Is `prog` on PATH and runnable? */
static bool have_prog(const char *prog)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", prog);
    return system(cmd) == 0;
}

static int count_matches(const char *text, const char *pattern)
{
    regex_t re;
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NEWLINE) != 0)
        return -1;
    int n = 0;
    regmatch_t m;
    for (const char *p = text; *p && regexec(&re, p, 1, &m, 0) == 0; p += m.rm_eo > 0 ? m.rm_eo : 1)
        n++;
    regfree(&re);
    return n;
}

static void print_text(const char *text)
{
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        int l = nl ? (int)(nl - p) : (int)strlen(p);
        fprintf(stderr, "# %.*s\n", l, p);
        p += l + (nl != NULL);
    }
}

static void expect_match(const char *text, const char *pattern)
{
    if (count_matches(text, pattern) < 1) {
        print_text(text);
        fail_msg("no match for /%s/ in the text above", pattern);
    }
}

static void print_output(const char *what, const struct child_result *r)
{
    fprintf(stderr, "# ---- %s (exited=%d code=%d signal=%d)\n", what, r->exited, r->code, r->signo);
    print_text(r->out);
}

/* Wait (10 s at most) until the dump shows at least n goroutines in state st. */
static bool wait_dump(const char *st, int n)
{
    char pat[64];
    snprintf(pat, sizeof pat, "^goroutine [0-9]+ (\"[^\"]*\" )?\\[%s, ", st); /* a name, issue 14 */
    for (int i = 0; i < 10000; i++) {
        char *d = tu_dump_string();
        int k = count_matches(d, pat);
        free(d);
        if (k >= n)
            return true;
        usleep(1000);
    }
    return false;
}

/* Does the last line of text contain s? */
static bool last_line_has(const char *text, const char *s)
{
    size_t n = strlen(text);
    while (n && text[n - 1] == '\n')
        n--;
    const char *start = text + n;
    while (start > text && start[-1] != '\n')
        start--;
    char *line = strndup(start, (size_t)(text + n - start));
    bool r = strstr(line, s) != NULL;
    if (!r)
        fprintf(stderr, "# last line: %s\n", line);
    free(line);
    return r;
}

static char *self_path(void)
{
    if (!tu_self[0])
        tu_init_self();
    return tu_self;
}

/* ------------------------------------------------------------------ code that goroutines run
 * noinline + KEEP(): each function keeps its own frame, so a stack shows all of them. */

static ringo_chan *park_chan;                 /* nobody sends until the test says so */
static volatile unsigned long sink;
static _Atomic int stop_spin;

__attribute__((noinline)) static void debug_deep_b(void)
{
    int v;
    ringo_chan_recv(park_chan, &v);
    KEEP();
}
__attribute__((noinline)) static void debug_deep_a(void)
{
    debug_deep_b();
    KEEP();
}
static void debug_parked_entry(void *done)
{
    debug_deep_a();
    KEEP();
    ringo_chan_send(done, NULL);
}

/* A leaf that uses no stack gets no frame from gcc, even with -fno-omit-frame-pointer, and a
 * frame-pointer unwind then skips its caller; the local keeps the frame (README). */
__attribute__((noinline)) static void debug_spin_leaf(void)
{
    volatile int spins = 0;
    while (!atomic_load_explicit(&stop_spin, memory_order_relaxed)) {
        spins++;
        sink++;
    }
}
__attribute__((noinline)) static void debug_spin_mid(void)
{
    debug_spin_leaf();
    KEEP();
}
__attribute__((noinline)) static void debug_spin_top(void)
{
    debug_spin_mid();
    KEEP();
}
static void debug_spin_entry(void *arg)
{
    debug_spin_top();
    KEEP();
}

static void debug_sleeper(void *arg)
{
    ringo_sleep(60 * 1000000000LL);
    KEEP();
}

/* Spin for ms milliseconds without switching out. */
__attribute__((noinline)) static void debug_hog_inner(long ms)
{
    int64_t end = ringo_now() + ms * 1000000;
    while (ringo_now() < end)
        sink++;
    KEEP();
}
static void debug_hog_entry(void *arg)
{
    debug_hog_inner((long)(intptr_t)arg);
    KEEP();
}

/* ------------------------------------------------------------------ ringo_dump */

static void test_debug_dump_names_functions_and_callers(void **state)
{
    park_chan = ringo_chan_make(sizeof(int), 0);
    ringo_chan *done = ringo_chan_make(0, 1);
    assert_non_null(park_chan);
    int64_t id = ringo_go(debug_parked_entry, done);
    assert_true(id > 0);
    assert_true(wait_dump("chan receive", 1));
    char *d = tu_dump_string();
    char pat[512];
    /* the head line keeps its format (tests of other modules parse it), with a name for fn */
    snprintf(pat, sizeof pat, "^goroutine %lld \\[chan receive, [0-9]+ ms\\]: fn=debug_parked_entry arg=0x[0-9a-f]+$",
             (long long)id);
    expect_match(d, pat);
    /* then its frames, innermost first, each "#N name+0xoff (object+0xrel)", down to the base */
    snprintf(pat, sizeof pat,
             "^goroutine %lld .*\n(\t#[0-9]+ [^\n]+\n)*"
             "\t#[0-9]+ debug_deep_b\\+0x[0-9a-f]+ \\([^+]+\\+0x[0-9a-f]+\\)\n"
             "\t#[0-9]+ debug_deep_a\\+0x[0-9a-f]+ [^\n]+\n"
             "\t#[0-9]+ debug_parked_entry\\+0x[0-9a-f]+ [^\n]+\n"
             "\t#[0-9]+ g_entry\\+0x[0-9a-f]+ [^\n]+\n"
             "\t#[0-9]+ sched_ctx_trampoline\\+0x[0-9a-f]+ [^\n]+\n"
             "(goroutine|thread|$)",
             (long long)id);
    if (count_matches(d, pat) < 1) {
        print_text(d);
        fail_msg("frames of goroutine %lld not as expected (dump above)", (long long)id);
    }
    free(d);
    int v = 1;
    assert_int_equal(ringo_chan_send(park_chan, &v), 0);
    assert_int_equal(ringo_chan_recv(done, NULL), 1);
    assert_int_equal(ringo_chan_free(done), 0);
    assert_int_equal(ringo_chan_free(park_chan), 0);
    park_chan = NULL;
}

static void test_debug_dump_shows_running_goroutine_and_worker(void **state)
{
    if (ringo_procs() < 2)
        skip();
    atomic_store(&stop_spin, 0);
    int64_t id = ringo_go(debug_spin_entry, NULL);
    assert_true(id > 0);
    char pat[256];
    snprintf(pat, sizeof pat, "^goroutine %lld \\[running\\]: fn=debug_spin_entry arg=[^ ]+ worker=[0-9]+$",
             (long long)id);
    bool ok = false;
    for (int i = 0; i < 5000 && !ok; i++) {
        char *d = tu_dump_string();
        ok = count_matches(d, pat) == 1;
        free(d);
        if (!ok)
            usleep(1000);
    }
    atomic_store(&stop_spin, 1);
    assert_true(ok);
}

/* ------------------------------------------------------------------ child scenarios */

static void small_worker(void *c)
{
    int v = 0;
    for (int i = 0; i < 100; i++)
        ringo_chan_send(c, &v);
}
/* Channels of the children stay reachable from globals: LeakSanitizer checks them at exit. */
static ringo_chan *volatile child_chan; /* volatile: a store nobody reads must stay */

static int child_small_program(void)
{
    ringo_chan *c = child_chan = ringo_chan_make(sizeof(int), 0);
    for (int i = 0; i < 4; i++)
        ringo_go(small_worker, c);
    int v, n = 0;
    while (n < 400 && ringo_chan_recv(c, &v) == 1)
        n++;
    ringo_sleep(1000000);
    printf("received %d\n", n);
    return n == 400 ? 0 : 1;
}

static void trace_worker(void *c)
{
    int v = 0;
    int64_t end = ringo_now() + 350 * 1000000LL;
    while (ringo_now() < end) {
        ringo_chan_send(c, &v);
        ringo_sleep(100000);
    }
    ringo_chan_close(c);
}
static int trace_pipe[2];
static struct ringo_waitgroup trace_wg = RINGO_WAITGROUP_INIT;
static void trace_reader(void *unused)
{
    (void)unused;
    char b;
    /* waits in the I/O backend the whole run: the trace shows io=1 */
    ssize_t r = ringo_read(trace_pipe[0], &b, 1, ringo_now() + 5000 * 1000000LL);
    if (r != 1)
        fprintf(stderr, "trace_reader: %zd\n", r);
    ringo_wg_done(&trace_wg);
}
static int child_schedtrace(void)
{
    if (pipe(trace_pipe) != 0)
        return 1;
    ringo_wg_add(&trace_wg, 1);
    ringo_go(trace_reader, NULL);
    ringo_chan *c = child_chan = ringo_chan_make(sizeof(int), 0);
    ringo_go(trace_worker, c);
    int v;
    while (ringo_chan_recv(c, &v) == 1) {
    }
    if (write(trace_pipe[1], "x", 1) != 1)
        return 1;
    ringo_wg_wait(&trace_wg);
    return 0;
}

static int child_hog(void)
{
    ringo_go(debug_hog_entry, (void *)(intptr_t)400);
    ringo_sleep(600 * 1000000LL); /* the monitor reports the release too */
    return 0;
}

static void debug_blocked_reader(void *fdp)
{
    char b;
    (void)!read(*(int *)fdp, &b, 1); /* a plain blocking read: keeps the worker */
    KEEP();
}
static int child_hog_syscall(void)
{
    static int p[2];
    if (pipe(p) != 0)
        return 1;
    ringo_go(debug_blocked_reader, &p[0]);
    usleep(400000);
    (void)!write(p[1], "x", 1);
    usleep(200000);
    return 0;
}

static int child_sigquit(void)
{
    park_chan = ringo_chan_make(sizeof(int), 0);
    ringo_go(debug_parked_entry, NULL);
    ringo_go(debug_sleeper, NULL);
    if (ringo_procs() >= 2)
        ringo_go(debug_spin_entry, NULL);
    if (!wait_dump("chan receive", 1) || !wait_dump("sleep", 1))
        return 3;
    kill(getpid(), SIGQUIT);
    for (int i = 0; i < 100; i++)
        usleep(100000); /* the monitor exits with status 2; returning would be 0 */
    return 4;
}

/* A deadlock with the monitor thread running: still detected. */
static int child_deadlock_with_monitor(void)
{
    int v;
    ringo_chan_recv(child_chan = ringo_chan_make(sizeof(int), 0), &v);
    return 0;
}

/* gdb stops here, once the goroutines it looks at are in place. */
int64_t gdb_target_goid, gdb_spin_goid;
__attribute__((noinline)) void debug_gdb_stop_here(int64_t goid);
__attribute__((noinline)) void debug_gdb_stop_here(int64_t goid)
{
    sink += (unsigned long)goid;
    KEEP();
}
static int child_gdb_target(void)
{
    park_chan = ringo_chan_make(sizeof(int), 0);
    gdb_target_goid = ringo_go(debug_parked_entry, NULL);
    /* issue 14: names in the listing, and a goroutine with a stack of its own found too */
    ringo_go_opts(debug_sleeper, NULL, &(struct ringo_go_opts){ .name = "napper" });
    ringo_go_opts(debug_sleeper, NULL, &(struct ringo_go_opts){ .name = "big-napper", .stack_size = 4 << 20 });
    if (ringo_procs() >= 2)
        gdb_spin_goid = ringo_go(debug_spin_entry, NULL);
    if (!wait_dump("chan receive", 1) || !wait_dump("sleep", 2))
        return 3;
    if (gdb_spin_goid) {
        char pat[64];
        snprintf(pat, sizeof pat, "^goroutine %lld \\[running\\]", (long long)gdb_spin_goid);
        for (int i = 0; i < 5000; i++) {
            char *d = tu_dump_string();
            int k = count_matches(d, pat);
            free(d);
            if (k)
                break;
            usleep(1000);
        }
    }
    debug_gdb_stop_here(gdb_target_goid);
    atomic_store(&stop_spin, 1);
    return 0;
}

static int child_perf_target(void)
{
    ringo_go(debug_spin_entry, NULL);
    usleep(400000);
    atomic_store(&stop_spin, 1);
    usleep(20000);
    return 0;
}

#if defined(__SANITIZE_ADDRESS__)
static char *volatile asan_ptr;
static volatile int asan_index = 16;
__attribute__((noinline)) static void debug_asan_uaf(void *arg)
{
    char *p = malloc(16);
    p[0] = 1;
    asan_ptr = p;
    free(p);
    sink += (unsigned long)asan_ptr[3]; /* heap-use-after-free */
    KEEP();
}
__attribute__((noinline)) static void debug_asan_stack_overflow(void *arg)
{
    char buf[16];
    memset(buf, 0, sizeof buf);
    char *volatile p = buf; /* through a pointer: UBSan's bounds check would stop us first */
    p[asan_index] = 1;      /* stack-buffer-overflow, in a goroutine's stack */
    sink += (unsigned long)buf[1];
    KEEP();
}
static int child_asan_in_goroutine(void (*fn)(void *))
{
    ringo_go(fn, NULL);
    ringo_sleep(2000000000LL); /* ASan aborts the process before this returns */
    return 0;
}
static int child_asan_uaf(void) { return child_asan_in_goroutine(debug_asan_uaf); }
static int child_asan_stack(void) { return child_asan_in_goroutine(debug_asan_stack_overflow); }
#endif

#if defined(__SANITIZE_THREAD__)
static long racy_counter;   /* written by two goroutines with no synchronisation: a real race */
static _Atomic int arrived; /* relaxed only: a meeting point that orders nothing for TSan */
static void debug_tsan_racer(void *wg)
{
    /* both run at once, on two workers (the idle one steals the second racer) */
    atomic_fetch_add_explicit(&arrived, 1, memory_order_relaxed);
    while (atomic_load_explicit(&arrived, memory_order_relaxed) < 2)
        ;
    for (int i = 0; i < 100000; i++)
        racy_counter++;
    ringo_wg_done(wg);
}
static int child_tsan_race(void)
{
    static struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    ringo_wg_add(&wg, 2);
    ringo_go(debug_tsan_racer, &wg);
    ringo_go(debug_tsan_racer, &wg);
    ringo_wg_wait(&wg);
    return 0;
}
#endif

static const struct child_scenario scenarios[] = {
    { "small_program", child_small_program },
    { "schedtrace", child_schedtrace },
    { "hog", child_hog },
    { "hog_syscall", child_hog_syscall },
    { "sigquit", child_sigquit },
    { "deadlock_with_monitor", child_deadlock_with_monitor },
    { "gdb_target", child_gdb_target },
    { "perf_target", child_perf_target },
#if defined(__SANITIZE_ADDRESS__)
    { "asan_uaf", child_asan_uaf },
    { "asan_stack", child_asan_stack },
#endif
#if defined(__SANITIZE_THREAD__)
    { "tsan_race", child_tsan_race },
#endif
    { NULL, NULL },
};

/* ------------------------------------------------------------------ RINGO_DEBUG */

static void test_debug_stats_printed_at_exit(void **state)
{
    static const char *const env[] = { "RINGO_DEBUG=stats", "RINGO_PROCS=2", NULL };
    tu_run_child("small_program", env, 30, &res);
    if (!res.exited || res.code != 0)
        print_output("small_program", &res);
    assert_true(res.exited);
    assert_int_equal(res.code, 0);
    /* 4 goroutines spawned (plus none left at exit), 400 values handed over */
    expect_match(res.out, "^ringo stats: goroutines=0 spawned=4 switches=[1-9][0-9]* steals=[0-9]+ "
                          "parks=[1-9][0-9]* wakeups=[1-9][0-9]* io_submitted=[0-9]+ io_completed=[0-9]+ spilled=[0-9]+ "
                          "io_lent_ring=0 io_lent_heap=0$");
}

static void test_debug_schedtrace_one_line_per_worker(void **state)
{
    static const char *const env[] = { "RINGO_DEBUG=schedtrace=50", "RINGO_PROCS=2", NULL };
    tu_run_child("schedtrace", env, 30, &res);
    if (!res.exited || res.code != 0)
        print_output("schedtrace", &res);
    assert_true(res.exited);
    assert_int_equal(res.code, 0);
    /* idle and spinning count extra workers too: under load the sysmon may add one (CI's ASan
     * run: idle=3 with procs=2) */
    int heads = count_matches(res.out, "^SCHED [0-9]+ms: procs=2 idle=[0-9]+ spinning=[0-9]+ goroutines=[0-9]+ "
                                       "gqueue=[0-9]+ timers=[0-9]+ io=[0-9]+ threads=[0-9]+ blocked_threads=[0-9]+$");
    const char *wl = "runq=[0-9]+ runnext=[01] switches=\\+[0-9]+ steals=\\+[0-9]+ parks=\\+[0-9]+ "
                     "wakeups=\\+[0-9]+ spawned=\\+[0-9]+ io=[0-9]+$";
    char p0[512], p1[512];
    snprintf(p0, sizeof p0, "^SCHED [0-9]+ms w0: cpu=-?[0-9]+ (running g=[0-9]+|idle|spinning|scheduling) %s", wl);
    snprintf(p1, sizeof p1, "^SCHED [0-9]+ms w1: cpu=-?[0-9]+ (running g=[0-9]+|idle|spinning|scheduling) %s", wl);
    int w0 = count_matches(res.out, p0), w1 = count_matches(res.out, p1);
    if (heads < 4 || w0 != heads || w1 != heads)
        print_output("schedtrace", &res);
    assert_true(heads >= 4); /* 350 ms at 50 ms a line */
    assert_int_equal(w0, heads);
    assert_int_equal(w1, heads);
    /* the workload switches: some interval shows it */
    expect_match(res.out, "^SCHED [0-9]+ms w[01]: .* switches=\\+[1-9]");
    /* the reader waits on a pipe all along: the summary and its worker's line count it */
    expect_match(res.out, "^SCHED [0-9]+ms: .* io=1 ");
    expect_match(res.out, "^SCHED [0-9]+ms w[01]: .* io=1$");
}

static void test_debug_hog_names_goroutine_and_frames(void **state)
{
    static const char *const env[] = { "RINGO_DEBUG=hog=50", "RINGO_PROCS=2", NULL };
    tu_run_child("hog", env, 30, &res);
    if (!res.exited || res.code != 0 || count_matches(res.out, "debug_hog_inner") < 1)
        print_output("hog", &res);
    assert_true(res.exited);
    assert_int_equal(res.code, 0);
    expect_match(res.out, "^ringo: goroutine [0-9]+ has held worker [01] for [0-9]+ ms without switching out "
                          "\\(RINGO_DEBUG=hog=50\\): fn=debug_hog_entry$");
    expect_match(res.out, "^ringo: goroutine [0-9]+ let worker [01] go after [0-9]+ ms$");
    assert_int_equal(count_matches(res.out, "has held worker"), 1); /* once per hog */
#if !defined(__SANITIZE_THREAD__) /* TSan delays signals until the spinning code calls into libc */
    expect_match(res.out, "\t#[0-9]+ debug_hog_inner\\+0x[0-9a-f]+ [^\n]*\n\t#[0-9]+ debug_hog_entry\\+");
#endif
}

static void test_debug_hog_blocked_in_system_call(void **state)
{
    static const char *const env[] = { "RINGO_DEBUG=hog=50", "RINGO_PROCS=2", NULL };
    tu_run_child("hog_syscall", env, 30, &res);
    if (!res.exited || res.code != 0)
        print_output("hog_syscall", &res);
    assert_true(res.exited);
    assert_int_equal(res.code, 0);
    expect_match(res.out, "^ringo: goroutine [0-9]+ has held worker [01] for [0-9]+ ms without switching out "
                          "\\(RINGO_DEBUG=hog=50\\): fn=debug_blocked_reader, blocked in system call read \\(0\\)$");
}

static void test_debug_sigquit_dumps_and_exits_2(void **state)
{
    static const char *const env[] = { "RINGO_DEBUG=sigquit", "RINGO_PROCS=2", NULL };
    tu_run_child("sigquit", env, 30, &res);
    if (!res.exited || res.code != 2)
        print_output("sigquit", &res);
    assert_true(res.exited);
    assert_int_equal(res.code, 2);
    assert_non_null(strstr(res.out, "SIGQUIT: quit\n\n"));
    expect_match(res.out, "^goroutine [0-9]+ \\[chan receive, [0-9]+ ms\\]: fn=debug_parked_entry");
    expect_match(res.out, "^goroutine [0-9]+ \\[sleep, [0-9]+ ms\\]: fn=debug_sleeper");
    expect_match(res.out, "\t#[0-9]+ debug_deep_b\\+0x[0-9a-f]+ ");
#if !defined(__SANITIZE_THREAD__)
    if (ringo_procs() >= 2) {
        /* the running goroutine is interrupted to show where it is */
        expect_match(res.out, "^goroutine [0-9]+ \\[running\\]: fn=debug_spin_entry arg=[^ ]+ worker=[01]\n"
                              "\t#0 debug_spin_leaf\\+0x[0-9a-f]+ [^\n]*\n\t#1 debug_spin_mid\\+");
    }
#endif
}

static void test_debug_monitor_does_not_hide_deadlock(void **state)
{
    static const char *const env[] = { "RINGO_DEBUG=schedtrace=10000,hog=1000,sigquit", "RINGO_PROCS=2", NULL };
    tu_run_child("deadlock_with_monitor", env, 30, &res);
    if (!res.exited || res.code != 2)
        print_output("deadlock_with_monitor", &res);
    assert_true(res.exited);
    assert_int_equal(res.code, 2);
    assert_non_null(strstr(res.out, "fatal error: all goroutines are asleep - deadlock!\n"));
}

/* ------------------------------------------------------------------ gdb */

static void test_debug_gdb_info_goroutines_and_bt(void **state)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    skip(); /* sanitizer runtimes and ptrace do not mix well; the plain build covers gdb */
#endif
    if (!have_prog("gdb"))
        skip();
    char script[4096];
    const char *src = getenv("top_srcdir");
    snprintf(script, sizeof script, "source %s/tools/ringo-gdb.py", src && *src ? src : RINGO_SRCDIR);
    char *argv[] = {
        (char *)"gdb", (char *)"-batch", (char *)"-nx", (char *)"-ex", (char *)"set debuginfod enabled off",
        (char *)"-ex", script, (char *)"-ex", (char *)"break debug_gdb_stop_here", (char *)"-ex", (char *)"run",
        (char *)"-ex", (char *)"echo ==== info\\n", (char *)"-ex", (char *)"info goroutines",
        (char *)"-ex", (char *)"echo ==== parked\\n", (char *)"-ex", (char *)"goroutine gdb_target_goid bt",
        (char *)"-ex", (char *)"echo ==== running\\n", (char *)"-ex", (char *)"goroutine gdb_spin_goid bt",
        (char *)"-ex", (char *)"echo ==== self\\n", (char *)"-ex", (char *)"bt",
        (char *)"-ex", (char *)"echo ==== end\\n", (char *)"-ex", (char *)"kill",
        (char *)"--args", self_path(), (char *)"--child", (char *)"gdb_target", NULL,
    };
    static const char *const env[] = { "RINGO_PROCS=2", NULL };
    tu_run_prog(argv, env, 120, &res);
    if (strstr(res.out, "ptrace: Operation not permitted") || strstr(res.out, "Could not trace the inferior"))
        skip();
    const char *info = strstr(res.out, "==== info\n"), *parked = strstr(res.out, "==== parked\n"),
               *running = strstr(res.out, "==== running\n"), *selfbt = strstr(res.out, "==== self\n"),
               *end = strstr(res.out, "==== end\n");
    if (!info || !parked || !running || !selfbt || !end)
        print_output("gdb", &res);
    assert_non_null(info);
    assert_non_null(end);
    char *text = strndup(info, (size_t)(parked - info));
    /* "  ID  Name  State  Wait reason  Function  Where" */
    expect_match(text, "^  [0-9]+ +- +waiting +chan receive +debug_parked_entry +debug_deep_b \\([^)]*test_debug.c:[0-9]+\\)$");
    expect_match(text, "^  [0-9]+ +napper +waiting +sleep +debug_sleeper +debug_sleeper \\(");
    expect_match(text, "^  [0-9]+ +big-napper +waiting +sleep +debug_sleeper +debug_sleeper \\(");
    if (ringo_procs() >= 2)
        expect_match(text, "^\\* [0-9]+ +- +running +- +debug_spin_entry +worker [01], thread [0-9]+: debug_spin_leaf \\(");
    free(text);
    /* the parked goroutine's stack, from the switch down to the trampoline, nothing above */
    text = strndup(parked, (size_t)(running - parked));
    if (count_matches(text, "in debug_deep_b ") != 1)
        print_output("gdb", &res);
    expect_match(text, "^#[0-9]+ +0x[0-9a-f]+ in debug_deep_b \\(\\) at [^\n]*test_debug.c:[0-9]+\n"
                       "#[0-9]+ +0x[0-9a-f]+ in debug_deep_a \\(\\) at [^\n]*\n"
                       "#[0-9]+ +0x[0-9a-f]+ in debug_parked_entry \\(done=[^\n]*\n"
                       "#[0-9]+ +0x[0-9a-f]+ in g_entry \\([^\n]*\n"
                       "#[0-9]+ +0x[0-9a-f]+ in sched_ctx_trampoline \\(\\)[^\n]*\n");
    assert_true(last_line_has(text, "in sched_ctx_trampoline ()"));
    assert_int_equal(count_matches(text, "Backtrace stopped"), 0);
    free(text);
    if (ringo_procs() >= 2) {
        text = strndup(running, (size_t)(selfbt - running));
        expect_match(text, "debug_spin_leaf \\(\\) at [^\n]*\n#1 +0x[0-9a-f]+ in debug_spin_mid \\(\\)");
        expect_match(text, "in sched_ctx_trampoline \\(\\)");
        free(text);
    }
    /* registers put back: the thread's own stack is intact */
    text = strndup(selfbt, (size_t)(end - selfbt));
    expect_match(text, "^#0 +debug_gdb_stop_here \\(goid=[0-9]+\\) at [^\n]*\n#1 +0x[0-9a-f]+ in child_gdb_target \\(\\)");
    free(text);
}

/* ------------------------------------------------------------------ perf */

static void test_debug_perf_unwinds_goroutine_to_trampoline(void **state)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    skip(); /* the plain build covers perf; sanitizer builds change frames */
#endif
    if (!have_prog("perf"))
        skip();
    char data[] = "/tmp/ringo-perf-XXXXXX";
    int fd = mkstemp(data);
    if (fd < 0)
        skip();
    close(fd);
    char *rec[] = { (char *)"perf", (char *)"record", (char *)"-q", (char *)"-e", (char *)"cpu-clock",
                    (char *)"-F", (char *)"2000", (char *)"-g", (char *)"-o", data, (char *)"--", self_path(),
                    (char *)"--child", (char *)"perf_target", NULL };
    static const char *const env[] = { "RINGO_PROCS=2", NULL };
    if (!tu_run_prog(rec, env, 60, &res) || !res.exited || res.code != 0) {
        print_output("perf record (not available or not permitted: skipped)", &res);
        unlink(data);
        skip();
    }
    char text[] = "/tmp/ringo-perf-script-XXXXXX";
    fd = mkstemp(text);
    if (fd < 0) {
        unlink(data);
        skip();
    }
    close(fd);
    char *script[] = { (char *)"perf", (char *)"script", (char *)"-i", data, (char *)"-F", (char *)"tid,ip,sym", NULL };
    tu_run_prog_to(script, NULL, 60, &res, text);
    unlink(data);
    if (!res.exited || res.code != 0)
        print_output("perf script", &res);
    assert_true(res.exited);
    assert_int_equal(res.code, 0);
    FILE *f = fopen(text, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long tl = ftell(f);
    rewind(f);
    char *out = malloc((size_t)tl + 1);
    out[fread(out, 1, (size_t)tl, f)] = 0;
    fclose(f);
    unlink(text);
    /* perf script prints a sample as a header line, then one line per frame ("addr sym"),
     * leaf first, then a blank line. Every sample taken in debug_spin_leaf must unwind whole,
     * through the goroutine's frames to g_entry and the trampoline, and stop there. */
    static const char *const chain[] = { "debug_spin_leaf", "debug_spin_mid", "debug_spin_top",
                                         "debug_spin_entry", "g_entry", "sched_ctx_trampoline" };
    int leaf = 0, whole = 0;
    char *save = NULL;
    for (char *smp = strtok_r(out, "\n", &save); smp;) {
        /* one sample: lines until a blank one (strtok_r skips it, so split by hand) */
        char *names[128];
        int nf = 0;
        char *line = strtok_r(NULL, "\n", &save);
        while (line && line[0] == '\t') { /* frames; a header is the tid, right-aligned with spaces */
            char addr[64], sym[256];
            if (nf < 128 && sscanf(line, " %63s %255s", addr, sym) == 2)
                names[nf++] = strdup(sym);
            line = strtok_r(NULL, "\n", &save);
        }
        for (int i = 0; i < nf; i++) {
            if (strcmp(names[i], chain[0]) != 0)
                continue;
            leaf++;
            bool ok = i + 6 == nf; /* the trampoline is the last frame */
            for (int k = 0; ok && k < 6; k++)
                ok = strcmp(names[i + k], chain[k]) == 0;
            whole += ok;
            if (!ok && leaf - whole <= 3) {
                fprintf(stderr, "# broken chain:");
                for (int k = 0; k < nf; k++)
                    fprintf(stderr, " %s", names[k]);
                fprintf(stderr, "\n");
            }
            break;
        }
        for (int i = 0; i < nf; i++)
            free(names[i]);
        smp = line; /* the next sample's header */
    }
    fprintf(stderr, "# perf: %d samples in debug_spin_leaf, %d with the whole chain\n", leaf, whole);
    free(out);
    assert_true(leaf >= 10); /* 400 ms at 2 kHz */
    assert_int_equal(whole, leaf);
}

/* ------------------------------------------------------------------ valgrind */

static void test_debug_valgrind_runs_to_the_end(void **state)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    skip(); /* valgrind cannot run sanitized programs */
#endif
    if (!have_prog("valgrind"))
        skip();
    static const char *const env[] = { "RINGO_PROCS=2", NULL };
    /* valgrind's core alone (no checking): it used to hang for good, a worker asleep in
     * io_uring_enter holding valgrind's global lock */
    char *none[] = { (char *)"valgrind", (char *)"-q", (char *)"--tool=none", self_path(), (char *)"--child",
                     (char *)"small_program", NULL };
    tu_run_prog(none, env, 60, &res);
    if (!res.exited || res.code != 0 || !strstr(res.out, "received 400"))
        print_output("valgrind --tool=none", &res);
    assert_true(res.exited);
    assert_int_equal(res.code, 0);
    assert_non_null(strstr(res.out, "received 400"));
#ifdef RINGO_VALGRIND
    /* stacks registered (--enable-valgrind): memcheck follows every switch and finds nothing */
    char *memcheck[] = { (char *)"valgrind", (char *)"-q", (char *)"--error-exitcode=99", self_path(),
                         (char *)"--child", (char *)"small_program", NULL };
    tu_run_prog(memcheck, env, 120, &res);
    if (!res.exited || res.code != 0 || !strstr(res.out, "received 400"))
        print_output("valgrind (memcheck)", &res);
    assert_true(res.exited);
    assert_int_equal(res.code, 0);
    assert_non_null(strstr(res.out, "received 400"));
#endif
}

/* ------------------------------------------------------------------ sanitizers */

static void test_debug_asan_catches_heap_use_after_free_in_goroutine(void **state)
{
#if defined(__SANITIZE_ADDRESS__)
    static const char *const env[] = { "ASAN_OPTIONS=detect_leaks=0", NULL };
    tu_run_child("asan_uaf", env, 60, &res);
    if (!strstr(res.out, "heap-use-after-free"))
        print_output("asan_uaf", &res);
    assert_false(res.exited && res.code == 0);
    expect_match(res.out, "ERROR: AddressSanitizer: heap-use-after-free on address");
    expect_match(res.out, "READ of size 1 at ");
    expect_match(res.out, "#[0-9]+ 0x[0-9a-f]+ in debug_asan_uaf ");
    expect_match(res.out, "freed by thread T[0-9]+ here:");
#else
    skip(); /* only in builds with -fsanitize=address (configure --enable-sanitizers=address) */
#endif
}

static void test_debug_asan_catches_stack_overflow_in_goroutine(void **state)
{
#if defined(__SANITIZE_ADDRESS__)
    static const char *const env[] = { "ASAN_OPTIONS=detect_leaks=0", NULL };
    tu_run_child("asan_stack", env, 60, &res);
    if (!strstr(res.out, "stack-buffer-overflow"))
        print_output("asan_stack", &res);
    assert_false(res.exited && res.code == 0);
    expect_match(res.out, "ERROR: AddressSanitizer: stack-buffer-overflow on address");
    expect_match(res.out, "WRITE of size 1 at ");
    expect_match(res.out, "#[0-9]+ 0x[0-9a-f]+ in debug_asan_stack_overflow ");
    /* the variable is named: ASan knows the frame on the goroutine's stack */
    expect_match(res.out, "'buf' \\(line [0-9]+\\) <== Memory access at offset [0-9]+ overflows this variable");
#else
    skip();
#endif
}

static void test_debug_tsan_catches_race_between_goroutines(void **state)
{
#if defined(__SANITIZE_THREAD__)
    static const char *const env[] = { "RINGO_PROCS=2", "TSAN_OPTIONS=halt_on_error=0", NULL };
    /* TSan reports this race in about 7 runs of 10 here (a run without a report finishes
     * normally: both racers ran, on two threads); up to five runs, so that a build in which
     * TSan cannot see races between goroutines at all still fails */
    for (int attempt = 0; attempt < 5; attempt++) {
        tu_run_child("tsan_race", env, 60, &res);
        if (strstr(res.out, "data race") || !res.exited)
            break;
    }
    if (!strstr(res.out, "data race"))
        print_output("tsan_race", &res);
    expect_match(res.out, "WARNING: ThreadSanitizer: data race");
    expect_match(res.out, "#[0-9]+ debug_tsan_racer [^\n]*test_debug.c:[0-9]+");
#else
    skip(); /* only in builds with -fsanitize=thread */
#endif
}

int main(int argc, char **argv)
{
    tu_maybe_child(argc, argv, scenarios);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_debug_dump_names_functions_and_callers),
        cmocka_unit_test(test_debug_dump_shows_running_goroutine_and_worker),
        cmocka_unit_test(test_debug_stats_printed_at_exit),
        cmocka_unit_test(test_debug_schedtrace_one_line_per_worker),
        cmocka_unit_test(test_debug_hog_names_goroutine_and_frames),
        cmocka_unit_test(test_debug_hog_blocked_in_system_call),
        cmocka_unit_test(test_debug_sigquit_dumps_and_exits_2),
        cmocka_unit_test(test_debug_monitor_does_not_hide_deadlock),
        cmocka_unit_test(test_debug_gdb_info_goroutines_and_bt),
        cmocka_unit_test(test_debug_perf_unwinds_goroutine_to_trampoline),
        cmocka_unit_test(test_debug_valgrind_runs_to_the_end),
        cmocka_unit_test(test_debug_asan_catches_heap_use_after_free_in_goroutine),
        cmocka_unit_test(test_debug_asan_catches_stack_overflow_in_goroutine),
        cmocka_unit_test(test_debug_tsan_catches_race_between_goroutines),
    };
    if (getenv("RINGO_TEST_FILTER"))
        cmocka_set_test_filter(getenv("RINGO_TEST_FILTER"));
    return TU_RUN_GROUP("debug", tests, NULL, NULL);
}
