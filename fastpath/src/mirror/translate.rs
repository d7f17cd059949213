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
use crate::fib::{Prefix4, Prefix6};
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::datagram::{split, Parsed};
    use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload};
    use netlink_packet_route::route::RouteProtocol;
    use proptest::prelude::*;

    const FP0: u32 = 3;
    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0xfa, 0x01];

    /// Serializes `m` as the kernel would send it and reads it back
    /// through the datagram splitter, so each test covers the byte path.
    fn over_the_wire(m: RouteNetlinkMessage) -> Result<KernelEvent, IgnoreReason> {
        let mut packet =
            NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::InnerMessage(m));
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        let mut parsed = split(&bytes);
        assert_eq!(parsed.len(), 1);
        match parsed.pop() {
            Some(Parsed::Message { msg, interrupted }) => {
                assert!(!interrupted);
                match msg.payload {
                    NetlinkPayload::InnerMessage(m) => translate(&m, MAIN_TABLE),
                    other => panic!("not an rtnetlink message: {other:?}"),
                }
            }
            // The mirror counts what the crate cannot parse as a parse error.
            Some(Parsed::Unparsed) => Err(IgnoreReason::ParseError),
            other => panic!("not a message: {other:?}"),
        }
    }

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn link_msg(name: Option<&str>) -> LinkMessage {
        let mut m = LinkMessage::default();
        m.header.index = FP0;
        m.header.flags = LinkFlags::Up | LinkFlags::LowerUp | LinkFlags::Running;
        if let Some(n) = name {
            m.attributes.push(LinkAttribute::IfName(n.to_owned()));
        }
        m.attributes.push(LinkAttribute::Address(MAC.to_vec()));
        m.attributes.push(LinkAttribute::Mtu(9000));
        m
    }

    #[test]
    fn links() {
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::NewLink(link_msg(Some("fp0")))),
            Ok(KernelEvent::Link(Link {
                ifindex: IfIndex(FP0),
                name: "fp0".into(),
                mac: Some(MacAddr(MAC)),
                mtu: 9000,
                up: true,
                carrier: true,
            }))
        );
        let mut down = link_msg(Some("fp0"));
        down.header.flags = LinkFlags::empty();
        assert!(matches!(
            over_the_wire(RouteNetlinkMessage::NewLink(down)),
            Ok(KernelEvent::Link(Link {
                up: false,
                carrier: false,
                ..
            }))
        ));
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::NewLink(link_msg(None))),
            Err(IgnoreReason::ParseError)
        );
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::DelLink(link_msg(Some("fp0")))),
            Ok(KernelEvent::LinkGone {
                ifindex: IfIndex(FP0)
            })
        );
        // A bridge port leaving its bridge is not the link going away.
        let mut bridge = link_msg(Some("fp0"));
        bridge.header.interface_family = AddressFamily::Bridge;
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::DelLink(bridge)),
            Err(IgnoreReason::UnsupportedFamily)
        );
    }

    fn addr_msg(family: AddressFamily, len: u8, attrs: Vec<AddressAttribute>) -> AddressMessage {
        let mut m = AddressMessage::default();
        m.header.family = family;
        m.header.prefix_len = len;
        m.header.index = FP0;
        m.attributes = attrs;
        m
    }

    #[test]
    fn addresses() {
        // Point-to-point IPv4: IFA_LOCAL is ours, IFA_ADDRESS the peer's.
        let ptp = addr_msg(
            AddressFamily::Inet,
            32,
            vec![
                AddressAttribute::Address(IpAddr::V4(v4("192.0.2.99"))),
                AddressAttribute::Local(IpAddr::V4(v4("192.0.2.10"))),
            ],
        );
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::NewAddress(ptp)),
            Ok(KernelEvent::AddrAdd(Addr {
                ifindex: IfIndex(FP0),
                addr: IpAddr::V4(v4("192.0.2.10")),
                prefix_len: 32,
            }))
        );
        let six = addr_msg(
            AddressFamily::Inet6,
            64,
            vec![AddressAttribute::Address(IpAddr::V6(v6("2001:db8::10")))],
        );
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::DelAddress(six)),
            Ok(KernelEvent::AddrDel(Addr {
                ifindex: IfIndex(FP0),
                addr: IpAddr::V6(v6("2001:db8::10")),
                prefix_len: 64,
            }))
        );
        let too_long = addr_msg(
            AddressFamily::Inet,
            33,
            vec![AddressAttribute::Local(IpAddr::V4(v4("192.0.2.10")))],
        );
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::NewAddress(too_long)),
            Err(IgnoreReason::ParseError)
        );
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::NewAddress(addr_msg(
                AddressFamily::Inet,
                24,
                vec![]
            ))),
            Err(IgnoreReason::ParseError)
        );
    }

    fn route_msg(
        family: AddressFamily,
        len: u8,
        kind: RouteType,
        attrs: Vec<RouteAttribute>,
    ) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header.address_family = family;
        m.header.destination_prefix_length = len;
        m.header.table = 254;
        m.header.protocol = RouteProtocol::Static;
        m.header.kind = kind;
        m.attributes = attrs;
        m
    }

    fn hop(gw: Option<IpAddr>, ifindex: u32, weight: u16) -> NextHop {
        NextHop {
            gateway: gw,
            ifindex: IfIndex(ifindex),
            weight,
        }
    }

    #[test]
    fn a_route_via_a_gateway() {
        let m = route_msg(
            AddressFamily::Inet,
            16,
            RouteType::Unicast,
            vec![
                RouteAttribute::Table(254),
                RouteAttribute::Destination(RouteAddress::Inet(v4("10.1.0.0"))),
                RouteAttribute::Gateway(RouteAddress::Inet(v4("192.0.2.1"))),
                RouteAttribute::Oif(FP0),
                RouteAttribute::Priority(20),
            ],
        );
        let want = Route {
            table: 254,
            prefix: RoutePrefix::V4("10.1.0.0/16".parse().unwrap()),
            kind: RouteKind::Unicast,
            metric: 20,
            next_hops: vec![hop(Some(IpAddr::V4(v4("192.0.2.1"))), FP0, 1)],
        };
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::NewRoute(m.clone())),
            Ok(KernelEvent::RouteAdd(want.clone()))
        );
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::DelRoute(m)),
            Ok(KernelEvent::RouteDel(want))
        );
    }

    #[test]
    fn multipath_routes_keep_every_hop_and_its_weight() {
        let mut a = RouteNextHop::default();
        a.interface_index = FP0;
        a.hops = 1; // weight 2
        a.attributes = vec![RouteAttribute::Gateway(RouteAddress::Inet6(v6("fe80::1")))];
        let mut b = RouteNextHop::default();
        b.interface_index = 4;
        b.hops = 255; // weight 256
        b.attributes = vec![RouteAttribute::Gateway(RouteAddress::Inet6(v6("fe80::2")))];
        let m = route_msg(
            AddressFamily::Inet6,
            48,
            RouteType::Unicast,
            vec![
                RouteAttribute::Destination(RouteAddress::Inet6(v6("2001:db8:1::"))),
                RouteAttribute::MultiPath(vec![a, b]),
            ],
        );
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::NewRoute(m)),
            Ok(KernelEvent::RouteAdd(Route {
                table: 254,
                prefix: RoutePrefix::V6(Prefix6::new(v6("2001:db8:1::"), 48).unwrap()),
                kind: RouteKind::Unicast,
                metric: 0,
                next_hops: vec![
                    hop(Some(IpAddr::V6(v6("fe80::1"))), FP0, 2),
                    hop(Some(IpAddr::V6(v6("fe80::2"))), 4, 256),
                ],
            }))
        );
    }

    #[test]
    fn default_routes_connected_routes_and_rfc5549_gateways() {
        let m = route_msg(
            AddressFamily::Inet6,
            0,
            RouteType::Unicast,
            vec![RouteAttribute::Oif(FP0)],
        );
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::NewRoute(m)),
            Ok(KernelEvent::RouteAdd(Route {
                table: 254,
                prefix: RoutePrefix::V6(Prefix6::new(Ipv6Addr::UNSPECIFIED, 0).unwrap()),
                kind: RouteKind::Unicast,
                metric: 0,
                next_hops: vec![hop(None, FP0, 1)],
            }))
        );
        let m = route_msg(
            AddressFamily::Inet,
            0,
            RouteType::Unicast,
            vec![
                RouteAttribute::Via(RouteVia::Inet6(v6("fe80::1"))),
                RouteAttribute::Oif(FP0),
            ],
        );
        assert!(matches!(
            over_the_wire(RouteNetlinkMessage::NewRoute(m)),
            Ok(KernelEvent::RouteAdd(Route { prefix: RoutePrefix::V4(p), next_hops, .. }))
                if p == Prefix4::DEFAULT && next_hops == vec![hop(Some(IpAddr::V6(v6("fe80::1"))), FP0, 1)]
        ));
    }

    #[test]
    fn drop_routes_have_no_way_out() {
        for (t, k) in [
            (RouteType::BlackHole, RouteKind::Blackhole),
            (RouteType::Unreachable, RouteKind::Unreachable),
            (RouteType::Prohibit, RouteKind::Prohibit),
        ] {
            // IPv6 names `lo` as the interface of its unreachable routes.
            let m = route_msg(
                AddressFamily::Inet6,
                32,
                t,
                vec![
                    RouteAttribute::Destination(RouteAddress::Inet6(v6("2001:db8::"))),
                    RouteAttribute::Oif(1),
                ],
            );
            assert!(matches!(
                over_the_wire(RouteNetlinkMessage::NewRoute(m)),
                Ok(KernelEvent::RouteAdd(Route { kind, next_hops, .. })) if kind == k && next_hops.is_empty()
            ));
        }
    }

    #[test]
    fn routes_the_fast_path_does_not_take() {
        let dst = || RouteAttribute::Destination(RouteAddress::Inet(v4("10.1.0.0")));
        let oif = || RouteAttribute::Oif(FP0);
        let mut local_table = route_msg(
            AddressFamily::Inet,
            16,
            RouteType::Local,
            vec![dst(), oif()],
        );
        local_table.header.table = 255;
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::NewRoute(local_table)),
            Err(IgnoreReason::OtherTable)
        );
        // RTA_TABLE overrides rtm_table (tables above 255).
        let mut big = route_msg(
            AddressFamily::Inet,
            16,
            RouteType::Unicast,
            vec![dst(), oif(), RouteAttribute::Table(1000)],
        );
        big.header.table = 252;
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::NewRoute(big.clone())),
            Err(IgnoreReason::OtherTable)
        );
        let RouteNetlinkMessage::NewRoute(parsed) = RouteNetlinkMessage::NewRoute(big) else {
            unreachable!()
        };
        assert!(matches!(
            route(&parsed, 1000),
            Ok(Route { table: 1000, .. })
        ));
        let broadcast = route_msg(
            AddressFamily::Inet,
            16,
            RouteType::Broadcast,
            vec![dst(), oif()],
        );
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::NewRoute(broadcast)),
            Err(IgnoreReason::UnsupportedKind)
        );
        let no_hop = route_msg(AddressFamily::Inet, 16, RouteType::Unicast, vec![dst()]);
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::NewRoute(no_hop)),
            Err(IgnoreReason::UnsupportedRoute)
        );
        let mut from = route_msg(
            AddressFamily::Inet,
            16,
            RouteType::Unicast,
            vec![dst(), oif()],
        );
        from.header.source_prefix_length = 8;
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::NewRoute(from)),
            Err(IgnoreReason::UnsupportedRoute)
        );
        let mut cloned = route_msg(
            AddressFamily::Inet,
            16,
            RouteType::Unicast,
            vec![dst(), oif()],
        );
        cloned.header.flags = RouteFlags::Cloned;
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::NewRoute(cloned)),
            Err(IgnoreReason::UnsupportedRoute)
        );
        let host_bits = route_msg(
            AddressFamily::Inet,
            8,
            RouteType::Unicast,
            vec![dst(), oif()],
        );
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::NewRoute(host_bits)),
            Err(IgnoreReason::ParseError)
        );
        let wrong_family = route_msg(
            AddressFamily::Inet6,
            16,
            RouteType::Unicast,
            vec![dst(), oif()],
        );
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::NewRoute(wrong_family)),
            Err(IgnoreReason::ParseError)
        );
        let mpls = route_msg(AddressFamily::Mpls, 20, RouteType::Unicast, vec![oif()]);
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::NewRoute(mpls)),
            Err(IgnoreReason::UnsupportedFamily)
        );
    }

    fn neigh_msg(
        family: AddressFamily,
        state: NeighbourState,
        attrs: Vec<NeighbourAttribute>,
    ) -> NeighbourMessage {
        let mut m = NeighbourMessage::default();
        m.header.family = family;
        m.header.ifindex = FP0;
        m.header.state = state;
        m.attributes = attrs;
        m
    }

    #[test]
    fn neighbours() {
        let m = neigh_msg(
            AddressFamily::Inet,
            NeighbourState::Reachable,
            vec![
                NeighbourAttribute::Destination(NeighbourAddress::Inet(v4("192.0.2.1"))),
                NeighbourAttribute::LinkLayerAddress(MAC.to_vec()),
            ],
        );
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::NewNeighbour(m)),
            Ok(KernelEvent::NeighAdd(Neigh {
                ifindex: IfIndex(FP0),
                ip: IpAddr::V4(v4("192.0.2.1")),
                mac: Some(MacAddr(MAC)),
                state: NeighState::Reachable,
            }))
        );
        let m = neigh_msg(
            AddressFamily::Inet6,
            NeighbourState::Incomplete,
            vec![NeighbourAttribute::Destination(NeighbourAddress::Inet6(
                v6("2001:db8::1"),
            ))],
        );
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::DelNeighbour(m)),
            Ok(KernelEvent::NeighDel(Neigh {
                ifindex: IfIndex(FP0),
                ip: IpAddr::V6(v6("2001:db8::1")),
                mac: None,
                state: NeighState::Incomplete,
            }))
        );
        // A bridge FDB entry is not a neighbour.
        let fdb = neigh_msg(
            AddressFamily::Bridge,
            NeighbourState::Permanent,
            vec![NeighbourAttribute::LinkLayerAddress(MAC.to_vec())],
        );
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::NewNeighbour(fdb)),
            Err(IgnoreReason::UnsupportedFamily)
        );
        let no_ip = neigh_msg(AddressFamily::Inet, NeighbourState::Stale, vec![]);
        assert_eq!(
            over_the_wire(RouteNetlinkMessage::NewNeighbour(no_ip)),
            Err(IgnoreReason::ParseError)
        );
    }

    /// RTM_NEWROUTE for 198.51.100.0/24 via 192.0.2.1 dev 7, followed in
    /// the same datagram by NLMSG_DONE, written out byte by byte from
    /// linux/netlink.h and linux/rtnetlink.h (all little-endian here).
    const NEWROUTE_THEN_DONE: [u8; 80] = [
        // nlmsghdr: length 60, type RTM_NEWROUTE (24), flags 0, seq 0, pid 0
        60, 0, 0, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        // rtmsg: AF_INET, dst_len 24, src_len 0, tos 0, table 254,
        // protocol static (4), scope universe (0), type unicast (1), flags 0
        2, 24, 0, 0, 254, 4, 0, 1, 0, 0, 0, 0, // RTA_TABLE (15) = 254
        8, 0, 15, 0, 254, 0, 0, 0, // RTA_DST (1) = 198.51.100.0
        8, 0, 1, 0, 198, 51, 100, 0, // RTA_GATEWAY (5) = 192.0.2.1
        8, 0, 5, 0, 192, 0, 2, 1, // RTA_OIF (4) = 7
        8, 0, 4, 0, 7, 0, 0, 0,
        // nlmsghdr: length 20, NLMSG_DONE (3), NLM_F_MULTI (2), seq 0, pid 0
        20, 0, 0, 0, 3, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, // the error code of a DONE: 0
        0, 0, 0, 0,
    ];

    #[test]
    fn a_hand_built_datagram() {
        let parsed = split(&NEWROUTE_THEN_DONE);
        assert_eq!(parsed.len(), 2);
        let Some(Parsed::Message { msg, .. }) = parsed.first() else {
            panic!("{parsed:?}")
        };
        let NetlinkPayload::InnerMessage(m) = &msg.payload else {
            panic!("{msg:?}")
        };
        assert_eq!(
            translate(m, MAIN_TABLE),
            Ok(KernelEvent::RouteAdd(Route {
                table: 254,
                prefix: RoutePrefix::V4("198.51.100.0/24".parse().unwrap()),
                kind: RouteKind::Unicast,
                metric: 0,
                next_hops: vec![hop(Some(IpAddr::V4(v4("192.0.2.1"))), 7, 1)],
            }))
        );
        assert!(matches!(
            parsed.get(1),
            Some(Parsed::Message { msg, .. }) if matches!(msg.payload, NetlinkPayload::Done(_))
        ));
        // A length past the end stops the walk instead of reading beyond.
        let mut cut = NEWROUTE_THEN_DONE;
        cut[0] = 200;
        assert!(matches!(split(&cut)[..], [Parsed::Garbage]));
        // NLM_F_DUMP_INTR (16) is reported.
        let mut intr = NEWROUTE_THEN_DONE;
        intr[6] = 16;
        assert!(matches!(
            split(&intr).first(),
            Some(Parsed::Message {
                interrupted: true,
                ..
            })
        ));
    }

    fn translate_all(bytes: &[u8]) {
        for p in split(bytes) {
            if let Parsed::Message { msg, .. } = p {
                if let NetlinkPayload::InnerMessage(m) = msg.payload {
                    let _ = translate(&m, MAIN_TABLE);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn no_panic_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            translate_all(&bytes);
        }

        /// A sound netlink header of each type the mirror follows, over
        /// random bytes: the crate's parsers and the translation see
        /// every kind of body.
        #[test]
        fn no_panic_on_any_body(
            kind in proptest::sample::select(vec![16u16, 17, 20, 21, 24, 25, 28, 29]),
            body in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let len = 16 + body.len();
            let mut bytes = Vec::with_capacity(len);
            bytes.extend_from_slice(&(len as u32).to_le_bytes());
            bytes.extend_from_slice(&kind.to_le_bytes());
            bytes.extend_from_slice(&[0; 10]);
            bytes.extend_from_slice(&body);
            translate_all(&bytes);
        }

        #[test]
        fn no_panic_on_a_damaged_datagram(
            edits in proptest::collection::vec((0usize..80, any::<u8>()), 1..8),
            keep in 0usize..=80,
        ) {
            let mut bytes = NEWROUTE_THEN_DONE;
            for (at, v) in edits {
                bytes[at] = v;
            }
            translate_all(&bytes[..keep]);
        }
    }
}
