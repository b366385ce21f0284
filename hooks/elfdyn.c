/* SPDX-License-Identifier: MIT */
/*
 * A loaded object's dynamic section (see elfdyn.h).
 */
#include "elfdyn.h"

#include <string.h>

#if __ELF_NATIVE_CLASS == 64
#define REL_SYM(info) ELF64_R_SYM(info)
#else
#define REL_SYM(info) ELF32_R_SYM(info)
#endif

/* ld.so relocates the dynamic section's pointers in place on most targets, not on all
 * (and never the vDSO's). */
static const void *dyn_ptr(const struct dl_phdr_info *info, ElfW(Addr) v)
{
    return (const void *)(v < info->dlpi_addr ? v + info->dlpi_addr : v);
}

bool ms_elfdyn_read(const struct dl_phdr_info *info, struct ms_elfdyn *t)
{
    const ElfW(Dyn) *dyn = NULL;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    if (dyn == NULL)
        return false;
    *t = (struct ms_elfdyn){
        .base = info->dlpi_addr,
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
    return t->symtab != NULL && t->strtab != NULL;
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

static uint32_t find_gnu(const struct ms_elfdyn *t, const char *name)
{
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
        if ((h2 | 1) == (hash | 1) && strcmp(ms_elfdyn_name(t, i), name) == 0)
            return i;
        if (h2 & 1)
            break;
    }
    return 0;
}

uint32_t ms_elfdyn_find(const struct ms_elfdyn *t, const char *name)
{
    uint32_t i = 0;
    if (t->gnu_hash != NULL) {
        i = find_gnu(t, name);
    } else if (t->sysv_hash != NULL && t->sysv_hash[0] != 0) {
        const uint32_t *bucket = t->sysv_hash + 2, *chain = bucket + t->sysv_hash[0];
        for (i = bucket[sysv_hash_of(name) % t->sysv_hash[0]]; i != 0; i = chain[i])
            if (strcmp(ms_elfdyn_name(t, i), name) == 0)
                break;
    }
    return i != 0 && t->symtab[i].st_shndx != SHN_UNDEF ? i : 0;
}

void ms_elfdyn_each_reloc(const struct ms_elfdyn *t, bool plt_only,
                          bool (*fn)(const struct ms_elfdyn *t, uint32_t sym,
                                     uintptr_t offset, void *arg),
                          void *arg)
{
    for (int k = plt_only ? 1 : 0; k < 2; k++) {
        if (t->rel[k] == NULL || t->rel_entry[k] == 0)
            continue;
        /* r_offset then r_info in both Rel and Rela. */
        for (size_t off = 0; off + t->rel_entry[k] <= t->rel_bytes[k]; off += t->rel_entry[k]) {
            const ElfW(Rel) *r = (const ElfW(Rel) *)(t->rel[k] + off);
            uint32_t sym = (uint32_t)REL_SYM(r->r_info);
            if (sym != 0 && fn(t, sym, r->r_offset, arg))
                return;
        }
    }
}
