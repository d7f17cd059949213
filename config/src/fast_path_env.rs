//! 6WIND's fast-path.env variables mapped onto our [`RunConfig`].
//!
//! [`FastPathEnv::parse`] reads the file's text (syntax in
//! [`crate::env_syntax`]) against an environment given as a map, checks
//! every variable it knows, and returns the [`RunConfig`] those variables
//! fill in plus, typed, what the forwarder cannot apply yet (CPU keywords
//! that need the topology, the core/port mapping, hugepage
//! memory, descriptor counts, the exception CPU). Nothing read is dropped:
//! variables we know but do not act on are listed in
//! [`FastPathEnv::not_applied`], unknown ones in [`FastPathEnv::warnings`].
//! Meaning and syntax of each variable: anchors.md section 2.2.

use crate::core_choice::CoreChoice;
use crate::cpu_list::{parse_cpu_list, parse_cpu_mask};
use crate::env_syntax::{parse_assignments, resolve, EnvSyntaxError};
use crate::pool_sizing::MAX_NB_MBUF;
use crate::port_spec::PortSpec;
use crate::run_config::RunConfig;
use drivers::cpu::{CpuId, CpuSet, MAX_CPU_ID};
use std::collections::BTreeMap;

/// The variables this module maps (onto [`RunConfig`] or a typed field).
pub const MAPPED: [&str; 8] = [
    "FP_MASK",
    "FP_PORTS",
    "CORE_PORT_MAPPING",
    "FP_MEMORY",
    "NB_MBUF",
    "NB_RXD",
    "NB_TXD",
    "EXC_LCOREID",
];

/// 6WIND variables we recognise but do not act on (no equivalent yet, or
/// nothing to do in a container: hugepages are prepared by the platform).
pub const RECOGNISED: [&str; 10] = [
    "VM_MEMORY",
    "NB_MEM_CHANNELS",
    "NB_HUGEPAGES",
    "HUGEPAGES_DIR",
    "FP_OFFLOAD",
    "FPNSDK_OPTIONS",
    "DPVI_MASK",
    "FP_OPTIONS",
    "EAL_OPTIONS",
    "IGNORE_NETDEV",
];

/// Descriptor counts must fill whole 128-byte blocks of 16-byte
/// descriptors: the ring length registers of ixgbe/iavf VFs take
/// multiples of 128 bytes (82599 datasheet 8.2.3.8.2 RDLEN).
pub const DESC_MULTIPLE: u32 = 8;
/// Largest descriptor count accepted (the ring size ixgbe and i40e/iavf
/// hardware is documented to take at most).
pub const MAX_DESC: u32 = 4096;

/// FP_MASK: which CPUs run the fast path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FpMask {
    /// `min`: one physical core per socket.
    Min,
    /// `half`: half the physical cores.
    Half,
    /// `max`: all physical cores but one.
    Max,
    /// `auto`: the product's default.
    Auto,
    /// A CPU list (`1-4,6`) or hex mask (`0x1e`).
    Cpus(CpuSet),
}

/// FP_PORTS: which ports the fast path uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FpPorts {
    /// `all`: every supported port found (needs device discovery).
    All,
    /// PCI addresses or our port specs, in port-id order.
    List(Vec<PortSpec>),
}

/// One `c<cpu>=<port>[:<port>...]` entry of CORE_PORT_MAPPING.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorePorts {
    /// The polling CPU.
    pub cpu: CpuId,
    /// The ports it polls (port ids, FP_PORTS order).
    pub ports: Vec<u16>,
}

/// FP_MEMORY: hugepage memory of the fast path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FpMemory {
    /// `auto`.
    Auto,
    /// This many MiB.
    Megabytes(u64),
}

/// A variable in the file we do not know (a typo, or another product's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariable {
    /// Line number.
    pub line: usize,
    /// The variable.
    pub var: String,
}

/// A recognised variable that has no effect yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotApplied {
    /// Line number (`None`: from the environment).
    pub line: Option<usize>,
    /// The variable.
    pub var: &'static str,
    /// Its value.
    pub value: String,
}

/// Why a fast-path.env was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FastPathEnvError {
    /// The file is not in the accepted syntax.
    #[error(transparent)]
    Syntax(#[from] EnvSyntaxError),
    /// A variable's value is not one it can take.
    #[error("{}{var}={value:?}: {reason}; allowed: {allowed}", line_prefix(*line))]
    BadValue {
        /// Line number (`None`: the value came from the environment).
        line: Option<usize>,
        /// The variable.
        var: &'static str,
        /// The value.
        value: String,
        /// What is wrong with it.
        reason: String,
        /// What the variable accepts.
        allowed: &'static str,
    },
}

fn line_prefix(line: Option<usize>) -> String {
    match line {
        Some(n) => format!("line {n}: "),
        None => "environment: ".to_string(),
    }
}

const ALLOWED_MASK: &str =
    "min, half, max, auto, a CPU list such as 1-4,6 or a hex mask such as 0x1e";
const ALLOWED_PORTS: &str = "all, or space-separated PCI addresses (0000:01:10.0) or port specs (null, ring, afpacket:IFACE, sim:ixgbevf, sim:iavf)";
const ALLOWED_MAPPING: &str =
    "c<cpu>=<port>[:<port>...] entries joined by '/', such as c1=0/c2=1:2, each CPU once";
const ALLOWED_MEMORY: &str = "auto or a positive number of MiB";
const ALLOWED_MBUF: &str = "1 to 16777215 buffers";
const ALLOWED_DESC: &str = "a multiple of 8 from 8 to 4096";
const ALLOWED_CPU: &str = "a CPU number from 0 to 65535";

/// A fast-path.env, checked: the [`RunConfig`] it describes and what does
/// not map onto it yet.
#[derive(Debug, Clone, PartialEq)]
pub struct FastPathEnv {
    /// The run configuration: `FP_MASK` as a CPU list/mask gives the
    /// cores, `FP_PORTS` as a list gives the ports, `NB_MBUF` the pool
    /// size (unset: the sizing rule of [`crate::pool_sizing`]); everything
    /// else keeps [`RunConfig::default`].
    pub run: RunConfig,
    /// FP_MASK as given (keywords need the CPU topology to resolve, so
    /// they leave `run.cores` at its default).
    pub fp_mask: Option<FpMask>,
    /// FP_PORTS as given (`all` is resolved in `run.ports` to the PCI
    /// addresses of the environment's PCIDEVICE_* variables,
    /// [`crate::k8s::pci_ports_from_env`]).
    pub fp_ports: Option<FpPorts>,
    /// CORE_PORT_MAPPING, parsed and checked; the forwarder does not take
    /// a per-core port assignment yet.
    pub core_port_mapping: Option<Vec<CorePorts>>,
    /// FP_MEMORY; the pool is sized from buffers, not MiB, today.
    pub fp_memory: Option<FpMemory>,
    /// NB_RXD; VF rings use the drivers' fixed default today.
    pub nb_rxd: Option<u32>,
    /// NB_TXD; likewise.
    pub nb_txd: Option<u32>,
    /// EXC_LCOREID: the exception thread's CPU (the router's
    /// `--exception-cpu`).
    pub exception_cpu: Option<CpuId>,
    /// Recognised variables with no effect yet.
    pub not_applied: Vec<NotApplied>,
    /// Variables assigned in the file that we do not know.
    pub warnings: Vec<UnknownVariable>,
}

impl FastPathEnv {
    /// Reads `text` as fast-path.env with `env` as the environment it
    /// starts from (so `: ${VAR:=value}` yields to `env`).
    pub fn parse(text: &str, env: &BTreeMap<String, String>) -> Result<Self, FastPathEnvError> {
        let assignments = parse_assignments(text)?;
        let values = resolve(&assignments, env);
        let get = |var: &str| values.get(var).map(|(v, line)| (v.as_str(), *line));
        let mut out = FastPathEnv {
            run: RunConfig::default(),
            fp_mask: None,
            fp_ports: None,
            core_port_mapping: None,
            fp_memory: None,
            nb_rxd: None,
            nb_txd: None,
            exception_cpu: None,
            not_applied: Vec::new(),
            warnings: Vec::new(),
        };
        // An empty value means "unset" to fast-path.sh (`${VAR:=...}`
        // treats it so), hence the filter.
        let given = |var: &'static str| get(var).filter(|(v, _)| !v.trim().is_empty());
        if let Some((v, line)) = given("FP_MASK") {
            let mask =
                parse_mask(v).map_err(|reason| bad(line, "FP_MASK", v, reason, ALLOWED_MASK))?;
            if let FpMask::Cpus(set) = &mask {
                out.run.cores = CoreChoice::List(set.clone());
            }
            out.fp_mask = Some(mask);
        }
        if let Some((v, line)) = given("FP_PORTS") {
            let ports =
                parse_ports(v).map_err(|reason| bad(line, "FP_PORTS", v, reason, ALLOWED_PORTS))?;
            out.run.ports = match &ports {
                FpPorts::List(list) => list.clone(),
                // In a pod: every VF the SR-IOV device plugin gave it.
                FpPorts::All => crate::k8s::pci_ports_from_env(env)
                    .map_err(|e| bad(line, "FP_PORTS", v, e.to_string(), ALLOWED_PORTS))?
                    .into_iter()
                    .map(PortSpec::Pci)
                    .collect(),
            };
            out.fp_ports = Some(ports);
        }
        if let Some((v, line)) = given("CORE_PORT_MAPPING") {
            let mapping = parse_mapping(v)
                .and_then(|m| check_mapping(m, out.fp_mask.as_ref(), out.fp_ports.as_ref()))
                .map_err(|reason| bad(line, "CORE_PORT_MAPPING", v, reason, ALLOWED_MAPPING))?;
            out.core_port_mapping = Some(mapping);
        }
        if let Some((v, line)) = given("FP_MEMORY") {
            let m = match v.trim() {
                "auto" => Ok(FpMemory::Auto),
                s => parse_number(s, 1, u64::from(u32::MAX)).map(FpMemory::Megabytes),
            };
            out.fp_memory =
                Some(m.map_err(|reason| bad(line, "FP_MEMORY", v, reason, ALLOWED_MEMORY))?);
        }
        if let Some((v, line)) = given("NB_MBUF") {
            out.run.nb_mbuf = Some(
                parse_number(v.trim(), 1, MAX_NB_MBUF)
                    .map_err(|reason| bad(line, "NB_MBUF", v, reason, ALLOWED_MBUF))?,
            );
        }
        for (var, slot) in [("NB_RXD", &mut out.nb_rxd), ("NB_TXD", &mut out.nb_txd)] {
            if let Some((v, line)) = given(var) {
                *slot = Some(
                    parse_desc(v.trim())
                        .map_err(|reason| bad(line, var, v, reason, ALLOWED_DESC))?,
                );
            }
        }
        if let Some((v, line)) = given("EXC_LCOREID") {
            let id = parse_number(v.trim(), 0, u64::from(MAX_CPU_ID))
                .map_err(|reason| bad(line, "EXC_LCOREID", v, reason, ALLOWED_CPU))?;
            // parse_number bounded it by MAX_CPU_ID, a u32.
            out.exception_cpu = u32::try_from(id).ok().map(CpuId);
        }
        for var in RECOGNISED {
            if let Some((v, line)) = get(var) {
                out.not_applied.push(NotApplied {
                    line,
                    var,
                    value: v.to_string(),
                });
            }
        }
        for a in &assignments {
            let known = MAPPED.contains(&a.var.as_str()) || RECOGNISED.contains(&a.var.as_str());
            if !known && !out.warnings.iter().any(|w| w.var == a.var) {
                out.warnings.push(UnknownVariable {
                    line: a.line,
                    var: a.var.clone(),
                });
            }
        }
        Ok(out)
    }
}

fn bad(
    line: Option<usize>,
    var: &'static str,
    value: &str,
    reason: String,
    allowed: &'static str,
) -> FastPathEnvError {
    FastPathEnvError::BadValue {
        line,
        var,
        value: value.to_string(),
        reason,
        allowed,
    }
}

fn parse_number(s: &str, min: u64, max: u64) -> Result<u64, String> {
    let n: u64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if n < min || n > max {
        return Err(format!("{n} is out of range {min}..={max}"));
    }
    Ok(n)
}

fn parse_desc(s: &str) -> Result<u32, String> {
    let n = parse_number(s, u64::from(DESC_MULTIPLE), u64::from(MAX_DESC))?;
    let n = u32::try_from(n).map_err(|_| format!("{n} is too large"))?;
    if n % DESC_MULTIPLE != 0 {
        return Err(format!("{n} is not a multiple of {DESC_MULTIPLE}"));
    }
    Ok(n)
}

fn parse_mask(v: &str) -> Result<FpMask, String> {
    let s = v.trim();
    let mask = match s {
        "min" => FpMask::Min,
        "half" => FpMask::Half,
        "max" => FpMask::Max,
        "auto" => FpMask::Auto,
        _ if s.starts_with("0x") || s.starts_with("0X") => {
            FpMask::Cpus(parse_cpu_mask(s).map_err(|e| e.to_string())?)
        }
        _ => FpMask::Cpus(parse_cpu_list(s).map_err(|e| e.to_string())?),
    };
    match &mask {
        FpMask::Cpus(set) if set.is_empty() => Err("no CPU in it".to_string()),
        _ => Ok(mask),
    }
}

fn parse_ports(v: &str) -> Result<FpPorts, String> {
    let words: Vec<&str> = v.split_whitespace().collect();
    if words == ["all"] {
        return Ok(FpPorts::All);
    }
    words
        .iter()
        .map(|w| w.parse::<PortSpec>().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()
        .map(FpPorts::List)
}

fn parse_mapping(v: &str) -> Result<Vec<CorePorts>, String> {
    let mut out: Vec<CorePorts> = Vec::new();
    for entry in v.trim().split('/') {
        let (core, ports) = entry
            .strip_prefix('c')
            .and_then(|rest| rest.split_once('='))
            .ok_or_else(|| format!("entry {entry:?} is not c<cpu>=<ports>"))?;
        let cpu = parse_number(core, 0, u64::from(MAX_CPU_ID))
            .map_err(|e| format!("entry {entry:?}: CPU {e}"))?;
        let cpu = CpuId(u32::try_from(cpu).map_err(|_| format!("entry {entry:?}: CPU too large"))?);
        if out.iter().any(|c| c.cpu == cpu) {
            return Err(format!("CPU {} is given twice", cpu.0));
        }
        let ports = ports
            .split(':')
            .map(|p| {
                parse_number(p, 0, u64::from(u16::MAX))
                    .and_then(|n| u16::try_from(n).map_err(|_| format!("{n} is too large")))
                    .map_err(|e| format!("entry {entry:?}: port {e}"))
            })
            .collect::<Result<Vec<u16>, String>>()?;
        out.push(CorePorts { cpu, ports });
    }
    Ok(out)
}

/// The mapping against FP_MASK and FP_PORTS when those are explicit: every
/// CPU must run the fast path and every port id must name a port.
fn check_mapping(
    mapping: Vec<CorePorts>,
    mask: Option<&FpMask>,
    ports: Option<&FpPorts>,
) -> Result<Vec<CorePorts>, String> {
    for entry in &mapping {
        if let Some(FpMask::Cpus(set)) = mask {
            if !set.contains(entry.cpu) {
                return Err(format!("CPU {} is not in FP_MASK ({set})", entry.cpu.0));
            }
        }
        if let Some(FpPorts::List(list)) = ports {
            if let Some(p) = entry.ports.iter().find(|&&p| usize::from(p) >= list.len()) {
                return Err(format!(
                    "port {p} does not exist: FP_PORTS has {} port(s)",
                    list.len()
                ));
            }
        }
    }
    Ok(mapping)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse(text: &str) -> FastPathEnv {
        FastPathEnv::parse(text, &BTreeMap::new()).unwrap()
    }

    fn bad_value(text: &str) -> (Option<usize>, &'static str) {
        match FastPathEnv::parse(text, &BTreeMap::new()) {
            Err(FastPathEnvError::BadValue { line, var, .. }) => (line, var),
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn the_sample_gives_a_valid_run_config() {
        let f =
            FastPathEnv::parse(include_str!("../fast-path.env.sample"), &BTreeMap::new()).unwrap();
        assert!(f.warnings.is_empty(), "{:?}", f.warnings);
        assert_eq!(f.run.ports, vec![PortSpec::Ring, PortSpec::Ring]);
        assert_eq!(f.run.cores, CoreChoice::List(parse_cpu_list("1").unwrap()));
        assert_eq!(f.fp_memory, Some(FpMemory::Auto));
        assert_eq!((f.nb_rxd, f.nb_txd), (Some(512), Some(512)));
        assert_eq!(
            f.core_port_mapping,
            Some(vec![CorePorts {
                cpu: CpuId(1),
                ports: vec![0, 1]
            }])
        );
        f.run.validate().unwrap();
    }

    #[test]
    fn the_environment_overrides_default_lines_only() {
        let text = ": ${FP_MASK:=1}\nNB_MBUF=4096\n";
        let f = FastPathEnv::parse(text, &env(&[("FP_MASK", "3-4"), ("NB_MBUF", "99")])).unwrap();
        assert_eq!(
            f.run.cores,
            CoreChoice::List(parse_cpu_list("3-4").unwrap())
        );
        assert_eq!(f.run.nb_mbuf, Some(4096));
        // A bad value from the environment is reported as such.
        let e = FastPathEnv::parse(text, &env(&[("FP_MASK", "x")])).unwrap_err();
        assert!(
            matches!(
                e,
                FastPathEnvError::BadValue {
                    line: None,
                    var: "FP_MASK",
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            e.to_string().starts_with("environment: FP_MASK=\"x\""),
            "{e}"
        );
    }

    #[test]
    fn fp_mask_forms() {
        assert_eq!(
            parse("FP_MASK=0x6").run.cores,
            CoreChoice::List(parse_cpu_list("1-2").unwrap())
        );
        for (word, mask) in [
            ("min", FpMask::Min),
            ("half", FpMask::Half),
            ("max", FpMask::Max),
            ("auto", FpMask::Auto),
        ] {
            let f = parse(&format!("FP_MASK={word}"));
            assert_eq!(f.fp_mask, Some(mask));
            assert_eq!(f.run.cores, CoreChoice::default());
        }
        assert_eq!(bad_value("\n\nFP_MASK=1-x"), (Some(3), "FP_MASK"));
        assert_eq!(bad_value("FP_MASK=0x0"), (Some(1), "FP_MASK"));
    }

    #[test]
    fn fp_ports_forms() {
        let f = parse("FP_PORTS=\"0000:06:00.1 afpacket:eth1\"");
        assert_eq!(f.run.ports.len(), 2);
        assert!(f.run.ports[0].is_vf());
        let pod = env(&[
            ("PCIDEVICE_INTEL_COM_B", "0000:05:00.1"),
            ("PCIDEVICE_INTEL_COM_A", "0000:03:02.1,0000:03:02.0"),
        ]);
        let all = FastPathEnv::parse("FP_PORTS=all", &pod).unwrap();
        assert_eq!(all.fp_ports, Some(FpPorts::All));
        assert_eq!(
            all.run
                .ports
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
            ["0000:03:02.1", "0000:03:02.0", "0000:05:00.1"]
        );
        assert_eq!(bad_value("FP_PORTS=all"), (Some(1), "FP_PORTS"));
        assert_eq!(bad_value("FP_PORTS='ring bogus'"), (Some(1), "FP_PORTS"));
    }

    #[test]
    fn core_port_mapping_is_parsed_and_checked() {
        let f = parse("CORE_PORT_MAPPING=c2=0:1/c4=2");
        assert_eq!(
            f.core_port_mapping,
            Some(vec![
                CorePorts {
                    cpu: CpuId(2),
                    ports: vec![0, 1]
                },
                CorePorts {
                    cpu: CpuId(4),
                    ports: vec![2]
                },
            ])
        );
        assert_eq!(
            bad_value("CORE_PORT_MAPPING=c2=0/c2=1"),
            (Some(1), "CORE_PORT_MAPPING")
        );
        assert_eq!(
            bad_value("CORE_PORT_MAPPING=2=0"),
            (Some(1), "CORE_PORT_MAPPING")
        );
        assert_eq!(
            bad_value("CORE_PORT_MAPPING=c2="),
            (Some(1), "CORE_PORT_MAPPING")
        );
        // Against explicit FP_MASK / FP_PORTS.
        assert_eq!(
            bad_value("FP_MASK=1\nCORE_PORT_MAPPING=c2=0"),
            (Some(2), "CORE_PORT_MAPPING")
        );
        let e = FastPathEnv::parse(
            "FP_PORTS='ring ring'\nCORE_PORT_MAPPING=c1=2",
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("port 2 does not exist: FP_PORTS has 2 port(s)"),
            "{e}"
        );
    }

    #[test]
    fn numbers_and_their_ranges() {
        assert_eq!(
            parse("FP_MEMORY=256").fp_memory,
            Some(FpMemory::Megabytes(256))
        );
        assert_eq!(bad_value("FP_MEMORY=0"), (Some(1), "FP_MEMORY"));
        assert_eq!(parse("NB_MBUF=16777215").run.nb_mbuf, Some(MAX_NB_MBUF));
        assert_eq!(parse("NB_MBUF=").run.nb_mbuf, None);
        assert_eq!(bad_value("NB_MBUF=16777216"), (Some(1), "NB_MBUF"));
        assert_eq!(parse("NB_RXD=4096\nNB_TXD=8").nb_txd, Some(8));
        assert_eq!(bad_value("NB_RXD=100"), (Some(1), "NB_RXD"));
        assert_eq!(bad_value("NB_TXD=8192"), (Some(1), "NB_TXD"));
        assert_eq!(parse("EXC_LCOREID=3").exception_cpu, Some(CpuId(3)));
        assert_eq!(bad_value("EXC_LCOREID=65536"), (Some(1), "EXC_LCOREID"));
        let e = FastPathEnv::parse("NB_RXD=100", &BTreeMap::new()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 1: NB_RXD=\"100\": 100 is not a multiple of 8; allowed: a multiple of 8 from 8 to 4096"
        );
    }

    #[test]
    fn unknown_variables_warn_and_recognised_ones_are_listed() {
        let f = parse("FP_MAKS=1\nDPVI_MASK=0\nFP_MAKS=2\n");
        assert_eq!(
            f.warnings,
            vec![UnknownVariable {
                line: 1,
                var: "FP_MAKS".to_string()
            }]
        );
        assert_eq!(
            f.not_applied,
            vec![NotApplied {
                line: Some(2),
                var: "DPVI_MASK",
                value: "0".to_string()
            }]
        );
    }

    #[test]
    fn syntax_errors_pass_through_with_their_line() {
        let e = FastPathEnv::parse("A=1\nFP_PORTS='ring", &BTreeMap::new()).unwrap_err();
        assert!(
            matches!(
                e,
                FastPathEnvError::Syntax(EnvSyntaxError::UnterminatedQuote { line: 2, .. })
            ),
            "{e:?}"
        );
    }

    proptest! {
        #[test]
        fn no_input_panics(text in "((FP_MASK|FP_PORTS|CORE_PORT_MAPPING|NB_MBUF|NB_RXD|EXC_LCOREID|FP_MEMORY|X)=[ -~]{0,20}\\n){0,6}") {
            let _ = FastPathEnv::parse(&text, &BTreeMap::new());
        }

        #[test]
        fn no_arbitrary_text_panics(text in "[ -~\\n]{0,200}") {
            let _ = FastPathEnv::parse(&text, &BTreeMap::new());
        }
    }
}
