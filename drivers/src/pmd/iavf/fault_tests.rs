//! iavf port faults against the iavf device model (`crate::sim::iavf`):
//! a PF that stops answering (at bring-up, while running, at a stop), an
//! untrusted VF refused a MAC or promiscuous mode, a link flap under
//! traffic, PF resets at awkward points of the bring-up and of the
//! recovery, and an admin MAC change. Each test ends with no model
//! violation and every buffer back in its pool, or counted as abandoned
//! where the device may still own it.

use super::channel::VcError;
use super::device::{IavfConfig, IavfError, IavfPort};
use super::model_tests::{config, frame, model, pool, rx_frames, tx_frames, wait_link, PATIENCE};
use super::queue::{IavfRx, IavfTx};
use super::reset::ResetError;
use super::virtchnl::{Op, VcStatus};
use crate::burst::Burst;
use crate::net::MacAddr;
use crate::pool::{Pool, PoolCache};
use crate::port::{Port, RxQueue, ServiceEvent, TxQueue};
use crate::sim::iavf::{Flavor, Iavf, IavfBar, IavfConfig as ModelConfig, IavfSim, VFR_INPROGRESS};
use crate::sim::iavf_pf::op;
use crate::sim::veb::{Veb, VebConfig};
use crate::sim::Iommu;
use std::time::{Duration, Instant};

type Rx = IavfRx<IavfBar>;
type Tx = IavfTx<IavfBar>;

/// [`config`] with waits that keep an exchange the PF never answers
/// brief: 10,000 reply polls of 20 µs or more (0.2 s at least, beside the
/// model's answer of tens of µs, so a loaded machine does not time out
/// an exchange the PF does answer), as many reads for a reset to start,
/// and 50 ms for a guessed reset to start before the VF resets itself.
fn fault_config(dev: &IavfSim) -> IavfConfig {
    let mut c = config(dev);
    c.timing.vc.reply_polls = 10_000;
    c.timing.reset.start_polls = 10_000;
    c.timing.reset_start_wait = Duration::from_millis(50);
    c
}

fn fault_port(dev: &IavfSim) -> IavfPort<IavfBar> {
    IavfPort::new(dev.bar(), fault_config(dev)).expect("bring-up against the model")
}

fn xstat(port: &IavfPort<IavfBar>, name: &str) -> u64 {
    port.xstats()
        .into_iter()
        .find_map(|(n, v)| (n == name).then_some(v))
        .unwrap_or_else(|| panic!("no xstat {name}"))
}

/// What a worker does between two `service` calls: an RX burst (its
/// buffers freed) and an empty TX burst, where each queue answers the
/// control thread's stop and restart requests.
fn poll(rx: &mut Rx, tx: &mut Tx, cache: &mut PoolCache) {
    let mut sink = Burst::new();
    rx.rx_burst(cache, &mut sink, 32);
    cache.free_bulk(&mut sink);
    tx.tx_burst(cache, &mut Burst::new());
}

/// `service` with the workers polling until it reports `want`; the
/// events seen on the way.
fn service_until(
    port: &mut IavfPort<IavfBar>,
    rx: &mut Rx,
    tx: &mut Tx,
    cache: &mut PoolCache,
    want: ServiceEvent,
) -> Vec<ServiceEvent> {
    let end = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    loop {
        let ev = port.service().unwrap();
        if seen.last() != Some(&ev) {
            seen.push(ev);
        }
        if ev == want {
            return seen;
        }
        poll(rx, tx, cache);
        assert!(Instant::now() < end, "never {want:?}: {seen:?}");
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// Queue pair 0 up, RX buffers posted, link up.
fn up(port: &mut IavfPort<IavfBar>, cache: &mut PoolCache) -> (Rx, Tx) {
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    let (mut r, mut t) = (rx.remove(0), tx.remove(0));
    poll(&mut r, &mut t, cache);
    wait_link(port);
    (r, t)
}

/// End of a test: the queues and port dropped, every buffer back but the
/// ones counted as abandoned (`leaked`), no model violation.
fn finish(dev: &IavfSim, pool: &Pool, leaked: usize) {
    assert_eq!(pool.in_use(), leaked, "buffers lost or abandoned uncounted");
    dev.violations().assert_clean();
}

/// The PF does not answer at bring-up (B.3.2 "reply wait"): VERSION
/// times out as a typed error, the half-built port shuts its admin queue
/// and unmaps everything, and the PF sees no queue. Once the PF answers
/// again the port opens and carries traffic.
#[test]
fn a_silent_pf_at_bring_up_is_a_typed_error_and_nothing_stays_mapped() {
    let dev = model(Flavor::Adaptive);
    dev.set_pf_silent(true);
    match IavfPort::new(dev.bar(), fault_config(&dev)) {
        Err(IavfError::Reset(ResetError::Vc(VcError::NoReply { op, .. }))) => {
            assert_eq!(op, Op::Version)
        }
        other => panic!("{other:?}"),
    }
    // VERSION, then the RESET_VF of the port's close: both unanswered.
    assert_eq!(dev.sent_ops(), [op::VERSION, op::RESET_VF]);
    assert_eq!(dev.pf(|p| p.unanswered), 2);
    let (atq, arq) = dev.with(|m, _| (m.aq.atq.len, m.aq.arq.len));
    assert_eq!((atq, arq), (0, 0), "admin queue shut");
    assert_eq!(dev.iommu().mapped(), 0, "admin queue memory unmapped");
    assert!(!dev.pf(|p| p.active));

    dev.set_pf_silent(false);
    let pool = pool(&dev, 512);
    let mut cache = pool.cache();
    let mut port = fault_port(&dev);
    let (mut r, mut t) = up(&mut port, &mut cache);
    rx_frames(&dev, &mut r, &mut cache, 0, 0, 100);
    tx_frames(&dev, &mut t, &mut cache, 0, 100);
    drop((r, t, port, cache));
    finish(&dev, &pool, 0);
}

/// Buffers the port's queues counted as abandoned.
fn abandoned(port: &IavfPort<IavfBar>) -> u64 {
    xstat(port, "rx_buffers_leaked") + xstat(port, "tx_buffers_leaked")
}

/// The PF stops answering while traffic runs. The data path does not
/// need it: traffic goes on. A control request (GET_STATS) times out as a
/// typed error; `service`'s own GET_STATS timing out is taken for a PF
/// reset (`reset_no_answer`), which never starts, so the VF resets itself
/// (B.7): RESET_VF goes unanswered too, nothing shows the queues stopped,
/// so their buffers are abandoned (counted, never freed: the device may
/// still write them) and the port waits for the PF. Once it answers, the
/// VF is reset before its rings are used again, the port recovers and
/// traffic resumes both ways, payloads checked.
#[test]
fn a_pf_silent_while_running_is_waited_out_and_the_port_recovers() {
    let dev = model(Flavor::Xl710);
    let pool = pool(&dev, 1024);
    let mut cache = pool.cache();
    let mut port = fault_port(&dev);
    let (mut r, mut t) = up(&mut port, &mut cache);
    rx_frames(&dev, &mut r, &mut cache, 0, 0, 100);
    tx_frames(&dev, &mut t, &mut cache, 0, 100);

    dev.set_pf_silent(true);
    match port.fetch_stats() {
        Err(IavfError::Vc(VcError::NoReply { op, .. })) => assert_eq!(op, Op::GetStats),
        other => panic!("{other:?}"),
    }
    rx_frames(&dev, &mut r, &mut cache, 0, 100, 100);
    tx_frames(&dev, &mut t, &mut cache, 100, 100);
    let posted = r.posted() as u64;
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    assert_eq!(xstat(&port, "reset_no_answer"), 1);
    assert!(!port.link().up);
    // The guessed reset never starts; the VF's own RESET_VF is not
    // answered either: the queues are abandoned, and the port keeps
    // waiting for the PF.
    let mut seen = service_until(
        &mut port,
        &mut r,
        &mut t,
        &mut cache,
        ServiceEvent::WaitingForQueues,
    );
    seen.extend(service_until(
        &mut port,
        &mut r,
        &mut t,
        &mut cache,
        ServiceEvent::WaitingForDevice,
    ));
    assert!(!seen.contains(&ServiceEvent::Recovered), "{seen:?}");
    assert_eq!(abandoned(&port), posted, "the posted RX buffers");
    assert!(dev.pf(|p| p.unanswered) >= 3, "GET_STATS ×2, RESET_VF");
    assert!(!port.link().up);
    // No polling meanwhile: a frame that arrives stays with the device.
    assert!(dev.inject(0, &frame(9999, 80)));
    let mut b = Burst::new();
    assert_eq!(r.rx_burst(&mut cache, &mut b, 32), 0);

    dev.set_pf_silent(false);
    let resets = dev
        .sent_ops()
        .iter()
        .filter(|&&o| o == op::RESET_VF)
        .count();
    service_until(
        &mut port,
        &mut r,
        &mut t,
        &mut cache,
        ServiceEvent::Recovered,
    );
    let ops = dev.sent_ops();
    assert!(
        ops.iter().filter(|&&o| o == op::RESET_VF).count() > resets,
        "the VF is reset before its rings are used again: {ops:?}"
    );
    assert_eq!(xstat(&port, "pf_reset_recoveries"), 1);
    r.rx_burst(&mut cache, &mut b, 32);
    assert!(b.is_empty(), "the frame of the abandoned ring is gone");
    wait_link(&mut port);
    rx_frames(&dev, &mut r, &mut cache, 0, 1000, 200);
    tx_frames(&dev, &mut t, &mut cache, 1000, 200);
    port.fetch_stats().unwrap();
    let leaked = abandoned(&port) as usize;
    drop((r, t, port, cache));
    finish(&dev, &pool, leaked);
}

/// A stop while the PF is silent: DISABLE_QUEUES goes unanswered, then
/// the RESET_VF meant to stop the queues instead (B.7), so the queues'
/// buffers are abandoned and counted. A start while it is still silent
/// waits; once it answers, the VF is reset first (its queues may still
/// run) and the port carries traffic again.
#[test]
fn a_stop_the_pf_does_not_answer_abandons_the_buffers_and_a_start_resets_first() {
    let dev = model(Flavor::Adaptive);
    let pool = pool(&dev, 512);
    let mut cache = pool.cache();
    let mut port = fault_port(&dev);
    let (mut r, mut t) = up(&mut port, &mut cache);
    rx_frames(&dev, &mut r, &mut cache, 0, 0, 50);
    tx_frames(&dev, &mut t, &mut cache, 0, 50);
    let posted = r.posted() as u64;
    dev.set_pf_silent(true);
    port.stop().unwrap();
    service_until(&mut port, &mut r, &mut t, &mut cache, ServiceEvent::Stopped);
    assert_eq!(abandoned(&port), posted);
    let ops = dev.sent_ops();
    assert_eq!(&ops[ops.len() - 2..], [op::DISABLE_QUEUES, op::RESET_VF]);
    assert!(!port.link().up);
    port.start().unwrap();
    assert_eq!(port.service().unwrap(), ServiceEvent::WaitingForDevice);
    assert!(!port.link().up);
    dev.set_pf_silent(false);
    let end = Instant::now() + PATIENCE;
    while !port.link().up {
        port.service().unwrap();
        poll(&mut r, &mut t, &mut cache);
        assert!(Instant::now() < end, "the port never came back");
        std::thread::sleep(Duration::from_micros(50));
    }
    let ops = dev.sent_ops();
    let last_reset = ops.iter().rposition(|&o| o == op::RESET_VF).unwrap();
    let last_config = ops
        .iter()
        .rposition(|&o| o == op::CONFIG_VSI_QUEUES)
        .unwrap();
    assert!(last_reset < last_config, "{ops:?}");
    rx_frames(&dev, &mut r, &mut cache, 0, 100, 100);
    tx_frames(&dev, &mut t, &mut cache, 100, 100);
    let leaked = abandoned(&port) as usize;
    drop((r, t, port, cache));
    finish(&dev, &pool, leaked);
}

/// Run `service` until the port's link reads `up`.
fn service_until_link(port: &mut IavfPort<IavfBar>, up: bool) {
    let end = Instant::now() + PATIENCE;
    while port.link().up != up {
        assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
        assert!(Instant::now() < end, "no LINK_CHANGE to {up}");
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// A TX burst of frames `first..first + n` (as `tx_frames` makes them).
fn tx_burst_of(cache: &mut PoolCache, first: u32, n: u32) -> Burst {
    let mut b = Burst::new();
    for s in first..first + n {
        let f = frame(s, 64 + s as usize % 1000);
        let mut p = cache.alloc().unwrap();
        p.append(f.len()).unwrap().copy_from_slice(&f);
        b.push(p);
    }
    b
}

/// The link goes down under traffic (LINK_CHANGE, B.6 step 15): the port
/// reads it down and its queues are not polled (frames already in the RX
/// ring wait there, a TX burst is refused and kept by the caller); the
/// frames the wire brings meanwhile are dropped by the device and counted
/// (the model's count, and rx_discards in GET_STATS). Link up again: the
/// waiting frames come first, then traffic resumes both ways, payloads
/// checked, nothing lost.
#[test]
fn a_link_flap_stops_polling_and_traffic_resumes_with_nothing_lost() {
    let dev = model(Flavor::Xl710);
    let pool = pool(&dev, 1024);
    let mut cache = pool.cache();
    let mut port = fault_port(&dev);
    let (mut r, mut t) = up(&mut port, &mut cache);
    rx_frames(&dev, &mut r, &mut cache, 0, 0, 100);
    tx_frames(&dev, &mut t, &mut cache, 0, 100);
    // Frames the driver has not read yet when the link goes.
    for s in 100..120 {
        assert!(dev.inject(0, &frame(s, 60 + s as usize % 1400)));
    }
    dev.flush();
    dev.set_link(false);
    service_until_link(&mut port, false);
    assert_eq!(port.link().speed_mbps, 0);
    let mut b = Burst::new();
    assert_eq!(
        r.rx_burst(&mut cache, &mut b, 32),
        0,
        "RX polled while down"
    );
    let mut out = tx_burst_of(&mut cache, 100, 10);
    assert_eq!(t.tx_burst(&mut cache, &mut out), 0, "TX while down");
    assert_eq!(out.len(), 10, "the burst stays the caller's");
    for s in 0..30 {
        assert!(!dev.inject(0, &frame(5000 + s, 64)), "taken while down");
    }
    assert_eq!(dev.with(|m, _| m.link_drops), 30);
    port.fetch_stats().unwrap();
    assert_eq!(xstat(&port, "vf_rx_discards"), 30);
    assert!(dev.take_wire().is_empty());

    dev.set_link(true);
    service_until_link(&mut port, true);
    // The 20 that waited in the ring, in order.
    let mut got = 100;
    let end = Instant::now() + PATIENCE;
    while got < 120 {
        r.rx_burst(&mut cache, &mut b, 32);
        for p in b.drain(..) {
            assert_eq!(p.data(), &frame(got, 60 + got as usize % 1400)[..]);
            got += 1;
            cache.free(p);
        }
        assert!(Instant::now() < end, "{got}");
    }
    // The held TX burst goes now.
    let end = Instant::now() + PATIENCE;
    while !out.is_empty() || t.in_flight() > 0 {
        t.tx_burst(&mut cache, &mut out);
        t.reclaim(&mut cache);
        assert!(Instant::now() < end);
        std::thread::sleep(Duration::from_micros(20));
    }
    let wire = dev.take_wire();
    let want: Vec<Vec<u8>> = (100..110)
        .map(|s| frame(s, 64 + s as usize % 1000))
        .collect();
    assert_eq!(wire, want);
    rx_frames(&dev, &mut r, &mut cache, 0, 200, 200);
    tx_frames(&dev, &mut t, &mut cache, 200, 200);
    let s = port.stats();
    assert_eq!((s.ipackets, s.opackets), (100 + 20 + 200, 100 + 10 + 200));
    assert_eq!(dev.with(|m, _| m.link_drops), 30, "none dropped once up");
    drop((r, t, port, cache));
    finish(&dev, &pool, 0);
}

/// `n` multicast groups 01:00:5e:00:01:xx.
fn groups(n: u8) -> Vec<MacAddr> {
    (0..n)
        .map(|i| MacAddr([0x01, 0x00, 0x5E, 0x00, 0x01, i]))
        .collect()
}

/// An untrusted VF asks for more MAC filters than its PF allows (the
/// model's limit, `untrusted_macs`): ADD_ETH_ADDR is refused with
/// ERR_PARAM, a PF policy and not a driver fault (no violation). Not
/// required, the port runs without them and counts the refusal; required,
/// the bring-up fails with the PF's status, typed. A VF whose MAC the
/// admin set takes it and asks for no other, even when configured with
/// one (B.6 step 5: the PF's MAC when valid).
#[test]
fn an_untrusted_vf_refused_a_mac_runs_without_it_unless_required() {
    let dev = model(Flavor::Xl710);
    let limit = dev.pf(|p| p.setup.untrusted_macs);
    let mut c = fault_config(&dev);
    c.filters.multicast = groups(limit as u8 + 4);
    let pool = pool(&dev, 512);
    let mut cache = pool.cache();
    let mut port = IavfPort::new(dev.bar(), c.clone()).expect("filters not required");
    assert_eq!(dev.pf(|p| p.mac_refused), 1);
    assert_eq!(xstat(&port, "filters_refused"), 1);
    assert!(dev.pf(|p| p.macs.len()) <= limit);
    let (mut r, mut t) = up(&mut port, &mut cache);
    rx_frames(&dev, &mut r, &mut cache, 0, 0, 50);
    tx_frames(&dev, &mut t, &mut cache, 0, 50);
    drop((r, t, port));
    // The close's RESET_VF done before the next open, so that the open
    // does not race it (the bring-up would start over, asking again).
    assert!(dev.wait_for(PATIENCE, |m| !m.pf.active));

    c.filters.required = true;
    match IavfPort::new(dev.bar(), c) {
        Err(IavfError::Vc(VcError::Status { op, status })) => {
            assert_eq!((op, status), (Op::AddEthAddr, VcStatus::Param))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(dev.pf(|p| p.mac_refused), 2);
    drop(cache);
    finish(&dev, &pool, 0);

    let admin = MacAddr([0x02, 0, 0, 0, 0, 0xAD]);
    let dev = Iavf::start(
        ModelConfig::new(Flavor::Adaptive, Some(admin)),
        &Iommu::new(),
    );
    let mut c = fault_config(&dev);
    c.mac = Some(MacAddr([0x02, 0, 0, 0, 0, 0x42]));
    let port = IavfPort::new(dev.bar(), c).unwrap();
    assert_eq!(port.info().mac, admin);
    assert_eq!(dev.pf(|p| p.mac_refused), 0);
    assert_eq!(dev.pf(|p| p.macs.clone()), [admin]);
    drop(port);
    dev.violations().assert_clean();
}

const OTHER: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xEE]);

/// `frame(seq, 80)` from the wire to `dst`.
fn to(dst: MacAddr, seq: u32) -> Vec<u8> {
    let mut f = frame(seq, 80);
    f[..6].copy_from_slice(&dst.0);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f
}

/// Receive `want`, in order, and nothing else.
fn receive_these(r: &mut Rx, cache: &mut PoolCache, want: &[Vec<u8>]) {
    let end = Instant::now() + PATIENCE;
    let mut b = Burst::new();
    let mut got = Vec::new();
    while got.len() < want.len() {
        r.rx_burst(cache, &mut b, 32);
        for p in b.drain(..) {
            got.push(p.data().to_vec());
            cache.free(p);
        }
        assert!(Instant::now() < end, "{} of {}", got.len(), want.len());
        std::thread::sleep(Duration::from_micros(20));
    }
    assert_eq!(got, want);
}

/// Promiscuous mode asked by a VF on a modelled PF's switch. Untrusted:
/// the Linux PFs answer SUCCESS and change nothing (the model counts it
/// in `promisc_refused`); virtchnl gives the VF no way to tell, so the
/// port reports no refusal, and frames to another MAC reach no VF while
/// its own come through. Trusted: the switch takes unknown unicast for
/// it, and the port receives it.
#[test]
fn promiscuous_mode_works_only_for_a_trusted_vf() {
    for trusted in [false, true] {
        let veb = Veb::new(VebConfig::default());
        let iommu = Iommu::new();
        let dev = Iavf::start_on(&veb, ModelConfig::new(Flavor::Xl710, None), &iommu).unwrap();
        dev.set_trusted(trusted);
        let pool = pool(&dev, 512);
        let mut cache = pool.cache();
        let mut c = fault_config(&dev);
        c.filters.promiscuous = true;
        let mut port = IavfPort::new(dev.bar(), c).unwrap();
        let (mut r, mut t) = up(&mut port, &mut cache);
        assert_eq!(xstat(&port, "filters_refused"), 0, "trusted {trusted}");
        assert_eq!(dev.pf(|p| p.promisc_refused), u64::from(!trusted));
        assert_eq!(dev.pf(|p| p.promisc), if trusted { 3 } else { 0 });
        let mine = port.info().mac;
        let own = to(mine, 1);
        assert_eq!(veb.inject_from_wire(&own), 1);
        let other = to(OTHER, 2);
        assert_eq!(veb.inject_from_wire(&other), usize::from(trusted));
        let own2 = to(mine, 3);
        assert_eq!(veb.inject_from_wire(&own2), 1);
        let want = if trusted {
            vec![own, other, own2]
        } else {
            vec![own, own2]
        };
        receive_these(&mut r, &mut cache, &want);
        assert_eq!(veb.counters().wire_unknown, 1);
        poll(&mut r, &mut t, &mut cache);
        drop((r, t, port, cache));
        finish(&dev, &pool, 0);
    }
}

/// End the PF reset `dev` is in once it has started (on another thread,
/// while the driver waits).
fn end_reset_once_started(dev: &IavfSim) {
    let end = Instant::now() + PATIENCE;
    while dev.rstat() != VFR_INPROGRESS {
        assert!(Instant::now() < end, "the PF reset never started");
        std::thread::sleep(Duration::from_micros(100));
    }
    std::thread::sleep(Duration::from_millis(5));
    dev.pf_reset_end();
}

/// A PF reset between VERSION and GET_VF_RESOURCES (B.7: the PF drops
/// the exchange, disables the admin queue, later completes): the
/// bring-up sees the reset, waits it out and starts over, so the port
/// opens and carries traffic.
#[test]
fn a_pf_reset_during_the_handshake_is_waited_out_by_the_bring_up() {
    let dev = model(Flavor::Xl710);
    dev.pf_reset_on(op::GET_VF_RESOURCES);
    let port = std::thread::scope(|s| {
        s.spawn(|| end_reset_once_started(&dev));
        IavfPort::new(dev.bar(), fault_config(&dev))
    });
    let mut port = port.expect("the bring-up starts over after the reset");
    let ops = dev.sent_ops();
    assert_eq!(&ops[..5], [1, 3, 1, 3, 10], "{ops:?}");
    let pool = pool(&dev, 512);
    let mut cache = pool.cache();
    let (mut r, mut t) = up(&mut port, &mut cache);
    rx_frames(&dev, &mut r, &mut cache, 0, 0, 100);
    tx_frames(&dev, &mut t, &mut cache, 0, 100);
    drop((r, t, port, cache));
    finish(&dev, &pool, 0);
}

/// A PF reset when CONFIG_VSI_QUEUES arrives: `queues` still hands the
/// queues out (stopped), and `service` recovers them once the reset is
/// over; then traffic both ways, payloads checked.
#[test]
fn a_pf_reset_during_queue_configuration_is_recovered_by_service() {
    let dev = model(Flavor::Adaptive);
    let pool = pool(&dev, 512);
    let mut cache = pool.cache();
    let mut port = fault_port(&dev);
    dev.pf_reset_on(op::CONFIG_VSI_QUEUES);
    let (rx, tx) = std::thread::scope(|s| {
        s.spawn(|| end_reset_once_started(&dev));
        port.queues(1, 1)
    })
    .expect("queues handed out during the reset");
    let (mut r, mut t) = (
        rx.into_iter().next().unwrap(),
        tx.into_iter().next().unwrap(),
    );
    assert!(!port.link().up);
    let seen = service_until(
        &mut port,
        &mut r,
        &mut t,
        &mut cache,
        ServiceEvent::Recovered,
    );
    assert!(seen.contains(&ServiceEvent::WaitingForQueues), "{seen:?}");
    // The reset took the admin queue under CONFIG_VSI_QUEUES.
    assert_eq!(xstat(&port, "reset_aq_dead"), 1);
    assert_eq!(resets_seen(&port), 1);
    poll(&mut r, &mut t, &mut cache);
    wait_link(&mut port);
    rx_frames(&dev, &mut r, &mut cache, 0, 0, 100);
    tx_frames(&dev, &mut t, &mut cache, 0, 100);
    drop((r, t, port, cache));
    finish(&dev, &pool, 0);
}

/// Run `service` and the workers through a PF reset that has begun,
/// ending it once the port waits for the device, until the port reports
/// it recovered; the events seen.
fn recover(
    dev: &IavfSim,
    port: &mut IavfPort<IavfBar>,
    r: &mut Rx,
    t: &mut Tx,
    cache: &mut PoolCache,
) -> Vec<ServiceEvent> {
    let end = Instant::now() + PATIENCE;
    let (mut seen, mut ended) = (Vec::new(), false);
    loop {
        let ev = port.service().unwrap();
        if seen.last() != Some(&ev) {
            seen.push(ev);
        }
        if ev == ServiceEvent::Recovered {
            return seen;
        }
        if !ended && ev == ServiceEvent::WaitingForDevice {
            dev.pf_reset_end();
            ended = true;
        }
        poll(r, t, cache);
        assert!(Instant::now() < end, "no recovery: {seen:?}");
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// Reset detections by any sign.
fn resets_seen(port: &IavfPort<IavfBar>) -> u64 {
    [
        "reset_pf_event",
        "reset_aq_dead",
        "reset_rstat",
        "reset_no_answer",
    ]
    .iter()
    .map(|n| xstat(port, n))
    .sum()
}

/// Two PF resets in a row, the second when the recovery from the first
/// has configured the queues but not enabled them yet (the RX worker has
/// not posted its buffers): ENABLE_QUEUES then finds the admin queue
/// gone, which is the second reset seen; the port recovers once, and
/// traffic resumes both ways.
#[test]
fn two_pf_resets_in_a_row_are_recovered() {
    let dev = model(Flavor::Xl710);
    let pool = pool(&dev, 1024);
    let mut cache = pool.cache();
    let mut port = fault_port(&dev);
    let (mut r, mut t) = up(&mut port, &mut cache);
    rx_frames(&dev, &mut r, &mut cache, 0, 0, 100);
    tx_frames(&dev, &mut t, &mut cache, 0, 100);
    dev.pf_reset_begin();
    service_until(
        &mut port,
        &mut r,
        &mut t,
        &mut cache,
        ServiceEvent::WaitingForDevice,
    );
    let n = dev.sent_ops().len();
    dev.pf_reset_end();
    // The workers answer the stop, not yet the restart.
    let end = Instant::now() + PATIENCE;
    loop {
        let ev = port.service().unwrap();
        if dev.sent_ops()[n..].contains(&op::CONFIG_IRQ_MAP) {
            assert_eq!(ev, ServiceEvent::WaitingForQueues);
            break;
        }
        if ev == ServiceEvent::WaitingForQueues {
            poll(&mut r, &mut t, &mut cache);
        }
        assert!(Instant::now() < end, "{:?}", dev.sent_ops());
        std::thread::sleep(Duration::from_micros(50));
    }
    assert!(!dev.sent_ops()[n..].contains(&op::ENABLE_QUEUES));
    dev.pf_reset_begin();
    recover(&dev, &mut port, &mut r, &mut t, &mut cache);
    assert_eq!(resets_seen(&port), 2);
    assert_eq!(xstat(&port, "pf_reset_recoveries"), 1);
    poll(&mut r, &mut t, &mut cache);
    wait_link(&mut port);
    rx_frames(&dev, &mut r, &mut cache, 0, 1000, 100);
    tx_frames(&dev, &mut t, &mut cache, 1000, 100);
    drop((r, t, port, cache));
    finish(&dev, &pool, 0);
}

/// A PF reset while the link is down: the port recovers with the link
/// still down (the PF's LINK_CHANGE after ENABLE_QUEUES says so), polls
/// nothing, the device drops and counts what the wire brings; link up,
/// and traffic resumes both ways.
#[test]
fn a_pf_reset_while_the_link_is_down_recovers_to_link_down() {
    let dev = model(Flavor::Adaptive);
    let pool = pool(&dev, 512);
    let mut cache = pool.cache();
    let mut port = fault_port(&dev);
    let (mut r, mut t) = up(&mut port, &mut cache);
    rx_frames(&dev, &mut r, &mut cache, 0, 0, 50);
    dev.set_link(false);
    service_until_link(&mut port, false);
    dev.pf_reset_begin();
    recover(&dev, &mut port, &mut r, &mut t, &mut cache);
    for _ in 0..20 {
        assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
        poll(&mut r, &mut t, &mut cache);
    }
    assert!(!port.link().up, "the link is still down");
    assert!(!dev.inject(0, &frame(77, 64)));
    assert_eq!(dev.with(|m, _| m.link_drops), 1);
    let mut out = tx_burst_of(&mut cache, 0, 4);
    assert_eq!(t.tx_burst(&mut cache, &mut out), 0);
    cache.free_bulk(&mut out);
    dev.set_link(true);
    service_until_link(&mut port, true);
    rx_frames(&dev, &mut r, &mut cache, 0, 100, 100);
    tx_frames(&dev, &mut t, &mut cache, 100, 100);
    assert_eq!(xstat(&port, "pf_reset_recoveries"), 1);
    drop((r, t, port, cache));
    finish(&dev, &pool, 0);
}

/// The admin sets the VF's MAC while the port runs. The PF takes it at
/// once (its filter follows) but tells the VF nothing: the model sends no
/// event, as B.4.3 lists none for it. The port keeps its MAC and sends
/// nothing; traffic goes on. At the next reset GET_VF_RESOURCES gives the
/// new MAC (B.6 step 5), which the port takes and adds as its primary.
#[test]
fn an_admin_mac_change_is_learnt_at_the_next_reset() {
    let dev = model(Flavor::Xl710);
    let pool = pool(&dev, 512);
    let mut cache = pool.cache();
    let mut port = fault_port(&dev);
    let old = port.info().mac;
    let (mut r, mut t) = up(&mut port, &mut cache);
    rx_frames(&dev, &mut r, &mut cache, 0, 0, 50);
    let new = MacAddr([0x02, 0, 0, 0, 0, 0x77]);
    let n = dev.sent_ops().len();
    dev.admin_set_mac(new);
    for _ in 0..5 {
        assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    }
    assert_eq!(port.info().mac, old);
    assert!(port.link().up);
    rx_frames(&dev, &mut r, &mut cache, 0, 100, 50);
    tx_frames(&dev, &mut t, &mut cache, 100, 50);
    let ops = dev.sent_ops();
    assert!(ops[n..].iter().all(|&o| o == op::GET_STATS), "{ops:?}");
    dev.pf_reset_begin();
    recover(&dev, &mut port, &mut r, &mut t, &mut cache);
    assert_eq!(port.info().mac, new);
    assert_eq!(port.resources().mac, new);
    assert_eq!(dev.pf(|p| p.macs.clone()), [new]);
    assert_eq!(dev.pf(|p| p.mac_refused), 0);
    poll(&mut r, &mut t, &mut cache);
    wait_link(&mut port);
    rx_frames(&dev, &mut r, &mut cache, 0, 200, 50);
    tx_frames(&dev, &mut t, &mut cache, 200, 50);
    drop((r, t, port, cache));
    finish(&dev, &pool, 0);
}
