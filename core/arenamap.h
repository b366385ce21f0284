/* SPDX-License-Identifier: MIT */
/*
 * The address map: which 16 KiB pool-sized slots of the address space belong to a live
 * arena, and which size class each such pool serves.  It answers "is p ours?" by address
 * alone, so no memory in front of a foreign pointer is ever read (CPython's radix tree,
 * Objects/obmalloc.c, with pool instead of arena granularity so that a custom arena
 * allocator returning merely page-aligned arenas works: only whole pools inside an arena
 * are marked, the partial first and last pools are lost, as CPython does).
 *
 * Layout, for 48-bit user addresses: a two-level table indexed by address >> 14.
 *   root: 2^16 pointers, static (512 KiB of bss, only touched pages cost memory); one
 *         entry covers 4 GiB of address space;
 *   leaf: 2^18 bytes from ms_os_map (256 KiB virtual; a page of it covers 64 MiB), one
 *         byte per pool: 0 = not ours, MS_ARENAMAP_FREE = a pool of a live arena that
 *         serves no class now (free or never carved), 1..32 = in use by class value - 1.
 * Keeping the class here (not only in the pool header) lets free() learn ownership and
 * class with two dependent loads, without touching the pool header's cache line.
 *
 * Thread-safety: written only under the core lock; read without any lock.  Leaves are
 * published with a release store and never freed, so a reader sees either NULL or a
 * complete leaf.  A byte changes only while no block of that pool is outside the core (a
 * pool gets a class when it is taken, loses it when its last block came back), so a thread
 * that holds a block always reads its class correctly; a foreign pointer's byte is 0 and
 * stays 0 while the foreign block lives.  Hot path: ms_arenamap_get.  Never calls malloc.
 */
#ifndef MS_ARENAMAP_H
#define MS_ARENAMAP_H

#include <stddef.h>
#include <stdint.h>

#include "check.h"
#include "sizeclass.h"

#define MS_ARENAMAP_ADDR_BITS 48
#define MS_ARENAMAP_LEAF_BITS 18
#define MS_ARENAMAP_ROOT_BITS (MS_ARENAMAP_ADDR_BITS - MS_POOL_BITS - MS_ARENAMAP_LEAF_BITS)
#define MS_ARENAMAP_LEAF_LEN ((size_t)1 << MS_ARENAMAP_LEAF_BITS)
#define MS_ARENAMAP_ROOT_LEN ((size_t)1 << MS_ARENAMAP_ROOT_BITS)
#define MS_ARENAMAP_FREE 0xffu

struct ms_arenamap {
    uint8_t *root[MS_ARENAMAP_ROOT_LEN];
    size_t nleaves;                      /* under the core lock */
};

extern struct ms_arenamap ms_arenamap __attribute__((visibility("hidden")));

/* The byte of a pool serving class cls, and back. */
static inline unsigned ms_arenamap_value(unsigned cls) { return cls + 1; }
static inline unsigned ms_arenamap_class(unsigned v) { return v - 1; }
static inline int ms_arenamap_is_class(unsigned v) { return v - 1 < MS_NUM_CLASSES; }

/* 0: not ours; MS_ARENAMAP_FREE: ours, in a pool without class; else class + 1. */
static inline unsigned ms_arenamap_get(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    uintptr_t i = a >> (MS_POOL_BITS + MS_ARENAMAP_LEAF_BITS);
    if (MS_UNLIKELY(i >= MS_ARENAMAP_ROOT_LEN))
        return 0;
    const uint8_t *leaf = __atomic_load_n(&ms_arenamap.root[i], __ATOMIC_ACQUIRE);
    if (MS_UNLIKELY(leaf == NULL))
        return 0;
    return leaf[(a >> MS_POOL_BITS) & (MS_ARENAMAP_LEAF_LEN - 1)];
}

/* Mark npools pools from the pool-aligned address first with value v (creating leaves as
 * needed).  Returns 0, or -1 if the range is not mappable (address beyond 48 bits, or no
 * memory for a leaf); then nothing was marked.  Under the core lock. */
int ms_arenamap_mark(uintptr_t first, size_t npools, unsigned v);

/* Set the byte of the one pool at pool-aligned address pool.  Under the core lock. */
static inline void ms_arenamap_set_pool(const void *pool, unsigned v)
{
    uintptr_t a = (uintptr_t)pool;
    uint8_t *leaf = ms_arenamap.root[a >> (MS_POOL_BITS + MS_ARENAMAP_LEAF_BITS)];
    MS_ASSERT(leaf != NULL);
    leaf[(a >> MS_POOL_BITS) & (MS_ARENAMAP_LEAF_LEN - 1)] = (uint8_t)v;
}

/* Bytes the map costs (virtual), for the stats report. */
static inline size_t ms_arenamap_root_bytes(void) { return sizeof ms_arenamap.root; }
static inline size_t ms_arenamap_leaf_bytes(void) { return MS_ARENAMAP_LEAF_LEN; }

#endif
