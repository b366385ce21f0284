/* SPDX-License-Identifier: MIT */
/*
 * The debug layer's map of live plain blocks: one bit per 16-byte granule of the address
 * space, set while a block whose program pointer p starts there is live.  It decides by
 * address alone whether p is one of the layer's blocks (double and invalid frees), as
 * pymalloc's address map does for arenas, and at 1 bit per 16 bytes it stays small enough
 * to live in the caches: a hash table of 16-byte entries measured ~50% of python3's run
 * time under the debug layer (table misses), this map a few percent.
 *
 * Two levels: 2^19 leaf pointers (one per 256 MiB of the 47-bit user address space),
 * leaves of 2^24 bits mapped on first use (ms_os_map, zero pages until touched).
 * Setting a bit is one atomic OR, clearing one (the free/realloc choke point) one atomic
 * AND (a plain load and store while the process has one thread, solo.h); no lock.  A heap
 * walk holds each block it reads by clearing its bit for that moment; claims and tests
 * that find a bit clear while a walk runs wait and look again.
 *
 * Thread-safe; fork-safe through ms_blockmap_fork_*.  Never allocates through malloc,
 * never prints.  Hot path.
 */
#ifndef MS_BLOCKMAP_H
#define MS_BLOCKMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Can p be recorded here (16-byte aligned, below 2^47)?  Others go to the live table. */
static inline bool ms_blockmap_covers(uintptr_t p)
{
    return (p & 15) == 0 && (p >> 47) == 0;
}

/* Mark p live (p covered, not live).  0, or -1 when a leaf cannot be mapped. */
int ms_blockmap_set(uintptr_t p);

/* Clear p's bit; true if it was set (of two racing claims exactly one gets true). */
bool ms_blockmap_claim(uintptr_t p);

/* Is p live now? */
bool ms_blockmap_test(uintptr_t p);

/* Call fn(p) for every live p, holding p meanwhile (no free can take it; fn must not
 * free, allocate or walk).  Stops when fn returns
 * true and returns that p, else 0. */
uintptr_t ms_blockmap_walk(bool (*fn)(uintptr_t p, void *arg), void *arg);

/* Number of live blocks (a walk: not for the hot path). */
size_t ms_blockmap_count(void);

void ms_blockmap_fork_prepare(void);
void ms_blockmap_fork_parent(void);
void ms_blockmap_fork_child(void);

#endif
