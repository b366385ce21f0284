/* SPDX-License-Identifier: MIT */
/* The allocator functions: malloc/free routing, realloc rules, calloc, memalign,
 * usable_size, init rules. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "helpers.h"
#include "pymalloc.h"
#include "sizeclass.h"

static void fill(void *p, size_t n, unsigned char seed)
{
    for (size_t i = 0; i < n; i++)
        ((unsigned char *)p)[i] = (unsigned char)(seed + i);
}

static void check(const void *p, size_t n, unsigned char seed)
{
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(((const unsigned char *)p)[i], (unsigned char)(seed + i), "byte %zu", i);
}

Test(api, malloc_routing)
{
    core_setup(0, false);
    for (size_t n = 1; n <= 512; n++) {
        void *p = ms_pymalloc_malloc(NULL, n);
        cr_assert(ms_pymalloc_owns(p), "size %zu", n);
        cr_assert_eq((uintptr_t)p % 16, 0);
        cr_assert_eq(ms_pymalloc_usable_size(NULL, p), ms_class_size(ms_size_class(n)));
        fill(p, ms_pymalloc_usable_size(NULL, p), (unsigned char)n);
        ms_pymalloc_free(NULL, p);
    }
    cr_assert_eq(fake_lower.nmalloc, 0);
    void *z = ms_pymalloc_malloc(NULL, 0);
    cr_assert_not_null(z);
    cr_assert(!ms_pymalloc_owns(z));
    cr_assert_eq(fake_lower.nmalloc, 1);
    cr_assert_eq(fake_lower.last_malloc_size, 1, "0 bytes is malloc(1), as CPython");
    void *big = ms_pymalloc_malloc(NULL, 513);
    cr_assert(!ms_pymalloc_owns(big));
    cr_assert_eq(fake_lower.last_malloc_size, 513);
    cr_assert_geq(ms_pymalloc_usable_size(NULL, big), 513);
    cr_assert_eq(fake_lower.nusable, 1);
    ms_pymalloc_free(NULL, z);
    ms_pymalloc_free(NULL, big);
    cr_assert_eq(fake_lower.nfree, 2);
    ms_pymalloc_free(NULL, NULL);
    cr_assert_eq(fake_lower.nfree, 2);
    cr_assert_eq(ms_pymalloc_usable_size(NULL, NULL), 0);
}

Test(api, lifo_reuse)
{
    core_setup(0, false);
    void *a = ms_pymalloc_malloc(NULL, 40);
    ms_pymalloc_free(NULL, a);
    cr_assert_eq(ms_pymalloc_malloc(NULL, 33), a, "same class, last freed first");
}

Test(api, realloc_in_place)
{
    core_setup(0, false);
    char *p = ms_pymalloc_malloc(NULL, 100);      /* class 6, 112 bytes */
    fill(p, 100, 1);
    cr_assert_eq(ms_pymalloc_realloc(NULL, p, 112), p, "grow within the block");
    cr_assert_eq(ms_pymalloc_realloc(NULL, p, 97), p, "same class");
    cr_assert_eq(ms_pymalloc_realloc(NULL, p, 85), p, "saves less than a quarter");
    char *q = ms_pymalloc_realloc(NULL, p, 84);   /* 4 * 84 = 336 = 3 * 112: moves */
    cr_assert_neq(q, p);
    cr_assert(ms_pymalloc_owns(q));
    cr_assert_eq(ms_pymalloc_usable_size(NULL, q), 96);
    check(q, 84, 1);
    char *s = ms_pymalloc_malloc(NULL, 16);
    cr_assert_eq(ms_pymalloc_realloc(NULL, s, 1), s, "same class even if it shrinks a lot");
    cr_assert_eq(fake_lower.nmalloc + fake_lower.nrealloc, 0);
}

Test(api, realloc_moves_and_crosses_threshold)
{
    core_setup(0, false);
    char *p = ms_pymalloc_malloc(NULL, 24);
    fill(p, 24, 7);
    char *q = ms_pymalloc_realloc(NULL, p, 300);
    cr_assert(ms_pymalloc_owns(q) && q != p);
    check(q, 24, 7);
    fill(q, 300, 9);
    char *big = ms_pymalloc_realloc(NULL, q, 2000);
    cr_assert(!ms_pymalloc_owns(big), "crossing 512 goes to the lower allocator");
    cr_assert_eq(fake_lower.nmalloc, 1);
    check(big, 300, 9);
    /* A foreign block stays with the lower allocator, even when it shrinks below 512. */
    char *small = ms_pymalloc_realloc(NULL, big, 10);
    cr_assert(!ms_pymalloc_owns(small));
    cr_assert_eq(fake_lower.nrealloc, 1);
    check(small, 10, 9);
    ms_pymalloc_free(NULL, small);
    /* realloc(NULL, n) is malloc(n). */
    void *m = ms_pymalloc_realloc(NULL, NULL, 64);
    cr_assert(ms_pymalloc_owns(m));
    /* realloc(p, 0): CPython moves the block to malloc(0), i.e. the lower malloc(1). */
    void *z = ms_pymalloc_realloc(NULL, m, 0);
    cr_assert_not_null(z);
    cr_assert(!ms_pymalloc_owns(z));
    cr_assert_eq(fake_lower.last_malloc_size, 1);
}

Test(api, realloc_failure_leaves_block_intact)
{
    core_setup(0, false);
    char *p = ms_pymalloc_malloc(NULL, 200);
    fill(p, 200, 3);
    fake_lower.fail = true;
    cr_assert_null(ms_pymalloc_realloc(NULL, p, 5000));
    cr_assert(ms_pymalloc_owns(p));
    cr_assert_eq(ms_pymalloc_usable_size(NULL, p), 208);
    check(p, 200, 3);
    fake_lower.fail = false;
    char *q = ms_pymalloc_realloc(NULL, p, 5000);
    cr_assert_not_null(q);
    check(q, 200, 3);
}

Test(api, calloc)
{
    core_setup(0, false);
    cr_assert_null(ms_pymalloc_calloc(NULL, SIZE_MAX / 2, 3), "overflow");
    cr_assert_null(ms_pymalloc_calloc(NULL, (size_t)1 << 33, (size_t)1 << 31), "overflow");
    cr_assert_eq(fake_lower.ncalloc, 0, "overflow never reaches the lower allocator");
    unsigned char *d = ms_pymalloc_malloc(NULL, 100);
    memset(d, 0xaa, 112);
    ms_pymalloc_free(NULL, d);
    unsigned char *z = ms_pymalloc_calloc(NULL, 10, 10);
    cr_assert_eq(z, d, "the dirty block is reused");
    for (int i = 0; i < 100; i++)
        cr_assert_eq(z[i], 0);
    void *big = ms_pymalloc_calloc(NULL, 100, 10);
    cr_assert(!ms_pymalloc_owns(big));
    cr_assert_eq(fake_lower.ncalloc, 1);
    void *zero = ms_pymalloc_calloc(NULL, 0, 5);
    cr_assert_not_null(zero);
    cr_assert_eq(fake_lower.ncalloc, 2);
}

Test(api, memalign)
{
    core_setup(0, false);
    void *a = ms_pymalloc_memalign(NULL, 16, 100);
    cr_assert(ms_pymalloc_owns(a));
    void *b = ms_pymalloc_memalign(NULL, 8, 512);
    cr_assert(ms_pymalloc_owns(b));
    cr_assert_eq(fake_lower.nmemalign, 0);
    void *c = ms_pymalloc_memalign(NULL, 32, 100);
    cr_assert(!ms_pymalloc_owns(c));
    cr_assert_eq((uintptr_t)c % 32, 0);
    void *d = ms_pymalloc_memalign(NULL, 16, 513);
    void *e = ms_pymalloc_memalign(NULL, 16, 0);
    cr_assert(!ms_pymalloc_owns(d) && !ms_pymalloc_owns(e));
    cr_assert_eq(fake_lower.nmemalign, 3);
    ms_pymalloc_free(NULL, c);
    ms_pymalloc_free(NULL, d);
    ms_pymalloc_free(NULL, e);
    cr_assert_eq(fake_lower.nfree, 3);
}

Test(api, init_rules)
{
    struct ms_pymalloc_config cfg = {
        .arena_size = 3 << 20, .lower = fake_lower_allocator(), .stats_fd = -1,
    };
    cr_assert_eq(ms_pymalloc_init(&cfg), -1, "arena size not a power of two");
    cfg.arena_size = 128 << 10;
    cr_assert_eq(ms_pymalloc_init(&cfg), -1, "arena size too small");
    cfg.arena_size = 0;
    cfg.lower.free = NULL;
    cr_assert_eq(ms_pymalloc_init(&cfg), -1, "incomplete lower allocator");
    cfg.lower = fake_lower_allocator();
    cr_assert_eq(ms_pymalloc_init(&cfg), 0);
    cr_assert_eq(ms_pymalloc_init(&cfg), 0, "again, while no block exists");
    void *p = ms_pymalloc_malloc(NULL, 8);
    cr_assert_not_null(p);
    cr_assert_eq(ms_pymalloc_init(&cfg), -1, "in use");
    struct ms_arena_allocator got;
    ms_pymalloc_get_arena_allocator(&got);
    cr_assert_not_null(got.alloc, "the default allocator");
    struct ms_arena_allocator fake = fake_arena_allocator();
    ms_pymalloc_set_arena_allocator(&fake);
    ms_pymalloc_get_arena_allocator(&got);
    cr_assert_eq(got.ctx, fake.ctx);
    cr_assert_eq(got.alloc, fake.alloc);
}

Test(api, before_init)
{
    /* Small blocks work from the built-in defaults; there is no lower allocator yet. */
    void *p = ms_pymalloc_malloc(NULL, 64);
    cr_assert(ms_pymalloc_owns(p));
    ms_pymalloc_free(NULL, p);
    cr_assert_null(ms_pymalloc_malloc(NULL, 4096));
    cr_assert(ms_pymalloc_owns(p), "its pool is free now, the arena is kept");
    cr_assert_eq(ms_pymalloc_usable_size(NULL, p), 0, "no live block there");
}

Test(api, allocator_struct)
{
    core_setup(0, false);
    struct ms_allocator a = ms_pymalloc_allocator();
    void *p = a.malloc(a.ctx, 50);
    cr_assert(ms_pymalloc_owns(p));
    cr_assert_eq(a.usable_size(a.ctx, p), 64);
    p = a.realloc(a.ctx, p, 60);
    a.free(a.ctx, p);
    void *z = a.calloc(a.ctx, 2, 8);
    cr_assert(ms_pymalloc_owns(z));
    void *m = a.memalign(a.ctx, 16, 16);
    cr_assert(ms_pymalloc_owns(m));
}

Test(api, pointer_into_free_pool)
{
    /* A stale pointer into a pool that has gone back to its (kept) arena: never given to
     * the lower allocator, never pushed onto a free list. */
    core_setup(0, false);
    void *p = ms_pymalloc_malloc(NULL, 128);
    ms_pymalloc_free(NULL, p);
    ms_pymalloc_flush_thread_cache();
    cr_assert(ms_pymalloc_owns(p));
    cr_assert_eq(ms_pymalloc_usable_size(NULL, p), 0);
    cr_assert_null(ms_pymalloc_realloc(NULL, p, 64));
    ms_pymalloc_free(NULL, p);
    cr_assert_eq(fake_lower.nfree + fake_lower.nrealloc + fake_lower.nusable, 0);
    void *q = ms_pymalloc_malloc(NULL, 128);
    void *r = ms_pymalloc_malloc(NULL, 128);
    cr_assert_neq(q, r, "the stale free did not put the block on a list twice");
}
