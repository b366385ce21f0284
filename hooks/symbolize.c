/* SPDX-License-Identifier: MIT */
/*
 * Symbolisation with elfutils' libdwfl (see symbolize.h).
 *
 * One Dwfl session for the process, made at the first lookup from /proc/self/maps
 * (dwfl_linux_proc_report).  A pc outside every known module makes it report the maps
 * again once (a module dlopen'ed since), adding modules without dropping old ones.
 * Results go into a pc -> struct ms_symbol cache; all strings are copied into our own
 * string arena and interned, so they outlive libdw's data and compare by pointer.
 *
 * libdw is not linked but loaded by ms_symbol_load (dlopen): it and the libraries it pulls
 * in (libelf, liblzma, libz, libbz2) cost every process about 1.5 ms of start-up and 0.4 MiB
 * of RSS, for modes that never symbolise.  The shim loads it at start-up in the modes that
 * print tracebacks (debug, tracing) and when tracing starts at run time; a fatal report
 * never loads it (dlopen in a dying process), it falls back to dladdr.
 *
 * File names are given as the compiler was given them: libdw joins relative names with the
 * compilation directory, and we strip that directory again ("demo.c", not
 * "/home/me/demo.c"), which is what __FILE__ and CPython's co_filename show.
 */
#include "symbolize.h"

#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guard.h"
#include "os.h"
#include "rustdemangle.h"

#define MS_SYMBOL_CHUNK (64 * 1024)
#define MS_SYMBOL_MIN_SLOTS 1024

struct ms_symbol_slot {
    uintptr_t pc;
    struct ms_symbol *sym;
};

struct ms_string_slot {
    uint64_t hash;
    const char *s;
};

/* The libdw functions used here, called through sym_state.dw once loaded. */
#define MS_DW_FUNCS(X) \
    X(dwfl_begin) \
    X(dwfl_report_begin_add) \
    X(dwfl_linux_proc_report) \
    X(dwfl_report_end) \
    X(dwfl_addrmodule) \
    X(dwfl_module_info) \
    X(dwfl_module_getelf) \
    X(dwfl_module_addrinfo) \
    X(dwfl_module_getsrc) \
    X(dwfl_lineinfo) \
    X(dwfl_line_comp_dir) \
    X(dwfl_module_nextcu) \
    X(dwarf_haspc) \
    X(dwarf_getsrc_die) \
    X(dwarf_linesrc) \
    X(dwarf_lineno) \
    X(dwarf_formstring) \
    X(dwarf_attr) \
    X(dwfl_linux_proc_find_elf) \
    X(dwfl_standard_find_debuginfo)

struct ms_dw {
#define MS_DW_MEMBER(f) __typeof__(f) *f;
    MS_DW_FUNCS(MS_DW_MEMBER)
#undef MS_DW_MEMBER
};

struct ms_symbol_state {
    pthread_mutex_t lock;
    pthread_once_t load_once;
    int loaded;                    /* dw is complete (set with release) */
    struct ms_dw dw;
    Dwfl_Callbacks callbacks;
    Dwfl *dwfl;
    int dwfl_failed;
    unsigned reports;              /* times /proc/self/maps was reported */
    char *chunk;                   /* string and record arena: bump pointer in chunk */
    size_t chunk_used;
    struct ms_symbol_slot *cache;  /* open addressing on pc, linear probing */
    size_t cache_mask, cache_count;
    struct ms_string_slot *strings;
    size_t strings_mask, strings_count;
    int demangler_looked_up;
    char *(*demangle)(const char *, char *, size_t *, int *);
};

static struct ms_symbol_state sym_state = {
    .lock = PTHREAD_MUTEX_INITIALIZER, .load_once = PTHREAD_ONCE_INIT,
};

#define DW(f) (sym_state.dw.f)

static void load_libdw(void)
{
    ms_guard_enter();      /* dlopen's allocations are memshim's own, never traced */
    void *h = dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
    int ok = h != NULL;
#define MS_DW_RESOLVE(f) \
    if (ok && (sym_state.dw.f = (__typeof__(f) *)dlsym(h, #f)) == NULL) \
        ok = 0;
    MS_DW_FUNCS(MS_DW_RESOLVE)
#undef MS_DW_RESOLVE
    ms_guard_leave();
    if (!ok)
        return;            /* no libdw: lookups use dladdr */
    sym_state.callbacks.find_elf = sym_state.dw.dwfl_linux_proc_find_elf;
    sym_state.callbacks.find_debuginfo = sym_state.dw.dwfl_standard_find_debuginfo;
    __atomic_store_n(&sym_state.loaded, 1, __ATOMIC_RELEASE);
}

void ms_symbol_load(void)
{
    pthread_once(&sym_state.load_once, load_libdw);
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a: report time only, simplicity wins */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static uint64_t hash_pc(uintptr_t pc)
{
    uint64_t h = pc * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

static void *arena_alloc(size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (size > MS_SYMBOL_CHUNK / 4)
        return ms_os_map(size); /* rare (huge C++ names): its own mapping */
    if (sym_state.chunk == NULL || sym_state.chunk_used + size > MS_SYMBOL_CHUNK) {
        char *c = ms_os_map(MS_SYMBOL_CHUNK);
        if (c == NULL)
            return NULL;
        sym_state.chunk = c;
        sym_state.chunk_used = 0;
    }
    void *p = sym_state.chunk + sym_state.chunk_used;
    sym_state.chunk_used += size;
    return p;
}

/* Grows an open-addressing table of entries of entry_size bytes whose first word is the key
 * (0 = empty) hashed by rehash. */
static int grow_table(void **table, size_t *mask, size_t entry_size,
                      uint64_t (*rehash)(const void *entry))
{
    size_t old_slots = *table ? *mask + 1 : 0;
    size_t slots = old_slots ? old_slots * 2 : MS_SYMBOL_MIN_SLOTS;
    char *fresh = ms_os_map(slots * entry_size);
    if (fresh == NULL)
        return -1;
    for (size_t i = 0; i < old_slots; i++) {
        const char *e = (const char *)*table + i * entry_size;
        if (*(const uintptr_t *)e == 0)
            continue;
        size_t j = rehash(e) & (slots - 1);
        while (*(uintptr_t *)(fresh + j * entry_size) != 0)
            j = (j + 1) & (slots - 1);
        memcpy(fresh + j * entry_size, e, entry_size);
    }
    if (*table)
        ms_os_unmap(*table, old_slots * entry_size);
    *table = fresh;
    *mask = slots - 1;
    return 0;
}

static uint64_t rehash_string(const void *e)
{
    return ((const struct ms_string_slot *)e)->hash;
}

static uint64_t rehash_symbol(const void *e)
{
    return hash_pc(((const struct ms_symbol_slot *)e)->pc);
}

/* The interned copy of s[0..n), or NULL when out of memory.  Hash 0 is the empty mark, so
 * it is remapped. */
static const char *intern_n(const char *s, size_t n)
{
    uint64_t h = hash_bytes(s, n) | 1;
    if (sym_state.strings == NULL || (sym_state.strings_count + 1) * 4 > (sym_state.strings_mask + 1) * 3)
        if (grow_table((void **)&sym_state.strings, &sym_state.strings_mask,
                       sizeof(struct ms_string_slot), rehash_string) < 0)
            return NULL;
    size_t i = h & sym_state.strings_mask;
    for (;; i = (i + 1) & sym_state.strings_mask) {
        struct ms_string_slot *slot = &sym_state.strings[i];
        if (slot->hash == 0)
            break;
        if (slot->hash == h && strncmp(slot->s, s, n) == 0 && slot->s[n] == '\0')
            return slot->s;
    }
    char *copy = arena_alloc(n + 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, s, n);
    copy[n] = '\0';
    sym_state.strings[i].hash = h;
    sym_state.strings[i].s = copy;
    sym_state.strings_count++;
    return copy;
}

static const char *intern(const char *s)
{
    return s ? intern_n(s, strlen(s)) : NULL;
}

/* Reports the process's modules into the session (the caller holds the guard). */
static void report_modules(void)
{
    if (sym_state.dwfl == NULL) {
        if (sym_state.dwfl_failed || !__atomic_load_n(&sym_state.loaded, __ATOMIC_ACQUIRE))
            return;
        sym_state.dwfl = DW(dwfl_begin)(&sym_state.callbacks);
        if (sym_state.dwfl == NULL) {
            sym_state.dwfl_failed = 1;
            return;
        }
    }
    DW(dwfl_report_begin_add)(sym_state.dwfl);
    DW(dwfl_linux_proc_report)(sym_state.dwfl, getpid());
    DW(dwfl_report_end)(sym_state.dwfl, NULL, NULL);
    sym_state.reports++;
}

/* A function name for people: symbol versions ("__libc_start_main@@GLIBC_2.34") cut off,
 * Rust and C++ names demangled.  Rust's first: its legacy names are valid C++ names, which
 * the C++ runtime would leave with their hash and "$LT$" escapes. */
static const char *demangled(const char *name)
{
    if (name == NULL)
        return NULL;
    const char *at = strchr(name, '@');
    if (at && at != name)
        return intern_n(name, (size_t)(at - name)); /* versioned names are C names */
    char rust[2048];
    if (ms_rust_demangle(name, rust, sizeof rust))
        return intern(rust);
    if (name[0] != '_' || name[1] != 'Z')
        return intern(name);
    if (!sym_state.demangler_looked_up) {
        /* Only a C++ program has it; memshim does not link the C++ runtime for this. */
        *(void **)&sym_state.demangle = dlsym(RTLD_DEFAULT, "__cxa_demangle");
        sym_state.demangler_looked_up = 1;
    }
    if (sym_state.demangle == NULL)
        return intern(name);
    int status = -1;
    char *d = sym_state.demangle(name, NULL, NULL, &status);
    const char *r = intern(status == 0 && d ? d : name);
    free(d); /* the demangler's malloc ran under the guard: the C library's, so is this */
    return r;
}

/* The file name as given to the compiler: libdw's absolute name minus the compilation
 * directory when it starts with it. */
static const char *source_name(const char *file, const char *comp_dir)
{
    if (file == NULL)
        return NULL;
    if (comp_dir && comp_dir[0]) {
        size_t n = strlen(comp_dir);
        if (strncmp(file, comp_dir, n) == 0 && file[n] == '/' && file[n + 1] != '\0')
            return intern(file + n + 1);
    }
    return intern(file);
}

/* dwfl_module_getsrc finds the compilation unit through .debug_aranges, which clang does
 * not emit: without this, programs built with clang had no lines at all.  So when it fails,
 * ask every unit whether it covers the address (report time only, cached per pc). */
static void lookup_line_by_cu(Dwfl_Module *mod, Dwarf_Addr addr, struct ms_symbol *s)
{
    Dwarf_Addr bias = 0;
    Dwarf_Die *cu = NULL;
    while ((cu = DW(dwfl_module_nextcu)(mod, cu, &bias)) != NULL) {
        if (DW(dwarf_haspc)(cu, addr - bias) != 1)
            continue;
        Dwarf_Line *line = DW(dwarf_getsrc_die)(cu, addr - bias);
        int lineno = 0;
        const char *file = line ? DW(dwarf_linesrc)(line, NULL, NULL) : NULL;
        if (file && DW(dwarf_lineno)(line, &lineno) == 0 && lineno > 0) {
            Dwarf_Attribute attr;
            const char *comp_dir = DW(dwarf_formstring)(DW(dwarf_attr)(cu, DW_AT_comp_dir, &attr));
            s->file = source_name(file, comp_dir);
            s->line = s->file ? (unsigned)lineno : 0;
        }
        return;
    }
}

/* Fills s from DWARF and ELF symbols (lock and guard held). */
static int lookup_dwfl(uintptr_t pc, struct ms_symbol *s)
{
    Dwarf_Addr addr = pc - 1; /* return address -> inside the call instruction */
    if (sym_state.reports == 0)
        report_modules();
    if (sym_state.dwfl == NULL)
        return -1;
    Dwfl_Module *mod = DW(dwfl_addrmodule)(sym_state.dwfl, addr);
    if (mod == NULL && sym_state.reports < 64) {
        report_modules(); /* maybe dlopen'ed since the last report */
        mod = DW(dwfl_addrmodule)(sym_state.dwfl, addr);
    }
    if (mod == NULL)
        return -1;
    const char *path = DW(dwfl_module_info)(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    s->module = intern(path);
    Dwarf_Addr bias = 0;
    if (DW(dwfl_module_getelf)(mod, &bias) == NULL) {
        Dwarf_Addr start = 0;
        DW(dwfl_module_info)(mod, NULL, &start, NULL, NULL, NULL, NULL, NULL);
        bias = start;
    }
    s->module_offset = pc - bias;
    GElf_Off off = 0;
    GElf_Sym sym;
    const char *fn = DW(dwfl_module_addrinfo)(mod, addr, &off, &sym, NULL, NULL, NULL);
    if (fn) {
        s->function = demangled(fn);
        s->function_offset = off + 1;
    }
    Dwfl_Line *line = DW(dwfl_module_getsrc)(mod, addr);
    if (line) {
        int lineno = 0;
        const char *file = DW(dwfl_lineinfo)(line, NULL, &lineno, NULL, NULL, NULL);
        if (file && lineno > 0) {
            s->file = source_name(file, DW(dwfl_line_comp_dir)(line));
            s->line = s->file ? (unsigned)lineno : 0;
        }
    } else {
        lookup_line_by_cu(mod, addr, s);
    }
    return 0;
}

/* What dladdr knows (exported symbols only, no lines): the fatal path's fallback when the
 * lock is taken, and the normal path's when libdw finds nothing. */
static int lookup_dladdr(uintptr_t pc, struct ms_symbol *s, int copy)
{
    Dl_info info;
    if (dladdr((void *)(pc - 1), &info) == 0)
        return -1;
    s->module = copy ? intern(info.dli_fname) : info.dli_fname;
    s->module_offset = pc - (uintptr_t)info.dli_fbase;
    if (info.dli_sname) {
        s->function = copy ? demangled(info.dli_sname) : info.dli_sname;
        s->function_offset = pc - (uintptr_t)info.dli_saddr;
    }
    return 0;
}

static struct ms_symbol_slot *cache_slot(uintptr_t pc)
{
    if (sym_state.cache == NULL)
        return NULL;
    for (size_t i = hash_pc(pc) & sym_state.cache_mask;; i = (i + 1) & sym_state.cache_mask) {
        struct ms_symbol_slot *slot = &sym_state.cache[i];
        if (slot->pc == pc || slot->pc == 0)
            return slot;
    }
}

static void cache_put(uintptr_t pc, const struct ms_symbol *s)
{
    if (sym_state.cache == NULL || (sym_state.cache_count + 1) * 4 > (sym_state.cache_mask + 1) * 3)
        if (grow_table((void **)&sym_state.cache, &sym_state.cache_mask,
                       sizeof(struct ms_symbol_slot), rehash_symbol) < 0)
            return;
    struct ms_symbol *copy = arena_alloc(sizeof *copy);
    if (copy == NULL)
        return;
    *copy = *s;
    struct ms_symbol_slot *slot = cache_slot(pc);
    slot->pc = pc;
    slot->sym = copy;
    sym_state.cache_count++;
}

int ms_symbol_lookup(uintptr_t pc, struct ms_symbol *out, enum ms_symbol_mode mode)
{
    memset(out, 0, sizeof *out);
    if (pc == 0)
        return -1;
    if (mode == MS_SYMBOL_NORMAL)
        ms_symbol_load();          /* a dlopen: never on a fatal path */
    if (mode == MS_SYMBOL_NOHEAP) {
        int r = -1;
        if (pthread_mutex_trylock(&sym_state.lock) == 0) {
            struct ms_symbol_slot *slot = cache_slot(pc);
            if (slot && slot->pc == pc) {
                *out = *slot->sym;
                r = 0;
            }
            pthread_mutex_unlock(&sym_state.lock);
        }
        return r == 0 ? 0 : lookup_dladdr(pc, out, 0);
    }
    if (mode == MS_SYMBOL_FATAL) {
        if (pthread_mutex_trylock(&sym_state.lock) != 0) {
            ms_guard_enter();
            int r = lookup_dladdr(pc, out, 0);
            ms_guard_leave();
            return r;
        }
    } else {
        pthread_mutex_lock(&sym_state.lock);
    }
    int r = 0;
    struct ms_symbol_slot *slot = cache_slot(pc);
    if (slot && slot->pc == pc) {
        *out = *slot->sym;
    } else {
        ms_guard_enter();
        r = lookup_dwfl(pc, out);
        if (r < 0 || out->function == NULL) {
            struct ms_symbol d = { 0 };
            if (lookup_dladdr(pc, &d, 1) == 0) {
                if (r < 0)
                    *out = d;
                else
                    out->function = d.function, out->function_offset = d.function_offset;
                r = 0;
            }
        }
        ms_guard_leave();
        cache_put(pc, out);
    }
    pthread_mutex_unlock(&sym_state.lock);
    return r;
}

int ms_symbol_in_c_allocator(uintptr_t pc)
{
    Dl_info here, libc;
    if (dladdr((void *)(pc - 1), &here) == 0 || dladdr((void *)(uintptr_t)abort, &libc) == 0
        || here.dli_fbase != libc.dli_fbase || here.dli_sname == NULL)
        return 0;
    const char *n = here.dli_sname;
    return strstr(n, "alloc") || strstr(n, "free") || strstr(n, "memalign")
           || strncmp(n, "mall", 4) == 0;
}

void ms_symbol_print(struct ms_out *o, const struct ms_symbol *s, uintptr_t pc)
{
    ms_out_str(o, "  File \"");
    if (s->file) {
        ms_out_str(o, s->file);
        ms_out_str(o, "\", line ");
        ms_out_udec(o, s->line, 0);
    } else if (s->module) {
        ms_out_str(o, s->module);
        ms_out_str(o, "\", offset 0x");
        ms_out_hex(o, s->module_offset, 1);
    } else {
        ms_out_str(o, "<unknown>\", address ");
        ms_out_ptr(o, (const void *)pc);
    }
    if (s->function) {
        ms_out_str(o, ", in ");
        ms_out_str(o, s->function);
    }
    ms_out_char(o, '\n');
}

void ms_symbol_print_frame(struct ms_out *o, uintptr_t pc, enum ms_symbol_mode mode)
{
    struct ms_symbol s;
    ms_symbol_lookup(pc, &s, mode);
    ms_symbol_print(o, &s, pc);
}

int ms_symbol_is_startup(const struct ms_symbol *s)
{
    static const char *const names[] = {
        "_start", "__libc_start_main", "__libc_start_call_main", "__libc_start_main_impl",
        "start_thread", "clone", "clone3",
    };
    if (s->function == NULL)
        return 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s->function, names[i]) == 0)
            return 1;
    return 0;
}

void ms_symbol_fork_child(void)
{
    pthread_mutex_init(&sym_state.lock, NULL);
}
