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
use drivers::cpu::{pin_current_thread, rdtsc, tsc_hz};
use fastpath::fib::{Dir24Lpm, FibError, Lpm6, NextHopId, Prefix4, Prefix6};
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

/// The timed lookup passes of one case: cycles, misses, the fastest pass.
struct Tally {
    cycles: u64,
    misses: u64,
    best: u64,
    lookups: u64,
    per_pass: f64,
}

impl Tally {
    fn new(per_pass: usize) -> Self {
        Tally {
            cycles: 0,
            misses: 0,
            best: u64::MAX,
            lookups: 0,
            per_pass: per_pass as f64,
        }
    }

    /// One pass of `per_pass` lookups took `cycles`.
    fn pass(&mut self, cycles: u64) {
        self.cycles += cycles;
        self.best = self.best.min(cycles);
        self.lookups += self.per_pass as u64;
    }

    /// The case's line: `lpm case=lookup value=.. unit=cyc/addr ...`.
    fn print(&self, family: &str, case: &str) {
        let total = self.lookups.max(1) as f64;
        println!(
            "{family} case={case} value={:.1} unit=cyc/addr misses={:.1}% best={:.1}",
            self.cycles as f64 / total,
            self.misses as f64 * 100.0 / total,
            self.best as f64 / self.per_pass
        );
    }
}

/// What the add and delete cases need of either table.
trait Table {
    type Prefix: Copy + std::fmt::Display;
    fn add(&mut self, p: Self::Prefix, nh: NextHopId) -> Result<Option<NextHopId>, FibError>;
    fn delete(&mut self, p: Self::Prefix) -> Option<NextHopId>;
    fn len(&self) -> usize;
    fn groups_in_use(&self) -> usize;
    fn max_groups(&self) -> u32;
    fn hugepages_advised(&self) -> bool;
    fn memory_bytes(&self) -> usize;
}

macro_rules! table {
    ($t:ty, $p:ty) => {
        impl Table for $t {
            type Prefix = $p;
            fn add(&mut self, p: $p, nh: NextHopId) -> Result<Option<NextHopId>, FibError> {
                <$t>::add(self, p, nh)
            }
            fn delete(&mut self, p: $p) -> Option<NextHopId> {
                <$t>::delete(self, p)
            }
            fn len(&self) -> usize {
                <$t>::len(self)
            }
            fn groups_in_use(&self) -> usize {
                <$t>::groups_in_use(self)
            }
            fn max_groups(&self) -> u32 {
                <$t>::max_groups(self)
            }
            fn hugepages_advised(&self) -> bool {
                <$t>::hugepages_advised(self)
            }
            fn memory_bytes(&self) -> usize {
                <$t>::memory_bytes(self)
            }
        }
    };
}
table!(Dir24Lpm, Prefix4);
table!(Lpm6, Prefix6);

/// The first case of a run: every route added (timed). An add refused is
/// reported and fails the run.
fn add_all<T: Table>(
    family: &str,
    lpm: &mut T,
    table: &[(T::Prefix, NextHopId)],
) -> Result<(), ExitCode> {
    let begin = rdtsc();
    for &(p, nh) in table {
        if let Err(e) = lpm.add(p, nh) {
            eprintln!("lpm-bench: add {p}: {e}");
            return Err(ExitCode::FAILURE);
        }
    }
    let add = (rdtsc() - begin) as f64 / table.len().max(1) as f64;
    println!(
        "{family} case=add value={add:.0} unit=cyc/route routes={} unique={}",
        table.len(),
        lpm.len()
    );
    Ok(())
}

/// The last cases of a run: the memory the full table holds, then every
/// route deleted (timed); fails if any route or group is left.
fn delete_all<T: Table>(
    family: &str,
    lpm: &mut T,
    table: &[(T::Prefix, NextHopId)],
    hz: u64,
) -> ExitCode {
    let memory = lpm.memory_bytes();
    let groups = lpm.groups_in_use();
    let begin = rdtsc();
    for &(p, _) in table {
        lpm.delete(p);
    }
    let delete = (rdtsc() - begin) as f64 / table.len().max(1) as f64;
    println!("{family} case=delete value={delete:.0} unit=cyc/route");
    println!(
        "{family} memory bytes={memory} groups={groups} max_groups={} hugepages_advised={} tsc_hz={hz}",
        lpm.max_groups(),
        lpm.hugepages_advised()
    );
    if lpm.len() != 0 || lpm.groups_in_use() != 0 {
        eprintln!(
            "lpm-bench: {} routes and {} groups left after deleting all",
            lpm.len(),
            lpm.groups_in_use()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
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
