//! iavf models on one modelled PF's switch ([`super::veb`]), each driven
//! by the raw register-level driver of [`super::iavf_rules`] in its own
//! DMA space: frames both ways with their contents, unknown unicast and
//! broadcast to the uplink, the filter each VF's PF publishes, and the
//! PF-wide faults (reset, link) reaching every VF.

use super::iavf::*;
use super::iavf_pf::{self as pf, op};
use super::iavf_queue as q;
use super::iavf_rules::{cfg, eth_addrs, le32, raw_on, u64_at, Raw, PATIENCE, POOL, RING, TX_CMD};
use super::veb::{Filter, Multicast, Veb, VebConfig, Vlans};
use crate::mbuf::Mbuf;
use crate::memory::DmaSlice;
use crate::net::MacAddr;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xA1];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xB2];
const UNKNOWN: [u8; 6] = [0x02, 0, 0, 0, 0, 0xEE];
const BROADCAST: [u8; 6] = [0xFF; 6];
const GROUP: [u8; 6] = [0x01, 0x00, 0x5E, 0, 0, 7];
const OTHER_GROUP: [u8; 6] = [0x01, 0x00, 0x5E, 0, 0, 8];

/// A frame from `src` to `dst` whose payload tells `seed` and its length.
fn frame(dst: [u8; 6], src: [u8; 6], len: usize, seed: u8) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(3) ^ seed).collect();
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    // An ethertype no parser takes for IP: RSS leaves it on queue 0.
    f[12..14].copy_from_slice(&0x88B5u16.to_be_bytes());
    f
}

/// `frame` with an 802.1Q tag of `vlan` after the MACs.
fn tagged(dst: [u8; 6], src: [u8; 6], vlan: u16) -> Vec<u8> {
    let mut f = frame(dst, src, 64, 0x11);
    f.splice(12..12, [0x81, 0x00, (vlan >> 8) as u8, vlan as u8]);
    f
}

/// A raw driver with queue 0 up on a VF of the switch: RX buffers behind
/// the tail, one TX buffer, the ring positions.
struct Vf {
    t: Raw,
    port: usize,
    tx: DmaSlice,
    rx: DmaSlice,
    slots: Vec<Option<Mbuf>>,
    rx_next: usize,
    rx_tail: usize,
    tx_next: usize,
    m: Mbuf,
}

impl Vf {
    fn on(veb: &Arc<Veb>, mac: [u8; 6]) -> Vf {
        let t = raw_on(Some(veb), cfg_mac(mac));
        let port = t.dev.veb_port().expect("on the switch");
        let (tx, rx, bufs) = t.up(RING as usize - 1);
        assert_eq!(t.recv().op, op::EVENT, "the link state");
        Vf::with_rings(t, port, tx, rx, bufs)
    }

    fn with_rings(t: Raw, port: usize, tx: DmaSlice, rx: DmaSlice, bufs: Vec<Mbuf>) -> Vf {
        let mut slots: Vec<Option<Mbuf>> = bufs.into_iter().map(Some).collect();
        slots.push(None);
        let m = t.buf();
        Vf {
            t,
            port,
            tx,
            rx,
            slots,
            rx_next: 0,
            rx_tail: RING as usize - 1,
            tx_next: 0,
            m,
        }
    }

    /// Send `f` on TX queue 0 and wait for its write-back.
    fn send(&mut self, f: &[u8]) {
        let s = self.tx_next;
        self.m.set_len(0).unwrap();
        self.m.append(f.len()).unwrap().copy_from_slice(f);
        self.t.post_tx(&self.tx, s, &self.m, TX_CMD);
        self.tx_next = (s + 1) % RING as usize;
        // The descriptor before the doorbell: pairs with the device's read.
        fence(Ordering::Release);
        self.t.w(QTX_TAIL, self.tx_next as u32);
        self.t.wait_tx_done(&self.tx, s);
    }

    /// The next frame on RX queue 0; its buffer is posted again.
    fn recv(&mut self) -> Vec<u8> {
        let s = self.rx_next;
        let qw1 = self.t.wait_rx_dd(&self.rx, s);
        let len = ((qw1 >> q::RX_LEN_SHIFT) & 0x3FFF) as usize;
        let mut b = self.slots[s].take().expect("a posted buffer");
        b.set_len(len).unwrap();
        let data = b.data().to_vec();
        b.set_len(0).unwrap();
        self.t.post_rx(&self.rx, self.rx_tail, &b);
        self.slots[self.rx_tail] = Some(b);
        self.rx_tail = (self.rx_tail + 1) % RING as usize;
        self.rx_next = (s + 1) % RING as usize;
        // As in `send`.
        fence(Ordering::Release);
        self.t.w(QRX_TAIL, self.rx_tail as u32);
        data
    }

    /// Nothing arrived on RX queue 0 (after a few device passes).
    fn nothing_received(&self) -> bool {
        for _ in 0..20 {
            self.t.dev.flush();
        }
        u64_at(&self.rx, 32 * self.rx_next + 8) & q::RX_DD == 0
    }

    fn request_ok(&self, opc: u32, data: &[u8]) {
        self.t.ok(opc, data);
    }

    /// Stop the queues, give every buffer back, no violation.
    fn finish(self) {
        let Vf { t, slots, m, .. } = self;
        t.stop_and_free(slots.into_iter().flatten().collect());
        t.pool.free(m);
        assert_eq!(t.pool.available(), POOL as usize, "a buffer was lost");
        t.dev.violations().assert_clean();
    }
}

fn cfg_mac(mac: [u8; 6]) -> IavfConfig {
    let mut c = cfg(Flavor::Xl710);
    c.pf.admin_mac = Some(MacAddr(mac));
    c
}

/// `n` frames each way between two VFs of one PF, every payload checked,
/// both rings wrapping; nothing reaches the uplink.
#[test]
fn two_iavf_vfs_exchange_payload_checked_frames_both_ways() {
    let veb = Veb::new(VebConfig::default());
    let mut a = Vf::on(&veb, MAC_A);
    let mut b = Vf::on(&veb, MAC_B);
    assert_ne!(a.port, b.port);
    let n = 3 * RING as usize;
    for i in 0..n {
        let ab = frame(MAC_B, MAC_A, 60 + i % 200, i as u8);
        a.send(&ab);
        assert_eq!(b.recv(), ab, "A→B frame {i}");
        let ba = frame(MAC_A, MAC_B, 60 + (i * 7) % 900, 0x80 ^ i as u8);
        b.send(&ba);
        assert_eq!(a.recv(), ba, "B→A frame {i}");
    }
    assert!(veb.take_uplink().is_empty(), "unicast to a VF left the PF");
    assert!(a.t.dev.take_wire().is_empty() && b.t.dev.take_wire().is_empty());
    for vf in [&a, &b] {
        let c = veb.port_counters(vf.port).unwrap();
        assert_eq!((c.tx_frames, c.rx_frames), (n as u64, n as u64));
        assert_eq!((c.tx_spoofed, c.rx_filtered, c.inbox_overflow), (0, 0, 0));
    }
    a.finish();
    b.finish();
}

/// Unknown unicast goes to the uplink only; broadcast to the other VF
/// and the uplink; a frame with another VF's source MAC is dropped.
#[test]
fn unknown_unicast_and_broadcast_reach_the_uplink() {
    let veb = Veb::new(VebConfig::default());
    let mut a = Vf::on(&veb, MAC_A);
    let mut b = Vf::on(&veb, MAC_B);
    let unknown = frame(UNKNOWN, MAC_A, 100, 1);
    a.send(&unknown);
    assert_eq!(veb.take_uplink(), vec![unknown]);
    assert!(b.nothing_received());
    let bcast = frame(BROADCAST, MAC_A, 80, 2);
    a.send(&bcast);
    assert_eq!(b.recv(), bcast);
    assert_eq!(veb.take_uplink(), vec![bcast]);
    assert!(a.nothing_received(), "a frame came back to its sender");
    // Anti-spoofing: A may not send as B.
    a.send(&frame(MAC_A, MAC_B, 64, 3));
    assert_eq!(veb.port_counters(a.port).unwrap().tx_spoofed, 1);
    assert!(a.nothing_received() && veb.take_uplink().is_empty());
    // From the wire: to A's MAC, A only.
    let wire = frame(MAC_A, UNKNOWN, 70, 4);
    assert_eq!(veb.inject_from_wire(&wire), 1);
    assert_eq!(a.recv(), wire);
    assert!(b.nothing_received());
    a.finish();
    b.finish();
}

/// The filter each VF publishes is its PF's state: the admin MAC from
/// the start, ADD_ETH_ADDR's groups as exact multicast, ADD_VLAN's ids
/// (no VLAN filter: any VLAN), promiscuous only as in force, the admin's
/// new MAC.
#[test]
fn each_vf_publishes_its_pfs_filter() {
    let veb = Veb::new(VebConfig::default());
    let mut a = Vf::on(&veb, MAC_A);
    let b = Vf::on(&veb, MAC_B);
    let f = veb.filter(a.port).unwrap();
    assert_eq!(
        f,
        Filter {
            unicast: vec![MacAddr(MAC_A)],
            promisc_unicast: false,
            promisc_multicast: false,
            multicast: Multicast::Exact(Vec::new()),
            vlans: Vlans::Any,
        }
    );
    // Multicast: exact groups.
    let vsi = a.t.vsi.get();
    a.request_ok(op::ADD_ETH_ADDR, &eth_addrs(vsi, &[(GROUP, 2)]));
    a.t.dev.flush();
    assert_eq!(
        veb.filter(a.port).unwrap().multicast,
        Multicast::Exact(vec![MacAddr(GROUP)])
    );
    let g = frame(GROUP, UNKNOWN, 64, 5);
    assert_eq!(veb.inject_from_wire(&g), 1, "A only: B has no group");
    assert_eq!(a.recv(), g);
    assert_eq!(veb.inject_from_wire(&frame(OTHER_GROUP, UNKNOWN, 64, 6)), 0);
    // VLANs: with a filter, untagged and the listed ids only.
    assert_eq!(veb.inject_from_wire(&tagged(MAC_A, UNKNOWN, 7)), 1);
    a.recv();
    let mut vl = vsi.to_le_bytes().to_vec();
    vl.extend_from_slice(&1u16.to_le_bytes());
    vl.extend_from_slice(&5u16.to_le_bytes());
    vl.extend_from_slice(&0u16.to_le_bytes());
    a.request_ok(op::ADD_VLAN, &vl);
    a.t.dev.flush();
    assert_eq!(
        veb.filter(a.port).unwrap().vlans,
        Vlans::Only {
            ids: vec![0, 5],
            untagged: 0
        }
    );
    let before = veb.port_counters(a.port).unwrap().rx_filtered;
    assert_eq!(veb.inject_from_wire(&tagged(MAC_A, UNKNOWN, 7)), 0);
    assert_eq!(veb.port_counters(a.port).unwrap().rx_filtered, before + 1);
    let v5 = tagged(MAC_A, UNKNOWN, 5);
    assert_eq!(veb.inject_from_wire(&v5), 1);
    assert_eq!(a.recv(), v5);
    // Promiscuous: refused to an untrusted VF, so unknown unicast is not
    // taken; in force once trusted.
    let mut p = vsi.to_le_bytes().to_vec();
    p.extend_from_slice(&1u16.to_le_bytes());
    a.request_ok(op::CONFIG_PROMISCUOUS_MODE, &p);
    a.t.dev.flush();
    assert!(!veb.filter(a.port).unwrap().promisc_unicast);
    assert_eq!(veb.inject_from_wire(&frame(UNKNOWN, MAC_B, 64, 8)), 0);
    a.t.dev.set_trusted(true);
    a.request_ok(op::CONFIG_PROMISCUOUS_MODE, &p);
    a.t.dev.flush();
    assert!(veb.filter(a.port).unwrap().promisc_unicast);
    let u = frame(UNKNOWN, MAC_B, 64, 9);
    assert_eq!(veb.inject_from_wire(&u), 1);
    assert_eq!(a.recv(), u);
    // The admin's MAC, applied on A's device thread.
    let new = [0x02, 0, 0, 0, 0x55, 0x55];
    veb.admin_set_mac(a.port, MacAddr(new)).unwrap();
    assert!(veb.wait_applied(PATIENCE));
    assert_eq!(veb.filter(a.port).unwrap().unicast[0], MacAddr(new));
    assert!(!veb.filter(a.port).unwrap().owns(MacAddr(MAC_A)));
    assert_eq!(a.t.dev.pf(|p| p.setup.admin_mac), Some(MacAddr(new)));
    a.finish();
    b.finish();
}

/// A PF reset reaches both VFs (RESET_IMPENDING, the AQ off, RSTAT
/// INPROGRESS); nothing is switched meanwhile; once the PF is back both
/// negotiate again and exchange frames. A link flap reaches both as
/// LINK_CHANGE.
#[test]
fn a_pf_reset_reaches_both_vfs_and_both_recover() {
    let veb = Veb::new(VebConfig::default());
    let vfs = [Vf::on(&veb, MAC_A), Vf::on(&veb, MAC_B)];
    // Link down then up: LINK_CHANGE with the state, on both.
    for up in [false, true] {
        veb.set_link(up);
        assert!(veb.wait_applied(PATIENCE));
        for vf in &vfs {
            let e = vf.t.recv();
            assert_eq!(e.op, op::EVENT);
            assert_eq!(le32(&e.data, 0) as i32, pf::event::LINK_CHANGE);
            assert_eq!(e.data[8], u8::from(up));
        }
    }
    veb.pf_reset_begin();
    assert!(veb.wait_applied(PATIENCE));
    for vf in &vfs {
        let e = vf.t.try_recv(1).expect("RESET_IMPENDING");
        assert_eq!(le32(&e.data, 0) as i32, pf::event::RESET_IMPENDING);
        assert_eq!(vf.t.r(VF_ARQLEN) & super::iavf_aq::LEN_ENABLE, 0);
        assert_eq!(vf.t.r(VFGEN_RSTAT), VFR_INPROGRESS);
        assert_eq!(vf.t.dev.rx_owned(0), 0, "queues stopped");
    }
    let down = veb.counters().down_drops;
    assert_eq!(veb.inject_from_wire(&frame(MAC_A, UNKNOWN, 64, 1)), 0);
    assert_eq!(veb.counters().down_drops, down + 1);
    veb.pf_reset_end();
    assert!(veb.wait_applied(PATIENCE));
    let mut back = vfs.map(|vf| {
        let Vf {
            t, port, slots, m, ..
        } = vf;
        // The PF's VFACTIVE comes without the VF (B.7, Linux waits for it).
        t.dev.flush();
        assert_eq!(t.r(VFGEN_RSTAT), VFR_VFACTIVE);
        // The reset gave every buffer back.
        for b in slots.into_iter().flatten() {
            t.pool.free(b);
        }
        t.pool.free(m);
        t.init_aq();
        assert_eq!(t.r(VFGEN_RSTAT), VFR_VFACTIVE);
        t.version();
        t.resources(pf::cap::L2 | pf::cap::RSS_PF);
        let (tx, rx, bufs) = t.up_after_init();
        // The VF re-enabled its ARQ, so it has seen the reset: the RX
        // tail it wrote before ENABLE_QUEUES counts (Linux refills its RX
        // ring before CONFIG_VSI_QUEUES goes out), no second write needed.
        t.dev.flush();
        assert_eq!(t.dev.rx_owned(0), RING as usize - 1);
        assert_eq!(t.recv().op, op::EVENT, "the link state");
        Vf::with_rings(t, port, tx, rx, bufs)
    });
    for i in 0..2 * RING as usize {
        let ab = frame(MAC_B, MAC_A, 60 + i, i as u8);
        back[0].send(&ab);
        assert_eq!(back[1].recv(), ab, "A→B after the reset, frame {i}");
        let ba = frame(MAC_A, MAC_B, 61 + i, !i as u8);
        back[1].send(&ba);
        assert_eq!(back[0].recv(), ba, "B→A after the reset, frame {i}");
    }
    assert!(veb.take_uplink().is_empty());
    for vf in back {
        vf.finish();
    }
}

/// The switch's events are applied by the iavf model's own fault
/// functions: the same as calling them on the model.
#[test]
fn switch_events_map_onto_the_models_fault_functions() {
    let veb = Veb::new(VebConfig::default());
    let m = Iavf::new_on(&veb, cfg_mac(MAC_A), 0).unwrap();
    let port = m.veb_port().unwrap();
    assert_eq!(
        veb.filter(port).unwrap().unicast,
        vec![MacAddr(MAC_A)],
        "published at once"
    );
    drop(m);
    assert!(veb.ports().is_empty());
    // A VF attached during a PF reset starts in it.
    veb.pf_reset_begin();
    let vf = Iavf::start_on(&veb, cfg_mac(MAC_B), &super::Iommu::new()).unwrap();
    assert!(veb.wait_applied(PATIENCE));
    assert!(vf.with(|m, _| m.pf_in_reset));
    assert_eq!(vf.rstat(), VFR_INPROGRESS);
    veb.pf_reset_end();
    assert!(veb.wait_applied(PATIENCE));
    assert!(vf.with(|m, _| !m.pf_in_reset));
    assert!(matches!(vf.rstat(), VFR_COMPLETED | VFR_VFACTIVE));
    vf.flush();
    assert_eq!(vf.rstat(), VFR_VFACTIVE, "the PF's VFACTIVE follows");
}
