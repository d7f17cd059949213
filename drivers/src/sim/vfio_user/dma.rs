//! Guest RAM as QEMU hands it over with VFIO_USER_DMA_MAP.
//!
//! With `memory-backend-memfd,share=on` QEMU passes one fd per RAM section
//! and the server maps it; without a vIOMMU an IOVA is the guest physical
//! address (shared/reference/vmlab/vfio-user/REPORT.md, "How it is wired").

use memmap2::{MmapOptions, MmapRaw};
use std::fs::File;
use std::sync::Arc;

/// A DMA access the mapped regions do not cover, or a map QEMU asked for
/// that cannot be made.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum DmaError {
    #[error("DMA to IOVA {iova:#x}+{len:#x}: no mapped region covers it")]
    /// No mapped region covers the access.
    #[allow(missing_docs)]
    Unmapped { iova: u64, len: usize },
    #[error("DMA_MAP of IOVA {iova:#x}+{size:#x} without an fd (no shared guest RAM?)")]
    /// QEMU sent no fd: guest RAM is not shared (`share=on`).
    #[allow(missing_docs)]
    NoFd { iova: u64, size: u64 },
    #[error("DMA_MAP of IOVA {iova:#x}+{size:#x}: {reason}")]
    /// mmap refused the region.
    #[allow(missing_docs)]
    Map {
        iova: u64,
        size: u64,
        reason: String,
    },
}

#[derive(Debug)]
struct Region {
    iova: u64,
    size: u64,
    /// Shared with a model's DMA space while it maps the section.
    map: Arc<MmapRaw>,
}

/// The mapped guest RAM regions, looked up by IOVA.
#[derive(Debug, Default)]
pub struct GuestMemory {
    regions: Vec<Region>,
}

impl GuestMemory {
    /// Maps `size` bytes of `fd` from `offset` at `iova` (DMA_MAP).
    pub fn map(
        &mut self,
        iova: u64,
        size: u64,
        fd: Option<File>,
        offset: u64,
    ) -> Result<(), DmaError> {
        let fd = fd.ok_or(DmaError::NoFd { iova, size })?;
        let err = |reason: String| DmaError::Map { iova, size, reason };
        let len =
            usize::try_from(size).map_err(|_| err("size exceeds the address space".into()))?;
        iova.checked_add(size)
            .ok_or_else(|| err("IOVA range wraps".into()))?;
        let map = MmapOptions::new()
            .offset(offset)
            .len(len)
            .map_raw(&fd)
            .map_err(|e| err(e.to_string()))?;
        self.regions.retain(|r| r.iova != iova);
        self.regions.push(Region {
            iova,
            size,
            map: Arc::new(map),
        });
        Ok(())
    }

    /// Drops the regions inside `iova..iova+size` (DMA_UNMAP); returns how
    /// many were dropped.
    pub fn unmap(&mut self, iova: u64, size: u64) -> usize {
        let before = self.regions.len();
        let end = iova.saturating_add(size);
        self.regions
            .retain(|r| !(r.iova >= iova && r.iova + r.size <= end));
        before - self.regions.len()
    }

    /// The section mapped at `iova`: its host address, length and the
    /// mapping (to keep alive while a model's DMA space uses it).
    pub fn section(&self, iova: u64) -> Option<(usize, usize, Arc<MmapRaw>)> {
        let r = self.regions.iter().find(|r| r.iova == iova)?;
        Some((r.map.as_mut_ptr() as usize, r.map.len(), Arc::clone(&r.map)))
    }

    /// Number of mapped regions.
    pub fn regions(&self) -> usize {
        self.regions.len()
    }

    /// The region and the offset in it covering `iova..iova+len`.
    fn find(&self, iova: u64, len: usize) -> Result<(&Region, usize), DmaError> {
        let miss = DmaError::Unmapped { iova, len };
        let end = iova.checked_add(len as u64).ok_or(miss.clone())?;
        let r = self
            .regions
            .iter()
            .find(|r| iova >= r.iova && end <= r.iova + r.size)
            .ok_or(miss)?;
        Ok((r, (iova - r.iova) as usize))
    }

    /// Copies guest memory at `iova` into `dst` (a device read).
    pub fn read(&self, iova: u64, dst: &mut [u8]) -> Result<(), DmaError> {
        let (r, off) = self.find(iova, dst.len())?;
        // SAFETY: `find` checked off..off+len lies inside the mapping, which
        // lives as long as `r`. The guest may write these bytes meanwhile:
        // they are plain data copied through raw pointers (no reference
        // into the mapping is made), so a torn value is what hardware DMA
        // would see too. `dst` is ours and does not overlap guest RAM.
        unsafe {
            std::ptr::copy_nonoverlapping(r.map.as_ptr().add(off), dst.as_mut_ptr(), dst.len())
        };
        Ok(())
    }

    /// Copies `src` into guest memory at `iova` (a device write).
    pub fn write(&self, iova: u64, src: &[u8]) -> Result<(), DmaError> {
        let (r, off) = self.find(iova, src.len())?;
        // SAFETY: as in `read`: the range is inside the mapping, written
        // through a raw pointer only; `src` does not overlap guest RAM.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), r.map.as_mut_ptr().add(off), src.len())
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom, Write};

    #[test]
    fn read_write_through_a_shared_file_and_misses() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&[0u8; 8192]).unwrap();
        let mut m = GuestMemory::default();
        m.map(0x10_0000, 4096, Some(f.try_clone().unwrap()), 4096)
            .unwrap();
        m.write(0x10_0010, b"abcd").unwrap();
        let mut back = [0; 4];
        m.read(0x10_0010, &mut back).unwrap();
        assert_eq!(&back, b"abcd");
        // The write went to the file at offset 4096 + 0x10: shared memory.
        let mut onfile = [0; 4];
        f.seek(SeekFrom::Start(4096 + 0x10)).unwrap();
        f.read_exact(&mut onfile).unwrap();
        assert_eq!(&onfile, b"abcd");
        assert_eq!(
            m.read(0x10_0ffe, &mut back),
            Err(DmaError::Unmapped {
                iova: 0x10_0ffe,
                len: 4
            })
        );
        assert!(matches!(
            m.map(0, 4096, None, 0),
            Err(DmaError::NoFd { .. })
        ));
        assert_eq!(m.unmap(0x10_0000, 4096), 1);
        assert!(m.read(0x10_0010, &mut back).is_err());
    }
}
