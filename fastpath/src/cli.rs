//! The `fastpath` command line: clap's argument structs, and their
//! conversion to a validated [`RunConfig`].
//!
//! Each option's text is parsed by the config crate's parsers (the same
//! ones a fast-path.env file will use) and the result checked by
//! [`RunConfig::validate`]; this module only adds the flag names. The
//! binary and the tests go through [`parse`], so what the tests see is
//! what an operator gets.

use crate::control::commands::{ShowCommand, WatchArgs};
use crate::control::options::{parse_metrics_addr, SocketChoice, DEFAULT_SOCKET};
use crate::control::ControlOptions;
use crate::exception::RateLimit;
use crate::router::{
    default_annotations, parse_backend, parse_rate, PodAddressing, RouterOptions,
    RouterOptionsError,
};
use crate::run::Output;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use config::core_choice::CoreChoice;
use config::core_port_mapping::{parse_core_port_mapping, CorePortMapping};
use config::cpu_list::parse_cpu_list;
use config::duration::parse_duration;
use config::eth_peer::EthPeer;
use config::fast_path_env::{FastPathEnv, FastPathEnvError, FpMask, FpPorts, Origin, DEFAULT_PATH};
use config::fp_mask::{resolve_word_here, ResolveError};
use config::fwd_mode::FwdMode;
use config::hugepage_size::parse_hugepage_size;
use config::k8s::{pci_ports_from_env, PciEnvError};
use config::pod_address::{PodAddress, PodPrefix};
use config::port_spec::PortSpec;
use config::run_config::{RunConfig, RunConfigError, ValidRunConfig};
use config::setting::Setting;
use config::table_limits::{parse_table_limit, TableLimits};
use drivers::cpu::{CpuId, CpuSet};
use drivers::exception::BackendChoice;
use drivers::memory::{HugepageSize, MemoryBacking};
use drivers::port::af_packet::{
    AfPacketConfig, DEFAULT_RX_BLOCKS, DEFAULT_RX_BLOCK_SIZE, DEFAULT_RX_RETIRE_MS,
    DEFAULT_TX_FRAMES,
};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// `fastpath`.
#[derive(Parser, Debug)]
#[command(name = "fastpath", version, about = "A userspace packet fast path")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
// One value per process, parsed once: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Forward packets between ports on pinned worker cores, printing
    /// statistics every second, until Ctrl-C / SIGTERM or --duration.
    Run(RunArgs),
    /// Try it on any machine: route UDP between two simulated VFs, drivers
    /// included, with live statistics (no root, no hugepages, no network).
    ///
    /// What runs is `fastpath run --mode l3 --ports sim:ixgbevf,sim:iavf`:
    /// the real fast path and our ixgbevf and iavf drivers, each on the
    /// device model of its VF (an 82599 VF and an XL710 VF of one modelled
    /// PF, whose embedded switch joins them to the wire). Behind the PF, on
    /// the wire, a host on each side (10.0.0.2 on port 0's subnet
    /// 10.0.0.0/24, 10.0.1.2 on port 1's 10.0.1.0/24) sends UDP flows to the
    /// network behind the other (198.18.0.0/16, 198.19.0.0/16). The fast path
    /// routes each frame (TTL, checksum, MAC rewrite) out of the other VF; a
    /// sink on the wire takes and checks what comes out. One frame in 1000
    /// is a traceroute probe (TTL 1), which a router hands to its kernel:
    /// here the router's tables are set once from that network (no kernel
    /// to mirror), and what the workers hand to the kernel is counted by
    /// reason and freed. The pool is on hugepages if enough are free, else
    /// on ordinary pages.
    ///
    /// Every second: the worker's line (rx, tx, drops by reason, busy %,
    /// cycles per packet), each port's, and the wire's (sent, sunk, punted,
    /// dropped, in flight). At the end: every counter, the wire's
    /// accounting (each frame sent was sunk, punted or dropped for a named
    /// reason), and the buffer
    /// audit (every buffer back in the pool). Exit status 0, or 3 when a
    /// buffer, a frame or a device-model rule is found broken.
    ///
    /// Speed means nothing here: the device models take a lock per register
    /// access, so this moves tens of thousands of packets a second.
    Demo(crate::demo::DemoArgs),
    /// Check what the pod (or machine) gives against what `run` with the
    /// same options needs: VFs, addresses, CPUs, hugepages, NUMA,
    /// capabilities, device nodes. OK / WARN / FAIL with the fix; exit
    /// status 1 on any FAIL.
    Check(crate::check::CheckArgs),
    /// Ask the running `fastpath run` (over its control socket).
    #[command(subcommand)]
    Show(ShowCommand),
    /// Live rates from the running `fastpath run`, every second, until
    /// Ctrl-C (or --count lines).
    Watch(WatchArgs),
}

/// `fastpath run` options, as typed values (each parsed by the config
/// crate), before the checks that combine them.
///
/// Every option takes the next word as its value even when it starts with
/// '-' (`--duration -1`, `--eth-peer -1,...`): the value's own parser then
/// says what is wrong with it, instead of clap reading it as a short flag.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Ports, comma separated: `null` (RX makes packets, TX frees them),
    /// `ring` (consecutive ring ports are connected in pairs),
    /// `afpacket:IFACE` (a kernel interface through AF_PACKET sockets with
    /// memory-mapped rings, one queue pair per worker in a fanout group),
    /// `sim:ixgbevf[:82599|x540|x550|x550em_x]` or
    /// `sim:iavf[:xl710|avf]` (a simulated VF of one
    /// modelled PF: no hardware needed), or a VF's PCI address such as
    /// `0000:01:10.0` (bound to vfio-pci; needs hugepages).
    #[arg(
        long,
        allow_hyphen_values = true,
        value_delimiter = ',',
        default_value = "null,null"
    )]
    pub ports: Vec<PortSpec>,
    /// Number of worker cores, picked from the allowed CPUs (the first
    /// allowed CPU is left to the control thread).
    #[arg(
        long,
        allow_hyphen_values = true,
        default_value_t = 1,
        conflicts_with = "cpus",
        allow_negative_numbers = true
    )]
    pub cores: usize,
    /// Exact worker CPUs, as a list (`1,3-4`); must be allowed by the
    /// process's affinity and cgroup cpuset.
    #[arg(long, allow_hyphen_values = true, value_parser = parse_cpu_list)]
    pub cpus: Option<CpuSet>,
    /// Forwarding mode: io (untouched), mac (rewrite Ethernet addresses) or
    /// l3 (route by the tables; what cannot be forwarded goes to the kernel).
    #[arg(long, allow_hyphen_values = true, default_value = "io")]
    pub mode: FwdMode,
    /// Packets per burst (1-512).
    #[arg(long, allow_hyphen_values = true, default_value_t = 32)]
    pub burst: usize,
    /// Stop after this long: seconds (`10`, `2.5`) or with a unit (`500ms`,
    /// `10s`, `1m`, `1h`). Default: run until Ctrl-C / SIGTERM.
    #[arg(long, allow_hyphen_values = true, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Time between statistics lines, as --duration (0: only the final
    /// summary; otherwise at least 100ms).
    #[arg(long, allow_hyphen_values = true, default_value = "1", value_parser = parse_duration)]
    pub stats_period: Duration,
    /// Bursts sent on every TX queue at start (seeds ring-port loops, like
    /// testpmd's `start tx_first`). Default: 16 when ring ports are used.
    #[arg(long, allow_hyphen_values = true)]
    pub tx_first: Option<usize>,
    /// Buffers in the pool (default: enough for the caches, bursts, rings
    /// and queues; see the README's pool sizing rule).
    #[arg(long, allow_hyphen_values = true)]
    pub nb_mbuf: Option<u64>,
    /// Per-core buffer cache size (0-512).
    #[arg(long, allow_hyphen_values = true, default_value_t = 256)]
    pub cache_size: usize,
    /// Length of packets made by null ports (60 to the buffer's 2048-byte
    /// data room).
    #[arg(long, allow_hyphen_values = true, default_value_t = 64)]
    pub packet_size: usize,
    /// Ring size per queue and direction of ring ports (a power of two up
    /// to 65536).
    #[arg(long, allow_hyphen_values = true, default_value_t = 1024)]
    pub ring_size: usize,
    /// Destination MAC written in mac mode, per port: `PORT,MAC` (repeat).
    #[arg(long, allow_hyphen_values = true)]
    pub eth_peer: Vec<EthPeer>,
    /// Use ordinary 4 KiB pages instead of hugepages (software ports only:
    /// VF ports need hugepage DMA memory).
    #[arg(long, conflicts_with_all = ["huge_dir", "huge_size"])]
    pub no_huge: bool,
    /// Take hugepages from this hugetlbfs mount instead of anonymous ones.
    #[arg(long, allow_hyphen_values = true)]
    pub huge_dir: Option<PathBuf>,
    /// Hugepage size: auto, 2M or 1G.
    #[arg(long, allow_hyphen_values = true, default_value = "auto", value_parser = parse_hugepage_size)]
    pub huge_size: HugepageSize,
    /// Bytes of each RX block of an AF_PACKET queue's TPACKET_V3 ring (a
    /// power of two from the page size to 4 MiB).
    #[arg(long, allow_hyphen_values = true, default_value_t = DEFAULT_RX_BLOCK_SIZE)]
    pub afpacket_block_size: usize,
    /// RX blocks per AF_PACKET queue (1-65536).
    #[arg(long, allow_hyphen_values = true, default_value_t = DEFAULT_RX_BLOCKS)]
    pub afpacket_blocks: usize,
    /// Milliseconds after which the kernel hands over an AF_PACKET RX
    /// block that is not full (0: the kernel's choice).
    #[arg(long, allow_hyphen_values = true, default_value_t = DEFAULT_RX_RETIRE_MS)]
    pub afpacket_retire_ms: u32,
    /// TX frames per AF_PACKET queue (1-65536).
    #[arg(long, allow_hyphen_values = true, default_value_t = DEFAULT_TX_FRAMES)]
    pub afpacket_tx_frames: usize,
    /// L3 mode: the exception interfaces' names, in port order (ports
    /// beyond the list: `fp<N>`). Each is made as a TAP with its port's MAC
    /// and MTU, its link following the port's; the kernel's addresses,
    /// routes and neighbours on them are what the fast path forwards by.
    #[arg(long, allow_hyphen_values = true, value_delimiter = ',')]
    pub exception_ifnames: Vec<String>,
    /// L3 mode: how frames move to and from the exception interfaces:
    /// auto (vhost-net when /dev/vhost-net opens, else tap), tap or
    /// vhost-net.
    #[arg(long = "exception", allow_hyphen_values = true, default_value = "auto", value_parser = parse_backend)]
    pub exception: BackendChoice,
    /// L3 mode: the exception thread's CPU (default: an allowed CPU no
    /// worker uses; none left: unpinned, with a warning).
    #[arg(long, allow_hyphen_values = true)]
    pub exception_cpu: Option<u32>,
    /// L3 mode: most packets per second (and burst) each port hands the
    /// kernel, `PPS[,BURST]`; the rest are dropped and counted
    /// (`rate_limited`). Default: 10000,512.
    #[arg(long, allow_hyphen_values = true, value_parser = parse_rate)]
    pub exception_rate: Option<RateLimit>,
    /// L3 mode: most routes (IPv4 and IPv6 together) the router installs;
    /// more are refused and counted (FP_OPTIONS `--max-route=N`).
    /// Default: no limit.
    #[arg(long, allow_hyphen_values = true, value_parser = parse_table_limit)]
    pub max_routes: Option<usize>,
    /// L3 mode: most neighbours (ARP and ND entries) the router installs
    /// (FP_OPTIONS `--max-neigh=N`). Default: no limit.
    #[arg(long, allow_hyphen_values = true, value_parser = parse_table_limit)]
    pub max_neighbours: Option<usize>,
    /// The pod's annotations, as a Downward API volume writes them. L3
    /// mode: each VF port's entry in Multus's network-status (matched by
    /// PCI address) gives the IPs and MTU of its exception interface (with
    /// vfio no CNI applies them). `none` reads nothing (FP_ANNOTATIONS).
    /// Default: /etc/podnetinfo/annotations, when it exists.
    #[arg(long, value_name = "FILE", allow_hyphen_values = true)]
    pub annotations: Option<PathBuf>,
    /// L3 mode: the prefix lengths of the pod's networks, `V4/V6` (24/64),
    /// `V4` or `/V6`, for the network-status IPs, which Multus gives
    /// without one (FP_POD_PREFIX). Default: none, and such IPs are not
    /// applied (a warning says which).
    #[arg(long, value_name = "V4/V6", allow_hyphen_values = true)]
    pub pod_prefix: Option<PodPrefix>,
    /// L3 mode: an address for port PORT's exception interface (repeat),
    /// applied as the annotation's are; for ports without a PCI address.
    #[arg(long, value_name = "PORT=ADDR/PREFIX", allow_hyphen_values = true)]
    pub pod_address: Vec<PodAddress>,
    /// Print the final summary as one JSON document on stdout (start-up
    /// and live lines go to stderr).
    #[arg(long)]
    pub json: bool,
    /// Which worker CPU polls which ports, as 6WIND's CORE_PORT_MAPPING:
    /// `c<cpu>=<port>[:<port>...]` joined by '/' (`c1=0/c2=0:1`); two CPUs
    /// on one port share it by RSS. The mapping's CPUs are the workers
    /// (--cpus, if given, must be exactly them).
    #[arg(long, allow_hyphen_values = true, conflicts_with = "cores", value_parser = parse_core_port_mapping)]
    pub core_port_mapping: Option<CorePortMapping>,
    /// RX descriptors per VF queue (default 512; each driver's limits in
    /// config/fast-path.env.sample, NB_RXD).
    #[arg(long, allow_hyphen_values = true)]
    pub rxd: Option<usize>,
    /// TX descriptors per VF queue (default 512; NB_TXD).
    #[arg(long, allow_hyphen_values = true)]
    pub txd: Option<usize>,
    /// Most MiB the buffer pool and VF descriptor rings may take (6WIND's
    /// FP_MEMORY); without --nb-mbuf the default pool shrinks to fit.
    #[arg(long, allow_hyphen_values = true, value_name = "MIB")]
    pub fp_memory: Option<u64>,
    /// A 6WIND-style fast-path.env (see config/fast-path.env.sample); its
    /// variables apply where the command line does not say otherwise.
    /// Default: /etc/fast-path.env if it exists; `none` reads no file.
    #[arg(long, value_name = "FILE", conflicts_with = "no_env")]
    pub env: Option<PathBuf>,
    /// The control socket `fastpath show` and `fastpath watch` ask
    /// (`none`: no socket). Made mode 0600, in a directory made 0700 when
    /// missing. A path given here that another fastpath serves refuses the
    /// run; at the default path this one runs without a socket.
    #[arg(long, value_name = "PATH", allow_hyphen_values = true, default_value = DEFAULT_SOCKET)]
    pub control_socket: SocketChoice,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics (off by
    /// default).
    #[arg(long, value_name = "ADDR:PORT", allow_hyphen_values = true, value_parser = parse_metrics_addr)]
    pub metrics: Option<std::net::SocketAddr>,
    /// Read no fast-path.env, not even /etc/fast-path.env.
    #[arg(long)]
    pub no_env: bool,
    /// Where the settings the file filled came from (set by the `--env`
    /// handling, so a refused value names its line).
    #[arg(skip)]
    pub env_origins: Option<EnvOrigins>,
}

/// The file a fast-path.env's settings came from, and each one's line.
#[derive(Debug, Clone, Default)]
pub struct EnvOrigins {
    /// The file, as shown to the operator.
    pub path: String,
    /// Per setting the file filled, its variable, value and line.
    pub by_setting: BTreeMap<Setting, Origin>,
}

/// What the command line asks for.
// Made once per process: the size difference between variants costs
// nothing, and boxing `Run` would only add an indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Invocation {
    /// `fastpath run`, with its configuration checked, how to print, the
    /// router's options (used in L3 mode) and the control plane's.
    Run(ValidRunConfig, Output, RouterOptions, Box<ControlOptions>),
    /// `fastpath demo`, with its options.
    Demo(crate::demo::DemoArgs),
    /// `fastpath check`, with the matches of its options (for `--env`).
    Check(Box<crate::check::CheckArgs>, ArgMatches),
    /// `fastpath show ...`.
    Show(ShowCommand),
    /// `fastpath watch`.
    Watch(WatchArgs),
}

/// Why the command line was refused.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// clap's own errors: unknown option, a value that does not parse
    /// (the config crate's parsers say why), `--help`, `--version`. Its
    /// text names the option.
    #[error("{0}")]
    Usage(#[from] clap::Error),
    /// A word that looks like a short option (`-10`): `fastpath run` has
    /// none, and clap would name only its first letters.
    #[error("unexpected argument '{0}': `fastpath run` takes --long options only (see --help)")]
    Unexpected(String),
    /// The values parse but the configuration is refused.
    #[error("{option}: {source}")]
    Invalid {
        /// The option, as the operator wrote it (`--nb-mbuf`).
        option: &'static str,
        /// Why.
        source: RunConfigError,
    },
    /// Router options that do not fit the ports.
    #[error(transparent)]
    Router(#[from] RouterOptionsError),
    /// A router option without `--mode l3`.
    #[error("{0} is an option of the router: it needs --mode l3")]
    RouterOnly(&'static str),
    /// The `--env` file cannot be read.
    #[error("--env {path}: {source}")]
    EnvRead {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A value from the fast-path.env refused by the validation.
    #[error("{path}:{origin}: {source}")]
    EnvInvalid {
        /// The file.
        path: String,
        /// Its line, variable and value.
        origin: Box<Origin>,
        /// Why.
        source: Box<RunConfigError>,
    },
    /// FP_MASK's word could not be resolved on this machine.
    #[error("{path}:{origin}: {source}")]
    EnvMask {
        /// The file.
        path: String,
        /// Its line, variable and value.
        origin: Box<Origin>,
        /// Why.
        source: ResolveError,
    },
    /// The `--env` file is refused (its line and variable are named).
    #[error("--env {path}: {source}")]
    EnvFile {
        /// The file.
        path: String,
        /// Why.
        source: Box<FastPathEnvError>,
    },
    /// FP_PORTS=all, but the environment names no VF.
    #[error("--env {path}: FP_PORTS=all: {source}")]
    EnvPorts {
        /// The file.
        path: String,
        /// Why.
        source: PciEnvError,
    },
}

impl CliError {
    /// The exit status for this error: 0 for `--help` and `--version`
    /// (clap's), 2 for everything else (a usage error).
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(e) => e.exit_code(),
            CliError::Invalid { .. }
            | CliError::Unexpected(_)
            | CliError::Router(_)
            | CliError::RouterOnly(_)
            | CliError::EnvRead { .. }
            | CliError::EnvFile { .. }
            | CliError::EnvInvalid { .. }
            | CliError::EnvMask { .. }
            | CliError::EnvPorts { .. } => 2,
        }
    }
}

impl RunArgs {
    /// The configuration these options describe, not yet validated.
    pub fn to_config(&self) -> RunConfig {
        let backing = if self.no_huge {
            MemoryBacking::NoHuge
        } else if let Some(dir) = &self.huge_dir {
            MemoryBacking::Hugetlbfs(dir.clone())
        } else {
            MemoryBacking::Hugepages(self.huge_size)
        };
        RunConfig {
            ports: self.ports.clone(),
            cores: match (&self.cpus, &self.core_port_mapping) {
                (Some(set), _) => CoreChoice::List(set.clone()),
                (None, Some(map)) => CoreChoice::List(map.cpus()),
                (None, None) => CoreChoice::Count(self.cores),
            },
            mode: self.mode,
            burst: self.burst,
            duration: self.duration,
            stats_period: self.stats_period,
            tx_first: self.tx_first,
            nb_mbuf: self.nb_mbuf,
            cache_size: self.cache_size,
            packet_size: self.packet_size,
            ring_size: self.ring_size,
            eth_peers: self.eth_peer.clone(),
            backing,
            afpacket: AfPacketConfig {
                rx_block_size: self.afpacket_block_size,
                rx_blocks: self.afpacket_blocks,
                rx_retire_ms: self.afpacket_retire_ms,
                tx_frames: self.afpacket_tx_frames,
                ..AfPacketConfig::default()
            },
            core_port_mapping: self.core_port_mapping.clone(),
            rx_descriptors: self.rxd,
            tx_descriptors: self.txd,
            memory_cap_mib: self.fp_memory,
        }
    }

    /// The option an operator used for `setting`.
    pub fn option_for(&self, setting: Setting) -> &'static str {
        match setting {
            Setting::Ports => "--ports",
            Setting::Cores if self.cpus.is_some() => "--cpus",
            Setting::Cores => "--cores",
            Setting::Mode => "--mode",
            Setting::Burst => "--burst",
            Setting::Duration => "--duration",
            Setting::StatsPeriod => "--stats-period",
            Setting::TxFirst => "--tx-first",
            Setting::NbMbuf => "--nb-mbuf",
            Setting::CacheSize => "--cache-size",
            Setting::PacketSize => "--packet-size",
            Setting::RingSize => "--ring-size",
            Setting::EthPeer => "--eth-peer",
            Setting::Memory => "--huge-dir",
            Setting::AfPacketBlockSize => "--afpacket-block-size",
            Setting::AfPacketBlocks => "--afpacket-blocks",
            Setting::AfPacketTxFrames => "--afpacket-tx-frames",
            Setting::CorePortMapping => "--core-port-mapping",
            Setting::RxDescriptors => "--rxd",
            Setting::TxDescriptors => "--txd",
            Setting::MemoryCap => "--fp-memory",
        }
    }

    /// The annotations file to read: `--annotations` (`none`: none), else
    /// the default path.
    pub fn annotations_file(&self) -> Option<PathBuf> {
        match &self.annotations {
            Some(p) if p.as_os_str() == "none" => None,
            Some(p) => Some(p.clone()),
            None => Some(default_annotations()),
        }
    }

    /// The router's options, checked against the configuration: names
    /// that fit the ports, and only in L3 mode.
    pub fn router_options(&self, cfg: &ValidRunConfig) -> Result<RouterOptions, CliError> {
        let defaults = RouterOptions::default();
        let opts = RouterOptions {
            ifnames: self.exception_ifnames.clone(),
            backend: self.exception,
            exception_cpu: self.exception_cpu.map(CpuId),
            rate: self.exception_rate.unwrap_or(defaults.rate),
            limits: TableLimits {
                max_routes: self.max_routes,
                max_neighbours: self.max_neighbours,
            },
            pod: PodAddressing {
                annotations: self.annotations_file(),
                prefix: self.pod_prefix.unwrap_or_default(),
                explicit: self.pod_address.clone(),
            },
        };
        if cfg.mode != FwdMode::L3 {
            let given = [
                (!opts.ifnames.is_empty(), "--exception-ifnames"),
                (opts.backend != defaults.backend, "--exception"),
                (opts.exception_cpu.is_some(), "--exception-cpu"),
                (self.exception_rate.is_some(), "--exception-rate"),
                (self.max_routes.is_some(), "--max-routes"),
                (self.max_neighbours.is_some(), "--max-neighbours"),
                (self.pod_prefix.is_some(), "--pod-prefix"),
                (!self.pod_address.is_empty(), "--pod-address"),
            ];
            if let Some((_, option)) = given.into_iter().find(|(g, _)| *g) {
                return Err(CliError::RouterOnly(option));
            }
        }
        opts.ifnames_for(cfg.ports.len())?;
        Ok(opts)
    }

    /// Validates the configuration, naming the option of any problem, or
    /// the fast-path.env line when the value came from the file.
    pub fn validate(&self) -> Result<ValidRunConfig, CliError> {
        self.to_config().validate().map_err(|source| {
            let setting = source.setting();
            match &self.env_origins {
                Some(o) if o.by_setting.contains_key(&setting) => CliError::EnvInvalid {
                    path: o.path.clone(),
                    origin: Box::new(o.by_setting[&setting].clone()),
                    source: Box::new(source),
                },
                _ => CliError::Invalid {
                    option: self.option_for(setting),
                    source,
                },
            }
        })
    }
}

/// Parses a whole command line (program name first), as the binary does.
pub fn parse<I, T>(argv: I) -> Result<Invocation, CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    if argv.get(1).is_some_and(|w| w == "run") {
        check_short_words(&argv[2..])?;
    }
    let matches = Cli::command().try_get_matches_from(argv)?;
    let cli = Cli::from_arg_matches(&matches)?;
    match cli.command {
        Command::Run(mut a) => {
            let before_env = a.clone();
            let file = env_file_to_read(&a, std::path::Path::new(DEFAULT_PATH));
            if let (Some(path), Some(given)) = (file, matches.subcommand_matches("run")) {
                if a.env.is_none() {
                    eprintln!(
                        "fastpath: reading {} (--no-env to run without it)",
                        path.display()
                    );
                }
                let env: BTreeMap<String, String> = std::env::vars().collect();
                apply_env_file(&mut a, &path, &env, given)?;
            }
            let output = if a.json { Output::Json } else { Output::Text };
            let cfg = a.validate()?;
            let router = a.router_options(&cfg)?;
            let control = ControlOptions::of_run(
                &a,
                &before_env,
                matches.subcommand_matches("run"),
                &cfg,
                &router,
            );
            Ok(Invocation::Run(cfg, output, router, Box::new(control)))
        }
        Command::Demo(a) => Ok(Invocation::Demo(a)),
        Command::Check(a) => {
            let given = matches.subcommand_matches("check").cloned();
            Ok(Invocation::Check(Box::new(a), given.unwrap_or_default()))
        }
        Command::Show(s) => Ok(Invocation::Show(s)),
        Command::Watch(w) => Ok(Invocation::Watch(w)),
    }
}

/// The fast-path.env to read: `--env FILE` (`none`: no file), nothing
/// with `--no-env`, else `default` when it exists.
pub(crate) fn env_file_to_read(a: &RunArgs, default: &std::path::Path) -> Option<PathBuf> {
    match &a.env {
        _ if a.no_env => None,
        Some(p) if p.as_os_str() == "none" => None,
        Some(p) => Some(p.clone()),
        None => default.exists().then(|| default.to_path_buf()),
    }
}

/// Fills `a` from the fast-path.env at `path` where the command line
/// (`given`) did not set the option: the command line wins over the file,
/// as fast-path.sh's environment wins over `: ${VAR:=...}` lines.
pub(crate) fn apply_env_file(
    a: &mut RunArgs,
    path: &std::path::Path,
    env: &BTreeMap<String, String>,
    given: &ArgMatches,
) -> Result<(), CliError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CliError::EnvRead {
        path: shown.clone(),
        source,
    })?;
    let mut file = FastPathEnv::parse(&text, env).map_err(|source| CliError::EnvFile {
        path: shown.clone(),
        source: Box::new(source),
    })?;
    let on_line = |id: &str| given.value_source(id) == Some(ValueSource::CommandLine);
    // FP_PORTS=all: in a pod, every VF the SR-IOV device plugin gave it.
    if file.fp_ports == Some(FpPorts::All) && !on_line("ports") {
        let found = pci_ports_from_env(env).map_err(|source| CliError::EnvPorts {
            path: shown.clone(),
            source,
        })?;
        file.apply_discovered_ports(&found);
        a.ports = file.run.ports.clone();
    }
    let mut origins = EnvOrigins {
        path: shown.clone(),
        by_setting: BTreeMap::new(),
    };
    let mut took = |setting: Setting| {
        if let Some(o) = file.origins.get(&setting) {
            origins.by_setting.insert(setting, o.clone());
        }
    };
    if let (false, Some(FpPorts::List(ports))) = (on_line("ports"), &file.fp_ports) {
        a.ports = ports.clone();
        took(Setting::Ports);
    }
    let cores_typed = on_line("cores") || on_line("cpus");
    // The file's mapping, unless the command line gives its own, or a
    // core count it could not honour.
    let mapping = match (&file.run.core_port_mapping, on_line("core_port_mapping")) {
        (Some(map), false) if on_line("cores") => {
            eprintln!("--env {shown}: CORE_PORT_MAPPING={map} is not used: --cores was given");
            None
        }
        (Some(map), false) => Some(map.clone()),
        _ => None,
    };
    if let Some(map) = mapping {
        if !cores_typed {
            a.cpus = Some(map.cpus());
            took(Setting::Cores);
        }
        a.core_port_mapping = Some(map);
        took(Setting::CorePortMapping);
    }
    // FP_MASK applies when the command line names no cores (a mapping
    // typed there names them); a word is resolved here, on this machine.
    let mask_origin = file.origins.get(&Setting::Cores).cloned();
    let cores_named = cores_typed || on_line("core_port_mapping");
    if let (false, Some(mask), Some(origin)) = (cores_named, &file.fp_mask, mask_origin) {
        let set = match mask {
            FpMask::Cpus(set) => set.clone(),
            FpMask::Word(w) => resolve_word_here(*w).map_err(|source| CliError::EnvMask {
                path: shown.clone(),
                origin: Box::new(origin.clone()),
                source,
            })?,
        };
        match &a.core_port_mapping {
            // FP_MASK bounds the mapping's CPUs (a list was checked by the
            // parser; a word only now).
            Some(map) if origin.var == "FP_MASK" => {
                if let Some(cpu) = map.cpus().iter().find(|&c| !set.contains(c)) {
                    return Err(CliError::EnvInvalid {
                        path: shown.clone(),
                        origin: Box::new(origin),
                        source: Box::new(RunConfigError::MappingCpuNotACore { cpu, cores: set }),
                    });
                }
            }
            Some(_) => {}
            None => {
                a.cpus = Some(set);
                took(Setting::Cores);
            }
        }
    }
    for (id, setting) in [
        ("nb_mbuf", Setting::NbMbuf),
        ("rxd", Setting::RxDescriptors),
        ("txd", Setting::TxDescriptors),
        ("fp_memory", Setting::MemoryCap),
    ] {
        if on_line(id) || !file.origins.contains_key(&setting) {
            continue;
        }
        match setting {
            Setting::NbMbuf => a.nb_mbuf = file.run.nb_mbuf,
            Setting::RxDescriptors => a.rxd = file.run.rx_descriptors,
            Setting::TxDescriptors => a.txd = file.run.tx_descriptors,
            _ => a.fp_memory = file.run.memory_cap_mib,
        }
        took(setting);
    }
    // The router's limits, in L3 mode (elsewhere there is no router).
    let limits = file.table_limits;
    if a.mode == FwdMode::L3 {
        if !on_line("max_routes") && limits.max_routes.is_some() {
            a.max_routes = limits.max_routes;
        }
        if !on_line("max_neighbours") && limits.max_neighbours.is_some() {
            a.max_neighbours = limits.max_neighbours;
        }
    } else if limits != TableLimits::default() {
        eprintln!("--env {shown}: FP_OPTIONS' table limits apply in --mode l3 only, ignored");
    }
    // The pod's annotations file is read by `fastpath check` in any mode;
    // the prefix lengths serve the router only.
    if let (false, Some(o)) = (on_line("annotations"), &file.annotations) {
        a.annotations = Some(PathBuf::from(&o.value));
    }
    match (&file.pod_prefix, on_line("pod_prefix")) {
        (Some((p, _)), false) if a.mode == FwdMode::L3 => a.pod_prefix = Some(*p),
        (Some((_, o)), false) => {
            eprintln!(
                "--env {shown}: {} applies in --mode l3 only, ignored",
                o.var
            )
        }
        _ => {}
    }
    // The exception thread exists only in L3 mode; elsewhere EXC_LCOREID
    // and DPVI_MASK are reported as not applied rather than refused.
    if !on_line("exception_cpu") {
        match (a.mode, file.exception_cpu, &file.exception_origin) {
            (FwdMode::L3, Some(cpu), _) => a.exception_cpu = Some(cpu.0),
            (_, Some(_), Some(o)) => {
                eprintln!(
                    "--env {shown}: {} applies in --mode l3 only, ignored",
                    o.var
                )
            }
            _ => {}
        }
    }
    for w in &file.warnings {
        eprintln!(
            "--env {shown}: line {}: unknown variable {}, ignored",
            w.line, w.var
        );
    }
    for n in &file.notes {
        eprintln!("--env {shown}: {n}");
    }
    for n in &file.not_applied {
        eprintln!("--env {shown}: {} has no effect here, ignored", n.var);
    }
    a.env_origins = Some(origins);
    Ok(())
}

/// Refuses a word that starts with a single '-' where no option's value is
/// expected. Every value option takes the next word whatever it starts
/// with, so a word right after one is its value.
fn check_short_words(args: &[OsString]) -> Result<(), CliError> {
    let run = Cli::command();
    let takes_value: Vec<String> = run
        .find_subcommand("run")
        .into_iter()
        .flat_map(|c| c.get_arguments())
        .filter(|a| a.get_action().takes_values())
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    let mut value_next = false;
    for w in args {
        let w = w.to_string_lossy();
        if value_next {
            value_next = false;
        } else if takes_value.iter().any(|o| *o == w) {
            value_next = true;
        } else if w.starts_with('-') && !w.starts_with("--") && w.len() > 1 {
            return Err(CliError::Unexpected(w.into_owned()));
        }
    }
    Ok(())
}

/// Parses the options of `fastpath run` (what follows `run`).
pub fn parse_run_args(args: &[String]) -> Result<ValidRunConfig, CliError> {
    let argv = ["fastpath", "run"]
        .into_iter()
        .map(String::from)
        .chain(args.iter().cloned());
    match parse(argv)? {
        Invocation::Run(cfg, ..) => Ok(cfg),
        other => Err(CliError::Unexpected(format!("{other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    fn error(line: &str) -> String {
        parse_run_args(&args(line))
            .expect_err("must be refused")
            .to_string()
    }

    fn router(line: &str) -> Result<RouterOptions, CliError> {
        let argv = ["fastpath", "run"]
            .into_iter()
            .map(String::from)
            .chain(args(line));
        match parse(argv)? {
            Invocation::Run(_, _, r, _) => Ok(r),
            other => Err(CliError::Unexpected(format!("{other:?}"))),
        }
    }

    /// A fast-path.env in a temporary directory (removed when the
    /// directory drops) and its path.
    struct EnvFile {
        _dir: tempfile::TempDir,
        path: String,
    }

    impl EnvFile {
        fn new(text: &str) -> EnvFile {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("fast-path.env");
            std::fs::write(&path, text).unwrap();
            let path = path.display().to_string();
            EnvFile { _dir: dir, path }
        }
    }

    #[test]
    fn an_env_file_fills_what_the_command_line_leaves() {
        let f = EnvFile::new(
            ": ${FP_PORTS:='ring ring'}\nFP_MASK=1\nNB_MBUF=4096\nNB_RXD=1024\nFP_MEMORY=64\n",
        );
        let p = &f.path;
        let cfg = parse_run_args(&args(&format!("--env {p} --nb-mbuf 8192"))).unwrap();
        assert_eq!(cfg.ports, vec![PortSpec::Ring, PortSpec::Ring]);
        assert_eq!(cfg.cores, CoreChoice::List(parse_cpu_list("1").unwrap()));
        assert_eq!(cfg.nb_mbuf(), 8192);
        assert_eq!(
            (cfg.rx_descriptors, cfg.memory_cap_mib),
            (Some(1024), Some(64))
        );
        let cfg = parse_run_args(&args(&format!(
            "--env {p} --ports null,null --cores 1 --rxd 256 --fp-memory 100"
        )))
        .unwrap();
        assert_eq!(cfg.ports, vec![PortSpec::Null, PortSpec::Null]);
        assert_eq!(
            (cfg.cores.clone(), cfg.nb_mbuf()),
            (CoreChoice::Count(1), 4096)
        );
        assert_eq!(
            (cfg.rx_descriptors, cfg.memory_cap_mib),
            (Some(256), Some(100))
        );
    }

    #[test]
    fn a_refused_value_from_the_file_names_its_line() {
        let f = EnvFile::new("NB_MBUF=4096\nNB_RXD=100\n");
        let e = error(&format!("--env {}", f.path));
        assert!(
            e.starts_with(&format!("--env {}: line 2: NB_RXD=", f.path)),
            "{e}"
        );
        // Refused later, by the validation: still the file and line.
        let f = EnvFile::new("FP_PORTS='ring ring'\n\nNB_MBUF=10\n");
        assert_eq!(
            error(&format!("--env {}", f.path)),
            format!(
                "{}:3: NB_MBUF=\"10\": a pool of 10 buffers is too small: these settings need \
                 at least 416 (1 worker x (1.5 x cache 256 + burst 32 + 2 ports x 0 tx-first \
                 bursts x 32 + 0 VF ports x 1024 descriptors)); with fewer, a worker can find \
                 no buffer to receive into",
                f.path
            )
        );
        let f = EnvFile::new("FP_PORTS='ring ring'\nCORE_PORT_MAPPING=c1=0:2\n");
        assert_eq!(
            error(&format!("--env {}", f.path)),
            format!(
                "{}:2: CORE_PORT_MAPPING=\"c1=0:2\": CPU 1 is mapped to port 2, but there are \
                 2 ports (0 to 1)",
                f.path
            )
        );
        // The same value typed names the option.
        assert_eq!(
            error("--nb-mbuf 10 --ports ring,ring")
                .split(':')
                .next()
                .unwrap(),
            "--nb-mbuf"
        );
        // A missing explicit file is an error.
        let gone = format!("{}.gone", f.path);
        assert!(error(&format!("--env {gone}")).starts_with(&format!("--env {gone}: ")));
    }

    #[test]
    fn the_mapping_from_the_file_or_the_command_line_is_the_same_config() {
        let f = EnvFile::new("FP_PORTS='null null null'\nCORE_PORT_MAPPING=c0=0:2/c1=1\n");
        let from_file = parse_run_args(&args(&format!("--env {}", f.path))).unwrap();
        let from_line = parse_run_args(&args(
            "--ports null,null,null --core-port-mapping c0=0:2/c1=1",
        ))
        .unwrap();
        assert_eq!(from_file.config(), from_line.config());
        assert_eq!(
            from_line.cores,
            CoreChoice::List(parse_cpu_list("0-1").unwrap())
        );
        // The command line's mapping wins over the file's.
        let c = parse_run_args(&args(&format!(
            "--env {} --core-port-mapping c1=0:1:2",
            f.path
        )))
        .unwrap();
        assert_eq!(c.cores, CoreChoice::List(parse_cpu_list("1").unwrap()));
        // --cores and a mapping cannot go together on the command line.
        let e = error("--cores 2 --core-port-mapping c1=0:1");
        assert!(e.contains("--cores"), "{e}");
        let e = error("--core-port-mapping c1=0/c1=1");
        assert!(
            e.contains("--core-port-mapping") && e.contains("CPU 1 is given twice"),
            "{e}"
        );
        let e = error("--cpus 1-2 --core-port-mapping c1=0:1");
        assert!(
            e.starts_with("--core-port-mapping: worker CPU 2 polls no port"),
            "{e}"
        );
    }

    #[test]
    fn descriptor_options_reach_the_config_and_are_checked() {
        let c = parse_run_args(&args(
            "--ports sim:ixgbevf,sim:ixgbevf --rxd 1024 --txd 256",
        ))
        .unwrap();
        assert_eq!((c.vf_rx_ring(), c.vf_tx_ring()), (1024, 256));
        let e = error("--ports sim:iavf,sim:iavf --txd 1000");
        assert_eq!(
            e,
            "--txd: port 0 (sim:iavf:xl710): 1000 TX descriptors: iavf takes a multiple of 32 \
             from 64 to 4096"
        );
    }

    #[test]
    fn the_default_file_is_read_unless_told_otherwise() {
        let f = EnvFile::new("NB_MBUF=4096\n");
        let default = std::path::Path::new(&f.path);
        let run = |line: &str| {
            let cli = Cli::try_parse_from(
                ["fastpath", "run"]
                    .into_iter()
                    .map(String::from)
                    .chain(args(line)),
            )
            .unwrap();
            let Command::Run(a) = cli.command else {
                panic!("not run");
            };
            env_file_to_read(&a, default)
        };
        assert_eq!(run(""), Some(default.to_path_buf()));
        assert_eq!(run("--no-env"), None);
        assert_eq!(run("--env none"), None);
        assert_eq!(run("--env /x.env"), Some(PathBuf::from("/x.env")));
        let absent = default.with_extension("absent");
        let cli = Cli::try_parse_from(["fastpath", "run"]).unwrap();
        let Command::Run(a) = cli.command else {
            panic!("not run");
        };
        assert_eq!(env_file_to_read(&a, &absent), None);
        assert!(error("--env x --no-env").contains("--no-env"));
    }

    #[test]
    fn fp_mask_words_resolve_on_this_machine() {
        let f = EnvFile::new("FP_MASK=max\n");
        let allowed = config::cpus::allowed_cpus().unwrap();
        match parse_run_args(&args(&format!("--env {}", f.path))) {
            Ok(c) => {
                let CoreChoice::List(set) = &c.cores else {
                    panic!("{:?}", c.cores)
                };
                assert!(!set.is_empty());
                assert!(set.iter().all(|c| allowed.set.contains(c)));
                // The first allowed CPU stays with the control thread.
                assert!(!set.contains(allowed.set.iter().next().unwrap()));
            }
            // One allowed physical core: the word gives none, and says so
            // with the file and line.
            Err(e) => assert!(
                e.to_string().starts_with(&format!(
                    "{}:1: FP_MASK=\"max\": FP_MASK=max gives no CPU",
                    f.path
                )),
                "{e}"
            ),
        }
    }

    #[test]
    fn router_options_parse_and_need_l3() {
        let r = router("--mode l3").unwrap();
        assert_eq!(r, RouterOptions::default());
        let r = router(
            "--mode l3 --exception-ifnames up0 --exception tap --exception-cpu 3 --exception-rate 500,20",
        )
        .unwrap();
        assert_eq!(r.ifnames_for(2).unwrap(), ["up0", "fp1"]);
        assert_eq!(r.backend, BackendChoice::Tap);
        assert_eq!(r.exception_cpu, Some(CpuId(3)));
        assert_eq!((r.rate.pps(), r.rate.burst()), (500, 20));
        let r = router("--mode l3 --max-routes 1000 --max-neighbours 50").unwrap();
        assert_eq!(
            (r.limits.max_routes, r.limits.max_neighbours),
            (Some(1000), Some(50))
        );
        let f = EnvFile::new("FP_OPTIONS='--max-route=7 --max-neigh=8'\n");
        let r = router(&format!("--mode l3 --env {} --max-neighbours 9", f.path)).unwrap();
        assert_eq!(
            (r.limits.max_routes, r.limits.max_neighbours),
            (Some(7), Some(9))
        );
        for (line, want) in [
            (
                "--exception tap",
                "--exception is an option of the router: it needs --mode l3",
            ),
            (
                "--mode mac --exception-rate 10",
                "--exception-rate is an option of the router: it needs --mode l3",
            ),
            (
                "--max-routes 10",
                "--max-routes is an option of the router: it needs --mode l3",
            ),
            (
                "--mode l3 --exception-ifnames a,b,c",
                "--exception-ifnames: 3 exception interface names for 2 ports (at most one per port)",
            ),
            (
                "--mode l3 --exception-ifnames fp1",
                "--exception-ifnames: interface name \"fp1\" given to two ports",
            ),
            (
                "--pod-prefix 24",
                "--pod-prefix is an option of the router: it needs --mode l3",
            ),
            (
                "--pod-address 0=10.0.0.1/24",
                "--pod-address is an option of the router: it needs --mode l3",
            ),
            (
                "--mode l3 --pod-address 2=10.0.0.1/24",
                "--pod-address 2=10.0.0.1/24: there is no port 2 (2 ports, from 0)",
            ),
        ] {
            assert_eq!(router(line).unwrap_err().to_string(), want, "{line}");
        }
        for (line, option) in [
            ("--mode l3 --exception-rate 0", "--exception-rate"),
            ("--mode l3 --exception vde", "--exception"),
            ("--mode l3 --exception-cpu x", "--exception-cpu"),
            ("--mode l3 --pod-prefix 24/200", "--pod-prefix"),
            ("--mode l3 --pod-address 10.0.0.1/24", "--pod-address"),
            ("--mode l3 --pod-address 0=10.0.0.1", "--pod-address"),
        ] {
            let e = router(line).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{line}");
            assert!(e.to_string().contains(option), "{line}: {e}");
        }
    }

    #[test]
    fn pod_addressing_options_and_their_env_variables() {
        let r = router("--mode l3").unwrap();
        assert_eq!(r.pod.annotations, Some(default_annotations()));
        assert_eq!(r.pod.prefix, PodPrefix::default());
        let r = router(
            "--mode l3 --annotations none --pod-prefix 24/64 --pod-address 1=fd00::1/64 --pod-address 0=10.0.0.1/24",
        )
        .unwrap();
        assert_eq!(r.pod.annotations, None);
        assert_eq!((r.pod.prefix.v4, r.pod.prefix.v6), (Some(24), Some(64)));
        let explicit: Vec<String> = r
            .pod
            .explicit
            .iter()
            .map(|a| format!("{}={}", a.port, a.address))
            .collect();
        assert_eq!(explicit, ["1=fd00::1/64", "0=10.0.0.1/24"]);
        // The file fills what the command line leaves.
        let f = EnvFile::new("FP_ANNOTATIONS=/run/pod/annotations\nFP_POD_PREFIX=/64\n");
        let r = router(&format!("--mode l3 --env {}", f.path)).unwrap();
        assert_eq!(
            r.pod.annotations,
            Some(PathBuf::from("/run/pod/annotations"))
        );
        assert_eq!((r.pod.prefix.v4, r.pod.prefix.v6), (None, Some(64)));
        let r = router(&format!(
            "--mode l3 --env {} --pod-prefix 16 --annotations none",
            f.path
        ))
        .unwrap();
        assert_eq!(r.pod.annotations, None);
        assert_eq!((r.pod.prefix.v4, r.pod.prefix.v6), (Some(16), None));
        // Outside L3 the prefix is reported as ignored, not refused.
        assert!(router(&format!("--env {}", f.path)).is_ok());
        let f = EnvFile::new("FP_POD_PREFIX=99\n");
        let e = error(&format!("--mode l3 --env {}", f.path));
        assert!(e.contains("line 1: FP_POD_PREFIX=\"99\""), "{e}");
    }

    #[test]
    fn defaults_and_units() {
        let c = parse_run_args(&[]).unwrap();
        assert_eq!(c.ports, [PortSpec::Null, PortSpec::Null]);
        assert_eq!(c.duration, None);
        assert_eq!(c.stats_period, Duration::from_secs(1));
        for (text, want) in [
            ("10s", 10_000),
            ("1m", 60_000),
            ("500ms", 500),
            ("2.5", 2_500),
        ] {
            let c = parse_run_args(&args(&format!("--duration {text}"))).unwrap();
            assert_eq!(c.duration, Some(Duration::from_millis(want)), "{text}");
        }
        let c = parse_run_args(&args("--ports afpacket:veth0,afpacket:veth1 --cpus 1")).unwrap();
        assert_eq!(c.ports[1].to_string(), "afpacket:veth1");
        assert_eq!(c.workers(), 1);
    }

    #[test]
    fn each_bad_value_names_its_option() {
        for (line, option, text) in [
            (
                "--duration inf",
                "--duration",
                "\"inf\" is not a finite duration",
            ),
            (
                "--duration nan",
                "--duration",
                "\"nan\" is not a finite duration",
            ),
            ("--duration=-1", "--duration", "\"-1\" is negative"),
            ("--duration -1", "--duration", "\"-1\" is negative"),
            (
                "--stats-period inf",
                "--stats-period",
                "\"inf\" is not a finite duration",
            ),
            ("--duration 0", "--duration", "a duration of 0"),
            ("--nb-mbuf 10", "--nb-mbuf", "at least 416"),
            (
                "--ring-size 2147483648",
                "--ring-size",
                "ring size 2147483648 must be a power of two from 1 to 65536",
            ),
            ("--cache-size 513", "--cache-size", "cache size 513"),
            ("--burst 0", "--burst", "burst 0"),
            ("--burst 513", "--burst", "burst 513"),
            ("--packet-size 59", "--packet-size", "packet size 59"),
            ("--packet-size 2049", "--packet-size", "packet size 2049"),
            ("--eth-peer 1", "--eth-peer", "expected PORT,MAC"),
            (
                "--eth-peer 1,zz:00:00:00:00:00",
                "--eth-peer",
                "bad MAC address",
            ),
            (
                "--eth-peer 5,02:00:00:00:00:01",
                "--eth-peer",
                "names port 5",
            ),
            (
                "--tx-first 18446744073709551615",
                "--tx-first",
                "tx-first bursts",
            ),
            ("--cores 0", "--cores", "no worker core"),
            ("--cpus 7-3", "--cpus", "reversed CPU range"),
            ("--ports null,warp", "--ports", "unknown port \"warp\""),
            ("--ports afpacket:", "--ports", "not an interface name"),
            ("--huge-size 4K", "--huge-size", "unknown hugepage size"),
            ("--mode teleport", "--mode", "unknown forwarding mode"),
            (
                "--afpacket-block-size 1000",
                "--afpacket-block-size",
                "RX block size 1000 must be a power of two",
            ),
            (
                "--afpacket-blocks 0",
                "--afpacket-blocks",
                "RX blocks 0 is out of range",
            ),
            (
                "--afpacket-tx-frames 65537",
                "--afpacket-tx-frames",
                "TX frames 65537 is out of range",
            ),
        ] {
            let e = error(line);
            assert!(e.contains(option) && e.contains(text), "{line}: {e}");
        }
    }

    #[test]
    fn large_values_overflow_nothing() {
        let e = error("--cores 65536 --ports ring,ring --ring-size 65536 --burst 512");
        assert!(
            e.starts_with("--nb-mbuf: these settings need a pool of"),
            "{e}"
        );
        let e = error(&format!("--cores {}", usize::MAX));
        assert!(e.starts_with("--cores: "), "{e}");
    }

    #[test]
    fn afpacket_ring_options_reach_the_config() {
        let a = RunArgs::try_from_args(&[
            "--afpacket-block-size",
            "131072",
            "--afpacket-blocks",
            "8",
            "--afpacket-retire-ms",
            "4",
            "--afpacket-tx-frames",
            "1024",
        ])
        .unwrap();
        let c = a.to_config().afpacket;
        assert_eq!(
            (c.rx_block_size, c.rx_blocks, c.rx_retire_ms, c.tx_frames),
            (131072, 8, 4, 1024)
        );
        assert!(c.qdisc_bypass);
        let d = RunArgs::try_from_args(&[]).unwrap().to_config().afpacket;
        assert_eq!(d, AfPacketConfig::default());
    }

    #[test]
    fn every_setting_has_an_option() {
        let a = RunArgs::try_from_args(&[]).unwrap();
        for s in Setting::ALL {
            assert!(a.option_for(s).starts_with("--"));
        }
    }

    impl RunArgs {
        fn try_from_args(args: &[&str]) -> Result<RunArgs, clap::Error> {
            let cli = Cli::try_parse_from(["fastpath", "run"].iter().chain(args))?;
            match cli.command {
                Command::Run(a) => Ok(a),
                other => panic!("not run: {other:?}"),
            }
        }
    }
}
