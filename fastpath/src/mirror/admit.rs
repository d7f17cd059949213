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
