/* SPDX-License-Identifier: MIT */
/*
 * The debug block layout (SPEC 3.1, CPython's PYMEM_DEBUG_SERIALNO layout): the one place
 * that knows where the size, the API id, the pads and the serial number sit around p.
 *
 *   p-2S .. p-S-1     N, the requested size, big-endian
 *   p-S               API id
 *   p-S+1 .. p-1      S-1 x FORBIDDENBYTE
 *   p .. p+N-1        data (CLEANBYTE after malloc, 0 after calloc)
 *   p+N .. p+N+S-1    S x FORBIDDENBYTE
 *   p+N+S .. +2S-1    serial number, big-endian
 *
 * Inline helpers only; hot path.  Never allocates, never prints.
 */
#ifndef MS_DEBUG_LAYOUT_H
#define MS_DEBUG_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MS_DEBUG_S ((size_t)sizeof(size_t))
#define MS_DEBUG_HEAD (2 * MS_DEBUG_S)          /* bytes in front of p */
#define MS_DEBUG_TAIL (2 * MS_DEBUG_S)          /* bytes after the data */
#define MS_DEBUG_OVERHEAD (MS_DEBUG_HEAD + MS_DEBUG_TAIL)

/* CPython's byte values (Include/internal/pycore_pymem.h). */
#define MS_FORBIDDENBYTE 0xFD
#define MS_CLEANBYTE 0xCD
#define MS_DEADBYTE 0xDD

/* Largest request the layer serves: the live table keeps sizes in 48 bits (256 TiB), and
 * size + overhead + alignment slack must not wrap. */
#define MS_DEBUG_MAX_REQUEST (((size_t)1 << 48) - 1)

static inline void ms_layout_put_be(uint8_t *at, uint64_t v)
{
    v = __builtin_bswap64(v);
    memcpy(at, &v, sizeof v);
}

static inline uint64_t ms_layout_get_be(const uint8_t *at)
{
    uint64_t v;
    memcpy(&v, at, sizeof v);
    return __builtin_bswap64(v);
}

/* Write the header in front of p and the trailer after its n data bytes. */
static inline void ms_layout_decorate(uint8_t *p, size_t n, char api, uint64_t serial)
{
    ms_layout_put_be(p - MS_DEBUG_HEAD, n);
    p[-(ptrdiff_t)MS_DEBUG_S] = (uint8_t)api;
    memset(p - MS_DEBUG_S + 1, MS_FORBIDDENBYTE, MS_DEBUG_S - 1);
    memset(p + n, MS_FORBIDDENBYTE, MS_DEBUG_S);
    ms_layout_put_be(p + n + MS_DEBUG_S, serial);
}

static inline size_t ms_layout_size(const uint8_t *p)
{
    return (size_t)ms_layout_get_be(p - MS_DEBUG_HEAD);
}

static inline char ms_layout_api(const uint8_t *p)
{
    return (char)p[-(ptrdiff_t)MS_DEBUG_S];
}

/* Offset of the first byte in s[0..n) that is not `byte`, or n.  Word at a time: the
 * quarantine verifies every freed byte with it. */
static inline size_t ms_layout_first_not(const uint8_t *s, size_t n, uint8_t byte)
{
    uint64_t pattern = 0x0101010101010101ull * byte;
    size_t i = 0;
    while (i < n && ((uintptr_t)(s + i) & 7))
        if (s[i] != byte)
            return i;
        else
            i++;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w != pattern)
            break;
    }
    for (; i < n; i++)
        if (s[i] != byte)
            return i;
    return n;
}

static inline uint64_t ms_layout_word(const uint8_t *s)
{
    uint64_t w;
    memcpy(&w, s, sizeof w);
    return w;
}

#if defined(__SSE2__)
#include <emmintrin.h>

/* Nonzero when some byte of x is not zero. */
static inline int ms_layout_any_set(__m128i x)
{
    return _mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_setzero_si128())) != 0xFFFF;
}
#endif

/* Is all of s[0..n) `byte`?  The quarantine runs it over every byte it releases, so it is
 * the debug modes' busiest loop after memset: 64 bytes a round in SSE2 registers (every
 * x86-64 has them; 3.6x fewer instructions than words under debug churn), else 32 in
 * words, with one branch a round and an overlapping load for the ragged end (a byte loop
 * there was a third of the verifier's time). */
static inline bool ms_layout_all(const uint8_t *s, size_t n, uint8_t byte)
{
    uint64_t pattern = 0x0101010101010101ull * byte;
#if defined(__SSE2__)
    if (n >= 16) {
        __m128i pat = _mm_set1_epi8((char)byte);
        __m128i diff = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(s + n - 16)), pat);
        size_t i = 0;
        for (; i + 64 <= n; i += 64) {
            __m128i a = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(s + i)), pat);
            __m128i b = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(s + i + 16)), pat);
            __m128i c = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(s + i + 32)), pat);
            __m128i d = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(s + i + 48)), pat);
            diff = _mm_or_si128(diff, _mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d)));
            if (ms_layout_any_set(diff))
                return false;
        }
        for (; i + 16 <= n; i += 16)
            diff = _mm_or_si128(diff, _mm_xor_si128(_mm_loadu_si128((const __m128i *)(s + i)), pat));
        return !ms_layout_any_set(diff);
    }
#endif
    if (n < 8)
        return ms_layout_first_not(s, n, byte) == n;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        uint64_t diff = (ms_layout_word(s + i) ^ pattern) | (ms_layout_word(s + i + 8) ^ pattern)
                        | (ms_layout_word(s + i + 16) ^ pattern)
                        | (ms_layout_word(s + i + 24) ^ pattern);
        if (diff != 0)
            return false;
    }
    uint64_t diff = ms_layout_word(s + n - 8) ^ pattern;
    for (; i + 8 <= n; i += 8)
        diff |= ms_layout_word(s + i) ^ pattern;
    return diff == 0;
}

#endif
