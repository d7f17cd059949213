//! The iavf port against the iavf device model (`crate::sim::iavf`,
//! written by another hand from nic-facts.md part B and the Linux VF's
//! lab trace, not from this driver): the model runs its own thread, DMAs
//! through its IOMMU and fails the test on any broken rule when the
//! `IavfSim` drops (declared first, so it drops last).

use super::adminq::AqTiming;
use super::channel::VcTiming;
use super::device::{IavfConfig, IavfPort, Timing};
use super::queue::{IavfRx, IavfTx};
use super::reset::ResetTiming;
use crate::burst::Burst;
use crate::mbuf::{Mbuf, PortId};
use crate::memory::MemoryBacking;
use crate::pmd::adv_desc::DisableTiming;
use crate::pool::{Pool, PoolCache, PoolConfig};
use crate::port::{Port, RxQueue, ServiceEvent, TxQueue};
use crate::sim::iavf::{Flavor, Iavf, IavfBar, IavfConfig as ModelConfig, IavfSim};
use crate::sim::Iommu;
use std::time::{Duration, Instant};

pub(super) const PATIENCE: Duration = Duration::from_secs(20);

/// Polls that sleep briefly, bounded generously: the model answers on
/// its own thread.
pub(super) fn timing() -> Timing {
    let d = Duration::from_micros(20);
    Timing {
        vc: VcTiming {
            aq: AqTiming {
                send_polls: 50_000,
                send_delay: d,
            },
            reply_polls: 50_000,
            reply_delay: d,
        },
        reset: ResetTiming {
            rstat_polls: 50_000,
            rstat_delay: d,
            start_polls: 50_000,
            start_delay: d,
        },
        disable: DisableTiming {
            polls: 1,
            poll_delay: Duration::ZERO,
            settle: Duration::ZERO,
        },
        stats_interval: Duration::ZERO,
        reset_start_wait: Duration::from_secs(5),
    }
}

pub(super) fn model(flavor: Flavor) -> IavfSim {
    Iavf::start(ModelConfig::new(flavor, None), &Iommu::new())
}

/// The port's id in these tests.
pub(super) const PORT_ID: PortId = PortId(6);

/// The port's configuration for `dev`: 128-descriptor rings, no
/// hugepages, [`timing`].
pub(super) fn config(dev: &IavfSim) -> IavfConfig {
    let id = dev.with(|m, _| m.config().flavor.device_id());
    let row = *crate::pci::lookup(crate::pci::INTEL, id).expect("an iavf id");
    let mut c = IavfConfig::for_device(PORT_ID, "iavf-model", row, dev.iommu().mapper());
    c.rx_ring = 128;
    c.tx_ring = 128;
    c.backing = MemoryBacking::NoHuge;
    c.timing = timing();
    c
}

fn port(dev: &IavfSim) -> IavfPort<IavfBar> {
    IavfPort::new(dev.bar(), config(dev)).expect("bring-up against the model")
}

/// A pool of `n` buffers mapped in the model's IOMMU, not built yet.
pub(super) fn pool_config(dev: &IavfSim, n: u32) -> PoolConfig {
    let mut c = PoolConfig::new("iavf-model", n).with_backing(MemoryBacking::NoHuge);
    c.cache_size = 32;
    c.dma = Some(dev.iommu().mapper());
    c
}

pub(super) fn pool(dev: &IavfSim, n: u32) -> Pool {
    Pool::new(&pool_config(dev, n)).unwrap()
}

/// A frame of at least 18 bytes whose bytes name its sequence number:
/// written whole in bytes 14..18, so no two frames of a run look alike.
pub(super) fn frame(seq: u32, len: usize) -> Vec<u8> {
    // Byte i is seq * 5 + i (mod 256), copied from a ramp: a byte at a
    // time is slow in the debug builds the property tests run in.
    let ramp: [u8; 256] = std::array::from_fn(|i| i as u8);
    let mut f = Vec::with_capacity(len);
    let mut at = seq as usize * 5 % 256;
    while f.len() < len {
        let k = (256 - at).min(len - f.len());
        f.extend_from_slice(&ramp[at..at + k]);
        at = 0;
    }
    // A unicast destination and an EtherType the model does not parse.
    f[0] = 0x02;
    f[12] = 0x88;
    f[13] = 0xB5;
    f[14..18].copy_from_slice(&seq.to_be_bytes());
    f
}

pub(super) fn wait_link(port: &mut IavfPort<IavfBar>) {
    let end = Instant::now() + PATIENCE;
    while !port.link().up {
        port.service().unwrap();
        assert!(Instant::now() < end, "no LINK_CHANGE from the model");
        std::thread::sleep(Duration::from_micros(50));
    }
}

pub(super) fn rx_frames(
    dev: &IavfSim,
    rx: &mut IavfRx<IavfBar>,
    cache: &mut PoolCache,
    q: usize,
    first: u32,
    n: u32,
) {
    let (mut next_in, mut got) = (first, first);
    let end = Instant::now() + PATIENCE;
    let mut b = Burst::new();
    while got < first + n {
        while next_in < first + n && next_in - got < 32 {
            assert!(dev.inject(q, &frame(next_in, 60 + next_in as usize % 1400)));
            next_in += 1;
        }
        rx.rx_burst(cache, &mut b, 32);
        for p in b.drain(..) {
            assert_eq!(
                p.data(),
                &frame(got, 60 + got as usize % 1400)[..],
                "frame {got}"
            );
            got += 1;
            cache.free(p);
        }
        assert!(Instant::now() < end, "the model delivered {got} of {n}");
        std::thread::sleep(Duration::from_micros(20));
    }
}

/// A packet from the cache holding `data`.
pub(super) fn tx_packet(cache: &mut PoolCache, data: &[u8]) -> Mbuf {
    let mut p = cache.alloc().expect("a free buffer");
    p.append(data.len()).unwrap().copy_from_slice(data);
    p
}

pub(super) fn tx_frames(
    dev: &IavfSim,
    tx: &mut IavfTx<IavfBar>,
    cache: &mut PoolCache,
    first: u32,
    n: u32,
) {
    let end = Instant::now() + PATIENCE;
    let mut b = Burst::new();
    let (mut seq, mut wire) = (first, Vec::new());
    while seq < first + n || !b.is_empty() || tx.in_flight() > 0 {
        while seq < first + n && b.len() < 32 {
            b.push(tx_packet(cache, &frame(seq, 64 + seq as usize % 1000)));
            seq += 1;
        }
        tx.tx_burst(cache, &mut b);
        tx.reclaim(cache);
        wire.extend(dev.take_wire());
        assert!(Instant::now() < end, "the model sent {} of {n}", wire.len());
        std::thread::sleep(Duration::from_micros(20));
    }
    wire.extend(dev.take_wire());
    assert_eq!(wire.len(), n as usize);
    for (k, f) in wire.iter().enumerate() {
        let s = first + k as u32;
        assert_eq!(f, &frame(s, 64 + s as usize % 1000), "frame {s}");
    }
}

#[test]
fn bring_up_and_traffic_on_both_flavors() {
    for flavor in [Flavor::Xl710, Flavor::Adaptive] {
        let dev = model(flavor);
        let pool = pool(&dev, 1024);
        let mut cache = pool.cache();
        let mut port = port(&dev);
        assert_eq!(port.info().capabilities.max_rx_queues, 4);
        let (mut rx, mut tx) = port.queues(2, 2).unwrap();
        // The first bursts post the RX buffers.
        let mut b = Burst::new();
        for r in rx.iter_mut() {
            r.rx_burst(&mut cache, &mut b, 32);
        }
        wait_link(&mut port);
        for q in 0..2 {
            rx_frames(&dev, &mut rx[q], &mut cache, q, 1000 * q as u32, 300);
            tx_frames(&dev, &mut tx[q], &mut cache, 500 * q as u32, 300);
        }
        let ops = dev.sent_ops();
        assert_eq!(&ops[..6], &[1, 3, 10, 6, 7, 23], "{flavor:?}: {ops:?}");
        assert!(ops.contains(&8), "ENABLE_QUEUES");
        assert_eq!(port.rss_queues(), 2);
        assert_eq!(port.stats().ipackets, 600);
        assert_eq!(port.stats().opackets, 600);
        port.fetch_stats().unwrap();
        drop((rx, tx, port));
        drop(cache);
        assert_eq!(pool.in_use(), 0, "{flavor:?}: every buffer back");
    }
}

#[test]
fn a_pf_reset_during_traffic_is_recovered() {
    let dev = model(Flavor::Xl710);
    let pool = pool(&dev, 1024);
    let mut cache = pool.cache();
    let mut port = port(&dev);
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    let (mut r, mut t) = (rx.remove(0), tx.remove(0));
    let mut b = Burst::new();
    r.rx_burst(&mut cache, &mut b, 32);
    wait_link(&mut port);
    rx_frames(&dev, &mut r, &mut cache, 0, 0, 100);
    tx_frames(&dev, &mut t, &mut cache, 0, 100);
    dev.pf_reset_begin();
    let end = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    let mut ended = false;
    loop {
        let ev = port.service().unwrap();
        if seen.last() != Some(&ev) {
            seen.push(ev);
        }
        if ev == ServiceEvent::Recovered {
            break;
        }
        if !ended && ev == ServiceEvent::WaitingForDevice {
            dev.pf_reset_end();
            ended = true;
        }
        r.rx_burst(&mut cache, &mut b, 32);
        for p in b.drain(..) {
            cache.free(p);
        }
        let mut none = Burst::new();
        t.tx_burst(&mut cache, &mut none);
        assert!(Instant::now() < end, "no recovery: {seen:?}");
        std::thread::sleep(Duration::from_micros(50));
    }
    assert!(seen.contains(&ServiceEvent::ResetDetected), "{seen:?}");
    let x = port.xstats();
    let get = |n: &str| x.iter().find(|(k, _)| *k == n).unwrap().1;
    assert_eq!(get("pf_reset_recoveries"), 1);
    r.rx_burst(&mut cache, &mut b, 32);
    wait_link(&mut port);
    rx_frames(&dev, &mut r, &mut cache, 0, 200, 100);
    tx_frames(&dev, &mut t, &mut cache, 200, 100);
    drop((r, t, port));
    drop(cache);
    assert_eq!(pool.in_use(), 0);
}

/// An IPv4/UDP frame of flow `f` (ports and source address vary).
fn udp_frame(f: u16) -> Vec<u8> {
    let mut b = vec![0u8; 14 + 20 + 8 + 18];
    b[0] = 0x02;
    b[12] = 0x08;
    b[14] = 0x45;
    let total = (b.len() - 14) as u16;
    b[16..18].copy_from_slice(&total.to_be_bytes());
    b[22] = 64;
    b[23] = 17;
    b[26..30].copy_from_slice(&[10, 0, (f >> 8) as u8, f as u8]);
    b[30..34].copy_from_slice(&[10, 1, 0, 1]);
    b[34..36].copy_from_slice(&(1000 + f).to_be_bytes());
    b[36..38].copy_from_slice(&4789u16.to_be_bytes());
    b[38..40].copy_from_slice(&26u16.to_be_bytes());
    b
}

#[test]
fn rss_spreads_flows_as_the_model_hashes_them() {
    let dev = model(Flavor::Adaptive);
    let pool = pool(&dev, 1024);
    let mut cache = pool.cache();
    let mut port = port(&dev);
    let (mut rx, _tx) = port.queues(4, 1).unwrap();
    let mut b = Burst::new();
    for r in rx.iter_mut() {
        r.rx_burst(&mut cache, &mut b, 32);
    }
    wait_link(&mut port);
    let mut want = [0usize; 4];
    for f in 0..64u16 {
        let fr = udp_frame(f);
        let (q, hash) = dev.with(|m, _| m.rss_pick(&fr));
        assert!(hash.is_some(), "HENA set: the model hashes");
        want[q] += 1;
        assert!(dev.receive(&fr));
    }
    assert!(want.iter().filter(|&&n| n > 0).count() > 1, "{want:?}");
    let end = Instant::now() + PATIENCE;
    let mut got = [0usize; 4];
    while got.iter().sum::<usize>() < 64 {
        for (q, r) in rx.iter_mut().enumerate() {
            r.rx_burst(&mut cache, &mut b, 32);
            for p in b.drain(..) {
                let (pq, hash) = dev.with(|m, _| m.rss_pick(p.data()));
                assert_eq!(pq, q);
                assert_eq!(Some(p.rss_hash()), hash, "hash in the mbuf");
                got[q] += 1;
                cache.free(p);
            }
        }
        assert!(Instant::now() < end, "{got:?} of {want:?}");
        std::thread::sleep(Duration::from_micros(20));
    }
    assert_eq!(got, want);
}

/// Two queue pairs on two worker threads while the control thread runs
/// `service` (GET_STATS every call) and a PF reset: each worker echoes
/// what it receives; every frame comes back and no buffer is lost.
#[test]
fn queue_pairs_on_worker_threads_through_a_pf_reset() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let dev = model(Flavor::Xl710);
    let pool = pool(&dev, 2048);
    let mut port = port(&dev);
    let (rx, tx) = port.queues(2, 2).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let echoed = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = rx
        .into_iter()
        .zip(tx)
        .map(|(mut r, mut t)| {
            let (stop, echoed, pool) = (Arc::clone(&stop), Arc::clone(&echoed), pool.clone());
            std::thread::spawn(move || {
                let mut cache = pool.cache();
                let mut b = Burst::new();
                // Relaxed: a flag polled in a loop; the join orders the rest.
                while !stop.load(Ordering::Relaxed) {
                    let n = r.rx_burst(&mut cache, &mut b, 32);
                    // Relaxed: a test counter read after the workers stop.
                    echoed.fetch_add(n as u64, Ordering::Relaxed);
                    t.tx_burst(&mut cache, &mut b);
                    for p in b.drain(..) {
                        cache.free(p);
                    }
                    std::thread::sleep(Duration::from_micros(20));
                }
                drop((r, t));
            })
        })
        .collect();
    // Echo `n` frames per queue, at most 16 outstanding per queue.
    let pump = |port: &mut IavfPort<IavfBar>, n: usize| {
        let end = Instant::now() + PATIENCE;
        let (mut sent, mut wire) = (0usize, 0usize);
        while wire < 2 * n {
            port.service().unwrap();
            if port.link().up {
                while sent < 2 * n && sent - wire < 32 {
                    assert!(dev.inject(sent % 2, &frame(sent as u32, 64)));
                    sent += 1;
                }
            }
            wire += dev.take_wire().len();
            assert!(Instant::now() < end, "{wire} echoed of {sent}");
            std::thread::sleep(Duration::from_micros(100));
        }
    };
    pump(&mut port, 200);
    dev.pf_reset_begin();
    let end = Instant::now() + PATIENCE;
    let mut ended = false;
    while port.service().unwrap() != ServiceEvent::Recovered {
        if !ended {
            dev.pf_reset_end();
            ended = true;
        }
        assert!(Instant::now() < end, "no recovery");
        std::thread::sleep(Duration::from_micros(100));
    }
    pump(&mut port, 200);
    // Relaxed: read after the echoes were seen on the wire.
    assert!(echoed.load(Ordering::Relaxed) >= 800);
    let x = port.xstats();
    let get = |n: &str| x.iter().find(|(k, _)| *k == n).unwrap().1;
    assert_eq!(get("pf_reset_recoveries"), 1);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    drop(port);
    assert_eq!(pool.in_use(), 0);
}

/// A PF that resets the VF as soon as it took RESET_VF (no delay): the
/// reset clears the admin queue registers before the VF sees ATQH move
/// past its descriptor. That is the reset asked for, not a send that
/// failed: `reset_vf` waits it out and succeeds.
#[test]
fn reset_vf_taken_before_the_head_was_seen_is_no_error() {
    use super::channel::VfChannel;
    use super::reset::reset_vf;
    let mut mc = ModelConfig::new(Flavor::Xl710, None);
    mc.reset_vf_delay = Duration::ZERO;
    let dev = Iavf::start(mc, &Iommu::new());
    let bar = dev.bar();
    let dma = dev.iommu().mapper();
    // The hardware's send polling: 1 ms apart, far slower than the
    // model's next pass.
    let mut chan = VfChannel::new(&MemoryBacking::NoHuge, &dma, VcTiming::default()).unwrap();
    chan.init(&*bar).unwrap();
    let t = timing().reset;
    reset_vf(&*bar, &mut chan, &t).expect("the reset RESET_VF asked for");
    assert_eq!(dev.sent_ops(), vec![2]);
}
