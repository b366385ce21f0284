/* SPDX-License-Identifier: MIT */
/* Test doubles (see helpers.h). */
#include "helpers.h"

#include <criterion/criterion.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "os.h"
#include "sizeclass.h"

/* Counters are bumped atomically: the stress and thread tests call in from many threads. */
struct fake_lower fake_lower;
struct fake_arenas fake_arenas;

static void *l_malloc(void *ctx, size_t n)
{
    (void)ctx;
    __atomic_fetch_add(&fake_lower.nmalloc, 1, __ATOMIC_RELAXED);
    fake_lower.last_malloc_size = n;
    return fake_lower.fail ? NULL : malloc(n);
}

static void *l_calloc(void *ctx, size_t a, size_t b)
{
    (void)ctx;
    __atomic_fetch_add(&fake_lower.ncalloc, 1, __ATOMIC_RELAXED);
    return fake_lower.fail ? NULL : calloc(a, b);
}

static void *l_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    __atomic_fetch_add(&fake_lower.nrealloc, 1, __ATOMIC_RELAXED);
    return fake_lower.fail ? NULL : realloc(p, n);
}

static void l_free(void *ctx, void *p)
{
    (void)ctx;
    __atomic_fetch_add(&fake_lower.nfree, 1, __ATOMIC_RELAXED);
    free(p);
}

static void *l_memalign(void *ctx, size_t al, size_t n)
{
    (void)ctx;
    __atomic_fetch_add(&fake_lower.nmemalign, 1, __ATOMIC_RELAXED);
    return fake_lower.fail ? NULL : memalign(al, n);
}

static size_t l_usable(void *ctx, void *p)
{
    (void)ctx;
    __atomic_fetch_add(&fake_lower.nusable, 1, __ATOMIC_RELAXED);
    return malloc_usable_size(p);
}

struct ms_allocator fake_lower_allocator(void)
{
    struct ms_allocator a = { NULL, l_malloc, l_calloc, l_realloc, l_free, l_memalign,
                              l_usable };
    return a;
}

static void *a_alloc(void *ctx, size_t size)
{
    struct fake_arenas *f = ctx;
    if (f->fail)
        return NULL;
    char *p = ms_os_map_aligned(size + MS_POOL_SIZE, MS_POOL_SIZE);
    cr_assert(p != NULL);
    if (f->misalign)
        p += ms_os_page_size();
    for (int i = 0; i < FAKE_MAX_ARENAS; i++) {
        if (f->live[i] == NULL) {
            f->live[i] = p;
            break;
        }
    }
    f->nalloc++;
    return p;
}

static void a_free(void *ctx, void *p, size_t size)
{
    struct fake_arenas *f = ctx;
    int found = 0;
    for (int i = 0; i < FAKE_MAX_ARENAS; i++) {
        if (f->live[i] == p) {
            f->live[i] = NULL;
            found = 1;
            break;
        }
    }
    cr_assert(found, "arena %p freed but not allocated", p);
    f->nfree++;
    char *base = (char *)((uintptr_t)p & ~(uintptr_t)MS_POOL_MASK);
    ms_os_unmap(base, size + MS_POOL_SIZE);
}

struct ms_arena_allocator fake_arena_allocator(void)
{
    struct ms_arena_allocator a = { &fake_arenas, a_alloc, a_free };
    return a;
}

void core_setup(size_t arena_size, bool misalign)
{
    fake_arenas.misalign = misalign;
    struct ms_pymalloc_config cfg = {
        .arena_size = arena_size,
        .lower = fake_lower_allocator(),
        .arenas = fake_arena_allocator(),
        .stats_fd = -1,
    };
    cr_assert_eq(ms_pymalloc_init(&cfg), 0);
}

int fake_arenas_live(void)
{
    return fake_arenas.nalloc - fake_arenas.nfree;
}

void stats_text(char *buf, size_t cap)
{
    FILE *f = tmpfile();
    cr_assert(f != NULL);
    ms_pymalloc_print_stats(fileno(f));
    cr_assert(lseek(fileno(f), 0, SEEK_SET) == 0);
    ssize_t n = read(fileno(f), buf, cap - 1);
    cr_assert(n > 0);
    buf[n] = '\0';
    fclose(f);
}
