/* Bug: one-byte overflow of a block that is never freed (it stays reachable from a global,
 * so it is not a leak); the program exits normally, so no free() ever looks at the block. */
/* SPDX-License-Identifier: MIT */
#include <stdlib.h>

char *volatile keep;

int main(void)
{
    volatile size_t n = 10;
    keep = malloc(n); /* alloc */
    keep[n] = 'x';
    return 0;
}
