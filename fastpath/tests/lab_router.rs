//! The router in the VM lab (scripts/vmlab/), with its exception path on
//! vhost-net (the guest has /dev/vhost-net): `fastpath run --mode l3
//! --ports $VF0,$VF2 --exception vhost-net` between two hosts that are the
//! guest's kernel netdevs of the same igb NIC, each in a namespace of its
//! own.
//!
//! ```text
//!  h1: VF1 (igbvf)                fastpath (root namespace)               h2: PF (igb)
//!  10.71.1.2/24    --switch-->  VF0 = port 0 | fp0 10.71.1.1/24
//!  2001:db8:71:1::2/64                       |     2001:db8:71:1::1/64
//!                                            | fp1 10.71.2.1/24
//!                               VF2 = port 1 |     2001:db8:71:2::1/64 --switch-->  10.71.2.2/24
//!                                                                     2001:db8:71:2::2/64
//! ```
//!
//! The igb model's embedded switch (docs/facts/nic-facts-igbvf.md C.10.1)
//! runs every transmitted frame through its receive pool selection:
//! unicast to a MAC in one of its RAR entries goes to that pool only (VF1's
//! frames to fp0's MAC reach VF0 alone, VF2's to the PF's MAC reach the PF
//! alone); broadcast goes to every pool (an ARP request from h1 reaches
//! VF0, VF2 and the PF). So the two "links" share one broadcast domain:
//! fp0 and fp1 answer ARP only for their own addresses (arp_ignore 1),
//! or fp1 would answer h1's request for 10.71.1.1 with VF2's MAC.
//!
//! Checks, in order: h1 pings fp0's address (ARP and ICMP through the
//! exception path); h1 pings h2 through the fast path (the next hop
//! resolved by the kernel over the exception path, then every echo and
//! reply forwarded); a UDP flow h1 -> h2 arrives whole and in order while
//! the kernel's exception interfaces and IP forwarding counters move by at
//! most a few (the kernel did not forward it, the workers did); a probe
//! with TTL 1 gets an ICMP time-exceeded from 10.71.1.1 (traceroute); the
//! same over IPv6 (h1 pings fp0 and h2, the router's kernel resolving the
//! hosts by ND over the exception path; hop limit 1 gets time-exceeded
//! from 2001:db8:71:1::1); the statistics name vhost-net as both ports'
//! backend; and at the end every buffer is back and fastpath exits 0.
//!
//! ND both ways: the model delivers multicast to a VF's pool only when
//! the multicast table has the address's hash and the pool has VMOLR.ROMPE,
//! which the Linux PF sets for a VF that sent SET_MULTICAST. The router
//! gives each port the groups its exception interface joined, read from
//! /proc/net/dev_mcast (fastpath/src/router/multicast_sync.rs), so the
//! hosts' neighbour solicitations for fp0's and fp1's addresses, added
//! after the start, reach VF0 and VF2 (before that feature, h1's entry for
//! fp0 stayed INCOMPLETE and each host was given its router's link
//! address by hand).
//!
//! The hosts run their traffic through busybox (`ping`, `traceroute`) and
//! through this test binary run again inside a namespace (`ip netns exec
//! h1 <this binary> --exact <this test>` with LAB_ROUTER_ACTION set: a UDP
//! sender or receiver).
//!
//! It exists only in the lab's build and fails outside the lab
//! (FASTPATH_LAB unset). It needs FASTPATH_LAB_VF0 and FASTPATH_LAB_VF2
//! (on vfio-pci), FASTPATH_LAB_PF_NETDEV, FASTPATH_LAB_VF1_NETDEV,
//! FASTPATH_LAB_IP (iproute2 with `netns`), hugepages, /dev/vhost-net,
//! root, and the `fastpath` binary on PATH (run.sh puts it in /bin).

// The lab tests exist only in the VM lab's build (scripts/vmlab/build-tests.sh
// passes --cfg fastpath_lab): on a host they would have nothing to test.
#![cfg(fastpath_lab)]

use drivers::test_netns::ip;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, UdpSocket};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A line on the console whether the test passes or not: written to the
/// process's stdout directly, past the test harness's output capture.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

/// This test's name, for running it again inside a namespace.
const TEST: &str = "lab_router_routes_between_two_hosts_over_vhost_net";
/// Set in a run inside a namespace: what to do there (see [`inside`]).
const ACTION: &str = "LAB_ROUTER_ACTION";
/// Marks the lines a run inside a namespace reports with.
const REPORT: &str = "LABR ";

const H1_NS: &str = "h1";
const H2_NS: &str = "h2";
const FP0_ADDR: Ipv4Addr = Ipv4Addr::new(10, 71, 1, 1);
const H1_ADDR: Ipv4Addr = Ipv4Addr::new(10, 71, 1, 2);
const FP1_ADDR: Ipv4Addr = Ipv4Addr::new(10, 71, 2, 1);
const H2_ADDR: Ipv4Addr = Ipv4Addr::new(10, 71, 2, 2);
const PREFIX_LEN: u8 = 24;
const FP0_ADDR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x71, 1, 0, 0, 0, 1);
const H1_ADDR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x71, 1, 0, 0, 0, 2);
const FP1_ADDR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x71, 2, 0, 0, 0, 1);
const H2_ADDR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x71, 2, 0, 0, 0, 2);
const PREFIX_LEN6: u8 = 64;
/// IPv6 forwarding of every interface (the router's namespace).
const FORWARD6: &str = "/proc/sys/net/ipv6/conf/all/forwarding";
/// The UDP flow's destination port on h2.
const UDP_PORT: u16 = 7071;
/// Datagrams in the UDP flow: modest, as TCG is slow, and well below the
/// receive rings (VF0's 512 descriptors, the PF's) in case a consumer
/// stalls for a while.
const UDP_COUNT: u32 = 200;
/// Pause between two datagrams: keeps the receiving socket's buffer from
/// filling while the one vCPU is busy elsewhere.
const UDP_GAP: Duration = Duration::from_millis(2);
/// Echo requests h1 sends to h2 once the path works, each answered.
const PINGS: u32 = 10;
/// Frames the kernel may still see on its exception interfaces during the
/// UDP flow (an ARP refresh of a neighbour going stale, IPv6 router or
/// multicast listener chatter, which reaches the VFs since their
/// multicast lists follow the exception interfaces' groups: CI saw 10):
/// the flow itself is 200 datagrams, so a tenth of it cannot be it; and
/// the kernel forwards none of it (`KERNEL_FORWARD_SLACK`).
const KERNEL_SLACK: u64 = UDP_COUNT as u64 / 10;
/// Packets of the flow the kernel may forward meanwhile: it must not be
/// forwarding the flow.
const KERNEL_FORWARD_SLACK: u64 = 8;
/// How long a path may take to work at all (fastpath's start-up, ARP,
/// the mirror): only a bound on a hang.
const READY: Duration = Duration::from_secs(60);
/// A receiver that sees nothing for this long has seen all it will.
const IDLE: Duration = Duration::from_secs(20);
/// fastpath's --duration: only a bound in case the test dies before it
/// stops fastpath (SIGTERM) itself.
const DURATION: &str = "600";

/// The full iproute2 (`netns` support; [`ip`] runs it too); the guest's
/// busybox `ip` has none.
fn ip_bin() -> String {
    std::env::var("FASTPATH_LAB_IP").unwrap_or_else(|_| "ip".into())
}

/// `ip netns exec NS PROGRAM ARGS`, its output (success or not).
fn in_ns(ns: &str, program: &str, args: &[&str]) -> Output {
    Command::new(ip_bin())
        .args(["netns", "exec", ns, program])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ip netns exec {ns} {program}: {e}"))
}

fn carrier(dev: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{dev}/carrier")).is_ok_and(|c| c.trim() == "1")
}

fn wait_carrier(devs: &[&str]) {
    let t = Instant::now();
    while !devs.iter().all(|d| carrier(d)) && t.elapsed() < READY {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        devs.iter().all(|d| carrier(d)),
        "no carrier on all of {devs:?} after {READY:?}"
    );
}

fn netdev_counter(dev: &str, name: &str) -> u64 {
    let p = format!("/sys/class/net/{dev}/statistics/{name}");
    let s = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
    s.trim().parse().unwrap_or_else(|_| panic!("{p}: {s:?}"))
}

/// A counter of /proc/net/snmp (`Ip` `ForwDatagrams`, ...) as text: the
/// header line names the fields, the next line holds their values.
fn snmp_counter(snmp: &str, group: &str, field: &str) -> u64 {
    let prefix = format!("{group}:");
    let mut lines = snmp.lines().filter(|l| l.starts_with(&prefix));
    let (names, values) = (lines.next(), lines.next());
    let (Some(names), Some(values)) = (names, values) else {
        panic!("no {group} lines in /proc/net/snmp:\n{snmp}");
    };
    let i = names
        .split_whitespace()
        .position(|n| n == field)
        .unwrap_or_else(|| panic!("no {group} {field} in {names}"));
    values
        .split_whitespace()
        .nth(i)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {group} {field} value in {values}"))
}

/// The root namespace's /proc/net/snmp (the test runs there).
fn root_snmp() -> String {
    std::fs::read_to_string("/proc/net/snmp").expect("/proc/net/snmp")
}

/// A namespace's /proc/net/snmp.
fn ns_snmp(ns: &str) -> String {
    let out = in_ns(ns, "cat", &["/proc/net/snmp"]);
    assert!(out.status.success(), "cat /proc/net/snmp in {ns}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write_sysctl(path: &str, value: &str) {
    std::fs::write(path, value).unwrap_or_else(|e| panic!("write {value} to {path}: {e}"));
}

/// A sysctl set for the test, its old value written back on drop.
struct Sysctl {
    path: &'static str,
    old: String,
}

impl Sysctl {
    fn set(path: &'static str, value: &str) -> Sysctl {
        let old = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        write_sysctl(path, value);
        Sysctl {
            path,
            old: old.trim().to_owned(),
        }
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        let _ = std::fs::write(self.path, &self.old);
    }
}

/// One host: a kernel netdev of the NIC moved into a namespace of its own,
/// with an address and a default route through the router. Dropped, the
/// netdev goes back to the root namespace, up (the later lab tests find
/// it as /init left it), and the namespace is deleted.
struct Host {
    ns: &'static str,
    dev: String,
}

impl Host {
    fn new(ns: &'static str, dev: &str, addr: Ipv4Addr, gateway: Ipv4Addr) -> Host {
        // `ip netns add` makes /run/netns but not /run, which the guest's
        // initramfs lacks.
        std::fs::create_dir_all("/run/netns").expect("mkdir /run/netns");
        ip(&["netns", "add", ns]);
        let host = Host {
            ns,
            dev: dev.to_owned(),
        };
        ip(&["link", "set", dev, "netns", ns]);
        let cidr = format!("{addr}/{PREFIX_LEN}");
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        ip(&["-n", ns, "addr", "add", &cidr, "dev", dev]);
        ip(&["-n", ns, "link", "set", dev, "up"]);
        ip(&[
            "-n",
            ns,
            "route",
            "add",
            "default",
            "via",
            &gateway.to_string(),
        ]);
        host
    }

    /// `ping` from this host: (transmitted, received) and the output.
    fn ping(&self, dst: impl Into<IpAddr>, args: &[&str]) -> (u32, u32, String) {
        let dst: IpAddr = dst.into();
        let mut a: Vec<&str> = args.to_vec();
        if dst.is_ipv6() {
            a.push("-6");
        }
        let dst = dst.to_string();
        a.push(&dst);
        let out = in_ns(self.ns, "ping", &a);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // "N packets transmitted, M packets received, ..."
        let counts = text
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .map(|l| {
                let mut n = l.split_whitespace().filter_map(|w| w.parse::<u32>().ok());
                (n.next().unwrap_or(0), n.next().unwrap_or(0))
            })
            .unwrap_or((0, 0));
        (counts.0, counts.1, text)
    }

    /// Pings `dst` once at a time until one is answered; how many were
    /// sent. The first ones may go unanswered while ARP resolves.
    fn ping_until_answered(&self, dst: impl Into<IpAddr>) -> u32 {
        let dst: IpAddr = dst.into();
        let t = Instant::now();
        let mut sent = 0;
        let mut last = String::new();
        while t.elapsed() < READY {
            let (tx, rx, text) = self.ping(dst, &["-c", "1", "-W", "3"]);
            sent += tx;
            if rx > 0 {
                return sent;
            }
            last = text;
        }
        panic!(
            "{} ({}): no answer from {dst} in {READY:?} ({sent} pings); last ping said:\n{last}",
            self.ns, self.dev
        );
    }

    /// The link address the host's kernel has for `addr`, if any.
    fn neighbour(&self, addr: impl Into<IpAddr>) -> Option<String> {
        neighbour(&["-n", self.ns], addr)
    }

    fn mac(&self) -> String {
        let out = ip(&["-n", self.ns, "-o", "link", "show", "dev", &self.dev]);
        out.split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .unwrap_or_else(|| panic!("no MAC in {out}"))
            .to_owned()
    }

    /// Adds the host's IPv6 address and default route. The router's link
    /// address is learnt by ND: the host's solicitation goes to the
    /// solicited-node group of the router's address, which fp0/fp1 joined
    /// when the address was added (after fastpath started), and which the
    /// router gave its port (SET_MULTICAST), so the igb model delivers it.
    fn add_ipv6(&self, addr: Ipv6Addr, gateway: Ipv6Addr) {
        let (cidr, gw) = (format!("{addr}/{PREFIX_LEN6}"), gateway.to_string());
        let ns = self.ns;
        ip(&[
            "-n", ns, "-6", "addr", "add", &cidr, "dev", &self.dev, "nodad",
        ]);
        // `replace`: the hosts may have a default route already, from the
        // router advertisements of QEMU's user network behind the PF.
        ip(&["-n", ns, "-6", "route", "replace", "default", "via", &gw]);
    }

    /// Runs this test binary inside the namespace with `action`.
    fn run_action(&self, action: &str) -> Command {
        let exe = std::env::current_exe().expect("test binary path");
        let mut c = Command::new(ip_bin());
        c.args(["netns", "exec", self.ns])
            .arg(exe)
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(ACTION, action);
        c
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let ip = ip_bin();
        let quiet = |args: &[&str]| {
            let _ = Command::new(&ip).args(args).output();
        };
        quiet(&["-n", self.ns, "link", "set", &self.dev, "down"]);
        quiet(&["-n", self.ns, "addr", "flush", "dev", &self.dev]);
        // PID 1's namespace: the root one, where /init set the netdev up.
        quiet(&["-n", self.ns, "link", "set", &self.dev, "netns", "1"]);
        quiet(&["netns", "del", self.ns]);
        quiet(&["link", "set", &self.dev, "up"]);
    }
}

/// The `lladdr` of `addr` in `ip [ns] neigh show`, if the entry has one.
fn neighbour(ns_args: &[&str], addr: impl Into<IpAddr>) -> Option<String> {
    let addr: IpAddr = addr.into();
    let mut args = ns_args.to_vec();
    let a = addr.to_string();
    args.extend(["neigh", "show", &a]);
    let out = ip(&args);
    out.split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .map(str::to_owned)
}

/// What a run inside a namespace does, by its LAB_ROUTER_ACTION:
/// `udp-recv` binds UDP_PORT and reports how many of the flow's datagrams
/// came, and whether in order; `udp-send` sends the flow to h2.
fn inside(action: &str) {
    match action {
        "udp-recv" => {
            let s = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, UDP_PORT))
                .expect("bind the UDP receiver");
            s.set_read_timeout(Some(IDLE)).expect("read timeout");
            say!("{REPORT}ready");
            let (mut got, mut in_order, mut other) = (0u32, true, 0u32);
            let mut buf = [0u8; 64];
            while got < UDP_COUNT {
                let Ok((n, _)) = s.recv_from(&mut buf) else {
                    break;
                };
                match buf.get(..n).and_then(|d| d.get(..8)) {
                    Some(d) if &d[..4] == b"FPL3" => {
                        let seq = u32::from_be_bytes([d[4], d[5], d[6], d[7]]);
                        in_order &= seq == got;
                        got += 1;
                    }
                    _ => other += 1,
                }
            }
            say!("{REPORT}received {got} in_order {in_order} other {other}");
        }
        "udp-send" => {
            let s = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).expect("bind");
            let dst = SocketAddrV4::new(H2_ADDR, UDP_PORT);
            let t = Instant::now();
            for seq in 0..UDP_COUNT {
                let mut d = [0u8; 32];
                d[..4].copy_from_slice(b"FPL3");
                d[4..8].copy_from_slice(&seq.to_be_bytes());
                s.send_to(&d, dst).expect("send a datagram");
                std::thread::sleep(UDP_GAP);
            }
            say!(
                "{REPORT}sent {UDP_COUNT} in {:.2} s",
                t.elapsed().as_secs_f64()
            );
        }
        _ => panic!("unknown {ACTION} {action:?}"),
    }
}

/// A running `fastpath run --mode l3 --json`: its stderr lines (start-up,
/// live statistics) echoed to the console and collected, its stdout (the
/// final JSON summary) read whole.
struct Fastpath {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: Option<JoinHandle<()>>,
    stdout: Option<JoinHandle<String>>,
}

impl Fastpath {
    fn start(vf0: &str, vf2: &str) -> Fastpath {
        let mut child = Command::new("fastpath")
            .args([
                "run",
                "--mode",
                "l3",
                "--ports",
                &format!("{vf0},{vf2}"),
                "--exception",
                "vhost-net",
                "--huge-size",
                "2M",
                "--stats-period",
                "5",
                "--duration",
                DURATION,
                "--json",
            ])
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run fastpath (is it on PATH?)");
        let (tx, lines) = mpsc::channel::<String>();
        let err = child.stderr.take().expect("stderr");
        let mut out = child.stdout.take().expect("stdout");
        let stderr = std::thread::spawn(move || {
            for l in BufReader::new(err).lines() {
                let Ok(l) = l else { break };
                say!("LAB-INFO fastpath| {l}");
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        Fastpath {
            child,
            lines,
            seen: Vec::new(),
            stderr: Some(stderr),
            stdout: Some(stdout),
        }
    }

    /// Waits until a line containing each of `texts` has come, in any
    /// order.
    fn wait_for(&mut self, texts: &[String], timeout: Duration) {
        let end = Instant::now() + timeout;
        let mut found = vec![false; texts.len()];
        while found.contains(&false) {
            let left = end.saturating_duration_since(Instant::now());
            let l = self.lines.recv_timeout(left).unwrap_or_else(|e| {
                panic!(
                    "fastpath did not print all of {texts:?} ({e}): {:#?}",
                    self.seen
                )
            });
            for (t, f) in texts.iter().zip(found.iter_mut()) {
                *f |= l.contains(t.as_str());
            }
            self.seen.push(l);
        }
    }

    /// Stops fastpath with SIGTERM (a clean stop with the final summary)
    /// and waits for it, bounded; its exit code and JSON summary.
    fn stop(mut self) -> (Option<i32>, Value) {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(st.success(), "kill -TERM fastpath");
        let t = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait for fastpath") {
                break s;
            }
            assert!(
                t.elapsed() < READY,
                "fastpath did not exit within {READY:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        if let Some(h) = self.stderr.take() {
            h.join().expect("stderr reader");
        }
        let json = self
            .stdout
            .take()
            .map(|h| h.join().expect("stdout reader"))
            .unwrap_or_default();
        self.seen.extend(self.lines.try_iter());
        let v: Value = serde_json::from_str(&json).unwrap_or_else(|e| {
            panic!(
                "fastpath's --json summary does not parse ({e}): {json:?}; {:#?}",
                self.seen
            )
        });
        (status.code(), v)
    }
}

impl Drop for Fastpath {
    /// A test that fails while fastpath runs must not leave it running: it
    /// would hold the VFs' groups and fail every later test with EBUSY.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The number at `path` in the summary (a key, or an array index).
fn num(v: &Value, path: &[&str]) -> u64 {
    path.iter()
        .fold(v, |v, k| match k.parse::<usize>() {
            Ok(i) => &v[i],
            Err(_) => &v[*k],
        })
        .as_u64()
        .unwrap_or_else(|| panic!("no number at {path:?} in the summary: {v:#}"))
}

/// The non-zero counters of a summary map: "arp 4 local 5".
fn nonzero(map: &Value) -> String {
    map.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_u64().filter(|n| *n > 0).map(|n| format!("{k} {n}")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the UDP flow h1 -> h2: (received, in order, the receiver's and
/// sender's report lines).
fn udp_flow(h1: &Host, h2: &Host) -> (u32, bool, String) {
    let mut recv = h2
        .run_action("udp-recv")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the UDP receiver in h2");
    let out = recv.stdout.take().expect("receiver stdout");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            // Only the receiver's own report: the inner libtest's lines
            // ("test result: ...") must not reach the lab's tally. The
            // first report follows libtest's "test NAME ... " on its line.
            if let Some((_, r)) = l.split_once(REPORT) {
                if tx.send(r.to_owned()).is_err() {
                    break;
                }
            }
        }
    });
    let ready = rx.recv_timeout(READY);
    if ready.as_deref() != Ok("ready") {
        let _ = recv.kill();
        let _ = recv.wait();
        panic!("the UDP receiver in h2 did not start: {ready:?}");
    }
    let sent = h1
        .run_action("udp-send")
        .output()
        .expect("run the UDP sender in h1");
    let sent_report: String = String::from_utf8_lossy(&sent.stdout)
        .lines()
        .filter_map(|l| l.split_once(REPORT).map(|(_, r)| r))
        .collect();
    if !sent.status.success() {
        let _ = recv.kill();
        let _ = recv.wait();
    }
    assert!(
        sent.status.success(),
        "the UDP sender in h1 failed: {sent_report} {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    // The receiver ends by itself: all came, or nothing for IDLE.
    let report = rx.recv_timeout(IDLE + READY);
    let _ = recv.kill();
    let _ = recv.wait();
    let _ = reader.join();
    let report = report.unwrap_or_else(|e| panic!("no report from the UDP receiver: {e}"));
    // "received N in_order B other K"
    let words: Vec<&str> = report.split_whitespace().collect();
    let got = words
        .get(1)
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("receiver report {report:?}"));
    let in_order = words.get(3) == Some(&"true");
    (got, in_order, format!("{sent_report}; {report}"))
}

/// Traces `dst` from `host` one hop deep (a UDP probe with TTL or hop
/// limit 1, busybox traceroute) until `hop` answers with time-exceeded;
/// the probes sent and the hop's line.
fn traceroute_first_hop(host: &Host, dst: IpAddr, hop: IpAddr) -> (u32, String) {
    let t = Instant::now();
    let mut probes = 0;
    let mut last = String::new();
    let (dst, hop) = (dst.to_string(), hop.to_string());
    let family = if hop.contains(':') { "-6" } else { "-4" };
    while t.elapsed() < READY {
        let out = in_ns(
            host.ns,
            "traceroute",
            &[family, "-n", "-m", "1", "-q", "1", "-w", "3", &dst],
        );
        probes += 1;
        last = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // " 1  10.71.1.1  3.456 ms" (or " 1  *" when nothing came).
        if let Some(line) = last
            .lines()
            .find(|l| l.split_whitespace().take(2).eq(["1", hop.as_str()]))
        {
            return (probes, line.trim().to_owned());
        }
    }
    panic!(
        "no time-exceeded from {hop} for {}'s probes to {dst} in {READY:?}: {last}",
        host.ns
    );
}

#[test]
fn lab_router_routes_between_two_hosts_over_vhost_net() {
    if let Ok(action) = std::env::var(ACTION) {
        return inside(&action);
    }
    drivers::testing::assert_in_vm_lab();
    let var = |n: &str| std::env::var(n).unwrap_or_else(|_| panic!("{n} is not set"));
    let (vf0, vf2) = (var("FASTPATH_LAB_VF0"), var("FASTPATH_LAB_VF2"));
    let (vf1_net, pf_net) = (
        var("FASTPATH_LAB_VF1_NETDEV"),
        var("FASTPATH_LAB_PF_NETDEV"),
    );
    let iommu = std::env::var("FASTPATH_LAB_IOMMU").unwrap_or_else(|_| "type1".into());
    assert!(
        std::path::Path::new("/dev/vhost-net").exists(),
        "the lab guest has no /dev/vhost-net (vhost_net not loaded?)"
    );
    let t0 = Instant::now();
    // Earlier lab tests reset the PF; start when both netdevs have carrier.
    wait_carrier(&[&pf_net, &vf1_net]);

    // The hosts first: moving a netdev closes and opens it, which for the
    // PF resets the VFs; fastpath starts after that.
    let h1 = Host::new(H1_NS, &vf1_net, H1_ADDR, FP0_ADDR);
    let h2 = Host::new(H2_NS, &pf_net, H2_ADDR, FP1_ADDR);
    let _forwarding = [
        Sysctl::set("/proc/sys/net/ipv4/ip_forward", "1"),
        Sysctl::set(FORWARD6, "1"),
    ];

    let mut fp = Fastpath::start(&vf0, &vf2);
    let expect: Vec<String> = (0..2)
        .map(|p| format!("fastpath: port {p} exception interface fp{p} (vhost-net backend)"))
        .chain(["fastpath: exception thread on".to_owned()])
        .collect();
    fp.wait_for(&expect, READY);
    let up_s = t0.elapsed().as_secs_f64();
    for (dev, addr, addr6) in [("fp0", FP0_ADDR, FP0_ADDR6), ("fp1", FP1_ADDR, FP1_ADDR6)] {
        // Both "links" are one broadcast domain in the NIC's switch: each
        // interface answers ARP for its own address only.
        write_sysctl(&format!("/proc/sys/net/ipv4/conf/{dev}/arp_ignore"), "1");
        ip(&["addr", "add", &format!("{addr}/{PREFIX_LEN}"), "dev", dev]);
        let cidr6 = format!("{addr6}/{PREFIX_LEN6}");
        ip(&["-6", "addr", "add", &cidr6, "dev", dev, "nodad"]);
        ip(&["link", "set", dev, "up"]);
    }
    let mac = |dev: &str| {
        std::fs::read_to_string(format!("/sys/class/net/{dev}/address"))
            .unwrap_or_else(|e| panic!("{dev}'s MAC: {e}"))
            .trim()
            .to_owned()
    };
    let fp0_mac = mac("fp0");
    wait_carrier(&["fp0", "fp1"]);
    h1.add_ipv6(H1_ADDR6, FP0_ADDR6);
    h2.add_ipv6(H2_ADDR6, FP1_ADDR6);

    // What the kernel received from the exception path (the TAP's rx
    // counters count the frames written into it, vhost-net's too), and
    // what it forwarded itself.
    let kernel_rx = || netdev_counter("fp0", "rx_packets") + netdev_counter("fp1", "rx_packets");
    let kernel_forwarded = || snmp_counter(&root_snmp(), "Ip", "ForwDatagrams");

    // 1. h1 -> fp0: ARP and ICMP over the exception path.
    let k_before = kernel_rx();
    let t = Instant::now();
    let pings_fp0 = h1.ping_until_answered(FP0_ADDR);
    let fp0_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(
        h1.neighbour(FP0_ADDR).as_deref(),
        Some(fp0_mac.as_str()),
        "h1 did not learn fp0's MAC for {FP0_ADDR}"
    );
    let (tx, rx, text) = h1.ping(FP0_ADDR, &["-c", "3", "-i", "0.2", "-W", "5"]);
    assert_eq!((tx, rx), (3, 3), "h1 -> fp0: {text}");
    // The counters below show the kernel's part: here they must move (an
    // ARP request and four echo requests at the least).
    let k_fp0 = kernel_rx() - k_before;
    assert!(k_fp0 >= 4, "the kernel counted {k_fp0} frames from fp0/fp1");

    // 2. h1 -> h2 through the fast path: the first echo requests find the
    // next hop unresolved and go to the kernel, which resolves h2 on fp1
    // and forwards them itself.
    let fwd_before = kernel_forwarded();
    let t = Instant::now();
    let pings_h2 = h1.ping_until_answered(H2_ADDR);
    let h2_ms = t.elapsed().as_secs_f64() * 1e3;
    let h2_mac = h2.mac();
    assert_eq!(
        neighbour(&[], H2_ADDR).as_deref(),
        Some(h2_mac.as_str()),
        "the router's kernel did not learn h2's MAC on fp1"
    );
    let (tx, rx, text) = h1.ping(H2_ADDR, &["-c", &PINGS.to_string(), "-i", "0.2", "-W", "5"]);
    assert_eq!((tx, rx), (PINGS, PINGS), "h1 -> h2: {text}");
    let fwd_unresolved = kernel_forwarded() - fwd_before;
    assert!(
        fwd_unresolved >= 1,
        "the kernel forwarded none of the first echo requests to h2 (unresolved)"
    );

    // 3. A UDP flow h1 -> h2: the workers forward it; the kernel sees at
    // most a few frames meanwhile, and forwards none of it.
    let (k0, fwd0) = (kernel_rx(), kernel_forwarded());
    let (got, in_order, udp_report) = udp_flow(&h1, &h2);
    let (k1, fwd1) = (kernel_rx(), kernel_forwarded());
    assert_eq!(
        (got, in_order),
        (UDP_COUNT, true),
        "UDP h1 -> h2: {udp_report}"
    );
    assert!(
        k1 - k0 <= KERNEL_SLACK && fwd1 - fwd0 <= KERNEL_FORWARD_SLACK,
        "during the UDP flow of {UDP_COUNT} the kernel received {} frames on fp0/fp1 and \
         forwarded {} packets: the fast path did not forward the flow",
        k1 - k0,
        fwd1 - fwd0
    );

    // 4. TTL 1: the fast path punts it, the kernel sends time-exceeded from
    // fp0's address.
    let exceeded0 = snmp_counter(&ns_snmp(h1.ns), "Icmp", "InTimeExcds");
    let (probes, hop) = traceroute_first_hop(&h1, H2_ADDR.into(), FP0_ADDR.into());
    let exceeded1 = snmp_counter(&ns_snmp(h1.ns), "Icmp", "InTimeExcds");
    assert!(exceeded1 > exceeded0, "h1 counted no ICMP time-exceeded");

    // 5. IPv6: h1 -> fp0 (h1 resolves fp0 by ND: its solicitation to
    // fp0's solicited-node group reaches VF0 because the router gave the
    // port fp0's groups; the router resolves h1 by ND over the exception
    // path), h1 -> h2 through the fast path (h2 resolved the same way),
    // hop limit 1.
    let pings6_fp0 = h1.ping_until_answered(FP0_ADDR6);
    assert_eq!(
        h1.neighbour(FP0_ADDR6).as_deref(),
        Some(fp0_mac.as_str()),
        "h1 did not learn fp0's MAC for {FP0_ADDR6} by ND"
    );
    assert_eq!(
        neighbour(&[], H1_ADDR6).as_deref(),
        Some(h1.mac().as_str()),
        "the router's kernel did not resolve h1 by ND on fp0"
    );
    let t = Instant::now();
    let pings6_h2 = h1.ping_until_answered(H2_ADDR6);
    let h2_6_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(
        neighbour(&[], H2_ADDR6).as_deref(),
        Some(h2_mac.as_str()),
        "the router's kernel did not resolve h2 by ND on fp1"
    );
    let (tx, rx, text) = h1.ping(
        H2_ADDR6,
        &["-c", &PINGS.to_string(), "-i", "0.2", "-W", "5"],
    );
    assert_eq!((tx, rx), (PINGS, PINGS), "h1 -> h2 (IPv6): {text}");
    let (probes6, hop6) = traceroute_first_hop(&h1, H2_ADDR6.into(), FP0_ADDR6.into());

    let (code, s) = fp.stop();
    let run_s = t0.elapsed().as_secs_f64();
    drop((h1, h2));
    wait_carrier(&[&pf_net, &vf1_net]);

    let r = &s["router"];
    // fp0's solicited-node group (RFC 4291 2.7.1; RFC 2464 7) was given
    // to port 0.
    let o = FP0_ADDR6.octets();
    let group = format!("33:33:ff:{:02x}:{:02x}:{:02x}", o[13], o[14], o[15]);
    let groups = &r["multicast"][0]["groups"];
    assert!(
        groups
            .as_array()
            .is_some_and(|g| g.iter().any(|m| m == group.as_str())),
        "{group} not among port 0's groups: {}",
        r["multicast"]
    );
    let backends: Vec<&str> = (0..2)
        .map(|p| r["exception"][p]["backend"].as_str().unwrap_or("none"))
        .collect();
    let cores = s["cores"].as_array().expect("cores");
    let (tx, injected) = cores.iter().fold((0, 0), |(t, i), c| {
        (t + num(c, &["tx"]), i + num(c, &["injected"]))
    });
    let worker_forwarded = tx - injected;
    let p1_tx = num(&s, &["ports", "1", "stats", "opackets"]);
    let punts = |reason: &str| num(&s, &["totals", "punts", reason]);
    let exc = |p: usize, c: &str| {
        r["exception"][p]["counters"][c]
            .as_u64()
            .unwrap_or_else(|| panic!("no exception counter {c} of port {p}: {r:#}"))
    };
    say!(
        "LAB-FIGURE router ({iommu}, exception vhost-net): fastpath up {up_s:.1} s after the \
         start; h1 -> fp0 answered after {fp0_ms:.0} ms ({pings_fp0} pings; the kernel got \
         {k_fp0} frames), h1 -> h2 after {h2_ms:.0} ms ({pings_h2} pings; the kernel forwarded \
         {fwd_unresolved} while h2 was unresolved), then {PINGS}/{PINGS}; UDP {got}/{UDP_COUNT} h1 -> h2 \
         ({udp_report}), kernel saw {} frames on fp0/fp1 and forwarded {} meanwhile; TTL 1: \
         `{hop}` after {probes} probe(s); IPv6: h1 -> fp0 answered after {pings6_fp0} \
         ping(s), h1 -> h2 after {h2_6_ms:.0} ms ({pings6_h2} pings), then {PINGS}/{PINGS}, hop \
         limit 1: `{hop6}` after {probes6} probe(s); workers forwarded {worker_forwarded} (port 1 tx \
         {p1_tx}), injected {injected}; punts: {}; drops: {}; fp0 to_kernel {} from_kernel {}, fp1 to_kernel {} from_kernel {}; buffers {}/{}; \
         {run_s:.1} s in all",
        k1 - k0,
        fwd1 - fwd0,
        nonzero(&s["totals"]["punts"]),
        nonzero(&s["totals"]["drops"]),
        exc(0, "to_kernel"),
        exc(0, "from_kernel"),
        exc(1, "to_kernel"),
        exc(1, "from_kernel"),
        num(&s, &["buffers", "returned"]),
        num(&s, &["buffers", "expected"]),
    );
    assert_eq!(code, Some(0), "fastpath's exit code; summary {s:#}");
    assert_eq!(backends, ["vhost-net", "vhost-net"], "{r:#}");
    assert_eq!(s["buffers"]["all_returned"], Value::Bool(true), "{s:#}");
    // The workers sent every forwarded packet: the UDP flow and both ways
    // of every answered echo (IPv4 and IPv6), at the least.
    let floor = u64::from(UDP_COUNT + 4 * PINGS);
    assert!(
        worker_forwarded >= floor && p1_tx >= u64::from(UDP_COUNT + 2 * PINGS),
        "workers forwarded {worker_forwarded} (< {floor}?), port 1 sent {p1_tx}: {s:#}"
    );
    // The exception path carried the ARP, the pings to fp0 and the TTL-1
    // probes both ways, and nothing was lost on it.
    assert!(
        punts("arp") > 0 && punts("local") > 0 && punts("ttl_exceeded") > 0,
        "{s:#}"
    );
    for p in 0..2 {
        assert!(exc(p, "to_kernel") > 0 && exc(p, "injected") > 0, "{r:#}");
        for lost in ["rate_limited", "tap_full", "inject_full"] {
            assert_eq!(exc(p, lost), 0, "port {p} {lost}: {r:#}");
        }
    }
    // No drop for want of room on the way (other drops, such as the
    // model's loop-back of the ports' own broadcasts, are the traffic's).
    for full in ["punt_ring_full", "tx_full"] {
        assert_eq!(num(&s, &["totals", "drops", full]), 0, "{full}: {s:#}");
    }
}
