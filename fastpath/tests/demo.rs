//! `fastpath demo`: the fast path routing UDP between two simulated VFs
//! (our ixgbevf and iavf drivers on their device models), fed by hosts on
//! the modelled PF's wire, with a sink counting what comes out. No root,
//! no hugepages needed, no network. Built without the `sim` feature, the
//! demo is a clear error, and only that is tested.

mod common;
use common::fastpath;

#[cfg(not(feature = "sim"))]
#[test]
fn without_the_sim_feature_the_demo_is_a_clear_error() {
    let out = fastpath()
        .args(["demo", "--duration", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("this fastpath was built without them (cargo feature `sim`"),
        "{stderr}"
    );
}

#[cfg(feature = "sim")]
mod sim {
    use super::common::{exit_within, kill, spawn_until_live};
    use super::*;
    use std::time::Duration;

    /// The figures of a demo's final text.
    #[derive(Debug)]
    struct Final {
        sent: u64,
        sunk: u64,
        punted_wire: u64,
        dropped_wire: u64,
        probes: u64,
        in_flight: i64,
        damaged: u64,
        forwarded: u64,
        dropped: u64,
        punted: u64,
    }

    /// The number right after `key` in the line that starts with
    /// `start`.
    fn after(out: &str, start: &str, key: &str) -> i64 {
        let line = out
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in:\n{out}"));
        let rest = &line[line
            .find(key)
            .unwrap_or_else(|| panic!("no {key:?} in {line:?}"))
            + key.len()..];
        let n: String = rest
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        n.parse()
            .unwrap_or_else(|_| panic!("no number after {key:?} in {line:?}"))
    }

    fn final_figures(out: &str) -> Final {
        let u = |start: &str, key: &str| after(out, start, key) as u64;
        Final {
            sent: u("accounting:", "sent"),
            sunk: u("accounting:", "sunk"),
            punted_wire: u("accounting:", "punted"),
            dropped_wire: u("accounting:", "dropped"),
            probes: u("hosts: sent", "UDP flows,"),
            in_flight: after(out, "accounting:", "in flight"),
            damaged: u("sink:", "IPv4/UDP,"),
            forwarded: u("total:", "forwarded"),
            dropped: u("total:", "dropped"),
            punted: u("total:", "punted"),
        }
    }

    /// Every buffer back in the pool: "buffers: N of N back in the pool".
    fn all_buffers_back(out: &str) {
        let line = out
            .lines()
            .find(|l| l.starts_with("buffers: "))
            .unwrap_or_else(|| panic!("no buffer audit in:\n{out}"));
        let w: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(w[1], w[3], "{line}");
        assert!(line.ends_with("back in the pool"), "{line}");
    }

    /// Checks a clean demo's final text: frames came in from the hosts,
    /// were routed and sunk, the probes punted, each frame accounted for
    /// (nothing in flight), none damaged, every buffer back.
    fn clean_demo(out: &str) -> Final {
        let f = final_figures(out);
        assert!(f.sent > 0, "{f:?}\n{out}");
        assert!(f.sunk > 0, "{f:?}\n{out}");
        assert_eq!(f.in_flight, 0, "{f:?}\n{out}");
        assert_eq!(f.sent, f.sunk + f.punted_wire + f.dropped_wire, "{f:?}");
        assert_eq!(f.damaged, 0, "{f:?}");
        // Routed frames are what the sink got; the punts are the fast
        // path's, and its drops are among those of the way.
        assert!(f.forwarded >= f.sunk, "{f:?}");
        assert_eq!(f.punted, f.punted_wire, "{f:?}");
        assert!(f.dropped <= f.dropped_wire, "{f:?}");
        // One frame in 1000 is a TTL-1 probe.
        assert_eq!(f.probes, f.sent / 1000, "{f:?}");
        all_buffers_back(out);
        f
    }

    #[test]
    fn a_two_second_demo_routes_what_the_hosts_send_and_accounts_for_every_frame() {
        let out = fastpath()
            .args(["demo", "--duration", "2", "--rate", "5000"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
        // The start-up: both simulated VFs, l3 mode, the network, the wire.
        for want in [
            "fastpath: forwarding (l3 mode, burst 32) on ports sim:ixgbevf:82599,sim:iavf:xl710",
            "fastpath: port 0 (ixgbevf sim0, 02:09:00:00:00:00, link up",
            "fastpath: port 1 (iavf sim1, 02:09:00:00:00:01, link up",
            "fastpath demo: port 0 02:09:00:00:00:00 = 10.0.0.1/24; host 10.0.0.2",
            "fastpath demo: port 1 02:09:00:00:00:01 = 10.0.1.1/24; host 10.0.1.2",
            "fastpath demo: wire: 2 hosts, 256 UDP flows each, 64-byte frames, 5000 frames/s in all",
        ] {
            assert!(stdout.contains(want), "{want:?} not in:\n{stdout}");
        }
        // Live lines: the worker's and the wire's, each second.
        let live = stdout.lines().filter(|l| l.starts_with('[')).count();
        let wire = stdout
            .lines()
            .filter(|l| l.starts_with("  wire: hosts sent"))
            .count();
        assert!(live >= 1 && wire == live, "{live} {wire}:\n{stdout}");
        let f = clean_demo(&stdout);
        // At this pace nothing is dropped: every probe is punted, as
        // ttl_exceeded, and everything else is routed to the sink.
        assert_eq!(f.dropped_wire, 0, "{f:?}\n{stdout}");
        assert_eq!(f.punted, f.probes, "{f:?}");
        assert!(
            stdout.contains(&format!("punted {} (ttl_exceeded={})", f.probes, f.probes)),
            "{stdout}"
        );
        assert_eq!(f.sunk, f.sent - f.probes, "{f:?}");
        // Both ports received and sent: each host's flows cross to the other.
        for p in ["port 0 (ixgbevf", "port 1 (iavf"] {
            assert!(after(&stdout, p, "): rx") > 0, "{p}:\n{stdout}");
            assert!(after(&stdout, p, "bytes, tx") > 0, "{p}:\n{stdout}");
        }
        // About 5000 frames/s for about 2 s: the pace is set, far below
        // what the models take at `--rate max` (some 150 000/s). Loosely:
        // a busy machine may start the hosts late or stop them late (CI
        // once saw 10241), and a test does not time things.
        assert!(f.sent > 1000 && f.sent < 20_000, "{f:?}");
    }

    /// At full speed the hosts never send more than the VFs' inboxes
    /// hold: nothing is lost on the way in.
    #[test]
    fn at_max_rate_nothing_is_lost_on_the_way_in() {
        let out = fastpath()
            .args(["demo", "--duration", "1", "--rate", "max", "--flows", "7"])
            .args(["--packet-size", "200"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
        assert!(stdout.contains("7 UDP flows each, 200-byte frames, as fast as the fast path takes them (at most 256 on their way)"));
        let f = clean_demo(&stdout);
        assert_eq!(
            after(&stdout, "dropped on the way", "switch could not deliver"),
            0,
            "{f:?}"
        );
        assert_eq!(after(&stdout, "hosts: sent", "("), f.sent as i64 * 200);
    }

    /// Ctrl-C ends the demo early with the same final accounting.
    #[test]
    fn ctrl_c_stops_it_cleanly() {
        let (mut child, seen, rest) = spawn_until_live(&["demo", "--duration", "60"]);
        assert!(
            seen.iter().any(|l| l.starts_with("fastpath demo: wire:")),
            "{seen:#?}"
        );
        kill(&child, "-INT");
        let status = exit_within(&mut child, Duration::from_secs(20), "SIGINT");
        let rest: String = rest.map(|l| l.unwrap() + "\n").collect();
        assert_eq!(status.code(), Some(0), "{rest}");
        assert!(rest.contains("fastpath: stopping (SIGINT"), "{rest}");
        clean_demo(&rest);
    }

    /// `--json`: one document on stdout with the wire's figures, which
    /// add up; the start-up and live lines on stderr.
    #[test]
    fn json_carries_the_wires_accounting() {
        let out = fastpath()
            .args(["demo", "--duration", "1", "--rate", "4000", "--json"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
        assert!(stderr.contains("fastpath demo: wire: 2 hosts"), "{stderr}");
        let doc: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{stdout}"));
        let u = |v: &serde_json::Value| v.as_u64().unwrap_or_else(|| panic!("{v}"));
        let w = &doc["wire"];
        let dropped: u64 = w["dropped"]
            .as_object()
            .expect("drops by reason")
            .values()
            .map(u)
            .sum();
        assert!(u(&w["sent"]) > 0, "{w}");
        assert_eq!(w["in_flight"], 0, "{w}");
        assert_eq!(
            u(&w["sent"]),
            u(&w["sunk"]) + u(&w["punted"]) + dropped,
            "{w}"
        );
        assert_eq!(u(&w["sunk_bad"]), 0, "{w}");
        assert_eq!(w["flows"], 512);
        assert_eq!(w["rate_pps"], 4000);
        assert_eq!(doc["mode"], "l3");
        assert_eq!(doc["exit_status"], 0);
        assert_eq!(doc["buffers"]["all_returned"], true, "{doc}");
        assert_eq!(u(&doc["totals"]["punted"]), u(&w["punted"]), "{doc}");
        // The devices' own counters are read once more after the workers
        // stop: they agree with the drivers' to the last frame (ixgbevf's
        // VFGPRC/VFGPTC, iavf's GET_STATS unicast counts).
        for (i, hw_rx, hw_tx) in [
            (0, "vf_rx_packets", "vf_tx_packets"),
            (1, "vf_rx_unicast", "vf_tx_unicast"),
        ] {
            let x = &doc["ports"][i]["xstats"];
            assert_eq!(u(&x[hw_rx]), u(&x["rx_packets"]), "port {i}: {x}");
            assert_eq!(u(&x[hw_tx]), u(&x["tx_packets"]), "port {i}: {x}");
        }
    }

    #[test]
    fn help_says_what_it_simulates_and_bad_options_are_refused() {
        let out = fastpath().args(["demo", "--help"]).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{help}");
        for want in [
            "simulated VF",
            "device model",
            "--duration",
            "--rate",
            "max",
            "--flows",
        ] {
            assert!(help.contains(want), "{want:?} not in:\n{help}");
        }
        for (args, want) in [
            (&["--rate", "0"][..], "`max` or frames per second"),
            (&["--duration", "0"], "--duration"),
            (&["--flows", "0"], "--flows"),
            (&["--packet-size", "59"], "--packet-size"),
        ] {
            let out = fastpath().arg("demo").args(args).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(stderr.contains(want), "{args:?}: {stderr}");
        }
    }
}
