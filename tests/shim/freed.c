/* SPDX-License-Identifier: MIT */
/*
 * Bugs on freed blocks, each allocated in make_block and freed in drop_block, so that the
 * debug report can be checked for both places (tests/shim/check_freed.sh):
 *   double    - the block is freed twice (the second time from main);
 *   write     - a byte is written after the free; found at exit;
 *   realloc   - realloc of the freed block;
 *   interior  - free of a pointer 16 bytes inside the freed block.
 */
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic ignored "-Wfree-nonheap-object"

static __attribute__((noinline)) char *make_block(size_t n)
{
    char *p = malloc(n);
    if (p != NULL)
        memset(p, 'x', n);
    return p;
}

static __attribute__((noinline)) void drop_block(char *p)
{
    free(p);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    char *p = make_block(40);
    if (p == NULL)
        return 2;
    drop_block(p);
    if (strcmp(argv[1], "double") == 0)
        free(p);
    else if (strcmp(argv[1], "write") == 0)
        p[5] = 'A';
    else if (strcmp(argv[1], "realloc") == 0)
        p = realloc(p, 100);
    else if (strcmp(argv[1], "interior") == 0)
        free(p + 16); /* the compiler sees the bug too: -Wfree-nonheap-object, silenced */
    else
        return 2;
    return 0;
}
