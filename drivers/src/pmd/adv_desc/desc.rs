//! Advanced descriptor layouts (16 bytes, little-endian) and the DMA memory
//! that holds a ring of them.
//!
//! Layouts: nic-facts.md A.4 (ixgbe) and nic-facts-igbvf.md C.4 (igb); the
//! byte positions are the same in both families (C.11), only some status and
//! error bit meanings differ, and those live in [`super::Flavor`].

use crate::memory::{ArenaError, DmaArena, DmaSlice, Iova};
use std::ptr::NonNull;

/// Bytes per descriptor (nic-facts-igbvf.md C.4, nic-facts.md A.4).
pub const DESC_SIZE: usize = 16;
/// Ring base alignment and length granule: 128 bytes, i.e. 8 descriptors
/// (nic-facts-igbvf.md C.8 "ring size", C.11 "ring length rule").
pub const RING_ALIGN: usize = 128;
/// Descriptors per 128-byte granule.
pub const DESC_MULTIPLE: usize = RING_ALIGN / DESC_SIZE;
/// Largest ring (DPDK and Linux limit, nic-facts-igbvf.md C.8).
pub const MAX_RING: usize = 4096;

/// RX write-back status bits shared by both families (nic-facts-igbvf.md
/// C.4.1, C.11): descriptor done.
pub const RXD_STAT_DD: u32 = 0x01;
/// End of packet.
pub const RXD_STAT_EOP: u32 = 0x02;
/// VLAN tag stripped into the vlan field.
pub const RXD_STAT_VP: u32 = 0x08;
/// UDP checksum computed.
pub const RXD_STAT_UDPCS: u32 = 0x10;
/// L4 (TCP/UDP) checksum computed.
pub const RXD_STAT_L4CS: u32 = 0x20;
/// IPv4 header checksum computed.
pub const RXD_STAT_IPCS: u32 = 0x40;
/// Loopback: the frame came from another pool of the same port
/// (nic-facts-igbvf.md C.4.1, same bit in both families).
pub const RXD_STAT_LB: u32 = 0x0004_0000;
/// pkt_info bits 3:0: RSS type, 0 = no hash (C.4.1).
pub const RXD_RSS_TYPE_MASK: u16 = 0x000F;

/// TX data descriptor type (nic-facts-igbvf.md C.4.2, A.4.3).
pub const TXD_DTYP_DATA: u32 = 0x0030_0000;
/// End of packet.
pub const TXD_CMD_EOP: u32 = 0x0100_0000;
/// Insert FCS.
pub const TXD_CMD_IFCS: u32 = 0x0200_0000;
/// Report status (write DD back).
pub const TXD_CMD_RS: u32 = 0x0800_0000;
/// Descriptor extension: advanced format.
pub const TXD_CMD_DEXT: u32 = 0x2000_0000;
/// DTALEN: bytes in this buffer, bits 15:0.
pub const TXD_DTALEN_MASK: u32 = 0xFFFF;
/// olinfo_status: DD on write-back (bit 0).
pub const TXD_STAT_DD: u32 = 0x01;
/// olinfo_status: PAYLEN shift (bits 31:14).
pub const TXD_PAYLEN_SHIFT: u32 = 14;

/// One descriptor as four little-endian dwords, as it sits in memory.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawDesc(pub [u32; 4]);

const _: () = assert!(std::mem::size_of::<RawDesc>() == DESC_SIZE);

impl RawDesc {
    /// From four dwords in host order (stored little-endian).
    pub fn from_dwords(d: [u32; 4]) -> RawDesc {
        RawDesc(d.map(u32::to_le))
    }

    /// The four dwords in host order.
    pub fn dwords(&self) -> [u32; 4] {
        self.0.map(u32::from_le)
    }

    /// The 16 bytes as the device sees them.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        for (i, d) in self.dwords().iter().enumerate() {
            out[4 * i..4 * i + 4].copy_from_slice(&d.to_le_bytes());
        }
        out
    }
}

/// RX descriptor, read format (software to device): nic-facts.md A.4.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxRead {
    /// Packet buffer address (bytes 0..7).
    pub pkt_addr: u64,
    /// Header buffer address (bytes 8..15); 0 without header split. Writing
    /// it also clears DD, which overlaps it (nic-facts-igbvf.md C.4.1).
    pub hdr_addr: u64,
}

impl RxRead {
    /// The descriptor bytes.
    pub fn encode(&self) -> RawDesc {
        RawDesc::from_dwords([
            self.pkt_addr as u32,
            (self.pkt_addr >> 32) as u32,
            self.hdr_addr as u32,
            (self.hdr_addr >> 32) as u32,
        ])
    }
}

/// RX descriptor, write-back format (device to software): nic-facts.md
/// A.4.2, nic-facts-igbvf.md C.4.1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxWriteBack {
    /// Bytes 0..1: RSS type (3:0) and packet type (15:4).
    pub pkt_info: u16,
    /// Bytes 2..3: header length and SPH.
    pub hdr_info: u16,
    /// Bytes 4..7: RSS hash, or ip_id and checksum.
    pub rss: u32,
    /// Bytes 8..11: status (19:0) and errors (31:20).
    pub status_error: u32,
    /// Bytes 12..13: bytes written to this buffer.
    pub length: u16,
    /// Bytes 14..15: stripped VLAN tag when VP is set.
    pub vlan: u16,
}

impl RxWriteBack {
    /// Parse the descriptor bytes.
    pub fn decode(raw: RawDesc) -> RxWriteBack {
        let [d0, d1, d2, d3] = raw.dwords();
        RxWriteBack {
            pkt_info: d0 as u16,
            hdr_info: (d0 >> 16) as u16,
            rss: d1,
            status_error: d2,
            length: d3 as u16,
            vlan: (d3 >> 16) as u16,
        }
    }

    /// The descriptor bytes (what a device writes).
    pub fn encode(&self) -> RawDesc {
        RawDesc::from_dwords([
            self.pkt_info as u32 | (self.hdr_info as u32) << 16,
            self.rss,
            self.status_error,
            self.length as u32 | (self.vlan as u32) << 16,
        ])
    }
}

/// TX data descriptor (DTYP = data): nic-facts.md A.4.3,
/// nic-facts-igbvf.md C.4.2.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxData {
    /// Bytes 0..7: buffer address.
    pub buffer_addr: u64,
    /// Bytes 8..11: DTALEN, MAC, DTYP, DCMD.
    pub cmd_type_len: u32,
    /// Bytes 12..15: STA, IDX, CC, POPTS, PAYLEN.
    pub olinfo_status: u32,
}

impl TxData {
    /// The descriptor bytes.
    pub fn encode(&self) -> RawDesc {
        RawDesc::from_dwords([
            self.buffer_addr as u32,
            (self.buffer_addr >> 32) as u32,
            self.cmd_type_len,
            self.olinfo_status,
        ])
    }

    /// Parse the descriptor bytes.
    pub fn decode(raw: RawDesc) -> TxData {
        let [d0, d1, d2, d3] = raw.dwords();
        TxData {
            buffer_addr: d0 as u64 | (d1 as u64) << 32,
            cmd_type_len: d2,
            olinfo_status: d3,
        }
    }
}

/// TX context descriptor type (nic-facts.md A.4.4).
pub const TXD_DTYP_CTXT: u32 = 0x0020_0000;
/// Context MACLEN shift in vlan_macip_lens, bits 15:9 (A.4.4).
pub const TXCTX_MACLEN_SHIFT: u32 = 9;
/// Context TUCMD L4T = reserved: no L4 offload (A.4.4).
pub const TXCTX_L4T_RSV: u32 = 0x1800;

/// TX context descriptor (DTYP = context): nic-facts.md A.4.4. A data
/// descriptor with CC set uses the context in slot IDX; ixgbevf needs one
/// before its first data descriptor (A.4.3 CC, A.8 #3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxContext {
    /// Bytes 0..3: IPLEN, MACLEN, VLAN tag.
    pub vlan_macip_lens: u32,
    /// Bytes 4..7: IPsec SA index and the like; 0 normally.
    pub seqnum_seed: u32,
    /// Bytes 8..11: TUCMD, DTYP, DEXT.
    pub type_tucmd_mlhl: u32,
    /// Bytes 12..15: IDX, L4LEN, MSS.
    pub mss_l4len_idx: u32,
}

impl TxContext {
    /// The default context DPDK's VF writes in slot 0 of a TX ring:
    /// MACLEN 14, L4T reserved, no offloads, IDX 0 (A.7.1 step 8).
    pub const fn plain() -> TxContext {
        TxContext {
            vlan_macip_lens: 14 << TXCTX_MACLEN_SHIFT,
            seqnum_seed: 0,
            type_tucmd_mlhl: TXCTX_L4T_RSV | TXD_DTYP_CTXT | TXD_CMD_DEXT,
            mss_l4len_idx: 0,
        }
    }

    /// The descriptor bytes.
    pub fn encode(&self) -> RawDesc {
        RawDesc::from_dwords([
            self.vlan_macip_lens,
            self.seqnum_seed,
            self.type_tucmd_mlhl,
            self.mss_l4len_idx,
        ])
    }

    /// Parse the descriptor bytes.
    pub fn decode(raw: RawDesc) -> TxContext {
        let [d0, d1, d2, d3] = raw.dwords();
        TxContext {
            vlan_macip_lens: d0,
            seqnum_seed: d1,
            type_tucmd_mlhl: d2,
            mss_l4len_idx: d3,
        }
    }
}

/// Why a descriptor ring could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    /// The descriptor count breaks the hardware's rules.
    #[error("ring of {0} descriptors: must be a multiple of {DESC_MULTIPLE} between {DESC_MULTIPLE} and {MAX_RING}")]
    BadCount(usize),
    /// The pool's buffers are too small for the device.
    #[error("buffers of {0} bytes are too small: the device needs at least 1024")]
    BufferTooSmall(usize),
    /// Descriptor memory could not be had.
    #[error("descriptor memory: {0}")]
    Memory(#[from] ArenaError),
}

/// A ring of descriptors in DMA memory. The device reads and writes it
/// behind the compiler's back, so every access is volatile.
#[derive(Debug)]
pub struct DescRing {
    mem: DmaSlice,
    base: NonNull<RawDesc>,
    count: usize,
}

// SAFETY: DescRing owns its slice; `base` points into it and is only used
// through `&self`/`&mut self` methods doing volatile accesses, so moving the
// ring to another thread is as sound as moving the region.
unsafe impl Send for DescRing {}

impl DescRing {
    /// A zeroed ring of `count` descriptors carved from `arena` (one
    /// mapping for all of a port's rings), its base 128-byte aligned in
    /// memory and on the bus.
    pub fn new(count: usize, arena: &DmaArena) -> Result<DescRing, RingError> {
        if count == 0 || !count.is_multiple_of(DESC_MULTIPLE) || count > MAX_RING {
            return Err(RingError::BadCount(count));
        }
        let mem = arena.carve(count * DESC_SIZE, RING_ALIGN)?;
        let base = mem.as_ptr().cast::<RawDesc>();
        Ok(DescRing { mem, base, count })
    }

    /// Bytes of descriptor memory a ring of `count` descriptors takes in
    /// an arena, alignment included.
    pub const fn arena_bytes(count: usize) -> usize {
        (count * DESC_SIZE).next_multiple_of(RING_ALIGN)
    }

    /// Number of descriptors.
    #[inline(always)]
    pub fn count(&self) -> usize {
        self.count
    }

    /// Ring length in bytes (what RDLEN/TDLEN take).
    pub fn len_bytes(&self) -> u32 {
        (self.count * DESC_SIZE) as u32
    }

    /// The DMA memory holding the descriptors.
    pub fn memory(&self) -> &DmaSlice {
        &self.mem
    }

    /// Device address of descriptor 0.
    pub fn iova(&self) -> Iova {
        self.mem.iova()
    }

    /// Write descriptor `i` (the device may read it once the tail passes it).
    #[inline(always)]
    pub fn write(&self, i: usize, d: RawDesc) {
        assert!(i < self.count);
        // SAFETY: i < count and the region holds count descriptors, aligned
        // to 16 bytes (page-aligned base); volatile because the device reads
        // this memory.
        unsafe { self.base.as_ptr().add(i).write_volatile(d) }
    }

    /// Read dword `w` (0..4) of descriptor `i`, as the device left it.
    #[inline(always)]
    pub fn read_dword(&self, i: usize, w: usize) -> u32 {
        assert!(i < self.count && w < 4);
        // SAFETY: in bounds as above; a 4-byte aligned dword inside a
        // 16-byte aligned descriptor. Volatile: the device writes it.
        let v = unsafe {
            self.base
                .as_ptr()
                .add(i)
                .cast::<u32>()
                .add(w)
                .read_volatile()
        };
        u32::from_le(v)
    }

    /// Read all of descriptor `i`.
    #[inline(always)]
    pub fn read(&self, i: usize) -> RawDesc {
        assert!(i < self.count);
        // SAFETY: in bounds and aligned as in `write`; volatile because the
        // device writes this memory.
        unsafe { self.base.as_ptr().add(i).read_volatile() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_context_descriptor_has_the_a44_layout() {
        // Written out from A.4.4 / A.7.1 step 8: MACLEN 14 at bit 9,
        // L4T RSV 0x1800, DTYP 0x2 at bits 23:20, DEXT bit 29.
        let raw = TxContext::plain().encode();
        assert_eq!(raw.dwords(), [0x0000_1C00, 0, 0x2020_1800, 0]);
        assert_eq!(TxContext::decode(raw), TxContext::plain());
    }

    #[test]
    fn rx_read_bytes() {
        let d = RxRead {
            pkt_addr: 0x1122_3344_5566_7788,
            hdr_addr: 0,
        }
        .encode();
        assert_eq!(
            d.to_bytes(),
            [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn rx_write_back_bytes() {
        let wb = RxWriteBack {
            pkt_info: 0x0112,
            hdr_info: 0x3344,
            rss: 0xAABB_CCDD,
            status_error: 0x8000_0003,
            length: 0x05DC,
            vlan: 0x0064,
        };
        let raw = wb.encode();
        assert_eq!(
            raw.to_bytes(),
            [
                0x12, 0x01, 0x44, 0x33, 0xDD, 0xCC, 0xBB, 0xAA, 0x03, 0, 0, 0x80, 0xDC, 0x05, 0x64,
                0
            ]
        );
        assert_eq!(RxWriteBack::decode(raw), wb);
    }

    #[test]
    fn tx_data_bytes() {
        let len = 60u32;
        let d = TxData {
            buffer_addr: 0x0000_0001_2345_6780,
            cmd_type_len: len
                | TXD_DTYP_DATA
                | TXD_CMD_EOP
                | TXD_CMD_IFCS
                | TXD_CMD_RS
                | TXD_CMD_DEXT,
            olinfo_status: len << TXD_PAYLEN_SHIFT,
        };
        // cmd_type_len = 0x2B30003C, olinfo = 60 << 14 = 0x000F0000.
        assert_eq!(
            d.encode().to_bytes(),
            [
                0x80, 0x67, 0x45, 0x23, 0x01, 0, 0, 0, 0x3C, 0x00, 0x30, 0x2B, 0x00, 0x00, 0x0F,
                0x00
            ]
        );
        assert_eq!(TxData::decode(d.encode()), d);
    }

    #[test]
    fn ring_rules() {
        let mapper: std::sync::Arc<dyn crate::memory::DmaMapper> =
            std::sync::Arc::new(crate::memory::TestMapper::at(0x1_0000_0040));
        let arena =
            DmaArena::new(64 << 10, &crate::memory::MemoryBacking::NoHuge, &mapper).unwrap();
        assert!(matches!(
            DescRing::new(12, &arena),
            Err(RingError::BadCount(12))
        ));
        assert!(DescRing::new(8192, &arena).is_err());
        let first = DescRing::new(8, &arena).unwrap();
        let r = DescRing::new(64, &arena).unwrap();
        assert_eq!(r.len_bytes(), 1024);
        assert_eq!(r.iova().get() % 128, 0);
        assert_eq!(r.iova().get(), first.iova().get() + 128);
        r.write(
            3,
            RxRead {
                pkt_addr: 7,
                hdr_addr: 0,
            }
            .encode(),
        );
        assert_eq!(r.read_dword(3, 0), 7);
    }
}
