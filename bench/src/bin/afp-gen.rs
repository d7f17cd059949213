//! A traffic generator on one kernel interface through our AF_PACKET port
//! (its TX ring): 64-byte IPv4/UDP frames of `--flows` flows (by source
//! port) to a unicast MAC that no interface has, as fast as the ring takes
//! them or at `--pps`, for `--duration` seconds. scripts/compare-afpacket.sh runs it in
//! its own namespace against both forwarders, so both see the same
//! generator. The frames' addresses are RFC 2544's benchmarking range.
//!
//! The last line is, exactly:
//! `afp-gen iface=<name> sent=<n> seconds=<float> mpps=<float>`
#![forbid(unsafe_code)]

use clap::Parser;
use drivers::burst::Burst;
use drivers::mbuf::PortId;
use drivers::memory::MemoryBacking;
use drivers::pool::{Pool, PoolConfig};
use drivers::port::af_packet::AfPacketPort;
use drivers::port::{Port, TxQueue};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Send UDP frames on an interface through an AF_PACKET TX ring")]
struct Args {
    /// Interface to send on.
    #[arg(long)]
    iface: String,
    /// Seconds to send for.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Frame length (60 to 1514).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Flows (distinct UDP source ports).
    #[arg(long, default_value_t = 64)]
    flows: u16,
    /// Frames per burst.
    #[arg(long, default_value_t = 32)]
    burst: usize,
    /// Frames per second to offer (0: as fast as the ring takes them).
    /// Bursts are spaced evenly, by spinning: a forwarder compared at a
    /// rate below what it can do is measured at the same offered load.
    #[arg(long, default_value_t = 0)]
    pps: u64,
}

/// Frame of flow `flow`: to 02:00:00:00:00:01 (no interface's address, so
/// the kernel at the far end drops it early as PACKET_OTHERHOST).
fn frame(len: usize, flow: u16) -> Vec<u8> {
    drivers::testing::udp_frame(
        [0x02, 0, 0, 0, 0, 0x01],
        [0x02, 0, 0, 0, 0, 0x02],
        1024 + flow,
        b"AFPG",
        0,
        len,
    )
}

fn main() -> ExitCode {
    let a = Args::parse();
    if !(60..=1514).contains(&a.size) || a.flows == 0 || !(1..=512).contains(&a.burst) {
        eprintln!("afp-gen: --size 60-1514, --flows 1 or more, --burst 1-512");
        return ExitCode::FAILURE;
    }
    let mut port = match AfPacketPort::open(PortId(0), &a.iface, 2048) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("afp-gen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pool =
        match Pool::new(&PoolConfig::new("afp-gen", 4096).with_backing(MemoryBacking::NoHuge)) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("afp-gen: {e}");
                return ExitCode::FAILURE;
            }
        };
    let mut cache = pool.cache();
    let (_, mut tx) = match port.queues(0, 1) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("afp-gen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(q) = tx.first_mut() else {
        eprintln!("afp-gen: no TX queue");
        return ExitCode::FAILURE;
    };
    let frames: Vec<Vec<u8>> = (0..a.flows).map(|f| frame(a.size, f)).collect();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(a.duration.max(0.1));
    let (mut sent, mut next) = (0u64, 0usize);
    let mut burst = Burst::new();
    // When the next burst is due, with --pps.
    let gap = (a.pps > 0).then(|| Duration::from_secs_f64(a.burst as f64 / a.pps as f64));
    let mut due = start;
    while Instant::now() < end {
        if let Some(gap) = gap {
            while Instant::now() < due {
                std::hint::spin_loop();
            }
            due += gap;
            // Behind by more than a few bursts (descheduled): start
            // afresh rather than send a catch-up flood.
            let now = Instant::now();
            if now > due + gap * 4 {
                due = now;
            }
        }
        while burst.len() < a.burst {
            let Some(mut m) = cache.alloc() else { break };
            let f = &frames[next % frames.len()];
            next += 1;
            match m.append(f.len()) {
                Ok(d) => d.copy_from_slice(f),
                Err(_) => {
                    cache.free(m);
                    break;
                }
            }
            burst.push(m);
        }
        sent += q.tx_burst(&mut cache, &mut burst) as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    for m in burst.drain(..) {
        cache.free(m);
    }
    let _ = port.stats();
    println!(
        "afp-gen iface={} sent={sent} seconds={secs:.3} mpps={:.3}",
        a.iface,
        sent as f64 / secs / 1e6
    );
    ExitCode::SUCCESS
}
