//! The iavf data path (nic-facts.md B.5, B.8): one TX or RX queue with the
//! ring the PF programmed from CONFIG_VSI_QUEUES, enabled only through
//! ENABLE_QUEUES; 16-byte TX descriptors (data DTYPE 0, context DTYPE 1,
//! DTYPE 0xF written back on RS), 32-byte RX descriptors (read format
//! in, write-back with DD/EOF/length/ptype/RSS hash).
//!
//! Ownership goes through [`super::ownership`] as for the advanced
//! engine: a buffer is the queue's from the tail write that hands its
//! descriptor over to its write-back (RX: DD; TX: DD on an RS descriptor,
//! for every buffer up to it), or to DISABLE_QUEUES / a reset.
//!
//! Choices the facts do not settle: descriptors are read at the tail
//! write (the snapshot) and compared when the device uses them; a TX
//! context descriptor is accepted and ignored (the model has no offloads);
//! an RX tail written before the queue is enabled is kept (B.8 #5 asks for
//! it), a TX tail that hands descriptors over before enable is a
//! violation.

use super::ownership::{Access, DmaRules, QueueTag, Slot};
use super::violation::Rule;
use super::Cx;
use std::collections::VecDeque;
use std::sync::atomic::{fence, Ordering};

macro_rules! rule {
    ($name:literal, $sec:literal) => {
        Rule::new($name, concat!("nic-facts.md ", $sec))
    };
}

/// TX descriptor bytes (B.5.2).
pub const TX_DESC: u64 = 16;
/// RX descriptor bytes: the 32-byte format (B.5.1).
pub const RX_DESC: u64 = 32;
/// TX DTYPE field, bits 3:0 (B.5.2).
pub const DTYPE_MASK: u64 = 0xF;
/// DTYPE data.
pub const DTYPE_DATA: u64 = 0x0;
/// DTYPE context (B.5.3).
pub const DTYPE_CONTEXT: u64 = 0x1;
/// DTYPE DESC_DONE, written back (B.5.2).
pub const DTYPE_DONE: u64 = 0xF;
/// CMD shift (B.5.2).
pub const CMD_SHIFT: u32 = 4;
/// CMD.EOP.
pub const CMD_EOP: u64 = 0x1;
/// CMD.RS.
pub const CMD_RS: u64 = 0x2;
/// CMD.ICRC.
pub const CMD_ICRC: u64 = 0x4;
/// TX_BUF_SZ shift and mask (B.5.2).
pub const BUF_SZ_SHIFT: u32 = 34;
/// 14 bits.
pub const BUF_SZ_MASK: u64 = 0x3FFF;
/// RX status DD (B.5.1).
pub const RX_DD: u64 = 1 << 0;
/// RX status EOF.
pub const RX_EOF: u64 = 1 << 1;
/// UMBCAST shift (9–10).
pub const RX_UMBCAST_SHIFT: u32 = 9;
/// FLTSTAT shift (12–13); 3 = RSS hash present.
pub const RX_FLTSTAT_SHIFT: u32 = 12;
/// ptype shift.
pub const RX_PTYPE_SHIFT: u32 = 30;
/// length_pbuf shift.
pub const RX_LEN_SHIFT: u32 = 38;
/// Buffers a TX packet may use (B.8 #7).
pub const TX_MAX_BUFS: usize = 8;
/// Shortest TX packet (B.8 #7).
pub const TX_MIN_LEN: usize = 17;
/// Buffers an RX frame may span (B.8 #4).
pub const RX_MAX_BUFS: usize = 5;

/// The data-path rules.
pub mod rules {
    use super::Rule;
    /// Tail beyond the ring.
    pub static TAIL_RANGE: Rule = rule!("tail-out-of-range", "B.2 (tail), B.4.3 ring_len");
    /// A TX tail moved before ENABLE_QUEUES.
    pub static TAIL_BEFORE_ENABLE: Rule = rule!(
        "tail-before-enable",
        "B.6 steps 9-13 (QTX_TAIL = 0 until ENABLE_QUEUES)"
    );
    /// The tail catches the head (a full ring).
    pub static TAIL_OVERRUN: Rule = rule!(
        "tail-equals-head",
        "B.8 #5 (RX tail = count - 1: one descriptor always free)"
    );
    /// A posted RX descriptor with hdr_addr bit 0 (DD) set.
    pub static RX_POST_DD: Rule = rule!(
        "rx-post-clears-dd",
        "B.5.1 (hdr_addr bit 0 overlays DD: write 0)"
    );
    /// A TX descriptor DTYPE other than data or context.
    pub static TX_FORMAT: Rule = rule!("tx-descriptor-format", "B.5.2, B.5.3 (DTYPE 0 or 1)");
    /// ICRC missing.
    pub static TX_ICRC: Rule = rule!("tx-icrc", "B.8 #7 (always set ICRC)");
    /// More than 8 buffers, or shorter than 17 bytes.
    pub static TX_PACKET: Rule = rule!("tx-packet-shape", "B.8 #7 (8 buffers, 17 bytes)");
    /// A descriptor changed after its tail write.
    pub static DESC_AFTER_TAIL: Rule = rule!(
        "descriptor-written-after-tail",
        "B.8 #5 (tail only after a wmb)"
    );
}

/// The DMA and ownership rules with iavf sections.
pub static DMA_RULES: DmaRules = DmaRules {
    outside_mapping: rule!("dma-outside-mapping", "B.1 (DMA), B.6 step 1"),
    va_as_iova: rule!("va-passed-as-iova", "B.1 (DMA)"),
    bus_master_off: rule!("dma-with-bus-master-off", "B.6 step 1 (bus mastering)"),
    rx_taken_before_dd: rule!("rx-buffer-taken-before-dd", "B.8 #6 (DD first)"),
    tx_freed_before_dd: rule!(
        "tx-buffer-freed-before-dd",
        "B.5.2 (DTYPE 0xF on RS descriptors)"
    ),
    freed_before_disabled: rule!(
        "buffer-freed-before-queue-disabled",
        "B.6 stop (DISABLE_QUEUES first)"
    ),
    reused_while_owned: rule!(
        "buffer-reused-while-device-owned",
        "B.5 (a posted buffer is the device's until written back)"
    ),
    posted_after_free: rule!(
        "buffer-posted-after-free",
        "B.5 (a posted buffer is the device's until written back)"
    ),
    dma_into_freed: rule!("dma-into-freed-buffer", "B.6 stop (DISABLE_QUEUES first)"),
    dma_unowned: rule!("dma-into-unowned-buffer", "B.5"),
    unmap_while_owned: rule!("unmap-while-device-owns", "B.6 stop"),
};

/// A ring as the PF programmed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ring {
    /// Base IOVA.
    pub base: u64,
    /// Descriptors.
    pub count: u32,
    /// RX buffer size.
    pub buf: u32,
    /// RX largest frame.
    pub max_pkt: u32,
}

/// A frame on the wire side of an RX queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RxFrame {
    /// Bytes.
    pub data: Vec<u8>,
    /// RSS hash (FLTSTAT = 3 when set).
    pub rss: Option<u32>,
    /// ptype (B.5.1 table).
    pub ptype: u8,
}

#[derive(Clone, Copy, Debug)]
struct Handed {
    slot: u32,
    snap: [u64; 4],
    done: bool,
}

/// Per-queue counters for GET_STATS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Bytes.
    pub bytes: u64,
    /// Unicast frames.
    pub unicast: u64,
    /// Multicast frames.
    pub multicast: u64,
    /// Broadcast frames.
    pub broadcast: u64,
    /// Discards (RX: no descriptor, too large, queue off; TX: none).
    pub discards: u64,
}

impl Counts {
    fn count(&mut self, f: &[u8]) {
        self.bytes += f.len() as u64;
        match f.first() {
            _ if f.len() >= 6 && f[..6] == [0xFF; 6] => self.broadcast += 1,
            Some(b) if b & 1 != 0 => self.multicast += 1,
            _ => self.unicast += 1,
        }
    }
}

/// One iavf queue.
#[derive(Debug)]
pub struct IavfQueue {
    tag: QueueTag,
    ring: Option<Ring>,
    enabled: bool,
    head: u32,
    tail: u32,
    handed: VecDeque<Handed>,
    /// RX frames waiting for descriptors.
    pub fifo: VecDeque<RxFrame>,
    /// RX FIFO capacity.
    pub fifo_cap: usize,
    /// TX frames sent.
    pub sent: Vec<Vec<u8>>,
    partial: Vec<u8>,
    partial_bufs: usize,
    /// Counters.
    pub counts: Counts,
    /// DMA held because bus mastering was off.
    pub blocked: u64,
    /// Stopped by a reset the driver has not seen yet: its tail writes are
    /// ignored until it configures the queue again (CONFIG_VSI_QUEUES) or
    /// enables it (Linux keeps writing tails until it notices a reset,
    /// B.7).
    pub stopped_under_driver: bool,
    /// Tail writes ignored meanwhile.
    pub ignored_tails: u64,
    /// Write-backs done (the interrupt cause).
    pub writebacks: u64,
}

fn q(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[8 * i..8 * i + 8].try_into().expect("8 bytes"))
}

impl IavfQueue {
    /// A queue, off and unconfigured.
    pub fn new(tag: QueueTag, fifo_cap: usize) -> IavfQueue {
        IavfQueue {
            tag,
            ring: None,
            enabled: false,
            head: 0,
            tail: 0,
            handed: VecDeque::new(),
            fifo: VecDeque::new(),
            fifo_cap,
            sent: Vec::new(),
            partial: Vec::new(),
            partial_bufs: 0,
            counts: Counts::default(),
            blocked: 0,
            stopped_under_driver: false,
            ignored_tails: 0,
            writebacks: 0,
        }
    }

    fn desc_len(&self) -> u64 {
        if self.tag.tx {
            TX_DESC
        } else {
            RX_DESC
        }
    }

    /// Enabled.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Buffers the queue owns.
    pub fn owned(&self) -> usize {
        self.handed.len()
    }

    /// The head (next descriptor the device uses).
    pub fn head(&self) -> u32 {
        self.head
    }

    /// The tail register.
    pub fn tail(&self) -> u32 {
        self.tail
    }

    /// The ring the PF programmed (CONFIG_VSI_QUEUES); it applies from the
    /// next enable. A driver configuring the queue has seen the reset that
    /// stopped it: its tail writes count again from here (Linux's iavf
    /// fills its RX ring, writing the tail, before ENABLE_QUEUES when it
    /// re-initialises after a reset, as at its first bring-up).
    pub fn configure(&mut self, ring: Option<Ring>) {
        if ring.is_some() {
            self.stopped_under_driver = false;
        }
        self.ring = ring;
    }

    /// ENABLE_QUEUES: take the ring, hand over what the tail already
    /// covers (RX: B.8 #5 count − 1).
    pub fn enable(&mut self, cx: &mut Cx<'_>) {
        let Some(ring) = self.ring else { return };
        if self.enabled {
            return;
        }
        let len = ring.count as u64 * self.desc_len();
        if let Err(m) = cx.iommu.check(ring.base, len as usize) {
            cx.iommu.report_miss(
                m,
                &DMA_RULES,
                &format!("{} ring", self.tag),
                ring.base,
                len as usize,
            );
            return;
        }
        cx.iommu
            .owners()
            .take_ring(self.tag, ring.base, len, &DMA_RULES);
        self.enabled = true;
        self.stopped_under_driver = false;
        self.head = 0;
        let to = self.tail;
        self.tail = 0;
        if to >= ring.count {
            cx.iommu.violations().record(
                rules::TAIL_RANGE,
                format!(
                    "{} tail {to} (written before enable) beyond a ring of {}",
                    self.tag, ring.count
                ),
            );
            return;
        }
        self.hand_over(cx, ring, to);
    }

    /// DISABLE_QUEUES or a reset: stop at once, everything back.
    pub fn disable(&mut self, cx: &Cx<'_>) {
        self.enabled = false;
        self.handed.clear();
        self.partial.clear();
        self.partial_bufs = 0;
        self.head = 0;
        self.tail = 0;
        self.counts.discards += self.fifo.len() as u64;
        self.fifo.clear();
        cx.iommu.owners().release_queue(self.tag);
    }

    /// A tail register write.
    pub fn write_tail(&mut self, cx: &mut Cx<'_>, value: u32) {
        if self.stopped_under_driver {
            self.ignored_tails += 1;
            return;
        }
        let Some(ring) = self.ring.filter(|_| self.enabled) else {
            if self.tag.tx && value != 0 {
                cx.iommu.violations().record(
                    rules::TAIL_BEFORE_ENABLE,
                    format!("{} tail = {value} before ENABLE_QUEUES", self.tag),
                );
            }
            self.tail = value;
            return;
        };
        if value >= ring.count {
            cx.iommu.violations().record(
                rules::TAIL_RANGE,
                format!(
                    "{} tail = {value} beyond a ring of {}",
                    self.tag, ring.count
                ),
            );
            return;
        }
        self.hand_over(cx, ring, value);
    }

    fn read_desc(&self, cx: &Cx<'_>, ring: Ring, slot: u32) -> Option<[u64; 4]> {
        let at = ring.base + self.desc_len() * slot as u64;
        let mut raw = [0u8; 32];
        let raw = &mut raw[..self.desc_len() as usize];
        if let Err(m) = cx.iommu.read(at, raw) {
            cx.iommu.report_miss(
                m,
                &DMA_RULES,
                &format!("{} descriptor {slot}", self.tag),
                at,
                raw.len(),
            );
            return None;
        }
        let mut d = [0u64; 4];
        for (i, w) in d.iter_mut().enumerate().take(raw.len() / 8) {
            *w = q(raw, i);
        }
        Some(d)
    }

    fn hand_over(&mut self, cx: &mut Cx<'_>, ring: Ring, to: u32) {
        let v = cx.iommu.violations();
        let n = (to + ring.count - self.tail) % ring.count;
        let owned = self.handed.len() as u32;
        if owned + n > ring.count - 1 {
            v.record(
                rules::TAIL_OVERRUN,
                format!(
                    "{} tail = {to}: {n} more with {owned} owned in a ring of {}",
                    self.tag, ring.count
                ),
            );
            return;
        }
        for k in 0..n {
            let slot = (self.tail + k) % ring.count;
            let Some(d) = self.read_desc(cx, ring, slot) else {
                continue;
            };
            let (addr, len) = if self.tag.tx {
                let dtype = d[1] & DTYPE_MASK;
                let cmd = d[1] >> CMD_SHIFT;
                if dtype == DTYPE_CONTEXT {
                    (None, 0)
                } else if dtype != DTYPE_DATA {
                    v.record(
                        rules::TX_FORMAT,
                        format!("{} descriptor {slot}: DTYPE {dtype:#x}", self.tag),
                    );
                    (None, 0)
                } else {
                    if cmd & CMD_ICRC == 0 {
                        v.record(rules::TX_ICRC, format!("{} descriptor {slot}", self.tag));
                    }
                    (Some(d[0]), (d[1] >> BUF_SZ_SHIFT) & BUF_SZ_MASK)
                }
            } else {
                if d[1] & RX_DD != 0 {
                    v.record(
                        rules::RX_POST_DD,
                        format!(
                            "{} descriptor {slot}: hdr_addr {:#x} has bit 0 set",
                            self.tag, d[1]
                        ),
                    );
                }
                (Some(d[0]), ring.buf as u64)
            };
            if let Some(a) = addr {
                cx.iommu
                    .owners()
                    .take(self.tag, slot as u16, a, len, &DMA_RULES, v);
            }
            self.handed.push_back(Handed {
                slot,
                snap: d,
                done: false,
            });
        }
        self.tail = to;
    }

    /// The descriptor must be what was handed over.
    fn check_same(&self, cx: &Cx<'_>, ring: Ring, h: &Handed) {
        if let Some(d) = self.read_desc(cx, ring, h.slot) {
            if d != h.snap {
                cx.iommu.violations().record(
                    rules::DESC_AFTER_TAIL,
                    format!(
                        "{} descriptor {} changed while the device owned it: {:x?} then {:x?}",
                        self.tag, h.slot, h.snap, d
                    ),
                );
            }
        }
    }

    /// Work now.
    pub fn due(&self) -> bool {
        self.enabled
            && if self.tag.tx {
                self.handed.iter().any(|h| !h.done)
            } else {
                !self.fifo.is_empty() && !self.handed.is_empty()
            }
    }

    /// A frame from the wire (RX). False if dropped at once.
    pub fn inject(&mut self, f: RxFrame) -> bool {
        if !self.enabled || self.fifo.len() >= self.fifo_cap {
            self.counts.discards += 1;
            return false;
        }
        self.fifo.push_back(f);
        true
    }

    /// Device work (device thread).
    pub fn run(&mut self, cx: &mut Cx<'_>) {
        let Some(ring) = self.ring.filter(|_| self.enabled) else {
            return;
        };
        if !self.due() {
            return;
        }
        if !cx.bus_master {
            self.blocked += 1;
            cx.bus_master_blocked(&DMA_RULES, self.tag);
            return;
        }
        if self.tag.tx {
            self.transmit(cx, ring);
        } else {
            self.receive(cx, ring);
        }
    }

    fn admit(
        &self,
        cx: &Cx<'_>,
        slot: Slot,
        iova: u64,
        len: usize,
        write: bool,
        what: &str,
    ) -> bool {
        cx.iommu.admit(
            Access {
                queue: self.tag,
                slot,
                iova,
                len,
                write,
            },
            &DMA_RULES,
            what,
        )
    }

    fn transmit(&mut self, cx: &mut Cx<'_>, ring: Ring) {
        let v = cx.iommu.violations();
        let mut last_rs = None;
        for i in 0..self.handed.len() {
            let h = self.handed[i];
            if h.done {
                continue;
            }
            self.check_same(cx, ring, &h);
            self.handed[i].done = true;
            self.head = (h.slot + 1) % ring.count;
            let d = h.snap;
            let cmd = d[1] >> CMD_SHIFT;
            if cmd & CMD_RS != 0 {
                last_rs = Some(i);
            }
            if d[1] & DTYPE_MASK != DTYPE_DATA {
                continue;
            }
            let len = ((d[1] >> BUF_SZ_SHIFT) & BUF_SZ_MASK) as usize;
            let mut buf = vec![0u8; len];
            if self.admit(
                cx,
                Slot::Desc(h.slot as u16),
                d[0],
                len,
                false,
                "frame data",
            ) {
                if let Err(m) = cx.iommu.read(d[0], &mut buf) {
                    cx.iommu.report_miss(m, &DMA_RULES, "frame data", d[0], len);
                }
            }
            self.partial.extend_from_slice(&buf);
            self.partial_bufs += 1;
            if cmd & CMD_EOP != 0 {
                let f = std::mem::take(&mut self.partial);
                if self.partial_bufs > TX_MAX_BUFS || f.len() < TX_MIN_LEN {
                    v.record(
                        rules::TX_PACKET,
                        format!(
                            "{} packet ending at {}: {} bytes in {} buffers",
                            self.tag,
                            h.slot,
                            f.len(),
                            self.partial_bufs
                        ),
                    );
                }
                self.partial_bufs = 0;
                self.counts.count(&f);
                self.sent.push(f);
            }
        }
        let Some(last) = last_rs else { return };
        {
            // The driver may free every buffer up to the RS descriptor the
            // moment it sees DTYPE = 0xF: release first.
            let mut own = cx.iommu.owners();
            for h in self.handed.range(..=last) {
                own.release(self.tag, h.slot as u16);
            }
        }
        for h in self.handed.range(..=last) {
            if h.snap[1] >> CMD_SHIFT & CMD_RS == 0 {
                continue;
            }
            let at = ring.base + TX_DESC * h.slot as u64;
            if self.admit(cx, Slot::Ring, at, 16, true, "write-back") {
                // The frame was read (and its buffers released) before
                // DTYPE = 0xF shows: pairs with the driver's acquire after
                // it sees the done descriptor (B.5.2).
                fence(Ordering::Release);
                let wb = (h.snap[1] & !DTYPE_MASK) | DTYPE_DONE;
                // One store: DTYPE and the rest of qword1 together.
                let _ = cx.iommu.write_u64(at + 8, wb);
            }
        }
        self.handed.drain(..=last);
        self.writebacks += 1;
    }

    fn receive(&mut self, cx: &mut Cx<'_>, ring: Ring) {
        while let Some(f) = self.fifo.front() {
            let bsize = ring.buf.max(1) as usize;
            let need = f.data.len().div_ceil(bsize).max(1);
            if f.data.len() > ring.max_pkt as usize || need > RX_MAX_BUFS {
                self.counts.discards += 1;
                self.fifo.pop_front();
                continue;
            }
            if self.handed.len() < need {
                break;
            }
            let f = self.fifo.pop_front().expect("front exists");
            let chunks: Vec<&[u8]> = if f.data.is_empty() {
                vec![&[][..]]
            } else {
                f.data.chunks(bsize).collect()
            };
            for (k, chunk) in chunks.iter().enumerate() {
                let h = self.handed.pop_front().expect("counted above");
                self.check_same(cx, ring, &h);
                let addr = h.snap[0];
                if self.admit(
                    cx,
                    Slot::Desc(h.slot as u16),
                    addr,
                    chunk.len(),
                    true,
                    "frame data",
                ) {
                    if let Err(m) = cx.iommu.write(addr, chunk) {
                        cx.iommu
                            .report_miss(m, &DMA_RULES, "frame data", addr, chunk.len());
                    }
                }
                let last = k + 1 == chunks.len();
                let mut qw1 = RX_DD | (chunk.len() as u64) << RX_LEN_SHIFT;
                let mut qw0 = 0u64;
                if last {
                    qw1 |= RX_EOF | (f.ptype as u64) << RX_PTYPE_SHIFT;
                    let cast = match f.data.first() {
                        _ if f.data.len() >= 6 && f.data[..6] == [0xFF; 6] => 2,
                        Some(b) if b & 1 != 0 => 1,
                        _ => 0,
                    };
                    qw1 |= cast << RX_UMBCAST_SHIFT;
                    if let Some(hash) = f.rss {
                        qw1 |= 3 << RX_FLTSTAT_SHIFT;
                        qw0 = (hash as u64) << 32;
                    }
                }
                cx.iommu.owners().release(self.tag, h.slot as u16);
                let at = ring.base + RX_DESC * h.slot as u64;
                if self.admit(cx, Slot::Ring, at, 32, true, "write-back") {
                    let _ = cx.iommu.write(at, &qw0.to_le_bytes());
                    let _ = cx.iommu.write(at + 16, &[0u8; 16]);
                    // qword1 (DD) last; the driver reads it first, then an
                    // acquire barrier (B.8 #6).
                    fence(Ordering::Release);
                    // One store: byte by byte, a driver could read DD
                    // with the length still 0 (a torn write-back).
                    let _ = cx.iommu.write_u64(at + 8, qw1);
                }
                self.head = (h.slot + 1) % ring.count;
            }
            self.counts.count(&f.data);
            self.writebacks += 1;
        }
    }
}
