//! The demo's network: two IPv4 subnets, one per VF, each with a host
//! behind the PF that routes a benchmarking /16 (RFC 2544 appendix C's
//! 198.18.0.0/15, reserved for such tests by RFC 6890).
//!
//! ```text
//!  198.18.0.0/16 -- host 10.0.0.2 --[VF 0: 10.0.0.1]  fast  [VF 1: 10.0.1.1]-- host 10.0.1.2 -- 198.19.0.0/16
//!                                                     path
//! ```
//!
//! Side `p` (port `p`): our address 10.0.p.1/24, the host 10.0.p.2 with
//! MAC 02:0a:00:00:00:0p (locally administered; `0a` for the demo's
//! hosts), which routes 198.(18+p).0.0/16. Each host sends UDP to the
//! other side's /16 through its VF, so every frame crosses the fast path
//! once, routed by a /16 through a resolved gateway.
//!
//! The tables come from [`updates`], fed to the same router model the
//! kernel mirror feeds in `fastpath run --mode l3`, as the kernel would
//! report this configuration (an address, its connected route, the
//! neighbour, the gateway routes).

use crate::l3::{Gateway, IpPrefix, PortConf, PortIndex, RouteTarget, Update, DEFAULT_MTU};
use drivers::net::MacAddr;
use std::net::{IpAddr, Ipv4Addr};

/// One side of the demo's network: a port, its subnet, and the host on
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Side {
    /// The fast path's port.
    pub port: u16,
    /// Our address on the subnet (a /24).
    pub ours: Ipv4Addr,
    /// The host's address.
    pub host: Ipv4Addr,
    /// The host's MAC.
    pub host_mac: MacAddr,
    /// The network the host routes (first address, /16).
    pub behind: Ipv4Addr,
}

/// Length of each side's subnet prefix.
pub const SUBNET_LEN: u8 = 24;
/// Length of the network behind each host.
pub const BEHIND_LEN: u8 = 16;

/// Side `p` (0 or 1).
pub fn side(p: u8) -> Side {
    Side {
        port: u16::from(p),
        ours: Ipv4Addr::new(10, 0, p, 1),
        host: Ipv4Addr::new(10, 0, p, 2),
        host_mac: MacAddr([0x02, 0x0a, 0, 0, 0, p]),
        behind: Ipv4Addr::new(198, 18 + p, 0, 0),
    }
}

/// Both sides.
pub fn sides() -> [Side; 2] {
    [side(0), side(1)]
}

fn prefix(ip: Ipv4Addr, len: u8) -> IpPrefix {
    // Always a valid prefix: a length of at most 32.
    format!("{ip}/{len}")
        .parse()
        .unwrap_or_else(|_| IpPrefix::host(IpAddr::V4(ip)))
}

/// The subnet of side `s` (10.0.p.0/24).
pub fn subnet(s: &Side) -> IpPrefix {
    let [a, b, c, _] = s.ours.octets();
    prefix(Ipv4Addr::new(a, b, c, 0), SUBNET_LEN)
}

/// What the kernel would report for this network on ports whose MACs
/// are `port_macs` (in port order): each port, our address and its
/// connected route, the host as a neighbour, and the route to the
/// network behind it through the host.
pub fn updates(port_macs: &[MacAddr]) -> Vec<Update> {
    let mut u = Vec::new();
    for (s, mac) in sides().iter().zip(port_macs) {
        let port = PortIndex(s.port);
        u.push(Update::Port {
            port,
            conf: PortConf {
                mac: *mac,
                mtu: DEFAULT_MTU,
            },
        });
        u.push(Update::AddrAdd {
            port,
            ip: IpAddr::V4(s.ours),
        });
        u.push(Update::RouteAdd {
            prefix: subnet(s),
            target: RouteTarget::Connected(port),
        });
        u.push(Update::NeighAdd {
            port,
            ip: IpAddr::V4(s.host),
            mac: s.host_mac,
        });
        u.push(Update::RouteAdd {
            prefix: prefix(s.behind, BEHIND_LEN),
            target: RouteTarget::Via(vec![Gateway {
                port,
                ip: IpAddr::V4(s.host),
            }]),
        });
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l3::RouterModel;

    /// The model takes every update, and the tables route each side's
    /// /16 through the other side's host.
    #[test]
    fn the_model_takes_the_network() {
        let macs = [MacAddr([2, 9, 0, 0, 0, 0]), MacAddr([2, 9, 0, 0, 0, 1])];
        let mut model = RouterModel::new();
        let mut ops = Vec::new();
        for u in updates(&macs) {
            model.update(&u, &mut ops).unwrap();
        }
        assert!(!ops.is_empty());
        // Per side: our /32, the connected /24, the neighbour's /32, the /16.
        assert_eq!(model.installed_routes(), 8);
        assert_eq!(subnet(&side(1)).to_string(), "10.0.1.0/24");
        assert_eq!(side(1).behind, Ipv4Addr::new(198, 19, 0, 0));
    }
}
