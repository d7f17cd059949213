//! `fastpath run --ports afpacket:veth0,afpacket:veth1` forwarding between
//! two veth pairs, with the kernel on the other end of each.
//!
//! The test makes its own network namespace with `ip netns`, holding
//! `veth0` and `veth1`; their peers stay in the test's namespace, where
//! the test sends frames into one and receives them from the other through
//! AF_PACKET sockets. fastpath runs inside the namespace (`ip netns exec`)
//! in io mode, so what enters veth0 leaves by veth1 and back. The final
//! summary must count exactly the frames sent, each way.
//!
//! Needs root (CAP_NET_ADMIN for `ip netns`/`ip link`, CAP_NET_RAW for the
//! sockets); without it the test says "skipped". The namespace (and with
//! it both veth pairs) is deleted when the test ends, failed or not.

use drivers::burst::Burst;
use drivers::mbuf::PortId;
use drivers::memory::MemoryBacking;
use drivers::pool::{Pool, PoolCache, PoolConfig};
use drivers::port::af_packet::{AfPacketPort, AfPacketRx, AfPacketTx};
use drivers::port::{Port, RxQueue, TxQueue};
use drivers::test_netns::{ip, is_root};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// An IEEE "local experimental" EtherType, which no kernel stack answers.
const ETHERTYPE: u16 = 0x88b5;
const FRAMES_A_TO_B: u32 = 100;
const FRAMES_B_TO_A: u32 = 40;

/// The namespace, two veth pairs into it, and fastpath running in it;
/// all torn down on drop.
struct Lab {
    ns: String,
    /// Our ends of the pairs whose other ends are veth0 and veth1.
    outer: [String; 2],
    fastpath: Option<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut c) = self.fastpath.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Deleting the namespace deletes veth0 and veth1, and a veth
        // goes with its peer.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        for o in &self.outer {
            let _ = Command::new("ip")
                .args(["link", "del", o])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// IPv6 off on an interface before it comes up, so the kernel sends no
/// router solicitation or MLD report that fastpath would count.
fn no_ipv6(ns: Option<&str>, ifname: &str) {
    let path = format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6");
    let cmd = format!("[ ! -e {path} ] || echo 1 > {path}");
    let status = match ns {
        None => Command::new("sh").args(["-c", &cmd]).status(),
        Some(ns) => Command::new("ip")
            .args(["netns", "exec", ns, "sh", "-c", &cmd])
            .status(),
    };
    assert!(
        status.is_ok_and(|s| s.success()),
        "disable IPv6 on {ifname}"
    );
}

fn carrier_up(ns: &str, inner: &str, outer: &str) -> bool {
    let ours = std::fs::read_to_string(format!("/sys/class/net/{outer}/carrier"))
        .is_ok_and(|s| s.trim() == "1");
    let theirs = Command::new("ip")
        .args(["-n", ns, "link", "show", inner])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("LOWER_UP"));
    ours && theirs
}

impl Lab {
    /// `tag` tells apart the labs of the tests of one process.
    fn new(tag: char) -> Lab {
        let pid = std::process::id();
        let lab = Lab {
            ns: format!("fastpath-afp{tag}-{pid}"),
            outer: [format!("fp{tag}a{pid}"), format!("fp{tag}b{pid}")],
            fastpath: None,
        };
        ip(&["netns", "add", &lab.ns]);
        for (outer, inner) in lab.outer.iter().zip(["veth0", "veth1"]) {
            ip(&[
                "link", "add", outer, "type", "veth", "peer", "name", inner, "netns", &lab.ns,
            ]);
            no_ipv6(None, outer);
            no_ipv6(Some(&lab.ns), inner);
            ip(&["link", "set", outer, "up"]);
            ip(&["-n", &lab.ns, "link", "set", inner, "up"]);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(carrier_up(&lab.ns, "veth0", &lab.outer[0])
            && carrier_up(&lab.ns, "veth1", &lab.outer[1]))
        {
            assert!(Instant::now() < deadline, "veth carrier never came up");
            std::thread::sleep(Duration::from_millis(20));
        }
        lab
    }
}

fn frame(seq: u32, dir: u8) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0xfa, dir]);
    f[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
    f[14..18].copy_from_slice(b"FPNS");
    f[18] = dir;
    f[19..23].copy_from_slice(&seq.to_be_bytes());
    f
}

struct Side {
    rx: AfPacketRx,
    tx: AfPacketTx,
    _port: AfPacketPort,
}

fn side(id: u16, ifname: &str) -> Side {
    let mut port = AfPacketPort::open(PortId(id), ifname, 2048).expect("AF_PACKET socket");
    let (mut rx, mut tx) = port.queues(1, 1).expect("queues");
    Side {
        rx: rx.remove(0),
        tx: tx.remove(0),
        _port: port,
    }
}

fn send(cache: &mut PoolCache, q: &mut AfPacketTx, n: u32, dir: u8) {
    let mut seq = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while seq < n {
        let mut burst = Burst::new();
        while seq < n && burst.len() < 16 {
            let mut m = cache.alloc().expect("buffer");
            let f = frame(seq, dir);
            m.append(f.len()).expect("room").copy_from_slice(&f);
            burst.push(m);
            seq += 1;
        }
        while !burst.is_empty() {
            q.tx_burst(cache, &mut burst);
            assert!(
                Instant::now() < deadline,
                "the socket never took the frames"
            );
        }
        // Pace the bursts: fastpath reads one socket at a time.
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Sequence numbers of our frames of direction `dir` received within `wait`.
fn receive(cache: &mut PoolCache, q: &mut AfPacketRx, n: u32, dir: u8) -> Vec<u32> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Burst::new();
    while seen.len() < n as usize && Instant::now() < deadline {
        q.rx_burst(cache, &mut got, 32);
        for m in got.drain(..) {
            let d = m.data();
            if d.len() >= 23 && d[12..14] == ETHERTYPE.to_be_bytes() && &d[14..18] == b"FPNS" {
                assert_eq!(d[18], dir, "a frame came back the way it went");
                seen.push(u32::from_be_bytes([d[19], d[20], d[21], d[22]]));
            }
            cache.free(m);
        }
        if got.is_empty() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    seen
}

/// "port 0 (af_packet veth0, ...): rx N pkts ..., tx M pkts ..." -> (N, M).
fn port_counts(summary: &str, port: u32) -> (u64, u64) {
    let prefix = format!("port {port} (af_packet veth{port},");
    let line = summary
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} line in\n{summary}"));
    let after = |key: &str| -> u64 {
        let rest = &line[line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len()..];
        rest.split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("number after {key} in {line}"))
    };
    (after("): rx "), after(", tx "))
}

/// fastpath on the lab's veth0 and veth1 with `extra` options, started
/// (its sockets bound); returns its stdout and stderr.
fn start(lab: &mut Lab, extra: &[&str]) -> (BufReader<ChildStdout>, ChildStderr) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", &lab.ns, env!("CARGO_BIN_EXE_fastpath")])
        .args([
            "run",
            "--no-huge",
            "--ports",
            "afpacket:veth0,afpacket:veth1",
            "--stats-period",
            "0",
            "--duration",
            "60",
        ])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ip netns exec fastpath");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut stderr = child.stderr.take().expect("stderr");
    lab.fastpath = Some(child);
    // The sockets are bound once the ports are listed after "forwarding".
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let n = stdout.read_line(&mut line).expect("read stdout");
        if n == 0 {
            let mut err = String::new();
            let _ = stderr.read_to_string(&mut err);
            panic!("fastpath ended before forwarding:\n{head}\n{err}");
        }
        head.push_str(&line);
        if line.starts_with("fastpath: port 1 ") {
            break;
        }
    }
    assert!(
        head.contains("on ports afpacket:veth0,afpacket:veth1"),
        "{head}"
    );
    (stdout, stderr)
}

/// Stops fastpath with SIGINT and returns its final summary.
fn stop(lab: &mut Lab, mut stdout: BufReader<ChildStdout>, mut stderr: ChildStderr) -> String {
    let mut child = lab.fastpath.take().expect("running");
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit after SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut summary = String::new();
    stdout.read_to_string(&mut summary).expect("summary");
    let mut err = String::new();
    let _ = stderr.read_to_string(&mut err);
    assert!(status.success(), "{status:?}\n{summary}\n{err}");
    summary
}

#[test]
fn afpacket_ports_forward_between_veth_pairs_in_a_namespace() {
    if !is_root() {
        drivers::skip_test!("needs root (CAP_NET_ADMIN for ip netns, CAP_NET_RAW)");
        return;
    }
    let mut lab = Lab::new('1');
    let (stdout, stderr) = start(&mut lab, &[]);

    let pool = Pool::new(&PoolConfig::new("netns-test", 1024).with_backing(MemoryBacking::NoHuge))
        .expect("pool");
    let mut cache = pool.cache();
    let mut a = side(0, &lab.outer[0]);
    let mut b = side(1, &lab.outer[1]);
    send(&mut cache, &mut a.tx, FRAMES_A_TO_B, 0xab);
    let ab = receive(&mut cache, &mut b.rx, FRAMES_A_TO_B, 0xab);
    send(&mut cache, &mut b.tx, FRAMES_B_TO_A, 0xba);
    let ba = receive(&mut cache, &mut a.rx, FRAMES_B_TO_A, 0xba);
    assert_eq!(
        ab,
        (0..FRAMES_A_TO_B).collect::<Vec<_>>(),
        "a -> b, in order"
    );
    assert_eq!(
        ba,
        (0..FRAMES_B_TO_A).collect::<Vec<_>>(),
        "b -> a, in order"
    );

    let summary = stop(&mut lab, stdout, stderr);
    // Exactly our frames: IPv6 is off on every interface, so the kernel
    // sent nothing else into the pairs.
    let (rx0, tx0) = port_counts(&summary, 0);
    let (rx1, tx1) = port_counts(&summary, 1);
    assert_eq!(
        (rx0, tx1),
        (u64::from(FRAMES_A_TO_B), u64::from(FRAMES_A_TO_B)),
        "{summary}"
    );
    assert_eq!(
        (rx1, tx0),
        (u64::from(FRAMES_B_TO_A), u64::from(FRAMES_B_TO_A)),
        "{summary}"
    );
    let total = u64::from(FRAMES_A_TO_B + FRAMES_B_TO_A);
    assert!(
        summary.contains(&format!("total: forwarded {total} packets")),
        "{summary}"
    );
    assert!(
        summary.contains("buffers: 8192 of 8192 back in the pool"),
        "{summary}"
    );
    drop((a, b, cache));
    assert_eq!(pool.available(), 1024);
}

/// An IPv4/UDP frame of flow `seq % 64` (source port) carrying `seq`:
/// the fanout hashes addresses and ports, so the flows spread over the
/// workers' queues.
fn udp_frame(seq: u32) -> Vec<u8> {
    drivers::testing::udp_frame(
        [0xff; 6],
        [0x02, 0, 0, 0, 0xfa, 0xcc],
        30_000 + (seq % 64) as u16,
        b"FPMQ",
        seq,
        64,
    )
}

/// "core N: rx R ..." -> R for every core line.
fn core_rx(summary: &str) -> Vec<u64> {
    summary
        .lines()
        .filter(|l| l.starts_with("core "))
        .filter_map(|l| {
            l.split(": rx ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// Two workers: each AF_PACKET port has two queue pairs, one socket each
/// in the port's fanout group; the flows spread over both workers and
/// every frame is forwarded exactly once.
#[test]
fn two_workers_share_afpacket_ports_through_fanout() {
    if !is_root() {
        drivers::skip_test!("needs root (CAP_NET_ADMIN for ip netns, CAP_NET_RAW)");
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        drivers::skip_test!("needs two CPUs for two workers");
        return;
    }
    let mut lab = Lab::new('2');
    let (stdout, stderr) = start(&mut lab, &["--cpus", "0,1"]);
    let pool = Pool::new(&PoolConfig::new("netns-mq", 1024).with_backing(MemoryBacking::NoHuge))
        .expect("pool");
    let mut cache = pool.cache();
    let mut a = side(0, &lab.outer[0]);
    let mut b = side(1, &lab.outer[1]);
    const N: u32 = 2000;
    let mut seen = vec![0u32; N as usize];
    let mut got = Burst::new();
    let mut seq = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    let drain = |cache: &mut PoolCache, b: &mut Side, seen: &mut [u32], got: &mut Burst| {
        b.rx.rx_burst(cache, got, 32);
        for m in got.drain(..) {
            let d = m.data();
            if let Some(s) = drivers::testing::udp_frame_seq(d, b"FPMQ") {
                assert_eq!(d, &udp_frame(s)[..], "payload of {s}");
                seen[s as usize] += 1;
            }
            cache.free(m);
        }
    };
    while seq < N {
        let mut burst = Burst::new();
        while seq < N && burst.len() < 16 {
            let mut m = cache.alloc().expect("buffer");
            let f = udp_frame(seq);
            m.append(f.len()).expect("room").copy_from_slice(&f);
            burst.push(m);
            seq += 1;
        }
        while !burst.is_empty() {
            a.tx.tx_burst(&mut cache, &mut burst);
            assert!(Instant::now() < deadline, "the ring never took the frames");
        }
        drain(&mut cache, &mut b, &mut seen, &mut got);
        // Pace the bursts: each worker shares its CPU here.
        std::thread::sleep(Duration::from_millis(1));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.contains(&0) && Instant::now() < deadline {
        drain(&mut cache, &mut b, &mut seen, &mut got);
    }
    std::thread::sleep(Duration::from_millis(50));
    drain(&mut cache, &mut b, &mut seen, &mut got);
    let wrong: Vec<usize> = (0..seen.len()).filter(|&i| seen[i] != 1).collect();
    let summary = stop(&mut lab, stdout, stderr);
    assert!(
        wrong.is_empty(),
        "not forwarded exactly once: {wrong:?}\n{summary}"
    );
    let ((rx0, _), (_, tx1)) = (port_counts(&summary, 0), port_counts(&summary, 1));
    assert_eq!((rx0, tx1), (u64::from(N), u64::from(N)), "{summary}");
    let per_core = core_rx(&summary);
    assert_eq!(per_core.len(), 2, "{summary}");
    assert!(
        per_core.iter().all(|&r| r > 0),
        "both workers got flows: {per_core:?}\n{summary}"
    );
    assert!(
        summary.contains("buffers: 8192 of 8192 back in the pool"),
        "{summary}"
    );
    drop((a, b, cache));
    assert_eq!(pool.available(), 1024);
}
