//! IPv4 headers (RFC 791 section 3.1), checked as RFC 1812 section 5.2.2
//! asks of a router: version, header length, total length against the
//! frame; the checksum on request, since a NIC may have verified it.

use std::net::Ipv4Addr;

use super::checksum;
use super::error::{Layer, PacketError};
use super::field::{get_array, get_u16, get_u32, set_u16};
use super::ip_protocol::IpProtocol;

/// A header without options: IHL 5 (RFC 791 section 3.1).
pub const MIN_HEADER_LEN: usize = 20;

// Field offsets (RFC 791 section 3.1, figure 4).
const VER_IHL: usize = 0;
const TOS: usize = 1;
const TOTAL_LEN: usize = 2;
const IDENT: usize = 4;
const FLAGS_FRAG: usize = 6;
const TTL: usize = 8;
const PROTOCOL: usize = 9;
const CHECKSUM: usize = 10;
const SRC: usize = 12;
const DST: usize = 16;

/// Don't-fragment flag in the flags/fragment-offset word.
const DF: u16 = 0x4000;
/// More-fragments flag.
const MF: u16 = 0x2000;
/// Fragment offset, in 8-byte units.
const FRAG_OFFSET: u16 = 0x1fff;

/// A checked view of an IPv4 datagram: the buffer may run past the
/// datagram (Ethernet padding); [`Ipv4Packet::padding_len`] says by how
/// much.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Checks version 4, IHL at least 5 with the header in the buffer, and
    /// a total length covering the header and within the buffer. The
    /// checksum is not checked here: see [`Ipv4Packet::check_checksum`].
    pub fn new_checked(buffer: T) -> Result<Self, PacketError> {
        let b = buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(PacketError::Truncated {
                layer: Layer::Ipv4,
                need: MIN_HEADER_LEN,
                have: b.len(),
            });
        }
        let version = b[VER_IHL] >> 4;
        if version != 4 {
            return Err(PacketError::BadVersion {
                layer: Layer::Ipv4,
                found: version,
            });
        }
        let header = usize::from(b[VER_IHL] & 0x0f) * 4;
        if header < MIN_HEADER_LEN {
            return Err(PacketError::BadHeaderLength {
                layer: Layer::Ipv4,
                len: header,
            });
        }
        if header > b.len() {
            return Err(PacketError::Truncated {
                layer: Layer::Ipv4,
                need: header,
                have: b.len(),
            });
        }
        let total = usize::from(get_u16(b, TOTAL_LEN));
        if total < header || total > b.len() {
            return Err(PacketError::BadTotalLength {
                layer: Layer::Ipv4,
                total,
                header,
                have: b.len(),
            });
        }
        Ok(Ipv4Packet { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The version field: 4.
    pub fn version(&self) -> u8 {
        self.b()[VER_IHL] >> 4
    }

    /// The header length in bytes (IHL * 4), 20 to 60.
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[VER_IHL] & 0x0f) * 4
    }

    /// The DSCP (top six bits of the old TOS byte, RFC 2474).
    pub fn dscp(&self) -> u8 {
        self.b()[TOS] >> 2
    }

    /// The ECN field (low two bits, RFC 3168).
    pub fn ecn(&self) -> u8 {
        self.b()[TOS] & 0x03
    }

    /// The datagram length, header included, in bytes.
    pub fn total_len(&self) -> usize {
        usize::from(get_u16(self.b(), TOTAL_LEN))
    }

    /// Bytes in the buffer after the datagram (Ethernet minimum-frame
    /// padding): to be trimmed, not forwarded as payload.
    pub fn padding_len(&self) -> usize {
        self.b().len() - self.total_len()
    }

    /// The identification field.
    pub fn ident(&self) -> u16 {
        get_u16(self.b(), IDENT)
    }

    /// The don't-fragment flag: a router that would have to fragment
    /// instead drops and reports (RFC 1191).
    pub fn dont_fragment(&self) -> bool {
        get_u16(self.b(), FLAGS_FRAG) & DF != 0
    }

    /// The more-fragments flag.
    pub fn more_fragments(&self) -> bool {
        get_u16(self.b(), FLAGS_FRAG) & MF != 0
    }

    /// The fragment offset in 8-byte units.
    pub fn frag_offset(&self) -> u16 {
        get_u16(self.b(), FLAGS_FRAG) & FRAG_OFFSET
    }

    /// True for any fragment, first or later: MF set or an offset.
    pub fn is_fragment(&self) -> bool {
        get_u16(self.b(), FLAGS_FRAG) & (MF | FRAG_OFFSET) != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.b()[TTL]
    }

    /// The protocol of the payload.
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol(self.b()[PROTOCOL])
    }

    /// The header checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.b(), CHECKSUM)
    }

    /// The source address.
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_array::<4>(self.b(), SRC))
    }

    /// The destination address.
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_array::<4>(self.b(), DST))
    }

    /// True if the header carries options (IHL above 5): those packets go
    /// to the kernel.
    pub fn has_options(&self) -> bool {
        self.header_len() > MIN_HEADER_LEN
    }

    /// The option bytes, empty without options.
    pub fn options(&self) -> &[u8] {
        &self.b()[MIN_HEADER_LEN..self.header_len()]
    }

    /// The header, options included.
    pub fn header(&self) -> &[u8] {
        &self.b()[..self.header_len()]
    }

    /// The payload: from the end of the header to the total length, without
    /// the padding.
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..self.total_len()]
    }

    /// True if the header checksum verifies.
    pub fn checksum_ok(&self) -> bool {
        checksum::verify(self.header())
    }

    /// [`Ipv4Packet::checksum_ok`] as a result, for `?`.
    pub fn check_checksum(&self) -> Result<(), PacketError> {
        if self.checksum_ok() {
            Ok(())
        } else {
            Err(PacketError::BadChecksum { layer: Layer::Ipv4 })
        }
    }

    /// The buffer the view was made over.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn b_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Sets the TTL, updating the checksum incrementally (RFC 1624): TTL
    /// and protocol share one 16-bit word.
    pub fn set_ttl(&mut self, ttl: u8) {
        let old = get_u16(self.b(), TTL);
        let new = (u16::from(ttl) << 8) | (old & 0x00ff);
        let check = checksum::update16(self.checksum(), old, new);
        let b = self.b_mut();
        b[TTL] = ttl;
        set_u16(b, CHECKSUM, check);
    }

    /// Decrements the TTL with the checksum updated incrementally, and
    /// returns the new TTL; `None`, and nothing written, if it was already
    /// 0. The caller decides what TTL 1 means before calling (RFC 1812
    /// section 5.3.1: expired packets go to the kernel for its ICMP error).
    pub fn decrement_ttl(&mut self) -> Option<u8> {
        let ttl = self.ttl().checked_sub(1)?;
        self.set_ttl(ttl);
        Some(ttl)
    }

    /// Sets the source address, updating the checksum incrementally.
    pub fn set_src(&mut self, addr: Ipv4Addr) {
        self.set_addr(SRC, addr);
    }

    /// Sets the destination address, updating the checksum incrementally.
    pub fn set_dst(&mut self, addr: Ipv4Addr) {
        self.set_addr(DST, addr);
    }

    fn set_addr(&mut self, at: usize, addr: Ipv4Addr) {
        let old = get_u32(self.b(), at);
        let check = checksum::update32(self.checksum(), old, addr.to_bits());
        let b = self.b_mut();
        b[at..at + 4].copy_from_slice(&addr.octets());
        set_u16(b, CHECKSUM, check);
    }

    /// Recomputes the header checksum from scratch.
    pub fn fill_checksum(&mut self) {
        let len = self.header_len();
        let b = self.b_mut();
        set_u16(b, CHECKSUM, 0);
        let check = checksum::checksum(&b[..len]);
        set_u16(b, CHECKSUM, check);
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (from, to) = (self.header_len(), self.total_len());
        &mut self.b_mut()[from..to]
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A UDP datagram header from 192.168.0.1 to 192.168.0.199, DF, TTL
    /// 64, total length 0x73: the sum of its words with the checksum
    /// zeroed is 0x4479e, folded 0x479e, so the checksum is !0x479e =
    /// 0xb861.
    pub(crate) const HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    fn datagram(extra: usize) -> Vec<u8> {
        let mut d = HEADER.to_vec();
        d.resize(0x73 + extra, 0xee);
        d
    }

    #[test]
    fn every_accessor() {
        let d = datagram(5);
        let p = Ipv4Packet::new_checked(&d[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!((p.dscp(), p.ecn()), (0, 0));
        assert_eq!(p.total_len(), 115);
        assert_eq!(p.padding_len(), 5);
        assert_eq!(p.ident(), 0);
        assert!(p.dont_fragment());
        assert!(!p.more_fragments());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), IpProtocol::UDP);
        assert_eq!(p.checksum(), 0xb861);
        assert!(p.checksum_ok());
        assert_eq!(p.check_checksum(), Ok(()));
        assert_eq!(p.src(), Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(p.dst(), Ipv4Addr::new(192, 168, 0, 199));
        assert!(!p.has_options());
        assert!(p.options().is_empty());
        assert_eq!(p.header(), &HEADER[..]);
        assert_eq!(p.payload().len(), 95);
    }

    #[test]
    fn options_fragments_and_tos() {
        // IHL 6 with a 4-byte option (NOP NOP NOP EOL), TOS 0xb9 (DSCP 46
        // EF, ECN 1), MF with offset 0x0b9 (1480 bytes), total length 24.
        let mut h = [
            0x46, 0xb9, 0x00, 0x18, 0x12, 0x34, 0x20, 0xb9, 0x01, 0x01, 0, 0, 10, 0, 0, 1, 10, 0,
            0, 2, 1, 1, 1, 0,
        ];
        let mut p = Ipv4Packet::new_checked(&mut h[..]).unwrap();
        p.fill_checksum();
        assert!(p.checksum_ok());
        assert_eq!(p.header_len(), 24);
        assert!(p.has_options());
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!((p.dscp(), p.ecn()), (46, 1));
        assert_eq!(p.ident(), 0x1234);
        assert!(!p.dont_fragment());
        assert!(p.more_fragments());
        assert_eq!(p.frag_offset(), 0xb9);
        assert!(p.is_fragment());
        assert_eq!(p.protocol(), IpProtocol::ICMP);
        assert!(p.payload().is_empty());
        assert_eq!(p.padding_len(), 0);
    }

    #[test]
    fn refusals() {
        let d = datagram(0);
        let err = |b: &[u8]| Ipv4Packet::new_checked(b).unwrap_err();
        assert_eq!(
            err(&d[..19]),
            PacketError::Truncated {
                layer: Layer::Ipv4,
                need: 20,
                have: 19
            }
        );
        let mut v6 = d.clone();
        v6[0] = 0x65;
        assert_eq!(
            err(&v6),
            PacketError::BadVersion {
                layer: Layer::Ipv4,
                found: 6
            }
        );
        let mut ihl4 = d.clone();
        ihl4[0] = 0x44;
        assert_eq!(
            err(&ihl4),
            PacketError::BadHeaderLength {
                layer: Layer::Ipv4,
                len: 16
            }
        );
        let mut ihl15 = d[..40].to_vec();
        ihl15[0] = 0x4f;
        assert_eq!(
            err(&ihl15),
            PacketError::Truncated {
                layer: Layer::Ipv4,
                need: 60,
                have: 40
            }
        );
        // Total length beyond the frame, and below the header.
        assert_eq!(
            err(&d[..100]),
            PacketError::BadTotalLength {
                layer: Layer::Ipv4,
                total: 115,
                header: 20,
                have: 100
            }
        );
        let mut short = d.clone();
        short[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert!(matches!(
            err(&short),
            PacketError::BadTotalLength { total: 19, .. }
        ));
        let mut bad = d.clone();
        bad[11] ^= 1;
        let p = Ipv4Packet::new_checked(&bad[..]).unwrap();
        assert_eq!(
            p.check_checksum(),
            Err(PacketError::BadChecksum { layer: Layer::Ipv4 })
        );
    }

    #[test]
    fn ttl_decrement_worked_example() {
        // TTL 64 -> 63 lowers the word 0x4011 by 0x0100, so the checksum
        // rises by 0x0100: 0xb861 -> 0xb961.
        let mut d = datagram(0);
        let mut p = Ipv4Packet::new_checked(&mut d[..]).unwrap();
        assert_eq!(p.decrement_ttl(), Some(63));
        assert_eq!(p.checksum(), 0xb961);
        assert!(p.checksum_ok());
        p.set_ttl(0);
        assert_eq!(p.decrement_ttl(), None);
        assert_eq!(p.ttl(), 0);
        assert!(p.checksum_ok());
    }

    #[test]
    fn ttl_decrement_to_a_zero_checksum() {
        // The one case the incremental forms differ in (RFC 1624 section
        // 3): the recomputed checksum is 0x0000. Find the identification
        // that gives it after the decrement, then decrement incrementally.
        let mut d = datagram(0);
        let ident = (0..=u16::MAX)
            .find(|&i| {
                let mut h = HEADER;
                h[4..6].copy_from_slice(&i.to_be_bytes());
                h[8] -= 1;
                h[10..12].fill(0);
                checksum::checksum(&h) == 0
            })
            .unwrap();
        d[4..6].copy_from_slice(&ident.to_be_bytes());
        let mut p = Ipv4Packet::new_checked(&mut d[..]).unwrap();
        p.fill_checksum();
        p.decrement_ttl();
        assert_eq!(p.checksum(), 0x0000);
        assert!(p.checksum_ok());
    }

    #[test]
    fn address_rewrite_keeps_checksum() {
        let mut d = datagram(0);
        let mut p = Ipv4Packet::new_checked(&mut d[..]).unwrap();
        p.set_src(Ipv4Addr::new(203, 0, 113, 7));
        p.set_dst(Ipv4Addr::new(198, 51, 100, 254));
        assert_eq!(p.src(), Ipv4Addr::new(203, 0, 113, 7));
        assert_eq!(p.dst(), Ipv4Addr::new(198, 51, 100, 254));
        assert!(p.checksum_ok());
    }

    /// A header with random fields (version 4, IHL 5 to 15, total length
    /// the header's) and a correct checksum.
    fn random_header() -> impl Strategy<Value = Vec<u8>> {
        (5u8..=15, proptest::collection::vec(any::<u8>(), 60)).prop_map(|(ihl, mut h)| {
            let len = usize::from(ihl) * 4;
            h.truncate(len);
            h[0] = 0x40 | ihl;
            h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            let mut p = Ipv4Packet::new_checked(&mut h[..]).unwrap();
            p.fill_checksum();
            h
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn incremental_ttl_matches_recompute(h in random_header()) {
            let mut inc = h.clone();
            let mut p = Ipv4Packet::new_checked(&mut inc[..]).unwrap();
            let before = p.ttl();
            let after = p.decrement_ttl();
            prop_assert_eq!(after, before.checked_sub(1));
            let mut full = inc.clone();
            Ipv4Packet::new_checked(&mut full[..]).unwrap().fill_checksum();
            prop_assert_eq!(&inc, &full);
        }

        #[test]
        fn incremental_addresses_match_recompute(h in random_header(), s in any::<u32>(), d in any::<u32>()) {
            let mut inc = h.clone();
            let mut p = Ipv4Packet::new_checked(&mut inc[..]).unwrap();
            p.set_src(Ipv4Addr::from_bits(s));
            p.set_dst(Ipv4Addr::from_bits(d));
            let mut full = inc.clone();
            Ipv4Packet::new_checked(&mut full[..]).unwrap().fill_checksum();
            prop_assert_eq!(&inc, &full);
        }

        #[test]
        fn no_panic_on_any_input(mut data in proptest::collection::vec(any::<u8>(), 0..80), ver in any::<bool>()) {
            // Half the cases get version 4, so the later checks are reached.
            if ver && !data.is_empty() {
                data[0] = 0x40 | (data[0] & 0x0f);
            }
            if let Ok(p) = Ipv4Packet::new_checked(&data[..]) {
                let _ = (p.version(), p.dscp(), p.ecn(), p.ident(), p.dont_fragment(),
                    p.more_fragments(), p.frag_offset(), p.is_fragment(), p.ttl(), p.protocol(),
                    p.src(), p.dst(), p.has_options(), p.options(), p.checksum_ok());
                prop_assert_eq!(p.header_len() + p.payload().len() + p.padding_len(), data.len());
            }
            let mut copy = data.clone();
            if let Ok(mut p) = Ipv4Packet::new_checked(&mut copy[..]) {
                p.decrement_ttl();
                p.set_src(Ipv4Addr::LOCALHOST);
                p.fill_checksum();
                let _ = p.payload_mut();
            }
        }
    }
}
