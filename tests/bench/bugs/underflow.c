/* Bug: heap underflow: writes p[-1], the byte just before a 10-byte block, then frees it.
 * The byte belongs to the allocator's header (glibc: the chunk size; debug hooks: a pad). */
/* SPDX-License-Identifier: MIT */
#include <stdlib.h>

int main(void)
{
    volatile long i = -1;
    char *volatile p = malloc(10); /* alloc */
    p[i] = 'x';
    free(p);
    return 0;
}
