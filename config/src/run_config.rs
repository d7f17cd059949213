//! The run configuration: what to forward, on which cores, with which
//! pool, for how long.
//!
//! [`RunConfig`] is plain data that any front end fills in (the
//! `fastpath run` command line today, a fast-path.env file later);
//! [`RunConfig::validate`] is the one place that checks it, and the only
//! way to get the [`ValidRunConfig`] the forwarder starts from. Checks that
//! need the machine (which CPUs are allowed, which PCI device is at an
//! address, whether hugepages are free) happen at start-up, not here.

use crate::core_choice::CoreChoice;
use crate::core_port_mapping::CorePortMapping;
use crate::duration::format_duration;
use crate::eth_peer::EthPeer;
use crate::fwd_mode::FwdMode;
use crate::pool_sizing::{ExceptionDemand, PoolDemand, MAX_NB_MBUF};
use crate::port_spec::SimModel;
use crate::port_spec::{InterfaceName, PortSpec};
use crate::setting::Setting;
use drivers::burst::{DEFAULT_BURST, MAX_BURST};
use drivers::cpu::{CpuId, CpuSet, MAX_CPU_ID};
use drivers::mbuf::DEFAULT_DATA_ROOM;
use drivers::memory::MemoryBacking;
use drivers::net::MacAddr;
use drivers::pci::DriverKind;
use drivers::pmd::ring_limits::{
    describe_ring_limits, ring_limits, RingDir, RingSizeError, RING_LIMITS,
};
use drivers::pmd::{DEFAULT_VF_RX_RING, DEFAULT_VF_TX_RING};
use drivers::pool::PoolConfig;
use drivers::pool::{DEFAULT_CACHE_SIZE, MAX_CACHE_SIZE};
use drivers::port::af_packet::{self, AfPacketConfig, RingConfigError, MAX_QUEUES};
use drivers::port::null::DEFAULT_PACKET_SIZE;
use drivers::port::ring_pair::DEFAULT_RING_SIZE;
use std::ops::Deref;
use std::time::Duration;

/// Most ports in one run (DPDK's default RTE_MAX_ETHPORTS is 32; twice
/// that leaves room and keeps per-port tables small).
pub const MAX_PORTS: usize = 64;
/// Most worker cores: one per CPU id there can be.
pub const MAX_WORKERS: usize = MAX_CPU_ID as usize + 1;
/// Largest ring of a ring port (2^16 slots).
pub const MAX_RING_SIZE: usize = 1 << 16;
/// Shortest frame a null port makes: the Ethernet minimum without FCS.
pub const MIN_PACKET_SIZE: usize = 60;
/// Longest run and longest statistics period: a year.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);
/// Shortest statistics period other than 0 (off): ten lines a second.
pub const MIN_STATS_PERIOD: Duration = Duration::from_millis(100);
/// Bursts seeded per TX queue when ring ports are used and none is given
/// (as testpmd's `start tx_first` examples), fewer if the ring is smaller.
pub const DEFAULT_TX_FIRST_WITH_RINGS: usize = 16;

/// How to run, as given. Build one, then [`validate`](Self::validate) it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// Ports, in port-id order.
    pub ports: Vec<PortSpec>,
    /// Worker cores.
    pub cores: CoreChoice,
    /// Forwarding mode.
    pub mode: FwdMode,
    /// Packets asked of an RX queue at a time.
    pub burst: usize,
    /// Stop after this long (`None`: until a signal).
    pub duration: Option<Duration>,
    /// Time between live statistics lines (`ZERO`: final summary only).
    pub stats_period: Duration,
    /// Bursts sent on every TX queue at start (`None`: 16 with ring ports,
    /// else 0).
    pub tx_first: Option<usize>,
    /// Buffers in the pool (`None`: the default of [`crate::pool_sizing`]).
    pub nb_mbuf: Option<u64>,
    /// Per-worker cache size.
    pub cache_size: usize,
    /// Length of the packets null ports make.
    pub packet_size: usize,
    /// Slots of each ring of a ring port (a power of two).
    pub ring_size: usize,
    /// Destination MACs for the mac mode; ports not named get testpmd's
    /// 02:00:00:00:00:<port>.
    pub eth_peers: Vec<EthPeer>,
    /// Where the pool's memory comes from.
    pub backing: MemoryBacking,
    /// Ring sizes of every AF_PACKET port's queues.
    pub afpacket: AfPacketConfig,
    /// Which worker polls which port (`None`: every worker polls every
    /// port, one RX queue each). See [`crate::core_port_mapping`].
    pub core_port_mapping: Option<CorePortMapping>,
    /// RX descriptors per VF queue (`None`: the drivers' default, 512).
    pub rx_descriptors: Option<usize>,
    /// TX descriptors per VF queue (`None`: the drivers' default, 512).
    pub tx_descriptors: Option<usize>,
    /// Most memory the pool and the VF descriptor rings may take, in MiB
    /// (6WIND's FP_MEMORY; `None`: no cap). See [`RunConfig::memory_need`].
    pub memory_cap_mib: Option<u64>,
}

impl Default for RunConfig {
    /// Two null ports, one worker, io mode, the built-in defaults, until a
    /// signal, on hugepages.
    fn default() -> Self {
        RunConfig {
            ports: vec![PortSpec::Null, PortSpec::Null],
            cores: CoreChoice::default(),
            mode: FwdMode::Io,
            burst: DEFAULT_BURST,
            duration: None,
            stats_period: Duration::from_secs(1),
            tx_first: None,
            nb_mbuf: None,
            cache_size: DEFAULT_CACHE_SIZE,
            packet_size: DEFAULT_PACKET_SIZE as usize,
            ring_size: DEFAULT_RING_SIZE,
            eth_peers: Vec::new(),
            backing: MemoryBacking::default(),
            afpacket: AfPacketConfig::default(),
            core_port_mapping: None,
            rx_descriptors: None,
            tx_descriptors: None,
            memory_cap_mib: None,
        }
    }
}

/// What bounds the tx-first bursts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxFirstLimit {
    /// A ring port's ring: more bursts than fill it are dropped at once.
    Ring {
        /// Its size.
        ring_size: usize,
    },
    /// A VF's TX descriptor ring, likewise.
    VfTxRing {
        /// Its descriptors.
        descriptors: usize,
    },
    /// The pool: every seeded packet is a buffer taken at once.
    Pool {
        /// Buffers the pool has (or may have at most) for seeding.
        room: u64,
    },
}

impl std::fmt::Display for TxFirstLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TxFirstLimit::Ring { ring_size } => write!(
                f,
                "bursts beyond the ring port's {ring_size} slots would be dropped on arrival"
            ),
            TxFirstLimit::VfTxRing { descriptors } => write!(
                f,
                "bursts beyond a VF's {descriptors} TX descriptors would be dropped on arrival"
            ),
            TxFirstLimit::Pool { room } => write!(
                f,
                "the pool has room for {room} seeded buffers besides what the workers need"
            ),
        }
    }
}

/// Why a run configuration was refused. Each variant names the value;
/// [`setting`](Self::setting) says which setting it is about, so the
/// front end can name it the way the operator wrote it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunConfigError {
    /// No port.
    #[error("no ports given")]
    NoPorts,
    /// Too many ports.
    #[error("{count} ports given: at most {MAX_PORTS}")]
    TooManyPorts {
        /// Ports given.
        count: usize,
    },
    /// Ring ports come in connected pairs.
    #[error("ring ports come in connected pairs; {count} given")]
    OddRingPorts {
        /// Ring ports given.
        count: usize,
    },
    /// A device or interface given twice.
    #[error("{spec} is given twice (ports {first} and {again}): a device or interface can be one port only")]
    DuplicatePort {
        /// The port.
        spec: PortSpec,
        /// Its first index.
        first: usize,
        /// The repeat.
        again: usize,
    },
    /// Simulated and real VFs in one run: the pool is mapped for DMA in
    /// one address space, the vfio container's or the models'.
    #[error(
        "port {sim} ({sim_spec}) is a simulated VF and port {vf} ({vf_spec}) a real one: a run \
         has one or the other, since the buffer pool is mapped for DMA in one address space \
         (the vfio container's or the device models')"
    )]
    SimWithVf {
        /// First simulated port.
        sim: usize,
        /// Its spec.
        sim_spec: PortSpec,
        /// First real VF port.
        vf: usize,
        /// Its spec.
        vf_spec: PortSpec,
    },
    /// No worker core.
    #[error("no worker core: give at least one")]
    NoCores,
    /// More workers than there can be CPUs.
    #[error("{count} worker cores: at most {MAX_WORKERS}")]
    TooManyCores {
        /// Workers asked.
        count: usize,
    },
    /// An AF_PACKET port gets one queue pair (one socket in its fanout
    /// group) per worker, and a group has at most [`MAX_QUEUES`].
    #[error(
        "port {port} (afpacket:{ifname}) would get one queue per worker, {workers}, and an \
         AF_PACKET port has at most {MAX_QUEUES}"
    )]
    AfPacketTooManyQueues {
        /// Port index.
        port: usize,
        /// Interface.
        ifname: InterfaceName,
        /// Workers asked.
        workers: usize,
    },
    /// The AF_PACKET ring sizes are not ones the kernel takes.
    #[error("AF_PACKET rings: {0}")]
    AfPacketRings(RingConfigError),
    /// Burst out of range.
    #[error("burst {burst} is out of range: 1 to {MAX_BURST} packets")]
    Burst {
        /// Given.
        burst: usize,
    },
    /// Cache too large.
    #[error("cache size {size} is out of range: 0 to {MAX_CACHE_SIZE} buffers")]
    CacheSize {
        /// Given.
        size: usize,
    },
    /// Packet size out of range.
    #[error("packet size {size} is out of range: {MIN_PACKET_SIZE} to {DEFAULT_DATA_ROOM} bytes (the buffer's data room)")]
    PacketSize {
        /// Given.
        size: usize,
    },
    /// Ring size not a power of two in range.
    #[error("ring size {size} must be a power of two from 1 to {MAX_RING_SIZE}")]
    RingSize {
        /// Given.
        size: usize,
    },
    /// A zero run time.
    #[error("a duration of 0 would stop before forwarding anything: give a positive duration, or none to run until a signal")]
    DurationZero,
    /// Too long a run time.
    #[error("duration {} is longer than the maximum {}", format_duration(*.0), format_duration(MAX_DURATION))]
    DurationTooLong(Duration),
    /// Statistics period out of range.
    #[error(
        "statistics period {} is out of range: 0 (final summary only) or {} to {}",
        format_duration(*.0), format_duration(MIN_STATS_PERIOD), format_duration(MAX_DURATION)
    )]
    StatsPeriod(Duration),
    /// Too many tx-first bursts.
    #[error("{tx_first} tx-first bursts of {burst} is too many: at most {max}, because {limit}")]
    TxFirstTooLarge {
        /// Given.
        tx_first: usize,
        /// Burst size.
        burst: usize,
        /// The bound.
        max: usize,
        /// Where the bound comes from.
        limit: TxFirstLimit,
    },
    /// A pool smaller than the workers can hold.
    #[error(
        "a pool of {nb_mbuf} buffers is too small: these settings need at least {minimum} \
         ({rule}); with fewer, a worker can find no buffer to receive into"
    )]
    PoolTooSmall {
        /// Given.
        nb_mbuf: u64,
        /// The minimum.
        minimum: u64,
        /// The rule with its figures.
        rule: String,
    },
    /// A pool larger than allowed.
    #[error("a pool of {nb_mbuf} buffers is more than the maximum {MAX_NB_MBUF}")]
    PoolTooLarge {
        /// Given.
        nb_mbuf: u64,
    },
    /// The default pool for these settings would be larger than allowed.
    #[error(
        "these settings need a pool of {} buffers ({rule}), more than the maximum {MAX_NB_MBUF}: \
         use fewer cores, ports or tx-first bursts, or a smaller ring or cache",
        .needed.map_or("more than 2^64".to_string(), |n| n.to_string())
    )]
    DefaultPoolTooLarge {
        /// Buffers needed (`None`: more than a u64 holds).
        needed: Option<u64>,
        /// The rule with its figures.
        rule: String,
    },
    /// A peer for a port that does not exist.
    #[error("peer {peer} names port {}, but there are {ports} ports (0 to {})", .peer.port, .ports.saturating_sub(1))]
    EthPeerNoSuchPort {
        /// The peer given.
        peer: EthPeer,
        /// Ports there are.
        ports: usize,
    },
    /// Two peers for one port.
    #[error("port {port} is given two peers ({first} and {second})")]
    EthPeerTwice {
        /// The port.
        port: usize,
        /// First MAC.
        first: MacAddr,
        /// Second MAC.
        second: MacAddr,
    },
    /// An empty hugetlbfs path.
    #[error("the hugetlbfs directory is empty: give the mount point, such as /dev/hugepages")]
    EmptyHugeDir,
    /// A mapping with the workers given as a count.
    #[error(
        "a core/port mapping names the worker CPUs itself: give the cores as a CPU list that \
         holds the mapping's CPUs ({cpus}), or leave the cores out"
    )]
    MappingWithCount {
        /// The mapping's CPUs.
        cpus: CpuSet,
    },
    /// A mapping CPU that is not a worker core.
    #[error("CPU {cpu} polls ports in the mapping but is not a worker core ({cores})")]
    MappingCpuNotACore {
        /// The CPU.
        cpu: CpuId,
        /// The worker cores.
        cores: CpuSet,
    },
    /// A worker core that polls nothing.
    #[error(
        "worker CPU {cpu} polls no port in the mapping: add an entry c{cpu}=<port> or take \
         the CPU out of the worker cores"
    )]
    CoreNotMapped {
        /// The CPU.
        cpu: CpuId,
    },
    /// A mapping entry naming a port that does not exist.
    #[error("CPU {cpu} is mapped to port {port}, but there are {ports} ports (0 to {})", .ports.saturating_sub(1))]
    MappingNoSuchPort {
        /// The CPU.
        cpu: CpuId,
        /// The port.
        port: u16,
        /// Ports there are.
        ports: usize,
    },
    /// A port no worker polls.
    #[error(
        "port {port} ({spec}) is polled by no CPU in the mapping: every port needs at least one"
    )]
    PortNotPolled {
        /// The port.
        port: usize,
        /// Its spec.
        spec: PortSpec,
    },
    /// A descriptor count a port's driver cannot take.
    #[error("port {port} ({spec}): {source}")]
    Descriptors {
        /// The port.
        port: usize,
        /// Its spec.
        spec: PortSpec,
        /// The driver's refusal, with its limits.
        source: RingSizeError,
    },
    /// A descriptor count no VF driver takes.
    #[error("{count} {dir} descriptors: no VF driver takes that ({})", describe_ring_limits(*.dir))]
    DescriptorsNoDriver {
        /// The count.
        count: usize,
        /// Which ring.
        dir: RingDir,
    },
    /// More memory than the cap allows.
    #[error(
        "these settings need {} MiB ({need}), more than the {cap_mib} MiB allowed: raise the \
         memory cap (FP_MEMORY) or lower the pool size (NB_MBUF), descriptors or cores",
        .need.total_bytes().div_ceil(MIB)
    )]
    MemoryCap {
        /// The cap.
        cap_mib: u64,
        /// What is needed.
        need: MemoryNeed,
    },
    /// A zero memory cap.
    #[error("a memory cap of 0 MiB leaves no room for the pool")]
    MemoryCapZero,
}

/// Bytes in a MiB.
pub const MIB: u64 = 1 << 20;

/// Bytes per descriptor counted against the memory cap: iavf's 32-byte
/// descriptors (docs/facts/nic-facts.md B.4.3), the larger of the two
/// formats (ixgbevf and igbvf use 16).
pub const CAP_DESC_BYTES: u64 = 32;

/// What the memory cap is checked against: the pool and the VF rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryNeed {
    /// Buffers in the pool.
    pub buffers: u64,
    /// Bytes each takes (header, headroom, data room).
    pub element_size: u64,
    /// VF descriptor rings (one RX and one TX per worker and VF port).
    pub vf_rings: u64,
    /// Descriptors in each queue pair's two rings.
    pub descriptors_per_pair: u64,
}

impl MemoryNeed {
    /// Bytes of the pool.
    pub fn pool_bytes(&self) -> u64 {
        self.buffers.saturating_mul(self.element_size)
    }

    /// Bytes of the descriptor rings (at [`CAP_DESC_BYTES`] each).
    pub fn ring_bytes(&self) -> u64 {
        self.vf_rings
            .saturating_mul(self.descriptors_per_pair)
            .saturating_mul(CAP_DESC_BYTES)
    }

    /// Everything.
    pub fn total_bytes(&self) -> u64 {
        self.pool_bytes().saturating_add(self.ring_bytes())
    }
}

impl std::fmt::Display for MemoryNeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pool {} buffers x {} bytes = {} bytes + {} VF queue pairs x {} descriptors x \
             {CAP_DESC_BYTES} bytes = {} bytes",
            self.buffers,
            self.element_size,
            self.pool_bytes(),
            self.vf_rings,
            self.descriptors_per_pair,
            self.ring_bytes()
        )
    }
}

impl RunConfigError {
    /// The setting this error is about.
    pub fn setting(&self) -> Setting {
        use RunConfigError as E;
        match self {
            E::NoPorts | E::TooManyPorts { .. } | E::OddRingPorts { .. } => Setting::Ports,
            E::DuplicatePort { .. } | E::SimWithVf { .. } => Setting::Ports,
            E::NoCores | E::TooManyCores { .. } | E::AfPacketTooManyQueues { .. } => Setting::Cores,
            E::AfPacketRings(
                RingConfigError::BlockSize { .. } | RingConfigError::TooLarge { what: "RX", .. },
            ) => Setting::AfPacketBlockSize,
            E::AfPacketRings(RingConfigError::Count { what, .. }) if what.starts_with("RX") => {
                Setting::AfPacketBlocks
            }
            E::AfPacketRings(_) => Setting::AfPacketTxFrames,
            E::Burst { .. } => Setting::Burst,
            E::CacheSize { .. } => Setting::CacheSize,
            E::PacketSize { .. } => Setting::PacketSize,
            E::RingSize { .. } => Setting::RingSize,
            E::DurationZero | E::DurationTooLong(_) => Setting::Duration,
            E::StatsPeriod(_) => Setting::StatsPeriod,
            E::TxFirstTooLarge { .. } => Setting::TxFirst,
            E::PoolTooSmall { .. } | E::PoolTooLarge { .. } | E::DefaultPoolTooLarge { .. } => {
                Setting::NbMbuf
            }
            E::EthPeerNoSuchPort { .. } | E::EthPeerTwice { .. } => Setting::EthPeer,
            E::EmptyHugeDir => Setting::Memory,
            E::MappingWithCount { .. }
            | E::MappingCpuNotACore { .. }
            | E::CoreNotMapped { .. }
            | E::MappingNoSuchPort { .. }
            | E::PortNotPolled { .. } => Setting::CorePortMapping,
            E::Descriptors { source, .. } if source.dir == RingDir::Tx => Setting::TxDescriptors,
            E::DescriptorsNoDriver {
                dir: RingDir::Tx, ..
            } => Setting::TxDescriptors,
            E::Descriptors { .. } | E::DescriptorsNoDriver { .. } => Setting::RxDescriptors,
            E::MemoryCap { .. } | E::MemoryCapZero => Setting::MemoryCap,
        }
    }
}

/// A configuration [`RunConfig::validate`] accepted, with its defaults
/// resolved. Reads as the [`RunConfig`] it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRunConfig {
    config: RunConfig,
    tx_first: usize,
    nb_mbuf: u32,
    demand: PoolDemand,
}

impl Deref for ValidRunConfig {
    type Target = RunConfig;
    fn deref(&self) -> &RunConfig {
        &self.config
    }
}

impl ValidRunConfig {
    /// Bursts seeded on every TX queue at start.
    pub fn tx_first(&self) -> usize {
        self.tx_first
    }

    /// Buffers in the pool.
    pub fn nb_mbuf(&self) -> u32 {
        self.nb_mbuf
    }

    /// Worker cores.
    pub fn workers(&self) -> usize {
        self.config.cores.workers()
    }

    /// What the pool feeds, with the figures used to size it.
    pub fn pool_demand(&self) -> &PoolDemand {
        &self.demand
    }

    /// The destination MAC written by the mac mode on port `port`.
    pub fn peer_mac(&self, port: usize) -> MacAddr {
        self.given_peer_mac(port)
            .unwrap_or(MacAddr::local(port as u16))
    }

    /// The peer `--eth-peer` gave for `port`, if one did.
    pub fn given_peer_mac(&self, port: usize) -> Option<MacAddr> {
        self.config
            .eth_peers
            .iter()
            .find(|p| p.port == port)
            .map(|p| p.mac)
    }

    /// The configuration as given.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }
}

impl RunConfig {
    /// Checks every setting and how they combine, and resolves the
    /// defaults (tx-first bursts, pool size). The first problem found is
    /// returned.
    pub fn validate(self) -> Result<ValidRunConfig, RunConfigError> {
        self.check_ports()?;
        let workers = self.check_cores()?;
        self.check_ranges()?;
        self.check_peers()?;
        self.check_mapping()?;
        self.check_descriptors()?;
        let (tx_first, nb_mbuf, demand) = self.size_pool(workers)?;
        Ok(ValidRunConfig {
            config: self,
            tx_first,
            nb_mbuf,
            demand,
        })
    }

    /// RX descriptors per VF queue: as given, or the drivers' default.
    pub fn vf_rx_ring(&self) -> usize {
        self.rx_descriptors.unwrap_or(DEFAULT_VF_RX_RING)
    }

    /// TX descriptors per VF queue: as given, or the drivers' default.
    pub fn vf_tx_ring(&self) -> usize {
        self.tx_descriptors.unwrap_or(DEFAULT_VF_TX_RING)
    }

    /// What a pool of `buffers` and the VF rings of `workers` take, as
    /// checked against [`memory_cap_mib`](Self::memory_cap_mib): the
    /// buffers at the pool's element size, and one RX and one TX ring per
    /// worker and VF port at [`CAP_DESC_BYTES`] a descriptor. Not counted:
    /// rounding up to whole hugepages (at most one page more per region),
    /// AF_PACKET rings (ordinary kernel memory) and the heap.
    pub fn memory_need(&self, buffers: u64, workers: usize) -> MemoryNeed {
        let vf_ports = self.count(PortSpec::is_vf) as u64;
        MemoryNeed {
            buffers,
            element_size: PoolConfig::new("", 0).element_size() as u64,
            vf_rings: vf_ports.saturating_mul(workers as u64),
            descriptors_per_pair: (self.vf_rx_ring() as u64)
                .saturating_add(self.vf_tx_ring() as u64),
        }
    }

    fn count(&self, f: impl Fn(&PortSpec) -> bool) -> usize {
        self.ports.iter().filter(|p| f(p)).count()
    }

    fn check_ports(&self) -> Result<(), RunConfigError> {
        if self.ports.is_empty() {
            return Err(RunConfigError::NoPorts);
        }
        if self.ports.len() > MAX_PORTS {
            return Err(RunConfigError::TooManyPorts {
                count: self.ports.len(),
            });
        }
        let rings = self.count(|p| *p == PortSpec::Ring);
        if !rings.is_multiple_of(2) {
            return Err(RunConfigError::OddRingPorts { count: rings });
        }
        let first = |f: fn(&PortSpec) -> bool| self.ports.iter().position(f);
        if let (Some(sim), Some(vf)) = (
            first(|p| matches!(p, PortSpec::Sim(_))),
            first(PortSpec::is_device),
        ) {
            return Err(RunConfigError::SimWithVf {
                sim,
                sim_spec: self.ports[sim].clone(),
                vf,
                vf_spec: self.ports[vf].clone(),
            });
        }
        for (again, spec) in self.ports.iter().enumerate() {
            // Null, ring and simulated ports can be many: each is made
            // anew.
            if matches!(spec, PortSpec::Null | PortSpec::Ring | PortSpec::Sim(_)) {
                continue;
            }
            if let Some(first) = self.ports[..again].iter().position(|p| p == spec) {
                return Err(RunConfigError::DuplicatePort {
                    spec: spec.clone(),
                    first,
                    again,
                });
            }
        }
        Ok(())
    }

    fn check_cores(&self) -> Result<usize, RunConfigError> {
        let workers = self.cores.workers();
        if workers == 0 {
            return Err(RunConfigError::NoCores);
        }
        if workers > MAX_WORKERS {
            return Err(RunConfigError::TooManyCores { count: workers });
        }
        if workers > MAX_QUEUES {
            for (port, spec) in self.ports.iter().enumerate() {
                if let PortSpec::AfPacket(ifname) = spec {
                    return Err(RunConfigError::AfPacketTooManyQueues {
                        port,
                        ifname: ifname.clone(),
                        workers,
                    });
                }
            }
        }
        Ok(workers)
    }

    fn check_ranges(&self) -> Result<(), RunConfigError> {
        self.afpacket
            .sizes(af_packet::page_size(), usize::from(DEFAULT_DATA_ROOM))
            .map_err(RunConfigError::AfPacketRings)?;
        if self.burst == 0 || self.burst > MAX_BURST {
            return Err(RunConfigError::Burst { burst: self.burst });
        }
        if self.cache_size > MAX_CACHE_SIZE {
            return Err(RunConfigError::CacheSize {
                size: self.cache_size,
            });
        }
        if !(MIN_PACKET_SIZE..=DEFAULT_DATA_ROOM as usize).contains(&self.packet_size) {
            return Err(RunConfigError::PacketSize {
                size: self.packet_size,
            });
        }
        if !self.ring_size.is_power_of_two() || self.ring_size > MAX_RING_SIZE {
            return Err(RunConfigError::RingSize {
                size: self.ring_size,
            });
        }
        match self.duration {
            Some(Duration::ZERO) => return Err(RunConfigError::DurationZero),
            Some(d) if d > MAX_DURATION => return Err(RunConfigError::DurationTooLong(d)),
            _ => {}
        }
        let p = self.stats_period;
        if p != Duration::ZERO && !(MIN_STATS_PERIOD..=MAX_DURATION).contains(&p) {
            return Err(RunConfigError::StatsPeriod(p));
        }
        if let MemoryBacking::Hugetlbfs(dir) = &self.backing {
            if dir.as_os_str().is_empty() {
                return Err(RunConfigError::EmptyHugeDir);
            }
        }
        Ok(())
    }

    fn check_peers(&self) -> Result<(), RunConfigError> {
        for (i, peer) in self.eth_peers.iter().enumerate() {
            if peer.port >= self.ports.len() {
                return Err(RunConfigError::EthPeerNoSuchPort {
                    peer: *peer,
                    ports: self.ports.len(),
                });
            }
            if let Some(first) = self.eth_peers[..i].iter().find(|p| p.port == peer.port) {
                return Err(RunConfigError::EthPeerTwice {
                    port: peer.port,
                    first: first.mac,
                    second: peer.mac,
                });
            }
        }
        Ok(())
    }

    fn check_mapping(&self) -> Result<(), RunConfigError> {
        let Some(map) = &self.core_port_mapping else {
            return Ok(());
        };
        let cores = match &self.cores {
            CoreChoice::List(set) => set,
            CoreChoice::Count(_) => {
                return Err(RunConfigError::MappingWithCount { cpus: map.cpus() });
            }
        };
        for e in map.entries() {
            if !cores.contains(e.cpu) {
                return Err(RunConfigError::MappingCpuNotACore {
                    cpu: e.cpu,
                    cores: cores.clone(),
                });
            }
            if let Some(&port) = e
                .ports
                .iter()
                .find(|&&p| usize::from(p) >= self.ports.len())
            {
                return Err(RunConfigError::MappingNoSuchPort {
                    cpu: e.cpu,
                    port,
                    ports: self.ports.len(),
                });
            }
        }
        let mapped = map.cpus();
        if let Some(cpu) = cores.iter().find(|&c| !mapped.contains(c)) {
            return Err(RunConfigError::CoreNotMapped { cpu });
        }
        // Every port kind takes several RX queues (null and AF_PACKET up
        // to MAX_QUEUES, more than the workers checked above; ring pairs
        // as many as there are workers); a VF's queue count is known only
        // once it is open, and its driver refuses more than it has then.
        if let Some(port) = (0..self.ports.len()).find(|&p| map.pollers(p).is_empty()) {
            return Err(RunConfigError::PortNotPolled {
                port,
                spec: self.ports[port].clone(),
            });
        }
        Ok(())
    }

    fn check_descriptors(&self) -> Result<(), RunConfigError> {
        for (dir, given) in [
            (RingDir::Rx, self.rx_descriptors),
            (RingDir::Tx, self.tx_descriptors),
        ] {
            let Some(count) = given else { continue };
            if !RING_LIMITS.iter().any(|l| l.check(dir, count).is_ok()) {
                return Err(RunConfigError::DescriptorsNoDriver { count, dir });
            }
            // Simulated VFs name their driver; a real VF's is known from
            // sysfs at start, where the same check is made.
            for (port, spec) in self.ports.iter().enumerate() {
                let PortSpec::Sim(model) = spec else { continue };
                let driver = match model {
                    SimModel::Ixgbevf(_) => DriverKind::Ixgbevf,
                    SimModel::Iavf(_) => DriverKind::Iavf,
                };
                ring_limits(driver).check(dir, count).map_err(|source| {
                    RunConfigError::Descriptors {
                        port,
                        spec: spec.clone(),
                        source,
                    }
                })?;
            }
        }
        Ok(())
    }

    /// Resolves tx-first and the pool size by the rule of
    /// [`crate::pool_sizing`], and checks both.
    fn size_pool(&self, workers: usize) -> Result<(usize, u32, PoolDemand), RunConfigError> {
        let ring_ports = self.count(|p| *p == PortSpec::Ring);
        let vf_ports = self.count(PortSpec::is_vf);
        let base = PoolDemand {
            workers,
            ports: self.ports.len(),
            ring_ports,
            vf_ports,
            cache_size: self.cache_size,
            burst: self.burst,
            tx_first: 0,
            ring_size: self.ring_size,
            vf_queue_pair: (self.vf_rx_ring() as u64).saturating_add(self.vf_tx_ring() as u64),
            exception: (self.mode == FwdMode::L3).then(ExceptionDemand::default),
        };
        // The figures are bounded by the checks above, so these sums fit;
        // a `None` would still be reported, never wrapped.
        let too_large = |d: &PoolDemand| RunConfigError::DefaultPoolTooLarge {
            needed: d.default_size(),
            rule: d.explain_default(),
        };
        let min0 = base.minimum().ok_or_else(|| too_large(&base))?;
        // Buffers left for seeding once every worker has what it needs.
        let room = match self.nb_mbuf {
            Some(n) if n > MAX_NB_MBUF => {
                return Err(RunConfigError::PoolTooLarge { nb_mbuf: n });
            }
            Some(n) if n < min0 => {
                return Err(RunConfigError::PoolTooSmall {
                    nb_mbuf: n,
                    minimum: min0,
                    rule: base.explain_minimum(),
                });
            }
            Some(n) => n - min0,
            None => match base.default_size() {
                Some(d) if d <= MAX_NB_MBUF => MAX_NB_MBUF - d,
                _ => return Err(too_large(&base)),
            },
        };

        // Every tx-first burst takes `burst` buffers on every port of every worker.
        let per_burst = (workers as u64)
            .saturating_mul(self.ports.len() as u64)
            .saturating_mul(self.burst as u64);
        let by_pool = usize::try_from(room / per_burst.max(1)).unwrap_or(usize::MAX);
        let mut limits = vec![(by_pool, TxFirstLimit::Pool { room })];
        if ring_ports > 0 {
            limits.push((
                self.ring_size.div_ceil(self.burst),
                TxFirstLimit::Ring {
                    ring_size: self.ring_size,
                },
            ));
        }
        if vf_ports > 0 {
            limits.push((
                self.vf_tx_ring().div_ceil(self.burst),
                TxFirstLimit::VfTxRing {
                    descriptors: self.vf_tx_ring(),
                },
            ));
        }
        let (max, limit) = limits
            .into_iter()
            .min_by_key(|(m, _)| *m)
            .unwrap_or((by_pool, TxFirstLimit::Pool { room }));
        // Ring ports only carry what is seeded: by default at least one
        // burst, or the loop would idle at 0 packets per second.
        let asked = match self.tx_first {
            None if ring_ports > 0 => Some(DEFAULT_TX_FIRST_WITH_RINGS.min(max).max(1)),
            given => given,
        };
        let tx_first = match asked {
            Some(t) if t > max => {
                return Err(RunConfigError::TxFirstTooLarge {
                    tx_first: t,
                    burst: self.burst,
                    max,
                    limit,
                });
            }
            Some(t) => t,
            None => 0,
        };

        let demand = PoolDemand { tx_first, ..base };
        let mut nb = match self.nb_mbuf {
            Some(n) => n,
            None => demand.default_size().ok_or_else(|| too_large(&demand))?,
        };
        if let Some(cap) = self.memory_cap_mib {
            if cap == 0 {
                return Err(RunConfigError::MemoryCapZero);
            }
            let cap_bytes = cap.saturating_mul(MIB);
            if self.nb_mbuf.is_none() {
                // The default pool shrinks to what the cap holds, never
                // below the minimum (the check below then refuses it).
                let empty = self.memory_need(0, workers);
                let fit = cap_bytes.saturating_sub(empty.ring_bytes()) / empty.element_size.max(1);
                nb = nb.min(fit.max(demand.minimum().unwrap_or(u64::MAX)));
            }
            let need = self.memory_need(nb, workers);
            if need.total_bytes() > cap_bytes {
                return Err(RunConfigError::MemoryCap { cap_mib: cap, need });
            }
        }
        // Within MAX_NB_MBUF by the room computed above, so within u32;
        // checked all the same.
        let nb = u32::try_from(nb)
            .ok()
            .filter(|&n| u64::from(n) <= MAX_NB_MBUF)
            .ok_or_else(|| too_large(&demand))?;
        Ok((tx_first, nb, demand))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu_list::parse_cpu_list;
    use crate::pool_sizing::DEFAULT_NB_MBUF_FLOOR;
    use std::path::PathBuf;

    fn ports(list: &str) -> Vec<PortSpec> {
        list.split(',').map(|p| p.parse().unwrap()).collect()
    }

    fn with(f: impl FnOnce(&mut RunConfig)) -> Result<ValidRunConfig, RunConfigError> {
        let mut c = RunConfig {
            backing: MemoryBacking::NoHuge,
            ..RunConfig::default()
        };
        f(&mut c);
        c.validate()
    }

    fn err(f: impl FnOnce(&mut RunConfig)) -> RunConfigError {
        with(f).expect_err("must be refused")
    }

    #[test]
    fn the_default_is_valid_with_its_defaults_resolved() {
        let v = RunConfig::default().validate().unwrap();
        assert_eq!(v.tx_first(), 0);
        assert_eq!(u64::from(v.nb_mbuf()), DEFAULT_NB_MBUF_FLOOR);
        assert_eq!(v.workers(), 1);
        assert_eq!(v.peer_mac(1), MacAddr::local(1));
        assert_eq!(*v.config(), RunConfig::default());
    }

    #[test]
    fn ring_ports_seed_16_bursts_or_what_the_ring_holds() {
        let v = with(|c| c.ports = ports("ring,ring")).unwrap();
        assert_eq!(v.tx_first(), 16);
        let v = with(|c| {
            c.ports = ports("ring,ring");
            c.ring_size = 64;
        })
        .unwrap();
        assert_eq!(v.tx_first(), 2);
    }

    #[test]
    fn ports_are_checked() {
        assert_eq!(err(|c| c.ports.clear()), RunConfigError::NoPorts);
        assert_eq!(
            err(|c| c.ports = vec![PortSpec::Null; MAX_PORTS + 1]),
            RunConfigError::TooManyPorts {
                count: MAX_PORTS + 1
            }
        );
        assert_eq!(
            err(|c| c.ports = ports("ring,null")),
            RunConfigError::OddRingPorts { count: 1 }
        );
        let e = err(|c| c.ports = ports("afpacket:a,null,afpacket:a"));
        assert_eq!(
            e.to_string(),
            "afpacket:a is given twice (ports 0 and 2): a device or interface can be one port only"
        );
        assert_eq!(e.setting(), Setting::Ports);
        assert!(matches!(
            err(|c| c.ports = ports("0000:01:10.0,0000:01:10.0")),
            RunConfigError::DuplicatePort {
                first: 0,
                again: 1,
                ..
            }
        ));
    }

    #[test]
    fn simulated_vfs_can_repeat_but_not_mix_with_real_ones() {
        let v = with(|c| c.ports = ports("sim:ixgbevf,sim:ixgbevf,sim:ixgbevf:x550")).unwrap();
        // Pool and tx-first are sized as for VFs (512 + 512 descriptors).
        assert_eq!(v.pool_demand().vf_ports, 3);
        assert_eq!(v.tx_first(), 0);
        // iavf VFs count the same, alone or with ixgbevf ones.
        let v = with(|c| c.ports = ports("sim:iavf,sim:ixgbevf,sim:iavf:avf,sim:iavf")).unwrap();
        assert_eq!(v.pool_demand().vf_ports, 4);
        let e = err(|c| c.ports = ports("sim:iavf:e810,0000:01:10.0"));
        assert!(
            e.to_string()
                .starts_with("port 0 (sim:iavf:avf) is a simulated VF and port 1 (0000:01:10.0)"),
            "{e}"
        );
        let e = err(|c| c.ports = ports("null,sim:ixgbevf,0000:01:10.0"));
        assert_eq!(
            e.to_string(),
            "port 1 (sim:ixgbevf:82599) is a simulated VF and port 2 (0000:01:10.0) a real one: \
             a run has one or the other, since the buffer pool is mapped for DMA in one address \
             space (the vfio container's or the device models')"
        );
        assert_eq!(e.setting(), Setting::Ports);
    }

    #[test]
    fn cores_are_checked() {
        assert_eq!(
            err(|c| c.cores = CoreChoice::Count(0)),
            RunConfigError::NoCores
        );
        assert_eq!(
            err(|c| c.cores = CoreChoice::List(parse_cpu_list("").unwrap())),
            RunConfigError::NoCores
        );
        assert_eq!(
            err(|c| c.cores = CoreChoice::Count(usize::MAX)),
            RunConfigError::TooManyCores { count: usize::MAX }
        );
        // One AF_PACKET queue pair per worker, up to a fanout group's
        // worth.
        assert!(with(|c| {
            c.ports = ports("afpacket:veth0,afpacket:veth1");
            c.cores = CoreChoice::Count(2);
        })
        .is_ok());
        let e = err(|c| {
            c.ports = ports("null,afpacket:veth1");
            c.cores = CoreChoice::Count(MAX_QUEUES + 1);
        });
        assert_eq!(e.setting(), Setting::Cores);
        assert_eq!(
            e.to_string(),
            "port 1 (afpacket:veth1) would get one queue per worker, 65, and an AF_PACKET port \
             has at most 64"
        );
        assert!(with(|c| c.ports = ports("afpacket:veth0,afpacket:veth1")).is_ok());
    }

    #[test]
    fn ranges_are_checked_and_name_the_value() {
        for (e, text, setting) in [
            (
                err(|c| c.burst = 0),
                "burst 0 is out of range: 1 to 512 packets",
                Setting::Burst,
            ),
            (err(|c| c.burst = 513), "burst 513", Setting::Burst),
            (
                err(|c| c.cache_size = 513),
                "cache size 513 is out of range: 0 to 512",
                Setting::CacheSize,
            ),
            (
                err(|c| c.packet_size = 59),
                "packet size 59 is out of range: 60 to 2048",
                Setting::PacketSize,
            ),
            (
                err(|c| c.packet_size = 2049),
                "packet size 2049",
                Setting::PacketSize,
            ),
            (
                err(|c| c.ring_size = 1000),
                "ring size 1000 must be a power of two",
                Setting::RingSize,
            ),
            (err(|c| c.ring_size = 0), "ring size 0", Setting::RingSize),
            (
                err(|c| c.afpacket.rx_block_size = 1000),
                "AF_PACKET rings: RX block size 1000 must be a power of two",
                Setting::AfPacketBlockSize,
            ),
            (
                err(|c| c.afpacket.rx_blocks = 0),
                "AF_PACKET rings: RX blocks 0 is out of range: 1 to 65536",
                Setting::AfPacketBlocks,
            ),
            (
                err(|c| c.afpacket.tx_frames = 70000),
                "AF_PACKET rings: TX frames 70000 is out of range",
                Setting::AfPacketTxFrames,
            ),
            (
                err(|c| c.ring_size = 2147483648),
                "ring size 2147483648",
                Setting::RingSize,
            ),
            (
                err(|c| c.duration = Some(Duration::ZERO)),
                "a duration of 0",
                Setting::Duration,
            ),
            (
                err(|c| c.duration = Some(MAX_DURATION * 2)),
                "duration 63072000 s is longer than the maximum 31536000 s",
                Setting::Duration,
            ),
            (
                err(|c| c.stats_period = Duration::from_millis(10)),
                "statistics period 10 ms is out of range: 0 (final summary only) or 100 ms to",
                Setting::StatsPeriod,
            ),
            (
                err(|c| c.backing = MemoryBacking::Hugetlbfs(PathBuf::new())),
                "hugetlbfs directory is empty",
                Setting::Memory,
            ),
        ] {
            assert!(e.to_string().contains(text), "{e}");
            assert_eq!(e.setting(), setting, "{e}");
        }
        assert!(with(|c| c.stats_period = Duration::ZERO).is_ok());
        assert!(with(|c| c.cache_size = 0).is_ok());
    }

    #[test]
    fn peers_are_checked() {
        let peer = |s: &str| s.parse::<EthPeer>().unwrap();
        let e = err(|c| c.eth_peers = vec![peer("2,02:00:00:00:00:09")]);
        assert_eq!(
            e.to_string(),
            "peer 2,02:00:00:00:00:09 names port 2, but there are 2 ports (0 to 1)"
        );
        let e =
            err(|c| c.eth_peers = vec![peer("1,02:00:00:00:00:09"), peer("1,02:00:00:00:00:0a")]);
        assert_eq!(e.setting(), Setting::EthPeer);
        let v = with(|c| c.eth_peers = vec![peer("1,02:00:00:00:00:09")]).unwrap();
        assert_eq!(v.peer_mac(1), "02:00:00:00:00:09".parse().unwrap());
        assert_eq!(v.peer_mac(0), MacAddr::local(0));
    }

    #[test]
    fn a_pool_too_small_says_the_minimum() {
        let e = err(|c| c.nb_mbuf = Some(10));
        assert_eq!(e.setting(), Setting::NbMbuf);
        assert_eq!(
            e.to_string(),
            "a pool of 10 buffers is too small: these settings need at least 416 (1 worker x \
             (1.5 x cache 256 + burst 32 + 2 ports x 0 tx-first bursts x 32 + 0 VF ports x 1024 \
             descriptors)); with fewer, a worker can find no buffer to receive into"
        );
        assert!(with(|c| c.nb_mbuf = Some(416)).is_ok());
        assert!(matches!(
            err(|c| c.nb_mbuf = Some(415)),
            RunConfigError::PoolTooSmall { minimum: 416, .. }
        ));
        assert!(matches!(
            err(|c| c.nb_mbuf = Some(0)),
            RunConfigError::PoolTooSmall { .. }
        ));
        assert_eq!(
            err(|c| c.nb_mbuf = Some(u64::MAX)),
            RunConfigError::PoolTooLarge { nb_mbuf: u64::MAX }
        );
    }

    #[test]
    fn large_settings_do_not_overflow_the_default_pool() {
        let e = err(|c| {
            c.ports = ports("ring,ring");
            c.cores = CoreChoice::Count(MAX_WORKERS);
            c.ring_size = MAX_RING_SIZE;
            c.burst = MAX_BURST;
        });
        assert!(
            matches!(e, RunConfigError::DefaultPoolTooLarge { .. }),
            "{e}"
        );
        assert!(
            e.to_string().contains("more than the maximum 16777215"),
            "{e}"
        );
    }

    #[test]
    fn tx_first_is_bounded_by_the_ring_and_the_pool() {
        let e = err(|c| {
            c.ports = ports("ring,ring");
            c.tx_first = Some(33);
        });
        assert_eq!(e.setting(), Setting::TxFirst);
        assert_eq!(
            e.to_string(),
            "33 tx-first bursts of 32 is too many: at most 32, because bursts beyond the ring \
             port's 1024 slots would be dropped on arrival"
        );
        assert!(with(|c| {
            c.ports = ports("ring,ring");
            c.tx_first = Some(32);
        })
        .is_ok());
        // Null ports hold nothing: the pool is the bound.
        let e = err(|c| c.tx_first = Some(usize::MAX));
        assert!(
            matches!(
                e,
                RunConfigError::TxFirstTooLarge {
                    limit: TxFirstLimit::Pool { .. },
                    ..
                }
            ),
            "{e}"
        );
        let e = err(|c| {
            c.nb_mbuf = Some(1000);
            c.tx_first = Some(10);
        });
        // 1000 - 416 = 584 buffers for 2 ports x 32: 9 bursts.
        assert!(
            matches!(e, RunConfigError::TxFirstTooLarge { max: 9, .. }),
            "{e}"
        );
        // Ring ports with a pool that has no room to seed them would idle.
        let e = err(|c| {
            c.ports = ports("ring,ring");
            c.nb_mbuf = Some(416);
        });
        assert!(
            matches!(
                e,
                RunConfigError::TxFirstTooLarge {
                    tx_first: 1,
                    max: 0,
                    ..
                }
            ),
            "{e}"
        );
        let v = with(|c| c.tx_first = Some(1000)).unwrap();
        assert_eq!(
            u64::from(v.nb_mbuf()),
            v.pool_demand().default_size().unwrap()
        );
        assert!(v.nb_mbuf() > 64_000);
    }

    /// l3 mode counts its exception path: a pool the io mode takes is
    /// refused with that term named, and the default holds every punt and
    /// injection ring full besides the workers' own minimum.
    #[test]
    fn l3_pools_count_the_exception_path() {
        let io = with(|_| {}).unwrap();
        let l3 = with(|c| c.mode = FwdMode::L3).unwrap();
        let io_min = io.pool_demand().minimum().unwrap();
        let exc = l3.pool_demand().exception_path().unwrap();
        assert_eq!(l3.pool_demand().minimum(), Some(io_min + exc));
        let rings = (crate::pool_sizing::PUNT_RING_SIZE
            + l3.ports.len() * crate::pool_sizing::INJECT_RING_SIZE) as u64;
        assert!(exc > rings);
        assert!(u64::from(l3.nb_mbuf()) >= io_min + rings);
        let e = err(|c| {
            c.mode = FwdMode::L3;
            c.nb_mbuf = Some(io_min + rings - 1);
        });
        assert!(
            matches!(e, RunConfigError::PoolTooSmall { minimum, .. } if minimum == io_min + exc),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("l3 exception path (1 worker x punt ring 1024"),
            "{e}"
        );
        assert!(with(|c| c.nb_mbuf = Some(io_min + rings - 1)).is_ok());
    }

    fn mapping(s: &str) -> Option<CorePortMapping> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn a_mapping_is_checked_against_cores_and_ports() {
        let cpus = |s: &str| CoreChoice::List(parse_cpu_list(s).unwrap());
        let ok = with(|c| {
            c.ports = ports("ring,ring,null");
            c.cores = cpus("1-3");
            c.core_port_mapping = mapping("c1=0/c2=0:2/c3=1");
        })
        .unwrap();
        assert_eq!(ok.workers(), 3);
        for (f, want) in [
            (
                Box::new(|c: &mut RunConfig| c.core_port_mapping = mapping("c1=0:1"))
                    as Box<dyn FnOnce(&mut RunConfig)>,
                "a core/port mapping names the worker CPUs itself: give the cores as a CPU list \
                 that holds the mapping's CPUs (1), or leave the cores out",
            ),
            (
                Box::new(|c: &mut RunConfig| {
                    c.cores = cpus("1");
                    c.core_port_mapping = mapping("c1=0/c2=1");
                }),
                "CPU 2 polls ports in the mapping but is not a worker core (1)",
            ),
            (
                Box::new(|c: &mut RunConfig| {
                    c.cores = cpus("1-2");
                    c.core_port_mapping = mapping("c1=0:1");
                }),
                "worker CPU 2 polls no port in the mapping: add an entry c2=<port> or take the \
                 CPU out of the worker cores",
            ),
            (
                Box::new(|c: &mut RunConfig| {
                    c.cores = cpus("1");
                    c.core_port_mapping = mapping("c1=0:2");
                }),
                "CPU 1 is mapped to port 2, but there are 2 ports (0 to 1)",
            ),
            (
                Box::new(|c: &mut RunConfig| {
                    c.cores = cpus("1-2");
                    c.core_port_mapping = mapping("c1=0/c2=0");
                }),
                "port 1 (null) is polled by no CPU in the mapping: every port needs at least one",
            ),
        ] {
            let e = err(f);
            assert_eq!(e.to_string(), want);
            assert_eq!(e.setting(), Setting::CorePortMapping);
        }
    }

    #[test]
    fn descriptors_are_checked_against_the_drivers() {
        let v = with(|c| {
            c.ports = ports("sim:ixgbevf,sim:ixgbevf");
            c.rx_descriptors = Some(1024);
            c.tx_descriptors = Some(256);
        })
        .unwrap();
        // The pool holds one buffer per descriptor of every VF queue.
        assert_eq!(v.pool_demand().vf_queue_pair, 1280);
        assert_eq!(v.vf_tx_ring(), 256);
        // ixgbevf takes 1000 TX descriptors, iavf does not.
        let e = err(|c| {
            c.ports = ports("sim:ixgbevf,sim:iavf");
            c.tx_descriptors = Some(1000);
        });
        assert_eq!(
            e.to_string(),
            "port 1 (sim:iavf:xl710): 1000 TX descriptors: iavf takes a multiple of 32 from 64 to 4096"
        );
        assert_eq!(e.setting(), Setting::TxDescriptors);
        // No driver takes 8192, whatever the ports.
        let e = err(|c| c.rx_descriptors = Some(8192));
        assert_eq!(e.setting(), Setting::RxDescriptors);
        assert!(
            e.to_string().starts_with(
                "8192 RX descriptors: no VF driver takes that (ixgbevf: a multiple of 8 from 64 \
                 to 4096;"
            ),
            "{e}"
        );
    }

    #[test]
    fn the_memory_cap_is_checked_and_shrinks_the_default_pool() {
        let element = PoolConfig::new("", 0).element_size() as u64;
        // The sample's figure for FP_MEMORY's documentation.
        assert_eq!(element, 2240);
        // A given pool that does not fit names the figures.
        let e = err(|c| {
            c.nb_mbuf = Some(8192);
            c.memory_cap_mib = Some(16);
        });
        assert_eq!(e.setting(), Setting::MemoryCap);
        assert_eq!(
            e.to_string(),
            "these settings need 18 MiB (pool 8192 buffers x 2240 bytes = 18350080 bytes + 0 VF \
             queue pairs x 1024 descriptors x 32 bytes = 0 bytes), more than the 16 MiB allowed: \
             raise the memory cap (FP_MEMORY) or lower the pool size (NB_MBUF), descriptors or \
             cores"
        );
        assert!(with(|c| {
            c.nb_mbuf = Some(8192);
            c.memory_cap_mib = Some(18);
        })
        .is_ok());
        // Without a pool size, the default shrinks to the cap...
        let v = with(|c| c.memory_cap_mib = Some(4)).unwrap();
        assert_eq!(u64::from(v.nb_mbuf()), 4 * MIB / element);
        // ... VF rings included, but never below the minimum.
        let v = with(|c| {
            c.ports = ports("sim:ixgbevf,sim:ixgbevf");
            c.memory_cap_mib = Some(8);
        })
        .unwrap();
        assert_eq!(
            u64::from(v.nb_mbuf()),
            (8 * MIB - 2 * 1024 * CAP_DESC_BYTES) / element
        );
        let e = err(|c| {
            c.ports = ports("sim:ixgbevf,sim:ixgbevf");
            c.memory_cap_mib = Some(1);
        });
        assert!(
            matches!(e, RunConfigError::MemoryCap { cap_mib: 1, .. }),
            "{e}"
        );
        assert_eq!(
            err(|c| c.memory_cap_mib = Some(0)),
            RunConfigError::MemoryCapZero
        );
    }

    proptest::proptest! {
        /// Whatever the numbers, validation gives an error or a
        /// configuration whose pool is within bounds and at least the
        /// minimum the rule asks for; no panic, no overflow.
        #[test]
        fn any_numbers_validate_or_are_refused(
            workers in 0usize..70_000, nports in 0usize..70, rings in proptest::bool::ANY,
            burst in proptest::prelude::any::<usize>(), cache in 0usize..600,
            ring_exp in 0u32..40, tx_first in proptest::option::of(proptest::prelude::any::<usize>()),
            nb_mbuf in proptest::option::of(proptest::prelude::any::<u64>()),
            small in proptest::bool::ANY,
        ) {
            let cut = |v: usize| if small { v % 1100 } else { v };
            let r = with(|c| {
                c.ports = vec![if rings { PortSpec::Ring } else { PortSpec::Null }; nports];
                c.cores = CoreChoice::Count(workers);
                c.burst = cut(burst);
                c.cache_size = cache;
                c.ring_size = 1usize << ring_exp.min(40);
                c.tx_first = tx_first.map(cut);
                c.nb_mbuf = nb_mbuf.map(|n| if small { n % 100_000 } else { n });
            });
            if let Ok(v) = r {
                let min = v.pool_demand().minimum();
                proptest::prop_assert!(min.is_some_and(|m| m <= u64::from(v.nb_mbuf())));
                proptest::prop_assert!(u64::from(v.nb_mbuf()) <= MAX_NB_MBUF);
                proptest::prop_assert_eq!(v.pool_demand().tx_first, v.tx_first());
            }
        }
    }
}
