/* SPDX-License-Identifier: MIT */
/*
 * Implementation of the allocation-free formatter (see fmt.h).  Not on the hot path.
 */
#include "fmt.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

void ms_out_init(struct ms_out *o, int fd)
{
    o->fd = fd;
    o->len = 0;
}

void ms_out_flush(struct ms_out *o)
{
    if (o->fd < 0)
        return;
    size_t done = 0;
    int saved_errno = errno;
    while (done < o->len) {
        ssize_t n = write(o->fd, o->buf + done, o->len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    errno = saved_errno;
    o->len = 0;
}

void ms_out_mem(struct ms_out *o, const char *s, size_t n)
{
    while (n > 0) {
        if (o->len == sizeof o->buf) {
            if (o->fd < 0)
                return; /* collect-only buffer is full: truncate */
            ms_out_flush(o);
        }
        size_t room = sizeof o->buf - o->len;
        size_t take = n < room ? n : room;
        memcpy(o->buf + o->len, s, take);
        o->len += take;
        s += take;
        n -= take;
    }
}

void ms_out_str(struct ms_out *o, const char *s)
{
    ms_out_mem(o, s, strlen(s));
}

void ms_out_char(struct ms_out *o, char c)
{
    ms_out_mem(o, &c, 1);
}

static void out_padded(struct ms_out *o, const char *digits, size_t n, int width)
{
    for (int i = (int)n; i < width; i++)
        ms_out_char(o, ' ');
    ms_out_mem(o, digits, n);
}

void ms_out_udec(struct ms_out *o, uint64_t v, int width)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    out_padded(o, tmp + i, sizeof tmp - i, width);
}

void ms_out_sdec(struct ms_out *o, int64_t v, int width)
{
    char tmp[24];
    size_t i = sizeof tmp;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[--i] = '-';
    out_padded(o, tmp + i, sizeof tmp - i, width);
}

void ms_out_ucomma(struct ms_out *o, uint64_t v, int width)
{
    char tmp[32];
    size_t i = sizeof tmp;
    int group = 0;
    do {
        if (group == 3) {
            tmp[--i] = ',';
            group = 0;
        }
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
        group++;
    } while (v);
    out_padded(o, tmp + i, sizeof tmp - i, width);
}

void ms_out_hex(struct ms_out *o, uint64_t v, int min_digits)
{
    char tmp[16];
    int n = 0;
    do {
        tmp[15 - n] = "0123456789abcdef"[v & 15];
        v >>= 4;
        n++;
    } while (v);
    for (int i = n; i < min_digits; i++)
        ms_out_char(o, '0');
    ms_out_mem(o, tmp + 16 - n, (size_t)n);
}

void ms_out_ptr(struct ms_out *o, const void *p)
{
    ms_out_str(o, "0x");
    ms_out_hex(o, (uint64_t)(uintptr_t)p, 1);
}

void ms_out_pad(struct ms_out *o, const char *s, int width)
{
    size_t n = strlen(s);
    ms_out_mem(o, s, n);
    for (int i = (int)n; i < width; i++)
        ms_out_char(o, ' ');
}
