//! Making DMA regions reachable by devices: VFIO_IOMMU_MAP_DMA behind an
//! IOMMU, physical addresses from /proc/self/pagemap without one.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::container::{Container, IommuMode};
use super::error::VfioError;
use super::sys::ioctl_ref;
use super::uapi::*;
use crate::memory::{DmaRegion, Iova, PageSize};

/// How the device reaches the region.
#[derive(Debug)]
enum Kind {
    /// Mapped in the IOMMU at `iova` for `len` bytes.
    Iommu { iova: u64, len: usize },
    /// No IOMMU: the physical address of each page.
    Physical { page_size: usize, pages: Vec<Iova> },
}

/// A region made reachable by the container's devices. Unmapped when
/// dropped (errors are logged) or by [`DmaMapping::unmap`] (errors
/// returned).
///
/// The mapping does not own the region: drop it (or stop the device's DMA)
/// before the region itself is dropped, or the pinned pages stay mapped
/// for the device until the mapping goes.
#[derive(Debug)]
pub struct DmaMapping {
    container: Arc<OwnedFd>,
    kind: Kind,
    unmapped: bool,
}

impl Container {
    /// Makes `region` reachable by the devices of this container.
    ///
    /// Behind an IOMMU it is mapped read-write at [`DmaRegion::iova`]
    /// (VFIO_IOMMU_MAP_DMA). In no-IOMMU mode nothing is mapped: the
    /// physical address of every page is read from /proc/self/pagemap
    /// (needs CAP_SYS_ADMIN), and the region must be hugepage-backed so
    /// each page is physically contiguous and never moved. No-IOMMU mode
    /// costs all isolation: a buggy device or driver can DMA anywhere in
    /// memory, including the kernel's.
    ///
    /// Needs a device opened first: the IOMMU type is set when the first
    /// group is attached.
    pub fn dma_map(&self, region: &DmaRegion) -> Result<DmaMapping, VfioError> {
        match self.iommu_mode() {
            None => Err(VfioError::NoIommuYet),
            Some(IommuMode::NoIommu) => {
                if region.page_size() == PageSize::Size4K {
                    return Err(VfioError::NoIommuNeedsHugepages);
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
                        });
                    }
                    pages.push(Iova(phys));
                }
                Ok(DmaMapping {
                    container: self.fd().clone(),
                    kind: Kind::Physical { page_size, pages },
                    unmapped: false,
                })
            }
            Some(IommuMode::Type1v2 | IommuMode::Type1) => {
                let iova = region.iova().0;
                let len = region.len();
                let mut map = VfioIommuType1DmaMap {
                    argsz: argsz::<VfioIommuType1DmaMap>(),
                    flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
                    vaddr: region.as_ptr().as_ptr() as u64,
                    iova,
                    size: len as u64,
                };
                ioctl_ref(self.fd(), VFIO_IOMMU_MAP_DMA, &mut map)
                    .map_err(|source| VfioError::DmaMap { iova, len, source })?;
                Ok(DmaMapping {
                    container: self.fd().clone(),
                    kind: Kind::Iommu { iova, len },
                    unmapped: false,
                })
            }
        }
    }
}

impl DmaMapping {
    /// The bus address of the region's first byte.
    pub fn iova(&self) -> Iova {
        match &self.kind {
            Kind::Iommu { iova, .. } => Iova(*iova),
            Kind::Physical { pages, .. } => pages.first().copied().unwrap_or(Iova(0)),
        }
    }

    /// The bus address of the byte at `offset`, `None` past the end. In
    /// no-IOMMU mode only bytes within one page are contiguous on the bus.
    pub fn iova_at(&self, offset: usize) -> Option<Iova> {
        match &self.kind {
            Kind::Iommu { iova, len } => (offset < *len).then(|| Iova(iova + offset as u64)),
            Kind::Physical { page_size, pages } => pages
                .get(offset / page_size)
                .map(|page| Iova(page.0 + (offset % page_size) as u64)),
        }
    }

    /// True in no-IOMMU mode (addresses are physical).
    pub fn is_physical(&self) -> bool {
        matches!(self.kind, Kind::Physical { .. })
    }

    /// The bus address of each page in no-IOMMU mode (empty behind an IOMMU,
    /// where the region is contiguous at [`DmaMapping::iova`]).
    pub fn page_addresses(&self) -> &[Iova] {
        match &self.kind {
            Kind::Iommu { .. } => &[],
            Kind::Physical { pages, .. } => pages,
        }
    }

    /// Unmaps now and reports failure.
    pub fn unmap(mut self) -> Result<(), VfioError> {
        self.unmapped = true;
        self.do_unmap()
    }

    fn do_unmap(&self) -> Result<(), VfioError> {
        let Kind::Iommu { iova, len } = self.kind else {
            return Ok(());
        };
        let mut unmap = VfioIommuType1DmaUnmap {
            argsz: argsz::<VfioIommuType1DmaUnmap>(),
            flags: 0,
            iova,
            size: len as u64,
        };
        ioctl_ref(&self.container, VFIO_IOMMU_UNMAP_DMA, &mut unmap)
            .map_err(|source| VfioError::DmaUnmap { iova, len, source })?;
        if unmap.size != len as u64 {
            return Err(VfioError::DmaUnmap {
                iova,
                len,
                source: std::io::Error::other(format!(
                    "the kernel unmapped {:#x} bytes",
                    unmap.size
                )),
            });
        }
        Ok(())
    }
}

impl Drop for DmaMapping {
    fn drop(&mut self) {
        if !self.unmapped {
            if let Err(err) = self.do_unmap() {
                log::error!("{err}");
            }
        }
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
