//! Every `fastpath run` option that can be given a bad value, through the
//! binary: each is refused before anything starts, with exit status 2 and
//! a message that names the option and the value. None panics, hangs or
//! runs with a silently changed value.

use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `fastpath run ARGS`, with `--no-huge` unless a hugetlbfs directory
/// is given; (exit code, stdout, stderr).
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fastpath"));
    cmd.env("RUST_LOG", "warn").arg("run").args(args);
    if !args.contains(&"--huge-dir") {
        cmd.arg("--no-huge");
    }
    let out = cmd.output().expect("the fastpath binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `args` are refused with status 2 before anything starts, and stderr
/// holds every one of `expected`.
fn refused(args: &[&str], expected: &[&str]) {
    let (code, out, err) = run(args);
    assert_eq!(code, Some(2), "{args:?}\nstdout: {out}\nstderr: {err}");
    assert!(!out.contains("forwarding"), "{args:?} started: {out}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    for e in expected {
        assert!(err.contains(e), "{args:?}: {e:?} not in\n{err}");
    }
}

macro_rules! refused {
    ($($name:ident: [$($arg:expr),*] => [$($want:expr),*];)*) => {$(
        #[test]
        fn $name() {
            refused(&[$($arg),*], &[$($want),*]);
        }
    )*};
}

refused! {
    duration_inf: ["--duration", "inf"] => ["'--duration <DURATION>'", "\"inf\" is not a finite duration"];
    duration_nan: ["--duration", "nan"] => ["'--duration <DURATION>'", "\"nan\" is not a finite duration"];
    duration_negative: ["--duration=-1"] => ["'--duration <DURATION>'", "\"-1\" is negative"];
    duration_negative_separate: ["--duration", "-1"] => ["'--duration <DURATION>'", "\"-1\" is negative"];
    duration_zero: ["--duration", "0"] => ["fastpath: error: --duration: a duration of 0 would stop before forwarding anything"];
    duration_bad_unit: ["--duration", "10d"] => ["'--duration <DURATION>'", "\"10d\" is not a duration", "500ms, 10s, 1m, 1h"];
    duration_over_a_year: ["--duration", "9000h"] => ["fastpath: error: --duration: duration 32400000 s is longer than the maximum 31536000 s"];
    stats_period_inf: ["--stats-period", "inf"] => ["'--stats-period <STATS_PERIOD>'", "\"inf\" is not a finite duration"];
    stats_period_too_short: ["--stats-period", "1ms"] => ["fastpath: error: --stats-period: statistics period 1 ms is out of range"];
    nb_mbuf_too_small: ["--nb-mbuf", "10"] => ["fastpath: error: --nb-mbuf: a pool of 10 buffers is too small: these settings need at least 416"];
    nb_mbuf_too_small_for_the_exception_path: ["--mode", "l3", "--nb-mbuf", "1000"]
        => ["fastpath: error: --nb-mbuf: a pool of 1000 buffers is too small: these settings need at least 3968",
            "+ l3 exception path (1 worker x punt ring 1024 + 2 ports x injection ring 1024 + exception thread 1.5 x cache 256 + burst 32 + 1 worker x 2 ports x TX buffer 32)"];
    nb_mbuf_too_large: ["--nb-mbuf", "4294967296"] => ["fastpath: error: --nb-mbuf: a pool of 4294967296 buffers is more than the maximum 16777215"];
    default_pool_overflow_from_cores: ["--cores", "65536", "--ports", "ring,ring", "--ring-size", "65536", "--burst", "512"]
        => ["fastpath: error: --nb-mbuf: these settings need a pool of", "more than the maximum 16777215"];
    cores_beyond_any_cpu: ["--cores", "18446744073709551615"] => ["fastpath: error: --cores: 18446744073709551615 worker cores: at most 65536"];
    ring_size_2g: ["--ports", "ring,ring", "--ring-size", "2147483648"] => ["fastpath: error: --ring-size: ring size 2147483648 must be a power of two from 1 to 65536"];
    ring_size_not_power_of_two: ["--ring-size", "1000"] => ["--ring-size: ring size 1000"];
    tx_first_beyond_the_ring: ["--ports", "ring,ring", "--tx-first", "1000000"] => ["fastpath: error: --tx-first: 1000000 tx-first bursts of 32 is too many: at most 32", "ring port's 1024 slots"];
    tx_first_beyond_the_pool: ["--tx-first", "18446744073709551615"] => ["fastpath: error: --tx-first: 18446744073709551615 tx-first bursts of 32 is too many", "the pool has room for"];
    tx_first_beyond_a_given_pool: ["--nb-mbuf", "1000", "--tx-first", "10"] => ["--tx-first: 10 tx-first bursts of 32 is too many: at most 9"];
    cache_size_over_512: ["--cache-size", "513"] => ["fastpath: error: --cache-size: cache size 513 is out of range: 0 to 512 buffers"];
    burst_zero: ["--burst", "0"] => ["fastpath: error: --burst: burst 0 is out of range: 1 to 512 packets"];
    burst_513: ["--burst", "513"] => ["fastpath: error: --burst: burst 513 is out of range"];
    burst_negative: ["--burst", "-1"] => ["'--burst <BURST>'", "-1"];
    packet_size_below_60: ["--packet-size", "59"] => ["fastpath: error: --packet-size: packet size 59 is out of range: 60 to 2048 bytes"];
    packet_size_above_data_room: ["--packet-size", "2049"] => ["--packet-size: packet size 2049 is out of range"];
    eth_peer_without_mac: ["--eth-peer", "1"] => ["'--eth-peer <ETH_PEER>'", "\"1\": expected PORT,MAC"];
    eth_peer_bad_mac: ["--eth-peer", "1,02:00:00:00:00:zz"] => ["'--eth-peer <ETH_PEER>'", "bad MAC address \"02:00:00:00:00:zz\""];
    eth_peer_bad_port: ["--eth-peer", "x,02:00:00:00:00:01"] => ["'--eth-peer <ETH_PEER>'", "port \"x\" is not a port number"];
    eth_peer_no_such_port: ["--eth-peer", "2,02:00:00:00:00:01"] => ["fastpath: error: --eth-peer: peer 2,02:00:00:00:00:01 names port 2, but there are 2 ports (0 to 1)"];
    eth_peer_twice: ["--eth-peer", "1,02:00:00:00:00:01", "--eth-peer", "1,02:00:00:00:00:02"] => ["--eth-peer: port 1 is given two peers"];
    ports_empty: ["--ports", ""] => ["--ports", "\"\""];
    ports_unknown: ["--ports", "null,warp"] => ["'--ports <PORTS>'", "unknown port \"warp\": expected null, ring, afpacket:IFACE, sim:ixgbevf, sim:iavf or a PCI address"];
    ports_bad_interface: ["--ports", "afpacket:a/b"] => ["'--ports <PORTS>'", "\"a/b\" is not an interface name"];
    ports_duplicate_interface: ["--ports", "afpacket:lo,afpacket:lo"] => ["fastpath: error: --ports: afpacket:lo is given twice (ports 0 and 1)"];
    afpacket_more_workers_than_queues: ["--ports", "afpacket:lo,null", "--cores", "65"] => ["fastpath: error: --cores: port 0 (afpacket:lo) would get one queue per worker, 65, and an AF_PACKET port has at most 64"];
    afpacket_no_blocks: ["--ports", "afpacket:lo", "--afpacket-blocks", "0"] => ["fastpath: error: --afpacket-blocks: AF_PACKET rings: RX blocks 0 is out of range: 1 to 65536"];
    afpacket_block_size: ["--afpacket-block-size", "5000"] => ["fastpath: error: --afpacket-block-size: AF_PACKET rings: RX block size 5000 must be a power of two"];
    cpus_reversed: ["--cpus", "3-1"] => ["'--cpus <CPUS>'", "reversed CPU range \"3-1\""];
    cpus_empty: ["--cpus", ""] => ["fastpath: error: --cpus: no worker core"];
    huge_dir_empty: ["--huge-dir", ""] => ["a value is required for '--huge-dir <HUGE_DIR>'"];
    mode_unknown: ["--mode", "teleport"] => ["'--mode <MODE>'", "unknown forwarding mode \"teleport\""];
    unicode_number: ["--burst", "３２"] => ["'--burst <BURST>'"];
    stray_short_word: ["-10"] => ["fastpath: error: unexpected argument '-10': `fastpath run` takes --long options only"];
    value_that_looks_like_an_option: ["--eth-peer", "-1,02:00:00:00:00:01"] => ["'--eth-peer <ETH_PEER>'", "port \"-1\" is not a port number"];
}

#[test]
fn durations_take_units() {
    let started = Instant::now();
    let (code, out, err) = run(&["--duration", "500ms", "--stats-period", "0"]);
    let took = started.elapsed();
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("final statistics after 0."), "{out}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// Malformed fast-path.env files, through the binary: each refused with
/// status 2, the file, its line, the value and what is allowed.
#[test]
fn malformed_fast_path_env_files_name_line_value_and_what_is_allowed() {
    let dir = std::env::temp_dir().join(format!("fastpath-env-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, (text, want)) in [
        (
            "# ok\nFP_MASK=most\n",
            vec![
                ":",
                "line 2: FP_MASK=\"most\"",
                "allowed: min, half, max, auto",
            ],
        ),
        (
            "FP_PORTS='ring ring\n",
            vec!["line 1: FP_PORTS: unterminated ' quote"],
        ),
        (
            "FP_PORTS='ring ring'\nCORE_PORT_MAPPING=c1=0:0\n",
            vec![
                "line 2: CORE_PORT_MAPPING=\"c1=0:0\"",
                "names port 0 twice",
                "allowed: c<cpu>=",
            ],
        ),
        (
            "NB_TXD=5000\n",
            vec![
                "line 1: NB_TXD=\"5000\"",
                "allowed: ixgbevf: a multiple of 8 from 64 to 4096",
            ],
        ),
        (
            "FP_MEMORY=lots\n",
            vec![
                "line 1: FP_MEMORY=\"lots\"",
                "allowed: auto (no cap) or a positive number of MiB",
            ],
        ),
        (
            "FP_OPTIONS=--max-route=0\n",
            vec![
                "line 1: FP_OPTIONS=\"--max-route=0\"",
                "out of range 1..=16777216",
            ],
        ),
        (
            "\n\nFP_PORTS='null null'\nFP_MEMORY=1\nNB_MBUF=8192\n",
            vec![".env:4: FP_MEMORY=\"1\": these settings need 18 MiB"],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.join(format!("{i}.env"));
        std::fs::write(&path, text).unwrap();
        let p = path.display().to_string();
        let mut want = want;
        want.push(&p);
        refused(&["--env", &p, "--duration", "1"], &want);
    }
    std::fs::remove_dir_all(&dir).unwrap();
    // An explicit file that does not exist.
    refused(
        &["--env", "/nonexistent/fast-path.env"],
        &["--env /nonexistent/fast-path.env: No such file or directory"],
    );
}
