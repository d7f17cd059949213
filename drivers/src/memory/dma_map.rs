//! Making DMA memory reachable by devices, and where devices see it.
//!
//! A [`DmaMapper`] is an address space devices DMA in: a vfio container
//! (IOMMU type1, or no-IOMMU with physical addresses) or a device model's
//! own translation. [`DmaRegion::map_dma`](super::DmaRegion::map_dma)
//! maps a region once; from then on the region answers
//! [`iova_at`](super::DmaRegion::iova_at), and it is unmapped before its
//! memory is released. An unmapped region has no IOVA at all.

use super::iova::Iova;
use super::region::DmaRegion;
use std::fmt;
use std::sync::Arc;

/// Where the bytes of one mapped region sit in a device's address space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IovaLayout {
    /// One contiguous range starting at `base` (behind an IOMMU).
    Contiguous {
        /// IOVA of the region's first byte.
        base: Iova,
    },
    /// Each page on its own (no-IOMMU: physical addresses of hugepages,
    /// contiguous within a page only).
    Pages {
        /// Bytes per page.
        page_size: usize,
        /// IOVA of each page's first byte, in order.
        pages: Box<[Iova]>,
    },
}

impl IovaLayout {
    /// The IOVA of the byte at `offset` of a region of `len` bytes.
    pub fn iova_at(&self, offset: usize, len: usize) -> Option<Iova> {
        if offset >= len {
            return None;
        }
        match self {
            IovaLayout::Contiguous { base } => Some(base.add(offset as u64)),
            IovaLayout::Pages { page_size, pages } => pages
                .get(offset / page_size)
                .map(|p| p.add((offset % page_size) as u64)),
        }
    }

    /// True if `offset..offset + len` is one contiguous range on the bus.
    pub fn is_contiguous(&self, offset: usize, len: usize) -> bool {
        match self {
            IovaLayout::Contiguous { .. } => true,
            IovaLayout::Pages { page_size, .. } => {
                len == 0 || offset / page_size == (offset + len - 1) / page_size
            }
        }
    }
}

/// Why a region could not be mapped or unmapped.
#[derive(Debug, thiserror::Error)]
pub enum DmaMapError {
    /// vfio refused (the message names the fix).
    #[error(transparent)]
    Vfio(#[from] Box<crate::vfio::VfioError>),
    /// The region is already mapped (a region lives in one address space).
    #[error("{what} is already mapped for DMA")]
    AlreadyMapped {
        /// The region, as `DmaRegion::describe` says it.
        what: String,
    },
    /// A device model's address space refused.
    #[error("device model: {0}")]
    Model(String),
}

impl From<crate::vfio::VfioError> for DmaMapError {
    fn from(e: crate::vfio::VfioError) -> Self {
        DmaMapError::Vfio(Box::new(e))
    }
}

/// An address space devices DMA in.
///
/// Implementations: `vfio::Container` (hardware), `sim::Iommu` (device
/// models). Shared as `Arc<dyn DmaMapper>`: a region keeps its mapper
/// alive until it has been unmapped.
pub trait DmaMapper: Send + Sync + fmt::Debug {
    /// Make all of `region` reachable for device reads and writes, and say
    /// where devices see it. Called once per region.
    fn map(&self, region: &DmaRegion) -> Result<IovaLayout, DmaMapError>;

    /// Undo [`map`](Self::map). Called once, before the region's memory is
    /// released; the caller has stopped every device DMA into it.
    fn unmap(&self, region: &DmaRegion, layout: &IovaLayout) -> Result<(), DmaMapError>;

    /// A short name for errors and logs ("vfio type1", "model").
    fn name(&self) -> &'static str;
}

/// True if `a` and `b` are the same address space.
pub fn same_mapper(a: &Arc<dyn DmaMapper>, b: &Arc<dyn DmaMapper>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}
