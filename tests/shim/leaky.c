/* SPDX-License-Identifier: MIT */
/*
 * Known allocation sites for the tracing tests: three leak (5 x 100 B, 1 x 2000 B,
 * 3 x 300 B), one stays reachable from a global, one is freed.  With an argument:
 *   fork   - a child leaks 5 x 2000 B more (its own report, its own snapshot file through
 *            %p), then both exit;
 *   crash  - dies of SIGSEGV after allocating (the snapshot must still be written);
 *   clean  - frees everything: tracing must print nothing and exit 0;
 *   mapped - keeps its only pointers to two blocks in a page it mapped itself (as a
 *            garbage collector or python's pymalloc does): reachable, so nothing printed;
 *   stale  - leaks one block whose only pointer sits in a block that was freed: the
 *            allocators' free memory is no root, so it must be reported;
 *   threads - the same after starting and joining threads (each exited thread's TLS
 *            vector stays with the C library's cached stack, where no scan looks);
 *   last   - leaks one block as the very last allocation before exit (nothing printed
 *            after it: stale copies of its address in memshim's own exit-time frames once
 *            passed for roots).
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS under -std=c11 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static void *keep;

__attribute__((noinline)) char *site_a(void) { return malloc(100); }
__attribute__((noinline)) char *site_b(void) { return malloc(2000); }
__attribute__((noinline)) char *site_c(void) { return calloc(10, 30); }

/* Overwrites the stack below main's frame, where the leaked pointer's own copies were. */
__attribute__((noinline)) static void scrub(void)
{
    volatile char junk[512];
    memset((char *)junk, 0, sizeof junk);
}

static void *thread_main(void *arg)
{
    free(site_a());
    return arg;
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    if (strcmp(what, "last") == 0) {
        memset(site_a(), 1, 100);
        scrub();
        return 0;
    }
    if (strcmp(what, "mapped") == 0) {
        void **page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                           -1, 0);
        if (page == MAP_FAILED)
            return 2;
        page[10] = site_a();
        page[11] = site_b();
        scrub();
        puts("done");
        return 0;
    }
    if (strcmp(what, "stale") == 0) {
        char **holder = malloc(4000); /* beyond pymalloc: the lower allocator's memory */
        if (holder == NULL)
            return 2;
        holder[8] = site_a();
        free(holder);
        scrub();
        puts("done");
        return 0;
    }
    if (strcmp(what, "threads") == 0) {
        for (int round = 0; round < 3; round++) {
            pthread_t t[4];
            for (int i = 0; i < 4; i++)
                if (pthread_create(&t[i], NULL, thread_main, NULL) != 0)
                    return 2;
            for (int i = 0; i < 4; i++)
                pthread_join(t[i], NULL);
        }
        puts("done");
        return 0;
    }
    if (strcmp(what, "clean") == 0) {
        char *p[10];
        for (int i = 0; i < 10; i++)
            p[i] = site_a();
        for (int i = 0; i < 10; i++)
            free(p[i]);
        puts("done");
        return 0;
    }
    for (int i = 0; i < 5; i++)
        site_a();
    site_b();
    for (int i = 0; i < 3; i++)
        site_c();
    keep = malloc(777);
    free(malloc(50));
    if (strcmp(what, "crash") == 0)
        raise(SIGSEGV);
    if (strcmp(what, "fork") == 0) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            /* Five, since the last pointer may still sit in a register (a conservative
             * scan then calls it reachable, as LeakSanitizer does). */
            for (int i = 0; i < 5; i++)
                site_b();
            exit(0);
        }
        int status;
        waitpid(pid, &status, 0);
        printf("child status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    puts("done");
    return 0;
}
