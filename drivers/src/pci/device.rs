//! What sysfs says about a PCI function: ids, driver, IOMMU group, NUMA
//! node, SR-IOV links. Read under a configurable root so tests can point it
//! at a fake tree.
//!
//! Paths and file formats: Documentation/ABI/testing/sysfs-bus-pci and
//! Documentation/ABI/testing/sysfs-kernel-iommu_groups in the Linux tree.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::address::PciAddress;
use super::error::PciError;

/// The driver name vfio-pci registers (`/sys/bus/pci/drivers/vfio-pci`).
pub const VFIO_PCI_DRIVER: &str = "vfio-pci";

/// Drivers that keep an IOMMU group viable for VFIO besides vfio-pci
/// itself: linux drivers/vfio/group.c (`vfio_driver_allowed`, "pci-stub").
/// Bridges (non-normal header type) are allowed too; see
/// [`GroupMember::blocks_vfio`].
const VFIO_ALLOWED_DRIVERS: [&str; 2] = [VFIO_PCI_DRIVER, "pci-stub"];

/// The file system root under which `sys/` (and, for the vfio module,
/// `dev/`) are found. `/` on a real host; a temporary directory in tests.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Sysfs {
    root: PathBuf,
}

impl Default for Sysfs {
    fn default() -> Self {
        Sysfs {
            root: PathBuf::from("/"),
        }
    }
}

/// What `driver_override` holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DriverOverride {
    /// No override ("(null)").
    None,
    /// Only this driver may bind.
    Driver(String),
    /// The kernel has no `driver_override` file (before Linux 3.16).
    Unsupported,
}

/// One PCI function as sysfs describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciDevice {
    /// Its address.
    pub address: PciAddress,
    /// PCI vendor id (`vendor`).
    pub vendor_id: u16,
    /// PCI device id (`device`).
    pub device_id: u16,
    /// The bound driver (basename of the `driver` link), if any.
    pub driver: Option<String>,
    /// The IOMMU group number (basename of the `iommu_group` link), if the
    /// device has one: none means no IOMMU and no vfio no-IOMMU mode.
    pub iommu_group: Option<u32>,
    /// The NUMA node (`numa_node`); `None` where the file says -1 or is absent.
    pub numa_node: Option<u32>,
    /// For an SR-IOV VF, its PF (the `physfn` link).
    pub physfn: Option<PciAddress>,
    /// For an SR-IOV PF, the number of VFs enabled (`sriov_numvfs`).
    pub sriov_numvfs: Option<u32>,
    /// For an SR-IOV PF, the most VFs it can have (`sriov_totalvfs`).
    pub sriov_totalvfs: Option<u32>,
    /// The `driver_override` state.
    pub driver_override: DriverOverride,
    /// The PCI header type (config byte 0x0e, low 7 bits) when the config
    /// file is readable: 0 for an endpoint, 1 for a bridge.
    pub header_type: Option<u8>,
}

impl PciDevice {
    /// True for an SR-IOV virtual function.
    pub fn is_vf(&self) -> bool {
        self.physfn.is_some()
    }

    /// True when bound to vfio-pci.
    pub fn is_bound_to_vfio(&self) -> bool {
        self.driver.as_deref() == Some(VFIO_PCI_DRIVER)
    }
}

/// A device in an IOMMU group and what stops the group being usable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMember {
    /// Its address.
    pub address: PciAddress,
    /// The bound driver, if any.
    pub driver: Option<String>,
    /// True for a PCI bridge, which never blocks a group.
    pub bridge: bool,
}

impl GroupMember {
    /// True when this device makes its group non-viable for VFIO: it is
    /// bound to a driver other than vfio-pci or pci-stub and is not a
    /// bridge (linux drivers/vfio/group.c, `vfio_dev_driver_allowed`).
    pub fn blocks_vfio(&self) -> bool {
        match &self.driver {
            None => false,
            Some(driver) => !self.bridge && !VFIO_ALLOWED_DRIVERS.contains(&driver.as_str()),
        }
    }
}

/// What `bind_to_vfio` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindOutcome {
    /// It was already bound to vfio-pci; nothing was written.
    AlreadyBound,
    /// It is now bound to vfio-pci; `previous` is the driver it was unbound from.
    Bound {
        /// The driver it was bound to before, if any.
        previous: Option<String>,
    },
}

impl Sysfs {
    /// Sysfs under `root` (which holds `sys/`, e.g. `/`).
    pub fn new(root: impl Into<PathBuf>) -> Sysfs {
        Sysfs { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/sys/bus/pci/devices/<addr>`.
    pub fn device_dir(&self, address: PciAddress) -> PathBuf {
        self.root
            .join("sys/bus/pci/devices")
            .join(address.to_string())
    }

    /// `<root>/sys/bus/pci/drivers/<driver>`.
    pub fn driver_dir(&self, driver: &str) -> PathBuf {
        self.root.join("sys/bus/pci/drivers").join(driver)
    }

    /// `<root>/sys/kernel/iommu_groups/<group>/devices`.
    pub fn iommu_group_devices_dir(&self, group: u32) -> PathBuf {
        self.root
            .join("sys/kernel/iommu_groups")
            .join(group.to_string())
            .join("devices")
    }

    /// True when the vfio-pci driver is registered (module loaded or built in).
    pub fn vfio_pci_loaded(&self) -> bool {
        self.driver_dir(VFIO_PCI_DRIVER).is_dir()
    }

    /// Reads everything sysfs says about `address`.
    pub fn device(&self, address: PciAddress) -> Result<PciDevice, PciError> {
        let dir = self.device_dir(address);
        if !dir.is_dir() {
            return Err(PciError::NotFound { address, path: dir });
        }
        let vendor_id = read_hex_u16(&dir.join("vendor"))?;
        let device_id = read_hex_u16(&dir.join("device"))?;
        let driver = link_name(&dir.join("driver"))?;
        let iommu_group = match link_name(&dir.join("iommu_group"))? {
            None => None,
            Some(name) => Some(name.parse().map_err(|_| PciError::Parse {
                path: dir.join("iommu_group"),
                content: name,
                expected: "a link to an IOMMU group number",
            })?),
        };
        let numa_node = match read_optional(&dir.join("numa_node"))? {
            None => None,
            Some(text) => {
                let node: i64 = text.parse().map_err(|_| PciError::Parse {
                    path: dir.join("numa_node"),
                    content: text.clone(),
                    expected: "a NUMA node number or -1",
                })?;
                u32::try_from(node).ok()
            }
        };
        let physfn = match link_name(&dir.join("physfn"))? {
            None => None,
            Some(name) => Some(name.parse().map_err(|_| PciError::Parse {
                path: dir.join("physfn"),
                content: name,
                expected: "a link to the PF's PCI address",
            })?),
        };
        let sriov_numvfs = read_optional_u32(&dir.join("sriov_numvfs"))?;
        let sriov_totalvfs = read_optional_u32(&dir.join("sriov_totalvfs"))?;
        let driver_override = match read_optional(&dir.join("driver_override"))? {
            None => DriverOverride::Unsupported,
            Some(text) if text == "(null)" || text.is_empty() => DriverOverride::None,
            Some(text) => DriverOverride::Driver(text),
        };
        Ok(PciDevice {
            address,
            vendor_id,
            device_id,
            driver,
            iommu_group,
            numa_node,
            physfn,
            sriov_numvfs,
            sriov_totalvfs,
            driver_override,
            header_type: header_type(&dir.join("config")),
        })
    }

    /// The kernel network interfaces of the device at `address`, sorted:
    /// every `/sys/class/net/<name>` whose device path lies under the PCI
    /// device's (directly, as `net/<name>`, or through a child such as
    /// virtio's `virtio2/net/<name>`). Empty when no kernel network driver
    /// holds it (a device on vfio-pci has none).
    pub fn net_interfaces(&self, address: PciAddress) -> Vec<String> {
        let Ok(device) = fs::canonicalize(self.device_dir(address)) else {
            return Vec::new();
        };
        let class = self.root.join("sys/class/net");
        let mut names: Vec<String> = fs::read_dir(&class)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| fs::canonicalize(e.path()).is_ok_and(|p| p.starts_with(&device)))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The VFs of a PF, in VF index order (`virtfn0`, `virtfn1`, ...).
    pub fn virtfns(&self, pf: PciAddress) -> Result<Vec<PciAddress>, PciError> {
        let dir = self.device_dir(pf);
        let entries = fs::read_dir(&dir).map_err(|source| read_error(pf, &dir, source))?;
        let mut vfs = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| read_error(pf, &dir, source))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(index) = name
                .strip_prefix("virtfn")
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let path = entry.path();
            let target = link_name(&path)?.unwrap_or_default();
            let vf = target.parse().map_err(|_| PciError::Parse {
                path,
                content: target,
                expected: "a link to a VF's PCI address",
            })?;
            vfs.push((index, vf));
        }
        vfs.sort();
        Ok(vfs.into_iter().map(|(_, vf)| vf).collect())
    }

    /// Every device in IOMMU group `group`, with its driver.
    pub fn group_members(&self, group: u32) -> Result<Vec<GroupMember>, PciError> {
        let dir = self.iommu_group_devices_dir(group);
        let entries = fs::read_dir(&dir).map_err(|source| PciError::Read {
            path: dir.clone(),
            source,
        })?;
        let mut members = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| PciError::Read {
                path: dir.clone(),
                source,
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Non-PCI devices can share a group; they have no PCI address.
            let Ok(address) = name.parse::<PciAddress>() else {
                continue;
            };
            let path = entry.path();
            let driver = link_name(&path.join("driver"))?;
            let bridge = header_type(&path.join("config")).is_some_and(|t| t != 0)
                || driver.as_deref() == Some("pcieport");
            members.push(GroupMember {
                address,
                driver,
                bridge,
            });
        }
        members.sort_by_key(|m| m.address);
        Ok(members)
    }

    /// Binds `address` to vfio-pci the way the kernel documents it
    /// (Documentation/ABI/testing/sysfs-bus-pci, `driver_override`): write
    /// "vfio-pci" to its `driver_override`, unbind it from its current
    /// driver, then ask the PCI core to probe it again (`drivers_probe`).
    /// For the VM lab and setup scripts; needs root.
    pub fn bind_to_vfio(&self, address: PciAddress) -> Result<BindOutcome, PciError> {
        let device = self.device(address)?;
        if device.is_bound_to_vfio() {
            return Ok(BindOutcome::AlreadyBound);
        }
        if !self.vfio_pci_loaded() {
            return Err(PciError::VfioPciNotLoaded { address });
        }
        let dir = self.device_dir(address);
        if device.driver_override == DriverOverride::Unsupported {
            return Err(PciError::NoDriverOverride { address });
        }
        write_sysfs(&dir.join("driver_override"), VFIO_PCI_DRIVER)?;
        if let Some(driver) = &device.driver {
            write_sysfs(
                &self.driver_dir(driver).join("unbind"),
                &address.to_string(),
            )?;
        }
        write_sysfs(
            &self.root.join("sys/bus/pci/drivers_probe"),
            &address.to_string(),
        )?;
        let now = self.device(address)?;
        if !now.is_bound_to_vfio() {
            return Err(PciError::BindFailed {
                address,
                driver: now.driver,
            });
        }
        Ok(BindOutcome::Bound {
            previous: device.driver,
        })
    }
}

fn read_error(address: PciAddress, path: &Path, source: io::Error) -> PciError {
    if source.kind() == io::ErrorKind::NotFound {
        PciError::NotFound {
            address,
            path: path.to_path_buf(),
        }
    } else {
        PciError::Read {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The trimmed content of a sysfs attribute, `None` if it does not exist.
fn read_optional(path: &Path) -> Result<Option<String>, PciError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim().to_string())),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PciError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn read_optional_u32(path: &Path) -> Result<Option<u32>, PciError> {
    match read_optional(path)? {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| PciError::Parse {
            path: path.to_path_buf(),
            content: text,
            expected: "a decimal count",
        }),
    }
}

fn read_hex_u16(path: &Path) -> Result<u16, PciError> {
    let text = fs::read_to_string(path).map_err(|source| PciError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = text.trim();
    let digits = text.strip_prefix("0x").unwrap_or(text);
    u16::from_str_radix(digits, 16).map_err(|_| PciError::Parse {
        path: path.to_path_buf(),
        content: text.to_string(),
        expected: "a 16-bit hex id such as 0x8086",
    })
}

/// The last component of a symlink's target, `None` if there is no link.
fn link_name(path: &Path) -> Result<Option<String>, PciError> {
    match fs::read_link(path) {
        Ok(target) => Ok(target
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PciError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Config byte 0x0e (header type) without the multi-function bit, if the
/// config file can be read (PCI Local Bus spec 6.1; `PCI_HEADER_TYPE` in
/// linux include/uapi/linux/pci_regs.h).
fn header_type(config: &Path) -> Option<u8> {
    let bytes = fs::read(config).ok()?;
    bytes.get(0x0e).map(|b| b & 0x7f)
}

fn write_sysfs(path: &Path, value: &str) -> Result<(), PciError> {
    fs::write(path, value).map_err(|source| PciError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}
