//! igbvf driver tests against the asynchronous device model (`crate::sim`):
//! no hardware. The model runs its own thread, DMAs through its IOMMU, and
//! fails the test on any broken rule (checked when the `IgbvfSim` drops:
//! it is declared first in every test, so it drops last).
//!
//! The driver bugs the model first caught (RX buffers freed before the
//! queue read back disabled, two queue pairs on an I350, no LB VLAN swap)
//! are fixed; the tests that showed them now assert the right behaviour.

use super::regs::*;
use super::*;
use crate::burst::Burst;
use crate::mbuf::{OlFlags, PortId};
use crate::memory::MemoryBacking;
use crate::mmio::RegisterSpace;
use crate::net::MacAddr;
use crate::pmd::adv_desc::desc::{RXD_STAT_IPCS, RXD_STAT_L4CS};
use crate::pool::{Pool, PoolCache, PoolConfig};
use crate::port::{Port, RxQueue, ServiceEvent, TxQueue};
use crate::sim::adv::RxFrame;
use crate::sim::igbvf::{Flavor, Igbvf, IgbvfBar, IgbvfConfig as ModelConfig, IgbvfSim};
use crate::sim::Iommu;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

pub(super) const PF_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x10]);
/// Longest any test waits for the device (a bound for a stuck model, not
/// a timing the test depends on).
pub(super) const PATIENCE: Duration = Duration::from_secs(20);

pub(super) fn model(flavor: Flavor, admin: Option<MacAddr>) -> IgbvfSim {
    Igbvf::start(ModelConfig::new(flavor, admin), &Iommu::new())
}

pub(super) fn vf(admin: Option<MacAddr>) -> IgbvfSim {
    model(Flavor::I82576, admin)
}

/// Control-path waits for an asynchronous PF: polls that sleep, with a
/// generous bound (about 0.4 s to 2 s), no fixed pauses.
pub(super) fn timing() -> Timing {
    Timing {
        mbx: MbxTiming {
            polls: 20_000,
            poll_delay: Duration::from_micros(20),
            lock_tries: 1_000,
        },
        reset_polls: 4,
        reset_poll_delay: Duration::ZERO,
        reset_reply_settle: Duration::ZERO,
        disable: crate::pmd::adv_desc::DisableTiming {
            polls: 20_000,
            poll_delay: Duration::from_micros(20),
            settle: Duration::ZERO,
        },
        link_check_interval: Duration::ZERO,
    }
}

/// The driver's configuration for the model's VF: its row of the
/// supported-device table comes from the model's device id, as it would
/// from sysfs.
pub(super) fn cfg(dev: &IgbvfSim, ring: usize) -> IgbvfConfig {
    let id = dev.with(|m, _| m.config().flavor.device_id());
    let row = *crate::pci::lookup(crate::pci::INTEL, id).expect("an igbvf id");
    let mut c = IgbvfConfig::for_device(PortId(1), "vf0", row, dev.iommu().mapper());
    c.rx_ring = ring;
    c.tx_ring = ring;
    c.backing = MemoryBacking::NoHuge;
    c.timing = timing();
    c
}

pub(super) fn port(dev: &IgbvfSim, ring: usize) -> IgbvfPort<IgbvfBar> {
    IgbvfPort::new(dev.bar(), cfg(dev, ring)).unwrap()
}

pub(super) fn pool(dev: &IgbvfSim, name: &str, n: u32) -> Pool {
    let mut c = PoolConfig::new(name, n).with_backing(MemoryBacking::NoHuge);
    c.cache_size = 32;
    c.dma = Some(dev.iommu().mapper());
    Pool::new(&c).unwrap()
}

/// A frame whose bytes name its sequence number, to a unicast
/// destination (the model filters multicast by the VF's list).
pub(super) fn frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len)
        .map(|i| (seq as usize * 7 + i) as u8 ^ (seq >> 8) as u8)
        .collect();
    if let Some(b) = f.first_mut() {
        *b &= !1;
    }
    f
}

pub(super) fn rx_len(seq: u32) -> usize {
    60 + (seq as usize * 13) % 1455
}

/// Receive until `got` reaches `n` or the model is stuck.
pub(super) fn rx_until(
    rx: &mut IgbvfRx<IgbvfBar>,
    cache: &mut PoolCache,
    max: usize,
    mut each: impl FnMut(crate::mbuf::Mbuf, &mut PoolCache) -> bool,
) {
    let end = Instant::now() + PATIENCE;
    let mut burst = Burst::new();
    loop {
        rx.rx_burst(cache, &mut burst, max);
        let mut done = false;
        for p in burst.drain(..) {
            done |= each(p, cache);
        }
        if done {
            return;
        }
        assert!(
            Instant::now() < end,
            "the model delivered nothing for {PATIENCE:?}"
        );
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// Inject frames `first..first + n` and receive them, checking each.
pub(super) fn rx_and_check(
    dev: &IgbvfSim,
    rx: &mut IgbvfRx<IgbvfBar>,
    cache: &mut PoolCache,
    first: u32,
    n: u32,
) {
    for seq in first..first + n {
        assert!(dev.inject(&frame(seq, rx_len(seq))));
    }
    let mut got = first;
    rx_until(rx, cache, 32, |p, cache| {
        assert_eq!(p.data(), &frame(got, rx_len(got))[..]);
        assert_eq!(p.port(), PortId(1));
        got += 1;
        cache.free(p);
        got == first + n
    });
}

pub(super) fn xstat<R: RegisterSpace + 'static>(port: &IgbvfPort<R>, name: &str) -> u64 {
    port.xstats()
        .into_iter()
        .find_map(|(n, v)| (n == name).then_some(v))
        .unwrap_or_else(|| panic!("no xstat {name}"))
}

fn mbx_request(
    bar: &IgbvfBar,
    mbx: &mut Mailbox,
    msg: &[u32],
    reply: &mut [u32],
) -> Result<u32, MbxError> {
    mbx.request(bar, msg, reply, Duration::ZERO)
}

#[test]
fn mailbox_transfer_and_read_to_clear() {
    let dev = vf(Some(PF_MAC));
    let bar = dev.bar();
    let mut mbx = Mailbox::new(timing().mbx);
    let mut reply = [0u32; 3];
    // Posted operations are off until the reset enables them.
    assert_eq!(
        mbx_request(&bar, &mut mbx, &[MSG_SET_LPE, 1522], &mut reply),
        Err(MbxError::Disabled)
    );
    mbx.enable();
    // Before VF_RESET the PF NACKs, without CTS (C.5.3); sending it is a
    // rule broken on purpose here.
    let e = mbx_request(&bar, &mut mbx, &[MSG_SET_LPE, 1522], &mut reply);
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
    dev.violations().expect("mailbox-request-before-vf-reset");
    assert!(!mbx.clear_to_send());
    let w = mbx_request(&bar, &mut mbx, &[MSG_VF_RESET], &mut reply).unwrap();
    assert_eq!(w, MSG_VF_RESET | MSG_ACK);
    assert_eq!(reply[1].to_le_bytes()[..], PF_MAC.0[..4]);
    let w = mbx_request(&bar, &mut mbx, &[MSG_SET_LPE, 1522], &mut reply).unwrap();
    assert_eq!(w, MSG_SET_LPE | MSG_ACK | MSG_CTS);
    assert!(mbx.clear_to_send());
    assert_eq!(dev.pf(|p| p.lpe), Some(1522));
    // Everything was consumed: PFSTS/PFACK cleared by the reads.
    assert_eq!(bar.read32(V2PMAILBOX) & MBX_R2C_BITS, 0);
    // Unicast promiscuous is refused, multicast taken (C.9 #10).
    let uni = MSG_SET_PROMISC | 0x0001_0000;
    assert!(mbx_request(&bar, &mut mbx, &[uni], &mut reply).is_err());
    let multi = MSG_SET_PROMISC | PROMISC_MULTICAST;
    mbx_request(&bar, &mut mbx, &[multi], &mut reply).unwrap();
    assert!(dev.pf(|p| p.allmulti));
    assert!(matches!(
        mbx.write(&*bar, &[0; 17]),
        Err(MbxError::TooLong(17))
    ));
}

#[test]
fn mailbox_timeout_disables_until_reset() {
    let dev = vf(Some(PF_MAC));
    let bar = dev.bar();
    let mut mbx = Mailbox::new(MbxTiming {
        polls: 3,
        poll_delay: Duration::ZERO,
        lock_tries: 1,
    });
    mbx.enable();
    dev.set_pf_silent(true);
    let mut reply = [0u32; 1];
    assert_eq!(
        mbx_request(&bar, &mut mbx, &[MSG_VF_RESET], &mut reply),
        Err(MbxError::Timeout("PFACK"))
    );
    dev.set_pf_silent(false);
    assert_eq!(
        mbx_request(&bar, &mut mbx, &[MSG_VF_RESET], &mut reply),
        Err(MbxError::Disabled)
    );
}

#[test]
fn cached_read_to_clear_bits_are_not_lost() {
    let dev = vf(None);
    let bar = dev.bar();
    let mut mbx = Mailbox::new(MbxTiming::default());
    dev.pf_reset_begin();
    dev.pf_reset_end();
    // One read returns RSTD and PFSTS together; RSTD is consumed by the
    // reset check, PFSTS stays cached for the message check.
    assert!(mbx.check_for_rst(&*bar));
    assert_eq!(bar.read32(V2PMAILBOX) & MBX_R2C_BITS, 0);
    assert!(mbx.check_for_msg(&*bar));
    assert!(!mbx.check_for_msg(&*bar));
}

#[test]
fn bring_up_takes_the_mac_from_the_pf() {
    let dev = vf(Some(PF_MAC));
    let port = port(&dev, 64);
    assert_eq!(port.info().mac, PF_MAC);
    assert_eq!(port.pf_mac(), Some(PF_MAC));
    assert_eq!(dev.pf(|p| p.vf_mac), Some(PF_MAC));
    assert_eq!(dev.pf(|p| p.lpe), Some(1522));
    let ids: Vec<u32> = dev.requests().iter().map(|w| w & MSG_ID_MASK).collect();
    assert_eq!(ids, [MSG_VF_RESET, MSG_SET_MAC_ADDR, MSG_SET_LPE]);
    assert!(port.link().up);
    dev.set_link(false);
    assert!(!port.link().up);
    dev.set_link(true);
    assert!(port.link().up);
}

#[test]
fn bring_up_without_admin_mac_picks_a_local_one() {
    let dev = vf(None);
    let port = port(&dev, 64);
    let mac = port.info().mac;
    assert!(mac.is_unicast() && mac.0[0] & 2 == 2, "{mac}");
    assert_eq!(dev.pf(|p| p.vf_mac), Some(mac));
    assert_eq!(port.pf_mac(), None);
}

#[test]
fn bring_up_fails_while_the_pf_is_in_reset() {
    let dev = vf(Some(PF_MAC));
    dev.pf_reset_begin();
    let e = IgbvfPort::new(dev.bar(), cfg(&dev, 64)).unwrap_err();
    assert!(matches!(e, IgbvfError::PfInReset), "{e}");
}

#[test]
fn too_many_queues_refused() {
    let dev = vf(Some(PF_MAC));
    let mut port = port(&dev, 64);
    assert!(port.queues(3, 1).is_err());
}

#[test]
fn rx_frames_with_payload_checked() {
    let dev = vf(Some(PF_MAC));
    let pool = pool(&dev, "igbvf-rx", 512);
    let mut cache = pool.cache();
    let bar = dev.bar();
    // A disabled queue drops what arrives.
    assert!(!dev.inject(&frame(0, 60)));
    let mut port = port(&dev, 64);
    let (mut rx, _tx) = port.queues(1, 1).unwrap();
    let mut burst = Burst::new();
    // Nothing is posted until the first burst; then 63 buffers (never a
    // full ring, C.9 #16) and the tail after the enable.
    assert_eq!(dev.rx_owned(0), 0);
    assert_eq!(rx[0].rx_burst(&mut cache, &mut burst, 32), 0);
    assert_eq!(rx[0].posted(), 63);
    assert_eq!(bar.read32(rdt(0)), 63);
    assert_eq!(dev.rx_owned(0), 63);
    rx_and_check(&dev, &mut rx[0], &mut cache, 0, 1000);
    let s = port.stats();
    assert_eq!(s.ipackets, 1000);
    port.update_hw_stats();
    assert_eq!(port.hw_stats().rx_packets, 1000);
    assert_eq!(port.hw_stats().rx_octets, s.ibytes + 4 * 1000);
    drop(rx);
    drop(cache);
    assert_eq!(pool.available(), 512);
}

#[test]
fn rx_flags_and_errors_from_write_back() {
    let dev = vf(Some(PF_MAC));
    let pool = pool(&dev, "igbvf-rx-flags", 256);
    let mut cache = pool.cache();
    let mut port = port(&dev, 64);
    let (mut rx, _tx) = port.queues(1, 1).unwrap();
    let mut b = Burst::new();
    rx[0].rx_burst(&mut cache, &mut b, 32);
    let csum = RXD_STAT_IPCS | RXD_STAT_L4CS;
    let f = |seq, status, pkt_info, rss| RxFrame {
        data: frame(seq, 100),
        status,
        pkt_info,
        rss,
        ..RxFrame::default()
    };
    assert!(dev.inject_frame(0, f(1, csum, 0x11, 0xDEAD_BEEF)));
    assert!(dev.inject_frame(0, f(2, csum | RXD_ERR_TCPE, 0, 0)));
    assert!(dev.inject_frame(0, f(3, csum | RXD_STAT_IXSM, 0, 0)));
    assert!(dev.inject_frame(0, f(4, RXD_ERR_RXE, 0, 0)));
    let mut got = Vec::new();
    let errs = || port.rx_counters(0).unwrap().frame_errors.load(Relaxed);
    rx_until(&mut rx[0], &mut cache, 32, |p, _| {
        got.push(p);
        got.len() == 3
    });
    let flags: Vec<OlFlags> = got.iter().map(|p| p.ol_flags()).collect();
    assert!(flags[0]
        .contains(OlFlags::RX_IP_CKSUM_GOOD | OlFlags::RX_L4_CKSUM_GOOD | OlFlags::RX_RSS_HASH));
    assert_eq!(got[0].rss_hash(), 0xDEAD_BEEF);
    assert!(flags[1].contains(OlFlags::RX_IP_CKSUM_GOOD | OlFlags::RX_L4_CKSUM_BAD));
    assert_eq!(flags[2], OlFlags::NONE);
    // The errored frame is the fourth: wait for its write-back.
    dev.settle();
    rx[0].rx_burst(&mut cache, &mut b, 32);
    assert_eq!(errs(), 1);
    for p in got {
        cache.free(p);
    }
    drop(rx);
    drop(cache);
    assert_eq!(pool.available(), 256);
}

#[test]
fn multi_descriptor_frame_is_dropped_and_counted() {
    let dev = vf(Some(PF_MAC));
    let pool = pool(&dev, "igbvf-rx-long", 256);
    let mut cache = pool.cache();
    let mut port = port(&dev, 64);
    let (mut rx, _tx) = port.queues(1, 1).unwrap();
    let mut b = Burst::new();
    rx[0].rx_burst(&mut cache, &mut b, 32);
    // 2 KiB buffers: 3000 bytes take 2 descriptors, 9000 take 5.
    assert!(dev.inject(&frame(1, 3000)));
    assert!(dev.inject(&frame(2, 200)));
    assert!(dev.inject(&frame(3, 9000)));
    assert!(dev.inject(&frame(4, 300)));
    // Bursts of 1: the dropped frames never count as received.
    let mut got = Vec::new();
    rx_until(&mut rx[0], &mut cache, 1, |p, cache| {
        got.push(p.data().to_vec());
        cache.free(p);
        got.len() == 2
    });
    assert_eq!(got, vec![frame(2, 200), frame(4, 300)]);
    let c = port.rx_counters(0).unwrap();
    assert_eq!(c.frame_too_long.load(Relaxed), 2);
    // Ring still full of buffers and working.
    rx_and_check(&dev, &mut rx[0], &mut cache, 10, 200);
    drop(rx);
    drop(cache);
    assert_eq!(pool.available(), 256);
}

fn tx_packet(cache: &mut PoolCache, data: &[u8]) -> crate::mbuf::Mbuf {
    let mut p = cache.alloc().unwrap();
    p.append(data.len()).unwrap().copy_from_slice(data);
    p
}

/// Reclaim until nothing is in flight.
fn reclaim_all(tx: &mut IgbvfTx<IgbvfBar>, cache: &mut PoolCache) -> usize {
    let end = Instant::now() + PATIENCE;
    let mut n = 0;
    while tx.in_flight() > 0 {
        n += tx.reclaim(cache);
        assert!(Instant::now() < end, "DD never came back");
        std::thread::sleep(Duration::from_micros(50));
    }
    n
}

#[test]
fn tx_frames_reach_the_wire() {
    let dev = vf(Some(PF_MAC));
    let pool = pool(&dev, "igbvf-tx", 512);
    let mut cache = pool.cache();
    let mut port = port(&dev, 64);
    let (_rx, mut tx) = port.queues(1, 1).unwrap();
    let mut b = Burst::new();
    let n = 1000u32;
    let len = |seq: u32| 60 + (seq as usize * 31) % 1455;
    let mut seq = 0;
    let end = Instant::now() + PATIENCE;
    while seq < n || !b.is_empty() {
        while b.len() < 40 && seq < n {
            b.push(tx_packet(&mut cache, &frame(seq, len(seq))));
            seq += 1;
        }
        if tx[0].tx_burst(&mut cache, &mut b) == 0 {
            std::thread::sleep(Duration::from_micros(50));
        }
        assert!(Instant::now() < end, "TX stuck");
    }
    assert!(dev.wait_for(PATIENCE, |m| m.wire.len() == n as usize));
    let wire = dev.take_wire();
    for (i, f) in wire.iter().enumerate() {
        assert_eq!(f, &frame(i as u32, len(i as u32)));
    }
    reclaim_all(&mut tx[0], &mut cache);
    assert_eq!(port.stats().opackets, n as u64);
    port.update_hw_stats();
    assert_eq!(port.hw_stats().tx_packets, n as u64);
    drop(tx);
    drop(cache);
    assert_eq!(pool.available(), 512);
}

/// Packets the port itself dropped, summed over every TX drop reason of
/// its xstats (all `tx_*` counters but the sent ones and the full-ring
/// events): each dropped packet is under exactly one of them.
pub(super) fn tx_drops_by_reason<R: RegisterSpace + 'static>(port: &IgbvfPort<R>) -> u64 {
    let not_drops = ["tx_packets", "tx_bytes", "tx_ring_full"];
    port.xstats()
        .into_iter()
        .filter(|(n, _)| n.starts_with("tx_") && !not_drops.contains(n))
        .map(|(_, v)| v)
        .sum()
}

/// Every packet handed to `tx_burst` ends up exactly once: on the wire,
/// dropped and counted by the port (a bad one, whichever burst reaches it),
/// or left with the caller when the ring is full, which is not the port's
/// drop. The expected figures come from the packets sent, not from a run.
#[test]
fn tx_ring_full_sends_fewer() {
    const RING: usize = 16;
    let dev = vf(Some(PF_MAC));
    let pool = pool(&dev, "igbvf-tx-full", 256);
    let mut cache = pool.cache();
    let mut port = port(&dev, RING);
    let (_rx, mut tx) = port.queues(1, 1).unwrap();
    dev.set_tx_hold(true);
    // Packet i is filled with the byte i; every 7th one, from the 4th, is
    // empty: a length the device cannot send.
    let lens: Vec<usize> = (0..40).map(|i| if i % 7 == 3 { 0 } else { 64 }).collect();
    let good: Vec<u8> = (0..lens.len() as u8)
        .filter(|&i| lens[i as usize] > 0)
        .collect();
    let bad = (lens.len() - good.len()) as u64;
    let mut b = Burst::new();
    for (i, &len) in lens.iter().enumerate() {
        b.push(tx_packet(&mut cache, &vec![i as u8; len]));
    }
    // At most RING - 1 descriptors are in flight (TDT never catches TDH).
    let fits = RING - 1;
    assert_eq!(tx[0].tx_burst(&mut cache, &mut b), fits);
    assert_eq!(
        b[0].data()[0],
        good[fits],
        "unsent packets keep their order"
    );
    let left = b.len();
    assert_eq!(tx[0].tx_burst(&mut cache, &mut b), 0);
    assert_eq!(b.len(), left, "a full ring takes nothing, drops nothing");
    assert_eq!(xstat(&port, "tx_ring_full"), 2, "two bursts found it full");
    // The caller keeps the refused packets and sends them once there is
    // room again, as a worker that retries would.
    dev.set_tx_hold(false);
    let end = Instant::now() + PATIENCE;
    while !b.is_empty() {
        if tx[0].tx_burst(&mut cache, &mut b) == 0 {
            std::thread::sleep(Duration::from_micros(50));
        }
        assert!(Instant::now() < end, "TX stuck");
    }
    assert!(dev.wait_for(PATIENCE, |m| m.wire.len() == good.len()));
    let want: Vec<Vec<u8>> = good.iter().map(|&i| vec![i; 64]).collect();
    assert_eq!(dev.take_wire(), want, "every good packet once, in order");
    let s = port.stats();
    assert_eq!(s.opackets, good.len() as u64);
    assert_eq!(s.obytes, 64 * good.len() as u64);
    assert_eq!(s.oerrors, bad, "each bad packet dropped and counted once");
    assert_eq!(tx_drops_by_reason(&port), bad, "{:?}", port.xstats());
    assert_eq!(xstat(&port, "tx_bad_length"), bad);
    reclaim_all(&mut tx[0], &mut cache);
    drop(tx);
    drop(cache);
    assert_eq!(pool.available(), 256);
}

#[test]
fn counters_survive_32_bit_wrap() {
    let dev = vf(Some(PF_MAC));
    dev.set_stat(VFGPRC, 0xFFFF_FFF0);
    let pool = pool(&dev, "igbvf-wrap", 256);
    let mut cache = pool.cache();
    let mut port = port(&dev, 64);
    let (mut rx, _tx) = port.queues(1, 1).unwrap();
    rx_and_check(&dev, &mut rx[0], &mut cache, 0, 40);
    assert_eq!(dev.stat(VFGPRC), 0x18);
    port.update_hw_stats();
    assert_eq!(port.hw_stats().rx_packets, 40);
    drop(rx);
    drop(cache);
    assert_eq!(pool.available(), 256);
}

#[test]
fn pf_reset_mid_traffic_then_recovery() {
    let dev = vf(Some(PF_MAC));
    let pool = pool(&dev, "igbvf-reset", 512);
    let mut cache = pool.cache();
    let mut port = port(&dev, 64);
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    rx_and_check(&dev, &mut rx[0], &mut cache, 0, 100);
    // A frame in the ring and TX in flight when the PF goes away.
    assert!(dev.inject(&frame(1000, 100)));
    dev.settle();
    dev.set_tx_hold(true);
    let mut b = Burst::new();
    for _ in 0..10 {
        b.push(tx_packet(&mut cache, &[0; 60]));
    }
    assert_eq!(tx[0].tx_burst(&mut cache, &mut b), 10);
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);

    dev.pf_reset_begin();
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    assert!(!port.link().up);
    // Workers answer on their next burst: everything goes back (the PF's
    // reset stopped the queues, so freeing is safe).
    assert_eq!(port.service().unwrap(), ServiceEvent::WaitingForQueues);
    assert_eq!(rx[0].rx_burst(&mut cache, &mut b, 32), 0);
    assert_eq!(tx[0].tx_burst(&mut cache, &mut b), 0);
    assert_eq!(rx[0].posted(), 0);
    assert_eq!(tx[0].in_flight(), 0);
    assert_eq!(pool.in_use(), cache.len(), "only the cache holds buffers");
    // PF still down.
    assert_eq!(port.service().unwrap(), ServiceEvent::WaitingForDevice);
    dev.pf_reset_end();
    dev.set_tx_hold(false);
    assert_eq!(port.service().unwrap(), ServiceEvent::Recovered);
    assert_eq!(port.recoveries(), 1);
    assert!(port.link().up);
    let resets = dev
        .requests()
        .iter()
        .filter(|w| *w & MSG_ID_MASK == MSG_VF_RESET)
        .count();
    assert_eq!(resets, 2);
    // Traffic resumes; software counters were kept.
    rx_and_check(&dev, &mut rx[0], &mut cache, 2000, 300);
    assert_eq!(port.stats().ipackets, 400);
    for i in 0..5 {
        b.push(tx_packet(&mut cache, &[i; 60]));
    }
    assert_eq!(tx[0].tx_burst(&mut cache, &mut b), 5);
    assert!(dev.wait_for(PATIENCE, |m| m.wire.len() == 5));
    assert_eq!(port.stats().opackets, 15);
    assert_eq!(port.service().unwrap(), ServiceEvent::Idle);
    reclaim_all(&mut tx[0], &mut cache);
    drop((rx, tx));
    drop(cache);
    assert_eq!(pool.available(), 512);
}

#[test]
fn dropping_the_queues_returns_posted_buffers() {
    let dev = vf(Some(PF_MAC));
    let pool = pool(&dev, "igbvf-drop", 256);
    let mut cache = pool.cache();
    let bar = dev.bar();
    let mut port = port(&dev, 128);
    let (mut rx, _tx) = port.queues(1, 1).unwrap();
    let mut b = Burst::new();
    rx[0].rx_burst(&mut cache, &mut b, 32);
    assert_eq!(rx[0].posted(), 127);
    drop(rx);
    assert_eq!(
        bar.read32(rxdctl(0)) & crate::pmd::adv_desc::QUEUE_ENABLE,
        0
    );
    drop(cache);
    assert_eq!(pool.available(), 256);
}

/// The real igb PF clears RSTI/RSTD before it answers the mailbox again
/// (VM lab, `ip link set <pf> mtu 9000`): the recovery must wait and retry,
/// not fail.
#[test]
fn pf_back_from_reset_but_not_answering_yet_is_retried() {
    let dev = vf(Some(PF_MAC));
    let pool = pool(&dev, "igbvf-reset-silent", 512);
    let mut cache = pool.cache();
    let mut c = cfg(&dev, 64);
    // A silent PF costs one full mailbox timeout per attempt: keep it short.
    c.timing.mbx.polls = 2_000;
    let mut port = IgbvfPort::new(dev.bar(), c).unwrap();
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    rx_and_check(&dev, &mut rx[0], &mut cache, 0, 10);
    dev.pf_reset_begin();
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    let mut b = Burst::new();
    assert_eq!(rx[0].rx_burst(&mut cache, &mut b, 32), 0);
    assert_eq!(tx[0].tx_burst(&mut cache, &mut b), 0);
    dev.pf_reset_end();
    dev.set_pf_silent(true);
    assert_eq!(port.service().unwrap(), ServiceEvent::WaitingForDevice);
    assert_eq!(port.service().unwrap(), ServiceEvent::WaitingForDevice);
    dev.set_pf_silent(false);
    assert_eq!(port.service().unwrap(), ServiceEvent::Recovered);
    rx_and_check(&dev, &mut rx[0], &mut cache, 100, 10);
    drop((rx, tx));
    drop(cache);
    assert_eq!(pool.available(), 512);
}

/// Without an admin MAC the VF keeps the MAC it chose across PF resets.
#[test]
fn random_mac_survives_a_pf_reset() {
    let dev = vf(None);
    let pool = pool(&dev, "igbvf-reset-mac", 256);
    let mut cache = pool.cache();
    let mut port = port(&dev, 64);
    let mac = port.info().mac;
    assert_eq!(port.pf_mac(), None);
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    let mut b = Burst::new();
    rx[0].rx_burst(&mut cache, &mut b, 32);
    dev.pf_reset_begin();
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    rx[0].rx_burst(&mut cache, &mut b, 32);
    tx[0].tx_burst(&mut cache, &mut b);
    dev.pf_reset_end();
    assert_eq!(port.service().unwrap(), ServiceEvent::Recovered);
    assert_eq!(port.info().mac, mac, "MAC kept across the reset");
    drop((rx, tx));
    drop(cache);
}

/// The I350 VF works with its single queue pair.
#[test]
fn i350_single_queue_rx_and_tx() {
    let dev = model(Flavor::I350, Some(PF_MAC));
    let pool = pool(&dev, "igbvf-i350", 256);
    let mut cache = pool.cache();
    let mut port = port(&dev, 64);
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    let mut b = Burst::new();
    rx[0].rx_burst(&mut cache, &mut b, 32);
    rx_and_check(&dev, &mut rx[0], &mut cache, 0, 50);
    b.push(tx_packet(&mut cache, &frame(7, 100)));
    assert_eq!(tx[0].tx_burst(&mut cache, &mut b), 1);
    assert!(dev.wait_for(PATIENCE, |m| m.wire.len() == 1));
    assert_eq!(dev.take_wire()[0], frame(7, 100));
    reclaim_all(&mut tx[0], &mut cache);
    drop((rx, tx));
    drop(cache);
}

/// An I350 VF has one queue pair (C.8): the driver refuses a second one
/// instead of touching queue 1 registers that do not exist (which the
/// model would catch as `queue-not-present`).
#[test]
fn i350_has_one_queue_pair() {
    let dev = model(Flavor::I350, Some(PF_MAC));
    let mut port = port(&dev, 64);
    assert_eq!(port.info().capabilities.max_rx_queues, 1);
    assert!(matches!(
        port.queues(2, 2),
        Err(crate::port::PortError::TooManyQueues { .. })
    ));
    assert!(port.queues(1, 1).is_ok());
}

/// On an I350 VF the VLAN of a looped-back frame (LB) is big-endian; the
/// driver swaps it back (C.4.1, C.9 #14). The model writes it as the
/// hardware does.
#[test]
fn i350_loopback_vlan_is_swapped_back() {
    let dev = model(Flavor::I350, Some(PF_MAC));
    let pool = pool(&dev, "igbvf-i350-vlan", 256);
    let mut cache = pool.cache();
    let mut port = port(&dev, 64);
    let (mut rx, _tx) = port.queues(1, 1).unwrap();
    let mut b = Burst::new();
    rx[0].rx_burst(&mut cache, &mut b, 32);
    let f = |loopback| RxFrame {
        data: frame(1, 80),
        vlan: Some(0x0064),
        loopback,
        ..RxFrame::default()
    };
    assert!(dev.inject_frame(0, f(false)));
    assert!(dev.inject_frame(0, f(true)));
    let mut tci = Vec::new();
    rx_until(&mut rx[0], &mut cache, 32, |p, cache| {
        tci.push(p.vlan_tci());
        cache.free(p);
        tci.len() == 2
    });
    assert_eq!(tci[0], 0x0064);
    assert_eq!(
        tci[1], 0x0064,
        "the looped-back frame's tag is swapped back"
    );
    drop(rx);
    drop(cache);
}
