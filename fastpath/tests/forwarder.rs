//! The forwarder end to end: start workers on real pinned threads, forward,
//! stop, and account for every buffer.

use config::core_choice::CoreChoice;
use config::core_port_mapping::CorePortMapping;
use config::cpu_list::parse_cpu_list;
use config::port_spec::PortSpec;
use config::run_config::{RunConfig, ValidRunConfig};
use drivers::cpu::{thread_affinity, CpuSet};
use drivers::memory::{hugepage_status, MemoryBacking, PageSize};
use drivers::pmd::OpenError;
use fastpath::forwarder::{Forwarder, StartError};
use fastpath::fwd_mode::FwdMode;
use std::time::Duration;

fn soft(ports: Vec<PortSpec>) -> RunConfig {
    RunConfig {
        ports,
        backing: MemoryBacking::NoHuge,
        ..RunConfig::default()
    }
}

fn valid(cfg: RunConfig) -> ValidRunConfig {
    cfg.validate().expect("valid configuration")
}

fn run_for(cfg: RunConfig, ms: u64) -> fastpath::forwarder::FinalReport {
    let fwd = Forwarder::start(&valid(cfg)).expect("forwarder starts");
    std::thread::sleep(Duration::from_millis(ms));
    fwd.stop()
}

/// Runs until `enough` holds for a snapshot (checked every 10 ms), or 20 s
/// have passed: a loaded machine may give the workers little time, and a
/// fixed sleep would make the test's outcome depend on it.
fn run_until(
    cfg: RunConfig,
    enough: impl Fn(&fastpath::forwarder::Snapshot) -> bool,
) -> fastpath::forwarder::FinalReport {
    let fwd = Forwarder::start(&valid(cfg)).expect("forwarder starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !enough(&fwd.snapshot()) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    fwd.stop()
}

#[test]
fn null_ports_forward_and_every_buffer_comes_back() {
    let r = run_for(soft(vec![PortSpec::Null, PortSpec::Null]), 200);
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
    let mut cfg = soft(vec![PortSpec::Ring, PortSpec::Ring]);
    cfg.tx_first = Some(4);
    cfg.mode = FwdMode::Mac;
    let fwd = Forwarder::start(&valid(cfg)).unwrap();
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
    let mut cfg = soft(vec![PortSpec::Null, PortSpec::Null]);
    cfg.cores = CoreChoice::List(all.clone());
    let r = run_for(cfg, 200);
    assert_eq!(r.last.cores.len(), all.len());
    for (cpu, c) in &r.last.cores {
        assert!(c.tx > 0, "worker on CPU {cpu} forwarded nothing");
    }
    assert!(r.all_buffers_returned());
}

/// With a core/port mapping each worker polls the ports it names and no
/// other: a worker's received packets are exactly its ports' received
/// packets.
#[test]
fn a_core_port_mapping_decides_who_polls_what() {
    let all: Vec<_> = thread_affinity().unwrap().iter().collect();
    let [a, b, ..] = all[..] else {
        drivers::skip_test!("two allowed CPUs needed, {} allowed", all.len());
        return;
    };
    let mapping = |s: String| Some(s.parse::<CorePortMapping>().unwrap());
    // Null ports: worker a polls ports 0 and 2, worker b port 1.
    let mut cfg = soft(vec![PortSpec::Null, PortSpec::Null, PortSpec::Null]);
    cfg.core_port_mapping = mapping(format!("c{a}=0:2/c{b}=1"));
    cfg.cores = CoreChoice::List(CpuSet::from_ids([a, b]));
    let r = run_until(cfg, |s| s.ports.iter().all(|p| p.1.ipackets > 0));
    let port_rx = |p: usize| r.last.ports[p].1.ipackets;
    assert!(port_rx(0) > 0 && port_rx(1) > 0 && port_rx(2) > 0);
    assert_eq!(rx_of(&r, a), port_rx(0) + port_rx(2));
    assert_eq!(rx_of(&r, b), port_rx(1));
    assert!(r.clean());
    // Ring ports, one worker each: what worker b sends on port 0 comes
    // back on port 1, which only b polls, and the other way round: the
    // loops keep going and every buffer comes home.
    let mut cfg = soft(vec![PortSpec::Ring, PortSpec::Ring]);
    cfg.core_port_mapping = mapping(format!("c{a}=0/c{b}=1"));
    cfg.cores = CoreChoice::List(CpuSet::from_ids([a, b]));
    cfg.tx_first = Some(2);
    let moved = |s: &fastpath::forwarder::Snapshot, cpu| {
        s.cores.iter().any(|(c, k)| *c == cpu && k.rx > 1000)
    };
    let r = run_until(cfg, |s| moved(s, a) && moved(s, b));
    assert!(
        rx_of(&r, a) > 1000 && rx_of(&r, b) > 1000,
        "{:?}",
        r.last.cores
    );
    assert_eq!(rx_of(&r, a), r.last.ports[0].1.ipackets);
    assert_eq!(rx_of(&r, b), r.last.ports[1].1.ipackets);
    assert!(r.clean());
}

fn rx_of(r: &fastpath::forwarder::FinalReport, cpu: drivers::cpu::CpuId) -> u64 {
    r.last
        .cores
        .iter()
        .find(|(c, _)| *c == cpu)
        .map_or(0, |(_, s)| s.rx)
}

#[test]
fn cpu_outside_the_allowed_set_is_a_clear_error() {
    let mut cfg = soft(vec![PortSpec::Null]);
    cfg.cores = CoreChoice::List(parse_cpu_list("4000").unwrap());
    let err = Forwarder::start(&valid(cfg)).err().expect("must fail");
    let msg = err.to_string();
    assert!(matches!(err, StartError::Cpus(_)), "{err:?}");
    assert!(
        msg.contains("4000") && msg.contains("allowed CPUs are"),
        "{msg}"
    );
}

#[test]
fn more_cores_than_allowed_cpus_is_a_clear_error() {
    let mut cfg = soft(vec![PortSpec::Null]);
    cfg.cores = CoreChoice::Count(1000);
    let err = Forwarder::start(&valid(cfg)).err().expect("must fail");
    let msg = err.to_string();
    assert!(matches!(err, StartError::Cpus(_)), "{err:?}");
    assert!(msg.contains("1000 worker cores asked, but"), "{msg}");
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
    let fwd = Forwarder::start(&valid(RunConfig::default())).expect("hugepage pool");
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
    let mut cfg = soft(vec![PortSpec::Ring, PortSpec::Ring]);
    cfg.tx_first = Some(2);
    let fwd = Forwarder::start(&valid(cfg)).unwrap();
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
fn a_missing_vf_is_named_before_its_memory_is_judged() {
    let addr = "0000:7e:1f.6";
    if std::path::Path::new(&format!("/sys/bus/pci/devices/{addr}")).exists() {
        drivers::skip_test!("{addr} exists on this host");
        return;
    }
    let cfg = soft(vec![PortSpec::Pci(addr.parse().unwrap()), PortSpec::Null]);
    match Forwarder::start(&valid(cfg)) {
        Err(StartError::Vf(OpenError::Pci(e))) => {
            assert!(
                e.to_string().contains(&format!("no PCI device {addr}")),
                "{e}"
            )
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("started a VF that does not exist"),
    }
}

#[test]
fn a_set_interrupt_flag_stops_start_up_before_anything_is_built() {
    use std::sync::atomic::AtomicBool;
    let cfg = valid(soft(vec![PortSpec::Ring, PortSpec::Ring]));
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
