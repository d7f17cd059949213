//! Ethernet II frames (IEEE 802.3 clause 3.2 with an EtherType) and the
//! 802.1Q / 802.1ad VLAN tags in front of the payload.

use std::fmt;

use drivers::net::MacAddr;

use super::error::{Layer, PacketError};
use super::field::{get_array, get_u16};

/// An EtherType (IEEE Registration Authority).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EtherType(pub u16);

impl EtherType {
    /// IPv4 (RFC 894).
    pub const IPV4: EtherType = EtherType(0x0800);
    /// ARP (RFC 826).
    pub const ARP: EtherType = EtherType(0x0806);
    /// IPv6 (RFC 2464).
    pub const IPV6: EtherType = EtherType(0x86dd);
    /// 802.1Q customer VLAN tag.
    pub const VLAN: EtherType = EtherType(0x8100);
    /// 802.1ad service VLAN tag (the outer tag of QinQ).
    pub const QINQ: EtherType = EtherType(0x88a8);

    /// True for the tag protocol identifiers this view walks through.
    pub fn is_vlan_tag(self) -> bool {
        self == EtherType::VLAN || self == EtherType::QINQ
    }
}

impl fmt::Debug for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EtherType({:#06x})", self.0)
    }
}

/// Destination, source and EtherType: 6 + 6 + 2 bytes.
pub const HEADER_LEN: usize = 14;
/// A VLAN tag: 2 bytes TPID (the EtherType slot it sits in) + 2 bytes TCI,
/// then the next EtherType (802.1Q clause 9).
pub const VLAN_TAG_LEN: usize = 4;
/// Tags walked before the frame is refused: QinQ's two. Deeper stacks are
/// not something a pod's router is given, and a bound keeps the walk short.
pub const MAX_VLAN_TAGS: usize = 2;

/// One VLAN tag as found in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanTag {
    /// The tag protocol identifier: [`EtherType::VLAN`] or
    /// [`EtherType::QINQ`].
    pub tpid: EtherType,
    /// The tag control information: PCP (3 bits), DEI (1), VID (12).
    pub tci: u16,
}

impl VlanTag {
    /// The VLAN identifier (the low 12 bits of the TCI).
    pub fn vid(&self) -> u16 {
        self.tci & 0x0fff
    }

    /// The priority code point (the top 3 bits).
    pub fn pcp(&self) -> u8 {
        (self.tci >> 13) as u8
    }

    /// The drop eligible indicator.
    pub fn dei(&self) -> bool {
        self.tci & 0x1000 != 0
    }
}

/// A checked view of an Ethernet II frame and its VLAN tags.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T> {
    buffer: T,
    tags: [VlanTag; MAX_VLAN_TAGS],
    tag_count: u8,
    ethertype: EtherType,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Checks the header and walks the VLAN tags: at most
    /// [`MAX_VLAN_TAGS`], an 802.1ad tag only as the outer one, each
    /// present in full.
    pub fn new_checked(buffer: T) -> Result<Self, PacketError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(PacketError::Truncated {
                layer: Layer::Ethernet,
                need: HEADER_LEN,
                have: b.len(),
            });
        }
        let empty = VlanTag {
            tpid: EtherType(0),
            tci: 0,
        };
        let mut tags = [empty; MAX_VLAN_TAGS];
        let mut tag_count = 0usize;
        // `at` is the offset of the EtherType (or TPID) being looked at.
        let mut at = HEADER_LEN - 2;
        let mut ethertype = EtherType(get_u16(b, at));
        while ethertype.is_vlan_tag() {
            if tag_count == MAX_VLAN_TAGS {
                return Err(PacketError::TooManyVlanTags);
            }
            if ethertype == EtherType::QINQ && tag_count != 0 {
                return Err(PacketError::MisplacedServiceTag);
            }
            let need = at + 2 + VLAN_TAG_LEN;
            if b.len() < need {
                return Err(PacketError::Truncated {
                    layer: Layer::Vlan,
                    need,
                    have: b.len(),
                });
            }
            tags[tag_count] = VlanTag {
                tpid: ethertype,
                tci: get_u16(b, at + 2),
            };
            tag_count += 1;
            at += VLAN_TAG_LEN;
            ethertype = EtherType(get_u16(b, at));
        }
        Ok(EthernetFrame {
            buffer,
            tags,
            tag_count: tag_count as u8,
            ethertype,
        })
    }

    /// The destination address.
    pub fn dst(&self) -> MacAddr {
        MacAddr(get_array(self.buffer.as_ref(), 0))
    }

    /// The source address.
    pub fn src(&self) -> MacAddr {
        MacAddr(get_array(self.buffer.as_ref(), 6))
    }

    /// The EtherType right after the addresses: a TPID if the frame is
    /// tagged.
    pub fn outer_ethertype(&self) -> EtherType {
        EtherType(get_u16(self.buffer.as_ref(), 12))
    }

    /// The EtherType after the last tag: what the payload is.
    pub fn ethertype(&self) -> EtherType {
        self.ethertype
    }

    /// The VLAN tags, outermost first; empty for an untagged frame.
    pub fn tags(&self) -> &[VlanTag] {
        &self.tags[..usize::from(self.tag_count)]
    }

    /// The innermost tag's VLAN id, the one a port's VLAN interface
    /// matches, if the frame is tagged.
    pub fn vid(&self) -> Option<u16> {
        self.tags().last().map(VlanTag::vid)
    }

    /// Where the layer-3 header starts, from the start of the frame.
    pub fn l3_offset(&self) -> usize {
        HEADER_LEN + VLAN_TAG_LEN * usize::from(self.tag_count)
    }

    /// The bytes after the last tag.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.l3_offset()..]
    }

    /// The buffer the view was made over.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination address (MAC rewrite).
    pub fn set_dst(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[0..6].copy_from_slice(&mac.0);
    }

    /// Sets the source address (MAC rewrite).
    pub fn set_src(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[6..12].copy_from_slice(&mac.0);
    }

    /// The bytes after the last tag, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let at = self.l3_offset();
        &mut self.buffer.as_mut()[at..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    const SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

    fn frame(after_addresses: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&DST);
        f.extend_from_slice(&SRC);
        f.extend_from_slice(after_addresses);
        f
    }

    #[test]
    fn untagged_ipv4() {
        let f = frame(&[0x08, 0x00, 0x45]);
        let e = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(e.dst(), MacAddr(DST));
        assert_eq!(e.src(), MacAddr(SRC));
        assert_eq!(e.outer_ethertype(), EtherType::IPV4);
        assert_eq!(e.ethertype(), EtherType::IPV4);
        assert!(e.tags().is_empty());
        assert_eq!(e.vid(), None);
        assert_eq!(e.l3_offset(), 14);
        assert_eq!(e.payload(), &[0x45]);
    }

    #[test]
    fn single_dot1q_tag() {
        // TPID 8100, TCI a064: PCP 5, DEI 0, VID 0x064 = 100; then IPv6.
        let f = frame(&[0x81, 0x00, 0xa0, 0x64, 0x86, 0xdd, 0x60]);
        let e = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(e.outer_ethertype(), EtherType::VLAN);
        assert_eq!(e.ethertype(), EtherType::IPV6);
        assert_eq!(e.tags().len(), 1);
        assert_eq!(e.tags()[0].pcp(), 5);
        assert!(!e.tags()[0].dei());
        assert_eq!(e.vid(), Some(100));
        assert_eq!(e.l3_offset(), 18);
        assert_eq!(e.payload(), &[0x60]);
    }

    #[test]
    fn qinq_frame() {
        // S-tag 88a8 TCI 3005 (PCP 1, DEI 1, VID 5); C-tag 8100 TCI 00c8
        // (VID 200); then ARP.
        let f = frame(&[0x88, 0xa8, 0x30, 0x05, 0x81, 0x00, 0x00, 0xc8, 0x08, 0x06]);
        let e = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(e.outer_ethertype(), EtherType::QINQ);
        assert_eq!(e.ethertype(), EtherType::ARP);
        let t = e.tags();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].tpid, EtherType::QINQ);
        assert_eq!((t[0].pcp(), t[0].dei(), t[0].vid()), (1, true, 5));
        assert_eq!(t[1].tpid, EtherType::VLAN);
        assert_eq!(t[1].vid(), 200);
        assert_eq!(e.vid(), Some(200));
        assert_eq!(e.l3_offset(), 22);
        assert!(e.payload().is_empty());
    }

    #[test]
    fn refusals() {
        assert_eq!(
            EthernetFrame::new_checked(&[0u8; 13][..]).unwrap_err(),
            PacketError::Truncated {
                layer: Layer::Ethernet,
                need: 14,
                have: 13
            }
        );
        // A tag cut short: TPID but only half the TCI and no EtherType.
        let f = frame(&[0x81, 0x00, 0x00]);
        assert_eq!(
            EthernetFrame::new_checked(&f[..]).unwrap_err(),
            PacketError::Truncated {
                layer: Layer::Vlan,
                need: 18,
                have: 15
            }
        );
        let f = frame(&[
            0x81, 0x00, 0, 1, 0x81, 0x00, 0, 2, 0x81, 0x00, 0, 3, 0x08, 0,
        ]);
        assert_eq!(
            EthernetFrame::new_checked(&f[..]).unwrap_err(),
            PacketError::TooManyVlanTags
        );
        let f = frame(&[0x81, 0x00, 0, 1, 0x88, 0xa8, 0, 2, 0x08, 0]);
        assert_eq!(
            EthernetFrame::new_checked(&f[..]).unwrap_err(),
            PacketError::MisplacedServiceTag
        );
    }

    #[test]
    fn rewrite_addresses() {
        let mut f = frame(&[0x08, 0x00]);
        let mut e = EthernetFrame::new_checked(&mut f[..]).unwrap();
        e.set_dst(MacAddr::BROADCAST);
        e.set_src(MacAddr::local(9));
        assert_eq!(e.dst(), MacAddr::BROADCAST);
        assert_eq!(e.src(), MacAddr::local(9));
        assert_eq!(&f[12..], &[0x08, 0x00]);
    }

    proptest! {
        #[test]
        fn no_panic_on_any_input(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(e) = EthernetFrame::new_checked(&data[..]) {
                let _ = (e.dst(), e.src(), e.outer_ethertype(), e.ethertype(), e.vid());
                prop_assert!(e.tags().len() <= MAX_VLAN_TAGS);
                prop_assert!(e.l3_offset() <= data.len());
                prop_assert_eq!(e.payload().len(), data.len() - e.l3_offset());
            }
        }
    }
}
