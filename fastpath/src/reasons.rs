//! Why a packet left the fast path without being forwarded: dropped
//! ([`DropReason`]) or handed to the kernel ([`PuntReason`]).
//!
//! Each list is written once, in the [`reasons!`] invocations below: the
//! macro makes the enum, `COUNT`, `ALL` (counter order), the statistics
//! name and the help text. Counters are arrays indexed by `reason as
//! usize`, so adding a reason here is the whole change.

use std::fmt;

/// Declares a reason enum from one list of `Variant => "name", "help"`.
macro_rules! reasons {
    (
        $(#[$meta:meta])*
        pub enum $enum:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $name:literal, $help:literal; )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $enum {
            $( #[doc = $help] $(#[$vmeta])* $variant, )+
        }

        impl $enum {
            /// Every reason, in counter order.
            pub const ALL: [$enum; [$($enum::$variant),+].len()] = [$($enum::$variant),+];
            /// How many reasons there are (the length of a counter array).
            pub const COUNT: usize = Self::ALL.len();

            /// Name shown in statistics and JSON.
            pub const fn name(self) -> &'static str {
                match self {
                    $( $enum::$variant => $name, )+
                }
            }

            /// What the reason means, for help texts and documentation.
            pub const fn help(self) -> &'static str {
                match self {
                    $( $enum::$variant => $help, )+
                }
            }
        }

        impl fmt::Display for $enum {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

reasons! {
    /// Why the fast path dropped a packet. Every drop has one.
    pub enum DropReason {
        TxFull => "tx_full", "the output queue had no room for it";
        Runt => "runt", "too short for the work asked (no Ethernet header in mac mode)";
        PuntRingFull => "punt_ring_full", "the exception ring to the kernel was full";
        UnknownPort => "unknown_port", "came in on a port the tables do not know yet";
        OtherHost => "other_host", "unicast frame for another station's MAC address";
        BadEthernet => "bad_ethernet", "truncated Ethernet header or VLAN tag stack";
        Ipv4Truncated => "ipv4_truncated", "shorter than an IPv4 header (RFC 1812 5.2.2 (1)/(5))";
        Ipv4BadVersion => "ipv4_bad_version", "IPv4 version field not 4 (RFC 1812 5.2.2 (3))";
        Ipv4BadHeaderLength => "ipv4_bad_header_len", "IPv4 IHL below 5 (RFC 1812 5.2.2 (4))";
        Ipv4BadTotalLength => "ipv4_bad_total_len", "IPv4 total length below the header or past the frame (RFC 1812 5.2.2 (5))";
        Ipv4BadChecksum => "ipv4_bad_checksum", "IPv4 header checksum wrong (RFC 1812 5.2.2 (2))";
        Ipv4MartianSource => "ipv4_martian_source", "IPv4 source 0/8, 127/8, multicast or broadcast (RFC 1812 5.3.7)";
        Ipv4MartianDestination => "ipv4_martian_dest", "IPv4 destination 0/8 or 127/8 (RFC 1812 5.3.7)";
        Ipv6Truncated => "ipv6_truncated", "shorter than the IPv6 fixed header";
        Ipv6BadVersion => "ipv6_bad_version", "IPv6 version field not 6 (RFC 8200 3)";
        Ipv6BadPayloadLength => "ipv6_bad_payload_len", "IPv6 payload length past the frame (RFC 8200 3)";
        Ipv6BadSource => "ipv6_bad_source", "IPv6 source multicast or loopback (RFC 4291 2.5.3, 2.7)";
        Ipv6BadDestination => "ipv6_bad_dest", "IPv6 destination unspecified or loopback (RFC 4291 2.5.2, 2.5.3)";
        Blackhole => "blackhole", "the route is a blackhole";
        BadNextHop => "bad_next_hop", "the route names a next hop or port the tables do not hold";
        Stalled => "stalled", "left at a pipeline stage (a bug: counted, not lost)";
    }
}

reasons! {
    /// Why the fast path handed a packet to the kernel (its exception
    /// interface) instead of forwarding it. Every punt has one.
    pub enum PuntReason {
        Arp => "arp", "ARP: the kernel answers and learns";
        OtherEthertype => "other_ethertype", "neither IPv4, IPv6 nor ARP (LLDP, ...)";
        VlanTagged => "vlan_tagged", "802.1Q/802.1ad tagged: VLANs are the kernel's";
        Local => "local", "for one of our own addresses";
        L2Broadcast => "l2_broadcast", "link-layer broadcast or multicast to a unicast IP address: never forwarded (RFC 1812 5.3.4), the kernel takes what is for it";
        Ipv4Options => "ipv4_options", "IPv4 header with options (RFC 1812 5.2.4 processing)";
        Ipv4Multicast => "ipv4_multicast", "IPv4 multicast or broadcast destination (OSPF, VRRP, DHCP, ...)";
        Ipv6Multicast => "ipv6_multicast", "IPv6 multicast destination (ND, RS/RA, OSPFv3, VRRP, ...)";
        Ipv6LinkLocal => "ipv6_link_local", "IPv6 link-local source or destination: never forwarded (RFC 4291 2.5.6)";
        Ipv6HopByHop => "ipv6_hop_by_hop", "IPv6 hop-by-hop options header (RFC 8200 4.3)";
        TtlExceeded => "ttl_exceeded", "IPv4 TTL 0 or 1: the kernel sends time-exceeded (RFC 1812 5.3.1)";
        HopLimitExceeded => "hop_limit_exceeded", "IPv6 hop limit 0 or 1: the kernel sends time-exceeded (RFC 8200 3)";
        NoRoute => "no_route", "no route: the kernel sends destination-unreachable";
        Unreachable => "unreachable", "unreachable or prohibit route: the kernel sends the ICMP error";
        Unresolved => "unresolved", "next hop's link address unknown: the kernel resolves it and sends";
        TooBig => "too_big", "larger than the output MTU: the kernel sends frag-needed or packet-too-big";
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_in_counter_order() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        for (i, r) in PuntReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        let names: HashSet<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), DropReason::COUNT);
        let names: HashSet<_> = PuntReason::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), PuntReason::COUNT);
        assert_eq!(DropReason::TxFull.to_string(), "tx_full");
        assert_eq!(PuntReason::TtlExceeded.name(), "ttl_exceeded");
        assert!(PuntReason::TooBig.help().contains("MTU"));
    }
}
