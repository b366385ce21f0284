/* SPDX-License-Identifier: MIT */
/*
 * The timeline of traced memory for snapshots (charts of memory over time): samples of
 * {time since tracing started, current traced bytes}, one each time traced memory moved by
 * MS_TIMELINE_STEP since the last sample (the trace layer checks that with one compare per
 * traced call and calls ms_timeline_add only then), plus one at start and one when read.
 *
 * Also a sample per MS_TIMELINE_PERIOD_NS of time (the 10 ms): a clock read on
 * every traced call would cost more than the sample is worth, so each thread looks at the
 * coarse clock (vDSO, no system call) only every MS_TIMELINE_TICKS traced calls.
 *
 * Samples live in a mapped array that doubles up to MS_TIMELINE_MAX samples; when full,
 * every other sample is dropped (the resolution halves, the whole run stays covered).
 * Thread-safe: one lock, only tried on the allocation path (a busy lock skips the sample).
 */
#include <pthread.h>
#include <time.h>

#include "os.h"
#include "trace.h"

#define MS_TIMELINE_MIN 4096
#define MS_TIMELINE_PERIOD_NS 10000000u
#define MS_TIMELINE_TICKS 64
#define MS_TIMELINE_MAX (1u << 20)

struct ms_timeline_state {
    pthread_mutex_t lock;
    struct ms_timeline_sample *samples;
    size_t n, cap;
    uint64_t start_ns;
    uint64_t last_coarse_ns; /* atomic: coarse clock at the last sample */
};

/* Traced calls of this thread since it last looked at the clock. */
static _Thread_local unsigned timeline_ticks;

static struct ms_timeline_state timeline_state = { .lock = PTHREAD_MUTEX_INITIALIZER };

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Makes room for one more sample (lock held).  0 or -1. */
static int timeline_room(void)
{
    struct ms_timeline_state *t = &timeline_state;
    if (t->n < t->cap)
        return 0;
    if (t->cap == MS_TIMELINE_MAX) {
        for (size_t i = 0; i < t->n / 2; i++)
            t->samples[i] = t->samples[2 * i + 1];
        t->n /= 2;
        return 0;
    }
    size_t cap = t->cap ? t->cap * 2 : MS_TIMELINE_MIN;
    struct ms_timeline_sample *s = ms_os_map(cap * sizeof *s);
    if (s == NULL)
        return -1;
    for (size_t i = 0; i < t->n; i++)
        s[i] = t->samples[i];
    if (t->samples)
        ms_os_unmap(t->samples, t->cap * sizeof *s);
    t->samples = s;
    t->cap = cap;
    return 0;
}

static uint64_t coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void timeline_append(size_t current)
{
    struct ms_timeline_state *t = &timeline_state;
    __atomic_store_n(&t->last_coarse_ns, coarse_ns(), __ATOMIC_RELAXED);
    if (timeline_room() == 0) {
        t->samples[t->n].ns = now_ns() - t->start_ns;
        t->samples[t->n].current = current;
        t->n++;
    }
}

void ms_timeline_start(size_t current)
{
    pthread_mutex_lock(&timeline_state.lock);
    timeline_state.n = 0;
    timeline_state.start_ns = now_ns();
    timeline_append(current);
    pthread_mutex_unlock(&timeline_state.lock);
}

int ms_timeline_due(void)
{
    if (++timeline_ticks % MS_TIMELINE_TICKS != 0)
        return 0;
    uint64_t last = __atomic_load_n(&timeline_state.last_coarse_ns, __ATOMIC_RELAXED);
    return coarse_ns() - last >= MS_TIMELINE_PERIOD_NS;
}

void ms_timeline_add(size_t current)
{
    if (pthread_mutex_trylock(&timeline_state.lock) != 0)
        return;
    timeline_append(current);
    pthread_mutex_unlock(&timeline_state.lock);
}

void ms_timeline_foreach(size_t current, void (*fn)(void *arg, const struct ms_timeline_sample *s),
                         void *arg)
{
    pthread_mutex_lock(&timeline_state.lock);
    timeline_append(current);
    for (size_t i = 0; i < timeline_state.n; i++)
        fn(arg, &timeline_state.samples[i]);
    pthread_mutex_unlock(&timeline_state.lock);
}

void ms_timeline_fork_child(void)
{
    pthread_mutex_init(&timeline_state.lock, NULL);
}
