//! A port's drops, by named reason: what the live line's `drops:` part
//! and the summaries show for each port.
//!
//! They come from two places. [`PortStats`] has the drops every port
//! kind counts: `rx_nombuf` (received with no free buffer), `rx_errors`
//! (bad frames) and `tx_errors` (refused by the port itself). The port's
//! named counters ([`Port::xstats`](drivers::port::Port::xstats)) break
//! them down by reason and add what only a driver knows (frames lost while
//! a queue stopped, buffers abandoned to a queue that never stopped,
//! device resets). Every named counter that does not count traffic is
//! listed: drivers name traffic counters `*_packets`, `*_bytes`,
//! `*_octets`, `*_unicast`, `*_multicast` or `*_broadcast` (DPDK's xstats
//! naming; the last three are the frames by destination of an iavf VF's
//! virtchnl_eth_stats), and anything else is an anomaly an operator must
//! see.

use drivers::port::{PortStats, XStat};

/// The suffixes of named counters that count traffic, not drops.
const TRAFFIC_SUFFIXES: [&str; 6] = [
    "_packets",
    "_bytes",
    "_octets",
    "_unicast",
    "_multicast",
    "_broadcast",
];

/// True for a named counter of ordinary traffic (not shown as a drop).
pub fn is_traffic(name: &str) -> bool {
    TRAFFIC_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// Every drop counter of a port, by name, zeros included, in a stable
/// order: the [`PortStats`] ones first, then the port's own named ones
/// (a named counter with the same name as a [`PortStats`] one, such as a
/// driver's `rx_nombuf`, is the same count and is listed once).
pub fn port_drops(stats: &PortStats, xstats: &[XStat]) -> Vec<(&'static str, u64)> {
    let mut out = vec![
        ("rx_nombuf", stats.rx_nombuf),
        ("rx_errors", stats.ierrors),
        ("tx_errors", stats.oerrors),
    ];
    for &(name, v) in xstats {
        if !is_traffic(name) && !out.iter().any(|(n, _)| *n == name) {
            out.push((name, v));
        }
    }
    out
}

/// The counts of `now` less those of `earlier`, by name (a name missing
/// from `earlier` counts from 0; a counter that went down, such as a
/// device counter reset with its device, counts 0).
pub fn drops_since(
    now: &[(&'static str, u64)],
    earlier: &[(&'static str, u64)],
) -> Vec<(&'static str, u64)> {
    now.iter()
        .map(|&(name, v)| {
            let before = earlier
                .iter()
                .find_map(|&(n, e)| (n == name).then_some(e))
                .unwrap_or(0);
            (name, v.saturating_sub(before))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_counters_are_not_drops_and_everything_else_is() {
        let stats = PortStats {
            rx_nombuf: 3,
            ierrors: 2,
            oerrors: 1,
            ..PortStats::default()
        };
        let x = [
            ("rx_packets", 10),
            ("rx_bytes", 640),
            ("vf_rx_octets", 640),
            ("vf_rx_multicast", 1),
            ("vf_rx_unicast", 9),
            ("vf_tx_broadcast", 1),
            ("rx_nombuf", 3),
            ("vf_rx_discards", 4),
            ("rx_frame_too_long", 2),
            ("tx_buffers_leaked", 0),
            ("pf_reset_recoveries", 1),
        ];
        assert_eq!(
            port_drops(&stats, &x),
            vec![
                ("rx_nombuf", 3),
                ("rx_errors", 2),
                ("tx_errors", 1),
                ("vf_rx_discards", 4),
                ("rx_frame_too_long", 2),
                ("tx_buffers_leaked", 0),
                ("pf_reset_recoveries", 1),
            ]
        );
    }

    #[test]
    fn deltas_are_by_name_and_never_negative() {
        let earlier = [("rx_nombuf", 5), ("tx_errors", 9)];
        let now = [("rx_nombuf", 8), ("tx_errors", 2), ("rx_frame_errors", 4)];
        assert_eq!(
            drops_since(&now, &earlier),
            vec![("rx_nombuf", 3), ("tx_errors", 0), ("rx_frame_errors", 4)]
        );
    }
}
