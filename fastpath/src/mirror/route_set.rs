//! The kernel's routes to one prefix in one table, kept the way the kernel
//! keeps them, so that partial changes (a next hop appended to or removed
//! from an IPv6 multipath route, a second IPv4 route of equal metric)
//! leave the same route in force as in the kernel.

use super::event::{Route, RoutePrefix};

/// How one route message changes the routes to its prefix (from the
/// netlink header's NLM_F_REPLACE / NLM_F_APPEND, linux/netlink.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteUpdate {
    /// `ip route replace`/`change`: the route in force at this metric is
    /// now this one. Every IPv6 add is one: the kernel merges next hops
    /// into one route and notifies the whole of it.
    Replace,
    /// `ip route append`, and each route of a dump, in order: IPv4 keeps
    /// it behind the others of its metric (used only if they fail).
    Append,
    /// `ip route add`/`prepend`: IPv4 puts it in front.
    Prepend,
    /// `ip route del`: for IPv4, the route equal to this one (or else the
    /// first); for IPv6, these next hops of the route.
    Delete,
}

/// The routes to one prefix: lowest metric first (the first is the one
/// used), and at one metric the IPv4 alternatives in the kernel's order.
/// A plain vector: almost every prefix has one route, and one allocation
/// per prefix matters at a million routes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteSet {
    routes: Vec<Route>,
}

impl RouteSet {
    /// The route in force: the first of the lowest metric.
    pub fn best(&self) -> Option<&Route> {
        self.routes.first()
    }

    /// True when no route is left.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Every route held, lowest metric first.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    /// Applies one change.
    pub fn update(&mut self, r: Route, how: RouteUpdate) {
        let metric = r.metric;
        // The routes of this metric are routes[lo..hi].
        let lo = self.routes.partition_point(|x| x.metric < metric);
        let hi = self.routes.partition_point(|x| x.metric <= metric);
        let is_v6 = matches!(r.prefix, RoutePrefix::V6(_));
        // The position, among routes[lo..hi], of one equal to `r` (the
        // kernel never holds two equal ones: it refuses the second).
        let equal = self.routes.get(lo..hi).and_then(|alts| {
            alts.iter()
                .position(|a| a.kind == r.kind && a.next_hops == r.next_hops)
        });
        match how {
            RouteUpdate::Delete if is_v6 => {
                let Some(have) = self.routes.get_mut(lo).filter(|_| lo < hi) else {
                    return;
                };
                if r.next_hops.is_empty() {
                    // A drop route: no hops to name, the kind says which.
                    if have.kind == r.kind {
                        self.routes.drain(lo..hi);
                    }
                    return;
                }
                have.next_hops.retain(|h| {
                    !r.next_hops
                        .iter()
                        .any(|d| d.gateway == h.gateway && d.ifindex == h.ifindex)
                });
                if have.next_hops.is_empty() {
                    self.routes.drain(lo..hi);
                }
            }
            // The kernel's notice names the route it deleted; if none is
            // equal, the notice is older than our view (replayed after a
            // dump), and the route is already gone.
            RouteUpdate::Delete => {
                if let Some(i) = equal {
                    self.routes.remove(lo + i);
                }
            }
            _ if is_v6 => {
                self.routes.drain(lo..hi);
                self.routes.insert(lo, r);
            }
            // An add of a route already held is a notice older than our
            // view: nothing to do (adding it again would leave a copy the
            // kernel does not have).
            RouteUpdate::Append | RouteUpdate::Prepend if equal.is_some() => {}
            RouteUpdate::Replace if lo < hi => {
                if let Some(first) = self.routes.get_mut(lo) {
                    *first = r;
                }
            }
            RouteUpdate::Replace | RouteUpdate::Prepend => self.routes.insert(lo, r),
            RouteUpdate::Append => self.routes.insert(hi, r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fib::Prefix6;
    use crate::mirror::event::{IfIndex, NextHop, RouteKind};
    use std::net::IpAddr;

    fn hop(gw: &str) -> NextHop {
        NextHop {
            gateway: Some(gw.parse::<IpAddr>().unwrap()),
            ifindex: IfIndex(3),
            weight: 1,
        }
    }

    fn r4(metric: u32, gws: &[&str]) -> Route {
        Route {
            table: 254,
            prefix: RoutePrefix::V4("10.9.0.0/16".parse().unwrap()),
            kind: RouteKind::Unicast,
            metric,
            next_hops: gws.iter().map(|g| hop(g)).collect(),
        }
    }

    fn r6(gws: &[&str]) -> Route {
        Route {
            table: 254,
            prefix: RoutePrefix::V6(Prefix6::new("2001:db8:3::".parse().unwrap(), 48).unwrap()),
            kind: RouteKind::Unicast,
            metric: 1024,
            next_hops: gws.iter().map(|g| hop(g)).collect(),
        }
    }

    #[test]
    fn ipv4_alternatives_at_one_metric() {
        let mut s = RouteSet::default();
        s.update(r4(0, &["192.0.2.1"]), RouteUpdate::Prepend);
        s.update(r4(0, &["192.0.2.2"]), RouteUpdate::Append);
        assert_eq!(s.best(), Some(&r4(0, &["192.0.2.1"])));
        // Deleting the first leaves the appended one in force.
        s.update(r4(0, &["192.0.2.1"]), RouteUpdate::Delete);
        assert_eq!(s.best(), Some(&r4(0, &["192.0.2.2"])));
        s.update(r4(0, &["192.0.2.3"]), RouteUpdate::Prepend);
        assert_eq!(s.best(), Some(&r4(0, &["192.0.2.3"])));
        s.update(r4(0, &["192.0.2.4"]), RouteUpdate::Replace);
        assert_eq!(s.routes().count(), 2);
        assert_eq!(s.best(), Some(&r4(0, &["192.0.2.4"])));
        // A lower metric wins over all of them.
        s.update(r4(5, &["192.0.2.5"]), RouteUpdate::Prepend);
        assert_eq!(s.best(), Some(&r4(0, &["192.0.2.4"])));
        // A delete or add older than the view (replayed after a dump)
        // changes nothing.
        s.update(r4(0, &["192.0.2.9"]), RouteUpdate::Delete);
        s.update(r4(0, &["192.0.2.2"]), RouteUpdate::Append);
        assert_eq!(s.routes().count(), 3);
        s.update(r4(0, &["192.0.2.4"]), RouteUpdate::Delete);
        s.update(r4(0, &["192.0.2.2"]), RouteUpdate::Delete);
        assert_eq!(s.best(), Some(&r4(5, &["192.0.2.5"])));
        s.update(r4(5, &["192.0.2.5"]), RouteUpdate::Delete);
        assert!(s.is_empty());
    }

    #[test]
    fn ipv6_next_hops_come_and_go_one_by_one() {
        let mut s = RouteSet::default();
        s.update(r6(&["2001:db8::1", "2001:db8::2"]), RouteUpdate::Prepend);
        // An append is notified as the whole merged route.
        s.update(
            r6(&["2001:db8::3", "2001:db8::1", "2001:db8::2"]),
            RouteUpdate::Append,
        );
        // A delete names the next hops removed.
        s.update(r6(&["2001:db8::1"]), RouteUpdate::Delete);
        assert_eq!(s.best(), Some(&r6(&["2001:db8::3", "2001:db8::2"])));
        s.update(r6(&["2001:db8::3", "2001:db8::2"]), RouteUpdate::Delete);
        assert!(s.is_empty());
    }

    /// The plain model: a map from metric to the routes at that metric.
    #[derive(Default)]
    struct Reference(std::collections::BTreeMap<u32, Vec<Route>>);

    impl Reference {
        fn update(&mut self, r: Route, how: RouteUpdate) {
            let metric = r.metric;
            let v6 = matches!(r.prefix, RoutePrefix::V6(_));
            let alts = self.0.entry(metric).or_default();
            match (how, v6) {
                (RouteUpdate::Delete, true) => {
                    if let Some(have) = alts.first_mut() {
                        if r.next_hops.is_empty() {
                            if have.kind == r.kind {
                                alts.clear();
                            }
                        } else {
                            have.next_hops.retain(|h| {
                                !r.next_hops
                                    .iter()
                                    .any(|d| (d.gateway, d.ifindex) == (h.gateway, h.ifindex))
                            });
                            if have.next_hops.is_empty() {
                                alts.clear();
                            }
                        }
                    }
                }
                (RouteUpdate::Delete, false) => {
                    if let Some(i) = alts
                        .iter()
                        .position(|a| a.kind == r.kind && a.next_hops == r.next_hops)
                    {
                        alts.remove(i);
                    }
                }
                (_, true) => *alts = vec![r],
                (RouteUpdate::Append | RouteUpdate::Prepend, false)
                    if alts
                        .iter()
                        .any(|a| a.kind == r.kind && a.next_hops == r.next_hops) => {}
                (RouteUpdate::Replace, false) if !alts.is_empty() => alts[0] = r,
                (RouteUpdate::Replace | RouteUpdate::Prepend, false) => alts.insert(0, r),
                (RouteUpdate::Append, false) => alts.push(r),
            }
            if alts.is_empty() {
                self.0.remove(&metric);
            }
        }

        fn routes(&self) -> Vec<&Route> {
            self.0.values().flatten().collect()
        }
    }

    fn how() -> impl proptest::strategy::Strategy<Value = RouteUpdate> {
        proptest::sample::select(vec![
            RouteUpdate::Replace,
            RouteUpdate::Append,
            RouteUpdate::Prepend,
            RouteUpdate::Delete,
        ])
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_the_plain_model(
            ops in proptest::collection::vec(
                (proptest::bool::ANY, 0u32..3, proptest::collection::vec(1u8..4, 0..3), how()),
                0..60,
            )
        ) {
            let mut s = RouteSet::default();
            let mut model = Reference::default();
            for (v6, metric, gws, how) in ops {
                // One family per set, as the kernel keys prefixes.
                let gws: Vec<String> = gws
                    .iter()
                    .map(|g| if v6 { format!("2001:db8::{g}") } else { format!("192.0.2.{g}") })
                    .collect();
                let gws: Vec<&str> = gws.iter().map(String::as_str).collect();
                let mut r = if v6 { r6(&gws) } else { r4(metric, &gws) };
                r.metric = metric;
                if r.next_hops.is_empty() {
                    r.kind = RouteKind::Blackhole;
                }
                if !matches!((s.best(), v6), (Some(b), _) if matches!(b.prefix, RoutePrefix::V6(_)) != v6) {
                    s.update(r.clone(), how);
                    model.update(r, how);
                }
                proptest::prop_assert_eq!(s.routes().collect::<Vec<_>>(), model.routes());
            }
        }
    }
}
