//! The Internet checksum (RFC 1071), the pseudo-header sums TCP, UDP and
//! ICMPv6 cover, and incremental update (RFC 1624).
//!
//! A "sum" here is the folded 16-bit ones' complement sum of the data, not
//! yet complemented; a "checksum" is its complement, as carried in headers.
//! Data that carries a correct checksum sums to 0xffff.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::ip_protocol::IpProtocol;

/// Folds a wide sum of 16-bit words to 16 bits with end-around carry,
/// in a fixed number of steps (no loop on the data path): 2^32 and 2^16
/// are both 1 modulo 0xffff, so each step keeps the value modulo 0xffff,
/// and a nonzero sum never folds to 0.
#[inline]
fn fold(s: u64) -> u16 {
    // Below 2^33, then below 2^17 + 2^16, then 0xffff + 2, then 0xffff.
    let s = (s & 0xffff_ffff) + (s >> 32);
    let s = (s & 0xffff) + (s >> 16);
    let s = (s & 0xffff) + (s >> 16);
    let s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// Adds big-endian 32-bit words into a wide accumulator. A 32-bit word
/// `hi * 2^16 + lo` is congruent to `hi + lo` modulo 0xffff, so this is the
/// RFC 1071 sum of 16-bit words with half the additions (RFC 1071 section
/// 2(A): the sum may be computed in wider words and folded).
#[inline]
fn wide_sum(data: &[u8]) -> u64 {
    let mut acc = 0u64;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut pair = rest.chunks_exact(2);
    for w in &mut pair {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    // An odd last byte is padded with a zero byte on the right (RFC 1071
    // section 1).
    if let [last] = pair.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// The folded ones' complement sum of `data` (RFC 1071).
pub fn sum(data: &[u8]) -> u16 {
    fold(wide_sum(data))
}

/// Ones' complement addition of two sums.
#[inline]
pub fn add(a: u16, b: u16) -> u16 {
    fold(u64::from(a) + u64::from(b))
}

/// The checksum to store for `data` (its checksum field zeroed).
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// The checksum to store for `data` behind a pseudo-header whose sum is
/// `pseudo` (see [`pseudo_header_v4`], [`pseudo_header_v6`]).
pub fn checksum_with(pseudo: u16, data: &[u8]) -> u16 {
    !fold(u64::from(pseudo) + wide_sum(data))
}

/// True if `data`, which includes its checksum field, verifies.
pub fn verify(data: &[u8]) -> bool {
    sum(data) == 0xffff
}

/// [`verify`] of an IPv4 header without options, in a few straight-line
/// additions: the header as five 32-bit words in the machine's byte
/// order. RFC 1071 section 2(B): the sum of byte-swapped words is the
/// byte-swapped sum, and 0xffff, the verdict, is its own swap; 2(A):
/// summed in 32-bit words.
#[inline(always)]
pub fn verify_header(header: &[u8; 20]) -> bool {
    let (words, _) = header.as_chunks::<4>();
    let s: u64 = words
        .iter()
        .map(|w| u64::from(u32::from_ne_bytes(*w)))
        .sum();
    // `fold(s) == 0xffff`, without the folding: folding keeps the value
    // modulo 0xffff and gives 0 only for 0.
    s != 0 && s.is_multiple_of(0xffff)
}

/// The header checksum after the TTL is decremented (the TTL at least
/// 1): [`update16`] of the TTL/protocol word `old` to `old - 0x100`,
/// which does not depend on `old`: `!old + new` is always 0xfeff, so
/// `~(~HC + 0xfeff)` works out as `HC + 0x100` with the end-around
/// carry taken as soon as the sum reaches 0xffff (a test checks it
/// against `update16` for every checksum).
#[inline(always)]
pub fn ttl_decremented(check: u16) -> u16 {
    let s = u32::from(check) + 0x100;
    (if s >= 0xffff { s - 0xffff } else { s }) as u16
}

/// True if `data` verifies behind a pseudo-header whose sum is `pseudo`.
pub fn verify_with(pseudo: u16, data: &[u8]) -> bool {
    fold(u64::from(pseudo) + wide_sum(data)) == 0xffff
}

/// The sum of the IPv4 pseudo-header TCP and UDP checksums cover (RFC 768,
/// RFC 9293 section 3.1): source, destination, zero, protocol, and the
/// upper-layer length.
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, len: u16) -> u16 {
    let s = u64::from(src.to_bits())
        + u64::from(dst.to_bits())
        + u64::from(protocol.0)
        + u64::from(len);
    fold(s)
}

/// The sum of the IPv6 pseudo-header (RFC 8200 section 8.1): source,
/// destination, the 32-bit upper-layer packet length, three zero bytes and
/// the next header.
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: IpProtocol, len: u32) -> u16 {
    let s = wide_sum(&src.octets())
        + wide_sum(&dst.octets())
        + u64::from(len)
        + u64::from(next_header.0);
    fold(s)
}

/// The new checksum after a 16-bit field changed from `old` to `new`: RFC
/// 1624 equation 3, `HC' = ~(~HC + ~m + m')`, which unlike equation 2 never
/// yields 0x0000 where a full recompute gives 0xffff or the reverse.
#[inline]
pub fn update16(check: u16, old: u16, new: u16) -> u16 {
    !fold(u64::from(!check) + u64::from(!old) + u64::from(new))
}

/// The new checksum after a 32-bit field (an IPv4 address) changed: the two
/// 16-bit halves, each by RFC 1624 equation 3, in one fold.
#[inline]
pub fn update32(check: u16, old: u32, new: u32) -> u16 {
    let s = u64::from(!check)
        + u64::from(!(old >> 16) as u16)
        + u64::from(!(old as u16))
        + u64::from(new >> 16)
        + u64::from(new as u16);
    !fold(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 1071 as written: 16-bit words, one at a time.
    fn reference_sum(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for w in data.chunks(2) {
            let word = u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]);
            s += u32::from(word);
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
        assert_eq!(
            sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
    }

    #[test]
    fn rfc1624_section4_example() {
        // RFC 1624 section 4: checksum 0xdd2f, a field 0x5555 -> 0x3285;
        // the right answer is 0x0000, which equation 2 gets wrong (0xffff).
        assert_eq!(update16(0xdd2f, 0x5555, 0x3285), 0x0000);
        assert_eq!(
            update32(0xdd2f, 0x5555_0000, 0x3285_0000),
            0x0000,
            "the same change in the high half"
        );
    }

    #[test]
    fn fold_keeps_the_ones_complement_value() {
        // 0 stays 0; any other multiple of 0xffff is 0xffff, never 0.
        assert_eq!(fold(0), 0);
        assert_eq!(fold(0xffff), 0xffff);
        assert_eq!(fold(0xffff * 0x1_0001), 0xffff);
        assert_eq!(fold(u64::MAX), 0xffff);
        assert_eq!(fold(0x1_0000), 1);
        assert_eq!(fold(0x1_0000_0000), 1);
        assert_eq!(fold(0x1_fffe), 0xffff);
    }

    #[test]
    fn verify_header_of_zeros_and_ones() {
        // A sum of 0 (all zeros) is not 0xffff; all ones is.
        assert!(!verify_header(&[0; 20]) && !verify(&[0; 20]));
        assert!(verify_header(&[0xff; 20]) && verify(&[0xff; 20]));
    }

    #[test]
    fn ttl_decremented_is_update16_for_every_checksum() {
        for check in 0..=u16::MAX {
            for old in [0x0100, 0x0211, 0x4006, 0xff3a] {
                assert_eq!(
                    ttl_decremented(check),
                    update16(check, old, old - 0x100),
                    "checksum {check:#06x}, TTL/protocol {old:#06x}"
                );
            }
        }
    }

    #[test]
    fn odd_length_pads_right() {
        assert_eq!(sum(&[0xab]), 0xab00);
        assert_eq!(sum(&[0x12, 0x34, 0xab]), 0x12 * 256 + 0x34 + 0xab00);
        assert_eq!(sum(&[]), 0);
    }

    #[test]
    fn pseudo_header_v4_words() {
        // 192.168.0.1 -> 192.168.0.199, UDP, length 8:
        // c0a8 + 0001 + c0a8 + 00c7 + 0011 + 0008 = 0x18231 -> 0x8232.
        let s = pseudo_header_v4(
            Ipv4Addr::new(192, 168, 0, 1),
            Ipv4Addr::new(192, 168, 0, 199),
            IpProtocol::UDP,
            8,
        );
        assert_eq!(s, 0x8232);
    }

    #[test]
    fn pseudo_header_v6_words() {
        // fe80::1 -> ff02::1, ICMPv6, length 0x10: fe80 + 1 + ff02 + 1 + 0x10
        // + 0x3a = 0x1fdce -> 0xfdcf.
        let s = pseudo_header_v6(
            "fe80::1".parse().unwrap(),
            "ff02::1".parse().unwrap(),
            IpProtocol::ICMPV6,
            0x10,
        );
        assert_eq!(s, 0xfdcf);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn sum_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(sum(&data), reference_sum(&data));
        }

        #[test]
        fn verify_header_is_verify(mut h in any::<[u8; 20]>(), fill in any::<bool>(), flip in 0usize..200) {
            if fill {
                // A header whose checksum is right, one bit flipped (below
                // 160) or not.
                h[10..12].fill(0);
                let c = checksum(&h);
                h[10..12].copy_from_slice(&c.to_be_bytes());
                prop_assert!(verify_header(&h));
                if flip < 160 {
                    h[flip / 8] ^= 1 << (flip % 8);
                }
            }
            prop_assert_eq!(verify_header(&h), verify(&h));
        }


        #[test]
        fn fold_matches_the_loop(s in any::<u64>()) {
            let mut l = s;
            while l >> 16 != 0 {
                l = (l & 0xffff) + (l >> 16);
            }
            prop_assert_eq!(fold(s), l as u16);
        }

        #[test]
        fn filled_checksum_verifies(mut data in proptest::collection::vec(any::<u8>(), 2..100)) {
            data[0] = 0;
            data[1] = 0;
            let c = checksum(&data);
            data[0..2].copy_from_slice(&c.to_be_bytes());
            prop_assert!(verify(&data));
        }

        #[test]
        fn update16_matches_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 4..64),
            word in 1usize..32,
            new in any::<u16>(),
        ) {
            // A nonzero first word keeps the sum off the one input (all
            // zeros) where +0 and -0 differ; real headers never have it.
            data[0] |= 0x40;
            let at = 2 * (word % (data.len() / 2 - 1)) + 2;
            data[2..4].fill(0);
            if at == 2 {
                return Ok(());
            }
            let c = checksum(&data);
            data[2..4].copy_from_slice(&c.to_be_bytes());
            let old = u16::from_be_bytes([data[at], data[at + 1]]);
            data[at..at + 2].copy_from_slice(&new.to_be_bytes());
            let inc = update16(c, old, new);
            data[2..4].fill(0);
            prop_assert_eq!(inc, checksum(&data));
        }

        #[test]
        fn update32_matches_two_update16(c in any::<u16>(), old in any::<u32>(), new in any::<u32>()) {
            let two = update16(update16(c, (old >> 16) as u16, (new >> 16) as u16), old as u16, new as u16);
            prop_assert_eq!(update32(c, old, new), two);
        }
    }
}
