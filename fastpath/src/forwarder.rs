//! Start, watch and stop a set of workers forwarding between ports.
//!
//! The forwarder builds the buffer pool and the ports, gives every worker
//! one RX and one TX queue on every port (queue `w` belongs to worker `w`),
//! spawns one pinned thread per fast-path core, and on stop joins them and
//! checks that every buffer came back to the pool.

use crate::any_port::{AnyPort, AnyRx, AnyTx};
use crate::counters::{CoreCounters, CoreSnapshot};
use crate::fwd_mode::{FwdMode, MacRewrite};
use crate::worker::{RxBinding, Stopped, Worker};
use config::cpus::{allowed_cpus, check_requested, CpuConfigError};
use drivers::burst::{DEFAULT_BURST, MAX_BURST};
use drivers::cpu::{pin_current_thread, CpuId, CpuSet};
use drivers::mbuf::PortId;
use drivers::memory::DmaMapper;
use drivers::memory::MemoryBacking;
use drivers::net::MacAddr;
use drivers::pci::{PciAddress, Sysfs};
use drivers::pmd::{open_vf, OpenError, VfConfig};
use drivers::pool::{Pool, PoolConfig, PoolError, DEFAULT_CACHE_SIZE};
use drivers::port::null::{NullPort, DEFAULT_PACKET_SIZE};
use drivers::port::ring_pair::{RingPort, DEFAULT_RING_SIZE};
use drivers::port::{LinkState, Port, PortError, PortInfo, PortStats, ServiceEvent, XStat};
use drivers::vfio::{Container, VfioError};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A port as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortKind {
    /// [`NullPort`]: RX makes packets, TX frees them.
    Null,
    /// [`RingPort`]: consecutive `ring` ports are connected in pairs.
    Ring,
    /// A VF at this PCI address, driven through vfio-pci by the PMD the
    /// supported-device table names for it.
    Pci(PciAddress),
}

impl FromStr for PortKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "null" => Ok(PortKind::Null),
            "ring" => Ok(PortKind::Ring),
            _ => match s.parse::<PciAddress>() {
                Ok(a) => Ok(PortKind::Pci(a)),
                Err(e) => Err(format!(
                    "unknown port {s:?}: expected null, ring or a VF's PCI address \
                     such as 0000:01:10.0 ({e})"
                )),
            },
        }
    }
}

impl fmt::Display for PortKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortKind::Null => f.write_str("null"),
            PortKind::Ring => f.write_str("ring"),
            PortKind::Pci(a) => write!(f, "{a}"),
        }
    }
}

/// Which CPUs the workers run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreChoice {
    /// This many cores, picked from the allowed CPUs (the first allowed CPU
    /// is left to the control thread when there is more than one).
    Count(usize),
    /// Exactly these CPUs.
    List(CpuSet),
}

/// How to run.
#[derive(Debug, Clone)]
pub struct ForwarderConfig {
    /// Ports, in port-id order.
    pub ports: Vec<PortKind>,
    /// Worker cores.
    pub cores: CoreChoice,
    /// Forwarding mode.
    pub mode: FwdMode,
    /// Burst size.
    pub burst: usize,
    /// Bursts sent on every TX queue at start (seeds ring loops).
    pub tx_first: usize,
    /// Buffers in the pool (None: enough for the rings, queues and caches).
    pub nb_mbuf: Option<u32>,
    /// Per-core cache size.
    pub cache_size: usize,
    /// Memory for the pool.
    pub backing: MemoryBacking,
    /// Length of packets made by null ports.
    pub packet_size: u16,
    /// Ring size per queue and direction for ring ports.
    pub ring_size: usize,
    /// Peer (destination) MAC per port for the mac mode; missing entries
    /// default to testpmd's 02:00:00:00:00:<port>.
    pub eth_peers: Vec<MacAddr>,
}

impl Default for ForwarderConfig {
    fn default() -> Self {
        ForwarderConfig {
            ports: vec![PortKind::Null, PortKind::Null],
            cores: CoreChoice::Count(1),
            mode: FwdMode::Io,
            burst: DEFAULT_BURST,
            tx_first: 0,
            nb_mbuf: None,
            cache_size: DEFAULT_CACHE_SIZE,
            backing: MemoryBacking::default(),
            packet_size: DEFAULT_PACKET_SIZE,
            ring_size: DEFAULT_RING_SIZE,
            eth_peers: Vec::new(),
        }
    }
}

/// Why the forwarder did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Nonsense in the configuration.
    #[error("{0}")]
    Config(String),
    /// CPUs not allowed or unreadable.
    #[error(transparent)]
    Cpus(#[from] CpuConfigError),
    /// The pool could not be built (the message says how to fix it).
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// A port could not be set up.
    #[error(transparent)]
    Port(#[from] PortError),
    /// A VF could not be found, opened or brought up (the message names
    /// the fix).
    #[error(transparent)]
    Vf(#[from] OpenError),
    /// vfio refused (the message names the fix).
    #[error(transparent)]
    Vfio(#[from] VfioError),
    /// The stop flag given to [`Forwarder::start_interruptible`] was set
    /// (a signal) before the workers started. Not a failure: everything
    /// built so far was torn down, and `report` holds the buffer audit.
    #[error("start-up interrupted ({phase})")]
    Interrupted {
        /// The step under way.
        phase: &'static str,
        /// The audit of what had been built (no cores, no ports).
        report: Box<FinalReport>,
    },
    /// A worker thread could not be started or pinned.
    #[error("worker on CPU {cpu}: {why}")]
    Worker {
        /// The CPU.
        cpu: CpuId,
        /// What failed.
        why: String,
    },
}

/// A running forwarder.
pub struct Forwarder {
    // Drop order matters (fields drop in declaration order, after `Drop`
    // joined the workers): ports first (each device port stops its DMA,
    // resets its device and turns bus mastering off, then unmaps its
    // rings), then the pool (unmapped from the devices' address space
    // when its last buffer is back), then the container.
    ports: Vec<AnyPort>,
    pool: Pool,
    container: Option<Arc<Container>>,
    cpus: Vec<CpuId>,
    counters: Vec<Arc<CoreCounters>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Stopped<AnyRx, AnyTx>>>,
    started: Instant,
    mode: FwdMode,
    burst: usize,
}

/// Counters at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Time since start.
    pub elapsed: Duration,
    /// Per worker: its CPU and counters.
    pub cores: Vec<(CpuId, CoreSnapshot)>,
    /// Per port: facts, counters, link.
    pub ports: Vec<(PortInfo, PortStats, LinkState)>,
    /// Per port: every named counter (drops by reason, device counters).
    pub xstats: Vec<Vec<XStat>>,
    /// Buffers in the pool's shared ring.
    pub pool_available: usize,
    /// Buffers in the pool.
    pub pool_count: usize,
}

/// The result of a stopped run.
#[derive(Debug, Clone)]
pub struct FinalReport {
    /// Counters at the end.
    pub last: Snapshot,
    /// Forwarding mode.
    pub mode: FwdMode,
    /// Burst size.
    pub burst: usize,
    /// Workers that panicked (their buffers were still returned).
    pub panicked: Vec<CpuId>,
    /// Buffers back in the pool after everything was torn down.
    pub buffers_returned: usize,
}

impl FinalReport {
    /// True when every buffer of the pool came back.
    pub fn all_buffers_returned(&self) -> bool {
        self.buffers_returned == self.last.pool_count
    }
}

impl Forwarder {
    /// Build everything and start the workers.
    pub fn start(cfg: &ForwarderConfig) -> Result<Forwarder, StartError> {
        Self::start_interruptible(cfg, &AtomicBool::new(false))
    }

    /// [`start`](Self::start), giving up between steps (VF checks, vfio,
    /// the pool, each port, the queues) as soon as `interrupt` is set, with
    /// [`StartError::Interrupted`] and the buffer audit of what was built.
    /// Once the workers run, `interrupt` is no longer read here: the caller
    /// stops the forwarder, and a worker still seeding `tx_first` bursts
    /// stops between two bursts.
    pub fn start_interruptible(
        cfg: &ForwarderConfig,
        interrupt: &AtomicBool,
    ) -> Result<Forwarder, StartError> {
        let started = Instant::now();
        // Relaxed: the flag carries no data (the signal watcher sets it).
        // Used before the pool exists; later steps audit it.
        let check = |phase: &'static str| {
            if interrupt.load(Ordering::Relaxed) {
                Err(interrupted(cfg, started, phase, None))
            } else {
                Ok(())
            }
        };
        check("checking the VFs")?;
        if cfg.ports.is_empty() {
            return Err(StartError::Config("no ports given".into()));
        }
        if cfg.burst == 0 || cfg.burst > MAX_BURST {
            return Err(StartError::Config(format!(
                "burst {} must be between 1 and {MAX_BURST}",
                cfg.burst
            )));
        }
        let rings = cfg.ports.iter().filter(|k| **k == PortKind::Ring).count();
        if rings % 2 != 0 {
            return Err(StartError::Config(format!(
                "ring ports come in connected pairs; {rings} given"
            )));
        }
        let vfs = preflight_vfs(cfg)?;
        check("opening vfio")?;
        // One container (one IOMMU address space) for every VF. Their
        // groups are attached first: the IOMMU type is set with the first
        // group, and only then can the pool be mapped.
        let container = if vfs.is_empty() {
            None
        } else {
            let c = Arc::new(Container::open()?);
            for &a in &vfs {
                c.attach(a)?;
            }
            Some(c)
        };
        check("building the buffer pool")?;
        let cpus = choose_cpus(&cfg.cores)?;
        let workers = cpus.len();
        let pool_cfg = PoolConfig {
            cache_size: cfg.cache_size,
            backing: cfg.backing.clone(),
            dma: container.clone().map(|c| c as Arc<dyn DmaMapper>),
            ..PoolConfig::new(
                "mbuf_pool",
                cfg.nb_mbuf.unwrap_or_else(|| default_nb_mbuf(cfg, workers)),
            )
        };
        if cfg.packet_size as usize > pool_cfg.data_room as usize || cfg.packet_size < 14 {
            return Err(StartError::Config(format!(
                "packet size {} must be between 14 and the data room {}",
                cfg.packet_size, pool_cfg.data_room
            )));
        }
        let pool = match Pool::new_interruptible(&pool_cfg, interrupt) {
            Ok(p) => p,
            // The memory was released; no buffer was cut yet.
            Err(e) if e.is_interrupted() => {
                return Err(interrupted(cfg, started, "building the buffer pool", None))
            }
            Err(e) => return Err(e.into()),
        };
        let Some(mut ports) = build_ports(cfg, workers, &pool, container.as_ref(), interrupt)?
        else {
            // The ports built so far were dropped (their buffers are back).
            return Err(interrupted(cfg, started, "opening the ports", Some(&pool)));
        };
        if interrupt.load(Ordering::Relaxed) {
            drop(ports);
            return Err(interrupted(
                cfg,
                started,
                "setting up the queues",
                Some(&pool),
            ));
        }

        // Queue w of every port goes to worker w.
        let mut rx_by_worker: Vec<Vec<RxBinding<AnyRx>>> =
            (0..workers).map(|_| Vec::new()).collect();
        let mut tx_by_worker: Vec<Vec<AnyTx>> = (0..workers).map(|_| Vec::new()).collect();
        let nports = ports.len();
        for (p, port) in ports.iter_mut().enumerate() {
            let (rxq, txq) = port.queues(workers, workers)?;
            let out = paired_output(p, nports);
            for (w, q) in rxq.into_iter().enumerate() {
                rx_by_worker[w].push(RxBinding { queue: q, out });
            }
            for (w, q) in txq.into_iter().enumerate() {
                tx_by_worker[w].push(q);
            }
        }
        let rewrite: Vec<MacRewrite> = ports
            .iter()
            .enumerate()
            .map(|(p, port)| MacRewrite {
                dst: cfg
                    .eth_peers
                    .get(p)
                    .copied()
                    .unwrap_or(MacAddr::local(p as u16)),
                src: port.info().mac,
            })
            .collect();

        let stop = Arc::new(AtomicBool::new(false));
        let mut counters = Vec::new();
        let mut threads = Vec::new();
        let (ready_tx, ready_rx) = mpsc::channel::<(CpuId, Result<(), String>)>();
        for ((cpu, rx), tx) in cpus.iter().copied().zip(rx_by_worker).zip(tx_by_worker) {
            let worker = Worker {
                rx,
                tx,
                rewrite: rewrite.clone(),
                mode: cfg.mode,
                burst: cfg.burst,
                tx_first: cfg.tx_first,
                cache: pool.cache(),
            };
            let c = Arc::new(CoreCounters::default());
            counters.push(Arc::clone(&c));
            let stop_w = Arc::clone(&stop);
            let ready = ready_tx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("fp-worker-{cpu}"))
                .spawn(move || {
                    // Pin from inside the thread: a spawned thread inherits
                    // its creator's mask, so pinning the creator would pile
                    // every thread onto one CPU.
                    let pinned = pin_current_thread(cpu).map_err(|e| e.to_string());
                    let ok = pinned.is_ok();
                    let _ = ready.send((cpu, pinned));
                    if !ok {
                        stop_w.store(true, Ordering::Relaxed);
                    }
                    worker.run(&stop_w, &c)
                });
            match spawned {
                Ok(h) => threads.push(h),
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    for h in threads {
                        let _ = h.join();
                    }
                    return Err(StartError::Worker {
                        cpu,
                        why: format!("cannot spawn thread: {e}"),
                    });
                }
            }
        }
        drop(ready_tx);
        let mut failure = None;
        for _ in 0..threads.len() {
            match ready_rx.recv() {
                Ok((_, Ok(()))) => {}
                Ok((cpu, Err(why))) => {
                    failure = failure.or(Some(StartError::Worker {
                        cpu,
                        why: format!("cannot pin: {why}"),
                    }))
                }
                Err(_) => break,
            }
        }
        let fwd = Forwarder {
            ports,
            pool,
            container,
            cpus,
            counters,
            stop,
            threads,
            started: Instant::now(),
            mode: cfg.mode,
            burst: cfg.burst,
        };
        if let Some(e) = failure {
            let _ = fwd.stop();
            return Err(e);
        }
        Ok(fwd)
    }

    /// The CPUs the workers run on.
    pub fn cpus(&self) -> &[CpuId] {
        &self.cpus
    }

    /// The pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Read every counter now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            elapsed: self.started.elapsed(),
            cores: self
                .cpus
                .iter()
                .copied()
                .zip(self.counters.iter().map(|c| c.snapshot()))
                .collect(),
            ports: self
                .ports
                .iter()
                .map(|p| (p.info().clone(), p.stats(), p.link()))
                .collect(),
            xstats: self.ports.iter().map(|p| p.xstats()).collect(),
            pool_available: self.pool.available(),
            pool_count: self.pool.count(),
        }
    }

    /// Control-path housekeeping of every port (device counters, reset
    /// detection and recovery): call about every 100 ms. Returns what
    /// happened on each port that was not idle, by port index.
    pub fn service(&mut self) -> Vec<(usize, Result<ServiceEvent, PortError>)> {
        let mut out = Vec::new();
        for (i, p) in self.ports.iter_mut().enumerate() {
            match p.service() {
                Ok(ServiceEvent::Idle) => {}
                r => out.push((i, r)),
            }
        }
        out
    }

    /// Stop port `i` (its device stops DMA; the workers give its buffers
    /// back); completion shows in [`service`](Self::service).
    pub fn stop_port(&mut self, i: usize) -> Result<(), PortError> {
        match self.ports.get_mut(i) {
            Some(p) => p.stop(),
            None => Err(PortError::Config {
                port: i.to_string(),
                why: "no such port".into(),
            }),
        }
    }

    /// Start port `i` again after [`stop_port`](Self::stop_port).
    pub fn start_port(&mut self, i: usize) -> Result<(), PortError> {
        match self.ports.get_mut(i) {
            Some(p) => p.start(),
            None => Err(PortError::Config {
                port: i.to_string(),
                why: "no such port".into(),
            }),
        }
    }

    /// The VFs' vfio container, when there are VF ports.
    pub fn container(&self) -> Option<&Arc<Container>> {
        self.container.as_ref()
    }

    /// Information on every port, in port order, with its link.
    pub fn ports(&self) -> Vec<(PortInfo, LinkState)> {
        self.ports
            .iter()
            .map(|p| (p.info().clone(), p.link()))
            .collect()
    }

    /// The named counter `name` of port `i`, if the port has it.
    pub fn xstat(&self, i: usize, name: &str) -> Option<u64> {
        self.ports
            .get(i)?
            .xstats()
            .into_iter()
            .find_map(|(n, v)| (n == name).then_some(v))
    }

    /// Stop the workers, tear down queues and ports, and count the buffers.
    pub fn stop(mut self) -> FinalReport {
        // Relaxed: the join below is what orders the workers' last writes.
        self.stop.store(true, Ordering::Relaxed);
        let mut panicked = Vec::new();
        let mut stopped = Vec::new();
        let threads = std::mem::take(&mut self.threads);
        for (cpu, h) in self.cpus.iter().copied().zip(threads) {
            match h.join() {
                Ok(s) => stopped.push(s),
                // Unwinding dropped the worker's queues and cache, which
                // returned their buffers.
                Err(_) => panicked.push(cpu),
            }
        }
        let last = self.snapshot();
        // Queues (with packets still in rings), caches and ports give their
        // buffers back as they drop.
        drop(stopped);
        // Ports next: a device port stops its device's DMA (queues read
        // back disabled, device reset, bus mastering off), then unmaps its
        // descriptor rings. The pool is unmapped when it goes, after them.
        drop(std::mem::take(&mut self.ports));
        FinalReport {
            last,
            mode: self.mode,
            burst: self.burst,
            panicked,
            buffers_returned: self.pool.available(),
        }
    }
}

impl Drop for Forwarder {
    /// A forwarder dropped without [`Forwarder::stop`] (an error path) still
    /// stops and joins its workers, so no thread keeps spinning.
    fn drop(&mut self) {
        // Relaxed: the joins order the workers' last writes.
        self.stop.store(true, Ordering::Relaxed);
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }
}

/// testpmd's "paired" topology: 0<->1, 2<->3, ...; an odd last port
/// forwards to itself.
fn paired_output(port: usize, nports: usize) -> usize {
    let peer = port ^ 1;
    if peer < nports {
        peer
    } else {
        port
    }
}

/// Checks each VF address before anything is opened: no duplicates, the
/// device exists, fastpath has a driver for it, it is on vfio-pci with its
/// group node present, and the pool can be DMA memory. Returns the VF
/// addresses in port order.
fn preflight_vfs(cfg: &ForwarderConfig) -> Result<Vec<PciAddress>, StartError> {
    let vfs: Vec<PciAddress> = cfg
        .ports
        .iter()
        .filter_map(|k| match k {
            PortKind::Pci(a) => Some(*a),
            _ => None,
        })
        .collect();
    for (i, a) in vfs.iter().enumerate() {
        if vfs[..i].contains(a) {
            return Err(StartError::Config(format!(
                "VF {a} is given twice in --ports: a device can be one port only"
            )));
        }
    }
    if let Some(a) = vfs.first() {
        if cfg.backing == MemoryBacking::NoHuge {
            return Err(StartError::Config(format!(
                "port {a} is a VF, and devices need hugepage DMA memory for the \
                 buffer pool and descriptor rings: drop --no-huge (reserve hugepages \
                 with `echo 256 > /proc/sys/vm/nr_hugepages`, or use --huge-dir)"
            )));
        }
    }
    let sysfs = Sysfs::default();
    for &a in &vfs {
        drivers::pmd::preflight(&sysfs, a)?;
    }
    Ok(vfs)
}

/// The error of a start-up given up during `phase`, with the audit of the
/// pool built so far (every port is already dropped, so every buffer
/// should be back).
fn interrupted(
    cfg: &ForwarderConfig,
    started: Instant,
    phase: &'static str,
    pool: Option<&Pool>,
) -> StartError {
    let (available, count) = pool.map_or((0, 0), |p| (p.available(), p.count()));
    StartError::Interrupted {
        phase,
        report: Box::new(FinalReport {
            last: Snapshot {
                elapsed: started.elapsed(),
                cores: Vec::new(),
                ports: Vec::new(),
                xstats: Vec::new(),
                pool_available: available,
                pool_count: count,
            },
            mode: cfg.mode,
            burst: cfg.burst,
            panicked: Vec::new(),
            buffers_returned: available,
        }),
    }
}

/// Opens every port; `None` when `interrupt` was set between two ports
/// (those opened so far are dropped, which gives their buffers back).
fn build_ports(
    cfg: &ForwarderConfig,
    workers: usize,
    pool: &Pool,
    container: Option<&Arc<Container>>,
    interrupt: &AtomicBool,
) -> Result<Option<Vec<AnyPort>>, StartError> {
    let mut ports: Vec<AnyPort> = Vec::new();
    let mut pending_ring: Option<PortId> = None;
    // Ring ports are built in pairs; remember where each goes.
    let mut slots: Vec<Option<AnyPort>> = (0..cfg.ports.len()).map(|_| None).collect();
    for (i, kind) in cfg.ports.iter().enumerate() {
        // Relaxed: the flag carries no data. A VF takes a while to open
        // (reset, mailbox), so a signal is honoured between two ports.
        if interrupt.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let id = PortId(i as u16);
        match kind {
            PortKind::Null => {
                slots[i] = Some(AnyPort::Null(NullPort::new(
                    id,
                    format!("null{i}"),
                    cfg.packet_size,
                )))
            }
            PortKind::Pci(address) => {
                let Some(container) = container else {
                    return Err(StartError::Config(format!(
                        "VF {address}: no vfio container"
                    )));
                };
                let mut vcfg = VfConfig::new(id, address.to_string());
                vcfg.backing = cfg.backing.clone();
                let port = open_vf(*address, container, pool, &vcfg)?;
                slots[i] = Some(AnyPort::Device(port));
            }
            PortKind::Ring => match pending_ring.take() {
                None => pending_ring = Some(id),
                Some(a) => {
                    let (pa, pb) = RingPort::pair(
                        (a, &format!("ring{}", a.0)),
                        (id, &format!("ring{i}")),
                        workers,
                        cfg.ring_size,
                    )?;
                    slots[a.0 as usize] = Some(AnyPort::Ring(pa));
                    slots[i] = Some(AnyPort::Ring(pb));
                }
            },
        }
    }
    for s in slots {
        // Every slot was filled: ring count is even (checked by the caller).
        match s {
            Some(p) => ports.push(p),
            None => return Err(StartError::Config("unpaired ring port".into())),
        }
    }
    Ok(Some(ports))
}

/// Enough buffers for every ring slot, every worker's cache and bursts in
/// flight, with a floor of 8192 (what testpmd would give one core).
fn default_nb_mbuf(cfg: &ForwarderConfig, workers: usize) -> u32 {
    let rings = cfg.ports.iter().filter(|k| **k == PortKind::Ring).count();
    let vfs = cfg
        .ports
        .iter()
        .filter(|k| matches!(k, PortKind::Pci(_)))
        .count();
    // A VF queue pair holds up to a full RX ring (512) and a full TX ring.
    let in_rings = rings * workers * cfg.ring_size + vfs * workers * 1024;
    let per_worker =
        cfg.cache_size * 3 / 2 + MAX_BURST * 2 + cfg.burst * cfg.tx_first * cfg.ports.len();
    (in_rings + workers * per_worker).max(8192) as u32
}

fn choose_cpus(choice: &CoreChoice) -> Result<Vec<CpuId>, StartError> {
    let allowed = allowed_cpus()?;
    match choice {
        CoreChoice::List(set) => {
            if set.is_empty() {
                return Err(StartError::Config("empty CPU list".into()));
            }
            check_requested(set, &allowed)?;
            Ok(set.iter().collect())
        }
        CoreChoice::Count(n) => {
            let all: Vec<CpuId> = allowed.set.iter().collect();
            let usable: &[CpuId] = if all.len() > 1 { &all[1..] } else { &all };
            if *n == 0 || *n > usable.len() {
                return Err(StartError::Config(format!(
                    "{n} worker cores asked; {} can be used (allowed CPUs {}, the first kept for control)",
                    usable.len(),
                    allowed.set
                )));
            }
            Ok(usable[..*n].to_vec())
        }
    }
}
