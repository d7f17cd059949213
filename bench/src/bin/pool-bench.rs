//! `pool-bench`: our [`Pool`] / [`PoolCache`] measured the way DPDK 22.11's
//! `mempool_perf_autotest` measures `rte_mempool`. `bench/dpdk/dpdk-pool-bench.c`
//! runs the same cases on DPDK's pool, and `scripts/bench-micro.sh` runs both
//! on one machine and prints them side by side.
//!
//! Each core (its own pinned thread and its own [`PoolCache`]) repeatedly
//! takes `bulk` buffers at a time (`alloc_bulk`) until it holds n_keep = 128,
//! then gives them back `bulk` at a time (`free_bulk`), checking the clock
//! every 65,536 objects as DPDK does. `mops` is millions of objects per second
//! over all cores (DPDK's rate_persec / 1e6); `cycles_per_obj` is the TSC
//! cycles of one get plus one put per core: cores / sum over cores of
//! (objects / cycles).
//!
//! Cases: cache 512 (per-core cache, what the workers use) and cache 0 (every
//! get and put is a multi-producer/multi-consumer operation on the shared
//! ring, DPDK's ring_mp_mc), bulk 1, 4, 8, 32, on 1 core and, when two CPUs
//! are allowed, on 2 cores sharing the pool.
//!
//! What it corresponds to in DPDK: `alloc_bulk` resets each buffer's header
//! and `free_bulk` reads each one's home pool, as rte_pktmbuf_alloc_bulk and
//! rte_pktmbuf_free_bulk do (with less per buffer: no refcount, no chain).
//! mempool_perf_autotest's rte_mempool_get/put never touch the objects.
//!
//! Output, one line per case (scripts/bench-micro.sh reads them):
//! `pool impl=ours cache=512 cores=1 bulk=32 n_keep=128 mops=X cycles_per_obj=Y ns_per_obj=Z`
#![forbid(unsafe_code)]

use arrayvec::ArrayVec;
use bench::pick_cpus;
use clap::Parser;
use drivers::cpu::{pin_current_thread, rdtsc, tsc_hz, CpuId, CpuSet};
use drivers::mbuf::Mbuf;
use drivers::memory::MemoryBacking;
use drivers::pool::{Pool, PoolCache, PoolConfig, RawBuf};
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Buffers in the pool.
const POOL_SIZE: u32 = 16384;
/// Buffers each core holds before giving them back (DPDK's n_keep).
const N_KEEP: usize = 128;
/// Objects between two looks at the clock (DPDK's N).
const N_BETWEEN_CHECKS: u64 = 65536;
/// Bulk sizes, as DPDK's n_get_bulk = n_put_bulk.
const BULKS: [usize; 4] = [1, 4, 8, 32];
/// Per-core cache sizes, in the order they run.
const CACHES: [usize; 2] = [512, 0];

#[derive(Parser, Debug)]
#[command(about = "Pool micro-benchmarks comparable with DPDK's mempool_perf_autotest")]
struct Args {
    /// Short runs (0.2 s a case instead of 1.25 s; noisier).
    #[arg(long)]
    quick: bool,
    /// Seconds each case runs (overrides --quick), 0.001 to 60.
    #[arg(long, value_name = "S", value_parser = parse_seconds)]
    seconds: Option<f64>,
    /// CPUs to use, as a Linux CPU list ("0-1", "2,5"): the first for the
    /// one-core cases, the first two for the two-core cases. Default: the
    /// CPUs this thread may run on.
    #[arg(long, value_name = "LIST")]
    cpus: Option<String>,
    /// Put the pool in ordinary 4 KiB pages instead of hugepages.
    #[arg(long)]
    no_huge: bool,
}

/// `--seconds`: finite, in [0.001, 60].
fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if (0.001..=60.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s} is outside 0.001 to 60 seconds"))
    }
}

/// What one core did.
#[derive(Debug, Clone, Copy)]
struct CoreResult {
    objects: u64,
    cycles: u64,
}

/// Spin barrier for `n` threads.
fn arrive(count: &AtomicU32, n: u32) {
    count.fetch_add(1, Ordering::AcqRel);
    while count.load(Ordering::Acquire) < n {
        std::hint::spin_loop();
    }
}

/// Which pair of calls a case times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    /// `alloc_bulk` / `free_bulk`: each header reset on alloc, its home
    /// pool read on free (DPDK's rte_pktmbuf_alloc_bulk / free_bulk).
    Mbuf,
    /// `get_bulk` / `put_bulk`: buffers untouched (DPDK's
    /// rte_mempool_get_bulk / put_bulk).
    Raw,
}

impl Api {
    /// The `impl=` name in the output.
    fn name(self) -> &'static str {
        match self {
            Api::Mbuf => "ours",
            Api::Raw => "ours_raw",
        }
    }
}

/// One core's loop for `api`, with `N`-buffer groups (N = the bulk size).
fn core_loop<const N: usize>(
    api: Api,
    pool: Pool,
    cpu: CpuId,
    barrier: &AtomicU32,
    cores: u32,
    cycles_budget: u64,
) -> Result<CoreResult, String> {
    match api {
        Api::Mbuf => timed_loop::<N, Mbuf>(
            pool,
            cpu,
            barrier,
            cores,
            cycles_budget,
            |c, g, n| c.alloc_bulk(g, n),
            |c, g| c.free_bulk(g),
        ),
        Api::Raw => timed_loop::<N, RawBuf>(
            pool,
            cpu,
            barrier,
            cores,
            cycles_budget,
            |c, g, n| c.get_bulk(g, n),
            |c, g| c.put_bulk(g),
        ),
    }
}

/// Get n_keep buffers `bulk` at a time into the groups, then put each
/// group back, until the budget is spent. Out of line: one function per
/// case, as each case's loop was before there were two APIs.
#[inline(never)]
fn timed_loop<const N: usize, B>(
    pool: Pool,
    cpu: CpuId,
    barrier: &AtomicU32,
    cores: u32,
    cycles_budget: u64,
    get: impl Fn(&mut PoolCache, &mut ArrayVec<B, N>, usize) -> bool,
    put: impl Fn(&mut PoolCache, &mut ArrayVec<B, N>),
) -> Result<CoreResult, String> {
    pin_current_thread(cpu).map_err(|e| format!("cannot pin to CPU {cpu}: {e}"))?;
    let mut cache = pool.cache();
    // Like DPDK's constant_n=0: the bulk size is a run-time value.
    let bulk = black_box(N);
    let mut groups: Vec<ArrayVec<B, N>> = (0..N_KEEP / N).map(|_| ArrayVec::new()).collect();
    arrive(barrier, cores);
    let start = rdtsc();
    let mut objects = 0u64;
    let mut failed = false;
    let end = loop {
        for _ in 0..N_BETWEEN_CHECKS / N_KEEP as u64 {
            for g in groups.iter_mut() {
                failed |= !get(&mut cache, g, bulk);
            }
            for g in groups.iter_mut() {
                put(&mut cache, g);
            }
        }
        objects += N_BETWEEN_CHECKS;
        let now = rdtsc();
        if failed || now - start >= cycles_budget {
            break now;
        }
    };
    if failed {
        return Err(format!(
            "getting {bulk} failed on CPU {cpu} (pool of {POOL_SIZE}, {} in its ring)",
            pool.available()
        ));
    }
    drop(cache);
    Ok(CoreResult {
        objects,
        cycles: end - start,
    })
}

/// Runs one case on `cpus` (one thread per CPU, all on `pool`).
fn run_case(
    api: Api,
    pool: &Pool,
    cpus: &[CpuId],
    bulk: usize,
    cycles_budget: u64,
) -> Result<Vec<CoreResult>, String> {
    let barrier = AtomicU32::new(0);
    let cores = cpus.len() as u32;
    std::thread::scope(|s| {
        let handles: Vec<_> = cpus
            .iter()
            .map(|&cpu| {
                let pool = pool.clone();
                let barrier = &barrier;
                s.spawn(move || match bulk {
                    1 => core_loop::<1>(api, pool, cpu, barrier, cores, cycles_budget),
                    4 => core_loop::<4>(api, pool, cpu, barrier, cores, cycles_budget),
                    8 => core_loop::<8>(api, pool, cpu, barrier, cores, cycles_budget),
                    32 => core_loop::<32>(api, pool, cpu, barrier, cores, cycles_budget),
                    _ => Err(format!("unsupported bulk size {bulk}")),
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| "a core panicked".to_string())?)
            .collect()
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    let cpus = match pick_cpus(args.cpus.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pool-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let t0 = Instant::now();
    let hz = tsc_hz();
    let per_case = match (args.seconds, args.quick) {
        (Some(s), _) => Duration::from_secs_f64(s),
        (None, true) => Duration::from_millis(200),
        (None, false) => Duration::from_millis(1250),
    };
    let cycles_budget = (hz as f64 * per_case.as_secs_f64()) as u64;
    let backing = if args.no_huge {
        MemoryBacking::NoHuge
    } else {
        MemoryBacking::default()
    };
    let mut core_sets: Vec<&[CpuId]> = vec![&cpus[..1]];
    if cpus.len() >= 2 {
        core_sets.push(&cpus[..2]);
    }

    let mut cases = 0;
    for (i, cache_size) in CACHES.into_iter().enumerate() {
        // A fresh pool for each cache size.
        let mut config = PoolConfig::new("bench", POOL_SIZE).with_backing(backing.clone());
        config.cache_size = cache_size;
        let pool = match Pool::new(&config) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("pool-bench: {e}");
                return ExitCode::FAILURE;
            }
        };
        if i == 0 {
            println!(
                "pool bench impl=ours tsc_hz={hz} cpus={} pool={POOL_SIZE} n_keep={N_KEEP} \
                 per_case_s={} element_bytes={} memory=\"{}\"",
                CpuSet::from_ids(cpus.iter().copied()),
                per_case.as_secs_f64(),
                pool.element_size(),
                pool.describe_memory(),
            );
            if cpus.len() < 2 {
                println!(
                    "pool two-core cases skipped: only CPU {} is allowed (need 2; see --cpus)",
                    cpus[0]
                );
            }
        }
        for set in &core_sets {
            let cores = set.len();
            for (bulk, api) in BULKS
                .into_iter()
                .flat_map(|b| [(b, Api::Mbuf), (b, Api::Raw)])
            {
                let results = match run_case(api, &pool, set, bulk, cycles_budget) {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("pool-bench: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                // Objects per TSC cycle of each core, summed: each core
                // divides by its own time (DPDK's test sums counts over a
                // common wall-clock interval).
                let rate: f64 = results
                    .iter()
                    .map(|r| r.objects as f64 / r.cycles as f64)
                    .sum();
                let cycles_per_obj = cores as f64 / rate;
                println!(
                    "pool impl={} cache={cache_size} cores={cores} bulk={bulk} n_keep={N_KEEP} \
                     mops={:.1} cycles_per_obj={cycles_per_obj:.2} ns_per_obj={:.3}",
                    api.name(),
                    rate * hz as f64 / 1e6,
                    cycles_per_obj * 1e9 / hz as f64,
                );
                cases += 1;
            }
        }
        if pool.available() != pool.count() {
            println!(
                "pool warning: {} of {} buffers are not back in the ring after the runs",
                pool.count() - pool.available(),
                pool.count()
            );
        }
    }
    println!(
        "pool summary cases={cases} elapsed_s={:.1}",
        t0.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
