//! The iavf TX ring: 16-byte data descriptors (docs/facts/nic-facts.md
//! B.5.2), one per packet, RS on the last of each batch of at most
//! [`TX_RS_THRESH`] (B.8 #8), reclaimed when the device writes DTYPE =
//! DESC_DONE back into the RS descriptor.

use super::ring::{DescMem, RingError};
use crate::burst::Burst;
use crate::mbuf::Mbuf;
use crate::memory::DmaArena;
use crate::mmio::RegisterSpace;
use crate::pmd::adv_desc::TxCounters;
use crate::pool::PoolCache;
use crate::port::QueueCounters;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

/// TX descriptor bytes (B.5.2).
pub const TX_DESC_SIZE: usize = 16;
/// DTYPE, bits 3:0 (B.5.2).
pub const TX_DTYPE_MASK: u64 = 0xF;
/// DTYPE data (B.5.2).
pub const TX_DTYPE_DATA: u64 = 0x0;
/// DTYPE DESC_DONE, written back by the device on RS descriptors (B.5.2).
pub const TX_DTYPE_DONE: u64 = 0xF;
/// CMD field shift (B.5.2).
pub const TX_CMD_SHIFT: u32 = 4;
/// CMD EOP (B.5.2).
pub const TX_CMD_EOP: u64 = 0x1;
/// CMD RS (B.5.2).
pub const TX_CMD_RS: u64 = 0x2;
/// CMD ICRC: insert the CRC, always set (B.5.2, B.8 #7).
pub const TX_CMD_ICRC: u64 = 0x4;
/// TX_BUF_SZ shift (B.5.2).
pub const TX_BUF_SZ_SHIFT: u32 = 34;
/// Largest buffer per descriptor (B.5.2: 14 bits).
pub const TX_MAX_LEN: usize = 16383;
/// Smallest packet the device sends (B.8 #7).
pub const TX_MIN_LEN: usize = 17;
/// Descriptors per RS batch (B.8 #8: DPDK tx_rs_thresh 32; the ring
/// length, a multiple of 32, is a multiple of it).
pub const TX_RS_THRESH: usize = 32;

/// qword1 of a data descriptor for a `len`-byte single-buffer packet.
pub fn tx_qword1(len: usize, rs: bool) -> u64 {
    let mut cmd = TX_CMD_EOP | TX_CMD_ICRC;
    if rs {
        cmd |= TX_CMD_RS;
    }
    TX_DTYPE_DATA | cmd << TX_CMD_SHIFT | (len as u64) << TX_BUF_SZ_SHIFT
}

/// A TX ring: descriptors `[clean, tail)` are in flight.
#[derive(Debug)]
pub struct IavfTxRing {
    ring: DescMem,
    slots: Box<[Option<Mbuf>]>,
    /// For the first descriptor of each batch: the one carrying RS.
    batch_end: Box<[u16]>,
    clean: usize,
    tail: usize,
    in_flight: usize,
    tail_reg: u32,
    counters: Arc<TxCounters>,
}

impl IavfTxRing {
    /// A ring of `count` descriptors, each marked done (B.5.2: DPDK sets
    /// DTYPE = DONE in every descriptor at queue reset).
    pub fn new(count: usize, tail_reg: u32, arena: &DmaArena) -> Result<IavfTxRing, RingError> {
        let ring = DescMem::new(count, TX_DESC_SIZE, arena)?;
        let mut r = IavfTxRing {
            ring,
            slots: (0..count).map(|_| None).collect(),
            batch_end: vec![0; count].into_boxed_slice(),
            clean: 0,
            tail: 0,
            in_flight: 0,
            tail_reg,
            counters: Arc::new(TxCounters::default()),
        };
        r.reset_position();
        Ok(r)
    }

    /// Descriptors.
    pub fn count(&self) -> usize {
        self.ring.count()
    }
    /// Ring base on the bus.
    pub fn iova(&self) -> u64 {
        self.ring.iova()
    }
    /// The ring's counters.
    pub fn counters(&self) -> &Arc<TxCounters> {
        &self.counters
    }
    /// Packets handed to the device and not reclaimed.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Free the buffers of batches whose RS descriptor reads DONE.
    #[inline]
    pub fn reclaim(&mut self, cache: &mut PoolCache) -> usize {
        let count = self.ring.count();
        let mut freed = 0;
        while self.in_flight > 0 {
            let end = self.batch_end[self.clean] as usize;
            if self.ring.read(end, 1) & TX_DTYPE_MASK != TX_DTYPE_DONE {
                break;
            }
            // Acquire: pairs with the device's DONE write-back, made after
            // it read every buffer of the batch.
            fence(Ordering::Acquire);
            let n = (end + count - self.clean) % count + 1;
            for k in 0..n {
                if let Some(m) = self.slots[(self.clean + k) % count].take() {
                    cache.free(m);
                }
            }
            self.clean = (end + 1) % count;
            self.in_flight -= n;
            freed += n;
        }
        freed
    }

    /// Queue packets from the front of `pkts` (the `TxQueue::tx_burst`
    /// contract, as the advanced rings): a packet outside 17..=16383
    /// bytes is dropped and counted in `bad_len`; what does not fit stays
    /// in `pkts`. One tail write, after a release fence.
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
        let bad = |len: usize| !(TX_MIN_LEN..=TX_MAX_LEN).contains(&len);
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
        let (mut bytes, mut dropped, mut k) = (0u64, 0u64, 0usize);
        let mut batch_start = self.tail;
        for m in pkts.drain(..take) {
            let len = m.len();
            if bad(len) {
                dropped += 1;
                cache.free(m);
                continue;
            }
            let i = self.tail;
            k += 1;
            bytes += len as u64;
            let batch_len = (i + count - batch_start) % count + 1;
            let last = k == n || batch_len == TX_RS_THRESH;
            self.ring.write(i, 0, m.data_iova().get());
            self.ring.write(i, 1, tx_qword1(len, last));
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
        self.in_flight += n;
        QueueCounters::add(&self.counters.q.packets, n as u64);
        QueueCounters::add(&self.counters.q.bytes, bytes);
        // Release: descriptors before the doorbell; pairs with the
        // device's fetch up to the new tail.
        fence(Ordering::Release);
        regs.write32(self.tail_reg, self.tail as u32);
        n
    }

    /// Give every buffer back (the device has stopped); packets whose
    /// completion never came are counted in `stop_discarded`.
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
        self.reset_position();
    }

    /// Forget every buffer (the device may still read it); counted in
    /// `leaked`.
    pub fn abandon_all(&mut self) -> usize {
        let n = crate::pmd::adv_desc::abandon_slots(&mut self.slots, &self.counters.leaked);
        self.reset_position();
        n
    }

    /// Position 0, every descriptor DONE: what a reprogrammed queue (tail
    /// 0) starts from (B.6 step 9).
    fn reset_position(&mut self) {
        for i in 0..self.ring.count() {
            self.ring.write(i, 0, 0);
            self.ring.write(i, 1, TX_DTYPE_DONE);
        }
        self.clean = 0;
        self.tail = 0;
        self.in_flight = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_descriptor_qword1_follows_b52() {
        // len 60 at bit 34, CMD EOP|ICRC (0x5) at bit 4, DTYPE 0.
        assert_eq!(tx_qword1(60, false), 60 << 34 | 0x50);
        assert_eq!(tx_qword1(1514, true), 1514 << 34 | 0x70);
    }
}
