//! ixgbevf: the Intel 82599 / X540 / X550 SR-IOV virtual function
//! (8086:10ed, 1515, 1565, 15a8, 15c5).
//!
//! Facts: docs/facts/nic-facts.md part A (cited by section).
//!
//! What exists so far: the register map ([`regs`], with the queue layout
//! and descriptor flavor for [`crate::pmd::adv_desc`]), the mailbox
//! protocol ([`mailbox`]) and the VF reset and handshake ([`reset`], A.6
//! steps 3-12), tested against a scripted PF. There is no port yet (no
//! queue setup), so the device ids are not in the supported-device table.

pub mod mailbox;
#[cfg(test)]
mod mailbox_tests;
pub mod regs;
pub mod reset;
#[cfg(test)]
mod reset_tests;
#[cfg(test)]
mod scripted_pf;

pub use mailbox::{ApiVersion, IxMbxError, PfEvent, PfMailbox, PfTiming, QueueInfo, XcastMode};
pub use reset::{reset_vf, ResetError, ResetTiming, VfIdentity};
