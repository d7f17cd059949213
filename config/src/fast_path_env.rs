//! 6WIND's fast-path.env variables mapped onto our [`RunConfig`].
//!
//! [`FastPathEnv::parse`] reads the file's text (syntax in
//! [`crate::env_syntax`]) against an environment given as a map, checks
//! every variable it knows, and returns the [`RunConfig`] those variables
//! fill in, where each setting came from ([`Origin`], so a later
//! validation error can name the line), and what needs the machine to
//! resolve (FP_MASK's words, see [`crate::fp_mask`]). Nothing read is
//! dropped: variables we know but do not act on are listed in
//! [`FastPathEnv::not_applied`], unknown ones in [`FastPathEnv::warnings`].
//! Meaning and syntax of each variable: anchors.md section 2.2; what we do
//! with each: config/fast-path.env.sample.

use crate::core_choice::CoreChoice;
use crate::core_port_mapping::{CorePortMapping, MAPPING_SYNTAX};
use crate::cpu_list::{parse_cpu_list, parse_cpu_mask};
use crate::env_syntax::{parse_assignments, resolve, EnvSyntaxError};
use crate::fp_mask::FpMaskWord;
use crate::pod_address::{PodAddressError, PodPrefix, POD_PREFIX_SYNTAX};
use crate::pool_sizing::MAX_NB_MBUF;
use crate::port_spec::PortSpec;
use crate::run_config::RunConfig;
use crate::setting::Setting;
use crate::table_limits::{parse_fp_options, TableLimits, FP_OPTIONS_SYNTAX};
use drivers::cpu::{CpuId, CpuSet, MAX_CPU_ID};
use drivers::pci::PciAddress;
use drivers::pmd::ring_limits::{describe_ring_limits, RingDir, RING_LIMITS};
use std::collections::BTreeMap;
use std::fmt;

/// 6WIND's default path of the file (anchors.md section 2.1), read by
/// `fastpath run` when no `--env` is given.
pub const DEFAULT_PATH: &str = "/etc/fast-path.env";

/// The variables this module maps (onto [`RunConfig`] or a typed field).
pub const MAPPED: [&str; 12] = [
    "FP_MASK",
    "FP_PORTS",
    "CORE_PORT_MAPPING",
    "FP_MEMORY",
    "NB_MBUF",
    "NB_RXD",
    "NB_TXD",
    "EXC_LCOREID",
    "DPVI_MASK",
    "FP_OPTIONS",
    "FP_ANNOTATIONS",
    "FP_POD_PREFIX",
];

/// 6WIND variables we recognise but do not act on (no equivalent yet, or
/// nothing to do in a container: hugepages are prepared by the platform).
pub const RECOGNISED: [&str; 8] = [
    "VM_MEMORY",
    "NB_MEM_CHANNELS",
    "NB_HUGEPAGES",
    "HUGEPAGES_DIR",
    "FP_OFFLOAD",
    "FPNSDK_OPTIONS",
    "EAL_OPTIONS",
    "IGNORE_NETDEV",
];

/// FP_MASK: which CPUs run the fast path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FpMask {
    /// `min`, `half`, `max` or `auto`: resolved against the allowed CPUs
    /// by [`crate::fp_mask::resolve_word`].
    Word(FpMaskWord),
    /// A CPU list (`1-4,6`) or hex mask (`0x1e`).
    Cpus(CpuSet),
}

/// FP_PORTS: which ports the fast path uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FpPorts {
    /// `all`: every supported port found (needs device discovery: see
    /// [`FastPathEnv::apply_discovered_ports`]).
    All,
    /// PCI addresses or our port specs, in port-id order.
    List(Vec<PortSpec>),
}

/// Where a setting's value came from: a line of the file or the
/// environment, the variable and its value as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Line number (`None`: the environment).
    pub line: Option<usize>,
    /// The variable.
    pub var: &'static str,
    /// Its value.
    pub value: String,
}

impl fmt::Display for Origin {
    /// "12: FP_MASK=\"1-3\"" (file) or "environment: FP_MASK=\"1-3\"".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(n) => write!(f, "{n}: {}={:?}", self.var, self.value),
            None => write!(f, "environment: {}={:?}", self.var, self.value),
        }
    }
}

/// A variable in the file we do not know (a typo, or another product's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariable {
    /// Line number.
    pub line: usize,
    /// The variable.
    pub var: String,
}

/// A recognised variable that has no effect.
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
        allowed: String,
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
const ALLOWED_MEMORY: &str = "auto (no cap) or a positive number of MiB";
const ALLOWED_MBUF: &str = "1 to 16777215 buffers";
const ALLOWED_CPU: &str = "a CPU number from 0 to 65535";
const ALLOWED_DPVI: &str = "a CPU list such as 0 or 0-1, or a hex mask such as 0x1";

/// A fast-path.env, checked: the [`RunConfig`] it describes, where each
/// setting came from, and what needs the machine to resolve.
#[derive(Debug, Clone, PartialEq)]
pub struct FastPathEnv {
    /// The run configuration: FP_PORTS (a list), FP_MASK (a list),
    /// CORE_PORT_MAPPING, NB_MBUF, NB_RXD/NB_TXD and FP_MEMORY fill it;
    /// everything else keeps [`RunConfig::default`].
    pub run: RunConfig,
    /// FP_MASK as given. A word leaves `run.cores` alone: the front end
    /// resolves it on the machine ([`crate::fp_mask::resolve_word_here`]).
    /// With CORE_PORT_MAPPING, the mapping's CPUs are the workers and
    /// FP_MASK only bounds them.
    pub fp_mask: Option<FpMask>,
    /// FP_PORTS as given (`all` leaves `run.ports` at its default).
    pub fp_ports: Option<FpPorts>,
    /// EXC_LCOREID, or else the first CPU of DPVI_MASK: the exception
    /// thread's CPU (the router's `--exception-cpu`).
    pub exception_cpu: Option<CpuId>,
    /// Where each setting of `run` the file filled came from.
    pub origins: BTreeMap<Setting, Origin>,
    /// The origin of `exception_cpu`.
    pub exception_origin: Option<Origin>,
    /// FP_OPTIONS' router table limits (`--max-route=N --max-neigh=N`).
    pub table_limits: TableLimits,
    /// FP_ANNOTATIONS (ours): the Downward API annotations file whose
    /// network-status addresses go to the exception interfaces, or
    /// `none` (the router's `--annotations`).
    pub annotations: Option<Origin>,
    /// FP_POD_PREFIX (ours): the prefix lengths of the pod's networks
    /// (the router's `--pod-prefix`).
    pub pod_prefix: Option<(PodPrefix, Origin)>,
    /// Things we do differently from what the file may expect, one
    /// sentence each (DPVI_MASK with several CPUs, FP_MASK CPUs no
    /// mapping entry uses).
    pub notes: Vec<String>,
    /// Recognised variables with no effect.
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
        let mut out = FastPathEnv {
            run: RunConfig::default(),
            fp_mask: None,
            fp_ports: None,
            exception_cpu: None,
            origins: BTreeMap::new(),
            exception_origin: None,
            table_limits: TableLimits::default(),
            annotations: None,
            pod_prefix: None,
            notes: Vec::new(),
            not_applied: Vec::new(),
            warnings: Vec::new(),
        };
        // An empty value means "unset" to fast-path.sh (`${VAR:=...}`
        // treats it so), hence the filter.
        let given = |var: &'static str| {
            values
                .get(var)
                .filter(|(v, _)| !v.trim().is_empty())
                .map(|(v, line)| Origin {
                    line: *line,
                    var,
                    value: v.clone(),
                })
        };
        let bad = |o: &Origin, reason: String, allowed: &str| FastPathEnvError::BadValue {
            line: o.line,
            var: o.var,
            value: o.value.clone(),
            reason,
            allowed: allowed.to_string(),
        };
        if let Some(o) = given("FP_MASK") {
            let mask = parse_mask(&o.value).map_err(|r| bad(&o, r, ALLOWED_MASK))?;
            if let FpMask::Cpus(set) = &mask {
                out.run.cores = CoreChoice::List(set.clone());
            }
            out.origins.insert(Setting::Cores, o);
            out.fp_mask = Some(mask);
        }
        if let Some(o) = given("FP_PORTS") {
            let ports = parse_ports(&o.value).map_err(|r| bad(&o, r, ALLOWED_PORTS))?;
            if let FpPorts::List(list) = &ports {
                out.run.ports = list.clone();
                out.origins.insert(Setting::Ports, o);
            }
            out.fp_ports = Some(ports);
        }
        if let Some(o) = given("CORE_PORT_MAPPING") {
            let map: CorePortMapping =
                o.value
                    .parse()
                    .map_err(|e: crate::core_port_mapping::MappingSyntaxError| {
                        bad(&o, e.to_string(), MAPPING_SYNTAX)
                    })?;
            // The mapping's CPUs are the workers; FP_MASK, when a list,
            // must hold them (a word is checked once resolved).
            let cpus = map.cpus();
            if let Some(FpMask::Cpus(mask)) = &out.fp_mask {
                if let Some(cpu) = cpus.iter().find(|&c| !mask.contains(c)) {
                    return Err(bad(
                        &o,
                        format!("CPU {cpu} is not in FP_MASK ({mask})"),
                        MAPPING_SYNTAX,
                    ));
                }
                let idle: Vec<String> = mask
                    .iter()
                    .filter(|&c| !cpus.contains(c))
                    .map(|c| c.to_string())
                    .collect();
                if !idle.is_empty() {
                    out.notes.push(format!(
                        "FP_MASK CPU(s) {} poll no port in CORE_PORT_MAPPING: no worker runs there",
                        idle.join(",")
                    ));
                }
            }
            out.run.cores = CoreChoice::List(cpus);
            out.run.core_port_mapping = Some(map);
            out.origins.insert(Setting::Cores, o.clone());
            out.origins.insert(Setting::CorePortMapping, o);
        }
        if let Some(o) = given("FP_MEMORY") {
            match o.value.trim() {
                // Fuel's `auto`: we size by the pool rule, with no cap.
                "auto" => {}
                v => {
                    let mib = parse_number(v, 1, u64::from(u32::MAX))
                        .map_err(|r| bad(&o, r, ALLOWED_MEMORY))?;
                    out.run.memory_cap_mib = Some(mib);
                    out.origins.insert(Setting::MemoryCap, o);
                }
            }
        }
        if let Some(o) = given("NB_MBUF") {
            out.run.nb_mbuf = Some(
                parse_number(o.value.trim(), 1, MAX_NB_MBUF)
                    .map_err(|r| bad(&o, r, ALLOWED_MBUF))?,
            );
            out.origins.insert(Setting::NbMbuf, o);
        }
        for (var, dir, setting) in [
            ("NB_RXD", RingDir::Rx, Setting::RxDescriptors),
            ("NB_TXD", RingDir::Tx, Setting::TxDescriptors),
        ] {
            if let Some(o) = given(var) {
                let n = parse_desc(o.value.trim(), dir)
                    .map_err(|r| bad(&o, r, &describe_ring_limits(dir)))?;
                match dir {
                    RingDir::Rx => out.run.rx_descriptors = Some(n),
                    RingDir::Tx => out.run.tx_descriptors = Some(n),
                }
                out.origins.insert(setting, o);
            }
        }
        if let Some(o) = given("EXC_LCOREID") {
            let id = parse_number(o.value.trim(), 0, u64::from(MAX_CPU_ID))
                .map_err(|r| bad(&o, r, ALLOWED_CPU))?;
            // parse_number bounded it by MAX_CPU_ID, a u32.
            out.exception_cpu = u32::try_from(id).ok().map(CpuId);
            out.exception_origin = Some(o);
        }
        if let Some(o) = given("DPVI_MASK") {
            let set = parse_cpus(&o.value).map_err(|r| bad(&o, r, ALLOWED_DPVI))?;
            if out.exception_cpu.is_some() {
                out.notes.push(format!(
                    "DPVI_MASK={} is not used: EXC_LCOREID already gives the exception CPU",
                    o.value
                ));
            } else {
                // 6WIND spreads exceptions over the mask's CPUs; we have
                // one exception thread, on the first.
                let first = set.iter().next();
                if set.len() > 1 {
                    out.notes.push(format!(
                        "DPVI_MASK={}: one exception thread runs, on CPU {}; the other CPUs are not used",
                        o.value,
                        first.map_or(0, |c| c.0)
                    ));
                }
                out.exception_cpu = first;
                out.exception_origin = Some(o);
            }
        }
        if let Some(o) = given("FP_OPTIONS") {
            let opts = parse_fp_options(&o.value).map_err(|r| bad(&o, r, FP_OPTIONS_SYNTAX))?;
            out.table_limits = opts.limits;
            if !opts.ignored.is_empty() {
                out.notes.push(format!(
                    "FP_OPTIONS {} has no effect here",
                    opts.ignored.join(" ")
                ));
            }
        }
        out.annotations = given("FP_ANNOTATIONS");
        if let Some(o) = given("FP_POD_PREFIX") {
            let p: PodPrefix = o
                .value
                .parse()
                .map_err(|e: PodAddressError| bad(&o, e.to_string(), POD_PREFIX_SYNTAX))?;
            out.pod_prefix = Some((p, o));
        }
        for var in RECOGNISED {
            if let Some((v, line)) = values.get(var) {
                out.not_applied.push(NotApplied {
                    line: *line,
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

    /// FP_PORTS=all, once device discovery found the VFs: `addresses`
    /// become the ports, in that order. Does nothing unless the file said
    /// `all` (an explicit list wins). For Kubernetes discovery
    /// (PCIDEVICE_* variables), which owns how the list is found.
    pub fn apply_discovered_ports(&mut self, addresses: &[PciAddress]) -> bool {
        if self.fp_ports != Some(FpPorts::All) {
            return false;
        }
        self.run.ports = addresses.iter().copied().map(PortSpec::Pci).collect();
        true
    }
}

fn parse_number(s: &str, min: u64, max: u64) -> Result<u64, String> {
    let n: u64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if n < min || n > max {
        return Err(format!("{n} is out of range {min}..={max}"));
    }
    Ok(n)
}

fn parse_desc(s: &str, dir: RingDir) -> Result<usize, String> {
    let n = parse_number(s, 1, u64::from(u32::MAX))?;
    let n = usize::try_from(n).map_err(|_| format!("{n} is too large"))?;
    if RING_LIMITS.iter().any(|l| l.check(dir, n).is_ok()) {
        Ok(n)
    } else {
        Err(format!("no VF driver takes {n} {dir} descriptors"))
    }
}

fn parse_cpus(v: &str) -> Result<CpuSet, String> {
    let s = v.trim();
    let set = if s.starts_with("0x") || s.starts_with("0X") {
        parse_cpu_mask(s).map_err(|e| e.to_string())?
    } else {
        parse_cpu_list(s).map_err(|e| e.to_string())?
    };
    if set.is_empty() {
        return Err("no CPU in it".to_string());
    }
    Ok(set)
}

fn parse_mask(v: &str) -> Result<FpMask, String> {
    match FpMaskWord::parse(v.trim()) {
        Some(w) => Ok(FpMask::Word(w)),
        None => parse_cpus(v).map(FpMask::Cpus),
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

    fn message(text: &str) -> String {
        FastPathEnv::parse(text, &BTreeMap::new())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_sample_gives_a_valid_run_config() {
        let f =
            FastPathEnv::parse(include_str!("../fast-path.env.sample"), &BTreeMap::new()).unwrap();
        assert!(f.warnings.is_empty(), "{:?}", f.warnings);
        assert!(f.not_applied.is_empty(), "{:?}", f.not_applied);
        assert_eq!(f.run.ports, vec![PortSpec::Ring, PortSpec::Ring]);
        assert_eq!(f.run.cores, CoreChoice::List(parse_cpu_list("1").unwrap()));
        assert_eq!(f.fp_mask, Some(FpMask::Word(FpMaskWord::Auto)));
        assert_eq!(
            f.run.core_port_mapping.as_ref().map(|m| m.to_string()),
            Some("c1=0:1".to_string())
        );
        assert_eq!(
            (f.run.rx_descriptors, f.run.tx_descriptors),
            (Some(512), Some(512))
        );
        f.run.validate().unwrap();
    }

    /// The fast-path.env the Kubernetes manifests ship (k8s/), as the pod
    /// reads it: every line is understood, nothing is left unapplied but
    /// FP_PORTS=all (filled from the pod's PCIDEVICE_* variables at start).
    #[test]
    fn the_manifests_env_file_is_understood() {
        let yaml = include_str!("../../k8s/fast-path-env-configmap.yaml");
        // The block scalar under `fast-path.env: |`, indented by four.
        let text: String = yaml
            .lines()
            .skip_while(|l| l.trim() != "fast-path.env: |")
            .skip(1)
            .take_while(|l| l.is_empty() || l.starts_with("    "))
            .map(|l| format!("{}\n", l.get(4..).unwrap_or("")))
            .collect();
        assert!(text.contains("FP_PORTS=all"), "{text}");
        let f = FastPathEnv::parse(&text, &BTreeMap::new()).unwrap();
        assert!(f.warnings.is_empty(), "{:?}", f.warnings);
        assert!(
            f.not_applied.iter().all(|n| n.var == "FP_PORTS"),
            "{:?}",
            f.not_applied
        );
        assert!(f.pod_prefix.is_some(), "FP_POD_PREFIX for the router");
        assert_eq!(
            (f.run.rx_descriptors, f.run.tx_descriptors),
            (Some(512), Some(512))
        );
    }

    #[test]
    fn the_environment_overrides_default_lines_only() {
        let text = ": ${FP_MASK:=1}\nNB_MBUF=4096\n";
        let f = FastPathEnv::parse(text, &env(&[("FP_MASK", "3-4"), ("NB_MBUF", "99")])).unwrap();
        assert_eq!(
            f.run.cores,
            CoreChoice::List(parse_cpu_list("3-4").unwrap())
        );
        assert_eq!(f.origins[&Setting::Cores].line, None);
        assert_eq!(f.run.nb_mbuf, Some(4096));
        assert_eq!(
            f.origins[&Setting::NbMbuf].to_string(),
            "2: NB_MBUF=\"4096\""
        );
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
    fn pod_addressing_variables() {
        let f = parse("FP_ANNOTATIONS=/run/podinfo/annotations\nFP_POD_PREFIX=24/64\n");
        assert_eq!(
            f.annotations.map(|o| o.value),
            Some("/run/podinfo/annotations".to_string())
        );
        let (p, o) = f.pod_prefix.unwrap();
        assert_eq!((p.v4, p.v6), (Some(24), Some(64)));
        assert_eq!(o.line, Some(2));
        assert_eq!(
            parse("FP_ANNOTATIONS=none").annotations.unwrap().value,
            "none"
        );
        assert_eq!(bad_value("\nFP_POD_PREFIX=40"), (Some(2), "FP_POD_PREFIX"));
        assert_eq!(
            message("FP_POD_PREFIX=24/x"),
            "line 1: FP_POD_PREFIX=\"24/x\": \"x\" is not a prefix length for IPv6 (0 to 128); \
             allowed: V4/V6 (24/64), V4 alone (24) or /V6 alone (/64)"
        );
    }

    #[test]
    fn fp_mask_forms() {
        assert_eq!(
            parse("FP_MASK=0x6").run.cores,
            CoreChoice::List(parse_cpu_list("1-2").unwrap())
        );
        for (word, w) in [
            ("min", FpMaskWord::Min),
            ("half", FpMaskWord::Half),
            ("max", FpMaskWord::Max),
            ("auto", FpMaskWord::Auto),
        ] {
            let f = parse(&format!("FP_MASK={word}"));
            assert_eq!(f.fp_mask, Some(FpMask::Word(w)));
            assert_eq!(f.run.cores, CoreChoice::default());
            assert_eq!(f.origins[&Setting::Cores].value, word);
        }
        assert_eq!(bad_value("\n\nFP_MASK=1-x"), (Some(3), "FP_MASK"));
        assert_eq!(bad_value("FP_MASK=0x0"), (Some(1), "FP_MASK"));
        assert_eq!(
            message("FP_MASK=most"),
            "line 1: FP_MASK=\"most\": invalid CPU list entry \"most\": expected a CPU number \
             \"N\" or a range \"N-M\"; allowed: min, half, max, auto, a CPU list such as \
             1-4,6 or a hex mask such as 0x1e"
        );
    }

    #[test]
    fn fp_ports_forms() {
        let f = parse("FP_PORTS=\"0000:06:00.1 afpacket:eth1\"");
        assert_eq!(f.run.ports.len(), 2);
        assert!(f.run.ports[0].is_vf());
        let mut all = parse("FP_PORTS=all");
        assert_eq!(all.fp_ports, Some(FpPorts::All));
        assert_eq!(all.run.ports, RunConfig::default().ports);
        // Discovery fills `all`; an explicit list is left alone.
        let a: PciAddress = "0000:03:02.1".parse().unwrap();
        assert!(all.apply_discovered_ports(&[a]));
        assert_eq!(all.run.ports, vec![PortSpec::Pci(a)]);
        let mut list = parse("FP_PORTS=ring\\ ring");
        assert!(!list.apply_discovered_ports(&[a]));
        assert_eq!(bad_value("FP_PORTS='ring bogus'"), (Some(1), "FP_PORTS"));
    }

    #[test]
    fn core_port_mapping_makes_the_workers() {
        let f = parse("FP_PORTS='ring ring null'\nCORE_PORT_MAPPING=c2=0:1/c4=2");
        let map = f.run.core_port_mapping.clone().unwrap();
        assert_eq!(map.to_string(), "c2=0:1/c4=2");
        assert_eq!(
            f.run.cores,
            CoreChoice::List(parse_cpu_list("2,4").unwrap())
        );
        assert_eq!(f.origins[&Setting::CorePortMapping].line, Some(2));
        f.run.validate().unwrap();
        // A list FP_MASK bounds the mapping; its other CPUs get a note.
        let f = parse("FP_MASK=1-3\nCORE_PORT_MAPPING=c1=0/c2=1");
        assert_eq!(
            f.run.cores,
            CoreChoice::List(parse_cpu_list("1-2").unwrap())
        );
        assert_eq!(
            f.notes,
            ["FP_MASK CPU(s) 3 poll no port in CORE_PORT_MAPPING: no worker runs there"]
        );
        assert_eq!(
            message("FP_MASK=1\nCORE_PORT_MAPPING=c2=0"),
            "line 2: CORE_PORT_MAPPING=\"c2=0\": CPU 2 is not in FP_MASK (1); allowed: \
             c<cpu>=<port>[:<port>...] entries joined by '/', such as c1=0/c2=1:2, each CPU once"
        );
        for text in [
            "CORE_PORT_MAPPING=c2=0/c2=1",
            "CORE_PORT_MAPPING=2=0",
            "CORE_PORT_MAPPING=c2=",
        ] {
            assert_eq!(bad_value(text), (Some(1), "CORE_PORT_MAPPING"), "{text}");
        }
        // A port that does not exist is refused by the validation, which
        // the origin lets the front end put on the line.
        let f = parse("FP_PORTS='ring ring'\nCORE_PORT_MAPPING=c1=2");
        let e = f.run.validate().unwrap_err();
        assert_eq!(e.setting(), Setting::CorePortMapping);
        assert_eq!(
            e.to_string(),
            "CPU 1 is mapped to port 2, but there are 2 ports (0 to 1)"
        );
    }

    #[test]
    fn numbers_and_their_ranges() {
        assert_eq!(parse("FP_MEMORY=256").run.memory_cap_mib, Some(256));
        assert_eq!(parse("FP_MEMORY=auto").run.memory_cap_mib, None);
        assert_eq!(bad_value("FP_MEMORY=0"), (Some(1), "FP_MEMORY"));
        assert_eq!(parse("NB_MBUF=16777215").run.nb_mbuf, Some(MAX_NB_MBUF));
        assert_eq!(parse("NB_MBUF=").run.nb_mbuf, None);
        assert_eq!(bad_value("NB_MBUF=16777216"), (Some(1), "NB_MBUF"));
        let f = parse("NB_RXD=4096\nNB_TXD=1000");
        assert_eq!(
            (f.run.rx_descriptors, f.run.tx_descriptors),
            (Some(4096), Some(1000))
        );
        assert_eq!(bad_value("NB_RXD=100"), (Some(1), "NB_RXD"));
        assert_eq!(bad_value("NB_TXD=8192"), (Some(1), "NB_TXD"));
        assert_eq!(parse("EXC_LCOREID=3").exception_cpu, Some(CpuId(3)));
        assert_eq!(bad_value("EXC_LCOREID=65536"), (Some(1), "EXC_LCOREID"));
        assert_eq!(
            message("NB_RXD=100"),
            "line 1: NB_RXD=\"100\": no VF driver takes 100 RX descriptors; allowed: ixgbevf: \
             a multiple of 8 from 64 to 4096; igbvf: a multiple of 8 from 80 to 4096; iavf: a \
             multiple of 32 from 64 to 4096"
        );
    }

    #[test]
    fn dpvi_mask_gives_the_exception_cpu() {
        let f = parse("DPVI_MASK=0x4");
        assert_eq!(f.exception_cpu, Some(CpuId(2)));
        assert!(f.notes.is_empty());
        let f = parse("DPVI_MASK=2-3");
        assert_eq!(f.exception_cpu, Some(CpuId(2)));
        assert_eq!(
            f.notes,
            ["DPVI_MASK=2-3: one exception thread runs, on CPU 2; the other CPUs are not used"]
        );
        let f = parse("EXC_LCOREID=5\nDPVI_MASK=0");
        assert_eq!(f.exception_cpu, Some(CpuId(5)));
        assert_eq!(f.exception_origin.unwrap().var, "EXC_LCOREID");
        assert_eq!(bad_value("DPVI_MASK=0x0"), (Some(1), "DPVI_MASK"));
    }

    #[test]
    fn fp_options_give_the_table_limits() {
        let f = parse("FP_OPTIONS='--max-route=100 --max-vr=512 --max-neigh=20'");
        assert_eq!(
            f.table_limits,
            TableLimits {
                max_routes: Some(100),
                max_neighbours: Some(20)
            }
        );
        assert_eq!(f.notes, ["FP_OPTIONS --max-vr=512 has no effect here"]);
        assert_eq!(
            bad_value("\nFP_OPTIONS=--max-route=0"),
            (Some(2), "FP_OPTIONS")
        );
    }

    #[test]
    fn unknown_variables_warn_and_recognised_ones_are_listed() {
        let f = parse("FP_MAKS=1\nFP_OFFLOAD=off\nFP_MAKS=2\n");
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
                var: "FP_OFFLOAD",
                value: "off".to_string()
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
        fn no_input_panics(text in "((FP_MASK|FP_PORTS|CORE_PORT_MAPPING|NB_MBUF|NB_RXD|EXC_LCOREID|DPVI_MASK|FP_MEMORY|X)=[ -~]{0,20}\\n){0,6}") {
            if let Ok(f) = FastPathEnv::parse(&text, &BTreeMap::new()) {
                let _ = f.run.validate();
            }
        }

        #[test]
        fn no_arbitrary_text_panics(text in "[ -~\\n]{0,200}") {
            let _ = FastPathEnv::parse(&text, &BTreeMap::new());
        }
    }
}
