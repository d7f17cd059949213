//! `fastpath run --ports sim:ixgbevf,...`: simulated ixgbevf VFs (the
//! device model with our driver on it), every one a VF of one modelled PF
//! whose switch takes frames from one port to the other by MAC. No
//! hardware, no hugepages, no root. Built without the `sim` feature, the
//! binary refuses such ports, and only that is tested.

mod common;
use common::fastpath;

#[cfg(not(feature = "sim"))]
#[test]
fn without_the_sim_feature_a_sim_port_is_a_clear_start_up_error() {
    let out = fastpath()
        .args(["run", "--no-huge", "--ports", "sim:ixgbevf,sim:ixgbevf"])
        .args(["--duration", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "port 0 (sim:ixgbevf:82599) is a simulated VF, and this fastpath was built \
             without them (cargo feature `sim`"
        ),
        "{stderr}"
    );
}

#[cfg(feature = "sim")]
mod sim {
    use super::*;
    use serde_json::Value;

    /// Runs to completion with `--json`; the exit code, the document, stderr.
    fn run_json(args: &[&str]) -> (Option<i32>, Value, String) {
        let out = fastpath()
            .args(["run", "--no-huge", "--json", "--stats-period", "0"])
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let doc = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("stdout is not one JSON document ({e}):\n{stdout}\n{stderr}")
        });
        (out.status.code(), doc, stderr)
    }

    fn u(v: &Value) -> u64 {
        v.as_u64().unwrap_or_else(|| panic!("{v} is not a counter"))
    }

    /// A port's named counter.
    fn x(port: &Value, name: &str) -> u64 {
        u(&port["xstats"][name])
    }

    /// What every clean run on a pair of simulated VFs shows: each port the
    /// VF of the PF with its admin MAC, link up; the audit clean; nothing
    /// dropped anywhere; and, per port, exactly what crossed: with one worker
    /// in `mode`, port q sends what port p received plus its own seeds (no
    /// TX ring ever fills: `seeds` per port is a quarter of a 512 ring).
    fn check_pair(doc: &Value, seeds: u64, models: [&str; 2]) {
        assert_eq!(doc["exit_status"], 0, "{doc:#}");
        assert_eq!(doc["violations"], serde_json::json!([]), "{doc:#}");
        assert_eq!(doc["buffers"]["all_returned"], true, "{doc:#}");
        assert_eq!(u(&doc["totals"]["dropped"]), 0, "{doc:#}");
        for (name, v) in doc["switch"].as_object().unwrap() {
            assert_eq!(u(v), 0, "switch counter {name}: {doc:#}");
        }
        let ports = doc["ports"].as_array().unwrap();
        assert_eq!(ports.len(), 2);
        for (p, port) in ports.iter().enumerate() {
            assert_eq!(port["kind"], "ixgbevf", "{port:#}");
            assert_eq!(port["name"], format!("sim{p}"), "{port:#}");
            assert_eq!(port["mac"], format!("02:09:00:00:00:0{p}"), "{port:#}");
            assert_eq!(port["link"]["up"], true, "{port:#}");
            for (name, v) in port["drops"].as_object().unwrap() {
                assert_eq!(u(v), 0, "port {p} {name} ({}): {port:#}", models[p]);
            }
            let other = &ports[p ^ 1];
            let (rx, tx) = (u(&port["stats"]["ipackets"]), u(&port["stats"]["opackets"]));
            // Frames went round the loop, not only the seeds.
            assert!(rx >= 2 * seeds, "port {p} received only {rx}: {doc:#}");
            assert_eq!(
                tx,
                u(&other["stats"]["ipackets"]) + seeds,
                "port {p}: {doc:#}"
            );
            assert_eq!(u(&port["stats"]["ibytes"]), 64 * rx, "{port:#}");
            // The switch took from the VF what its queue had sent (the last
            // descriptors may still be in the ring at the final reading), and
            // put in its inbox at least what the driver received.
            assert!(x(port, "sim_switch_tx_packets") <= tx, "{port:#}");
            assert!(x(port, "sim_switch_tx_packets") + seeds >= tx, "{port:#}");
            assert!(x(port, "sim_switch_rx_packets") >= rx, "{port:#}");
        }
    }

    /// testpmd's io forwarding over two simulated VFs: each port's seeds are
    /// addressed to the other port (its paired port's MAC is its default
    /// peer), so frames go round the modelled switch for the whole run.
    #[test]
    fn io_forwarding_loops_through_the_modelled_switch_with_exact_counters() {
        let (code, doc, err) = run_json(&[
            "--ports",
            "sim:ixgbevf,sim:ixgbevf",
            "--tx-first",
            "4",
            "--duration",
            "2s",
        ]);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(doc["mode"], "io");
        check_pair(&doc, 4 * 32, ["82599", "82599"]);
        // The seeding shows in the cores' counts too: they sent what they
        // received plus the seeds of both ports.
        let core = &doc["cores"][0];
        assert_eq!(u(&core["tx"]), u(&core["rx"]) + 2 * 4 * 32, "{core:#}");
    }

    /// mac mode between two different models, with the peers given as
    /// testpmd takes them: the loop keeps going, now with rewritten headers.
    #[test]
    fn mac_forwarding_between_an_82599_and_an_x550_vf() {
        let (code, doc, err) = run_json(&[
            "--ports",
            "sim:ixgbevf:82599,sim:ixgbevf:x550",
            "--mode",
            "mac",
            "--eth-peer",
            "0,02:09:00:00:00:01",
            "--eth-peer",
            "1,02:09:00:00:00:00",
            "--tx-first",
            "2",
            "--duration",
            "2",
        ]);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(doc["mode"], "mac");
        check_pair(&doc, 2 * 32, ["82599", "x550"]);
    }

    /// A third port is paired with itself: its seeds go to testpmd's default
    /// peer, a MAC no VF has, so the switch sends them to the PF's uplink,
    /// which has no wire here: each is counted there as dropped.
    #[test]
    fn frames_for_no_vf_are_counted_at_the_uplink() {
        let out = fastpath()
            .args(["run", "--no-huge", "--stats-period", "0"])
            .args(["--ports", "sim:ixgbevf,sim:ixgbevf,sim:ixgbevf:x540"])
            .args(["--tx-first", "1", "--duration", "2"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
        assert!(
            stdout.contains("modelled PF switch counters: uplink_packets=32 uplink_dropped=32\n"),
            "{stdout}"
        );
        assert!(
            stdout.contains(
                "port 2 (ixgbevf sim2, 02:09:00:00:00:02, link up 10000 Mbps full-duplex)"
            ),
            "{stdout}"
        );
        let audit = stdout.lines().last().unwrap_or_default();
        let (back, of) = audit
            .strip_prefix("buffers: ")
            .and_then(|r| r.strip_suffix(" back in the pool"))
            .and_then(|r| r.split_once(" of "))
            .unwrap_or_else(|| panic!("no audit line: {stdout}"));
        assert_eq!(back, of, "{stdout}");
        assert!(!stdout.contains("VIOLATION"), "{stdout}");
    }

    /// Specs that name no model are refused before anything starts, with
    /// what there is.
    #[test]
    fn bad_sim_specs_are_refused_with_the_models_there_are() {
        for (ports, want) in [
            (
                "sim:igbvf",
                "\"sim:igbvf\": no model of \"igbvf\"; simulated ports are sim:ixgbevf or \
             sim:ixgbevf:MODEL (MODEL one of 82599, x540, x550, x550em_x)",
            ),
            (
                "null,sim:ixgbevf:x9",
                "\"sim:ixgbevf:x9\": no ixgbevf model \"x9\"; the models are 82599, x540, x550, \
             x550em_x",
            ),
            (
                "sim:ixgbevf,0000:01:10.0",
                "port 0 (sim:ixgbevf:82599) is a simulated VF and port 1 (0000:01:10.0) a real one",
            ),
        ] {
            let out = fastpath()
                .args(["run", "--no-huge", "--ports", ports])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{ports}: {stderr}");
            assert!(stderr.contains("--ports"), "{ports}: {stderr}");
            assert!(stderr.contains(want), "{ports}: {want:?} not in {stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
}
