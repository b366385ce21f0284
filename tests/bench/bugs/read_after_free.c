/* Bug: read after free: frees a 64-byte block, then reads a byte of it and prints it
 * (nothing is written, so nothing in the heap is corrupted). */
/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    volatile size_t off = 32;
    char *volatile p = malloc(64); /* alloc */
    p[off] = 7;
    free(p);
    int c = p[off];
    printf("%d\n", c != 0);
    return 0;
}
