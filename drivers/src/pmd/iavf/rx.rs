//! The iavf RX ring: 32-byte legacy descriptors (docs/facts/nic-facts.md
//! B.5.1; the 16-byte format is not usable with iavf, and without
//! RX_FLEX_DESC the format is RXDID 1, B.8 #14).

use super::ring::{DescMem, RingError};
use crate::burst::Burst;
use crate::mbuf::{Mbuf, PortId};
use crate::memory::DmaArena;
use crate::mmio::RegisterSpace;
use crate::pmd::adv_desc::RxCounters;
use crate::pool::PoolCache;
use crate::port::QueueCounters;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

/// RX descriptor bytes (B.5.1).
pub const RX_DESC_SIZE: usize = 32;
/// qword1 status: descriptor done, bit 0 (B.5.1).
pub const RX_STATUS_DD: u64 = 1 << 0;
/// qword1 status: end of frame, bit 1 (B.5.1).
pub const RX_STATUS_EOF: u64 = 1 << 1;
/// qword1 status FLTSTAT, bits 13:12; 3 = the RSS hash is in bytes 4..7
/// (B.5.1).
pub const RX_FLTSTAT_SHIFT: u32 = 12;
/// FLTSTAT value for "RSS hash present" (B.5.1).
pub const RX_FLTSTAT_RSS: u64 = 3;
/// qword1 error bits start at bit 19 (B.5.1).
pub const RX_ERROR_SHIFT: u32 = 19;
/// Errors that make the frame bad: RXE (0) and OVERSIZE (6) (B.5.1).
pub const RX_FRAME_ERRORS: u64 = (1 << RX_ERROR_SHIFT) | (1 << (RX_ERROR_SHIFT + 6));
/// qword1 length_pbuf, bits 51:38 (B.5.1).
pub const RX_LEN_PBUF_SHIFT: u32 = 38;
/// length_pbuf mask, 14 bits (B.5.1).
pub const RX_LEN_PBUF_MASK: u64 = 0x3FFF;
/// databuffer_size granule (B.8 #4).
pub const RX_BUF_GRANULE: usize = 128;
/// Largest databuffer_size (B.8 #4: 16384 − 128).
pub const RX_BUF_MAX: usize = 16384 - 128;

/// An RX ring: slots `[next, tail)` hold posted buffers; at most
/// `count − 1` are posted, so the first start writes QRX_TAIL = count − 1
/// (B.6 step 9, B.8 #5).
#[derive(Debug)]
pub struct IavfRxRing {
    ring: DescMem,
    slots: Box<[Option<Mbuf>]>,
    next: usize,
    tail: usize,
    /// Refill once this many slots are free (B.8 #5: DPDK 32).
    free_thresh: usize,
    discarding: bool,
    nombuf_counted: usize,
    buf_size: u32,
    tail_reg: u32,
    port: PortId,
    counters: Arc<RxCounters>,
}

impl IavfRxRing {
    /// A ring of `count` descriptors whose buffers take `data_room` bytes
    /// (told to the PF rounded down to 128, B.8 #4).
    pub fn new(
        count: usize,
        data_room: usize,
        tail_reg: u32,
        port: PortId,
        arena: &DmaArena,
    ) -> Result<IavfRxRing, RingError> {
        let buf = (data_room.min(RX_BUF_MAX) / RX_BUF_GRANULE) * RX_BUF_GRANULE;
        if buf == 0 {
            return Err(RingError::BufferTooSmall(data_room));
        }
        let ring = DescMem::new(count, RX_DESC_SIZE, arena)?;
        Ok(IavfRxRing {
            ring,
            slots: (0..count).map(|_| None).collect(),
            next: 0,
            tail: 0,
            free_thresh: (count / 4).clamp(1, 32),
            discarding: false,
            nombuf_counted: 0,
            buf_size: buf as u32,
            tail_reg,
            port,
            counters: Arc::new(RxCounters::default()),
        })
    }

    /// Descriptors.
    pub fn count(&self) -> usize {
        self.ring.count()
    }
    /// Ring base on the bus.
    pub fn iova(&self) -> u64 {
        self.ring.iova()
    }
    /// databuffer_size told to the PF.
    pub fn buf_size(&self) -> u32 {
        self.buf_size
    }
    /// The ring's counters.
    pub fn counters(&self) -> &Arc<RxCounters> {
        &self.counters
    }
    /// The tail value last written (the next slot to post).
    pub fn tail(&self) -> usize {
        self.tail
    }
    /// Buffers posted now.
    pub fn posted(&self) -> usize {
        (self.tail + self.ring.count() - self.next) % self.ring.count()
    }

    /// Post a buffer in every free slot but one and write the tail.
    #[inline]
    pub fn refill<R: RegisterSpace + ?Sized>(&mut self, regs: &R, cache: &mut PoolCache) {
        let count = self.ring.count();
        let want = count - 1 - self.posted();
        let mut done = 0;
        while done < want {
            let Some(m) = cache.alloc() else {
                let still = self.nombuf_counted.saturating_sub(done);
                let new = (want - done).saturating_sub(still);
                if new > 0 {
                    QueueCounters::add(&self.counters.nombuf, new as u64);
                }
                self.nombuf_counted = want - done;
                break;
            };
            let i = self.tail;
            // Read format: packet address, header address 0 (bit 0 of
            // the header address overlays DD, so this also clears DD),
            // reserved quadwords 0 (B.5.1).
            self.ring.write(i, 0, m.data_iova().get());
            self.ring.write(i, 1, 0);
            self.ring.write(i, 2, 0);
            self.ring.write(i, 3, 0);
            self.slots[i] = Some(m);
            self.tail = (i + 1) % count;
            done += 1;
        }
        if done == want {
            self.nombuf_counted = 0;
        }
        if done > 0 {
            // Release: descriptors written before the tail hands them to
            // the device (B.8 #5 "only after a wmb"); pairs with the
            // device's descriptor fetch after it sees the tail.
            fence(Ordering::Release);
            regs.write32(self.tail_reg, self.tail as u32);
        }
    }

    /// Receive up to `max` frames onto `out`.
    #[inline]
    pub fn rx_burst<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
        cache: &mut PoolCache,
        out: &mut Burst,
        max: usize,
    ) -> usize {
        let count = self.ring.count();
        let max = max.min(out.remaining_capacity());
        let (mut n, mut bytes, mut too_long, mut errors) = (0usize, 0u64, 0u64, 0u64);
        while n < max && self.next != self.tail {
            let i = self.next;
            let q1 = self.ring.read(i, 1);
            if q1 & RX_STATUS_DD == 0 {
                break;
            }
            // Acquire: qword1 (DD) first, then the rest (B.8 #6); pairs
            // with the device writing DD last.
            fence(Ordering::Acquire);
            let q0 = self.ring.read(i, 0);
            self.next = (i + 1) % count;
            let Some(mut m) = self.slots[i].take() else {
                continue;
            };
            let eof = q1 & RX_STATUS_EOF != 0;
            if self.discarding || !eof {
                // A frame over several buffers: no chaining, dropped once.
                if !self.discarding {
                    too_long += 1;
                }
                self.discarding = !eof;
                cache.free(m);
                continue;
            }
            let len = ((q1 >> RX_LEN_PBUF_SHIFT) & RX_LEN_PBUF_MASK) as usize;
            if q1 & RX_FRAME_ERRORS != 0 || m.set_len(len).is_err() {
                errors += 1;
                cache.free(m);
                continue;
            }
            m.set_port(self.port);
            if (q1 >> RX_FLTSTAT_SHIFT) & 3 == RX_FLTSTAT_RSS {
                m.set_rss_hash((q0 >> 32) as u32);
            }
            bytes += len as u64;
            // Cannot fail: n < max <= remaining capacity.
            let _ = out.try_push(m);
            n += 1;
        }
        let c = &self.counters;
        if n > 0 {
            QueueCounters::add(&c.q.packets, n as u64);
            QueueCounters::add(&c.q.bytes, bytes);
        }
        if too_long > 0 {
            QueueCounters::add(&c.frame_too_long, too_long);
        }
        if errors > 0 {
            QueueCounters::add(&c.frame_errors, errors);
        }
        if count - 1 - self.posted() >= self.free_thresh {
            self.refill(regs, cache);
        }
        n
    }

    /// Give every buffer back (the device has stopped: DISABLE_QUEUES
    /// answered, or a VF reset completed); complete frames never received
    /// are counted in `stop_discarded`. The next start posts from slot 0,
    /// as the PF's new queue context expects.
    pub fn release_all(&mut self, cache: &mut PoolCache) {
        let count = self.ring.count();
        let mut lost = 0u64;
        let mut counted = self.discarding;
        let mut i = self.next;
        while i != self.tail {
            let q1 = self.ring.read(i, 1);
            if q1 & RX_STATUS_DD == 0 {
                break;
            }
            if q1 & RX_STATUS_EOF != 0 {
                if !counted {
                    lost += 1;
                }
                counted = false;
            }
            i = (i + 1) % count;
        }
        if lost > 0 {
            QueueCounters::add(&self.counters.stop_discarded, lost);
        }
        for s in self.slots.iter_mut() {
            if let Some(m) = s.take() {
                cache.free(m);
            }
        }
        self.reset_position();
    }

    /// Forget every buffer without freeing it (the device may still write
    /// into it); counted in `leaked`.
    pub fn abandon_all(&mut self) -> usize {
        let n = crate::pmd::adv_desc::abandon_slots(&mut self.slots, &self.counters.leaked);
        self.reset_position();
        n
    }

    fn reset_position(&mut self) {
        self.next = 0;
        self.tail = 0;
        self.discarding = false;
        self.nombuf_counted = 0;
    }
}
