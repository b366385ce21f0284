/* SPDX-License-Identifier: MIT */
/*
 * fork() from a parent whose other threads are busy allocating: the child must be able to
 * allocate and free (no lock left held by a thread that does not exist in the child), and
 * blocks the parent made before the fork must be usable and freeable in the child.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

enum { BUSY_THREADS = 4, FORKS = 200 };

static atomic_int stop;

static void *busy(void *arg)
{
    (void)arg;
    void *slots[256] = {0};
    unsigned seed = 99;
    while (!atomic_load(&stop)) {
        seed = seed * 1103515245u + 12345u;
        unsigned k = (seed >> 8) % 256;
        free(slots[k]);
        slots[k] = malloc(1 + (seed >> 16) % 2000);
    }
    for (int k = 0; k < 256; k++)
        free(slots[k]);
    return NULL;
}

static int child_work(char *inherited)
{
    if (strcmp(inherited, "made before fork") != 0)
        return 3;
    free(inherited);
    void *p[1000];
    for (int i = 0; i < 1000; i++) {
        p[i] = malloc((size_t)(i % 700) + 1);
        if (!p[i])
            return 4;
        memset(p[i], i, (size_t)(i % 700) + 1);
    }
    for (int i = 0; i < 1000; i++)
        free(p[i]);
    return 0;
}

int main(void)
{
    pthread_t th[BUSY_THREADS];
    for (int t = 0; t < BUSY_THREADS; t++)
        pthread_create(&th[t], NULL, busy, NULL);
    int bad = 0;
    for (int i = 0; i < FORKS; i++) {
        char *s = malloc(32);
        strcpy(s, "made before fork");
        pid_t pid = fork();
        if (pid == 0)
            _exit(child_work(s));
        free(s);
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            bad++;
            fprintf(stderr, "fork %d: child status 0x%x\n", i, status);
        }
    }
    atomic_store(&stop, 1);
    for (int t = 0; t < BUSY_THREADS; t++)
        pthread_join(th[t], NULL);
    CHECK(bad == 0, "%d of %d children failed", bad, FORKS);
    return check_summary();
}
