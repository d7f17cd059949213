//! The 2^24-entry first level both LPM tables index by the top 24 bits of
//! an address (the IPv4 DIR-24-8's and the IPv6 trie's), on the heap,
//! advised onto transparent hugepages, with bounds on the tags of each
//! block of entries that let a short prefix's update store whole blocks
//! instead of comparing entry by entry.
//!
//! Both tables' entries carry a tag in their top byte, ordered the same
//! way: 0 is no route, a next hop's tag grows with the length of the
//! prefix that wrote it, and a group's tag is above every next hop's. An
//! add of a prefix writes over the entries whose tag is at most its own;
//! a delete writes over those whose tag is exactly its own. A /1 in the
//! IPv6 table spans 8 Mi entries: comparing each and storing where the
//! compare says costs some 3 times a plain store of the same span
//! (memset-like stores that need not read the old entries first). Each
//! block of [`BLOCK`] entries keeps a lower and an upper bound of the tags
//! in it; an add may store a whole block when the upper bound is at most
//! its tag (nothing longer, no group, in it), a delete when both bounds
//! equal its tag (every entry its own), and either skips a block, unread,
//! whose bounds show it has nothing to rewrite and no group (below which
//! anything may be). A whole-block store or a compared update of a whole
//! block sets the bounds exactly; a compared update of part of a block
//! widens them to the tag written, so they stay bounds, and a stale wide
//! bound only costs a compare.

use super::span_fill::{fill_span, tag, widen, NO_TAGS};
use std::ops::{Deref, Range};

/// Entries in a first level: one per /24.
pub(crate) const TBL24_ENTRIES: usize = 1 << 24;

/// Entries per block with tag bounds: 4 KiB, so a prefix of /14 or
/// shorter covers whole blocks, and the bounds take 32 KiB.
const BLOCK: usize = 1 << 10;

/// Blocks in a first level.
const BLOCKS: usize = TBL24_ENTRIES / BLOCK;

/// A first level of 2^24 packed `u32` entries, all 0 ("no route") when
/// made. A fixed-size array, so that an index below 2^24 needs no bounds
/// check. Read through `Deref`; written only through the methods below,
/// which keep the block bounds.
pub(crate) struct FirstLevel {
    entries: Box<[u32; TBL24_ENTRIES]>,
    /// Per block: no next hop or empty entry in it, or in the groups below
    /// it, has a smaller tag.
    low: Box<[u8; BLOCKS]>,
    /// Per block: none has a larger tag.
    high: Box<[u8; BLOCKS]>,
    /// Per block: its group entries (at most [`BLOCK`]).
    group_count: Box<[u16; BLOCKS]>,
    /// The tag of a group entry in this table's format.
    group_tag: u8,
    /// The kernel took the hugepage advice.
    hugepages: bool,
}

impl FirstLevel {
    /// A zeroed first level (64 MiB, resident only as pages are written)
    /// for entries whose group entries have the tag `group_tag` (the
    /// largest).
    pub(crate) fn new(group_tag: u8) -> Self {
        // vec! of zeros asks the allocator for zeroed memory, which the
        // kernel maps lazily: an empty table costs no resident memory.
        let entries: Box<[u32; TBL24_ENTRIES]> =
            match vec![0u32; TBL24_ENTRIES].into_boxed_slice().try_into() {
                Ok(t) => t,
                // The vector has exactly TBL24_ENTRIES entries.
                Err(_) => unreachable!("first level has 2^24 entries"),
            };
        // Random lookups over 64 MiB miss the TLB on every 4 KiB page;
        // on 2 MiB pages they do not (lpm-bench: IPv4 bulk lookup about
        // half the cycles). Advised before the first write, so every later
        // fault can take a hugepage. Without transparent hugepages the
        // table works the same, slower.
        let hugepages = matches!(drivers::memory::advise_hugepages(&entries[..]), Ok(n) if n > 0);
        FirstLevel {
            entries,
            low: Box::new([0; BLOCKS]),
            high: Box::new([0; BLOCKS]),
            group_count: Box::new([0; BLOCKS]),
            group_tag,
            hugepages,
        }
    }

    /// Writes entry `i` (ignored past the end). A group entry replacing a
    /// next hop leaves the bounds as they were: the new group's entries
    /// are copies of that next hop.
    pub(crate) fn set(&mut self, i: usize, e: u32) {
        let b = i / BLOCK;
        let (Some(x), Some(n)) = (self.entries.get_mut(i), self.group_count.get_mut(b)) else {
            return;
        };
        let was_group = tag(*x) == self.group_tag;
        *x = e;
        if tag(e) == self.group_tag {
            *n += u16::from(!was_group);
        } else {
            *n = n.saturating_sub(u16::from(was_group));
            self.widen(i, tag(e));
        }
    }

    /// Widens the bounds of the block of entry `i` to tag `t`: the caller
    /// wrote entries of that tag in a group below it.
    pub(crate) fn widen(&mut self, i: usize, t: u8) {
        let b = i / BLOCK;
        if let (Some(lo), Some(hi)) = (self.low.get_mut(b), self.high.get_mut(b)) {
            *lo = (*lo).min(t);
            *hi = (*hi).max(t);
        }
    }

    /// An add's rewrite of `span`: `entry` over every entry whose tag is
    /// at most its own, here and in the groups below (`descend`, see
    /// [`fill`](Self::fill)).
    pub(crate) fn fill_add(
        &mut self,
        span: Range<usize>,
        entry: u32,
        descend: impl FnMut(&mut Vec<u32>) -> (u8, u8),
    ) {
        self.fill(span, 0, tag(entry), entry, descend);
    }

    /// A delete's rewrite of `span`: `entry` over every entry whose tag is
    /// `own` (the deleted prefix's), here and in the groups below
    /// (`descend`, see [`fill`](Self::fill)).
    pub(crate) fn fill_delete(
        &mut self,
        span: Range<usize>,
        own: u8,
        entry: u32,
        descend: impl FnMut(&mut Vec<u32>) -> (u8, u8),
    ) {
        self.fill(span, own, own, entry, descend);
    }

    /// Writes `entry` over the entries of `span` whose tags are from
    /// `from` to `to` (never a group's), block by block: a block whose
    /// bounds lie outside those tags is skipped unread, one inside them,
    /// without groups and wholly in the span is stored whole, and any
    /// other is compared entry by entry, after which `descend` gets the
    /// groups met there, rewrites them and those below them, and returns
    /// the bounds of the tags they hold then ([`NO_TAGS`] for none). A
    /// compared block wholly in the span had all its groups visited, so
    /// its bounds are recomputed exactly; one partly in it is widened to
    /// the entry's tag.
    fn fill(
        &mut self,
        span: Range<usize>,
        from: u8,
        to: u8,
        entry: u32,
        mut descend: impl FnMut(&mut Vec<u32>) -> (u8, u8),
    ) {
        let end = span.end.min(TBL24_ENTRIES);
        let group_tag = self.group_tag;
        let t = tag(entry);
        // One compare: tags below `from` wrap above `to - from`.
        let width = to.wrapping_sub(from);
        let overwrite = move |e: u32| tag(e).wrapping_sub(from) <= width;
        let mut below = Vec::new();
        let mut at = span.start;
        while at < end {
            let b = at / BLOCK;
            let stop = ((b + 1) * BLOCK).min(end);
            let (Some(lo), Some(hi), Some(&groups), Some(s)) = (
                self.low.get_mut(b),
                self.high.get_mut(b),
                self.group_count.get(b),
                self.entries.get_mut(at..stop),
            ) else {
                return;
            };
            at = stop;
            if *hi < from || *lo > to {
                continue;
            }
            let full = s.len() == BLOCK;
            if full && groups == 0 && from <= *lo && *hi <= to {
                s.fill(entry);
                (*lo, *hi) = (t, t);
                continue;
            }
            below.clear();
            fill_span(s, entry, overwrite, |e| tag(e) >= group_tag, &mut below);
            let sub = if below.is_empty() {
                NO_TAGS
            } else {
                descend(&mut below)
            };
            (*lo, *hi) = if full {
                widen(sub, s, group_tag)
            } else {
                ((*lo).min(t).min(sub.0), (*hi).max(t).max(sub.1))
            };
        }
    }

    /// True if the kernel took the advice to back the entries with
    /// transparent hugepages (it may still use 4 KiB pages where none are
    /// free; `AnonHugePages` in /proc/PID/smaps_rollup tells).
    pub(crate) fn hugepages_advised(&self) -> bool {
        self.hugepages
    }
}

impl Clone for FirstLevel {
    /// A copy made on the heap (a derived clone would build the 64 MiB
    /// array on the stack first), advised like the original.
    fn clone(&self) -> Self {
        let mut copy = FirstLevel::new(self.group_tag);
        copy.entries.copy_from_slice(&self.entries[..]);
        copy.low.copy_from_slice(&self.low[..]);
        copy.high.copy_from_slice(&self.high[..]);
        copy.group_count.copy_from_slice(&self.group_count[..]);
        copy
    }
}

impl Deref for FirstLevel {
    type Target = [u32; TBL24_ENTRIES];

    fn deref(&self) -> &Self::Target {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_empty_and_a_clone_is_independent() {
        let mut t = FirstLevel::new(0xff);
        assert_eq!(t.len(), TBL24_ENTRIES);
        t.set(0x0a_0102, 5);
        let c = t.clone();
        t.set(0x0a_0102, 6);
        assert_eq!(c[0x0a_0102], 5);
        assert_eq!(c[0], 0);
        assert_eq!(c.hugepages_advised(), t.hugepages_advised());
    }
}
