//! igbvf: the Intel 82576 / I350 SR-IOV virtual function (8086:10ca,
//! 8086:1520), the VF QEMU's `igb` model offers.
//!
//! Facts: docs/facts/nic-facts-igbvf.md (cited by section).
//! The driver talks to the device only through a
//! [`RegisterSpace`](crate::mmio::RegisterSpace) and DMA memory; rings come
//! from [`crate::pmd::adv_desc`].

mod device;
#[cfg(test)]
mod filter_tests;
pub mod filters;
pub mod mailbox;
mod open;
#[cfg(test)]
mod recovery_tests;
pub mod regs;
#[cfg(test)]
mod tests;

pub use device::{IgbvfConfig, IgbvfError, IgbvfPort, IgbvfRx, IgbvfTx, Timing, VfStats};
pub use mailbox::{Mailbox, MbxError, MbxTiming};
pub use open::open;
