/* SPDX-License-Identifier: MIT */
/*
 * The debug layer under threads and fork: no false positives on a correct program that
 * allocates on one thread and frees on another, reallocs, checks the heap meanwhile, and
 * forks while the others run; every block accounted for at the end.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "debug.h"
#include "helpers.h"

#define THREADS 4
#define ROUNDS 20000
#define SLOTS 64

/* Blocks handed between threads: a slot is either NULL or owned by whoever swaps it out. */
static _Atomic(unsigned char *) shared[SLOTS];
static atomic_bool stop;

static void fill_check(unsigned char *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(p[i], v);
}

static void *churn(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u;
    const char ids[] = "rmo";
    for (int r = 0; r < ROUNDS; r++) {
        seed = seed * 1103515245u + 12345u;
        char id = ids[(seed >> 8) % 3];
        struct ms_allocator a = ms_debug_allocator(id);
        size_t n = 1 + (seed >> 12) % 300;   /* >= 1: the first byte names the API */
        unsigned char *p;
        switch ((seed >> 20) % 4) {
        case 0: p = a.calloc(a.ctx, 1, n); break;
        case 1: p = a.memalign(a.ctx, 64, n); break;
        default: p = a.malloc(a.ctx, n); break;
        }
        cr_assert_not_null(p);
        /* The first byte names the API, the size sits in the layer's table. */
        if (n > 0) {
            memset(p, id, n);
            if ((seed >> 24) % 3 == 0) {
                p = a.realloc(a.ctx, p, n * 2);
                fill_check(p, n, (unsigned char)id);
                memset(p, id, n * 2);
            }
        }
        unsigned char *old = atomic_exchange(&shared[(seed >> 16) % SLOTS], p);
        if (old != NULL) {
            size_t m = ms_debug_allocator('r').usable_size(NULL, old);
            char oid = m > 0 ? (char)old[0] : 'r';
            struct ms_allocator b = ms_debug_allocator(oid);
            if (m > 0)
                fill_check(old, m, (unsigned char)oid);
            b.free(b.ctx, old);
        }
    }
    return NULL;
}

static void *checker(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop))
        ms_debug_check_heap();
    return NULL;
}

static void run_threads(size_t quarantine)
{
    debug_setup(quarantine);
    pthread_t t[THREADS], c;
    pthread_create(&c, NULL, checker, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    atomic_store(&stop, true);
    pthread_join(c, NULL);
    ms_debug_at_exit();
    for (int i = 0; i < SLOTS; i++) {
        unsigned char *p = atomic_exchange(&shared[i], NULL);
        if (p != NULL) {
            size_t m = ms_debug_allocator('r').usable_size(NULL, p);
            struct ms_allocator b = ms_debug_allocator(m > 0 ? (char)p[0] : 'r');
            b.free(b.ctx, p);
        }
    }
    ms_debug_flush_quarantine();
    struct ms_debug_stats st;
    ms_debug_get_stats(&st);
    cr_assert_eq(st.live_blocks, 0);
    cr_assert_eq(st.quarantine_blocks, 0);
    cr_assert_eq(fake.mallocs + fake.memaligns, fake.frees, "every lower block given back");
}

Test(debug_threads, cross_thread_churn_with_quarantine, .timeout = 120)
{
    run_threads(256 << 10);
}

Test(debug_threads, cross_thread_churn_without_quarantine, .timeout = 120)
{
    run_threads(0);
}

static void *fork_churn(void *arg)
{
    (void)arg;
    struct ms_allocator a = ms_debug_allocator('r');
    while (!atomic_load(&stop))
        a.free(a.ctx, a.malloc(a.ctx, 24));
    return NULL;
}

Test(debug_threads, fork_while_other_threads_allocate, .timeout = 120)
{
    debug_setup(64 << 10);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, fork_churn, NULL);
    struct ms_allocator a = ms_debug_allocator('r');
    for (int k = 0; k < 20; k++) {
        void *keep = a.malloc(a.ctx, 100);
        pid_t pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
            for (int i = 0; i < 1000; i++)
                a.free(a.ctx, a.malloc(a.ctx, 50));
            a.free(a.ctx, keep);
            ms_debug_at_exit();
            _exit(0);
        }
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
        a.free(a.ctx, keep);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    ms_debug_at_exit();
}

/* Two threads free the same block at once: exactly one free wins, the other is reported
 * as a double free (it waits for the winner to queue the block), never a crash or a
 * silent second release. */
static void *block_to_race;
static pthread_barrier_t race_start;

static void *free_racer(void *arg)
{
    (void)arg;
    struct ms_allocator a = ms_debug_allocator('r');
    pthread_barrier_wait(&race_start);
    a.free(a.ctx, block_to_race);
    return NULL;
}

static void racing_double_free(void *arg)
{
    (void)arg;
    struct ms_allocator a = ms_debug_allocator('r');
    block_to_race = a.malloc(a.ctx, 64);
    pthread_barrier_init(&race_start, NULL, 2);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, free_racer, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
}

Test(debug_threads, racing_double_free_is_reported_once, .timeout = 60)
{
    static char text[8192];
    int sig = run_child(1 << 20, racing_double_free, NULL, text, sizeof text);
    cr_assert_eq(sig, SIGABRT, "signal %d, text:\n%s", sig, text);
    const char *fatal = strstr(text, "Fatal memshim error: memshim_debug_free: ");
    cr_assert_not_null(fatal, "%s", text);
    cr_assert_not_null(strstr(fatal, "double free\n"), "%s", text);
    cr_assert_null(strstr(fatal + 1, "Fatal memshim error"), "one report only:\n%s", text);
}

/* With a budget of 1 MiB each thread queues its frees in a buffer of its own before they
 * reach the shared queue (hooks/quarantine.c).  A block waiting there is still quarantined:
 * a write after its free is found at exit and when it leaves, and a second free from
 * another thread is a double free. */
static char *freed_by_other;
static pthread_barrier_t handed, done;

static void *free_and_wait(void *arg)
{
    bool write = arg != NULL;
    struct ms_allocator a = ms_debug_allocator('r');
    freed_by_other = a.malloc(a.ctx, 20);
    a.free(a.ctx, freed_by_other);
    if (write)
        freed_by_other[3] = 'A';
    pthread_barrier_wait(&handed);
    pthread_barrier_wait(&done);      /* alive (its buffer unflushed) until main is done */
    return NULL;
}

enum buffered { AT_EXIT, AFTER_THREAD_EXIT, DOUBLE_FREE };

static void buffered_block(void *arg)
{
    enum buffered what = *(enum buffered *)arg;
    pthread_barrier_init(&handed, NULL, 2);
    pthread_barrier_init(&done, NULL, 2);
    pthread_t t;
    pthread_create(&t, NULL, free_and_wait, what == DOUBLE_FREE ? NULL : (void *)1);
    pthread_barrier_wait(&handed);
    struct ms_allocator a = ms_debug_allocator('r');
    if (what == AT_EXIT)
        ms_debug_at_exit();
    if (what == DOUBLE_FREE)
        a.free(a.ctx, freed_by_other);
    pthread_barrier_wait(&done);
    pthread_join(t, NULL);
    /* The exited thread's buffer joined the shared queue: push the block out of it. */
    for (int i = 0; i < 8000; i++)
        a.free(a.ctx, a.malloc(a.ctx, 200));
}

static void expect_buffered(enum buffered what, const char *fatal)
{
    static char text[8192];
    int sig = run_child(1 << 20, buffered_block, &what, text, sizeof text);
    cr_assert_eq(sig, SIGABRT, "signal %d, text:\n%s", sig, text);
    cr_assert_not_null(strstr(text, fatal), "%s", text);
}

Test(debug_threads, blocks_in_a_threads_buffer_stay_quarantined, .timeout = 60)
{
    expect_buffered(AT_EXIT, "the byte at p+3 is 0x41, not DEADBYTE (0xdd).\n");
    expect_buffered(AT_EXIT, "Fatal memshim error: memshim_debug_at_exit: write to freed memory\n");
    expect_buffered(AFTER_THREAD_EXIT,
                    "Fatal memshim error: memshim_debug_free: write to freed memory\n");
    expect_buffered(DOUBLE_FREE, "    It is in the quarantine: this is its second free.\n");
}
