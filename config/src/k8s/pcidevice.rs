//! The VFs the SR-IOV network device plugin gave the container, from its
//! environment variables.
//!
//! Facts (anchors.md 3.1; k8snetworkplumbingwg/sriov-network-device-plugin,
//! README "Pod device information"):
//! - `PCIDEVICE_<RESOURCE>` is the resource's full name (`intel.com/sriov`)
//!   upper-cased with `.` and `/` turned into `_`, and its value the PCI
//!   addresses allocated from that pool, comma-separated:
//!   `PCIDEVICE_INTEL_COM_SRIOV=0000:03:02.1,0000:03:04.3`.
//! - `PCIDEVICE_<RESOURCE>_INFO` is a JSON object keyed by PCI address. Per
//!   device: `generic.deviceID`; for vfio-pci devices `vfio.dev-mount` (the
//!   IOMMU group's node, `/dev/vfio/169`) and `vfio.mount`
//!   (`/dev/vfio/vfio`); with `needVhostNet`, `vhost.net-mount`
//!   (`/dev/vhost-net`) and `vhost.tun-mount` (`/dev/net/tun`); `extraInfo`
//!   from the pool's additionalInfo. The README's example spells the vfio
//!   keys `vfio-dev-mount` / `vfio-mount` while the plugin's vfio info
//!   provider (pkg/infoprovider/vfioInfoProvider.go, `GetEnvVal`) writes
//!   `dev-mount` / `mount`, which is also what pods show; both are read.

use drivers::pci::{PciAddress, PciAddressError};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The prefix of the device plugin's variables.
pub const PCIDEVICE_PREFIX: &str = "PCIDEVICE_";
/// The suffix of the per-resource JSON variable.
pub const INFO_SUFFIX: &str = "_INFO";

/// One `PCIDEVICE_<RESOURCE>` variable and its `_INFO` companion.
#[derive(Debug, Clone, PartialEq)]
pub struct PciResource {
    /// The variable's name (`PCIDEVICE_INTEL_COM_SRIOV`).
    pub var: String,
    /// Its value as given.
    pub value: String,
    /// The addresses it lists, in its order, each parsed.
    pub addresses: Vec<Result<PciAddress, PciAddressError>>,
    /// The `_INFO` variable: absent, or its JSON parsed (an error when it
    /// is not the device plugin's shape).
    pub info: Option<Result<BTreeMap<PciAddress, DeviceInfo>, InfoError>>,
}

/// What the `_INFO` JSON says about one device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DeviceInfo {
    /// `generic`: `deviceID` (the PCI address again).
    #[serde(default)]
    pub generic: Option<GenericInfo>,
    /// `vfio`: the device nodes of a vfio-pci device.
    #[serde(default)]
    pub vfio: Option<VfioInfo>,
    /// `vhost`: the device nodes `needVhostNet` shares.
    #[serde(default)]
    pub vhost: Option<VhostInfo>,
}

/// `generic` of a device's `_INFO` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct GenericInfo {
    /// The device's id (its PCI address for PCI devices).
    #[serde(rename = "deviceID", default)]
    pub device_id: Option<String>,
}

/// `vfio` of a device's `_INFO` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct VfioInfo {
    /// The IOMMU group's node, `/dev/vfio/<group>`.
    #[serde(rename = "dev-mount", alias = "vfio-dev-mount", default)]
    pub dev_mount: Option<String>,
    /// The container node, `/dev/vfio/vfio`.
    #[serde(rename = "mount", alias = "vfio-mount", default)]
    pub mount: Option<String>,
}

/// `vhost` of a device's `_INFO` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct VhostInfo {
    /// `/dev/vhost-net`.
    #[serde(rename = "net-mount", default)]
    pub net_mount: Option<String>,
    /// `/dev/net/tun`.
    #[serde(rename = "tun-mount", default)]
    pub tun_mount: Option<String>,
}

/// Why a `PCIDEVICE_*_INFO` value was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InfoError {
    /// Not JSON, or not an object of objects.
    #[error("{var} is not the device plugin's JSON (an object keyed by PCI address): {reason}")]
    Json {
        /// The variable.
        var: String,
        /// serde_json's message (line and column).
        reason: String,
    },
    /// A key is not a PCI address.
    #[error("{var}: key {key:?} is not a PCI address")]
    BadKey {
        /// The variable.
        var: String,
        /// The key.
        key: String,
    },
}

/// Why the PCI ports could not be taken from the environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PciEnvError {
    /// No `PCIDEVICE_*` variable at all.
    #[error(
        "no PCIDEVICE_* variable in the environment: this is not a container \
         the SR-IOV device plugin gave VFs to (request an intel.com/... \
         resource in the pod's resources.limits)"
    )]
    NoDevices,
    /// A listed address does not parse.
    #[error("{var}={value:?}: {source}")]
    BadAddress {
        /// The variable.
        var: String,
        /// Its whole value.
        value: String,
        /// Why the address is wrong.
        source: PciAddressError,
    },
}

/// Every `PCIDEVICE_<RESOURCE>` variable of `env` with its `_INFO`, sorted
/// by variable name (so by resource name).
pub fn pci_resources(env: &BTreeMap<String, String>) -> Vec<PciResource> {
    env.iter()
        .filter(|(k, _)| k.starts_with(PCIDEVICE_PREFIX))
        // `X_INFO` is X's companion when X is also set; a resource whose
        // own name ends in _INFO is still a resource.
        .filter(|(k, _)| {
            k.strip_suffix(INFO_SUFFIX)
                .is_none_or(|base| !env.contains_key(base))
        })
        .map(|(var, value)| {
            let info_var = format!("{var}{INFO_SUFFIX}");
            PciResource {
                var: var.clone(),
                value: value.clone(),
                addresses: split_addresses(value).map(str::parse).collect(),
                info: env.get(&info_var).map(|json| parse_info(&info_var, json)),
            }
        })
        .collect()
}

/// The comma-separated words of a `PCIDEVICE_*` value, blanks dropped.
fn split_addresses(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|w| !w.is_empty())
}

/// Reads a `PCIDEVICE_*_INFO` value.
pub fn parse_info(var: &str, json: &str) -> Result<BTreeMap<PciAddress, DeviceInfo>, InfoError> {
    let raw: BTreeMap<String, DeviceInfo> =
        serde_json::from_str(json).map_err(|e| InfoError::Json {
            var: var.to_string(),
            reason: e.to_string(),
        })?;
    raw.into_iter()
        .map(|(key, info)| match key.parse::<PciAddress>() {
            Ok(address) => Ok((address, info)),
            Err(_) => Err(InfoError::BadKey {
                var: var.to_string(),
                key,
            }),
        })
        .collect()
}

/// `FP_PORTS=all` in a pod: every PCI address of every `PCIDEVICE_*`
/// variable, ordered by resource name then as the variable lists them,
/// each once. A stable order matters: port ids (CORE_PORT_MAPPING, the
/// exception interface names) follow it.
pub fn pci_ports_from_env(env: &BTreeMap<String, String>) -> Result<Vec<PciAddress>, PciEnvError> {
    let resources = pci_resources(env);
    if resources.is_empty() {
        return Err(PciEnvError::NoDevices);
    }
    let mut out: Vec<PciAddress> = Vec::new();
    for r in resources {
        for a in r.addresses {
            let a = a.map_err(|source| PciEnvError::BadAddress {
                var: r.var.clone(),
                value: r.value.clone(),
                source,
            })?;
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    if out.is_empty() {
        return Err(PciEnvError::NoDevices);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::fixture::env;
    use proptest::prelude::*;

    fn addr(s: &str) -> PciAddress {
        s.parse().unwrap()
    }

    /// As a pod shows it (vfio keys as the plugin's info provider writes them).
    const INFO: &str = r#"{"0000:03:02.1":{"generic":{"deviceID":"0000:03:02.1"},"vfio":{"dev-mount":"/dev/vfio/169","mount":"/dev/vfio/vfio"},"vhost":{"net-mount":"/dev/vhost-net","tun-mount":"/dev/net/tun"}}}"#;

    #[test]
    fn variables_and_their_info() {
        let e = env(&[
            ("PCIDEVICE_INTEL_COM_SRIOV_B", "0000:05:00.2"),
            ("PCIDEVICE_INTEL_COM_SRIOV_A", "0000:03:02.1,0000:03:04.3"),
            ("PCIDEVICE_INTEL_COM_SRIOV_A_INFO", INFO),
            ("PATH", "/bin"),
        ]);
        let r = pci_resources(&e);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].var, "PCIDEVICE_INTEL_COM_SRIOV_A");
        assert_eq!(r[0].addresses.len(), 2);
        let info = r[0].info.clone().unwrap().unwrap();
        let dev = &info[&addr("0000:03:02.1")];
        assert_eq!(
            dev.vfio.as_ref().unwrap().dev_mount.as_deref(),
            Some("/dev/vfio/169")
        );
        assert_eq!(
            dev.vhost.as_ref().unwrap().tun_mount.as_deref(),
            Some("/dev/net/tun")
        );
        assert_eq!(
            dev.generic.as_ref().unwrap().device_id.as_deref(),
            Some("0000:03:02.1")
        );
        assert!(r[1].info.is_none());
        assert_eq!(
            pci_ports_from_env(&e).unwrap(),
            vec![
                addr("0000:03:02.1"),
                addr("0000:03:04.3"),
                addr("0000:05:00.2")
            ]
        );
    }

    #[test]
    fn readme_spelling_and_extra_info() {
        let json = r#"{"0000:3b:02.6":{"extraInfo":{"token":"3e49"},"vfio":{"vfio-dev-mount":"/dev/vfio/169","vfio-mount":"/dev/vfio/vfio"}}}"#;
        let info = parse_info("X_INFO", json).unwrap();
        let v = info[&addr("0000:3b:02.6")].vfio.clone().unwrap();
        assert_eq!(v.dev_mount.as_deref(), Some("/dev/vfio/169"));
        assert_eq!(v.mount.as_deref(), Some("/dev/vfio/vfio"));
    }

    #[test]
    fn malformed_info_is_an_error() {
        for json in ["", "{", "[1]", r#"{"0000:03:02.1": 5}"#, "null"] {
            let e = parse_info("PCIDEVICE_X_INFO", json).unwrap_err();
            assert!(
                matches!(e, InfoError::Json { .. })
                    && e.to_string().starts_with("PCIDEVICE_X_INFO"),
                "{json}: {e}"
            );
        }
        let e = parse_info("PCIDEVICE_X_INFO", r#"{"eth0":{}}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "PCIDEVICE_X_INFO: key \"eth0\" is not a PCI address"
        );
    }

    #[test]
    fn a_resource_named_info_is_a_resource() {
        let e = env(&[("PCIDEVICE_FOO_INFO", "0000:01:00.0")]);
        assert_eq!(pci_resources(&e)[0].var, "PCIDEVICE_FOO_INFO");
        assert_eq!(pci_ports_from_env(&e).unwrap(), vec![addr("0000:01:00.0")]);
    }

    #[test]
    fn errors_name_the_variable() {
        assert_eq!(pci_ports_from_env(&env(&[])), Err(PciEnvError::NoDevices));
        assert_eq!(
            pci_ports_from_env(&env(&[("PCIDEVICE_A", " , ")])),
            Err(PciEnvError::NoDevices)
        );
        let e = pci_ports_from_env(&env(&[("PCIDEVICE_A", "0000:01:00.0,eth1")])).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("PCIDEVICE_A=\"0000:01:00.0,eth1\": invalid PCI address \"eth1\""),
            "{msg}"
        );
    }

    #[test]
    fn duplicates_are_kept_once_in_first_place() {
        let e = env(&[
            ("PCIDEVICE_A", "0000:01:00.1,0000:01:00.0"),
            ("PCIDEVICE_B", "0000:01:00.0"),
        ]);
        assert_eq!(
            pci_ports_from_env(&e).unwrap(),
            vec![addr("0000:01:00.1"), addr("0000:01:00.0")]
        );
    }

    proptest! {
        #[test]
        fn any_value_parses_or_errs(value in ".{0,200}", info in ".{0,200}") {
            let e = env(&[("PCIDEVICE_A", &value), ("PCIDEVICE_A_INFO", &info)]);
            let _ = pci_resources(&e);
            let _ = pci_ports_from_env(&e);
        }
    }
}
