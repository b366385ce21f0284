/* SPDX-License-Identifier: MIT */
/*
 * The pymalloc core's entry points (pymalloc.h): the allocator struct functions, the
 * instance's configuration, its fork handling, and the one state struct ms_core.
 *
 * Requests of 1..512 bytes go to the calling thread's cache (tcache.h), everything else
 * and every pointer the address map does not know to the lower allocator, as CPython's
 * _PyObject_Malloc/Realloc/Free do.  Hot path: malloc, free, usable_size (no lock, no
 * atomic read-modify-write, no indirect call when the thread cache hits).
 * Never calls malloc, prints (except the stats report) or reads the environment.
 */
#include "pymalloc.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "arenamap.h"
#include "check.h"
#include "core.h"
#include "os.h"
#include "sizeclass.h"
#include "tcache.h"

/* ---- the lower allocator used before ms_pymalloc_init: it has nothing to give ---- */

static void *null_malloc(void *ctx, size_t n) { (void)ctx; (void)n; return NULL; }
static void *null_calloc(void *ctx, size_t a, size_t b) { (void)ctx; (void)a; (void)b; return NULL; }
static void *null_realloc(void *ctx, void *p, size_t n) { (void)ctx; (void)p; (void)n; return NULL; }
static void null_free(void *ctx, void *p) { (void)ctx; (void)p; }
static void *null_memalign(void *ctx, size_t a, size_t n) { (void)ctx; (void)a; (void)n; return NULL; }
static size_t null_usable(void *ctx, void *p) { (void)ctx; (void)p; return 0; }

static const struct ms_allocator null_lower = {
    NULL, null_malloc, null_calloc, null_realloc, null_free, null_memalign, null_usable,
};

/* All zero bytes (glibc's mutex initialiser is zeros), so the 45 KiB struct goes to .bss
 * and costs resident memory only where it is used; .data would be mapped whole. */
struct ms_core ms_core = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .tc.depot = { [0 ... MS_NUM_CLASSES - 1] = { .lock = PTHREAD_MUTEX_INITIALIZER } },
};

/* The lower allocator: null_lower until ms_pymalloc_init (the core's fields start zero). */
static inline const struct ms_allocator *lower(void)
{
    return MS_LIKELY(ms_core.lower.malloc != NULL) ? &ms_core.lower : &null_lower;
}

/* ---- fork ---- */

/* Every lock of the core, in the lock order, so that no thread is inside the core at the
 * moment of fork(). */
static void fork_prepare(void)
{
    ms_core_lock(&ms_core);
    ms_tcache_fork_prepare(&ms_core);
}

static void fork_parent(void)
{
    ms_tcache_fork_parent(&ms_core);
    ms_core_unlock(&ms_core);
}

static void fork_child(void)
{
    /* Only this thread exists; the lock was taken by fork_prepare in this very thread, so
     * nobody was inside the core: the structures are consistent. */
    pthread_mutex_init(&ms_core.lock, NULL);
    ms_tcache_after_fork_child(&ms_core);
}

/* ---- configuration ---- */

static bool lower_complete(const struct ms_allocator *a)
{
    return a->malloc && a->calloc && a->realloc && a->free && a->memalign && a->usable_size;
}

int ms_pymalloc_init(const struct ms_pymalloc_config *cfg)
{
    static bool atfork_registered;
    struct ms_core *c = &ms_core;
    size_t arena_size = cfg->arena_size ? cfg->arena_size : MS_ARENA_SIZE_DEFAULT;
    if (!ms_arena_size_valid(arena_size) || !lower_complete(&cfg->lower))
        return -1;
    ms_core_lock(c);
    if (c->arenas.ncurrent > 0) {
        ms_core_unlock(c);
        return -1;
    }
    c->arenas.arena_size = arena_size;
    c->arenas.allocator = cfg->arenas.alloc ? cfg->arenas : ms_arena_default_allocator;
    c->lower = cfg->lower;
    c->stats = cfg->stats_fd >= 0;
    c->stats_fd = cfg->stats_fd;
    c->arenas.dirty_delay_ns = cfg->dirty_delay_ns;
    bool first = !atfork_registered;
    atfork_registered = true;
    ms_core_unlock(c);
    /* Outside the lock: both may allocate (through the shim, into this core).  Neither
     * failure makes the core unusable, so neither fails init: without the key every
     * thread uses the locked central path; without the handlers (ENOMEM only) a child
     * forked while another thread held the core lock could not allocate. */
    if (first && ms_os_atfork(fork_prepare, fork_parent, fork_child) != 0)
        atfork_registered = false;
    (void)ms_tcache_setup(c);
    return 0;
}

void ms_pymalloc_get_arena_allocator(struct ms_arena_allocator *out)
{
    ms_core_lock(&ms_core);
    *out = ms_core.arenas.allocator.alloc ? ms_core.arenas.allocator
                                          : ms_arena_default_allocator;
    ms_core_unlock(&ms_core);
}

void ms_pymalloc_set_arena_allocator(const struct ms_arena_allocator *a)
{
    /* Arenas already mapped keep the allocator they came from (struct ms_arena). */
    ms_core_lock(&ms_core);
    ms_core.arenas.allocator = a->alloc ? *a : ms_arena_default_allocator;
    ms_core_unlock(&ms_core);
}

/* ---- the allocator functions ---- */

/* The lower allocator failed for size bytes: gives back what the arenas keep waiting for
 * reuse (arena.h: free pools' pages, wholly free arenas), which may be what it lacked
 * (address space under a limit, memory under a cgroup's).  True if anything went back:
 * worth one more try.  Not for sizes beyond all the arenas held: giving them back cannot
 * make those fit, and a program probing with impossible sizes (Python's MemoryError tests)
 * would lose its waiting pools every time.  errno is left as the failure set it. */
static __attribute__((noinline)) bool give_back_waiting(size_t size)
{
    int saved = errno;
    bool any = false;
    ms_core_lock(&ms_core);
    size_t held = ms_core.arenas.ncurrent;   /* arena_size is set once one exists */
    if (held != 0 && size / ms_core.arenas.arena_size < held)
        any = ms_arena_purge_all(&ms_core);
    ms_core_unlock(&ms_core);
    errno = saved;
    return any;
}

static __attribute__((noinline)) void *lower_malloc(size_t size)
{
    /* CPython sends 0 to malloc(1): some C libraries return NULL for malloc(0). */
    void *p = lower()->malloc(lower()->ctx, size ? size : 1);
    if (p == NULL && give_back_waiting(size))
        p = lower()->malloc(lower()->ctx, size ? size : 1);
    return p;
}

void *ms_pymalloc_malloc(void *ctx, size_t size)
{
    (void)ctx;
    if (MS_LIKELY(ms_size_is_small(size))) {
        void *p = ms_tcache_alloc(ms_size_class(size));
        if (MS_LIKELY(p != NULL))
            return p;
        /* No arena to be had: the lower allocator serves it, as in CPython's
         * _PyObject_Malloc.  free/realloc find it foreign and send it back there. */
    }
    return lower_malloc(size);
}

/* (v, p) in this order: p stays in the register it arrived in (a move less on the fast
 * path of ms_pymalloc_free). */
static __attribute__((noinline)) void free_slow(unsigned v, void *p)
{
    if (ms_arenamap_is_class(v)) {
        ms_tcache_free_slow(p, ms_arenamap_class(v));
        return;
    }
    /* v != 0: an address inside a free pool of ours: not a live block (a double or
     * invalid free the debug hooks would report); dropping it is the only safe thing. */
    if (p != NULL && v == 0)
        lower()->free(lower()->ctx, p);
}

void ms_pymalloc_free(void *ctx, void *p)
{
    (void)ctx;
    unsigned v = ms_arenamap_get(p);
    if (MS_LIKELY(ms_tcache_free(p, v)))
        return;
    free_slow(v, p);
}

void *ms_pymalloc_calloc(void *ctx, size_t nelem, size_t elsize)
{
    size_t n;
    if (__builtin_mul_overflow(nelem, elsize, &n))
        return NULL;
    if (ms_size_is_small(n)) {
        void *p = ms_pymalloc_malloc(ctx, n);
        if (p != NULL)
            memset(p, 0, n);
        return p;
    }
    if (n == 0)
        nelem = elsize = 1;
    void *p = lower()->calloc(lower()->ctx, nelem, elsize);
    if (p == NULL && give_back_waiting(n))
        p = lower()->calloc(lower()->ctx, nelem, elsize);
    return p;
}

void *ms_pymalloc_realloc(void *ctx, void *p, size_t n)
{
    if (p == NULL)
        return ms_pymalloc_malloc(ctx, n);
    unsigned v = ms_arenamap_get(p);
    if (!ms_arenamap_is_class(v)) {
        if (v != 0)
            return NULL;            /* inside a free pool: not a live block */
        /* Not ours: the lower allocator keeps it, even when it shrinks below 512. */
        void *q = lower()->realloc(lower()->ctx, p, n);
        if (q == NULL && n != 0 && give_back_waiting(n))
            q = lower()->realloc(lower()->ctx, p, n);
        return q;
    }
    unsigned cls = ms_arenamap_class(v);
    size_t size = ms_class_size(cls);
    size_t copy = size;
    if (n <= size) {
        /* Staying or shrinking: in place if the class is the same or if moving would
         * shave off less than a quarter (CPython's trade of copy cycles for memory). */
        if ((n != 0 && ms_size_class(n) == cls) || 4 * n > 3 * size)
            return p;
        copy = n;
    }
    void *q = ms_pymalloc_malloc(ctx, n);
    if (q == NULL)
        return NULL;                /* p stays valid and unchanged */
    memcpy(q, p, copy);
    ms_pymalloc_free(ctx, p);
    return q;
}

void *ms_pymalloc_memalign(void *ctx, size_t alignment, size_t size)
{
    /* Every block is 16-aligned (pools are pool-aligned, the header and every block
     * size are multiples of 16). */
    if (alignment <= MS_ALIGNMENT && ms_size_is_small(size))
        return ms_pymalloc_malloc(ctx, size);
    void *p = lower()->memalign(lower()->ctx, alignment, size);
    if (p == NULL && give_back_waiting(size))
        p = lower()->memalign(lower()->ctx, alignment, size);
    return p;
}

size_t ms_pymalloc_usable_size(void *ctx, void *p)
{
    (void)ctx;
    unsigned v = ms_arenamap_get(p);
    if (MS_LIKELY(ms_arenamap_is_class(v)))
        return ms_class_size(ms_arenamap_class(v));
    if (p == NULL || v != 0)
        return 0;
    return lower()->usable_size(lower()->ctx, p);
}

bool ms_pymalloc_owns(const void *p)
{
    return ms_arenamap_get(p) != 0;
}

struct ms_allocator ms_pymalloc_allocator(void)
{
    struct ms_allocator a = {
        NULL, ms_pymalloc_malloc, ms_pymalloc_calloc, ms_pymalloc_realloc,
        ms_pymalloc_free, ms_pymalloc_memalign, ms_pymalloc_usable_size,
    };
    return a;
}

void ms_pymalloc_flush_thread_cache(void)
{
    ms_tcache_flush_self(&ms_core);
}

#ifdef MS_EXPENSIVE_CHECKS
static void check_depot(unsigned cls, void *batches, size_t count)
{
    size_t n = 0;
    for (void *b = batches; b != NULL; b = ((void **)b)[1]) {
        unsigned k = 0;
        for (void *x = b; x != NULL; x = *(void **)x) {
            if (ms_arenamap_get(x) != ms_arenamap_value(cls))
                ms_check_fail("transfer list block of another class", __FILE__, __LINE__);
            k++;
        }
        if (k != ms_tcache_batch(cls))
            ms_check_fail("transfer list batch size", __FILE__, __LINE__);
        n++;
    }
    if (n != count || n > ms_tcache_depot_max(cls))
        ms_check_fail("transfer list length", __FILE__, __LINE__);
}

void ms_core_check_invariants(struct ms_core *c)
{
    ms_pools_check(c);
    ms_arenas_check(c);
    ms_tcache_each_depot(c, check_depot);
}
#endif
