//! Hugepage-backed DMA memory.
//!
//! A [`DmaRegion`] is one mmap of 2M or 1G hugepages (anonymous, or a file in
//! a hugetlbfs mount), or of ordinary 4K pages when the operator asked for
//! them. It is zeroed, checked to be really backed by memory before
//! use (a hugetlb cgroup limit can otherwise turn the first touch into a
//! SIGBUS), and tells devices where it lives through [`Iova`].
//!
//! Allocation never falls back to another kind of memory on its own: when
//! hugepages are short it fails with a [`MemoryError`] that gives the counts
//! and the fix.

mod arena;
mod dma_map;
mod error;
mod huge_advice;
mod hugepage_info;
mod iova;
mod region;
#[cfg(any(test, feature = "sim"))]
mod test_mapper;

pub use arena::{ArenaError, DmaArena, DmaSlice};
pub use dma_map::{same_mapper, DmaMapError, DmaMapper, IovaLayout};
pub use error::MemoryError;
pub use huge_advice::advise_hugepages;
pub use hugepage_info::{hugepage_status, hugepage_status_at, HugepageStatus, PageSize};
pub use iova::Iova;
pub use region::{DmaRegion, HugepageSize, MemoryBacking};
#[cfg(any(test, feature = "sim"))]
pub use test_mapper::TestMapper;
