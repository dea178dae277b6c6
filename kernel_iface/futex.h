/* kernel_iface/futex.h — wait / wake on a private 32-bit futex word.
 * Responsibility: the plain-syscall futex used by parked plain threads and sleeping workers.
 * Contract: futex_wait returns 0 when woken or when *addr != val at entry (the caller re-checks
 * its condition in a loop: spurious returns are allowed), -ETIMEDOUT when the absolute
 * CLOCK_MONOTONIC deadline (ns, -1 = none) passed, -EINTR on a signal.
 * Depends on: libc only. Knows nothing of goroutines. */
#ifndef RINGO_KI_FUTEX_H
#define RINGO_KI_FUTEX_H
#include <stdint.h>

int futex_wait(uint32_t *addr, uint32_t val, int64_t deadline);
int futex_wake(uint32_t *addr, int n);
#endif
