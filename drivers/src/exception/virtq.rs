//! One split virtqueue (virtio 1.2, section 2.7) in memory we own, from
//! the driver's side: we fill descriptors and the available ring, the
//! device (vhost-net's kernel worker) fills the used ring.
//!
//! Layout, each part at the alignment the specification asks (2.7):
//! descriptor table (16 bytes per entry, align 16), available ring
//! (`flags`, `idx`, `ring[num]`, `used_event`: u16 each, align 2), used
//! ring (`flags`, `idx` u16, `ring[num]` of `{id: u32, len: u32}`,
//! `avail_event` u16, align 4). Each part starts on its own 4 KiB page
//! here.
//!
//! Ordering with the device (2.7.13): descriptors and ring entries are
//! written before the available index is published with a release store;
//! the used index is read with an acquire load before the entries it
//! covers; and a full fence separates publishing from reading the used
//! ring's NO_NOTIFY flag, which decides whether the device must be kicked.

use std::sync::atomic::{fence, AtomicU16, AtomicU32, Ordering};

/// Entries per virtqueue (a power of two, as split rings need).
pub const QUEUE_SIZE: u16 = 256;
/// Bytes from the start of a queue to its available ring and used ring.
const AVAIL_OFFSET: usize = 4096;
const USED_OFFSET: usize = 8192;
/// Bytes one virtqueue's rings take.
pub const RINGS_BYTES: usize = 12288;

/// `VRING_DESC_F_WRITE`: the device writes this buffer (RX).
pub const DESC_F_WRITE: u16 = 2;
/// `VRING_AVAIL_F_NO_INTERRUPT`: we poll, the device need not signal.
const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// `VRING_USED_F_NO_NOTIFY`: the device is running and needs no kick.
const USED_F_NO_NOTIFY: u16 = 1;

/// The driver's view of one virtqueue at `base`.
#[derive(Debug)]
pub struct Virtq {
    base: *mut u8,
    /// Next available index to publish (our shadow of `avail.idx`).
    avail_idx: u16,
    /// Next used entry to read.
    pub last_used: u16,
}

// SAFETY: the rings are plain memory that outlives the Virtq (its owner
// keeps the mapping alive), and only the one owner of the Virtq touches
// the driver's side, through `&mut self`; the device's side is reached
// through atomics only.
unsafe impl Send for Virtq {}

impl Virtq {
    /// A virtqueue over the `RINGS_BYTES` at `base`, which must be zeroed,
    /// 4096-aligned and stay mapped as long as the Virtq lives.
    ///
    /// # Safety
    /// `base` points to `RINGS_BYTES` of zeroed, writable memory aligned
    /// to 4096 that outlives the returned value and that nothing else
    /// writes except the device through the used ring.
    pub unsafe fn new(base: *mut u8) -> Virtq {
        let q = Virtq {
            base,
            avail_idx: 0,
            last_used: 0,
        };
        q.avail_flags()
            .store(AVAIL_F_NO_INTERRUPT, Ordering::Relaxed);
        q
    }

    /// Addresses of the descriptor table, the available ring and the used
    /// ring, for VHOST_SET_VRING_ADDR.
    pub fn addrs(&self) -> super::vhost_ioctl::VringAddrs {
        let b = self.base as u64;
        super::vhost_ioctl::VringAddrs {
            desc: b,
            avail: b + AVAIL_OFFSET as u64,
            used: b + USED_OFFSET as u64,
        }
    }

    fn u16_at(&self, off: usize) -> &AtomicU16 {
        debug_assert!(off + 2 <= RINGS_BYTES && off.is_multiple_of(2));
        // SAFETY: off is inside the rings (callers pass offsets of fields
        // of a QUEUE_SIZE ring) and even; the memory lives as long as
        // self (Virtq::new's contract); AtomicU16 has u16's layout.
        unsafe { &*(self.base.add(off) as *const AtomicU16) }
    }

    fn u32_at(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off + 4 <= RINGS_BYTES && off.is_multiple_of(4));
        // SAFETY: as in u16_at, with a 4-aligned offset.
        unsafe { &*(self.base.add(off) as *const AtomicU32) }
    }

    fn avail_flags(&self) -> &AtomicU16 {
        self.u16_at(AVAIL_OFFSET)
    }

    /// Write descriptor `id` (`id < QUEUE_SIZE`): one buffer, no chain.
    pub fn set_desc(&mut self, id: u16, addr: u64, len: u32, flags: u16) {
        let id = usize::from(id % QUEUE_SIZE);
        let off = id * 16;
        // SAFETY: the 16 bytes of descriptor `id` are inside the table;
        // the device reads them only once the id is published in the
        // available ring (release store in `publish`).
        unsafe {
            let p = self.base.add(off);
            std::ptr::write_volatile(p as *mut u64, addr.to_le());
            std::ptr::write_volatile(p.add(8) as *mut u32, len.to_le());
            std::ptr::write_volatile(p.add(12) as *mut u16, flags.to_le());
            std::ptr::write_volatile(p.add(14) as *mut u16, 0);
        }
    }

    /// Put descriptor `id` in the available ring (seen by the device at
    /// the next `publish`).
    pub fn push_avail(&mut self, id: u16) {
        let slot = usize::from(self.avail_idx % QUEUE_SIZE);
        self.u16_at(AVAIL_OFFSET + 4 + 2 * slot)
            .store(id.to_le(), Ordering::Relaxed);
        self.avail_idx = self.avail_idx.wrapping_add(1);
    }

    /// Make what was pushed visible to the device; returns whether it must
    /// be kicked (it is not polling the ring right now).
    pub fn publish(&mut self) -> bool {
        self.u16_at(AVAIL_OFFSET + 2)
            .store(self.avail_idx.to_le(), Ordering::Release);
        fence(Ordering::SeqCst);
        u16::from_le(self.u16_at(USED_OFFSET).load(Ordering::Relaxed)) & USED_F_NO_NOTIFY == 0
    }

    /// The device's used index.
    pub fn used_idx(&self) -> u16 {
        u16::from_le(self.u16_at(USED_OFFSET + 2).load(Ordering::Acquire))
    }

    /// Used entry at index `at` (mod the ring size): (descriptor id,
    /// bytes written).
    pub fn used_elem(&self, at: u16) -> (u32, u32) {
        let slot = usize::from(at % QUEUE_SIZE);
        let off = USED_OFFSET + 4 + 8 * slot;
        (
            u32::from_le(self.u32_at(off).load(Ordering::Relaxed)),
            u32::from_le(self.u32_at(off + 4).load(Ordering::Relaxed)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Play the device by hand on a zeroed page set: what the driver
    /// publishes is where the specification puts it, and used entries
    /// written there are read back.
    #[test]
    fn layout_and_indices() {
        let mut mem = memmap2::MmapMut::map_anon(RINGS_BYTES).unwrap();
        // SAFETY: a fresh zeroed anonymous mapping, page-aligned, alive
        // until the end of the test, after the Virtq.
        let mut q = unsafe { Virtq::new(mem.as_mut_ptr()) };
        q.set_desc(3, 0x1122_3344_5566_7788, 2048, DESC_F_WRITE);
        q.push_avail(3);
        q.push_avail(7);
        assert!(q.publish(), "a fresh used ring asks for kicks");
        let addrs = q.addrs();
        assert_eq!(addrs.avail - addrs.desc, 4096);
        assert_eq!(addrs.used - addrs.desc, 8192);
        // `q` is not used again: its pointer gives way to this reference.
        let m = &mut mem[..];
        assert_eq!(&m[48..56], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(&m[56..60], &2048u32.to_le_bytes());
        assert_eq!(&m[60..62], &DESC_F_WRITE.to_le_bytes());
        // avail: flags NO_INTERRUPT, idx 2, ring [3, 7]
        assert_eq!(&m[4096..4104], &[1, 0, 2, 0, 3, 0, 7, 0]);
        // The device uses descriptor 7 (100 bytes) and asks for no kicks.
        m[8192] = 1;
        m[8194] = 1;
        m[8196..8200].copy_from_slice(&7u32.to_le_bytes());
        m[8200..8204].copy_from_slice(&100u32.to_le_bytes());
        // SAFETY: as above.
        let mut q = unsafe { Virtq::new(mem.as_mut_ptr()) };
        assert_eq!(q.used_idx(), 1);
        assert_eq!(q.used_elem(0), (7, 100));
        assert_eq!(q.used_elem(QUEUE_SIZE), (7, 100), "indices wrap");
        assert!(!q.publish(), "NO_NOTIFY set: no kick");
    }
}
