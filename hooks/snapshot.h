/* SPDX-License-Identifier: MIT */
/*
 * Snapshots: every live trace, the tracebacks they use, those tracebacks' frames
 * (symbolised), the totals and the timeline, written as one JSON document for
 * scripts/memshim-report (the format is described in snapshot.c and versioned).
 *
 * Never calls malloc itself (tables from ms_os_map; symbolisation raises the guard); writes
 * with write(2) through struct ms_out.  Not on the allocation path.  MS_SNAPSHOT_RAW is for
 * fatal signals: no libdw (it allocates, and the C library's heap may be what crashed), only
 * module paths and offsets from the program headers.
 */
#ifndef MS_SNAPSHOT_H
#define MS_SNAPSHOT_H

#include <stddef.h>

#define MS_SNAPSHOT_VERSION 1

enum ms_snapshot_flags {
    MS_SNAPSHOT_SYMBOLS = 0, /* functions, files and lines (libdw) */
    MS_SNAPSHOT_RAW = 1,     /* module and offset only: safe(r) in a crash handler */
};

/* Writes the snapshot to fd.  0, or -1 when not tracing or out of memory for the tables
 * (then what was written is incomplete JSON). */
int ms_snapshot_write(int fd, enum ms_snapshot_flags flags);

/* MEMSHIM_SNAPSHOT's pattern: "%p" becomes pid, "%%" a '%'.  0, or -1 if out is too small. */
int ms_snapshot_path(char *out, size_t size, const char *pattern, long pid);

#endif
