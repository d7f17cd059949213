//! Property tests of the iavf port against the iavf device model, in the
//! manner of ixgbevf's: any ring length the driver accepts (multiples of
//! 32 from 64 to 4096, B.8 #2, powers of two or not), RX and TX apart;
//! any RX and TX burst size, from 1 to more than the ring; enough frames
//! to wrap the longer ring two or three times, from any offset; any data
//! room and MTU, with frame lengths from 60 to what one buffer holds and
//! over-long ones; on both flavours (i40e and ice PF).
//!
//! The driver takes one buffer per frame: it does not chain the up to 5
//! buffers a frame may span (B.8 #4), so an RX frame the device spreads
//! over several buffers is its counted drop (`rx_frame_too_long`), one
//! over max_pkt_size or 5 buffers the device's (GET_STATS rx_discards),
//! and a TX packet outside 17..=16383 bytes (B.5.2, B.8 #7) the driver's
//! (`tx_bad_length`). Frames go both ways at once: every other frame
//! arrives once, in order, byte for byte; the counters match; the model
//! records no broken rule; every buffer comes back. Few cases: each
//! starts a model and brings a port up.

use super::device::IavfPort;
use super::model_tests::{
    config, frame, model, pool_config, tx_packet, wait_link, PATIENCE, PORT_ID,
};
use super::queue::{IavfRx, IavfTx};
use super::ring::{MAX_RING, MIN_RING, RING_MULTIPLE};
use super::rx::{RX_BUF_GRANULE, RX_BUF_MAX};
use super::tx::{TX_MAX_LEN, TX_MIN_LEN};
use crate::burst::{Burst, MAX_BURST};
use crate::pool::{Pool, PoolCache};
use crate::port::{Port, PortError, RxQueue, TxQueue};
use crate::sim::iavf::{Flavor, IavfBar, IavfSim};
use crate::sim::iavf_queue::RX_MAX_BUFS;
use proptest::prelude::*;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// max_pkt_size is the MTU plus this (B.6 step 10).
const MAX_PKT_OVER_MTU: usize = 26;
/// Frames an RX queue of the model holds without a descriptor
/// (`IavfConfig::rx_fifo`): the RX window never exceeds it.
const MODEL_FIFO: usize = 4096;

/// What becomes of an RX frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// One buffer, within max_pkt_size: received.
    Received,
    /// Over several buffers: the driver drops it, `rx_frame_too_long`.
    TooLong,
    /// Over max_pkt_size or 5 buffers (B.8 #4): the device discards it.
    Discarded,
}

/// The frames of a case: each length from its sequence number and the
/// case's salt.
#[derive(Clone, Copy, Debug)]
struct Frames {
    salt: u32,
    /// databuffer_size: the data room rounded down to 128, at most 16256
    /// (B.8 #4).
    buf: usize,
    max_pkt: usize,
    data_room: usize,
}

/// A well-spread hash of `seq` and `salt`.
fn mix(seq: u32, salt: u32) -> u32 {
    let mut x = seq ^ salt.rotate_left(16);
    x = (x ^ (x >> 16)).wrapping_mul(0x7feb_352d);
    x = (x ^ (x >> 15)).wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

/// A value in `lo..=hi` picked by `h`.
fn pick(h: u32, lo: usize, hi: usize) -> usize {
    lo + h as usize % (hi - lo + 1)
}

impl Frames {
    /// The longest RX frame received whole.
    fn fits(&self) -> usize {
        self.buf.min(self.max_pkt)
    }

    /// RX lengths: mostly 60..=fits with both ends often, one in 16
    /// over-long (up to 6 buffers, 14-bit lengths).
    fn rx_len(&self, seq: u32) -> usize {
        let h = mix(seq, self.salt);
        let fits = self.fits();
        match h % 16 {
            0 => 60,
            1 => fits,
            2 => pick(h >> 4, fits + 1, ((RX_MAX_BUFS + 1) * self.buf).min(16383)),
            _ => pick(h >> 4, 60, fits),
        }
    }

    fn rx_frame(&self, seq: u32) -> Vec<u8> {
        frame(seq, self.rx_len(seq))
    }

    fn fate(&self, len: usize) -> Fate {
        if len > self.max_pkt || len.div_ceil(self.buf) > RX_MAX_BUFS {
            Fate::Discarded
        } else if len > self.buf {
            Fate::TooLong
        } else {
            Fate::Received
        }
    }

    /// TX lengths: mostly 60..=data room with both ends often, one in 32
    /// a runt under 17 bytes (B.8 #7).
    fn tx_len(&self, seq: u32) -> usize {
        let h = mix(seq, !self.salt);
        match h % 32 {
            0 => 60,
            1 => self.data_room,
            2 => pick(h >> 5, 1, TX_MIN_LEN - 1),
            _ => pick(h >> 5, 60, self.data_room),
        }
    }

    /// The driver sends 17..=16383 bytes in one descriptor (B.5.2, B.8
    /// #7) and drops the rest (`tx_bad_length`).
    fn tx_sent(len: usize) -> bool {
        (TX_MIN_LEN..=TX_MAX_LEN).contains(&len)
    }

    fn tx_frame(&self, seq: u32) -> Vec<u8> {
        let len = self.tx_len(seq);
        let mut f = frame(seq, len.max(60));
        f.truncate(len);
        f
    }
}

/// What a run should have counted.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    rx: u64,
    rx_bytes: u64,
    too_long: u64,
    too_long_bytes: u64,
    discarded: u64,
    tx: u64,
    tx_bytes: u64,
    tx_bad: u64,
}

/// Frames the device discarded (GET_STATS rx_discards, as the model
/// counts it).
fn discards(dev: &IavfSim) -> u64 {
    dev.with(|m, _| m.eth_stats().words[4])
}

/// Burst sizes and how many RX frames may be injected and not yet
/// received or dropped.
#[derive(Clone, Copy, Debug)]
struct Pace {
    rx_burst: usize,
    tx_burst: usize,
    window: usize,
}

impl Pace {
    fn new(rx_burst: usize, tx_burst: usize, window: usize) -> Pace {
        Pace {
            rx_burst,
            tx_burst,
            window,
        }
    }
}

/// Frames `first..first + n` both ways at once at `pace`: each received
/// or sent frame checked against the next expected one, the drops
/// counted where they belong. Sleeps only when nothing moved.
#[allow(clippy::too_many_arguments)]
fn both_ways(
    dev: &IavfSim,
    port: &IavfPort<IavfBar>,
    (rx, tx): (&mut IavfRx<IavfBar>, &mut IavfTx<IavfBar>),
    cache: &mut PoolCache,
    fr: &Frames,
    (first, n): (u32, u32),
    pace: Pace,
    tally: &mut Tally,
) {
    let end = Instant::now() + PATIENCE;
    let last = first + n;
    let (err0, disc0) = (port.stats().ierrors, discards(dev));
    let mut want = Tally::default();
    // The next frame to inject and to queue; the frames expected, in
    // order, from the RX queue and on the wire.
    let (mut injected, mut queued) = (first, first);
    let (mut rx_due, mut wire_due) = (VecDeque::new(), VecDeque::new());
    let (mut received, mut on_wire) = (0u64, 0u64);
    let (mut rb, mut tb) = (Burst::new(), Burst::new());
    loop {
        let too_long = port.stats().ierrors - err0;
        let discarded = discards(dev) - disc0;
        let settled = received + too_long + discarded;
        let mut moved = false;
        while injected < last && u64::from(injected - first) - settled < pace.window as u64 {
            let f = fr.rx_frame(injected);
            let len = f.len() as u64;
            assert!(dev.inject(0, &f), "frame {injected} refused by the model");
            match fr.fate(f.len()) {
                Fate::Received => {
                    (want.rx, want.rx_bytes) = (want.rx + 1, want.rx_bytes + len);
                    rx_due.push_back((injected, f));
                }
                Fate::TooLong => {
                    (want.too_long, want.too_long_bytes) =
                        (want.too_long + 1, want.too_long_bytes + len)
                }
                Fate::Discarded => want.discarded += 1,
            }
            injected += 1;
            moved = true;
        }
        let got = rx.rx_burst(cache, &mut rb, pace.rx_burst);
        assert!(
            got <= pace.rx_burst,
            "{got} frames for a burst of {}",
            pace.rx_burst
        );
        for p in rb.drain(..) {
            let (seq, f) = rx_due
                .pop_front()
                .expect("a frame received beyond those due");
            assert_eq!(p.len(), f.len(), "RX frame {seq}: length");
            assert!(
                p.data() == &f[..],
                "RX frame {seq}: bytes differ (bytes 14..18 name frame {:?})",
                p.data().get(14..18)
            );
            assert_eq!(p.port(), PORT_ID);
            cache.free(p);
            (received, moved) = (received + 1, true);
        }
        while queued < last && tb.len() < pace.tx_burst {
            let f = fr.tx_frame(queued);
            tb.push(tx_packet(cache, &f));
            if !Frames::tx_sent(f.len()) {
                want.tx_bad += 1;
            } else {
                (want.tx, want.tx_bytes) = (want.tx + 1, want.tx_bytes + f.len() as u64);
                wire_due.push_back((queued, f));
            }
            (queued, moved) = (queued + 1, true);
        }
        let before = tb.len();
        tx.tx_burst(cache, &mut tb);
        moved |= tb.len() != before;
        moved |= tx.reclaim(cache) > 0;
        for w in dev.take_wire() {
            let (seq, f) = wire_due
                .pop_front()
                .expect("a frame on the wire beyond those due");
            assert_eq!(w.len(), f.len(), "TX frame {seq}: length");
            assert!(
                w == f,
                "TX frame {seq}: bytes differ (bytes 14..18 name frame {:?})",
                w.get(14..18)
            );
            (on_wire, moved) = (on_wire + 1, true);
        }
        let rx_done = injected == last
            && received == want.rx
            && too_long == want.too_long
            && discarded == want.discarded;
        let tx_done = queued == last && tb.is_empty() && tx.in_flight() == 0 && on_wire == want.tx;
        if rx_done && tx_done {
            break;
        }
        assert!(
            Instant::now() < end,
            "stuck: RX {received} of {} received, {too_long} of {} too long, {discarded} of {} \
             discarded; TX {on_wire} of {} on the wire, {} in flight",
            want.rx,
            want.too_long,
            want.discarded,
            want.tx,
            tx.in_flight()
        );
        if !moved {
            std::thread::sleep(Duration::from_micros(20));
        }
    }
    // Nothing more arrives: no duplicate, nothing late.
    assert!(dev.take_wire().is_empty(), "TX frames beyond those sent");
    assert_eq!(
        rx.rx_burst(cache, &mut rb, MAX_BURST),
        0,
        "RX frames beyond those injected"
    );
    tally.rx += want.rx;
    tally.rx_bytes += want.rx_bytes;
    tally.too_long += want.too_long;
    tally.too_long_bytes += want.too_long_bytes;
    tally.discarded += want.discarded;
    tally.tx += want.tx;
    tally.tx_bytes += want.tx_bytes;
    tally.tx_bad += want.tx_bad;
}

fn xstat(port: &IavfPort<IavfBar>, name: &str) -> u64 {
    port.xstats()
        .into_iter()
        .find_map(|(k, v)| (k == name).then_some(v))
        .unwrap_or_else(|| panic!("no xstat {name}"))
}

/// A case: ring lengths, paces, frames before the checked run (where the
/// indexes start) and in it, data room, MTU, salt for the lengths.
#[derive(Clone, Copy, Debug)]
struct Case {
    rx_ring: usize,
    tx_ring: usize,
    pace: Pace,
    offset: u32,
    n: u32,
    data_room: usize,
    mtu: u16,
    salt: u32,
}

/// Any ring length the driver accepts, short ones more often (each case
/// wraps the longer ring several times).
fn ring() -> impl Strategy<Value = usize> {
    let (lo, hi) = (MIN_RING / RING_MULTIPLE, MAX_RING / RING_MULTIPLE);
    prop_oneof![5 => lo..=16usize, 1 => lo..=hi].prop_map(|k| k * RING_MULTIPLE)
}

fn cases() -> impl Strategy<Value = Case> {
    let data_room = prop_oneof![2 => Just(2048usize), 1 => 128usize..=2048, 1 => 2049usize..=9216];
    // Linux's default, a jumbo MTU, or any from IPv4's least to the
    // largest i40e frame (9728 − 26).
    let mtu = prop_oneof![Just(1500u16), Just(9000u16), 68u16..=9702];
    (ring(), ring(), data_room, mtu, any::<u32>(), 2u32..=3).prop_flat_map(
        |(rx_ring, tx_ring, data_room, mtu, salt, wraps)| {
            let longer = rx_ring.max(tx_ring) as u32;
            (
                1..=rx_ring + 64,
                1..=(tx_ring + 64).min(MAX_BURST),
                1..=(rx_ring + 64).min(MODEL_FIFO),
                0..longer,
                0..longer,
            )
                .prop_map(move |(rx_burst, tx_burst, window, offset, extra)| Case {
                    rx_ring,
                    tx_ring,
                    pace: Pace::new(rx_burst, tx_burst, window),
                    offset,
                    n: wraps * longer + extra,
                    data_room,
                    mtu,
                    salt,
                })
        },
    )
}

/// Run `c` on a fresh model; what it counted.
fn run_case(flavor: Flavor, c: Case) -> Tally {
    let dev = model(flavor);
    // The RX ring's posted buffers, a full TX ring, an RX and a TX burst
    // held at once, and slack (at least a warm-up burst).
    let held = c.pace.rx_burst.min(MAX_BURST) + c.pace.tx_burst;
    let buffers = (c.rx_ring + c.tx_ring + held + 64) as u32;
    let mut pc = pool_config(&dev, buffers);
    pc.data_room = c.data_room as u16;
    let pool = Pool::new(&pc).unwrap();
    let mut cache = pool.cache();
    let mut pcfg = config(&dev);
    (pcfg.rx_ring, pcfg.tx_ring) = (c.rx_ring, c.tx_ring);
    (pcfg.data_room, pcfg.mtu) = (c.data_room, c.mtu);
    let mut port = IavfPort::new(dev.bar(), pcfg).expect("bring-up against the model");
    let buf = c.data_room.min(RX_BUF_MAX) / RX_BUF_GRANULE * RX_BUF_GRANULE;
    assert_eq!(port.info().capabilities.max_rx_frame, buf);
    let fr = Frames {
        salt: c.salt,
        buf,
        max_pkt: usize::from(c.mtu) + MAX_PKT_OVER_MTU,
        data_room: c.data_room,
    };
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    // The first burst posts the RX buffers; ENABLE_QUEUES follows.
    rx[0].rx_burst(&mut cache, &mut Burst::new(), 1);
    wait_link(&mut port);
    let mut tally = Tally::default();
    let warm = Pace::new(32, 32, 32);
    for ((first, n), pace) in [((0, c.offset), warm), ((c.offset, c.n), c.pace)] {
        let q = (&mut rx[0], &mut tx[0]);
        both_ways(
            &dev,
            &port,
            q,
            &mut cache,
            &fr,
            (first, n),
            pace,
            &mut tally,
        );
    }
    let s = port.stats();
    assert_eq!(
        (s.ipackets, s.ibytes),
        (tally.rx, tally.rx_bytes),
        "RX stats"
    );
    assert_eq!(
        (s.opackets, s.obytes),
        (tally.tx, tally.tx_bytes),
        "TX stats"
    );
    assert_eq!(
        (s.ierrors, s.oerrors, s.rx_nombuf),
        (tally.too_long, tally.tx_bad, 0)
    );
    assert_eq!(xstat(&port, "rx_frame_too_long"), tally.too_long);
    assert_eq!(xstat(&port, "tx_bad_length"), tally.tx_bad);
    // The device's own counters (GET_STATS): it delivered the frames the
    // driver dropped as too long, and discarded the others itself.
    port.fetch_stats().unwrap();
    assert_eq!(xstat(&port, "vf_rx_unicast"), tally.rx + tally.too_long);
    assert_eq!(
        xstat(&port, "vf_rx_bytes"),
        tally.rx_bytes + tally.too_long_bytes
    );
    assert_eq!(xstat(&port, "vf_rx_discards"), tally.discarded);
    assert_eq!(xstat(&port, "vf_tx_unicast"), tally.tx);
    assert_eq!(xstat(&port, "vf_tx_bytes"), tally.tx_bytes);
    drop((rx, tx));
    drop(port);
    drop(cache);
    assert_eq!(pool.available(), buffers as usize, "a buffer was lost");
    dev.violations().assert_clean();
    tally
}

/// The ends of the ranges, always run: the shortest rings with bursts of
/// one and bursts beyond the ring, the longest ring each way, the largest
/// buffer and max_pkt_size.
#[test]
fn the_ends_of_the_ranges() {
    let pinned = |rx_ring, tx_ring, (rx_burst, tx_burst, window), n| Case {
        rx_ring,
        tx_ring,
        pace: Pace::new(rx_burst, tx_burst, window),
        offset: 37,
        n,
        data_room: 2048,
        mtu: 9000,
        salt: 0x1a2b_3c4d,
    };
    let (min, max) = (MIN_RING, MAX_RING);
    for flavor in [Flavor::Xl710, Flavor::Adaptive] {
        run_case(flavor, pinned(min, min, (1, 1, 1), 3 * min as u32 + 5));
        run_case(
            flavor,
            pinned(min, min, (min + 9, min + 9, 2 * min), 4 * min as u32),
        );
    }
    run_case(
        Flavor::Xl710,
        pinned(max, min, (MAX_BURST, 7, max), 2 * max as u32),
    );
    run_case(
        Flavor::Adaptive,
        pinned(min, max, (3, MAX_BURST, 64), 2 * max as u32),
    );
    // The largest buffer (16256, B.8 #4) and max_pkt_size (16383): frames
    // over the buffer are too long; a 16384-byte TX packet is refused.
    let mut big = pinned(min, min, (32, 32, 32), 3 * min as u32);
    (big.data_room, big.mtu) = (16384, (16383 - MAX_PKT_OVER_MTU) as u16);
    let t = run_case(Flavor::Xl710, big);
    assert!(t.too_long > 0 && t.tx_bad > 0, "{t:?}");
}

/// Ring lengths the driver does not accept: short, not a multiple of 32,
/// or long.
fn refused_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        0..MIN_RING,
        (MIN_RING..=MAX_RING).prop_filter("not a multiple of 32", |n| n % RING_MULTIPLE != 0),
        MAX_RING + 1..=2 * MAX_RING,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// A ring length the driver does not accept (B.8 #2: what both PFs
    /// take) is a clear error from `queues`, RX or TX, on either flavour,
    /// before anything reaches the PF.
    #[test]
    fn any_other_ring_length_is_refused(bad in refused_len(), tx_side: bool, ice: bool) {
        let dev = model(if ice { Flavor::Adaptive } else { Flavor::Xl710 });
        let mut c = config(&dev);
        if tx_side {
            c.tx_ring = bad;
        } else {
            c.rx_ring = bad;
        }
        let mut port = IavfPort::new(dev.bar(), c).expect("bring-up against the model");
        let ops = dev.sent_ops().len();
        match port.queues(1, 1) {
            Err(PortError::Config { why, .. }) => {
                prop_assert!(why.contains(&format!("ring of {bad} descriptors")), "{why}");
            }
            other => prop_assert!(false, "ring of {bad}: {:?}", other.map(|_| ())),
        }
        prop_assert_eq!(dev.sent_ops().len(), ops, "nothing sent to the PF");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    /// Any rings, bursts, wrap points and lengths on an XL710 VF (i40e
    /// PF: TX ring lengths in 8s would do, RX in 32s).
    #[test]
    fn any_ring_burst_wrap_and_length_on_xl710(case in cases()) {
        run_case(Flavor::Xl710, case);
    }

    /// The same on an Adaptive VF (ice PF: 64..8160 in 32s both ways).
    #[test]
    fn any_ring_burst_wrap_and_length_on_adaptive(case in cases()) {
        run_case(Flavor::Adaptive, case);
    }
}
