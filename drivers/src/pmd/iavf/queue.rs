//! The queues an iavf port hands to its workers: each owns its ring,
//! answers the control thread's [`QueueCtl`] requests at the top of each
//! burst, polls its ring only while the link is up, and, when it drops
//! before its port, has the PF stop it (DISABLE_QUEUES) before its buffers
//! go (B.2: the VF has no queue enable of its own).

use super::control::Shared;
use super::rx::IavfRxRing;
use super::tx::IavfTxRing;
use crate::burst::Burst;
use crate::mmio::RegisterSpace;
use crate::pmd::adv_desc::{settle_after, DisableTiming, Disabled, QueueCtl, QueueState};
use crate::pool::PoolCache;
use crate::port::{RxQueue, TxQueue};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// An iavf receive queue.
#[derive(Debug)]
pub struct IavfRx<R: RegisterSpace + 'static> {
    ring: IavfRxRing,
    q: u32,
    /// The tail this queue wrote when it (re)started, for the port to
    /// write again once the PF enabled the queue.
    start_tail: Arc<AtomicU32>,
    shared: Arc<Shared<R>>,
    regs: Arc<R>,
    ctl: Arc<QueueCtl>,
    timing: DisableTiming,
}

impl<R: RegisterSpace + 'static> IavfRx<R> {
    pub(super) fn new(
        ring: IavfRxRing,
        q: u32,
        start_tail: Arc<AtomicU32>,
        shared: Arc<Shared<R>>,
        regs: Arc<R>,
        ctl: Arc<QueueCtl>,
        timing: DisableTiming,
    ) -> Self {
        IavfRx {
            ring,
            q,
            start_tail,
            shared,
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
            QueueState::Restart => {
                self.ring.refill(&*self.regs, cache);
                // Release: pairs with the port's Acquire load when it
                // writes this tail again after ENABLE_QUEUES; the `answer`
                // below publishes it too, this keeps the value exact.
                self.start_tail
                    .store(self.ring.tail() as u32, Ordering::Release);
                self.ctl.answer(QueueState::Restart, QueueState::Run)
            }
        }
    }

    /// Buffers posted to the device.
    pub fn posted(&self) -> usize {
        self.ring.posted()
    }
}

impl<R: RegisterSpace + 'static> RxQueue for IavfRx<R> {
    #[inline]
    fn rx_burst(&mut self, cache: &mut PoolCache, out: &mut Burst, max: usize) -> usize {
        let s = self.ctl.load();
        if s != QueueState::Run && !self.control(s, cache) {
            return 0;
        }
        if !self.shared.link_up() {
            return 0;
        }
        self.ring.rx_burst(&*self.regs, cache, out, max)
    }
}

impl<R: RegisterSpace + 'static> Drop for IavfRx<R> {
    fn drop(&mut self) {
        let d = self.shared.lock().disable(1 << self.q, 0);
        settle_after([d], &self.timing);
        if d == Disabled::TimedOut {
            let n = self.ring.abandon_all();
            log::error!(
                "iavf RX queue {} did not stop; {n} buffers abandoned",
                self.q
            );
        }
    }
}

/// An iavf transmit queue.
#[derive(Debug)]
pub struct IavfTx<R: RegisterSpace + 'static> {
    ring: IavfTxRing,
    q: u32,
    shared: Arc<Shared<R>>,
    regs: Arc<R>,
    ctl: Arc<QueueCtl>,
    timing: DisableTiming,
}

impl<R: RegisterSpace + 'static> IavfTx<R> {
    pub(super) fn new(
        ring: IavfTxRing,
        q: u32,
        shared: Arc<Shared<R>>,
        regs: Arc<R>,
        ctl: Arc<QueueCtl>,
        timing: DisableTiming,
    ) -> Self {
        IavfTx {
            ring,
            q,
            shared,
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

    /// Free the buffers of completed batches.
    pub fn reclaim(&mut self, cache: &mut PoolCache) -> usize {
        self.ring.reclaim(cache)
    }

    /// Packets handed to the device and not reclaimed yet.
    pub fn in_flight(&self) -> usize {
        self.ring.in_flight()
    }
}

impl<R: RegisterSpace + 'static> TxQueue for IavfTx<R> {
    #[inline]
    fn tx_burst(&mut self, cache: &mut PoolCache, pkts: &mut Burst) -> usize {
        let s = self.ctl.load();
        if s != QueueState::Run && !self.control(s, cache) {
            return 0;
        }
        if !self.shared.link_up() {
            return 0;
        }
        self.ring.tx_burst(&*self.regs, cache, pkts)
    }
}

impl<R: RegisterSpace + 'static> Drop for IavfTx<R> {
    fn drop(&mut self) {
        let d = self.shared.lock().disable(0, 1 << self.q);
        settle_after([d], &self.timing);
        if d == Disabled::TimedOut {
            let n = self.ring.abandon_all();
            log::error!(
                "iavf TX queue {} did not stop; {n} buffers abandoned",
                self.q
            );
        }
    }
}
