//! What the exception-interface tests share: the addresses, frames built by
//! hand (ARP reply, IPv4/UDP), `ip` output, and the fast path's side of an
//! exchange with the kernel (read its ARP request and answer it, then
//! datagrams both ways, payload-checked).
// Each test target uses a part of this.
#![allow(dead_code)]

use drivers::burst::Burst;
use drivers::exception::{ExceptionRx, ExceptionTx};
use drivers::net::MacAddr;
use drivers::pool::PoolCache;
use drivers::port::{RxQueue, TxQueue};
pub use drivers::test_netns::ip;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

/// The exception interface's MAC (the fast-path port's).
pub const OUR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0xe0, 0x01]);
/// The neighbour the test pretends to be, beyond the fast-path port.
pub const PEER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0xe0, 0x02]);
/// The kernel's address on the interface.
pub const KERNEL_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The neighbour's.
pub const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The neighbour's UDP port.
pub const PEER_PORT: u16 = 7777;

/// The flags `ip -o link show` prints between `<` and `>`.
pub fn link_flags(ifname: &str) -> Vec<String> {
    let out = ip(&["-o", "link", "show", "dev", ifname]);
    let start = out.find('<').expect("flags in ip link output") + 1;
    let end = out[start..].find('>').expect("flags end") + start;
    out[start..end].split(',').map(str::to_string).collect()
}

/// A counter of the interface from sysfs.
pub fn sysfs_stat(ifname: &str, name: &str) -> u64 {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/statistics/{name}"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no statistics/{name} for {ifname}"))
}

/// RFC 1071 Internet checksum of `data`.
pub fn inet_checksum(data: &[u8]) -> u16 {
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
pub fn udp_frame(dst_port: u16, payload: &[u8]) -> Vec<u8> {
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
pub fn arp_reply() -> Vec<u8> {
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
pub fn payload(seq: u32, len: usize) -> Vec<u8> {
    let mut p: Vec<u8> = (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(seq) as u8)
        .collect();
    let n = len.min(4);
    p[..n].copy_from_slice(&seq.to_be_bytes()[..n]);
    p
}

/// True for the kernel's ARP request for the peer (RFC 826 layout).
pub fn is_arp_request_for_peer(f: &[u8]) -> bool {
    f.len() >= 42
        && f[12..14] == [0x08, 0x06]
        && f[20..22] == [0, 1]
        && f[22..28] == OUR_MAC.0
        && f[28..32] == KERNEL_IP.octets()
        && f[38..42] == PEER_IP.octets()
}

/// The UDP payload of a frame from the kernel to the peer, if it is one.
pub fn udp_to_peer(f: &[u8]) -> Option<&[u8]> {
    if f.len() < 42 || f[..6] != PEER_MAC.0 || f[6..12] != OUR_MAC.0 || f[12..14] != [8, 0] {
        return None;
    }
    if f[23] != 17 || f[30..34] != PEER_IP.octets() || f[36..38] != PEER_PORT.to_be_bytes() {
        return None;
    }
    let ulen = usize::from(u16::from_be_bytes([f[38], f[39]]));
    f.get(42..34 + ulen)
}

/// The fast path's side: the interface's queues and a buffer cache.
pub struct Side {
    pub queues: Vec<(ExceptionRx, ExceptionTx)>,
    pub cache: PoolCache,
    pub got: Burst,
}

impl Side {
    /// Frames from the kernel, from every queue, until `want` (given each
    /// frame) says done or `limit` passes. Returns whether it was done.
    pub fn read_for(&mut self, limit: Duration, mut want: impl FnMut(&[u8]) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
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
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// As `read_for`, 5 s.
    pub fn read_until(&mut self, want: impl FnMut(&[u8]) -> bool) -> bool {
        self.read_for(Duration::from_secs(5), want)
    }

    /// Sends one frame on queue `q`; the queue must take it (retried for
    /// up to 5 s while it is full).
    pub fn send(&mut self, q: usize, frame: &[u8]) {
        let mut m = self.cache.alloc().expect("a free buffer");
        m.append(frame.len()).expect("room").copy_from_slice(frame);
        let mut b = Burst::new();
        b.push(m);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.queues[q].1.tx_burst(&mut self.cache, &mut b) == 0 {
            assert!(!b.is_empty(), "the queue dropped the frame");
            assert!(Instant::now() < deadline, "the queue stayed full");
            std::thread::sleep(Duration::from_micros(200));
        }
        assert!(b.is_empty());
    }
}

/// The kernel's UDP socket on its address, and the peer's address.
pub fn kernel_socket() -> (UdpSocket, u16, SocketAddrV4) {
    let sock = UdpSocket::bind(SocketAddrV4::new(KERNEL_IP, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let kport = sock.local_addr().unwrap().port();
    (sock, kport, SocketAddrV4::new(PEER_IP, PEER_PORT))
}

/// The kernel has no neighbour entry for the peer: its first datagram
/// makes it ask; the answer is sent on queue 0, then the datagram it held
/// must come through, and `ip neigh` shows the peer.
pub fn resolve_peer(side: &mut Side, sock: &UdpSocket, ifname: &str) {
    let peer = SocketAddrV4::new(PEER_IP, PEER_PORT);
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
    let neigh = ip(&["neigh", "show", "dev", ifname]);
    assert!(
        neigh.contains(&format!("{PEER_IP} lladdr {PEER_MAC}")),
        "neighbour not learnt: {neigh}"
    );
}

/// Datagrams `seqs` both ways, one at a time, `len(seq)` bytes each, each
/// payload checked: the kernel sends to the peer (read from any queue),
/// the peer answers on queue `seq % queues`.
pub fn exchange(
    side: &mut Side,
    sock: &UdpSocket,
    seqs: std::ops::RangeInclusive<u32>,
    len: impl Fn(u32) -> usize,
) {
    let kport = sock.local_addr().unwrap().port();
    let peer = SocketAddrV4::new(PEER_IP, PEER_PORT);
    let mut buf = vec![0u8; 65536];
    for seq in seqs {
        let p = payload(seq, len(seq));
        sock.send_to(&p, peer).unwrap();
        assert!(
            side.read_until(|f| udp_to_peer(f) == Some(&p[..])),
            "datagram {seq} ({} bytes) to the peer lost",
            p.len()
        );
        let q = seq as usize % side.queues.len();
        side.send(q, &udp_frame(kport, &p));
        let (n, from) = sock.recv_from(&mut buf).expect("datagram from the peer");
        assert_eq!(from, std::net::SocketAddr::V4(peer));
        assert_eq!(&buf[..n], &p[..], "datagram {seq} from the peer");
    }
}
