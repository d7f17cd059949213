//! `ring-bench`: our [`Ring`] measured the way DPDK 22.11's `ring_perf_autotest`
//! measures `rte_ring`, so the figures can be put next to
//! /work/shared/reference/peers/dpdk/micro/RESULTS.md.
//!
//! What each figure means (as in DPDK's test_ring_perf.c):
//! - single core: TSC cycles of ONE enqueue of n plus ONE dequeue of n on the
//!   same ring (ring of 4096, 8-byte elements), averaged over many iterations;
//!   `cycles_per_elem` divides by n.
//! - empty bulk dequeue: cycles of one failed bulk dequeue of 8 from an empty ring.
//! - two cores: a producer pinned on one CPU enqueues n at a time (retrying when
//!   the ring is full), a consumer pinned on another dequeues n at a time; each
//!   thread times its own loop, and the figure is producer cycles per element
//!   plus consumer cycles per element (DPDK prints `param1.spsc + param2.spsc`).
//!
//! Each case is run several times after a warm-up run; the median is reported
//! with the min and max. `dpdk_ref_*` is DPDK's figure from another run on the
//! same kind of machine (RESULTS.md, or its raw log where the table has none);
//! expect +-20 % between runs.
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

#[derive(Parser, Debug)]
#[command(about = "Ring micro-benchmarks comparable with DPDK's ring_perf_autotest")]
struct Args {
    /// Far fewer iterations (a smoke run; the figures are noisier).
    #[arg(long)]
    quick: bool,
    /// CPUs to use, as a Linux CPU list ("0-1", "2,5"): the first for the
    /// single-core cases, the first two for the two-core cases. Default: the
    /// CPUs this thread may run on.
    #[arg(long, value_name = "LIST")]
    cpus: Option<String>,
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

    fn scaled(self, by: f64) -> Stats {
        Stats {
            median: self.median / by,
            min: self.min / by,
            max: self.max / by,
        }
    }
}

/// How long the runs are.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Measured runs per case (plus one warm-up run).
    reps: usize,
    /// Iterations of one run, single element enq+deq (DPDK: 1 << 24, once).
    single_iters: u64,
    /// Iterations of one run, bulk enq+deq (DPDK: 1 << 23, once).
    bulk_iters: u64,
    /// Iterations of one run, empty dequeue (DPDK: 1 << 26, once).
    empty_iters: u64,
    /// Elements moved in one two-core run (DPDK: 1 << 15 bulks, once).
    two_core_elems: u64,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                reps: 3,
                single_iters: 1 << 19,
                bulk_iters: 1 << 18,
                empty_iters: 1 << 21,
                two_core_elems: 1 << 19,
            }
        } else {
            Plan {
                reps: 7,
                single_iters: 1 << 22,
                bulk_iters: 1 << 21,
                empty_iters: 1 << 24,
                two_core_elems: 1 << 22,
            }
        }
    }
}

/// Runs `f` once to warm up (page faults on the slots, caches, branch
/// predictors), then `reps` times; `f` returns the figure of one run.
fn repeat(reps: usize, mut f: impl FnMut(bool) -> f64) -> Stats {
    black_box(f(true));
    Stats::of((0..reps).map(|_| f(false)).collect())
}

fn new_ring() -> Ring<u64> {
    Ring::new(RING_SIZE).expect("4096 is a valid ring capacity")
}

/// `n` distinct 8-byte elements.
fn elements(n: usize) -> ArrayVec<u64, MAX_BURST> {
    (0..n as u64).map(|i| 0x1000 + i * 8).collect()
}

/// Cycles of one SP enqueue of `n` plus one SC dequeue of `n` (single core).
fn spsc_enq_deq(n: usize, iters: u64) -> f64 {
    let (mut tx, mut rx) = new_ring().split();
    // Like DPDK's volatile bulk_sizes: the size is not a compile-time constant.
    let n = black_box(n);
    let mut buf = elements(n);
    let mut ok = true;
    let start = rdtsc();
    for _ in 0..iters {
        ok &= tx.enqueue_bulk(&mut buf);
        ok &= rx.dequeue_bulk(&mut buf, n);
    }
    let end = rdtsc();
    assert!(black_box(ok), "a bulk operation failed on a ring with room");
    black_box(&buf);
    (end - start) as f64 / iters as f64
}

/// Cycles of one MP enqueue of `n` plus one MC dequeue of `n` (single core).
fn mpmc_enq_deq(n: usize, iters: u64) -> f64 {
    let ring = new_ring();
    let ring = black_box(&ring);
    let n = black_box(n);
    let mut buf = elements(n);
    let mut ok = true;
    let start = rdtsc();
    for _ in 0..iters {
        ok &= ring.enqueue_bulk(&mut buf);
        ok &= ring.dequeue_bulk(&mut buf, n);
    }
    let end = rdtsc();
    assert!(black_box(ok), "a bulk operation failed on a ring with room");
    black_box(&buf);
    (end - start) as f64 / iters as f64
}

/// Cycles of one MP `push` plus one MC `pop` (the one-item API).
fn mpmc_push_pop(iters: u64) -> f64 {
    let ring = new_ring();
    let ring = black_box(&ring);
    let mut item = 0x1000u64;
    let mut ok = true;
    let start = rdtsc();
    for _ in 0..iters {
        ok &= ring.push(item).is_ok();
        match ring.pop() {
            Some(v) => item = v,
            None => ok = false,
        }
    }
    let end = rdtsc();
    assert!(black_box(ok), "push/pop failed on a ring with room");
    black_box(item);
    (end - start) as f64 / iters as f64
}

/// Cycles of one failed SC bulk dequeue of `n` from an empty ring.
fn empty_dequeue(n: usize, iters: u64) -> f64 {
    let (_tx, mut rx) = new_ring().split();
    let n = black_box(n);
    let mut buf: ArrayVec<u64, MAX_BURST> = ArrayVec::new();
    let mut got = 0u64;
    let start = rdtsc();
    for _ in 0..iters {
        got += u64::from(rx.dequeue_bulk(&mut buf, n));
    }
    let end = rdtsc();
    assert_eq!(black_box(got), 0, "dequeued from an empty ring");
    (end - start) as f64 / iters as f64
}

/// Spin barrier for two threads (DPDK's lcore_count).
fn arrive(count: &AtomicU32) {
    count.fetch_add(1, Ordering::AcqRel);
    while count.load(Ordering::Acquire) < 2 {
        std::hint::spin_loop();
    }
}

/// One side of a two-core run: `iters` calls of `op`, each retried until it
/// succeeds (as DPDK's helper does, with a pause between tries). Returns the
/// TSC cycles the loop took on this thread.
fn timed_side(cpu: CpuId, barrier: &AtomicU32, iters: u64, mut op: impl FnMut() -> bool) -> u64 {
    if let Err(e) = pin_current_thread(cpu) {
        eprintln!("ring-bench: cannot pin to CPU {cpu}: {e}");
        std::process::exit(1);
    }
    arrive(barrier);
    let start = rdtsc();
    for _ in 0..iters {
        while !op() {
            std::hint::spin_loop();
        }
    }
    rdtsc() - start
}

/// Per-element cycles of the producer and of the consumer.
#[derive(Debug, Clone, Copy)]
struct TwoCore {
    producer: f64,
    consumer: f64,
}

/// A producer on `cpus.0` and a consumer on `cpus.1` move `elems` elements
/// `n` at a time, SP/SC (`multi == false`) or MP/MC.
fn two_core_run(cpus: (CpuId, CpuId), n: usize, elems: u64, multi: bool) -> TwoCore {
    // MP/MC runs share `ring`; SP/SC runs use the split handles of another.
    let ring = new_ring();
    let iters = elems / n as u64;
    let barrier = AtomicU32::new(0);
    let template = elements(n);
    let (tx, rx) = new_ring().split();
    let (p, c) = std::thread::scope(|s| {
        let barrier = &barrier;
        let ring = &ring;
        let template = &template;
        let producer = s.spawn(move || {
            let mut tx = tx;
            let n = black_box(n);
            let mut buf: ArrayVec<u64, MAX_BURST> = ArrayVec::new();
            timed_side(cpus.0, barrier, iters, || {
                // The ring takes the items by value: put n back in the burst
                // buffer (a 8n-byte copy) before each try that needs it.
                if buf.is_empty() {
                    buf.try_extend_from_slice(&template[..n])
                        .expect("n <= MAX_BURST");
                }
                if multi {
                    ring.enqueue_bulk(&mut buf)
                } else {
                    tx.enqueue_bulk(&mut buf)
                }
            })
        });
        let consumer = s.spawn(move || {
            let mut rx = rx;
            let n = black_box(n);
            let mut buf: ArrayVec<u64, MAX_BURST> = ArrayVec::new();
            let mut sum = 0u64;
            let cycles = timed_side(cpus.1, barrier, iters, || {
                let ok = if multi {
                    ring.dequeue_bulk(&mut buf, n)
                } else {
                    rx.dequeue_bulk(&mut buf, n)
                };
                if ok {
                    sum = sum.wrapping_add(buf[0]);
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
    let moved = (iters * n as u64) as f64;
    TwoCore {
        producer: p as f64 / moved,
        consumer: c as f64 / moved,
    }
}

/// One printed result, kept for the summary.
struct Row {
    case: String,
    ours: f64,
    dpdk: Option<f64>,
}

/// TSC rate of the machine DPDK's figures were taken on (RESULTS.md).
const DPDK_TSC_GHZ: f64 = 2.0;

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn fmt_ref(key: &str, dpdk: Option<f64>) -> String {
    dpdk.map_or_else(String::new, |d| format!(" {key}={d}"))
}

/// Prints a single-core enq+deq case.
fn report_single(rows: &mut Vec<Row>, ghz: f64, case: &str, n: usize, s: Stats, dpdk: Option<f64>) {
    let per = s.scaled(n as f64);
    println!(
        "ring case={case} n={n} cycles={:.1} cycles_per_elem={:.2} min={:.1} max={:.1} ns={:.2}{}{}",
        s.median,
        per.median,
        s.min,
        s.max,
        s.median / ghz,
        fmt_ref("dpdk_ref_cycles", dpdk),
        fmt_ref("dpdk_ref_ns", dpdk.map(|d| round2(d / DPDK_TSC_GHZ))),
    );
    rows.push(Row {
        case: format!("{case}/{n}"),
        ours: s.median,
        dpdk,
    });
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
    let plan = Plan::new(args.quick);
    let t0 = Instant::now();
    let hz = tsc_hz();
    let ghz = hz as f64 / 1e9;
    // Single-core cases run on the main thread, pinned like DPDK's main lcore.
    // (Threads spawned later re-pin themselves.)
    if let Err(e) = pin_current_thread(cpus[0]) {
        eprintln!("ring-bench: cannot pin to CPU {}: {e}", cpus[0]);
        return ExitCode::FAILURE;
    }
    println!(
        "ring bench tsc_hz={hz} cpus={} ring_size={RING_SIZE} elem_bytes=8 runs={} quick={} \
         (median of runs; min/max shown; dpdk_ref_* = DPDK 22.11 ring_perf_autotest from \
         another run, RESULTS.md, +-20 %, TSC 2.0 GHz there: compare ns if this TSC differs)",
        CpuSet::from_ids(cpus.iter().copied()),
        plan.reps,
        args.quick
    );

    let mut rows = Vec::new();
    let r = plan.reps;

    let s = repeat(r, |warm| {
        spsc_enq_deq(1, plan.single_iters / if warm { 8 } else { 1 })
    });
    report_single(&mut rows, ghz, "spsc_single", 1, s, Some(12.6));
    for (n, dpdk) in [(8, 26.6), (32, 54.6)] {
        let s = repeat(r, |warm| {
            spsc_enq_deq(n, plan.bulk_iters / if warm { 8 } else { 1 })
        });
        report_single(&mut rows, ghz, "spsc_bulk", n, s, Some(dpdk));
    }
    // Not in RESULTS.md's table; DPDK's figures from the same run's raw log
    // (ring_perf_autotest.log: "MP/MC: single 43.72", "MP/MC: bulk (size: 8) 53.11").
    let s = repeat(r, |warm| {
        mpmc_push_pop(plan.single_iters / if warm { 8 } else { 1 })
    });
    report_single(&mut rows, ghz, "mpmc_single_push_pop", 1, s, Some(43.72));
    for (n, dpdk) in [(8, 53.11), (32, 73.2)] {
        let s = repeat(r, |warm| {
            mpmc_enq_deq(n, plan.bulk_iters / if warm { 8 } else { 1 })
        });
        report_single(&mut rows, ghz, "mpmc_bulk", n, s, Some(dpdk));
    }
    let s = repeat(r, |warm| {
        empty_dequeue(8, plan.empty_iters / if warm { 8 } else { 1 })
    });
    println!(
        "ring case=empty_bulk_dequeue n=8 cycles={:.1} min={:.1} max={:.1} ns={:.2} \
         dpdk_ref_cycles=7.9 dpdk_ref_ns={}",
        s.median,
        s.min,
        s.max,
        s.median / ghz,
        round2(7.9 / DPDK_TSC_GHZ)
    );
    rows.push(Row {
        case: "empty_bulk_dequeue/8".into(),
        ours: s.median,
        dpdk: Some(7.9),
    });

    if cpus.len() < 2 {
        println!(
            "ring two-core cases skipped: only CPU {} is allowed (need 2; see --cpus)",
            cpus[0]
        );
    } else {
        let pair = (cpus[0], cpus[1]);
        // DPDK's two-core MP/MC bulk 8 (92.76) is from the raw log too.
        for (case, n, multi, dpdk) in [
            ("2core_spsc_bulk", 8, false, 24.2),
            ("2core_spsc_bulk", 32, false, 11.35),
            ("2core_mpmc_bulk", 8, true, 92.76),
            ("2core_mpmc_bulk", 32, true, 23.9),
        ] {
            let mut prod = Vec::new();
            let mut cons = Vec::new();
            let sum = repeat(r, |warm| {
                let elems = plan.two_core_elems / if warm { 8 } else { 1 };
                let t = two_core_run(pair, n, elems, multi);
                if !warm {
                    prod.push(t.producer);
                    cons.push(t.consumer);
                }
                t.producer + t.consumer
            });
            let (prod, cons) = (Stats::of(prod), Stats::of(cons));
            println!(
                "ring case={case} n={n} cpus={},{} cycles_per_elem={:.2} producer={:.2} \
                 consumer={:.2} min={:.2} max={:.2} ns_per_elem={:.2} \
                 dpdk_ref_cycles_per_elem={dpdk} dpdk_ref_ns_per_elem={}",
                pair.0,
                pair.1,
                sum.median,
                prod.median,
                cons.median,
                sum.min,
                sum.max,
                sum.median / ghz,
                round2(dpdk / DPDK_TSC_GHZ)
            );
            rows.push(Row {
                case: format!("{case}/{n}"),
                ours: sum.median,
                dpdk: Some(dpdk),
            });
        }
    }

    // Summary: ratio ours / DPDK per case and their geometric mean.
    let ratios: Vec<(String, f64)> = rows
        .iter()
        .filter_map(|row| row.dpdk.map(|d| (row.case.clone(), row.ours / d)))
        .collect();
    let geo = (ratios.iter().map(|(_, x)| x.ln()).sum::<f64>() / ratios.len() as f64).exp();
    let slow: Vec<String> = ratios
        .iter()
        .filter(|(_, x)| *x > 1.5)
        .map(|(c, x)| format!("{c}:{x:.1}x"))
        .collect();
    let worst = ratios
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map_or_else(String::new, |(c, x)| format!("{c}:{x:.2}x"));
    println!(
        "ring summary cases={} geomean_vs_dpdk={geo:.2}x worst={worst} over_1.5x=[{}] elapsed_s={:.1}",
        rows.len(),
        slow.join(","),
        t0.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
