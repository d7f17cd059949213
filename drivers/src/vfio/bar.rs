//! A device BAR as a [`RegisterSpace`]: a volatile view of an mmap of the
//! region when vfio allows it (`VFIO_REGION_INFO_FLAG_MMAP`), else pread and
//! pwrite on the device fd at the region's offset.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use memmap2::{MmapOptions, MmapRaw};

use crate::mmio::RegisterSpace;

/// How the registers are reached.
enum Access {
    /// A shared mapping of `len` bytes, owned by the Bar (unmapped on drop).
    /// Raw: the device changes it behind Rust's back, so it is only ever
    /// touched with volatile accesses, never through a reference.
    Mapped(MmapRaw),
    /// `pread`/`pwrite` of the file at `offset + register offset`.
    File { fd: Arc<OwnedFd>, offset: u64 },
}

/// One BAR of a device (or, in tests, any mapping or file standing in for
/// one). Registers are 32 bits wide, little-endian, at 4-byte aligned
/// offsets. An access outside the BAR or misaligned reads as all ones and
/// writes nothing (and trips a `debug_assert!`), as [`RegisterSpace`] says.
pub struct Bar {
    index: u32,
    len: usize,
    access: Access,
}

impl fmt::Debug for Bar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bar")
            .field("index", &self.index)
            .field("len", &self.len)
            .field("mapped", &self.is_mapped())
            .finish()
    }
}

impl Bar {
    /// Maps `len` bytes of `fd` at `offset` (shared, read-write).
    pub(crate) fn map(fd: &OwnedFd, offset: u64, len: usize, index: u32) -> io::Result<Bar> {
        // memmap2 casts the offset to off_t; refuse one that would wrap.
        libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
        if len == 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let map = MmapOptions::new()
            .offset(offset)
            .len(len)
            .map_raw(fd.as_raw_fd())?;
        Ok(Bar {
            index,
            len,
            access: Access::Mapped(map),
        })
    }

    /// Register access through pread/pwrite of `fd` at `offset`, for
    /// regions vfio does not let us mmap.
    pub(crate) fn file(fd: Arc<OwnedFd>, offset: u64, len: usize, index: u32) -> Bar {
        Bar {
            index,
            len,
            access: Access::File { fd, offset },
        }
    }

    /// An anonymous mapping of `len` bytes standing in for a BAR (tests).
    #[cfg(test)]
    pub(crate) fn anonymous(len: usize) -> io::Result<Bar> {
        let map = MmapOptions::new().len(len).map_anon()?;
        Ok(Bar {
            index: 0,
            len,
            access: Access::Mapped(map.into()),
        })
    }

    /// The vfio region index (BAR number).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// True when registers are reached through an mmap, false for the
    /// pread/pwrite fallback (a system call per access: fine for setup,
    /// far too slow for a data path).
    pub fn is_mapped(&self) -> bool {
        matches!(self.access, Access::Mapped(_))
    }

    fn in_range(&self, offset: u32) -> bool {
        offset.is_multiple_of(4)
            && (offset as usize)
                .checked_add(4)
                .is_some_and(|end| end <= self.len)
    }

    /// The register at `offset`, or `None` when `offset` is misaligned,
    /// outside the BAR, or (fallback only) the pread failed.
    pub fn try_read32(&self, offset: u32) -> Option<u32> {
        if !self.in_range(offset) {
            return None;
        }
        match &self.access {
            Access::Mapped(map) => {
                // SAFETY: offset + 4 <= len and offset is 4-aligned in a
                // page-aligned mapping of len bytes this Bar owns, so the
                // pointer is valid and aligned for a u32. Volatile: the
                // device may change the register at any time.
                let value = unsafe {
                    map.as_ptr()
                        .add(offset as usize)
                        .cast::<u32>()
                        .read_volatile()
                };
                Some(u32::from_le(value))
            }
            Access::File { fd, offset: base } => {
                let mut bytes = [0u8; 4];
                pread_exact(fd, &mut bytes, base + u64::from(offset)).ok()?;
                Some(u32::from_le_bytes(bytes))
            }
        }
    }

    /// Writes the register at `offset`; false (nothing written) when
    /// `offset` is misaligned, outside the BAR, or the pwrite failed.
    pub fn try_write32(&self, offset: u32, value: u32) -> bool {
        if !self.in_range(offset) {
            return false;
        }
        match &self.access {
            Access::Mapped(map) => {
                // SAFETY: as in try_read32: in bounds, aligned, owned mapping.
                unsafe {
                    map.as_mut_ptr()
                        .add(offset as usize)
                        .cast::<u32>()
                        .write_volatile(value.to_le())
                };
                true
            }
            Access::File { fd, offset: base } => {
                pwrite_exact(fd, &value.to_le_bytes(), base + u64::from(offset)).is_ok()
            }
        }
    }
}

impl RegisterSpace for Bar {
    fn read32(&self, offset: u32) -> u32 {
        debug_assert!(
            self.in_range(offset),
            "register read at {offset:#x} outside or misaligned in BAR{} of {:#x} bytes",
            self.index,
            self.len
        );
        self.try_read32(offset).unwrap_or(u32::MAX)
    }

    fn write32(&self, offset: u32, value: u32) {
        debug_assert!(
            self.in_range(offset),
            "register write at {offset:#x} outside or misaligned in BAR{} of {:#x} bytes",
            self.index,
            self.len
        );
        let _ = self.try_write32(offset, value);
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// pread of exactly `buf.len()` bytes at `offset`.
pub(crate) fn pread_exact(fd: &OwnedFd, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let offset =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
    // SAFETY: buf is a valid, writable buffer of buf.len() bytes and the fd
    // is open for the call.
    let n = unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), offset) };
    match n {
        n if n < 0 => Err(io::Error::last_os_error()),
        n if n as usize == buf.len() => Ok(()),
        n => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("short read: {n} of {} bytes", buf.len()),
        )),
    }
}

/// pwrite of exactly `buf.len()` bytes at `offset`.
pub(crate) fn pwrite_exact(fd: &OwnedFd, buf: &[u8], offset: u64) -> io::Result<()> {
    let offset =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
    // SAFETY: buf is a valid buffer of buf.len() bytes and the fd is open
    // for the call.
    let n = unsafe { libc::pwrite(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), offset) };
    match n {
        n if n < 0 => Err(io::Error::last_os_error()),
        n if n as usize == buf.len() => Ok(()),
        n => Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write: {n} of {} bytes", buf.len()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_bar_reads_back_writes_and_checks_bounds() {
        let bar = Bar::anonymous(0x4000).expect("anonymous mapping");
        assert!(bar.is_mapped());
        assert_eq!(RegisterSpace::len(&bar), 0x4000);
        assert_eq!(bar.read32(0x8), 0);
        bar.write32(0x8, 0x800c_8483);
        bar.write32(0x3ffc, 0xdead_beef);
        assert_eq!(bar.read32(0x8), 0x800c_8483);
        assert_eq!(bar.read32(0x3ffc), 0xdead_beef);
        // Out of range and misaligned: all ones, nothing written.
        assert_eq!(bar.try_read32(0x4000), None);
        assert_eq!(bar.try_read32(0x3ffe), None);
        assert_eq!(bar.try_read32(0x9), None);
        assert_eq!(bar.try_read32(u32::MAX - 1), None);
        assert!(!bar.try_write32(0x4000, 1));
        assert!(!bar.try_write32(0xa, 1));
        assert_eq!(bar.read32(0x8), 0x800c_8483, "misaligned write ignored");
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Bar>();
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "outside or misaligned")]
    fn out_of_range_read_trips_the_debug_assert() {
        let bar = Bar::anonymous(4096).expect("anonymous mapping");
        let _ = bar.read32(4096);
    }

    #[test]
    #[cfg(not(debug_assertions))]
    fn out_of_range_access_reads_all_ones_in_release() {
        let bar = Bar::anonymous(4096).expect("anonymous mapping");
        assert_eq!(bar.read32(4096), 0xffff_ffff);
        bar.write32(4096, 1);
    }

    #[test]
    fn mapped_bar_is_a_shared_mapping_at_the_region_offset() {
        let file = tempfile::tempfile().expect("temp file");
        file.set_len(0x3000).expect("size");
        let fd = OwnedFd::from(file);
        // The "region" is the second page of the file.
        let bar = Bar::map(&fd, 0x1000, 0x1000, 3).expect("map");
        assert!(bar.is_mapped());
        assert_eq!(bar.index(), 3);
        bar.write32(0x8, 0x1234_5678);
        // Shared: the write reached the file (for a BAR, the device).
        let mut raw = [0u8; 4];
        pread_exact(&fd, &mut raw, 0x1008).expect("pread");
        assert_eq!(raw, [0x78, 0x56, 0x34, 0x12]);
        pwrite_exact(&fd, &[1, 0, 0, 0], 0x1ffc).expect("pwrite");
        assert_eq!(bar.read32(0xffc), 1, "a change behind the mapping is seen");
        assert!(Bar::map(&fd, 0x1000, 0, 3).is_err(), "empty BAR");
        assert!(
            Bar::map(&fd, u64::MAX, 0x1000, 3).is_err(),
            "offset overflows off_t"
        );
    }

    #[test]
    fn file_fallback_uses_pread_and_pwrite_at_the_region_offset() {
        let mut file = tempfile::tempfile().expect("temp file");
        std::io::Write::write_all(&mut file, &[0u8; 0x200]).expect("fill");
        let fd = Arc::new(OwnedFd::from(file));
        // The "region" starts at 0x100 and is 0x40 bytes long.
        let bar = Bar::file(fd.clone(), 0x100, 0x40, 2);
        assert!(!bar.is_mapped());
        assert_eq!(bar.index(), 2);
        bar.write32(0x8, 0x1234_5678);
        assert_eq!(bar.read32(0x8), 0x1234_5678);
        let mut raw = [0u8; 4];
        pread_exact(&fd, &mut raw, 0x108).expect("pread");
        assert_eq!(
            raw,
            [0x78, 0x56, 0x34, 0x12],
            "little-endian at base + offset"
        );
        assert_eq!(bar.try_read32(0x40), None);
        assert!(!bar.try_write32(0x40, 1));
    }
}
