//! The vfio-user lab's frame exchange between two kernel interfaces: the
//! `lab-frames` binary (the guest's end) in a network namespace on one end
//! of a veth pair, and `lab_frames::peer::run_round` (the host's end, as
//! the lab's server runs it) on an AF_PACKET port on the other end.
//!
//! Round 1: 10,000 frames each way, with bad frames of every kind sent to
//! the guest by a third socket once the handshake is done: each is counted
//! under its kind and the round still completes. Round 2: the same after
//! the link went down and up, with the guest started while it was down
//! (its hellos go unanswered until the link is back), and without being
//! told the host's MAC (it broadcasts the hellos and learns it). Then a guest whose
//! host never answers: it times out and exits 1.
//!
//! `FRAMES_NETNS_GUEST=PATH` runs another build of the guest's binary, for
//! example the static one of scripts/vfio-user-lab/build-guest-tool.sh.
//!
//! Needs root (CAP_NET_ADMIN for `ip netns`/`ip link`, CAP_NET_RAW for the
//! sockets); without it the test says "skipped". The namespace, and with
//! it the veth pair, is deleted when the test ends, failed or not.

use drivers::burst::Burst;
use drivers::lab_frames::frame::{self, Direction};
use drivers::lab_frames::{peer, Endpoint, Report};
use drivers::mbuf::PortId;
use drivers::memory::MemoryBacking;
use drivers::net::MacAddr;
use drivers::pool::{Pool, PoolConfig};
use drivers::port::af_packet::AfPacketPort;
use drivers::port::{DynPort, Port, TxQueue};
use drivers::test_netns::{ip, is_root};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const COUNT: u32 = 10_000;
/// The host's end (outside the namespace) and the guest's (veth0 inside).
const HOST_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0x5f, 0x01]);
const GUEST_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0x5f, 0x02]);

/// The namespace with veth0 in it, our end `outer` outside, and the guest
/// process; all gone on drop.
struct Lab {
    ns: String,
    outer: String,
    guest: Option<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut c) = self.guest.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Deleting the namespace deletes veth0, and its peer with it.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.outer])
            .stderr(Stdio::null())
            .status();
    }
}

impl Lab {
    fn new() -> Lab {
        let pid = std::process::id();
        let lab = Lab {
            ns: format!("fastpath-frames-{pid}"),
            outer: format!("fpf{pid}"),
            guest: None,
        };
        ip(&["netns", "add", &lab.ns]);
        let (host, guest) = (HOST_MAC.to_string(), GUEST_MAC.to_string());
        ip(&[
            "link", "add", &lab.outer, "address", &host, "type", "veth", "peer", "name", "veth0",
            "address", &guest, "netns", &lab.ns,
        ]);
        // No IPv6: fewer of the kernel's own frames (they would only be
        // counted as `other`).
        for (ns, ifname) in [(None, lab.outer.as_str()), (Some(lab.ns.as_str()), "veth0")] {
            let cmd = format!(
                "p=/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6; [ ! -e $p ] || echo 1 > $p"
            );
            let mut c = match ns {
                Some(ns) => {
                    let mut c = Command::new("ip");
                    c.args(["netns", "exec", ns, "sh", "-c", &cmd]);
                    c
                }
                None => {
                    let mut c = Command::new("sh");
                    c.args(["-c", &cmd]);
                    c
                }
            };
            let _ = c.status();
        }
        ip(&["-n", &lab.ns, "link", "set", "veth0", "up"]);
        lab.link(true);
        lab
    }

    fn link(&self, up: bool) {
        ip(&["link", "set", &self.outer, if up { "up" } else { "down" }]);
        if !up {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(format!("/sys/class/net/{}/carrier", self.outer))
            .map_or(true, |s| s.trim() != "1")
        {
            assert!(Instant::now() < deadline, "veth carrier never came up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts `lab-frames guest` in the namespace; its stdout lines come
    /// through the returned channel.
    /// Without `told`, the guest is not given the host's MAC (it
    /// broadcasts its hellos and learns it from the answer).
    fn start_guest(&mut self, round: u32, timeout: &str, told: bool) -> mpsc::Receiver<String> {
        let bin = std::env::var("FRAMES_NETNS_GUEST")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_lab-frames").to_string());
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns, &bin])
            .args(["guest", "--iface", "veth0"])
            .args(if told {
                vec!["--peer".to_string(), HOST_MAC.to_string()]
            } else {
                vec![]
            })
            .args(["--count", &COUNT.to_string(), "--round", &round.to_string()])
            .args(["--timeout", timeout])
            .stdout(Stdio::piped())
            .spawn()
            .expect("ip netns exec lab-frames");
        let stdout = child.stdout.take().expect("stdout");
        self.guest = Some(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("guest: {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    }

    /// Waits for the guest to exit; its exit code.
    fn guest_exit(&mut self) -> i32 {
        let mut c = self.guest.take().expect("a guest");
        c.wait().expect("wait").code().unwrap_or(-1)
    }
}

/// The guest's line with tag `tag` (waits at most `wait`).
fn line_from(rx: &mpsc::Receiver<String>, tag: &str, wait: Duration) -> String {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.starts_with(&format!("{tag} ")) => return l,
            Ok(_) => {}
            Err(e) => panic!("no {tag} line from the guest: {e}"),
        }
    }
}

/// `key=value` of a report line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

fn num(line: &str, key: &str) -> u64 {
    field(line, key)
        .parse()
        .unwrap_or_else(|_| panic!("{key} in {line}"))
}

/// Frames of every bad kind, as if from the host, to the guest: corrupt,
/// truncated, foreign (other magic), of another round, and a duplicate.
fn bad_frames(round: u32) -> Vec<Vec<u8>> {
    let data = |round, seq| {
        let mut b = vec![0u8; frame::MAX_FRAME];
        let n = frame::write_data(
            &mut b,
            GUEST_MAC,
            HOST_MAC,
            Direction::HostToGuest,
            round,
            seq,
        );
        b.truncate(n);
        b
    };
    let mut corrupt = data(round, 5);
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0x04;
    let mut truncated = data(round, 6);
    truncated.truncate(truncated.len() - 10);
    let mut foreign = data(round, 7);
    foreign[15] ^= 0xff;
    vec![
        corrupt,
        truncated,
        foreign,
        data(round + 1, 8),
        data(round, 1),
    ]
}

fn host_round(ep: &mut Endpoint<DynPort>, pool: &Pool, round: u32) -> Report {
    let mut cache = pool.cache();
    let r = peer::run_round(ep, &mut cache, round, COUNT, Duration::from_secs(60))
        .expect("the host's round");
    eprintln!("{}", r.line(peer::TAG));
    r
}

#[test]
fn ten_thousand_each_way_across_a_link_flap() {
    if !is_root() {
        drivers::skip_test!("needs root (CAP_NET_ADMIN for ip netns, CAP_NET_RAW)");
        return;
    }
    let t0 = Instant::now();
    let mut lab = Lab::new();
    let pool =
        Pool::new(&PoolConfig::new("frames-netns", 4096).with_backing(MemoryBacking::NoHuge))
            .expect("pool");
    let port = AfPacketPort::open(PortId(0), &lab.outer, 2048).expect("AF_PACKET on our end");
    assert_eq!(port.info().mac, HOST_MAC);
    let mut ep = Endpoint::new(DynPort::new(port)).expect("queues");
    // A third socket on our end, for the bad frames.
    let mut inject = AfPacketPort::open(PortId(1), &lab.outer, 2048).expect("injector");
    let (_, mut inject_tx) = inject.queues(0, 1).expect("injector queue");

    // Round 1, with bad frames sent to the guest once it is talking.
    let lines = lab.start_guest(1, "60", true);
    let lines = std::thread::scope(|s| {
        let host = s.spawn(|| host_round(&mut ep, &pool, 1));
        let ready = line_from(&lines, "VFU-FRAMES-READY", Duration::from_secs(30));
        assert_eq!(field(&ready, "peer"), HOST_MAC.to_string());
        let mut cache = pool.cache();
        let mut burst = Burst::new();
        for f in bad_frames(1) {
            let mut m = cache.alloc().expect("buffer");
            m.append(f.len()).expect("room").copy_from_slice(&f);
            burst.push(m);
        }
        while !burst.is_empty() {
            inject_tx[0].tx_burst(&mut cache, &mut burst);
        }
        let h = host.join().expect("host thread");
        assert!(h.complete(), "{h}");
        assert_eq!(h.peer, Some(GUEST_MAC), "learnt from the hello");
        assert_eq!(
            (h.rx_ok, h.rx_bad(), h.rx_dup, h.rx_foreign),
            (COUNT, 0, 0, 0),
            "{h}"
        );
        lines
    });
    let g = line_from(&lines, "VFU-FRAMES", Duration::from_secs(30));
    assert_eq!(lab.guest_exit(), 0, "{g}");
    assert_eq!(field(&g, "result"), "ok", "{g}");
    for (key, want) in [
        ("round", 1),
        ("sent", COUNT as u64),
        ("rx_ok", COUNT as u64),
        ("missing", 0),
        ("acked", COUNT as u64),
        ("rx_bad", 2),
        ("corrupt", 1),
        ("truncated", 1),
        ("foreign", 1),
        ("wrong_round", 1),
        ("rx_dup", 1),
    ] {
        assert_eq!(num(&g, key), want, "{key} in {g}");
    }

    // Round 2: the guest starts while the link is down, and gets through
    // once it is back; not told the host's MAC, it learns it.
    lab.link(false);
    let lines = lab.start_guest(2, "60", false);
    std::thread::sleep(Duration::from_millis(700));
    lab.link(true);
    let h = host_round(&mut ep, &pool, 2);
    assert!(h.complete(), "{h}");
    assert_eq!((h.rx_ok, h.rx_bad(), h.rx_dup), (COUNT, 0, 0), "{h}");
    let g = line_from(&lines, "VFU-FRAMES", Duration::from_secs(30));
    assert_eq!(lab.guest_exit(), 0, "{g}");
    assert_eq!(
        (num(&g, "rx_ok"), num(&g, "missing")),
        (COUNT as u64, 0),
        "{g}"
    );
    assert!(num(&g, "hellos") >= 2, "the first hellos went nowhere: {g}");
    assert_eq!(
        field(&g, "peer"),
        HOST_MAC.to_string(),
        "learnt from the answer"
    );

    // Nobody answers: the guest gives up at its timeout, and says so.
    let lines = lab.start_guest(3, "1", true);
    let g = line_from(&lines, "VFU-FRAMES", Duration::from_secs(10));
    assert_eq!(lab.guest_exit(), 1, "{g}");
    assert_eq!(field(&g, "result"), "timeout", "{g}");
    assert_eq!(field(&g, "handshake_secs"), "none", "{g}");

    drop(inject_tx);
    drop(ep);
    assert_eq!(pool.available(), 4096, "every buffer back");
    eprintln!("frames_netns: {:.1} s", t0.elapsed().as_secs_f64());
}
