//! Property tests of the ixgbevf port against the device model: any
//! valid ring size (a multiple of 8, A.8 #5), any RX and TX burst size,
//! and rings that wrap at any index (frames pushed through first), on
//! 82599 and X550. Frames go both ways at once with their payloads
//! checked, and every buffer comes back. Few cases: each starts a model
//! and brings a port up.

use super::device::{IxgbevfRx, IxgbevfTx};
use super::tests::{
    frame, pool, port, rx_and_check, tx_and_check, tx_packet, vf, PATIENCE, PF_MAC,
};
use crate::burst::Burst;
use crate::pool::PoolCache;
use crate::port::{Port, RxQueue, TxQueue};
use crate::sim::ixgbevf::{Flavor, IxgbevfBar, IxgbevfSim};
use proptest::prelude::*;
use std::time::{Duration, Instant};

/// A frame length from 60 to 1514 bytes, picked by `seq` and `salt`.
fn len(seq: u32, salt: u32) -> usize {
    60 + (seq.wrapping_mul(31).wrapping_add(salt) as usize % 1455)
}

/// Frames `first..first + n` both ways at once: at most `rx_burst` taken
/// per RX burst and `tx_burst` given per TX burst, the model holding at
/// most 48 injected frames (less than the smallest ring posts). Every
/// frame arrives once, in order, with its bytes.
#[allow(clippy::too_many_arguments)]
fn both_ways(
    dev: &IxgbevfSim,
    rx: &mut IxgbevfRx<IxgbevfBar>,
    tx: &mut IxgbevfTx<IxgbevfBar>,
    cache: &mut PoolCache,
    first: u32,
    n: u32,
    (rx_burst, tx_burst): (usize, usize),
    salt: u32,
) {
    let end = Instant::now() + PATIENCE;
    let (mut injected, mut received, mut queued) = (first, first, first);
    let mut wire = Vec::new();
    let mut rb = Burst::new();
    let mut tb = Burst::new();
    while received < first + n || queued < first + n || !tb.is_empty() || tx.in_flight() > 0 {
        while injected < first + n && injected - received < 48 {
            assert!(dev.inject(0, &frame(injected, len(injected, salt))));
            injected += 1;
        }
        let got = rx.rx_burst(cache, &mut rb, rx_burst);
        assert!(got <= rx_burst, "{got} frames for a burst of {rx_burst}");
        for p in rb.drain(..) {
            assert_eq!(p.data(), &frame(received, len(received, salt))[..]);
            received += 1;
            cache.free(p);
        }
        while queued < first + n && tb.len() < tx_burst {
            tb.push(tx_packet(cache, &frame(queued, len(queued, salt))));
            queued += 1;
        }
        tx.tx_burst(cache, &mut tb);
        tx.reclaim(cache);
        wire.extend(dev.take_wire());
        assert!(
            Instant::now() < end,
            "stuck: {received} in, {} out",
            wire.len()
        );
        std::thread::sleep(Duration::from_micros(20));
    }
    wire.extend(dev.take_wire());
    assert_eq!(wire.len(), n as usize);
    for (k, f) in wire.iter().enumerate() {
        let s = first + k as u32;
        assert_eq!(f, &frame(s, len(s, salt)), "frame {s} on the wire");
    }
}

/// A case: ring size (a multiple of 8, 64..=512), RX and TX burst sizes,
/// where in the ring's second pass the indexes start (a fraction of the
/// ring), frames each way, and a salt for their lengths.
type Case = (usize, usize, usize, f64, u32, u32);

fn cases() -> impl Strategy<Value = Case> {
    (
        (8usize..=64).prop_map(|k| k * 8),
        1usize..=64,
        1usize..=64,
        0.0f64..1.0,
        1u32..=300,
        any::<u32>(),
    )
}

fn run_case(flavor: Flavor, (ring, rx_burst, tx_burst, wrap, n, salt): Case) {
    let dev = vf(flavor, Some(PF_MAC));
    // Room for the RX ring's posted buffers, a full TX ring and a burst.
    let buffers = 2 * ring as u32 + 128;
    let pool = pool(&dev, "ixgbevf-prop", buffers);
    let mut cache = pool.cache();
    let mut port = port(&dev, ring);
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    // Both rings' indexes moved to `offset` first: once round, then
    // anywhere in the second pass.
    let offset = ring as u32 + (wrap * ring as f64) as u32;
    rx_and_check(&dev, &mut rx[0], &mut cache, 0, offset);
    tx_and_check(&dev, &mut tx[0], &mut cache, 0, offset);
    let bursts = (rx_burst, tx_burst);
    both_ways(
        &dev, &mut rx[0], &mut tx[0], &mut cache, 10_000, n, bursts, salt,
    );
    let s = port.stats();
    assert_eq!(s.ipackets, u64::from(offset + n));
    assert_eq!(s.opackets, u64::from(offset + n));
    assert_eq!((s.rx_nombuf, s.ierrors, s.oerrors), (0, 0, 0));
    drop((rx, tx));
    drop(port);
    drop(cache);
    assert_eq!(pool.available(), buffers as usize, "a buffer was lost");
    dev.violations().assert_clean();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    /// Any ring size, burst sizes and wrap point on an 82599 VF.
    #[test]
    fn any_ring_burst_and_wrap_point_on_82599(case in cases()) {
        run_case(Flavor::X82599, case);
    }

    /// The same on an X550 VF (which stops a queue whose data descriptors
    /// lack CC or a context descriptor, A.8 #3).
    #[test]
    fn any_ring_burst_and_wrap_point_on_x550(case in cases()) {
        run_case(Flavor::X550, case);
    }
}
