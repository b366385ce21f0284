/* SPDX-License-Identifier: MIT */
/*
 * The C library's malloc must be initialised by the main thread before main.
 *
 * Under memshim a program whose main thread only makes small requests never calls glibc's
 * malloc, so its first call could come from two threads at once: glibc initialises itself
 * lazily and without a lock (ptmalloc_init), both threads then took the main arena with one
 * attachment between them, and the second to exit aborted with "malloc assertion failure
 * in __malloc_arena_thread_freeres: a->attached_threads > 0" (1 run in 30 of the private
 * 2-thread benchmark).  memshim's constructor now initialises it.
 *
 * Each round runs a fresh process (glibc's state would be inherited by a fork) in which
 * two threads make their first big request at the same moment.  Checked: every child
 * exits cleanly, and neither thread got the main arena's heap (below the program break),
 * which is what a thread that initialised glibc itself gets.  The address check needs
 * glibc under the big blocks: skipped in the mimalloc modes.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

enum { ROUNDS = 40, BIG = 4096 };

static pthread_barrier_t start;
static void *volatile got[2];

static void *first_big(void *arg)
{
    pthread_barrier_wait(&start);
    void *p = malloc(BIG);
    got[(intptr_t)arg] = p;
    memset(p, 1, BIG);
    free(p);
    return NULL;
}

/* 0: clean; 1: a thread got the main arena; 2: could not run. */
static int child(void)
{
    pthread_t th[2];
    if (pthread_barrier_init(&start, NULL, 2) != 0)
        return 2;
    for (intptr_t i = 0; i < 2; i++)
        if (pthread_create(&th[i], NULL, first_big, (void *)i) != 0)
            return 2;
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    const char *mode = getenv("MEMSHIM_MALLOC");
    if (mode != NULL && strstr(mode, "mimalloc") != NULL)
        return 0;
    char *brk_end = sbrk(0);
    for (int i = 0; i < 2; i++)
        if ((char *)got[i] < brk_end)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0)
        return child();
    int aborted = 0, main_arena = 0;
    for (int r = 0; r < ROUNDS; r++) {
        pid_t pid = fork();
        CHECK(pid >= 0, "fork");
        if (pid == 0) {
            execl("/proc/self/exe", argv[0], "child", (char *)NULL);
            _exit(127);
        }
        int status;
        CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
        CHECK(!WIFEXITED(status) || (WEXITSTATUS(status) != 2 && WEXITSTATUS(status) != 127),
              "child could not run (status %d)", WEXITSTATUS(status));
        if (WIFSIGNALED(status))
            aborted++;
        else if (WEXITSTATUS(status) == 1)
            main_arena++;
    }
    CHECK(aborted == 0, "%d of %d children killed by a signal", aborted, ROUNDS);
    CHECK(main_arena == 0,
          "in %d of %d children a thread's first big block came from glibc's main arena: "
          "glibc's malloc was initialised by that thread, not before main", main_arena, ROUNDS);
    return check_summary();
}
