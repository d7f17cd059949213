//! Human-readable statistics: one line per interval, and the final summary.

use crate::counters::{CoreSnapshot, DropReason};
use crate::forwarder::{FinalReport, Snapshot};
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
    let parts: Vec<String> = DropReason::ALL
        .iter()
        .filter(|r| s.drops_for(**r) > 0)
        .map(|r| format!("{}={}", r, s.drops_for(*r)))
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

/// One line of rates between two snapshots.
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
            drops_text(&d),
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
        let named: Vec<String> = r
            .last
            .xstats
            .get(p)
            .into_iter()
            .flatten()
            .filter(|(_, v)| *v > 0)
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        if !named.is_empty() {
            let _ = writeln!(s, "port {} counters: {}", info.id, named.join(" "));
        }
    }
    let mut total = CoreSnapshot::default();
    for (cpu, c) in &r.last.cores {
        let _ = writeln!(
            s,
            "core {cpu}: rx {} tx {} drops {} busy {:.1}% cycles/pkt {} ({:.2} Mpps)",
            c.rx,
            c.tx,
            drops_text(c),
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
    }
    let _ = writeln!(
        s,
        "total: forwarded {} packets ({:.2} Mpps), dropped {} ({}), {} busy cycles/pkt",
        total.tx,
        mpps(total.tx, secs),
        total.dropped(),
        drops_text(&total),
        cycles_text(&total)
    );
    for cpu in &r.panicked {
        let _ = writeln!(
            s,
            "ERROR: worker on CPU {cpu} panicked (its buffers were still returned)"
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
