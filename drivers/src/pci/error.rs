//! Why a PCI device could not be read, used or rebound, with the fix.

use std::io;
use std::path::PathBuf;

use super::address::{PciAddress, PciAddressError};

/// A PCI discovery or binding failure.
#[derive(Debug, thiserror::Error)]
pub enum PciError {
    /// The address does not parse.
    #[error(transparent)]
    BadAddress(#[from] PciAddressError),

    /// No such device in sysfs.
    #[error(
        "no PCI device {address} ({} does not exist): check the address with \
         `lspci -D`, and in Kubernetes the PCIDEVICE_* variable the SR-IOV device \
         plugin set; a VF disappears when its PF's sriov_numvfs is changed",
        .path.display()
    )]
    NotFound {
        /// The address looked for.
        address: PciAddress,
        /// The sysfs directory that is missing.
        path: PathBuf,
    },

    /// A sysfs attribute could not be read.
    #[error("cannot read {}: {source}. Fix: check that /sys is mounted and readable", .path.display())]
    Read {
        /// The attribute.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },

    /// A sysfs attribute holds something unexpected.
    #[error("{} holds {content:?}, expected {expected}", .path.display())]
    Parse {
        /// The attribute.
        path: PathBuf,
        /// What it holds.
        content: String,
        /// What was expected.
        expected: &'static str,
    },

    /// A sysfs attribute could not be written.
    #[error(
        "cannot write {value:?} to {}: {source}. Fix: run as root (writing PCI \
         sysfs files needs CAP_SYS_ADMIN)",
        .path.display()
    )]
    Write {
        /// The attribute.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The cause.
        source: io::Error,
    },

    /// The vfio-pci driver is not registered.
    #[error(
        "cannot bind {address} to vfio-pci: the vfio-pci driver is not loaded \
         (/sys/bus/pci/drivers/vfio-pci is missing): run `modprobe vfio-pci`"
    )]
    VfioPciNotLoaded {
        /// The device.
        address: PciAddress,
    },

    /// The kernel is too old to have `driver_override`.
    #[error(
        "cannot bind {address} to vfio-pci: this kernel has no driver_override \
         (Linux >= 3.16): use `echo VENDOR DEVICE > /sys/bus/pci/drivers/vfio-pci/new_id`"
    )]
    NoDriverOverride {
        /// The device.
        address: PciAddress,
    },

    /// After the rebind the device is still not on vfio-pci.
    #[error(
        "{address} is still bound to {} after the rebind: check `dmesg` for \
         vfio-pci errors (an IOMMU is needed unless vfio runs in no-IOMMU mode: \
         boot with `intel_iommu=on iommu=pt`)",
        .driver.as_deref().unwrap_or("no driver")
    )]
    BindFailed {
        /// The device.
        address: PciAddress,
        /// Its driver now.
        driver: Option<String>,
    },

    /// The device is not one fastpath drives (or its driver is not built).
    #[error(
        "{address} is {vendor_id:04x}:{device_id:04x}, not a supported VF \
         (supported: {}): give the pod a VF of a supported NIC, or reach the \
         device's kernel network interface through an AF_PACKET port",
        super::supported::supported_list()
    )]
    Unsupported {
        /// The device.
        address: PciAddress,
        /// Its vendor id.
        vendor_id: u16,
        /// Its device id.
        device_id: u16,
    },
}
