/* SPDX-License-Identifier: MIT */
/*
 * A tiny output formatter for reports and diagnostics: text is built in a caller-owned
 * fixed buffer and written to a file descriptor with write(2), flushing when the buffer
 * fills.  It exists because memshim must be able to print from inside malloc, from a
 * signal handler and on a corrupted heap.
 *
 * Never: allocates, calls stdio, or fails loudly (write errors are ignored: a report that
 * cannot be written must not take the program down).  Not thread-safe per ms_out; each
 * report uses its own on the stack.
 */
#ifndef MS_FMT_H
#define MS_FMT_H

#include <stddef.h>
#include <stdint.h>

struct ms_out {
    int fd;            /* < 0: collect only (tests read buf) */
    size_t len;
    char buf[1024];
};

void ms_out_init(struct ms_out *o, int fd);
void ms_out_flush(struct ms_out *o);
void ms_out_str(struct ms_out *o, const char *s);
void ms_out_mem(struct ms_out *o, const char *s, size_t n);
void ms_out_char(struct ms_out *o, char c);
/* Unsigned decimal, right-aligned in width columns (0: no padding). */
void ms_out_udec(struct ms_out *o, uint64_t v, int width);
/* Signed decimal. */
void ms_out_sdec(struct ms_out *o, int64_t v, int width);
/* Unsigned decimal with thousands commas ("1,048,576"), right-aligned in width columns. */
void ms_out_ucomma(struct ms_out *o, uint64_t v, int width);
/* Lowercase hex without prefix, at least min_digits digits (zero-padded). */
void ms_out_hex(struct ms_out *o, uint64_t v, int min_digits);
/* A pointer as "0x" + lowercase hex, like printf("%p"). */
void ms_out_ptr(struct ms_out *o, const void *p);
/* s left-aligned and space-padded to width columns. */
void ms_out_pad(struct ms_out *o, const char *s, int width);

#endif
