/* dpdk-pool-bench: DPDK's buffer pool measured exactly as bench/src/bin/pool-bench.rs
 * measures ours, so that scripts/bench-micro.sh can put the two side by side.
 *
 * Built against the system's libdpdk (Debian bookworm: DPDK 22.11) by bench-micro.sh:
 *   cc -O3 dpdk-pool-bench.c $(pkg-config --cflags --libs libdpdk)
 * Run: dpdk-pool-bench <EAL args, e.g. -l 0-1 --no-pci --no-huge -m 512> --
 *          [--seconds S] [--impl raw,mbuf]
 *
 * The cases are pool-bench's: a pool of 16384 mbufs (2048 B of data room after 128 B of
 * headroom), per-lcore cache 512 then 0 (one fresh pool each), 1 core (the main lcore)
 * then 2 cores (main + first worker), bulk 1, 4, 8, 32. Each core takes `bulk` buffers at
 * a time until it holds n_keep = 128, then gives them back `bulk` at a time in the same
 * order, and looks at the TSC every 65,536 objects until S seconds have passed. Its lcore
 * cache is flushed at the end of a case, as pool-bench drops its PoolCache.
 *
 * Two ways to take and give, each a separate `impl`:
 *   raw:  rte_mempool_get_bulk / rte_mempool_put_bulk (what mempool_perf_autotest times:
 *         pointers only, the mbufs are never touched)
 *   mbuf: rte_pktmbuf_alloc_bulk (resets each mbuf) / rte_pktmbuf_free_bulk (reads each
 *         mbuf's refcnt, flags, next and pool)
 *
 * One line per case, in pool-bench's format (the script reads them):
 *   pool impl=dpdk_raw cache=512 cores=1 bulk=32 n_keep=128 mops=X
 *        cycles_per_obj=Y ns_per_obj=Z
 * cycles_per_obj is the TSC cycles of one get plus one put, per core:
 * cores / sum over cores of (objects / cycles). */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_pause.h>
#include <rte_version.h>

#define POOL_SIZE 16384u
#define N_KEEP 128u
#define N_BETWEEN_CHECKS 65536u

static const unsigned int bulks[] = {1, 4, 8, 32};
static const unsigned int caches[] = {512, 0};

enum impl { IMPL_RAW, IMPL_MBUF };
static const char *const impl_names[] = {"dpdk_raw", "dpdk_mbuf"};

/* What one core is asked to do and what it did. */
struct core_run {
	struct rte_mempool *mp;
	enum impl impl;
	unsigned int bulk;
	unsigned int cores;
	uint64_t budget; /* TSC cycles */
	uint64_t objects;
	uint64_t cycles;
	int failed;
};

/* Spin barrier: every core starts its clock at about the same time. */
static unsigned int arrived;

static void
arrive(unsigned int cores)
{
	/* ACQ_REL add and ACQUIRE loads pair with the other cores' adds: no core
	 * starts its clock before every core has arrived. */
	__atomic_add_fetch(&arrived, 1, __ATOMIC_ACQ_REL);
	while (__atomic_load_n(&arrived, __ATOMIC_ACQUIRE) < cores)
		rte_pause();
}

/* The per-core loop. The bulk size is a run-time value (struct field), as in
 * pool-bench, so the compiler cannot specialise the copy loops for it. */
static int
core_loop(void *arg)
{
	struct core_run *run = arg;
	void *objs[N_KEEP];
	struct rte_mbuf **mbufs = (struct rte_mbuf **)objs;
	const unsigned int bulk = run->bulk;
	uint64_t objects = 0, start, now;
	unsigned int i, k;
	int failed = 0;

	arrive(run->cores);
	start = rte_rdtsc();
	for (;;) {
		for (k = 0; k < N_BETWEEN_CHECKS / N_KEEP; k++) {
			if (run->impl == IMPL_RAW) {
				for (i = 0; i < N_KEEP; i += bulk)
					failed |= rte_mempool_get_bulk(run->mp, &objs[i], bulk);
				for (i = 0; i < N_KEEP; i += bulk)
					rte_mempool_put_bulk(run->mp, &objs[i], bulk);
			} else {
				for (i = 0; i < N_KEEP; i += bulk)
					failed |= rte_pktmbuf_alloc_bulk(run->mp, &mbufs[i], bulk);
				for (i = 0; i < N_KEEP; i += bulk)
					rte_pktmbuf_free_bulk(&mbufs[i], bulk);
			}
			if (failed)
				break;
		}
		objects += N_BETWEEN_CHECKS;
		now = rte_rdtsc();
		if (failed || now - start >= run->budget)
			break;
	}
	/* Hand the cached objects back, so the next case starts from a full ring. */
	struct rte_mempool_cache *cache = rte_mempool_default_cache(run->mp, rte_lcore_id());
	if (cache != NULL)
		rte_mempool_cache_flush(cache, run->mp);
	run->objects = objects;
	run->cycles = now - start;
	run->failed = failed;
	return 0;
}

/* Runs one case on `cores` lcores: the main lcore and, for 2, the first worker. */
static int
run_case(struct rte_mempool *mp, enum impl impl, unsigned int cores, unsigned int bulk,
	 uint64_t budget, unsigned int worker, double *cycles_per_obj, double *mops)
{
	struct core_run runs[2];
	double rate = 0; /* objects per TSC cycle, summed over cores */
	uint64_t hz = rte_get_tsc_hz();
	unsigned int c;

	for (c = 0; c < cores; c++)
		runs[c] = (struct core_run){.mp = mp, .impl = impl, .bulk = bulk,
					    .cores = cores, .budget = budget};
	/* RELEASE: the reset is published before the worker is launched (the
	 * launch's own message to the worker orders it too). */
	__atomic_store_n(&arrived, 0, __ATOMIC_RELEASE);
	if (cores == 2 && rte_eal_remote_launch(core_loop, &runs[1], worker) != 0) {
		fprintf(stderr, "dpdk-pool-bench: cannot launch on lcore %u\n", worker);
		return -1;
	}
	core_loop(&runs[0]);
	if (cores == 2)
		rte_eal_wait_lcore(worker);
	for (c = 0; c < cores; c++) {
		if (runs[c].failed) {
			fprintf(stderr, "dpdk-pool-bench: %s get of %u failed (pool of %u, %u free)\n",
				impl_names[impl], bulk, POOL_SIZE, rte_mempool_avail_count(mp));
			return -1;
		}
		rate += (double)runs[c].objects / (double)runs[c].cycles;
	}
	*cycles_per_obj = cores / rate;
	*mops = rate * (double)hz / 1e6;
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: dpdk-pool-bench <EAL args> -- [--seconds S] [--impl raw,mbuf]\n");
}

int
main(int argc, char **argv)
{
	double seconds = 1.25;
	int want[2] = {1, 1};
	unsigned int worker, n_cores, ci, c, b, i;
	int ret = rte_eal_init(argc, argv);

	if (ret < 0) {
		fprintf(stderr, "dpdk-pool-bench: rte_eal_init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	argc -= ret;
	argv += ret;
	for (i = 1; i < (unsigned int)argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < (unsigned int)argc) {
			char *end;
			seconds = strtod(argv[++i], &end);
			if (*end != '\0' || !(seconds > 0 && seconds <= 60)) {
				fprintf(stderr, "dpdk-pool-bench: --seconds must be in (0, 60], got '%s'\n",
					argv[i]);
				return 2;
			}
		} else if (strcmp(argv[i], "--impl") == 0 && i + 1 < (unsigned int)argc) {
			const char *list = argv[++i];
			want[IMPL_RAW] = strstr(list, "raw") != NULL;
			want[IMPL_MBUF] = strstr(list, "mbuf") != NULL;
			if (!want[IMPL_RAW] && !want[IMPL_MBUF]) {
				fprintf(stderr, "dpdk-pool-bench: --impl takes raw, mbuf or raw,mbuf\n");
				return 2;
			}
		} else {
			usage();
			return 2;
		}
	}

	worker = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);
	n_cores = worker < RTE_MAX_LCORE ? 2 : 1;
	uint64_t hz = rte_get_tsc_hz();
	uint64_t budget = (uint64_t)(seconds * (double)hz);
	printf("pool bench impl=dpdk tsc_hz=%" PRIu64 " lcores=%u%s%u pool=%u n_keep=%u "
	       "per_case_s=%g version=\"%s\"\n",
	       hz, rte_get_main_lcore(), n_cores == 2 ? "," : "",
	       n_cores == 2 ? worker : rte_get_main_lcore(), POOL_SIZE, N_KEEP, seconds,
	       rte_version());
	if (n_cores < 2)
		printf("pool two-core cases skipped: one lcore only (give EAL -l with two)\n");

	for (ci = 0; ci < RTE_DIM(caches); ci++) {
		for (i = 0; i < 2; i++) {
			if (!want[i])
				continue;
			char name[RTE_MEMPOOL_NAMESIZE];
			snprintf(name, sizeof(name), "bench_%u_%u", caches[ci], i);
			/* A fresh pool for each cache size and impl, as pool-bench's
			 * fresh pool per cache size. */
			struct rte_mempool *mp = rte_pktmbuf_pool_create(
				name, POOL_SIZE, caches[ci], 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				(int)rte_socket_id());
			if (mp == NULL) {
				fprintf(stderr, "dpdk-pool-bench: rte_pktmbuf_pool_create: %s\n",
					rte_strerror(rte_errno));
				return 1;
			}
			if (ci == 0 && i == 0)
				printf("pool bench element_bytes=%u ops=%s\n",
				       mp->header_size + mp->elt_size + mp->trailer_size,
				       rte_mempool_get_ops(mp->ops_index)->name);
			for (c = 1; c <= n_cores; c++) {
				for (b = 0; b < RTE_DIM(bulks); b++) {
					double cpo, mops;
					if (run_case(mp, (enum impl)i, c, bulks[b], budget, worker,
						     &cpo, &mops) != 0)
						return 1;
					printf("pool impl=%s cache=%u cores=%u bulk=%u n_keep=%u "
					       "mops=%.1f cycles_per_obj=%.2f ns_per_obj=%.3f\n",
					       impl_names[i], caches[ci], c, bulks[b], N_KEEP, mops,
					       cpo, cpo * 1e9 / (double)hz);
					fflush(stdout);
				}
			}
			if (rte_mempool_avail_count(mp) != POOL_SIZE)
				printf("pool warning: %u of %u buffers are not back in the pool\n",
				       POOL_SIZE - rte_mempool_avail_count(mp), POOL_SIZE);
			rte_mempool_free(mp);
		}
	}
	rte_eal_cleanup();
	return 0;
}
