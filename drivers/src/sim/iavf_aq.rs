//! The iavf admin queue as the device sees it (nic-facts.md B.3): the ATQ
//! (VF → PF) and ARQ (PF → VF) rings in DMA memory, their 32-byte
//! descriptors, indirect buffers and completion write-back.
//!
//! The ATQ is consumed on the device thread from head to tail after an
//! ATQT write (the doorbell): each
//! descriptor is checked (B.3.1: SI always; BUF and RD with a payload, LB
//! above 512 bytes; opcode send_msg_to_pf), its indirect buffer read
//! through the IOMMU, and the descriptor written back with DD | CMP (and
//! ERR when refused), the flags word last. Replies and events go to the
//! ARQ descriptor at its head when the VF has posted one (head != tail,
//! B.3.2 "receive"); until then they wait here, in order.
//!
//! Choices the facts do not settle: a refused ATQ descriptor gets ERR
//! with retval 0 (the AQ return code for it is not in the facts); the
//! rings are not tracked as owned memory (they are not pool buffers), only
//! checked against the IOMMU.

use super::ownership::DmaRules;
use super::violation::Rule;
use super::Cx;
use std::collections::VecDeque;
use std::sync::atomic::{fence, Ordering};

macro_rules! rule {
    ($name:literal, $sec:literal) => {
        Rule::new($name, concat!("nic-facts.md ", $sec))
    };
}

/// Descriptor size (B.3.1).
pub const DESC_LEN: u64 = 32;
/// The AQ buffer size and the largest message (B.3.2, B.4.4 upper bound).
pub const BUF_LEN: usize = 4096;
/// ATQLEN / ARQLEN: entries, bits 9:0 (B.2.1).
pub const LEN_MASK: u32 = 0x3FF;
/// ATQLEN / ARQLEN.ENABLE, bit 31 (B.2.1).
pub const LEN_ENABLE: u32 = 0x8000_0000;
/// Head / tail registers: bits 9:0 (B.2.1).
pub const PTR_MASK: u32 = 0x3FF;

/// Descriptor flags (B.3.1).
pub mod flags {
    /// Done.
    pub const DD: u16 = 0x1;
    /// Complete.
    pub const CMP: u16 = 0x2;
    /// Error.
    pub const ERR: u16 = 0x4;
    /// Large buffer (> 512 bytes).
    pub const LB: u16 = 0x200;
    /// The device reads the buffer.
    pub const RD: u16 = 0x400;
    /// An indirect buffer is attached.
    pub const BUF: u16 = 0x1000;
    /// Always set by the VF.
    pub const SI: u16 = 0x2000;
}

/// ATQ opcode: send_msg_to_pf (B.3.1).
pub const OP_SEND_TO_PF: u16 = 0x0801;
/// ARQ opcode: send_msg_to_vf (B.3.1).
pub const OP_SEND_TO_VF: u16 = 0x0802;
/// Payloads above this need LB (B.3.1).
pub const LB_THRESHOLD: usize = 512;

/// Rules of the admin-queue transport.
pub mod rules {
    use super::Rule;
    /// A payload without BUF (or a BUF descriptor without a payload
    /// address): virtchnl messages are always indirect.
    pub static INDIRECT_WITHOUT_BUF: Rule = rule!(
        "aq-message-without-buf",
        "B.3.1 (BUF | RD with a payload; all messages indirect)"
    );
    /// BUF without RD on the ATQ.
    pub static BUF_WITHOUT_RD: Rule = rule!("aq-buffer-without-rd", "B.3.1 (BUF and RD)");
    /// A payload above 512 bytes without LB.
    pub static LARGE_WITHOUT_LB: Rule = rule!(
        "aq-large-buffer-without-lb",
        "B.3.1 (LB if the payload is > 512 bytes)"
    );
    /// SI missing.
    pub static NO_SI: Rule = rule!("aq-descriptor-without-si", "B.3.1 (SI always)");
    /// An ATQ opcode other than send_msg_to_pf, or a payload above 4 KB.
    pub static BAD_DESCRIPTOR: Rule = rule!(
        "aq-descriptor-format",
        "B.3.1 (opcode 0x0801), B.3.2 (4096-byte buffers)"
    );
    /// A ring base not 4 KB aligned, or a length of 0 or above 1023.
    pub static RING_SETUP: Rule = rule!(
        "aq-ring-setup",
        "B.3.2 (4096-byte alignment), B.8 #12 (entries <= 1023)"
    );
    /// A tail beyond the ring.
    pub static TAIL_RANGE: Rule = rule!("aq-tail-out-of-range", "B.3.2, B.2.1");
    /// A posted ARQ descriptor without BUF or with a buffer too small for
    /// the message.
    pub static ARQ_BUFFER: Rule = rule!(
        "arq-buffer",
        "B.3.2 (ARQ: BUF, datalen = buffer size), B.8 #12 (buffer >= 4096)"
    );
}

/// One ring's registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AqRing {
    /// Base, low.
    pub bal: u32,
    /// Base, high.
    pub bah: u32,
    /// LEN (entries | flags).
    pub len: u32,
    /// Head (the device's).
    pub head: u32,
    /// Tail (the VF's).
    pub tail: u32,
}

impl AqRing {
    /// ENABLE is set.
    pub fn enabled(&self) -> bool {
        self.len & LEN_ENABLE != 0
    }

    fn entries(&self) -> u32 {
        self.len & LEN_MASK
    }

    fn base(&self) -> u64 {
        self.bal as u64 | (self.bah as u64) << 32
    }

    /// The ring as the device may use it, or `None` (a violation once per
    /// setup when it is malformed).
    fn usable(&self) -> Option<(u64, u32)> {
        let n = self.entries();
        (self.enabled() && n > 0 && self.base().is_multiple_of(BUF_LEN as u64))
            .then(|| (self.base(), n))
    }
}

/// A message the VF sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VfMsg {
    /// virtchnl opcode (cookie_high).
    pub op: u32,
    /// The payload (datalen bytes of the indirect buffer).
    pub data: Vec<u8>,
}

/// A message for the VF: a reply or an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PfMsg {
    /// virtchnl opcode (cookie_high).
    pub op: u32,
    /// virtchnl status (cookie_low, signed).
    pub status: i32,
    /// The payload.
    pub data: Vec<u8>,
}

/// The admin queue pair.
#[derive(Debug, Default)]
pub struct AdminQueue {
    /// ATQ registers.
    pub atq: AqRing,
    /// ARQ registers.
    pub arq: AqRing,
    /// Messages for the VF waiting for a posted ARQ descriptor.
    pub outbox: VecDeque<PfMsg>,
    /// Messages the VF sent, in order (opcodes), for tests.
    pub sent_ops: Vec<u32>,
    /// Messages for the VF dropped because the ARQ was disabled.
    pub dropped: u64,
    /// A setup violation was reported for the current ATQ / ARQ setup.
    setup_reported: [bool; 2],
    /// An ATQT write rang since the ATQ was last consumed: the tail is the
    /// doorbell, so a head write (B.3.2 shutdown writes the head first,
    /// with the queue still enabled) starts nothing.
    atq_rung: bool,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl AdminQueue {
    /// Both rings off and cleared (a reset: the VF re-initialises them,
    /// B.7). Messages not yet delivered are lost.
    pub fn reset(&mut self) {
        self.atq = AqRing::default();
        self.arq = AqRing::default();
        self.outbox.clear();
        self.setup_reported = [false; 2];
        self.atq_rung = false;
    }

    /// A LEN register write: a new setup is checked afresh.
    pub fn write_len(&mut self, arq: bool, value: u32) {
        let r = if arq { &mut self.arq } else { &mut self.atq };
        r.len = value;
        self.setup_reported[arq as usize] = false;
    }

    /// A tail write (checked against the ring).
    pub fn write_tail(&mut self, cx: &Cx<'_>, arq: bool, value: u32) {
        let r = if arq { &mut self.arq } else { &mut self.atq };
        if r.enabled() && value & PTR_MASK >= r.entries() {
            cx.iommu.violations().record(
                rules::TAIL_RANGE,
                format!(
                    "{} = {value} beyond a ring of {} entries",
                    if arq { "ARQT" } else { "ATQT" },
                    r.entries()
                ),
            );
            return;
        }
        r.tail = value & PTR_MASK;
        if !arq {
            self.atq_rung = true;
        }
    }

    fn check_setup(&mut self, cx: &Cx<'_>, arq: bool) -> Option<(u64, u32)> {
        let r = if arq { self.arq } else { self.atq };
        if !r.enabled() {
            return None;
        }
        let u = r.usable();
        if u.is_none() && !self.setup_reported[arq as usize] {
            self.setup_reported[arq as usize] = true;
            cx.iommu.violations().record(
                rules::RING_SETUP,
                format!(
                    "{} base {:#x} with {} entries: not 4096-byte aligned or empty",
                    if arq { "ARQ" } else { "ATQ" },
                    r.base(),
                    r.entries()
                ),
            );
        }
        u
    }

    /// Work the device could do now.
    pub fn pending(&self) -> bool {
        (self.atq_rung && self.atq.enabled() && self.atq.head != self.atq.tail)
            || (!self.outbox.is_empty() && self.arq_room())
    }

    fn arq_room(&self) -> bool {
        self.arq.usable().is_some() && self.arq.head != self.arq.tail
    }

    /// Consume the ATQ from head to tail (device thread), returning the
    /// messages accepted.
    pub fn take_sent(&mut self, cx: &Cx<'_>, dma: &DmaRules) -> Vec<VfMsg> {
        let mut out = Vec::new();
        if !std::mem::take(&mut self.atq_rung) {
            return out;
        }
        let Some((base, n)) = self.check_setup(cx, false) else {
            return out;
        };
        let iommu = cx.iommu;
        let v = iommu.violations();
        while self.atq.head != self.atq.tail {
            let slot = self.atq.head;
            let at = base + DESC_LEN * slot as u64;
            let mut d = [0u8; DESC_LEN as usize];
            if let Err(m) = iommu.read(at, &mut d) {
                iommu.report_miss(m, dma, "ATQ descriptor", at, d.len());
                return out;
            }
            let fl = le16(&d, 0);
            let opcode = le16(&d, 2);
            let datalen = le16(&d, 4) as usize;
            let op = le32(&d, 8);
            let addr = le32(&d, 28) as u64 | (le32(&d, 24) as u64) << 32;
            let mut refused = false;
            let what = format!("ATQ[{slot}] (virtchnl op {op}, {datalen} bytes, flags {fl:#06x})");
            if fl & flags::SI == 0 {
                v.record(rules::NO_SI, format!("{what}: SI not set"));
            }
            if opcode != OP_SEND_TO_PF || datalen > BUF_LEN {
                v.record(
                    rules::BAD_DESCRIPTOR,
                    format!("{what}: opcode {opcode:#06x}, datalen {datalen}"),
                );
                refused = true;
            }
            if datalen > 0 && fl & flags::BUF == 0 {
                v.record(
                    rules::INDIRECT_WITHOUT_BUF,
                    format!("{what}: a payload without BUF"),
                );
                refused = true;
            }
            if fl & flags::BUF != 0 && fl & flags::RD == 0 {
                v.record(rules::BUF_WITHOUT_RD, format!("{what}: BUF without RD"));
                refused = true;
            }
            if datalen > LB_THRESHOLD && fl & flags::LB == 0 {
                v.record(rules::LARGE_WITHOUT_LB, format!("{what}: LB not set"));
            }
            let mut data = vec![0u8; if refused { 0 } else { datalen }];
            if !data.is_empty() {
                if let Err(m) = iommu.read(addr, &mut data) {
                    iommu.report_miss(m, dma, "ATQ buffer", addr, datalen);
                    refused = true;
                }
            }
            let mut wb = fl | flags::DD | flags::CMP;
            if refused {
                wb |= flags::ERR;
            } else {
                self.sent_ops.push(op);
                out.push(VfMsg { op, data });
            }
            // Flags, opcode, datalen and retval 0 (B.3.1) in one quadword
            // store, so a VF never sees DD beside a stale retval; the
            // release pairs with the VF's acquire after it sees DD or the
            // head move. `at` is 8-byte aligned: the ring is 4 KB aligned
            // (`usable`) and descriptors are 32 bytes.
            let qword0 = u64::from(wb) | u64::from(opcode) << 16 | (datalen as u64) << 32;
            fence(Ordering::Release);
            let _ = iommu.write_u64(at, qword0);
            self.atq.head = (slot + 1) % n;
        }
        out
    }

    /// Deliver queued messages into posted ARQ descriptors (device
    /// thread). Returns how many were delivered.
    pub fn deliver(&mut self, cx: &Cx<'_>, dma: &DmaRules) -> usize {
        if !self.arq.enabled() {
            self.dropped += self.outbox.len() as u64;
            self.outbox.clear();
            return 0;
        }
        let Some((base, n)) = self.check_setup(cx, true) else {
            return 0;
        };
        let iommu = cx.iommu;
        let mut done = 0;
        while self.arq.head != self.arq.tail {
            let Some(msg) = self.outbox.front() else {
                break;
            };
            let slot = self.arq.head;
            let at = base + DESC_LEN * slot as u64;
            let mut d = [0u8; DESC_LEN as usize];
            if let Err(m) = iommu.read(at, &mut d) {
                iommu.report_miss(m, dma, "ARQ descriptor", at, d.len());
                return done;
            }
            let fl = le16(&d, 0);
            let room = le16(&d, 4) as usize;
            let addr = le32(&d, 28) as u64 | (le32(&d, 24) as u64) << 32;
            if fl & flags::BUF == 0 || room < msg.data.len() {
                iommu.violations().record(
                    rules::ARQ_BUFFER,
                    format!(
                        "ARQ[{slot}] posted with flags {fl:#06x} and a {room}-byte buffer for a {}-byte message (op {})",
                        msg.data.len(),
                        msg.op
                    ),
                );
                return done;
            }
            let msg = self.outbox.pop_front().expect("front exists");
            if !msg.data.is_empty() {
                if let Err(m) = iommu.write(addr, &msg.data) {
                    iommu.report_miss(m, dma, "ARQ buffer", addr, msg.data.len());
                }
            }
            let mut w = [0u8; DESC_LEN as usize];
            w[8..12].copy_from_slice(&msg.op.to_le_bytes());
            w[12..16].copy_from_slice(&msg.status.to_le_bytes());
            w[24..32].copy_from_slice(&d[24..32]);
            let _ = iommu.write(at + 8, &w[8..]);
            // The buffer and the upper descriptor words before the first
            // quadword (flags with DD, opcode, datalen; retval 0), written
            // in one store: pairs with the VF's acquire after it sees ARQH
            // move or DD (B.3.2 receive).
            let qword0 = u64::from(fl | flags::DD | flags::CMP)
                | u64::from(OP_SEND_TO_VF) << 16
                | (msg.data.len() as u64) << 32;
            fence(Ordering::Release);
            let _ = iommu.write_u64(at, qword0);
            self.arq.head = (slot + 1) % n;
            done += 1;
        }
        done
    }
}
