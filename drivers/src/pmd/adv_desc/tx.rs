//! The TX descriptor ring.

use super::desc::{
    DescRing, RingError, TxContext, TxData, TXD_CMD_DEXT, TXD_CMD_EOP, TXD_CMD_IFCS, TXD_CMD_RS,
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
///
/// Every packet is counted once, under one reason. Packets the ring has no
/// room for are not drops of the ring: they stay with the caller, which
/// retries or drops (and counts) them; `ring_full` only counts how often
/// that happened.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct TxCounters {
    /// Frames and bytes handed to the device. `dropped` is not used: the
    /// ring's own drops are counted by reason below.
    pub q: QueueCounters,
    /// Packets dropped (freed) by the ring because their length does not
    /// fit one descriptor (0, or above the device limit).
    pub bad_len: AtomicU64,
    /// Buffers never given back because the device could not be shown to
    /// have stopped reading them (ENABLE never read back 0).
    pub leaked: AtomicU64,
    /// Bursts that left packets to the caller because the ring was full
    /// (events, not packets).
    pub ring_full: AtomicU64,
    /// Packets handed to the device whose completion never came back
    /// before the queue was stopped (PF reset, stop); freed then. They may
    /// or may not have gone out.
    pub stop_discarded: AtomicU64,
}

/// A TX ring: one data descriptor per packet (no chaining yet), and, for a
/// flavor that needs one ([`Flavor::tx_context`]), one context descriptor
/// before the first data descriptor after each enable.
///
/// Descriptors `[clean, tail)` are in flight, each data descriptor holding
/// its buffer until the device writes DD back on the RS descriptor that
/// ends its batch; a context descriptor holds no buffer and completes with
/// the batch it opens. At most `count - 1` descriptors are in flight, so
/// TDT never catches up with TDH.
#[derive(Debug)]
pub struct TxRing {
    ring: DescRing,
    slots: Box<[Option<Mbuf>]>,
    /// For the first descriptor of each batch: the descriptor carrying RS.
    batch_end: Box<[u16]>,
    clean: usize,
    tail: usize,
    /// Descriptors in flight (data and context).
    descs_in_flight: usize,
    /// Packets in flight (data descriptors only).
    in_flight: usize,
    /// The flavor wants a context descriptor after each enable.
    context: bool,
    /// No context descriptor written since the queue was (re)enabled.
    need_context: bool,
    regs: TxRegs,
    /// From the flavor: bits for every olinfo_status, and the largest
    /// length one descriptor holds (only these two, to keep the queue
    /// small).
    olinfo_extra: u32,
    max_len: u32,
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
            descs_in_flight: 0,
            in_flight: 0,
            context: flavor.tx_context,
            need_context: flavor.tx_context,
            regs,
            olinfo_extra: flavor.tx_olinfo_extra,
            max_len: flavor.tx_max_per_desc.min(u32::MAX as usize) as u32,
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
    /// descriptor) into `cache`. Returns how many were freed (a context
    /// descriptor in a batch frees nothing and is not counted).
    #[inline]
    pub fn reclaim(&mut self, cache: &mut PoolCache) -> usize {
        let count = self.ring.count();
        let mut freed = 0;
        while self.descs_in_flight > 0 {
            let end = self.batch_end[self.clean] as usize;
            if self.ring.read_dword(end, 3) & TXD_STAT_DD == 0 {
                break;
            }
            // Acquire pairs with the device's DD write-back: the device is
            // done reading every buffer of the batch before DD is set
            // (nic-facts-igbvf.md C.4.2 "Completion is DD").
            fence(Ordering::Acquire);
            let n = (end + count - self.clean) % count + 1;
            let mut pkts = 0;
            for k in 0..n {
                let i = (self.clean + k) % count;
                if let Some(m) = self.slots[i].take() {
                    cache.free(m);
                    pkts += 1;
                }
            }
            self.clean = (end + 1) % count;
            self.descs_in_flight -= n;
            self.in_flight -= pkts;
            freed += pkts;
        }
        freed
    }

    /// Queue packets from the front of `pkts` (the
    /// [`TxQueue::tx_burst`](crate::port::TxQueue::tx_burst) contract):
    ///
    /// - a packet the device cannot send (length 0, or more than one
    ///   descriptor holds) is dropped: freed into `cache` and counted in
    ///   `bad_len`, and the burst goes on;
    /// - packets that fit are written to the ring and removed;
    /// - once the ring is full, the rest stay in `pkts`, in order, for the
    ///   caller (counted once per burst in `ring_full`).
    ///
    /// Writes the tail once, after a release fence. Returns how many were
    /// queued for the device (dropped packets are not included).
    #[inline]
    pub fn tx_burst<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
        cache: &mut PoolCache,
        pkts: &mut Burst,
    ) -> usize {
        self.reclaim(cache);
        let count = self.ring.count();
        // A pending context descriptor takes one of the free slots.
        let room = (count - 1 - self.descs_in_flight).saturating_sub(self.need_context as usize);
        let max_len = self.max_len as usize;
        let bad = |len: usize| len == 0 || len > max_len;
        // The prefix this call consumes: every good packet that fits and
        // every bad one before the first good packet that does not.
        let (mut take, mut n) = (0usize, 0usize);
        while take < pkts.len() {
            if bad(pkts[take].len()) {
                take += 1;
            } else if n < room {
                take += 1;
                n += 1;
            } else {
                break;
            }
        }
        if take < pkts.len() {
            QueueCounters::add(&self.counters.ring_full, 1);
        }
        if take == 0 {
            return 0;
        }
        let (mut bytes, mut dropped) = (0u64, 0u64);
        let mut k = 0usize;
        let mut batch_start = self.tail;
        // The context goes before the first data descriptor and opens its
        // batch, so it completes (and its slot is reclaimed) with it.
        let ctx = n > 0 && self.need_context;
        if ctx {
            self.ring.write(self.tail, TxContext::plain().encode());
            self.slots[self.tail] = None;
            self.tail = (self.tail + 1) % count;
            self.need_context = false;
        }
        for m in pkts.drain(..take) {
            let len = m.len();
            if bad(len) {
                dropped += 1;
                cache.free(m);
                continue;
            }
            let i = self.tail;
            let len = len as u32;
            bytes += len as u64;
            k += 1;
            let batch_len = (i + count - batch_start) % count + 1;
            let last = k == n || batch_len == TX_RS_THRESH;
            let mut cmd = len | TXD_DTYP_DATA | TXD_CMD_DEXT | TXD_CMD_IFCS | TXD_CMD_EOP;
            if last {
                cmd |= TXD_CMD_RS;
            }
            self.ring.write(
                i,
                TxData {
                    buffer_addr: m.data_iova().get(),
                    cmd_type_len: cmd,
                    olinfo_status: len << TXD_PAYLEN_SHIFT | self.olinfo_extra,
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
        if dropped > 0 {
            QueueCounters::add(&self.counters.bad_len, dropped);
        }
        if n == 0 {
            return 0;
        }
        self.descs_in_flight += n + ctx as usize;
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
    ///
    /// Completed batches are reclaimed first; the packets still in flight
    /// after that are counted in `stop_discarded`.
    pub fn release_all(&mut self, cache: &mut PoolCache) {
        self.reclaim(cache);
        if self.in_flight > 0 {
            QueueCounters::add(&self.counters.stop_discarded, self.in_flight as u64);
        }
        for s in self.slots.iter_mut() {
            if let Some(m) = s.take() {
                cache.free(m);
            }
        }
        self.clean = 0;
        self.tail = 0;
        self.descs_in_flight = 0;
        self.in_flight = 0;
        // The queue is enabled again before its next burst.
        self.need_context = self.context;
    }

    /// Forget every in-flight buffer without freeing it (the device may
    /// still read it); counted in `leaked`. Returns how many.
    pub fn abandon_all(&mut self) -> usize {
        let n = super::abandon_slots(&mut self.slots, &self.counters.leaked);
        self.clean = 0;
        self.tail = 0;
        self.descs_in_flight = 0;
        self.in_flight = 0;
        // The queue is enabled again before its next burst.
        self.need_context = self.context;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pmd::adv_desc::RawDesc;
    use crate::pool::{Pool, PoolConfig};
    use std::sync::Mutex;

    /// Registers that remember the last tail written; the device never
    /// completes anything (no DD), so the ring only fills.
    #[derive(Default)]
    struct Tail(Mutex<Option<u32>>);

    impl RegisterSpace for Tail {
        fn read32(&self, _offset: u32) -> u32 {
            0
        }
        fn write32(&self, offset: u32, value: u32) {
            assert_eq!(offset, REGS.tail, "only the tail is written");
            *self.0.lock().unwrap() = Some(value);
        }
        fn len(&self) -> usize {
            0x4000
        }
    }

    const REGS: TxRegs = TxRegs {
        bal: 0x3800,
        bah: 0x3804,
        len: 0x3808,
        head: 0x3810,
        tail: 0x3818,
        ctl: 0x3828,
        dca: 0x3814,
        flush: 0x8,
    };

    /// A flavor whose descriptors hold at most 100 bytes, so "too long"
    /// can be made with ordinary buffers.
    const FLAVOR: Flavor = Flavor {
        srrctl_drop_en: 0,
        rx_frame_err_mask: 0,
        rx_err_ipe: 0,
        rx_err_l4e: 0,
        rx_stat_ignore_csum: 0,
        rx_stat_vlan_bswap: 0,
        rxdctl_thresholds: 0,
        tx_olinfo_extra: 0,
        tx_dca_clear: 0,
        tx_max_per_desc: 100,
        tx_context: false,
    };

    fn get(c: &AtomicU64) -> u64 {
        QueueCounters::get(c)
    }

    /// Bad packets (empty, longer than a descriptor holds) are dropped and
    /// counted once wherever they are; good ones go out in order; only a
    /// full ring leaves packets to the caller.
    #[test]
    fn bad_lengths_are_dropped_and_the_burst_goes_on() {
        let pool = Pool::new(
            &PoolConfig::new("tx-bad-len", 64).with_backing(crate::memory::MemoryBacking::NoHuge),
        )
        .unwrap();
        let mut cache = pool.cache();
        let regs = Tail::default();
        let dma: Arc<dyn crate::memory::DmaMapper> =
            Arc::new(crate::memory::TestMapper::at(0x10_0000));
        let arena = crate::memory::DmaArena::new(4096, &crate::memory::MemoryBacking::NoHuge, &dma)
            .unwrap();
        let mut ring = TxRing::new(8, REGS, FLAVOR, &arena).unwrap();
        // Lengths: bad at the head, good, bad in the middle, good...; the
        // ring takes 7 (8 descriptors, one kept free).
        let lens = [0usize, 60, 101, 61, 62, 0, 63, 64, 65, 66, 67, 68, 200, 69];
        let mut b = Burst::new();
        for &l in &lens {
            let mut m = cache.alloc().unwrap();
            m.set_len(l).unwrap();
            b.push(m);
        }
        assert_eq!(ring.tx_burst(&regs, &mut cache, &mut b), 7);
        // Consumed: 0, 60, 101, 61, 62, 0, 63, 64, 65, 66 (3 bad, 7 good);
        // left, in order: 67, 68, 200, 69.
        let left: Vec<usize> = b.iter().map(|m| m.len()).collect();
        assert_eq!(left, [67, 68, 200, 69]);
        let c = Arc::clone(ring.counters());
        assert_eq!(get(&c.bad_len), 3);
        assert_eq!(get(&c.ring_full), 1);
        assert_eq!(get(&c.q.packets), 7);
        assert_eq!(get(&c.q.bytes), (60 + 61 + 62 + 63 + 64 + 65 + 66) as u64);
        assert_eq!(get(&c.q.dropped), 0);
        assert_eq!(*regs.0.lock().unwrap(), Some(7));
        // The descriptors hold the good packets in order, RS on the last.
        let descs: Vec<(u32, bool)> = (0..7)
            .map(|i| {
                let d = TxData::decode(ring.ring.read(i));
                (d.cmd_type_len & 0xFFFF, d.cmd_type_len & TXD_CMD_RS != 0)
            })
            .collect();
        assert_eq!(
            descs,
            [
                (60, false),
                (61, false),
                (62, false),
                (63, false),
                (64, false),
                (65, false),
                (66, true)
            ]
        );
        // Ring full: nothing consumed, the tail is not written again, the
        // packets are refused once more (another event, no drop).
        *regs.0.lock().unwrap() = None;
        assert_eq!(ring.tx_burst(&regs, &mut cache, &mut b), 0);
        assert_eq!(b.len(), 4);
        assert_eq!(*regs.0.lock().unwrap(), None);
        assert_eq!(get(&c.ring_full), 2);
        assert_eq!(get(&c.bad_len), 3);
        // A burst of bad packets only, with the ring full: all dropped.
        let mut bad = Burst::new();
        for l in [0usize, 150] {
            let mut m = cache.alloc().unwrap();
            m.set_len(l).unwrap();
            bad.push(m);
        }
        assert_eq!(ring.tx_burst(&regs, &mut cache, &mut bad), 0);
        assert!(bad.is_empty());
        assert_eq!(get(&c.bad_len), 5);
        assert_eq!(get(&c.ring_full), 2);
        // Stopping frees the 7 in flight, counted as discarded once.
        ring.release_all(&mut cache);
        assert_eq!(get(&c.stop_discarded), 7);
        ring.release_all(&mut cache);
        assert_eq!(get(&c.stop_discarded), 7);
        cache.free_bulk(&mut b);
        drop(cache);
        assert_eq!(pool.available(), 64);
    }

    /// A flavor that needs a context descriptor: one goes before the first
    /// data descriptor, takes a slot, completes with its batch (reclaim
    /// frees only the packets), and comes again after a stop.
    #[test]
    fn context_descriptor_after_each_enable() {
        let pool = Pool::new(
            &PoolConfig::new("tx-ctx", 64).with_backing(crate::memory::MemoryBacking::NoHuge),
        )
        .unwrap();
        let mut cache = pool.cache();
        let regs = Tail::default();
        let dma: Arc<dyn crate::memory::DmaMapper> =
            Arc::new(crate::memory::TestMapper::at(0x10_0000));
        let arena = crate::memory::DmaArena::new(4096, &crate::memory::MemoryBacking::NoHuge, &dma)
            .unwrap();
        const CC: u32 = 0x80;
        let flavor = Flavor {
            tx_context: true,
            tx_olinfo_extra: CC,
            ..FLAVOR
        };
        let mut ring = TxRing::new(8, REGS, flavor, &arena).unwrap();
        let burst = |cache: &mut PoolCache, n: usize| {
            let mut b = Burst::new();
            for _ in 0..n {
                let mut m = cache.alloc().unwrap();
                m.set_len(60).unwrap();
                b.push(m);
            }
            b
        };
        // 8 descriptors, 7 usable, one for the context: 6 packets.
        let mut b = burst(&mut cache, 10);
        assert_eq!(ring.tx_burst(&regs, &mut cache, &mut b), 6);
        assert_eq!(b.len(), 4);
        assert_eq!(*regs.0.lock().unwrap(), Some(7));
        assert_eq!(ring.in_flight(), 6);
        assert_eq!(TxContext::decode(ring.ring.read(0)), TxContext::plain());
        for i in 1..7 {
            let d = TxData::decode(ring.ring.read(i));
            assert_eq!(d.cmd_type_len & 0xFFFF, 60);
            assert_ne!(d.olinfo_status & CC, 0, "CC on every data descriptor");
        }
        // The device completes the batch (DD on its RS descriptor, 6): the
        // six packets come back, and all seven slots are free again.
        let mut d = ring.ring.read(6).dwords();
        d[3] |= TXD_STAT_DD;
        ring.ring.write(6, RawDesc::from_dwords(d));
        assert_eq!(ring.reclaim(&mut cache), 6);
        assert_eq!(ring.in_flight(), 0);
        // No second context: the next four go in slots 7, 0, 1, 2.
        assert_eq!(ring.tx_burst(&regs, &mut cache, &mut b), 4);
        assert_eq!(*regs.0.lock().unwrap(), Some(3));
        for i in [7, 0, 1, 2] {
            let d = TxData::decode(ring.ring.read(i));
            assert_eq!(d.cmd_type_len & TXD_DTYP_DATA, TXD_DTYP_DATA);
        }
        // After a stop the ring starts at 0 with a context again.
        ring.release_all(&mut cache);
        assert_eq!(get(&ring.counters().stop_discarded), 4);
        let mut b = burst(&mut cache, 1);
        assert_eq!(ring.tx_burst(&regs, &mut cache, &mut b), 1);
        assert_eq!(TxContext::decode(ring.ring.read(0)), TxContext::plain());
        assert_eq!(*regs.0.lock().unwrap(), Some(2));
        ring.release_all(&mut cache);
        drop(cache);
        assert_eq!(pool.available(), 64);
    }
}
