//! The pool of 256-entry groups below a first level, shared by the IPv4
//! table (its second level) and the IPv6 table (every level below the
//! first): allocated on first use, bounded, recycled through a free list.

use super::error::FibError;
use super::span_fill::{fill_span, tag, widen, NO_TAGS};

/// Entries in a group: one per value of the next address byte.
pub(crate) const GROUP_ENTRIES: usize = 256;

/// One group of packed `u32` entries.
pub(crate) type Group = [u32; GROUP_ENTRIES];

/// Groups, each named by its index; an index in `free` is not in use.
#[derive(Debug)]
pub(crate) struct GroupPool {
    groups: Vec<Group>,
    /// Groups allocated once and now free, reused before the pool grows.
    free: Vec<u32>,
    /// The pool's bound.
    max: u32,
}

impl Clone for GroupPool {
    /// A copy with the same reservation (a derived clone would reserve
    /// only the groups in use, and move them as the copy grows).
    fn clone(&self) -> Self {
        let mut copy = GroupPool::new(self.max);
        copy.groups.extend_from_slice(&self.groups);
        copy.free.clone_from(&self.free);
        copy
    }
}

impl GroupPool {
    /// An empty pool that will hold at most `max` groups (the caller keeps
    /// `max` within what its entries can index).
    pub(crate) fn new(max: u32) -> Self {
        let mut groups = Vec::new();
        // The whole bound is reserved at once: address space only, as the
        // kernel backs pages when first written, so that groups never move
        // (no copy of up to 1 GiB as the pool grows) and all of them can
        // take the hugepages asked for here before any is touched (lookups
        // reach groups at random: lpm-bench --ipv6 --routes 30000 had a
        // fifth of its groups on hugepages when the pool grew by
        // doubling). If the reservation is refused, the pool grows as
        // needed instead.
        if groups.try_reserve_exact(max as usize).is_ok() {
            let _ = drivers::memory::advise_hugepages(groups.spare_capacity_mut());
        }
        GroupPool {
            groups,
            free: Vec::new(),
            max,
        }
    }

    /// The pool's bound.
    pub(crate) fn max(&self) -> u32 {
        self.max
    }

    /// Groups in use.
    pub(crate) fn in_use(&self) -> usize {
        self.groups.len() - self.free.len()
    }

    /// Groups that [`alloc`](Self::alloc) can still hand out.
    pub(crate) fn room(&self) -> usize {
        self.free.len() + (self.max as usize).saturating_sub(self.groups.len())
    }

    /// A group from the free list or the pool, every entry set to `fill`.
    pub(crate) fn alloc(&mut self, fill: u32) -> Result<u32, FibError> {
        let g = match self.free.pop() {
            Some(g) => g,
            None if self.groups.len() < self.max as usize => {
                // Grow by doubling, but never past the pool's bound: a
                // plain push could reserve up to twice max.
                // (Only where the reservation in new() was refused.)
                let len = self.groups.len();
                if len == self.groups.capacity() {
                    let room = self.max as usize - len;
                    self.groups.reserve_exact(len.max(16).min(room));
                    let _ = drivers::memory::advise_hugepages(&self.groups[..]);
                    let _ = drivers::memory::advise_hugepages(self.groups.spare_capacity_mut());
                }
                self.groups.push([0; GROUP_ENTRIES]);
                // Below max <= 2^24 (the callers' bound): fits u32.
                (self.groups.len() - 1) as u32
            }
            None => {
                return Err(FibError::GroupsExhausted {
                    max_groups: self.max,
                })
            }
        };
        if let Some(group) = self.groups.get_mut(g as usize) {
            group.fill(fill);
        }
        Ok(g)
    }

    /// Returns a group to the free list, its entries cleared.
    pub(crate) fn release(&mut self, g: u32) {
        if let Some(group) = self.groups.get_mut(g as usize) {
            group.fill(0);
            self.free.push(g);
        }
    }

    /// Writes `entry` over the entries that `overwrite` accepts in the
    /// groups of `todo` and in those below them (met as entries of tag
    /// `group_tag`; a work list, no recursion), emptying `todo`. Returns
    /// the bounds of the other tags the visited groups hold after
    /// ([`NO_TAGS`] if none), for the first level's block bounds.
    pub(crate) fn fill_groups(
        &mut self,
        todo: &mut Vec<u32>,
        entry: u32,
        overwrite: impl Fn(u32) -> bool,
        group_tag: u8,
    ) -> (u8, u8) {
        let mut bounds = NO_TAGS;
        while let Some(g) = todo.pop() {
            if let Some(group) = self.groups.get_mut(g as usize) {
                fill_span(group, entry, &overwrite, |e| tag(e) == group_tag, todo);
                bounds = widen(bounds, group, group_tag);
            }
        }
        bounds
    }

    /// The group at `g`, if allocated.
    #[inline(always)]
    pub(crate) fn get(&self, g: u32) -> Option<&Group> {
        self.groups.get(g as usize)
    }

    /// The group at `g`, if allocated, to write.
    pub(crate) fn get_mut(&mut self, g: u32) -> Option<&mut Group> {
        self.groups.get_mut(g as usize)
    }

    /// Bytes held: the groups allocated so far (the rest of the
    /// reservation is address space, never written), and the free list.
    pub(crate) fn bytes(&self) -> usize {
        self.groups.len() * size_of::<Group>() + self.free.capacity() * size_of::<u32>()
    }

    /// Groups ever allocated, in use or free (for tests of reuse).
    #[cfg(test)]
    pub(crate) fn allocated(&self) -> usize {
        self.groups.len()
    }

    /// Groups the pool has reserved room for (for tests of its bound).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.groups.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_filled_reuses_released_and_stops_at_its_bound() {
        let mut p = GroupPool::new(2);
        assert_eq!((p.in_use(), p.room(), p.max()), (0, 2, 2));
        let a = p.alloc(7).unwrap();
        assert!(p.get(a).unwrap().iter().all(|&e| e == 7));
        let b = p.alloc(9).unwrap();
        assert_ne!(a, b);
        assert_eq!((p.in_use(), p.room()), (2, 0));
        assert_eq!(p.alloc(1), Err(FibError::GroupsExhausted { max_groups: 2 }));
        assert!(p.capacity() <= 2);
        p.release(a);
        assert_eq!((p.in_use(), p.room()), (1, 1));
        // Reused, refilled, not a new one.
        assert_eq!(p.alloc(3), Ok(a));
        assert!(p.get(a).unwrap().iter().all(|&e| e == 3));
        assert_eq!(p.allocated(), 2);
        // A bad index is no group, and releasing it changes nothing.
        assert!(p.get(5).is_none());
        p.release(5);
        assert_eq!(p.in_use(), 2);
        assert!(p.bytes() >= 2 * size_of::<Group>());
    }
}
