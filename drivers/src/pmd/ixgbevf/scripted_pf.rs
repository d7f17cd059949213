//! A small scripted PF on a [`RegisterSpace`], for the ixgbevf driver's
//! unit tests: one scripted answer per mailbox request, every request
//! recorded with its exact length, the read-to-clear bits of VFMAILBOX
//! cleared by each read as the hardware does (A.5.1), a plain register
//! file for everything else with a log of the writes, and a VF reset
//! (VFCTRL.RST) that holds RSTI for a few reads and then raises RSTD.
//!
//! It is not the device model (that is `crate::sim`): it checks only the
//! mailbox lock rule and answers what the test scripted.

use super::regs::{CTRL, CTRL_RST, VFMAILBOX, VFMBMEM};
use crate::mmio::RegisterSpace;
use crate::net::MacAddr;
use crate::pmd::ixgbevf::mailbox::PfTiming;
use crate::pmd::vf_mailbox::{
    MbxTiming, MBX_ACK, MBX_PFACK, MBX_PFSTS, MBX_R2C_BITS, MBX_REQ, MBX_RSTD, MBX_RSTI, MBX_SIZE,
    MBX_VFU,
};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

pub const SUCCESS: u32 = 0x8000_0000;
pub const FAILURE: u32 = 0x4000_0000;
pub const CTS: u32 = 0x2000_0000;
pub const MAC: MacAddr = MacAddr([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);

/// What the scripted PF does with the next request.
#[derive(Clone, Debug)]
pub enum Answer {
    /// PFACK, then these words as a message (PFSTS).
    Reply(Vec<u32>),
    /// Nothing at all: no PFACK, no reply.
    Silent,
    /// PFACK, then a PF reset (RSTI and RSTD) instead of a reply.
    AckThenReset,
}

#[derive(Default)]
struct PfState {
    /// Pending read-to-clear bits.
    r2c: u32,
    rsti: bool,
    vfu: bool,
    mem: [u32; MBX_SIZE],
    /// Words written since the last request (its length).
    written: usize,
    sent: Vec<Vec<u32>>,
    script: VecDeque<Answer>,
    /// Buffer writes without VFU held, and other protocol slips.
    violations: Vec<String>,
    /// ACKs the VF wrote (it read a PF message).
    acks: u32,
    /// Every other register, as last written.
    regs: HashMap<u32, u32>,
    /// Writes to every other register, in order.
    writes: Vec<(u32, u32)>,
    /// Control reads RSTI still holds for after a VF reset.
    rsti_reads: u32,
    /// What a VF reset holds RSTI for (`None`: forever, a PF that stays
    /// in reset).
    reset_hold: Option<u32>,
    /// The mailbox was used (VFU or REQ written) while RSTI was set by a
    /// VF reset: the order a test checks.
    mailbox_during_reset: bool,
}

/// A PF that answers from a script, on a [`RegisterSpace`].
#[derive(Default)]
pub struct ScriptedPf(Mutex<PfState>);

impl ScriptedPf {
    pub fn new(script: Vec<Answer>) -> ScriptedPf {
        let pf = ScriptedPf::default();
        pf.0.lock().unwrap().script = script.into();
        pf
    }
    /// Forget the requests recorded so far.
    pub fn clear_sent(&self) {
        self.0.lock().unwrap().sent.clear();
    }
    /// A VF reset holds RSTI for `reads` control reads, then raises RSTD;
    /// `None` holds it for ever.
    pub fn set_reset_hold(&self, reads: Option<u32>) {
        self.0.lock().unwrap().reset_hold = reads;
    }
    /// The writes to registers other than the mailbox, in order.
    pub fn writes(&self) -> Vec<(u32, u32)> {
        self.0.lock().unwrap().writes.clone()
    }
    /// Set a register's value without logging a write.
    pub fn preset(&self, offset: u32, value: u32) {
        self.0.lock().unwrap().regs.insert(offset, value);
    }
    /// True if the mailbox was used while a VF reset still held RSTI.
    pub fn mailbox_during_reset(&self) -> bool {
        self.0.lock().unwrap().mailbox_during_reset
    }
    pub fn sent(&self) -> Vec<Vec<u32>> {
        self.0.lock().unwrap().sent.clone()
    }
    pub fn push(&self, a: Answer) {
        self.0.lock().unwrap().script.push_back(a);
    }
    /// The PF posts a message of its own.
    pub fn post(&self, word: u32) {
        let mut s = self.0.lock().unwrap();
        s.mem[0] = word;
        s.r2c |= MBX_PFSTS;
    }
    /// The PF raises read-to-clear bits (RSTD) or RSTI.
    pub fn raise(&self, bits: u32) {
        let mut s = self.0.lock().unwrap();
        s.r2c |= bits & MBX_R2C_BITS;
        s.rsti |= bits & MBX_RSTI != 0;
    }
    pub fn end_reset(&self) {
        self.0.lock().unwrap().rsti = false;
    }
    pub fn acks(&self) -> u32 {
        self.0.lock().unwrap().acks
    }
    pub fn assert_clean(&self) {
        let s = self.0.lock().unwrap();
        assert!(s.violations.is_empty(), "{:?}", s.violations);
        assert!(s.script.is_empty(), "unused answers {:?}", s.script);
    }
}

impl RegisterSpace for ScriptedPf {
    fn read32(&self, offset: u32) -> u32 {
        let mut s = self.0.lock().unwrap();
        if offset == VFMAILBOX {
            // A VF reset in progress: RSTI for a while, then RSTD.
            if s.rsti_reads > 0 {
                s.rsti_reads -= 1;
                if s.rsti_reads == 0 && s.reset_hold.is_some() {
                    s.rsti = false;
                    s.r2c |= MBX_RSTD;
                }
            }
            let v = s.r2c | if s.vfu { MBX_VFU } else { 0 } | if s.rsti { MBX_RSTI } else { 0 };
            // PFSTS, PFACK and RSTD clear on read (A.5.1).
            s.r2c = 0;
            return v;
        }
        let i = offset.wrapping_sub(VFMBMEM) / 4;
        if offset >= VFMBMEM && (i as usize) < MBX_SIZE {
            return s.mem[i as usize];
        }
        s.regs.get(&offset).copied().unwrap_or(0)
    }

    fn write32(&self, offset: u32, value: u32) {
        let mut s = self.0.lock().unwrap();
        if offset == VFMAILBOX {
            if s.rsti_reads > 0 && value & (MBX_VFU | MBX_REQ) != 0 {
                s.mailbox_during_reset = true;
            }
            s.vfu = value & MBX_VFU != 0;
            if value & MBX_ACK != 0 {
                s.acks += 1;
            }
            if value & MBX_REQ != 0 {
                let n = s.written;
                let msg = s.mem[..n].to_vec();
                s.sent.push(msg);
                s.written = 0;
                match s.script.pop_front() {
                    Some(Answer::Reply(words)) => {
                        s.r2c |= MBX_PFACK;
                        s.mem = [0; MBX_SIZE];
                        s.mem[..words.len()].copy_from_slice(&words);
                        s.r2c |= MBX_PFSTS;
                    }
                    Some(Answer::AckThenReset) => {
                        s.r2c |= MBX_PFACK | MBX_RSTD;
                        s.rsti = true;
                    }
                    Some(Answer::Silent) => {}
                    None => s.violations.push("request with no scripted answer".into()),
                }
            }
            return;
        }
        let i = offset.wrapping_sub(VFMBMEM) / 4;
        if offset >= VFMBMEM && (i as usize) < MBX_SIZE {
            if !s.vfu {
                s.violations
                    .push(format!("VFMBMEM[{i}] written without VFU"));
            }
            s.mem[i as usize] = value;
            s.written = s.written.max(i as usize + 1);
            return;
        }
        s.writes.push((offset, value));
        if offset == CTRL && value & CTRL_RST != 0 {
            s.rsti = true;
            s.rsti_reads = s.reset_hold.unwrap_or(u32::MAX).max(1);
            return;
        }
        s.regs.insert(offset, value);
    }

    fn len(&self) -> usize {
        0x4000
    }
}

pub fn ok(id: u32, extra: &[u32]) -> Answer {
    let mut w = vec![id | SUCCESS | CTS];
    w.extend_from_slice(extra);
    Answer::Reply(w)
}

pub fn refused(id: u32) -> Answer {
    Answer::Reply(vec![id | FAILURE | CTS])
}

pub fn fast() -> PfTiming {
    PfTiming {
        mbx: MbxTiming {
            polls: 5,
            poll_delay: Duration::ZERO,
            lock_tries: 2,
        },
        reset_settle: Duration::ZERO,
    }
}
