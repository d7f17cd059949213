//! ixgbevf: the Intel 82599 / X540 / X550 SR-IOV virtual function
//! (8086:10ed, 1515, 1565, 15a8, 15c5).
//!
//! Facts: docs/facts/nic-facts.md part A (cited by section).
//!
//! What exists so far: the register map ([`regs`], with the queue layout
//! and descriptor flavor for [`crate::pmd::adv_desc`]), the mailbox
//! protocol ([`mailbox`]), the VF reset and handshake ([`reset`], A.6
//! steps 3-12), queue programming with the enable polled back
//! ([`queues`], A.7), the link check ([`link`], step 21) and the
//! statistics counters ([`stats`]), tested against a scripted PF; and
//! the port ([`device`]: one queue pair on the shared rings, with the
//! context descriptor ixgbevf needs, stop/start, and recovery from a PF
//! reset), tested against the ixgbevf device model (`crate::sim`), and
//! its row in `pmd::DRIVERS` ([`open`]), so `open_vf` opens these VFs.

pub mod device;
pub mod link;
pub mod mailbox;
#[cfg(test)]
mod mailbox_tests;
mod open;
pub mod queues;
pub mod regs;
pub mod reset;
#[cfg(test)]
mod reset_tests;
#[cfg(test)]
mod scripted_pf;
pub mod stats;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod veb_tests;

pub use device::{IxgbevfConfig, IxgbevfError, IxgbevfPort, IxgbevfRx, IxgbevfTx, Timing};
pub use mailbox::{ApiVersion, IxMbxError, PfEvent, PfMailbox, PfTiming, QueueInfo, XcastMode};
pub use open::open;
pub use reset::{reset_vf, ResetError, ResetTiming, VfIdentity};
