/* tests/test_examples.c — run every program of examples/ (the seed's programs) and check that its
 * output is one that the Go program it translates can print, and only such an output.
 *
 * Each example is spawned with stdout and stderr captured apart (and a kill timer), then:
 *   - buffered, fibonacci: one output only: stdout must equal examples/<name>.expected, byte for
 *     byte, stderr be empty and the exit status 0;
 *   - say: Go's main does not wait for the "world" goroutine: stdout must be exactly 5 "hello"
 *     lines and 0 to 5 "world" lines, in any order, nothing else; with RINGO_PROCS=1 ringo's
 *     order is fixed: examples/say_procs1.expected, byte for byte;
 *   - sum: either goroutine may send first: stdout must be "(-12)+(33)=21" or "(33)+(-12)=21";
 *   - deadlock_cap1, deadlock_cap0, deadlock_noclose: exit status 2, stdout what was printed
 *     before (nothing; the ten numbers of fibonacci.expected), and stderr Go's report: its lines
 *     that do not start with a tab must equal examples/<name>.expected byte for byte (Go's
 *     main is goroutine 1 and the only one listed: "goroutine 1 [chan send]:"); the
 *     tab-indented lines under it (frames, which name addresses of this build) must name
 *     go_main, the examples' Go main (Go's "main.main()").
 * The programs are found in $top_builddir/examples (exported by make check), else in the build
 * directory compiled in; the .expected files likewise in $top_srcdir/examples.
 */
#include <ringo.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <poll.h>
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

/* examples/<name> must exit 0, stderr empty, stdout exactly the contents of examples/<file>. */
static void check_exact(const char *name, const char *file, const char *const *env)
{
    struct run r;
    run_example(name, env, 30, &r);
    assert_clean_exit(name, &r);
    char *want = read_expected(file);
    if (strcmp(r.out, want) != 0)
        fail_msg("%s (%s): stdout differs\n--- want\n%s--- got\n%s", name, env ? env[0] : "default", want, r.out);
    free(want);
}

/* ------------------------------------------------------------------ the examples */

/* say's stdout: 5 "hello" lines and 0 to 5 "world" lines, each ended, nothing else. */
static void assert_say_output(const char *what, const char *out)
{
    int hello = 0, world = 0, other = 0;
    for (const char *p = out; *p;) {
        const char *nl = strchr(p, '\n');
        if (!nl) { /* an unended last line */
            other++;
            break;
        }
        size_t len = (size_t)(nl - p);
        if (len == 5 && strncmp(p, "hello", 5) == 0)
            hello++;
        else if (len == 5 && strncmp(p, "world", 5) == 0)
            world++;
        else
            other++;
        p = nl + 1;
    }
    if (hello != 5 || world > 5 || other != 0)
        fail_msg("say (%s): want 5 hello and 0-5 world lines, got %d hello, %d world, %d other:\n%s", what,
                 hello, world, other, out);
}

static void test_examples_say_prints_five_hello_and_up_to_five_world(void **state)
{
    (void)state;
    /* several workers: the lines interleave in any order, and main may end before "world" */
    static const char *const env[][2] = { { "RINGO_PROCS=2", NULL }, { "RINGO_PROCS=4", NULL } };
    for (int round = 0; round < 6; round++) {
        struct run r;
        run_example("say", env[round % 2], 30, &r);
        assert_clean_exit("say", &r);
        assert_say_output(env[round % 2][0], r.out);
    }
}

static void test_examples_say_alternates_on_one_worker(void **state)
{
    (void)state;
    static const char *const env[] = { "RINGO_PROCS=1", NULL };
    check_exact("say", "say_procs1.expected", env);
}

/* sum: x is whichever half is sent first (1-4-9 = -12, 20+4+9 = 33): one of two lines. */
static void check_sum(const char *const *env)
{
    struct run r;
    run_example("sum", env, 30, &r);
    assert_clean_exit("sum", &r);
    if (strcmp(r.out, "(-12)+(33)=21\n") != 0 && strcmp(r.out, "(33)+(-12)=21\n") != 0)
        fail_msg("sum (%s): want \"(-12)+(33)=21\" or \"(33)+(-12)=21\", got:\n%s", env ? env[0] : "default",
                 r.out);
}

static void test_examples_sum(void **state)
{
    (void)state;
    static const char *const one[] = { "RINGO_PROCS=1", NULL };
    static const char *const two[] = { "RINGO_PROCS=2", NULL };
    check_sum(NULL);
    check_sum(one);
    for (int round = 0; round < 3; round++)
        check_sum(two);
}

static void test_examples_buffered(void **state)
{
    (void)state;
    check_exact("buffered", "buffered.expected", NULL);
}

static void test_examples_fibonacci(void **state)
{
    (void)state;
    check_exact("fibonacci", "fibonacci.expected", NULL);
    static const char *const one[] = { "RINGO_PROCS=1", NULL };
    check_exact("fibonacci", "fibonacci.expected", one);
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

/* examples/<name> must print Go's deadlock report (examples/<name>.expected, less the frames)
 * and exit 2, after printing stdout_file's contents (NULL: nothing) on stdout. */
static void check_deadlock(const char *name, const char *stdout_file)
{
    static const char *const env[][2] = { { "RINGO_PROCS=2", NULL }, { "RINGO_PROCS=1", NULL } };
    char file[256];
    snprintf(file, sizeof file, "%s.expected", name);
    for (int i = 0; i < 2; i++) {
        struct run r;
        run_example(name, env[i], 30, &r);
        if (!r.exited || r.code != 2)
            fail_msg("%s (%s): want exit status 2, got exited=%d code=%d signal=%d\nstderr:\n%s", name, env[i][0],
                     r.exited, r.code, r.signo, r.err);
        char *out = stdout_file ? read_expected(stdout_file) : strdup("");
        if (strcmp(r.out, out) != 0)
            fail_msg("%s (%s): stdout differs\n--- want\n%s--- got\n%s", name, env[i][0], out, r.out);
        free(out);
        char *want = read_expected(file);
        char heads[sizeof r.err], body[sizeof r.err];
        split_frames(r.err, heads, body);
        if (!strstr(body, " go_main+0x"))
            fail_msg("%s (%s): the frames do not name go_main (Go's main.main)\nstderr:\n%s", name, env[i][0],
                     r.err);
        if (strcmp(heads, want) != 0)
            fail_msg("%s (%s): stderr differs\n--- want\n%s--- got\n%s", name, env[i][0], want, r.err);
        free(want);
    }
}

/* "将buff值修改为0，1都会": buffered.c with make(chan int, 1), make(chan int, 0) */
static void test_examples_deadlock_cap1(void **state)
{
    (void)state;
    check_deadlock("deadlock_cap1", NULL);
}

static void test_examples_deadlock_cap0(void **state)
{
    (void)state;
    check_deadlock("deadlock_cap0", NULL);
}

/* "如果去除close(ch)，也将会dead lock": fibonacci.c without close(ch) */
static void test_examples_deadlock_noclose(void **state)
{
    (void)state;
    check_deadlock("deadlock_noclose", "fibonacci.expected");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples_say_prints_five_hello_and_up_to_five_world),
        cmocka_unit_test(test_examples_say_alternates_on_one_worker),
        cmocka_unit_test(test_examples_sum),
        cmocka_unit_test(test_examples_buffered),
        cmocka_unit_test(test_examples_fibonacci),
        cmocka_unit_test(test_examples_deadlock_cap1),
        cmocka_unit_test(test_examples_deadlock_cap0),
        cmocka_unit_test(test_examples_deadlock_noclose),
    };
    return TU_RUN_GROUP("examples", tests, NULL, NULL);
}
