//! `fastpath`: the daemon and its commands.

#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use drivers::cpu::CpuSet;
use drivers::memory::{HugepageSize, MemoryBacking};
use drivers::net::MacAddr;
use fastpath::forwarder::{CoreChoice, ForwarderConfig, PortKind};
use fastpath::fwd_mode::FwdMode;
use fastpath::run::{run, Output, RunOptions};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "fastpath", version, about = "A userspace packet fast path")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Forward packets between ports on pinned worker cores, printing
    /// statistics every second, until Ctrl-C / SIGTERM or --duration.
    Run(RunArgs),
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Ports, comma separated: `null` (RX makes packets, TX frees them),
    /// `ring` (consecutive ring ports are connected in pairs), or a VF's PCI
    /// address such as `0000:01:10.0` (bound to vfio-pci; needs hugepages).
    #[arg(long, value_delimiter = ',', default_value = "null,null")]
    ports: Vec<PortKind>,
    /// Number of worker cores, picked from the allowed CPUs (the first
    /// allowed CPU is left to the control thread).
    #[arg(long, default_value_t = 1, conflicts_with = "cpus")]
    cores: usize,
    /// Exact worker CPUs, as a list (`1,3-4`); must be allowed by the
    /// process's affinity and cgroup cpuset.
    #[arg(long)]
    cpus: Option<String>,
    /// Forwarding mode: io (untouched) or mac (rewrite Ethernet addresses).
    #[arg(long, default_value = "io")]
    mode: FwdMode,
    /// Packets per burst (1-512).
    #[arg(long, default_value_t = 32)]
    burst: usize,
    /// Stop after this many seconds (default: run until Ctrl-C / SIGTERM).
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds between statistics lines (0: only the final summary).
    #[arg(long, default_value_t = 1.0)]
    stats_period: f64,
    /// Bursts sent on every TX queue at start (seeds ring-port loops, like
    /// testpmd's `start tx_first`). Default: 16 when ring ports are used.
    #[arg(long)]
    tx_first: Option<usize>,
    /// Buffers in the pool (default: enough for rings, queues and caches).
    #[arg(long)]
    nb_mbuf: Option<u32>,
    /// Per-core buffer cache size (0-512).
    #[arg(long, default_value_t = 256)]
    cache_size: usize,
    /// Length of packets made by null ports.
    #[arg(long, default_value_t = 64)]
    packet_size: u16,
    /// Ring size per queue and direction of ring ports (a power of two).
    #[arg(long, default_value_t = 1024)]
    ring_size: usize,
    /// Destination MAC written in mac mode, per port: `PORT,MAC` (repeat).
    #[arg(long, value_parser = parse_peer)]
    eth_peer: Vec<(usize, MacAddr)>,
    /// Use ordinary 4 KiB pages instead of hugepages (software ports only:
    /// VF ports need hugepage DMA memory).
    #[arg(long, conflicts_with_all = ["huge_dir", "huge_size"])]
    no_huge: bool,
    /// Take hugepages from this hugetlbfs mount instead of anonymous ones.
    #[arg(long)]
    huge_dir: Option<PathBuf>,
    /// Hugepage size: auto, 2M or 1G.
    #[arg(long, default_value = "auto")]
    huge_size: String,
    /// Print the final summary as one JSON document on stdout (start-up
    /// and live lines go to stderr).
    #[arg(long)]
    json: bool,
}

fn parse_peer(s: &str) -> Result<(usize, MacAddr), String> {
    let (port, mac) = s.split_once(',').ok_or("expected PORT,MAC")?;
    let port = port
        .parse()
        .map_err(|_| format!("bad port number {port:?}"))?;
    let mac = mac.parse().map_err(|e| format!("{e}"))?;
    Ok((port, mac))
}

fn forwarder_config(a: &RunArgs) -> Result<ForwarderConfig, String> {
    let cores = match &a.cpus {
        Some(list) => {
            CoreChoice::List(CpuSet::parse_list(list).map_err(|e| format!("--cpus: {e}"))?)
        }
        None => CoreChoice::Count(a.cores),
    };
    let backing = if a.no_huge {
        MemoryBacking::NoHuge
    } else if let Some(dir) = &a.huge_dir {
        MemoryBacking::Hugetlbfs(dir.clone())
    } else {
        MemoryBacking::Hugepages(match a.huge_size.as_str() {
            "auto" => HugepageSize::Auto,
            "2M" | "2m" => HugepageSize::Size2M,
            "1G" | "1g" => HugepageSize::Size1G,
            other => return Err(format!("--huge-size {other:?}: expected auto, 2M or 1G")),
        })
    };
    let mut eth_peers: Vec<MacAddr> = (0..a.ports.len())
        .map(|p| MacAddr::local(p as u16))
        .collect();
    for (port, mac) in &a.eth_peer {
        *eth_peers.get_mut(*port).ok_or_else(|| {
            format!(
                "--eth-peer: no port {port} (ports are 0..{})",
                a.ports.len()
            )
        })? = *mac;
    }
    let has_ring = a.ports.contains(&PortKind::Ring);
    Ok(ForwarderConfig {
        ports: a.ports.clone(),
        cores,
        mode: a.mode,
        burst: a.burst,
        tx_first: a.tx_first.unwrap_or(if has_ring { 16 } else { 0 }),
        nb_mbuf: a.nb_mbuf,
        cache_size: a.cache_size,
        backing,
        packet_size: a.packet_size,
        ring_size: a.ring_size,
        eth_peers,
    })
}

/// Seconds as a [`Duration`]: finite and not negative.
fn seconds(option: &str, secs: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{option} {secs}: {e}"))
}

fn run_options(a: &RunArgs) -> Result<RunOptions, String> {
    Ok(RunOptions {
        output: if a.json { Output::Json } else { Output::Text },
        stats_period: Some(seconds("--stats-period", a.stats_period)?).filter(|p| !p.is_zero()),
        duration: a.duration.map(|d| seconds("--duration", d)).transpose()?,
    })
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => forwarder_config(&a).and_then(|cfg| {
            let opts = run_options(&a)?;
            run(&cfg, &opts).map_err(|e| e.to_string())
        }),
    };
    match result {
        Ok(outcome) => ExitCode::from(outcome.exit_status()),
        Err(e) => {
            // Not eprintln!, which panics when stderr is closed.
            let _ = writeln!(std::io::stderr(), "fastpath: error: {e}");
            ExitCode::FAILURE
        }
    }
}
