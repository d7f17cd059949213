//! The settings of a run, named independently of where they come from.
//!
//! A validation error says which setting it is about; the front end that
//! read the setting says how the operator spelled it (a `fastpath run`
//! flag, a fast-path.env variable).

use std::fmt;

/// One setting of a [`RunConfig`](crate::run_config::RunConfig).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Setting {
    /// The ports.
    Ports,
    /// Worker cores (a count or a CPU list).
    Cores,
    /// Forwarding mode.
    Mode,
    /// Burst size.
    Burst,
    /// How long to run.
    Duration,
    /// Time between statistics lines.
    StatsPeriod,
    /// Bursts seeded at start.
    TxFirst,
    /// Buffers in the pool.
    NbMbuf,
    /// Per-worker cache size.
    CacheSize,
    /// Length of the packets null ports make.
    PacketSize,
    /// Ring size of ring ports.
    RingSize,
    /// Peer MACs for the mac mode.
    EthPeer,
    /// Where the pool's memory comes from.
    Memory,
    /// Bytes of an AF_PACKET RX block.
    AfPacketBlockSize,
    /// AF_PACKET RX blocks per queue.
    AfPacketBlocks,
    /// AF_PACKET TX frames per queue.
    AfPacketTxFrames,
    /// Which worker polls which port.
    CorePortMapping,
    /// RX descriptors per VF queue.
    RxDescriptors,
    /// TX descriptors per VF queue.
    TxDescriptors,
    /// Most hugepage memory the fast path may use.
    MemoryCap,
}

impl Setting {
    /// Every setting.
    pub const ALL: [Setting; 20] = [
        Setting::Ports,
        Setting::Cores,
        Setting::Mode,
        Setting::Burst,
        Setting::Duration,
        Setting::StatsPeriod,
        Setting::TxFirst,
        Setting::NbMbuf,
        Setting::CacheSize,
        Setting::PacketSize,
        Setting::RingSize,
        Setting::EthPeer,
        Setting::Memory,
        Setting::AfPacketBlockSize,
        Setting::AfPacketBlocks,
        Setting::AfPacketTxFrames,
        Setting::CorePortMapping,
        Setting::RxDescriptors,
        Setting::TxDescriptors,
        Setting::MemoryCap,
    ];
}

/// A plain name, for front ends that have no spelling of their own.
impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Setting::Ports => "ports",
            Setting::Cores => "worker cores",
            Setting::Mode => "forwarding mode",
            Setting::Burst => "burst size",
            Setting::Duration => "duration",
            Setting::StatsPeriod => "statistics period",
            Setting::TxFirst => "tx-first bursts",
            Setting::NbMbuf => "pool size",
            Setting::CacheSize => "cache size",
            Setting::PacketSize => "packet size",
            Setting::RingSize => "ring size",
            Setting::EthPeer => "peer MAC",
            Setting::Memory => "pool memory",
            Setting::AfPacketBlockSize => "AF_PACKET RX block size",
            Setting::AfPacketBlocks => "AF_PACKET RX blocks",
            Setting::AfPacketTxFrames => "AF_PACKET TX frames",
            Setting::CorePortMapping => "core/port mapping",
            Setting::RxDescriptors => "RX descriptors",
            Setting::TxDescriptors => "TX descriptors",
            Setting::MemoryCap => "fast-path memory",
        })
    }
}
