/* SPDX-License-Identifier: MIT */
/*
 * What a thread costs in resident memory: starts N threads (argv[1], default 200) that
 * each allocate two small blocks and wait, and prints the growth of VmRSS per thread in
 * KiB, for tests/shim/check_threadcost.sh to compare with a run without memshim.
 */
#define _POSIX_C_SOURCE 200809L /* barriers */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 1024

static pthread_barrier_t started, finish;

static void *thread_main(void *arg)
{
    char *a = malloc(24), *b = malloc(100);
    if (a != NULL)
        memset(a, 1, 24);
    if (b != NULL)
        memset(b, 1, 100);
    pthread_barrier_wait(&started);
    pthread_barrier_wait(&finish);
    free(a);
    free(b);
    return arg;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = atol(line + 6);
    if (f != NULL)
        fclose(f);
    return kib;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 200;
    if (n < 1 || n > MAX_THREADS)
        return 2;
    static pthread_t threads[MAX_THREADS];
    pthread_barrier_init(&started, NULL, (unsigned)n + 1);
    pthread_barrier_init(&finish, NULL, (unsigned)n + 1);
    long before = rss_kib();
    for (int i = 0; i < n; i++)
        if (pthread_create(&threads[i], NULL, thread_main, NULL) != 0)
            return 2;
    pthread_barrier_wait(&started);
    long during = rss_kib();
    pthread_barrier_wait(&finish);
    for (int i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    printf("%ld\n", (during - before) / n);
    return 0;
}
