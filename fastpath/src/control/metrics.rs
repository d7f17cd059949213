//! The statistics in Prometheus's text exposition format, version 0.0.4
//! (prometheus.io/docs/instrumenting/exposition_formats): per family one
//! `# HELP` and one `# TYPE` line, then its samples
//! `name{label="value",...} number`, label values escaped (`\\`, `\"`,
//! `\n`), counters named `*_total`, units in the name.
//!
//! Built from the same views `fastpath show` prints, so the two never
//! disagree.

use super::views::{CoresView, ExceptionView, PortsView};
use std::fmt::Write as _;

/// The Content-Type of this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value with `\`, `"` and newlines escaped (exposition format:
/// "label_value can be any sequence of UTF-8 characters, but the
/// backslash, the double-quote and the line feed must be escaped").
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A HELP text with `\` and newlines escaped (the format's rule for
/// docstrings).
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value: integers as such, floats in Go's spelling of the
/// special values.
#[derive(Debug, Clone, Copy)]
enum Value {
    Count(u64),
    Real(f64),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Value::Count(n) => write!(f, "{n}"),
            Value::Real(x) if x.is_nan() => f.write_str("NaN"),
            Value::Real(x) if x.is_infinite() => f.write_str(if x > 0.0 { "+Inf" } else { "-Inf" }),
            Value::Real(x) => write!(f, "{x}"),
        }
    }
}

/// One family being written.
struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl Family<'_> {
    fn sample(&mut self, labels: &[(&str, &str)], v: Value) {
        let _ = write!(self.out, "{}", self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(val));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {v}");
    }
}

fn family<'a>(out: &'a mut String, name: &'static str, kind: &str, help: &str) -> Family<'a> {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
    Family { out, name }
}

/// The whole exposition: ports, cores, and in l3 mode the exception path.
pub fn render(ports: &PortsView, cores: &CoresView, exception: Option<&ExceptionView>) -> String {
    let mut out = String::new();
    render_ports(&mut out, ports);
    render_cores(&mut out, cores);
    if let Some(e) = exception {
        render_exception(&mut out, e);
    }
    out
}

fn render_ports(out: &mut String, v: &PortsView) {
    let ids: Vec<String> = v.ports.iter().map(|p| p.id.to_string()).collect();
    let labels = |i: usize| {
        let p = &v.ports[i];
        [
            ("port", ids[i].as_str()),
            ("name", p.name.as_str()),
            ("kind", p.kind.as_str()),
        ]
    };
    for (stat, name, help) in [
        (
            "ipackets",
            "fastpath_port_rx_packets_total",
            "Packets the port received.",
        ),
        (
            "opackets",
            "fastpath_port_tx_packets_total",
            "Packets the port sent.",
        ),
        (
            "ibytes",
            "fastpath_port_rx_bytes_total",
            "Bytes the port received.",
        ),
        (
            "obytes",
            "fastpath_port_tx_bytes_total",
            "Bytes the port sent.",
        ),
    ] {
        let mut f = family(out, name, "counter", help);
        for (i, p) in v.ports.iter().enumerate() {
            let n = p.stats.get(stat).copied().unwrap_or(0);
            f.sample(&labels(i), Value::Count(n));
        }
    }
    // Per port, a map of counts labelled by `key`.
    type Counts = fn(&super::views::PortView) -> &std::collections::BTreeMap<String, u64>;
    let maps: [(&'static str, &str, &str, Counts); 2] = [
        (
            "fastpath_port_drops_total",
            "Packets the port dropped, by reason (rx_nombuf: no free buffer; rx_errors; tx_errors; the driver's own).",
            "reason",
            |p| &p.drops,
        ),
        (
            "fastpath_port_xstats_total",
            "Every named counter of the port (DPDK xstats).",
            "xstat",
            |p| &p.xstats,
        ),
    ];
    for (name, help, key, counts) in maps {
        let mut f = family(out, name, "counter", help);
        for (i, p) in v.ports.iter().enumerate() {
            for (k, n) in counts(p) {
                let [a, b, c] = labels(i);
                f.sample(&[a, b, c, (key, k)], Value::Count(*n));
            }
        }
    }
    type Gauge = fn(&super::views::PortView) -> u64;
    let gauges: [(&'static str, &str, Gauge); 3] = [
        (
            "fastpath_port_link_up",
            "1 when the port's link is up.",
            |p| u64::from(p.link.up),
        ),
        (
            "fastpath_port_link_speed_bits_per_second",
            "The port's link speed (0: unknown).",
            |p| u64::from(p.link.speed_mbps) * 1_000_000,
        ),
        (
            "fastpath_port_queues",
            "RX queues of the port in use (one per worker core; as many TX queues).",
            |p| p.rx_queues as u64,
        ),
    ];
    for (name, help, pick) in gauges {
        let mut f = family(out, name, "gauge", help);
        for (i, p) in v.ports.iter().enumerate() {
            f.sample(&labels(i), Value::Count(pick(p)));
        }
    }
}

fn render_cores(out: &mut String, v: &CoresView) {
    let cpus: Vec<String> = v.cores.iter().map(|c| c.cpu.to_string()).collect();
    type Pick = fn(&super::views::CoreTotals) -> u64;
    let counters: [(&'static str, &str, Pick); 5] = [
        (
            "fastpath_core_rx_packets_total",
            "Packets the worker received.",
            |t| t.rx,
        ),
        (
            "fastpath_core_tx_packets_total",
            "Packets the worker sent.",
            |t| t.tx,
        ),
        (
            "fastpath_core_busy_cycles_total",
            "TSC cycles the worker spent in loops that moved packets.",
            |t| t.busy_cycles,
        ),
        (
            "fastpath_core_idle_cycles_total",
            "TSC cycles the worker spent in loops that found nothing.",
            |t| t.idle_cycles,
        ),
        (
            "fastpath_core_loops_total",
            "Poll loops of the worker.",
            |t| t.loops,
        ),
    ];
    for (name, help, pick) in counters {
        let mut f = family(out, name, "counter", help);
        for (c, cpu) in v.cores.iter().zip(&cpus) {
            f.sample(&[("cpu", cpu)], Value::Count(pick(&c.total)));
        }
    }
    let mut f = family(
        out,
        "fastpath_core_drops_total",
        "counter",
        "Packets the worker dropped, by reason.",
    );
    for (c, cpu) in v.cores.iter().zip(&cpus) {
        for (reason, n) in &c.total.drops {
            f.sample(&[("cpu", cpu), ("reason", reason)], Value::Count(*n));
        }
    }
    let mut f = family(
        out,
        "fastpath_core_punts_total",
        "counter",
        "Packets the worker handed to the kernel (exception path), by reason.",
    );
    for (c, cpu) in v.cores.iter().zip(&cpus) {
        for (reason, n) in &c.total.punts {
            f.sample(&[("cpu", cpu), ("reason", reason)], Value::Count(*n));
        }
    }
    // A HELP text is the same on every scrape: the interval is the
    // answer's, about LOAD_INTERVAL.
    let help = format!(
        "Busy share of the worker over the last second, 0 to 1 ({}).",
        super::views::POLLING_NOTE
    );
    let mut f = family(out, "fastpath_core_busy_ratio", "gauge", &help);
    for (c, cpu) in v.cores.iter().zip(&cpus) {
        f.sample(&[("cpu", cpu)], Value::Real(c.busy_percent / 100.0));
    }
    let mut f = family(
        out,
        "fastpath_core_cycles_per_packet",
        "gauge",
        "Busy TSC cycles per packet received over the last interval (absent when none came).",
    );
    for (c, cpu) in v.cores.iter().zip(&cpus) {
        if let Some(x) = c.cycles_per_packet {
            f.sample(&[("cpu", cpu)], Value::Real(x));
        }
    }
}

fn render_exception(out: &mut String, v: &ExceptionView) {
    let ports: Vec<String> = v.interfaces.iter().map(|i| i.port.to_string()).collect();
    let mut f = family(
        out,
        "fastpath_exception_packets_total",
        "counter",
        "The exception path's traffic per port, by event (punted, rate_limited, to_kernel, tap_full, from_kernel, injected, inject_full).",
    );
    for (i, port) in v.interfaces.iter().zip(&ports) {
        for (event, n) in &i.counters {
            f.sample(
                &[("port", port), ("ifname", &i.ifname), ("event", event)],
                Value::Count(*n),
            );
        }
    }
    let mut f = family(
        out,
        "fastpath_exception_kernel_dropped_total",
        "counter",
        "Frames the kernel dropped on an exception interface because the fast path read too slowly.",
    );
    for (i, port) in v.interfaces.iter().zip(&ports) {
        if let Some(n) = i.kernel_dropped {
            f.sample(&[("port", port), ("ifname", &i.ifname)], Value::Count(n));
        }
    }
    let mut f = family(
        out,
        "fastpath_exception_unknown_port_total",
        "counter",
        "Packets punted for a port with no exception interface (dropped).",
    );
    f.sample(&[], Value::Count(v.unknown_port));
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::views::{CoreTotals, CoreView, ExceptionIfaceView, LinkView, PortView};
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    /// A strict reader of the format: every sample's family has its HELP
    /// and TYPE first (once), counters end in `_total`, label values are
    /// unescaped; returns (name, labels, value) of every sample.
    pub(crate) fn parse(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
        let mut types: HashMap<String, String> = HashMap::new();
        let mut helps: HashMap<String, usize> = HashMap::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap().to_owned();
                *helps.entry(name).or_default() += 1;
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut w = rest.split(' ');
                let (name, kind) = (w.next().unwrap(), w.next().unwrap());
                assert!(matches!(kind, "counter" | "gauge"), "{line}");
                if kind == "counter" {
                    assert!(name.ends_with("_total"), "{line}");
                }
                assert!(
                    types.insert(name.into(), kind.into()).is_none(),
                    "two TYPE: {line}"
                );
                continue;
            }
            assert!(!line.starts_with('#'), "{line}");
            let (head, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
            let (name, labels) = match head.split_once('{') {
                None => (head.to_owned(), BTreeMap::new()),
                Some((name, rest)) => (name.to_owned(), labels_of(rest.strip_suffix('}').unwrap())),
            };
            assert!(types.contains_key(&name), "sample before its TYPE: {line}");
            assert_eq!(helps.get(&name), Some(&1), "{line}");
            samples.push((name, labels, value));
        }
        samples
    }

    fn labels_of(mut s: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        while !s.is_empty() {
            let (k, rest) = s.split_once("=\"").unwrap();
            let mut v = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next().unwrap() {
                    (_, '\\') => match chars.next().unwrap().1 {
                        'n' => v.push('\n'),
                        c => v.push(c),
                    },
                    (i, '"') => break i,
                    (_, c) => v.push(c),
                }
            };
            out.insert(k.to_owned(), v);
            s = rest[end + 1..]
                .strip_prefix(',')
                .unwrap_or(&rest[end + 1..]);
        }
        out
    }

    #[test]
    fn families_are_typed_and_label_values_escaped() {
        let ports = PortsView {
            elapsed_secs: 2.0,
            ports: vec![PortView {
                id: 0,
                name: "we\"ird\\na\nme".into(),
                kind: "ring".into(),
                mac: "02:00:00:00:00:00".into(),
                link: LinkView {
                    up: true,
                    speed_mbps: 10_000,
                    full_duplex: true,
                },
                rx_queues: 1,
                tx_queues: 1,
                stats: [("ipackets".to_owned(), 7)].into(),
                xstats: BTreeMap::new(),
                drops: [("rx_nombuf".to_owned(), 3)].into(),
            }],
        };
        let cores = CoresView {
            elapsed_secs: 2.0,
            interval_secs: 1.0,
            note: "n".into(),
            cores: vec![CoreView {
                cpu: 1,
                busy_percent: 25.0,
                cycles_per_packet: None,
                rx_pps: 0.0,
                tx_pps: 0.0,
                total: CoreTotals {
                    rx: 5,
                    tx: 4,
                    busy_cycles: 10,
                    idle_cycles: 30,
                    loops: 2,
                    drops: [("tx_full".to_owned(), 1)].into(),
                    punts: BTreeMap::new(),
                },
            }],
        };
        let exc = ExceptionView {
            exception_cpu: None,
            interfaces: vec![ExceptionIfaceView {
                port: 0,
                ifname: "fp0".into(),
                backend: "tap".into(),
                counters: [("punted".to_owned(), 9)].into(),
                kernel_dropped: None,
            }],
            unknown_port: 0,
            punts: BTreeMap::new(),
        };
        let text = render(&ports, &cores, Some(&exc));
        assert!(text.contains("name=\"we\\\"ird\\\\na\\nme\""), "{text}");
        let s = parse(&text);
        let find = |n: &str| s.iter().find(|(name, _, _)| name == n).unwrap();
        let (_, l, v) = find("fastpath_port_rx_packets_total");
        assert_eq!((l["name"].as_str(), *v), ("we\"ird\\na\nme", 7.0));
        let (_, l, v) = find("fastpath_port_drops_total");
        assert_eq!((l["reason"].as_str(), *v), ("rx_nombuf", 3.0));
        assert_eq!(find("fastpath_port_link_speed_bits_per_second").2, 1e10);
        assert_eq!(find("fastpath_core_busy_ratio").2, 0.25);
        assert_eq!(find("fastpath_exception_packets_total").2, 9.0);
        // No packet sent: no cycles-per-packet sample, but the family is
        // declared.
        assert!(s
            .iter()
            .all(|(n, _, _)| n != "fastpath_core_cycles_per_packet"));
        assert!(text.contains("# TYPE fastpath_core_cycles_per_packet gauge"));
        assert_eq!(Value::Real(f64::INFINITY).to_string(), "+Inf");
    }
}
