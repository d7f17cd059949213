//! Loss of contact with the PF and the recovery it triggers (C.5, C.6
//! step 13, C.9 #13), the drop counters across it, and the port's
//! lifecycle (stop, start, drop), against the asynchronous model.

use super::regs::*;
use super::tests::{cfg, frame, model, pool, port, rx_and_check, vf, xstat, PATIENCE, PF_MAC};
use super::*;
use crate::burst::Burst;
use crate::mbuf::{OlFlags, PortId};
use crate::mmio::RegisterSpace;
use crate::pool::PoolCache;
use crate::port::{Port, PortError, RxQueue, ServiceEvent, TxQueue};
use crate::sim::adv::RxFrame;
use crate::sim::igbvf::{Flavor, IgbvfBar, IgbvfSim};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The workers' answer to a stop: one empty burst on each queue.
fn answer_stop<R: RegisterSpace + 'static>(
    rx: &mut [IgbvfRx<R>],
    tx: &mut [IgbvfTx<R>],
    cache: &mut PoolCache,
) {
    let mut b = Burst::new();
    for q in rx.iter_mut() {
        assert_eq!(q.rx_burst(cache, &mut b, 32), 0);
    }
    for q in tx.iter_mut() {
        assert_eq!(q.tx_burst(cache, &mut b), 0);
    }
}

fn vf_resets(dev: &IgbvfSim) -> usize {
    dev.requests()
        .iter()
        .filter(|w| *w & MSG_ID_MASK == MSG_VF_RESET)
        .count()
}

/// `service` until it reports something other than `Idle`, letting the
/// asynchronous PF answer in between (bounded: the PF is slow, not
/// absent).
fn service_until_event(dev: &IgbvfSim, port: &mut IgbvfPort<IgbvfBar>) -> ServiceEvent {
    let end = std::time::Instant::now() + PATIENCE;
    loop {
        let ev = port.service().unwrap();
        if ev != ServiceEvent::Idle {
            return ev;
        }
        assert!(std::time::Instant::now() < end, "no event from service");
        dev.settle();
    }
}

/// An 82576 VF whose PF NACKs a VF without CTS every time (the Linux PF
/// does it at most every 2 s, C.5.3; a test need not wait that long).
fn vf_nacking() -> IgbvfSim {
    let mut c = crate::sim::igbvf::IgbvfConfig::new(Flavor::I82576, Some(PF_MAC));
    c.nack_interval = Duration::ZERO;
    crate::sim::igbvf::Igbvf::start(c, &crate::sim::Iommu::new())
}

/// C.8: an I350 VF has one queue pair, an 82576 VF two; the port
/// advertises and accepts what its device has.
#[test]
fn queue_count_comes_from_the_device() {
    let dev = model(Flavor::I350, Some(PF_MAC));
    let mut i350 = port(&dev, 64);
    let caps = i350.info().capabilities;
    assert_eq!((caps.max_rx_queues, caps.max_tx_queues), (1, 1));
    assert!(i350.queues(2, 1).is_err());
    assert!(i350.queues(1, 2).is_err());
    let (rx, tx) = i350.queues(1, 1).unwrap();
    assert_eq!((rx.len(), tx.len()), (1, 1));
    drop((rx, tx, i350));

    let dev = vf(Some(PF_MAC));
    let mut vf82576 = port(&dev, 64);
    let caps = vf82576.info().capabilities;
    assert_eq!((caps.max_rx_queues, caps.max_tx_queues), (2, 2));
    let (rx, tx) = vf82576.queues(2, 2).unwrap();
    assert_eq!((rx.len(), tx.len()), (2, 2));
    assert_eq!(
        IgbvfConfig::new(PortId(0), "x", dev.iommu().mapper()).device,
        crate::pci::IGBVF_82576
    );
}

/// Only igbvf rows of the supported-device table make an igbvf port.
#[test]
fn a_non_igbvf_device_is_refused() {
    let dev = vf(Some(PF_MAC));
    let mut c = cfg(&dev, 64);
    c.device = *crate::pci::lookup(0x8086, 0x1565).unwrap();
    let e = IgbvfPort::new(dev.bar(), c).unwrap_err();
    assert!(e.to_string().contains("not an igbvf device"), "{e}");
}

/// C.5.3 / C.6 step 13: the PF dropped the VF's CTS without a ping the VF
/// saw. The link check ACKs the PF's word; the PF answers a VF without CTS
/// with a NACK without CTS, and a later check takes that as a reset.
#[test]
fn nack_without_cts_to_the_link_check_triggers_recovery() {
    let dev = vf(Some(PF_MAC));
    let pool = pool(&dev, "igbvf-nack-link", 256);
    let mut cache = pool.cache();
    let mut port = port(&dev, 64);
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    rx_and_check(&dev, &mut rx[0], &mut cache, 0, 10);
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    dev.drop_cts();
    assert_eq!(
        service_until_event(&dev, &mut port),
        ServiceEvent::ResetDetected
    );
    assert!(!port.link().up);
    answer_stop(&mut rx, &mut tx, &mut cache);
    assert_eq!(port.service().unwrap(), ServiceEvent::Recovered);
    assert_eq!(vf_resets(&dev), 2);
    assert!(dev.pf(|pf| pf.cts));
    rx_and_check(&dev, &mut rx[0], &mut cache, 100, 10);
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    drop((rx, tx));
    drop(cache);
    assert_eq!(pool.available(), 256);
}

/// Any request NACKed without CTS means the same (C.5.3), even when the
/// periodic link check is not due.
#[test]
fn nack_without_cts_to_a_request_triggers_recovery() {
    let dev = vf_nacking();
    let pool = pool(&dev, "igbvf-nack-req", 256);
    let mut cache = pool.cache();
    let mut c = cfg(&dev, 64);
    c.timing.link_check_interval = Duration::from_secs(3600);
    let mut port = IgbvfPort::new(dev.bar(), c).unwrap();
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle); // first check
    dev.settle();
    dev.drop_cts();
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle); // none due
    let e = port.set_allmulti(true).unwrap_err();
    assert!(
        matches!(e, IgbvfError::Mailbox(MbxError::Nack { reply, .. }) if reply & MSG_CTS == 0),
        "{e}"
    );
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    answer_stop(&mut rx, &mut tx, &mut cache);
    assert_eq!(port.service().unwrap(), ServiceEvent::Recovered);
    assert_eq!(vf_resets(&dev), 2);
    port.set_allmulti(true).unwrap();
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    drop((rx, tx));
}

/// The VF_RESET reply has no CTS, and its NACK only means "no admin MAC"
/// (C.9 #7): that is not a loss of CTS.
#[test]
fn reset_reply_nack_is_not_a_loss_of_cts() {
    let dev = vf(None);
    let mut port = port(&dev, 64);
    for _ in 0..3 {
        assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
        dev.settle();
    }
    assert_eq!(vf_resets(&dev), 1);
}

/// PFSTS seen, then the VFU lock refused (the PF holds the buffer): the
/// message must still be read once the lock is free, not lost with the
/// read-to-clear bit (C.5.1).
#[test]
fn pfsts_survives_a_failed_lock() {
    let dev = vf(Some(PF_MAC));
    let bar = dev.bar();
    let mut mbx = Mailbox::new(MbxTiming {
        polls: 20_000,
        poll_delay: Duration::from_micros(20),
        lock_tries: 1,
    });
    mbx.enable();
    let mut reply = [0u32; 3];
    mbx.request(&*bar, &[MSG_VF_RESET], &mut reply, Duration::ZERO)
        .unwrap();
    dev.settle();
    dev.pf_ping(true);
    dev.settle();
    dev.pf_hold(true);
    assert_eq!(mbx.poll_pf_message(&*bar), Err(MbxError::Busy));
    // The register's PFSTS was read (and cleared) by that attempt.
    assert_eq!(bar.read32(V2PMAILBOX) & MBX_PFSTS, 0);
    assert_eq!(mbx.lost_contact(), None);
    dev.pf_hold(false);
    assert_eq!(mbx.poll_pf_message(&*bar), Ok(Some(MSG_PF_CONTROL)));
    assert_eq!(
        mbx.lost_contact(),
        Some(mailbox::LostContact::CtsLost(MSG_PF_CONTROL))
    );
}

/// The same through the port: a PF_CONTROL_MSG without CTS arriving while
/// the PF holds the buffer is acted on at the next service call.
#[test]
fn ping_without_cts_behind_a_busy_lock_triggers_recovery() {
    let dev = vf(Some(PF_MAC));
    let mut c = cfg(&dev, 64);
    c.timing.link_check_interval = Duration::from_secs(3600);
    c.timing.mbx.lock_tries = 1;
    let mut port = IgbvfPort::new(dev.bar(), c).unwrap();
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle); // first check
    dev.settle();
    dev.pf_ping(true);
    dev.settle();
    dev.pf_hold(true);
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    dev.pf_hold(false);
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    // No queues were handed out: the recovery goes straight on.
    assert_eq!(port.service().unwrap(), ServiceEvent::Recovered);
    assert_eq!(vf_resets(&dev), 2);
}

/// A ping with CTS is not a reset.
#[test]
fn ping_with_cts_is_not_a_reset() {
    let dev = vf(Some(PF_MAC));
    let mut port = port(&dev, 64);
    dev.pf_ping(false);
    for _ in 0..3 {
        dev.settle();
        assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    }
    assert_eq!(vf_resets(&dev), 1);
}

/// A mailbox exchange that timed out leaves the mailbox off (C.5.1) and
/// means the VF must be reset (C.6 step 13): the recovery runs.
#[test]
fn mailbox_timeout_triggers_recovery() {
    let dev = vf(Some(PF_MAC));
    let pool = pool(&dev, "igbvf-mbx-timeout", 256);
    let mut cache = pool.cache();
    let mut c = cfg(&dev, 64);
    c.timing.mbx.polls = 2_000;
    let mut port = IgbvfPort::new(dev.bar(), c).unwrap();
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    rx_and_check(&dev, &mut rx[0], &mut cache, 0, 10);
    dev.set_pf_silent(true);
    let e = port.set_allmulti(true).unwrap_err();
    assert!(
        matches!(e, IgbvfError::Mailbox(MbxError::Timeout("PFACK"))),
        "{e}"
    );
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    answer_stop(&mut rx, &mut tx, &mut cache);
    assert_eq!(port.service().unwrap(), ServiceEvent::WaitingForDevice);
    dev.set_pf_silent(false);
    assert_eq!(port.service().unwrap(), ServiceEvent::Recovered);
    port.set_allmulti(true).unwrap();
    rx_and_check(&dev, &mut rx[0], &mut cache, 100, 10);
    drop((rx, tx));
    drop(cache);
    assert_eq!(pool.available(), 256);
}

/// C.4.1 / C.9 #14: on an I350 VF the VLAN field of a looped-back frame
/// is big-endian (the model writes it so); the mbuf gets the right tag on
/// both VFs, for looped-back frames and frames from the wire alike.
#[test]
fn vlan_tags_are_right_for_looped_back_frames_on_both_vfs() {
    for flavor in [Flavor::I350, Flavor::I82576] {
        let dev = model(flavor, Some(PF_MAC));
        let pool = pool(&dev, "igbvf-lb-vlan", 256);
        let mut cache = pool.cache();
        let mut port = port(&dev, 64);
        let (mut rx, _tx) = port.queues(1, 1).unwrap();
        let mut b = Burst::new();
        rx[0].rx_burst(&mut cache, &mut b, 32);
        // VLAN 0x123 with priority 5: TCI 0xA123.
        for (seq, loopback) in [(1, true), (2, false), (3, true)] {
            assert!(dev.inject_frame(
                0,
                RxFrame {
                    data: frame(seq, 80),
                    vlan: Some(0xA123),
                    loopback,
                    ..RxFrame::default()
                }
            ));
        }
        let mut tcis = Vec::new();
        super::tests::rx_until(&mut rx[0], &mut cache, 32, |p, cache| {
            assert!(p.ol_flags().contains(OlFlags::RX_VLAN_STRIPPED));
            tcis.push(p.vlan_tci());
            cache.free(p);
            tcis.len() == 3
        });
        assert_eq!(tcis, [0xA123; 3], "{flavor:?}");
        drop(rx);
        drop(cache);
        assert_eq!(pool.available(), 256);
    }
}

/// A packet the device cannot send at the head of a burst (or anywhere in
/// it) is dropped and counted as tx_bad_length once; the rest of the burst
/// goes out, in order.
#[test]
fn bad_packet_at_the_head_of_a_tx_burst_is_dropped_not_stalling() {
    let dev = vf(Some(PF_MAC));
    let pool = pool(&dev, "igbvf-tx-bad", 256);
    let mut cache = pool.cache();
    let mut port = port(&dev, 64);
    let (_rx, mut tx) = port.queues(1, 1).unwrap();
    let lens = [0usize, 60, 61, 0, 62];
    let mut b = Burst::new();
    for (i, len) in lens.into_iter().enumerate() {
        let mut p = cache.alloc().unwrap();
        p.append(len).unwrap().fill(i as u8);
        b.push(p);
    }
    // Packet i is filled with the byte i: the good ones, in order.
    let good: Vec<Vec<u8>> = (0..lens.len())
        .filter(|&i| lens[i] > 0)
        .map(|i| vec![i as u8; lens[i]])
        .collect();
    let bad = (lens.len() - good.len()) as u64;
    assert_eq!(tx[0].tx_burst(&mut cache, &mut b), good.len());
    assert!(b.is_empty(), "nothing left for the caller to count as full");
    assert!(dev.wait_for(PATIENCE, |m| m.wire.len() == good.len()));
    assert_eq!(dev.take_wire(), good);
    let s = port.stats();
    let bytes: usize = lens.iter().sum();
    assert_eq!(
        (s.opackets, s.obytes, s.oerrors),
        (good.len() as u64, bytes as u64, bad)
    );
    assert_eq!(super::tests::tx_drops_by_reason(&port), bad);
    assert_eq!(xstat(&port, "tx_bad_length"), bad);
    assert_eq!(xstat(&port, "tx_ring_full"), 0);
    // An empty burst changes nothing.
    assert_eq!(tx[0].tx_burst(&mut cache, &mut b), 0);
    assert_eq!(xstat(&port, "tx_bad_length"), bad);
    assert!(dev.wait_for(PATIENCE, |_| true));
    dev.settle();
    tx[0].reclaim(&mut cache);
    assert_eq!(tx[0].in_flight(), 0);
    drop(tx);
    drop(cache);
    assert_eq!(pool.available(), 256);
}

/// With the pool empty, a refill that fails again and again for the same
/// empty slots counts them once (C.9 #16 keeps one slot free on purpose;
/// that one is never counted).
#[test]
fn rx_nombuf_counts_each_empty_slot_once() {
    let dev = vf(Some(PF_MAC));
    let pool = pool(&dev, "igbvf-nombuf", 40);
    let mut cache = pool.cache();
    let mut port = port(&dev, 64);
    let (mut rx, _tx) = port.queues(1, 1).unwrap();
    let mut b = Burst::new();
    assert_eq!(rx[0].rx_burst(&mut cache, &mut b, 32), 0);
    assert_eq!(rx[0].posted(), 40);
    assert_eq!(port.stats().rx_nombuf, 23);
    for _ in 0..10 {
        assert_eq!(rx[0].rx_burst(&mut cache, &mut b, 32), 0);
    }
    assert_eq!(port.stats().rx_nombuf, 23, "retries do not count again");
    // Five frames taken (and held): five more slots go without a buffer.
    for i in 0..5 {
        assert!(dev.inject(&frame(i, 64)));
    }
    let mut held = Vec::new();
    super::tests::rx_until(&mut rx[0], &mut cache, 32, |p, _| {
        held.push(p);
        held.len() == 5
    });
    assert_eq!(rx[0].posted(), 35);
    assert_eq!(port.stats().rx_nombuf, 28);
    // Buffers back: they fill counted slots, nothing new is short.
    for p in held {
        cache.free(p);
    }
    assert_eq!(rx[0].rx_burst(&mut cache, &mut b, 32), 0);
    assert_eq!(rx[0].posted(), 40);
    assert_eq!(port.stats().rx_nombuf, 28);
    assert_eq!(xstat(&port, "rx_nombuf"), 28);
    drop(rx);
    drop(cache);
    assert_eq!(pool.available(), 40);
}

/// Frames in the RX ring and packets in flight on TX when a PF reset stops
/// the queues are counted once, by reason; every other drop counter stays
/// exact across the recovery.
#[test]
fn xstats_count_each_drop_once_across_a_reset() {
    let dev = vf(Some(PF_MAC));
    let pool = pool(&dev, "igbvf-xstats", 512);
    let mut cache = pool.cache();
    let mut port = port(&dev, 64);
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    let mut b = Burst::new();
    rx[0].rx_burst(&mut cache, &mut b, 32);
    // One too long, one frame error, one good.
    assert!(dev.inject(&frame(1, 3000)));
    assert!(dev.inject_frame(
        0,
        RxFrame {
            data: frame(2, 100),
            status: RXD_ERR_CE,
            ..RxFrame::default()
        }
    ));
    assert!(dev.inject(&frame(3, 100)));
    let mut got = 0;
    super::tests::rx_until(&mut rx[0], &mut cache, 32, |p, cache| {
        cache.free(p);
        got += 1;
        got == 1
    });
    // Two frames left in the ring (written back, not received), six TX
    // packets in flight.
    assert!(dev.inject(&frame(4, 100)));
    assert!(dev.inject(&frame(5, 100)));
    dev.set_tx_hold(true);
    for _ in 0..6 {
        let mut p = cache.alloc().unwrap();
        p.append(60).unwrap();
        b.push(p);
    }
    assert_eq!(tx[0].tx_burst(&mut cache, &mut b), 6);
    dev.settle();
    dev.pf_reset_begin();
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    answer_stop(&mut rx, &mut tx, &mut cache);
    dev.pf_reset_end();
    dev.set_tx_hold(false);
    assert_eq!(port.service().unwrap(), ServiceEvent::Recovered);
    rx_and_check(&dev, &mut rx[0], &mut cache, 10, 5);
    let x = port.xstats();
    let names: Vec<&str> = x.iter().map(|(n, _)| *n).collect();
    for (i, n) in names.iter().enumerate() {
        assert!(!names[i + 1..].contains(n), "{n} twice");
    }
    let want = [
        ("rx_packets", 6),
        ("rx_frame_too_long", 1),
        ("rx_frame_errors", 1),
        ("rx_nombuf", 0),
        ("rx_stop_discarded", 2),
        ("rx_buffers_leaked", 0),
        ("tx_packets", 6),
        ("tx_bad_length", 0),
        ("tx_ring_full", 0),
        ("tx_stop_discarded", 6),
        ("tx_buffers_leaked", 0),
        ("pf_reset_recoveries", 1),
    ];
    for (n, v) in want {
        assert_eq!(xstat(&port, n), v, "{n}");
    }
    drop((rx, tx));
    drop(cache);
    assert_eq!(pool.available(), 512);
}

// ---- the port's lifecycle ----------------------------------------------

#[test]
fn stop_then_start_while_workers_hold_the_queues() {
    let dev = vf(Some(PF_MAC));
    let pool = pool(&dev, "igbvf-stop", 512);
    let mut cache = pool.cache();
    let mut port = port(&dev, 64);
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    rx_and_check(&dev, &mut rx[0], &mut cache, 0, 3);
    let posted = rx[0].posted();
    assert!(posted >= 32, "{posted}");

    Port::stop(&mut port).unwrap();
    // The device stopped before any buffer could be freed: the queue is
    // off (its ENABLE read back 0), yet the worker still holds every
    // posted buffer.
    assert!(!dev.rx_active(0));
    assert_eq!(rx[0].posted(), posted);
    assert_eq!(
        Port::service(&mut port).unwrap(),
        ServiceEvent::WaitingForQueues
    );
    assert!(!port.link().up);
    // The workers answer at their next burst.
    answer_stop(&mut rx, &mut tx, &mut cache);
    assert_eq!(rx[0].posted(), 0);
    assert_eq!(Port::service(&mut port).unwrap(), ServiceEvent::Stopped);
    assert_eq!(pool.in_use(), cache.len(), "every buffer is back");
    assert_eq!(Port::service(&mut port).unwrap(), ServiceEvent::Idle);

    Port::start(&mut port).unwrap();
    assert!(port.link().up);
    rx_and_check(&dev, &mut rx[0], &mut cache, 100, 10);
    assert_eq!(xstat(&port, "rx_buffers_leaked"), 0);
    assert_eq!(
        xstat(&port, "pf_reset_recoveries"),
        0,
        "a stop is not a PF reset"
    );
    drop((rx, tx));
    drop(cache);
    drop(port);
    assert_eq!(pool.available(), 512);
}

/// A device whose queues ignore a cleared ENABLE while `stuck` is set:
/// RXDCTL/TXDCTL keep reading back ENABLE, as a wedged DMA engine would.
#[derive(Debug)]
struct Wedged {
    bar: Arc<IgbvfBar>,
    stuck: AtomicBool,
}

impl RegisterSpace for Wedged {
    fn read32(&self, off: u32) -> u32 {
        let v = self.bar.read32(off);
        // Relaxed: set by the test thread before the port is stopped.
        if self.stuck.load(Ordering::Relaxed) && (off == rxdctl(0) || off == txdctl(0)) {
            v | crate::pmd::adv_desc::QUEUE_ENABLE
        } else {
            v
        }
    }
    fn write32(&self, off: u32, v: u32) {
        self.bar.write32(off, v)
    }
    fn len(&self) -> usize {
        self.bar.len()
    }
}

#[test]
fn a_queue_that_never_stops_has_its_buffers_abandoned_and_counted() {
    let dev = vf(Some(PF_MAC));
    let regs = Arc::new(Wedged {
        bar: dev.bar(),
        stuck: AtomicBool::new(false),
    });
    let pool = pool(&dev, "igbvf-wedged", 512);
    let mut cache = pool.cache();
    let mut c = cfg(&dev, 64);
    c.timing.disable.polls = 50;
    let mut port = IgbvfPort::new(Arc::clone(&regs), c).unwrap();
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    let mut b = Burst::new();
    rx[0].rx_burst(&mut cache, &mut b, 32);
    dev.set_tx_hold(true);
    for _ in 0..5 {
        let mut p = cache.alloc().unwrap();
        p.append(60).unwrap();
        b.push(p);
    }
    assert_eq!(tx[0].tx_burst(&mut cache, &mut b), 5);
    let posted = rx[0].posted();
    assert_eq!(tx[0].in_flight(), 5);

    regs.stuck.store(true, Ordering::Relaxed);
    Port::stop(&mut port).unwrap();
    answer_stop(&mut rx, &mut tx, &mut cache);
    assert_eq!(Port::service(&mut port).unwrap(), ServiceEvent::Stopped);
    assert_eq!(xstat(&port, "rx_buffers_leaked"), posted as u64);
    assert_eq!(xstat(&port, "tx_buffers_leaked"), 5);
    // Nobody can be handed a buffer the device may still access.
    regs.stuck.store(false, Ordering::Relaxed);
    drop((rx, tx));
    drop(cache);
    drop(port);
    assert_eq!(
        pool.available(),
        512 - posted - 5,
        "the abandoned buffers stay out"
    );
}

/// A PCI function whose bus-master bit the test can read and clear, in
/// front of the model's.
#[derive(Debug)]
struct Function {
    bar: Arc<IgbvfBar>,
    master: AtomicBool,
}

impl crate::pci::PciFunction for Function {
    fn set_bus_master(&self, on: bool) -> Result<(), crate::pci::FunctionError> {
        // Relaxed: read by the test thread after the port acted.
        self.master.store(on, Ordering::Relaxed);
        crate::pci::PciFunction::set_bus_master(&*self.bar, on)
    }
    fn function_reset(&self) -> Result<(), crate::pci::FunctionError> {
        self.master.store(false, Ordering::Relaxed);
        crate::pci::PciFunction::function_reset(&*self.bar)
    }
}

#[test]
fn dropping_a_running_port_resets_the_vf_and_turns_bus_mastering_off() {
    let dev = vf(Some(PF_MAC));
    let f = Arc::new(Function {
        bar: dev.bar(),
        master: AtomicBool::new(true),
    });
    let pool = pool(&dev, "igbvf-drop-port", 256);
    let mut c = cfg(&dev, 64);
    c.pci = Some(f.clone());
    let mut cache = pool.cache();
    let mut port = IgbvfPort::new(dev.bar(), c).unwrap();
    let (mut rx, tx) = port.queues(1, 1).unwrap();
    rx_and_check(&dev, &mut rx[0], &mut cache, 0, 3);
    drop(port);
    assert!(!f.master.load(Ordering::Relaxed), "bus mastering off");
    assert!(!dev.rx_active(0));
    // The queues outlive the port and still give their buffers back.
    drop((rx, tx));
    drop(cache);
    assert_eq!(pool.available(), 256);
}

#[test]
fn recovery_turns_bus_mastering_back_on_after_a_function_reset() {
    let dev = vf(Some(PF_MAC));
    let f = Arc::new(Function {
        bar: dev.bar(),
        master: AtomicBool::new(true),
    });
    let pool = pool(&dev, "igbvf-flr", 256);
    let mut c = cfg(&dev, 64);
    c.pci = Some(f.clone());
    let mut cache = pool.cache();
    let mut port = IgbvfPort::new(dev.bar(), c).unwrap();
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    rx_and_check(&dev, &mut rx[0], &mut cache, 0, 3);
    // The PF resets the VF, and the function is reset meanwhile.
    dev.pf_reset_begin();
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    answer_stop(&mut rx, &mut tx, &mut cache);
    crate::pci::PciFunction::function_reset(&*f).unwrap();
    assert!(!f.master.load(Ordering::Relaxed));
    dev.pf_reset_end();
    assert_eq!(port.service().unwrap(), ServiceEvent::Recovered);
    assert!(
        f.master.load(Ordering::Relaxed),
        "bus mastering is on again after the recovery"
    );
    // And the device can DMA again: the model would flag DMA with bus
    // mastering off.
    rx_and_check(&dev, &mut rx[0], &mut cache, 100, 10);
    drop((rx, tx));
    drop(cache);
    drop(port);
    assert_eq!(pool.available(), 256);
}

#[test]
fn software_ports_say_they_cannot_stop() {
    let mut p = crate::port::null::NullPort::new(PortId(0), "null0", 64);
    let e = Port::stop(&mut p).unwrap_err();
    assert!(matches!(e, PortError::Unsupported { .. }));
    assert_eq!(e.to_string(), "port null0: null ports cannot stop");
}

/// A device that takes its time to stop a queue (2 ms, and three reads of
/// ENABLE) while frames keep arriving: the driver's stop, and the drop of
/// its queues, free no buffer before the device let go of it (the model
/// fails the test on `buffer-freed-before-queue-disabled` or a late write
/// into a freed buffer otherwise).
#[test]
fn stop_and_drop_wait_for_a_slow_disable() {
    let mut mc = crate::sim::igbvf::IgbvfConfig::new(Flavor::I82576, Some(PF_MAC));
    mc.delays.disable_time = Duration::from_millis(2);
    mc.delays.disable_reads = 3;
    let dev = crate::sim::igbvf::Igbvf::start(mc, &crate::sim::Iommu::new());
    let pool = pool(&dev, "igbvf-slow-stop", 512);
    let mut cache = pool.cache();
    let mut port = port(&dev, 64);
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    rx_and_check(&dev, &mut rx[0], &mut cache, 0, 5);
    for seq in 10..20 {
        assert!(dev.inject(&frame(seq, 100)));
    }
    Port::stop(&mut port).unwrap();
    answer_stop(&mut rx, &mut tx, &mut cache);
    assert_eq!(Port::service(&mut port).unwrap(), ServiceEvent::Stopped);
    assert_eq!(pool.in_use(), cache.len());
    Port::start(&mut port).unwrap();
    rx_and_check(&dev, &mut rx[0], &mut cache, 100, 5);
    for seq in 200..210 {
        assert!(dev.inject(&frame(seq, 100)));
    }
    // Dropping the running queues takes the same care.
    drop((rx, tx));
    drop(cache);
    drop(port);
    dev.violations().assert_clean();
    assert_eq!(pool.available(), 512);
}
