//! The queues a VF port hands to its workers (igbvf and ixgbevf alike),
//! and the port figures summed over their rings' counters.

use super::{
    disable_rx, disable_tx, settle_after, DisableTiming, Disabled, QueueCtl, QueueState,
    RxCounters, RxRing, TxCounters, TxRing,
};
use crate::burst::Burst;
use crate::mmio::RegisterSpace;
use crate::pool::PoolCache;
use crate::port::{PortStats, QueueCounters, RxQueue, TxQueue, XStat};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// The port's figures from its rings' counters (a full TX ring's
/// refusals stay with the caller, which counts what it drops; `oerrors`
/// are the packets the port itself dropped).
pub fn ring_stats<'a>(
    rx: impl Iterator<Item = &'a RxCounters> + Clone,
    tx: impl Iterator<Item = &'a TxCounters> + Clone,
) -> PortStats {
    let g = QueueCounters::get;
    PortStats {
        ipackets: rx.clone().map(|c| g(&c.q.packets)).sum(),
        ibytes: rx.clone().map(|c| g(&c.q.bytes)).sum(),
        rx_nombuf: rx.clone().map(|c| g(&c.nombuf)).sum(),
        ierrors: rx.map(|c| g(&c.frame_errors) + g(&c.frame_too_long)).sum(),
        opackets: tx.clone().map(|c| g(&c.q.packets)).sum(),
        obytes: tx.clone().map(|c| g(&c.q.bytes)).sum(),
        oerrors: tx.map(|c| g(&c.bad_len)).sum(),
    }
}

/// The rings' counters by name, summed over the queues: each packet the
/// rings drop appears under exactly one reason.
pub fn ring_xstats<'a>(
    rx: impl Iterator<Item = &'a RxCounters> + Clone,
    tx: impl Iterator<Item = &'a TxCounters> + Clone,
) -> Vec<XStat> {
    let r = |f: fn(&RxCounters) -> &AtomicU64| -> u64 {
        rx.clone().map(|c| QueueCounters::get(f(c))).sum()
    };
    let t = |f: fn(&TxCounters) -> &AtomicU64| -> u64 {
        tx.clone().map(|c| QueueCounters::get(f(c))).sum()
    };
    vec![
        ("rx_packets", r(|c| &c.q.packets)),
        ("rx_bytes", r(|c| &c.q.bytes)),
        ("rx_frame_too_long", r(|c| &c.frame_too_long)),
        ("rx_frame_errors", r(|c| &c.frame_errors)),
        ("rx_nombuf", r(|c| &c.nombuf)),
        ("rx_stop_discarded", r(|c| &c.stop_discarded)),
        ("rx_buffers_leaked", r(|c| &c.leaked)),
        ("tx_packets", t(|c| &c.q.packets)),
        ("tx_bytes", t(|c| &c.q.bytes)),
        ("tx_bad_length", t(|c| &c.bad_len)),
        ("tx_ring_full", t(|c| &c.ring_full)),
        ("tx_stop_discarded", t(|c| &c.stop_discarded)),
        ("tx_buffers_leaked", t(|c| &c.leaked)),
    ]
}

/// A VF receive queue on an advanced-descriptor ring: owns its ring,
/// answers the control thread's [`QueueCtl`] requests at the top of each
/// burst, and stops the device's DMA before its buffers go.
#[derive(Debug)]
pub struct AdvRxQueue<R: RegisterSpace + 'static> {
    ring: RxRing,
    regs: Arc<R>,
    ctl: Arc<QueueCtl>,
    timing: DisableTiming,
}

impl<R: RegisterSpace + 'static> AdvRxQueue<R> {
    /// The queue of `ring`, on `regs`, coordinated through `ctl`; `timing`
    /// bounds the disable when it drops.
    pub fn new(ring: RxRing, regs: Arc<R>, ctl: Arc<QueueCtl>, timing: DisableTiming) -> Self {
        AdvRxQueue {
            ring,
            regs,
            ctl,
            timing,
        }
    }

    /// Handle a Stop/Restart request; true if the queue may receive.
    #[cold]
    fn control(&mut self, s: QueueState, cache: &mut PoolCache) -> bool {
        match s {
            QueueState::Run => true,
            QueueState::Stop => {
                self.ring.release_all(cache);
                self.ctl.answer(QueueState::Stop, QueueState::Stopped);
                false
            }
            QueueState::Abandon => {
                self.ring.abandon_all();
                self.ctl.answer(QueueState::Abandon, QueueState::Stopped);
                false
            }
            QueueState::Stopped => false,
            QueueState::Restart => {
                self.ring.start(&*self.regs, cache);
                self.ctl.answer(QueueState::Restart, QueueState::Run)
            }
        }
    }

    /// Buffers posted to the device.
    pub fn posted(&self) -> usize {
        self.ring.posted()
    }
}

impl<R: RegisterSpace + 'static> RxQueue for AdvRxQueue<R> {
    #[inline]
    fn rx_burst(&mut self, cache: &mut PoolCache, out: &mut Burst, max: usize) -> usize {
        let s = self.ctl.load();
        if s != QueueState::Run && !self.control(s, cache) {
            return 0;
        }
        self.ring.rx_burst(&*self.regs, cache, out, max)
    }
}

impl<R: RegisterSpace + 'static> Drop for AdvRxQueue<R> {
    /// The device must not write into buffers that are about to be freed:
    /// disable, poll ENABLE back to 0, settle; if it never reads 0 the
    /// buffers are abandoned (counted) instead of freed.
    fn drop(&mut self) {
        let t = self.timing;
        match disable_rx(&*self.regs, &self.ring.hw().regs, &t) {
            Disabled::WasOff => {}
            Disabled::Stopped => settle_after([Disabled::Stopped], &t),
            Disabled::TimedOut => {
                let n = self.ring.abandon_all();
                log::error!("RX queue did not stop; {n} buffers abandoned");
            }
        }
        // The ring frees what it still holds as it drops.
    }
}

/// A VF transmit queue on an advanced-descriptor ring (see [`AdvRxQueue`]).
#[derive(Debug)]
pub struct AdvTxQueue<R: RegisterSpace + 'static> {
    ring: TxRing,
    regs: Arc<R>,
    ctl: Arc<QueueCtl>,
    timing: DisableTiming,
}

impl<R: RegisterSpace + 'static> AdvTxQueue<R> {
    /// As [`AdvRxQueue::new`].
    pub fn new(ring: TxRing, regs: Arc<R>, ctl: Arc<QueueCtl>, timing: DisableTiming) -> Self {
        AdvTxQueue {
            ring,
            regs,
            ctl,
            timing,
        }
    }

    #[cold]
    fn control(&mut self, s: QueueState, cache: &mut PoolCache) -> bool {
        match s {
            QueueState::Run => true,
            QueueState::Stop => {
                self.ring.release_all(cache);
                self.ctl.answer(QueueState::Stop, QueueState::Stopped);
                false
            }
            QueueState::Abandon => {
                self.ring.abandon_all();
                self.ctl.answer(QueueState::Abandon, QueueState::Stopped);
                false
            }
            QueueState::Stopped => false,
            QueueState::Restart => self.ctl.answer(QueueState::Restart, QueueState::Run),
        }
    }

    /// Free the buffers of completed descriptors; returns how many.
    pub fn reclaim(&mut self, cache: &mut PoolCache) -> usize {
        self.ring.reclaim(cache)
    }

    /// Packets handed to the device and not reclaimed yet.
    pub fn in_flight(&self) -> usize {
        self.ring.in_flight()
    }
}

impl<R: RegisterSpace + 'static> TxQueue for AdvTxQueue<R> {
    #[inline]
    fn tx_burst(&mut self, cache: &mut PoolCache, pkts: &mut Burst) -> usize {
        let s = self.ctl.load();
        if s != QueueState::Run && !self.control(s, cache) {
            return 0;
        }
        self.ring.tx_burst(&*self.regs, cache, pkts)
    }
}

impl<R: RegisterSpace + 'static> Drop for AdvTxQueue<R> {
    /// As for RX: the device must not read buffers that are freed.
    fn drop(&mut self) {
        let t = self.timing;
        match disable_tx(&*self.regs, &self.ring.hw().regs, &t) {
            Disabled::WasOff => {}
            Disabled::Stopped => settle_after([Disabled::Stopped], &t),
            Disabled::TimedOut => {
                let n = self.ring.abandon_all();
                log::error!("TX queue did not stop; {n} buffers abandoned");
            }
        }
    }
}
