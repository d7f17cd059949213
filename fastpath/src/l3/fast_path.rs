//! The common case of every stage, fused: IPv4 unicast to our MAC,
//! untagged, no options, checksum good, sane addresses, route found and
//! resolved to one next hop, TTL above 1, within the output MTU. Such a
//! packet is taken to `Output` here in tight passes over the burst (VPP's
//! and DPDK l3fwd's structure): one reading the headers and collecting
//! destinations, one looking them all up (the loads overlap), one
//! resolving, decrementing the TTL and rewriting.
//!
//! The staged pipeline stays the reference. This pass only ever moves a
//! packet to where the stages would have moved it, with the same bytes
//! and, for a packet left at a stage, the [`Meta`] fields that stage
//! and the later ones read: it takes a packet as far as its common
//! case goes and leaves it parked at the stage that handles the
//! exception (`EthInput` for a header it does not recognise, `Resolve`
//! for a group or unresolved next hop, `Forward` for a TTL or MTU case),
//! and the stages, run after it, finish those. Where its checks are not
//! the stages' own functions, a test shows they refuse at least what the
//! stages would (the address checks: `ordinary`); a proptest
//! (`fast_path_tests`) checks the two give the same ends, bytes and
//! counters on random and mutated frames.

use super::next_hop::{NextHop, PortIndex};
use super::pipeline::{Ctx, Meta, Next};
use crate::fib::NextHopId;
use crate::packet::checksum;
use crate::reasons::PuntReason;
use drivers::burst::MAX_BURST;
use drivers::mbuf::{Mbuf, OlFlags};
use drivers::net::MacAddr;
use std::net::Ipv4Addr;

/// Ethernet header (no tag) and IPv4 header without options: what the
/// common case reads (IEEE 802.3 3.1, RFC 791 3.1).
const HEAD: usize = ETH + IP;
/// Ethernet header length, and so the IPv4 header's offset.
const ETH: usize = 14;
/// IPv4 header without options.
const IP: usize = 20;
/// The EtherType of IPv4 (RFC 894).
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
/// Version 4, IHL 5 (RFC 791 3.1): no options.
const VER_IHL_PLAIN: u8 = 0x45;
// Field offsets in the frame (RFC 791 3.1, after the Ethernet header).
const TOTAL_LEN: usize = ETH + 2;
const TTL: usize = ETH + 8;
const CHECKSUM: usize = ETH + 10;

/// The fused path's per-burst arrays, kept from burst to burst (one per
/// [`Pipeline`](super::Pipeline)) so that no burst pays for zeroing them.
#[derive(Debug, Clone)]
pub struct Scratch {
    /// Destinations of the packets that passed the input checks.
    dst: [u32; MAX_BURST],
    /// Each one's index in the burst.
    at: [u16; MAX_BURST],
    /// Each one's route.
    hop: [Option<NextHopId>; MAX_BURST],
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            dst: [0; MAX_BURST],
            at: [0; MAX_BURST],
            hop: [None; MAX_BURST],
        }
    }
}

/// What a resolved next hop means for the packets sent through it, worked
/// out once for a run of packets through the same one.
#[derive(Debug, Clone, Copy)]
struct Via {
    id: NextHopId,
    port: PortIndex,
    mac: MacAddr,
    /// The rewritten addresses: the next hop's, then the port's.
    addrs: [u8; 12],
    mtu: usize,
}

impl Via {
    /// `None` unless `id` is resolved to one station on a known port.
    #[inline]
    fn new(ctx: Ctx<'_>, id: NextHopId) -> Option<Via> {
        let Some(NextHop::Resolved { port, mac }) = ctx.tables.next_hops().get(id) else {
            return None;
        };
        let out = ctx.tables.port(*port)?;
        let mut addrs = [0u8; 12];
        addrs[..6].copy_from_slice(&mac.0);
        addrs[6..].copy_from_slice(&out.mac.0);
        Some(Via {
            id,
            port: *port,
            mac: *mac,
            addrs,
            mtu: usize::from(out.mtu),
        })
    }
}

/// What the fused pass did with a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fused {
    /// Packets it took to an end; the rest are parked at a stage for the
    /// staged pipeline to finish.
    pub done: usize,
    /// The port every packet of the burst is to be sent on, if they all
    /// are and to the same one: the burst can go to its TX buffer whole.
    pub all_to: Option<PortIndex>,
}

/// Runs the fused common case over a burst. `meta` need not be
/// initialised: every packet's is written, [`Meta::START`] for those left
/// to the stages from Ethernet input, the end for those at one, and for a
/// packet parked later the fields its stage and the later ones read (the
/// others as `START`), so the caller does not fill the whole array
/// first.
#[inline]
pub fn run(ctx: Ctx<'_>, pkts: &mut [Mbuf], meta: &mut [Meta], s: &mut Scratch) -> Fused {
    let none = Fused {
        done: 0,
        all_to: None,
    };
    let Some(port) = ctx.tables.port(ctx.in_port) else {
        meta.fill(Meta::START);
        return none;
    };
    // A group address as our own would make every frame for us an L2
    // multicast (punted): not the common case.
    if port.mac.is_multicast() {
        meta.fill(Meta::START);
        return none;
    }
    let our_mac = port.mac.0;
    // Pass 1: headers checked, padding trimmed, destinations collected;
    // the others left to the stages. The packets that passed get their
    // `meta` in pass 3.
    let mut k = 0;
    for (i, (p, m)) in pkts.iter_mut().zip(meta.iter_mut()).enumerate() {
        let Some(dst) = input(p, &our_mac) else {
            *m = Meta::START;
            continue;
        };
        // A burst is at most MAX_BURST, the arrays' length; were it not,
        // the stages would take the packet (its padding trimmed changes
        // nothing for them).
        match (s.dst.get_mut(k), s.at.get_mut(k)) {
            (Some(d), Some(a)) => {
                *d = dst;
                *a = i as u16;
                k += 1;
            }
            _ => *m = Meta::START,
        }
    }
    // Pass 2: the lookups alone, independent loads the CPU overlaps.
    let (Some(dsts), Some(hops), Some(at)) = (s.dst.get(..k), s.hop.get_mut(..k), s.at.get(..k))
    else {
        meta.fill(Meta::START);
        return none;
    };
    ctx.tables.fib4().lookup_bulk(dsts, hops);
    // Pass 3: next hop, TTL and checksum, MAC rewrite.
    let mut t = Tally {
        via: None,
        done: 0,
        sent: 0,
        any: 0,
        all: u16::MAX,
    };
    if k == pkts.len() {
        // Every packet passed (the common burst): no indexing.
        for ((p, m), &hop) in pkts.iter_mut().zip(meta.iter_mut()).zip(hops.iter()) {
            finish(ctx, p, m, hop, &mut t);
        }
    } else {
        for (&i, &hop) in at.iter().zip(hops.iter()) {
            let i = usize::from(i);
            if let (Some(p), Some(m)) = (pkts.get_mut(i), meta.get_mut(i)) {
                finish(ctx, p, m, hop, &mut t);
            }
        }
    }
    // Every packet sent, and the ports' bits all agree: one port.
    let one_port = t.sent == pkts.len() && t.sent > 0 && t.any == t.all;
    Fused {
        done: t.done,
        all_to: one_port.then_some(PortIndex(t.any)),
    }
}

/// What pass 3 carries from packet to packet.
struct Tally {
    /// The last next hop worked out.
    via: Option<Via>,
    /// Packets at an end.
    done: usize,
    /// Packets to be sent.
    sent: usize,
    /// Their output ports ORed, and ANDed: equal if all are one port
    /// (kept branch-free rather than compared packet by packet).
    any: u16,
    all: u16,
}

/// Pass 3 for one packet that passed the input checks, with its route:
/// to `Output`, or to `no_route`, or parked at the stage that handles
/// what it is (with the `Meta` fields that stage reads).
#[inline(always)]
fn finish(ctx: Ctx<'_>, p: &mut Mbuf, m: &mut Meta, hop: Option<NextHopId>, t: &mut Tally) {
    let Some(id) = hop else {
        m.next = Next::Punt(PuntReason::NoRoute);
        t.done += 1;
        return;
    };
    if t.via.is_none_or(|v| v.id != id) {
        t.via = Via::new(ctx, id);
    }
    // Read in place (a copy per packet costs more than the work).
    let Some(v) = &t.via else {
        // Resolution's exceptions are the stages': the packet as
        // Ethernet and IPv4 input leave it, IPv4 at offset 14 (received
        // as unicast, not v6: as `START`).
        *m = Meta {
            next: Next::Resolve,
            l3: ETH as u16,
            next_hop: id,
            ..Meta::START
        };
        return;
    };
    let forwarded = match p.data_mut().first_chunk_mut::<HEAD>() {
        Some(h) => forward(h, v),
        None => false,
    };
    if forwarded {
        // Only the end is read from here on.
        m.next = Next::Output(v.port);
        t.done += 1;
        t.sent += 1;
        t.any |= v.port.0;
        t.all &= v.port.0;
    } else {
        // TTL and MTU exceptions are IP forward's, with what resolution
        // left.
        *m = Meta {
            next: Next::Forward,
            l3: ETH as u16,
            next_hop: id,
            port: v.port,
            mac: v.mac,
            ..Meta::START
        };
    }
}

/// Ethernet and IPv4 input's common case: the destination address if the
/// frame is an untagged IPv4 datagram without options for `our_mac`,
/// which both stages would send to the lookup, its padding trimmed as
/// IPv4 input does; `None`, and the frame untouched, otherwise.
#[inline(always)]
fn input(p: &mut Mbuf, our_mac: &[u8; 6]) -> Option<u32> {
    let flags = p.ol_flags();
    let d = p.data();
    let len = d.len();
    let h = d.first_chunk::<HEAD>()?;
    if h[..6] != our_mac[..] || h[12..ETH] != ETHERTYPE_IPV4 || h[ETH] != VER_IHL_PLAIN {
        return None;
    }
    // RFC 1812 5.2.2 (5): the total length covers the header and lies
    // within the frame.
    let total = usize::from(u16::from_be_bytes([h[TOTAL_LEN], h[TOTAL_LEN + 1]]));
    // One comparison for both bounds: below IP wraps to a huge value.
    if total.wrapping_sub(IP) > len - HEAD {
        return None;
    }
    // (2): the NIC's verdict if it gave one, else the sum.
    if flags.contains(OlFlags::RX_IP_CKSUM_BAD)
        || (!flags.contains(OlFlags::RX_IP_CKSUM_GOOD) && !header_sums(h))
    {
        return None;
    }
    // Both addresses in one load: they are adjacent (RFC 791 3.1).
    let addrs = h.last_chunk::<8>().map_or(0, |a| u64::from_be_bytes(*a));
    let src = Ipv4Addr::from_bits((addrs >> 32) as u32);
    let dst = Ipv4Addr::from_bits(addrs as u32);
    if !ordinary(src) || !ordinary(dst) {
        return None;
    }
    let padding = len - ETH - total;
    if padding > 0 && p.trim(padding).is_err() {
        return None;
    }
    Some(dst.to_bits())
}

/// First octets of the addresses IPv4 input refuses or leaves to the
/// kernel: 0/8 and 127/8 (martians, RFC 1812 5.3.7), 224/4 (multicast,
/// source or destination) and 255/8 (holding the limited broadcast):
/// bit `o` of the 256-bit map for first octet `o`.
const SPECIAL_FIRST_OCTETS: [u64; 4] = [
    1 << 0,
    1 << (127 - 64),
    0,
    (0xffff << (224 - 192)) | 1 << 63,
];

/// True if `a` is none of what [`SPECIAL_FIRST_OCTETS`] covers: then
/// [`martian_source`](super::ip4_input::martian_source),
/// [`martian_destination`](super::ip4_input::martian_destination),
/// multicast and broadcast are all false for it (a test checks every
/// first octet), in one table look-up instead of their eight tests.
#[inline(always)]
fn ordinary(a: Ipv4Addr) -> bool {
    let o = usize::from(a.octets()[0]);
    SPECIAL_FIRST_OCTETS[o >> 6] >> (o & 63) & 1 == 0
}

/// True if the 20-byte header in `h` verifies (RFC 1071).
#[inline(always)]
fn header_sums(h: &[u8; HEAD]) -> bool {
    match h.last_chunk::<IP>() {
        Some(ip) => checksum::verify_header(ip),
        None => false,
    }
}

/// IP forward's and rewrite's common case: TTL above 1 and the datagram
/// within the MTU, then the TTL decremented, the checksum updated (RFC
/// 1624) to what
/// [`Ipv4Packet::decrement_ttl`](crate::packet::Ipv4Packet::decrement_ttl)
/// writes, and the addresses rewritten. False, and nothing written, for
/// the stages to handle.
#[inline(always)]
fn forward(h: &mut [u8; HEAD], v: &Via) -> bool {
    let ttl = h[TTL];
    let total = usize::from(u16::from_be_bytes([h[TOTAL_LEN], h[TOTAL_LEN + 1]]));
    if ttl <= 1 || total > v.mtu {
        return false;
    }
    let check = u16::from_be_bytes([h[CHECKSUM], h[CHECKSUM + 1]]);
    let check = checksum::ttl_decremented(check);
    h[TTL] = ttl - 1;
    h[CHECKSUM..CHECKSUM + 2].copy_from_slice(&check.to_be_bytes());
    h[..12].copy_from_slice(&v.addrs);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l3::ip4_input;

    /// Every first octet, with tails that make the broadcast, network and
    /// ordinary addresses: an ordinary address passes every check IPv4
    /// input makes of addresses.
    #[test]
    fn ordinary_addresses_pass_every_address_check() {
        let mut ordinary_octets = 0;
        for o in 0..=255u8 {
            for tail in [[0, 0, 0], [255, 255, 255], [1, 2, 3]] {
                let a = Ipv4Addr::new(o, tail[0], tail[1], tail[2]);
                if ordinary(a) {
                    assert!(!ip4_input::martian_source(a), "{a}");
                    assert!(!ip4_input::martian_destination(a), "{a}");
                    assert!(!a.is_multicast() && !a.is_broadcast(), "{a}");
                }
            }
            ordinary_octets += usize::from(ordinary(Ipv4Addr::new(o, 1, 2, 3)));
        }
        // All but 0, 127, 224-239 and 255: none refused for nothing.
        assert_eq!(ordinary_octets, 256 - 19);
    }
}
