//! The pod's addresses on the exception interfaces (issue 16 item 2):
//! `fastpath run --mode l3` puts them there itself, and the fast path then
//! routes by them as by an operator's.
//!
//! AF_PACKET ports have no PCI address, so no network-status entry can
//! name them: the addresses come through `--pod-address`, which goes the
//! same way (the plan, then RTM_NEWADDR after the mirror has opened).
//!
//! ```text
//!  pa<p>-h1                     pa<p>-fp                               pa<p>-h2
//!  h1 10.78.1.2/24 ==veth== p1 (port 0)            p2 (port 1) ==veth== h2 10.78.2.2/24
//!                             fp0 10.78.1.1/24      fp1 10.78.2.1/24
//!                                 fd00:78:1::1/64       (given twice)
//! ```
//!
//! No `ip addr add` in FP: fastpath adds them. Checks: each address and
//! its connected route are on the interface; h1's pings to fp0's address
//! are answered by FP's kernel (punted as `local`: the mirror learned the
//! address); a UDP flow h1 -> h2 crosses the fast path, not FP's kernel
//! (the mirror learned both connected routes); the address given twice is
//! "already on" the second time; and a second start does it all again.
//! A second test adds one address twice to a veth through the
//! library: `Added`, then `AlreadyThere`.
//!
//! Needs root; otherwise it says "skipped".

mod common;

use common::{have, ping_once, sh, sh_output, snmp, udp_flow, udp_in, wait_until, RouterLab};
use drivers::test_netns::{is_root, TestNetns};
use fastpath::mirror::socket::RouteSocket;
use fastpath::mirror::IfIndex;
use fastpath::router::iface_address::{add_address, Added};
use std::process::Stdio;
use std::time::Duration;

/// UDP datagrams of the flow.
const FLOW: u64 = 500;
/// Packets of the flow FP's kernel may forward itself (the first, while
/// it resolves h2 and the fast path learns the neighbour).
const KERNEL_FORWARDS_AT_MOST: u64 = 5;
/// Pings to fp0's address.
const PINGS: u64 = 3;

/// Starts fastpath in FP with the pod addresses; returns once fp0 and
/// fp1 are up and carry them.
fn start(lab: &mut RouterLab) {
    let fp = lab.fp.name().to_string();
    let child = lab
        .router(&[
            "--no-env",
            "--annotations",
            "none",
            "--pod-address",
            "0=10.78.1.1/24",
            "--pod-address",
            "0=fd00:78:1::1/64",
            "--pod-address",
            "1=10.78.2.1/24",
            "--pod-address",
            "1=10.78.2.1/24",
            "--stats-period",
            "0",
            "--json",
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start fastpath");
    lab.fastpath = Some(child);
    wait_until(
        "fp0 and fp1 carry their addresses",
        Duration::from_secs(20),
        || {
            let a = sh_output(&fp, "ip -o addr show").stdout;
            let a = String::from_utf8_lossy(&a);
            ["fp0    inet 10.78.1.1/24", "fp1    inet 10.78.2.1/24"]
                .iter()
                .all(|want| a.lines().any(|l| squeeze(l).contains(&squeeze(want))))
        },
    );
}

/// `l` with runs of whitespace made one space.
fn squeeze(l: &str) -> String {
    l.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One run: the addresses and routes are there, the kernel answers for
/// them, the flow crosses the fast path; with `delete_fp0`, fp0 is then
/// deleted under the fast path, which makes it again with its address.
fn one_run(lab: &mut RouterLab, delete_fp0: bool) {
    start(lab);
    let fp = lab.fp.name().to_string();
    let (h1, h2) = (lab.h1.name().to_string(), lab.h2.name().to_string());
    let routes = sh(&fp, "ip route show");
    for want in [
        "10.78.1.0/24 dev fp0 proto kernel",
        "10.78.2.0/24 dev fp1 proto kernel",
    ] {
        assert!(routes.contains(want), "{want} in {routes}");
    }
    // IPv6: the address is there (its connected route follows once DAD
    // is done; the flow below is IPv4).
    wait_until("fp0 has fd00:78:1::1/64", Duration::from_secs(5), || {
        sh(&fp, "ip -o -6 addr show dev fp0").contains("fd00:78:1::1/64")
    });

    // FP's own address: the fast path punts the pings (`local`), FP's
    // kernel answers through the exception path.
    wait_until("h1 pings 10.78.1.1", Duration::from_secs(10), || {
        ping_once(&h1, "10.78.1.1")
    });
    sh(&h1, &format!("ping -c {PINGS} -i 0.2 -W 1 10.78.1.1"));

    // Through both connected routes: forwarded by the fast path.
    wait_until("h1 pings h2", Duration::from_secs(10), || {
        ping_once(&h1, "10.78.2.2")
    });
    let fwd_before = snmp(&fp, "Ip", "ForwDatagrams");
    let in_before = udp_in(&h2);
    udp_flow(&h1, "10.78.2.2", FLOW);
    wait_until("h2 receives the flow", Duration::from_secs(10), || {
        udp_in(&h2) - in_before >= FLOW
    });
    let kernel_forwarded = snmp(&fp, "Ip", "ForwDatagrams") - fwd_before;
    assert!(
        kernel_forwarded <= KERNEL_FORWARDS_AT_MOST,
        "FP's kernel forwarded {kernel_forwarded} packets of a {FLOW}-datagram flow"
    );

    if delete_fp0 {
        sh(&fp, "ip link del fp0");
        wait_until(
            "fp0 made again with 10.78.1.1/24",
            Duration::from_secs(10),
            || squeeze(&sh(&fp, "ip -o -4 addr show")).contains("fp0 inet 10.78.1.1/24"),
        );
        wait_until("h1 pings 10.78.1.1 again", Duration::from_secs(10), || {
            ping_once(&h1, "10.78.1.1")
        });
    }
    let (j, err) = common::stop_for_json(lab.fastpath.take().expect("fastpath runs"));
    eprintln!("fastpath's log:\n{err}");
    if delete_fp0 {
        assert!(
            err.contains("fp0 is back")
                && err.contains(
                    "the pod's addresses (network-status, --pod-address) are applied again"
                ),
            "{err}"
        );
        assert_eq!(
            err.matches("port 0 (--pod-address): 10.78.1.1/24 added to fp0")
                .count(),
            2,
            "{err}"
        );
    }
    for line in [
        "port 0 (--pod-address): 10.78.1.1/24 added to fp0",
        "port 0 (--pod-address): fd00:78:1::1/64 added to fp0",
        "port 1 (--pod-address): 10.78.2.1/24 added to fp1",
        "port 1 (--pod-address): 10.78.2.1/24 already on fp1",
    ] {
        assert!(err.contains(line), "{line:?} in {err}");
    }
    let core = &j["cores"][0];
    let local = core["punts"]["local"].as_u64().unwrap_or(0);
    assert!(local >= PINGS, "pings punted as local: {core}");
    let tx = core["tx"].as_u64().unwrap_or(0);
    assert!(tx >= FLOW, "the fast path sent {tx}: {core}");
    let tables = &j["router"]["tables"];
    // The two connected routes, and h2's host route once resolved.
    assert!(tables["routes_v4"].as_u64().unwrap_or(0) >= 2, "{tables}");
    assert_eq!(j["buffers"]["all_returned"], true);
}

#[test]
fn pod_addresses_land_on_the_exception_interfaces() {
    if !is_root() {
        drivers::skip_test!("needs root (network namespaces, veth pairs, TAP interfaces)");
        return;
    }
    for tool in ["ping", "bash"] {
        if !have(tool) {
            drivers::skip_test!("{tool} is not installed (.ci/run installs it)");
            return;
        }
    }
    let mut lab = RouterLab::new("pa");
    one_run(&mut lab, true);
    // The interfaces went with the first run; a second start makes them
    // and their addresses again.
    let fp = lab.fp.name().to_string();
    assert!(!sh(&fp, "ip -o link show").contains("fp0"));
    one_run(&mut lab, false);
}

/// The env variable that tells the test it runs inside its namespace.
const INSIDE: &str = "FASTPATH_POD_ADDRESS_INSIDE";

#[test]
fn adding_an_address_twice_is_idempotent() {
    if std::env::var(INSIDE).is_err() {
        if !is_root() {
            drivers::skip_test!("needs root (a network namespace, a veth pair)");
            return;
        }
        let ns = TestNetns::new("pa-twice");
        ns.run_test_inside("adding_an_address_twice_is_idempotent", INSIDE);
        return;
    }
    // Inside the namespace.
    drivers::test_netns::ip(&["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
    let index: u32 = std::fs::read_to_string("/sys/class/net/d0/ifindex")
        .expect("d0's index")
        .trim()
        .parse()
        .expect("a number");
    let mut sock = RouteSocket::open().expect("rtnetlink");
    let a = "10.79.0.1/24".parse().unwrap();
    assert_eq!(
        add_address(&mut sock, "d0", IfIndex(index), a).unwrap(),
        Added::Added
    );
    assert_eq!(
        add_address(&mut sock, "d0", IfIndex(index), a).unwrap(),
        Added::AlreadyThere
    );
    let shown = drivers::test_netns::ip(&["-o", "addr", "show", "dev", "d0"]);
    assert_eq!(shown.matches("10.79.0.1/24").count(), 1, "{shown}");
    // An interface that does not exist: the kernel's refusal, named.
    let e = add_address(&mut sock, "gone0", IfIndex(u32::MAX), a).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("the kernel refused to add 10.79.0.1/24 to gone0: "),
        "{e}"
    );
}
