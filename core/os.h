/* SPDX-License-Identifier: MIT */
/*
 * The OS contract: the only file that maps and unmaps memory.  Everything memshim needs
 * for itself (arenas, the address map's nodes, thread caches, debug and trace tables) comes
 * from here, never from malloc, so that memshim cannot recurse into itself and its own
 * memory is never mistaken for the program's.
 *
 * Thread-safe (the kernel is the lock).  Not on the hot path.
 */
#ifndef MS_OS_H
#define MS_OS_H

#include <stddef.h>
#include <stdint.h>

/* Zero-filled, page-aligned anonymous memory for memshim's own bookkeeping, or NULL (errno
 * is left as it was).  Marked MADV_DONTDUMP: it stays out of core dumps, and the flag
 * ("dd" in /proc/self/smaps) is how the leak scan tells it from the program's mappings. */
void *ms_os_map(size_t size);
/* Memory that holds the program's blocks (arenas), aligned to alignment (a power of two
 * >= the page size): not marked, so that it is in core dumps. */
void *ms_os_map_aligned(size_t size, size_t alignment);
void ms_os_unmap(void *p, size_t size);
/* Tell the kernel the pages may be dropped (they read back as zero). */
void ms_os_discard(void *p, size_t size);
size_t ms_os_page_size(void);

/* pthread_atfork, without libc_nonshared.a's wrapper: the linker puts that stub after all
 * of memshim's code, so calling it kept the last text pages (trace and report code, 32 KiB)
 * resident in every process.  The wrapper only adds this library's handle, which unregisters
 * the handlers if the library is unloaded; so does this. */
int ms_os_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void));

/* A monotonic clock in nanoseconds, a few milliseconds coarse (cheap: the vDSO). */
uint64_t ms_os_coarse_ns(void);

#endif
