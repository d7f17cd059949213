//! The ixgbevf model: an 82599, X540 or X550 SR-IOV VF (8086:10ed, 1515,
//! 1565, 15a8) with the Linux ixgbe PF behind its mailbox
//! ([`super::ixgbevf_pf`]).
//!
//! Everything here is from nic-facts.md part A (sections cited), and from
//! what the real Linux VF driver was seen to do against the vfio-user
//! prototype (its REPORT.md and register trace: the VF_RESET reply without
//! CTS, the VTEIAC/VTEIAM auto-clear, the cached read-to-clear bits OR-ed
//! into every VFMAILBOX write). Never from a driver's code.
//!
//! Modelled: BAR0 (A.2) with the mailbox and its read-to-clear bits (A.5),
//! eight queue pairs on the shared advanced-descriptor engine
//! ([`super::adv`]) with the ixgbevf rules (A.7, A.8), interrupt causes
//! and masks with auto-clear and auto-mask on a delivered MSI-X message
//! (counted, and sent to an [`IrqSink`]: a guest's eventfd over vfio-user), the statistics with their
//! 32/36-bit widths (A.2), the X550 RSS registers (A.8 #11), and
//! faults: VF reset, PF reset, link down/up, admin MAC change, a PF that
//! stops answering.
//! Receive-side scaling ([`Ixgbevf::rss_queue`], [`super::ixgbevf_rss`]):
//! the Toeplitz hash over the fields VFMRQC (X550) or the PF (82599/X540)
//! selects, the RETA entry as the queue, hash and RSS type written back.
//! Attached to a switch ([`super::veb::Veb`], [`Ixgbevf::start_on`])
//! the VF's transmitted frames are switched to the PF's other VFs and its
//! uplink, with MAC/multicast/VLAN filtering of what each VF receives;
//! alone ([`Ixgbevf::start`]) they go to [`Ixgbevf::wire`].
//! VTEITR throttles each vector's messages ([`Irq`]: one per programmed
//! interval, causes held pending meanwhile).
//! Not modelled yet: RX checksum
//! and packet-type results beyond what
//! a test puts in an [`RxFrame`], head write-back (A.8 #16: unused), and
//! of the newer mailbox protocol (API 1.5, or 1.7 with ESX_MBX, A.5.2)
//! only its lockless reads (accepted once it is negotiated).
//!
//! Choices the facts do not settle (later checks against the Linux driver
//! in the lab may change them):
//! - the mailbox interrupt cause is raised on a new PFSTS, PFACK or RSTD;
//!   an RX queue's when its head moves (a write-back), a TX queue's when a
//!   frame leaves;
//! - RSTI lasts [`IxgbevfConfig::vf_reset_time`] after VFCTRL.RST (0 by
//!   default: RSTD at once, as the prototype did for the Linux driver);
//! - a PF reset clears the queue registers; an X550 queue stopped by MDD
//!   keeps the descriptors it owns until the driver disables it;
//! - the VF_RESET reply has no CTS although A.5.4 says every processed
//!   reply has it: the Linux VF compares word 0 exactly (REPORT.md);
//! - the ixgbe PF answers an ACK from a VF without CTS with a bare
//!   FAILURE (not in the facts; Linux ixgbe_rcv_ack_from_vf, and Linux's
//!   VF needs it to recover from a PF reset, seen in the vfio-user lab);
//!   an admin MAC change sends the VF nothing;
//! - with the link down, received frames are dropped; transmit goes on;
//! - VFMPRC counts a multicast frame when it enters the queue's FIFO.

use super::adv::{AdvSpec, CcRules, Delays, Queue, QueueRules, RxFrame, Setup};
use super::ixgbevf_pf::{self, IxgbePf, MacType, PfRules, PfSetup};
use super::ixgbevf_rss;
use super::mailbox::{self, Mailbox, MailboxRules, PfDelays};
use super::ownership::{DmaRules, QueueTag};
use super::veb::{PfEvent, Veb, VebError, VebPort};
use super::violation::Rule;
use super::{Cx, DeviceModel, IrqSink, SimDevice};
use crate::net::MacAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---- A.2 register map (BAR0 offsets) -----------------------------------------

/// BAR0 size: VFRETA(15) = 0x323C is the highest register, so 16 KB
/// (A.1, inferred there).
pub const BAR_LEN: usize = 0x4000;
/// VFCTRL (A.2).
pub const VFCTRL: u32 = 0x0000;
/// VFSTATUS, read only to flush (A.2; its bits are not in the facts, C).
pub const VFSTATUS: u32 = 0x0008;
/// VFLINKS (A.2).
pub const VFLINKS: u32 = 0x0010;
/// VFFRTIMER (A.2).
pub const VFFRTIMER: u32 = 0x0048;
/// VTEICR: cause, read clears it (A.2).
pub const VTEICR: u32 = 0x0100;
/// VTEICS: cause set (A.2).
pub const VTEICS: u32 = 0x0104;
/// VTEIMS: mask set (A.2).
pub const VTEIMS: u32 = 0x0108;
/// VTEIMC: mask clear (A.2).
pub const VTEIMC: u32 = 0x010C;
/// VTEIAC: auto-clear (A.2).
pub const VTEIAC: u32 = 0x0110;
/// VTEIAM: auto-mask (A.2).
pub const VTEIAM: u32 = 0x0114;
/// VTIVAR(0); one per queue pair, + 4·i (A.2, A.3).
pub const VTIVAR0: u32 = 0x0120;
/// VTIVAR_MISC (A.2).
pub const VTIVAR_MISC: u32 = 0x0140;
/// VTRSCINT(0), + 4·i (A.2; unused, kept). One per queue **(inferred)**.
pub const VTRSCINT0: u32 = 0x0180;
/// VFMBMEM: 16 dwords (A.2).
pub const VFMBMEM: u32 = 0x0200;
/// VFMAILBOX (A.2, A.5.1).
pub const VFMAILBOX: u32 = 0x02FC;
/// VFPSRTYPE (A.2).
pub const VFPSRTYPE: u32 = 0x0300;
/// VTEITR(0), + 4·i, one per vector (A.2).
pub const VTEITR0: u32 = 0x0820;
/// RX queue 0 block, queue n at + 0x40·n (A.2).
pub const RX_BASE: u32 = 0x1000;
/// TX queue 0 block (A.2).
pub const TX_BASE: u32 = 0x2000;
/// Per-queue stride (A.2).
pub const STRIDE: u32 = 0x40;
/// Queues the VF's register file has (A.2: n = 0..7; A.5.4: the hardware
/// maximum is 8).
pub const QUEUES: usize = 8;
/// VFGPRC, 32-bit (A.2).
pub const VFGPRC: u32 = 0x101C;
/// VFGORC_LSB; with _MSB 36 bits (A.2).
pub const VFGORC_LSB: u32 = 0x1020;
/// VFGORC_MSB (A.2).
pub const VFGORC_MSB: u32 = 0x1024;
/// VFMPRC, 32-bit (A.2).
pub const VFMPRC: u32 = 0x1034;
/// VFGPTC, 32-bit (A.2).
pub const VFGPTC: u32 = 0x201C;
/// VFGOTC_LSB (A.2).
pub const VFGOTC_LSB: u32 = 0x2020;
/// VFGOTC_MSB (A.2).
pub const VFGOTC_MSB: u32 = 0x2024;
/// VFMRQC, X550 and later (A.2).
pub const VFMRQC: u32 = 0x3000;
/// VFRSSRK(0..9) (A.2).
pub const VFRSSRK0: u32 = 0x3100;
/// VFRXMEMWRAP (A.2).
pub const VFRXMEMWRAP: u32 = 0x3190;
/// VFRETA(0..15) (A.2).
pub const VFRETA0: u32 = 0x3200;

// Offsets inside a queue block (A.2).
/// RDBAL / TDBAL.
pub const Q_BAL: u32 = 0x00;
/// RDBAH / TDBAH.
pub const Q_BAH: u32 = 0x04;
/// RDLEN / TDLEN, bytes.
pub const Q_LEN: u32 = 0x08;
/// DCA_RXCTRL / DCA_TXCTRL.
pub const Q_DCA: u32 = 0x0C;
/// RDH / TDH.
pub const Q_HEAD: u32 = 0x10;
/// SRRCTL (RX).
pub const RX_SRRCTL: u32 = 0x14;
/// RDT / TDT.
pub const Q_TAIL: u32 = 0x18;
/// RXDCTL / TXDCTL.
pub const Q_CTL: u32 = 0x28;
/// RSCCTL (RX; unused by VFs, kept).
pub const RX_RSCCTL: u32 = 0x2C;
/// TDWBAL (TX).
pub const TX_TDWBAL: u32 = 0x38;
/// TDWBAH (TX).
pub const TX_TDWBAH: u32 = 0x3C;

// ---- A.3 bits ----------------------------------------------------------------

/// VFCTRL.RST (A.3).
pub const VFCTRL_RST: u32 = 1 << 26;
/// VFLINKS.UP (A.3).
pub const LINKS_UP: u32 = 0x4000_0000;
/// VFLINKS.SPEED = 10G (A.3).
pub const LINKS_SPEED_10G: u32 = 0x3000_0000;
/// The three interrupt vectors (A.3: IXGBE_VF_IRQ_CLEAR_MASK = 7).
pub const VECTORS: u32 = 0x7;
/// VTIVAR entry valid bit (A.3: IVAR_ALLOC_VAL 0x80).
pub const IVAR_ALLOC_VAL: u32 = 0x80;
/// DCA_TXCTRL.DESC_WRO_EN, bit 11 (A.3): relaxed-ordered descriptor
/// write-backs; DPDK clears it because it "hoses bookkeeping".
pub const DCA_TXCTRL_DESC_WRO_EN: u32 = 1 << 11;
/// The DCA_TXCTRL value after a reset: DESC_RRO | DESC_WRO | DATA_RRO
/// (A.3 defaults; the reset value itself is not stated, so this is the
/// value the reset routine writes **(inferred)**).
pub const DCA_TXCTRL_DEFAULT: u32 = (1 << 9) | DCA_TXCTRL_DESC_WRO_EN | (1 << 13);

// ---- rules -------------------------------------------------------------------

macro_rules! rule {
    ($name:literal, $sec:literal) => {
        Rule::new($name, concat!("nic-facts.md ", $sec))
    };
}

const QUEUE_RULES: QueueRules = QueueRules {
    ring_alignment: rule!("ring-base-alignment", "A.8 #5 (128-byte base)"),
    ring_length: rule!(
        "ring-length",
        "A.8 #5 (length a multiple of 128 bytes = 8 descriptors)"
    ),
    enable_before_tail: rule!("enable-before-tail", "A.7.2 (enable before RDT), A.8 #1"),
    desc_after_tail: rule!(
        "descriptor-written-after-tail",
        "A.8 #1 (tail only after the descriptor writes are visible)"
    ),
    tail_overrun: rule!("rdt-equals-rdh", "A.8 #1"),
    tail_range: rule!("tail-out-of-range", "A.2 (RDLEN/TDLEN = count x 16)"),
    bsizepkt: rule!(
        "bsizepkt-units",
        "A.8 #6, A.3 (SRRCTL.BSIZEPKT, 1 KB units)"
    ),
    desctype: rule!("srrctl-desctype", "A.3 (SRRCTL.DESCTYPE: use ADV_ONEBUF)"),
    rx_post_dd: rule!(
        "rx-post-clears-dd",
        "A.4.1, A.8 #2 (hdr_addr = 0 clears DD)"
    ),
    tx_format: rule!("tx-descriptor-format", "A.4.3, A.4.4"),
    tx_paylen: rule!("tx-paylen", "A.4.3 (PAYLEN)"),
    reprogram_enabled: rule!("ring-reprogrammed-while-enabled", "A.7.1/A.7.2 step 1"),
};

const CC_RULES: CcRules = CcRules {
    missing_cc: rule!(
        "tx-cc-missing",
        "A.8 #3 (CC on the first data descriptor of every packet)"
    ),
    missing_context: rule!(
        "tx-context-missing",
        "A.8 #3, A.7.1 step 8 (a context descriptor before the first data one)"
    ),
    mdd_stops: false,
};

const DMA_RULES: DmaRules = DmaRules {
    outside_mapping: rule!("dma-outside-mapping", "A.1 (DMA addressing), A.6 step 1"),
    va_as_iova: rule!("va-passed-as-iova", "A.1 (DMA addressing)"),
    bus_master_off: rule!("dma-with-bus-master-off", "A.6 step 1 (bus mastering)"),
    rx_taken_before_dd: rule!(
        "rx-buffer-taken-before-dd",
        "A.8 #2 (completion: DD, then read)"
    ),
    tx_freed_before_dd: rule!(
        "tx-buffer-freed-before-dd",
        "A.4.3 (write-back: DD on RS descriptors)"
    ),
    freed_before_disabled: rule!(
        "buffer-freed-before-queue-disabled",
        "A.7.3 (clear ENABLE, poll until it reads 0)"
    ),
    reused_while_owned: rule!(
        "buffer-reused-while-device-owned",
        "A.4.1/A.4.3 (a posted buffer is the device's until written back)"
    ),
    posted_after_free: rule!(
        "buffer-posted-after-free",
        "A.4.1/A.4.3 (a posted buffer is the device's until written back)"
    ),
    dma_into_freed: rule!("dma-into-freed-buffer", "A.7.3 (stop before freeing)"),
    dma_unowned: rule!("dma-into-unowned-buffer", "A.4.1/A.4.3"),
    unmap_while_owned: rule!(
        "unmap-while-device-owns",
        "A.7.3 (DMA stopped before memory goes)"
    ),
};

/// 82599 and X540 VFs: CC is required, a missing one is reported and the
/// frame still goes out (A.8 #3 names MDD for X550 and later only).
pub static SPEC_82599: AdvSpec = AdvSpec {
    rules: QUEUE_RULES,
    dma: DMA_RULES,
    tx_cc: Some(CC_RULES),
    tx_wb_relaxed_bit: DCA_TXCTRL_DESC_WRO_EN,
    lb_vlan_big_endian: false,
};

/// X550 and later: malicious-driver detection stops the queue (A.8 #3).
pub static SPEC_X550: AdvSpec = AdvSpec {
    rules: QUEUE_RULES,
    dma: DMA_RULES,
    tx_cc: Some(CcRules {
        mdd_stops: true,
        ..CC_RULES
    }),
    tx_wb_relaxed_bit: DCA_TXCTRL_DESC_WRO_EN,
    lb_vlan_big_endian: false,
};

static REQUEST_BEFORE_RESET: Rule = rule!(
    "mailbox-request-before-vf-reset",
    "A.5.4 (FAILURE until a VF_RESET exchange)"
);

static MAILBOX_RULES: MailboxRules = MailboxRules {
    access_without_vfu: rule!(
        "mailbox-access-without-vfu",
        "A.5.2 (take VFU before the buffer), A.8 #13"
    ),
    req_before_pfack: rule!(
        "mailbox-req-before-pfack",
        "A.8 #13 (one outstanding request at a time)"
    ),
    request_before_reset: REQUEST_BEFORE_RESET,
};

static PF_RULES: PfRules = PfRules {
    request_before_reset: REQUEST_BEFORE_RESET,
    message_length: rule!("mailbox-message-length", "A.5.3 (request words)"),
};

/// A queue enabled beyond the count the PF gave (GET_QUEUES).
pub const QUEUE_NOT_ASSIGNED: Rule = rule!(
    "queue-not-assigned",
    "A.5.4 (queues given to a VF), A.8 #10"
);
/// VF RSS registers used on an 82599/X540 VF, which has none.
pub const RSS_NOT_PRESENT: Rule = rule!(
    "vf-rss-registers-not-present",
    "A.2 (VFMRQC/VFRSSRK/VFRETA: X550 and later), A.8 #11"
);
/// An access outside BAR0, or not 32-bit aligned.
pub const REGISTER_ACCESS: Rule = rule!("register-access", "A.1 (BAR0), A.2");

// ---- the model ---------------------------------------------------------------

/// Which VF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// 82599 VF, 8086:10ed.
    X82599,
    /// X540 VF, 8086:1515.
    X540,
    /// X550 VF, 8086:1565.
    X550,
    /// X550EM_x VF, 8086:15a8.
    X550EmX,
}

impl Flavor {
    /// PCI device id (A.1).
    pub fn device_id(self) -> u16 {
        match self {
            Flavor::X82599 => 0x10ED,
            Flavor::X540 => 0x1515,
            Flavor::X550 => 0x1565,
            Flavor::X550EmX => 0x15A8,
        }
    }

    /// The MAC type the PF answers for.
    pub fn mac_type(self) -> MacType {
        match self {
            Flavor::X82599 => MacType::X82599,
            Flavor::X540 => MacType::X540,
            Flavor::X550 | Flavor::X550EmX => MacType::X550,
        }
    }

    /// The VF has its own RSS registers (A.8 #11).
    pub fn has_vf_rss(self) -> bool {
        self.mac_type() == MacType::X550
    }

    fn spec(self) -> &'static AdvSpec {
        match self.mac_type() {
            MacType::X550 => &SPEC_X550,
            _ => &SPEC_82599,
        }
    }
}

/// How to build an ixgbevf model.
#[derive(Clone, Debug)]
pub struct IxgbevfConfig {
    /// Which VF.
    pub flavor: Flavor,
    /// The PF side: admin MAC, trust, APIs, queue counts, MTU.
    pub pf: PfSetup,
    /// Queue delays and disable behaviour.
    pub delays: Delays,
    /// PF mailbox delays.
    pub pf_delays: PfDelays,
    /// How long RSTI stays up after VFCTRL.RST before RSTD (the facts give
    /// the driver's wait, A.6 steps 7-8, not the hardware's time).
    pub vf_reset_time: Duration,
    /// Frames an RX queue holds while it has no free descriptor.
    pub rx_fifo: usize,
}

impl IxgbevfConfig {
    /// A VF of `flavor` behind a Linux PF (APIs 1.0–1.4, 2 queues).
    pub fn new(flavor: Flavor, admin_mac: Option<MacAddr>) -> IxgbevfConfig {
        IxgbevfConfig {
            flavor,
            pf: PfSetup::linux(flavor.mac_type(), admin_mac),
            delays: Delays::default(),
            pf_delays: PfDelays::default(),
            vf_reset_time: Duration::ZERO,
            rx_fifo: 4096,
        }
    }
}

/// VTEITR interval field, bits 11:3 (A.3 EITR: ITR_INT_MASK 0xFF8, the
/// largest interval value).
pub const EITR_INTERVAL: u32 = 0x0FF8;
/// VTEITR.CNT_WDIS: the write leaves the running timer alone (A.3).
pub const EITR_CNT_WDIS: u32 = 0x8000_0000;
/// One count of the interval field (bits 11:3) at a 1G/10G link: 2.048 µs
/// (A.3 EITR, from DPDK's IXGBE_EITR_INTERVAL_UNIT_NS and Linux's
/// IXGBE_MAX_INT_RATE = 1 s / 2.048 µs). The 100 Mb/s unit does not
/// apply: the model's link is 10G.
const EITR_UNIT_NS: u64 = 2048;

/// The interrupt registers (A.2, A.3), and the MSI-X messages they caused.
///
/// Throttling (VTEITR): after a vector's message is sent, its next one is
/// held until the programmed interval has passed; a cause that arrives
/// meanwhile stays pending in VTEICR and its message goes out when the
/// hold ends ([`release`](Self::release), due at
/// [`next_due`](Self::next_due)), with auto-clear and auto-mask applied
/// then. An interval of 0 sends every message at once.
///
/// Times: `at` is the real time a message is sent at, from which the next
/// hold runs; `now` is the model's time (far ahead in a flush, so a flush
/// releases every hold, as it lets every delay pass).
#[derive(Clone, Debug, Default)]
pub struct Irq {
    /// VTEICR: pending causes, one bit per vector.
    pub eicr: u32,
    /// Enabled (unmasked) vectors: VTEIMS sets, VTEIMC clears.
    pub eims: u32,
    /// VTEIAC: causes cleared when their message is sent.
    pub eiac: u32,
    /// VTEIAM: vectors masked when their message is sent.
    pub eiam: u32,
    /// VTIVAR(0..3).
    pub ivar: [u32; QUEUES / 2],
    /// VTIVAR_MISC.
    pub ivar_misc: u32,
    /// VTEITR(0..2).
    pub eitr: [u32; 3],
    /// MSI-X messages sent, per vector.
    pub sent: [u64; 3],
    /// Messages that had to wait for their vector's interval, per vector.
    pub held_back: [u64; 3],
    /// Until when each vector's next message is held (`None`: not held).
    pub hold_until: [Option<Instant>; 3],
    /// Vectors with a cause that arrived during their hold: their message
    /// is owed when the hold ends.
    pub held: u32,
    /// Where a message goes besides the count (a guest's MSI-X eventfd
    /// when the model is served over vfio-user).
    pub sink: IrqSink,
}

impl Irq {
    /// Set causes `bits` and send what is unmasked and not held.
    pub fn raise(&mut self, bits: u32, at: Instant) {
        self.eicr |= bits & VECTORS;
        self.deliver(bits & VECTORS, at);
    }

    /// The minimum gap between two messages of vector `v`: the VTEITR
    /// interval field in 2.048 µs counts (A.3 EITR).
    pub fn interval(&self, v: usize) -> Duration {
        let counts = u64::from((self.eitr[v] & EITR_INTERVAL) >> 3);
        Duration::from_nanos(counts * EITR_UNIT_NS)
    }

    /// A VTEIMS write: unmask `bits`; a pending cause of a vector this
    /// unmasks sends its message (subject to the vector's hold).
    pub fn unmask(&mut self, bits: u32, at: Instant) {
        let fresh = bits & VECTORS & !self.eims;
        self.eims |= bits & VECTORS;
        self.deliver(fresh, at);
    }

    /// A VTEITR(v) write. Without CNT_WDIS it also clears the running
    /// timer, which ends the hold at once and sends what it held back
    /// **(inferred** from the Linux VF driver's note that CNT_WDIS is set
    /// "to not clear the timer bits and cause an immediate assertion of
    /// the interrupt", A.3**)**; with it the hold runs on, and the new
    /// interval applies from the next message.
    pub fn write_eitr(&mut self, v: usize, value: u32, at: Instant) {
        self.eitr[v] = value;
        if value & EITR_CNT_WDIS == 0 {
            self.hold_until[v] = None;
            let owed = self.held & (1 << v);
            self.held &= !owed;
            self.deliver(owed, at);
        }
    }

    /// Send a message for each cause in `fresh` that is pending and
    /// unmasked, then auto-clear (VTEIAC) and auto-mask (VTEIAM) it: the
    /// Linux driver relies on both (prototype REPORT.md: without them an
    /// interrupt storm). A vector still in its hold sends nothing yet: the
    /// message is owed for [`release`](Self::release).
    fn deliver(&mut self, fresh: u32, at: Instant) {
        for v in 0..3 {
            let b = 1 << v;
            if fresh & self.eicr & self.eims & b == 0 {
                continue;
            }
            if self.hold_until[v].is_some_and(|end| at < end) {
                if self.held & b == 0 {
                    self.held_back[v] += 1;
                }
                self.held |= b;
                continue;
            }
            self.send(v, at);
        }
    }

    /// Send vector `v`'s message at `at` and start its hold.
    fn send(&mut self, v: usize, at: Instant) {
        let b = 1 << v;
        self.sent[v] += 1;
        self.sink.signal(v as u16);
        self.eicr &= !(self.eiac & b);
        self.eims &= !(self.eiam & b);
        self.held &= !b;
        let gap = self.interval(v);
        self.hold_until[v] = (!gap.is_zero()).then(|| at + gap);
    }

    /// End the holds that are over at `now` and send what they held back
    /// (if its cause is still pending and the vector unmasked: a masked
    /// vector's cause stays in VTEICR and is sent when VTEIMS unmasks it);
    /// the next hold runs from `at`.
    pub fn release(&mut self, now: Instant, at: Instant) {
        for v in 0..3 {
            let b = 1 << v;
            if self.hold_until[v].is_some_and(|end| now >= end) {
                self.hold_until[v] = None;
                let owed = self.held & b;
                self.held &= !b;
                self.deliver(owed, at);
            }
        }
    }

    /// When the earliest held-back message is due (only for a vector whose
    /// cause is pending and unmasked: nothing else would be sent).
    pub fn next_due(&self) -> Option<Instant> {
        (0..3)
            .filter(|&v| self.held & self.eicr & self.eims & (1 << v) != 0)
            .filter_map(|v| self.hold_until[v])
            .min()
    }

    /// The vector bit an 8-bit IVAR entry routes to, if valid (A.3).
    fn entry(e: u32) -> u32 {
        if e & IVAR_ALLOC_VAL != 0 && (e & 0x7F) < 3 {
            1 << (e & 0x7F)
        } else {
            0
        }
    }

    /// The vector bit of RX (`tx` false) or TX queue `q` (A.3 VTIVAR:
    /// entry at bit 16·(q&1) + 8·dir).
    pub fn queue_vector(&self, q: usize, tx: bool) -> u32 {
        let shift = 16 * (q as u32 & 1) + 8 * tx as u32;
        Self::entry((self.ivar[q / 2] >> shift) & 0xFF)
    }

    /// The mailbox / other-cause vector bit (A.3 VTIVAR_MISC).
    pub fn misc_vector(&self) -> u32 {
        Self::entry(self.ivar_misc & 0xFF)
    }
}

/// Statistics registers: which and how wide (A.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stat {
    Gprc,
    Gorc,
    Mprc,
    Gptc,
    Gotc,
}

impl Stat {
    fn mask(self) -> u64 {
        match self {
            Stat::Gorc | Stat::Gotc => (1 << 36) - 1,
            _ => u32::MAX as u64,
        }
    }
}

/// Where RSS puts a frame ([`Ixgbevf::rss_queue`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RssPick {
    /// RX queue.
    pub queue: usize,
    /// The Toeplitz hash (0 without one).
    pub hash: u32,
    /// The write-back RSS type (A.4.2; 0 = none).
    pub rss_type: u16,
}

/// The ixgbevf device model.
#[derive(Debug)]
pub struct Ixgbevf {
    cfg: IxgbevfConfig,
    /// Link up (VFLINKS.UP).
    pub link_up: bool,
    /// The mailbox hardware.
    pub mbx: Mailbox,
    /// The PF driver.
    pub pf: IxgbePf,
    /// RX queues.
    pub rx: Vec<Queue>,
    /// TX queues.
    pub tx: Vec<Queue>,
    /// Interrupt registers.
    pub irq: Irq,
    tdwba: [[u32; 2]; QUEUES],
    rscctl: [u32; QUEUES],
    rscint: [u32; QUEUES],
    psrtype: u32,
    mrqc: u32,
    rssrk: [u32; 10],
    reta: [u32; 16],
    rxmemwrap: u32,
    stat_base: [u64; 5],
    mprc: u32,
    /// RSTD is due then (RSTI up meanwhile), after VFCTRL.RST.
    rst_due: Option<Instant>,
    /// A PF reset is under way (RSTI up until it ends).
    pub pf_in_reset: bool,
    /// Frames the VF transmitted, in order (alone; on a switch they are
    /// switched instead).
    pub wire: Vec<Vec<u8>>,
    /// The switch port, when the VF is one of a modelled PF's.
    veb: Option<VebPort>,
    /// RX frames dropped because the link was down.
    pub link_drops: u64,
}

/// An ixgbevf model running.
pub type IxgbevfSim = SimDevice<Ixgbevf>;
/// The ixgbevf model as its driver takes it (BAR and PCI function).
pub type IxgbevfBar = super::Vf<Ixgbevf>;

impl Ixgbevf {
    /// A VF after power-on: queues off, link up at 10G, the PF up and
    /// waiting for VF_RESET.
    pub fn new(cfg: IxgbevfConfig, dev: u32) -> Ixgbevf {
        Self::build(cfg, dev, None)
    }

    /// A VF after power-on attached to `veb` (the next free port). Its
    /// host must give the switch a way to wake its device thread
    /// (`veb.set_waker(model.veb_port().unwrap(), waker)`), or it sees
    /// switched frames only when it runs for another reason.
    pub fn new_on(veb: &Arc<Veb>, cfg: IxgbevfConfig, dev: u32) -> Result<Ixgbevf, VebError> {
        let port = veb.attach()?;
        Ok(Self::build(cfg, dev, Some(port)))
    }

    /// A VF after power-on on a switch port its host attached already
    /// (`veb.attach()`, which is what can fail): for a host that builds
    /// the model inside a device's start, where nothing may fail.
    pub fn with_port(cfg: IxgbevfConfig, dev: u32, port: VebPort) -> Ixgbevf {
        Self::build(cfg, dev, Some(port))
    }

    /// Start a model of `cfg` in `iommu`, attached to `veb` and woken by
    /// it.
    pub fn start_on(
        veb: &Arc<Veb>,
        cfg: IxgbevfConfig,
        iommu: &Arc<super::Iommu>,
    ) -> Result<IxgbevfSim, VebError> {
        let port = veb.attach()?;
        let n = port.port();
        let sim = SimDevice::start(iommu, |dev| Self::build(cfg, dev, Some(port)));
        veb.set_waker(n, sim.waker())?;
        Ok(sim)
    }

    /// The switch port, if attached.
    pub fn veb_port(&self) -> Option<usize> {
        self.veb.as_ref().map(VebPort::port)
    }

    fn build(cfg: IxgbevfConfig, dev: u32, veb: Option<VebPort>) -> Ixgbevf {
        let spec = cfg.flavor.spec();
        let queues = |tx: bool| -> Vec<Queue> {
            (0..QUEUES as u8)
                .map(|index| Queue::new(QueueTag { dev, tx, index }, spec, cfg.rx_fifo))
                .collect()
        };
        let mut tx = queues(true);
        for q in &mut tx {
            q.dca = DCA_TXCTRL_DEFAULT;
        }
        let mut m = Ixgbevf {
            link_up: true,
            mbx: Mailbox::new(&MAILBOX_RULES, cfg.pf_delays),
            pf: IxgbePf::new(cfg.pf.clone(), &PF_RULES),
            rx: queues(false),
            tx,
            irq: Irq::default(),
            tdwba: [[0; 2]; QUEUES],
            rscctl: [0; QUEUES],
            rscint: [0; QUEUES],
            psrtype: 0,
            mrqc: 0,
            rssrk: [0; 10],
            reta: [0; 16],
            rxmemwrap: 0,
            stat_base: [0; 5],
            mprc: 0,
            rst_due: None,
            pf_in_reset: false,
            wire: Vec::new(),
            veb,
            link_drops: 0,
            cfg,
        };
        m.sync_pf();
        if let Some(p) = &mut m.veb {
            // The switch knows the admin MAC before the first pass.
            p.publish(&m.pf);
        }
        m
    }

    /// Start a model of `cfg` in `iommu`.
    pub fn start(cfg: IxgbevfConfig, iommu: &std::sync::Arc<super::Iommu>) -> IxgbevfSim {
        SimDevice::start(iommu, |dev| Ixgbevf::new(cfg, dev))
    }

    /// The configuration.
    pub fn config(&self) -> &IxgbevfConfig {
        &self.cfg
    }

    /// The PF's TX/RX enables reach the queues.
    fn sync_pf(&mut self) {
        for q in &mut self.rx {
            q.pf_enabled = self.pf.rx_enabled && !self.pf_in_reset;
        }
        for q in &mut self.tx {
            q.pf_enabled = self.pf.tx_enabled && !self.pf_in_reset;
        }
    }

    fn stat_live(&self, s: Stat) -> u64 {
        let frames = |qs: &[Queue]| qs.iter().fold(0u64, |a, q| a + q.frames as u64);
        let octets = |qs: &[Queue]| qs.iter().fold(0u64, |a, q| a.wrapping_add(q.octets));
        match s {
            Stat::Gprc => frames(&self.rx),
            Stat::Gorc => octets(&self.rx),
            Stat::Mprc => self.mprc as u64,
            Stat::Gptc => frames(&self.tx),
            Stat::Gotc => octets(&self.tx),
        }
    }

    fn stat_value(&self, s: Stat) -> u64 {
        self.stat_base[s as usize].wrapping_add(self.stat_live(s)) & s.mask()
    }

    fn stat_of(reg: u32) -> Option<(Stat, bool)> {
        Some(match reg {
            VFGPRC => (Stat::Gprc, false),
            VFGORC_LSB => (Stat::Gorc, false),
            VFGORC_MSB => (Stat::Gorc, true),
            VFMPRC => (Stat::Mprc, false),
            VFGPTC => (Stat::Gptc, false),
            VFGOTC_LSB => (Stat::Gotc, false),
            VFGOTC_MSB => (Stat::Gotc, true),
            _ => return None,
        })
    }

    /// Read a statistics register as the VF does (A.2): 32-bit counters,
    /// or the low 32 / high 4 bits of a 36-bit one.
    pub fn stat(&self, reg: u32) -> u32 {
        match Self::stat_of(reg) {
            Some((s, false)) => self.stat_value(s) as u32,
            Some((s, true)) => (self.stat_value(s) >> 32) as u32,
            None => 0,
        }
    }

    /// Set the counter behind `reg` (an _LSB register sets all 36 bits) to
    /// `v`, to test wrapping.
    pub fn set_stat(&mut self, reg: u32, v: u64) {
        if let Some((s, _)) = Self::stat_of(reg) {
            let live = self.stat_live(s);
            self.stat_base[s as usize] = v.wrapping_sub(live);
        }
    }

    /// Where receive-side scaling puts `frame`: its RX queue, hash and RSS
    /// type (A.4.2), from the VF's own VFMRQC/VFRSSRK/VFRETA on X550 and
    /// the PF's RSS on 82599/X540 (A.8 #11). The one place the model
    /// chooses an RX queue for a frame from the wire or the switch.
    ///
    /// - X550: with VFMRQC.RSSEN, entry `hash mod 64` of the VF's RETA
    ///   (8-bit entries, four per register, the lowest entry in the lowest
    ///   byte **(inferred)**), its low 3 bits taken as the queue (the VF
    ///   has 8, A.5.4).
    /// - 82599/X540: entry `hash mod 128` of the PF's RETA, masked to the
    ///   queues the pool has by PSRTYPE.RQPL ([`ixgbevf_rss::pool_queues`],
    ///   inferred): with RQPL 0 every frame goes to queue 0, still with its
    ///   hash.
    ///
    /// A frame no enabled field covers goes to queue 0 with no hash.
    pub fn rss_queue(&self, frame: &[u8]) -> RssPick {
        let none = RssPick {
            queue: 0,
            hash: 0,
            rss_type: ixgbevf_rss::rss_type::NONE,
        };
        let (key, fields) = if self.cfg.flavor.has_vf_rss() {
            if self.mrqc & ixgbevf_rss::MRQC_RSSEN == 0 {
                return none;
            }
            let mut key = [0u8; ixgbevf_rss::KEY_BYTES];
            for (k, w) in key.chunks_exact_mut(4).zip(self.rssrk) {
                k.copy_from_slice(&w.to_le_bytes());
            }
            (key, self.mrqc)
        } else {
            (self.pf.setup.rss.key, self.pf.setup.rss.fields)
        };
        let Some((hash, rss_type)) = ixgbevf_rss::hash(frame, &key, fields) else {
            return none;
        };
        let queue = if self.cfg.flavor.has_vf_rss() {
            let i = hash as usize % ixgbevf_rss::VF_RETA_ENTRIES;
            ((self.reta[i / 4] >> (8 * (i % 4))) & 0x7) as usize
        } else {
            let i = hash as usize % ixgbevf_rss::PF_RETA_ENTRIES;
            let pool = ixgbevf_rss::pool_queues(self.psrtype);
            usize::from(self.pf.setup.rss.reta[i]) & (pool - 1)
        };
        RssPick {
            queue,
            hash,
            rss_type,
        }
    }

    /// A frame from the wire, to the RX queue [`rss_queue`](Self::rss_queue)
    /// picks, with the hash and RSS type in its write-back (A.4.2). False
    /// if dropped at once (see [`inject`](Self::inject)).
    pub fn receive(&mut self, data: Vec<u8>) -> bool {
        let pick = self.rss_queue(&data);
        self.inject(
            pick.queue,
            RxFrame {
                data,
                pkt_info: pick.rss_type,
                rss: pick.hash,
                ..RxFrame::default()
            },
        )
    }

    /// A frame from the wire to RX queue `q`. False if dropped at once
    /// (link down, queue off, the PF has the VF's receive off, FIFO full).
    pub fn inject(&mut self, q: usize, f: RxFrame) -> bool {
        if !self.link_up {
            self.link_drops += 1;
            return false;
        }
        let multicast = f.data.first().is_some_and(|b| b & 1 != 0);
        let ok = self.rx[q].inject(f);
        if ok && multicast {
            // Counted when the frame enters the queue (A.2 VFMPRC).
            self.mprc = self.mprc.wrapping_add(1);
        }
        ok
    }

    /// Apply a PF-wide event the switch posted.
    fn apply(&mut self, cx: &mut Cx<'_>, e: PfEvent) {
        match e {
            PfEvent::ResetBegin => self.pf_reset_begin(cx),
            PfEvent::ResetEnd => self.pf_reset_end(),
            PfEvent::Link(up) => self.set_link(up),
            PfEvent::AdminMac(mac) => self.admin_set_mac(mac),
        }
    }

    /// Take what the switch has for this VF: events first, then frames
    /// into their RX queue.
    fn take_switched(&mut self, cx: &mut Cx<'_>) {
        let Some(mut port) = self.veb.take() else {
            return;
        };
        let taken = port.take();
        for &e in taken.events {
            self.apply(cx, e);
        }
        while let Some(mut f) = taken.frames.pop_front() {
            let pick = self.rss_queue(&f.data);
            f.rss = pick.hash;
            f.pkt_info = pick.rss_type;
            self.inject(pick.queue, f);
        }
        self.veb = Some(port);
    }

    /// Block (or unblock) the wire: TX descriptors wait.
    pub fn set_tx_hold(&mut self, hold: bool) {
        for q in &mut self.tx {
            q.hold = hold;
        }
    }

    /// The PF's PF_CONTROL_MSG ping (A.5.4), with CTS if the VF keeps it.
    fn ping(&mut self) {
        let w = ixgbevf_pf::PF_CONTROL_MSG | if self.pf.cts { ixgbevf_pf::CTS } else { 0 };
        self.mbx.pf_write_now(&[w]);
        self.irq.raise(self.irq.misc_vector(), Instant::now());
    }

    /// Link down or up: VFLINKS.UP, and the PF pings the VF (A.5.4 "when
    /// the PF ... changes link, it pings each VF").
    pub fn set_link(&mut self, up: bool) {
        if self.link_up != up {
            self.link_up = up;
            self.ping();
        }
    }

    /// The PF resets (A.5.4, A.8 #14): CTS lost, a PF_CONTROL_MSG without
    /// CTS, link down, RSTI up, and the device reset: queues stopped, their
    /// registers, PSRTYPE and the VF RSS registers cleared **(inferred:
    /// the facts do not list what a PF reset clears)**, until [`pf_reset_end`](Self::pf_reset_end).
    pub fn pf_reset_begin(&mut self, cx: &mut Cx<'_>) {
        self.pf.cts = false;
        self.pf_in_reset = true;
        self.link_up = false;
        self.ping();
        for q in self.rx.iter_mut().chain(self.tx.iter_mut()) {
            let was_enabled = q.active();
            q.reset(cx.iommu, true);
            // Under the driver: it learns of the reset only from the
            // mailbox, and keeps writing tails meanwhile.
            q.stopped_under_driver = was_enabled;
        }
        for q in &mut self.tx {
            q.dca = DCA_TXCTRL_DEFAULT;
        }
        // The VF-wide receive registers go with the queue ones (the same
        // inference): PSRTYPE and, on X550, the VF's RSS.
        self.psrtype = 0;
        self.mrqc = 0;
        self.rssrk = [0; 10];
        self.reta = [0; 16];
        self.sync_pf();
        self.mbx.set_reset_indication(true);
    }

    /// The PF is back: RSTI → RSTD (A.5.1), link up. The VF must reset
    /// and send VF_RESET again (A.5.4).
    pub fn pf_reset_end(&mut self) {
        self.pf_in_reset = false;
        self.link_up = true;
        self.mbx.set_reset_indication(false);
        self.irq.raise(self.irq.misc_vector(), Instant::now());
        self.sync_pf();
    }

    /// The admin sets the VF's MAC (`ip link set ... vf N mac`): the PF
    /// takes it as the VF's MAC, the next VF_RESET reply carries it, and an
    /// untrusted VF can no longer set another (A.5.3). The facts do not say
    /// the PF tells the VF, so nothing is sent.
    pub fn admin_set_mac(&mut self, mac: MacAddr) {
        self.pf.setup.admin_mac = Some(mac);
        self.pf.vf_mac = Some(mac);
    }

    /// A VF reset (VFCTRL.RST) or FLR: queues stopped (ring registers kept
    /// unless `flr`; TDWBAL/H survive an FLR, A.8 #15), interrupts masked,
    /// the mailbox lock dropped, the PF's reset event (CTS lost), and RSTI
    /// until the reset completes, then RSTD (A.5.1, A.6 step 8).
    fn vf_reset(&mut self, cx: &mut Cx<'_>, flr: bool) {
        for q in self.rx.iter_mut().chain(self.tx.iter_mut()) {
            q.reset(cx.iommu, flr);
        }
        if flr {
            self.rscctl = [0; QUEUES];
            for q in &mut self.tx {
                q.dca = DCA_TXCTRL_DEFAULT;
            }
            self.psrtype = 0;
        }
        self.irq = Irq {
            sent: self.irq.sent,
            held_back: self.irq.held_back,
            sink: self.irq.sink.clone(),
            ..Irq::default()
        };
        self.mbx.vf_reset();
        self.pf.vf_reset_event();
        self.sync_pf();
        self.mbx.set_reset_indication(true);
        if self.cfg.vf_reset_time.is_zero() {
            self.mbx.set_reset_indication(false);
        } else {
            self.rst_due = Some(cx.after(self.cfg.vf_reset_time));
        }
    }

    /// Queue and register of a queue-block offset (statistics excluded).
    fn queue_reg(offset: u32) -> Option<(bool, usize, u32)> {
        let span = STRIDE * QUEUES as u32;
        let (tx, base) = match offset {
            o if (RX_BASE..RX_BASE + span).contains(&o) => (false, RX_BASE),
            o if (TX_BASE..TX_BASE + span).contains(&o) => (true, TX_BASE),
            _ => return None,
        };
        Some((
            tx,
            ((offset - base) / STRIDE) as usize,
            (offset - base) % STRIDE,
        ))
    }

    fn rss_slot(&mut self, cx: &mut Cx<'_>, offset: u32) -> Option<&mut u32> {
        let slot = match offset {
            VFMRQC => &mut self.mrqc,
            o if (VFRSSRK0..VFRSSRK0 + 40).contains(&o) => {
                &mut self.rssrk[((o - VFRSSRK0) / 4) as usize]
            }
            o if (VFRETA0..VFRETA0 + 64).contains(&o) => {
                &mut self.reta[((o - VFRETA0) / 4) as usize]
            }
            _ => return None,
        };
        if !self.cfg.flavor.has_vf_rss() {
            cx.iommu.violations().record(
                RSS_NOT_PRESENT,
                format!(
                    "register {offset:#06x} on an {:?} VF, which shares the PF's RSS",
                    self.cfg.flavor
                ),
            );
        }
        Some(slot)
    }

    /// The RSS key and RETA as the VF wrote them (X550).
    pub fn rss(&self) -> (u32, [u32; 10], [u32; 16]) {
        (self.mrqc, self.rssrk, self.reta)
    }

    /// VFPSRTYPE as written.
    pub fn psrtype(&self) -> u32 {
        self.psrtype
    }
}

impl DeviceModel for Ixgbevf {
    fn bar_len(&self) -> usize {
        BAR_LEN
    }

    fn delays(&self) -> &Delays {
        &self.cfg.delays
    }

    fn read32(&mut self, cx: &mut Cx<'_>, offset: u32) -> u32 {
        let v = cx.iommu.violations();
        match offset {
            VFCTRL => return 0, // RST self-clears
            VFSTATUS => return 0,
            VFLINKS => {
                return if self.link_up {
                    LINKS_UP | LINKS_SPEED_10G
                } else {
                    0
                }
            }
            VFFRTIMER => return 0,
            VFMAILBOX => return self.mbx.read_ctrl(),
            o if (VFMBMEM..VFMBMEM + 4 * mailbox::WORDS as u32).contains(&o) => {
                return self.mbx.read_mem(((o - VFMBMEM) / 4) as usize, v)
            }
            o if Self::stat_of(o).is_some() => return self.stat(o),
            VTEICR => return std::mem::take(&mut self.irq.eicr),
            VTEICS => return self.irq.eicr,
            VTEIMS | VTEIMC => return self.irq.eims,
            VTEIAC => return self.irq.eiac,
            VTEIAM => return self.irq.eiam,
            o if (VTIVAR0..VTIVAR0 + 16).contains(&o) => {
                return self.irq.ivar[((o - VTIVAR0) / 4) as usize]
            }
            VTIVAR_MISC => return self.irq.ivar_misc,
            o if (VTEITR0..VTEITR0 + 12).contains(&o) => {
                return self.irq.eitr[((o - VTEITR0) / 4) as usize]
            }
            o if (VTRSCINT0..VTRSCINT0 + 4 * QUEUES as u32).contains(&o) => {
                return self.rscint[((o - VTRSCINT0) / 4) as usize]
            }
            VFPSRTYPE => return self.psrtype,
            VFRXMEMWRAP => return self.rxmemwrap,
            _ => {}
        }
        if let Some(r) = self.rss_slot(cx, offset) {
            return *r;
        }
        let Some((tx, q, reg)) = Self::queue_reg(offset) else {
            return 0; // nothing there: reads 0
        };
        let delays = self.cfg.delays;
        let queue = if tx { &mut self.tx[q] } else { &mut self.rx[q] };
        match reg {
            Q_BAL => queue.bal,
            Q_BAH => queue.bah,
            Q_LEN => queue.len,
            Q_DCA => queue.dca,
            Q_HEAD => queue.read_head(),
            RX_SRRCTL if !tx => queue.srrctl,
            Q_TAIL => queue.read_tail(),
            Q_CTL => queue.read_ctl(cx, &delays),
            RX_RSCCTL if !tx => self.rscctl[q],
            TX_TDWBAL if tx => self.tdwba[q][0],
            TX_TDWBAH if tx => self.tdwba[q][1],
            _ => 0,
        }
    }

    fn write32(&mut self, cx: &mut Cx<'_>, offset: u32, value: u32) {
        match offset {
            VFCTRL => {
                if value & VFCTRL_RST != 0 {
                    self.vf_reset(cx, false);
                }
                return;
            }
            VFSTATUS | VFLINKS | VFFRTIMER => return, // read-only
            VFMAILBOX => {
                let v = cx.iommu.violations();
                self.mbx.write_ctrl(cx.real, value, v, &mut self.pf);
                return;
            }
            o if (VFMBMEM..VFMBMEM + 4 * mailbox::WORDS as u32).contains(&o) => {
                let v = cx.iommu.violations();
                self.mbx.write_mem(((o - VFMBMEM) / 4) as usize, value, v);
                return;
            }
            o if Self::stat_of(o).is_some() => return, // cannot be cleared (A.2)
            VTEICR => {
                self.irq.eicr &= !value;
                return;
            }
            VTEICS => {
                self.irq.raise(value, cx.real);
                return;
            }
            VTEIMS => {
                self.irq.unmask(value, cx.real);
                return;
            }
            VTEIMC => {
                self.irq.eims &= !value;
                return;
            }
            VTEIAC => {
                self.irq.eiac = value & VECTORS;
                return;
            }
            VTEIAM => {
                self.irq.eiam = value & VECTORS;
                return;
            }
            o if (VTIVAR0..VTIVAR0 + 16).contains(&o) => {
                self.irq.ivar[((o - VTIVAR0) / 4) as usize] = value;
                return;
            }
            VTIVAR_MISC => {
                self.irq.ivar_misc = value;
                return;
            }
            o if (VTEITR0..VTEITR0 + 12).contains(&o) => {
                self.irq
                    .write_eitr(((o - VTEITR0) / 4) as usize, value, cx.real);
                return;
            }
            o if (VTRSCINT0..VTRSCINT0 + 4 * QUEUES as u32).contains(&o) => {
                self.rscint[((o - VTRSCINT0) / 4) as usize] = value;
                return;
            }
            VFPSRTYPE => {
                self.psrtype = value;
                return;
            }
            VFRXMEMWRAP => {
                self.rxmemwrap = value;
                return;
            }
            _ => {}
        }
        if let Some(r) = self.rss_slot(cx, offset) {
            *r = value;
            return;
        }
        let Some((tx, q, reg)) = Self::queue_reg(offset) else {
            return; // nothing there: ignored
        };
        let delays = self.cfg.delays;
        let (txq, rxq, tcs, default_q) = self.pf.setup.queues;
        let assigned = if tx { txq } else { rxq } as usize;
        // With TCs the VF transmits on the default queue (A.6 step 12).
        let given = q < assigned || (tx && tcs > 1 && q == default_q as usize);
        let queue = if tx { &mut self.tx[q] } else { &mut self.rx[q] };
        match reg {
            Q_BAL => queue.write_setup(cx, Setup::Bal, value),
            Q_BAH => queue.write_setup(cx, Setup::Bah, value),
            Q_LEN => queue.write_setup(cx, Setup::Len, value),
            Q_DCA => queue.write_setup(cx, Setup::Dca, value),
            Q_HEAD => queue.write_setup(cx, Setup::Head, value),
            RX_SRRCTL if !tx => queue.write_setup(cx, Setup::Srrctl, value),
            Q_TAIL => queue.write_tail(cx, value),
            Q_CTL => {
                // All eight queues' registers are there (drivers clear
                // them all, A.3 defaults); enabling one the PF did not give
                // is the driver's error (A.5.4).
                if value & super::adv::QUEUE_ENABLE != 0 && !given && !queue.active() {
                    cx.iommu.violations().record(
                        QUEUE_NOT_ASSIGNED,
                        format!(
                            "{} queue {q} enabled; the PF gave {assigned}",
                            if tx { "TX" } else { "RX" }
                        ),
                    );
                    return;
                }
                queue.write_ctl(cx, value, &delays)
            }
            RX_RSCCTL if !tx => self.rscctl[q] = value,
            // Kept; head write-back itself is not modelled (A.8 #16).
            TX_TDWBAL if tx => self.tdwba[q][0] = value,
            TX_TDWBAH if tx => self.tdwba[q][1] = value,
            _ => {}
        }
    }

    fn run(&mut self, cx: &mut Cx<'_>) {
        // Messages whose VTEITR hold is over go first: a cause this pass
        // raises starts from the state they leave.
        self.irq.release(cx.now, cx.real);
        self.take_switched(cx);
        let v = cx.iommu.violations();
        let before = self.mbx.peek();
        let resets = self.pf.vf_resets;
        self.mbx.run(cx.now, cx.real, &mut self.pf, v);
        self.mbx.lockless_reads = self.pf.newer_protocol();
        if self.pf.vf_resets != resets {
            // The PF's VF_RESET handling clears TDWBAL/H, which an FLR
            // leaves (A.5.4, A.8 #15).
            self.tdwba = [[0; 2]; QUEUES];
        }
        if let Some(due) = self.rst_due {
            if cx.now >= due {
                self.rst_due = None;
                self.mbx.set_reset_indication(false);
            }
        }
        // New PFSTS / PFACK / RSTD: the mailbox cause, routed by
        // VTIVAR_MISC (A.3); which bits raise it is the model's choice.
        let fresh = self.mbx.peek() & !before & mailbox::R2C;
        if fresh != 0 {
            self.irq.raise(self.irq.misc_vector(), cx.real);
        }
        self.sync_pf();
        for q in 0..QUEUES {
            let (head, frames) = (self.rx[q].read_head(), self.tx[q].frames);
            self.rx[q].run(cx);
            self.tx[q].run(cx);
            // An RX write-back moves the head; a TX frame left: the
            // queue's cause (A.3 VTIVAR).
            if self.rx[q].read_head() != head {
                self.irq.raise(self.irq.queue_vector(q, false), cx.real);
            }
            if self.tx[q].frames != frames {
                self.irq.raise(self.irq.queue_vector(q, true), cx.real);
            }
        }
        match &mut self.veb {
            Some(port) => {
                // The PF's view first: a MAC set in this pass is the
                // source the anti-spoof check allows.
                port.publish(&self.pf);
                for q in &mut self.tx {
                    port.transmit(&mut q.sent);
                }
            }
            None => {
                for q in &mut self.tx {
                    self.wire.append(&mut q.sent);
                }
            }
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.rx
            .iter()
            .chain(self.tx.iter())
            .filter_map(Queue::next_due)
            .chain(self.mbx.next_due())
            .chain(self.rst_due)
            .chain(self.irq.next_due())
            .min()
    }

    fn function_reset(&mut self, cx: &mut Cx<'_>) {
        self.vf_reset(cx, true);
    }

    fn bad_access(&mut self, cx: &mut Cx<'_>, offset: u32, write: bool) {
        cx.iommu.violations().record(
            REGISTER_ACCESS,
            format!(
                "{} at {offset:#x}: outside the 16 KB BAR0 or not 4-byte aligned",
                if write { "write" } else { "read" }
            ),
        );
    }

    fn set_irq_sink(&mut self, sink: IrqSink) {
        self.irq.sink = sink;
    }
}

/// Test conveniences on a running ixgbevf model.
impl SimDevice<Ixgbevf> {
    /// A frame to RX queue `q`. False if dropped at once.
    pub fn inject(&self, q: usize, frame: &[u8]) -> bool {
        self.inject_frame(
            q,
            RxFrame {
                data: frame.to_vec(),
                ..RxFrame::default()
            },
        )
    }

    /// A frame from the wire, to the queue RSS picks (see
    /// [`Ixgbevf::receive`]). False if dropped at once.
    pub fn receive(&self, frame: &[u8]) -> bool {
        self.with(|m, _| m.receive(frame.to_vec()))
    }

    /// See [`Ixgbevf::rss_queue`].
    pub fn rss_queue(&self, frame: &[u8]) -> RssPick {
        self.with(|m, _| m.rss_queue(frame))
    }

    /// A frame with metadata to RX queue `q`.
    pub fn inject_frame(&self, q: usize, f: RxFrame) -> bool {
        self.with(|m, _| m.inject(q, f))
    }

    /// The switch port, if attached.
    pub fn veb_port(&self) -> Option<usize> {
        self.with(|m, _| m.veb_port())
    }

    /// Take the frames sent so far.
    pub fn take_wire(&self) -> Vec<Vec<u8>> {
        self.with(|m, _| std::mem::take(&mut m.wire))
    }

    /// See [`Ixgbevf::pf_reset_begin`].
    pub fn pf_reset_begin(&self) {
        self.with(|m, cx| m.pf_reset_begin(cx));
    }

    /// See [`Ixgbevf::pf_reset_end`].
    pub fn pf_reset_end(&self) {
        self.with(|m, _| m.pf_reset_end());
    }

    /// See [`Ixgbevf::set_link`].
    pub fn set_link(&self, up: bool) {
        self.with(|m, _| m.set_link(up));
    }

    /// See [`Ixgbevf::admin_set_mac`].
    pub fn admin_set_mac(&self, mac: MacAddr) {
        self.with(|m, _| m.admin_set_mac(mac));
    }

    /// The PF stops (true) or resumes answering the mailbox (A.8 #14).
    pub fn set_pf_silent(&self, silent: bool) {
        self.with(|m, _| m.pf.silent = silent);
    }

    /// Read the PF's view of the VF.
    pub fn pf<T>(&self, f: impl FnOnce(&IxgbePf) -> T) -> T {
        self.with(|m, _| f(&m.pf))
    }

    /// Message word 0 of every request the PF read, in order.
    pub fn requests(&self) -> Vec<u32> {
        self.with(|m, _| m.mbx.requests.clone())
    }

    /// Read a statistics register.
    pub fn stat(&self, reg: u32) -> u32 {
        self.with(|m, _| m.stat(reg))
    }

    /// Set a statistics counter.
    pub fn set_stat(&self, reg: u32, v: u64) {
        self.with(|m, _| m.set_stat(reg, v));
    }

    /// The interrupt registers and messages sent.
    pub fn irq(&self) -> Irq {
        self.with(|m, _| m.irq.clone())
    }

    /// Buffers RX queue `q` owns now.
    pub fn rx_owned(&self, q: usize) -> usize {
        self.with(|m, _| m.rx[q].owned())
    }

    /// RX frames queue `q` dropped: queue off, the PF's receive off, or
    /// its FIFO full while the driver posted no buffer (an overrun; the VF
    /// has no drop counter register in A.2, so only the model counts it).
    pub fn rx_dropped(&self, q: usize) -> u64 {
        self.with(|m, _| m.rx[q].dropped)
    }

    /// TX queue `q` was stopped by malicious-driver detection.
    pub fn tx_mdd_stopped(&self, q: usize) -> bool {
        self.with(|m, _| m.tx[q].mdd_stopped)
    }
}
