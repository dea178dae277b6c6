/* sched/symbolize.c — code addresses to "function+0xoff (object+0xrel)".
 *
 * Responsibility: name the frames that ringo_dump, the hog report and the SIGQUIT dump print.
 * dladdr() alone is not enough: it sees only the dynamic symbol table, which holds neither
 * static functions (most goroutine bodies), nor ringo's hidden sched_* functions, nor anything
 * of an executable not linked with -rdynamic. So the ELF file of each loaded object is mapped
 * read-only, once, and its .symtab (.dynsym when the file is stripped) is sorted for binary
 * search; dladdr is the fallback for objects without a file (the vDSO). "object+0xrel" is the
 * address addr2line wants: `addr2line -f -e object 0xrel`.
 *
 * Invariants: objects[] only grows, under sym_lock; an entry whose object was unloaded is
 * forgotten when the loader's unload counter (dlpi_subs) moves. Symbol tables and file
 * mappings live as long as the process (a dump may run at any time, even during exit).
 * Contexts: any thread, in a goroutine or not. Not async-signal-safe (malloc, a mutex,
 * dl_iterate_phdr): signal handlers only record addresses; someone else names them.
 * Depends on: libc (dl_iterate_phdr, dladdr) only.
 */
#include "sched/debug/debug.h"
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct fsym {
    uintptr_t addr;               /* runtime address (bias applied) */
    uintptr_t size;               /* 0: unknown (assembly without .size) */
    const char *name;             /* into the file mapping */
};

struct object {
    uintptr_t bias;               /* dlpi_addr: file address + bias = runtime address */
    uintptr_t lo, hi;             /* runtime range covered by its PT_LOAD segments */
    char path[256];               /* as the loader names it; "" for the main program */
    char label[64];               /* basename, for printing */
    struct fsym *syms;            /* sorted by addr; NULL when the file could not be read */
    size_t nsyms;
    bool loaded;                  /* symbols looked for (found or not) */
};

#define MAX_OBJECTS 256
static struct object objects[MAX_OBJECTS]; /* under sym_lock */
static size_t nobjects;                     /* under sym_lock */
static unsigned long long seen_subs;        /* dlpi_subs when objects[] was last valid; sym_lock */
static pthread_mutex_t sym_lock = PTHREAD_MUTEX_INITIALIZER;

/* ------------------------------------------------------------------ reading an ELF file */

static int cmp_sym(const void *a, const void *b)
{
    const struct fsym *x = a, *y = b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* The executable: /proc/self/exe, the thread group leader's link, first; it is gone once main
 * has called pthread_exit or ringo_exit (a zombie has no mm, so the link cannot be read) while
 * its goroutines run on and may be dumped: then the calling thread's link. Not the thread's
 * link first: qemu-user emulates /proc/self/exe (the guest program) but not
 * /proc/thread-self/exe, which names qemu itself (every frame then got a name of qemu's). */
#define EXE_SELF "/proc/self/exe"
#define EXE_THREAD "/proc/thread-self/exe"

static bool is_func(const Elf64_Sym *s)
{
    unsigned t = ELF64_ST_TYPE(s->st_info);
    return (t == STT_FUNC || t == STT_GNU_IFUNC) && s->st_shndx != SHN_UNDEF && s->st_value != 0;
}

/* Fill o->syms from the file's .symtab, or .dynsym when stripped. Every offset read from the
 * file is bounds-checked: a truncated or foreign file gives no symbols, never a fault. */
static void load_syms(struct object *o)
{
    o->loaded = true;
    const char *file = o->path[0] ? o->path : EXE_SELF;
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && !o->path[0])
        fd = open(EXE_THREAD, O_RDONLY | O_CLOEXEC); /* the leader is gone (top) */
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof(Elf64_Ehdr)) {
        close(fd);
        return;
    }
    size_t len = (size_t)st.st_size;
    const unsigned char *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return;
    const Elf64_Ehdr *eh = (const void *)m;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff == 0 || eh->e_shoff > len ||
        eh->e_shnum > (len - eh->e_shoff) / sizeof(Elf64_Shdr))
        goto unmap;
    const Elf64_Shdr *sh = (const void *)(m + eh->e_shoff);
    const Elf64_Shdr *tab = NULL;
    for (unsigned pass = 0; pass < 2 && !tab; pass++)
        for (unsigned i = 0; i < eh->e_shnum; i++)
            if (sh[i].sh_type == (pass == 0 ? SHT_SYMTAB : SHT_DYNSYM)) {
                tab = &sh[i];
                break;
            }
    if (!tab || tab->sh_link >= eh->e_shnum)
        goto unmap;
    const Elf64_Shdr *strs = &sh[tab->sh_link];
    if (tab->sh_offset > len || tab->sh_size > len - tab->sh_offset || strs->sh_offset > len ||
        strs->sh_size > len - strs->sh_offset || strs->sh_size == 0)
        goto unmap;
    const char *str = (const char *)(m + strs->sh_offset);
    if (str[strs->sh_size - 1] != 0)
        goto unmap; /* names must end inside the table */
    const Elf64_Sym *sy = (const void *)(m + tab->sh_offset);
    size_t n = tab->sh_size / sizeof(Elf64_Sym), k = 0;
    for (size_t i = 0; i < n; i++)
        k += is_func(&sy[i]) && sy[i].st_name < strs->sh_size;
    if (k == 0)
        goto unmap;
    struct fsym *arr = malloc(k * sizeof *arr);
    if (!arr)
        goto unmap;
    k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_func(&sy[i]) || sy[i].st_name >= strs->sh_size)
            continue;
        arr[k].addr = (uintptr_t)sy[i].st_value + o->bias;
        arr[k].size = (uintptr_t)sy[i].st_size;
        arr[k].name = str + sy[i].st_name;
        k++;
    }
    qsort(arr, k, sizeof *arr, cmp_sym);
    o->syms = arr;
    o->nsyms = k;
    return; /* the mapping stays: names point into it */
unmap:
    munmap((void *)m, len);
}

/* ------------------------------------------------------------------ which object holds pc */

struct find_arg {
    uintptr_t pc;
    const char *name;
    uintptr_t bias, lo, hi;
    bool found;
    unsigned long long subs;
};

static int find_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    struct find_arg *a = data;
    a->subs = info->dlpi_subs;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (unsigned i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_memsz;
        if (s < lo)
            lo = s;
        if (e > hi)
            hi = e;
    }
    if (a->pc >= lo && a->pc < hi) {
        a->name = info->dlpi_name ? info->dlpi_name : "";
        a->bias = info->dlpi_addr;
        a->lo = lo;
        a->hi = hi;
        a->found = true;
        return 1;
    }
    (void)size;
    return 0;
}

static int subs_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    *(unsigned long long *)data = info->dlpi_subs;
    (void)size;
    return 1; /* the counter is the same in every entry: one is enough */
}

static void set_label(struct object *o)
{
    char exe[256];
    const char *p = o->path;
    if (!p[0]) {
        ssize_t n = readlink(EXE_SELF, exe, sizeof exe - 1);
        if (n <= 0)
            n = readlink(EXE_THREAD, exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = 0;
        p = exe;
    }
    const char *slash = strrchr(p, '/');
    snprintf(o->label, sizeof o->label, "%.63s", slash ? slash + 1 : p[0] ? p : "?");
}

/* The object holding pc, its symbols loaded; NULL if none. Under sym_lock. */
static struct object *object_of(uintptr_t pc)
{
    unsigned long long subs = 0;
    dl_iterate_phdr(subs_cb, &subs);
    if (subs != seen_subs) {
        nobjects = 0; /* something was unloaded: ranges may now belong to someone else */
        seen_subs = subs;
    }
    for (size_t i = 0; i < nobjects; i++)
        if (pc >= objects[i].lo && pc < objects[i].hi)
            return &objects[i];
    struct find_arg a = { .pc = pc };
    dl_iterate_phdr(find_cb, &a);
    if (!a.found || nobjects == MAX_OBJECTS)
        return NULL;
    struct object *o = &objects[nobjects++];
    memset(o, 0, sizeof *o);
    o->bias = a.bias;
    o->lo = a.lo;
    o->hi = a.hi;
    snprintf(o->path, sizeof o->path, "%s", a.name);
    set_label(o);
    /* the vDSO has no file: dladdr names its symbols */
    if (strncmp(o->label, "linux-vdso", 10) != 0)
        load_syms(o);
    return o;
}

static const struct fsym *lookup(const struct object *o, uintptr_t a)
{
    size_t lo = 0, hi = o->nsyms;
    while (lo < hi) { /* first symbol with addr > a */
        size_t mid = lo + (hi - lo) / 2;
        if (o->syms[mid].addr <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    const struct fsym *s = &o->syms[lo - 1];
    if (s->size && a >= s->addr + s->size)
        return NULL; /* in a gap between functions (padding, or code without a symbol) */
    return s;
}

/* ------------------------------------------------------------------ the interface */

size_t sched_sym_format(uintptr_t pc, bool ret, char *buf, size_t n)
{
    uintptr_t a = ret && pc ? pc - 1 : pc;
    const char *name = NULL;
    uintptr_t off = 0, bias = 0;
    char label[64] = "?";
    pthread_mutex_lock(&sym_lock);
    struct object *o = object_of(a);
    if (o) {
        bias = o->bias;
        snprintf(label, sizeof label, "%s", o->label);
        const struct fsym *s = o->syms ? lookup(o, a) : NULL;
        if (s) {
            name = s->name;
            off = pc - s->addr;
        }
    }
    pthread_mutex_unlock(&sym_lock); /* names point into never-unmapped file mappings */
    Dl_info di;
    if (!name && dladdr((void *)a, &di) && di.dli_sname && di.dli_saddr) {
        name = di.dli_sname;
        off = pc - (uintptr_t)di.dli_saddr;
    }
    int k;
    if (name)
        k = snprintf(buf, n, "%s+0x%lx (%s+0x%lx)", name, (unsigned long)off, label,
                     (unsigned long)(pc - bias));
    else
        k = snprintf(buf, n, "0x%lx (%s+0x%lx)", (unsigned long)pc, label, (unsigned long)(pc - bias));
    return k < 0 ? 0 : (size_t)k < n ? (size_t)k : n - 1;
}

const char *sched_sym_name(uintptr_t pc, char *buf, size_t n)
{
    char tmp[512];
    sched_sym_format(pc, false, tmp, sizeof tmp);
    /* "name+0x..." -> "name"; an unknown address stays "0x..." */
    char *plus = strchr(tmp, '+');
    char *sp = strchr(tmp, ' ');
    if (tmp[0] != '0' && plus && (!sp || plus < sp))
        *plus = 0;
    else if (sp)
        *sp = 0;
    snprintf(buf, n, "%s", tmp);
    return buf;
}
