//! Multi-queue, RSS and receive-filter tests of the ixgbevf port against
//! the device model: flows spread as the RETA says, each flow on one
//! queue, the PF's RSS read (or refused) per API version, queue pairs
//! running on their own workers, the filters' exact mailbox words, and
//! all of it back after a PF reset.

use super::device::{IxgbevfError, IxgbevfPort, IxgbevfRx, IxgbevfTx};
use super::mailbox::{mc_hash, ApiVersion, IxMbxError, XcastMode};
use super::rss::RssState;
use super::tests::{cfg, model, pool, service_until, tx_packet, xstat, PATIENCE, PF_MAC};
use crate::burst::Burst;
use crate::mbuf::OlFlags;
use crate::net::MacAddr;
use crate::pmd::rx_filters::{FilterError, RxFilters};
use crate::pool::PoolCache;
use crate::port::{Port, PortError, RxQueue, ServiceEvent, TxQueue};
use crate::sim::ixgbevf::{Flavor, IxgbevfBar, IxgbevfConfig as ModelConfig, IxgbevfSim};
use crate::sim::ixgbevf_pf::{Api, LINUX_PF_APIS};
use crate::sim::ixgbevf_rss::PfRss;
use crate::sim::toeplitz;
use std::time::{Duration, Instant};

/// A VF of `flavor` whose PF grants `queues` each way.
fn vf_with(flavor: Flavor, queues: u32, edit: impl FnOnce(&mut ModelConfig)) -> IxgbevfSim {
    let mut mc = ModelConfig::new(flavor, Some(PF_MAC));
    mc.pf.queues = (queues, queues, 0, 0);
    mc.pf.rss = PfRss::spread(queues);
    edit(&mut mc);
    model(mc)
}

/// A TCP (flow even) or UDP (odd) frame over IPv4 for flow `flow`, its
/// sequence number `seq` in the payload.
fn flow_frame(flow: u32, seq: u32) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 8 + 8];
    f[..6].copy_from_slice(&PF_MAC.0);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    let ip_len = (f.len() - 14) as u16;
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f[14 + 8] = 64;
    f[14 + 9] = if flow.is_multiple_of(2) { 6 } else { 17 };
    f[26..30].copy_from_slice(&[10, 1, (flow >> 8) as u8, flow as u8]);
    f[30..34].copy_from_slice(&[192, 168, 7, 1]);
    f[34..36].copy_from_slice(&(1024 + flow as u16 * 7).to_be_bytes());
    f[36..38].copy_from_slice(&(80 + flow as u16).to_be_bytes());
    f[42..46].copy_from_slice(&flow.to_be_bytes());
    f[46..50].copy_from_slice(&seq.to_be_bytes());
    f
}

/// The hash the device should give a [`flow_frame`] under `key`: the
/// 4-tuple for TCP and, when `udp` is hashed, UDP; else the addresses.
fn expected_hash(frame: &[u8], key: &[u8; 40], udp: bool) -> u32 {
    let flow = toeplitz::parse(frame).unwrap();
    let ports = frame[23] == 6 || udp;
    let (b, n) = toeplitz::input(&flow, ports);
    toeplitz::toeplitz(key, &b[..n])
}

/// Poll every RX queue until `n` frames came in; returns (queue, frame,
/// hash) for each.
fn drain(
    rx: &mut [IxgbevfRx<IxgbevfBar>],
    cache: &mut PoolCache,
    n: usize,
) -> Vec<(usize, Vec<u8>, u32)> {
    let end = Instant::now() + PATIENCE;
    let mut got = Vec::new();
    let mut b = Burst::new();
    while got.len() < n {
        for (q, r) in rx.iter_mut().enumerate() {
            r.rx_burst(cache, &mut b, 32);
            for p in b.drain(..) {
                // The write-back's RSS type said a hash is there.
                assert!(p.ol_flags().contains(OlFlags::RX_RSS_HASH));
                got.push((q, p.data().to_vec(), p.rss_hash()));
                cache.free(p);
            }
        }
        assert!(Instant::now() < end, "{} of {n} frames came in", got.len());
        std::thread::sleep(Duration::from_micros(20));
    }
    got
}

/// 64 flows, each sent 3 times, `per_round` at a time so no ring fills.
fn spread_flows(
    dev: &IxgbevfSim,
    rx: &mut [IxgbevfRx<IxgbevfBar>],
    cache: &mut PoolCache,
) -> Vec<(usize, Vec<u8>, u32)> {
    // Wake the queues (first burst posts the buffers and writes RDT).
    let mut b = Burst::new();
    for r in rx.iter_mut() {
        r.rx_burst(cache, &mut b, 32);
    }
    let mut all = Vec::new();
    for seq in 0..3 {
        for chunk in (0..64u32).collect::<Vec<_>>().chunks(16) {
            for &flow in chunk {
                assert!(dev.receive(&flow_frame(flow, seq)), "flow {flow} dropped");
            }
            all.extend(drain(rx, cache, chunk.len()));
        }
    }
    all
}

/// Check every frame came in whole, on the queue `queue_of` names, with
/// the expected hash, each flow on one queue, and every queue used.
fn check_spread(
    got: &[(usize, Vec<u8>, u32)],
    queues: usize,
    hash_of: impl Fn(&[u8]) -> u32,
    queue_of: impl Fn(u32) -> usize,
) {
    assert_eq!(got.len(), 64 * 3);
    let mut flow_queue = [None; 64];
    let mut per_queue = vec![0; queues];
    for (q, data, hash) in got {
        let flow = u32::from_be_bytes(data[42..46].try_into().unwrap());
        let seq = u32::from_be_bytes(data[46..50].try_into().unwrap());
        assert_eq!(data, &flow_frame(flow, seq), "content of flow {flow}");
        let want = hash_of(data);
        assert_eq!(*hash, want, "hash of flow {flow}");
        assert_eq!(*q, queue_of(want), "queue of flow {flow}");
        let fq = flow_queue[flow as usize].get_or_insert(*q);
        assert_eq!(*fq, *q, "flow {flow} changed queue");
        per_queue[*q] += 1;
    }
    assert!(
        per_queue.iter().all(|n| *n > 0),
        "some queue got nothing: {per_queue:?}"
    );
}

/// X550: the VF's own key and RETA over 4 queues, UDP hashed by port too;
/// each flow always lands on the queue RETA[hash mod 64] names.
#[test]
fn x550_rss_spreads_flows_as_its_reta_says() {
    let dev = vf_with(Flavor::X550, 4, |_| {});
    let pool = pool(&dev, "ixgbevf-rss-x550", 1024);
    let mut cache = pool.cache();
    let mut c = cfg(&dev, 64);
    let key: [u8; 40] = std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0x5A);
    c.rss_key = Some(key);
    let mut port = IxgbevfPort::new(dev.bar(), c).unwrap();
    assert_eq!(port.info().capabilities.max_rx_queues, 4);
    let (mut rx, tx) = port.queues(4, 4).unwrap();
    let RssState::VfOwned { key: k, reta, .. } = port.rss().clone() else {
        panic!("X550 RSS not VF-owned: {:?}", port.rss());
    };
    assert_eq!(k, key);
    // The model holds what the driver wrote.
    let (mrqc, rssrk, _) = dev.with(|m, _| m.rss());
    assert_eq!(mrqc & 1, 1, "RSSEN");
    assert_eq!(
        rssrk[0],
        u32::from_le_bytes([key[0], key[1], key[2], key[3]])
    );
    let got = spread_flows(&dev, &mut rx, &mut cache);
    check_spread(
        &got,
        4,
        |f| expected_hash(f, &key, true),
        |h| reta[h as usize % 64] as usize,
    );
    assert!(matches!(port.rss(), RssState::VfOwned { .. }));
    drop((rx, tx));
    drop(port);
    drop(cache);
    assert_eq!(pool.available(), 1024, "a buffer was lost");
    dev.violations().assert_clean();
}

/// 82599 and X540 with the admin's "rss query" on: the port reads the PF's
/// RETA and key, and flows spread as that RETA says over the pool's two
/// queues (UDP hashed on addresses: the PF's fields have no UDP).
#[test]
fn shared_rss_is_read_from_the_pf_and_followed() {
    for flavor in [Flavor::X82599, Flavor::X540] {
        let dev = vf_with(flavor, 2, |mc| {
            mc.pf.rss_query = true;
            // An uneven RETA, so that reading it matters.
            for (i, e) in mc.pf.rss.reta.iter_mut().enumerate() {
                *e = u8::from(i % 3 == 0);
            }
        });
        let pool = pool(&dev, "ixgbevf-rss-pf", 512);
        let mut cache = pool.cache();
        let mut port = IxgbevfPort::new(dev.bar(), cfg(&dev, 64)).unwrap();
        let (mut rx, tx) = port.queues(2, 2).unwrap();
        let RssState::Pf {
            reta: Ok(reta),
            key: Ok(key),
        } = port.rss().clone()
        else {
            panic!("{flavor:?}: PF RSS not read: {:?}", port.rss());
        };
        let pf = dev.pf(|p| p.setup.rss.clone());
        assert_eq!(reta.0, pf.reta, "{flavor:?}: GET_RETA decoded");
        assert_eq!(key, pf.key, "{flavor:?}: GET_RSS_KEY decoded");
        assert!(port.rss().pf_known());
        // PSRTYPE: the header types and RQPL = 1 for two queues (A.3).
        assert_eq!(dev.with(|m, _| m.psrtype()), 0x2000_1330);
        let got = spread_flows(&dev, &mut rx, &mut cache);
        check_spread(
            &got,
            2,
            |f| expected_hash(f, &key, false),
            |h| usize::from(reta.0[h as usize % 128]) & 1,
        );
        drop((rx, tx));
        drop(port);
        drop(cache);
        assert_eq!(pool.available(), 512, "{flavor:?}: a buffer was lost");
        dev.violations().assert_clean();
    }
}

/// GET_RETA/GET_RSS_KEY under each API the PF offers: read from 1.2 on,
/// "needs 1.2" below it (without asking); a PF without "rss query"
/// refuses, and the port still runs its queues. Under 1.0 there is no
/// GET_QUEUES, so one queue pair and a typed error for two.
#[test]
fn pf_rss_query_per_api_version_and_refusal() {
    let offers: [(&[Api], ApiVersion); 4] = [
        (&[Api::V1_0], ApiVersion::V1_0),
        (&[Api::V1_0, Api::V1_1], ApiVersion::V1_1),
        (&[Api::V1_0, Api::V1_1, Api::V1_2], ApiVersion::V1_2),
        (&LINUX_PF_APIS, ApiVersion::V1_3),
    ];
    for allowed in [true, false] {
        for (apis, api) in offers {
            let dev = vf_with(Flavor::X540, 2, |mc| {
                mc.pf.apis = apis.to_vec();
                mc.pf.rss_query = allowed;
            });
            let mut port = IxgbevfPort::new(dev.bar(), cfg(&dev, 64)).unwrap();
            assert_eq!(port.identity().api, api);
            if api == ApiVersion::V1_0 {
                let Err(e) = port.queues(2, 2) else {
                    panic!("two queues under 1.0");
                };
                assert!(
                    matches!(
                        e,
                        PortError::TooManyQueues {
                            asked: 2,
                            max: 1,
                            ..
                        }
                    ),
                    "{e}"
                );
                dev.violations().assert_clean();
                continue;
            }
            let q = port.queues(2, 2).unwrap();
            let RssState::Pf { reta, key } = port.rss().clone() else {
                panic!("not the PF's RSS");
            };
            match (api >= ApiVersion::V1_2, allowed) {
                (true, true) => assert!(reta.is_ok() && key.is_ok(), "{api}"),
                (true, false) => {
                    assert!(matches!(
                        reta,
                        Err(IxMbxError::Nack {
                            msg: "GET_RETA",
                            ..
                        })
                    ));
                    assert!(matches!(
                        key,
                        Err(IxMbxError::Nack {
                            msg: "GET_RSS_KEY",
                            ..
                        })
                    ));
                }
                (false, _) => {
                    assert!(matches!(reta, Err(IxMbxError::Unsupported { .. })), "{api}");
                }
            }
            // Asked only where the API has it.
            let asked = dev.pf(|p| p.received.iter().filter(|m| m[0] & 0xFFFF == 0x0A).count());
            assert_eq!(asked, usize::from(api >= ApiVersion::V1_2), "{api}");
            drop(q);
            drop(port);
            dev.violations().assert_clean();
        }
    }
}

/// More queues than the PF grants, or than RSS can spread over, or a
/// count that is not a power of two: clear, typed refusals.
#[test]
fn queue_counts_beyond_the_grant_are_refused() {
    let dev = vf_with(Flavor::X82599, 8, |_| {});
    let mut port = IxgbevfPort::new(dev.bar(), cfg(&dev, 64)).unwrap();
    // 8 granted, but the 82599's 2-bit RETA entries reach 4.
    assert_eq!(port.info().capabilities.max_rx_queues, 4);
    assert_eq!(port.info().capabilities.max_tx_queues, 8);
    let e = port.queues(8, 1).err().unwrap();
    assert!(matches!(
        e,
        PortError::TooManyQueues {
            dir: "rx",
            asked: 8,
            max: 4,
            ..
        }
    ));
    let e = port.queues(3, 3).err().unwrap();
    assert!(matches!(e, PortError::Config { .. }), "{e}");
    assert!(e.to_string().contains("power of two"), "{e}");
    drop(port);
    let dev2 = vf_with(Flavor::X550, 2, |_| {});
    let mut port = IxgbevfPort::new(dev2.bar(), cfg(&dev2, 64)).unwrap();
    let e = port.queues(4, 4).err().unwrap();
    assert!(
        matches!(
            e,
            PortError::TooManyQueues {
                asked: 4,
                max: 2,
                ..
            }
        ),
        "{e}"
    );
    drop(port);
    dev.violations().assert_clean();
    dev2.violations().assert_clean();
}

/// Each queue pair on its own worker thread: every worker sends its own
/// frames on its TX queue and receives what RSS gives its RX queue; all
/// frames arrive whole, every buffer comes back, no rule broken.
#[test]
fn queue_pairs_run_on_their_own_workers() {
    const PER_WORKER: u32 = 300;
    let dev = vf_with(Flavor::X550, 4, |_| {});
    let pool = pool(&dev, "ixgbevf-workers", 2048);
    let mut port = IxgbevfPort::new(dev.bar(), cfg(&dev, 64)).unwrap();
    let (rx, tx) = port.queues(4, 4).unwrap();
    // Which queue each flow lands on, from the model's RSS.
    let flows: Vec<usize> = (0..64)
        .map(|f| dev.rss_queue(&flow_frame(f, 0)).queue)
        .collect();
    let received: Vec<(Vec<Vec<u8>>, usize)> = std::thread::scope(|s| {
        let workers: Vec<_> = rx
            .into_iter()
            .zip(tx)
            .enumerate()
            .map(
                |(w, (mut rx, mut tx)): (usize, (IxgbevfRx<_>, IxgbevfTx<_>))| {
                    let pool = &pool;
                    let flows = &flows;
                    s.spawn(move || {
                        let mut cache = pool.cache();
                        let want = flows.iter().filter(|q| **q == w).count() * 4;
                        let mut got = Vec::new();
                        let mut sent = 0u32;
                        let mut b = Burst::new();
                        let end = Instant::now() + PATIENCE;
                        while got.len() < want || sent < PER_WORKER || tx.in_flight() > 0 {
                            while sent < PER_WORKER && b.len() < 16 {
                                let f = flow_frame(1000 + w as u32, sent);
                                b.push(tx_packet(&mut cache, &f));
                                sent += 1;
                            }
                            tx.tx_burst(&mut cache, &mut b);
                            tx.reclaim(&mut cache);
                            let mut r = Burst::new();
                            rx.rx_burst(&mut cache, &mut r, 32);
                            for p in r.drain(..) {
                                got.push(p.data().to_vec());
                                cache.free(p);
                            }
                            assert!(Instant::now() < end, "worker {w} stuck");
                            std::thread::sleep(Duration::from_micros(20));
                        }
                        cache.free_bulk(&mut b);
                        drop((rx, tx));
                        (got, w)
                    })
                },
            )
            .collect();
        // The wire side: 4 frames of each flow, a few at a time.
        for seq in 0..4 {
            for f in 0..64 {
                while !dev.receive(&flow_frame(f, seq)) {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        workers.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (got, w) in &received {
        for f in got {
            let flow = u32::from_be_bytes(f[42..46].try_into().unwrap());
            let seq = u32::from_be_bytes(f[46..50].try_into().unwrap());
            assert_eq!(f, &flow_frame(flow, seq));
            assert_eq!(flows[flow as usize], *w, "flow {flow} on worker {w}");
        }
    }
    let wire = dev.take_wire();
    assert_eq!(wire.len(), 4 * PER_WORKER as usize);
    for w in 0..4u32 {
        let mine: Vec<_> = wire
            .iter()
            .filter(|f| u32::from_be_bytes(f[42..46].try_into().unwrap()) == 1000 + w)
            .collect();
        assert_eq!(mine.len(), PER_WORKER as usize);
        for (s, f) in mine.iter().enumerate() {
            assert_eq!(
                **f,
                flow_frame(1000 + w, s as u32),
                "worker {w} frame {s} in order"
            );
        }
    }
    drop(port);
    assert_eq!(pool.available(), 2048, "a buffer was lost");
    dev.violations().assert_clean();
}

/// One burst on every queue: answers stop and restart requests.
fn poll_all(
    rx: &mut [IxgbevfRx<IxgbevfBar>],
    tx: &mut [IxgbevfTx<IxgbevfBar>],
    cache: &mut PoolCache,
) {
    let mut b = Burst::new();
    for r in rx.iter_mut() {
        r.rx_burst(cache, &mut b, 32);
        cache.free_bulk(&mut b);
    }
    for t in tx.iter_mut() {
        t.tx_burst(cache, &mut b);
    }
}

fn group(n: u8) -> MacAddr {
    MacAddr([0x01, 0x00, 0x5e, 0x10, 0x20 + n, 0x30 + n])
}

/// The words of every request with id `id` the PF received.
fn sent(dev: &IxgbevfSim, id: u32) -> Vec<Vec<u32>> {
    dev.pf(|p| {
        p.received
            .iter()
            .filter(|m| m[0] & 0xFFFF == id)
            .cloned()
            .collect()
    })
}

/// A trusted VF's filters: UPDATE_XCAST_MODE, SET_MULTICAST with the
/// hashes for the PF's mc_filter_type, SET_VLAN per id, word for word;
/// then a PF reset: the port sends them all again, and re-programs its
/// RSS, which the reset cleared.
#[test]
fn filters_are_sent_exactly_and_again_after_a_pf_reset() {
    let dev = vf_with(Flavor::X550, 2, |mc| {
        mc.pf.trusted = true;
        mc.pf.mc_filter_type = 1;
    });
    let mut c = cfg(&dev, 64);
    c.filters = RxFilters {
        all_multicast: true,
        multicast: vec![group(1), group(2), group(3)],
        vlans: vec![100, 4000],
        ..RxFilters::default()
    };
    let pool = pool(&dev, "ixgbevf-filters", 512);
    let mut cache = pool.cache();
    let mut port = IxgbevfPort::new(dev.bar(), c).unwrap();
    let (mut rx, mut tx) = port.queues(2, 2).unwrap();
    poll_all(&mut rx, &mut tx, &mut cache);
    assert_eq!(port.xcast_mode(), Some(XcastMode::AllMulti));
    assert!(port.filter_refusals().is_empty());
    let h: Vec<u32> = (1..=3).map(|n| u32::from(mc_hash(group(n), 1))).collect();
    let mut mc = vec![0x03 | 3 << 16, h[0] | h[1] << 16, h[2]];
    mc.resize(16, 0);
    let words = |dev: &IxgbevfSim| {
        (
            sent(dev, 0x0C)
                .into_iter()
                .map(|m| m[..2].to_vec())
                .collect::<Vec<_>>(),
            sent(dev, 0x03),
            sent(dev, 0x04),
        )
    };
    let (xcast, multi, vlan) = words(&dev);
    assert_eq!(xcast, vec![vec![0x0C, 2]]);
    assert_eq!(multi, vec![mc.clone()]);
    assert_eq!(
        vlan,
        vec![vec![0x04 | 1 << 16, 100], vec![0x04 | 1 << 16, 4000]]
    );
    assert_eq!(dev.pf(|p| p.vlans.clone()), vec![0, 100, 4000]);
    let rss_before = dev.with(|m, _| m.rss());

    dev.pf_reset_begin();
    service_until(
        &mut port,
        || poll_all(&mut rx, &mut tx, &mut cache),
        ServiceEvent::ResetDetected,
    );
    assert_eq!(dev.with(|m, _| m.rss()).0, 0, "the reset cleared VFMRQC");
    dev.pf_reset_end();
    service_until(
        &mut port,
        || poll_all(&mut rx, &mut tx, &mut cache),
        ServiceEvent::Recovered,
    );
    poll_all(&mut rx, &mut tx, &mut cache);
    // Traffic spreads again after the recovery.
    let got = spread_flows(&dev, &mut rx, &mut cache);
    let RssState::VfOwned { key, reta, .. } = port.rss().clone() else {
        panic!("RSS not back");
    };
    check_spread(
        &got,
        2,
        |f| expected_hash(f, &key, true),
        |h| reta[h as usize % 64] as usize,
    );
    let (xcast, multi, vlan) = words(&dev);
    assert_eq!(xcast, vec![vec![0x0C, 2]; 2]);
    assert_eq!(multi, vec![mc.clone(), mc]);
    assert_eq!(vlan.len(), 4);
    assert_eq!(vlan[2..], vlan[..2]);
    assert_eq!(dev.pf(|p| p.xcast), crate::sim::ixgbevf_pf::Xcast::AllMulti);
    assert_eq!(dev.with(|m, _| m.rss()), rss_before, "RSS re-programmed");

    // A change at run time: VLAN 4000 removed, 200 added, list emptied.
    let f = RxFilters {
        vlans: vec![100, 200],
        ..RxFilters::default()
    };
    assert!(port.set_filters(f).unwrap().is_empty());
    let vlan = sent(&dev, 0x04);
    assert_eq!(vlan[4..], [vec![0x04, 4000], vec![0x04 | 1 << 16, 200]]);
    let multi = sent(&dev, 0x03);
    assert_eq!(multi.last().unwrap()[..2], [0x03, 0], "list cleared");
    assert_eq!(port.xcast_mode(), Some(XcastMode::Multi));
    drop((rx, tx));
    drop(port);
    drop(cache);
    assert_eq!(pool.available(), 512, "a buffer was lost");
    dev.violations().assert_clean();
}

/// An untrusted VF asking for promiscuous mode: the PF applies MULTI; the
/// port says so (a typed refusal, an xstat), and only fails to open when
/// the filters are required. On 82599 the PF refuses PROMISC outright.
#[test]
fn an_untrusted_vf_is_told_promiscuous_was_refused() {
    let promisc = RxFilters {
        promiscuous: true,
        ..RxFilters::default()
    };
    let dev = vf_with(Flavor::X550, 2, |mc| mc.pf.pf_promisc = true);
    let mut c = cfg(&dev, 64);
    c.filters = promisc.clone();
    let port = IxgbevfPort::new(dev.bar(), c).unwrap();
    assert_eq!(
        port.filter_refusals(),
        [FilterError::ModeLimited {
            asked: "PROMISC",
            applied: "MULTI"
        }]
    );
    assert!(port.filter_refusals()[0].to_string().contains("trust on"));
    assert_eq!(port.xcast_mode(), Some(XcastMode::Multi));
    assert_eq!(xstat(&port, "rx_filter_refusals"), 1);
    drop(port);
    let mut c = cfg(&dev, 64);
    c.filters = RxFilters {
        required: true,
        ..promisc.clone()
    };
    match IxgbevfPort::new(dev.bar(), c) {
        Err(IxgbevfError::Filter(FilterError::ModeLimited { .. })) => {}
        other => panic!("required promiscuous mode: {:?}", other.map(|_| ())),
    }
    dev.violations().assert_clean();

    let dev = vf_with(Flavor::X82599, 2, |mc| mc.pf.trusted = true);
    let mut c = cfg(&dev, 64);
    c.filters = promisc;
    let port = IxgbevfPort::new(dev.bar(), c).unwrap();
    assert!(
        matches!(port.filter_refusals(), [FilterError::Refused { what }] if what.contains("PROMISC")),
        "{:?}",
        port.filter_refusals()
    );
    drop(port);
    dev.violations().assert_clean();
}

/// A port VLAN on the PF: SET_VLAN is refused, reported, not fatal.
#[test]
fn a_refused_vlan_is_reported() {
    let dev = vf_with(Flavor::X540, 2, |mc| mc.pf.port_vlan = Some(7));
    let mut c = cfg(&dev, 64);
    c.filters.vlans = vec![300];
    let port = IxgbevfPort::new(dev.bar(), c).unwrap();
    assert!(
        matches!(port.filter_refusals(), [FilterError::Refused { what }] if what.contains("VLAN 300")),
        "{:?}",
        port.filter_refusals()
    );
    drop(port);
    dev.violations().assert_clean();
}

/// After a PF reset the PF grants fewer queues than the port runs: the
/// recovery stops with a typed error instead of running queues the PF no
/// longer gives.
#[test]
fn queues_withdrawn_by_the_pf_are_an_error() {
    let dev = vf_with(Flavor::X550, 2, |_| {});
    let pool = pool(&dev, "ixgbevf-withdrawn", 256);
    let mut cache = pool.cache();
    let mut port = IxgbevfPort::new(dev.bar(), cfg(&dev, 64)).unwrap();
    let (mut rx, mut tx) = port.queues(2, 2).unwrap();
    poll_all(&mut rx, &mut tx, &mut cache);
    dev.pf_reset_begin();
    service_until(
        &mut port,
        || poll_all(&mut rx, &mut tx, &mut cache),
        ServiceEvent::ResetDetected,
    );
    dev.with(|m, _| m.pf.setup.queues = (1, 1, 0, 0));
    dev.pf_reset_end();
    let end = Instant::now() + PATIENCE;
    let e = loop {
        poll_all(&mut rx, &mut tx, &mut cache);
        match port.service() {
            Err(e) => break e,
            Ok(ev) => assert_ne!(ev, ServiceEvent::Recovered),
        }
        assert!(Instant::now() < end);
        std::thread::sleep(Duration::from_micros(50));
    };
    assert!(
        matches!(
            e,
            IxgbevfError::QueuesWithdrawn {
                dir: "rx",
                granted: 1,
                in_use: 2
            }
        ),
        "{e}"
    );
    drop((rx, tx));
    drop(port);
    drop(cache);
    assert_eq!(pool.available(), 256, "a buffer was lost");
    dev.violations().assert_clean();
}
