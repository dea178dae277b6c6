/* tests/test_examples.c — run every program of examples/ and check its exact output.
 *
 * Each example is spawned with stdout and stderr captured apart (and a kill timer), then:
 *   - its stdout must equal examples/<name>.expected, byte for byte (say: same lines in any
 *     order, unless RINGO_PROCS=1, where the order is fixed: examples/say_procs1.expected);
 *   - its stderr must be empty and its exit status 0 — except deadlock, whose stderr must be the
 *     Go report of examples/deadlock.expected (thread ids written as N) with exit status 2. The
 *     tab-indented lines under each goroutine/thread line (the "main thread" mark and the stack
 *     frames, which name addresses of this build) are checked apart: main's entry is marked and
 *     names main among its frames; every other line is compared byte for byte.
 * The programs are found in $top_builddir/examples (exported by make check), else in the build
 * directory compiled in; the .expected files likewise in $top_srcdir/examples.
 */
#include <ringo.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <poll.h>
#include <stdbool.h>
#include "tests/testutil.h"

#ifndef EXAMPLES_BUILDDIR
#define EXAMPLES_BUILDDIR "examples"
#endif
#ifndef EXAMPLES_SRCDIR
#define EXAMPLES_SRCDIR "examples"
#endif

struct run {
    int exited, code, signo;
    char out[16384];
    char err[16384];
};

static void path_of(char *buf, size_t n, const char *envvar, const char *fallback, const char *name)
{
    const char *top = getenv(envvar);
    if (top && *top)
        snprintf(buf, n, "%s/examples/%s", top, name);
    else
        snprintf(buf, n, "%s/%s", fallback, name);
}

/* Run examples/<name> with extra environment entries; kill it after timeout_s seconds. */
static void run_example(const char *name, const char *const *env_extra, int timeout_s, struct run *r)
{
    char prog[4096];
    path_of(prog, sizeof prog, "top_builddir", EXAMPLES_BUILDDIR, name);
    memset(r, 0, sizeof *r);
    int po[2], pe[2];
    assert_int_equal(pipe(po), 0);
    assert_int_equal(pipe(pe), 0);

    char **envp = tu_envp(env_extra);
    assert_non_null(envp);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    posix_spawn_file_actions_addclose(&fa, po[0]);
    posix_spawn_file_actions_addclose(&fa, pe[0]);
    char *argv[] = { prog, NULL };
    pid_t pid;
    int e = posix_spawn(&pid, prog, &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    close(po[1]);
    close(pe[1]);
    if (e != 0)
        fail_msg("cannot run %s: %s (build the examples first: make)", prog, strerror(e));

    size_t lo = 0, le = 0;
    int open_fds = 2;
    struct pollfd pf[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
    time_t start = time(NULL);
    while (open_fds > 0 && time(NULL) - start <= timeout_s) {
        if (poll(pf, 2, 100) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char *buf = i == 0 ? r->out : r->err;
            size_t *len = i == 0 ? &lo : &le;
            size_t room = (i == 0 ? sizeof r->out : sizeof r->err) - 1 - *len;
            char scratch[512];
            ssize_t n = read(pf[i].fd, room ? buf + *len : scratch, room ? room : sizeof scratch);
            if (n > 0 && room)
                *len += (size_t)n;
            if (n <= 0) {
                close(pf[i].fd);
                pf[i].fd = -1;
                open_fds--;
            }
        }
    }
    int status = 0;
    if (open_fds > 0) {
        kill(pid, SIGKILL);
        for (int i = 0; i < 2; i++)
            if (pf[i].fd >= 0)
                close(pf[i].fd);
    }
    waitpid(pid, &status, 0);
    r->out[lo] = 0;
    r->err[le] = 0;
    if (WIFEXITED(status)) {
        r->exited = 1;
        r->code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        r->signo = WTERMSIG(status);
    }
    if (open_fds > 0)
        fail_msg("%s did not finish within %d s; stdout so far:\n%s\nstderr so far:\n%s", name, timeout_s,
                 r->out, r->err);
}

static char *read_expected(const char *file)
{
    char path[4096];
    path_of(path, sizeof path, "top_srcdir", EXAMPLES_SRCDIR, file);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    static char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strdup(buf);
}

static void assert_clean_exit(const char *name, const struct run *r)
{
    if (!r->exited || r->code != 0 || r->err[0])
        fail_msg("%s: exited=%d code=%d signal=%d\nstdout:\n%s\nstderr:\n%s", name, r->exited, r->code, r->signo,
                 r->out, r->err);
}

static void check_exact(const char *name, const char *const *env)
{
    struct run r;
    char file[256];
    run_example(name, env, 30, &r);
    assert_clean_exit(name, &r);
    snprintf(file, sizeof file, "%s.expected", name);
    char *want = read_expected(file);
    if (strcmp(r.out, want) != 0)
        fail_msg("%s: stdout differs\n--- want\n%s--- got\n%s", name, want, r.out);
    free(want);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort the lines of s in place (as a multiset: same lines, any order). */
static void sort_lines(char *s)
{
    char *lines[256];
    size_t n = 0;
    for (char *p = strtok(s, "\n"); p && n < 256; p = strtok(NULL, "\n"))
        lines[n++] = strdup(p);
    qsort(lines, n, sizeof *lines, cmp_str);
    s[0] = 0;
    for (size_t i = 0; i < n; i++) {
        strcat(s, lines[i]);
        strcat(s, "\n");
        free(lines[i]);
    }
}

/* ------------------------------------------------------------------ the examples */

static void test_examples_say_prints_five_of_each(void **state)
{
    (void)state;
    /* several workers: the two goroutines' lines interleave in any order */
    static const char *const env[] = { "RINGO_PROCS=2", NULL };
    for (int round = 0; round < 3; round++) {
        struct run r;
        run_example("say", env, 30, &r);
        assert_clean_exit("say", &r);
        char *want = read_expected("say.expected"); /* hello x5, world x5 (sorted) */
        sort_lines(r.out);
        if (strcmp(r.out, want) != 0)
            fail_msg("say (RINGO_PROCS=2): lines differ\n--- want (sorted)\n%s--- got (sorted)\n%s", want, r.out);
        free(want);
    }
}

static void test_examples_say_alternates_on_one_worker(void **state)
{
    (void)state;
    static const char *const env[] = { "RINGO_PROCS=1", NULL };
    struct run r;
    run_example("say", env, 30, &r);
    assert_clean_exit("say", &r);
    char *want = read_expected("say_procs1.expected");
    if (strcmp(r.out, want) != 0)
        fail_msg("say (RINGO_PROCS=1): stdout differs\n--- want\n%s--- got\n%s", want, r.out);
    free(want);
}

static void test_examples_sum(void **state)
{
    (void)state;
    check_exact("sum", NULL);
    static const char *const one[] = { "RINGO_PROCS=1", NULL };
    check_exact("sum", one);
}

static void test_examples_buffered(void **state)
{
    (void)state;
    check_exact("buffered", NULL);
}

static void test_examples_fibonacci(void **state)
{
    (void)state;
    check_exact("fibonacci", NULL);
    static const char *const one[] = { "RINGO_PROCS=1", NULL };
    check_exact("fibonacci", one);
}

/* Replace each run of digits that follows "thread " or "goroutine " by N. */
static void normalize_ids(const char *in, char *out, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; in[i] && o + 2 < n;) {
        bool after = (i >= 7 && strncmp(in + i - 7, "thread ", 7) == 0) ||
                     (i >= 10 && strncmp(in + i - 10, "goroutine ", 10) == 0);
        if (after && isdigit((unsigned char)in[i])) {
            while (isdigit((unsigned char)in[i]))
                i++;
            out[o++] = 'N';
        } else {
            out[o++] = in[i++];
        }
    }
    out[o] = 0;
}

/* Split a report: the lines that start with a tab (under a goroutine or thread line: its frames)
 * into body, the others into heads. Both are as large as in. */
static void split_frames(const char *in, char *heads, char *body)
{
    size_t h = 0, b = 0;
    for (const char *p = in; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
        char *dst = *p == '\t' ? body + b : heads + h;
        memcpy(dst, p, len);
        if (*p == '\t')
            b += len;
        else
            h += len;
        p += len;
    }
    heads[h] = 0;
    body[b] = 0;
}

static void test_examples_deadlock_prints_go_report_and_exits_2(void **state)
{
    (void)state;
    static const char *const env[][2] = { { "RINGO_PROCS=2", NULL }, { "RINGO_PROCS=1", NULL } };
    for (int i = 0; i < 2; i++) {
        struct run r;
        run_example("deadlock", env[i], 30, &r);
        if (!r.exited || r.code != 2)
            fail_msg("deadlock (%s): want exit status 2, got exited=%d code=%d signal=%d\nstderr:\n%s", env[i][0],
                     r.exited, r.code, r.signo, r.err);
        assert_string_equal(r.out, "");
        char *want = read_expected("deadlock.expected");
        char got[sizeof r.err], heads[sizeof r.err], body[sizeof r.err];
        split_frames(r.err, heads, body);
        if (!strstr(body, "\tmain thread\n") || !strstr(body, " main+0x"))
            fail_msg("deadlock (%s): main's entry not marked, or main() not among its frames\nstderr:\n%s",
                     env[i][0], r.err);
        normalize_ids(heads, got, sizeof got);
        if (strcmp(got, want) != 0)
            fail_msg("deadlock (%s): stderr differs\n--- want\n%s--- got\n%s", env[i][0], want, r.err);
        free(want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples_say_prints_five_of_each),
        cmocka_unit_test(test_examples_say_alternates_on_one_worker),
        cmocka_unit_test(test_examples_sum),
        cmocka_unit_test(test_examples_buffered),
        cmocka_unit_test(test_examples_fibonacci),
        cmocka_unit_test(test_examples_deadlock_prints_go_report_and_exits_2),
    };
    return TU_RUN_GROUP("examples", tests, NULL, NULL);
}
