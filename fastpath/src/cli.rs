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
use crate::router::{parse_backend, parse_rate, RouterOptions, RouterOptionsError};
use crate::run::Output;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use config::core_choice::CoreChoice;
use config::cpu_list::parse_cpu_list;
use config::duration::parse_duration;
use config::eth_peer::EthPeer;
use config::fast_path_env::{FastPathEnv, FastPathEnvError, FpMask, FpPorts};
use config::fwd_mode::FwdMode;
use config::hugepage_size::parse_hugepage_size;
use config::port_spec::PortSpec;
use config::run_config::{RunConfig, RunConfigError, ValidRunConfig};
use config::setting::Setting;
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
// Made once per process: the size of the `run` variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Forward packets between ports on pinned worker cores, printing
    /// statistics every second, until Ctrl-C / SIGTERM or --duration.
    Run(RunArgs),
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
    /// Print the final summary as one JSON document on stdout (start-up
    /// and live lines go to stderr).
    #[arg(long)]
    pub json: bool,
    /// A 6WIND-style fast-path.env (see config/fast-path.env.sample): its
    /// FP_PORTS, FP_MASK (as a CPU list), NB_MBUF and, in L3 mode,
    /// EXC_LCOREID apply where the command line does not say otherwise.
    #[arg(long, value_name = "FILE")]
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
}

/// What the command line asks for.
// Made once per process: the size of the `run` variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Invocation {
    /// `fastpath run`, with its configuration checked, how to print, the
    /// router's options (used in L3 mode) and the control plane's.
    Run(ValidRunConfig, Output, RouterOptions, Box<ControlOptions>),
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
    #[error("--exception-ifnames: {0}")]
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
    /// The `--env` file is refused (its line and variable are named).
    #[error("--env {path}: {source}")]
    EnvFile {
        /// The file.
        path: String,
        /// Why.
        source: FastPathEnvError,
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
            | CliError::EnvFile { .. } => 2,
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
            cores: match &self.cpus {
                Some(set) => CoreChoice::List(set.clone()),
                None => CoreChoice::Count(self.cores),
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
        };
        if cfg.mode != FwdMode::L3 {
            let given = [
                (!opts.ifnames.is_empty(), "--exception-ifnames"),
                (opts.backend != defaults.backend, "--exception"),
                (opts.exception_cpu.is_some(), "--exception-cpu"),
                (self.exception_rate.is_some(), "--exception-rate"),
            ];
            if let Some((_, option)) = given.into_iter().find(|(g, _)| *g) {
                return Err(CliError::RouterOnly(option));
            }
        }
        opts.ifnames_for(cfg.ports.len())?;
        Ok(opts)
    }

    /// Validates the configuration, naming the option of any problem.
    pub fn validate(&self) -> Result<ValidRunConfig, CliError> {
        self.to_config()
            .validate()
            .map_err(|source| CliError::Invalid {
                option: self.option_for(source.setting()),
                source,
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
            if let (Some(path), Some(given)) = (a.env.clone(), matches.subcommand_matches("run")) {
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
        Command::Show(s) => Ok(Invocation::Show(s)),
        Command::Watch(w) => Ok(Invocation::Watch(w)),
    }
}

/// Fills `a` from the fast-path.env at `path` where the command line
/// (`given`) did not set the option: the command line wins over the file,
/// as fast-path.sh's environment wins over `: ${VAR:=...}` lines.
fn apply_env_file(
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
    let file = FastPathEnv::parse(&text, env).map_err(|source| CliError::EnvFile {
        path: shown.clone(),
        source,
    })?;
    let on_line = |id: &str| given.value_source(id) == Some(ValueSource::CommandLine);
    if let (false, Some(FpPorts::List(ports))) = (on_line("ports"), &file.fp_ports) {
        a.ports = ports.clone();
    }
    if let (false, false, Some(FpMask::Cpus(set))) =
        (on_line("cores"), on_line("cpus"), &file.fp_mask)
    {
        a.cpus = Some(set.clone());
    }
    if !on_line("nb_mbuf") && file.run.nb_mbuf.is_some() {
        a.nb_mbuf = file.run.nb_mbuf;
    }
    // The exception thread exists only in L3 mode; elsewhere EXC_LCOREID
    // is reported as not applied rather than refused.
    if !on_line("exception_cpu") && a.mode == FwdMode::L3 {
        if let Some(cpu) = file.exception_cpu {
            a.exception_cpu = Some(cpu.0);
        }
    }
    for w in &file.warnings {
        eprintln!(
            "--env {shown}: line {}: unknown variable {}, ignored",
            w.line, w.var
        );
    }
    for n in &file.not_applied {
        eprintln!("--env {shown}: {} is not supported yet, ignored", n.var);
    }
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
        Invocation::Show(_) | Invocation::Watch(_) => {
            unreachable!("the command line starts with `run`")
        }
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
            other => panic!("not run: {other:?}"),
        }
    }

    #[test]
    fn an_env_file_fills_what_the_command_line_leaves() {
        let path =
            std::env::temp_dir().join(format!("fastpath-cli-env-{}.env", std::process::id()));
        std::fs::write(
            &path,
            ": ${FP_PORTS:='ring ring'}\nFP_MASK=1\nNB_MBUF=4096\n",
        )
        .unwrap();
        let p = path.display().to_string();
        let cfg = parse_run_args(&args(&format!("--env {p} --nb-mbuf 8192"))).unwrap();
        assert_eq!(cfg.ports, vec![PortSpec::Ring, PortSpec::Ring]);
        assert_eq!(cfg.cores, CoreChoice::List(parse_cpu_list("1").unwrap()));
        assert_eq!(cfg.nb_mbuf(), 8192);
        let cfg = parse_run_args(&args(&format!("--env {p} --ports null,null --cores 1"))).unwrap();
        assert_eq!(cfg.ports, vec![PortSpec::Null, PortSpec::Null]);
        assert_eq!(
            (cfg.cores.clone(), cfg.nb_mbuf()),
            (CoreChoice::Count(1), 4096)
        );
        std::fs::write(&path, "NB_MBUF=4096\nNB_RXD=100\n").unwrap();
        let e = error(&format!("--env {p}"));
        assert!(e.starts_with(&format!("--env {p}: line 2: NB_RXD=")), "{e}");
        std::fs::remove_file(&path).unwrap();
        assert!(error(&format!("--env {p}")).starts_with(&format!("--env {p}: ")));
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
                "--mode l3 --exception-ifnames a,b,c",
                "--exception-ifnames: 3 exception interface names for 2 ports (at most one per port)",
            ),
            (
                "--mode l3 --exception-ifnames fp1",
                "--exception-ifnames: interface name \"fp1\" given to two ports",
            ),
        ] {
            assert_eq!(router(line).unwrap_err().to_string(), want, "{line}");
        }
        for (line, option) in [
            ("--mode l3 --exception-rate 0", "--exception-rate"),
            ("--mode l3 --exception vde", "--exception"),
            ("--mode l3 --exception-cpu x", "--exception-cpu"),
        ] {
            let e = router(line).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{line}");
            assert!(e.to_string().contains(option), "{line}: {e}");
        }
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
