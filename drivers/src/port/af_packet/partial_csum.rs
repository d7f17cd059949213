//! Frames whose UDP or TCP checksum was never finished: the kernel marks
//! them `TP_STATUS_CSUMNOTREADY` (its `CHECKSUM_PARTIAL`: the sender left
//! the checksum to an offload, as a veth's peer with transmit checksum
//! offload on does, and no device ever ran it). Their checksum field holds
//! only the pseudo-header's sum; forwarded as they are, the receiver drops
//! them as corrupt. [`complete`] finishes the checksum in place, as the
//! offload would have.
//!
//! What the field holds and how it is finished (the kernel's contract for
//! `CHECKSUM_PARTIAL`, include/linux/skbuff.h): the folded ones' complement
//! sum of the pseudo-header, not inverted; the checksum is then the
//! inverted ones' complement sum (RFC 1071) of everything from the start
//! of the UDP or TCP header to the end of the IP packet, that field
//! included. A result of 0 is sent as 0xffff (RFC 768: 0 would mean "no
//! checksum" for UDP; the two are the same number in ones' complement).
//!
//! Known: Ethernet with up to two VLAN tags, IPv4 (not a fragment), IPv6
//! whose next header is UDP or TCP directly. Anything else is left as it
//! is (the kernel's own senders put extension headers only on traffic a
//! router punts anyway).

/// EtherTypes (IEEE 802 numbers).
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
/// IP protocol numbers (IANA): TCP (RFC 9293), UDP (RFC 768).
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
/// Offset of the checksum in a TCP header (RFC 9293 3.1) and in a UDP
/// header (RFC 768).
const TCP_CHECKSUM: usize = 16;
const UDP_CHECKSUM: usize = 6;
/// The IPv6 fixed header (RFC 8200 3).
const IPV6_HEADER: usize = 40;
/// The smallest IPv4 header (RFC 791 3.1: IHL 5).
const IPV4_MIN_HEADER: usize = 20;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let bytes = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

/// Where the UDP or TCP segment is: its start, its end, its protocol.
fn locate(frame: &[u8]) -> Option<(usize, usize, u8)> {
    let mut at = 12;
    let mut ethertype = u16_at(frame, at)?;
    for _ in 0..2 {
        if ethertype != ETHERTYPE_VLAN && ethertype != ETHERTYPE_QINQ {
            break;
        }
        at += 4;
        ethertype = u16_at(frame, at)?;
    }
    let l3 = at + 2;
    match ethertype {
        ETHERTYPE_IPV4 => {
            let ver_ihl = *frame.get(l3)?;
            let ihl = usize::from(ver_ihl & 0x0f) * 4;
            let total = usize::from(u16_at(frame, l3 + 2)?);
            // Flags and fragment offset: a fragment's checksum covers the
            // whole datagram, which this frame is not.
            let more_or_offset = u16_at(frame, l3 + 6)? & 0x3fff;
            let end = l3.checked_add(total)?;
            if ver_ihl >> 4 != 4
                || ihl < IPV4_MIN_HEADER
                || total < ihl
                || end > frame.len()
                || more_or_offset != 0
            {
                return None;
            }
            Some((l3 + ihl, end, *frame.get(l3 + 9)?))
        }
        ETHERTYPE_IPV6 => {
            if *frame.get(l3)? >> 4 != 6 {
                return None;
            }
            let payload = usize::from(u16_at(frame, l3 + 4)?);
            let next = *frame.get(l3 + 6)?;
            let l4 = l3 + IPV6_HEADER;
            let end = l4.checked_add(payload)?;
            (end <= frame.len()).then_some((l4, end, next))
        }
        _ => None,
    }
}

/// The ones' complement sum of `b` as 16-bit big-endian words (an odd
/// last byte padded with zero), folded to 16 bits (RFC 1071).
fn ones_sum(b: &[u8]) -> u16 {
    let mut sum: u64 = b
        .chunks(2)
        .map(|w| u64::from(u16::from_be_bytes([w[0], w.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Finishes the UDP or TCP checksum of `frame` in place (see the module
/// docs). False, and the frame untouched, when it is not one it knows.
pub fn complete(frame: &mut [u8]) -> bool {
    let Some((l4, end, proto)) = locate(frame) else {
        return false;
    };
    let field = match proto {
        PROTO_UDP => UDP_CHECKSUM,
        PROTO_TCP => TCP_CHECKSUM,
        _ => return false,
    };
    let Some(segment) = frame.get(l4..end) else {
        return false;
    };
    if segment.len() < field + 2 {
        return false;
    }
    let checksum = match !ones_sum(segment) {
        0 => 0xffff,
        c => c,
    };
    let at = l4 + field;
    frame[at..at + 2].copy_from_slice(&checksum.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The pseudo-header's words (RFC 768 / RFC 8200 8.1): addresses,
    /// protocol, length.
    fn pseudo(src: &[u8], dst: &[u8], proto: u8, len: usize) -> Vec<u8> {
        let mut p = src.to_vec();
        p.extend_from_slice(dst);
        if src.len() == 4 {
            p.extend_from_slice(&[0, proto]);
            p.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            p.extend_from_slice(&(len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, proto]);
        }
        p
    }

    /// A frame with its L4 checksum as a sender with offload leaves it
    /// (the pseudo-header sum), and the checksum a full computation gives.
    fn frame(v6: bool, proto: u8, tags: usize, payload: &[u8]) -> (Vec<u8>, u16, usize) {
        let (src, dst): (Vec<u8>, Vec<u8>) = if v6 {
            ((1..=16).collect(), (17..=32).collect())
        } else {
            (vec![10, 0, 1, 2], vec![10, 0, 2, 2])
        };
        let mut l4 = match proto {
            PROTO_UDP => {
                let len = (8 + payload.len()) as u16;
                let mut h = vec![0x30, 0x39, 0x00, 0x09];
                h.extend_from_slice(&len.to_be_bytes());
                h.extend_from_slice(&[0, 0]);
                h
            }
            _ => {
                let mut h = vec![0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18];
                h.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
                h
            }
        };
        l4.extend_from_slice(payload);
        let field = if proto == PROTO_UDP {
            UDP_CHECKSUM
        } else {
            TCP_CHECKSUM
        };
        let ph = pseudo(&src, &dst, proto, l4.len());
        let mut all = ph.clone();
        all.extend_from_slice(&l4);
        let full = match !ones_sum(&all) {
            0 => 0xffff,
            c => c,
        };
        l4[field..field + 2].copy_from_slice(&ones_sum(&ph).to_be_bytes());
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        for _ in 0..tags {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
        }
        let l3 = if v6 {
            f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
            let mut h = vec![0x60, 0, 0, 0];
            h.extend_from_slice(&(l4.len() as u16).to_be_bytes());
            h.extend_from_slice(&[proto, 64]);
            h.extend_from_slice(&src);
            h.extend_from_slice(&dst);
            h
        } else {
            f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            let mut h = vec![0x45, 0];
            h.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
            h.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
            h.extend_from_slice(&src);
            h.extend_from_slice(&dst);
            h
        };
        let at = f.len() + l3.len() + field;
        f.extend_from_slice(&l3);
        f.extend_from_slice(&l4);
        (f, full, at)
    }

    fn checksum_at(f: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([f[at], f[at + 1]])
    }

    /// A UDP datagram from 10.0.1.2:12345 to 10.0.2.2:9 carrying "x\n",
    /// worked out by hand: the pseudo-header's words 0a00 0102 0a00 0202
    /// 0011 000a sum to 0x171f (what the sender leaves in the field). The
    /// segment's words 3039 0009 000a 171f 780a sum to 0xbf75, inverted
    /// 0x408a.
    #[test]
    fn a_udp_datagram_worked_by_hand() {
        let (mut f, full, at) = frame(false, PROTO_UDP, 0, b"x\n");
        assert_eq!(checksum_at(&f, at), 0x171f);
        assert!(complete(&mut f));
        assert_eq!(checksum_at(&f, at), 0x408a);
        assert_eq!(full, 0x408a);
    }

    #[test]
    fn tcp_ipv6_and_tagged_frames() {
        for (v6, proto, tags) in [
            (false, PROTO_TCP, 0),
            (true, PROTO_UDP, 0),
            (true, PROTO_TCP, 1),
            (false, PROTO_UDP, 2),
        ] {
            let (mut f, full, at) = frame(v6, proto, tags, b"some payload, odd length");
            assert!(complete(&mut f), "{v6} {proto} {tags}");
            assert_eq!(checksum_at(&f, at), full, "{v6} {proto} {tags}");
        }
    }

    #[test]
    fn what_it_does_not_know_is_left_alone() {
        let (mut f, _, _) = frame(false, PROTO_UDP, 0, b"abc");
        // A fragment (more fragments set).
        f[14 + 6] = 0x20;
        let before = f.clone();
        assert!(!complete(&mut f));
        assert_eq!(f, before);
        // ICMP, ARP, a frame cut inside its IP header.
        let (mut f, _, _) = frame(false, PROTO_UDP, 0, b"abc");
        f[14 + 9] = 1;
        assert!(!complete(&mut f));
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!complete(&mut arp));
        let (f, _, _) = frame(true, PROTO_TCP, 0, b"abc");
        assert!(!complete(&mut f[..30].to_vec()));
    }

    proptest! {
        #[test]
        fn no_panic_on_any_bytes(mut bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = complete(&mut bytes);
        }

        #[test]
        fn agrees_with_a_full_computation(
            v6 in any::<bool>(),
            tcp in any::<bool>(),
            tags in 0usize..3,
            payload in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            let proto = if tcp { PROTO_TCP } else { PROTO_UDP };
            let (mut f, full, at) = frame(v6, proto, tags, &payload);
            prop_assert!(complete(&mut f));
            prop_assert_eq!(checksum_at(&f, at), full);
        }
    }
}
