//! A plain longest-prefix match, written for obviousness rather than
//! speed: one map per prefix length, probed from /32 down to /0. The
//! property tests hold [`Dir24Lpm`](super::Dir24Lpm) to it; benches may use
//! it to check a sample of their lookups.

use super::next_hop::{mask_of, NextHopId, Prefix4};
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// Routes by prefix, looked up by scanning the lengths longest first.
#[derive(Debug, Clone, Default)]
pub struct ReferenceLpm {
    by_len: HashMap<(u8, u32), NextHopId>,
}

impl ReferenceLpm {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a route; returns the next hop it replaced.
    pub fn add(&mut self, prefix: Prefix4, next_hop: NextHopId) -> Option<NextHopId> {
        self.by_len
            .insert((prefix.prefix_len(), prefix.first()), next_hop)
    }

    /// Removes a route; returns its next hop, `None` if there was none.
    pub fn delete(&mut self, prefix: Prefix4) -> Option<NextHopId> {
        self.by_len.remove(&(prefix.prefix_len(), prefix.first()))
    }

    /// The next hop of the longest prefix containing `addr`.
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<NextHopId> {
        let a = u32::from(addr);
        (0..=32u8)
            .rev()
            .find_map(|len| self.by_len.get(&(len, a & mask_of(len))).copied())
    }

    /// Every route, in no particular order.
    pub fn routes(&self) -> impl Iterator<Item = (Prefix4, NextHopId)> + '_ {
        self.by_len.iter().filter_map(|(&(len, a), &nh)| {
            Prefix4::new(Ipv4Addr::from(a), len).ok().map(|p| (p, nh))
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
