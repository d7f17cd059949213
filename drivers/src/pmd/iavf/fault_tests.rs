//! iavf port faults against the iavf device model (`crate::sim::iavf`):
//! a PF that stops answering (at bring-up, while running, at a stop), an
//! untrusted VF refused a MAC or promiscuous mode, a link flap under
//! traffic, PF resets at awkward points of the bring-up and of the
//! recovery, and an admin MAC change. Each test ends with no model
//! violation and every buffer back in its pool, or counted as abandoned
//! where the device may still own it.

use super::channel::VcError;
use super::device::{IavfConfig, IavfError, IavfPort};
use super::model_tests::{
    config, frame, model, pool, port, rx_frames, tx_frames, wait_link, PATIENCE,
};
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
use std::sync::Arc;
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
