//! Ethernet input: accept frames for our MAC, broadcast and multicast;
//! send IPv4 and IPv6 on, ARP and everything else the kernel's.
//!
//! Exits: `Ip4Input`, `Ip6Input`; punt `arp`, `vlan_tagged`,
//! `other_ethertype`; drop `bad_ethernet`, `other_host`, `unknown_port`.

use super::pipeline::{Ctx, Meta, Next};
use crate::packet::{EtherType, EthernetFrame};
use crate::reasons::{DropReason, PuntReason};
use drivers::mbuf::Mbuf;

/// Runs the stage over the packets parked at [`Next::EthInput`].
pub fn run(ctx: Ctx<'_>, pkts: &mut [Mbuf], meta: &mut [Meta]) {
    let Some(port) = ctx.tables.port(ctx.in_port) else {
        for m in meta.iter_mut().filter(|m| m.next == Next::EthInput) {
            m.next = Next::Drop(DropReason::UnknownPort);
        }
        return;
    };
    let our_mac = port.mac;
    for (p, m) in pkts.iter().zip(meta.iter_mut()) {
        if m.next != Next::EthInput {
            continue;
        }
        let Ok(eth) = EthernetFrame::new_checked(p.data()) else {
            m.next = Next::Drop(DropReason::BadEthernet);
            continue;
        };
        // Unicast for another station (a promiscuous port, a flooding
        // switch): not ours to route. Broadcast and multicast go on; the
        // IP stages send them to the kernel.
        let dst = eth.dst();
        if dst != our_mac && dst.is_unicast() {
            m.next = Next::Drop(DropReason::OtherHost);
            continue;
        }
        m.l2_multicast = dst.is_multicast();
        if !eth.tags().is_empty() {
            m.next = Next::Punt(PuntReason::VlanTagged);
            continue;
        }
        m.l3 = eth.l3_offset() as u16;
        m.next = match eth.ethertype() {
            EtherType::IPV4 => Next::Ip4Input,
            EtherType::IPV6 => {
                m.v6 = true;
                Next::Ip6Input
            }
            EtherType::ARP => Next::Punt(PuntReason::Arp),
            _ => Next::Punt(PuntReason::OtherEthertype),
        };
    }
}
