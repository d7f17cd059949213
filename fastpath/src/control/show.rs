//! The views as text for the operator: what `fastpath show ...` prints
//! without `--json`.

use super::config_view::ConfigView;
use super::views::{
    CoresView, ExceptionView, LinkView, NeighboursView, NextHopView, PortsView, RoutesView,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;

fn link_text(l: &LinkView) -> String {
    match (l.up, l.speed_mbps) {
        (false, _) => "link down".into(),
        (true, 0) => "link up".into(),
        (true, s) => format!(
            "link up {s} Mbps {}-duplex",
            if l.full_duplex { "full" } else { "half" }
        ),
    }
}

/// `name N, name N` of every count (`only_nonzero`: of the non-zero ones;
/// "none" when nothing is left).
fn counts(m: &BTreeMap<String, u64>, only_nonzero: bool) -> String {
    let parts: Vec<String> = m
        .iter()
        .filter(|(_, v)| !only_nonzero || **v > 0)
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

fn stat(m: &BTreeMap<String, u64>, k: &str) -> u64 {
    m.get(k).copied().unwrap_or(0)
}

/// `show ports`.
pub fn ports(v: &PortsView) -> String {
    let mut s = String::new();
    for p in &v.ports {
        let _ = writeln!(
            s,
            "port {} {} ({}), MAC {}, {}, {} RX / {} TX queues",
            p.id,
            p.name,
            p.kind,
            p.mac,
            link_text(&p.link),
            p.rx_queues,
            p.tx_queues
        );
        let _ = writeln!(
            s,
            "  rx {} packets {} bytes, tx {} packets {} bytes",
            stat(&p.stats, "ipackets"),
            stat(&p.stats, "ibytes"),
            stat(&p.stats, "opackets"),
            stat(&p.stats, "obytes")
        );
        let _ = writeln!(s, "  drops: {}", counts(&p.drops, false));
        let _ = writeln!(s, "  xstats: {}", counts(&p.xstats, true));
    }
    s
}

/// `show cores`, as fp-cpu-usage prints it: busy share and cycles per
/// packet per core.
pub fn cores(v: &CoresView) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "worker load over the last {:.1} s (at {:.1} s):",
        v.interval_secs, v.elapsed_secs
    );
    let _ = writeln!(
        s,
        "{:>6} {:>7} {:>12} {:>12} {:>12}",
        "cpu", "busy", "cyc/rx pkt", "rx pkt/s", "tx pkt/s"
    );
    for c in &v.cores {
        let _ = writeln!(
            s,
            "{:>6} {:>6.1}% {:>12} {:>12.0} {:>12.0}",
            c.cpu,
            c.busy_percent,
            c.cycles_per_packet
                .map_or_else(|| "-".to_owned(), |x| format!("{x:.1}")),
            c.rx_pps,
            c.tx_pps
        );
    }
    let _ = writeln!(s, "note: {}", v.note);
    s
}

fn port_name(interfaces: &[String], port: u16) -> String {
    match interfaces.get(usize::from(port)) {
        Some(i) => format!("port{port} ({i})"),
        None => format!("port{port}"),
    }
}

fn next_hop_text(nh: &NextHopView, interfaces: &[String]) -> String {
    match nh {
        NextHopView::Resolved { port, mac } => {
            format!("dev {} lladdr {mac}", port_name(interfaces, *port))
        }
        NextHopView::Unresolved {
            port,
            via: Some(ip),
        } => format!(
            "via {ip} dev {} (unresolved: to the kernel)",
            port_name(interfaces, *port)
        ),
        NextHopView::Unresolved { port, via: None } => format!(
            "dev {} connected (unresolved: to the kernel)",
            port_name(interfaces, *port)
        ),
        NextHopView::Local => "local (to the kernel)".into(),
        NextHopView::Blackhole => "blackhole".into(),
        NextHopView::Unreachable => "unreachable (the kernel sends the ICMP error)".into(),
        NextHopView::Multipath { members } => format!(
            "multipath [{}]",
            members
                .iter()
                .map(|m| next_hop_text(m, interfaces))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        NextHopView::Missing => "next hop missing from the tables (a bug)".into(),
    }
}

/// `show routes`.
pub fn routes(v: &RoutesView) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} routes in the fast path's tables", v.routes.len());
    for r in &v.routes {
        let _ = writeln!(
            s,
            "{} {}",
            r.prefix,
            next_hop_text(&r.next_hop, &v.interfaces)
        );
    }
    s
}

/// `show neighbours`.
pub fn neighbours(v: &NeighboursView) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} neighbours", v.neighbours.len());
    for n in &v.neighbours {
        let _ = writeln!(
            s,
            "{} dev {} lladdr {}",
            n.ip,
            port_name(&v.interfaces, n.port),
            n.mac
        );
    }
    s
}

/// `show exception`.
pub fn exception(v: &ExceptionView) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "exception thread: {}; punted for a port with no interface: {}",
        v.exception_cpu
            .map_or_else(|| "unpinned".to_owned(), |c| format!("CPU {c}")),
        v.unknown_port
    );
    for i in &v.interfaces {
        let _ = write!(
            s,
            "port {} {} ({}): {}",
            i.port,
            i.ifname,
            i.backend,
            counts(&i.counters, false)
        );
        if let Some(d) = i.kernel_dropped {
            let _ = write!(s, ", kernel_dropped {d}");
        }
        s.push('\n');
    }
    let _ = writeln!(s, "punted by reason: {}", counts(&v.punts, true));
    s
}

/// `show config`.
pub fn config(v: &ConfigView) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "fastpath {} effective configuration:", v.daemon_version);
    let width = v.settings.iter().map(|x| x.name.len()).max().unwrap_or(0);
    for x in &v.settings {
        let _ = writeln!(s, "{:width$}  {}  [{}]", x.name, x.value, x.source);
    }
    s
}
