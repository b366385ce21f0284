/* SPDX-License-Identifier: MIT */
/*
 * Benchmark workload: two threads freeing each other's blocks.
 *
 * Each thread allocates a batch of BATCH blocks (random sizes 8..512, first byte written),
 * hands the whole batch to the other thread through a single-producer/single-consumer ring,
 * and frees every block of the batches the other thread handed to it. So every block is freed
 * by the thread that did not allocate it: the allocator's remote-free path is what is timed.
 * The ring moves whole batches (one atomic store per BATCH blocks) and its slots are arrays
 * inside the ring, so the hand-off itself costs next to nothing and allocates nothing.
 * While its outgoing ring is full a thread keeps draining its incoming one, so neither can
 * wait for the other forever.
 *
 * Not part of the library: an ordinary program run under LD_PRELOAD by scripts/bench.
 * Usage: xthread [BLOCKS, default 5000000] [BATCH, default 64] [MODE: swap (default) | pc]
 * pc: thread 0 only allocates and thread 1 only frees (producer/consumer, BLOCKS in all);
 * swap: both threads allocate BLOCKS each and free the other's.
 * Prints a checksum of the sizes freed, the same under every allocator.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_rng.h"

#define XT_RING_SLOTS 16   /* batches in flight per direction */
#define XT_MAX_BATCH 4096

struct xt_ring {
	_Alignas(64) atomic_ulong head;   /* next slot the consumer reads */
	_Alignas(64) atomic_ulong tail;   /* next slot the producer fills */
	_Alignas(64) unsigned char *slot[XT_RING_SLOTS][XT_MAX_BATCH];
};

struct xt_thread {
	struct xt_ring *out;   /* this thread produces into it */
	struct xt_ring *in;    /* this thread consumes from it */
	unsigned long blocks;
	unsigned long batch;
	uint64_t seed;
	uint64_t checksum;     /* over the blocks this thread freed */
	atomic_int done;       /* set once this thread has produced its last batch */
	struct xt_thread *peer;
};

static unsigned long xt_batch;

/* Free every batch waiting in the ring; returns how many batches it took. */
static unsigned long xt_drain(struct xt_ring *in, uint64_t *sum)
{
	unsigned long head = atomic_load_explicit(&in->head, memory_order_relaxed);
	unsigned long tail = atomic_load_explicit(&in->tail, memory_order_acquire);
	unsigned long got = tail - head;

	for (; head != tail; head++) {
		unsigned char **b = in->slot[head % XT_RING_SLOTS];
		for (unsigned long i = 0; i < xt_batch; i++) {
			*sum += b[i][0];
			free(b[i]);
		}
		atomic_store_explicit(&in->head, head + 1, memory_order_release);
	}
	return got;
}

static void *xt_run(void *arg)
{
	struct xt_thread *t = arg;
	unsigned long batches = t->blocks / t->batch;
	uint64_t s = t->seed, sum = 0;

	for (unsigned long n = 0; n < batches; n++) {
		unsigned long tail = atomic_load_explicit(&t->out->tail, memory_order_relaxed);

		while (tail - atomic_load_explicit(&t->out->head, memory_order_acquire)
		       >= XT_RING_SLOTS) {
			if (!xt_drain(t->in, &sum))
				sched_yield();
		}
		unsigned char **b = t->out->slot[tail % XT_RING_SLOTS];
		for (unsigned long i = 0; i < t->batch; i++) {
			uint64_t r = bench_xorshift64(&s);
			size_t sz = (size_t)bench_range(r, 8, 512);   /* 8..512 */
			b[i] = malloc(sz);
			if (!b[i]) {
				fputs("xthread: malloc failed\n", stderr);
				exit(2);
			}
			b[i][0] = (unsigned char)sz;
		}
		atomic_store_explicit(&t->out->tail, tail + 1, memory_order_release);
		xt_drain(t->in, &sum);
	}
	/* The peer may still be waiting for room in the ring we consume: keep draining
	 * until it has produced everything. */
	atomic_store_explicit(&t->done, 1, memory_order_release);
	while (!atomic_load_explicit(&t->peer->done, memory_order_acquire))
		if (!xt_drain(t->in, &sum))
			sched_yield();
	t->checksum = sum;
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long blocks = argc > 1 ? strtoul(argv[1], NULL, 10) : 5000000UL;
	unsigned long batch = argc > 2 ? strtoul(argv[2], NULL, 10) : 64;
	static struct xt_ring ring[2];
	struct xt_thread t[2];
	pthread_t tid[2];
	uint64_t total = 0;
	int swap = !(argc > 3 && argv[3][0] == 'p');

	if (batch < 1 || batch > XT_MAX_BATCH) {
		fputs("usage: xthread [BLOCKS] [BATCH 1..4096] [swap|pc]\n", stderr);
		return 2;
	}
	xt_batch = batch;
	/* Both descriptors are complete before either thread starts: each reads its peer's. */
	for (int i = 0; i < 2; i++)
		t[i] = (struct xt_thread){ .out = &ring[i], .in = &ring[1 - i],
			.blocks = (i == 0 || swap) ? blocks : 0,
			.batch = batch, .seed = 0x9E3779B97F4A7C15ULL * (unsigned)(i + 1),
			.peer = &t[1 - i] };
	for (int i = 0; i < 2; i++) {
		if (pthread_create(&tid[i], NULL, xt_run, &t[i])) {
			fputs("xthread: pthread_create failed\n", stderr);
			return 2;
		}
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(tid[i], NULL);
		total += t[i].checksum;
	}
	/* Whatever is still in flight after both threads stopped: freed here, by a third
	 * thread, and counted so the checksum covers every block. */
	for (int i = 0; i < 2; i++)
		xt_drain(&ring[i], &total);
	printf("xthread mode=%s blocks=%lu batch=%lu checksum=%llu\n", swap ? "swap" : "pc",
	       blocks / batch * batch, batch, (unsigned long long)total);
	return 0;
}
