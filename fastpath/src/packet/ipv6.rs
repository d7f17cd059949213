//! IPv6 headers (RFC 8200 section 3) and the walk over the extension
//! headers (section 4) to the upper-layer protocol.

use std::net::Ipv6Addr;

use super::error::{Layer, PacketError};
use super::field::{get_array, get_u16, get_u32};
use super::ip_protocol::IpProtocol;

/// The fixed header (RFC 8200 section 3).
pub const HEADER_LEN: usize = 40;
/// Extension headers walked before the packet is refused. RFC 8200 section
/// 4.1 has each kind at most once, destination options twice: hop-by-hop,
/// destination options, routing, fragment, AH, destination options is six,
/// so eight leaves room and still bounds a crafted chain.
pub const MAX_EXTENSION_HEADERS: usize = 8;

// Field offsets (RFC 8200 section 3).
const PAYLOAD_LEN: usize = 4;
const NEXT_HEADER: usize = 6;
const HOP_LIMIT: usize = 7;
const SRC: usize = 8;
const DST: usize = 24;

/// A fragment header's fields (RFC 8200 section 4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Fragment {
    /// Offset of the data, in 8-byte units.
    pub offset: u16,
    /// The M flag: more fragments follow.
    pub more: bool,
    /// The identification.
    pub ident: u32,
}

/// Where the extension-header walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6UpperLayer {
    /// The protocol after the last extension header walked.
    pub protocol: IpProtocol,
    /// Where that protocol's bytes start, from the start of the IPv6
    /// header.
    pub offset: usize,
    /// A hop-by-hop options header came first: every node must look at it
    /// (RFC 8200 section 4.3), so such packets go to the kernel.
    pub hop_by_hop: bool,
    /// The fragment header, if there was one.
    pub fragment: Option<Ipv6Fragment>,
    /// How many extension headers were walked.
    pub extension_headers: usize,
}

impl Ipv6UpperLayer {
    /// True if the upper-layer header is at `offset`: not in a later
    /// fragment, whose bytes continue the datagram where the first fragment
    /// left off.
    pub fn header_present(&self) -> bool {
        self.fragment.is_none_or(|f| f.offset == 0)
    }
}

/// A checked view of an IPv6 packet: the buffer may run past it (Ethernet
/// padding); [`Ipv6Packet::padding_len`] says by how much.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Checks the fixed header is there, version 6, and the payload length
    /// within the buffer. A payload length of 0 is taken as an empty
    /// payload: jumbograms (RFC 2675) are not for Ethernet links.
    pub fn new_checked(buffer: T) -> Result<Self, PacketError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(PacketError::Truncated {
                layer: Layer::Ipv6,
                need: HEADER_LEN,
                have: b.len(),
            });
        }
        let version = b[0] >> 4;
        if version != 6 {
            return Err(PacketError::BadVersion {
                layer: Layer::Ipv6,
                found: version,
            });
        }
        let total = HEADER_LEN + usize::from(get_u16(b, PAYLOAD_LEN));
        if total > b.len() {
            return Err(PacketError::BadTotalLength {
                layer: Layer::Ipv6,
                total,
                header: HEADER_LEN,
                have: b.len(),
            });
        }
        Ok(Ipv6Packet { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The version field: 6.
    pub fn version(&self) -> u8 {
        self.b()[0] >> 4
    }

    /// The traffic class (DSCP and ECN, RFC 2474 / RFC 3168).
    pub fn traffic_class(&self) -> u8 {
        ((get_u16(self.b(), 0) >> 4) & 0xff) as u8
    }

    /// The 20-bit flow label.
    pub fn flow_label(&self) -> u32 {
        get_u32(self.b(), 0) & 0x000f_ffff
    }

    /// The payload length field: bytes after the fixed header, extension
    /// headers included.
    pub fn payload_len(&self) -> usize {
        usize::from(get_u16(self.b(), PAYLOAD_LEN))
    }

    /// The packet length, fixed header included.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }

    /// Bytes in the buffer after the packet (Ethernet padding).
    pub fn padding_len(&self) -> usize {
        self.b().len() - self.total_len()
    }

    /// The next header field of the fixed header.
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol(self.b()[NEXT_HEADER])
    }

    /// The hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.b()[HOP_LIMIT]
    }

    /// The source address.
    pub fn src(&self) -> Ipv6Addr {
        Ipv6Addr::from(get_array::<16>(self.b(), SRC))
    }

    /// The destination address.
    pub fn dst(&self) -> Ipv6Addr {
        Ipv6Addr::from(get_array::<16>(self.b(), DST))
    }

    /// The payload: extension headers and upper layer, without padding.
    pub fn payload(&self) -> &[u8] {
        &self.b()[HEADER_LEN..self.total_len()]
    }

    /// Walks the extension headers (RFC 8200 section 4) to the upper-layer
    /// protocol. Hop-by-hop, routing, destination options and fragment are
    /// walked; AH too, whose length is in 4-byte units (RFC 4302 section
    /// 2.2). Anything else ends the walk, ESP and "no next header"
    /// included. A later fragment ends it at its fragment header. Every
    /// header is checked to lie within the payload, at most
    /// [`MAX_EXTENSION_HEADERS`] are walked, and each moves at least 8
    /// bytes, so the walk is short whatever the bytes.
    pub fn upper_layer(&self) -> Result<Ipv6UpperLayer, PacketError> {
        let payload = self.payload();
        let mut protocol = self.next_header();
        let mut at = 0usize;
        let mut count = 0usize;
        let mut hop_by_hop = false;
        let mut fragment = None;
        loop {
            let units_of_8 = match protocol {
                IpProtocol::HOP_BY_HOP | IpProtocol::IPV6_ROUTING | IpProtocol::IPV6_DEST_OPTS => {
                    true
                }
                IpProtocol::IPV6_FRAGMENT | IpProtocol::AH => false,
                _ => break,
            };
            if protocol == IpProtocol::HOP_BY_HOP {
                if count != 0 {
                    return Err(PacketError::MisplacedHopByHop);
                }
                hop_by_hop = true;
            }
            if count == MAX_EXTENSION_HEADERS {
                return Err(PacketError::ExtensionChainTooLong);
            }
            let truncated = |need: usize| PacketError::Truncated {
                layer: Layer::Ipv6Extension,
                need: HEADER_LEN + need,
                have: HEADER_LEN + payload.len(),
            };
            // Every extension header starts with next header and a length
            // byte (the fragment header's second byte is reserved).
            let start = payload.get(at..at + 2).ok_or(truncated(at + 2))?;
            let len = if protocol == IpProtocol::IPV6_FRAGMENT {
                8
            } else if units_of_8 {
                // 8-byte units, not counting the first 8 (section 4.3).
                (usize::from(start[1]) + 1) * 8
            } else {
                // AH: 4-byte units, minus 2 (RFC 4302 section 2.2).
                (usize::from(start[1]) + 2) * 4
            };
            let header = payload.get(at..at + len).ok_or(truncated(at + len))?;
            let this = protocol;
            protocol = IpProtocol(header[0]);
            at += len;
            count += 1;
            if this == IpProtocol::IPV6_FRAGMENT {
                // Offset (13 bits), two reserved bits, M; then the
                // identification (section 4.5). `header` is 8 bytes here.
                let word = get_u16(header, 2);
                let f = Ipv6Fragment {
                    offset: word >> 3,
                    more: word & 1 != 0,
                    ident: get_u32(header, 4),
                };
                fragment = Some(f);
                if f.offset != 0 {
                    break;
                }
            }
        }
        Ok(Ipv6UpperLayer {
            protocol,
            offset: HEADER_LEN + at,
            hop_by_hop,
            fragment,
            extension_headers: count,
        })
    }

    /// The buffer the view was made over.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets the hop limit (IPv6 has no header checksum).
    pub fn set_hop_limit(&mut self, hop_limit: u8) {
        self.buffer.as_mut()[HOP_LIMIT] = hop_limit;
    }

    /// Decrements the hop limit and returns the new one; `None`, and
    /// nothing written, if it was already 0.
    pub fn decrement_hop_limit(&mut self) -> Option<u8> {
        let h = self.hop_limit().checked_sub(1)?;
        self.set_hop_limit(h);
        Some(h)
    }

    /// Sets the source address.
    pub fn set_src(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[SRC..SRC + 16].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address.
    pub fn set_dst(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[DST..DST + 16].copy_from_slice(&addr.octets());
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.total_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The fixed header: traffic class 0xb8 (DSCP 46), flow label
    /// 0x12345, payload length `payload`, next header `next`, hop limit
    /// 64, 2001:db8::1 -> 2001:db8::2.
    pub(crate) fn fixed_header(next: u8, payload: u16) -> Vec<u8> {
        let mut h = vec![0x6b, 0x81, 0x23, 0x45];
        h.extend_from_slice(&payload.to_be_bytes());
        h.extend_from_slice(&[next, 64]);
        h.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        h.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        h
    }

    /// Hop-by-hop (one PadN option filling it to 8 bytes), then a first
    /// fragment (offset 0, M set, ident 0xdeadbeef), then 12 bytes of UDP.
    pub(crate) fn hbh_fragment_udp() -> Vec<u8> {
        let mut p = fixed_header(0, 8 + 8 + 12);
        p.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]);
        p.extend_from_slice(&[17, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]);
        p.extend_from_slice(&[0x30, 0x39, 0x00, 0x35, 0x00, 0x0c, 0, 0, 1, 2, 3, 4]);
        p
    }

    #[test]
    fn every_accessor_and_the_walk() {
        let mut p = hbh_fragment_udp();
        p.extend_from_slice(&[0; 3]);
        let v = Ipv6Packet::new_checked(&p[..]).unwrap();
        assert_eq!(v.version(), 6);
        assert_eq!(v.traffic_class(), 0xb8);
        assert_eq!(v.flow_label(), 0x12345);
        assert_eq!(v.payload_len(), 28);
        assert_eq!(v.total_len(), 68);
        assert_eq!(v.padding_len(), 3);
        assert_eq!(v.next_header(), IpProtocol::HOP_BY_HOP);
        assert_eq!(v.hop_limit(), 64);
        assert_eq!(v.src(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(v.dst(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(v.payload().len(), 28);
        let u = v.upper_layer().unwrap();
        assert_eq!(
            u,
            Ipv6UpperLayer {
                protocol: IpProtocol::UDP,
                offset: 56,
                hop_by_hop: true,
                fragment: Some(Ipv6Fragment {
                    offset: 0,
                    more: true,
                    ident: 0xdeadbeef
                }),
                extension_headers: 2,
            }
        );
        assert!(u.header_present());
        assert_eq!(&p[u.offset..u.offset + 2], &[0x30, 0x39]);
    }

    #[test]
    fn no_extension_headers() {
        let mut p = fixed_header(58, 8);
        p.extend_from_slice(&[128, 0, 0, 0, 0, 1, 0, 1]);
        let u = Ipv6Packet::new_checked(&p[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(u.protocol, IpProtocol::ICMPV6);
        assert_eq!(u.offset, 40);
        assert!(!u.hop_by_hop);
        assert_eq!(u.fragment, None);
        assert_eq!(u.extension_headers, 0);
    }

    #[test]
    fn routing_dest_opts_and_ah_lengths() {
        // Routing (length 1: 16 bytes) -> destination options (length 0:
        // 8 bytes) -> AH (payload length 4: (4 + 2) * 4 = 24 bytes) -> TCP.
        let mut p = fixed_header(43, 16 + 8 + 24);
        p.extend_from_slice(&[60, 1]);
        p.extend_from_slice(&[0; 14]);
        p.extend_from_slice(&[51, 0, 1, 4, 0, 0, 0, 0]);
        p.extend_from_slice(&[6, 4]);
        p.extend_from_slice(&[0; 22]);
        let u = Ipv6Packet::new_checked(&p[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(u.protocol, IpProtocol::TCP);
        assert_eq!(u.offset, 40 + 48);
        assert_eq!(u.extension_headers, 3);
        assert!(!u.hop_by_hop);
        // One byte less of AH: the walk reports where it ran out.
        let mut short = p.clone();
        short.pop();
        short[4..6].copy_from_slice(&47u16.to_be_bytes());
        assert_eq!(
            Ipv6Packet::new_checked(&short[..]).unwrap().upper_layer(),
            Err(PacketError::Truncated {
                layer: Layer::Ipv6Extension,
                need: 88,
                have: 87
            })
        );
    }

    #[test]
    fn later_fragment_stops_at_fragment_header() {
        // Offset 185 (1480 bytes), M clear: the bytes after it are not UDP.
        let mut p = fixed_header(44, 8 + 4);
        p.extend_from_slice(&[17, 0, 0x05, 0xc8, 0, 0, 0, 7, 9, 9, 9, 9]);
        let u = Ipv6Packet::new_checked(&p[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(u.protocol, IpProtocol::UDP);
        assert_eq!(u.offset, 48);
        assert_eq!(
            u.fragment,
            Some(Ipv6Fragment {
                offset: 185,
                more: false,
                ident: 7
            })
        );
        assert!(!u.header_present());
    }

    #[test]
    fn walk_refusals() {
        // Hop-by-hop after a destination options header.
        let mut p = fixed_header(60, 16);
        p.extend_from_slice(&[0, 0, 1, 4, 0, 0, 0, 0, 59, 0, 1, 4, 0, 0, 0, 0]);
        let v = Ipv6Packet::new_checked(&p[..]).unwrap();
        assert_eq!(v.upper_layer(), Err(PacketError::MisplacedHopByHop));
        // Nine destination options headers, each naming the next.
        let mut p = fixed_header(60, 9 * 8);
        for _ in 0..9 {
            p.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
        }
        let v = Ipv6Packet::new_checked(&p[..]).unwrap();
        assert_eq!(v.upper_layer(), Err(PacketError::ExtensionChainTooLong));
        // A chain of eight ends in "no next header" and is walked.
        let mut p = fixed_header(60, 8 * 8);
        for i in 0..8 {
            p.extend_from_slice(&[if i == 7 { 59 } else { 60 }, 0, 1, 4, 0, 0, 0, 0]);
        }
        let u = Ipv6Packet::new_checked(&p[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(u.protocol, IpProtocol::IPV6_NO_NEXT);
        assert_eq!(u.extension_headers, 8);
        assert_eq!(u.offset, 40 + 64);
        // A next header byte with no length byte after it.
        let mut p = fixed_header(0, 1);
        p.push(17);
        let v = Ipv6Packet::new_checked(&p[..]).unwrap();
        assert_eq!(
            v.upper_layer(),
            Err(PacketError::Truncated {
                layer: Layer::Ipv6Extension,
                need: 42,
                have: 41
            })
        );
    }

    #[test]
    fn header_refusals() {
        let p = hbh_fragment_udp();
        assert_eq!(
            Ipv6Packet::new_checked(&p[..39]).unwrap_err(),
            PacketError::Truncated {
                layer: Layer::Ipv6,
                need: 40,
                have: 39
            }
        );
        let mut v4 = p.clone();
        v4[0] = 0x45;
        assert_eq!(
            Ipv6Packet::new_checked(&v4[..]).unwrap_err(),
            PacketError::BadVersion {
                layer: Layer::Ipv6,
                found: 4
            }
        );
        assert_eq!(
            Ipv6Packet::new_checked(&p[..67]).unwrap_err(),
            PacketError::BadTotalLength {
                layer: Layer::Ipv6,
                total: 68,
                header: 40,
                have: 67
            }
        );
    }

    #[test]
    fn writes() {
        let mut p = hbh_fragment_udp();
        let mut v = Ipv6Packet::new_checked(&mut p[..]).unwrap();
        assert_eq!(v.decrement_hop_limit(), Some(63));
        assert_eq!(v.hop_limit(), 63);
        v.set_hop_limit(0);
        assert_eq!(v.decrement_hop_limit(), None);
        let a: Ipv6Addr = "fe80::abcd".parse().unwrap();
        let b: Ipv6Addr = "ff02::1:ff00:1".parse().unwrap();
        v.set_src(a);
        v.set_dst(b);
        assert_eq!((v.src(), v.dst()), (a, b));
        v.payload_mut()[0] = 6;
        assert_eq!(p[40], 6);
        assert_eq!(p[0..4], [0x6b, 0x81, 0x23, 0x45]);
    }

    /// Extension-header kinds and other numbers, so random chains are made
    /// of headers the walk follows.
    fn next_header_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            Just(0u8),
            Just(43),
            Just(44),
            Just(51),
            Just(60),
            Just(59),
            Just(17),
            any::<u8>()
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn no_panic_on_any_input(
            next in next_header_byte(),
            mut rest in proptest::collection::vec(any::<u8>(), 0..120),
            kinds in proptest::collection::vec(next_header_byte(), 12),
            raw in proptest::collection::vec(any::<u8>(), 0..60),
        ) {
            // Sprinkle extension kinds where next header bytes would be.
            for (i, k) in kinds.iter().enumerate() {
                if let Some(b) = rest.get_mut(i * 8) {
                    *b = *k;
                }
            }
            let mut p = fixed_header(next, rest.len() as u16);
            p.extend_from_slice(&rest);
            let v = Ipv6Packet::new_checked(&p[..]).unwrap();
            if let Ok(u) = v.upper_layer() {
                prop_assert!(u.offset <= v.total_len());
                prop_assert!(u.extension_headers <= MAX_EXTENSION_HEADERS);
            }
            let _ = (v.traffic_class(), v.flow_label(), v.src(), v.dst(), v.padding_len());
            if let Ok(v) = Ipv6Packet::new_checked(&raw[..]) {
                let _ = (v.upper_layer(), v.payload());
            }
        }
    }
}
