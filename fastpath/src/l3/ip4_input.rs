//! IPv4 input: the header checks of RFC 1812 section 5.2.2, Ethernet
//! padding trimmed, and what a router must not forward (RFC 1812 5.3.7)
//! or leaves to the kernel.
//!
//! Exits: `Lookup4`; punt `ipv4_options`, `ipv4_multicast`,
//! `l2_broadcast`; drop
//! `ipv4_truncated`, `ipv4_bad_version`, `ipv4_bad_header_len`,
//! `ipv4_bad_total_len`, `ipv4_bad_checksum`, `ipv4_martian_source`,
//! `ipv4_martian_dest`. The TTL is checked when forwarding
//! ([`super::ip_forward`]): a packet for us with TTL 1 is still ours (RFC
//! 1812 5.3.1).

use super::pipeline::{Ctx, Meta, Next};
use crate::packet::{Ipv4Packet, PacketError};
use crate::reasons::{DropReason, PuntReason};
use drivers::mbuf::{Mbuf, OlFlags};
use std::net::Ipv4Addr;

/// Runs the stage over the packets parked at [`Next::Ip4Input`].
pub fn run(_ctx: Ctx<'_>, pkts: &mut [Mbuf], meta: &mut [Meta]) {
    for (p, m) in pkts.iter_mut().zip(meta.iter_mut()) {
        if m.next == Next::Ip4Input {
            m.next = check(p, usize::from(m.l3), m.l2_multicast);
        }
    }
}

fn check(p: &mut Mbuf, l3: usize, l2_multicast: bool) -> Next {
    let flags = p.ol_flags();
    let Some(bytes) = p.data().get(l3..) else {
        return Next::Drop(DropReason::Ipv4Truncated);
    };
    // RFC 1812 5.2.2 (1) length at least 20, (3) version 4, (4) IHL at
    // least 5, (5) total length at least IHL*4 and within the frame.
    let ip = match Ipv4Packet::new_checked(bytes) {
        Ok(ip) => ip,
        Err(e) => return Next::Drop(drop_reason(&e)),
    };
    // (2) the checksum, unless the NIC verified it (RFC 1812 allows any
    // equivalent check); a NIC that found it bad is believed.
    if flags.contains(OlFlags::RX_IP_CKSUM_BAD)
        || (!flags.contains(OlFlags::RX_IP_CKSUM_GOOD) && !ip.checksum_ok())
    {
        return Next::Drop(DropReason::Ipv4BadChecksum);
    }
    let (src, dst) = (ip.src(), ip.dst());
    let padding = ip.padding_len();
    let options = ip.has_options();
    if martian_source(src) {
        return Next::Drop(DropReason::Ipv4MartianSource);
    }
    if martian_destination(dst) {
        return Next::Drop(DropReason::Ipv4MartianDestination);
    }
    // The frame may run past the datagram (Ethernet pads to 60 bytes):
    // what is sent on, or to the kernel, is the datagram.
    if padding > 0 && p.trim(padding).is_err() {
        return Next::Drop(DropReason::Ipv4BadTotalLength);
    }
    if dst.is_multicast() || dst.is_broadcast() {
        return Next::Punt(PuntReason::Ipv4Multicast);
    }
    // RFC 1812 5.3.4: a link-layer broadcast or multicast is never
    // forwarded; the kernel keeps what is addressed to it.
    if l2_multicast {
        return Next::Punt(PuntReason::L2Broadcast);
    }
    if options {
        return Next::Punt(PuntReason::Ipv4Options);
    }
    Next::Lookup4
}

/// RFC 1812 5.3.7: never forward from 0/8, 127/8, multicast or limited
/// broadcast sources.
#[inline(always)]
pub fn martian_source(src: Ipv4Addr) -> bool {
    is_this_net(src) || src.is_loopback() || src.is_multicast() || src.is_broadcast()
}

/// RFC 1812 5.3.7: ... nor to 0/8 or 127/8.
#[inline(always)]
pub fn martian_destination(dst: Ipv4Addr) -> bool {
    is_this_net(dst) || dst.is_loopback()
}

/// 0.0.0.0/8, "this network" (RFC 1122 3.2.1.3 (a)).
fn is_this_net(a: Ipv4Addr) -> bool {
    a.octets()[0] == 0
}

fn drop_reason(e: &PacketError) -> DropReason {
    match e {
        PacketError::BadVersion { .. } => DropReason::Ipv4BadVersion,
        PacketError::BadHeaderLength { .. } => DropReason::Ipv4BadHeaderLength,
        PacketError::BadTotalLength { .. } => DropReason::Ipv4BadTotalLength,
        PacketError::BadChecksum { .. } => DropReason::Ipv4BadChecksum,
        _ => DropReason::Ipv4Truncated,
    }
}
