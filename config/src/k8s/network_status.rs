//! The Multus `k8s.v1.cni.cncf.io/network-status` annotation, read from a
//! Downward API file, and what it says about each VF: the interface name,
//! IPs and MAC the network was given.
//!
//! Facts (anchors.md 3.2): the annotation is a JSON list, one entry per
//! network, with `name`, `interface`, `ips`, `mac`, `mtu`, `default`,
//! `dns`, `gateway` and `device-info` (for SR-IOV: `pci.pci-address`)
//! (network-attachment-definition-client, pkg/apis/k8s.cni.cncf.io/v1/types.go,
//! `NetworkStatus`). In the container it is read through a Downward API
//! volume, commonly at `/etc/podnetinfo/annotations`, whose lines are
//! `key="value"` with the value quoted as Go's `%q` does
//! ([`super::go_quote`]).
//!
//! With a userspace (vfio) driver the SR-IOV CNI's IPAM still allocates
//! addresses but nothing applies them (sriov-cni README): the fast path
//! must, on the port's kernel exception interface. [`PortAddressing`] is
//! that, per PCI address.

use super::devinfo::DeviceInfoSpec;
use super::go_quote::{unquote, UnquoteError};
use drivers::net::MacAddr;
use drivers::pci::PciAddress;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

/// Where the Downward API volume usually puts the pod's annotations.
pub const DEFAULT_ANNOTATIONS_PATH: &str = "etc/podnetinfo/annotations";
/// The annotation Multus writes.
pub const NETWORK_STATUS_KEY: &str = "k8s.v1.cni.cncf.io/network-status";

/// One entry of the network-status list (fields we use).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct NetworkStatus {
    /// The network (`namespace/name` of its NetworkAttachmentDefinition).
    #[serde(default)]
    pub name: String,
    /// The interface name in the pod (`net1`).
    #[serde(default)]
    pub interface: Option<String>,
    /// Addresses IPAM gave it, usually without a prefix length.
    #[serde(default)]
    pub ips: Vec<String>,
    /// Its MAC address.
    #[serde(default)]
    pub mac: Option<String>,
    /// Its MTU.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// True for the cluster network.
    #[serde(default)]
    pub default: bool,
    /// The device behind it.
    #[serde(rename = "device-info", default)]
    pub device_info: Option<DeviceInfoSpec>,
}

/// An address for an exception interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceAddress {
    /// The address.
    pub addr: IpAddr,
    /// Its prefix length when the annotation gave one (`10.0.0.2/24`).
    pub prefix: Option<u8>,
}

/// What the network-status annotation says a VF's kernel exception
/// interface should carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortAddressing {
    /// The VF.
    pub pci_address: PciAddress,
    /// The network's name.
    pub network: String,
    /// The interface name the CNI reported (`net1`).
    pub interface: Option<String>,
    /// Its addresses.
    pub ips: Vec<InterfaceAddress>,
    /// Its MAC.
    pub mac: Option<MacAddr>,
    /// Its MTU.
    pub mtu: Option<u32>,
}

/// Why the annotations file did not give a network status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkStatusError {
    /// A line is not `key="value"`.
    #[error("line {line}: not key=\"value\": {reason}")]
    Line {
        /// Line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The value is not the JSON list Multus writes.
    #[error("{NETWORK_STATUS_KEY} is not a JSON list of network statuses: {0}")]
    Json(String),
    /// An entry's field does not parse.
    #[error("{NETWORK_STATUS_KEY}: network {network:?}: {reason}")]
    Field {
        /// The network.
        network: String,
        /// What is wrong.
        reason: String,
    },
}

/// Reads a Downward API annotations file into key and value.
pub fn parse_annotations(text: &str) -> Result<BTreeMap<String, String>, NetworkStatusError> {
    let mut out = BTreeMap::new();
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let (key, quoted) = raw.split_once('=').ok_or(NetworkStatusError::Line {
            line,
            reason: "no '='".to_string(),
        })?;
        let value =
            unquote(quoted.trim_end()).map_err(|e: UnquoteError| NetworkStatusError::Line {
                line,
                reason: format!("value of {key}: {e}"),
            })?;
        out.insert(key.trim().to_string(), value);
    }
    Ok(out)
}

/// The network-status list of an annotations file's text; `Ok(None)` when
/// the file has no such annotation (no Multus, or no extra network).
pub fn parse_network_status(text: &str) -> Result<Option<Vec<NetworkStatus>>, NetworkStatusError> {
    let annotations = parse_annotations(text)?;
    let Some(json) = annotations.get(NETWORK_STATUS_KEY) else {
        return Ok(None);
    };
    serde_json::from_str(json)
        .map(Some)
        .map_err(|e| NetworkStatusError::Json(e.to_string()))
}

/// The addressing of every entry that names a VF by PCI address, in the
/// annotation's order.
pub fn port_addressing(list: &[NetworkStatus]) -> Result<Vec<PortAddressing>, NetworkStatusError> {
    let mut out = Vec::new();
    for s in list {
        let Some(pci_address) = s.device_info.as_ref().and_then(DeviceInfoSpec::pci_address) else {
            continue;
        };
        let field = |reason: String| NetworkStatusError::Field {
            network: s.name.clone(),
            reason,
        };
        let ips = s
            .ips
            .iter()
            .map(|ip| parse_ip(ip).ok_or_else(|| field(format!("{ip:?} is not an IP address"))))
            .collect::<Result<Vec<_>, _>>()?;
        let mac = s
            .mac
            .as_deref()
            .filter(|m| !m.is_empty())
            .map(|m| {
                m.parse::<MacAddr>()
                    .map_err(|_| field(format!("{m:?} is not a MAC address")))
            })
            .transpose()?;
        out.push(PortAddressing {
            pci_address,
            network: s.name.clone(),
            interface: s.interface.clone(),
            ips,
            mac,
            mtu: s.mtu,
        });
    }
    Ok(out)
}

/// `10.0.0.2` or `10.0.0.2/24` (a prefix no longer than the address).
fn parse_ip(s: &str) -> Option<InterfaceAddress> {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
        None => (s, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix.is_some_and(|p| p > max) {
        return None;
    }
    Some(InterfaceAddress { addr, prefix })
}

/// Reads the annotations file at `<root>/<path>` (`path` relative, as
/// [`DEFAULT_ANNOTATIONS_PATH`]). `Ok(None)`: no file, or no network-status
/// in it.
pub fn read_port_addressing(
    root: &Path,
    path: &Path,
) -> Result<Option<Vec<PortAddressing>>, NetworkStatusError> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let Ok(text) = std::fs::read_to_string(root.join(rel)) else {
        return Ok(None);
    };
    match parse_network_status(&text)? {
        None => Ok(None),
        Some(list) => port_addressing(&list).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::super::go_quote::tests::go_quote;
    use super::*;
    use proptest::prelude::*;

    const STATUS: &str = r#"[{
    "name": "cbr0",
    "interface": "eth0",
    "ips": ["10.244.1.5"],
    "mac": "0a:58:0a:f4:01:05",
    "default": true,
    "dns": {}
},{
    "name": "default/sriov-net-a",
    "interface": "net1",
    "ips": ["192.168.10.5", "fd00::5/64"],
    "mac": "ca:fe:c0:ff:ee:01",
    "mtu": 1500,
    "dns": {},
    "device-info": {"type": "pci", "version": "1.1.0", "pci": {"pci-address": "0000:03:02.1"}}
}]"#;

    fn file(status: &str) -> String {
        format!(
            "k8s.v1.cni.cncf.io/networks=\"sriov-net-a\"\n{NETWORK_STATUS_KEY}={}\nkubernetes.io/config.seen=\"2026-12-01T10:00:00Z\"\n",
            go_quote(status)
        )
    }

    #[test]
    fn maps_each_vf_to_its_addresses() {
        let list = parse_network_status(&file(STATUS)).unwrap().unwrap();
        assert_eq!(list.len(), 2);
        let a = port_addressing(&list).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].pci_address, "0000:03:02.1".parse().unwrap());
        assert_eq!(a[0].interface.as_deref(), Some("net1"));
        assert_eq!(a[0].network, "default/sriov-net-a");
        assert_eq!(
            a[0].ips,
            vec![
                InterfaceAddress {
                    addr: "192.168.10.5".parse().unwrap(),
                    prefix: None
                },
                InterfaceAddress {
                    addr: "fd00::5".parse().unwrap(),
                    prefix: Some(64)
                },
            ]
        );
        assert_eq!(a[0].mac, Some("ca:fe:c0:ff:ee:01".parse().unwrap()));
        assert_eq!(a[0].mtu, Some(1500));
    }

    #[test]
    fn reads_from_a_root() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            read_port_addressing(dir.path(), Path::new(DEFAULT_ANNOTATIONS_PATH)),
            Ok(None)
        );
        let p = dir.path().join(DEFAULT_ANNOTATIONS_PATH);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, file(STATUS)).unwrap();
        let a = read_port_addressing(dir.path(), Path::new("/etc/podnetinfo/annotations"))
            .unwrap()
            .unwrap();
        assert_eq!(a.len(), 1);
        std::fs::write(&p, "other=\"x\"\n").unwrap();
        assert_eq!(
            read_port_addressing(dir.path(), Path::new(DEFAULT_ANNOTATIONS_PATH)),
            Ok(None)
        );
    }

    #[test]
    fn malformed_files_are_errors() {
        let e = parse_network_status("a=\"x\"\nnot a line\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: not key=\"value\": no '='");
        let e = parse_network_status("a=x\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("line 1: not key=\"value\": value of a: not a double-quoted"),
            "{e}"
        );
        let e = parse_network_status(&file("{\"name\": 1}")).unwrap_err();
        assert!(matches!(e, NetworkStatusError::Json(_)), "{e}");
        let bad_ip = STATUS.replace("192.168.10.5", "192.168.10.500");
        let list = parse_network_status(&file(&bad_ip)).unwrap().unwrap();
        let e = port_addressing(&list).unwrap_err();
        assert_eq!(
            e.to_string(),
            "k8s.v1.cni.cncf.io/network-status: network \"default/sriov-net-a\": \"192.168.10.500\" is not an IP address"
        );
        let bad_mac = STATUS.replace("ca:fe:c0:ff:ee:01", "ca:fe");
        let list = parse_network_status(&file(&bad_mac)).unwrap().unwrap();
        assert!(port_addressing(&list).is_err());
        assert_eq!(parse_ip("10.0.0.1/33"), None);
        assert!(parse_ip("fd00::1/128").is_some());
    }

    proptest! {
        #[test]
        fn annotation_parser_never_panics(text in "(.{0,60}\n){0,6}") {
            if let Ok(Some(list)) = parse_network_status(&text) {
                let _ = port_addressing(&list);
            }
        }

        #[test]
        fn any_json_value_round_trips_the_file_format(status in ".{0,120}") {
            let f = file(&status);
            let annotations = parse_annotations(&f).unwrap();
            prop_assert_eq!(annotations.get(NETWORK_STATUS_KEY), Some(&status));
            let _ = parse_network_status(&f);
        }
    }
}
