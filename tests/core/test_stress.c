/* SPDX-License-Identifier: MIT */
/*
 * Randomised stress: 4 threads trade blocks through a shared slot table (atomic exchange),
 * so blocks are allocated, reallocated and freed by different threads, through every
 * entry point, small and large.  Each block carries a stamp derived from its size that is
 * checked before it is touched again.  With -Dexpensive_checks=true every locked step of
 * the core also walks its whole structure.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "helpers.h"
#include "pymalloc.h"

#define SLOTS 4096
#define THREADS 4
#define OPS 200000

struct rec {
    size_t size;
};

static _Atomic(struct rec *) slot[SLOTS];

static unsigned rnd(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/* Blocks are at least sizeof(struct rec); the stamp fills the rest. */
static void stamp(struct rec *r, size_t size)
{
    r->size = size;
    unsigned char *b = (unsigned char *)r;
    for (size_t i = sizeof *r; i < size; i++)
        b[i] = (unsigned char)(size + i);
}

/* The first n bytes of a block stamped for r->size bytes are intact. */
static void verify_prefix(struct rec *r, size_t n)
{
    unsigned char *b = (unsigned char *)r;
    for (size_t i = sizeof *r; i < n; i++)
        cr_assert_eq(b[i], (unsigned char)(r->size + i), "block %p size %zu byte %zu", (void *)r,
                     r->size, i);
}

static void verify(struct rec *r)
{
    cr_assert_geq(ms_pymalloc_usable_size(NULL, r), r->size);
    verify_prefix(r, r->size);
}

static size_t pick_size(unsigned *s)
{
    unsigned r = rnd(s) % 100;
    if (r < 85)
        return sizeof(struct rec) + rnd(s) % (512 - sizeof(struct rec) + 1);
    return 513 + rnd(s) % 1500;
}

static struct rec *make(unsigned *s)
{
    size_t size = pick_size(s);
    struct rec *r;
    switch (rnd(s) % 4) {
    case 0: r = ms_pymalloc_malloc(NULL, size); break;
    case 1: r = ms_pymalloc_calloc(NULL, 1, size); break;
    case 2: r = ms_pymalloc_memalign(NULL, 16, size); break;
    default: r = ms_pymalloc_realloc(NULL, NULL, size); break;
    }
    cr_assert_not_null(r);
    cr_assert_eq((uintptr_t)r % 16, 0);
    stamp(r, size);
    return r;
}

static void *worker(void *arg)
{
    unsigned s = (unsigned)(uintptr_t)arg * 7919u + 1;
    for (int op = 0; op < OPS; op++) {
        unsigned k = rnd(&s) % SLOTS;
        struct rec *r = atomic_exchange(&slot[k], NULL);
        if (r != NULL) {
            verify(r);
            if (rnd(&s) % 3 == 0) {
                size_t size = pick_size(&s), old = r->size;
                struct rec *q = ms_pymalloc_realloc(NULL, r, size);
                cr_assert_not_null(q);
                cr_assert_eq(q->size, old, "realloc keeps the contents");
                verify_prefix(q, old < size ? old : size);
                stamp(q, size);
                r = q;
            } else {
                ms_pymalloc_free(NULL, r);
                r = NULL;
            }
        } else {
            r = make(&s);
        }
        if (r != NULL) {
            struct rec *old = atomic_exchange(&slot[k], r);
            if (old != NULL) {
                verify(old);
                ms_pymalloc_free(NULL, old);
            }
        }
    }
    return NULL;
}

Test(stress, threads_trade_blocks_through_every_entry_point, .timeout = 120)
{
    core_setup(256 << 10, false);
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    for (int k = 0; k < SLOTS; k++) {
        struct rec *r = atomic_load(&slot[k]);
        if (r != NULL) {
            verify(r);
            ms_pymalloc_free(NULL, r);
        }
    }
    ms_pymalloc_flush_thread_cache();
    cr_assert_eq(fake_arenas_live(), 1, "all small blocks back: only the kept arena");
    cr_assert_eq(fake_lower.nmalloc + fake_lower.ncalloc + fake_lower.nmemalign,
                 fake_lower.nfree, "every large block went back to the lower allocator");
}
