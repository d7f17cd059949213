//! iavf: the Intel XL710/X710 SR-IOV virtual function (8086:154c) and the
//! Adaptive VF (8086:1889, also the E810's), with the X722 VF ids.
//!
//! Facts: docs/facts/nic-facts.md part B (cited by section).
//!
//! - [`regs`]: the BAR 0 map and bit fields (B.2).
//! - [`adminq`]: the admin queue, virtchnl's transport (B.3), on
//!   [`dma_bytes`] memory; [`channel`]: one command at a time, replies
//!   matched by opcode, PF events set aside (B.8 #11).
//! - [`virtchnl`]: the messages with their exact wire lengths (B.4).
//! - [`reset`]: VFGEN_RSTAT, the handshake and RESET_VF (B.6, B.7).
//! - [`rx`], [`tx`], [`ring`]: the 32-byte RX and 16-byte TX descriptor
//!   rings (B.5, B.8); [`queue`]: the worker queues, stopped through the
//!   PF ([`control`]) since the VF has no queue enable of its own.
//! - [`link`], [`stats`]: link from LINK_CHANGE events, GET_STATS.
//! - [`device`]: the port, with recovery from PF resets; [`open`]: its
//!   row in `pmd::DRIVERS`.
//!
//! Tested against a scripted PF (`scripted_pf.rs`, tests only) that
//! answers the admin queue with canned virtchnl replies and moves frames
//! through the rings the way B.5 describes (`tests.rs`), and against the
//! iavf device model, `crate::sim::iavf` (`model_tests.rs`, its faults
//! in `fault_tests.rs`, property tests over ring lengths, bursts, wrap
//! points and frame lengths in `prop_tests.rs`).

pub mod adminq;
pub mod channel;
pub mod control;
pub mod device;
pub mod dma_bytes;
#[cfg(test)]
mod fault_tests;
pub mod link;
#[cfg(test)]
mod model_tests;
mod open;
#[cfg(test)]
mod prop_tests;
pub mod queue;
pub mod regs;
pub mod reset;
pub mod ring;
pub mod rx;
#[cfg(test)]
mod scripted_pf;
pub mod stats;
#[cfg(test)]
mod tests;
pub mod tx;
pub mod virtchnl;

pub use device::{IavfConfig, IavfError, IavfPort, Timing};
pub use open::open;
pub use queue::{IavfRx, IavfTx};
