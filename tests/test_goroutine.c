/* tests/test_goroutine.c — spawning, ids, exit, stacks, guards, stack overflow, bad input. */
#include <ringo.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include "tests/testutil.h"
#include "kernel_iface/stackmem.h"
#include "sched/sched.h"
#include <numa.h>
#include <numaif.h>

/* ------------------------------------------------------------------ helpers */
static long rss_pages(void)
{
    long size = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res;
}

static long max_map_count(void)
{
    long v = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 65530;
        fclose(f);
    }
    return v;
}

static void wait_all_gone(void)
{
    for (int i = 0; i < 10000 && ringo_num_goroutines() != 0; i++)
        ringo_sleep(1000000);
}

/* ------------------------------------------------------------------ bad input */

static void test_goroutine_go_null_is_einval(void **state)
{
    (void)state;
    assert_int_equal(ringo_go(NULL, NULL), -EINVAL);
}

static void test_goroutine_init_after_start_is_ealready(void **state)
{
    (void)state;
    struct ringo_config c = { .procs = 1, .pin = -1 };
    ringo_procs(); /* starts the runtime */
    assert_int_equal(ringo_init(&c), -EALREADY);
    assert_int_equal(ringo_init(NULL), -EINVAL);
}

static int child_bad_config(void)
{
    struct ringo_config bad[] = {
        { .pin = 7 },
        { .pin = -1, .stack_size = 100 },
        { .pin = -1, .ring_entries = 1u << 20 },
        { .pin = -1, .procs = 100000 },
    };
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (ringo_init(&bad[i]) != -EINVAL)
            return 10 + (int)i;
    if (ringo_num_goroutines() != 0)
        return 20;
    struct ringo_config good = { .procs = 3, .stack_size = 65536, .pin = 0 };
    if (ringo_init(&good) != 0)
        return 21;
    if (ringo_procs() != 3)
        return 22; /* explicit settings win over RINGO_PROCS=1 in the env */
    return 0;
}

static void test_goroutine_bad_config_is_einval_and_starts_nothing(void **state)
{
    (void)state;
    struct child_result r;
    const char *env[] = { "RINGO_PROCS=1", NULL };
    tu_run_child("bad_config", env, 30, &r);
    assert_true(r.exited);
    assert_int_equal(r.code, 0);
}

static int child_env_procs(void) { return ringo_procs() == 3 ? 0 : 1; }

static void test_goroutine_env_sets_procs(void **state)
{
    (void)state;
    struct child_result r;
    const char *env[] = { "RINGO_PROCS=3", "RINGO_STACK_SIZE=65536", NULL };
    tu_run_child("env_procs", env, 30, &r);
    assert_true(r.exited);
    assert_int_equal(r.code, 0);
}

/* ------------------------------------------------------------------ a million, exactly once */
#define MILLION 1000000
static unsigned char *ran;
static struct ringo_waitgroup mwg;

static void mark(void *a)
{
    ran[(uintptr_t)a]++;
    ringo_wg_done(&mwg);
}

/* under TSan a quarter as many as it allows alive at once (every one may be) */
static const uintptr_t mtotal = TU_TSAN ? TU_TSAN_MAX_ALIVE / 4 * 4 : MILLION;

static void spawn_range(void *a)
{
    uintptr_t base = (uintptr_t)a;
    for (uintptr_t i = 0; i < mtotal / 4; i++)
        assert_true(ringo_go(mark, (void *)(base + i)) > 0);
    ringo_wg_done(&mwg);
}

static void test_goroutine_million_run_exactly_once(void **state)
{
    (void)state;
    ran = calloc(mtotal, 1);
    tu_watchdog_arm("million goroutines", 120);
    ringo_wg_add(&mwg, (int64_t)mtotal + 3);
    /* three spawners are goroutines; the last quarter comes from this plain thread */
    for (uintptr_t k = 0; k < 3; k++)
        ringo_go(spawn_range, (void *)(k * (mtotal / 4)));
    for (uintptr_t i = 3 * (mtotal / 4); i < mtotal; i++)
        assert_true(ringo_go(mark, (void *)i) > 0);
    ringo_wg_wait(&mwg);
    tu_watchdog_disarm();
    size_t bad = 0;
    for (size_t i = 0; i < mtotal; i++)
        bad += ran[i] != 1;
    assert_int_equal(bad, 0);
    free(ran);
    wait_all_gone();
    assert_int_equal(ringo_num_goroutines(), 0);
}

/* ------------------------------------------------------------------ many alive at once */
static struct ringo_waitgroup started, release, finished;

static void park_until_released(void *a)
{
    (void)a;
    ringo_wg_done(&started);
    ringo_wg_wait(&release);
    ringo_wg_done(&finished);
}

static int alive_at_once(long n)
{
    ringo_wg_add(&release, 1);
    ringo_wg_add(&started, n);
    ringo_wg_add(&finished, n);
    for (long i = 0; i < n; i++)
        if (ringo_go(park_until_released, NULL) <= 0)
            return 1;
    ringo_wg_wait(&started);
    if ((long)ringo_num_goroutines() < n)
        return 2;
    ringo_wg_done(&release);
    ringo_wg_wait(&finished);
    return 0;
}

static void test_goroutine_300k_alive_at_once(void **state)
{
    (void)state;
    long n = 300000;
    if (tu_on_valgrind() || (TU_TSAN && n > TU_TSAN_MAX_ALIVE))
        skip(); /* 300k stacks: hours under valgrind; beyond TSan's thread limit */
    tu_skip_if_emulated("qemu-user ignores MADV_GUARD_INSTALL, so guards are mprotect's, one mapping "
                        "per stack, and 300k stacks exceed vm.max_map_count");
    /* more guarded stacks than vm.max_map_count allows as separate mappings */
    assert_true(n > max_map_count());
    assert_int_equal(stk_guard_kind(), STK_GUARD_MADVISE);
    tu_watchdog_arm("300k alive", 180);
    long before = rss_pages();
    assert_int_equal(alive_at_once(n), 0);
    long after = rss_pages();
    tu_watchdog_disarm();
    /* a parked goroutine costs about one page: the descriptor and its first frames */
    print_message("# resident pages per parked goroutine: %.2f\n", (double)(after - before) / (double)n);
    wait_all_gone();
}

/* ------------------------------------------------------------------ ids, self, exit */
static struct ringo_waitgroup self_wg;
static void record_self(void *a)
{
    *(int64_t *)a = ringo_self();
    ringo_wg_done(&self_wg); /* orders the store before the checks below */
}

static void test_goroutine_ids_are_positive_unique_and_self(void **state)
{
    (void)state;
    enum { N = 1000 };
    static int64_t seen[N], ids[N];
    ringo_wg_add(&self_wg, N);
    for (int i = 0; i < N; i++) {
        ids[i] = ringo_go(record_self, &seen[i]);
        assert_true(ids[i] > 0);
    }
    ringo_wg_wait(&self_wg);
    wait_all_gone();
    for (int i = 0; i < N; i++) {
        assert_int_equal(seen[i], ids[i]);
        for (int j = 0; j < i; j++)
            assert_true(ids[j] != ids[i]);
    }
    assert_int_equal(ringo_self(), 0);
}

/* One goroutine spawns 100,000 short ones, one at a time: each runs first and ends, so the same
 * stack slot serves them all. Under TSan this also checks that a slot's fiber does not keep the
 * frames of the goroutines that ended on it (its shadow stack holds 65,536). */
static atomic_long reused_ran;
static void reused_child(void *a)
{
    (void)a;
    atomic_fetch_add_explicit(&reused_ran, 1, memory_order_relaxed);
}
static void reused_parent(void *wg)
{
    for (int i = 0; i < 100000; i++)
        assert_true(ringo_go(reused_child, NULL) > 0);
    ringo_wg_done(wg);
}

static void test_goroutine_slot_reused_100k_times(void **state)
{
    (void)state;
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    tu_watchdog_arm("slot reuse", 120);
    ringo_wg_add(&wg, 1);
    ringo_go(reused_parent, &wg);
    ringo_wg_wait(&wg);
    wait_all_gone();
    tu_watchdog_disarm();
    assert_int_equal(atomic_load(&reused_ran), 100000);
}

static atomic_int after_exit;
static void exits_early(void *a)
{
    struct ringo_waitgroup *wg = a;
    ringo_wg_done(wg);
    ringo_exit();
    atomic_store(&after_exit, 1); /* never runs */
}

static void test_goroutine_exit_ends_only_the_goroutine(void **state)
{
    (void)state;
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    ringo_wg_add(&wg, 100);
    for (int i = 0; i < 100; i++)
        ringo_go(exits_early, &wg);
    ringo_wg_wait(&wg);
    wait_all_gone();
    assert_int_equal(atomic_load(&after_exit), 0);
    assert_int_equal(ringo_num_goroutines(), 0);
}

/* ------------------------------------------------------------------ stacks */
static volatile char *volatile stack_sink; /* the buffer's address escapes: its layout is real */

static void touch_stack(void *a)
{
    volatile char buf[64 * 1024];
    stack_sink = buf; /* else clang packs the 16 touched bytes together: nothing to give back */
    for (size_t i = 0; i < sizeof buf; i += 4096)
        buf[i] = 1;
    ringo_wg_done(a);
}

static void test_goroutine_surplus_stack_pages_are_given_back(void **state)
{
    (void)state;
    if (tu_on_valgrind() || TU_TSAN)
        skip(); /* resident size there is the tool's shadow memory, not our stacks */
    /* pools keep at most 256 stacks per worker and 1024 global with their pages; every stack
     * beyond is given back, so growth is bounded by the hot capacity, not by N */
    enum { N = 8000 };
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    long before = rss_pages();
    ringo_wg_add(&wg, N);
    /* from the plain thread: they pile up in the global queue, so many stacks are in use */
    for (int i = 0; i < N; i++)
        ringo_go(touch_stack, &wg);
    ringo_wg_wait(&wg);
    wait_all_gone();
    long after = rss_pages();
    /* each touched 16 pages; without give-back the growth would be up to N*16 pages */
    print_message("# rss growth after %d stacks of 64 KiB: %ld pages\n", N, after - before);
    assert_true(after - before < N * 16 / 3);
}

/* Decay (goroutine.c S3): once the load is over, even the stacks the pools keep warm go back.
 * 8,000 goroutines alive at once, 64 KiB of stack touched each; a quiet second later the
 * growth must be what the floors keep (64 per worker pool after its idle trim, 64 per node's
 * global pool: about 200 stacks), not the 1,536 warm stacks that stayed before. */
struct held {
    struct ringo_waitgroup touched, go;
};

static void touch_and_hold(void *a)
{
    struct held *h = a;
    volatile char buf[64 * 1024];
    stack_sink = buf; /* else clang packs the 16 touched bytes together (CI: +1 page per stack) */
    for (size_t i = 0; i < sizeof buf; i += 4096)
        buf[i] = 1;
    ringo_wg_done(&h->touched);
    ringo_wg_wait(&h->go);
}

/* In a fresh process: what earlier tests left in the pools decays meanwhile otherwise. */
static int child_pools_decay(void)
{
    enum { N = 8000 };
    static struct held h;
    h = (struct held){ RINGO_WAITGROUP_INIT, RINGO_WAITGROUP_INIT };
    ringo_init(NULL);
    usleep(100000);
    long before = rss_pages();
    ringo_wg_add(&h.touched, N);
    ringo_wg_add(&h.go, 1);
    for (int i = 0; i < N; i++)
        ringo_go(touch_and_hold, &h);
    ringo_wg_wait(&h.touched);
    long peak = rss_pages();
    ringo_wg_done(&h.go);
    while (ringo_num_goroutines() != 0)
        usleep(1000);
    int64_t t0 = ringo_now();
    long after = rss_pages();
    while (after - before > N * 16 / 20 && ringo_now() - t0 < 5000000000LL) {
        usleep(50000);
        after = rss_pages();
    }
    printf("%d stacks of 64 KiB: +%ld pages at the peak, +%ld %lld ms after the last one ended\n", N,
           peak - before, after - before, (long long)((ringo_now() - t0) / 1000000));
    if (peak - before < N * 16 / 2)
        return 3; /* the load did not hold its stacks: the test proves nothing */
    return after - before <= N * 16 / 20 ? 0 : 4; /* 400 stacks' worth: the floors and slack */
}

static void test_goroutine_pools_give_pages_back_after_the_load(void **state)
{
    (void)state;
    if (tu_on_valgrind() || TU_SANITIZED)
        skip(); /* resident size there is the tools' shadow memory (which madvise keeps), not our stacks */
    tu_skip_if_emulated("resident size is the emulator's too: qemu-user's page descriptors and "
                        "translations grow with the pages the load touched");
    static const char *const env[] = { "RINGO_PROCS=2", NULL };
    tu_check_child("pools_decay", env, 60, NULL);
}

/* ------------------------------------------------------------------ overflow and guards */
static int recurse(int n)
{
    volatile char pad[512];
    pad[0] = (char)n;
    return n == 0 ? 0 : recurse(n - 1) + pad[0];
}

static void overflow_g(void *a)
{
    (void)a;
    recurse(1 << 30);
}

static int child_overflow(void)
{
    ringo_go(overflow_g, NULL);
    ringo_sleep(5LL * 1000000000);
    return 3; /* not reached */
}

static void check_overflow(const char *const *env)
{
    struct child_result r;
    tu_run_child("overflow", env, 30, &r);
    assert_false(r.exited);
    assert_int_equal(r.signo, SIGABRT);
    assert_non_null(strstr(r.out, "fatal error: stack overflow in goroutine"));
    assert_non_null(strstr(r.out, "RINGO_STACK_SIZE"));
}

static void test_goroutine_stack_overflow_reported_madvise_guard(void **state)
{
    (void)state;
    const char *env[] = { "RINGO_STACK_SIZE=65536", NULL };
    check_overflow(env);
}

static void test_goroutine_stack_overflow_reported_mprotect_guard(void **state)
{
    (void)state;
    const char *env[] = { "RINGO_STACK_SIZE=65536", "RINGO_DISABLE=guard_madvise", NULL };
    check_overflow(env);
}

/* Issue 11 item 4: frames larger than one page (Go's TestStackOverflow uses 64 KiB frames).
 * Each frame touches its lowest byte first, so a frame that is larger than the guard
 * would step over it: into unmapped memory below slot 0 (a bare SIGSEGV), or into the slot
 * below, another goroutine's stack and descriptor. Neighbours are parked first so that the
 * overflowing goroutine's slot has one below it, and the report must name that goroutine.
 * This file is built with -fno-stack-clash-protection (tests/core.mk): code built with probes
 * touches every page of a frame top down and hits even a one-page guard (the 512-byte frames
 * above show that path); code built without them is what the large guard is for. */
static volatile size_t big_low; /* 0, read at run time: clang keeps only the bytes it sees used */
static __attribute__((noinline)) int recurse_big(int n)
{
    volatile char pad[64 * 1024];
    pad[big_low] = (char)n; /* the lowest byte first: the frame jumps, no probes */
    return n == 0 ? 0 : recurse_big(n - 1) + pad[big_low];
}

static struct ringo_waitgroup big_release;
static void big_park(void *a)
{
    (void)a;
    ringo_wg_wait(&big_release);
}

static void overflow_big_g(void *a)
{
    (void)a;
    fprintf(stderr, "overflowing goroutine %lld\n", (long long)ringo_self());
    recurse_big(1 << 30);
}

static int child_overflow_big(void)
{
    ringo_wg_add(&big_release, 1);
    for (int i = 0; i < 4; i++)
        ringo_go(big_park, NULL);
    ringo_go(overflow_big_g, NULL);
    ringo_sleep(5LL * 1000000000);
    return 3; /* not reached */
}

static void check_overflow_big(const char *const *env)
{
    struct child_result r;
    tu_run_child("overflow_big", env, 30, &r);
    print_message("# child: exited %d code %d signal %d, output:\n%s\n", r.exited, r.code, r.signo, r.out);
    long long id = 0;
    const char *p = strstr(r.out, "overflowing goroutine ");
    assert_non_null(p);
    assert_int_equal(sscanf(p, "overflowing goroutine %lld", &id), 1);
    char want[96];
    snprintf(want, sizeof want, "fatal error: stack overflow in goroutine %lld ", id);
    assert_non_null(strstr(r.out, want));
    assert_false(r.exited);
    assert_int_equal(r.signo, SIGABRT);
}

static void test_goroutine_stack_overflow_64k_frames_reported_madvise_guard(void **state)
{
    (void)state;
    const char *env[] = { "RINGO_STACK_SIZE=262144", NULL };
    check_overflow_big(env);
}

static void test_goroutine_stack_overflow_64k_frames_reported_mprotect_guard(void **state)
{
    (void)state;
    const char *env[] = { "RINGO_STACK_SIZE=262144", "RINGO_DISABLE=guard_madvise", NULL };
    check_overflow_big(env);
}

/* RINGO_STACK_GUARD: the guard size, rounded up to whole pages; a bad value is refused with a
 * message and the default kept. The child prints what it got. */
static int child_guard_size(void)
{
    if (ringo_procs() == 0)
        return 1;
    fprintf(stderr, "guard %zu\n", stk_guard_bytes());
    /* a goroutine runs, 64 KiB of its stack touched, above the guard */
    struct ringo_waitgroup wg = RINGO_WAITGROUP_INIT;
    ringo_wg_add(&wg, 1);
    if (ringo_go(touch_stack, &wg) <= 0)
        return 2;
    ringo_wg_wait(&wg);
    return 0;
}

static size_t run_guard_size(const char *setting, char *out, size_t outlen)
{
    struct child_result r;
    const char *env[] = { setting, NULL };
    tu_run_child("guard_size", env, 30, &r);
    size_t n = strnlen(r.out, outlen - 1);
    memcpy(out, r.out, n);
    out[n] = 0;
    assert_true(r.exited);
    assert_int_equal(r.code, 0);
    /* the child's own line: "ringo: MADV_GUARD_INSTALL unavailable; mprotect guard pages ..."
     * (a kernel before 6.13, or qemu-user) also has "guard " in it */
    const char *p = strncmp(r.out, "guard ", 6) == 0 ? r.out : strstr(r.out, "\nguard ");
    assert_non_null(p);
    return (size_t)strtoull(p + (*p == '\n' ? 7 : 6), NULL, 10);
}

static void test_goroutine_stack_guard_env(void **state)
{
    (void)state;
    char out[512];
    assert_int_equal(run_guard_size("RINGO_STACK_GUARD=", out, sizeof out), STK_GUARD_DEFAULT);
    assert_int_equal(run_guard_size("RINGO_STACK_GUARD=1m", out, sizeof out), 1024 * 1024);
    assert_int_equal(run_guard_size("RINGO_STACK_GUARD=5000", out, sizeof out), 8192); /* whole pages */
    assert_int_equal(run_guard_size("RINGO_STACK_GUARD=100", out, sizeof out), STK_GUARD_DEFAULT);
    assert_non_null(strstr(out, "ringo: ignoring RINGO_STACK_GUARD=100"));
    assert_int_equal(run_guard_size("RINGO_STACK_GUARD=64q", out, sizeof out), STK_GUARD_DEFAULT);
    assert_non_null(strstr(out, "ringo: ignoring RINGO_STACK_GUARD=64q"));
}

static void null_write_g(void *a)
{
    *(volatile int *)a = 1;
}

static int child_null_write(void)
{
    /* a page no one may touch, outside the stack arena: a real fault that is not a guard hit
     * (a NULL store would be caught by UBSan before it faults) */
    void *bad = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ringo_go(null_write_g, bad);
    ringo_sleep(5LL * 1000000000);
    return 3;
}

static void test_goroutine_other_segfault_passed_on(void **state)
{
    (void)state;
    struct child_result r;
    tu_run_child("null_write", NULL, 30, &r);
    assert_null(strstr(r.out, "stack overflow"));
#if defined(__SANITIZE_ADDRESS__)
    /* the previous handler is AddressSanitizer's: it reports the fault and exits */
    assert_non_null(strstr(r.out, "AddressSanitizer: SEGV"));
#elif TU_TSAN
    /* the previous handler is ThreadSanitizer's: it reports the fault and dies */
    assert_non_null(strstr(r.out, "ThreadSanitizer: SEGV"));
#else
    assert_false(r.exited);
    assert_int_equal(r.signo, SIGSEGV);
#endif
}

/* mprotect fallback: works, says how many goroutines it allows, and running out of stacks is
 * -ENOMEM with the runtime still working afterwards */
static struct ringo_waitgroup fb_release;
static void fb_park(void *a)
{
    ringo_wg_wait(&fb_release);
    ringo_wg_done(a);
}

static int child_guard_fallback(void)
{
    if (ringo_procs() == 0 || stk_guard_kind() != STK_GUARD_MPROTECT)
        return 1;
    struct ringo_waitgroup done = RINGO_WAITGROUP_INIT;
    ringo_wg_add(&fb_release, 1);
    long n = 0;
    int64_t r;
    for (;;) {
        ringo_wg_add(&done, 1);
        r = ringo_go(fb_park, &done);
        if (r <= 0) {
            ringo_wg_add(&done, -1);
            break;
        }
        n++;
        if (n > 10000000)
            return 2;
    }
    if (r != -ENOMEM)
        return 3;
    fprintf(stderr, "spawned %ld before ENOMEM\n", n);
    ringo_wg_done(&fb_release);
    ringo_wg_wait(&done);
    /* wg_done comes before a goroutine's exit gives its stack back: spawning at once could
     * still find every slot taken (seen under qemu-user, where the exits lag) */
    while (ringo_num_goroutines() != 0)
        usleep(1000);
    /* the runtime keeps working: stacks are reused */
    struct ringo_waitgroup again = RINGO_WAITGROUP_INIT;
    ringo_wg_add(&again, 1000);
    for (int i = 0; i < 1000; i++) {
        if (ringo_go(touch_stack, &again) <= 0)
            return 4;
    }
    ringo_wg_wait(&again);
    return n > 1000 ? 0 : 5;
}

static void test_goroutine_mprotect_guard_fallback_and_enomem(void **state)
{
    (void)state;
    if (tu_on_valgrind() || TU_TSAN)
        skip(); /* fills vm.max_map_count: beyond valgrind's segment table, TSan's thread limit */
    /* Open (see the session note): under qemu-user, which emulates every mprotect and keeps
     * its own map of the guest's pages, filling vm.max_map_count took over 200 s in one run and
     * ended with "sync: negative WaitGroup counter" in another; 3 other runs there passed, and
     * every native build (plain, ASan, clang, valgrind skip aside) passes it. */
    tu_skip_if_emulated("filling vm.max_map_count with mprotect guards is pathological under "
                        "qemu-user (open: a 'negative WaitGroup counter' seen once there)");
    struct child_result r;
    const char *env[] = { "RINGO_DISABLE=guard_madvise", "RINGO_STACK_SIZE=65536", NULL };
    tu_run_child("guard_fallback", env, 120, &r);
    if (!r.exited || r.code != 0)
        print_message("# child output: %s\n", r.out);
    assert_true(r.exited);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "mprotect guard pages allow about"));
}

/* ------------------------------------------------------------------ NUMA placement */
struct where { void *stack_addr; int worker_node_id; struct ringo_waitgroup wg; };
static void report_stack(void *p)
{
    struct where *a = p;
    volatile char here[64];
    here[0] = 1;
    a->stack_addr = (void *)here;
    struct worker *w = sched_cur_worker();
    a->worker_node_id = sched.node_ids[w->node];
    ringo_wg_done(&a->wg);
}

static void test_goroutine_stack_pages_are_on_the_workers_node(void **state)
{
    (void)state;
    if (numa_available() < 0)
        skip();
    struct where a = { .wg = RINGO_WAITGROUP_INIT };
    ringo_wg_add(&a.wg, 1);
    ringo_go(report_stack, &a);
    ringo_wg_wait(&a.wg);
    assert_true(a.worker_node_id >= 0);
    /* the chunk carries a preferred policy for the worker's node */
    int mode = -1;
    unsigned long mask[16] = { 0 };
    assert_int_equal(get_mempolicy(&mode, mask, 64 * 16, a.stack_addr, MPOL_F_ADDR), 0);
    assert_int_equal(mode, MPOL_PREFERRED);
    assert_true(mask[a.worker_node_id / 64] & (1ul << (a.worker_node_id % 64)));
    /* and the page itself is there (get_mempolicy and move_pages agree) */
    int node = -1;
    assert_int_equal(get_mempolicy(&node, NULL, 0, a.stack_addr, MPOL_F_NODE | MPOL_F_ADDR), 0);
    assert_int_equal(node, a.worker_node_id);
    void *page = (void *)((uintptr_t)a.stack_addr & ~(uintptr_t)4095);
    int status = -1;
    assert_int_equal(move_pages(0, 1, &page, NULL, &status, 0), 0);
    assert_int_equal(status, a.worker_node_id);
}

/* ------------------------------------------------------------------ options (issue 14) */
static struct ringo_waitgroup opt_wg;
static void opt_done(void *a)
{
    (void)a;
    ringo_wg_done(&opt_wg);
}

static void test_goroutine_opts_bad_input_is_einval(void **state)
{
    (void)state;
    wait_all_gone(); /* what earlier tests started */
    struct ringo_go_opts o = { 0 };
    assert_int_equal(ringo_go_opts(NULL, NULL, &o), -EINVAL);
    assert_int_equal(ringo_go_opts(NULL, NULL, NULL), -EINVAL);
    o.flags = 2; /* the first bit not defined (RINGO_GO_NO_GROUP is 1) */
    assert_int_equal(ringo_go_opts(opt_done, NULL, &o), -EINVAL);
    o.flags = 0x80000000u;
    assert_int_equal(ringo_go_opts(opt_done, NULL, &o), -EINVAL);
    o = (struct ringo_go_opts){ ._r_reserved = { NULL, NULL, NULL, &o } };
    assert_int_equal(ringo_go_opts(opt_done, NULL, &o), -EINVAL);
    o = (struct ringo_go_opts){ .stack_size = (1ull << 30) + 1 };
    assert_int_equal(ringo_go_opts(opt_done, NULL, &o), -EINVAL);
    o.stack_size = SIZE_MAX;
    assert_int_equal(ringo_go_opts(opt_done, NULL, &o), -EINVAL);
    assert_int_equal(ringo_set_name(NULL), -EINVAL);
    /* nothing was started by the refusals; zeroed options and NULL are ringo_go */
    assert_int_equal(ringo_num_goroutines(), 0);
    ringo_wg_add(&opt_wg, 2);
    o = (struct ringo_go_opts){ 0 };
    assert_true(ringo_go_opts(opt_done, NULL, &o) > 0);
    assert_true(ringo_go_opts(opt_done, NULL, NULL) > 0);
    ringo_wg_wait(&opt_wg);
    wait_all_gone();
}

/* A named goroutine parks; the dump names it, between its id and its state. */
static ringo_chan *name_chan;
static struct ringo_waitgroup name_parked;
static void named_recv(void *a)
{
    (void)a;
    ringo_wg_done(&name_parked);
    ringo_chan_recv(name_chan, NULL);
}
static void renames_itself(void *a)
{
    ringo_set_name((const char *)a);
    ringo_wg_done(&name_parked);
    ringo_chan_recv(name_chan, NULL);
}

/* Wait until the dump has a line matching "goroutine ID<middle>[<state>"; returns it (malloc'd). */
static char *dump_line_of(int64_t id, const char *middle, const char *st)
{
    char want[160];
    snprintf(want, sizeof want, "goroutine %lld%s [%s", (long long)id, middle, st);
    for (int i = 0; i < 5000; i++) {
        char *d = tu_dump_string();
        if (strstr(d, want))
            return d;
        free(d);
        usleep(1000);
    }
    char *d = tu_dump_string();
    fprintf(stderr, "no \"%s\" in the dump:\n%s\n", want, d);
    return d;
}

static void test_goroutine_opts_name_in_dump(void **state)
{
    (void)state;
    name_chan = ringo_chan_make(0, 0);
    ringo_wg_add(&name_parked, 5);
    int64_t a = ringo_go_opts(named_recv, NULL, &(struct ringo_go_opts){ .name = "accept-loop" });
    int64_t b = ringo_go_opts(named_recv, NULL,
                              &(struct ringo_go_opts){ .name = "0123456789abcdefghijklmnopqrstuvwxyz" });
    int64_t c = ringo_go_opts(named_recv, NULL, &(struct ringo_go_opts){ .name = "a\"b\nc\\d" });
    int64_t d = ringo_go(renames_itself, (void *)"renamed");
    int64_t e = ringo_go_opts(renames_itself, (void *)"", &(struct ringo_go_opts){ .name = "gone" });
    assert_true(a > 0 && b > 0 && c > 0 && d > 0 && e > 0);
    ringo_wg_wait(&name_parked);
    char *out = dump_line_of(a, " \"accept-loop\"", "chan receive, ");
    char want[160];
    snprintf(want, sizeof want, "goroutine %lld \"accept-loop\" [chan receive, ", (long long)a);
    assert_non_null(strstr(out, want));
    free(out);
    /* truncated to 31 bytes */
    out = dump_line_of(b, " \"0123456789abcdefghijklmnopqrstu\"", "chan receive");
    snprintf(want, sizeof want, "goroutine %lld \"0123456789abcdefghijklmnopqrstu\" [", (long long)b);
    assert_non_null(strstr(out, want));
    free(out);
    /* bytes that would break the line are stored as '_' */
    out = dump_line_of(c, " \"a_b_c_d\"", "chan receive");
    snprintf(want, sizeof want, "goroutine %lld \"a_b_c_d\" [", (long long)c);
    assert_non_null(strstr(out, want));
    free(out);
    out = dump_line_of(d, " \"renamed\"", "chan receive");
    snprintf(want, sizeof want, "goroutine %lld \"renamed\" [", (long long)d);
    assert_non_null(strstr(out, want));
    free(out);
    /* "" removes a name: the line is Go's again */
    out = dump_line_of(e, "", "chan receive");
    snprintf(want, sizeof want, "goroutine %lld [chan receive, ", (long long)e);
    assert_non_null(strstr(out, want));
    free(out);
    /* a plain thread can be named too: its dump line */
    assert_int_equal(ringo_set_name("tester"), 0);
    out = tu_dump_string();
    snprintf(want, sizeof want, "thread %lld \"tester\" [running]:", (long long)getpid());
    if (!strstr(out, want))
        fprintf(stderr, "%s\n", out);
    assert_non_null(strstr(out, want));
    free(out);
    assert_int_equal(ringo_set_name(""), 0);
    ringo_chan_close(name_chan);
    wait_all_gone();
    ringo_chan_free(name_chan);
}

/* The deadlock report names the goroutines that have names, on Go's lines. */
static void stuck_forever(void *a)
{
    ringo_chan_recv(a, NULL);
}
static int child_named_deadlock(void)
{
    ringo_chan *c = ringo_chan_make(0, 0);
    int64_t id = ringo_go_opts(stuck_forever, c, &(struct ringo_go_opts){ .name = "stuck-one" });
    ringo_go_opts(stuck_forever, c, &(struct ringo_go_opts){ .name = "big-stuck", .stack_size = 2 << 20 });
    fprintf(stderr, "named goroutine %lld\n", (long long)id);
    ringo_chan_recv(c, NULL);
    return 3; /* not reached: the deadlock report exits 2 */
}

static void test_goroutine_opts_name_in_deadlock_report(void **state)
{
    (void)state;
    tu_skip_if_emulated("qemu-user runs a thread of its own, which ringo's deadlock check "
                        "(sched/debug/deadlock.c) rightly counts as one that could still act");
    struct child_result r;
    tu_run_child("named_deadlock", NULL, 30, &r);
    long long id = 0;
    const char *p = strstr(r.out, "named goroutine ");
    assert_non_null(p);
    assert_int_equal(sscanf(p, "named goroutine %lld", &id), 1);
    char want[96];
    snprintf(want, sizeof want, "\ngoroutine %lld \"stuck-one\" [chan receive]:\n", id);
    if (!strstr(r.out, want))
        fprintf(stderr, "%s\n", r.out);
    assert_true(r.exited);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.out, "fatal error: all goroutines are asleep - deadlock!"));
    assert_non_null(strstr(r.out, want));
    /* the big-stack goroutine is listed too, with its frames */
    assert_non_null(strstr(r.out, "\"big-stuck\" [chan receive]:\n"));
}

/* Deep recursion: frames until `want` bytes of stack are used below top. */
static __attribute__((noinline)) size_t deep(const char *top, size_t want)
{
    volatile char pad[1024];
    pad[0] = 1;
    size_t d = (size_t)(top - (const char *)pad);
    if (d >= want)
        return d;
    return deep(top, want) + (size_t)pad[0] - 1; /* not a tail call */
}

struct deep_arg {
    size_t want, got, stack_size;
    struct ringo_waitgroup wg;
};
static void deep_g(void *p)
{
    struct deep_arg *a = p;
    char here = 0;
    a->got = deep(&here, a->want);
    ringo_wg_done(&a->wg);
}

static void test_goroutine_opts_big_stack_deep_recursion(void **state)
{
    (void)state;
    size_t before = stk_big_count();
    struct deep_arg a = { .want = 3u << 20 };
    ringo_wg_add(&a.wg, 1);
    assert_true(ringo_go_opts(deep_g, &a, &(struct ringo_go_opts){ .stack_size = 4u << 20, .name = "deep" }) > 0);
    ringo_wg_wait(&a.wg);
    assert_true(a.got >= 3u << 20);
    /* a second one reuses the slot the first gave back */
    a.got = 0;
    ringo_wg_add(&a.wg, 1);
    wait_all_gone();
    assert_true(ringo_go_opts(deep_g, &a, &(struct ringo_go_opts){ .stack_size = 3u << 20 }) > 0);
    ringo_wg_wait(&a.wg);
    assert_true(a.got >= 3u << 20);
    wait_all_gone();
    /* one mapping, or two when the second spawn came in the moment between the first counting
     * itself gone and its stack being freed (after its switch-out) */
    assert_true(stk_big_count() - before <= 2);
    /* at or below the runtime's size: an ordinary stack */
    before = stk_big_count();
    ringo_wg_add(&opt_wg, 2);
    assert_true(ringo_go_opts(opt_done, NULL, &(struct ringo_go_opts){ .stack_size = 1 }) > 0);
    assert_true(ringo_go_opts(opt_done, NULL, &(struct ringo_go_opts){ .stack_size = sched.stack_usable }) > 0);
    ringo_wg_wait(&opt_wg);
    wait_all_gone();
    assert_int_equal(stk_big_count(), before);
}

static void test_goroutine_opts_1gib_stack_is_allowed(void **state)
{
    (void)state;
    if (tu_on_valgrind() || TU_SANITIZED)
        skip(); /* 1 GiB of address space: the tools' shadow of it */
    struct deep_arg a = { .want = 64u << 10 };
    ringo_wg_add(&a.wg, 1);
    assert_true(ringo_go_opts(deep_g, &a, &(struct ringo_go_opts){ .stack_size = 1u << 30 }) > 0);
    ringo_wg_wait(&a.wg);
    assert_true(a.got >= 64u << 10);
    wait_all_gone();
}

/* Without the option the same recursion overflows (the report as ever); with a big stack that
 * is still too small, the big stack's guard gives the same report, with its size and name. */
static int child_deep_default(void)
{
    struct deep_arg a = { .want = 3u << 20 };
    ringo_wg_add(&a.wg, 1);
    ringo_go(deep_g, &a);
    ringo_wg_wait(&a.wg);
    return 3; /* not reached */
}
static int child_deep_big_too_small(void)
{
    struct deep_arg a = { .want = 3u << 20 };
    ringo_wg_add(&a.wg, 1);
    ringo_go_opts(deep_g, &a, &(struct ringo_go_opts){ .stack_size = 1u << 20, .name = "too-deep" });
    ringo_wg_wait(&a.wg);
    return 3; /* not reached */
}

static void check_deep_overflow(const char *child, const char *const *env, const char *want)
{
    struct child_result r;
    tu_run_child(child, env, 30, &r);
    if (!strstr(r.out, want))
        fprintf(stderr, "%s\n", r.out);
    assert_false(r.exited);
    assert_int_equal(r.signo, SIGABRT);
    assert_non_null(strstr(r.out, "fatal error: stack overflow in goroutine "));
    assert_non_null(strstr(r.out, want));
}

static void test_goroutine_opts_big_stack_overflow_reported(void **state)
{
    (void)state;
    check_deep_overflow("deep_default", NULL, "(stack size 262144 bytes; raise it");
    const char *const mprotect[] = { "RINGO_DISABLE=guard_madvise", NULL };
    /* 1 MiB, plus the descriptor's page, less the descriptor */
    char want[128];
    snprintf(want, sizeof want, "\"too-deep\" (stack size %zu bytes;",
             (1u << 20) + (size_t)sysconf(_SC_PAGESIZE) - sched_g_reserve());
    check_deep_overflow("deep_big_too_small", NULL, want);
    check_deep_overflow("deep_big_too_small", mprotect, want);
    assert_non_null(strstr(want, "too-deep"));
}

/* A big-stack goroutine is in the dump, with its frames. */
static struct ringo_waitgroup big_dump_parked, big_dump_go;
static void big_dump_g(void *a)
{
    (void)a;
    ringo_wg_done(&big_dump_parked);
    ringo_wg_wait(&big_dump_go);
}

static void test_goroutine_opts_big_stack_in_dump(void **state)
{
    (void)state;
    ringo_wg_add(&big_dump_parked, 1);
    ringo_wg_add(&big_dump_go, 1);
    int64_t id = ringo_go_opts(big_dump_g, NULL, &(struct ringo_go_opts){ .stack_size = 8u << 20, .name = "big" });
    assert_true(id > 0);
    ringo_wg_wait(&big_dump_parked);
    char *out = dump_line_of(id, " \"big\"", "sync.WaitGroup.Wait, ");
    char want[96];
    snprintf(want, sizeof want, "goroutine %lld \"big\" [sync.WaitGroup.Wait, ", (long long)id);
    const char *line = strstr(out, want);
    assert_non_null(line);
    /* its frames were walked: the line has frames under it */
    assert_non_null(strstr(line, "fn=big_dump_g"));
    assert_non_null(strstr(line, "\n\t#0 "));
    free(out);
    ringo_wg_done(&big_dump_go);
    wait_all_gone();
}

/* Many big-stack goroutines made and finished: a few mappings serve them all, and their pages
 * go back when they end. */
struct touch_arg {
    struct ringo_waitgroup wg;
};
static void touch_1m(void *p)
{
    struct touch_arg *a = p;
    char here = 0;
    deep(&here, 1u << 20);
    ringo_wg_done(&a->wg);
}

/* Spawned from a goroutine: the child runs first, on its big stack, the spawner in runnext. */
static void spawn_touchers(void *p)
{
    struct touch_arg *a = p;
    for (int i = 0; i < 8; i++)
        if (ringo_go_opts(touch_1m, a, &(struct ringo_go_opts){ .stack_size = 2u << 20 }) <= 0)
            ringo_wg_done(&a->wg); /* counted as done: the check of every round's count fails below */
}

static void test_goroutine_opts_big_stacks_are_reused_and_given_back(void **state)
{
    (void)state;
    enum { ALIVE = 8, ROUNDS = 100 };
    struct touch_arg a = { RINGO_WAITGROUP_INIT };
    wait_all_gone();
    size_t before = stk_big_count();
    long rss0 = rss_pages();
    for (int r = 0; r < ROUNDS; r++) {
        ringo_wg_add(&a.wg, ALIVE);
        if (r % 2) { /* from a goroutine (child first) and from this plain thread in turn */
            ringo_go(spawn_touchers, &a);
        } else {
            for (int i = 0; i < ALIVE; i++)
                assert_true(ringo_go_opts(touch_1m, &a, &(struct ringo_go_opts){ .stack_size = 2u << 20 }) > 0);
        }
        ringo_wg_wait(&a.wg);
    }
    wait_all_gone();
    long grown = rss_pages() - rss0;
    size_t made = stk_big_count() - before;
    print_message("# %d big stacks, %zu mappings made, rss %+ld pages after\n", ALIVE * ROUNDS, made, grown);
    /* without reuse, ALIVE * ROUNDS; a finished goroutine's slot is freed just after it counts
     * itself gone (after its switch-out), so the next round may need a few more than ALIVE */
    assert_true(made <= 2 * ALIVE);
    if (!tu_on_valgrind() && !TU_SANITIZED)
        assert_true(grown < ALIVE * 256 / 4); /* 1 MiB touched each: 256 pages, given back */
}

/* Stress (TSan): goroutines spawn named and big-stack goroutines that rename themselves, while
 * this thread dumps all along (the dump reads names and big-slot tables racily, by design). */
static atomic_long st_ran, st_failed;
static void st_child(void *a)
{
    char name[32];
    snprintf(name, sizeof name, "child-%ld", (long)(intptr_t)a);
    ringo_set_name(name);
    ringo_yield();
    ringo_set_name("");
    atomic_fetch_add(&st_ran, 1);
}
static void st_spawner(void *a)
{
    intptr_t base = (intptr_t)a;
    for (intptr_t i = 0; i < 100; i++) {
        struct ringo_go_opts o = { .name = "spawned", .stack_size = i % 4 == 0 ? 1u << 20 : 0 };
        if (ringo_go_opts(st_child, (void *)(base + i), &o) <= 0)
            atomic_fetch_add(&st_failed, 1);
    }
}

static void test_goroutine_opts_stress_with_dumps(void **state)
{
    (void)state;
    int rounds = (int)(5 * tu_scale());
    if (rounds < 1)
        rounds = 1;
    tu_watchdog_arm("opts stress", 120);
    long dumps = 0;
    for (int r = 0; r < rounds; r++) {
        for (intptr_t s = 0; s < 4; s++)
            ringo_go(st_spawner, (void *)(r * 1000 + s * 100));
        while (ringo_num_goroutines() != 0) {
            free(tu_dump_string());
            dumps++;
        }
    }
    wait_all_gone();
    tu_watchdog_disarm();
    print_message("# %ld goroutines, %ld dumps meanwhile\n", atomic_load(&st_ran), dumps);
    assert_int_equal(atomic_load(&st_failed), 0);
    assert_int_equal(atomic_load(&st_ran), rounds * 400);
}

static const struct child_scenario scenarios[] = {
    { "pools_decay", child_pools_decay },
    { "bad_config", child_bad_config },
    { "env_procs", child_env_procs },
    { "overflow", child_overflow },
    { "overflow_big", child_overflow_big },
    { "guard_size", child_guard_size },
    { "null_write", child_null_write },
    { "guard_fallback", child_guard_fallback },
    { "named_deadlock", child_named_deadlock },
    { "deep_default", child_deep_default },
    { "deep_big_too_small", child_deep_big_too_small },
    { NULL, NULL },
};

int main(int argc, char **argv)
{
    tu_maybe_child(argc, argv, scenarios);
    struct rlimit rl = { 0, 0 };
    setrlimit(RLIMIT_CORE, &rl); /* the crash scenarios need no core files */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_goroutine_go_null_is_einval),
        cmocka_unit_test(test_goroutine_init_after_start_is_ealready),
        cmocka_unit_test(test_goroutine_bad_config_is_einval_and_starts_nothing),
        cmocka_unit_test(test_goroutine_env_sets_procs),
        cmocka_unit_test(test_goroutine_million_run_exactly_once),
        cmocka_unit_test(test_goroutine_300k_alive_at_once),
        cmocka_unit_test(test_goroutine_ids_are_positive_unique_and_self),
        cmocka_unit_test(test_goroutine_exit_ends_only_the_goroutine),
        cmocka_unit_test(test_goroutine_slot_reused_100k_times),
        cmocka_unit_test(test_goroutine_surplus_stack_pages_are_given_back),
        cmocka_unit_test(test_goroutine_pools_give_pages_back_after_the_load),
        cmocka_unit_test(test_goroutine_stack_overflow_reported_madvise_guard),
        cmocka_unit_test(test_goroutine_stack_overflow_reported_mprotect_guard),
        cmocka_unit_test(test_goroutine_stack_overflow_64k_frames_reported_madvise_guard),
        cmocka_unit_test(test_goroutine_stack_overflow_64k_frames_reported_mprotect_guard),
        cmocka_unit_test(test_goroutine_stack_guard_env),
        cmocka_unit_test(test_goroutine_other_segfault_passed_on),
        cmocka_unit_test(test_goroutine_mprotect_guard_fallback_and_enomem),
        cmocka_unit_test(test_goroutine_stack_pages_are_on_the_workers_node),
        cmocka_unit_test(test_goroutine_opts_bad_input_is_einval),
        cmocka_unit_test(test_goroutine_opts_name_in_dump),
        cmocka_unit_test(test_goroutine_opts_name_in_deadlock_report),
        cmocka_unit_test(test_goroutine_opts_big_stack_deep_recursion),
        cmocka_unit_test(test_goroutine_opts_1gib_stack_is_allowed),
        cmocka_unit_test(test_goroutine_opts_big_stack_overflow_reported),
        cmocka_unit_test(test_goroutine_opts_big_stack_in_dump),
        cmocka_unit_test(test_goroutine_opts_big_stacks_are_reused_and_given_back),
        cmocka_unit_test(test_goroutine_opts_stress_with_dumps),
    };
    return TU_RUN_GROUP("goroutine", tests, NULL, NULL);
}
