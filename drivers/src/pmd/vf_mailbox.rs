//! The VF side of the legacy VF↔PF mailbox shared by igbvf and ixgbevf
//! (nic-facts-igbvf.md C.5, nic-facts.md A.5: the same bits, flags and
//! protocol; only the two register offsets differ, see [`MbxLayout`]).
//!
//! One control register with lock, request, acknowledge and reset bits,
//! and a 16-dword buffer shared by both directions. Three bits are
//! read-to-clear (PFSTS, PFACK, RSTD), so one read can return an event the
//! driver is not looking for yet: like Linux and DPDK, every read is OR-ed
//! into a cached copy and bits are tested and consumed from that copy
//! (igbvf C.5.1, A.5.1). A bit is consumed from the copy only once the
//! operation that needed it succeeded, so a failed VFU lock never loses an
//! event.
//!
//! The mailbox also notices when the PF no longer talks to this VF
//! ([`Mailbox::lost_contact`]): a posted operation timed out, or a word
//! from the PF says the VF lost clear-to-send (igbvf C.5.3, C.6 step 13,
//! C.9 #13; A.5.4, A.8 #14). Bare section numbers below are
//! nic-facts-igbvf.md's; the ixgbevf sections say the same (A.5, A.6).

use crate::mmio::RegisterSpace;
use crate::net::MacAddr;
use std::hash::{BuildHasher, Hasher};
use std::marker::PhantomData;
use std::time::Duration;

// ---- control register bits (igbvf C.5.1 = A.5.1) ----------------------

/// REQ: VF message in the buffer (igbvf C.5.1, A.5.1).
pub const MBX_REQ: u32 = 0x01;
/// ACK: VF read the PF's message (igbvf C.5.1, A.5.1).
pub const MBX_ACK: u32 = 0x02;
/// VFU: VF owns the buffer (igbvf C.5.1, A.5.1).
pub const MBX_VFU: u32 = 0x04;
/// PFU: PF owns the buffer (igbvf C.5.1, A.5.1).
pub const MBX_PFU: u32 = 0x08;
/// PFSTS: PF wrote a message; read-to-clear (igbvf C.5.1, A.5.1).
pub const MBX_PFSTS: u32 = 0x10;
/// PFACK: PF acknowledged; read-to-clear (igbvf C.5.1, A.5.1).
pub const MBX_PFACK: u32 = 0x20;
/// RSTI: PF reset in progress; level (igbvf C.5.1, A.5.1).
pub const MBX_RSTI: u32 = 0x40;
/// RSTD: PF reset done; read-to-clear (igbvf C.5.1, A.5.1).
pub const MBX_RSTD: u32 = 0x80;
/// The read-to-clear bits, 0xB0 (igbvf C.5.1, A.5.1).
pub const MBX_R2C_BITS: u32 = MBX_PFSTS | MBX_PFACK | MBX_RSTD;
/// Buffer size in dwords (igbvf C.5.1, A.5.1).
pub const MBX_SIZE: usize = 16;

// ---- message word 0 (igbvf C.5.1 = A.5.1) -----------------------------

/// Word 0 flag: ACK / SUCCESS (igbvf C.5.1, A.5.1).
pub const MSG_ACK: u32 = 0x8000_0000;
/// Word 0 flag: NACK / FAILURE (igbvf C.5.1, A.5.1).
pub const MSG_NACK: u32 = 0x4000_0000;
/// Word 0 flag: clear to send (igbvf C.5.1, A.5.1).
pub const MSG_CTS: u32 = 0x2000_0000;
/// Message id, bits 15:0 (igbvf C.5.1, A.5.1).
pub const MSG_ID_MASK: u32 = 0xFFFF;
/// MSGINFO shift, bits 23:16 (igbvf C.5.1, A.5.1).
pub const MSGINFO_SHIFT: u32 = 16;
/// MSGINFO mask (igbvf C.5.1, A.5.1).
pub const MSGINFO_MASK: u32 = 0x00FF_0000;
/// VF_RESET, the same id on both (igbvf C.5.3, A.5.3).
pub const MSG_VF_RESET: u32 = 0x01;
/// PF → VF control message (igbvf C.5.3, A.5.3).
pub const MSG_PF_CONTROL: u32 = 0x0100;

/// Where a device keeps its mailbox: the only difference between the
/// igbvf and ixgbevf transports.
pub trait MbxLayout: Send + Sync + 'static {
    /// The control register (L::CTRL / VFMAILBOX).
    const CTRL: u32;
    /// Dword 0 of the 16-dword buffer (L::MEM / VFMBMEM).
    const MEM: u32;
}

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
    /// The PF signalled a reset (RSTI or RSTD) while the VF waited for an
    /// answer; only with [`Mailbox::set_abort_on_reset`] (A.6 step 21,
    /// A.8 #14). The bits stay cached for the reset handling.
    #[error("PF reset seen while waiting for {0}")]
    PfReset(&'static str),
    /// Message longer than the buffer.
    #[error("message of {0} dwords does not fit the 16-dword mailbox")]
    TooLong(usize),
}

/// Why the mailbox says the VF must be reset and brought up again (C.6
/// step 13, C.9 #13).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LostContact {
    /// A posted operation timed out; the mailbox stays off until the next
    /// VF reset (C.5.1, C.6 step 13 "a timed-out mailbox").
    TimedOut,
    /// The PF sent this word without CTS: a NACK (its answer to a VF that
    /// is not clear to send, C.5.3) or PF_CONTROL_MSG (C.9 #13).
    CtsLost(u32),
}

impl std::fmt::Display for LostContact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LostContact::TimedOut => f.write_str("mailbox timed out"),
            LostContact::CtsLost(w) => write!(f, "PF word {w:#010x} without CTS"),
        }
    }
}

/// The VF mailbox state: the cached read-to-clear bits and the posted-mode
/// switch.
#[derive(Debug)]
pub struct Mailbox<L: MbxLayout> {
    cached: u32,
    enabled: bool,
    cts: bool,
    /// A word without CTS that means a reset, kept until the next
    /// [`enable`](Self::enable).
    cts_lost: Option<u32>,
    timing: MbxTiming,
    /// Give up a wait when the PF signals a reset (RSTI or RSTD).
    abort_on_reset: bool,
    layout: PhantomData<L>,
}

fn pause(d: Duration) {
    if !d.is_zero() {
        std::thread::sleep(d);
    }
}

impl<L: MbxLayout> Mailbox<L> {
    /// A mailbox with posted operations off until [`enable`](Self::enable)
    /// (the timeout starts at 0, C.5.1).
    pub fn new(timing: MbxTiming) -> Self {
        Mailbox {
            cached: 0,
            enabled: false,
            cts: false,
            cts_lost: None,
            timing,
            abort_on_reset: false,
            layout: PhantomData,
        }
    }

    /// Turn posted operations on (done by the VF reset, C.6 step 5). Also
    /// forgets an earlier loss of CTS: the VF_RESET that follows restores
    /// it.
    pub fn enable(&mut self) {
        self.enabled = true;
        self.cts_lost = None;
    }

    /// Why the VF must be reset, if it must: a posted operation timed out,
    /// or the PF sent a NACK or PF_CONTROL_MSG without CTS (C.5.3, C.6 step
    /// 13, C.9 #13). Sticky until [`enable`](Self::enable).
    pub fn lost_contact(&self) -> Option<LostContact> {
        if !self.enabled {
            Some(LostContact::TimedOut)
        } else {
            self.cts_lost.map(LostContact::CtsLost)
        }
    }

    /// Note a word the PF wrote (a reply or a message of its own). Without
    /// CTS, a NACK or a PF_CONTROL_MSG means the PF no longer considers
    /// the VF clear to send (C.5.3: "a NACK without CTS means CTS was lost
    /// and the VF must reset"; C.9 #13). The reply to VF_RESET never has
    /// CTS and its NACK only means "no admin MAC" (C.5.3, C.9 #7): ignored.
    fn note_pf_word(&mut self, word: u32) {
        if word & MSG_CTS != 0 || word & MSG_ID_MASK == MSG_VF_RESET {
            return;
        }
        let control = word & MSG_ID_MASK == MSG_PF_CONTROL && word & (MSG_ACK | MSG_NACK) == 0;
        if word & MSG_NACK != 0 || control {
            self.cts_lost.get_or_insert(word);
        }
    }

    /// Make waits for PFACK/PFSTS give up with [`MbxError::PfReset`] when
    /// RSTI or RSTD shows up, instead of running into the timeout (which
    /// would also disable the mailbox). Off by default (igbvf).
    pub fn set_abort_on_reset(&mut self, on: bool) {
        self.abort_on_reset = on;
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

    /// Read L::CTRL, keep its read-to-clear bits, return it with the
    /// cached ones.
    fn read_ctrl<R: RegisterSpace + ?Sized>(&mut self, regs: &R) -> u32 {
        let v = regs.read32(L::CTRL);
        let seen = v | self.cached;
        self.cached |= v & MBX_R2C_BITS;
        seen
    }

    /// Is any bit of `mask` set (now or cached)? Consumes them from the
    /// cache.
    pub fn check_bit<R: RegisterSpace + ?Sized>(&mut self, regs: &R, mask: u32) -> bool {
        let seen = self.peek_bit(regs, mask);
        self.cached &= !mask;
        seen
    }

    /// Is any bit of `mask` set (now or cached)? Keeps them in the cache,
    /// to be consumed when the operation they announce has succeeded.
    pub fn peek_bit<R: RegisterSpace + ?Sized>(&mut self, regs: &R, mask: u32) -> bool {
        self.read_ctrl(regs) & mask != 0
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
            regs.write32(L::CTRL, MBX_VFU);
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
        // about to overwrite (C.5.2 step 2). A message the PF left unread
        // is looked at first, so a PF_CONTROL_MSG or NACK without CTS is
        // not lost with it.
        if self.check_for_msg(regs) {
            let w = regs.read32(L::MEM);
            self.note_pf_word(w);
        }
        self.check_for_ack(regs);
        for (i, w) in msg.iter().enumerate() {
            regs.write32(L::MEM + 4 * i as u32, *w);
        }
        // REQ without VFU: interrupts the PF and releases the lock.
        regs.write32(L::CTRL, MBX_REQ);
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
        // A failed lock returns before anything is consumed: a PFSTS seen
        // earlier stays cached for the next try.
        self.lock(regs)?;
        for (i, w) in buf.iter_mut().enumerate() {
            *w = regs.read32(L::MEM + 4 * i as u32);
        }
        // ACK without VFU: tells the PF we read it and releases the lock.
        regs.write32(L::CTRL, MBX_ACK);
        // The message is read: its PFSTS is spent. The PF cannot have
        // posted another while we held VFU (C.10.1: VFU and PFU exclude
        // each other).
        self.cached &= !MBX_PFSTS;
        Ok(())
    }

    /// Wait for a bit of `mask`; `consume` takes it from the cache when
    /// seen (PFACK), otherwise the caller's next step does (PFSTS, by
    /// [`read`](Self::read)).
    fn poll<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
        mask: u32,
        consume: bool,
        what: &'static str,
    ) -> Result<(), MbxError> {
        if !self.enabled {
            return Err(MbxError::Disabled);
        }
        for _ in 0..self.timing.polls {
            let seen = if consume {
                self.check_bit(regs, mask)
            } else {
                self.peek_bit(regs, mask)
            };
            if seen {
                return Ok(());
            }
            // Peeked, not consumed: the reset handling still sees the
            // event (a read-to-clear RSTD is not lost, A.5.1).
            if self.abort_on_reset && self.peek_bit(regs, MBX_RSTI | MBX_RSTD) {
                return Err(MbxError::PfReset(what));
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
        self.poll(regs, MBX_PFACK, true, "PFACK")
    }

    /// Wait for PFSTS, then read.
    pub fn read_posted<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
        buf: &mut [u32],
    ) -> Result<(), MbxError> {
        self.poll(regs, MBX_PFSTS, false, "PFSTS")?;
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
        if id == MSG_VF_RESET {
            // The PF answered VF_RESET: the VF is clear to send again, so a
            // loss of CTS noted before (say, a NACK left in the buffer by
            // the PF and seen when this request was written) is over
            // (C.5.3 VF_RESET).
            self.cts_lost = None;
        } else {
            self.note_pf_word(word);
        }
        if word & MSG_ID_MASK != id {
            return Err(MbxError::Unexpected { id, reply: word });
        }
        match word & (MSG_ACK | MSG_NACK) {
            MSG_ACK => Ok(word),
            MSG_NACK => Err(MbxError::Nack { id, reply: word }),
            _ => Err(MbxError::Unexpected { id, reply: word }),
        }
    }

    /// A message the PF sent on its own (PF_CONTROL_MSG, or a NACK), read
    /// and ACKed if there is one. Never waits. If the buffer cannot be
    /// locked, PFSTS stays cached and the message is read next time.
    pub fn poll_pf_message<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
    ) -> Result<Option<u32>, MbxError> {
        if !self.peek_bit(regs, MBX_PFSTS) {
            return Ok(None);
        }
        let mut w = [0u32; 1];
        self.read(regs, &mut w)?;
        self.note_pf_word(w[0]);
        Ok(Some(w[0]))
    }

    /// Linux's link check on the mailbox (C.6 step 13): read word 0 and
    /// ACK it, whether or not PFSTS is set, and note a word without CTS.
    /// A VF that lost CTS gets a NACK without CTS for that ACK (C.5.3),
    /// which the next check sees. Never waits.
    pub fn check_cts<R: RegisterSpace + ?Sized>(&mut self, regs: &R) -> Result<u32, MbxError> {
        let mut w = [0u32; 1];
        self.read(regs, &mut w)?;
        self.note_pf_word(w[0]);
        Ok(w[0])
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

/// A MAC address as message words 1..2: bytes 4..9 of the buffer, little
/// endian, the top half of word 2 zero (igbvf C.5.3, A.5.3 SET_MAC_ADDR).
pub fn mac_words(mac: MacAddr) -> [u32; 2] {
    let b = mac.0;
    [
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        u32::from_le_bytes([b[4], b[5], 0, 0]),
    ]
}

/// The MAC in message words 1..2 (the VF_RESET reply, igbvf C.5.3, A.5.3).
pub fn mac_from_words(w: [u32; 2]) -> MacAddr {
    let (a, b) = (w[0].to_le_bytes(), w[1].to_le_bytes());
    MacAddr([a[0], a[1], a[2], a[3], b[0], b[1]])
}

/// A random locally administered unicast MAC, for a VF the PF gave none
/// (igbvf C.6, A.6 step 13).
pub fn random_local_mac() -> MacAddr {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    let r = h.finish().to_le_bytes();
    // Locally administered (bit 1), unicast (bit 0 clear).
    MacAddr([(r[0] & 0xFE) | 0x02, r[1], r[2], r[3], r[4], r[5]])
}
