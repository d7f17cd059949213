//! Packet views: zero-copy, checked views over frame bytes, in the style of
//! smoltcp's wire module. Each constructor (`new_checked`) checks every
//! length its accessors rely on, so accessors cannot panic on any bytes;
//! failures are a [`PacketError`] naming the fault and the layer, which the
//! router's drop reasons map from.
//!
//! [`parse`] takes a frame through Ethernet and its VLAN tags to the layer
//! 3 kind and the offsets the pipeline stages build their views at.

pub mod arp;
pub mod checksum;
pub mod error;
pub mod ethernet;
mod field;
pub mod icmp;
pub mod ip_protocol;
pub mod ipv4;
pub mod ipv6;
pub mod l4;

pub use arp::{ArpOp, ArpPacket};
pub use error::{Layer, PacketError};
pub use ethernet::{EtherType, EthernetFrame, VlanTag};
pub use icmp::{IcmpPacket, Icmpv4Kind, Icmpv4Packet, Icmpv6Kind, Icmpv6Packet};
pub use ip_protocol::IpProtocol;
pub use ipv4::Ipv4Packet;
pub use ipv6::{Ipv6Fragment, Ipv6Packet, Ipv6UpperLayer};
pub use l4::{TcpFlags, TcpHeader, UdpHeader};

/// Whether [`parse`] verifies the IPv4 header checksum: skipped when the
/// NIC already did (RFC 1812 section 5.2.2 allows any equivalent check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumCheck {
    /// Compute and compare.
    Verify,
    /// The receive offload verified it.
    Skip,
}

/// What [`parse`] found after the link layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L3 {
    /// A checked IPv4 header.
    Ipv4 {
        /// Header length in bytes.
        header_len: usize,
        /// Datagram length in bytes; the frame may hold padding after it.
        total_len: usize,
        /// The payload protocol.
        protocol: IpProtocol,
        /// The header carries options (those go to the kernel).
        has_options: bool,
        /// The datagram is a fragment, first or later.
        is_fragment: bool,
        /// Where the transport header starts, from the start of the frame;
        /// `None` in a later fragment, which has none.
        l4_offset: Option<usize>,
    },
    /// A checked IPv6 header and its walked extension headers.
    Ipv6 {
        /// Packet length in bytes, fixed header included.
        total_len: usize,
        /// Where the walk ended (offsets from the IPv6 header).
        upper: Ipv6UpperLayer,
        /// Where the upper-layer header starts, from the start of the
        /// frame; `None` in a later fragment.
        l4_offset: Option<usize>,
    },
    /// A checked IPv4-over-Ethernet ARP packet.
    Arp {
        /// Its operation.
        op: ArpOp,
    },
    /// Any other EtherType: not looked into.
    Other,
}

/// A frame taken apart as far as layer 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedFrame {
    /// The EtherType after the VLAN tags.
    pub ethertype: EtherType,
    /// The innermost VLAN id, if tagged.
    pub vid: Option<u16>,
    /// How many VLAN tags were walked.
    pub vlan_tags: usize,
    /// Where the layer-3 header starts.
    pub l3_offset: usize,
    /// What is there.
    pub l3: L3,
}

/// Takes `frame` through Ethernet, its VLAN tags and the layer-3 header:
/// IPv4 (version, header length, total length against the frame, the
/// checksum unless `checksum` is [`ChecksumCheck::Skip`]), IPv6 (version,
/// payload length, the extension-header walk) or ARP (IPv4 over Ethernet).
/// Transport headers are located, not checked.
pub fn parse(frame: &[u8], checksum: ChecksumCheck) -> Result<ParsedFrame, PacketError> {
    let eth = EthernetFrame::new_checked(frame)?;
    let l3_offset = eth.l3_offset();
    let payload = eth.payload();
    let l3 = match eth.ethertype() {
        EtherType::IPV4 => {
            let ip = Ipv4Packet::new_checked(payload)?;
            if checksum == ChecksumCheck::Verify {
                ip.check_checksum()?;
            }
            L3::Ipv4 {
                header_len: ip.header_len(),
                total_len: ip.total_len(),
                protocol: ip.protocol(),
                has_options: ip.has_options(),
                is_fragment: ip.is_fragment(),
                l4_offset: (ip.frag_offset() == 0).then(|| l3_offset + ip.header_len()),
            }
        }
        EtherType::IPV6 => {
            let ip = Ipv6Packet::new_checked(payload)?;
            let upper = ip.upper_layer()?;
            L3::Ipv6 {
                total_len: ip.total_len(),
                upper,
                l4_offset: upper.header_present().then(|| l3_offset + upper.offset),
            }
        }
        EtherType::ARP => L3::Arp {
            op: ArpPacket::new_checked(payload)?.op(),
        },
        _ => L3::Other,
    };
    Ok(ParsedFrame {
        ethertype: eth.ethertype(),
        vid: eth.vid(),
        vlan_tags: eth.tags().len(),
        l3_offset,
        l3,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use drivers::net::MacAddr;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    const DST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    const SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

    fn ethernet(tags: &[(u16, u16)], ethertype: EtherType, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&DST);
        f.extend_from_slice(&SRC);
        for (tpid, tci) in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.0.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// An IPv4 ICMP echo request 10.0.0.1 -> 10.0.0.2, TTL 64, ident 1:
    /// header words with the checksum zeroed 4500 + 0020 + 0001 + 0000 +
    /// 4001 + 0a00 + 0001 + 0a00 + 0002 = 0x9925, checksum 0x66da; then the
    /// 12-byte echo request of `icmp::tests`.
    fn icmp_echo_frame() -> Vec<u8> {
        let mut ip = vec![
            0x45, 0x00, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0x40, 0x01, 0x66, 0xda, 10, 0, 0, 1,
            10, 0, 0, 2,
        ];
        ip.extend_from_slice(&icmp::tests::ECHO_REQUEST);
        ethernet(&[], EtherType::IPV4, &ip)
    }

    /// A TCP SYN over IPv6, no extension headers.
    fn tcp_syn_v6_frame() -> Vec<u8> {
        let mut ip = ipv6::tests::fixed_header(6, l4::tests::TCP_SYN.len() as u16);
        ip.extend_from_slice(&l4::tests::TCP_SYN);
        ethernet(&[], EtherType::IPV6, &ip)
    }

    /// The hop-by-hop + fragment + UDP packet in one 802.1Q tag, VID 7.
    fn hbh_frag_vlan_frame() -> Vec<u8> {
        ethernet(
            &[(0x8100, 7)],
            EtherType::IPV6,
            &ipv6::tests::hbh_fragment_udp(),
        )
    }

    /// The ARP request of `arp::tests` in QinQ: S-VID 100, C-VID 200.
    fn qinq_arp_frame() -> Vec<u8> {
        ethernet(
            &[(0x88a8, 100), (0x8100, 200)],
            EtherType::ARP,
            &arp::tests::REQUEST[..28],
        )
    }

    #[test]
    fn icmp_echo_request_every_layer() {
        let mut f = icmp_echo_frame();
        f.resize(60, 0); // minimum frame: 14 bytes of padding
        let p = parse(&f, ChecksumCheck::Verify).unwrap();
        assert_eq!(p.ethertype, EtherType::IPV4);
        assert_eq!((p.vid, p.vlan_tags, p.l3_offset), (None, 0, 14));
        assert_eq!(
            p.l3,
            L3::Ipv4 {
                header_len: 20,
                total_len: 32,
                protocol: IpProtocol::ICMP,
                has_options: false,
                is_fragment: false,
                l4_offset: Some(34),
            }
        );
        let ip = Ipv4Packet::new_checked(&f[p.l3_offset..]).unwrap();
        assert_eq!(ip.padding_len(), 14);
        assert_eq!(ip.src(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(ip.dst(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(ip.checksum(), 0x66da);
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(icmp.kind(), Icmpv4Kind::EchoRequest);
        assert!(icmp.checksum_ok());
        let eth = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(eth.dst(), MacAddr(DST));
        assert_eq!(eth.src(), MacAddr(SRC));
    }

    #[test]
    fn tcp_syn_over_ipv6() {
        let f = tcp_syn_v6_frame();
        let p = parse(&f, ChecksumCheck::Verify).unwrap();
        let L3::Ipv6 {
            total_len,
            upper,
            l4_offset,
        } = p.l3
        else {
            panic!("not IPv6: {:?}", p.l3);
        };
        assert_eq!(total_len, 64);
        assert_eq!(upper.protocol, IpProtocol::TCP);
        assert_eq!(l4_offset, Some(54));
        let tcp = TcpHeader::new_checked(&f[54..]).unwrap();
        assert_eq!((tcp.src_port(), tcp.dst_port()), (49152, 443));
        assert_eq!(tcp.flags(), TcpFlags::SYN);
    }

    #[test]
    fn hop_by_hop_fragment_chain_in_a_vlan() {
        let f = hbh_frag_vlan_frame();
        let p = parse(&f, ChecksumCheck::Verify).unwrap();
        assert_eq!((p.vid, p.vlan_tags, p.l3_offset), (Some(7), 1, 18));
        let L3::Ipv6 {
            upper, l4_offset, ..
        } = p.l3
        else {
            panic!("not IPv6: {:?}", p.l3);
        };
        assert!(upper.hop_by_hop);
        assert_eq!(upper.extension_headers, 2);
        assert_eq!(l4_offset, Some(18 + 56));
        let udp = UdpHeader::new_checked(&f[18 + 56..]).unwrap();
        assert_eq!((udp.src_port(), udp.dst_port()), (12345, 53));
    }

    #[test]
    fn arp_request_in_qinq() {
        let f = qinq_arp_frame();
        let p = parse(&f, ChecksumCheck::Verify).unwrap();
        assert_eq!(p.ethertype, EtherType::ARP);
        assert_eq!((p.vid, p.vlan_tags, p.l3_offset), (Some(200), 2, 22));
        assert_eq!(p.l3, L3::Arp { op: ArpOp::REQUEST });
    }

    #[test]
    fn other_ethertype_and_later_fragment() {
        // LLDP is not looked into.
        let f = ethernet(&[], EtherType(0x88cc), &[1, 2, 3]);
        let p = parse(&f, ChecksumCheck::Verify).unwrap();
        assert_eq!(p.l3, L3::Other);
        // An IPv4 later fragment (offset 1) has no transport header.
        let mut f = icmp_echo_frame();
        f[14 + 7] = 1;
        let p = parse(&f, ChecksumCheck::Skip).unwrap();
        assert!(matches!(
            p.l3,
            L3::Ipv4 {
                is_fragment: true,
                l4_offset: None,
                ..
            }
        ));
    }

    #[test]
    fn errors_name_the_fault() {
        let f = icmp_echo_frame();
        assert!(matches!(
            parse(&f[..10], ChecksumCheck::Verify),
            Err(PacketError::Truncated {
                layer: Layer::Ethernet,
                ..
            })
        ));
        assert!(matches!(
            parse(&f[..30], ChecksumCheck::Verify),
            Err(PacketError::Truncated {
                layer: Layer::Ipv4,
                ..
            })
        ));
        assert!(matches!(
            parse(&f[..40], ChecksumCheck::Verify),
            Err(PacketError::BadTotalLength {
                layer: Layer::Ipv4,
                ..
            })
        ));
        let mut bad = f.clone();
        bad[14 + 8] = 1; // TTL changed, checksum not
        assert_eq!(
            parse(&bad, ChecksumCheck::Verify),
            Err(PacketError::BadChecksum { layer: Layer::Ipv4 })
        );
        assert!(parse(&bad, ChecksumCheck::Skip).is_ok());
        let mut v5 = f.clone();
        v5[14] = 0x55;
        assert_eq!(
            parse(&v5, ChecksumCheck::Verify),
            Err(PacketError::BadVersion {
                layer: Layer::Ipv4,
                found: 5
            })
        );
        let mut ihl = f.clone();
        ihl[14] = 0x43;
        assert!(matches!(
            parse(&ihl, ChecksumCheck::Verify),
            Err(PacketError::BadHeaderLength { len: 12, .. })
        ));
        let mut arp = qinq_arp_frame();
        arp[22 + 1] = 6;
        assert!(matches!(
            parse(&arp, ChecksumCheck::Verify),
            Err(PacketError::UnsupportedArp { hardware: 6, .. })
        ));
        let v6 = hbh_frag_vlan_frame();
        assert!(matches!(
            parse(&v6[..60], ChecksumCheck::Verify),
            Err(PacketError::BadTotalLength {
                layer: Layer::Ipv6,
                ..
            })
        ));
    }

    fn valid_frames() -> Vec<Vec<u8>> {
        vec![
            icmp_echo_frame(),
            tcp_syn_v6_frame(),
            hbh_frag_vlan_frame(),
            qinq_arp_frame(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn no_panic_on_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..128), verify in any::<bool>()) {
            let check = if verify { ChecksumCheck::Verify } else { ChecksumCheck::Skip };
            if let Ok(p) = parse(&data, check) {
                prop_assert!(p.l3_offset <= data.len());
            }
        }

        #[test]
        fn every_strict_prefix_of_a_valid_frame_is_refused(which in 0usize..4, cut in any::<prop::sample::Index>()) {
            let f = &valid_frames()[which];
            prop_assert!(parse(f, ChecksumCheck::Verify).is_ok());
            let len = cut.index(f.len());
            prop_assert!(parse(&f[..len], ChecksumCheck::Verify).is_err());
        }

        #[test]
        fn no_panic_on_bit_flips(
            which in 0usize..4,
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut f = valid_frames()[which].clone();
            for (at, bit) in flips {
                let i = at.index(f.len());
                f[i] ^= 1 << bit;
            }
            let len = f.len() - cut.index(f.len() / 4 + 1).min(f.len());
            if let Ok(p) = parse(&f[..len], ChecksumCheck::Verify) {
                prop_assert!(p.l3_offset <= len);
                match p.l3 {
                    L3::Ipv4 { total_len, l4_offset, .. } => {
                        prop_assert!(p.l3_offset + total_len <= len);
                        prop_assert!(l4_offset.is_none_or(|o| o <= p.l3_offset + total_len));
                    }
                    L3::Ipv6 { total_len, l4_offset, .. } => {
                        prop_assert!(p.l3_offset + total_len <= len);
                        prop_assert!(l4_offset.is_none_or(|o| o <= p.l3_offset + total_len));
                    }
                    L3::Arp { .. } | L3::Other => {}
                }
            }
        }
    }
}
