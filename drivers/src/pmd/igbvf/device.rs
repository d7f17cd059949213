//! igbvf bring-up, statistics, link, the port and its queues, and recovery
//! from PF-initiated resets.

use super::mailbox::{Mailbox, MbxError, MbxTiming};
use super::regs::*;
use crate::mbuf::{PortId, DEFAULT_DATA_ROOM};
use crate::memory::{ArenaError, DmaArena, DmaMapper, MemoryBacking};
use crate::mmio::RegisterSpace;
use crate::net::MacAddr;
use crate::pci::{DriverKind, PciFunction, SupportedDevice, IGBVF_82576};
use crate::pmd::adv_desc::{
    disable_rx, disable_tx, program_rx, program_tx, ring_stats, ring_xstats, settle_after,
    AdvRxQueue, AdvTxQueue, DescRing, DisableTiming, Disabled, Flavor, ProgramTiming, QueueCtl,
    QueueState, RingError, RxCounters, RxHw, RxRing, TxCounters, TxHw, TxRing,
};
use crate::pmd::rx_filters::{FilterError, FilterOutcome, RxFilters};
use crate::pmd::vf_mailbox::{mac_from_words, mac_words, random_local_mac};
use crate::pmd::vf_stats::HwCounter;
pub use crate::pmd::vf_stats::VfStats;
use crate::port::{
    check_queue_counts, Capabilities, LinkState, MulticastOutcome, Port, PortError, PortInfo,
    PortStats, QueueSet, ServiceEvent, XStat,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Waits of the control path. [`Timing::default`] is what the hardware
/// needs; device models answer at once and use [`Timing::immediate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Mailbox polling.
    pub mbx: MbxTiming,
    /// Polls for RSTI/RSTD to clear after CTRL.RST (200, C.5.1/C.6 step 4).
    pub reset_polls: u32,
    /// Pause between those polls (5 µs).
    pub reset_poll_delay: Duration,
    /// Pause between the VF_RESET acknowledgement and reading its reply
    /// (10 ms, C.6 step 5).
    pub reset_reply_settle: Duration,
    /// Stopping a queue: ENABLE read back to 0, then a settle before its
    /// buffers or descriptors are reused (C.7, see [`DisableTiming`]).
    pub disable: DisableTiming,
    /// Least time between two mailbox link checks in
    /// [`IgbvfPort::service`] (Linux's watchdog: 2 s, C.6 step 13).
    pub link_check_interval: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            mbx: MbxTiming::default(),
            reset_polls: 200,
            reset_poll_delay: Duration::from_micros(5),
            reset_reply_settle: Duration::from_millis(10),
            disable: DisableTiming::default(),
            link_check_interval: Duration::from_secs(2),
        }
    }
}

impl Timing {
    /// No pauses, short polls: for synchronous device models.
    pub fn immediate() -> Timing {
        Timing {
            mbx: MbxTiming {
                polls: 4,
                poll_delay: Duration::ZERO,
                lock_tries: 2,
            },
            reset_polls: 4,
            reset_poll_delay: Duration::ZERO,
            reset_reply_settle: Duration::ZERO,
            disable: DisableTiming {
                polls: 4,
                poll_delay: Duration::ZERO,
                settle: Duration::ZERO,
            },
            link_check_interval: Duration::ZERO,
        }
    }
}

/// How to set up an igbvf port.
#[derive(Clone, Debug)]
pub struct IgbvfConfig {
    /// Port id in the port table.
    pub id: PortId,
    /// Name for logs and errors.
    pub name: String,
    /// RX descriptors per queue (multiple of 8, at most 4096).
    pub rx_ring: usize,
    /// TX descriptors per queue.
    pub tx_ring: usize,
    /// Data room of the pool's buffers (the device is told whole KiB).
    pub data_room: usize,
    /// MTU; SET_LPE asks for MTU + 22 as Linux igbvf does (C.6 step 11).
    pub mtu: u16,
    /// Use this MAC when the PF assigned none (otherwise a random local
    /// one, C.6 step 6).
    pub mac: Option<MacAddr>,
    /// Memory for descriptor rings.
    pub backing: MemoryBacking,
    /// The device's DMA address space: the rings' arena is mapped in it,
    /// and the pool the queues take buffers from must be too.
    pub dma: Arc<dyn DmaMapper>,
    /// Control-path waits.
    pub timing: Timing,
    /// The PCI function (bus mastering, reset): turned off when the port
    /// goes, before the rings' memory is unmapped. `None` only for models
    /// that have no config space.
    pub pci: Option<Arc<dyn PciFunction>>,
    /// Which VF this is: its row of the supported-device table, for the
    /// queue count (C.8) and the quirks (C.9 #14).
    pub device: SupportedDevice,
    /// Receive filters asked of the PF (C.6 step 9).
    pub filters: RxFilters,
}

impl IgbvfConfig {
    /// Defaults: 512-descriptor rings, 2 KiB buffers, MTU 1500, hugepages,
    /// and an 82576 VF (the one QEMU models). For a real device use
    /// [`for_device`](Self::for_device) with its table row.
    pub fn new(id: PortId, name: impl Into<String>, dma: Arc<dyn DmaMapper>) -> IgbvfConfig {
        IgbvfConfig::for_device(id, name, IGBVF_82576, dma)
    }

    /// Defaults for the device `device` (its row of
    /// [`SUPPORTED_DEVICES`](crate::pci::SUPPORTED_DEVICES), e.g. from
    /// [`PciDevice::supported`](crate::pci::PciDevice::supported)).
    pub fn for_device(
        id: PortId,
        name: impl Into<String>,
        device: SupportedDevice,
        dma: Arc<dyn DmaMapper>,
    ) -> IgbvfConfig {
        IgbvfConfig {
            device,
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
            filters: RxFilters::default(),
        }
    }
}

/// Why the control path failed.
#[derive(Debug, thiserror::Error)]
pub enum IgbvfError {
    /// RSTI/RSTD did not clear after the VF reset.
    #[error("PF still in reset state: is the PF interface up?")]
    PfInReset,
    /// A mailbox exchange failed.
    #[error("mailbox: {0}")]
    Mailbox(#[from] MbxError),
    /// Ring memory or size.
    #[error("ring: {0}")]
    Ring(#[from] RingError),
    /// The descriptor arena could not be had or mapped.
    #[error("descriptor memory: {0}")]
    Arena(#[from] ArenaError),
    /// Queue request.
    #[error(transparent)]
    Port(#[from] PortError),
    /// A receive filter refused, with the filters required.
    #[error("receive filters: {0}")]
    Filter(#[from] FilterError),
}

impl From<super::filters::ApplyError> for IgbvfError {
    fn from(e: super::filters::ApplyError) -> Self {
        match e {
            super::filters::ApplyError::Filter(f) => IgbvfError::Filter(f),
            super::filters::ApplyError::Mailbox(m) => IgbvfError::Mailbox(m),
        }
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

/// An igbvf VF port. The control thread owns it; the queues go to workers.
#[derive(Debug)]
pub struct IgbvfPort<R: RegisterSpace + 'static> {
    regs: Arc<R>,
    cfg: IgbvfConfig,
    info: PortInfo,
    mbx: Mailbox,
    /// MAC from the PF's VF_RESET reply, if it had one.
    pf_mac: Option<MacAddr>,
    stats: [HwCounter; 5],
    rx: Vec<RxHandle>,
    tx: Vec<TxHandle>,
    /// Every queue's descriptor ring, carved from one mapped region.
    arena: DmaArena,
    queues_given: bool,
    phase: Phase,
    recoveries: u64,
    /// The device's bit meanings (FLAVOR, or FLAVOR_I350, C.9 #14).
    flavor: Flavor,
    /// When [`service`](Self::service) last ran the mailbox link check.
    last_link_check: Option<Instant>,
    /// Receive filter settings not in force after the last bring-up.
    filter_refusals: FilterOutcome,
}

impl<R: RegisterSpace + 'static> IgbvfPort<R> {
    /// Bring the VF up (C.6 steps 3-8 and SET_LPE): reset, VF_RESET
    /// handshake for the MAC and CTS, SET_MAC_ADDR, SET_LPE, statistics
    /// baseline. Queues are set up by [`Port::queues`].
    pub fn new(regs: Arc<R>, cfg: IgbvfConfig) -> Result<IgbvfPort<R>, IgbvfError> {
        if cfg.device.driver != DriverKind::Igbvf {
            return Err(IgbvfError::Port(PortError::Config {
                port: cfg.name.clone(),
                why: format!("{} is not an igbvf device", cfg.device.name),
            }));
        }
        // Queues by device: 82576 VF 2 + 2, I350 VF 1 + 1 (C.8). On an
        // 82576 VF, RX queue 1 only receives through pool RSS, which a
        // Linux PF never enables for a VF (nor does QEMU model it, C.10.2):
        // it can be set up but stays empty, so all traffic arrives on RX
        // queue 0 (C.8 "Treat the VF as single-queue RX").
        let queues = cfg.device.max_queues as usize;
        let info = PortInfo {
            id: cfg.id,
            name: cfg.name.clone(),
            kind: "igbvf",
            mac: MacAddr::default(),
            capabilities: Capabilities {
                max_rx_queues: queues,
                max_tx_queues: queues,
                max_rx_frame: cfg.data_room & !0x3FF,
            },
        };
        let flavor = flavor_for(cfg.device.quirks);
        let stats = [VFGPRC, VFGPTC, VFGORC, VFGOTC, VFMPRC].map(HwCounter::bits32);
        let arena_bytes =
            queues * (DescRing::arena_bytes(cfg.rx_ring) + DescRing::arena_bytes(cfg.tx_ring));
        let arena = DmaArena::new(arena_bytes, &cfg.backing, &cfg.dma)?;
        let mut port = IgbvfPort {
            regs,
            mbx: Mailbox::new(cfg.timing.mbx),
            cfg,
            info,
            pf_mac: None,
            stats,
            rx: Vec::new(),
            tx: Vec::new(),
            arena,
            queues_given: false,
            phase: Phase::Running,
            recoveries: 0,
            flavor,
            last_link_check: None,
            filter_refusals: FilterOutcome::default(),
        };
        port.bring_up()?;
        Ok(port)
    }

    /// The MAC the PF assigned in its VF_RESET reply, if any.
    pub fn pf_mac(&self) -> Option<MacAddr> {
        self.pf_mac
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
        let t = |i: usize| self.stats[i].total();
        VfStats {
            rx_packets: t(0),
            tx_packets: t(1),
            rx_octets: t(2),
            tx_octets: t(3),
            rx_multicast: t(4),
        }
    }

    /// Read the hardware counters and add what changed (modulo 2^32).
    pub fn update_hw_stats(&mut self) {
        for c in &mut self.stats {
            c.update(&*self.regs);
        }
    }

    fn baseline_hw_stats(&mut self) {
        for c in &mut self.stats {
            c.baseline(&*self.regs);
        }
    }

    fn request(&mut self, msg: &[u32], reply: &mut [u32]) -> Result<u32, MbxError> {
        self.mbx.request(&*self.regs, msg, reply, Duration::ZERO)
    }

    /// CTRL.RST and wait for RSTI/RSTD to clear (C.6 step 4).
    fn reset_hw(&mut self) -> Result<(), IgbvfError> {
        let regs = &*self.regs;
        // Mask interrupts: this PMD polls (C.6 step 3).
        regs.write32(EIMC, !0);
        regs.write32(EIAC, 0);
        let ctrl = regs.read32(CTRL);
        regs.write32(CTRL, ctrl | CTRL_RST);
        self.mbx.clear_cache();
        let t = self.cfg.timing;
        if !self
            .mbx
            .wait_reset_clear(regs, t.reset_polls, t.reset_poll_delay)
        {
            return Err(IgbvfError::PfInReset);
        }
        Ok(())
    }

    /// Reset, VF_RESET, SET_MAC_ADDR, SET_LPE, statistics baseline.
    fn bring_up(&mut self) -> Result<(), IgbvfError> {
        self.reset_hw()?;
        self.mbx.enable();
        // VF_RESET: ACK + MAC, or NACK = no admin MAC (C.5.3, C.9 #7).
        let mut reply = [0u32; 3];
        let settle = self.cfg.timing.reset_reply_settle;
        self.pf_mac = match self
            .mbx
            .request(&*self.regs, &[MSG_VF_RESET], &mut reply, settle)
        {
            Ok(_) => {
                let mac = mac_from_words([reply[1], reply[2]]);
                mac.is_unicast().then_some(mac)
            }
            Err(MbxError::Nack { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        // Without an admin MAC, keep the one in use across PF resets (a new
        // random MAC after each reset silently cuts the VF off: seen in the
        // VM lab); the first bring-up takes the configured or a random one.
        let in_use = (self.info.mac != MacAddr::default()).then_some(self.info.mac);
        let mac = self
            .pf_mac
            .or(in_use)
            .or(self.cfg.mac)
            .unwrap_or_else(random_local_mac);
        // SET_MAC_ADDR; on NACK keep the reset reply's MAC (C.5.3, C.9 #8).
        let [w1, w2] = mac_words(mac);
        let mut one = [0u32; 1];
        match self.request(&[MSG_SET_MAC_ADDR, w1, w2], &mut one) {
            Ok(_) => {}
            Err(MbxError::Nack { .. }) if self.pf_mac.is_some() => {}
            Err(MbxError::Nack { .. }) => {
                log::warn!("{}: PF refused MAC {mac}", self.cfg.name);
            }
            Err(e) => return Err(e.into()),
        }
        self.info.mac = mac;
        // SET_LPE: always, or long frames are dropped (C.9 #11).
        self.request(&[MSG_SET_LPE, self.cfg.mtu as u32 + 22], &mut one)?;
        // RX mode (C.6 step 9), again after every reset (the PF forgot it).
        self.filter_refusals = super::filters::apply(
            &*self.regs,
            &mut self.mbx,
            &self.cfg.name,
            &self.cfg.filters,
        )?;
        self.baseline_hw_stats();
        Ok(())
    }

    /// Receive filter settings the PF (or this driver) did not put in
    /// force at the last bring-up.
    pub fn filter_refusals(&self) -> &[FilterError] {
        &self.filter_refusals.refused
    }

    /// SET_PROMISC with the multicast flag (the only one a Linux PF takes,
    /// C.9 #10).
    pub fn set_allmulti(&mut self, on: bool) -> Result<(), IgbvfError> {
        let flags = if on { PROMISC_MULTICAST } else { 0 };
        let mut one = [0u32; 1];
        self.request(&[MSG_SET_PROMISC | flags], &mut one)?;
        Ok(())
    }

    fn timing(&self) -> ProgramTiming {
        ProgramTiming {
            disable_settle: self.cfg.timing.disable.settle,
        }
    }

    /// Clear every queue's ENABLE and poll it back to 0 (no settle).
    fn disable_queues(&self) -> (Vec<Disabled>, Vec<Disabled>) {
        let regs = &*self.regs;
        let t = self.cfg.timing.disable;
        let rx = self.rx.iter().map(|h| disable_rx(regs, &h.hw.regs, &t));
        let tx = self.tx.iter().map(|h| disable_tx(regs, &h.hw.regs, &t));
        (rx.collect(), tx.collect())
    }

    /// Stop the device's DMA on every queue: clear ENABLE, poll it back to
    /// 0, settle. Then ask each queue's worker to free its buffers, or to
    /// abandon them (never reuse them) where the device did not stop.
    fn stop_queues(&mut self) {
        let t = self.cfg.timing.disable;
        let (rx, tx) = self.disable_queues();
        settle_after(rx.iter().chain(&tx).copied(), &t);
        let ask = |ctl: &QueueCtl, d: Disabled, what: String| {
            if d == Disabled::TimedOut {
                log::error!(
                    "{}: {what} did not stop within {} polls; its buffers are abandoned",
                    self.cfg.name,
                    t.polls
                );
                ctl.request(QueueState::Abandon);
            } else {
                ctl.request(QueueState::Stop);
            }
        };
        for (q, (h, d)) in self.rx.iter().zip(rx).enumerate() {
            ask(&h.ctl, d, format!("RX queue {q}"));
        }
        for (q, (h, d)) in self.tx.iter().zip(tx).enumerate() {
            ask(&h.ctl, d, format!("TX queue {q}"));
        }
    }

    fn queues_stopped(&self) -> bool {
        self.rx.iter().all(|h| h.ctl.is(QueueState::Stopped))
            && self.tx.iter().all(|h| h.ctl.is(QueueState::Stopped))
    }

    /// Bring up again and restart the queues (after a PF reset or a stop).
    fn restart(&mut self) -> Result<ServiceEvent, IgbvfError> {
        // A function-level reset while the VF was down (vfio, the PF, the
        // host) clears PCI_COMMAND: turn bus mastering back on, or the
        // queues come back unable to DMA (the iavf reset sequence restores
        // it the same way, nic-facts.md B "PF-initiated reset").
        if let Some(pci) = &self.cfg.pci {
            if let Err(e) = pci.set_bus_master(true) {
                log::warn!("{}: cannot turn bus mastering on: {e}", self.cfg.name);
                return Ok(ServiceEvent::WaitingForDevice);
            }
        }
        match self.bring_up() {
            Ok(()) => {}
            Err(IgbvfError::PfInReset) => return Ok(ServiceEvent::WaitingForDevice),
            // The real igb PF clears RSTI/RSTD before it answers the
            // mailbox again (seen in the VM lab after `ip link set <pf>
            // mtu ...`): a PF that does not answer yet is still coming
            // back, so the whole bring-up is retried.
            Err(IgbvfError::Mailbox(
                e @ (MbxError::Timeout(_) | MbxError::Busy | MbxError::Disabled),
            )) => {
                log::warn!("{}: PF not answering yet ({e}); retrying", self.cfg.name);
                return Ok(ServiceEvent::WaitingForDevice);
            }
            Err(e) => return Err(e),
        }
        self.program_queues();
        for h in &self.rx {
            h.ctl.request(QueueState::Restart);
        }
        for h in &self.tx {
            h.ctl.request(QueueState::Restart);
        }
        self.phase = Phase::Running;
        Ok(ServiceEvent::Recovered)
    }

    fn port_error(&self, e: IgbvfError) -> PortError {
        PortError::Device {
            port: self.cfg.name.clone(),
            why: e.to_string(),
        }
    }

    fn program_queues(&self) {
        let t = self.timing();
        for h in &self.tx {
            program_tx(&*self.regs, &h.hw, &self.flavor, &t);
        }
        for h in &self.rx {
            program_rx(&*self.regs, &h.hw, &self.flavor, &t);
        }
    }

    /// Control-thread housekeeping, to call periodically: folds hardware
    /// counters, watches the mailbox for a PF reset and runs the recovery:
    /// stop the queues, wait for their workers to release the rings, redo
    /// the bring-up and restart the queues. Software counters are kept.
    ///
    /// A reset is detected from RSTI/RSTD, a PF word without CTS (a
    /// PF_CONTROL_MSG or a NACK, also one answering a request made
    /// elsewhere), or a mailbox that timed out (C.5.3, C.6 step 13, C.9
    /// #13). Like Linux's link check, at most every
    /// [`Timing::link_check_interval`] the PF's word is read and ACKed even
    /// with no message pending: a PF that dropped the VF's CTS answers
    /// that ACK with a NACK, seen by a later call.
    pub fn service(&mut self) -> Result<ServiceEvent, IgbvfError> {
        match self.phase {
            Phase::Halted => Ok(ServiceEvent::Idle),
            Phase::Running => {
                let regs = Arc::clone(&self.regs);
                let regs = &*regs;
                // ---- reset detection (C.9 #13) ----
                let mut reset = self.mbx.check_for_rst(regs);
                if !reset {
                    let now = Instant::now();
                    let due = self.last_link_check.is_none_or(|t| {
                        now.saturating_duration_since(t) >= self.cfg.timing.link_check_interval
                    });
                    let r = if due && self.mbx.lost_contact().is_none() {
                        self.last_link_check = Some(now);
                        self.mbx.check_cts(regs).map(Some)
                    } else {
                        self.mbx.poll_pf_message(regs)
                    };
                    match r {
                        // Busy: PFSTS stays cached for the next call.
                        Ok(_) | Err(MbxError::Busy) => {}
                        Err(_) => reset = true,
                    }
                    if let Some(why) = self.mbx.lost_contact() {
                        log::warn!("{}: {why}: the VF must be reset", self.cfg.name);
                        reset = true;
                    }
                }
                // After a reset the PF may already have zeroed the
                // counters; a fold then would look like a wrap, so only
                // fold while they can be trusted.
                if !reset {
                    self.update_hw_stats();
                    return Ok(ServiceEvent::Idle);
                }
                // ---- end of reset detection ----
                log::warn!("{}: PF reset detected; stopping queues", self.cfg.name);
                self.stop_queues();
                self.phase = Phase::Stopping { restart: true };
                Ok(ServiceEvent::ResetDetected)
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
}

impl<R: RegisterSpace + 'static> IgbvfPort<R> {
    /// Every counter of the port by name, summed over its queues: each
    /// packet the rings drop appears under exactly one reason; the `vf_*`
    /// figures are the VF's hardware counters as of the last
    /// [`update_hw_stats`](Self::update_hw_stats) (C.2 "Statistics").
    pub fn xstats(&self) -> Vec<(&'static str, u64)> {
        let mut x = ring_xstats(
            self.rx.iter().map(|h| &*h.counters),
            self.tx.iter().map(|h| &*h.counters),
        );
        let hw = self.hw_stats();
        x.extend([
            ("pf_reset_recoveries", self.recoveries),
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

impl<R: RegisterSpace + 'static> Port for IgbvfPort<R> {
    type Rx = IgbvfRx<R>;
    type Tx = IgbvfTx<R>;

    fn info(&self) -> &PortInfo {
        &self.info
    }

    fn link(&self) -> LinkState {
        // STATUS (C.3); the speed is "often stale" for a VF.
        let s = self.regs.read32(STATUS);
        let speed_mbps = match s & STATUS_SPEED_MASK {
            STATUS_SPEED_1000 => 1000,
            STATUS_SPEED_100 => 100,
            0 => 10,
            _ => 0,
        };
        LinkState {
            up: s & STATUS_LU != 0 && self.phase == Phase::Running,
            speed_mbps,
            full_duplex: s & STATUS_FD != 0,
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
    ) -> Result<QueueSet<IgbvfRx<R>, IgbvfTx<R>>, PortError> {
        if self.queues_given {
            return Err(PortError::AlreadyStarted(self.info.name.clone()));
        }
        check_queue_counts(&self.info, rx, tx)?;
        if rx > 1 {
            // C.8: a VF's RX queue 1 only receives through pool RSS, which
            // a Linux PF never enables for a VF (QEMU does not model it).
            log::warn!(
                "{}: RX queues past 0 receive nothing unless the PF enables pool RSS \
                 for this VF (a Linux igb PF never does)",
                self.cfg.name
            );
        }
        let err = |e: RingError| PortError::Config {
            port: self.cfg.name.clone(),
            why: e.to_string(),
        };
        let mut rxq = Vec::with_capacity(rx);
        for q in 0..rx {
            let ring = RxRing::new(
                self.cfg.rx_ring,
                self.cfg.data_room,
                LAYOUT.rx(q),
                self.flavor,
                self.cfg.id,
                &self.arena,
            )
            .map_err(err)?;
            rxq.push(ring);
        }
        let mut txq = Vec::with_capacity(tx);
        for q in 0..tx {
            let ring = TxRing::new(self.cfg.tx_ring, LAYOUT.tx(q), self.flavor, &self.arena)
                .map_err(err)?;
            txq.push(ring);
        }
        self.queues_given = true;
        // Registers are programmed and enabled here; each worker posts its
        // buffers and writes the tail on its first burst (enable before
        // tail, C.7).
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
        self.program_queues();
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
        IgbvfPort::xstats(self)
    }

    fn service(&mut self) -> Result<ServiceEvent, PortError> {
        IgbvfPort::service(self).map_err(|e| self.port_error(e))
    }

    /// SET_MULTICAST with the list (at most 30 hashes, C.5.3), and
    /// SET_PROMISC MULTICAST beyond that (the Linux PF also turns
    /// multicast promiscuous on by itself for a count > 30, C.5.3). The
    /// list is kept in the configuration, which every bring-up sends
    /// again (the PF forgets it at a reset, C.5.3 VFLR). While the port
    /// recovers, the list waits for that bring-up.
    fn set_multicast(&mut self, macs: &[MacAddr]) -> Result<MulticastOutcome, PortError> {
        crate::port::check_multicast(&self.info, macs)?;
        let f = self.cfg.filters.with_multicast(macs);
        if !matches!(self.phase, Phase::Running) {
            self.cfg.filters = f;
            return Ok(MulticastOutcome::Pending);
        }
        let regs = Arc::clone(&self.regs);
        let old = std::mem::replace(&mut self.cfg.filters, f.clone());
        match super::filters::apply_multicast(&*regs, &mut self.mbx, &self.cfg.name, &f, &old) {
            Ok(out) => {
                let limit = format!(
                    "one SET_MULTICAST carries at most {} hashes (nic-facts-igbvf C.5.3); \
                     multicast promiscuous asked with SET_PROMISC",
                    super::filters::MAX_MC_HASHES
                );
                let outcome =
                    f.multicast_outcome(super::filters::MAX_MC_HASHES, &limit, &out.refused);
                self.filter_refusals = out;
                Ok(outcome)
            }
            Err(super::filters::ApplyError::Filter(e)) => {
                // Required filters refused: keep the old list as the
                // configuration (what the PF had before).
                self.cfg.filters = old;
                Err(self.port_error(IgbvfError::Filter(e)))
            }
            // A reset met on the way: the recovery sends the new list.
            Err(e) => Err(self.port_error(e.into())),
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
        if let Err(e) = IgbvfPort::service(self) {
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
                    // The PF does not answer yet: recovery goes on in
                    // `service`.
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

impl<R: RegisterSpace + 'static> Drop for IgbvfPort<R> {
    /// Stop every DMA before the rings' arena (and, after the port, the
    /// pool) can be unmapped: queues disabled and read back, the VF reset
    /// (CTRL.RST stops its queues, C.6), bus mastering off. Queues still
    /// held by workers free or abandon their buffers when they drop.
    fn drop(&mut self) {
        let t = self.cfg.timing.disable;
        let (rx, tx) = self.disable_queues();
        let outcomes: Vec<Disabled> = rx.into_iter().chain(tx).collect();
        settle_after(outcomes.iter().copied(), &t);
        if outcomes.contains(&Disabled::TimedOut) {
            log::error!(
                "{}: a queue did not stop; resetting the VF and turning bus mastering off",
                self.cfg.name
            );
        }
        let regs = &*self.regs;
        let ctrl = regs.read32(CTRL);
        regs.write32(CTRL, ctrl | CTRL_RST);
        regs.read32(STATUS);
        if let Some(pci) = &self.cfg.pci {
            if let Err(e) = pci.set_bus_master(false) {
                log::error!("{}: cannot turn bus mastering off: {e}", self.cfg.name);
            }
        }
    }
}

/// An igbvf receive queue.
pub type IgbvfRx<R> = AdvRxQueue<R>;
/// An igbvf transmit queue.
pub type IgbvfTx<R> = AdvTxQueue<R>;
