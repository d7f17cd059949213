//! igbvf driver tests against the device model: no hardware.

use super::model::Model;
use super::regs::*;
use super::*;
use crate::burst::Burst;
use crate::mbuf::{OlFlags, PortId};
use crate::memory::MemoryBacking;
use crate::mmio::RegisterSpace;
use crate::net::MacAddr;
use crate::pmd::adv_desc::desc::{RXD_STAT_IPCS, RXD_STAT_L4CS};
use crate::pool::{Pool, PoolConfig};
use crate::port::{Port, RxQueue, ServiceEvent, TxQueue};
use std::sync::Arc;

const PF_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x10]);

/// The synchronous model reaches memory through the IOVA as a pointer, so
/// its address space is the identity (the `sim` models translate).
fn dma() -> Arc<dyn crate::memory::DmaMapper> {
    thread_local! {
        static DMA: Arc<dyn crate::memory::DmaMapper> =
            Arc::new(crate::memory::TestMapper::identity());
    }
    DMA.with(Arc::clone)
}

fn cfg(ring: usize) -> IgbvfConfig {
    let mut c = IgbvfConfig::new(PortId(1), "vf0", dma());
    c.rx_ring = ring;
    c.tx_ring = ring;
    c.backing = MemoryBacking::NoHuge;
    c.timing = Timing::immediate();
    c
}

fn pool(name: &str, n: u32) -> Pool {
    let mut c = PoolConfig::new(name, n).with_backing(MemoryBacking::NoHuge);
    c.cache_size = 32;
    c.dma = Some(dma());
    Pool::new(&c).unwrap()
}

/// A frame whose bytes name its sequence number.
fn frame(seq: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq as usize * 7 + i) as u8 ^ (seq >> 8) as u8)
        .collect()
}

/// One named counter of the port.
fn xstat(port: &IgbvfPort<Model>, name: &str) -> u64 {
    let all = port.xstats();
    let mut hits = all.iter().filter(|(n, _)| *n == name);
    let v = hits.next().unwrap_or_else(|| panic!("no xstat {name}")).1;
    assert!(hits.next().is_none(), "xstat {name} twice");
    v
}

fn no_violations(m: &Model) {
    let st = m.st();
    assert!(st.violations.is_empty(), "{:?}", st.violations);
}

#[test]
fn mailbox_transfer_and_read_to_clear() {
    let m = Model::new(Some(PF_MAC));
    let mut mbx = Mailbox::new(MbxTiming {
        polls: 3,
        poll_delay: std::time::Duration::ZERO,
        lock_tries: 1,
    });
    let mut reply = [0u32; 3];
    // Posted operations are off until the reset enables them.
    assert_eq!(
        mbx.request(&m, &[MSG_SET_LPE, 1522], &mut reply, Default::default()),
        Err(MbxError::Disabled)
    );
    mbx.enable();
    // Before VF_RESET the PF NACKs, without CTS (C.5.3).
    let e = mbx.request(&m, &[MSG_SET_LPE, 1522], &mut reply, Default::default());
    assert!(
        matches!(
            e,
            Err(MbxError::Nack {
                id: MSG_SET_LPE,
                ..
            })
        ),
        "{e:?}"
    );
    assert!(!mbx.clear_to_send());
    let w = mbx
        .request(&m, &[MSG_VF_RESET], &mut reply, Default::default())
        .unwrap();
    assert_eq!(w, MSG_VF_RESET | MSG_ACK);
    assert_eq!(reply[1].to_le_bytes()[..], PF_MAC.0[..4]);
    let w = mbx
        .request(&m, &[MSG_SET_LPE, 1522], &mut reply, Default::default())
        .unwrap();
    assert_eq!(w, MSG_SET_LPE | MSG_ACK | MSG_CTS);
    assert!(mbx.clear_to_send());
    assert_eq!(m.st().lpe, Some(1522));
    // Everything was consumed: PFSTS/PFACK cleared by the reads.
    assert_eq!(m.read32(V2PMAILBOX) & MBX_R2C_BITS, 0);
    // Unicast promiscuous is refused, multicast taken (C.9 #10).
    let uni = MSG_SET_PROMISC | 0x0001_0000;
    assert!(mbx
        .request(&m, &[uni], &mut reply, Default::default())
        .is_err());
    let multi = MSG_SET_PROMISC | PROMISC_MULTICAST;
    mbx.request(&m, &[multi], &mut reply, Default::default())
        .unwrap();
    // A message id the reply does not answer is an error.
    assert!(matches!(
        mbx.write(&m, &[0; 17]),
        Err(MbxError::TooLong(17))
    ));
}

#[test]
fn mailbox_timeout_disables_until_reset() {
    let m = Model::new(Some(PF_MAC));
    let mut mbx = Mailbox::new(MbxTiming {
        polls: 3,
        poll_delay: std::time::Duration::ZERO,
        lock_tries: 1,
    });
    mbx.enable();
    m.st().pf_silent = true;
    let mut reply = [0u32; 1];
    assert_eq!(
        mbx.request(&m, &[MSG_VF_RESET], &mut reply, Default::default()),
        Err(MbxError::Timeout("PFACK"))
    );
    m.st().pf_silent = false;
    assert_eq!(
        mbx.request(&m, &[MSG_VF_RESET], &mut reply, Default::default()),
        Err(MbxError::Disabled)
    );
}

#[test]
fn cached_read_to_clear_bits_are_not_lost() {
    let m = Model::new(None);
    let mut mbx = Mailbox::new(MbxTiming::default());
    m.pf_reset_begin();
    m.pf_reset_end();
    // One read returns RSTD and PFSTS together; RSTD is consumed by the
    // reset check, PFSTS stays cached for the message check.
    assert!(mbx.check_for_rst(&m));
    assert_eq!(m.read32(V2PMAILBOX) & MBX_R2C_BITS, 0);
    assert!(mbx.check_for_msg(&m));
    assert!(!mbx.check_for_msg(&m));
}

#[test]
fn bring_up_takes_the_mac_from_the_pf() {
    let m = Arc::new(Model::new(Some(PF_MAC)));
    let port = IgbvfPort::new(Arc::clone(&m), cfg(64)).unwrap();
    assert_eq!(port.info().mac, PF_MAC);
    assert_eq!(port.pf_mac(), Some(PF_MAC));
    let st = m.st();
    assert_eq!(st.vf_mac, Some(PF_MAC));
    assert_eq!(st.lpe, Some(1522));
    let ids: Vec<u32> = st.requests.iter().map(|w| w & MSG_ID_MASK).collect();
    assert_eq!(ids, [MSG_VF_RESET, MSG_SET_MAC_ADDR, MSG_SET_LPE]);
    drop(st);
    assert!(port.link().up);
    m.set_link(false);
    assert!(!port.link().up);
    no_violations(&m);
}

#[test]
fn bring_up_without_admin_mac_picks_a_local_one() {
    let m = Arc::new(Model::new(None));
    let port = IgbvfPort::new(Arc::clone(&m), cfg(64)).unwrap();
    let mac = port.info().mac;
    assert!(mac.is_unicast() && mac.0[0] & 2 == 2, "{mac}");
    assert_eq!(m.st().vf_mac, Some(mac));
    assert_eq!(port.pf_mac(), None);
}

#[test]
fn bring_up_fails_while_the_pf_is_in_reset() {
    let m = Arc::new(Model::new(Some(PF_MAC)));
    m.pf_reset_begin();
    let e = IgbvfPort::new(Arc::clone(&m), cfg(64)).unwrap_err();
    assert!(matches!(e, IgbvfError::PfInReset), "{e}");
}

#[test]
fn too_many_queues_refused() {
    let m = Arc::new(Model::new(Some(PF_MAC)));
    let mut port = IgbvfPort::new(Arc::clone(&m), cfg(64)).unwrap();
    assert!(port.queues(3, 1).is_err());
}

/// Receive `n` frames injected in waves the ring can take, checking each.
fn rx_and_check(
    m: &Model,
    rx: &mut IgbvfRx<Model>,
    cache: &mut crate::pool::PoolCache,
    first: u32,
    n: u32,
) {
    let mut burst = Burst::new();
    let mut seq = first;
    let mut got = first;
    while got < first + n {
        while seq < first + n && m.inject(&frame(seq, 60 + (seq as usize * 13) % 1455)) {
            seq += 1;
        }
        rx.rx_burst(cache, &mut burst, 32);
        for p in burst.drain(..) {
            assert_eq!(p.data(), &frame(got, 60 + (got as usize * 13) % 1455)[..]);
            assert_eq!(p.port(), PortId(1));
            got += 1;
            cache.free(p);
        }
    }
}

#[test]
fn rx_frames_with_payload_checked() {
    let m = Arc::new(Model::new(Some(PF_MAC)));
    let pool = pool("igbvf-rx", 512);
    let mut cache = pool.cache();
    let mut port = IgbvfPort::new(Arc::clone(&m), cfg(64)).unwrap();
    let (mut rx, _tx) = port.queues(1, 1).unwrap();
    let mut burst = Burst::new();
    // Nothing is posted until the first burst; then 63 buffers (never a
    // full ring, C.9 #16) and the tail after the enable.
    assert!(!m.inject(&frame(0, 60)));
    assert_eq!(rx[0].rx_burst(&mut cache, &mut burst, 32), 0);
    assert_eq!(rx[0].posted(), 63);
    assert_eq!(m.reg(rdt(0)), 63);
    rx_and_check(&m, &mut rx[0], &mut cache, 0, 1000);
    let s = port.stats();
    assert_eq!(s.ipackets, 1000);
    port.update_hw_stats();
    assert_eq!(port.hw_stats().rx_packets, 1000);
    assert_eq!(port.hw_stats().rx_octets, s.ibytes + 4 * 1000);
    no_violations(&m);
    drop(rx);
    drop(cache);
    assert_eq!(pool.available(), 512);
}

#[test]
fn rx_flags_and_errors_from_write_back() {
    let m = Arc::new(Model::new(Some(PF_MAC)));
    let pool = pool("igbvf-rx-flags", 256);
    let mut cache = pool.cache();
    let mut port = IgbvfPort::new(Arc::clone(&m), cfg(64)).unwrap();
    let (mut rx, _tx) = port.queues(1, 1).unwrap();
    let mut b = Burst::new();
    rx[0].rx_burst(&mut cache, &mut b, 32);
    let csum = RXD_STAT_IPCS | RXD_STAT_L4CS;
    assert!(m.inject_with(&frame(1, 100), csum, (0x11, 0xDEAD_BEEF)));
    assert!(m.inject_with(&frame(2, 100), csum | RXD_ERR_TCPE, (0, 0)));
    assert!(m.inject_with(&frame(3, 100), csum | RXD_STAT_IXSM, (0, 0)));
    assert!(m.inject_with(&frame(4, 100), RXD_ERR_RXE, (0, 0)));
    assert_eq!(rx[0].rx_burst(&mut cache, &mut b, 32), 3);
    let f = |i: usize| b[i].ol_flags();
    assert!(
        f(0).contains(OlFlags::RX_IP_CKSUM_GOOD | OlFlags::RX_L4_CKSUM_GOOD | OlFlags::RX_RSS_HASH)
    );
    assert_eq!(b[0].rss_hash(), 0xDEAD_BEEF);
    assert!(f(1).contains(OlFlags::RX_IP_CKSUM_GOOD | OlFlags::RX_L4_CKSUM_BAD));
    assert_eq!(f(2), OlFlags::NONE);
    let errs = port
        .rx_counters(0)
        .unwrap()
        .frame_errors
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(errs, 1);
    cache.free_bulk(&mut b);
    drop(rx);
    drop(cache);
    assert_eq!(pool.available(), 256);
}

#[test]
fn multi_descriptor_frame_is_dropped_and_counted() {
    let m = Arc::new(Model::new(Some(PF_MAC)));
    let pool = pool("igbvf-rx-long", 256);
    let mut cache = pool.cache();
    let mut port = IgbvfPort::new(Arc::clone(&m), cfg(64)).unwrap();
    let (mut rx, _tx) = port.queues(1, 1).unwrap();
    let mut b = Burst::new();
    rx[0].rx_burst(&mut cache, &mut b, 32);
    // 2 KiB buffers: 3000 bytes take 2 descriptors, 9000 take 5 (REPORT Q5).
    assert!(m.inject(&frame(1, 3000)));
    assert!(m.inject(&frame(2, 200)));
    assert!(m.inject(&frame(3, 9000)));
    assert!(m.inject(&frame(4, 300)));
    // A burst of 1 stops inside nothing: the drops never count as received.
    let mut got = Vec::new();
    for _ in 0..4 {
        rx[0].rx_burst(&mut cache, &mut b, 1);
        got.extend(b.drain(..).map(|p| {
            let d = p.data().to_vec();
            cache.free(p);
            d
        }));
    }
    assert_eq!(got, vec![frame(2, 200), frame(4, 300)]);
    let c = port.rx_counters(0).unwrap();
    assert_eq!(
        c.frame_too_long.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    // Ring still full of buffers and working.
    rx_and_check(&m, &mut rx[0], &mut cache, 10, 200);
    drop(rx);
    drop(cache);
    assert_eq!(pool.available(), 256);
}

#[test]
fn tx_frames_reach_the_wire() {
    let m = Arc::new(Model::new(Some(PF_MAC)));
    let pool = pool("igbvf-tx", 512);
    let mut cache = pool.cache();
    let mut port = IgbvfPort::new(Arc::clone(&m), cfg(64)).unwrap();
    let (_rx, mut tx) = port.queues(1, 1).unwrap();
    let mut b = Burst::new();
    let n = 1000u32;
    let mut seq = 0;
    while seq < n {
        while b.len() < 40 && seq < n {
            let mut p = cache.alloc().unwrap();
            let f = frame(seq, 60 + (seq as usize * 31) % 1455);
            p.append(f.len()).unwrap().copy_from_slice(&f);
            b.push(p);
            seq += 1;
        }
        tx[0].tx_burst(&mut cache, &mut b);
    }
    while !b.is_empty() {
        tx[0].tx_burst(&mut cache, &mut b);
    }
    let wire = std::mem::take(&mut m.st().wire);
    assert_eq!(wire.len(), n as usize);
    for (i, f) in wire.iter().enumerate() {
        assert_eq!(f, &frame(i as u32, 60 + (i * 31) % 1455));
    }
    tx[0].reclaim(&mut cache);
    assert_eq!(tx[0].in_flight(), 0);
    assert_eq!(port.stats().opackets, n as u64);
    port.update_hw_stats();
    assert_eq!(port.hw_stats().tx_packets, n as u64);
    no_violations(&m);
    drop(tx);
    drop(cache);
    assert_eq!(pool.available(), 512);
}

#[test]
fn tx_ring_full_sends_fewer() {
    let m = Arc::new(Model::new(Some(PF_MAC)));
    let pool = pool("igbvf-tx-full", 256);
    let mut cache = pool.cache();
    let mut port = IgbvfPort::new(Arc::clone(&m), cfg(16)).unwrap();
    let (_rx, mut tx) = port.queues(1, 1).unwrap();
    m.st().tx_hold = true;
    let mut b = Burst::new();
    for i in 0..40 {
        let mut p = cache.alloc().unwrap();
        p.append(64).unwrap().fill(i as u8);
        b.push(p);
    }
    // 16 descriptors: 15 in flight at most.
    assert_eq!(tx[0].tx_burst(&mut cache, &mut b), 15);
    assert_eq!(b.len(), 25);
    assert_eq!(tx[0].tx_burst(&mut cache, &mut b), 0);
    assert_eq!(b[0].data()[0], 15, "unsent packets keep their order");
    assert_eq!(b.len(), 25);
    cache.free_bulk(&mut b); // the caller drops (and counts) them
                             // The port dropped nothing itself: the 25 refused packets were the
                             // caller's to drop, whatever it did with them in between. The ring
                             // only notes that two bursts found it full.
    assert_eq!(port.stats().oerrors, 0);
    assert_eq!(port.stats().opackets, 15);
    assert_eq!(xstat(&port, "tx_ring_full"), 2);
    assert_eq!(xstat(&port, "tx_bad_length"), 0);
    // The wire drains: DD comes back, the buffers are reclaimed.
    m.st().tx_hold = false;
    m.st().tx_kick(0);
    assert_eq!(m.st().wire.len(), 15);
    assert_eq!(tx[0].reclaim(&mut cache), 15);
    drop(tx);
    drop(cache);
    assert_eq!(pool.available(), 256);
}

#[test]
fn counters_survive_32_bit_wrap() {
    let m = Arc::new(Model::new(Some(PF_MAC)));
    m.set_reg(VFGPRC, 0xFFFF_FFF0);
    let pool = pool("igbvf-wrap", 256);
    let mut cache = pool.cache();
    let mut port = IgbvfPort::new(Arc::clone(&m), cfg(64)).unwrap();
    let (mut rx, _tx) = port.queues(1, 1).unwrap();
    rx_and_check(&m, &mut rx[0], &mut cache, 0, 40);
    assert_eq!(m.reg(VFGPRC), 0x18);
    port.update_hw_stats();
    assert_eq!(port.hw_stats().rx_packets, 40);
    drop(rx);
    drop(cache);
    assert_eq!(pool.available(), 256);
}

#[test]
fn pf_reset_mid_traffic_then_recovery() {
    let m = Arc::new(Model::new(Some(PF_MAC)));
    let pool = pool("igbvf-reset", 512);
    let mut cache = pool.cache();
    let mut port = IgbvfPort::new(Arc::clone(&m), cfg(64)).unwrap();
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    rx_and_check(&m, &mut rx[0], &mut cache, 0, 100);
    // Frames in the ring and TX in flight when the PF goes away.
    assert!(m.inject(&frame(1000, 100)));
    m.st().tx_hold = true;
    let mut b = Burst::new();
    for _ in 0..10 {
        let mut p = cache.alloc().unwrap();
        p.append(60).unwrap();
        b.push(p);
    }
    assert_eq!(tx[0].tx_burst(&mut cache, &mut b), 10);
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);

    m.pf_reset_begin();
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    assert!(!port.link().up);
    // Workers answer on their next burst: everything goes back.
    assert_eq!(port.service().unwrap(), ServiceEvent::WaitingForQueues);
    assert_eq!(rx[0].rx_burst(&mut cache, &mut b, 32), 0);
    assert_eq!(tx[0].tx_burst(&mut cache, &mut b), 0);
    assert_eq!(rx[0].posted(), 0);
    assert_eq!(tx[0].in_flight(), 0);
    assert_eq!(pool.in_use(), cache.len(), "only the cache holds buffers");
    // PF still down.
    assert_eq!(port.service().unwrap(), ServiceEvent::WaitingForDevice);
    m.pf_reset_end();
    m.st().tx_hold = false;
    assert_eq!(port.service().unwrap(), ServiceEvent::Recovered);
    assert_eq!(port.recoveries(), 1);
    assert!(port.link().up);
    let resets = m
        .st()
        .requests
        .iter()
        .filter(|w| *w & MSG_ID_MASK == MSG_VF_RESET)
        .count();
    assert_eq!(resets, 2);
    // Traffic resumes; software counters were kept.
    rx_and_check(&m, &mut rx[0], &mut cache, 2000, 300);
    assert_eq!(port.stats().ipackets, 400);
    for i in 0..5 {
        let mut p = cache.alloc().unwrap();
        p.append(60).unwrap().fill(i);
        b.push(p);
    }
    assert_eq!(tx[0].tx_burst(&mut cache, &mut b), 5);
    assert_eq!(m.st().wire.len(), 5);
    assert_eq!(port.stats().opackets, 15);
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    no_violations(&m);
    drop((rx, tx));
    drop(cache);
    assert_eq!(pool.available(), 512);
}

#[test]
fn dropping_the_queues_returns_posted_buffers() {
    let m = Arc::new(Model::new(Some(PF_MAC)));
    let pool = pool("igbvf-drop", 256);
    let mut cache = pool.cache();
    let mut port = IgbvfPort::new(Arc::clone(&m), cfg(128)).unwrap();
    let (mut rx, _tx) = port.queues(1, 1).unwrap();
    let mut b = Burst::new();
    rx[0].rx_burst(&mut cache, &mut b, 32);
    assert_eq!(rx[0].posted(), 127);
    drop(rx);
    assert_eq!(m.reg(rxdctl(0)) & crate::pmd::adv_desc::QUEUE_ENABLE, 0);
    drop(cache);
    assert_eq!(pool.available(), 256);
}

/// The real igb PF clears RSTI/RSTD before it answers the mailbox again
/// (VM lab, `ip link set <pf> mtu 9000`): the recovery must wait and retry,
/// not fail.
#[test]
fn pf_back_from_reset_but_not_answering_yet_is_retried() {
    let m = Arc::new(Model::new(Some(PF_MAC)));
    let pool = pool("igbvf-reset-silent", 512);
    let mut cache = pool.cache();
    let mut port = IgbvfPort::new(Arc::clone(&m), cfg(64)).unwrap();
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    rx_and_check(&m, &mut rx[0], &mut cache, 0, 10);
    m.pf_reset_begin();
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    let mut b = Burst::new();
    assert_eq!(rx[0].rx_burst(&mut cache, &mut b, 32), 0);
    assert_eq!(tx[0].tx_burst(&mut cache, &mut b), 0);
    m.pf_reset_end();
    m.st().pf_silent = true;
    assert_eq!(port.service().unwrap(), ServiceEvent::WaitingForDevice);
    assert_eq!(port.service().unwrap(), ServiceEvent::WaitingForDevice);
    m.st().pf_silent = false;
    assert_eq!(port.service().unwrap(), ServiceEvent::Recovered);
    rx_and_check(&m, &mut rx[0], &mut cache, 100, 10);
    drop((rx, tx));
    drop(cache);
    assert_eq!(pool.available(), 512);
}

/// Without an admin MAC the VF keeps the MAC it chose across PF resets.
#[test]
fn random_mac_survives_a_pf_reset() {
    let m = Arc::new(Model::new(None));
    let pool = pool("igbvf-reset-mac", 256);
    let mut cache = pool.cache();
    let mut port = IgbvfPort::new(Arc::clone(&m), cfg(64)).unwrap();
    let mac = port.info().mac;
    assert_eq!(port.pf_mac(), None);
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    m.pf_reset_begin();
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    let mut b = Burst::new();
    rx[0].rx_burst(&mut cache, &mut b, 32);
    tx[0].tx_burst(&mut cache, &mut b);
    m.pf_reset_end();
    assert_eq!(port.service().unwrap(), ServiceEvent::Recovered);
    assert_eq!(port.info().mac, mac, "MAC kept across the reset");
    drop((rx, tx));
}

// ---- issue 10, igbvf fixes (igbfix) ----------------------------------------

fn cfg_for(ring: usize, device: crate::pci::SupportedDevice) -> IgbvfConfig {
    let mut c = cfg(ring);
    c.device = device;
    c
}

/// A port whose queues the workers have released after a detected reset
/// (one empty burst each).
fn answer_stop(
    rx: &mut [IgbvfRx<Model>],
    tx: &mut [IgbvfTx<Model>],
    cache: &mut crate::pool::PoolCache,
) {
    let mut b = Burst::new();
    for q in rx.iter_mut() {
        assert_eq!(q.rx_burst(cache, &mut b, 32), 0);
    }
    for q in tx.iter_mut() {
        assert_eq!(q.tx_burst(cache, &mut b), 0);
    }
}

fn vf_resets(m: &Model) -> usize {
    m.st()
        .requests
        .iter()
        .filter(|w| *w & MSG_ID_MASK == MSG_VF_RESET)
        .count()
}

/// C.8: an I350 VF (8086:1520) has one queue pair, an 82576 VF (8086:10ca)
/// two; the port advertises and accepts what its device has.
#[test]
fn queue_count_comes_from_the_device() {
    let m = Arc::new(Model::new(Some(PF_MAC)));
    let mut i350 = IgbvfPort::new(Arc::clone(&m), cfg_for(64, crate::pci::IGBVF_I350)).unwrap();
    let caps = i350.info().capabilities;
    assert_eq!((caps.max_rx_queues, caps.max_tx_queues), (1, 1));
    assert!(i350.queues(2, 1).is_err());
    assert!(i350.queues(1, 2).is_err());
    let (rx, tx) = i350.queues(1, 1).unwrap();
    assert_eq!((rx.len(), tx.len()), (1, 1));
    drop((rx, tx, i350));

    let m = Arc::new(Model::new(Some(PF_MAC)));
    let mut vf82576 = IgbvfPort::new(Arc::clone(&m), cfg_for(64, crate::pci::IGBVF_82576)).unwrap();
    let caps = vf82576.info().capabilities;
    assert_eq!((caps.max_rx_queues, caps.max_tx_queues), (2, 2));
    let (rx, tx) = vf82576.queues(2, 2).unwrap();
    assert_eq!((rx.len(), tx.len()), (2, 2));
    assert_eq!(
        IgbvfConfig::new(PortId(0), "x", dma()).device,
        crate::pci::IGBVF_82576
    );
}

/// Only igbvf rows of the supported-device table make an igbvf port.
#[test]
fn a_non_igbvf_device_is_refused() {
    let m = Arc::new(Model::new(Some(PF_MAC)));
    let x550 = *crate::pci::lookup(0x8086, 0x1565).unwrap();
    let e = IgbvfPort::new(Arc::clone(&m), cfg_for(64, x550)).unwrap_err();
    assert!(e.to_string().contains("not an igbvf device"), "{e}");
}

/// C.5.3 / C.6 step 13: the PF dropped the VF's CTS without a ping the VF
/// saw. The link check ACKs the PF's word; the PF answers a VF without CTS
/// with a NACK without CTS, and the next check takes that as a reset.
#[test]
fn nack_without_cts_to_the_link_check_triggers_recovery() {
    let m = Arc::new(Model::new(Some(PF_MAC)));
    let pool = pool("igbvf-nack-link", 256);
    let mut cache = pool.cache();
    let mut port = IgbvfPort::new(Arc::clone(&m), cfg(64)).unwrap();
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    rx_and_check(&m, &mut rx[0], &mut cache, 0, 10);
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    assert_eq!(m.st().nacks_for_ack, 0, "a VF with CTS gets no NACK");
    m.drop_cts();
    // First check: the stale word has CTS; its ACK draws the PF's NACK.
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    assert_eq!(m.st().nacks_for_ack, 1);
    // Second check reads that NACK without CTS: reset.
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    assert!(!port.link().up);
    answer_stop(&mut rx, &mut tx, &mut cache);
    assert_eq!(port.service().unwrap(), ServiceEvent::Recovered);
    assert_eq!(vf_resets(&m), 2);
    assert!(m.st().cts);
    rx_and_check(&m, &mut rx[0], &mut cache, 100, 10);
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    no_violations(&m);
    drop((rx, tx));
    drop(cache);
    assert_eq!(pool.available(), 256);
}

/// Any request NACKed without CTS means the same (C.5.3), even when the
/// periodic link check is not due.
#[test]
fn nack_without_cts_to_a_request_triggers_recovery() {
    let m = Arc::new(Model::new(Some(PF_MAC)));
    let pool = pool("igbvf-nack-req", 256);
    let mut cache = pool.cache();
    let mut c = cfg(64);
    c.timing.link_check_interval = std::time::Duration::from_secs(3600);
    let mut port = IgbvfPort::new(Arc::clone(&m), c).unwrap();
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle); // first check
    m.drop_cts();
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle); // none due
    let e = port.set_allmulti(true).unwrap_err();
    assert!(
        matches!(e, IgbvfError::Mailbox(MbxError::Nack { reply, .. }) if reply & MSG_CTS == 0),
        "{e}"
    );
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    answer_stop(&mut rx, &mut tx, &mut cache);
    assert_eq!(port.service().unwrap(), ServiceEvent::Recovered);
    assert_eq!(vf_resets(&m), 2);
    port.set_allmulti(true).unwrap();
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    drop((rx, tx));
}

/// The VF_RESET reply has no CTS, and its NACK only means "no admin MAC"
/// (C.9 #7): that is not a loss of CTS.
#[test]
fn reset_reply_nack_is_not_a_loss_of_cts() {
    let m = Arc::new(Model::new(None));
    let mut port = IgbvfPort::new(Arc::clone(&m), cfg(64)).unwrap();
    for _ in 0..3 {
        assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    }
    assert_eq!(vf_resets(&m), 1);
}

/// PFSTS seen, then the VFU lock refused (the PF holds the buffer): the
/// message must still be read once the lock is free, not lost with the
/// read-to-clear bit (C.5.1).
#[test]
fn pfsts_survives_a_failed_lock() {
    let m = Model::new(Some(PF_MAC));
    let mut mbx = Mailbox::new(MbxTiming {
        polls: 3,
        poll_delay: std::time::Duration::ZERO,
        lock_tries: 1,
    });
    mbx.enable();
    let mut reply = [0u32; 3];
    mbx.request(&m, &[MSG_VF_RESET], &mut reply, Default::default())
        .unwrap();
    m.pf_ping(false);
    m.set_pfu(true);
    assert_eq!(mbx.poll_pf_message(&m), Err(MbxError::Busy));
    // The register's PFSTS was read (and cleared) by that attempt.
    assert_eq!(m.read32(V2PMAILBOX) & MBX_PFSTS, 0);
    assert_eq!(mbx.lost_contact(), None);
    m.set_pfu(false);
    assert_eq!(mbx.poll_pf_message(&m), Ok(Some(MSG_PF_CONTROL)));
    assert_eq!(
        mbx.lost_contact(),
        Some(mailbox::LostContact::CtsLost(MSG_PF_CONTROL))
    );
    // Consumed once read: what comes next is the NACK the PF sent for our
    // ACK (the model does not rate-limit those NACKs as the PF does).
    assert_eq!(mbx.poll_pf_message(&m), Ok(Some(MSG_NACK)));
}

/// The same through the port: a PF_CONTROL_MSG without CTS arriving while
/// the PF holds the buffer is acted on at the next service call.
#[test]
fn ping_without_cts_behind_a_busy_lock_triggers_recovery() {
    let m = Arc::new(Model::new(Some(PF_MAC)));
    let mut c = cfg(64);
    c.timing.link_check_interval = std::time::Duration::from_secs(3600);
    let mut port = IgbvfPort::new(Arc::clone(&m), c).unwrap();
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle); // first check
    m.pf_ping(false);
    m.set_pfu(true);
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    m.set_pfu(false);
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    // No queues were handed out: the recovery goes straight on.
    assert_eq!(port.service().unwrap(), ServiceEvent::Recovered);
    assert_eq!(vf_resets(&m), 2);
}

/// A ping with CTS is not a reset.
#[test]
fn ping_with_cts_is_not_a_reset() {
    let m = Arc::new(Model::new(Some(PF_MAC)));
    let mut port = IgbvfPort::new(Arc::clone(&m), cfg(64)).unwrap();
    m.pf_ping(true);
    for _ in 0..3 {
        assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    }
    assert_eq!(vf_resets(&m), 1);
    assert_eq!(m.st().nacks_for_ack, 0);
}

/// A mailbox exchange that timed out leaves the mailbox off (C.5.1) and
/// means the VF must be reset (C.6 step 13): the recovery runs.
#[test]
fn mailbox_timeout_triggers_recovery() {
    let m = Arc::new(Model::new(Some(PF_MAC)));
    let pool = pool("igbvf-mbx-timeout", 256);
    let mut cache = pool.cache();
    let mut port = IgbvfPort::new(Arc::clone(&m), cfg(64)).unwrap();
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    rx_and_check(&m, &mut rx[0], &mut cache, 0, 10);
    m.st().pf_silent = true;
    let e = port.set_allmulti(true).unwrap_err();
    assert!(
        matches!(e, IgbvfError::Mailbox(MbxError::Timeout("PFACK"))),
        "{e}"
    );
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    answer_stop(&mut rx, &mut tx, &mut cache);
    assert_eq!(port.service().unwrap(), ServiceEvent::WaitingForDevice);
    m.st().pf_silent = false;
    assert_eq!(port.service().unwrap(), ServiceEvent::Recovered);
    port.set_allmulti(true).unwrap();
    rx_and_check(&m, &mut rx[0], &mut cache, 100, 10);
    drop((rx, tx));
    drop(cache);
    assert_eq!(pool.available(), 256);
}

/// C.4.1 / C.9 #14: on an I350 VF the VLAN field of a looped-back frame
/// (status LB) is big-endian; the mbuf gets the right tag. Frames from the
/// wire, and every frame on an 82576 VF, are little-endian.
#[test]
fn i350_loopback_vlan_is_byte_swapped() {
    use crate::pmd::adv_desc::desc::{RXD_STAT_LB, RXD_STAT_VP};
    for (device, swapped) in [
        (crate::pci::IGBVF_I350, true),
        (crate::pci::IGBVF_82576, false),
    ] {
        let m = Arc::new(Model::new(Some(PF_MAC)));
        let pool = pool("igbvf-lb-vlan", 256);
        let mut cache = pool.cache();
        let mut port = IgbvfPort::new(Arc::clone(&m), cfg_for(64, device)).unwrap();
        let (mut rx, _tx) = port.queues(1, 1).unwrap();
        let mut b = Burst::new();
        rx[0].rx_burst(&mut cache, &mut b, 32);
        // VLAN 0x123 with priority 5: TCI 0xA123.
        let be = 0xA123u16.swap_bytes();
        assert!(m.inject_vlan(&frame(1, 80), RXD_STAT_VP | RXD_STAT_LB, be));
        assert!(m.inject_vlan(&frame(2, 80), RXD_STAT_VP, 0xA123));
        assert!(m.inject_vlan(&frame(3, 80), RXD_STAT_VP | RXD_STAT_LB, 0xA123));
        assert_eq!(rx[0].rx_burst(&mut cache, &mut b, 32), 3);
        let tcis: Vec<u16> = b.iter().map(|p| p.vlan_tci()).collect();
        if swapped {
            assert_eq!(tcis, [0xA123, 0xA123, 0x23A1], "{}", device.name);
        } else {
            assert_eq!(tcis, [be, 0xA123, 0xA123], "{}", device.name);
        }
        assert!(b
            .iter()
            .all(|p| p.ol_flags().contains(OlFlags::RX_VLAN_STRIPPED)));
        cache.free_bulk(&mut b);
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
    let m = Arc::new(Model::new(Some(PF_MAC)));
    let pool = pool("igbvf-tx-bad", 256);
    let mut cache = pool.cache();
    let mut port = IgbvfPort::new(Arc::clone(&m), cfg(64)).unwrap();
    let (_rx, mut tx) = port.queues(1, 1).unwrap();
    let mut b = Burst::new();
    for (i, len) in [0usize, 60, 61, 0, 62].into_iter().enumerate() {
        let mut p = cache.alloc().unwrap();
        p.append(len).unwrap().fill(i as u8);
        b.push(p);
    }
    assert_eq!(tx[0].tx_burst(&mut cache, &mut b), 3);
    assert!(b.is_empty(), "nothing left for the caller to count as full");
    let wire = std::mem::take(&mut m.st().wire);
    assert_eq!(wire, [vec![1u8; 60], vec![2u8; 61], vec![4u8; 62]]);
    let s = port.stats();
    assert_eq!((s.opackets, s.obytes, s.oerrors), (3, 183, 2));
    assert_eq!(xstat(&port, "tx_bad_length"), 2);
    assert_eq!(xstat(&port, "tx_ring_full"), 0);
    // An empty burst changes nothing.
    assert_eq!(tx[0].tx_burst(&mut cache, &mut b), 0);
    assert_eq!(xstat(&port, "tx_bad_length"), 2);
    tx[0].reclaim(&mut cache);
    drop(tx);
    drop(cache);
    assert_eq!(pool.available(), 256);
}

/// With the pool empty, a refill that fails again and again for the same
/// empty slots counts them once (C.9 #16 keeps one slot free on purpose;
/// that one is never counted).
#[test]
fn rx_nombuf_counts_each_empty_slot_once() {
    let m = Arc::new(Model::new(Some(PF_MAC)));
    let pool = pool("igbvf-nombuf", 40);
    let mut cache = pool.cache();
    let mut port = IgbvfPort::new(Arc::clone(&m), cfg(64)).unwrap();
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
        assert!(m.inject(&frame(i, 64)));
    }
    assert_eq!(rx[0].rx_burst(&mut cache, &mut b, 32), 5);
    assert_eq!(rx[0].posted(), 35);
    assert_eq!(port.stats().rx_nombuf, 28);
    // Buffers back: they fill counted slots, nothing new is short.
    cache.free_bulk(&mut b);
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
    let m = Arc::new(Model::new(Some(PF_MAC)));
    let pool = pool("igbvf-xstats", 512);
    let mut cache = pool.cache();
    let mut port = IgbvfPort::new(Arc::clone(&m), cfg(64)).unwrap();
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    let mut b = Burst::new();
    rx[0].rx_burst(&mut cache, &mut b, 32);
    // One too long, one frame error, one good.
    assert!(m.inject(&frame(1, 3000)));
    assert!(m.inject_with(&frame(2, 100), RXD_ERR_CE, (0, 0)));
    assert!(m.inject(&frame(3, 100)));
    assert_eq!(rx[0].rx_burst(&mut cache, &mut b, 32), 1);
    cache.free_bulk(&mut b);
    // Two frames left in the ring, six TX packets in flight.
    assert!(m.inject(&frame(4, 100)));
    assert!(m.inject(&frame(5, 100)));
    m.st().tx_hold = true;
    for _ in 0..6 {
        let mut p = cache.alloc().unwrap();
        p.append(60).unwrap();
        b.push(p);
    }
    assert_eq!(tx[0].tx_burst(&mut cache, &mut b), 6);
    m.pf_reset_begin();
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    answer_stop(&mut rx, &mut tx, &mut cache);
    m.pf_reset_end();
    m.st().tx_hold = false;
    assert_eq!(port.service().unwrap(), ServiceEvent::Recovered);
    rx_and_check(&m, &mut rx[0], &mut cache, 10, 5);
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
        ("tx_packets", 6),
        ("tx_bad_length", 0),
        ("tx_ring_full", 0),
        ("tx_stop_discarded", 6),
        ("pf_reset_recoveries", 1),
    ];
    for (n, v) in want {
        assert_eq!(xstat(&port, n), v, "{n}");
    }
    drop((rx, tx));
    drop(cache);
    assert_eq!(pool.available(), 512);
}
