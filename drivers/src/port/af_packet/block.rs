//! Walking the packets of one TPACKET_V3 receive block, in safe code.
//!
//! The kernel fills a block with packets back to back and hands it over
//! whole (its status gets TP_STATUS_USER); the ring module gives the block
//! to us as a byte slice only while we own it. Every offset in it (the
//! block's first-packet offset, each packet's next offset, MAC offset and
//! captured length) is the kernel's word: each is checked against the
//! block's bounds before use, and a packet that does not fit is reported
//! as [`BadBlock`], never read. The layouts are the UAPI structures of
//! `linux/if_packet.h` (`tpacket_block_desc`, `tpacket_hdr_v1`,
//! `tpacket3_hdr`, `sockaddr_ll`), taken from libc's definitions through
//! `offset_of!`, not retyped.

use std::mem::{offset_of, size_of};

/// Where the block header's fields are (`tpacket_block_desc.hdr.bh1`).
const BH1: usize = offset_of!(libc::tpacket_block_desc, hdr);
const NUM_PKTS: usize = BH1 + offset_of!(libc::tpacket_hdr_v1, num_pkts);
const FIRST_PKT: usize = BH1 + offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt);
/// Bytes of the block descriptor: no packet starts inside it.
const BLOCK_DESC_LEN: usize = size_of::<libc::tpacket_block_desc>();

/// A packet header's fields (`tpacket3_hdr`).
const NEXT: usize = offset_of!(libc::tpacket3_hdr, tp_next_offset);
const SNAPLEN: usize = offset_of!(libc::tpacket3_hdr, tp_snaplen);
const LEN: usize = offset_of!(libc::tpacket3_hdr, tp_len);
const STATUS: usize = offset_of!(libc::tpacket3_hdr, tp_status);
const MAC: usize = offset_of!(libc::tpacket3_hdr, tp_mac);
const VLAN_TCI: usize =
    offset_of!(libc::tpacket3_hdr, hv1) + offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tci);
const VLAN_TPID: usize =
    offset_of!(libc::tpacket3_hdr, hv1) + offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tpid);
/// The `sockaddr_ll` follows the header at the next TPACKET_ALIGNMENT
/// (16) boundary (`TPACKET_ALIGN(sizeof(struct tpacket3_hdr))`).
const SLL: usize = size_of::<libc::tpacket3_hdr>().next_multiple_of(libc::TPACKET_ALIGNMENT);
const PKTTYPE: usize = SLL + offset_of!(libc::sockaddr_ll, sll_pkttype);
/// Bytes a packet's headers take before its frame can start
/// (TPACKET3_HDRLEN): the header and the link-level address.
pub const PACKET_HDR_LEN: usize = libc::TPACKET3_HDRLEN;

/// The 802.1Q TPID the kernel means when it gives a tag without one
/// (TP_STATUS_VLAN_TPID_VALID clear): IEEE 802.1Q C-tag, 0x8100.
const TPID_8021Q: u16 = 0x8100;

/// Why a block (or the rest of it) cannot be walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadBlock {
    /// The block is shorter than its descriptor.
    ShortBlock,
    /// The first-packet offset points outside the block or into its
    /// descriptor.
    FirstOffset(u32),
    /// A packet header at this offset does not fit in the block.
    Header(usize),
    /// The frame (MAC offset plus captured length) of the packet at this
    /// offset does not fit in the block.
    Frame(usize),
    /// The next-packet offset of the packet at this offset is zero or
    /// leads outside the block while packets are left.
    Next(usize),
}

/// One packet of a block, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockPacket<'a> {
    /// The captured bytes, from the MAC header (at most the block's room).
    pub frame: &'a [u8],
    /// The frame's length on the wire; above `frame.len()` when the
    /// kernel cut it (tp_snaplen < tp_len).
    pub wire_len: u32,
    /// `sll_pkttype`: PACKET_HOST, PACKET_OUTGOING, ...
    pub pkttype: u8,
    /// The 802.1Q tag the kernel took off the frame (TP_STATUS_VLAN_VALID),
    /// as (TPID, TCI): it must be put back for the frame to be forwarded
    /// as it came.
    pub vlan: Option<(u16, u16)>,
    /// TP_STATUS_CSUMNOTREADY: the UDP or TCP checksum holds only the
    /// pseudo-header's sum (see [`super::partial_csum`]).
    pub csum_not_ready: bool,
}

impl BlockPacket<'_> {
    /// True when the kernel captured less than the frame's length.
    pub fn cut(&self) -> bool {
        (self.frame.len() as u64) < u64::from(self.wire_len)
    }

    /// The frame's length once its tag is back in.
    pub fn len_with_tag(&self) -> usize {
        self.frame.len() + if self.vlan.is_some() { 4 } else { 0 }
    }

    /// Copies the frame into `out` (which must be
    /// [`len_with_tag`](Self::len_with_tag) bytes long), putting the
    /// 802.1Q tag the kernel took off back after the two MAC addresses.
    /// False (and nothing meaningful written) if `out` has another
    /// length, or a tagged frame has no room for two addresses.
    pub fn copy_into(&self, out: &mut [u8]) -> bool {
        if out.len() != self.len_with_tag() {
            return false;
        }
        match self.vlan {
            None => out.copy_from_slice(self.frame),
            Some((tpid, tci)) => {
                // Destination and source MAC, then the tag (IEEE 802.1Q
                // clause 9: TPID, then TCI), then the rest.
                const ADDRS: usize = 12;
                let (Some(addrs), Some(rest)) = (self.frame.get(..ADDRS), self.frame.get(ADDRS..))
                else {
                    return false;
                };
                let (head, tail) = out.split_at_mut(ADDRS);
                head.copy_from_slice(addrs);
                let (tag, body) = tail.split_at_mut(4);
                tag[..2].copy_from_slice(&tpid.to_be_bytes());
                tag[2..].copy_from_slice(&tci.to_be_bytes());
                body.copy_from_slice(rest);
            }
        }
        true
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes(bytes.try_into().ok()?))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let bytes = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes(bytes.try_into().ok()?))
}

/// Where a walk through a block is: it keeps offsets only, so it can be
/// kept between two bursts while the block stays ours. The default walks
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockCursor {
    /// Offset of the next packet's header.
    at: usize,
    /// Packets left.
    left: u32,
}

impl BlockCursor {
    /// Starts a walk of `block` (the whole block, as mapped).
    pub fn new(block: &[u8]) -> Result<BlockCursor, BadBlock> {
        if block.len() < BLOCK_DESC_LEN {
            return Err(BadBlock::ShortBlock);
        }
        let (Some(left), Some(first)) = (u32_at(block, NUM_PKTS), u32_at(block, FIRST_PKT)) else {
            return Err(BadBlock::ShortBlock);
        };
        let at = first as usize;
        if left > 0 && (at < BLOCK_DESC_LEN || at >= block.len()) {
            return Err(BadBlock::FirstOffset(first));
        }
        Ok(BlockCursor { at, left })
    }

    /// Packets not walked yet.
    pub fn left(&self) -> u32 {
        self.left
    }

    /// The next packet of `block` (the same block as given to
    /// [`new`](Self::new)); `None` once every packet was walked. After an
    /// error the walk is over: the offsets after a bad one mean nothing.
    pub fn next<'a>(&mut self, block: &'a [u8]) -> Option<Result<BlockPacket<'a>, BadBlock>> {
        if self.left == 0 {
            return None;
        }
        let r = self.parse(block);
        match r {
            Ok((_, next)) => {
                self.left -= 1;
                self.at = next;
            }
            Err(_) => self.left = 0,
        }
        Some(r.map(|(p, _)| p))
    }

    /// The packet at `self.at` and the offset of the one after it.
    fn parse<'a>(&self, block: &'a [u8]) -> Result<(BlockPacket<'a>, usize), BadBlock> {
        let at = self.at;
        let hdr = at
            .checked_add(PACKET_HDR_LEN)
            .and_then(|end| block.get(at..end))
            .ok_or(BadBlock::Header(at))?;
        let field32 = |o| u32_at(hdr, o).ok_or(BadBlock::Header(at));
        let field16 = |o| u16_at(hdr, o).ok_or(BadBlock::Header(at));
        let (snaplen, wire_len, status) = (field32(SNAPLEN)?, field32(LEN)?, field32(STATUS)?);
        let mac = usize::from(field16(MAC)?);
        let pkttype = *hdr.get(PKTTYPE).ok_or(BadBlock::Header(at))?;
        // The frame must start after the headers and end in the block.
        if mac < PACKET_HDR_LEN {
            return Err(BadBlock::Frame(at));
        }
        let start = at + mac;
        let frame = start
            .checked_add(snaplen as usize)
            .and_then(|end| block.get(start..end))
            .ok_or(BadBlock::Frame(at))?;
        let vlan = if status & libc::TP_STATUS_VLAN_VALID != 0 {
            // tp_vlan_tci is a u32 in the UAPI; the TCI is its low 16 bits.
            let tci = field32(VLAN_TCI)? as u16;
            let tpid = match field16(VLAN_TPID)? {
                t if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 && t != 0 => t,
                _ => TPID_8021Q,
            };
            Some((tpid, tci))
        } else {
            None
        };
        let next = if self.left > 1 {
            let off = field32(NEXT)? as usize;
            // The next header starts after this one and inside the block.
            match at.checked_add(off) {
                Some(n) if off >= PACKET_HDR_LEN && n < block.len() => n,
                _ => return Err(BadBlock::Next(at)),
            }
        } else {
            at
        };
        Ok((
            BlockPacket {
                frame,
                wire_len,
                pkttype,
                vlan,
                csum_not_ready: status & libc::TP_STATUS_CSUMNOTREADY != 0,
            },
            next,
        ))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One packet to lay in a test block.
    pub(crate) struct TestPacket<'a> {
        pub frame: &'a [u8],
        pub wire_len: u32,
        pub pkttype: u8,
        pub vlan: Option<(u16, u16)>,
    }

    /// A block laid out as the kernel lays one: the descriptor, then each
    /// packet's header, its sockaddr_ll and its frame at a 16-aligned MAC
    /// offset, packets 16-aligned one after the other.
    pub(crate) fn block(size: usize, pkts: &[TestPacket]) -> Vec<u8> {
        let mut b = vec![0u8; size];
        let first = BLOCK_DESC_LEN.next_multiple_of(16);
        b[NUM_PKTS..NUM_PKTS + 4].copy_from_slice(&(pkts.len() as u32).to_ne_bytes());
        b[FIRST_PKT..FIRST_PKT + 4].copy_from_slice(&(first as u32).to_ne_bytes());
        let mut at = first;
        for (i, p) in pkts.iter().enumerate() {
            let mac = PACKET_HDR_LEN.next_multiple_of(16) + 2;
            let total = (mac + p.frame.len()).next_multiple_of(16);
            let next = if i + 1 < pkts.len() { total as u32 } else { 0 };
            let put32 = |b: &mut Vec<u8>, o: usize, v: u32| {
                b[at + o..at + o + 4].copy_from_slice(&v.to_ne_bytes())
            };
            put32(&mut b, NEXT, next);
            put32(&mut b, SNAPLEN, p.frame.len() as u32);
            put32(&mut b, LEN, p.wire_len);
            let mut status = libc::TP_STATUS_USER;
            if let Some((tpid, tci)) = p.vlan {
                status |= libc::TP_STATUS_VLAN_VALID | libc::TP_STATUS_VLAN_TPID_VALID;
                put32(&mut b, VLAN_TCI, u32::from(tci));
                b[at + VLAN_TPID..at + VLAN_TPID + 2].copy_from_slice(&tpid.to_ne_bytes());
            }
            put32(&mut b, STATUS, status);
            b[at + MAC..at + MAC + 2].copy_from_slice(&(mac as u16).to_ne_bytes());
            b[at + PKTTYPE] = p.pkttype;
            b[at + mac..at + mac + p.frame.len()].copy_from_slice(p.frame);
            at += total;
        }
        b
    }

    fn walk(b: &[u8]) -> Result<Vec<BlockPacket<'_>>, BadBlock> {
        let mut c = BlockCursor::new(b)?;
        let mut out = Vec::new();
        while let Some(p) = c.next(b) {
            out.push(p?);
        }
        Ok(out)
    }

    #[test]
    fn the_uapi_layout_is_the_one_documented() {
        // linux/if_packet.h: the block header starts after two u32s; a
        // packet header is 48 bytes, its sockaddr_ll (20) follows at 48.
        assert_eq!((NUM_PKTS, FIRST_PKT, BLOCK_DESC_LEN), (12, 16, 48));
        assert_eq!((SNAPLEN, LEN, STATUS, MAC), (12, 16, 20, 24));
        assert_eq!((VLAN_TCI, VLAN_TPID, SLL, PKTTYPE), (32, 36, 48, 58));
        assert_eq!(PACKET_HDR_LEN, 68);
    }

    #[test]
    fn packets_come_out_as_laid_with_their_tags_and_kinds() {
        let a: Vec<u8> = (0..60).collect();
        let c: Vec<u8> = (100..164).collect();
        let b = block(
            4096,
            &[
                TestPacket {
                    frame: &a,
                    wire_len: 60,
                    pkttype: libc::PACKET_HOST,
                    vlan: None,
                },
                TestPacket {
                    frame: &c[..40],
                    wire_len: 1500,
                    pkttype: libc::PACKET_OUTGOING,
                    vlan: None,
                },
                TestPacket {
                    frame: &c,
                    wire_len: 64,
                    pkttype: libc::PACKET_BROADCAST,
                    vlan: Some((0x88a8, 0x2064)),
                },
            ],
        );
        let pkts = walk(&b).unwrap();
        assert_eq!(pkts.len(), 3);
        assert_eq!((pkts[0].frame, pkts[0].cut()), (&a[..], false));
        assert_eq!(pkts[1].pkttype, libc::PACKET_OUTGOING);
        assert!(pkts[1].cut(), "40 of 1500 bytes captured");
        assert_eq!(pkts[2].vlan, Some((0x88a8, 0x2064)));
        // The tag goes back after the addresses: 12 bytes, 88 a8 20 64,
        // then the rest from byte 12 on.
        let mut out = vec![0u8; pkts[2].len_with_tag()];
        assert_eq!(out.len(), 68);
        assert!(pkts[2].copy_into(&mut out));
        assert_eq!(&out[..12], &c[..12]);
        assert_eq!(&out[12..16], &[0x88, 0xa8, 0x20, 0x64]);
        assert_eq!(&out[16..], &c[12..]);
        assert!(!pkts[0].copy_into(&mut out), "wrong length refused");
    }

    #[test]
    fn a_tag_without_a_tpid_is_8021q() {
        let f = [7u8; 20];
        let mut b = block(
            1024,
            &[TestPacket {
                frame: &f,
                wire_len: 20,
                pkttype: 0,
                vlan: Some((0, 5)),
            }],
        );
        let first = BLOCK_DESC_LEN.next_multiple_of(16);
        // TPID not valid: the kernel means 802.1Q.
        let st = u32_at(&b, first + STATUS).unwrap() & !libc::TP_STATUS_VLAN_TPID_VALID;
        b[first + STATUS..first + STATUS + 4].copy_from_slice(&st.to_ne_bytes());
        assert_eq!(walk(&b).unwrap()[0].vlan, Some((0x8100, 5)));
    }

    #[test]
    fn offsets_outside_the_block_are_refused() {
        let f = [1u8; 100];
        let pkt = |frame| TestPacket {
            frame,
            wire_len: 100,
            pkttype: 0,
            vlan: None,
        };
        let good = block(1024, &[pkt(&f), pkt(&f)]);
        let first = BLOCK_DESC_LEN.next_multiple_of(16);
        // First packet offset past the end, or inside the descriptor.
        for bad_first in [1024u32, 4000, 8] {
            let mut b = good.clone();
            b[FIRST_PKT..FIRST_PKT + 4].copy_from_slice(&bad_first.to_ne_bytes());
            assert_eq!(walk(&b).unwrap_err(), BadBlock::FirstOffset(bad_first));
        }
        // A captured length running off the end.
        let mut b = good.clone();
        b[first + SNAPLEN..first + SNAPLEN + 4].copy_from_slice(&2000u32.to_ne_bytes());
        assert_eq!(walk(&b).unwrap_err(), BadBlock::Frame(first));
        // A MAC offset inside the header.
        let mut b = good.clone();
        b[first + MAC..first + MAC + 2].copy_from_slice(&10u16.to_ne_bytes());
        assert_eq!(walk(&b).unwrap_err(), BadBlock::Frame(first));
        // A next offset of zero (the same packet again) or past the end.
        for bad_next in [0u32, 5000, u32::MAX] {
            let mut b = good.clone();
            b[first + NEXT..first + NEXT + 4].copy_from_slice(&bad_next.to_ne_bytes());
            assert_eq!(walk(&b).unwrap_err(), BadBlock::Next(first));
        }
        // More packets claimed than laid: the third header is all zero
        // (MAC offset 0) and is refused, the first two come out.
        let mut b = good.clone();
        b[NUM_PKTS..NUM_PKTS + 4].copy_from_slice(&3u32.to_ne_bytes());
        let second = first + (PACKET_HDR_LEN.next_multiple_of(16) + 2 + 100).next_multiple_of(16);
        b[second + NEXT..second + NEXT + 4].copy_from_slice(&200u32.to_ne_bytes());
        let mut c = BlockCursor::new(&b).unwrap();
        assert!(c.next(&b).unwrap().is_ok());
        assert!(c.next(&b).unwrap().is_ok());
        assert_eq!(c.next(&b), Some(Err(BadBlock::Frame(second + 200))));
        assert_eq!(c.next(&b), None, "the walk ends at a bad packet");
        // A block shorter than its descriptor; an empty one.
        assert_eq!(BlockCursor::new(&good[..40]), Err(BadBlock::ShortBlock));
        assert_eq!(walk(&block(256, &[])).unwrap(), vec![]);
    }

    proptest! {
        /// Any bytes: no panic, every packet given lies in the block, and
        /// the walk ends within the count the block claims.
        #[test]
        fn any_block_walks_without_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(mut c) = BlockCursor::new(&b) {
                let claimed = c.left();
                let mut n = 0u32;
                let base = b.as_ptr() as usize;
                while let Some(p) = c.next(&b) {
                    n += 1;
                    if let Ok(p) = p {
                        let at = p.frame.as_ptr() as usize - base;
                        prop_assert!(at + p.frame.len() <= b.len());
                    }
                }
                prop_assert!(n <= claimed);
            }
        }

        /// Blocks laid out as the kernel does walk back to what was laid.
        #[test]
        fn laid_blocks_walk_back(frames in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 14..200), any::<bool>(), any::<u16>()), 0..12)
        ) {
            let pkts: Vec<TestPacket> = frames.iter().map(|(f, tagged, tci)| TestPacket {
                frame: f,
                wire_len: f.len() as u32,
                pkttype: 0,
                vlan: tagged.then_some((0x8100, *tci)),
            }).collect();
            let b = block(8192, &pkts);
            let got = walk(&b).unwrap();
            prop_assert_eq!(got.len(), pkts.len());
            for (g, (f, tagged, tci)) in got.iter().zip(&frames) {
                prop_assert_eq!(g.frame, &f[..]);
                prop_assert_eq!(g.vlan, tagged.then_some((0x8100, *tci)));
                prop_assert!(!g.cut());
            }
        }
    }
}
