//! The iavf model: an X710/XL710 VF (8086:154c, behind the Linux i40e PF)
//! or an adaptive VF (8086:1889, behind the Linux ice PF).
//!
//! Everything here is from nic-facts.md part B (sections cited) and from
//! what the real Linux iavf driver was seen to do against the vfio-user
//! prototype (vmlab/vfio-user/traces/iavf-sequence.md). Never from a
//! driver's code.
//!
//! Modelled: BAR0 (B.2) with the admin queue ([`super::iavf_aq`]), the PF's
//! virtchnl responder ([`super::iavf_pf`]), VFGEN_RSTAT and its reset
//! states (B.7), the queue tails and the data path on the device thread
//! ([`super::iavf_queue`]), the interrupt registers (vector 0: ICR0 /
//! ICR0_ENA / DYN_CTL01; vectors 1..: DYN_CTLN1, routed by CONFIG_IRQ_MAP),
//! the RSS registers (VFQF_HENA / HKEY / HLUT, shared with the virtchnl
//! RSS messages), and faults: PF reset (RESET_IMPENDING first), link flap
//! (LINK_CHANGE events), a PF that stops answering, PF policy towards an
//! untrusted VF. Frames the VF transmits go to [`Iavf::wire`]; frames
//! arrive by [`Iavf::inject`] (a queue) or [`Iavf::receive`] (RSS picks).
//!
//! Attached to a PF's switch ([`super::veb::Veb`], [`Iavf::start_on`],
//! [`Iavf::with_port`]), the VF's frames are switched instead (to another
//! VF of that PF or to the uplink), switched frames arrive through
//! [`Iavf::receive`], the PF's filter for the VF is published from
//! [`IavfPf`] after every pass, and PF-wide faults the switch posts (PF
//! reset, link, admin MAC) are applied on the device thread by the same
//! functions a test calls ([`Iavf::pf_reset_begin`], [`Iavf::set_link`]).
//!
//! Choices the facts do not settle (the lab may change them):
//! - a reset (RESET_VF, FLR, PF reset) zeroes the AQ registers, so
//!   ARQLEN.ENABLE reads 0 (how Linux detects a reset, B.3.2), and
//!   VFGEN_RSTAT reads VFR_INPROGRESS until [`IavfConfig::reset_time`] has
//!   passed (a PF reset: until [`Iavf::pf_reset_end`]), then
//!   VFR_COMPLETED, then VFR_VFACTIVE on the device thread's next pass
//!   (the PF finishing its side of the reset; "writes 2 once the VF is
//!   back", B.7, read first as "once the VF enables its ARQ", which Linux's
//!   iavf never does before it sees VFACTIVE: changed after the lab);
//!   power-on is VFR_VFACTIVE (the Linux VF read 2 first in the lab);
//! - the PF acts on RESET_VF [`IavfConfig::reset_vf_delay`] after the
//!   ATQ descriptor completed, so the VF sees its send complete;
//! - reads during a reset return 0xDEADBEEF (B.7) only with
//!   [`IavfConfig::deadbeef_in_reset`]: it would hide ARQLEN.ENABLE = 0;
//! - an MSI-X message clears its vector's INTENA (the Linux VF re-arms
//!   DYN_CTL01 after every admin-queue interrupt in the lab trace), and a
//!   cause arriving meanwhile waits for the next INTENA write; VFINT_ICR01
//!   is read-to-clear; ITR throttling is not modelled (write-backs are
//!   immediate, so B.8 #3's held write-backs are only a violation);
//! - the PF sends LINK_CHANGE after answering ENABLE_QUEUES (as the
//!   prototype PF did for the Linux VF);
//! - the RSS hash is the Toeplitz hash ([`super::toeplitz`]) over the IP
//!   addresses and TCP/UDP ports when HENA is non-zero; LUT entry
//!   `hash % 64` picks the queue; HENA bit meanings are not in the facts.

use super::adv::Delays;
use super::iavf_aq::{self as aq, AdminQueue, PfMsg};
use super::iavf_pf::{self as pf, Action, EthStats, IavfPf, PfKind, PfSetup};
use super::iavf_queue::{self as queue, IavfQueue, Ring, RxFrame};
use super::ownership::QueueTag;
use super::veb::{PfEvent, Veb, VebError, VebPort};
use super::violation::Rule;
use super::{toeplitz, Cx, DeviceModel, IrqSink, SimDevice};
use crate::net::MacAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

macro_rules! rule {
    ($name:literal, $sec:literal) => {
        Rule::new($name, concat!("nic-facts.md ", $sec))
    };
}

// ---- B.2 register map (BAR0 offsets) ------------------------------------------

/// BAR0 size: VFQF_HLUT(15) = 0xD03C is the highest register (B.1,
/// inferred there).
pub const BAR_LEN: usize = 0x1_0000;
/// QTX_TAIL1(q), + 4·q (B.2).
pub const QTX_TAIL: u32 = 0x0000;
/// QRX_TAIL1(q), + 4·q (B.2).
pub const QRX_TAIL: u32 = 0x2000;
/// VFINT_ITRN1(i, v) = + 64·i + 4·v (B.2).
pub const VFINT_ITRN: u32 = 0x2800;
/// VFINT_DYN_CTLN1(v), + 4·v: vector v + 1 (B.2).
pub const VFINT_DYN_CTLN: u32 = 0x3800;
/// VFINT_ICR01 (B.2).
pub const VFINT_ICR0: u32 = 0x4800;
/// VFINT_ITR01(i), + 4·i (B.2).
pub const VFINT_ITR0: u32 = 0x4C00;
/// VFINT_ICR0_ENA1 (B.2).
pub const VFINT_ICR0_ENA: u32 = 0x5000;
/// VFINT_STAT_CTL01 (B.2).
pub const VFINT_STAT_CTL0: u32 = 0x5400;
/// VFINT_DYN_CTL01 (B.2).
pub const VFINT_DYN_CTL0: u32 = 0x5C00;
/// VF_ARQBAH1 (B.2).
pub const VF_ARQBAH: u32 = 0x6000;
/// VF_ATQH1 (B.2).
pub const VF_ATQH: u32 = 0x6400;
/// VF_ATQLEN1 (B.2).
pub const VF_ATQLEN: u32 = 0x6800;
/// VF_ARQBAL1 (B.2).
pub const VF_ARQBAL: u32 = 0x6C00;
/// VF_ARQT1 (B.2).
pub const VF_ARQT: u32 = 0x7000;
/// VF_ARQH1 (B.2).
pub const VF_ARQH: u32 = 0x7400;
/// VF_ATQBAH1 (B.2).
pub const VF_ATQBAH: u32 = 0x7800;
/// VF_ATQBAL1 (B.2).
pub const VF_ATQBAL: u32 = 0x7C00;
/// VF_ARQLEN1 (B.2).
pub const VF_ARQLEN: u32 = 0x8000;
/// VF_ATQT1 (B.2).
pub const VF_ATQT: u32 = 0x8400;
/// VFGEN_RSTAT (B.2).
pub const VFGEN_RSTAT: u32 = 0x8800;
/// VFQF_HENA(0..1) (B.2).
pub const VFQF_HENA: u32 = 0xC400;
/// VFQF_HKEY(0..12) (B.2).
pub const VFQF_HKEY: u32 = 0xCC00;
/// VFQF_HLUT(0..15) (B.2).
pub const VFQF_HLUT: u32 = 0xD000;
/// Tail registers per direction (B.2: q = 0..15).
pub const QUEUES: usize = 16;
/// VFINT_ITRN1 registers per ITR index: 64 bytes apart (B.2).
pub const ITRN_STRIDE: usize = 16;

// ---- B.2.1 bits ---------------------------------------------------------------

/// VFR_INPROGRESS (B.2.1).
pub const VFR_INPROGRESS: u32 = 0;
/// VFR_COMPLETED.
pub const VFR_COMPLETED: u32 = 1;
/// VFR_VFACTIVE.
pub const VFR_VFACTIVE: u32 = 2;
/// What any read returns during a reset (B.2.1, B.7).
pub const DEADBEEF: u32 = 0xDEAD_BEEF;
/// Tail mask (B.2: 13 bits).
pub const TAIL_MASK: u32 = 0x1FFF;
/// ICR0 cause: QUEUE_0, bit 1 (B.2).
pub const ICR0_QUEUE_0: u32 = 1 << 1;
/// ICR0 cause: LINK_STAT_CHANGE, bit 25 (B.2).
pub const ICR0_LINK: u32 = 1 << 25;
/// ICR0 cause: ADMINQ, bit 30 (B.2).
pub const ICR0_ADMINQ: u32 = 1 << 30;
/// DYN_CTL INTENA, bit 0 (B.2.1).
pub const DYN_INTENA: u32 = 1 << 0;
/// DYN_CTL SWINT_TRIG, bit 2 (B.2.1).
pub const DYN_SWINT_TRIG: u32 = 1 << 2;

// ---- rules -------------------------------------------------------------------

/// An access outside BAR0, or not 32-bit aligned.
pub static REGISTER_ACCESS: Rule = rule!("register-access", "B.1 (BAR0), B.2");
/// A tail register of a queue beyond the VF's pairs.
pub static QUEUE_NOT_ASSIGNED: Rule = rule!(
    "queue-not-assigned",
    "B.8 #9 (use num_queue_pairs from the vsi_res)"
);

// ---- the model ---------------------------------------------------------------

/// Which VF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// X710/XL710 VF, 8086:154c, behind i40e.
    Xl710,
    /// Adaptive VF, 8086:1889, behind ice.
    Adaptive,
}

impl Flavor {
    /// PCI device id (B.1).
    pub fn device_id(self) -> u16 {
        match self {
            Flavor::Xl710 => 0x154C,
            Flavor::Adaptive => 0x1889,
        }
    }

    /// The PF behind it.
    pub fn pf_kind(self) -> PfKind {
        match self {
            Flavor::Xl710 => PfKind::I40e,
            Flavor::Adaptive => PfKind::Ice,
        }
    }
}

/// How to build an iavf model.
#[derive(Clone, Debug)]
pub struct IavfConfig {
    /// Which VF.
    pub flavor: Flavor,
    /// The PF's side.
    pub pf: PfSetup,
    /// VFR_INPROGRESS lasts this long after a VF reset (0: until the next
    /// device pass).
    pub reset_time: Duration,
    /// The PF acts on RESET_VF this long after the ATQ descriptor
    /// completed (the model's choice, 1 ms: a PF handles virtchnl in its
    /// service task, so a VF polling ATQH == next_to_use, B.3.2, sees its
    /// send complete before the AQ goes).
    pub reset_vf_delay: Duration,
    /// Reads return 0xDEADBEEF while the reset is in progress (B.7).
    pub deadbeef_in_reset: bool,
    /// Frames an RX queue holds while it has no descriptor.
    pub rx_fifo: usize,
    /// Queue delays (only the framework's defaults are used).
    pub delays: Delays,
}

impl IavfConfig {
    /// A VF of `flavor` behind its Linux PF: 4 queue pairs, untrusted.
    pub fn new(flavor: Flavor, admin_mac: Option<MacAddr>) -> IavfConfig {
        IavfConfig {
            flavor,
            pf: PfSetup::linux(flavor.pf_kind(), admin_mac),
            reset_time: Duration::ZERO,
            reset_vf_delay: Duration::from_millis(1),
            deadbeef_in_reset: false,
            rx_fifo: 4096,
            delays: Delays::default(),
        }
    }
}

/// The reset state (B.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetState {
    /// VFR_INPROGRESS until then (`None`: until the PF is back).
    InProgress(Option<Instant>),
    /// VFR_COMPLETED.
    Completed,
    /// VFR_VFACTIVE.
    Active,
}

/// The interrupt registers and the messages they sent.
#[derive(Clone, Debug)]
pub struct Irq {
    /// VFINT_ICR01 causes pending.
    pub icr0: u32,
    /// VFINT_ICR0_ENA1.
    pub icr0_ena: u32,
    /// DYN_CTL01 (index 0) and DYN_CTLN1(v − 1) (index v), as written,
    /// INTENA cleared when a message is sent.
    pub dyn_ctl: Vec<u32>,
    /// Vectors with a cause waiting for INTENA.
    pub pending: u64,
    /// Messages sent per vector.
    pub sent: Vec<u64>,
    /// VFINT_ITRN1(i, v) as written, at 16·i + v (not acted on).
    pub itr: Vec<u32>,
    /// Where messages go besides the count.
    pub sink: IrqSink,
}

impl Irq {
    fn new(vectors: usize) -> Irq {
        Irq {
            icr0: 0,
            icr0_ena: 0,
            dyn_ctl: vec![0; vectors],
            pending: 0,
            sent: vec![0; vectors],
            itr: vec![0; 3 * ITRN_STRIDE],
            sink: IrqSink::default(),
        }
    }

    /// A cause for vector `v` (vector 0 takes ICR0 `cause` bits).
    pub fn raise(&mut self, v: usize, cause: u32) {
        if v >= self.dyn_ctl.len() {
            return;
        }
        if v == 0 {
            self.icr0 |= cause;
            if self.icr0_ena & cause == 0 {
                return;
            }
        }
        self.pending |= 1 << v;
        self.deliver(v);
    }

    fn deliver(&mut self, v: usize) {
        if self.pending & (1 << v) != 0 && self.dyn_ctl[v] & DYN_INTENA != 0 {
            self.pending &= !(1 << v);
            self.dyn_ctl[v] &= !DYN_INTENA;
            self.sent[v] += 1;
            self.sink.signal(v as u16);
        }
    }

    /// A DYN_CTL write for vector `v`.
    pub fn write_dyn(&mut self, v: usize, value: u32) {
        if v >= self.dyn_ctl.len() {
            return;
        }
        self.dyn_ctl[v] = value & !DYN_SWINT_TRIG;
        if value & DYN_SWINT_TRIG != 0 {
            self.pending |= 1 << v;
        }
        self.deliver(v);
    }
}

/// The iavf device model.
#[derive(Debug)]
pub struct Iavf {
    cfg: IavfConfig,
    /// The admin queue.
    pub aq: AdminQueue,
    /// The PF.
    pub pf: IavfPf,
    /// RX queues.
    pub rx: Vec<IavfQueue>,
    /// TX queues.
    pub tx: Vec<IavfQueue>,
    /// Interrupts.
    pub irq: Irq,
    /// Reset state.
    pub reset: ResetState,
    /// Link up.
    pub link_up: bool,
    /// A PF reset is under way.
    pub pf_in_reset: bool,
    /// A PF reset was asked: RESET_IMPENDING goes out on the next pass,
    /// then the reset.
    pf_reset_asked: bool,
    /// RESET_VF was received; the PF resets the VF then.
    reset_vf_due: Option<Instant>,
    /// Frames the VF transmitted, in order (alone; on a switch they are
    /// switched instead).
    pub wire: Vec<Vec<u8>>,
    /// The switch port, when the VF is one of a modelled PF's.
    veb: Option<VebPort>,
    /// RX frames dropped because the link was down.
    pub link_drops: u64,
    /// A PF reset is to begin when the VF's next message with this
    /// opcode arrives, in place of its answer ([`Iavf::pf_reset_on`]).
    reset_on_op: Option<u32>,
}

/// An iavf model running.
pub type IavfSim = SimDevice<Iavf>;
/// The iavf model as its driver takes it.
pub type IavfBar = super::Vf<Iavf>;

impl Iavf {
    /// A VF after power-on (VFR_VFACTIVE, AQ off, queues off, link up).
    pub fn new(cfg: IavfConfig, dev: u32) -> Iavf {
        Self::build(cfg, dev, None)
    }

    /// A VF after power-on attached to `veb` (the next free port). Its
    /// host must give the switch a way to wake its device thread
    /// (`veb.set_waker(model.veb_port().unwrap(), waker)`), or it sees
    /// switched frames only when it runs for another reason.
    pub fn new_on(veb: &Arc<Veb>, cfg: IavfConfig, dev: u32) -> Result<Iavf, VebError> {
        let port = veb.attach()?;
        Ok(Self::build(cfg, dev, Some(port)))
    }

    /// A VF after power-on on a switch port its host attached already
    /// (`veb.attach()`, which is what can fail): for a host that builds
    /// the model inside a device's start, where nothing may fail.
    pub fn with_port(cfg: IavfConfig, dev: u32, port: VebPort) -> Iavf {
        Self::build(cfg, dev, Some(port))
    }

    /// Start a model of `cfg` in `iommu`, attached to `veb` and woken by
    /// it.
    pub fn start_on(
        veb: &Arc<Veb>,
        cfg: IavfConfig,
        iommu: &Arc<super::Iommu>,
    ) -> Result<IavfSim, VebError> {
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

    fn build(cfg: IavfConfig, dev: u32, veb: Option<VebPort>) -> Iavf {
        let queues = |tx: bool| -> Vec<IavfQueue> {
            (0..QUEUES as u8)
                .map(|index| IavfQueue::new(QueueTag { dev, tx, index }, cfg.rx_fifo))
                .collect()
        };
        let mut m = Iavf {
            aq: AdminQueue::default(),
            pf: IavfPf::new(cfg.pf.clone()),
            rx: queues(false),
            tx: queues(true),
            irq: Irq::new(usize::from(cfg.pf.vectors.max(1))),
            reset: ResetState::Active,
            link_up: true,
            pf_in_reset: false,
            pf_reset_asked: false,
            reset_vf_due: None,
            wire: Vec::new(),
            veb,
            link_drops: 0,
            reset_on_op: None,
            cfg,
        };
        if let Some(p) = &mut m.veb {
            // The switch knows the VF's MAC before the first pass.
            p.publish(&m.pf);
        }
        m
    }

    /// Start a model of `cfg` in `iommu`.
    pub fn start(cfg: IavfConfig, iommu: &std::sync::Arc<super::Iommu>) -> IavfSim {
        SimDevice::start(iommu, |dev| Iavf::new(cfg, dev))
    }

    /// The configuration.
    pub fn config(&self) -> &IavfConfig {
        &self.cfg
    }

    /// VFGEN_RSTAT as read.
    pub fn rstat(&self) -> u32 {
        match self.reset {
            ResetState::InProgress(_) => VFR_INPROGRESS,
            ResetState::Completed => VFR_COMPLETED,
            ResetState::Active => VFR_VFACTIVE,
        }
    }

    fn in_reset(&self) -> bool {
        matches!(self.reset, ResetState::InProgress(_))
    }

    /// The VSI counters (B.4.3 virtchnl_eth_stats).
    pub fn eth_stats(&self) -> EthStats {
        let sum = |qs: &[IavfQueue]| {
            qs.iter().fold(queue::Counts::default(), |mut a, q| {
                a.bytes += q.counts.bytes;
                a.unicast += q.counts.unicast;
                a.multicast += q.counts.multicast;
                a.broadcast += q.counts.broadcast;
                a.discards += q.counts.discards;
                a
            })
        };
        let (r, t) = (sum(&self.rx), sum(&self.tx));
        EthStats {
            words: [
                r.bytes,
                r.unicast,
                r.multicast,
                r.broadcast,
                r.discards + self.link_drops,
                0,
                t.bytes,
                t.unicast,
                t.multicast,
                t.broadcast,
                t.discards,
                0,
            ],
        }
    }

    /// Where RSS puts `frame`: its queue and hash (`None` without RSS:
    /// HENA 0, or not IP).
    pub fn rss_pick(&self, frame: &[u8]) -> (usize, Option<u32>) {
        if self.pf.hena == 0 {
            return (0, None);
        }
        let Some(flow) = toeplitz::parse(frame) else {
            return (0, None);
        };
        let (input, n) = toeplitz::input(&flow, true);
        let hash = toeplitz::toeplitz(&self.pf.rss_key, &input[..n]);
        let entry = self.pf.rss_lut[hash as usize % pf::RSS_LUT_LEN] as usize;
        (entry % self.pf.queue_pairs().max(1), Some(hash))
    }

    /// The ptype of `frame` (B.5.1 common ptypes).
    pub fn ptype(frame: &[u8]) -> u8 {
        match toeplitz::parse(frame) {
            Some(toeplitz::Flow::V4(_, _, l4)) => match l4 {
                toeplitz::L4::Tcp(..) => 26,
                toeplitz::L4::Udp(..) => 24,
                toeplitz::L4::Other => 23,
            },
            Some(toeplitz::Flow::V6(_, _, l4)) => match l4 {
                toeplitz::L4::Tcp(..) => 92,
                toeplitz::L4::Udp(..) => 90,
                toeplitz::L4::Other => 89,
            },
            None => 1,
        }
    }

    /// A frame from the wire to RX queue `q`, with its ptype and (with RSS
    /// on) its hash. False if dropped at once (link down, queue off, FIFO
    /// full, no such queue).
    pub fn inject(&mut self, q: usize, data: Vec<u8>) -> bool {
        if !self.link_up {
            self.link_drops += 1;
            return false;
        }
        let rss = self.rss_pick(&data).1;
        let ptype = Self::ptype(&data);
        match self.rx.get_mut(q) {
            Some(queue) => queue.inject(RxFrame { data, rss, ptype }),
            None => false,
        }
    }

    /// A frame from the wire to the queue RSS picks.
    pub fn receive(&mut self, data: Vec<u8>) -> bool {
        let q = self.rss_pick(&data).0;
        self.inject(q, data)
    }

    /// Post a message for the VF (delivered by the device thread).
    fn post(&mut self, op: u32, status: i32, data: Vec<u8>) {
        self.aq.outbox.push_back(PfMsg { op, status, data });
    }

    /// Link change: the PF sends LINK_CHANGE (B.4.3, B.6 step 15) once the
    /// VF is active.
    pub fn set_link(&mut self, up: bool) {
        if self.link_up == up {
            return;
        }
        self.link_up = up;
        if self.pf.active {
            let e = self.pf.link_event(up);
            self.post(pf::op::EVENT, 0, e);
        }
    }

    /// A PF reset begins (B.7): RESET_IMPENDING on the ARQ, then (on the
    /// device thread, after it is delivered) the AQ disabled, RSTAT
    /// INPROGRESS, queues stopped; until [`pf_reset_end`](Self::pf_reset_end).
    pub fn pf_reset_begin(&mut self) {
        self.post(pf::op::EVENT, 0, IavfPf::reset_event());
        self.pf_reset_asked = true;
        self.pf_in_reset = true;
    }

    /// A PF reset at a chosen point of the VF's exchange: when the VF's
    /// next message with opcode `op` arrives, the PF resets instead of
    /// answering it (one shot), as [`pf_reset_begin`](Self::pf_reset_begin)
    /// does; [`pf_reset_end`](Self::pf_reset_end) ends it.
    pub fn pf_reset_on(&mut self, op: u32) {
        self.reset_on_op = Some(op);
    }

    /// The PF is back: RSTAT → VFR_COMPLETED.
    pub fn pf_reset_end(&mut self) {
        self.pf_in_reset = false;
        if self.in_reset() {
            self.reset = ResetState::Completed;
        }
    }

    /// The admin sets the VF's MAC (`ip link set … vf N mac`): the PF
    /// holds it as the VF's MAC in place of the old one (its filter, so
    /// the switch, follows at once), the next GET_VF_RESOURCES gives it, a
    /// VF reset keeps it, and an untrusted VF may add no other unicast
    /// MAC. The facts do not say whether the PF tells or resets the VF;
    /// the model does neither.
    pub fn admin_set_mac(&mut self, mac: MacAddr) {
        let old = self.pf.setup.mac();
        self.pf.setup.admin_mac = Some(mac);
        self.pf.macs.retain(|m| *m != old && *m != mac);
        self.pf.macs.insert(0, mac);
    }

    /// Apply a PF-wide event the switch posted (on the device thread).
    fn apply(&mut self, e: PfEvent) {
        match e {
            PfEvent::ResetBegin => self.pf_reset_begin(),
            PfEvent::ResetEnd => self.pf_reset_end(),
            PfEvent::Link(up) => self.set_link(up),
            PfEvent::AdminMac(mac) => self.admin_set_mac(mac),
        }
    }

    /// Take what the switch has for this VF: events first, then frames
    /// into the queue RSS picks.
    fn take_switched(&mut self) {
        let Some(mut port) = self.veb.take() else {
            return;
        };
        let taken = port.take();
        for &e in taken.events {
            self.apply(e);
        }
        while let Some(f) = taken.frames.pop_front() {
            // Dropped frames are counted where they drop (link, queue).
            self.receive(f.data);
        }
        self.veb = Some(port);
    }

    /// A VF reset (RESET_VF, FLR, PF reset): queues stopped under the
    /// driver, the PF's state back to a fresh VF, the AQ off, RSTAT
    /// INPROGRESS (B.7).
    fn vf_reset(&mut self, cx: &mut Cx<'_>, until: Option<Instant>) {
        for q in self.rx.iter_mut().chain(self.tx.iter_mut()) {
            let was = q.enabled();
            q.disable(cx);
            q.configure(None);
            q.stopped_under_driver = was;
        }
        self.pf.reset();
        self.aq.reset();
        let sink = self.irq.sink.clone();
        let sent = std::mem::take(&mut self.irq.sent);
        self.irq = Irq::new(self.irq.dyn_ctl.len());
        self.irq.sink = sink;
        self.irq.sent = sent;
        self.reset = ResetState::InProgress(until);
        self.reset_vf_due = None;
    }

    /// Apply what the PF decided.
    fn act(&mut self, cx: &mut Cx<'_>, a: Action) {
        match a {
            Action::None | Action::Rss => {}
            Action::ResetVf => {
                self.reset_vf_due = Some(cx.after(self.cfg.reset_vf_delay));
            }
            Action::Enable { rx, tx } => {
                for q in 0..self.pf.queue_pairs() {
                    if rx & (1 << q) != 0 {
                        let r = self.pf.rx[q];
                        self.rx[q].configure(Some(Ring {
                            base: r.base,
                            count: r.ring_len,
                            buf: r.databuffer_size,
                            max_pkt: r.max_pkt_size,
                        }));
                        self.rx[q].enable(cx);
                    }
                    if tx & (1 << q) != 0 {
                        let t = self.pf.tx[q];
                        self.tx[q].configure(Some(Ring {
                            base: t.base,
                            count: u32::from(t.ring_len),
                            buf: 0,
                            max_pkt: 0,
                        }));
                        self.tx[q].enable(cx);
                    }
                }
                let e = self.pf.link_event(self.link_up);
                self.post(pf::op::EVENT, 0, e);
            }
            Action::Disable { rx, tx } => {
                for q in 0..self.pf.queue_pairs() {
                    if rx & (1 << q) != 0 {
                        self.rx[q].disable(cx);
                    }
                    if tx & (1 << q) != 0 {
                        self.tx[q].disable(cx);
                    }
                }
            }
        }
    }

    /// The admin queue's work (device thread).
    fn run_aq(&mut self, cx: &mut Cx<'_>) {
        let msgs = self.aq.take_sent(cx, &queue::DMA_RULES);
        for m in msgs {
            if self.reset_on_op == Some(m.op) {
                // The reset goes before this message is answered; the AQ
                // it drops takes the later ones with it.
                self.reset_on_op = None;
                self.pf_reset_begin();
                break;
            }
            let stats = self.eth_stats();
            let (reply, action) = self.pf.handle(m.op, &m.data, &stats, cx.iommu.violations());
            if let Some((status, data)) = reply {
                self.post(m.op, status, data);
            }
            self.act(cx, action);
            if action == Action::ResetVf {
                // The AQ is gone; later descriptors are never seen.
                break;
            }
        }
        if self.aq.deliver(cx, &queue::DMA_RULES) > 0 {
            self.irq.raise(0, ICR0_ADMINQ);
        }
    }

    fn reg_index(offset: u32, base: u32, n: usize) -> Option<usize> {
        (base..base + 4 * n as u32)
            .contains(&offset)
            .then(|| ((offset - base) / 4) as usize)
    }

    fn rss_reg(&mut self, offset: u32) -> Option<(&mut [u8], usize)> {
        if let Some(i) = Self::reg_index(offset, VFQF_HKEY, pf::RSS_KEY_LEN / 4) {
            return Some((&mut self.pf.rss_key[..], 4 * i));
        }
        if let Some(i) = Self::reg_index(offset, VFQF_HLUT, pf::RSS_LUT_LEN / 4) {
            return Some((&mut self.pf.rss_lut[..], 4 * i));
        }
        None
    }
}

impl DeviceModel for Iavf {
    fn bar_len(&self) -> usize {
        BAR_LEN
    }

    fn delays(&self) -> &Delays {
        &self.cfg.delays
    }

    fn read32(&mut self, _cx: &mut Cx<'_>, offset: u32) -> u32 {
        if self.in_reset() && self.cfg.deadbeef_in_reset {
            return DEADBEEF;
        }
        if let Some(i) = Self::reg_index(offset, QTX_TAIL, QUEUES) {
            return self.tx[i].tail();
        }
        if let Some(i) = Self::reg_index(offset, QRX_TAIL, QUEUES) {
            return self.rx[i].tail();
        }
        let vectors = self.irq.dyn_ctl.len();
        if let Some(i) = Self::reg_index(offset, VFINT_DYN_CTLN, vectors - 1) {
            return self.irq.dyn_ctl[i + 1];
        }
        if let Some(i) = Self::reg_index(offset, VFINT_ITRN, ITRN_STRIDE * 3) {
            return self.irq.itr.get(i).copied().unwrap_or(0);
        }
        if let Some(i) = Self::reg_index(offset, VFQF_HENA, 2) {
            return (self.pf.hena >> (32 * i)) as u32;
        }
        if let Some((b, at)) = self.rss_reg(offset) {
            return u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
        }
        match offset {
            // Read-to-clear (the model's choice, see the module doc).
            VFINT_ICR0 => std::mem::take(&mut self.irq.icr0),
            VFINT_ICR0_ENA => self.irq.icr0_ena,
            VFINT_DYN_CTL0 => self.irq.dyn_ctl[0],
            VF_ATQBAL => self.aq.atq.bal,
            VF_ATQBAH => self.aq.atq.bah,
            VF_ATQLEN => self.aq.atq.len,
            VF_ATQH => self.aq.atq.head,
            VF_ATQT => self.aq.atq.tail,
            VF_ARQBAL => self.aq.arq.bal,
            VF_ARQBAH => self.aq.arq.bah,
            VF_ARQLEN => self.aq.arq.len,
            VF_ARQH => self.aq.arq.head,
            VF_ARQT => self.aq.arq.tail,
            VFGEN_RSTAT => self.rstat(),
            _ => 0,
        }
    }

    fn write32(&mut self, cx: &mut Cx<'_>, offset: u32, value: u32) {
        let pairs = self.pf.queue_pairs();
        for (base, tx) in [(QTX_TAIL, true), (QRX_TAIL, false)] {
            if let Some(i) = Self::reg_index(offset, base, QUEUES) {
                if i >= pairs {
                    cx.iommu.violations().record(
                        QUEUE_NOT_ASSIGNED,
                        format!(
                            "{} tail of queue {i} written; the PF gave {pairs} pairs",
                            if tx { "TX" } else { "RX" }
                        ),
                    );
                    return;
                }
                let q = if tx { &mut self.tx[i] } else { &mut self.rx[i] };
                q.write_tail(cx, value & TAIL_MASK);
                return;
            }
        }
        let vectors = self.irq.dyn_ctl.len();
        if let Some(i) = Self::reg_index(offset, VFINT_DYN_CTLN, vectors - 1) {
            self.irq.write_dyn(i + 1, value);
            return;
        }
        if let Some(i) = Self::reg_index(offset, VFINT_ITRN, ITRN_STRIDE * 3) {
            if let Some(r) = self.irq.itr.get_mut(i) {
                *r = value;
            }
            return;
        }
        if let Some(i) = Self::reg_index(offset, VFQF_HENA, 2) {
            let shift = 32 * i;
            self.pf.hena = (self.pf.hena & !(0xFFFF_FFFFu64 << shift)) | (value as u64) << shift;
            return;
        }
        if let Some((b, at)) = self.rss_reg(offset) {
            b[at..at + 4].copy_from_slice(&value.to_le_bytes());
            return;
        }
        match offset {
            VFINT_ICR0_ENA => {
                self.irq.icr0_ena = value;
                // A cause already in ICR0 that this enables is owed.
                if self.irq.icr0 & value != 0 {
                    self.irq.pending |= 1;
                    self.irq.deliver(0);
                }
            }
            VFINT_DYN_CTL0 => self.irq.write_dyn(0, value),
            VF_ATQBAL => self.aq.atq.bal = value,
            VF_ATQBAH => self.aq.atq.bah = value,
            VF_ATQLEN => self.aq.write_len(false, value),
            VF_ATQH => self.aq.atq.head = value & aq::PTR_MASK,
            VF_ATQT => self.aq.write_tail(cx, false, value),
            VF_ARQBAL => self.aq.arq.bal = value,
            VF_ARQBAH => self.aq.arq.bah = value,
            VF_ARQLEN => {
                self.aq.write_len(true, value);
                if value & aq::LEN_ENABLE != 0 {
                    // The VF is back once it re-enables its ARQ (B.7),
                    // if the PF has not said so already.
                    if self.reset == ResetState::Completed {
                        self.reset = ResetState::Active;
                    }
                    // A VF re-initialising its admin queue has seen the
                    // reset that stopped its queues: its RX tail writes
                    // count again (Linux's iavf refills its RX ring,
                    // writing the tail, before its CONFIG_VSI_QUEUES goes
                    // out; in the vfio-user lab those tails were lost and
                    // its RX stalled after a PF reset). TX tails stay
                    // ignored until the queue is configured: Linux still
                    // writes its old TX ring's tail meanwhile.
                    for q in self.rx.iter_mut() {
                        q.stopped_under_driver = false;
                    }
                }
            }
            VF_ARQH => self.aq.arq.head = value & aq::PTR_MASK,
            VF_ARQT => self.aq.write_tail(cx, true, value),
            _ => {} // read-only or nothing there
        }
    }

    fn run(&mut self, cx: &mut Cx<'_>) {
        // The PF ends its handling of the VF's reset by writing VFACTIVE,
        // a pass after COMPLETED (i40e and ice write both at the end of
        // their VF reset): Linux's iavf polls RSTAT for VFACTIVE before it
        // touches its admin queue again (B.7; in the vfio-user lab it gave
        // up with "Reset never finished (1)" when VFACTIVE waited for it).
        if self.reset == ResetState::Completed {
            self.reset = ResetState::Active;
        }
        // PF events first: a PF reset posted by the switch is done in
        // this pass, as `pf_reset_begin` then a pass does it.
        self.take_switched();
        if let ResetState::InProgress(Some(due)) = self.reset {
            if cx.now >= due {
                self.reset = ResetState::Completed;
            }
        }
        if self.reset_vf_due.is_some_and(|d| cx.now >= d) {
            self.reset_vf_due = None;
            let until = cx.after(self.cfg.reset_time);
            self.vf_reset(cx, Some(until));
        }
        if self.pf_reset_asked {
            // RESET_IMPENDING first (if the ARQ takes it), then the reset.
            if self.aq.deliver(cx, &queue::DMA_RULES) > 0 {
                self.irq.raise(0, ICR0_ADMINQ);
            }
            self.pf_reset_asked = false;
            self.vf_reset(
                cx,
                if self.pf_in_reset {
                    None
                } else {
                    Some(cx.real)
                },
            );
        }
        if !self.in_reset() {
            self.run_aq(cx);
        }
        let vectors = (self.pf.rx_vector, self.pf.tx_vector);
        for q in 0..QUEUES {
            for (queue, vec) in [
                (&mut self.rx[q], vectors.0[q]),
                (&mut self.tx[q], vectors.1[q]),
            ] {
                let before = queue.writebacks;
                queue.run(cx);
                if queue.writebacks != before {
                    if let Some(v) = vec {
                        // Vector 0 carries queue causes as ICR0 QUEUE_0 (B.2).
                        self.irq.raise(usize::from(v), ICR0_QUEUE_0);
                    }
                }
            }
        }
        match &mut self.veb {
            Some(port) => {
                // The PF's view first: a MAC added in this pass is a
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
        let now = Instant::now();
        let mut due = None;
        if let ResetState::InProgress(Some(d)) = self.reset {
            due = Some(d);
        }
        if let Some(d) = self.reset_vf_due {
            due = Some(due.map_or(d, |x: Instant| x.min(d)));
        }
        let busy = self.pf_reset_asked
            || self.reset == ResetState::Completed
            || (!self.in_reset() && self.aq.pending())
            || self.rx.iter().chain(self.tx.iter()).any(IavfQueue::due);
        if busy {
            due = Some(due.map_or(now, |d: Instant| d.min(now)));
        }
        due
    }

    fn function_reset(&mut self, cx: &mut Cx<'_>) {
        let until = cx.after(self.cfg.reset_time);
        self.vf_reset(cx, Some(until));
    }

    fn bad_access(&mut self, cx: &mut Cx<'_>, offset: u32, write: bool) {
        cx.iommu.violations().record(
            REGISTER_ACCESS,
            format!(
                "{} at {offset:#x}: outside the 64 KB BAR0 or not 4-byte aligned",
                if write { "write" } else { "read" }
            ),
        );
    }

    fn set_irq_sink(&mut self, sink: IrqSink) {
        self.irq.sink = sink;
    }
}

/// Test and host conveniences on a running iavf model.
impl SimDevice<Iavf> {
    /// A frame to RX queue `q`. False if dropped at once.
    pub fn inject(&self, q: usize, frame: &[u8]) -> bool {
        self.with(|m, _| m.inject(q, frame.to_vec()))
    }

    /// A frame to the queue RSS picks.
    pub fn receive(&self, frame: &[u8]) -> bool {
        self.with(|m, _| m.receive(frame.to_vec()))
    }

    /// Take the frames sent so far.
    pub fn take_wire(&self) -> Vec<Vec<u8>> {
        self.with(|m, _| std::mem::take(&mut m.wire))
    }

    /// See [`Iavf::pf_reset_begin`]; returns after the device did it.
    pub fn pf_reset_begin(&self) {
        self.with(|m, _| m.pf_reset_begin());
        self.flush();
    }

    /// See [`Iavf::pf_reset_end`].
    pub fn pf_reset_end(&self) {
        self.with(|m, _| m.pf_reset_end());
    }

    /// See [`Iavf::set_link`]; the event goes out on the next pass.
    pub fn set_link(&self, up: bool) {
        self.with(|m, _| m.set_link(up));
    }

    /// See [`Iavf::admin_set_mac`].
    pub fn admin_set_mac(&self, mac: MacAddr) {
        self.with(|m, _| m.admin_set_mac(mac));
    }

    /// The switch port, if attached.
    pub fn veb_port(&self) -> Option<usize> {
        self.with(|m, _| m.veb_port())
    }

    /// See [`Iavf::pf_reset_on`].
    pub fn pf_reset_on(&self, op: u32) {
        self.with(|m, _| m.pf_reset_on(op));
    }

    /// The PF stops (true) or resumes answering virtchnl messages.
    pub fn set_pf_silent(&self, silent: bool) {
        self.with(|m, _| m.pf.silent = silent);
    }

    /// Trust the VF (`ip link set … vf N trust on`).
    pub fn set_trusted(&self, trusted: bool) {
        self.with(|m, _| m.pf.setup.trusted = trusted);
    }

    /// Read the PF's view of the VF.
    pub fn pf<T>(&self, f: impl FnOnce(&IavfPf) -> T) -> T {
        self.with(|m, _| f(&m.pf))
    }

    /// virtchnl opcodes the VF sent, in order.
    pub fn sent_ops(&self) -> Vec<u32> {
        self.with(|m, _| m.aq.sent_ops.clone())
    }

    /// The interrupt registers and messages sent.
    pub fn irq(&self) -> Irq {
        self.with(|m, _| m.irq.clone())
    }

    /// Buffers RX queue `q` owns now.
    pub fn rx_owned(&self, q: usize) -> usize {
        self.with(|m, _| m.rx[q].owned())
    }

    /// Buffers TX queue `q` owns now.
    pub fn tx_owned(&self, q: usize) -> usize {
        self.with(|m, _| m.tx[q].owned())
    }

    /// VFGEN_RSTAT.
    pub fn rstat(&self) -> u32 {
        self.with(|m, _| m.rstat())
    }
}
