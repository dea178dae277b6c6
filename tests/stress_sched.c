/* tests/stress_sched.c — the scheduler under bursts, through the public API only.
 *
 * Timer bursts: every 2 ms a burster spawns 300 sleepers that share one deadline, so 300
 * goroutines become runnable on one worker at the same instant (more than its 256-slot ring),
 * while eight loops on the other worker spawn short goroutines and sleep 30 us. Every goroutine
 * writes its own slot once; afterwards each slot must read exactly 1 (a goroutine lost reads
 * 0, one run twice reads 2). Each run is a fresh child process at 2 workers with a generous
 * hang bound; the test repeats it (20 runs in a plain build).
 *
 * Sleeps behind busy workers (issue 11): two loops each spawn a batch of sleepers with random
 * short deadlines (child first: their timers go to the loop's worker), then compute without
 * yielding for longer than the sleeps, then sleep a random while, so the workers are kept busy
 * in turns and most timers are due while their owner computes: another worker fires them.
 * Every sleeper counts its wake-ups in its own slot and whether it woke before its deadline;
 * afterwards every slot must read exactly 1 and no wake-up may be early.
 */
#include <ringo.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tests/testutil.h"

#define BURST 300
#define BURST_EVERY_NS 2000000
#define LOOPS 8
#define BURSTERS 2
#define MAX_SLOTS (4u << 20)

static atomic_uchar *slot_ran;
static atomic_uint slot_next;
static struct ringo_waitgroup all_done = RINGO_WAITGROUP_INIT;
static atomic_int stop;
static int64_t run_ns;

/* A slot for a new goroutine, counted in all_done before it is spawned. */
static uintptr_t new_slot(void)
{
    unsigned s = atomic_fetch_add(&slot_next, 1);
    if (s >= MAX_SLOTS) {
        fprintf(stderr, "more than %u goroutines: raise MAX_SLOTS\n", MAX_SLOTS);
        exit(4);
    }
    ringo_wg_add(&all_done, 1);
    return s;
}

static void ran(uintptr_t s)
{
    atomic_fetch_add(&slot_ran[s], 1);
    ringo_wg_done(&all_done);
}

struct sleeper_arg { uintptr_t slot; int64_t deadline; };
static struct sleeper_arg *sargs;

static void sleeper(void *p)
{
    struct sleeper_arg *a = p;
    int64_t left = a->deadline - ringo_now();
    if (left > 0)
        ringo_sleep(left);
    ran(a->slot);
}

static void burster(void *p)
{
    uintptr_t me = (uintptr_t)p;
    while (!atomic_load(&stop)) {
        /* on a common 2 ms grid: the bursts of both bursters fire at the same instant */
        int64_t deadline = (ringo_now() / BURST_EVERY_NS + 1) * BURST_EVERY_NS;
        for (int i = 0; i < BURST; i++) {
            uintptr_t s = new_slot();
            sargs[s].slot = s;
            sargs[s].deadline = deadline;
            ringo_go(sleeper, &sargs[s]);
        }
        int64_t left = deadline - ringo_now();
        if (left > 0)
            ringo_sleep(left);
    }
    ran(me);
}

static void short_one(void *p)
{
    ringo_yield();
    ran((uintptr_t)p);
}

static void spawn_loop(void *p)
{
    while (!atomic_load(&stop)) {
        for (int i = 0; i < 4; i++)
            ringo_go(short_one, (void *)new_slot());
        ringo_sleep(30000);
    }
    ran((uintptr_t)p);
}

/* The slot tables of one child run; 0, or 5 without memory. */
static int slots_alloc(void)
{
    slot_ran = calloc(MAX_SLOTS, 1);
    sargs = calloc(MAX_SLOTS, sizeof *sargs);
    return slot_ran && sargs ? 0 : 5;
}

/* Every slot handed out ran exactly once: 0, else 3 with the first few named. Sets *np. */
static int slots_each_once(unsigned *np)
{
    unsigned n = atomic_load(&slot_next), bad = 0;
    for (unsigned i = 0; i < n; i++)
        if (atomic_load(&slot_ran[i]) != 1) {
            if (bad++ < 5)
                fprintf(stderr, "goroutine %u ran %u times\n", i, atomic_load(&slot_ran[i]));
        }
    *np = n;
    if (bad) {
        fprintf(stderr, "%u of %u goroutines did not run exactly once\n", bad, n);
        return 3;
    }
    return 0;
}

static int child_timer_bursts(void)
{
    if (slots_alloc() != 0)
        return 5;
    for (int i = 0; i < BURSTERS; i++)
        ringo_go(burster, (void *)new_slot());
    for (int i = 0; i < LOOPS; i++)
        ringo_go(spawn_loop, (void *)new_slot());
    ringo_sleep(run_ns);
    atomic_store(&stop, 1);
    ringo_wg_wait(&all_done);
    unsigned n;
    if (slots_each_once(&n) != 0)
        return 3;
    printf("%u goroutines, each ran once\n", n);
    return 0;
}

/* Run the child `name` `base` times (scaled, at least twice), each a fresh process at 2
 * workers bounded at 60 s; every run must exit 0. The first run's output is shown. */
static void run_child_runs(const char *name, const char *const *env, int base)
{
    int runs = (int)(base * tu_scale());
    if (runs < 2)
        runs = 2;
    for (int i = 0; i < runs; i++) {
        struct child_result r;
        tu_run_child(name, env, 60, &r);
        if (!r.exited || r.code != 0)
            fprintf(stderr, "run %d of %d: %s %d\n%s\n", i + 1, runs, r.exited ? "exit" : "signal",
                    r.exited ? r.code : r.signo, r.out);
        else if (i == 0)
            tu_note(r.out);
        assert_true(r.exited);
        assert_int_equal(r.code, 0);
    }
}

static void test_stress_timer_bursts_while_spawning_every_goroutine_once(void **state)
{
    (void)state;
    const char *env[] = { "RINGO_PROCS=2", NULL };
    run_child_runs("timer_bursts", env, 20);
}

#define HOG_LOOPS 2
#define HOG_BATCH 64
#define HOG_SLEEP_MAX_NS 3000000   /* sleepers: 0..3 ms */
#define HOG_BUSY_NS 8000000        /* a loop computes 8 ms without yielding */
static atomic_uint early;

static uint64_t split64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void hog_sleeper(void *p)
{
    struct sleeper_arg *a = p;
    int64_t left = a->deadline - ringo_now();
    if (left > 0)
        ringo_sleep(left);
    if (ringo_now() < a->deadline)
        atomic_fetch_add(&early, 1);
    ran(a->slot);
}

static void hog_loop(void *p)
{
    uintptr_t me = (uintptr_t)p;
    uint64_t rng = me * 7919 + (uint64_t)ringo_now();
    volatile uint64_t sink = 0; /* own: the two loops compute at once */
    while (!atomic_load(&stop)) {
        for (int i = 0; i < HOG_BATCH; i++) {
            uintptr_t s = new_slot();
            sargs[s].slot = s;
            sargs[s].deadline = ringo_now() + (int64_t)(split64(&rng) % HOG_SLEEP_MAX_NS);
            ringo_go(hog_sleeper, &sargs[s]);
        }
        int64_t t0 = ringo_now();
        while (ringo_now() - t0 < HOG_BUSY_NS)
            sink++; /* this worker schedules nothing: its due timers wait for another */
        ringo_sleep((int64_t)(split64(&rng) % HOG_BUSY_NS));
    }
    ran(me);
}

static int child_sleeps_behind_busy_workers(void)
{
    if (slots_alloc() != 0)
        return 5;
    for (int i = 0; i < HOG_LOOPS; i++)
        ringo_go(hog_loop, (void *)new_slot());
    ringo_sleep(run_ns);
    atomic_store(&stop, 1);
    ringo_wg_wait(&all_done);
    unsigned n;
    if (slots_each_once(&n) != 0)
        return 3;
    if (atomic_load(&early)) {
        fprintf(stderr, "%u of %u sleepers woke before their deadline\n", atomic_load(&early), n);
        return 6;
    }
    printf("%u goroutines, each ran once, none early\n", n);
    return 0;
}

static void test_stress_sleeps_behind_busy_workers_wake_once_never_early(void **state)
{
    (void)state;
    const char *env[] = { "RINGO_PROCS=2", "RINGO_PIN=0", NULL };
    run_child_runs("sleeps_behind_busy", env, 10);
}

static const struct child_scenario scenarios[] = {
    { "timer_bursts", child_timer_bursts },
    { "sleeps_behind_busy", child_sleeps_behind_busy_workers },
    { NULL, NULL },
};

int main(int argc, char **argv)
{
    run_ns = (int64_t)(1e9 * (tu_scale() < 1 ? 0.5 : 1));
    tu_maybe_child(argc, argv, scenarios);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress_timer_bursts_while_spawning_every_goroutine_once),
        cmocka_unit_test(test_stress_sleeps_behind_busy_workers_wake_once_never_early),
    };
    return TU_RUN_GROUP("stress_sched", tests, NULL, NULL);
}
