//! `ring-bench`: our [`Ring`] measured the way DPDK 22.11's `ring_perf_autotest`
//! (app/test/test_ring_perf.c) measures `rte_ring`, case for case, with the same
//! ring size (4096), bulk sizes (8, 32), element sizes (8 bytes, its "legacy
//! APIs", and 16 bytes, its "elem APIs: element size 16B") and iteration counts.
//! `scripts/bench-micro.sh` runs both on one machine and prints them side by side.
//!
//! Cases, named `<size>B/<test>/<sync>/<n>` (sync: `spsc` = single producer and
//! consumer through [`Ring::split`], `mpmc` = the shared [`Ring`]):
//! - `single`, `burst`, `bulk`: one enqueue of n plus one dequeue of n on one
//!   core, 2^24 (single) or 2^23 times. DPDK prints the cycles of the pair; we
//!   print that (`cycles_per_call`) and the same divided by n (`value`).
//! - `empty`: one failed bulk dequeue of 8 from an empty ring, 2^26 times;
//!   `value` is cycles per call.
//! - `2core`: a producer pinned on the first CPU enqueues n at a time (retrying
//!   while the ring is full), a consumer on the second dequeues n at a time,
//!   2^15 bulks; each thread times its own loop, and `value` is producer cycles
//!   per element plus consumer cycles per element, as DPDK prints it. The
//!   producer enqueues copies of one table of n elements
//!   (`enqueue_bulk_copied`), as DPDK's enqueues its table of pointers: the
//!   figure turns on which side is the slower one (8 more stores per bulk in
//!   DPDK's producer take its own bulk-8 figure from 16-20 to 58-88), so
//!   the producer rebuilds no burst in the timed loop.
//! - `allcores`: both CPUs enqueue n and dequeue n on one shared MP/MC ring for
//!   100 ms each. DPDK prints the iteration counts; `value` is the cycles per
//!   element on one core: cores / sum over cores of (elements / cycles).
//!
//! `--only TEXT` runs the cases whose name contains TEXT. Each case runs once
//! to warm up (an eighth of the iterations), then `--runs` times; the median
//! is `value`, with the min and max. All figures are TSC cycles. Output, one
//! line per case:
//! `ring case=8B/bulk/spsc/32 value=1.70 unit=cyc/elem min=.. max=.. cycles_per_call=54.4`
#![forbid(unsafe_code)]

use arrayvec::ArrayVec;
use bench::pick_cpus;
use clap::Parser;
use drivers::cpu::{pin_current_thread, rdtsc, tsc_hz, CpuId, CpuSet};
use drivers::ring::Ring;
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

/// Ring size used by DPDK's test (RING_SIZE).
const RING_SIZE: usize = 4096;
/// Largest bulk (DPDK's MAX_BURST in 22.11).
const MAX_BURST: usize = 32;
/// DPDK's bulk_sizes.
const BULK_SIZES: [usize; 2] = [8, 32];

#[derive(Parser, Debug)]
#[command(about = "Ring micro-benchmarks, case for case DPDK's ring_perf_autotest")]
struct Args {
    /// A sixteenth of DPDK's iterations (a smoke run; the figures are noisier).
    #[arg(long)]
    quick: bool,
    /// Measured runs per case, after one warm-up run (1 to 100).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,
    /// CPUs to use, as a Linux CPU list ("0-1", "2,5"): the first for the
    /// single-core cases, the first two for the two-core cases. Default: the
    /// CPUs this thread may run on.
    #[arg(long, value_name = "LIST")]
    cpus: Option<String>,
    /// Run only the cases whose name contains this text ("2core/spsc",
    /// "8B/bulk"); all cases by default.
    #[arg(long, value_name = "TEXT")]
    only: Option<String>,
}

/// An element type the ring carries in the benchmark.
trait Elem: Copy + Send + Sync + 'static {
    /// Size as DPDK's test names it.
    const BYTES: usize;
    /// The `i`-th distinct element.
    fn nth(i: u64) -> Self;
    /// A word of it, so that a dequeued element is used.
    fn word(&self) -> u64;
}

impl Elem for u64 {
    const BYTES: usize = 8;
    fn nth(i: u64) -> Self {
        0x1000 + i * 8
    }
    fn word(&self) -> u64 {
        *self
    }
}

impl Elem for [u64; 2] {
    const BYTES: usize = 16;
    fn nth(i: u64) -> Self {
        [0x1000 + i * 16, i]
    }
    fn word(&self) -> u64 {
        self[0] ^ self[1]
    }
}

/// Median, min and max of the per-run figures.
#[derive(Debug, Clone, Copy)]
struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn of(mut v: Vec<f64>) -> Stats {
        v.sort_by(f64::total_cmp);
        Stats {
            median: v[v.len() / 2],
            min: v[0],
            max: v[v.len() - 1],
        }
    }
}

/// Iteration counts: DPDK's, or a sixteenth of them with `--quick`.
#[derive(Debug, Clone, Copy)]
struct Plan<'a> {
    runs: u32,
    /// Only the cases whose name contains this (all if None).
    only: Option<&'a str>,
    /// Single element enq+deq pairs (DPDK: 1 << 24).
    single_iters: u64,
    /// Burst or bulk enq+deq pairs (DPDK: 1 << 23).
    bulk_iters: u64,
    /// Failed dequeues from an empty ring (DPDK: 1 << 26).
    empty_iters: u64,
    /// Bulks each side moves in a two-core run (DPDK: 1 << 15).
    two_core_bulks: u64,
    /// Length of an all-cores run on each core (DPDK: TIME_MS 100).
    all_cores_secs: f64,
}

impl<'a> Plan<'a> {
    fn new(quick: bool, runs: u32, only: Option<&'a str>) -> Plan<'a> {
        let shift = if quick { 4 } else { 0 };
        Plan {
            runs,
            only,
            single_iters: 1 << (24 - shift),
            bulk_iters: 1 << (23 - shift),
            empty_iters: 1 << (26 - shift),
            two_core_bulks: 1 << (15 - shift),
            all_cores_secs: if quick { 0.01 } else { 0.1 },
        }
    }

    /// Whether the case named `key` is to run.
    fn wants(&self, key: &str) -> bool {
        self.only.is_none_or(|o| key.contains(o))
    }

    /// Runs `f(scale)` once with scale 8 (warm-up: page faults on the slots,
    /// caches, branch predictors), then `runs` times with scale 1; `f`
    /// divides its iteration count by `scale` and returns one run's figure.
    fn repeat(&self, mut f: impl FnMut(u64) -> f64) -> Stats {
        black_box(f(8));
        Stats::of((0..self.runs).map(|_| f(1)).collect())
    }
}

fn new_ring<T: Elem>() -> Ring<T> {
    Ring::new(RING_SIZE).expect("4096 is a valid ring capacity")
}

/// `n` distinct elements.
fn elements<T: Elem>(n: usize) -> ArrayVec<T, MAX_BURST> {
    (0..n as u64).map(T::nth).collect()
}

/// Which single-core API a case uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    /// One item at a time (`push`/`pop`, on the shared ring or the split
    /// handles; rte_ring's single calls are its bulk calls with n = 1).
    Single,
    Burst,
    Bulk,
}

/// Cycles of one SP/SC enqueue of `n` plus one dequeue of `n` (one core).
fn spsc_enq_deq<T: Elem>(api: Api, n: usize, iters: u64) -> f64 {
    let (mut tx, mut rx) = new_ring::<T>().split();
    // Like DPDK's volatile bulk_sizes: the size is not a compile-time constant.
    let n = black_box(n);
    let mut buf = elements::<T>(n);
    let mut ok = true;
    let start = rdtsc();
    let mut item = T::nth(0);
    for _ in 0..iters {
        match api {
            Api::Single => {
                ok &= tx.push(item).is_ok();
                match rx.pop() {
                    Some(v) => item = v,
                    None => ok = false,
                }
            }
            Api::Burst => {
                ok &= tx.enqueue_burst(&mut buf) == n;
                ok &= rx.dequeue_burst(&mut buf, n) == n;
            }
            Api::Bulk => {
                ok &= tx.enqueue_bulk(&mut buf);
                ok &= rx.dequeue_bulk(&mut buf, n);
            }
        }
    }
    let end = rdtsc();
    assert!(black_box(ok), "an operation failed on a ring with room");
    black_box((&buf, item));
    (end - start) as f64 / iters as f64
}

/// Cycles of one MP/MC enqueue of `n` plus one dequeue of `n` (one core).
fn mpmc_enq_deq<T: Elem>(api: Api, n: usize, iters: u64) -> f64 {
    let ring = new_ring::<T>();
    let ring = black_box(&ring);
    let n = black_box(n);
    let mut buf = elements::<T>(n);
    let mut item = T::nth(0);
    let mut ok = true;
    let start = rdtsc();
    for _ in 0..iters {
        match api {
            Api::Single => {
                ok &= ring.push(item).is_ok();
                match ring.pop() {
                    Some(v) => item = v,
                    None => ok = false,
                }
            }
            Api::Burst => {
                ok &= ring.enqueue_burst(&mut buf) == n;
                ok &= ring.dequeue_burst(&mut buf, n) == n;
            }
            Api::Bulk => {
                ok &= ring.enqueue_bulk(&mut buf);
                ok &= ring.dequeue_bulk(&mut buf, n);
            }
        }
    }
    let end = rdtsc();
    assert!(black_box(ok), "an operation failed on a ring with room");
    black_box((&buf, item));
    (end - start) as f64 / iters as f64
}

/// Cycles of one failed bulk dequeue of `n` from an empty ring.
fn empty_dequeue<T: Elem>(multi: bool, n: usize, iters: u64) -> f64 {
    let ring = new_ring::<T>();
    let n = black_box(n);
    let mut buf: ArrayVec<T, MAX_BURST> = ArrayVec::new();
    let mut got = 0u64;
    let (start, end) = if multi {
        let ring = black_box(&ring);
        let start = rdtsc();
        for _ in 0..iters {
            got += u64::from(ring.dequeue_bulk(&mut buf, n));
        }
        (start, rdtsc())
    } else {
        let (_tx, mut rx) = ring.split();
        let start = rdtsc();
        for _ in 0..iters {
            got += u64::from(rx.dequeue_bulk(&mut buf, n));
        }
        (start, rdtsc())
    };
    assert_eq!(black_box(got), 0, "dequeued from an empty ring");
    (end - start) as f64 / iters as f64
}

/// Spin barrier for two threads (DPDK's lcore_count).
fn arrive(count: &AtomicU32) {
    // AcqRel/Acquire: pairs with the other thread's increment, so neither
    // starts its clock before both are pinned and ready.
    count.fetch_add(1, Ordering::AcqRel);
    while count.load(Ordering::Acquire) < 2 {
        std::hint::spin_loop();
    }
}

/// Pins this thread or ends the process: a figure from an unpinned thread
/// would be a different case.
fn pin_or_exit(cpu: CpuId) {
    if let Err(e) = pin_current_thread(cpu) {
        eprintln!("ring-bench: cannot pin to CPU {cpu}: {e}");
        std::process::exit(1);
    }
}

/// One side of a two-core run: `iters` calls of `op`, each retried until it
/// succeeds (as DPDK's helper does, with a pause between tries). Returns the
/// TSC cycles the loop took on this thread.
fn timed_side(cpu: CpuId, barrier: &AtomicU32, iters: u64, mut op: impl FnMut() -> bool) -> u64 {
    pin_or_exit(cpu);
    arrive(barrier);
    let start = rdtsc();
    for _ in 0..iters {
        while !op() {
            std::hint::spin_loop();
        }
    }
    rdtsc() - start
}

/// A producer on `cpus.0` and a consumer on `cpus.1` move `bulks` bulks of
/// `n`, SP/SC (`multi == false`) or MP/MC. Returns producer cycles per
/// element plus consumer cycles per element.
fn two_core_run<T: Elem>(cpus: (CpuId, CpuId), n: usize, bulks: u64, multi: bool) -> f64 {
    // MP/MC runs share `ring`; SP/SC runs use the split handles of another.
    let ring = new_ring::<T>();
    let barrier = AtomicU32::new(0);
    let template = elements::<T>(n);
    let (tx, rx) = new_ring::<T>().split();
    let (p, c) = std::thread::scope(|s| {
        let barrier = &barrier;
        let ring = &ring;
        let template = &template;
        let producer = s.spawn(move || {
            let mut tx = tx;
            let n = black_box(n);
            // Like DPDK's helper, enqueue copies of the same n elements from
            // a table that stays as it is: no per-bulk rebuilding of a burst
            // (which the by-value calls would need) in the timed loop.
            let table = &template[..n];
            timed_side(cpus.0, barrier, bulks, || {
                if multi {
                    ring.enqueue_bulk_copied(table)
                } else {
                    tx.enqueue_bulk_copied(table)
                }
            })
        });
        let consumer = s.spawn(move || {
            let mut rx = rx;
            let n = black_box(n);
            let mut buf: ArrayVec<T, MAX_BURST> = ArrayVec::new();
            let mut sum = 0u64;
            let cycles = timed_side(cpus.1, barrier, bulks, || {
                let ok = if multi {
                    ring.dequeue_bulk(&mut buf, n)
                } else {
                    rx.dequeue_bulk(&mut buf, n)
                };
                if ok {
                    sum = sum.wrapping_add(buf[0].word());
                    buf.clear();
                }
                ok
            });
            black_box(sum);
            cycles
        });
        (
            producer.join().expect("producer panicked"),
            consumer.join().expect("consumer panicked"),
        )
    });
    assert!(ring.is_empty(), "every element was dequeued");
    let moved = (bulks * n as u64) as f64;
    p as f64 / moved + c as f64 / moved
}

/// Both CPUs of `cpus` enqueue `n` and dequeue `n` on one shared MP/MC ring
/// for `budget` TSC cycles each (DPDK's load_loop_fn, which looks at the
/// clock after every pair). Returns cycles per element on one core.
fn all_cores_run<T: Elem>(cpus: (CpuId, CpuId), n: usize, budget: u64) -> f64 {
    let ring = new_ring::<T>();
    let barrier = AtomicU32::new(0);
    let side = |cpu: CpuId| {
        let ring = &ring;
        let barrier = &barrier;
        move || {
            pin_or_exit(cpu);
            let n = black_box(n);
            let mut buf = elements::<T>(n);
            let mut pairs = 0u64;
            arrive(barrier);
            let start = rdtsc();
            let mut now = start;
            while now - start < budget {
                // Each core holds n elements in its hand or in the ring, so
                // neither call fails in steady state; if one did, DPDK would
                // count the pair all the same, and so do we. Dequeue only into
                // an empty hand, so the hand never holds more than n.
                ring.enqueue_bulk(&mut buf);
                if buf.is_empty() {
                    ring.dequeue_bulk(&mut buf, n);
                }
                pairs += 1;
                now = rdtsc();
            }
            (pairs * n as u64, now - start)
        }
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(side(cpus.0));
        let b = s.spawn(side(cpus.1));
        (
            a.join().expect("core panicked"),
            b.join().expect("core panicked"),
        )
    });
    let rate = a.0 as f64 / a.1 as f64 + b.0 as f64 / b.1 as f64;
    2.0 / rate
}

fn print_case(key: &str, unit: &str, s: Stats, extra: &str) {
    println!(
        "ring case={key} value={:.2} unit={unit} min={:.2} max={:.2}{extra}",
        s.median, s.min, s.max
    );
}

/// Every case of one element size (those `plan.only` selects).
fn run_size<T: Elem>(plan: &Plan, pair: Option<(CpuId, CpuId)>, hz: u64) -> usize {
    let b = T::BYTES;
    let mut cases = 0;
    // Runs the case `key` if selected: `measure` gives its per-run figures'
    // median, min and max, `show` prints them.
    let mut case = |key: String, measure: &mut dyn FnMut() -> Stats, show: &dyn Fn(&str, Stats)| {
        if plan.wants(&key) {
            show(&key, measure());
            cases += 1;
        }
    };
    // Single-core figures are per enqueue+dequeue of n: print per element.
    let per_elem = |n: usize| {
        move |key: &str, s: Stats| {
            let per = Stats {
                median: s.median / n as f64,
                min: s.min / n as f64,
                max: s.max / n as f64,
            };
            let extra = format!(" cycles_per_call={:.2}", s.median);
            print_case(key, "cyc/elem", per, &extra);
        }
    };
    for (sync, multi) in [("spsc", false), ("mpmc", true)] {
        let key = format!("{b}B/single/{sync}/1");
        let mut measure = || {
            plan.repeat(|scale| {
                let iters = plan.single_iters / scale;
                if multi {
                    mpmc_enq_deq::<T>(Api::Single, 1, iters)
                } else {
                    spsc_enq_deq::<T>(Api::Single, 1, iters)
                }
            })
        };
        case(key, &mut measure, &per_elem(1));
    }
    for (test, api) in [("burst", Api::Burst), ("bulk", Api::Bulk)] {
        for (sync, multi) in [("spsc", false), ("mpmc", true)] {
            for n in BULK_SIZES {
                let key = format!("{b}B/{test}/{sync}/{n}");
                let mut measure = || {
                    plan.repeat(|scale| {
                        let iters = plan.bulk_iters / scale;
                        if multi {
                            mpmc_enq_deq::<T>(api, n, iters)
                        } else {
                            spsc_enq_deq::<T>(api, n, iters)
                        }
                    })
                };
                case(key, &mut measure, &per_elem(n));
            }
        }
    }
    let per_call = |key: &str, s: Stats| print_case(key, "cyc/call", s, "");
    let per_elem_2 = |key: &str, s: Stats| print_case(key, "cyc/elem", s, "");
    for (sync, multi) in [("spsc", false), ("mpmc", true)] {
        let n = BULK_SIZES[0];
        let key = format!("{b}B/empty/{sync}/{n}");
        let mut measure =
            || plan.repeat(|scale| empty_dequeue::<T>(multi, n, plan.empty_iters / scale));
        case(key, &mut measure, &per_call);
    }
    let Some(pair) = pair else {
        return cases;
    };
    for n in BULK_SIZES {
        for (sync, multi) in [("spsc", false), ("mpmc", true)] {
            let key = format!("{b}B/2core/{sync}/{n}");
            let mut measure = || {
                plan.repeat(|scale| {
                    two_core_run::<T>(pair, n, (plan.two_core_bulks / scale).max(1), multi)
                })
            };
            case(key, &mut measure, &per_elem_2);
        }
    }
    for n in BULK_SIZES {
        let key = format!("{b}B/allcores/mpmc/{n}");
        let budget = (plan.all_cores_secs * hz as f64) as u64;
        let mut measure = || plan.repeat(|scale| all_cores_run::<T>(pair, n, budget / scale));
        case(key, &mut measure, &per_elem_2);
    }
    cases
}

fn main() -> ExitCode {
    let args = Args::parse();
    let cpus = match pick_cpus(args.cpus.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ring-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let plan = Plan::new(args.quick, args.runs, args.only.as_deref());
    let t0 = Instant::now();
    let hz = tsc_hz();
    // Single-core cases run on the main thread, pinned like DPDK's main lcore.
    // (Threads spawned later pin themselves.)
    if let Err(e) = pin_current_thread(cpus[0]) {
        eprintln!("ring-bench: cannot pin to CPU {}: {e}", cpus[0]);
        return ExitCode::FAILURE;
    }
    println!(
        "ring bench impl=ours tsc_hz={hz} cpus={} ring_size={RING_SIZE} runs={} quick={} \
         (value = median of runs, TSC cycles)",
        CpuSet::from_ids(cpus.iter().copied()),
        plan.runs,
        args.quick
    );
    let pair = (cpus.len() >= 2).then(|| (cpus[0], cpus[1]));
    if pair.is_none() {
        println!(
            "ring two-core cases skipped: only CPU {} is allowed (need 2; see --cpus)",
            cpus[0]
        );
    }
    let cases = run_size::<u64>(&plan, pair, hz) + run_size::<[u64; 2]>(&plan, pair, hz);
    println!(
        "ring summary cases={cases} elapsed_s={:.1}",
        t0.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
