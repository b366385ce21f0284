/* SPDX-License-Identifier: MIT */
/* Ownership by address: arena boundaries, released arenas, page-aligned-only arenas. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>

#include "arena.h"
#include "arenamap.h"
#include "core.h"
#include "helpers.h"
#include "sizeclass.h"

#define ASZ ((size_t)256 << 10)

static char *only_live_arena(void)
{
    char *found = NULL;
    for (int i = 0; i < FAKE_MAX_ARENAS; i++) {
        if (fake_arenas.live[i] != NULL) {
            cr_assert_null(found);
            found = fake_arenas.live[i];
        }
    }
    cr_assert_not_null(found);
    return found;
}

Test(arenamap, aligned_arena_boundaries)
{
    core_setup(ASZ, false);
    void *p = ms_pymalloc_malloc(NULL, 32);
    cr_assert_not_null(p);
    char *base = only_live_arena();
    cr_assert_eq((uintptr_t)base & MS_POOL_MASK, 0);
    cr_assert(ms_pymalloc_owns(base), "first byte");
    cr_assert(ms_pymalloc_owns(base + ASZ - 1), "last byte");
    cr_assert(!ms_pymalloc_owns(base - 1), "one byte before");
    cr_assert(!ms_pymalloc_owns(base + ASZ), "one byte after");
    cr_assert_eq(ms_arenamap_get(base + ASZ - 1), MS_ARENAMAP_FREE, "never-used pool");
    cr_assert_eq(ms_core.arenas.usable->ntotalpools, 16, "aligned: no pool lost");
}

Test(arenamap, page_aligned_arena_loses_partial_pools)
{
    core_setup(ASZ, true);
    void *p = ms_pymalloc_malloc(NULL, 32);
    cr_assert_not_null(p);
    char *base = only_live_arena();
    cr_assert_neq((uintptr_t)base & MS_POOL_MASK, 0, "fake hands out misaligned arenas");
    char *first = (char *)ms_arena_first_pool((uintptr_t)base);
    char *end = first + 15 * MS_POOL_SIZE;
    cr_assert_eq(ms_core.arenas.usable->ntotalpools, 15, "partial first pool lost");
    cr_assert(!ms_pymalloc_owns(base), "partial first pool is not ours");
    cr_assert(!ms_pymalloc_owns(first - 1));
    cr_assert(ms_pymalloc_owns(first));
    cr_assert(ms_pymalloc_owns(end - 1), "last byte of the last whole pool");
    cr_assert(!ms_pymalloc_owns(end), "partial last pool is not ours");
    cr_assert(!ms_pymalloc_owns(base + ASZ - 1));
    cr_assert_eq(ms_pool_of(p), (struct ms_pool *)first);
    cr_assert_eq((uintptr_t)p % 16, 0);
    /* Blocks from it work like any other. */
    cr_assert_eq(ms_pymalloc_usable_size(NULL, p), 32);
    ms_pymalloc_free(NULL, p);
}

Test(arenamap, released_arena_is_forgotten)
{
    core_setup(ASZ, false);
    /* Two arenas' worth of 512-byte blocks, then everything back. */
    enum { N = 31 * 16 * 2 };
    static void *b[N];
    for (int i = 0; i < N; i++)
        cr_assert_not_null(b[i] = ms_pymalloc_malloc(NULL, 512));
    cr_assert_geq(fake_arenas.nalloc, 2);
    char *first_arena = NULL;
    for (int i = 0; i < FAKE_MAX_ARENAS && first_arena == NULL; i++)
        first_arena = fake_arenas.live[i];
    for (int i = 0; i < N; i++)
        ms_pymalloc_free(NULL, b[i]);
    ms_pymalloc_flush_thread_cache();
    cr_assert_eq(fake_arenas_live(), 1);
    int released = 0;
    for (int i = 0; i < N; i++)
        released += !ms_pymalloc_owns(b[i]);
    cr_assert_gt(released, 0, "blocks of the released arenas are not ours any more");
    (void)first_arena;
}

Test(arenamap, foreign_pointers)
{
    core_setup(0, false);
    int on_stack;
    void *heap = malloc(32);
    cr_assert(!ms_pymalloc_owns(NULL));
    cr_assert(!ms_pymalloc_owns(&on_stack));
    cr_assert(!ms_pymalloc_owns(heap));
    cr_assert(!ms_pymalloc_owns((void *)(uintptr_t)0xffff800000001000u), "kernel half");
    cr_assert(!ms_pymalloc_owns((void *)(uintptr_t)0x0001000000000000u), "just past 48 bits");
    cr_assert(!ms_pymalloc_owns((void *)(uintptr_t)-1));
    /* A foreign pointer goes to the lower allocator. */
    int nfree = fake_lower.nfree;
    ms_pymalloc_free(NULL, heap);
    cr_assert_eq(fake_lower.nfree, nfree + 1);
}

Test(arenamap, mark_rejects_unmappable_ranges)
{
    core_setup(0, false);
    cr_assert_eq(ms_arenamap_mark((uintptr_t)1 << 48, 4, MS_ARENAMAP_FREE), -1);
    cr_assert_eq(ms_arenamap_mark(((uintptr_t)1 << 48) - MS_POOL_SIZE, 2, MS_ARENAMAP_FREE), -1);
    /* Spanning two leaves. */
    uintptr_t edge = (uintptr_t)1 << 40;
    cr_assert_eq(ms_arenamap_mark(edge - 2 * MS_POOL_SIZE, 4, 7), 0);
    cr_assert_eq(ms_arenamap_get((void *)(edge - 1)), 7);
    cr_assert_eq(ms_arenamap_get((void *)edge), 7);
    cr_assert_eq(ms_arenamap_get((void *)(edge + 2 * MS_POOL_SIZE)), 0);
    cr_assert_eq(ms_arenamap_mark(edge - 2 * MS_POOL_SIZE, 4, 0), 0);
}
