//! Making DMA regions reachable by devices: VFIO_IOMMU_MAP_DMA behind an
//! IOMMU, physical addresses from /proc/self/pagemap without one.

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::container::{Container, IommuMode};
use super::error::VfioError;
use super::sys::ioctl_ref;
use super::uapi::*;
use crate::memory::{DmaMapError, DmaMapper, DmaRegion, Iova, IovaLayout, PageSize};

/// Where the container puts the next region behind an IOMMU: a bump
/// allocator over the IOMMU's usable IOVA ranges. Nothing is given back
/// (a fast path maps its pools and rings once).
#[derive(Debug, Default)]
pub(crate) struct IovaAllocator {
    /// Usable ranges, inclusive ends, ascending; read on first use.
    ranges: Option<Vec<(u64, u64)>>,
    next: u64,
}

/// Lowest IOVA handed out: page 0 stays unmapped so a zero address in a
/// descriptor faults instead of reaching memory.
const IOVA_FLOOR: u64 = 1 << 20;

/// Ranges assumed when the kernel reports none (before Linux 5.4): above
/// 4 GiB, so the x86 MSI window at 0xfee00000 is never used, and below
/// 2^39, the smallest address width of Intel's IOMMUs (QEMU's default).
const FALLBACK_RANGE: (u64, u64) = (1 << 32, (1 << 39) - 1);

impl IovaAllocator {
    /// `len` bytes aligned to `align`, inside one usable range.
    pub(crate) fn allocate(&mut self, len: u64, align: u64) -> Option<u64> {
        let ranges = self.ranges.as_deref().unwrap_or(&[FALLBACK_RANGE]);
        for &(start, end) in ranges {
            let from = self
                .next
                .max(start)
                .max(IOVA_FLOOR)
                .checked_next_multiple_of(align)?;
            let last = from.checked_add(len.checked_sub(1)?)?;
            if last <= end {
                self.next = last + 1;
                return Some(from);
            }
        }
        None
    }

    pub(crate) fn set_ranges(&mut self, mut ranges: Vec<(u64, u64)>) {
        ranges.sort_unstable();
        self.ranges = Some(ranges);
    }

    pub(crate) fn has_ranges(&self) -> bool {
        self.ranges.is_some()
    }
}

impl DmaMapper for Container {
    /// Behind an IOMMU, the region is mapped read-write
    /// (VFIO_IOMMU_MAP_DMA) at an IOVA the container picks inside the
    /// IOMMU's usable ranges (VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE), aligned
    /// to the region's page size. In no-IOMMU mode nothing is mapped: the
    /// physical address of every page is read from /proc/self/pagemap
    /// (needs CAP_SYS_ADMIN), and the region must be hugepage-backed so
    /// each page is physically contiguous and never moved (the region is
    /// locked and pre-faulted). No-IOMMU mode costs all isolation: a buggy
    /// device or driver can DMA anywhere in memory, including the kernel's.
    ///
    /// Needs a device opened first: the IOMMU type is set when the first
    /// group is attached.
    fn map(&self, region: &DmaRegion) -> Result<IovaLayout, DmaMapError> {
        match self.iommu_mode() {
            None => Err(VfioError::NoIommuYet.into()),
            Some(IommuMode::NoIommu) => {
                if region.page_size() == PageSize::Size4K {
                    return Err(VfioError::NoIommuNeedsHugepages.into());
                }
                let page_size = region.page_size().bytes();
                let base = region.as_ptr().as_ptr() as usize;
                let pagemap = Pagemap::open()?;
                let mut pages = Vec::with_capacity(region.len() / page_size);
                for offset in (0..region.len()).step_by(page_size) {
                    let phys = pagemap.physical_address(base + offset)?;
                    if !phys.is_multiple_of(page_size as u64) {
                        return Err(VfioError::PhysicalAddress {
                            virt: base + offset,
                            why: format!(
                                "physical address {phys:#x} of a {} page is not aligned to \
                                 its size: the region is not really hugepage-backed",
                                region.page_size()
                            ),
                        }
                        .into());
                    }
                    pages.push(Iova::new(phys));
                }
                Ok(IovaLayout::Pages {
                    page_size,
                    pages: pages.into_boxed_slice(),
                })
            }
            Some(IommuMode::Type1v2 | IommuMode::Type1) => {
                let len = region.len();
                let iova = self.allocate_iova(len as u64, region.page_size().bytes() as u64)?;
                let mut map = vfio_iommu_type1_dma_map {
                    argsz: argsz::<vfio_iommu_type1_dma_map>(),
                    flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
                    vaddr: region.as_ptr().as_ptr() as u64,
                    iova,
                    size: len as u64,
                };
                ioctl_ref(self.fd(), VFIO_IOMMU_MAP_DMA, &mut map)
                    .map_err(|source| VfioError::DmaMap { iova, len, source })?;
                Ok(IovaLayout::Contiguous {
                    base: Iova::new(iova),
                })
            }
        }
    }

    fn unmap(&self, region: &DmaRegion, layout: &IovaLayout) -> Result<(), DmaMapError> {
        let IovaLayout::Contiguous { base } = layout else {
            return Ok(()); // no-IOMMU: nothing was mapped
        };
        let (iova, len) = (base.get(), region.len());
        let mut unmap = vfio_iommu_type1_dma_unmap {
            argsz: argsz::<vfio_iommu_type1_dma_unmap>(),
            flags: 0,
            iova,
            size: len as u64,
            ..Default::default() // no dirty bitmap after it
        };
        ioctl_ref(self.fd(), VFIO_IOMMU_UNMAP_DMA, &mut unmap)
            .map_err(|source| VfioError::DmaUnmap { iova, len, source })?;
        if unmap.size != len as u64 {
            return Err(VfioError::DmaUnmap {
                iova,
                len,
                source: std::io::Error::other(format!(
                    "the kernel unmapped {:#x} bytes",
                    unmap.size
                )),
            }
            .into());
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        match self.iommu_mode() {
            Some(IommuMode::NoIommu) => "vfio no-IOMMU",
            _ => "vfio type1",
        }
    }
}

impl Container {
    fn allocate_iova(&self, len: u64, align: u64) -> Result<u64, VfioError> {
        let mut alloc = self.iova_allocator();
        if !alloc.has_ranges() {
            match self.iova_ranges() {
                Ok(Some(r)) if !r.is_empty() => alloc.set_ranges(r),
                Ok(_) => {
                    log::info!(
                        "the IOMMU reports no usable IOVA ranges (kernel before 5.4?); \
                         using {:#x}-{:#x}",
                        FALLBACK_RANGE.0,
                        FALLBACK_RANGE.1
                    );
                    alloc.set_ranges(vec![FALLBACK_RANGE]);
                }
                Err(e) => return Err(e),
            }
        }
        alloc
            .allocate(len, align)
            .ok_or(VfioError::IovaSpace { len })
    }
}

/// /proc/self/pagemap: one 64-bit entry per virtual page
/// (Documentation/admin-guide/mm/pagemap.rst): bits 0-54 the page frame
/// number when present, bit 63 "present". Since Linux 4.2 the PFN reads as
/// 0 without CAP_SYS_ADMIN.
struct Pagemap {
    file: File,
    page_size: usize,
}

const PAGEMAP_PRESENT: u64 = 1 << 63;
const PAGEMAP_PFN_MASK: u64 = (1 << 55) - 1;

impl Pagemap {
    fn open() -> Result<Pagemap, VfioError> {
        let file = File::open("/proc/self/pagemap").map_err(|e| VfioError::PhysicalAddress {
            virt: 0,
            why: format!("cannot open /proc/self/pagemap: {e}"),
        })?;
        Ok(Pagemap {
            file,
            page_size: base_page_size(),
        })
    }

    fn physical_address(&self, virt: usize) -> Result<u64, VfioError> {
        let mut entry = [0u8; 8];
        let index = (virt / self.page_size) as u64;
        self.file
            .read_exact_at(&mut entry, index * 8)
            .map_err(|e| VfioError::PhysicalAddress {
                virt,
                why: format!("cannot read /proc/self/pagemap: {e}"),
            })?;
        decode_pagemap_entry(u64::from_ne_bytes(entry), virt, self.page_size)
    }
}

/// The physical address of `virt` from its pagemap entry.
pub(crate) fn decode_pagemap_entry(
    entry: u64,
    virt: usize,
    page_size: usize,
) -> Result<u64, VfioError> {
    if entry & PAGEMAP_PRESENT == 0 {
        return Err(VfioError::PhysicalAddress {
            virt,
            why: "the page is not in memory (touch or lock it first; DmaRegion \
                  memory is faulted in when allocated)"
                .to_string(),
        });
    }
    let pfn = entry & PAGEMAP_PFN_MASK;
    if pfn == 0 {
        return Err(VfioError::PhysicalAddress {
            virt,
            why: "the kernel hides physical addresses from this process: no-IOMMU \
                  mode needs CAP_SYS_ADMIN (run as root)"
                .to_string(),
        });
    }
    Ok(pfn * page_size as u64 + (virt % page_size) as u64)
}

fn base_page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|s| *s > 0)
        .unwrap_or(4096)
}

/// The physical address of the byte at virtual address `virt` of this
/// process, from /proc/self/pagemap. Needs root (CAP_SYS_ADMIN); the page
/// must be present. Only meaningful for memory that cannot move
/// (hugepages), as DPDK's no-IOMMU and physical-address modes assume.
pub fn physical_address(virt: usize) -> Result<u64, VfioError> {
    Pagemap::open()?.physical_address(virt)
}
