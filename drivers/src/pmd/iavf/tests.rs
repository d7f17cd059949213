//! iavf driver tests against the scripted PF ([`super::scripted_pf`]):
//! the bring-up's exact messages, queue configuration, traffic through
//! the 32-byte RX and 16-byte TX rings, typed errors and timeouts, PF
//! events, the PF-reset recovery and the DMA-safe teardown.

use super::adminq::{AqError, AqTiming, AQ_FLAG_BUF, AQ_FLAG_RD, AQ_FLAG_SI};
use super::channel::{VcError, VcTiming};
use super::device::{IavfConfig, IavfError, IavfPort, Timing};
use super::queue::{IavfRx, IavfTx};
use super::regs::*;
use super::reset::{ResetError, ResetTiming};
use super::scripted_pf::{Answer, Grant, ScriptedPf, HENA_CAPS, PF_MAC, VSI};
use super::virtchnl::{EthStats, Op, PfEvent, VcStatus};
use crate::burst::Burst;
use crate::mbuf::PortId;
use crate::memory::MemoryBacking;
use crate::net::MacAddr;
use crate::pmd::adv_desc::DisableTiming;
use crate::pool::{Pool, PoolCache, PoolConfig};
use crate::port::{Port, RxQueue, ServiceEvent, TxQueue};
use crate::sim::Iommu;
use std::sync::Arc;
use std::time::Duration;

type Pf = Arc<ScriptedPf>;

/// The scripted PF answers inside the register write, so no wait needs
/// to sleep; the bounds only make a missing answer fail fast.
fn timing() -> Timing {
    Timing {
        vc: VcTiming {
            aq: AqTiming {
                send_polls: 4,
                send_delay: Duration::ZERO,
            },
            reply_polls: 4,
            reply_delay: Duration::ZERO,
        },
        reset: ResetTiming {
            rstat_polls: 50,
            rstat_delay: Duration::ZERO,
            start_polls: 5,
            start_delay: Duration::ZERO,
        },
        disable: DisableTiming {
            polls: 1,
            poll_delay: Duration::ZERO,
            settle: Duration::ZERO,
        },
        stats_interval: Duration::ZERO,
        reset_start_wait: Duration::ZERO,
    }
}

fn cfg(iommu: &Arc<Iommu>, ring: usize) -> IavfConfig {
    let row = *crate::pci::lookup(crate::pci::INTEL, 0x154c).expect("iavf id");
    let mut c = IavfConfig::for_device(PortId(4), "iavf0", row, iommu.mapper());
    c.rx_ring = ring;
    c.tx_ring = ring;
    c.backing = MemoryBacking::NoHuge;
    c.timing = timing();
    c
}

fn setup(grant: Grant) -> (Arc<Iommu>, Pf, IavfPort<ScriptedPf>) {
    let iommu = Iommu::new();
    let pf = ScriptedPf::new(&iommu);
    pf.set_grant(grant);
    let port = IavfPort::new(Arc::clone(&pf), cfg(&iommu, 64)).expect("bring-up");
    (iommu, pf, port)
}

fn pool(iommu: &Arc<Iommu>, n: u32) -> Pool {
    let mut c = PoolConfig::new("iavf-test", n).with_backing(MemoryBacking::NoHuge);
    c.cache_size = 32;
    c.dma = Some(iommu.mapper());
    Pool::new(&c).unwrap()
}

fn frame(seq: u32, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seq as usize * 11 + i) as u8).collect()
}

fn xstat(port: &IavfPort<ScriptedPf>, name: &str) -> u64 {
    port.xstats()
        .into_iter()
        .find_map(|(n, v)| (n == name).then_some(v))
        .unwrap_or_else(|| panic!("no xstat {name}"))
}

fn rx_some(rx: &mut IavfRx<ScriptedPf>, cache: &mut PoolCache) -> Vec<(Vec<u8>, u32)> {
    let mut b = Burst::new();
    rx.rx_burst(cache, &mut b, 64);
    b.drain(..)
        .map(|m| {
            let r = (m.data().to_vec(), m.rss_hash());
            assert_eq!(m.port(), PortId(4));
            cache.free(m);
            r
        })
        .collect()
}

fn send(tx: &mut IavfTx<ScriptedPf>, cache: &mut PoolCache, frames: &[Vec<u8>]) -> usize {
    let mut b = Burst::new();
    for f in frames {
        let mut p = cache.alloc().unwrap();
        p.append(f.len()).unwrap().copy_from_slice(f);
        b.push(p);
    }
    let n = tx.tx_burst(cache, &mut b);
    for m in b.drain(..) {
        cache.free(m);
    }
    n
}

fn no_violations(pf: &ScriptedPf) {
    assert_eq!(pf.violations(), Vec::<String>::new());
    assert_eq!(
        pf.bad_lengths(),
        vec![],
        "messages of the wrong length (B.4.4)"
    );
}

/// The RX workers' first bursts post their buffers and write their
/// tails; then `service` sends ENABLE_QUEUES (B.6 step 9 before 13).
fn start(port: &mut IavfPort<ScriptedPf>, rx: &mut [IavfRx<ScriptedPf>], cache: &mut PoolCache) {
    for r in rx.iter_mut() {
        assert!(rx_some(r, cache).is_empty());
    }
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
}

#[test]
fn bring_up_sends_version_resources_and_the_primary_mac_exactly() {
    let (_iommu, pf, port) = setup(Grant::default());
    let sent = pf.sent();
    let ops: Vec<u32> = sent.iter().map(|m| m.op).collect();
    assert_eq!(ops, [1, 3, 10]);
    assert_eq!(sent[0].data, [1, 0, 0, 0, 1, 0, 0, 0]);
    assert_eq!(
        sent[1].data,
        [0x21, 0, 0x0B, 0],
        "L2|WB_ON_ITR|VLAN|RX_POLLING|RSS_PF"
    );
    let mut mac = vec![VSI as u8, 0, 1, 0];
    mac.extend(PF_MAC.0);
    mac.extend([1, 0]);
    mac.extend([0; 8]);
    assert_eq!(sent[2].data, mac, "ADD_ETH_ADDR, PRIMARY, 12 + 8 bytes");
    for m in &sent {
        assert_eq!(
            m.flags,
            AQ_FLAG_SI | AQ_FLAG_BUF | AQ_FLAG_RD,
            "op {}",
            m.op
        );
    }
    assert_eq!(port.info().mac, PF_MAC);
    assert_eq!(port.info().capabilities.max_rx_queues, 4);
    assert_eq!(port.resources().vsi_id, VSI);
    // Each reply's ARQ slot was posted again: ARQT names the last one
    // (B.3.2 "receive").
    assert_eq!(pf.reg(VF_ARQT1), 2);
    assert_eq!(pf.reg(VF_ATQLEN1), 32 | AQ_LEN_ENABLE);
    no_violations(&pf);
}

#[test]
fn a_pf_without_a_mac_gets_a_local_one_added_as_primary() {
    let (_iommu, pf, port) = setup(Grant {
        mac: MacAddr::default(),
        ..Grant::default()
    });
    let mac = port.info().mac;
    assert!(
        mac.is_unicast() && mac.0[0] & 0x02 != 0,
        "{mac:?} local unicast"
    );
    let add = pf.sent().into_iter().find(|m| m.op == 10).unwrap();
    assert_eq!(&add.data[4..10], &mac.0);
}

#[test]
fn queues_are_configured_mapped_hashed_and_enabled_with_exact_messages() {
    let (iommu, pf, mut port) = setup(Grant::default());
    let pool = pool(&iommu, 256);
    let mut cache = pool.cache();
    pf.clear_sent();
    let (mut rx, tx) = port.queues(2, 2).unwrap();
    assert_eq!(pf.ops(), [6, 7, 23, 24, 25, 26]);
    assert_eq!(pf.enabled(), (0, 0), "not before the RX tails are written");
    assert_eq!(port.service().unwrap(), ServiceEvent::WaitingForQueues);
    rx_some(&mut rx[0], &mut cache);
    assert_eq!(port.service().unwrap(), ServiceEvent::WaitingForQueues);
    assert_eq!(pf.enabled(), (0, 0));
    rx_some(&mut rx[1], &mut cache);
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    let sent = pf.sent();
    let ops: Vec<u32> = sent.iter().map(|m| m.op).collect();
    assert_eq!(ops, [6, 7, 23, 24, 25, 26, 8]);
    let vsiq = &sent[0].data;
    assert_eq!(vsiq.len(), 72 + 64 * 2);
    for q in 0..2 {
        let o = 8 + 64 * q;
        let txb = u64::from_le_bytes(vsiq[o + 8..o + 16].try_into().unwrap());
        let rxb = u64::from_le_bytes(vsiq[o + 48..o + 56].try_into().unwrap());
        assert_eq!(txb % 128, 0, "TX ring 128-byte aligned (B.8 #1)");
        assert_eq!(rxb % 128, 0, "RX ring 128-byte aligned (B.8 #1)");
        assert_eq!(&vsiq[o + 4..o + 6], &64u16.to_le_bytes());
        assert_eq!(&vsiq[o + 28..o + 32], &64u32.to_le_bytes());
        assert_eq!(&vsiq[o + 36..o + 40], &2048u32.to_le_bytes());
        assert_eq!(&vsiq[o + 40..o + 44], &1526u32.to_le_bytes());
    }
    assert_eq!(
        &sent[1].data[..],
        &[1, 0, VSI as u8, 0, 1, 0, 3, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(sent[2].data.len(), 5 + 52);
    let lut = &sent[3].data;
    assert_eq!(lut.len(), 5 + 64);
    assert!(lut[4..68]
        .iter()
        .enumerate()
        .all(|(i, &q)| q as usize == i % 2));
    assert!(sent[4].data.is_empty(), "GET_RSS_HENA_CAPS has no payload");
    assert_eq!(
        sent[5].data,
        HENA_CAPS.to_le_bytes(),
        "SET_RSS_HENA: all the PF offers"
    );
    assert_eq!(sent[6].data, [VSI as u8, 0, 0, 0, 3, 0, 0, 0, 3, 0, 0, 0]);
    assert_eq!(pf.reg(vfint_dyn_ctln1(0)), polled_vector_ctl(true));
    assert_eq!(port.rss_queues(), 2);
    assert_eq!(pf.enabled(), (3, 3));
    no_violations(&pf);
    drop((rx, tx));
}

#[test]
fn traffic_both_ways_with_rss_hash_and_reclaim() {
    let (iommu, pf, mut port) = setup(Grant::default());
    let pool = pool(&iommu, 512);
    let mut cache = pool.cache();
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    let (mut r, mut t) = (rx.remove(0), tx.remove(0));
    // The first burst posts the buffers: tail = count − 1 (B.6 step 9),
    // then the queues are enabled.
    assert!(rx_some(&mut r, &mut cache).is_empty());
    assert_eq!(pf.reg(qrx_tail(0)), 63);
    assert_eq!(pf.enabled(), (0, 0));
    port.service().unwrap();
    assert_eq!(pf.enabled(), (1, 1));
    assert!(port.link().up, "LINK_CHANGE up after ENABLE_QUEUES");
    assert_eq!(port.link().speed_mbps, 40_000);
    let mut got = Vec::new();
    for seq in 0..200u32 {
        assert!(pf.inject(0, &frame(seq, 60 + seq as usize % 900), Some(seq * 3)));
        if seq % 16 == 15 {
            got.extend(rx_some(&mut r, &mut cache));
        }
    }
    got.extend(rx_some(&mut r, &mut cache));
    assert_eq!(got.len(), 200);
    for (seq, (f, h)) in got.iter().enumerate() {
        assert_eq!(f, &frame(seq as u32, 60 + seq % 900));
        assert_eq!(*h, seq as u32 * 3);
    }
    let frames: Vec<Vec<u8>> = (0..100).map(|s| frame(s, 64 + s as usize)).collect();
    let mut sent = 0;
    for c in frames.chunks(20) {
        sent += send(&mut t, &mut cache, c);
    }
    assert_eq!(sent, 100);
    assert_eq!(pf.take_wire(), frames);
    t.reclaim(&mut cache);
    assert_eq!(t.in_flight(), 0, "every RS batch came back DONE");
    // Too short for the device (B.8 #7): dropped and counted.
    assert_eq!(send(&mut t, &mut cache, &[vec![0u8; 16]]), 0);
    assert_eq!(xstat(&port, "tx_bad_length"), 1);
    assert_eq!(port.stats().ipackets, 200);
    assert_eq!(port.stats().opackets, 100);
    no_violations(&pf);
    drop((r, t));
    drop(cache);
    assert_eq!(pool.in_use(), 0, "every buffer back");
}

#[test]
fn no_polling_while_the_link_is_down() {
    let (iommu, pf, mut port) = setup(Grant::default());
    let pool = pool(&iommu, 256);
    let mut cache = pool.cache();
    pf.set_link_on_enable(false);
    let (mut rx, _tx) = port.queues(1, 1).unwrap();
    let r = &mut rx[0];
    // The first burst still posts the buffers (the start is the control
    // thread's request, answered whatever the link).
    rx_some(r, &mut cache);
    assert_eq!(r.posted(), 63);
    port.service().unwrap();
    assert!(!port.link().up, "no LINK_CHANGE yet");
    assert!(pf.inject(0, &frame(1, 60), None));
    assert!(
        rx_some(r, &mut cache).is_empty(),
        "link down: queue not polled"
    );
    pf.post_event(PfEvent::LinkChange {
        up: true,
        speed_code: 0x40,
    });
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    assert_eq!(port.link().speed_mbps, 25_000);
    assert_eq!(rx_some(r, &mut cache).len(), 1);
    pf.post_event(PfEvent::LinkChange {
        up: false,
        speed_code: 0,
    });
    port.service().unwrap();
    assert!(!port.link().up);
    assert!(pf.inject(0, &frame(2, 60), None));
    assert!(rx_some(r, &mut cache).is_empty());
}

#[test]
fn events_between_request_and_reply_are_set_aside() {
    let iommu = Iommu::new();
    let pf = ScriptedPf::new(&iommu);
    // An event ahead of the reply to GET_STATS.
    let mut port = IavfPort::new(Arc::clone(&pf), cfg(&iommu, 64)).unwrap();
    let stats = EthStats::from_array(std::array::from_fn(|i| 100 + i as u64));
    pf.set_stats(stats);
    pf.post_event(PfEvent::LinkChange {
        up: true,
        speed_code: 0x8,
    });
    port.fetch_stats().unwrap();
    assert_eq!(xstat(&port, "vf_rx_bytes"), 100);
    assert_eq!(xstat(&port, "vf_tx_errors"), 111);
    port.service().unwrap();
    assert!(port.pf_link().up);
    assert_eq!(port.pf_link().speed_mbps, 10_000);
}

#[test]
fn pf_statuses_are_typed_errors() {
    let (_iommu, pf, mut port) = setup(Grant::default());
    pf.script(Op::ConfigVsiQueues, Answer::Status(-5));
    let e = port.queues(1, 1).expect_err("refused");
    assert!(e.to_string().contains("rejected a parameter"), "{e}");
    // Nothing runs after the refusal: the queues may be asked again.
    let q = port.queues(1, 1).expect("asked again");
    drop((q, port));
    let iommu = Iommu::new();
    let pf = ScriptedPf::new(&iommu);
    // A reply too short for its structure: a typed error, not a panic.
    pf.script(Op::GetVfResources, Answer::Reply(vec![1, 0, 4, 0]));
    match IavfPort::new(Arc::clone(&pf), cfg(&iommu, 64)) {
        Err(IavfError::Reset(ResetError::Vc(VcError::Decode { op, .. }))) => {
            assert_eq!(op, Op::GetVfResources)
        }
        other => panic!("{other:?}"),
    }
    // The status a PF gives GET_VF_RESOURCES when it takes the request
    // for malformed (B.4.4: ERR_OPCODE_MISMATCH; the iavf model answers
    // so too). NOT_SUPPORTED, which stood here, is for opcodes a PF does
    // not know, and every PF knows this one (B.4.1).
    let pf = ScriptedPf::new(&iommu);
    pf.script(Op::GetVfResources, Answer::Status(-38));
    match IavfPort::new(Arc::clone(&pf), cfg(&iommu, 64)) {
        Err(IavfError::Reset(ResetError::Vc(VcError::Status { op, status }))) => {
            assert_eq!(op, Op::GetVfResources);
            assert_eq!(status, VcStatus::OpcodeMismatch);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn silence_and_a_stuck_queue_time_out() {
    let iommu = Iommu::new();
    let pf = ScriptedPf::new(&iommu);
    pf.script(Op::Version, Answer::Silent);
    match IavfPort::new(Arc::clone(&pf), cfg(&iommu, 64)) {
        Err(IavfError::Reset(ResetError::Vc(VcError::NoReply { op, .. }))) => {
            assert_eq!(op, Op::Version)
        }
        other => panic!("{other:?}"),
    }
    let pf = ScriptedPf::new(&iommu);
    pf.script(Op::Version, Answer::Stuck);
    match IavfPort::new(Arc::clone(&pf), cfg(&iommu, 64)) {
        Err(IavfError::Reset(ResetError::Vc(VcError::Aq(AqError::Timeout { op, .. })))) => {
            assert_eq!(op, 1)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_newer_or_other_major_pf_is_refused() {
    for (maj, min) in [(2, 0), (1, 2)] {
        let iommu = Iommu::new();
        let pf = ScriptedPf::new(&iommu);
        pf.set_version(maj, min);
        match IavfPort::new(Arc::clone(&pf), cfg(&iommu, 64)) {
            Err(IavfError::Reset(ResetError::Vc(VcError::Version { major, minor }))) => {
                assert_eq!((major, minor), (maj, min))
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_vf_still_in_reset_is_a_clear_error() {
    let iommu = Iommu::new();
    let pf = ScriptedPf::new(&iommu);
    pf.pf_reset(None);
    match IavfPort::new(Arc::clone(&pf), cfg(&iommu, 64)) {
        Err(IavfError::Reset(ResetError::StillInReset { state, .. })) => assert_eq!(state, 0),
        other => panic!("{other:?}"),
    }
}

/// Run the worker side until the port's service reports `want`.
fn serve_until(
    port: &mut IavfPort<ScriptedPf>,
    rx: &mut IavfRx<ScriptedPf>,
    tx: &mut IavfTx<ScriptedPf>,
    cache: &mut PoolCache,
    want: ServiceEvent,
) -> Vec<ServiceEvent> {
    let mut seen = Vec::new();
    for _ in 0..50 {
        let ev = port.service().unwrap();
        seen.push(ev);
        if ev == want {
            return seen;
        }
        rx_some(rx, cache);
        send(tx, cache, &[]);
    }
    panic!("never {want:?}: {seen:?}");
}

#[test]
fn a_pf_reset_is_detected_waited_out_and_recovered() {
    let (iommu, pf, mut port) = setup(Grant::default());
    let pool = pool(&iommu, 512);
    let mut cache = pool.cache();
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    start(&mut port, &mut rx, &mut cache);
    let (mut r, mut t) = (rx.remove(0), tx.remove(0));
    assert!(pf.inject(0, &frame(0, 80), None));
    assert_eq!(rx_some(&mut r, &mut cache).len(), 1);
    send(&mut t, &mut cache, &[frame(1, 80)]);
    // A frame the worker never reads before the reset, and a TX packet
    // that never completes.
    assert!(pf.inject(0, &frame(2, 80), None));
    pf.pf_reset(None);
    pf.clear_sent();
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    assert!(!port.link().up);
    assert!(
        rx_some(&mut r, &mut cache).is_empty(),
        "no polling during the reset"
    );
    for _ in 0..3 {
        assert_eq!(port.service().unwrap(), ServiceEvent::WaitingForDevice);
    }
    assert!(pf.sent().is_empty(), "nothing sent while the PF resets");
    pf.end_reset();
    let seen = serve_until(
        &mut port,
        &mut r,
        &mut t,
        &mut cache,
        ServiceEvent::Recovered,
    );
    assert!(seen.contains(&ServiceEvent::WaitingForQueues), "{seen:?}");
    assert_eq!(pf.ops(), [1, 3, 10, 6, 7, 8], "the whole bring-up again");
    assert_eq!(xstat(&port, "pf_reset_recoveries"), 1);
    assert_eq!(xstat(&port, "reset_pf_event"), 1);
    assert_eq!(xstat(&port, "rx_stop_discarded"), 1);
    assert!(port.link().up);
    // Traffic again, from slot 0 of fresh queue contexts.
    rx_some(&mut r, &mut cache);
    assert!(pf.inject(0, &frame(3, 99), Some(7)));
    assert_eq!(rx_some(&mut r, &mut cache), vec![(frame(3, 99), 7)]);
    pf.take_wire();
    assert_eq!(send(&mut t, &mut cache, &[frame(4, 70)]), 1);
    assert_eq!(pf.take_wire(), vec![frame(4, 70)]);
    no_violations(&pf);
    drop((r, t, port));
    drop(cache);
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn a_dead_admin_queue_or_rstat_is_a_reset_too() {
    let (iommu, pf, mut port) = setup(Grant::default());
    let pool = pool(&iommu, 256);
    let mut cache = pool.cache();
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    start(&mut port, &mut rx, &mut cache);
    let (mut r, mut t) = (rx.remove(0), tx.remove(0));
    // The PF disables the AQ without an event (B.3.2 liveness).
    pf.preset(VF_ARQLEN1, 0);
    pf.preset(VFGEN_RSTAT, 0);
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    assert_eq!(xstat(&port, "reset_aq_dead"), 1);
    // RSTAT already reads active in the scripted PF: the reset is over.
    serve_until(
        &mut port,
        &mut r,
        &mut t,
        &mut cache,
        ServiceEvent::Recovered,
    );
    // Now a PF that stops answering GET_STATS.
    pf.script(Op::GetStats, Answer::Silent);
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    assert_eq!(xstat(&port, "reset_no_answer"), 1);
    // Guessed but never started: the VF resets itself once
    // `reset_start_wait` (0 here) has passed.
    serve_until(
        &mut port,
        &mut r,
        &mut t,
        &mut cache,
        ServiceEvent::Recovered,
    );
    assert_eq!(xstat(&port, "pf_reset_recoveries"), 2);
    assert!(pf.ops().contains(&2), "RESET_VF sent");
}

#[test]
fn stop_and_start_go_through_disable_and_enable_queues() {
    let (iommu, pf, mut port) = setup(Grant::default());
    let pool = pool(&iommu, 256);
    let mut cache = pool.cache();
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    start(&mut port, &mut rx, &mut cache);
    let (mut r, mut t) = (rx.remove(0), tx.remove(0));
    pf.clear_sent();
    port.stop().unwrap();
    assert_eq!(pf.sent()[0].op, 9);
    assert_eq!(
        pf.sent()[0].data,
        [VSI as u8, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]
    );
    assert_eq!(pf.enabled(), (0, 0));
    serve_until(&mut port, &mut r, &mut t, &mut cache, ServiceEvent::Stopped);
    assert_eq!(pool.in_use(), cache.len(), "ring buffers released");
    pf.clear_sent();
    port.start().unwrap();
    assert_eq!(pf.ops(), [6, 7], "no new handshake after a plain stop");
    rx_some(&mut r, &mut cache);
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    assert_eq!(pf.ops(), [6, 7, 8]);
    assert!(pf.inject(0, &frame(5, 64), None));
    assert_eq!(rx_some(&mut r, &mut cache).len(), 1);
}

#[test]
fn dropping_stops_the_device_before_buffers_go() {
    // Queue first: it asks the PF to stop just its own queue.
    let (iommu, pf, mut port) = setup(Grant::default());
    let pool = pool(&iommu, 256);
    let mut cache = pool.cache();
    let (mut rx, tx) = port.queues(2, 1).unwrap();
    start(&mut port, &mut rx, &mut cache);
    pf.clear_sent();
    drop(rx.pop());
    assert_eq!(pf.sent()[0].op, 9);
    assert_eq!(pf.sent()[0].data[4..8], [2, 0, 0, 0]);
    assert_eq!(pf.enabled(), (1, 1));
    // Then the port: DISABLE_QUEUES for the rest, RESET_VF, AQ off; the
    // remaining queues find nothing enabled and free their buffers.
    pf.clear_sent();
    drop(port);
    assert_eq!(pf.ops(), [9, 2]);
    assert_eq!(pf.enabled(), (0, 0));
    assert_eq!(pf.reg(VF_ATQLEN1) & AQ_LEN_ENABLE, 0);
    drop((rx, tx));
    drop(cache);
    assert_eq!(pool.in_use(), 0);
    no_violations(&pf);
}

#[test]
fn a_queue_the_pf_will_not_stop_keeps_its_buffers() {
    let (iommu, pf, mut port) = setup(Grant::default());
    let pool = pool(&iommu, 256);
    let mut cache = pool.cache();
    let (mut rx, _tx) = port.queues(1, 1).unwrap();
    start(&mut port, &mut rx, &mut cache);
    let posted = rx[0].posted();
    assert_eq!(posted, 63);
    // DISABLE_QUEUES unanswered, and the VF reset never completes.
    pf.script(Op::DisableQueues, Answer::Silent);
    pf.script(Op::ResetVf, Answer::Silent);
    drop(rx);
    drop(cache);
    assert_eq!(pool.in_use(), posted, "buffers abandoned, never freed");
}

#[test]
fn rss_spreads_over_two_queue_pairs_and_each_queue_runs_alone() {
    let (iommu, pf, mut port) = setup(Grant::default());
    let pool = pool(&iommu, 512);
    let mut cache = pool.cache();
    let (mut rx, mut tx) = port.queues(2, 2).unwrap();
    start(&mut port, &mut rx, &mut cache);
    assert_eq!((pf.reg(qrx_tail(0)), pf.reg(qrx_tail(1))), (63, 63));
    for seq in 0..40u32 {
        assert!(pf.inject((seq % 2) as usize, &frame(seq, 100), Some(seq)));
    }
    for (q, r) in rx.iter_mut().enumerate() {
        let got = rx_some(r, &mut cache);
        assert_eq!(got.len(), 20);
        assert!(got.iter().all(|(_, h)| *h as usize % 2 == q));
    }
    assert_eq!(send(&mut tx[1], &mut cache, &[frame(9, 200)]), 1);
    assert_eq!(pf.take_wire(), vec![frame(9, 200)]);
    assert_eq!(pf.reg(qtx_tail(1)), 1);
    no_violations(&pf);
}

/// A PF that refuses promiscuous mode with an error status. The Linux
/// PFs do not: to an untrusted VF they answer SUCCESS and change nothing
/// (the iavf model does the same; `fault_tests.rs` runs that case), so
/// this is the driver's path for a PF that says no, kept for other PFs.
#[test]
fn promiscuous_mode_is_asked_and_a_refusal_is_fatal_only_when_required() {
    let iommu = Iommu::new();
    let pf = ScriptedPf::new(&iommu);
    let mut c = cfg(&iommu, 64);
    c.filters.promiscuous = true;
    let mut port = IavfPort::new(Arc::clone(&pf), c.clone()).unwrap();
    pf.script(Op::ConfigPromiscuousMode, Answer::Status(-5));
    let q = port.queues(1, 1).expect("an untrusted VF still runs");
    assert_eq!(xstat(&port, "filters_refused"), 1);
    let m = pf.sent().into_iter().find(|m| m.op == 14).unwrap();
    assert_eq!(
        m.data,
        [VSI as u8, 0, 3, 0],
        "unicast | multicast promiscuous"
    );
    drop((q, port));
    c.filters.required = true;
    let pf = ScriptedPf::new(&iommu);
    let mut port = IavfPort::new(Arc::clone(&pf), c).unwrap();
    pf.script(Op::ConfigPromiscuousMode, Answer::Status(-5));
    let e = port.queues(1, 1).expect_err("required");
    assert!(
        e.to_string().contains("PROMISCUOUS") || e.to_string().contains("parameter"),
        "{e}"
    );
    // The queues the failed start enabled were stopped again.
    assert_eq!(pf.enabled(), (0, 0));
}

#[test]
fn stop_during_a_reset_halts_once_the_reset_is_over() {
    let (iommu, pf, mut port) = setup(Grant::default());
    let pool = pool(&iommu, 256);
    let mut cache = pool.cache();
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    start(&mut port, &mut rx, &mut cache);
    let (mut r, mut t) = (rx.remove(0), tx.remove(0));
    pf.pf_reset(Some(2));
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    port.stop().unwrap();
    serve_until(&mut port, &mut r, &mut t, &mut cache, ServiceEvent::Stopped);
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    assert!(!port.link().up);
    pf.clear_sent();
    port.start().unwrap();
    assert_eq!(
        pf.ops(),
        [1, 3, 10, 6, 7],
        "a full bring-up after the reset"
    );
    rx_some(&mut r, &mut cache);
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    assert_eq!(pf.ops(), [1, 3, 10, 6, 7, 8]);
    assert!(pf.inject(0, &frame(1, 64), None));
    assert_eq!(rx_some(&mut r, &mut cache).len(), 1);
}

#[test]
fn queues_outliving_a_port_that_could_not_stop_them_keep_their_buffers() {
    let (iommu, pf, mut port) = setup(Grant::default());
    let pool = pool(&iommu, 256);
    let mut cache = pool.cache();
    let (mut rx, tx) = port.queues(1, 1).unwrap();
    start(&mut port, &mut rx, &mut cache);
    let posted = rx[0].posted();
    // The PF answers neither DISABLE_QUEUES nor the RESET_VF after it.
    pf.script(Op::DisableQueues, Answer::Silent);
    pf.script(Op::ResetVf, Answer::Silent);
    drop(port);
    assert_eq!(pf.reg(VF_ATQLEN1) & AQ_LEN_ENABLE, 0, "admin queue shut");
    // The dead admin queue is the port's close, not a reset: nothing
    // shows the queues stopped, so their buffers are never freed.
    drop((rx, tx));
    drop(cache);
    assert_eq!(pool.in_use(), posted);
}

#[test]
fn queues_whose_enable_went_unanswered_are_stopped_before_their_buffers_go() {
    let (iommu, pf, mut port) = setup(Grant::default());
    let pool = pool(&iommu, 256);
    let mut cache = pool.cache();
    let (mut rx, tx) = port.queues(1, 1).unwrap();
    rx_some(&mut rx[0], &mut cache);
    // The PF takes ENABLE_QUEUES and never answers: it may have enabled
    // them.
    pf.script(Op::EnableQueues, Answer::Silent);
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    pf.clear_sent();
    drop(rx);
    assert_eq!(pf.ops(), [9], "DISABLE_QUEUES all the same");
    drop((tx, port));
    drop(cache);
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn no_queues_at_all_is_a_clear_error() {
    let (_iommu, _pf, mut port) = setup(Grant::default());
    let e = port.queues(0, 0).expect_err("no queues");
    assert!(e.to_string().contains("at least one"), "{e}");
}

#[test]
fn multicast_groups_and_vlans_go_with_every_bring_up() {
    let iommu = Iommu::new();
    let pf = ScriptedPf::new(&iommu);
    let mut c = cfg(&iommu, 64);
    let g = MacAddr([0x01, 0x00, 0x5E, 0x00, 0x00, 0x07]);
    c.filters.multicast = vec![g];
    c.filters.vlans = vec![100, 200];
    let _port = IavfPort::new(Arc::clone(&pf), c.clone()).unwrap();
    let sent = pf.sent();
    assert_eq!(pf.ops(), [1, 3, 10, 10, 12]);
    let mut mc = vec![VSI as u8, 0, 1, 0];
    mc.extend(g.0);
    mc.extend([2, 0]);
    mc.extend([0; 8]);
    assert_eq!(sent[3].data, mc, "EXTRA, 12 + 8 bytes");
    assert_eq!(sent[4].data, [VSI as u8, 0, 2, 0, 100, 0, 200, 0, 0, 0]);
    no_violations(&pf);
    // Without VLAN granted the VLANs are refused, fatal only if required.
    let pf = ScriptedPf::new(&iommu);
    pf.set_grant(Grant {
        caps: super::virtchnl::caps::L2 | super::virtchnl::caps::RSS_PF,
        ..Grant::default()
    });
    IavfPort::new(Arc::clone(&pf), c.clone()).expect("refusal not fatal");
    assert!(!pf.ops().contains(&12));
    c.filters.required = true;
    let pf = ScriptedPf::new(&iommu);
    pf.set_grant(Grant {
        caps: super::virtchnl::caps::L2,
        ..Grant::default()
    });
    let e = IavfPort::new(Arc::clone(&pf), c).expect_err("required");
    assert!(e.to_string().contains("NOT_SUPPORTED"), "{e}");
}

/// A reset that disables the admin queue while a reply is awaited ends
/// the wait at once (B.3.2 "liveness"): NotAlive, a reset's sign, not the
/// full reply timeout.
#[test]
fn a_reply_wait_ends_when_the_admin_queue_goes() {
    let (_iommu, pf, mut port) = setup(Grant::default());
    pf.script(Op::GetStats, Answer::Silent);
    pf.preset(VF_ARQLEN1, 0);
    match port.fetch_stats() {
        Err(IavfError::Vc(e @ VcError::Aq(AqError::NotAlive(_)))) => assert!(e.looks_like_reset()),
        other => panic!("{other:?}"),
    }
}
