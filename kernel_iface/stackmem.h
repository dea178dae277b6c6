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
 * Big slots (ringo_go_opts: a stack larger than the arena's slots): each is its own
 * MAP_NORESERVE mapping [guard][body], the guard of the same size and kind as the arena's.
 * They obey the arena's invariants: never unmapped (a freed one keeps its address on a free
 * list keyed by its body size, for the next request of that size; its owner gives its pages
 * back first), registered in an append-only table (stk_big_count/stk_big_slot) that stk_lookup
 * walks too, so a guard hit in a big stack is found as in the arena. No NUMA binding: their
 * pages are placed by first touch.
 * Contexts: stk_carve and stk_carve_big/stk_free_big may be called from any thread (they take a
 * mutex); stk_lookup is async-signal-safe (reads the chunk and big-slot tables with acquire
 * loads).
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
/* Which slot holds addr (an arena slot or a big one): returns the slot base or NULL; *in_guard
 * tells whether addr lies in that slot's guard (anywhere in it, up to the stack's low end);
 * *bytes (when not NULL) gets the slot's whole size, guard included. Async-signal-safe. */
void  *stk_lookup(const void *addr, bool *in_guard, size_t *bytes);
/* Most big slots that ever exist at once (each is a mapping of its own, two with the mprotect
 * guard: vm.max_map_count is the other limit). */
#define STK_MAX_BIG 16384u
/* A big slot of stk_guard_bytes() + body bytes (body: a page multiple): a freed one of exactly
 * that body if there is one (its contents as its last owner left them), else a new mapping with
 * its guard installed (reading as zeroes). Returns its base (the low end of its guard) or NULL
 * (ENOMEM: no memory or mapping, STK_MAX_BIG reached, or the mprotect fallback's limit). */
void  *stk_carve_big(size_t body);
/* Put the big slot at base (from stk_carve_big, not on the free list) back for reuse. Its
 * pages stay as they are: the caller releases what it wants given back (stk_release). */
void   stk_free_big(void *base);
/* Big slots ever carved (free or not), and base and body size of big slot i (< stk_big_count()).
 * Any thread, racy readers included: an entry never changes once counted. */
size_t stk_big_count(void);
void  *stk_big_slot(size_t i, size_t *body);
/* Give back the pages of [lo, lo+len) (page-aligned): they read as zero when touched again. */
void   stk_release(void *lo, size_t len);
#endif
