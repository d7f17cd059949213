//! The model against a plain reference: after any sequence of updates, the
//! tables built from the model's ops must send every address where a
//! direct reading of the kernel state says.

use super::model::{Gateway, RouteTarget, RouterModel, Update};
use super::next_hop::{NextHop, PortIndex};
use super::tables::{PortConf, TableOp, Tables};
use crate::fib::Prefix4;
use drivers::net::MacAddr;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

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
    routes: BTreeMap<Prefix4, RouteTarget>,
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

    fn expected(&self, a: Ipv4Addr) -> BTreeSet<Outcome> {
        let ip = IpAddr::V4(a);
        if self.addrs.iter().any(|(x, _)| *x == ip) {
            return [Outcome::Local].into();
        }
        let best = self
            .routes
            .iter()
            .filter(|(p, _)| p.contains(a))
            .max_by_key(|(p, _)| p.prefix_len());
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

fn actual(t: &Tables, a: Ipv4Addr) -> BTreeSet<Outcome> {
    let Some(id) = t.fib4().lookup(a) else {
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

/// Addresses 10.0.0.0 to 10.0.0.15: small, so updates collide.
fn host(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, i)
}

fn arb_port() -> impl Strategy<Value = PortIndex> {
    (0u16..3).prop_map(PortIndex)
}

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    (0u8..16).prop_map(|i| IpAddr::V4(host(i)))
}

fn arb_prefix() -> impl Strategy<Value = Prefix4> {
    // No /0: it would fill all 2^24 first-level entries in every case.
    (
        0u8..16,
        prop::sample::select(vec![8u8, 16, 24, 28, 29, 30, 31, 32]),
    )
        .prop_map(|(i, len)| Prefix4::new_masked(host(i), len).expect("len <= 32"))
}

fn arb_target() -> impl Strategy<Value = RouteTarget> {
    prop_oneof![
        4 => prop::collection::vec((arb_port(), arb_ip()), 1..4)
            .prop_map(|g| RouteTarget::Via(g.into_iter().map(|(port, ip)| Gateway { port, ip }).collect())),
        3 => arb_port().prop_map(RouteTarget::Connected),
        1 => Just(RouteTarget::Blackhole),
        1 => Just(RouteTarget::Unreachable),
    ]
}

fn arb_update() -> impl Strategy<Value = Update> {
    prop_oneof![
        4 => (arb_prefix(), arb_target()).prop_map(|(prefix, target)| Update::RouteAdd { prefix, target }),
        2 => arb_prefix().prop_map(|prefix| Update::RouteDel { prefix }),
        4 => (arb_port(), arb_ip(), 1u16..4).prop_map(|(port, ip, m)| Update::NeighAdd { port, ip, mac: MacAddr::local(m) }),
        2 => (arb_port(), arb_ip()).prop_map(|(port, ip)| Update::NeighDel { port, ip }),
        1 => (arb_port(), arb_ip()).prop_map(|(port, ip)| Update::AddrAdd { port, ip }),
        1 => (arb_port(), arb_ip()).prop_map(|(port, ip)| Update::AddrDel { port, ip }),
    ]
}

/// Every address of the universe, and one outside every short prefix.
fn probes() -> impl Iterator<Item = Ipv4Addr> {
    (0u8..16)
        .map(host)
        .chain([Ipv4Addr::new(10, 0, 1, 0), Ipv4Addr::new(10, 1, 0, 0)])
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
        // Every next hop set is one the model still holds: none leaks.
        prop_assert_eq!(tables.next_hops().len(), model.next_hops_in_use());
        prop_assert_eq!(tables.fib4().len(), model.installed_routes());
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
    let prefix: Prefix4 = "10.0.0.0/8".parse().unwrap();
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
