//! Byte access to a piece of DMA memory the device also reads and writes
//! (admin-queue descriptors and buffers, descriptor rings): volatile, so
//! the compiler neither caches nor elides what the device sees.

use crate::memory::{ArenaError, DmaArena, DmaSlice, Iova};

/// A carved, mapped slice with bounds-checked volatile access.
#[derive(Debug)]
pub struct DmaBytes {
    mem: DmaSlice,
}

// SAFETY: DmaBytes owns its slice (which keeps the region mapped); every
// access goes through bounds-checked volatile reads and writes of plain
// bytes/words, so moving it to another thread is as sound as moving the
// region itself.
unsafe impl Send for DmaBytes {}

impl DmaBytes {
    /// `len` zeroed bytes of `arena`, aligned to `align` on the bus.
    pub fn carve(arena: &DmaArena, len: usize, align: usize) -> Result<DmaBytes, ArenaError> {
        Ok(DmaBytes {
            mem: arena.carve(len, align)?,
        })
    }

    /// Bytes.
    pub fn len(&self) -> usize {
        self.mem.len()
    }

    /// Never true (empty slices are not carved).
    pub fn is_empty(&self) -> bool {
        self.mem.is_empty()
    }

    /// Where the device sees byte 0.
    pub fn iova(&self) -> Iova {
        self.mem.iova()
    }

    /// Copy `data` to `offset..`.
    pub fn write(&self, offset: usize, data: &[u8]) {
        assert!(offset + data.len() <= self.mem.len());
        let p = self.mem.as_ptr().as_ptr();
        for (i, b) in data.iter().enumerate() {
            // SAFETY: offset + i < len (asserted), inside the slice's
            // mapping, which the slice keeps alive.
            unsafe { p.add(offset + i).write_volatile(*b) };
        }
    }

    /// Copy `offset..offset + out.len()` into `out`.
    pub fn read(&self, offset: usize, out: &mut [u8]) {
        assert!(offset + out.len() <= self.mem.len());
        let p = self.mem.as_ptr().as_ptr();
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: as in `write`.
            *b = unsafe { p.add(offset + i).read_volatile() };
        }
    }

    /// The little-endian u64 at `offset` (8-byte aligned), in one access.
    #[inline(always)]
    pub fn read_u64(&self, offset: usize) -> u64 {
        assert!(offset + 8 <= self.mem.len() && offset.is_multiple_of(8));
        // SAFETY: in bounds (asserted); 8-byte aligned because the slice is
        // carved at an alignment of at least 128 and the offset is a
        // multiple of 8. One volatile load: the device writes this memory.
        let v = unsafe {
            self.mem
                .as_ptr()
                .as_ptr()
                .add(offset)
                .cast::<u64>()
                .read_volatile()
        };
        u64::from_le(v)
    }

    /// Store the little-endian u64 at `offset` (8-byte aligned).
    #[inline(always)]
    pub fn write_u64(&self, offset: usize, v: u64) {
        assert!(offset + 8 <= self.mem.len() && offset.is_multiple_of(8));
        // SAFETY: as in `read_u64`.
        unsafe {
            self.mem
                .as_ptr()
                .as_ptr()
                .add(offset)
                .cast::<u64>()
                .write_volatile(v.to_le())
        }
    }
}
