/* sched/spinlock.h — the runtime's one short-held spinlock (never installed).
 *
 * Responsibility: locks held for a few instructions and never across a park (goroutines are not
 * preempted, so a holder is delayed only when its thread is): channel locks, the sync module's
 * wait-queue locks. Spin with cpu_relax (sched/arch/arch.h: x86 `pause`, AArch64 `isb`) for
 * SPIN_PAUSES tries (one is ~20 ns on x86 here, some tens of ns on Arm servers, so about
 * 2 us, longer than any critical section), then sched_yield(): the holder's thread was preempted
 * and needs this CPU.
 *
 * Ordering: S1 the acquiring CAS is acquire, pairing with S2, the release store of unlock, so
 * the holder sees what the previous holder wrote under the lock. The relaxed pre-load keeps a
 * waiter from bouncing the line with failed CASes (test-and-test-and-set).
 * Depends on: sched/arch/arch.h (cpu_relax).
 */
#ifndef RINGO_SCHED_SPINLOCK_H
#define RINGO_SCHED_SPINLOCK_H
#include "sched/arch/arch.h"
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define SPIN_PAUSES 100

static inline bool spin_trylock(_Atomic uint32_t *l)
{
    uint32_t z = 0;
    /* relaxed peek, then S1: acquire on success */
    return atomic_load_explicit(l, memory_order_relaxed) == 0 &&
           atomic_compare_exchange_weak_explicit(l, &z, 1, memory_order_acquire, memory_order_relaxed);
}

static inline void spin_lock(_Atomic uint32_t *l)
{
    for (unsigned spins = 0; !spin_trylock(l); spins++) {
        if (spins < SPIN_PAUSES)
            cpu_relax();
        else
            sched_yield(); /* the holder's thread was preempted */
    }
}

static inline void spin_unlock(_Atomic uint32_t *l)
{
    atomic_store_explicit(l, 0, memory_order_release); /* S2: publishes what the holder wrote */
}
#endif
