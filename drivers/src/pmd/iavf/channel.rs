//! One virtchnl command at a time over the admin queue (B.8 #11): send,
//! then read the ARQ until the reply whose opcode matches, setting aside
//! the PF's events (VIRTCHNL_OP_EVENT, which may come at any time) for
//! the link and reset logic, and dropping (counted) stray replies.

use super::adminq::{AdminQueue, AqError, AqTiming};
use super::virtchnl::{DecodeError, Op, PfEvent, VcStatus};
use crate::memory::{DmaMapper, MemoryBacking};
use crate::mmio::RegisterSpace;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// Waits of a virtchnl exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcTiming {
    /// The admin queue's send wait.
    pub aq: AqTiming,
    /// ARQ reads while waiting for a reply (B.3.2: DPDK 2000 × 1 ms).
    pub reply_polls: u32,
    /// Pause between them.
    pub reply_delay: Duration,
}

impl Default for VcTiming {
    fn default() -> Self {
        VcTiming {
            aq: AqTiming::default(),
            reply_polls: 2000,
            reply_delay: Duration::from_millis(1),
        }
    }
}

/// Why a virtchnl exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum VcError {
    /// The admin queue failed.
    #[error(transparent)]
    Aq(#[from] AqError),
    /// The PF answered with an error status.
    #[error("virtchnl {op:?}: {status}")]
    Status {
        /// The request.
        op: Op,
        /// The PF's status.
        status: VcStatus,
    },
    /// No reply with the request's opcode in time.
    #[error("virtchnl {op:?}: no reply within {waited:?}")]
    NoReply {
        /// The request.
        op: Op,
        /// How long.
        waited: Duration,
    },
    /// A reply that does not parse.
    #[error("virtchnl {op:?}: {err}")]
    Decode {
        /// The request.
        op: Op,
        /// What is wrong.
        err: DecodeError,
    },
    /// The PF speaks a virtchnl this driver cannot (B.4.1: major must be
    /// 1; a PF newer than 1.1 is refused, as Linux and DPDK do).
    #[error("the PF speaks virtchnl {major}.{minor}; this driver needs 1.1")]
    Version {
        /// PF major.
        major: u32,
        /// PF minor.
        minor: u32,
    },
}

impl VcError {
    /// The admin queue is gone or the PF stopped answering: what a PF
    /// reset looks like from the VF (B.7).
    pub fn looks_like_reset(&self) -> bool {
        matches!(
            self,
            VcError::Aq(AqError::NotAlive(_) | AqError::Timeout { .. }) | VcError::NoReply { .. }
        )
    }
}

/// The VF's end of virtchnl.
#[derive(Debug)]
pub struct VfChannel {
    aq: AdminQueue,
    timing: VcTiming,
    events: VecDeque<PfEvent>,
    /// ARQ messages that matched no pending request.
    stray: u64,
}

impl VfChannel {
    /// The admin queue's memory, not yet programmed ([`Self::init`]).
    pub fn new(
        backing: &MemoryBacking,
        dma: &Arc<dyn DmaMapper>,
        timing: VcTiming,
    ) -> Result<VfChannel, AqError> {
        Ok(VfChannel {
            aq: AdminQueue::new(backing, dma, timing.aq)?,
            timing,
            events: VecDeque::new(),
            stray: 0,
        })
    }

    /// (Re)program the admin queue (B.6 step 3); events and replies from
    /// before are gone with the old rings.
    pub fn init<R: RegisterSpace + ?Sized>(&mut self, regs: &R) -> Result<(), AqError> {
        self.events.clear();
        self.aq.init(regs)
    }

    /// Stop the admin queue (B.3.2 "shutdown").
    pub fn shutdown<R: RegisterSpace + ?Sized>(&self, regs: &R) {
        self.aq.shutdown(regs)
    }

    /// See [`AdminQueue::alive`].
    pub fn alive<R: RegisterSpace + ?Sized>(&self, regs: &R) -> Result<(), AqError> {
        self.aq.alive(regs)
    }

    /// ARQ messages that answered nothing this VF asked.
    pub fn stray(&self) -> u64 {
        self.stray
    }

    /// Send a message that has no reply (RESET_VF, B.4.1). A PF can act
    /// on RESET_VF before the VF has seen ATQH move past it: the reset
    /// disables and clears the VF's admin queue (B.7, B.3.2 "liveness"),
    /// and the send looks refused or unconsumed. An admin queue down means
    /// the VF is being reset, which is what was asked: not an error.
    pub fn send_only<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
        op: Op,
        payload: &[u8],
    ) -> Result<(), VcError> {
        match self.aq.send(regs, op as u32, payload) {
            Err(AqError::Timeout { .. } | AqError::NotAlive(_)) if self.aq.alive(regs).is_err() => {
                Ok(())
            }
            r => Ok(r?),
        }
    }

    /// Send `payload` as `op` and return the PF's reply (B.3.2 "reply
    /// wait"); events read meanwhile are kept for [`Self::take_events`].
    pub fn request<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
        op: Op,
        payload: &[u8],
    ) -> Result<Vec<u8>, VcError> {
        self.aq.send(regs, op as u32, payload)?;
        let t = self.timing;
        for _ in 0..t.reply_polls.max(1) {
            while let Some(m) = self.aq.receive(regs) {
                if m.op == op as u32 {
                    VcStatus::check(m.status).map_err(|status| VcError::Status { op, status })?;
                    return Ok(m.data);
                }
                self.set_aside(m.op, &m.data);
            }
            // A reset that disabled the admin queue took the request with
            // it (B.3.2 "liveness", B.7): no reply will come.
            self.aq.alive(regs)?;
            if !t.reply_delay.is_zero() {
                std::thread::sleep(t.reply_delay);
            }
        }
        Err(VcError::NoReply {
            op,
            waited: t.reply_delay * t.reply_polls,
        })
    }

    fn set_aside(&mut self, op: u32, data: &[u8]) {
        if op == Op::Event as u32 {
            match PfEvent::decode(data) {
                Ok(e) => self.events.push_back(e),
                Err(e) => {
                    log::warn!("iavf: PF event does not parse: {e}");
                    self.stray += 1;
                }
            }
        } else {
            log::warn!("iavf: unexpected virtchnl message op {op} dropped");
            self.stray += 1;
        }
    }

    /// Read whatever the PF posted, then hand over every event set aside.
    pub fn take_events<R: RegisterSpace + ?Sized>(&mut self, regs: &R) -> Vec<PfEvent> {
        while let Some(m) = self.aq.receive(regs) {
            self.set_aside(m.op, &m.data);
        }
        self.events.drain(..).collect()
    }
}
