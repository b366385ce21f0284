/* Bug: free of a stack address: a local array is passed to free(); no allocator
 * ever returned it. */
/* SPDX-License-Identifier: MIT */
#include <stdlib.h>

int main(void)
{
    char buf[64];
    char *volatile p = buf;
    p[0] = 1;
    free(p);
    return 0;
}
