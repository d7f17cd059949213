//! ixgbevf port faults against the device model: a PF that stops
//! answering the mailbox, an RX overrun while the driver does not poll,
//! and an admin MAC change while the port runs. Each test ends with no
//! model violation and every buffer back in its pool.

use super::device::{IxgbevfError, IxgbevfPort, IxgbevfRx, IxgbevfTx};
use super::mailbox::IxMbxError;
use super::tests::{
    cfg, frame, len_of, model, pool, port, rx_and_check, service_until, tx_and_check, vf, xstat,
    PATIENCE, PF_MAC,
};
use crate::burst::Burst;
use crate::net::MacAddr;
use crate::pmd::rx_filters::RxFilters;
use crate::pool::PoolCache;
use crate::port::{Port, RxQueue, ServiceEvent, TxQueue};
use crate::sim::ixgbevf::{Flavor, IxgbevfBar, IxgbevfConfig as ModelConfig, IxgbevfSim};
use crate::sim::ixgbevf_pf::{SET_MAC_ADDR, VF_RESET};
use std::time::{Duration, Instant};

/// What a worker does between two `service` calls while the control
/// thread recovers: an RX burst (its buffers freed) and an empty TX
/// burst, which is where each queue answers a stop or restart request.
fn poll(rx: &mut IxgbevfRx<IxgbevfBar>, tx: &mut IxgbevfTx<IxgbevfBar>, cache: &mut PoolCache) {
    let mut sink = Burst::new();
    rx.rx_burst(cache, &mut sink, 32);
    cache.free_bulk(&mut sink);
    tx.tx_burst(cache, &mut Burst::new());
}

/// Message ids (word 0, low 16 bits) of the requests the PF read from
/// index `from` on.
fn request_ids(dev: &IxgbevfSim, from: usize) -> Vec<u32> {
    dev.requests()[from..].iter().map(|w| w & 0xFFFF).collect()
}

/// The PF stops answering the mailbox while traffic runs (A.8 #14). The
/// data path does not need the PF, and the link check reads the mailbox
/// without waiting (A.6 step 21), so traffic and link stay up until a
/// mailbox request times out; then the mailbox is off, the next link
/// check calls for a reset (counted as `reset_mbx_timeout`), the queues
/// stop and release their buffers, each bring-up attempt times out while
/// the PF is silent, and once it answers again the port recovers and
/// traffic resumes both ways, payloads checked.
#[test]
fn mailbox_timeout_resets_and_recovers_once_the_pf_answers() {
    let dev = vf(Flavor::X82599, Some(PF_MAC));
    let pool = pool(&dev, "ixgbevf-mbx-timeout", 512);
    let mut cache = pool.cache();
    let mut c = cfg(&dev, 64);
    // A shorter mailbox timeout than the hardware's (2000 × 500 µs,
    // A.5.1) keeps each attempt against the silent PF brief, yet long
    // (10,000 polls of 20 µs, 0.2 s or more) beside the model's answer
    // of about 30 µs, so a loaded machine does not time out an exchange
    // the PF does answer.
    c.timing.mbx.mbx.polls = 10_000;
    let mut port = IxgbevfPort::new(dev.bar(), c).unwrap();
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    rx_and_check(&dev, &mut rx[0], &mut cache, 0, 100);
    tx_and_check(&dev, &mut tx[0], &mut cache, 0, 100);
    let resets_before = dev.pf(|p| p.vf_resets);

    dev.set_pf_silent(true);
    // Nothing waits on the PF yet: traffic, the link check and the link
    // are as before.
    rx_and_check(&dev, &mut rx[0], &mut cache, 100, 100);
    tx_and_check(&dev, &mut tx[0], &mut cache, 100, 100);
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    assert!(port.link().up);
    // A control request (an operator adding a multicast group) times out.
    let group = MacAddr([0x01, 0x00, 0x5e, 0x00, 0x00, 0x07]);
    let filters = RxFilters {
        multicast: vec![group],
        ..RxFilters::default()
    };
    let err = port.set_filters(filters.clone()).unwrap_err();
    assert!(
        matches!(err, IxgbevfError::Mailbox(IxMbxError::Timeout { .. })),
        "{err}"
    );
    // The next link check sees the mailbox off and calls for a reset.
    poll(&mut rx[0], &mut tx[0], &mut cache);
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    assert!(!port.link().up);
    assert_eq!(xstat(&port, "reset_mbx_timeout"), 1);
    assert_eq!(xstat(&port, "reset_pf_reset"), 0);
    // Queues released, then bring-up attempts that time out while the PF
    // stays silent: the port waits for it, it does not fail.
    let mut waits = 0;
    let end = Instant::now() + PATIENCE;
    while waits < 2 {
        poll(&mut rx[0], &mut tx[0], &mut cache);
        match port.service().unwrap() {
            ServiceEvent::WaitingForDevice => waits += 1,
            ServiceEvent::WaitingForQueues => {}
            e => panic!("unexpected {e:?} while the PF is silent"),
        }
        assert!(Instant::now() < end, "the queues never stopped");
    }
    assert_eq!(
        dev.pf(|p| p.vf_resets),
        resets_before,
        "a silent PF answered"
    );
    assert!(!port.link().up);

    dev.set_pf_silent(false);
    service_until(
        &mut port,
        || poll(&mut rx[0], &mut tx[0], &mut cache),
        ServiceEvent::Recovered,
    );
    assert_eq!(port.recoveries(), 1);
    assert_eq!(dev.pf(|p| p.vf_resets), resets_before + 1);
    assert_eq!(port.identity().mac, Some(PF_MAC));
    dev.take_wire();
    poll(&mut rx[0], &mut tx[0], &mut cache);
    rx_and_check(&dev, &mut rx[0], &mut cache, 1000, 200);
    tx_and_check(&dev, &mut tx[0], &mut cache, 2000, 200);
    assert!(port.link().up);
    // The mailbox works again: the request that timed out goes through.
    assert!(port.set_filters(filters).unwrap().is_empty());
    assert_eq!(dev.pf(|p| p.mc_hashes.len()), 1);
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    assert_eq!(xstat(&port, "pf_reset_recoveries"), 1);
    assert_eq!(xstat(&port, "reset_mbx_timeout"), 1);
    drop((rx, tx));
    drop(port);
    drop(cache);
    assert_eq!(pool.available(), 512, "a buffer was lost");
    dev.violations().assert_clean();
}

/// Receive until `n` frames `first..first + n` came, each checked.
fn receive_exactly(rx: &mut IxgbevfRx<IxgbevfBar>, cache: &mut PoolCache, first: u32, n: u32) {
    let end = Instant::now() + PATIENCE;
    let mut b = Burst::new();
    let mut got = first;
    while got < first + n {
        rx.rx_burst(cache, &mut b, 32);
        for p in b.drain(..) {
            assert_eq!(p.data(), &frame(got, len_of(got))[..], "frame {got}");
            got += 1;
            cache.free(p);
        }
        assert!(Instant::now() < end, "only {} of {n} came", got - first);
        std::thread::sleep(Duration::from_micros(20));
    }
}

/// The driver stops polling while more frames arrive than its ring and
/// the queue's FIFO hold: the ring's buffers fill, the FIFO fills, and
/// every further frame is dropped by the device and counted by the model
/// exactly (injected = received + dropped). The VF has no drop or missed
/// counter register (A.2 lists only GPRC, GORC, MPRC, GPTC, GOTC), so the
/// port cannot see the drops: its counters and VFGPRC show the frames
/// received, `rx_nombuf` stays 0 (the driver never lacked a buffer), and
/// only the model's count has the drops. Afterwards traffic goes on
/// normally, the first new frame right after the last one kept.
#[test]
fn rx_overrun_drops_are_counted_and_traffic_resumes() {
    const FIFO: usize = 32;
    const EXTRA: u32 = 25;
    for flavor in [Flavor::X82599, Flavor::X550] {
        let mut mc = ModelConfig::new(flavor, Some(PF_MAC));
        mc.rx_fifo = FIFO;
        let dev = model(mc);
        let pool = pool(&dev, "ixgbevf-overrun", 256);
        let mut cache = pool.cache();
        let mut port = port(&dev, 64);
        let (mut rx, mut tx) = port.queues(1, 1).unwrap();
        rx_and_check(&dev, &mut rx[0], &mut cache, 0, 20);
        // The driver stops polling: what the device owns now is all it
        // gets until the driver comes back.
        let posted = dev.rx_owned(0) as u32;
        assert!(posted > 0 && posted < 64, "{posted} buffers posted");
        // Fill the posted buffers, a FIFO's worth at a time (the device
        // moves frames from its FIFO to the ring on its own time), until
        // it wrote every one back, so the FIFO, not the ring, takes what
        // comes next.
        let mut seq = 1000;
        let end = Instant::now() + PATIENCE;
        while seq - 1000 < posted {
            let chunk = (posted - (seq - 1000)).min(FIFO as u32);
            for _ in 0..chunk {
                assert!(dev.inject(0, &frame(seq, len_of(seq))), "frame {seq}");
                seq += 1;
            }
            while dev.rx_owned(0) as u32 > posted - (seq - 1000) {
                assert!(Instant::now() < end, "the model wrote nothing back");
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        for _ in 0..FIFO {
            assert!(dev.inject(0, &frame(seq, len_of(seq))), "frame {seq}");
            seq += 1;
        }
        for _ in 0..EXTRA {
            assert!(!dev.inject(0, &frame(seq, len_of(seq))), "frame {seq}");
            seq += 1;
        }
        let injected = seq - 1000;
        let kept = posted + FIFO as u32;
        assert_eq!(dev.rx_dropped(0), u64::from(EXTRA), "{flavor:?}");
        // The driver polls again: the ring's frames, then the FIFO's, in
        // order; none of the dropped ones.
        receive_exactly(&mut rx[0], &mut cache, 1000, kept);
        assert_eq!(u64::from(kept) + dev.rx_dropped(0), u64::from(injected));
        rx_and_check(&dev, &mut rx[0], &mut cache, 5000, 200);
        tx_and_check(&dev, &mut tx[0], &mut cache, 0, 50);
        assert_eq!(
            dev.rx_dropped(0),
            u64::from(EXTRA),
            "dropped after resuming"
        );
        let received = 20 + u64::from(kept) + 200;
        let s = port.stats();
        assert_eq!(s.ipackets, received);
        assert_eq!((s.rx_nombuf, s.ierrors), (0, 0));
        port.update_hw_stats();
        assert_eq!(xstat(&port, "vf_rx_packets"), received);
        assert_eq!(xstat(&port, "rx_nombuf"), 0);
        assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
        drop((rx, tx));
        drop(port);
        drop(cache);
        assert_eq!(pool.available(), 256, "a buffer was lost");
        dev.violations().assert_clean();
    }
}

/// Stop the port and start it again, which resets the VF (the start
/// brings it up from VF_RESET, A.6).
fn stop_and_start(
    port: &mut IxgbevfPort<IxgbevfBar>,
    rx: &mut IxgbevfRx<IxgbevfBar>,
    tx: &mut IxgbevfTx<IxgbevfBar>,
    cache: &mut PoolCache,
) {
    port.stop().unwrap();
    service_until(port, || poll(rx, tx, cache), ServiceEvent::Stopped);
    port.start().unwrap();
    poll(rx, tx, cache);
}

/// The admin sets the VF's MAC while the port runs (alone, no switch).
/// The PF takes it at once but tells the VF nothing (A.5.3, A.5.4 list no
/// message for it): the port keeps its MAC, sends nothing, and traffic
/// goes on. The VF learns the new MAC from the VF_RESET reply at its next
/// reset (A.6 step 10), here a stop and start, and takes it without a
/// SET_MAC_ADDR (the PF assigned it). The same holds for a VF that had
/// chosen its own MAC, across a PF reset.
#[test]
fn admin_mac_change_is_learnt_at_the_next_reset() {
    let new = MacAddr([0x02, 0, 0, 0, 0, 0x77]);
    for admin in [Some(PF_MAC), None] {
        let dev = vf(Flavor::X540, admin);
        let pool = pool(&dev, "ixgbevf-admin-mac", 256);
        let mut cache = pool.cache();
        let mut port = port(&dev, 64);
        let old = port.info().mac;
        assert_eq!(port.identity().mac, admin);
        let (mut rx, mut tx) = port.queues(1, 1).unwrap();
        rx_and_check(&dev, &mut rx[0], &mut cache, 0, 30);
        let sent = dev.requests().len();
        dev.admin_set_mac(new);
        assert_eq!(dev.pf(|p| p.vf_mac), Some(new));
        assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
        assert_eq!(port.info().mac, old);
        assert!(port.link().up);
        rx_and_check(&dev, &mut rx[0], &mut cache, 100, 30);
        tx_and_check(&dev, &mut tx[0], &mut cache, 100, 30);
        assert!(request_ids(&dev, sent).is_empty(), "the VF sent something");
        if admin.is_some() {
            stop_and_start(&mut port, &mut rx[0], &mut tx[0], &mut cache);
        } else {
            dev.pf_reset_begin();
            service_until(
                &mut port,
                || poll(&mut rx[0], &mut tx[0], &mut cache),
                ServiceEvent::ResetDetected,
            );
            dev.pf_reset_end();
            service_until(
                &mut port,
                || poll(&mut rx[0], &mut tx[0], &mut cache),
                ServiceEvent::Recovered,
            );
            poll(&mut rx[0], &mut tx[0], &mut cache);
        }
        assert_eq!(port.identity().mac, Some(new));
        assert_eq!(port.info().mac, new);
        let ids = request_ids(&dev, sent);
        assert_eq!(ids.first(), Some(&VF_RESET), "{ids:x?}");
        assert!(!ids.contains(&SET_MAC_ADDR), "{ids:x?}");
        assert_eq!(dev.pf(|p| p.vf_mac), Some(new));
        dev.take_wire();
        rx_and_check(&dev, &mut rx[0], &mut cache, 200, 30);
        tx_and_check(&dev, &mut tx[0], &mut cache, 200, 30);
        drop((rx, tx));
        drop(port);
        drop(cache);
        assert_eq!(pool.available(), 256, "a buffer was lost");
        dev.violations().assert_clean();
    }
}
