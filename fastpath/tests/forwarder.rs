//! The forwarder end to end: start workers on real pinned threads, forward,
//! stop, and account for every buffer.

use drivers::cpu::{thread_affinity, CpuSet};
use drivers::memory::{hugepage_status, MemoryBacking, PageSize};
use fastpath::forwarder::{CoreChoice, Forwarder, ForwarderConfig, PortKind, StartError};
use fastpath::fwd_mode::FwdMode;
use std::time::Duration;

fn soft(ports: Vec<PortKind>) -> ForwarderConfig {
    ForwarderConfig {
        ports,
        backing: MemoryBacking::NoHuge,
        ..ForwarderConfig::default()
    }
}

fn run_for(cfg: &ForwarderConfig, ms: u64) -> fastpath::forwarder::FinalReport {
    let fwd = Forwarder::start(cfg).expect("forwarder starts");
    std::thread::sleep(Duration::from_millis(ms));
    fwd.stop()
}

#[test]
fn null_ports_forward_and_every_buffer_comes_back() {
    let r = run_for(&soft(vec![PortKind::Null, PortKind::Null]), 200);
    let (_, c) = r.last.cores[0];
    assert!(c.tx > 10_000, "forwarded {}", c.tx);
    assert_eq!(c.rx, c.tx, "io between null ports drops nothing");
    let p = &r.last.ports;
    assert_eq!(p[0].1.ipackets + p[1].1.ipackets, c.rx);
    assert_eq!(p[0].1.opackets + p[1].1.opackets, c.tx);
    assert!(r.panicked.is_empty());
    assert!(
        r.all_buffers_returned(),
        "{} of {}",
        r.buffers_returned,
        r.last.pool_count
    );
}

#[test]
fn ring_loop_keeps_packets_in_flight_and_returns_them_at_stop() {
    let mut cfg = soft(vec![PortKind::Ring, PortKind::Ring]);
    cfg.tx_first = 4;
    cfg.mode = FwdMode::Mac;
    let fwd = Forwarder::start(&cfg).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let live = fwd.snapshot();
    // 2 ports x 4 bursts x 32 seeded packets circulate: they are out of the pool.
    assert!(live.pool_count - live.pool_available >= 256);
    let r = fwd.stop();
    let (_, c) = r.last.cores[0];
    assert!(c.rx > 10_000);
    assert_eq!(c.dropped(), 0);
    assert!(
        r.all_buffers_returned(),
        "packets left in the rings went home"
    );
}

#[test]
fn one_worker_per_allowed_cpu() {
    let all = thread_affinity().unwrap();
    let mut cfg = soft(vec![PortKind::Null, PortKind::Null]);
    cfg.cores = CoreChoice::List(all.clone());
    let r = run_for(&cfg, 200);
    assert_eq!(r.last.cores.len(), all.len());
    for (cpu, c) in &r.last.cores {
        assert!(c.tx > 0, "worker on CPU {cpu} forwarded nothing");
    }
    assert!(r.all_buffers_returned());
}

#[test]
fn cpu_outside_the_allowed_set_is_a_clear_error() {
    let mut cfg = soft(vec![PortKind::Null]);
    cfg.cores = CoreChoice::List(CpuSet::parse_list("4000").unwrap());
    let err = Forwarder::start(&cfg).err().expect("must fail");
    let msg = err.to_string();
    assert!(matches!(err, StartError::Cpus(_)), "{err:?}");
    assert!(
        msg.contains("4000") && msg.contains("allowed CPUs are"),
        "{msg}"
    );
}

#[test]
fn bad_configurations_are_refused() {
    let mut cfg = soft(vec![PortKind::Ring]);
    assert!(
        matches!(Forwarder::start(&cfg), Err(StartError::Config(_))),
        "lone ring port"
    );
    cfg.ports = vec![PortKind::Null];
    cfg.burst = 0;
    assert!(matches!(Forwarder::start(&cfg), Err(StartError::Config(_))));
    cfg.burst = 513;
    assert!(matches!(Forwarder::start(&cfg), Err(StartError::Config(_))));
    cfg.burst = 32;
    cfg.packet_size = 4000;
    assert!(matches!(Forwarder::start(&cfg), Err(StartError::Config(_))));
    cfg.packet_size = 64;
    cfg.cores = CoreChoice::Count(1000);
    assert!(matches!(Forwarder::start(&cfg), Err(StartError::Config(_))));
    cfg.cores = CoreChoice::Count(1);
    cfg.ports = vec![];
    assert!(matches!(Forwarder::start(&cfg), Err(StartError::Config(_))));
}

#[test]
fn forwards_from_hugepages() {
    let free_2m = hugepage_status()
        .iter()
        .find(|s| s.size == PageSize::Size2M)
        .map_or(0, |s| s.free);
    if free_2m < 16 {
        drivers::skip_test!(
            "16 free 2M hugepages needed, {free_2m} free: echo 64 > /proc/sys/vm/nr_hugepages"
        );
        return;
    }
    let cfg = ForwarderConfig {
        backing: MemoryBacking::default(),
        ..ForwarderConfig::default()
    };
    let fwd = Forwarder::start(&cfg).expect("hugepage pool");
    assert!(
        fwd.pool().describe_memory().contains("hugepages"),
        "{}",
        fwd.pool().describe_memory()
    );
    std::thread::sleep(Duration::from_millis(100));
    let r = fwd.stop();
    assert!(r.last.cores[0].1.tx > 0);
    assert!(r.all_buffers_returned());
}

#[test]
fn dropping_a_running_forwarder_stops_workers_and_returns_buffers() {
    let mut cfg = soft(vec![PortKind::Ring, PortKind::Ring]);
    cfg.tx_first = 2;
    let fwd = Forwarder::start(&cfg).unwrap();
    let pool = fwd.pool().clone();
    std::thread::sleep(Duration::from_millis(50));
    assert!(pool.in_use() > 0, "packets are in flight");
    drop(fwd);
    assert_eq!(
        pool.available(),
        pool.count(),
        "nothing lost without stop()"
    );
}

#[test]
fn port_kinds_parse_pci_addresses_as_vfs() {
    let vf: PortKind = "0000:01:10.0".parse().unwrap();
    assert_eq!(vf, PortKind::Pci("0000:01:10.0".parse().unwrap()));
    assert_eq!(vf.to_string(), "0000:01:10.0");
    assert_eq!(
        "01:10.4".parse::<PortKind>().unwrap(),
        PortKind::Pci("0000:01:10.4".parse().unwrap())
    );
    assert_eq!("null".parse::<PortKind>().unwrap(), PortKind::Null);
    assert_eq!("ring".parse::<PortKind>().unwrap(), PortKind::Ring);
    assert!("eth0".parse::<PortKind>().is_err());
}

#[test]
fn vf_ports_need_hugepages_and_distinct_addresses() {
    let vf = PortKind::Pci("0000:01:10.0".parse().unwrap());
    let mut cfg = soft(vec![vf, PortKind::Null]);
    cfg.backing = MemoryBacking::NoHuge;
    match Forwarder::start(&cfg) {
        Err(StartError::Config(m)) => assert!(m.contains("hugepage DMA memory"), "{m}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("started a VF port on 4K pages"),
    }
    let cfg = soft(vec![vf, vf]);
    match Forwarder::start(&cfg) {
        Err(StartError::Config(m)) => assert!(m.contains("given twice"), "{m}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("started one VF twice"),
    }
}

#[test]
fn a_set_interrupt_flag_stops_start_up_before_anything_is_built() {
    use std::sync::atomic::AtomicBool;
    let cfg = soft(vec![PortKind::Ring, PortKind::Ring]);
    match Forwarder::start_interruptible(&cfg, &AtomicBool::new(true)) {
        Err(StartError::Interrupted { phase, report }) => {
            assert_eq!(phase, "checking the VFs");
            assert!(report.last.cores.is_empty() && report.last.ports.is_empty());
            assert_eq!((report.buffers_returned, report.last.pool_count), (0, 0));
            assert!(report.all_buffers_returned());
        }
        Err(e) => panic!("expected an interrupted start, got {e}"),
        Ok(_) => panic!("started although interrupted"),
    }
}

#[test]
fn a_large_tx_first_does_not_delay_the_stop() {
    // 10^8 bursts per port into rings of 1024: the seeding would take
    // minutes; the stop must not wait for it.
    let mut cfg = soft(vec![PortKind::Ring, PortKind::Ring]);
    cfg.tx_first = 100_000_000;
    cfg.nb_mbuf = Some(65536);
    let fwd = Forwarder::start(&cfg).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let seeding = fwd.snapshot();
    let t = std::time::Instant::now();
    let r = fwd.stop();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "stop took {:?}",
        t.elapsed()
    );
    // The seeding was under way and visible (counters published per round).
    assert!(
        seeding.cores[0]
            .1
            .drops_for(fastpath::counters::DropReason::TxFull)
            > 0
    );
    assert!(
        r.all_buffers_returned(),
        "{} of {}",
        r.buffers_returned,
        r.last.pool_count
    );
}
