/* SPDX-License-Identifier: MIT */
/* A library that allocates in its constructor, hands out blocks, and frees in its
 * destructor: loaded and unloaded repeatedly by dlopen.c. */
#include <stdlib.h>
#include <string.h>

static char *table[100];

__attribute__((constructor)) static void dso_init(void)
{
    for (int i = 0; i < 100; i++) {
        table[i] = malloc((size_t)(i * 13 % 900) + 1);
        memset(table[i], 'x', (size_t)(i * 13 % 900) + 1);
    }
}

__attribute__((destructor)) static void dso_fini(void)
{
    for (int i = 0; i < 100; i++)
        free(table[i]);
}

char *dso_make(size_t n)
{
    char *p = malloc(n + 1);
    memset(p, 'y', n);
    p[n] = 0;
    return p;
}
