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

#include "addrkind.h"
#include "elfdyn.h"

/* The plain operators: a C++ runtime that leaves them to the lookup reaches them through
 * its PLT (its sized and aligned forms call them).  Those other forms say nothing:
 * libstdc++ defines _ZdaPvm without ever calling it, and is memshim's all the same. */
static const char *const operator_names[] = { "_Znwm", "_Znam", "_ZdlPv", "_ZdaPv" };

#define NOPS (sizeof operator_names / sizeof operator_names[0])

/* What the object's dynamic relocations (its calls through the PLT or GOT, which the
 * lookup decides) say: which operators it reaches that way, and whether it calls the C
 * library's malloc or free. */
struct reloc_facts {
    uint32_t op_sym[NOPS];          /* the operators it defines (0: not defined) */
    bool relocated[NOPS];
    bool imports_malloc;
};

static bool note_relocation(const struct ms_elfdyn *t, uint32_t sym, uintptr_t offset,
                            void *arg)
{
    (void)offset;
    struct reloc_facts *f = arg;
    for (size_t i = 0; i < NOPS; i++)
        if (f->op_sym[i] == sym)
            f->relocated[i] = true;
    if (t->symtab[sym].st_shndx == SHN_UNDEF) {
        const char *name = ms_elfdyn_name(t, sym);
        if (strcmp(name, "malloc") == 0 || strcmp(name, "free") == 0)
            f->imports_malloc = true;
    }
    return false;
}

static bool object_keeps_operators(const struct dl_phdr_info *info)
{
    struct ms_elfdyn t;
    if (!ms_elfdyn_read(info, &t))
        return false;
    struct reloc_facts f = { .imports_malloc = false };
    bool defines_any = false;
    for (size_t i = 0; i < NOPS; i++) {
        f.op_sym[i] = ms_elfdyn_find(&t, operator_names[i]);
        defines_any |= f.op_sym[i] != 0;
    }
    if (!defines_any)
        return false;
    ms_elfdyn_each_reloc(&t, false, note_relocation, &f);
    /* Operators that call the object's own allocator (libmimalloc's, in the mimalloc
     * modes) never make a block of ours; those of interest call the C library's. */
    if (!f.imports_malloc)
        return false;
    for (size_t i = 0; i < NOPS; i++)
        if (f.op_sym[i] != 0 && !f.relocated[i])
            return true;
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
    if (ms_addrkind_module_holds(info, (uintptr_t)&ms_ownnew_loaded))
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
