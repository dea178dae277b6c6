/* tests/chanutil.h — what the channel and select tests share (include after cmocka.h and
 * testutil.h): CHECK for goroutines and threads (counted in `bad`; T(f) fails the case that had
 * any), spawn() as a goroutine or a plain thread, and counting who is blocked where from
 * ringo_dump. */
#ifndef RINGO_CHANUTIL_H
#define RINGO_CHANUTIL_H

#include <ringo.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static atomic_int bad; /* CHECK failures in goroutines and threads */
#define CHECK(cond)                                                                                          \
    do {                                                                                                     \
        if (!(cond) && atomic_fetch_add(&bad, 1) < 20)                                                       \
            fprintf(stderr, "# CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);                    \
    } while (0)

static inline int reset(void **state)
{
    (void)state;
    atomic_store(&bad, 0);
    return 0;
}
static inline int no_failures(void **state)
{
    (void)state;
    int b = atomic_load(&bad);
    if (b)
        fprintf(stderr, "# %d CHECK failure(s) in goroutines/threads\n", b);
    return b ? -1 : 0;
}
#define T(f) cmocka_unit_test_setup_teardown(f, reset, no_failures)

enum kind { G = 0, TH = 1 };
__attribute__((unused)) static const char *const kind_name[] = { "goroutine", "thread" };

struct actor {
    void (*fn)(void *);
    void *arg;
};
static inline void *actor_thread(void *p)
{
    struct actor a = *(struct actor *)p;
    free(p);
    a.fn(a.arg);
    return NULL;
}
/* Start fn(arg) as a goroutine or as a plain (detached) thread. */
static inline void spawn(int kind, void (*fn)(void *), void *arg)
{
    if (kind == G) {
        assert_true(ringo_go(fn, arg) > 0);
        return;
    }
    struct actor *a = malloc(sizeof *a);
    assert_non_null(a);
    a->fn = fn;
    a->arg = arg;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, actor_thread, a), 0);
    pthread_detach(t);
}

/* Goroutines and threads blocked in state `st` right now (ringo_dump, non-destructive). */
static inline int count_blocked(const char *st)
{
    char *buf = tu_dump_string();
    char pat1[64], pat2[64];
    snprintf(pat1, sizeof pat1, "[%s,", st); /* goroutines: "[chan send, 3 ms]" */
    snprintf(pat2, sizeof pat2, "[%s]", st); /* threads: "[chan send]" */
    int cnt = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, pat1) || strstr(line, pat2))
            cnt++;
    free(buf);
    return cnt;
}
/* Wait until at least n goroutines/threads are blocked in state st; false after 10 s. Safe in
 * goroutines and threads (no cmocka). */
static inline bool blocked_soon(const char *st, int n)
{
    for (int i = 0; i < 10000; i++) {
        if (count_blocked(st) >= n)
            return true;
        ringo_sleep(1000000); /* parks a goroutine, sleeps a thread */
    }
    return false;
}
/* The same, on the test's own thread: fails the test. */
static inline void wait_blocked(const char *st, int n)
{
    if (!blocked_soon(st, n))
        fail_msg("timed out waiting for %d blocked in [%s] (have %d)", n, st, count_blocked(st));
}

#endif
