//! Forwarding benchmark: runs the product's forwarder on in-memory ports for
//! a fixed time and prints its rate and cost.
//!
//! The last line is, exactly:
//! `fwd mode=<io|mac> ports=<kind> cores=<n> burst=<n> mpps=<float> cycles_per_pkt=<float>`
//! where Mpps counts packets forwarded (sent) per second over the measured
//! window, and cycles/packet is the forwarding cores' busy TSC cycles divided
//! by packets forwarded (what testpmd's --record-core-cycles reports).
#![forbid(unsafe_code)]

use clap::Parser;
use config::core_choice::CoreChoice;
use config::cpu_list::parse_cpu_list;
use config::port_spec::PortSpec;
use config::run_config::RunConfig;
use drivers::cpu::tsc_hz;
use drivers::memory::MemoryBacking;
use fastpath::counters::CoreSnapshot;
use fastpath::forwarder::Forwarder;
use fastpath::fwd_mode::FwdMode;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(about = "Time the in-memory forwarder")]
struct Args {
    /// Forwarding mode (io or mac).
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
}

fn total(s: &[(drivers::cpu::CpuId, CoreSnapshot)]) -> CoreSnapshot {
    let mut t = CoreSnapshot::default();
    for (_, c) in s {
        t.rx += c.rx;
        t.tx += c.tx;
        t.busy_cycles += c.busy_cycles;
        t.idle_cycles += c.idle_cycles;
    }
    t
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
    let cfg = RunConfig {
        ports: vec![a.ports.clone(); a.nports],
        cores,
        mode: a.mode,
        burst: a.burst,
        tx_first: a.tx_first,
        backing: if a.no_huge {
            MemoryBacking::NoHuge
        } else {
            MemoryBacking::default()
        },
        ..RunConfig::default()
    };
    let cfg = match cfg.validate() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fwd-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let fwd = match Forwarder::start(&cfg) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fwd-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ncores = fwd.cpus().len();
    std::thread::sleep(Duration::from_secs_f64(a.warmup.max(0.0)));
    let first = fwd.snapshot();
    std::thread::sleep(Duration::from_secs_f64(a.duration.max(0.1)));
    let last = fwd.snapshot();
    let report = fwd.stop();
    let d = total(&last.cores).since(&total(&first.cores));
    let secs = (last.elapsed - first.elapsed).as_secs_f64();
    let mpps = d.tx as f64 / secs / 1e6;
    let cpp = d.cycles_per_packet().unwrap_or(f64::NAN);
    eprintln!(
        "fwd-bench: {} packets in {secs:.2} s on CPUs {:?}, busy {:.1}%, TSC {:.0} MHz, buffers {}/{} returned",
        d.tx,
        last.cores.iter().map(|(c, _)| c.0).collect::<Vec<_>>(),
        d.busy_ratio() * 100.0,
        tsc_hz() as f64 / 1e6,
        report.buffers_returned,
        report.last.pool_count,
    );
    println!(
        "fwd mode={} ports={} cores={ncores} burst={} mpps={mpps:.3} cycles_per_pkt={cpp:.2}",
        a.mode, a.ports, a.burst
    );
    if report.all_buffers_returned() {
        ExitCode::SUCCESS
    } else {
        eprintln!("fwd-bench: buffers lost");
        ExitCode::from(2)
    }
}
