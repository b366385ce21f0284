/* SPDX-License-Identifier: MIT */
/*
 * The trace layer (tracemalloc for C): a struct ms_allocator stacked on top of any mode.
 * While tracing, every malloc-like call records {size, interned traceback} for the block in
 * a table keyed by address; free removes it; realloc moves it.  Current and peak traced
 * memory are kept.  A block whose trace cannot be recorded is freed and the call fails
 * (NULL), as in CPython.  Blocks allocated before tracing started have no trace; freeing
 * them later simply finds none.
 *
 * The layer never allocates through malloc (tables come from ms_os_map) and never traces
 * memshim's own allocations (those run under the guard and never reach the layers).
 *
 * Hot path when tracing: one stack capture (lock-free), one traceback lookup (lock-free
 * when the traceback exists), one lock of one of 64 address shards.  When not tracing: one
 * relaxed load, then straight to the lower allocator.  Thread-safe; process-wide state
 * (one trace layer per process, as tracemalloc).
 */
#ifndef MS_TRACE_H
#define MS_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "allocator.h"
#include "fmt.h"
#include "traceback.h"

/* CPython's PYTHONTRACEMALLOC range. */
#define MS_TRACE_MAX_FRAMES 65535

/* Builds the layer over lower (copied) into *out; ctx is that copy, and every such wrapper
 * shares the process-wide trace state.  Call once per family (malloc, new, new[], ...), at
 * start-up or when tracing is first started at run time, before any block goes through
 * *out. */
void ms_trace_init(struct ms_allocator *out, const struct ms_allocator *lower);

/* Starts tracing with up to nframe frames per traceback (1..MS_TRACE_MAX_FRAMES; values
 * above MS_UNWIND_MAX_FRAMES are captured as that many).  Returns 0, -1 on a bad nframe.
 * Starting while tracing only changes the limit. */
int ms_trace_start(unsigned nframe);
/* Stops tracing and clears every trace (tracemalloc.stop()). */
void ms_trace_stop(void);
int ms_trace_is_tracing(void);
unsigned ms_trace_get_limit(void);

void ms_trace_get_traced_memory(size_t *current, size_t *peak);
/* Peak := current. */
void ms_trace_reset_peak(void);
/* Forgets every trace; current and peak become 0.  Tracing goes on. */
void ms_trace_clear_traces(void);
/* Bytes memshim mapped for tracing (tables and interned tracebacks). */
size_t ms_trace_get_memory(void);
size_t ms_trace_count(void);

/* tracemalloc's C API.  track: 0, -1 (no memory for the trace), -2 (not tracing);
 * untrack: 0 (also when there was no trace), -2 (not tracing). */
int ms_trace_track(unsigned domain, uintptr_t ptr, size_t size);
int ms_trace_untrack(unsigned domain, uintptr_t ptr);

/* The trace of a block: 0 and *size and *tb filled in, or -1 when it has none. */
int ms_trace_get(unsigned domain, uintptr_t ptr, size_t *size, const struct ms_traceback **tb);

/* Calls fn for every trace, shard by shard; fn must not allocate through the layers nor
 * call back into the trace layer (a shard lock is held). */
void ms_trace_foreach(void (*fn)(void *arg, unsigned domain, uintptr_t ptr, size_t size,
                                 const struct ms_traceback *tb),
                      void *arg);

/* The debug dump's part (SPEC 3.4): "Memory block allocated at (most recent call first):",
 * one line per frame (symbolize.h's form), then an empty line; nothing when p has no trace.
 * Also works for the block being freed or reallocated by this thread right now, whose trace
 * the layer has already taken out of the table. */
void ms_trace_print_block_traceback(struct ms_out *o, const void *p);

/* The debug dump's part for a freed block p: "Memory block allocated at" and "Memory block
 * freed at", each with its frames and an empty line, from freedtrace.h's ring; or one line
 * saying they were not kept. */
void ms_trace_print_freed_tracebacks(struct ms_out *o, const void *p);

/* Prints a traceback's frames (most recent first, the C library's start-up frames at the
 * bottom left out) in the dump's form. */
void ms_trace_print_traceback(struct ms_out *o, const struct ms_traceback *tb, int fatal);

/* The tracemalloc text report: "[ Top <limit> ]", the limit biggest allocation sites by
 * file and line of the most recent frame, the rest on one line, then current and peak. */
void ms_trace_report(struct ms_out *o, int limit);

/* tracemalloc's _format_size: size / count in B, KiB, MiB, GiB, TiB (count 1 for a size);
 * sign prints "+"/"-" as "%+" does (for diffs). */
void ms_trace_format_size(struct ms_out *o, int64_t size, uint64_t count, int sign);

/* fork(): take every layer lock before fork and release (parent) / reinitialise (child). */
void ms_trace_fork_prepare(void);
void ms_trace_fork_parent(void);
void ms_trace_fork_child(void);

/* The timeline (trace_timeline.c): traced memory over time, a sample per
 * MS_TIMELINE_STEP bytes of change and per 10 ms (looked at every 64 traced calls). */
#define MS_TIMELINE_STEP ((size_t)1 << 20)

struct ms_timeline_sample {
    uint64_t ns;     /* since tracing started */
    uint64_t current; /* traced bytes */
};

void ms_timeline_start(size_t current);
void ms_timeline_add(size_t current);
/* Is a time-based sample due?  Cheap: a per-thread counter, a clock read one call in 64. */
int ms_timeline_due(void);
/* Adds a last sample for now, then calls fn for every sample, oldest first. */
void ms_timeline_foreach(size_t current, void (*fn)(void *arg, const struct ms_timeline_sample *s),
                         void *arg);
void ms_timeline_fork_child(void);

/* Test hook: replace the table mapper (NULL: ms_os_map) to inject failures. */
void ms_trace_set_mapper(void *(*map)(size_t size));

#endif
