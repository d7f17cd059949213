//! The packet buffer.
//!
//! Each buffer is one element of a pool's DMA region:
//!
//! ```text
//! | MbufHeader (64 B) | headroom (128 B default) | data room (2048 B default) |
//! ^ Mbuf points here   ^ buf_iova                 ^ data starts at data_off
//! ```
//!
//! The header holds the metadata a driver and the pipeline need (length,
//! port, RSS hash, offload flags) and the index of the pool the buffer
//! belongs to. An [`Mbuf`] is a unique owner of one buffer: it is `Send`,
//! moves between threads through rings, and is never cloned or reference
//! counted. Dropping an `Mbuf` returns it to its pool (slowly, through the
//! pool registry); the fast path frees through a per-core
//! [`crate::pool::PoolCache`] instead.

use crate::memory::Iova;
use std::fmt;
use std::ptr::NonNull;

/// Bytes of metadata in front of every buffer: one cache line.
pub const HEADER_SIZE: usize = 64;
/// Default headroom (DPDK's RTE_PKTMBUF_HEADROOM), room to prepend headers.
pub const DEFAULT_HEADROOM: u16 = 128;
/// Default data room (DPDK's RTE_MBUF_DEFAULT_DATAROOM): a standard frame
/// fits in one buffer on every NIC.
pub const DEFAULT_DATA_ROOM: u16 = 2048;

/// Which pool a buffer belongs to: an index into the pool registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolId(pub u16);

impl fmt::Display for PoolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pool{}", self.0)
    }
}

/// A port number as the data path sees it (index into the port table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PortId(pub u16);

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Offload and status flags a driver sets on receive (or the pipeline asks
/// of the driver on transmit). Bit meanings follow DPDK's RTE_MBUF_F_* names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OlFlags(pub u64);

impl OlFlags {
    /// No flag set.
    pub const NONE: OlFlags = OlFlags(0);
    /// The RSS hash field is valid.
    pub const RX_RSS_HASH: OlFlags = OlFlags(1 << 1);
    /// The NIC checked the IPv4 header checksum and it was good.
    pub const RX_IP_CKSUM_GOOD: OlFlags = OlFlags(1 << 7);
    /// The NIC checked the IPv4 header checksum and it was bad.
    pub const RX_IP_CKSUM_BAD: OlFlags = OlFlags(1 << 4);
    /// The NIC checked the L4 checksum and it was good.
    pub const RX_L4_CKSUM_GOOD: OlFlags = OlFlags(1 << 8);
    /// The NIC checked the L4 checksum and it was bad.
    pub const RX_L4_CKSUM_BAD: OlFlags = OlFlags(1 << 3);
    /// The NIC stripped a VLAN tag into `vlan_tci`.
    pub const RX_VLAN_STRIPPED: OlFlags = OlFlags(1 << 6);

    /// True if every bit of `other` is set.
    pub fn contains(self, other: OlFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for OlFlags {
    type Output = OlFlags;
    fn bitor(self, rhs: OlFlags) -> OlFlags {
        OlFlags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for OlFlags {
    fn bitor_assign(&mut self, rhs: OlFlags) {
        self.0 |= rhs.0;
    }
}

/// The metadata at the start of every buffer element.
#[repr(C, align(64))]
#[derive(Debug)]
pub(crate) struct MbufHeader {
    /// IOVA of the first byte after the header (the start of the headroom).
    pub(crate) buf_iova: u64,
    /// Index of this buffer in its pool.
    pub(crate) index: u32,
    /// Headroom plus data room.
    pub(crate) buf_len: u16,
    /// Headroom the pool was configured with (restored on reset).
    pub(crate) headroom: u16,
    // The fields a receive resets, in this order, from RX_ZERO_OFFSET on:
    // 16 bytes of zeros, then the quad (see `Mbuf::reset_received`).
    pub(crate) ol_flags: u64,
    pub(crate) rss_hash: u32,
    pub(crate) vlan_tci: u16,
    /// Always zero (written with its neighbours).
    pub(crate) _pad: u16,
    pub(crate) pool: PoolId,
    pub(crate) port: PortId,
    /// Offset of the first data byte from the start of the headroom.
    pub(crate) data_off: u16,
    pub(crate) data_len: u16,
}

const _: () = assert!(std::mem::size_of::<MbufHeader>() == HEADER_SIZE);

/// Offset of ol_flags, rss_hash, vlan_tci and the pad, which
/// [`Mbuf::reset_received`] zeroes with one 16-byte store.
const RX_ZERO_OFFSET: usize = std::mem::offset_of!(MbufHeader, ol_flags);
/// Offset of the four u16 fields [`Mbuf::reset_received`] writes at once.
const RX_QUAD_OFFSET: usize = std::mem::offset_of!(MbufHeader, pool);
const _: () = assert!(
    RX_QUAD_OFFSET.is_multiple_of(8)
        && RX_ZERO_OFFSET.is_multiple_of(16)
        && std::mem::offset_of!(MbufHeader, rss_hash) == RX_ZERO_OFFSET + 8
        && std::mem::offset_of!(MbufHeader, vlan_tci) == RX_ZERO_OFFSET + 12
        && std::mem::offset_of!(MbufHeader, _pad) == RX_ZERO_OFFSET + 14
        && RX_QUAD_OFFSET == RX_ZERO_OFFSET + 16
        && std::mem::offset_of!(MbufHeader, port) == RX_QUAD_OFFSET + 2
        && std::mem::offset_of!(MbufHeader, data_off) == RX_QUAD_OFFSET + 4
        && std::mem::offset_of!(MbufHeader, data_len) == RX_QUAD_OFFSET + 6
);

/// Pool id, port, data offset and data length of a received buffer, as
/// the 8 bytes they take in the header (see [`Mbuf::reset_received`]):
/// built once per burst, stored with one instruction per buffer (written
/// as four fields, or as an array of four, the compiler kept four 2-byte
/// stores).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RxQuad(u64);

impl RxQuad {
    /// The word for these four fields, in the header's byte order.
    #[inline(always)]
    pub(crate) fn new(pool: PoolId, port: PortId, data_off: u16, len: u16) -> RxQuad {
        let mut b = [0u8; 8];
        b[0..2].copy_from_slice(&pool.0.to_ne_bytes());
        b[2..4].copy_from_slice(&port.0.to_ne_bytes());
        b[4..6].copy_from_slice(&data_off.to_ne_bytes());
        b[6..8].copy_from_slice(&len.to_ne_bytes());
        RxQuad(u64::from_ne_bytes(b))
    }
}

/// One packet buffer, owned.
pub struct Mbuf(NonNull<MbufHeader>);

// SAFETY: an Mbuf is the unique owner of its buffer element (pools hand each
// element to one owner at a time and take it back by value), and the pool's
// memory outlives every outstanding buffer (see `pool`), so moving the owner
// to another thread is sound.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Wrap a header pointer. Only pools create buffers.
    ///
    /// # Safety
    /// `hdr` points at an initialised header of a live pool element that no
    /// other `Mbuf` owns.
    #[inline(always)]
    pub(crate) unsafe fn from_header(hdr: NonNull<MbufHeader>) -> Mbuf {
        Mbuf(hdr)
    }

    /// Give up ownership without running `Drop` (pools take buffers back).
    #[inline(always)]
    pub(crate) fn into_header(self) -> NonNull<MbufHeader> {
        let hdr = self.0;
        std::mem::forget(self);
        hdr
    }

    #[inline(always)]
    pub(crate) fn hdr(&self) -> &MbufHeader {
        // SAFETY: `self` owns a live element (from_header's contract) and
        // `&self` rules out a concurrent `&mut` through this owner.
        unsafe { self.0.as_ref() }
    }

    #[inline(always)]
    pub(crate) fn hdr_mut(&mut self) -> &mut MbufHeader {
        // SAFETY: as in `hdr`, and `&mut self` makes the access exclusive.
        unsafe { self.0.as_mut() }
    }

    /// The header's address, for a pool to tell whether its memory holds
    /// this buffer without reading the header.
    #[inline(always)]
    pub(crate) fn header_addr(&self) -> usize {
        self.0.as_ptr() as usize
    }

    /// Pointer to the start of the headroom.
    #[inline(always)]
    fn buf_ptr(&self) -> *mut u8 {
        // SAFETY: the element is HEADER_SIZE + buf_len bytes, so the byte
        // right after the header is inside it.
        unsafe { self.0.as_ptr().cast::<u8>().add(HEADER_SIZE) }
    }

    /// Reset the metadata to a fresh buffer: empty, full headroom, no flags.
    #[inline(always)]
    pub fn reset(&mut self) {
        let h = self.hdr_mut();
        h.data_off = h.headroom;
        h.data_len = 0;
        h.ol_flags = 0;
        h.rss_hash = 0;
        h.vlan_tci = 0;
        h.port = PortId(u16::MAX);
    }

    /// Reset the metadata to a fresh buffer that holds `len` bytes received
    /// on `port`, as [`RxQuad`] gives them: what `reset`, `set_len` and
    /// `set_port` do one after the other, as stores only. The three calls
    /// read the header back (headroom, then data_off and buf_len for the
    /// room check) and wrote length and port twice; here the caller has
    /// checked `len` against the pool's data room once per burst.
    #[inline(always)]
    pub(crate) fn reset_received(&mut self, quad: RxQuad) {
        let base = self.0.as_ptr().cast::<u8>();
        // SAFETY: MbufHeader is repr(C) with ol_flags, rss_hash, vlan_tci
        // and _pad filling the 16 bytes at the 16-aligned RX_ZERO_OFFSET,
        // then pool, port, data_off and data_len the 8 bytes after
        // (asserted there), so the three aligned 8-byte stores (two of
        // zeros, then the quad) lie inside the header
        // `self` owns exclusively (`&mut self`), and every bit pattern is
        // valid for those integer fields; the pointers are derived from
        // the whole header's.
        unsafe {
            base.add(RX_ZERO_OFFSET).cast::<u64>().write(0);
            base.add(RX_ZERO_OFFSET + 8).cast::<u64>().write(0);
            base.add(RX_QUAD_OFFSET).cast::<u64>().write(quad.0);
        }
    }

    /// The pool this buffer belongs to.
    #[inline(always)]
    pub fn pool_id(&self) -> PoolId {
        self.hdr().pool
    }

    /// Index of this buffer within its pool.
    #[inline(always)]
    pub fn index(&self) -> u32 {
        self.hdr().index
    }

    /// Bytes of packet data.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.hdr().data_len as usize
    }

    /// True when the buffer holds no data.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Free bytes in front of the data.
    #[inline(always)]
    pub fn headroom(&self) -> usize {
        self.hdr().data_off as usize
    }

    /// Free bytes after the data.
    #[inline(always)]
    pub fn tailroom(&self) -> usize {
        let h = self.hdr();
        h.buf_len as usize - h.data_off as usize - h.data_len as usize
    }

    /// The packet data.
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        let h = self.hdr();
        // SAFETY: data_off + data_len <= buf_len is kept by every setter, so
        // the range lies inside this element, which `self` owns.
        unsafe {
            std::slice::from_raw_parts(self.buf_ptr().add(h.data_off as usize), h.data_len as usize)
        }
    }

    /// The packet data, writable.
    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let (off, len) = (self.hdr().data_off as usize, self.hdr().data_len as usize);
        // SAFETY: as in `data`; `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.buf_ptr().add(off), len) }
    }

    /// Set the data length, keeping the start. Fails (and changes nothing)
    /// if `len` exceeds what the buffer can hold from the current start.
    #[inline(always)]
    pub fn set_len(&mut self, len: usize) -> Result<(), MbufError> {
        let h = self.hdr_mut();
        let room = h.buf_len as usize - h.data_off as usize;
        if len > room {
            return Err(MbufError::NoRoom { wanted: len, room });
        }
        h.data_len = len as u16;
        Ok(())
    }

    /// Grow the data by `n` bytes at the end; returns the new bytes.
    pub fn append(&mut self, n: usize) -> Result<&mut [u8], MbufError> {
        let old = self.len();
        self.set_len(old + n)?;
        Ok(&mut self.data_mut()[old..])
    }

    /// Grow the data by `n` bytes at the front (into the headroom); returns
    /// the whole data, starting with the new bytes.
    pub fn prepend(&mut self, n: usize) -> Result<&mut [u8], MbufError> {
        let h = self.hdr_mut();
        if n > h.data_off as usize {
            return Err(MbufError::NoRoom {
                wanted: n,
                room: h.data_off as usize,
            });
        }
        h.data_off -= n as u16;
        h.data_len += n as u16;
        Ok(self.data_mut())
    }

    /// Remove `n` bytes from the front (e.g. a decapsulated header).
    pub fn adj(&mut self, n: usize) -> Result<(), MbufError> {
        let h = self.hdr_mut();
        if n > h.data_len as usize {
            return Err(MbufError::TooShort {
                wanted: n,
                len: h.data_len as usize,
            });
        }
        h.data_off += n as u16;
        h.data_len -= n as u16;
        Ok(())
    }

    /// Remove `n` bytes from the end.
    pub fn trim(&mut self, n: usize) -> Result<(), MbufError> {
        let h = self.hdr_mut();
        if n > h.data_len as usize {
            return Err(MbufError::TooShort {
                wanted: n,
                len: h.data_len as usize,
            });
        }
        h.data_len -= n as u16;
        Ok(())
    }

    /// The port the packet came in on (or is bound for).
    #[inline(always)]
    pub fn port(&self) -> PortId {
        self.hdr().port
    }

    /// Set the port.
    #[inline(always)]
    pub fn set_port(&mut self, port: PortId) {
        self.hdr_mut().port = port;
    }

    /// RSS hash from the NIC (valid when `RX_RSS_HASH` is set).
    #[inline(always)]
    pub fn rss_hash(&self) -> u32 {
        self.hdr().rss_hash
    }

    /// Set the RSS hash and its flag.
    #[inline(always)]
    pub fn set_rss_hash(&mut self, hash: u32) {
        let h = self.hdr_mut();
        h.rss_hash = hash;
        h.ol_flags |= OlFlags::RX_RSS_HASH.0;
    }

    /// Offload flags.
    #[inline(always)]
    pub fn ol_flags(&self) -> OlFlags {
        OlFlags(self.hdr().ol_flags)
    }

    /// Replace the offload flags.
    #[inline(always)]
    pub fn set_ol_flags(&mut self, flags: OlFlags) {
        self.hdr_mut().ol_flags = flags.0;
    }

    /// VLAN tag stripped by the NIC (valid when `RX_VLAN_STRIPPED` is set).
    #[inline(always)]
    pub fn vlan_tci(&self) -> u16 {
        self.hdr().vlan_tci
    }

    /// Set the stripped VLAN tag.
    #[inline(always)]
    pub fn set_vlan_tci(&mut self, tci: u16) {
        self.hdr_mut().vlan_tci = tci;
    }

    /// IOVA of the first data byte: what a device reads or writes.
    #[inline(always)]
    pub fn data_iova(&self) -> Iova {
        let h = self.hdr();
        Iova::new(h.buf_iova + h.data_off as u64)
    }

    /// IOVA of the start of the headroom (where a NIC may write a whole
    /// buffer's worth when the headroom is given to it).
    #[inline(always)]
    pub fn buf_iova(&self) -> Iova {
        Iova::new(self.hdr().buf_iova)
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // A buffer dropped outside the fast path (an error path, a test, a
        // ring being torn down) goes back to its pool through the registry.
        let hdr = self.0;
        crate::pool::release_orphan(hdr);
    }
}

impl fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mbuf")
            .field("pool", &self.pool_id())
            .field("index", &self.index())
            .field("len", &self.len())
            .field("port", &self.port())
            .finish()
    }
}

/// A length change the buffer cannot hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MbufError {
    /// Not enough head- or tailroom.
    #[error("buffer has room for {room} bytes, {wanted} asked")]
    NoRoom {
        /// Bytes asked for.
        wanted: usize,
        /// Bytes available.
        room: usize,
    },
    /// Removing more than the data holds.
    #[error("buffer holds {len} bytes, cannot remove {wanted}")]
    TooShort {
        /// Bytes asked to remove.
        wanted: usize,
        /// Bytes held.
        len: usize,
    },
}
