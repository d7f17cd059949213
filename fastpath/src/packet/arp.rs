//! ARP for IPv4 over Ethernet (RFC 826), the only kind a router on Ethernet
//! ports is given; everything else is refused with its type fields.

use std::net::Ipv4Addr;

use drivers::net::MacAddr;

use super::error::{Layer, PacketError};
use super::field::{get_array, get_u16};

/// RFC 826 fixed part (hardware type, protocol type, two lengths, opcode: 8
/// bytes) plus two 6-byte hardware and two 4-byte protocol addresses.
pub const PACKET_LEN: usize = 28;
/// Hardware type for Ethernet (IANA ARP parameters, "Hardware Types").
pub const HARDWARE_ETHERNET: u16 = 1;
/// Protocol type for IPv4: its EtherType.
pub const PROTOCOL_IPV4: u16 = 0x0800;

/// An ARP operation code (RFC 826; IANA "Operation Codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpOp(pub u16);

impl ArpOp {
    /// ares_op$REQUEST.
    pub const REQUEST: ArpOp = ArpOp(1);
    /// ares_op$REPLY.
    pub const REPLY: ArpOp = ArpOp(2);
}

/// A checked view of an IPv4-over-Ethernet ARP packet.
#[derive(Debug, Clone)]
pub struct ArpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Checks the length and that the packet is IPv4 over Ethernet (types
    /// and address lengths); bytes after the 28 (Ethernet padding) are
    /// ignored.
    pub fn new_checked(buffer: T) -> Result<Self, PacketError> {
        let b = buffer.as_ref();
        if b.len() < PACKET_LEN {
            return Err(PacketError::Truncated {
                layer: Layer::Arp,
                need: PACKET_LEN,
                have: b.len(),
            });
        }
        let hardware = get_u16(b, 0);
        let protocol = get_u16(b, 2);
        let (hardware_len, protocol_len) = (b[4], b[5]);
        if hardware != HARDWARE_ETHERNET
            || protocol != PROTOCOL_IPV4
            || hardware_len != 6
            || protocol_len != 4
        {
            return Err(PacketError::UnsupportedArp {
                hardware,
                protocol,
                hardware_len,
                protocol_len,
            });
        }
        Ok(ArpPacket { buffer })
    }

    /// The operation.
    pub fn op(&self) -> ArpOp {
        ArpOp(get_u16(self.buffer.as_ref(), 6))
    }

    /// Sender hardware address.
    pub fn sender_mac(&self) -> MacAddr {
        MacAddr(get_array(self.buffer.as_ref(), 8))
    }

    /// Sender protocol address.
    pub fn sender_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_array::<4>(self.buffer.as_ref(), 14))
    }

    /// Target hardware address (zero in a request).
    pub fn target_mac(&self) -> MacAddr {
        MacAddr(get_array(self.buffer.as_ref(), 18))
    }

    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_array::<4>(self.buffer.as_ref(), 24))
    }

    /// True for a gratuitous ARP: sender and target protocol address equal
    /// (RFC 5227 section 3), an announcement of the sender's own address.
    pub fn is_gratuitous(&self) -> bool {
        self.sender_ip() == self.target_ip()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Who has 192.168.1.1? Tell 192.168.1.10 (at 02:00:00:00:00:0a), plus
    /// the 18 bytes of padding a 60-byte minimum frame brings.
    pub(crate) const REQUEST: [u8; 46] = [
        0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, // Ethernet, IPv4, 6, 4, request
        0x02, 0, 0, 0, 0, 0x0a, 192, 168, 1, 10, // sender
        0, 0, 0, 0, 0, 0, 192, 168, 1, 1, // target
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // padding
    ];

    #[test]
    fn request_fields() {
        let a = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(a.op(), ArpOp::REQUEST);
        assert_eq!(a.sender_mac(), MacAddr([2, 0, 0, 0, 0, 0x0a]));
        assert_eq!(a.sender_ip(), Ipv4Addr::new(192, 168, 1, 10));
        assert_eq!(a.target_mac(), MacAddr([0; 6]));
        assert_eq!(a.target_ip(), Ipv4Addr::new(192, 168, 1, 1));
        assert!(!a.is_gratuitous());
    }

    #[test]
    fn refusals() {
        assert_eq!(
            ArpPacket::new_checked(&REQUEST[..27]).unwrap_err(),
            PacketError::Truncated {
                layer: Layer::Arp,
                need: 28,
                have: 27
            }
        );
        // Hardware type 6 (IEEE 802 networks).
        let mut p = REQUEST;
        p[1] = 6;
        assert_eq!(
            ArpPacket::new_checked(&p[..]).unwrap_err(),
            PacketError::UnsupportedArp {
                hardware: 6,
                protocol: 0x0800,
                hardware_len: 6,
                protocol_len: 4
            }
        );
        // Protocol IPv6's EtherType, and a wrong protocol length.
        let mut p = REQUEST;
        p[2..4].copy_from_slice(&[0x86, 0xdd]);
        assert!(matches!(
            ArpPacket::new_checked(&p[..]),
            Err(PacketError::UnsupportedArp {
                protocol: 0x86dd,
                ..
            })
        ));
        let mut p = REQUEST;
        p[5] = 16;
        assert!(matches!(
            ArpPacket::new_checked(&p[..]),
            Err(PacketError::UnsupportedArp {
                protocol_len: 16,
                ..
            })
        ));
    }

    proptest! {
        #[test]
        fn no_panic_on_any_input(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(a) = ArpPacket::new_checked(&data[..]) {
                let _ = (a.op(), a.sender_mac(), a.sender_ip(), a.target_mac(), a.target_ip(), a.is_gratuitous());
            }
        }
    }
}
