//! The forwarder in L3 mode, end to end on a loop of ring ports: seeded
//! frames are routed at every pass until their TTL runs out, then handed
//! to the kernel's ring; the counts are exact and every buffer returns.

use config::port_spec::PortSpec;
use config::run_config::{RunConfig, ValidRunConfig};
use drivers::mbuf::PortId;
use drivers::memory::MemoryBacking;
use drivers::ring::Consumer;
use fastpath::counters::PuntReason;
use fastpath::exception::Punted;
use fastpath::forwarder::{Forwarder, L3Setup};
use fastpath::fwd_mode::FwdMode;
use fastpath::l3::ring_loop::{ring_loop, SEED_TTL};
use std::time::{Duration, Instant};

/// Two ring ports in L3 mode on ordinary pages, seeding `tx_first`
/// bursts on each.
fn ring_pair_l3(tx_first: usize) -> ValidRunConfig {
    RunConfig {
        ports: vec![PortSpec::Ring, PortSpec::Ring],
        backing: MemoryBacking::NoHuge,
        mode: FwdMode::L3,
        tx_first: Some(tx_first),
        ..RunConfig::default()
    }
    .validate()
    .expect("valid configuration")
}

/// What the workers punt, until `n` packets or 20 s.
fn take_punts(rings: &mut [Consumer<Punted>], n: u64) -> Vec<Punted> {
    let mut punted = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while (punted.len() as u64) < n && Instant::now() < deadline {
        for r in rings.iter_mut() {
            while let Some(p) = r.pop() {
                punted.push(p);
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    punted
}

#[test]
fn seeds_are_routed_until_their_ttl_runs_out_then_punted() {
    let cfg = ring_pair_l3(2);
    let (tables, seeds) = ring_loop(2, 16).unwrap();
    let setup = L3Setup { tables, seeds };
    let mut fwd = Forwarder::start_l3(&cfg, setup).expect("forwarder starts");
    let mut rings = fwd.take_punt_rings();
    assert_eq!(rings.len(), fwd.cpus().len());
    // 2 ports x 2 bursts x 32 seeds, one worker.
    let seeds = 2 * 2 * 32 * fwd.cpus().len() as u64;
    let punted = take_punts(&mut rings, seeds);
    let passes = u64::from(SEED_TTL) - 1;
    let s = fwd.snapshot();
    let (_, c) = s.cores[0];
    // Each seed is sent, routed 254 times (TTL 255 down to 2 on arrival),
    // and punted when it arrives with TTL 1.
    assert_eq!(punted.len() as u64, seeds);
    assert_eq!(c.tx, seeds * (1 + passes));
    assert_eq!(c.rx, seeds * (passes + 1));
    assert_eq!(c.punts_for(PuntReason::TtlExceeded), seeds);
    assert_eq!(c.punted(), seeds);
    assert_eq!(c.dropped(), 0);
    for p in &punted {
        assert!(p.port == PortId(0) || p.port == PortId(1));
        // As received: TTL 1, the seed's length.
        assert_eq!(p.mbuf.data().len(), 60);
        assert_eq!(p.mbuf.data()[14 + 8], 1);
    }
    drop((punted, rings));
    let r = fwd.stop();
    assert!(
        r.clean(),
        "buffers {} of {}",
        r.buffers_returned,
        r.last.pool_count
    );
}

/// What the kernel sends out of a port (the exception thread's injection
/// ring) is sent by the worker on that port: 40 ARP requests injected on
/// port 0 cross the ring pair to port 1, whose worker punts each (ARP is
/// the kernel's) from port 1; counted as injected, sent and punted.
#[test]
fn injected_frames_leave_by_their_port() {
    let cfg = ring_pair_l3(0);
    let mut fwd = Forwarder::start(&cfg).expect("forwarder starts");
    let mut rings = fwd.take_punt_rings();
    let mut inject = fwd.take_inject_rings();
    assert_eq!(inject.len(), 2, "one per port");
    assert!(fwd.take_publisher().is_some());
    let mut cache = fwd.pool().cache();
    const N: u64 = 40;
    for i in 0..N {
        let mut m = cache.alloc().expect("a buffer");
        let d = m.append(60).unwrap();
        d.fill(0);
        d[..6].fill(0xff);
        d[6..12].copy_from_slice(&[2, 0, 0, 0, 0, i as u8]);
        d[12..14].copy_from_slice(&[0x08, 0x06]);
        // A full ring is the exception thread's `inject_full`; 40 fit.
        inject[0].push(m).expect("room in the injection ring");
    }
    drop(cache);
    let punted = take_punts(&mut rings, N);
    let s = fwd.snapshot();
    let (_, c) = s.cores[0];
    assert_eq!(punted.len() as u64, N);
    assert!(punted.iter().all(|p| p.port == PortId(1)));
    assert_eq!(c.injected, N);
    assert_eq!(c.tx, N);
    assert_eq!(c.punts_for(PuntReason::Arp), N);
    assert_eq!(c.dropped(), 0);
    drop((punted, rings, inject));
    let r = fwd.stop();
    assert!(
        r.clean(),
        "buffers {} of {}",
        r.buffers_returned,
        r.last.pool_count
    );
}
