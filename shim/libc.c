/* SPDX-License-Identifier: MIT */
/*
 * The C library as an allocator struct.  glibc's realloc(p, 0) frees p; the layers' contract
 * says it must not, so a 0-byte resize asks glibc for 1 byte instead.
 *
 * Never: calls the interposed malloc family (only __libc_*).  Thread-safe as glibc is.
 */
#include "libc.h"

#include <malloc.h>

/* glibc initialises its malloc on the first call, lazily and without a lock.  Under us a
 * program's first call to it may come from two threads at once (the main thread made only
 * small requests): both then took the main arena with a single attachment, and the second
 * to exit aborted in __malloc_arena_thread_freeres.  malloc_trim initialises it without
 * allocating; called from the constructor, in the main thread before main. */
void ms_libc_prepare(void)
{
    (void)malloc_trim(0);
}

static void *libc_malloc(void *ctx, size_t size)
{
    (void)ctx;
    return __libc_malloc(size);
}

static void *libc_calloc(void *ctx, size_t nelem, size_t elsize)
{
    (void)ctx;
    return __libc_calloc(nelem, elsize);
}

static void *libc_realloc(void *ctx, void *ptr, size_t new_size)
{
    (void)ctx;
    return __libc_realloc(ptr, new_size ? new_size : 1);
}

static void libc_free(void *ctx, void *ptr)
{
    (void)ctx;
    __libc_free(ptr);
}

static void *libc_memalign(void *ctx, size_t alignment, size_t size)
{
    (void)ctx;
    return __libc_memalign(alignment, size);
}

/*
 * glibc's chunk header (malloc/malloc.c): the word in front of ptr is the chunk's size,
 * a multiple of 16, with flags in its three low bits (IS_MMAPPED = 2).  A chunk in use from
 * the heap holds need + 8 bytes rounded up, plus less than 32 bytes of memalign's slack; a
 * mapped one its request plus the header, rounded to a page (a huge page with
 * glibc.malloc.hugetlb=2), minus memalign's lead.  A write
 * past the end of the block in front lands in this word first.  The bounds are loose on
 * purpose: they must never reject a sound chunk; what they catch is an overflow's bytes.
 */
bool ms_libc_chunk_plausible(const void *ptr, size_t need)
{
    size_t word = ((const size_t *)ptr)[-1];
    size_t chunk = word & ~(size_t)7;
    if (chunk & 15)
        return false;
    if (word & 2)
        return chunk >= need + 16 && chunk - need <= need + ((size_t)64 << 20);
    return chunk >= need + 8 && chunk - need <= 64;
}

bool ms_libc_chunk_mapped(const void *ptr)
{
    return (((const size_t *)ptr)[-1] & 2) != 0;
}

/* What glibc's malloc_usable_size answers for a block in use (its musable: the chunk
 * size less the header, 16 bytes for a mapped chunk, 8 for one from a heap), read from the
 * size word alone.  glibc's own also reads the next chunk's header to see that the block
 * is in use, at an offset that a damaged size word makes arbitrary: the debug layer's
 * clamp of a corrupted block then crashed in it.  A word that cannot be a chunk's gives 0. */
size_t ms_libc_usable_size(void *ctx, void *ptr)
{
    (void)ctx;
    if (ptr == NULL)
        return 0;
    size_t word = ((const size_t *)ptr)[-1];
    size_t chunk = word & ~(size_t)7;
    if ((chunk & 15) || chunk < 32 || chunk >= ((size_t)1 << 47))
        return 0;
    return chunk - (word & 2 ? 16 : 8);
}

struct ms_allocator ms_libc_allocator(void)
{
    return (struct ms_allocator){
        .ctx = NULL,
        .malloc = libc_malloc,
        .calloc = libc_calloc,
        .realloc = libc_realloc,
        .free = libc_free,
        .memalign = libc_memalign,
        .usable_size = ms_libc_usable_size,
    };
}
