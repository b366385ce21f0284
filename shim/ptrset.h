/* SPDX-License-Identifier: MIT */
/*
 * A set of pointers in caller-owned static memory: open addressing, linear probing,
 * tombstones.  The two sets of blocks the C library owns but a debug layer must not call
 * foreign use it: start-up's (bootstrap.c) and the dynamic loader's (loader.c).  Each
 * caller keeps its own count, capacity policy and locking; nslots is a power of two and
 * the caller never fills the table (a probe ends at a NULL slot).
 *
 * Never allocates (start-up may not), never locks.
 */
#ifndef MS_PTRSET_H
#define MS_PTRSET_H

#include <stddef.h>
#include <stdint.h>

#define MS_PTRSET_TOMBSTONE ((void *)1)

static inline size_t ms_ptrset_slot_of(const void *p, size_t nslots)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 32) & (nslots - 1);
}

/* p's slot, or NULL if p is not in the set. */
static inline void **ms_ptrset_find(void **slots, size_t nslots, const void *p)
{
    for (size_t i = ms_ptrset_slot_of(p, nslots), n = 0; n < nslots;
         i = (i + 1) & (nslots - 1), n++) {
        if (slots[i] == p)
            return &slots[i];
        if (slots[i] == NULL)
            return NULL;
    }
    return NULL;
}

/* Adds p (not NULL, not in the set; the table has a free or tombstone slot). */
static inline void ms_ptrset_insert(void **slots, size_t nslots, void *p)
{
    for (size_t i = ms_ptrset_slot_of(p, nslots);; i = (i + 1) & (nslots - 1)) {
        if (slots[i] == NULL || slots[i] == MS_PTRSET_TOMBSTONE) {
            slots[i] = p;
            return;
        }
    }
}

/* Removes the entry at slot (from ms_ptrset_find). */
static inline void ms_ptrset_remove(void **slot)
{
    *slot = MS_PTRSET_TOMBSTONE;
}

#endif
