//! Two ixgbevf ports on two VFs of one modelled PF, switched by the PF's
//! embedded switch (`crate::sim::veb`): each VF has its own
//! device thread and its own DMA space, so every frame is copied between
//! two IOMMUs. Payloads are checked, every drop is counted where the
//! switch says, and every buffer comes back.

use super::device::{IxgbevfPort, IxgbevfRx, IxgbevfTx};
use super::tests::{cfg, frame, pool, service_until, tx_packet, xstat, PATIENCE};
use crate::burst::Burst;
use crate::net::MacAddr;
use crate::pool::{Pool, PoolCache};
use crate::port::{Port, RxQueue, ServiceEvent, TxQueue};
use crate::sim::ixgbevf::{Flavor, Ixgbevf, IxgbevfBar, IxgbevfConfig as ModelConfig, IxgbevfSim};
use crate::sim::veb::{Veb, VebConfig};
use crate::sim::Iommu;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MAC_A: MacAddr = MacAddr([0x02, 0, 0, 0, 0xA0, 0x01]);
const MAC_B: MacAddr = MacAddr([0x02, 0, 0, 0, 0xB0, 0x02]);
const UNKNOWN: MacAddr = MacAddr([0x02, 0, 0, 0, 0xEE, 0xEE]);
const BROADCAST: MacAddr = MacAddr([0xFF; 6]);
/// A local experimental EtherType (IEEE 802 "local experimental 1").
const ETHERTYPE: [u8; 2] = [0x88, 0xB5];
const POOL: u32 = 512;

/// One VF of the switch with its port, queues, pool and cache. The model
/// is declared first so that it drops last (and checks its violations).
struct Side {
    dev: IxgbevfSim,
    pool: Pool,
    cache: PoolCache,
    port: IxgbevfPort<IxgbevfBar>,
    rx: IxgbevfRx<IxgbevfBar>,
    tx: IxgbevfTx<IxgbevfBar>,
    vf: usize,
}

fn side(veb: &Arc<Veb>, flavor: Flavor, mac: MacAddr, name: &str) -> Side {
    let dev = Ixgbevf::start_on(veb, ModelConfig::new(flavor, Some(mac)), &Iommu::new()).unwrap();
    let vf = dev.veb_port().unwrap();
    let pool = pool(&dev, name, POOL);
    let cache = pool.cache();
    let mut port = IxgbevfPort::new(dev.bar(), cfg(&dev, 64)).unwrap();
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    Side {
        rx: rx.remove(0),
        tx: tx.remove(0),
        dev,
        pool,
        cache,
        port,
        vf,
    }
}

impl Side {
    /// Send what fits of `b`, reclaim.
    fn send(&mut self, b: &mut Burst) {
        self.tx.tx_burst(&mut self.cache, b);
        self.tx.reclaim(&mut self.cache);
    }

    /// Send `frames` (as many bursts as it takes) and wait until each is
    /// written back and `switched` holds (the switch counts a frame at
    /// the end of the device pass that sent it, maybe after its DD).
    fn send_all(&mut self, frames: impl IntoIterator<Item = Vec<u8>>, switched: impl Fn() -> bool) {
        let mut b = Burst::new();
        let mut frames = frames.into_iter().peekable();
        let end = Instant::now() + PATIENCE;
        while frames.peek().is_some() || !b.is_empty() || self.tx.in_flight() > 0 || !switched() {
            while b.len() < 32 {
                let Some(f) = frames.next() else { break };
                b.push(tx_packet(&mut self.cache, &f));
            }
            self.send(&mut b);
            assert!(Instant::now() < end, "frames not sent or not switched");
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// Received frames' bytes (buffers freed).
    fn recv(&mut self) -> Vec<Vec<u8>> {
        let mut b = Burst::new();
        self.rx.rx_burst(&mut self.cache, &mut b, 32);
        let out = b.iter().map(|p| p.data().to_vec()).collect();
        self.cache.free_bulk(&mut b);
        out
    }

    /// Poll RX until `n` frames came (or PATIENCE), the TX ring drained.
    fn recv_n(&mut self, n: usize) -> Vec<Vec<u8>> {
        let end = Instant::now() + PATIENCE;
        let mut got = Vec::new();
        while got.len() < n || self.tx.in_flight() > 0 {
            got.extend(self.recv());
            self.tx.reclaim(&mut self.cache);
            assert!(Instant::now() < end, "{} of {n} frames came", got.len());
            std::thread::sleep(Duration::from_micros(20));
        }
        got
    }

    /// Frames that came within a short while (nothing expected).
    fn recv_quiet(&mut self) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        for _ in 0..50 {
            self.dev.flush();
            got.extend(self.recv());
            self.tx.reclaim(&mut self.cache);
            std::thread::sleep(Duration::from_micros(100));
        }
        got
    }

    fn mac(&self) -> MacAddr {
        self.port.info().mac
    }

    /// Drop the queues and the port, and check every buffer came back and
    /// the model saw no violation.
    fn finish(self) {
        let Side {
            dev,
            pool,
            cache,
            port,
            rx,
            tx,
            ..
        } = self;
        drop((rx, tx));
        drop(port);
        drop(cache);
        assert_eq!(pool.available(), POOL as usize, "a buffer was lost");
        dev.violations().assert_clean();
    }
}

/// An Ethernet frame whose payload names its sequence number.
fn eth(dst: MacAddr, src: MacAddr, seq: u32) -> Vec<u8> {
    let len = 46 + (seq as usize * 13) % 1440;
    let mut f = Vec::with_capacity(14 + len);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ETHERTYPE);
    f.extend(frame(seq, len));
    f
}

/// `n` frames each way between `a` and `b` (sequence numbers from
/// `first`), interleaved, each checked in order on arrival.
fn exchange(a: &mut Side, b: &mut Side, first: u32, n: u32) {
    let (ma, mb) = (a.mac(), b.mac());
    let end = Instant::now() + PATIENCE;
    let (mut sent_a, mut sent_b, mut got_a, mut got_b) = (first, first, first, first);
    let (mut ba, mut bb) = (Burst::new(), Burst::new());
    while got_a < first + n || got_b < first + n || a.tx.in_flight() + b.tx.in_flight() > 0 {
        // Keep no more in flight than a 64-descriptor RX ring holds.
        while sent_a < first + n && sent_a - got_b < 32 && ba.len() < 32 {
            ba.push(tx_packet(&mut a.cache, &eth(mb, ma, sent_a)));
            sent_a += 1;
        }
        while sent_b < first + n && sent_b - got_a < 32 && bb.len() < 32 {
            bb.push(tx_packet(&mut b.cache, &eth(ma, mb, sent_b)));
            sent_b += 1;
        }
        a.send(&mut ba);
        b.send(&mut bb);
        for f in b.recv() {
            assert_eq!(f, eth(mb, ma, got_b), "A→B frame {got_b}");
            got_b += 1;
        }
        for f in a.recv() {
            assert_eq!(f, eth(ma, mb, got_a), "B→A frame {got_a}");
            got_a += 1;
        }
        assert!(
            Instant::now() < end,
            "A→B {}/{n}, B→A {}/{n}",
            got_b - first,
            got_a - first
        );
        std::thread::sleep(Duration::from_micros(20));
    }
    assert!(ba.is_empty() && bb.is_empty());
}

fn two(veb_cfg: VebConfig) -> (Arc<Veb>, Side, Side) {
    let veb = Veb::new(veb_cfg);
    let a = side(&veb, Flavor::X82599, MAC_A, "veb-a");
    let b = side(&veb, Flavor::X550, MAC_B, "veb-b");
    (veb, a, b)
}

/// Two ports on two VFs of one PF, each VF in its own DMA space:
/// 1000 frames each way, payloads checked, nothing to the uplink, the
/// switch's counts and both ports' agree.
#[test]
fn two_ports_exchange_frames_through_the_switch() {
    let (veb, mut a, mut b) = two(VebConfig::default());
    assert_ne!(a.vf, b.vf);
    exchange(&mut a, &mut b, 0, 1000);
    assert!(veb.take_uplink().is_empty());
    let (ca, cb) = (
        veb.port_counters(a.vf).unwrap(),
        veb.port_counters(b.vf).unwrap(),
    );
    assert_eq!((ca.tx_frames, ca.rx_frames), (1000, 1000));
    assert_eq!((cb.tx_frames, cb.rx_frames), (1000, 1000));
    assert_eq!(ca.rx_filtered + ca.inbox_overflow + ca.tx_spoofed, 0);
    for s in [&a, &b] {
        let st = s.port.stats();
        assert_eq!((st.ipackets, st.opackets), (1000, 1000));
        assert_eq!(xstat(&s.port, "rx_nombuf"), 0);
    }
    a.finish();
    b.finish();
}

/// A broadcast reaches the other VF and the uplink, never its sender;
/// unicast to a MAC no VF has goes to the uplink only.
#[test]
fn broadcast_floods_and_unknown_unicast_goes_up() {
    let (veb, mut a, mut b) = two(VebConfig::default());
    let bc = eth(BROADCAST, MAC_A, 7);
    let mut burst = Burst::new();
    burst.push(tx_packet(&mut a.cache, &bc));
    a.send(&mut burst);
    assert_eq!(b.recv_n(1), vec![bc.clone()]);
    assert!(
        a.recv_quiet().is_empty(),
        "the sender got its own broadcast"
    );
    assert_eq!(veb.take_uplink(), vec![bc]);

    let uc = eth(UNKNOWN, MAC_B, 8);
    burst.push(tx_packet(&mut b.cache, &uc));
    b.send(&mut burst);
    let end = Instant::now() + PATIENCE;
    let mut up = Vec::new();
    while up.is_empty() {
        b.tx.reclaim(&mut b.cache);
        up = veb.take_uplink();
        assert!(Instant::now() < end);
    }
    assert_eq!(up, vec![uc]);
    assert!(a.recv_quiet().is_empty());
    assert!(b.recv_quiet().is_empty());
    a.finish();
    b.finish();
}

/// A frame with a source MAC that is not the sender's is dropped and
/// counted (spoof check on), and passes with the check off.
#[test]
fn spoofed_source_is_dropped_and_counted() {
    for check in [true, false] {
        let (veb, mut a, mut b) = two(VebConfig {
            spoof_check: check,
            ..VebConfig::default()
        });
        let f = eth(MAC_B, UNKNOWN, 3);
        let mut burst = Burst::new();
        burst.push(tx_packet(&mut a.cache, &f));
        a.send(&mut burst);
        if check {
            assert!(b.recv_quiet().is_empty());
            assert_eq!(veb.port_counters(a.vf).unwrap().tx_spoofed, 1);
        } else {
            assert_eq!(b.recv_n(1), vec![f]);
            assert_eq!(veb.port_counters(a.vf).unwrap().tx_spoofed, 0);
        }
        a.recv_quiet();
        a.finish();
        b.finish();
    }
}

/// Poll a side's queues (RX drained and freed, TX reclaimed), as a
/// worker does while the control thread services the port.
fn poll(s: &mut Side) {
    let mut sink = Burst::new();
    s.rx.rx_burst(&mut s.cache, &mut sink, 32);
    s.cache.free_bulk(&mut sink);
    let mut none = Burst::new();
    s.tx.tx_burst(&mut s.cache, &mut none);
}

/// Service a side's port, its queues polled, until it reports `want`.
fn service(s: &mut Side, want: ServiceEvent) {
    let Side {
        port,
        rx,
        tx,
        cache,
        ..
    } = s;
    service_until(
        port,
        || {
            let mut sink = Burst::new();
            rx.rx_burst(cache, &mut sink, 32);
            cache.free_bulk(&mut sink);
            let mut none = Burst::new();
            tx.tx_burst(cache, &mut none);
        },
        want,
    );
}

/// The PF resets under both VFs while frames flow: both ports see it,
/// stop, recover once the PF is back, and the exchange resumes with every
/// payload checked.
#[test]
fn pf_reset_over_both_vfs_while_traffic_runs() {
    let (veb, mut a, mut b) = two(VebConfig::default());
    exchange(&mut a, &mut b, 0, 200);
    // Frames in both TX rings as the PF goes down.
    let mut burst = Burst::new();
    for s in 0..16 {
        burst.push(tx_packet(&mut a.cache, &eth(MAC_B, MAC_A, 500 + s)));
    }
    a.send(&mut burst);
    veb.pf_reset_begin();
    assert!(veb.wait_applied(PATIENCE));
    service(&mut a, ServiceEvent::ResetDetected);
    service(&mut b, ServiceEvent::ResetDetected);
    assert!(!a.port.link().up && !b.port.link().up);
    veb.pf_reset_end();
    assert!(veb.wait_applied(PATIENCE));
    service(&mut a, ServiceEvent::Recovered);
    service(&mut b, ServiceEvent::Recovered);
    poll(&mut a);
    poll(&mut b);
    // Frames switched before the reset and not yet received are gone
    // with the reset; drain what is left before counting afresh.
    a.recv_quiet();
    b.recv_quiet();
    exchange(&mut a, &mut b, 1000, 300);
    assert_eq!(a.port.recoveries(), 1);
    assert_eq!(b.port.recoveries(), 1);
    a.finish();
    b.finish();
}

/// The PF's link goes down: the ports see it, nothing is switched (each
/// frame counted), it is no reset; up again, the exchange resumes.
#[test]
fn link_flap_stops_switching_and_resumes() {
    let (veb, mut a, mut b) = two(VebConfig::default());
    exchange(&mut a, &mut b, 0, 50);
    veb.set_link(false);
    assert!(veb.wait_applied(PATIENCE));
    assert_eq!(a.port.service().unwrap(), ServiceEvent::Idle);
    assert!(!a.port.link().up);
    let frames = (0..5).map(|s| eth(MAC_B, MAC_A, s));
    a.send_all(frames, || veb.counters().down_drops == 5);
    assert!(b.recv_quiet().is_empty());
    veb.set_link(true);
    assert!(veb.wait_applied(PATIENCE));
    assert_eq!(a.port.service().unwrap(), ServiceEvent::Idle);
    assert_eq!(b.port.service().unwrap(), ServiceEvent::Idle);
    assert!(a.port.link().up && b.port.link().up);
    exchange(&mut a, &mut b, 100, 100);
    assert_eq!(a.port.recoveries() + b.port.recoveries(), 0);
    a.finish();
    b.finish();
}

/// The receiver's device is held (its thread does not drain its inbox):
/// past the inbox's size frames are dropped and counted as the
/// receiver's; once it runs it gets the ones kept, in order.
#[test]
fn inbox_overflow_is_counted_for_the_receiver() {
    let (veb, mut a, mut b) = two(VebConfig {
        inbox_frames: 8,
        ..VebConfig::default()
    });
    b.dev.pause();
    let frames = (0..20).map(|s| eth(MAC_B, MAC_A, s));
    let vf = a.vf;
    a.send_all(frames, || veb.port_counters(vf).unwrap().tx_frames == 20);
    let cb = veb.port_counters(b.vf).unwrap();
    assert_eq!((cb.rx_frames, cb.inbox_overflow), (8, 12));
    b.dev.resume();
    let got = b.recv_n(8);
    for (k, f) in got.iter().enumerate() {
        assert_eq!(f, &eth(MAC_B, MAC_A, k as u32));
    }
    a.finish();
    b.finish();
}

/// The admin gives VF B a new MAC while it runs: the switch sends frames
/// for the new MAC to B at once (the PF holds it), and B's frames from
/// its old MAC are now spoofed, until B resets and takes the new one.
#[test]
fn admin_mac_change_moves_the_switch_entry() {
    let (veb, mut a, mut b) = two(VebConfig::default());
    let new = MacAddr([0x02, 0, 0, 0, 0xB0, 0x99]);
    veb.admin_set_mac(b.vf, new).unwrap();
    assert!(veb.wait_applied(PATIENCE));
    assert_eq!(veb.filter(b.vf).unwrap().unicast.first(), Some(&new));
    let f = eth(new, MAC_A, 1);
    let mut burst = Burst::new();
    burst.push(tx_packet(&mut a.cache, &f));
    a.send(&mut burst);
    assert_eq!(b.recv_n(1), vec![f]);
    burst.push(tx_packet(&mut b.cache, &eth(MAC_A, MAC_B, 2)));
    b.send(&mut burst);
    assert!(a.recv_quiet().is_empty());
    assert_eq!(veb.port_counters(b.vf).unwrap().tx_spoofed, 1);
    b.recv_quiet();
    a.finish();
    b.finish();
}

/// The uplink keeps what the VFs send out for the test to read, up to
/// its size; past that each frame is dropped and counted, so a long run
/// cannot grow without bound.
#[test]
fn uplink_is_bounded_and_counts_what_it_drops() {
    let (veb, mut a, mut b) = two(VebConfig {
        uplink_frames: 4,
        ..VebConfig::default()
    });
    let frames = (0..10).map(|s| eth(UNKNOWN, MAC_A, s));
    a.send_all(frames, || veb.counters().uplink_frames == 10);
    assert_eq!(veb.counters().uplink_dropped, 6);
    let kept = veb.take_uplink();
    assert_eq!(kept.len(), 4);
    for (k, f) in kept.iter().enumerate() {
        assert_eq!(f, &eth(UNKNOWN, MAC_A, k as u32));
    }
    assert!(b.recv_quiet().is_empty());
    a.finish();
    b.finish();
}

/// The driver's multicast hash (what it sends in SET_MULTICAST) and the
/// model's (what the switch filters with) agree for every filter type.
#[test]
fn driver_and_model_hash_multicast_alike() {
    for ty in 0..4 {
        for k in 0..64u8 {
            let m = MacAddr([0x01, 0x00, 0x5E, k, k.wrapping_mul(37), k ^ 0xA5]);
            assert_eq!(
                super::mailbox::mc_hash(m, ty),
                crate::sim::veb::mc_hash(m, ty),
                "{m} type {ty}"
            );
        }
    }
}

/// Three VFs broadcast at once while each receives the others': every
/// device thread both sends into and drains from the switch, none waits
/// on another. Each VF gets every frame of the two others, in each
/// sender's order, never its own; the uplink gets them all.
#[test]
fn three_vfs_broadcast_at_once() {
    const N: u32 = 200;
    let veb = Veb::new(VebConfig::default());
    let macs = [MAC_A, MAC_B, UNKNOWN];
    let mut sides: Vec<Side> = macs
        .iter()
        .zip([Flavor::X82599, Flavor::X540, Flavor::X550])
        .enumerate()
        .map(|(i, (&m, f))| side(&veb, f, m, &format!("veb-bc{i}")))
        .collect();
    // Per receiver, the next sequence number expected from each sender.
    let mut next = [[0u32; 3]; 3];
    let mut sent = [0u32; 3];
    let end = Instant::now() + PATIENCE;
    let done = |next: &[[u32; 3]; 3]| (0..3).all(|r| (0..3).all(|s| r == s || next[r][s] == N));
    while !done(&next) {
        for (i, s) in sides.iter_mut().enumerate() {
            let mut b = Burst::new();
            while sent[i] < N && b.len() < 8 {
                b.push(tx_packet(&mut s.cache, &eth(BROADCAST, macs[i], sent[i])));
                sent[i] += 1;
            }
            s.send(&mut b);
            // What the ring refused goes again next round.
            sent[i] -= b.len() as u32;
            s.cache.free_bulk(&mut b);
            for f in s.recv() {
                let from = macs.iter().position(|m| f[6..12] == m.0).unwrap();
                assert_ne!(from, i, "VF {i} got its own broadcast");
                assert_eq!(f, eth(BROADCAST, macs[from], next[i][from]));
                next[i][from] += 1;
            }
        }
        assert!(Instant::now() < end, "{next:?}");
        std::thread::sleep(Duration::from_micros(20));
    }
    let up = veb.take_uplink();
    assert_eq!(up.len(), 3 * N as usize);
    for mut s in sides {
        assert!(s.recv_quiet().is_empty());
        s.finish();
    }
}
