//! The router's own options (`fastpath run --mode l3`): the exception
//! interfaces' names and backend, the exception thread's CPU, and the
//! per-port rate limit of exception traffic.

use super::pod_addresses::PodAddressing;
use crate::exception::{RateLimit, RateLimitError};
use config::k8s::DEFAULT_ANNOTATIONS_PATH;
use config::pod_address::PodPrefix;
use config::table_limits::TableLimits;
use drivers::cpu::CpuId;
use drivers::exception::{is_valid_name, BackendChoice};
use std::path::PathBuf;

/// Exception packets per second admitted to the kernel per port when
/// `--exception-rate` is not given: ample for ARP, ND, routing protocols
/// and pings, and a small fraction of what one exception thread moves, so
/// that a flood on one port cannot starve the others.
pub const DEFAULT_EXCEPTION_PPS: u64 = 10_000;

/// The burst admitted at once after a quiet spell, by default: a full
/// punt ring's worth of a worker's burst sizes (a sudden ARP storm after a
/// link comes up passes whole).
pub const DEFAULT_EXCEPTION_BURST: u32 = 512;

/// What `--mode l3` runs with, besides the run configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterOptions {
    /// Exception interface names, in port order; ports beyond the list get
    /// `fp<N>` ([`RouterOptions::ifname`]).
    pub ifnames: Vec<String>,
    /// The exception interfaces' backend.
    pub backend: BackendChoice,
    /// The exception thread's CPU (`None`: one the workers do not use).
    pub exception_cpu: Option<CpuId>,
    /// Per-port limit of the packets punted to the kernel.
    pub rate: RateLimit,
    /// Most routes and neighbours the router installs.
    pub limits: TableLimits,
    /// The addresses put on the exception interfaces: the pod's
    /// network-status annotation, and `--pod-address`.
    pub pod: PodAddressing,
}

/// Where `fastpath run` reads the pod's annotations by default
/// (`/etc/podnetinfo/annotations`, the Downward API volume's usual place,
/// anchors.md 3.2); nothing happens when it does not exist.
pub fn default_annotations() -> PathBuf {
    PathBuf::from("/").join(DEFAULT_ANNOTATIONS_PATH)
}

impl Default for RouterOptions {
    fn default() -> Self {
        RouterOptions {
            ifnames: Vec::new(),
            backend: BackendChoice::Auto,
            exception_cpu: None,
            // Both figures are non-zero constants.
            rate: RateLimit::new(DEFAULT_EXCEPTION_PPS, DEFAULT_EXCEPTION_BURST)
                .unwrap_or_else(|_| unreachable!("non-zero defaults")),
            limits: TableLimits::default(),
            pod: PodAddressing {
                annotations: Some(default_annotations()),
                prefix: PodPrefix::default(),
                explicit: Vec::new(),
            },
        }
    }
}

/// Router options that do not fit the ports (each message names its
/// option).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouterOptionsError {
    /// More names than ports.
    #[error("--exception-ifnames: {given} exception interface names for {ports} ports (at most one per port)")]
    TooManyNames {
        /// Names given.
        given: usize,
        /// Ports.
        ports: usize,
    },
    /// A name the kernel would refuse.
    #[error("--exception-ifnames: {0:?} is not a valid interface name (1 to 15 bytes; no '/', ':', NUL or space)")]
    BadName(String),
    /// A name given to two ports (given, or a default `fp<N>` met again).
    #[error("--exception-ifnames: interface name {0:?} given to two ports")]
    Duplicate(String),
    /// `--pod-address` for a port the run does not have.
    #[error("--pod-address {port}={address}: there is no port {port} ({ports} ports, from 0)")]
    PodAddressPort {
        /// The port asked.
        port: usize,
        /// The address.
        address: config::pod_address::PrefixedAddress,
        /// The run's ports.
        ports: usize,
    },
}

impl RouterOptions {
    /// The exception interface name of port `port`.
    pub fn ifname(&self, port: usize) -> String {
        self.ifnames
            .get(port)
            .cloned()
            .unwrap_or_else(|| format!("fp{port}"))
    }

    /// Every port's exception interface name, checked: valid, distinct,
    /// no more names than ports.
    pub fn ifnames_for(&self, ports: usize) -> Result<Vec<String>, RouterOptionsError> {
        if self.ifnames.len() > ports {
            return Err(RouterOptionsError::TooManyNames {
                given: self.ifnames.len(),
                ports,
            });
        }
        if let Some(a) = self.pod.explicit.iter().find(|a| a.port >= ports) {
            return Err(RouterOptionsError::PodAddressPort {
                port: a.port,
                address: a.address,
                ports,
            });
        }
        let names: Vec<String> = (0..ports).map(|p| self.ifname(p)).collect();
        for (i, n) in names.iter().enumerate() {
            if !is_valid_name(n) {
                return Err(RouterOptionsError::BadName(n.clone()));
            }
            if names[..i].contains(n) {
                return Err(RouterOptionsError::Duplicate(n.clone()));
            }
        }
        Ok(names)
    }
}

/// `--exception`: `auto`, `tap` or `vhost-net`.
pub fn parse_backend(s: &str) -> Result<BackendChoice, String> {
    match s {
        "auto" => Ok(BackendChoice::Auto),
        "tap" => Ok(BackendChoice::Tap),
        "vhost-net" | "vhost" => Ok(BackendChoice::VhostNet),
        _ => Err(format!(
            "{s:?} is not an exception backend (auto, tap or vhost-net)"
        )),
    }
}

/// `--exception-rate PPS[,BURST]`: packets per second, and the burst
/// (default: the rate itself up to [`DEFAULT_EXCEPTION_BURST`], so a low
/// rate is not exceeded by its default burst).
pub fn parse_rate(s: &str) -> Result<RateLimit, String> {
    let (pps, burst) = match s.split_once(',') {
        Some((p, b)) => (p, Some(b)),
        None => (s, None),
    };
    let pps: u64 = pps
        .trim()
        .parse()
        .map_err(|_| format!("{pps:?} is not a number of packets per second"))?;
    let burst: u32 = match burst {
        Some(b) => b
            .trim()
            .parse()
            .map_err(|_| format!("{b:?} is not a burst size (a number of packets)"))?,
        None => u32::try_from(pps)
            .unwrap_or(u32::MAX)
            .min(DEFAULT_EXCEPTION_BURST),
    };
    RateLimit::new(pps, burst).map_err(|e: RateLimitError| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_default_to_fp_n_and_are_checked() {
        let o = RouterOptions {
            ifnames: vec!["up0".into()],
            ..RouterOptions::default()
        };
        assert_eq!(o.ifnames_for(3).unwrap(), ["up0", "fp1", "fp2"]);
        assert_eq!(
            o.ifnames_for(0).unwrap_err(),
            RouterOptionsError::TooManyNames { given: 1, ports: 0 }
        );
        let o = RouterOptions {
            ifnames: vec!["fp1".into()],
            ..RouterOptions::default()
        };
        assert_eq!(
            o.ifnames_for(2).unwrap_err(),
            RouterOptionsError::Duplicate("fp1".into())
        );
        let o = RouterOptions {
            ifnames: vec!["a/b".into()],
            ..RouterOptions::default()
        };
        assert_eq!(
            o.ifnames_for(1).unwrap_err(),
            RouterOptionsError::BadName("a/b".into())
        );
        let long = "x".repeat(16);
        let o = RouterOptions {
            ifnames: vec![long.clone()],
            ..RouterOptions::default()
        };
        assert_eq!(
            o.ifnames_for(1).unwrap_err(),
            RouterOptionsError::BadName(long)
        );
        let mut o = RouterOptions::default();
        o.pod.explicit.push("2=10.0.0.1/24".parse().unwrap());
        assert!(o.ifnames_for(3).is_ok());
        assert_eq!(
            o.ifnames_for(2).unwrap_err().to_string(),
            "--pod-address 2=10.0.0.1/24: there is no port 2 (2 ports, from 0)"
        );
    }

    #[test]
    fn rates_and_backends_parse() {
        let r = parse_rate("2000,64").unwrap();
        assert_eq!((r.pps(), r.burst()), (2000, 64));
        let r = parse_rate("100").unwrap();
        assert_eq!((r.pps(), r.burst()), (100, 100));
        let r = parse_rate("1000000").unwrap();
        assert_eq!(r.burst(), DEFAULT_EXCEPTION_BURST);
        assert!(parse_rate("0").unwrap_err().contains("0 packets/s"));
        assert!(parse_rate("10,0").unwrap_err().contains("burst of 0"));
        assert!(parse_rate("ten").is_err());
        assert!(parse_rate("10,").is_err());
        assert_eq!(parse_backend("tap"), Ok(BackendChoice::Tap));
        assert_eq!(parse_backend("vhost-net"), Ok(BackendChoice::VhostNet));
        assert_eq!(parse_backend("auto"), Ok(BackendChoice::Auto));
        assert!(parse_backend("vde").is_err());
        let d = RouterOptions::default().rate;
        assert_eq!(
            (d.pps(), d.burst()),
            (DEFAULT_EXCEPTION_PPS, DEFAULT_EXCEPTION_BURST)
        );
    }
}
