//! A thin VFIO layer on raw ioctls: container, groups (with no-IOMMU
//! support), device fds, BARs as [`crate::mmio::RegisterSpace`], config
//! space, bus mastering, reset, and DMA mapping of [`crate::memory::DmaRegion`]s.
//!
//! Written on libc rather than the vfio-ioctls crate because that crate
//! swallows errors and cannot do no-IOMMU mode (reference/crates.md
//! section 1). Every failure is a [`VfioError`] that names the fix.
//!
//! ```no_run
//! use drivers::mmio::RegisterSpace;
//! use drivers::vfio::Container;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let container = Container::open()?;
//! let device = container.open_device("0000:01:10.0".parse()?)?;
//! device.enable_bus_master()?;
//! let bar0 = device.bar(0)?;
//! let status = bar0.read32(0x8);
//! # let _ = status; Ok(()) }
//! ```

mod bar;
mod container;
mod device;
mod dma;
mod error;
mod sys;
pub mod uapi;

pub use crate::pci::{BindOutcome, Sysfs};
pub use bar::Bar;
pub use container::{preflight, Container, Extensions, GroupNode, IommuMode};
pub use device::{config, Device, DeviceInfo, RegionInfo};
pub use dma::physical_address;
pub use error::VfioError;

/// Binds the device at `address` to vfio-pci (driver_override, unbind,
/// drivers_probe) on this host; see [`Sysfs::bind_to_vfio`].
pub fn bind_to_vfio(address: crate::pci::PciAddress) -> Result<BindOutcome, VfioError> {
    Ok(Sysfs::default().bind_to_vfio(address)?)
}

#[cfg(test)]
mod tests;
