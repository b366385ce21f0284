/* SPDX-License-Identifier: MIT */
/*
 * Reading the kernel's /proc files from inside malloc: plain open/read into a fixed
 * buffer on the stack, no stdio, no allocation, no lock of the C library's.
 */
#ifndef MS_PROCFILE_H
#define MS_PROCFILE_H

#include <stdbool.h>
#include <stdint.h>

/* Calls fn on each line of a /proc file (NUL-terminated, no newline); a line longer than
 * the buffer (4 KiB) is dropped. */
void ms_procfile_each_line(const char *path, void (*fn)(const char *line, void *arg),
                           void *arg);

/* Reads a hexadecimal number at *p (an optional "0x" first) and moves *p past it. */
uintptr_t ms_procfile_parse_hex(const char **p);

/* The line of /proc/self/maps whose range holds addr. */
struct ms_procfile_mapping {
    uintptr_t lo, hi;
    uintptr_t below_hi;       /* the end of the mapping in front of it (0: none) */
    bool writable;
    bool grows_down;          /* the main thread's "[stack]" */
};

/* false when no mapping holds addr (or the file cannot be read). */
bool ms_procfile_mapping_of(uintptr_t addr, struct ms_procfile_mapping *out);

#endif
