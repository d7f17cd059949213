//! The ixgbevf mailbox protocol: the messages a VF sends its PF, their
//! exact words, and the replies decoded (nic-facts.md A.5).
//!
//! The transport (lock, cached read-to-clear bits, one request at a time,
//! timeouts) is the one igbvf uses ([`crate::pmd::vf_mailbox`]) at the
//! ixgbevf offsets. This file adds what is ixgbevf's own: the message ids
//! and their encodings, API negotiation, and the errors a caller acts on
//! (refused, timed out, clear-to-send lost, PF reset seen).
//!
//! Only the legacy protocol is spoken (A.5.2), so only API 1.0-1.3 are
//! offered: 1.4 adds nothing a poll-mode driver uses (IPsec), and 1.5 and
//! later switch to a different mailbox protocol (A.5.2, A.5.3).

use super::regs::{VFMAILBOX, VFMBMEM};
use crate::mmio::RegisterSpace;
use crate::net::MacAddr;
use crate::pmd::vf_mailbox::{
    self, mac_from_words, mac_words, MbxLayout, MbxTiming, MBX_RSTD, MBX_RSTI, MBX_SIZE,
    MSGINFO_SHIFT, MSG_ACK, MSG_CTS, MSG_ID_MASK, MSG_NACK, MSG_PF_CONTROL, MSG_VF_RESET,
};
use std::time::Duration;

pub use crate::pmd::vf_mailbox::{LostContact, MbxError};

// ---- A.5.3 message ids -----------------------------------------------------

/// SET_MAC_ADDR: [1..2] = MAC; length 3 (A.5.3).
pub const MSG_SET_MAC_ADDR: u32 = 0x02;
/// SET_MULTICAST: MSGINFO = count, [1..15] = hash vectors; length 16 (A.5.3).
pub const MSG_SET_MULTICAST: u32 = 0x03;
/// SET_VLAN: MSGINFO = add, [1] = VLAN id; length 2 (A.5.3).
pub const MSG_SET_VLAN: u32 = 0x04;
/// SET_LPE: [1] = max frame bytes; length 2 (A.5.3).
pub const MSG_SET_LPE: u32 = 0x05;
/// SET_MACVLAN: MSGINFO = index, [1..2] = MAC; length 3 (A.5.3).
pub const MSG_SET_MACVLAN: u32 = 0x06;
/// API_NEGOTIATE: [1] = API enum, [2] = 0; length 3 (A.5.3).
pub const MSG_API_NEGOTIATE: u32 = 0x08;
/// GET_QUEUES: length 5, zeroed; reply 5 words (A.5.3).
pub const MSG_GET_QUEUES: u32 = 0x09;
/// GET_RETA: length 1; reply 1 + 8 words (A.5.3).
pub const MSG_GET_RETA: u32 = 0x0A;
/// GET_RSS_KEY: length 1; reply 11 words (A.5.3).
pub const MSG_GET_RSS_KEY: u32 = 0x0B;
/// UPDATE_XCAST_MODE: [1] = mode; length 2; reply [1] = mode applied
/// (A.5.3).
pub const MSG_UPDATE_XCAST_MODE: u32 = 0x0C;
/// GET_LINK_STATE: length 2; reply [1] = admin link enable (A.5.3).
pub const MSG_GET_LINK_STATE: u32 = 0x10;

/// VF_RESET reply length: [0], MAC in [1..2], mc_filter_type in [3] (A.5.3).
pub const RESET_REPLY_WORDS: usize = 4;
/// GET_QUEUES request and reply length (A.5.3).
pub const GET_QUEUES_WORDS: usize = 5;
/// GET_RETA reply: word 0 and 8 words of 2-bit entries (A.5.3).
pub const GET_RETA_REPLY_WORDS: usize = 9;
/// Entries in the PF RETA that GET_RETA returns (A.5.3).
pub const PF_RETA_ENTRIES: usize = 128;
/// GET_RSS_KEY reply: word 0 and the 40-byte key (A.5.3).
pub const GET_RSS_KEY_REPLY_WORDS: usize = 11;
/// Bytes of the RSS key (A.2, A.5.3).
pub const RSS_KEY_BYTES: usize = 40;
/// Most multicast hashes one SET_MULTICAST carries (A.5.3).
pub const MAX_MC_HASHES: usize = 30;
/// Most queues a VF has, and the clamp for a GET_QUEUES count of 0 or
/// more (A.5.3 "DPDK clamps 0 or >8 to 8", A.5.4).
pub const MAX_QUEUES: u32 = super::regs::MAX_QUEUES;
/// The largest VLAN id.
pub const MAX_VLAN_ID: u16 = 4095;

/// ixgbevf's VFMAILBOX / VFMBMEM (A.2).
#[derive(Debug)]
pub struct IxgbevfMbx;

impl MbxLayout for IxgbevfMbx {
    const CTRL: u32 = VFMAILBOX;
    const MEM: u32 = VFMBMEM;
}

/// The mailbox transport at the ixgbevf offsets.
pub type Transport = vf_mailbox::Mailbox<IxgbevfMbx>;

/// A mailbox API version this driver offers (A.5.3). Ordered by what it
/// allows: `V1_3 > V1_0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApiVersion {
    /// 1.0: SET_LPE, SET_MACVLAN, API_NEGOTIATE.
    V1_0,
    /// 1.1: GET_QUEUES.
    V1_1,
    /// 1.2: GET_RETA, GET_RSS_KEY, UPDATE_XCAST_MODE, GET_LINK_STATE.
    V1_2,
    /// 1.3: PROMISC in UPDATE_XCAST_MODE.
    V1_3,
}

impl ApiVersion {
    /// What negotiation offers, highest first (A.5.3, the DPDK order).
    pub const OFFER: [ApiVersion; 4] = [
        ApiVersion::V1_3,
        ApiVersion::V1_2,
        ApiVersion::V1_1,
        ApiVersion::V1_0,
    ];

    /// The value sent in API_NEGOTIATE word 1: the append-only enum in
    /// which 2.0 sits between 1.0 and 1.1 (A.5.3).
    pub const fn wire(self) -> u32 {
        match self {
            ApiVersion::V1_0 => 0,
            ApiVersion::V1_1 => 2,
            ApiVersion::V1_2 => 3,
            ApiVersion::V1_3 => 4,
        }
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            ApiVersion::V1_0 => "1.0",
            ApiVersion::V1_1 => "1.1",
            ApiVersion::V1_2 => "1.2",
            ApiVersion::V1_3 => "1.3",
        };
        f.write_str(s)
    }
}

/// UPDATE_XCAST_MODE modes (A.5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum XcastMode {
    /// Only the VF's own addresses.
    None,
    /// Plus the multicast hashes set with SET_MULTICAST.
    Multi,
    /// All multicast.
    AllMulti,
    /// Everything the PF sees; API 1.3, refused on 82599.
    Promisc,
}

impl XcastMode {
    /// Word 1 of the request and reply (A.5.3).
    pub const fn wire(self) -> u32 {
        match self {
            XcastMode::None => 0,
            XcastMode::Multi => 1,
            XcastMode::AllMulti => 2,
            XcastMode::Promisc => 3,
        }
    }

    /// The mode in a reply's word 1.
    pub const fn from_wire(w: u32) -> Option<XcastMode> {
        match w {
            0 => Some(XcastMode::None),
            1 => Some(XcastMode::Multi),
            2 => Some(XcastMode::AllMulti),
            3 => Some(XcastMode::Promisc),
            _ => None,
        }
    }

    /// The API a mode needs (A.5.3: the message is 1.2, PROMISC 1.3).
    pub const fn needs(self) -> ApiVersion {
        match self {
            XcastMode::Promisc => ApiVersion::V1_3,
            _ => ApiVersion::V1_2,
        }
    }
}

/// What the PF said to VF_RESET (A.5.3, A.6 step 10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResetReply {
    /// The admin-assigned MAC; `None` when the PF answered FAILURE (no MAC
    /// assigned) or sent one that is not a usable unicast address.
    pub mac: Option<MacAddr>,
    /// Which address bits the multicast hash takes (0..3).
    pub mc_filter_type: u32,
}

/// The queues the PF grants (GET_QUEUES, A.5.3, A.6 step 12), already
/// clamped as the facts say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueInfo {
    /// TX queues, 1..=8.
    pub tx: u32,
    /// RX queues, 1..=8.
    pub rx: u32,
    /// Traffic classes: > 1 means DCB, 1 a port VLAN/QoS, 0 neither.
    pub tcs: u32,
    /// The default queue, < `tx`.
    pub default_queue: u32,
}

impl QueueInfo {
    /// Clamp a raw reply: counts of 0 or more than 8 become 8, more TCs
    /// than RX queues become 1, a default queue not below the TX count
    /// becomes 0 (A.5.3 GET_QUEUES, the DPDK rules).
    pub fn from_reply(r: &[u32; GET_QUEUES_WORDS]) -> QueueInfo {
        let count = |n: u32| {
            if n == 0 || n > MAX_QUEUES {
                MAX_QUEUES
            } else {
                n
            }
        };
        let (tx, rx) = (count(r[1]), count(r[2]));
        let tcs = if r[3] > rx { 1 } else { r[3] };
        let default_queue = if r[4] >= tx { 0 } else { r[4] };
        QueueInfo {
            tx,
            rx,
            tcs,
            default_queue,
        }
    }
}

/// The PF's RSS state, read over the mailbox on 82599/X540 (A.5.3, A.8 #11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PfReta(pub [u8; PF_RETA_ENTRIES]);

/// A message from the PF that the VF did not ask for (A.5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PfEvent {
    /// PF_CONTROL_MSG: the PF reset or its link changed. Without CTS the
    /// VF was revoked and must reset (A.5.4).
    Control {
        /// CTS was set: the VF is still clear to send.
        cts: bool,
    },
    /// Some other word (a late reply, a NACK); kept for the log.
    Other(u32),
}

/// What went wrong talking to the PF.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IxMbxError {
    /// The PF answered FAILURE to a message while the VF is still clear
    /// to send: it refused this request (A.5.3).
    #[error("PF refused {msg} (reply {reply:#010x})")]
    Nack {
        /// The message refused.
        msg: &'static str,
        /// Reply word 0.
        reply: u32,
    },
    /// No PFACK or PFSTS in time; the mailbox is off until the VF is reset
    /// (A.5.1 timing, A.8 #14).
    #[error("PF did not answer {msg}: timeout waiting for {waited_for}")]
    Timeout {
        /// The message sent.
        msg: &'static str,
        /// PFACK or PFSTS.
        waited_for: &'static str,
    },
    /// The PF answered without CTS (a FAILURE, or a PF_CONTROL_MSG): the
    /// VF is no longer clear to send and must reset (A.5.4, A.6 step 21).
    #[error("PF revoked clear-to-send during {msg} (word {word:#010x})")]
    CtsLost {
        /// The message sent.
        msg: &'static str,
        /// The PF word without CTS.
        word: u32,
    },
    /// RSTI or RSTD was seen before or while sending: the PF is resetting
    /// and the VF must run its reset (A.6 step 21, A.8 #14). The bits stay
    /// cached for that reset.
    #[error("PF reset seen during {0}")]
    PfReset(&'static str),
    /// The negotiated API does not have this message (A.5.3 "since API").
    #[error("{msg} needs mailbox API {needs}, negotiated {have}")]
    Unsupported {
        /// The message.
        msg: &'static str,
        /// The API it needs.
        needs: ApiVersion,
        /// The API in use.
        have: ApiVersion,
    },
    /// The PF accepted none of the offered API versions.
    #[error("PF accepts none of mailbox API 1.3, 1.2, 1.1, 1.0")]
    NoCommonApi,
    /// An argument the message cannot carry.
    #[error("{0}")]
    BadArgument(String),
    /// Any other transport failure (lock never granted, a reply to a
    /// different message, mailbox disabled).
    #[error(transparent)]
    Transport(MbxError),
}

/// The MTA hash vector of a multicast address for the PF's filter type
/// (A.5.3 "MC hash"): 12 address bits, the MAC read as a 48-bit little
/// endian number (byte 5 is bits 47:40).
pub fn mc_hash(mac: MacAddr, mc_filter_type: u32) -> u16 {
    let b = mac.0;
    let top = u32::from(b[4]) | u32::from(b[5]) << 8; // address bits 47:32
                                                      // Type 0 takes bits 47:36, 1 bits 46:35, 2 bits 45:34, 3 bits 43:32.
    let shift = match mc_filter_type {
        0 => 4,
        1 => 3,
        2 => 2,
        _ => 0,
    };
    ((top >> shift) & 0xFFF) as u16
}

fn too_many_multicast(n: usize) -> IxMbxError {
    IxMbxError::BadArgument(format!(
        "{n} multicast addresses, SET_MULTICAST carries at most {MAX_MC_HASHES}"
    ))
}

/// A request's words and exact length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    words: [u32; MBX_SIZE],
    len: usize,
    name: &'static str,
}

impl Request {
    fn new(name: &'static str, words: &[u32]) -> Request {
        let mut w = [0u32; MBX_SIZE];
        w[..words.len()].copy_from_slice(words);
        Request {
            words: w,
            len: words.len(),
            name,
        }
    }

    /// The words to write, exactly as long as the message (A.5.3).
    pub fn words(&self) -> &[u32] {
        &self.words[..self.len]
    }

    /// The message id, for errors and logs.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// VF_RESET: one word (A.5.3).
    pub fn reset() -> Request {
        Request::new("VF_RESET", &[MSG_VF_RESET])
    }

    /// SET_MAC_ADDR: the MAC at byte 4; length 3 (A.5.3).
    pub fn set_mac(mac: MacAddr) -> Request {
        let [a, b] = mac_words(mac);
        Request::new("SET_MAC_ADDR", &[MSG_SET_MAC_ADDR, a, b])
    }

    /// SET_MULTICAST: count in MSGINFO, hashes as 16-bit halves from word
    /// 1 on (the first in the low half); always 16 words (A.5.3).
    pub fn set_multicast(hashes: &[u16]) -> Result<Request, IxMbxError> {
        if hashes.len() > MAX_MC_HASHES {
            return Err(too_many_multicast(hashes.len()));
        }
        let mut w = [0u32; MBX_SIZE];
        w[0] = MSG_SET_MULTICAST | (hashes.len() as u32) << MSGINFO_SHIFT;
        for (i, h) in hashes.iter().enumerate() {
            w[1 + i / 2] |= u32::from(*h) << (16 * (i % 2));
        }
        Ok(Request::new("SET_MULTICAST", &w))
    }

    /// SET_VLAN: MSGINFO 1 to add, 0 to remove; [1] = id; length 2 (A.5.3).
    pub fn set_vlan(vid: u16, add: bool) -> Result<Request, IxMbxError> {
        if vid > MAX_VLAN_ID {
            return Err(IxMbxError::BadArgument(format!(
                "VLAN id {vid} is above {MAX_VLAN_ID}"
            )));
        }
        let w0 = MSG_SET_VLAN | u32::from(add) << MSGINFO_SHIFT;
        Ok(Request::new("SET_VLAN", &[w0, u32::from(vid)]))
    }

    /// SET_LPE: the max frame in bytes; length 2 (A.5.3).
    pub fn set_lpe(max_frame: u32) -> Request {
        Request::new("SET_LPE", &[MSG_SET_LPE, max_frame])
    }

    /// API_NEGOTIATE: [1] = the API enum, [2] = 0; length 3 (A.5.3).
    pub fn api_negotiate(api: ApiVersion) -> Request {
        Request::new("API_NEGOTIATE", &[MSG_API_NEGOTIATE, api.wire(), 0])
    }

    /// GET_QUEUES: five words, zeroed after the id (A.5.3).
    pub fn get_queues() -> Request {
        Request::new("GET_QUEUES", &[MSG_GET_QUEUES, 0, 0, 0, 0])
    }

    /// GET_RETA: one word (A.5.3).
    pub fn get_reta() -> Request {
        Request::new("GET_RETA", &[MSG_GET_RETA])
    }

    /// GET_RSS_KEY: one word (A.5.3).
    pub fn get_rss_key() -> Request {
        Request::new("GET_RSS_KEY", &[MSG_GET_RSS_KEY])
    }

    /// UPDATE_XCAST_MODE: [1] = mode; length 2 (A.5.3).
    pub fn update_xcast_mode(mode: XcastMode) -> Request {
        Request::new("UPDATE_XCAST_MODE", &[MSG_UPDATE_XCAST_MODE, mode.wire()])
    }

    /// GET_LINK_STATE: length 2 (A.5.3).
    pub fn get_link_state() -> Request {
        Request::new("GET_LINK_STATE", &[MSG_GET_LINK_STATE, 0])
    }
}

/// Timing of the ixgbevf mailbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PfTiming {
    /// Transport polling (A.5.1: 2000 × 500 µs).
    pub mbx: MbxTiming,
    /// Pause between sending VF_RESET and reading its reply (A.6 step 10:
    /// 10 ms).
    pub reset_settle: Duration,
}

impl Default for PfTiming {
    fn default() -> Self {
        PfTiming {
            mbx: MbxTiming::default(),
            reset_settle: Duration::from_millis(10),
        }
    }
}

/// The VF's side of the conversation with its PF: the transport, the
/// negotiated API and the multicast filter type from the last VF_RESET.
#[derive(Debug)]
pub struct PfMailbox {
    mbx: Transport,
    api: ApiVersion,
    mc_filter_type: u32,
    timing: PfTiming,
}

impl PfMailbox {
    /// A mailbox with posted operations off until [`enable`](Self::enable)
    /// (the VF reset turns them on, A.6 step 2) and API 1.0 (A.6 step 5).
    pub fn new(timing: PfTiming) -> PfMailbox {
        let mut mbx = Transport::new(timing.mbx);
        // A PF reset seen while waiting ends the wait at once rather than
        // after a second of polling that would also disable the mailbox.
        mbx.set_abort_on_reset(true);
        PfMailbox {
            mbx,
            api: ApiVersion::V1_0,
            mc_filter_type: 0,
            timing,
        }
    }

    /// The transport (for the reset and link checks on the control
    /// register).
    pub fn transport(&mut self) -> &mut Transport {
        &mut self.mbx
    }

    /// Turn posted operations on and forget cached events; part of the VF
    /// reset, after RSTI/RSTD cleared (A.6 steps 2, 8).
    pub fn enable(&mut self) {
        self.mbx.enable();
    }

    /// The negotiated API (1.0 until [`negotiate_api`](Self::negotiate_api)).
    pub fn api(&self) -> ApiVersion {
        self.api
    }

    /// The multicast filter type of the last VF_RESET reply.
    pub fn mc_filter_type(&self) -> u32 {
        self.mc_filter_type
    }

    /// Why the VF must reset, if it must (A.6 step 21, A.8 #14).
    pub fn lost_contact(&self) -> Option<LostContact> {
        self.mbx.lost_contact()
    }

    fn need(&self, msg: &'static str, needs: ApiVersion) -> Result<(), IxMbxError> {
        if self.api < needs {
            return Err(IxMbxError::Unsupported {
                msg,
                needs,
                have: self.api,
            });
        }
        Ok(())
    }

    /// Send `req`, read `reply.len()` words back, and sort the outcome
    /// into the errors a caller acts on. One request at a time: `&mut
    /// self` is the only way in.
    fn exchange<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
        req: &Request,
        reply: &mut [u32],
        settle: Duration,
    ) -> Result<u32, IxMbxError> {
        let name = req.name();
        let reset = req.words()[0] & MSG_ID_MASK == MSG_VF_RESET;
        // A PF that is resetting answers nothing useful; the reset bits
        // stay cached so the reset handling still sees them. VF_RESET is
        // the message that ends a reset, so it goes out regardless.
        if !reset && self.mbx.peek_bit(regs, MBX_RSTI | MBX_RSTD) {
            return Err(IxMbxError::PfReset(name));
        }
        self.mbx.set_abort_on_reset(!reset);
        let r = self.mbx.request(regs, req.words(), reply, settle);
        self.mbx.set_abort_on_reset(true);
        match r {
            Ok(w) => Ok(w),
            Err(MbxError::Nack { reply: w, .. }) if w & MSG_CTS == 0 && !reset => {
                Err(IxMbxError::CtsLost { msg: name, word: w })
            }
            Err(MbxError::Nack { reply: w, .. }) => Err(IxMbxError::Nack {
                msg: name,
                reply: w,
            }),
            Err(MbxError::Timeout(waited_for)) => Err(IxMbxError::Timeout {
                msg: name,
                waited_for,
            }),
            Err(MbxError::PfReset(_)) => Err(IxMbxError::PfReset(name)),
            // A PF_CONTROL_MSG where the reply should be: without CTS it
            // revokes the VF (A.5.4).
            Err(MbxError::Unexpected { reply: w, .. })
                if w & MSG_ID_MASK == MSG_PF_CONTROL && w & MSG_CTS == 0 =>
            {
                Err(IxMbxError::CtsLost { msg: name, word: w })
            }
            Err(e) => Err(IxMbxError::Transport(e)),
        }
    }

    /// VF_RESET: the admin MAC (or none) and the multicast filter type
    /// (A.5.3, A.6 step 10). The reply never has CTS; FAILURE only means
    /// "no MAC assigned". The API falls back to 1.0 (A.5.4).
    pub fn reset<R: RegisterSpace + ?Sized>(&mut self, regs: &R) -> Result<ResetReply, IxMbxError> {
        let mut reply = [0u32; RESET_REPLY_WORDS];
        let settle = self.timing.reset_settle;
        let mac = match self.exchange(regs, &Request::reset(), &mut reply, settle) {
            Ok(_) => {
                let mac = mac_from_words([reply[1], reply[2]]);
                mac.is_unicast().then_some(mac)
            }
            Err(IxMbxError::Nack { .. }) => None,
            Err(e) => return Err(e),
        };
        self.api = ApiVersion::V1_0;
        self.mc_filter_type = reply[3];
        Ok(ResetReply {
            mac,
            mc_filter_type: reply[3],
        })
    }

    /// One request with a one-word reply.
    fn simple<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
        req: &Request,
    ) -> Result<u32, IxMbxError> {
        let mut reply = [0u32; 1];
        self.exchange(regs, req, &mut reply, Duration::ZERO)
    }

    /// SET_MAC_ADDR (A.5.3). FAILURE: the PF keeps an admin MAC, or the
    /// address is refused.
    pub fn set_mac<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
        mac: MacAddr,
    ) -> Result<(), IxMbxError> {
        if !mac.is_unicast() {
            return Err(IxMbxError::BadArgument(format!(
                "{mac} is not a unicast address"
            )));
        }
        self.simple(regs, &Request::set_mac(mac)).map(drop)
    }

    /// SET_MULTICAST with the hashes of `addrs` for the PF's filter type
    /// (A.5.3). More than 30 addresses is an error: use
    /// [`XcastMode::AllMulti`] instead.
    pub fn set_multicast<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
        addrs: &[MacAddr],
    ) -> Result<(), IxMbxError> {
        if addrs.len() > MAX_MC_HASHES {
            return Err(too_many_multicast(addrs.len()));
        }
        let mut hashes = [0u16; MAX_MC_HASHES];
        for (h, a) in hashes.iter_mut().zip(addrs) {
            *h = mc_hash(*a, self.mc_filter_type);
        }
        let req = Request::set_multicast(&hashes[..addrs.len()])?;
        self.simple(regs, &req).map(drop)
    }

    /// SET_VLAN (A.5.3). FAILURE if the PF set a port VLAN or DCB.
    pub fn set_vlan<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
        vid: u16,
        add: bool,
    ) -> Result<(), IxMbxError> {
        let req = Request::set_vlan(vid, add)?;
        self.simple(regs, &req).map(drop)
    }

    /// SET_LPE with the max frame size; always sent during RX init (A.8
    /// #7: on 82599 it re-enables VF receive).
    pub fn set_lpe<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
        max_frame: u32,
    ) -> Result<(), IxMbxError> {
        self.simple(regs, &Request::set_lpe(max_frame)).map(drop)
    }

    /// API_NEGOTIATE from 1.3 down to 1.0; the first the PF accepts is
    /// kept (A.5.3, A.6 step 11). A refusal moves to the next version;
    /// anything else (timeout, reset, lost CTS) stops.
    pub fn negotiate_api<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
    ) -> Result<ApiVersion, IxMbxError> {
        for api in ApiVersion::OFFER {
            match self.simple(regs, &Request::api_negotiate(api)) {
                Ok(_) => {
                    self.api = api;
                    return Ok(api);
                }
                Err(IxMbxError::Nack { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(IxMbxError::NoCommonApi)
    }

    /// GET_QUEUES (API 1.1, A.5.3, A.6 step 12), clamped.
    pub fn get_queues<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
    ) -> Result<QueueInfo, IxMbxError> {
        let req = Request::get_queues();
        self.need(req.name(), ApiVersion::V1_1)?;
        let mut reply = [0u32; GET_QUEUES_WORDS];
        self.exchange(regs, &req, &mut reply, Duration::ZERO)?;
        Ok(QueueInfo::from_reply(&reply))
    }

    /// UPDATE_XCAST_MODE (API 1.2; PROMISC 1.3). Returns the mode the PF
    /// applied, which can be less than asked (an untrusted VF gets MULTI
    /// at most, A.5.3).
    pub fn update_xcast_mode<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
        mode: XcastMode,
    ) -> Result<XcastMode, IxMbxError> {
        let req = Request::update_xcast_mode(mode);
        self.need(req.name(), mode.needs())?;
        let mut reply = [0u32; 2];
        self.exchange(regs, &req, &mut reply, Duration::ZERO)?;
        XcastMode::from_wire(reply[1]).ok_or(IxMbxError::Transport(MbxError::Unexpected {
            id: MSG_UPDATE_XCAST_MODE,
            reply: reply[1],
        }))
    }

    /// GET_RETA (API 1.2, 82599/X540, when the admin allows "rss query";
    /// A.5.3). Entry i is bits 2(i mod 16)+1..2(i mod 16) of word 1 + i/16
    /// (the facts give "2 bits each"; lowest bits first is inferred from
    /// the little-endian layout of every other field).
    pub fn get_reta<R: RegisterSpace + ?Sized>(&mut self, regs: &R) -> Result<PfReta, IxMbxError> {
        let req = Request::get_reta();
        self.need(req.name(), ApiVersion::V1_2)?;
        let mut reply = [0u32; GET_RETA_REPLY_WORDS];
        self.exchange(regs, &req, &mut reply, Duration::ZERO)?;
        let mut reta = [0u8; PF_RETA_ENTRIES];
        for (i, e) in reta.iter_mut().enumerate() {
            *e = ((reply[1 + i / 16] >> (2 * (i % 16))) & 3) as u8;
        }
        Ok(PfReta(reta))
    }

    /// GET_RSS_KEY (API 1.2, same conditions as GET_RETA; A.5.3): the 40
    /// key bytes from word 1 on, little endian.
    pub fn get_rss_key<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
    ) -> Result<[u8; RSS_KEY_BYTES], IxMbxError> {
        let req = Request::get_rss_key();
        self.need(req.name(), ApiVersion::V1_2)?;
        let mut reply = [0u32; GET_RSS_KEY_REPLY_WORDS];
        self.exchange(regs, &req, &mut reply, Duration::ZERO)?;
        let mut key = [0u8; RSS_KEY_BYTES];
        for (chunk, w) in key.chunks_exact_mut(4).zip(&reply[1..]) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        Ok(key)
    }

    /// GET_LINK_STATE (the PF accepts it from 1.2; A.5.3): true when the
    /// admin has the VF's link enabled.
    pub fn get_link_state<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
    ) -> Result<bool, IxMbxError> {
        let req = Request::get_link_state();
        self.need(req.name(), ApiVersion::V1_2)?;
        let mut reply = [0u32; 2];
        self.exchange(regs, &req, &mut reply, Duration::ZERO)?;
        Ok(reply[1] != 0)
    }

    /// A message the PF sent on its own, read and acknowledged if there
    /// is one; never waits (A.5.4, A.6 step 21). A PF_CONTROL_MSG without
    /// CTS also marks the mailbox as having lost contact.
    pub fn poll_event<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
    ) -> Result<Option<PfEvent>, IxMbxError> {
        let w = match self.mbx.poll_pf_message(regs) {
            Ok(Some(w)) => w,
            Ok(None) => return Ok(None),
            Err(e) => return Err(IxMbxError::Transport(e)),
        };
        let replied = w & (MSG_ACK | MSG_NACK) != 0;
        Ok(Some(if w & MSG_ID_MASK == MSG_PF_CONTROL && !replied {
            PfEvent::Control {
                cts: w & MSG_CTS != 0,
            }
        } else {
            PfEvent::Other(w)
        }))
    }

    /// Has the PF signalled a reset (RSTI or RSTD, now or cached)? Consumes
    /// the cached RSTD: the caller is about to run the reset (A.6 step 21).
    pub fn take_pf_reset<R: RegisterSpace + ?Sized>(&mut self, regs: &R) -> bool {
        self.mbx.check_for_rst(regs)
    }
}
