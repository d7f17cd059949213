//! The PF behind an iavf VF: the virtchnl responder of the Linux i40e
//! (X710/XL710, VF 8086:154c) and ice (E810, adaptive VF 8086:1889) PF
//! drivers, as nic-facts.md B.4, B.6, B.7 and B.8 describe them.
//!
//! Pure protocol: [`IavfPf::handle`] takes one message and returns the
//! reply (none for RESET_VF) and what the device must do ([`Action`]).
//! Lengths are checked exactly (B.4.4: any other length is answered
//! ERR_OPCODE_MISMATCH); bad parameters are answered ERR_PARAM. Both are
//! the VF driver's errors and also recorded as violations; PF policy
//! (an untrusted VF's MAC or promiscuous request) is not.
//!
//! Beyond the facts:
//! - an untrusted VF asking for promiscuous mode gets SUCCESS and nothing
//!   changes: both Linux PFs do this on purpose (i40e_virtchnl_pf.c and
//!   ice_virtchnl.c, config_promiscuous_mode: "lie to the VF on
//!   purpose"); the refusal is counted in [`IavfPf::promisc_refused`];
//! - an untrusted VF may not add a unicast MAC other than its admin MAC
//!   when the admin set one, nor more than [`PfSetup::untrusted_macs`]
//!   filters: ERR_PARAM (the limit is the model's choice);
//! - an opcode the PF does not know is answered ERR_NOT_SUPPORTED;
//! - messages other than VERSION, RESET_VF and GET_VF_RESOURCES before
//!   GET_VF_RESOURCES are answered ERR_PARAM (the VF is not active yet).

use super::veb::{Filter, FilterSource, Multicast, Vlans};
use super::violation::{Rule, Violations};
use crate::net::MacAddr;

macro_rules! rule {
    ($name:literal, $sec:literal) => {
        Rule::new($name, concat!("nic-facts.md ", $sec))
    };
}

/// virtchnl opcodes (B.4.1).
pub mod op {
    /// VERSION.
    pub const VERSION: u32 = 1;
    /// RESET_VF.
    pub const RESET_VF: u32 = 2;
    /// GET_VF_RESOURCES.
    pub const GET_VF_RESOURCES: u32 = 3;
    /// CONFIG_VSI_QUEUES.
    pub const CONFIG_VSI_QUEUES: u32 = 6;
    /// CONFIG_IRQ_MAP.
    pub const CONFIG_IRQ_MAP: u32 = 7;
    /// ENABLE_QUEUES.
    pub const ENABLE_QUEUES: u32 = 8;
    /// DISABLE_QUEUES.
    pub const DISABLE_QUEUES: u32 = 9;
    /// ADD_ETH_ADDR.
    pub const ADD_ETH_ADDR: u32 = 10;
    /// DEL_ETH_ADDR.
    pub const DEL_ETH_ADDR: u32 = 11;
    /// ADD_VLAN.
    pub const ADD_VLAN: u32 = 12;
    /// DEL_VLAN.
    pub const DEL_VLAN: u32 = 13;
    /// CONFIG_PROMISCUOUS_MODE.
    pub const CONFIG_PROMISCUOUS_MODE: u32 = 14;
    /// GET_STATS.
    pub const GET_STATS: u32 = 15;
    /// EVENT (PF → VF).
    pub const EVENT: u32 = 17;
    /// CONFIG_RSS_KEY.
    pub const CONFIG_RSS_KEY: u32 = 23;
    /// CONFIG_RSS_LUT.
    pub const CONFIG_RSS_LUT: u32 = 24;
    /// GET_RSS_HENA_CAPS.
    pub const GET_RSS_HENA_CAPS: u32 = 25;
    /// SET_RSS_HENA.
    pub const SET_RSS_HENA: u32 = 26;
    /// ENABLE_VLAN_STRIPPING.
    pub const ENABLE_VLAN_STRIPPING: u32 = 27;
    /// DISABLE_VLAN_STRIPPING.
    pub const DISABLE_VLAN_STRIPPING: u32 = 28;
}

/// virtchnl status codes (cookie_low, B.4.1).
pub mod status {
    /// SUCCESS.
    pub const SUCCESS: i32 = 0;
    /// ERR_PARAM.
    pub const ERR_PARAM: i32 = -5;
    /// ERR_OPCODE_MISMATCH.
    pub const ERR_OPCODE_MISMATCH: i32 = -38;
    /// ERR_NOT_SUPPORTED.
    pub const ERR_NOT_SUPPORTED: i32 = -64;
}

/// Capability bits (B.4.2).
pub mod cap {
    /// L2.
    pub const L2: u32 = 1 << 0;
    /// RSS_AQ.
    pub const RSS_AQ: u32 = 1 << 3;
    /// RSS_REG.
    pub const RSS_REG: u32 = 1 << 4;
    /// WB_ON_ITR.
    pub const WB_ON_ITR: u32 = 1 << 5;
    /// ADV_LINK_SPEED.
    pub const ADV_LINK_SPEED: u32 = 1 << 7;
    /// VLAN.
    pub const VLAN: u32 = 1 << 16;
    /// RX_POLLING.
    pub const RX_POLLING: u32 = 1 << 17;
    /// RSS_PF.
    pub const RSS_PF: u32 = 1 << 19;
    /// VF_BASE_MODE_OFFLOADS (B.4.2): what a v1.0 VF gets.
    pub const BASE_MODE: u32 = L2 | VLAN | RSS_PF;
}

/// virtchnl_pf_event codes (B.4.3).
pub mod event {
    /// LINK_CHANGE.
    pub const LINK_CHANGE: i32 = 1;
    /// RESET_IMPENDING.
    pub const RESET_IMPENDING: i32 = 2;
}

/// VIRTCHNL_VSI_SRIOV (B.4.3).
pub const VSI_SRIOV: i32 = 6;
/// RSS key bytes: VFQF_HKEY(0..12) (B.2).
pub const RSS_KEY_LEN: usize = 52;
/// RSS LUT entries: VFQF_HLUT(0..15), one byte each (B.2).
pub const RSS_LUT_LEN: usize = 64;
/// Queue pairs in base mode at most (B.8 #9).
pub const MAX_QUEUE_PAIRS: usize = 16;
/// Legacy link-speed code for 10G (B.4.3).
pub const LINK_SPEED_10G_LEGACY: u32 = 0x8;
/// virtchnl_eth_stats size (B.4.3).
pub const ETH_STATS_LEN: usize = 96;

/// Which Linux PF (its ring checks differ, B.8 #2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PfKind {
    /// i40e (X710/XL710): RX ring_len a multiple of 32, TX a multiple of
    /// 8, at most 4096 (B.8 #2).
    I40e,
    /// ice (E810): every ring_len 0 or 64..8160 and a multiple of 32
    /// (B.8 #2).
    Ice,
}

/// The PF's side of one VF.
#[derive(Clone, Debug)]
pub struct PfSetup {
    /// Which PF.
    pub kind: PfKind,
    /// The MAC the admin gave the VF (`ip link set … vf N mac`), else a
    /// default the PF picked.
    pub admin_mac: Option<MacAddr>,
    /// The default MAC handed out when the admin set none.
    pub default_mac: MacAddr,
    /// The VF is trusted (`… vf N trust on`).
    pub trusted: bool,
    /// Queue pairs given (B.8 #9: 4 by default, 16 at most).
    pub queue_pairs: u16,
    /// MSI-X vectors, vector 0 (admin queue) included (not in the facts:
    /// the model's choice, 5 by default).
    pub vectors: u16,
    /// max_mtu in the resources reply (not in the facts: 9000).
    pub max_mtu: u16,
    /// vsi_id handed out.
    pub vsi_id: u16,
    /// Capabilities the PF offers; the VF gets these ANDed with its
    /// request (B.4.2).
    pub offered: u32,
    /// The hash types GET_RSS_HENA_CAPS reports (not in the facts: the set
    /// the Linux VF wrote to VFQF_HENA in the lab trace).
    pub hena_caps: u64,
    /// MAC filters an untrusted VF may hold (the model's choice).
    pub untrusted_macs: usize,
}

impl PfSetup {
    /// A Linux PF of `kind`: 4 queue pairs, untrusted, `admin_mac` if set.
    pub fn linux(kind: PfKind, admin_mac: Option<MacAddr>) -> PfSetup {
        PfSetup {
            kind,
            admin_mac,
            default_mac: MacAddr([0x02, 0x00, 0x00, 0x00, 0x15, 0x4C]),
            trusted: false,
            queue_pairs: 4,
            vectors: 5,
            max_mtu: 9000,
            vsi_id: 3,
            offered: cap::L2
                | cap::RSS_AQ
                | cap::RSS_REG
                | cap::WB_ON_ITR
                | cap::ADV_LINK_SPEED
                | cap::VLAN
                | cap::RX_POLLING
                | cap::RSS_PF,
            hena_caps: 0x8000_7A1E_8000_0000,
            untrusted_macs: 16,
        }
    }

    /// The VF's MAC.
    pub fn mac(&self) -> MacAddr {
        self.admin_mac.unwrap_or(self.default_mac)
    }
}

/// A TX ring as CONFIG_VSI_QUEUES gave it (B.4.3 txq_info).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxRing {
    /// Descriptors (0: unused).
    pub ring_len: u16,
    /// Ring base.
    pub base: u64,
}

/// An RX ring as CONFIG_VSI_QUEUES gave it (B.4.3 rxq_info).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxRing {
    /// Descriptors (0: unused).
    pub ring_len: u32,
    /// Ring base.
    pub base: u64,
    /// Buffer size, bytes.
    pub databuffer_size: u32,
    /// Largest frame.
    pub max_pkt_size: u32,
}

/// The VF's VSI counters (virtchnl_eth_stats, B.4.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EthStats {
    /// rx_bytes, rx_unicast, rx_multicast, rx_broadcast, rx_discards,
    /// rx_unknown_protocol, tx_bytes, tx_unicast, tx_multicast,
    /// tx_broadcast, tx_discards, tx_errors.
    pub words: [u64; 12],
}

/// What the device does after a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    None,
    /// RESET_VF: the reset state machine (B.7).
    ResetVf,
    /// ENABLE_QUEUES with these bitmaps; the PF sends the link state after
    /// its reply (as the prototype PF did for the Linux VF in the lab).
    Enable {
        /// RX queue bitmap.
        rx: u32,
        /// TX queue bitmap.
        tx: u32,
    },
    /// DISABLE_QUEUES.
    Disable {
        /// RX queue bitmap.
        rx: u32,
        /// TX queue bitmap.
        tx: u32,
    },
    /// RSS key, LUT or HENA changed.
    Rss,
}

/// Rules the PF's checks stand for.
pub mod rules {
    use super::Rule;
    /// A message length other than B.4.4's.
    pub static LENGTH: Rule = rule!("virtchnl-message-length", "B.4.4, B.8 #10");
    /// A parameter the PF refuses (vsi_id, queue ids, counts).
    pub static PARAM: Rule = rule!("virtchnl-parameter", "B.4.3, B.8 #9");
    /// Before GET_VF_RESOURCES.
    pub static NOT_ACTIVE: Rule = rule!(
        "virtchnl-before-resources",
        "B.6 steps 4-5 (VERSION, GET_VF_RESOURCES first)"
    );
    /// A ring base not 128-byte aligned.
    pub static RING_ALIGN: Rule = rule!("ring-base-alignment", "B.8 #1 (128-byte aligned rings)");
    /// A ring length the PF refuses.
    pub static RING_LEN: Rule = rule!("ring-length", "B.8 #2");
    /// RX buffer or frame size out of range.
    pub static RX_BUFFER: Rule = rule!("rx-buffer-size", "B.8 #4");
    /// ENABLE_QUEUES for a queue CONFIG_VSI_QUEUES did not set up.
    pub static ENABLE_UNCONFIGURED: Rule = rule!(
        "enable-before-config",
        "B.8 #1 (CONFIG_VSI_QUEUES before ENABLE_QUEUES)"
    );
    /// ENABLE_QUEUES for a queue no vector map names.
    pub static UNMAPPED: Rule = rule!(
        "queue-not-mapped-to-vector",
        "B.8 #3 (interrupt mapping is required even for polling)"
    );
    /// A wrong RSS key or LUT size.
    pub static RSS_SIZE: Rule = rule!("rss-size", "B.6 step 8 (rss_key_size, rss_lut_size)");
    /// A PF version other than 1.x asked.
    pub static VERSION: Rule = rule!("virtchnl-version", "B.4.1 (major 1)");
}

/// The PF's state for one VF.
#[derive(Clone, Debug)]
pub struct IavfPf {
    /// Its setup.
    pub setup: PfSetup,
    /// The VF's minor version, once VERSION was answered.
    pub vf_minor: Option<u32>,
    /// GET_VF_RESOURCES was answered: the VF is active.
    pub active: bool,
    /// Capabilities negotiated.
    pub caps: u32,
    /// TX rings by queue.
    pub tx: [TxRing; MAX_QUEUE_PAIRS],
    /// RX rings by queue.
    pub rx: [RxRing; MAX_QUEUE_PAIRS],
    /// Vector of each RX / TX queue (CONFIG_IRQ_MAP).
    pub rx_vector: [Option<u16>; MAX_QUEUE_PAIRS],
    /// Vector of each TX queue.
    pub tx_vector: [Option<u16>; MAX_QUEUE_PAIRS],
    /// MAC filters.
    pub macs: Vec<MacAddr>,
    /// VLAN filters.
    pub vlans: Vec<u16>,
    /// Promiscuous flags in force (unicast 0x1, multicast 0x2).
    pub promisc: u16,
    /// Promiscuous requests refused to an untrusted VF (answered SUCCESS).
    pub promisc_refused: u64,
    /// MAC additions refused by policy.
    pub mac_refused: u64,
    /// VLAN stripping on.
    pub vlan_strip: bool,
    /// RSS key.
    pub rss_key: [u8; RSS_KEY_LEN],
    /// RSS LUT.
    pub rss_lut: [u8; RSS_LUT_LEN],
    /// RSS hash enables.
    pub hena: u64,
    /// The PF stops answering (a hung PF, for the admin-queue timeout).
    pub silent: bool,
    /// Messages left unanswered while silent.
    pub unanswered: u64,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// A reply: status and payload.
pub type Reply = (i32, Vec<u8>);

fn ok() -> Option<Reply> {
    Some((status::SUCCESS, Vec::new()))
}

impl IavfPf {
    /// A PF with its VF just created (or reset).
    pub fn new(setup: PfSetup) -> IavfPf {
        let mac = setup.mac();
        IavfPf {
            setup,
            vf_minor: None,
            active: false,
            caps: 0,
            tx: [TxRing::default(); MAX_QUEUE_PAIRS],
            rx: [RxRing::default(); MAX_QUEUE_PAIRS],
            rx_vector: [None; MAX_QUEUE_PAIRS],
            tx_vector: [None; MAX_QUEUE_PAIRS],
            macs: vec![mac],
            vlans: Vec::new(),
            promisc: 0,
            promisc_refused: 0,
            mac_refused: 0,
            vlan_strip: false,
            rss_key: [0; RSS_KEY_LEN],
            rss_lut: [0; RSS_LUT_LEN],
            hena: 0,
            silent: false,
            unanswered: 0,
        }
    }

    /// A VF reset (B.7): queues, contexts, maps and filters go, except the
    /// default MAC; RSS back to 0 (B.6 step 8); the VF negotiates again.
    /// Trust, setup and the silent fault stay.
    pub fn reset(&mut self) {
        let (setup, silent, pr, mr) = (
            self.setup.clone(),
            self.silent,
            self.promisc_refused,
            self.mac_refused,
        );
        *self = IavfPf::new(setup);
        self.silent = silent;
        self.promisc_refused = pr;
        self.mac_refused = mr;
    }

    /// The VF's queue pairs.
    pub fn queue_pairs(&self) -> usize {
        usize::from(self.setup.queue_pairs).min(MAX_QUEUE_PAIRS)
    }

    /// The legacy length rule of B.4.4: `header + elem · (n + 1)`.
    fn vss(header: usize, elem: usize, n: usize) -> usize {
        header + elem * (n + 1)
    }

    /// The exact length B.4.4 expects for `op` with `msg`, `None` for an
    /// opcode it has no rule for.
    fn valid_len(&self, op: u32, msg: &[u8]) -> Option<usize> {
        let n16 = |at: usize| msg.get(at..at + 2).map_or(0, |_| le16(msg, at) as usize);
        Some(match op {
            op::VERSION => 8,
            op::RESET_VF => 0,
            op::GET_VF_RESOURCES => {
                if self.vf_minor.unwrap_or(1) >= 1 {
                    4
                } else {
                    0
                }
            }
            op::CONFIG_VSI_QUEUES => Self::vss(8, 64, n16(2)),
            op::CONFIG_IRQ_MAP => Self::vss(2, 12, n16(0)),
            op::ADD_ETH_ADDR | op::DEL_ETH_ADDR => Self::vss(4, 8, n16(2)),
            op::ADD_VLAN | op::DEL_VLAN => Self::vss(4, 2, n16(2)),
            op::ENABLE_QUEUES | op::DISABLE_QUEUES | op::GET_STATS => 12,
            op::CONFIG_PROMISCUOUS_MODE => 4,
            op::CONFIG_RSS_KEY | op::CONFIG_RSS_LUT => 5 + n16(2),
            op::SET_RSS_HENA => 8,
            op::GET_RSS_HENA_CAPS | op::ENABLE_VLAN_STRIPPING | op::DISABLE_VLAN_STRIPPING => 0,
            _ => return None,
        })
    }

    /// Handle one message from the VF. `stats` are the VSI's counters now
    /// (for GET_STATS). The reply is `None` for RESET_VF (B.4.1) and while
    /// the PF is silent.
    pub fn handle(
        &mut self,
        op: u32,
        msg: &[u8],
        stats: &EthStats,
        v: &Violations,
    ) -> (Option<Reply>, Action) {
        if self.silent {
            self.unanswered += 1;
            return (None, Action::None);
        }
        let Some(want) = self.valid_len(op, msg) else {
            return (Some((status::ERR_NOT_SUPPORTED, Vec::new())), Action::None);
        };
        if msg.len() != want {
            v.record(
                rules::LENGTH,
                format!(
                    "virtchnl op {op}: {} bytes, the PF expects exactly {want}",
                    msg.len()
                ),
            );
            return (
                Some((status::ERR_OPCODE_MISMATCH, Vec::new())),
                Action::None,
            );
        }
        if !self.active && !matches!(op, op::VERSION | op::RESET_VF | op::GET_VF_RESOURCES) {
            v.record(
                rules::NOT_ACTIVE,
                format!("virtchnl op {op} before GET_VF_RESOURCES was answered"),
            );
            return (Some((status::ERR_PARAM, Vec::new())), Action::None);
        }
        let param = |what: String| {
            v.record(rules::PARAM, format!("virtchnl op {op}: {what}"));
            (Some((status::ERR_PARAM, Vec::new())), Action::None)
        };
        let vsi_ok = |at: usize| le16(msg, at) == self.setup.vsi_id;
        match op {
            op::VERSION => {
                let major = le32(msg, 0);
                if major != 1 {
                    v.record(rules::VERSION, format!("VERSION {major}.x asked"));
                }
                self.vf_minor = Some(le32(msg, 4).min(1));
                let mut r = Vec::with_capacity(8);
                r.extend_from_slice(&1u32.to_le_bytes());
                r.extend_from_slice(&1u32.to_le_bytes());
                (Some((status::SUCCESS, r)), Action::None)
            }
            op::RESET_VF => (None, Action::ResetVf),
            op::GET_VF_RESOURCES => {
                self.caps = if msg.len() == 4 {
                    le32(msg, 0) & self.setup.offered
                } else {
                    cap::BASE_MODE & self.setup.offered
                };
                self.active = true;
                (Some((status::SUCCESS, self.resources())), Action::None)
            }
            op::CONFIG_VSI_QUEUES => self.config_queues(msg, v),
            op::CONFIG_IRQ_MAP => {
                let n = le16(msg, 0) as usize;
                let mut rxv = [None; MAX_QUEUE_PAIRS];
                let mut txv = [None; MAX_QUEUE_PAIRS];
                for i in 0..n {
                    let e = &msg[2 + 12 * i..2 + 12 * (i + 1)];
                    let vec = le16(e, 2);
                    let (rxm, txm) = (le16(e, 4) as u32, le16(e, 6) as u32);
                    if !vsi_ok(2 + 12 * i) || vec >= self.setup.vectors {
                        return param(format!(
                            "vector map {i}: vsi {} vector {vec} ({} vectors)",
                            le16(e, 0),
                            self.setup.vectors
                        ));
                    }
                    if (rxm | txm) >> self.queue_pairs() != 0 {
                        return param(format!(
                            "vector {vec} maps queues {rxm:#x}/{txm:#x} beyond {} pairs",
                            self.queue_pairs()
                        ));
                    }
                    for q in 0..self.queue_pairs() {
                        if rxm & (1 << q) != 0 {
                            rxv[q] = Some(vec);
                        }
                        if txm & (1 << q) != 0 {
                            txv[q] = Some(vec);
                        }
                    }
                }
                self.rx_vector = rxv;
                self.tx_vector = txv;
                (ok(), Action::None)
            }
            op::ENABLE_QUEUES | op::DISABLE_QUEUES => {
                let (rxm, txm) = (le32(msg, 4), le32(msg, 8));
                if !vsi_ok(0) || (rxm | txm) == 0 || (rxm | txm) >> self.queue_pairs() != 0 {
                    return param(format!(
                        "vsi {} queues rx {rxm:#x} tx {txm:#x} ({} pairs)",
                        le16(msg, 0),
                        self.queue_pairs()
                    ));
                }
                if op == op::DISABLE_QUEUES {
                    return (ok(), Action::Disable { rx: rxm, tx: txm });
                }
                for q in 0..self.queue_pairs() {
                    let b = 1 << q;
                    let unconfigured = (rxm & b != 0 && self.rx[q].ring_len == 0)
                        || (txm & b != 0 && self.tx[q].ring_len == 0);
                    if unconfigured {
                        v.record(
                            rules::ENABLE_UNCONFIGURED,
                            format!("queue {q} enabled without a ring from CONFIG_VSI_QUEUES"),
                        );
                        return (Some((status::ERR_PARAM, Vec::new())), Action::None);
                    }
                    // RX only: B.8 #3 names completed RX descriptors left
                    // unwritten, and DPDK maps only its RX queues (B.6
                    // step 11). The PF accepts; the model still writes the
                    // descriptors back.
                    if rxm & b != 0 && self.rx_vector[q].is_none() {
                        v.record(
                            rules::UNMAPPED,
                            format!("RX queue {q} enabled without a CONFIG_IRQ_MAP vector"),
                        );
                    }
                }
                (ok(), Action::Enable { rx: rxm, tx: txm })
            }
            op::ADD_ETH_ADDR | op::DEL_ETH_ADDR => {
                if !vsi_ok(0) {
                    return param(format!("vsi {}", le16(msg, 0)));
                }
                let n = le16(msg, 2) as usize;
                for i in 0..n {
                    let mut a = [0u8; 6];
                    a.copy_from_slice(&msg[4 + 8 * i..10 + 8 * i]);
                    let mac = MacAddr(a);
                    if op == op::DEL_ETH_ADDR {
                        if mac != self.setup.mac() {
                            self.macs.retain(|m| *m != mac);
                        }
                        continue;
                    }
                    if self.macs.contains(&mac) {
                        continue;
                    }
                    let unicast = a[0] & 1 == 0;
                    let refused = !self.setup.trusted
                        && ((unicast && self.setup.admin_mac.is_some_and(|m| m != mac))
                            || self.macs.len() >= self.setup.untrusted_macs);
                    if refused {
                        self.mac_refused += 1;
                        return (Some((status::ERR_PARAM, Vec::new())), Action::None);
                    }
                    self.macs.push(mac);
                }
                (ok(), Action::None)
            }
            op::ADD_VLAN | op::DEL_VLAN => {
                if !vsi_ok(0) {
                    return param(format!("vsi {}", le16(msg, 0)));
                }
                let n = le16(msg, 2) as usize;
                for i in 0..n {
                    let id = le16(msg, 4 + 2 * i);
                    if op == op::ADD_VLAN {
                        if !self.vlans.contains(&id) {
                            self.vlans.push(id);
                        }
                    } else {
                        self.vlans.retain(|x| *x != id);
                    }
                }
                (ok(), Action::None)
            }
            op::CONFIG_PROMISCUOUS_MODE => {
                if !vsi_ok(0) {
                    return param(format!("vsi {}", le16(msg, 0)));
                }
                let flags = le16(msg, 2) & 0x3;
                if !self.setup.trusted && flags != 0 {
                    self.promisc_refused += 1;
                } else {
                    self.promisc = flags;
                }
                (ok(), Action::None)
            }
            op::GET_STATS => {
                if !vsi_ok(0) {
                    return param(format!("vsi {}", le16(msg, 0)));
                }
                let mut r = Vec::with_capacity(ETH_STATS_LEN);
                for w in stats.words {
                    r.extend_from_slice(&w.to_le_bytes());
                }
                (Some((status::SUCCESS, r)), Action::None)
            }
            op::CONFIG_RSS_KEY | op::CONFIG_RSS_LUT => {
                let n = le16(msg, 2) as usize;
                let (key, want) = (
                    op == op::CONFIG_RSS_KEY,
                    if op == op::CONFIG_RSS_KEY {
                        RSS_KEY_LEN
                    } else {
                        RSS_LUT_LEN
                    },
                );
                if !vsi_ok(0) {
                    return param(format!("vsi {}", le16(msg, 0)));
                }
                if n != want {
                    v.record(
                        rules::RSS_SIZE,
                        format!(
                            "{} of {n} bytes; the PF reported {want}",
                            if key { "key" } else { "LUT" }
                        ),
                    );
                    return (Some((status::ERR_PARAM, Vec::new())), Action::None);
                }
                if key {
                    self.rss_key.copy_from_slice(&msg[4..4 + n]);
                } else {
                    self.rss_lut.copy_from_slice(&msg[4..4 + n]);
                }
                (ok(), Action::Rss)
            }
            op::GET_RSS_HENA_CAPS => (
                Some((status::SUCCESS, self.setup.hena_caps.to_le_bytes().to_vec())),
                Action::None,
            ),
            op::SET_RSS_HENA => {
                self.hena = le64(msg, 0);
                (ok(), Action::Rss)
            }
            op::ENABLE_VLAN_STRIPPING | op::DISABLE_VLAN_STRIPPING => {
                self.vlan_strip = op == op::ENABLE_VLAN_STRIPPING;
                (ok(), Action::None)
            }
            _ => (Some((status::ERR_NOT_SUPPORTED, Vec::new())), Action::None),
        }
    }

    /// virtchnl_vf_resource with one vsi_res (B.4.3): 36 bytes.
    fn resources(&self) -> Vec<u8> {
        let mut r = Vec::with_capacity(36);
        r.extend_from_slice(&1u16.to_le_bytes());
        let pairs = self.queue_pairs() as u16;
        r.extend_from_slice(&pairs.to_le_bytes());
        r.extend_from_slice(&self.setup.vectors.to_le_bytes());
        r.extend_from_slice(&self.setup.max_mtu.to_le_bytes());
        r.extend_from_slice(&self.caps.to_le_bytes());
        r.extend_from_slice(&(RSS_KEY_LEN as u32).to_le_bytes());
        r.extend_from_slice(&(RSS_LUT_LEN as u32).to_le_bytes());
        r.extend_from_slice(&self.setup.vsi_id.to_le_bytes());
        r.extend_from_slice(&pairs.to_le_bytes());
        r.extend_from_slice(&VSI_SRIOV.to_le_bytes());
        r.extend_from_slice(&0u16.to_le_bytes());
        r.extend_from_slice(&self.setup.mac().0);
        r
    }

    /// Check a ring length against this PF's rule (B.8 #2).
    fn ring_len_ok(&self, n: u32, tx: bool) -> bool {
        match self.setup.kind {
            PfKind::I40e => n <= 4096 && n.is_multiple_of(if tx { 8 } else { 32 }),
            PfKind::Ice => n == 0 || ((64..=8160).contains(&n) && n.is_multiple_of(32)),
        }
    }

    fn config_queues(&mut self, msg: &[u8], v: &Violations) -> (Option<Reply>, Action) {
        let refuse = |rule: Rule, what: String| {
            v.record(rule, format!("CONFIG_VSI_QUEUES: {what}"));
            (Some((status::ERR_PARAM, Vec::new())), Action::None)
        };
        let n = le16(msg, 2) as usize;
        if le16(msg, 0) != self.setup.vsi_id || n == 0 || n > self.queue_pairs() {
            return refuse(
                rules::PARAM,
                format!(
                    "vsi {} with {n} pairs ({} given)",
                    le16(msg, 0),
                    self.queue_pairs()
                ),
            );
        }
        let mut tx = self.tx;
        let mut rx = self.rx;
        for i in 0..n {
            let p = &msg[8 + 64 * i..8 + 64 * (i + 1)];
            let (t, r) = (&p[..24], &p[24..]);
            let q = le16(t, 2) as usize;
            if le16(t, 0) != self.setup.vsi_id
                || le16(r, 0) != self.setup.vsi_id
                || le16(r, 2) as usize != q
                || q >= self.queue_pairs()
            {
                return refuse(
                    rules::PARAM,
                    format!(
                        "pair {i}: tx vsi {} queue {q}, rx vsi {} queue {}",
                        le16(t, 0),
                        le16(r, 0),
                        le16(r, 2)
                    ),
                );
            }
            let tl = le16(t, 4);
            let tb = le64(t, 8);
            let rl = le32(r, 4);
            let dbuf = le32(r, 12);
            let maxp = le32(r, 16);
            let rb = le64(r, 24);
            for (len, base, is_tx) in [(tl as u32, tb, true), (rl, rb, false)] {
                if !self.ring_len_ok(len, is_tx) {
                    return refuse(
                        rules::RING_LEN,
                        format!(
                            "queue {q} {} ring_len {len} ({:?} PF)",
                            if is_tx { "TX" } else { "RX" },
                            self.setup.kind
                        ),
                    );
                }
                if len != 0 && !base.is_multiple_of(128) {
                    return refuse(
                        rules::RING_ALIGN,
                        format!(
                            "queue {q} {} ring at {base:#x}",
                            if is_tx { "TX" } else { "RX" }
                        ),
                    );
                }
            }
            if rl != 0
                && (dbuf == 0
                    || !dbuf.is_multiple_of(128)
                    || dbuf > 16256
                    || !(64..=16383).contains(&maxp))
            {
                return refuse(
                    rules::RX_BUFFER,
                    format!("queue {q}: databuffer_size {dbuf}, max_pkt_size {maxp}"),
                );
            }
            tx[q] = TxRing {
                ring_len: tl,
                base: tb,
            };
            rx[q] = RxRing {
                ring_len: rl,
                base: rb,
                databuffer_size: dbuf,
                max_pkt_size: maxp,
            };
        }
        self.tx = tx;
        self.rx = rx;
        (ok(), Action::None)
    }

    /// virtchnl_pf_event (B.4.3): link change with the speed in the form
    /// negotiated (Mbps with ADV_LINK_SPEED, else the legacy code; 10G).
    pub fn link_event(&self, up: bool) -> Vec<u8> {
        let speed = if self.caps & cap::ADV_LINK_SPEED != 0 {
            10_000
        } else {
            LINK_SPEED_10G_LEGACY
        };
        Self::event(event::LINK_CHANGE, speed, up as u8, 0)
    }

    /// RESET_IMPENDING, severity "certain doom" (255, B.4.3).
    pub fn reset_event() -> Vec<u8> {
        Self::event(event::RESET_IMPENDING, 0, 0, 255)
    }

    fn event(code: i32, speed: u32, status: u8, severity: i32) -> Vec<u8> {
        let mut e = vec![0u8; 16];
        e[0..4].copy_from_slice(&code.to_le_bytes());
        e[4..8].copy_from_slice(&speed.to_le_bytes());
        e[8] = status;
        e[12..16].copy_from_slice(&severity.to_le_bytes());
        e
    }
}

/// Promiscuous unicast in [`IavfPf::promisc`] (B.4.3
/// CONFIG_PROMISCUOUS_MODE flags).
const PROMISC_UNICAST: u16 = 0x1;
/// Promiscuous multicast.
const PROMISC_MULTICAST: u16 = 0x2;

impl IavfPf {
    fn filter_unicast(&self) -> impl Iterator<Item = &MacAddr> {
        self.macs.iter().filter(|m| m.is_unicast())
    }

    fn filter_multicast(&self) -> impl Iterator<Item = &MacAddr> {
        self.macs.iter().filter(|m| m.is_multicast())
    }
}

/// The switch's filter for the VF, from what the PF holds: the unicast
/// MAC filters (the default or admin MAC from the start, as
/// GET_VF_RESOURCES gives it, then ADD_ETH_ADDR's) and the multicast ones
/// as exact groups; promiscuous unicast / multicast as in force (an
/// untrusted VF's request changes nothing, see the module doc). VLANs
/// **(inferred: the facts do not say how the PF filters VLANs)**: with no
/// ADD_VLAN filter every VLAN passes; with some, untagged frames and the
/// listed VLANs.
impl FilterSource for IavfPf {
    fn filter(&self) -> Filter {
        Filter {
            unicast: self.filter_unicast().copied().collect(),
            promisc_unicast: self.promisc & PROMISC_UNICAST != 0,
            promisc_multicast: self.promisc & PROMISC_MULTICAST != 0,
            multicast: Multicast::Exact(self.filter_multicast().copied().collect()),
            vlans: if self.vlans.is_empty() {
                Vlans::Any
            } else {
                Vlans::Only {
                    ids: std::iter::once(0)
                        .chain(self.vlans.iter().copied())
                        .collect(),
                    untagged: 0,
                }
            },
        }
    }

    fn same_as(&self, f: &Filter) -> bool {
        let groups_same = match &f.multicast {
            Multicast::Exact(g) => g.iter().eq(self.filter_multicast()),
            Multicast::Hashes { .. } => false,
        };
        let vlans_same = match &f.vlans {
            Vlans::Any => self.vlans.is_empty(),
            Vlans::Only { ids, untagged } => {
                !self.vlans.is_empty()
                    && *untagged == 0
                    && ids.iter().eq(std::iter::once(&0).chain(self.vlans.iter()))
            }
        };
        f.unicast.iter().eq(self.filter_unicast())
            && f.promisc_unicast == (self.promisc & PROMISC_UNICAST != 0)
            && f.promisc_multicast == (self.promisc & PROMISC_MULTICAST != 0)
            && groups_same
            && vlans_same
    }
}
