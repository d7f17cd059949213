//! The Toeplitz hash receive-side scaling uses, and the header fields it
//! runs over, for the device models.
//!
//! The hash is the one Microsoft's RSS specification defines ("RSS Hashing
//! Functions" and "Verifying the RSS Hash Calculation", Microsoft Learn,
//! learn.microsoft.com/windows-hardware/drivers/network/): for each input
//! bit from the most significant bit of the first byte on, when the bit
//! is 1 the result is XOR-ed with the 32 key bits starting at that bit's
//! position. The input is source address, destination address, then (for
//! a 4-tuple) source port and destination port, all in network order.
//! nic-facts.md does not describe the hash; it gives the ixgbe field
//! selection (A.3 VFMRQC) and the write-back RSS types (A.4.2). The tests
//! below hold it against the verification suite's published values; the
//! same key and table are the 82599 datasheet's "RSS Verification Suite"
//! (7.1.2.8.3), as reproduced in DPDK's app/test/test_thash.c, where
//! every value used here was checked.

/// The most input bytes a 40-byte key covers: an IPv6 4-tuple
/// (16 + 16 + 2 + 2), 32 bits short of the key.
pub const MAX_INPUT: usize = 36;

/// The Toeplitz hash of `input` under `key` (the key must be at least 4
/// bytes longer than the input; extra input bits hash as if the key
/// continued with zeros).
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    let bit = |i: usize| -> u64 { key.get(i / 8).map_or(0, |b| (*b >> (7 - i % 8)) as u64 & 1) };
    // A 64-bit window over the key, its top 32 bits lined up with the
    // current input bit.
    let mut window: u64 = 0;
    for i in 0..64 {
        window = window << 1 | bit(i);
    }
    let mut hash = 0u32;
    for (n, byte) in input.iter().enumerate() {
        for b in 0..8 {
            if byte & (0x80 >> b) != 0 {
                hash ^= (window >> 32) as u32;
            }
            window = window << 1 | bit(64 + n * 8 + b);
        }
    }
    hash
}

/// Which header a frame's hash can cover, by layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4 {
    /// TCP, with its ports.
    Tcp(u16, u16),
    /// UDP, with its ports.
    Udp(u16, u16),
    /// Anything else, a fragment, or an IPv6 header chain the parser does
    /// not follow: the addresses only.
    Other,
}

/// The hashable headers of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// IPv4: source, destination, L4.
    V4([u8; 4], [u8; 4], L4),
    /// IPv6: source, destination, L4.
    V6([u8; 16], [u8; 16], L4),
}

const ETH_HDR: usize = 14;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn ports(f: &[u8], at: usize, proto: u8) -> L4 {
    match (proto, be16(f, at), be16(f, at + 2)) {
        (PROTO_TCP, Some(s), Some(d)) => L4::Tcp(s, d),
        (PROTO_UDP, Some(s), Some(d)) => L4::Udp(s, d),
        _ => L4::Other,
    }
}

/// The IP flow of an Ethernet frame (one 802.1Q tag allowed), or `None`
/// when it is not IP or too short. An IPv4 fragment, and IPv6 with an
/// extension header, hash on the addresses only: the model does not
/// produce the _EX types (A.4.2 RSS types 4, 6, 9).
pub fn parse(f: &[u8]) -> Option<Flow> {
    let mut l3 = ETH_HDR;
    let mut ethertype = be16(f, 12)?;
    if ethertype == ETHERTYPE_VLAN {
        ethertype = be16(f, 16)?;
        l3 += 4;
    }
    match ethertype {
        ETHERTYPE_IPV4 => {
            let h = f.get(l3..l3 + 20)?;
            if h[0] >> 4 != 4 {
                return None;
            }
            let ihl = usize::from(h[0] & 0xF) * 4;
            let frag = u16::from_be_bytes([h[6], h[7]]) & 0x3FFF; // MF + offset
            let l4 = if frag == 0 && ihl >= 20 {
                ports(f, l3 + ihl, h[9])
            } else {
                L4::Other
            };
            let (s, d) = (h[12..16].try_into().ok()?, h[16..20].try_into().ok()?);
            Some(Flow::V4(s, d, l4))
        }
        ETHERTYPE_IPV6 => {
            let h = f.get(l3..l3 + 40)?;
            if h[0] >> 4 != 6 {
                return None;
            }
            let l4 = ports(f, l3 + 40, h[6]);
            let (s, d) = (h[8..24].try_into().ok()?, h[24..40].try_into().ok()?);
            Some(Flow::V6(s, d, l4))
        }
        _ => None,
    }
}

/// The hash input for `flow`: addresses, then the ports if `with_ports`.
/// Returns the buffer and how much of it is used.
pub fn input(flow: &Flow, with_ports: bool) -> ([u8; MAX_INPUT], usize) {
    let mut b = [0u8; MAX_INPUT];
    let (addrs, l4): (usize, L4) = match flow {
        Flow::V4(s, d, l4) => {
            b[..4].copy_from_slice(s);
            b[4..8].copy_from_slice(d);
            (8, *l4)
        }
        Flow::V6(s, d, l4) => {
            b[..16].copy_from_slice(s);
            b[16..32].copy_from_slice(d);
            (32, *l4)
        }
    };
    match l4 {
        L4::Tcp(s, d) | L4::Udp(s, d) if with_ports => {
            b[addrs..addrs + 2].copy_from_slice(&s.to_be_bytes());
            b[addrs + 2..addrs + 4].copy_from_slice(&d.to_be_bytes());
            (b, addrs + 4)
        }
        _ => (b, addrs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key of Microsoft's "Verifying the RSS Hash Calculation".
    const MS_KEY: [u8; 40] = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f,
        0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
        0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
    ];

    fn v4(a: &str) -> [u8; 4] {
        a.parse::<std::net::Ipv4Addr>().unwrap().octets()
    }

    fn v6(a: &str) -> [u8; 16] {
        a.parse::<std::net::Ipv6Addr>().unwrap().octets()
    }

    /// The suite's IPv4 table: (destination, port, source, port, hash of
    /// the addresses, hash of the 4-tuple with TCP).
    #[test]
    fn microsoft_ipv4_vectors() {
        let table = [
            (
                "161.142.100.80",
                1766,
                "66.9.149.187",
                2794,
                0x323e8fc2,
                0x51ccc178,
            ),
            (
                "65.69.140.83",
                4739,
                "199.92.111.2",
                14230,
                0xd718262a,
                0xc626b0ea,
            ),
            (
                "12.22.207.184",
                38024,
                "24.19.198.95",
                12898,
                0xd2d0a5de,
                0x5c2b394a,
            ),
            (
                "209.142.163.6",
                2217,
                "38.27.205.30",
                48228,
                0x82989176,
                0xafc7327f,
            ),
            (
                "202.188.127.2",
                1303,
                "153.39.163.191",
                44251,
                0x5d1809c5,
                0x10e828a2,
            ),
        ];
        for (dst, dp, src, sp, ip, tcp) in table {
            let flow = Flow::V4(v4(src), v4(dst), L4::Tcp(sp, dp));
            let (b, n) = input(&flow, false);
            assert_eq!(toeplitz(&MS_KEY, &b[..n]), ip, "{src} -> {dst}");
            let (b, n) = input(&flow, true);
            assert_eq!(toeplitz(&MS_KEY, &b[..n]), tcp, "{src}:{sp} -> {dst}:{dp}");
        }
    }

    /// The suite's IPv6 table, same columns.
    #[test]
    fn microsoft_ipv6_vectors() {
        let table = [
            (
                "3ffe:2501:200:3::1",
                1766,
                "3ffe:2501:200:1fff::7",
                2794,
                0x2cc18cd5,
                0x40207d3d,
            ),
            (
                "ff02::1",
                4739,
                "3ffe:501:8::260:97ff:fe40:efab",
                14230,
                0x0f0c461c,
                0xdde51bbf,
            ),
            (
                "fe80::200:f8ff:fe21:67cf",
                38024,
                "3ffe:1900:4545:3:200:f8ff:fe21:67cf",
                44251,
                0x4b61e985,
                0x02d1feef,
            ),
        ];
        for (dst, dp, src, sp, ip, tcp) in table {
            let flow = Flow::V6(v6(src), v6(dst), L4::Tcp(sp, dp));
            let (b, n) = input(&flow, false);
            assert_eq!(toeplitz(&MS_KEY, &b[..n]), ip, "{src} -> {dst}");
            let (b, n) = input(&flow, true);
            assert_eq!(toeplitz(&MS_KEY, &b[..n]), tcp, "{src}:{sp} -> {dst}:{dp}");
        }
    }

    #[test]
    fn frames_parse_to_their_flows() {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        f[14] = 0x45;
        f[14 + 9] = PROTO_UDP;
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 0, 0, 2]);
        f[34..38].copy_from_slice(&[0x12, 0x34, 0x56, 0x78]);
        assert_eq!(
            parse(&f),
            Some(Flow::V4(
                [10, 0, 0, 1],
                [10, 0, 0, 2],
                L4::Udp(0x1234, 0x5678)
            ))
        );
        // A fragment: addresses only.
        f[14 + 6] = 0x20; // MF
        assert_eq!(
            parse(&f),
            Some(Flow::V4([10, 0, 0, 1], [10, 0, 0, 2], L4::Other))
        );
        // Truncated and non-IP frames have no flow.
        assert_eq!(parse(&f[..20]), None);
        f[12] = 0x88;
        assert_eq!(parse(&f), None);
    }
}
