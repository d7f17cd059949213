//! Receive-side scaling in the ixgbevf model: which header fields the
//! hash covers (the VFMRQC field bits, A.3), the RSS type written back
//! (A.4.2), and the PF's RSS state that 82599/X540 VFs share (A.8 #11).
//! The hash itself is [`super::toeplitz`]. Constants are the model's own.

use super::toeplitz::{self, Flow, L4};

/// VFMRQC.RSSEN (A.3).
pub const MRQC_RSSEN: u32 = 0x1;
/// Hash field IPv4/TCP (A.3 VFMRQC).
pub const MRQC_IPV4_TCP: u32 = 0x1_0000;
/// Hash field IPv4 (A.3).
pub const MRQC_IPV4: u32 = 0x2_0000;
/// Hash field IPv6 (A.3).
pub const MRQC_IPV6: u32 = 0x10_0000;
/// Hash field IPv6/TCP (A.3).
pub const MRQC_IPV6_TCP: u32 = 0x20_0000;
/// Hash field IPv4/UDP (A.3).
pub const MRQC_IPV4_UDP: u32 = 0x40_0000;
/// Hash field IPv6/UDP (A.3).
pub const MRQC_IPV6_UDP: u32 = 0x80_0000;

/// RSS types of the write-back pkt_info bits 3:0 (A.4.2).
pub mod rss_type {
    /// No hash.
    pub const NONE: u16 = 0;
    /// IPv4/TCP.
    pub const IPV4_TCP: u16 = 1;
    /// IPv4.
    pub const IPV4: u16 = 2;
    /// IPv6/TCP.
    pub const IPV6_TCP: u16 = 3;
    /// IPv6.
    pub const IPV6: u16 = 5;
    /// IPv4/UDP.
    pub const IPV4_UDP: u16 = 7;
    /// IPv6/UDP.
    pub const IPV6_UDP: u16 = 8;
}

/// Bytes of an RSS key (A.2 VFRSSRK: 40 bytes; A.5.3 GET_RSS_KEY).
pub const KEY_BYTES: usize = 40;
/// Entries of the PF's RETA that GET_RETA reports (A.5.3: 128, 2 bits each).
pub const PF_RETA_ENTRIES: usize = 128;
/// Entries of the X550 VF's own RETA (A.2 VFRETA: 64).
pub const VF_RETA_ENTRIES: usize = 64;

/// The hash of `frame` under `key` with the fields `mrqc` selects, and its
/// RSS type; `None` when the frame is not IP or no selected field covers
/// it. A TCP or UDP frame whose 4-tuple field is off falls back to the
/// address-only field of its IP version.
pub fn hash(frame: &[u8], key: &[u8; KEY_BYTES], mrqc: u32) -> Option<(u32, u16)> {
    use rss_type::*;
    let flow = toeplitz::parse(frame)?;
    let on = |bit: u32| mrqc & bit != 0;
    let (ports, ty) = match flow {
        Flow::V4(_, _, L4::Tcp(..)) if on(MRQC_IPV4_TCP) => (true, IPV4_TCP),
        Flow::V4(_, _, L4::Udp(..)) if on(MRQC_IPV4_UDP) => (true, IPV4_UDP),
        Flow::V4(..) if on(MRQC_IPV4) => (false, IPV4),
        Flow::V6(_, _, L4::Tcp(..)) if on(MRQC_IPV6_TCP) => (true, IPV6_TCP),
        Flow::V6(_, _, L4::Udp(..)) if on(MRQC_IPV6_UDP) => (true, IPV6_UDP),
        Flow::V6(..) if on(MRQC_IPV6) => (false, IPV6),
        _ => return None,
    };
    let (input, n) = toeplitz::input(&flow, ports);
    Some((toeplitz::toeplitz(key, &input[..n]), ty))
}

/// The PF's RSS, which 82599 and X540 VFs share and can only read
/// (A.8 #11, A.5.3 GET_RETA / GET_RSS_KEY).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PfRss {
    /// The key.
    pub key: [u8; KEY_BYTES],
    /// 128 entries; a VF pool uses the low bits of each (see
    /// [`pool_queues`]).
    pub reta: [u8; PF_RETA_ENTRIES],
    /// Hash fields, as VFMRQC's bits (the PF's MRQC field bits are not in
    /// the facts; the VF's are, A.3, and the model uses them for both).
    pub fields: u32,
}

/// The key the model's PF uses unless a test sets another: the key of
/// Microsoft's RSS verification suite ("Verifying the RSS Hash
/// Calculation"), so a hash can be checked by hand. A Linux PF picks a
/// random key; nothing in the facts depends on which.
pub const DEFAULT_KEY: [u8; KEY_BYTES] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

impl PfRss {
    /// The default key, a RETA spreading entry i to queue i mod `queues`,
    /// hashing IPv4, IPv4/TCP, IPv6 and IPv6/TCP (UDP off, as a PF
    /// leaves it unless told otherwise **(inferred)**).
    pub fn spread(queues: u32) -> PfRss {
        let q = queues.clamp(1, 4);
        let mut reta = [0u8; PF_RETA_ENTRIES];
        for (i, e) in reta.iter_mut().enumerate() {
            *e = (i as u32 % q) as u8;
        }
        PfRss {
            key: DEFAULT_KEY,
            reta,
            fields: MRQC_IPV4 | MRQC_IPV4_TCP | MRQC_IPV6 | MRQC_IPV6_TCP,
        }
    }

    /// GET_RETA's 8 words: 16 entries of 2 bits per word, the lowest
    /// entry in the lowest bits (the order is inferred, as in the PMD's
    /// notes: the facts say "packed 2 bits each").
    pub fn reta_words(&self) -> Vec<u32> {
        self.reta
            .chunks_exact(16)
            .map(|c| {
                c.iter()
                    .enumerate()
                    .fold(0, |w, (i, e)| w | (u32::from(*e) & 3) << (2 * i))
            })
            .collect()
    }

    /// GET_RSS_KEY's 10 words, little endian.
    pub fn key_words(&self) -> Vec<u32> {
        self.key
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }
}

/// RSS queues of an 82599/X540 VF pool from PSRTYPE.RQPL (bits 31:29,
/// A.3): 0 → 1 queue, 1 → 2, 2 → 4. The field's meaning is inferred from
/// the two drivers (Linux writes 1 for two queues, DPDK queues >> 1); the
/// PF's 2-bit RETA entries (A.5.3) cap a pool at 4.
pub fn pool_queues(psrtype: u32) -> usize {
    match (psrtype >> 29) & 7 {
        0 => 1,
        1 => 2,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 or IPv6 frame with `proto` and ports 1000 → 2000.
    fn frame(v6: bool, proto: u8) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        if v6 {
            f[12..14].copy_from_slice(&[0x86, 0xDD]);
            let mut h = vec![0u8; 40];
            h[0] = 0x60;
            h[6] = proto;
            h[8..24].copy_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            h[24..40].copy_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
            f.extend(h);
        } else {
            f[12..14].copy_from_slice(&[0x08, 0x00]);
            let mut h = vec![0u8; 20];
            h[0] = 0x45;
            h[9] = proto;
            h[12..16].copy_from_slice(&[10, 0, 0, 1]);
            h[16..20].copy_from_slice(&[10, 0, 0, 2]);
            f.extend(h);
        }
        f.extend([0x03, 0xE8, 0x07, 0xD0, 0, 0, 0, 0]);
        f
    }

    #[test]
    fn the_fields_pick_the_rss_type_and_the_input() {
        use rss_type::*;
        let all =
            MRQC_IPV4 | MRQC_IPV4_TCP | MRQC_IPV4_UDP | MRQC_IPV6 | MRQC_IPV6_TCP | MRQC_IPV6_UDP;
        let k = &DEFAULT_KEY;
        for (v6, proto, want) in [
            (false, 6, IPV4_TCP),
            (false, 17, IPV4_UDP),
            (false, 1, IPV4),
            (true, 6, IPV6_TCP),
            (true, 17, IPV6_UDP),
            (true, 58, IPV6),
        ] {
            let f = frame(v6, proto);
            let (h, ty) = hash(&f, k, all).unwrap();
            assert_eq!(ty, want);
            let flow = toeplitz::parse(&f).unwrap();
            let (b, n) = toeplitz::input(
                &flow,
                matches!(ty, IPV4_TCP | IPV4_UDP | IPV6_TCP | IPV6_UDP),
            );
            assert_eq!(h, toeplitz::toeplitz(k, &b[..n]));
        }
        // Without the UDP field a UDP frame hashes on its addresses.
        let f = frame(false, 17);
        assert_eq!(hash(&f, k, MRQC_IPV4).unwrap().1, IPV4);
        assert_eq!(
            hash(&f, k, MRQC_IPV4).unwrap().0,
            hash(&frame(false, 1), k, all).unwrap().0
        );
        // No field for it: no hash.
        assert_eq!(hash(&frame(true, 6), k, MRQC_IPV4 | MRQC_IPV4_TCP), None);
        assert_eq!(hash(&[0u8; 60], k, all), None);
    }

    #[test]
    fn get_reta_packs_two_bits_lowest_first() {
        let rss = PfRss::spread(4);
        let w = rss.reta_words();
        assert_eq!(w.len(), 8);
        // Entries 0,1,2,3,0,1,... → 0b11_10_01_00 repeated.
        assert!(w.iter().all(|x| *x == 0xE4E4_E4E4));
        assert_eq!(rss.key_words()[0], 0xDA56_5A6D);
        assert_eq!(
            [pool_queues(0), pool_queues(1 << 29), pool_queues(2 << 29)],
            [1, 2, 4]
        );
    }
}
