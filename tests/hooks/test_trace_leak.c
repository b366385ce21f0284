/* SPDX-License-Identifier: MIT */
/*
 * The leak scan: three leaking sites (one of them a cycle) are reported, biggest first;
 * blocks reachable from a global, through another block, from TLS, through an interior
 * pointer, from the stack or from another (blocked) thread's stack or TLS are not; a program
 * without leaks prints nothing.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "leak.h"
#include "trace.h"
#include "test_trace_util.h"

static struct ms_allocator layer;

static void setup(void)
{
    ms_trace_init(&layer, &libc_lower);
    ms_trace_start(1);
}

static void *alloc(size_t n)
{
    void *p = layer.malloc(layer.ctx, n);
    memset(p, 0, n);
    return p;
}

/* Reachable roots. */
static void **global_keep;          /* -> block with a pointer to another block */
static char *interior;              /* points into the middle of a block */
static __thread void *tls_keep;     /* TLS of the main thread */

static int line_one, line_two, line_three;

static __attribute__((noinline)) void leak_one(void)
{
    line_one = __LINE__ + 1;
    void *p = layer.malloc(layer.ctx, 100);
    memset(p, 0, 100);
}

static __attribute__((noinline)) void leak_two(void)
{
    /* A cycle of three 50-byte blocks: they reach each other, nothing reaches them. */
    void **b[3];
    for (int i = 0; i < 3; i++) {
        line_two = __LINE__ + 1;
        b[i] = layer.malloc(layer.ctx, 50);
    }
    for (int i = 0; i < 3; i++)
        b[i][0] = b[(i + 1) % 3];
    memset(b, 0, sizeof b);
}

static __attribute__((noinline)) void leak_three(void)
{
    line_three = __LINE__ + 1;
    char *p = layer.malloc(layer.ctx, 1000);
    memset(p, 0, 1000);
}

static __attribute__((noinline)) void keep_some(void)
{
    global_keep = alloc(64);
    global_keep[0] = alloc(32); /* reachable through a block */
    interior = (char *)alloc(200) + 150;
    tls_keep = alloc(16);
}

/* Overwrites the dead stack below the caller so stale copies of leaked pointers in
 * returned frames do not count as roots (LeakSanitizer's tests do the same). */
static __attribute__((noinline)) void scrub_stack(void)
{
    volatile char junk[32768];
    memset((char *)junk, 0, sizeof junk);
}

Test(trace_leak, three_sites_leak_the_rest_is_reachable, .init = setup)
{
    keep_some();
    leak_one();
    leak_two();
    leak_three();
    void *on_stack = alloc(8); /* reachable from this frame */
    scrub_stack();

    struct ms_out o;
    ms_out_init(&o, -1);
    struct ms_leak_summary sum;
    long leaked = ms_leak_check(&o, &sum, 0);
    char expect[1024];
    snprintf(expect, sizeof expect,
             "memshim: leak of 1000 bytes in 1 block, allocated at (most recent call first):\n"
             "  File \"%s\", line %d, in leak_three\n"
             "\n"
             "memshim: leak of 150 bytes in 3 blocks, allocated at (most recent call first):\n"
             "  File \"%s\", line %d, in leak_two\n"
             "\n"
             "memshim: leak of 100 bytes in 1 block, allocated at (most recent call first):\n"
             "  File \"%s\", line %d, in leak_one\n"
             "\n"
             "memshim: leaked 1250 bytes in 5 blocks from 3 allocation sites; "
             "still reachable: 320 bytes in 5 blocks\n",
             __FILE__, line_three, __FILE__, line_two, __FILE__, line_one);
    cr_assert_str_eq(collected(&o), expect);
    cr_assert_eq(leaked, 5);
    cr_assert_eq(sum.leak_sites, 3);
    cr_assert_eq(sum.reachable_blocks, 5);
    layer.free(layer.ctx, on_stack);
}

Test(trace_leak, no_leak_prints_nothing, .init = setup)
{
    keep_some();
    void *p = alloc(100);
    layer.free(layer.ctx, p);
    scrub_stack();
    struct ms_out o;
    ms_out_init(&o, -1);
    struct ms_leak_summary sum;
    cr_assert_eq(ms_leak_check(&o, &sum, 0), 0);
    cr_assert_eq(o.len, 0);
    cr_assert_eq(sum.reachable_blocks, 4);
    cr_assert_eq(sum.reachable_bytes, 64 + 32 + 200 + 16);
}

Test(trace_leak, not_tracing)
{
    struct ms_out o;
    ms_out_init(&o, -1);
    cr_assert_eq(ms_leak_check(&o, NULL, 0), -1);
    cr_assert_eq(o.len, 0);
}

/* ---- other threads ------------------------------------------------------------------------- */

static int wake[2], ready_pipe[2];

static void *hold_and_block(void *arg)
{
    (void)arg;
    void *held = alloc(77);        /* only on this thread's stack */
    tls_keep = alloc(33);          /* only in this thread's TLS */
    char c = 1;
    write(ready_pipe[1], &c, 1);
    read(wake[0], &c, 1);          /* blocked in a system call while the scan runs */
    layer.free(layer.ctx, held);
    layer.free(layer.ctx, tls_keep);
    return NULL;
}

Test(trace_leak, blocked_threads_stacks_and_tls_are_roots, .init = setup)
{
    cr_assert_eq(pipe(wake), 0);
    cr_assert_eq(pipe(ready_pipe), 0);
    pthread_t t;
    pthread_create(&t, NULL, hold_and_block, NULL);
    char c;
    cr_assert_eq(read(ready_pipe[0], &c, 1), 1);
    usleep(100000); /* let it reach read() */
    scrub_stack();
    struct ms_out o;
    ms_out_init(&o, -1);
    struct ms_leak_summary sum;
    cr_assert_eq(ms_leak_check(&o, &sum, 0), 0, "%s", collected(&o));
    cr_assert_eq(sum.reachable_blocks, 2);
    cr_assert_eq(sum.reachable_bytes, 77 + 33);
    write(wake[1], &c, 1);
    pthread_join(t, NULL);
}
