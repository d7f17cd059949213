//! The VF↔PF mailbox as the hardware has it, with the PF driver behind it.
//!
//! igbvf and ixgbevf share the control bits, the read-to-clear set and the
//! 16-dword buffer (nic-facts-igbvf.md C.5.1, C.11; nic-facts.md A.5.1);
//! only the register offsets differ, and those are the model's business.
//! What the PF answers is a [`PfPolicy`] (the Linux igb PF for igbvf).
//!
//! The PF side runs on the device thread, in separate steps, each after its
//! delay: it reads the VF's request and raises PFACK; later it takes the
//! buffer (PFU, during which the VF cannot lock it), writes its reply, and
//! raises PFSTS as it lets go. The VF must hold VFU for every buffer
//! access.

use super::violation::{Rule, Violations};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// VF → PF: a message is in the buffer (C.5.1).
pub const REQ: u32 = 0x01;
/// VF → PF: the VF read the PF's message.
pub const ACK: u32 = 0x02;
/// VF owns the buffer.
pub const VFU: u32 = 0x04;
/// PF owns the buffer.
pub const PFU: u32 = 0x08;
/// PF wrote a message; read-to-clear.
pub const PFSTS: u32 = 0x10;
/// PF acknowledged the VF's message; read-to-clear.
pub const PFACK: u32 = 0x20;
/// PF reset in progress (level).
pub const RSTI: u32 = 0x40;
/// PF reset done; read-to-clear.
pub const RSTD: u32 = 0x80;
/// The read-to-clear bits (C.5.1: 0xB0).
pub const R2C: u32 = PFSTS | PFACK | RSTD;
/// Buffer size in dwords (C.5.1).
pub const WORDS: usize = 16;

/// Message word 0 flags (C.5.1): ACK, NACK, CTS; id in bits 15:0.
pub const MSG_ACK: u32 = 0x8000_0000;
/// NACK.
pub const MSG_NACK: u32 = 0x4000_0000;
/// Clear to send.
pub const MSG_CTS: u32 = 0x2000_0000;
/// Message id.
pub const MSG_ID: u32 = 0xFFFF;

/// The mailbox rules, with one family's sections.
#[derive(Clone, Copy, Debug)]
pub struct MailboxRules {
    /// VMBMEM read or written without holding VFU.
    pub access_without_vfu: Rule,
    /// A new request before the PF acknowledged the previous one.
    pub req_before_pfack: Rule,
    /// A request other than VF_RESET from a VF without CTS.
    pub request_before_reset: Rule,
}

/// Delays of the PF side.
#[derive(Clone, Copy, Debug)]
pub struct PfDelays {
    /// From REQ to the PF reading the message (PFACK).
    pub ack: Duration,
    /// From PFACK to the PF writing its reply.
    pub reply: Duration,
    /// How long the PF holds the buffer (PFU) while it writes.
    pub write_hold: Duration,
}

impl Default for PfDelays {
    fn default() -> Self {
        PfDelays {
            ack: Duration::from_micros(30),
            reply: Duration::from_micros(50),
            write_hold: Duration::from_micros(20),
        }
    }
}

/// What the PF does with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PfAnswer {
    /// Nothing at all: no PFACK, no reply (a PF that is not running).
    Ignore,
    /// Read it (PFACK) but do not reply.
    AckOnly,
    /// Read it and reply with these words.
    Reply(Vec<u32>),
}

/// The PF driver behind the mailbox.
pub trait PfPolicy: Send {
    /// The VF's request (the whole buffer, stale words included).
    fn request(&mut self, now: Instant, msg: &[u32; WORDS], v: &Violations) -> PfAnswer;
    /// The VF acknowledged a PF message: an answer to send, if any.
    fn vf_ack(&mut self, now: Instant) -> Option<Vec<u32>>;
    /// Which buffer words (bit i = word i) the VF wrote for the request
    /// about to be handed to [`request`](Self::request): a PF that checks
    /// message lengths looks here. Called just before it.
    fn written(&mut self, _words: u16) {}
}

#[derive(Clone, Debug)]
enum Step {
    /// Read the VF's request, PFACK it.
    Read,
    /// Take PFU and write these words.
    WriteStart(Vec<u32>),
    /// Raise PFSTS, drop PFU.
    WriteEnd,
}

/// The mailbox register and buffer, and the PF side's pending steps.
#[derive(Debug)]
pub struct Mailbox {
    bits: u32,
    mem: [u32; WORDS],
    steps: VecDeque<(Instant, Step)>,
    /// A REQ the PF has not read yet.
    unread_req: bool,
    /// PF delays.
    pub delays: PfDelays,
    rules: &'static MailboxRules,
    /// Requests the PF read (word 0 each), in order.
    pub requests: Vec<u32>,
    /// Words the VF wrote since its last REQ (bit i = word i).
    written: u16,
    /// The written set of each REQ the PF has not read yet, in order.
    req_written: VecDeque<u16>,
    /// The VF may read the buffer without VFU (ixgbevf's newer protocol,
    /// nic-facts.md A.5.2: it reads without taking the lock).
    pub lockless_reads: bool,
}

impl Mailbox {
    /// An idle mailbox.
    pub fn new(rules: &'static MailboxRules, delays: PfDelays) -> Mailbox {
        Mailbox {
            bits: 0,
            mem: [0; WORDS],
            steps: VecDeque::new(),
            unread_req: false,
            delays,
            rules,
            requests: Vec::new(),
            written: 0,
            req_written: VecDeque::new(),
            lockless_reads: false,
        }
    }

    /// The control bits as they are, without a VF read (nothing clears).
    pub fn peek(&self) -> u32 {
        self.bits
    }

    /// The VF reads the control register: the read-to-clear bits go.
    pub fn read_ctrl(&mut self) -> u32 {
        let v = self.bits & (VFU | PFU | PFSTS | PFACK | RSTI | RSTD);
        self.bits &= !R2C;
        v
    }

    /// The VF writes the control register.
    pub fn write_ctrl(&mut self, now: Instant, value: u32, v: &Violations, pf: &mut dyn PfPolicy) {
        // VFU is granted only while the PF does not hold the buffer
        // (C.10.1); writing without VFU releases it.
        if value & VFU != 0 && self.bits & PFU == 0 {
            self.bits |= VFU;
        } else {
            self.bits &= !VFU;
        }
        if value & REQ != 0 {
            if self.unread_req {
                v.record(
                    self.rules.req_before_pfack,
                    "REQ written while the PF has not acknowledged (PFACK) the previous request",
                );
            }
            self.unread_req = true;
            self.req_written
                .push_back(std::mem::take(&mut self.written));
            self.schedule(now + self.delays.ack, Step::Read);
        }
        if value & ACK != 0 {
            if let Some(words) = pf.vf_ack(now) {
                self.schedule(now + self.delays.reply, Step::WriteStart(words));
            }
        }
    }

    /// The VF reads buffer word `i`.
    pub fn read_mem(&mut self, i: usize, v: &Violations) -> u32 {
        if !self.lockless_reads {
            self.check_vfu(i, "read", v);
        }
        self.mem[i]
    }

    /// The VF writes buffer word `i`.
    pub fn write_mem(&mut self, i: usize, value: u32, v: &Violations) {
        self.check_vfu(i, "written", v);
        self.mem[i] = value;
        self.written |= 1 << i;
    }

    fn check_vfu(&self, i: usize, what: &str, v: &Violations) {
        if self.bits & VFU == 0 {
            v.record(
                self.rules.access_without_vfu,
                format!(
                    "mailbox word {i} {what} without holding VFU{}",
                    if self.bits & PFU != 0 {
                        " (the PF holds the buffer: PFU)"
                    } else {
                        ""
                    }
                ),
            );
        }
    }

    /// The PF sends a message of its own (PF_CONTROL_MSG, a NACK).
    pub fn pf_send(&mut self, now: Instant, words: Vec<u32>) {
        self.schedule(now, Step::WriteStart(words));
    }

    /// Queue a PF step, keeping the steps in time order.
    fn schedule(&mut self, at: Instant, step: Step) {
        let i = self.steps.partition_point(|(t, _)| *t <= at);
        self.steps.insert(i, (at, step));
    }

    /// Set or clear RSTI; clearing it raises RSTD (C.10.1).
    pub fn set_reset_indication(&mut self, on: bool) {
        if on {
            self.bits |= RSTI;
        } else if self.bits & RSTI != 0 {
            self.bits = (self.bits & !RSTI) | RSTD;
        }
    }

    /// A VF reset: the VF's lock goes, PF steps in flight are dropped.
    pub fn vf_reset(&mut self) {
        self.bits &= !(VFU | PFU | PFSTS | PFACK);
        self.steps.clear();
        self.unread_req = false;
        self.written = 0;
        self.req_written.clear();
    }

    /// When the next PF step is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.steps.front().map(|(t, _)| *t)
    }

    /// Do the PF steps due at `now` (`real`: the time to schedule from).
    pub fn run(&mut self, now: Instant, real: Instant, pf: &mut dyn PfPolicy, v: &Violations) {
        while let Some((due, _)) = self.steps.front() {
            if *due > now {
                return;
            }
            let needs_buffer = matches!(self.steps[0].1, Step::Read | Step::WriteStart(_));
            if needs_buffer && self.bits & VFU != 0 {
                // The VF holds the buffer: the PF waits for it.
                let (_, step) = self.steps.pop_front().expect("front exists");
                self.schedule(real + Duration::from_micros(10), step);
                return;
            }
            let (_, step) = self.steps.pop_front().expect("front exists");
            match step {
                Step::Read => {
                    self.unread_req = false;
                    let msg = self.mem;
                    self.requests.push(msg[0]);
                    pf.written(self.req_written.pop_front().unwrap_or(0));
                    match pf.request(real, &msg, v) {
                        PfAnswer::Ignore => continue,
                        PfAnswer::AckOnly => {}
                        PfAnswer::Reply(words) => {
                            self.schedule(real + self.delays.reply, Step::WriteStart(words))
                        }
                    }
                    self.bits |= PFACK;
                }
                Step::WriteStart(words) => {
                    self.bits |= PFU;
                    for (i, w) in words.iter().take(WORDS).enumerate() {
                        self.mem[i] = *w;
                    }
                    self.schedule(real + self.delays.write_hold, Step::WriteEnd);
                }
                Step::WriteEnd => {
                    self.bits = (self.bits & !PFU) | PFSTS;
                }
            }
        }
    }

    /// The PF takes (or lets go of) the buffer lock PFU, as it does while
    /// it writes a message (C.5.1): a test trigger to hold the VF off.
    pub fn pf_hold(&mut self, on: bool) {
        if on {
            self.bits |= PFU;
        } else {
            self.bits &= !PFU;
        }
    }

    /// Write the buffer and raise PFSTS at once (a test trigger, like a PF
    /// reset's PF_CONTROL_MSG; the device is not running meanwhile).
    pub fn pf_write_now(&mut self, words: &[u32]) {
        for (i, w) in words.iter().take(WORDS).enumerate() {
            self.mem[i] = *w;
        }
        self.bits |= PFSTS;
    }
}
