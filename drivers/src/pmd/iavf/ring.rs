//! Descriptor ring memory and the ring-size rules iavf's PFs enforce
//! (docs/facts/nic-facts.md B.8 #1, #2).

use super::dma_bytes::DmaBytes;
use crate::memory::{ArenaError, DmaArena};

/// Ring base alignment: the PF hands the HMC the base / 128 (B.8 #1).
pub const RING_ALIGN: usize = 128;
/// Ring lengths are multiples of 32 (RX rule; TX needs 8; ice needs 32
/// for both, B.8 #2).
pub const RING_MULTIPLE: usize = 32;
/// Smallest ring (B.8 #2: Linux 64..4096).
pub const MIN_RING: usize = 64;
/// Largest ring (B.8 #2: the i40e maximum).
pub const MAX_RING: usize = 4096;

/// Why a ring could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    /// A length the PF would refuse.
    #[error(
        "ring of {0} descriptors: iavf needs a multiple of {RING_MULTIPLE} from {MIN_RING} to \
         {MAX_RING} (nic-facts B.8 #2)"
    )]
    BadCount(usize),
    /// Buffers the device cannot be told about.
    #[error("buffers of {0} bytes are too small: iavf needs at least 128 (nic-facts B.8 #4)")]
    BufferTooSmall(usize),
    /// Descriptor memory.
    #[error("descriptor memory: {0}")]
    Memory(#[from] ArenaError),
}

/// Check a ring length against B.8 #2.
pub fn check_count(count: usize) -> Result<(), RingError> {
    if (MIN_RING..=MAX_RING).contains(&count) && count.is_multiple_of(RING_MULTIPLE) {
        Ok(())
    } else {
        Err(RingError::BadCount(count))
    }
}

/// `count` descriptors of `size` bytes in DMA memory.
#[derive(Debug)]
pub struct DescMem {
    mem: DmaBytes,
    count: usize,
    size: usize,
}

impl DescMem {
    /// Carve the ring from `arena`.
    pub fn new(count: usize, size: usize, arena: &DmaArena) -> Result<DescMem, RingError> {
        check_count(count)?;
        let mem = DmaBytes::carve(arena, count * size, RING_ALIGN)?;
        Ok(DescMem { mem, count, size })
    }

    /// Arena bytes a ring takes (for sizing the arena).
    pub const fn arena_bytes(count: usize, size: usize) -> usize {
        (count * size).next_multiple_of(RING_ALIGN)
    }

    /// Descriptors.
    #[inline(always)]
    pub fn count(&self) -> usize {
        self.count
    }

    /// Where the device sees the ring.
    pub fn iova(&self) -> u64 {
        self.mem.iova().get()
    }

    /// Quadword `w` of descriptor `i`.
    #[inline(always)]
    pub fn read(&self, i: usize, w: usize) -> u64 {
        self.mem.read_u64(i * self.size + 8 * w)
    }

    /// Store quadword `w` of descriptor `i`.
    #[inline(always)]
    pub fn write(&self, i: usize, w: usize, v: u64) {
        self.mem.write_u64(i * self.size + 8 * w, v)
    }
}
