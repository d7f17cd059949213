//! What the kernel mirror reports, in the fast path's own types (never the
//! netlink crate's, so the consumers do not depend on it).

use crate::fib::{Prefix4, Prefix6};
use drivers::net::MacAddr;
use std::fmt;
use std::net::IpAddr;

/// A kernel interface index (`ifindex`, as `ip link` prints it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IfIndex(pub u32);

impl fmt::Display for IfIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "if{}", self.0)
    }
}

/// A route's destination, IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RoutePrefix {
    /// An IPv4 destination.
    V4(Prefix4),
    /// An IPv6 destination.
    V6(Prefix6),
}

impl fmt::Display for RoutePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoutePrefix::V4(p) => p.fmt(f),
            RoutePrefix::V6(p) => p.fmt(f),
        }
    }
}

/// What a route does with a packet (the kernel's `rtm_type`, limited to the
/// kinds a fast path can act on; the others are ignored and counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteKind {
    /// Forward to the next hops.
    Unicast,
    /// The destination is one of this host's addresses: to the kernel.
    Local,
    /// Drop silently.
    Blackhole,
    /// Drop; the kernel answers ICMP "host unreachable".
    Unreachable,
    /// Drop; the kernel answers ICMP "administratively prohibited".
    Prohibit,
}

/// One way out of a route: a gateway (or none, for a directly connected
/// destination), the interface, and the share of traffic it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NextHop {
    /// The router to send to; `None` when the destination is on the link.
    /// May be IPv6 for an IPv4 route (RFC 5549, the kernel's `RTA_VIA`).
    pub gateway: Option<IpAddr>,
    /// The interface to send on.
    pub ifindex: IfIndex,
    /// The relative weight, 1 to 256 (`ip route ... nexthop ... weight`);
    /// 1 for a single-path route.
    pub weight: u16,
}

/// A route of the kernel's table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    /// The routing table (254 is `main`).
    pub table: u32,
    /// The destination.
    pub prefix: RoutePrefix,
    /// What the route does.
    pub kind: RouteKind,
    /// The kernel's metric (`ip route ... metric N`); of several routes to
    /// one prefix the lowest metric wins, and only that one is reported.
    pub metric: u32,
    /// The ways out: one for a plain route, several for multipath
    /// (`RTA_MULTIPATH`), none for blackhole, unreachable and prohibit.
    pub next_hops: Vec<NextHop>,
}

/// An interface, with what the fast path mirrors of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Link {
    /// The kernel's index.
    pub ifindex: IfIndex,
    /// The name (`IFLA_IFNAME`).
    pub name: String,
    /// The Ethernet address, if the link has a 6-byte one.
    pub mac: Option<MacAddr>,
    /// The MTU.
    pub mtu: u32,
    /// Administratively up (`IFF_UP`, `ip link set up`).
    pub up: bool,
    /// Carrier present (`IFF_LOWER_UP`).
    pub carrier: bool,
}

/// An address of one of our interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Addr {
    /// The interface that holds it.
    pub ifindex: IfIndex,
    /// The address itself (`IFA_LOCAL` for IPv4, `IFA_ADDRESS` for IPv6).
    pub addr: IpAddr,
    /// The length of the subnet it sits in.
    pub prefix_len: u8,
}

/// The state of a neighbour entry (the kernel's `NUD_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NeighState {
    /// Resolution under way; no MAC yet.
    Incomplete,
    /// Confirmed recently.
    Reachable,
    /// Usable, but not confirmed recently.
    Stale,
    /// Usable; confirmation pending.
    Delay,
    /// Usable; being probed.
    Probe,
    /// Resolution failed.
    Failed,
    /// No resolution needed (point-to-point, multicast).
    NoArp,
    /// Set by hand (`ip neigh add ... nud permanent`).
    Permanent,
    /// No state.
    None,
    /// A state the netlink crate does not name.
    Other(u16),
}

impl NeighState {
    /// True if the MAC may be used to forward (the kernel's `NUD_VALID`
    /// less the states that have no address).
    pub fn is_usable(self) -> bool {
        matches!(
            self,
            NeighState::Reachable
                | NeighState::Stale
                | NeighState::Delay
                | NeighState::Probe
                | NeighState::Permanent
                | NeighState::NoArp
        )
    }
}

/// A neighbour (ARP or ND) entry of one of our interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Neigh {
    /// The interface it was resolved on.
    pub ifindex: IfIndex,
    /// The neighbour's IP address.
    pub ip: IpAddr,
    /// Its MAC, absent while incomplete or failed.
    pub mac: Option<MacAddr>,
    /// The entry's state.
    pub state: NeighState,
}

/// One change of the kernel's state, as the mirror reports it.
///
/// Adds are "set": a `Link`, `RouteAdd` or `NeighAdd` for a key already
/// reported replaces what was reported before (a route's key is its table
/// and prefix; a neighbour's, its interface and IP). The deletes carry the
/// last value reported.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KernelEvent {
    /// An interface of ours appeared or changed.
    Link(Link),
    /// An interface of ours went away (or was renamed to a name not ours).
    LinkGone {
        /// Its index.
        ifindex: IfIndex,
    },
    /// An address was added.
    AddrAdd(Addr),
    /// An address was removed.
    AddrDel(Addr),
    /// The best route to a prefix is now this one.
    RouteAdd(Route),
    /// No route to this prefix remains (the value is the last reported).
    RouteDel(Route),
    /// A neighbour entry appeared or changed.
    NeighAdd(Neigh),
    /// A neighbour entry went away (the value is the last reported).
    NeighDel(Neigh),
}

impl fmt::Display for KernelEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hops = |r: &Route| {
            r.next_hops
                .iter()
                .map(|h| match h.gateway {
                    Some(g) => format!(" via {g} dev {} weight {}", h.ifindex, h.weight),
                    None => format!(" dev {} weight {}", h.ifindex, h.weight),
                })
                .collect::<String>()
        };
        let mac = |m: Option<MacAddr>| m.map_or_else(|| "-".to_owned(), |m| m.to_string());
        match self {
            KernelEvent::Link(l) => write!(
                f,
                "link {} {} mac {} mtu {} {}{}",
                l.ifindex,
                l.name,
                mac(l.mac),
                l.mtu,
                if l.up { "up" } else { "down" },
                if l.carrier { " carrier" } else { "" }
            ),
            KernelEvent::LinkGone { ifindex } => write!(f, "link {ifindex} gone"),
            KernelEvent::AddrAdd(a) => {
                write!(f, "addr add {}/{} dev {}", a.addr, a.prefix_len, a.ifindex)
            }
            KernelEvent::AddrDel(a) => {
                write!(f, "addr del {}/{} dev {}", a.addr, a.prefix_len, a.ifindex)
            }
            KernelEvent::RouteAdd(r) => write!(
                f,
                "route add table {} {} {:?} metric {}{}",
                r.table,
                r.prefix,
                r.kind,
                r.metric,
                hops(r)
            ),
            KernelEvent::RouteDel(r) => write!(f, "route del table {} {}", r.table, r.prefix),
            KernelEvent::NeighAdd(n) => write!(
                f,
                "neigh add {} dev {} lladdr {} {:?}",
                n.ip,
                n.ifindex,
                mac(n.mac),
                n.state
            ),
            KernelEvent::NeighDel(n) => write!(f, "neigh del {} dev {}", n.ip, n.ifindex),
        }
    }
}
