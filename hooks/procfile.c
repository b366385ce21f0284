/* SPDX-License-Identifier: MIT */
/*
 * /proc files read without the C library's allocator or locks (see procfile.h): the leak
 * scan's maps and smaps, and the mapping of a thread's stack, which a malloc hook needs
 * (pthread_getattr_np holds the thread's lock while it allocates, so a hook asking it from
 * a malloc that pthread_getattr_np made would wait for ever: every Rust program's threads
 * start by asking it).  Never on the hot path: once per thread at most.
 */
#include "procfile.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

uintptr_t ms_procfile_parse_hex(const char **p)
{
    uintptr_t v = 0;
    if ((*p)[0] == '0' && (*p)[1] == 'x')
        *p += 2;
    for (;; (*p)++) {
        char c = **p;
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return v;
        v = v * 16 + (uintptr_t)d;
    }
}

void ms_procfile_each_line(const char *path, void (*fn)(const char *line, void *arg),
                           void *arg)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[4096];
    size_t have = 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = '\0';
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = '\0';
            fn(line, arg);
            line = nl + 1;
        }
        have = (size_t)(buf + have - line);
        memmove(buf, line, have);
        if (have == sizeof buf - 1)
            have = 0;
    }
    close(fd);
}

struct mapping_query {
    uintptr_t addr;
    uintptr_t prev_hi;
    bool found;
    struct ms_procfile_mapping *out;
};

/* "lo-hi perms offset dev inode   [name]" */
static void match_line(const char *line, void *arg)
{
    struct mapping_query *q = arg;
    if (q->found)
        return;
    const char *p = line;
    uintptr_t lo = ms_procfile_parse_hex(&p);
    p++;
    uintptr_t hi = ms_procfile_parse_hex(&p);
    if (q->addr < lo || q->addr >= hi) {
        q->prev_hi = hi;
        return;
    }
    size_t len = strlen(line);
    *q->out = (struct ms_procfile_mapping){
        .lo = lo, .hi = hi, .below_hi = q->prev_hi,
        .writable = p[1] == 'r' && p[2] == 'w',
        .grows_down = len >= 7 && strcmp(line + len - 7, "[stack]") == 0,
    };
    q->found = true;
}

bool ms_procfile_mapping_of(uintptr_t addr, struct ms_procfile_mapping *out)
{
    struct mapping_query q = { .addr = addr, .out = out };
    ms_procfile_each_line("/proc/self/maps", match_line, &q);
    return q.found;
}
