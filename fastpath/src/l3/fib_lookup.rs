//! FIB lookup: the route for each packet's destination, looked up for the
//! whole burst at once (DIR-24-8's bulk lookup).
//!
//! Exits: `Resolve` (with [`Meta::next_hop`] set); punt `no_route` (the
//! kernel sends destination-unreachable, or forwards by routes we do not
//! hold: every IPv6 packet until the IPv6 FIB is in the tables).

use super::pipeline::{Ctx, Meta, Next};
use crate::fib::NextHopId;
use crate::reasons::PuntReason;
use drivers::burst::MAX_BURST;
use drivers::mbuf::Mbuf;

/// Offset of the destination address in the IPv4 header (RFC 791 3.1).
const IPV4_DST: usize = 16;

/// Runs the stage over the packets parked at [`Next::Lookup4`] and
/// [`Next::Lookup6`].
pub fn run(ctx: Ctx<'_>, pkts: &mut [Mbuf], meta: &mut [Meta]) {
    let mut addrs = [0u32; MAX_BURST];
    let mut which = [0u16; MAX_BURST];
    let mut n = 0;
    for (i, (p, m)) in pkts.iter().zip(meta.iter_mut()).enumerate() {
        match m.next {
            Next::Lookup4 => {
                let at = usize::from(m.l3) + IPV4_DST;
                // IPv4 input checked the header is in the frame.
                match p.data().get(at..at + 4).and_then(|b| b.try_into().ok()) {
                    Some(b) if n < MAX_BURST => {
                        addrs[n] = u32::from_be_bytes(b);
                        which[n] = i as u16;
                        n += 1;
                    }
                    _ => m.next = Next::Punt(PuntReason::NoRoute),
                }
            }
            Next::Lookup6 => m.next = Next::Punt(PuntReason::NoRoute),
            _ => {}
        }
    }
    let mut hops = [None::<NextHopId>; MAX_BURST];
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
