/* SPDX-License-Identifier: MIT */
/*
 * A stand-in preload for measuring the trace layer on real programs before the shim wires
 * it in (built, not a registered test; not part of memshim): interposes the C library's
 * malloc family and sends it through the trace layer over glibc's __libc_* functions.
 *
 *   LD_PRELOAD=build/tests/hooks/libmstrace_bench_preload.so BENCH_TRACE_FRAMES=16 prog
 *   (BENCH_TRACE_FRAMES unset or 0: the layer without tracing; BENCH_TRACE_REPORT=1:
 *   the top-10 report on stderr at exit)
 *
 * Minimal on purpose: no aligned_alloc/valloc/pvalloc tracing subtleties, no fork handling.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "guard.h"
#include "trace.h"
#include "unwind.h"

#define EXPORT __attribute__((visibility("default")))

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);
size_t malloc_usable_size(void *);

static void *g_malloc(void *c, size_t n) { (void)c; return __libc_malloc(n); }
static void *g_calloc(void *c, size_t a, size_t b) { (void)c; return __libc_calloc(a, b); }
static void *g_realloc(void *c, void *p, size_t n) { (void)c; return __libc_realloc(p, n); }
static void g_free(void *c, void *p) { (void)c; __libc_free(p); }
static void *g_memalign(void *c, size_t a, size_t n) { (void)c; return __libc_memalign(a, n); }
static size_t g_usable(void *c, void *p) { (void)c; return malloc_usable_size(p); }

static const struct ms_allocator glibc = { NULL, g_malloc, g_calloc, g_realloc, g_free,
                                           g_memalign, g_usable };
static struct ms_allocator layer;
static int ready;

static void report_at_exit(void)
{
    struct ms_out o;
    ms_out_init(&o, 2);
    ms_trace_report(&o, 10);
}

__attribute__((constructor)) static void bench_preload_init(void)
{
    ms_guard_enter();
    ms_trace_init(&layer, &glibc);
    ms_unwind_init();
    const char *frames = getenv("BENCH_TRACE_FRAMES");
    int n = frames ? atoi(frames) : 0;
    if (n > 0)
        ms_trace_start((unsigned)n);
    if (getenv("BENCH_TRACE_REPORT"))
        atexit(report_at_exit);
    ms_guard_leave();
    ready = 1;
}

static int direct(void)
{
    return !ready || ms_guard_active();
}

EXPORT void *malloc(size_t n)
{
    return direct() ? __libc_malloc(n) : layer.malloc(layer.ctx, n);
}

EXPORT void free(void *p)
{
    if (direct())
        __libc_free(p);
    else
        layer.free(layer.ctx, p);
}

EXPORT void *calloc(size_t a, size_t b)
{
    return direct() ? __libc_calloc(a, b) : layer.calloc(layer.ctx, a, b);
}

EXPORT void *realloc(void *p, size_t n)
{
    return direct() ? __libc_realloc(p, n) : layer.realloc(layer.ctx, p, n);
}

EXPORT void *memalign(size_t a, size_t n)
{
    return direct() ? __libc_memalign(a, n) : layer.memalign(layer.ctx, a, n);
}

EXPORT int posix_memalign(void **out, size_t a, size_t n)
{
    void *p = memalign(a, n);
    if (p == NULL)
        return ENOMEM;
    *out = p;
    return 0;
}

EXPORT void *aligned_alloc(size_t a, size_t n)
{
    return memalign(a, n);
}
