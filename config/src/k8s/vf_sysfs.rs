//! One VF as the host shows it: its sysfs entry (driver, IOMMU group,
//! NUMA node, ids) and its VFIO group node under /dev/vfio.
//!
//! A VF the fast path drives must exist, be bound to vfio-pci, sit in an
//! IOMMU group, and have that group's node in the container: the device
//! plugin adds `/dev/vfio/<group>` (its `_INFO` `vfio.dev-mount`) for
//! pools of vfio-pci devices (anchors.md 3.1, 3.5). In vfio's no-IOMMU
//! mode the node is `/dev/vfio/noiommu-<group>` (linux
//! drivers/vfio/group.c, `vfio_group_alloc`: "noiommu-%d").

use super::finding::Finding;
use super::pcidevice::{DeviceInfo, PCIDEVICE_PREFIX};
use drivers::pci::{lookup, PciAddress, PciError, Sysfs, VFIO_PCI_DRIVER};
use std::path::{Path, PathBuf};

/// What the other checks need to know of a VF that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VfFound {
    /// Its address.
    pub address: PciAddress,
    /// Where it was named (`PCIDEVICE_INTEL_COM_SRIOV`, a device-info file).
    pub source: String,
    /// Its NUMA node, when the host has more than one.
    pub numa_node: Option<u32>,
}

/// Checks the VF at `address`, named by `source`, under `root`; `info` is
/// its `_INFO` entry when the device plugin gave one. Returns the
/// findings and, when the device exists, what later checks use.
pub fn check_vf(
    root: &Path,
    source: &str,
    address: PciAddress,
    info: Option<&DeviceInfo>,
) -> (Vec<Finding>, Option<VfFound>) {
    let name = address.to_string();
    let sysfs = Sysfs::new(root);
    let dev = match sysfs.device(address) {
        Ok(d) => d,
        Err(PciError::NotFound { path, .. }) => {
            let exists = format!(
                "check the VF exists (`lspci -D -s {address}` on the node; VFs vanish \
                 when the PF's sriov_numvfs changes)"
            );
            let fix = if source.starts_with(PCIDEVICE_PREFIX) || source.contains("devinfo") {
                format!(
                    "the device plugin's allocation does not match this node: {exists}, \
                     restart the sriov-device-plugin pod on the node so it re-advertises, \
                     and recreate this pod; and check /sys is the host's sysfs (not a copy \
                     or an empty mount)"
                )
            } else {
                format!("{exists}; in a pod, use FP_PORTS=all to take the device plugin's VFs")
            };
            let f = Finding::fail(
                name,
                format!(
                    "{source} names {address}, which is not a PCI device here \
                     ({} does not exist)",
                    path.display()
                ),
                fix,
            );
            return (vec![f], None);
        }
        Err(e) => {
            let f = Finding::fail(
                name,
                format!("{source} names {address}: {e}"),
                "check /sys is mounted read-only from the host (the container runtime's default)",
            );
            return (vec![f], None);
        }
    };
    let found = VfFound {
        address,
        source: source.to_string(),
        numa_node: dev.numa_node,
    };
    let ids = format!("{:04x}:{:04x}", dev.vendor_id, dev.device_id);
    let mut out = Vec::new();
    let kind = match lookup(dev.vendor_id, dev.device_id) {
        Some(s) => format!("{ids} {}", s.name),
        None => {
            out.push(Finding::fail(
                name.clone(),
                format!("{source} names {address}, device {ids}, which fastpath has no driver for"),
                "select VFs fastpath drives (ixgbevf, iavf, igbvf: the README's \
                 supported devices) in the device plugin's resource config, \
                 selectors.vendors [\"8086\"] and selectors.devices",
            ));
            ids.clone()
        }
    };
    if !dev.is_bound_to_vfio() {
        let bound = dev.driver.as_deref().unwrap_or("no driver");
        out.push(Finding::fail(
            name,
            format!("{address} ({kind}, from {source}) is bound to {bound}, not {VFIO_PCI_DRIVER}"),
            format!(
                "on the node, bind it to vfio-pci (scripts/ bind script, or \
                 `driverctl set-override {address} vfio-pci`), and give the pool \
                 selectors.drivers [\"vfio-pci\"] in the device plugin's ConfigMap"
            ),
        ));
        return (out, Some(found));
    }
    let Some(group) = dev.iommu_group else {
        out.push(Finding::fail(
            name,
            format!("{address} is bound to vfio-pci but has no IOMMU group"),
            "enable the IOMMU on the node's kernel command line (intel_iommu=on iommu=pt) \
             and reboot",
        ));
        return (out, Some(found));
    };
    let node = group_node(root, group);
    let expected = format!("/dev/vfio/{group}");
    let said = info
        .and_then(|i| i.vfio.as_ref())
        .and_then(|v| v.dev_mount.clone());
    if let Some(said) = &said {
        let noiommu = format!("/dev/vfio/noiommu-{group}");
        if *said != expected && *said != noiommu {
            out.push(Finding::fail(
                name,
                format!(
                    "{source}_INFO gives {address} the group node {said}, but sysfs puts it \
                     in IOMMU group {group} ({expected})"
                ),
                "the VF was rebound or moved since the pod started: delete the pod so it \
                 is scheduled with a fresh allocation",
            ));
            return (out, Some(found));
        }
    }
    match node {
        Some(path) => {
            let numa = dev
                .numa_node
                .map_or(String::new(), |n| format!(", NUMA node {n}"));
            out.push(Finding::ok(
                name,
                format!(
                    "{kind} from {source}: vfio-pci, IOMMU group {group} ({}){numa}",
                    display_in_root(root, &path)
                ),
            ));
        }
        None => out.push(Finding::fail(
            name,
            format!("{address} is in IOMMU group {group} but {expected} is not in the container"),
            "request the VF through the device plugin (resources.limits \
             intel.com/<pool>), whose vfio-pci pools add the group node; outside \
             Kubernetes, pass --device /dev/vfio/vfio --device "
                .to_string()
                + &expected,
        )),
    }
    (out, Some(found))
}

/// `/dev/vfio/<group>` or, in no-IOMMU mode, `/dev/vfio/noiommu-<group>`
/// under `root`, whichever exists.
fn group_node(root: &Path, group: u32) -> Option<PathBuf> {
    [
        format!("dev/vfio/{group}"),
        format!("dev/vfio/noiommu-{group}"),
    ]
    .into_iter()
    .map(|rel| root.join(rel))
    .find(|p| p.exists())
}

/// `path` as the operator knows it: without the `--root` prefix.
pub(crate) fn display_in_root(root: &Path, path: &Path) -> String {
    match path.strip_prefix(root) {
        Ok(rel) => format!("/{}", rel.display()),
        Err(_) => path.display().to_string(),
    }
}
