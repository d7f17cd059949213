//! The kernel mirror against a real kernel, in network namespaces of its
//! own: every `ip addr`, `ip route` (IPv4, IPv6, multipath), `ip neigh`
//! and `ip link` change on our interface reaches the mirror, deletions
//! too, an ARP reply the kernel learns as well; changes through an
//! interface that is not ours are ignored and counted. The time from the
//! `ip` command's return to the event is printed for each step.
//!
//! The test makes two namespaces: one for the mirror (interfaces `fp0`,
//! ours, and `other0`, not ours, each a veth) and one for the peers at
//! the other ends (so an ARP request from `fp0` gets a real reply). It then
//! runs itself inside the first (`ip netns exec NS <this test binary>
//! --exact <the same test>`, with FASTPATH_MIRROR_NETNS naming the
//! namespace), where the test finds itself in that namespace and runs its
//! body; the mirror's socket sees that namespace only. Needs root; without it the test says "skipped". The
//! namespaces (and with them the veths) are deleted when the test ends.

use drivers::test_netns::{ip, is_root, TestNetns};
use fastpath::mirror::{
    IgnoreReason, KernelEvent, KernelMirror, MirrorConfig, NeighState, ResyncReason, RouteKind,
    RoutePrefix,
};
use std::net::{IpAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

/// Set in the guest's environment to the namespace it must run in.
const GUEST_VAR: &str = "FASTPATH_MIRROR_NETNS";
/// The MAC of `fp0`'s peer, so the learned ARP entry can be checked.
const PEER_MAC: &str = "02:00:00:00:00:aa";
/// How long one change may take to reach the mirror before the test
/// fails: far above the milliseconds expected, for a loaded machine.
const DEADLINE: Duration = Duration::from_secs(5);

/// The namespaces, deleted on drop.
struct Namespaces {
    ours: TestNetns,
    peer: TestNetns,
}

impl Namespaces {
    fn new(tag: &str) -> Namespaces {
        let n = Namespaces {
            ours: TestNetns::new(&format!("fp-mirror-{tag}")),
            peer: TestNetns::new(&format!("fp-mirror-{tag}-peer")),
        };
        let (ours, peer) = (n.ours.name(), n.peer.name());
        for (name, peer_end, mac) in [
            ("fp0", "fp0p", PEER_MAC),
            ("other0", "other0p", "02:00:00:00:00:bb"),
        ] {
            ip(&[
                "-n", ours, "link", "add", name, "type", "veth", "peer", "name", peer_end,
                "address", mac, "netns", peer,
            ]);
            ip(&["-n", peer, "link", "set", peer_end, "up"]);
        }
        ip(&["-n", ours, "link", "set", "lo", "up"]);
        ip(&["-n", ours, "link", "set", "other0", "up"]);
        ip(&[
            "-n",
            ours,
            "addr",
            "add",
            "198.51.100.10/24",
            "dev",
            "other0",
        ]);
        ip(&["-n", peer, "addr", "add", "192.0.2.1/24", "dev", "fp0p"]);
        n
    }

    /// Runs the guest test `name` inside our namespace; panics if it fails.
    fn run_guest(&self, name: &str) {
        // A guest that did not recognise its namespace would make
        // namespaces again, and run again, without end.
        assert!(
            std::env::var_os(GUEST_VAR).is_none(),
            "the guest is not in the namespace it was started in (`ip netns identify`)"
        );
        let exe = std::env::current_exe().expect("the test binary");
        let out = Command::new("ip")
            .args(["netns", "exec", self.ours.name()])
            .arg(exe)
            .args([name, "--exact", "--nocapture", "--test-threads", "1"])
            .env(GUEST_VAR, self.ours.name())
            .output()
            .expect("ip netns exec");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("{stdout}{stderr}");
        assert!(out.status.success(), "the guest failed");
        assert!(stdout.contains("1 passed"), "the guest did not run");
    }
}

/// True if this process runs in the namespace the host side of the test
/// made for it (never in the host's namespace, so the body cannot change
/// the host's interfaces).
fn in_our_namespace() -> bool {
    let Ok(ns) = std::env::var(GUEST_VAR) else {
        return false;
    };
    Command::new("ip")
        .args(["netns", "identify"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == ns)
}

/// The mirror on a thread of its own, as the control thread would run it:
/// each event comes with the instant it was handed out.
struct Watcher {
    rx: mpsc::Receiver<(Instant, KernelEvent)>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<KernelMirror>>,
    /// Events seen while waiting for others, kept for later checks.
    seen: Vec<KernelEvent>,
}

impl Watcher {
    fn start(mut mirror: KernelMirror) -> Watcher {
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            let mut out = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                mirror
                    .wait(Duration::from_millis(20), &mut out)
                    .expect("mirror wait");
                let now = Instant::now();
                for ev in out.drain(..) {
                    let _ = tx.send((now, ev));
                }
            }
            mirror
        });
        Watcher {
            rx,
            stop,
            thread: Some(thread),
            seen: Vec::new(),
        }
    }

    /// Runs `ip ARGS`, then waits for an event `want` accepts; prints the
    /// delay from the command's start (an upper bound: it includes
    /// starting `ip`) and from its return (zero when the event came
    /// first: the kernel notifies before it acknowledges), and returns the
    /// first.
    fn step(&mut self, args: &[&str], what: &str, want: impl Fn(&KernelEvent) -> bool) -> Duration {
        let start = Instant::now();
        ip(args);
        let done = Instant::now();
        let (at, _) = self.expect(what, &want);
        let (from_start, from_return) = (
            at.saturating_duration_since(start),
            at.saturating_duration_since(done),
        );
        println!(
            "mirror: {what:<44} {:>8.3} ms from start, {:>8.3} ms from return",
            from_start.as_secs_f64() * 1e3,
            from_return.as_secs_f64() * 1e3
        );
        from_start
    }

    /// Waits for an event `want` accepts, keeping the others.
    fn expect(
        &mut self,
        what: &str,
        want: &impl Fn(&KernelEvent) -> bool,
    ) -> (Instant, KernelEvent) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((at, ev)) if want(&ev) => return (at, ev),
                Ok((_, ev)) => self.seen.push(ev),
                Err(_) => panic!("{what}: no event within {DEADLINE:?}; saw {:#?}", self.seen),
            }
        }
    }

    fn finish(mut self) -> (KernelMirror, Vec<KernelEvent>) {
        self.stop.store(true, Ordering::Relaxed);
        let mirror = self
            .thread
            .take()
            .expect("running")
            .join()
            .expect("mirror thread");
        self.seen.extend(self.rx.try_iter().map(|(_, ev)| ev));
        (mirror, self.seen)
    }
}

fn is_route(ev: &KernelEvent, add: bool, prefix: &str) -> bool {
    match ev {
        KernelEvent::RouteAdd(r) if add => r.prefix.to_string() == prefix,
        KernelEvent::RouteDel(r) if !add => r.prefix.to_string() == prefix,
        _ => false,
    }
}

fn gw(r: &fastpath::mirror::Route) -> Vec<(Option<String>, u16)> {
    r.next_hops
        .iter()
        .map(|h| (h.gateway.map(|g| g.to_string()), h.weight))
        .collect()
}

/// The gateways of a route, sorted (the kernel's order of IPv6 hops is
/// its own).
fn gateways(r: &fastpath::mirror::Route) -> Vec<String> {
    let mut g: Vec<String> = r
        .next_hops
        .iter()
        .filter_map(|h| h.gateway.map(|g| g.to_string()))
        .collect();
    g.sort();
    g
}

#[test]
fn the_mirror_follows_the_kernel_in_a_namespace() {
    if in_our_namespace() {
        return guest_follows_changes();
    }
    if !is_root() {
        drivers::skip_test!("needs root (CAP_NET_ADMIN for ip netns)");
        return;
    }
    let ns = Namespaces::new("live");
    ns.run_guest("the_mirror_follows_the_kernel_in_a_namespace");
}

/// The test's body, run inside the namespace.
fn guest_follows_changes() {
    let mut mirror = KernelMirror::open(&MirrorConfig::new(["fp0"])).expect("open the mirror");
    let mut initial = Vec::new();
    mirror.poll(&mut initial).expect("poll");
    // The dump: fp0 (down so far), and nothing of other0.
    let fp0 = match initial.as_slice() {
        [KernelEvent::Link(l)] => l.clone(),
        other => panic!("the dump should hold fp0 alone: {other:#?}"),
    };
    assert_eq!((fp0.name.as_str(), fp0.up, fp0.mtu), ("fp0", false, 1500));
    let fp0_index = fp0.ifindex;
    assert_eq!(mirror.ifindex("fp0"), Some(fp0_index));
    assert_eq!(mirror.ifindex("other0"), None);
    let foreign_at_start = mirror.counters().ignored(IgnoreReason::ForeignInterface);
    assert!(
        foreign_at_start >= 1,
        "other0's link and route were seen and ignored"
    );

    let mut w = Watcher::start(mirror);
    let mut latencies = Vec::new();
    let is_link = |up: bool, mtu: u32| move |ev: &KernelEvent| matches!(ev, KernelEvent::Link(l) if l.name == "fp0" && l.up == up && l.mtu == mtu);
    latencies.push(w.step(
        &["link", "set", "fp0", "up"],
        "link up",
        is_link(true, 1500),
    ));
    latencies.push(w.step(
        &["addr", "add", "192.0.2.10/24", "dev", "fp0"],
        "addr add 192.0.2.10/24",
        |ev| matches!(ev, KernelEvent::AddrAdd(a) if a.addr.to_string() == "192.0.2.10" && a.prefix_len == 24 && a.ifindex == fp0_index),
    ));
    // The kernel's own connected route for the new address.
    w.expect("the connected route", &|ev: &KernelEvent| {
        is_route(ev, true, "192.0.2.0/24")
    });
    latencies.push(w.step(
        &["addr", "add", "2001:db8::10/64", "dev", "fp0", "nodad"],
        "addr add 2001:db8::10/64",
        |ev| matches!(ev, KernelEvent::AddrAdd(a) if a.addr.to_string() == "2001:db8::10"),
    ));
    latencies.push(w.step(
        &["route", "add", "10.1.0.0/16", "via", "192.0.2.1"],
        "route add 10.1.0.0/16 via 192.0.2.1",
        |ev| {
            matches!(ev, KernelEvent::RouteAdd(r) if r.prefix.to_string() == "10.1.0.0/16"
            && r.kind == RouteKind::Unicast && gw(r) == [(Some("192.0.2.1".into()), 1)]
            && r.next_hops[0].ifindex == fp0_index)
        },
    ));
    latencies.push(w.step(
        &[
            "-6",
            "route",
            "add",
            "2001:db8:1::/48",
            "via",
            "2001:db8::1",
        ],
        "route add 2001:db8:1::/48 via 2001:db8::1",
        |ev| {
            matches!(ev, KernelEvent::RouteAdd(r) if r.prefix.to_string() == "2001:db8:1::/48"
            && gw(r) == [(Some("2001:db8::1".into()), 1)])
        },
    ));
    latencies.push(w.step(
        &[
            "route",
            "add",
            "10.3.0.0/16",
            "nexthop",
            "via",
            "192.0.2.1",
            "weight",
            "2",
            "nexthop",
            "via",
            "192.0.2.2",
        ],
        "route add 10.3.0.0/16 multipath",
        |ev| {
            matches!(ev, KernelEvent::RouteAdd(r) if r.prefix.to_string() == "10.3.0.0/16"
            && gw(r) == [(Some("192.0.2.1".into()), 2), (Some("192.0.2.2".into()), 1)])
        },
    ));
    latencies.push(w.step(
        &[
            "-6",
            "route",
            "add",
            "2001:db8:3::/48",
            "nexthop",
            "via",
            "2001:db8::1",
            "nexthop",
            "via",
            "2001:db8::2",
        ],
        "route add 2001:db8:3::/48 multipath",
        |ev| {
            matches!(ev, KernelEvent::RouteAdd(r) if r.prefix.to_string() == "2001:db8:3::/48"
            && gw(r) == [(Some("2001:db8::1".into()), 1), (Some("2001:db8::2".into()), 1)])
        },
    ));
    latencies.push(w.step(
        &["route", "add", "blackhole", "10.5.0.0/16"],
        "route add blackhole 10.5.0.0/16",
        |ev| {
            matches!(ev, KernelEvent::RouteAdd(r) if r.prefix.to_string() == "10.5.0.0/16"
            && r.kind == RouteKind::Blackhole && r.next_hops.is_empty())
        },
    ));
    // Of two routes to a prefix the lower metric is reported; deleting it
    // brings the other back.
    latencies.push(w.step(
        &["route", "add", "10.4.0.0/16", "via", "192.0.2.1", "metric", "100"],
        "route add 10.4.0.0/16 metric 100",
        |ev| matches!(ev, KernelEvent::RouteAdd(r) if r.prefix.to_string() == "10.4.0.0/16" && r.metric == 100),
    ));
    latencies.push(w.step(
        &["route", "add", "10.4.0.0/16", "via", "192.0.2.2", "metric", "50"],
        "route add 10.4.0.0/16 metric 50",
        |ev| matches!(ev, KernelEvent::RouteAdd(r) if r.prefix.to_string() == "10.4.0.0/16" && r.metric == 50),
    ));
    latencies.push(w.step(
        &["route", "del", "10.4.0.0/16", "via", "192.0.2.2", "metric", "50"],
        "route del 10.4.0.0/16 metric 50",
        |ev| matches!(ev, KernelEvent::RouteAdd(r) if r.prefix.to_string() == "10.4.0.0/16" && r.metric == 100),
    ));
    // IPv4: a route appended at the same metric waits behind the first,
    // and takes over when the first is deleted.
    latencies.push(w.step(
        &["route", "add", "10.9.0.0/16", "via", "192.0.2.1"],
        "route add 10.9.0.0/16 via 192.0.2.1",
        |ev| {
            matches!(ev, KernelEvent::RouteAdd(r) if r.prefix.to_string() == "10.9.0.0/16"
            && gw(r) == [(Some("192.0.2.1".into()), 1)])
        },
    ));
    ip(&["route", "append", "10.9.0.0/16", "via", "192.0.2.2"]);
    latencies.push(w.step(
        &["route", "add", "10.10.0.0/16", "via", "192.0.2.1"],
        "route add 10.10.0.0/16 (after an append)",
        |ev| is_route(ev, true, "10.10.0.0/16"),
    ));
    assert!(
        !w.seen.iter().any(|ev| ev.to_string().contains("10.9.0.0")),
        "an appended IPv4 route is not the one in force: {:#?}",
        w.seen
    );
    latencies.push(w.step(
        &["route", "del", "10.9.0.0/16", "via", "192.0.2.1"],
        "route del the first 10.9.0.0/16",
        |ev| {
            matches!(ev, KernelEvent::RouteAdd(r) if r.prefix.to_string() == "10.9.0.0/16"
            && gw(r) == [(Some("192.0.2.2".into()), 1)])
        },
    ));
    // IPv6 multipath: a next hop appended, then one removed.
    latencies.push(w.step(
        &[
            "-6",
            "route",
            "append",
            "2001:db8:3::/48",
            "via",
            "2001:db8::3",
        ],
        "route append a hop to 2001:db8:3::/48",
        |ev| {
            matches!(ev, KernelEvent::RouteAdd(r) if r.prefix.to_string() == "2001:db8:3::/48"
            && gateways(r) == ["2001:db8::1", "2001:db8::2", "2001:db8::3"])
        },
    ));
    latencies.push(w.step(
        &[
            "-6",
            "route",
            "del",
            "2001:db8:3::/48",
            "via",
            "2001:db8::1",
        ],
        "route del a hop of 2001:db8:3::/48",
        |ev| {
            matches!(ev, KernelEvent::RouteAdd(r) if r.prefix.to_string() == "2001:db8:3::/48"
            && gateways(r) == ["2001:db8::2", "2001:db8::3"])
        },
    ));
    // Through other0: ignored. The next step's event proves the mirror
    // has read past it.
    ip(&["route", "add", "10.2.0.0/16", "via", "198.51.100.1"]);
    latencies.push(w.step(
        &[
            "neigh",
            "add",
            "192.0.2.5",
            "lladdr",
            "02:00:00:00:00:05",
            "dev",
            "fp0",
            "nud",
            "permanent",
        ],
        "neigh add 192.0.2.5 permanent",
        |ev| {
            matches!(ev, KernelEvent::NeighAdd(n) if n.ip.to_string() == "192.0.2.5"
            && n.state == NeighState::Permanent
            && n.mac.map(|m| m.to_string()).as_deref() == Some("02:00:00:00:00:05"))
        },
    ));
    latencies.push(w.step(
        &["neigh", "del", "192.0.2.5", "dev", "fp0"],
        "neigh del 192.0.2.5",
        |ev| matches!(ev, KernelEvent::NeighDel(n) if n.ip.to_string() == "192.0.2.5"),
    ));
    // An ARP reply the kernel learns: a datagram to the peer makes the
    // kernel resolve it over fp0.
    let sent = Instant::now();
    UdpSocket::bind("192.0.2.10:0")
        .and_then(|s| s.send_to(b"arp me", "192.0.2.1:9"))
        .expect("send a datagram to the peer");
    let (at, _) = w.expect("the learned ARP entry", &|ev: &KernelEvent| {
        matches!(ev, KernelEvent::NeighAdd(n) if n.ip == IpAddr::from([192, 0, 2, 1])
            && n.state == NeighState::Reachable
            && n.mac.map(|m| m.to_string()).as_deref() == Some(PEER_MAC))
    });
    println!(
        "mirror: {:<44} {:>8.3} ms (send to event, ARP exchange included)",
        "ARP reply learned",
        at.saturating_duration_since(sent).as_secs_f64() * 1e3
    );
    latencies.push(w.step(
        &["route", "del", "10.1.0.0/16"],
        "route del 10.1.0.0/16",
        |ev| is_route(ev, false, "10.1.0.0/16"),
    ));
    latencies.push(w.step(
        &["-6", "route", "del", "2001:db8:1::/48"],
        "route del 2001:db8:1::/48",
        |ev| is_route(ev, false, "2001:db8:1::/48"),
    ));
    latencies.push(w.step(
        &["addr", "del", "2001:db8::10/64", "dev", "fp0"],
        "addr del 2001:db8::10/64",
        |ev| matches!(ev, KernelEvent::AddrDel(a) if a.addr.to_string() == "2001:db8::10"),
    ));
    latencies.push(w.step(
        &["link", "set", "fp0", "mtu", "1400"],
        "link mtu 1400",
        is_link(true, 1400),
    ));
    // Down: the kernel drops the IPv4 routes through fp0 without a
    // message each; the mirror's resync reports them gone.
    let done = Instant::now();
    ip(&["link", "set", "fp0", "down"]);
    let (link_at, _) = w.expect("link down", &is_link(false, 1400));
    let (gone_at, _) = w.expect("IPv4 routes gone with the link", &|ev: &KernelEvent| {
        is_route(ev, false, "10.3.0.0/16")
    });
    for (what, at) in [
        ("link down", link_at),
        ("route 10.3.0.0/16 gone (resync)", gone_at),
    ] {
        let latency = at.saturating_duration_since(done);
        println!(
            "mirror: {what:<44} {:>8.3} ms from start",
            latency.as_secs_f64() * 1e3
        );
        latencies.push(latency);
    }
    latencies.push(w.step(
        &["link", "set", "fp0", "up"],
        "link up again",
        is_link(true, 1400),
    ));
    latencies.push(w.step(
        &["route", "add", "10.6.0.0/16", "via", "192.0.2.1"],
        "route add 10.6.0.0/16 after the resync",
        |ev| is_route(ev, true, "10.6.0.0/16"),
    ));

    let (mirror, seen) = w.finish();
    let c = mirror.counters();
    println!("mirror: {c}");
    assert!(
        !seen
            .iter()
            .chain(&initial)
            .any(|ev| ev.to_string().contains("10.2.0.0")),
        "the route through other0 was reported"
    );
    assert!(
        c.ignored(IgnoreReason::ForeignInterface) > foreign_at_start,
        "the route through other0 was not counted: {c}"
    );
    assert!(
        c.ignored(IgnoreReason::OtherTable) > 0,
        "local-table routes: {c}"
    );
    assert!(c.resyncs(ResyncReason::LinkChange) >= 1, "{c}");
    assert_eq!(c.resyncs(ResyncReason::Overrun), 0, "{c}");
    // The view now: fp0 up at MTU 1400, 192.0.2.10 only (IPv6 addresses
    // go with the link going down), and the routes added since it came up.
    let state = mirror.state();
    let link = state.link(fp0_index).expect("fp0");
    assert_eq!((link.up, link.mtu), (true, 1400));
    let routes: Vec<String> = state.routes().map(|r| r.prefix.to_string()).collect();
    assert!(routes.contains(&"10.6.0.0/16".to_owned()), "{routes:?}");
    assert!(routes.contains(&"192.0.2.0/24".to_owned()), "{routes:?}");
    assert!(!routes.contains(&"10.3.0.0/16".to_owned()), "{routes:?}");
    assert!(state.addrs().all(|a| a.ifindex == fp0_index));
    let worst = latencies.iter().max().copied().unwrap_or_default();
    println!(
        "mirror: {} changes, worst {:.3} ms from the ip command's start",
        latencies.len(),
        worst.as_secs_f64() * 1e3
    );
}

#[test]
fn the_mirror_resyncs_after_losing_events() {
    if in_our_namespace() {
        return guest_recovers_from_an_overrun();
    }
    if !is_root() {
        drivers::skip_test!("needs root (CAP_NET_ADMIN for ip netns)");
        return;
    }
    let ns = Namespaces::new("overrun");
    ns.run_guest("the_mirror_resyncs_after_losing_events");
}

/// Routes of the overrun test: 10.(100 + i / 256).(i % 256).0/24.
fn batch_route(i: u32) -> String {
    format!("10.{}.{}.0/24", 100 + i / 256, i % 256)
}

/// Runs `ip -batch` on `lines`.
fn ip_batch(lines: impl Iterator<Item = String>) {
    let path = std::env::temp_dir().join(format!("fp-mirror-batch-{}", std::process::id()));
    std::fs::write(&path, lines.collect::<Vec<_>>().join("\n") + "\n").expect("write the batch");
    let path_str = path.to_string_lossy().into_owned();
    ip(&["-batch", &path_str]);
    let _ = std::fs::remove_file(&path);
}

/// A consumer's IPv4 route table, built from the events alone (IPv6
/// brings fe80::/64 and its timing is the kernel's).
fn apply_routes(table: &mut std::collections::BTreeSet<String>, events: &[KernelEvent]) {
    for ev in events {
        match ev {
            KernelEvent::RouteAdd(r) if matches!(r.prefix, RoutePrefix::V4(_)) => {
                table.insert(r.prefix.to_string());
            }
            KernelEvent::RouteDel(r) if matches!(r.prefix, RoutePrefix::V4(_)) => {
                table.remove(&r.prefix.to_string());
            }
            _ => {}
        }
    }
}

/// The test's body, run inside the namespace.
fn guest_recovers_from_an_overrun() {
    const ROUTES: u32 = 3000;
    ip(&["link", "set", "fp0", "up"]);
    ip(&["addr", "add", "192.0.2.10/24", "dev", "fp0"]);
    // The smallest queue the kernel allows, so a burst overflows it.
    let mut config = MirrorConfig::new(["fp0"]);
    config.event_queue = 0;
    let mut mirror = KernelMirror::open(&config).expect("open the mirror");
    let mut events = Vec::new();
    mirror.poll(&mut events).expect("poll");
    let mut table = std::collections::BTreeSet::new();
    apply_routes(&mut table, &events);
    assert_eq!(table.len(), 1, "the connected route: {table:?}");

    // Thousands of changes while nobody reads: the queue overflows.
    ip_batch((0..ROUTES).map(|i| format!("route add {} via 192.0.2.1", batch_route(i))));
    ip_batch((0..100).map(|i| format!("route add 10.99.{i}.0/24 via 198.51.100.1")));
    let settle = |mirror: &mut KernelMirror, table: &mut std::collections::BTreeSet<String>| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut events = Vec::new();
            mirror
                .wait(Duration::from_millis(50), &mut events)
                .expect("wait");
            apply_routes(table, &events);
            if events.is_empty() || Instant::now() > deadline {
                break;
            }
        }
    };
    settle(&mut mirror, &mut table);
    let c = mirror.counters().clone();
    println!("mirror: queue {} bytes; {c}", mirror.event_queue_bytes());
    assert!(
        c.resyncs(ResyncReason::Overrun) >= 1,
        "no overrun seen: {c}"
    );
    let want: std::collections::BTreeSet<String> = (0..ROUTES)
        .map(batch_route)
        .chain(["192.0.2.0/24".to_owned()])
        .collect();
    assert_eq!(table, want, "the consumer's table after the resync");

    // And deletions lost the same way.
    ip_batch((0..ROUTES / 2).map(|i| format!("route del {}", batch_route(i))));
    settle(&mut mirror, &mut table);
    let want: std::collections::BTreeSet<String> = (ROUTES / 2..ROUTES)
        .map(batch_route)
        .chain(["192.0.2.0/24".to_owned()])
        .collect();
    assert_eq!(table, want, "the consumer's table after the deletions");
    assert!(mirror.counters().resyncs(ResyncReason::Overrun) > c.resyncs(ResyncReason::Overrun));
    let v4 = mirror
        .state()
        .routes()
        .filter(|r| matches!(r.prefix, RoutePrefix::V4(_)))
        .count();
    assert_eq!(v4, want.len(), "the mirror's own view");
}
