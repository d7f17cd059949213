//! A plain IPv6 longest-prefix match, written for obviousness rather than
//! speed: one map keyed by (length, network), probed from /128 down to /0.
//! The property tests hold [`Lpm6`](super::Lpm6) to it; benches may use it
//! to check a sample of their lookups.

use super::next_hop::NextHopId;
use super::prefix6::{mask6_of, Prefix6};
use std::collections::HashMap;
use std::net::Ipv6Addr;

/// Routes by prefix, looked up by scanning the lengths longest first.
#[derive(Debug, Clone, Default)]
pub struct ReferenceLpm6 {
    by_len: HashMap<(u8, u128), NextHopId>,
}

impl ReferenceLpm6 {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a route; returns the next hop it replaced.
    pub fn add(&mut self, prefix: Prefix6, next_hop: NextHopId) -> Option<NextHopId> {
        self.by_len
            .insert((prefix.prefix_len(), prefix.first()), next_hop)
    }

    /// Removes a route; returns its next hop, `None` if there was none.
    pub fn delete(&mut self, prefix: Prefix6) -> Option<NextHopId> {
        self.by_len.remove(&(prefix.prefix_len(), prefix.first()))
    }

    /// The next hop of the longest prefix containing `addr`.
    pub fn lookup(&self, addr: Ipv6Addr) -> Option<NextHopId> {
        let a = u128::from(addr);
        (0..=128u8)
            .rev()
            .find_map(|len| self.by_len.get(&(len, a & mask6_of(len))).copied())
    }

    /// Every route, in no particular order.
    pub fn routes(&self) -> impl Iterator<Item = (Prefix6, NextHopId)> + '_ {
        self.by_len.iter().filter_map(|(&(len, a), &nh)| {
            Prefix6::new(Ipv6Addr::from(a), len).ok().map(|p| (p, nh))
        })
    }

    /// The number of routes.
    pub fn len(&self) -> usize {
        self.by_len.len()
    }

    /// True if there are no routes.
    pub fn is_empty(&self) -> bool {
        self.by_len.is_empty()
    }
}
