/* SPDX-License-Identifier: MIT */
/*
 * The tracemalloc text report: _format_size (expected strings produced by CPython 3.11's
 * tracemalloc._format_size) and the "[ Top N ]" report for known sites and sizes.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"
#include "test_trace_util.h"

struct size_case {
    long long size;
    unsigned long long count;
    int sign;
    const char *text;
};

/* python3 -c 'from tracemalloc import _format_size as f; print(f(size / count, sign))' */
static const struct size_case size_cases[] = {
    { 0, 1, 0, "0 B" },
    { 1, 1, 0, "1 B" },
    { 1023, 1, 0, "1023 B" },
    { 1024, 1, 0, "1024 B" },
    { 10239, 1, 0, "10239 B" },
    { 10240, 1, 0, "10.0 KiB" },
    { 102348, 1, 0, "99.9 KiB" },
    { 102349, 1, 0, "100.0 KiB" }, /* rounds up after the "below 100" test, as Python */
    { 102400, 1, 0, "100 KiB" },
    { 218112, 1, 0, "213 KiB" },
    { 10485759, 1, 0, "10240 KiB" },
    { 10485760, 1, 0, "10.0 MiB" },
    { 104857600, 1, 0, "100 MiB" },
    { 1073741824, 1, 0, "1024 MiB" },
    { 107374182400ll, 1, 0, "100 GiB" },
    { 10995116277760ll, 1, 0, "10.0 TiB" },
    { 11258999068426240ll, 1, 0, "10240 TiB" },
    { 117, 2, 0, "58 B" }, /* 58.5: half to even */
    { 119, 2, 0, "60 B" }, /* 59.5 */
    { 3000, 7, 0, "429 B" },
    { 218112, 3744, 0, "58 B" },
    { 102400, 3, 0, "33.3 KiB" },
    { 1, 3, 0, "0 B" },
    { 5000, 1, 1, "+5000 B" },
    { -5000, 1, 1, "-5000 B" },
    { 0, 1, 1, "+0 B" },
    { 4534272, 1, 1, "+4428 KiB" },
    { -4534272, 1, 1, "-4428 KiB" },
};

Test(trace_report, format_size_as_tracemalloc)
{
    for (size_t i = 0; i < sizeof size_cases / sizeof size_cases[0]; i++) {
        const struct size_case *c = &size_cases[i];
        struct ms_out o;
        ms_out_init(&o, -1);
        ms_trace_format_size(&o, c->size, c->count, c->sign);
        cr_expect_str_eq(collected(&o), c->text, "size %lld / %llu", c->size, c->count);
    }
}

/* ---- the report ------------------------------------------------------------------------- */

static struct ms_allocator layer;
static int line_a, line_b, line_c;

static __attribute__((noinline)) void *site_a(void)
{
    line_a = __LINE__ + 1;
    return layer.malloc(layer.ctx, 1000);
}

static __attribute__((noinline)) void *site_b(void)
{
    line_b = __LINE__ + 1;
    return layer.calloc(layer.ctx, 50, 100);
}

static __attribute__((noinline)) void *site_c(int i)
{
    line_c = __LINE__ + 1;
    return layer.malloc(layer.ctx, 10 + (i & 1)); /* 10 and 11 bytes: one line */
}

static void allocate_known_sites(void)
{
    ms_trace_init(&layer, &libc_lower);
    ms_trace_start(1);
    for (int i = 0; i < 3; i++)
        site_a();
    site_b();
    for (int i = 0; i < 10; i++)
        site_c(i);
    /* A peak above the end result: 200 KiB allocated and freed again. */
    layer.free(layer.ctx, layer.malloc(layer.ctx, 200 * 1024));
}

static struct ms_out report;

static const char *report_text(int limit)
{
    ms_out_init(&report, -1);
    ms_trace_report(&report, limit);
    return collected(&report);
}

Test(trace_report, top_sites_by_line)
{
    allocate_known_sites();
    char expect[1024];
    snprintf(expect, sizeof expect,
             "[ Top 10 ]\n"
             "%s:%d: size=5000 B, count=1, average=5000 B\n"
             "%s:%d: size=3000 B, count=3, average=1000 B\n"
             "%s:%d: size=105 B, count=10, average=10 B\n"
             "Current traced memory: 8105 B\n"
             "Peak traced memory: 208 KiB\n",
             __FILE__, line_b, __FILE__, line_a, __FILE__, line_c);
    cr_assert_str_eq(report_text(10), expect);
}

Test(trace_report, limit_puts_the_rest_on_one_line)
{
    allocate_known_sites();
    char expect[1024];
    snprintf(expect, sizeof expect,
             "[ Top 1 ]\n"
             "%s:%d: size=5000 B, count=1, average=5000 B\n"
             "2 other: size=3105 B, count=13, average=239 B\n"
             "Current traced memory: 8105 B\n"
             "Peak traced memory: 208 KiB\n",
             __FILE__, line_b);
    cr_assert_str_eq(report_text(1), expect);
}

Test(trace_report, empty_report)
{
    ms_trace_init(&layer, &libc_lower);
    ms_trace_start(1);
    cr_assert_str_eq(report_text(10), "[ Top 10 ]\nCurrent traced memory: 0 B\nPeak traced memory: 0 B\n");
}
