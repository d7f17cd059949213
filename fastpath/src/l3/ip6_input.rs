//! IPv6 input: the checks of RFC 8200 section 3 (version, payload length
//! against the frame), Ethernet padding trimmed, addresses a router must
//! not forward (RFC 4291), and what the kernel handles: multicast (ND,
//! RS/RA, MLD, OSPFv3, VRRP), link-local traffic and hop-by-hop options.
//!
//! Exits: `Lookup6`; punt `ipv6_multicast`, `ipv6_link_local`,
//! `l2_broadcast`, `ipv6_hop_by_hop`; drop `ipv6_truncated`, `ipv6_bad_version`,
//! `ipv6_bad_payload_len`, `ipv6_bad_source`, `ipv6_bad_dest`. The hop
//! limit is checked when forwarding ([`super::ip_forward`]).

use super::pipeline::{Ctx, Meta, Next};
use crate::packet::{IpProtocol, Ipv6Packet, PacketError};
use crate::reasons::{DropReason, PuntReason};
use drivers::mbuf::Mbuf;

/// Runs the stage over the packets parked at [`Next::Ip6Input`].
pub fn run(_ctx: Ctx<'_>, pkts: &mut [Mbuf], meta: &mut [Meta]) {
    for (p, m) in pkts.iter_mut().zip(meta.iter_mut()) {
        if m.next == Next::Ip6Input {
            m.next = check(p, usize::from(m.l3), m.l2_multicast);
        }
    }
}

fn check(p: &mut Mbuf, l3: usize, l2_multicast: bool) -> Next {
    let Some(bytes) = p.data().get(l3..) else {
        return Next::Drop(DropReason::Ipv6Truncated);
    };
    let ip = match Ipv6Packet::new_checked(bytes) {
        Ok(ip) => ip,
        Err(PacketError::BadVersion { .. }) => return Next::Drop(DropReason::Ipv6BadVersion),
        Err(PacketError::BadTotalLength { .. }) => {
            return Next::Drop(DropReason::Ipv6BadPayloadLength)
        }
        Err(_) => return Next::Drop(DropReason::Ipv6Truncated),
    };
    let (src, dst) = (ip.src(), ip.dst());
    let padding = ip.padding_len();
    let hop_by_hop = ip.next_header() == IpProtocol::HOP_BY_HOP;
    // RFC 4291 2.7: a multicast address is never a source; 2.5.3: the
    // loopback address is never sent out of a node.
    if src.is_multicast() || src.is_loopback() {
        return Next::Drop(DropReason::Ipv6BadSource);
    }
    // 2.5.2: the unspecified address is never a destination.
    if dst.is_unspecified() || dst.is_loopback() {
        return Next::Drop(DropReason::Ipv6BadDestination);
    }
    if padding > 0 && p.trim(padding).is_err() {
        return Next::Drop(DropReason::Ipv6BadPayloadLength);
    }
    if dst.is_multicast() {
        return Next::Punt(PuntReason::Ipv6Multicast);
    }
    // 2.5.6: link-local traffic never leaves its link; the kernel answers
    // what is for it (ND to our link-local address) and sends the ICMP
    // errors for the rest.
    if dst.is_unicast_link_local() || src.is_unicast_link_local() {
        return Next::Punt(PuntReason::Ipv6LinkLocal);
    }
    // As for IPv4 (RFC 1812 5.3.4): link-layer multicast is not
    // forwarded; the kernel keeps what is for it.
    if l2_multicast {
        return Next::Punt(PuntReason::L2Broadcast);
    }
    // RFC 8200 4.3: every node on the path may have to look at these.
    if hop_by_hop {
        return Next::Punt(PuntReason::Ipv6HopByHop);
    }
    Next::Lookup6
}
