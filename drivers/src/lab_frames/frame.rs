//! The lab's frame format: how a frame is built and how a received one is
//! judged.
//!
//! Every frame is Ethernet II with EtherType 0x88B5 (IEEE 802 "local
//! experimental", which no kernel stack answers), then a 36-byte header,
//! then the body:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 6 | destination MAC |
//! | 6 | 6 | source MAC |
//! | 12 | 2 | EtherType 0x88B5 |
//! | 14 | 4 | magic `VFUF` |
//! | 18 | 1 | version (1) |
//! | 19 | 1 | kind: 1 hello, 2 hello answer, 3 data, 4 acknowledgement |
//! | 20 | 1 | direction: 1 guest to host, 2 host to guest |
//! | 21 | 1 | 0 |
//! | 22 | 4 | round |
//! | 26 | 4 | sequence number (data), else 0 |
//! | 30 | 2 | length of the whole frame |
//! | 32 | 4 | CRC-32 of the frame with these four bytes left out |
//! | 36 | .. | body |
//!
//! All numbers are big-endian. A data frame's length (60 to 1514 bytes)
//! and every byte of its body follow from (direction, round, sequence), so
//! the receiver rebuilds what it should have got and compares. The CRC
//! (IEEE 802.3's polynomial, reflected) covers the MAC addresses and the
//! header too; a CRC-32 catches every error burst of up to 32 bits, so any
//! one corrupted byte, wherever it is, is caught. Control frames are 60
//! bytes; their body holds a few counts (see [`Control`]) and zeros. A
//! hello may go to the broadcast address (a guest that was not told the
//! host's MAC); every other frame goes to its receiver's MAC.

use crate::net::MacAddr;

/// IEEE 802 local experimental EtherType 1.
pub const ETHERTYPE: u16 = 0x88b5;
/// What every lab frame carries after the Ethernet header.
pub const MAGIC: [u8; 4] = *b"VFUF";
/// Format version.
pub const VERSION: u8 = 1;
/// Shortest frame: Ethernet's minimum without the FCS.
pub const MIN_FRAME: usize = 60;
/// Longest frame: a 1500-byte MTU plus the Ethernet header.
pub const MAX_FRAME: usize = 1514;
/// Ethernet header and lab header.
pub const HEADER_LEN: usize = 36;

const OFF_ETHERTYPE: usize = 12;
const OFF_MAGIC: usize = 14;
const OFF_VERSION: usize = 18;
const OFF_KIND: usize = 19;
const OFF_DIR: usize = 20;
const OFF_ZERO: usize = 21;
const OFF_ROUND: usize = 22;
const OFF_SEQ: usize = 26;
const OFF_LEN: usize = 30;
const OFF_CRC: usize = 32;

/// Which way a frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the guest's driver to the host's.
    GuestToHost = 1,
    /// From the host's driver to the guest's.
    HostToGuest = 2,
}

impl Direction {
    fn from_byte(b: u8) -> Option<Direction> {
        match b {
            1 => Some(Direction::GuestToHost),
            2 => Some(Direction::HostToGuest),
            _ => None,
        }
    }

    /// The other way.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::GuestToHost => Direction::HostToGuest,
            Direction::HostToGuest => Direction::GuestToHost,
        }
    }
}

const KIND_HELLO: u8 = 1;
const KIND_HELLO_ANSWER: u8 = 2;
const KIND_DATA: u8 = 3;
const KIND_ACK: u8 = 4;

/// A control frame's meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// The guest asks to start a round of `count` frames each way.
    Hello {
        /// Frames each way.
        count: u32,
    },
    /// The host's answer to a hello, with its own count.
    HelloAnswer {
        /// Frames each way.
        count: u32,
    },
    /// How far the sender got: data frames it verified, and whether it has
    /// finished (all the other side's frames verified and all its own
    /// acknowledged).
    Ack {
        /// Distinct data frames verified so far.
        verified: u32,
        /// The lowest sequence number not verified yet (the count when all
        /// are): the sender goes back to it when acknowledgements stall.
        next_missing: u32,
        /// The sender is finished with the round.
        done: bool,
    },
}

/// What a received frame turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A data frame, every byte as expected.
    Data {
        /// Its sequence number.
        seq: u32,
    },
    /// An intact control frame.
    Control(Control),
    /// Not a lab frame (another EtherType): the kernel's own traffic.
    Other,
    /// Shorter than its header or its length field says.
    Truncated,
    /// A lab frame whose bytes are not what they should be: bad CRC, bad
    /// length, bad body, an unknown kind or direction.
    Corrupt,
    /// EtherType 0x88B5 but not ours (other magic or version), or ours but
    /// from or to another station, or going the receiver's own way.
    Foreign,
    /// Intact, but of another round.
    WrongRound,
}

/// What a receiver expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expect {
    /// Its own MAC (the frames' destination).
    pub me: MacAddr,
    /// The sender's MAC, once known.
    pub peer: Option<MacAddr>,
    /// The direction of the frames it receives.
    pub dir: Direction,
    /// The round.
    pub round: u32,
    /// Data frames of the round (sequence numbers 0 to count - 1).
    pub count: u32,
}

/// One round of splitmix64 (Steele, Lea, Flood: "Fast splittable
/// pseudorandom number generators", 2014): a cheap, well-mixed stream.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn seed(dir: Direction, round: u32, seq: u32) -> u64 {
    ((dir as u64) << 62) ^ ((round as u64) << 32) ^ seq as u64
}

/// The length of data frame `seq`: 60 for sequence 0, 1514 for 1, and
/// spread over 60..=1514 for the others, so every run has both extremes.
pub fn data_len(dir: Direction, round: u32, seq: u32) -> usize {
    match seq {
        0 => MIN_FRAME,
        1 => MAX_FRAME,
        _ => {
            let mut s = seed(dir, round, seq) ^ 0x5eed_1e57;
            MIN_FRAME + (splitmix(&mut s) % (MAX_FRAME - MIN_FRAME + 1) as u64) as usize
        }
    }
}

/// Fills `body` with data frame `seq`'s bytes.
fn fill_body(dir: Direction, round: u32, seq: u32, body: &mut [u8]) {
    let mut s = seed(dir, round, seq);
    for chunk in body.chunks_mut(8) {
        let v = splitmix(&mut s).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// Whether `body` is data frame `seq`'s body, without building it.
fn body_matches(dir: Direction, round: u32, seq: u32, body: &[u8]) -> bool {
    let mut s = seed(dir, round, seq);
    body.chunks(8)
        .all(|chunk| chunk == &splitmix(&mut s).to_le_bytes()[..chunk.len()])
}

/// CRC-32 lookup table (IEEE 802.3 polynomial 0x04C11DB7, reflected).
const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

fn crc_update(mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        crc = CRC_TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// The CRC of a frame of `len` bytes: everything but the CRC field.
fn frame_crc(frame: &[u8]) -> u32 {
    let crc = crc_update(!0, &frame[..OFF_CRC]);
    !crc_update(crc, &frame[HEADER_LEN..])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn put_header(
    f: &mut [u8],
    dst: MacAddr,
    src: MacAddr,
    kind: u8,
    dir: Direction,
    round: u32,
    seq: u32,
) {
    f[..6].copy_from_slice(&dst.0);
    f[6..12].copy_from_slice(&src.0);
    f[OFF_ETHERTYPE..OFF_MAGIC].copy_from_slice(&ETHERTYPE.to_be_bytes());
    f[OFF_MAGIC..OFF_VERSION].copy_from_slice(&MAGIC);
    f[OFF_VERSION] = VERSION;
    f[OFF_KIND] = kind;
    f[OFF_DIR] = dir as u8;
    f[OFF_ZERO] = 0;
    f[OFF_ROUND..OFF_SEQ].copy_from_slice(&round.to_be_bytes());
    f[OFF_SEQ..OFF_LEN].copy_from_slice(&seq.to_be_bytes());
    // Cannot truncate: frames are at most MAX_FRAME bytes.
    let len = f.len() as u16;
    f[OFF_LEN..OFF_CRC].copy_from_slice(&len.to_be_bytes());
}

fn seal(f: &mut [u8]) {
    let crc = frame_crc(f);
    f[OFF_CRC..HEADER_LEN].copy_from_slice(&crc.to_be_bytes());
}

/// Writes data frame `seq` at the start of `buf` (at least [`MAX_FRAME`]
/// bytes) and returns its length.
pub fn write_data(
    buf: &mut [u8],
    dst: MacAddr,
    src: MacAddr,
    dir: Direction,
    round: u32,
    seq: u32,
) -> usize {
    let len = data_len(dir, round, seq);
    let f = &mut buf[..len];
    put_header(f, dst, src, KIND_DATA, dir, round, seq);
    fill_body(dir, round, seq, &mut f[HEADER_LEN..]);
    seal(f);
    len
}

/// Writes a control frame at the start of `buf` (at least [`MIN_FRAME`]
/// bytes) and returns its length.
pub fn write_control(
    buf: &mut [u8],
    dst: MacAddr,
    src: MacAddr,
    dir: Direction,
    round: u32,
    control: Control,
) -> usize {
    let f = &mut buf[..MIN_FRAME];
    let (kind, a, b, c) = match control {
        Control::Hello { count } => (KIND_HELLO, count, 0, 0),
        Control::HelloAnswer { count } => (KIND_HELLO_ANSWER, count, 0, 0),
        Control::Ack {
            verified,
            done,
            next_missing,
        } => (KIND_ACK, verified, done as u32, next_missing),
    };
    put_header(f, dst, src, kind, dir, round, 0);
    f[HEADER_LEN..].fill(0);
    f[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&a.to_be_bytes());
    f[HEADER_LEN + 4..HEADER_LEN + 8].copy_from_slice(&b.to_be_bytes());
    f[HEADER_LEN + 8..HEADER_LEN + 12].copy_from_slice(&c.to_be_bytes());
    seal(f);
    MIN_FRAME
}

/// Judges a received frame. Never panics, whatever the bytes.
pub fn classify(f: &[u8], expect: &Expect) -> Verdict {
    if f.len() < OFF_MAGIC || f[OFF_ETHERTYPE..OFF_MAGIC] != ETHERTYPE.to_be_bytes() {
        return Verdict::Other;
    }
    if f.len() < HEADER_LEN {
        return Verdict::Truncated;
    }
    if f[OFF_MAGIC..OFF_VERSION] != MAGIC || f[OFF_VERSION] != VERSION {
        return Verdict::Foreign;
    }
    let len = u16::from_be_bytes([f[OFF_LEN], f[OFF_LEN + 1]]) as usize;
    if f.len() < len {
        return Verdict::Truncated;
    }
    // Longer than it says: no device pads a frame of 60 bytes or more.
    if f.len() > len || be32(f, OFF_CRC) != frame_crc(f) {
        return Verdict::Corrupt;
    }
    // Intact from here: whatever is wrong was sent that way.
    let Some(dir) = Direction::from_byte(f[OFF_DIR]) else {
        return Verdict::Corrupt;
    };
    let dst = &f[..6];
    let src = &f[6..12];
    // A hello may go to everyone: the guest need not know the host's MAC.
    let to_me = dst == expect.me.0 || (f[OFF_KIND] == KIND_HELLO && dst == MacAddr::BROADCAST.0);
    if dir != expect.dir || !to_me || expect.peer.is_some_and(|p| src != p.0) {
        return Verdict::Foreign;
    }
    let round = be32(f, OFF_ROUND);
    if round != expect.round {
        return Verdict::WrongRound;
    }
    let seq = be32(f, OFF_SEQ);
    let (a, b, c) = if len >= HEADER_LEN + 12 {
        (
            be32(f, HEADER_LEN),
            be32(f, HEADER_LEN + 4),
            be32(f, HEADER_LEN + 8),
        )
    } else {
        (0, 0, 0)
    };
    let control = |c| {
        // The length first: the body is only there in a 60-byte frame.
        let clean = len == MIN_FRAME
            && seq == 0
            && f[OFF_ZERO] == 0
            && f[HEADER_LEN + 12..].iter().all(|&x| x == 0);
        if clean {
            Verdict::Control(c)
        } else {
            Verdict::Corrupt
        }
    };
    match f[OFF_KIND] {
        KIND_DATA => {
            let good = seq < expect.count
                && f[OFF_ZERO] == 0
                && len == data_len(dir, round, seq)
                && body_matches(dir, round, seq, &f[HEADER_LEN..]);
            if good {
                Verdict::Data { seq }
            } else {
                Verdict::Corrupt
            }
        }
        KIND_HELLO if b == 0 && c == 0 => control(Control::Hello { count: a }),
        KIND_HELLO_ANSWER if b == 0 && c == 0 => control(Control::HelloAnswer { count: a }),
        KIND_ACK if b <= 1 && c <= expect.count => control(Control::Ack {
            verified: a,
            done: b == 1,
            next_missing: c,
        }),
        _ => Verdict::Corrupt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GUEST: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
    const HOST: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);

    /// What the host expects of the guest's frames in round `round`.
    fn at_host(round: u32, count: u32) -> Expect {
        Expect {
            me: HOST,
            peer: Some(GUEST),
            dir: Direction::GuestToHost,
            round,
            count,
        }
    }

    fn data(round: u32, seq: u32) -> Vec<u8> {
        let mut buf = vec![0u8; MAX_FRAME];
        let n = write_data(&mut buf, HOST, GUEST, Direction::GuestToHost, round, seq);
        buf.truncate(n);
        buf
    }

    fn control(round: u32, c: Control) -> Vec<u8> {
        let mut buf = vec![0u8; MIN_FRAME];
        let n = write_control(&mut buf, HOST, GUEST, Direction::GuestToHost, round, c);
        assert_eq!(n, MIN_FRAME);
        buf
    }

    #[test]
    fn lengths_cover_the_range_and_both_extremes() {
        let d = Direction::HostToGuest;
        assert_eq!(data_len(d, 1, 0), MIN_FRAME);
        assert_eq!(data_len(d, 1, 1), MAX_FRAME);
        let lens: Vec<usize> = (0..10_000).map(|s| data_len(d, 1, s)).collect();
        assert!(lens.iter().all(|l| (MIN_FRAME..=MAX_FRAME).contains(l)));
        // Spread, not clustered: every tenth of the range is used.
        for tenth in 0..10 {
            let lo = MIN_FRAME + tenth * (MAX_FRAME - MIN_FRAME) / 10;
            let hi = MIN_FRAME + (tenth + 1) * (MAX_FRAME - MIN_FRAME) / 10;
            assert!(lens.iter().any(|l| (lo..=hi).contains(l)), "{lo}..{hi}");
        }
        // Deterministic, and different per direction and round.
        assert_eq!(data_len(d, 1, 77), data_len(d, 1, 77));
        let other_dir: Vec<usize> = (0..100).map(|s| data_len(d.reverse(), 1, s)).collect();
        let other_round: Vec<usize> = (0..100).map(|s| data_len(d, 2, s)).collect();
        assert_ne!(other_dir, lens[..100]);
        assert_ne!(other_round, lens[..100]);
    }

    #[test]
    fn intact_frames_are_recognised() {
        let e = at_host(3, 100);
        for seq in [0, 1, 2, 50, 99] {
            assert_eq!(classify(&data(3, seq), &e), Verdict::Data { seq });
        }
        for c in [
            Control::Hello { count: 10_000 },
            Control::HelloAnswer { count: 7 },
            Control::Ack {
                verified: 42,
                done: false,
                next_missing: 40,
            },
            Control::Ack {
                verified: 100,
                done: true,
                next_missing: 100,
            },
        ] {
            assert_eq!(classify(&control(3, c), &e), Verdict::Control(c));
        }
        // Before the sender is known, any source will do.
        let unknown = Expect { peer: None, ..e };
        assert_eq!(classify(&data(3, 5), &unknown), Verdict::Data { seq: 5 });
        // A hello may be broadcast; nothing else may.
        let mut buf = vec![0u8; MAX_FRAME];
        let all = MacAddr::BROADCAST;
        let hello = Control::Hello { count: 100 };
        let n = write_control(&mut buf, all, GUEST, Direction::GuestToHost, 3, hello);
        assert_eq!(classify(&buf[..n], &e), Verdict::Control(hello));
        let ack = Control::Ack {
            verified: 1,
            done: false,
            next_missing: 0,
        };
        let n = write_control(&mut buf, all, GUEST, Direction::GuestToHost, 3, ack);
        assert_eq!(classify(&buf[..n], &e), Verdict::Foreign);
        let n = write_data(&mut buf, all, GUEST, Direction::GuestToHost, 3, 5);
        assert_eq!(classify(&buf[..n], &e), Verdict::Foreign);
    }

    #[test]
    fn each_kind_of_bad_frame_is_told_apart() {
        let e = at_host(3, 100);
        let good = data(3, 7);
        // Other EtherTypes, and runts, are not ours.
        let mut ipv6 = good.clone();
        ipv6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        assert_eq!(classify(&ipv6, &e), Verdict::Other);
        assert_eq!(classify(&good[..10], &e), Verdict::Other);
        // Cut short: inside the header, or before the stated length.
        assert_eq!(classify(&good[..20], &e), Verdict::Truncated);
        assert_eq!(classify(&good[..good.len() - 1], &e), Verdict::Truncated);
        // Longer than stated.
        let mut long = good.clone();
        long.push(0);
        assert_eq!(classify(&long, &e), Verdict::Corrupt);
        // Another protocol on the same EtherType.
        let mut alien = good.clone();
        alien[OFF_MAGIC] = b'X';
        assert_eq!(classify(&alien, &e), Verdict::Foreign);
        // Intact but from or to someone else, or going the other way.
        let mut buf = vec![0u8; MAX_FRAME];
        let stranger = MacAddr([0x02, 9, 9, 9, 9, 9]);
        let n = write_data(&mut buf, HOST, stranger, Direction::GuestToHost, 3, 7);
        assert_eq!(classify(&buf[..n], &e), Verdict::Foreign);
        let n = write_data(&mut buf, stranger, GUEST, Direction::GuestToHost, 3, 7);
        assert_eq!(classify(&buf[..n], &e), Verdict::Foreign);
        let n = write_data(&mut buf, HOST, GUEST, Direction::HostToGuest, 3, 7);
        assert_eq!(classify(&buf[..n], &e), Verdict::Foreign);
        // Intact, of the previous round.
        assert_eq!(classify(&data(2, 7), &e), Verdict::WrongRound);
        // A sequence number beyond the round's count.
        assert_eq!(classify(&data(3, 100), &e), Verdict::Corrupt);
    }

    /// Frames that are intact by CRC but wrong inside (a sender with
    /// another generator) are still refused.
    #[test]
    fn a_resealed_wrong_frame_is_corrupt() {
        let e = at_host(3, 100);
        let mut f = data(3, 9);
        f[HEADER_LEN + 3] ^= 0x40;
        seal(&mut f);
        assert_eq!(classify(&f, &e), Verdict::Corrupt);
        let mut c = control(3, Control::Hello { count: 5 });
        c[MIN_FRAME - 1] = 1;
        seal(&mut c);
        assert_eq!(classify(&c, &e), Verdict::Corrupt);
        let mut k = control(3, Control::Hello { count: 5 });
        k[OFF_KIND] = 9;
        seal(&mut k);
        assert_eq!(classify(&k, &e), Verdict::Corrupt);
    }

    #[test]
    fn crc_matches_the_ieee_check_value() {
        // The standard check value of CRC-32/ISO-HDLC over "123456789".
        assert_eq!(!crc_update(!0, b"123456789"), 0xcbf4_3926);
    }

    proptest! {
        /// Any one byte changed, anywhere in any data frame, and the frame
        /// is no longer taken as valid data.
        #[test]
        fn any_corrupted_byte_is_caught(
            round in 0u32..4,
            seq in 0u32..2000,
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let e = at_host(round, 2000);
            let mut f = data(round, seq);
            prop_assert_eq!(classify(&f, &e), Verdict::Data { seq });
            let i = at.index(f.len());
            f[i] ^= flip;
            let v = classify(&f, &e);
            let data = matches!(v, Verdict::Data { .. });
            prop_assert!(!data, "byte {} ^ {:#x}: {:?}", i, flip, v);
        }

        /// Same for control frames: a corrupted byte never yields a
        /// control frame, let alone another one.
        #[test]
        fn any_corrupted_control_byte_is_caught(
            verified in any::<u32>(),
            done in any::<bool>(),
            next_missing in 0u32..=10,
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let e = at_host(1, 10);
            let mut f = control(1, Control::Ack { verified, done, next_missing });
            let i = at.index(f.len());
            f[i] ^= flip;
            let v = classify(&f, &e);
            let ours = matches!(v, Verdict::Control(_) | Verdict::Data { .. });
            prop_assert!(!ours, "byte {}: {:?}", i, v);
        }

        /// Cut anywhere short of its end, a frame is never valid.
        #[test]
        fn any_truncation_is_caught(seq in 0u32..2000, cut in any::<prop::sample::Index>()) {
            let e = at_host(1, 2000);
            let f = data(1, seq);
            let n = cut.index(f.len());
            let v = classify(&f[..n], &e);
            let cut_short = matches!(v, Verdict::Truncated | Verdict::Other);
            prop_assert!(cut_short, "{} of {}: {:?}", n, f.len(), v);
        }

        /// Arbitrary bytes never panic the classifier, and are almost never
        /// ours.
        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..1600)) {
            let v = classify(&bytes, &at_host(1, 2000));
            let ours = matches!(v, Verdict::Data { .. } | Verdict::Control(_));
            prop_assert!(!ours, "{:?}", v);
        }
    }
}
