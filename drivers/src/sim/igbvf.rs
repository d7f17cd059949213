//! The igbvf model: an 82576 or I350 SR-IOV VF (8086:10ca, 8086:1520) with
//! the Linux igb PF behind its mailbox.
//!
//! Everything here is from nic-facts-igbvf.md (sections cited); where the
//! facts follow QEMU's igb model (C.10) and say what real hardware does
//! differently, the model keeps the hardware rule (C.10.2 last row).
//! Not modelled: interrupts (registers are kept, nothing fires), RSS (a VF
//! has none, C.8), TX offloads and context descriptors' contents, head
//! write-back (TDWBAL, unused by both reference drivers), the RX packet
//! buffer's real drop timing (frames wait in a FIFO of `rx_fifo` frames).

use super::adv::{AdvSpec, Delays, Queue, QueueRules, RxFrame, Setup};
use super::mailbox::{
    self, Mailbox, MailboxRules, PfAnswer, PfDelays, PfPolicy, MSG_ACK, MSG_CTS, MSG_ID, MSG_NACK,
};
use super::ownership::{DmaRules, QueueTag};
use super::violation::{Rule, Violations};
use super::{Cx, DeviceModel, SimDevice};
use crate::net::MacAddr;
use std::time::{Duration, Instant};

// ---- C.1 / C.2 register map (BAR0 offsets) -------------------------------

/// BAR0 size (C.1: QEMU BAR0 = 16 KiB; TDWBAH(1) = 0x393C needs 16 KB).
pub const BAR_LEN: usize = 0x4000;
/// CTRL (C.2).
pub const CTRL: u32 = 0x0000;
/// CTRL_DUP, QEMU's alias of CTRL (C.2).
pub const CTRL_DUP: u32 = 0x0004;
/// STATUS, read-only for the VF (C.2).
pub const STATUS: u32 = 0x0008;
/// VMBMEM(0): mailbox buffer, 16 dwords (C.2).
pub const VMBMEM: u32 = 0x0800;
/// V2PMAILBOX(0) (C.2, C.5.1).
pub const V2PMAILBOX: u32 = 0x0C40;
/// PBACL (C.2).
pub const PBACL: u32 = 0x0F04;
/// PSRTYPE (C.2).
pub const PSRTYPE: u32 = 0x0F0C;
/// FRTIMER, read-only (C.2).
pub const FRTIMER: u32 = 0x1048;
/// The nine statistics registers, 32-bit, never cleared (C.2):
/// VFGPRC, VFGPTC, VFGORC, VFGOTC, VFMPRC, VFGPRLBC, VFGPTLBC, VFGORLBC,
/// VFGOTLBC.
pub const STATS: [u32; 9] = [
    0xF10, 0xF14, 0xF18, 0xF34, 0xF3C, 0xF40, 0xF44, 0xF48, 0xF50,
];
/// VFGPRC (C.2).
pub const VFGPRC: u32 = 0x0F10;
/// VFGPTC (C.2).
pub const VFGPTC: u32 = 0x0F14;
/// VFGORC (C.2).
pub const VFGORC: u32 = 0x0F18;
/// VFGOTC (C.2).
pub const VFGOTC: u32 = 0x0F34;
/// EICS (C.2).
pub const EICS: u32 = 0x1520;
/// EIMS (C.2).
pub const EIMS: u32 = 0x1524;
/// EIMC (C.2).
pub const EIMC: u32 = 0x1528;
/// EIAC (C.2).
pub const EIAC: u32 = 0x152C;
/// EIAM (C.2).
pub const EIAM: u32 = 0x1530;
/// EICR, read to clear (C.2).
pub const EICR: u32 = 0x1580;
/// EITR(0..2) (C.2).
pub const EITR0: u32 = 0x1680;
/// IVAR0 (C.2).
pub const IVAR0: u32 = 0x1700;
/// IVAR_MISC (C.2).
pub const IVAR_MISC: u32 = 0x1740;
/// RX queue 0 block; queue n at + 0x100·n (C.2, C.9 #1).
pub const RX_BASE: u32 = 0x2800;
/// TX queue 0 block (C.2).
pub const TX_BASE: u32 = 0x3800;
/// Queue stride (C.2).
pub const STRIDE: u32 = 0x100;

// Offsets inside a queue block (C.2, C.11).
const Q_BAL: u32 = 0x00;
const Q_BAH: u32 = 0x04;
const Q_LEN: u32 = 0x08;
const RX_SRRCTL: u32 = 0x0C;
const Q_HEAD: u32 = 0x10;
const Q_DCA: u32 = 0x14;
const Q_TAIL: u32 = 0x18;
const Q_CTL: u32 = 0x28;
const RX_RQDPC: u32 = 0x30;
const TX_TDWBAL: u32 = 0x38;
const TX_TDWBAH: u32 = 0x3C;

// ---- C.3 bits ----------------------------------------------------------------

/// CTRL.RST: VF soft reset, self-clearing (C.3).
pub const CTRL_RST: u32 = 1 << 26;
/// STATUS.FD (C.3).
pub const STATUS_FD: u32 = 0x01;
/// STATUS.LU (C.3).
pub const STATUS_LU: u32 = 0x02;
/// STATUS.SPEED = 1000 Mb/s (C.3; QEMU always reports it, C.10.1).
pub const STATUS_SPEED_1000: u32 = 0x80;
/// DCA_TXCTRL.TX_WB_RO_EN: relaxed-ordered TX write-backs (C.3).
pub const DCA_TXCTRL_TX_WB_RO_EN: u32 = 1 << 11;
/// EICR/EIMS vector bits: three vectors (C.3).
const VECTORS: u32 = 0x7;

// ---- C.5 messages ----------------------------------------------------------

/// VF_RESET (C.5.3).
pub const MSG_VF_RESET: u32 = 0x01;
/// SET_MAC_ADDR (C.5.3); MSGINFO 1 = MAC_FILTER_CLR, 2 = MAC_FILTER_ADD.
pub const MSG_SET_MAC_ADDR: u32 = 0x02;
/// SET_MULTICAST (C.5.3).
pub const MSG_SET_MULTICAST: u32 = 0x03;
/// SET_VLAN (C.5.3).
pub const MSG_SET_VLAN: u32 = 0x04;
/// SET_LPE (C.5.3).
pub const MSG_SET_LPE: u32 = 0x05;
/// SET_PROMISC (C.5.3).
pub const MSG_SET_PROMISC: u32 = 0x06;
/// PF_CONTROL_MSG, PF → VF (C.5.3).
pub const MSG_PF_CONTROL: u32 = 0x0100;
/// MSGINFO, bits 23:16 (C.5.1).
const MSGINFO_MASK: u32 = 0x00FF_0000;
const MSGINFO_SHIFT: u32 = 16;
/// SET_PROMISC MULTICAST flag (C.5.3).
const PROMISC_MULTICAST: u32 = 0x0002_0000;
/// igbvf's extra unicast filter limit (C.5.3 MAC_FILTER_ADD).
const MAX_MAC_FILTERS: usize = 3;
/// The Linux PF's NACK rate limit for a VF without CTS (C.5.3: 2 s).
pub const NACK_INTERVAL: Duration = Duration::from_secs(2);

// ---- rules -------------------------------------------------------------------

macro_rules! rule {
    ($name:literal, $sec:literal) => {
        Rule::new($name, concat!("nic-facts-igbvf.md ", $sec))
    };
}

/// The igbvf ring, descriptor and DMA rules.
pub static SPEC_82576: AdvSpec = AdvSpec {
    rules: QUEUE_RULES,
    dma: DMA_RULES,
    tx_cc: None,
    tx_wb_relaxed_bit: DCA_TXCTRL_TX_WB_RO_EN,
    lb_vlan_big_endian: false,
};

/// The I350 VF: the same, plus big-endian VLANs on looped-back frames
/// (C.4.1, C.9 #14).
pub static SPEC_I350: AdvSpec = AdvSpec {
    rules: QUEUE_RULES,
    dma: DMA_RULES,
    tx_cc: None,
    tx_wb_relaxed_bit: DCA_TXCTRL_TX_WB_RO_EN,
    lb_vlan_big_endian: true,
};

const QUEUE_RULES: QueueRules = QueueRules {
    ring_alignment: rule!("ring-base-alignment", "C.8 (ring size), C.10.2"),
    ring_length: rule!("ring-length", "C.8 (ring size: multiple of 128 bytes)"),
    enable_before_tail: rule!("enable-before-tail", "C.7.2"),
    desc_after_tail: rule!("descriptor-written-after-tail", "C.9 #16"),
    tail_overrun: rule!("rdt-equals-rdh", "C.9 #16"),
    tail_range: rule!("tail-out-of-range", "C.2 (RDLEN/TDLEN = count x 16)"),
    bsizepkt: rule!("bsizepkt-units", "C.3 (SRRCTL.BSIZEPKT, 1 KB units)"),
    desctype: rule!("srrctl-desctype", "C.3, C.10.2 (advanced one-buffer)"),
    rx_post_dd: rule!(
        "rx-post-clears-dd",
        "C.4.1 (read format: hdr_addr = 0 clears DD)"
    ),
    tx_format: rule!("tx-descriptor-format", "C.4.2, C.9 #4"),
    tx_paylen: rule!("tx-paylen", "C.11 (PAYLEN), nic-facts.md A.4.3"),
    reprogram_enabled: rule!("ring-reprogrammed-while-enabled", "C.7.1/C.7.2 step 1"),
};

const DMA_RULES: DmaRules = DmaRules {
    outside_mapping: rule!(
        "dma-outside-mapping",
        "C.10.1 (DMA goes through the VF's IOMMU mapping)"
    ),
    va_as_iova: rule!(
        "va-passed-as-iova",
        "C.10.1 (DMA goes through the VF's IOMMU mapping)"
    ),
    bus_master_off: rule!("dma-with-bus-master-off", "C.6 step 1 (bus mastering)"),
    rx_taken_before_dd: rule!(
        "rx-buffer-taken-before-dd",
        "C.4.1 (completion signal: DD, then read)"
    ),
    tx_freed_before_dd: rule!(
        "tx-buffer-freed-before-dd",
        "C.4.2 (completion is DD on the RS descriptor)"
    ),
    freed_before_disabled: rule!(
        "buffer-freed-before-queue-disabled",
        "C.6 (stop: clear ENABLE, spin until it reads 0), nic-facts.md A.7.2/A.7.3"
    ),
    reused_while_owned: rule!(
        "buffer-reused-while-device-owned",
        "C.4.1/C.4.2 (a posted buffer is the device's until written back)"
    ),
    posted_after_free: rule!(
        "buffer-posted-after-free",
        "C.4.1/C.4.2 (a posted buffer is the device's until written back)"
    ),
    dma_into_freed: rule!(
        "dma-into-freed-buffer",
        "C.6 (stop: disable, wait for the queue, then free)"
    ),
    dma_unowned: rule!("dma-into-unowned-buffer", "C.4.1/C.4.2"),
    unmap_while_owned: rule!(
        "unmap-while-device-owns",
        "C.6 (stop and close: DMA stopped before memory goes)"
    ),
};

static MAILBOX_RULES: MailboxRules = MailboxRules {
    access_without_vfu: rule!(
        "mailbox-access-without-vfu",
        "C.5.2 step 1 (VFU before buffer access)"
    ),
    req_before_pfack: rule!("mailbox-req-before-pfack", "C.5.2 step 5"),
    request_before_reset: rule!("mailbox-request-before-vf-reset", "C.9 #6, C.5.3"),
};

/// An access to queue 1 of a one-queue VF.
pub const QUEUE_NOT_PRESENT: Rule = rule!("queue-not-present", "C.8 (I350 VF: 1 TX + 1 RX queue)");
/// An access outside BAR0, or not 32-bit aligned.
pub const REGISTER_ACCESS: Rule = rule!(
    "register-access",
    "C.1 (BAR0 16 KiB), C.10.1 (32-bit accesses only)"
);

// ---- the model ---------------------------------------------------------------

/// Which VF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// 82576 VF, 8086:10ca: 2 TX + 2 RX queues (C.8).
    I82576,
    /// I350 VF, 8086:1520: 1 + 1 (C.8).
    I350,
}

impl Flavor {
    /// PCI device id (C.1).
    pub fn device_id(self) -> u16 {
        match self {
            Flavor::I82576 => 0x10CA,
            Flavor::I350 => 0x1520,
        }
    }

    /// Queue pairs (C.8).
    pub fn queues(self) -> usize {
        match self {
            Flavor::I82576 => 2,
            Flavor::I350 => 1,
        }
    }

    fn spec(self) -> &'static AdvSpec {
        match self {
            Flavor::I82576 => &SPEC_82576,
            Flavor::I350 => &SPEC_I350,
        }
    }
}

/// How to build an igbvf model.
#[derive(Clone, Debug)]
pub struct IgbvfConfig {
    /// Which VF.
    pub flavor: Flavor,
    /// The MAC the PF admin assigned, if any (VF_RESET reply, C.5.3).
    pub admin_mac: Option<MacAddr>,
    /// The VF is trusted (`ip link set ... trust on`, C.5.3).
    pub trusted: bool,
    /// Queue delays and disable behaviour.
    pub delays: Delays,
    /// PF mailbox delays.
    pub pf: PfDelays,
    /// NACK rate limit for a VF without CTS (Linux: 2 s, C.5.3).
    pub nack_interval: Duration,
    /// Frames an RX queue holds while it has no free descriptor.
    pub rx_fifo: usize,
}

impl IgbvfConfig {
    /// An 82576 VF with an admin MAC (or none), default delays.
    pub fn new(flavor: Flavor, admin_mac: Option<MacAddr>) -> IgbvfConfig {
        IgbvfConfig {
            flavor,
            admin_mac,
            trusted: false,
            delays: Delays::default(),
            pf: PfDelays::default(),
            nack_interval: NACK_INTERVAL,
            rx_fifo: 4096,
        }
    }
}

/// The Linux igb PF's view of this VF (C.5.3).
#[derive(Debug)]
pub struct IgbPf {
    /// Clear to send: set by VF_RESET, cleared by a VF reset or PF reset.
    pub cts: bool,
    /// Admin MAC.
    pub admin_mac: Option<MacAddr>,
    /// Trusted VF.
    pub trusted: bool,
    /// The VF's MAC as the PF has it.
    pub vf_mac: Option<MacAddr>,
    /// Extra unicast filters.
    pub mac_filters: Vec<MacAddr>,
    /// Max frame from SET_LPE.
    pub lpe: Option<u32>,
    /// Multicast hashes registered: the count SET_MULTICAST gave.
    pub mc_count: u32,
    /// The hashes themselves (at most 30), written to the MTA for this
    /// pool (C.5.3).
    pub mc_hashes: Vec<u16>,
    /// Multicast frames the pool's filter refused: no MTA hash hit and
    /// no multicast promiscuous (C.10.1 pool selection).
    pub mc_filtered: u64,
    /// Multicast promiscuous on (VMOLR.MPME): asked, or more than 30
    /// hashes (C.5.3).
    pub allmulti: bool,
    /// SET_PROMISC MULTICAST in force (the PF's IGB_VF_FLAG_MULTI_PROMISC).
    multi_promisc: bool,
    /// VLANs added.
    pub vlans: Vec<u16>,
    /// VFRE / VFTE: the PF lets the VF receive / transmit.
    pub rx_tx_enabled: bool,
    /// The PF does not run: requests get no PFACK.
    pub silent: bool,
    /// CTS was taken away without a message to the VF (a test trigger):
    /// the VF cannot know until the PF NACKs it, so its requests meanwhile
    /// break no rule.
    pub cts_dropped_silently: bool,
    last_nack: Option<Instant>,
    nack_interval: Duration,
}

fn mac_of(w1: u32, w2: u32) -> MacAddr {
    let (a, b) = (w1.to_le_bytes(), w2.to_le_bytes());
    MacAddr([a[0], a[1], a[2], a[3], b[0], b[1]])
}

impl IgbPf {
    fn may_nack(&mut self, now: Instant) -> bool {
        let ok = self
            .last_nack
            .is_none_or(|t| now.duration_since(t) > self.nack_interval);
        if ok {
            self.last_nack = Some(now);
        }
        ok
    }

    /// A VF reset or FLR as the PF sees it (igb_vf_reset_event, C.5.3).
    fn vf_reset_event(&mut self) {
        self.cts = false;
        self.cts_dropped_silently = false;
        self.rx_tx_enabled = false;
        self.vf_mac = self.admin_mac;
        self.mac_filters.clear();
        self.mc_count = 0;
        self.mc_hashes.clear();
        self.multi_promisc = false;
        self.allmulti = false;
        self.vlans.clear();
    }

    /// Whether the VF's pool takes a frame by its destination: a
    /// multicast one (broadcast aside, which every pool with BAM takes)
    /// only on an MTA hash hit (the 12-bit hash of C.5.3, the PF sets
    /// ROMPE) or with multicast promiscuous (VMOLR.MPME: SET_PROMISC
    /// MULTICAST, or more than 30 hashes). QEMU ignores MPME (C.10.2);
    /// the model keeps the hardware rule, as the Linux PF programs it
    /// (C.5.3). Unicast is not filtered here (the frames a test injects
    /// are for the VF).
    pub fn takes(&self, frame: &[u8]) -> bool {
        let Some(dst) = frame.get(..6) else {
            return true;
        };
        if dst[0] & 1 == 0 || dst == [0xFF; 6] || self.allmulti {
            return true;
        }
        let hash = ((u16::from(dst[4]) >> 4) | (u16::from(dst[5]) << 4)) & 0xFFF;
        self.mc_hashes.contains(&hash)
    }

    fn handle(&mut self, msg: &[u32; mailbox::WORDS]) -> bool {
        let w0 = msg[0];
        let info = (w0 & MSGINFO_MASK) >> MSGINFO_SHIFT;
        let admin_locked = self.admin_mac.is_some() && !self.trusted;
        match w0 & MSG_ID {
            MSG_SET_MAC_ADDR => {
                let mac = mac_of(msg[1], msg[2]);
                match info {
                    0 => {
                        let ok = !admin_locked && mac.is_unicast();
                        if ok {
                            self.vf_mac = Some(mac);
                        }
                        ok
                    }
                    // MAC_FILTER_CLR: current kernels also want a valid
                    // address in the payload (C.5.3, C.9 #9).
                    1 => {
                        let ok = !admin_locked && mac.is_unicast();
                        if ok {
                            self.mac_filters.clear();
                        }
                        ok
                    }
                    2 => {
                        let ok = !admin_locked
                            && mac.is_unicast()
                            && self.mac_filters.len() < MAX_MAC_FILTERS;
                        if ok {
                            self.mac_filters.push(mac);
                        }
                        ok
                    }
                    _ => false,
                }
            }
            MSG_SET_MULTICAST => {
                // Up to 30 16-bit hashes from word 1, low half first; a
                // count > 30 turns multicast promiscuous on (C.5.3).
                self.mc_count = info;
                let n = (info as usize).min(30);
                self.mc_hashes = (0..n)
                    .map(|i| (msg[1 + i / 2] >> (16 * (i % 2))) as u16 & 0xFFF)
                    .collect();
                self.allmulti = self.multi_promisc || info > 30;
                true
            }
            MSG_SET_VLAN => {
                let id = (msg[1] & 0xFFF) as u16;
                if info & 1 != 0 {
                    if !self.vlans.contains(&id) {
                        self.vlans.push(id);
                    }
                } else {
                    self.vlans.retain(|v| *v != id);
                }
                true
            }
            MSG_SET_LPE => {
                self.lpe = Some(msg[1]);
                true
            }
            MSG_SET_PROMISC => {
                // MULTICAST is consumed; anything left, UNICAST included,
                // is NACKed (the multicast part still applies) (C.5.3).
                let flags = w0 & MSGINFO_MASK;
                self.multi_promisc = flags & PROMISC_MULTICAST != 0;
                self.allmulti = self.multi_promisc || self.mc_count > 30;
                flags & !PROMISC_MULTICAST == 0
            }
            _ => false,
        }
    }
}

impl PfPolicy for IgbPf {
    fn request(&mut self, now: Instant, msg: &[u32; mailbox::WORDS], v: &Violations) -> PfAnswer {
        let w0 = msg[0];
        if self.silent {
            return PfAnswer::Ignore;
        }
        if w0 & (MSG_ACK | MSG_NACK) != 0 {
            return PfAnswer::AckOnly;
        }
        if w0 & MSG_ID == MSG_VF_RESET {
            // igb_vf_reset_msg: CTS on, VFRE/VFTE on; the reply carries no
            // CTS, and NACK only means "no MAC" (C.5.3, C.9 #7).
            self.cts = true;
            self.cts_dropped_silently = false;
            self.rx_tx_enabled = true;
            return PfAnswer::Reply(match self.vf_mac.or(self.admin_mac) {
                Some(m) => {
                    let b = m.0;
                    vec![
                        MSG_VF_RESET | MSG_ACK,
                        u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                        u32::from_le_bytes([b[4], b[5], 0, 0]),
                    ]
                }
                None => vec![MSG_VF_RESET | MSG_NACK],
            });
        }
        if !self.cts {
            if !self.cts_dropped_silently {
                v.record(
                    MAILBOX_RULES.request_before_reset,
                    format!("message {w0:#010x} from a VF that is not clear to send (no VF_RESET since its reset)"),
                );
            }
            // NACK without CTS, at most once per interval; otherwise the
            // message is dropped unanswered (C.5.3).
            return if self.may_nack(now) {
                PfAnswer::Reply(vec![w0 | MSG_NACK])
            } else {
                PfAnswer::AckOnly
            };
        }
        let ok = self.handle(msg);
        PfAnswer::Reply(vec![w0 | MSG_CTS | if ok { MSG_ACK } else { MSG_NACK }])
    }

    fn vf_ack(&mut self, now: Instant) -> Option<Vec<u32>> {
        // A VF without CTS that ACKs a PF message gets a NACK (C.5.3).
        (!self.cts && !self.silent && self.may_nack(now)).then(|| vec![MSG_NACK])
    }
}

/// The igbvf device model.
#[derive(Debug)]
pub struct Igbvf {
    cfg: IgbvfConfig,
    status: u32,
    ctrl: u32,
    irq: [u32; 16],
    /// The mailbox hardware.
    pub mbx: Mailbox,
    /// The PF driver.
    pub pf: IgbPf,
    /// RX queues.
    pub rx: Vec<Queue>,
    /// TX queues.
    pub tx: Vec<Queue>,
    stat_base: [u32; 9],
    rqdpc_seen: [u64; 2],
    /// Frames the VF transmitted, in order.
    pub wire: Vec<Vec<u8>>,
}

/// An igbvf model running.
pub type IgbvfSim = SimDevice<Igbvf>;
/// The igbvf model as its driver takes it (BAR and PCI function).
pub type IgbvfBar = super::Vf<Igbvf>;

impl Igbvf {
    /// A VF after power-on: queues off, link up at 1000 Mb/s full duplex
    /// (C.10.1), the PF up and waiting for VF_RESET.
    pub fn new(cfg: IgbvfConfig, dev: u32) -> Igbvf {
        let spec = cfg.flavor.spec();
        let queues = |tx: bool| -> Vec<Queue> {
            (0..2u8)
                .map(|index| Queue::new(QueueTag { dev, tx, index }, spec, cfg.rx_fifo))
                .collect()
        };
        let mut tx = queues(true);
        for q in &mut tx {
            // Reset value of TX_WB_RO_EN is not in the facts; Linux clears
            // it because write-backs "MUST be delivered in order" (C.3), so
            // the model assumes it may be set **(inferred)**.
            q.dca = DCA_TXCTRL_TX_WB_RO_EN;
        }
        let mut m = Igbvf {
            status: STATUS_LU | STATUS_FD | STATUS_SPEED_1000,
            ctrl: 0,
            irq: [0; 16],
            mbx: Mailbox::new(&MAILBOX_RULES, cfg.pf),
            pf: IgbPf {
                cts: false,
                admin_mac: cfg.admin_mac,
                trusted: cfg.trusted,
                vf_mac: cfg.admin_mac,
                mac_filters: Vec::new(),
                lpe: None,
                mc_count: 0,
                mc_hashes: Vec::new(),
                mc_filtered: 0,
                allmulti: false,
                multi_promisc: false,
                vlans: Vec::new(),
                rx_tx_enabled: false,
                silent: false,
                cts_dropped_silently: false,
                last_nack: None,
                nack_interval: cfg.nack_interval,
            },
            rx: queues(false),
            tx,
            stat_base: [0; 9],
            rqdpc_seen: [0; 2],
            wire: Vec::new(),
            cfg,
        };
        m.sync_pf();
        m
    }

    /// Start a model of `cfg` in `iommu`.
    pub fn start(cfg: IgbvfConfig, iommu: &std::sync::Arc<super::Iommu>) -> IgbvfSim {
        SimDevice::start(iommu, |dev| Igbvf::new(cfg, dev))
    }

    /// The configuration.
    pub fn config(&self) -> &IgbvfConfig {
        &self.cfg
    }

    /// The PF's VFRE/VFTE reach the queues.
    fn sync_pf(&mut self) {
        let on = self.pf.rx_tx_enabled;
        for q in self.rx.iter_mut().chain(self.tx.iter_mut()) {
            q.pf_enabled = on;
        }
    }

    fn stat_now(&self, i: usize) -> u32 {
        let sum =
            |qs: &[Queue], f: fn(&Queue) -> u32| qs.iter().fold(0u32, |a, q| a.wrapping_add(f(q)));
        let live = match i {
            0 => sum(&self.rx, |q| q.frames),
            1 => sum(&self.tx, |q| q.frames),
            2 => sum(&self.rx, |q| q.octets as u32),
            3 => sum(&self.tx, |q| q.octets as u32),
            _ => 0,
        };
        self.stat_base[i].wrapping_add(live)
    }

    /// Set a statistics register to `v` (to test wrapping).
    pub fn set_stat(&mut self, reg: u32, v: u32) {
        if let Some(i) = STATS.iter().position(|r| *r == reg) {
            let now = self.stat_now(i);
            self.stat_base[i] = self.stat_base[i].wrapping_add(v.wrapping_sub(now));
        }
    }

    /// Read a statistics register.
    pub fn stat(&self, reg: u32) -> u32 {
        STATS
            .iter()
            .position(|r| *r == reg)
            .map_or(0, |i| self.stat_now(i))
    }

    /// Link up or down (STATUS.LU follows the PF's link, C.3, C.10.1).
    pub fn set_link(&mut self, up: bool) {
        if up {
            self.status |= STATUS_LU;
        } else {
            self.status &= !STATUS_LU;
        }
    }

    /// A frame from the wire to RX queue `q`. False if dropped at once:
    /// by the pool's multicast filter, or a full FIFO.
    pub fn inject(&mut self, q: usize, f: RxFrame) -> bool {
        if !self.pf.takes(&f.data) {
            self.pf.mc_filtered += 1;
            return false;
        }
        self.rx[q].inject(f)
    }

    /// Block (or unblock) the wire: TX descriptors wait.
    pub fn set_tx_hold(&mut self, hold: bool) {
        for q in &mut self.tx {
            q.hold = hold;
        }
    }

    /// The PF resets (igb_reset, C.5.3; RSTI, C.10.1): CTS lost, a
    /// PF_CONTROL_MSG without CTS, VFRE = VFTE = 0, then the device reset
    /// (queues stopped and their registers cleared, counters zeroed) with
    /// RSTI raised until [`pf_reset_end`](Self::pf_reset_end).
    pub fn pf_reset_begin(&mut self, cx: &mut Cx<'_>) {
        self.pf.cts = false;
        self.mbx.pf_write_now(&[MSG_PF_CONTROL]);
        self.pf.rx_tx_enabled = false;
        self.sync_pf();
        for q in self.rx.iter_mut().chain(self.tx.iter_mut()) {
            q.reset(cx.iommu, true);
        }
        for q in &mut self.tx {
            q.dca = DCA_TXCTRL_TX_WB_RO_EN;
        }
        for i in 0..STATS.len() {
            let now = self.stat_now(i);
            self.stat_base[i] = self.stat_base[i].wrapping_sub(now);
        }
        self.mbx.set_reset_indication(true);
    }

    /// The PF is back (CTRL_EXT.PFRSTD): RSTI → RSTD (C.10.1).
    pub fn pf_reset_end(&mut self) {
        self.mbx.set_reset_indication(false);
    }

    /// The PF pings the VF (igb_ping_all_vfs, C.5.3): PF_CONTROL_MSG, with
    /// CTS only if the VF keeps it. `lose_cts` takes CTS away first (as
    /// igb_reset does); the queues keep running.
    pub fn pf_ping(&mut self, lose_cts: bool, cx: &Cx<'_>) {
        if lose_cts {
            self.pf.cts = false;
        }
        let w = MSG_PF_CONTROL | if self.pf.cts { MSG_CTS } else { 0 };
        self.mbx.pf_send(cx.real, vec![w]);
    }

    /// A VF reset (CTRL.RST) or FLR (C.10.1): queue enables cleared (ring
    /// registers kept unless `flr`), VFRE/VFTE cleared, and the PF's reset
    /// event (CTS lost, C.5.3).
    fn vf_reset(&mut self, cx: &mut Cx<'_>, flr: bool) {
        for q in self.rx.iter_mut().chain(self.tx.iter_mut()) {
            q.reset(cx.iommu, flr);
        }
        if flr {
            self.irq = [0; 16];
            for q in &mut self.tx {
                q.dca = DCA_TXCTRL_TX_WB_RO_EN;
            }
        }
        self.mbx.vf_reset();
        self.pf.vf_reset_event();
        self.sync_pf();
    }

    /// Queue and register of a queue-block offset.
    fn queue_reg(&mut self, cx: &mut Cx<'_>, offset: u32) -> Option<(bool, usize, u32)> {
        let (tx, base) = match offset {
            o if (RX_BASE..RX_BASE + 2 * STRIDE).contains(&o) => (false, RX_BASE),
            o if (TX_BASE..TX_BASE + 2 * STRIDE).contains(&o) => (true, TX_BASE),
            _ => return None,
        };
        let q = ((offset - base) / STRIDE) as usize;
        let reg = (offset - base) % STRIDE;
        if q >= self.cfg.flavor.queues() {
            cx.iommu.violations().record(
                QUEUE_NOT_PRESENT,
                format!(
                    "{} queue {q} register {offset:#06x} on an {:?} VF, which has {} queue pair(s)",
                    if tx { "TX" } else { "RX" },
                    self.cfg.flavor,
                    self.cfg.flavor.queues()
                ),
            );
            return None;
        }
        Some((tx, q, reg))
    }

    fn irq_slot(offset: u32) -> Option<usize> {
        match offset {
            EICS => Some(0),
            EIMS => Some(1),
            EIAC => Some(2),
            EIAM => Some(3),
            EICR => Some(4),
            o if (EITR0..EITR0 + 12).contains(&o) => Some(5 + ((o - EITR0) / 4) as usize),
            IVAR0 => Some(8),
            IVAR_MISC => Some(9),
            PSRTYPE => Some(10),
            PBACL => Some(11),
            _ => None,
        }
    }
}

impl DeviceModel for Igbvf {
    fn bar_len(&self) -> usize {
        BAR_LEN
    }

    fn delays(&self) -> &Delays {
        &self.cfg.delays
    }

    fn read32(&mut self, cx: &mut Cx<'_>, offset: u32) -> u32 {
        let v = cx.iommu.violations();
        match offset {
            CTRL | CTRL_DUP => return self.ctrl & !CTRL_RST,
            STATUS => return self.status,
            V2PMAILBOX => return self.mbx.read_ctrl(),
            o if (VMBMEM..VMBMEM + 4 * mailbox::WORDS as u32).contains(&o) => {
                return self.mbx.read_mem(((o - VMBMEM) / 4) as usize, v)
            }
            o if STATS.contains(&o) => return self.stat(o),
            FRTIMER => return 0,
            EICR => {
                let r = self.irq[4];
                self.irq[4] = 0;
                return r;
            }
            o => {
                if let Some(i) = Self::irq_slot(o) {
                    return self.irq[i];
                }
            }
        }
        let Some((tx, q, reg)) = self.queue_reg(cx, offset) else {
            return 0; // unmapped: reads 0 (C.10.1)
        };
        let delays = self.cfg.delays;
        let queue = if tx { &mut self.tx[q] } else { &mut self.rx[q] };
        match reg {
            Q_BAL => queue.bal,
            Q_BAH => queue.bah,
            Q_LEN => queue.len,
            RX_SRRCTL if !tx => queue.srrctl,
            Q_HEAD => queue.read_head(),
            Q_DCA => queue.dca,
            Q_TAIL => queue.read_tail(),
            Q_CTL => queue.read_ctl(cx, &delays),
            RX_RQDPC if !tx => {
                // Read to clear (C.2).
                let d = queue.dropped;
                let r = (d - self.rqdpc_seen[q]) as u32;
                self.rqdpc_seen[q] = d;
                r
            }
            _ => 0,
        }
    }

    fn write32(&mut self, cx: &mut Cx<'_>, offset: u32, value: u32) {
        match offset {
            CTRL | CTRL_DUP => {
                if value & CTRL_RST != 0 {
                    self.vf_reset(cx, false);
                }
                self.ctrl = value & !CTRL_RST;
                return;
            }
            STATUS | FRTIMER => return, // read-only (C.2)
            V2PMAILBOX => {
                let v = cx.iommu.violations();
                self.mbx.write_ctrl(cx.real, value, v, &mut self.pf);
                return;
            }
            o if (VMBMEM..VMBMEM + 4 * mailbox::WORDS as u32).contains(&o) => {
                let v = cx.iommu.violations();
                self.mbx.write_mem(((o - VMBMEM) / 4) as usize, value, v);
                return;
            }
            o if STATS.contains(&o) => return, // read-only
            EIMS => {
                self.irq[1] |= value & VECTORS;
                return;
            }
            EIMC => {
                self.irq[1] &= !value;
                return;
            }
            EICR => {
                self.irq[4] &= !value;
                return;
            }
            o => {
                if let Some(i) = Self::irq_slot(o) {
                    self.irq[i] = value;
                    return;
                }
            }
        }
        let Some((tx, q, reg)) = self.queue_reg(cx, offset) else {
            return; // unmapped: writes ignored (C.10.1)
        };
        let delays = self.cfg.delays;
        let queue = if tx { &mut self.tx[q] } else { &mut self.rx[q] };
        match reg {
            Q_BAL => queue.write_setup(cx, Setup::Bal, value),
            Q_BAH => queue.write_setup(cx, Setup::Bah, value),
            Q_LEN => queue.write_setup(cx, Setup::Len, value),
            RX_SRRCTL if !tx => queue.write_setup(cx, Setup::Srrctl, value),
            Q_HEAD => queue.write_setup(cx, Setup::Head, value),
            Q_DCA => queue.write_setup(cx, Setup::Dca, value),
            Q_TAIL => queue.write_tail(cx, value),
            Q_CTL => queue.write_ctl(cx, value, &delays),
            TX_TDWBAL | TX_TDWBAH if tx => {} // head write-back: not modelled
            _ => {}
        }
    }

    fn run(&mut self, cx: &mut Cx<'_>) {
        let v = cx.iommu.violations();
        self.mbx.run(cx.now, cx.real, &mut self.pf, v);
        self.sync_pf();
        for q in self.tx.iter_mut().chain(self.rx.iter_mut()) {
            q.run(cx);
        }
        for q in &mut self.tx {
            self.wire.append(&mut q.sent);
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.rx
            .iter()
            .chain(self.tx.iter())
            .filter_map(Queue::next_due)
            .chain(self.mbx.next_due())
            .min()
    }

    fn function_reset(&mut self, cx: &mut Cx<'_>) {
        self.vf_reset(cx, true);
    }

    fn bad_access(&mut self, cx: &mut Cx<'_>, offset: u32, write: bool) {
        cx.iommu.violations().record(
            REGISTER_ACCESS,
            format!(
                "{} at {offset:#x}: outside the 16 KiB BAR0 or not 4-byte aligned",
                if write { "write" } else { "read" }
            ),
        );
    }
}

/// Test conveniences on a running igbvf model.
impl SimDevice<Igbvf> {
    /// A frame to RX queue 0. False if dropped at once.
    pub fn inject(&self, frame: &[u8]) -> bool {
        self.inject_frame(
            0,
            RxFrame {
                data: frame.to_vec(),
                ..RxFrame::default()
            },
        )
    }

    /// A frame with metadata to RX queue `q`.
    pub fn inject_frame(&self, q: usize, f: RxFrame) -> bool {
        self.with(|m, _| m.inject(q, f))
    }

    /// Take the frames sent so far.
    pub fn take_wire(&self) -> Vec<Vec<u8>> {
        self.with(|m, _| std::mem::take(&mut m.wire))
    }

    /// Frames sent so far (not taken).
    pub fn wire_len(&self) -> usize {
        self.with(|m, _| m.wire.len())
    }

    /// Block or unblock the wire.
    pub fn set_tx_hold(&self, hold: bool) {
        self.with(|m, _| m.set_tx_hold(hold));
    }

    /// See [`Igbvf::pf_reset_begin`].
    pub fn pf_reset_begin(&self) {
        self.with(|m, cx| m.pf_reset_begin(cx));
    }

    /// See [`Igbvf::pf_reset_end`].
    pub fn pf_reset_end(&self) {
        self.with(|m, _| m.pf_reset_end());
    }

    /// See [`Igbvf::pf_ping`].
    pub fn pf_ping(&self, lose_cts: bool) {
        self.with(|m, cx| m.pf_ping(lose_cts, cx));
    }

    /// See [`Igbvf::set_link`].
    pub fn set_link(&self, up: bool) {
        self.with(|m, _| m.set_link(up));
    }

    /// The PF stops (true) or resumes answering the mailbox.
    pub fn set_pf_silent(&self, silent: bool) {
        self.with(|m, _| m.pf.silent = silent);
    }

    /// The PF takes CTS away without telling the VF (no ping): the VF
    /// learns it only from the PF's NACK to its next ACK (C.5.3).
    pub fn drop_cts(&self) {
        self.with(|m, _| {
            m.pf.cts = false;
            m.pf.cts_dropped_silently = true;
        });
    }

    /// The PF holds (or lets go of) the mailbox buffer (PFU, C.5.1).
    pub fn pf_hold(&self, on: bool) {
        self.with(|m, _| m.mbx.pf_hold(on));
    }

    /// Read the PF's view of the VF.
    pub fn pf<T>(&self, f: impl FnOnce(&IgbPf) -> T) -> T {
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

    /// Set a statistics register.
    pub fn set_stat(&self, reg: u32, v: u32) {
        self.with(|m, _| m.set_stat(reg, v));
    }

    /// The ENABLE bit of RX queue `q` as the device has it now (without a
    /// driver read, so without completing a disable).
    pub fn rx_active(&self, q: usize) -> bool {
        self.with(|m, _| m.rx[q].active())
    }

    /// Buffers written into RX queue `q` while it was being disabled.
    pub fn rx_late_writes(&self, q: usize) -> u64 {
        self.with(|m, _| m.rx[q].late_writes)
    }

    /// Buffers RX queue `q` owns now.
    pub fn rx_owned(&self, q: usize) -> usize {
        self.with(|m, _| m.rx[q].owned())
    }
}
