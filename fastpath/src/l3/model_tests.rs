//! The model against a plain reference: after any sequence of updates, the
//! tables built from the model's ops must send every address where a
//! direct reading of the kernel state says.

use super::ip_prefix::IpPrefix;
use super::model::{Gateway, ModelError, RouteTarget, RouterModel, Update};
use super::next_hop::{NextHop, PortIndex};
use super::tables::{PortConf, TableOp, Tables};
use crate::fib::{Prefix4, Prefix6};
use drivers::net::MacAddr;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Where an address goes, as the reference sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Forward(PortIndex, MacAddr),
    Unresolved(PortIndex, Option<IpAddr>),
    Local,
    Blackhole,
    Unreachable,
    NoRoute,
}

/// The kernel state, kept the obvious way.
#[derive(Default)]
struct Reference {
    routes: BTreeMap<IpPrefix, RouteTarget>,
    addrs: BTreeSet<(IpAddr, PortIndex)>,
    neighbours: BTreeMap<(IpAddr, PortIndex), MacAddr>,
}

impl Reference {
    fn take(&mut self, u: &Update) {
        match u {
            Update::RouteAdd { prefix, target } => {
                self.routes.insert(*prefix, target.clone());
            }
            Update::RouteDel { prefix } => {
                self.routes.remove(prefix);
            }
            Update::NeighAdd { port, ip, mac } => {
                self.neighbours.insert((*ip, *port), *mac);
            }
            Update::NeighDel { port, ip } => {
                self.neighbours.remove(&(*ip, *port));
            }
            Update::AddrAdd { port, ip } => {
                self.addrs.insert((*ip, *port));
            }
            Update::AddrDel { port, ip } => {
                self.addrs.remove(&(*ip, *port));
            }
            Update::Port { .. } => {}
        }
    }

    fn neighbour(&self, port: PortIndex, ip: IpAddr, unresolved_via: Option<IpAddr>) -> Outcome {
        match self.neighbours.get(&(ip, port)) {
            Some(mac) => Outcome::Forward(port, *mac),
            None => Outcome::Unresolved(port, unresolved_via),
        }
    }

    fn expected(&self, ip: IpAddr) -> BTreeSet<Outcome> {
        if self.addrs.iter().any(|(x, _)| *x == ip) {
            return [Outcome::Local].into();
        }
        let best = self
            .routes
            .iter()
            .filter(|(p, _)| p.contains(ip))
            .max_by_key(|(p, _)| prefix_len(p));
        match best.map(|(_, t)| t) {
            None => [Outcome::NoRoute].into(),
            Some(RouteTarget::Blackhole) => [Outcome::Blackhole].into(),
            Some(RouteTarget::Unreachable) => [Outcome::Unreachable].into(),
            Some(RouteTarget::Connected(port)) => [self.neighbour(*port, ip, None)].into(),
            Some(RouteTarget::Via(gws)) => gws
                .iter()
                .map(|g| self.neighbour(g.port, g.ip, Some(g.ip)))
                .collect(),
        }
    }
}

fn outcome(nh: &NextHop) -> Outcome {
    match nh {
        NextHop::Resolved { port, mac } => Outcome::Forward(*port, *mac),
        NextHop::Unresolved { port, via } => Outcome::Unresolved(*port, *via),
        NextHop::Local => Outcome::Local,
        NextHop::Blackhole => Outcome::Blackhole,
        NextHop::Unreachable => Outcome::Unreachable,
        NextHop::Multipath(_) => panic!("group inside a group"),
    }
}

fn prefix_len(p: &IpPrefix) -> u8 {
    match p {
        IpPrefix::V4(p) => p.prefix_len(),
        IpPrefix::V6(p) => p.prefix_len(),
    }
}

fn actual(t: &Tables, ip: IpAddr) -> BTreeSet<Outcome> {
    let id = match ip {
        IpAddr::V4(a) => t.fib4().lookup(a),
        IpAddr::V6(a) => t.fib6().lookup(a),
    };
    let Some(id) = id else {
        return [Outcome::NoRoute].into();
    };
    match t.next_hops().get(id).expect("route to an unset next hop") {
        NextHop::Multipath(members) => members
            .iter()
            .map(|m| outcome(t.next_hops().get(*m).expect("unset member")))
            .collect(),
        nh => [outcome(nh)].into(),
    }
}

/// Addresses 10.0.0.0 to 10.0.0.15 and 2001:db8::0 to 2001:db8::f:
/// small, so updates collide.
fn host(v6: bool, i: u8) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(i)))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))
    }
}

fn arb_port() -> impl Strategy<Value = PortIndex> {
    (0u16..3).prop_map(PortIndex)
}

fn arb_ip(v6: bool) -> impl Strategy<Value = IpAddr> {
    (0u8..16).prop_map(move |i| host(v6, i))
}

fn arb_prefix(v6: bool) -> impl Strategy<Value = IpPrefix> {
    // No /0: it would fill the 2^24 first-level entries in every case.
    let lens = if v6 {
        vec![32u8, 64, 120, 124, 126, 127, 128]
    } else {
        vec![8u8, 16, 24, 28, 29, 30, 31, 32]
    };
    (0u8..16, prop::sample::select(lens)).prop_map(move |(i, len)| match host(v6, i) {
        IpAddr::V4(a) => IpPrefix::V4(Prefix4::new_masked(a, len).expect("len <= 32")),
        IpAddr::V6(a) => IpPrefix::V6(Prefix6::new_masked(a, len).expect("len <= 128")),
    })
}

fn arb_target(v6: bool) -> impl Strategy<Value = RouteTarget> {
    prop_oneof![
        4 => prop::collection::vec((arb_port(), arb_ip(v6)), 1..4)
            .prop_map(|g| RouteTarget::Via(g.into_iter().map(|(port, ip)| Gateway { port, ip }).collect())),
        3 => arb_port().prop_map(RouteTarget::Connected),
        1 => Just(RouteTarget::Blackhole),
        1 => Just(RouteTarget::Unreachable),
    ]
}

fn arb_update_of(v6: bool) -> impl Strategy<Value = Update> {
    prop_oneof![
        4 => (arb_prefix(v6), arb_target(v6)).prop_map(|(prefix, target)| Update::RouteAdd { prefix, target }),
        2 => arb_prefix(v6).prop_map(|prefix| Update::RouteDel { prefix }),
        4 => (arb_port(), arb_ip(v6), 1u16..4).prop_map(|(port, ip, m)| Update::NeighAdd { port, ip, mac: MacAddr::local(m) }),
        2 => (arb_port(), arb_ip(v6)).prop_map(|(port, ip)| Update::NeighDel { port, ip }),
        1 => (arb_port(), arb_ip(v6)).prop_map(|(port, ip)| Update::AddrAdd { port, ip }),
        1 => (arb_port(), arb_ip(v6)).prop_map(|(port, ip)| Update::AddrDel { port, ip }),
    ]
}

fn arb_update() -> impl Strategy<Value = Update> {
    prop_oneof![arb_update_of(false), arb_update_of(true)]
}

/// Every address of both universes, and some outside every short prefix.
fn probes() -> impl Iterator<Item = IpAddr> {
    (0u8..16)
        .flat_map(|i| [host(false, i), host(true, i)])
        .chain([
            IpAddr::V4(Ipv4Addr::new(10, 0, 1, 0)),
            IpAddr::V4(Ipv4Addr::new(10, 1, 0, 0)),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 0)),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb9, 0, 0, 0, 0, 0, 0)),
        ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn tables_agree_with_the_reference(updates in prop::collection::vec(arb_update(), 1..40)) {
        let mut model = RouterModel::new();
        let mut reference = Reference::default();
        let mut tables = Tables::new();
        let mut all_ops: Vec<TableOp> = Vec::new();
        for u in &updates {
            let mut ops = Vec::new();
            model.update(u, &mut ops).unwrap();
            reference.take(u);
            tables.apply_all(&ops);
            all_ops.extend(ops);
            for a in probes() {
                prop_assert_eq!(actual(&tables, a), reference.expected(a), "address {} after {:?}", a, u);
            }
        }
        prop_assert_eq!(tables.failed_ops(), 0);
        // The same ops on a second copy give the same tables.
        let mut copy = Tables::new();
        copy.apply_all(&all_ops);
        prop_assert_eq!(copy.next_hops(), tables.next_hops());
        let mut a: Vec<_> = copy.fib4().routes().collect();
        let mut b: Vec<_> = tables.fib4().routes().collect();
        a.sort();
        b.sort();
        prop_assert_eq!(a, b);
        let mut a: Vec<_> = copy.fib6().routes().collect();
        let mut b: Vec<_> = tables.fib6().routes().collect();
        a.sort();
        b.sort();
        prop_assert_eq!(a, b);
        // Every next hop set is one the model still holds: none leaks.
        prop_assert_eq!(tables.next_hops().len(), model.next_hops_in_use());
        prop_assert_eq!(tables.fib4().len() + tables.fib6().len(), model.installed_routes());
        // Undoing everything empties the tables.
        let mut undo = Vec::new();
        for (ip, port) in reference.addrs.clone() {
            model.update(&Update::AddrDel { port, ip }, &mut undo).unwrap();
        }
        for (ip, port) in reference.neighbours.keys().copied().collect::<Vec<_>>() {
            model.update(&Update::NeighDel { port, ip }, &mut undo).unwrap();
        }
        for prefix in reference.routes.keys().copied().collect::<Vec<_>>() {
            model.update(&Update::RouteDel { prefix }, &mut undo).unwrap();
        }
        tables.apply_all(&undo);
        prop_assert!(tables.next_hops().is_empty());
        prop_assert!(tables.fib4().is_empty());
        prop_assert!(tables.fib6().is_empty());
    }
}

#[test]
fn a_learned_gateway_resolves_every_route_through_it_in_one_op() {
    let mut m = RouterModel::new();
    let gw = Gateway {
        port: PortIndex(1),
        ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
    };
    let (ops, r) = m.update_all(&[
        Update::RouteAdd {
            prefix: "198.51.100.0/24".parse().unwrap(),
            target: RouteTarget::Via(vec![gw]),
        },
        Update::RouteAdd {
            prefix: "203.0.113.0/24".parse().unwrap(),
            target: RouteTarget::Via(vec![gw]),
        },
    ]);
    r.unwrap();
    // One next hop, unresolved, and two routes.
    assert_eq!(ops.len(), 3);
    let mut t = Tables::new();
    t.apply_all(&ops);
    assert_eq!(
        t.route4(Ipv4Addr::new(203, 0, 113, 9), 0),
        Some(&NextHop::Unresolved {
            port: PortIndex(1),
            via: Some(gw.ip)
        })
    );
    let mut ops = Vec::new();
    let mac = MacAddr::local(9);
    m.update(
        &Update::NeighAdd {
            port: gw.port,
            ip: gw.ip,
            mac,
        },
        &mut ops,
    )
    .unwrap();
    assert!(matches!(ops.as_slice(), [TableOp::SetNextHop { .. }]));
    t.apply_all(&ops);
    let resolved = NextHop::Resolved {
        port: PortIndex(1),
        mac,
    };
    assert_eq!(t.route4(Ipv4Addr::new(198, 51, 100, 1), 0), Some(&resolved));
    assert_eq!(t.route4(Ipv4Addr::new(203, 0, 113, 1), 0), Some(&resolved));
}

#[test]
fn refusals_change_nothing() {
    let mut m = RouterModel::new();
    let mut ops = Vec::new();
    let prefix: IpPrefix = "10.0.0.0/8".parse().unwrap();
    assert!(m
        .update(
            &Update::RouteAdd {
                prefix,
                target: RouteTarget::Via(vec![])
            },
            &mut ops
        )
        .is_err());
    let v6 = Gateway {
        port: PortIndex(0),
        ip: "2001:db8::1".parse().unwrap(),
    };
    assert!(m
        .update(
            &Update::RouteAdd {
                prefix,
                target: RouteTarget::Via(vec![v6])
            },
            &mut ops
        )
        .is_err());
    assert!(ops.is_empty());
    m.update(
        &Update::Port {
            port: PortIndex(2),
            conf: PortConf {
                mac: MacAddr::local(2),
                mtu: 1400,
            },
        },
        &mut ops,
    )
    .unwrap();
    assert_eq!(ops.len(), 1);
}

#[test]
fn limits_refuse_new_entries_beyond_them_and_nothing_else() {
    let mut m = RouterModel::with_limits(config::table_limits::TableLimits {
        max_routes: Some(2),
        max_neighbours: Some(1),
    });
    let route = |p: &str| Update::RouteAdd {
        prefix: p.parse().unwrap(),
        target: RouteTarget::Connected(PortIndex(0)),
    };
    let neigh = |ip: &str| Update::NeighAdd {
        port: PortIndex(0),
        ip: ip.parse().unwrap(),
        mac: MacAddr::local(9),
    };
    let mut ops = Vec::new();
    m.update(&route("10.0.0.0/24"), &mut ops).unwrap();
    m.update(&route("2001:db8::/64"), &mut ops).unwrap();
    let e = m.update(&route("10.1.0.0/24"), &mut ops).unwrap_err();
    assert_eq!(
        e.to_string(),
        "route 10.1.0.0/24 refused: the route table is full (2 routes, --max-routes)"
    );
    // Replacing a route already there is not a new one.
    m.update(&route("10.0.0.0/24"), &mut ops).unwrap();
    m.update(&neigh("10.0.0.1"), &mut ops).unwrap();
    m.update(&neigh("10.0.0.1"), &mut ops).unwrap();
    assert!(matches!(
        m.update(&neigh("10.0.0.2"), &mut ops),
        Err(ModelError::NeighboursFull { max: 1, .. })
    ));
    // Room again once one goes.
    m.update(
        &Update::RouteDel {
            prefix: "10.0.0.0/24".parse().unwrap(),
        },
        &mut ops,
    )
    .unwrap();
    m.update(&route("10.1.0.0/24"), &mut ops).unwrap();
    assert_eq!(m.installed_routes(), 2);
}
