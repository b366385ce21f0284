/* Bug: free of a pointer no allocator returned: the address of a global array
 * (in the program's .bss) is passed to free(). */
/* SPDX-License-Identifier: MIT */
#include <stdlib.h>

static char table[64];

int main(void)
{
    char *volatile p = table;
    p[0] = 1;
    free(p);
    return 0;
}
