/* kernel_iface/stackmem.h — the stack arena: reserve, guard, release pages.
 * Responsibility: hand out fixed-size stack slots carved from large MAP_NORESERVE chunks. Each
 * slot is [guard][usable bytes ... top]; the guard (stk_guard_bytes, STK_GUARD_DEFAULT unless
 * configured: several pages, so that a frame larger than a page, compiled without
 * -fstack-clash-protection, lands in it instead of stepping over it) is installed once, when the
 * slot is carved, with madvise(MADV_GUARD_INSTALL) (Linux 6.13+: no VMA per guard and no memory,
 * whatever its size, so a million guarded stacks fit under vm.max_map_count) or, as a fallback,
 * mprotect(PROT_NONE) (one VMA split per stack whatever the guard size, its pages never
 * resident: a larger guard costs address space only; stk_setup says once how many stacks that
 * allows).
 * NUMA: each chunk belongs to one node (stk_carve(node)) and its pages are given a preferred
 * policy for that node (mbind MPOL_PREFERRED: local memory when the node has it, other nodes
 * rather than an OOM kill when it has not), so a stack, pooled and reused, stays on its node.
 * Invariants: chunks are never unmapped (every slot of an allocated chunk stays valid memory for
 * the life of the process, so a racy reader such as the dump or the SIGSEGV handler never faults
 * on it; a slot not carved yet reads as zeroes); slot i is at a fixed address; the chunk table
 * only grows; the guard is the lowest stk_guard_bytes() of every carved slot, and a fault
 * anywhere in it is a guard hit (stk_lookup).
 * Contexts: stk_carve may be called from any thread (it takes a mutex); stk_lookup is
 * async-signal-safe (reads the chunk table with acquire loads).
 * Depends on: libc only. Knows nothing of goroutines. */
#ifndef RINGO_KI_STACKMEM_H
#define RINGO_KI_STACKMEM_H
#include <stdbool.h>
#include <stddef.h>

/* Default guard: 128 KiB, twice the 64 KiB frames of Go's TestStackOverflow (a frame is its
 * locals plus a few words, so a 64 KiB guard would miss by those words). */
#define STK_GUARD_DEFAULT (128u * 1024u)

enum stk_guard_kind { STK_GUARD_MADVISE, STK_GUARD_MPROTECT };

/* Configure once, before the first stk_carve: slot_bytes is the whole slot (guard included),
 * guard_bytes its guard; both multiples of the page size, the guard at least one page and at
 * least one page less than the slot (-EINVAL otherwise, nothing changed). allow_madvise false
 * forces the mprotect fallback. */
int    stk_setup(size_t slot_bytes, size_t guard_bytes, bool allow_madvise);
/* Bind new chunks to their node (numa: the machine has NUMA and libnuma works). */
void   stk_set_numa(bool numa);
enum stk_guard_kind stk_guard_kind(void);
size_t stk_slot_bytes(void);
size_t stk_guard_bytes(void);
/* Carve a fresh slot from node's chunks (node: a NUMA node id, or -1 for no preference);
 * returns its base (the low end of its guard) or NULL (ENOMEM, or the mprotect fallback ran out of
 * mappings). */
void  *stk_carve(int node);
/* Number of slots in allocated chunks (carved or not), and the base of slot i (< stk_count()). */
size_t stk_count(void);
void  *stk_slot(size_t i);
/* Which slot holds addr: returns the slot base or NULL; *in_guard tells whether addr lies in
 * that slot's guard (anywhere in it, up to the stack's low end). Async-signal-safe. */
void  *stk_lookup(const void *addr, bool *in_guard);
/* Give back the pages of [lo, lo+len) (page-aligned): they read as zero when touched again. */
void   stk_release(void *lo, size_t len);
#endif
