//! The embedded switch (VEB) of one modelled 82599 / X540 / X550 PF: the
//! VFs of that PF, each an [`Ixgbevf`](super::ixgbevf::Ixgbevf) model on
//! its own device thread and possibly in its own DMA space, exchange
//! frames through it, and what leaves for the wire goes to the uplink.
//!
//! What the facts give and what is inferred:
//! - Transmit switching is always on for a VF (nic-facts.md A.8 #3). How
//!   the switch forwards is stated for the 82576's VMDq loopback
//!   (nic-facts-igbvf.md C.10.1 "VF ↔ VF / VF ↔ PF switching"), and taken
//!   here for the 82599 family **(inferred)**: a unicast frame whose
//!   destination is a VF's MAC (or one of its SET_MACVLAN addresses)
//!   goes to that VF only; broadcast, multicast and unknown unicast go to
//!   every other VF that accepts them and to the wire. A frame never
//!   comes back to its sender (there the 82576 facts note QEMU's igb model
//!   does it wrongly).
//! - A VF's MAC is the one its PF holds: the admin MAC, the VF_RESET
//!   reply's, or an accepted SET_MAC_ADDR (A.5.3, A.5.4).
//! - Receive filtering per VF (the Linux PF's VMOLR/MTA/VLVF programming
//!   is not in the facts, so the rules follow the mailbox messages, A.5.3):
//!   broadcast is always accepted; multicast when its MTA hash (A.5.3 "MC
//!   hash", the VF_RESET reply's mc_filter_type) is in the SET_MULTICAST
//!   list, or with ALLMULTI or PROMISC; NONE and MULTI filter alike,
//!   because SET_MULTICAST predates UPDATE_XCAST_MODE (API 1.0 vs 1.2), so
//!   the list must work without it **(inferred)**; unicast to another MAC
//!   only with PROMISC. The VLAN (the 802.1Q tag's id; an untagged frame
//!   is VLAN 0, or the port VLAN) must be in the VF's SET_VLAN list: A.5.4
//!   says VF_RESET re-adds VLAN 0 "so untagged traffic passes". Refused
//!   frames are counted per VF (`rx_filtered`).
//! - Source-MAC anti-spoofing (`VebConfig::spoof_check`, on by default as
//!   `ip link set ... spoofchk` is): a frame whose source is not one of
//!   the sender's MACs is dropped and counted (`tx_spoofed`). The facts
//!   have no section on it; the Linux ixgbe PF's "Spoofed packets
//!   detected" reports (anchors.md §4) show it exists. A VF with no MAC
//!   yet can send nothing **(inferred)**.
//! - A frame switched from another VF carries the LB status bit (A.4.2:
//!   LB 0x40000; nic-facts-igbvf.md: "the frame came from another pool");
//!   one from the wire does not.
//! - With the PF's link down, or the PF in reset, nothing is switched:
//!   counted as `down_drops` (the facts do not say whether VF-to-VF
//!   switching survives a link loss; the model drops, which is what a
//!   driver must survive anyway).
//!
//! Delivery never takes the receiver's lock: the switch copies the bytes
//! into the receiver's inbox (bounded like a receive FIFO; overflow is the
//! receiver's `inbox_overflow` drop) and rings its [`Waker`]; the receiver
//! drains the inbox on its own device thread. The lock order is a
//! device's core, then the switch, then a bell (a leaf).
//!
//! PF-wide faults (reset, link, admin MAC) are posted to every attached
//! VF and applied by each model on its own thread, with the DMA space it
//! has there; [`Veb::wait_applied`] waits until all have.

use super::adv::RxFrame;
use super::ixgbevf_pf::{IxgbePf, Xcast};
use super::Waker;
use crate::net::MacAddr;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The most VFs one switch has ports for: 64 pools. nic-facts.md A.5.4
/// speaks of "more than 32 pools" (2 queues each); the maximum itself is
/// not stated **(inferred)**.
pub const MAX_PORTS: usize = 64;

/// The switch's sizes and policy.
#[derive(Clone, Debug)]
pub struct VebConfig {
    /// Frames a VF's inbox holds before the switch drops for it (its RX
    /// FIFO; the facts give no size, a model choice).
    pub inbox_frames: usize,
    /// Frames the uplink keeps for tests before it drops (counted).
    pub uplink_frames: usize,
    /// Drop frames whose source MAC is not the sender's.
    pub spoof_check: bool,
}

impl Default for VebConfig {
    fn default() -> VebConfig {
        VebConfig {
            inbox_frames: 1024,
            uplink_frames: 4096,
            spoof_check: true,
        }
    }
}

/// Errors attaching a VF or acting on one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VebError {
    /// Every port is taken.
    #[error("the switch has all its {MAX_PORTS} ports taken")]
    Full,
    /// No VF at that port.
    #[error("no VF attached at switch port {0}")]
    NoPort(usize),
}

/// A PF-wide event, applied by the VF model on its own thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PfEvent {
    /// The PF starts a reset ([`Ixgbevf::pf_reset_begin`](super::ixgbevf::Ixgbevf::pf_reset_begin)).
    ResetBegin,
    /// The PF is back.
    ResetEnd,
    /// The PF's link went down (false) or up.
    Link(bool),
    /// The admin set this VF's MAC.
    AdminMac(MacAddr),
}

/// What the switch did for one VF.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortCounters {
    /// Frames the VF sent that the switch took.
    pub tx_frames: u64,
    /// Frames the VF sent with a source MAC not its own, dropped.
    pub tx_spoofed: u64,
    /// Frames put in this VF's inbox.
    pub rx_frames: u64,
    /// Frames this VF's filter refused (MAC, multicast mode and hash,
    /// VLAN).
    pub rx_filtered: u64,
    /// Frames for this VF dropped because its inbox was full.
    pub inbox_overflow: u64,
}

/// What the switch did as a whole.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VebCounters {
    /// Frames sent out of the uplink (kept, or dropped past the cap).
    pub uplink_frames: u64,
    /// Uplink frames dropped because the test kept none (past the cap).
    pub uplink_dropped: u64,
    /// Frames not switched: the PF's link down or the PF in reset.
    pub down_drops: u64,
    /// Unicast frames from the wire whose destination is no VF's MAC
    /// (only promiscuous VFs get them).
    pub wire_unknown: u64,
}

/// The VF filter state the switch decides on: a copy of what the PF
/// holds for the VF ([`IxgbePf`]), published by the VF model when it
/// changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// The VF's MAC (admin, VF_RESET or SET_MAC_ADDR).
    pub mac: Option<MacAddr>,
    /// SET_MACVLAN addresses.
    pub macvlans: Vec<MacAddr>,
    /// UPDATE_XCAST_MODE as applied.
    pub xcast: Option<Xcast>,
    /// SET_MULTICAST hash vectors.
    pub mc_hashes: Vec<u16>,
    /// mc_filter_type (A.5.3).
    pub mc_filter_type: u32,
    /// SET_VLAN list.
    pub vlans: Vec<u16>,
    /// The admin's port VLAN.
    pub port_vlan: Option<u16>,
}

impl Filter {
    /// The filter the PF holds for a VF now.
    pub fn of(pf: &IxgbePf) -> Filter {
        Filter {
            mac: pf.vf_mac,
            macvlans: pf.macvlans.clone(),
            xcast: Some(pf.xcast),
            mc_hashes: pf.mc_hashes.clone(),
            mc_filter_type: pf.setup.mc_filter_type,
            vlans: pf.vlans.clone(),
            port_vlan: pf.setup.port_vlan,
        }
    }

    /// Same as [`of`](Self::of) would give, without building one.
    pub fn same_as(&self, pf: &IxgbePf) -> bool {
        self.mac == pf.vf_mac
            && self.macvlans == pf.macvlans
            && self.xcast == Some(pf.xcast)
            && self.mc_hashes == pf.mc_hashes
            && self.mc_filter_type == pf.setup.mc_filter_type
            && self.vlans == pf.vlans
            && self.port_vlan == pf.setup.port_vlan
    }

    /// One of the VF's unicast addresses.
    pub fn owns(&self, mac: MacAddr) -> bool {
        self.mac == Some(mac) || self.macvlans.contains(&mac)
    }

    fn promisc(&self) -> bool {
        self.xcast == Some(Xcast::Promisc)
    }

    /// The VF takes `frame` (its destination already chosen it, for a
    /// unicast frame to one of its MACs).
    pub fn accepts(&self, frame: &[u8]) -> bool {
        let Some(dst) = dst_of(frame) else {
            return false;
        };
        let vlan = vlan_of(frame).unwrap_or(self.port_vlan.unwrap_or(0));
        if !self.vlans.contains(&vlan) {
            return false;
        }
        if dst.0 == [0xFF; 6] {
            return true;
        }
        if dst.0[0] & 1 != 0 {
            return match self.xcast {
                Some(Xcast::AllMulti | Xcast::Promisc) => true,
                _ => self
                    .mc_hashes
                    .iter()
                    .any(|h| h & 0xFFF == mc_hash(dst, self.mc_filter_type)),
            };
        }
        self.owns(dst) || self.promisc()
    }
}

/// The 12-bit MTA hash vector of `mac` (A.5.3 "MC hash"): type 0 takes
/// address bits 47:36, type 1 46:35, type 2 45:34, type 3 43:32, the
/// address numbered as a 48-bit little-endian value (bit 8·i + j is bit j
/// of byte i on the wire) **(inferred: the facts give the ranges only;
/// type 3's 43:32 is then byte 4 and the low nibble of byte 5)**.
pub fn mc_hash(mac: MacAddr, mc_filter_type: u32) -> u16 {
    let a = mac.0;
    let addr = u64::from_le_bytes([a[0], a[1], a[2], a[3], a[4], a[5], 0, 0]);
    let low_bit = match mc_filter_type & 3 {
        0 => 36,
        1 => 35,
        2 => 34,
        _ => 32,
    };
    ((addr >> low_bit) & 0xFFF) as u16
}

fn dst_of(frame: &[u8]) -> Option<MacAddr> {
    Some(MacAddr(frame.get(0..6)?.try_into().ok()?))
}

fn src_of(frame: &[u8]) -> Option<MacAddr> {
    Some(MacAddr(frame.get(6..12)?.try_into().ok()?))
}

/// 802.1Q TPID.
const TPID_8021Q: u16 = 0x8100;

/// The VLAN id of an 802.1Q-tagged frame, `None` if untagged.
fn vlan_of(frame: &[u8]) -> Option<u16> {
    let tpid = u16::from_be_bytes(frame.get(12..14)?.try_into().ok()?);
    if tpid != TPID_8021Q {
        return None;
    }
    let tci = u16::from_be_bytes(frame.get(14..16)?.try_into().ok()?);
    Some(tci & 0xFFF)
}

#[derive(Default)]
struct Slot {
    filter: Filter,
    inbox: VecDeque<RxFrame>,
    events: Vec<PfEvent>,
    posted: u64,
    applied: u64,
    waker: Option<Waker>,
    counters: PortCounters,
}

struct State {
    ports: Vec<Option<Slot>>,
    link_up: bool,
    in_reset: bool,
    uplink: VecDeque<Vec<u8>>,
    counters: VebCounters,
}

/// The switch. Share it as `Arc<Veb>`; VF models attach with
/// [`Ixgbevf::new_on`](super::ixgbevf::Ixgbevf::new_on) or
/// [`Ixgbevf::start_on`](super::ixgbevf::Ixgbevf::start_on).
pub struct Veb {
    cfg: VebConfig,
    state: Mutex<State>,
}

impl std::fmt::Debug for Veb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Veb").field("cfg", &self.cfg).finish()
    }
}

/// A VF's attachment: its port number; detaches when dropped (with the
/// model).
#[derive(Debug)]
pub struct VebPort {
    veb: Arc<Veb>,
    port: usize,
    published: Filter,
    /// Inbox frames taken, reused each pass.
    frames: VecDeque<RxFrame>,
    events: Vec<PfEvent>,
}

impl Drop for VebPort {
    fn drop(&mut self) {
        self.veb.lock().ports[self.port] = None;
    }
}

/// What a VF model takes from its port on one pass.
pub struct Taken<'a> {
    /// PF events, in order, to apply first.
    pub events: &'a [PfEvent],
    /// Frames switched to the VF, in order.
    pub frames: &'a mut VecDeque<RxFrame>,
}

impl VebPort {
    /// The port number (the VF's pool on the switch).
    pub fn port(&self) -> usize {
        self.port
    }

    /// The switch.
    pub fn veb(&self) -> &Arc<Veb> {
        &self.veb
    }

    /// Take the events and frames waiting for this VF.
    pub fn take(&mut self) -> Taken<'_> {
        self.events.clear();
        {
            let mut st = self.veb.lock();
            let slot = st.slot(self.port);
            std::mem::swap(&mut self.events, &mut slot.events);
            std::mem::swap(&mut self.frames, &mut slot.inbox);
        }
        Taken {
            events: &self.events,
            frames: &mut self.frames,
        }
    }

    /// After a pass: publish the PF's filter for the VF if it changed, and
    /// that the events taken are applied.
    pub fn publish(&mut self, pf: &IxgbePf) {
        let changed = !self.published.same_as(pf);
        if !changed && self.events.is_empty() {
            return;
        }
        if changed {
            self.published = Filter::of(pf);
        }
        let mut st = self.veb.lock();
        let slot = st.slot(self.port);
        if changed {
            slot.filter.clone_from(&self.published);
        }
        slot.applied += self.events.len() as u64;
        self.events.clear();
    }

    /// Switch the frames the VF transmitted (taken from `frames`).
    pub fn transmit(&self, frames: &mut Vec<Vec<u8>>) {
        if frames.is_empty() {
            return;
        }
        let mut st = self.veb.lock();
        for f in frames.drain(..) {
            st.switch(&self.veb.cfg, Some(self.port), f);
        }
    }
}

impl State {
    /// Frames put in any VF's inbox so far.
    fn delivered(&self) -> u64 {
        self.ports
            .iter()
            .flatten()
            .map(|s| s.counters.rx_frames)
            .sum()
    }

    fn slot(&mut self, port: usize) -> &mut Slot {
        self.ports[port]
            .as_mut()
            .expect("a VebPort's slot lives as long as it")
    }

    /// Put `frame` in `port`'s inbox if its filter takes it; `looped`
    /// when it comes from another VF (the LB status bit).
    fn offer(&mut self, cfg: &VebConfig, port: usize, frame: &[u8], looped: bool) -> bool {
        let Some(slot) = self.ports[port].as_mut() else {
            return false;
        };
        if !slot.filter.accepts(frame) {
            slot.counters.rx_filtered += 1;
            return false;
        }
        if slot.inbox.len() >= cfg.inbox_frames {
            slot.counters.inbox_overflow += 1;
            return false;
        }
        slot.inbox.push_back(RxFrame {
            data: frame.to_vec(),
            loopback: looped,
            ..RxFrame::default()
        });
        slot.counters.rx_frames += 1;
        if let Some(w) = &slot.waker {
            w.wake();
        }
        true
    }

    /// One frame from `from` (a VF) or from the wire (`None`).
    fn switch(&mut self, cfg: &VebConfig, from: Option<usize>, frame: Vec<u8>) {
        if let Some(p) = from {
            let slot = self.slot(p);
            if cfg.spoof_check && !src_of(&frame).is_some_and(|s| slot.filter.owns(s)) {
                slot.counters.tx_spoofed += 1;
                return;
            }
            slot.counters.tx_frames += 1;
        }
        if !self.link_up || self.in_reset {
            self.counters.down_drops += 1;
            return;
        }
        let Some(dst) = dst_of(&frame) else {
            // Shorter than a MAC header: no VF filter takes it; from a VF
            // the wire takes it as sent (the queue checked lengths).
            match from {
                Some(_) => self.send_up(cfg, frame),
                None => self.counters.wire_unknown += 1,
            }
            return;
        };
        if dst.is_unicast() {
            let owner = (0..self.ports.len()).find(|&p| {
                Some(p) != from && self.ports[p].as_ref().is_some_and(|s| s.filter.owns(dst))
            });
            if let Some(p) = owner {
                self.offer(cfg, p, &frame, from.is_some());
                return;
            }
            // Unknown unicast: the promiscuous VFs, and the wire.
            for p in 0..self.ports.len() {
                let promisc = self.ports[p].as_ref().is_some_and(|s| s.filter.promisc());
                if Some(p) != from && promisc {
                    self.offer(cfg, p, &frame, from.is_some());
                }
            }
            match from {
                Some(_) => self.send_up(cfg, frame),
                None => self.counters.wire_unknown += 1,
            }
            return;
        }
        // Broadcast and multicast: every other VF, and the wire.
        for p in 0..self.ports.len() {
            if Some(p) != from {
                self.offer(cfg, p, &frame, from.is_some());
            }
        }
        if from.is_some() {
            self.send_up(cfg, frame);
        }
    }

    fn send_up(&mut self, cfg: &VebConfig, frame: Vec<u8>) {
        self.counters.uplink_frames += 1;
        if self.uplink.len() >= cfg.uplink_frames {
            self.counters.uplink_dropped += 1;
            return;
        }
        self.uplink.push_back(frame);
    }
}

impl Veb {
    /// A switch with no VF attached, link up.
    pub fn new(cfg: VebConfig) -> Arc<Veb> {
        Arc::new(Veb {
            cfg,
            state: Mutex::new(State {
                ports: Vec::new(),
                link_up: true,
                in_reset: false,
                uplink: VecDeque::new(),
                counters: VebCounters::default(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The configuration.
    pub fn config(&self) -> &VebConfig {
        &self.cfg
    }

    /// A new port, the lowest free one. Its filter takes nothing until
    /// the VF model publishes its PF state.
    pub fn attach(self: &Arc<Self>) -> Result<VebPort, VebError> {
        let mut st = self.lock();
        let port = match st.ports.iter().position(Option::is_none) {
            Some(p) => p,
            None if st.ports.len() < MAX_PORTS => {
                st.ports.push(None);
                st.ports.len() - 1
            }
            None => return Err(VebError::Full),
        };
        let mut slot = Slot::default();
        // A VF attached during a PF reset or with the link down starts in
        // that state.
        if st.in_reset {
            slot.events.push(PfEvent::ResetBegin);
        } else if !st.link_up {
            slot.events.push(PfEvent::Link(false));
        }
        slot.posted = slot.events.len() as u64;
        st.ports[port] = Some(slot);
        drop(st);
        Ok(VebPort {
            veb: Arc::clone(self),
            port,
            published: Filter::default(),
            frames: VecDeque::new(),
            events: Vec::new(),
        })
    }

    /// Who wakes `port`'s device thread when a frame or event arrives.
    pub fn set_waker(&self, port: usize, waker: Waker) -> Result<(), VebError> {
        let mut st = self.lock();
        let slot = st.ports.get_mut(port).and_then(Option::as_mut);
        let slot = slot.ok_or(VebError::NoPort(port))?;
        slot.waker = Some(waker);
        if !slot.inbox.is_empty() || !slot.events.is_empty() {
            if let Some(w) = &slot.waker {
                w.wake();
            }
        }
        Ok(())
    }

    /// The attached ports.
    pub fn ports(&self) -> Vec<usize> {
        let st = self.lock();
        (0..st.ports.len())
            .filter(|&p| st.ports[p].is_some())
            .collect()
    }

    /// A frame from the wire: to the VF that owns its destination, or to
    /// every VF that accepts a broadcast or multicast. Returns how many
    /// VFs it was put in the inbox of.
    pub fn inject_from_wire(&self, frame: &[u8]) -> usize {
        let mut st = self.lock();
        let before = st.delivered();
        st.switch(&self.cfg, None, frame.to_vec());
        (st.delivered() - before) as usize
    }

    /// Take the frames the uplink kept (sent out to the wire), in order.
    pub fn take_uplink(&self) -> Vec<Vec<u8>> {
        self.lock().uplink.drain(..).collect()
    }

    /// The switch's counters.
    pub fn counters(&self) -> VebCounters {
        self.lock().counters
    }

    /// One VF's counters.
    pub fn port_counters(&self, port: usize) -> Result<PortCounters, VebError> {
        let st = self.lock();
        let slot = st.ports.get(port).and_then(Option::as_ref);
        Ok(slot.ok_or(VebError::NoPort(port))?.counters)
    }

    /// The filter the switch has for a VF (what its PF last published).
    pub fn filter(&self, port: usize) -> Result<Filter, VebError> {
        let st = self.lock();
        let slot = st.ports.get(port).and_then(Option::as_ref);
        Ok(slot.ok_or(VebError::NoPort(port))?.filter.clone())
    }

    /// The PF's link is up and it is not in reset.
    pub fn link_up(&self) -> bool {
        let st = self.lock();
        st.link_up && !st.in_reset
    }

    fn post(&self, st: &mut State, port: usize, e: PfEvent) {
        let slot = st.slot(port);
        slot.events.push(e);
        slot.posted += 1;
        if let Some(w) = &slot.waker {
            w.wake();
        }
    }

    fn post_all(&self, e: PfEvent) {
        let mut st = self.lock();
        match e {
            PfEvent::ResetBegin => st.in_reset = true,
            PfEvent::ResetEnd => st.in_reset = false,
            PfEvent::Link(up) => st.link_up = up,
            PfEvent::AdminMac(_) => {}
        }
        for p in 0..st.ports.len() {
            if st.ports[p].is_some() {
                self.post(&mut st, p, e);
            }
        }
    }

    /// The PF starts a reset: nothing is switched until
    /// [`pf_reset_end`](Self::pf_reset_end), and every VF sees it (RSTI,
    /// CTS lost, link down, queues stopped; `Ixgbevf::pf_reset_begin`).
    pub fn pf_reset_begin(&self) {
        self.post_all(PfEvent::ResetBegin);
    }

    /// The PF is back (RSTD to every VF); each must reset itself.
    pub fn pf_reset_end(&self) {
        self.post_all(PfEvent::ResetEnd);
    }

    /// The PF's link goes down or up: every VF's VFLINKS follows and the
    /// PF pings it (A.5.4); nothing is switched while it is down.
    pub fn set_link(&self, up: bool) {
        self.post_all(PfEvent::Link(up));
    }

    /// The admin sets the MAC of the VF at `port`.
    pub fn admin_set_mac(&self, port: usize, mac: MacAddr) -> Result<(), VebError> {
        let mut st = self.lock();
        if st.ports.get(port).and_then(Option::as_ref).is_none() {
            return Err(VebError::NoPort(port));
        }
        self.post(&mut st, port, PfEvent::AdminMac(mac));
        Ok(())
    }

    /// Every event posted so far has been applied by its VF model (false
    /// after `timeout`, e.g. a device paused or never started).
    pub fn wait_applied(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if self
                .lock()
                .ports
                .iter()
                .flatten()
                .all(|s| s.applied == s.posted)
            {
                return true;
            }
            if Instant::now() > end {
                return false;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}
