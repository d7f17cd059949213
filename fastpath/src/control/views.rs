//! What the control socket answers: plain serde structures, built on the
//! daemon's side from the snapshots the live line and the final summary
//! already use ([`Snapshot`], [`CoreSnapshot`], [`RouterStats`], the
//! router's [`TablesView`]), and read back by the client.
//!
//! Counters are exact integers; names of reasons and counters are those
//! of the live line and `run --json`.

use crate::counters::{CoreSnapshot, DropReason, PuntReason};
use crate::forwarder::Snapshot;
use crate::l3::NextHop;
use crate::port_drops::port_drops;
use crate::router::{RouterStats, TablesView};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// What `show cores` and the metrics say about a polling core's load.
pub const POLLING_NOTE: &str = "a polling core always shows 100 % in top; busy % here is the \
     share of TSC cycles spent in loops that moved packets (as 6WIND's fp-cpu-usage)";

/// Answer to `ports`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortsView {
    /// Seconds since the forwarder started, at this reading.
    pub elapsed_secs: f64,
    /// Every port, in port order.
    pub ports: Vec<PortView>,
}

/// One port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortView {
    /// Port id.
    pub id: u16,
    /// Name.
    pub name: String,
    /// Driver kind ("null", "ring", "af_packet", "igbvf", ...).
    pub kind: String,
    /// Station address.
    pub mac: String,
    /// Link.
    pub link: LinkView,
    /// RX queues in use (one per worker).
    pub rx_queues: usize,
    /// TX queues in use (one per worker).
    pub tx_queues: usize,
    /// DPDK's basic counters (rte_eth_stats names).
    pub stats: BTreeMap<String, u64>,
    /// Every named counter of the port (its xstats).
    pub xstats: BTreeMap<String, u64>,
    /// Every drop counter by reason, zeros included.
    pub drops: BTreeMap<String, u64>,
}

/// A link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkView {
    /// Up or down.
    pub up: bool,
    /// Speed in Mbit/s, 0 when unknown.
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

/// Answer to `cores`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoresView {
    /// Seconds since the forwarder started, at the end of the interval.
    pub elapsed_secs: f64,
    /// Length of the interval the loads are measured over (0 before the
    /// first interval ended: then they are since start).
    pub interval_secs: f64,
    /// [`POLLING_NOTE`].
    pub note: String,
    /// Every worker core.
    pub cores: Vec<CoreView>,
}

/// One worker core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoreView {
    /// Its CPU.
    pub cpu: u32,
    /// Busy share over the interval, in percent.
    pub busy_percent: f64,
    /// Busy TSC cycles per packet received over the interval (what
    /// fp-cpu-usage calls "average cycles/packets received from NIC"; the
    /// live line's figure is per packet sent); null when none came.
    pub cycles_per_packet: Option<f64>,
    /// Packets received per second over the interval.
    pub rx_pps: f64,
    /// Packets sent per second over the interval.
    pub tx_pps: f64,
    /// Totals since start.
    pub total: CoreTotals,
}

/// A core's counters since start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoreTotals {
    /// Packets received.
    pub rx: u64,
    /// Packets sent.
    pub tx: u64,
    /// TSC cycles in loops that moved packets.
    pub busy_cycles: u64,
    /// TSC cycles in loops that found nothing.
    pub idle_cycles: u64,
    /// Loop iterations.
    pub loops: u64,
    /// Drops by reason, every reason listed.
    pub drops: BTreeMap<String, u64>,
    /// Punts to the kernel by reason, every reason listed.
    pub punts: BTreeMap<String, u64>,
}

/// Answer to `exception` (l3 mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExceptionView {
    /// The exception thread's CPU (null: unpinned).
    pub exception_cpu: Option<u32>,
    /// Per port.
    pub interfaces: Vec<ExceptionIfaceView>,
    /// Punted for a port with no exception interface (dropped).
    pub unknown_port: u64,
    /// What the workers punted, by reason, summed over cores.
    pub punts: BTreeMap<String, u64>,
}

/// One port's exception interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExceptionIfaceView {
    /// Port index.
    pub port: usize,
    /// Kernel interface name.
    pub ifname: String,
    /// Backend (`tap` or `vhost-net`).
    pub backend: String,
    /// The exception thread's counters for it (punted, rate_limited,
    /// to_kernel, tap_full, from_kernel, injected, inject_full).
    pub counters: BTreeMap<String, u64>,
    /// Frames the kernel dropped because we read too slowly, when known.
    pub kernel_dropped: Option<u64>,
}

/// Answer to `routes` (l3 mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutesView {
    /// Exception interface names, by port index.
    pub interfaces: Vec<String>,
    /// Every route the workers forward by, IPv4 then IPv6, by prefix.
    pub routes: Vec<RouteView>,
}

/// One route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteView {
    /// Destination, `a.b.c.d/len` or `x::/len`.
    pub prefix: String,
    /// Where it sends packets.
    pub next_hop: NextHopView,
}

/// A next hop, as the workers use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NextHopView {
    /// Out of a port to a known MAC.
    Resolved {
        /// Port index.
        port: u16,
        /// Destination MAC.
        mac: String,
    },
    /// Out of a port, link address not known yet (to the kernel).
    Unresolved {
        /// Port index.
        port: u16,
        /// The gateway (null: connected, the destination itself).
        via: Option<IpAddr>,
    },
    /// One of our addresses: to the kernel.
    Local,
    /// Discarded.
    Blackhole,
    /// Refused with an ICMP error from the kernel.
    Unreachable,
    /// Equal-cost multipath.
    Multipath {
        /// Its members.
        members: Vec<NextHopView>,
    },
    /// An id the tables do not hold (a bug: shown, not hidden).
    Missing,
}

/// Answer to `neighbours` (l3 mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeighboursView {
    /// Exception interface names, by port index.
    pub interfaces: Vec<String>,
    /// Every neighbour, by address.
    pub neighbours: Vec<NeighbourView>,
}

/// One neighbour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighbourView {
    /// Its address.
    pub ip: IpAddr,
    /// Port index.
    pub port: u16,
    /// Its link address.
    pub mac: String,
}

fn link(l: &drivers::port::LinkState) -> LinkView {
    LinkView {
        up: l.up,
        speed_mbps: l.speed_mbps,
        full_duplex: l.full_duplex,
    }
}

fn owned(counts: impl IntoIterator<Item = (&'static str, u64)>) -> BTreeMap<String, u64> {
    counts.into_iter().map(|(n, v)| (n.to_owned(), v)).collect()
}

fn drop_reasons(c: &CoreSnapshot) -> BTreeMap<String, u64> {
    owned(DropReason::ALL.iter().map(|r| (r.name(), c.drops_for(*r))))
}

fn punt_reasons(c: &CoreSnapshot) -> BTreeMap<String, u64> {
    owned(PuntReason::ALL.iter().map(|r| (r.name(), c.punts_for(*r))))
}

impl PortsView {
    /// The ports of `s`, each with `queues` queue pairs (one per worker).
    pub fn new(s: &Snapshot, queues: usize) -> Self {
        let ports = s
            .ports
            .iter()
            .enumerate()
            .map(|(p, (info, st, l))| {
                let xstats = s.xstats.get(p).map_or(&[][..], Vec::as_slice);
                PortView {
                    id: info.id.0,
                    name: info.name.clone(),
                    kind: info.kind.to_owned(),
                    mac: info.mac.to_string(),
                    link: link(l),
                    rx_queues: queues,
                    tx_queues: queues,
                    stats: owned([
                        ("ipackets", st.ipackets),
                        ("opackets", st.opackets),
                        ("ibytes", st.ibytes),
                        ("obytes", st.obytes),
                        ("rx_nombuf", st.rx_nombuf),
                        ("ierrors", st.ierrors),
                        ("oerrors", st.oerrors),
                    ]),
                    xstats: owned(xstats.iter().copied()),
                    drops: owned(port_drops(st, xstats)),
                }
            })
            .collect();
        PortsView {
            elapsed_secs: s.elapsed.as_secs_f64(),
            ports,
        }
    }
}

impl CoresView {
    /// The cores' loads between `prev` and `now` (two readings of the
    /// same forwarder), with their totals at `now`.
    pub fn new(prev: &Snapshot, now: &Snapshot) -> Self {
        let secs = now.elapsed.saturating_sub(prev.elapsed).as_secs_f64();
        let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let cores = now
            .cores
            .iter()
            .map(|(cpu, c)| {
                let before = prev
                    .cores
                    .iter()
                    .find(|(p, _)| p == cpu)
                    .map(|(_, b)| *b)
                    .unwrap_or_default();
                let d = c.since(&before);
                CoreView {
                    cpu: cpu.0,
                    busy_percent: d.busy_ratio() * 100.0,
                    cycles_per_packet: (d.rx > 0).then(|| d.busy_cycles as f64 / d.rx as f64),
                    rx_pps: per_sec(d.rx),
                    tx_pps: per_sec(d.tx),
                    total: CoreTotals {
                        rx: c.rx,
                        tx: c.tx,
                        busy_cycles: c.busy_cycles,
                        idle_cycles: c.idle_cycles,
                        loops: c.loops,
                        drops: drop_reasons(c),
                        punts: punt_reasons(c),
                    },
                }
            })
            .collect();
        CoresView {
            elapsed_secs: now.elapsed.as_secs_f64(),
            interval_secs: secs,
            note: POLLING_NOTE.to_owned(),
            cores,
        }
    }
}

impl ExceptionView {
    /// The router's exception counters, with the punts of the cores of
    /// `s` by reason.
    pub fn new(r: &RouterStats, s: &Snapshot) -> Self {
        let mut punts = CoreSnapshot::default();
        for (_, c) in &s.cores {
            for (t, v) in punts.punts.iter_mut().zip(c.punts) {
                *t += v;
            }
        }
        ExceptionView {
            exception_cpu: r.exception_cpu,
            interfaces: r
                .interfaces
                .iter()
                .map(|i| ExceptionIfaceView {
                    port: i.port,
                    ifname: i.ifname.clone(),
                    backend: i.backend.to_owned(),
                    counters: i
                        .counters
                        .named()
                        .into_iter()
                        .map(|(n, v)| (n.trim_start_matches("exception_").to_owned(), v))
                        .collect(),
                    kernel_dropped: i.kernel_dropped,
                })
                .collect(),
            unknown_port: r.unknown_port,
            punts: punt_reasons(&punts),
        }
    }
}

fn next_hop(t: &TablesView, nh: Option<&NextHop>) -> NextHopView {
    match nh {
        None => NextHopView::Missing,
        Some(NextHop::Resolved { port, mac }) => NextHopView::Resolved {
            port: port.0,
            mac: mac.to_string(),
        },
        Some(NextHop::Unresolved { port, via }) => NextHopView::Unresolved {
            port: port.0,
            via: *via,
        },
        Some(NextHop::Local) => NextHopView::Local,
        Some(NextHop::Blackhole) => NextHopView::Blackhole,
        Some(NextHop::Unreachable) => NextHopView::Unreachable,
        Some(NextHop::Multipath(members)) => NextHopView::Multipath {
            members: members
                .iter()
                // Members are never groups (the model never builds one),
                // so this recursion is one level deep.
                .map(|id| next_hop(t, t.next_hop(*id)))
                .collect(),
        },
    }
}

impl RoutesView {
    /// The routes of the router's tables.
    pub fn new(t: &TablesView, interfaces: Vec<String>) -> Self {
        RoutesView {
            interfaces,
            routes: t
                .routes
                .iter()
                .map(|(prefix, id)| RouteView {
                    prefix: prefix.to_string(),
                    next_hop: next_hop(t, t.next_hop(*id)),
                })
                .collect(),
        }
    }
}

impl NeighboursView {
    /// The neighbours of the router's model.
    pub fn new(t: &TablesView, interfaces: Vec<String>) -> Self {
        NeighboursView {
            interfaces,
            neighbours: t
                .neighbours
                .iter()
                .map(|(ip, port, mac)| NeighbourView {
                    ip: *ip,
                    port: port.0,
                    mac: mac.to_string(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drivers::cpu::CpuId;
    use std::time::Duration;

    fn snap(secs: u64, rx: u64, tx: u64, busy: u64, idle: u64) -> Snapshot {
        let mut c = CoreSnapshot {
            rx,
            tx,
            busy_cycles: busy,
            idle_cycles: idle,
            ..CoreSnapshot::default()
        };
        c.drops[DropReason::TxFull as usize] = rx - tx;
        Snapshot {
            elapsed: Duration::from_secs(secs),
            cores: vec![(CpuId(3), c)],
            ports: Vec::new(),
            xstats: Vec::new(),
            pool_available: 0,
            pool_count: 0,
            violations: 0,
            switch: Vec::new(),
        }
    }

    /// The loads are over the interval, the totals since start; cycles
    /// per packet are per packet received (fp-cpu-usage's figure).
    #[test]
    fn core_loads_are_over_the_interval() {
        let v = CoresView::new(
            &snap(10, 1_000, 900, 4_000, 6_000),
            &snap(12, 3_000, 2_500, 10_000, 8_000),
        );
        assert_eq!(v.interval_secs, 2.0);
        let c = &v.cores[0];
        assert_eq!(c.cpu, 3);
        // 6000 busy of 8000 cycles in the interval.
        assert_eq!(c.busy_percent, 75.0);
        assert_eq!(c.cycles_per_packet, Some(3.0));
        assert_eq!((c.rx_pps, c.tx_pps), (1_000.0, 800.0));
        assert_eq!((c.total.rx, c.total.drops["tx_full"]), (3_000, 500));
        assert!(v.note.contains("top"));
        // An idle interval: no packet, no figure.
        let idle = CoresView::new(
            &snap(12, 3_000, 2_500, 10_000, 8_000),
            &snap(13, 3_000, 2_500, 10_000, 9_000),
        );
        assert_eq!(idle.cores[0].cycles_per_packet, None);
        assert_eq!(idle.cores[0].busy_percent, 0.0);
    }
}
