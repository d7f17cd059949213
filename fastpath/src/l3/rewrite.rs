//! MAC rewrite: the frame addressed to the next hop, from the output port.
//!
//! Exits: `Output(port)`; drop `bad_next_hop` (an output port the tables
//! do not hold), `runt` (no Ethernet header: a stage-order bug).

use super::pipeline::{Ctx, Meta, Next};
use crate::reasons::DropReason;
use drivers::mbuf::Mbuf;

/// Destination and source addresses: the first 12 bytes (IEEE 802.3 3.1).
const ADDRS: usize = 12;

/// Runs the stage over the packets parked at [`Next::Rewrite`].
pub fn run(ctx: Ctx<'_>, pkts: &mut [Mbuf], meta: &mut [Meta]) {
    for (p, m) in pkts.iter_mut().zip(meta.iter_mut()) {
        if m.next != Next::Rewrite {
            continue;
        }
        let Some(out) = ctx.tables.port(m.port) else {
            m.next = Next::Drop(DropReason::BadNextHop);
            continue;
        };
        let Some(head) = p.data_mut().get_mut(..ADDRS) else {
            m.next = Next::Drop(DropReason::Runt);
            continue;
        };
        head[..6].copy_from_slice(&m.mac.0);
        head[6..].copy_from_slice(&out.mac.0);
        m.next = Next::Output(m.port);
    }
}
