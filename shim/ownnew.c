/* SPDX-License-Identifier: MIT */
/*
 * Loaded objects that keep C++'s operator new and delete to themselves.
 *
 * memshim's operator new and delete come first in the symbol lookup, so every call that
 * goes through the lookup reaches them and the debug layer tags the block 'n' or 'a'.  An
 * object linked with -Bsymbolic (libLLVM, which the Rust toolchain's rust-lld uses) or one
 * that carries a static libstdc++ and exports its operators binds its own calls to its own
 * copies, and those call malloc and free: its C++ blocks carry malloc's id 'r', and a
 * string built inside it is deleted outside it, by memshim's delete, or the other way
 * round.  That is no bug of the program, and `cargo build` must not abort on it.  The
 * debug layer asks here before it calls a malloc/C++ mismatch on free an error.
 *
 * How an object is told apart: it calls malloc or free from elsewhere, defines one of the
 * operators in its dynamic symbol table, and has no dynamic relocation against that
 * symbol.  libstdc++ defines them too, but reaches them through its PLT like everybody
 * else, so memshim's win there; an allocator library (libmimalloc) defines malloc too, and
 * its operators never make a block memshim knows.
 *
 * Only on the debug layer's error path, and cached until a library is loaded or unloaded.
 * Never allocates (free() is the caller): it reads the loaded objects' dynamic sections,
 * hash, symbol and relocation tables, which are mapped for as long as they are listed.
 */
#include "ownnew.h"

#include <link.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#if __ELF_NATIVE_CLASS == 64
#define REL_SYM(info) ELF64_R_SYM(info)
#else
#define REL_SYM(info) ELF32_R_SYM(info)
#endif

/* The plain operators: a C++ runtime that leaves them to the lookup reaches them through
 * its PLT (its sized and aligned forms call them).  Those other forms say nothing:
 * libstdc++ defines _ZdaPvm without ever calling it, and is memshim's all the same. */
static const char *const operator_names[] = { "_Znwm", "_Znam", "_ZdlPv", "_ZdaPv" };

/* One object's tables, from its dynamic section. */
struct dynamic_tables {
    const ElfW(Sym) *symtab;
    const char *strtab;
    const uint32_t *gnu_hash;
    const uint32_t *sysv_hash;
    const uint8_t *rel[2];          /* DT_RELA or DT_REL, and DT_JMPREL */
    size_t rel_bytes[2];
    size_t rel_entry[2];
};

/* glibc relocates the dynamic section's pointers in place; the vDSO's are not. */
static const void *dyn_ptr(const struct dl_phdr_info *info, ElfW(Addr) v)
{
    return (const void *)(v < info->dlpi_addr ? v + info->dlpi_addr : v);
}

static bool read_dynamic(const struct dl_phdr_info *info, struct dynamic_tables *t)
{
    const ElfW(Dyn) *dyn = NULL;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    if (dyn == NULL)
        return false;
    *t = (struct dynamic_tables){
        .rel_entry = { sizeof(ElfW(Rela)), sizeof(ElfW(Rela)) },
    };
    ElfW(Sxword) plt_kind = DT_RELA;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        switch (dyn->d_tag) {
        case DT_SYMTAB: t->symtab = dyn_ptr(info, dyn->d_un.d_ptr); break;
        case DT_STRTAB: t->strtab = dyn_ptr(info, dyn->d_un.d_ptr); break;
        case DT_GNU_HASH: t->gnu_hash = dyn_ptr(info, dyn->d_un.d_ptr); break;
        case DT_HASH: t->sysv_hash = dyn_ptr(info, dyn->d_un.d_ptr); break;
        case DT_RELA: case DT_REL: t->rel[0] = dyn_ptr(info, dyn->d_un.d_ptr); break;
        case DT_RELASZ: case DT_RELSZ: t->rel_bytes[0] = dyn->d_un.d_val; break;
        case DT_RELAENT: case DT_RELENT: t->rel_entry[0] = dyn->d_un.d_val; break;
        case DT_JMPREL: t->rel[1] = dyn_ptr(info, dyn->d_un.d_ptr); break;
        case DT_PLTRELSZ: t->rel_bytes[1] = dyn->d_un.d_val; break;
        case DT_PLTREL: plt_kind = (ElfW(Sxword))dyn->d_un.d_val; break;
        default: break;
        }
    }
    t->rel_entry[1] = plt_kind == DT_REL ? sizeof(ElfW(Rel)) : sizeof(ElfW(Rela));
    return t->symtab != NULL && t->strtab != NULL
           && (t->gnu_hash != NULL || t->sysv_hash != NULL);
}

static uint32_t gnu_hash_of(const char *s)
{
    uint32_t h = 5381;
    for (; *s != '\0'; s++)
        h = h * 33 + (uint8_t)*s;
    return h;
}

static uint32_t sysv_hash_of(const char *s)
{
    uint32_t h = 0;
    for (; *s != '\0'; s++) {
        h = (h << 4) + (uint8_t)*s;
        h ^= (h >> 24) & 0xf0;
    }
    return h & 0x0fffffff;
}

/* The index of name in the dynamic symbol table, 0 if it is not there. */
static uint32_t find_symbol(const struct dynamic_tables *t, const char *name)
{
    if (t->gnu_hash != NULL) {
        const uint32_t *h = t->gnu_hash;
        uint32_t nbuckets = h[0], symoffset = h[1], bloom_size = h[2], shift = h[3];
        if (nbuckets == 0 || bloom_size == 0)
            return 0;
        const ElfW(Addr) *bloom = (const ElfW(Addr) *)(h + 4);
        const uint32_t *buckets = (const uint32_t *)(bloom + bloom_size);
        const uint32_t *chain = buckets + nbuckets;
        const unsigned bits = sizeof(ElfW(Addr)) * 8;
        uint32_t hash = gnu_hash_of(name);
        ElfW(Addr) word = bloom[(hash / bits) % bloom_size];
        ElfW(Addr) mask = ((ElfW(Addr))1 << (hash % bits))
                          | ((ElfW(Addr))1 << ((hash >> shift) % bits));
        if ((word & mask) != mask)
            return 0;
        for (uint32_t i = buckets[hash % nbuckets]; i >= symoffset; i++) {
            uint32_t h2 = chain[i - symoffset];
            if ((h2 | 1) == (hash | 1) && strcmp(t->strtab + t->symtab[i].st_name, name) == 0)
                return i;
            if (h2 & 1)
                break;
        }
        return 0;
    }
    const uint32_t *h = t->sysv_hash;
    uint32_t nbucket = h[0];
    const uint32_t *bucket = h + 2, *chain = bucket + nbucket;
    if (nbucket == 0)
        return 0;
    for (uint32_t i = bucket[sysv_hash_of(name) % nbucket]; i != 0; i = chain[i])
        if (strcmp(t->strtab + t->symtab[i].st_name, name) == 0)
            return i;
    return 0;
}

#define NOPS (sizeof operator_names / sizeof operator_names[0])

/* What the object's dynamic relocations (its calls through the PLT or GOT, which the
 * lookup decides) say: which operators it reaches that way, and whether it calls the C
 * library's malloc or free. */
struct reloc_facts {
    bool relocated[NOPS];
    bool imports_malloc;
};

static void read_relocations(const struct dynamic_tables *t, const uint32_t op_idx[NOPS],
                             struct reloc_facts *f)
{
    for (int k = 0; k < 2; k++) {
        if (t->rel[k] == NULL || t->rel_entry[k] == 0)
            continue;
        /* r_info follows r_offset in both Rel and Rela. */
        for (size_t off = 0; off + t->rel_entry[k] <= t->rel_bytes[k]; off += t->rel_entry[k]) {
            const ElfW(Rel) *r = (const ElfW(Rel) *)(t->rel[k] + off);
            uint32_t idx = (uint32_t)REL_SYM(r->r_info);
            if (idx == 0)
                continue;
            for (size_t i = 0; i < NOPS; i++)
                if (op_idx[i] == idx)
                    f->relocated[i] = true;
            const ElfW(Sym) *sym = &t->symtab[idx];
            if (sym->st_shndx == SHN_UNDEF) {
                const char *name = t->strtab + sym->st_name;
                if (strcmp(name, "malloc") == 0 || strcmp(name, "free") == 0)
                    f->imports_malloc = true;
            }
        }
    }
}

static bool object_keeps_operators(const struct dl_phdr_info *info)
{
    struct dynamic_tables t;
    if (!read_dynamic(info, &t))
        return false;
    uint32_t op_idx[NOPS];
    bool defines_any = false;
    for (size_t i = 0; i < NOPS; i++) {
        op_idx[i] = find_symbol(&t, operator_names[i]);   /* the hash holds definitions */
        if (op_idx[i] != 0 && t.symtab[op_idx[i]].st_shndx == SHN_UNDEF)
            op_idx[i] = 0;
        defines_any |= op_idx[i] != 0;
    }
    if (!defines_any)
        return false;
    struct reloc_facts f = { 0 };
    read_relocations(&t, op_idx, &f);
    /* Operators that call the object's own allocator (libmimalloc's, in the mimalloc
     * modes) never make a block of ours; those of interest call the C library's. */
    if (!f.imports_malloc)
        return false;
    for (size_t i = 0; i < NOPS; i++)
        if (op_idx[i] != 0 && !f.relocated[i])
            return true;
    return false;
}

static bool contains_address(const struct dl_phdr_info *info, uintptr_t a)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && a - lo < ph->p_memsz)
            return true;
    }
    return false;
}

/* The last answer, for the set of objects that dl_iterate_phdr's counters (adds, subs)
 * name; adds 0: none yet.  Two threads may ask at once: both compute the same answer. */
static struct {
    unsigned long long adds, subs;
    bool answer;
} cache;

struct walk {
    bool first;
    unsigned long long adds, subs;
    bool found;
};

static int visit(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct walk *w = arg;
    if (w->first) {
        w->first = false;
        w->adds = info->dlpi_adds;
        w->subs = info->dlpi_subs;
        if (__atomic_load_n(&cache.adds, __ATOMIC_ACQUIRE) == w->adds
            && __atomic_load_n(&cache.subs, __ATOMIC_ACQUIRE) == w->subs) {
            w->found = __atomic_load_n(&cache.answer, __ATOMIC_RELAXED);
            return 1;
        }
    }
    /* memshim itself: its operators are the ones the lookup finds. */
    if (contains_address(info, (uintptr_t)&ms_ownnew_loaded))
        return 0;
    w->found = object_keeps_operators(info);
    return w->found;
}

bool ms_ownnew_loaded(void)
{
    struct walk w = { .first = true };
    dl_iterate_phdr(visit, &w);
    __atomic_store_n(&cache.answer, w.found, __ATOMIC_RELAXED);
    __atomic_store_n(&cache.subs, w.subs, __ATOMIC_RELEASE);
    __atomic_store_n(&cache.adds, w.adds, __ATOMIC_RELEASE);
    return w.found;
}
