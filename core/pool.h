/* SPDX-License-Identifier: MIT */
/*
 * Pools: 16 KiB slabs of one size class, as in CPython's Objects/obmalloc.c.
 *
 * A pool starts with a 48-byte header (struct ms_pool) and is carved lazily: blocks are
 * handed out first from the pool's LIFO free list (blocks given back), then from the
 * never-used tail (nextoffset advances by one block size up to maxnextoffset), so a fresh
 * pool costs nothing until its blocks are asked for.  States:
 *   used  - some blocks out, some available: on its class's used list (usedpools);
 *   full  - no block available: on no list; when one block comes back it goes to the FRONT
 *           of its class's used list (the next request of that class takes from it);
 *   empty - no block out: back to its arena's free pools (arena.c), where it may be taken
 *           again for any class (if it is taken for the same class, its header and free
 *           list are reused as they are, as CPython does).
 * "Blocks out" includes blocks held in thread caches and transfer lists (tcache.c): for a
 * pool those are in use.
 *
 * Thread-safety: everything here runs under the core lock.  Not the hot path (thread
 * caches are); these are the "pymalloc proper" refill and flush steps.  Never calls malloc.
 */
#ifndef MS_POOL_H
#define MS_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "sizeclass.h"

struct ms_core;
struct ms_arena;

struct ms_pool {
    uint32_t count;             /* blocks out (allocated or cached) */
    uint32_t szidx;             /* size class; MS_POOL_NO_CLASS before the first use */
    void *freeblock;            /* LIFO list of given-back blocks, linked by first word */
    struct ms_pool *next;       /* used list (doubly linked) or arena free list (single) */
    struct ms_pool *prev;
    struct ms_arena *arena;     /* owner */
    uint32_t nextoffset;        /* first never-carved byte */
    uint32_t maxnextoffset;     /* last offset where a whole block still fits */
};
_Static_assert(sizeof(struct ms_pool) == MS_POOL_OVERHEAD, "pool header is 48 bytes");

#define MS_POOL_NO_CLASS 0xffffffffu

/* Per-class lists of used pools: circular, each with a sentinel header. */
struct ms_pools {
    struct ms_pool used[MS_NUM_CLASSES];
};

static inline struct ms_pool *ms_pool_of(const void *block)
{
    return (struct ms_pool *)((uintptr_t)block & ~(uintptr_t)MS_POOL_MASK);
}

void ms_pools_init(struct ms_pools *p);

/* Take up to n blocks of class cls, chained through their first word (NULL-terminated,
 * ascending carve order), into *head.  Returns how many (fewer than n only when no arena
 * could be had).  Under the core lock. */
unsigned ms_pool_alloc_chain(struct ms_core *c, unsigned cls, unsigned n, void **head);

/* Give one block back to its pool.  Under the core lock. */
void ms_pool_free_block(struct ms_core *c, void *block);

/* Give back a NULL-terminated chain linked through first words.  Under the core lock. */
void ms_pool_free_chain(struct ms_core *c, void *head);

/* Is a used pool full (nothing left to hand out)? */
static inline int ms_pool_is_full(const struct ms_pool *p)
{
    return p->freeblock == NULL && p->nextoffset > p->maxnextoffset;
}

#ifdef MS_EXPENSIVE_CHECKS
void ms_pools_check(struct ms_core *c);
#endif

#endif
