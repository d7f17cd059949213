//! Prints the kernel mirror's events live, with the time each took to
//! arrive since the previous print, and the counters on exit.
//!
//! `cargo run -p fastpath --example mirror_watch -- IFNAME... [--table N]`;
//! then change things with `ip addr`, `ip route`, `ip neigh`, `ip link`.
//! Stops after `--seconds N` (default: never). With MIRROR_WATCH_QUIET set
//! in the environment the initial dump's events are not printed, only
//! counted.

use fastpath::mirror::{KernelMirror, MirrorConfig};
use std::time::{Duration, Instant};

fn main() {
    let mut names = Vec::new();
    let mut table = None;
    let mut seconds = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--table" => table = args.next().and_then(|t| t.parse().ok()),
            "--seconds" => seconds = args.next().and_then(|t| t.parse::<u64>().ok()),
            _ => names.push(a),
        }
    }
    if names.is_empty() {
        eprintln!("usage: mirror_watch IFNAME... [--table N] [--seconds N]");
        std::process::exit(2);
    }
    let mut config = MirrorConfig::new(names);
    if let Some(t) = table {
        config.table = t;
    }
    let opened = Instant::now();
    let mut mirror = match KernelMirror::open(&config) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("mirror_watch: {e}");
            std::process::exit(1);
        }
    };
    let mut events = Vec::new();
    if let Err(e) = mirror.poll(&mut events) {
        eprintln!("mirror_watch: {e}");
        std::process::exit(1);
    }
    let dumped = opened.elapsed();
    let quiet = std::env::var_os("MIRROR_WATCH_QUIET").is_some();
    for ev in events.drain(..).filter(|_| !quiet) {
        println!("{:>10.3} ms  {ev}", 0.0);
    }
    println!(
        "mirror_watch: initial dump: {} links, {} addresses, {} routes, {} neighbours in {:.1} ms",
        mirror.state().links().count(),
        mirror.state().addrs().count(),
        mirror.state().routes().count(),
        mirror.state().neighs().count(),
        dumped.as_secs_f64() * 1e3
    );
    let start = Instant::now();
    while seconds.is_none_or(|s| start.elapsed() < Duration::from_secs(s)) {
        if let Err(e) = mirror.wait(Duration::from_millis(200), &mut events) {
            eprintln!("mirror_watch: {e}");
            std::process::exit(1);
        }
        for ev in events.drain(..) {
            println!("{:>10.3} ms  {ev}", start.elapsed().as_secs_f64() * 1e3);
        }
    }
    println!("{}", mirror.counters());
}
