//! The rewrite loop both LPM tables run over a span of entries on add and
//! delete: write an entry wherever a predicate on the old one accepts it,
//! and note the groups met, whose entries the caller rewrites next.

/// The payload of a group entry in both tables' formats: its index.
const GROUP_INDEX_MASK: u32 = (1 << 24) - 1;

/// Entries scanned at a time: small enough that the pass that collects
/// groups rereads the chunk from L1.
const CHUNK: usize = 64;

/// Writes `entry` over the entries of `span` that `overwrite` accepts and
/// appends the index of every group entry met (`is_group`) to `below`.
///
/// `overwrite` must never accept a group entry, and both predicates must
/// be one compare on the entry: the write loop then has no branch and
/// compiles to vector compares and blends (a /1 in the IPv6 table
/// rewrites 8 Mi first-level entries), and whether a chunk holds a group
/// at all is an OR of compares folded into the same loop; only a chunk
/// that does is scanned again for the groups (most hold none).
#[inline]
pub(crate) fn fill_span(
    span: &mut [u32],
    entry: u32,
    overwrite: impl Fn(u32) -> bool,
    is_group: impl Fn(u32) -> bool,
    below: &mut Vec<u32>,
) {
    for chunk in span.chunks_mut(CHUNK) {
        let mut groups = false;
        for e in chunk.iter_mut() {
            groups |= is_group(*e);
            if overwrite(*e) {
                *e = entry;
            }
        }
        if groups {
            below.extend(
                chunk
                    .iter()
                    .filter(|&&e| is_group(e))
                    .map(|&e| e & GROUP_INDEX_MASK),
            );
        }
    }
}

/// The tag of an entry in both tables' formats: its top byte (0 no route,
/// growing with a next hop's prefix length, largest for a group).
#[inline(always)]
pub(crate) fn tag(e: u32) -> u8 {
    // Truncation meant: the top byte.
    (e >> 24) as u8
}

/// No tags yet: the bounds [`widen`] starts from.
pub(crate) const NO_TAGS: (u8, u8) = (u8::MAX, 0);

/// `bounds` (lowest, highest) widened to the tags of the entries of
/// `span` that are not groups (tag `group_tag`).
pub(crate) fn widen(bounds: (u8, u8), span: &[u32], group_tag: u8) -> (u8, u8) {
    span.iter()
        .map(|&e| tag(e))
        .filter(|&t| t != group_tag)
        .fold(bounds, |(lo, hi), t| (lo.min(t), hi.max(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_where_accepted_and_collects_groups_across_chunks() {
        // Tags in the top byte: 0xff is a group, others a depth.
        let group = |i: u32| 0xff00_0000 | i;
        let mut span: Vec<u32> = (0..200u32)
            .map(|i| match i {
                3 => group(7),
                130 => group(9),
                199 => group(11),
                i if i % 2 == 0 => 0x0500_0000 | i,
                i => 0x0200_0000 | i,
            })
            .collect();
        let before = span.clone();
        let mut below = Vec::new();
        fill_span(
            &mut span,
            0x0400_0042,
            |e| e >> 24 <= 4,
            |e| e >= 0xff00_0000,
            &mut below,
        );
        assert_eq!(below, [7, 9, 11]);
        for (i, (&a, &b)) in span.iter().zip(&before).enumerate() {
            let want = if b >> 24 <= 4 { 0x0400_0042 } else { b };
            assert_eq!(a, want, "entry {i}");
        }
        // An empty span and a span without groups: nothing collected.
        let mut none = Vec::new();
        fill_span(&mut [], 1, |_| true, |_| false, &mut none);
        let mut plain = [0u32; 10];
        fill_span(&mut plain, 5, |e| e == 0, |e| e >= 0xff00_0000, &mut none);
        assert!(none.is_empty());
        assert_eq!(plain, [5; 10]);
        // Tag bounds skip groups and keep what they started from.
        let mixed = [0x0300_0001, 0xff00_0002, 0x0700_0000];
        assert_eq!(widen(NO_TAGS, &mixed, 0xff), (3, 7));
        assert_eq!(widen((1, 2), &mixed, 0xff), (1, 7));
        assert_eq!(widen(NO_TAGS, &[0xff00_0000], 0xff), NO_TAGS);
    }
}
