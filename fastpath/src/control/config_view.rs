//! The effective configuration (`fastpath show config`): every setting of
//! the validated [`ValidRunConfig`] with its defaults resolved, the
//! router's and the control plane's options, and where each value came
//! from (the command line, a fast-path.env file, or the default).

use crate::router::RouterOptions;
use config::core_choice::CoreChoice;
use config::duration::format_duration;
use config::fwd_mode::FwdMode;
use config::run_config::{RunConfig, ValidRunConfig};
use config::setting::Setting;
use drivers::memory::{HugepageSize, MemoryBacking};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Source {
    /// A command-line option.
    CommandLine {
        /// The option, as spelled (`--ports`).
        option: String,
    },
    /// A fast-path.env file (`--env`, or the default one).
    EnvFile {
        /// The file.
        path: PathBuf,
        /// The line and variable (`12: FP_MASK="1-3"`), or that it came
        /// from the environment, when known.
        at: Option<String>,
    },
    /// The built-in default (or one derived from other settings).
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::CommandLine { option } => write!(f, "command line ({option})"),
            Source::EnvFile { path, at: None } => write!(f, "fast-path.env {}", path.display()),
            Source::EnvFile { path, at: Some(at) } => {
                write!(f, "fast-path.env {} ({at})", path.display())
            }
            Source::Default => f.write_str("default"),
        }
    }
}

/// One setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingView {
    /// Its name (the `fastpath run` option without dashes).
    pub name: String,
    /// Its effective value, as text.
    pub value: String,
    /// Where the value came from.
    pub source: Source,
}

/// Answer to `config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigView {
    /// The daemon's version (the crate's).
    pub daemon_version: String,
    /// Every setting, in the order of `fastpath run --help`.
    pub settings: Vec<SettingView>,
}

/// The name shown for a setting.
fn name(s: Setting) -> &'static str {
    match s {
        Setting::Ports => "ports",
        Setting::Cores => "cores",
        Setting::Mode => "mode",
        Setting::Burst => "burst",
        Setting::Duration => "duration",
        Setting::StatsPeriod => "stats_period",
        Setting::TxFirst => "tx_first",
        Setting::NbMbuf => "nb_mbuf",
        Setting::CacheSize => "cache_size",
        Setting::PacketSize => "packet_size",
        Setting::RingSize => "ring_size",
        Setting::EthPeer => "eth_peer",
        Setting::Memory => "memory",
        Setting::AfPacketBlockSize => "afpacket_block_size",
        Setting::AfPacketBlocks => "afpacket_blocks",
        Setting::AfPacketTxFrames => "afpacket_tx_frames",
        Setting::CorePortMapping => "core_port_mapping",
        Setting::RxDescriptors => "rxd",
        Setting::TxDescriptors => "txd",
        Setting::MemoryCap => "fp_memory",
    }
}

/// The value of `s` in `c` as given (defaults not resolved).
fn given_value(c: &RunConfig, s: Setting) -> String {
    match s {
        Setting::Ports => c
            .ports
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(","),
        Setting::Cores => match &c.cores {
            CoreChoice::Count(n) => format!("{n} (picked from the allowed CPUs)"),
            CoreChoice::List(set) => format!("CPUs {set}"),
        },
        Setting::Mode => c.mode.to_string(),
        Setting::Burst => c.burst.to_string(),
        Setting::Duration => c
            .duration
            .map_or_else(|| "until stopped".to_owned(), format_duration),
        Setting::StatsPeriod if c.stats_period.is_zero() => "0 (final summary only)".to_owned(),
        Setting::StatsPeriod => format_duration(c.stats_period),
        Setting::TxFirst => c
            .tx_first
            .map_or_else(|| "default".to_owned(), |n| n.to_string()),
        Setting::NbMbuf => c
            .nb_mbuf
            .map_or_else(|| "default".to_owned(), |n| n.to_string()),
        Setting::CacheSize => c.cache_size.to_string(),
        Setting::PacketSize => c.packet_size.to_string(),
        Setting::RingSize => c.ring_size.to_string(),
        Setting::EthPeer if c.eth_peers.is_empty() => "none".to_owned(),
        Setting::EthPeer => c
            .eth_peers
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        Setting::Memory => match &c.backing {
            MemoryBacking::Hugepages(HugepageSize::Auto) => "hugepages (size auto)".to_owned(),
            MemoryBacking::Hugepages(HugepageSize::Size2M) => "hugepages of 2 MiB".to_owned(),
            MemoryBacking::Hugepages(HugepageSize::Size1G) => "hugepages of 1 GiB".to_owned(),
            MemoryBacking::Hugetlbfs(dir) => format!("hugetlbfs {}", dir.display()),
            MemoryBacking::NoHuge => "ordinary pages (--no-huge)".to_owned(),
        },
        Setting::AfPacketBlockSize => c.afpacket.rx_block_size.to_string(),
        Setting::AfPacketBlocks => c.afpacket.rx_blocks.to_string(),
        Setting::AfPacketTxFrames => c.afpacket.tx_frames.to_string(),
        Setting::CorePortMapping => c
            .core_port_mapping
            .as_ref()
            .map_or_else(|| "none".to_owned(), |m| m.to_string()),
        Setting::RxDescriptors => c
            .rx_descriptors
            .map_or_else(|| "default".to_owned(), |n| n.to_string()),
        Setting::TxDescriptors => c
            .tx_descriptors
            .map_or_else(|| "default".to_owned(), |n| n.to_string()),
        Setting::MemoryCap => c
            .memory_cap_mib
            .map_or_else(|| "no cap".to_owned(), |n| format!("{n} MiB")),
    }
}

/// The effective value: as given, with the defaults that validation
/// resolved (tx-first bursts, pool size) filled in.
fn effective_value(c: &ValidRunConfig, s: Setting) -> String {
    match s {
        Setting::TxFirst => c.tx_first().to_string(),
        Setting::NbMbuf => c.nb_mbuf().to_string(),
        _ => given_value(c, s),
    }
}

/// The control plane's own options, shown with the rest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ControlSettings {
    /// The control socket (`None`: off).
    pub socket: Option<PathBuf>,
    /// The metrics address (`None`: off).
    pub metrics: Option<String>,
}

/// What a source is asked for: a setting of the run configuration, or
/// another option of `fastpath run` by its name without dashes
/// (`exception_cpu`, `control_socket`, `metrics`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// A [`Setting`].
    Setting(Setting),
    /// Another option.
    Option(&'static str),
}

impl ConfigView {
    /// The view of `cfg` (router options shown in l3 mode), `source`
    /// telling where each value came from.
    pub fn new(
        cfg: &ValidRunConfig,
        router: &RouterOptions,
        control: &ControlSettings,
        source: impl Fn(Item) -> Source,
    ) -> Self {
        let mut settings: Vec<SettingView> = Setting::ALL
            .into_iter()
            .map(|s| SettingView {
                name: name(s).to_owned(),
                value: effective_value(cfg, s),
                source: source(Item::Setting(s)),
            })
            .collect();
        let mut other = |name: &'static str, value: String| {
            settings.push(SettingView {
                name: name.to_owned(),
                value,
                source: source(Item::Option(name)),
            })
        };
        if cfg.mode == FwdMode::L3 {
            let ifnames = router.ifnames_for(cfg.ports.len()).unwrap_or_default();
            other("exception_ifnames", ifnames.join(","));
            other(
                "exception_cpu",
                router
                    .exception_cpu
                    .map_or_else(|| "auto".to_owned(), |c| c.to_string()),
            );
            other(
                "exception_rate",
                format!("{} pps, burst {}", router.rate.pps(), router.rate.burst()),
            );
        }
        other(
            "control_socket",
            control
                .socket
                .as_ref()
                .map_or_else(|| "none".to_owned(), |p| p.display().to_string()),
        );
        other(
            "metrics",
            control.metrics.clone().unwrap_or_else(|| "off".to_owned()),
        );
        ConfigView {
            daemon_version: env!("CARGO_PKG_VERSION").to_owned(),
            settings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::port_spec::PortSpec;

    #[test]
    fn every_setting_is_shown_with_defaults_resolved_and_its_source() {
        let cfg = RunConfig {
            ports: vec![PortSpec::Ring, PortSpec::Ring],
            backing: MemoryBacking::NoHuge,
            ..RunConfig::default()
        }
        .validate()
        .unwrap();
        let control = ControlSettings {
            socket: Some("/run/fastpath/fastpath.sock".into()),
            metrics: None,
        };
        let v = ConfigView::new(&cfg, &RouterOptions::default(), &control, |s| {
            if s == Item::Setting(Setting::Ports) {
                Source::CommandLine {
                    option: "--ports".into(),
                }
            } else {
                Source::Default
            }
        });
        let get = |n: &str| v.settings.iter().find(|s| s.name == n).unwrap();
        assert_eq!(get("ports").value, "ring,ring");
        assert_eq!(get("ports").source.to_string(), "command line (--ports)");
        assert_eq!(get("nb_mbuf").value, cfg.nb_mbuf().to_string());
        assert_eq!(get("tx_first").value, cfg.tx_first().to_string());
        assert_eq!(get("memory").value, "ordinary pages (--no-huge)");
        assert_eq!(get("control_socket").value, "/run/fastpath/fastpath.sock");
        assert_eq!(get("metrics").value, "off");
        // No router options outside l3 mode.
        assert!(v.settings.iter().all(|s| !s.name.starts_with("exception")));
        assert_eq!(v.settings.len(), Setting::ALL.len() + 2);
    }
}
