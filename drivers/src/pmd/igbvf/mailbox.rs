//! The VF side of the VF↔PF mailbox (nic-facts-igbvf.md C.5).
//!
//! One V2PMAILBOX register with lock, request, acknowledge and reset bits,
//! and a 16-dword buffer shared by both directions. Three bits are
//! read-to-clear (PFSTS, PFACK, RSTD), so one read can return an event the
//! driver is not looking for yet: like Linux and DPDK, every read is OR-ed
//! into a cached copy and bits are tested and consumed from that copy
//! (C.5.1).

use super::regs::{
    MBX_ACK, MBX_PFACK, MBX_PFSTS, MBX_R2C_BITS, MBX_REQ, MBX_RSTD, MBX_RSTI, MBX_SIZE, MBX_VFU,
    MSG_ACK, MSG_CTS, MSG_ID_MASK, MSG_NACK, V2PMAILBOX, VMBMEM,
};
use crate::mmio::RegisterSpace;
use std::time::Duration;

/// Mailbox polling limits (C.5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MbxTiming {
    /// Polls while waiting for PFACK or PFSTS (E1000_VF_MBX_INIT_TIMEOUT
    /// = 2000).
    pub polls: u32,
    /// Pause between polls (E1000_VF_MBX_INIT_DELAY = 500 µs).
    pub poll_delay: Duration,
    /// Attempts to take the VFU lock (DPDK retries 10 times, C.5.2).
    pub lock_tries: u32,
}

impl Default for MbxTiming {
    fn default() -> Self {
        MbxTiming {
            polls: 2000,
            poll_delay: Duration::from_micros(500),
            lock_tries: 10,
        }
    }
}

/// What went wrong on the mailbox.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MbxError {
    /// A posted operation timed out earlier; the mailbox stays off until
    /// the next VF reset (C.5.1).
    #[error("mailbox disabled after an earlier timeout; the VF must be reset")]
    Disabled,
    /// The VFU lock could not be taken (the PF holds the buffer).
    #[error("mailbox busy: VFU lock not granted")]
    Busy,
    /// No PFACK or PFSTS within the poll limit.
    #[error("mailbox timeout waiting for {0}")]
    Timeout(&'static str),
    /// The PF refused the message.
    #[error("PF refused message {id:#x} (reply {reply:#010x})")]
    Nack {
        /// Message id sent.
        id: u32,
        /// Reply word 0.
        reply: u32,
    },
    /// The reply does not answer the message.
    #[error("reply {reply:#010x} does not answer message {id:#x}")]
    Unexpected {
        /// Message id sent.
        id: u32,
        /// Reply word 0.
        reply: u32,
    },
    /// Message longer than the buffer.
    #[error("message of {0} dwords does not fit the 16-dword mailbox")]
    TooLong(usize),
}

/// The VF mailbox state: the cached read-to-clear bits and the posted-mode
/// switch.
#[derive(Debug)]
pub struct Mailbox {
    cached: u32,
    enabled: bool,
    cts: bool,
    timing: MbxTiming,
}

fn pause(d: Duration) {
    if !d.is_zero() {
        std::thread::sleep(d);
    }
}

impl Mailbox {
    /// A mailbox with posted operations off until [`enable`](Self::enable)
    /// (the timeout starts at 0, C.5.1).
    pub fn new(timing: MbxTiming) -> Mailbox {
        Mailbox {
            cached: 0,
            enabled: false,
            cts: false,
            timing,
        }
    }

    /// Turn posted operations on (done by the VF reset, C.6 step 5).
    pub fn enable(&mut self) {
        self.enabled = true;
    }

    /// True while posted operations are allowed.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// CTS of the last reply: the PF considers the VF clear to send.
    pub fn clear_to_send(&self) -> bool {
        self.cts
    }

    /// Forget cached events (after a VF reset).
    pub fn clear_cache(&mut self) {
        self.cached = 0;
    }

    /// Read V2PMAILBOX, keep its read-to-clear bits, return it with the
    /// cached ones.
    fn read_ctrl<R: RegisterSpace + ?Sized>(&mut self, regs: &R) -> u32 {
        let v = regs.read32(V2PMAILBOX);
        let seen = v | self.cached;
        self.cached |= v & MBX_R2C_BITS;
        seen
    }

    /// Is any bit of `mask` set (now or cached)? Consumes them from the
    /// cache.
    pub fn check_bit<R: RegisterSpace + ?Sized>(&mut self, regs: &R, mask: u32) -> bool {
        let seen = self.read_ctrl(regs);
        self.cached &= !mask;
        seen & mask != 0
    }

    /// Did the PF post a message (PFSTS)?
    pub fn check_for_msg<R: RegisterSpace + ?Sized>(&mut self, regs: &R) -> bool {
        self.check_bit(regs, MBX_PFSTS)
    }

    /// Did the PF acknowledge our message (PFACK)?
    pub fn check_for_ack<R: RegisterSpace + ?Sized>(&mut self, regs: &R) -> bool {
        self.check_bit(regs, MBX_PFACK)
    }

    /// Is a PF reset in progress or just done (RSTI or RSTD)?
    pub fn check_for_rst<R: RegisterSpace + ?Sized>(&mut self, regs: &R) -> bool {
        self.check_bit(regs, MBX_RSTI | MBX_RSTD)
    }

    /// Take the buffer: write VFU, read back, require VFU (C.5.2 step 1).
    fn lock<R: RegisterSpace + ?Sized>(&mut self, regs: &R) -> Result<(), MbxError> {
        for _ in 0..self.timing.lock_tries.max(1) {
            regs.write32(V2PMAILBOX, MBX_VFU);
            if self.read_ctrl(regs) & MBX_VFU != 0 {
                return Ok(());
            }
            pause(self.timing.poll_delay);
        }
        Err(MbxError::Busy)
    }

    /// Send without waiting (C.5.2 send steps 1-4).
    pub fn write<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
        msg: &[u32],
    ) -> Result<(), MbxError> {
        if msg.len() > MBX_SIZE {
            return Err(MbxError::TooLong(msg.len()));
        }
        self.lock(regs)?;
        // Stale acknowledgements and messages refer to the buffer we are
        // about to overwrite (C.5.2 step 2).
        self.check_for_msg(regs);
        self.check_for_ack(regs);
        for (i, w) in msg.iter().enumerate() {
            regs.write32(VMBMEM + 4 * i as u32, *w);
        }
        // REQ without VFU: interrupts the PF and releases the lock.
        regs.write32(V2PMAILBOX, MBX_REQ);
        Ok(())
    }

    /// Read the PF's message without waiting (C.5.2 receive steps 2-4).
    pub fn read<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
        buf: &mut [u32],
    ) -> Result<(), MbxError> {
        if buf.len() > MBX_SIZE {
            return Err(MbxError::TooLong(buf.len()));
        }
        self.lock(regs)?;
        for (i, w) in buf.iter_mut().enumerate() {
            *w = regs.read32(VMBMEM + 4 * i as u32);
        }
        // ACK without VFU: tells the PF we read it and releases the lock.
        regs.write32(V2PMAILBOX, MBX_ACK);
        Ok(())
    }

    fn poll<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
        mask: u32,
        what: &'static str,
    ) -> Result<(), MbxError> {
        if !self.enabled {
            return Err(MbxError::Disabled);
        }
        for _ in 0..self.timing.polls {
            if self.check_bit(regs, mask) {
                return Ok(());
            }
            pause(self.timing.poll_delay);
        }
        // A timed-out posted operation disables the mailbox (C.5.1).
        self.enabled = false;
        Err(MbxError::Timeout(what))
    }

    /// Send and wait for PFACK (C.5.2 step 5).
    pub fn write_posted<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
        msg: &[u32],
    ) -> Result<(), MbxError> {
        if !self.enabled {
            return Err(MbxError::Disabled);
        }
        self.write(regs, msg)?;
        self.poll(regs, MBX_PFACK, "PFACK")
    }

    /// Wait for PFSTS, then read.
    pub fn read_posted<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
        buf: &mut [u32],
    ) -> Result<(), MbxError> {
        self.poll(regs, MBX_PFSTS, "PFSTS")?;
        self.read(regs, buf)
    }

    /// Send `msg`, pause `settle`, read the reply into `reply` and check it
    /// answers `msg` with ACK (CTS masked off first, C.5.2). Returns reply
    /// word 0.
    pub fn request<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
        msg: &[u32],
        reply: &mut [u32],
        settle: Duration,
    ) -> Result<u32, MbxError> {
        self.write_posted(regs, msg)?;
        pause(settle);
        self.read_posted(regs, reply)?;
        let word = reply[0];
        self.cts = word & MSG_CTS != 0;
        let id = msg[0] & MSG_ID_MASK;
        if word & MSG_ID_MASK != id {
            return Err(MbxError::Unexpected { id, reply: word });
        }
        match word & (MSG_ACK | MSG_NACK) {
            MSG_ACK => Ok(word),
            MSG_NACK => Err(MbxError::Nack { id, reply: word }),
            _ => Err(MbxError::Unexpected { id, reply: word }),
        }
    }

    /// A message the PF sent on its own (PF_CONTROL_MSG), read and ACKed if
    /// there is one. Never waits.
    pub fn poll_pf_message<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
    ) -> Result<Option<u32>, MbxError> {
        if !self.check_for_msg(regs) {
            return Ok(None);
        }
        let mut w = [0u32; 1];
        self.read(regs, &mut w)?;
        Ok(Some(w[0]))
    }

    /// Wait while RSTI/RSTD are seen (C.6 step 4): true once neither is,
    /// false if the PF is still in reset after `polls` × `delay`.
    pub fn wait_reset_clear<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
        polls: u32,
        delay: Duration,
    ) -> bool {
        for _ in 0..polls.max(1) {
            if !self.check_for_rst(regs) {
                return true;
            }
            pause(delay);
        }
        false
    }

    /// RSTI now (a level, not cached).
    pub fn reset_in_progress<R: RegisterSpace + ?Sized>(&mut self, regs: &R) -> bool {
        self.read_ctrl(regs) & MBX_RSTI != 0
    }
}
