/* SPDX-License-Identifier: MIT */
/*
 * Microbenchmark (built, not a registered test): cycles per malloc+free pair through the
 * trace layer over glibc, by traceback limit and by stack depth, next to the raw capture
 * primitives.  Usage: bench_trace [iterations [row]]   (one thread; run it on a quiet machine).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <x86intrin.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "test_trace_util.h"
#include "trace.h"
#include "unwind.h"

static struct ms_allocator layer;
static long iterations = 200000;
static double tsc_ghz = 1.0;

/* TSC ticks per nanosecond, measured over a short busy wait. */
static void measure_tsc(void)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    uint64_t t0 = __rdtsc();
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < 50000000L);
    double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
    tsc_ghz = (double)(__rdtsc() - t0) / ns;
}

enum what { PLAIN, LAYER, RAW_BT16, RAW_BT256, RAW_STEP16, CAPTURE16 };

#define BATCH 64
static void *volatile sink;

static __attribute__((noinline)) double run(enum what w)
{
    void *blocks[BATCH];
    void *buf[256];
    uintptr_t pcs[64];
    uint32_t total;
    struct timespec c0, c1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    uint64_t t0 = __rdtsc();
    for (long i = 0; i < iterations; i += BATCH) {
        for (int j = 0; j < BATCH; j++) {
            switch (w) {
            case PLAIN: blocks[j] = malloc(16 + j); break;
            case LAYER: blocks[j] = layer.malloc(layer.ctx, 16 + j); break;
            case RAW_BT16: unw_backtrace(buf, 16); break;
            case RAW_BT256: unw_backtrace(buf, 256); break;
            case RAW_STEP16: {
                unw_context_t uc;
                unw_cursor_t c;
                unw_getcontext(&uc);
                unw_init_local(&c, &uc);
                for (int k = 0; k < 16 && unw_step(&c) > 0; k++) {
                    unw_word_t ip;
                    unw_get_reg(&c, UNW_REG_IP, &ip);
                    buf[k] = (void *)ip;
                }
                break;
            }
            case CAPTURE16: ms_unwind_capture(pcs, 16, &total, NULL); break;
            }
        }
        for (int j = 0; j < BATCH; j++) {
            if (w == PLAIN)
                free(blocks[j]);
            else if (w == LAYER)
                layer.free(layer.ctx, blocks[j]);
        }
    }
    uint64_t cycles = __rdtsc() - t0;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    double ns = (double)(c1.tv_sec - c0.tv_sec) * 1e9 + (double)(c1.tv_nsec - c0.tv_nsec);
    /* On a shared machine TSC cycles include time the thread was not running; the
     * thread's CPU time does not.  Report CPU time converted at the TSC rate seen while
     * running (cycles / wall ns would be the same thing when the thread is never preempted). */
    (void)cycles;
    return ns * tsc_ghz / (double)iterations;
}

static __attribute__((noinline)) double at_depth(int depth, enum what w)
{
    if (depth > 0) {
        double r = at_depth(depth - 1, w);
        sink = (void *)&at_depth; /* keeps the frame: no tail call */
        return r;
    }
    return run(w);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        iterations = atol(argv[1]);
    ms_trace_init(&layer, &libc_lower);
    measure_tsc();
    int depths[] = { 5, 30, 100 };
    printf("cycles per operation: thread CPU time x TSC rate %.2f GHz (%ld iterations; depth = "
           "extra frames under the caller)\n", tsc_ghz, iterations);
    printf("%-34s %10s %10s %10s\n", "", "depth 5", "depth 30", "depth 100");
    struct { const char *name; enum what w; int limit; } rows[] = {
        { "glibc malloc+free", PLAIN, 0 },
        { "trace layer, not tracing", LAYER, 0 },
        { "trace layer, 1 frame", LAYER, 1 },
        { "trace layer, 16 frames", LAYER, 16 },
        { "trace layer, 64 frames", LAYER, 64 },
        { "unw_backtrace(16)", RAW_BT16, 0 },
        { "unw_backtrace(256)", RAW_BT256, 0 },
        { "unw_step loop, 16 frames", RAW_STEP16, 0 },
        { "ms_unwind_capture(16)", CAPTURE16, 0 },
    };
    int only = argc > 2 ? atoi(argv[2]) : -1; /* one row only (for perf) */
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        if (only >= 0 && (size_t)only != r)
            continue;
        if (rows[r].limit)
            ms_trace_start((unsigned)rows[r].limit);
        else
            ms_trace_stop();
        printf("%-34s", rows[r].name);
        for (int d = 0; d < 3; d++) {
            at_depth(depths[d], rows[r].w); /* warm the caches */
            printf(" %10.0f", at_depth(depths[d], rows[r].w));
        }
        printf("\n");
    }
    return 0;
}
