/* kernel_iface/stackmem.c — see stackmem.h for the contract and invariants.
 * Layout: chunks of STK_CHUNK_SLOTS slots, each chunk one MAP_NORESERVE mapping (no commit
 * charge, pages appear on first touch, on the NUMA node of the toucher). The chunk table is a
 * fixed array so that lookups from a signal handler need no lock; so is the table of big slots
 * (one mapping each, after the chunks in a lookup: a big stack is the rare case). */
#include "kernel_iface/stackmem.h"
#include <errno.h>
#include <fcntl.h> /* O_CLOEXEC */
#include <numaif.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 uapi; liburing/glibc headers here predate it */
#endif

#define STK_CHUNK_SLOTS 256u
#define STK_MAX_CHUNKS  16384u /* 4 Mi stacks */

#define STK_MAX_NODES   1024u

static size_t slot_bytes, guard_bytes; /* set by stk_setup, before any carve or lookup */
static enum stk_guard_kind guard_kind = STK_GUARD_MPROTECT;
static bool numa_bind;
static pthread_mutex_t carve_lock = PTHREAD_MUTEX_INITIALIZER;
/* chunk bases: written under carve_lock with release, read anywhere with acquire */
static _Atomic(char *) chunks[STK_MAX_CHUNKS];
/* chunks allocated; written under carve_lock (release: the chunk pointer is stored first),
 * read anywhere (acquire) */
static _Atomic size_t nchunks;
/* per node (index node + 1; 0 = no preference): the chunk being carved and the next slot in
 * it; under carve_lock */
static struct { size_t chunk, next; bool any; } cur[STK_MAX_NODES + 1];
static size_t ncarved; /* under carve_lock: for the mprotect limit */

/* Big slots. The table: base and body of each, written once under carve_lock (body first,
 * then the base with release, then nbig with release), read anywhere with acquire. The free
 * lists: one per body size in use, linked through big_next (index + 1; 0 ends a list), under
 * carve_lock. A few sizes at most are in use (goroutine.c rounds requests to powers of two). */
static _Atomic(char *) big_base[STK_MAX_BIG];
static _Atomic size_t big_body[STK_MAX_BIG];
static _Atomic size_t nbig;
static uint32_t big_next[STK_MAX_BIG];
#define STK_BIG_CLASSES 64u
static struct { size_t body; uint32_t head; } big_free[STK_BIG_CLASSES];
static unsigned nbig_classes;

static size_t max_mprotect_stacks(void)
{
    long maps = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &maps) != 1)
            maps = 65530;
        fclose(f);
    }
    /* each guarded stack splits its chunk into two more mappings; keep some for the program */
    return maps > 2048 ? (size_t)(maps - 1024) / 2 : 512;
}

int stk_setup(size_t bytes, size_t guard, bool allow_madvise)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    if (bytes % pg || guard % pg || guard < pg || bytes < guard + pg)
        return -EINVAL;
    slot_bytes = bytes;
    guard_bytes = guard;
    guard_kind = STK_GUARD_MPROTECT;
    if (allow_madvise) {
        /* Probe on a scratch page: EINVAL means the kernel predates MADV_GUARD_INSTALL. A
         * success must also leave a page the kernel cannot read: qemu-user (7.2, the AArch64
         * CI) answers 0 to every madvise it does not emulate and installs nothing, and a
         * guard that is not there lets an overflow run into the next stack. write(2) from a
         * guard page fails with EFAULT; from an ordinary page it copies the byte. */
        void *p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) {
            int fds[2];
            if (madvise(p, pg, MADV_GUARD_INSTALL) == 0 && pipe2(fds, O_CLOEXEC) == 0) {
                if (write(fds[1], p, 1) < 0 && errno == EFAULT)
                    guard_kind = STK_GUARD_MADVISE;
                close(fds[0]);
                close(fds[1]);
            }
            munmap(p, pg);
        }
    }
    if (guard_kind == STK_GUARD_MPROTECT)
        fprintf(stderr, "ringo: MADV_GUARD_INSTALL unavailable; mprotect guard pages allow about "
                        "%zu goroutines alive at once (vm.max_map_count)\n", max_mprotect_stacks());
    return 0;
}

void stk_set_numa(bool numa) { numa_bind = numa; }
enum stk_guard_kind stk_guard_kind(void) { return guard_kind; }
size_t stk_slot_bytes(void) { return slot_bytes; }
size_t stk_guard_bytes(void) { return guard_bytes; }

/* A new chunk for node (-1: none), bound to it. Under carve_lock. */
static bool new_chunk(int node, size_t *ci)
{
    size_t n = atomic_load_explicit(&nchunks, memory_order_relaxed); /* own: under carve_lock */
    if (n >= STK_MAX_CHUNKS)
        return false;
    char *base = mmap(NULL, slot_bytes * STK_CHUNK_SLOTS, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        return false;
    if (numa_bind && node >= 0 && node < 64 * 16) {
        unsigned long mask[16] = { 0 };
        mask[node / 64] = 1ul << (node % 64);
        /* preferred, not bind: local pages when the node has memory, elsewhere rather than an
         * OOM kill when it has not. Best effort: a refusal (seccomp) leaves first-touch. */
        mbind(base, slot_bytes * STK_CHUNK_SLOTS, MPOL_PREFERRED, mask, 64 * 16, 0);
    }
    atomic_store_explicit(&chunks[n], base, memory_order_release); /* lookups see a valid mapping */
    atomic_store_explicit(&nchunks, n + 1, memory_order_release);
    *ci = n;
    return true;
}

void *stk_carve(int node)
{
    unsigned k = node >= 0 && node < (int)STK_MAX_NODES ? (unsigned)node + 1 : 0;
    pthread_mutex_lock(&carve_lock);
    if (guard_kind == STK_GUARD_MPROTECT && ncarved >= max_mprotect_stacks())
        goto fail;
    if (!cur[k].any || cur[k].next == STK_CHUNK_SLOTS) {
        size_t ci;
        if (!new_chunk(k ? (int)k - 1 : -1, &ci))
            goto fail;
        cur[k].chunk = ci;
        cur[k].next = 0;
        cur[k].any = true;
    }
    char *base = atomic_load_explicit(&chunks[cur[k].chunk], memory_order_relaxed); /* own */
    char *slot = base + cur[k].next * slot_bytes;
    /* the whole guard: with madvise it is page-table markers only; with mprotect one VMA split
     * whatever its size, PROT_NONE pages that are never touched, so never resident */
    int r = guard_kind == STK_GUARD_MADVISE ? madvise(slot, guard_bytes, MADV_GUARD_INSTALL)
                                            : mprotect(slot, guard_bytes, PROT_NONE);
    if (r != 0)
        goto fail;
    cur[k].next++;
    ncarved++;
    pthread_mutex_unlock(&carve_lock);
    return slot;
fail:
    pthread_mutex_unlock(&carve_lock);
    errno = ENOMEM;
    return NULL;
}

size_t stk_count(void)
{
    /* acquire: pairs with new_chunk; uncarved slots of a chunk read as zeroes */
    return atomic_load_explicit(&nchunks, memory_order_acquire) * STK_CHUNK_SLOTS;
}

void *stk_slot(size_t i)
{
    char *base = atomic_load_explicit(&chunks[i / STK_CHUNK_SLOTS], memory_order_acquire);
    return base + (i % STK_CHUNK_SLOTS) * slot_bytes;
}

void *stk_carve_big(size_t body)
{
    pthread_mutex_lock(&carve_lock);
    unsigned c = 0;
    while (c < nbig_classes && big_free[c].body != body)
        c++;
    if (c < nbig_classes && big_free[c].head) {
        uint32_t i = big_free[c].head - 1;
        big_free[c].head = big_next[i];
        big_next[i] = 0;
        pthread_mutex_unlock(&carve_lock);
        return atomic_load_explicit(&big_base[i], memory_order_relaxed); /* under carve_lock */
    }
    size_t n = atomic_load_explicit(&nbig, memory_order_relaxed); /* own: under carve_lock */
    if (n >= STK_MAX_BIG || (c == nbig_classes && c == STK_BIG_CLASSES) ||
        (guard_kind == STK_GUARD_MPROTECT && ncarved >= max_mprotect_stacks()))
        goto fail;
    char *base = mmap(NULL, guard_bytes + body, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        goto fail;
    int r = guard_kind == STK_GUARD_MADVISE ? madvise(base, guard_bytes, MADV_GUARD_INSTALL)
                                            : mprotect(base, guard_bytes, PROT_NONE);
    if (r != 0) {
        munmap(base, guard_bytes + body); /* never published: nobody can have seen it */
        goto fail;
    }
    if (c == nbig_classes) {
        big_free[c].body = body;
        big_free[c].head = 0;
        nbig_classes++;
    }
    atomic_store_explicit(&big_body[n], body, memory_order_relaxed);   /* published by the base */
    atomic_store_explicit(&big_base[n], base, memory_order_release);   /* lookups see its size */
    atomic_store_explicit(&nbig, n + 1, memory_order_release);         /* pairs with readers */
    ncarved++;
    pthread_mutex_unlock(&carve_lock);
    return base;
fail:
    pthread_mutex_unlock(&carve_lock);
    errno = ENOMEM;
    return NULL;
}

void stk_free_big(void *p)
{
    pthread_mutex_lock(&carve_lock);
    size_t n = atomic_load_explicit(&nbig, memory_order_relaxed); /* own: under carve_lock */
    size_t i = n;
    while (i-- > 0 && atomic_load_explicit(&big_base[i], memory_order_relaxed) != p) /* under carve_lock */
        ;
    if (i < n) {
        size_t body = atomic_load_explicit(&big_body[i], memory_order_relaxed); /* under carve_lock */
        unsigned c = 0;
        while (big_free[c].body != body) /* its class was made with it */
            c++;
        big_next[i] = big_free[c].head;
        big_free[c].head = (uint32_t)i + 1;
    }
    pthread_mutex_unlock(&carve_lock);
}

size_t stk_big_count(void)
{
    return atomic_load_explicit(&nbig, memory_order_acquire); /* pairs with stk_carve_big */
}

void *stk_big_slot(size_t i, size_t *body)
{
    char *base = atomic_load_explicit(&big_base[i], memory_order_acquire); /* pairs with stk_carve_big */
    if (body)
        *body = atomic_load_explicit(&big_body[i], memory_order_relaxed); /* ordered by the base */
    return base;
}

void *stk_lookup(const void *addr, bool *in_guard, size_t *bytes)
{
    size_t nc = atomic_load_explicit(&nchunks, memory_order_acquire); /* pairs with new_chunk */
    const char *a = addr;
    for (size_t ci = 0; ci < nc; ci++) {
        char *base = atomic_load_explicit(&chunks[ci], memory_order_acquire); /* pairs with carve */
        if (!base || a < base || a >= base + slot_bytes * STK_CHUNK_SLOTS)
            continue;
        size_t off = (size_t)(a - base);
        char *slot = base + off / slot_bytes * slot_bytes;
        if (in_guard)
            *in_guard = (size_t)(a - slot) < guard_bytes; /* anywhere in it, not only its top page */
        if (bytes)
            *bytes = slot_bytes;
        return slot;
    }
    size_t nb = atomic_load_explicit(&nbig, memory_order_acquire); /* pairs with stk_carve_big */
    for (size_t i = 0; i < nb; i++) {
        char *base = atomic_load_explicit(&big_base[i], memory_order_acquire); /* pairs with carve */
        size_t len = guard_bytes + atomic_load_explicit(&big_body[i], memory_order_relaxed); /* by the base */
        if (!base || a < base || a >= base + len)
            continue;
        if (in_guard)
            *in_guard = (size_t)(a - base) < guard_bytes;
        if (bytes)
            *bytes = len;
        return base;
    }
    return NULL;
}

void stk_release(void *lo, size_t len)
{
    if (len)
        madvise(lo, len, MADV_DONTNEED);
}
