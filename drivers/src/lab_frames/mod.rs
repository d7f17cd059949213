//! The vfio-user lab's frame exchange: Linux's ixgbevf.ko in the guest and
//! our PMD in the server process trade payload-checked frames through the
//! model's switch (issue 12, item 3).
//!
//! - [`frame`]: the frame format, and the judge of a received frame
//!   (corrupt, truncated, foreign, wrong round, or valid).
//! - [`exchange`]: one round, the same loop on both ends (handshake,
//!   windowed data each way, acknowledgements), over any [`Port`](crate::port::Port).
//! - [`peer`]: the host's end, for the server process.
//! - [`guest`]: the guest's end over an AF_PACKET socket, behind the
//!   `lab-frames` binary that runs in the guest.

pub mod exchange;
pub mod frame;
pub mod guest;
pub mod peer;

pub use exchange::{Endpoint, Report, Role, RoundConfig};

use crate::port::PortError;

/// Why a round could not run.
#[derive(Debug, thiserror::Error)]
pub enum LabFramesError {
    /// The port failed (queues, service).
    #[error(transparent)]
    Port(#[from] PortError),
    /// The port gave no queue pair.
    #[error("port {0}: no RX/TX queue pair")]
    NoQueues(String),
    /// The two ends were started with different counts.
    #[error("round {round}: the other end exchanges {theirs} frames each way, this end {ours}")]
    CountMismatch {
        /// The round.
        round: u32,
        /// The other end's count.
        theirs: u32,
        /// Ours.
        ours: u32,
    },
    /// Bad settings.
    #[error("{0}")]
    Config(String),
    /// The AF_PACKET socket could not be opened.
    #[error(transparent)]
    AfPacket(#[from] crate::port::af_packet::AfPacketError),
    /// The buffer pool could not be made.
    #[error(transparent)]
    Pool(#[from] crate::pool::PoolError),
}
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;
