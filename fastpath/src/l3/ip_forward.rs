//! IP forward: the TTL (IPv4, RFC 1812 5.3.1) or hop limit (IPv6, RFC 8200
//! section 3) decremented, the IPv4 checksum updated incrementally (RFC
//! 1624), and packets too large for the output port left to the kernel.
//!
//! Exits: `Rewrite`; punt `ttl_exceeded`, `hop_limit_exceeded` (the
//! kernel sends time-exceeded), `too_big` (it fragments, or sends
//! frag-needed / packet-too-big: RFC 1191, RFC 8201); drop `bad_next_hop`
//! (an output port the tables do not hold).

use super::pipeline::{Ctx, Meta, Next};
use crate::packet::{Ipv4Packet, Ipv6Packet};
use crate::reasons::{DropReason, PuntReason};
use drivers::mbuf::Mbuf;

/// Runs the stage over the packets parked at [`Next::Forward`].
pub fn run(ctx: Ctx<'_>, pkts: &mut [Mbuf], meta: &mut [Meta]) {
    for (p, m) in pkts.iter_mut().zip(meta.iter_mut()) {
        if m.next != Next::Forward {
            continue;
        }
        let Some(out) = ctx.tables.port(m.port) else {
            m.next = Next::Drop(DropReason::BadNextHop);
            continue;
        };
        let mtu = usize::from(out.mtu);
        let Some(bytes) = p.data_mut().get_mut(usize::from(m.l3)..) else {
            m.next = Next::Drop(DropReason::Stalled);
            continue;
        };
        m.next = if m.v6 {
            forward6(bytes, mtu)
        } else {
            forward4(bytes, mtu)
        };
    }
}

fn forward4(bytes: &mut [u8], mtu: usize) -> Next {
    // IPv4 input checked this header; a failure here is a stage-order bug.
    let Ok(mut ip) = Ipv4Packet::new_checked(bytes) else {
        return Next::Drop(DropReason::Stalled);
    };
    // RFC 1812 5.3.1: a packet whose TTL would reach 0 is not forwarded;
    // the kernel sends the time-exceeded.
    if ip.ttl() <= 1 {
        return Next::Punt(PuntReason::TtlExceeded);
    }
    if ip.total_len() > mtu {
        return Next::Punt(PuntReason::TooBig);
    }
    ip.decrement_ttl();
    Next::Rewrite
}

fn forward6(bytes: &mut [u8], mtu: usize) -> Next {
    let Ok(mut ip) = Ipv6Packet::new_checked(bytes) else {
        return Next::Drop(DropReason::Stalled);
    };
    // RFC 8200 3 / RFC 4443 3.3: hop limit exhausted in transit.
    if ip.hop_limit() <= 1 {
        return Next::Punt(PuntReason::HopLimitExceeded);
    }
    // RFC 8200 5: routers never fragment; the kernel sends packet-too-big.
    if ip.total_len() > mtu {
        return Next::Punt(PuntReason::TooBig);
    }
    ip.decrement_hop_limit();
    Next::Rewrite
}
