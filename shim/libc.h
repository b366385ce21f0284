/* SPDX-License-Identifier: MIT */
/*
 * The C library's allocator as the bottom of memshim's stack, reached through glibc's
 * __libc_* entry points so that no dlsym is needed to bootstrap (dlsym itself allocates).
 */
#ifndef MS_LIBC_H
#define MS_LIBC_H

#include <stdbool.h>
#include <stddef.h>

#include "allocator.h"

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t nelem, size_t elsize);
extern void *__libc_realloc(void *ptr, size_t size);
extern void __libc_free(void *ptr);
extern void *__libc_memalign(size_t alignment, size_t size);

/* Initialise the C library's malloc now (from the constructor: the main thread, before
 * main), so that no two threads can be first to call it. */
void ms_libc_prepare(void);

/* The C library as a struct ms_allocator (allocator.h semantics). */
struct ms_allocator ms_libc_allocator(void);

/* Is the chunk header glibc keeps in front of ptr (a block it handed out for at least
 * need bytes) plausible?  Read without calling glibc, whose own reading of a damaged header
 * (malloc_usable_size, free) can crash. */
bool ms_libc_chunk_plausible(const void *ptr, size_t need);

/* Does free(ptr) give the block's pages straight back to the OS (a chunk glibc mapped on its
 * own, IS_MMAPPED)?  For a block whose header ms_libc_chunk_plausible accepted. */
bool ms_libc_chunk_mapped(const void *ptr);

/* glibc's malloc_usable_size for a block in use that glibc handed out, read from its
 * chunk header alone, so that a damaged header cannot make it crash (0 then). */
size_t ms_libc_usable_size(void *ctx, void *ptr);

#endif
