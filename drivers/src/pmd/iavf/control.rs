//! The VF's control state shared by the port and its queues: the
//! virtchnl channel (one command at a time, B.8 #11, hence the mutex),
//! which queues the device runs, and the link the workers look at.
//!
//! The queues need it because the iavf VF has no queue enable bit of its
//! own (B.2): only the PF stops a queue (DISABLE_QUEUES), so a queue that
//! drops before its port must ask the PF before its buffers go.

use super::adminq::AqError;
use super::channel::{VcError, VfChannel};
use super::reset::{reset_vf, wait_reset_done, ResetError, ResetTiming};
use super::virtchnl::{self, Op};
use crate::mmio::RegisterSpace;
use crate::pmd::adv_desc::Disabled;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The channel and what the device runs.
#[derive(Debug)]
pub struct Control<R: RegisterSpace + 'static> {
    /// BAR 0.
    pub regs: Arc<R>,
    /// virtchnl.
    pub chan: VfChannel,
    /// The SR-IOV VSI (GET_VF_RESOURCES).
    pub vsi_id: u16,
    /// RX queues enabled at the device (bitmap, ENABLE_QUEUES answered).
    pub rx_enabled: u32,
    /// TX queues enabled at the device.
    pub tx_enabled: u32,
    /// Reset waits, for the fallback when DISABLE_QUEUES fails.
    pub reset: ResetTiming,
    /// The port closed the admin queue: nothing more can be asked of the
    /// PF, and a dead admin queue no longer means a reset.
    pub closed: bool,
}

impl<R: RegisterSpace + 'static> Control<R> {
    /// A request on the channel.
    pub fn request(&mut self, op: Op, payload: &[u8]) -> Result<Vec<u8>, VcError> {
        let regs = Arc::clone(&self.regs);
        self.chan.request(&*regs, op, payload)
    }

    /// ENABLE_QUEUES for `rx`/`tx` (bitmaps), one message as Linux sends
    /// it (B.6 step 13).
    pub fn enable(&mut self, rx: u32, tx: u32) -> Result<(), VcError> {
        // Counted as enabled before the answer: a PF that enabled them and
        // whose reply was lost must still be asked to stop them before
        // their buffers go.
        self.rx_enabled |= rx;
        self.tx_enabled |= tx;
        let msg = virtchnl::queue_select(self.vsi_id, rx, tx);
        self.request(Op::EnableQueues, &msg)?;
        Ok(())
    }

    /// Stop the device's DMA on the queues in `rx`/`tx`: DISABLE_QUEUES
    /// (the PF stops them before it answers). If the PF does not answer,
    /// a VF reset stops every queue (B.7 "VF-initiated reset"); if that
    /// fails too, the queues must be taken as still running.
    pub fn disable(&mut self, rx: u32, tx: u32) -> Disabled {
        let (rx, tx) = (rx & self.rx_enabled, tx & self.tx_enabled);
        if rx == 0 && tx == 0 {
            return Disabled::WasOff;
        }
        if self.closed {
            // The port's close could not show these queues stopped.
            return Disabled::TimedOut;
        }
        let msg = virtchnl::queue_select(self.vsi_id, rx, tx);
        match self.request(Op::DisableQueues, &msg) {
            Ok(_) => {
                self.rx_enabled &= !rx;
                self.tx_enabled &= !tx;
                Disabled::Stopped
            }
            Err(e) => {
                log::error!("iavf: DISABLE_QUEUES failed ({e}); resetting the VF");
                self.reset_stops_all()
            }
        }
    }

    /// RESET_VF and its completion: the PF stops every queue (B.7).
    pub fn reset_stops_all(&mut self) -> Disabled {
        let regs = Arc::clone(&self.regs);
        let t = self.reset;
        let r = match reset_vf(&*regs, &mut self.chan, &t) {
            // The admin queue is already down: the PF is resetting the VF
            // (B.3.2 "liveness"); its completion stops the queues as well.
            Err(ResetError::Vc(VcError::Aq(AqError::NotAlive(_)))) => {
                wait_reset_done(&*regs, &t).map(|_| ())
            }
            r => r,
        };
        match r {
            Ok(()) => {
                self.rx_enabled = 0;
                self.tx_enabled = 0;
                Disabled::Stopped
            }
            Err(e) => {
                log::error!("iavf: VF reset failed ({e}); the queues may still run");
                Disabled::TimedOut
            }
        }
    }
}

/// What the port and its queues share.
#[derive(Debug)]
pub struct Shared<R: RegisterSpace + 'static> {
    /// The control state.
    pub ctl: Mutex<Control<R>>,
    /// The last LINK_CHANGE said up, and no reset is under way: the
    /// workers poll their queues only then.
    pub link_up: AtomicBool,
}

impl<R: RegisterSpace + 'static> Shared<R> {
    /// Lock the control state (a worker that panicked holding it leaves
    /// it usable: the state is plain data).
    pub fn lock(&self) -> MutexGuard<'_, Control<R>> {
        self.ctl.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Workers: may the queues be polled?
    #[inline(always)]
    pub fn link_up(&self) -> bool {
        // Acquire pairs with the Release in `set_link_up`: the tail the
        // port wrote again after ENABLE_QUEUES comes before any tail the
        // worker writes after it sees the link up.
        self.link_up.load(Ordering::Acquire)
    }

    /// Control thread: set the link the workers see.
    pub fn set_link_up(&self, up: bool) {
        // Release: see `link_up`.
        self.link_up.store(up, Ordering::Release);
    }
}
