//! What a view found wrong with a packet. The router's drop reasons map from
//! these variants, so each names one fault and the layer it was found in.

use std::fmt;

/// The header a [`PacketError`] was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Ethernet II header.
    Ethernet,
    /// An 802.1Q / 802.1ad tag.
    Vlan,
    /// ARP packet.
    Arp,
    /// IPv4 header.
    Ipv4,
    /// IPv6 fixed header.
    Ipv6,
    /// An IPv6 extension header.
    Ipv6Extension,
    /// ICMPv4 message.
    Icmpv4,
    /// ICMPv6 message.
    Icmpv6,
    /// UDP header.
    Udp,
    /// TCP header.
    Tcp,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Ethernet => "Ethernet",
            Layer::Vlan => "VLAN tag",
            Layer::Arp => "ARP",
            Layer::Ipv4 => "IPv4",
            Layer::Ipv6 => "IPv6",
            Layer::Ipv6Extension => "IPv6 extension header",
            Layer::Icmpv4 => "ICMPv4",
            Layer::Icmpv6 => "ICMPv6",
            Layer::Udp => "UDP",
            Layer::Tcp => "TCP",
        })
    }
}

/// Why a buffer is not a valid packet of the kind asked for. Small and
/// `Copy`: the data path turns it into a drop counter, not a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// The buffer ends before the header does.
    #[error("{layer} truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Where.
        layer: Layer,
        /// Bytes the header needs (from the start of its own view).
        need: usize,
        /// Bytes there are.
        have: usize,
    },
    /// More VLAN tags than [`super::ethernet::MAX_VLAN_TAGS`].
    #[error("more than {} VLAN tags", super::ethernet::MAX_VLAN_TAGS)]
    TooManyVlanTags,
    /// An 802.1ad service tag (0x88a8) inside another tag: it may only be
    /// the outer one (IEEE 802.1ad).
    #[error("802.1ad service tag inside another tag")]
    MisplacedServiceTag,
    /// The IP version field does not match the header asked for.
    #[error("{layer}: version field {found}")]
    BadVersion {
        /// Where.
        layer: Layer,
        /// The version found.
        found: u8,
    },
    /// A header length field below the minimum for its header.
    #[error("{layer}: header length {len} bytes")]
    BadHeaderLength {
        /// Where.
        layer: Layer,
        /// The header length the field gives, in bytes.
        len: usize,
    },
    /// A datagram length field shorter than its header or longer than the
    /// buffer.
    #[error("{layer}: total length {total} bytes with header {header} and buffer {have}")]
    BadTotalLength {
        /// Where.
        layer: Layer,
        /// The datagram length the field gives, in bytes.
        total: usize,
        /// The header length, in bytes.
        header: usize,
        /// Bytes in the buffer.
        have: usize,
    },
    /// The checksum does not verify.
    #[error("{layer}: bad checksum")]
    BadChecksum {
        /// Where.
        layer: Layer,
    },
    /// ARP for something other than IPv4 over Ethernet.
    #[error("ARP hardware type {hardware} / protocol {protocol:#06x} / lengths {hardware_len},{protocol_len}: only IPv4 over Ethernet")]
    UnsupportedArp {
        /// Hardware type field.
        hardware: u16,
        /// Protocol type field.
        protocol: u16,
        /// Hardware address length field.
        hardware_len: u8,
        /// Protocol address length field.
        protocol_len: u8,
    },
    /// A hop-by-hop options header that is not the first after the IPv6
    /// header (RFC 8200 section 4.1 allows it only there).
    #[error("IPv6 hop-by-hop options header not first in the chain")]
    MisplacedHopByHop,
    /// More IPv6 extension headers than [`super::ipv6::MAX_EXTENSION_HEADERS`].
    #[error(
        "more than {} IPv6 extension headers",
        super::ipv6::MAX_EXTENSION_HEADERS
    )]
    ExtensionChainTooLong,
}
