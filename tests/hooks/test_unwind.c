/* SPDX-License-Identifier: MIT */
/*
 * Stack capture: depth, truncation and total depth; memshim's own frames left out (the
 * trace code is in libmstrace_test.so here, as in libmemshim.so in real use); the fatal
 * path's "Current thread" backtrace.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "symbolize.h"
#include "unwind.h"
#include "unwind_mask.h"

static int captured_n;
static uint32_t captured_total;
static uintptr_t captured[300];

static __attribute__((noinline)) void capture_here(int max)
{
    captured_n = ms_unwind_capture(captured, max, &captured_total, NULL);
}

static __attribute__((noinline)) int recurse(int depth, int max)
{
    if (depth == 0)
        capture_here(max);
    else
        recurse(depth - 1, max);
    return depth; /* not a tail call: every level keeps its frame */
}

static const char *function_of(uintptr_t pc)
{
    struct ms_symbol s;
    ms_symbol_lookup(pc, &s, MS_SYMBOL_NORMAL);
    return s.function ? s.function : "?";
}

Test(unwind, own_module_found)
{
    cr_assert_eq(ms_unwind_init(), 0);
    cr_assert(ms_unwind_is_own((uintptr_t)&ms_unwind_capture));
    cr_assert(ms_unwind_is_own((uintptr_t)&ms_symbol_lookup));
    cr_assert(!ms_unwind_is_own((uintptr_t)&capture_here));
    cr_assert(!ms_unwind_is_own((uintptr_t)&strlen));
}

Test(unwind, own_frames_left_out)
{
    capture_here(8);
    cr_assert_gt(captured_n, 2);
    /* The first frame is the caller of ms_unwind_capture, not the capture itself. */
    cr_assert_str_eq(function_of(captured[0]), "capture_here");
    cr_assert_str_eq(function_of(captured[1]), "unwind_own_frames_left_out_impl");
    for (int i = 0; i < captured_n; i++)
        cr_assert(!ms_unwind_is_own(captured[i]), "frame %d is memshim's", i);
}

Test(unwind, depth_truncation_and_total)
{
    recurse(0, 256);
    uint32_t base = captured_total;
    cr_assert_eq((uint32_t)captured_n, base, "an untruncated capture keeps every frame");

    recurse(10, 4);
    cr_assert_eq(captured_n, 4);
    cr_assert_eq(captured_total, base + 10);
    cr_assert_str_eq(function_of(captured[0]), "capture_here");
    for (int i = 1; i < 4; i++)
        cr_assert_str_eq(function_of(captured[i]), "recurse");

    recurse(10, 1);
    cr_assert_eq(captured_n, 1);
    cr_assert_eq(captured_total, base + 10);
}

Test(unwind, deeper_than_the_buffer)
{
    recurse(0, 16);
    uint32_t base = captured_total;
    recurse(400, 16); /* past the 256-frame stack buffer */
    cr_assert_eq(captured_n, 16);
    cr_assert_eq(captured_total, base + 400, "%u vs %u", captured_total, base + 400);
    recurse(400, 300);
    cr_assert_eq(captured_n, 300);
    cr_assert_eq(captured_total, base + 400, "%u vs %u", captured_total, base + 400);
    for (int i = 1; i < 300; i++)
        cr_assert_str_eq(function_of(captured[i]), "recurse");
}

static int print_line;

static __attribute__((noinline)) void print_here(struct ms_out *o)
{
    print_line = __LINE__ + 1;
    ms_unwind_print_current(o);
}

Test(unwind, print_current_thread)
{
    ms_symbol_load();   /* as the shim does at start-up in the modes that print this */
    struct ms_out o;
    ms_out_init(&o, -1);
    print_here(&o);
    o.buf[o.len < sizeof o.buf ? o.len : sizeof o.buf - 1] = '\0';

    char head[80];
    int n = snprintf(head, sizeof head, "Current thread 0x%016lx (most recent call first):\n",
                     (unsigned long)pthread_self());
    cr_assert_eq(strncmp(o.buf, head, (size_t)n), 0, "got: %s", o.buf);
    /* Then the frames, most recent first, with file and line (this file has debug info). */
    char line[200];
    snprintf(line, sizeof line, "\n  File \"%s\", line %d, in print_here\n", __FILE__, print_line);
    cr_assert(strstr(o.buf, line) != NULL, "no %s in: %s", line, o.buf);
    cr_assert(strstr(o.buf, "in unwind_print_current_thread_impl\n") != NULL, "got: %s", o.buf);
    cr_assert(strstr(o.buf, "ms_unwind") == NULL, "memshim's frames shown: %s", o.buf);
}

/* ---- the stack memo (stackmemo.c): a capture found again must be the one a walk gives -- */

/* Two callers with the same frame, so capture_here runs at the same stack address from
 * either: the memo must tell them apart by the return addresses on the stack. */
static __attribute__((noinline)) int via_left(int max)
{
    capture_here(max);
    return max; /* not a tail call */
}

static __attribute__((noinline)) int via_right(int max)
{
    capture_here(max);
    return max + 1;
}

static int (*volatile callers[2])(int) = { via_left, via_right };

Test(unwind_memo, callers_at_the_same_depth_are_told_apart)
{
    for (int i = 0; i < 200; i++) {
        int which = (i * 7 / 3) % 2;
        callers[which](8);
        cr_assert_gt(captured_n, 3);
        cr_assert_str_eq(function_of(captured[0]), "capture_here");
        cr_assert_str_eq(function_of(captured[1]), which ? "via_right" : "via_left",
                         "round %d", i);
    }
}

/* A capture below a frame whose size changes (alloca) and a chain that changes deeper
 * down, at the same depth each time: every result equals the first walk of that case. */
static __attribute__((noinline)) int below_alloca(size_t n, int max)
{
    volatile char *p = __builtin_alloca(n);
    p[0] = 1;
    capture_here(max);
    return p[0];
}

static __attribute__((noinline)) int deep_left(size_t n, int depth)
{
    return depth ? deep_left(n, depth - 1) + 1 : below_alloca(n, 16);
}

static __attribute__((noinline)) int deep_right(size_t n, int depth)
{
    return depth ? deep_right(n, depth - 1) + 2 : below_alloca(n, 16);
}

Test(unwind_memo, a_found_capture_equals_the_walk)
{
    struct { uintptr_t pcs[16]; int n; uint32_t total; } first[2][3];
    size_t sizes[3] = { 16, 400, 4000 };
    for (int round = 0; round < 50; round++) {
        for (int side = 0; side < 2; side++) {
            for (int s = 0; s < 3; s++) {
                (side ? deep_right : deep_left)(sizes[s], 5);
                if (round == 0) {
                    memcpy(first[side][s].pcs, captured, sizeof first[side][s].pcs);
                    first[side][s].n = captured_n;
                    first[side][s].total = captured_total;
                    continue;
                }
                cr_assert_eq(captured_n, first[side][s].n);
                cr_assert_eq(captured_total, first[side][s].total);
                cr_assert_eq(memcmp(captured, first[side][s].pcs,
                                    (size_t)captured_n * sizeof *captured), 0,
                             "round %d side %d size %zu", round, side, sizes[s]);
                cr_assert_str_eq(function_of(captured[3]), side ? "deep_right" : "deep_left");
            }
        }
    }
}

/* The traced path: the interned traceback attached to a memo entry is given again only to
 * the same chain. */
static const struct ms_traceback *tb_got;

static __attribute__((noinline)) void traceback_here(void)
{
    tb_got = ms_unwind_capture_traceback(8);
}

static __attribute__((noinline)) int tb_via_left(int x)
{
    traceback_here();
    return x;
}

static __attribute__((noinline)) int tb_via_right(int x)
{
    traceback_here();
    return x + 1;
}

static int (*volatile tb_callers[2])(int) = { tb_via_left, tb_via_right };

Test(unwind_memo, an_attached_traceback_goes_to_its_own_chain_only)
{
    const struct ms_traceback *seen[2] = { NULL, NULL };
    for (int i = 0; i < 100; i++) {
        int which = (i * 7 / 3) % 2;
        tb_callers[which](i);
        cr_assert_not_null(tb_got);
        cr_assert_str_eq(function_of(tb_got->frames[1]), which ? "tb_via_right" : "tb_via_left",
                         "round %d", i);
        if (seen[which] == NULL)
            seen[which] = tb_got;
        cr_assert_eq(tb_got, seen[which], "interned: the same chain, the same traceback");
    }
    cr_assert_neq(seen[0], seen[1]);
}

/* Stale copies of return addresses in a frame's locals (earlier captures' buffers, dead
 * frames) must not stand in for the real slots: here the helper's locals hold
 * stale_left's return address while stale_right calls it, from the same call site and
 * at the same depth as stale_left. */
static __attribute__((noinline)) int stale_helper(const uintptr_t *plant, int n)
{
    volatile uintptr_t junk[8];
    for (int i = 0; i < 8; i++)
        junk[i] = i < n ? plant[i] : 0;
    capture_here(8);
    return (int)junk[0];
}

static __attribute__((noinline)) int stale_left(const uintptr_t *plant, int n)
{
    return stale_helper(plant, n) + 1;
}

static __attribute__((noinline)) int stale_right(const uintptr_t *plant, int n)
{
    return stale_helper(plant, n) + 2;
}

static int (*volatile stale_callers[2])(const uintptr_t *, int) = { stale_left, stale_right };

static __attribute__((noinline)) int one_frame_deeper(void)
{
    return stale_left(NULL, 0) + 1;
}

Test(unwind_memo, stale_copies_on_the_stack_do_not_fool_it)
{
    one_frame_deeper();
    cr_assert_str_eq(function_of(captured[2]), "stale_left");
    uintptr_t plant[1] = { captured[2] };
    for (int i = 0; i < 20; i++) {
        int which = i % 2;
        stale_callers[which](plant, 1);
        cr_assert_str_eq(function_of(captured[2]), which ? "stale_right" : "stale_left",
                         "round %d", i);
    }
}

/* --- unwind_mask.h: libunwind's signal masking hoisted out of the stepping walk ------- */

static volatile sig_atomic_t usr2_seen;

static void on_usr2(int sig)
{
    (void)sig;
    usr2_seen++;
}

static __attribute__((noinline)) int step_walk(void)
{
    unw_context_t uc;
    unw_cursor_t c;
    int steps = 0;
    cr_assert_eq(unw_getcontext(&uc), 0);
    cr_assert_eq(unw_init_local(&c, &uc), 0);
    while (unw_step(&c) > 0)
        steps++;
    return steps;
}

static int mask_has(int sig)
{
    sigset_t now;
    sigprocmask(SIG_SETMASK, NULL, &now);
    return sigismember(&now, sig);
}

Test(unwind_mask, libunwinds_import_is_redirected)
{
    cr_assert_eq(ms_unwind_init(), 0);
    cr_assert_eq(ms_unwind_mask_init(), 0, "libunwind's PLT slot for sigprocmask not found");
}

Test(unwind_mask, a_region_blocks_signals_and_restores_the_mask_it_found)
{
    sigset_t before, usr1;
    cr_assert_eq(ms_unwind_init(), 0);
    signal(SIGUSR2, on_usr2);
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, NULL);
    sigprocmask(SIG_SETMASK, NULL, &before);

    unsigned long elided = ms_unwind_mask_elided();
    ms_unwind_mask_begin();
    cr_assert(mask_has(SIGUSR2));
    raise(SIGUSR2);
    /* libunwind blocks and restores around its cache lock at every step: inside the region
     * both are answered without a system call, and the signal stays pending throughout. */
    cr_assert_gt(step_walk(), 2);
    cr_assert(mask_has(SIGUSR2), "a step inside the region reopened the signals");
    cr_assert_eq(usr2_seen, 0);
    ms_unwind_mask_end();
    cr_assert_gt(ms_unwind_mask_elided(), elided, "libunwind's calls were not redirected");

    cr_assert_eq(usr2_seen, 1, "the signal raised inside the region was not delivered after");
    cr_assert(mask_has(SIGUSR1) && !mask_has(SIGUSR2));
    sigset_t after;
    sigprocmask(SIG_SETMASK, NULL, &after);
    for (int sig = 1; sig < NSIG; sig++)
        cr_assert_eq(sigismember(&after, sig), sigismember(&before, sig), "signal %d", sig);
}

Test(unwind_mask, outside_a_region_libunwind_masks_as_before)
{
    cr_assert_eq(ms_unwind_init(), 0);
    signal(SIGUSR2, on_usr2);
    usr2_seen = 0;
    unsigned long elided = ms_unwind_mask_elided();
    cr_assert_gt(step_walk(), 2);
    cr_assert_eq(ms_unwind_mask_elided(), elided);
    cr_assert(!mask_has(SIGUSR2), "libunwind's own block/restore pair left signals blocked");
    raise(SIGUSR2);
    cr_assert_eq(usr2_seen, 1);
}
