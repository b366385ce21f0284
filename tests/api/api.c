/* SPDX-License-Identifier: MIT */
/*
 * The public C API (memshim.h) in one mode (argv[1]: the MEMSHIM_MALLOC value it runs
 * under).  Fatal cases run in a child whose signal and stderr are checked.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../shim/check.h"
#include "memshim.h"

static const char *mode;
static int is_debug;

/* A counting hook over the previous allocator, as in CPython's docs. */
struct counting {
    struct memshim_allocator prev;
    long mallocs, frees;
};

static void *count_malloc(void *ctx, size_t n)
{
    struct counting *c = ctx;
    c->mallocs++;
    return c->prev.malloc(c->prev.ctx, n);
}

static void *count_calloc(void *ctx, size_t a, size_t b)
{
    struct counting *c = ctx;
    c->mallocs++;
    return c->prev.calloc(c->prev.ctx, a, b);
}

static void *count_realloc(void *ctx, void *p, size_t n)
{
    struct counting *c = ctx;
    return c->prev.realloc(c->prev.ctx, p, n);
}

static void count_free(void *ctx, void *p)
{
    struct counting *c = ctx;
    c->frees++;
    c->prev.free(c->prev.ctx, p);
}

struct arena_count {
    struct memshim_arena_allocator prev;
    long allocs, frees;
};

static void *arena_alloc(void *ctx, size_t size)
{
    struct arena_count *a = ctx;
    a->allocs++;
    return a->prev.alloc(a->prev.ctx, size);
}

static void arena_free(void *ctx, void *p, size_t size)
{
    struct arena_count *a = ctx;
    a->frees++;
    a->prev.free(a->prev.ctx, p, size);
}

static void test_domains(void)
{
    void *(*mallocs[3])(size_t) = {memshim_raw_malloc, memshim_mem_malloc, memshim_obj_malloc};
    void *(*reallocs[3])(void *, size_t) = {memshim_raw_realloc, memshim_mem_realloc,
                                            memshim_obj_realloc};
    void *(*callocs[3])(size_t, size_t) = {memshim_raw_calloc, memshim_mem_calloc,
                                           memshim_obj_calloc};
    void (*frees[3])(void *) = {memshim_raw_free, memshim_mem_free, memshim_obj_free};
    for (int d = 0; d < 3; d++) {
        void *a = mallocs[d](0), *b = mallocs[d](0);
        CHECK(a && b && a != b, "domain %d: 0 bytes give distinct non-NULL pointers", d);
        void *c = reallocs[d](a, 0);
        CHECK(c != NULL, "domain %d: realloc(p, 0) returns non-NULL and does not free", d);
        frees[d](c);
        frees[d](b);
        char *p = mallocs[d](100);
        memset(p, 'q', 100);
        void *volatile huge = (void *)(SIZE_MAX / 2);
        void *r = reallocs[d](p, (size_t)huge);
        CHECK(r == NULL && p[99] == 'q', "domain %d: a failed realloc keeps the block", d);
        p = reallocs[d](p, 5000);
        CHECK(p && p[0] == 'q' && p[99] == 'q', "domain %d: realloc keeps contents", d);
        frees[d](p);
        unsigned char *z = callocs[d](10, 10);
        int zero = 1;
        for (int i = 0; i < 100; i++)
            zero &= z[i] == 0;
        CHECK(zero, "domain %d: calloc zeroes", d);
        frees[d](z);
        frees[d](NULL);
    }
    /* Raw blocks are malloc's blocks. */
    free(memshim_raw_malloc(10));
    memshim_raw_free(malloc(10));
    int *v = MEMSHIM_NEW(int, 10);
    CHECK(v != NULL, "MEMSHIM_NEW");
    v[9] = 7;
    MEMSHIM_RESIZE(v, int, 1000);
    CHECK(v && v[9] == 7, "MEMSHIM_RESIZE keeps contents");
    int *w = MEMSHIM_NEW(int, SIZE_MAX / 2);
    CHECK(w == NULL, "MEMSHIM_NEW overflow gives NULL");
    MEMSHIM_DEL(v);
}

static void test_name(void)
{
    const char *name = memshim_allocator_name();
    const char *want = strcmp(mode, "debug") == 0 ? "pymalloc_debug" : mode;
    CHECK(name && strcmp(name, want) == 0, "allocator name %s, want %s", name ? name : "NULL", want);
}

static void test_hook(void)
{
    static struct counting c;
    memshim_get_allocator(MEMSHIM_DOMAIN_MEM, &c.prev);
    struct memshim_allocator hook = {&c, count_malloc, count_calloc, count_realloc, count_free};
    memshim_set_allocator(MEMSHIM_DOMAIN_MEM, &hook);
    void *p = memshim_mem_malloc(20), *q = memshim_mem_calloc(2, 2);
    memshim_mem_free(p);
    memshim_mem_free(q);
    CHECK(c.mallocs == 2 && c.frees == 2, "counting hook saw %ld mallocs %ld frees", c.mallocs, c.frees);
    struct memshim_allocator now;
    memshim_get_allocator(MEMSHIM_DOMAIN_MEM, &now);
    CHECK(now.ctx == &c && now.malloc == count_malloc, "get returns the hook");
    CHECK(memshim_allocator_name() == NULL, "a custom hook makes the name NULL");
    memshim_set_allocator(MEMSHIM_DOMAIN_MEM, &c.prev);
}

static void test_arenas(void)
{
    static struct arena_count a;
    memshim_get_arena_allocator(&a.prev);
    CHECK(a.prev.alloc != NULL, "the default arena allocator");
    struct memshim_arena_allocator hook = {&a, arena_alloc, arena_free};
    memshim_set_arena_allocator(&hook);
    /* 96 MiB of blocks: freed pools wait for reuse up to 64 MiB (core/arena.h), past that
     * whole arenas go back at once. */
    enum { N = 1500000 };
    static void *blocks[N];
    for (int i = 0; i < N; i++)
        blocks[i] = malloc(64);
    for (int i = 0; i < N; i++)
        free(blocks[i]);
    memshim_set_arena_allocator(&a.prev);
    if (strstr(mode, "malloc") == mode) /* malloc, malloc_debug: no pymalloc */
        CHECK(a.allocs == 0, "no arenas without pymalloc (%ld)", a.allocs);
    else
        CHECK(a.allocs > 0 && a.frees > 0, "arenas came (%ld) and went (%ld)", a.allocs, a.frees);
}

static void test_tracemalloc(void)
{
    CHECK(memshim_tracemalloc_is_tracing() == 0, "not tracing at first");
    CHECK(memshim_tracemalloc_track(0, 0x1000, 10) == -2, "track when not tracing: -2");
    CHECK(memshim_tracemalloc_untrack(0, 0x1000) == -2, "untrack when not tracing: -2");
    CHECK(memshim_tracemalloc_start(0) == -1, "start(0): -1");
    CHECK(memshim_tracemalloc_start(70000) == -1, "start(70000): -1");
    void *before = malloc(300); /* made before tracing: freed later without a trace */
    CHECK(memshim_tracemalloc_start(16) == 0, "start(16)");
    CHECK(memshim_tracemalloc_is_tracing() == 1, "tracing");
    size_t cur, peak;
    memshim_tracemalloc_get_traced_memory(&cur, &peak);
    size_t base = cur;
    char *volatile p = malloc(100000);   /* volatile: the compiler may not elide it */
    memshim_tracemalloc_get_traced_memory(&cur, &peak);
    CHECK(cur >= base + 100000 && peak >= cur, "current %zu peak %zu after 100000", cur, peak);
    free(p);
    memshim_tracemalloc_get_traced_memory(&cur, &peak);
    CHECK(cur < base + 100000 && peak >= base + 100000, "freed: current %zu peak %zu", cur, peak);
    memshim_tracemalloc_reset_peak();
    memshim_tracemalloc_get_traced_memory(&cur, &peak);
    CHECK(peak == cur, "reset_peak");
    CHECK(memshim_tracemalloc_track(7, 0x5000, 1234) == 0, "track");
    size_t after;
    memshim_tracemalloc_get_traced_memory(&after, &peak);
    CHECK(after == cur + 1234, "tracked bytes count (%zu vs %zu)", after, cur);
    CHECK(memshim_tracemalloc_untrack(7, 0x5000) == 0, "untrack");
    free(before);
    char path[] = "/tmp/memshim-api-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    void *kept = malloc(4321);
    CHECK(memshim_tracemalloc_take_snapshot(path) == 0, "take_snapshot");
    char buf[64] = {0};
    fd = open(path, O_RDONLY);
    CHECK(fd >= 0 && read(fd, buf, 40) > 0 && strstr(buf, "memshim-snapshot"), "snapshot file: %s", buf);
    close(fd);
    unlink(path);
    free(kept);
    memshim_tracemalloc_clear_traces();
    memshim_tracemalloc_get_traced_memory(&cur, &peak);
    CHECK(cur == 0, "clear_traces: current %zu", cur);
    memshim_tracemalloc_stop();
    CHECK(memshim_tracemalloc_is_tracing() == 0, "stopped");
    CHECK(memshim_tracemalloc_take_snapshot("/tmp/x") == -1, "no snapshot when not tracing");
    CHECK(memshim_allocator_name() == NULL, "tracing makes the name NULL");
}

/* Runs fn in a child; returns its signal (0 if it exited) and its stderr in err. */
static int in_child(void (*fn)(void), char *err, size_t size)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        fn();
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < size && (r = read(fds[0], err + n, size - 1 - n)) > 0)
        n += (size_t)r;
    err[n] = 0;
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

static void mismatch(void)
{
    free(memshim_mem_malloc(16));
}

static struct counting custom;
static void custom_overflow(void)
{
    /* A custom mem allocator (over the C library's malloc through the raw domain), debug
     * hooks on top, then an overflow. */
    memshim_get_allocator(MEMSHIM_DOMAIN_RAW, &custom.prev);
    struct memshim_allocator hook = {&custom, count_malloc, count_calloc, count_realloc, count_free};
    memshim_set_allocator(MEMSHIM_DOMAIN_MEM, &hook);
    memshim_setup_debug_hooks();
    memshim_setup_debug_hooks(); /* idempotent */
    char *p = memshim_mem_malloc(10);
    if (custom.mallocs != 1)
        _exit(3);
    if (memshim_check_heap() != 0)
        _exit(4);
    p[10] = 'x';
    memshim_mem_free(p);
}

int main(int argc, char **argv)
{
    mode = argc > 1 ? argv[1] : "pymalloc";
    is_debug = strstr(mode, "debug") != NULL;
    test_domains();
    test_name();
    test_hook();
    test_arenas();
    CHECK(memshim_check_heap() == (is_debug ? 0 : -1), "check_heap in mode %s", mode);

    char err[8192];
    int sig = in_child(mismatch, err, sizeof err);
    if (is_debug) {
        CHECK(sig == SIGABRT, "mem/free mismatch: signal %d", sig);
        CHECK(strstr(err, "bad ID: Allocated using API 'm', verified using API 'r'") != NULL,
              "mismatch text: %s", err);
    } else {
        CHECK(sig == 0, "without debug hooks the mismatch is not checked (signal %d)", sig);
    }
    sig = in_child(custom_overflow, err, sizeof err);
    CHECK(sig == SIGABRT, "custom allocator + debug hooks: signal %d", sig);
    CHECK(strstr(err, "Debug memory block at address p=0x") && strstr(err, "API 'm'") &&
          strstr(err, "Fatal memshim error: memshim_debug_free: bad trailing pad byte"),
          "custom allocator + debug hooks text: %s", err);

    test_tracemalloc(); /* last: it changes the stack for the rest of the run */
    return check_summary();
}
