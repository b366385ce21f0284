/* SPDX-License-Identifier: MIT */
/*
 * A loaded object's dynamic section, read in place: its dynamic symbol table, the hash
 * table that finds a defined symbol by name, and its dynamic relocations.  For the few
 * places that ask how an object is linked (which PLT slot libunwind calls sigprocmask
 * through; whether an object keeps operator new to itself).  Never allocates; the tables
 * stay mapped for as long as dl_iterate_phdr lists the object.  Not on any hot path.
 */
#ifndef MS_ELFDYN_H
#define MS_ELFDYN_H

#include <link.h>
#include <stdbool.h>
#include <stdint.h>

struct ms_elfdyn {
    uintptr_t base;                 /* dlpi_addr: relocation offsets are from here */
    const ElfW(Sym) *symtab;
    const char *strtab;
    const uint32_t *gnu_hash;
    const uint32_t *sysv_hash;
    const uint8_t *rel[2];          /* DT_RELA or DT_REL, and DT_JMPREL (the PLT's) */
    size_t rel_bytes[2];
    size_t rel_entry[2];
};

/* false when the object has no dynamic section or no symbol table. */
bool ms_elfdyn_read(const struct dl_phdr_info *info, struct ms_elfdyn *t);

/* The index of the symbol the object DEFINES under name (the hash tables hold only
 * definitions), 0 if none. */
uint32_t ms_elfdyn_find(const struct ms_elfdyn *t, const char *name);

static inline const char *ms_elfdyn_name(const struct ms_elfdyn *t, uint32_t sym)
{
    return t->strtab + t->symtab[sym].st_name;
}

/* fn(t, sym, r_offset, arg) for each relocation that names a symbol: the PLT's only
 * (plt_only) or all of them; stops at the first fn that returns true. */
void ms_elfdyn_each_reloc(const struct ms_elfdyn *t, bool plt_only,
                          bool (*fn)(const struct ms_elfdyn *t, uint32_t sym,
                                     uintptr_t offset, void *arg),
                          void *arg);

#endif
