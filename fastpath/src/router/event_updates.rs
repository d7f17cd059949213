//! From what the kernel mirror reports to what the router model takes:
//! each [`KernelEvent`] about one of our exception interfaces becomes the
//! [`Update`]s it implies, with the interface (a kernel ifindex) turned
//! into the fast-path port it stands for.
//!
//! - A link: its ifindex is learned (by name), and the port's MTU is the
//!   interface's (the MAC stays the port's own: the interface was given it).
//! - Our addresses: `AddrAdd` / `AddrDel`.
//! - Routes: a next hop with no gateway is a connected route
//!   ([`RouteTarget::Connected`], the kernel's `proto kernel scope link`);
//!   otherwise the gateways ([`RouteTarget::Via`], ECMP when several);
//!   blackhole, unreachable and prohibit as such. A route the kernel marks
//!   `local` is the kernel's own business (our addresses come as
//!   addresses), and a route none of whose next hops is ours is left out.
//! - Neighbours: a usable entry with a MAC is `NeighAdd`; any other state
//!   (incomplete, failed) and a deletion are `NeighDel`.

use crate::l3::{Gateway, IpPrefix, PortConf, PortIndex, RouteTarget, Update};
use crate::mirror::{IfIndex, KernelEvent, Route, RouteKind, RoutePrefix};
use drivers::net::MacAddr;
use std::collections::BTreeMap;

/// Why an event gave no update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// About an interface that is not (or no longer) one of ours.
    NotOurs,
    /// A `local` route: the kernel's, not forwarded.
    LocalRoute,
}

/// The exception interfaces, by name and by kernel index, and the ports'
/// MACs.
#[derive(Debug, Clone)]
pub struct PortMap {
    names: Vec<String>,
    macs: Vec<MacAddr>,
    by_ifindex: BTreeMap<IfIndex, PortIndex>,
}

impl PortMap {
    /// Port `i` is interface `names[i]`, with MAC `macs[i]`.
    pub fn new(names: Vec<String>, macs: Vec<MacAddr>) -> PortMap {
        PortMap {
            names,
            macs,
            by_ifindex: BTreeMap::new(),
        }
    }

    /// The port of interface `name`, if it is one of ours.
    pub fn port_named(&self, name: &str) -> Option<PortIndex> {
        let i = self.names.iter().position(|n| n == name)?;
        Some(PortIndex(u16::try_from(i).ok()?))
    }

    /// Interface `name` has index `ifindex` (from a link event, or the
    /// mirror's view at start).
    pub fn learn(&mut self, ifindex: IfIndex, name: &str) {
        self.by_ifindex.retain(|i, _| *i != ifindex);
        if let Some(p) = self.port_named(name) {
            self.by_ifindex.retain(|_, q| *q != p);
            self.by_ifindex.insert(ifindex, p);
        }
    }

    /// The port of interface `ifindex`.
    pub fn port(&self, ifindex: IfIndex) -> Option<PortIndex> {
        self.by_ifindex.get(&ifindex).copied()
    }

    /// Appends the updates `ev` implies to `out`.
    pub fn updates(&mut self, ev: &KernelEvent, out: &mut Vec<Update>) -> Result<(), Skipped> {
        let port = |i: IfIndex| self.port(i).ok_or(Skipped::NotOurs);
        match ev {
            KernelEvent::Link(l) => {
                self.learn(l.ifindex, &l.name);
                let p = self.port(l.ifindex).ok_or(Skipped::NotOurs)?;
                let mac = self
                    .macs
                    .get(usize::from(p.0))
                    .copied()
                    .ok_or(Skipped::NotOurs)?;
                out.push(Update::Port {
                    port: p,
                    conf: PortConf {
                        mac,
                        mtu: u16::try_from(l.mtu).unwrap_or(u16::MAX),
                    },
                });
            }
            KernelEvent::LinkGone { ifindex } => {
                self.by_ifindex.remove(ifindex).ok_or(Skipped::NotOurs)?;
            }
            KernelEvent::AddrAdd(a) => out.push(Update::AddrAdd {
                port: port(a.ifindex)?,
                ip: a.addr,
            }),
            KernelEvent::AddrDel(a) => out.push(Update::AddrDel {
                port: port(a.ifindex)?,
                ip: a.addr,
            }),
            KernelEvent::RouteAdd(r) => {
                let target = self.target(r)?;
                out.push(Update::RouteAdd {
                    prefix: prefix(r.prefix),
                    target,
                });
            }
            KernelEvent::RouteDel(r) => {
                if r.kind == RouteKind::Local {
                    return Err(Skipped::LocalRoute);
                }
                out.push(Update::RouteDel {
                    prefix: prefix(r.prefix),
                });
            }
            KernelEvent::NeighAdd(n) => {
                let p = port(n.ifindex)?;
                out.push(match n.mac {
                    Some(mac) if n.state.is_usable() => Update::NeighAdd {
                        port: p,
                        ip: n.ip,
                        mac,
                    },
                    _ => Update::NeighDel { port: p, ip: n.ip },
                });
            }
            KernelEvent::NeighDel(n) => out.push(Update::NeighDel {
                port: port(n.ifindex)?,
                ip: n.ip,
            }),
        }
        Ok(())
    }

    /// What route `r` says to do, through our ports only.
    fn target(&self, r: &Route) -> Result<RouteTarget, Skipped> {
        match r.kind {
            RouteKind::Local => Err(Skipped::LocalRoute),
            RouteKind::Blackhole => Ok(RouteTarget::Blackhole),
            RouteKind::Unreachable | RouteKind::Prohibit => Ok(RouteTarget::Unreachable),
            RouteKind::Unicast => {
                let mut gateways = Vec::new();
                for h in &r.next_hops {
                    let Some(p) = self.port(h.ifindex) else {
                        continue;
                    };
                    match h.gateway {
                        // On the link: the destination is the neighbour.
                        None => return Ok(RouteTarget::Connected(p)),
                        Some(ip) => gateways.push(Gateway { port: p, ip }),
                    }
                }
                if gateways.is_empty() {
                    Err(Skipped::NotOurs)
                } else {
                    Ok(RouteTarget::Via(gateways))
                }
            }
        }
    }
}

fn prefix(p: RoutePrefix) -> IpPrefix {
    match p {
        RoutePrefix::V4(p) => IpPrefix::V4(p),
        RoutePrefix::V6(p) => IpPrefix::V6(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::{Addr, Link, Neigh, NeighState, NextHop};
    use std::net::IpAddr;

    fn map() -> PortMap {
        let mut m = PortMap::new(
            vec!["fp0".into(), "fp1".into()],
            vec![MacAddr::local(10), MacAddr::local(11)],
        );
        m.learn(IfIndex(7), "fp0");
        m.learn(IfIndex(9), "fp1");
        m
    }

    fn one(m: &mut PortMap, ev: KernelEvent) -> Result<Vec<Update>, Skipped> {
        let mut out = Vec::new();
        m.updates(&ev, &mut out).map(|()| out)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn route(prefix: &str, kind: RouteKind, hops: &[(Option<&str>, u32)]) -> Route {
        Route {
            table: 254,
            prefix: match prefix.parse::<IpPrefix>().unwrap() {
                IpPrefix::V4(p) => RoutePrefix::V4(p),
                IpPrefix::V6(p) => RoutePrefix::V6(p),
            },
            kind,
            metric: 0,
            next_hops: hops
                .iter()
                .map(|(g, i)| NextHop {
                    gateway: g.map(ip),
                    ifindex: IfIndex(*i),
                    weight: 1,
                })
                .collect(),
        }
    }

    #[test]
    fn links_set_the_port_mtu_and_keep_its_mac() {
        let mut m = map();
        let link = |ifindex, name: &str| Link {
            ifindex: IfIndex(ifindex),
            name: name.into(),
            mac: Some(MacAddr::local(99)),
            mtu: 9000,
            up: true,
            carrier: true,
        };
        assert_eq!(
            one(&mut m, KernelEvent::Link(link(9, "fp1"))).unwrap(),
            [Update::Port {
                port: PortIndex(1),
                conf: PortConf {
                    mac: MacAddr::local(11),
                    mtu: 9000
                }
            }]
        );
        // A new index for fp0 (deleted and made again): the old one is
        // forgotten.
        one(&mut m, KernelEvent::Link(link(20, "fp0"))).unwrap();
        assert_eq!(m.port(IfIndex(20)), Some(PortIndex(0)));
        assert_eq!(m.port(IfIndex(7)), None);
        assert_eq!(
            one(&mut m, KernelEvent::Link(link(5, "eth0"))),
            Err(Skipped::NotOurs)
        );
        one(
            &mut m,
            KernelEvent::LinkGone {
                ifindex: IfIndex(20),
            },
        )
        .unwrap();
        assert_eq!(m.port(IfIndex(20)), None);
    }

    #[test]
    fn routes_become_connected_via_or_drops() {
        let mut m = map();
        let add = |r| KernelEvent::RouteAdd(r);
        assert_eq!(
            one(
                &mut m,
                add(route("10.1.1.0/24", RouteKind::Unicast, &[(None, 7)]))
            )
            .unwrap(),
            [Update::RouteAdd {
                prefix: "10.1.1.0/24".parse().unwrap(),
                target: RouteTarget::Connected(PortIndex(0))
            }]
        );
        // ECMP over both ports; a hop through a foreign interface is left out.
        let r = route(
            "fd00:9::/48",
            RouteKind::Unicast,
            &[
                (Some("fd00:1::2"), 7),
                (Some("fd00:2::2"), 9),
                (Some("fd00:3::2"), 3),
            ],
        );
        assert_eq!(
            one(&mut m, add(r)).unwrap(),
            [Update::RouteAdd {
                prefix: "fd00:9::/48".parse().unwrap(),
                target: RouteTarget::Via(vec![
                    Gateway {
                        port: PortIndex(0),
                        ip: ip("fd00:1::2")
                    },
                    Gateway {
                        port: PortIndex(1),
                        ip: ip("fd00:2::2")
                    }
                ])
            }]
        );
        let foreign = route("10.9.0.0/16", RouteKind::Unicast, &[(Some("10.0.0.1"), 3)]);
        assert_eq!(one(&mut m, add(foreign)), Err(Skipped::NotOurs));
        let bh = route("10.66.0.0/16", RouteKind::Blackhole, &[]);
        assert_eq!(
            one(&mut m, add(bh.clone())).unwrap(),
            [Update::RouteAdd {
                prefix: "10.66.0.0/16".parse().unwrap(),
                target: RouteTarget::Blackhole
            }]
        );
        let un = route("10.67.0.0/16", RouteKind::Prohibit, &[]);
        assert!(matches!(
            one(&mut m, add(un)).unwrap()[0],
            Update::RouteAdd {
                target: RouteTarget::Unreachable,
                ..
            }
        ));
        let local = route("10.1.1.1/32", RouteKind::Local, &[(None, 7)]);
        assert_eq!(one(&mut m, add(local.clone())), Err(Skipped::LocalRoute));
        assert_eq!(
            one(&mut m, KernelEvent::RouteDel(local)),
            Err(Skipped::LocalRoute)
        );
        assert_eq!(
            one(&mut m, KernelEvent::RouteDel(bh)).unwrap(),
            [Update::RouteDel {
                prefix: "10.66.0.0/16".parse().unwrap()
            }]
        );
    }

    #[test]
    fn neighbours_and_addresses() {
        let mut m = map();
        let n = |state, mac| Neigh {
            ifindex: IfIndex(9),
            ip: ip("10.1.2.2"),
            mac,
            state,
        };
        let mac = Some(MacAddr::local(42));
        for s in [
            NeighState::Reachable,
            NeighState::Stale,
            NeighState::Permanent,
        ] {
            assert_eq!(
                one(&mut m, KernelEvent::NeighAdd(n(s, mac))).unwrap(),
                [Update::NeighAdd {
                    port: PortIndex(1),
                    ip: ip("10.1.2.2"),
                    mac: MacAddr::local(42)
                }]
            );
        }
        let del = [Update::NeighDel {
            port: PortIndex(1),
            ip: ip("10.1.2.2"),
        }];
        assert_eq!(
            one(&mut m, KernelEvent::NeighAdd(n(NeighState::Failed, None))).unwrap(),
            del
        );
        assert_eq!(
            one(
                &mut m,
                KernelEvent::NeighAdd(n(NeighState::Incomplete, None))
            )
            .unwrap(),
            del
        );
        assert_eq!(
            one(&mut m, KernelEvent::NeighDel(n(NeighState::Reachable, mac))).unwrap(),
            del
        );
        let a = Addr {
            ifindex: IfIndex(7),
            addr: ip("10.1.1.1"),
            prefix_len: 24,
        };
        assert_eq!(
            one(&mut m, KernelEvent::AddrAdd(a)).unwrap(),
            [Update::AddrAdd {
                port: PortIndex(0),
                ip: ip("10.1.1.1")
            }]
        );
        assert_eq!(
            one(
                &mut m,
                KernelEvent::AddrDel(Addr {
                    ifindex: IfIndex(1),
                    ..a
                })
            ),
            Err(Skipped::NotOurs)
        );
    }
}
