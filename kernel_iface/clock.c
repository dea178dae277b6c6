/* kernel_iface/clock.c — ringo_now, the public face of the one clock (clock.h).
 * Responsibility: API.md's ringo_now: CLOCK_MONOTONIC in nanoseconds, the clock of every
 * deadline ringo takes.
 * Depends on: clock.h; include/ringo.h for the exported declaration. */
#include "ringo.h"
#include "kernel_iface/clock.h"

int64_t ringo_now(void)
{
    return clk_now();
}
