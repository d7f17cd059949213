//! Test support for tests that need root and a network namespace of their
//! own: whether we are root, `ip` commands, and a namespace that is deleted when the test
//! ends (failed or not), in which the test binary can run one of its own
//! ignored tests (`ip netns exec NS <this binary> --exact TEST --ignored`).
//!
//! Compiled in every build, as [`crate::testing`] is, so that every
//! crate's integration tests can reach it.

use std::process::Command;

/// True when this process runs as root (uid 0).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Output of `ip ARGS` (the VM lab's full iproute2 when FASTPATH_LAB_IP
/// names it: the guest's busybox `ip` lacks some commands), panicking
/// with its stderr on failure.
pub fn ip(args: &[&str]) -> String {
    let bin = std::env::var("FASTPATH_LAB_IP").unwrap_or_else(|_| "ip".into());
    let out = Command::new(&bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{bin}` (iproute2): {e}"));
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace `<prefix>-<pid>`, deleted on drop.
#[derive(Debug)]
pub struct TestNetns(String);

impl TestNetns {
    /// Make the namespace (`ip netns add`); panics with `ip`'s message if
    /// it cannot (the caller checked [`is_root`]).
    pub fn new(prefix: &str) -> TestNetns {
        let name = format!("{prefix}-{}", std::process::id());
        ip(&["netns", "add", &name]);
        TestNetns(name)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// Re-runs the calling test (`test`, its name in this binary) inside
    /// the namespace with `env_var` set, and panics unless it passed. The
    /// test checks `env_var` first: set, it is the run inside and does
    /// the work; unset, it is the outer run, which calls this. No test is
    /// `#[ignore]`d for it. The inner run's output is captured and printed
    /// through `eprintln!` (which libtest captures in turn, showing it when
    /// the test fails), so its own `test result:` line never reaches the
    /// suite's tally: each such test counts once.
    pub fn run_test_inside(&self, test: &str, env_var: &str) {
        let exe = std::env::current_exe().expect("test binary path");
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .arg(exe)
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(env_var, "1")
            .output()
            .expect("ip netns exec");
        let stdout = String::from_utf8_lossy(&out.stdout);
        eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            out.status.success(),
            "{test} inside namespace {} failed: {}",
            self.0,
            out.status
        );
        assert!(
            stdout.contains("1 passed"),
            "{test} did not run inside namespace {}",
            self.0
        );
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}
