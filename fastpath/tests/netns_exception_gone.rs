//! An exception interface deleted under `fastpath run --mode l3`
//! (`ip link del fp0`), in network namespaces as root.
//!
//! Topology (`<p>` is this process's id; [`common::RouterLab`]):
//!
//! ```text
//!  eg-h1-<p>                 eg-fp-<p>                              eg-h2-<p>
//!  h1 10.78.1.2/24 ===veth=== p1 (AF_PACKET port 0)  p2 (port 1) ===veth=== h2 10.78.2.2/24
//!                               fp0 10.78.1.1/24      fp1 10.78.2.1/24
//! ```
//!
//! The hosts ping each other through the fast path; fp0 is deleted and
//! comes back (a new interface of that name). Then fp0 is deleted
//! and at once replaced by a veth interface of the same name, so the
//! fast path cannot make it again: the test sees the error line naming
//! fp0 and port 0, the failed attempts said, and the punts for port 0
//! (h1's pings to fp0's address) counted as `iface_gone` in the live
//! line. The veth deleted, fp0 comes back (a TAP, its MAC, MTU and link
//! as before); once its address is added again the hosts ping each other
//! and fp0's address. The final JSON counts every punt for port 0 under
//! exactly one outcome and every buffer back.
//!
//! Needs root; otherwise it says "skipped". Every wait is bounded, and the
//! namespaces are deleted on any exit.

mod common;

use common::{ping_once, sh, sh_output, wait_until, RouterLab};
use drivers::test_netns::is_root;
use std::fs::File;
use std::process::Stdio;
use std::time::Duration;

/// `ip -d link show fp0` in `ns`, or "" if there is none.
fn fp0_details(ns: &str) -> String {
    String::from_utf8_lossy(&sh_output(ns, "ip -d -o link show fp0").stdout).into_owned()
}

/// Deletes the TAP fp0 and puts a veth of that name in its place (any
/// interface that is not a TAP would do), again if the fast path made fp0
/// again in between the two commands.
fn replace_fp0_with_a_veth(ns: &str) {
    wait_until("a veth named fp0", Duration::from_secs(10), || {
        let _ = sh_output(
            ns,
            "ip link del fp0; ip link add fp0 type veth peer name fp0-peer",
        );
        fp0_details(ns).contains("veth")
    });
}

#[test]
fn a_deleted_exception_interface_comes_back() {
    if !is_root() {
        drivers::skip_test!("needs root (network namespaces, veth pairs, TAP interfaces)");
        return;
    }
    if !common::have("ping") {
        drivers::skip_test!("ping is not installed (.ci/run installs it)");
        return;
    }
    let mut lab = RouterLab::new("eg");
    let (fp, h1, h2) = (
        lab.fp.name().to_owned(),
        lab.h1.name().to_owned(),
        lab.h2.name().to_owned(),
    );
    let log_dir = tempfile::tempdir().expect("a temporary directory");
    let log_path = log_dir.path().join("stderr");
    let log = File::create(&log_path).expect("a log file");
    let child = lab
        .router(&["--stats-period", "500ms", "--json"])
        .env("RUST_LOG", "warn,fastpath::router::iface_recovery=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start fastpath");
    lab.fastpath = Some(child);
    let stderr = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let up = |ns: &str| fp0_details(ns).contains("UP,");
    wait_until("fp0 up", Duration::from_secs(20), || up(&fp));
    let before = fp0_details(&fp);
    let mac = sh(&fp, "cat /sys/class/net/fp0/address");
    let mtu = sh(&fp, "cat /sys/class/net/fp0/mtu");
    sh(
        &fp,
        "ip addr add 10.78.1.1/24 dev fp0 && ip addr add 10.78.2.1/24 dev fp1",
    );
    wait_until("h1 pings h2", Duration::from_secs(20), || {
        ping_once(&h1, "10.78.2.2")
    });

    // Gone: said, and made again within a housekeeping round or two.
    let ifindex = || sh(&fp, "cat /sys/class/net/fp0/ifindex 2>/dev/null || true");
    let first = ifindex();
    sh(&fp, "ip link del fp0");
    wait_until("fp0 made again", Duration::from_secs(10), || {
        let now = ifindex();
        !now.is_empty() && now != first && up(&fp)
    });
    wait_until("the first error line", Duration::from_secs(5), || {
        stderr().contains("port 0: exception interface fp0 was deleted under the fast path")
    });

    // Gone, and its name taken: the fast path says so and counts.
    replace_fp0_with_a_veth(&fp);
    wait_until("the error line", Duration::from_secs(10), || {
        stderr().contains(
            "port 0: exception interface fp0 was deleted under the fast path; what is punted for port 0 is dropped and counted as exception_iface_gone",
        )
    });
    wait_until("a failed attempt said", Duration::from_secs(10), || {
        stderr().contains("port 0: cannot make exception interface fp0 again (attempt")
    });
    // h1's pings to fp0's old address are punted for port 0, and dropped.
    wait_until(
        "iface_gone in the live line",
        Duration::from_secs(10),
        || {
            let _ = ping_once(&h1, "10.78.1.1");
            // The live line's exception part: "  exception: fp0(tap) punted 2 iface_gone 2 ...".
            stderr().lines().any(|l| {
                l.trim_start().starts_with("exception: fp0(tap)") && l.contains(" iface_gone ")
            })
        },
    );
    assert!(fp0_details(&fp).contains("veth"), "{}", stderr());

    // The name free again: fp0 comes back as it was.
    sh(&fp, "ip link del fp0");
    wait_until("fp0 back", Duration::from_secs(20), || {
        let d = fp0_details(&fp);
        d.contains("tun type tap") && d.contains("UP,")
    });
    // Said just after fp0 is up.
    wait_until(
        "the line saying fp0 is back",
        Duration::from_secs(5),
        || stderr().contains("port 0: exception interface fp0 is back (tap backend"),
    );
    assert!(!stderr().contains("gave up"), "{}", stderr());
    assert_eq!(
        stderr()
            .matches("exception interface fp0 was deleted")
            .count(),
        2,
        "{}",
        stderr()
    );
    assert_eq!(sh(&fp, "cat /sys/class/net/fp0/address"), mac);
    assert_eq!(sh(&fp, "cat /sys/class/net/fp0/mtu"), mtu);
    assert!(before.contains("tun type tap"), "{before}");

    // The operator gives it its address again; the mirror learns it.
    sh(&fp, "ip addr add 10.78.1.1/24 dev fp0");
    wait_until("h1 pings fp0 again", Duration::from_secs(20), || {
        ping_once(&h1, "10.78.1.1")
    });
    wait_until("h1 pings h2 again", Duration::from_secs(20), || {
        ping_once(&h1, "10.78.2.2")
    });
    assert!(ping_once(&h2, "10.78.1.2"));

    // Stop; the summary is on stdout, the log in its file.
    let mut child = lab.fastpath.take().expect("fastpath runs");
    common::kill(&child, "-INT");
    let status = common::exit_within(&mut child, Duration::from_secs(20), "SIGINT");
    let out = common::read_all(child.stdout.take());
    let err = stderr();
    assert!(status.success(), "fastpath exited {status}: {err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(j["buffers"]["all_returned"], true, "{j}");
    let exc = j["router"]["exception"]
        .as_array()
        .expect("exception ports");
    let port0 = &exc[0]["counters"];
    let n = |k: &str| port0[k].as_u64().unwrap_or(u64::MAX);
    assert!(n("iface_gone") > 0, "{port0}");
    assert_eq!(
        n("punted"),
        n("to_kernel") + n("rate_limited") + n("tap_full") + n("iface_gone"),
        "{port0}"
    );
    assert_eq!(exc[1]["counters"]["iface_gone"], 0, "{}", exc[1]);
    assert!(!err.contains("panicked"), "{err}");
    eprintln!("exception interface gone and back: {port0}");
}
