/* SPDX-License-Identifier: MIT */
/*
 * The in-process layers under threads, as a plain C program so that ThreadSanitizer can
 * run it (Criterion cannot start under TSan: "Could not initialize inheritable arena").
 * Three allocators share one pymalloc core (over glibc): the core itself, the debug layer
 * over it, and the trace layer over it (tracing 4 frames).  WORKERS threads trade blocks
 * of all three through a table (atomic exchange; the taker checks the contents and frees
 * or reallocs through the allocator that made the block), short-lived threads come and go,
 * and one thread keeps walking the heap (debug check, stats report, traced memory) while
 * the others work.  At the end every block is freed, and the core must hold none.
 * Exit status 0 on success; TSan's reports make it non-zero (exitcode 66).
 */
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "debug.h"
#include "pymalloc.h"
#include "trace.h"

#define WORKERS 8
#define SLOTS 2048
#define OPS 20000
#define EPHEMERAL 40

struct hdr {
    uint32_t id;
    uint16_t size;
    uint16_t layer;     /* index into layers[] */
};

static struct ms_allocator layers[3];
static _Atomic(struct hdr *) table[SLOTS];
static atomic_uint next_id;
static atomic_int failures, done;

static void fail(const char *what)
{
    atomic_fetch_add(&failures, 1);
    fprintf(stderr, "layers_threads: %s\n", what);
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static size_t pick_size(uint64_t *s)
{
    uint64_t r = rnd(s);
    return r % 4 ? 8 + (r >> 8) % 200 : 8 + (r >> 8) % 1500;
}

static void fill(struct hdr *h)
{
    unsigned char *p = (unsigned char *)h;
    for (size_t i = sizeof *h; i < h->size; i++)
        p[i] = (unsigned char)(h->id * 3 + i);
}

static int intact(const struct hdr *h, size_t n)
{
    const unsigned char *p = (const unsigned char *)h;
    for (size_t i = sizeof *h; i < n; i++)
        if (p[i] != (unsigned char)(h->id * 3 + i))
            return 0;
    return 1;
}

static struct hdr *make(uint64_t *s)
{
    unsigned layer = (unsigned)(rnd(s) % 3);
    size_t n = pick_size(s);
    struct ms_allocator *a = &layers[layer];
    struct hdr *h = rnd(s) % 8 ? a->malloc(a->ctx, n) : a->memalign(a->ctx, 64, n);
    if (h == NULL) {
        fail("allocation failed");
        return NULL;
    }
    h->id = atomic_fetch_add(&next_id, 1);
    h->size = (uint16_t)n;
    h->layer = (uint16_t)layer;
    fill(h);
    return h;
}

static void handle(struct hdr *h, uint64_t *s, unsigned slot)
{
    if (h == NULL)
        return;
    struct ms_allocator *a = &layers[h->layer];
    if (!intact(h, h->size))
        fail("contents changed");
    if (rnd(s) % 3 != 0) {
        a->free(a->ctx, h);
        return;
    }
    size_t n = pick_size(s), old = h->size;
    struct hdr *q = a->realloc(a->ctx, h, n);
    if (q == NULL) {
        fail("realloc failed");
        return;
    }
    if (!intact(q, n < old ? n : old))
        fail("realloc lost contents");
    q->size = (uint16_t)n;
    fill(q);
    handle(atomic_exchange(&table[slot], q), s, slot);
}

static void *worker(void *arg)
{
    uint64_t s = (uintptr_t)arg * 0x9e3779b97f4a7c15u + 1;
    for (int i = 0; i < OPS; i++) {
        unsigned slot = (unsigned)(rnd(&s) % SLOTS);
        handle(atomic_exchange(&table[slot], make(&s)), &s, slot);
    }
    return NULL;
}

static void *ephemeral(void *arg)
{
    uint64_t s = (uintptr_t)arg + 12345;
    for (int i = 0; i < 100; i++) {
        unsigned slot = (unsigned)(rnd(&s) % SLOTS);
        handle(atomic_exchange(&table[slot], make(&s)), &s, slot);
    }
    return NULL;
}

static void *spawner(void *arg)
{
    (void)arg;
    for (uintptr_t i = 0; i < EPHEMERAL; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, ephemeral, (void *)i) == 0)
            pthread_join(t, NULL);
    }
    return NULL;
}

/* Walks while the others work: what a user's on-demand check or report does. */
static void *walker(void *arg)
{
    int fd = *(int *)arg;
    while (!atomic_load(&done)) {
        ms_debug_check_heap();
        ms_pymalloc_print_stats(fd);
        size_t cur, peak;
        ms_trace_get_traced_memory(&cur, &peak);
        if (cur > peak)
            fail("traced memory above its peak");
        usleep(2000);
    }
    return NULL;
}

static void *l_malloc(void *c, size_t n) { (void)c; return malloc(n); }
static void *l_calloc(void *c, size_t a, size_t b) { (void)c; return calloc(a, b); }
static void *l_realloc(void *c, void *p, size_t n) { (void)c; return realloc(p, n ? n : 1); }
static void l_free(void *c, void *p) { (void)c; free(p); }
static size_t l_usable(void *c, void *p) { (void)c; return malloc_usable_size(p); }
static void *l_memalign(void *c, size_t al, size_t n)
{
    (void)c;
    void *p = NULL;
    return posix_memalign(&p, al, n) == 0 ? p : NULL;
}

static void setup(void)
{
    struct ms_pymalloc_config cfg = {
        .lower = { NULL, l_malloc, l_calloc, l_realloc, l_free, l_memalign, l_usable },
        .stats_fd = -1,
    };
    struct ms_debug_config dcfg = { .quarantine_bytes = (size_t)1 << 20, .fd = 2 };
    if (ms_pymalloc_init(&cfg) != 0)
        fail("ms_pymalloc_init");
    layers[0] = ms_pymalloc_allocator();
    dcfg.lower = layers[0];
    if (ms_debug_init(&dcfg) != 0)
        fail("ms_debug_init");
    layers[1] = ms_debug_allocator(MS_DEBUG_API_RAW);
    ms_trace_init(&layers[2], &layers[0]);
    if (ms_trace_start(4) != 0)
        fail("ms_trace_start");
}

static int core_is_empty(void)
{
    char text[16384];
    int fd = memfd_create("stats", 0);
    ms_pymalloc_flush_thread_cache();
    ms_pymalloc_print_stats(fd);
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    close(fd);
    text[n > 0 ? n : 0] = '\0';
    const char *s = strstr(text, "# bytes in allocated blocks");
    size_t used = 1;
    if (s != NULL && (s = strchr(s, '=')) != NULL)
        used = strtoul(s + 1 + strspn(s + 1, " "), NULL, 10);
    if (used != 0)
        fprintf(stderr, "%s", text);
    return used == 0;
}

int main(void)
{
    setup();
    int null = open("/dev/null", O_WRONLY);
    pthread_t w[WORKERS], sp, wk;
    pthread_create(&wk, NULL, walker, &null);
    pthread_create(&sp, NULL, spawner, NULL);
    for (uintptr_t i = 0; i < WORKERS; i++)
        pthread_create(&w[i], NULL, worker, (void *)(i + 1));
    for (int i = 0; i < WORKERS; i++)
        pthread_join(w[i], NULL);
    pthread_join(sp, NULL);
    atomic_store(&done, 1);
    pthread_join(wk, NULL);

    for (unsigned i = 0; i < SLOTS; i++) {
        struct hdr *h = atomic_exchange(&table[i], NULL);
        if (h == NULL)
            continue;
        if (!intact(h, h->size))
            fail("contents changed (final)");
        layers[h->layer].free(layers[h->layer].ctx, h);
    }
    size_t cur, peak;
    ms_trace_get_traced_memory(&cur, &peak);
    if (cur != 0 || ms_trace_count() != 0)
        fail("traces left after every block was freed");
    struct ms_debug_stats st;
    ms_debug_get_stats(&st);
    if (st.live_blocks != 0)
        fail("debug layer has live blocks after every block was freed");
    ms_debug_flush_quarantine();
    if (!core_is_empty())
        fail("the core holds blocks after every block was freed");
    printf("%u blocks, %d failures\n", atomic_load(&next_id), atomic_load(&failures));
    return atomic_load(&failures) ? 1 : 0;
}
