//! The final summary as one JSON document (`fastpath run --json`), for
//! scripts. Field names are stable; counters are exact integers.
//!
//! Written with serde_json from these plain structures, built from a
//! [`FinalReport`]; nothing is formatted by hand.

use crate::counters::{CoreSnapshot, DropReason, PuntReason};
use crate::forwarder::FinalReport;
use crate::port_drops::port_drops;
use crate::report::total_port_drops;
use crate::sim_ports::ModelViolation;
use crate::stop_signals::StopReason;
use serde::Serialize;
use std::collections::BTreeMap;

/// The whole document.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// False when a signal came before the workers started (then `ports`
    /// and `cores` are empty and `interrupted_during` names the step).
    pub started: bool,
    /// The start-up step a signal cancelled, when `started` is false.
    pub interrupted_during: Option<&'static str>,
    /// Why the run ended.
    pub exit_reason: StopReason,
    /// The process's exit status: 0, or 3 when buffers were lost, a
    /// worker panicked or a device model saw a rule broken.
    pub exit_status: u8,
    /// Seconds from start to the last counter reading.
    pub duration_secs: f64,
    /// Forwarding mode.
    pub mode: String,
    /// Burst size.
    pub burst: usize,
    /// Every port, in port order.
    pub ports: Vec<PortSummary>,
    /// Every worker core.
    pub cores: Vec<CoreSummary>,
    /// Sums over cores and ports.
    pub totals: Totals,
    /// The buffer audit.
    pub buffers: BufferAudit,
    /// CPUs whose worker panicked (their buffers were still returned).
    pub panicked_cpus: Vec<u32>,
    /// The named counters of the simulated ports' modelled PF switch
    /// (`uplink_packets`, `uplink_dropped`, `link_down_dropped`); empty
    /// without simulated ports.
    pub switch: BTreeMap<&'static str, u64>,
    /// Rules the device models of simulated ports saw the driver break
    /// (`rule`, `section`, `detail`); empty in a clean run.
    pub violations: Vec<ModelViolation>,
    /// L3 mode: the router's counters (exception interfaces with their
    /// backend, kernel mirror, tables); absent in other modes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub router: Option<serde_json::Value>,
    /// `fastpath demo`: the simulated wire's figures and accounting
    /// (`Companion::json`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wire: Option<serde_json::Value>,
}

/// One port.
#[derive(Debug, Serialize)]
pub struct PortSummary {
    /// Port id.
    pub id: u16,
    /// Name.
    pub name: String,
    /// Kind ("null", "ring", "igbvf", ...).
    pub kind: &'static str,
    /// Station address.
    pub mac: String,
    /// Link at the end.
    pub link: Link,
    /// DPDK's basic counters.
    pub stats: PortStatsJson,
    /// Every drop counter by name, zeros included (see
    /// [`port_drops`]).
    pub drops: BTreeMap<&'static str, u64>,
    /// Every named counter of the port (its xstats).
    pub xstats: BTreeMap<&'static str, u64>,
}

/// Link state.
#[derive(Debug, Serialize)]
pub struct Link {
    /// Up or down.
    pub up: bool,
    /// Speed, 0 when unknown.
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

/// [`drivers::port::PortStats`], named as in DPDK's rte_eth_stats.
#[derive(Debug, Serialize)]
pub struct PortStatsJson {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Receives that found no free buffer.
    pub rx_nombuf: u64,
    /// Received frames dropped as bad.
    pub ierrors: u64,
    /// Packets the port refused to send.
    pub oerrors: u64,
}

/// One worker core.
#[derive(Debug, Serialize)]
pub struct CoreSummary {
    /// Its CPU.
    pub cpu: u32,
    /// Packets received.
    pub rx: u64,
    /// Packets sent (forwarded, and the kernel's frames injected).
    pub tx: u64,
    /// Frames the kernel sent out through this worker (L3 mode).
    pub injected: u64,
    /// All drops.
    pub dropped: u64,
    /// Drops by reason, every reason listed.
    pub drops: BTreeMap<&'static str, u64>,
    /// All packets handed to the kernel.
    pub punted: u64,
    /// Punts by reason, every reason listed.
    pub punts: BTreeMap<&'static str, u64>,
    /// TSC cycles in loops that moved packets.
    pub busy_cycles: u64,
    /// TSC cycles in loops that found nothing.
    pub idle_cycles: u64,
    /// Loop iterations.
    pub loops: u64,
    /// Busy cycles per packet sent; null before any packet.
    pub cycles_per_packet: Option<f64>,
    /// Packets sent per second, in millions.
    pub tx_mpps: f64,
}

/// Sums.
#[derive(Debug, Serialize)]
pub struct Totals {
    /// Packets the cores sent (forwarded and tx_first seeds).
    pub forwarded: u64,
    /// Packets the cores received.
    pub received: u64,
    /// Packets the cores dropped.
    pub dropped: u64,
    /// The cores' drops by reason.
    pub drops: BTreeMap<&'static str, u64>,
    /// Packets the cores handed to the kernel.
    pub punted: u64,
    /// The cores' punts by reason.
    pub punts: BTreeMap<&'static str, u64>,
    /// The ports' drops by name, added over ports.
    pub port_drops: BTreeMap<&'static str, u64>,
    /// Forwarded per second, in millions.
    pub mpps: f64,
    /// Busy cycles per packet over all cores; null before any packet.
    pub cycles_per_packet: Option<f64>,
}

/// Whether every buffer came back.
#[derive(Debug, Serialize)]
pub struct BufferAudit {
    /// Buffers in the pool.
    pub expected: usize,
    /// Buffers back in the pool after the teardown.
    pub returned: usize,
    /// `returned == expected`.
    pub all_returned: bool,
}

fn mpps(packets: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        packets as f64 / secs / 1e6
    } else {
        0.0
    }
}

fn reasons(c: &CoreSnapshot) -> BTreeMap<&'static str, u64> {
    DropReason::ALL
        .iter()
        .map(|r| (r.name(), c.drops_for(*r)))
        .collect()
}

fn punt_reasons(c: &CoreSnapshot) -> BTreeMap<&'static str, u64> {
    PuntReason::ALL
        .iter()
        .map(|r| (r.name(), c.punts_for(*r)))
        .collect()
}

impl Summary {
    /// The document for a run that ended with `report`.
    pub fn new(
        r: &FinalReport,
        exit_reason: StopReason,
        interrupted_during: Option<&'static str>,
        exit_status: u8,
    ) -> Summary {
        let secs = r.last.elapsed.as_secs_f64();
        let ports = r
            .last
            .ports
            .iter()
            .enumerate()
            .map(|(p, (info, st, link))| {
                let xstats = r.last.xstats.get(p).map_or(&[][..], Vec::as_slice);
                PortSummary {
                    id: info.id.0,
                    name: info.name.clone(),
                    kind: info.kind,
                    mac: info.mac.to_string(),
                    link: Link {
                        up: link.up,
                        speed_mbps: link.speed_mbps,
                        full_duplex: link.full_duplex,
                    },
                    stats: PortStatsJson {
                        ipackets: st.ipackets,
                        opackets: st.opackets,
                        ibytes: st.ibytes,
                        obytes: st.obytes,
                        rx_nombuf: st.rx_nombuf,
                        ierrors: st.ierrors,
                        oerrors: st.oerrors,
                    },
                    drops: port_drops(st, xstats).into_iter().collect(),
                    xstats: xstats.iter().copied().collect(),
                }
            })
            .collect();
        let mut total = CoreSnapshot::default();
        let cores = r
            .last
            .cores
            .iter()
            .map(|(cpu, c)| {
                total.rx += c.rx;
                total.tx += c.tx;
                total.busy_cycles += c.busy_cycles;
                for (t, d) in total.drops.iter_mut().zip(c.drops) {
                    *t += d;
                }
                for (t, d) in total.punts.iter_mut().zip(c.punts) {
                    *t += d;
                }
                CoreSummary {
                    cpu: cpu.0,
                    rx: c.rx,
                    tx: c.tx,
                    injected: c.injected,
                    dropped: c.dropped(),
                    drops: reasons(c),
                    punted: c.punted(),
                    punts: punt_reasons(c),
                    busy_cycles: c.busy_cycles,
                    idle_cycles: c.idle_cycles,
                    loops: c.loops,
                    cycles_per_packet: c.cycles_per_packet(),
                    tx_mpps: mpps(c.tx, secs),
                }
            })
            .collect();
        Summary {
            started: interrupted_during.is_none(),
            interrupted_during,
            exit_reason,
            exit_status,
            duration_secs: secs,
            mode: r.mode.to_string(),
            burst: r.burst,
            ports,
            cores,
            totals: Totals {
                forwarded: total.tx,
                received: total.rx,
                dropped: total.dropped(),
                drops: reasons(&total),
                punted: total.punted(),
                punts: punt_reasons(&total),
                port_drops: total_port_drops(&r.last).into_iter().collect(),
                mpps: mpps(total.tx, secs),
                cycles_per_packet: total.cycles_per_packet(),
            },
            buffers: BufferAudit {
                expected: r.last.pool_count,
                returned: r.buffers_returned,
                all_returned: r.all_buffers_returned(),
            },
            panicked_cpus: r.panicked.iter().map(|c| c.0).collect(),
            switch: r.last.switch.iter().copied().collect(),
            violations: r.violations.clone(),
            router: None,
            wire: None,
        }
    }
}
