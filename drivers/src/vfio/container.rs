//! The VFIO container (`/dev/vfio/vfio`) and its groups (`/dev/vfio/<n>`
//! or `/dev/vfio/noiommu-<n>`).
//!
//! Bring-up order, as the kernel documents it (Documentation/driver-api/
//! vfio.rst, "VFIO Usage Example") and as ixy.rs and our QEMU probe do it
//! (reference/anchors.md 1.2, reference/vmlab/vfio_probe.c): open the
//! container, check the API version and IOMMU extensions, open the group,
//! check it is viable, attach it to the container, set the IOMMU type (once,
//! after the first group), then get the device fd by PCI address.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::device::Device;
use super::error::VfioError;
use super::sys::{ioctl_buf, ioctl_ref, ioctl_value};
use super::uapi::*;
use crate::pci::{PciAddress, PciDevice, Sysfs};

/// Which IOMMU model the container runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IommuMode {
    /// `VFIO_TYPE1v2_IOMMU`: translation and isolation.
    Type1v2,
    /// `VFIO_TYPE1_IOMMU`: the same, older unmap semantics.
    Type1,
    /// `VFIO_NOIOMMU_IOMMU`: no translation and **no isolation**; DMA
    /// addresses are physical addresses.
    NoIommu,
}

/// Where a device's group lives, found from sysfs before anything is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupNode {
    /// The IOMMU group number.
    pub group: u32,
    /// `/dev/vfio/<n>` or `/dev/vfio/noiommu-<n>`.
    pub path: PathBuf,
    /// True for a no-IOMMU group.
    pub noiommu: bool,
}

/// The checks that need only sysfs and /dev: the device exists, is bound to
/// vfio-pci, has an IOMMU group, and the group node is there. Gives the
/// error with the fix when one fails.
pub fn preflight(sysfs: &Sysfs, address: PciAddress) -> Result<(PciDevice, GroupNode), VfioError> {
    let device = sysfs.device(address)?;
    if !device.is_bound_to_vfio() {
        return Err(VfioError::NotBoundToVfio {
            address,
            driver: device.driver.clone(),
            vfio_pci_loaded: sysfs.vfio_pci_loaded(),
        });
    }
    let group = device
        .iommu_group
        .ok_or(VfioError::NoIommuGroup { address })?;
    let dev_vfio = dev_vfio_dir(sysfs);
    if !dev_vfio.is_dir() {
        return Err(VfioError::VfioMissing { path: dev_vfio });
    }
    let plain = dev_vfio.join(group.to_string());
    let noiommu = dev_vfio.join(format!("noiommu-{group}"));
    let node = if plain.exists() {
        GroupNode {
            group,
            path: plain,
            noiommu: false,
        }
    } else if noiommu.exists() {
        GroupNode {
            group,
            path: noiommu,
            noiommu: true,
        }
    } else {
        return Err(VfioError::GroupNodeMissing { address, group });
    };
    Ok((device, node))
}

fn dev_vfio_dir(sysfs: &Sysfs) -> PathBuf {
    sysfs.root().join("dev/vfio")
}

/// Maps an open(2) failure on a vfio node to the error that says what to do.
pub(crate) fn open_error(path: &Path, group: Option<u32>, source: io::Error) -> VfioError {
    match source.raw_os_error() {
        Some(libc::ENOENT) => VfioError::VfioMissing {
            path: path.to_path_buf(),
        },
        Some(libc::EACCES) | Some(libc::EPERM) => VfioError::Permission {
            path: path.to_path_buf(),
            source,
        },
        Some(libc::EBUSY) if group.is_some() => VfioError::GroupBusy {
            group: group.unwrap_or_default(),
            path: path.to_path_buf(),
        },
        _ => VfioError::Open {
            path: path.to_path_buf(),
            source,
        },
    }
}

fn open_node(path: &Path, group: Option<u32>) -> Result<OwnedFd, VfioError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|source| open_error(path, group, source))
}

/// IOMMU types the container offers (VFIO_CHECK_EXTENSION).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    /// VFIO_TYPE1v2_IOMMU.
    pub type1v2: bool,
    /// VFIO_TYPE1_IOMMU.
    pub type1: bool,
    /// VFIO_NOIOMMU_IOMMU.
    pub noiommu: bool,
}

#[derive(Debug, Default)]
struct State {
    mode: Option<IommuMode>,
    groups: Vec<(u32, Arc<OwnedFd>)>,
}

/// A VFIO container: one IOMMU address space shared by the devices opened
/// through it. Cheap to share (`Arc` inside); `Send + Sync`.
#[derive(Debug)]
pub struct Container {
    fd: Arc<OwnedFd>,
    sysfs: Sysfs,
    extensions: Extensions,
    state: Mutex<State>,
    iova: Mutex<super::dma::IovaAllocator>,
}

impl Container {
    /// Opens `/dev/vfio/vfio` on this host.
    pub fn open() -> Result<Container, VfioError> {
        Self::open_at(Sysfs::default())
    }

    /// Opens `<root>/dev/vfio/vfio`, where `root` is the sysfs root (tests
    /// use a fake tree). Checks the API version and which IOMMU types exist.
    pub fn open_at(sysfs: Sysfs) -> Result<Container, VfioError> {
        let dir = dev_vfio_dir(&sysfs);
        if !dir.is_dir() {
            return Err(VfioError::VfioMissing { path: dir });
        }
        let path = dir.join("vfio");
        let fd = open_node(&path, None)?;
        let target = path.display().to_string();
        let ioctl_error = |op, source| VfioError::Ioctl {
            op,
            target: target.clone(),
            source,
        };
        let version = ioctl_value(&fd, VFIO_GET_API_VERSION, 0)
            .map_err(|e| ioctl_error("VFIO_GET_API_VERSION", e))?;
        // VFIO_API_VERSION is 0; the ioctl returns an int.
        let expected = VFIO_API_VERSION as i32;
        if version != expected {
            return Err(VfioError::ApiVersion {
                got: version,
                expected,
            });
        }
        let has = |ext: u32| -> Result<bool, VfioError> {
            ioctl_value(&fd, VFIO_CHECK_EXTENSION, ext.into())
                .map(|rc| rc > 0)
                .map_err(|e| ioctl_error("VFIO_CHECK_EXTENSION", e))
        };
        let extensions = Extensions {
            type1v2: has(VFIO_TYPE1v2_IOMMU)?,
            type1: has(VFIO_TYPE1_IOMMU)?,
            noiommu: has(VFIO_NOIOMMU_IOMMU)?,
        };
        Ok(Container {
            fd: Arc::new(fd),
            sysfs,
            extensions,
            state: Mutex::new(State::default()),
            iova: Mutex::new(Default::default()),
        })
    }

    /// The IOMMU types this container offers.
    pub fn extensions(&self) -> Extensions {
        self.extensions
    }

    /// The IOMMU model in use, once the first device was opened.
    pub fn iommu_mode(&self) -> Option<IommuMode> {
        self.lock().mode
    }

    /// The sysfs this container reads.
    pub fn sysfs(&self) -> &Sysfs {
        &self.sysfs
    }

    pub(crate) fn fd(&self) -> &Arc<OwnedFd> {
        &self.fd
    }

    pub(crate) fn iova_allocator(&self) -> std::sync::MutexGuard<'_, super::dma::IovaAllocator> {
        // The allocator is updated in one step; a poisoned lock is usable.
        self.iova.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves State consistent (each
        // field is updated in one step), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens the device at `address` (bound to vfio-pci): its group is
    /// opened, checked and attached on first use, and the IOMMU type is set
    /// after the first group.
    pub fn open_device(&self, address: PciAddress) -> Result<Device, VfioError> {
        let (_, node) = preflight(&self.sysfs, address)?;
        let group = self.attach_group(&node)?;
        Device::open(address, group, self.fd.clone())
    }

    /// Attaches the IOMMU group of the device at `address` (bound to
    /// vfio-pci) without opening the device: the container's IOMMU type is
    /// set with the first group, and only then can memory be mapped. Lets
    /// the buffer pool be mapped before the devices that will use it are
    /// opened.
    pub fn attach(&self, address: PciAddress) -> Result<(), VfioError> {
        let (_, node) = preflight(&self.sysfs, address)?;
        self.attach_group(&node).map(|_| ())
    }

    fn attach_group(&self, node: &GroupNode) -> Result<Arc<OwnedFd>, VfioError> {
        let mut state = self.lock();
        if let Some((_, fd)) = state.groups.iter().find(|(g, _)| *g == node.group) {
            return Ok(fd.clone());
        }
        if let Some(mode) = state.mode {
            if (mode == IommuMode::NoIommu) != node.noiommu {
                return Err(VfioError::MixedIommuModes {
                    group: node.group,
                    group_noiommu: node.noiommu,
                });
            }
        }
        let group_fd = open_node(&node.path, Some(node.group))?;
        let target = node.path.display().to_string();
        let mut status = vfio_group_status {
            argsz: argsz::<vfio_group_status>(),
            flags: 0,
        };
        ioctl_ref(&group_fd, VFIO_GROUP_GET_STATUS, &mut status).map_err(|source| {
            VfioError::Ioctl {
                op: "VFIO_GROUP_GET_STATUS",
                target: target.clone(),
                source,
            }
        })?;
        if status.flags & VFIO_GROUP_FLAGS_VIABLE == 0 {
            return Err(VfioError::GroupNotViable {
                group: node.group,
                members: self.sysfs.group_members(node.group).unwrap_or_default(),
            });
        }
        let mode = match state.mode {
            Some(mode) => mode,
            None => self.choose_mode(node)?,
        };
        if status.flags & VFIO_GROUP_FLAGS_CONTAINER_SET == 0 {
            let mut container_fd: libc::c_int = std::os::fd::AsRawFd::as_raw_fd(&*self.fd);
            ioctl_ref(&group_fd, VFIO_GROUP_SET_CONTAINER, &mut container_fd).map_err(
                |source| VfioError::Ioctl {
                    op: "VFIO_GROUP_SET_CONTAINER",
                    target: target.clone(),
                    source,
                },
            )?;
        }
        if state.mode.is_none() {
            let kind = match mode {
                IommuMode::Type1v2 => VFIO_TYPE1v2_IOMMU,
                IommuMode::Type1 => VFIO_TYPE1_IOMMU,
                IommuMode::NoIommu => VFIO_NOIOMMU_IOMMU,
            };
            ioctl_value(&self.fd, VFIO_SET_IOMMU, kind.into()).map_err(|source| {
                VfioError::Ioctl {
                    op: "VFIO_SET_IOMMU",
                    target: "/dev/vfio/vfio".to_string(),
                    source,
                }
            })?;
            state.mode = Some(mode);
            if mode == IommuMode::NoIommu {
                log::warn!(
                    "VFIO group {} runs in no-IOMMU mode: no DMA isolation, a faulty \
                     device or driver can write anywhere in memory",
                    node.group
                );
            }
        }
        let group_fd = Arc::new(group_fd);
        state.groups.push((node.group, group_fd.clone()));
        Ok(group_fd)
    }

    fn choose_mode(&self, node: &GroupNode) -> Result<IommuMode, VfioError> {
        let ext = self.extensions;
        if node.noiommu {
            return if ext.noiommu {
                Ok(IommuMode::NoIommu)
            } else {
                Err(VfioError::NoIommuUnavailable { group: node.group })
            };
        }
        if ext.type1v2 {
            Ok(IommuMode::Type1v2)
        } else if ext.type1 {
            Ok(IommuMode::Type1)
        } else {
            Err(VfioError::NoIommuType)
        }
    }

    /// `VFIO_IOMMU_GET_INFO`: the IOMMU page sizes the container supports
    /// (bit n set = 2^n bytes). Only after the first device was opened,
    /// and not in no-IOMMU mode.
    pub fn iova_page_sizes(&self) -> Result<u64, VfioError> {
        let mut info = vfio_iommu_type1_info {
            argsz: argsz::<vfio_iommu_type1_info>(),
            ..Default::default()
        };
        ioctl_ref(&self.fd, VFIO_IOMMU_GET_INFO, &mut info).map_err(|source| VfioError::Ioctl {
            op: "VFIO_IOMMU_GET_INFO",
            target: "/dev/vfio/vfio".to_string(),
            source,
        })?;
        Ok(info.iova_pgsizes)
    }

    /// The IOMMU's usable IOVA ranges (inclusive ends), from the
    /// VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE capability of
    /// `VFIO_IOMMU_GET_INFO` (Linux >= 5.4; include/uapi/linux/vfio.h).
    /// `None` when the kernel has no such capability. Holes (the MSI
    /// window, reserved regions) are left out by the kernel.
    pub fn iova_ranges(&self) -> Result<Option<Vec<(u64, u64)>>, VfioError> {
        let err = |source| VfioError::Ioctl {
            op: "VFIO_IOMMU_GET_INFO",
            target: "/dev/vfio/vfio".to_string(),
            source,
        };
        let mut info = vfio_iommu_type1_info {
            argsz: argsz::<vfio_iommu_type1_info>(),
            ..Default::default()
        };
        ioctl_ref(&self.fd, VFIO_IOMMU_GET_INFO, &mut info).map_err(err)?;
        if info.flags & VFIO_IOMMU_INFO_CAPS == 0
            || info.argsz as usize <= argsz::<vfio_iommu_type1_info>() as usize
        {
            return Ok(None);
        }
        // Ask again with room for the capability chain the kernel asked
        // for; u64 words keep the buffer aligned for the header.
        let words = (info.argsz as usize).div_ceil(8);
        let mut buf = vec![0u64; words];
        // argsz sits in the low half of word 0 (flags in the high half).
        let size = (words * 8) as u32;
        buf[0] = if cfg!(target_endian = "little") {
            size as u64
        } else {
            (size as u64) << 32
        };
        ioctl_buf(&self.fd, VFIO_IOMMU_GET_INFO, &mut buf).map_err(err)?;
        let bytes: Vec<u8> = buf.iter().flat_map(|w| w.to_ne_bytes()).collect();
        Ok(parse_iova_ranges(&bytes))
    }
}

/// Walks the capability chain of a `vfio_iommu_type1_info` buffer for
/// VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE (`vfio_info_cap_header`, then
/// `vfio_iommu_type1_info_cap_iova_range` with its flexible array of
/// `vfio_iova_range`; offsets from vfio-bindings' layouts). Read byte by
/// byte and bounds-checked, because the kernel only promises the chain
/// inside argsz: a broken chain gives `None`.
pub(crate) fn parse_iova_ranges(buf: &[u8]) -> Option<Vec<(u64, u64)>> {
    use std::mem::{offset_of, size_of};
    type Cap = vfio_iommu_type1_info_cap_iova_range;
    let u32_at =
        |o: usize| -> Option<u32> { Some(u32::from_ne_bytes(buf.get(o..o + 4)?.try_into().ok()?)) };
    let u16_at =
        |o: usize| -> Option<u16> { Some(u16::from_ne_bytes(buf.get(o..o + 2)?.try_into().ok()?)) };
    let u64_at =
        |o: usize| -> Option<u64> { Some(u64::from_ne_bytes(buf.get(o..o + 8)?.try_into().ok()?)) };
    let mut at = u32_at(offset_of!(vfio_iommu_type1_info, cap_offset))? as usize;
    let mut hops = 0;
    while at != 0 && hops < 64 {
        hops += 1;
        let id = u16_at(at + offset_of!(vfio_info_cap_header, id))?;
        let next = u32_at(at + offset_of!(vfio_info_cap_header, next))? as usize;
        if u32::from(id) == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE {
            let n = u32_at(at + offset_of!(Cap, nr_iovas))? as usize;
            let mut ranges = Vec::with_capacity(n.min(64));
            for i in 0..n {
                let o = at + offset_of!(Cap, iova_ranges) + i * size_of::<vfio_iova_range>();
                ranges.push((
                    u64_at(o + offset_of!(vfio_iova_range, start))?,
                    u64_at(o + offset_of!(vfio_iova_range, end))?,
                ));
            }
            return Some(ranges);
        }
        at = next;
    }
    None
}
