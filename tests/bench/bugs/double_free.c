/* Bug: double free: the same 32-byte block is passed to free() twice in a row.
 * (glibc's tcache notices this one by itself, without any checking mode.) */
/* SPDX-License-Identifier: MIT */
#include <stdlib.h>

int main(void)
{
    char *volatile p = malloc(32); /* alloc */
    p[0] = 1;
    free(p);
    free(p);
    return 0;
}
