/* SPDX-License-Identifier: MIT */
/*
 * The program tests/launcher runs under scripts/memshim.  It runs preloaded, so it only
 * uses what any program would (stdio, environ, kill):
 *   probe env        print LD_PRELOAD and every MEMSHIM_* variable, one per line, sorted
 *                    by the test (environ order is not specified)
 *   probe exit N     exit with status N
 *   probe kill SIG   die of signal SIG (SEGV or ABRT)
 *   probe alloc      allocate at a known site and keep it, for --html
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static void *keep[64];

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "env") == 0) {
        for (char **e = environ; *e; e++)
            if (strncmp(*e, "MEMSHIM_", 8) == 0 || strncmp(*e, "LD_PRELOAD=", 11) == 0)
                printf("%s\n", *e);
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "exit") == 0)
        return atoi(argv[2]);
    if (argc > 2 && strcmp(argv[1], "kill") == 0) {
        signal(SIGSEGV, SIG_DFL);
        signal(SIGABRT, SIG_DFL);
        raise(strcmp(argv[2], "SEGV") == 0 ? SIGSEGV : SIGABRT);
        return 1;
    }
    if (argc > 1 && strcmp(argv[1], "alloc") == 0) {
        for (int i = 0; i < 64; i++)
            keep[i] = malloc(100 + i);
        printf("allocated %p\n", keep[0]);
        return 0;
    }
    fprintf(stderr, "usage: probe env | exit N | kill SEGV|ABRT | alloc\n");
    return 2;
}
