//! The Linux ixgbe PF behind an ixgbevf model's mailbox: what it answers
//! and what it lets the VF do.
//!
//! Written from nic-facts.md A.5.3 (message ids, words, lengths, since
//! which API), A.5.4 (the PF's behaviour, from the Linux PF, S5) and
//! A.8 #7 (the 82599 jumbo rule), and from what the real Linux VF driver
//! was seen to need (the vfio-user prototype's REPORT.md: the VF_RESET
//! reply carries no CTS, every other reply does). Its constants are the
//! model's own.

use super::ixgbevf_rss::PfRss;
use super::mailbox::{self, PfAnswer, PfPolicy};
use super::veb::{Filter, FilterSource, Multicast, Vlans};
use super::violation::{Rule, Violations};
use crate::net::MacAddr;
use std::time::Instant;

// ---- A.5.1 / A.5.3 message words ------------------------------------------

/// Reply flag SUCCESS (older name ACK), word 0 bit 31 (A.5.1).
pub const SUCCESS: u32 = 0x8000_0000;
/// Reply flag FAILURE (older name NACK), bit 30 (A.5.1).
pub const FAILURE: u32 = 0x4000_0000;
/// Clear to send, bit 29 (A.5.1).
pub const CTS: u32 = 0x2000_0000;
/// Message type, word 0 bits 15:0 (A.5.1).
pub const MSG_TYPE: u32 = 0xFFFF;
/// MSGINFO, word 0 bits 23:16 (A.5.1).
pub const MSGINFO_SHIFT: u32 = 16;
/// MSGINFO mask after the shift (A.5.1: 0xFF << 16).
pub const MSGINFO_MASK: u32 = 0xFF;

/// VF_RESET (A.5.3).
pub const VF_RESET: u32 = 0x01;
/// SET_MAC_ADDR (A.5.3).
pub const SET_MAC_ADDR: u32 = 0x02;
/// SET_MULTICAST (A.5.3).
pub const SET_MULTICAST: u32 = 0x03;
/// SET_VLAN (A.5.3).
pub const SET_VLAN: u32 = 0x04;
/// SET_LPE (A.5.3).
pub const SET_LPE: u32 = 0x05;
/// SET_MACVLAN (A.5.3).
pub const SET_MACVLAN: u32 = 0x06;
/// API_NEGOTIATE (A.5.3).
pub const API_NEGOTIATE: u32 = 0x08;
/// GET_QUEUES (A.5.3).
pub const GET_QUEUES: u32 = 0x09;
/// GET_RETA (A.5.3).
pub const GET_RETA: u32 = 0x0A;
/// GET_RSS_KEY (A.5.3).
pub const GET_RSS_KEY: u32 = 0x0B;
/// UPDATE_XCAST_MODE (A.5.3).
pub const UPDATE_XCAST_MODE: u32 = 0x0C;
/// GET_LINK_STATE (A.5.3).
pub const GET_LINK_STATE: u32 = 0x10;
/// FEATURES_NEGOTIATE (A.5.3).
pub const FEATURES_NEGOTIATE: u32 = 0x12;
/// PF_CONTROL_MSG, PF → VF (A.5.1, A.5.3).
pub const PF_CONTROL_MSG: u32 = 0x0100;

/// The request lengths in words (A.5.3 "request words"; the Linux VF's
/// writes in the prototype's trace match every one). FEATURES_NEGOTIATE's
/// length is not in the facts, so it is not checked.
pub fn request_len(id: u32) -> Option<usize> {
    Some(match id {
        VF_RESET => 1,
        SET_MAC_ADDR => 3,
        SET_MULTICAST => 16,
        SET_VLAN => 2,
        SET_LPE => 2,
        SET_MACVLAN => 3,
        API_NEGOTIATE => 3,
        GET_QUEUES => 5,
        GET_RETA | GET_RSS_KEY => 1,
        UPDATE_XCAST_MODE => 2,
        GET_LINK_STATE => 2,
        _ => return None,
    })
}

/// FEATURES_NEGOTIATE feature ESX_MBX, bit 1 (A.5.3).
pub const FEATURE_ESX_MBX: u32 = 1 << 1;

/// Multicast hashes one SET_MULTICAST carries at most (A.5.3: ≤ 30).
pub const MAX_MC_HASHES: usize = 30;

// ---- API versions (A.5.3: the enum value sent in word 1) ------------------

/// One mailbox API version, by the enum value on the wire (A.5.3:
/// 1.0 = 0, 2.0 = 1, 1.1 = 2, 1.2 = 3, 1.3 = 4, 1.4 = 5, 1.5 = 6, 1.6 = 7,
/// 1.7 = 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Api(pub u32);

impl Api {
    /// 1.0.
    pub const V1_0: Api = Api(0);
    /// 2.0 (the Solaris set, A.5.3).
    pub const V2_0: Api = Api(1);
    /// 1.1.
    pub const V1_1: Api = Api(2);
    /// 1.2.
    pub const V1_2: Api = Api(3);
    /// 1.3.
    pub const V1_3: Api = Api(4);
    /// 1.4.
    pub const V1_4: Api = Api(5);
    /// 1.5.
    pub const V1_5: Api = Api(6);
    /// 1.6.
    pub const V1_6: Api = Api(7);
    /// 1.7.
    pub const V1_7: Api = Api(8);

    /// The 1.x minor version, for "since API 1.n" (A.5.3); 2.0 has none.
    pub fn minor(self) -> Option<u32> {
        match self.0 {
            0 => Some(0),
            1 => None,
            n => Some(n - 1),
        }
    }

    /// At least 1.`minor` (2.0 never is: its ids mean other things).
    pub fn at_least(self, minor: u32) -> bool {
        self.minor().is_some_and(|m| m >= minor)
    }
}

/// The APIs the Linux PF that was read accepts: 1.0–1.4 (A.5.3).
pub const LINUX_PF_APIS: [Api; 5] = [Api::V1_0, Api::V1_1, Api::V1_2, Api::V1_3, Api::V1_4];

/// UPDATE_XCAST_MODE modes (A.5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Xcast {
    /// 0: none.
    None = 0,
    /// 1: the multicast list.
    Multi = 1,
    /// 2: all multicast.
    AllMulti = 2,
    /// 3: promiscuous (API 1.3).
    Promisc = 3,
}

/// The MAC type behind the VF, where the PF's answers differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacType {
    /// 82599: the jumbo rule (A.8 #7), no PROMISC (A.5.3), shared RSS.
    X82599,
    /// X540: shared RSS readable over the mailbox (A.8 #11).
    X540,
    /// X550 and later: the VF owns its RSS registers (A.8 #11).
    X550,
}

/// What the PF admin and the PF's own setup decide.
#[derive(Clone, Debug)]
pub struct PfSetup {
    /// MAC type.
    pub mac_type: MacType,
    /// The MAC the admin set (`ip link set ... vf N mac`), if any.
    pub admin_mac: Option<MacAddr>,
    /// Trusted VF (A.5.3: an untrusted VF is limited to MULTI and cannot
    /// replace an admin MAC).
    pub trusted: bool,
    /// The APIs the PF accepts (A.5.3; Linux: 1.0–1.4, newer PFs to 1.7).
    pub apis: Vec<Api>,
    /// GET_QUEUES: TX and RX queues, TCs, default queue (A.5.3, A.5.4).
    pub queues: (u32, u32, u32, u32),
    /// mc_filter_type in the VF_RESET reply, 0..3 (A.5.3).
    pub mc_filter_type: u32,
    /// The PF's own MTU (A.8 #7: > 1500 means jumbo).
    pub pf_mtu: u32,
    /// The PF itself is promiscuous (A.5.3: needed for a VF's PROMISC).
    pub pf_promisc: bool,
    /// The admin allows the VF to query RSS (A.5.3 GET_RETA/GET_RSS_KEY).
    pub rss_query: bool,
    /// The PF's RSS, which an 82599/X540 VF shares (A.8 #11); unused on
    /// X550, whose VF has its own.
    pub rss: PfRss,
    /// A port VLAN set by the admin (A.5.3: SET_VLAN then fails).
    pub port_vlan: Option<u16>,
    /// Extra unicast addresses (SET_MACVLAN) the PF has room for. The
    /// facts give no number (A.5.3: "no free RAR slot"): a model choice.
    pub macvlan_slots: usize,
    /// The PF feature mask for FEATURES_NEGOTIATE (A.5.3: IPSEC bit 0,
    /// ESX_MBX bit 1).
    pub features: u32,
}

impl PfSetup {
    /// A Linux PF on `mac_type`: APIs 1.0–1.4, 2 queues each way, no TCs
    /// (A.5.4: more than 32 VFs gives 2 queues), MTU 1500.
    pub fn linux(mac_type: MacType, admin_mac: Option<MacAddr>) -> PfSetup {
        PfSetup {
            mac_type,
            admin_mac,
            trusted: false,
            apis: LINUX_PF_APIS.to_vec(),
            queues: (2, 2, 0, 0),
            mc_filter_type: 0,
            pf_mtu: 1500,
            pf_promisc: false,
            rss_query: false,
            rss: PfRss::spread(2),
            port_vlan: None,
            macvlan_slots: 4,
            features: 0,
        }
    }
}

/// The mailbox rules the PF side checks, with their sections.
#[derive(Clone, Copy, Debug)]
pub struct PfRules {
    /// A request other than VF_RESET from a VF that never completed one
    /// since its own reset (A.5.4).
    pub request_before_reset: Rule,
    /// A request whose written words are not exactly its length (A.5.3).
    pub message_length: Rule,
}

/// The frame size above which a frame is jumbo: 1500 + 14 + 4 (A.5.3
/// SET_LPE: "MTU + 14 + 4").
pub const STANDARD_MAX_FRAME: u32 = 1518;

/// The Linux ixgbe PF's view of one VF.
#[derive(Debug)]
pub struct IxgbePf {
    /// Admin and PF setup.
    pub setup: PfSetup,
    rules: &'static PfRules,
    /// Clear to send: set by VF_RESET, lost at a VF reset or PF reset.
    pub cts: bool,
    /// The VF completed a VF_RESET since its own last reset (CTRL.RST or
    /// FLR): requests before that break A.5.4; after a PF-side CTS loss
    /// the VF learns it from the FAILURE, which breaks nothing.
    pub reset_seen: bool,
    /// The negotiated API (1.0 after VF_RESET, A.5.4).
    pub api: Api,
    /// The VF's MAC as the PF has it.
    pub vf_mac: Option<MacAddr>,
    /// Extra unicast addresses (SET_MACVLAN).
    pub macvlans: Vec<MacAddr>,
    /// Multicast hashes (SET_MULTICAST).
    pub mc_hashes: Vec<u16>,
    /// Xcast mode applied.
    pub xcast: Xcast,
    /// VLAN filters (VLAN 0, or the port VLAN, after VF_RESET, A.5.4).
    pub vlans: Vec<u16>,
    /// Max frame from SET_LPE.
    pub max_frame: Option<u32>,
    /// The PF lets the VF receive / transmit (A.5.4, A.8 #7).
    pub rx_enabled: bool,
    /// Same, transmit.
    pub tx_enabled: bool,
    /// Admin link state enable (GET_LINK_STATE, A.5.3).
    pub link_enabled: bool,
    /// The PF does not answer (a mailbox timeout, A.8 #14).
    pub silent: bool,
    /// Feature mask agreed by FEATURES_NEGOTIATE.
    pub features: u32,
    /// VF_RESET messages handled: the device clears TDWBAL/H on each
    /// (A.5.4, A.8 #15).
    pub vf_resets: u64,
    /// Every request the PF read, as many words as its length (A.5.3; all
    /// 16 for an id without a known length), with the flags the VF set.
    pub received: Vec<Vec<u32>>,
    written: u16,
}

fn mac_of(w1: u32, w2: u32) -> MacAddr {
    let (a, b) = (w1.to_le_bytes(), w2.to_le_bytes());
    MacAddr([a[0], a[1], a[2], a[3], b[0], b[1]])
}

fn mac_words(m: MacAddr) -> [u32; 2] {
    let b = m.0;
    [
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        u32::from_le_bytes([b[4], b[5], 0, 0]),
    ]
}

impl IxgbePf {
    /// The PF before the VF's first VF_RESET.
    pub fn new(setup: PfSetup, rules: &'static PfRules) -> IxgbePf {
        IxgbePf {
            vf_mac: setup.admin_mac,
            setup,
            rules,
            cts: false,
            reset_seen: false,
            api: Api::V1_0,
            macvlans: Vec::new(),
            mc_hashes: Vec::new(),
            xcast: Xcast::None,
            vlans: Vec::new(),
            max_frame: None,
            rx_enabled: false,
            tx_enabled: false,
            link_enabled: true,
            silent: false,
            features: 0,
            vf_resets: 0,
            received: Vec::new(),
            written: 0,
        }
    }

    /// The VF uses the newer mailbox protocol, which reads without VFU:
    /// API 1.5, or 1.7 with ESX_MBX negotiated (A.5.2).
    pub fn newer_protocol(&self) -> bool {
        self.api == Api::V1_5 || (self.api == Api::V1_7 && self.features & FEATURE_ESX_MBX != 0)
    }

    fn jumbo(frame: u32) -> bool {
        frame > STANDARD_MAX_FRAME
    }

    /// The VF reset itself (CTRL.RST or FLR): CTS lost until VF_RESET.
    pub fn vf_reset_event(&mut self) {
        self.cts = false;
        self.reset_seen = false;
        self.rx_enabled = false;
        self.tx_enabled = false;
    }

    /// The VF_RESET message (A.5.4): filters reset, VLAN 0 (or the port
    /// VLAN) back, API 1.0, TX and RX enabled subject to the 82599 jumbo
    /// rule (A.8 #7), CTS on. The reply is the 4-word MAC message, without
    /// CTS (the Linux VF compares word 0 exactly: prototype REPORT.md).
    fn vf_reset_msg(&mut self) -> Vec<u32> {
        self.cts = true;
        self.reset_seen = true;
        self.vf_resets += 1;
        self.api = Api::V1_0;
        self.macvlans.clear();
        self.mc_hashes.clear();
        self.xcast = Xcast::None;
        self.vlans = vec![self.setup.port_vlan.unwrap_or(0)];
        self.max_frame = None;
        self.features = 0;
        self.tx_enabled = true;
        self.rx_enabled =
            self.setup.mac_type != MacType::X82599 || !Self::jumbo(self.setup.pf_mtu + 18);
        match self.vf_mac {
            Some(m) => {
                let [a, b] = mac_words(m);
                vec![VF_RESET | SUCCESS, a, b, self.setup.mc_filter_type]
            }
            None => vec![VF_RESET | FAILURE, 0, 0, self.setup.mc_filter_type],
        }
    }

    /// A processed request: `Ok(extra words)` = SUCCESS, `Err(())` =
    /// FAILURE (A.5.3).
    fn handle(&mut self, msg: &[u32; mailbox::WORDS]) -> Result<Vec<u32>, ()> {
        let w0 = msg[0];
        let info = (w0 >> MSGINFO_SHIFT) & MSGINFO_MASK;
        let fail = Err(());
        match w0 & MSG_TYPE {
            SET_MAC_ADDR => {
                let mac = mac_of(msg[1], msg[2]);
                // An untrusted VF cannot replace an admin MAC (A.5.3).
                let locked = self.setup.admin_mac.is_some_and(|a| a != mac) && !self.setup.trusted;
                if !mac.is_unicast() || mac.0 == [0; 6] || locked {
                    return fail;
                }
                self.vf_mac = Some(mac);
                Ok(vec![])
            }
            SET_MULTICAST => {
                let n = (info as usize).min(MAX_MC_HASHES);
                self.mc_hashes = (0..n)
                    .map(|i| (msg[1 + i / 2] >> (16 * (i % 2))) as u16)
                    .collect();
                Ok(vec![])
            }
            SET_VLAN => {
                // FAILURE with a port VLAN or DCB (num TCs > 1) (A.5.3).
                if self.setup.port_vlan.is_some() || self.setup.queues.2 > 1 {
                    return fail;
                }
                let id = (msg[1] & 0xFFF) as u16;
                if info & 1 != 0 {
                    if !self.vlans.contains(&id) {
                        self.vlans.push(id);
                    }
                } else {
                    self.vlans.retain(|v| *v != id);
                }
                Ok(vec![])
            }
            SET_LPE => {
                let frame = msg[1];
                self.max_frame = Some(frame);
                if self.setup.mac_type == MacType::X82599 {
                    // A.8 #7: API 1.0 with jumbo on either side keeps RX
                    // off; from 1.1 a jumbo VF needs a jumbo PF.
                    let pf_jumbo = Self::jumbo(self.setup.pf_mtu + 18);
                    let vf_jumbo = Self::jumbo(frame);
                    self.rx_enabled = if self.api == Api::V1_0 {
                        !pf_jumbo && !vf_jumbo
                    } else {
                        !vf_jumbo || pf_jumbo
                    };
                }
                Ok(vec![])
            }
            SET_MACVLAN => {
                let mac = mac_of(msg[1], msg[2]);
                if info == 0 {
                    self.macvlans.clear();
                    return Ok(vec![]);
                }
                if !mac.is_unicast() || self.macvlans.len() >= self.setup.macvlan_slots {
                    return fail;
                }
                if !self.macvlans.contains(&mac) {
                    self.macvlans.push(mac);
                }
                Ok(vec![])
            }
            API_NEGOTIATE => {
                let want = Api(msg[1]);
                if !self.setup.apis.contains(&want) {
                    return fail;
                }
                self.api = want;
                Ok(vec![msg[1], msg[2]])
            }
            GET_QUEUES => {
                if !self.api.at_least(1) {
                    return fail;
                }
                let (tx, rx, tcs, def) = self.setup.queues;
                Ok(vec![tx, rx, tcs, def])
            }
            GET_RETA | GET_RSS_KEY => {
                // 82599/X540 only, admin permission, API 1.2 (A.5.3).
                if !self.api.at_least(2)
                    || self.setup.mac_type == MacType::X550
                    || !self.setup.rss_query
                {
                    return fail;
                }
                if w0 & MSG_TYPE == GET_RETA {
                    Ok(self.setup.rss.reta_words())
                } else {
                    Ok(self.setup.rss.key_words())
                }
            }
            UPDATE_XCAST_MODE => {
                if !self.api.at_least(2) {
                    return fail;
                }
                let mut mode = match msg[1] {
                    0 => Xcast::None,
                    1 => Xcast::Multi,
                    2 => Xcast::AllMulti,
                    3 => Xcast::Promisc,
                    _ => return fail,
                };
                if mode == Xcast::Promisc
                    && (!self.api.at_least(3)
                        || self.setup.mac_type == MacType::X82599
                        || !self.setup.pf_promisc)
                {
                    return fail;
                }
                // An untrusted VF is limited to MULTI (A.5.3).
                if !self.setup.trusted && mode > Xcast::Multi {
                    mode = Xcast::Multi;
                }
                self.xcast = mode;
                Ok(vec![mode as u32])
            }
            GET_LINK_STATE => {
                if !self.api.at_least(2) {
                    return fail;
                }
                Ok(vec![self.link_enabled as u32])
            }
            FEATURES_NEGOTIATE => {
                if !self.api.at_least(7) {
                    return fail;
                }
                self.features = msg[1] & self.setup.features;
                Ok(vec![self.features])
            }
            _ => fail,
        }
    }

    fn check_length(&self, w0: u32, v: &Violations) {
        let Some(len) = request_len(w0 & MSG_TYPE) else {
            return;
        };
        let want = ((1u32 << len) - 1) as u16;
        if self.written != want {
            v.record(
                self.rules.message_length,
                format!(
                    "message {:#06x} written as words {:016b} (bit i = word i); it is {len} word(s) long, so the PF reads {} stale word(s)",
                    w0 & MSG_TYPE,
                    self.written,
                    if self.written & !want != 0 {
                        "past its end: extra or"
                    } else {
                        "missing:"
                    },
                ),
            );
        }
    }
}

impl PfPolicy for IxgbePf {
    fn written(&mut self, words: u16) {
        self.written = words;
    }

    fn request(&mut self, _now: Instant, msg: &[u32; mailbox::WORDS], v: &Violations) -> PfAnswer {
        let w0 = msg[0];
        if self.silent {
            return PfAnswer::Ignore;
        }
        // Already processed: ignored (A.5.4).
        if w0 & (SUCCESS | FAILURE) != 0 {
            return PfAnswer::AckOnly;
        }
        self.check_length(w0, v);
        let len = request_len(w0 & MSG_TYPE).unwrap_or(mailbox::WORDS);
        self.received.push(msg[..len.min(mailbox::WORDS)].to_vec());
        if w0 & MSG_TYPE == VF_RESET {
            return PfAnswer::Reply(self.vf_reset_msg());
        }
        if !self.cts {
            if !self.reset_seen {
                v.record(
                    self.rules.request_before_reset,
                    format!("message {w0:#010x} before the VF completed a VF_RESET exchange"),
                );
            }
            // FAILURE without CTS (A.5.4).
            return PfAnswer::Reply(vec![w0 | FAILURE]);
        }
        let mut reply = match self.handle(msg) {
            Ok(extra) => {
                let mut r = vec![w0 | SUCCESS];
                r.extend(extra);
                r
            }
            Err(()) => vec![w0 | FAILURE],
        };
        reply[0] |= CTS;
        PfAnswer::Reply(reply)
    }

    fn vf_ack(&mut self, _now: Instant) -> Option<Vec<u32>> {
        // A VF that is not clear to send and acknowledges a PF message
        // (the ping without CTS after a PF reset) gets a bare FAILURE
        // back: "if device isn't clear to send it shouldn't be reading
        // either" (Linux ixgbe_sriov.c, ixgbe_rcv_ack_from_vf). Linux's VF
        // needs it: only a FAILURE without CTS makes its link check fail
        // and its watchdog reset the VF (ixgbevf vf.c
        // ixgbevf_check_mac_link_vf); seen in scripts/vfio-user-lab,
        // where without it the guest stayed link-down after a PF reset.
        (!self.cts && !self.silent).then(|| vec![FAILURE])
    }
}

/// The switch's filter for the VF, from what the PF holds (A.5.3): the
/// VF's MAC (admin, VF_RESET or SET_MAC_ADDR) and its SET_MACVLAN
/// addresses; PROMISC for unicast; ALLMULTI or PROMISC for multicast,
/// else the SET_MULTICAST hashes with the VF_RESET reply's
/// mc_filter_type (NONE and MULTI filter alike: SET_MULTICAST predates
/// UPDATE_XCAST_MODE, API 1.0 vs 1.2, so the list must work without it
/// **(inferred)**); the SET_VLAN list, an untagged frame counting as VLAN
/// 0 or the port VLAN (A.5.4: VF_RESET re-adds VLAN 0 "so untagged traffic
/// passes"). The Linux PF's VMOLR/MTA/VLVF programming is not in the
/// facts, so the rules follow the mailbox messages.
impl FilterSource for IxgbePf {
    fn filter(&self) -> Filter {
        Filter {
            unicast: self
                .vf_mac
                .into_iter()
                .chain(self.macvlans.iter().copied())
                .collect(),
            promisc_unicast: self.xcast == Xcast::Promisc,
            promisc_multicast: matches!(self.xcast, Xcast::AllMulti | Xcast::Promisc),
            multicast: Multicast::Hashes {
                hashes: self.mc_hashes.clone(),
                filter_type: self.setup.mc_filter_type,
            },
            vlans: Vlans::Only {
                ids: self.vlans.clone(),
                untagged: self.setup.port_vlan.unwrap_or(0),
            },
        }
    }

    fn same_as(&self, f: &Filter) -> bool {
        let hashes_same = match &f.multicast {
            Multicast::Hashes {
                hashes,
                filter_type,
            } => *hashes == self.mc_hashes && *filter_type == self.setup.mc_filter_type,
            Multicast::Exact(_) => false,
        };
        let vlans_same = match &f.vlans {
            Vlans::Only { ids, untagged } => {
                *ids == self.vlans && *untagged == self.setup.port_vlan.unwrap_or(0)
            }
            Vlans::Any => false,
        };
        f.unicast
            .iter()
            .eq(self.vf_mac.iter().chain(self.macvlans.iter()))
            && f.promisc_unicast == (self.xcast == Xcast::Promisc)
            && f.promisc_multicast == matches!(self.xcast, Xcast::AllMulti | Xcast::Promisc)
            && hashes_same
            && vlans_same
    }
}
