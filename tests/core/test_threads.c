/* SPDX-License-Identifier: MIT */
/* Threads: cross-thread frees, thread exit, transfer lists, fork from a threaded parent. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core.h"
#include "helpers.h"
#include "pymalloc.h"
#include "tcache.h"

#define NTHREADS 8
#define PER_THREAD 20000

static void *slots[NTHREADS][PER_THREAD];
static pthread_barrier_t barrier;

static size_t size_of(int t, int i)
{
    return (size_t)((t * 7919 + i * 104729) % 512) + 1;
}

static void stamp(void *p, size_t n, uint32_t v)
{
    unsigned char *c = p;
    c[n - 1] = (unsigned char)(v >> 8);
    c[0] = (unsigned char)v;
}

static int stamped(void *p, size_t n, uint32_t v)
{
    unsigned char *c = p;
    return c[0] == (unsigned char)v && (n == 1 || c[n - 1] == (unsigned char)(v >> 8));
}

static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        size_t n = size_of(t, i);
        slots[t][i] = ms_pymalloc_malloc(NULL, n);
        cr_assert_not_null(slots[t][i]);
        stamp(slots[t][i], n, (uint32_t)(t * PER_THREAD + i));
    }
    pthread_barrier_wait(&barrier);
    /* Free the next thread's blocks (allocated elsewhere), all but the last quarter. */
    int o = (t + 1) % NTHREADS;
    for (int i = 0; i < PER_THREAD * 3 / 4; i++) {
        size_t n = size_of(o, i);
        cr_assert(stamped(slots[o][i], n, (uint32_t)(o * PER_THREAD + i)));
        ms_pymalloc_free(NULL, slots[o][i]);
    }
    /* Churn privately a little, then exit with a warm cache. */
    for (int r = 0; r < 1000; r++) {
        void *p = ms_pymalloc_malloc(NULL, (size_t)(r % 512) + 1);
        ms_pymalloc_free(NULL, p);
    }
    return NULL;
}

Test(threads, cross_thread_frees_and_exit_give_everything_back)
{
    core_setup(0, false);
    pthread_barrier_init(&barrier, NULL, NTHREADS);
    pthread_t th[NTHREADS];
    for (int t = 0; t < NTHREADS; t++)
        cr_assert_eq(pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t), 0);
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    int peak = fake_arenas.nalloc;
    cr_assert_gt(peak, 8);
    /* Every exited thread gave its cache back. */
    size_t cached[MS_NUM_CLASSES], depot[MS_NUM_CLASSES];
    ms_core_lock(&ms_core);
    size_t live = ms_tcache_count(&ms_core, cached, depot);
    ms_core_unlock(&ms_core);
    cr_assert_eq(live, 0, "no cache left after thread exit");
    for (unsigned c = 0; c < MS_NUM_CLASSES; c++)
        cr_assert_eq(cached[c], 0);
    /* The main thread frees the last quarters. */
    for (int t = 0; t < NTHREADS; t++) {
        for (int i = PER_THREAD * 3 / 4; i < PER_THREAD; i++) {
            size_t n = size_of(t, i);
            cr_assert(stamped(slots[t][i], n, (uint32_t)(t * PER_THREAD + i)));
            ms_pymalloc_free(NULL, slots[t][i]);
        }
    }
    ms_pymalloc_flush_thread_cache();
    cr_assert_eq(fake_arenas_live(), 1, "all arenas back but the kept one (peak %d)", peak);
    static char text[8192];
    stats_text(text, sizeof text);
    cr_assert_not_null(strstr(text, "# bytes in allocated blocks        =                    0\n"), "%s", text);
}

/* Producer/consumer: blocks travel one way, in batches through the transfer lists. */
#define PC_ROUNDS 200
#define PC_BATCH 1000
static void *pc_buf[2][PC_BATCH];
static pthread_barrier_t pc_barrier;

static void *consumer(void *arg)
{
    (void)arg;
    for (int r = 0; r < PC_ROUNDS; r++) {
        pthread_barrier_wait(&pc_barrier);
        void **buf = pc_buf[r & 1];
        for (int i = 0; i < PC_BATCH; i++)
            ms_pymalloc_free(NULL, buf[i]);
    }
    return NULL;
}

Test(threads, producer_consumer_stays_bounded)
{
    core_setup(0, false);
    pthread_barrier_init(&pc_barrier, NULL, 2);
    pthread_t th;
    pthread_create(&th, NULL, consumer, NULL);
    for (int r = 0; r < PC_ROUNDS; r++) {
        void **buf = pc_buf[r & 1];
        for (int i = 0; i < PC_BATCH; i++)
            cr_assert_not_null(buf[i] = ms_pymalloc_malloc(NULL, 48));
        pthread_barrier_wait(&pc_barrier);
    }
    pthread_join(th, NULL);
    /* 200,000 blocks of 48 bytes passed one way; memory held stays a few arenas. */
    cr_assert_leq(fake_arenas.nalloc, 2, "blocks are recycled, not piled up");
    ms_pymalloc_flush_thread_cache();
    cr_assert_eq(fake_arenas_live(), 1);
}

static pthread_key_t late_key;

static void late_destructor(void *arg)
{
    /* Runs after the core's own key destructor (keys are visited in creation order). */
    (void)arg;
    void *p = ms_pymalloc_malloc(NULL, 32);
    cr_assert(ms_pymalloc_owns(p));
    ms_pymalloc_free(NULL, p);
    void *q = ms_pymalloc_malloc(NULL, 32);
    cr_assert_eq(q, p, "central path: straight back to the pool");
    ms_pymalloc_free(NULL, q);
}

static void *late_thread(void *arg)
{
    (void)arg;
    pthread_setspecific(late_key, (void *)1);
    void *p = ms_pymalloc_malloc(NULL, 32);
    ms_pymalloc_free(NULL, p);
    return NULL;
}

Test(threads, malloc_after_cache_destructor)
{
    core_setup(0, false);
    cr_assert_eq(pthread_key_create(&late_key, late_destructor), 0);
    pthread_t th;
    pthread_create(&th, NULL, late_thread, NULL);
    pthread_join(th, NULL);
    ms_pymalloc_flush_thread_cache();
    cr_assert_eq(fake_arenas_live(), 1);
    static char text[8192];
    stats_text(text, sizeof text);
    cr_assert_not_null(strstr(text, "# bytes in allocated blocks        =                    0\n"), "%s", text);
}

static volatile int stop;

static void *churner(void *arg)
{
    int t = (int)(intptr_t)arg;
    void *keep[64] = { 0 };
    for (unsigned i = 0; !stop; i++) {
        unsigned k = i % 64;
        ms_pymalloc_free(NULL, keep[k]);
        keep[k] = ms_pymalloc_malloc(NULL, (size_t)((i * 31 + (unsigned)t) % 512) + 1);
        if (i % 4096 == 0)
            ms_pymalloc_flush_thread_cache();   /* spend time inside the core lock too */
    }
    for (int k = 0; k < 64; k++)
        ms_pymalloc_free(NULL, keep[k]);
    return NULL;
}

Test(threads, fork_from_threaded_parent)
{
    core_setup(0, false);
    pthread_t th[4];
    for (int t = 0; t < 4; t++)
        pthread_create(&th[t], NULL, churner, (void *)(intptr_t)t);
    for (int f = 0; f < 20; f++) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            alarm(20);
            void *b[3000];
            for (int i = 0; i < 3000; i++) {
                b[i] = ms_pymalloc_malloc(NULL, (size_t)(i % 512) + 1);
                if (b[i] == NULL || !ms_pymalloc_owns(b[i]))
                    _exit(2);
                *(int *)b[i] = i;
            }
            for (int i = 0; i < 3000; i++) {
                if (*(int *)b[i] != i)
                    _exit(3);
                ms_pymalloc_free(NULL, b[i]);
            }
            ms_pymalloc_flush_thread_cache();
            ms_pymalloc_print_stats(-1);
            _exit(0);
        }
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
    }
    stop = 1;
    for (int t = 0; t < 4; t++)
        pthread_join(th[t], NULL);
}

Test(threads, mass_free_drains_without_flush)
{
    /* A program that builds and then frees a big structure: the transfer list overflows
     * once and is then bypassed, so only the thread's own loaded batch and spare stack
     * stay cached. */
    core_setup(0, false);
    enum { N = 100000 };
    static void *b[N];
    for (int i = 0; i < N; i++)
        cr_assert_not_null(b[i] = ms_pymalloc_malloc(NULL, 32));
    cr_assert_geq(fake_arenas.nalloc, 4);
    for (int i = 0; i < N; i++)
        ms_pymalloc_free(NULL, b[i]);
    size_t cached[MS_NUM_CLASSES], depot[MS_NUM_CLASSES];
    ms_core_lock(&ms_core);
    ms_tcache_count(&ms_core, cached, depot);
    ms_core_unlock(&ms_core);
    cr_assert_eq(depot[1], 0, "the transfer list ends empty");
    cr_assert_leq(cached[1], (1 + ms_tcache_spare_max(1)) * ms_tcache_batch(1));
    cr_assert_leq(fake_arenas_live(), 2, "the last-freed blocks pin at most their arena, "
                  "plus the one kept free arena");
}
