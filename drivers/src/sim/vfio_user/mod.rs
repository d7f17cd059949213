//! Serving a device model to a guest over vfio-user.
//!
//! QEMU's `vfio-user-pci` device (QEMU >= 10.1) gives the guest a PCI
//! function whose config space, BARs, DMA and interrupts are all answered
//! by a process on a unix socket. This module is that process's side: a
//! [`VfioUserDevice`] (the model) is run by [`serve`], which speaks the
//! protocol through the rust-vmm `vfio_user` crate. The guest's own kernel
//! driver (ixgbevf.ko in scripts/vfio-user-lab) then drives the model as
//! if it were hardware.
//!
//! - [`VfioUserDevice`]: the hook a model implements: BAR reads and
//!   writes, reset, with a [`DeviceContext`] for DMA and interrupts.
//! - [`PciConfigSpace`]: the function's config space with write masks,
//!   MSI-X and PCIe capabilities.
//! - [`GuestMemory`]: the guest RAM regions QEMU passes with DMA_MAP
//!   (shared memfd guest RAM, IOVA = guest physical address).
//! - [`MsixVectors`]: the eventfds QEMU passes with SET_IRQS.
//! - [`ServedModel`]: a model of the strict framework (the ixgbevf
//!   model) behind the connection, with its own device thread.
//! - [`VfLayout`]: a served VF's ids and BARs (ixgbevf, iavf), the same
//!   for a model and for the register file.
//! - [`RegisterFileVf`]: the smallest real device: a VF's config space
//!   over a plain register file.

mod config_space;
mod device;
mod dma;
mod irq;
mod regfile;
mod served_model;
mod server;
mod vf_layout;

pub use config_space::{Bar, Msix, PciConfigSpace, PciIdentity};
pub use device::{DeviceContext, VfioUserDevice};
pub use dma::{DmaError, GuestMemory};
pub use irq::MsixVectors;
pub use regfile::RegisterFileVf;
pub use served_model::ServedModel;
pub use server::{serve, ServeError};
pub use vf_layout::{
    iavf_config_space, ixgbevf_config_space, VfLayout, IAVF_ADAPTIVE_VF, IAVF_X710_VF,
    IXGBE_82599_VF,
};
