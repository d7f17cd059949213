//! A small scripted PF for the iavf driver's unit tests, on a
//! [`RegisterSpace`] and a test IOMMU: it consumes the ATQ when the VF
//! writes ATQT (reading each descriptor and buffer through the IOMMU, as
//! a device would), records every message with its exact bytes, checks
//! each length the way the PF's validator does (B.4.4: anything else is
//! answered ERR_OPCODE_MISMATCH), and answers on the ARQ with canned
//! virtchnl replies or what the test scripted. It can post events, go
//! through a PF-initiated reset (B.7), and move frames through the rings
//! the VF configured (B.5): inject into an RX ring, send what a TX tail
//! write hands over and write DESC_DONE back on RS descriptors.
//!
//! It is not the device model (`crate::sim::iavf*`, another helper's):
//! it answers what the tests need and checks the rules listed above.

use super::regs::*;
use super::virtchnl::{caps, EthStats, Op, PfEvent, VSI_TYPE_SRIOV};
use crate::mmio::RegisterSpace;
use crate::net::MacAddr;
use crate::sim::Iommu;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

pub const VSI: u16 = 7;
/// The hash types the scripted PF offers (any non-zero set will do).
pub const HENA_CAPS: u64 = 0x0000_0000_7FFF_0000;
pub const PF_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x31]);

/// What the PF does with the next message of an opcode, instead of its
/// canned answer.
#[derive(Clone, Debug)]
pub enum Answer {
    /// Reply with this status and no data.
    Status(i32),
    /// Reply SUCCESS with these bytes.
    Reply(Vec<u8>),
    /// Consume the message, never reply.
    Silent,
    /// Do not even consume it (ATQH stays): the send times out.
    Stuck,
}

/// One message the VF sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub op: u32,
    pub flags: u16,
    pub data: Vec<u8>,
}

#[derive(Clone, Copy, Debug, Default)]
struct RxQ {
    base: u64,
    len: u32,
    head: u32,
}

#[derive(Clone, Copy, Debug, Default)]
struct TxQ {
    base: u64,
    len: u32,
    head: u32,
}

/// The PF's grant in GET_VF_RESOURCES.
#[derive(Clone, Copy, Debug)]
pub struct Grant {
    pub queue_pairs: u16,
    pub max_vectors: u16,
    pub caps: u32,
    pub key: u32,
    pub lut: u32,
    pub mac: MacAddr,
}

impl Default for Grant {
    fn default() -> Self {
        Grant {
            queue_pairs: 4,
            max_vectors: 5,
            caps: caps::L2 | caps::RSS_PF | caps::WB_ON_ITR | caps::VLAN,
            key: 52,
            lut: 64,
            mac: PF_MAC,
        }
    }
}

struct State {
    regs: HashMap<u32, u32>,
    atq_head: u32,
    arq_head: u32,
    sent: Vec<Sent>,
    script: HashMap<u32, VecDeque<Answer>>,
    grant: Grant,
    version: (u32, u32),
    stats: EthStats,
    rstat: u32,
    /// RSTAT reads left before a reset completes (`None`: held).
    reset_reads: Option<u32>,
    resetting: bool,
    rx: [RxQ; 16],
    tx: [TxQ; 16],
    rx_on: u32,
    tx_on: u32,
    link_on_enable: bool,
    wire: Vec<Vec<u8>>,
    violations: Vec<String>,
    /// Replies rejected for their length (B.4.4).
    bad_lengths: Vec<(u32, usize)>,
}

/// A PF answering from canned replies and a script.
pub struct ScriptedPf {
    s: Mutex<State>,
    iommu: Arc<Iommu>,
}

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn le64(b: &[u8], o: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(w)
}

impl ScriptedPf {
    pub fn new(iommu: &Arc<Iommu>) -> Arc<ScriptedPf> {
        Arc::new(ScriptedPf {
            s: Mutex::new(State {
                regs: HashMap::new(),
                atq_head: 0,
                arq_head: 0,
                sent: Vec::new(),
                script: HashMap::new(),
                grant: Grant::default(),
                version: (1, 1),
                stats: EthStats::default(),
                rstat: VFR_VFACTIVE,
                reset_reads: Some(3),
                resetting: false,
                rx: [RxQ::default(); 16],
                tx: [TxQ::default(); 16],
                rx_on: 0,
                tx_on: 0,
                link_on_enable: true,
                wire: Vec::new(),
                violations: Vec::new(),
                bad_lengths: Vec::new(),
            }),
            iommu: Arc::clone(iommu),
        })
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.s.lock().unwrap()
    }

    pub fn set_grant(&self, g: Grant) {
        self.st().grant = g;
    }
    pub fn set_version(&self, major: u32, minor: u32) {
        self.st().version = (major, minor);
    }
    pub fn set_stats(&self, s: EthStats) {
        self.st().stats = s;
    }
    pub fn set_link_on_enable(&self, on: bool) {
        self.st().link_on_enable = on;
    }
    /// The next message `op` gets `a`.
    pub fn script(&self, op: Op, a: Answer) {
        self.st().script.entry(op as u32).or_default().push_back(a);
    }
    pub fn sent(&self) -> Vec<Sent> {
        self.st().sent.clone()
    }
    pub fn ops(&self) -> Vec<u32> {
        self.st().sent.iter().map(|m| m.op).collect()
    }
    pub fn clear_sent(&self) {
        self.st().sent.clear();
    }
    pub fn violations(&self) -> Vec<String> {
        self.st().violations.clone()
    }
    pub fn bad_lengths(&self) -> Vec<(u32, usize)> {
        self.st().bad_lengths.clone()
    }
    pub fn take_wire(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.st().wire)
    }
    pub fn enabled(&self) -> (u32, u32) {
        let s = self.st();
        (s.rx_on, s.tx_on)
    }
    pub fn reg(&self, offset: u32) -> u32 {
        self.st().regs.get(&offset).copied().unwrap_or(0)
    }
    pub fn preset(&self, offset: u32, v: u32) {
        self.st().regs.insert(offset, v);
    }

    /// The PF posts an event on the ARQ.
    pub fn post_event(&self, e: PfEvent) {
        let mut s = self.st();
        self.reply(&mut s, Op::Event as u32, 0, &e.encode());
    }

    /// A PF-initiated reset (B.7): RESET_IMPENDING, the admin queue
    /// disabled, queues stopped, RSTAT INPROGRESS until `reads` more
    /// reads of it (`None`: until [`Self::end_reset`]).
    pub fn pf_reset(&self, reads: Option<u32>) {
        self.post_event(PfEvent::ResetImpending);
        let mut s = self.st();
        Self::start_reset(&mut s, reads);
    }

    pub fn end_reset(&self) {
        self.st().reset_reads = Some(0);
    }

    fn start_reset(s: &mut State, reads: Option<u32>) {
        s.resetting = true;
        s.reset_reads = reads;
        s.rstat = VFR_INPROGRESS;
        s.rx_on = 0;
        s.tx_on = 0;
        for r in [VF_ATQLEN1, VF_ARQLEN1] {
            let v = s.regs.get(&r).copied().unwrap_or(0);
            s.regs.insert(r, v & !AQ_LEN_ENABLE);
        }
    }

    /// Put a frame in RX queue `q`'s next posted buffer, as the device
    /// writes back (B.5.1): data, then qword0 (hash), then qword1 with DD
    /// last. False if the queue is off or has no buffer posted.
    pub fn inject(&self, q: usize, frame: &[u8], rss: Option<u32>) -> bool {
        let mut s = self.st();
        if s.rx_on & (1 << q) == 0 {
            return false;
        }
        let tail = s.regs.get(&qrx_tail(q as u32)).copied().unwrap_or(0);
        let r = s.rx[q];
        if r.len == 0 || r.head == tail {
            return false;
        }
        let d = r.base + 32 * r.head as u64;
        let mut desc = [0u8; 32];
        self.iommu.read(d, &mut desc).expect("RX descriptor mapped");
        let pkt = le64(&desc, 0);
        if le64(&desc, 8) & 1 != 0 {
            s.violations
                .push(format!("RX desc {} posted with DD set", r.head));
        }
        self.iommu.write(pkt, frame).expect("RX buffer mapped");
        let mut q1 = 1 | 1 << 1 | (frame.len() as u64) << 38;
        let q0 = match rss {
            Some(h) => {
                q1 |= 3 << 12;
                (h as u64) << 32
            }
            None => 0,
        };
        self.iommu.write(d, &q0.to_le_bytes()).unwrap();
        self.iommu.write(d + 8, &q1.to_le_bytes()).unwrap();
        s.rx[q].head = (r.head + 1) % r.len;
        true
    }

    fn transmit(&self, s: &mut State, q: usize, tail: u32) {
        if s.tx_on & (1 << q) == 0 {
            return;
        }
        let t = s.tx[q];
        if t.len == 0 || tail >= t.len {
            s.violations
                .push(format!("TX tail {tail} outside ring of {}", t.len));
            return;
        }
        let mut head = t.head;
        while head != tail {
            let d = t.base + 16 * head as u64;
            let mut desc = [0u8; 16];
            self.iommu.read(d, &mut desc).expect("TX descriptor mapped");
            let addr = le64(&desc, 0);
            let q1 = le64(&desc, 8);
            let cmd = (q1 >> 4) & 0x3FF;
            let len = ((q1 >> 34) & 0x3FFF) as usize;
            if q1 & 0xF != 0 || cmd & 0x5 != 0x5 {
                s.violations.push(format!(
                    "TX desc {head}: qword1 {q1:#x} not data with EOP|ICRC"
                ));
            }
            let mut frame = vec![0u8; len];
            self.iommu.read(addr, &mut frame).expect("TX buffer mapped");
            s.wire.push(frame);
            if cmd & 0x2 != 0 {
                let done = (q1 & !0xF) | 0xF;
                self.iommu.write(d + 8, &done.to_le_bytes()).unwrap();
            }
            head = (head + 1) % t.len;
        }
        s.tx[q].head = head;
    }

    /// Write a PF → VF message into the next ARQ slot (B.3.1, B.3.2).
    fn reply(&self, s: &mut State, op: u32, status: i32, data: &[u8]) {
        let len = s.regs.get(&VF_ARQLEN1).copied().unwrap_or(0);
        if len & AQ_LEN_ENABLE == 0 {
            return;
        }
        let n = len & AQ_LEN_MASK;
        let tail = s.regs.get(&VF_ARQT1).copied().unwrap_or(0);
        let slot = s.arq_head;
        if slot == tail {
            s.violations.push("ARQ full: a message was lost".into());
            return;
        }
        let base = (s.regs.get(&VF_ARQBAH1).copied().unwrap_or(0) as u64) << 32
            | s.regs.get(&VF_ARQBAL1).copied().unwrap_or(0) as u64;
        let d = base + 32 * slot as u64;
        let mut desc = [0u8; 32];
        self.iommu
            .read(d, &mut desc)
            .expect("ARQ descriptor mapped");
        let flags = le16(&desc, 0);
        let room = le16(&desc, 4) as usize;
        let addr = (le32(&desc, 24) as u64) << 32 | le32(&desc, 28) as u64;
        if flags & 0x1000 == 0 || room < data.len() {
            s.violations.push(format!(
                "ARQ slot {slot} not posted (flags {flags:#x}, room {room})"
            ));
            return;
        }
        self.iommu.write(addr, data).unwrap();
        let mut out = desc;
        out[0..2].copy_from_slice(&(flags | 0x3).to_le_bytes());
        out[2..4].copy_from_slice(&0x0802u16.to_le_bytes());
        out[4..6].copy_from_slice(&(data.len() as u16).to_le_bytes());
        out[6..8].copy_from_slice(&0u16.to_le_bytes());
        out[8..12].copy_from_slice(&op.to_le_bytes());
        out[12..16].copy_from_slice(&(status as u32).to_le_bytes());
        self.iommu.write(d, &out).unwrap();
        s.arq_head = (slot + 1) % n.max(1);
        s.regs.insert(VF_ARQH1, s.arq_head);
    }

    fn resources(g: &Grant) -> Vec<u8> {
        let mut b = vec![0u8; 36];
        b[0..2].copy_from_slice(&1u16.to_le_bytes());
        b[2..4].copy_from_slice(&g.queue_pairs.to_le_bytes());
        b[4..6].copy_from_slice(&g.max_vectors.to_le_bytes());
        b[6..8].copy_from_slice(&9710u16.to_le_bytes());
        b[8..12].copy_from_slice(&g.caps.to_le_bytes());
        b[12..16].copy_from_slice(&g.key.to_le_bytes());
        b[16..20].copy_from_slice(&g.lut.to_le_bytes());
        b[20..22].copy_from_slice(&VSI.to_le_bytes());
        b[22..24].copy_from_slice(&g.queue_pairs.to_le_bytes());
        b[24..28].copy_from_slice(&(VSI_TYPE_SRIOV as u32).to_le_bytes());
        b[30..36].copy_from_slice(&g.mac.0);
        b
    }

    /// The PF's validator (B.4.4), then the canned answer.
    fn canned(&self, s: &mut State, op: u32, m: &[u8]) -> Option<(i32, Vec<u8>)> {
        let n = m.len();
        let want = match Op::from_u32(op) {
            Some(Op::Version) => Some(8),
            Some(Op::ResetVf) => Some(0),
            Some(Op::GetVfResources) => Some(4),
            Some(Op::ConfigVsiQueues) if n >= 8 => Some(72 + 64 * le16(m, 2) as usize),
            Some(Op::ConfigIrqMap) if n >= 2 => Some(14 + 12 * le16(m, 0) as usize),
            Some(Op::AddEthAddr) if n >= 4 => Some(12 + 8 * le16(m, 2) as usize),
            Some(Op::AddVlan) if n >= 4 => Some(6 + 2 * le16(m, 2) as usize),
            Some(Op::EnableQueues | Op::DisableQueues | Op::GetStats) => Some(12),
            Some(Op::ConfigPromiscuousMode) => Some(4),
            Some(Op::ConfigRssKey | Op::ConfigRssLut) if n >= 4 => Some(5 + le16(m, 2) as usize),
            Some(Op::SetRssHena) => Some(8),
            Some(Op::GetRssHenaCaps) => Some(0),
            _ => None,
        };
        if want != Some(n) {
            s.bad_lengths.push((op, n));
            return Some((-38, Vec::new()));
        }
        let ok = |d: Vec<u8>| Some((0, d));
        match Op::from_u32(op)? {
            Op::Version => {
                let (a, b) = s.version;
                let mut d = a.to_le_bytes().to_vec();
                d.extend(b.to_le_bytes());
                ok(d)
            }
            Op::ResetVf => {
                Self::start_reset(s, Some(3));
                None
            }
            Op::GetVfResources => ok(Self::resources(&s.grant)),
            Op::ConfigVsiQueues => {
                for p in 0..le16(m, 2) as usize {
                    let o = 8 + 64 * p;
                    let q = le16(m, o + 2) as usize;
                    s.tx[q] = TxQ {
                        base: le64(m, o + 8),
                        len: le16(m, o + 4) as u32,
                        head: 0,
                    };
                    s.rx[q] = RxQ {
                        base: le64(m, o + 48),
                        len: le32(m, o + 28),
                        head: 0,
                    };
                }
                ok(Vec::new())
            }
            Op::EnableQueues => {
                s.rx_on |= le32(m, 4);
                s.tx_on |= le32(m, 8);
                ok(Vec::new())
            }
            Op::DisableQueues => {
                s.rx_on &= !le32(m, 4);
                s.tx_on &= !le32(m, 8);
                ok(Vec::new())
            }
            Op::GetStats => ok(s.stats.encode()),
            Op::GetRssHenaCaps => ok(HENA_CAPS.to_le_bytes().to_vec()),
            _ => ok(Vec::new()),
        }
    }

    /// The VF wrote ATQT: consume every new slot.
    fn consume(&self, s: &mut State, tail: u32) {
        let len = s.regs.get(&VF_ATQLEN1).copied().unwrap_or(0);
        if len & AQ_LEN_ENABLE == 0 {
            return;
        }
        let n = (len & AQ_LEN_MASK).max(1);
        let base = (s.regs.get(&VF_ATQBAH1).copied().unwrap_or(0) as u64) << 32
            | s.regs.get(&VF_ATQBAL1).copied().unwrap_or(0) as u64;
        while s.atq_head != tail % n {
            let slot = s.atq_head;
            let d = base + 32 * slot as u64;
            let mut desc = [0u8; 32];
            self.iommu
                .read(d, &mut desc)
                .expect("ATQ descriptor mapped");
            let flags = le16(&desc, 0);
            let op = le32(&desc, 8);
            let dlen = le16(&desc, 4) as usize;
            let mut data = vec![0u8; if flags & 0x1000 != 0 { dlen } else { 0 }];
            if !data.is_empty() {
                let addr = (le32(&desc, 24) as u64) << 32 | le32(&desc, 28) as u64;
                self.iommu.read(addr, &mut data).expect("ATQ buffer mapped");
            }
            let scripted = s.script.get_mut(&op).and_then(|q| q.pop_front());
            if matches!(scripted, Some(Answer::Stuck)) {
                return;
            }
            if le16(&desc, 2) != 0x0801 || flags & 0x2000 == 0 {
                s.violations
                    .push(format!("ATQ slot {slot}: opcode/flags {:#x}", flags));
            }
            s.sent.push(Sent {
                op,
                flags,
                data: data.clone(),
            });
            let mut back = desc;
            back[0..2].copy_from_slice(&(flags | 0x3).to_le_bytes());
            self.iommu.write(d, &back).unwrap();
            s.atq_head = (slot + 1) % n;
            s.regs.insert(VF_ATQH1, s.atq_head);
            let answer = match scripted {
                Some(Answer::Status(st)) => Some((st, Vec::new())),
                Some(Answer::Reply(d)) => Some((0, d)),
                Some(Answer::Silent) => None,
                _ => self.canned(s, op, &data),
            };
            if let Some((st, d)) = answer {
                self.reply(s, op, st, &d);
            }
            if op == Op::EnableQueues as u32 && s.link_on_enable {
                let ev = PfEvent::LinkChange {
                    up: true,
                    speed_code: 0x10,
                };
                self.reply(s, Op::Event as u32, 0, &ev.encode());
            }
        }
    }
}

impl std::fmt::Debug for ScriptedPf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScriptedPf")
    }
}

impl RegisterSpace for ScriptedPf {
    fn read32(&self, offset: u32) -> u32 {
        let mut s = self.st();
        if offset == VFGEN_RSTAT {
            if s.resetting {
                match s.reset_reads {
                    Some(0) => {
                        // COMPLETED, then VFACTIVE at once: the PF ends its
                        // side of the reset without waiting for the VF,
                        // which polls for VFACTIVE before it touches its
                        // admin queue again (B.7; the iavf model does the
                        // same, after the Linux VF's lab run).
                        s.resetting = false;
                        s.rstat = VFR_VFACTIVE;
                        s.arq_head = 0;
                        s.atq_head = 0;
                        return VFR_COMPLETED;
                    }
                    Some(n) => s.reset_reads = Some(n - 1),
                    None => {}
                }
            }
            return s.rstat;
        }
        s.regs.get(&offset).copied().unwrap_or(0)
    }

    fn write32(&self, offset: u32, value: u32) {
        let mut s = self.st();
        s.regs.insert(offset, value);
        match offset {
            VF_ATQT1 => self.consume(&mut s, value),
            VF_ATQH1 => s.atq_head = value & AQ_PTR_MASK,
            VF_ARQH1 => s.arq_head = value & AQ_PTR_MASK,
            o if o < 0x40 => self.transmit(&mut s, (o / 4) as usize, value),
            _ => {}
        }
    }

    fn len(&self) -> usize {
        0x1_0000
    }
}
