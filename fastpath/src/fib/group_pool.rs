//! The pool of 256-entry groups below a first level, shared by the IPv4
//! table (its second level) and the IPv6 table (every level below the
//! first): allocated on first use, bounded, recycled through a free list.

use super::error::FibError;

/// Entries in a group: one per value of the next address byte.
pub(crate) const GROUP_ENTRIES: usize = 256;

/// One group of packed `u32` entries.
pub(crate) type Group = [u32; GROUP_ENTRIES];

/// Groups, each named by its index; an index in `free` is not in use.
#[derive(Debug, Clone)]
pub(crate) struct GroupPool {
    groups: Vec<Group>,
    /// Groups allocated once and now free, reused before the pool grows.
    free: Vec<u32>,
    /// The pool's bound.
    max: u32,
}

impl GroupPool {
    /// An empty pool that will hold at most `max` groups (the caller keeps
    /// `max` within what its entries can index).
    pub(crate) fn new(max: u32) -> Self {
        GroupPool {
            groups: Vec::new(),
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
                let len = self.groups.len();
                if len == self.groups.capacity() {
                    let room = self.max as usize - len;
                    self.groups.reserve_exact(len.max(16).min(room));
                    // Lookups reach groups at random too: ask for 2 MiB
                    // pages, which the part not yet touched gets as it is
                    // faulted in and the rest when khugepaged gets to it.
                    // Refused advice only means 4 KiB pages.
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

    /// The group at `g`, if allocated.
    #[inline(always)]
    pub(crate) fn get(&self, g: u32) -> Option<&Group> {
        self.groups.get(g as usize)
    }

    /// The group at `g`, if allocated, to write.
    pub(crate) fn get_mut(&mut self, g: u32) -> Option<&mut Group> {
        self.groups.get_mut(g as usize)
    }

    /// Bytes held: the groups allocated or reserved, and the free list.
    pub(crate) fn bytes(&self) -> usize {
        self.groups.capacity() * size_of::<Group>() + self.free.capacity() * size_of::<u32>()
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
