/* SPDX-License-Identifier: MIT */
/*
 * pymalloc's geometry (SPEC 2.1, CPython 3.10+ on 64-bit): 16-byte alignment, requests of
 * 1..512 bytes in 32 size classes, 16 KiB pools with a 48-byte header, arenas of a run-time
 * power-of-two size (256 KiB..64 MiB, default 1 MiB).
 *
 * This header is the ONLY place where size <-> class arithmetic is written; every other
 * file asks these functions.  Pure arithmetic: hot path, no state, thread-safe.
 */
#ifndef MS_SIZECLASS_H
#define MS_SIZECLASS_H

#include <stdbool.h>
#include <stddef.h>

#define MS_ALIGNMENT 16u
#define MS_ALIGNMENT_SHIFT 4
#define MS_SMALL_THRESHOLD 512u
#define MS_NUM_CLASSES 32u           /* MS_SMALL_THRESHOLD / MS_ALIGNMENT */

#define MS_POOL_BITS 14
#define MS_POOL_SIZE ((size_t)1 << MS_POOL_BITS)   /* 16 KiB */
#define MS_POOL_MASK (MS_POOL_SIZE - 1)
#define MS_POOL_OVERHEAD 48u         /* sizeof(struct ms_pool), checked in pool.h */

#define MS_ARENA_SIZE_MIN ((size_t)256 << 10)
#define MS_ARENA_SIZE_MAX ((size_t)64 << 20)
#define MS_ARENA_SIZE_DEFAULT ((size_t)1 << 20)
#define MS_MAX_POOLS_PER_ARENA (MS_ARENA_SIZE_MAX / MS_POOL_SIZE)

/* Is a request of n bytes served by pymalloc?  0 and > 512 are not (the subtraction
 * wraps 0 to SIZE_MAX, so this is one compare). */
static inline bool ms_size_is_small(size_t n)
{
    return n - 1 < MS_SMALL_THRESHOLD;
}

/* Size class of a small request (1..512). */
static inline unsigned ms_size_class(size_t n)
{
    return (unsigned)((n - 1) >> MS_ALIGNMENT_SHIFT);
}

/* Block size of class c. */
static inline size_t ms_class_size(unsigned c)
{
    return ((size_t)c + 1) << MS_ALIGNMENT_SHIFT;
}

/* Blocks in one pool of class c. */
static inline unsigned ms_class_nblocks(unsigned c)
{
    return (unsigned)((MS_POOL_SIZE - MS_POOL_OVERHEAD) / ms_class_size(c));
}

/* Bytes at the end of a pool of class c that no block can use. */
static inline size_t ms_class_quantization(unsigned c)
{
    return (MS_POOL_SIZE - MS_POOL_OVERHEAD) % ms_class_size(c);
}

static inline bool ms_arena_size_valid(size_t s)
{
    return s >= MS_ARENA_SIZE_MIN && s <= MS_ARENA_SIZE_MAX && (s & (s - 1)) == 0;
}

#endif
