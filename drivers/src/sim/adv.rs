//! The advanced-descriptor queue engine: one RX or TX queue of an Intel VF
//! (igbvf now, ixgbevf next), run by the device thread.
//!
//! Its constants are the model's own, written from the references (both
//! families share the layouts: nic-facts-igbvf.md C.4, C.11; nic-facts.md
//! A.4). A family gives its rule sections and the few bits that differ in
//! an [`AdvSpec`].
//!
//! Life of a descriptor:
//! 1. the driver writes it, then the tail: the engine takes a snapshot and
//!    the buffer becomes the queue's (rules: enable before tail, tail in
//!    range, never a full ring, DD clear, buffer mapped and free);
//! 2. after the fetch delay the device thread reads it (it must not have
//!    changed since the tail write);
//! 3. RX: a frame from the wire FIFO is written into the buffer; TX: the
//!    buffer is read and the frame goes to the wire;
//! 4. after the write-back delay the descriptor is written back (RX: every
//!    one, status dword last; TX: DD on RS descriptors only, reordered when
//!    the family allows relaxed-ordered write-backs) and the buffers go back
//!    to the driver.
//!
//! Disabling: clearing ENABLE starts the disable; until it completes,
//! ENABLE reads back 1 and the device keeps fetching and writing. It
//! completes when both the configured time has passed and the driver has
//! read the control register the configured number of times (a driver
//! that never reads it back never learns that the queue stopped); then
//! work in flight is dropped and every buffer goes back.

use super::iommu::Iommu;
use super::ownership::{Access, DmaRules, QueueTag, Slot};
use super::violation::Rule;
use super::Cx;
use std::collections::VecDeque;
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

// ---- descriptor and register bits (nic-facts-igbvf.md C.3, C.4, C.11;
// nic-facts.md A.3, A.4) -------------------------------------------------

/// Bytes per descriptor (C.4).
pub const DESC_SIZE: u64 = 16;
/// Ring base alignment and length granule (C.8 "ring size", C.10.2 last
/// row: "keep the hardware rules (128-byte base, 128-byte length)").
pub const RING_ALIGN: u64 = 128;
/// RXDCTL/TXDCTL.ENABLE, bit 25 (C.3, C.11).
pub const QUEUE_ENABLE: u32 = 1 << 25;
/// SRRCTL.BSIZEPKT, bits 6:0 in 1 KiB units (C.3).
pub const SRRCTL_BSIZEPKT_MASK: u32 = 0x7F;
/// BSIZEPKT unit (C.3).
pub const BSIZEPKT_UNIT: u64 = 1024;
/// SRRCTL.DESCTYPE, bits 27:25 (C.3).
pub const SRRCTL_DESCTYPE_MASK: u32 = 0x0E00_0000;
/// DESCTYPE = advanced one buffer (C.3).
pub const SRRCTL_DESCTYPE_ONEBUF: u32 = 0x0200_0000;
/// RX status DD (C.4.1).
pub const RX_DD: u32 = 0x01;
/// RX status EOP (C.4.1).
pub const RX_EOP: u32 = 0x02;
/// RX status VP: VLAN stripped into the vlan field (C.4.1).
pub const RX_VP: u32 = 0x08;
/// RX status LB: looped back from another pool (C.4.1).
pub const RX_LB: u32 = 0x4_0000;
/// TX DTYP field, bits 23:20 (C.4.2: DTYP = 0x3 data, C.4.3: 0x2 context).
pub const TX_DTYP_MASK: u32 = 0x00F0_0000;
/// DTYP data (C.4.2).
pub const TX_DTYP_DATA: u32 = 0x0030_0000;
/// DTYP context (C.4.3).
pub const TX_DTYP_CTXT: u32 = 0x0020_0000;
/// DCMD.EOP (C.4.2, C.11).
pub const TX_EOP: u32 = 0x0100_0000;
/// DCMD.IFCS (C.4.2).
pub const TX_IFCS: u32 = 0x0200_0000;
/// DCMD.RS (C.4.2).
pub const TX_RS: u32 = 0x0800_0000;
/// DCMD.DEXT (C.4.2).
pub const TX_DEXT: u32 = 0x2000_0000;
/// DTALEN, bits 15:0 (C.4.2).
pub const TX_DTALEN_MASK: u32 = 0xFFFF;
/// olinfo_status STA bits 3:0, DD = bit 0 on write-back (nic-facts.md
/// A.4.3, C.4.2).
pub const TX_STA_MASK: u32 = 0xF;
/// TX DD (C.4.2).
pub const TX_DD: u32 = 0x1;
/// olinfo_status.CC, check context, ixgbevf only (nic-facts.md A.4.3).
pub const TX_CC: u32 = 0x80;
/// PAYLEN shift in olinfo_status (C.11, nic-facts.md A.4.3).
pub const TX_PAYLEN_SHIFT: u32 = 14;

/// The ring and descriptor rules, with one family's sections.
#[derive(Clone, Copy, Debug)]
pub struct QueueRules {
    /// Ring base not 128-byte aligned.
    pub ring_alignment: Rule,
    /// Ring length zero or not a multiple of 128 bytes.
    pub ring_length: Rule,
    /// Tail moved while the queue is disabled.
    pub enable_before_tail: Rule,
    /// A descriptor changed after the tail handed it over.
    pub desc_after_tail: Rule,
    /// The tail caught up with the head (RDT = RDH with a full ring).
    pub tail_overrun: Rule,
    /// Tail beyond the ring.
    pub tail_range: Rule,
    /// SRRCTL.BSIZEPKT zero, or larger than the posted buffer.
    pub bsizepkt: Rule,
    /// SRRCTL.DESCTYPE other than advanced one-buffer.
    pub desctype: Rule,
    /// RX descriptor posted with DD set (hdr_addr not zero).
    pub rx_post_dd: Rule,
    /// TX descriptor not advanced data/context, or without IFCS/DTALEN
    /// (or CC where the family needs it), or with status bits set.
    pub tx_format: Rule,
    /// TX PAYLEN different from the frame length.
    pub tx_paylen: Rule,
    /// Base, length, head or SRRCTL written while the queue is enabled or
    /// its disable has not completed.
    pub reprogram_enabled: Rule,
}

/// What differs between the families the engine serves.
#[derive(Debug)]
pub struct AdvSpec {
    /// Ring rules.
    pub rules: QueueRules,
    /// DMA and ownership rules.
    pub dma: DmaRules,
    /// TX data descriptors must carry CC and follow a context descriptor
    /// (ixgbevf, nic-facts.md A.4.3, A.8 #3); `None` where the family has
    /// no such rule.
    pub tx_cc: Option<CcRules>,
    /// DCA_TXCTRL bit that allows relaxed-ordered TX write-backs (igb
    /// TX_WB_RO_EN bit 11, C.3), 0 if none.
    pub tx_wb_relaxed_bit: u32,
    /// On looped-back frames (LB), the VLAN field is big-endian (I350 VF,
    /// C.4.1, C.9 #14).
    pub lb_vlan_big_endian: bool,
}

/// The ixgbevf check-context rule (nic-facts.md A.8 #3): every data
/// descriptor carries CC, and the context slot it names (IDX) holds a
/// context descriptor written since the queue was enabled.
#[derive(Clone, Copy, Debug)]
pub struct CcRules {
    /// A data descriptor without CC.
    pub missing_cc: Rule,
    /// A data descriptor naming a context slot no context descriptor
    /// filled since the enable.
    pub missing_context: Rule,
    /// Malicious-driver detection stops the queue on either (X550 and
    /// later, A.8 #3); otherwise the frame still goes out.
    pub mdd_stops: bool,
}

/// olinfo_status / mss_l4len_idx IDX, bits 6:4: the context slot; two
/// slots, 0 and 1 (nic-facts.md A.4.3, A.4.4).
pub const TX_IDX_SHIFT: u32 = 4;
/// IDX mask after the shift (A.4.3: bits 6:4).
pub const TX_IDX_MASK: u32 = 0x7;
/// Context slots (A.4.3: "two slots, 0 and 1").
pub const TX_CONTEXT_SLOTS: u32 = 2;

/// Device-side delays and the disable behaviour.
#[derive(Clone, Copy, Debug)]
pub struct Delays {
    /// From the tail write to the descriptor fetch.
    pub fetch: Duration,
    /// From the data transfer to the descriptor write-back.
    pub writeback: Duration,
    /// A disable completes no earlier than this after ENABLE is cleared
    /// (nic-facts.md A.7.2: "hardware may take up to 100 µs").
    pub disable_time: Duration,
    /// ... and not before the driver has read the control register this
    /// many times since (0: time alone).
    pub disable_reads: u32,
}

impl Default for Delays {
    fn default() -> Self {
        Delays {
            fetch: Duration::from_micros(20),
            writeback: Duration::from_micros(30),
            disable_time: Duration::ZERO,
            disable_reads: 1,
        }
    }
}

/// A frame waiting on the wire side of an RX queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RxFrame {
    /// The bytes.
    pub data: Vec<u8>,
    /// Extra status/error bits for the EOP descriptor (checksum results,
    /// errors).
    pub status: u32,
    /// pkt_info (RSS and packet type).
    pub pkt_info: u16,
    /// RSS hash / ip_id+csum dword.
    pub rss: u32,
    /// A stripped VLAN tag (sets VP).
    pub vlan: Option<u16>,
    /// Looped back from another pool (sets LB).
    pub loopback: bool,
}

/// The ring setup registers of a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    /// Base low.
    Bal,
    /// Base high.
    Bah,
    /// Length in bytes.
    Len,
    /// SRRCTL (RX).
    Srrctl,
    /// Head.
    Head,
    /// DCA_RXCTRL / DCA_TXCTRL.
    Dca,
}

impl Setup {
    fn name(self, tx: bool) -> &'static str {
        match (self, tx) {
            (Setup::Bal, false) => "RDBAL",
            (Setup::Bal, true) => "TDBAL",
            (Setup::Bah, false) => "RDBAH",
            (Setup::Bah, true) => "TDBAH",
            (Setup::Len, false) => "RDLEN",
            (Setup::Len, true) => "TDLEN",
            (Setup::Head, false) => "RDH",
            (Setup::Head, true) => "TDH",
            (Setup::Srrctl, _) => "SRRCTL",
            (Setup::Dca, false) => "DCA_RXCTRL",
            (Setup::Dca, true) => "DCA_TXCTRL",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Enable {
    Off,
    On,
    Disabling { since: Instant, reads: u32 },
}

/// The ring as it was when the queue was enabled.
#[derive(Clone, Copy, Debug)]
struct Ring {
    base: u64,
    count: u32,
    /// RX buffer size from SRRCTL.
    bsize: u64,
    /// The ring was refused at enable: the queue does nothing.
    broken: bool,
}

#[derive(Clone, Copy, Debug)]
struct Handed {
    slot: u32,
    snap: [u32; 4],
    fetch_due: Instant,
    fetched: bool,
    /// RX: filled, write-back due then (dwords to write). TX: processed.
    wb: Option<(Instant, [u32; 4])>,
}

/// The register values and state of one queue.
#[derive(Debug)]
pub struct Queue {
    tag: QueueTag,
    spec: &'static AdvSpec,
    /// BAL, BAH, LEN, SRRCTL (RX) / DCA (TX), HEAD, TAIL, CTL as written.
    pub bal: u32,
    /// High base.
    pub bah: u32,
    /// Length in bytes.
    pub len: u32,
    /// SRRCTL (RX only).
    pub srrctl: u32,
    /// DCA_TXCTRL / DCA_RXCTRL.
    pub dca: u32,
    head: u32,
    tail: u32,
    ctl: u32,
    en: Enable,
    ring: Option<Ring>,
    handed: VecDeque<Handed>,
    /// RX frames waiting for descriptors.
    pub fifo: VecDeque<RxFrame>,
    /// RX: frames the FIFO holds at most; more are dropped.
    pub fifo_cap: usize,
    /// The PF lets this queue's function receive / transmit (VFRE/VFTE).
    pub pf_enabled: bool,
    /// TX: the wire is blocked; descriptors wait.
    pub hold: bool,
    /// TX: frames sent.
    pub sent: Vec<Vec<u8>>,
    tx_partial: Vec<u8>,
    tx_paylen: Option<u32>,
    /// Relaxed-ordered DD write-backs still to land (slot, dword 3).
    tx_deferred: VecDeque<(u32, u32)>,
    /// Good frames and octets (+4 for the FCS, C.10.1), wrapping.
    pub frames: u32,
    /// Octets, 64-bit here: each family cuts its register width from it
    /// (igbvf 32, ixgbevf 36 bits).
    pub octets: u64,
    /// TX: context slots filled since the enable (A.8 #3).
    tx_ctx: [bool; 2],
    /// TX, at hand-over: the last data descriptor checked had no EOP, so
    /// the next one continues its packet (CC and PAYLEN are read from a
    /// packet's first data descriptor only, A.8 #3).
    tx_check_mid: bool,
    /// TX: malicious-driver detection stopped the queue (A.8 #3).
    pub mdd_stopped: bool,
    /// RX frames dropped (queue off, PF off, FIFO full).
    pub dropped: u64,
    /// Buffers written while the queue was being disabled.
    pub late_writes: u64,
    /// DMA the device could not do because bus mastering was off.
    pub blocked: u64,
    /// The device side (a PF reset) stopped the queue under the driver,
    /// which cannot know until it looks: its tail writes until it
    /// reprograms the queue are ignored, not a broken rule (the Linux
    /// driver and ours both write them, seen in the vfio-user lab).
    pub stopped_under_driver: bool,
    /// Tail writes ignored while `stopped_under_driver`.
    pub ignored_tails: u64,
}

fn dw(d: &[u32; 4], lo: usize) -> u64 {
    d[lo] as u64 | (d[lo + 1] as u64) << 32
}

impl Queue {
    /// A disabled queue with zeroed registers.
    pub fn new(tag: QueueTag, spec: &'static AdvSpec, fifo_cap: usize) -> Queue {
        Queue {
            tag,
            spec,
            bal: 0,
            bah: 0,
            len: 0,
            srrctl: 0,
            dca: 0,
            head: 0,
            tail: 0,
            ctl: 0,
            en: Enable::Off,
            ring: None,
            handed: VecDeque::new(),
            fifo: VecDeque::new(),
            fifo_cap,
            pf_enabled: true,
            hold: false,
            sent: Vec::new(),
            tx_partial: Vec::new(),
            tx_paylen: None,
            tx_deferred: VecDeque::new(),
            frames: 0,
            octets: 0,
            tx_ctx: [false; 2],
            tx_check_mid: false,
            mdd_stopped: false,
            dropped: 0,
            late_writes: 0,
            blocked: 0,
            stopped_under_driver: false,
            ignored_tails: 0,
        }
    }

    /// Which queue this is.
    pub fn tag(&self) -> QueueTag {
        self.tag
    }

    /// True while enabled or disabling (the device may DMA).
    pub fn active(&self) -> bool {
        self.en != Enable::Off
    }

    /// Descriptors the device owns now.
    pub fn owned(&self) -> usize {
        self.handed.len()
    }

    fn rules(&self) -> &'static QueueRules {
        &self.spec.rules
    }

    fn name(&self, reg: &str) -> String {
        let n = self.tag.index;
        format!("{reg}({n})")
    }

    // ---- driver side (register accesses, on the driver's thread) ------

    /// Read HEAD.
    pub fn read_head(&self) -> u32 {
        self.head
    }

    /// Read TAIL.
    pub fn read_tail(&self) -> u32 {
        self.tail
    }

    /// Read the control register: ENABLE reads 1 until a disable
    /// completes (which this read may do).
    pub fn read_ctl(&mut self, cx: &mut Cx<'_>, delays: &Delays) -> u32 {
        if let Enable::Disabling { since, reads } = self.en {
            let reads = reads + 1;
            if cx.now >= since + delays.disable_time && reads >= delays.disable_reads {
                self.finish_disable(cx.iommu);
            } else {
                self.en = Enable::Disabling { since, reads };
            }
        }
        match self.en {
            Enable::Off => self.ctl & !QUEUE_ENABLE,
            _ => self.ctl | QUEUE_ENABLE,
        }
    }

    fn finish_disable(&mut self, iommu: &Iommu) {
        self.en = Enable::Off;
        self.ring = None;
        self.handed.clear();
        self.tx_partial.clear();
        self.tx_paylen = None;
        self.tx_deferred.clear();
        self.tx_ctx = [false; 2];
        self.tx_check_mid = false;
        self.mdd_stopped = false;
        iommu.owners().release_queue(self.tag);
    }

    /// A reset (VF reset, FLR, PF reset): the queue stops at once and
    /// everything goes back. `clear_regs` also zeroes the ring registers.
    pub fn reset(&mut self, iommu: &Iommu, clear_regs: bool) {
        self.stopped_under_driver = false;
        self.finish_disable(iommu);
        self.ctl &= !QUEUE_ENABLE;
        self.fifo.clear();
        if clear_regs {
            self.bal = 0;
            self.bah = 0;
            self.len = 0;
            self.srrctl = 0;
            self.head = 0;
            self.tail = 0;
            self.ctl = 0;
        }
    }

    /// Time-only disables complete on their own (no read needed).
    pub fn poll_disable(&mut self, cx: &Cx<'_>, delays: &Delays) {
        if let Enable::Disabling { since, .. } = self.en {
            if delays.disable_reads == 0 && cx.now >= since + delays.disable_time {
                self.finish_disable(cx.iommu);
            }
        }
    }

    /// A write to a ring setup register.
    pub fn write_setup(&mut self, cx: &mut Cx<'_>, reg: Setup, value: u32) {
        if reg == Setup::Dca {
            self.dca = value;
            return;
        }
        if self.en != Enable::Off {
            cx.iommu.violations().record(
                self.rules().reprogram_enabled,
                format!(
                    "{} = {value:#x} written while the queue {}",
                    self.name(reg.name(self.tag.tx)),
                    if self.en == Enable::On {
                        "is enabled"
                    } else {
                        "is still disabling (ENABLE has not read back 0)"
                    }
                ),
            );
        }
        match reg {
            Setup::Bal => self.bal = value,
            Setup::Bah => self.bah = value,
            Setup::Len => self.len = value,
            Setup::Srrctl => self.srrctl = value,
            Setup::Head if self.en == Enable::Off => self.head = value,
            Setup::Head | Setup::Dca => {}
        }
    }

    /// A write to the control register.
    pub fn write_ctl(&mut self, cx: &mut Cx<'_>, value: u32, delays: &Delays) {
        // The driver is programming the queue: it knows its state again.
        self.stopped_under_driver = false;
        self.ctl = value & !QUEUE_ENABLE;
        let on = value & QUEUE_ENABLE != 0;
        match (self.en, on) {
            (Enable::Off, true) => self.enable(cx),
            (Enable::On, false) => {
                self.en = Enable::Disabling {
                    since: cx.real,
                    reads: 0,
                };
                cx.iommu.owners().set_disabling(self.tag, true);
                if delays.disable_reads == 0 && delays.disable_time.is_zero() {
                    self.finish_disable(cx.iommu);
                }
            }
            (Enable::Disabling { .. }, true) => {
                // Enabled again before the disable completed: it never
                // stopped.
                self.en = Enable::On;
                cx.iommu.owners().set_disabling(self.tag, false);
            }
            _ => {}
        }
    }

    fn enable(&mut self, cx: &mut Cx<'_>) {
        let r = self.rules();
        let v = cx.iommu.violations();
        let base = self.bal as u64 | (self.bah as u64) << 32;
        let len = self.len as u64;
        let mut broken = false;
        if !base.is_multiple_of(RING_ALIGN) {
            v.record(
                r.ring_alignment,
                format!(
                    "{} base {base:#x} is not 128-byte aligned",
                    self.name("ring")
                ),
            );
            broken = true;
        }
        if len == 0 || !len.is_multiple_of(RING_ALIGN) {
            v.record(
                r.ring_length,
                format!(
                    "{} length {len} bytes is not a non-zero multiple of 128",
                    self.name("ring")
                ),
            );
            broken = true;
        }
        let mut bsize = 0;
        if !self.tag.tx {
            bsize = (self.srrctl & SRRCTL_BSIZEPKT_MASK) as u64 * BSIZEPKT_UNIT;
            if bsize == 0 {
                v.record(
                    r.bsizepkt,
                    format!(
                        "{} = {:#x}: BSIZEPKT is 0 (1 KiB units)",
                        self.name("SRRCTL"),
                        self.srrctl
                    ),
                );
                broken = true;
            }
            if self.srrctl & SRRCTL_DESCTYPE_MASK != SRRCTL_DESCTYPE_ONEBUF {
                v.record(
                    r.desctype,
                    format!(
                        "{} = {:#x}: DESCTYPE is not advanced one-buffer",
                        self.name("SRRCTL"),
                        self.srrctl
                    ),
                );
                broken = true;
            }
        }
        if !broken {
            if let Err(m) = cx.iommu.check(base, len as usize) {
                cx.iommu.report_miss(
                    m,
                    &self.spec.dma,
                    &format!("{} ring", self.tag),
                    base,
                    len as usize,
                );
                broken = true;
            }
        }
        let count = (len / DESC_SIZE) as u32;
        self.ring = Some(Ring {
            base,
            count,
            bsize,
            broken,
        });
        self.en = Enable::On;
        self.handed.clear();
        if !broken {
            cx.iommu
                .owners()
                .take_ring(self.tag, base, len, &self.spec.dma);
            if self.head >= count || self.tail >= count {
                self.head = 0;
                self.tail = 0;
            }
            // Descriptors between head and tail are the device's now.
            let (from, to) = (self.head, self.tail);
            self.tail = from;
            if from != to {
                self.hand_over(cx, to);
            }
        }
    }

    /// A write to the tail register.
    pub fn write_tail(&mut self, cx: &mut Cx<'_>, value: u32) {
        let r = self.rules();
        let v = cx.iommu.violations();
        let Some(ring) = self.ring.filter(|_| self.en != Enable::Off) else {
            if self.stopped_under_driver {
                self.ignored_tails += 1;
            } else if value != self.head {
                v.record(
                    r.enable_before_tail,
                    format!(
                        "{} = {value} written while the queue is disabled (head {})",
                        self.name(if self.tag.tx { "TDT" } else { "RDT" }),
                        self.head
                    ),
                );
            }
            self.tail = value;
            return;
        };
        if ring.broken {
            self.tail = value;
            return;
        }
        if value >= ring.count {
            v.record(
                r.tail_range,
                format!(
                    "{} = {value} beyond a ring of {} descriptors",
                    self.name(if self.tag.tx { "TDT" } else { "RDT" }),
                    ring.count
                ),
            );
            return;
        }
        self.hand_over(cx, value);
    }

    /// Take descriptors `tail..to` (a snapshot of each, and their buffers).
    fn hand_over(&mut self, cx: &mut Cx<'_>, to: u32) {
        let Some(ring) = self.ring else { return };
        let r = self.rules();
        let iommu = cx.iommu;
        let v = iommu.violations();
        let n = (to + ring.count - self.tail) % ring.count;
        let owned = self.handed.len() as u32;
        if owned + n > ring.count - 1 {
            v.record(
                r.tail_overrun,
                format!(
                    "{} = {to}: {n} more descriptors with {owned} still owned by the device in a ring of {}; the tail {} the head",
                    self.name(if self.tag.tx { "TDT" } else { "RDT" }),
                    ring.count,
                    if owned + n == ring.count { "equals" } else { "passes" }
                ),
            );
            return;
        }
        for k in 0..n {
            let slot = (self.tail + k) % ring.count;
            let at = ring.base + DESC_SIZE * slot as u64;
            let mut raw = [0u8; 16];
            if let Err(m) = iommu.read(at, &mut raw) {
                iommu.report_miss(
                    m,
                    &self.spec.dma,
                    &format!("{} descriptor {slot}", self.tag),
                    at,
                    16,
                );
                continue;
            }
            let snap = std::array::from_fn(|i| {
                u32::from_le_bytes([raw[4 * i], raw[4 * i + 1], raw[4 * i + 2], raw[4 * i + 3]])
            });
            if self.tag.tx {
                if self.check_tx_desc(cx, slot, &snap) {
                    // MDD: the queue stops where it is; what it owns stays
                    // owned until the driver disables it (A.8 #3).
                    self.mdd_stopped = true;
                    if let Some(r) = self.ring.as_mut() {
                        r.broken = true;
                    }
                    self.tail = (self.tail + k) % ring.count;
                    return;
                }
            } else {
                self.check_rx_desc(cx, slot, &snap, ring.bsize);
            }
            self.handed.push_back(Handed {
                slot,
                snap,
                fetch_due: cx.after(cx.delays.fetch),
                fetched: false,
                wb: None,
            });
        }
        self.tail = to;
    }

    fn check_rx_desc(&self, cx: &mut Cx<'_>, slot: u32, d: &[u32; 4], bsize: u64) {
        let iommu = cx.iommu;
        let v = iommu.violations();
        let r = self.rules();
        let (pkt, hdr) = (dw(d, 0), dw(d, 2));
        // A posted descriptor must not look completed to its driver,
        // whichever completion signal it reads: DD (DPDK, ours: they write
        // hdr_addr = 0, A.8 #2) or a non-zero write-back length (Linux
        // zeroes only wb.upper.length, bits 47:32 of the upper quadword,
        // and leaves the old status: seen in the vfio-user lab). With
        // one-buffer descriptors the device ignores hdr_addr otherwise.
        let stale_dd = hdr & RX_DD as u64 != 0;
        let stale_len = (hdr >> 32) & 0xffff != 0;
        if stale_dd && stale_len {
            v.record(
                r.rx_post_dd,
                format!(
                    "{} descriptor {slot} posted with hdr_addr {hdr:#x}: DD set and a length (write 0: it overlaps the status, DD and the length)",
                    self.tag,
                ),
            );
        }
        let what = format!("{} descriptor {slot} buffer", self.tag);
        if let Err(m) = iommu.check(pkt, bsize as usize) {
            if iommu.check(pkt, 1).is_ok() {
                v.record(
                    r.bsizepkt,
                    format!(
                        "{what} {pkt:#x} has fewer than the {bsize} bytes SRRCTL.BSIZEPKT promises"
                    ),
                );
            } else {
                iommu.report_miss(m, &self.spec.dma, &what, pkt, bsize as usize);
            }
            return;
        }
        let mut own = iommu.owners();
        if let Some(room) = own.element_room(pkt) {
            if room < bsize {
                v.record(
                    r.bsizepkt,
                    format!("{what} {pkt:#x} has {room} bytes, SRRCTL.BSIZEPKT says {bsize}"),
                );
            }
        }
        own.take(self.tag, slot as u16, pkt, bsize, &self.spec.dma, v);
    }

    /// Check a TX descriptor at hand-over; true if malicious-driver
    /// detection stops the queue on it.
    fn check_tx_desc(&mut self, cx: &mut Cx<'_>, slot: u32, d: &[u32; 4]) -> bool {
        let iommu = cx.iommu;
        let v = iommu.violations();
        let r = self.rules();
        let (addr, cmd, olinfo) = (dw(d, 0), d[2], d[3]);
        let tag = self.tag;
        let bad = |why: &str| {
            v.record(
                r.tx_format,
                format!("{tag} descriptor {slot} ({d:08x?}): {why}"),
            )
        };
        if cmd & TX_DEXT == 0 {
            bad("DEXT clear: not an advanced descriptor");
            return false;
        }
        match cmd & TX_DTYP_MASK {
            TX_DTYP_CTXT => {
                // mss_l4len_idx IDX names the slot it fills (A.4.4).
                let idx = (d[3] >> TX_IDX_SHIFT) & TX_IDX_MASK;
                if idx < TX_CONTEXT_SLOTS {
                    self.tx_ctx[idx as usize] = true;
                } else {
                    bad(&format!("context IDX {idx}: only slots 0 and 1 exist"));
                }
                return false;
            }
            TX_DTYP_DATA => {}
            t => {
                bad(&format!(
                    "DTYP {:#x} is neither data (0x3) nor context (0x2)",
                    t >> 20
                ));
                return false;
            }
        }
        if cmd & TX_IFCS == 0 {
            bad("IFCS clear on a data descriptor");
        }
        let mut mdd = false;
        // CC and IDX count on a packet's first data descriptor: Linux's
        // ixgbevf writes olinfo_status 0 on the further descriptors of a
        // multi-fragment packet (ixgbevf_tx_map), and the hardware sends
        // it (the vfio-user lab, where Linux's driver is the judge).
        let first = !self.tx_check_mid;
        self.tx_check_mid = cmd & TX_EOP == 0;
        if let (true, Some(cc)) = (first, self.spec.tx_cc) {
            let idx = (olinfo >> TX_IDX_SHIFT) & TX_IDX_MASK;
            let stop = if cc.mdd_stops {
                "; malicious-driver detection stops the queue"
            } else {
                ""
            };
            if olinfo & TX_CC == 0 {
                v.record(
                    cc.missing_cc,
                    format!(
                        "{} descriptor {slot} ({d:08x?}): CC clear on a data descriptor{stop}",
                        self.tag
                    ),
                );
                mdd = cc.mdd_stops;
            } else if idx >= TX_CONTEXT_SLOTS || !self.tx_ctx[idx as usize] {
                v.record(
                    cc.missing_context,
                    format!(
                        "{} descriptor {slot} ({d:08x?}): CC set for context slot {idx}, which no context descriptor filled since the queue was enabled{stop}",
                        self.tag
                    ),
                );
                mdd = cc.mdd_stops;
            }
        }
        if mdd {
            return true;
        }
        if olinfo & TX_STA_MASK != 0 {
            bad("status bits (DD) set by the driver");
        }
        let len = (cmd & TX_DTALEN_MASK) as u64;
        if len == 0 {
            bad("DTALEN 0");
            return false;
        }
        let what = format!("{} descriptor {slot} buffer", self.tag);
        if let Err(m) = iommu.check(addr, len as usize) {
            iommu.report_miss(m, &self.spec.dma, &what, addr, len as usize);
            return false;
        }
        iommu
            .owners()
            .take(self.tag, slot as u16, addr, len, &self.spec.dma, v);
        false
    }

    // ---- device side (the device thread) -------------------------------

    /// When descriptor `h` has work due, if it has any.
    fn due(&self, h: &Handed) -> Option<Instant> {
        match h.wb {
            _ if !h.fetched => Some(h.fetch_due),
            // TX descriptors without RS are never written back.
            Some((due, d)) if !self.tag.tx || d[2] & TX_RS != 0 => Some(due),
            Some(_) => None,
            // Fetched TX descriptors are sent at once; fetched RX ones wait
            // for a frame.
            None if self.tag.tx => Some(h.fetch_due),
            None => None,
        }
    }

    /// Earliest time this queue has work due, if any.
    pub fn next_due(&self) -> Option<Instant> {
        // A broken or MDD-stopped ring does nothing until it is disabled.
        if self.ring.is_some_and(|r| r.broken) {
            return None;
        }
        if self.en == Enable::Off || (self.tag.tx && (self.hold || !self.pf_enabled)) {
            return None;
        }
        let rx_ready = !self.tag.tx
            && !self.fifo.is_empty()
            && self.handed.iter().any(|h| h.fetched && h.wb.is_none());
        let mut d = self.handed.iter().filter_map(|h| self.due(h)).min();
        if !self.tx_deferred.is_empty() {
            d = Some(d.map_or(Instant::now(), |d| d.min(Instant::now())));
        }
        if rx_ready {
            // A frame waits and a descriptor is there: now.
            return Some(d.map_or(Instant::now(), |d| d.min(Instant::now())));
        }
        d
    }

    /// True if the device has nothing it could do now or later without a
    /// register write or a new frame.
    pub fn idle(&self) -> bool {
        self.next_due().is_none()
    }

    /// A frame from the wire. False if dropped at once (queue off, the PF
    /// has the function's receive off, FIFO full).
    pub fn inject(&mut self, f: RxFrame) -> bool {
        if self.en == Enable::Off || !self.pf_enabled || self.fifo.len() >= self.fifo_cap {
            self.dropped += 1;
            return false;
        }
        self.fifo.push_back(f);
        true
    }

    /// One pass of device work.
    pub fn run(&mut self, cx: &mut Cx<'_>) {
        self.poll_disable(cx, cx.delays);
        let Some(ring) = self.ring.filter(|r| !r.broken && self.en != Enable::Off) else {
            if self.en == Enable::Off && !self.fifo.is_empty() {
                self.dropped += self.fifo.len() as u64;
                self.fifo.clear();
            }
            return;
        };
        if self.tag.tx && (self.hold || !self.pf_enabled) {
            return;
        }
        let has_work = self.handed.iter().any(|h| {
            (!h.fetched && h.fetch_due <= cx.now) || h.wb.is_some_and(|(d, _)| d <= cx.now)
        }) || (!self.tag.tx && !self.fifo.is_empty())
            || !self.tx_deferred.is_empty();
        if !has_work {
            return;
        }
        if !cx.bus_master {
            self.blocked += 1;
            cx.bus_master_blocked(&self.spec.dma, self.tag);
            return;
        }
        self.fetch(cx, ring);
        if self.tag.tx {
            self.transmit(cx, ring);
            self.tx_writeback(cx, ring);
        } else {
            self.receive(cx, ring);
            self.rx_writeback(cx, ring);
        }
    }

    fn desc_at(ring: Ring, slot: u32) -> u64 {
        ring.base + DESC_SIZE * slot as u64
    }

    fn read_desc(&self, cx: &Cx<'_>, ring: Ring, slot: u32) -> Option<[u32; 4]> {
        let at = Self::desc_at(ring, slot);
        let iommu = cx.iommu;
        if !iommu.admit(
            Access {
                queue: self.tag,
                slot: Slot::Ring,
                iova: at,
                len: 16,
                write: false,
            },
            &self.spec.dma,
            "descriptor fetch",
        ) {
            return None;
        }
        let mut d = [0u32; 4];
        for (i, w) in d.iter_mut().enumerate() {
            match iommu.read_u32(at + 4 * i as u64) {
                Ok(x) => *w = x,
                Err(m) => {
                    iommu.report_miss(m, &self.spec.dma, "descriptor fetch", at, 16);
                    return None;
                }
            }
        }
        Some(d)
    }

    /// The descriptor must still be what the driver handed over.
    fn same_as_handed(&self, cx: &Cx<'_>, ring: Ring, h: &Handed, when: &str) -> Option<[u32; 4]> {
        let d = self.read_desc(cx, ring, h.slot)?;
        if d != h.snap {
            cx.iommu.violations().record(
                self.rules().desc_after_tail,
                format!(
                    "{} descriptor {} changed {when}: {:08x?} at the tail write, {:08x?} now",
                    self.tag, h.slot, h.snap, d
                ),
            );
        }
        Some(d)
    }

    fn fetch(&mut self, cx: &mut Cx<'_>, ring: Ring) {
        for i in 0..self.handed.len() {
            let h = self.handed[i];
            if h.fetched || h.fetch_due > cx.now {
                continue;
            }
            // The device uses what it reads; a change since the tail write
            // is the driver's ordering bug.
            let Some(d) = self.same_as_handed(cx, ring, &h, "between the tail write and the fetch")
            else {
                continue;
            };
            let h = &mut self.handed[i];
            h.snap = d;
            h.fetched = true;
        }
    }

    fn receive(&mut self, cx: &mut Cx<'_>, ring: Ring) {
        let disabling = matches!(self.en, Enable::Disabling { .. });
        while let Some(f) = self.fifo.front() {
            let first = self.handed.iter().position(|h| h.wb.is_none());
            let Some(first) = first else { break };
            let need = f.data.len().div_ceil(ring.bsize as usize).max(1);
            let ready = self
                .handed
                .iter()
                .skip(first)
                .take_while(|h| h.fetched)
                .count();
            if ready < need {
                break;
            }
            let f = self.fifo.pop_front().expect("front exists");
            let chunks: Vec<&[u8]> = if f.data.is_empty() {
                vec![&[][..]]
            } else {
                f.data.chunks(ring.bsize as usize).collect()
            };
            for (k, chunk) in chunks.iter().enumerate() {
                let h = self.handed[first + k];
                let addr = dw(&h.snap, 0);
                let ok = cx.iommu.admit(
                    Access {
                        queue: self.tag,
                        slot: Slot::Desc(h.slot as u16),
                        iova: addr,
                        len: chunk.len(),
                        write: true,
                    },
                    &self.spec.dma,
                    "frame data",
                );
                if ok {
                    if let Err(m) = cx.iommu.write(addr, chunk) {
                        cx.iommu
                            .report_miss(m, &self.spec.dma, "frame data", addr, chunk.len());
                    }
                    if disabling {
                        self.late_writes += 1;
                    }
                }
                let last = k + 1 == chunks.len();
                let mut status = RX_DD;
                let (mut pkt_info, mut rss, mut vlan) = (0, 0, 0);
                if last {
                    status |= RX_EOP | f.status;
                    pkt_info = f.pkt_info;
                    rss = f.rss;
                    if let Some(tag) = f.vlan {
                        status |= RX_VP;
                        vlan = if f.loopback && self.spec.lb_vlan_big_endian {
                            tag.swap_bytes()
                        } else {
                            tag
                        };
                    }
                    if f.loopback {
                        status |= RX_LB;
                    }
                }
                let wb = [
                    pkt_info as u32,
                    rss,
                    status,
                    chunk.len() as u32 | (vlan as u32) << 16,
                ];
                self.handed[first + k].wb = Some((cx.after(cx.delays.writeback), wb));
            }
            self.frames = self.frames.wrapping_add(1);
            self.octets = self.octets.wrapping_add(f.data.len() as u64 + 4);
        }
    }

    fn rx_writeback(&mut self, cx: &mut Cx<'_>, ring: Ring) {
        // In order: igb has no relaxed ordering for RX write-backs (C.3
        // lists none in DCA_RXCTRL).
        while let Some(h) = self.handed.front().copied() {
            let Some((due, wb)) = h.wb else { break };
            if due > cx.now {
                break;
            }
            self.same_as_handed(cx, ring, &h, "while the device owned it");
            // The buffer is the driver's once DD is visible: release first.
            cx.iommu.owners().release(self.tag, h.slot as u16);
            let at = Self::desc_at(ring, h.slot);
            if cx.iommu.admit(
                Access {
                    queue: self.tag,
                    slot: Slot::Ring,
                    iova: at,
                    len: 16,
                    write: true,
                },
                &self.spec.dma,
                "write-back",
            ) {
                // Status (with DD) last, after a release fence: the
                // partner is the driver's acquire fence after it sees DD
                // (C.4.1, C.10.1 "status (with DD) last").
                for w in [0usize, 1, 3] {
                    let _ = cx.iommu.write_u32(at + 4 * w as u64, wb[w]);
                }
                fence(Ordering::Release);
                let _ = cx.iommu.write_u32(at + 8, wb[2]);
            }
            self.handed.pop_front();
            self.head = (h.slot + 1) % ring.count;
        }
    }

    fn transmit(&mut self, cx: &mut Cx<'_>, ring: Ring) {
        for i in 0..self.handed.len() {
            let h = self.handed[i];
            if h.wb.is_some() {
                continue;
            }
            if !h.fetched {
                break;
            }
            let d = h.snap;
            let cmd = d[2];
            // Done with this descriptor whatever happens below.
            self.handed[i].wb = Some((cx.after(cx.delays.writeback), d));
            self.head = (h.slot + 1) % ring.count;
            if cmd & TX_DEXT == 0 || cmd & TX_DTYP_MASK != TX_DTYP_DATA {
                continue;
            }
            let len = (cmd & TX_DTALEN_MASK) as usize;
            if self.tx_paylen.is_none() {
                self.tx_paylen = Some(d[3] >> TX_PAYLEN_SHIFT);
            }
            let addr = dw(&d, 0);
            let mut buf = vec![0u8; len];
            let ok = cx.iommu.admit(
                Access {
                    queue: self.tag,
                    slot: Slot::Desc(h.slot as u16),
                    iova: addr,
                    len,
                    write: false,
                },
                &self.spec.dma,
                "frame data",
            );
            if ok {
                if let Err(m) = cx.iommu.read(addr, &mut buf) {
                    cx.iommu
                        .report_miss(m, &self.spec.dma, "frame data", addr, len);
                }
            }
            self.tx_partial.extend_from_slice(&buf);
            if cmd & TX_EOP != 0 {
                let frame = std::mem::take(&mut self.tx_partial);
                let paylen = self.tx_paylen.take().unwrap_or(0);
                if paylen as usize != frame.len() {
                    cx.iommu.violations().record(
                        self.rules().tx_paylen,
                        format!(
                            "{} descriptor {}: PAYLEN {paylen} for a {}-byte frame",
                            self.tag,
                            h.slot,
                            frame.len()
                        ),
                    );
                }
                self.frames = self.frames.wrapping_add(1);
                self.octets = self.octets.wrapping_add(frame.len() as u64 + 4);
                self.sent.push(frame);
            }
        }
    }

    fn tx_writeback(&mut self, cx: &mut Cx<'_>, ring: Ring) {
        if let Some((slot, olinfo)) = self.tx_deferred.pop_front() {
            let at = Self::desc_at(ring, slot);
            fence(Ordering::Release);
            if let Err(m) = cx.iommu.write_u32(at + 12, olinfo) {
                cx.iommu
                    .report_miss(m, &self.spec.dma, "write-back", at, 16);
            }
        }
        // Due RS descriptors, in ring order; reversed when the driver left
        // relaxed-ordered write-backs on (C.3 DCA_TXCTRL.TX_WB_RO_EN: Linux
        // clears it because "writebacks MUST be delivered in order").
        let mut due: Vec<usize> = Vec::new();
        for (i, h) in self.handed.iter().enumerate() {
            match h.wb {
                Some((d, _)) if d <= cx.now => due.push(i),
                _ => break,
            }
        }
        let rs: Vec<usize> = due
            .into_iter()
            .filter(|i| self.handed[*i].snap[2] & TX_RS != 0)
            .collect();
        let Some(&last) = rs.last() else { return };
        let relaxed =
            self.spec.tx_wb_relaxed_bit != 0 && self.dca & self.spec.tx_wb_relaxed_bit != 0;
        // Relaxed: the newest now, each older one a pass later.
        let order: Vec<usize> = if relaxed {
            for i in rs.iter().rev().skip(1) {
                let h = self.handed[*i];
                self.tx_deferred.push_back((h.slot, h.snap[3] | TX_DD));
            }
            vec![last]
        } else {
            rs.clone()
        };
        // Every buffer up to the last RS descriptor written back is the
        // driver's again, from before the driver can see DD (it may free
        // the buffers the moment it does).
        {
            let mut own = cx.iommu.owners();
            for h in self.handed.range(..=last) {
                own.release(self.tag, h.slot as u16);
            }
        }
        for i in order {
            let h = self.handed[i];
            let at = Self::desc_at(ring, h.slot);
            if h.snap[2] & TX_DEXT != 0 {
                self.same_as_handed(cx, ring, &h, "while the device owned it");
            }
            if cx.iommu.admit(
                Access {
                    queue: self.tag,
                    slot: Slot::Ring,
                    iova: at,
                    len: 16,
                    write: true,
                },
                &self.spec.dma,
                "write-back",
            ) {
                fence(Ordering::Release);
                let _ = cx.iommu.write_u32(at + 12, h.snap[3] | TX_DD);
            }
        }
        self.handed.drain(..=last);
    }
}
