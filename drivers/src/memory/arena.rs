//! One DMA region, mapped once, carved into the small pieces a device
//! needs (descriptor rings): one hugepage and one IOMMU mapping for all of
//! a port's rings instead of one per ring.

use super::dma_map::{DmaMapError, DmaMapper};
use super::error::MemoryError;
use super::iova::Iova;
use super::region::{DmaRegion, MemoryBacking};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

/// Why a slice could not be carved.
#[derive(Debug, thiserror::Error)]
pub enum ArenaError {
    /// The arena is full.
    #[error("DMA arena of {capacity} bytes is full: {asked} bytes asked, {left} left")]
    Full {
        /// Arena size.
        capacity: usize,
        /// Bytes asked.
        asked: usize,
        /// Bytes left.
        left: usize,
    },
    /// Memory could not be had.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// The arena could not be mapped for DMA.
    #[error(transparent)]
    Map(#[from] DmaMapError),
}

/// A mapped DMA region handing out aligned slices. Slices keep the region
/// (and its mapping) alive; nothing is ever given back before the whole
/// arena goes, which is what descriptor rings need.
#[derive(Debug)]
pub struct DmaArena {
    region: Arc<DmaRegion>,
    next: Mutex<usize>,
}

impl DmaArena {
    /// `bytes` (rounded up to pages) of `backing`, mapped in `mapper`.
    pub fn new(
        bytes: usize,
        backing: &MemoryBacking,
        mapper: &Arc<dyn DmaMapper>,
    ) -> Result<DmaArena, ArenaError> {
        let region = DmaRegion::allocate(bytes, backing)?;
        region.map_dma(mapper)?;
        Ok(DmaArena {
            region: Arc::new(region),
            next: Mutex::new(0),
        })
    }

    /// The arena's region.
    pub fn region(&self) -> &Arc<DmaRegion> {
        &self.region
    }

    /// A zeroed slice of `len` bytes aligned to `align` (a power of two)
    /// both in memory and on the bus, never straddling a page boundary
    /// when pages are separate on the bus (no-IOMMU).
    pub fn carve(&self, len: usize, align: usize) -> Result<DmaSlice, ArenaError> {
        debug_assert!(align.is_power_of_two());
        let capacity = self.region.len();
        let full = |left: usize| ArenaError::Full {
            capacity,
            asked: len,
            left,
        };
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let mut offset = next.next_multiple_of(align);
        let contiguous = |off: usize| {
            self.region
                .layout()
                .is_none_or(|l| l.is_contiguous(off, len))
        };
        if !contiguous(offset) {
            // Start at the next page: within a page the bus is contiguous.
            offset = offset.next_multiple_of(self.region.page_size().bytes());
        }
        if len == 0 || offset + len > capacity || !contiguous(offset) {
            return Err(full(capacity.saturating_sub(*next)));
        }
        *next = offset + len;
        Ok(DmaSlice {
            region: Arc::clone(&self.region),
            offset,
            len,
        })
    }
}

/// A piece of a mapped [`DmaArena`]: contiguous in memory and on the bus.
#[derive(Debug, Clone)]
pub struct DmaSlice {
    region: Arc<DmaRegion>,
    offset: usize,
    len: usize,
}

impl DmaSlice {
    /// First byte in this process.
    pub fn as_ptr(&self) -> NonNull<u8> {
        // SAFETY: offset < region.len() (checked by `carve`), so the result
        // is inside the region's mapping and not null.
        unsafe { self.region.as_ptr().add(self.offset) }
    }

    /// Bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true: empty slices are not carved.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the device sees the first byte (the arena is always mapped).
    pub fn iova(&self) -> Iova {
        self.region
            .iova_at(self.offset)
            .expect("an arena is mapped before it carves")
    }

    /// The region the slice lives in.
    pub fn region(&self) -> &Arc<DmaRegion> {
        &self.region
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::TestMapper;

    #[test]
    fn slices_are_aligned_disjoint_and_mapped() {
        let test = Arc::new(TestMapper::at(0x4000_0000));
        let mapper: Arc<dyn DmaMapper> = test.clone();
        let arena = DmaArena::new(16 << 10, &MemoryBacking::NoHuge, &mapper).expect("arena");
        let a = arena.carve(8 * 16, 128).expect("a");
        let b = arena.carve(100, 128).expect("b");
        assert_eq!(a.iova().get(), 0x4000_0000);
        assert_eq!(b.iova().get() % 128, 0);
        assert!(b.iova().get() >= a.iova().get() + 128);
        assert_eq!(
            b.iova().get() - a.iova().get(),
            b.as_ptr().as_ptr() as u64 - a.as_ptr().as_ptr() as u64
        );
        assert!(matches!(
            arena.carve(16 << 10, 128),
            Err(ArenaError::Full { .. })
        ));
        drop(arena);
        assert_eq!(test.mapped(), 1, "slices keep the mapping alive");
        drop((a, b));
        assert_eq!(test.mapped(), 0, "the last slice unmaps the arena");
    }
}
