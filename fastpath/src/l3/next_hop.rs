//! Next hops: what a FIB entry points at, and the table of them the data
//! path reads (indexed by [`NextHopId`], as grout's nexthop pool is).
//!
//! A route's FIB entry holds only an id; the next hop's state (resolved
//! MAC, or not yet) lives here, so a neighbour learned for a gateway
//! changes one entry, not every route through it.

use crate::fib::NextHopId;
use drivers::net::MacAddr;
use std::fmt;
use std::net::IpAddr;

/// A fast-path port, as the worker's TX queues and the tables index them
/// (0-based, in configuration order). Not a device's [`drivers::mbuf::PortId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortIndex(pub u16);

impl PortIndex {
    /// As an index into per-port arrays.
    #[inline]
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl fmt::Display for PortIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port{}", self.0)
    }
}

/// Where a route sends a packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NextHop {
    /// Out of `port` to the station at `mac`.
    Resolved {
        /// Output port.
        port: PortIndex,
        /// Destination MAC of the rewritten frame.
        mac: MacAddr,
    },
    /// Out of `port`, but the link address is not known yet: the packet
    /// goes to the kernel, which resolves it (ARP/ND) and sends the packet
    /// itself; the neighbour it learns comes back as an update.
    Unresolved {
        /// Output port.
        port: PortIndex,
        /// The gateway; `None` for a connected route, where the packet's
        /// own destination is the neighbour.
        via: Option<IpAddr>,
    },
    /// One of our addresses: to the kernel.
    Local,
    /// Silently discarded (`ip route add blackhole`).
    Blackhole,
    /// Refused with an ICMP error the kernel sends (`unreachable`,
    /// `prohibit`).
    Unreachable,
    /// Equal-cost multipath: a flow hash picks one member. Members are
    /// never groups themselves.
    Multipath(Box<[NextHopId]>),
}

/// The next hops by id: a dense vector (ids are allocated densely by the
/// control side and reused when freed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NextHopTable {
    entries: Vec<Option<NextHop>>,
}

impl NextHopTable {
    /// The entry of `id`, if set.
    #[inline]
    pub fn get(&self, id: NextHopId) -> Option<&NextHop> {
        self.entries.get(id.0 as usize)?.as_ref()
    }

    /// The entry a packet with flow hash `hash` uses: the entry itself, or
    /// for a group the member the hash picks. `None` if an id is unset or a
    /// group holds a group (the control side never builds either).
    #[inline]
    pub fn select(&self, id: NextHopId, hash: u32) -> Option<&NextHop> {
        match self.get(id)? {
            NextHop::Multipath(members) => {
                let n = u32::try_from(members.len()).ok().filter(|n| *n > 0)?;
                let member = *members.get((hash % n) as usize)?;
                match self.get(member)? {
                    NextHop::Multipath(_) => None,
                    nh => Some(nh),
                }
            }
            nh => Some(nh),
        }
    }

    /// Sets `id` (growing the table as needed); false, and nothing done,
    /// for an id above what a FIB entry can hold
    /// ([`MAX_NEXT_HOP`](crate::fib::dir24_8::MAX_NEXT_HOP)), which no
    /// route could point at.
    pub fn set(&mut self, id: NextHopId, next_hop: NextHop) -> bool {
        if id.0 > crate::fib::dir24_8::MAX_NEXT_HOP {
            return false;
        }
        let i = id.0 as usize;
        if i >= self.entries.len() {
            self.entries.resize(i + 1, None);
        }
        if let Some(e) = self.entries.get_mut(i) {
            *e = Some(next_hop);
        }
        true
    }

    /// Unsets `id`; trailing unset entries are given back.
    pub fn clear(&mut self, id: NextHopId) {
        if let Some(e) = self.entries.get_mut(id.0 as usize) {
            *e = None;
        }
        while matches!(self.entries.last(), Some(None)) {
            self.entries.pop();
        }
    }

    /// How many ids are set.
    pub fn len(&self) -> usize {
        self.entries.iter().filter(|e| e.is_some()).count()
    }

    /// True if no id is set.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every set entry, by id.
    pub fn iter(&self) -> impl Iterator<Item = (NextHopId, &NextHop)> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some((NextHopId(i as u32), e.as_ref()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_follows_one_group_level() {
        let mut t = NextHopTable::default();
        let a = NextHop::Resolved {
            port: PortIndex(0),
            mac: MacAddr::local(1),
        };
        let b = NextHop::Resolved {
            port: PortIndex(1),
            mac: MacAddr::local(2),
        };
        t.set(NextHopId(0), a.clone());
        t.set(NextHopId(1), b.clone());
        t.set(
            NextHopId(2),
            NextHop::Multipath(vec![NextHopId(0), NextHopId(1)].into()),
        );
        assert_eq!(t.select(NextHopId(2), 4), Some(&a));
        assert_eq!(t.select(NextHopId(2), 7), Some(&b));
        assert_eq!(t.select(NextHopId(0), 7), Some(&a));
        assert_eq!(t.select(NextHopId(9), 0), None);
        // A group of groups, or an empty group, selects nothing.
        t.set(NextHopId(3), NextHop::Multipath(vec![NextHopId(2)].into()));
        t.set(NextHopId(4), NextHop::Multipath(Box::new([])));
        assert_eq!(t.select(NextHopId(3), 0), None);
        assert!(!t.set(NextHopId(u32::MAX), NextHop::Local));
        assert_eq!(t.select(NextHopId(4), 0), None);
        assert_eq!(t.len(), 5);
        t.clear(NextHopId(4));
        t.clear(NextHopId(3));
        assert_eq!(t.iter().count(), 3);
        assert_eq!(t.entries.len(), 3);
    }
}
