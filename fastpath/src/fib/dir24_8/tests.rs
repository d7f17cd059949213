//! Unit and property tests of [`Dir24Lpm`]. Each table maps 64 MiB of
//! zeros lazily; the tests make few of them and touch little of each.

use super::*;
use crate::fib::reference::ReferenceLpm;
use proptest::prelude::*;

fn p(s: &str) -> Prefix4 {
    s.parse().unwrap()
}

fn a(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn nh(n: u32) -> Option<NextHopId> {
    Some(NextHopId(n))
}

#[test]
fn empty_table_has_no_routes() {
    let t = Dir24Lpm::new();
    assert_eq!(t.lookup(a("10.0.0.1")), None);
    assert_eq!(t.lookup(a("0.0.0.0")), None);
    assert_eq!(t.lookup(a("255.255.255.255")), None);
    assert!(t.is_empty());
    assert_eq!(t.groups_in_use(), 0);
}

#[test]
fn default_route_host_routes_and_overlaps() {
    let mut t = Dir24Lpm::new();
    t.add(Prefix4::DEFAULT, NextHopId(1)).unwrap();
    t.add(p("10.0.0.0/8"), NextHopId(8)).unwrap();
    t.add(p("10.1.0.0/16"), NextHopId(16)).unwrap();
    t.add(p("10.1.2.0/24"), NextHopId(24)).unwrap();
    t.add(p("10.1.2.3/32"), NextHopId(32)).unwrap();
    t.add(p("255.255.255.255/32"), NextHopId(99)).unwrap();
    assert_eq!(t.len(), 6);

    assert_eq!(t.lookup(a("192.0.2.1")), nh(1));
    assert_eq!(t.lookup(a("0.0.0.0")), nh(1));
    assert_eq!(t.lookup(a("10.200.0.1")), nh(8));
    assert_eq!(t.lookup(a("10.1.200.1")), nh(16));
    assert_eq!(t.lookup(a("10.1.2.2")), nh(24));
    assert_eq!(t.lookup(a("10.1.2.3")), nh(32));
    assert_eq!(t.lookup(a("10.1.2.4")), nh(24));
    assert_eq!(t.lookup(a("255.255.255.255")), nh(99));
    assert_eq!(t.lookup(a("255.255.255.254")), nh(1));
    // Two /24s hold a /32: two groups.
    assert_eq!(t.groups_in_use(), 2);

    // Deleting each prefix gives its addresses back to the next cover.
    assert_eq!(t.delete(p("10.1.2.0/24")), nh(24));
    assert_eq!(t.lookup(a("10.1.2.2")), nh(16));
    assert_eq!(t.lookup(a("10.1.2.3")), nh(32));
    assert_eq!(t.delete(p("10.1.0.0/16")), nh(16));
    assert_eq!(t.lookup(a("10.1.2.2")), nh(8));
    assert_eq!(t.lookup(a("10.1.200.1")), nh(8));
    assert_eq!(t.delete(p("10.1.2.3/32")), nh(32));
    assert_eq!(t.lookup(a("10.1.2.3")), nh(8));
    assert_eq!(t.groups_in_use(), 1);
    assert_eq!(t.delete(p("10.0.0.0/8")), nh(8));
    assert_eq!(t.lookup(a("10.1.2.3")), nh(1));
    assert_eq!(t.delete(Prefix4::DEFAULT), nh(1));
    assert_eq!(t.lookup(a("10.1.2.3")), None);
    assert_eq!(t.lookup(a("255.255.255.255")), nh(99));
    assert_eq!(t.delete(p("255.255.255.255/32")), nh(99));
    assert_eq!(t.groups_in_use(), 0);
    assert!(t.is_empty());
    assert!(t.first_level_clear());
}

#[test]
fn deleting_a_short_prefix_keeps_longer_ones_and_shorter_covers() {
    let mut t = Dir24Lpm::new();
    t.add(p("10.0.0.0/8"), NextHopId(8)).unwrap();
    t.add(p("10.1.0.0/16"), NextHopId(16)).unwrap();
    t.add(p("10.1.2.128/25"), NextHopId(25)).unwrap();
    // The /16 is under the /8 and over the /25's group.
    assert_eq!(t.delete(p("10.1.0.0/16")), nh(16));
    assert_eq!(t.lookup(a("10.1.2.1")), nh(8));
    assert_eq!(t.lookup(a("10.1.2.129")), nh(25));
    assert_eq!(t.lookup(a("10.1.3.1")), nh(8));
    // A delete of what is not there changes nothing.
    assert_eq!(t.delete(p("10.1.0.0/16")), None);
    assert_eq!(t.delete(p("10.0.0.0/9")), None);
    assert_eq!(t.lookup(a("10.1.3.1")), nh(8));
    assert_eq!(t.len(), 2);
}

#[test]
fn replace_changes_the_next_hop_only() {
    let mut t = Dir24Lpm::new();
    assert_eq!(t.add(p("10.1.0.0/16"), NextHopId(1)), Ok(None));
    t.add(p("10.1.2.0/24"), NextHopId(2)).unwrap();
    assert_eq!(t.add(p("10.1.0.0/16"), NextHopId(3)), Ok(nh(1)));
    assert_eq!(t.len(), 2);
    assert_eq!(t.get(p("10.1.0.0/16")), nh(3));
    assert_eq!(t.lookup(a("10.1.3.1")), nh(3));
    assert_eq!(t.lookup(a("10.1.2.1")), nh(2));
    // Replacing inside a group, too.
    t.add(p("10.1.2.4/30"), NextHopId(4)).unwrap();
    t.add(p("10.1.2.4/30"), NextHopId(5)).unwrap();
    assert_eq!(t.lookup(a("10.1.2.7")), nh(5));
    assert_eq!(t.lookup(a("10.1.2.8")), nh(2));
    assert_eq!(t.groups_in_use(), 1);
}

#[test]
fn a_25_splits_a_24_into_a_group_freed_when_it_goes() {
    let mut t = Dir24Lpm::new();
    t.add(p("192.0.2.0/24"), NextHopId(24)).unwrap();
    assert_eq!(t.groups_in_use(), 0);
    let before = t.tbl24[idx24(0xc000_0200)];
    t.add(p("192.0.2.128/25"), NextHopId(25)).unwrap();
    assert_eq!(t.groups_in_use(), 1);
    assert!(matches!(
        Entry::decode(t.tbl24[idx24(0xc000_0200)]),
        Entry::Group(_)
    ));
    assert_eq!(t.lookup(a("192.0.2.127")), nh(24));
    assert_eq!(t.lookup(a("192.0.2.128")), nh(25));
    assert_eq!(t.lookup(a("192.0.2.255")), nh(25));
    assert_eq!(t.delete(p("192.0.2.128/25")), nh(25));
    assert_eq!(t.groups_in_use(), 0);
    // Folded back into exactly the entry it replaced.
    assert_eq!(t.tbl24[idx24(0xc000_0200)], before);
    assert_eq!(t.lookup(a("192.0.2.200")), nh(24));
    // The freed group is reused, not a new one.
    t.add(p("198.51.100.0/26"), NextHopId(26)).unwrap();
    assert_eq!(t.groups.allocated(), 1);
    assert_eq!(t.groups_in_use(), 1);
}

#[test]
fn group_pool_exhaustion_is_an_error_and_changes_nothing() {
    let mut t = Dir24Lpm::with_max_groups(2).unwrap();
    t.add(p("10.0.0.0/25"), NextHopId(1)).unwrap();
    t.add(p("10.0.1.0/25"), NextHopId(2)).unwrap();
    // Same /24 as an existing group: no new group needed.
    t.add(p("10.0.1.128/25"), NextHopId(3)).unwrap();
    assert_eq!(
        t.add(p("10.0.2.0/25"), NextHopId(4)),
        Err(FibError::GroupsExhausted { max_groups: 2 })
    );
    // The pool never reserves past its bound.
    assert!(t.groups.capacity() <= 2);
    assert_eq!(t.len(), 3);
    assert_eq!(t.get(p("10.0.2.0/25")), None);
    assert_eq!(t.lookup(a("10.0.2.1")), None);
    // Short prefixes need no group.
    t.add(p("10.0.2.0/24"), NextHopId(5)).unwrap();
    assert_eq!(t.lookup(a("10.0.2.1")), nh(5));
    // Freeing one makes room.
    t.delete(p("10.0.0.0/25"));
    t.add(p("10.0.2.0/25"), NextHopId(4)).unwrap();
    assert_eq!(t.lookup(a("10.0.2.1")), nh(4));
    assert_eq!(t.lookup(a("10.0.2.129")), nh(5));
}

#[test]
fn refuses_next_hops_and_pools_past_the_entry_format() {
    let mut t = Dir24Lpm::new();
    assert_eq!(
        t.add(p("10.0.0.0/8"), NextHopId(1 << 24)),
        Err(FibError::NextHopOutOfRange {
            id: 1 << 24,
            max: MAX_NEXT_HOP
        })
    );
    assert!(t.is_empty());
    t.add(p("10.0.0.0/8"), NextHopId(MAX_NEXT_HOP)).unwrap();
    assert_eq!(t.lookup(a("10.9.9.9")), nh(MAX_NEXT_HOP));
    assert!(matches!(
        Dir24Lpm::with_max_groups(MAX_GROUPS_LIMIT + 1),
        Err(FibError::TooManyGroups { .. })
    ));
}

#[test]
fn bulk_lookup_matches_single_and_stops_at_the_shorter_slice() {
    let mut t = Dir24Lpm::new();
    t.add(p("10.0.0.0/8"), NextHopId(8)).unwrap();
    t.add(p("10.1.2.3/32"), NextHopId(32)).unwrap();
    let addrs = [0x0a01_0203, 0x0a01_0204, 0x0b00_0000, 0x0aff_ffff];
    let mut out = [Some(NextHopId(7)); 5];
    t.lookup_bulk(&addrs, &mut out);
    assert_eq!(out, [nh(32), nh(8), None, nh(8), nh(7)]);
    let mut short = [None; 2];
    t.lookup_bulk(&addrs, &mut short);
    assert_eq!(short, [nh(32), nh(8)]);
}

#[test]
fn routes_lists_what_was_added_and_memory_counts_groups() {
    let mut t = Dir24Lpm::new();
    let empty = t.memory_bytes();
    assert!(empty >= 4 << 24);
    t.add(p("10.0.0.0/8"), NextHopId(1)).unwrap();
    t.add(p("10.1.2.3/32"), NextHopId(2)).unwrap();
    let mut routes: Vec<_> = t.routes().collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            (p("10.0.0.0/8"), NextHopId(1)),
            (p("10.1.2.3/32"), NextHopId(2))
        ]
    );
    assert!(t.memory_bytes() >= empty + 1024);
}

#[test]
fn a_clone_is_independent() {
    let mut t = Dir24Lpm::new();
    t.add(p("10.0.0.0/8"), NextHopId(8)).unwrap();
    t.add(p("10.1.2.128/25"), NextHopId(25)).unwrap();
    let c = t.clone();
    t.delete(p("10.1.2.128/25"));
    t.add(p("10.0.0.0/8"), NextHopId(9)).unwrap();
    assert_eq!(c.lookup(a("10.1.2.200")), nh(25));
    assert_eq!(c.lookup(a("10.1.2.1")), nh(8));
    assert_eq!((c.len(), c.groups_in_use()), (2, 1));
    assert_eq!(t.lookup(a("10.1.2.200")), nh(9));
}

#[test]
fn table_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Dir24Lpm>();
}

/// Network addresses that cluster, so that generated prefixes overlap,
/// nest and repeat: a few /16s, with bits scattered below them.
fn prefix_strategy() -> impl Strategy<Value = Prefix4> {
    const BASES: [u32; 4] = [0x0a01_0000, 0xc0a8_0000, 0x0a00_0000, 0xfffe_0000];
    // Lengths below 8 rewrite millions of entries: rare, to keep the
    // unoptimised test build fast.
    let len = prop_oneof![1 => 0u8..8, 30 => 8u8..=32];
    (0..BASES.len(), any::<u32>(), len).prop_map(|(i, noise, len)| {
        let base = BASES.get(i).copied().unwrap_or(0);
        let addr = base | (noise & 0x0001_03c7);
        Prefix4::new_masked(Ipv4Addr::from(addr), len).unwrap_or(Prefix4::DEFAULT)
    })
}

#[derive(Debug, Clone)]
enum Op {
    Add(Prefix4, u32),
    Delete(Prefix4),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (prefix_strategy(), 0u32..8).prop_map(|(p, n)| Op::Add(p, n)),
        2 => prefix_strategy().prop_map(Op::Delete),
    ]
}

/// Addresses at and just past every boundary of every prefix ever used.
fn probes(prefixes: &[Prefix4]) -> Vec<u32> {
    prefixes
        .iter()
        .flat_map(|p| {
            [
                p.first(),
                p.last(),
                p.first().wrapping_sub(1),
                p.last().wrapping_add(1),
                p.first() | 0x80,
            ]
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn agrees_with_the_reference(
        ops in prop::collection::vec(op_strategy(), 1..40),
        random in prop::collection::vec(any::<u32>(), 32),
    ) {
        let mut t = Dir24Lpm::new();
        let mut r = ReferenceLpm::new();
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
        }
        prop_assert_eq!(t.len(), r.len());
        let addrs: Vec<u32> = probes(&used).into_iter().chain(random).collect();
        let mut bulk = vec![None; addrs.len()];
        t.lookup_bulk(&addrs, &mut bulk);
        for (&x, got) in addrs.iter().zip(&bulk) {
            let want = r.lookup(Ipv4Addr::from(x));
            prop_assert_eq!(t.lookup_u32(x), want, "address {}", Ipv4Addr::from(x));
            prop_assert_eq!(*got, want, "bulk, address {}", Ipv4Addr::from(x));
        }
        // Deleting everything frees every group and every entry.
        let all: Vec<_> = r.routes().collect();
        for (p, n) in all {
            prop_assert_eq!(t.delete(p), Some(n));
        }
        prop_assert!(t.is_empty());
        prop_assert_eq!(t.groups_in_use(), 0);
        for &x in &addrs {
            prop_assert_eq!(t.lookup_u32(x), None);
        }
    }
}

#[test]
fn bulk_lookup_in_chunks_and_a_remainder() {
    let mut t = Dir24Lpm::new();
    t.add(p("10.0.0.0/8"), NextHopId(8)).unwrap();
    t.add(p("10.1.2.0/25"), NextHopId(25)).unwrap();
    // Two whole chunks of 8 and a remainder of 3; group and no-route
    // entries in both parts.
    let addrs: Vec<u32> = (0..19u32)
        .map(|i| match i % 3 {
            0 => 0x0a01_0200 | i, // 10.1.2.i: in the /25's group
            1 => 0x0a01_0280 | i, // 10.1.2.128+i: the group, the /8
            _ => 0x0b00_0000 | i, // 11.0.0.i: no route
        })
        .collect();
    let mut out = vec![Some(NextHopId(7)); addrs.len()];
    t.lookup_bulk(&addrs, &mut out);
    let want: Vec<_> = (0..19)
        .map(|i| match i % 3 {
            0 => nh(25),
            1 => nh(8),
            _ => None,
        })
        .collect();
    assert_eq!(out, want);
    for (&x, got) in addrs.iter().zip(&out) {
        assert_eq!(t.lookup_u32(x), *got);
    }
}

#[test]
fn a_short_prefix_reaches_a_group_in_a_block_of_longer_prefixes() {
    // The first-level block of 10.0.0.0/14 (1,024 entries): its first /24
    // holds a group (for the /32), every other entry a prefix longer than
    // the /10 added next, so the block's lowest first-level tag outranks
    // the /10, yet the group's other entries are the /10's to take.
    let mut t = Dir24Lpm::new();
    t.add(p("10.0.0.1/32"), NextHopId(32)).unwrap();
    let rest = [
        "10.2.0.0/15",
        "10.1.0.0/16",
        "10.0.128.0/17",
        "10.0.64.0/18",
        "10.0.32.0/19",
        "10.0.16.0/20",
        "10.0.8.0/21",
        "10.0.4.0/22",
        "10.0.2.0/23",
        "10.0.1.0/24",
    ];
    for (i, r) in (15u32..).zip(rest) {
        t.add(p(r), NextHopId(i)).unwrap();
    }
    t.add(p("10.0.0.0/10"), NextHopId(10)).unwrap();
    assert_eq!(t.lookup(a("10.0.0.2")), nh(10));
    assert_eq!(t.lookup(a("10.0.0.1")), nh(32));
    assert_eq!(t.lookup(a("10.0.1.5")), nh(24));
    assert_eq!(t.lookup(a("10.3.255.255")), nh(15));
    // The next block had nothing: stored whole.
    assert_eq!(t.lookup(a("10.4.0.1")), nh(10));
    assert_eq!(t.lookup(a("10.63.255.255")), nh(10));
    // The same route again changes nothing and says so.
    assert_eq!(t.add(p("10.0.0.0/10"), NextHopId(10)), Ok(nh(10)));
    assert_eq!(t.len(), 12);
    // A /12 over the stored block and part of the next: whole, then
    // compared.
    t.add(p("10.0.0.0/12"), NextHopId(12)).unwrap();
    assert_eq!(t.lookup(a("10.4.0.1")), nh(12));
    assert_eq!(t.lookup(a("10.0.0.2")), nh(12));
    assert_eq!(t.lookup(a("10.16.0.0")), nh(10));
    // And the deletes find the group and the stored blocks again.
    assert_eq!(t.delete(p("10.0.0.0/12")), nh(12));
    assert_eq!(t.lookup(a("10.0.0.2")), nh(10));
    assert_eq!(t.lookup(a("10.4.0.1")), nh(10));
    assert_eq!(t.delete(p("10.0.0.0/10")), nh(10));
    assert_eq!(t.lookup(a("10.0.0.2")), None);
    assert_eq!(t.lookup(a("10.4.0.1")), None);
    assert_eq!(t.lookup(a("10.0.0.1")), nh(32));
    assert_eq!(t.lookup(a("10.0.2.1")), nh(23));
}
