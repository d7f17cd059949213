//! The kernel's multicast groups on an exception interface reach the
//! port's receive filter at run time: `fastpath run --mode l3` on a
//! simulated ixgbevf VF in a network namespace; an IPv6 address added to
//! fp0 after the start gives fp0 its solicited-node group (RFC 4291
//! 2.7.1: ff02::1:ffXX:XXXX, link layer 33:33:ff:XX:XX:XX, RFC 2464 7),
//! which the router reads from /proc/net/dev_mcast and gives the port
//! (`Port::set_multicast`; the drivers' tests show the list reaching
//! each model and the model filtering by it). Removing the address
//! takes the group away again.
//!
//! Needs root; otherwise it says "skipped".

mod common;

use common::{exit_within, kill, sh, wait_until};
use drivers::test_netns::{is_root, TestNetns};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The solicited-node group of fd00:78::4d0a:1 (its low 24 bits).
const GROUP: &str = "33:33:ff:0a:00:01";

#[test]
fn an_address_added_after_start_puts_its_group_on_the_port() {
    if !is_root() {
        drivers::skip_test!("needs root (a network namespace, a TAP interface)");
    }
    let ns = TestNetns::new("mc-fp");
    let fp = ns.name().to_string();
    sh(&fp, "ip link set lo up");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("fastpath.log");
    let mut child = Command::new("ip")
        .args(["netns", "exec", &fp])
        .arg(env!("CARGO_BIN_EXE_fastpath"))
        .args([
            "run",
            "--mode",
            "l3",
            "--ports",
            "sim:ixgbevf",
            "--exception-ifnames",
            "fp0",
            "--exception",
            "tap",
            "--no-huge",
            "--no-env",
            "--annotations",
            "none",
            "--stats-period",
            "0",
            "--json",
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start fastpath");
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    // The first list (what the kernel joined when fp0 came up) is given
    // before the address exists.
    wait_until(
        "fp0's first multicast list given",
        Duration::from_secs(30),
        || text().contains("multicast groups of fp0"),
    );
    assert!(!text().contains(GROUP), "{}", text());
    sh(&fp, "ip -6 addr add fd00:78::4d0a:1/64 dev fp0 nodad");
    wait_until(
        "the solicited-node group given",
        Duration::from_secs(10),
        || text().contains(&format!("+{GROUP}")),
    );
    sh(&fp, "ip -6 addr del fd00:78::4d0a:1/64 dev fp0");
    wait_until(
        "the solicited-node group taken away",
        Duration::from_secs(10),
        || text().contains(&format!("-{GROUP}")),
    );
    kill(&child, "-INT");
    let status = exit_within(&mut child, Duration::from_secs(20), "SIGINT");
    let out = common::read_all(child.stdout.take());
    let err = text();
    eprintln!("fastpath's log:\n{err}");
    assert!(status.success(), "fastpath exited {status}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let m = &j["router"]["multicast"][0];
    assert_eq!(m["ifname"], "fp0", "{m}");
    assert!(m["changes"].as_u64().unwrap_or(0) >= 3, "{m}");
    assert_eq!(m["errors"], 0, "{m}");
    assert_eq!(m["not_exact"], false, "{m}");
    let groups: Vec<&str> = m["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g.as_str())
        .collect();
    assert!(!groups.contains(&GROUP), "{m}");
    // All-nodes (RFC 4291 2.7.1, ff02::1) since fp0 came up.
    assert!(groups.contains(&"33:33:00:00:00:01"), "{m}");
}
