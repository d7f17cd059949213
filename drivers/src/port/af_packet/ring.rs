//! The memory-mapped rings of one AF_PACKET socket (PACKET_MMAP): the
//! mapping, and the two owners that hand its slots to and from the kernel.
//!
//! The kernel maps the RX ring first and the TX ring right after it, in
//! one mapping of the socket (`Documentation/networking/packet_mmap.rst`).
//! Ownership of a slot passes through its status word, which both sides
//! access atomically: the kernel writes a slot only while the status says
//! it is the kernel's, and we only while it says it is ours. So:
//!
//! - [`RxRing::block`] reads a block's status with acquire ordering
//!   (pairing with the kernel's `smp_wmb` before it sets TP_STATUS_USER)
//!   and only then lends the block out as a byte slice, borrowed from the
//!   ring; [`RxRing::release`] takes `&mut self`, so no slice of the block
//!   is alive when it goes back to the kernel (a release store of
//!   TP_STATUS_KERNEL, so that our reads happen before the kernel's
//!   writes).
//! - [`TxRing::fill`] writes a frame only after an acquire load found it
//!   TP_STATUS_AVAILABLE, and hands it over with a release store of
//!   TP_STATUS_SEND_REQUEST (the kernel reads the status, then with a
//!   read barrier the frame).
//!
//! All of the port's unsafe code that touches the mapping is here.

use std::mem::offset_of;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Offset of a block's status word (`tpacket_block_desc.hdr.bh1.block_status`).
const BLOCK_STATUS: usize =
    offset_of!(libc::tpacket_block_desc, hdr) + offset_of!(libc::tpacket_hdr_v1, block_status);
/// Offsets in a TPACKET_V3 TX frame: its status and length words.
const TX_STATUS: usize = offset_of!(libc::tpacket3_hdr, tp_status);
const TX_LEN: usize = offset_of!(libc::tpacket3_hdr, tp_len);
const TX_SNAPLEN: usize = offset_of!(libc::tpacket3_hdr, tp_snaplen);
/// Where a TX frame's data starts: without PACKET_TX_HAS_OFF the kernel
/// takes it at `tp_hdrlen - sizeof(struct sockaddr_ll)`, TPACKET3_HDRLEN
/// less the address, i.e. the aligned header.
pub const TX_DATA: usize = libc::TPACKET3_HDRLEN - std::mem::size_of::<libc::sockaddr_ll>();

/// How a ring is cut: `count` slots of `size` bytes, back to back (RX:
/// blocks; TX: frames, which never straddle the kernel's blocks because
/// the block size is a multiple of the frame size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes of one slot.
    pub size: usize,
    /// Slots.
    pub count: usize,
}

impl Geometry {
    /// Bytes of the ring.
    pub fn bytes(&self) -> usize {
        self.size * self.count
    }
}

/// One `mmap` of a packet socket's rings; unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; `Mapping` itself only
// unmaps it on drop, and the slots inside are accessed through the
// `RxRing`/`TxRing` owners, whose own rules make that access exclusive.
unsafe impl Send for Mapping {}
// SAFETY: as for Send: `&Mapping` gives no access to the memory.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd`'s rings (RX ring first, then TX ring).
    pub fn new(fd: BorrowedFd<'_>, len: usize) -> std::io::Result<Mapping> {
        // SAFETY: a new shared mapping chosen by the kernel, over the
        // socket's rings, which it sized (setsockopt PACKET_RX_RING /
        // PACKET_TX_RING) before this call; the result is checked.
        // MAP_POPULATE faults the pages in now rather than in the first
        // bursts.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let base = NonNull::new(p.cast::<u8>())
            .ok_or_else(|| std::io::Error::other("mmap returned a null pointer"))?;
        Ok(Mapping { base, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: base and len are exactly what mmap returned and took,
        // and every ring owner holds an Arc of this mapping, so none is
        // left to use it.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

/// The status word of the slot at `offset`, as an atomic.
///
/// # Safety
/// `offset + 4 <= map.len`, 4-aligned from the page-aligned base.
unsafe fn status_at(map: &Mapping, offset: usize) -> &AtomicU32 {
    debug_assert!(offset + 4 <= map.len && offset.is_multiple_of(4));
    // SAFETY: in the mapping (caller), aligned (caller; the base is page
    // aligned), and the kernel accesses this word atomically too.
    unsafe { AtomicU32::from_ptr(map.base.as_ptr().add(offset).cast::<u32>()) }
}

/// The RX ring of a socket, owned by its one receive queue.
#[derive(Debug)]
pub struct RxRing {
    map: Arc<Mapping>,
    geo: Geometry,
}

impl RxRing {
    /// The RX ring at the start of `map`.
    ///
    /// # Safety
    /// `map` holds the socket's RX ring of geometry `geo` at offset 0 (the
    /// kernel's blocks, each `geo.size` bytes, page-aligned), and no
    /// other `RxRing` of it exists.
    pub unsafe fn new(map: Arc<Mapping>, geo: Geometry) -> RxRing {
        assert!(geo.bytes() <= map.len && geo.size >= 64 && geo.size.is_multiple_of(8));
        RxRing { map, geo }
    }

    /// Blocks in the ring.
    pub fn count(&self) -> usize {
        self.geo.count
    }

    /// Block `i` if the kernel has handed it over, as bytes (the whole
    /// block). `None` while it is the kernel's, or for an `i` out of range.
    pub fn block(&self, i: usize) -> Option<&[u8]> {
        if i >= self.geo.count {
            return None;
        }
        let start = i * self.geo.size;
        // SAFETY: start + BLOCK_STATUS + 4 is inside block i, inside the
        // mapping (checked in `new`), and 4-aligned (blocks are 8-aligned).
        let status = unsafe { status_at(&self.map, start + BLOCK_STATUS) };
        // Acquire: pairs with the kernel's barrier before it set
        // TP_STATUS_USER, so the block's contents are visible.
        if status.load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
            return None;
        }
        // SAFETY: the block is ours until `release(i)`, which needs
        // `&mut self` and so cannot run while this borrow of `self` lives:
        // the kernel does not write these bytes meanwhile. In the mapping
        // (checked in `new`).
        Some(unsafe {
            std::slice::from_raw_parts(self.map.base.as_ptr().add(start), self.geo.size)
        })
    }

    /// Gives block `i` back to the kernel.
    pub fn release(&mut self, i: usize) {
        if i >= self.geo.count {
            return;
        }
        // SAFETY: as in `block`.
        let status = unsafe { status_at(&self.map, i * self.geo.size + BLOCK_STATUS) };
        // Release: our reads of the block happen before the kernel
        // sees it as its own again.
        status.store(libc::TP_STATUS_KERNEL, Ordering::Release);
    }
}

/// Why [`TxRing::fill`] did not take a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FillError {
    /// The slot is still the kernel's (the ring is full).
    Busy,
    /// The data does not fit in a slot.
    TooLong,
}

/// The TX ring of a socket, owned by its one transmit queue.
#[derive(Debug)]
pub struct TxRing {
    map: Arc<Mapping>,
    offset: usize,
    geo: Geometry,
}

impl TxRing {
    /// The TX ring at `offset` in `map`.
    ///
    /// # Safety
    /// `map` holds the socket's TX ring of geometry `geo` (frames of
    /// `geo.size` bytes) at `offset`, page-aligned, and no other `TxRing`
    /// of it exists.
    pub unsafe fn new(map: Arc<Mapping>, offset: usize, geo: Geometry) -> TxRing {
        assert!(
            offset + geo.bytes() <= map.len && geo.size > TX_DATA && geo.size.is_multiple_of(16)
        );
        TxRing { map, offset, geo }
    }

    /// Frames in the ring.
    pub fn count(&self) -> usize {
        self.geo.count
    }

    /// Bytes of data a frame takes at most.
    pub fn room(&self) -> usize {
        self.geo.size - TX_DATA
    }

    fn status(&self, i: usize) -> &AtomicU32 {
        let i = i.min(self.geo.count - 1);
        // SAFETY: frame i (clamped into the ring) is inside the mapping
        // (checked in `new`), 16-aligned, and its status word is within.
        unsafe { status_at(&self.map, self.offset + i * self.geo.size + TX_STATUS) }
    }

    /// The kernel's status of frame `i` (TP_STATUS_AVAILABLE once it is
    /// ours), read with acquire ordering.
    pub fn status_of(&self, i: usize) -> u32 {
        self.status(i).load(Ordering::Acquire)
    }

    /// Marks frame `i` ours again after the kernel left it in
    /// TP_STATUS_WRONG_FORMAT.
    pub fn reset(&mut self, i: usize) {
        if i < self.geo.count && self.status_of(i) & libc::TP_STATUS_WRONG_FORMAT != 0 {
            self.status(i)
                .store(libc::TP_STATUS_AVAILABLE, Ordering::Release);
        }
    }

    /// Copies `data` into frame `i` and hands it to the kernel (to go at
    /// the next `send`). Fails if the frame is not ours or `data` does not
    /// fit.
    pub fn fill(&mut self, i: usize, data: &[u8]) -> Result<(), FillError> {
        if data.len() > self.room() {
            return Err(FillError::TooLong);
        }
        if i >= self.geo.count || self.status_of(i) != libc::TP_STATUS_AVAILABLE {
            return Err(FillError::Busy);
        }
        let start = self.offset + i * self.geo.size;
        let len = data.len() as u32;
        // SAFETY: frame i is ours (acquire load above: the kernel set it
        // AVAILABLE after its last read of it and writes it no more until
        // we set SEND_REQUEST below); `&mut self` keeps any other writer
        // out. The writes stay in the frame: data.len() <= size - TX_DATA,
        // and the length words lie before TX_DATA. tp_next_offset (0)
        // stays as the kernel left it.
        unsafe {
            let frame = self.map.base.as_ptr().add(start);
            std::ptr::copy_nonoverlapping(data.as_ptr(), frame.add(TX_DATA), data.len());
            frame.add(TX_LEN).cast::<u32>().write(len);
            frame.add(TX_SNAPLEN).cast::<u32>().write(len);
        }
        // Release: the frame's bytes are visible before the kernel sees
        // the request.
        self.status(i)
            .store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tx_layout_is_the_uapi_one() {
        // tpacket3_hdr: status at 20, len at 16; data after the 48-byte
        // header (TPACKET3_HDRLEN 68 less the 20-byte sockaddr_ll).
        assert_eq!((TX_STATUS, TX_LEN, TX_SNAPLEN, TX_DATA), (20, 16, 12, 48));
        assert_eq!(BLOCK_STATUS, 8);
    }
}
