//! The ixgbevf port: bring-up (A.6), queue pairs on the shared
//! advanced-descriptor rings (A.7), one per worker, spread by RSS (A.8
//! #11, [`super::rss`]), the receive filters ([`super::filters`]),
//! statistics, link, stop/start, and recovery from a PF-initiated reset
//! (A.6 step 21, A.8 #14), which puts all of it back.

use super::filters::{self, ApplyError};
use super::link::{check_link, LinkConfirm, LinkState as VfLink, ResetCause};
use super::mailbox::{
    ApiVersion, IxMbxError, PfMailbox, PfTiming, XcastMode, MAX_MC_HASHES, RSS_KEY_BYTES,
};
use super::queues::{enable_rx, enable_tx, psrtype, EnableTiming, QueueError};
use super::regs::*;
use super::reset::{reset_vf, ResetError, ResetTiming, VfIdentity};
use super::rss::{self, RssState};
use super::stats::Counters;
use crate::mbuf::{PortId, DEFAULT_DATA_ROOM};
use crate::memory::{DmaArena, DmaMapper, MemoryBacking};
use crate::mmio::RegisterSpace;
use crate::net::MacAddr;
use crate::pci::{DriverKind, PciFunction, SupportedDevice};
use crate::pmd::adv_desc::{
    disable_rx, disable_tx, ring_stats, ring_xstats, settle_after, AdvRxQueue, AdvTxQueue,
    DescRing, DisableTiming, Disabled, QueueCtl, QueueState, RingError, RxCounters, RxHw, RxRing,
    TxCounters, TxHw, TxRing,
};
use crate::pmd::rx_filters::{FilterError, FilterOutcome, RxFilters};
use crate::pmd::vf_mailbox::random_local_mac;
pub use crate::pmd::vf_stats::VfStats;
use crate::port::{
    check_queue_counts, Capabilities, LinkState, MulticastOutcome, Port, PortError, PortInfo,
    PortStats, QueueSet, ServiceEvent, XStat,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Waits of the control path. [`Timing::default`] is what the hardware
/// needs (A.5.1, A.6, A.7); device models use shorter ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Mailbox polling and the VF_RESET settle.
    pub mbx: PfTiming,
    /// The VF reset's pauses and polls (A.6 steps 4-8).
    pub reset: ResetTiming,
    /// Queue enables polled back (A.7.1 step 7, A.7.2 step 8).
    pub enable: EnableTiming,
    /// Stopping a queue: ENABLE read back 0, then a settle before its
    /// buffers or descriptors are reused (A.7.3, see [`DisableTiming`]).
    pub disable: DisableTiming,
    /// Least time between two link checks in [`IxgbevfPort::service`]
    /// (Linux's watchdog: 2 s, A.6 step 21).
    pub link_check_interval: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            mbx: PfTiming::default(),
            reset: ResetTiming::default(),
            enable: EnableTiming::default(),
            disable: DisableTiming::default(),
            link_check_interval: Duration::from_secs(2),
        }
    }
}

/// How to set up an ixgbevf port.
#[derive(Clone, Debug)]
pub struct IxgbevfConfig {
    /// Port id in the port table.
    pub id: PortId,
    /// Name for logs and errors.
    pub name: String,
    /// RX descriptors (multiple of 8, at most 4096).
    pub rx_ring: usize,
    /// TX descriptors.
    pub tx_ring: usize,
    /// Data room of the pool's buffers (the device is told whole KiB).
    pub data_room: usize,
    /// MTU; SET_LPE asks for MTU + 18 (A.5.3, A.6 step 15).
    pub mtu: u16,
    /// Use this MAC when the PF assigned none (otherwise a random local
    /// one, A.6 step 10).
    pub mac: Option<MacAddr>,
    /// Memory for descriptor rings.
    pub backing: MemoryBacking,
    /// The device's DMA address space: the rings' arena is mapped in it,
    /// and the pool the queues take buffers from must be too.
    pub dma: Arc<dyn DmaMapper>,
    /// Control-path waits.
    pub timing: Timing,
    /// The PCI function (bus mastering): turned off when the port goes,
    /// before the rings' memory is unmapped. `None` only for models that
    /// have no config space.
    pub pci: Option<Arc<dyn PciFunction>>,
    /// Which VF this is: its row of the supported-device table (the MAC
    /// class decides the link speed codes, the 82599 link confirm and who
    /// owns the RSS registers).
    pub device: SupportedDevice,
    /// The RSS key an X550 VF programs when it runs more than one RX
    /// queue; `None`: a random one ([`rss::random_key`]).
    pub rss_key: Option<[u8; RSS_KEY_BYTES]>,
    /// Receive filters asked of the PF (A.6 step 17).
    pub filters: RxFilters,
}

impl IxgbevfConfig {
    /// Defaults for `device` (a row of
    /// [`SUPPORTED_DEVICES`](crate::pci::SUPPORTED_DEVICES)): 512-descriptor
    /// rings, 2 KiB buffers, MTU 1500, hugepages.
    pub fn for_device(
        id: PortId,
        name: impl Into<String>,
        device: SupportedDevice,
        dma: Arc<dyn DmaMapper>,
    ) -> IxgbevfConfig {
        IxgbevfConfig {
            id,
            name: name.into(),
            rx_ring: 512,
            tx_ring: 512,
            data_room: DEFAULT_DATA_ROOM as usize,
            mtu: 1500,
            mac: None,
            backing: MemoryBacking::default(),
            dma,
            timing: Timing::default(),
            pci: None,
            device,
            rss_key: None,
            filters: RxFilters::default(),
        }
    }

    /// X550 and later (X550, X550EM_x, X550EM_a, E610 VFs): VFLINKS speed
    /// codes differ (A.3).
    fn x550(&self) -> bool {
        matches!(self.device.device_id, 0x1565 | 0x15a8 | 0x15c5 | 0x57ad)
    }

    /// Most RX queues RSS spreads over for this MAC ([`rss`]).
    fn max_rss_queues(&self) -> usize {
        if self.x550() {
            rss::X550_MAX_RSS_QUEUES
        } else {
            rss::SHARED_MAX_RSS_QUEUES
        }
    }

    /// The 82599 confirms an up link with further reads (A.6 step 21).
    fn link_confirm(&self) -> Option<LinkConfirm> {
        (self.device.device_id == 0x10ed).then_some(LinkConfirm::IXGBE_82599)
    }
}

/// Why the control path failed.
#[derive(Debug, thiserror::Error)]
pub enum IxgbevfError {
    /// The VF reset or its handshake failed.
    #[error(transparent)]
    Reset(#[from] ResetError),
    /// A mailbox exchange after the handshake failed.
    #[error("mailbox: {0}")]
    Mailbox(#[from] IxMbxError),
    /// A queue did not come up.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// Ring memory or size.
    #[error("ring: {0}")]
    Ring(#[from] RingError),
    /// Configuration or queue request.
    #[error(transparent)]
    Port(#[from] PortError),
    /// A receive filter the PF refused, with the filters required.
    #[error("receive filters: {0}")]
    Filter(#[from] FilterError),
    /// After a PF reset the PF grants fewer queues than the workers run.
    #[error(
        "the PF now grants {granted} {dir} queue(s) (GET_QUEUES), the port runs {in_use};          reopen the port with fewer queues"
    )]
    QueuesWithdrawn {
        /// "rx" or "tx".
        dir: &'static str,
        /// What GET_QUEUES granted.
        granted: usize,
        /// Queues in use.
        in_use: usize,
    },
}

impl From<ApplyError> for IxgbevfError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Filter(f) => IxgbevfError::Filter(f),
            ApplyError::Mailbox(m) => IxgbevfError::Mailbox(m),
        }
    }
}

impl IxgbevfError {
    /// A PF that is still resetting or not answering yet: retry later.
    fn pf_not_ready(&self) -> bool {
        matches!(
            self,
            IxgbevfError::Reset(ResetError::PfStillInReset { .. })
                | IxgbevfError::Reset(ResetError::Mailbox(
                    IxMbxError::Timeout { .. } | IxMbxError::PfReset(_) | IxMbxError::Transport(_)
                ))
                | IxgbevfError::Mailbox(
                    IxMbxError::Timeout { .. } | IxMbxError::PfReset(_) | IxMbxError::Transport(_)
                )
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Queues running (or waiting for their first burst).
    Running,
    /// Queues disabled and asked to release their buffers; `restart`:
    /// recovery from a PF reset follows, otherwise the port halts.
    Stopping { restart: bool },
    /// Waiting for the PF to answer the bring-up again.
    Restarting,
    /// Stopped by [`Port::stop`]; [`Port::start`] brings it back.
    Halted,
}

/// Resets the link check called for, by cause (A.6 step 21, A.8 #14),
/// so an operator can tell a PF reset from a PF that stopped answering.
#[derive(Clone, Copy, Debug, Default)]
struct ResetCounts {
    pf_reset: u64,
    cts_lost: u64,
    mbx_timeout: u64,
}

impl ResetCounts {
    fn count(&mut self, cause: ResetCause) {
        let n = match cause {
            ResetCause::PfReset => &mut self.pf_reset,
            ResetCause::CtsLost(_) => &mut self.cts_lost,
            ResetCause::MailboxTimedOut => &mut self.mbx_timeout,
        };
        *n += 1;
    }
}

#[derive(Debug)]
struct RxHandle {
    hw: RxHw,
    ctl: Arc<QueueCtl>,
    counters: Arc<RxCounters>,
}

#[derive(Debug)]
struct TxHandle {
    hw: TxHw,
    ctl: Arc<QueueCtl>,
    counters: Arc<TxCounters>,
}

/// An ixgbevf VF port. The control thread owns it; the queues go to
/// workers.
#[derive(Debug)]
pub struct IxgbevfPort<R: RegisterSpace + 'static> {
    regs: Arc<R>,
    cfg: IxgbevfConfig,
    info: PortInfo,
    mbx: PfMailbox,
    /// What the last handshake found (MAC, API, queues).
    ident: VfIdentity,
    stats: Counters,
    rx: Vec<RxHandle>,
    tx: Vec<TxHandle>,
    /// Both rings, carved from one mapped region.
    /// Every queue's ring, carved from one mapped region; made when the
    /// queues are (their count is known only then).
    arena: Option<DmaArena>,
    queues_given: bool,
    phase: Phase,
    recoveries: u64,
    /// Resets the link check called for, by cause.
    resets: ResetCounts,
    /// Last link state the check found.
    vf_link: VfLink,
    /// When [`service`](Self::service) last ran the link check.
    last_link_check: Option<Instant>,
    /// The RSS in force (programmed on X550, read on 82599/X540).
    rss: RssState,
    /// The filters in force, as the PF last accepted them.
    filters_sent: Option<RxFilters>,
    /// The xcast mode the PF applied last (API 1.2 and later).
    xcast: Option<XcastMode>,
    /// Settings the PF did not put in force at the last attempt.
    filter_refusals: FilterOutcome,
}

impl<R: RegisterSpace + 'static> IxgbevfPort<R> {
    /// Bring the VF up: reset and handshake (A.6 steps 3-12), the MAC,
    /// SET_LPE, statistics baseline. Queues are set up by [`Port::queues`].
    pub fn new(regs: Arc<R>, cfg: IxgbevfConfig) -> Result<IxgbevfPort<R>, IxgbevfError> {
        if cfg.device.driver != DriverKind::Ixgbevf {
            return Err(IxgbevfError::Port(PortError::Config {
                port: cfg.name.clone(),
                why: format!("{} is not an ixgbevf device", cfg.device.name),
            }));
        }
        let info = PortInfo {
            id: cfg.id,
            name: cfg.name.clone(),
            kind: "ixgbevf",
            mac: MacAddr::default(),
            // Set from GET_QUEUES by the bring-up.
            capabilities: Capabilities {
                max_rx_queues: 1,
                max_tx_queues: 1,
                max_rx_frame: cfg.data_room & !0x3FF,
            },
        };
        let mut port = IxgbevfPort {
            regs,
            mbx: PfMailbox::new(cfg.timing.mbx),
            cfg,
            info,
            ident: VfIdentity {
                mac: None,
                mc_filter_type: 0,
                api: ApiVersion::V1_0,
                queues: super::mailbox::QueueInfo {
                    tx: 1,
                    rx: 1,
                    tcs: 0,
                    default_queue: 0,
                },
            },
            stats: Counters::default(),
            rx: Vec::new(),
            tx: Vec::new(),
            arena: None,
            queues_given: false,
            phase: Phase::Running,
            recoveries: 0,
            resets: ResetCounts::default(),
            vf_link: VfLink::Down,
            last_link_check: None,
            rss: RssState::Off,
            filters_sent: None,
            xcast: None,
            filter_refusals: FilterOutcome::default(),
        };
        port.bring_up()?;
        Ok(port)
    }

    /// The RSS in force: the VF's own on X550, the PF's as read over the
    /// mailbox on 82599/X540 (with why a part could not be read), or off
    /// with one RX queue.
    pub fn rss(&self) -> &RssState {
        &self.rss
    }

    /// The xcast mode the PF applied (`None` before API 1.2).
    pub fn xcast_mode(&self) -> Option<XcastMode> {
        self.xcast
    }

    /// Receive filter settings the PF did not put in force.
    pub fn filter_refusals(&self) -> &[FilterError] {
        &self.filter_refusals.refused
    }

    /// Change the receive filters now (`set promisc`, `mcast_addr add`,
    /// `rx_vlan add` ...); they are sent again after every PF reset. With
    /// [`RxFilters::required`], a refusal is an error: the PF keeps what it
    /// accepted before it, and the port keeps the old set as its
    /// configuration (a PF reset sends the old set again).
    pub fn set_filters(&mut self, f: RxFilters) -> Result<&[FilterError], IxgbevfError> {
        let regs = Arc::clone(&self.regs);
        let old = self.filters_sent.clone();
        let (mode, out) = filters::apply(&*regs, &mut self.mbx, &self.cfg.name, &f, old.as_ref())?;
        self.xcast = mode.or(self.xcast);
        self.filter_refusals = out;
        self.filters_sent = Some(f.clone());
        self.cfg.filters = f;
        Ok(&self.filter_refusals.refused)
    }

    /// Queue limits from what the PF granted (GET_QUEUES, A.6 step 12)
    /// and the MAC's RSS reach; RX a power of two (A.8 #10). With traffic
    /// classes the VF transmits on one queue (A.6 step 12).
    fn set_capabilities(&mut self) {
        let q = self.ident.queues;
        let rx = (q.rx as usize).min(self.cfg.max_rss_queues()).max(1);
        let rx = 1 << rx.ilog2();
        let tx = if q.tcs > 1 { 1 } else { (q.tx as usize).max(1) };
        self.info.capabilities.max_rx_queues = rx;
        self.info.capabilities.max_tx_queues = tx;
    }

    /// RSS for the queues given out: on X550 the VF's own key, RETA and
    /// hash fields; on 82599/X540 the PF's read back (A.8 #11). Off with
    /// one RX queue.
    fn configure_rss(&mut self) -> Result<(), IxgbevfError> {
        let n = self.rx.len();
        let regs = Arc::clone(&self.regs);
        self.rss = if n <= 1 {
            if self.cfg.x550() {
                regs.write32(VFMRQC, 0);
            }
            RssState::Off
        } else if self.cfg.x550() {
            let key = *self.cfg.rss_key.get_or_insert_with(rss::random_key);
            rss::program_vf_rss(&*regs, &key, n)
        } else {
            rss::read_pf_rss(&*regs, &mut self.mbx)?
        };
        if let RssState::Pf { reta: Err(e), .. } = &self.rss {
            log::info!(
                "{}: the PF's RSS table is not readable ({e}); the PF spreads {n} queues its own way",
                self.cfg.name
            );
        }
        Ok(())
    }

    /// What the last VF reset handshake found: the admin MAC, the API
    /// the PF accepted, the queues it grants.
    pub fn identity(&self) -> &VfIdentity {
        &self.ident
    }

    /// Times the port recovered from a PF reset.
    pub fn recoveries(&self) -> u64 {
        self.recoveries
    }

    /// Counters of RX queue `q`.
    pub fn rx_counters(&self, q: usize) -> Option<&Arc<RxCounters>> {
        self.rx.get(q).map(|h| &h.counters)
    }

    /// Counters of TX queue `q`.
    pub fn tx_counters(&self, q: usize) -> Option<&Arc<TxCounters>> {
        self.tx.get(q).map(|h| &h.counters)
    }

    /// Hardware counters, as of the last [`update_hw_stats`](Self::update_hw_stats).
    pub fn hw_stats(&self) -> VfStats {
        self.stats.snapshot()
    }

    /// Read the hardware counters and add what changed (32/36-bit wrap).
    pub fn update_hw_stats(&mut self) {
        self.stats.update(&*self.regs);
    }

    /// Reset, handshake, MAC, SET_LPE, statistics baseline.
    fn bring_up(&mut self) -> Result<(), IxgbevfError> {
        let regs = Arc::clone(&self.regs);
        let regs = &*regs;
        self.ident = reset_vf(regs, &mut self.mbx, &self.cfg.timing.reset)?;
        // Without an admin MAC, keep the one in use across PF resets (a
        // new random one would cut the VF off from whoever learnt it).
        let in_use = (self.info.mac != MacAddr::default()).then_some(self.info.mac);
        let mac = match self.ident.mac {
            Some(m) => m,
            None => {
                let mac = in_use.or(self.cfg.mac).unwrap_or_else(random_local_mac);
                // SET_MAC_ADDR when the PF assigned none (A.6 step 10); a
                // refusal leaves the VF without a unicast filter.
                match self.mbx.set_mac(regs, mac) {
                    Ok(_) => {}
                    Err(IxMbxError::Nack { .. }) => {
                        log::warn!("{}: PF refused MAC {mac}", self.cfg.name);
                    }
                    Err(e) => return Err(e.into()),
                }
                mac
            }
        };
        self.info.mac = mac;
        // SET_LPE always (82599: the PF re-enables VF RX only on it, A.8 #7).
        self.mbx.set_lpe(regs, self.cfg.mtu as u32 + 18)?;
        self.set_capabilities();
        // RX mode (A.6 step 17); the VF reset cleared the PF's copy (A.5.4).
        let f = self.cfg.filters.clone();
        let (mode, out) = filters::apply(regs, &mut self.mbx, &self.cfg.name, &f, None)?;
        self.xcast = mode;
        self.filter_refusals = out;
        self.filters_sent = Some(f);
        self.stats.baseline(regs);
        Ok(())
    }

    /// After a reset the PF may grant fewer queues than the workers hold.
    fn check_queues_still_granted(&self) -> Result<(), IxgbevfError> {
        let caps = self.info.capabilities;
        for (dir, in_use, granted) in [
            ("rx", self.rx.len(), caps.max_rx_queues),
            ("tx", self.tx.len(), caps.max_tx_queues),
        ] {
            if in_use > granted {
                return Err(IxgbevfError::QueuesWithdrawn {
                    dir,
                    granted,
                    in_use,
                });
            }
        }
        Ok(())
    }

    /// Clear every queue's ENABLE and poll it back to 0 (no settle).
    fn disable_queues(&self) -> Vec<Disabled> {
        let regs = &*self.regs;
        let t = self.cfg.timing.disable;
        let rx = self.rx.iter().map(|h| disable_rx(regs, &h.hw.regs, &t));
        let tx = self.tx.iter().map(|h| disable_tx(regs, &h.hw.regs, &t));
        rx.chain(tx).collect()
    }

    /// Stop the device's DMA on every queue, then ask each queue's worker
    /// to free its buffers, or to abandon them where the device did not
    /// stop.
    fn stop_queues(&mut self) {
        let t = self.cfg.timing.disable;
        let outcomes = self.disable_queues();
        settle_after(outcomes.iter().copied(), &t);
        let ctls = self
            .rx
            .iter()
            .map(|h| &h.ctl)
            .chain(self.tx.iter().map(|h| &h.ctl));
        for (ctl, d) in ctls.zip(outcomes) {
            if d == Disabled::TimedOut {
                log::error!(
                    "{}: a queue did not stop within {} polls; its buffers are abandoned",
                    self.cfg.name,
                    t.polls
                );
                ctl.request(QueueState::Abandon);
            } else {
                ctl.request(QueueState::Stop);
            }
        }
    }

    fn queues_stopped(&self) -> bool {
        self.rx.iter().all(|h| h.ctl.is(QueueState::Stopped))
            && self.tx.iter().all(|h| h.ctl.is(QueueState::Stopped))
    }

    /// PSRTYPE, then the TX and RX queues, each enable polled back
    /// (A.6 step 15, A.7.1, A.7.2).
    fn program_queues(&self) -> Result<(), QueueError> {
        let regs = &*self.regs;
        let t = &self.cfg.timing.enable;
        for (q, h) in self.tx.iter().enumerate() {
            enable_tx(regs, q as u32, &h.hw, t)?;
        }
        if !self.rx.is_empty() {
            regs.write32(PSRTYPE, psrtype(self.rx.len() as u32));
        }
        for (q, h) in self.rx.iter().enumerate() {
            enable_rx(regs, q as u32, &h.hw, t)?;
        }
        Ok(())
    }

    /// Bring up again and restart the queues (after a PF reset or a stop).
    fn restart(&mut self) -> Result<ServiceEvent, IxgbevfError> {
        // A function-level reset while the VF was down clears
        // PCI_COMMAND: turn bus mastering back on first.
        if let Some(pci) = &self.cfg.pci {
            if let Err(e) = pci.set_bus_master(true) {
                log::warn!("{}: cannot turn bus mastering on: {e}", self.cfg.name);
                return Ok(ServiceEvent::WaitingForDevice);
            }
        }
        match self.bring_up() {
            Ok(()) => {}
            Err(e) if e.pf_not_ready() => {
                log::warn!("{}: PF not ready yet ({e}); retrying", self.cfg.name);
                return Ok(ServiceEvent::WaitingForDevice);
            }
            Err(e) => return Err(e),
        }
        self.check_queues_still_granted()?;
        self.program_queues()?;
        self.configure_rss()?;
        for h in &self.rx {
            h.ctl.request(QueueState::Restart);
        }
        for h in &self.tx {
            h.ctl.request(QueueState::Restart);
        }
        self.phase = Phase::Running;
        self.vf_link = VfLink::Down;
        self.last_link_check = None;
        Ok(ServiceEvent::Recovered)
    }

    fn port_error(&self, e: IxgbevfError) -> PortError {
        PortError::Device {
            port: self.cfg.name.clone(),
            why: e.to_string(),
        }
    }

    /// Control-thread housekeeping, to call periodically: at most every
    /// [`Timing::link_check_interval`] the link check (A.6 step 21), which
    /// also sees a PF reset, a lost CTS or a timed-out mailbox; then the
    /// recovery: stop the queues, wait for their workers to release the
    /// rings, reset and bring up again, restart the queues. Software
    /// counters are kept.
    pub fn service(&mut self) -> Result<ServiceEvent, IxgbevfError> {
        match self.phase {
            Phase::Halted => Ok(ServiceEvent::Idle),
            Phase::Running => {
                let now = Instant::now();
                let due = self.last_link_check.is_none_or(|t| {
                    now.saturating_duration_since(t) >= self.cfg.timing.link_check_interval
                });
                if !due {
                    return Ok(ServiceEvent::Idle);
                }
                self.last_link_check = Some(now);
                let regs = Arc::clone(&self.regs);
                let confirm = self.cfg.link_confirm();
                let x550 = self.cfg.x550();
                let link = match check_link(&*regs, &mut self.mbx, confirm, x550) {
                    Ok(l) => l,
                    Err(e) => {
                        log::warn!("{}: link check: {e}; resetting the VF", self.cfg.name);
                        VfLink::ResetNeeded(ResetCause::MailboxTimedOut)
                    }
                };
                self.vf_link = link;
                if let VfLink::ResetNeeded(cause) = link {
                    log::warn!("{}: {cause:?}; stopping queues", self.cfg.name);
                    self.resets.count(cause);
                    self.stop_queues();
                    self.phase = Phase::Stopping { restart: true };
                    return Ok(ServiceEvent::ResetDetected);
                }
                // Counters are only folded while no reset is pending: after
                // one the PF may have zeroed them, which would look like a
                // wrap.
                self.update_hw_stats();
                Ok(ServiceEvent::Idle)
            }
            Phase::Stopping { restart } => {
                if !self.queues_stopped() {
                    return Ok(ServiceEvent::WaitingForQueues);
                }
                if !restart {
                    self.phase = Phase::Halted;
                    return Ok(ServiceEvent::Stopped);
                }
                self.phase = Phase::Restarting;
                self.service()
            }
            Phase::Restarting => {
                let ev = self.restart()?;
                if ev == ServiceEvent::Recovered {
                    self.recoveries += 1;
                    log::info!("{}: recovered from PF reset", self.cfg.name);
                }
                Ok(ev)
            }
        }
    }

    /// Every counter of the port by name, summed over its queues; the
    /// `vf_*` figures are the VF's hardware counters as of the last
    /// [`update_hw_stats`](Self::update_hw_stats) (A.2, A.8 #9).
    pub fn xstats(&self) -> Vec<(&'static str, u64)> {
        let mut x = ring_xstats(
            self.rx.iter().map(|h| &*h.counters),
            self.tx.iter().map(|h| &*h.counters),
        );
        let hw = self.hw_stats();
        x.extend([
            ("pf_reset_recoveries", self.recoveries),
            ("reset_pf_reset", self.resets.pf_reset),
            ("reset_cts_lost", self.resets.cts_lost),
            ("reset_mbx_timeout", self.resets.mbx_timeout),
            // Counters only: states (RSS in force, the xcast mode) are in
            // `rss()` and `xcast_mode()`, not here, where a front end
            // shows every non-traffic value as a drop.
            (
                "rx_filter_refusals",
                self.filter_refusals.refused.len() as u64,
            ),
            ("vf_rx_packets", hw.rx_packets),
            ("vf_tx_packets", hw.tx_packets),
            ("vf_rx_octets", hw.rx_octets),
            ("vf_tx_octets", hw.tx_octets),
            ("vf_rx_multicast", hw.rx_multicast),
        ]);
        x
    }
}

impl<R: RegisterSpace + 'static> Port for IxgbevfPort<R> {
    type Rx = IxgbevfRx<R>;
    type Tx = IxgbevfTx<R>;

    fn info(&self) -> &PortInfo {
        &self.info
    }

    fn link(&self) -> LinkState {
        // VFLINKS (A.3); down while the port is not running or the last
        // check asked for a reset.
        let l = self.regs.read32(VFLINKS);
        let reset = matches!(self.vf_link, VfLink::ResetNeeded(_));
        LinkState {
            up: l & LINKS_UP != 0 && self.phase == Phase::Running && !reset,
            speed_mbps: super::link::link_speed(l, self.cfg.x550()).unwrap_or(0),
            full_duplex: true,
        }
    }

    fn stats(&self) -> PortStats {
        ring_stats(
            self.rx.iter().map(|h| &*h.counters),
            self.tx.iter().map(|h| &*h.counters),
        )
    }

    fn queues(
        &mut self,
        rx: usize,
        tx: usize,
    ) -> Result<QueueSet<IxgbevfRx<R>, IxgbevfTx<R>>, PortError> {
        if self.queues_given {
            return Err(PortError::AlreadyStarted(self.info.name.clone()));
        }
        check_queue_counts(&self.info, rx, tx)?;
        if !rx.is_power_of_two() {
            return Err(PortError::Config {
                port: self.cfg.name.clone(),
                why: format!("{rx} RX queues: RSS needs a power of two (nic-facts A.8 #10)"),
            });
        }
        let err = |e: RingError| PortError::Config {
            port: self.cfg.name.clone(),
            why: e.to_string(),
        };
        let bytes = rx * DescRing::arena_bytes(self.cfg.rx_ring)
            + tx * DescRing::arena_bytes(self.cfg.tx_ring);
        let arena = DmaArena::new(bytes, &self.cfg.backing, &self.cfg.dma).map_err(|e| {
            PortError::Config {
                port: self.cfg.name.clone(),
                why: format!("descriptor memory: {e}"),
            }
        })?;
        let arena = &*self.arena.insert(arena);
        let mut rxq = Vec::with_capacity(rx);
        for q in 0..rx {
            rxq.push(
                RxRing::new(
                    self.cfg.rx_ring,
                    self.cfg.data_room,
                    LAYOUT.rx(q),
                    FLAVOR,
                    self.cfg.id,
                    arena,
                )
                .map_err(err)?,
            );
        }
        let mut txq = Vec::with_capacity(tx);
        for q in 0..tx {
            txq.push(TxRing::new(self.cfg.tx_ring, LAYOUT.tx(q), FLAVOR, arena).map_err(err)?);
        }
        self.queues_given = true;
        self.rx = rxq
            .iter()
            .map(|r| RxHandle {
                hw: r.hw(),
                ctl: Arc::new(QueueCtl::new(QueueState::Restart)),
                counters: Arc::clone(r.counters()),
            })
            .collect();
        self.tx = txq
            .iter()
            .map(|r| TxHandle {
                hw: r.hw(),
                ctl: Arc::new(QueueCtl::new(QueueState::Restart)),
                counters: Arc::clone(r.counters()),
            })
            .collect();
        // Registers programmed and enables read back here; each worker
        // posts its buffers and writes the tail on its first burst (enable
        // before tail, A.7.2).
        if let Err(e) = self.program_queues() {
            return Err(self.port_error(e.into()));
        }
        if let Err(e) = self.configure_rss() {
            return Err(self.port_error(e));
        }
        let rx_out = rxq
            .into_iter()
            .zip(&self.rx)
            .map(|(ring, h)| {
                AdvRxQueue::new(
                    ring,
                    Arc::clone(&self.regs),
                    Arc::clone(&h.ctl),
                    self.cfg.timing.disable,
                )
            })
            .collect();
        let tx_out = txq
            .into_iter()
            .zip(&self.tx)
            .map(|(ring, h)| {
                AdvTxQueue::new(
                    ring,
                    Arc::clone(&self.regs),
                    Arc::clone(&h.ctl),
                    self.cfg.timing.disable,
                )
            })
            .collect();
        Ok((rx_out, tx_out))
    }

    fn xstats(&self) -> Vec<XStat> {
        IxgbevfPort::xstats(self)
    }

    fn service(&mut self) -> Result<ServiceEvent, PortError> {
        IxgbevfPort::service(self).map_err(|e| self.port_error(e))
    }

    /// The list goes with SET_MULTICAST (at most 30 hashes, A.5.3); a
    /// longer one asks for ALLMULTI with UPDATE_XCAST_MODE (API 1.2,
    /// A.5.3), which an untrusted VF or an older API does not get: then
    /// the first 30 groups pass and the outcome says why the rest may
    /// not. While the port recovers from a reset, the list waits for the
    /// bring-up, which sends the configured filters (A.5.4: the PF forgot
    /// them).
    fn set_multicast(&mut self, macs: &[MacAddr]) -> Result<MulticastOutcome, PortError> {
        crate::port::check_multicast(&self.info, macs)?;
        let f = self.cfg.filters.with_multicast(macs);
        if !matches!(self.phase, Phase::Running) {
            self.cfg.filters = f;
            return Ok(MulticastOutcome::Pending);
        }
        let limit = format!(
            "one SET_MULTICAST carries at most {MAX_MC_HASHES} (nic-facts A.5.3); all-multicast \
             asked with UPDATE_XCAST_MODE"
        );
        match self.set_filters(f.clone()) {
            Ok(refused) => Ok(f.multicast_outcome(MAX_MC_HASHES, &limit, refused)),
            Err(e) => {
                // A reset met on the way: the recovery sends the new list.
                if !matches!(e, IxgbevfError::Filter(_)) {
                    self.cfg.filters = f;
                }
                Err(self.port_error(e))
            }
        }
    }

    /// One [`service`](Self::service) with the counter read due now: it
    /// takes the same path as the periodic read (the link check, which sees a PF reset first), so
    /// counters a reset zeroed are never folded in as a wrap.
    fn refresh_stats(&mut self) {
        if !matches!(self.phase, Phase::Running) {
            return;
        }
        self.last_link_check = None;
        if let Err(e) = IxgbevfPort::service(self) {
            log::debug!("{}: counters not refreshed: {e}", self.cfg.name);
        }
    }

    fn stop(&mut self) -> Result<(), PortError> {
        match self.phase {
            Phase::Running => {
                self.stop_queues();
                self.phase = Phase::Stopping { restart: false };
            }
            Phase::Restarting => self.phase = Phase::Halted,
            Phase::Stopping { .. } => self.phase = Phase::Stopping { restart: false },
            Phase::Halted => {}
        }
        Ok(())
    }

    fn start(&mut self) -> Result<(), PortError> {
        match self.phase {
            Phase::Halted => match self.restart() {
                Ok(ServiceEvent::Recovered) => Ok(()),
                Ok(_) => {
                    // The PF does not answer yet: `service` goes on.
                    self.phase = Phase::Restarting;
                    Ok(())
                }
                Err(e) => Err(self.port_error(e)),
            },
            Phase::Stopping { .. } => Err(PortError::Device {
                port: self.cfg.name.clone(),
                why: "still stopping: wait for the stop to complete".into(),
            }),
            Phase::Running | Phase::Restarting => Ok(()),
        }
    }
}

impl<R: RegisterSpace + 'static> Drop for IxgbevfPort<R> {
    /// Stop every DMA before the rings' arena (and, after the port, the
    /// pool) can be unmapped: queues disabled and read back, the VF reset
    /// (VFCTRL.RST stops its queues, A.6 step 7), bus mastering off.
    fn drop(&mut self) {
        let t = self.cfg.timing.disable;
        let outcomes = self.disable_queues();
        settle_after(outcomes.iter().copied(), &t);
        if outcomes.contains(&Disabled::TimedOut) {
            log::error!(
                "{}: a queue did not stop; resetting the VF and turning bus mastering off",
                self.cfg.name
            );
        }
        let regs = &*self.regs;
        regs.write32(CTRL, CTRL_RST);
        regs.read32(STATUS);
        if let Some(pci) = &self.cfg.pci {
            if let Err(e) = pci.set_bus_master(false) {
                log::error!("{}: cannot turn bus mastering off: {e}", self.cfg.name);
            }
        }
    }
}

/// An ixgbevf receive queue.
pub type IxgbevfRx<R> = AdvRxQueue<R>;
/// An ixgbevf transmit queue.
pub type IxgbevfTx<R> = AdvTxQueue<R>;
