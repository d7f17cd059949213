//! I/O virtual addresses: the addresses a device uses for DMA.

use std::fmt;

/// The address a device puts on the bus to reach a byte of a DMA region.
///
/// An IOVA only ever comes from a mapping ([`super::DmaMapper`]): behind an
/// IOMMU (VFIO type1) it is the address the container chose for the region
/// inside the IOMMU's usable ranges; in no-IOMMU mode it is the physical
/// address of a locked hugepage; in a device model it is whatever the
/// model's own translation handed out. Code outside this crate cannot make
/// one from a number, so a virtual address is never handed to a device by
/// accident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Iova(u64);

impl Iova {
    /// Only mappers (vfio, device models) in this crate make IOVAs.
    pub(crate) const fn new(v: u64) -> Iova {
        Iova(v)
    }

    /// The address as a number, to program into a register or descriptor.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The address `bytes` further on (within the same contiguous range:
    /// the caller checks that).
    pub(crate) const fn add(self, bytes: u64) -> Iova {
        Iova(self.0 + bytes)
    }
}

impl fmt::Display for Iova {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}
