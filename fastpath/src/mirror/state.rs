//! The mirror's view of the kernel, restricted to our interfaces: what has
//! been reported to the caller. Applying a kernel change to it yields the
//! events to report (none if nothing the caller sees changed), and two
//! views compare into the events that turn one into the other (a resync).

use super::event::{Addr, IfIndex, KernelEvent, Link, Neigh, Route, RoutePrefix};
use super::route_set::{RouteSet, RouteUpdate};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// What the mirror knows of the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MirrorState {
    links: BTreeMap<IfIndex, Link>,
    addrs: BTreeSet<Addr>,
    routes: BTreeMap<(u32, RoutePrefix), RouteSet>,
    neighs: BTreeMap<(IfIndex, IpAddr), Neigh>,
}

impl MirrorState {
    /// Our links, by index.
    pub fn links(&self) -> impl Iterator<Item = &Link> {
        self.links.values()
    }

    /// The link of this index, if it is ours.
    pub fn link(&self, ifindex: IfIndex) -> Option<&Link> {
        self.links.get(&ifindex)
    }

    /// The addresses of our links.
    pub fn addrs(&self) -> impl Iterator<Item = &Addr> {
        self.addrs.iter()
    }

    /// The routes in force: for each prefix, the one of lowest metric.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.values().filter_map(RouteSet::best)
    }

    /// The neighbours of our links.
    pub fn neighs(&self) -> impl Iterator<Item = &Neigh> {
        self.neighs.values()
    }

    /// Applies one kernel change; pushes onto `out` what the caller must
    /// hear of it.
    pub fn apply(&mut self, ev: KernelEvent, out: &mut Vec<KernelEvent>) {
        match ev {
            KernelEvent::Link(l) => {
                if self.links.get(&l.ifindex) != Some(&l) {
                    self.links.insert(l.ifindex, l.clone());
                    out.push(KernelEvent::Link(l));
                }
            }
            KernelEvent::LinkGone { ifindex } => self.remove_link(ifindex, out),
            KernelEvent::AddrAdd(a) => {
                if self.addrs.insert(a) {
                    out.push(KernelEvent::AddrAdd(a));
                }
            }
            KernelEvent::AddrDel(a) => {
                if self.addrs.remove(&a) {
                    out.push(KernelEvent::AddrDel(a));
                }
            }
            KernelEvent::RouteAdd(r) => self.update_route(r, RouteUpdate::Replace, out),
            KernelEvent::RouteDel(r) => self.update_route(r, RouteUpdate::Delete, out),
            KernelEvent::NeighAdd(n) => {
                if self.neighs.get(&(n.ifindex, n.ip)) != Some(&n) {
                    self.neighs.insert((n.ifindex, n.ip), n);
                    out.push(KernelEvent::NeighAdd(n));
                }
            }
            KernelEvent::NeighDel(n) => {
                if let Some(old) = self.neighs.remove(&(n.ifindex, n.ip)) {
                    out.push(KernelEvent::NeighDel(old));
                }
            }
        }
    }

    /// Applies one route message; pushes onto `out` the change of the
    /// route in force for its prefix, if any.
    pub fn update_route(&mut self, r: Route, how: RouteUpdate, out: &mut Vec<KernelEvent>) {
        let key = (r.table, r.prefix);
        let set = self.routes.entry(key).or_default();
        let before = set.best().cloned();
        set.update(r, how);
        match (before, set.best()) {
            (before, Some(best)) if before.as_ref() != Some(best) => {
                out.push(KernelEvent::RouteAdd(best.clone()))
            }
            (Some(gone), None) => out.push(KernelEvent::RouteDel(gone)),
            _ => {}
        }
        if set.is_empty() {
            self.routes.remove(&key);
        }
    }

    /// A link went away: so did everything on it (the kernel flushes its
    /// addresses, neighbours and routes, not always with a message each).
    fn remove_link(&mut self, ifindex: IfIndex, out: &mut Vec<KernelEvent>) {
        if self.links.remove(&ifindex).is_none() {
            return;
        }
        let neighs: Vec<Neigh> = self
            .neighs
            .values()
            .filter(|n| n.ifindex == ifindex)
            .copied()
            .collect();
        for n in neighs {
            self.apply(KernelEvent::NeighDel(n), out);
        }
        let routes: Vec<Route> = self
            .routes
            .values()
            .flat_map(RouteSet::routes)
            .filter(|r| r.next_hops.iter().any(|h| h.ifindex == ifindex))
            .cloned()
            .collect();
        for r in routes {
            self.apply(KernelEvent::RouteDel(r), out);
        }
        let addrs: Vec<Addr> = self
            .addrs
            .iter()
            .filter(|a| a.ifindex == ifindex)
            .copied()
            .collect();
        for a in addrs {
            self.apply(KernelEvent::AddrDel(a), out);
        }
        out.push(KernelEvent::LinkGone { ifindex });
    }

    /// Pushes onto `out` the events that take a caller who has seen `self`
    /// to `new`: new and changed links first (so the others can refer to
    /// them), then deletions, then additions, then links gone.
    pub fn diff(&self, new: &MirrorState, out: &mut Vec<KernelEvent>) {
        for (i, l) in &new.links {
            if self.links.get(i) != Some(l) {
                out.push(KernelEvent::Link(l.clone()));
            }
        }
        for (k, set) in &self.routes {
            if let (Some(r), None) = (set.best(), new.routes.get(k).and_then(RouteSet::best)) {
                out.push(KernelEvent::RouteDel(r.clone()));
            }
        }
        for (k, n) in &self.neighs {
            if !new.neighs.contains_key(k) {
                out.push(KernelEvent::NeighDel(*n));
            }
        }
        for a in self.addrs.difference(&new.addrs) {
            out.push(KernelEvent::AddrDel(*a));
        }
        for a in new.addrs.difference(&self.addrs) {
            out.push(KernelEvent::AddrAdd(*a));
        }
        for (k, set) in &new.routes {
            if let Some(r) = set.best() {
                if self.routes.get(k).and_then(RouteSet::best) != Some(r) {
                    out.push(KernelEvent::RouteAdd(r.clone()));
                }
            }
        }
        for (k, n) in &new.neighs {
            if self.neighs.get(k) != Some(n) {
                out.push(KernelEvent::NeighAdd(*n));
            }
        }
        for i in self.links.keys() {
            if !new.links.contains_key(i) {
                out.push(KernelEvent::LinkGone { ifindex: *i });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fib::Prefix4;
    use crate::mirror::event::{NeighState, NextHop, RouteKind};
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn route(last: u8, len: u8, metric: u32, ifindex: u32) -> Route {
        Route {
            table: 254,
            prefix: RoutePrefix::V4(Prefix4::new(Ipv4Addr::new(10, 0, last, 0), len).unwrap()),
            kind: RouteKind::Unicast,
            metric,
            next_hops: vec![NextHop {
                gateway: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
                ifindex: IfIndex(ifindex),
                weight: 1,
            }],
        }
    }

    fn link(i: u32) -> Link {
        Link {
            ifindex: IfIndex(i),
            name: format!("fp{i}"),
            mac: None,
            mtu: 1500,
            up: true,
            carrier: true,
        }
    }

    #[test]
    fn the_lowest_metric_is_the_route_reported() {
        let mut s = MirrorState::default();
        let mut out = Vec::new();
        s.apply(KernelEvent::RouteAdd(route(1, 24, 200, 2)), &mut out);
        assert_eq!(out, vec![KernelEvent::RouteAdd(route(1, 24, 200, 2))]);
        out.clear();
        // A better route replaces it; a worse one changes nothing seen.
        s.apply(KernelEvent::RouteAdd(route(1, 24, 100, 3)), &mut out);
        s.apply(KernelEvent::RouteAdd(route(1, 24, 300, 4)), &mut out);
        assert_eq!(out, vec![KernelEvent::RouteAdd(route(1, 24, 100, 3))]);
        out.clear();
        // Deleting the best brings back the next; deleting a loser is silent.
        s.apply(KernelEvent::RouteDel(route(1, 24, 300, 4)), &mut out);
        s.apply(KernelEvent::RouteDel(route(1, 24, 100, 3)), &mut out);
        assert_eq!(out, vec![KernelEvent::RouteAdd(route(1, 24, 200, 2))]);
        out.clear();
        s.apply(KernelEvent::RouteDel(route(1, 24, 200, 2)), &mut out);
        s.apply(KernelEvent::RouteDel(route(1, 24, 200, 2)), &mut out);
        assert_eq!(out, vec![KernelEvent::RouteDel(route(1, 24, 200, 2))]);
        assert_eq!(s.routes().count(), 0);
    }

    #[test]
    fn a_link_gone_takes_what_was_on_it() {
        let mut s = MirrorState::default();
        let mut out = Vec::new();
        s.apply(KernelEvent::Link(link(2)), &mut out);
        s.apply(KernelEvent::Link(link(3)), &mut out);
        let a = Addr {
            ifindex: IfIndex(2),
            addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
            prefix_len: 24,
        };
        let n = Neigh {
            ifindex: IfIndex(2),
            ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            mac: None,
            state: NeighState::Incomplete,
        };
        s.apply(KernelEvent::AddrAdd(a), &mut out);
        s.apply(KernelEvent::NeighAdd(n), &mut out);
        s.apply(KernelEvent::RouteAdd(route(1, 24, 0, 2)), &mut out);
        s.apply(KernelEvent::RouteAdd(route(2, 24, 0, 3)), &mut out);
        out.clear();
        s.apply(
            KernelEvent::LinkGone {
                ifindex: IfIndex(2),
            },
            &mut out,
        );
        assert_eq!(
            out,
            vec![
                KernelEvent::NeighDel(n),
                KernelEvent::RouteDel(route(1, 24, 0, 2)),
                KernelEvent::AddrDel(a),
                KernelEvent::LinkGone {
                    ifindex: IfIndex(2)
                },
            ]
        );
        assert_eq!(
            s.routes().cloned().collect::<Vec<_>>(),
            vec![route(2, 24, 0, 3)]
        );
    }

    /// A small random change, on two links and a handful of prefixes.
    fn change() -> impl Strategy<Value = KernelEvent> {
        prop_oneof![
            (2u32..4).prop_map(|i| KernelEvent::Link(link(i))),
            (2u32..4).prop_map(|i| KernelEvent::LinkGone {
                ifindex: IfIndex(i)
            }),
            (0u8..3, 0u32..3, 2u32..4)
                .prop_map(|(p, m, i)| KernelEvent::RouteAdd(route(p, 24, m, i))),
            (0u8..3, 0u32..3, 2u32..4)
                .prop_map(|(p, m, i)| KernelEvent::RouteDel(route(p, 24, m, i))),
            (2u32..4, 0u8..3).prop_map(|(i, h)| KernelEvent::AddrAdd(Addr {
                ifindex: IfIndex(i),
                addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, h)),
                prefix_len: 24
            })),
            (2u32..4, 0u8..3).prop_map(|(i, h)| KernelEvent::AddrDel(Addr {
                ifindex: IfIndex(i),
                addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, h)),
                prefix_len: 24
            })),
            (2u32..4, 0u8..3, any::<bool>()).prop_map(|(i, h, r)| KernelEvent::NeighAdd(Neigh {
                ifindex: IfIndex(i),
                ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, h)),
                mac: None,
                state: if r {
                    NeighState::Reachable
                } else {
                    NeighState::Stale
                },
            })),
            (2u32..4, 0u8..3).prop_map(|(i, h)| KernelEvent::NeighDel(Neigh {
                ifindex: IfIndex(i),
                ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, h)),
                mac: None,
                state: NeighState::None,
            })),
        ]
    }

    /// What a consumer that applies the events it hears ends up holding:
    /// a plain map per kind, replaced on add, removed on delete.
    #[derive(Default, PartialEq, Debug)]
    struct Consumer {
        links: BTreeMap<IfIndex, Link>,
        addrs: BTreeSet<Addr>,
        routes: BTreeMap<(u32, RoutePrefix), Route>,
        neighs: BTreeMap<(IfIndex, IpAddr), Neigh>,
    }

    impl Consumer {
        fn hear(&mut self, ev: &KernelEvent) {
            match ev {
                KernelEvent::Link(l) => drop(self.links.insert(l.ifindex, l.clone())),
                KernelEvent::LinkGone { ifindex } => drop(self.links.remove(ifindex)),
                KernelEvent::AddrAdd(a) => drop(self.addrs.insert(*a)),
                KernelEvent::AddrDel(a) => drop(self.addrs.remove(a)),
                KernelEvent::RouteAdd(r) => {
                    drop(self.routes.insert((r.table, r.prefix), r.clone()))
                }
                KernelEvent::RouteDel(r) => drop(self.routes.remove(&(r.table, r.prefix))),
                KernelEvent::NeighAdd(n) => drop(self.neighs.insert((n.ifindex, n.ip), *n)),
                KernelEvent::NeighDel(n) => drop(self.neighs.remove(&(n.ifindex, n.ip))),
            }
        }

        fn of(s: &MirrorState) -> Consumer {
            Consumer {
                links: s.links.clone(),
                addrs: s.addrs.clone(),
                routes: s
                    .routes()
                    .map(|r| ((r.table, r.prefix), r.clone()))
                    .collect(),
                neighs: s.neighs.clone(),
            }
        }
    }

    proptest! {
        /// A consumer that hears every event holds exactly the state's view,
        /// after live changes and after a resync (a diff to another state).
        #[test]
        fn events_keep_a_consumer_in_step(
            first in proptest::collection::vec(change(), 0..40),
            second in proptest::collection::vec(change(), 0..40),
        ) {
            let mut s = MirrorState::default();
            let mut consumer = Consumer::default();
            let mut out = Vec::new();
            for ev in first {
                s.apply(ev, &mut out);
            }
            for ev in out.drain(..) {
                consumer.hear(&ev);
            }
            prop_assert_eq!(&consumer, &Consumer::of(&s));

            let mut fresh = MirrorState::default();
            for ev in second {
                fresh.apply(ev, &mut Vec::new());
            }
            s.diff(&fresh, &mut out);
            for ev in out.drain(..) {
                consumer.hear(&ev);
            }
            prop_assert_eq!(&consumer, &Consumer::of(&fresh));
            // A state compared with itself has nothing to say.
            fresh.diff(&fresh, &mut out);
            prop_assert!(out.is_empty());
        }
    }
}
