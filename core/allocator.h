/* SPDX-License-Identifier: MIT */
/*
 * The allocator contract between memshim's layers (CPython's PyMemAllocatorEx shape plus
 * what the C library family needs).  A layer reaches the layer below only through a saved
 * struct ms_allocator in its own ctx; the stack is composed once at start-up by shim/.
 *
 * Semantics every implementation keeps:
 *   malloc(ctx, 0) and calloc(ctx, 0, x) return a distinct non-NULL pointer (or NULL on OOM);
 *   realloc(ctx, NULL, n) is malloc(ctx, n); realloc(ctx, p, 0) resizes to 0 bytes and does
 *   not free; a failed realloc returns NULL and leaves p valid and unchanged;
 *   calloc checks nelem * elsize for overflow;
 *   memalign(ctx, alignment, size): alignment is a power of two >= sizeof(void *);
 *   usable_size(ctx, p) >= the size asked for p, and all of it is writable;
 *   free(ctx, NULL) does nothing.
 * Failure is a NULL return.  errno is the shim's business, with one exception: a bottom
 * allocator (the C library, mimalloc) leaves errno == ENOMEM when it fails, as glibc does,
 * so that the default route can return pymalloc's result without a check of its own.
 * Every pointer returned by any function can be given to free, realloc and usable_size.
 *
 * Never: allocate through the interposed malloc, print, or read the environment.
 */
#ifndef MS_ALLOCATOR_H
#define MS_ALLOCATOR_H

#include <stddef.h>

struct ms_allocator {
    void *ctx;
    void *(*malloc)(void *ctx, size_t size);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *ptr, size_t new_size);
    void (*free)(void *ctx, void *ptr);
    void *(*memalign)(void *ctx, size_t alignment, size_t size);
    size_t (*usable_size)(void *ctx, void *ptr);
};

/* Where pymalloc gets its arenas (CPython's PyObjectArenaAllocator).  size is the arena
 * size.  The memory needs only page alignment (a custom allocator may hand out anything
 * page-aligned; the core then loses the partial first pool, as CPython does) and need not
 * be zero-filled. */
struct ms_arena_allocator {
    void *ctx;
    void *(*alloc)(void *ctx, size_t size);
    void (*free)(void *ctx, void *ptr, size_t size);
};

#endif
