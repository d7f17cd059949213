//! FIB lookup: the route for each packet's destination, IPv4 looked up
//! for a chunk of the burst at once (DIR-24-8's bulk lookup), IPv6 one by
//! one.
//!
//! Exits: `Resolve` (with [`Meta::next_hop`] set); punt `no_route` (the
//! kernel sends destination-unreachable).

use super::pipeline::{Ctx, Meta, Next};
use crate::fib::NextHopId;
use crate::reasons::PuntReason;
use drivers::mbuf::Mbuf;

/// Offset of the destination address in the IPv4 header (RFC 791 3.1).
const IPV4_DST: usize = 16;

/// Offset of the destination address in the IPv6 header (RFC 8200 3).
const IPV6_DST: usize = 24;

/// Lookups done at once: the scratch arrays stay small (zeroing a whole
/// burst's worth per burst cost more than the lookups), and a default
/// burst is one chunk.
const CHUNK: usize = 32;

/// Runs the stage over the packets parked at [`Next::Lookup4`] and
/// [`Next::Lookup6`].
pub fn run(ctx: Ctx<'_>, pkts: &mut [Mbuf], meta: &mut [Meta]) {
    for (pkts, meta) in pkts.chunks(CHUNK).zip(meta.chunks_mut(CHUNK)) {
        let mut addrs = [0u32; CHUNK];
        let mut which = [0u8; CHUNK];
        let mut n = 0;
        for (i, (p, m)) in pkts.iter().zip(meta.iter_mut()).enumerate() {
            match m.next {
                Next::Lookup4 => {
                    let at = usize::from(m.l3) + IPV4_DST;
                    // IPv4 input checked the header is in the frame.
                    let dst = p.data().get(at..at + 4).and_then(|b| b.try_into().ok());
                    match (dst, addrs.get_mut(n), which.get_mut(n)) {
                        (Some(b), Some(a), Some(w)) => {
                            *a = u32::from_be_bytes(b);
                            *w = i as u8;
                            n += 1;
                        }
                        _ => m.next = Next::Punt(PuntReason::NoRoute),
                    }
                }
                Next::Lookup6 => {
                    let at = usize::from(m.l3) + IPV6_DST;
                    let dst: Option<[u8; 16]> =
                        p.data().get(at..at + 16).and_then(|b| b.try_into().ok());
                    m.next = match dst.and_then(|d| ctx.tables.fib6().lookup_octets(&d)) {
                        Some(id) => {
                            m.next_hop = id;
                            Next::Resolve
                        }
                        None => Next::Punt(PuntReason::NoRoute),
                    };
                }
                _ => {}
            }
        }
        let mut hops = [None::<NextHopId>; CHUNK];
        ctx.tables.fib4().lookup_bulk(&addrs[..n], &mut hops[..n]);
        for (i, hop) in which[..n].iter().zip(&hops[..n]) {
            if let Some(m) = meta.get_mut(usize::from(*i)) {
                m.next = match hop {
                    Some(id) => {
                        m.next_hop = *id;
                        Next::Resolve
                    }
                    None => Next::Punt(PuntReason::NoRoute),
                };
            }
        }
    }
}
