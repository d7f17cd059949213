//! The iavf port: bring-up (docs/facts/nic-facts.md B.6), queue pairs on
//! iavf's own rings (B.5), one per worker, RSS over the queues asked
//! (B.6 step 8), link from the PF's events, GET_STATS, stop/start, and
//! automatic recovery from a PF reset (B.7, DPDK's auto_reset): the
//! port's `service` sees RESET_IMPENDING, VFGEN_RSTAT leaving the active
//! states, a dead admin queue or a PF that stops answering, lets the
//! queues go once the reset has stopped the device, waits for the PF, and
//! brings everything back.

use super::adminq::AqError;
use super::channel::{VcError, VcTiming, VfChannel};
use super::control::{Control, Shared};
use super::link::{EventAction, Link};
use super::queue::{IavfRx, IavfTx};
use super::regs::*;
use super::reset::{handshake, reset_state, ResetError, ResetTiming};
use super::ring::{DescMem, RingError};
use super::rx::{IavfRxRing, RX_DESC_SIZE};
use super::stats::HwStats;
use super::tx::{IavfTxRing, TX_DESC_SIZE};
use super::virtchnl::{self, caps, EthStats, Op, QueuePair, VectorMap, VfResources};
use crate::mbuf::{PortId, DEFAULT_DATA_ROOM};
use crate::memory::{DmaArena, DmaMapper, MemoryBacking};
use crate::mmio::RegisterSpace;
use crate::net::MacAddr;
use crate::pci::{DriverKind, PciFunction, SupportedDevice};
use crate::pmd::adv_desc::{
    ring_stats, ring_xstats, settle_after, DisableTiming, Disabled, QueueCtl, QueueState,
    RxCounters, TxCounters,
};
use crate::pmd::rx_filters::{FilterError, RxFilters};
use crate::pmd::vf_mailbox::random_local_mac;
use crate::port::{
    check_queue_counts, Capabilities, LinkState, MulticastOutcome, Port, PortError, PortInfo,
    PortStats, QueueSet, ServiceEvent, XStat,
};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Waits of the control path; the defaults are the hardware's (B.3.2,
/// B.6, B.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// virtchnl exchanges.
    pub vc: VcTiming,
    /// Reset waits.
    pub reset: ResetTiming,
    /// After the PF stopped the queues, before their buffers are reused.
    pub disable: DisableTiming,
    /// Least time between two GET_STATS in `service` (DPDK polls the
    /// ARQ from an alarm; 1 s here).
    pub stats_interval: Duration,
    /// How long a reset that was announced (RESET_IMPENDING) or guessed
    /// (a PF that stopped answering) may take to start before the VF
    /// resets itself (B.7: Linux waits up to 500 × 5-10 ms).
    pub reset_start_wait: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            vc: VcTiming::default(),
            reset: ResetTiming::default(),
            disable: DisableTiming::default(),
            stats_interval: Duration::from_secs(1),
            reset_start_wait: Duration::from_secs(5),
        }
    }
}

/// How to set up an iavf port.
#[derive(Clone, Debug)]
pub struct IavfConfig {
    /// Port id.
    pub id: PortId,
    /// Name for logs and errors.
    pub name: String,
    /// RX descriptors per queue (multiple of 32, 64..4096, B.8 #2).
    pub rx_ring: usize,
    /// TX descriptors per queue (same rule).
    pub tx_ring: usize,
    /// Data room of the pool's buffers.
    pub data_room: usize,
    /// MTU; max_pkt_size is MTU + 26 (B.6 step 10).
    pub mtu: u16,
    /// MAC when the PF assigned none (otherwise a random local one).
    pub mac: Option<MacAddr>,
    /// Memory for rings and the admin queue.
    pub backing: MemoryBacking,
    /// The device's DMA address space.
    pub dma: Arc<dyn DmaMapper>,
    /// Control-path waits.
    pub timing: Timing,
    /// The PCI function (bus mastering), `None` for models without one.
    pub pci: Option<Arc<dyn PciFunction>>,
    /// The VF's row of the supported-device table.
    pub device: SupportedDevice,
    /// RSS key; `None`: random. Cut or repeated to the PF's key size.
    pub rss_key: Option<Vec<u8>>,
    /// Receive filters: only promiscuous / all-multicast are sent
    /// (CONFIG_PROMISCUOUS_MODE, B.6 step 14).
    pub filters: RxFilters,
}

impl IavfConfig {
    /// Defaults: 512-descriptor rings, 2 KiB buffers, MTU 1500, hugepages.
    pub fn for_device(
        id: PortId,
        name: impl Into<String>,
        device: SupportedDevice,
        dma: Arc<dyn DmaMapper>,
    ) -> IavfConfig {
        IavfConfig {
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
}

/// Why the control path failed.
#[derive(Debug, thiserror::Error)]
pub enum IavfError {
    /// Bring-up or reset.
    #[error(transparent)]
    Reset(#[from] ResetError),
    /// A virtchnl exchange.
    #[error(transparent)]
    Vc(#[from] VcError),
    /// Admin queue memory.
    #[error(transparent)]
    Aq(#[from] AqError),
    /// Ring memory or size.
    #[error("ring: {0}")]
    Ring(#[from] RingError),
    /// Configuration.
    #[error(transparent)]
    Port(#[from] PortError),
    /// After a reset the PF grants fewer queue pairs than the port runs.
    #[error(
        "the PF now grants {granted} queue pair(s), the port runs {in_use}; reopen the port \
         with fewer queues"
    )]
    QueuesWithdrawn {
        /// Granted.
        granted: usize,
        /// In use.
        in_use: usize,
    },
}

impl IavfError {
    /// A virtchnl exchange went unanswered or its admin queue went away.
    fn exchange_lost(&self) -> bool {
        match self {
            IavfError::Reset(ResetError::Vc(e)) | IavfError::Vc(e) => e.looks_like_reset(),
            _ => false,
        }
    }

    fn pf_not_ready(&self) -> bool {
        match self {
            IavfError::Reset(e) => e.pf_not_ready(),
            IavfError::Vc(e) => e.looks_like_reset(),
            _ => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Queues told to the PF, waiting for the RX workers to post their
    /// buffers before ENABLE_QUEUES; `recovery`: this ends a recovery.
    Enabling {
        recovery: bool,
    },
    Running,
    /// A PF reset is under way: wait until it has started (`started`)
    /// and completed before the queues' buffers may go (the reset is what
    /// stops the device, B.7). `since`: when it was seen.
    ResetPending {
        started: bool,
        since: Instant,
    },
    Stopping {
        restart: bool,
    },
    Restarting,
    Halted,
}

/// Resets detected, by what showed them.
#[derive(Clone, Copy, Debug, Default)]
struct ResetCounts {
    event: u64,
    aq_dead: u64,
    rstat: u64,
    no_answer: u64,
}

#[derive(Debug)]
struct RxHandle {
    ctl: Arc<QueueCtl>,
    /// The tail the worker wrote at its (re)start.
    start_tail: Arc<AtomicU32>,
    counters: Arc<RxCounters>,
    iova: u64,
    count: usize,
    buf_size: u32,
}

#[derive(Debug)]
struct TxHandle {
    ctl: Arc<QueueCtl>,
    counters: Arc<TxCounters>,
    iova: u64,
    count: usize,
}

/// An iavf VF port.
#[derive(Debug)]
pub struct IavfPort<R: RegisterSpace + 'static> {
    regs: Arc<R>,
    shared: Arc<Shared<R>>,
    cfg: IavfConfig,
    info: PortInfo,
    res: VfResources,
    link: Link,
    rx: Vec<RxHandle>,
    tx: Vec<TxHandle>,
    arena: Option<DmaArena>,
    queues_given: bool,
    phase: Phase,
    recoveries: u64,
    resets: ResetCounts,
    hw: HwStats,
    last_stats: Option<Instant>,
    rss_key: Vec<u8>,
    /// RSS in force: the queues the LUT spreads over (0: off).
    rss_queues: usize,
    /// `stop` came during a reset: halt once the reset has stopped the
    /// queues instead of bringing them back.
    halt_after_reset: bool,
    /// The last stop could not be shown done (the PF answered neither
    /// DISABLE_QUEUES nor RESET_VF; the buffers were abandoned): the
    /// device may still run the rings, so a VF reset must stop them
    /// before they are used again.
    rings_may_run: bool,
    /// Receive-filter requests (multicast groups, VLANs, promiscuous) the
    /// PF refused and the port went on without (filters not required).
    filters_refused: u64,
    /// Multicast promiscuous asked because the PF refused part of the
    /// multicast list ([`Port::set_multicast`]); asked again at each
    /// bring-up.
    multicast_promisc: bool,
}

fn random_bytes(n: usize) -> Vec<u8> {
    let s = std::collections::hash_map::RandomState::new();
    (0..n)
        .map(|i| {
            let mut h = s.build_hasher();
            h.write_usize(i);
            h.finish() as u8
        })
        .collect()
}

impl<R: RegisterSpace + 'static> IavfPort<R> {
    /// Bring the VF up (B.6 steps 2-5, 12): reset wait, admin queue,
    /// VERSION, GET_VF_RESOURCES, the MAC. Queues come with
    /// [`Port::queues`].
    pub fn new(regs: Arc<R>, cfg: IavfConfig) -> Result<IavfPort<R>, IavfError> {
        if cfg.device.driver != DriverKind::Iavf {
            return Err(IavfError::Port(PortError::Config {
                port: cfg.name.clone(),
                why: format!("{} is not an iavf device", cfg.device.name),
            }));
        }
        let chan = VfChannel::new(&cfg.backing, &cfg.dma, cfg.timing.vc)?;
        let shared = Arc::new(Shared {
            ctl: Mutex::new(Control {
                regs: Arc::clone(&regs),
                chan,
                vsi_id: 0,
                rx_enabled: 0,
                tx_enabled: 0,
                reset: cfg.timing.reset,
                closed: false,
            }),
            link_up: AtomicBool::new(false),
        });
        let info = PortInfo {
            id: cfg.id,
            name: cfg.name.clone(),
            kind: "iavf",
            mac: MacAddr::default(),
            capabilities: Capabilities {
                max_rx_queues: 1,
                max_tx_queues: 1,
                max_rx_frame: cfg.data_room.min(super::rx::RX_BUF_MAX) & !127,
            },
        };
        let mut port = IavfPort {
            regs,
            shared,
            cfg,
            info,
            res: VfResources {
                num_vsis: 0,
                num_queue_pairs: 0,
                max_vectors: 0,
                max_mtu: 0,
                cap_flags: 0,
                rss_key_size: 0,
                rss_lut_size: 0,
                vsi_id: 0,
                vsi_queue_pairs: 0,
                mac: MacAddr::default(),
            },
            link: Link::default(),
            rx: Vec::new(),
            tx: Vec::new(),
            arena: None,
            queues_given: false,
            phase: Phase::Running,
            recoveries: 0,
            resets: ResetCounts::default(),
            hw: HwStats::default(),
            last_stats: None,
            rss_key: Vec::new(),
            rss_queues: 0,
            halt_after_reset: false,
            rings_may_run: false,
            filters_refused: 0,
            multicast_promisc: false,
        };
        // A PF reset during the handshake (B.7) drops the exchange under
        // way; once the reset shows, the bring-up starts over (its first
        // step waits for the reset to complete). A PF that is merely
        // silent shows no reset: its timeout is the error.
        let mut retries = 0;
        loop {
            match port.bring_up() {
                Ok(()) => return Ok(port),
                Err(e) if retries < 3 && e.exchange_lost() && port.reset_under_way() => {
                    retries += 1;
                    log::warn!("{}: PF reset during bring-up ({e}); again", port.cfg.name);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// VFGEN_RSTAT out of VFACTIVE or the admin queue disabled: a reset
    /// has started or is finishing (B.7, B.3.2 "liveness").
    fn reset_under_way(&self) -> bool {
        reset_state(&*self.regs) != VFR_VFACTIVE
            || self.shared.lock().chan.alive(&*self.regs).is_err()
    }

    /// What GET_VF_RESOURCES granted at the last bring-up.
    pub fn resources(&self) -> &VfResources {
        &self.res
    }

    /// RX queues RSS spreads over (0: off).
    pub fn rss_queues(&self) -> usize {
        self.rss_queues
    }

    /// The link as the PF's events last said.
    pub fn pf_link(&self) -> Link {
        self.link
    }

    /// Handshake and MAC (B.6 steps 2-5, 12): the PF's MAC when it gave
    /// a valid one, else the configured or a random local one, added as
    /// the primary filter.
    fn bring_up(&mut self) -> Result<(), IavfError> {
        let regs = Arc::clone(&self.regs);
        let t = self.cfg.timing.reset;
        let mut ctl = self.shared.lock();
        ctl.rx_enabled = 0;
        ctl.tx_enabled = 0;
        let res = handshake(&*regs, &mut ctl.chan, &t)?;
        ctl.vsi_id = res.vsi_id;
        let pf_mac = res.mac;
        let mac = if pf_mac.is_unicast() && pf_mac != MacAddr::default() {
            pf_mac
        } else {
            // Keep the MAC across resets: the one chosen first.
            let kept = (self.info.mac != MacAddr::default()).then_some(self.info.mac);
            kept.or(self.cfg.mac).unwrap_or_else(random_local_mac)
        };
        let msg = virtchnl::eth_addr_list(res.vsi_id, &[(mac, virtchnl::ETH_ADDR_PRIMARY)]);
        ctl.request(Op::AddEthAddr, &msg)?;
        // The PF forgets every other filter at a reset (B.7), so they go
        // with each bring-up: multicast groups as EXTRA addresses (B.6
        // step 12), VLANs with ADD_VLAN when the PF granted VLAN.
        let f = &self.cfg.filters;
        let mut asks: Vec<(Op, Vec<u8>)> = Vec::new();
        if !f.multicast.is_empty() {
            let list: Vec<_> = f
                .multicast
                .iter()
                .map(|m| (*m, virtchnl::ETH_ADDR_EXTRA))
                .collect();
            // Chunks that fit the 4096-byte buffer (B.4.4 upper bound).
            for c in list.chunks(virtchnl::MAX_ADDRS_PER_MSG) {
                asks.push((Op::AddEthAddr, virtchnl::eth_addr_list(res.vsi_id, c)));
            }
        }
        if !f.vlans.is_empty() {
            for c in f.vlans.chunks((4096 - 4) / 2 - 1) {
                asks.push((Op::AddVlan, virtchnl::vlan_filter_list(res.vsi_id, c)));
            }
        }
        for (op, msg) in asks {
            let r = if op == Op::AddVlan && res.cap_flags & caps::VLAN == 0 {
                Err(VcError::Status {
                    op,
                    status: virtchnl::VcStatus::NotSupported,
                })
            } else {
                ctl.request(op, &msg)
            };
            match r {
                Ok(_) => {}
                Err(e) if f.required || e.looks_like_reset() => return Err(e.into()),
                Err(e) => {
                    self.filters_refused += 1;
                    // A refused group is received only through multicast
                    // promiscuous, asked with the queues (B.6 step 14).
                    if op == Op::AddEthAddr && !f.takes_all_multicast() {
                        self.multicast_promisc = true;
                    }
                    log::warn!("{}: receive filter refused: {e}", self.cfg.name)
                }
            }
        }
        drop(ctl);
        self.info.mac = mac;
        self.res = res;
        let n = res.queue_pairs();
        self.info.capabilities.max_rx_queues = n;
        self.info.capabilities.max_tx_queues = n;
        self.hw.fold();
        self.last_stats = None;
        Ok(())
    }

    /// The runtime half of [`Port::set_multicast`]: the list moves from
    /// `old` to `f`. A reset met on the way is an error; the recovery
    /// sends `f`, already the configuration.
    fn send_multicast(
        &mut self,
        old: &RxFilters,
        f: &RxFilters,
    ) -> Result<MulticastOutcome, IavfError> {
        // The groups of `a` not in `b`, as EXTRA addresses.
        let minus = |a: &RxFilters, b: &RxFilters| -> Vec<_> {
            a.multicast
                .iter()
                .filter(|m| !b.multicast.contains(m))
                .map(|m| (*m, virtchnl::ETH_ADDR_EXTRA))
                .collect()
        };
        let (gone, new) = (minus(old, f), minus(f, old));
        let mut ctl = self.shared.lock();
        let vsi = ctl.vsi_id;
        // Refused additions: groups the PF does not let through. A refused
        // removal (a group the PF never took) changes no reception: only
        // logged and counted.
        let mut refused = Vec::new();
        for (op, list) in [(Op::DelEthAddr, &gone), (Op::AddEthAddr, &new)] {
            for c in list.chunks(virtchnl::MAX_ADDRS_PER_MSG) {
                match ctl.request(op, &virtchnl::eth_addr_list(vsi, c)) {
                    Ok(_) => {}
                    Err(e) if f.required || e.looks_like_reset() => return Err(e.into()),
                    Err(e) => {
                        self.filters_refused += 1;
                        let what = format!("{op:?} of {} multicast group(s): {e}", c.len());
                        log::warn!("{}: receive filter refused: {what}", self.cfg.name);
                        if op == Op::AddEthAddr {
                            refused.push(FilterError::Refused { what });
                        }
                    }
                }
            }
        }
        // A refused group is received only through multicast promiscuous.
        let want = !refused.is_empty() && !f.takes_all_multicast();
        let mut promisc = None;
        if want != self.multicast_promisc && !f.takes_all_multicast() {
            let flags = if want { virtchnl::PROMISC_MULTICAST } else { 0 };
            match ctl.request(Op::ConfigPromiscuousMode, &virtchnl::promisc(vsi, flags)) {
                Ok(_) => self.multicast_promisc = want,
                Err(e) if e.looks_like_reset() => return Err(e.into()),
                Err(e) => {
                    self.filters_refused += 1;
                    promisc = Some(e.to_string());
                }
            }
        }
        drop(ctl);
        Ok(if f.takes_all_multicast() {
            MulticastOutcome::AcceptsAll
        } else if let (true, Some(e)) = (want, &promisc) {
            MulticastOutcome::Partial {
                why: format!("the PF refused part of the list, and multicast promiscuous ({e})"),
            }
        } else if let Some(e) = promisc {
            // Leaving multicast promiscuous refused: more than the list
            // still arrives.
            MulticastOutcome::AllMulticast {
                why: format!("multicast promiscuous could not be turned off ({e})"),
            }
        } else if want {
            let why: Vec<String> = refused.iter().map(ToString::to_string).collect();
            MulticastOutcome::AllMulticast {
                why: format!(
                    "{}; multicast promiscuous asked, which only a trusted VF gets (the \
                     PF answers SUCCESS either way, nic-facts B.6 step 14)",
                    why.join("; ")
                ),
            }
        } else {
            MulticastOutcome::Exact
        })
    }

    /// Tell the PF the queues (B.6 steps 10-12, 14): CONFIG_VSI_QUEUES,
    /// CONFIG_IRQ_MAP with every queue on a vector (B.8 #3), RSS,
    /// promiscuous mode; then ask the workers to post their RX buffers
    /// and write the tails. ENABLE_QUEUES waits for that
    /// ([`Self::enable_when_posted`]): the RX tail is written before the
    /// queue is enabled (B.6 step 9, B.8 #5).
    fn configure_queues(&mut self) -> Result<(), IavfError> {
        let n = self.rx.len().max(self.tx.len());
        let max_pkt = self.cfg.mtu as u32 + 26;
        let pairs: Vec<QueuePair> = (0..n)
            .map(|q| {
                let mut p = QueuePair::default();
                if let Some(t) = self.tx.get(q) {
                    p.tx_ring_len = t.count as u16;
                    p.tx_ring_addr = t.iova;
                }
                if let Some(r) = self.rx.get(q) {
                    p.rx_ring_len = r.count as u32;
                    p.rx_ring_addr = r.iova;
                    p.databuffer_size = r.buf_size;
                    p.max_pkt_size = max_pkt.min(16383);
                }
                p
            })
            .collect();
        let vsi = self.res.vsi_id;
        let rx_mask = ((1u64 << self.rx.len()) - 1) as u32;
        let tx_mask = ((1u64 << self.tx.len()) - 1) as u32;
        let wb = self.res.cap_flags & caps::WB_ON_ITR != 0;
        // Vector 1 when the PF gave one beyond the admin queue's (Linux
        // and DPDK put queues there); else vector 0.
        let vector = u16::from(self.res.max_vectors >= 2);
        let mut ctl = self.shared.lock();
        for chunk in pairs.chunks(virtchnl::MAX_PAIRS_PER_MSG) {
            ctl.request(
                Op::ConfigVsiQueues,
                &virtchnl::config_vsi_queues(vsi, chunk),
            )?;
        }
        let map = VectorMap {
            vector_id: vector,
            rxq_map: rx_mask as u16,
            txq_map: tx_mask as u16,
            rxitr_idx: 0,
            txitr_idx: 0,
        };
        ctl.request(Op::ConfigIrqMap, &virtchnl::config_irq_map(vsi, &[map]))?;
        let dyn_ctl = if vector == 0 {
            VFINT_DYN_CTL01
        } else {
            vfint_dyn_ctln1(0)
        };
        self.regs.write32(dyn_ctl, polled_vector_ctl(wb));
        self.rss_queues = 0;
        let rss = self.res.cap_flags & caps::RSS_PF != 0
            && self.res.rss_key_size > 0
            && self.res.rss_lut_size > 0;
        if self.rx.len() > 1 && rss {
            let ks = self.res.rss_key_size as usize;
            if self.rss_key.len() != ks {
                let src = self.cfg.rss_key.clone().unwrap_or_else(|| random_bytes(ks));
                self.rss_key = src.iter().copied().cycle().take(ks).collect();
            }
            ctl.request(Op::ConfigRssKey, &virtchnl::rss_bytes(vsi, &self.rss_key))?;
            let lut: Vec<u8> = (0..self.res.rss_lut_size as usize)
                .map(|i| (i % self.rx.len()) as u8)
                .collect();
            ctl.request(Op::ConfigRssLut, &virtchnl::rss_bytes(vsi, &lut))?;
            // Hash every type the PF can (B.6 step 8): the PF starts with
            // none, so without SET_RSS_HENA nothing is hashed.
            let reply = ctl.request(Op::GetRssHenaCaps, &[])?;
            let hena = virtchnl::decode_hena(&reply).map_err(|err| VcError::Decode {
                op: Op::GetRssHenaCaps,
                err,
            })?;
            if hena != 0 {
                ctl.request(Op::SetRssHena, &virtchnl::rss_hena(hena))?;
            }
            self.rss_queues = self.rx.len();
        }
        let f = &self.cfg.filters;
        if f.promiscuous || f.all_multicast || self.multicast_promisc {
            let mut flags = virtchnl::PROMISC_MULTICAST;
            if f.promiscuous {
                flags |= virtchnl::PROMISC_UNICAST;
            }
            if let Err(e) = ctl.request(Op::ConfigPromiscuousMode, &virtchnl::promisc(vsi, flags)) {
                // Only a trusted VF may (B.6 step 14): refused unless
                // the filters are required. The Linux PFs answer an
                // untrusted VF SUCCESS and change nothing (see
                // `crate::sim::iavf_pf`), and virtchnl has no request to
                // read the mode back: the port cannot tell, and claims
                // nothing about it.
                if f.required || e.looks_like_reset() {
                    return Err(e.into());
                }
                self.filters_refused += 1;
                log::warn!("{}: promiscuous mode refused: {e}", self.cfg.name);
            }
        }
        drop(ctl);
        for h in &self.rx {
            h.ctl.request(QueueState::Restart);
        }
        for h in &self.tx {
            h.ctl.request(QueueState::Restart);
        }
        Ok(())
    }

    /// ENABLE_QUEUES once every RX worker has posted its buffers and
    /// written its tail (its queue answered Restart with Run): B.6 step
    /// 13 after step 9. TX queues need nothing first (their tail is 0 and
    /// every descriptor DONE, B.6 step 9); their workers send nothing
    /// until the port runs with the link up. True once enabled.
    fn enable_when_posted(&mut self) -> Result<bool, IavfError> {
        if !self.rx.iter().all(|h| h.ctl.is(QueueState::Run)) {
            return Ok(false);
        }
        let rx_mask = ((1u64 << self.rx.len()) - 1) as u32;
        let tx_mask = ((1u64 << self.tx.len()) - 1) as u32;
        self.shared.lock().enable(rx_mask, tx_mask)?;
        // The same tail again: no new descriptor for a device that kept
        // the first write, the ring for one that dropped a tail written
        // before the enable (the iavf model does after a PF reset).
        for (q, h) in self.rx.iter().enumerate() {
            // Acquire pairs with the worker's Release store at its start.
            let tail = h.start_tail.load(Ordering::Acquire);
            self.regs.write32(qrx_tail(q as u32), tail);
        }
        Ok(true)
    }

    fn process_events(&mut self) -> bool {
        let regs = Arc::clone(&self.regs);
        let events = self.shared.lock().chan.take_events(&*regs);
        let mut reset = false;
        for e in events {
            reset |= self.link.apply(&e) == EventAction::Reset;
        }
        self.shared
            .set_link_up(self.link.up && self.phase == Phase::Running && !reset);
        reset
    }

    /// A reset was seen: the queues are to be stopped by it, not by us.
    fn reset_detected(&mut self, started: bool) -> ServiceEvent {
        self.shared.set_link_up(false);
        self.link = Link::default();
        self.phase = Phase::ResetPending {
            started,
            since: Instant::now(),
        };
        log::warn!("{}: PF reset; waiting for it to complete", self.cfg.name);
        ServiceEvent::ResetDetected
    }

    fn service_running(&mut self) -> Result<ServiceEvent, IavfError> {
        if self.process_events() {
            self.resets.event += 1;
            return Ok(self.reset_detected(false));
        }
        let regs = Arc::clone(&self.regs);
        if self.shared.lock().chan.alive(&*regs).is_err() {
            self.resets.aq_dead += 1;
            return Ok(self.reset_detected(true));
        }
        let st = reset_state(&*regs);
        if st == VFR_INPROGRESS || st == VFR_DEAD {
            self.resets.rstat += 1;
            return Ok(self.reset_detected(true));
        }
        let now = Instant::now();
        let due = self
            .last_stats
            .is_none_or(|t| now.saturating_duration_since(t) >= self.cfg.timing.stats_interval);
        if due {
            self.last_stats = Some(now);
            match self.fetch_stats() {
                Ok(()) => {}
                Err(IavfError::Vc(e)) if e.looks_like_reset() => {
                    log::warn!("{}: GET_STATS: {e}", self.cfg.name);
                    self.resets.no_answer += 1;
                    return Ok(self.reset_detected(false));
                }
                Err(e) => log::warn!("{}: GET_STATS: {e}", self.cfg.name),
            }
            // Events that came with the reply.
            if self.process_events() {
                self.resets.event += 1;
                return Ok(self.reset_detected(false));
            }
        }
        Ok(ServiceEvent::Idle)
    }

    /// GET_STATS into the totals.
    pub fn fetch_stats(&mut self) -> Result<(), IavfError> {
        let msg = virtchnl::queue_select(self.res.vsi_id, 0, 0);
        let reply = self.shared.lock().request(Op::GetStats, &msg)?;
        let s = EthStats::decode(&reply).map_err(|err| VcError::Decode {
            op: Op::GetStats,
            err,
        })?;
        self.hw.update(&s);
        Ok(())
    }

    fn service_reset_pending(&mut self, started: bool, since: Instant) -> ServiceEvent {
        let regs = Arc::clone(&self.regs);
        let mut started = started;
        if !started {
            let st = reset_state(&*regs);
            started = st == VFR_INPROGRESS
                || st == VFR_DEAD
                || self.shared.lock().chan.alive(&*regs).is_err();
            if !started {
                if since.elapsed() < self.cfg.timing.reset_start_wait {
                    return ServiceEvent::WaitingForDevice;
                }
                // The PF announced a reset and did not start it: reset the
                // VF ourselves, which stops its queues (B.7).
                log::warn!(
                    "{}: announced reset never started; resetting",
                    self.cfg.name
                );
                let d = self.shared.lock().reset_stops_all();
                return self.release_queues(d, !self.halt_after_reset);
            }
        }
        let st = reset_state(&*regs);
        if st != VFR_COMPLETED && st != VFR_VFACTIVE {
            self.phase = Phase::ResetPending {
                started: true,
                since,
            };
            return ServiceEvent::WaitingForDevice;
        }
        // The reset completed: the PF stopped every queue and cleared
        // their contexts (B.7); the buffers may go.
        {
            let mut ctl = self.shared.lock();
            ctl.rx_enabled = 0;
            ctl.tx_enabled = 0;
        }
        self.release_queues(Disabled::Stopped, !self.halt_after_reset)
    }

    /// Ask each worker to free (or, if the device may still run, abandon)
    /// its buffers; the port then waits for them.
    fn release_queues(&mut self, d: Disabled, restart: bool) -> ServiceEvent {
        settle_after([d], &self.cfg.timing.disable);
        let s = if d == Disabled::TimedOut {
            log::error!("{}: queues did not stop; buffers abandoned", self.cfg.name);
            self.rings_may_run = true;
            QueueState::Abandon
        } else {
            QueueState::Stop
        };
        for c in self
            .rx
            .iter()
            .map(|h| &h.ctl)
            .chain(self.tx.iter().map(|h| &h.ctl))
        {
            c.request(s);
        }
        self.phase = Phase::Stopping { restart };
        ServiceEvent::WaitingForQueues
    }

    fn queues_stopped(&self) -> bool {
        self.rx.iter().all(|h| h.ctl.is(QueueState::Stopped))
            && self.tx.iter().all(|h| h.ctl.is(QueueState::Stopped))
    }

    /// Bring the queues back; after a reset (`rehandshake`) the whole
    /// bring-up first.
    fn restart(
        &mut self,
        mut rehandshake: bool,
        recovery: bool,
    ) -> Result<ServiceEvent, IavfError> {
        if let Some(pci) = &self.cfg.pci {
            // A VFLR knocks the VF out of bus mastering (B.6 step 1).
            if let Err(e) = pci.set_bus_master(true) {
                log::warn!("{}: cannot turn bus mastering on: {e}", self.cfg.name);
                return Ok(ServiceEvent::WaitingForDevice);
            }
        }
        if self.rings_may_run {
            // The rings are about to get new buffers and tails: the device
            // must not be running them any more. RESET_VF stops every
            // queue (B.7); until the PF carries it out, wait.
            if self.shared.lock().reset_stops_all() != Disabled::Stopped {
                log::warn!("{}: the VF reset still goes unanswered", self.cfg.name);
                return Ok(ServiceEvent::WaitingForDevice);
            }
            self.rings_may_run = false;
            rehandshake = true;
        }
        if rehandshake {
            match self.bring_up() {
                Ok(()) => {}
                Err(e) if e.pf_not_ready() => {
                    log::warn!("{}: PF not ready yet ({e}); retrying", self.cfg.name);
                    return Ok(ServiceEvent::WaitingForDevice);
                }
                Err(e) => return Err(e),
            }
            let granted = self.res.queue_pairs();
            let in_use = self.rx.len().max(self.tx.len());
            if in_use > granted {
                return Err(IavfError::QueuesWithdrawn { granted, in_use });
            }
        }
        if self.queues_given {
            match self.configure_queues() {
                Ok(()) => {
                    self.phase = Phase::Enabling { recovery };
                    return Ok(ServiceEvent::WaitingForQueues);
                }
                Err(e) if e.pf_not_ready() => {
                    // Reset again meanwhile: the queues were not restarted
                    // (that is the last step), so the whole bring-up is
                    // simply tried again.
                    log::warn!("{}: PF reset during re-configuration ({e})", self.cfg.name);
                    self.phase = Phase::Restarting;
                    return Ok(ServiceEvent::WaitingForDevice);
                }
                Err(e) => return Err(e),
            }
        }
        self.phase = Phase::Running;
        self.process_events();
        Ok(ServiceEvent::Recovered)
    }

    /// Control-thread housekeeping, to call periodically: PF events (link,
    /// reset), admin-queue and VFGEN_RSTAT liveness, GET_STATS every
    /// [`Timing::stats_interval`]; and the recovery from a PF reset.
    pub fn service(&mut self) -> Result<ServiceEvent, IavfError> {
        match self.phase {
            Phase::Halted => Ok(ServiceEvent::Idle),
            Phase::Enabling { recovery } => match self.enable_when_posted() {
                Ok(false) => Ok(ServiceEvent::WaitingForQueues),
                Ok(true) => {
                    self.phase = Phase::Running;
                    self.process_events();
                    if !recovery {
                        return Ok(ServiceEvent::Idle);
                    }
                    self.recoveries += 1;
                    log::info!("{}: recovered from PF reset", self.cfg.name);
                    Ok(ServiceEvent::Recovered)
                }
                Err(e) if e.pf_not_ready() => {
                    log::warn!("{}: ENABLE_QUEUES: {e}", self.cfg.name);
                    self.resets.no_answer += 1;
                    Ok(self.reset_detected(false))
                }
                Err(e) => Err(e),
            },
            Phase::Running => self.service_running(),
            Phase::ResetPending { started, since } => {
                Ok(self.service_reset_pending(started, since))
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
                let ev = self.restart(true, true)?;
                if ev == ServiceEvent::Recovered {
                    self.recoveries += 1;
                    log::info!("{}: recovered from PF reset", self.cfg.name);
                }
                Ok(ev)
            }
        }
    }

    /// The port's counters by name.
    pub fn xstats(&self) -> Vec<XStat> {
        let mut x = ring_xstats(
            self.rx.iter().map(|h| &*h.counters),
            self.tx.iter().map(|h| &*h.counters),
        );
        let hw = self.hw.total();
        let stray = self.shared.lock().chan.stray();
        x.extend([
            ("pf_reset_recoveries", self.recoveries),
            ("reset_pf_event", self.resets.event),
            ("reset_aq_dead", self.resets.aq_dead),
            ("reset_rstat", self.resets.rstat),
            ("reset_no_answer", self.resets.no_answer),
            ("aq_stray_messages", stray),
            ("filters_refused", self.filters_refused),
            ("vf_rx_bytes", hw.rx_bytes),
            ("vf_rx_unicast", hw.rx_unicast),
            ("vf_rx_multicast", hw.rx_multicast),
            ("vf_rx_broadcast", hw.rx_broadcast),
            ("vf_rx_discards", hw.rx_discards),
            ("vf_rx_unknown_protocol", hw.rx_unknown_protocol),
            ("vf_tx_bytes", hw.tx_bytes),
            ("vf_tx_unicast", hw.tx_unicast),
            ("vf_tx_multicast", hw.tx_multicast),
            ("vf_tx_broadcast", hw.tx_broadcast),
            ("vf_tx_discards", hw.tx_discards),
            ("vf_tx_errors", hw.tx_errors),
        ]);
        x
    }

    fn port_error(&self, e: IavfError) -> PortError {
        PortError::Device {
            port: self.cfg.name.clone(),
            why: e.to_string(),
        }
    }
}

impl<R: RegisterSpace + 'static> Port for IavfPort<R> {
    type Rx = IavfRx<R>;
    type Tx = IavfTx<R>;

    fn info(&self) -> &PortInfo {
        &self.info
    }

    fn link(&self) -> LinkState {
        let up = self.link.up && self.phase == Phase::Running;
        LinkState {
            up,
            speed_mbps: if up { self.link.speed_mbps } else { 0 },
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
    ) -> Result<QueueSet<IavfRx<R>, IavfTx<R>>, PortError> {
        if self.queues_given {
            return Err(PortError::AlreadyStarted(self.info.name.clone()));
        }
        check_queue_counts(&self.info, rx, tx)?;
        let cfgerr = |why: String| PortError::Config {
            port: self.cfg.name.clone(),
            why,
        };
        if rx == 0 && tx == 0 {
            // CONFIG_VSI_QUEUES needs at least one pair (B.4.4).
            return Err(cfgerr("no queues asked: iavf needs at least one".into()));
        }
        let bytes = rx * DescMem::arena_bytes(self.cfg.rx_ring, RX_DESC_SIZE)
            + tx * DescMem::arena_bytes(self.cfg.tx_ring, TX_DESC_SIZE);
        let arena = DmaArena::new(bytes.max(1), &self.cfg.backing, &self.cfg.dma)
            .map_err(|e| cfgerr(format!("descriptor memory: {e}")))?;
        let arena = &*self.arena.insert(arena);
        let mut rxr = Vec::with_capacity(rx);
        for q in 0..rx {
            let r = IavfRxRing::new(
                self.cfg.rx_ring,
                self.cfg.data_room,
                qrx_tail(q as u32),
                self.cfg.id,
                arena,
            )
            .map_err(|e| cfgerr(e.to_string()))?;
            rxr.push(r);
        }
        let mut txr = Vec::with_capacity(tx);
        for q in 0..tx {
            let r = IavfTxRing::new(self.cfg.tx_ring, qtx_tail(q as u32), arena)
                .map_err(|e| cfgerr(e.to_string()))?;
            txr.push(r);
        }
        self.queues_given = true;
        self.rx = rxr
            .iter()
            .map(|r| RxHandle {
                ctl: Arc::new(QueueCtl::new(QueueState::Stopped)),
                start_tail: Arc::new(AtomicU32::new(0)),
                counters: Arc::clone(r.counters()),
                iova: r.iova(),
                count: r.count(),
                buf_size: r.buf_size(),
            })
            .collect();
        self.tx = txr
            .iter()
            .map(|r| TxHandle {
                ctl: Arc::new(QueueCtl::new(QueueState::Stopped)),
                counters: Arc::clone(r.counters()),
                iova: r.iova(),
                count: r.count(),
            })
            .collect();
        let t = self.cfg.timing.disable;
        let rx_out = rxr
            .into_iter()
            .zip(&self.rx)
            .enumerate()
            .map(|(q, (ring, h))| {
                IavfRx::new(
                    ring,
                    q as u32,
                    Arc::clone(&h.start_tail),
                    Arc::clone(&self.shared),
                    Arc::clone(&self.regs),
                    Arc::clone(&h.ctl),
                    t,
                )
            })
            .collect();
        let tx_out = txr
            .into_iter()
            .zip(&self.tx)
            .enumerate()
            .map(|(q, (ring, h))| {
                IavfTx::new(
                    ring,
                    q as u32,
                    Arc::clone(&self.shared),
                    Arc::clone(&self.regs),
                    Arc::clone(&h.ctl),
                    t,
                )
            })
            .collect();
        // The queues exist before the PF is told about them, so that if
        // this fails their drop asks the PF to stop whatever it enabled.
        if let Err(e) = self.configure_queues() {
            if e.pf_not_ready() {
                // A PF reset (or a PF gone quiet) during the configuration:
                // the queues are handed out all the same, still stopped
                // (they are asked to start only once every message went
                // through), and `service` brings them up once the reset is
                // over, as after any reset.
                log::warn!("{}: PF reset while configuring queues ({e})", self.cfg.name);
                let aq_dead = self.shared.lock().chan.alive(&*self.regs).is_err();
                if aq_dead {
                    self.resets.aq_dead += 1;
                } else {
                    self.resets.no_answer += 1;
                }
                self.reset_detected(aq_dead);
                return Ok((rx_out, tx_out));
            }
            // Refused: nothing runs; the queues go and may be asked again.
            drop((rx_out, tx_out));
            self.rx.clear();
            self.tx.clear();
            self.arena = None;
            self.queues_given = false;
            return Err(self.port_error(e));
        }
        // ENABLE_QUEUES follows in `service` once the RX workers posted
        // their buffers (B.6 step 9 before step 13).
        self.phase = Phase::Enabling { recovery: false };
        Ok((rx_out, tx_out))
    }

    fn xstats(&self) -> Vec<XStat> {
        IavfPort::xstats(self)
    }

    fn service(&mut self) -> Result<ServiceEvent, PortError> {
        IavfPort::service(self).map_err(|e| self.port_error(e))
    }

    /// Groups gone are removed with DEL_ETH_ADDR and new ones added with
    /// ADD_ETH_ADDR as EXTRA addresses (B.4.3, B.6 step 12), in chunks
    /// that fit the AQ buffer (B.4.4). Virtchnl has no fixed group limit:
    /// the PF's limit shows as a refused ADD_ETH_ADDR, and then the port
    /// asks for multicast promiscuous (CONFIG_PROMISCUOUS_MODE, B.4.3),
    /// which only a trusted VF gets and which the Linux PFs answer
    /// SUCCESS either way (B.6 step 14): the outcome says so. The list
    /// is the configuration every bring-up sends (the PF forgets it at a
    /// reset, B.7); while the port recovers, it waits for that bring-up.
    fn set_multicast(&mut self, macs: &[MacAddr]) -> Result<MulticastOutcome, PortError> {
        crate::port::check_multicast(&self.info, macs)?;
        let f = self.cfg.filters.with_multicast(macs);
        if !matches!(self.phase, Phase::Running | Phase::Enabling { .. }) {
            self.cfg.filters = f;
            return Ok(MulticastOutcome::Pending);
        }
        let old = std::mem::replace(&mut self.cfg.filters, f.clone());
        self.send_multicast(&old, &f)
            .map_err(|e| self.port_error(e))
    }

    /// One [`service`](Self::service) with the counter read due now: it
    /// takes the same path as the periodic read (the reset checks first), so
    /// counters a reset zeroed are never folded in as a wrap.
    fn refresh_stats(&mut self) {
        if !matches!(self.phase, Phase::Running) {
            return;
        }
        self.last_stats = None;
        if let Err(e) = IavfPort::service(self) {
            log::debug!("{}: counters not refreshed: {e}", self.cfg.name);
        }
    }

    fn stop(&mut self) -> Result<(), PortError> {
        match self.phase {
            Phase::Running | Phase::Enabling { .. } => {
                self.shared.set_link_up(false);
                let d = self.shared.lock().disable(u32::MAX, u32::MAX);
                self.release_queues(d, false);
            }
            Phase::Restarting => self.phase = Phase::Halted,
            // The reset stops the device; the queues are released when it
            // completes, and the port halts then.
            Phase::ResetPending { .. } => self.halt_after_reset = true,
            Phase::Stopping { .. } => self.phase = Phase::Stopping { restart: false },
            Phase::Halted => {}
        }
        Ok(())
    }

    fn start(&mut self) -> Result<(), PortError> {
        match self.phase {
            Phase::Halted => {
                self.halt_after_reset = false;
                // After a stop the VF is still initialised; after an
                // interrupted recovery it needs the full bring-up.
                let ok = self.shared.lock().chan.alive(&*self.regs).is_ok();
                match self.restart(!ok, false) {
                    Ok(ServiceEvent::WaitingForDevice) => {
                        // The PF does not answer yet: `service` goes on.
                        if self.phase == Phase::Halted {
                            self.phase = Phase::Restarting;
                        }
                        Ok(())
                    }
                    // Running, or Enabling until the RX workers posted.
                    Ok(_) => Ok(()),
                    Err(e) => Err(self.port_error(e)),
                }
            }
            Phase::Stopping { .. } => Err(PortError::Device {
                port: self.cfg.name.clone(),
                why: "still stopping: wait for the stop to complete".into(),
            }),
            Phase::ResetPending { .. } => {
                self.halt_after_reset = false;
                Ok(())
            }
            Phase::Running | Phase::Enabling { .. } | Phase::Restarting => Ok(()),
        }
    }
}

impl<R: RegisterSpace + 'static> Drop for IavfPort<R> {
    /// Stop every DMA before rings, admin queue and pool can be unmapped:
    /// DISABLE_QUEUES (or a VF reset), RESET_VF as DPDK's close does
    /// (B.6 "Stop and close"), the admin queue shut down, bus mastering
    /// off.
    fn drop(&mut self) {
        self.shared.set_link_up(false);
        let regs = Arc::clone(&self.regs);
        let mut ctl = self.shared.lock();
        let d = ctl.disable(u32::MAX, u32::MAX);
        settle_after([d], &self.cfg.timing.disable);
        if let Err(e) = ctl.chan.send_only(&*regs, Op::ResetVf, &[]) {
            log::warn!("{}: RESET_VF at close: {e}", self.cfg.name);
        }
        ctl.chan.shutdown(&*regs);
        ctl.closed = true;
        drop(ctl);
        if let Some(pci) = &self.cfg.pci {
            if let Err(e) = pci.set_bus_master(false) {
                log::error!("{}: cannot turn bus mastering off: {e}", self.cfg.name);
            }
        }
    }
}
