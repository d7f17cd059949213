//! The fused common case against the stages: on any burst (random bytes,
//! or valid frames mutated), [`Pipeline::run`] and
//! [`Pipeline::run_staged`] send the same bytes on the same ports in the
//! same order, punt the same frames for the same reasons and count the
//! same drops.

use super::next_hop::PortIndex;
use super::pipeline::{Ctx, L3Out, Pipeline};
use super::pipeline_tests::{
    burst_of, ethernet, frame4, ipv4_udp, ipv6, pool, tables, valid_frames, MAC0,
};
use super::tables::Tables;
use crate::counters::CoreSnapshot;
use crate::packet::checksum;
use drivers::burst::MAX_BURST;
use drivers::mbuf::OlFlags;
use drivers::pool::Pool;
use proptest::prelude::*;

/// Everything observable about how a burst ended.
#[derive(Debug, PartialEq, Eq)]
struct Ends {
    /// Per port, the frames sent, in order.
    sent: Vec<Vec<Vec<u8>>>,
    /// The punts: reason, input port, frame.
    punts: Vec<(String, PortIndex, Vec<u8>)>,
    /// Drops counted per reason, and buffers freed.
    drops: (Vec<u64>, usize),
}

fn route(
    t: &Tables,
    pool: &Pool,
    frames: &[(Vec<u8>, OlFlags)],
    in_port: PortIndex,
    staged: bool,
) -> Ends {
    route_after(t, pool, frames, in_port, staged, 0)
}

/// [`route`] with port 1's TX buffer already holding `queued` empty
/// packets (a TX queue that took nothing of the last bursts).
fn route_after(
    t: &Tables,
    pool: &Pool,
    frames: &[(Vec<u8>, OlFlags)],
    in_port: PortIndex,
    staged: bool,
    queued: usize,
) -> Ends {
    let mut burst = burst_of(pool, frames);
    let mut out = L3Out::new(3);
    for _ in 0..queued {
        out.tx[1].push(pool.alloc().expect("pool has room"));
    }
    let mut c = CoreSnapshot::default();
    let ctx = Ctx { tables: t, in_port };
    let mut p = used_pipeline(t, pool);
    if staged {
        p.run_staged(ctx, &mut burst, &mut out, &mut c);
    } else {
        p.run(ctx, &mut burst, &mut out, &mut c);
    }
    assert!(burst.is_empty());
    Ends {
        sent: out
            .tx
            .iter()
            .map(|b| b.iter().map(|m| m.data().to_vec()).collect())
            .collect(),
        punts: out
            .punts
            .iter()
            .map(|p| (p.reason.to_string(), p.in_port, p.mbuf.data().to_vec()))
            .collect(),
        drops: (c.drops.to_vec(), out.drops.len()),
    }
}

/// A pipeline that has routed a burst already: what it keeps per packet
/// from burst to burst holds that burst's ends (sent on port 1, punted,
/// parked at a stage), not the fresh state, so a packet whose state a
/// burst forgot to set would end where the last burst's did.
fn used_pipeline(t: &Tables, pool: &Pool) -> Pipeline {
    let sent = frame4(&ipv4_udp("10.0.0.1", "198.51.100.7", 64));
    let frames: Vec<_> = seeds()
        .into_iter()
        .chain(std::iter::repeat_n(sent, 40))
        .cycle()
        .take(100)
        .map(|f| (f, OlFlags::NONE))
        .collect();
    let mut burst = burst_of(pool, &frames);
    let mut p = Pipeline::new();
    let ctx = Ctx {
        tables: t,
        in_port: PortIndex(0),
    };
    p.run(
        ctx,
        &mut burst,
        &mut L3Out::new(3),
        &mut CoreSnapshot::default(),
    );
    p
}

/// Frames the fused path takes to every one of its exits, besides the
/// pipeline tests' valid frames: TTL 1 and 2, padding, an MTU too small,
/// no route, unresolved, blackhole, unreachable, a group, options, a
/// martian, broadcast, to another MAC.
fn seeds() -> Vec<Vec<u8>> {
    let mut with_options = ipv4_udp("10.0.0.1", "198.51.100.7", 64);
    with_options[0] = 0x46;
    with_options.splice(20..20, [1, 1, 1, 0]);
    let mut v = vec![
        frame4(&ipv4_udp("10.0.0.1", "198.51.100.7", 1)),
        frame4(&ipv4_udp("10.0.0.1", "198.51.100.7", 2)),
        frame4(&ipv4_udp("10.0.0.1", "198.51.101.7", 64)),
        frame4(&ipv4_udp("10.0.0.1", "100.64.0.1", 64)),
        frame4(&ipv4_udp("10.0.0.1", "198.18.0.1", 64)),
        frame4(&ipv4_udp("10.0.0.1", "8.8.8.8", 64)),
        frame4(&ipv4_udp("127.0.0.1", "198.51.100.7", 64)),
        frame4(&ipv4_udp("10.0.0.1", "255.255.255.255", 64)),
        frame4(&ipv4_udp("10.0.0.1", "10.0.0.254", 64)),
        frame4(&with_options),
        ethernet(
            drivers::net::MacAddr::BROADCAST,
            0x0800,
            &ipv4_udp("10.0.0.1", "198.51.100.7", 64),
        ),
        ethernet(
            MAC0,
            0x86dd,
            &ipv6("2001:db8::2", "2001:db8:200::1", 17, &[0; 80]),
        ),
    ];
    // Larger than port 2's MTU of 100.
    let mut big = ipv4_udp("10.0.0.1", "192.0.3.9", 64);
    big.resize(120, 0);
    big[2..4].copy_from_slice(&120u16.to_be_bytes());
    big[10..12].fill(0);
    let c = checksum::checksum(&big[..20]);
    big[10..12].copy_from_slice(&c.to_be_bytes());
    v.push(frame4(&big));
    v.extend(valid_frames());
    v
}

/// A seed with bits flipped and its tail cut; with `fix`, the IPv4
/// checksum recomputed afterwards (if the header is there), so the
/// mutation reaches the checks after the checksum.
fn mutate(seed: usize, flips: &[(prop::sample::Index, u8)], cut: usize, fix: bool) -> Vec<u8> {
    let all = seeds();
    let mut f = all[seed % all.len()].clone();
    for (at, bit) in flips {
        let i = at.index(f.len());
        f[i] ^= 1 << bit;
    }
    f.truncate(f.len() - cut.min(f.len()));
    if fix && f.len() >= 34 {
        let ihl = usize::from(f[14] & 0x0f) * 4;
        if ihl >= 20 && f.len() >= 14 + ihl {
            f[24..26].fill(0);
            let c = checksum::checksum(&f[14..14 + ihl]);
            f[24..26].copy_from_slice(&c.to_be_bytes());
        }
    }
    f
}

fn flags(k: u8) -> OlFlags {
    match k % 3 {
        0 => OlFlags::NONE,
        1 => OlFlags::RX_IP_CKSUM_GOOD,
        _ => OlFlags::RX_IP_CKSUM_BAD,
    }
}

#[test]
fn every_seed_ends_the_same_either_way() {
    let (t, pool) = (tables(), pool());
    let frames: Vec<_> = seeds()
        .into_iter()
        .flat_map(|f| (0..3).map(move |k| (f.clone(), flags(k))))
        .collect();
    for port in 0..4 {
        let fused = route(&t, &pool, &frames, PortIndex(port), false);
        assert_eq!(
            fused,
            route(&t, &pool, &frames, PortIndex(port), true),
            "in port {port}"
        );
        if port == 0 {
            // The seeds do reach the fused path's ends: forwarded on
            // ports 1 and 2, and no route.
            assert!(!fused.sent[1].is_empty() && !fused.sent[2].is_empty());
            assert!(fused.punts.iter().any(|p| p.0 == "no_route"));
        }
    }
}

/// A burst all forwarded to one port goes to its buffer whole; with too
/// little room left there, packet by packet, the overflow counted
/// `tx_full`: the same either way.
#[test]
fn a_burst_to_one_port_ends_the_same_either_way() {
    let (t, pool) = (tables(), pool());
    let frame = frame4(&ipv4_udp("10.0.0.1", "198.51.100.7", 64));
    let frames = vec![(frame, OlFlags::NONE); 40];
    for queued in [0, MAX_BURST - 40, MAX_BURST - 39, MAX_BURST - 1] {
        let fused = route_after(&t, &pool, &frames, PortIndex(0), false, queued);
        let staged = route_after(&t, &pool, &frames, PortIndex(0), true, queued);
        assert_eq!(fused, staged, "{queued} queued");
        let full = (queued + 40).saturating_sub(MAX_BURST);
        assert_eq!(fused.sent[1].len(), queued + 40 - full);
        assert_eq!(fused.drops.1, full, "{queued} queued");
    }
}

/// Every packet forwarded, but not all to one port: sorted packet by
/// packet, in burst order.
#[test]
fn a_burst_to_two_ports_ends_the_same_either_way() {
    let (t, pool) = (tables(), pool());
    let to1 = frame4(&ipv4_udp("10.0.0.1", "198.51.100.7", 64));
    let to2 = frame4(&ipv4_udp("10.0.0.1", "192.0.3.9", 64));
    for split in [1, 20, 39] {
        let frames: Vec<_> = (0..40)
            .map(|i| (if i < split { &to1 } else { &to2 }).clone())
            .map(|f| (f, OlFlags::NONE))
            .collect();
        let fused = route(&t, &pool, &frames, PortIndex(0), false);
        assert_eq!(fused, route(&t, &pool, &frames, PortIndex(0), true));
        assert_eq!(
            (fused.sent[1].len(), fused.sent[2].len()),
            (split, 40 - split)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fused_and_staged_agree(
        frames in prop::collection::vec(
            (
                prop_oneof![
                    prop::collection::vec(any::<u8>(), 0..100),
                    (
                        any::<usize>(),
                        prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 0..3),
                        prop_oneof![Just(0usize), 0usize..40],
                        any::<bool>(),
                    )
                        .prop_map(|(s, flips, cut, fix)| mutate(s, &flips, cut, fix)),
                ],
                any::<u8>(),
            ),
            0..80,
        ),
        in_port in prop_oneof![Just(0u16), 0u16..4],
    ) {
        let (t, pool) = (tables(), pool());
        let before = pool.available();
        let input: Vec<_> = frames.into_iter().map(|(f, k)| (f, flags(k))).collect();
        let fused = route(&t, &pool, &input, PortIndex(in_port), false);
        let staged = route(&t, &pool, &input, PortIndex(in_port), true);
        prop_assert_eq!(fused, staged);
        prop_assert_eq!(pool.available(), before);
    }

    /// Bursts of copies of one frame, the fused path's whole-burst case
    /// when the frame is forwarded.
    #[test]
    fn fused_and_staged_agree_on_uniform_bursts(
        seed in any::<usize>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 0..2),
        fix in any::<bool>(),
        k in any::<u8>(),
        n in 1usize..64,
        in_port in prop_oneof![Just(0u16), 0u16..4],
    ) {
        let (t, pool) = (tables(), pool());
        let before = pool.available();
        let input = vec![(mutate(seed, &flips, 0, fix), flags(k)); n];
        let fused = route(&t, &pool, &input, PortIndex(in_port), false);
        let staged = route(&t, &pool, &input, PortIndex(in_port), true);
        prop_assert_eq!(fused, staged);
        prop_assert_eq!(pool.available(), before);
    }
}
