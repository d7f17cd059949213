//! How an AF_PACKET port's rings are sized, with defaults and the checks
//! the kernel would otherwise answer with a bare EINVAL.

use super::block::PACKET_HDR_LEN;
use super::ring::TX_DATA;

/// Default bytes of one RX block: 16 KiB holds about 100 minimum-size
/// frames (each takes its 68-byte header and alignment) and any frame up
/// to a 9000-byte jumbo; at the 0.4 Mpps a veth carries here a block
/// fills in a quarter of a millisecond.
pub const DEFAULT_RX_BLOCK_SIZE: usize = 16 << 10;
/// Default RX blocks per queue: 128 x 16 KiB = 2 MiB of ring. At a high
/// rate that is about 12,000 small frames of slack while a worker is busy
/// elsewhere; at a low rate the kernel hands over a block per retire
/// timeout however few frames it holds, so the ring holds 128 timeouts
/// (128 ms) of traffic for a reader that looks away. Fewer, larger
/// blocks would hold more frames but fewer milliseconds.
pub const DEFAULT_RX_BLOCKS: usize = 128;
/// Default block retire timeout: a block that is not full is handed over
/// after 1 ms, so at low rates a frame waits at most that long.
pub const DEFAULT_RX_RETIRE_MS: u32 = 1;
/// Default TX frames per queue (net_af_packet's default frame count).
pub const DEFAULT_TX_FRAMES: usize = 512;
/// Largest block the kernel allocates in one piece (order 10 pages of 4
/// KiB); larger blocks fail with ENOMEM on most machines.
pub const MAX_BLOCK_SIZE: usize = 4 << 20;
/// Most blocks or frames in one ring.
pub const MAX_SLOTS: usize = 1 << 16;
/// Most queues (sockets in the fanout group) of one port.
pub const MAX_QUEUES: usize = 64;

/// Ring sizes of an AF_PACKET port's queues (each queue has its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfPacketConfig {
    /// Bytes of one RX block: a power of two, at least a page, at most
    /// [`MAX_BLOCK_SIZE`]. A frame must fit in one block.
    pub rx_block_size: usize,
    /// RX blocks per queue.
    pub rx_blocks: usize,
    /// Milliseconds after which the kernel hands over a block that is not
    /// full (tp_retire_blk_tov; 0 lets the kernel choose from the link
    /// speed).
    pub rx_retire_ms: u32,
    /// TX frames per queue.
    pub tx_frames: usize,
    /// Bytes of one TX frame slot, header included (a multiple of 16);
    /// 0: the smallest power of two that holds the header and the largest
    /// frame the pool's buffers hold.
    pub tx_frame_size: usize,
    /// Ask for PACKET_QDISC_BYPASS (frames go to the driver without the
    /// interface's queueing discipline, as net_af_packet's `qdisc_bypass`).
    pub qdisc_bypass: bool,
}

impl Default for AfPacketConfig {
    fn default() -> Self {
        AfPacketConfig {
            rx_block_size: DEFAULT_RX_BLOCK_SIZE,
            rx_blocks: DEFAULT_RX_BLOCKS,
            rx_retire_ms: DEFAULT_RX_RETIRE_MS,
            tx_frames: DEFAULT_TX_FRAMES,
            tx_frame_size: 0,
            qdisc_bypass: true,
        }
    }
}

/// What is wrong with an [`AfPacketConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingConfigError {
    /// The block size is not a power of two between a page and the limit.
    #[error(
        "RX block size {size} must be a power of two from the page size ({page}) to \
         {MAX_BLOCK_SIZE} bytes"
    )]
    BlockSize {
        /// Given.
        size: usize,
        /// The page size.
        page: usize,
    },
    /// Too few or too many slots.
    #[error("{what} {count} is out of range: 1 to {MAX_SLOTS}")]
    Count {
        /// "RX blocks" or "TX frames".
        what: &'static str,
        /// Given.
        count: usize,
    },
    /// No TX block of whole pages and whole frames fits in
    /// [`MAX_BLOCK_SIZE`] (their least common multiple is above it).
    #[error(
        "TX frame size {size}: a TX block holds whole frames and whole {page}-byte pages, and \
         the smallest ({block} bytes) is above {MAX_BLOCK_SIZE}; use a power of two"
    )]
    TxBlock {
        /// The frame size.
        size: usize,
        /// The page size.
        page: usize,
        /// The smallest block.
        block: usize,
    },
    /// A ring above what the kernel takes in one (its sizes are 32-bit:
    /// packet_set_ring refuses a block size times count above 4 GiB).
    #[error("{what} ring of {bytes} bytes: the kernel takes at most 4 GiB per ring")]
    TooLarge {
        /// "RX" or "TX".
        what: &'static str,
        /// Its size.
        bytes: usize,
    },
    /// The TX frame size cannot hold a header and a minimum frame, is not
    /// a multiple of 16, or is above a block.
    #[error(
        "TX frame size {size} must be a multiple of 16 from {} to {MAX_BLOCK_SIZE} bytes",
        TX_DATA + 64
    )]
    FrameSize {
        /// Given.
        size: usize,
    },
}

/// The sizes the kernel is asked for, worked out from a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingSizes {
    /// RX: block size and count.
    pub rx_block_size: usize,
    /// RX blocks.
    pub rx_blocks: usize,
    /// RX frame size for tpacket_req3 (V3 packs frames by their length;
    /// the kernel only checks this one's alignment and frame count).
    pub rx_frame_size: usize,
    /// TX frame size.
    pub tx_frame_size: usize,
    /// TX frames.
    pub tx_frames: usize,
    /// TX block size: a multiple of the page and of the frame size.
    pub tx_block_size: usize,
}

impl RingSizes {
    /// Bytes the RX ring takes.
    pub fn rx_bytes(&self) -> usize {
        self.rx_block_size * self.rx_blocks
    }
    /// Bytes the TX ring takes.
    pub fn tx_bytes(&self) -> usize {
        self.tx_frame_size * self.tx_frames
    }
    /// The largest frame an RX block holds.
    pub fn rx_max_frame(&self) -> usize {
        // The block descriptor, then one packet's headers, 16-aligned.
        self.rx_block_size - 64 - PACKET_HDR_LEN.next_multiple_of(16)
    }
}

impl AfPacketConfig {
    /// Checks the config against the page size and works out the ring
    /// sizes for buffers holding `max_frame` bytes.
    pub fn sizes(&self, page: usize, max_frame: usize) -> Result<RingSizes, RingConfigError> {
        let s = self.rx_block_size;
        if !s.is_power_of_two() || s < page || s > MAX_BLOCK_SIZE {
            return Err(RingConfigError::BlockSize { size: s, page });
        }
        for (what, count) in [("RX blocks", self.rx_blocks), ("TX frames", self.tx_frames)] {
            if count == 0 || count > MAX_SLOTS {
                return Err(RingConfigError::Count { what, count });
            }
        }
        let tx_frame_size = match self.tx_frame_size {
            0 => (TX_DATA + max_frame.max(64)).next_power_of_two(),
            f => f,
        };
        if !tx_frame_size.is_multiple_of(16)
            || !(TX_DATA + 64..=MAX_BLOCK_SIZE).contains(&tx_frame_size)
        {
            return Err(RingConfigError::FrameSize {
                size: tx_frame_size,
            });
        }
        // A TX block holds whole frames and whole pages: their least
        // common multiple (frame sizes are multiples of 16, pages powers
        // of two, so this stays small).
        let tx_block_size = lcm(tx_frame_size, page);
        if tx_block_size > MAX_BLOCK_SIZE {
            return Err(RingConfigError::TxBlock {
                size: tx_frame_size,
                page,
                block: tx_block_size,
            });
        }
        // The frame count must fill whole blocks.
        let per_block = tx_block_size / tx_frame_size;
        let tx_frames = self.tx_frames.next_multiple_of(per_block);
        let sizes = RingSizes {
            rx_block_size: s,
            rx_blocks: self.rx_blocks,
            rx_frame_size: (PACKET_HDR_LEN + max_frame.max(64))
                .next_multiple_of(libc::TPACKET_ALIGNMENT)
                .min(s),
            tx_frame_size,
            tx_frames,
            tx_block_size,
        };
        for (what, bytes) in [("RX", sizes.rx_bytes()), ("TX", sizes.tx_bytes())] {
            if bytes > u32::MAX as usize {
                return Err(RingConfigError::TooLarge { what, bytes });
            }
        }
        Ok(sizes)
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn lcm(a: usize, b: usize) -> usize {
    a / gcd(a, b).max(1) * b
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever is asked, accepted sizes are ones the kernel takes
        /// (packet_set_ring): blocks of whole pages holding whole frames,
        /// a frame count filling whole blocks, at least what was asked,
        /// rings within 32 bits, a TX slot holding the largest frame when
        /// derived.
        #[test]
        fn accepted_sizes_are_ones_the_kernel_takes(
            block_shift in 10u32..24,
            rx_blocks in 0usize..70_000,
            tx_frames in 0usize..70_000,
            tx_frame_size in prop_oneof![Just(0usize), 0usize..20_000],
            page_shift in 12u32..17,
            max_frame in 60usize..=65535,
        ) {
            let page = 1usize << page_shift;
            let c = AfPacketConfig {
                rx_block_size: 1 << block_shift,
                rx_blocks,
                tx_frames,
                tx_frame_size,
                ..AfPacketConfig::default()
            };
            if let Ok(s) = c.sizes(page, max_frame) {
                prop_assert!(s.rx_block_size.is_multiple_of(page));
                prop_assert!(s.rx_frame_size.is_multiple_of(libc::TPACKET_ALIGNMENT));
                prop_assert!(s.rx_frame_size >= PACKET_HDR_LEN && s.rx_frame_size <= s.rx_block_size);
                prop_assert!(s.tx_block_size.is_multiple_of(page) && s.tx_block_size <= MAX_BLOCK_SIZE);
                prop_assert!(s.tx_block_size.is_multiple_of(s.tx_frame_size));
                prop_assert!(s.tx_frames.is_multiple_of(s.tx_block_size / s.tx_frame_size));
                prop_assert!(s.tx_frames >= tx_frames && rx_blocks >= 1);
                prop_assert!(s.rx_bytes() <= u32::MAX as usize && s.tx_bytes() <= u32::MAX as usize);
                if tx_frame_size == 0 {
                    prop_assert!(s.tx_frame_size - TX_DATA >= max_frame);
                }
            }
        }
    }

    #[test]
    fn defaults_give_rings_the_kernel_takes() {
        let s = AfPacketConfig::default().sizes(4096, 2048).unwrap();
        assert_eq!((s.rx_block_size, s.rx_blocks), (16384, 128));
        // 48 bytes of header + 2048 of frame -> 4096-byte slots.
        assert_eq!(
            (s.tx_frame_size, s.tx_block_size, s.tx_frames),
            (4096, 4096, 512)
        );
        assert_eq!(s.rx_frame_size, 2128);
        assert_eq!((s.rx_bytes(), s.tx_bytes()), (2 << 20, 2 << 20));
        assert!(s.rx_max_frame() > 9014, "a jumbo frame fits a block");
        // A frame size of 1552 (97 x 16): blocks of lcm(1552, 4096) =
        // 397,312 bytes hold 256 frames, so 300 frames become 512.
        let c = AfPacketConfig {
            tx_frame_size: 1552,
            tx_frames: 300,
            ..AfPacketConfig::default()
        };
        let s = c.sizes(4096, 1500).unwrap();
        assert_eq!((s.tx_block_size, s.tx_frames), (397_312, 512));
    }

    #[test]
    fn bad_sizes_are_named() {
        let d = AfPacketConfig::default();
        for (c, want) in [
            (
                AfPacketConfig {
                    rx_block_size: 3000,
                    ..d
                },
                "RX block size 3000 must be a power of two from the page size (4096) to 4194304 \
                 bytes",
            ),
            (
                AfPacketConfig {
                    rx_block_size: 8 << 20,
                    ..d
                },
                "RX block size 8388608 must be a power of two from the page size (4096) to \
                 4194304 bytes",
            ),
            (
                AfPacketConfig { rx_blocks: 0, ..d },
                "RX blocks 0 is out of range: 1 to 65536",
            ),
            (
                AfPacketConfig {
                    tx_frames: 1 << 20,
                    ..d
                },
                "TX frames 1048576 is out of range: 1 to 65536",
            ),
            (
                AfPacketConfig {
                    tx_frame_size: 100,
                    ..d
                },
                "TX frame size 100 must be a multiple of 16 from 112 to 4194304 bytes",
            ),
            (
                AfPacketConfig {
                    tx_frame_size: 19_984,
                    ..d
                },
                "TX frame size 19984: a TX block holds whole frames and whole 4096-byte pages, and \
                 the smallest (5115904 bytes) is above 4194304; use a power of two",
            ),
            (
                AfPacketConfig {
                    rx_block_size: 4 << 20,
                    rx_blocks: 1024,
                    ..d
                },
                "RX ring of 4294967296 bytes: the kernel takes at most 4 GiB per ring",
            ),
        ] {
            assert_eq!(c.sizes(4096, 2048).unwrap_err().to_string(), want);
        }
    }
}
