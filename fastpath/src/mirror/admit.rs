//! Decides whether a translated kernel change concerns our interfaces,
//! given the links seen so far, and whether it calls for a resync.

use super::counters::IgnoreReason;
use super::event::KernelEvent;
use super::state::MirrorState;
use std::collections::BTreeSet;

/// What to do with one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Apply it to the view.
    Apply(KernelEvent),
    /// Apply it, then dump the kernel's state again: one of our links went
    /// down, away, or changed name, and the kernel drops IPv4 routes
    /// through a downed link without a message for each.
    ApplyThenResync(KernelEvent),
    /// Not ours.
    Ignore(IgnoreReason),
}

/// Sorts `ev` against the interface names we own and what `state` holds.
pub fn admit(names: &BTreeSet<String>, state: &MirrorState, ev: KernelEvent) -> Admission {
    let ours = |i| state.link(i).is_some();
    match ev {
        KernelEvent::Link(l) => {
            let named_ours = names.contains(&l.name);
            match (named_ours, state.link(l.ifindex)) {
                (true, Some(old)) if old.up == l.up => Admission::Apply(KernelEvent::Link(l)),
                // A new link of ours may be an old one renamed to our name,
                // with addresses and routes we ignored until now.
                (true, _) => Admission::ApplyThenResync(KernelEvent::Link(l)),
                (false, Some(_)) => {
                    Admission::ApplyThenResync(KernelEvent::LinkGone { ifindex: l.ifindex })
                }
                (false, None) => Admission::Ignore(IgnoreReason::ForeignInterface),
            }
        }
        KernelEvent::LinkGone { ifindex } if ours(ifindex) => {
            Admission::ApplyThenResync(KernelEvent::LinkGone { ifindex })
        }
        KernelEvent::AddrAdd(a) | KernelEvent::AddrDel(a) if !ours(a.ifindex) => {
            Admission::Ignore(IgnoreReason::ForeignInterface)
        }
        KernelEvent::NeighAdd(n) | KernelEvent::NeighDel(n) if !ours(n.ifindex) => {
            Admission::Ignore(IgnoreReason::ForeignInterface)
        }
        // A route is ours only if every way out is: the fast path cannot
        // send through an interface it does not own.
        KernelEvent::RouteAdd(ref r) | KernelEvent::RouteDel(ref r)
            if !r.next_hops.iter().all(|h| ours(h.ifindex)) =>
        {
            Admission::Ignore(IgnoreReason::ForeignInterface)
        }
        KernelEvent::LinkGone { .. } => Admission::Ignore(IgnoreReason::ForeignInterface),
        ev => Admission::Apply(ev),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::event::{IfIndex, Link, NextHop, Route, RouteKind, RoutePrefix};

    fn link(i: u32, name: &str, up: bool) -> Link {
        Link {
            ifindex: IfIndex(i),
            name: name.into(),
            mac: None,
            mtu: 1500,
            up,
            carrier: up,
        }
    }

    fn route(hops: &[u32]) -> Route {
        Route {
            table: 254,
            prefix: RoutePrefix::V4("10.0.0.0/8".parse().unwrap()),
            kind: if hops.is_empty() {
                RouteKind::Blackhole
            } else {
                RouteKind::Unicast
            },
            metric: 0,
            next_hops: hops
                .iter()
                .map(|&i| NextHop {
                    gateway: None,
                    ifindex: IfIndex(i),
                    weight: 1,
                })
                .collect(),
        }
    }

    #[test]
    fn sorts_by_interface_and_asks_for_resyncs() {
        let names: BTreeSet<String> = ["fp0".to_owned()].into();
        let mut state = MirrorState::default();
        // A link of ours appearing: applied, and a resync (it may be a
        // rename, with state we ignored so far).
        let fp0 = KernelEvent::Link(link(3, "fp0", true));
        assert_eq!(
            admit(&names, &state, fp0.clone()),
            Admission::ApplyThenResync(fp0.clone())
        );
        state.apply(fp0.clone(), &mut Vec::new());
        // Its MTU changing: applied. Going down: applied and a resync.
        let mut mtu = link(3, "fp0", true);
        mtu.mtu = 9000;
        assert!(matches!(
            admit(&names, &state, KernelEvent::Link(mtu)),
            Admission::Apply(_)
        ));
        assert!(matches!(
            admit(&names, &state, KernelEvent::Link(link(3, "fp0", false))),
            Admission::ApplyThenResync(_)
        ));
        // Renamed away: gone.
        assert_eq!(
            admit(&names, &state, KernelEvent::Link(link(3, "eth9", true))),
            Admission::ApplyThenResync(KernelEvent::LinkGone {
                ifindex: IfIndex(3)
            })
        );
        // Another link, and anything through it: foreign.
        let foreign = Admission::Ignore(IgnoreReason::ForeignInterface);
        assert_eq!(
            admit(&names, &state, KernelEvent::Link(link(4, "eth0", true))),
            foreign
        );
        assert_eq!(
            admit(
                &names,
                &state,
                KernelEvent::LinkGone {
                    ifindex: IfIndex(4)
                }
            ),
            foreign
        );
        assert_eq!(
            admit(&names, &state, KernelEvent::RouteAdd(route(&[4]))),
            foreign
        );
        // Multipath with one foreign hop: foreign as a whole.
        assert_eq!(
            admit(&names, &state, KernelEvent::RouteAdd(route(&[3, 4]))),
            foreign
        );
        assert!(matches!(
            admit(&names, &state, KernelEvent::RouteAdd(route(&[3, 3]))),
            Admission::Apply(_)
        ));
        // A drop route goes through no interface: ours to apply.
        assert!(matches!(
            admit(&names, &state, KernelEvent::RouteDel(route(&[]))),
            Admission::Apply(_)
        ));
    }
}
