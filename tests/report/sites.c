/* SPDX-License-Identifier: MIT */
/*
 * Allocation sites with known sizes for memshim-report's tests (built -g -O0, run under
 * LD_PRELOAD with MEMSHIM_TRACEMALLOC=16 MEMSHIM_SNAPSHOT=...).  Each site's line carries a
 * "site:" comment so the test finds its line number in this file.  argv[1] = "1" or "2":
 * the second run keeps more, for --compare; "3" is the first run, then dies of SIGSEGV (the
 * snapshot is then written from the signal handler, frames unsymbolised).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static void *keep[4096];
static int nkeep;

static __attribute__((noinline)) char *make_buffer(size_t n)
{
    char *p = malloc(n); /* site: make_buffer */
    memset(p, 1, n);
    return p;
}

static __attribute__((noinline)) void grow_table(int n)
{
    for (int i = 0; i < n; i++)
        keep[nkeep++] = calloc(1, 1000); /* site: grow_table */
}

static __attribute__((noinline)) void *recurse(int depth)
{
    if (depth == 0)
        return malloc(64); /* site: recurse */
    void *p = recurse(depth - 1);
    __asm__ volatile("" ::: "memory"); /* not a tail call: every level stays on the stack */
    return p;
}

int main(int argc, char **argv)
{
    int run = argc > 1 ? atoi(argv[1]) : 1;
    int crash = run == 3;
    if (crash)
        run = 1;
    for (int i = 0; i < 3 * run; i++)
        keep[nkeep++] = make_buffer(4096); /* site: main_small */
    grow_table(100 * run);
    keep[nkeep++] = make_buffer(100000); /* site: main_big */
    keep[nkeep++] = recurse(30);
    free(make_buffer(777)); /* freed: never in a snapshot */
    if (crash)
        raise(SIGSEGV);
    return 0;
}
