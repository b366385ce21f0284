/* SPDX-License-Identifier: MIT */
/*
 * mmap/munmap behind core/os.h.  Failure is reported as NULL, never as a crash: memshim
 * must survive running out of address space or hitting `ulimit -v`.
 */
#include "os.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* glibc's registration function behind pthread_atfork (exported since 2.3.2). */
extern int __register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void),
                             void *dso_handle);
extern void *__dso_handle __attribute__((weak, visibility("hidden")));

int ms_os_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
    return __register_atfork(prepare, parent, child, &__dso_handle ? __dso_handle : NULL);
}

uint64_t ms_os_coarse_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0)
        return 1;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + 1; /* never 0 */
}

size_t ms_os_page_size(void)
{
    static size_t page;
    if (page == 0) {
        long n = sysconf(_SC_PAGESIZE);
        page = n > 0 ? (size_t)n : 4096;
    }
    return page;
}

static void *map_anonymous(size_t size)
{
    int saved_errno = errno;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    errno = saved_errno;
    return p == MAP_FAILED ? NULL : p;
}

void *ms_os_map(size_t size)
{
    void *p = map_anonymous(size);
    if (p != NULL) {
        int saved_errno = errno;
        (void)madvise(p, size, MADV_DONTDUMP);
        errno = saved_errno;
    }
    return p;
}

void *ms_os_map_aligned(size_t size, size_t alignment)
{
    size_t page = ms_os_page_size();
    if (alignment <= page)
        return map_anonymous(size);
    if (size > SIZE_MAX - alignment)
        return NULL;
    /* Map more than needed and trim both ends: the kernel only promises page alignment. */
    size_t span = size + alignment - page;
    char *raw = map_anonymous(span);
    if (raw == NULL)
        return NULL;
    uintptr_t start = ((uintptr_t)raw + alignment - 1) & ~(uintptr_t)(alignment - 1);
    size_t head = start - (uintptr_t)raw;
    size_t tail = span - head - size;
    if (head)
        ms_os_unmap(raw, head);
    if (tail)
        ms_os_unmap((char *)start + size, tail);
    return (void *)start;
}

void ms_os_unmap(void *p, size_t size)
{
    int saved_errno = errno;
    munmap(p, size);
    errno = saved_errno;
}

void ms_os_discard(void *p, size_t size)
{
    int saved_errno = errno;
    madvise(p, size, MADV_DONTNEED);
    errno = saved_errno;
}
