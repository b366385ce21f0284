/* SPDX-License-Identifier: MIT */
/*
 * Benchmark workload: small-object churn, in one thread or several private ones.
 *
 * Each thread keeps a working set of LIVE slots and, OPS times, frees a random slot and refills
 * it with a block of a random size in 8..512 bytes (the sizes pymalloc serves), writing its
 * first and last bytes so the block is really touched. Threads never share blocks, so with
 * THREADS = 2 this is the "private 2-thread churn" workload of issue 2, with 1 the
 * "single-thread small-object churn". A fixed-seed xorshift generator makes every run do the
 * same requests; the checksum printed at the end depends only on the sizes and must be the
 * same under every allocator (scripts/bench compares it with glibc's).
 *
 * Not part of the library: an ordinary program run under LD_PRELOAD by scripts/bench.
 * Usage: churn [OPS per thread, default 50000000] [THREADS, default 1] [LIVE, default 4096]
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_rng.h"

struct churn_job {
	unsigned long ops;
	unsigned long live;
	uint64_t seed;
	uint64_t checksum;
};

static void *churn_run(void *arg)
{
	struct churn_job *job = arg;
	unsigned char **slot = calloc(job->live, sizeof *slot);
	size_t *len = calloc(job->live, sizeof *len);
	uint64_t s = job->seed, sum = 0;

	if (!slot || !len) {
		fputs("churn: out of memory for the slot table\n", stderr);
		exit(2);
	}
	for (unsigned long i = 0; i < job->ops; i++) {
		uint64_t r = bench_xorshift64(&s);
		/* Multiply-shift instead of %: a division per operation would be a
		 * large fixed cost next to a fast allocator's ~20 ns. */
		unsigned long k = (unsigned long)(((r & 0xffffffffu) * job->live) >> 32);
		size_t n = (size_t)bench_range(r, 8, 512);   /* 8..512 */

		if (slot[k]) {
			/* Read back what we wrote: a broken allocator that hands out
			 * overlapping blocks shows up as a wrong checksum. */
			sum += slot[k][0] + slot[k][len[k] - 1];
			free(slot[k]);
		}
		slot[k] = malloc(n);
		if (!slot[k]) {
			fputs("churn: malloc failed\n", stderr);
			exit(2);
		}
		slot[k][0] = (unsigned char)n;
		slot[k][n - 1] = (unsigned char)(n >> 1);
		len[k] = n;
	}
	for (unsigned long k = 0; k < job->live; k++) {
		if (slot[k])
			sum += slot[k][0] + slot[k][len[k] - 1];
		free(slot[k]);
	}
	free(slot);
	free(len);
	job->checksum = sum;
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long ops = argc > 1 ? strtoul(argv[1], NULL, 10) : 50000000UL;
	unsigned long threads = argc > 2 ? strtoul(argv[2], NULL, 10) : 1;
	unsigned long live = argc > 3 ? strtoul(argv[3], NULL, 10) : 4096;
	struct churn_job job[64];
	pthread_t tid[64];
	uint64_t total = 0;

	if (threads < 1 || threads > 64 || live < 1) {
		fputs("usage: churn [OPS] [THREADS 1..64] [LIVE >= 1]\n", stderr);
		return 2;
	}
	for (unsigned long t = 0; t < threads; t++) {
		job[t] = (struct churn_job){ .ops = ops, .live = live,
			.seed = 0x9E3779B97F4A7C15ULL * (t + 1) };
		if (threads == 1) {
			churn_run(&job[t]);
		} else if (pthread_create(&tid[t], NULL, churn_run, &job[t])) {
			fputs("churn: pthread_create failed\n", stderr);
			return 2;
		}
	}
	for (unsigned long t = 0; t < threads; t++) {
		if (threads > 1)
			pthread_join(tid[t], NULL);
		total += job[t].checksum;
	}
	printf("churn ops=%lu threads=%lu live=%lu checksum=%llu\n", ops, threads, live,
	       (unsigned long long)total);
	return 0;
}
