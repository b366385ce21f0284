/* SPDX-License-Identifier: MIT */
/*
 * Thread caches: how the core is thread-safe without a lock on the common path.
 *
 * pymalloc relies on CPython's GIL; we have none.  Each thread has a cache (struct
 * ms_tcache) with one bin per size class.  A bin holds two "magazines" (Bonwick's design,
 * as in Solaris' kmem and, in spirit, tcmalloc's thread caches):
 *   head/room  - the loaded magazine: a LIFO singly linked list of free blocks (linked
 *                through their first word) and how many more it may take (room = batch
 *                size - length);
 *   spare      - a stack of full batches of exactly "batch size" blocks each (at most
 *                spare_cap of them, see MS_SPARE_MAX_BYTES), linked like a transfer
 *                list's.
 * malloc pops from head; free pushes onto head of the FREEING thread's bin, whoever
 * allocated the block.  That is the whole fast path: no lock, no atomic instruction, no
 * indirect call.  Two tricks keep it to a handful of instructions:
 *   - bins are indexed by the address map's byte (arenamap.h: class + 1), all 256 values,
 *     so free() goes from the map lookup straight to a bin; the bins of values that are
 *     not classes (0: not ours, MS_ARENAMAP_FREE) have room 0 forever, so a foreign
 *     pointer falls into the slow path by the same "room == 0" test;
 *   - the cache pointer is an initial-exec TLS variable that starts out pointing at a
 *     placeholder cache whose bins are all empty with room 0, so a thread's first call
 *     falls into the slow path by itself, with no "has a cache?" test.
 *
 * Slow path (head empty on malloc, head full on free):
 *   malloc: a spare batch -> it becomes the loaded magazine (no lock); else, pop one
 *           whole batch from the class's transfer list (its lock), or if that is empty
 *           carve a batch from the pools (pymalloc proper, under the core lock);
 *   free:   the full loaded magazine goes onto the spare stack (no lock); a stack at its
 *           bound first passes batches on to the class's transfer list.
 * A transfer list ("depot") is a stack of whole batches: a batch is a NULL-terminated
 * chain of batch-size blocks and its head block's SECOND word links to the next batch, so a
 * thread passes a batch to another in O(1) under that list's lock.  Two threads that free each
 * other's blocks (producer/consumer) therefore take the lock once per batch and mostly
 * just hand batches over; the pools are touched only when a transfer list is empty (carve)
 * or full.  A full list means nobody is taking blocks of that class (a program freeing
 * what it built): the whole list and the new batch go back to the pools, and until some
 * thread asks the list for a batch again, batches bypass it and go straight to the pools,
 * so that at the end of such a phase the list is empty and pins no arena.
 *
 * Bounds, so that freed memory does not pile up and arenas can go back to the OS: a batch
 * is about 4 KiB (64 blocks of <= 64 bytes .. 16 blocks of 256..512 bytes), a thread keeps
 * one loaded batch and at most MS_SPARE_MAX_BYTES of spares per class, a transfer list at most
 * MS_DEPOT_MAX_BYTES.  Caches of
 * idle threads are not stolen from (that would need synchronisation on the fast path);
 * the transfer lists, which are shared, are given back to the pools whenever the heap
 * would otherwise grow by an arena (ms_tcache_reclaim_locked, from pool.c), so blocks
 * parked there never make the program map more memory;
 * thread exit gives everything back to the pools, and ms_pymalloc_flush_thread_cache()
 * gives the calling thread's cache and all transfer lists back.
 *
 * Creation and teardown: the cache struct lives in memory from ms_os_map (not in TLS, so
 * that the library can be dlopen()ed with little static TLS; TLS is one pointer and one
 * byte).  A pthread key's destructor gives it back at thread exit (the struct is reused by
 * later threads).  Before ms_pymalloc_init, while this thread's cache is being created
 * (pthread_setspecific may call malloc), after its destructor ran, or if mapping fails,
 * calls go to the locked central path (one block at a time, under the core lock).
 * After fork() the child keeps only the forking thread's cache; the others' cached blocks
 * are abandoned (they stay "in use" forever, a bounded leak).
 */
#ifndef MS_TCACHE_H
#define MS_TCACHE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arenamap.h"
#include "check.h"
#include "sizeclass.h"

/* A thread keeps at most this many bytes of full batches per class besides its loaded
 * magazine (its spare stack).  Why so many: batches a thread gives to the shared transfer
 * list are taken by other threads, whose blocks then share cache lines with the giver's.
 * That false sharing made two threads churning privately (scripts/bench private2) 1.5x
 * slower than glibc, where one thread alone is 0.45x: the program's load of its own block
 * waited for the other core's line.  A thread's count of free blocks of a class wanders
 * with the mix of its live set; with one spare batch the two churning threads passed
 * 148,000 batches to each other in 50M operations each, with an adaptive stack 226.
 * The bound adapts (spare_cap): it doubles when the stack fills after the thread had to
 * take a batch from the shared side (the thread swings between freeing and allocating the
 * class), and drops by one batch when the stack fills again without that (the thread only
 * frees: a structure being dropped), so a freeing phase keeps about one batch, not 64 KiB
 * of blocks scattered over every arena (each pins its pool: tests/bench/release).  The
 * calling thread's stacks are given back to the pools, like the transfer lists, before the
 * heap grows by an arena. */
#define MS_SPARE_MAX_BYTES ((size_t)64 << 10)

/* A transfer list holds at most this many bytes of blocks (whole batches).  Enough for
 * two threads trading bursts of a few thousand blocks to pass them as batches instead of
 * through the pools (bench_core xfree: 4 batches were too few).  Not more: a bound that
 * grew with the heap (a quarter of it) saved python's phases 1.5% of instructions but
 * kept a whole freed million-object list in a transfer list (32 MB, spread over every
 * arena) when it did not overflow, so no arena went back (python RSS after freeing stayed
 * 165 MB instead of 10 MB). */
#define MS_DEPOT_MAX_BYTES ((size_t)64 << 10)

struct ms_core;

struct ms_bin {
    void *head;                 /* loaded magazine */
    uint32_t room;              /* batch size - blocks in it; 0 in non-class bins */
    uint32_t unused;
};

#define MS_TCACHE_NBINS 256     /* one per address-map byte value */

struct ms_tcache {
    struct ms_bin bins[MS_TCACHE_NBINS];   /* 4 KiB; bins of non-class values stay 0 */
    void *spare[MS_NUM_CLASSES];           /* stack of full batches, by class */
    uint16_t nspare[MS_NUM_CLASSES];       /* batches in spare[] */
    uint16_t spare_cap[MS_NUM_CLASSES];    /* its bound now: 1..ms_tcache_spare_max */
    bool refilled[MS_NUM_CLASSES];         /* took a shared batch since the bound last
                                              moved */
    uint16_t owner;                        /* its id as pools' owner (pool.h), kept when
                                              the struct is reused */
    struct ms_tcache *next;     /* registry of live caches / retired list (core lock) */
    struct ms_tcache *prev;
};

/* A transfer list has its own lock, so that threads passing batches of different classes,
 * or passing batches while another thread works on the pools, do not wait for each other.
 * Lock order: the core lock before a transfer list's lock, never the other way round (a
 * transfer list's lock is never held while taking the core lock). */
struct ms_depot {
    pthread_mutex_t lock;
    void *batches;              /* stack of batches, linked by the head block's 2nd word */
    size_t n;
    bool bypass;                /* overflowed and nobody took a batch since: pushes go
                                   straight to the pools */
};

/* The core's part for thread caches: depot[] under their own locks, the rest under the
 * core lock. */
struct ms_tcache_shared {
    struct ms_depot depot[MS_NUM_CLASSES];
    struct ms_tcache *live;     /* registry of live caches, for stats and fork */
    struct ms_tcache *retired;  /* cache structs of exited threads, for reuse */
    unsigned nowners;           /* owner ids given out (1..MS_POOL_OWNERS-1, then 0) */
    pthread_key_t key;
    bool key_ok;
};

extern __thread struct ms_tcache *ms_tcache_self __attribute__((visibility("hidden")));

/* The loaded magazine of bin b (of the calling thread's cache) is empty. */
void *ms_tcache_alloc_slow(struct ms_bin *b);
/* Block p of class cls when its bin has no room (full, or no cache yet). */
void ms_tcache_free_slow(void *p, unsigned cls);

/* Fast path: one block of class cls (NULL only when out of memory). */
static inline void *ms_tcache_alloc(unsigned cls)
{
    /* bins[ms_arenamap_value(cls)], written so that the compiler folds the class
     * computation into the address (values of consecutive classes are consecutive). */
    struct ms_bin *b = &ms_tcache_self->bins[ms_arenamap_value(0)] + cls;
    void *p = b->head;
    if (MS_LIKELY(p != NULL)) {
        b->head = *(void **)p;
        b->room++;
        return p;
    }
    return ms_tcache_alloc_slow(b);     /* passing b, not cls: one less live register */
}

/* Fast path: push p into the bin of its address-map value v if that bin has room.
 * Returns false otherwise (v is not a class, the bin is full, or there is no cache yet):
 * then the caller takes its slow path. */
static inline bool ms_tcache_free(void *p, unsigned v)
{
    struct ms_bin *b = &ms_tcache_self->bins[v];
    if (MS_LIKELY(b->room != 0)) {
        *(void **)p = b->head;
        b->head = p;
        b->room--;
        return true;
    }
    return false;
}

/* Batch size of class cls. */
unsigned ms_tcache_batch(unsigned cls);

/* Most batches a transfer list of class cls holds. */
size_t ms_tcache_depot_max(unsigned cls);

/* Most batches a thread's spare stack of class cls holds. */
size_t ms_tcache_spare_max(unsigned cls);

/* Create the pthread key (from ms_pymalloc_init).  Returns 0 or -1. */
int ms_tcache_setup(struct ms_core *c);

/* Under the core lock: give every transfer list and the calling thread's spare stacks
 * back to the pools (before the heap grows by an arena).  Returns whether any block
 * moved. */
bool ms_tcache_reclaim_locked(struct ms_core *c);

/* Give the calling thread's cached blocks and every transfer list back to the pools. */
void ms_tcache_flush_self(struct ms_core *c);

/* fork() handling of the transfer lists' locks (the core lock is taken first by the
 * caller, see pymalloc.c). */
void ms_tcache_fork_prepare(struct ms_core *c);
void ms_tcache_fork_parent(struct ms_core *c);
/* In the child after fork(), locks re-initialised: forget the other threads' caches. */
void ms_tcache_after_fork_child(struct ms_core *c);

/* Under the core lock: take each transfer list's lock in turn and call fn on its batches
 * (for the expensive invariant walk). */
void ms_tcache_each_depot(struct ms_core *c, void (*fn)(unsigned cls, void *batches,
                                                         size_t n));

/* Per class, blocks held in thread caches (approximate: read without the owners'
 * cooperation) and in transfer lists; returns the number of live caches.  Under the lock. */
size_t ms_tcache_count(struct ms_core *c, size_t cached[MS_NUM_CLASSES],
                       size_t depot[MS_NUM_CLASSES]);

#endif
