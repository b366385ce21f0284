/* Bug: free of an interior pointer: p+8 of a 32-byte block is passed to free() (the block
 * itself stays reachable from a global, so it is not also a leak). */
/* SPDX-License-Identifier: MIT */
#include <stdlib.h>

char *volatile keep;

int main(void)
{
    volatile size_t off = 8;
    keep = malloc(32); /* alloc */
    keep[0] = 1;
    free(keep + off);
    return 0;
}
