//! `fastpath run --ports sim:ixgbevf,sim:iavf,...`: simulated ixgbevf and
//! iavf VFs (a device model with our driver on it), every one a VF of one
//! modelled PF whose switch takes frames from one port to the other by
//! MAC, whatever their drivers. No
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

    /// The text summary ends with the buffer audit, every buffer back.
    fn audit_passed(stdout: &str) {
        let audit = stdout.lines().last().unwrap_or_default();
        let (back, of) = audit
            .strip_prefix("buffers: ")
            .and_then(|r| r.strip_suffix(" back in the pool"))
            .and_then(|r| r.split_once(" of "))
            .unwrap_or_else(|| panic!("no audit line: {stdout}"));
        assert_eq!(back, of, "{stdout}");
    }

    /// What every clean run on a pair of simulated VFs shows: each port the
    /// VF of the PF with its admin MAC, link up; the audit clean; nothing
    /// dropped anywhere; and, per port, exactly what crossed: with one worker
    /// in `mode`, port q sends what port p received plus its own seeds (no
    /// TX ring ever fills: `seeds` per port is a quarter of a 512 ring).
    /// `models` are the ports' specs' models ("ixgbevf:82599").
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
            let kind = models[p].split(':').next().unwrap();
            assert_eq!(port["kind"], kind, "{port:#}");
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
        check_pair(&doc, 4 * 32, ["ixgbevf:82599", "ixgbevf:82599"]);
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
        check_pair(&doc, 2 * 32, ["ixgbevf:82599", "ixgbevf:x550"]);
    }

    /// The same loop over two iavf VFs (X710/XL710 by default): the
    /// seeds wait for the links, which an iavf VF has only once its queues
    /// are enabled (after its worker posted RX buffers), then go round the
    /// switch as between ixgbevf VFs.
    #[test]
    fn io_forwarding_between_two_iavf_vfs() {
        let (code, doc, err) = run_json(&[
            "--ports",
            "sim:iavf,sim:iavf",
            "--tx-first",
            "4",
            "--duration",
            "2s",
        ]);
        assert_eq!(code, Some(0), "{err}");
        check_pair(&doc, 4 * 32, ["iavf:xl710", "iavf:xl710"]);
        let core = &doc["cores"][0];
        assert_eq!(u(&core["tx"]), u(&core["rx"]) + 2 * 4 * 32, "{core:#}");
        // The VSI's counters come from GET_STATS (every second, so they
        // lag): frames by destination are traffic, not drops.
        for port in doc["ports"].as_array().unwrap() {
            assert!(x(port, "vf_tx_unicast") > 0, "{port:#}");
            assert!(port["drops"].get("vf_tx_unicast").is_none(), "{port:#}");
            assert_eq!(x(port, "vf_rx_discards"), 0, "{port:#}");
        }
    }

    /// An ixgbevf VF and an adaptive (E810) iavf VF of the one modelled
    /// PF, in mac mode with their default peers (each other's MAC): the
    /// switch takes frames between the two drivers both ways.
    #[test]
    fn mac_forwarding_between_an_ixgbevf_and_an_iavf_vf() {
        let (code, doc, err) = run_json(&[
            "--ports",
            "sim:ixgbevf,sim:iavf:e810",
            "--mode",
            "mac",
            "--tx-first",
            "2",
            "--duration",
            "2",
        ]);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(doc["mode"], "mac");
        check_pair(&doc, 2 * 32, ["ixgbevf:82599", "iavf:avf"]);
    }

    /// The text output of `fastpath run --ports sim:iavf,sim:iavf`: the
    /// start-up lines show each VF with the PF's MAC and its link up
    /// (start-up waited for it), the run ends clean.
    #[test]
    fn text_run_over_two_iavf_vfs() {
        let out = fastpath()
            .args(["run", "--no-huge", "--stats-period", "0"])
            .args(["--ports", "sim:iavf,sim:iavf:avf", "--tx-first", "1"])
            .args(["--duration", "1"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
        assert!(
            stdout.contains("on ports sim:iavf:xl710,sim:iavf:avf with workers"),
            "{stdout}"
        );
        for p in 0..2 {
            let line = format!(
                "fastpath: port {p} (iavf sim{p}, 02:09:00:00:00:0{p}, link up 10000 Mbps \
                 full-duplex)"
            );
            assert!(stdout.contains(&line), "{line:?} not in {stdout}");
        }
        // Nothing went wrong on the way: no warning (stderr has the log),
        // no violation.
        assert!(
            !stderr.contains("WARN") && !stderr.contains("ERROR"),
            "{stderr}"
        );
        assert!(!stdout.contains("VIOLATION"), "{stdout}");
        audit_passed(&stdout);
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
        audit_passed(&stdout);
        assert!(!stdout.contains("VIOLATION"), "{stdout}");
    }

    /// Specs that name no model are refused before anything starts, with
    /// what there is.
    #[test]
    fn bad_sim_specs_are_refused_with_the_models_there_are() {
        for (ports, want) in [
            (
                "sim:igbvf",
                "\"sim:igbvf\": no model of \"igbvf\"; simulated ports are sim:ixgbevf[:MODEL] \
                 (MODEL one of 82599, x540, x550, x550em_x) or sim:iavf[:MODEL] (MODEL one of \
                 xl710/x710, avf/e810)",
            ),
            (
                "sim:iavf,sim:iavf:foo",
                "\"sim:iavf:foo\": no iavf model \"foo\"; the models are xl710/x710, avf/e810",
            ),
            (
                "sim:iavf:e810,0000:01:10.0",
                "port 0 (sim:iavf:avf) is a simulated VF and port 1 (0000:01:10.0) a real one",
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
