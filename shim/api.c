/* SPDX-License-Identifier: MIT */
/*
 * memshim's public C API (memshim.h): CPython's memory domains and allocator hooks, the
 * arena allocator, tracemalloc's functions, and the debug hooks' entry points.  The malloc
 * family itself is exported by interpose.c and cxx.c.
 *
 * A domain's allocator is a pointer swapped atomically (NULL means the default: the route
 * of that family, so raw blocks are malloc's blocks); set-up calls are serialised by
 * api_lock.  Not on the hot path of the interposed functions.
 */
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "debug.h"
#include "fmt.h"
#include "pymalloc.h"
#include "snapshot.h"
#include "stack.h"
#include "trace.h"

#define MS_EXPORT __attribute__((visibility("default")))

static const char debug_id_of[3] = {MS_DEBUG_API_RAW, MS_DEBUG_API_MEM, MS_DEBUG_API_OBJ};

/* ---- the default allocators: the route of each family --------------------------------- */

static void *route_malloc(void *ctx, size_t size)
{
    return ms_route_malloc((enum ms_api)(uintptr_t)ctx, size);
}

static void *route_calloc(void *ctx, size_t nelem, size_t elsize)
{
    return ms_route_calloc((enum ms_api)(uintptr_t)ctx, nelem, elsize);
}

static void *route_realloc(void *ctx, void *ptr, size_t size)
{
    return ms_route_realloc((enum ms_api)(uintptr_t)ctx, ptr, size);
}

static void route_free(void *ctx, void *ptr)
{
    ms_route_free((enum ms_api)(uintptr_t)ctx, ptr);
}

static const struct memshim_allocator default_allocator[3] = {
#define MS_DEFAULT(api) {(void *)(uintptr_t)(api), route_malloc, route_calloc, route_realloc, route_free}
    MS_DEFAULT(MS_API_C), MS_DEFAULT(MS_API_MEM), MS_DEFAULT(MS_API_OBJ),
#undef MS_DEFAULT
};

/* Installed allocators live here: set-up calls are few, and a swapped-out struct may still
 * be in use by another thread, so slots are never reused (after the last one, the last
 * slot is overwritten in place). */
#define MS_DOMAIN_SLOTS 64
static struct memshim_allocator installed[MS_DOMAIN_SLOTS];
static unsigned installed_count;

static const struct memshim_allocator *current(enum memshim_domain d)
{
    const struct memshim_allocator *a = __atomic_load_n(&ms_shim.domain[d], __ATOMIC_ACQUIRE);
    return a ? a : &default_allocator[d];
}

static bool valid_domain(enum memshim_domain d)
{
    return (unsigned)d <= MEMSHIM_DOMAIN_OBJ;
}

static void install(enum memshim_domain d, const struct memshim_allocator *a)
{
    unsigned k = installed_count < MS_DOMAIN_SLOTS ? installed_count++ : MS_DOMAIN_SLOTS - 1;
    installed[k] = *a;
    __atomic_store_n(&ms_shim.domain[d], &installed[k], __ATOMIC_RELEASE);
    ms_shim.domain_changed[d] = true;
}

/* ---- the domains' functions ------------------------------------------------------------- */

#define MS_DOMAIN_FUNCTIONS(prefix, d)                                                  \
    MS_EXPORT void *memshim_##prefix##_malloc(size_t size)                             \
    {                                                                                   \
        const struct memshim_allocator *a = current(d);                                 \
        return a->malloc(a->ctx, size);                                                 \
    }                                                                                   \
    MS_EXPORT void *memshim_##prefix##_calloc(size_t nelem, size_t elsize)             \
    {                                                                                   \
        const struct memshim_allocator *a = current(d);                                 \
        return a->calloc(a->ctx, nelem, elsize);                                        \
    }                                                                                   \
    MS_EXPORT void *memshim_##prefix##_realloc(void *ptr, size_t new_size)             \
    {                                                                                   \
        const struct memshim_allocator *a = current(d);                                 \
        return a->realloc(a->ctx, ptr, new_size);                                       \
    }                                                                                   \
    MS_EXPORT void memshim_##prefix##_free(void *ptr)                                  \
    {                                                                                   \
        const struct memshim_allocator *a = current(d);                                 \
        a->free(a->ctx, ptr);                                                           \
    }

MS_DOMAIN_FUNCTIONS(raw, MEMSHIM_DOMAIN_RAW)
MS_DOMAIN_FUNCTIONS(mem, MEMSHIM_DOMAIN_MEM)
MS_DOMAIN_FUNCTIONS(obj, MEMSHIM_DOMAIN_OBJ)

MS_EXPORT void memshim_get_allocator(enum memshim_domain domain,
                                     struct memshim_allocator *allocator)
{
    if (valid_domain(domain) && allocator != NULL)
        *allocator = *current(domain);
}

MS_EXPORT void memshim_set_allocator(enum memshim_domain domain,
                                     const struct memshim_allocator *allocator)
{
    if (!valid_domain(domain) || allocator == NULL)
        return;
    (void)ms_shim_route();
    pthread_mutex_lock(&ms_shim.api_lock);
    install(domain, allocator);
    ms_shim.domain_debug[domain] = false;
    pthread_mutex_unlock(&ms_shim.api_lock);
}

/* ---- debug hooks over a domain's allocator ---------------------------------------------- */

/* A domain allocator as the debug layer's lower allocator (no memalign: the domains have
 * none; no usable_size: the layer then trusts the header it wrote). */
static struct memshim_allocator below_debug[3];

static void *below_malloc(void *ctx, size_t size)
{
    const struct memshim_allocator *a = ctx;
    return a->malloc(a->ctx, size);
}

static void *below_calloc(void *ctx, size_t nelem, size_t elsize)
{
    const struct memshim_allocator *a = ctx;
    return a->calloc(a->ctx, nelem, elsize);
}

static void *below_realloc(void *ctx, void *ptr, size_t size)
{
    const struct memshim_allocator *a = ctx;
    return a->realloc(a->ctx, ptr, size);
}

static void below_free(void *ctx, void *ptr)
{
    const struct memshim_allocator *a = ctx;
    a->free(a->ctx, ptr);
}

/* The debug layer seen as a domain allocator. */
static struct ms_allocator debug_for[3];

static void *debug_malloc(void *ctx, size_t size)
{
    const struct ms_allocator *a = ctx;
    return a->malloc(a->ctx, size);
}

static void *debug_calloc(void *ctx, size_t nelem, size_t elsize)
{
    const struct ms_allocator *a = ctx;
    return a->calloc(a->ctx, nelem, elsize);
}

static void *debug_realloc(void *ctx, void *ptr, size_t size)
{
    const struct ms_allocator *a = ctx;
    return a->realloc(a->ctx, ptr, size);
}

static void debug_free(void *ctx, void *ptr)
{
    const struct ms_allocator *a = ctx;
    a->free(a->ctx, ptr);
}

MS_EXPORT void memshim_setup_debug_hooks(void)
{
    (void)ms_shim_route();
    pthread_mutex_lock(&ms_shim.api_lock);
    for (int d = 0; d < 3; d++) {
        if (ms_shim.domain_debug[d])
            continue;
        /* A default domain in a debug mode has the hooks already. */
        if (!ms_shim.domain_changed[d] && ms_shim.options.debug) {
            ms_shim.domain_debug[d] = true;
            continue;
        }
        below_debug[d] = *current((enum memshim_domain)d);
        struct ms_allocator lower = {
            .ctx = &below_debug[d],
            .malloc = below_malloc,
            .calloc = below_calloc,
            .realloc = below_realloc,
            .free = below_free,
        };
        if (!ms_shim.debug_in_stack) {
            struct ms_debug_config cfg;
            ms_shim_debug_config(&cfg, lower);
            ms_debug_init(&cfg);
            ms_shim.debug_in_stack = true;
        }
        ms_debug_set_lower(debug_id_of[d], &lower);
        debug_for[d] = ms_debug_allocator(debug_id_of[d]);
        struct memshim_allocator hooked = {
            &debug_for[d], debug_malloc, debug_calloc, debug_realloc, debug_free,
        };
        install((enum memshim_domain)d, &hooked);
        ms_shim.domain_debug[d] = true;
    }
    pthread_mutex_unlock(&ms_shim.api_lock);
}

MS_EXPORT int memshim_check_heap(void)
{
    (void)ms_shim_route();
    if (!ms_shim.debug_in_stack)
        return -1;
    ms_debug_check_heap();
    return 0;
}

/* ---- arenas, statistics, names ------------------------------------------------------------ */

MS_EXPORT void memshim_get_arena_allocator(struct memshim_arena_allocator *allocator)
{
    (void)ms_shim_route();
    struct ms_arena_allocator a;
    ms_pymalloc_get_arena_allocator(&a);
    *allocator = (struct memshim_arena_allocator){a.ctx, a.alloc, a.free};
}

MS_EXPORT void memshim_set_arena_allocator(const struct memshim_arena_allocator *allocator)
{
    (void)ms_shim_route();
    struct ms_arena_allocator a = {allocator->ctx, allocator->alloc, allocator->free};
    ms_pymalloc_set_arena_allocator(&a);
}

MS_EXPORT void memshim_print_stats(int fd)
{
    (void)ms_shim_route();
    if (ms_shim.options.base != MS_BASE_MALLOC)
        ms_pymalloc_print_stats(fd);
}

MS_EXPORT const char *memshim_allocator_name(void)
{
    (void)ms_shim_route();
    const struct ms_options *opt = &ms_shim.options;
    for (int d = 0; d < 3; d++)
        if (ms_shim.domain_changed[d])
            return NULL;
    if (ms_shim.trace_in_stack)
        return NULL;
    switch (opt->base) {
    case MS_BASE_MALLOC:
        return opt->debug ? "malloc_debug" : "malloc";
    case MS_BASE_MIMALLOC:
        return opt->debug ? "mimalloc_debug" : "mimalloc";
    case MS_BASE_PYMALLOC:
    default:
        return opt->debug ? "pymalloc_debug" : "pymalloc";
    }
}

/* ---- tracemalloc ------------------------------------------------------------------------------ */

MS_EXPORT int memshim_tracemalloc_start(int nframe)
{
    if (nframe < 1 || nframe > MS_TRACE_MAX_FRAMES)
        return -1;
    (void)ms_shim_route();
    pthread_mutex_lock(&ms_shim.api_lock);
    ms_shim_add_trace_layer();
    int rc = ms_trace_start((unsigned)nframe);
    pthread_mutex_unlock(&ms_shim.api_lock);
    return rc == 0 ? 0 : -1;
}

MS_EXPORT void memshim_tracemalloc_stop(void)
{
    ms_trace_stop();
}

MS_EXPORT int memshim_tracemalloc_is_tracing(void)
{
    return ms_trace_is_tracing();
}

MS_EXPORT int memshim_tracemalloc_track(unsigned int domain, uintptr_t ptr, size_t size)
{
    return ms_trace_track(domain, ptr, size);
}

MS_EXPORT int memshim_tracemalloc_untrack(unsigned int domain, uintptr_t ptr)
{
    return ms_trace_untrack(domain, ptr);
}

MS_EXPORT void memshim_tracemalloc_get_traced_memory(size_t *current_bytes, size_t *peak)
{
    size_t c, p;
    ms_trace_get_traced_memory(&c, &p);
    if (current_bytes)
        *current_bytes = c;
    if (peak)
        *peak = p;
}

MS_EXPORT void memshim_tracemalloc_reset_peak(void)
{
    ms_trace_reset_peak();
}

MS_EXPORT void memshim_tracemalloc_clear_traces(void)
{
    ms_trace_clear_traces();
}

MS_EXPORT int memshim_tracemalloc_take_snapshot(const char *path)
{
    if (path == NULL || !ms_trace_is_tracing())
        return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int rc = ms_snapshot_write(fd, MS_SNAPSHOT_SYMBOLS);
    close(fd);
    return rc == 0 ? 0 : -1;
}

/* ---- the break on a serial number --------------------------------------------------------- */

/* Called by the debug layer when block number MEMSHIM_BREAK_SERIALNO is handed out.  As
 * the Windows CRT's _CrtSetBreakAlloc: stop right there.  Under gdb, `break
 * memshim_break_serialno` stops before the SIGTRAP; without a debugger the SIGTRAP ends the
 * program (status 133), with the address and backtrace printed. */
MS_EXPORT __attribute__((noinline)) void memshim_break_serialno(void *p, uint64_t serial)
{
    struct ms_out o;
    ms_out_init(&o, 2);
    ms_out_str(&o, "memshim: block #");
    ms_out_udec(&o, serial, 0);
    ms_out_str(&o, " (MEMSHIM_BREAK_SERIALNO) handed out at p=");
    ms_out_ptr(&o, p);
    ms_out_char(&o, '\n');
    ms_out_flush(&o);
    if (ms_shim.print_backtrace != NULL) {
        ms_shim.print_backtrace(&o);
        ms_out_flush(&o);
    }
    raise(SIGTRAP);
}
