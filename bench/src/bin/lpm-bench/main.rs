//! `lpm-bench`: our longest-prefix-match tables measured case for case the
//! way DPDK 22.11's own perf autotests measure theirs, so that
//! `scripts/compare-lpm.sh` can run both on one CPU and compare:
//!
//! - IPv4 (the default, [`v4`]): `Dir24Lpm` against `lpm_perf_autotest`
//!   (`rte_lpm`) and `fib_perf_autotest` (`rte_fib`).
//! - IPv6 (`--ipv6`, [`v6`]): `Lpm6` against `lpm6_perf_autotest`
//!   (`rte_lpm6`) and `fib6_perf_autotest` (`rte_fib6`).
//!
//! Output, one line per case (TSC cycles; figures only, nothing asserted),
//! prefixed `lpm` for IPv4 and `lpm6` for IPv6. `value` is DPDK's figure
//! (all passes' cycles over all lookups); `best` is the fastest pass's, a
//! figure that a busy machine inflates less (a pass of 100,000 lookups is
//! shorter than a scheduler slice, so some run undisturbed), for A/B
//! comparisons of builds:
//! `lpm case=add value=.. unit=cyc/route routes=.. unique=..`
//! `lpm case=lookup value=.. unit=cyc/addr misses=..% best=..`
//! `lpm case=bulk value=.. unit=cyc/addr misses=..% best=..`
//! `lpm case=delete value=.. unit=cyc/route`
//! `lpm memory bytes=.. groups=.. max_groups=.. hugepages_advised=.. tsc_hz=..`
#![forbid(unsafe_code)]

mod v4;
mod v6;

use bench::pick_cpus;
use clap::Parser;
use drivers::cpu::{pin_current_thread, tsc_hz};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    about = "LPM micro-benchmark, case for case DPDK's lpm_perf_autotest / lpm6_perf_autotest"
)]
struct Args {
    /// A sixteenth of the lookup passes (a smoke run).
    #[arg(long)]
    quick: bool,
    /// Seed of the route and address stream.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// CPU to run on, as a Linux CPU list; the first one is used.
    #[arg(long)]
    cpus: Option<String>,
    /// Measure the IPv6 table instead of the IPv4 one.
    #[arg(long)]
    ipv6: bool,
    /// IPv6 only: routes in the generated table, DPDK's prefix-length
    /// distribution scaled to this many (DPDK's own table has 1,000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    routes: u32,
}

/// splitmix64 (Steele, Lea, Flood 2014): cheap, well mixed, reproducible.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn next_u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }

    fn next_u128(&mut self) -> u128 {
        (u128::from(self.next()) << 64) | u128::from(self.next())
    }

    /// Fisher-Yates.
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let cpu = match pick_cpus(args.cpus.as_deref()) {
        Ok(c) => c[0],
        Err(e) => {
            eprintln!("lpm-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = pin_current_thread(cpu) {
        eprintln!("lpm-bench: cannot pin to CPU {cpu}: {e}");
        return ExitCode::FAILURE;
    }
    let hz = tsc_hz();
    if args.ipv6 {
        v6::run(&args, hz)
    } else {
        v4::run(&args, hz)
    }
}
