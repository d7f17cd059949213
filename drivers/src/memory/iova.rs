//! I/O virtual addresses: the addresses a device uses for DMA.

use std::fmt;

/// The address a device puts on the bus to reach a byte of a DMA region.
///
/// Behind an IOMMU (VFIO type1) this is whatever address the region was
/// mapped at with `VFIO_IOMMU_MAP_DMA`. For now that is the process virtual
/// address, as ixy.rs does ("Use IOVAs not VAs for DMA buffer",
/// `ixy-languages/ixy.rs@d3fc461:src/memory.rs`). It is a separate type so
/// that a virtual address is never handed to a device by accident, and so a
/// different IOVA allocator can come later without touching the callers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Iova(pub u64);

impl fmt::Display for Iova {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}
