//! What the tests that run the `fastpath` binary share.

#![allow(dead_code)] // each test crate uses its own part

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, ExitStatus};
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
