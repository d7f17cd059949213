//! The maps the LPM tables keep their rule sets in (one per prefix
//! length, network address to next hop), hashed with a folded multiply
//! instead of std's SipHash.
//!
//! Why: every add and delete hashes its prefix at least once, and a
//! delete hashes it once more per shorter length it searches for a cover
//! (up to 24 for an IPv4 /24), and each growth of a map rehashes every key
//! in it. SipHash-1-3 spends some 20 cycles on a 4-byte key; one 64x64->128
//! multiply whose halves are XORed together (the "folded multiply" of
//! foldhash and aHash) spends about 4, and mixes into both ends of the
//! hash: hashbrown takes its bucket from the low bits and its tag from the
//! top 7, and network addresses end in zero bits (a /24 has 8), which a
//! plain multiply would leave as zeros at the bottom.
//!
//! Keys come from the control plane, not from packets; still, each map
//! starts from a random seed (drawn from std's `RandomState`), so a peer
//! that picks routes cannot aim them all at one bucket without knowing it.
//! Not a keyed PRF like SipHash: that strength is not needed here. A crate
//! (foldhash, rustc-hash) would give the same in more code than these lines.

use super::next_hop::NextHopId;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};

/// A rule set of one prefix length: network address to next hop.
pub(crate) type RuleMap<K> = HashMap<K, NextHopId, RuleHashBuilder>;

/// An empty [`RuleMap`] with a fresh seed.
pub(crate) fn rule_map<K>() -> RuleMap<K> {
    HashMap::with_hasher(RuleHashBuilder::new())
}

/// The multiplier: odd, bits spread (the fractional digits of pi, as in
/// many hash functions' constants).
const MULTIPLIER: u64 = 0x243f_6a88_85a3_08d3;

/// The multiplier of the last fold: the next digits of pi, odd.
const FINISH: u64 = 0x1319_8a2e_0370_7345;

/// The 128-bit product of `a` and `b`, its halves XORed.
#[inline(always)]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    // Truncations meant: the low half, and the high half shifted down.
    (p as u64) ^ ((p >> 64) as u64)
}

/// Makes [`RuleHasher`]s from one seed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RuleHashBuilder {
    seed: u64,
}

impl RuleHashBuilder {
    fn new() -> Self {
        RuleHashBuilder {
            seed: RandomState::new().hash_one(0u64),
        }
    }
}

impl BuildHasher for RuleHashBuilder {
    type Hasher = RuleHasher;

    fn build_hasher(&self) -> RuleHasher {
        RuleHasher { state: self.seed }
    }
}

/// Folds each 64-bit word of a key into its state with one folded
/// multiply.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RuleHasher {
    state: u64,
}

impl RuleHasher {
    #[inline(always)]
    fn word(&mut self, w: u64) {
        self.state = folded_multiply(self.state ^ w, MULTIPLIER);
    }
}

impl Hasher for RuleHasher {
    #[inline]
    fn finish(&self) -> u64 {
        // One more fold: a key whose varying bits all sit in its last
        // word's middle (IPv6 /48s under one /32) has been through one
        // multiply only, which leaves the product's low bits to its low
        // bits alone.
        folded_multiply(self.state, FINISH)
    }

    /// Any other key type: eight bytes at a time (the keys here are u32
    /// and u128, which take the methods below).
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w.iter_mut().zip(chunk).for_each(|(d, s)| *d = *s);
            self.word(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u32(&mut self, x: u32) {
        self.word(u64::from(x));
    }

    #[inline]
    fn write_u64(&mut self, x: u64) {
        self.word(x);
    }

    #[inline]
    fn write_u128(&mut self, x: u128) {
        // Truncations meant: the low and the high word.
        self.word(x as u64);
        self.word((x >> 64) as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn hash_of<T: std::hash::Hash>(b: &RuleHashBuilder, x: T) -> u64 {
        b.hash_one(x)
    }

    #[test]
    fn network_addresses_spread_over_low_bits_and_tag_bits() {
        // 4096 /24 network addresses (eight zero bits at the bottom) and
        // 4096 IPv6 /48s under one /32: the low 12 bits (the bucket of a
        // 4096-bucket table) and the top 7 (hashbrown's tag) must both
        // vary, or the map degrades to long probe runs.
        let b = RuleHashBuilder { seed: 12345 };
        let v4: Vec<u64> = (0..4096u32).map(|i| hash_of(&b, i << 8)).collect();
        let v6: Vec<u64> = (0..4096u128)
            .map(|i| hash_of(&b, (0x2001_0db8u128 << 96) | (i << 80)))
            .collect();
        for hashes in [&v4, &v6] {
            let low: HashSet<u64> = hashes.iter().map(|h| h & 0xfff).collect();
            let top: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
            // A random function would hit about 63 % of 4096 buckets and
            // all 128 tags.
            assert!(low.len() > 2450, "low bits: {} distinct", low.len());
            assert_eq!(top.len(), 128);
        }
    }

    #[test]
    fn same_key_same_hash_and_seeds_differ() {
        let b = RuleHashBuilder::new();
        assert_eq!(hash_of(&b, 0x0a00_0000u32), hash_of(&b, 0x0a00_0000u32));
        assert_ne!(hash_of(&b, 0x0a00_0000u32), hash_of(&b, 0x0a00_0100u32));
        // Bytes fed through write() (a key type without its own method)
        // hash too, and differ by content.
        let mut h1 = b.build_hasher();
        h1.write(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let mut h2 = b.build_hasher();
        h2.write(&[1, 2, 3, 4, 5, 6, 7, 8, 10]);
        assert_ne!(h1.finish(), h2.finish());
        let other = RuleHashBuilder::new();
        assert_ne!(b.seed, other.seed);
        let mut m = rule_map::<u128>();
        m.insert(7, NextHopId(1));
        assert_eq!(m.get(&7), Some(&NextHopId(1)));
    }
}
