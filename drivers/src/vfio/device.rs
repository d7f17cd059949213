//! A VFIO device fd: region info, BARs, config space, bus mastering, reset.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use super::bar::{pread_exact, pwrite_exact, Bar};
use super::error::VfioError;
use super::sys::{ioctl_get_device_fd, ioctl_ref, ioctl_value};
use super::uapi::*;
use crate::pci::PciAddress;

/// PCI config space offsets (PCI Local Bus spec 6.1; linux
/// include/uapi/linux/pci_regs.h).
pub mod config {
    /// `PCI_VENDOR_ID` (u16).
    pub const VENDOR_ID: u64 = 0x00;
    /// `PCI_DEVICE_ID` (u16).
    pub const DEVICE_ID: u64 = 0x02;
    /// `PCI_COMMAND` (u16).
    pub const COMMAND: u64 = 0x04;
    /// `PCI_COMMAND_MEMORY`: respond to memory space accesses.
    pub const COMMAND_MEMORY: u16 = 1 << 1;
    /// `PCI_COMMAND_MASTER`: the device may master the bus (DMA).
    pub const COMMAND_MASTER: u16 = 1 << 2;
}

/// One region of a device, from `VFIO_DEVICE_GET_REGION_INFO`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionInfo {
    /// The region index (0-5 BARs, 6 ROM, 7 config space).
    pub index: u32,
    /// `VFIO_REGION_INFO_FLAG_*`.
    pub flags: u32,
    /// Size in bytes (0 for an unimplemented BAR).
    pub size: u64,
    /// Offset of the region in the device fd.
    pub offset: u64,
}

impl RegionInfo {
    /// True when the region may be mmapped.
    pub fn mappable(&self) -> bool {
        self.flags & VFIO_REGION_INFO_FLAG_MMAP != 0
    }
}

/// `VFIO_DEVICE_GET_INFO`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// `VFIO_DEVICE_FLAGS_*`.
    pub flags: u32,
    /// Number of regions.
    pub num_regions: u32,
    /// Number of IRQ indexes.
    pub num_irqs: u32,
}

impl DeviceInfo {
    /// True when `VFIO_DEVICE_RESET` is supported.
    pub fn can_reset(&self) -> bool {
        self.flags & VFIO_DEVICE_FLAGS_RESET != 0
    }
}

/// An open VFIO device. Keeps its group and container open while it lives.
#[derive(Debug)]
pub struct Device {
    address: PciAddress,
    fd: Arc<OwnedFd>,
    info: DeviceInfo,
    regions: Vec<Option<RegionInfo>>,
    _group: Arc<OwnedFd>,
    _container: Arc<OwnedFd>,
}

impl Device {
    pub(crate) fn open(
        address: PciAddress,
        group: Arc<OwnedFd>,
        container: Arc<OwnedFd>,
    ) -> Result<Device, VfioError> {
        let name = CString::new(address.to_string())
            .map_err(|_| VfioError::NotPci { address, flags: 0 })?;
        let fd =
            ioctl_get_device_fd(&group, VFIO_GROUP_GET_DEVICE_FD, &name).map_err(|source| {
                VfioError::Ioctl {
                    op: "VFIO_GROUP_GET_DEVICE_FD",
                    target: address.to_string(),
                    source,
                }
            })?;
        let mut raw = vfio_device_info {
            argsz: argsz::<vfio_device_info>(),
            ..Default::default()
        };
        ioctl_ref(&fd, VFIO_DEVICE_GET_INFO, &mut raw).map_err(|source| VfioError::Ioctl {
            op: "VFIO_DEVICE_GET_INFO",
            target: address.to_string(),
            source,
        })?;
        if raw.flags & VFIO_DEVICE_FLAGS_PCI == 0 {
            return Err(VfioError::NotPci {
                address,
                flags: raw.flags,
            });
        }
        let info = DeviceInfo {
            flags: raw.flags,
            num_regions: raw.num_regions,
            num_irqs: raw.num_irqs,
        };
        // A region whose info query fails (VGA on most devices) is None;
        // indexes never shift.
        let regions = (0..info.num_regions.min(VFIO_PCI_CONFIG_REGION_INDEX + 1))
            .map(|index| region_info(&fd, index))
            .collect();
        Ok(Device {
            address,
            fd: Arc::new(fd),
            info,
            regions,
            _group: group,
            _container: container,
        })
    }

    /// Its PCI address.
    pub fn address(&self) -> PciAddress {
        self.address
    }

    /// What `VFIO_DEVICE_GET_INFO` said.
    pub fn info(&self) -> DeviceInfo {
        self.info
    }

    /// Region `index` (BAR0-5, ROM 6, config 7), if it exists and is not empty.
    pub fn region(&self, index: u32) -> Result<RegionInfo, VfioError> {
        self.regions
            .get(index as usize)
            .copied()
            .flatten()
            .filter(|r| r.size > 0)
            .ok_or(VfioError::NoRegion {
                address: self.address,
                index,
            })
    }

    /// BAR `index` as a register space: mmapped when vfio sets
    /// `VFIO_REGION_INFO_FLAG_MMAP`, else through pread/pwrite.
    pub fn bar(&self, index: u32) -> Result<Bar, VfioError> {
        if index > VFIO_PCI_BAR5_REGION_INDEX {
            return Err(VfioError::NoRegion {
                address: self.address,
                index,
            });
        }
        let region = self.region(index)?;
        let len = usize::try_from(region.size).map_err(|_| VfioError::NoRegion {
            address: self.address,
            index,
        })?;
        if region.mappable() {
            Bar::map(&self.fd, region.offset, len, index).map_err(|source| VfioError::BarMap {
                address: self.address,
                index,
                size: region.size,
                source,
            })
        } else {
            log::warn!(
                "BAR{index} of {} cannot be mmapped; using pread/pwrite (one system call \
                 per register access)",
                self.address
            );
            Ok(Bar::file(self.fd.clone(), region.offset, len, index))
        }
    }

    fn config_offset(&self, offset: u64, len: usize) -> Result<u64, VfioError> {
        let region = self.region(VFIO_PCI_CONFIG_REGION_INDEX)?;
        let end = offset.checked_add(len as u64);
        if end.is_none_or(|end| end > region.size) {
            return Err(VfioError::ConfigOutOfRange {
                address: self.address,
                offset,
                len,
                size: region.size,
            });
        }
        Ok(region.offset + offset)
    }

    /// Reads `buf.len()` bytes of config space at `offset`.
    pub fn config_read(&self, offset: u64, buf: &mut [u8]) -> Result<(), VfioError> {
        let at = self.config_offset(offset, buf.len())?;
        pread_exact(&self.fd, buf, at).map_err(|source| VfioError::RegionIo {
            op: "config read",
            address: self.address,
            offset,
            len: buf.len(),
            source,
        })
    }

    /// Writes `buf` to config space at `offset`.
    pub fn config_write(&self, offset: u64, buf: &[u8]) -> Result<(), VfioError> {
        let at = self.config_offset(offset, buf.len())?;
        pwrite_exact(&self.fd, buf, at).map_err(|source| VfioError::RegionIo {
            op: "config write",
            address: self.address,
            offset,
            len: buf.len(),
            source,
        })
    }

    /// A little-endian u16 of config space.
    pub fn config_read_u16(&self, offset: u64) -> Result<u16, VfioError> {
        let mut bytes = [0u8; 2];
        self.config_read(offset, &mut bytes)?;
        Ok(u16::from_le_bytes(bytes))
    }

    /// A little-endian u32 of config space.
    pub fn config_read_u32(&self, offset: u64) -> Result<u32, VfioError> {
        let mut bytes = [0u8; 4];
        self.config_read(offset, &mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    /// Writes a little-endian u16 to config space.
    pub fn config_write_u16(&self, offset: u64, value: u16) -> Result<(), VfioError> {
        self.config_write(offset, &value.to_le_bytes())
    }

    /// Sets PCI_COMMAND bus master (bit 2) and memory space (bit 1):
    /// vfio-pci leaves bus mastering off, and a device without it cannot
    /// DMA (reference/vmlab/REPORT.md, "Bus mastering").
    pub fn enable_bus_master(&self) -> Result<(), VfioError> {
        let command = self.config_read_u16(config::COMMAND)?;
        let wanted = command | config::COMMAND_MASTER | config::COMMAND_MEMORY;
        if wanted != command {
            self.config_write_u16(config::COMMAND, wanted)?;
        }
        Ok(())
    }

    /// Clears PCI_COMMAND bus master: the device can no longer start DMA.
    pub fn disable_bus_master(&self) -> Result<(), VfioError> {
        let command = self.config_read_u16(config::COMMAND)?;
        if command & config::COMMAND_MASTER != 0 {
            self.config_write_u16(config::COMMAND, command & !config::COMMAND_MASTER)?;
        }
        Ok(())
    }

    /// `VFIO_DEVICE_RESET` (function-level or PM reset). Fails, instead of
    /// silently doing nothing, when the device cannot be reset this way.
    pub fn reset(&self) -> Result<(), VfioError> {
        if !self.info.can_reset() {
            return Err(VfioError::ResetUnsupported {
                address: self.address,
            });
        }
        ioctl_value(&self.fd, VFIO_DEVICE_RESET, 0)
            .map(|_| ())
            .map_err(|source| VfioError::Ioctl {
                op: "VFIO_DEVICE_RESET",
                target: self.address.to_string(),
                source,
            })
    }
}

fn region_info(fd: &OwnedFd, index: u32) -> Option<RegionInfo> {
    let mut raw = vfio_region_info {
        argsz: argsz::<vfio_region_info>(),
        index,
        ..Default::default()
    };
    ioctl_ref(fd, VFIO_DEVICE_GET_REGION_INFO, &mut raw).ok()?;
    Some(RegionInfo {
        index,
        flags: raw.flags,
        size: raw.size,
        offset: raw.offset,
    })
}

impl crate::pci::PciFunction for Device {
    fn set_bus_master(&self, on: bool) -> Result<(), crate::pci::FunctionError> {
        let r = if on {
            self.enable_bus_master()
        } else {
            self.disable_bus_master()
        };
        r.map_err(|e| crate::pci::FunctionError(format!("{}: {e}", self.address)))
    }

    fn function_reset(&self) -> Result<(), crate::pci::FunctionError> {
        self.reset()
            .map_err(|e| crate::pci::FunctionError(format!("{}: {e}", self.address)))
    }
}
