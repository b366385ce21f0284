/* SPDX-License-Identifier: MIT */
/*
 * Microbenchmark of the core (not a test).  Modes:
 *   bench_core pair  N [glibc]   N malloc+free pairs of 1..512 bytes (thread-cache hits):
 *                                run under callgrind for instructions per pair
 *   bench_core churn N [glibc]   small-object churn: a working set of 4096 slots, each
 *                                step frees one random slot and allocates a random size
 *   bench_core xfree N [glibc]   two threads, each frees the N blocks the other allocated
 *                                (handed over 2000 at a time)
 *   bench_core priv  N [glibc]   two threads churning privately
 * With "glibc" the same loop runs over glibc's malloc/free instead of the core.
 * Prints the wall time in seconds.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pymalloc.h"

static int use_glibc;

static void *l_malloc(void *c, size_t n) { (void)c; return malloc(n); }
static void *l_calloc(void *c, size_t a, size_t b) { (void)c; return calloc(a, b); }
static void *l_realloc(void *c, void *p, size_t n) { (void)c; return realloc(p, n); }
static void l_free(void *c, void *p) { (void)c; free(p); }
static void *l_memalign(void *c, size_t a, size_t n) { (void)c; return aligned_alloc(a, n); }
static size_t l_usable(void *c, void *p) { (void)c; (void)p; return 0; }

static inline void *b_malloc(size_t n) { return use_glibc ? malloc(n) : ms_pymalloc_malloc(NULL, n); }
static inline void b_free(void *p) { if (use_glibc) free(p); else ms_pymalloc_free(NULL, p); }

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static unsigned rnd(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static __attribute__((noinline)) void bench_pair(long n)
{
    for (long i = 0; i < n; i++) {
        void *p = b_malloc((size_t)(i & 511) + 1);
        __asm__ volatile("" : : "r"(p) : "memory");
        b_free(p);
    }
}

static void churn(long n, unsigned seed)
{
    enum { SLOTS = 4096 };
    void **slot = calloc(SLOTS, sizeof *slot);
    for (long i = 0; i < n; i++) {
        unsigned r = rnd(&seed);
        unsigned k = r % SLOTS;
        b_free(slot[k]);
        slot[k] = b_malloc((size_t)(rnd(&seed) % 256) + 1);
        *(char *)slot[k] = 1;
    }
    for (int k = 0; k < SLOTS; k++)
        b_free(slot[k]);
    free(slot);
}

/* Cross-thread frees: each round, each thread allocates XK blocks and hands them to the
 * other thread, which frees them; a barrier per round keeps synchronisation cheap. */
#define XK 2000
static void *xbuf[2][XK];
static pthread_barrier_t xbar;
static long xn;

static void *xfree_thread(void *arg)
{
    int me = (int)(long)arg;
    unsigned seed = 7 + (unsigned)me;
    for (long r = 0; r < xn / XK; r++) {
        for (int i = 0; i < XK; i++) {
            xbuf[me][i] = b_malloc((size_t)(rnd(&seed) % 128) + 1);
            *(char *)xbuf[me][i] = 1;
        }
        pthread_barrier_wait(&xbar);
        for (int i = 0; i < XK; i++)
            b_free(xbuf[1 - me][i]);
        pthread_barrier_wait(&xbar);
    }
    return NULL;
}

static void *priv_thread(void *arg)
{
    churn(xn, 11 + (unsigned)(long)arg);
    return NULL;
}

static void two_threads(void *(*fn)(void *), long n)
{
    pthread_t t[2];
    xn = n;
    pthread_barrier_init(&xbar, NULL, 2);
    for (long i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, fn, (void *)i);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_core pair|churn|xfree|priv N [glibc]\n");
        return 2;
    }
    long n = atol(argv[2]);
    use_glibc = argc > 3 && strcmp(argv[3], "glibc") == 0;
    struct ms_pymalloc_config cfg = {
        .lower = { NULL, l_malloc, l_calloc, l_realloc, l_free, l_memalign, l_usable },
        .stats_fd = -1,
    };
    if (ms_pymalloc_init(&cfg) != 0)
        return 1;
    double t0 = now();
    if (strcmp(argv[1], "pair") == 0)
        bench_pair(n);
    else if (strcmp(argv[1], "churn") == 0)
        churn(n, 1);
    else if (strcmp(argv[1], "xfree") == 0)
        two_threads(xfree_thread, n);
    else if (strcmp(argv[1], "priv") == 0)
        two_threads(priv_thread, n);
    else
        return 2;
    printf("%s %s %.3f\n", argv[1], use_glibc ? "glibc" : "memshim", now() - t0);
    return 0;
}
