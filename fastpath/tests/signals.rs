//! How the `fastpath` binary stops: on each stop signal, on a second
//! signal while stopping, on a closed stdout, and in the middle of
//! start-up seeding. Each case runs the real binary.

mod common;
use common::{exit_within, fastpath, kill, read_all, spawn_until_live, until_live};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn stops_cleanly_on(signal: &str) {
    let (mut child, mut seen, lines) = spawn_until_live(&[
        "run",
        "--no-huge",
        "--ports",
        "ring,ring",
        "--stats-period",
        "0.2",
    ]);
    kill(&child, signal);
    let status = exit_within(&mut child, Duration::from_secs(10), signal);
    seen.extend(lines.map_while(Result::ok));
    let text = seen.join("\n");
    assert!(status.success(), "{status:?}\n{text}");
    let name = format!("SIG{}", &signal[1..]);
    assert!(
        text.contains(&format!(
            "fastpath: stopping ({name}); a second signal exits at once"
        )),
        "{text}"
    );
    assert!(text.contains("final statistics"), "{text}");
    assert!(
        text.contains("buffers: 8192 of 8192 back in the pool") && !text.contains("BUFFERS LOST"),
        "{text}"
    );
}

#[test]
fn sigint_stops_with_a_final_summary() {
    stops_cleanly_on("-INT");
}

#[test]
fn sigterm_stops_with_a_final_summary() {
    stops_cleanly_on("-TERM");
}

#[test]
fn sighup_stops_with_a_final_summary() {
    stops_cleanly_on("-HUP");
}

#[test]
fn sigquit_stops_with_a_final_summary() {
    stops_cleanly_on("-QUIT");
}

/// The kernel function a thread sleeps in (root reads it on any kernel).
fn wchan(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/wchan")).unwrap_or_default()
}

#[test]
fn a_second_sigint_while_the_stop_hangs_exits_at_once() {
    // A stdout nobody reads fills up, and the control thread blocks in
    // write(2): the stop that a first SIGINT asks for can never print its
    // summary, so it hangs. Only a second signal ends the process.
    // 64 ports make live lines of about 2 KB, ten a second (the shortest
    // period allowed): the 64 KiB pipe is full within a few seconds.
    let ports = vec!["null"; 64].join(",");
    let mut child = fastpath()
        .args([
            "run",
            "--no-huge",
            "--stats-period",
            "100ms",
            "--ports",
            &ports,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !wchan(pid).contains("pipe_write") {
        assert!(
            Instant::now() < deadline,
            "the control thread never blocked on its full stdout (wchan {:?})",
            wchan(pid)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Repeat until it exits: two signals sent back to back before the
    // watcher reads them count once, as the kernel merges them.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit after repeated SIGINTs");
        kill(&child, "-INT");
        std::thread::sleep(Duration::from_millis(100));
    };
    let err = read_all(child.stderr.take());
    assert_eq!(status.code(), Some(130), "128 + SIGINT; stderr: {err}");
    // The last line (log lines, such as a warning that the pool could
    // not be locked without root, may come before it).
    assert_eq!(
        err.trim_end().lines().last(),
        Some(
            "fastpath: SIGINT while stopping: exiting at once, without the final summary or the buffer audit"
        ),
        "{err}"
    );
}

#[test]
fn a_closed_stdout_ends_the_run_quietly_with_the_audit_done() {
    let mut child = fastpath()
        .env("RUST_LOG", "fastpath=debug")
        .args(["run", "--no-huge", "--stats-period", "0.1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // As `| head -3` does: read a few lines, then close the pipe.
    let (seen, lines) = until_live(child.stdout.take().unwrap());
    drop(lines);
    let status = exit_within(&mut child, Duration::from_secs(10), "closing stdout");
    let err = read_all(child.stderr.take());
    assert!(seen[0].starts_with("fastpath: forwarding"), "{seen:?}");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked") && !err.contains("ERROR"), "{err}");
    assert!(
        err.contains("standard output closed: stopped; buffers: 8192 of 8192 back in the pool"),
        "{err}"
    );
}

/// Resident memory of a process, in bytes (0 once it is gone).
fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[test]
fn sigint_while_a_large_pool_is_faulted_in_stops_start_up() {
    // 2M buffers are 4.4 GiB: seconds of page faults. The signal comes
    // once the pool's memory is being faulted in (the process has grown
    // past 256 MiB), and start-up must give up within a chunk or two.
    let mut child = fastpath()
        .args(["run", "--no-huge", "--nb-mbuf", "2000000"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    while rss(pid) < 256 << 20 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "exited before the pool was built"
        );
        assert!(Instant::now() < deadline, "the pool never grew");
        std::thread::sleep(Duration::from_millis(5));
    }
    let sent = Instant::now();
    kill(&child, "-INT");
    let status = exit_within(&mut child, Duration::from_secs(10), "SIGINT");
    let took = sent.elapsed();
    let out = read_all(child.stdout.take());
    assert!(status.success(), "{status:?}\n{out}");
    assert!(
        out.starts_with(
            "fastpath: start-up interrupted by SIGINT (building the buffer pool)\n\
             ---- final statistics"
        ),
        "{out}"
    );
    assert!(out.contains("buffers: 0 of 0 back in the pool"), "{out}");
    assert!(!out.contains("forwarding"), "{out}");
    assert!(took < Duration::from_secs(2), "stopped after {took:?}");
}
