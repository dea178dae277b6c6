/* sched/fatal.c — fatal errors: Go's throw, and the stack-overflow report.
 *
 * Responsibility: sched_fatal ("fatal error: ..." then abort, as Go's throw), and the SIGSEGV /
 * SIGBUS handler on an alternate stack (per worker) that tells a stack overflow from any other
 * fault: it looks the fault address up in the stack arena; a hit in a guard is reported as Go
 * does and aborts. Any other fault is passed on unchanged: the previous disposition is restored
 * and the faulting instruction runs again.
 * Invariants: the handler is async-signal-safe (write(2), no locks, no allocation).
 * Depends on: sched.h, kernel_iface/stackmem.
 */
#include "sched/sched.h"
#include "kernel_iface/stackmem.h"
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Noreturn void sched_fatal(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if (n > (int)sizeof buf - 2)
        n = (int)sizeof buf - 2;
    static const char pre[] = "fatal error: ";
    (void)!write(2, pre, sizeof pre - 1);
    buf[n++] = '\n';
    (void)!write(2, buf, (size_t)n);
    abort();
}

static struct sigaction old_segv, old_bus;

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
    bool guard = false;
    size_t bytes = 0;
    char *slot = stk_lookup(si->si_addr, &guard, &bytes);
    if (slot && guard) {
        /* an arena slot or a big one (ringo_go_opts): the descriptor tops it either way */
        struct g *g = (struct g *)(slot + bytes - sched_g_reserve());
        char buf[320], name[G_NAME_LEN + 3] = "";
        if (g->name[0]) /* our own descriptor: the faulting goroutine is the one running here */
            snprintf(name, sizeof name, " \"%.*s\"", G_NAME_LEN - 1, g->name);
        int n = snprintf(buf, sizeof buf,
                         "fatal error: stack overflow in goroutine %lld%s (stack size %zu bytes; raise it "
                         "with RINGO_STACK_SIZE, struct ringo_config.stack_size or struct "
                         "ringo_go_opts.stack_size)\n",
                         (long long)g->id, name, g->stack_big ? g->stack_size : sched.stack_usable);
        (void)!write(2, buf, (size_t)n);
        signal(SIGABRT, SIG_DFL);
        abort();
    }
    /* not ours: pass it on unchanged */
    sigaction(sig, sig == SIGSEGV ? &old_segv : &old_bus, NULL);
    (void)uc;
}

void sched_segv_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
}

void sched_altstack_init(struct worker *w)
{
    stack_t ss;
    ss.ss_size = 64 * 1024;
    ss.ss_sp = malloc(ss.ss_size);
    ss.ss_flags = 0;
    w->altstack = ss.ss_sp; /* lives as long as the worker; kept reachable (LeakSanitizer) */
    if (ss.ss_sp)
        sigaltstack(&ss, NULL);
}

