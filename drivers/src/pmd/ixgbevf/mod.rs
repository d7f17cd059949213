//! ixgbevf: the Intel 82599 / X540 / X550 SR-IOV virtual function
//! (8086:10ed, 1515, 1565, 15a8, 15c5).
//!
//! Facts: docs/facts/nic-facts.md part A (cited by section).
//!
//! What exists so far: the register map ([`regs`], with the queue layout
//! and descriptor flavor for [`crate::pmd::adv_desc`]) and the mailbox
//! protocol ([`mailbox`]), tested against a scripted PF. There is no
//! port yet, so the device ids are not in the supported-device table.

pub mod mailbox;
#[cfg(test)]
mod mailbox_tests;
pub mod regs;

pub use mailbox::{ApiVersion, IxMbxError, PfEvent, PfMailbox, PfTiming, QueueInfo, XcastMode};
