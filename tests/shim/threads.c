/* SPDX-License-Identifier: MIT */
/*
 * Eight threads that allocate, hand half of their blocks to the next thread (which checks
 * and frees them: cross-thread frees), realloc across the 512-byte threshold, and exit
 * while new ones start; then the main thread checks that nothing was lost or corrupted.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

enum { THREADS = 8, ROUNDS = 3, PER_THREAD = 60000, RING = 4096 };

struct ring {
    pthread_mutex_t lock;
    unsigned char *slot[RING];
    size_t len[RING];
    unsigned head, tail;
};

static struct ring rings[THREADS];
static int failures[THREADS];

static void stamp(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(n + i);
}

static int stamped(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(n + i))
            return 0;
    return 1;
}

static void drain(int me)
{
    struct ring *r = &rings[me];
    pthread_mutex_lock(&r->lock);
    while (r->tail != r->head) {
        unsigned i = r->tail++ % RING;
        if (!stamped(r->slot[i], r->len[i]))
            failures[me]++;
        free(r->slot[i]);
    }
    pthread_mutex_unlock(&r->lock);
}

static void *worker(void *arg)
{
    int me = (int)(intptr_t)arg;
    struct ring *next = &rings[(me + 1) % THREADS];
    unsigned seed = (unsigned)me * 7919u + 1;
    unsigned char *keep[64] = {0};
    size_t keep_len[64] = {0};
    for (int i = 0; i < PER_THREAD; i++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 8) % 600;
        unsigned char *p = malloc(n);
        if (!p) {
            failures[me]++;
            continue;
        }
        stamp(p, n);
        if (seed & 0x40000) {
            pthread_mutex_lock(&next->lock);
            if (next->head - next->tail < RING) {
                unsigned k = next->head++ % RING;
                next->slot[k] = p;
                next->len[k] = n;
                p = NULL;
            }
            pthread_mutex_unlock(&next->lock);
        }
        if (p) {
            int k = (int)((seed >> 4) % 64);
            if (keep[k]) {
                if (!stamped(keep[k], keep_len[k]))
                    failures[me]++;
                /* Resize the kept block, sometimes across the threshold. */
                size_t m = 1 + (seed >> 12) % 1200;
                unsigned char *q = realloc(keep[k], m);
                size_t common = m < keep_len[k] ? m : keep_len[k];
                for (size_t j = 0; q && j < common; j++)
                    if (q[j] != (unsigned char)(keep_len[k] + j)) {
                        failures[me]++;
                        break;
                    }
                free(q);
            }
            keep[k] = p;
            keep_len[k] = n;
        }
        if ((i & 255) == 0)
            drain(me);
    }
    for (int k = 0; k < 64; k++)
        free(keep[k]);
    return NULL;
}

int main(void)
{
    for (int t = 0; t < THREADS; t++)
        pthread_mutex_init(&rings[t].lock, NULL);
    for (int round = 0; round < ROUNDS; round++) {
        pthread_t th[THREADS];
        for (int t = 0; t < THREADS; t++)
            CHECK(pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t) == 0, "create");
        for (int t = 0; t < THREADS; t++)
            pthread_join(th[t], NULL);
        for (int t = 0; t < THREADS; t++)
            drain(t);
    }
    for (int t = 0; t < THREADS; t++)
        CHECK(failures[t] == 0, "thread %d saw %d corrupted or failed blocks", t, failures[t]);
    return check_summary();
}
