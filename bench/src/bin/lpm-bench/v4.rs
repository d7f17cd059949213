//! The IPv4 mode of `lpm-bench`: our DIR-24-8 table ([`Dir24Lpm`]) measured
//! the way DPDK 22.11's `lpm_perf_autotest` measures `rte_lpm`: a generated
//! table of 1,076,806 routes with DPDK's prefix-length distribution (the
//! one it prints, taken from a real BGP table), then lookups of uniformly
//! random addresses, 100,000 per pass, 1,024 passes, new addresses each
//! pass (generated outside the timed region), misses counted inside it.
//!
//! Routes are drawn from a fixed-seed splitmix64 stream: first octet 1 to
//! 223 except 127 (unicast classes A, B and C, as DPDK's generator), other
//! bits random, host bits cleared; duplicates replace, so fewer prefixes
//! are unique than added, as in DPDK's run. Before timing anything, a
//! sample of lookups is checked against [`ReferenceLpm`]; a disagreement
//! exits with status 1.

use super::{Args, SplitMix, Tally};
use drivers::cpu::rdtsc;
use fastpath::fib::{Dir24Lpm, NextHopId, Prefix4, ReferenceLpm};
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::process::ExitCode;

/// Routes per prefix length 0 to 32, as `lpm_perf_autotest` prints its
/// generated table (shared/reference/peers/dpdk/micro/lpm_perf_autotest.log).
const ROUTES_PER_DEPTH: [u32; 33] = [
    0, 0, 0, 1, 0, 3, 2, 4, 201, 37, 55, 97, 381, 775, 2104, 3712, 69319, 12983, 23667, 69068,
    62354, 48531, 72355, 85427, 583900, 2654, 5650, 6467, 7127, 12936, 5999, 13, 984,
];
/// Addresses per pass (DPDK's BATCH_SIZE).
const BATCH_SIZE: usize = 100_000;
/// Passes (DPDK's ITERATIONS).
const ITERATIONS: u32 = 1 << 10;
/// Addresses per bulk call (DPDK's BULK_SIZE, a burst).
const BULK_SIZE: usize = 32;
/// Addresses checked against the reference before timing.
const CHECKED: usize = 200_000;

/// The generated table, in random order (shorter and longer prefixes
/// interleaved, as a routing daemon would feed them).
fn routes(rng: &mut SplitMix) -> Vec<(Prefix4, NextHopId)> {
    let mut out = Vec::new();
    for (depth, &n) in (0u8..).zip(ROUTES_PER_DEPTH.iter()) {
        for _ in 0..n {
            let first_octet = loop {
                let o = (rng.next_u32() % 223 + 1) as u8;
                if o != 127 {
                    break o;
                }
            };
            let addr = (u32::from(first_octet) << 24) | (rng.next_u32() & 0x00ff_ffff);
            let Ok(p) = Prefix4::new_masked(Ipv4Addr::from(addr), depth) else {
                continue;
            };
            out.push((p, NextHopId(rng.next_u32() & 0xffff)));
        }
    }
    rng.shuffle(&mut out);
    out
}

fn fill(rng: &mut SplitMix, batch: &mut [u32]) {
    for a in batch {
        *a = rng.next_u32();
    }
}

/// The IPv4 run: the cases of `lpm_perf_autotest`, lines prefixed `lpm`.
pub fn run(args: &Args, hz: u64) -> ExitCode {
    let mut rng = SplitMix(args.seed);
    let table = routes(&mut rng);

    let mut lpm = Dir24Lpm::new();
    if let Err(code) = super::add_all("lpm", &mut lpm, &table) {
        return code;
    }

    let mut reference = ReferenceLpm::new();
    for &(p, nh) in &table {
        reference.add(p, nh);
    }
    let mut bad = 0usize;
    for _ in 0..CHECKED {
        let a = rng.next_u32();
        if lpm.lookup_u32(a) != reference.lookup(Ipv4Addr::from(a)) {
            bad += 1;
        }
    }
    drop(reference);
    if bad > 0 {
        eprintln!("lpm-bench: {bad} of {CHECKED} lookups disagree with the reference");
        return ExitCode::FAILURE;
    }

    let passes = if args.quick {
        ITERATIONS / 16
    } else {
        ITERATIONS
    };
    let mut batch = vec![0u32; BATCH_SIZE];

    let mut tally = Tally::new(BATCH_SIZE);
    for _ in 0..passes {
        fill(&mut rng, &mut batch);
        let begin = rdtsc();
        for &a in &batch {
            if black_box(lpm.lookup_u32(a)).is_none() {
                tally.misses += 1;
            }
        }
        tally.pass(rdtsc() - begin);
    }
    tally.print("lpm", "lookup");

    let mut tally = Tally::new(BATCH_SIZE);
    let mut hops = [None; BULK_SIZE];
    for _ in 0..passes {
        fill(&mut rng, &mut batch);
        let begin = rdtsc();
        for chunk in batch.chunks(BULK_SIZE) {
            lpm.lookup_bulk(chunk, &mut hops);
            tally.misses += black_box(&hops).iter().filter(|h| h.is_none()).count() as u64;
        }
        tally.pass(rdtsc() - begin);
    }
    tally.print("lpm", "bulk");

    super::delete_all("lpm", &mut lpm, &table, hz)
}
