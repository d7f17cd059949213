//! The IPv6 mode of `lpm-bench`: our [`Lpm6`] measured the way DPDK
//! 22.11's `lpm6_perf_autotest` (`rte_lpm6`) and `fib6_perf_autotest`
//! (`rte_fib6`) measure theirs. DPDK's table is a fixed list of 1,000
//! routes with random bits and lengths spread over /1 to /128 (the counts
//! it prints, kept below); its addresses are 100,000 random addresses
//! inside the routes (400 in each of the first 250 routes of the list),
//! all looked up again in each of 1,024 passes, so no lookup misses. The
//! single case looks them up one by one; the bulk case passes all 100,000
//! to one bulk call, as DPDK's does.
//!
//! Ours draws the same shape from a fixed-seed splitmix64 stream: for each
//! length, DPDK's count (scaled by `--routes / 1000`) of random prefixes
//! with host bits cleared, in random order; then the addresses the same
//! way (4 x 100,000 / routes in each route, from the first of the list on).
//! Before timing anything, every address and as many random ones are
//! checked against [`ReferenceLpm6`]; a disagreement exits with status 1.
//! Lines are prefixed `lpm6`.

use super::{Args, SplitMix, Tally};
use drivers::cpu::rdtsc;
use fastpath::fib::{Lpm6, NextHopId, Prefix6, ReferenceLpm6};
use std::hint::black_box;
use std::net::Ipv6Addr;
use std::process::ExitCode;

/// Routes per prefix length 1 to 128 in DPDK's 1,000-route table, as
/// `lpm6_perf_autotest` prints it
/// (shared/reference/peers/dpdk/micro/lpm6_perf_autotest.log).
const ROUTES_PER_DEPTH: [u32; 128] = [
    5, 8, 9, 10, 8, 4, 5, 10, 13, 11, 10, 4, 10, 8, 4, 11, 7, 9, 10, 5, 6, 11, 5, 11, 5, 8, 8, 13,
    9, 8, 6, 11, 10, 9, 3, 8, 5, 8, 6, 9, 8, 10, 4, 6, 9, 11, 14, 5, 9, 13, 13, 8, 6, 11, 12, 6, 8,
    9, 6, 5, 4, 12, 8, 7, 3, 7, 17, 11, 3, 9, 7, 9, 5, 5, 4, 4, 4, 10, 9, 6, 5, 5, 4, 10, 6, 8, 9,
    7, 9, 9, 9, 9, 12, 6, 8, 18, 5, 8, 5, 5, 5, 4, 7, 7, 4, 6, 7, 11, 11, 6, 9, 9, 10, 10, 4, 8, 9,
    10, 7, 8, 10, 7, 5, 6, 4, 5, 10, 7,
];
/// Routes in DPDK's table.
const DPDK_ROUTES: u64 = 1000;
/// Addresses looked up per pass (DPDK's NUM_IPS_ENTRIES, 100 per route).
const BATCH_SIZE: usize = 100_000;
/// Passes (DPDK's ITERATIONS).
const ITERATIONS: u32 = 1 << 10;
/// Random addresses checked against the reference before timing, besides
/// the batch.
const RANDOM_CHECKED: usize = 100_000;

/// The generated table, in random order.
fn routes(rng: &mut SplitMix, total: u32) -> Vec<(Prefix6, NextHopId)> {
    let mut out = Vec::new();
    for (depth, &n) in (1u8..).zip(ROUTES_PER_DEPTH.iter()) {
        let n = (u64::from(n) * u64::from(total) + DPDK_ROUTES / 2) / DPDK_ROUTES;
        for _ in 0..n {
            let Ok(p) = Prefix6::new_masked(Ipv6Addr::from(rng.next_u128()), depth) else {
                continue;
            };
            out.push((p, NextHopId(rng.next_u32() & 0xffff)));
        }
    }
    rng.shuffle(&mut out);
    out
}

/// The looked-up addresses: random host bits under the routes, a run of
/// addresses per route from the first route on (DPDK: 400 a route).
fn addresses(rng: &mut SplitMix, table: &[(Prefix6, NextHopId)]) -> Vec<[u8; 16]> {
    let per_route = (4 * BATCH_SIZE / table.len().max(1)).max(1);
    (0..BATCH_SIZE)
        .map(|i| {
            let r = rng.next_u128();
            match table.get((i / per_route) % table.len().max(1)) {
                Some((p, _)) => (p.first() | (r & !p.mask())).to_be_bytes(),
                None => r.to_be_bytes(),
            }
        })
        .collect()
}

/// The IPv6 run: the cases of `lpm6_perf_autotest`, lines prefixed `lpm6`.
pub fn run(args: &Args, hz: u64) -> ExitCode {
    let mut rng = SplitMix(args.seed);
    let table = routes(&mut rng, args.routes);
    let batch = addresses(&mut rng, &table);

    let mut lpm = Lpm6::new();
    if let Err(code) = super::add_all("lpm6", &mut lpm, &table) {
        return code;
    }

    let mut reference = ReferenceLpm6::new();
    for &(p, nh) in &table {
        reference.add(p, nh);
    }
    let random: Vec<[u8; 16]> = (0..RANDOM_CHECKED)
        .map(|_| rng.next_u128().to_be_bytes())
        .collect();
    let bad = batch
        .iter()
        .chain(&random)
        .filter(|a| lpm.lookup_octets(a) != reference.lookup(Ipv6Addr::from(**a)))
        .count();
    drop(reference);
    if bad > 0 {
        eprintln!(
            "lpm-bench: {bad} of {} lookups disagree with the reference",
            batch.len() + random.len()
        );
        return ExitCode::FAILURE;
    }

    let passes = if args.quick {
        ITERATIONS / 16
    } else {
        ITERATIONS
    };

    let mut tally = Tally::new(batch.len());
    for _ in 0..passes {
        let begin = rdtsc();
        for a in &batch {
            if black_box(lpm.lookup_octets(a)).is_none() {
                tally.misses += 1;
            }
        }
        tally.pass(rdtsc() - begin);
    }
    tally.print("lpm6", "lookup");

    let mut tally = Tally::new(batch.len());
    let mut hops = vec![None; batch.len()];
    for _ in 0..passes {
        let begin = rdtsc();
        lpm.lookup_bulk(black_box(&batch), &mut hops);
        tally.pass(rdtsc() - begin);
        tally.misses += black_box(&hops).iter().filter(|h| h.is_none()).count() as u64;
    }
    tally.print("lpm6", "bulk");

    super::delete_all("lpm6", &mut lpm, &table, hz)
}
