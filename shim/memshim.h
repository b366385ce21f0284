/* SPDX-License-Identifier: MIT */
/*
 * memshim.h - CPython's memory C API for C programs, under the memshim_ prefix.
 *
 * Link with `pkg-config --cflags --libs memshim` (the library then replaces malloc as if it
 * were preloaded) or call these from a program run under LD_PRELOAD=libmemshim.so.
 *
 * Domains and families (CPython's PyMem_Raw*, PyMem_*, PyObject_*):
 *   raw  memshim_raw_*  API id 'r': by default the very allocator the interposed malloc
 *                        uses, so memshim_raw_malloc and malloc blocks are interchangeable
 *                        (until an allocator or debug hooks are set on the raw domain);
 *   mem  memshim_mem_*  API id 'm';
 *   obj  memshim_obj_*  API id 'o'.
 * Semantics, as CPython's: a 0-byte request gives a distinct non-NULL pointer;
 * realloc(p, 0) does not free and returns non-NULL; a failed realloc returns NULL and p
 * stays valid; free(NULL) does nothing.  Blocks must go back to the family they came from:
 * in a debug mode (MEMSHIM_MALLOC=debug, or after memshim_setup_debug_hooks) a mismatch such
 * as free(memshim_mem_malloc(16)) is fatal: "bad ID: Allocated using API 'm', verified
 * using API 'r'".
 */
#ifndef MEMSHIM_H
#define MEMSHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum memshim_domain {
    MEMSHIM_DOMAIN_RAW,
    MEMSHIM_DOMAIN_MEM,
    MEMSHIM_DOMAIN_OBJ,
};

void *memshim_raw_malloc(size_t size);
void *memshim_raw_calloc(size_t nelem, size_t elsize);
void *memshim_raw_realloc(void *ptr, size_t new_size);
void memshim_raw_free(void *ptr);

void *memshim_mem_malloc(size_t size);
void *memshim_mem_calloc(size_t nelem, size_t elsize);
void *memshim_mem_realloc(void *ptr, size_t new_size);
void memshim_mem_free(void *ptr);

void *memshim_obj_malloc(size_t size);
void *memshim_obj_calloc(size_t nelem, size_t elsize);
void *memshim_obj_realloc(void *ptr, size_t new_size);
void memshim_obj_free(void *ptr);

/* PyMem_New / PyMem_Resize / PyMem_Del: n elements of TYPE in the mem domain, NULL when
 * n * sizeof(TYPE) overflows.  MEMSHIM_RESIZE assigns the result to p (NULL on failure,
 * as PyMem_Resize: keep a copy of p if you need it after a failure). */
#define MEMSHIM_NEW(TYPE, n)                                                              \
    ((size_t)(n) > SIZE_MAX / sizeof(TYPE) ? (TYPE *)NULL                                 \
                                           : (TYPE *)memshim_mem_malloc((n) * sizeof(TYPE)))
#define MEMSHIM_RESIZE(p, TYPE, n)                                                        \
    ((p) = (size_t)(n) > SIZE_MAX / sizeof(TYPE)                                          \
               ? (TYPE *)NULL                                                             \
               : (TYPE *)memshim_mem_realloc((p), (n) * sizeof(TYPE)))
#define MEMSHIM_DEL(p) memshim_mem_free(p)

/* PyMemAllocatorEx. */
struct memshim_allocator {
    void *ctx;
    void *(*malloc)(void *ctx, size_t size);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *ptr, size_t new_size);
    void (*free)(void *ctx, void *ptr);
};

/* The domain's current allocator (PyMem_GetAllocator). */
void memshim_get_allocator(enum memshim_domain domain, struct memshim_allocator *allocator);
/* Install an allocator for the domain (PyMem_SetAllocator): a hook that wraps the previous
 * one (get it first and call it from yours), or, before any block of that domain exists, a
 * replacement.  Thread-safe, but the caller must not race it with allocations it changes.
 * The interposed malloc is not affected by the raw domain's allocator. */
void memshim_set_allocator(enum memshim_domain domain, const struct memshim_allocator *allocator);
/* Put the debug hooks on top of whatever each domain has now (PyMem_SetupDebugHooks);
 * calling it again does nothing. */
void memshim_setup_debug_hooks(void);

/* PyObjectArenaAllocator: where pymalloc gets its arenas. */
struct memshim_arena_allocator {
    void *ctx;
    void *(*alloc)(void *ctx, size_t size);
    void (*free)(void *ctx, void *ptr, size_t size);
};
void memshim_get_arena_allocator(struct memshim_arena_allocator *allocator);
/* Called under pymalloc's lock: alloc and free must not call malloc. */
void memshim_set_arena_allocator(const struct memshim_arena_allocator *allocator);

/* tracemalloc.  start: 0, or -1 for nframe outside 1..65535 (blocks that exist already are
 * simply untraced).  stop clears every trace.  track: 0, -1 no memory, -2 not tracing;
 * untrack: 0, or -2 not tracing.  take_snapshot writes the JSON snapshot (format in
 * hooks/snapshot.c): 0, or -1 (not tracing, or the file cannot be created; it never
 * follows a symlink at path). */
int memshim_tracemalloc_start(int nframe);
void memshim_tracemalloc_stop(void);
int memshim_tracemalloc_is_tracing(void);
int memshim_tracemalloc_track(unsigned int domain, uintptr_t ptr, size_t size);
int memshim_tracemalloc_untrack(unsigned int domain, uintptr_t ptr);
void memshim_tracemalloc_get_traced_memory(size_t *current, size_t *peak);
void memshim_tracemalloc_reset_peak(void);
void memshim_tracemalloc_clear_traces(void);
int memshim_tracemalloc_take_snapshot(const char *path);

/* "pymalloc", "pymalloc_debug", "malloc", "malloc_debug", "mimalloc", "mimalloc_debug",
 * or NULL for any other stack (a custom allocator or hook, debug hooks set up at run time,
 * tracing on) - as _PyMem_GetCurrentAllocatorName. */
const char *memshim_allocator_name(void);

/* The MEMSHIM_MALLOCSTATS report, to fd (nothing when pymalloc is not in use). */
void memshim_print_stats(int fd);
/* Check every live block now: 0 when all are intact (a damaged one gets the diagnostic and
 * abort()), -1 when the debug hooks are not in use (nothing to check). */
int memshim_check_heap(void);

/* The break-on-serial-number hook (MEMSHIM_BREAK_SERIALNO): `break memshim_break_serialno`
 * in gdb. */
void memshim_break_serialno(void *p, uint64_t serial);

#ifdef __cplusplus
}
#endif

#endif
