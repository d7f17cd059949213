//! ixgbevf port tests against the asynchronous device model
//! (`crate::sim::ixgbevf`, written from nic-facts.md part A, not from this
//! driver): the model runs its own thread, DMAs through its IOMMU, and
//! fails the test on any broken rule when the `IxgbevfSim` drops (it is
//! declared first in every test, so it drops last).

use super::device::{IxgbevfConfig, IxgbevfPort, IxgbevfRx, IxgbevfTx, Timing};
use super::mailbox::{ApiVersion, PfTiming};
use super::queues::EnableTiming;
use super::reset::ResetTiming;
use crate::burst::Burst;
use crate::mbuf::{Mbuf, PortId};
use crate::memory::MemoryBacking;
use crate::net::MacAddr;
use crate::pmd::adv_desc::{DisableTiming, ProgramTiming};
use crate::pmd::vf_mailbox::MbxTiming;
use crate::pool::{Pool, PoolCache, PoolConfig};
use crate::port::{Port, RxQueue, ServiceEvent, TxQueue};
use crate::sim::ixgbevf::{Flavor, Ixgbevf, IxgbevfBar, IxgbevfConfig as ModelConfig, IxgbevfSim};
use crate::sim::ixgbevf_pf::Api;
use crate::sim::Iommu;
use std::time::{Duration, Instant};

const PF_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x20]);
/// Longest any test waits for the device (a bound for a stuck model, not
/// a timing the test depends on).
pub(super) const PATIENCE: Duration = Duration::from_secs(20);

fn model(mc: ModelConfig) -> IxgbevfSim {
    Ixgbevf::start(mc, &Iommu::new())
}

fn vf(flavor: Flavor, admin: Option<MacAddr>) -> IxgbevfSim {
    model(ModelConfig::new(flavor, admin))
}

/// Polls that sleep, with a generous bound, no fixed pauses: the model's
/// PF and queues answer on their own thread.
pub(super) fn timing() -> Timing {
    let polls = 20_000;
    let delay = Duration::from_micros(20);
    Timing {
        mbx: PfTiming {
            mbx: MbxTiming {
                polls,
                poll_delay: delay,
                lock_tries: 1_000,
            },
            reset_settle: Duration::ZERO,
        },
        reset: ResetTiming {
            stop_settle: Duration::ZERO,
            reset_settle: Duration::ZERO,
            rst_polls: polls,
            rst_poll_delay: delay,
        },
        enable: EnableTiming {
            polls,
            delay,
            program: ProgramTiming {
                disable_settle: Duration::ZERO,
            },
        },
        disable: DisableTiming {
            polls,
            poll_delay: delay,
            settle: Duration::ZERO,
        },
        link_check_interval: Duration::ZERO,
    }
}

/// The driver's configuration for the model's VF: its table row from the
/// model's device id, as it would come from sysfs.
pub(super) fn cfg(dev: &IxgbevfSim, ring: usize) -> IxgbevfConfig {
    let id = dev.with(|m, _| m.config().flavor.device_id());
    let row = *crate::pci::lookup(crate::pci::INTEL, id).expect("an ixgbevf id");
    let mut c = IxgbevfConfig::for_device(PortId(3), "ixvf0", row, dev.iommu().mapper());
    c.rx_ring = ring;
    c.tx_ring = ring;
    c.backing = MemoryBacking::NoHuge;
    c.timing = timing();
    c
}

fn port(dev: &IxgbevfSim, ring: usize) -> IxgbevfPort<IxgbevfBar> {
    IxgbevfPort::new(dev.bar(), cfg(dev, ring)).unwrap()
}

pub(super) fn pool(dev: &IxgbevfSim, name: &str, n: u32) -> Pool {
    let mut c = PoolConfig::new(name, n).with_backing(MemoryBacking::NoHuge);
    c.cache_size = 32;
    c.dma = Some(dev.iommu().mapper());
    Pool::new(&c).unwrap()
}

/// A frame whose bytes name its sequence number.
pub(super) fn frame(seq: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq as usize * 7 + i) as u8 ^ (seq >> 8) as u8)
        .collect()
}

fn len_of(seq: u32) -> usize {
    60 + (seq as usize * 13) % 1455
}

/// Inject frames `first..first + n` and receive them, checking each.
fn rx_and_check(
    dev: &IxgbevfSim,
    rx: &mut IxgbevfRx<IxgbevfBar>,
    cache: &mut PoolCache,
    first: u32,
    n: u32,
) {
    let mut next_in = first;
    let mut got = first;
    let end = Instant::now() + PATIENCE;
    let mut b = Burst::new();
    while got < first + n {
        // Keep no more in the model than the ring holds.
        while next_in < first + n && next_in - got < 16 {
            assert!(dev.inject(0, &frame(next_in, len_of(next_in))));
            next_in += 1;
        }
        rx.rx_burst(cache, &mut b, 32);
        for p in b.drain(..) {
            assert_eq!(p.data(), &frame(got, len_of(got))[..], "frame {got}");
            assert_eq!(p.port(), PortId(3));
            got += 1;
            cache.free(p);
        }
        assert!(Instant::now() < end, "the model delivered nothing");
        std::thread::sleep(Duration::from_micros(20));
    }
}

pub(super) fn tx_packet(cache: &mut PoolCache, data: &[u8]) -> Mbuf {
    let mut p = cache.alloc().unwrap();
    p.append(data.len()).unwrap().copy_from_slice(data);
    p
}

/// Send frames `first..first + n`, then check the wire has them in order
/// and every buffer came back.
fn tx_and_check(
    dev: &IxgbevfSim,
    tx: &mut IxgbevfTx<IxgbevfBar>,
    cache: &mut PoolCache,
    first: u32,
    n: u32,
) {
    let end = Instant::now() + PATIENCE;
    let mut b = Burst::new();
    let mut seq = first;
    let mut wire = Vec::new();
    // Until every frame was taken (a full ring can refuse the last burst
    // while the reclaim empties it) and written back.
    while seq < first + n || !b.is_empty() || tx.in_flight() > 0 {
        while seq < first + n && b.len() < 32 {
            b.push(tx_packet(cache, &frame(seq, len_of(seq))));
            seq += 1;
        }
        tx.tx_burst(cache, &mut b);
        tx.reclaim(cache);
        wire.extend(dev.take_wire());
        assert!(Instant::now() < end, "the model sent nothing");
        std::thread::sleep(Duration::from_micros(20));
    }
    assert!(b.is_empty());
    wire.extend(dev.take_wire());
    assert_eq!(wire.len(), n as usize);
    for (k, f) in wire.iter().enumerate() {
        let s = first + k as u32;
        assert_eq!(f, &frame(s, len_of(s)), "frame {s}");
    }
}

pub(super) fn xstat(port: &IxgbevfPort<IxgbevfBar>, name: &str) -> u64 {
    port.xstats()
        .into_iter()
        .find_map(|(n, v)| (n == name).then_some(v))
        .unwrap_or_else(|| panic!("no xstat {name}"))
}

/// Under every API set a PF may offer, the port negotiates the highest
/// it knows (1.3 down to 1.0), takes the admin MAC, sends SET_LPE, and
/// passes traffic both ways without a violation or a lost buffer.
#[test]
fn init_and_traffic_under_each_api_version() {
    let offers: [(&[Api], ApiVersion); 5] = [
        (&[Api::V1_0], ApiVersion::V1_0),
        (&[Api::V1_0, Api::V1_1], ApiVersion::V1_1),
        (&[Api::V1_0, Api::V1_1, Api::V1_2], ApiVersion::V1_2),
        (
            &[Api::V1_0, Api::V1_1, Api::V1_2, Api::V1_3],
            ApiVersion::V1_3,
        ),
        (&crate::sim::ixgbevf_pf::LINUX_PF_APIS, ApiVersion::V1_3),
    ];
    for flavor in [Flavor::X82599, Flavor::X540, Flavor::X550] {
        for (apis, want) in offers {
            let mut mc = ModelConfig::new(flavor, Some(PF_MAC));
            mc.pf.apis = apis.to_vec();
            let dev = model(mc);
            let pool = pool(&dev, "ixgbevf-api", 256);
            let mut cache = pool.cache();
            let mut port = port(&dev, 64);
            let id = *port.identity();
            assert_eq!(id.api, want, "{flavor:?} offering {apis:?}");
            assert_eq!(id.mac, Some(PF_MAC));
            assert_eq!(port.info().mac, PF_MAC);
            let queues = if want >= ApiVersion::V1_1 { 2 } else { 1 };
            assert_eq!(id.queues.rx, queues);
            assert_eq!(dev.pf(|p| p.max_frame), Some(1518));
            assert!(dev.pf(|p| p.rx_enabled && p.tx_enabled));
            let (mut rx, mut tx) = port.queues(1, 1).unwrap();
            rx_and_check(&dev, &mut rx[0], &mut cache, 0, 100);
            tx_and_check(&dev, &mut tx[0], &mut cache, 0, 100);
            assert!(port.link().up);
            drop((rx, tx));
            drop(port);
            drop(cache);
            assert_eq!(pool.available(), 256, "a buffer was lost");
            dev.violations().assert_clean();
        }
    }
}

/// No admin MAC: the port picks the configured one and sets it with
/// SET_MAC_ADDR.
#[test]
fn without_an_admin_mac_the_port_sets_its_own() {
    let dev = vf(Flavor::X82599, None);
    let mine = MacAddr([0x02, 0, 0, 0, 0, 0x42]);
    let mut c = cfg(&dev, 64);
    c.mac = Some(mine);
    let port = IxgbevfPort::new(dev.bar(), c).unwrap();
    assert_eq!(port.identity().mac, None);
    assert_eq!(port.info().mac, mine);
    assert_eq!(dev.pf(|p| p.vf_mac), Some(mine));
}

/// Many frames each way round ring wraps (64 descriptors, the TX ring's
/// context descriptor included), payloads checked, counters agree with
/// the model's, every buffer back.
#[test]
fn traffic_both_ways_round_the_ring() {
    for flavor in [Flavor::X82599, Flavor::X550EmX] {
        let dev = vf(flavor, Some(PF_MAC));
        let pool = pool(&dev, "ixgbevf-traffic", 512);
        let mut cache = pool.cache();
        let mut port = port(&dev, 64);
        let (mut rx, mut tx) = port.queues(1, 1).unwrap();
        rx_and_check(&dev, &mut rx[0], &mut cache, 0, 1000);
        tx_and_check(&dev, &mut tx[0], &mut cache, 0, 1000);
        let s = port.stats();
        assert_eq!((s.ipackets, s.opackets), (1000, 1000));
        let bytes: u64 = (0..1000).map(|s| len_of(s) as u64).sum();
        assert_eq!((s.ibytes, s.obytes), (bytes, bytes));
        port.update_hw_stats();
        assert_eq!(xstat(&port, "vf_rx_packets"), 1000);
        assert_eq!(xstat(&port, "vf_tx_packets"), 1000);
        assert_eq!(xstat(&port, "tx_bad_length"), 0);
        assert_eq!(xstat(&port, "rx_nombuf"), 0);
        assert!(!dev.tx_mdd_stopped(0));
        drop((rx, tx));
        drop(port);
        drop(cache);
        assert_eq!(pool.available(), 512, "a buffer was lost");
        dev.violations().assert_clean();
    }
}

/// Drive `service` until it reports `want`.
pub(super) fn service_until(
    port: &mut IxgbevfPort<IxgbevfBar>,
    mut poll: impl FnMut(),
    want: ServiceEvent,
) {
    let end = Instant::now() + PATIENCE;
    loop {
        poll();
        if port.service().unwrap() == want {
            return;
        }
        assert!(Instant::now() < end, "never reached {want:?}");
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// A PF reset while frames are in flight: the link check sees it, the
/// queues stop and release their buffers, the VF is reset and brought up
/// again, and traffic resumes both ways; no buffer is lost.
#[test]
fn pf_reset_while_traffic_runs_recovers() {
    let dev = vf(Flavor::X82599, Some(PF_MAC));
    let pool = pool(&dev, "ixgbevf-pf-reset", 512);
    let mut cache = pool.cache();
    let mut port = port(&dev, 64);
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    rx_and_check(&dev, &mut rx[0], &mut cache, 0, 50);
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    // Frames left in the TX ring and the RX ring as the PF resets.
    dev.with(|m, _| m.set_tx_hold(true));
    let mut b = Burst::new();
    for s in 0..10 {
        b.push(tx_packet(&mut cache, &frame(s, 100)));
    }
    assert_eq!(tx[0].tx_burst(&mut cache, &mut b), 10);
    dev.pf_reset_begin();
    dev.with(|m, _| m.set_tx_hold(false));
    let mut sink = Burst::new();
    let mut poll =
        |rx: &mut IxgbevfRx<IxgbevfBar>, tx: &mut IxgbevfTx<IxgbevfBar>, cache: &mut PoolCache| {
            rx.rx_burst(cache, &mut sink, 32);
            cache.free_bulk(&mut sink);
            let mut none = Burst::new();
            tx.tx_burst(cache, &mut none);
        };
    service_until(
        &mut port,
        || poll(&mut rx[0], &mut tx[0], &mut cache),
        ServiceEvent::ResetDetected,
    );
    assert!(!port.link().up);
    dev.pf_reset_end();
    service_until(
        &mut port,
        || poll(&mut rx[0], &mut tx[0], &mut cache),
        ServiceEvent::Recovered,
    );
    assert_eq!(port.recoveries(), 1);
    dev.take_wire();
    // One more burst answers the restart (RX posts, tail written).
    poll(&mut rx[0], &mut tx[0], &mut cache);
    rx_and_check(&dev, &mut rx[0], &mut cache, 1000, 200);
    tx_and_check(&dev, &mut tx[0], &mut cache, 2000, 200);
    assert!(port.link().up);
    assert_eq!(xstat(&port, "pf_reset_recoveries"), 1);
    let discarded = xstat(&port, "tx_stop_discarded");
    assert!(discarded <= 10, "{discarded}");
    drop((rx, tx));
    drop(port);
    drop(cache);
    assert_eq!(pool.available(), 512, "a buffer was lost");
    dev.violations().assert_clean();
}

/// stop() then start(): the queues release and come back, TX with a new
/// context descriptor (the model stops an X550 queue without one).
#[test]
fn stop_and_start_on_x550() {
    let dev = vf(Flavor::X550, Some(PF_MAC));
    let pool = pool(&dev, "ixgbevf-stop", 256);
    let mut cache = pool.cache();
    let mut port = port(&dev, 64);
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    tx_and_check(&dev, &mut tx[0], &mut cache, 0, 40);
    port.stop().unwrap();
    let mut sink = Burst::new();
    let end = Instant::now() + PATIENCE;
    loop {
        rx[0].rx_burst(&mut cache, &mut sink, 32);
        let mut none = Burst::new();
        tx[0].tx_burst(&mut cache, &mut none);
        if port.service().unwrap() == ServiceEvent::Stopped {
            break;
        }
        assert!(Instant::now() < end);
    }
    assert!(!port.link().up);
    port.start().unwrap();
    rx[0].rx_burst(&mut cache, &mut sink, 32);
    assert!(sink.is_empty());
    tx_and_check(&dev, &mut tx[0], &mut cache, 100, 40);
    rx_and_check(&dev, &mut rx[0], &mut cache, 200, 40);
    assert!(!dev.tx_mdd_stopped(0));
    drop((rx, tx));
    drop(port);
    drop(cache);
    assert_eq!(pool.available(), 256, "a buffer was lost");
    dev.violations().assert_clean();
}

/// A link flap is not a reset: the link follows VFLINKS (the PF's ping
/// keeps CTS), the service stays idle, traffic goes on afterwards.
#[test]
fn link_follows_vflinks_and_a_flap_is_not_a_reset() {
    let dev = vf(Flavor::X540, Some(PF_MAC));
    let pool = pool(&dev, "ixgbevf-link", 256);
    let mut cache = pool.cache();
    let mut port = port(&dev, 64);
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    assert!(port.link().up);
    assert_eq!(port.link().speed_mbps, 10_000);
    dev.set_link(false);
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    assert!(!port.link().up);
    dev.set_link(true);
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    assert!(port.link().up);
    assert_eq!(port.recoveries(), 0);
    rx_and_check(&dev, &mut rx[0], &mut cache, 0, 20);
    tx_and_check(&dev, &mut tx[0], &mut cache, 0, 20);
    drop((rx, tx));
    drop(port);
    drop(cache);
    assert_eq!(pool.available(), 256, "a buffer was lost");
    dev.violations().assert_clean();
}

/// Without an admin MAC the port keeps the MAC it chose across a PF
/// reset (it sets it again with SET_MAC_ADDR), so peers need not learn a
/// new one.
#[test]
fn own_mac_is_kept_across_a_pf_reset() {
    let dev = vf(Flavor::X82599, None);
    let mut port = port(&dev, 64);
    let mac = port.info().mac;
    assert!(mac.is_unicast());
    assert_eq!(dev.pf(|p| p.vf_mac), Some(mac));
    dev.pf_reset_begin();
    service_until(&mut port, || {}, ServiceEvent::ResetDetected);
    dev.pf_reset_end();
    service_until(&mut port, || {}, ServiceEvent::Recovered);
    assert_eq!(port.info().mac, mac);
    assert_eq!(dev.pf(|p| p.vf_mac), Some(mac));
    dev.violations().assert_clean();
}
