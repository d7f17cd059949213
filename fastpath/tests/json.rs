//! `fastpath run --json`: stdout is one JSON document whose counts add up.

mod common;
use common::{exit_within, fastpath, kill, read_all};
use serde_json::Value;
use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Runs to completion; the exit code, the parsed stdout, stderr.
fn run_json(args: &[&str]) -> (Option<i32>, Value, String) {
    let out = fastpath()
        .args(["run", "--no-huge", "--json"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{stdout}\n{stderr}"));
    (out.status.code(), doc, stderr)
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("{v} is not a counter"))
}

fn sum(items: &Value, f: impl Fn(&Value) -> &Value) -> u64 {
    items
        .as_array()
        .expect("an array")
        .iter()
        .map(|i| u(f(i)))
        .sum()
}

/// What must hold in every summary of a finished run.
fn check_consistent(doc: &Value) {
    let (ports, cores, totals) = (&doc["ports"], &doc["cores"], &doc["totals"]);
    // Every packet a core sent went out through a port, and every packet
    // a core received came in through one.
    assert_eq!(u(&totals["forwarded"]), sum(cores, |c| &c["tx"]), "{doc:#}");
    assert_eq!(
        u(&totals["forwarded"]),
        sum(ports, |p| &p["stats"]["opackets"]),
        "{doc:#}"
    );
    assert_eq!(u(&totals["received"]), sum(cores, |c| &c["rx"]), "{doc:#}");
    assert_eq!(
        u(&totals["received"]),
        sum(ports, |p| &p["stats"]["ipackets"]),
        "{doc:#}"
    );
    assert_eq!(
        u(&totals["dropped"]),
        sum(cores, |c| &c["dropped"]),
        "{doc:#}"
    );
    for c in cores.as_array().unwrap() {
        let reasons: u64 = c["drops"].as_object().unwrap().values().map(u).sum();
        assert_eq!(reasons, u(&c["dropped"]), "{c:#}");
        assert!(c["drops"].get("tx_full").is_some() && c["drops"].get("runt").is_some());
        assert!(u(&c["busy_cycles"]) + u(&c["idle_cycles"]) > 0, "{c:#}");
    }
    for p in ports.as_array().unwrap() {
        let (st, drops) = (&p["stats"], &p["drops"]);
        assert_eq!(drops["rx_nombuf"], st["rx_nombuf"], "{p:#}");
        assert_eq!(drops["rx_errors"], st["ierrors"], "{p:#}");
        assert_eq!(drops["tx_errors"], st["oerrors"], "{p:#}");
        assert!(p["xstats"].is_object(), "{p:#}");
    }
    for name in ["rx_nombuf", "rx_errors", "tx_errors"] {
        assert_eq!(
            u(&totals["port_drops"][name]),
            sum(ports, |p| &p["drops"][name]),
            "{name}: {doc:#}"
        );
    }
    let b = &doc["buffers"];
    assert!(u(&b["expected"]) > 0, "{b}");
    assert_eq!(b["returned"], b["expected"], "{b}");
    assert_eq!(b["all_returned"], true, "{b}");
    assert_eq!(doc["exit_status"], 0);
    assert_eq!(doc["started"], true);
    assert_eq!(doc["panicked_cpus"], serde_json::json!([]));
}

#[test]
fn null_ports_summary_is_json_and_adds_up() {
    let (code, doc, err) = run_json(&["--duration", "1", "--stats-period", "0.3"]);
    assert_eq!(code, Some(0), "{err}");
    check_consistent(&doc);
    assert_eq!(doc["exit_reason"], serde_json::json!({"kind": "duration"}));
    assert_eq!(doc["mode"], "io");
    assert_eq!(doc["burst"], 32);
    let secs = doc["duration_secs"].as_f64().unwrap();
    assert!((1.0..5.0).contains(&secs), "{secs}");
    assert_eq!(doc["ports"][0]["kind"], "null");
    assert_eq!(doc["ports"][1]["mac"], "02:00:00:00:00:01");
    // io between null ports forwards everything it receives.
    assert_eq!(doc["totals"]["forwarded"], doc["totals"]["received"]);
    assert!(u(&doc["totals"]["forwarded"]) > 0);
    // The live lines went to stderr, not into the document.
    assert!(
        err.lines()
            .any(|l| l.starts_with('[') && l.contains("Mpps")),
        "{err}"
    );
    assert_eq!(doc["buffers"]["expected"], 8192);
}

#[test]
fn ring_ports_summary_counts_the_seeds_and_every_drop() {
    // 32 bursts of 32 per port fill rings of 1024 (the most validation
    // allows); whatever a full ring refuses is counted by the core
    // (tx_full) and by the ring port (tx_errors), both the same.
    let (code, doc, err) = run_json(&[
        "--ports",
        "ring,ring",
        "--tx-first",
        "32",
        "--duration",
        "1",
        "--stats-period",
        "0",
    ]);
    assert_eq!(code, Some(0), "{err}");
    check_consistent(&doc);
    let tx_full = u(&doc["totals"]["drops"]["tx_full"]);
    assert_eq!(
        tx_full,
        u(&doc["totals"]["port_drops"]["tx_errors"]),
        "{doc:#}"
    );
    assert_eq!(doc["ports"][0]["kind"], "ring");
    // Stats period 0: the start-up lines only, no live line. (Log lines
    // may come too: without root, a warning that the pool is not locked.)
    assert!(!err.lines().any(|l| l.starts_with('[')), "{err}");
}

#[test]
fn a_signal_is_the_exit_reason() {
    let mut child = fastpath()
        .args(["run", "--no-huge", "--json", "--stats-period", "0.1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for a live line on stderr: forwarding is under way.
    let mut stderr = child.stderr.take().unwrap();
    let mut err = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&err).contains("\n[") {
        assert!(Instant::now() < deadline, "no live line on stderr");
        if stderr.read(&mut byte).unwrap() == 0 {
            panic!("stderr closed: {}", String::from_utf8_lossy(&err));
        }
        err.push(byte[0]);
    }
    kill(&child, "-TERM");
    let out = read_all(child.stdout.take());
    let status = exit_within(&mut child, Duration::from_secs(10), "SIGTERM");
    assert!(status.success(), "{status:?}");
    let doc: Value = serde_json::from_str(&out).expect("one JSON document");
    check_consistent(&doc);
    assert_eq!(
        doc["exit_reason"],
        serde_json::json!({"kind": "signal", "signal": "SIGTERM"})
    );
}
