//! Why vfio could not give us a device, memory mapping or reset, with the fix.

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;

use crate::pci::{GroupMember, PciAddress, PciError};

/// A vfio failure. Every message names what failed and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum VfioError {
    /// Reading sysfs failed, or the device is missing.
    #[error(transparent)]
    Pci(#[from] PciError),

    /// `/dev/vfio` (or `/dev/vfio/vfio`) does not exist.
    #[error(
        "{} does not exist: the vfio-pci module is not loaded. Fix: run `modprobe \
         vfio-pci` on the host (in Kubernetes: load it on the node, and request a \
         vfio-pci resource from the SR-IOV device plugin so the pod gets /dev/vfio)",
        .path.display()
    )]
    VfioMissing {
        /// The missing path.
        path: PathBuf,
    },

    /// Opening a vfio node was refused.
    #[error(
        "cannot open {}: {source}. Fix: run as root, or give the pod /dev/vfio access \
         (the SR-IOV device plugin mounts /dev/vfio/vfio and /dev/vfio/<group> for a \
         vfio-pci resource; a non-root user needs read-write access to both)",
        .path.display()
    )]
    Permission {
        /// The node.
        path: PathBuf,
        /// EACCES or EPERM.
        source: io::Error,
    },

    /// The group is held by someone else.
    #[error(
        "{} is busy: another process already holds VFIO group {group} (a group can \
         be opened by one process at a time). Fix: stop the other user (find it \
         with `fuser -v {}`), or use another VF",
        .path.display(), .path.display()
    )]
    GroupBusy {
        /// The group number.
        group: u32,
        /// Its node.
        path: PathBuf,
    },

    /// Another open failure.
    #[error("cannot open {}: {source}", .path.display())]
    Open {
        /// The node.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },

    /// The kernel speaks another VFIO API version.
    #[error(
        "VFIO API version {got} from /dev/vfio/vfio, expected {expected}: this \
         kernel's vfio is not supported"
    )]
    ApiVersion {
        /// What the kernel answered.
        got: i32,
        /// What fastpath speaks.
        expected: i32,
    },

    /// The container offers no IOMMU type we can use.
    #[error(
        "the VFIO container supports neither the TYPE1v2 nor the TYPE1 IOMMU: run \
         `modprobe vfio_iommu_type1` and boot with the IOMMU on (`intel_iommu=on \
         iommu=pt`), or for a no-IOMMU VM load vfio with \
         `enable_unsafe_noiommu_mode=1`"
    )]
    NoIommuType,

    /// A no-IOMMU group, but the container does not offer no-IOMMU mode.
    #[error(
        "VFIO group {group} is a no-IOMMU group but the container does not offer \
         the no-IOMMU type: load vfio with `modprobe vfio enable_unsafe_noiommu_mode=1`"
    )]
    NoIommuUnavailable {
        /// The group.
        group: u32,
    },

    /// One container cannot mix no-IOMMU groups with IOMMU groups.
    #[error(
        "VFIO group {group} is {}, but this container already uses {}: a process \
         cannot drive devices with and without an IOMMU together",
        if *.group_noiommu { "a no-IOMMU group" } else { "an IOMMU group" },
        if *.group_noiommu { "an IOMMU" } else { "no-IOMMU mode" }
    )]
    MixedIommuModes {
        /// The group.
        group: u32,
        /// True when the new group is the no-IOMMU one.
        group_noiommu: bool,
    },

    /// The device is not bound to vfio-pci.
    #[error("{}", not_bound_message(*.address, .driver.as_deref(), *.vfio_pci_loaded))]
    NotBoundToVfio {
        /// The device.
        address: PciAddress,
        /// The driver it is bound to, if any.
        driver: Option<String>,
        /// Whether /sys/bus/pci/drivers/vfio-pci exists.
        vfio_pci_loaded: bool,
    },

    /// The device has no IOMMU group.
    #[error(
        "{address} has no IOMMU group: boot with the IOMMU on (`intel_iommu=on \
         iommu=pt`, or `amd_iommu=on`), or, in a VM without a virtual IOMMU, load \
         vfio with `enable_unsafe_noiommu_mode=1` (no isolation)"
    )]
    NoIommuGroup {
        /// The device.
        address: PciAddress,
    },

    /// The group node is missing although vfio is there.
    #[error(
        "neither /dev/vfio/{group} nor /dev/vfio/noiommu-{group} exists for {address} \
         (IOMMU group {group}). Fix: give the pod /dev/vfio/{group} (the SR-IOV device \
         plugin does it for a vfio-pci resource), or check that {address} is bound \
         to vfio-pci"
    )]
    GroupNodeMissing {
        /// The device.
        address: PciAddress,
        /// The group.
        group: u32,
    },

    /// Some device in the group is bound to a kernel driver.
    #[error("{}", not_viable_message(*.group, .members))]
    GroupNotViable {
        /// The group.
        group: u32,
        /// Every device in it, with its driver.
        members: Vec<GroupMember>,
    },

    /// An ioctl failed.
    #[error("{op} on {target} failed: {source}{}", ioctl_hint(op, source))]
    Ioctl {
        /// The ioctl name.
        op: &'static str,
        /// What it was called on.
        target: String,
        /// The errno.
        source: io::Error,
    },

    /// The vfio device is not a PCI device.
    #[error("{address}: vfio says it is not a PCI device (flags {flags:#x})")]
    NotPci {
        /// The device.
        address: PciAddress,
        /// `vfio_device_info.flags`.
        flags: u32,
    },

    /// A region index the device does not have, or that is empty.
    #[error("{address} has no usable region {index}{}", region_name(*.index))]
    NoRegion {
        /// The device.
        address: PciAddress,
        /// The region index.
        index: u32,
    },

    /// A config space access outside the config region.
    #[error(
        "config space access of {len} bytes at {offset:#x} is outside the \
         {size:#x}-byte config space of {address}"
    )]
    ConfigOutOfRange {
        /// The device.
        address: PciAddress,
        /// The offset asked for.
        offset: u64,
        /// The access size.
        len: usize,
        /// The config region size.
        size: u64,
    },

    /// pread/pwrite on the device moved fewer bytes than asked.
    #[error("{op} of {len} bytes at {offset:#x} of {address}: {source}")]
    RegionIo {
        /// "read" or "write".
        op: &'static str,
        /// The device.
        address: PciAddress,
        /// The file offset.
        offset: u64,
        /// The length.
        len: usize,
        /// The cause (an errno, or a short transfer).
        source: io::Error,
    },

    /// mmap of a BAR failed.
    #[error("mmap of BAR{index} ({size:#x} bytes) of {address} failed: {source}")]
    BarMap {
        /// The device.
        address: PciAddress,
        /// The BAR index.
        index: u32,
        /// Its size.
        size: u64,
        /// The cause.
        source: io::Error,
    },

    /// The device cannot be reset through vfio.
    #[error(
        "{address} does not support VFIO_DEVICE_RESET (no function-level or PM \
         reset): reset it through its own registers (the VF's CTRL.RST) instead"
    )]
    ResetUnsupported {
        /// The device.
        address: PciAddress,
    },

    /// VFIO_IOMMU_MAP_DMA failed.
    #[error(
        "VFIO_IOMMU_MAP_DMA of {len:#x} bytes at IOVA {iova:#x} failed: {source}{}",
        map_hint(source)
    )]
    DmaMap {
        /// The IOVA.
        iova: u64,
        /// The length.
        len: usize,
        /// The errno.
        source: io::Error,
    },

    /// VFIO_IOMMU_UNMAP_DMA failed or unmapped another size.
    #[error("VFIO_IOMMU_UNMAP_DMA of {len:#x} bytes at IOVA {iova:#x} failed: {source}")]
    DmaUnmap {
        /// The IOVA.
        iova: u64,
        /// The length.
        len: usize,
        /// The cause.
        source: io::Error,
    },

    /// DMA mapping before any device was opened.
    #[error(
        "cannot map DMA memory yet: the container gets its IOMMU type when the first \
         device is opened; open the device first"
    )]
    NoIommuYet,

    /// The IOMMU's usable ranges have no room left.
    #[error(
        "no room for {len:#x} more bytes in the IOMMU's usable IOVA ranges: map fewer \
         or smaller regions (a pool of fewer buffers)"
    )]
    IovaSpace {
        /// Bytes asked.
        len: u64,
    },

    /// No-IOMMU mode needs hugepage-backed memory.
    #[error(
        "no-IOMMU DMA needs hugepage-backed memory (4K pages are not physically \
         contiguous and the kernel may move them): allocate the region with 2M or \
         1G hugepages"
    )]
    NoIommuNeedsHugepages,

    /// A physical address could not be found in /proc/self/pagemap.
    #[error("no physical address for virtual address {virt:#x}: {why}")]
    PhysicalAddress {
        /// The virtual address.
        virt: usize,
        /// Why.
        why: String,
    },
}

fn not_bound_message(address: PciAddress, driver: Option<&str>, vfio_pci_loaded: bool) -> String {
    let mut fix = String::new();
    if !vfio_pci_loaded {
        fix.push_str("modprobe vfio-pci; ");
    }
    if let Some(driver) = driver {
        let _ = write!(
            fix,
            "echo {address} > /sys/bus/pci/drivers/{driver}/unbind; "
        );
    }
    let _ = write!(
        fix,
        "echo vfio-pci > /sys/bus/pci/devices/{address}/driver_override; \
         echo {address} > /sys/bus/pci/drivers_probe"
    );
    let bound = match driver {
        Some(driver) => format!("is bound to {driver}"),
        None => "is not bound to any driver".to_string(),
    };
    let module = if vfio_pci_loaded {
        ""
    } else {
        " (and the vfio-pci module is not loaded)"
    };
    format!("{address} {bound}, not vfio-pci{module}: run `{fix}`")
}

fn not_viable_message(group: u32, members: &[GroupMember]) -> String {
    let mut text = format!(
        "VFIO group {group} is not viable: every device in an IOMMU group must be \
         bound to vfio-pci or unbound before the group can be used. Devices in group {group}:"
    );
    for member in members {
        let driver = member.driver.as_deref().unwrap_or("no driver");
        let verdict = if member.blocks_vfio() {
            format!(
                "must be bound to vfio-pci or unbound (`echo {} > /sys/bus/pci/drivers/{driver}/unbind`)",
                member.address
            )
        } else if member.bridge {
            "bridge, ok".to_string()
        } else {
            "ok".to_string()
        };
        let _ = write!(text, "\n  {} bound to {driver}: {verdict}", member.address);
    }
    if members.is_empty() {
        text.push_str(" (none found in sysfs)");
    }
    text
}

fn ioctl_hint(op: &str, source: &io::Error) -> &'static str {
    match (op, source.raw_os_error()) {
        ("VFIO_GROUP_GET_DEVICE_FD", Some(libc::EBUSY)) => {
            ": the device is already open (in this or another process)"
        }
        ("VFIO_DEVICE_RESET", _) => {
            ": the device could not be reset; reset it through its own registers"
        }
        ("VFIO_SET_IOMMU", Some(libc::EBUSY)) => ": the container already has an IOMMU type set",
        (_, Some(libc::ENOTTY)) => ": not a vfio node (or the kernel lacks this ioctl)",
        _ => "",
    }
}

fn map_hint(source: &io::Error) -> &'static str {
    match source.raw_os_error() {
        Some(libc::ENOMEM) => {
            ": the locked-memory limit is too low for pinning DMA memory. Fix: raise \
             `ulimit -l` (RLIMIT_MEMLOCK) or run with CAP_IPC_LOCK"
        }
        Some(libc::EEXIST) => ": this IOVA range overlaps a range already mapped",
        Some(libc::EINVAL) => {
            ": the IOVA or length is not aligned to the IOMMU page size, or lies \
             outside the IOMMU aperture"
        }
        _ => "",
    }
}

fn region_name(index: u32) -> &'static str {
    match index {
        0 => " (BAR0)",
        1 => " (BAR1)",
        2 => " (BAR2)",
        3 => " (BAR3)",
        4 => " (BAR4)",
        5 => " (BAR5)",
        6 => " (expansion ROM)",
        7 => " (config space)",
        _ => "",
    }
}
