//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443, RFC 4861 for neighbour
//! discovery) messages: type, code and checksum, enough to tell echo, errors
//! and neighbour discovery apart.

use std::marker::PhantomData;
use std::net::Ipv6Addr;

use super::checksum;
use super::error::{Layer, PacketError};
use super::field::{get_u16, set_u16};
use super::ip_protocol::IpProtocol;

/// Type, code, checksum and the 4-byte field every ICMPv4 and ICMPv6
/// message has after them (identifier and sequence, unused, MTU, pointer):
/// no defined message is shorter.
pub const HEADER_LEN: usize = 8;

/// What an ICMPv4 message is, as the router sorts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv4Kind {
    /// Type 8.
    EchoRequest,
    /// Type 0.
    EchoReply,
    /// An error about another datagram (RFC 1122 section 3.2.2): types 3
    /// (destination unreachable), 4 (source quench), 5 (redirect), 11
    /// (time exceeded) and 12 (parameter problem).
    Error(u8),
    /// Any other type.
    Other(u8),
}

/// What an ICMPv6 message is, as the router sorts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv6Kind {
    /// Type 128.
    EchoRequest,
    /// Type 129.
    EchoReply,
    /// Types 0 to 127 are errors (RFC 4443 section 2.1).
    Error(u8),
    /// Router solicitation, type 133 (RFC 4861 section 4.1).
    RouterSolicitation,
    /// Router advertisement, type 134.
    RouterAdvertisement,
    /// Neighbour solicitation, type 135.
    NeighborSolicitation,
    /// Neighbour advertisement, type 136.
    NeighborAdvertisement,
    /// Redirect, type 137.
    Redirect,
    /// Multicast listener query, report, done (130 to 132, RFC 2710) and
    /// MLDv2 report (143, RFC 9777): multicast control for the kernel.
    MulticastListener(u8),
    /// Any other informational type.
    Other(u8),
}

/// Which ICMP a view is for: the two share their layout up to the
/// checksum's coverage and the type numbers.
pub trait IcmpVersion: sealed::Sealed {
    /// The layer errors name.
    const LAYER: Layer;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::V4 {}
    impl Sealed for super::V6 {}
}

/// ICMP for IPv4 (RFC 792).
#[derive(Debug, Clone, Copy)]
pub struct V4;
/// ICMP for IPv6 (RFC 4443).
#[derive(Debug, Clone, Copy)]
pub struct V6;

impl IcmpVersion for V4 {
    const LAYER: Layer = Layer::Icmpv4;
}
impl IcmpVersion for V6 {
    const LAYER: Layer = Layer::Icmpv6;
}

/// A checked view of an ICMP message of version `V`.
#[derive(Debug, Clone)]
pub struct IcmpPacket<T, V> {
    buffer: T,
    version: PhantomData<V>,
}

/// A checked view of an ICMPv4 message (the IPv4 payload, padding
/// trimmed).
pub type Icmpv4Packet<T> = IcmpPacket<T, V4>;
/// A checked view of an ICMPv6 message (the upper-layer bytes of an IPv6
/// packet).
pub type Icmpv6Packet<T> = IcmpPacket<T, V6>;

impl<T: AsRef<[u8]>, V: IcmpVersion> IcmpPacket<T, V> {
    /// Checks the 8-byte header is there. The message is the whole buffer,
    /// which is what the checksum covers: give it the IP payload without
    /// the frame's padding.
    pub fn new_checked(buffer: T) -> Result<Self, PacketError> {
        let have = buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(PacketError::Truncated {
                layer: V::LAYER,
                need: HEADER_LEN,
                have,
            });
        }
        Ok(IcmpPacket {
            buffer,
            version: PhantomData,
        })
    }

    /// The type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    /// The code.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[1]
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 2)
    }

    /// Echo identifier (meaningful for echo messages).
    pub fn echo_ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 4)
    }

    /// Echo sequence number (meaningful for echo messages).
    pub fn echo_seq(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 6)
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn verified(&self, pseudo: u16) -> Result<(), PacketError> {
        if checksum::verify_with(pseudo, self.buffer.as_ref()) {
            Ok(())
        } else {
            Err(PacketError::BadChecksum { layer: V::LAYER })
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>, V: IcmpVersion> IcmpPacket<T, V> {
    fn fill(&mut self, pseudo: u16) {
        let b = self.buffer.as_mut();
        set_u16(b, 2, 0);
        let c = checksum::checksum_with(pseudo, b);
        set_u16(b, 2, c);
    }
}

impl<T: AsRef<[u8]>> IcmpPacket<T, V4> {
    /// The kind of message.
    pub fn kind(&self) -> Icmpv4Kind {
        match self.msg_type() {
            8 => Icmpv4Kind::EchoRequest,
            0 => Icmpv4Kind::EchoReply,
            t @ (3 | 4 | 5 | 11 | 12) => Icmpv4Kind::Error(t),
            t => Icmpv4Kind::Other(t),
        }
    }

    /// Checks the checksum over the whole message (RFC 792: ICMPv4 has no
    /// pseudo-header).
    pub fn check_checksum(&self) -> Result<(), PacketError> {
        self.verified(0)
    }

    /// True if the checksum verifies.
    pub fn checksum_ok(&self) -> bool {
        self.check_checksum().is_ok()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T, V4> {
    /// Recomputes the checksum over the whole message.
    pub fn fill_checksum(&mut self) {
        self.fill(0);
    }
}

impl<T: AsRef<[u8]>> IcmpPacket<T, V6> {
    /// The kind of message.
    pub fn kind(&self) -> Icmpv6Kind {
        match self.msg_type() {
            t @ 0..=127 => Icmpv6Kind::Error(t),
            128 => Icmpv6Kind::EchoRequest,
            129 => Icmpv6Kind::EchoReply,
            133 => Icmpv6Kind::RouterSolicitation,
            134 => Icmpv6Kind::RouterAdvertisement,
            135 => Icmpv6Kind::NeighborSolicitation,
            136 => Icmpv6Kind::NeighborAdvertisement,
            137 => Icmpv6Kind::Redirect,
            t @ (130..=132 | 143) => Icmpv6Kind::MulticastListener(t),
            t => Icmpv6Kind::Other(t),
        }
    }

    fn pseudo(&self, src: Ipv6Addr, dst: Ipv6Addr) -> u16 {
        // A message over 4 GiB cannot come from a frame; saturate rather
        // than wrap all the same.
        let len = u32::try_from(self.buffer.as_ref().len()).unwrap_or(u32::MAX);
        checksum::pseudo_header_v6(src, dst, IpProtocol::ICMPV6, len)
    }

    /// Checks the checksum over the IPv6 pseudo-header (RFC 8200 section
    /// 8.1, RFC 4443 section 2.3) and the message. `src` and `dst` are the
    /// packet's; with a routing header, `dst` is the final destination.
    pub fn check_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> Result<(), PacketError> {
        self.verified(self.pseudo(src, dst))
    }

    /// True if the checksum verifies (see [`Icmpv6Packet::check_checksum`]).
    pub fn checksum_ok(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        self.check_checksum(src, dst).is_ok()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T, V6> {
    /// Recomputes the checksum over the pseudo-header and the message.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        let pseudo = self.pseudo(src, dst);
        self.fill(pseudo);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Echo request, identifier 0x1234, sequence 1, payload "abcd". Words
    /// with the checksum zeroed: 0800 + 1234 + 0001 + 6162 + 6364 = 0xdefb,
    /// so the checksum is !0xdefb = 0x2104.
    pub(crate) const ECHO_REQUEST: [u8; 12] = [
        0x08, 0x00, 0x21, 0x04, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c', b'd',
    ];

    #[test]
    fn icmpv4_echo_request() {
        let m = Icmpv4Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
        assert_eq!(m.msg_type(), 8);
        assert_eq!(m.code(), 0);
        assert_eq!(m.checksum(), 0x2104);
        assert_eq!(m.echo_ident(), 0x1234);
        assert_eq!(m.echo_seq(), 1);
        assert_eq!(m.kind(), Icmpv4Kind::EchoRequest);
        assert!(m.checksum_ok());
        let mut bad = ECHO_REQUEST;
        bad[11] = b'e';
        let m = Icmpv4Packet::new_checked(&bad[..]).unwrap();
        assert_eq!(
            m.check_checksum(),
            Err(PacketError::BadChecksum {
                layer: Layer::Icmpv4
            })
        );
        let mut fixed = bad;
        Icmpv4Packet::new_checked(&mut fixed[..])
            .unwrap()
            .fill_checksum();
        // 'e' is one more than 'd': the checksum drops by one.
        assert_eq!(&fixed[2..4], &[0x21, 0x03]);
    }

    #[test]
    fn icmpv4_kinds() {
        let kind = |t: u8| {
            let mut m = [0u8; 8];
            m[0] = t;
            Icmpv4Packet::new_checked(m).unwrap().kind()
        };
        assert_eq!(kind(0), Icmpv4Kind::EchoReply);
        for t in [3, 4, 5, 11, 12] {
            assert_eq!(kind(t), Icmpv4Kind::Error(t));
        }
        assert_eq!(kind(13), Icmpv4Kind::Other(13));
        assert_eq!(
            Icmpv4Packet::new_checked(&ECHO_REQUEST[..7]).unwrap_err(),
            PacketError::Truncated {
                layer: Layer::Icmpv4,
                need: 8,
                have: 7
            }
        );
    }

    /// A neighbour solicitation from fe80::1 to ff02::1:ff00:2 for
    /// 2001:db8::2, no options: 24 bytes. Pseudo-header words:
    /// fe80 + 0001 + ff02 + 0001 + ff00 + 0002 + 0018 (length) + 003a =
    /// 0x2fcd8; the
    /// message: 8700 + 2001 + 0db8 + 0002 = 0xb4bb; total 0x3b193, folded
    /// 0xb196, checksum !0xb196 = 0x4e69.
    pub(crate) fn neighbor_solicitation() -> (Ipv6Addr, Ipv6Addr, Vec<u8>) {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let dst: Ipv6Addr = "ff02::1:ff00:2".parse().unwrap();
        let mut m = vec![135, 0, 0x4e, 0x69, 0, 0, 0, 0];
        m.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        (src, dst, m)
    }

    #[test]
    fn icmpv6_neighbor_solicitation_checksum() {
        let (src, dst, m) = neighbor_solicitation();
        let v = Icmpv6Packet::new_checked(&m[..]).unwrap();
        assert_eq!(v.msg_type(), 135);
        assert_eq!(v.code(), 0);
        assert_eq!(v.checksum(), 0x4e69);
        assert_eq!(v.kind(), Icmpv6Kind::NeighborSolicitation);
        assert!(v.checksum_ok(src, dst));
        assert_eq!(v.check_checksum(src, dst), Ok(()));
        // The pseudo-header counts: the same bytes to another address fail.
        let other: Ipv6Addr = "ff02::1".parse().unwrap();
        assert_eq!(
            v.check_checksum(src, other),
            Err(PacketError::BadChecksum {
                layer: Layer::Icmpv6
            })
        );
        let mut refill = m.clone();
        refill[2] = 0;
        Icmpv6Packet::new_checked(&mut refill[..])
            .unwrap()
            .fill_checksum(src, dst);
        assert_eq!(refill, m);
    }

    #[test]
    fn icmpv6_kinds() {
        let kind = |t: u8| {
            let mut m = [0u8; 8];
            m[0] = t;
            Icmpv6Packet::new_checked(m).unwrap().kind()
        };
        assert_eq!(kind(1), Icmpv6Kind::Error(1));
        assert_eq!(kind(3), Icmpv6Kind::Error(3));
        assert_eq!(kind(128), Icmpv6Kind::EchoRequest);
        assert_eq!(kind(129), Icmpv6Kind::EchoReply);
        assert_eq!(kind(133), Icmpv6Kind::RouterSolicitation);
        assert_eq!(kind(134), Icmpv6Kind::RouterAdvertisement);
        assert_eq!(kind(136), Icmpv6Kind::NeighborAdvertisement);
        assert_eq!(kind(137), Icmpv6Kind::Redirect);
        assert_eq!(kind(130), Icmpv6Kind::MulticastListener(130));
        assert_eq!(kind(143), Icmpv6Kind::MulticastListener(143));
        assert_eq!(kind(200), Icmpv6Kind::Other(200));
    }

    proptest! {
        #[test]
        fn no_panic_on_any_input(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(m) = Icmpv4Packet::new_checked(&data[..]) {
                let _ = (m.msg_type(), m.code(), m.checksum(), m.echo_ident(), m.echo_seq(), m.kind(), m.checksum_ok());
            }
            if let Ok(m) = Icmpv6Packet::new_checked(&data[..]) {
                let a = Ipv6Addr::LOCALHOST;
                let _ = (m.msg_type(), m.code(), m.checksum(), m.echo_ident(), m.echo_seq(), m.kind(), m.checksum_ok(a, a));
            }
        }

        #[test]
        fn filled_checksums_verify(mut data in proptest::collection::vec(any::<u8>(), 8..64), s in any::<u128>(), d in any::<u128>()) {
            let (src, dst) = (Ipv6Addr::from_bits(s), Ipv6Addr::from_bits(d));
            Icmpv6Packet::new_checked(&mut data[..]).unwrap().fill_checksum(src, dst);
            prop_assert!(Icmpv6Packet::new_checked(&data[..]).unwrap().checksum_ok(src, dst));
            Icmpv4Packet::new_checked(&mut data[..]).unwrap().fill_checksum();
            prop_assert!(Icmpv4Packet::new_checked(&data[..]).unwrap().checksum_ok());
        }
    }
}
