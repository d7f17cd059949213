//! Next-hop resolution: what the route's next hop says to do, a multipath
//! group's member picked by a flow hash.
//!
//! Exits: `Forward` (with [`Meta::port`] and [`Meta::mac`] set); punt
//! `unresolved`, `local`, `unreachable`; drop `blackhole`, `bad_next_hop`.

use super::next_hop::NextHop;
use super::pipeline::{Ctx, Meta, Next};
use crate::packet::IpProtocol;
use crate::reasons::{DropReason, PuntReason};
use drivers::mbuf::{Mbuf, OlFlags};

/// Runs the stage over the packets parked at [`Next::Resolve`].
pub fn run(ctx: Ctx<'_>, pkts: &mut [Mbuf], meta: &mut [Meta]) {
    let hops = ctx.tables.next_hops();
    for (p, m) in pkts.iter().zip(meta.iter_mut()) {
        if m.next != Next::Resolve {
            continue;
        }
        // The hash is only worked out for a group.
        let hash = match hops.get(m.next_hop) {
            Some(NextHop::Multipath(_)) => flow_hash(p, m),
            _ => 0,
        };
        m.next = match hops.select(m.next_hop, hash) {
            Some(NextHop::Resolved { port, mac }) => {
                m.port = *port;
                m.mac = *mac;
                Next::Forward
            }
            Some(NextHop::Unresolved { .. }) => Next::Punt(PuntReason::Unresolved),
            Some(NextHop::Local) => Next::Punt(PuntReason::Local),
            Some(NextHop::Unreachable) => Next::Punt(PuntReason::Unreachable),
            Some(NextHop::Blackhole) => Next::Drop(DropReason::Blackhole),
            Some(NextHop::Multipath(_)) | None => Next::Drop(DropReason::BadNextHop),
        };
    }
}

/// A hash of the flow: the NIC's RSS hash when it gave one, else the
/// addresses, protocol and (TCP, UDP, first fragment) ports, so that one
/// flow keeps one path and its packets stay in order.
pub fn flow_hash(p: &Mbuf, m: &Meta) -> u32 {
    if p.ol_flags().contains(OlFlags::RX_RSS_HASH) {
        return p.rss_hash();
    }
    let d = p.data();
    let l3 = usize::from(m.l3);
    // Addresses: IPv4 bytes 12..20 (RFC 791), IPv6 8..40 (RFC 8200).
    let (addrs, proto, l4) = if m.v6 {
        (l3 + 8..l3 + 40, d.get(l3 + 6).copied(), l3 + 40)
    } else {
        let ihl = d.get(l3).map_or(20, |b| usize::from(b & 0x0f) * 4);
        let first = d
            .get(l3 + 6..l3 + 8)
            .is_some_and(|f| f[0] & 0x1f == 0 && f[1] == 0);
        let l4 = if first { l3 + ihl } else { usize::MAX / 2 };
        (l3 + 12..l3 + 20, d.get(l3 + 9).copied(), l4)
    };
    let mut h: u32 = 0x9e37_79b9;
    for chunk in d.get(addrs).unwrap_or(&[]).chunks(4) {
        let mut w = [0u8; 4];
        w[..chunk.len()].copy_from_slice(chunk);
        h = mix(h, u32::from_ne_bytes(w));
    }
    if let Some(proto) = proto {
        h = mix(h, u32::from(proto));
        if proto == IpProtocol::TCP.0 || proto == IpProtocol::UDP.0 {
            if let Some(ports) = d.get(l4..l4 + 4) {
                h = mix(
                    h,
                    u32::from_ne_bytes([ports[0], ports[1], ports[2], ports[3]]),
                );
            }
        }
    }
    h ^ (h >> 16)
}

/// One round of a multiplicative mix (the golden-ratio constant of
/// Fibonacci hashing, as in Knuth's TAOCP 6.4).
#[inline]
fn mix(h: u32, w: u32) -> u32 {
    (h ^ w).wrapping_mul(0x9e37_79b1).rotate_left(13)
}
