/* SPDX-License-Identifier: MIT */
/*
 * Snapshots: the JSON is valid (checked by python3's json module), carries the totals, one
 * entry per live trace, the tracebacks they use and their frames symbolised to this file's
 * lines; the timeline follows traced memory and time; %p in the path becomes the pid.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "snapshot.h"
#include "test_trace_util.h"
#include "trace.h"

static struct ms_allocator layer;
static int line_a, line_b;

static __attribute__((noinline)) void *site_a(size_t n)
{
    line_a = __LINE__ + 1;
    return layer.malloc(layer.ctx, n);
}

static __attribute__((noinline)) void *site_b(void)
{
    line_b = __LINE__ + 1;
    return layer.calloc(layer.ctx, 4, 25);
}

/* Writes a snapshot to a temporary file and has python3 summarise it. */
static void summarise(const char *script, char *out, size_t size)
{
    char path[] = "/tmp/memshim-snapshot-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ms_snapshot_write(fd, MS_SNAPSHOT_SYMBOLS), 0);
    close(fd);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "python3 -c '%s' %s", script, path);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    cr_assert_eq(pclose(p), 0, "python3 failed on the snapshot: %s", out);
    unlink(path);
}

Test(trace_snapshot, traces_tracebacks_frames_totals)
{
    ms_trace_init(&layer, &libc_lower);
    ms_trace_start(2);
    void *a1 = site_a(1000), *a2 = site_a(1000), *b = site_b();
    void *gone = site_a(5000);
    layer.free(layer.ctx, gone);
    const char *script =
        "import json, sys\n"
        "s = json.load(open(sys.argv[1]))\n"
        "assert s[\"format\"] == \"memshim-snapshot\" and s[\"version\"] == 1\n"
        "frames = {f[\"id\"]: f for f in s[\"frames\"]}\n"
        "tbs = {t[\"id\"]: t for t in s[\"tracebacks\"]}\n"
        "print(s[\"totals\"][\"current\"], s[\"totals\"][\"peak\"], s[\"totals\"][\"traces\"],\n"
        "      s[\"traceback_limit\"], len(s[\"traces\"]), len(tbs))\n"
        "for d, size, tb in sorted(s[\"traces\"]):\n"
        "    t = tbs[tb]\n"
        "    f = [frames[i] for i in t[\"frames\"]]\n"
        "    assert t[\"total\"] > len(f)\n"
        "    print(d, size, f[0][\"function\"], f[0][\"file\"], f[0][\"line\"], f[1][\"function\"])\n";
    char out[2048];
    summarise(script, out, sizeof out);
    char expect[2048];
    snprintf(expect, sizeof expect,
             "2100 7100 3 2 3 3\n" /* a1 and a2: two call sites in this function */
             "0 100 site_b %s %d trace_snapshot_traces_tracebacks_frames_totals_impl\n"
             "0 1000 site_a %s %d trace_snapshot_traces_tracebacks_frames_totals_impl\n"
             "0 1000 site_a %s %d trace_snapshot_traces_tracebacks_frames_totals_impl\n",
             __FILE__, line_b, __FILE__, line_a, __FILE__, line_a);
    cr_assert_str_eq(out, expect);
    layer.free(layer.ctx, a1);
    layer.free(layer.ctx, a2);
    layer.free(layer.ctx, b);
}

Test(trace_snapshot, timeline_follows_traced_memory)
{
    ms_trace_init(&layer, &libc_lower);
    ms_trace_start(1);
    void *big[5];
    for (int i = 0; i < 5; i++)
        big[i] = site_a(600 * 1024); /* a sample every 1 MiB of change */
    for (int i = 0; i < 5; i++)
        layer.free(layer.ctx, big[i]);
    const char *script =
        "import json, sys\n"
        "s = json.load(open(sys.argv[1]))\n"
        "t = s[\"timeline\"]\n"
        "assert all(a[0] <= b[0] for a, b in zip(t, t[1:]))\n"
        "print([c for _, c in t])\n";
    char out[1024];
    summarise(script, out, sizeof out);
    /* Up at 2 and 4 blocks, down at 2 and 0 blocks left, then the sample taken when read. */
    cr_assert_str_eq(out, "[0, 1228800, 2457600, 1228800, 0, 0]\n");
}

Test(trace_snapshot, not_tracing_writes_nothing)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(ms_snapshot_write(fds[1], MS_SNAPSHOT_SYMBOLS), -1);
    close(fds[1]);
    char c;
    cr_assert_eq(read(fds[0], &c, 1), 0);
    close(fds[0]);
}

Test(trace_snapshot, path_pattern)
{
    char out[64];
    cr_assert_eq(ms_snapshot_path(out, sizeof out, "/tmp/snap.%p.json", 4321), 0);
    cr_assert_str_eq(out, "/tmp/snap.4321.json");
    cr_assert_eq(ms_snapshot_path(out, sizeof out, "100%%-%p-%x", 7), 0);
    cr_assert_str_eq(out, "100%-7-%x");
    cr_assert_eq(ms_snapshot_path(out, 8, "/tmp/snapshot", 1), -1);
    cr_assert_eq(ms_snapshot_path(out, 14, "/tmp/snapshot", 1), 0);
}

Test(trace_snapshot, raw_mode_has_modules_and_offsets)
{
    ms_trace_init(&layer, &libc_lower);
    ms_trace_start(1);
    void *a = site_a(10);
    char path[] = "/tmp/memshim-snapshot-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_eq(ms_snapshot_write(fd, MS_SNAPSHOT_RAW), 0);
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import json,sys; f=json.load(open(sys.argv[1]))[\"frames\"][0]; "
             "print(f[\"module\"].endswith(\"/test_trace_snapshot\"), f[\"offset\"] > 0, "
             "f[\"file\"], f[\"line\"])' %s", path);
    FILE *p = popen(cmd, "r");
    char out[256] = "";
    fgets(out, sizeof out, p);
    cr_assert_eq(pclose(p), 0);
    unlink(path);
    cr_assert_str_eq(out, "True True None 0\n");
    layer.free(layer.ctx, a);
}

Test(trace_snapshot, timeline_samples_time_too)
{
    /* Little change in traced memory, but 60 ms of it: samples every 10 ms or so. */
    ms_trace_init(&layer, &libc_lower);
    ms_trace_start(1);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        layer.free(layer.ctx, site_a(100));
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000000000L + now.tv_nsec - start.tv_nsec < 60000000L);
    const char *script =
        "import json, sys\n"
        "t = json.load(open(sys.argv[1]))[\"timeline\"]\n"
        "gaps = [b[0] - a[0] for a, b in zip(t, t[1:-1])]\n"
        "print(len(t) >= 5, all(g >= 5 for g in gaps[1:]), max(c for _, c in t) <= 100)\n";
    char out[256];
    summarise(script, out, sizeof out);
    cr_assert_str_eq(out, "True True True\n");
}
