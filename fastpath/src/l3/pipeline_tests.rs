//! The pipeline on hand-built frames: each frame's end (sent on a port,
//! punted with a reason, dropped with a reason) and the bytes sent; and,
//! for any bytes, no panic and every buffer accounted for.

use super::model::{Gateway, RouteTarget, RouterModel, Update};
use super::next_hop::PortIndex;
use super::pipeline::{Ctx, L3Out, Pipeline};
use super::tables::{PortConf, Tables};
use crate::counters::CoreSnapshot;
use crate::packet::checksum;
use crate::reasons::{DropReason, PuntReason};
use drivers::burst::Burst;
use drivers::mbuf::OlFlags;
use drivers::memory::MemoryBacking;
use drivers::net::MacAddr;
use drivers::pool::{Pool, PoolConfig};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub(super) const MAC0: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x10]);
const MAC1: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x11]);
const HOST: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x99]);
const GW1: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xa1]);
const GW2: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xa2]);

fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse().unwrap())
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse().unwrap())
}

/// Port 0: 10.0.0.254/24 (MTU 1500), port 1: 192.0.2.254/24 (MTU 1500),
/// port 2: 192.0.3.254/24 (MTU 100). 198.51.100.0/24 via 192.0.2.1
/// (resolved); 198.51.101.0/24 via 192.0.2.2 (unresolved);
/// 203.0.113.0/24 ECMP via 192.0.2.1 and 192.0.3.1 (both resolved);
/// 100.64.0.0/10 blackhole; 198.18.0.0/15 unreachable; 192.0.3.0/24's
/// host 192.0.3.9 resolved (MTU 100 there).
pub(super) fn tables() -> Tables {
    let port = |p: u16, mac, mtu| Update::Port {
        port: PortIndex(p),
        conf: PortConf { mac, mtu },
    };
    let gw = |p: u16, ip: &str| Gateway {
        port: PortIndex(p),
        ip: ip.parse().unwrap(),
    };
    let updates = [
        port(0, MAC0, 1500),
        port(1, MAC1, 1500),
        port(2, MacAddr::local(2), 100),
        Update::AddrAdd {
            port: PortIndex(0),
            ip: v4("10.0.0.254"),
        },
        Update::AddrAdd {
            port: PortIndex(1),
            ip: v4("192.0.2.254"),
        },
        Update::RouteAdd {
            prefix: "10.0.0.0/24".parse().unwrap(),
            target: RouteTarget::Connected(PortIndex(0)),
        },
        Update::RouteAdd {
            prefix: "192.0.2.0/24".parse().unwrap(),
            target: RouteTarget::Connected(PortIndex(1)),
        },
        Update::RouteAdd {
            prefix: "192.0.3.0/24".parse().unwrap(),
            target: RouteTarget::Connected(PortIndex(2)),
        },
        Update::RouteAdd {
            prefix: "198.51.100.0/24".parse().unwrap(),
            target: RouteTarget::Via(vec![gw(1, "192.0.2.1")]),
        },
        Update::RouteAdd {
            prefix: "198.51.101.0/24".parse().unwrap(),
            target: RouteTarget::Via(vec![gw(1, "192.0.2.2")]),
        },
        Update::RouteAdd {
            prefix: "203.0.113.0/24".parse().unwrap(),
            target: RouteTarget::Via(vec![gw(1, "192.0.2.1"), gw(2, "192.0.3.1")]),
        },
        Update::RouteAdd {
            prefix: "100.64.0.0/10".parse().unwrap(),
            target: RouteTarget::Blackhole,
        },
        Update::RouteAdd {
            prefix: "198.18.0.0/15".parse().unwrap(),
            target: RouteTarget::Unreachable,
        },
        Update::NeighAdd {
            port: PortIndex(1),
            ip: v4("192.0.2.1"),
            mac: GW1,
        },
        Update::NeighAdd {
            port: PortIndex(2),
            ip: v4("192.0.3.1"),
            mac: GW2,
        },
        Update::NeighAdd {
            port: PortIndex(2),
            ip: v4("192.0.3.9"),
            mac: HOST,
        },
        // IPv6: port 1 2001:db8:1::fe/64, 2001:db8:100::/48 via
        // 2001:db8:1::1 (resolved); port 2 (MTU 100) 2001:db8:200::/48 via
        // 2001:db8:2::1 (resolved).
        Update::AddrAdd {
            port: PortIndex(1),
            ip: v6("2001:db8:1::fe"),
        },
        Update::RouteAdd {
            prefix: "2001:db8:1::/64".parse().unwrap(),
            target: RouteTarget::Connected(PortIndex(1)),
        },
        Update::RouteAdd {
            prefix: "2001:db8:100::/48".parse().unwrap(),
            target: RouteTarget::Via(vec![gw(1, "2001:db8:1::1")]),
        },
        Update::RouteAdd {
            prefix: "2001:db8:200::/48".parse().unwrap(),
            target: RouteTarget::Via(vec![gw(2, "2001:db8:2::1")]),
        },
        Update::NeighAdd {
            port: PortIndex(1),
            ip: v6("2001:db8:1::1"),
            mac: GW1,
        },
        Update::NeighAdd {
            port: PortIndex(2),
            ip: v6("2001:db8:2::1"),
            mac: GW2,
        },
    ];
    let (ops, r) = RouterModel::new().update_all(&updates);
    r.unwrap();
    let mut t = Tables::new();
    t.apply_all(&ops);
    t
}

pub(super) fn pool() -> Pool {
    let mut cfg = PoolConfig::new("l3-test", 1024).with_backing(MemoryBacking::NoHuge);
    cfg.cache_size = 0;
    Pool::new(&cfg).unwrap()
}

pub(super) fn ethernet(dst: MacAddr, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&HOST.0);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 header (checksum filled) and an 8-byte UDP header 1234 -> 53.
pub(super) fn ipv4_udp(src: &str, dst: &str, ttl: u8) -> Vec<u8> {
    let mut ip = vec![0x45, 0, 0, 28, 0, 1, 0, 0, ttl, 17, 0, 0];
    ip.extend_from_slice(&src.parse::<Ipv4Addr>().unwrap().octets());
    ip.extend_from_slice(&dst.parse::<Ipv4Addr>().unwrap().octets());
    let c = checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&[0x04, 0xd2, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00]);
    ip
}

/// A frame to port 0 (`MAC0`) carrying `ip`, padded to the 60-byte minimum.
pub(super) fn frame4(ip: &[u8]) -> Vec<u8> {
    let mut f = ethernet(MAC0, 0x0800, ip);
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// An IPv6 header, next header `nh`, hop limit 64, and `payload`.
pub(super) fn ipv6(src: &str, dst: &str, nh: u8, payload: &[u8]) -> Vec<u8> {
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    ip.extend_from_slice(&[nh, 64]);
    ip.extend_from_slice(&src.parse::<Ipv6Addr>().unwrap().octets());
    ip.extend_from_slice(&dst.parse::<Ipv6Addr>().unwrap().octets());
    ip.extend_from_slice(payload);
    ip
}

/// Where one frame ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Sent(PortIndex, Vec<u8>),
    Punted(PuntReason, Vec<u8>),
    Dropped(DropReason),
}

/// The frames in buffers from `pool`, with their offload flags.
pub(super) fn burst_of(pool: &Pool, frames: &[(Vec<u8>, OlFlags)]) -> Burst {
    let mut burst = Burst::new();
    for (f, flags) in frames {
        let mut m = pool.alloc().expect("pool has room");
        m.append(f.len()).unwrap().copy_from_slice(f);
        m.set_ol_flags(*flags);
        burst.push(m);
    }
    burst
}

fn run_burst(t: &Tables, pool: &Pool, frames: &[(Vec<u8>, OlFlags)]) -> (L3Out, CoreSnapshot) {
    let mut burst = burst_of(pool, frames);
    let mut out = L3Out::new(3);
    let mut c = CoreSnapshot::default();
    let ctx = Ctx {
        tables: t,
        in_port: PortIndex(0),
    };
    Pipeline::new().run(ctx, &mut burst, &mut out, &mut c);
    assert!(burst.is_empty());
    (out, c)
}

fn run_one_flags(frame: &[u8], flags: OlFlags) -> End {
    let (t, pool) = (tables(), pool());
    let (mut out, c) = run_burst(&t, &pool, &[(frame.to_vec(), flags)]);
    let total =
        out.punts.len() as u64 + c.dropped() + out.tx.iter().map(|b| b.len() as u64).sum::<u64>();
    assert_eq!(total, 1, "one end, counted once");
    if let Some(p) = out.punts.pop() {
        return End::Punted(p.reason, p.mbuf.data().to_vec());
    }
    for (port, b) in out.tx.iter_mut().enumerate() {
        if let Some(m) = b.pop() {
            return End::Sent(PortIndex(port as u16), m.data().to_vec());
        }
    }
    let r = *crate::reasons::DropReason::ALL
        .iter()
        .find(|r| c.drops_for(**r) == 1)
        .expect("a drop reason counted");
    End::Dropped(r)
}

fn run_one(frame: &[u8]) -> End {
    run_one_flags(frame, OlFlags::NONE)
}

fn punt_reason(e: End) -> Option<PuntReason> {
    match e {
        End::Punted(r, _) => Some(r),
        _ => None,
    }
}

#[test]
fn forwards_through_a_resolved_gateway() {
    let ip = ipv4_udp("10.0.0.1", "198.51.100.7", 64);
    // Worked out: header sum with the checksum zeroed gives 0x4695 at TTL
    // 64; at TTL 63 one 0x0100 less in the sum, so 0x4795.
    assert_eq!(&ip[10..12], &[0x46, 0x95]);
    let End::Sent(port, f) = run_one(&frame4(&ip)) else {
        panic!("not sent")
    };
    assert_eq!(port, PortIndex(1));
    // Padding trimmed: 14 + 28 bytes.
    assert_eq!(f.len(), 42);
    assert_eq!(&f[..6], &GW1.0);
    assert_eq!(&f[6..12], &MAC1.0);
    assert_eq!(f[14 + 8], 63);
    assert_eq!(&f[14 + 10..14 + 12], &[0x47, 0x95]);
    assert!(checksum::verify(&f[14..34]));
    assert_eq!(&f[34..], &ip[20..]);
}

#[test]
fn forwards_to_a_resolved_host_of_a_connected_route() {
    let ip = ipv4_udp("10.0.0.1", "192.0.3.9", 64);
    let End::Sent(port, f) = run_one(&frame4(&ip)) else {
        panic!("not sent")
    };
    assert_eq!(port, PortIndex(2));
    assert_eq!(&f[..6], &HOST.0);
}

#[test]
fn ethernet_input_exits() {
    let ip = ipv4_udp("10.0.0.1", "198.51.100.7", 64);
    let mut other = frame4(&ip);
    other[5] = 0x77;
    assert_eq!(run_one(&other), End::Dropped(DropReason::OtherHost));
    assert_eq!(run_one(&other[..10]), End::Dropped(DropReason::BadEthernet));
    let arp = ethernet(MacAddr::BROADCAST, 0x0806, &[0; 46]);
    assert_eq!(punt_reason(run_one(&arp)), Some(PuntReason::Arp));
    let lldp = ethernet(MacAddr([0x01, 0x80, 0xc2, 0, 0, 0x0e]), 0x88cc, &[0; 46]);
    assert_eq!(
        punt_reason(run_one(&lldp)),
        Some(PuntReason::OtherEthertype)
    );
    let mut tagged = ethernet(MAC0, 0x8100, &[0x00, 0x07, 0x08, 0x00]);
    tagged.extend_from_slice(&ip);
    assert_eq!(punt_reason(run_one(&tagged)), Some(PuntReason::VlanTagged));
    // A routable unicast datagram in a broadcast frame: not forwarded.
    let mut bcast = frame4(&ip);
    bcast[..6].copy_from_slice(&MacAddr::BROADCAST.0);
    assert_eq!(punt_reason(run_one(&bcast)), Some(PuntReason::L2Broadcast));
    // A port the tables do not know.
    let (t, pool) = (Tables::new(), pool());
    let (out, c) = run_burst(&t, &pool, &[(frame4(&ip), OlFlags::NONE)]);
    assert_eq!(c.drops_for(DropReason::UnknownPort), 1);
    assert_eq!(out.drops.len(), 1);
}

#[test]
fn ipv4_header_checks() {
    let good = ipv4_udp("10.0.0.1", "198.51.100.7", 64);
    let with = |at: usize, v: u8| {
        let mut ip = good.clone();
        ip[at] = v;
        frame4(&ip)
    };
    assert_eq!(
        run_one(&with(0, 0x55)),
        End::Dropped(DropReason::Ipv4BadVersion)
    );
    assert_eq!(
        run_one(&with(0, 0x44)),
        End::Dropped(DropReason::Ipv4BadHeaderLength)
    );
    // Total length 19 (below the header), then 200 (past the frame).
    assert_eq!(
        run_one(&with(3, 19)),
        End::Dropped(DropReason::Ipv4BadTotalLength)
    );
    assert_eq!(
        run_one(&with(3, 200)),
        End::Dropped(DropReason::Ipv4BadTotalLength)
    );
    let truncated = ethernet(MAC0, 0x0800, &good[..12]);
    assert_eq!(run_one(&truncated), End::Dropped(DropReason::Ipv4Truncated));
    // Identification changed, checksum not.
    let bad = with(5, 2);
    assert_eq!(run_one(&bad), End::Dropped(DropReason::Ipv4BadChecksum));
    // ... unless the NIC says it checked, or bad whatever the bytes.
    assert!(matches!(
        run_one_flags(&bad, OlFlags::RX_IP_CKSUM_GOOD),
        End::Sent(..)
    ));
    assert_eq!(
        run_one_flags(&frame4(&good), OlFlags::RX_IP_CKSUM_BAD),
        End::Dropped(DropReason::Ipv4BadChecksum)
    );
    let martian = frame4(&ipv4_udp("127.0.0.1", "198.51.100.7", 64));
    assert_eq!(
        run_one(&martian),
        End::Dropped(DropReason::Ipv4MartianSource)
    );
    let martian = frame4(&ipv4_udp("10.0.0.1", "0.1.2.3", 64));
    assert_eq!(
        run_one(&martian),
        End::Dropped(DropReason::Ipv4MartianDestination)
    );
}

#[test]
fn ipv4_punts() {
    let punt = |src: &str, dst: &str, ttl: u8| {
        let f = frame4(&ipv4_udp(src, dst, ttl));
        match run_one(&f) {
            End::Punted(r, bytes) => {
                // Punted as received, padding trimmed.
                assert_eq!(bytes.len(), 42);
                assert_eq!(&bytes[..], &f[..42]);
                r
            }
            e => panic!("{e:?}"),
        }
    };
    assert_eq!(punt("10.0.0.1", "198.51.100.7", 1), PuntReason::TtlExceeded);
    assert_eq!(punt("10.0.0.1", "198.51.100.7", 0), PuntReason::TtlExceeded);
    assert_eq!(punt("10.0.0.1", "10.0.0.254", 1), PuntReason::Local);
    assert_eq!(punt("10.0.0.1", "192.0.2.254", 64), PuntReason::Local);
    assert_eq!(punt("10.0.0.1", "224.0.0.5", 1), PuntReason::Ipv4Multicast);
    assert_eq!(
        punt("10.0.0.1", "255.255.255.255", 64),
        PuntReason::Ipv4Multicast
    );
    assert_eq!(punt("10.0.0.1", "198.51.101.7", 64), PuntReason::Unresolved);
    assert_eq!(punt("10.0.0.1", "192.0.2.77", 64), PuntReason::Unresolved);
    assert_eq!(punt("10.0.0.1", "8.8.8.8", 64), PuntReason::NoRoute);
    assert_eq!(punt("10.0.0.1", "198.19.0.1", 64), PuntReason::Unreachable);
    assert_eq!(
        run_one(&frame4(&ipv4_udp("10.0.0.1", "100.100.0.1", 64))),
        End::Dropped(DropReason::Blackhole)
    );
    // Options (a 4-byte NOP, NOP, NOP, EOL): IHL 6.
    let mut ip = ipv4_udp("10.0.0.1", "198.51.100.7", 64);
    ip[0] = 0x46;
    ip[3] = 32;
    ip.splice(20..20, [1, 1, 1, 0]);
    ip[10..12].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&ip[..24]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(
        punt_reason(run_one(&frame4(&ip))),
        Some(PuntReason::Ipv4Options)
    );
}

#[test]
fn larger_than_the_output_mtu_goes_to_the_kernel() {
    // Port 2's MTU is 100: a 128-byte datagram to its host.
    let mut ip = ipv4_udp("10.0.0.1", "192.0.3.9", 64);
    ip[3] = 128;
    ip.resize(128, 0);
    ip[10..12].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&ip[..20]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(punt_reason(run_one(&frame4(&ip))), Some(PuntReason::TooBig));
    // 100 bytes fit.
    ip[3] = 100;
    ip.truncate(100);
    ip[10..12].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&ip[..20]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    assert!(matches!(run_one(&frame4(&ip)), End::Sent(PortIndex(2), _)));
}

#[test]
fn ecmp_spreads_flows_and_keeps_each_on_one_path() {
    let (t, pool) = (tables(), pool());
    let frames: Vec<_> = (0..64u8)
        .map(|i| {
            let mut ip = ipv4_udp("10.0.0.1", &format!("203.0.113.{i}"), 64);
            ip[10..12].copy_from_slice(&[0, 0]);
            let c = checksum::checksum(&ip[..20]);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            (frame4(&ip), OlFlags::NONE)
        })
        .collect();
    let (out, _) = run_burst(&t, &pool, &frames);
    let (on1, on2) = (out.tx[1].len(), out.tx[2].len());
    assert_eq!(on1 + on2, 64);
    assert!(on1 > 8 && on2 > 8, "{on1} and {on2} of 64 flows");
    assert!(out.tx[1].iter().all(|m| m.data()[..6] == GW1.0));
    assert!(out.tx[2].iter().all(|m| m.data()[..6] == GW2.0));
    // The same flows again take the same ports.
    let (again, _) = run_burst(&t, &pool, &frames);
    let dsts = |b: &Burst| b.iter().map(|m| m.data()[14 + 19]).collect::<Vec<_>>();
    assert_eq!(dsts(&again.tx[1]), dsts(&out.tx[1]));
}

#[test]
fn ipv6_input_checks_and_punts() {
    let f6 = |ip: Vec<u8>| ethernet(MAC0, 0x86dd, &ip);
    let udp = [0x04, 0xd2, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00];
    // Neighbour solicitation to a solicited-node group.
    let ns = f6(ipv6("fe80::1", "ff02::1:ff00:1", 58, &[135, 0, 0, 0]));
    assert_eq!(punt_reason(run_one(&ns)), Some(PuntReason::Ipv6Multicast));
    let ll = f6(ipv6("fe80::1", "2001:db8::1", 17, &udp));
    assert_eq!(punt_reason(run_one(&ll)), Some(PuntReason::Ipv6LinkLocal));
    let hbh = f6(ipv6(
        "2001:db8::2",
        "2001:db8::1",
        0,
        &[17, 0, 1, 4, 0, 0, 0, 0],
    ));
    assert_eq!(punt_reason(run_one(&hbh)), Some(PuntReason::Ipv6HopByHop));
    // No route: the kernel sends the unreachable.
    let global = f6(ipv6("2001:db8::2", "2001:db9::1", 17, &udp));
    assert_eq!(punt_reason(run_one(&global)), Some(PuntReason::NoRoute));
    let mut v = ipv6("2001:db8::2", "2001:db8:1::1", 17, &udp);
    v[0] = 0x40;
    assert_eq!(run_one(&f6(v)), End::Dropped(DropReason::Ipv6BadVersion));
    let mut long = ipv6("2001:db8::2", "2001:db8:1::1", 17, &udp);
    long[5] = 9;
    assert_eq!(
        run_one(&f6(long)),
        End::Dropped(DropReason::Ipv6BadPayloadLength)
    );
    let short = ipv6("2001:db8::2", "2001:db8:1::1", 17, &udp);
    assert_eq!(
        run_one(&f6(short[..30].to_vec())),
        End::Dropped(DropReason::Ipv6Truncated)
    );
    let bad_src = f6(ipv6("ff02::1", "2001:db8::1", 17, &udp));
    assert_eq!(run_one(&bad_src), End::Dropped(DropReason::Ipv6BadSource));
    let bad_dst = f6(ipv6("2001:db8::2", "::", 17, &udp));
    assert_eq!(
        run_one(&bad_dst),
        End::Dropped(DropReason::Ipv6BadDestination)
    );
}

#[test]
fn ipv6_forwarding() {
    let udp = [0x04, 0xd2, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00];
    let f6 = |ip: Vec<u8>| ethernet(MAC0, 0x86dd, &ip);
    let ip = ipv6("2001:db8::2", "2001:db8:100::7", 17, &udp);
    let End::Sent(port, f) = run_one(&f6(ip.clone())) else {
        panic!("not sent")
    };
    assert_eq!(port, PortIndex(1));
    assert_eq!(&f[..6], &GW1.0);
    assert_eq!(&f[6..12], &MAC1.0);
    // Hop limit 64 -> 63, nothing else changed.
    assert_eq!(f[14 + 7], 63);
    assert_eq!(&f[14..14 + 7], &ip[..7]);
    assert_eq!(&f[14 + 8..], &ip[8..]);
    let mut last_hop = ip.clone();
    last_hop[7] = 1;
    assert_eq!(
        punt_reason(run_one(&f6(last_hop))),
        Some(PuntReason::HopLimitExceeded)
    );
    let local = ipv6("2001:db8::2", "2001:db8:1::fe", 17, &udp);
    assert_eq!(punt_reason(run_one(&f6(local))), Some(PuntReason::Local));
    let unresolved = ipv6("2001:db8::2", "2001:db8:1::77", 17, &udp);
    assert_eq!(
        punt_reason(run_one(&f6(unresolved))),
        Some(PuntReason::Unresolved)
    );
    // Port 2's MTU is 100: 40 + 64 bytes is too big, 40 + 60 fits.
    let big = ipv6("2001:db8::2", "2001:db8:200::1", 17, &[0; 64]);
    assert_eq!(punt_reason(run_one(&f6(big))), Some(PuntReason::TooBig));
    let fits = ipv6("2001:db8::2", "2001:db8:200::1", 17, &[0; 60]);
    assert!(matches!(run_one(&f6(fits)), End::Sent(PortIndex(2), _)));
}

pub(super) fn valid_frames() -> Vec<Vec<u8>> {
    vec![
        frame4(&ipv4_udp("10.0.0.1", "198.51.100.7", 64)),
        frame4(&ipv4_udp("10.0.0.1", "203.0.113.5", 2)),
        frame4(&ipv4_udp("10.0.0.1", "192.0.3.9", 64)),
        ethernet(
            MAC0,
            0x86dd,
            &ipv6("2001:db8::2", "2001:db8:1::1", 17, &[0; 8]),
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Any burst of any frames (random bytes, or valid frames with bits
    /// flipped and tails cut): no panic, and every packet at exactly one
    /// end, counted under exactly one reason; every buffer back.
    #[test]
    fn every_packet_ends_once(
        frames in prop::collection::vec(
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..100),
                (0usize..4, prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 0..4), any::<prop::sample::Index>())
                    .prop_map(|(w, flips, cut)| {
                        let mut f = valid_frames()[w].clone();
                        for (at, bit) in flips {
                            let i = at.index(f.len());
                            f[i] ^= 1 << bit;
                        }
                        let keep = f.len() - cut.index(f.len() / 3 + 1);
                        f.truncate(keep);
                        f
                    }),
            ],
            0..64,
        ),
        good_checksum in any::<bool>(),
    ) {
        let (t, pool) = (tables(), pool());
        let before = pool.available();
        let flags = if good_checksum { OlFlags::RX_IP_CKSUM_GOOD } else { OlFlags::NONE };
        let input: Vec<_> = frames.iter().map(|f| (f.clone(), flags)).collect();
        let (out, c) = run_burst(&t, &pool, &input);
        let sent: usize = out.tx.iter().map(|b| b.len()).sum();
        prop_assert_eq!(sent + out.punts.len() + out.drops.len(), frames.len());
        prop_assert_eq!(c.punted(), 0, "punts are counted when handed on");
        prop_assert_eq!(c.dropped(), out.drops.len() as u64);
        prop_assert_eq!(c.drops_for(DropReason::Stalled), 0);
        drop(out);
        prop_assert_eq!(pool.available(), before);
    }
}
