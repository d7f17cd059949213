//! Poll-mode drivers for SR-IOV virtual functions.
//!
//! Each driver talks to its device only through [`crate::mmio::RegisterSpace`]
//! and DMA memory ([`crate::memory::DmaRegion`]), so the same code runs on a
//! vfio-mapped BAR and on the device models the tests use.
//!
//! - [`adv_desc`]: the Intel "advanced" 16-byte RX/TX descriptor rings shared
//!   by igbvf and ixgbevf.
//! - [`vf_mailbox`]: the VF↔PF mailbox transport igbvf and ixgbevf share.
//! - [`vf_stats`]: wrapping, uncleared VF statistics counters.
//! - [`igbvf`]: the 82576 / I350 virtual function.
//! - [`ixgbevf`]: the 82599 / X540 / X550 virtual function.
//! - [`iavf`]: the XL710/X710 and Adaptive virtual function.
//!
//! [`open_vf`] opens any of them by PCI address.

pub mod adv_desc;
pub mod iavf;
pub mod igbvf;
pub mod ixgbevf;
mod open;
pub mod ring_limits;
pub mod rx_filters;
pub mod vf_mailbox;
pub mod vf_stats;

pub use open::{
    driver_names, identify, open_vf, preflight, DriverEntry, OpenArgs, OpenError, OpenFn, VfConfig,
    DEFAULT_VF_RX_RING, DEFAULT_VF_TX_RING, DRIVERS,
};
