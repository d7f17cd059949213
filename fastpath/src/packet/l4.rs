//! UDP (RFC 768) and TCP (RFC 9293 section 3.1) headers: the ports and,
//! for TCP, header length and flags. Views only: the router reads them to
//! classify flows, it does not terminate them.

use super::error::{Layer, PacketError};
use super::field::{get_u16, get_u32};

/// UDP header: ports, length, checksum.
pub const UDP_HEADER_LEN: usize = 8;
/// TCP header without options: data offset 5.
pub const TCP_MIN_HEADER_LEN: usize = 20;

/// A checked view of a UDP header.
#[derive(Debug, Clone)]
pub struct UdpHeader<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpHeader<T> {
    /// Checks the 8-byte header is there. The length field is not checked
    /// against the buffer: a router forwards what it does not terminate.
    pub fn new_checked(buffer: T) -> Result<Self, PacketError> {
        let have = buffer.as_ref().len();
        if have < UDP_HEADER_LEN {
            return Err(PacketError::Truncated {
                layer: Layer::Udp,
                need: UDP_HEADER_LEN,
                have,
            });
        }
        Ok(UdpHeader { buffer })
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 0)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 2)
    }

    /// The length field: header and data, in bytes.
    pub fn length(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 4)
    }

    /// The checksum field (0 over IPv4: none computed).
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 6)
    }
}

/// TCP control bits (RFC 9293 section 3.1; ECE and CWR from RFC 3168).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// Acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// Urgent pointer field is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN echo.
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion window reduced.
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// True if every bit of `other` is set here.
    pub fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

/// A checked view of a TCP header.
#[derive(Debug, Clone)]
pub struct TcpHeader<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpHeader<T> {
    /// Checks the fixed header is there, its data offset at least 5 and
    /// the options within the buffer.
    pub fn new_checked(buffer: T) -> Result<Self, PacketError> {
        let b = buffer.as_ref();
        if b.len() < TCP_MIN_HEADER_LEN {
            return Err(PacketError::Truncated {
                layer: Layer::Tcp,
                need: TCP_MIN_HEADER_LEN,
                have: b.len(),
            });
        }
        let len = usize::from(b[12] >> 4) * 4;
        if len < TCP_MIN_HEADER_LEN {
            return Err(PacketError::BadHeaderLength {
                layer: Layer::Tcp,
                len,
            });
        }
        if len > b.len() {
            return Err(PacketError::Truncated {
                layer: Layer::Tcp,
                need: len,
                have: b.len(),
            });
        }
        Ok(TcpHeader { buffer })
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 0)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 2)
    }

    /// Sequence number.
    pub fn seq(&self) -> u32 {
        get_u32(self.buffer.as_ref(), 4)
    }

    /// Acknowledgment number.
    pub fn ack(&self) -> u32 {
        get_u32(self.buffer.as_ref(), 8)
    }

    /// Header length in bytes (data offset * 4), options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[12] >> 4) * 4
    }

    /// The control bits.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[13])
    }

    /// The receive window.
    pub fn window(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 14)
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 16)
    }

    /// The option bytes.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[TCP_MIN_HEADER_LEN..self.header_len()]
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A SYN from port 49152 to 443, seq 0x01020304, window 64240, data
    /// offset 6 with an MSS option of 1460 (kind 2, length 4, 0x05b4).
    pub(crate) const TCP_SYN: [u8; 24] = [
        0xc0, 0x00, 0x01, 0xbb, 0x01, 0x02, 0x03, 0x04, 0, 0, 0, 0, 0x60, 0x02, 0xfa, 0xf0, 0x12,
        0x34, 0, 0, 2, 4, 0x05, 0xb4,
    ];

    #[test]
    fn tcp_syn() {
        let t = TcpHeader::new_checked(&TCP_SYN[..]).unwrap();
        assert_eq!(t.src_port(), 49152);
        assert_eq!(t.dst_port(), 443);
        assert_eq!(t.seq(), 0x01020304);
        assert_eq!(t.ack(), 0);
        assert_eq!(t.header_len(), 24);
        assert_eq!(t.flags(), TcpFlags::SYN);
        assert!(t.flags().contains(TcpFlags::SYN));
        assert!(!t.flags().contains(TcpFlags::ACK));
        assert_eq!(t.window(), 64240);
        assert_eq!(t.checksum(), 0x1234);
        assert_eq!(t.options(), &[2, 4, 0x05, 0xb4]);
    }

    #[test]
    fn tcp_refusals() {
        assert_eq!(
            TcpHeader::new_checked(&TCP_SYN[..19]).unwrap_err(),
            PacketError::Truncated {
                layer: Layer::Tcp,
                need: 20,
                have: 19
            }
        );
        let mut h = TCP_SYN;
        h[12] = 0x40;
        assert_eq!(
            TcpHeader::new_checked(&h[..]).unwrap_err(),
            PacketError::BadHeaderLength {
                layer: Layer::Tcp,
                len: 16
            }
        );
        h[12] = 0x70;
        assert_eq!(
            TcpHeader::new_checked(&h[..]).unwrap_err(),
            PacketError::Truncated {
                layer: Layer::Tcp,
                need: 28,
                have: 24
            }
        );
    }

    #[test]
    fn udp_dns_query_header() {
        let h = [0x30, 0x39, 0x00, 0x35, 0x00, 0x0c, 0xab, 0xcd, 1, 2, 3, 4];
        let u = UdpHeader::new_checked(&h[..]).unwrap();
        assert_eq!(u.src_port(), 12345);
        assert_eq!(u.dst_port(), 53);
        assert_eq!(u.length(), 12);
        assert_eq!(u.checksum(), 0xabcd);
        assert_eq!(
            UdpHeader::new_checked(&h[..7]).unwrap_err(),
            PacketError::Truncated {
                layer: Layer::Udp,
                need: 8,
                have: 7
            }
        );
    }

    proptest! {
        #[test]
        fn no_panic_on_any_input(data in proptest::collection::vec(any::<u8>(), 0..70)) {
            if let Ok(u) = UdpHeader::new_checked(&data[..]) {
                let _ = (u.src_port(), u.dst_port(), u.length(), u.checksum());
            }
            if let Ok(t) = TcpHeader::new_checked(&data[..]) {
                let _ = (t.src_port(), t.dst_port(), t.seq(), t.ack(), t.flags(), t.window(), t.checksum());
                prop_assert!(t.options().len() + TCP_MIN_HEADER_LEN == t.header_len());
            }
        }
    }
}
