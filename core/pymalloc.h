/* SPDX-License-Identifier: MIT */
/*
 * The pymalloc core's face to the layers above: CPython's arena allocator (Objects/
 * obmalloc.c) for requests of 1..512 bytes, made safe without a GIL by per-thread caches in
 * front of a shared core, with everything else sent to a lower allocator (the C library).
 *
 * There is one process-wide instance.  ms_pymalloc_init() configures it once, before the
 * first block; after that every function here is callable from any thread at any time,
 * including in a child after fork() (the core registers its own atfork handlers in init).
 *
 * Never: reads the environment, prints (except the stats report, when asked), or
 * allocates through the interposed malloc.  Hot path: malloc/free/usable_size.
 */
#ifndef MS_PYMALLOC_H
#define MS_PYMALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "allocator.h"

struct ms_pymalloc_config {
    size_t arena_size;                   /* power of two, 256 KiB..64 MiB; 0 means 1 MiB */
    struct ms_allocator lower;           /* 0 and > 512 byte requests, foreign pointers */
    struct ms_arena_allocator arenas;    /* alloc == NULL: the OS default (mmap) */
    int stats_fd;                        /* >= 0: print the stats report there before
                                            every new arena; < 0: never */
    uint64_t dirty_delay_ns;             /* free pools' pages wait this long past the
                                            budget before going back (arena.h); 0: no
                                            wait, CPython's immediate release */
};

/* The shim's dirty_delay_ns. */
#define MS_PYMALLOC_DIRTY_DELAY_NS 1000000000ull

/* Configure the instance.  Returns 0, or -1 if it is already in use (blocks exist). */
int ms_pymalloc_init(const struct ms_pymalloc_config *cfg);

/* The instance as an allocator struct, for composing stacks (debug hooks over pymalloc). */
struct ms_allocator ms_pymalloc_allocator(void);

/* The same entry points, callable directly (ctx is ignored) so that the shim's default
 * mode makes no indirect call.  Semantics as in allocator.h. */
void *ms_pymalloc_malloc(void *ctx, size_t size);
void *ms_pymalloc_calloc(void *ctx, size_t nelem, size_t elsize);
void *ms_pymalloc_realloc(void *ctx, void *ptr, size_t new_size);
void ms_pymalloc_free(void *ctx, void *ptr);
void *ms_pymalloc_memalign(void *ctx, size_t alignment, size_t size);
size_t ms_pymalloc_usable_size(void *ctx, void *ptr);

/* Is p inside a pool of a live arena?  Decided by address only (the arena map), never by
 * reading memory that may not be ours. */
bool ms_pymalloc_owns(const void *p);

/* Replace / read the arena allocator (CPython's PyObject_{Get,Set}ArenaAllocator). */
void ms_pymalloc_get_arena_allocator(struct ms_arena_allocator *out);
void ms_pymalloc_set_arena_allocator(const struct ms_arena_allocator *a);

/* CPython's _PyObject_DebugMallocStats report (SPEC 2.4), written without allocating. */
void ms_pymalloc_print_stats(int fd);

/* Give the calling thread's cached blocks back to the shared core now (thread exit does
 * it by itself; tests and the leak scanner use this). */
void ms_pymalloc_flush_thread_cache(void);

#endif
