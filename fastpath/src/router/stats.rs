//! The router's statistics: per port its exception interface's counters
//! and backend; the kernel mirror's counters; the tables' size and
//! publications. Text for the live lines and the final summary, JSON for
//! `--json`.

use super::control::ControlStats;
use crate::exception::ExceptionPortStats;
use crate::mirror::{IgnoreReason, ResyncReason};
use serde_json::json;
use std::fmt::Write as _;
use std::time::Duration;

/// One port's exception interface.
#[derive(Debug, Clone)]
pub struct ExceptionIfaceStats {
    /// Port index.
    pub port: usize,
    /// Interface name.
    pub ifname: String,
    /// Backend in use (`tap` or `vhost-net`).
    pub backend: &'static str,
    /// What the exception thread did with its traffic.
    pub counters: ExceptionPortStats,
    /// Frames the kernel dropped because we read too slowly (the TAP's
    /// `tx_dropped`), when sysfs shows it.
    pub kernel_dropped: Option<u64>,
}

/// Everything the router counts.
#[derive(Debug, Clone)]
pub struct RouterStats {
    /// The exception thread's CPU (`None`: unpinned).
    pub exception_cpu: Option<u32>,
    /// Per port.
    pub interfaces: Vec<ExceptionIfaceStats>,
    /// Punted for a port with no exception interface, dropped.
    pub unknown_port: u64,
    /// The control thread's figures: mirror, tables, publications.
    pub control: ControlStats,
    /// Per port, the exception interface's multicast groups carried to
    /// the port's receive filter.
    pub multicast: Vec<super::multicast_sync::PortMulticastStats>,
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

impl RouterStats {
    /// The exception counters as one line's part, since `prev`:
    /// "fp0(tap) punted 3 to_kernel 3 from_kernel 2 injected 2".
    pub fn exception_since(&self, prev: &RouterStats) -> String {
        let mut out = String::new();
        for i in &self.interfaces {
            let before = prev
                .interfaces
                .iter()
                .find(|p| p.port == i.port)
                .map(|p| p.counters)
                .unwrap_or_default();
            let _ = write!(out, " {}({})", i.ifname, i.backend);
            for ((name, v), (_, b)) in i.counters.named().into_iter().zip(before.named()) {
                let d = v.saturating_sub(b);
                if d > 0 {
                    let _ = write!(out, " {} {d}", name.trim_start_matches("exception_"));
                }
            }
        }
        out.trim_start().to_owned()
    }

    /// The tables and mirror, for a live line: "routes 4/2 nh 3 mem 1.2 MiB
    /// pubs 7 grace 12us (max 80us) events 20".
    pub fn tables_line(&self) -> String {
        let c = &self.control;
        format!(
            "routes v4 {} v6 {} next hops {} memory {:.1} MiB publications {} grace {:.0}us (max {:.0}us) event-to-workers {:.0}us (max {:.0}us) mirror events {} ignored {} resyncs {}",
            c.routes4,
            c.routes6,
            c.next_hops,
            c.memory_bytes as f64 / (1024.0 * 1024.0),
            c.publish.publications,
            micros(c.publish.last_grace),
            micros(c.publish.max_grace),
            micros(c.last_latency),
            micros(c.max_latency),
            c.mirror.events,
            ignored(self),
            resyncs(self),
        )
    }

    /// The final summary's router part, several lines.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let cpu = self
            .exception_cpu
            .map_or_else(|| "unpinned".to_owned(), |c| format!("CPU {c}"));
        let _ = writeln!(
            s,
            "exception thread: {cpu}; punted for no interface {}",
            self.unknown_port
        );
        for i in &self.interfaces {
            let _ = write!(
                s,
                "exception {} (port {}, {}):",
                i.ifname, i.port, i.backend
            );
            for (name, v) in i.counters.named() {
                let _ = write!(s, " {} {v}", name.trim_start_matches("exception_"));
            }
            if let Some(d) = i.kernel_dropped {
                let _ = write!(s, " kernel_dropped {d}");
            }
            s.push('\n');
        }
        let c = &self.control;
        let _ = writeln!(s, "tables: {}", self.tables_line());
        let _ = writeln!(
            s,
            "router model: updates {} refused {} not ours {} local routes {} failed ops {} batches retried {} stalls {}",
            c.updates, c.refused, c.events_not_ours, c.local_routes, c.failed_ops, c.not_applied, c.publish.stalls
        );
        let _ = write!(s, "mirror: {}", c.mirror);
        s
    }

    /// The JSON object of `--json`'s `router` field.
    pub fn json(&self) -> serde_json::Value {
        let c = &self.control;
        let interfaces: Vec<serde_json::Value> = self
            .interfaces
            .iter()
            .map(|i| {
                let counters: serde_json::Map<String, serde_json::Value> = i
                    .counters
                    .named()
                    .into_iter()
                    .map(|(n, v)| (n.trim_start_matches("exception_").to_owned(), v.into()))
                    .collect();
                json!({
                    "port": i.port,
                    "ifname": i.ifname,
                    "backend": i.backend,
                    "counters": counters,
                    "kernel_dropped": i.kernel_dropped,
                })
            })
            .collect();
        json!({
            "exception_cpu": self.exception_cpu,
            "exception": interfaces,
            "unknown_port": self.unknown_port,
            "multicast": self
                .multicast
                .iter()
                .enumerate()
                .map(|(p, m)| json!({
                    "port": p,
                    "ifname": m.ifname,
                    "groups": m.groups.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "changes": m.changes,
                    "errors": m.errors,
                    "not_exact": m.not_exact,
                }))
                .collect::<Vec<_>>(),
            "mirror": c.mirror.json(),
            "model": {
                "updates": c.updates,
                "refused": c.refused,
                "events_not_ours": c.events_not_ours,
                "local_routes": c.local_routes,
                "mirror_errors": c.mirror_errors,
            },
            "tables": {
                "routes_v4": c.routes4,
                "routes_v6": c.routes6,
                "next_hops": c.next_hops,
                "memory_bytes": c.memory_bytes,
                "failed_ops": c.failed_ops,
                "publications": c.publish.publications,
                "ops": c.publish.ops,
                "grace_periods": c.publish.grace_periods,
                "last_grace_us": micros(c.publish.last_grace),
                "max_grace_us": micros(c.publish.max_grace),
                "stalls": c.publish.stalls,
                "batches_retried": c.not_applied,
                "last_event_to_workers_us": micros(c.last_latency),
                "max_event_to_workers_us": micros(c.max_latency),
            },
        })
    }
}

fn resyncs(s: &RouterStats) -> u64 {
    ResyncReason::ALL
        .into_iter()
        .map(|r| s.control.mirror.resyncs(r))
        .sum()
}

/// Messages the mirror ignored, all reasons.
fn ignored(s: &RouterStats) -> u64 {
    IgnoreReason::ALL
        .into_iter()
        .map(|r| s.control.mirror.ignored(r))
        .sum()
}
