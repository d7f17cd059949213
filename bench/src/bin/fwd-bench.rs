//! Forwarding benchmark: runs the product's forwarder on in-memory ports for
//! a fixed time and prints its rate and cost.
//!
//! The last line is, exactly:
//! `fwd mode=<io|mac|l3> ports=<kind> cores=<n> burst=<n> mpps=<float> cycles_per_pkt=<float>`
//! where Mpps counts packets forwarded (sent) per second over the measured
//! window, and cycles/packet is the forwarding cores' busy TSC cycles divided
//! by packets forwarded (what testpmd's --record-core-cycles reports).
//!
//! `--mode l3` (ring ports) runs io first, then the router on the same
//! ports, and prints both lines (l3 last) and their ratio. The router's
//! ports are seeded with valid IPv4/UDP frames to routed destinations
//! whose gateways are resolved, so every packet takes the whole pipeline
//! (checks, FIB lookup, next hop, TTL and checksum, MAC rewrite). In a loop
//! of ring ports a packet is routed again at every pass, its TTL (255)
//! falling by one each time: after 254 passes it goes to the kernel (punt
//! ring), so the l3 window is the seeds' lifetime (about half a million
//! packets with one core), not `--duration`.
//!
//! `--hot` also times the pipeline alone on one burst kept in cache;
//! `--stages` splits that time into the fused common case's parts and each
//! stage of the staged pipeline (the reference the fused path is checked
//! against); `--hot-only` stops there (for counting instructions under
//! valgrind: `valgrind --tool=callgrind fwd-bench --mode l3 --ports ring
//! --hot --hot-only --hot-rounds 20000`).
#![forbid(unsafe_code)]

use clap::Parser;
use config::core_choice::CoreChoice;
use config::cpu_list::parse_cpu_list;
use config::port_spec::PortSpec;
use config::run_config::RunConfig;
use config::run_config::ValidRunConfig;
use drivers::cpu::tsc_hz;
use drivers::memory::MemoryBacking;
use fastpath::counters::CoreSnapshot;
use fastpath::forwarder::Forwarder;
use fastpath::forwarder::{FinalReport, L3Setup, Snapshot};
use fastpath::fwd_mode::FwdMode;
use fastpath::l3::ring_loop::{ring_loop, ring_mac};
use fastpath::l3::PortIndex;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(about = "Time the in-memory forwarder")]
struct Args {
    /// Forwarding mode (io, mac, or l3: io then l3, on ring ports).
    #[arg(long, default_value = "io")]
    mode: FwdMode,
    /// Port kind: null or ring.
    #[arg(long, default_value = "null")]
    ports: PortSpec,
    /// Number of ports (ring ports pair up, so even).
    #[arg(long, default_value_t = 2)]
    nports: usize,
    /// Worker cores (picked from the allowed CPUs, first one left free).
    #[arg(long, default_value_t = 1)]
    cores: usize,
    /// Exact worker CPUs (overrides --cores), e.g. `1`.
    #[arg(long)]
    cpus: Option<String>,
    /// Burst size.
    #[arg(long, default_value_t = 32)]
    burst: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of forwarding before the measurement starts.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Bursts seeded on every TX queue at start (testpmd's `start tx_first
    /// N`); default: 16 with ring ports, 0 otherwise.
    #[arg(long)]
    tx_first: Option<usize>,
    /// Use 4 KiB pages instead of hugepages.
    #[arg(long)]
    no_huge: bool,
    /// With `--mode l3`: also time the pipeline alone, in-process, on one
    /// burst of frames kept hot in cache (no ports, no ring), to tell the
    /// pipeline's own work from the cost of touching packets.
    #[arg(long)]
    hot: bool,
    /// With `--hot`: also time each stage of the pipeline on its own (the
    /// stages run one after another over the burst, each timed; the sum
    /// is a little above the whole for the timer reads).
    #[arg(long)]
    stages: bool,
    /// Bursts routed by `--hot` (and by each part of `--stages`).
    #[arg(long, default_value_t = 200_000)]
    hot_rounds: u32,
    /// With `--hot`: only the hot runs, no io or ring run (for counting
    /// instructions under valgrind, where the ring threads would crawl).
    #[arg(long)]
    hot_only: bool,
}

fn total(s: &[(drivers::cpu::CpuId, CoreSnapshot)]) -> CoreSnapshot {
    let mut t = CoreSnapshot::default();
    for (_, c) in s {
        t.rx += c.rx;
        t.tx += c.tx;
        t.busy_cycles += c.busy_cycles;
        t.idle_cycles += c.idle_cycles;
        for (a, b) in t.punts.iter_mut().zip(c.punts) {
            *a += b;
        }
        for (a, b) in t.drops.iter_mut().zip(c.drops) {
            *a += b;
        }
    }
    t
}

/// Routed destinations per port (see `fastpath::l3::ring_loop`).
const DESTS: usize = 64;

fn l3_setup(nports: usize) -> Result<L3Setup, String> {
    let (tables, seeds) = ring_loop(nports, DESTS).map_err(|e| e.to_string())?;
    Ok(L3Setup { tables, seeds })
}

/// A run's figures.
struct Figures {
    d: CoreSnapshot,
    secs: f64,
    last: Snapshot,
    report: FinalReport,
}

impl Figures {
    /// Stops `fwd` and keeps the counters between two snapshots.
    fn between(fwd: Forwarder, first: &Snapshot, last: Snapshot) -> Figures {
        let report = fwd.stop();
        Figures {
            d: total(&last.cores).since(&total(&first.cores)),
            secs: (last.elapsed - first.elapsed).as_secs_f64(),
            last,
            report,
        }
    }

    fn mpps(&self) -> f64 {
        self.d.tx as f64 / self.secs / 1e6
    }

    fn cpp(&self) -> f64 {
        self.d.cycles_per_packet().unwrap_or(f64::NAN)
    }

    fn print(&self, a: &Args, mode: FwdMode) {
        eprintln!(
            "fwd-bench: {mode}: {} packets in {:.3} s on CPUs {:?}, busy {:.1}%, TSC {:.0} MHz, punted {}, dropped {}, buffers {}/{} returned",
            self.d.tx,
            self.secs,
            self.last.cores.iter().map(|(c, _)| c.0).collect::<Vec<_>>(),
            self.d.busy_ratio() * 100.0,
            tsc_hz() as f64 / 1e6,
            self.d.punted(),
            self.d.dropped(),
            self.report.buffers_returned,
            self.report.last.pool_count,
        );
        println!(
            "fwd mode={mode} ports={} cores={} burst={} mpps={:.3} cycles_per_pkt={:.2}",
            a.ports,
            self.last.cores.len(),
            a.burst,
            self.mpps(),
            self.cpp()
        );
    }
}

/// Steady state: `warmup`, then `duration` measured.
fn steady(fwd: Forwarder, a: &Args) -> Figures {
    std::thread::sleep(Duration::from_secs_f64(a.warmup.max(0.0)));
    let first = fwd.snapshot();
    std::thread::sleep(Duration::from_secs_f64(a.duration.max(0.1)));
    let last = fwd.snapshot();
    Figures::between(fwd, &first, last)
}

/// The l3 loop's lifetime: from the end of the seeding (every seed sent)
/// until nothing more is received for a while, or `duration`.
fn lifetime(mut fwd: Forwarder, a: &Args, seeds: u64) -> Figures {
    // The kernel's side, as the exception thread would: take the punts
    // and free them. The seeds expire together, within one pass of the
    // loop: more than a punt ring holds, so some are still counted
    // `punt_ring_full` drops.
    let mut rings = fwd.take_punt_rings();
    let mut drain = move || {
        for r in rings.iter_mut() {
            while r.pop().is_some() {}
        }
    };
    let poll = Duration::from_millis(2);
    let end = std::time::Instant::now() + Duration::from_secs_f64(a.duration.max(0.1));
    let mut first = fwd.snapshot();
    while total(&first.cores).tx < seeds && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_micros(100));
        first = fwd.snapshot();
    }
    // The window ends at the last snapshot that saw packets move, not
    // after the idle polls that tell the loop has died: those 20 ms would
    // count as the window's (idle) time and dilute its packet rate. At most
    // one poll (2 ms) of idle time after the seeds' end stays in it.
    let mut last = fwd.snapshot();
    let mut still = 0;
    while still < 10 && std::time::Instant::now() < end {
        std::thread::sleep(poll);
        drain();
        let now = fwd.snapshot();
        if total(&now.cores).rx == total(&last.cores).rx {
            still += 1;
        } else {
            still = 0;
            last = now;
        }
    }
    Figures::between(fwd, &first, last)
}

/// One burst of the seeds of port 0, in buffers of a pool of its own.
fn hot_burst(
    setup: &L3Setup,
    burst_size: usize,
) -> Result<(drivers::pool::Pool, drivers::burst::Burst), String> {
    use drivers::burst::Burst;
    use drivers::pool::{Pool, PoolConfig};
    let pool = Pool::new(&PoolConfig::new("hot", 1024).with_backing(MemoryBacking::NoHuge))
        .map_err(|e| e.to_string())?;
    let frames = setup.seeds.first().ok_or("no seeds")?;
    let mut burst = Burst::new();
    for i in 0..burst_size.min(drivers::burst::MAX_BURST) {
        let f = &frames[i % frames.len()];
        let mut m = pool.alloc().ok_or("pool empty")?;
        m.append(f.len())
            .map_err(|e| e.to_string())?
            .copy_from_slice(f);
        burst.push(m);
    }
    Ok((pool, burst))
}

/// Takes the routed frames back from `out` into `burst`, each restored
/// to the seed it was (TTL, checksum, addresses, length), and checks all
/// `n` came back.
fn take_back(
    setup: &L3Setup,
    out: &mut fastpath::l3::L3Out,
    burst: &mut drivers::burst::Burst,
    n: usize,
) -> Result<(), String> {
    let frames = setup.seeds.first().ok_or("no seeds")?;
    for b in out.tx.iter_mut() {
        for mut m in b.drain(..) {
            let f = &frames[burst.len() % frames.len()];
            let d = m.data_mut();
            let k = d.len().min(f.len());
            d[..k].copy_from_slice(&f[..k]);
            burst.push(m);
        }
    }
    if burst.len() != n {
        return Err(format!("{} of {n} frames came back routed", burst.len()));
    }
    Ok(())
}

/// The context the hot runs route in: frames arrive on port 1 (the seeds
/// of port 0 are addressed to it).
fn hot_ctx(setup: &L3Setup) -> fastpath::l3::Ctx<'_> {
    fastpath::l3::Ctx {
        tables: &setup.tables,
        in_port: PortIndex(1),
    }
}

/// The pipeline alone on one burst kept in cache: route it, take the
/// routed frames back, restore their TTL and checksum, again. Returns
/// cycles per packet of the routing alone.
fn hot_pipeline(setup: &L3Setup, burst_size: usize, rounds: u32) -> Result<f64, String> {
    use fastpath::l3::{L3Out, Pipeline};
    let (_pool, mut burst) = hot_burst(setup, burst_size)?;
    let n = burst.len();
    let mut pipeline = Pipeline::new();
    let mut out = L3Out::new(setup.seeds.len());
    let mut c = CoreSnapshot::default();
    let ctx = hot_ctx(setup);
    let mut cycles = 0u64;
    for _ in 0..rounds {
        let t0 = drivers::cpu::rdtsc();
        pipeline.run(ctx, &mut burst, &mut out, &mut c);
        cycles += drivers::cpu::rdtsc().wrapping_sub(t0);
        take_back(setup, &mut out, &mut burst, n)?;
    }
    Ok(cycles as f64 / (f64::from(rounds) * n as f64))
}

/// The fused common case (fused pass, ends) and then the
/// stages one by one on a hot burst, each timed: cycles per packet of
/// each, by name.
fn hot_stages(
    setup: &L3Setup,
    burst_size: usize,
    rounds: u32,
) -> Result<Vec<(&'static str, f64)>, String> {
    use fastpath::l3::{
        eth_input, fast_path, fib_lookup, ip4_input, ip6_input, ip_forward, output, resolve,
        rewrite, L3Out, Meta, Next,
    };
    type Stage = fn(fastpath::l3::Ctx<'_>, &mut [drivers::mbuf::Mbuf], &mut [Meta]);
    let stages: [(&'static str, Stage); 7] = [
        ("eth_input", eth_input::run),
        ("ip4_input", ip4_input::run),
        ("ip6_input", ip6_input::run),
        ("fib_lookup", fib_lookup::run),
        ("resolve", resolve::run),
        ("ip_forward", ip_forward::run),
        ("rewrite", rewrite::run),
    ];
    let (_pool, mut burst) = hot_burst(setup, burst_size)?;
    let n = burst.len();
    let mut out = L3Out::new(setup.seeds.len());
    let ctx = hot_ctx(setup);
    let mut meta = vec![Meta::START; n];
    let mut cycles = [0u64; 8];
    for _ in 0..rounds {
        meta.fill(Meta::START);
        for ((_, run), c) in stages.iter().zip(cycles.iter_mut()) {
            let t0 = drivers::cpu::rdtsc();
            run(ctx, &mut burst, &mut meta);
            *c += drivers::cpu::rdtsc().wrapping_sub(t0);
        }
        let t0 = drivers::cpu::rdtsc();
        for (m, meta) in burst.drain(..).zip(meta.iter()) {
            let Next::Output(port) = meta.next else {
                return Err(format!("a seed ended at {:?}", meta.next));
            };
            output::buffer(&mut out, port, m).map_err(|(_, r)| r.to_string())?;
        }
        cycles[7] += drivers::cpu::rdtsc().wrapping_sub(t0);
        take_back(setup, &mut out, &mut burst, n)?;
    }
    // The fused common case the same way: fused pass (it sets every
    // packet's `Meta`, no fill first), ends.
    let mut fused = [0u64; 2];
    let mut scratch = Box::<fast_path::Scratch>::default();
    for _ in 0..rounds {
        let t1 = drivers::cpu::rdtsc();
        let done = fast_path::run(ctx, &mut burst, &mut meta, &mut scratch);
        let t2 = drivers::cpu::rdtsc();
        // As the pipeline ends a burst: whole to one port's buffer, or
        // packet by packet.
        match done.all_to.and_then(|p| out.tx.get_mut(p.index())) {
            Some(buf) if buf.remaining_capacity() >= burst.len() => buf.extend(burst.drain(..)),
            _ => {
                for (m, meta) in burst.drain(..).zip(meta.iter()) {
                    let Next::Output(port) = meta.next else {
                        return Err(format!("a seed ended at {:?}", meta.next));
                    };
                    output::buffer(&mut out, port, m).map_err(|(_, r)| r.to_string())?;
                }
            }
        }
        let t3 = drivers::cpu::rdtsc();
        if done.done != n {
            return Err(format!("the fused path took {} of {n} seeds", done.done));
        }
        for (c, (a, b)) in fused.iter_mut().zip([(t1, t2), (t2, t3)]) {
            *c += b.wrapping_sub(a);
        }
        take_back(setup, &mut out, &mut burst, n)?;
    }
    let per = |c: u64| c as f64 / (f64::from(rounds) * n as f64);
    Ok(["fast_path", "ends"]
        .into_iter()
        .zip(fused)
        .map(|(name, c)| (name, per(c)))
        .chain(
            stages
                .iter()
                .map(|(name, _)| *name)
                .chain(["ends"])
                .zip(cycles)
                .map(|(name, c)| (name, per(c))),
        )
        .collect())
}

fn start(cfg: &ValidRunConfig, setup: Option<L3Setup>) -> Result<Forwarder, String> {
    match setup {
        Some(s) => Forwarder::start_l3(cfg, s),
        None => Forwarder::start(cfg),
    }
    .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let a = Args::parse();
    let cores = match &a.cpus {
        Some(l) => match parse_cpu_list(l) {
            Ok(s) => CoreChoice::List(s),
            Err(e) => {
                eprintln!("fwd-bench: --cpus: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => CoreChoice::Count(a.cores),
    };
    let build = |mode: FwdMode, tx_first: Option<usize>| {
        RunConfig {
            ports: vec![a.ports.clone(); a.nports],
            cores: cores.clone(),
            mode,
            burst: a.burst,
            tx_first,
            backing: if a.no_huge {
                MemoryBacking::NoHuge
            } else {
                MemoryBacking::default()
            },
            ..RunConfig::default()
        }
        .validate()
        .map_err(|e| e.to_string())
    };
    let mut ok = true;
    let mut io_cpp = None;
    if a.mode == FwdMode::L3 && !(a.hot && a.hot_only) {
        if a.ports != PortSpec::Ring {
            eprintln!("fwd-bench: --mode l3 needs --ports ring (a loop the seeds go round)");
            return ExitCode::FAILURE;
        }
        // io first, as its own run, for the comparison.
        let figs = match build(FwdMode::Io, a.tx_first).and_then(|c| start(&c, None)) {
            Ok(fwd) => steady(fwd, &a),
            Err(e) => {
                eprintln!("fwd-bench: io: {e}");
                return ExitCode::FAILURE;
            }
        };
        figs.print(&a, FwdMode::Io);
        ok &= figs.report.all_buffers_returned();
        io_cpp = Some(figs.cpp());
    }
    let figs = if a.mode == FwdMode::L3 {
        let setup = match l3_setup(a.nports) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("fwd-bench: l3 tables: {e}");
                return ExitCode::FAILURE;
            }
        };
        if a.hot {
            match hot_pipeline(&setup, a.burst, a.hot_rounds) {
                Ok(c) => eprintln!(
                    "fwd-bench: l3 pipeline alone, hot burst of {}: {c:.1} cycles/pkt",
                    a.burst
                ),
                Err(e) => {
                    eprintln!("fwd-bench: hot pipeline: {e}");
                    return ExitCode::FAILURE;
                }
            }
            if a.stages {
                match hot_stages(&setup, a.burst, a.hot_rounds) {
                    Ok(s) => {
                        let (fused, staged) = s.split_at(2.min(s.len()));
                        for (what, part) in [("fused", fused), ("stages", staged)] {
                            let sum: f64 = part.iter().map(|(_, c)| c).sum();
                            let each: Vec<String> =
                                part.iter().map(|(n, c)| format!("{n} {c:.1}")).collect();
                            eprintln!(
                                "fwd-bench: l3 {what}, cycles/pkt: {} (sum {sum:.1})",
                                each.join(", ")
                            );
                        }
                    }
                    Err(e) => {
                        eprintln!("fwd-bench: hot stages: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            if a.hot_only {
                return ExitCode::SUCCESS;
            }
        }
        // As many seeds as the ring ports hold: the loop's lifetime is
        // 254 passes of them.
        let tx_first = a
            .tx_first
            .unwrap_or(RunConfig::default().ring_size / a.burst.max(1));
        let cfg = match build(FwdMode::L3, Some(tx_first)) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("fwd-bench: {e}");
                return ExitCode::FAILURE;
            }
        };
        let fwd = match start(&cfg, Some(setup)) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("fwd-bench: {e}");
                return ExitCode::FAILURE;
            }
        };
        let macs_ok = fwd
            .ports()
            .iter()
            .enumerate()
            .all(|(p, (info, _))| info.mac == ring_mac(p));
        if !macs_ok {
            eprintln!("fwd-bench: ring port MACs are not the ones the l3 tables assume");
            let _ = fwd.stop();
            return ExitCode::FAILURE;
        }
        let seeds = (tx_first * a.burst * a.nports * fwd.cpus().len()) as u64;
        lifetime(fwd, &a, seeds)
    } else {
        match build(a.mode, a.tx_first).and_then(|c| start(&c, None)) {
            Ok(fwd) => steady(fwd, &a),
            Err(e) => {
                eprintln!("fwd-bench: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    if let Some(io) = io_cpp {
        eprintln!(
            "fwd-bench: l3/io cycles per packet: {:.2} (target at most 2)",
            figs.cpp() / io
        );
    }
    figs.print(&a, a.mode);
    ok &= figs.report.all_buffers_returned();
    if ok {
        ExitCode::SUCCESS
    } else {
        eprintln!("fwd-bench: buffers lost");
        ExitCode::from(2)
    }
}
