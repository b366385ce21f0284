/* No bug: the control.  malloc, calloc, realloc, strdup and free used correctly, every
 * block freed before exit; any report on this program is a false positive. */
/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    size_t n = 0, sum = 0;
    char **v = NULL;
    for (int i = 0; i < 1000; i++) {
        char **w = realloc(v, (n + 1) * sizeof *v);
        if (!w)
            return 1;
        v = w;
        char buf[32];
        snprintf(buf, sizeof buf, "item %d", i);
        v[n++] = strdup(buf);
    }
    int *z = calloc(100, sizeof *z);
    for (size_t i = 0; i < n; i++) {
        sum += strlen(v[i]) + (size_t)z[i % 100];
        free(v[i]);
    }
    free(z);
    free(v);
    printf("%zu\n", sum);
    return 0;
}
