/* SPDX-License-Identifier: MIT */
/*
 * mimalloc as a struct ms_allocator.  The library is opened RTLD_LOCAL so that its own
 * malloc/free exports never interpose anything; only its mi_* functions are used.  Pointers
 * mimalloc did not hand out (blocks of the C library from before start-up) are recognised by
 * mi_is_in_heap_region and sent to the C library instead of crashing mimalloc.
 *
 * Never: runs dlopen after start-up.  Thread-safe as mimalloc is.
 */
#include "mimalloc.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "libc.h"

static struct {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void (*free)(void *);
    void *(*malloc_aligned)(size_t, size_t);
    size_t (*usable_size)(const void *);
    bool (*is_in_heap_region)(const void *);
} mi;

static bool is_mimalloc_block(const void *p)
{
    return mi.is_in_heap_region(p);
}

bool ms_mimalloc_owns(const void *p)
{
    return mi.is_in_heap_region != NULL && mi.is_in_heap_region(p);
}

/* Blocks mimalloc 2.0 maps outside its regions (measured with Debian's 2.0.9: sizes above
 * 1020 MiB, alignments of 64 MiB and more) are not recognised by mi_is_in_heap_region, so
 * their free went to the C library and aborted ("free(): invalid pointer", found by
 * tests/stress/hostile.c; malloc(1 GiB) + free was enough).  Such requests go to the C
 * library from the start, which maps them directly anyway. */
#define MS_MI_MAX_SIZE ((size_t)512 << 20)
#define MS_MI_MAX_ALIGN ((size_t)16 << 20)

/* mimalloc aligns blocks under 16 bytes to 8 only; every pointer memshim hands out is
 * 16-byte aligned, so small requests are rounded up. */
static size_t at_least_16(size_t size)
{
    return size < 16 ? 16 : size;
}

/* mimalloc 2.0 leaves errno alone when it fails; the shim's default route relies on the
 * bottom allocator setting ENOMEM (allocator.h). */
static void *or_enomem(void *p)
{
    if (p == NULL)
        errno = ENOMEM;
    return p;
}

static void *mi_malloc_ctx(void *ctx, size_t size)
{
    (void)ctx;
    if (size > MS_MI_MAX_SIZE)
        return __libc_malloc(size);
    return or_enomem(mi.malloc(at_least_16(size)));
}

static void *mi_calloc_ctx(void *ctx, size_t nelem, size_t elsize)
{
    (void)ctx;
    size_t total;
    if (__builtin_mul_overflow(nelem, elsize, &total))
        return or_enomem(NULL);
    if (total > MS_MI_MAX_SIZE)
        return __libc_calloc(total, 1);
    return or_enomem(mi.calloc(at_least_16(total), 1));
}

static void *mi_realloc_ctx(void *ctx, void *ptr, size_t new_size)
{
    (void)ctx;
    if (ptr != NULL && !is_mimalloc_block(ptr))
        return __libc_realloc(ptr, new_size ? new_size : 1);
    if (new_size > MS_MI_MAX_SIZE) {
        /* Out of mimalloc's reach: the block moves to the C library. */
        void *q = __libc_malloc(new_size);
        if (q != NULL && ptr != NULL) {
            size_t old = mi.usable_size(ptr);
            memcpy(q, ptr, old < new_size ? old : new_size);
            mi.free(ptr);
        }
        return q;
    }
    /* mi_realloc(p, 0) keeps a block (unlike glibc), as the layers' contract wants. */
    return or_enomem(mi.realloc(ptr, at_least_16(new_size)));
}

static void mi_free_ctx(void *ctx, void *ptr)
{
    (void)ctx;
    if (ptr == NULL)
        return;
    if (is_mimalloc_block(ptr))
        mi.free(ptr);
    else
        __libc_free(ptr);
}

static void *mi_memalign_ctx(void *ctx, size_t alignment, size_t size)
{
    (void)ctx;
    /* Debian's mimalloc 2.0.9 returns misaligned blocks when size is a multiple of an
     * alignment of 256 or more (its fast path assumes such blocks are naturally aligned:
     * mi_malloc_aligned(512, 256) gave ...780).  One more byte takes the exact path. */
    if (alignment > MS_MI_MAX_ALIGN || size > MS_MI_MAX_SIZE)
        return __libc_memalign(alignment, size);
    if (size % alignment == 0 && size < SIZE_MAX)
        size++;
    return or_enomem(mi.malloc_aligned(at_least_16(size), alignment));
}

static size_t mi_usable_size_ctx(void *ctx, void *ptr)
{
    if (ptr == NULL)
        return 0;
    if (!is_mimalloc_block(ptr))
        return ms_libc_usable_size(ctx, ptr);
    return mi.usable_size(ptr);
}

int ms_mimalloc_load(struct ms_allocator *out)
{
    void *h = dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
        return -1;
    mi.malloc = (void *(*)(size_t))dlsym(h, "mi_malloc");
    mi.calloc = (void *(*)(size_t, size_t))dlsym(h, "mi_calloc");
    mi.realloc = (void *(*)(void *, size_t))dlsym(h, "mi_realloc");
    mi.free = (void (*)(void *))dlsym(h, "mi_free");
    mi.malloc_aligned = (void *(*)(size_t, size_t))dlsym(h, "mi_malloc_aligned");
    mi.usable_size = (size_t(*)(const void *))dlsym(h, "mi_usable_size");
    mi.is_in_heap_region = (bool (*)(const void *))dlsym(h, "mi_is_in_heap_region");
    if (!mi.malloc || !mi.calloc || !mi.realloc || !mi.free || !mi.malloc_aligned ||
        !mi.usable_size || !mi.is_in_heap_region)
        return -1;
    *out = (struct ms_allocator){
        .ctx = NULL,
        .malloc = mi_malloc_ctx,
        .calloc = mi_calloc_ctx,
        .realloc = mi_realloc_ctx,
        .free = mi_free_ctx,
        .memalign = mi_memalign_ctx,
        .usable_size = mi_usable_size_ctx,
    };
    return 0;
}
