//! The RX descriptor ring.

use super::desc::{
    DescRing, RingError, RxRead, RxWriteBack, RXD_RSS_TYPE_MASK, RXD_STAT_DD, RXD_STAT_EOP,
    RXD_STAT_IPCS, RXD_STAT_L4CS, RXD_STAT_UDPCS, RXD_STAT_VP,
};
use super::{Flavor, RxHw, RxRegs, SRRCTL_BSIZEPKT_SHIFT};
use crate::burst::Burst;
use crate::mbuf::{Mbuf, OlFlags, PortId};
use crate::memory::DmaArena;
use crate::mmio::RegisterSpace;
use crate::pool::PoolCache;
use crate::port::QueueCounters;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::Arc;

/// Counters of one RX ring (single writer: the ring's owner).
///
/// Every frame or buffer is counted once, under one reason: a frame the
/// ring drops is never also counted as received, and a refill that fails
/// again for the same empty slot does not count it again.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct RxCounters {
    /// Frames and bytes delivered; `dropped` = frames lost for want of a
    /// buffer are not seen by software (DROP_EN), so it stays 0.
    pub q: QueueCounters,
    /// Frames that spanned more than one descriptor and were dropped (no
    /// buffer chaining yet), once per frame.
    pub frame_too_long: AtomicU64,
    /// Frames the device marked with a frame error, dropped, once per
    /// frame.
    pub frame_errors: AtomicU64,
    /// Ring slots left without a buffer because the pool had none, once
    /// per slot each time it is emptied (not once per failed retry).
    pub nombuf: AtomicU64,
    /// Buffers never given back because the device could not be shown to
    /// have stopped DMA into them (a queue whose ENABLE never read back 0).
    pub leaked: AtomicU64,
    /// Complete frames the device had written back (DD) that software
    /// never received, because the queue was stopped (PF reset, stop).
    pub stop_discarded: AtomicU64,
}

/// An RX ring: descriptors in DMA memory and the buffer posted in each.
///
/// Slots `[next, tail)` (modulo the count) hold posted buffers; the tail
/// register says the same to the device. At most `count - 1` are posted, so
/// RDT never equals RDH with a full ring (nic-facts-igbvf.md C.9 #16).
#[derive(Debug)]
pub struct RxRing {
    ring: DescRing,
    slots: Box<[Option<Mbuf>]>,
    /// Next descriptor to look at for DD.
    next: usize,
    /// Next descriptor to post a buffer in (= RDT).
    tail: usize,
    /// Post new buffers once this many slots are free.
    free_thresh: usize,
    /// Inside a multi-descriptor frame being dropped.
    discarding: bool,
    /// Free slots already counted in `nombuf` and still without a buffer.
    nombuf_counted: usize,
    buf_size: u32,
    regs: RxRegs,
    flavor: Flavor,
    port: PortId,
    counters: Arc<RxCounters>,
}

impl RxRing {
    /// A ring of `count` descriptors whose buffers hold `data_room` bytes
    /// each (the device is told the size rounded down to whole KiB).
    pub fn new(
        count: usize,
        data_room: usize,
        regs: RxRegs,
        flavor: Flavor,
        port: PortId,
        arena: &DmaArena,
    ) -> Result<RxRing, RingError> {
        let kib = data_room >> SRRCTL_BSIZEPKT_SHIFT;
        if kib == 0 {
            return Err(RingError::BufferTooSmall(data_room));
        }
        let ring = DescRing::new(count, arena)?;
        Ok(RxRing {
            ring,
            slots: (0..count).map(|_| None).collect(),
            next: 0,
            tail: 0,
            free_thresh: (count / 4).clamp(1, 32),
            discarding: false,
            nombuf_counted: 0,
            buf_size: (kib.min(0x7F) << SRRCTL_BSIZEPKT_SHIFT) as u32,
            regs,
            flavor,
            port,
            counters: Arc::new(RxCounters::default()),
        })
    }

    /// What the control thread needs to program the queue.
    pub fn hw(&self) -> RxHw {
        RxHw {
            regs: self.regs,
            iova: self.ring.iova(),
            len_bytes: self.ring.len_bytes(),
            buf_size: self.buf_size,
        }
    }

    /// The descriptor memory.
    pub fn memory(&self) -> &crate::memory::DmaSlice {
        self.ring.memory()
    }

    /// The ring's counters.
    pub fn counters(&self) -> &Arc<RxCounters> {
        &self.counters
    }

    /// Descriptors in the ring.
    pub fn count(&self) -> usize {
        self.ring.count()
    }

    /// Buffers currently posted to the device.
    pub fn posted(&self) -> usize {
        (self.tail + self.ring.count() - self.next) % self.ring.count()
    }

    /// Post buffers in every free slot but one and write the tail. Used at
    /// (re)start, after the control thread enabled the queue.
    pub fn start<R: RegisterSpace + ?Sized>(&mut self, regs: &R, cache: &mut PoolCache) {
        self.refill(regs, cache);
    }

    /// Post buffers in free slots and, if any were posted, write the tail
    /// after a release fence.
    #[inline]
    pub fn refill<R: RegisterSpace + ?Sized>(&mut self, regs: &R, cache: &mut PoolCache) {
        let count = self.ring.count();
        let want = count - 1 - self.posted();
        let mut done = 0;
        while done < want {
            let Some(m) = cache.alloc() else {
                self.count_nombuf(want - done, done);
                break;
            };
            let i = self.tail;
            self.ring.write(
                i,
                RxRead {
                    pkt_addr: m.data_iova().get(),
                    hdr_addr: 0,
                }
                .encode(),
            );
            self.slots[i] = Some(m);
            self.tail = (i + 1) % count;
            done += 1;
        }
        if done == want {
            self.nombuf_counted = 0;
        }
        if done > 0 {
            // Release: the descriptor stores above must be visible to the
            // device before the tail store below makes them its own. The
            // partner is the device's read of the descriptors it fetches
            // after it sees the new RDT (nic-facts-igbvf.md C.9 #16).
            fence(Ordering::Release);
            regs.write32(self.regs.tail, self.tail as u32);
        }
    }

    /// `short` free slots stay empty after `filled` were given a buffer:
    /// count only the ones not counted by an earlier failed refill. The
    /// slots filled now are taken to be the earliest counted ones, so a
    /// slot is counted once each time it goes without a buffer.
    #[cold]
    fn count_nombuf(&mut self, short: usize, filled: usize) {
        let still_counted = self.nombuf_counted.saturating_sub(filled);
        let new = short.saturating_sub(still_counted);
        if new > 0 {
            QueueCounters::add(&self.counters.nombuf, new as u64);
        }
        self.nombuf_counted = short;
    }

    /// Receive up to `max` frames onto `out`. Stops at the first descriptor
    /// the device has not written back (no DD). Refills and writes the tail
    /// once free slots reach the threshold.
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
        let (mut n, mut bytes) = (0usize, 0u64);
        let (mut too_long, mut errors) = (0u64, 0u64);
        while n < max && self.next != self.tail {
            let i = self.next;
            let status = self.ring.read_dword(i, 2);
            if status & RXD_STAT_DD == 0 {
                break;
            }
            // Acquire: DD was seen; the rest of the descriptor (and the
            // frame data) must be read after it. Pairs with the device
            // writing the status dword last (nic-facts-igbvf.md C.4.1,
            // C.10.1 "status (with DD) last").
            fence(Ordering::Acquire);
            let wb = RxWriteBack::decode(self.ring.read(i));
            let m = self.slots[i].take();
            self.next = (i + 1) % count;
            let Some(mut m) = m else {
                // Cannot happen: every slot in [next, tail) holds a buffer.
                continue;
            };
            let eop = wb.status_error & RXD_STAT_EOP != 0;
            if self.discarding || !eop {
                // Part of a frame that spans descriptors: no chaining yet,
                // so the whole frame goes, counted once at its first part.
                if !self.discarding {
                    too_long += 1;
                }
                self.discarding = !eop;
                cache.free(m);
                continue;
            }
            if wb.status_error & self.flavor.rx_frame_err_mask != 0
                || m.set_len(wb.length as usize).is_err()
            {
                errors += 1;
                cache.free(m);
                continue;
            }
            self.fill_meta(&mut m, &wb);
            bytes += wb.length as u64;
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

    #[inline(always)]
    fn fill_meta(&self, m: &mut Mbuf, wb: &RxWriteBack) {
        m.set_port(self.port);
        let st = wb.status_error;
        let f = &self.flavor;
        let mut flags = OlFlags::NONE;
        if st & f.rx_stat_ignore_csum == 0 {
            if st & RXD_STAT_IPCS != 0 {
                flags |= if st & f.rx_err_ipe != 0 {
                    OlFlags::RX_IP_CKSUM_BAD
                } else {
                    OlFlags::RX_IP_CKSUM_GOOD
                };
            }
            if st & (RXD_STAT_L4CS | RXD_STAT_UDPCS) != 0 {
                flags |= if st & f.rx_err_l4e != 0 {
                    OlFlags::RX_L4_CKSUM_BAD
                } else {
                    OlFlags::RX_L4_CKSUM_GOOD
                };
            }
        }
        if st & RXD_STAT_VP != 0 {
            flags |= OlFlags::RX_VLAN_STRIPPED;
            // I350 VF: on a looped-back frame (LB) the field is big-endian
            // (nic-facts-igbvf.md C.4.1, C.9 #14). Elsewhere the flavor's
            // bit is 0 and this branch is never taken.
            let vlan = if st & f.rx_stat_vlan_bswap != 0 {
                wb.vlan.swap_bytes()
            } else {
                wb.vlan
            };
            m.set_vlan_tci(vlan);
        }
        m.set_ol_flags(flags);
        // The hash field holds an RSS hash only when the RSS type is set
        // (nic-facts-igbvf.md C.4.1 pkt_info).
        if wb.pkt_info & RXD_RSS_TYPE_MASK != 0 {
            m.set_rss_hash(wb.rss);
        }
    }

    /// Give every posted buffer back and forget the ring's position: the
    /// queue must be disabled (or the device reset) first. The next
    /// [`start`](Self::start) posts from descriptor 0 again, matching
    /// RDH = RDT = 0 after reprogramming.
    ///
    /// Complete frames still in the ring (DD and EOP written back, not yet
    /// received) are counted in `stop_discarded`.
    pub fn release_all(&mut self, cache: &mut PoolCache) {
        let count = self.ring.count();
        let mut lost = 0u64;
        // The rest of a frame already counted as too long is not lost
        // again.
        let mut counted = self.discarding;
        let mut i = self.next;
        while i != self.tail {
            let st = self.ring.read_dword(i, 2);
            if st & RXD_STAT_DD == 0 {
                break;
            }
            if st & RXD_STAT_EOP != 0 {
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
        self.next = 0;
        self.tail = 0;
        self.discarding = false;
        self.nombuf_counted = 0;
    }

    /// Forget every posted buffer without freeing it: the device may still
    /// write into them, so no one else may ever get them. Counted in
    /// `leaked`; returns how many.
    pub fn abandon_all(&mut self) -> usize {
        let n = super::abandon_slots(&mut self.slots, &self.counters.leaked);
        self.next = 0;
        self.tail = 0;
        self.discarding = false;
        n
    }
}
