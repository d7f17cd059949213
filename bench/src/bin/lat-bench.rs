//! Latency benchmark: packets stamped with the TSC by a source, forwarded
//! by the product's worker loop (io mode, pinned on its own CPU) between
//! two ring ports, and timed by a sink, at several offered loads.
//!
//! First the maximum of that loop is measured (the source as fast as it
//! can, for `--max-duration`), then each load of `--loads` (percentages
//! of that maximum, in bursts of `--burst`) and of `--single-loads` (in
//! bursts of 1) is offered, paced by the TSC, for `--warmup` +
//! `--duration`. Lines, one per run, then a summary (all `key=value`):
//!
//! `lat load=max|<p>% offered_mpps= achieved_mpps= burst= p50_ns= p99_ns= p999_ns= p9999_ns= max_ns= sent= received= dropped= lost= ...`
//! `lat summary cases= max_mpps= sent= received= dropped= lost= unmeasured= src_nombuf= buffers=N/N tsc_mhz= status=ok|FAILED`
//!
//! Exit status: 0; 1 if it could not start, a packet was lost, a delay
//! could not be measured or the port counters disagree with the tally;
//! 2 for bad options; 3 if the buffer audit failed.
#![forbid(unsafe_code)]

use bench::latency::pacing::{parse_loads, rate_at};
use bench::latency::report::{Load, LoadLine, Percentiles, Summary};
use bench::latency::rig::{Rig, RigConfig};
use bench::latency::tally::Tally;
use bench::latency::traffic::{self, Plan, MIN_FRAME};
use bench::pick_cpus;
use clap::Parser;
use drivers::burst::MAX_BURST;
use drivers::cpu::{tsc_hz, CpuId};
use drivers::mbuf::DEFAULT_DATA_ROOM;
use drivers::memory::MemoryBacking;
use fastpath::fwd_mode::FwdMode;
use hdrhistogram::Histogram;
use std::process::ExitCode;

/// A list of loads as one option value (clap would take a `Vec` as an
/// option given several times).
#[derive(Debug, Clone)]
struct Loads(Vec<u32>);

fn loads(s: &str) -> Result<Loads, String> {
    parse_loads(s).map(Loads)
}

#[derive(Parser, Debug)]
#[command(about = "Latency of the forwarder between two ring ports, at several offered loads")]
struct Args {
    /// Loads offered in bursts of --burst: percentages of the measured maximum.
    #[arg(long, default_value = "10,50,90", value_parser = loads)]
    loads: Loads,
    /// Loads offered in bursts of 1 (per-packet latency); `none` for none.
    #[arg(long, default_value = "10", value_parser = loads)]
    single_loads: Loads,
    /// Packets per source burst for --loads and the maximum.
    #[arg(long, default_value_t = 32)]
    burst: usize,
    /// Measured seconds per load (after --warmup).
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Seconds at each load before delays are recorded.
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// Seconds of the unpaced run that measures the maximum.
    #[arg(long, default_value_t = 1.0)]
    max_duration: f64,
    /// Take this maximum (Mpps) instead of measuring it.
    #[arg(long)]
    max_mpps: Option<f64>,
    /// Longest wait, seconds, for the last packets of a run.
    #[arg(long, default_value_t = 1.0)]
    drain: f64,
    /// The forwarder's CPU (default: the second allowed CPU).
    #[arg(long)]
    fwd_cpu: Option<u32>,
    /// The source's and sink's CPU (default: the first allowed CPU).
    #[arg(long)]
    gen_cpu: Option<u32>,
    /// The forwarder's RX burst (`fastpath run --burst`).
    #[arg(long, default_value_t = 32)]
    fwd_burst: usize,
    /// Forwarding mode.
    #[arg(long, default_value = "io")]
    mode: FwdMode,
    /// Slots of each ring (a power of two).
    #[arg(long, default_value_t = 1024)]
    ring_size: usize,
    /// Frame length, bytes.
    #[arg(long, default_value_t = 64)]
    packet_size: usize,
    /// Per-core cache of the pool.
    #[arg(long, default_value_t = 256)]
    cache_size: usize,
    /// Use 4 KiB pages instead of hugepages.
    #[arg(long)]
    no_huge: bool,
}

/// Checks what clap cannot: ranges that depend on each other.
fn check(a: &Args) -> Result<(), String> {
    for (name, v, min) in [
        ("--duration", a.duration, 0.001),
        ("--warmup", a.warmup, 0.0),
        ("--max-duration", a.max_duration, 0.001),
        ("--drain", a.drain, 0.001),
    ] {
        if !(v.is_finite() && v >= min && v <= 3600.0) {
            return Err(format!("{name}: {v} seconds: give {min} to 3600"));
        }
    }
    if !(1..=MAX_BURST).contains(&a.burst) {
        return Err(format!("--burst: {}: give 1 to {MAX_BURST}", a.burst));
    }
    if !(1..=MAX_BURST).contains(&a.fwd_burst) {
        return Err(format!(
            "--fwd-burst: {}: give 1 to {MAX_BURST}",
            a.fwd_burst
        ));
    }
    let room = usize::from(DEFAULT_DATA_ROOM);
    if !(MIN_FRAME.max(60)..=room).contains(&a.packet_size) {
        return Err(format!(
            "--packet-size: {}: give {} to {room}",
            a.packet_size,
            MIN_FRAME.max(60)
        ));
    }
    if !a.ring_size.is_power_of_two() || !(2..=65536).contains(&a.ring_size) {
        return Err(format!(
            "--ring-size: {}: give a power of two, 2 to 65536",
            a.ring_size
        ));
    }
    if let Some(m) = a.max_mpps {
        if !(m.is_finite() && m > 0.0) {
            return Err(format!("--max-mpps: {m}: give a rate above 0"));
        }
    }
    if a.loads.0.is_empty() && a.single_loads.0.is_empty() {
        return Err("--loads and --single-loads are both empty: nothing to measure".into());
    }
    Ok(())
}

/// The two CPUs: given, or the first two allowed.
fn cpus(a: &Args) -> Result<(CpuId, CpuId), String> {
    let allowed = pick_cpus(None)?;
    let pick = |given: Option<u32>, index: usize, what: &str| match given {
        Some(c) if allowed.contains(&CpuId(c)) => Ok(CpuId(c)),
        Some(c) => Err(format!(
            "--{what}: CPU {c} is not allowed here ({allowed:?})"
        )),
        None => allowed.get(index).copied().ok_or_else(|| {
            format!(
                "two CPUs are needed (the forwarder busy-polls one), {} allowed",
                allowed.len()
            )
        }),
    };
    Ok((
        pick(a.gen_cpu, 0, "gen-cpu")?,
        pick(a.fwd_cpu, 1, "fwd-cpu")?,
    ))
}

fn secs_to_cycles(s: f64, hz: u64) -> u64 {
    (s * hz as f64) as u64
}

fn main() -> ExitCode {
    let a = Args::parse();
    if let Err(e) = check(&a) {
        eprintln!("lat-bench: {e}");
        return ExitCode::from(2);
    }
    let (gen_cpu, fwd_cpu) = match cpus(&a) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lat-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let hz = tsc_hz();
    let cfg = RigConfig {
        fwd_cpu,
        gen_cpu,
        fwd_burst: a.fwd_burst,
        mode: a.mode,
        ring_size: a.ring_size,
        cache_size: a.cache_size,
        backing: if a.no_huge {
            MemoryBacking::NoHuge
        } else {
            MemoryBacking::default()
        },
    };
    let mut rig = match Rig::start(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lat-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "lat-bench: forwarder ({} mode, burst {}) on CPU {fwd_cpu}, source and sink on CPU \
         {gen_cpu}, rings of {}, {}-byte frames, TSC {:.1} MHz, {}",
        a.mode,
        a.fwd_burst,
        a.ring_size,
        a.packet_size,
        hz as f64 / 1e6,
        rig.pool().describe_memory(),
    );
    // Delays in TSC cycles, 3 significant digits, up to a minute: a
    // longer one is counted as unmeasured, never clamped.
    let mut hist = match Histogram::<u64>::new_with_bounds(1, hz.saturating_mul(60).max(2), 3) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("lat-bench: histogram: {e:?}");
            return ExitCode::FAILURE;
        }
    };
    let plan = |pps: Option<u64>, burst: usize, warmup: f64, run: f64| Plan {
        pps,
        burst,
        frame_len: a.packet_size,
        warmup_cycles: secs_to_cycles(warmup, hz),
        run_cycles: secs_to_cycles(warmup + run, hz),
        drain_cycles: secs_to_cycles(a.drain, hz),
        hz,
    };
    let mut total = Tally::default();
    let mut nombuf = 0;
    let mut run_one = |rig: &mut Rig, load: Load, burst: usize, pps: Option<u64>, p: Plan| {
        hist.reset();
        let o = traffic::run(rig, &p, &mut hist).map_err(|e| format!("load {load}: {e}"))?;
        let line = LoadLine {
            load,
            burst,
            target_pps: pps,
            secs: o.secs,
            latency: Percentiles::of(&hist),
            measured: hist.len(),
            hz,
            tally: o.tally,
            src_nombuf: o.src_nombuf,
            fwd_busy: o.fwd_busy,
        };
        println!("{line}");
        total = total.plus(&o.tally);
        nombuf += o.src_nombuf;
        Ok::<_, String>(o)
    };
    let mut failure = None;
    let max_pps = match a.max_mpps {
        Some(m) => m * 1e6,
        None => match run_one(
            &mut rig,
            Load::Max,
            a.burst,
            None,
            plan(None, a.burst, 0.0, a.max_duration),
        ) {
            Ok(o) => o.tally.received as f64 / o.secs,
            Err(e) => {
                failure = Some(e);
                0.0
            }
        },
    };
    let mut cases = 0;
    if failure.is_none() && max_pps.is_finite() && max_pps >= 1.0 {
        let runs = a
            .loads
            .0
            .iter()
            .map(|&l| (l, a.burst))
            .chain(a.single_loads.0.iter().map(|&l| (l, 1)));
        for (load, burst) in runs {
            let pps = rate_at(max_pps, load);
            if let Err(e) = run_one(
                &mut rig,
                Load::Percent(load),
                burst,
                Some(pps),
                plan(Some(pps), burst, a.warmup, a.duration),
            ) {
                failure = Some(e);
                break;
            }
            cases += 1;
        }
    } else if failure.is_none() {
        eprintln!("lat-bench: nothing reached the sink in the maximum's run: no load to offer");
    }
    // The ports' own counters must say what the tally says.
    let ports = rig.port_stats();
    let (src, sink) = (&ports[2], &ports[3]);
    let counters_agree = src.opackets == total.entered()
        && src.oerrors == total.refused_at_source
        && sink.ipackets == total.received;
    if !counters_agree {
        eprintln!(
            "lat-bench: the ports' counters disagree with the tally: source port sent {} \
             refused {}, sink port received {}; tally {total:?}",
            src.opackets, src.oerrors, sink.ipackets
        );
    }
    let audit = rig.stop();
    let summary = Summary {
        max_pps,
        cases,
        tally: total,
        src_nombuf: nombuf,
        buffers: (audit.returned, audit.count),
        hz,
    };
    println!("{summary}");
    match total.missing() {
        Ok(m) if m.total() > 0 => eprintln!("lat-bench: packets lost: {m}"),
        Ok(_) => {}
        Err(e) => eprintln!("lat-bench: {e}"),
    }
    if let Some(e) = &failure {
        eprintln!("lat-bench: {e}");
    }
    if !audit.clean() {
        eprintln!(
            "lat-bench: buffer audit failed: {} of {} buffers back{}",
            audit.returned,
            audit.count,
            if audit.worker_panicked {
                ", the forwarder panicked"
            } else {
                ""
            }
        );
        return ExitCode::from(3);
    }
    if summary.clean() && counters_agree && cases > 0 && failure.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
