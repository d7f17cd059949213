//! The exception interface's plain TAP backend against the real kernel, in
//! a network namespace of its own.
//!
//! The outer test makes the namespace and re-runs this binary inside it
//! (`ip netns exec NS <this binary> --exact inner_tap_exchange --ignored`):
//! the inner test creates a two-queue TAP with a chosen MAC and MTU, gives
//! it an address, and plays the fast path's side: the kernel's ARP request
//! for a neighbour is read and answered, the kernel's neighbour table then
//! shows the answer, UDP datagrams go both ways payload-checked, MAC, MTU
//! and link state are seen by `ip link`, a frame larger than a buffer is
//! dropped and counted, and the TAP is gone once dropped. A second test
//! checks that without CAP_NET_ADMIN opening is a typed error.
//!
//! Needs root for the namespace; without it the first test says
//! "skipped".

use drivers::burst::Burst;
use drivers::exception::{
    BackendChoice, ExceptionBackend, ExceptionConfig, ExceptionError, ExceptionIface, ExceptionRx,
    ExceptionTx,
};
use drivers::mbuf::PortId;
use drivers::memory::MemoryBacking;
use drivers::net::MacAddr;
use drivers::pool::{Pool, PoolCache, PoolConfig};
use drivers::port::{RxQueue, TxQueue};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

const IFNAME: &str = "fpx0";
const OUR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0xe0, 0x01]);
const MAC2: MacAddr = MacAddr([0x02, 0, 0, 0, 0xe0, 0x03]);
/// The neighbour the fast path pretends to be.
const PEER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0xe0, 0x02]);
const KERNEL_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const PEER_PORT: u16 = 7777;
const ROUNDS: usize = 200;
const INNER_ENV: &str = "FASTPATH_EXC_INNER";

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Output of `ip ARGS`, panicking with its stderr on failure.
fn ip(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip` (iproute2): {e}"));
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The flags `ip -o link show` prints between `<` and `>`.
fn link_flags(ifname: &str) -> Vec<String> {
    let out = ip(&["-o", "link", "show", "dev", ifname]);
    let start = out.find('<').expect("flags in ip link output") + 1;
    let end = out[start..].find('>').expect("flags end") + start;
    out[start..end].split(',').map(str::to_string).collect()
}

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn tap_exception_interface_in_a_namespace() {
    if !is_root() {
        drivers::skip_test!("a network namespace and a TAP need root");
        return;
    }
    let ns = Netns(format!("fastpath-exc-{}", std::process::id()));
    ip(&["netns", "add", &ns.0]);
    let exe = std::env::current_exe().expect("test binary path");
    let status = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(exe)
        .args([
            "--exact",
            "inner_tap_exchange",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(INNER_ENV, "1")
        .status()
        .expect("ip netns exec");
    assert!(
        status.success(),
        "the test inside the namespace failed: {status}"
    );
}

/// Opening without CAP_NET_ADMIN: as root, this binary is re-run as
/// nobody with no capabilities; otherwise the test is already
/// unprivileged.
#[test]
fn unprivileged_open_is_a_typed_error() {
    if is_root() {
        let exe = std::env::current_exe().expect("test binary path");
        let status = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
            ])
            .arg(exe)
            .args([
                "--exact",
                "unprivileged_open_is_a_typed_error",
                "--nocapture",
            ])
            .status()
            .expect("setpriv (util-linux)");
        assert!(status.success(), "unprivileged run failed: {status}");
        return;
    }
    let mut cfg = ExceptionConfig::new("fpx-unpriv", PortId(0), OUR_MAC);
    cfg.backend = BackendChoice::Tap;
    match ExceptionIface::open(&cfg) {
        Err(ExceptionError::NotPermitted { op, .. }) => assert_eq!(op, "TUNSETIFF"),
        Err(ExceptionError::NoTun { .. }) => {
            drivers::skip_test!("no usable /dev/net/tun to be refused by");
        }
        Err(e) => panic!("expected NotPermitted, got {e}"),
        Ok(_) => panic!("an unprivileged process created a TAP"),
    }
    // vhost-net asked for explicitly, where it cannot be opened.
    cfg.backend = BackendChoice::VhostNet;
    cfg.vhost_path = "/nonexistent/vhost-net".into();
    assert!(matches!(
        ExceptionIface::open(&cfg),
        Err(ExceptionError::VhostUnavailable { .. })
    ));
}

/// RFC 1071 Internet checksum of `data`.
fn inet_checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from(c[0]) << 8
        };
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Ethernet + IPv4 + UDP frame from the peer to the kernel's address,
/// UDP checksum 0 (none; RFC 768 allows it over IPv4).
fn udp_frame(dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(42 + payload.len());
    f.extend_from_slice(&OUR_MAC.0);
    f.extend_from_slice(&PEER_MAC.0);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&PEER_IP.octets());
    ip[16..20].copy_from_slice(&KERNEL_IP.octets());
    let c = inet_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&PEER_PORT.to_be_bytes());
    f.extend_from_slice(&dst_port.to_be_bytes());
    f.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// ARP reply (RFC 826) from the peer to the kernel.
fn arp_reply() -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&OUR_MAC.0);
    f.extend_from_slice(&PEER_MAC.0);
    f.extend_from_slice(&0x0806u16.to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 2]);
    f.extend_from_slice(&PEER_MAC.0);
    f.extend_from_slice(&PEER_IP.octets());
    f.extend_from_slice(&OUR_MAC.0);
    f.extend_from_slice(&KERNEL_IP.octets());
    f
}

/// Payload of datagram `seq`, `len` bytes: the sequence number then a
/// pattern that depends on it.
fn payload(seq: u32, len: usize) -> Vec<u8> {
    let mut p: Vec<u8> = (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(seq) as u8)
        .collect();
    let n = len.min(4);
    p[..n].copy_from_slice(&seq.to_be_bytes()[..n]);
    p
}

struct Side {
    queues: Vec<(ExceptionRx, ExceptionTx)>,
    cache: PoolCache,
    got: Burst,
}

impl Side {
    /// Frames from the kernel, from every queue, until `want` says stop
    /// or 5 s pass. `want` gets each frame and returns true when done.
    fn read_until(&mut self, mut want: impl FnMut(&[u8]) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            for (rx, _) in &mut self.queues {
                rx.rx_burst(&mut self.cache, &mut self.got, 32);
            }
            let mut done = false;
            for m in self.got.drain(..) {
                done |= want(m.data());
                self.cache.free(m);
            }
            if done {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    /// Sends one frame on queue `q`.
    fn send(&mut self, q: usize, frame: &[u8]) {
        let mut m = self.cache.alloc().expect("a free buffer");
        m.append(frame.len()).expect("room").copy_from_slice(frame);
        let mut b = Burst::new();
        b.push(m);
        let n = self.queues[q].1.tx_burst(&mut self.cache, &mut b);
        assert_eq!(n, 1, "the kernel took the frame");
        assert!(b.is_empty());
    }
}

fn is_arp_request_for_peer(f: &[u8]) -> bool {
    f.len() >= 42
        && f[12..14] == [0x08, 0x06]
        && f[20..22] == [0, 1]
        && f[22..28] == OUR_MAC.0
        && f[28..32] == KERNEL_IP.octets()
        && f[38..42] == PEER_IP.octets()
}

/// The UDP payload of a frame from the kernel to the peer, if it is one.
fn udp_to_peer(f: &[u8]) -> Option<&[u8]> {
    if f.len() < 42 || f[..6] != PEER_MAC.0 || f[6..12] != OUR_MAC.0 || f[12..14] != [8, 0] {
        return None;
    }
    if f[23] != 17 || f[30..34] != PEER_IP.octets() || f[36..38] != PEER_PORT.to_be_bytes() {
        return None;
    }
    let ulen = usize::from(u16::from_be_bytes([f[38], f[39]]));
    f.get(42..34 + ulen)
}

#[test]
#[ignore = "run inside its own network namespace by tap_exception_interface_in_a_namespace"]
fn inner_tap_exchange() {
    assert!(
        std::env::var_os(INNER_ENV).is_some(),
        "run by tap_exception_interface_in_a_namespace"
    );
    let mut cfg = ExceptionConfig::new(IFNAME, PortId(3), OUR_MAC);
    cfg.queues = 2;
    cfg.backend = BackendChoice::Auto;
    cfg.vhost_path = "/nonexistent/vhost-net".into();
    let (iface, queues) = ExceptionIface::open(&cfg).expect("open the TAP");
    assert_eq!(iface.backend(), ExceptionBackend::Tap);
    assert_eq!(iface.queue_count(), 2);
    assert!(!iface.is_up().unwrap());

    // MAC, MTU and link state as `ip link` sees them.
    let shown = ip(&["-o", "link", "show", "dev", IFNAME]);
    assert!(shown.contains(&format!("link/ether {OUR_MAC}")), "{shown}");
    assert!(shown.contains("mtu 1500"), "{shown}");
    assert!(!link_flags(IFNAME).iter().any(|f| f == "UP"), "{shown}");
    iface.set_mac(MAC2).unwrap();
    assert!(ip(&["-o", "link", "show", "dev", IFNAME]).contains(&format!("link/ether {MAC2}")));
    iface.set_mac(OUR_MAC).unwrap();
    // No IPv6: fewer of the kernel's own frames to skip.
    let _ = std::fs::write(
        format!("/proc/sys/net/ipv6/conf/{IFNAME}/disable_ipv6"),
        "1",
    );
    iface.set_link(true).unwrap();
    assert!(iface.is_up().unwrap());
    assert!(link_flags(IFNAME).iter().any(|f| f == "UP"));
    ip(&["addr", "add", &format!("{KERNEL_IP}/24"), "dev", IFNAME]);

    let pool =
        Pool::new(&PoolConfig::new("exc-tap", 1024).with_backing(MemoryBacking::NoHuge)).unwrap();
    let data_room = pool.data_room();
    let mut side = Side {
        queues,
        cache: pool.cache(),
        got: Burst::new(),
    };
    let sock = UdpSocket::bind(SocketAddrV4::new(KERNEL_IP, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let kport = sock.local_addr().unwrap().port();
    let peer = SocketAddrV4::new(PEER_IP, PEER_PORT);

    // The kernel has no neighbour entry: it asks, we answer, then the
    // datagram it held comes through.
    sock.send_to(&payload(0, 100), peer).unwrap();
    assert!(
        side.read_until(is_arp_request_for_peer),
        "no ARP request for {PEER_IP}"
    );
    side.send(0, &arp_reply());
    assert!(
        side.read_until(|f| udp_to_peer(f) == Some(&payload(0, 100)[..])),
        "the datagram held for ARP never came"
    );
    let neigh = ip(&["neigh", "show", "dev", IFNAME]);
    assert!(
        neigh.contains(&format!("{PEER_IP} lladdr {PEER_MAC}")),
        "neighbour not learnt: {neigh}"
    );

    // Both ways, one at a time, each payload checked.
    let mut buf = vec![0u8; 2048];
    for seq in 1..=ROUNDS as u32 {
        let len = 1 + (seq as usize * 37) % 1400;
        let p = payload(seq, len);
        sock.send_to(&p, peer).unwrap();
        assert!(
            side.read_until(|f| udp_to_peer(f) == Some(&p[..])),
            "datagram {seq} to the peer lost"
        );
        side.send(seq as usize % 2, &udp_frame(kport, &p));
        let (n, from) = sock.recv_from(&mut buf).expect("datagram from the peer");
        assert_eq!(from, std::net::SocketAddr::V4(peer));
        assert_eq!(&buf[..n], &p[..], "datagram {seq} from the peer");
    }
    let s = iface.stats();
    // The ARP reply, then one datagram per round.
    assert_eq!(s.to_kernel, ROUNDS as u64 + 1);
    assert!(s.from_kernel > ROUNDS as u64, "{s:?}");
    assert_eq!(s.rx_too_large, 0);

    // A frame longer than a buffer: dropped and counted, and the next one
    // still comes.
    iface.set_mtu(9000).unwrap();
    assert!(ip(&["-o", "link", "show", "dev", IFNAME]).contains("mtu 9000"));
    let big = payload(9999, data_room + 100);
    sock.send_to(&big, peer).unwrap();
    let small = payload(10_000, 64);
    sock.send_to(&small, peer).unwrap();
    assert!(side.read_until(|f| udp_to_peer(f) == Some(&small[..])));
    assert_eq!(iface.stats().rx_too_large, 1);
    assert!(iface.xstats().contains(&("from_kernel_too_large", 1)));

    iface.set_link(false).unwrap();
    assert!(!link_flags(IFNAME).iter().any(|f| f == "UP"));
    assert!(!iface.is_up().unwrap());

    // Every buffer back; the TAP goes with the interface and its queues.
    drop(side);
    assert_eq!(pool.available(), pool.count(), "every buffer back");
    drop(iface);
    let gone = Command::new("ip")
        .args(["link", "show", "dev", IFNAME])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "{IFNAME} still exists");
}
