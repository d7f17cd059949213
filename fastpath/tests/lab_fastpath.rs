//! The `fastpath` binary on two VFs in the VM lab (scripts/vmlab/):
//! `fastpath run --ports $VF0,$VF2 --mode mac` forwards frames that the PF's
//! kernel netdev sends to VF0 out of VF2 to VF1's kernel netdev, for a few
//! seconds; the test counts what the kernel receives and checks fastpath's
//! final summary and exit code.
//!
//! ```text
//!  PF netdev --AF_PACKET--> [embedded switch] --> VF0 (vfio, fastpath port 0)
//!                                                   | mac mode
//!  VF1 netdev <--AF_PACKET-- [embedded switch] <-- VF2 (vfio, fastpath port 1)
//! ```
//!
//! Why mac mode: in io mode fastpath would send the frame out of VF2
//! untouched, still addressed to VF0 (and with the PF's source MAC). The
//! embedded switch would hand it straight back to VF0 (or the PF's
//! anti-spoofing would drop it), so frames would loop between VF0 and VF2
//! and never reach the kernel. mac mode rewrites the destination to the
//! output port's peer (`--eth-peer 1,<VF1's MAC>`) and the source to VF2's
//! own MAC, which is what the switch and the spoof check want.
//!
//! Outside the lab (FASTPATH_LAB unset) it says "skipped" and passes. In
//! the lab it needs FASTPATH_LAB_VF0 and FASTPATH_LAB_VF2 (on vfio-pci),
//! FASTPATH_LAB_PF_NETDEV, FASTPATH_LAB_VF1_NETDEV, hugepages, root, and
//! the `fastpath` binary on PATH (run.sh puts it in the guest's /bin).

use drivers::burst::Burst;
use drivers::mbuf::{Mbuf, PortId};
use drivers::memory::MemoryBacking;
use drivers::net::MacAddr;
use drivers::pool::{Pool, PoolCache, PoolConfig};
use drivers::port::af_packet::AfPacketPort;
use drivers::port::{Port, RxQueue, TxQueue};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A line on the console whether the test passes or not: written to the
/// process's stdout directly, past the test harness's output capture.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

const ETHERTYPE: u16 = 0x88b5;
const MAGIC: &[u8; 4] = b"FPFW";
/// Frames injected.
const N: u32 = 1000;
/// Frames in flight (sent, not yet seen on VF1): well below VF0's RX ring
/// (512) and the kernel's queues, as the igb model drops what does not fit.
const WINDOW: u32 = 32;
/// fastpath's --duration, in seconds.
const DURATION: &str = "3";
/// Loss allowed, as a fraction of N.
const EPSILON: f64 = 0.01;

struct Env {
    vf0: String,
    vf2: String,
    pf: String,
    vf1_net: String,
}

fn lab_env() -> Option<Env> {
    if std::env::var("FASTPATH_LAB").as_deref() != Ok("1") {
        eprintln!("skipped: not in the VM lab (set FASTPATH_LAB=1)");
        return None;
    }
    let var = |n: &str| std::env::var(n).unwrap_or_else(|_| panic!("{n} is not set"));
    Some(Env {
        vf0: var("FASTPATH_LAB_VF0"),
        vf2: var("FASTPATH_LAB_VF2"),
        pf: var("FASTPATH_LAB_PF_NETDEV"),
        vf1_net: var("FASTPATH_LAB_VF1_NETDEV"),
    })
}

fn netdev_mac(dev: &str) -> MacAddr {
    let s = std::fs::read_to_string(format!("/sys/class/net/{dev}/address")).expect("netdev MAC");
    s.trim().parse().expect("MAC")
}

fn rx_packets(dev: &str) -> u64 {
    std::fs::read_to_string(format!("/sys/class/net/{dev}/statistics/rx_packets"))
        .expect("rx_packets")
        .trim()
        .parse()
        .expect("number")
}

fn build(cache: &mut PoolCache, dst: MacAddr, src: MacAddr, seq: u32) -> Mbuf {
    let mut m = cache.alloc().expect("pool has buffers");
    let f = m.append(64).expect("room");
    f[..6].copy_from_slice(&dst.0);
    f[6..12].copy_from_slice(&src.0);
    f[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
    f[14..18].copy_from_slice(MAGIC);
    f[18..22].copy_from_slice(&seq.to_be_bytes());
    m
}

/// The number after `key` in `line` ("rx 12 pkts" -> 12 for "rx ").
fn number_after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// (rx pkts, tx pkts) of `port N (...): rx A pkts ..., tx B pkts ...`.
fn port_counts(summary: &[String], port: u32) -> (u64, u64) {
    let line = summary
        .iter()
        .find(|l| l.starts_with(&format!("port {port} (")))
        .unwrap_or_else(|| panic!("no port {port} line in {summary:#?}"));
    let counts = &line[line.find("): ").expect("port line")..];
    (
        number_after(counts, "rx ").expect("rx"),
        number_after(counts, ", tx ").expect("tx"),
    )
}

#[test]
fn lab_fastpath_forwards_between_two_vfs_in_mac_mode() {
    let Some(env) = lab_env() else {
        return;
    };
    let pf_mac = netdev_mac(&env.pf);
    let vf1_mac = netdev_mac(&env.vf1_net);
    let t0 = Instant::now();
    let mut child = Command::new("fastpath")
        .args([
            "run",
            "--ports",
            &format!("{},{}", env.vf0, env.vf2),
            "--mode",
            "mac",
            "--eth-peer",
            &format!("1,{vf1_mac}"),
            "--eth-peer",
            &format!("0,{pf_mac}"),
            "--duration",
            DURATION,
            "--huge-size",
            "2M",
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .spawn()
        .expect("run fastpath (is it on PATH?)");
    let (line_tx, line_rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            let Ok(l) = l else { break };
            say!("LAB-INFO fastpath| {l}");
            if line_tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    // The start-up lines name each port's MAC: "fastpath: port 0 (igbvf
    // 0000:01:10.0, <MAC>, link ...)".
    let mut macs: [Option<MacAddr>; 2] = [None, None];
    while macs.iter().any(Option::is_none) {
        let l = line_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("fastpath did not start ({e}): {lines:#?}"));
        for (p, mac) in macs.iter_mut().enumerate() {
            if let Some(rest) = l.strip_prefix(&format!("fastpath: port {p} (igbvf ")) {
                let m = rest.split(", ").nth(1).expect("MAC after the name");
                *mac = Some(m.parse().expect("port MAC"));
            }
        }
        lines.push(l);
    }
    let (vf0_mac, vf2_mac) = (macs[0].unwrap(), macs[1].unwrap());
    say!(
        "LAB-INFO fastpath up after {:.1} s: VF0 {vf0_mac}, VF2 {vf2_mac}; PF {} {pf_mac}, VF1 {} {vf1_mac}",
        t0.elapsed().as_secs_f64(),
        env.pf,
        env.vf1_net
    );

    // Kernel sides: send on the PF netdev, receive on VF1's netdev. Their
    // buffers are ordinary memory (no device DMA).
    let pool = Pool::new(&PoolConfig::new("lab-kernel", 512).with_backing(MemoryBacking::NoHuge))
        .expect("pool");
    let mut cache = pool.cache();
    let mut pf = AfPacketPort::open(PortId(0), &env.pf, pool.data_room()).expect("AF_PACKET PF");
    let mut vf1 =
        AfPacketPort::open(PortId(1), &env.vf1_net, pool.data_room()).expect("AF_PACKET VF1");
    let (_, mut pf_tx) = pf.queues(0, 1).expect("PF queues");
    let (mut vf1_rx, _) = vf1.queues(1, 0).expect("VF1 queues");
    let (mut pf_tx, mut vf1_rx) = (pf_tx.remove(0), vf1_rx.remove(0));
    let vf1_rx_before = rx_packets(&env.vf1_net);
    let mut burst = Burst::new();
    let (mut sent, mut got, mut other, mut rewritten_wrong) = (0u32, 0u32, 0u64, 0u64);
    let mut written_off = 0u32;
    let mut last_progress = Instant::now();
    let t_inject = Instant::now();
    while got + written_off < N && last_progress.elapsed() < Duration::from_secs(2) {
        let in_flight = sent - got - written_off;
        if sent < N && in_flight < WINDOW {
            let k = (N - sent).min(WINDOW - in_flight).min(16);
            for s in sent..sent + k {
                burst.push(build(&mut cache, vf0_mac, pf_mac, s));
            }
            let before = burst.len();
            pf_tx.tx_burst(&mut cache, &mut burst);
            sent += (before - burst.len()) as u32;
            cache.free_bulk(&mut burst);
        }
        vf1_rx.rx_burst(&mut cache, &mut burst, 64);
        for m in burst.drain(..) {
            let d = m.data();
            if d.len() >= 22 && d[12..14] == ETHERTYPE.to_be_bytes() && &d[14..18] == MAGIC {
                // mac mode: destination = port 1's peer, source = VF2's MAC.
                if d[..6] != vf1_mac.0 || d[6..12] != vf2_mac.0 {
                    rewritten_wrong += 1;
                }
                got += 1;
                last_progress = Instant::now();
            } else {
                other += 1;
            }
            cache.free(m);
        }
        if sent - got - written_off >= WINDOW {
            // Frames lost on the way would hold the window shut for good.
            if last_progress.elapsed() > Duration::from_millis(300) {
                written_off = sent - got;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let inject_s = t_inject.elapsed().as_secs_f64();
    let vf1_rx_delta = rx_packets(&env.vf1_net) - vf1_rx_before;
    drop((pf_tx, vf1_rx, pf, vf1));
    say!(
        "LAB-INFO injected {sent} frames to VF0 in {inject_s:.2} s; counted on {}: \
         {got} test frames (AF_PACKET; {written_off} written off as lost), {vf1_rx_delta} \
         (rx_packets delta), {other} other",
        env.vf1_net
    );

    let status = child.wait().expect("wait for fastpath");
    reader.join().expect("stdout reader");
    lines.extend(line_rx.try_iter());
    let summary: Vec<String> = lines
        .iter()
        .skip_while(|l| !l.starts_with("---- final statistics"))
        .cloned()
        .collect();
    assert!(
        status.success(),
        "fastpath exited with {status}: {lines:#?}"
    );
    assert!(!summary.is_empty(), "no final summary: {lines:#?}");
    let (p0_rx, p0_tx) = port_counts(&summary, 0);
    let (p1_rx, p1_tx) = port_counts(&summary, 1);
    let forwarded = summary
        .iter()
        .find_map(|l| number_after(l, "total: forwarded "))
        .expect("total line");
    let buffers = summary
        .iter()
        .find(|l| l.starts_with("buffers: "))
        .expect("buffers line");
    let (back, count) = {
        let mut it = buffers
            .split_whitespace()
            .filter_map(|w| w.parse::<u64>().ok());
        (it.next().expect("back"), it.next().expect("count"))
    };
    let floor = (N as f64 * (1.0 - EPSILON)) as u64;
    say!(
        "LAB-FIGURE fastpath VF0->VF2 mac mode: injected {sent} from {} to VF0, fastpath port0 rx \
         {p0_rx}, forwarded {forwarded} (port1 tx {p1_tx}, port0 tx {p0_tx}, port1 rx {p1_rx}), \
         {got} received by {} ({:.0} frames/s); buffers {back} of {count} back; exit 0",
        env.pf,
        env.vf1_net,
        sent as f64 / inject_s
    );
    assert_eq!(sent, N, "the PF socket took every frame");
    assert!(p0_rx >= floor, "port 0 rx {p0_rx} < {floor}");
    // Frames that came in on VF2 (broadcasts, if any) go out of port 0.
    assert_eq!(p0_tx + p1_tx, forwarded, "{summary:#?}");
    assert!(p1_tx >= floor, "port 1 tx {p1_tx} < {floor}");
    assert!(
        got as u64 >= floor,
        "{} received {got} < {floor}",
        env.vf1_net
    );
    assert!(got as u64 <= p1_tx && vf1_rx_delta >= got as u64);
    assert_eq!(
        rewritten_wrong, 0,
        "frames on VF1 without mac-mode addresses"
    );
    assert_eq!(back, count, "{buffers}");
}
