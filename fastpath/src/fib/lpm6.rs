//! The IPv6 longest-prefix-match table: a multibit trie with a 24-bit
//! first level and 8-bit strides below it (the shape of DPDK's `rte_lpm6`
//! and of `rte_fib6`'s trie).
//!
//! A first level of 2^24 entries is indexed by the top 24 bits of the
//! address. An entry holds a next hop (with the length of the prefix that
//! put it there), no route, or the index of a 256-entry group indexed by
//! the next address byte; a group's entries are the same three kinds, so a
//! lookup follows groups byte by byte until it meets a next hop or no
//! route: one load for a prefix of /24 or shorter, 1 + ceil((len-24)/8)
//! for a longer one (4 for a /48, 14 at most).
//!
//! Why this shape rather than, say, a 16-bit first level or a
//! path-compressed trie: it is the IPv4 [`Dir24Lpm`](super::Dir24Lpm)'s
//! layout carried on, so the two tables share their entry semantics,
//! their update rules and their hugepage advice, and a lookup costs as
//! many loads as DPDK's own IPv6 tables, which makes `scripts/compare-lpm.sh`
//! a like-for-like comparison. Real IPv6 tables are mostly /29 to /48
//! (RIR allocations and end-site assignments), so lookups take 2 to 4
//! loads. The price is the first level's 64 MiB (per copy), resident only
//! where written; a 16-bit first level would save that memory but cost
//! every lookup a load.
//!
//! Entries are packed `u32`s; the top byte is a tag:
//!
//! | tag (bits 24-31) | meaning | bits 0-23 |
//! |------------------|---------|-----------|
//! | 0                | no route | 0 |
//! | 1 to 129         | a next hop, put there by a prefix of length tag - 1 | next-hop id |
//! | 255              | a group | group index |
//!
//! (The IPv4 table keeps valid and group flags and a 6-bit depth; lengths
//! up to 128 need 8 bits, and a tag keeps next-hop ids and group indexes
//! at 24 bits, the same limit as the IPv4 table's, so one next-hop table
//! serves both.) As in the IPv4 table, the length is what makes updates
//! local: an add overwrites only entries put there by prefixes no longer
//! than its own, a delete rewrites only entries of its own length (with the
//! next hop of the longest remaining prefix that covers it, found in the
//! rule set, one map per length), both descending into the groups below.
//! The first level keeps bounds of the tags in each block of 1,024
//! entries and the groups below them (see `first_level`): a short prefix
//! stores whole blocks it owns and skips, groups and all, those it cannot
//! change, which is what lets DPDK's table shape scaled to 100,000 routes
//! (hundreds of /1 to /4 added again with new next hops, over some
//! 550,000 groups) build in about 2 s instead of about 100.
//!
//! Groups come from a pool bounded by `max_groups`, allocated on first use
//! and recycled. A group exists exactly while some prefix longer than the
//! bits above it ends in it or below it: when a delete takes the last one
//! away, the group folds back into the entry above it and returns to the
//! free list, and so may the groups above it, so that deleting every route
//! frees every group.

use super::error::FibError;
use super::first_level::FirstLevel;
use super::group_pool::GroupPool;
use super::next_hop::NextHopId;
use super::prefix6::{mask6_of, Prefix6};
use super::rule_map::{rule_map, RuleMap};
use super::span_fill::fill_span;
use std::fmt;
use std::net::Ipv6Addr;
use std::ops::{Range, RangeInclusive};

/// Address bytes the first level consumes; groups start at this byte.
const FIRST_BYTES: usize = 3;
/// Where the tag starts in an entry.
const TAG_SHIFT: u32 = 24;
/// The tag of a group entry.
const GROUP_TAG: u32 = 0xff;
/// [`GROUP_TAG`] as the byte it is.
const GROUP_TAG8: u8 = 0xff;
/// The payload: a next-hop id or a group index.
const PAYLOAD_MASK: u32 = (1 << TAG_SHIFT) - 1;

/// The largest next-hop id an entry can hold (the IPv4 table's too).
pub const MAX_NEXT_HOP: u32 = PAYLOAD_MASK;
/// The largest group pool an entry can index.
pub const MAX_GROUPS_LIMIT: u32 = 1 << 24;

/// The default group pool: 1,048,576 groups (1 GiB if all were in use),
/// about the 1,000,000 that DPDK's `fib6_perf_autotest` gives `rte_fib6`.
/// A route of length L > 24 needs up to ceil((L-24)/8) groups of its own,
/// so DPDK's generated table shape (lengths spread evenly over /1 to /128,
/// random bits) needs about 5.6 groups a route: `lpm-bench --ipv6` counts
/// 5,516 groups for 985 distinct routes, and 551,414 groups (539 MiB) for
/// 93,012 with `--routes 100000`, so this pool holds some 175,000 such
/// routes. Real tables share most groups (prefixes cluster under a few
/// /16s to /32s) and need far fewer. The pool is reserved as address
/// space and written as groups are used, so the default costs no memory
/// until then.
pub const DEFAULT_MAX_GROUPS: u32 = 1 << 20;

/// One entry, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// No route.
    Empty,
    /// A next hop, written by a prefix of this length.
    Hop { depth: u8, next_hop: u32 },
    /// A group below.
    Group(u32),
}

impl Entry {
    fn decode(e: u32) -> Entry {
        match e >> TAG_SHIFT {
            0 => Entry::Empty,
            GROUP_TAG => Entry::Group(e & PAYLOAD_MASK),
            // Tags 1 to 129 are written; the top byte minus one fits u8.
            tag => Entry::Hop {
                depth: (tag - 1) as u8,
                next_hop: e & PAYLOAD_MASK,
            },
        }
    }
}

fn hop_entry(depth: u8, next_hop: u32) -> u32 {
    ((u32::from(depth) + 1) << TAG_SHIFT) | (next_hop & PAYLOAD_MASK)
}

fn group_entry(group: u32) -> u32 {
    (GROUP_TAG << TAG_SHIFT) | (group & PAYLOAD_MASK)
}

/// True for a group entry (the largest tag: one compare on the lookup path).
#[inline(always)]
fn is_group(e: u32) -> bool {
    e >= GROUP_TAG << TAG_SHIFT
}

/// The next hop a final (non-group) entry gives a lookup.
#[inline(always)]
fn hop_of(e: u32) -> Option<NextHopId> {
    if e >> TAG_SHIFT != 0 {
        Some(NextHopId(e & PAYLOAD_MASK))
    } else {
        None
    }
}

/// An entry a prefix of `depth` may overwrite on add: empty, or written by
/// a prefix no longer than it (equal: the same prefix, being replaced).
/// One compare of tags: no route is tag 0, and a group's tag is above any
/// length's, so a group is never overwritten (fills descend into it).
#[inline(always)]
fn add_may_overwrite(e: u32, depth: u8) -> bool {
    e >> TAG_SHIFT <= u32::from(depth) + 1
}

/// An entry written by the prefix of `depth` being deleted (never a group
/// or no route, whose tags no length has).
#[inline(always)]
fn written_by(e: u32, depth: u8) -> bool {
    e >> TAG_SHIFT == u32::from(depth) + 1
}

/// The first-level index of an address: its top 24 bits.
#[inline(always)]
fn idx24(a: &[u8; 16]) -> usize {
    (usize::from(a[0]) << 16) | (usize::from(a[1]) << 8) | usize::from(a[2])
}

/// Byte `i` of an address (0 past the end, which no caller asks for).
fn byte(a: &[u8; 16], i: usize) -> u8 {
    a.get(i).copied().unwrap_or(0)
}

/// The address byte whose group a prefix longer than /24 ends in.
fn end_byte(depth: u8) -> usize {
    usize::from(depth.saturating_sub(1)) / 8
}

/// Where an entry lives: in the first level, or in a group at a byte value.
#[derive(Debug, Clone, Copy)]
enum Slot {
    First(usize),
    InGroup(u32, u8),
}

/// The IPv6 longest-prefix-match table. See the module docs for the layout.
#[derive(Clone)]
pub struct Lpm6 {
    /// First level, indexed by the top 24 bits.
    tbl24: FirstLevel,
    /// The groups below it.
    groups: GroupPool,
    /// The rule set: for each length 0 to 128, network address to next hop.
    rules: [RuleMap<u128>; 129],
    /// Routes in `rules`.
    routes: usize,
}

impl fmt::Debug for Lpm6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lpm6")
            .field("routes", &self.routes)
            .field("groups_in_use", &self.groups_in_use())
            .field("max_groups", &self.max_groups())
            .field("memory_bytes", &self.memory_bytes())
            .field("hugepages_advised", &self.hugepages_advised())
            .finish()
    }
}

impl Default for Lpm6 {
    fn default() -> Self {
        Self::new()
    }
}

impl Lpm6 {
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
        Lpm6 {
            tbl24: FirstLevel::new(GROUP_TAG8),
            groups: GroupPool::new(max_groups),
            rules: std::array::from_fn(|_| rule_map()),
            routes: 0,
        }
    }

    /// The next hop for `addr`: that of the longest prefix containing it.
    #[inline]
    pub fn lookup(&self, addr: Ipv6Addr) -> Option<NextHopId> {
        hop_of(self.resolve(&addr.octets()))
    }

    /// [`lookup`](Self::lookup) of an address as its 16 bytes in network
    /// order (as in the header).
    #[inline]
    pub fn lookup_octets(&self, addr: &[u8; 16]) -> Option<NextHopId> {
        hop_of(self.resolve(addr))
    }

    /// The final (non-group) entry for `a`.
    #[inline(always)]
    fn resolve(&self, a: &[u8; 16]) -> u32 {
        // idx24 < 2^24: in bounds by type, no check emitted.
        let mut e = self.tbl24[idx24(a)];
        let mut i = FIRST_BYTES;
        while is_group(e) {
            // A group entry always indexes an allocated group, and no
            // group hangs below byte 15; a break of either would be a bug,
            // answered as "no route" rather than a panic.
            let (Some(g), Some(&b)) = (self.groups.get(e & PAYLOAD_MASK), a.get(i)) else {
                return 0;
            };
            e = g[usize::from(b)];
            i += 1;
        }
        e
    }

    /// Looks up each address of `addrs` (16 bytes each, network order)
    /// into the same position of `out`. If the slices differ in length,
    /// only the shorter length is looked up.
    pub fn lookup_bulk(&self, addrs: &[[u8; 16]], out: &mut [Option<NextHopId>]) {
        for (a, o) in addrs.iter().zip(out.iter_mut()) {
            *o = hop_of(self.resolve(a));
        }
    }

    /// The next hop of exactly `prefix`, if that route is in the table.
    pub fn get(&self, prefix: Prefix6) -> Option<NextHopId> {
        self.rules
            .get(usize::from(prefix.prefix_len()))
            .and_then(|m| m.get(&prefix.first()))
            .copied()
    }

    /// Adds a route, or replaces its next hop if the prefix is already in
    /// the table; returns the next hop replaced. On error nothing changed.
    pub fn add(
        &mut self,
        prefix: Prefix6,
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
        let a = prefix.addr().octets();
        if depth <= 24 {
            let groups = &mut self.groups;
            self.tbl24.fill_add(span24(&a, depth), entry, |below| {
                groups.fill_groups(below, entry, |e| add_may_overwrite(e, depth), GROUP_TAG8)
            });
        } else {
            let group = self.group_path(&a, end_byte(depth))?;
            self.fill_in_group(idx24(&a), group, span_in_group(&a, depth), entry, |e| {
                add_may_overwrite(e, depth)
            });
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
    pub fn delete(&mut self, prefix: Prefix6) -> Option<NextHopId> {
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
        let a = prefix.addr().octets();
        if depth <= 24 {
            let groups = &mut self.groups;
            let own = tag_of_depth(depth);
            self.tbl24
                .fill_delete(span24(&a, depth), own, replacement, |below| {
                    groups.fill_groups(below, replacement, |e| written_by(e, depth), GROUP_TAG8)
                });
        } else {
            let end = end_byte(depth);
            let path = self.existing_path(&a, end);
            // The prefix was in the table, so its path of groups exists
            // down to the byte it ends in.
            if path.len() == end + 1 - FIRST_BYTES {
                if let Some(&(_, group)) = path.last() {
                    self.fill_in_group(
                        idx24(&a),
                        group,
                        span_in_group(&a, depth),
                        replacement,
                        |e| written_by(e, depth),
                    );
                }
                self.recycle(&path);
            }
        }
        Some(removed)
    }

    /// The longest route strictly shorter than `prefix` that contains it.
    fn cover(&self, prefix: Prefix6) -> Option<(u8, NextHopId)> {
        (0..prefix.prefix_len()).rev().find_map(|d| {
            let m = self.rules.get(usize::from(d))?;
            if m.is_empty() {
                return None;
            }
            m.get(&(prefix.first() & mask6_of(d))).map(|nh| (d, *nh))
        })
    }

    fn slot_get(&self, slot: Slot) -> u32 {
        match slot {
            Slot::First(i) => self.tbl24.get(i).copied().unwrap_or(0),
            Slot::InGroup(g, b) => self.groups.get(g).map_or(0, |group| group[usize::from(b)]),
        }
    }

    fn slot_set(&mut self, slot: Slot, e: u32) {
        match slot {
            Slot::First(i) => {
                self.tbl24.set(i, e);
            }
            Slot::InGroup(g, b) => {
                if let Some(group) = self.groups.get_mut(g) {
                    group[usize::from(b)] = e;
                }
            }
        }
    }

    /// Groups that a path down to the group at byte `end` would allocate.
    fn groups_missing(&self, a: &[u8; 16], end: usize) -> usize {
        let mut slot = Slot::First(idx24(a));
        for i in FIRST_BYTES..=end {
            match Entry::decode(self.slot_get(slot)) {
                Entry::Group(g) => slot = Slot::InGroup(g, byte(a, i)),
                _ => return end + 1 - i,
            }
        }
        0
    }

    /// The group at byte `end` on the path of `a`, allocating the groups
    /// missing on the way (each filled with the entry it replaces). Checks
    /// the pool first, so that a refusal leaves the table as it was.
    fn group_path(&mut self, a: &[u8; 16], end: usize) -> Result<u32, FibError> {
        let missing = self.groups_missing(a, end);
        if missing > self.groups.room() {
            return Err(FibError::GroupsExhausted {
                max_groups: self.groups.max(),
            });
        }
        let mut slot = Slot::First(idx24(a));
        let mut group = 0;
        for i in FIRST_BYTES..=end {
            let e = self.slot_get(slot);
            group = match Entry::decode(e) {
                Entry::Group(g) => g,
                _ => {
                    let g = self.groups.alloc(e)?;
                    self.slot_set(slot, group_entry(g));
                    g
                }
            };
            slot = Slot::InGroup(group, byte(a, i));
        }
        Ok(group)
    }

    /// The groups on the path of `a` down to byte `end` that exist, each
    /// with the slot that points at it, top first.
    fn existing_path(&self, a: &[u8; 16], end: usize) -> Vec<(Slot, u32)> {
        let mut path = Vec::with_capacity(end + 1 - FIRST_BYTES);
        let mut slot = Slot::First(idx24(a));
        for i in FIRST_BYTES..=end {
            let Entry::Group(g) = Entry::decode(self.slot_get(slot)) else {
                break;
            };
            path.push((slot, g));
            slot = Slot::InGroup(g, byte(a, i));
        }
        path
    }

    /// Folds the groups of a path, deepest first, back into the entries
    /// pointing at them while no prefix longer than the bits above a group
    /// remains in it: its entries are then all the same (the longest cover
    /// of its whole range, or no route).
    fn recycle(&mut self, path: &[(Slot, u32)]) {
        for (i, &(slot, g)) in path.iter().enumerate().rev() {
            // The group at byte FIRST_BYTES + i holds the bits past this.
            let above = (FIRST_BYTES + i) * 8;
            let Some(entries) = self.groups.get(g) else {
                return;
            };
            let keep = entries.iter().any(|&e| match Entry::decode(e) {
                Entry::Group(_) => true,
                Entry::Hop { depth, .. } => usize::from(depth) > above,
                Entry::Empty => false,
            });
            if keep {
                return;
            }
            let folded = entries[0];
            self.groups.release(g);
            self.slot_set(slot, folded);
        }
    }

    /// Writes `entry` over the entries of `span` in `group` that
    /// `overwrite` accepts, and over those of the groups below them; the
    /// group hangs under first-level entry `first`, whose block bounds
    /// are widened to the entry's tag.
    fn fill_in_group(
        &mut self,
        first: usize,
        group: u32,
        span: RangeInclusive<usize>,
        entry: u32,
        overwrite: impl Fn(u32) -> bool,
    ) {
        let mut below = Vec::new();
        if let Some(s) = self.groups.get_mut(group).and_then(|g| g.get_mut(span)) {
            fill_span(s, entry, &overwrite, is_group, &mut below);
        }
        self.groups
            .fill_groups(&mut below, entry, &overwrite, GROUP_TAG8);
        self.tbl24.widen(first, tag_of(entry));
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
    pub fn routes(&self) -> impl Iterator<Item = (Prefix6, NextHopId)> + '_ {
        self.rules.iter().zip(0u8..).flat_map(|(m, len)| {
            m.iter().filter_map(move |(&a, &nh)| {
                Prefix6::new(Ipv6Addr::from(a), len).ok().map(|p| (p, nh))
            })
        })
    }

    /// True if the kernel took the advice to back the first level with
    /// transparent hugepages.
    pub fn hugepages_advised(&self) -> bool {
        self.tbl24.hugepages_advised()
    }

    /// Groups in use.
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
            .map(|m| m.capacity() * (size_of::<u128>() + size_of::<NextHopId>() + 1))
            .sum();
        size_of_val(&*self.tbl24) + self.groups.bytes() + rule_bytes
    }

    /// True if no first-level entry is set (for tests of emptying).
    #[cfg(test)]
    fn first_level_clear(&self) -> bool {
        self.tbl24.iter().all(|&e| e == 0)
    }
}

/// The first-level entries of a prefix of /24 or shorter.
fn span24(a: &[u8; 16], depth: u8) -> Range<usize> {
    let first = idx24(a);
    first..first + (1usize << (24 - u32::from(depth.min(24))))
}

/// The tag (top byte) of an entry, as [`FirstLevel`] keeps bounds of.
fn tag_of(e: u32) -> u8 {
    // Truncation meant: the top byte.
    (e >> TAG_SHIFT) as u8
}

/// The tag of the entries a prefix of `depth` writes.
fn tag_of_depth(depth: u8) -> u8 {
    tag_of(hop_entry(depth, 0))
}

/// The entries of a prefix longer than /24 in the group of its last byte:
/// the prefix fixes `depth - 8 * byte` leading bits of that byte.
fn span_in_group(a: &[u8; 16], depth: u8) -> RangeInclusive<usize> {
    let end = end_byte(depth);
    let fixed = usize::from(depth).saturating_sub(end * 8).min(8);
    let first = usize::from(byte(a, end));
    first..=first + (1usize << (8 - fixed)) - 1
}

#[cfg(test)]
mod tests;
