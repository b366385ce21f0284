/* SPDX-License-Identifier: MIT */
/*
 * What a program sees of its file descriptors: the number its first open() gets, and every
 * descriptor it has (but the listing's own), those below 64 and the others on two lines,
 * after allocating enough for the trace modes to have walked stacks.  check_fds.sh
 * compares the output with a run without memshim.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    void *keep[64];
    for (int i = 0; i < 64; i++) {
        keep[i] = malloc((size_t)(16 + i * 40));
        memset(keep[i], 1, 16);
    }
    int fd = open("/dev/null", O_RDONLY);
    printf("first open: %d\n", fd);
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return 1;
    int own = dirfd(d);
    struct dirent *e;
    char low[1024] = "", high[1024] = "";
    while ((e = readdir(d)) != NULL) {
        int n = atoi(e->d_name);
        if (e->d_name[0] == '.' || n == own)
            continue;
        char *line = n < 64 ? low : high;
        snprintf(line + strlen(line), 1024 - strlen(line), " %d", n);
    }
    closedir(d);
    printf("open below 64:%s\nopen above:%s\n", low, high);
    for (int i = 0; i < 64; i++)
        free(keep[i]);
    return 0;
}
