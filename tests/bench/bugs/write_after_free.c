/* Bug: write after free: frees a 64-byte block, writes into its middle, then keeps
 * allocating and freeing (~25 MB) so the block is reused or leaves any quarantine. */
/* SPDX-License-Identifier: MIT */
#include <stdlib.h>

int main(void)
{
    volatile size_t off = 32;
    char *volatile p = malloc(64); /* alloc */
    free(p);
    p[off] = 'x';
    for (int i = 0; i < 400000; i++) {
        char *volatile q = malloc(64);
        q[0] = 1;
        free(q);
    }
    return 0;
}
