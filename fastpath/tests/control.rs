//! The control plane against a running daemon: `fastpath show ...`,
//! `watch`, the raw protocol on the socket, the Prometheus scrape, a
//! socket in use or stale, a socket the caller may not open, and in l3
//! mode the router's routes and neighbours.

mod common;
use common::{exit_within, fastpath, kill};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// A daemon with its socket in a directory of its own; killed on drop.
struct Daemon {
    child: Child,
    socket: PathBuf,
    /// The metrics address, when asked for.
    metrics: Option<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `prefix... fastpath run ARGS --control-socket DIR/fp.sock
/// --metrics 127.0.0.1:0` and waits for its start-up lines (the socket
/// is served by then). `dir_mode`: the socket directory's mode.
fn start(prefix: &[&str], args: &[&str], dir_mode: u32) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(dir_mode)).unwrap();
    let socket = dir.path().join("fp.sock");
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(env!("CARGO_BIN_EXE_fastpath"));
            c.env("RUST_LOG", "warn");
            c
        }
        None => fastpath(),
    };
    let mut child = cmd
        .arg("run")
        .args(args)
        .args([
            "--no-huge",
            "--stats-period",
            "0",
            "--metrics",
            "127.0.0.1:0",
        ])
        .arg("--control-socket")
        .arg(&socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fastpath");
    let mut metrics = None;
    let stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("fastpath: metrics on http://") {
            metrics = rest.strip_suffix("/metrics").map(str::to_owned);
            break;
        }
        seen.push(line);
    }
    assert!(metrics.is_some(), "no metrics line: {seen:#?}");
    assert!(
        seen.iter()
            .any(|l| l.starts_with("fastpath: control socket ")),
        "{seen:#?}"
    );
    Daemon {
        child,
        socket,
        metrics,
        _dir: dir,
    }
}

/// `fastpath ARGS --control-socket <daemon's>`.
fn client(d: &Daemon, args: &[&str]) -> Output {
    fastpath()
        .args(args)
        .arg("--control-socket")
        .arg(&d.socket)
        .output()
        .unwrap()
}

/// The JSON a client command printed; it must have succeeded.
fn json(d: &Daemon, args: &[&str]) -> Value {
    let o = client(d, args);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{args:?}: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("{v} is not a counter"))
}

/// `GET path` over plain TCP: the status line, and the body.
fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    let (head, body) = all.split_once("\r\n\r\n").expect("a head and a body");
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// The samples of an exposition (format 0.0.4), checked as it goes: a
/// HELP and a TYPE before each family's samples, counters named
/// `*_total`, label values unescaped.
fn parse_exposition(body: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let mut typed: HashMap<String, String> = HashMap::new();
    let mut helped: HashMap<String, bool> = HashMap::new();
    let mut out = Vec::new();
    for line in body.lines() {
        if let Some(r) = line.strip_prefix("# HELP ") {
            let name = r.split(' ').next().unwrap();
            assert!(helped.insert(name.into(), true).is_none(), "{line}");
        } else if let Some(r) = line.strip_prefix("# TYPE ") {
            let (name, kind) = r.split_once(' ').unwrap();
            assert!(kind == "counter" || kind == "gauge", "{line}");
            assert!(kind != "counter" || name.ends_with("_total"), "{line}");
            assert!(typed.insert(name.into(), kind.into()).is_none(), "{line}");
        } else {
            let (head, v) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match head.split_once('{') {
                None => (head, BTreeMap::new()),
                Some((n, l)) => (n, labels(l.strip_suffix('}').unwrap())),
            };
            assert!(
                typed.contains_key(name) && helped.contains_key(name),
                "{line}"
            );
            out.push((name.to_owned(), labels, v.parse().unwrap()));
        }
    }
    out
}

fn labels(mut s: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    while let Some((k, rest)) = s.split_once("=\"") {
        let mut v = String::new();
        let mut it = rest.char_indices();
        let end = loop {
            match it.next().expect("a closing quote") {
                (_, '\\') => v.push(match it.next().unwrap().1 {
                    'n' => '\n',
                    c => c,
                }),
                (i, '"') => break i,
                (_, c) => v.push(c),
            }
        };
        m.insert(k.to_owned(), v);
        s = rest[end + 1..].trim_start_matches(',');
    }
    m
}

/// One raw request line on the socket, and the response line.
fn raw(stream: &mut BufReader<UnixStream>, line: &[u8]) -> Value {
    stream.get_mut().write_all(line).unwrap();
    let mut answer = String::new();
    stream.read_line(&mut answer).unwrap();
    serde_json::from_str(&answer).unwrap()
}

#[test]
fn show_watch_and_metrics_against_a_running_daemon() {
    let mut d = start(&[], &["--ports", "ring,ring", "--duration", "60"], 0o700);

    let ports = json(&d, &["show", "ports", "--json"]);
    let list = ports["ports"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{ports:#}");
    for (i, p) in list.iter().enumerate() {
        assert_eq!(u(&p["id"]), i as u64);
        assert_eq!(p["kind"], "ring");
        assert_eq!(p["link"]["up"], true);
        assert_eq!((u(&p["rx_queues"]), u(&p["tx_queues"])), (1, 1));
        assert!(u(&p["stats"]["opackets"]) > 0, "{p:#}");
        assert!(p["drops"]["rx_nombuf"].is_u64(), "{p:#}");
        assert!(p["mac"].as_str().unwrap().starts_with("02:00:00:00:00:0"));
    }
    // Text too.
    let (out, _) = text(&client(&d, &["show", "ports"]));
    assert!(
        out.starts_with("port 0 ring0 (ring), MAC 02:00:00:00:00:00, link up"),
        "{out}"
    );

    // Let a whole load interval pass.
    std::thread::sleep(Duration::from_millis(1200));
    let cores = json(&d, &["show", "cores", "--json"]);
    let c = &cores["cores"][0];
    let busy = c["busy_percent"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&busy), "{cores:#}");
    assert!(cores["interval_secs"].as_f64().unwrap() > 0.9, "{cores:#}");
    // Ring ports always have packets: the core sent some, and each cost
    // cycles.
    assert!(c["tx_pps"].as_f64().unwrap() > 0.0, "{cores:#}");
    assert!(c["cycles_per_packet"].as_f64().unwrap() > 0.0, "{cores:#}");
    assert!(u(&c["total"]["tx"]) > 0);
    let (out, _) = text(&client(&d, &["show", "cores"]));
    assert!(out.contains("busy") && out.contains("top"), "{out}");

    let config = json(&d, &["show", "config", "--json"]);
    let setting = |n: &str| {
        config["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == n)
            .unwrap_or_else(|| panic!("no {n}: {config:#}"))
            .clone()
    };
    assert_eq!(setting("ports")["value"], "ring,ring");
    assert_eq!(setting("ports")["source"]["from"], "command_line");
    assert_eq!(setting("ports")["source"]["option"], "--ports");
    assert_eq!(setting("burst")["source"]["from"], "default");
    assert_eq!(setting("mode")["value"], "io");
    assert_eq!(
        setting("control_socket")["value"],
        d.socket.display().to_string()
    );

    // io mode: no routes, and the message says why.
    for what in ["routes", "neighbours", "exception"] {
        let o = client(&d, &["show", what]);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{what}: {err}");
        assert!(
            err.contains("not routing") && err.contains("--mode l3"),
            "{what}: {err}"
        );
    }

    let o = client(&d, &["watch", "--count", "2"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with('[') && l.contains("cpu") && l.contains("port1")),
        "{out}"
    );
    let o = client(&d, &["watch", "--count", "1", "--json"]);
    let line: Value = serde_json::from_str(text(&o).0.trim()).unwrap();
    assert!(line["ports"][0]["tx_pps"].as_f64().unwrap() > 0.0, "{line}");

    // The raw protocol: errors are answers, and the session goes on.
    let mut s = BufReader::new(UnixStream::connect(&d.socket).unwrap());
    let r = raw(&mut s, b"hello\n");
    assert_eq!(
        (r["response"].as_str(), r["kind"].as_str()),
        (Some("error"), Some("malformed"))
    );
    let r = raw(&mut s, b"{\"version\":1,\"request\":\"reboot\"}\n");
    assert_eq!(r["kind"], "unknown_request");
    let r = raw(&mut s, b"{\"version\":99,\"request\":\"ports\"}\n");
    assert_eq!(r["kind"], "version_mismatch");
    let r = raw(&mut s, b"{\"version\":1,\"request\":\"cores\"}\n");
    assert_eq!(
        (r["response"].as_str(), u(&r["version"])),
        (Some("cores"), 1)
    );
    let mut long = vec![b'x'; 10_000];
    long.push(b'\n');
    let r = raw(&mut s, &long);
    assert_eq!(r["kind"], "line_too_long");

    let addr = d.metrics.clone().unwrap();
    let (status, body) = http_get(&addr, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let samples = parse_exposition(&body);
    let get = |name: &str, port: &str| {
        samples
            .iter()
            .find(|(n, l, _)| n == name && l.get("port").map(String::as_str) == Some(port))
            .unwrap_or_else(|| panic!("no {name} port {port}:\n{body}"))
            .2
    };
    assert!(get("fastpath_port_tx_packets_total", "1") > 0.0);
    assert_eq!(get("fastpath_port_link_up", "0"), 1.0);
    assert!(samples
        .iter()
        .any(|(n, l, _)| n == "fastpath_core_drops_total"
            && l.get("reason").map(String::as_str) == Some("tx_full")));
    let (status, _) = http_get(&addr, "/");
    assert_eq!(status, "HTTP/1.1 404 Not Found");

    kill(&d.child, "-TERM");
    let status = exit_within(&mut d.child, Duration::from_secs(20), "SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(!d.socket.exists(), "the socket file was left behind");
}

#[test]
fn a_socket_in_use_is_refused_and_a_stale_one_replaced() {
    let run = |p: &Path| {
        fastpath()
            .args([
                "run",
                "--no-huge",
                "--duration",
                "0.3",
                "--stats-period",
                "0",
            ])
            .arg("--control-socket")
            .arg(p)
            .output()
            .unwrap()
    };
    // The other daemon is a process of its own: a listener of this
    // process could live on in a child another test is spawning.
    let mut first = start(&[], &["--ports", "null,null", "--duration", "60"], 0o700);
    let path = first.socket.clone();
    let o = run(&path);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("another fastpath is running"), "{err}");
    // Killed, it leaves its socket file: stale, replaced, removed at exit.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    assert!(path.exists());
    let o = run(&path);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(!path.exists());
    // A file that is not a socket is never removed.
    std::fs::write(&path, "x").unwrap();
    let o = run(&path);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("is not a socket"), "{}", text(&o).1);
    assert!(path.exists());
    // No socket at all: the client says what to check.
    std::fs::remove_file(&path).unwrap();
    let o = fastpath()
        .args(["show", "ports", "--control-socket"])
        .arg(&path)
        .output()
        .unwrap();
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("is `fastpath run` running?") && err.contains("--control-socket"),
        "{err}"
    );
}

fn setpriv_works() -> bool {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_socket_the_caller_may_not_open() {
    if !drivers::test_netns::is_root() {
        drivers::skip_test!("needs root to run the client as another user (setpriv)");
        return;
    }
    if !setpriv_works() {
        drivers::skip_test!("setpriv (util-linux) cannot switch to uid 65534 here");
        return;
    }
    // The directory open to all, the socket 0600 root's: only the
    // socket's mode keeps the other user out.
    let d = start(&[], &["--ports", "null,null", "--duration", "60"], 0o755);
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_fastpath"))
        .args(["show", "ports", "--control-socket"])
        .arg(&d.socket)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(
        err.contains("permission denied")
            && err.contains("mode 0600")
            && err.contains("owned by uid 0")
            && err.contains("as root"),
        "{err}"
    );
    // Root (the daemon's user) gets in.
    assert!(client(&d, &["show", "ports"]).status.success());
}

/// `sh -c cmd` in `ns`, which must succeed.
fn sh(ns: &str, cmd: &str) {
    let o = Command::new("ip")
        .args(["netns", "exec", ns, "sh", "-c", cmd])
        .output()
        .unwrap();
    assert!(o.status.success(), "{cmd}: {}", text(&o).1);
}

#[test]
fn l3_routes_neighbours_and_exception_from_the_router() {
    if !drivers::test_netns::is_root() {
        drivers::skip_test!("needs root (a network namespace, TAP interfaces)");
        return;
    }
    let netns = drivers::test_netns::TestNetns::new("ctl");
    let ns = netns.name().to_owned();
    let d = start(
        &["ip", "netns", "exec", &ns],
        &[
            "--mode",
            "l3",
            "--ports",
            "null,null",
            "--duration",
            "60",
            "--exception",
            "tap",
        ],
        0o700,
    );
    sh(
        &ns,
        "ip addr add 10.61.0.1/24 dev fp0 && \
         ip neigh replace 10.61.0.2 lladdr 02:aa:00:00:00:02 dev fp0 && \
         ip route add 10.62.0.0/16 via 10.61.0.2 dev fp0 && \
         ip route add blackhole 10.63.0.0/16",
    );
    // The mirror takes the kernel's changes within a few rounds.
    let mut routes = Value::Null;
    for _ in 0..100 {
        routes = json(&d, &["show", "routes", "--json"]);
        let has = |p: &str, t: &str| {
            routes["routes"].as_array().is_some_and(|r| {
                r.iter()
                    .any(|r| r["prefix"] == p && r["next_hop"]["type"] == t)
            })
        };
        if has("10.62.0.0/16", "resolved") && has("10.63.0.0/16", "blackhole") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let find = |p: &str| {
        routes["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["prefix"] == p)
            .unwrap_or_else(|| panic!("no route {p}: {routes:#}"))["next_hop"]
            .clone()
    };
    assert_eq!(
        find("10.62.0.0/16"),
        serde_json::json!({"type": "resolved", "port": 0, "mac": "02:aa:00:00:00:02"})
    );
    assert_eq!(find("10.63.0.0/16")["type"], "blackhole");
    assert_eq!(find("10.61.0.1/32")["type"], "local");
    assert_eq!(routes["interfaces"], serde_json::json!(["fp0", "fp1"]));
    let (out, _) = text(&client(&d, &["show", "routes"]));
    assert!(
        out.contains("10.62.0.0/16 dev port0 (fp0) lladdr 02:aa:00:00:00:02"),
        "{out}"
    );
    let n = json(&d, &["show", "neighbours", "--json"]);
    assert!(
        n["neighbours"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["ip"] == "10.61.0.2" && x["port"] == 0 && x["mac"] == "02:aa:00:00:00:02"),
        "{n:#}"
    );
    let e = json(&d, &["show", "exception", "--json"]);
    assert_eq!(e["interfaces"][0]["ifname"], "fp0");
    assert_eq!(e["interfaces"][0]["backend"], "tap");
    assert!(e["interfaces"][0]["counters"]["punted"].is_u64(), "{e:#}");
    // (The metrics listen on the namespace's loopback, out of reach
    // here; their exception families are checked in control::metrics.)
}

/// A user who may not make the default socket (here: not root, so /run is
/// not theirs) still runs the fast path, without a socket, and is told
/// why; only a socket asked for with --control-socket is required.
#[test]
fn a_user_who_may_not_make_the_default_socket_still_runs() {
    if !drivers::test_netns::is_root() {
        drivers::skip_test!("needs root to run the daemon as another user (setpriv)");
        return;
    }
    if !setpriv_works() {
        drivers::skip_test!("setpriv (util-linux) cannot switch to uid 65534 here");
        return;
    }
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_fastpath"))
        .args(["run", "--no-env", "--no-huge", "--ports", "null,null"])
        .args(["--duration", "1", "--stats-period", "0"])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    // Start-up lines go to stdout in text mode.
    assert!(
        out.contains(
            "fastpath: running without a control socket: --control-socket /run/fastpath/fastpath.sock"
        ),
        "{out}{err}"
    );
    assert!(
        out.contains("buffers: 8192 of 8192 back in the pool"),
        "{out}{err}"
    );
}
