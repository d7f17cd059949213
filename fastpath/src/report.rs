//! Human-readable statistics: one line per interval, and the final summary.
//!
//! Every drop shows in both, by named reason: the cores' reasons
//! ([`DropReason`]) and each port's ([`port_drops`]).

use crate::counters::{CoreSnapshot, DropReason, PuntReason};
use crate::forwarder::{FinalReport, Snapshot};
use crate::port_drops::{drops_since, is_traffic, port_drops};
use drivers::port::LinkState;
use std::fmt::Write;

fn mpps(packets: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        packets as f64 / secs / 1e6
    } else {
        0.0
    }
}

fn drops_text(s: &CoreSnapshot) -> String {
    counts_text(DropReason::ALL.iter().map(|r| (r.name(), s.drops_for(*r))))
}

/// Punts by reason, as [`drops_text`] does drops.
fn punts_text(s: &CoreSnapshot) -> String {
    counts_text(PuntReason::ALL.iter().map(|r| (r.name(), s.punts_for(*r))))
}

/// `name=N` for each non-zero count, comma separated; "0" if none.
fn counts_text<'a>(counts: impl Iterator<Item = (&'a str, u64)>) -> String {
    let parts: Vec<String> = counts
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{r}={n}"))
        .collect();
    if parts.is_empty() {
        "0".into()
    } else {
        parts.join(",")
    }
}

fn cycles_text(s: &CoreSnapshot) -> String {
    s.cycles_per_packet()
        .map_or("-".into(), |c| format!("{c:.1}"))
}

/// "link up 1000 Mbps full-duplex" or "link down".
pub fn link_text(l: &LinkState) -> String {
    if !l.up {
        "link down".into()
    } else if l.speed_mbps == 0 {
        "link up".into()
    } else {
        format!(
            "link up {} Mbps {}-duplex",
            l.speed_mbps,
            if l.full_duplex { "full" } else { "half" }
        )
    }
}

/// `name=N` for each non-zero count, space separated.
fn named_counts<S: AsRef<str>>(counts: impl IntoIterator<Item = (S, u64)>) -> String {
    counts
        .into_iter()
        .filter(|(_, v)| *v > 0)
        .map(|(n, v)| format!("{}={v}", n.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A core's drops by reason.
fn core_drops(s: &CoreSnapshot) -> impl Iterator<Item = (String, u64)> + '_ {
    DropReason::ALL
        .iter()
        .map(|r| (r.name().to_string(), s.drops_for(*r)))
}

/// A core's punts (packets handed to the kernel) by reason: not drops,
/// so the line shows them in a part of their own.
fn core_punts(s: &CoreSnapshot) -> impl Iterator<Item = (String, u64)> + '_ {
    PuntReason::ALL
        .iter()
        .map(|r| (r.name().to_string(), s.punts_for(*r)))
}

/// The drop counters of port `p` of a snapshot, by name.
fn snapshot_port_drops(s: &Snapshot, p: usize) -> Vec<(&'static str, u64)> {
    let xstats = s.xstats.get(p).map_or(&[][..], Vec::as_slice);
    s.ports
        .get(p)
        .map_or_else(Vec::new, |(_, st, _)| port_drops(st, xstats))
}

/// The drop counters of the simulated ports' PF switch.
fn switch_drops(s: &Snapshot) -> Vec<(&'static str, u64)> {
    s.switch
        .iter()
        .copied()
        .filter(|(n, _)| !is_traffic(n))
        .collect()
}

/// Ports that received with no free buffer between two snapshots.
fn starved_ports(prev: &Snapshot, now: &Snapshot) -> Vec<String> {
    prev.ports
        .iter()
        .zip(&now.ports)
        .filter(|((_, a, _), (_, b, _))| b.rx_nombuf > a.rx_nombuf)
        .map(|((info, _, _), _)| format!("port{}", info.id))
        .collect()
}

/// One line of rates between two snapshots. When anything was dropped in
/// the interval, a `drops:` part names each core's and each port's
/// reasons with their counts, and a `to kernel:` part each core's punts
/// by reason (router mode: handed to the exception path, not lost); when
/// a port found no free buffer, a last part says the pool is starved.
pub fn interval_line(prev: &Snapshot, now: &Snapshot) -> String {
    let secs = (now.elapsed - prev.elapsed).as_secs_f64();
    let mut line = format!("[{:7.1}s]", now.elapsed.as_secs_f64());
    let mut total = CoreSnapshot::default();
    for ((cpu, a), (_, b)) in prev.cores.iter().zip(&now.cores) {
        let d = b.since(a);
        let _ = write!(
            line,
            " cpu{cpu}: rx {:.2} tx {:.2} Mpps drop {} busy {:.0}% {} cyc/pkt |",
            mpps(d.rx, secs),
            mpps(d.tx, secs),
            // The reasons are in the line's `drops:` part.
            d.dropped(),
            d.busy_ratio() * 100.0,
            cycles_text(&d)
        );
        total.rx += d.rx;
        total.tx += d.tx;
    }
    for ((info, a, _), (_, b, link)) in prev.ports.iter().zip(&now.ports) {
        let _ = write!(
            line,
            " port{} rx {:.2} tx {:.2}{}",
            info.id,
            mpps(b.ipackets - a.ipackets, secs),
            mpps(b.opackets - a.opackets, secs),
            if link.up { "" } else { " (link down)" }
        );
    }
    let _ = write!(line, " | total fwd {:.2} Mpps", mpps(total.tx, secs));
    let mut drops = Vec::new();
    for ((cpu, a), (_, b)) in prev.cores.iter().zip(&now.cores) {
        let since = b.since(a);
        let named = named_counts(core_drops(&since));
        if !named.is_empty() {
            drops.push(format!("cpu{cpu} {named}"));
        }
    }
    for (p, (info, _, _)) in now.ports.iter().enumerate() {
        let d = drops_since(&snapshot_port_drops(now, p), &snapshot_port_drops(prev, p));
        let named = named_counts(d);
        if !named.is_empty() {
            drops.push(format!("port{} {named}", info.id));
        }
    }
    let switch = named_counts(drops_since(&switch_drops(now), &switch_drops(prev)));
    if !switch.is_empty() {
        drops.push(format!("switch {switch}"));
    }
    if !drops.is_empty() {
        let _ = write!(line, " | drops: {}", drops.join(" "));
    }
    let punts: Vec<String> = prev
        .cores
        .iter()
        .zip(&now.cores)
        .filter_map(|((cpu, a), (_, b))| {
            let named = named_counts(core_punts(&b.since(a)));
            (!named.is_empty()).then(|| format!("cpu{cpu} {named}"))
        })
        .collect();
    if !punts.is_empty() {
        let _ = write!(line, " | to kernel: {}", punts.join(" "));
    }
    if now.violations > prev.violations {
        let _ = write!(
            line,
            " | VIOLATIONS: the device models saw {} rule(s) broken (listed at the end)",
            now.violations - prev.violations
        );
    }
    let starved = starved_ports(prev, now);
    if !starved.is_empty() {
        let _ = write!(
            line,
            " | STARVED: {} found no free buffer (pool of {}: raise --nb-mbuf)",
            starved.join(","),
            now.pool_count
        );
    }
    line
}

/// The summary printed when a run ends.
pub fn final_summary(r: &FinalReport) -> String {
    let secs = r.last.elapsed.as_secs_f64();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "---- final statistics after {secs:.1} s (mode {}, burst {}) ----",
        r.mode, r.burst
    );
    for (p, (info, st, link)) in r.last.ports.iter().enumerate() {
        let _ = writeln!(
            s,
            "port {} ({} {}, {}, {}): rx {} pkts {} bytes, tx {} pkts {} bytes, rx_nombuf {}, rx_errors {}, tx_errors {}",
            info.id, info.kind, info.name, info.mac, link_text(link), st.ipackets, st.ibytes, st.opackets, st.obytes, st.rx_nombuf, st.ierrors, st.oerrors
        );
        let named = named_counts(r.last.xstats.get(p).into_iter().flatten().copied());
        if !named.is_empty() {
            let _ = writeln!(s, "port {} counters: {named}", info.id);
        }
    }
    let switch = named_counts(r.last.switch.iter().copied());
    if !switch.is_empty() {
        let _ = writeln!(s, "modelled PF switch counters: {switch}");
    }
    let mut total = CoreSnapshot::default();
    for (cpu, c) in &r.last.cores {
        let _ = writeln!(
            s,
            "core {cpu}: rx {} tx {}{} drops {} punts {} busy {:.1}% cycles/pkt {} ({:.2} Mpps)",
            c.rx,
            c.tx,
            // L3 mode: of the frames sent, those the kernel emitted.
            if c.injected > 0 {
                format!(" (injected {})", c.injected)
            } else {
                String::new()
            },
            drops_text(c),
            punts_text(c),
            c.busy_ratio() * 100.0,
            cycles_text(c),
            mpps(c.tx, secs)
        );
        total.rx += c.rx;
        total.tx += c.tx;
        total.busy_cycles += c.busy_cycles;
        for (t, d) in total.drops.iter_mut().zip(c.drops) {
            *t += d;
        }
        for (t, d) in total.punts.iter_mut().zip(c.punts) {
            *t += d;
        }
    }
    let _ = writeln!(
        s,
        "total: forwarded {} packets ({:.2} Mpps), dropped {} ({}), punted {} ({}), {} busy cycles/pkt",
        total.tx,
        mpps(total.tx, secs),
        total.dropped(),
        drops_text(&total),
        total.punted(),
        punts_text(&total),
        cycles_text(&total)
    );
    let port_total = total_port_drops(&r.last);
    let named = named_counts(port_total.iter().copied());
    if !named.is_empty() {
        let _ = writeln!(s, "total port drops: {named}");
    }
    let nombuf = port_total
        .iter()
        .find_map(|&(n, v)| (n == "rx_nombuf").then_some(v))
        .unwrap_or(0);
    if nombuf > 0 {
        let _ = writeln!(
            s,
            "WARNING: {nombuf} receives found no free buffer: the pool of {} buffers is \
             too small for this run (raise --nb-mbuf)",
            r.last.pool_count
        );
    }
    for cpu in &r.panicked {
        let _ = writeln!(
            s,
            "ERROR: worker on CPU {cpu} panicked (its buffers were still returned)"
        );
    }
    for v in &r.violations {
        let _ = writeln!(s, "VIOLATION: {v}");
    }
    if !r.violations.is_empty() {
        let _ = writeln!(
            s,
            "ERROR: the device models saw {} rule(s) broken by the driver: the audit fails",
            r.violations.len()
        );
    }
    let _ = write!(
        s,
        "buffers: {} of {} back in the pool{}",
        r.buffers_returned,
        r.last.pool_count,
        if r.all_buffers_returned() {
            ""
        } else {
            " -- BUFFERS LOST"
        }
    );
    s
}

/// Every port's drop counters added up, by name, in first-seen order.
pub fn total_port_drops(s: &Snapshot) -> Vec<(&'static str, u64)> {
    let mut total: Vec<(&'static str, u64)> = Vec::new();
    for p in 0..s.ports.len() {
        for (name, v) in snapshot_port_drops(s, p) {
            match total.iter_mut().find(|(n, _)| *n == name) {
                Some((_, t)) => *t += v,
                None => total.push((name, v)),
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forwarder::Snapshot;
    use drivers::cpu::CpuId;
    use drivers::mbuf::PortId;
    use drivers::net::MacAddr;
    use drivers::port::{Capabilities, PortInfo, PortStats};
    use std::time::Duration;

    /// A snapshot of two ports after `secs`, port 0 having found no
    /// buffer `nombuf` times. (A validated configuration always has a
    /// pool large enough for software ports, so a starved run is made
    /// here rather than through the binary; VF ports can starve when the
    /// pool is shared with long rings.)
    fn snap(secs: u64, nombuf: u64) -> Snapshot {
        let port = |id: u16, rx_nombuf: u64| {
            (
                PortInfo {
                    id: PortId(id),
                    name: format!("p{id}"),
                    kind: "null",
                    mac: MacAddr::local(id),
                    capabilities: Capabilities {
                        max_rx_queues: 1,
                        max_tx_queues: 1,
                        max_rx_frame: 2048,
                    },
                },
                PortStats {
                    rx_nombuf,
                    ..PortStats::default()
                },
                LinkState {
                    up: true,
                    speed_mbps: 10_000,
                    full_duplex: true,
                },
            )
        };
        Snapshot {
            elapsed: Duration::from_secs(secs),
            cores: vec![(CpuId(1), CoreSnapshot::default())],
            ports: vec![port(0, nombuf), port(1, 0)],
            xstats: vec![Vec::new(), Vec::new()],
            pool_available: 0,
            pool_count: 10,
            violations: 0,
            switch: Vec::new(),
        }
    }

    /// A rule a device model saw broken fails the audit, is counted live
    /// and is listed at the end, in the model's words.
    #[test]
    fn a_model_violation_fails_the_audit_and_is_listed() {
        use crate::forwarder::FinalReport;
        use crate::sim_ports::ModelViolation;
        let (prev, mut now) = (snap(1, 0), snap(2, 0));
        now.violations = 1;
        let line = interval_line(&prev, &now);
        assert!(
            line.contains(
                "| VIOLATIONS: the device models saw 1 rule(s) broken (listed at the end)"
            ),
            "{line}"
        );
        now.pool_available = now.pool_count;
        let r = FinalReport {
            last: now,
            mode: crate::fwd_mode::FwdMode::Io,
            burst: 32,
            panicked: Vec::new(),
            buffers_returned: 10,
            violations: vec![ModelViolation {
                rule: "enable-before-tail",
                section: "nic-facts.md A.7.1",
                detail: "RDT(0) = 5 while disabled".into(),
            }],
        };
        assert!(r.all_buffers_returned() && !r.clean());
        let text = final_summary(&r);
        assert!(
            text.contains(
                "VIOLATION: enable-before-tail (nic-facts.md A.7.1): RDT(0) = 5 while disabled\n\
                 ERROR: the device models saw 1 rule(s) broken by the driver: the audit fails\n\
                 buffers: 10 of 10 back in the pool"
            ),
            "{text}"
        );
        let outcome = crate::run::Outcome {
            reason: crate::stop_signals::StopReason::Duration,
            clean: r.clean(),
        };
        assert_eq!(outcome.exit_status(), 3);
    }

    #[test]
    fn punts_are_shown_apart_from_drops() {
        let prev = snap(1, 0);
        let mut now = snap(2, 0);
        let core = &mut now.cores[0].1;
        core.punts[PuntReason::TtlExceeded as usize] = 3;
        core.drops[DropReason::ALL[0] as usize] = 2;
        let line = interval_line(&prev, &now);
        let ttl = PuntReason::TtlExceeded.name();
        let dropped = DropReason::ALL[0].name();
        assert!(
            line.contains(&format!(
                "| drops: cpu1 {dropped}=2 | to kernel: cpu1 {ttl}=3"
            )),
            "{line}"
        );
        assert!(!line.contains("punt_"), "{line}");
        let calm = interval_line(&snap(1, 0), &snap(2, 0));
        assert!(!calm.contains("to kernel"), "{calm}");
    }

    #[test]
    fn a_starved_port_is_named_in_the_live_line() {
        let line = interval_line(&snap(1, 5), &snap(2, 12));
        assert!(line.contains("| drops: port0 rx_nombuf=7"), "{line}");
        assert!(
            line.ends_with("| STARVED: port0 found no free buffer (pool of 10: raise --nb-mbuf)"),
            "{line}"
        );
        let calm = interval_line(&snap(1, 12), &snap(2, 12));
        assert!(
            !calm.contains("drops:") && !calm.contains("STARVED"),
            "{calm}"
        );
    }
}
