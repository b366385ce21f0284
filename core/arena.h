/* SPDX-License-Identifier: MIT */
/*
 * Arenas: the big chunks (cfg.arena_size, default 1 MiB) that pools are cut from, got from
 * and given back to the arena allocator (CPython's PyObjectArenaAllocator).
 *
 * As in CPython (Objects/obmalloc.c, "arena management"):
 *   - arenas with at least one free pool are on the "usable" list, sorted by nfreepools
 *     ascending, i.e. fullest first; a new pool is always taken from the head, so that the
 *     emptiest arenas get the chance to drain completely and be given back;
 *   - nfp2lasta[n] points at the LAST usable arena with exactly n free pools (NULL if
 *     none), so that when an arena gains a free pool it moves to its new place in O(1)
 *     (right after nfp2lasta[old n]) instead of by walking the list;
 *   - an arena whose pools are all free is given back to the arena allocator, except when
 *     it is the last arena of the usable list (it has the most free pools): that one is
 *     kept, so that a loop allocating and freeing one block does not map and unmap an
 *     arena every time (CPython 3.8+, bpo-37257).  So at most one wholly free arena stays.
 * A newly mapped arena is needed only when the usable list is empty.
 *
 * Beyond CPython: free pools that held blocks ("dirty": their pages are resident) give
 * their pages back to the OS, all but the header's, once more than dirty_max of them are
 * waiting - the freest arenas' first, down to half the bound.  Without this, a program that
 * frees its blocks in random order keeps nearly all its memory: the few blocks still in
 * thread caches are scattered over every arena, so none becomes wholly free (measured: 209
 * arenas, 3,152 cached blocks, none released, RSS stayed at 220 MiB).  Not at once, pool by
 * pool, as an earlier version did: python3 empties and refills the same pools all the time,
 * and paid 8,208 madvise calls and their page faults (0.3-1.5 s of system time on a 1 s
 * run) for it.  An arena's dirty pools are the first ndirty of its free list (pools are
 * pushed and taken at the head; a purge cleans the whole prefix).
 *
 * With dirty_delay_ns (the shim sets one second) the pools wait longer: past dirty_max a
 * purge is due only once the excess has lasted the delay (taking pools back below the
 * bound restarts the wait), or at once past MS_ARENA_DIRTY_HARD_FACTOR times the bound;
 * wholly free arenas wait with them (a purge gives them back first, keeping the last one)
 * instead of going back at once, unless their pages went back already.  python3 empties and
 * refills 20-30 MiB of pools in phases: every page given back was faulted in again,
 * 26,000 faults on a 1 s run (8,750 with the delay, glibc 9,200), at about 6 us each on
 * this VM, 17% of the run (perf).  When the lower allocator fails, everything waiting goes
 * back at once and the call is tried again (ms_arena_purge_all).  Checks run on the core's
 * slow paths only (a coarse clock read while over the bound).
 *
 * The arena objects (struct ms_arena) live outside the arenas, in chunks from ms_os_map that
 * are never freed; an object whose arena was given back goes to the "unused" list for reuse.
 * An arena that is not pool-aligned loses its partial first pool (ntotalpools is one less),
 * as in CPython; the default allocator aligns arenas to the pool size so nothing is lost.
 *
 * Thread-safety: everything under the core lock.  Not on the hot path.  Never calls malloc.
 */
#ifndef MS_ARENA_H
#define MS_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "allocator.h"
#include "sizeclass.h"

struct ms_core;
struct ms_pool;

struct ms_arena {
    uintptr_t address;          /* as the arena allocator returned it; 0: object unused */
    char *pool_address;         /* next never-used pool */
    struct ms_pool *freepools;  /* pools given back, linked through their next */
    unsigned nfreepools;        /* free pools, including the never-used ones */
    unsigned ndirty;            /* the first ndirty of freepools have resident pages */
    unsigned ntotalpools;
    struct ms_arena *next;      /* usable list (or unused-objects list) */
    struct ms_arena *prev;
    struct ms_arena_allocator allocator;   /* the one it came from, to give it back */
};

struct ms_arena_chunk {
    struct ms_arena_chunk *next;
    size_t n;                   /* objects handed out so far (obj[0..n)) */
    struct ms_arena obj[];
};

struct ms_arenas {
    size_t arena_size;                   /* 0 until configured (first use or init) */
    struct ms_arena_allocator allocator; /* for new arenas */
    struct ms_arena *usable;
    struct ms_arena *unused;
    struct ms_arena_chunk *chunks;
    size_t ntimes_allocated;             /* ever */
    size_t ncurrent;
    size_t highwater;
    size_t ndirty;                       /* dirty free pools in all arenas */
    size_t dirty_max;                    /* more than this many: purge (0: the default) */
    uint64_t dirty_delay_ns;             /* ... for this long (0: at once; set by init) */
    uint64_t over_since;                 /* when ndirty last rose past dirty_max (0: not) */
    struct ms_arena *nfp2lasta[MS_MAX_POOLS_PER_ARENA + 1];
};

/* Dirty free pools the arenas keep before giving pages back (dirty_max's default), and the
 * bound (in dirty_max units) past which they never wait (dirty_delay_ns). */
#define MS_ARENA_DIRTY_MAX_BYTES ((size_t)16 << 20)
#define MS_ARENA_DIRTY_HARD_FACTOR 4

/* The default arena allocator: ms_os_map_aligned to the pool size, ms_os_unmap. */
extern const struct ms_arena_allocator ms_arena_default_allocator;

/* A free pool from the fullest usable arena (mapping a new arena if there is none), or
 * NULL.  The pool's szidx is MS_POOL_NO_CLASS if it was never used.  Under the lock. */
struct ms_pool *ms_arena_take_pool(struct ms_core *c);

/* An empty pool goes back to its arena; the arena may be given back.  Under the lock. */
void ms_arena_give_pool(struct ms_core *c, struct ms_pool *p);

/* Gives back every wholly free arena but the last and the pages of every free pool, at
 * once (the lower allocator ran out).  True if anything went back.  Under the lock. */
bool ms_arena_purge_all(struct ms_core *c);

/* First pool of an arena (rounded up to the pool size). */
static inline uintptr_t ms_arena_first_pool(uintptr_t address)
{
    return (address + MS_POOL_MASK) & ~(uintptr_t)MS_POOL_MASK;
}

#ifdef MS_EXPENSIVE_CHECKS
void ms_arenas_check(struct ms_core *c);
#endif

#endif
