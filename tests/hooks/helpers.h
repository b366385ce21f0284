/* SPDX-License-Identifier: MIT */
/*
 * Test helpers for the debug layer: fake lower allocators over glibc (one that can be told
 * to fail, one whose realloc always moves and never frees the old block so the test can
 * read what the layer left there), a per-test set-up, and fatal-path runners that fork a
 * child, capture what the layer writes to its fd, and report the signal.
 */
#ifndef MS_TEST_HOOKS_HELPERS_H
#define MS_TEST_HOOKS_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "allocator.h"
#include "debug.h"

struct fake_lower {
    int fail_after;          /* < 0: never fail; else the calls left before failing */
    bool realloc_moves;      /* realloc = malloc + copy, old block leaked (readable) */
    size_t mallocs, frees, reallocs, memaligns;
};

extern struct fake_lower fake;

struct ms_allocator fake_allocator(void);

/* ms_debug_init over the fake lower with the given quarantine and fd; resets counters. */
void debug_setup_fd(size_t quarantine, int fd);
void debug_setup(size_t quarantine);

/* The five API allocators, by id. */
struct ms_allocator api(char id);

/* Callbacks and break settings the child's config starts from (lower, quarantine and fd
 * are set by run_child). */
extern struct ms_debug_config child_template;

/* Fork; in the child set the layer up (quarantine, fd = a pipe) and run fn(arg), then
 * exit 0.  The parent collects the text into out (NUL-terminated) and returns the
 * child's termination signal (0 if it exited). */
int run_child(size_t quarantine, void (*fn)(void *), void *arg, char *out, size_t cap);

/* Mask addresses (0x + 5 or more hex digits -> 0xADDR) and serial numbers (#digits ->
 * #N) in place, so golden texts can be compared. */
void mask(char *s);

/* run_child, then assert SIGABRT and the masked text equal to want. */
void expect_fatal(size_t quarantine, void (*fn)(void *), void *arg, const char *want);

#endif
