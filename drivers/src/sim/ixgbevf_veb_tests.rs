//! The switch's forwarding and each VF's receive filter, at the model
//! level: the PF state comes from real mailbox requests handed to the
//! model's PF (`IxgbePf`, the words written here from nic-facts.md A.5.3,
//! not by the driver), frames come from the wire side
//! ([`Veb::inject_from_wire`]), and the switch's counters say who took
//! what. The ports' tests (`pmd/ixgbevf/veb_tests.rs`) carry frames
//! through real rings.

use super::ixgbevf::{Flavor, Ixgbevf, IxgbevfConfig, IxgbevfSim};
use super::ixgbevf_pf::{self as pf, Api};
use super::mailbox::{PfAnswer, PfPolicy, WORDS};
use super::veb::{mc_hash, PortCounters, Veb, VebConfig, VebError, MAX_PORTS};
use super::Iommu;
use crate::net::MacAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(20);
const MAC0: MacAddr = MacAddr([0x02, 0, 0, 0, 0x10, 0x00]);
const MAC1: MacAddr = MacAddr([0x02, 0, 0, 0, 0x10, 0x01]);
const BROADCAST: MacAddr = MacAddr([0xFF; 6]);
/// Two multicast groups whose hashes differ under every filter type.
const M1: MacAddr = MacAddr([0x01, 0x00, 0x5E, 0x00, 0x12, 0x34]);
const M2: MacAddr = MacAddr([0x01, 0x00, 0x5E, 0x00, 0xAB, 0xCD]);

/// Hand one request to the model's PF as the mailbox would (the words
/// written, then the request), and return the reply.
fn pf_msg(dev: &IxgbevfSim, words: &[u32]) -> Vec<u32> {
    let mut msg = [0u32; WORDS];
    msg[..words.len()].copy_from_slice(words);
    dev.with(|m, cx| {
        m.pf.written(((1u32 << words.len()) - 1) as u16);
        match m.pf.request(Instant::now(), &msg, cx.iommu.violations()) {
            PfAnswer::Reply(r) => r,
            other => panic!("no reply to {:#x}: {other:?}", words[0]),
        }
    })
}

/// The reply's word 0 without CTS is `id | SUCCESS`.
fn ok(dev: &IxgbevfSim, words: &[u32]) {
    let r = pf_msg(dev, words);
    assert_eq!(r[0] & !pf::CTS, words[0] | pf::SUCCESS, "{r:x?}");
}

/// A VF on `veb`, reset and on API 1.3 (A.6 steps 10-11).
fn vf_on(
    veb: &Arc<Veb>,
    flavor: Flavor,
    mac: MacAddr,
    setup: impl FnOnce(&mut IxgbevfConfig),
) -> IxgbevfSim {
    let mut cfg = IxgbevfConfig::new(flavor, Some(mac));
    setup(&mut cfg);
    let dev = Ixgbevf::start_on(veb, cfg, &Iommu::new()).unwrap();
    let r = pf_msg(&dev, &[pf::VF_RESET]);
    assert_eq!(r[0], pf::VF_RESET | pf::SUCCESS);
    ok(&dev, &[pf::API_NEGOTIATE, Api::V1_3.0, 0]);
    publish(&dev);
    dev
}

/// Let the model publish what its PF now holds (one device pass).
fn publish(dev: &IxgbevfSim) {
    dev.flush();
}

/// SET_MULTICAST with these hash vectors (A.5.3: count in MSGINFO, two
/// 16-bit vectors per word, lowest first).
fn set_multicast(dev: &IxgbevfSim, hashes: &[u16]) {
    let mut w = vec![pf::SET_MULTICAST | (hashes.len() as u32) << pf::MSGINFO_SHIFT];
    w.extend((0..15).map(|i| {
        let at = |k: usize| hashes.get(k).copied().unwrap_or(0) as u32;
        at(2 * i) | at(2 * i + 1) << 16
    }));
    ok(dev, &w);
    publish(dev);
}

/// UPDATE_XCAST_MODE; returns the mode the PF applied.
fn xcast(dev: &IxgbevfSim, mode: u32) -> u32 {
    let r = pf_msg(dev, &[pf::UPDATE_XCAST_MODE, mode]);
    assert_eq!(
        r[0] & !pf::CTS,
        pf::UPDATE_XCAST_MODE | pf::SUCCESS,
        "{r:x?}"
    );
    publish(dev);
    r[1]
}

fn eth(dst: MacAddr, src: MacAddr) -> Vec<u8> {
    let mut f = dst.0.to_vec();
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&[0x88, 0xB5]);
    f.resize(60, 0x5A);
    f
}

/// A frame with an 802.1Q tag for `vid`.
fn tagged(dst: MacAddr, src: MacAddr, vid: u16) -> Vec<u8> {
    let mut f = dst.0.to_vec();
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&[0x81, 0x00]);
    f.extend_from_slice(&vid.to_be_bytes());
    f.extend_from_slice(&[0x88, 0xB5]);
    f.resize(64, 0x5A);
    f
}

fn counters(veb: &Veb, dev: &IxgbevfSim) -> PortCounters {
    veb.port_counters(dev.veb_port().unwrap()).unwrap()
}

/// (taken, refused) by each VF since `before`.
fn delta(veb: &Veb, dev: &IxgbevfSim, before: PortCounters) -> (u64, u64) {
    let c = counters(veb, dev);
    (
        c.rx_frames - before.rx_frames,
        c.rx_filtered - before.rx_filtered,
    )
}

/// Multicast reaches a VF when its hash (under the PF's mc_filter_type)
/// is in the VF's SET_MULTICAST list, in NONE and MULTI alike; every
/// group with ALLMULTI (trusted VF only: an untrusted one is held to
/// MULTI); broadcast always. Each refusal is counted.
#[test]
fn multicast_follows_the_xcast_mode_and_the_hash_list() {
    for ty in 0..4 {
        let veb = Veb::new(VebConfig::default());
        let trusted = vf_on(&veb, Flavor::X540, MAC0, |c| {
            c.pf.trusted = true;
            c.pf.mc_filter_type = ty;
        });
        let untrusted = vf_on(&veb, Flavor::X540, MAC1, |c| c.pf.mc_filter_type = ty);
        assert_ne!(mc_hash(M1, ty), mc_hash(M2, ty));
        set_multicast(&trusted, &[mc_hash(M1, ty)]);
        set_multicast(&untrusted, &[mc_hash(M1, ty)]);
        let vfs = [&trusted, &untrusted];
        let send = |dst: MacAddr| -> Vec<(u64, u64)> {
            let before: Vec<_> = vfs.iter().map(|d| counters(&veb, d)).collect();
            veb.inject_from_wire(&eth(dst, MacAddr([0x02, 0, 0, 0, 0, 0x77])));
            vfs.iter()
                .zip(before)
                .map(|(d, b)| delta(&veb, d, b))
                .collect()
        };
        for mode in [0, 1] {
            for d in vfs {
                assert_eq!(xcast(d, mode), mode);
            }
            assert_eq!(
                send(M1),
                [(1, 0), (1, 0)],
                "type {ty} mode {mode}: listed group"
            );
            assert_eq!(
                send(M2),
                [(0, 1), (0, 1)],
                "type {ty} mode {mode}: other group"
            );
            assert_eq!(send(BROADCAST), [(1, 0), (1, 0)]);
        }
        assert_eq!(xcast(&trusted, 2), 2);
        assert_eq!(xcast(&untrusted, 2), 1, "an untrusted VF is held to MULTI");
        assert_eq!(send(M2), [(1, 0), (0, 1)]);
        // An empty list: only ALLMULTI still takes the group.
        set_multicast(&untrusted, &[]);
        assert_eq!(send(M1), [(1, 0), (0, 1)]);
    }
}

/// PROMISC (API 1.3, not 82599, the PF itself promiscuous, trusted VF):
/// unicast for another MAC reaches the VF as well; the others do not see
/// it. From the wire a unicast frame for no VF is counted.
#[test]
fn promiscuous_vf_takes_unknown_unicast() {
    let veb = Veb::new(VebConfig::default());
    let p = vf_on(&veb, Flavor::X550, MAC0, |c| {
        c.pf.trusted = true;
        c.pf.pf_promisc = true;
    });
    let q = vf_on(&veb, Flavor::X550, MAC1, |_| {});
    let other = MacAddr([0x02, 0, 0, 0, 0x33, 0x33]);
    assert_eq!(veb.inject_from_wire(&eth(other, MAC1)), 0);
    assert_eq!(veb.counters().wire_unknown, 1);
    assert_eq!(xcast(&p, 3), 3);
    let (bp, bq) = (counters(&veb, &p), counters(&veb, &q));
    assert_eq!(veb.inject_from_wire(&eth(other, MAC1)), 1);
    assert_eq!(delta(&veb, &p, bp), (1, 0));
    assert_eq!(delta(&veb, &q, bq), (0, 0));
    // A frame for q's MAC goes to q only, promiscuous or not.
    assert_eq!(veb.inject_from_wire(&eth(MAC1, other)), 1);
    assert_eq!(delta(&veb, &q, bq), (1, 0));
}

/// VLAN: after VF_RESET only VLAN 0 (untagged) passes (A.5.4); a tagged
/// frame passes once SET_VLAN adds its id, and not after it is removed.
#[test]
fn vlan_filter_follows_set_vlan() {
    let veb = Veb::new(VebConfig::default());
    let d = vf_on(&veb, Flavor::X82599, MAC0, |_| {});
    let src = MacAddr([0x02, 0, 0, 0, 0, 0x77]);
    let b = counters(&veb, &d);
    veb.inject_from_wire(&tagged(MAC0, src, 5));
    veb.inject_from_wire(&eth(MAC0, src));
    assert_eq!(delta(&veb, &d, b), (1, 1));
    ok(&d, &[pf::SET_VLAN | 1 << pf::MSGINFO_SHIFT, 5]);
    publish(&d);
    veb.inject_from_wire(&tagged(MAC0, src, 5));
    veb.inject_from_wire(&tagged(BROADCAST, src, 5));
    veb.inject_from_wire(&tagged(BROADCAST, src, 6));
    assert_eq!(delta(&veb, &d, b), (3, 2));
    ok(&d, &[pf::SET_VLAN, 5]);
    publish(&d);
    veb.inject_from_wire(&tagged(MAC0, src, 5));
    assert_eq!(delta(&veb, &d, b), (3, 3));
}

/// The MC hash takes the address bits A.5.3 names for each filter type.
#[test]
fn mc_hash_takes_the_bit_ranges_of_the_facts() {
    // Bytes 4..5 = 0xAB, 0xCD: address bits 47:32 = 0xCDAB.
    let m = MacAddr([0x01, 0, 0x5E, 0, 0xAB, 0xCD]);
    assert_eq!(mc_hash(m, 0), 0xCDA); // bits 47:36
    assert_eq!(mc_hash(m, 1), (0xCDAB >> 3) & 0xFFF); // 46:35
    assert_eq!(mc_hash(m, 2), (0xCDAB >> 2) & 0xFFF); // 45:34
    assert_eq!(mc_hash(m, 3), 0xDAB); // 43:32
}

/// Ports are numbered from 0, reused when a VF's model goes, and there
/// are at most [`MAX_PORTS`].
#[test]
fn ports_attach_and_detach() {
    let veb = Veb::new(VebConfig::default());
    let a = vf_on(&veb, Flavor::X82599, MAC0, |_| {});
    let b = vf_on(&veb, Flavor::X82599, MAC1, |_| {});
    assert_eq!((a.veb_port(), b.veb_port()), (Some(0), Some(1)));
    drop(a);
    assert_eq!(veb.ports(), vec![1]);
    assert_eq!(veb.port_counters(0), Err(VebError::NoPort(0)));
    let c = vf_on(&veb, Flavor::X82599, MAC0, |_| {});
    assert_eq!(c.veb_port(), Some(0));
    let held: Vec<_> = (2..MAX_PORTS).map(|_| veb.attach().unwrap()).collect();
    assert_eq!(veb.attach().map(|p| p.port()), Err(VebError::Full));
    drop(held);
    assert_eq!(veb.ports(), vec![0, 1]);
}

/// PF-wide events reach every VF on its own thread: a paused device
/// applies nothing (and the wait says so), then catches up; the link
/// and the reset indication follow.
#[test]
fn pf_events_are_applied_by_each_vf() {
    let veb = Veb::new(VebConfig::default());
    let a = vf_on(&veb, Flavor::X82599, MAC0, |_| {});
    let b = vf_on(&veb, Flavor::X550, MAC1, |_| {});
    b.pause();
    veb.set_link(false);
    assert!(!veb.wait_applied(Duration::from_millis(50)));
    assert!(!a.with(|m, _| m.link_up));
    assert!(b.with(|m, _| m.link_up));
    b.resume();
    assert!(veb.wait_applied(PATIENCE));
    assert!(!b.with(|m, _| m.link_up));
    assert!(!veb.link_up());
    // Nothing is switched with the link down; counted.
    assert_eq!(veb.inject_from_wire(&eth(MAC0, MAC1)), 0);
    assert_eq!(veb.counters().down_drops, 1);
    veb.set_link(true);
    veb.pf_reset_begin();
    assert!(veb.wait_applied(PATIENCE));
    for d in [&a, &b] {
        assert!(d.with(|m, _| m.pf_in_reset && !m.pf.cts && !m.link_up));
    }
    veb.pf_reset_end();
    assert!(veb.wait_applied(PATIENCE));
    for d in [&a, &b] {
        assert!(d.with(|m, _| !m.pf_in_reset && m.link_up));
    }
    assert!(veb.link_up());
    // A VF attached while the PF is in reset starts in it.
    veb.pf_reset_begin();
    let c = Ixgbevf::start_on(&veb, IxgbevfConfig::new(Flavor::X540, None), &Iommu::new()).unwrap();
    assert!(veb.wait_applied(PATIENCE));
    assert!(c.with(|m, _| m.pf_in_reset));
    veb.pf_reset_end();
    assert!(veb.wait_applied(PATIENCE));
    // The admin MAC reaches the PF's view and the switch.
    veb.admin_set_mac(0, MacAddr([0x02, 0, 0, 0, 0x55, 0x55]))
        .unwrap();
    assert!(veb.wait_applied(PATIENCE));
    assert_eq!(
        veb.filter(0).unwrap().unicast.first().copied(),
        Some(MacAddr([0x02, 0, 0, 0, 0x55, 0x55]))
    );
    assert_eq!(
        a.pf(|p| p.vf_mac),
        Some(MacAddr([0x02, 0, 0, 0, 0x55, 0x55]))
    );
    assert_eq!(veb.admin_set_mac(9, MAC0), Err(VebError::NoPort(9)));
}

/// A model its host builds and runs itself (the vfio-user server's way):
/// `Ixgbevf::new_on`, then the host's waker; the switch calls it for
/// every event and frame for that VF, from the thread that posts them.
#[test]
fn a_host_built_model_is_woken_through_its_waker() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let veb = Veb::new(VebConfig::default());
    let m = Ixgbevf::new_on(&veb, IxgbevfConfig::new(Flavor::X540, Some(MAC0)), 0).unwrap();
    let port = m.veb_port().unwrap();
    assert_eq!(
        veb.filter(port).unwrap().unicast.first().copied(),
        Some(MAC0),
        "published at once"
    );
    let calls = Arc::new(AtomicU64::new(0));
    let c = Arc::clone(&calls);
    // Relaxed: a count read after the posting calls returned, on this
    // thread; nothing else is ordered by it.
    veb.set_waker(
        port,
        super::Waker::new(move || {
            c.fetch_add(1, Ordering::Relaxed);
        }),
    )
    .unwrap();
    veb.set_link(false);
    veb.admin_set_mac(port, MAC1).unwrap();
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    // Not run, so not applied.
    assert!(!veb.wait_applied(Duration::from_millis(20)));
    drop(m);
    assert!(veb.ports().is_empty());
    assert!(veb.wait_applied(PATIENCE));
}
