//! The worker loop against ring ports whose far ends the test holds: what
//! goes in on one port must come out of the other, rewritten as the mode
//! says, with every drop counted and every buffer back at the end.

use drivers::burst::Burst;
use drivers::mbuf::PortId;
use drivers::memory::MemoryBacking;
use drivers::net::MacAddr;
use drivers::pool::{Pool, PoolConfig};
use drivers::port::ring_pair::{RingPort, RingRx, RingTx};
use drivers::port::{Port, RxQueue, TxQueue};
use fastpath::counters::{CoreCounters, CoreSnapshot, DropReason};
use fastpath::fwd_mode::{FwdMode, MacRewrite};
use fastpath::worker::{RxBinding, Stopped, Worker};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Rig {
    pool: Pool,
    /// The test's ends: inject on `outside[0]`, collect from `outside[1]`.
    outside: Vec<(RingRx, RingTx)>,
    worker: Worker<RingRx, RingTx>,
}

fn rig(mode: FwdMode, ring_size: usize, count: u32) -> Rig {
    let mut cfg = PoolConfig::new("worker-test", count).with_backing(MemoryBacking::NoHuge);
    cfg.cache_size = 16;
    let pool = Pool::new(&cfg).unwrap();
    let mut inside_rx = Vec::new();
    let mut inside_tx = Vec::new();
    let mut outside = Vec::new();
    for p in 0..2u16 {
        let (mut fp, mut ext) =
            RingPort::pair((PortId(p), "fp"), (PortId(10 + p), "ext"), 1, ring_size).unwrap();
        let (mut r, mut t) = fp.queues(1, 1).unwrap();
        inside_rx.push(r.pop().unwrap());
        inside_tx.push(t.pop().unwrap());
        let (mut r, mut t) = ext.queues(1, 1).unwrap();
        outside.push((r.pop().unwrap(), t.pop().unwrap()));
    }
    let rx = inside_rx
        .into_iter()
        .enumerate()
        .map(|(p, queue)| RxBinding {
            queue,
            out: p ^ 1,
            port: p,
        })
        .collect();
    let rewrite = (0..2u16)
        .map(|p| MacRewrite {
            dst: MacAddr([0x02, 0xbb, 0, 0, 0, p as u8]),
            src: MacAddr::local(p),
        })
        .collect();
    let worker = Worker {
        rx,
        tx: inside_tx,
        rewrite,
        mode,
        burst: 32,
        tx_first: 0,
        seed_gate: None,
        cache: pool.cache(),
        l3: None,
        inject: Vec::new(),
    };
    Rig {
        pool,
        outside,
        worker,
    }
}

/// Frames of `len` bytes whose payload byte 20 carries a sequence number.
fn frames(pool: &Pool, n: usize, len: usize, first: u8) -> Burst {
    let mut b = Burst::new();
    for i in 0..n {
        let mut m = pool.alloc().expect("pool has room");
        let d = m.append(len).unwrap();
        d.fill(0xee);
        if len > 20 {
            d[20] = first.wrapping_add(i as u8);
        }
        b.push(m);
    }
    b
}

type Outcome = (Stopped<RingRx, RingTx>, CoreSnapshot);

/// Run `w` on a thread until `done` (given the live counters) says so.
fn run_until<F: FnMut(&CoreSnapshot) -> bool>(w: Worker<RingRx, RingTx>, mut done: F) -> Outcome {
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(CoreCounters::default());
    let t = {
        let (stop, counters) = (Arc::clone(&stop), Arc::clone(&counters));
        std::thread::spawn(move || w.run(&stop, &counters))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(&counters.snapshot()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, Ordering::Relaxed);
    let stopped = t.join().expect("worker did not panic");
    let snap = counters.snapshot();
    (stopped, snap)
}

#[test]
fn io_mode_forwards_untouched_in_order() {
    let Rig {
        pool,
        mut outside,
        worker,
    } = rig(FwdMode::Io, 256, 512);
    let mut cache = pool.cache();
    let mut b = frames(&pool, 100, 64, 0);
    assert_eq!(outside[0].1.tx_burst(&mut cache, &mut b), 100);
    let mut got = Burst::new();
    let (out1_rx, _) = &mut outside[1];
    let (stopped, snap) = {
        let got = &mut got;
        let mut c2 = pool.cache();
        run_until(worker, |_| {
            out1_rx.rx_burst(&mut c2, got, 128);
            got.len() >= 100
        })
    };
    assert_eq!(got.len(), 100);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m.len(), 64);
        assert_eq!(m.data()[20], i as u8, "order kept");
        assert_eq!(&m.data()[..12], &[0xee; 12], "io mode writes nothing");
    }
    assert_eq!((snap.rx, snap.tx, snap.dropped()), (100, 100, 0));
    assert_eq!(stopped.totals, snap);
    cache.free_bulk(&mut got);
    drop((stopped, outside, cache));
    assert_eq!(pool.available(), pool.count(), "every buffer back");
}

#[test]
fn mac_mode_rewrites_addresses_and_drops_runts() {
    let Rig {
        pool,
        mut outside,
        worker,
    } = rig(FwdMode::Mac, 256, 512);
    let mut cache = pool.cache();
    let mut b = frames(&pool, 10, 60, 0);
    b.extend(frames(&pool, 3, 11, 0)); // shorter than two MAC addresses
    assert_eq!(outside[0].1.tx_burst(&mut cache, &mut b), 13);
    let mut got = Burst::new();
    let (stopped, snap) = {
        let (rx1, _) = &mut outside[1];
        let got = &mut got;
        let mut c2 = pool.cache();
        run_until(worker, |_| {
            rx1.rx_burst(&mut c2, got, 64);
            got.len() >= 10
        })
    };
    assert_eq!(got.len(), 10);
    for m in got.iter() {
        assert_eq!(
            &m.data()[..6],
            &[0x02, 0xbb, 0, 0, 0, 1],
            "dst = peer of port 1"
        );
        assert_eq!(&m.data()[6..12], &MacAddr::local(1).0, "src = port 1");
        assert_eq!(&m.data()[12..20], &[0xee; 8], "rest untouched");
        assert_eq!(&m.data()[21..], &[0xee; 39], "rest untouched");
    }
    assert_eq!(snap.drops_for(DropReason::Runt), 3);
    assert_eq!(snap.rx, 13);
    assert_eq!(snap.tx, 10);
    cache.free_bulk(&mut got);
    drop((stopped, outside, cache));
    assert_eq!(pool.available(), pool.count());
}

#[test]
fn full_output_ring_is_a_counted_drop_and_loses_nothing() {
    // The far end never drains port 1's ring of 32: the first 32 packets
    // fill it, the next 32 are dropped and counted.
    let Rig {
        pool,
        mut outside,
        worker,
    } = rig(FwdMode::Io, 32, 512);
    let mut cache = pool.cache();
    let mut b = frames(&pool, 32, 64, 0);
    assert_eq!(outside[0].1.tx_burst(&mut cache, &mut b), 32);
    let mut second_sent = false;
    let (stopped, snap) = run_until(worker, |c| {
        if c.tx == 32 && !second_sent {
            let mut b = frames(&pool, 32, 64, 32);
            assert_eq!(outside[0].1.tx_burst(&mut cache, &mut b), 32);
            second_sent = true;
        }
        c.drops_for(DropReason::TxFull) == 32
    });
    assert_eq!((snap.rx, snap.tx), (64, 32));
    assert_eq!(
        snap.drops_for(DropReason::TxFull),
        32,
        "no room: dropped and counted"
    );
    assert!(snap.busy_cycles > 0 && snap.idle_cycles > 0 && snap.loops > 0);
    assert_eq!(outside[1].0.pending(), 32);
    drop((stopped, outside, cache));
    assert_eq!(
        pool.available(),
        pool.count(),
        "buffers in rings and drops all returned"
    );
}

/// TX queues are polled with empty bursts even when nothing is forwarded,
/// so a VF queue can act on its port's stop/restart requests.
#[test]
fn idle_tx_queues_are_polled() {
    struct EmptyRx;
    impl RxQueue for EmptyRx {
        fn rx_burst(&mut self, _: &mut drivers::pool::PoolCache, _: &mut Burst, _: usize) -> usize {
            0
        }
    }
    struct CountingTx(Arc<std::sync::atomic::AtomicUsize>);
    impl TxQueue for CountingTx {
        fn tx_burst(&mut self, _: &mut drivers::pool::PoolCache, pkts: &mut Burst) -> usize {
            assert!(pkts.is_empty());
            self.0.fetch_add(1, Ordering::Relaxed);
            0
        }
    }
    let pool =
        Pool::new(&PoolConfig::new("poll-test", 64).with_backing(MemoryBacking::NoHuge)).unwrap();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let worker = Worker {
        rx: vec![RxBinding {
            queue: EmptyRx,
            out: 0,
            port: 0,
        }],
        tx: vec![CountingTx(Arc::clone(&calls))],
        rewrite: vec![MacRewrite {
            dst: MacAddr::local(0),
            src: MacAddr::local(1),
        }],
        mode: FwdMode::Io,
        burst: 32,
        tx_first: 0,
        seed_gate: None,
        cache: pool.cache(),
        l3: None,
        inject: Vec::new(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(CoreCounters::default());
    let (s, c) = (Arc::clone(&stop), Arc::clone(&counters));
    let h = std::thread::spawn(move || worker.run(&s, &c));
    let t = Instant::now();
    while calls.load(Ordering::Relaxed) < 3 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, Ordering::Relaxed);
    let stopped = h.join().unwrap();
    assert!(calls.load(Ordering::Relaxed) >= 3);
    assert!(stopped.totals.loops >= 3 * fastpath::worker::TX_POLL_LOOPS);
    drop(stopped);
    assert_eq!(pool.available(), 64);
}

/// With a seed gate, the worker forwards while the gate is closed and
/// seeds its `tx_first` bursts only once it opens (the ports' links up).
#[test]
fn tx_first_seeds_wait_for_the_gate_and_forwarding_does_not() {
    let Rig {
        pool,
        mut outside,
        mut worker,
    } = rig(FwdMode::Io, 256, 512);
    let gate = Arc::new(AtomicBool::new(false));
    worker.tx_first = 1;
    worker.seed_gate = Some(Arc::clone(&gate));
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(CoreCounters::default());
    let h = {
        let (s, c) = (Arc::clone(&stop), Arc::clone(&counters));
        std::thread::spawn(move || worker.run(&s, &c))
    };
    let mut cache = pool.cache();
    let mut b = frames(&pool, 10, 64, 0);
    assert_eq!(outside[0].1.tx_burst(&mut cache, &mut b), 10);
    let mut got = Burst::new();
    let end = Instant::now() + Duration::from_secs(10);
    while got.len() < 10 && Instant::now() < end {
        outside[1].0.rx_burst(&mut cache, &mut got, 64);
    }
    // The ten went through; no seed on either port while the gate is shut.
    assert_eq!(got.len(), 10);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(outside[1].0.rx_burst(&mut cache, &mut got, 64), 0);
    assert_eq!(outside[0].0.rx_burst(&mut cache, &mut got, 64), 0);
    assert_eq!(counters.snapshot().tx, 10);
    // Relaxed: as the forwarder's store (the flag carries no data).
    gate.store(true, Ordering::Relaxed);
    let mut seeds = [0, 0];
    while seeds != [32, 32] && Instant::now() < end {
        for (p, s) in seeds.iter_mut().enumerate() {
            let mut b = Burst::new();
            *s += outside[p].0.rx_burst(&mut cache, &mut b, 64);
            cache.free_bulk(&mut b);
        }
    }
    assert_eq!(seeds, [32, 32]);
    stop.store(true, Ordering::Relaxed);
    let stopped = h.join().unwrap();
    assert_eq!(stopped.totals.tx, 10 + 2 * 32);
    cache.free_bulk(&mut got);
    drop((stopped, outside, cache));
    assert_eq!(pool.available(), pool.count());
}
