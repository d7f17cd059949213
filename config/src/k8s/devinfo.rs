//! Device-info files the SR-IOV device plugin writes for each device it
//! allocates (Network Plumbing WG Device Information Spec 1.1.0;
//! anchors.md 3.1): `/var/run/k8s.cni.cncf.io/devinfo/dp/<resource>-<device>-device.json`,
//! `{"type":"pci","version":"1.1.0","pci":{"pci-address":...,"pf-pci-address":...,
//! "vhost-net":...,"rdma-device":...,"representor-device":...}}`
//! (field names: network-attachment-definition-client,
//! pkg/apis/k8s.cni.cncf.io/v1/types.go, `DeviceInfo`, `PciDevice`). The
//! same object is the `device-info` of a network-status entry.

use drivers::pci::PciAddress;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Where the device plugin's files are, relative to the root.
pub const DEVINFO_DP_DIR: &str = "var/run/k8s.cni.cncf.io/devinfo/dp";

/// A Device Information Spec object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DeviceInfoSpec {
    /// `pci`, `vhost-user`, `memif` or `vdpa`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The spec version (`1.0.0`, `1.1.0`).
    #[serde(default)]
    pub version: String,
    /// For `pci` devices.
    #[serde(default)]
    pub pci: Option<PciDeviceInfo>,
}

/// `pci` of a Device Information Spec object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PciDeviceInfo {
    /// The device's PCI address.
    #[serde(rename = "pci-address", default)]
    pub pci_address: Option<String>,
    /// Its PF's PCI address, for a VF.
    #[serde(rename = "pf-pci-address", default)]
    pub pf_pci_address: Option<String>,
    /// The vhost-net device node, when shared.
    #[serde(rename = "vhost-net", default)]
    pub vhost_net: Option<String>,
}

impl DeviceInfoSpec {
    /// The PCI address of a `pci` device, when it has a valid one.
    pub fn pci_address(&self) -> Option<PciAddress> {
        if self.kind != "pci" {
            return None;
        }
        self.pci.as_ref()?.pci_address.as_deref()?.parse().ok()
    }
}

/// One file of the device-info directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevInfoFile {
    /// Its path.
    pub path: PathBuf,
    /// Its content, or why it could not be read or understood.
    pub info: Result<DeviceInfoSpec, String>,
}

/// Reads a Device Information Spec object.
pub fn parse_device_info(json: &str) -> Result<DeviceInfoSpec, String> {
    serde_json::from_str(json).map_err(|e| e.to_string())
}

/// Every `*.json` file of `<root>/var/run/k8s.cni.cncf.io/devinfo/dp`,
/// sorted by name; none when the directory does not exist.
pub fn read_devinfo_dir(root: &Path) -> Vec<DevInfoFile> {
    let dir = root.join(DEVINFO_DP_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let info = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| parse_device_info(&text));
            DevInfoFile { path, info }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::fixture::tree;

    #[test]
    fn reads_the_spec_shape_and_skips_the_rest() {
        let dp = |name: &str| format!("{DEVINFO_DP_DIR}/{name}");
        let dir = tree(&[
            (
                &dp("intel.com-sriov-0000:03:02.1-device.json"),
                r#"{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:03:02.1","pf-pci-address":"0000:03:00.0","vhost-net":"/dev/vhost-net"}}"#,
            ),
            (&dp("broken-device.json"), "{\"type\":"),
            (&dp("notes.txt"), "x"),
        ]);
        let files = read_devinfo_dir(dir.path());
        assert_eq!(files.len(), 2);
        assert!(files[0].info.is_err(), "{:?}", files[0]);
        let info = files[1].info.clone().unwrap();
        assert_eq!(info.pci_address(), Some("0000:03:02.1".parse().unwrap()));
        let pci = info.pci.unwrap();
        assert_eq!(pci.pf_pci_address.as_deref(), Some("0000:03:00.0"));
        assert_eq!(pci.vhost_net.as_deref(), Some("/dev/vhost-net"));
        assert!(read_devinfo_dir(&dir.path().join("nowhere")).is_empty());
    }

    #[test]
    fn other_types_have_no_pci_address() {
        let i = parse_device_info(r#"{"type":"vhost-user","vhost-user":{"path":"/x"}}"#).unwrap();
        assert_eq!(i.pci_address(), None);
        let i = parse_device_info(r#"{"type":"pci","pci":{"pci-address":"bad"}}"#).unwrap();
        assert_eq!(i.pci_address(), None);
    }
}
