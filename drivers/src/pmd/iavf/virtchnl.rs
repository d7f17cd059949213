//! virtchnl: the messages a VF exchanges with its PF over the admin queue
//! (docs/facts/nic-facts.md B.4). Encoders produce the exact wire length
//! the PF validates (B.4.4: variable-length messages carry one element
//! more than they use, the legacy sizeof); decoders check lengths and
//! return typed errors, never panic on a short or odd reply.

use crate::net::MacAddr;

/// virtchnl opcodes, placed in the AQ descriptor's cookie_high (B.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Op {
    /// VIRTCHNL_OP_VERSION.
    Version = 1,
    /// VIRTCHNL_OP_RESET_VF (no reply).
    ResetVf = 2,
    /// VIRTCHNL_OP_GET_VF_RESOURCES.
    GetVfResources = 3,
    /// VIRTCHNL_OP_CONFIG_VSI_QUEUES.
    ConfigVsiQueues = 6,
    /// VIRTCHNL_OP_CONFIG_IRQ_MAP.
    ConfigIrqMap = 7,
    /// VIRTCHNL_OP_ENABLE_QUEUES.
    EnableQueues = 8,
    /// VIRTCHNL_OP_DISABLE_QUEUES.
    DisableQueues = 9,
    /// VIRTCHNL_OP_ADD_ETH_ADDR.
    AddEthAddr = 10,
    /// VIRTCHNL_OP_DEL_ETH_ADDR (B.4.2).
    DelEthAddr = 11,
    /// VIRTCHNL_OP_ADD_VLAN.
    AddVlan = 12,
    /// VIRTCHNL_OP_CONFIG_PROMISCUOUS_MODE.
    ConfigPromiscuousMode = 14,
    /// VIRTCHNL_OP_GET_STATS.
    GetStats = 15,
    /// VIRTCHNL_OP_EVENT (PF to VF only).
    Event = 17,
    /// VIRTCHNL_OP_CONFIG_RSS_KEY.
    ConfigRssKey = 23,
    /// VIRTCHNL_OP_CONFIG_RSS_LUT.
    ConfigRssLut = 24,
    /// VIRTCHNL_OP_GET_RSS_HENA_CAPS.
    GetRssHenaCaps = 25,
    /// VIRTCHNL_OP_SET_RSS_HENA.
    SetRssHena = 26,
}

impl Op {
    /// The opcode for a cookie_high value, if this driver knows it.
    pub fn from_u32(v: u32) -> Option<Op> {
        use Op::*;
        Some(match v {
            1 => Version,
            2 => ResetVf,
            3 => GetVfResources,
            6 => ConfigVsiQueues,
            7 => ConfigIrqMap,
            8 => EnableQueues,
            9 => DisableQueues,
            10 => AddEthAddr,
            11 => DelEthAddr,
            12 => AddVlan,
            14 => ConfigPromiscuousMode,
            15 => GetStats,
            17 => Event,
            23 => ConfigRssKey,
            24 => ConfigRssLut,
            25 => GetRssHenaCaps,
            26 => SetRssHena,
            _ => return None,
        })
    }
}

/// A virtchnl status other than SUCCESS, from cookie_low (B.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VcStatus {
    /// ERR_PARAM (−5).
    #[error("the PF rejected a parameter (VIRTCHNL_STATUS_ERR_PARAM)")]
    Param,
    /// ERR_NO_MEMORY (−18).
    #[error("the PF is out of memory (VIRTCHNL_STATUS_ERR_NO_MEMORY)")]
    NoMemory,
    /// ERR_OPCODE_MISMATCH (−38): also a message of the wrong length (B.4.4).
    #[error("the PF rejected the opcode or message length (VIRTCHNL_STATUS_ERR_OPCODE_MISMATCH)")]
    OpcodeMismatch,
    /// ERR_CQP_COMPL_ERROR (−39).
    #[error("completion error (VIRTCHNL_STATUS_ERR_CQP_COMPL_ERROR)")]
    CqpComplError,
    /// ERR_INVALID_VF_ID (−40).
    #[error("invalid VF id (VIRTCHNL_STATUS_ERR_INVALID_VF_ID)")]
    InvalidVfId,
    /// ERR_ADMIN_QUEUE_ERROR (−53).
    #[error("admin queue error at the PF (VIRTCHNL_STATUS_ERR_ADMIN_QUEUE_ERROR)")]
    AdminQueueError,
    /// ERR_NOT_SUPPORTED (−64).
    #[error("not supported by the PF (VIRTCHNL_STATUS_ERR_NOT_SUPPORTED)")]
    NotSupported,
    /// A code B.4.1 does not list.
    #[error("unknown virtchnl status {0}")]
    Other(i32),
}

impl VcStatus {
    /// `Ok` for SUCCESS (0), the typed error otherwise (B.4.1).
    pub fn check(v: i32) -> Result<(), VcStatus> {
        Err(match v {
            0 => return Ok(()),
            -5 => VcStatus::Param,
            -18 => VcStatus::NoMemory,
            -38 => VcStatus::OpcodeMismatch,
            -39 => VcStatus::CqpComplError,
            -40 => VcStatus::InvalidVfId,
            -53 => VcStatus::AdminQueueError,
            -64 => VcStatus::NotSupported,
            other => VcStatus::Other(other),
        })
    }
}

/// A reply that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than its structure.
    #[error("{what}: {got} bytes, at least {need} expected (nic-facts B.4.3)")]
    Short {
        /// The structure.
        what: &'static str,
        /// Bytes received.
        got: usize,
        /// Bytes needed.
        need: usize,
    },
    /// GET_VF_RESOURCES listed no SR-IOV VSI.
    #[error("GET_VF_RESOURCES lists {0} VSI(s), none of type SRIOV (6)")]
    NoSriovVsi(usize),
}

fn short(what: &'static str, got: usize, need: usize) -> Result<(), DecodeError> {
    if got < need {
        Err(DecodeError::Short { what, got, need })
    } else {
        Ok(())
    }
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(w)
}
fn put16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], o: usize, v: u64) {
    b[o..o + 8].copy_from_slice(&v.to_le_bytes());
}

/// VIRTCHNL_VERSION_MAJOR / MINOR this driver speaks (B.4.1).
pub const VERSION_MAJOR: u32 = 1;
/// Minor 1: GET_VF_RESOURCES carries a capability request (B.4.1).
pub const VERSION_MINOR: u32 = 1;

/// virtchnl_version_info (8 bytes, B.4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
}

impl Version {
    /// This driver's version, 1.1.
    pub const OURS: Version = Version {
        major: VERSION_MAJOR,
        minor: VERSION_MINOR,
    };

    /// The 8 request bytes (B.4.4: VERSION is 8).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; 8];
        put32(&mut b, 0, self.major);
        put32(&mut b, 4, self.minor);
        b
    }

    /// Parse the PF's answer.
    pub fn decode(b: &[u8]) -> Result<Version, DecodeError> {
        short("virtchnl_version_info", b.len(), 8)?;
        Ok(Version {
            major: u32_at(b, 0),
            minor: u32_at(b, 4),
        })
    }
}

/// Capability bits (B.4.2, bit positions).
pub mod caps {
    /// L2.
    pub const L2: u32 = 1 << 0;
    /// Write-back on ITR without interrupts (B.8 #3).
    pub const WB_ON_ITR: u32 = 1 << 5;
    /// Link speed in Mbps in events (B.4.3 pf_event).
    pub const ADV_LINK_SPEED: u32 = 1 << 7;
    /// VLAN filters.
    pub const VLAN: u32 = 1 << 16;
    /// RX polling.
    pub const RX_POLLING: u32 = 1 << 17;
    /// RSS configured through the PF (CONFIG_RSS_KEY/LUT).
    pub const RSS_PF: u32 = 1 << 19;
    /// What this driver asks for: the base-mode offloads (L2, VLAN,
    /// RSS_PF) with WB_ON_ITR and RX_POLLING, as DPDK's basic request
    /// (B.4.2); never RX_FLEX_DESC, so RX descriptors are the legacy
    /// 32-byte ones (B.4.2, B.8 #14). ADV_LINK_SPEED is not asked: link
    /// speeds come as the legacy codes this driver decodes.
    pub const REQUEST: u32 = L2 | VLAN | RSS_PF | WB_ON_ITR | RX_POLLING;
}

/// GET_VF_RESOURCES request: the u32 capability bitmap (B.4.4: 4 bytes
/// under 1.1).
pub fn get_vf_resources(caps: u32) -> Vec<u8> {
    caps.to_le_bytes().to_vec()
}

/// VIRTCHNL_VSI_SRIOV (B.4.3 vsi_res.vsi_type).
pub const VSI_TYPE_SRIOV: i32 = 6;

/// What GET_VF_RESOURCES granted (B.4.3 virtchnl_vf_resource), with the
/// SR-IOV VSI chosen (B.6 step 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VfResources {
    /// VSIs listed.
    pub num_vsis: u16,
    /// Queue pairs for the VF.
    pub num_queue_pairs: u16,
    /// MSI-X vectors, vector 0 included.
    pub max_vectors: u16,
    /// Largest MTU.
    pub max_mtu: u16,
    /// Capabilities the PF granted.
    pub cap_flags: u32,
    /// RSS key bytes.
    pub rss_key_size: u32,
    /// RSS LUT entries.
    pub rss_lut_size: u32,
    /// The SR-IOV VSI.
    pub vsi_id: u16,
    /// Its queue pairs.
    pub vsi_queue_pairs: u16,
    /// Its default MAC (zero when the PF assigned none).
    pub mac: MacAddr,
}

impl VfResources {
    /// Parse a reply: the 20-byte header and num_vsis 16-byte vsi_res
    /// entries; choose the first of type SRIOV (B.4.3, B.4.4).
    pub fn decode(b: &[u8]) -> Result<VfResources, DecodeError> {
        short("virtchnl_vf_resource", b.len(), 20)?;
        let num_vsis = u16_at(b, 0);
        let n = num_vsis as usize;
        short(
            "virtchnl_vf_resource with its vsi_res",
            b.len(),
            20 + 16 * n,
        )?;
        let vsi = (0..n)
            .map(|i| &b[20 + 16 * i..20 + 16 * (i + 1)])
            .find(|v| u32_at(v, 4) as i32 == VSI_TYPE_SRIOV)
            .ok_or(DecodeError::NoSriovVsi(n))?;
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&vsi[10..16]);
        Ok(VfResources {
            num_vsis,
            num_queue_pairs: u16_at(b, 2),
            max_vectors: u16_at(b, 4),
            max_mtu: u16_at(b, 6),
            cap_flags: u32_at(b, 8),
            rss_key_size: u32_at(b, 12),
            rss_lut_size: u32_at(b, 16),
            vsi_id: u16_at(vsi, 0),
            vsi_queue_pairs: u16_at(vsi, 2),
            mac: MacAddr(mac),
        })
    }

    /// Queue pairs the VF may use: the VSI's, bounded by the VF's and by
    /// the 16 that base-mode bitmaps address (B.8 #9).
    pub fn queue_pairs(&self) -> usize {
        let n = if self.vsi_queue_pairs == 0 {
            self.num_queue_pairs
        } else {
            self.vsi_queue_pairs.min(self.num_queue_pairs.max(1))
        };
        (n as usize).clamp(1, MAX_QUEUE_PAIRS)
    }
}

/// Base-mode VFs address at most 16 queue pairs (B.8 #9).
pub const MAX_QUEUE_PAIRS: usize = 16;

/// One queue pair for CONFIG_VSI_QUEUES (B.4.3 virtchnl_queue_pair_info).
/// A zero ring_len leaves that half unused (B.6 step 10).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueuePair {
    /// TX ring descriptors (multiple of 8, B.8 #2), 0 = none.
    pub tx_ring_len: u16,
    /// TX ring DMA address.
    pub tx_ring_addr: u64,
    /// RX ring descriptors (multiple of 32, B.8 #2), 0 = none.
    pub rx_ring_len: u32,
    /// RX ring DMA address.
    pub rx_ring_addr: u64,
    /// RX buffer bytes (multiple of 128, B.8 #4).
    pub databuffer_size: u32,
    /// Largest frame (B.6 step 10: MTU + 26).
    pub max_pkt_size: u32,
}

/// The most pairs one CONFIG_VSI_QUEUES carries in a 4096-byte buffer
/// (B.4.4 "upper bound": (4096 − 8)/64 − 1).
pub const MAX_PAIRS_PER_MSG: usize = (4096 - 8) / 64 - 1;

/// CONFIG_VSI_QUEUES for `pairs` (queue ids 0..n): 72 + 64·n bytes
/// (B.4.4), the last 64 the legacy sizeof's spare element, zero.
pub fn config_vsi_queues(vsi_id: u16, pairs: &[QueuePair]) -> Vec<u8> {
    let n = pairs.len();
    let mut b = vec![0u8; 8 + 64 * (n + 1)];
    put16(&mut b, 0, vsi_id);
    put16(&mut b, 2, n as u16);
    for (q, p) in pairs.iter().enumerate() {
        let o = 8 + 64 * q;
        // txq_info (24)
        put16(&mut b, o, vsi_id);
        put16(&mut b, o + 2, q as u16);
        put16(&mut b, o + 4, p.tx_ring_len);
        put64(&mut b, o + 8, p.tx_ring_addr);
        // rxq_info (40) at +24
        let r = o + 24;
        put16(&mut b, r, vsi_id);
        put16(&mut b, r + 2, q as u16);
        put32(&mut b, r + 4, p.rx_ring_len);
        put32(&mut b, r + 12, p.databuffer_size);
        put32(&mut b, r + 16, p.max_pkt_size);
        // crc_disable 0, rxdid 0 (legacy, B.8 #14), flags 0.
        put64(&mut b, r + 24, p.rx_ring_addr);
    }
    b
}

/// One MSI-X vector and the queues it serves (B.4.3 virtchnl_vector_map).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VectorMap {
    /// Vector (0 = admin queue).
    pub vector_id: u16,
    /// RX queues (bitmap).
    pub rxq_map: u16,
    /// TX queues (bitmap).
    pub txq_map: u16,
    /// RX ITR index.
    pub rxitr_idx: u16,
    /// TX ITR index.
    pub txitr_idx: u16,
}

/// CONFIG_IRQ_MAP: 14 + 12·n bytes (B.4.4).
pub fn config_irq_map(vsi_id: u16, maps: &[VectorMap]) -> Vec<u8> {
    let n = maps.len();
    let mut b = vec![0u8; 2 + 12 * (n + 1)];
    put16(&mut b, 0, n as u16);
    for (i, m) in maps.iter().enumerate() {
        let o = 2 + 12 * i;
        put16(&mut b, o, vsi_id);
        put16(&mut b, o + 2, m.vector_id);
        put16(&mut b, o + 4, m.rxq_map);
        put16(&mut b, o + 6, m.txq_map);
        put16(&mut b, o + 8, m.rxitr_idx);
        put16(&mut b, o + 10, m.txitr_idx);
    }
    b
}

/// virtchnl_queue_select (12 bytes, B.4.3): ENABLE_QUEUES,
/// DISABLE_QUEUES and GET_STATS (which uses only vsi_id).
pub fn queue_select(vsi_id: u16, rx_queues: u32, tx_queues: u32) -> Vec<u8> {
    let mut b = vec![0u8; 12];
    put16(&mut b, 0, vsi_id);
    put32(&mut b, 4, rx_queues);
    put32(&mut b, 8, tx_queues);
    b
}

/// virtchnl_ether_addr type PRIMARY (B.4.3).
pub const ETH_ADDR_PRIMARY: u8 = 1;
/// virtchnl_ether_addr type EXTRA (B.4.3).
pub const ETH_ADDR_EXTRA: u8 = 2;

/// Most addresses one ADD/DEL_ETH_ADDR carries: the message must fit the
/// 4096-byte AQ buffer (B.4.4 upper bound) at 12 + 8·n bytes.
pub const MAX_ADDRS_PER_MSG: usize = (4096 - 4) / 8 - 1;

/// ADD_ETH_ADDR or DEL_ETH_ADDR: 12 + 8·n bytes (B.4.4); each address with its type.
pub fn eth_addr_list(vsi_id: u16, addrs: &[(MacAddr, u8)]) -> Vec<u8> {
    let n = addrs.len();
    let mut b = vec![0u8; 4 + 8 * (n + 1)];
    put16(&mut b, 0, vsi_id);
    put16(&mut b, 2, n as u16);
    for (i, (mac, ty)) in addrs.iter().enumerate() {
        let o = 4 + 8 * i;
        b[o..o + 6].copy_from_slice(&mac.0);
        b[o + 6] = *ty;
    }
    b
}

/// ADD_VLAN: 6 + 2·n bytes (B.4.4; the header's legacy sizeof holds one
/// id).
pub fn vlan_filter_list(vsi_id: u16, vlans: &[u16]) -> Vec<u8> {
    let n = vlans.len();
    let mut b = vec![0u8; 4 + 2 * (n + 1)];
    put16(&mut b, 0, vsi_id);
    put16(&mut b, 2, n as u16);
    for (i, v) in vlans.iter().enumerate() {
        put16(&mut b, 4 + 2 * i, *v);
    }
    b
}

/// promisc flags (B.4.3): unicast promiscuous.
pub const PROMISC_UNICAST: u16 = 0x1;
/// promisc flags (B.4.3): multicast promiscuous.
pub const PROMISC_MULTICAST: u16 = 0x2;

/// CONFIG_PROMISCUOUS_MODE: 4 bytes (B.4.4).
pub fn promisc(vsi_id: u16, flags: u16) -> Vec<u8> {
    let mut b = vec![0u8; 4];
    put16(&mut b, 0, vsi_id);
    put16(&mut b, 2, flags);
    b
}

/// CONFIG_RSS_KEY / CONFIG_RSS_LUT: 4 + n bytes of header and data plus
/// the legacy sizeof's spare byte, 5 + n in all (B.4.4).
pub fn rss_bytes(vsi_id: u16, data: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 5 + data.len()];
    put16(&mut b, 0, vsi_id);
    put16(&mut b, 2, data.len() as u16);
    b[4..4 + data.len()].copy_from_slice(data);
    b
}

/// SET_RSS_HENA: the u64 hash-enable bitmap (8 bytes, B.4.4).
pub fn rss_hena(hena: u64) -> Vec<u8> {
    hena.to_le_bytes().to_vec()
}

/// The GET_RSS_HENA_CAPS reply: the u64 of hash types the PF supports
/// (B.4.1, B.4.3 virtchnl_rss_hena).
pub fn decode_hena(b: &[u8]) -> Result<u64, DecodeError> {
    short("virtchnl_rss_hena", b.len(), 8)?;
    Ok(u64_at(b, 0))
}

/// virtchnl_eth_stats (96 bytes, B.4.3), counters since the VF's last
/// reset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EthStats {
    /// rx_bytes.
    pub rx_bytes: u64,
    /// rx_unicast.
    pub rx_unicast: u64,
    /// rx_multicast.
    pub rx_multicast: u64,
    /// rx_broadcast.
    pub rx_broadcast: u64,
    /// rx_discards.
    pub rx_discards: u64,
    /// rx_unknown_protocol.
    pub rx_unknown_protocol: u64,
    /// tx_bytes.
    pub tx_bytes: u64,
    /// tx_unicast.
    pub tx_unicast: u64,
    /// tx_multicast.
    pub tx_multicast: u64,
    /// tx_broadcast.
    pub tx_broadcast: u64,
    /// tx_discards.
    pub tx_discards: u64,
    /// tx_errors.
    pub tx_errors: u64,
}

impl EthStats {
    /// Bytes on the wire.
    pub const LEN: usize = 96;

    /// The twelve counters in wire order.
    pub fn as_array(&self) -> [u64; 12] {
        [
            self.rx_bytes,
            self.rx_unicast,
            self.rx_multicast,
            self.rx_broadcast,
            self.rx_discards,
            self.rx_unknown_protocol,
            self.tx_bytes,
            self.tx_unicast,
            self.tx_multicast,
            self.tx_broadcast,
            self.tx_discards,
            self.tx_errors,
        ]
    }

    /// From the twelve counters in wire order.
    pub fn from_array(a: [u64; 12]) -> EthStats {
        EthStats {
            rx_bytes: a[0],
            rx_unicast: a[1],
            rx_multicast: a[2],
            rx_broadcast: a[3],
            rx_discards: a[4],
            rx_unknown_protocol: a[5],
            tx_bytes: a[6],
            tx_unicast: a[7],
            tx_multicast: a[8],
            tx_broadcast: a[9],
            tx_discards: a[10],
            tx_errors: a[11],
        }
    }

    /// Parse the reply.
    pub fn decode(b: &[u8]) -> Result<EthStats, DecodeError> {
        short("virtchnl_eth_stats", b.len(), Self::LEN)?;
        Ok(Self::from_array(std::array::from_fn(|i| u64_at(b, 8 * i))))
    }

    /// The 96 bytes (what a PF sends).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; Self::LEN];
        for (i, v) in self.as_array().iter().enumerate() {
            put64(&mut b, 8 * i, *v);
        }
        b
    }
}

/// A PF event (B.4.3 virtchnl_pf_event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PfEvent {
    /// LINK_CHANGE (1): up or down, the legacy speed code.
    LinkChange {
        /// Link up.
        up: bool,
        /// Legacy speed code (B.4.3).
        speed_code: u32,
    },
    /// RESET_IMPENDING (2).
    ResetImpending,
    /// PF_DRIVER_CLOSE (3).
    PfDriverClose,
    /// Any other event number.
    Other(i32),
}

impl PfEvent {
    /// Bytes of virtchnl_pf_event.
    pub const LEN: usize = 16;

    /// Parse an event message.
    pub fn decode(b: &[u8]) -> Result<PfEvent, DecodeError> {
        short("virtchnl_pf_event", b.len(), Self::LEN)?;
        Ok(match u32_at(b, 0) as i32 {
            1 => PfEvent::LinkChange {
                up: b[8] != 0,
                speed_code: u32_at(b, 4),
            },
            2 => PfEvent::ResetImpending,
            3 => PfEvent::PfDriverClose,
            e => PfEvent::Other(e),
        })
    }

    /// The 16 bytes (what a PF sends); severity 0.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; Self::LEN];
        let (ev, speed, up) = match *self {
            PfEvent::LinkChange { up, speed_code } => (1, speed_code, up),
            PfEvent::ResetImpending => (2, 0, false),
            PfEvent::PfDriverClose => (3, 0, false),
            PfEvent::Other(e) => (e, 0, false),
        };
        put32(&mut b, 0, ev as u32);
        put32(&mut b, 4, speed);
        b[8] = up as u8;
        b
    }
}

/// Mbps for a legacy link speed code (B.4.3), 0 if unknown.
pub fn legacy_speed_mbps(code: u32) -> u32 {
    match code {
        0x1 => 2_500,
        0x2 => 100,
        0x4 => 1_000,
        0x8 => 10_000,
        0x10 => 40_000,
        0x20 => 20_000,
        0x40 => 25_000,
        0x80 => 5_000,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_8_bytes_1_1() {
        assert_eq!(Version::OURS.encode(), [1, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(
            Version::decode(&[1, 0, 0, 0, 1, 0, 0, 0]),
            Ok(Version::OURS)
        );
        assert!(Version::decode(&[1, 0, 0]).is_err());
    }

    #[test]
    fn get_vf_resources_request_is_the_4_byte_capability_bitmap() {
        let b = get_vf_resources(caps::REQUEST);
        assert_eq!(b.len(), 4);
        // L2 0, WB_ON_ITR 5, VLAN 16, RX_POLLING 17, RSS_PF 19 (B.4.2).
        assert_eq!(u32_at(&b, 0), 0x000B_0021);
    }

    fn resources(vsis: &[(u16, i32, [u8; 6])]) -> Vec<u8> {
        let mut b = vec![0u8; 20 + 16 * vsis.len()];
        put16(&mut b, 0, vsis.len() as u16);
        put16(&mut b, 2, 4);
        put16(&mut b, 4, 5);
        put16(&mut b, 6, 9000);
        put32(&mut b, 8, caps::L2 | caps::RSS_PF);
        put32(&mut b, 12, 52);
        put32(&mut b, 16, 64);
        for (i, (id, ty, mac)) in vsis.iter().enumerate() {
            let o = 20 + 16 * i;
            put16(&mut b, o, *id);
            put16(&mut b, o + 2, 4);
            put32(&mut b, o + 4, *ty as u32);
            b[o + 10..o + 16].copy_from_slice(mac);
        }
        b
    }

    #[test]
    fn vf_resources_pick_the_sriov_vsi() {
        let mac = [2, 1, 2, 3, 4, 5];
        let b = resources(&[(7, 0, [0; 6]), (9, VSI_TYPE_SRIOV, mac)]);
        let r = VfResources::decode(&b).unwrap();
        assert_eq!(r.vsi_id, 9);
        assert_eq!(r.mac, MacAddr(mac));
        assert_eq!((r.num_queue_pairs, r.max_vectors, r.max_mtu), (4, 5, 9000));
        assert_eq!((r.rss_key_size, r.rss_lut_size), (52, 64));
        assert_eq!(r.queue_pairs(), 4);
        assert_eq!(
            VfResources::decode(&resources(&[(7, 0, [0; 6])])),
            Err(DecodeError::NoSriovVsi(1))
        );
        // num_vsis says 2, one entry present: short, not a panic.
        let mut cut = b.clone();
        cut.truncate(20 + 16);
        assert!(matches!(
            VfResources::decode(&cut),
            Err(DecodeError::Short { need: 52, .. })
        ));
    }

    #[test]
    fn config_vsi_queues_is_72_plus_64n_with_each_field_placed() {
        let p = QueuePair {
            tx_ring_len: 512,
            tx_ring_addr: 0x1_2345_6780,
            rx_ring_len: 256,
            rx_ring_addr: 0xAB_CDEF_0000,
            databuffer_size: 2048,
            max_pkt_size: 1526,
        };
        for n in 1..=3usize {
            assert_eq!(config_vsi_queues(5, &vec![p; n]).len(), 72 + 64 * n);
        }
        let b = config_vsi_queues(5, &[p, p]);
        assert_eq!(&b[0..8], &[5, 0, 2, 0, 0, 0, 0, 0]);
        // Pair 1: txq at 72, rxq at 96.
        let t = 72;
        assert_eq!(&b[t..t + 8], &[5, 0, 1, 0, 0, 2, 0, 0]);
        assert_eq!(u64_at(&b, t + 8), 0x1_2345_6780);
        assert_eq!(u64_at(&b, t + 16), 0);
        let r = t + 24;
        assert_eq!(&b[r..r + 4], &[5, 0, 1, 0]);
        assert_eq!(u32_at(&b, r + 4), 256);
        assert_eq!(u32_at(&b, r + 8), 0, "hdr_size, splithdr");
        assert_eq!(u32_at(&b, r + 12), 2048);
        assert_eq!(u32_at(&b, r + 16), 1526);
        assert_eq!(u32_at(&b, r + 20), 0, "crc_disable, rxdid, flags");
        assert_eq!(u64_at(&b, r + 24), 0xAB_CDEF_0000);
        assert!(b[8 + 64 * 2..].iter().all(|&x| x == 0), "spare element");
    }

    #[test]
    fn config_irq_map_is_14_plus_12n() {
        let m = VectorMap {
            vector_id: 1,
            rxq_map: 0b11,
            txq_map: 0b11,
            rxitr_idx: 0,
            txitr_idx: 1,
        };
        let b = config_irq_map(5, &[m]);
        assert_eq!(b.len(), 26);
        assert_eq!(&b[..14], &[1, 0, 5, 0, 1, 0, 3, 0, 3, 0, 0, 0, 1, 0]);
        assert_eq!(config_irq_map(5, &[m, m, m]).len(), 14 + 36);
    }

    #[test]
    fn queue_select_promisc_and_hena_lengths() {
        assert_eq!(
            queue_select(5, 0b101, 0b11),
            [5, 0, 0, 0, 5, 0, 0, 0, 3, 0, 0, 0]
        );
        assert_eq!(
            promisc(5, PROMISC_UNICAST | PROMISC_MULTICAST),
            [5, 0, 3, 0]
        );
        assert_eq!(rss_hena(1 << 33), [0, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(decode_hena(&[0, 0, 0, 0, 2, 0, 0, 0]), Ok(1 << 33));
        assert!(decode_hena(&[1, 2, 3]).is_err());
    }

    #[test]
    fn eth_addr_list_is_12_plus_8n() {
        let a = MacAddr([2, 0, 0, 0, 0, 9]);
        let b = eth_addr_list(5, &[(a, ETH_ADDR_PRIMARY)]);
        assert_eq!(b.len(), 20);
        assert_eq!(&b[..12], &[5, 0, 1, 0, 2, 0, 0, 0, 0, 9, 1, 0]);
        assert_eq!(eth_addr_list(5, &[(a, 1), (a, 2)]).len(), 28);
    }

    #[test]
    fn vlan_filter_list_is_6_plus_2n() {
        assert_eq!(vlan_filter_list(5, &[100]), [5, 0, 1, 0, 100, 0, 0, 0]);
        assert_eq!(vlan_filter_list(5, &[1, 2, 3]).len(), 12);
    }

    #[test]
    fn rss_key_and_lut_are_5_plus_n() {
        let key: Vec<u8> = (0..52).collect();
        let b = rss_bytes(5, &key);
        assert_eq!(b.len(), 57);
        assert_eq!(&b[..6], &[5, 0, 52, 0, 0, 1]);
        assert_eq!(b[56], 0);
        assert_eq!(rss_bytes(5, &[0, 1, 0, 1]).len(), 9);
    }

    #[test]
    fn stats_and_events_round_trip() {
        let s = EthStats::from_array(std::array::from_fn(|i| i as u64 * 1000 + 1));
        let b = s.encode();
        assert_eq!(b.len(), 96);
        assert_eq!(u64_at(&b, 88), 11_001);
        assert_eq!(EthStats::decode(&b), Ok(s));
        assert!(EthStats::decode(&b[..95]).is_err());
        let up = PfEvent::LinkChange {
            up: true,
            speed_code: 0x10,
        };
        let e = up.encode();
        assert_eq!(&e[..9], &[1, 0, 0, 0, 0x10, 0, 0, 0, 1]);
        assert_eq!(PfEvent::decode(&e), Ok(up));
        assert_eq!(
            PfEvent::decode(&PfEvent::ResetImpending.encode()),
            Ok(PfEvent::ResetImpending)
        );
        assert_eq!(legacy_speed_mbps(0x10), 40_000);
        assert_eq!(legacy_speed_mbps(0x40), 25_000);
    }

    #[test]
    fn statuses_are_typed() {
        assert_eq!(VcStatus::check(0), Ok(()));
        assert_eq!(VcStatus::check(-38), Err(VcStatus::OpcodeMismatch));
        assert_eq!(VcStatus::check(-64), Err(VcStatus::NotSupported));
        assert_eq!(VcStatus::check(-7), Err(VcStatus::Other(-7)));
    }
}
