//! The router smoke test (issue 15 item 7): `fastpath run --mode l3`
//! between two hosts, each in its own network namespace, with the kernel
//! of a third as its control plane.
//!
//! Topology (`<p>` is this process's id, so runs never collide):
//!
//! ```text
//!  rt<p>-h1                 rt<p>-fp                              rt<p>-h2
//!  h1 10.77.1.2/24 ===veth=== p1 (AF_PACKET port 0)  p2 (port 1) ===veth=== h2 10.77.2.2/24
//!     fd00:77:1::2/64          fp0 10.77.1.1/24      fp1 10.77.2.1/24         fd00:77:2::2/64
//!                                  fd00:77:1::1/64       fd00:77:2::1/64      lo 10.77.9.1/32
//! ```
//!
//! p1 and p2 carry no address and have IPv6 off; their IPv4 forwarding is
//! off and rp_filter strict, and they never answer ARP (arp_ignore 8), so
//! FP's kernel never acts on what arrives there: it sees the hosts' traffic
//! only through the exception interfaces fp0 and fp1, which fastpath makes.
//! The hosts keep their veths' transmit checksum offload on: their UDP
//! reaches the AF_PACKET port with its checksum unfinished (the kernel's
//! `CHECKSUM_PARTIAL`), and the port finishes it, so h2 counts no
//! checksum error.
//!
//! Checks, in order: the hosts ping each other over IPv4 and IPv6 (ARP and
//! ND resolved by FP's kernel through the exception path); 2000 UDP
//! datagrams from h1 reach h2 while FP's kernel forwards at most a few
//! (`ForwDatagrams`); a route added with `ip route` in FP is used, by the
//! fast path; a TTL 1 ping gets time-exceeded from FP's kernel; malformed
//! frames are each dropped with their reason counted; port 0's link and
//! MTU are followed by fp0; and the final JSON
//! shows the fast path's and the exception path's counters agreeing, and
//! every buffer back.
//!
//! Needs root; otherwise it says "skipped". Every wait is a bounded
//! retry, and the namespaces are deleted on any exit.

mod common;

use common::{ping_once, sh, sh_output, snmp, udp_flow, udp_in, wait_until};

use drivers::burst::Burst;
use drivers::mbuf::PortId;
use drivers::memory::MemoryBacking;
use drivers::pool::{Pool, PoolConfig};
use drivers::port::af_packet::AfPacketPort;
use drivers::port::{Port, TxQueue};
use drivers::test_netns::is_root;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Each kind of malformed frame, sent this many times.
const MALFORMED_EACH: u64 = 25;
/// UDP datagrams of the flow.
const FLOW: u64 = 2000;
/// Datagrams sent through the route added at run time.
const ROUTED_FLOW: u64 = 200;
/// Packets of a flow FP's kernel may forward itself: the first ones,
/// while it resolves the next hop and the fast path learns it.
const KERNEL_FORWARDS_AT_MOST: u64 = 5;
/// The env variable that tells the inner test it runs inside h1.
const SENDER_ENV: &str = "FASTPATH_ROUTER_MALFORMED";

/// The three namespaces and fastpath in FP; all gone on drop.
struct Lab {
    fp: String,
    h1: String,
    h2: String,
    fastpath: Option<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut c) = self.fastpath.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // A namespace's veth ends go with it, and their peers with them.
        for ns in [&self.fp, &self.h1, &self.h2] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// "aa:bb:cc:dd:ee:ff" as bytes.
fn parse_mac(text: &str) -> [u8; 6] {
    let bytes: Vec<u8> = text
        .trim()
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).expect("hex"))
        .collect();
    bytes.try_into().expect("6 bytes")
}

fn mac_of(ns: &str, ifname: &str) -> [u8; 6] {
    parse_mac(&sh(ns, &format!("cat /sys/class/net/{ifname}/address")))
}

fn lab() -> Lab {
    let p = std::process::id();
    let lab = Lab {
        fp: format!("rt{p}-fp"),
        h1: format!("rt{p}-h1"),
        h2: format!("rt{p}-h2"),
        fastpath: None,
    };
    for ns in [&lab.fp, &lab.h1, &lab.h2] {
        drivers::test_netns::ip(&["netns", "add", ns]);
    }
    let fp = lab.fp.as_str();
    sh(
        fp,
        "ip link set lo up && sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1",
    );
    for (i, h) in [(1, &lab.h1), (2, &lab.h2)] {
        common::fast_path_port_pair(fp, i, h);
        sh(
            h,
            &format!(
                "ip link set lo up && ip addr add 10.77.{i}.2/24 dev h{i} && \
                 ip addr add fd00:77:{i}::2/64 dev h{i} nodad && ip link set h{i} up && \
                 ip route add default via 10.77.{i}.1 && \
                 ip -6 route add default via fd00:77:{i}::1"
            ),
        );
    }
    sh(&lab.h2, "ip addr add 10.77.9.1/32 dev lo");
    lab
}

#[test]
fn router_between_two_namespaces() {
    // Run again inside h1 by the outer run: send the malformed frames.
    if let Ok(dst) = std::env::var(SENDER_ENV) {
        send_malformed_frames(&dst);
        return;
    }
    if !is_root() {
        drivers::skip_test!("needs root (network namespaces, veth pairs, TAP interfaces)");
        return;
    }
    for tool in ["ping", "bash"] {
        if !Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            drivers::skip_test!("{tool} is not installed (.ci/run installs it)");
            return;
        }
    }
    let started = Instant::now();
    let mut lab = lab();
    let (fp, h1, h2) = (lab.fp.clone(), lab.h1.clone(), lab.h2.clone());
    let child = common::router_command(&fp, &["--stats-period", "0", "--json"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start fastpath");
    lab.fastpath = Some(child);
    wait_until("fp0 and fp1 up", Duration::from_secs(20), || {
        ["fp0", "fp1"].iter().all(|i| {
            sh_output(&fp, &format!("ip link show {i} up"))
                .stdout
                .windows(3)
                .any(|w| w == b"UP,")
        })
    });
    sh(
        &fp,
        "ip addr add 10.77.1.1/24 dev fp0 && ip addr add 10.77.2.1/24 dev fp1 && \
         ip addr add fd00:77:1::1/64 dev fp0 nodad && ip addr add fd00:77:2::1/64 dev fp1 nodad",
    );

    // Pings both ways, both families: the first ones wait for the kernel
    // to resolve the hosts over the exception path.
    for (from, to) in [
        (&h1, "10.77.2.2"),
        (&h2, "10.77.1.2"),
        (&h1, "fd00:77:2::2"),
        (&h2, "fd00:77:1::2"),
    ] {
        wait_until(
            &format!("{from} pings {to}"),
            Duration::from_secs(10),
            || ping_once(from, to),
        );
        sh(from, &format!("ping -c 3 -i 0.2 -W 1 {to}"));
    }
    let neigh = sh(&fp, "ip neigh show");
    for host in ["10.77.1.2", "10.77.2.2", "fd00:77:1::2", "fd00:77:2::2"] {
        assert!(
            neigh
                .lines()
                .any(|l| l.starts_with(&format!("{host} ")) && l.contains("lladdr")),
            "FP's kernel resolved {host}: {neigh}"
        );
    }

    // A UDP flow: the fast path forwards it, FP's kernel does not.
    let fwd_before = snmp(&fp, "Ip", "ForwDatagrams");
    let in_before = udp_in(&h2);
    udp_flow(&h1, "10.77.2.2", FLOW);
    wait_until("h2 receives the flow", Duration::from_secs(10), || {
        udp_in(&h2) - in_before >= FLOW
    });
    let kernel_forwarded = snmp(&fp, "Ip", "ForwDatagrams") - fwd_before;
    assert!(
        kernel_forwarded <= KERNEL_FORWARDS_AT_MOST,
        "FP's kernel forwarded {kernel_forwarded} packets of a {FLOW}-datagram flow"
    );
    // Sent with their checksums left to the veth's offload, finished by
    // the AF_PACKET port.
    assert_eq!(
        snmp(&h2, "Udp", "InCsumErrors"),
        0,
        "h2 saw bad UDP checksums"
    );

    // A route added in FP's kernel: used at once, by the fast path once it
    // has it (the kernel forwards the first packets meanwhile).
    sh(&fp, "ip route add 10.77.9.0/24 via 10.77.2.2");
    wait_until("h1 pings 10.77.9.1", Duration::from_secs(10), || {
        ping_once(&h1, "10.77.9.1")
    });
    let fwd_before = snmp(&fp, "Ip", "ForwDatagrams");
    let in_before = udp_in(&h2);
    udp_flow(&h1, "10.77.9.1", ROUTED_FLOW);
    wait_until(
        "h2 receives the routed flow",
        Duration::from_secs(10),
        || udp_in(&h2) - in_before >= ROUTED_FLOW,
    );
    let kernel_forwarded = snmp(&fp, "Ip", "ForwDatagrams") - fwd_before;
    assert!(
        kernel_forwarded <= KERNEL_FORWARDS_AT_MOST,
        "FP's kernel forwarded {kernel_forwarded} packets through the new route"
    );

    // TTL 1: FP's kernel answers time-exceeded (the fast path punts it).
    let o = sh_output(&h1, "ping -c 1 -t 1 -W 2 10.77.2.2");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("From 10.77.1.1") && text.contains("Time to live exceeded"),
        "{text}"
    );

    // Malformed frames from h1, then a ping that must go through after
    // them (one worker, one queue: in order).
    // This test again, inside h1, as the sender (its output captured, so
    // its own `test result:` line stays out of the suite's tally).
    let o = Command::new("ip")
        .args(["netns", "exec", &h1])
        .arg(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "router_between_two_namespaces",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SENDER_ENV, hex(&mac_of(&fp, "p1")))
        .output()
        .expect("run the sender");
    let text = String::from_utf8_lossy(&o.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        o.status.success() && text.contains("1 passed"),
        "the malformed-frame sender failed"
    );
    wait_until(
        "a ping after the malformed frames",
        Duration::from_secs(10),
        || ping_once(&h1, "10.77.2.2"),
    );

    // The link of port 0 follows p1's carrier: h1 down takes fp0 down
    // (the run's housekeeping, every 100 ms), h1 up brings it back.
    let fp0_up = || {
        sh_output(&fp, "ip link show fp0 up")
            .stdout
            .windows(3)
            .any(|w| w == b"UP,")
    };
    sh(&h1, "ip link set h1 down");
    wait_until("fp0 down after h1", Duration::from_secs(5), || !fp0_up());
    sh(&h1, "ip link set h1 up");
    wait_until("fp0 up after h1", Duration::from_secs(5), fp0_up);
    // And its MTU follows p1's.
    sh(&fp, "ip link set p1 mtu 1400");
    wait_until("fp0's MTU follows p1's", Duration::from_secs(5), || {
        sh(&fp, "cat /sys/class/net/fp0/mtu").trim() == "1400"
    });

    // Stop, and read the final summary.
    let (j, _) = common::stop_for_json(lab.fastpath.take().expect("fastpath runs"));
    assert_eq!(j["buffers"]["all_returned"], true, "{j}");
    assert_eq!(j["exit_status"], 0);
    let core = &j["cores"][0];
    let drop = |r: &str| core["drops"][r].as_u64().unwrap_or(u64::MAX);
    let punt = |r: &str| core["punts"][r].as_u64().unwrap_or(u64::MAX);
    for (reason, n) in [
        ("ipv4_truncated", 2 * MALFORMED_EACH),
        ("ipv4_bad_version", MALFORMED_EACH),
        ("ipv4_bad_header_len", MALFORMED_EACH),
        ("ipv4_bad_total_len", MALFORMED_EACH),
        ("ipv4_bad_checksum", MALFORMED_EACH),
        ("ipv4_martian_source", MALFORMED_EACH),
        ("ipv6_truncated", MALFORMED_EACH),
        ("ipv6_bad_payload_len", MALFORMED_EACH),
    ] {
        assert_eq!(drop(reason), n, "{reason}: {core}");
    }
    // The TTL 0 frames and the TTL 1 ping.
    assert_eq!(punt("ttl_exceeded"), MALFORMED_EACH + 1, "{core}");
    let completed = j["ports"][0]["xstats"]["rx_checksum_completed_packets"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        completed >= FLOW + ROUTED_FLOW,
        "checksums completed {completed}"
    );
    let tx = core["tx"].as_u64().unwrap_or(0);
    assert!(tx >= FLOW + ROUTED_FLOW, "the fast path sent {tx}: {core}");
    // Every punt reached the kernel (none over the rate limit), and what
    // the kernel sent went out.
    let router = &j["router"];
    let exc = router["exception"].as_array().expect("exception ports");
    assert_eq!(exc.len(), 2);
    let sum = |k: &str| -> u64 {
        exc.iter()
            .map(|e| e["counters"][k].as_u64().unwrap_or(0))
            .sum()
    };
    // Punts that were still on their way when the exception thread
    // stopped are the worker's, not the thread's: a few at most.
    let punted = core["punted"].as_u64().unwrap_or(0);
    assert!(
        sum("punted") <= punted && punted - sum("punted") <= 10,
        "worker punted {punted}: {router}"
    );
    assert_eq!(sum("to_kernel"), sum("punted"), "{router}");
    assert_eq!(
        sum("injected"),
        core["injected"].as_u64().unwrap_or(0),
        "{router}"
    );
    assert!(
        sum("punted") < FLOW / 10,
        "the flows went to the kernel: {router}"
    );
    assert!(exc.iter().all(|e| e["backend"] == "tap"), "{router}");
    let tables = &router["tables"];
    assert!(tables["routes_v4"].as_u64().unwrap_or(0) >= 3, "{tables}");
    assert!(tables["routes_v6"].as_u64().unwrap_or(0) >= 2, "{tables}");
    assert!(
        tables["publications"].as_u64().unwrap_or(0) >= 1,
        "{tables}"
    );
    eprintln!(
        "router smoke test: {:.1} s; event to workers last {} us, max {} us; tables {}",
        started.elapsed().as_secs_f64(),
        tables["last_event_to_workers_us"],
        tables["max_event_to_workers_us"],
        tables
    );
}

/// Runs `fastpath run --mode l3` on null ports inside `ns` through
/// `prefix` (empty, or `setpriv ...`), which must fail; its stderr.
fn failed_start(ns: &str, prefix: &[&str]) -> String {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).args(prefix);
    let o = cmd
        .arg(env!("CARGO_BIN_EXE_fastpath"))
        .args([
            "run",
            "--mode",
            "l3",
            "--ports",
            "null,null",
            "--no-huge",
            "--duration",
            "2",
            "--stats-period",
            "0",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run fastpath");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    err
}

/// A start that cannot make its exception interfaces says why and what
/// to do: the name taken by another interface, no CAP_NET_ADMIN. Nothing
/// is left behind.
#[test]
fn router_start_failures_name_the_fix() {
    if !is_root() {
        drivers::skip_test!("needs root (network namespaces, TAP interfaces)");
        return;
    }
    // Deleted on drop, with whatever is in it.
    let netns = drivers::test_netns::TestNetns::new("rtfail");
    let ns = netns.name().to_owned();
    sh(&ns, "ip link add fp0 type veth peer name taken1");
    let err = failed_start(&ns, &[]);
    assert!(
        err.contains("port 0: exception interface fp0") && err.contains("ip link show fp0"),
        "{err}"
    );
    // The other port's interface was not left behind.
    assert!(!sh_output(&ns, "ip link show fp1").status.success());
    sh(&ns, "ip link del fp0");
    if Command::new("setpriv").arg("--help").output().is_err() {
        drivers::skip_test!("setpriv (util-linux) is not installed");
        return;
    }
    let err = failed_start(&ns, &["setpriv", "--bounding-set=-net_admin", "--"]);
    assert!(err.contains("CAP_NET_ADMIN"), "{err}");
    assert!(!sh_output(&ns, "ip link show fp0").status.success());
}

fn hex(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect()
}

/// IPv4 header (20 bytes) from 10.77.1.2 to 10.77.2.2, UDP, with its
/// checksum filled (RFC 791 3.1: the ones' complement of the ones'
/// complement sum of the header's 16-bit words).
fn ipv4_header(total_len: u16, ttl: u8, src: [u8; 4]) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total_len.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 0, ttl, 17, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&[10, 77, 2, 2]);
    let mut sum: u32 = h
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let c = !(sum as u16);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

/// The malformed frames, each with the reason it must be counted under.
fn malformed(dst: [u8; 6], src: [u8; 6]) -> Vec<Vec<u8>> {
    let eth = |ethertype: u16, payload: &[u8]| {
        let mut f = dst.to_vec();
        f.extend_from_slice(&src);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    };
    let good = ipv4_header(28, 64, [10, 77, 1, 2]);
    let udp = [0x04, 0x00, 0x00, 0x09, 0x00, 0x08, 0x00, 0x00];
    let with_udp = |mut h: Vec<u8>| {
        h.extend_from_slice(&udp);
        h
    };
    let mut frames = Vec::new();
    // Runt: 6 bytes after the Ethernet header (ipv4_truncated).
    frames.push(eth(0x0800, &good[..6]));
    // Truncated header: 19 of 20 bytes, padded to Ethernet's 60 by
    // nothing (ipv4_truncated).
    frames.push(eth(0x0800, &good[..19]));
    // Version 6 in an IPv4 frame (ipv4_bad_version).
    let mut v = with_udp(good.clone());
    v[0] = 0x65;
    frames.push(eth(0x0800, &v));
    // IHL 4 (ipv4_bad_header_len).
    let mut v = with_udp(good.clone());
    v[0] = 0x44;
    frames.push(eth(0x0800, &v));
    // Total length past the frame (ipv4_bad_total_len), checksum right.
    frames.push(eth(0x0800, &with_udp(ipv4_header(200, 64, [10, 77, 1, 2]))));
    // Checksum wrong (ipv4_bad_checksum).
    let mut v = with_udp(good.clone());
    v[10] ^= 0x5a;
    frames.push(eth(0x0800, &v));
    // Source 127.0.0.1 (ipv4_martian_source).
    frames.push(eth(0x0800, &with_udp(ipv4_header(28, 64, [127, 0, 0, 1]))));
    // TTL 0: the kernel's to answer (punt ttl_exceeded).
    frames.push(eth(0x0800, &with_udp(ipv4_header(28, 0, [10, 77, 1, 2]))));
    // IPv6: 30 bytes of a 40-byte header (ipv6_truncated).
    let mut v6 = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
    v6.extend_from_slice(&[0xfd, 0, 0, 0x77, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    v6.extend_from_slice(&[0xfd, 0, 0, 0x77, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    frames.push(eth(0x86dd, &v6[..30]));
    // IPv6 payload length 1000 in a short frame (ipv6_bad_payload_len).
    let mut v = v6.clone();
    v[4..6].copy_from_slice(&1000u16.to_be_bytes());
    v.extend_from_slice(&udp);
    frames.push(eth(0x86dd, &v));
    frames
}

/// Inside h1: sends each malformed frame [`MALFORMED_EACH`] times to the
/// fast path's port 0, whose MAC is `dst` (12 hex digits).
fn send_malformed_frames(dst: &str) {
    let dst: Vec<u8> = (0..6)
        .map(|i| u8::from_str_radix(&dst[2 * i..2 * i + 2], 16).expect("hex MAC"))
        .collect();
    let dst: [u8; 6] = dst.try_into().expect("6 bytes");
    let src = parse_mac(&std::fs::read_to_string("/sys/class/net/h1/address").expect("h1's MAC"));
    let pool = Pool::new(&PoolConfig::new("malformed", 256).with_backing(MemoryBacking::NoHuge))
        .expect("pool");
    let mut cache = pool.cache();
    let mut port = AfPacketPort::open(PortId(0), "h1", 2048).expect("AF_PACKET on h1");
    let (_rx, mut tx) = port.queues(1, 1).expect("queues");
    let mut q = tx.remove(0);
    let frames = malformed(dst, src);
    let deadline = Instant::now() + Duration::from_secs(10);
    for _ in 0..MALFORMED_EACH {
        let mut burst = Burst::new();
        for f in &frames {
            let mut m = cache.alloc().expect("buffer");
            m.append(f.len()).expect("room").copy_from_slice(f);
            burst.push(m);
        }
        while !burst.is_empty() {
            q.tx_burst(&mut cache, &mut burst);
            assert!(
                Instant::now() < deadline,
                "the socket never took the frames"
            );
        }
    }
}
