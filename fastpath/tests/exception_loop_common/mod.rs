//! The exception loop against the kernel through one real exception
//! interface, shared by the namespace test (plain TAP) and the VM lab's
//! (vhost-net): the test plays a worker that punts an ARP request and a
//! UDP datagram received on a fast-path port, and checks the kernel's ARP
//! reply comes back through the port's injection ring, the kernel learnt
//! the neighbour, the datagram reached a kernel socket, and a flood over
//! the port's rate limit was cut to the limit and counted, with every
//! buffer back at the end.
// Each test target uses all of it, but through one entry point.
#![allow(dead_code)]

use drivers::exception::{BackendChoice, ExceptionBackend, ExceptionConfig, ExceptionIface};
use drivers::mbuf::{Mbuf, PortId};
use drivers::memory::MemoryBacking;
use drivers::net::MacAddr;
use drivers::pool::{Pool, PoolCache, PoolConfig};
use drivers::ring::{Consumer, Ring};
use drivers::test_netns::ip;
use fastpath::exception::{ExceptionLoop, ExceptionPort, InjectRing, Punted, RateLimit};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const IFNAME: &str = "fpe0";
const PORT: PortId = PortId(2);
const OUR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0xe1, 0x01]);
const PEER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0xe1, 0x02]);
const KERNEL_IP: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 1);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 2);
const BURST: u32 = 10;

/// ARP request (RFC 826) from the peer for the kernel's address.
fn arp_request() -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&MacAddr::BROADCAST.0);
    f.extend_from_slice(&PEER_MAC.0);
    f.extend_from_slice(&0x0806u16.to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&PEER_MAC.0);
    f.extend_from_slice(&PEER_IP.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&KERNEL_IP.octets());
    f
}

/// True for the kernel's ARP reply to the peer.
fn is_arp_reply_to_peer(f: &[u8]) -> bool {
    f.len() >= 42
        && f[..6] == PEER_MAC.0
        && f[6..12] == OUR_MAC.0
        && f[12..14] == [0x08, 0x06]
        && f[20..22] == [0, 2]
        && f[22..28] == OUR_MAC.0
        && f[28..32] == KERNEL_IP.octets()
        && f[32..38] == PEER_MAC.0
        && f[38..42] == PEER_IP.octets()
}

/// IPv4/UDP from the peer to the kernel (UDP checksum 0: none, RFC 768).
fn udp_frame(dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&OUR_MAC.0);
    f.extend_from_slice(&PEER_MAC.0);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&((28 + payload.len()) as u16).to_be_bytes());
    h[8] = 64;
    h[9] = 17;
    h[12..16].copy_from_slice(&PEER_IP.octets());
    h[16..20].copy_from_slice(&KERNEL_IP.octets());
    // RFC 1071 checksum of the header.
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    h[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&h);
    f.extend_from_slice(&4000u16.to_be_bytes());
    f.extend_from_slice(&dst_port.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

fn mbuf(cache: &mut PoolCache, frame: &[u8]) -> Mbuf {
    let mut m = cache.alloc().expect("a free buffer");
    m.append(frame.len()).unwrap().copy_from_slice(frame);
    m
}

/// Pops what the loop injects until `want` says done, or 5 s.
fn injected_until(out: &mut Consumer<Mbuf>, mut want: impl FnMut(&[u8]) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        while let Some(m) = out.pop() {
            if want(m.data()) {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

/// The whole exchange on an interface opened with `choice`, which must
/// give `expect`.
pub fn punt_and_inject(choice: BackendChoice, expect: ExceptionBackend) {
    let mut cfg = ExceptionConfig::new(IFNAME, PORT, OUR_MAC);
    cfg.backend = choice;
    let (iface, queues) = ExceptionIface::open(&cfg).expect("open the exception interface");
    assert_eq!(iface.backend(), expect);
    let _ = std::fs::write(
        format!("/proc/sys/net/ipv6/conf/{IFNAME}/disable_ipv6"),
        "1",
    );
    iface.set_link(true).unwrap();
    ip(&["addr", "add", &format!("{KERNEL_IP}/24"), "dev", IFNAME]);
    let sock = UdpSocket::bind(SocketAddrV4::new(KERNEL_IP, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let kport = sock.local_addr().unwrap().port();

    let pool = Pool::new(&PoolConfig::new("exc-loop-ns", 512).with_backing(MemoryBacking::NoHuge))
        .unwrap();
    let mut worker_cache = pool.cache();
    let (mut punt, punt_rx) = Ring::new(256).unwrap().split();
    let (inject_tx, mut inject_rx) = Ring::new(256).unwrap().split();
    let port = ExceptionPort {
        port: PORT,
        queues,
        out: InjectRing(inject_tx),
        // One packet a second after the burst: the flood below passes
        // the burst and one more per second the test took.
        limit: Some(RateLimit::new(1, BURST).unwrap()),
    };
    let mut l = ExceptionLoop::new(vec![port], vec![punt_rx], pool.cache(), 32, 0).unwrap();
    let counters = l.counters();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let started = Instant::now();
    let thread = std::thread::spawn(move || {
        l.run(&stop2, Duration::from_micros(100));
        l
    });

    // ARP: the kernel answers through the port, and learns the peer.
    let m = mbuf(&mut worker_cache, &arp_request());
    punt.push(Punted {
        port: PORT,
        mbuf: m,
    })
    .unwrap();
    assert!(
        injected_until(&mut inject_rx, is_arp_reply_to_peer),
        "no ARP reply injected"
    );
    let neigh = ip(&["neigh", "show", "dev", IFNAME]);
    assert!(
        neigh.contains(&format!("{PEER_IP} lladdr {PEER_MAC}")),
        "{neigh}"
    );

    // A datagram for a kernel socket.
    let payload = b"punted to the kernel's socket";
    let m = mbuf(&mut worker_cache, &udp_frame(kport, payload));
    punt.push(Punted {
        port: PORT,
        mbuf: m,
    })
    .unwrap();
    let mut buf = [0u8; 128];
    let (n, from) = sock.recv_from(&mut buf).expect("the punted datagram");
    assert_eq!(&buf[..n], payload);
    assert_eq!(
        from,
        std::net::SocketAddr::V4(SocketAddrV4::new(PEER_IP, 4000))
    );

    // A flood of 100 ARP requests: the burst's 8 remaining tokens pass
    // (the two packets above took 2), and one a second since the loop
    // started; the rest is rate-limited.
    for _ in 0..100 {
        let m = mbuf(&mut worker_cache, &arp_request());
        while punt.len() == punt.capacity() {
            std::thread::sleep(Duration::from_millis(1));
        }
        punt.push(Punted {
            port: PORT,
            mbuf: m,
        })
        .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while counters.port(PORT).unwrap().punted < 102 {
        assert!(
            Instant::now() < deadline,
            "the loop stopped taking punted packets"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let earned = started.elapsed().as_secs() + 1;
    let s = counters.port(PORT).unwrap();
    assert_eq!(s.punted, 102);
    let burst = u64::from(BURST);
    assert!(
        (burst..=burst + earned).contains(&s.to_kernel),
        "{s:?} after {earned} s"
    );
    assert_eq!(s.rate_limited, 102 - s.to_kernel, "{s:?}");
    assert_eq!(s.tap_full, 0);
    assert_eq!(iface.stats().to_kernel, s.to_kernel);

    stop.store(true, Ordering::Relaxed);
    let l = thread.join().unwrap();
    let s = counters.port(PORT).unwrap();
    assert_eq!(s.from_kernel, s.injected + s.inject_full);
    assert!(s.injected >= 1);
    drop((l, punt, inject_rx, worker_cache));
    assert_eq!(pool.available(), pool.count(), "every buffer back");
}
