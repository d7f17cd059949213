//! The 2^24-entry first level both LPM tables index by the top 24 bits of
//! an address (the IPv4 DIR-24-8's and the IPv6 trie's), on the heap,
//! advised onto transparent hugepages.

use std::ops::{Deref, DerefMut};

/// Entries in a first level: one per /24.
pub(crate) const TBL24_ENTRIES: usize = 1 << 24;

/// A first level of 2^24 packed `u32` entries, all 0 ("no route") when
/// made. A fixed-size array, so that an index below 2^24 needs no bounds
/// check.
pub(crate) struct FirstLevel {
    entries: Box<[u32; TBL24_ENTRIES]>,
    /// The kernel took the hugepage advice.
    hugepages: bool,
}

impl FirstLevel {
    /// A zeroed first level (64 MiB, resident only as pages are written).
    pub(crate) fn new() -> Self {
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
        FirstLevel { entries, hugepages }
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
        let mut copy = FirstLevel::new();
        copy.entries.copy_from_slice(&self.entries[..]);
        copy
    }
}

impl Deref for FirstLevel {
    type Target = [u32; TBL24_ENTRIES];

    fn deref(&self) -> &Self::Target {
        &self.entries
    }
}

impl DerefMut for FirstLevel {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_empty_and_a_clone_is_independent() {
        let mut t = FirstLevel::new();
        assert_eq!(t.len(), TBL24_ENTRIES);
        t[0x0a_0102] = 5;
        let c = t.clone();
        t[0x0a_0102] = 6;
        assert_eq!(c[0x0a_0102], 5);
        assert_eq!(c[0], 0);
        assert_eq!(c.hugepages_advised(), t.hugepages_advised());
    }
}
