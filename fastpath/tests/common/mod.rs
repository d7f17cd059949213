//! What the tests that run the `fastpath` binary share.

#![allow(dead_code)] // each test crate uses its own part

use drivers::test_netns::TestNetns;
use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output};
use std::time::{Duration, Instant};

/// The binary, logging warnings and errors only.
pub fn fastpath() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fastpath"));
    c.env("RUST_LOG", "warn");
    c
}

/// Sends `signal` ("-INT", "-TERM", ...) to `child`.
pub fn kill(child: &Child, signal: &str) {
    let ok = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill {signal} {}", child.id());
}

/// Waits for `child` to exit, failing the test after `limit` (and
/// killing the child, so no forwarder is left spinning).
pub fn exit_within(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("fastpath did not exit within {limit:?} after {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads stdout lines until the first live statistics line; returns the
/// lines seen and the rest of the stream.
pub fn until_live(stdout: ChildStdout) -> (Vec<String>, Lines<BufReader<ChildStdout>>) {
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    for l in lines.by_ref() {
        let l = l.expect("stdout is text");
        let live = l.starts_with('[');
        seen.push(l);
        if live {
            return (seen, lines);
        }
    }
    panic!("no live line before the end of output: {seen:#?}");
}

/// Starts `fastpath` with `args` and stdout piped, and waits for its first
/// live line: the child, the lines so far, and the rest of stdout.
pub fn spawn_until_live(args: &[&str]) -> (Child, Vec<String>, Lines<BufReader<ChildStdout>>) {
    let mut child = fastpath()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn fastpath");
    let (seen, rest) = until_live(child.stdout.take().expect("piped stdout"));
    (child, seen, rest)
}

/// Everything left on a child's piped stdout or stderr, until it closes.
pub fn read_all(pipe: Option<impl std::io::Read>) -> String {
    let mut out = String::new();
    pipe.expect("a piped stream")
        .read_to_string(&mut out)
        .expect("text output");
    out
}

/// `sh -c cmd` inside network namespace `ns`.
pub fn sh_output(ns: &str, cmd: &str) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns, "sh", "-c", cmd])
        .output()
        .expect("run ip netns exec")
}

/// `sh -c cmd` inside `ns`, which must succeed; its stdout.
pub fn sh(ns: &str, cmd: &str) -> String {
    let o = sh_output(ns, cmd);
    assert!(
        o.status.success(),
        "in {ns}: {cmd}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Retries `f` every 20 ms until it holds, for at most `limit`.
pub fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < end, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One ping from `ns`, waiting at most a second for the answer.
pub fn ping_once(ns: &str, dst: &str) -> bool {
    sh_output(ns, &format!("ping -c 1 -W 1 {dst}"))
        .status
        .success()
}

/// A counter of `/proc/net/snmp` in `ns` ("Ip" "ForwDatagrams").
pub fn snmp(ns: &str, group: &str, field: &str) -> u64 {
    let text = sh(ns, "cat /proc/net/snmp");
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{group}:")))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let [names, values] = rows.as_slice() else {
        panic!("{group} rows in /proc/net/snmp: {text}");
    };
    let i = names.iter().position(|n| *n == field).expect(field);
    values[i].parse().expect("a number")
}

/// UDP datagrams `ns`'s kernel received (delivered or for no socket).
pub fn udp_in(ns: &str) -> u64 {
    snmp(ns, "Udp", "InDatagrams") + snmp(ns, "Udp", "NoPorts")
}

/// `count` one-byte UDP datagrams from `ns` to `dst` port 9, by bash's
/// `/dev/udp` (no tool beyond bash needed).
pub fn udp_flow(ns: &str, dst: &str, count: u64) {
    sh(
        ns,
        &format!("bash -c 'for i in $(seq {count}); do echo x > /dev/udp/{dst}/9; done'"),
    );
}

/// Whether `tool` is on the PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A veth pair `p<i>` (in `fp`, an AF_PACKET port of the fast path) and
/// `h<i>` (in `host`, left down for the caller to address). p<i> carries
/// no address and has IPv6 off; its IPv4 forwarding is off and rp_filter
/// strict, and it never answers ARP (arp_ignore 8): FP's kernel never
/// acts on what arrives there, and sees the host's traffic only through
/// the exception interfaces. Call after setting ip_forward in `fp` (which
/// sets every interface's forwarding).
pub fn fast_path_port_pair(fp: &str, i: u32, host: &str) {
    drivers::test_netns::ip(&[
        "link",
        "add",
        &format!("p{i}"),
        "netns",
        fp,
        "type",
        "veth",
        "peer",
        "name",
        &format!("h{i}"),
        "netns",
        host,
    ]);
    sh(
        fp,
        &format!(
            "echo 1 > /proc/sys/net/ipv6/conf/p{i}/disable_ipv6 && \
             sysctl -qw net.ipv4.conf.p{i}.forwarding=0 net.ipv4.conf.p{i}.rp_filter=1 \
             net.ipv4.conf.p{i}.arp_ignore=8 && ip link set p{i} up"
        ),
    );
}

/// Stops a `fastpath run --json` child with SIGINT (failing the test
/// unless it exits cleanly within 20 s); its final JSON summary and its
/// stderr.
pub fn stop_for_json(mut child: Child) -> (serde_json::Value, String) {
    kill(&child, "-INT");
    let status = exit_within(&mut child, Duration::from_secs(20), "SIGINT");
    let out = read_all(child.stdout.take());
    let err = read_all(child.stderr.take());
    assert!(status.success(), "fastpath exited {status}: {err}");
    let j = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    (j, err)
}

/// Three namespaces for a router test: FP, where fastpath runs on the
/// AF_PACKET ports p1 and p2, and the hosts h1 (10.78.1.2/24, through
/// 10.78.1.1) and h2 (10.78.2.2/24, through 10.78.2.1) on their far ends
/// (see [`fast_path_port_pair`]). Deleted on drop, with fastpath if it
/// still runs.
pub struct RouterLab {
    /// The fast path's namespace.
    pub fp: TestNetns,
    /// Host 1's.
    pub h1: TestNetns,
    /// Host 2's.
    pub h2: TestNetns,
    /// fastpath, once started.
    pub fastpath: Option<Child>,
}

impl Drop for RouterLab {
    fn drop(&mut self) {
        if let Some(mut c) = self.fastpath.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl RouterLab {
    /// The namespaces `<prefix>-fp-<pid>`, `-h1-`, `-h2-`, joined and
    /// addressed.
    pub fn new(prefix: &str) -> RouterLab {
        let lab = RouterLab {
            fp: TestNetns::new(&format!("{prefix}-fp")),
            h1: TestNetns::new(&format!("{prefix}-h1")),
            h2: TestNetns::new(&format!("{prefix}-h2")),
            fastpath: None,
        };
        let fp = lab.fp.name();
        sh(fp, "ip link set lo up && sysctl -qw net.ipv4.ip_forward=1");
        for (i, h) in [(1, lab.h1.name()), (2, lab.h2.name())] {
            fast_path_port_pair(fp, i, h);
            sh(
                h,
                &format!(
                    "ip link set lo up && ip addr add 10.78.{i}.2/24 dev h{i} && \
                     ip link set h{i} up && ip route add default via 10.78.{i}.1"
                ),
            );
        }
        lab
    }

    /// [`router_command`] in FP.
    pub fn router(&self, args: &[&str]) -> Command {
        router_command(self.fp.name(), args)
    }
}

/// `fastpath run --mode l3` in namespace `ns` on ports p1 and p2, with
/// exception interfaces fp0 and fp1 on plain TAP and no hugepages, then
/// `args`.
pub fn router_command(ns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns])
        .arg(env!("CARGO_BIN_EXE_fastpath"))
        .args([
            "run",
            "--mode",
            "l3",
            "--ports",
            "afpacket:p1,afpacket:p2",
            "--exception-ifnames",
            "fp0,fp1",
            "--exception",
            "tap",
            "--no-huge",
        ])
        .args(args);
    c
}
