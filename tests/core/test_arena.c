/* SPDX-License-Identifier: MIT */
/* Arena ordering (fullest first, O(1) nfp2lasta), release and the keep-one rule. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <time.h>

#include "arena.h"
#include "core.h"
#include "helpers.h"
#include "pool.h"

#define ASZ ((size_t)256 << 10)   /* 16 pools per arena */

static struct ms_pool *take_pool(void)
{
    ms_core_lock(&ms_core);
    struct ms_pool *p = ms_arena_take_pool(&ms_core);
    ms_core_unlock(&ms_core);
    cr_assert_not_null(p);
    return p;
}

static void give_pool(struct ms_pool *p)
{
    ms_core_lock(&ms_core);
    ms_arena_give_pool(&ms_core, p);
    ms_core_unlock(&ms_core);
}

/* Three full arenas of 16 pools each. */
static void take_three_arenas(struct ms_pool *pools[3][16])
{
    for (int a = 0; a < 3; a++)
        for (int i = 0; i < 16; i++)
            pools[a][i] = take_pool();
}

/* The usable list is sorted by free pools ascending, and nfp2lasta[n] is the last arena
 * with n free pools; returns the list length. */
static int check_order(void)
{
    struct ms_arenas *as = &ms_core.arenas;
    int len = 0;
    struct ms_arena *prev = NULL;
    for (struct ms_arena *a = as->usable; a != NULL; prev = a, a = a->next, len++) {
        cr_assert_eq(a->prev, prev);
        if (prev != NULL)
            cr_assert_leq(prev->nfreepools, a->nfreepools, "fullest first");
        bool last = a->next == NULL || a->next->nfreepools != a->nfreepools;
        cr_assert_eq(as->nfp2lasta[a->nfreepools] == a, last);
    }
    for (unsigned n = 0; n <= MS_MAX_POOLS_PER_ARENA; n++)
        if (as->nfp2lasta[n] != NULL)
            cr_assert_eq(as->nfp2lasta[n]->nfreepools, n);
    return len;
}

Test(arena, ordering_release_and_keep_one)
{
    core_setup(ASZ, false);
    struct ms_pool *pools[3][16];
    take_three_arenas(pools);
    cr_assert_eq(fake_arenas.nalloc, 3);
    struct ms_arena *A = pools[0][0]->arena, *B = pools[1][0]->arena, *C = pools[2][0]->arena;
    cr_assert(A != B && B != C);
    cr_assert_eq(A->ntotalpools, 16);
    cr_assert_null(ms_core.arenas.usable, "all full: nothing usable");

    give_pool(pools[2][0]);
    give_pool(pools[2][1]);          /* C: 2 free */
    give_pool(pools[0][0]);          /* A: 1 free */
    cr_assert_eq(check_order(), 2);
    cr_assert_eq(ms_core.arenas.usable, A);
    give_pool(pools[1][0]);          /* B: 1 free */
    cr_assert_eq(check_order(), 3);
    cr_assert_eq(ms_core.arenas.usable->nfreepools, 1);
    give_pool(pools[0][1]);          /* A: 2 free, slides right past B */
    check_order();
    cr_assert_eq(ms_core.arenas.usable, B);
    give_pool(pools[0][2]);          /* A: 3 free, now last */
    check_order();
    cr_assert_null(A->next);

    /* New pools come from the fullest arena. */
    struct ms_pool *p = take_pool();
    cr_assert_eq(p->arena, B);
    cr_assert_eq(fake_arenas.nalloc, 3, "no new arena while some has free pools");
    give_pool(p);

    /* A drains completely: it is the last usable arena, so it is kept. */
    for (int i = 3; i < 16; i++)
        give_pool(pools[0][i]);
    check_order();
    cr_assert_eq(A->nfreepools, 16);
    cr_assert_eq(fake_arenas.nfree, 0, "one wholly free arena is kept");
    cr_assert(ms_pymalloc_owns(pools[0][5]));

    /* C drains completely too: it is not last (A is), so it goes back. */
    for (int i = 2; i < 16; i++)
        give_pool(pools[2][i]);
    cr_assert_eq(fake_arenas.nfree, 1);
    cr_assert_eq(C->address, 0);
    cr_assert(!ms_pymalloc_owns(pools[2][5]), "released arena is no longer ours");
    cr_assert_eq(check_order(), 2);
    cr_assert_eq(ms_core.arenas.ncurrent, 2);

    /* The kept arena is reused before a new one is mapped. */
    for (int i = 0; i < 17; i++)
        take_pool();
    cr_assert_eq(fake_arenas.nalloc, 3);
    check_order();
}

Test(arena, many_arenas_random_order)
{
    core_setup(ASZ, false);
    enum { N = 16 * 20 };
    static struct ms_pool *pools[N];
    for (int i = 0; i < N; i++)
        pools[i] = take_pool();
    cr_assert_eq(fake_arenas.nalloc, 20);
    unsigned seed = 12345;
    for (int i = N - 1; i > 0; i--) {
        seed = seed * 1103515245u + 12345u;
        int j = (int)((seed >> 8) % (unsigned)(i + 1));
        struct ms_pool *t = pools[i];
        pools[i] = pools[j];
        pools[j] = t;
    }
    for (int i = 0; i < N; i++) {
        give_pool(pools[i]);
        check_order();
    }
    cr_assert_eq(fake_arenas_live(), 1, "everything back except the one kept arena");
}

Test(arena, new_arena_failure_falls_back_to_lower)
{
    core_setup(ASZ, false);
    fake_arenas.fail = true;
    void *q = ms_pymalloc_malloc(NULL, 16);
    cr_assert_not_null(q);
    cr_assert(!ms_pymalloc_owns(q), "served by the lower allocator, as CPython does");
    cr_assert_eq(fake_lower.nmalloc, 1);
    cr_assert_eq(fake_lower.last_malloc_size, 16);
    ms_pymalloc_free(NULL, q);
    cr_assert_eq(fake_lower.nfree, 1);
    fake_lower.fail = true;
    cr_assert_null(ms_pymalloc_malloc(NULL, 16), "both out of memory");
    fake_lower.fail = false;
    fake_arenas.fail = false;
    void *p = ms_pymalloc_malloc(NULL, 16);
    cr_assert_not_null(p);
    cr_assert(ms_pymalloc_owns(p));
}

Test(arena, transfer_lists_reclaimed_before_a_new_arena)
{
    /* Every pool of the only arena holds 8 blocks that sit in a transfer list; a request
     * of another class must get a pool from them, not a new arena. */
    core_setup(ASZ, false);
    enum { NB = 31 * 16 };
    static void *b[NB];
    void *head;
    ms_core_lock(&ms_core);
    cr_assert_eq(ms_pool_alloc_chain(&ms_core, 31, NB, 0, &head), NB);
    for (int i = 0; i < NB; i++, head = *(void **)head)
        b[i] = head;
    void *batches = NULL, *batch = NULL;
    int inbatch = 0, nbatches = 0;
    for (int i = 0; i < NB; i++) {
        if (i % 31 < 8) {
            *(void **)b[i] = batch;     /* a batch is a chain... */
            batch = b[i];
            if (++inbatch == 16) {
                ((void **)batch)[1] = batches;   /* ...linked by its head's 2nd word */
                batches = batch;
                batch = NULL;
                inbatch = 0;
                nbatches++;
            }
        } else {
            ms_pool_free_block(&ms_core, b[i]);
        }
    }
    ms_core_unlock(&ms_core);
    cr_assert_eq(nbatches, 8);
    cr_assert_null(ms_core.arenas.usable, "no free pool anywhere");
    struct ms_depot *d = &ms_core.tc.depot[31];
    pthread_mutex_lock(&d->lock);
    d->batches = batches;
    d->n = 8;
    pthread_mutex_unlock(&d->lock);

    void *p = ms_pymalloc_malloc(NULL, 16);
    cr_assert(ms_pymalloc_owns(p));
    cr_assert_eq(fake_arenas.nalloc, 1, "the transfer list was given back instead");
    cr_assert_eq(d->n, 0);
}

/* Empty pools give their pages back once more than dirty_max of them wait; the free list
 * that ran through those pages is gone, so a pool reused for its old class must carve from
 * the start.  Pools emptied after the purge keep theirs until the next one. */
Test(arena, discarded_pools_start_afresh)
{
    core_setup(ASZ, false);
    ms_core.arenas.dirty_max = 8;
    struct ms_pool *pools[16];
    for (int i = 0; i < 16; i++) {
        pools[i] = take_pool();
        pools[i]->szidx = 3;
        pools[i]->count = 0;
        /* A free list whose head lies in the pool's second page, as after frees. */
        void **b = (void **)((char *)pools[i] + MS_POOL_SIZE / 2);
        *b = NULL;
        pools[i]->freeblock = b;
        pools[i]->nextoffset = MS_POOL_SIZE / 2 + 64;
    }
    for (int i = 0; i < 12; i++)
        give_pool(pools[i]);    /* the 9th is one too many: the 9 are purged */
    cr_assert_eq(ms_core.arenas.ndirty, 3);
    for (int i = 0; i < 9; i++) {
        cr_assert_null(pools[i]->freeblock, "pool %d kept a list through discarded pages", i);
        cr_assert_eq(pools[i]->nextoffset, MS_POOL_OVERHEAD);
    }
    for (int i = 9; i < 12; i++)
        cr_assert_not_null(pools[i]->freeblock, "pool %d was purged early", i);
    for (int i = 12; i < 16; i++)
        cr_assert_not_null(pools[i]->freeblock, "pools in use are left alone");
}

/* With a delay (the shim's setting), free pools and wholly free arenas wait past the budget
 * for the program to take them again: python3 empties and refills tens of MiB of pools,
 * and each page given back was faulted in again (26,000 faults vs 8,750 on a 1 s run). */
Test(arena, with_a_delay_free_arenas_wait_then_go_back)
{
    core_setup(ASZ, false);
    ms_core.arenas.dirty_max = 8;
    ms_core.arenas.dirty_delay_ns = 20 * 1000000ull;
    struct ms_pool *pools[3][16];
    take_three_arenas(pools);
    /* Arena C drains: 16 dirty pools, over the budget (8) but under the hard bound (32). */
    for (int i = 0; i < 16; i++)
        give_pool(pools[2][i]);
    check_order();
    cr_assert_eq(fake_arenas.nfree, 0, "a wholly free arena went back without waiting");
    cr_assert_eq(ms_core.arenas.ndirty, 16);
    /* Taken again before the delay is up: the pages were still there. */
    for (int i = 0; i < 16; i++)
        pools[2][i] = take_pool();
    cr_assert_eq(fake_arenas.nalloc, 3, "no new arena while free ones wait");
    cr_assert_eq(ms_core.arenas.ndirty, 0);

    /* B and C drain; A keeps blocks.  Nobody takes them: after the delay, the next give
     * back purges - the wholly free arena that is not last goes back, the last is kept. */
    for (int i = 0; i < 16; i++)
        give_pool(pools[2][i]);
    for (int i = 0; i < 15; i++)
        give_pool(pools[1][i]);
    cr_assert_eq(fake_arenas.nfree, 0);
    struct timespec wait = { 0, 60 * 1000000L };
    nanosleep(&wait, NULL);
    give_pool(pools[1][15]);
    check_order();
    cr_assert_eq(fake_arenas.nfree, 1, "after the delay one wholly free arena went back");
    cr_assert_eq(ms_core.arenas.ncurrent, 2);
    cr_assert_leq(ms_core.arenas.ndirty, 4);
    cr_assert_not_null(ms_core.arenas.usable, "the last wholly free arena is kept");
}

/* Past the hard bound nothing waits: a program dropping a big structure gets its memory
 * back at once, whatever the delay. */
Test(arena, past_the_hard_bound_nothing_waits)
{
    core_setup(ASZ, false);
    ms_core.arenas.dirty_max = 2;
    ms_core.arenas.dirty_delay_ns = 3600 * 1000000000ull;
    enum { N = 16 * 4 };
    static struct ms_pool *pools[N];
    for (int i = 0; i < N; i++)
        pools[i] = take_pool();
    for (int i = 0; i < N; i++) {
        give_pool(pools[i]);
        cr_assert_leq(ms_core.arenas.ndirty, 2 * MS_ARENA_DIRTY_HARD_FACTOR,
                      "%zu dirty pools waited past the hard bound", ms_core.arenas.ndirty);
    }
    cr_assert_geq(fake_arenas.nfree, 3, "wholly free arenas were kept");
    check_order();
}

/* Three full arenas whose free pools, once given back, wait for an hour. */
static void three_arenas_that_wait(struct ms_pool *pools[3][16])
{
    core_setup(ASZ, false);
    ms_core.arenas.dirty_delay_ns = 3600 * 1000000000ull;
    take_three_arenas(pools);
}

/* When the lower allocator runs out, what waits goes back at once (shim_oom under
 * RLIMIT_AS failed to allocate 4 MiB after freeing everything without this). */
Test(arena, out_of_memory_gives_back_what_waits)
{
    struct ms_pool *pools[3][16];
    three_arenas_that_wait(pools);
    for (int a = 1; a < 3; a++)
        for (int i = 0; i < 16; i++)
            give_pool(pools[a][i]);
    give_pool(pools[0][0]);
    cr_assert_eq(fake_arenas.nfree, 0);
    ms_core_lock(&ms_core);
    cr_assert(ms_arena_purge_all(&ms_core));
    cr_assert_not(ms_arena_purge_all(&ms_core), "nothing is left to give back");
    ms_core_unlock(&ms_core);
    cr_assert_eq(fake_arenas.nfree, 1, "one wholly free arena is kept, the other went back");
    cr_assert_eq(ms_core.arenas.ndirty, 0);
    check_order();
}

/* The lower allocator's failure gives back what waits and is tried again, unless no
 * amount of giving back could make the request fit (a program probing with impossible
 * sizes would lose its waiting pools every time). */
Test(arena, a_lower_failure_gives_back_what_waits_only_when_it_could_help)
{
    struct ms_pool *pools[3][16];
    three_arenas_that_wait(pools);
    for (int i = 0; i < 4; i++)
        give_pool(pools[1][i]);
    cr_assert_eq(ms_core.arenas.ndirty, 4);
    fake_lower.fail = true;
    int calls = fake_lower.nmalloc;
    cr_assert_null(ms_pymalloc_malloc(NULL, (size_t)1 << 40));
    cr_assert_eq(fake_lower.nmalloc, calls + 1, "an impossible size was tried again");
    cr_assert_eq(ms_core.arenas.ndirty, 4, "an impossible size took the waiting pools");
    cr_assert_null(ms_pymalloc_malloc(NULL, 4096));
    cr_assert_eq(fake_lower.nmalloc, calls + 3, "not tried again after giving back");
    cr_assert_eq(ms_core.arenas.ndirty, 0);
    fake_lower.fail = false;
}
