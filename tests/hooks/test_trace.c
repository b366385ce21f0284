/* SPDX-License-Identifier: MIT */
/*
 * The trace layer over a fake lower allocator (libc underneath, with counters and injected
 * failures): interning, the address table with many blocks and threads, current/peak,
 * track/untrack codes, failure to record a trace, realloc, start/stop with older blocks,
 * the debug dump's traceback text, and the freed blocks' tracebacks.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "freedtrace.h"
#include "os.h"
#include "symbolize.h"
#include "trace.h"
#include "traceback.h"
#include "test_trace_util.h"

/* ---- the fake lower allocator --------------------------------------------------------- */

static int fail_next_realloc;
static long lower_frees;
static void (*on_lower_free)(void *p);

static void *fake_malloc(void *ctx, size_t n) { (void)ctx; return malloc(n ? n : 1); }
static void *fake_calloc(void *ctx, size_t a, size_t b) { (void)ctx; return calloc(a ? a : 1, b ? b : 1); }
static void *fake_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    if (fail_next_realloc) {
        fail_next_realloc = 0;
        return NULL;
    }
    return realloc(p, n ? n : 1);
}
static void fake_free(void *ctx, void *p)
{
    (void)ctx;
    __atomic_add_fetch(&lower_frees, 1, __ATOMIC_RELAXED);
    if (on_lower_free)
        on_lower_free(p); /* what a debug layer does when it finds the block corrupt */
    free(p);
}
static void *fake_memalign(void *ctx, size_t a, size_t n)
{
    (void)ctx;
    void *p;
    return posix_memalign(&p, a, n) ? NULL : p;
}
static size_t fake_usable(void *ctx, void *p) { (void)ctx; (void)p; return 0; }

static const struct ms_allocator fake = { NULL, fake_malloc, fake_calloc, fake_realloc,
                                          fake_free, fake_memalign, fake_usable };
static struct ms_allocator layer;

static void setup(void)
{
    ms_trace_init(&layer, &fake);
    ms_symbol_load();   /* as the shim does at start-up when tracing */
}

static size_t traced_current(void)
{
    size_t cur, peak;
    ms_trace_get_traced_memory(&cur, &peak);
    return cur;
}

static size_t traced_peak(void)
{
    size_t cur, peak;
    ms_trace_get_traced_memory(&cur, &peak);
    return peak;
}

static const struct ms_traceback *traceback_of(void *p)
{
    size_t size;
    const struct ms_traceback *tb = NULL;
    return ms_trace_get(0, (uintptr_t)p, &size, &tb) == 0 ? tb : NULL;
}

/* ---- interning ----------------------------------------------------------------------- */

Test(traceback, identical_tracebacks_share_one)
{
    uintptr_t a[3] = { 0x1000, 0x2000, 0x3000 }, b[3] = { 0x1000, 0x2000, 0x3000 };
    const struct ms_traceback *ta = ms_traceback_intern(a, 3, 7);
    const struct ms_traceback *tb = ms_traceback_intern(b, 3, 7);
    cr_assert_not_null(ta);
    cr_assert_eq(ta, tb);
    cr_assert_eq(ms_traceback_get(ta->id), ta);
    cr_assert_eq(ta->nframe, 3);
    cr_assert_eq(ta->total, 7);
    cr_assert_eq(ta->frames[2], 0x3000);
    /* Total depth and frame count are part of the identity (as in CPython). */
    cr_assert_neq(ms_traceback_intern(a, 3, 8), ta);
    cr_assert_neq(ms_traceback_intern(a, 2, 7), ta);
    b[1] = 0x2001;
    cr_assert_neq(ms_traceback_intern(b, 3, 7), ta);
    cr_assert_null(ms_traceback_get(0));
    cr_assert_null(ms_traceback_get(1u << 27));
}

Test(traceback, many_distinct_tracebacks)
{
    /* Enough to grow the intern table several times; every one must still be found. */
    enum { N = 100000 };
    static const struct ms_traceback *made[N];
    for (uintptr_t i = 0; i < N; i++) {
        uintptr_t pcs[2] = { 0x400000 + i, 0x500000 };
        made[i] = ms_traceback_intern(pcs, 2, 2);
        cr_assert_not_null(made[i]);
    }
    for (uintptr_t i = 0; i < N; i++) {
        uintptr_t pcs[2] = { 0x400000 + i, 0x500000 };
        cr_assert_eq(ms_traceback_intern(pcs, 2, 2), made[i]);
        cr_assert_eq(ms_traceback_get(made[i]->id), made[i]);
    }
    cr_assert_geq(ms_traceback_count(), N);
}

/* ---- the layer ----------------------------------------------------------------------- */

static __attribute__((noinline)) void *alloc_site(size_t n)
{
    return layer.malloc(layer.ctx, n);
}

Test(trace, blocks_from_one_site_share_a_traceback, .init = setup)
{
    cr_assert_eq(ms_trace_start(16), 0);
    void *p[10];
    for (int i = 0; i < 10; i++)
        p[i] = alloc_site(100);
    void *other = layer.malloc(layer.ctx, 100);
    const struct ms_traceback *tb = traceback_of(p[0]);
    cr_assert_not_null(tb);
    for (int i = 1; i < 10; i++)
        cr_assert_eq(traceback_of(p[i]), tb);
    cr_assert_neq(traceback_of(other), tb);
    cr_assert_leq(tb->nframe, 16);
    cr_assert_geq(tb->total, tb->nframe);
    for (int i = 0; i < 10; i++)
        layer.free(layer.ctx, p[i]);
    layer.free(layer.ctx, other);
}

Test(trace, traceback_limit_is_kept, .init = setup)
{
    ms_trace_start(1);
    void *p = alloc_site(8);
    const struct ms_traceback *tb = traceback_of(p);
    cr_assert_eq(tb->nframe, 1);
    cr_assert_gt(tb->total, 2, "the total depth shows the truncation");
    layer.free(layer.ctx, p);
}

Test(trace, current_peak_reset_clear, .init = setup)
{
    ms_trace_start(4);
    void *a = layer.malloc(layer.ctx, 100);
    void *b = layer.calloc(layer.ctx, 10, 20);
    void *c = layer.memalign(layer.ctx, 64, 300);
    cr_assert_eq(traced_current(), 600);
    cr_assert_eq(traced_peak(), 600);
    layer.free(layer.ctx, c);
    cr_assert_eq(traced_current(), 300);
    cr_assert_eq(traced_peak(), 600);
    ms_trace_reset_peak();
    cr_assert_eq(traced_peak(), 300);
    void *d = layer.malloc(layer.ctx, 50);
    cr_assert_eq(traced_peak(), 350);
    cr_assert_eq(ms_trace_count(), 3);
    ms_trace_clear_traces();
    cr_assert_eq(traced_current(), 0);
    cr_assert_eq(traced_peak(), 0);
    cr_assert_eq(ms_trace_count(), 0);
    cr_assert_null(traceback_of(a));
    /* Blocks whose trace was cleared are freed without a trace, and accounting stays sane. */
    layer.free(layer.ctx, a);
    layer.free(layer.ctx, b);
    layer.free(layer.ctx, d);
    cr_assert_eq(traced_current(), 0);
    cr_assert(ms_trace_is_tracing());
}

Test(trace, realloc_moves_updates_and_survives_failure, .init = setup)
{
    ms_trace_start(4);
    char *p = layer.realloc(layer.ctx, NULL, 10); /* realloc(NULL) is a malloc */
    cr_assert_eq(traced_current(), 10);
    char *q = layer.realloc(layer.ctx, p, 100000);
    cr_assert_not_null(q);
    cr_assert_eq(traced_current(), 100000);
    cr_assert_eq(ms_trace_count(), 1);
    if (q != p)
        cr_assert_null(traceback_of(p));
    size_t size = 0;
    const struct ms_traceback *tb;
    cr_assert_eq(ms_trace_get(0, (uintptr_t)q, &size, &tb), 0);
    cr_assert_eq(size, 100000);

    fail_next_realloc = 1;
    cr_assert_null(layer.realloc(layer.ctx, q, 200000));
    cr_assert_eq(ms_trace_get(0, (uintptr_t)q, &size, &tb), 0, "a failed realloc keeps the trace");
    cr_assert_eq(size, 100000);
    cr_assert_eq(traced_current(), 100000);
    layer.free(layer.ctx, q);
    cr_assert_eq(traced_current(), 0);
    cr_assert_eq(ms_trace_count(), 0);
}

Test(trace, blocks_from_before_start_and_stop, .init = setup)
{
    void *before = layer.malloc(layer.ctx, 64);
    cr_assert_eq(ms_trace_start(8), 0);
    cr_assert_null(traceback_of(before));
    layer.free(layer.ctx, before); /* untracked: simply not found */
    cr_assert_eq(traced_current(), 0);
    void *old = layer.malloc(layer.ctx, 32);
    ms_trace_stop(); /* stop clears, as tracemalloc.stop() */
    cr_assert(!ms_trace_is_tracing());
    cr_assert_eq(ms_trace_count(), 0);
    void *untraced = layer.malloc(layer.ctx, 16);
    cr_assert_eq(ms_trace_start(8), 0);
    cr_assert_null(traceback_of(untraced));
    void *moved = layer.realloc(layer.ctx, untraced, 4096); /* an untraced block gets traced */
    cr_assert_not_null(traceback_of(moved));
    cr_assert_eq(traced_current(), 4096);
    layer.free(layer.ctx, old);
    layer.free(layer.ctx, moved);
    cr_assert_eq(traced_current(), 0);
    cr_assert_eq(ms_trace_start(0), -1);
    cr_assert_eq(ms_trace_start(65536), -1);
    cr_assert_eq(ms_trace_start(65535), 0);
}

Test(trace, track_and_untrack_codes, .init = setup)
{
    char buf[64];
    cr_assert_eq(ms_trace_track(5, (uintptr_t)buf, 64), -2);
    cr_assert_eq(ms_trace_untrack(5, (uintptr_t)buf), -2);
    ms_trace_start(4);
    cr_assert_eq(ms_trace_track(5, (uintptr_t)buf, 64), 0);
    cr_assert_eq(ms_trace_track(0, (uintptr_t)buf, 10), 0);
    size_t size;
    const struct ms_traceback *tb;
    cr_assert_eq(ms_trace_get(5, (uintptr_t)buf, &size, &tb), 0);
    cr_assert_eq(size, 64);
    cr_assert_eq(ms_trace_get(0, (uintptr_t)buf, &size, &tb), 0);
    cr_assert_eq(size, 10, "domains are separate");
    cr_assert_eq(traced_current(), 74);
    cr_assert_eq(ms_trace_untrack(5, (uintptr_t)buf), 0);
    cr_assert_neq(ms_trace_get(5, (uintptr_t)buf, &size, &tb), 0);
    cr_assert_eq(ms_trace_untrack(5, (uintptr_t)buf), 0, "untracking twice is fine");
    cr_assert_eq(ms_trace_untrack(0, (uintptr_t)buf), 0);
    cr_assert_eq(traced_current(), 0);
    /* A block of 4 GiB or more is recorded at its full size (the side table). */
    cr_assert_eq(ms_trace_track(0, 0x10000, (size_t)5 << 30), 0);
    cr_assert_eq(ms_trace_get(0, 0x10000, &size, &tb), 0);
    cr_assert_eq(size, (size_t)5 << 30);
    cr_assert_eq(ms_trace_untrack(0, 0x10000), 0);
    cr_assert_eq(traced_current(), 0);
}

static int map_failures;
static void *failing_map(size_t size)
{
    (void)size;
    map_failures++;
    return NULL;
}

Test(trace, a_trace_that_cannot_be_recorded_fails_the_call, .init = setup)
{
    ms_trace_start(4);
    ms_trace_clear_traces(); /* no table mapped: the next trace needs memory */
    ms_trace_set_mapper(failing_map);
    long frees = lower_frees;
    cr_assert_null(layer.malloc(layer.ctx, 10));
    cr_assert_null(layer.calloc(layer.ctx, 2, 10));
    cr_assert_null(layer.memalign(layer.ctx, 32, 10));
    cr_assert_null(layer.realloc(layer.ctx, NULL, 10));
    cr_assert_eq(lower_frees, frees + 4, "each block was given back to the lower allocator");
    cr_assert_gt(map_failures, 0);
    cr_assert_eq(traced_current(), 0);
    char buf[8];
    cr_assert_eq(ms_trace_track(0, (uintptr_t)buf, 8), -1);
    cr_assert_eq(ms_trace_track(3, (uintptr_t)buf, 8), -1);
    ms_trace_set_mapper(NULL);
    void *p = layer.malloc(layer.ctx, 10);
    cr_assert_not_null(p);
    cr_assert_not_null(traceback_of(p));
    layer.free(layer.ctx, p);
}

Test(trace, traceback_interning_failure_fails_the_call, .init = setup)
{
    ms_trace_start(4);
    ms_traceback_set_mapper(failing_map);
    /* A traceback never seen before (a fresh total depth) needs new memory only when a
     * table or the arena is full; force it by interning until memory is needed. */
    int failed = 0;
    for (uintptr_t i = 0; i < 200000 && !failed; i++) {
        uintptr_t pcs[1] = { 0x900000 + i };
        failed = ms_traceback_intern(pcs, 1, 1) == NULL;
    }
    cr_assert(failed);
    long frees = lower_frees;
    void *p = alloc_site(10); /* its traceback is new: interning it fails */
    cr_assert_null(p);
    cr_assert_eq(lower_frees, frees + 1);
    ms_traceback_set_mapper(NULL);
}

/* ---- many blocks, many threads ------------------------------------------------------------ */

enum { THREADS = 8, PER_THREAD = 50000 };

static void *churn(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    void **blocks = malloc(PER_THREAD * sizeof *blocks);
    for (int i = 0; i < PER_THREAD; i++)
        blocks[i] = layer.malloc(layer.ctx, 1 + (i + id) % 64);
    /* Free the even ones; the odd ones stay live. */
    for (int i = 0; i < PER_THREAD; i += 2)
        layer.free(layer.ctx, blocks[i]);
    return blocks;
}

Test(trace, many_blocks_and_threads, .init = setup, .timeout = 60)
{
    ms_trace_start(8);
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, churn, (void *)i);
    void **blocks[THREADS];
    size_t expect = 0;
    for (uintptr_t i = 0; i < THREADS; i++) {
        pthread_join(t[i], (void **)&blocks[i]);
        for (int j = 1; j < PER_THREAD; j += 2)
            expect += 1 + (j + i) % 64;
    }
    cr_assert_eq(ms_trace_count(), (size_t)THREADS * PER_THREAD / 2);
    cr_assert_eq(traced_current(), expect);
    for (uintptr_t i = 0; i < THREADS; i++)
        for (int j = 1; j < PER_THREAD; j += 2) {
            size_t size;
            const struct ms_traceback *tb;
            cr_assert_eq(ms_trace_get(0, (uintptr_t)blocks[i][j], &size, &tb), 0);
            cr_assert_eq(size, 1 + (j + i) % 64);
            layer.free(layer.ctx, blocks[i][j]);
        }
    cr_assert_eq(ms_trace_count(), 0);
    cr_assert_eq(traced_current(), 0);
    cr_assert_geq(traced_peak(), expect);
    /* Budget: tables stay within 64 bytes per live block at the peak. */
    for (uintptr_t i = 0; i < THREADS; i++)
        free(blocks[i]);
}

Test(trace, memory_budget_per_block, .init = setup)
{
    ms_trace_start(1);
    enum { N = 1 << 20 };
    void **blocks = malloc(N * sizeof *blocks);
    size_t before = ms_trace_get_memory();
    for (int i = 0; i < N; i++)
        blocks[i] = alloc_site(16);
    size_t used = ms_trace_get_memory() - before;
    cr_assert_leq(used, (size_t)N * 64, "%zu bytes for %d blocks", used, N);
    for (int i = 0; i < N; i++)
        layer.free(layer.ctx, blocks[i]);
    free(blocks);
    cr_assert_eq(traced_current(), 0);
}

/* ---- the debug dump's traceback ----------------------------------------------------------- */

static int make_buffer_line, caller_line;

static __attribute__((noinline)) void *make_buffer(size_t n)
{
    make_buffer_line = __LINE__ + 1;
    return layer.malloc(layer.ctx, n);
}

static __attribute__((noinline)) void *caller(void)
{
    caller_line = __LINE__ + 1;
    void *p = make_buffer(10);
    return p;
}

Test(trace, block_traceback_text, .init = setup)
{
    ms_trace_start(2);
    void *p = caller();
    struct ms_out o;
    ms_out_init(&o, -1);
    ms_trace_print_block_traceback(&o, p);
    char expect[512];
    snprintf(expect, sizeof expect,
             "Memory block allocated at (most recent call first):\n"
             "  File \"%s\", line %d, in make_buffer\n"
             "  File \"%s\", line %d, in caller\n"
             "\n",
             __FILE__, make_buffer_line, __FILE__, caller_line);
    cr_assert_str_eq(collected(&o), expect);

    /* A block with no trace prints nothing. */
    char local;
    ms_out_init(&o, -1);
    ms_trace_print_block_traceback(&o, &local);
    cr_assert_eq(o.len, 0);
    layer.free(layer.ctx, p);
}

static struct ms_out during_free;
static void dump_during_free(void *p)
{
    ms_trace_print_block_traceback(&during_free, p);
}

Test(trace, block_traceback_while_being_freed, .init = setup)
{
    /* The debug layer sits below and finds the block corrupt inside free: the trace must
     * still be printable although the layer already took it out of the table. */
    ms_trace_start(1);
    void *p = caller();
    ms_out_init(&during_free, -1);
    on_lower_free = dump_during_free;
    layer.free(layer.ctx, p);
    on_lower_free = NULL;
    char expect[512];
    snprintf(expect, sizeof expect,
             "Memory block allocated at (most recent call first):\n"
             "  File \"%s\", line %d, in make_buffer\n\n",
             __FILE__, make_buffer_line);
    cr_assert_str_eq(collected(&during_free), expect);
}

Test(trace, block_traceback_without_tracing, .init = setup)
{
    struct ms_out o;
    ms_out_init(&o, -1);
    ms_trace_print_block_traceback(&o, &o);
    cr_assert_str_eq(collected(&o),
                     "Enable MEMSHIM_TRACEMALLOC to get the memory block allocation traceback\n\n");
}

/* ---- freed blocks' tracebacks (freedtrace.h) ------------------------------------------- */

static int release_buffer_line;

static __attribute__((noinline)) void release_buffer(void *p)
{
    release_buffer_line = __LINE__ + 1;
    layer.free(layer.ctx, p);
}

Test(trace, freed_block_tracebacks_text, .init = setup)
{
    ms_freedtrace_configure(64);
    ms_trace_start(1);
    void *p = caller();
    release_buffer(p);
    struct ms_out o;
    ms_out_init(&o, -1);
    ms_trace_print_freed_tracebacks(&o, p);
    char expect[512];
    snprintf(expect, sizeof expect,
             "Memory block allocated at (most recent call first):\n"
             "  File \"%s\", line %d, in make_buffer\n\n"
             "Memory block freed at (most recent call first):\n"
             "  File \"%s\", line %d, in release_buffer\n\n",
             __FILE__, make_buffer_line, __FILE__, release_buffer_line);
    cr_assert_str_eq(collected(&o), expect);

    /* An address never freed while tracing. */
    char local;
    ms_out_init(&o, -1);
    ms_trace_print_freed_tracebacks(&o, &local);
    cr_assert_str_eq(collected(&o),
                     "The tracebacks of this freed block were not kept (it was freed before "
                     "tracing started,\nor too long ago).\n\n");
}

Test(trace, freed_ring_keeps_the_newest_records)
{
    ms_freedtrace_configure(4);
    cr_assert(ms_freedtrace_enabled());
    for (uintptr_t a = 1; a <= 5; a++)
        ms_freedtrace_record(a * 16, (uint32_t)a, (uint32_t)(a + 100));
    uint32_t alloc_tb, free_tb;
    cr_assert_not(ms_freedtrace_find(16, &alloc_tb, &free_tb), "the oldest was overwritten");
    cr_assert(ms_freedtrace_find(32, &alloc_tb, &free_tb));
    cr_assert_eq(alloc_tb, 2);
    cr_assert_eq(free_tb, 102);
    /* The same address freed again (a newer block there): the newest record wins. */
    ms_freedtrace_record(48, 7, 8);
    cr_assert(ms_freedtrace_find(48, &alloc_tb, &free_tb));
    cr_assert_eq(alloc_tb, 7);
    cr_assert_eq(free_tb, 8);
}

Test(trace, freed_ring_off_records_nothing)
{
    cr_assert_not(ms_freedtrace_enabled());
    ms_freedtrace_record(16, 1, 2);
    uint32_t alloc_tb, free_tb;
    cr_assert_not(ms_freedtrace_find(16, &alloc_tb, &free_tb));
}

Test(trace, startup_frames_are_hidden, .init = setup)
{
    /* With many frames, the traceback ends at the test's own frames and Criterion's, never
     * in the C library's start-up code. */
    ms_trace_start(100);
    void *p = caller();
    struct ms_out o;
    ms_out_init(&o, -1);
    ms_trace_print_block_traceback(&o, p);
    const char *text = collected(&o);
    cr_assert(strstr(text, "in make_buffer\n") != NULL, "%s", text);
    cr_assert(strstr(text, "__libc_start") == NULL, "%s", text);
    cr_assert(strstr(text, "in _start\n") == NULL, "%s", text);
    layer.free(layer.ctx, p);
}

/* ---- fork ------------------------------------------------------------------------------- */

static volatile int stop_churning;

static void *churn_until_stopped(void *arg)
{
    (void)arg;
    while (!stop_churning)
        layer.free(layer.ctx, alloc_site(32));
    return NULL;
}

Test(trace, fork_while_another_thread_traces, .init = setup, .timeout = 60)
{
    /* The shim registers these with pthread_atfork: a child must never inherit a table lock
     * held by a thread that does not exist in it. */
    pthread_atfork(ms_trace_fork_prepare, ms_trace_fork_parent, ms_trace_fork_child);
    ms_trace_start(4);
    pthread_t t;
    pthread_create(&t, NULL, churn_until_stopped, NULL);
    for (int i = 0; i < 50; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            void *p = alloc_site(64);
            struct ms_out o;
            ms_out_init(&o, -1);
            ms_trace_report(&o, 3);
            layer.free(layer.ctx, p);
            _exit(traceback_of(p) == NULL && ms_trace_is_tracing() ? 0 : 1);
        }
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d: status %d", i, status);
    }
    stop_churning = 1;
    pthread_join(t, NULL);
}
