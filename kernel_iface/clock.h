/* kernel_iface/clock.h — monotonic time in nanoseconds.
 * Responsibility: the one clock every deadline in ringo is measured on (CLOCK_MONOTONIC, vDSO).
 * Depends on: libc only. */
#ifndef RINGO_KI_CLOCK_H
#define RINGO_KI_CLOCK_H
#include <stdint.h>
#include <time.h>

static inline int64_t clk_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* CLOCK_MONOTONIC_COARSE: same epoch, tick resolution (1-4 ms), costs a memory read. For
 * reports (how long a goroutine has waited), never for deadlines. */
static inline int64_t clk_now_coarse(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline struct timespec clk_to_ts(int64_t ns)
{
    struct timespec ts = { .tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL };
    return ts;
}
#endif
