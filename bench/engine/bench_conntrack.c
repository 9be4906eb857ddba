/* bench_conntrack.c — lookups per second in the connection table at 5,000
 * and 1,000,000 entries, to show that lookup cost does not grow with the
 * table (the index keeps ≤ 2 keys per bucket at any size).
 *
 * Two access patterns per size: uniformly random over every flow (at 1M
 * entries this is dominated by cache misses: the table is ~130 MB) and a
 * working set of 1,000 busy flows (what a firewall mostly sees), plus
 * misses. Times are process CPU time (the build machine is shared), so
 * they exclude waiting for the CPU but not cache pollution by neighbours.
 * Standalone, never a timed assertion. `make build/bench_conntrack`
 * (mk/bench.mk) links it with the -O2 core, build/host/libcore.a; run it
 * with no arguments, or with the capacities to measure. scripts/bench-engine
 * runs it after the router benchmark (bench_engine.c), which measures the
 * same question through the whole data path. */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/csprng.h"
#include "fw/conntrack.h"

_Noreturn void platform_panic(const char *message);
_Noreturn void platform_panic(const char *message)
{
	(void)fprintf(stderr, "PANIC: %s\n", message);
	abort();
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static struct ip_addr v4(uint32_t x)
{
	const uint8_t b[4] = {(uint8_t)(x >> 24), (uint8_t)(x >> 16), (uint8_t)(x >> 8), (uint8_t)x};
	return ip_from_v4(b);
}

#define T0 1000000000000ull

/* Runs `rounds` passes of lookups over keys[order[i]]; returns lookups/s. */
static double run(struct conntrack *ct, const struct ct_tuple *keys, const uint32_t *order,
		  uint32_t n, int rounds, uint32_t *found)
{
	uint32_t hits = 0;
	double t = now_s();
	for (int r = 0; r < rounds; r++)
		for (uint32_t i = 0; i < n; i++)
			hits += conntrack_lookup(ct, &keys[order[i]], T0, NULL) != NULL;
	t = now_s() - t;
	*found = hits;
	return (double)n * rounds / t;
}

static void bench(uint32_t capacity)
{
	size_t need = conntrack_memory_needed(capacity);
	void *mem = malloc(need);
	struct conntrack *ct = conntrack_init(mem, need, capacity);
	if (!ct) {
		(void)fprintf(stderr, "init failed\n");
		exit(1);
	}
	/* Every flow stored under both tuples; keys[2i] original, keys[2i+1] reply. */
	struct ct_tuple *keys = malloc(sizeof(*keys) * 2 * (size_t)capacity);
	struct ip_addr nat = v4(0x0a00020fu);
	double t = now_s();
	for (uint32_t i = 0; i < capacity; i++) {
		struct ip_addr client = v4(0x0a890000u | (i % 250));
		struct ip_addr remote = v4(csprng_u32());
		struct ct_tuple o = ct_tuple_make(CT_PROTO_TCP, &client, (uint16_t)(1024 + i % 60000),
						  &remote, 443);
		struct ct_tuple r;
		if (conntrack_alloc_nat_port(ct, &o, &nat, T0, &r) != CT_OK ||
		    conntrack_insert(ct, &o, &r, CT_TCP_SYN, T0, NULL) != CT_OK) {
			(void)fprintf(stderr, "insert %u failed\n", i);
			exit(1);
		}
		keys[2 * (size_t)i] = o;
		keys[2 * (size_t)i + 1] = r;
	}
	double insert_rate = capacity / (now_s() - t);

	const uint32_t n = 2000000;
	uint32_t *order = malloc(sizeof(*order) * n);
	uint32_t found;
	/* Uniformly random over all flows, both directions. */
	for (uint32_t i = 0; i < n; i++)
		order[i] = csprng_uniform(2 * capacity);
	double random_rate = run(ct, keys, order, n, 3, &found);
	if (found != 3 * n)
		(void)fprintf(stderr, "unexpected misses\n");
	/* A working set of 1,000 flows. */
	for (uint32_t i = 0; i < n; i++)
		order[i] = csprng_uniform(2000);
	double hot_rate = run(ct, keys, order, n, 3, &found);
	/* Misses: reply tuples with a port nobody has. */
	struct ct_tuple *miss = malloc(sizeof(*miss) * 4096);
	for (uint32_t i = 0; i < 4096; i++) {
		miss[i] = keys[2 * csprng_uniform(capacity) + 1];
		miss[i].sport = 444;
	}
	for (uint32_t i = 0; i < n; i++)
		order[i] = i & 4095;
	double miss_rate = run(ct, miss, order, n, 3, &found);
	if (found)
		(void)fprintf(stderr, "unexpected hits\n");

	(void)printf("%9u entries  %6.1f MiB  longest chain %2u  insert+alloc %6.2f M/s  "
	       "lookup: random %6.2f M/s (%5.1f ns)  hot-1000 %6.2f M/s (%5.1f ns)  "
	       "miss %6.2f M/s\n",
	       capacity, (double)need / 1048576.0, conntrack_longest_chain(ct), insert_rate / 1e6,
	       random_rate / 1e6, 1e9 / random_rate, hot_rate / 1e6, 1e9 / hot_rate,
	       miss_rate / 1e6);
	free(miss);
	free(order);
	free(keys);
	free(mem);
}

int main(int argc, char **argv)
{
	uint8_t seed[32];
	FILE *f = fopen("/dev/urandom", "rb");
	if (!f || fread(seed, 1, sizeof(seed), f) != sizeof(seed)) {
		(void)fprintf(stderr, "no /dev/urandom\n");
		return 1;
	}
	(void)fclose(f);
	csprng_seed(seed, sizeof(seed));
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			bench((uint32_t)strtoul(argv[i], NULL, 10));
		return 0;
	}
	bench(5000);
	bench(1000000);
	return 0;
}
