//! The common case of every stage, fused: IPv4 unicast to our MAC,
//! untagged, no options, checksum good, sane addresses, route found and
//! resolved to one next hop, TTL above 1, within the output MTU. Such a
//! packet is taken to `Output` here in two tight passes over the burst
//! (VPP's and DPDK l3fwd's structure): one reading the headers and
//! collecting destinations, one looking them up, resolving and rewriting.
//!
//! The staged pipeline stays the reference. This pass only ever moves a
//! packet to where the stages would have moved it, with the same
//! [`Meta`] and the same bytes: it takes a packet as far as its common
//! case goes and leaves it parked at the stage that handles the
//! exception (`EthInput` for a header it does not recognise, `Resolve`
//! for a group or unresolved next hop, `Forward` for a TTL or MTU case),
//! and the stages, run after it, finish those. The stage checks it needs
//! are the stages' own functions ([`ip4_input::martian_source`], ...);
//! a proptest (`fast_path_tests`) checks the two give the same ends,
//! bytes and counters on random and mutated frames.

use super::ip4_input;
use super::next_hop::NextHop;
use super::pipeline::{Ctx, Meta, Next};
use crate::packet::checksum;
use crate::reasons::PuntReason;
use arrayvec::ArrayVec;
use drivers::burst::MAX_BURST;
use drivers::mbuf::{Mbuf, OlFlags};
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
const SRC: usize = ETH + 12;
const DST: usize = ETH + 16;

/// Runs the fused common case over a burst whose `meta` is all
/// [`Meta::START`]. Returns how many packets it took to an end; the rest
/// are parked at a stage for the staged pipeline to finish.
#[inline]
pub fn run(ctx: Ctx<'_>, pkts: &mut [Mbuf], meta: &mut [Meta]) -> usize {
    let Some(port) = ctx.tables.port(ctx.in_port) else {
        return 0;
    };
    // A group address as our own would make every frame for us an L2
    // multicast (punted): not the common case.
    if port.mac.is_multicast() {
        return 0;
    }
    let our_mac = port.mac.0;
    // Pass 1: headers checked, padding trimmed, destinations collected.
    let mut dsts = ArrayVec::<(u32, u16), MAX_BURST>::new();
    for (i, (p, m)) in pkts.iter_mut().zip(meta.iter_mut()).enumerate() {
        if let Some(dst) = input(p, &our_mac) {
            // As Ethernet and IPv4 input leave it: IPv4 at offset 14,
            // received as unicast, waiting for the lookup.
            m.l3 = ETH as u16;
            m.next = Next::Lookup4;
            // `dsts` holds MAX_BURST and a burst no more.
            let _ = dsts.try_push((dst, i as u16));
        }
    }
    // Pass 2: the lookups (independent loads the CPU overlaps), next
    // hop, TTL, checksum, MAC rewrite.
    let (fib, hops) = (ctx.tables.fib4(), ctx.tables.next_hops());
    let mut done = 0;
    for &(dst, i) in &dsts {
        let (Some(p), Some(m)) = (pkts.get_mut(usize::from(i)), meta.get_mut(usize::from(i)))
        else {
            continue;
        };
        let Some(id) = fib.lookup_u32(dst) else {
            m.next = Next::Punt(PuntReason::NoRoute);
            done += 1;
            continue;
        };
        m.next_hop = id;
        m.next = Next::Resolve;
        let Some(NextHop::Resolved { port, mac }) = hops.get(id) else {
            continue;
        };
        m.port = *port;
        m.mac = *mac;
        m.next = Next::Forward;
        let Some(out) = ctx.tables.port(*port) else {
            continue;
        };
        let Some(h) = p.data_mut().first_chunk_mut::<HEAD>() else {
            continue;
        };
        if !forward(h, usize::from(out.mtu)) {
            continue;
        }
        // MAC rewrite (the rewrite stage's work).
        h[..6].copy_from_slice(&mac.0);
        h[6..12].copy_from_slice(&out.mac.0);
        m.next = Next::Output(*port);
        done += 1;
    }
    done
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
    if total < IP || total > len - ETH {
        return None;
    }
    // (2): the NIC's verdict if it gave one, else the sum.
    if flags.contains(OlFlags::RX_IP_CKSUM_BAD)
        || (!flags.contains(OlFlags::RX_IP_CKSUM_GOOD) && !header_sums(h))
    {
        return None;
    }
    let src = Ipv4Addr::from([h[SRC], h[SRC + 1], h[SRC + 2], h[SRC + 3]]);
    let dst = Ipv4Addr::from([h[DST], h[DST + 1], h[DST + 2], h[DST + 3]]);
    if ip4_input::martian_source(src)
        || ip4_input::martian_destination(dst)
        || dst.is_multicast()
        || dst.is_broadcast()
    {
        return None;
    }
    let padding = len - ETH - total;
    if padding > 0 && p.trim(padding).is_err() {
        return None;
    }
    Some(dst.to_bits())
}

/// True if the 20-byte header in `h` verifies (RFC 1071).
#[inline(always)]
fn header_sums(h: &[u8; HEAD]) -> bool {
    match h.last_chunk::<IP>() {
        Some(ip) => checksum::verify_header(ip),
        None => false,
    }
}

/// IP forward's common case: TTL above 1 and the datagram within `mtu`,
/// then the TTL decremented and the checksum updated (RFC 1624) as
/// [`Ipv4Packet::decrement_ttl`](crate::packet::Ipv4Packet::decrement_ttl)
/// does. False, and nothing written, for the stage to handle.
#[inline(always)]
fn forward(h: &mut [u8; HEAD], mtu: usize) -> bool {
    let ttl = h[TTL];
    let total = usize::from(u16::from_be_bytes([h[TOTAL_LEN], h[TOTAL_LEN + 1]]));
    if ttl <= 1 || total > mtu {
        return false;
    }
    // TTL and protocol share one 16-bit word (RFC 791 3.1).
    let old = u16::from_be_bytes([ttl, h[TTL + 1]]);
    let new = old.wrapping_sub(0x100);
    let check = u16::from_be_bytes([h[CHECKSUM], h[CHECKSUM + 1]]);
    let check = checksum::update16(check, old, new);
    h[TTL] = ttl - 1;
    h[CHECKSUM..CHECKSUM + 2].copy_from_slice(&check.to_be_bytes());
    true
}
