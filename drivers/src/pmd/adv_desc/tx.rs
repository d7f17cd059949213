//! The TX descriptor ring.

use super::desc::{
    DescRing, RingError, TxData, TXD_CMD_DEXT, TXD_CMD_EOP, TXD_CMD_IFCS, TXD_CMD_RS,
    TXD_DTYP_DATA, TXD_PAYLEN_SHIFT, TXD_STAT_DD,
};
use super::{Flavor, TxHw, TxRegs};
use crate::burst::Burst;
use crate::mbuf::Mbuf;
use crate::memory::DmaArena;
use crate::mmio::RegisterSpace;
use crate::pool::PoolCache;
use crate::port::QueueCounters;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::Arc;

/// Most descriptors between two RS bits (DPDK's tx_rs_thresh default).
pub const TX_RS_THRESH: usize = 32;

/// Counters of one TX ring (single writer: the ring's owner).
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct TxCounters {
    /// Frames and bytes handed to the device; `dropped` counts packets the
    /// ring had no room for (left to the caller, who drops them). It counts
    /// refusals: a packet the caller retries and is refused again counts
    /// twice.
    pub q: QueueCounters,
    /// Packets refused because their length does not fit one descriptor
    /// (0 or above the device limit); they are left to the caller too.
    pub bad_len: AtomicU64,
    /// Buffers never given back because the device could not be shown to
    /// have stopped reading them (ENABLE never read back 0).
    pub leaked: AtomicU64,
}

/// A TX ring: one data descriptor per packet (no chaining yet).
///
/// Descriptors `[clean, tail)` are in flight, each holding its buffer until
/// the device writes DD back on the RS descriptor that ends its batch. At
/// most `count - 1` are in flight, so TDT never catches up with TDH.
#[derive(Debug)]
pub struct TxRing {
    ring: DescRing,
    slots: Box<[Option<Mbuf>]>,
    /// For the first descriptor of each batch: the descriptor carrying RS.
    batch_end: Box<[u16]>,
    clean: usize,
    tail: usize,
    in_flight: usize,
    regs: TxRegs,
    flavor: Flavor,
    counters: Arc<TxCounters>,
}

impl TxRing {
    /// A ring of `count` descriptors.
    pub fn new(
        count: usize,
        regs: TxRegs,
        flavor: Flavor,
        arena: &DmaArena,
    ) -> Result<TxRing, RingError> {
        let ring = DescRing::new(count, arena)?;
        Ok(TxRing {
            ring,
            slots: (0..count).map(|_| None).collect(),
            batch_end: vec![0; count].into_boxed_slice(),
            clean: 0,
            tail: 0,
            in_flight: 0,
            regs,
            flavor,
            counters: Arc::new(TxCounters::default()),
        })
    }

    /// What the control thread needs to program the queue.
    pub fn hw(&self) -> TxHw {
        TxHw {
            regs: self.regs,
            iova: self.ring.iova(),
            len_bytes: self.ring.len_bytes(),
        }
    }

    /// The descriptor memory.
    pub fn memory(&self) -> &crate::memory::DmaSlice {
        self.ring.memory()
    }

    /// The ring's counters.
    pub fn counters(&self) -> &Arc<TxCounters> {
        &self.counters
    }

    /// Descriptors in the ring.
    pub fn count(&self) -> usize {
        self.ring.count()
    }

    /// Packets handed to the device and not reclaimed yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Free buffers of completed batches (DD written back on their RS
    /// descriptor) into `cache`. Returns how many were freed.
    #[inline]
    pub fn reclaim(&mut self, cache: &mut PoolCache) -> usize {
        let count = self.ring.count();
        let mut freed = 0;
        while self.in_flight > 0 {
            let end = self.batch_end[self.clean] as usize;
            if self.ring.read_dword(end, 3) & TXD_STAT_DD == 0 {
                break;
            }
            // Acquire pairs with the device's DD write-back: the device is
            // done reading every buffer of the batch before DD is set
            // (nic-facts-igbvf.md C.4.2 "Completion is DD").
            fence(Ordering::Acquire);
            let n = (end + count - self.clean) % count + 1;
            for k in 0..n {
                let i = (self.clean + k) % count;
                if let Some(m) = self.slots[i].take() {
                    cache.free(m);
                }
            }
            self.clean = (end + 1) % count;
            self.in_flight -= n;
            freed += n;
        }
        freed
    }

    /// Queue packets from the front of `pkts`; the ones that fit are
    /// removed, the rest stay for the caller. Writes the tail once, after a
    /// release fence. Returns how many were queued.
    #[inline]
    pub fn tx_burst<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
        cache: &mut PoolCache,
        pkts: &mut Burst,
    ) -> usize {
        self.reclaim(cache);
        let count = self.ring.count();
        let room = count - 1 - self.in_flight;
        // Packets up to the first bad length or the ring's room go out.
        let mut n = 0;
        let want = pkts.len().min(room);
        while n < want {
            let len = pkts[n].len();
            if len == 0 || len > self.flavor.tx_max_per_desc {
                QueueCounters::add(&self.counters.bad_len, 1);
                break;
            }
            n += 1;
        }
        if n == 0 {
            if pkts.len() > room {
                QueueCounters::add(&self.counters.q.dropped, (pkts.len() - room) as u64);
            }
            return 0;
        }
        if pkts.len() > n && n == room {
            QueueCounters::add(&self.counters.q.dropped, (pkts.len() - n) as u64);
        }
        let mut bytes = 0u64;
        let mut batch_start = self.tail;
        for (k, m) in pkts.drain(..n).enumerate() {
            let i = self.tail;
            let len = m.len() as u32;
            bytes += len as u64;
            let batch_len = (i + count - batch_start) % count + 1;
            let last = k + 1 == n || batch_len == super::tx::TX_RS_THRESH;
            let mut cmd = len | TXD_DTYP_DATA | TXD_CMD_DEXT | TXD_CMD_IFCS | TXD_CMD_EOP;
            if last {
                cmd |= TXD_CMD_RS;
            }
            self.ring.write(
                i,
                TxData {
                    buffer_addr: m.data_iova().get(),
                    cmd_type_len: cmd,
                    olinfo_status: len << TXD_PAYLEN_SHIFT | self.flavor.tx_olinfo_extra,
                }
                .encode(),
            );
            self.slots[i] = Some(m);
            self.tail = (i + 1) % count;
            if last {
                self.batch_end[batch_start] = i as u16;
                batch_start = self.tail;
            }
        }
        self.in_flight += n;
        QueueCounters::add(&self.counters.q.packets, n as u64);
        QueueCounters::add(&self.counters.q.bytes, bytes);
        // Release: descriptor stores before the doorbell; the partner is the
        // device fetching descriptors up to the new TDT.
        fence(Ordering::Release);
        regs.write32(self.regs.tail, self.tail as u32);
        n
    }

    /// Give every in-flight buffer back and forget the ring's position: the
    /// queue must be disabled (or the device reset) first.
    pub fn release_all(&mut self, cache: &mut PoolCache) {
        for s in self.slots.iter_mut() {
            if let Some(m) = s.take() {
                cache.free(m);
            }
        }
        self.clean = 0;
        self.tail = 0;
        self.in_flight = 0;
    }

    /// Forget every in-flight buffer without freeing it (the device may
    /// still read it); counted in `leaked`. Returns how many.
    pub fn abandon_all(&mut self) -> usize {
        let mut n = 0;
        for s in self.slots.iter_mut() {
            if let Some(m) = s.take() {
                std::mem::forget(m);
                n += 1;
            }
        }
        self.clean = 0;
        self.tail = 0;
        self.in_flight = 0;
        let c = &self.counters.leaked;
        // Relaxed: single writer (the ring's owner); a statistic.
        c.store(c.load(Ordering::Relaxed) + n as u64, Ordering::Relaxed);
        n
    }
}
