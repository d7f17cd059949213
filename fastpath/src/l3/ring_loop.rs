//! Tables and seed frames for a loop of ring ports (pairs 0-1, 2-3, ...,
//! each port's MAC `MacAddr::local(index)`, as the forwarder builds them):
//! what `fwd-bench --mode l3` and the end-to-end tests route.
//!
//! Port p routes 10.p.0.0/16 via 192.0.p.1, a neighbour resolved to the
//! MAC of p's peer: a frame sent on p arrives at the peer addressed to it
//! and is routed out of p again, its TTL one less each pass. Seeds are
//! UDP 10.255.0.1 -> 10.p.i.1 (i < `dests`, each in its own /24), 60
//! bytes, TTL [`SEED_TTL`]: 254 passes each, then the kernel's (punt
//! `ttl_exceeded`).

use super::l3_worker::SeedFrames;
use super::model::{Gateway, ModelError, RouteTarget, RouterModel, Update};
use super::next_hop::PortIndex;
use super::tables::{PortConf, Tables, DEFAULT_MTU};
use crate::fib::Prefix4;
use crate::packet::checksum;
use drivers::net::MacAddr;
use std::net::{IpAddr, Ipv4Addr};

/// TTL of the seeds: the most passes through the loop.
pub const SEED_TTL: u8 = 255;

/// A ring port's MAC, as the ring pair gives it.
pub fn ring_mac(p: usize) -> MacAddr {
    MacAddr::local(u16::try_from(p).unwrap_or(u16::MAX))
}

/// The peer of ring port `p` of `nports`: what `p` sends arrives there.
pub fn ring_peer(p: usize, nports: usize) -> usize {
    if p ^ 1 < nports {
        p ^ 1
    } else {
        p
    }
}

/// The tables, and per port its seed frames (`dests` of them, at most
/// 256). Ports beyond 255 are refused by the addressing plan.
pub fn ring_loop(nports: usize, dests: usize) -> Result<(Tables, Vec<SeedFrames>), ModelError> {
    let mut updates = Vec::new();
    let mut seeds = Vec::new();
    let nports = nports.min(255);
    for p in 0..nports {
        updates.push(Update::Port {
            port: PortIndex(p as u16),
            conf: PortConf {
                mac: ring_mac(p),
                mtu: DEFAULT_MTU,
            },
        });
    }
    for p in 0..nports {
        let (o, port) = (p as u8, PortIndex(p as u16));
        let gw = Ipv4Addr::new(192, 0, o, 1);
        let (Ok(subnet), Ok(routed)) = (
            Prefix4::new_masked(gw, 24),
            Prefix4::new_masked(Ipv4Addr::new(10, o, 0, 0), 16),
        ) else {
            unreachable!("lengths 24 and 16 are valid");
        };
        updates.push(Update::RouteAdd {
            prefix: subnet.into(),
            target: RouteTarget::Connected(port),
        });
        updates.push(Update::RouteAdd {
            prefix: routed.into(),
            target: RouteTarget::Via(vec![Gateway {
                port,
                ip: IpAddr::V4(gw),
            }]),
        });
        let peer = ring_mac(ring_peer(p, nports));
        updates.push(Update::NeighAdd {
            port,
            ip: IpAddr::V4(gw),
            mac: peer,
        });
        let frames = (0..dests.min(256))
            .map(|i| udp4_frame(peer, ring_mac(p), Ipv4Addr::new(10, o, i as u8, 1)))
            .collect();
        seeds.push(frames);
    }
    let (ops, r) = RouterModel::new().update_all(&updates);
    r.map_err(|(_, e)| e)?;
    let mut tables = Tables::new();
    tables.apply_all(&ops);
    Ok((tables, seeds))
}

/// A 60-byte frame: IPv4 from 10.255.0.1 (checksum filled, DF, TTL
/// [`SEED_TTL`]), UDP 1024 -> 9 (discard, RFC 863) with no checksum (RFC
/// 768) and 18 bytes of zeros.
fn udp4_frame(dst: MacAddr, src: MacAddr, to: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![
        0x45, 0, 0, 46, 0, 0, 0x40, 0, SEED_TTL, 17, 0, 0, 10, 255, 0, 1,
    ];
    ip.extend_from_slice(&to.octets());
    let c = checksum::checksum(&ip);
    if let Some(field) = ip.get_mut(10..12) {
        field.copy_from_slice(&c.to_be_bytes());
    }
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0x04, 0x00, 0x00, 0x09, 0x00, 26, 0, 0]);
    f.resize(60, 0);
    f
}
