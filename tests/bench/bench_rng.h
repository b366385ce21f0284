/* SPDX-License-Identifier: MIT */
/*
 * The fixed-seed generator every benchmark workload uses, so that a run does the same
 * requests under every allocator. Header-only; workload programs only, not the library.
 */
#ifndef MS_BENCH_RNG_H
#define MS_BENCH_RNG_H

#include <stdint.h>

static inline uint64_t bench_xorshift64(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* lo..hi from the high 32 bits of r, by multiply-shift rather than a division. */
static inline uint64_t bench_range(uint64_t r, uint64_t lo, uint64_t hi)
{
	return lo + (((r >> 32) * (hi - lo + 1)) >> 32);
}

#endif
