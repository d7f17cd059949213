//! Test support: how a test that cannot run on this machine says so
//! ([`skip_test!`](crate::skip_test)), and the guard of the VM lab's tests.
//!
//! libtest has no "skipped" result. A test that returns early is counted
//! as passed, and what it printed is hidden, so a suite could be all green
//! without having tested anything. Every test of every crate that depends
//! on the machine (root, hugepages, CAP_NET_RAW, mounts, PCI devices) goes
//! through this one module instead:
//!
//! - with `FASTPATH_REQUIRE_ALL=1` (`scripts/test.sh` as root, so CI) the
//!   test fails: "required but cannot run: why";
//! - otherwise the test is recorded as skipped: one line `SKIPPED <test> :
//!   <why>` appended to the file `FASTPATH_SKIP_LOG` names (set by
//!   `scripts/test.sh`, whose tally then counts it as skipped, not passed,
//!   and lists it), and the same line on stderr, written past libtest's
//!   output capture so that a plain `cargo test` shows it too.
//!
//! The caller returns right after the macro; the macro itself does not
//! return, so that it also works in helpers that answer `Option`.
//!
//! Compiled in every build (it is a few lines of std) so that the unit and
//! integration tests of every crate of the workspace can reach it.

use std::fmt;
use std::io::Write;
use std::path::Path;

/// Set to `1` to turn every skip into a failure.
pub const REQUIRE_ALL_VAR: &str = "FASTPATH_REQUIRE_ALL";
/// The file skip lines are appended to.
pub const SKIP_LOG_VAR: &str = "FASTPATH_SKIP_LOG";
/// What every skip line starts with.
const SKIP_PREFIX: &str = "SKIPPED ";

/// Marks the calling test as skipped, or fails it under
/// `FASTPATH_REQUIRE_ALL=1`; the arguments are `format!`'s and say why
/// the test cannot run here and, when there is one, what would let it run.
/// Call it on the test's own thread (libtest names that thread after the
/// test), then return.
///
/// ```no_run
/// # let free_pages = 0;
/// if free_pages < 2 {
///     drivers::skip_test!("only {free_pages} free 2M hugepages (2 needed)");
///     return;
/// }
/// ```
#[macro_export]
macro_rules! skip_test {
    ($($why:tt)+) => {
        $crate::testing::skip(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_CRATE_NAME"),
            format_args!($($why)+),
        )
    };
}

/// What [`skip_test!`](crate::skip_test) expands to: `package` and `krate` are the calling
/// test target's (they tell unit tests from integration test targets).
#[track_caller]
pub fn skip(package: &str, krate: &str, why: fmt::Arguments<'_>) {
    let required = std::env::var(REQUIRE_ALL_VAR).as_deref() == Ok("1");
    let log = std::env::var_os(SKIP_LOG_VAR);
    record(
        &test_name(package, krate),
        &why.to_string(),
        required,
        log.as_deref().map(Path::new),
        // The stream, not eprint!: libtest captures the macros' output of a
        // passing test and never shows it.
        &mut std::io::stderr().lock(),
    );
}

/// Fails the test if `required`; otherwise writes its skip line to `echo`
/// and appends it to `log`.
#[track_caller]
fn record(test: &str, why: &str, required: bool, log: Option<&Path>, echo: &mut dyn Write) {
    if required {
        panic!("{test}: required ({REQUIRE_ALL_VAR}=1) but cannot run: {why}");
    }
    // One line: the tally counts lines, and a reason never spans two.
    let line = format!("{SKIP_PREFIX}{test} : {}\n", why.replace('\n', " "));
    let _ = echo.write_all(line.as_bytes());
    if let Some(path) = log {
        // One write of the whole line with O_APPEND: tests running in
        // parallel, in one process or several, never interleave lines.
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(err) = written {
            // A skip that is not recorded would pass as a test that ran.
            panic!(
                "{test}: skipped ({why}), but {SKIP_LOG_VAR}={} cannot record it: {err}",
                path.display()
            );
        }
    }
}

/// An Ethernet/IPv4/UDP frame for tests of ports that spread flows (a
/// fanout hashes addresses and ports): `len` bytes (51 at least), from
/// `src` to `dst`, 198.18.0.1 to 198.19.0.1 (RFC 2544's benchmarking
/// range; IPv4 checksum left 0, no hash reads it), UDP from port `sport`
/// to 9 (discard); at byte 42 `marker`, at 46 `seq` big-endian, then
/// bytes that depend on their position and `seq`, so that any corruption
/// shows. Panics below 51 bytes (a test's own mistake).
pub fn udp_frame(
    dst: [u8; 6],
    src: [u8; 6],
    sport: u16,
    marker: &[u8; 4],
    seq: u32,
    len: usize,
) -> Vec<u8> {
    assert!(len >= 51, "a test UDP frame has 51 bytes at least");
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&((len - 14) as u16).to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[198, 18, 0, 1]);
    f[30..34].copy_from_slice(&[198, 19, 0, 1]);
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&9u16.to_be_bytes());
    f[38..40].copy_from_slice(&((len - 34) as u16).to_be_bytes());
    f[42..46].copy_from_slice(marker);
    f[46..50].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in f.iter_mut().enumerate().skip(50) {
        *b = (i as u32).wrapping_mul(31).wrapping_add(seq) as u8;
    }
    f
}

/// The sequence number of a frame [`udp_frame`] made with `marker`, if
/// `d` is one.
pub fn udp_frame_seq(d: &[u8], marker: &[u8; 4]) -> Option<u32> {
    if d.get(42..46) != Some(&marker[..]) {
        return None;
    }
    Some(u32::from_be_bytes(d.get(46..50)?.try_into().ok()?))
}

/// For the VM lab's tests, which exist only in its build (`--cfg
/// fastpath_lab`, scripts/vmlab/build-tests.sh): fails the test unless it
/// runs in the lab guest, whose init sets `FASTPATH_LAB=1`. A lab binary run
/// anywhere else is a broken set-up, never a skip.
#[track_caller]
pub fn assert_in_vm_lab() {
    assert!(
        std::env::var("FASTPATH_LAB").as_deref() == Ok("1"),
        "a VM lab test (built with --cfg fastpath_lab) run outside the lab \
         (FASTPATH_LAB is not 1): run it through scripts/vmlab/run.sh"
    );
}

/// The test's name as `cargo test` lists it, prefixed with where it lives:
/// `drivers::memory::region::tests::x` for a unit test,
/// `fastpath/tests/cli::x` for a test of the integration target `cli`.
fn test_name(package: &str, krate: &str) -> String {
    // libtest runs each test on a thread named after it (its path inside
    // the target).
    let current = std::thread::current();
    let test = match current.name() {
        Some(name) if name != "main" => name,
        _ => "<test run outside libtest's threads>",
    };
    if krate == package.replace('-', "_") {
        format!("{krate}::{test}")
    } else {
        format!("{package}/tests/{krate}::{test}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_say_where_the_test_lives() {
        let here = "testing::tests::names_say_where_the_test_lives";
        assert_eq!(test_name("drivers", "drivers"), format!("drivers::{here}"));
        assert_eq!(
            test_name("fastpath", "cli"),
            format!("fastpath/tests/cli::{here}")
        );
        assert_eq!(test_name("my-pkg", "my_pkg"), format!("my_pkg::{here}"));
    }

    #[test]
    fn a_skip_is_one_line_in_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("skips");
        let mut echo = Vec::new();
        record(
            "a::b",
            "no hugepages\n(none free)",
            false,
            Some(&log),
            &mut echo,
        );
        record("a::c", "no CAP_NET_RAW", false, Some(&log), &mut echo);
        let lines = "SKIPPED a::b : no hugepages (none free)\nSKIPPED a::c : no CAP_NET_RAW\n";
        assert_eq!(std::fs::read_to_string(&log).unwrap(), lines);
        assert_eq!(String::from_utf8(echo).unwrap(), lines);
    }

    #[test]
    #[should_panic(
        expected = "a::b: required (FASTPATH_REQUIRE_ALL=1) but cannot run: no hugepages"
    )]
    fn a_required_test_fails_instead() {
        record("a::b", "no hugepages", true, None, &mut Vec::new());
    }

    #[test]
    #[should_panic(expected = "cannot record it")]
    fn a_skip_that_cannot_be_recorded_fails() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("no/such/dir");
        record("a::b", "no hugepages", false, Some(&log), &mut Vec::new());
    }
}
