//! PCI devices as Linux shows them in sysfs: addresses, ids, the bound
//! driver, IOMMU group, NUMA node and SR-IOV links; the table of devices
//! fastpath drives; and binding a device to vfio-pci.

mod address;
mod device;
mod error;
mod function;
mod supported;

pub use address::{PciAddress, PciAddressError};
pub use device::{BindOutcome, DriverOverride, GroupMember, PciDevice, Sysfs, VFIO_PCI_DRIVER};
pub use error::PciError;
pub use function::{FunctionError, PciFunction};
pub use supported::{
    driver_for, lookup, DriverKind, Quirks, SupportedDevice, IGBVF_82576, IGBVF_I350, INTEL,
    SUPPORTED_DEVICES,
};

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;
