/* SPDX-License-Identifier: MIT */
/*
 * Benchmark workload: does memory go back to the OS after a program frees its small blocks?
 *
 * Allocates TOTAL MiB (default 200) in blocks of random sizes 16..512, touching each one,
 * then frees all of them in a shuffled order, and reports its own resident set size from
 * /proc/self/statm at three points: at start, with everything allocated, and after the frees.
 * An allocator that returns emptied arenas to the OS ends near the start figure. The pointer
 * table comes from mmap, not malloc, so it does not count against the allocator.
 *
 * Not part of the library: an ordinary program run under LD_PRELOAD by scripts/bench, which
 * parses the line "release ... rss_start_kib=A rss_full_kib=B rss_after_free_kib=C
 * rss_settled_kib=D" (D: half a second of light malloc/free activity after the frees).
 * Usage: release [TOTAL MiB, default 200]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench_rng.h"

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, resident = 0;

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

int main(int argc, char **argv)
{
	unsigned long mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 200;
	size_t target = (size_t)mib << 20, got = 0, n = 0;
	size_t cap = target / 16 + 1;   /* enough slots even if every block were 16 bytes */
	unsigned char **p = mmap(NULL, cap * sizeof *p, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t s = 0x243F6A8885A308D3ULL;
	long start, full, after, settled;

	if (p == MAP_FAILED) {
		perror("release: mmap");
		return 2;
	}
	start = rss_kib();
	while (got < target) {
		size_t sz = (size_t)bench_range(bench_xorshift64(&s), 16, 512);   /* 16..512 */
		p[n] = malloc(sz);
		if (!p[n]) {
			fputs("release: malloc failed\n", stderr);
			return 2;
		}
		for (size_t i = 0; i < sz; i += 64)
			p[n][i] = 1;
		got += sz;
		n++;
	}
	full = rss_kib();
	/* Fisher-Yates with the same generator: frees land all over the arenas, as in a real
	 * program, rather than emptying them one after another. */
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)(bench_xorshift64(&s) % (i + 1));
		unsigned char *t = p[i];
		p[i] = p[j];
		p[j] = t;
	}
	for (size_t i = 0; i < n; i++)
		free(p[i]);
	after = rss_kib();
	/* Allocators that purge with a delay (jemalloc's decay, mimalloc's purge delay,
	 * tcmalloc's gradual release) do it on later allocator calls: give them half a second
	 * of light activity, then measure again. */
	for (int round = 0; round < 10; round++) {
		usleep(50000);
		for (int i = 0; i < 1000; i++) {
			void *q = malloc(16 + (size_t)(i % 497));
			if (q)
				((volatile unsigned char *)q)[0] = 1;
			free(q);
		}
	}
	settled = rss_kib();
	printf("release blocks=%zu bytes=%zu rss_start_kib=%ld rss_full_kib=%ld "
	       "rss_after_free_kib=%ld rss_settled_kib=%ld\n", n, got, start, full, after,
	       settled);
	munmap(p, cap * sizeof *p);
	return 0;
}
