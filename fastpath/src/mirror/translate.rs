//! Turns one rtnetlink message, as the netlink crate parsed it, into a
//! [`KernelEvent`] in our own types, or says why it has no event.
//!
//! This step knows nothing of which interfaces are ours (that needs the
//! links seen so far, which the mirror keeps); it checks everything a
//! single message can tell: family, table, route type, required attributes.

use super::counters::IgnoreReason;
use super::event::{
    Addr, IfIndex, KernelEvent, Link, Neigh, NeighState, NextHop, Route, RouteKind, RoutePrefix,
};
use super::prefix6::Prefix6;
use crate::fib::Prefix4;
use drivers::net::MacAddr;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteNextHop, RouteType, RouteVia,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The kernel's main routing table (`RT_TABLE_MAIN`, linux/rtnetlink.h).
pub const MAIN_TABLE: u32 = 254;

/// The event one message stands for, or why it stands for none. Routes
/// of tables other than `table` are ignored.
pub fn translate(msg: &RouteNetlinkMessage, table: u32) -> Result<KernelEvent, IgnoreReason> {
    match msg {
        RouteNetlinkMessage::NewLink(m) => link(m).map(KernelEvent::Link),
        RouteNetlinkMessage::DelLink(m) => {
            unspec_family(m)?;
            Ok(KernelEvent::LinkGone {
                ifindex: IfIndex(m.header.index),
            })
        }
        RouteNetlinkMessage::NewAddress(m) => addr(m).map(KernelEvent::AddrAdd),
        RouteNetlinkMessage::DelAddress(m) => addr(m).map(KernelEvent::AddrDel),
        RouteNetlinkMessage::NewRoute(m) => route(m, table).map(KernelEvent::RouteAdd),
        RouteNetlinkMessage::DelRoute(m) => route(m, table).map(KernelEvent::RouteDel),
        RouteNetlinkMessage::NewNeighbour(m) => neigh(m).map(KernelEvent::NeighAdd),
        RouteNetlinkMessage::DelNeighbour(m) => neigh(m).map(KernelEvent::NeighDel),
        _ => Err(IgnoreReason::OtherMessage),
    }
}

/// Link messages of other families (AF_BRIDGE port changes, AF_INET6
/// per-interface settings) are about a facet of the link, not the link:
/// a bridge's DELLINK of family AF_BRIDGE only removes a port from a
/// bridge, and must not read as the link going away.
fn unspec_family(m: &LinkMessage) -> Result<(), IgnoreReason> {
    match m.header.interface_family {
        AddressFamily::Unspec => Ok(()),
        _ => Err(IgnoreReason::UnsupportedFamily),
    }
}

fn mac_of(bytes: &[u8]) -> Option<MacAddr> {
    <[u8; 6]>::try_from(bytes).ok().map(MacAddr)
}

fn link(m: &LinkMessage) -> Result<Link, IgnoreReason> {
    unspec_family(m)?;
    let mut name = None;
    let mut mac = None;
    let mut mtu = None;
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::Address(b) => mac = mac_of(b),
            LinkAttribute::Mtu(v) => mtu = Some(*v),
            _ => {}
        }
    }
    Ok(Link {
        ifindex: IfIndex(m.header.index),
        name: name.ok_or(IgnoreReason::ParseError)?,
        mac,
        mtu: mtu.ok_or(IgnoreReason::ParseError)?,
        up: m.header.flags.contains(LinkFlags::Up),
        carrier: m.header.flags.contains(LinkFlags::LowerUp),
    })
}

fn addr(m: &AddressMessage) -> Result<Addr, IgnoreReason> {
    let max_len = match m.header.family {
        AddressFamily::Inet => 32,
        AddressFamily::Inet6 => 128,
        _ => return Err(IgnoreReason::UnsupportedFamily),
    };
    let mut local = None;
    let mut address = None;
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer's
    // on a point-to-point IPv4 link, and the only one IPv6 sends
    // (linux/if_addr.h).
    let ip = match m.header.family {
        AddressFamily::Inet => local.or(address),
        _ => address.or(local),
    }
    .ok_or(IgnoreReason::ParseError)?;
    let family_matches = matches!(
        (m.header.family, ip),
        (AddressFamily::Inet, IpAddr::V4(_)) | (AddressFamily::Inet6, IpAddr::V6(_))
    );
    if !family_matches || m.header.prefix_len > max_len {
        return Err(IgnoreReason::ParseError);
    }
    Ok(Addr {
        ifindex: IfIndex(m.header.index),
        addr: ip,
        prefix_len: m.header.prefix_len,
    })
}

fn route_kind(kind: RouteType) -> Result<RouteKind, IgnoreReason> {
    Ok(match kind {
        RouteType::Unicast => RouteKind::Unicast,
        RouteType::Local => RouteKind::Local,
        RouteType::BlackHole => RouteKind::Blackhole,
        RouteType::Unreachable => RouteKind::Unreachable,
        RouteType::Prohibit => RouteKind::Prohibit,
        _ => return Err(IgnoreReason::UnsupportedKind),
    })
}

/// The gateway of a next hop: RTA_GATEWAY in the route's family, or
/// RTA_VIA (an IPv6 gateway for an IPv4 route, RFC 5549).
fn gateway(attrs: &[RouteAttribute]) -> Result<Option<IpAddr>, IgnoreReason> {
    let mut gw = None;
    for a in attrs {
        match a {
            RouteAttribute::Gateway(RouteAddress::Inet(v4)) => gw = Some(IpAddr::V4(*v4)),
            RouteAttribute::Gateway(RouteAddress::Inet6(v6)) => gw = Some(IpAddr::V6(*v6)),
            RouteAttribute::Via(RouteVia::Inet(v4)) => gw = Some(IpAddr::V4(*v4)),
            RouteAttribute::Via(RouteVia::Inet6(v6)) => gw = Some(IpAddr::V6(*v6)),
            RouteAttribute::Gateway(_) | RouteAttribute::Via(_) => {
                return Err(IgnoreReason::UnsupportedFamily)
            }
            _ => {}
        }
    }
    Ok(gw)
}

fn multipath_hop(h: &RouteNextHop) -> Result<NextHop, IgnoreReason> {
    Ok(NextHop {
        gateway: gateway(&h.attributes)?,
        ifindex: IfIndex(h.interface_index),
        // rtnh_hops holds the weight less one (linux/rtnetlink.h, struct
        // rtnexthop), so weights run 1 to 256.
        weight: u16::from(h.hops) + 1,
    })
}

fn route(m: &RouteMessage, wanted_table: u32) -> Result<Route, IgnoreReason> {
    let h = &m.header;
    let is_v4 = match h.address_family {
        AddressFamily::Inet => true,
        AddressFamily::Inet6 => false,
        _ => return Err(IgnoreReason::UnsupportedFamily),
    };
    let mut table = u32::from(h.table);
    let mut dst = None;
    let mut oif = None;
    let mut metric = 0;
    let mut multipath = None;
    for a in &m.attributes {
        match a {
            // RTA_TABLE carries tables above 255, for which rtm_table is
            // RT_TABLE_COMPAT; when present it is the truth.
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(d) => dst = Some(d),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Priority(p) => metric = *p,
            RouteAttribute::MultiPath(hops) => multipath = Some(hops),
            _ => {}
        }
    }
    if table != wanted_table {
        return Err(IgnoreReason::OtherTable);
    }
    let kind = route_kind(h.kind)?;
    if h.flags.contains(RouteFlags::Cloned) || h.source_prefix_length != 0 || h.tos != 0 {
        return Err(IgnoreReason::UnsupportedRoute);
    }
    let prefix = match (is_v4, dst) {
        (true, None) => Prefix4::new(Ipv4Addr::UNSPECIFIED, h.destination_prefix_length)
            .map(RoutePrefix::V4)
            .map_err(|_| IgnoreReason::ParseError)?,
        (true, Some(RouteAddress::Inet(a))) => Prefix4::new(*a, h.destination_prefix_length)
            .map(RoutePrefix::V4)
            .map_err(|_| IgnoreReason::ParseError)?,
        (false, None) => Prefix6::new(Ipv6Addr::UNSPECIFIED, h.destination_prefix_length)
            .map(RoutePrefix::V6)
            .map_err(|_| IgnoreReason::ParseError)?,
        (false, Some(RouteAddress::Inet6(a))) => Prefix6::new(*a, h.destination_prefix_length)
            .map(RoutePrefix::V6)
            .map_err(|_| IgnoreReason::ParseError)?,
        _ => return Err(IgnoreReason::ParseError),
    };
    let next_hops = match kind {
        // A drop route has no way out; the kernel still names an interface
        // for some (IPv6 unreachable routes say `dev lo`), which must not
        // make the route look foreign.
        RouteKind::Blackhole | RouteKind::Unreachable | RouteKind::Prohibit => Vec::new(),
        RouteKind::Unicast | RouteKind::Local => {
            let hops = match (multipath, oif) {
                (Some(hops), _) => hops
                    .iter()
                    .map(multipath_hop)
                    .collect::<Result<Vec<_>, _>>()?,
                (None, Some(oif)) => vec![NextHop {
                    gateway: gateway(&m.attributes)?,
                    ifindex: IfIndex(oif),
                    weight: 1,
                }],
                (None, None) => Vec::new(),
            };
            if hops.is_empty() {
                return Err(IgnoreReason::UnsupportedRoute);
            }
            hops
        }
    };
    Ok(Route {
        table,
        prefix,
        kind,
        metric,
        next_hops,
    })
}

fn neigh_state(s: NeighbourState) -> NeighState {
    match s {
        NeighbourState::Incomplete => NeighState::Incomplete,
        NeighbourState::Reachable => NeighState::Reachable,
        NeighbourState::Stale => NeighState::Stale,
        NeighbourState::Delay => NeighState::Delay,
        NeighbourState::Probe => NeighState::Probe,
        NeighbourState::Failed => NeighState::Failed,
        NeighbourState::Noarp => NeighState::NoArp,
        NeighbourState::Permanent => NeighState::Permanent,
        NeighbourState::None => NeighState::None,
        NeighbourState::Other(v) => NeighState::Other(v),
        // The enum is non-exhaustive: a state named by a later version
        // of the crate is still a state, just not one we can name.
        _ => NeighState::Other(u16::MAX),
    }
}

fn neigh(m: &NeighbourMessage) -> Result<Neigh, IgnoreReason> {
    let is_v4 = match m.header.family {
        AddressFamily::Inet => true,
        AddressFamily::Inet6 => false,
        _ => return Err(IgnoreReason::UnsupportedFamily),
    };
    let mut ip = None;
    let mut mac = None;
    for a in &m.attributes {
        match a {
            NeighbourAttribute::Destination(d) => ip = Some(d),
            NeighbourAttribute::LinkLayerAddress(b) => mac = mac_of(b),
            _ => {}
        }
    }
    let ip = match (is_v4, ip) {
        (true, Some(NeighbourAddress::Inet(a))) => IpAddr::V4(*a),
        (false, Some(NeighbourAddress::Inet6(a))) => IpAddr::V6(*a),
        _ => return Err(IgnoreReason::ParseError),
    };
    Ok(Neigh {
        ifindex: IfIndex(m.header.ifindex),
        ip,
        mac,
        state: neigh_state(m.header.state),
    })
}
