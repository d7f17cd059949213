//! The worker in L3 mode against ring ports whose far ends the test holds:
//! routed frames come out of the route's port rewritten, TTL-expired ones
//! arrive on the punt ring with their input port and reason, malformed
//! ones are dropped and counted, and every buffer comes back.

use drivers::burst::Burst;
use drivers::mbuf::PortId;
use drivers::memory::MemoryBacking;
use drivers::net::MacAddr;
use drivers::pool::{Pool, PoolConfig};
use drivers::port::ring_pair::{RingPort, RingRx, RingTx};
use drivers::port::{Port, RxQueue, TxQueue};
use drivers::ring::Ring;
use fastpath::counters::{CoreCounters, DropReason, PuntReason};
use fastpath::exception::Punted;
use fastpath::fwd_mode::FwdMode;
use fastpath::l3::{
    Gateway, L3Worker, PortConf, PortIndex, RouteTarget, RouterModel, Tables, TablesPublisher,
    TablesReader, Update,
};
use fastpath::packet::checksum;
use fastpath::worker::{RxBinding, Worker};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MAC0: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x10]);
const MAC1: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x11]);
const GW: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xa1]);

fn tables() -> Tables {
    let gw = IpAddr::V4("192.0.2.1".parse().unwrap());
    let (ops, r) = RouterModel::new().update_all(&[
        Update::Port {
            port: PortIndex(0),
            conf: PortConf {
                mac: MAC0,
                mtu: 1500,
            },
        },
        Update::Port {
            port: PortIndex(1),
            conf: PortConf {
                mac: MAC1,
                mtu: 1500,
            },
        },
        Update::RouteAdd {
            prefix: "198.51.100.0/24".parse().unwrap(),
            target: RouteTarget::Via(vec![Gateway {
                port: PortIndex(1),
                ip: gw,
            }]),
        },
        Update::NeighAdd {
            port: PortIndex(1),
            ip: gw,
            mac: GW,
        },
    ]);
    r.unwrap();
    let mut t = Tables::new();
    t.apply_all(&ops);
    t
}

/// 10.0.0.1 -> 198.51.100.7, UDP, `ttl`, padded to 60 bytes, to port 0.
fn frame(ttl: u8) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&MAC0.0);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![
        0x45, 0, 0, 28, 0, 1, 0, 0, ttl, 17, 0, 0, 10, 0, 0, 1, 198, 51, 100, 7,
    ];
    let c = checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0x04, 0xd2, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00]);
    f.resize(60, 0);
    f
}

#[test]
fn routes_punts_and_drops_with_every_buffer_back() {
    let mut cfg = PoolConfig::new("l3-worker-test", 1024).with_backing(MemoryBacking::NoHuge);
    cfg.cache_size = 16;
    let pool = Pool::new(&cfg).unwrap();
    let mut inside_rx = Vec::new();
    let mut inside_tx = Vec::new();
    let mut outside: Vec<(RingRx, RingTx)> = Vec::new();
    for p in 0..2u16 {
        let (mut fp, mut ext) =
            RingPort::pair((PortId(p), "fp"), (PortId(10 + p), "ext"), 1, 256).unwrap();
        let (mut r, mut t) = fp.queues(1, 1).unwrap();
        inside_rx.push(r.pop().unwrap());
        inside_tx.push(t.pop().unwrap());
        let (mut r, mut t) = ext.queues(1, 1).unwrap();
        outside.push((r.pop().unwrap(), t.pop().unwrap()));
    }
    let (producer, mut consumer) = Ring::<Punted>::new(64).unwrap().split();
    let worker = Worker {
        rx: inside_rx
            .into_iter()
            .enumerate()
            .map(|(p, queue)| RxBinding {
                queue,
                out: p ^ 1,
                port: p,
            })
            .collect(),
        tx: inside_tx,
        rewrite: Vec::new(),
        mode: FwdMode::L3,
        burst: 32,
        tx_first: 0,
        seed_gate: None,
        cache: pool.cache(),
        l3: Some(L3Worker::new(
            TablesReader(TablesPublisher::new(tables()).readers().register("w")),
            producer,
            2,
        )),
        inject: Vec::new(),
    };
    // 40 routed, 5 with TTL 1, 3 for another station.
    let mut cache = pool.cache();
    let mut b = Burst::new();
    let inject = |f: &[u8], b: &mut Burst| {
        let mut m = pool.alloc().unwrap();
        m.append(f.len()).unwrap().copy_from_slice(f);
        b.push(m);
    };
    for _ in 0..40 {
        inject(&frame(64), &mut b);
    }
    for _ in 0..5 {
        inject(&frame(1), &mut b);
    }
    let mut other = frame(64);
    other[0] = 0x04;
    for _ in 0..3 {
        inject(&other, &mut b);
    }
    assert_eq!(outside[0].1.tx_burst(&mut cache, &mut b), 48);

    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(CoreCounters::default());
    let t = {
        let (stop, counters) = (Arc::clone(&stop), Arc::clone(&counters));
        std::thread::spawn(move || worker.run(&stop, &counters))
    };
    let mut got = Burst::new();
    let mut punts = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while (got.len() < 40 || punts.len() < 5) && Instant::now() < deadline {
        outside[1].0.rx_burst(&mut cache, &mut got, 64);
        while let Some(p) = consumer.pop() {
            punts.push(p);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    while counters.snapshot().rx < 48 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, Ordering::Relaxed);
    let stopped = t.join().expect("worker did not panic");
    let snap = counters.snapshot();

    assert_eq!(got.len(), 40);
    for m in &got {
        let d = m.data();
        assert_eq!(d.len(), 42, "padding trimmed");
        assert_eq!(&d[..6], &GW.0);
        assert_eq!(&d[6..12], &MAC1.0);
        assert_eq!(d[14 + 8], 63);
        assert!(checksum::verify(&d[14..34]));
    }
    assert_eq!(punts.len(), 5);
    for p in &punts {
        assert_eq!(p.port, PortId(0));
    }
    assert_eq!(snap.rx, 48);
    assert_eq!(snap.tx, 40);
    assert_eq!(snap.punts_for(PuntReason::TtlExceeded), 5);
    assert_eq!(snap.punted(), 5);
    assert_eq!(snap.drops_for(DropReason::OtherHost), 3);
    assert_eq!(snap.dropped(), 3);
    cache.free_bulk(&mut got);
    drop((stopped, outside, cache, punts, consumer));
    assert_eq!(pool.available(), pool.count(), "every buffer back");
}
