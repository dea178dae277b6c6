/* tests/testutil.h — helpers shared by the cmocka tests.
 *
 * - Child scenarios: a test binary re-executes itself as `prog --child NAME` in a fresh process
 *   (a fresh runtime: its own procs, env, and the freedom to crash or deadlock), with extra
 *   environment variables, and collects exit status and stderr.
 * - A watchdog: tests that would hang on a lost wake-up arm it; it fails the test process
 *   loudly instead of letting the suite hang.
 * - An emulator prefix: cross-built tests run under qemu-user (RINGO_TEST_EMULATOR, below).
 */
#ifndef RINGO_TESTUTIL_H
#define RINGO_TESTUTIL_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct child_result {
    int exited;       /* 1: exited normally, status in code */
    int code;
    int signo;        /* killed by this signal, 0 if exited */
    char out[65536];  /* stderr then stdout, truncated */
};

/* Scenario table: each test binary defines child_scenarios[] and calls
 * tu_maybe_child(argc, argv) first thing in main(). */
struct child_scenario {
    const char *name;
    int (*fn)(void);
};

static inline int tu_maybe_child(int argc, char **argv, const struct child_scenario *tab)
{
    if (argc >= 3 && strcmp(argv[1], "--child") == 0) {
        for (const struct child_scenario *s = tab; s && s->name; s++)
            if (strcmp(s->name, argv[2]) == 0)
                exit(s->fn());
        fprintf(stderr, "unknown child scenario %s\n", argv[2]);
        exit(99);
    }
    return 0;
}

static char tu_self[4096];

/* ------------------------------------------------------------------ running under an emulator
 * Cross-built tests run under qemu-user (.ci/arm64 sets RINGO_TEST_EMULATOR=qemu-aarch64-static
 * and LOG_COMPILER to the same). The emulated test process cannot exec one of our own binaries
 * (a child scenario, an example server) by itself: the kernel only runs a foreign ELF through
 * binfmt_misc, which a container or a fresh CI machine may not have. So every exec of a program
 * goes through tu_argv_emulated, which puts the emulator in front when the file is an ELF built
 * for the machine this test was built for and RINGO_TEST_EMULATOR is set; host tools (sh, curl,
 * gdb) and every exec of a native build are left as they are. tu_emulated() is for the few
 * cases that skip under the emulator, each with its reason. */
#include <elf.h>
#if defined(__x86_64__)
#define TU_EM_SELF EM_X86_64
#elif defined(__aarch64__)
#define TU_EM_SELF EM_AARCH64
#endif

static inline const char *tu_emulator(void)
{
    const char *e = getenv("RINGO_TEST_EMULATOR");
    return e && *e ? e : NULL;
}
static inline int tu_emulated(void) { return tu_emulator() != NULL; }

/* name as exec would find it: itself when it has a '/', else the first executable on PATH
 * (into buf); NULL when there is none */
static inline const char *tu_which(const char *name, char *buf, size_t cap)
{
    if (strchr(name, '/'))
        return name;
    for (const char *p = getenv("PATH"); p && *p;) {
        const char *c = strchr(p, ':');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        snprintf(buf, cap, "%.*s/%s", (int)l, p, name);
        if (access(buf, X_OK) == 0)
            return buf;
        p = c ? c + 1 : NULL;
    }
    return NULL;
}

/* path (or a name found on PATH) is an ELF file of our own machine */
static inline int tu_is_own_elf(const char *name)
{
    char buf[4096];
    const char *path = tu_which(name, buf, sizeof buf);
    if (!path)
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    unsigned char h[sizeof(Elf64_Ehdr)];
    ssize_t n = read(fd, h, sizeof h);
    close(fd);
    if (n < (ssize_t)sizeof h || memcmp(h, ELFMAG, SELFMAG) != 0)
        return 0;
    Elf64_Half m;
    memcpy(&m, h + offsetof(Elf64_Ehdr, e_machine), sizeof m); /* both targets: little-endian */
    return m == TU_EM_SELF;
}

/* argv itself, or argv with the emulator in front (in buf, cap entries; argv is truncated to
 * fit, which no caller comes near). The emulator is an absolute path when PATH has it, so the
 * result can go to execve (async-signal-safe, after a fork). */
static char tu_emu_path[4096];
static inline char *const *tu_argv_emulated(char *const argv[], char **buf, size_t cap)
{
    const char *emu = tu_emulator();
    if (!emu || !tu_is_own_elf(argv[0]))
        return argv;
    const char *full = tu_which(emu, tu_emu_path, sizeof tu_emu_path);
    size_t k = 0;
    buf[k++] = (char *)(full ? full : emu);
    for (size_t i = 0; argv[i] && k < cap - 1; i++)
        buf[k++] = argv[i];
    buf[k] = NULL;
    return buf;
}

static inline void tu_init_self(void)
{
    ssize_t n = readlink("/proc/self/exe", tu_self, sizeof tu_self - 1);
    if (n > 0)
        tu_self[n] = 0;
}

/* The environment for a child: env_extra ("K=V", NULL-terminated) first, then ours without the
 * keys env_extra sets (the child's own settings win). calloc'd array; the strings are not copied. */
static inline char **tu_envp(const char *const *env_extra)
{
    size_t ne = 0, nx = 0;
    while (environ[ne])
        ne++;
    while (env_extra && env_extra[nx])
        nx++;
    char **envp = calloc(ne + nx + 1, sizeof *envp);
    if (!envp)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < nx; i++)
        envp[k++] = (char *)env_extra[i];
    for (size_t i = 0; i < ne; i++) {
        int dup = 0;
        for (size_t j = 0; j < nx; j++) {
            const char *eq = strchr(env_extra[j], '=');
            size_t l = eq ? (size_t)(eq - env_extra[j]) : strlen(env_extra[j]);
            if (strncmp(environ[i], env_extra[j], l) == 0 && environ[i][l] == '=')
                dup = 1;
        }
        if (!dup)
            envp[k++] = environ[i];
    }
    envp[k] = NULL;
    return envp;
}

/* Run argv[0] (searched on PATH) with argv and extra environment, stdin from /dev/null, output
 * (stdout+stderr) into r, or stdout into the file out_file when not NULL; kill it after
 * timeout_s. Output beyond r->out is read and dropped (the child never blocks on a full pipe).
 * Returns 0 if it could not be started (r->code = -1). */
static inline int tu_run_prog_to(char *const argv[], const char *const *env_extra, int timeout_s,
                                 struct child_result *r, const char *out_file)
{
    memset(r, 0, sizeof *r);
    int pfd[2];
    char **envp = tu_envp(env_extra);
    if (!envp || pipe(pfd) != 0) {
        free(envp);
        r->code = -1;
        return 0;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (out_file)
        posix_spawn_file_actions_addopen(&fa, 1, out_file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    else
        posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    posix_spawn_file_actions_addclose(&fa, pfd[0]);
    pid_t pid;
    char *ebuf[64];
    char *const *eargv = tu_argv_emulated(argv, ebuf, 64);
    int e = posix_spawnp(&pid, eargv[0], &fa, NULL, eargv, envp);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    close(pfd[1]);
    if (e != 0) {
        close(pfd[0]);
        r->code = -1;
        return 0;
    }
    fcntl(pfd[0], F_SETFL, O_NONBLOCK);
    size_t len = 0;
    time_t start = time(NULL);
    int status = 0;
    char drop[4096];
    for (;;) {
        ssize_t n = len < sizeof r->out - 1 ? read(pfd[0], r->out + len, sizeof r->out - 1 - len)
                                            : read(pfd[0], drop, sizeof drop);
        if (n > 0) {
            if (len < sizeof r->out - 1)
                len += (size_t)n;
            continue;
        }
        if (waitpid(pid, &status, WNOHANG) == pid) {
            while (len < sizeof r->out - 1 && (n = read(pfd[0], r->out + len, sizeof r->out - 1 - len)) > 0)
                len += (size_t)n;
            break;
        }
        if (time(NULL) - start > timeout_s) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fprintf(stderr, "# %s: killed after %d s\n", argv[0], timeout_s);
            break;
        }
        usleep(2000);
    }
    close(pfd[0]);
    r->out[len] = 0;
    if (WIFEXITED(status)) {
        r->exited = 1;
        r->code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        r->signo = WTERMSIG(status);
    }
    return 1;
}

static inline int tu_run_prog(char *const argv[], const char *const *env_extra, int timeout_s,
                              struct child_result *r)
{
    return tu_run_prog_to(argv, env_extra, timeout_s, r, NULL);
}

/* Run `self --child name` with extra env entries (NULL-terminated "K=V" list); kill it after
 * timeout_s seconds. */
static inline void tu_run_child(const char *name, const char *const *env_extra, int timeout_s,
                                struct child_result *r)
{
    if (!tu_self[0])
        tu_init_self();
    char *argv[] = { tu_self, (char *)"--child", (char *)name, NULL };
    tu_run_prog(argv, env_extra, timeout_s, r);
}

/* Print text (a child's output) as TAP comment lines, each "# " + a line. Not print_message:
 * cmocka formats it into 1024 bytes, so a longer text lost its end, newline included, and the
 * next "ok N" landed on a comment line (the driver then counted a test too few). */
static inline void tu_note(const char *text)
{
    while (*text) {
        const char *nl = strchr(text, '\n');
        int n = nl ? (int)(nl - text) : (int)strlen(text);
        printf("# %.*s\n", n, text);
        text += n + (nl ? 1 : 0);
    }
    fflush(stdout);
}

/* Skip a case that cannot work under the emulator for the emulator's own reason (why), saying
 * so in the TAP output; never used for a native run (RINGO_TEST_EMULATOR is unset there). */
#define tu_skip_if_emulated(why)                                                                   \
    do {                                                                                           \
        if (tu_emulated()) {                                                                       \
            print_message("# skipped under %s: %s\n", tu_emulator(), why);                         \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* A cmocka test that runs child scenario `name`: again (at most 10 runs) while it exits with one
 * of the codes in retry (0-terminated; a placement the case needs did not happen, say), skips on
 * exit 77, prints the child's output ("# ...") when it passes and its status and output when it
 * does not, and asserts exit 0. */
#ifdef cmocka_unit_test
static inline void tu_check_child(const char *name, const char *const *env, int timeout_s, const int *retry)
{
    static struct child_result r;
    for (int i = 0; i < 10; i++) {
        tu_run_child(name, env, timeout_s, &r);
        int again = 0;
        for (const int *c = retry; c && *c; c++)
            again |= r.exited && r.code == *c;
        if (!again)
            break;
    }
    if (r.exited && r.code == 77)
        skip();
    if (r.exited && r.code == 0)
        tu_note(r.out);
    else
        fprintf(stderr, "child: %s %d\n%s\n", r.exited ? "exit" : "signal", r.exited ? r.code : r.signo, r.out);
    assert_true(r.exited);
    assert_int_equal(r.code, 0);
}
#endif

/* Threads of this process whose name starts with prefix (/proc/self/task/N/comm). */
#include <dirent.h>
static inline long tu_threads_named(const char *prefix)
{
    DIR *d = opendir("/proc/self/task");
    long n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(comm, sizeof comm, f))
                comm[0] = 0;
            fclose(f);
        }
        if (strncmp(comm, prefix, strlen(prefix)) == 0)
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

/* ------------------------------------------------------------------ watchdog */
#include <stdatomic.h>
static _Atomic int tu_watchdog_secs;
static _Atomic(const char *) tu_watchdog_what;
static atomic_int tu_watchdog_gen;

static void *tu_watchdog_main(void *arg)
{
    int gen = (int)(long)arg;
    for (int i = 0; i < tu_watchdog_secs * 10; i++) {
        usleep(100000);
        if (tu_watchdog_gen != gen)
            return NULL;
    }
    fprintf(stderr, "not ok - watchdog: '%s' did not finish within %d s (lost wake-up or hang)\n",
            tu_watchdog_what, tu_watchdog_secs);
    _exit(1);
}

/* Arm: the process fails if tu_watchdog_disarm() is not called within secs. */
static inline void tu_watchdog_arm(const char *what, int secs)
{
    pthread_t t;
    tu_watchdog_what = what;
    tu_watchdog_secs = secs;
    int gen = ++tu_watchdog_gen;
    pthread_create(&t, NULL, tu_watchdog_main, (void *)(long)gen);
    pthread_detach(t);
}

static inline void tu_watchdog_disarm(void)
{
    tu_watchdog_gen++;
}

static inline double tu_scale(void)
{
    const char *s = getenv("RINGO_STRESS_ITERS");
    double v = s ? atof(s) : 1.0;
    return v > 0 ? v : 1.0;
}

/* ------------------------------------------------------------------ ringo_dump */
#include <ringo.h>
#include <sys/mman.h>

/* ringo_dump into a string (malloc'd; "" if it cannot). */
static inline char *tu_dump_string(void)
{
    int fd = memfd_create("dump", 0);
    if (fd < 0)
        return strdup("");
    ringo_dump(fd);
    off_t n = lseek(fd, 0, SEEK_CUR);
    char *buf = malloc((size_t)(n > 0 ? n : 0) + 1);
    if (!buf) {
        close(fd);
        return strdup("");
    }
    if (n < 0 || pread(fd, buf, (size_t)n, 0) != n)
        n = 0;
    buf[n] = 0;
    close(fd);
    return buf;
}

/* ------------------------------------------------------------------ ThreadSanitizer */
#if defined(__SANITIZE_THREAD__)
#define TU_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TU_TSAN 1
#endif
#endif
#ifndef TU_TSAN
#define TU_TSAN 0
#endif
/* TSan gives every goroutine (fiber) a thread slot and dies past 8128 alive at once: tests that
 * need more skip under it (the plain and ASan runs cover them). */
#define TU_TSAN_MAX_ALIVE 7000

/* Sanitizer runs cannot honour millisecond latency bounds on a shared machine (valgrind:
 * tu_on_valgrind). */
#if defined(__SANITIZE_ADDRESS__)
#define TU_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TU_SANITIZED 1
#endif
#endif
#ifndef TU_SANITIZED
#define TU_SANITIZED TU_TSAN
#endif

/* ------------------------------------------------------------------ valgrind */
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif

/* Whether this process runs under valgrind: tests too big for it (hundreds of thousands of
 * goroutines) skip there; the plain and sanitizer runs cover them. */
static inline int tu_on_valgrind(void)
{
#ifdef RUNNING_ON_VALGRIND
    if (RUNNING_ON_VALGRIND)
        return 1;
#endif
    const char *p = getenv("LD_PRELOAD"); /* valgrind preloads its vgpreload_*.so */
    return p && strstr(p, "vgpreload") != NULL;
}

/* ------------------------------------------------------------------ TAP output of skipped tests */
#include <stdint.h>
#include <strings.h>

/* cmocka 1.1.5 reports a skipped case as "not ok N # SKIP", which automake's TAP driver counts
 * as a failure (TAP wants "ok N # SKIP"). A test binary that can skip (no gdb, no perf, one CPU, under valgrind) calls
 * tu_tap_filter_start() first in main and tu_tap_filter_finish() before it returns: its stdout
 * then goes through a filter thread that rewrites those lines. */
static int tu_tap_out = -1;
static pthread_t tu_tap_thread;

static void *tu_tap_filter(void *arg)
{
    FILE *in = fdopen((int)(intptr_t)arg, "r");
    char line[4096];
    while (in && fgets(line, sizeof line, in)) {
        unsigned n;
        int off = 0;
        if (strncmp(line, "not ok ", 7) == 0 && sscanf(line + 7, "%u # SKIP%n", &n, &off) == 1 && off > 0)
            dprintf(tu_tap_out, "ok %u # SKIP%s", n, line + 7 + off);
        else
            (void)!write(tu_tap_out, line, strlen(line));
    }
    return NULL;
}

static inline void tu_tap_filter_start(void)
{
    const char *fmt = getenv("CMOCKA_MESSAGE_OUTPUT");
    int p[2];
    if (!fmt || strcasecmp(fmt, "TAP") != 0 || pipe(p) != 0)
        return;
    fflush(stdout);
    tu_tap_out = dup(1);
    dup2(p[1], 1);
    close(p[1]);
    if (pthread_create(&tu_tap_thread, NULL, tu_tap_filter, (void *)(intptr_t)p[0]) != 0) {
        dup2(tu_tap_out, 1);
        tu_tap_out = -1;
    }
}

static inline void tu_tap_filter_finish(void)
{
    if (tu_tap_out < 0)
        return;
    fflush(stdout);
    dup2(tu_tap_out, 1); /* the pipe's last write end closes: the filter sees EOF */
    pthread_join(tu_tap_thread, NULL);
}

/* Run a cmocka group with skips reported as TAP wants them: use in place of
 * cmocka_run_group_tests_name in every test binary's main. */
#define TU_RUN_GROUP(name, tests, setup, teardown)                                                 \
    __extension__({                                                                                \
        tu_tap_filter_start();                                                                     \
        int tu_failed_ = _cmocka_run_group_tests(name, tests, sizeof(tests) / sizeof((tests)[0]),  \
                                                 setup, teardown);                                 \
        tu_tap_filter_finish();                                                                    \
        tu_failed_;                                                                                \
    })

#endif
