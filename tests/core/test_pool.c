/* SPDX-License-Identifier: MIT */
/* Size classes, pool carving and the used/full/empty state changes (core/pool.c). */
#include <criterion/criterion.h>

#include "arenamap.h"
#include "core.h"
#include "helpers.h"
#include "pool.h"
#include "sizeclass.h"

Test(sizeclass, geometry)
{
    cr_assert(!ms_size_is_small(0));
    cr_assert(ms_size_is_small(1));
    cr_assert(ms_size_is_small(512));
    cr_assert(!ms_size_is_small(513));
    cr_assert(!ms_size_is_small((size_t)-1));
    for (size_t n = 1; n <= 512; n++) {
        unsigned c = ms_size_class(n);
        cr_assert_eq(c, (n - 1) / 16);
        cr_assert(ms_class_size(c) >= n && ms_class_size(c) - n < 16);
        cr_assert_eq(ms_class_size(c) % 16, 0);
    }
    cr_assert_eq(ms_size_class(512), 31);
    cr_assert_eq(ms_class_nblocks(0), (16384 - 48) / 16);
    cr_assert_eq(ms_class_nblocks(31), 31);
    cr_assert_eq(ms_class_quantization(31), 16336 - 31 * 512);
    cr_assert_eq(sizeof(struct ms_pool), 48, "the owner id fits in the old szidx word");
    cr_assert(ms_arena_size_valid(256 << 10));
    cr_assert(ms_arena_size_valid(64 << 20));
    cr_assert(!ms_arena_size_valid(128 << 10));
    cr_assert(!ms_arena_size_valid(128 << 20));
    cr_assert(!ms_arena_size_valid(3 << 20));
}

static void *take(unsigned cls)
{
    void *p;
    ms_core_lock(&ms_core);
    unsigned n = ms_pool_alloc_chain(&ms_core, cls, 1, 0, &p);
    ms_core_unlock(&ms_core);
    cr_assert_eq(n, 1);
    return p;
}

static void give(void *p)
{
    ms_core_lock(&ms_core);
    ms_pool_free_block(&ms_core, p);
    ms_core_unlock(&ms_core);
}

static struct ms_pool *first_used(unsigned cls)
{
    struct ms_pool *s = &ms_core.pools.used[cls];
    return s->next == s ? NULL : s->next;
}

Test(pool, lazy_carving_and_lifo)
{
    core_setup(0, false);
    unsigned cls = 2;   /* 48-byte blocks */
    char *a = take(cls);
    struct ms_pool *p = ms_pool_of(a);
    cr_assert_eq(a, (char *)p + 48, "first block right after the header");
    cr_assert_eq(p->count, 1);
    cr_assert_eq(p->nextoffset, 48 + 48, "only one block carved");
    cr_assert_eq(p->maxnextoffset, 16384 - 48);
    cr_assert_eq(ms_arenamap_get(a), cls + 1);
    cr_assert_eq(first_used(cls), p);
    char *b = take(cls);
    cr_assert_eq(b, a + 48);
    give(a);
    cr_assert_eq(p->freeblock, a);
    cr_assert_eq(take(cls), a, "given-back block is handed out first (LIFO)");
    cr_assert_eq(p->nextoffset, 48 + 2 * 48, "free list used before carving");
}

Test(pool, full_leaves_used_list_and_returns_to_front)
{
    core_setup(0, false);
    unsigned cls = 31, nb = ms_class_nblocks(cls);
    void *blocks[64];
    for (unsigned i = 0; i < nb; i++)
        blocks[i] = take(cls);
    struct ms_pool *a = ms_pool_of(blocks[0]);
    cr_assert_eq(a->count, nb);
    cr_assert(ms_pool_is_full(a));
    cr_assert_null(first_used(cls), "a full pool is on no list");
    void *x = take(cls);
    struct ms_pool *b = ms_pool_of(x);
    cr_assert_neq(a, b);
    cr_assert_eq(first_used(cls), b);
    give(blocks[5]);
    cr_assert_eq(first_used(cls), a, "a pool that stops being full goes to the front");
    cr_assert_eq(a->next, b);
    cr_assert_eq(take(cls), blocks[5], "the next request takes from it");
    cr_assert_eq(first_used(cls), b);
}

Test(pool, empty_goes_back_to_arena_and_is_reused)
{
    core_setup(0, false);
    void *a = take(4), *b = take(4);
    struct ms_pool *p = ms_pool_of(a);
    struct ms_arena *ar = p->arena;
    unsigned nf = ar->nfreepools;
    give(a);
    give(b);
    cr_assert_eq(p->count, 0);
    cr_assert_null(first_used(4), "an empty pool leaves the used list");
    cr_assert_eq(ar->freepools, p);
    cr_assert_eq(ar->nfreepools, nf + 1);
    cr_assert_eq(ms_arenamap_get(a), MS_ARENAMAP_FREE, "still ours, serving no class");
    cr_assert(ms_pymalloc_owns(a));
    /* Same class again: header and free list reused as they are (CPython does so), so
     * the last block given back comes first. */
    cr_assert_eq(take(4), b);
    cr_assert_eq(take(4), a);
    give(b);
    cr_assert_eq(ms_arenamap_get(a), 5);
    /* Another class takes the next free pool; after freeing, the pool can serve class 9. */
    give(a);
    void *c = take(9);
    cr_assert_eq(ms_pool_of(c), p, "free pool reused for another class");
    cr_assert_eq((char *)c, (char *)p + 48, "re-initialised for the new class");
    cr_assert_eq(ms_arenamap_get(c), 10);
}

Test(pool, chain_is_exact_and_terminated)
{
    core_setup(0, false);
    void *head;
    ms_core_lock(&ms_core);
    unsigned n = ms_pool_alloc_chain(&ms_core, 0, 1500, 0, &head);
    ms_core_unlock(&ms_core);
    cr_assert_eq(n, 1500, "spans two pools");
    unsigned k = 0;
    for (void *b = head; b != NULL; b = *(void **)b)
        k++;
    cr_assert_eq(k, 1500);
    ms_core_lock(&ms_core);
    ms_pool_free_chain(&ms_core, head);
    ms_core_unlock(&ms_core);
    cr_assert_null(first_used(0));
}

Test(pool, chain_cuts_the_free_list_then_carves)
{
    core_setup(0, false);
    void *b[12];
    for (int i = 0; i < 12; i++)
        b[i] = take(3);
    struct ms_pool *p = ms_pool_of(b[0]);
    for (int i = 0; i < 10; i++)
        give(b[i]);                      /* free list: b9, b8, ..., b0 */
    void *head;
    ms_core_lock(&ms_core);
    unsigned n = ms_pool_alloc_chain(&ms_core, 3, 4, 0, &head);
    ms_core_unlock(&ms_core);
    cr_assert_eq(n, 4);
    void *x = head;
    for (int i = 9; i >= 6; i--, x = *(void **)x)
        cr_assert_eq(x, b[i], "LIFO order, block %d", i);
    cr_assert_null(x, "chain terminated");
    cr_assert_eq(p->freeblock, b[5], "the rest stays on the pool's list");
    cr_assert_eq(p->count, 6);
    /* Asking for more than the list holds: the list, then carving continues at b[12]. */
    ms_core_lock(&ms_core);
    n = ms_pool_alloc_chain(&ms_core, 3, 8, 0, &head);
    ms_core_unlock(&ms_core);
    cr_assert_eq(n, 8);
    x = head;
    for (int i = 5; i >= 0; i--, x = *(void **)x)
        cr_assert_eq(x, b[i]);
    cr_assert_eq(x, (char *)b[11] + 64);
    cr_assert_eq(*(void **)x, (char *)b[11] + 128);
    cr_assert_null(*(void **)*(void **)x);
    cr_assert_null(p->freeblock);
    cr_assert_eq(p->count, 14);
}

static void *take_as(unsigned cls, unsigned owner)
{
    void *p;
    ms_core_lock(&ms_core);
    unsigned n = ms_pool_alloc_chain(&ms_core, cls, 1, owner, &p);
    ms_core_unlock(&ms_core);
    cr_assert_eq(n, 1);
    return p;
}

static void set_live(unsigned owner, int live)
{
    ms_core_lock(&ms_core);
    ms_pools_owner_live(&ms_core.pools, owner, live);
    ms_core_unlock(&ms_core);
}

/* Two live threads get pools of their own (their blocks never share a cache line); a
 * pool whose thread ended, or that nobody owns, is anybody's. */
Test(pool, live_owners_get_pools_of_their_own)
{
    core_setup(0, false);
    unsigned cls = 4;
    set_live(1, 1);
    set_live(2, 1);
    char *a = take_as(cls, 1);
    char *b = take_as(cls, 2);
    cr_assert_neq(ms_pool_of(a), ms_pool_of(b), "thread 2 must not take from thread 1's pool");
    cr_assert_eq(ms_pool_of(take_as(cls, 1)), ms_pool_of(a), "owner 1 keeps its pool");
    cr_assert_eq(ms_pool_of(take_as(cls, 2)), ms_pool_of(b), "owner 2 keeps its pool");
    cr_assert(!ms_pools_may_take(&ms_core.pools, ms_pool_of(a), 2));
    cr_assert(ms_pools_may_take(&ms_core.pools, ms_pool_of(a), 1));
    /* Thread 1 ends: its pool is the first on the list that thread 3 may take from. */
    set_live(1, 0);
    set_live(3, 1);
    cr_assert(ms_pools_may_take(&ms_core.pools, ms_pool_of(a), 2));
    struct ms_pool *got = ms_pool_of(take_as(cls, 3));
    cr_assert_eq(got, ms_pool_of(a), "a dead owner's pool is taken before a fresh one");
    cr_assert_eq(ms_pool_of(take_as(cls, 0)), first_used(cls),
                 "no owner (no thread cache): the front pool");
    set_live(2, 0);
    set_live(3, 0);
}

/* Past MS_POOL_OWNER_SCAN pools of other live threads, the front one is taken anyway:
 * memory is not held back for a thread. */
Test(pool, a_long_list_of_foreign_pools_is_shared_not_grown)
{
    core_setup(0, false);
    unsigned cls = 31, nb = ms_class_nblocks(cls);
    for (unsigned o = 1; o <= MS_POOL_OWNER_SCAN + 1; o++) {
        set_live(o, 1);
        for (unsigned i = 0; i < nb - 1; i++)   /* a pool each, one block short of full */
            (void)take_as(cls, o);
    }
    unsigned stranger = MS_POOL_OWNER_SCAN + 2;
    set_live(stranger, 1);
    struct ms_pool *front = first_used(cls);
    cr_assert_eq(ms_pool_of(take_as(cls, stranger)), front);
    for (unsigned o = 1; o <= stranger; o++)
        set_live(o, 0);
}
