//! The exception interface's plain TAP backend against the real kernel, in
//! a network namespace of its own.
//!
//! The outer test makes the namespace and re-runs this binary inside it
//! (`ip netns exec NS <this binary> --exact tap_exception_interface_in_a_namespace` with an environment variable set):
//! the inner test creates a two-queue TAP with a chosen MAC and MTU, gives
//! it an address, and plays the fast path's side: the kernel's ARP request
//! for a neighbour is read and answered, the kernel's neighbour table then
//! shows the answer, UDP datagrams go both ways payload-checked, MAC, MTU
//! and link state are seen by `ip link`, a frame larger than a buffer is
//! dropped and counted, a TAP deleted under us (`ip link del`) is seen as
//! no longer attached and can be made again, and the TAP is gone once
//! dropped. A second test
//! checks that without CAP_NET_ADMIN opening is a typed error.
//!
//! Needs root for the namespace; without it the first test says
//! "skipped".

mod exception_common;

use drivers::burst::Burst;
use drivers::exception::{
    BackendChoice, ExceptionBackend, ExceptionConfig, ExceptionError, ExceptionIface,
};
use drivers::mbuf::PortId;
use drivers::memory::MemoryBacking;
use drivers::net::MacAddr;
use drivers::pool::{Pool, PoolConfig};
use drivers::test_netns::{is_root, TestNetns};
use exception_common::*;
use std::process::Command;

const IFNAME: &str = "fpx0";
const MAC2: MacAddr = MacAddr([0x02, 0, 0, 0, 0xe0, 0x03]);
const ROUNDS: u32 = 200;
const INNER_ENV: &str = "FASTPATH_EXC_INNER";

#[test]
fn tap_exception_interface_in_a_namespace() {
    if std::env::var_os(INNER_ENV).is_some() {
        inner_tap_exchange();
        return;
    }
    if !is_root() {
        drivers::skip_test!("a network namespace and a TAP need root");
        return;
    }
    let ns = TestNetns::new("fastpath-exc");
    ns.run_test_inside("tap_exception_interface_in_a_namespace", INNER_ENV);
}

/// Opening without CAP_NET_ADMIN: as root, this binary is re-run as
/// nobody with no capabilities; otherwise the test is already
/// unprivileged.
#[test]
fn unprivileged_open_is_a_typed_error() {
    if is_root() {
        let exe = std::env::current_exe().expect("test binary path");
        let out = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
            ])
            .arg(exe)
            .args([
                "--exact",
                "unprivileged_open_is_a_typed_error",
                "--nocapture",
            ])
            .output()
            .expect("setpriv (util-linux)");
        // Printed through libtest's capture, so the inner run's own
        // `test result:` line stays out of the suite's tally.
        let stdout = String::from_utf8_lossy(&out.stdout);
        eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            out.status.success(),
            "unprivileged run failed: {}",
            out.status
        );
        assert!(
            stdout.contains("1 passed"),
            "the unprivileged run did not run the test"
        );
        return;
    }
    let mut cfg = ExceptionConfig::new("fpx-unpriv", PortId(0), OUR_MAC);
    cfg.backend = BackendChoice::Tap;
    match ExceptionIface::open(&cfg) {
        Err(ExceptionError::NotPermitted { op, .. }) => assert_eq!(op, "TUNSETIFF"),
        Err(ExceptionError::NoTun { .. }) => {
            drivers::skip_test!("no usable /dev/net/tun to be refused by");
        }
        Err(e) => panic!("expected NotPermitted, got {e}"),
        Ok(_) => panic!("an unprivileged process created a TAP"),
    }
    // vhost-net asked for explicitly, where it cannot be opened.
    cfg.backend = BackendChoice::VhostNet;
    cfg.vhost_path = "/nonexistent/vhost-net".into();
    assert!(matches!(
        ExceptionIface::open(&cfg),
        Err(ExceptionError::VhostUnavailable { .. })
    ));
}

/// The part run inside the namespace.
fn inner_tap_exchange() {
    assert!(
        std::env::var_os(INNER_ENV).is_some(),
        "run by tap_exception_interface_in_a_namespace"
    );
    let mut cfg = ExceptionConfig::new(IFNAME, PortId(3), OUR_MAC);
    cfg.queues = 2;
    cfg.backend = BackendChoice::Auto;
    cfg.vhost_path = "/nonexistent/vhost-net".into();
    let (iface, queues) = ExceptionIface::open(&cfg).expect("open the TAP");
    assert_eq!(iface.backend(), ExceptionBackend::Tap);
    assert_eq!(iface.queue_count(), 2);
    assert!(!iface.is_up().unwrap());

    // MAC, MTU and link state as `ip link` sees them.
    let shown = ip(&["-o", "link", "show", "dev", IFNAME]);
    assert!(shown.contains(&format!("link/ether {OUR_MAC}")), "{shown}");
    assert!(shown.contains("mtu 1500"), "{shown}");
    assert!(!link_flags(IFNAME).iter().any(|f| f == "UP"), "{shown}");
    iface.set_mac(MAC2).unwrap();
    assert!(ip(&["-o", "link", "show", "dev", IFNAME]).contains(&format!("link/ether {MAC2}")));
    iface.set_mac(OUR_MAC).unwrap();
    // No IPv6: fewer of the kernel's own frames to skip.
    let _ = std::fs::write(
        format!("/proc/sys/net/ipv6/conf/{IFNAME}/disable_ipv6"),
        "1",
    );
    iface.set_link(true).unwrap();
    assert!(iface.is_up().unwrap());
    assert!(link_flags(IFNAME).iter().any(|f| f == "UP"));
    ip(&["addr", "add", &format!("{KERNEL_IP}/24"), "dev", IFNAME]);

    let pool =
        Pool::new(&PoolConfig::new("exc-tap", 1024).with_backing(MemoryBacking::NoHuge)).unwrap();
    let data_room = pool.data_room();
    let mut side = Side {
        queues,
        cache: pool.cache(),
        got: Burst::new(),
    };
    let (sock, _kport, peer) = kernel_socket();
    resolve_peer(&mut side, &sock, IFNAME);
    exchange(&mut side, &sock, 1..=ROUNDS, |seq| {
        1 + (seq as usize * 37) % 1400
    });
    let s = iface.stats();
    // The ARP reply, then one datagram per round.
    assert_eq!(s.to_kernel, u64::from(ROUNDS) + 1);
    assert!(s.from_kernel > u64::from(ROUNDS), "{s:?}");
    assert_eq!(s.rx_too_large, 0);

    // A frame longer than a buffer: dropped and counted, and the next one
    // still comes.
    iface.set_mtu(9000).unwrap();
    assert!(ip(&["-o", "link", "show", "dev", IFNAME]).contains("mtu 9000"));
    let big = payload(9999, data_room + 100);
    sock.send_to(&big, peer).unwrap();
    let small = payload(10_000, 64);
    sock.send_to(&small, peer).unwrap();
    assert!(side.read_until(|f| udp_to_peer(f) == Some(&small[..])));
    assert_eq!(iface.stats().rx_too_large, 1);
    assert!(iface.xstats().contains(&("from_kernel_too_large", 1)));

    iface.set_link(false).unwrap();
    assert!(!link_flags(IFNAME).iter().any(|f| f == "UP"));
    assert!(!iface.is_up().unwrap());

    // Deleted under us: the queues stay open on nothing, and the
    // interface says so; a new TAP of the same name can be made at once.
    assert!(iface.attached().unwrap());
    ip(&["link", "del", IFNAME]);
    assert!(
        !iface.attached().unwrap(),
        "{IFNAME} deleted, still attached"
    );
    let (again, again_q) = ExceptionIface::open(&cfg).expect("a new TAP of the same name");
    assert!(again.attached().unwrap());
    assert!(
        !iface.attached().unwrap(),
        "the old queues joined the new TAP"
    );
    drop((again, again_q));

    // Every buffer back; the TAP goes with the interface and its queues.
    drop(side);
    assert_eq!(pool.available(), pool.count(), "every buffer back");
    drop(iface);

    // A vhost-net device that opens but cannot serve (/dev/null takes no
    // vhost call): automatic choice falls back to plain TAP, an explicit
    // one is an error naming the failed call.
    let mut cfg = ExceptionConfig::new("fpx1", PortId(4), OUR_MAC);
    cfg.vhost_path = "/dev/null".into();
    let (iface1, _q) = ExceptionIface::open(&cfg).expect("automatic fallback");
    assert_eq!(iface1.backend(), ExceptionBackend::Tap);
    assert!(iface1.vhost_negotiated().is_none());
    drop((iface1, _q));
    cfg.backend = BackendChoice::VhostNet;
    let err = ExceptionIface::open(&cfg).unwrap_err();
    assert!(
        matches!(&err, ExceptionError::Vhost { queue: 0, .. })
            && err.to_string().contains("VHOST_SET_OWNER"),
        "{err}"
    );

    let gone = Command::new("ip")
        .args(["link", "show", "dev", IFNAME])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "{IFNAME} still exists");
}
