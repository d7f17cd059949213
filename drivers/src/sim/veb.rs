//! The embedded switch (VEB) of one modelled PF: the VFs of that PF, each
//! a device model ([`Ixgbevf`](super::ixgbevf::Ixgbevf) behind an 82599 /
//! X540 / X550, or [`Iavf`](super::iavf::Iavf) behind an X710 / E810) on
//! its own device thread and possibly in its own DMA space, exchange
//! frames through it, and what leaves for the wire goes to the uplink. A
//! real PF is one family, so one switch holds VFs of one model; nothing
//! here depends on which.
//!
//! The switch decides on a device-neutral [`Filter`] per VF: the unicast
//! MACs it owns, promiscuous unicast / multicast, a multicast rule (a hash
//! list or exact addresses) and a VLAN rule. Each model fills it from its
//! PF's state ([`FilterSource`]) and publishes it when it changes.
//!
//! What the facts give and what is inferred:
//! - Transmit switching is always on for a VF (nic-facts.md A.8 #3). How
//!   the switch forwards is stated for the 82576's VMDq loopback
//!   (nic-facts-igbvf.md C.10.1 "VF ↔ VF / VF ↔ PF switching"), and taken
//!   here for the 82599 family and the X710 / E810 **(inferred)**: a
//!   unicast frame whose destination is one of a VF's unicast MACs goes to
//!   that VF only; broadcast, multicast and unknown unicast go to every
//!   other VF that accepts them and to the wire. A frame never comes back
//!   to its sender (there the 82576 facts note QEMU's igb model does it
//!   wrongly).
//! - Broadcast is always accepted (if its VLAN is); multicast by the VF's
//!   [`Multicast`] rule or promiscuous multicast; unicast to a MAC not the
//!   VF's only with promiscuous unicast; the frame's VLAN (the 802.1Q
//!   tag's id; an untagged frame counts as [`Vlans::Only`]'s `untagged`)
//!   by the VF's [`Vlans`] rule. Refused frames are counted per VF
//!   (`rx_filtered`). What each model puts in its filter is said where it
//!   fills it (`FilterSource` for `IxgbePf` and `IavfPf`).
//! - Source-MAC anti-spoofing (`VebConfig::spoof_check`, on by default as
//!   `ip link set ... spoofchk` is): a frame whose source is not one of
//!   the sender's MACs is dropped and counted (`tx_spoofed`). The facts
//!   have no section on it; the Linux ixgbe PF's "Spoofed packets
//!   detected" reports (anchors.md §4) show it exists. A VF with no MAC
//!   yet can send nothing **(inferred)**.
//! - A frame switched from another VF is marked looped back (`RxFrame::
//!   loopback`): the ixgbevf model reports it as the LB status bit (A.4.2:
//!   LB 0x40000; nic-facts-igbvf.md: "the frame came from another pool");
//!   one from the wire is not. The iavf model's RX descriptor has no such
//!   bit in the facts (B.5.1), so it drops the mark.
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
//! VF as [`PfEvent`]s and applied by each model on its own thread, with
//! the DMA space it has there, through its own fault functions;
//! [`Veb::wait_applied`] waits until all have.

use super::adv::RxFrame;
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

/// A PF-wide event, applied by the VF model on its own thread with its
/// own fault function (`Ixgbevf::` / `Iavf::` `pf_reset_begin`,
/// `pf_reset_end`, `set_link`, `admin_set_mac`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PfEvent {
    /// The PF starts a reset.
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

/// How a VF takes multicast frames (besides promiscuous multicast).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Multicast {
    /// An MTA hash list: a group passes when its 12-bit hash
    /// ([`mc_hash`] with `filter_type`) is in `hashes` (ixgbevf's
    /// SET_MULTICAST, A.5.3).
    Hashes {
        /// Hash vectors (the low 12 bits count).
        hashes: Vec<u16>,
        /// mc_filter_type (A.5.3).
        filter_type: u32,
    },
    /// Exact group addresses (iavf's multicast ADD_ETH_ADDR, B.4.3).
    Exact(Vec<MacAddr>),
}

/// Which VLANs a VF takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Vlans {
    /// Any VLAN, tagged or not (no VLAN filter in force).
    Any,
    /// Only these ids; an untagged frame counts as VLAN `untagged` (0, or
    /// the admin's port VLAN).
    Only {
        /// VLAN ids taken.
        ids: Vec<u16>,
        /// The id an untagged frame counts as.
        untagged: u16,
    },
}

/// The receive filter of one VF as the switch decides on it: a copy of
/// what its PF holds for it, filled by the VF model ([`FilterSource`])
/// and published when it changes. The default takes nothing (a VF whose
/// model has not published yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// The VF's unicast MACs (its own first): unicast to one of them is
    /// for this VF only; they are also the sources the anti-spoof check
    /// allows.
    pub unicast: Vec<MacAddr>,
    /// Unicast to other MACs is taken too (unknown unicast only: a frame
    /// to another VF's MAC goes to that VF).
    pub promisc_unicast: bool,
    /// Every multicast is taken.
    pub promisc_multicast: bool,
    /// Which multicast groups are taken otherwise.
    pub multicast: Multicast,
    /// Which VLANs are taken.
    pub vlans: Vlans,
}

impl Default for Filter {
    fn default() -> Filter {
        Filter {
            unicast: Vec::new(),
            promisc_unicast: false,
            promisc_multicast: false,
            multicast: Multicast::Exact(Vec::new()),
            vlans: Vlans::Only {
                ids: Vec::new(),
                untagged: 0,
            },
        }
    }
}

/// A PF's state for one VF, seen as the switch's [`Filter`]: what a VF
/// model publishes through its [`VebPort`].
pub trait FilterSource {
    /// The filter the PF holds for the VF now.
    fn filter(&self) -> Filter;
    /// `f` is what [`filter`](Self::filter) would give, checked without
    /// building one (on every device pass).
    fn same_as(&self, f: &Filter) -> bool;
}

impl Filter {
    /// One of the VF's unicast addresses.
    pub fn owns(&self, mac: MacAddr) -> bool {
        self.unicast.contains(&mac)
    }

    fn vlan_taken(&self, frame: &[u8]) -> bool {
        match &self.vlans {
            Vlans::Any => true,
            Vlans::Only { ids, untagged } => ids.contains(&vlan_of(frame).unwrap_or(*untagged)),
        }
    }

    /// The VF takes `frame` (its destination already chosen it, for a
    /// unicast frame to one of its MACs).
    pub fn accepts(&self, frame: &[u8]) -> bool {
        let Some(dst) = dst_of(frame) else {
            return false;
        };
        if !self.vlan_taken(frame) {
            return false;
        }
        if dst.0 == [0xFF; 6] {
            return true;
        }
        if dst.is_multicast() {
            if self.promisc_multicast {
                return true;
            }
            return match &self.multicast {
                Multicast::Hashes {
                    hashes,
                    filter_type,
                } => hashes
                    .iter()
                    .any(|h| h & 0xFFF == mc_hash(dst, *filter_type)),
                Multicast::Exact(groups) => groups.contains(&dst),
            };
        }
        self.owns(dst) || self.promisc_unicast
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
    /// Frames the uplink keeps before it drops (`VebConfig::uplink_frames`
    /// until [`Veb::keep_uplink`] changes it: a wire that drains it).
    uplink_keep: usize,
    counters: VebCounters,
}

/// The switch. Share it as `Arc<Veb>`; VF models attach with their
/// `start_on` / `new_on` / `with_port` ([`Ixgbevf`](super::ixgbevf::Ixgbevf::start_on),
/// [`Iavf`](super::iavf::Iavf::start_on)).
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
    pub fn publish(&mut self, pf: &impl FilterSource) {
        let changed = !pf.same_as(&self.published);
        if !changed && self.events.is_empty() {
            return;
        }
        if changed {
            self.published = pf.filter();
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
                Some(_) => self.send_up(frame),
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
                let promisc = self.ports[p]
                    .as_ref()
                    .is_some_and(|s| s.filter.promisc_unicast);
                if Some(p) != from && promisc {
                    self.offer(cfg, p, &frame, from.is_some());
                }
            }
            match from {
                Some(_) => self.send_up(frame),
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
            self.send_up(frame);
        }
    }

    fn send_up(&mut self, frame: Vec<u8>) {
        self.counters.uplink_frames += 1;
        if self.uplink.len() >= self.uplink_keep {
            self.counters.uplink_dropped += 1;
            return;
        }
        self.uplink.push_back(frame);
    }
}

impl Veb {
    /// A switch with no VF attached, link up.
    pub fn new(cfg: VebConfig) -> Arc<Veb> {
        let uplink_keep = cfg.uplink_frames;
        Arc::new(Veb {
            cfg,
            state: Mutex::new(State {
                ports: Vec::new(),
                link_up: true,
                in_reset: false,
                uplink: VecDeque::new(),
                uplink_keep,
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

    /// Move the frames the uplink kept to the end of `out`, in order (a
    /// wire draining it: no allocation once `out` has grown).
    pub fn take_uplink_into(&self, out: &mut VecDeque<Vec<u8>>) {
        out.append(&mut self.lock().uplink);
    }

    /// From now on the uplink keeps up to `frames` frames for whoever
    /// takes them ([`take_uplink_into`](Self::take_uplink_into)) and
    /// drops past that, counted (`uplink_dropped`).
    pub fn keep_uplink(&self, frames: usize) {
        self.lock().uplink_keep = frames;
    }

    /// Room left in the inbox of the VF that owns the unicast `dst` (what
    /// a frame from the wire to it can fill without an overflow); `None`
    /// when no VF owns it.
    pub fn wire_room(&self, dst: MacAddr) -> Option<usize> {
        let st = self.lock();
        let slot = st.ports.iter().flatten().find(|s| s.filter.owns(dst))?;
        Some(self.cfg.inbox_frames.saturating_sub(slot.inbox.len()))
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
    /// [`pf_reset_end`](Self::pf_reset_end), and every VF sees it (its
    /// model's `pf_reset_begin`: for ixgbevf RSTI, CTS lost, link down,
    /// queues stopped; for iavf RESET_IMPENDING, then the VF reset).
    pub fn pf_reset_begin(&self) {
        self.post_all(PfEvent::ResetBegin);
    }

    /// The PF is back (ixgbevf: RSTD; iavf: VFR_COMPLETED); each VF's
    /// driver must reset it.
    pub fn pf_reset_end(&self) {
        self.post_all(PfEvent::ResetEnd);
    }

    /// The PF's link goes down or up: every VF's model follows (ixgbevf:
    /// VFLINKS and a ping, A.5.4; iavf: LINK_CHANGE, B.4.3); nothing is
    /// switched while it is down.
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
