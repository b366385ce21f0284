/* SPDX-License-Identifier: MIT */
/*
 * The debug layer's table of the live blocks the bitmap (blockmap.h) cannot hold: aligned
 * blocks, whose lower block does not start 2*S in front of p, and pointers outside the
 * bitmap's range.  Keyed by the program's pointer p; freed blocks leave it (the
 * quarantine keeps their records).  It records each block's size and lower block, so a
 * corrupted header cannot send a check or the dump out of the block (gh-112140).
 * struct ms_livetab_entry is also the layer's common description of a block.
 *
 * Why not every block: a hash table of all live blocks measured ~50% of python3's run
 * time under the debug layer (its cache misses), the bitmap a few percent.
 *
 * 64 shards, each an open-addressing hash table (linear probing, backward-shift deletion)
 * of 16-byte entries behind its own spinlock; tables grow by doubling, memory from
 * ms_os_map.
 * Every operation is O(1) expected except the walks (error paths and exit checks).
 * Thread-safe; fork-safe through ms_livetab_fork_* (called by the debug layer's atfork
 * handlers).  Never allocates through malloc, never prints.  Hot path.
 */
#ifndef MS_LIVETAB_H
#define MS_LIVETAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MS_LIVETAB_SIZE_BITS 48
#define MS_LIVETAB_SIZE_MASK (((uint64_t)1 << MS_LIVETAB_SIZE_BITS) - 1)
#define MS_LIVETAB_API_SHIFT 48
#define MS_LIVETAB_ALIGN_SHIFT 56            /* log2 of the alignment, 0: plain block */

/* 16 bytes: four to a cache line.  The serial number is not here: it is in the block's
 * trailer (CPython reads it there too), and in the quarantine record once freed. */
struct ms_livetab_entry {
    uintptr_t p;        /* the program's pointer; 0 marks an empty slot */
    uint64_t meta;      /* size | api << 48 | log2(alignment) << 56 */
};

static inline uint64_t ms_livetab_meta(size_t size, char api, unsigned align_log2)
{
    return (uint64_t)size | (uint64_t)(uint8_t)api << MS_LIVETAB_API_SHIFT
           | (uint64_t)align_log2 << MS_LIVETAB_ALIGN_SHIFT;
}

static inline size_t ms_livetab_size(const struct ms_livetab_entry *e)
{
    return (size_t)(e->meta & MS_LIVETAB_SIZE_MASK);
}

static inline char ms_livetab_api(const struct ms_livetab_entry *e)
{
    return (char)(uint8_t)(e->meta >> MS_LIVETAB_API_SHIFT);
}

/* Where the lower allocator's block starts: 2*S in front of p for a plain block; for an
 * aligned block p sits `alignment` bytes into the lower block. */
static inline uintptr_t ms_livetab_base(const struct ms_livetab_entry *e)
{
    unsigned lg = (unsigned)(e->meta >> MS_LIVETAB_ALIGN_SHIFT) & 63;
    return e->p - (lg ? (uintptr_t)1 << lg : 2 * sizeof(size_t));
}

/* The header's first byte: where what the layer wrote and checks begins.  For an aligned
 * block the gap between base and head was never the user's: filling it on every free
 * would touch up to alignment bytes (a 1 GiB-aligned block: a second of page faults). */
static inline uintptr_t ms_livetab_head(const struct ms_livetab_entry *e)
{
    return e->p - 2 * sizeof(size_t);
}

/* One past the trailer: the end of what the layer wrote and checks. */
static inline uintptr_t ms_livetab_end(const struct ms_livetab_entry *e)
{
    return e->p + ms_livetab_size(e) + 2 * sizeof(size_t);
}

static inline bool ms_livetab_is_aligned_block(const struct ms_livetab_entry *e)
{
    return ((e->meta >> MS_LIVETAB_ALIGN_SHIFT) & 63) != 0;
}

/* Map the shards' first tables.  0, or -1 when the OS has no memory. */
int ms_livetab_init(void);

/* Add a block (e->p must not be present).  0, or -1 when the table cannot grow. */
int ms_livetab_insert(const struct ms_livetab_entry *e);

/* The free/realloc choke point: remove p and copy its entry to *out.  false if p is not
 * a live block (of two racing frees of p, exactly one gets true). */
bool ms_livetab_claim(uintptr_t p, struct ms_livetab_entry *out);

/* Copy p's entry to *out; false if p is not a live block. */
bool ms_livetab_lookup(uintptr_t p, struct ms_livetab_entry *out);

/* Call fn on every entry, shard by shard, with that shard locked (fn must not call back
 * into the table or allocate).  Stops when fn returns true, leaves that entry in *found
 * and returns true. */
bool ms_livetab_walk(bool (*fn)(const struct ms_livetab_entry *e, void *arg), void *arg,
                     struct ms_livetab_entry *found);

/* Number of live blocks.  Not exact while other threads work. */
size_t ms_livetab_count(void);

void ms_livetab_fork_prepare(void);
void ms_livetab_fork_parent(void);
void ms_livetab_fork_child(void);

#endif
