//! The IPv4 longest-prefix-match table in the DIR-24-8 layout (Gupta, Lin
//! and McKeown, "Routing lookups in hardware at memory access speeds",
//! INFOCOM 1998; the layout of DPDK's `rte_lpm`).
//!
//! A first level of 2^24 entries is indexed by the top 24 bits of the
//! address. An entry holds either a next hop (with the length of the prefix
//! that put it there) or, when some prefix longer than /24 falls inside that
//! /24, the index of a 256-entry second-level group indexed by the last
//! byte. A lookup is one load, or two for addresses under a long prefix.
//!
//! Entries are packed `u32`s:
//!
//! | bits  | meaning |
//! |-------|---------|
//! | 31    | valid: a route covers these addresses (an entry of 0 is "no route") |
//! | 30    | group: bits 0-23 index a second-level group (first level only) |
//! | 24-29 | depth: the length, 0 to 32, of the prefix that wrote the entry |
//! | 0-23  | the next-hop id, or the group index |
//!
//! So next-hop ids and group indexes are 24-bit, as in `rte_lpm`. The
//! depth is what makes updates local: an add overwrites only entries
//! written by a prefix no longer than its own, and a delete rewrites only
//! entries of its own depth, with the next hop of the longest remaining
//! prefix that covers it (found in the rule set, one map per length).
//! The first level keeps bounds of the tags (depths) in each block of
//! 1,024 entries and the groups below them, so that a prefix of /14 or
//! shorter stores whole blocks it owns and skips those it cannot change
//! (see `first_level`).
//!
//! Groups come from a pool bounded by `max_groups`, allocated on first use
//! and recycled: when the last prefix longer than /24 in a group goes, the
//! group folds back into its first-level entry and returns to the free list.

use super::error::FibError;
use super::first_level::FirstLevel;
use super::group_pool::GroupPool;
use super::next_hop::{mask_of, NextHopId, Prefix4};
use super::rule_map::{rule_map, RuleMap};
use super::span_fill::fill_span;
use std::fmt;
use std::net::Ipv4Addr;

/// Entry bit: a route covers these addresses.
const VALID: u32 = 1 << 31;
/// Entry bit (first level): the payload is a group index.
const GROUP: u32 = 1 << 30;
/// Where the depth starts in an entry.
const DEPTH_SHIFT: u32 = 24;
/// The depth field, after shifting.
const DEPTH_MASK: u32 = 0x3f;
/// The payload: a next-hop id or a group index.
const PAYLOAD_MASK: u32 = (1 << 24) - 1;

/// The largest next-hop id an entry can hold.
pub const MAX_NEXT_HOP: u32 = PAYLOAD_MASK;
/// The largest group pool an entry can index.
pub const MAX_GROUPS_LIMIT: u32 = 1 << 24;

/// The default group pool: 65,536 groups (64 MiB when all are in use),
/// the number DPDK's own `lpm_perf_autotest` gives `rte_lpm` for its
/// generated 1.08 M-route table (`NUMBER_TBL8S`, 1 << 16). A group is
/// needed per /24 that holds a prefix longer than /24; that table has about
/// 42,000 such prefixes (3.9 %), so at most that many groups, and real
/// Internet tables have far fewer (most networks filter routes longer than
/// /24). `rte_lpm`'s own default elsewhere (256 groups, in l3fwd) would
/// not hold it. The pool is reserved as address space and written as
/// groups are used, so the default costs no memory until then.
pub const DEFAULT_MAX_GROUPS: u32 = 1 << 16;

/// Addresses whose first-level entries [`Dir24Lpm::lookup_bulk`] loads
/// before using any. lpm-bench, interleaved runs of builds against the
/// one-pass loop (12 runs each, medians): 8 took the fewest cycles, 12.0
/// per address against 12.9 (fastest pass 10.7 against 11.15); 4 and 16
/// gained less (fastest pass 10.8 and 11.4), and 32 was worse (its second
/// pass fills the reorder window before the next chunk's loads start).
const BULK_CHUNK: usize = 8;

/// The next hop a final (non-group) entry gives a lookup.
#[inline(always)]
fn hop_of(e: u32) -> Option<NextHopId> {
    if e & VALID != 0 {
        Some(NextHopId(e & PAYLOAD_MASK))
    } else {
        None
    }
}

/// One entry, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// No route.
    Empty,
    /// A next hop, written by a prefix of this depth.
    Hop { depth: u8, next_hop: u32 },
    /// A second-level group (first level only).
    Group(u32),
}

impl Entry {
    fn decode(e: u32) -> Entry {
        if e & GROUP != 0 {
            Entry::Group(e & PAYLOAD_MASK)
        } else if e & VALID != 0 {
            Entry::Hop {
                // At most 63 after the mask; fits u8.
                depth: ((e >> DEPTH_SHIFT) & DEPTH_MASK) as u8,
                next_hop: e & PAYLOAD_MASK,
            }
        } else {
            Entry::Empty
        }
    }
}

fn hop_entry(depth: u8, next_hop: u32) -> u32 {
    VALID | (u32::from(depth) << DEPTH_SHIFT) | (next_hop & PAYLOAD_MASK)
}

fn group_entry(group: u32) -> u32 {
    VALID | GROUP | (group & PAYLOAD_MASK)
}

/// An entry a prefix of `depth` may overwrite on add: empty, or written by
/// a prefix no longer than it (equal: the same prefix, being replaced).
/// One compare, so that fill loops vectorise: no route is 0, a hop of
/// depth d is `VALID | d << 24 | id`, and a group entry, with `GROUP` set,
/// is above every hop (depths stop at 32).
#[inline(always)]
fn add_may_overwrite(e: u32, depth: u8) -> bool {
    e < VALID | ((u32::from(depth) + 1) << DEPTH_SHIFT)
}

/// An entry written by the prefix of `depth` being deleted: its top byte
/// is `VALID` and that depth (a group's has `GROUP` too).
#[inline(always)]
fn written_by(e: u32, depth: u8) -> bool {
    e >> DEPTH_SHIFT == (VALID >> DEPTH_SHIFT) | u32::from(depth)
}

/// The tag [`FirstLevel`] keeps bounds of: an entry's top byte (0 for no
/// route, `VALID` and the depth for a hop, `VALID | GROUP` for a group:
/// ordered as it needs).
fn tag_of(e: u32) -> u8 {
    // Truncation meant: the top byte.
    (e >> DEPTH_SHIFT) as u8
}

/// The tag of every group entry.
const GROUP_TAG: u8 = ((VALID | GROUP) >> DEPTH_SHIFT) as u8;

/// The tag of the entries a prefix of `depth` writes.
fn tag_of_depth(depth: u8) -> u8 {
    tag_of(hop_entry(depth, 0))
}

/// The first-level entries of a prefix of /24 or shorter.
fn span24(prefix: Prefix4) -> std::ops::Range<usize> {
    idx24(prefix.first())..idx24(prefix.last()) + 1
}

/// The DIR-24-8 IPv4 longest-prefix-match table. See the module docs for
/// the layout.
#[derive(Clone)]
pub struct Dir24Lpm {
    /// First level, indexed by the top 24 bits.
    tbl24: FirstLevel,
    /// Second-level groups.
    groups: GroupPool,
    /// The rule set: for each length 0 to 32, network address to next hop.
    rules: [RuleMap<u32>; 33],
    /// Routes in `rules`.
    routes: usize,
}

impl fmt::Debug for Dir24Lpm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dir24Lpm")
            .field("routes", &self.routes)
            .field("groups_in_use", &self.groups_in_use())
            .field("max_groups", &self.max_groups())
            .field("memory_bytes", &self.memory_bytes())
            .field("hugepages_advised", &self.hugepages_advised())
            .finish()
    }
}

impl Default for Dir24Lpm {
    fn default() -> Self {
        Self::new()
    }
}

impl Dir24Lpm {
    /// An empty table with the default group pool ([`DEFAULT_MAX_GROUPS`]).
    pub fn new() -> Self {
        Self::build(DEFAULT_MAX_GROUPS)
    }

    /// An empty table whose group pool holds at most `max_groups` groups
    /// (each 1 KiB, backed by memory when first used).
    pub fn with_max_groups(max_groups: u32) -> Result<Self, FibError> {
        if max_groups > MAX_GROUPS_LIMIT {
            return Err(FibError::TooManyGroups {
                asked: max_groups,
                max: MAX_GROUPS_LIMIT,
            });
        }
        Ok(Self::build(max_groups))
    }

    fn build(max_groups: u32) -> Self {
        Dir24Lpm {
            tbl24: FirstLevel::new(GROUP_TAG),
            groups: GroupPool::new(max_groups),
            rules: std::array::from_fn(|_| rule_map()),
            routes: 0,
        }
    }

    /// The next hop for `addr`: that of the longest prefix containing it.
    #[inline]
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<NextHopId> {
        self.lookup_u32(u32::from(addr))
    }

    /// [`lookup`](Self::lookup) of an address as a host-order integer
    /// (`u32::from_be_bytes` of the header's four bytes).
    #[inline]
    pub fn lookup_u32(&self, addr: u32) -> Option<NextHopId> {
        hop_of(self.resolve(addr))
    }

    /// The final (non-group) entry for `addr`.
    #[inline(always)]
    fn resolve(&self, addr: u32) -> u32 {
        // addr >> 8 < 2^24: in bounds by type, no check emitted.
        self.below(self.tbl24[(addr >> 8) as usize], addr)
    }

    /// The final entry for `addr` given its first-level entry `e`: `e`
    /// itself, or the second-level entry if `e` is a group.
    #[inline(always)]
    fn below(&self, e: u32, addr: u32) -> u32 {
        if e & GROUP == 0 {
            return e;
        }
        // A group entry always indexes an allocated group; a missing one
        // would be a bug, answered as "no route" rather than a panic.
        match self.groups.get(e & PAYLOAD_MASK) {
            Some(g) => g[(addr & 0xff) as usize],
            None => 0,
        }
    }

    /// Looks up each address of `addrs` (host-order integers) into the
    /// same position of `out`. If the slices differ in length, only the
    /// shorter length is looked up.
    pub fn lookup_bulk(&self, addrs: &[u32], out: &mut [Option<NextHopId>]) {
        let mut a = addrs.chunks_exact(BULK_CHUNK);
        let mut o = out.chunks_exact_mut(BULK_CHUNK);
        for (ac, oc) in (&mut a).zip(&mut o) {
            // First every first-level load of the chunk, nothing depending
            // on them, so that their cache misses overlap; then the rare
            // second-level loads and the results.
            let mut first = [0u32; BULK_CHUNK];
            for (e, &x) in first.iter_mut().zip(ac) {
                *e = self.tbl24[(x >> 8) as usize];
            }
            for ((r, &e), &x) in oc.iter_mut().zip(&first).zip(ac) {
                *r = hop_of(self.below(e, x));
            }
        }
        for (&x, r) in a.remainder().iter().zip(o.into_remainder()) {
            *r = hop_of(self.resolve(x));
        }
    }

    /// The next hop of exactly `prefix`, if that route is in the table.
    pub fn get(&self, prefix: Prefix4) -> Option<NextHopId> {
        self.rules
            .get(usize::from(prefix.prefix_len()))
            .and_then(|m| m.get(&prefix.first()))
            .copied()
    }

    /// Adds a route, or replaces its next hop if the prefix is already in
    /// the table; returns the next hop replaced. On error nothing changed.
    pub fn add(
        &mut self,
        prefix: Prefix4,
        next_hop: NextHopId,
    ) -> Result<Option<NextHopId>, FibError> {
        if next_hop.0 > MAX_NEXT_HOP {
            return Err(FibError::NextHopOutOfRange {
                id: next_hop.0,
                max: MAX_NEXT_HOP,
            });
        }
        // The same route again: the entries already say so, and a short
        // prefix would rewrite up to millions of them for nothing.
        if self.get(prefix) == Some(next_hop) {
            return Ok(Some(next_hop));
        }
        let depth = prefix.prefix_len();
        let entry = hop_entry(depth, next_hop.0);
        if depth <= 24 {
            let groups = &mut self.groups;
            self.tbl24.fill_add(span24(prefix), entry, |below| {
                groups.fill_groups(below, entry, |e| add_may_overwrite(e, depth), GROUP_TAG)
            });
        } else {
            let group = self.group_for(prefix.first())?;
            self.fill_long(group, prefix, entry, |e| add_may_overwrite(e, depth));
            self.tbl24.widen(idx24(prefix.first()), tag_of(entry));
        }
        let previous = self
            .rules
            .get_mut(usize::from(depth))
            .and_then(|m| m.insert(prefix.first(), next_hop));
        if previous.is_none() {
            self.routes += 1;
        }
        Ok(previous)
    }

    /// Removes a route and gives its addresses back to the longest
    /// remaining prefix that covers it (or to no route). Returns the next
    /// hop removed, `None` if the prefix was not in the table.
    pub fn delete(&mut self, prefix: Prefix4) -> Option<NextHopId> {
        let depth = prefix.prefix_len();
        let removed = self
            .rules
            .get_mut(usize::from(depth))
            .and_then(|m| m.remove(&prefix.first()))?;
        self.routes -= 1;
        let replacement = match self.cover(prefix) {
            Some((d, nh)) => hop_entry(d, nh.0),
            None => 0,
        };
        if depth <= 24 {
            let groups = &mut self.groups;
            let own = tag_of_depth(depth);
            self.tbl24
                .fill_delete(span24(prefix), own, replacement, |below| {
                    groups.fill_groups(below, replacement, |e| written_by(e, depth), GROUP_TAG)
                });
        } else if let Entry::Group(group) = Entry::decode(self.tbl24[idx24(prefix.first())]) {
            self.fill_long(group, prefix, replacement, |e| written_by(e, depth));
            self.tbl24.widen(idx24(prefix.first()), tag_of(replacement));
            self.recycle(prefix.first(), group);
        }
        Some(removed)
    }

    /// The longest route strictly shorter than `prefix` that contains it.
    fn cover(&self, prefix: Prefix4) -> Option<(u8, NextHopId)> {
        (0..prefix.prefix_len()).rev().find_map(|d| {
            let m = self.rules.get(usize::from(d))?;
            // Most lengths hold no route in real tables: no hash, no miss.
            if m.is_empty() {
                return None;
            }
            m.get(&(prefix.first() & mask_of(d))).map(|nh| (d, *nh))
        })
    }

    /// Writes `entry` over the entries of a prefix longer than /24 that
    /// `overwrite` accepts, in its group.
    fn fill_long(
        &mut self,
        group: u32,
        prefix: Prefix4,
        entry: u32,
        overwrite: impl Fn(u32) -> bool,
    ) {
        let first = (prefix.first() & 0xff) as usize;
        let last = (prefix.last() & 0xff) as usize;
        let Some(span) = self
            .groups
            .get_mut(group)
            .and_then(|g| g.get_mut(first..=last))
        else {
            return;
        };
        fill_span(span, entry, overwrite, |_| false, &mut Vec::new());
    }

    /// The group under the /24 of `addr`, allocating one (filled with the
    /// first-level entry it replaces) if there is none yet.
    fn group_for(&mut self, addr: u32) -> Result<u32, FibError> {
        let i = idx24(addr);
        let e = self.tbl24[i];
        if let Entry::Group(g) = Entry::decode(e) {
            return Ok(g);
        }
        let g = self.groups.alloc(e)?;
        self.tbl24.set(i, group_entry(g));
        Ok(g)
    }

    /// Folds the group under the /24 of `addr` back into its first-level
    /// entry once no prefix longer than /24 remains in it: its entries are
    /// then all the same (the /24's longest cover, or no route).
    fn recycle(&mut self, addr: u32, group: u32) {
        let Some(entries) = self.groups.get(group) else {
            return;
        };
        let long = entries
            .iter()
            .any(|&e| matches!(Entry::decode(e), Entry::Hop { depth, .. } if depth > 24));
        if long {
            return;
        }
        let folded = entries[0];
        self.groups.release(group);
        self.tbl24.set(idx24(addr), folded);
    }

    /// Routes in the table.
    pub fn len(&self) -> usize {
        self.routes
    }

    /// True if the table has no routes.
    pub fn is_empty(&self) -> bool {
        self.routes == 0
    }

    /// Every route, in no particular order.
    pub fn routes(&self) -> impl Iterator<Item = (Prefix4, NextHopId)> + '_ {
        self.rules.iter().zip(0u8..).flat_map(|(m, len)| {
            m.iter().filter_map(move |(&a, &nh)| {
                Prefix4::new(Ipv4Addr::from(a), len).ok().map(|p| (p, nh))
            })
        })
    }

    /// True if the kernel took the advice to back the first level with
    /// transparent hugepages (it may still use 4 KiB pages where none are
    /// free; `AnonHugePages` in /proc/PID/smaps_rollup tells).
    pub fn hugepages_advised(&self) -> bool {
        self.tbl24.hugepages_advised()
    }

    /// Second-level groups in use.
    pub fn groups_in_use(&self) -> usize {
        self.groups.in_use()
    }

    /// The group pool's bound.
    pub fn max_groups(&self) -> u32 {
        self.groups.max()
    }

    /// Bytes the table holds: the first level (64 MiB, of which only the
    /// pages written are resident), the groups allocated so far, the free
    /// list, and an estimate of the rule set (the maps' capacity times a
    /// key, a value and the hash table's control byte).
    pub fn memory_bytes(&self) -> usize {
        let rule_bytes: usize = self
            .rules
            .iter()
            .map(|m| m.capacity() * (size_of::<u32>() + size_of::<NextHopId>() + 1))
            .sum();
        size_of_val(&*self.tbl24) + self.groups.bytes() + rule_bytes
    }

    /// True if no first-level entry is set (for tests of emptying).
    #[cfg(test)]
    fn first_level_clear(&self) -> bool {
        self.tbl24.iter().all(|&e| e == 0)
    }
}

/// The first-level index of an address.
fn idx24(addr: u32) -> usize {
    (addr >> 8) as usize
}

#[cfg(test)]
mod tests;
