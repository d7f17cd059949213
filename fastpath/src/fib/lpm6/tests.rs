//! Unit and property tests of [`Lpm6`]. Each table maps 64 MiB of zeros
//! lazily; the tests make few of them and touch little of each.

use super::*;
use crate::fib::reference6::ReferenceLpm6;
use proptest::prelude::*;

fn p(s: &str) -> Prefix6 {
    s.parse().unwrap()
}

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn nh(n: u32) -> Option<NextHopId> {
    Some(NextHopId(n))
}

#[test]
fn entry_encoding_round_trips() {
    assert_eq!(Entry::decode(0), Entry::Empty);
    // A default route to next hop 0 is not "no route": tag 1.
    assert_eq!(hop_entry(0, 0), 0x0100_0000);
    assert_eq!(
        Entry::decode(hop_entry(0, 0)),
        Entry::Hop {
            depth: 0,
            next_hop: 0
        }
    );
    assert_eq!(hop_entry(128, MAX_NEXT_HOP), 0x81ff_ffff);
    assert_eq!(
        Entry::decode(hop_entry(128, MAX_NEXT_HOP)),
        Entry::Hop {
            depth: 128,
            next_hop: MAX_NEXT_HOP
        }
    );
    assert_eq!(group_entry(7), 0xff00_0007);
    assert_eq!(Entry::decode(group_entry(7)), Entry::Group(7));
    assert!(is_group(group_entry(0)) && !is_group(hop_entry(128, MAX_NEXT_HOP)));
    // The update rules on tags: never a group, no route only on add.
    for depth in [0, 24, 128] {
        assert!(!add_may_overwrite(group_entry(MAX_NEXT_HOP), depth));
        assert!(!written_by(group_entry(3), depth));
        assert!(add_may_overwrite(0, depth));
        assert!(!written_by(0, depth));
        assert!(add_may_overwrite(hop_entry(depth, 5), depth));
        assert!(written_by(hop_entry(depth, 5), depth));
    }
    assert!(add_may_overwrite(hop_entry(47, 1), 48));
    assert!(!add_may_overwrite(hop_entry(49, 1), 48));
    assert!(!written_by(hop_entry(47, 1), 48));
}

#[test]
fn spans_of_prefixes() {
    let x = p("2001:db8:ff00::/40").addr().octets();
    // /40 ends in the group of byte 4 (bits 32-39), all 8 bits fixed.
    assert_eq!(end_byte(40), 4);
    assert_eq!(span_in_group(&x, 40), 0xff..=0xff);
    // /25: one bit of byte 3 fixed, 128 entries.
    let y = p("2001:db80::/25").addr().octets();
    assert_eq!(end_byte(25), 3);
    assert_eq!(span_in_group(&y, 25), 0x80..=0xff);
    assert_eq!(end_byte(128), 15);
    // /16 covers 256 first-level entries; /0 all of them.
    let z = p("2001::/16").addr().octets();
    assert_eq!(span24(&z, 16), 0x20_0100..0x20_0200);
    assert_eq!(span24(&[0; 16], 0), 0..1 << 24);
}

#[test]
fn empty_table_has_no_routes() {
    let t = Lpm6::new();
    assert_eq!(t.lookup(a("2001:db8::1")), None);
    assert_eq!(t.lookup(Ipv6Addr::UNSPECIFIED), None);
    assert_eq!(t.lookup(Ipv6Addr::from(u128::MAX)), None);
    assert!(t.is_empty());
    assert_eq!(t.groups_in_use(), 0);
}

#[test]
fn default_route_host_routes_and_overlaps() {
    let mut t = Lpm6::new();
    t.add(Prefix6::DEFAULT, NextHopId(1)).unwrap();
    t.add(p("2001:db8::/32"), NextHopId(32)).unwrap();
    // 2001:0d|b8: the /32 fixes byte 3 (0xb8) in one group.
    assert_eq!(t.groups_in_use(), 1);
    t.add(p("2001:db8:1::/48"), NextHopId(48)).unwrap();
    // Groups for bytes 4 and 5 below it.
    assert_eq!(t.groups_in_use(), 3);
    t.add(p("2001:db8:1:2::/64"), NextHopId(64)).unwrap();
    assert_eq!(t.groups_in_use(), 5);
    t.add(p("2001:db8:1:2::1/128"), NextHopId(128)).unwrap();
    // Bytes 8 to 15.
    assert_eq!(t.groups_in_use(), 13);
    let top = Ipv6Addr::from(u128::MAX);
    t.add(Prefix6::new(top, 128).unwrap(), NextHopId(99))
        .unwrap();
    // A path of its own: bytes 3 to 15.
    assert_eq!(t.groups_in_use(), 26);
    assert_eq!(t.len(), 6);

    assert_eq!(t.lookup(a("2001:db9::1")), nh(1));
    assert_eq!(t.lookup(Ipv6Addr::UNSPECIFIED), nh(1));
    assert_eq!(t.lookup(a("2001:db8:ffff::1")), nh(32));
    assert_eq!(t.lookup(a("2001:db8:1:ffff::1")), nh(48));
    assert_eq!(t.lookup(a("2001:db8:1:2:ffff::")), nh(64));
    assert_eq!(t.lookup(a("2001:db8:1:2::")), nh(64));
    assert_eq!(t.lookup(a("2001:db8:1:2::1")), nh(128));
    assert_eq!(t.lookup(a("2001:db8:1:2::2")), nh(64));
    assert_eq!(t.lookup(top), nh(99));
    assert_eq!(t.lookup(Ipv6Addr::from(u128::MAX - 1)), nh(1));

    // Deleting each prefix gives its addresses back to the next cover.
    assert_eq!(t.delete(p("2001:db8:1::/48")), nh(48));
    assert_eq!(t.lookup(a("2001:db8:1:ffff::1")), nh(32));
    assert_eq!(t.lookup(a("2001:db8:1:2::1")), nh(128));
    assert_eq!(t.lookup(a("2001:db8:1:2::2")), nh(64));
    // The groups of bytes 4 and 5 still lead to the /64.
    assert_eq!(t.groups_in_use(), 26);
    assert_eq!(t.delete(p("2001:db8:1:2::1/128")), nh(128));
    assert_eq!(t.lookup(a("2001:db8:1:2::1")), nh(64));
    // Bytes 8 to 15 folded; the /64 still needs bytes 3 to 7.
    assert_eq!(t.groups_in_use(), 18);
    assert_eq!(t.delete(p("2001:db8:1:2::/64")), nh(64));
    assert_eq!(t.lookup(a("2001:db8:1:2::1")), nh(32));
    // Bytes 4 to 7 folded; the /32 keeps byte 3.
    assert_eq!(t.groups_in_use(), 14);
    assert_eq!(t.delete(p("2001:db8::/32")), nh(32));
    assert_eq!(t.lookup(a("2001:db8:1:2::1")), nh(1));
    assert_eq!(t.groups_in_use(), 13);
    assert_eq!(t.delete(Prefix6::DEFAULT), nh(1));
    assert_eq!(t.lookup(a("2001:db8:1:2::1")), None);
    assert_eq!(t.lookup(top), nh(99));
    assert_eq!(t.delete(Prefix6::new(top, 128).unwrap()), nh(99));
    assert_eq!(t.groups_in_use(), 0);
    assert!(t.is_empty());
    assert!(t.first_level_clear());
}

#[test]
fn a_short_prefix_added_over_groups_fills_below_them() {
    let mut t = Lpm6::new();
    t.add(p("2001:db8:1:2::1/128"), NextHopId(128)).unwrap();
    assert_eq!(t.lookup(a("2001:db8:1:2::2")), None);
    // The /16 reaches into the thirteen groups under the /128.
    t.add(p("2001::/16"), NextHopId(16)).unwrap();
    assert_eq!(t.lookup(a("2001:db8:1:2::2")), nh(16));
    assert_eq!(t.lookup(a("2001:db8:1:2::1")), nh(128));
    assert_eq!(t.lookup(a("2001:ffff::")), nh(16));
    assert_eq!(t.lookup(a("2002::")), None);
    // And out of them on delete, leaving the groups to the /128.
    assert_eq!(t.delete(p("2001::/16")), nh(16));
    assert_eq!(t.lookup(a("2001:db8:1:2::2")), None);
    assert_eq!(t.lookup(a("2001:db8:1:2::1")), nh(128));
    assert_eq!(t.groups_in_use(), 13);
    // A delete of what is not there changes nothing.
    assert_eq!(t.delete(p("2001::/16")), None);
    assert_eq!(t.delete(p("2001:db8:1:2::/127")), None);
    assert_eq!(t.lookup(a("2001:db8:1:2::1")), nh(128));
    assert_eq!(t.len(), 1);
}

#[test]
fn replace_changes_the_next_hop_only() {
    let mut t = Lpm6::new();
    assert_eq!(t.add(p("2001:db8::/32"), NextHopId(1)), Ok(None));
    t.add(p("2001:db8:5::/48"), NextHopId(2)).unwrap();
    assert_eq!(t.add(p("2001:db8::/32"), NextHopId(3)), Ok(nh(1)));
    assert_eq!(t.len(), 2);
    assert_eq!(t.get(p("2001:db8::/32")), nh(3));
    assert_eq!(t.lookup(a("2001:db8:6::1")), nh(3));
    assert_eq!(t.lookup(a("2001:db8:5::1")), nh(2));
    // Replacing deep inside a group, too.
    t.add(p("2001:db8:5::4/126"), NextHopId(4)).unwrap();
    let groups = t.groups_in_use();
    assert_eq!(t.add(p("2001:db8:5::4/126"), NextHopId(5)), Ok(nh(4)));
    assert_eq!(t.lookup(a("2001:db8:5::7")), nh(5));
    assert_eq!(t.lookup(a("2001:db8:5::8")), nh(2));
    assert_eq!(t.groups_in_use(), groups);
}

#[test]
fn a_25_splits_a_24_into_a_group_freed_when_it_goes() {
    let mut t = Lpm6::new();
    t.add(p("2001:d00::/24"), NextHopId(24)).unwrap();
    assert_eq!(t.groups_in_use(), 0);
    let i = idx24(&a("2001:d00::").octets());
    let before = t.tbl24[i];
    t.add(p("2001:d80::/25"), NextHopId(25)).unwrap();
    assert_eq!(t.groups_in_use(), 1);
    assert!(matches!(Entry::decode(t.tbl24[i]), Entry::Group(_)));
    assert_eq!(t.lookup(a("2001:d7f::")), nh(24));
    assert_eq!(t.lookup(a("2001:d80::")), nh(25));
    assert_eq!(t.lookup(a("2001:dff:ffff::")), nh(25));
    assert_eq!(t.delete(p("2001:d80::/25")), nh(25));
    assert_eq!(t.groups_in_use(), 0);
    // Folded back into exactly the entry it replaced.
    assert_eq!(t.tbl24[i], before);
    // The freed group is reused, not a new one.
    t.add(p("2001:db8:4000::/34"), NextHopId(34)).unwrap();
    assert_eq!(t.groups.allocated(), 2);
    assert_eq!(t.groups_in_use(), 2);
}

#[test]
fn group_pool_exhaustion_is_an_error_and_changes_nothing() {
    let mut t = Lpm6::with_max_groups(3).unwrap();
    // Bytes 3, 4 and 5.
    t.add(p("2001:db8:1::/48"), NextHopId(1)).unwrap();
    assert_eq!(t.groups_in_use(), 3);
    // Same path: no new group.
    t.add(p("2001:db8:2::/48"), NextHopId(2)).unwrap();
    t.add(p("2001:db8::/40"), NextHopId(3)).unwrap();
    assert_eq!(t.groups_in_use(), 3);
    // A /64 needs two more groups: refused before any is taken, even the
    // one that would fit.
    assert_eq!(
        t.add(p("2001:db8:1:2::/64"), NextHopId(4)),
        Err(FibError::GroupsExhausted { max_groups: 3 })
    );
    assert_eq!(t.groups_in_use(), 3);
    assert!(t.groups.capacity() <= 3);
    assert_eq!(t.len(), 3);
    assert_eq!(t.get(p("2001:db8:1:2::/64")), None);
    assert_eq!(t.lookup(a("2001:db8:1:2::1")), nh(1));
    // Short prefixes need no group.
    t.add(p("2001::/16"), NextHopId(5)).unwrap();
    assert_eq!(t.lookup(a("2001:1::")), nh(5));
    // Freeing room makes it fit: the /48s go, their groups stay for the
    // /40 (byte 3 and 4), byte 5 is freed; the /64 needs 2, 1 is free.
    t.delete(p("2001:db8:1::/48"));
    t.delete(p("2001:db8:2::/48"));
    assert_eq!(t.groups_in_use(), 2);
    assert!(t.add(p("2001:db8:1:2::/64"), NextHopId(4)).is_err());
    t.delete(p("2001:db8::/40"));
    assert_eq!(t.groups_in_use(), 0);
    t.add(p("2001:db8:1:2::/64"), NextHopId(4)).unwrap_err();
    assert_eq!(t.lookup(a("2001:db8:1:2::1")), nh(5));
    t.add(p("2001:db8:1::/48"), NextHopId(4)).unwrap();
    assert_eq!(t.lookup(a("2001:db8:1:2::1")), nh(4));
    assert_eq!(t.lookup(a("2001:db8:2::1")), nh(5));
}

#[test]
fn refuses_next_hops_and_pools_past_the_entry_format() {
    let mut t = Lpm6::new();
    assert_eq!(
        t.add(p("2001:db8::/32"), NextHopId(1 << 24)),
        Err(FibError::NextHopOutOfRange {
            id: 1 << 24,
            max: MAX_NEXT_HOP
        })
    );
    assert!(t.is_empty());
    assert_eq!(t.groups_in_use(), 0);
    t.add(p("2001:db8::/32"), NextHopId(MAX_NEXT_HOP)).unwrap();
    assert_eq!(t.lookup(a("2001:db8::9")), nh(MAX_NEXT_HOP));
    assert!(matches!(
        Lpm6::with_max_groups(MAX_GROUPS_LIMIT + 1),
        Err(FibError::TooManyGroups { .. })
    ));
}

#[test]
fn bulk_lookup_matches_single_and_stops_at_the_shorter_slice() {
    let mut t = Lpm6::new();
    t.add(p("2001:db8::/32"), NextHopId(32)).unwrap();
    t.add(p("2001:db8::1/128"), NextHopId(128)).unwrap();
    let addrs = [
        a("2001:db8::1").octets(),
        a("2001:db8::2").octets(),
        a("2001:db9::").octets(),
        a("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff").octets(),
    ];
    let mut out = [Some(NextHopId(7)); 5];
    t.lookup_bulk(&addrs, &mut out);
    assert_eq!(out, [nh(128), nh(32), None, nh(32), nh(7)]);
    let mut short = [None; 2];
    t.lookup_bulk(&addrs, &mut short);
    assert_eq!(short, [nh(128), nh(32)]);
    assert_eq!(t.lookup_octets(&addrs[0]), nh(128));
}

#[test]
fn routes_lists_what_was_added_and_memory_counts_groups() {
    let mut t = Lpm6::new();
    let empty = t.memory_bytes();
    assert!(empty >= 4 << 24);
    t.add(p("2001:db8::/32"), NextHopId(1)).unwrap();
    t.add(p("2001:db8::1/128"), NextHopId(2)).unwrap();
    let mut routes: Vec<_> = t.routes().collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            (p("2001:db8::/32"), NextHopId(1)),
            (p("2001:db8::1/128"), NextHopId(2))
        ]
    );
    // 13 groups of 1 KiB.
    assert!(t.memory_bytes() >= empty + 13 * 1024);
}

#[test]
fn a_clone_is_independent() {
    let mut t = Lpm6::new();
    t.add(p("2001:db8::/32"), NextHopId(32)).unwrap();
    t.add(p("2001:db8:1::/48"), NextHopId(48)).unwrap();
    let c = t.clone();
    t.delete(p("2001:db8:1::/48"));
    t.add(p("2001:db8::/32"), NextHopId(33)).unwrap();
    assert_eq!(c.lookup(a("2001:db8:1::1")), nh(48));
    assert_eq!(c.lookup(a("2001:db8:2::1")), nh(32));
    assert_eq!((c.len(), c.groups_in_use()), (2, 3));
    assert_eq!(t.lookup(a("2001:db8:1::1")), nh(33));
    assert_eq!(t.groups_in_use(), 1);
}

#[test]
fn table_is_send_and_sync() {
    fn check<T: Send + Sync + Clone>() {}
    check::<Lpm6>();
}

/// Network addresses that cluster, so that generated prefixes overlap,
/// nest and repeat: a few bases, with bits scattered below them in bytes
/// 2, 3, 5, 7, 8 and 15 (first level, group boundaries, the last byte).
fn prefix_strategy() -> impl Strategy<Value = Prefix6> {
    const BASES: [u128; 4] = [
        0x2001_0db8_u128 << 96,
        0x2001_0db8_0000_0001_u128 << 64,
        0xfe80_u128 << 112,
        u128::MAX << 8,
    ];
    const NOISE: u128 = 0x0000_0301_00c0_0081_8000_0000_0000_00c3;
    // Lengths below 8 rewrite millions of first-level entries: rare, to
    // keep the unoptimised test build fast.
    let len = prop_oneof![1 => 0u8..8, 40 => 8u8..=128];
    (0..BASES.len(), any::<u128>(), len).prop_map(|(i, noise, len)| {
        let base = BASES.get(i).copied().unwrap_or(0);
        Prefix6::new_masked(Ipv6Addr::from(base | (noise & NOISE)), len).unwrap_or(Prefix6::DEFAULT)
    })
}

#[derive(Debug, Clone)]
enum Op {
    Add(Prefix6, u32),
    Delete(Prefix6),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (prefix_strategy(), 0u32..8).prop_map(|(p, n)| Op::Add(p, n)),
        2 => prefix_strategy().prop_map(Op::Delete),
    ]
}

/// Addresses at and just past every boundary of every prefix ever used.
fn probes(prefixes: &[Prefix6]) -> Vec<u128> {
    prefixes
        .iter()
        .flat_map(|p| {
            [
                p.first(),
                p.last(),
                p.first().wrapping_sub(1),
                p.last().wrapping_add(1),
                p.first() | 0x80,
                p.first() | (1 << 64),
            ]
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn agrees_with_the_reference(
        ops in prop::collection::vec(op_strategy(), 1..48),
        random in prop::collection::vec(any::<u128>(), 32),
    ) {
        let mut t = Lpm6::new();
        let mut r = ReferenceLpm6::new();
        let mut used = Vec::new();
        for op in &ops {
            match *op {
                Op::Add(p, n) => {
                    prop_assert_eq!(t.add(p, NextHopId(n)), Ok(r.add(p, NextHopId(n))));
                    used.push(p);
                }
                Op::Delete(p) => {
                    prop_assert_eq!(t.delete(p), r.delete(p));
                    used.push(p);
                }
            }
            prop_assert_eq!(t.get(used[used.len() - 1]), r.routes()
                .find(|&(q, _)| q == used[used.len() - 1]).map(|(_, n)| n));
        }
        prop_assert_eq!(t.len(), r.len());
        let addrs: Vec<[u8; 16]> = probes(&used)
            .into_iter()
            .chain(random)
            .map(|x| x.to_be_bytes())
            .collect();
        let mut bulk = vec![None; addrs.len()];
        t.lookup_bulk(&addrs, &mut bulk);
        for (x, got) in addrs.iter().zip(&bulk) {
            let want = r.lookup(Ipv6Addr::from(*x));
            prop_assert_eq!(t.lookup(Ipv6Addr::from(*x)), want, "address {}", Ipv6Addr::from(*x));
            prop_assert_eq!(*got, want, "bulk, address {}", Ipv6Addr::from(*x));
        }
        // A clone answers the same.
        let c = t.clone();
        for x in &addrs {
            prop_assert_eq!(c.lookup_octets(x), t.lookup_octets(x));
        }
        // Deleting everything frees every group and every entry.
        let all: Vec<_> = r.routes().collect();
        for (p, n) in all {
            prop_assert_eq!(t.delete(p), Some(n));
        }
        prop_assert!(t.is_empty());
        prop_assert_eq!(t.groups_in_use(), 0);
        for x in &addrs {
            prop_assert_eq!(t.lookup_octets(x), None);
        }
    }
}

#[test]
fn a_short_prefix_reaches_a_group_in_a_block_of_longer_prefixes() {
    // The first-level block of 2000::/14 (1,024 entries): its first /24
    // holds a group (for the /128), every other entry a prefix longer than
    // the /10 added next, so the block's lowest first-level tag outranks
    // the /10, yet the group's other entries are the /10's to take.
    let mut t = Lpm6::new();
    t.add(p("2000::1/128"), NextHopId(128)).unwrap();
    let rest = [
        "2002::/15",
        "2001::/16",
        "2000:8000::/17",
        "2000:4000::/18",
        "2000:2000::/19",
        "2000:1000::/20",
        "2000:800::/21",
        "2000:400::/22",
        "2000:200::/23",
        "2000:100::/24",
    ];
    for (i, r) in (15u32..).zip(rest) {
        t.add(p(r), NextHopId(i)).unwrap();
    }
    t.add(p("2000::/10"), NextHopId(10)).unwrap();
    assert_eq!(t.lookup(a("2000::2")), nh(10));
    assert_eq!(t.lookup(a("2000::1")), nh(128));
    assert_eq!(t.lookup(a("2000:100::5")), nh(24));
    assert_eq!(t.lookup(a("2003:ffff::")), nh(15));
    // The next block had nothing: stored whole.
    assert_eq!(t.lookup(a("2004::1")), nh(10));
    assert_eq!(t.lookup(a("203f:ffff::")), nh(10));
    // The same route again changes nothing and says so.
    assert_eq!(t.add(p("2000::/10"), NextHopId(10)), Ok(nh(10)));
    assert_eq!(t.len(), 12);
    // A /12 over the stored block and part of the next: whole, then
    // compared.
    t.add(p("2000::/12"), NextHopId(12)).unwrap();
    assert_eq!(t.lookup(a("2004::1")), nh(12));
    assert_eq!(t.lookup(a("2000::2")), nh(12));
    assert_eq!(t.lookup(a("2010::")), nh(10));
    // And the deletes find the group and the stored blocks again.
    assert_eq!(t.delete(p("2000::/12")), nh(12));
    assert_eq!(t.lookup(a("2000::2")), nh(10));
    assert_eq!(t.lookup(a("2004::1")), nh(10));
    assert_eq!(t.delete(p("2000::/10")), nh(10));
    assert_eq!(t.lookup(a("2000::2")), None);
    assert_eq!(t.lookup(a("2004::1")), None);
    assert_eq!(t.lookup(a("2000::1")), nh(128));
    assert_eq!(t.lookup(a("2000:200::1")), nh(23));
}
