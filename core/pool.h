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
    uint16_t szidx;             /* size class; MS_POOL_NO_CLASS before the first use */
    uint16_t owner;             /* thread cache that last took blocks from it (0: none) */
    void *freeblock;            /* LIFO list of given-back blocks, linked by first word */
    struct ms_pool *next;       /* used list (doubly linked) or arena free list (single) */
    struct ms_pool *prev;
    struct ms_arena *arena;     /* owner */
    uint32_t nextoffset;        /* first never-carved byte */
    uint32_t maxnextoffset;     /* last offset where a whole block still fits */
};
_Static_assert(sizeof(struct ms_pool) == MS_POOL_OVERHEAD, "pool header is 48 bytes");

#define MS_POOL_NO_CLASS 0xffffu

/* Owners: each thread cache has an id (1..MS_POOL_OWNERS-1); a refill takes blocks from a
 * pool its thread took from before, or from a pool nobody living owns, before any other.
 * Two threads' blocks then seldom share a pool, so they seldom share a cache line: with
 * one shared used list, two threads churning privately (scripts/bench private2) took
 * alternate runs of the same pools and spent 2.4x longer in their own code than one
 * thread alone (false sharing of the blocks they write).  A preference, not a rule: when
 * the first MS_POOL_OWNER_SCAN used pools all belong to other live threads, the first is
 * taken anyway, so memory never waits for a thread that holds it; a shorter list of other
 * threads' pools gets a fresh pool (each thread then fills a pool of its own per class,
 * as mimalloc's thread-local pages do). */
#define MS_POOL_OWNERS 65536u
#define MS_POOL_OWNER_SCAN 8

/* Per-class lists of used pools: circular, each with a sentinel header. */
struct ms_pools {
    struct ms_pool used[MS_NUM_CLASSES];
    uint64_t owner_live[MS_POOL_OWNERS / 64];   /* bit set while that owner's thread runs */
};

/* Owner id's thread started / ended (its pools are then anybody's).  Under the lock;
 * read without it by ms_pools_may_take (a preference: a stale answer is harmless). */
static inline void ms_pools_owner_live(struct ms_pools *ps, unsigned owner, int live)
{
    uint64_t bit = (uint64_t)1 << (owner % 64);
    if (live)
        __atomic_fetch_or(&ps->owner_live[owner / 64], bit, __ATOMIC_RELAXED);
    else
        __atomic_fetch_and(&ps->owner_live[owner / 64], ~bit, __ATOMIC_RELAXED);
}

/* May owner take blocks of pool p: its own, nobody's, or a thread's that has ended?
 * p's header must stay mapped meanwhile (a block of it is out, or the lock is held). */
static inline int ms_pools_may_take(const struct ms_pools *ps, const struct ms_pool *p,
                                    unsigned owner)
{
    unsigned o = __atomic_load_n(&p->owner, __ATOMIC_RELAXED);
    return o == owner || o == 0
        || !(__atomic_load_n(&ps->owner_live[o / 64], __ATOMIC_RELAXED) >> (o % 64) & 1);
}

static inline struct ms_pool *ms_pool_of(const void *block)
{
    return (struct ms_pool *)((uintptr_t)block & ~(uintptr_t)MS_POOL_MASK);
}

void ms_pools_init(struct ms_pools *p);

/* Take up to n blocks of class cls for owner (0: no thread cache), chained through their
 * first word (NULL-terminated, ascending carve order), into *head.  Returns how many
 * (fewer than n only when no arena could be had).  Under the core lock. */
unsigned ms_pool_alloc_chain(struct ms_core *c, unsigned cls, unsigned n, unsigned owner,
                             void **head);

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
