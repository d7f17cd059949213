//! Start, watch and stop a set of workers forwarding between ports.
//!
//! The forwarder builds the buffer pool and the ports, gives every worker
//! one RX and one TX queue on every port (queue `w` belongs to worker `w`),
//! spawns one pinned thread per fast-path core, and on stop joins them and
//! checks that every buffer came back to the pool.

use crate::any_port::{AnyPort, AnyRx, AnyTx};
use crate::counters::{CoreCounters, CoreSnapshot};
use crate::exception::Punted;
use crate::fwd_mode::{FwdMode, MacRewrite};
use crate::l3::{
    L3Worker, PortConf, PortIndex, SeedFrames, TableOp, Tables, TablesPublisher, TablesReader,
    DEFAULT_MTU, PUNT_RING_SIZE,
};
use crate::rx_plan::rx_plan;
use crate::sim_ports::{ModelViolation, SimPortError, SimPorts};
use crate::worker::{InjectIn, RxBinding, Stopped, Worker};
use config::cpus::{allowed_cpus, CpuConfigError};
use config::port_spec::PortSpec;
use config::run_config::ValidRunConfig;
use drivers::cpu::{pin_current_thread, CpuId};
use drivers::mbuf::{Mbuf, PortId};
use drivers::memory::DmaMapper;
use drivers::memory::MemoryBacking;
use drivers::net::MacAddr;
use drivers::pci::{PciAddress, Sysfs};
use drivers::pmd::ring_limits::{ring_limits, RingDir, RingSizeError};
use drivers::pmd::{identify, open_vf, preflight, OpenError, VfConfig};
use drivers::pool::{Pool, PoolConfig, PoolError};
use drivers::port::af_packet::{AfPacketError, AfPacketPort};
use drivers::port::null::NullPort;
use drivers::port::ring_pair::RingPort;
use drivers::port::{LinkState, Port, PortError, PortInfo, PortStats, ServiceEvent, XStat};
use drivers::ring::{Consumer, Producer, Ring, RingError};
use drivers::vfio::{Container, VfioError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest start-up waits for the VF ports' links before the workers
/// seed their `--tx-first` bursts: testpmd's link check at port start
/// (app/test-pmd/testpmd.c, `check_all_ports_link_status`: MAX_CHECK_TIME
/// 90 checks of CHECK_INTERVAL 100 ms, 9 s). A link still down then gets
/// its seeds refused and counted.
pub const LINK_WAIT: Duration = Duration::from_secs(9);

/// Slots of each port's injection ring, defined with the pool sizing rule
/// that counts them.
pub use config::pool_sizing::INJECT_RING_SIZE;

/// How often the housekeeping runs while start-up waits for links.
const LINK_POLL: Duration = Duration::from_millis(10);

/// Why a worker thread could not be started.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The thread could not be created.
    #[error("cannot spawn its thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// The thread could not be pinned to its CPU.
    #[error("cannot pin its thread (sched_setaffinity): {0}")]
    Pin(#[source] std::io::Error),
}

/// Why the forwarder did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A worker's punt ring could not be made (L3 mode).
    #[error("punt ring: {0}")]
    PuntRing(#[from] RingError),
    /// CPUs not allowed, too few, or unreadable.
    #[error(transparent)]
    Cpus(#[from] CpuConfigError),
    /// A device port with the pool on ordinary pages: devices DMA into the
    /// pool and need hugepage memory mapped for them.
    #[error(
        "port {port} ({address}, {name} {vendor_id:04x}:{device_id:04x}) is a device, and \
         devices need hugepage DMA memory for the buffer pool and descriptor rings, not \
         ordinary pages"
    )]
    DeviceNeedsHugepages {
        /// Port index.
        port: usize,
        /// The device.
        address: PciAddress,
        /// Its name in the supported-device table.
        name: &'static str,
        /// Vendor id.
        vendor_id: u16,
        /// Device id.
        device_id: u16,
    },
    /// NB_RXD / NB_TXD (`--rxd` / `--txd`) that the VF's driver cannot
    /// take.
    #[error("port {port} ({address}): {source}")]
    Descriptors {
        /// Port index.
        port: usize,
        /// The device.
        address: PciAddress,
        /// The driver's limits.
        source: RingSizeError,
    },
    /// The pool could not be built (the message says how to fix it).
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// A port could not be set up.
    #[error(transparent)]
    Port(#[from] PortError),
    /// An AF_PACKET port could not be opened (the message names the fix).
    #[error("port {port}: {source}")]
    AfPacket {
        /// Port index.
        port: usize,
        /// Why.
        source: AfPacketError,
    },
    /// A VF could not be found, opened or brought up (the message names
    /// the fix).
    #[error(transparent)]
    Vf(#[from] OpenError),
    /// vfio refused (the message names the fix).
    #[error(transparent)]
    Vfio(#[from] VfioError),
    /// A simulated port could not be opened (or is not built in).
    #[error(transparent)]
    Sim(#[from] SimPortError),
    /// A VF port met with no vfio container: only when ports are built
    /// without going through the device checks first.
    #[error("port {port} ({address}): no vfio container was opened for it")]
    NoVfioContainer {
        /// Port index.
        port: usize,
        /// The device.
        address: PciAddress,
    },
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
    #[error("worker on CPU {cpu}: {source}")]
    Worker {
        /// The CPU.
        cpu: CpuId,
        /// What failed.
        source: WorkerError,
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
    /// The simulated ports' DMA space and the rules their models saw
    /// broken (audited after the ports are gone).
    sim: SimPorts,
    cpus: Vec<CpuId>,
    counters: Vec<Arc<CoreCounters>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Stopped<AnyRx, AnyTx>>>,
    started: Instant,
    mode: FwdMode,
    burst: usize,
    /// L3 mode: each worker's punt ring, the exception thread's end
    /// (until it takes them, see [`Forwarder::take_punt_rings`]).
    punt_rings: Vec<Consumer<Punted>>,
    /// L3 mode: per port, the way in to the worker that sends the
    /// kernel's frames out of it (until taken, see
    /// [`Forwarder::take_inject_rings`]).
    inject_rings: Vec<Producer<Mbuf>>,
    /// L3 mode: the tables' publisher (until taken, see
    /// [`Forwarder::take_publisher`]). Dropped after the workers.
    publisher: Option<TablesPublisher>,
}

/// What L3 mode starts with (see [`Forwarder::start_l3`]).
#[derive(Debug, Clone)]
pub struct L3Setup {
    /// The tables the workers start with: published as the first copy of
    /// a [`TablesPublisher`] (see [`Forwarder::take_publisher`]), each
    /// worker reading it through its own reader.
    pub tables: Tables,
    /// Per port, the frames `--tx-first` seeds it with, in turn (none: the
    /// default seed). A benchmark's loop of ring ports needs routable
    /// frames.
    pub seeds: Vec<SeedFrames>,
}

/// Tables knowing only the ports (their MACs, the default MTU): no
/// route, so every packet goes to the kernel until routes are added.
fn port_tables(ports: &[AnyPort]) -> Tables {
    let mut t = Tables::new();
    for (i, p) in ports.iter().enumerate() {
        t.apply(&TableOp::SetPort {
            port: PortIndex(u16::try_from(i).unwrap_or(u16::MAX)),
            conf: PortConf {
                mac: p.info().mac,
                mtu: DEFAULT_MTU,
            },
        });
    }
    t
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
    /// Rules the device models of simulated ports saw broken so far.
    pub violations: usize,
    /// The named counters of the simulated ports' PF switch (frames to
    /// its uplink, dropped there); empty without simulated ports.
    pub switch: Vec<XStat>,
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
    /// Rules the device models of simulated ports saw broken, the ports'
    /// teardown included: any is a failed audit.
    pub violations: Vec<ModelViolation>,
}

impl FinalReport {
    /// True when every buffer of the pool came back.
    pub fn all_buffers_returned(&self) -> bool {
        self.buffers_returned == self.last.pool_count
    }

    /// The audit passed: every buffer back, no worker panicked, no model
    /// saw a rule broken.
    pub fn clean(&self) -> bool {
        self.all_buffers_returned() && self.panicked.is_empty() && self.violations.is_empty()
    }
}

impl Forwarder {
    /// Build everything and start the workers.
    pub fn start(cfg: &ValidRunConfig) -> Result<Forwarder, StartError> {
        Self::start_interruptible(cfg, &AtomicBool::new(false))
    }

    /// [`start`](Self::start) in L3 mode with the given tables and seeds
    /// (`cfg.mode` must be [`FwdMode::L3`]). Without it, L3 mode starts
    /// with tables that know only the ports.
    pub fn start_l3(cfg: &ValidRunConfig, setup: L3Setup) -> Result<Forwarder, StartError> {
        Self::start_with(cfg, &AtomicBool::new(false), Some(setup))
    }

    /// [`start`](Self::start), giving up between steps (VF checks, vfio,
    /// the pool, each port, the queues) as soon as `interrupt` is set, with
    /// [`StartError::Interrupted`] and the buffer audit of what was built.
    /// Once the workers run, `interrupt` only ends the wait for the VF
    /// ports' links: the caller stops the forwarder, and a worker still
    /// seeding `tx_first` bursts stops between two bursts.
    pub fn start_interruptible(
        cfg: &ValidRunConfig,
        interrupt: &AtomicBool,
    ) -> Result<Forwarder, StartError> {
        Self::start_with(cfg, interrupt, None)
    }

    fn start_with(
        cfg: &ValidRunConfig,
        interrupt: &AtomicBool,
        l3: Option<L3Setup>,
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
        let vfs = preflight_vfs(cfg, &Sysfs::default())?;
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
        let cpus = cfg.cores.choose(&allowed_cpus()?)?;
        let workers = cpus.len();
        // Simulated VFs and real ones never share a run (validated), so
        // the pool is mapped in one space at most.
        let mut sim = SimPorts::new();
        let sim_dma = if cfg.ports.iter().any(|p| matches!(p, PortSpec::Sim(_))) {
            sim.mapper()
        } else {
            None
        };
        let pool_cfg = PoolConfig {
            cache_size: cfg.cache_size,
            backing: cfg.backing.clone(),
            dma: container
                .clone()
                .map(|c| c as Arc<dyn DmaMapper>)
                .or(sim_dma),
            ..PoolConfig::new("mbuf_pool", cfg.nb_mbuf())
        };
        let pool = match Pool::new_interruptible(&pool_cfg, interrupt) {
            Ok(p) => p,
            // The memory was released; no buffer was cut yet.
            Err(e) if e.is_interrupted() => {
                return Err(interrupted(cfg, started, "building the buffer pool", None))
            }
            Err(e) => return Err(e.into()),
        };
        let Some(mut ports) =
            build_ports(cfg, workers, &pool, container.as_ref(), &mut sim, interrupt)?
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

        // Every worker has a TX queue on every port; RX queues follow the
        // core/port mapping, or queue w of every port goes to worker w.
        let mut rx_by_worker: Vec<Vec<RxBinding<AnyRx>>> =
            (0..workers).map(|_| Vec::new()).collect();
        let mut tx_by_worker: Vec<Vec<AnyTx>> = (0..workers).map(|_| Vec::new()).collect();
        let nports = ports.len();
        let plan = rx_plan(&cpus, nports, cfg.core_port_mapping.as_ref(), |p| {
            matches!(cfg.ports.get(p), Some(PortSpec::Ring))
        });
        for ((p, port), owners) in ports.iter_mut().enumerate().zip(&plan) {
            let (rxq, txq) = port.queues(owners.len(), workers)?;
            let out = paired_output(p, nports);
            for (&w, q) in owners.iter().zip(rxq) {
                if let Some(rx) = rx_by_worker.get_mut(w) {
                    rx.push(RxBinding {
                        queue: q,
                        out,
                        port: p,
                    });
                }
            }
            for (w, q) in txq.into_iter().enumerate() {
                tx_by_worker[w].push(q);
            }
        }
        let rewrite: Vec<MacRewrite> = ports
            .iter()
            .enumerate()
            .map(|(p, port)| MacRewrite {
                dst: peer_mac(cfg, &ports, p),
                src: port.info().mac,
            })
            .collect();

        let l3 = match (cfg.mode, l3) {
            (FwdMode::L3, Some(setup)) => Some(setup),
            (FwdMode::L3, None) => Some(L3Setup {
                tables: port_tables(&ports),
                seeds: Vec::new(),
            }),
            _ => None,
        };
        let mut punt_rings = Vec::new();
        let mut l3_workers = Vec::new();
        let mut inject_rings = Vec::new();
        let mut inject_by_worker: Vec<Vec<InjectIn>> = (0..workers).map(|_| Vec::new()).collect();
        let mut publisher = None;
        if let Some(setup) = l3 {
            let lr = TablesPublisher::new(setup.tables);
            for &cpu in &cpus {
                let (producer, consumer) = Ring::new(PUNT_RING_SIZE)?.split();
                let reader = TablesReader(lr.readers().register(&format!("worker on CPU {cpu}")));
                let mut w = L3Worker::new(reader, producer, nports);
                w.seeds = setup.seeds.clone();
                l3_workers.push(w);
                punt_rings.push(consumer);
            }
            // Port p's way out for the kernel's frames is worker p % workers:
            // the ports are spread over the workers, and each port's frames
            // stay in order on one queue.
            for p in 0..nports {
                let (producer, consumer) = Ring::new(INJECT_RING_SIZE)?.split();
                if let Some(w) = inject_by_worker.get_mut(p % workers.max(1)) {
                    w.push(InjectIn {
                        port: p,
                        ring: consumer,
                    });
                }
                inject_rings.push(producer);
            }
            publisher = Some(lr);
        }
        let mut l3_workers = l3_workers.into_iter();
        let mut inject_by_worker = inject_by_worker.into_iter();

        let stop = Arc::new(AtomicBool::new(false));
        // Opened once the VF ports' links are up (`await_links`).
        let seed_gate = Arc::new(AtomicBool::new(false));
        let mut counters = Vec::new();
        let mut threads = Vec::new();
        let (ready_tx, ready_rx) = mpsc::channel::<(CpuId, std::io::Result<()>)>();
        for ((cpu, rx), tx) in cpus.iter().copied().zip(rx_by_worker).zip(tx_by_worker) {
            let worker = Worker {
                rx,
                tx,
                rewrite: rewrite.clone(),
                mode: cfg.mode,
                burst: cfg.burst,
                tx_first: cfg.tx_first(),
                seed_gate: Some(Arc::clone(&seed_gate)),
                cache: pool.cache(),
                l3: l3_workers.next(),
                inject: inject_by_worker.next().unwrap_or_default(),
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
                    let pinned = pin_current_thread(cpu);
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
                        source: WorkerError::Spawn(e),
                    });
                }
            }
        }
        drop(ready_tx);
        let mut failure = None;
        for _ in 0..threads.len() {
            match ready_rx.recv() {
                Ok((_, Ok(()))) => {}
                Ok((cpu, Err(e))) => {
                    failure = failure.or(Some(StartError::Worker {
                        cpu,
                        source: WorkerError::Pin(e),
                    }))
                }
                Err(_) => break,
            }
        }
        let mut fwd = Forwarder {
            ports,
            pool,
            container,
            sim,
            cpus,
            counters,
            stop,
            threads,
            started: Instant::now(),
            mode: cfg.mode,
            burst: cfg.burst,
            punt_rings,
            inject_rings,
            publisher,
        };
        if let Some(e) = failure {
            let _ = fwd.stop();
            return Err(e);
        }
        fwd.await_links(interrupt);
        // Relaxed: the flag carries no data (see `Worker::seed_gate`).
        seed_gate.store(true, Ordering::Relaxed);
        Ok(fwd)
    }

    /// Runs the VF ports' housekeeping until each has its link up, for at
    /// most [`LINK_WAIT`], or until `interrupt` is set. An iavf VF's link
    /// comes up only here: its queues are enabled once its worker posted
    /// RX buffers, and its link is the PF's event. Null and ring links are
    /// always up, and an AF_PACKET link is the kernel's: none is waited
    /// for.
    fn await_links(&mut self, interrupt: &AtomicBool) {
        let end = Instant::now() + LINK_WAIT;
        let vf = |p: &AnyPort| matches!(p, AnyPort::Device(_));
        // Relaxed: the flag carries no data.
        while !interrupt.load(Ordering::Relaxed)
            && self.ports.iter().any(|p| vf(p) && !p.link().up)
            && Instant::now() < end
        {
            std::thread::sleep(LINK_POLL);
            for (i, r) in self.service() {
                log::debug!("port {i}, waiting for its link: {r:?}");
            }
        }
    }

    /// L3 mode: the workers' punt rings, in worker order, for the
    /// exception thread to drain (`ExceptionLoop::new` takes them as they
    /// are; empty in other modes, or once taken).
    /// Buffers it still holds at [`Forwarder::stop`] are not in the
    /// audit's count: it must drop them first.
    pub fn take_punt_rings(&mut self) -> Vec<Consumer<Punted>> {
        std::mem::take(&mut self.punt_rings)
    }

    /// L3 mode: per port (in port order), the ring to the worker that
    /// sends the kernel's frames out of it: the exception loop's
    /// [`InjectRing`](crate::exception::InjectRing)s. Empty in other modes,
    /// or once taken.
    pub fn take_inject_rings(&mut self) -> Vec<Producer<Mbuf>> {
        std::mem::take(&mut self.inject_rings)
    }

    /// L3 mode: the tables' publisher, for the control thread to apply
    /// the router model's batches with. `None` in other modes, or once
    /// taken. The workers' readers are registered with it already.
    pub fn take_publisher(&mut self) -> Option<TablesPublisher> {
        self.publisher.take()
    }

    /// The CPUs the workers run on.
    pub fn cpus(&self) -> &[CpuId] {
        &self.cpus
    }

    /// The simulated ports' DMA space and PF (`fastpath demo`'s wire).
    pub fn sim_ports(&self) -> &SimPorts {
        &self.sim
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
            violations: self.sim.pending_violations(),
            switch: self.sim.switch_xstats(),
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

    /// Replace port `i`'s multicast groups ([`Port::set_multicast`]):
    /// control path, like [`service`](Self::service).
    pub fn set_multicast(
        &mut self,
        i: usize,
        groups: &[drivers::net::MacAddr],
    ) -> Result<drivers::port::MulticastOutcome, PortError> {
        match self.ports.get_mut(i) {
            Some(p) => p.set_multicast(groups),
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
        // The devices' own counters up to their last frame, not as of
        // their last periodic read (up to a second old).
        for p in &mut self.ports {
            p.refresh_stats();
        }
        let last = self.snapshot();
        // Queues (with packets still in rings), caches and ports give their
        // buffers back as they drop; so do punts no one took.
        drop(stopped);
        drop(std::mem::take(&mut self.punt_rings));
        drop(std::mem::take(&mut self.inject_rings));
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
            // After the ports: stopping a modelled device is checked too.
            violations: self.sim.take_violations(),
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

/// The destination MAC the mac mode writes on frames out of port `p`
/// (and `--tx-first` seeds carry): the peer given for it, else, when `p`
/// and the port it is paired with are simulated VFs of the one modelled
/// PF, that port's MAC (so frames cross the model's switch to it), else
/// testpmd's 02:00:00:00:00:<p>.
fn peer_mac(cfg: &ValidRunConfig, ports: &[AnyPort], p: usize) -> MacAddr {
    if let Some(mac) = cfg.given_peer_mac(p) {
        return mac;
    }
    let q = paired_output(p, ports.len());
    let sim = |i: usize| matches!(cfg.ports[i], PortSpec::Sim(_));
    if q != p && sim(p) && sim(q) {
        ports[q].info().mac
    } else {
        cfg.peer_mac(p)
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

/// Checks each VF address before anything is opened: the device exists
/// and a driver here runs it (so an error can say what the device is),
/// the pool can be DMA memory, and each VF is on vfio-pci with its group
/// node present. Returns the VF addresses in port order.
fn preflight_vfs(cfg: &ValidRunConfig, sysfs: &Sysfs) -> Result<Vec<PciAddress>, StartError> {
    let vfs: Vec<(usize, PciAddress)> = cfg
        .ports
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p {
            PortSpec::Pci(a) => Some((i, *a)),
            _ => None,
        })
        .collect();
    for &(port, address) in &vfs {
        let (dev, driver) = identify(sysfs, address)?;
        let limits = ring_limits(driver.kind);
        for (dir, count) in [
            (RingDir::Rx, cfg.vf_rx_ring()),
            (RingDir::Tx, cfg.vf_tx_ring()),
        ] {
            limits
                .check(dir, count)
                .map_err(|source| StartError::Descriptors {
                    port,
                    address,
                    source,
                })?;
        }
        if cfg.backing == MemoryBacking::NoHuge {
            return Err(StartError::DeviceNeedsHugepages {
                port,
                address,
                name: dev.name,
                vendor_id: dev.vendor_id,
                device_id: dev.device_id,
            });
        }
    }
    for &(_, address) in &vfs {
        preflight(sysfs, address)?;
    }
    Ok(vfs.into_iter().map(|(_, a)| a).collect())
}

/// The error of a start-up given up during `phase`, with the audit of the
/// pool built so far (every port is already dropped, so every buffer
/// should be back).
fn interrupted(
    cfg: &ValidRunConfig,
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
                violations: 0,
                switch: Vec::new(),
            },
            mode: cfg.mode,
            burst: cfg.burst,
            panicked: Vec::new(),
            buffers_returned: available,
            violations: Vec::new(),
        }),
    }
}

/// Opens every port; `None` when `interrupt` was set between two ports
/// (those opened so far are dropped, which gives their buffers back).
fn build_ports(
    cfg: &ValidRunConfig,
    workers: usize,
    pool: &Pool,
    container: Option<&Arc<Container>>,
    sim: &mut SimPorts,
    interrupt: &AtomicBool,
) -> Result<Option<Vec<AnyPort>>, StartError> {
    let mut ports: Vec<AnyPort> = Vec::with_capacity(cfg.ports.len());
    // The second port of a ring pair, built with the first.
    let mut pending_ring: Option<RingPort> = None;
    for (i, spec) in cfg.ports.iter().enumerate() {
        // Relaxed: the flag carries no data. A VF takes a while to open
        // (reset, mailbox), so a signal is honoured between two ports.
        if interrupt.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let id = PortId(i as u16);
        let port = match spec {
            PortSpec::Null => AnyPort::Null(NullPort::new(
                id,
                format!("null{i}"),
                // Within 60..=2048 (validated), so within u16.
                u16::try_from(cfg.packet_size).unwrap_or(u16::MAX),
            )),
            PortSpec::AfPacket(ifname) => AnyPort::AfPacket(
                AfPacketPort::open_with(id, ifname.as_str(), pool.data_room(), &cfg.afpacket)
                    .map_err(|source| StartError::AfPacket { port: i, source })?,
            ),
            PortSpec::Pci(address) => {
                let container = container.ok_or(StartError::NoVfioContainer {
                    port: i,
                    address: *address,
                })?;
                let mut vcfg = VfConfig::new(id, address.to_string());
                vcfg.backing = cfg.backing.clone();
                vcfg.rx_ring = cfg.vf_rx_ring();
                vcfg.tx_ring = cfg.vf_tx_ring();
                AnyPort::Device(open_vf(*address, container, pool, &vcfg)?)
            }
            PortSpec::Sim(model) => {
                let mut vcfg = VfConfig::new(id, format!("sim{i}"));
                vcfg.backing = cfg.backing.clone();
                vcfg.rx_ring = cfg.vf_rx_ring();
                vcfg.tx_ring = cfg.vf_tx_ring();
                AnyPort::Device(sim.open(i, *model, &vcfg, pool)?)
            }
            PortSpec::Ring => match pending_ring.take() {
                Some(second) => AnyPort::Ring(second),
                None => {
                    // Validation made ring ports even, so a next one exists.
                    let j = cfg.ports[i + 1..]
                        .iter()
                        .position(|p| *p == PortSpec::Ring)
                        .map_or(i, |k| i + 1 + k);
                    let (a, b) = RingPort::pair(
                        (id, &format!("ring{i}")),
                        (PortId(j as u16), &format!("ring{j}")),
                        workers,
                        cfg.ring_size,
                    )?;
                    pending_ring = Some(b);
                    AnyPort::Ring(a)
                }
            },
        };
        ports.push(port);
    }
    Ok(Some(ports))
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::run_config::RunConfig;

    /// A sysfs tree with one 82576 VF (8086:10ca) at 0000:01:10.0, on no
    /// driver; removed on drop.
    struct FakeSysfs(std::path::PathBuf);

    impl FakeSysfs {
        fn new() -> FakeSysfs {
            let root =
                std::env::temp_dir().join(format!("fastpath-fwd-sysfs-{}", std::process::id()));
            let dev = root.join("sys/bus/pci/devices/0000:01:10.0");
            std::fs::create_dir_all(&dev).unwrap();
            std::fs::write(dev.join("vendor"), "0x8086\n").unwrap();
            std::fs::write(dev.join("device"), "0x10ca\n").unwrap();
            FakeSysfs(root)
        }
    }

    impl Drop for FakeSysfs {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_supported_vf_on_ordinary_pages_is_named_with_its_ids() {
        let fake = FakeSysfs::new();
        let cfg = RunConfig {
            ports: vec![PortSpec::Null, "0000:01:10.0".parse().unwrap()],
            backing: MemoryBacking::NoHuge,
            ..RunConfig::default()
        }
        .validate()
        .unwrap();
        let e = preflight_vfs(&cfg, &Sysfs::new(&fake.0)).unwrap_err();
        assert!(
            matches!(e, StartError::DeviceNeedsHugepages { port: 1, .. }),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "port 1 (0000:01:10.0, 82576 VF 8086:10ca) is a device, and devices need hugepage \
             DMA memory for the buffer pool and descriptor rings, not ordinary pages"
        );
        // On hugepages the next check runs: the VF is not on vfio-pci.
        let cfg = RunConfig {
            backing: MemoryBacking::default(),
            ..cfg.config().clone()
        }
        .validate()
        .unwrap();
        let e = preflight_vfs(&cfg, &Sysfs::new(&fake.0)).unwrap_err();
        assert!(matches!(e, StartError::Vf(_)), "{e:?}");
    }
}
