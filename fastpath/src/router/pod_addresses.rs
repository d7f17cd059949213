//! The pod's addresses on the exception interfaces: in a pod, the SR-IOV
//! CNI with a vfio-pci VF configures no interface, so the IPs Multus
//! reports in the network-status annotation are applied by nobody
//! (anchors.md 3.2). The router reads the annotation (a Downward API
//! file), matches each entry to a VF port by PCI address
//! ([`config::k8s::exception_addresses`]), and puts the entry's IPs and
//! MTU on that port's exception interface; `--pod-address` adds explicit
//! ones (ports without a PCI address: AF_PACKET, simulated).
//!
//! Applied after the kernel mirror has opened, so the mirror learns the
//! addresses, their local routes (punted to the kernel) and their
//! connected routes through its events, as it learns an operator's.

use super::iface_address::{add_address, Added, IfaceAddressError};
use crate::mirror::socket::RouteSocket;
use crate::mirror::IfIndex;
use crate::mirror::MirrorError;
use config::k8s::exception_addresses::{plan_addresses, AddressPlan, PortAddresses, NO_PREFIX_FIX};
use config::k8s::network_status::{read_port_addressing, NetworkStatusError};
use config::pod_address::{PodAddress, PodPrefix};
use config::port_spec::PortSpec;
use drivers::exception::{ExceptionError, ExceptionIface};
use drivers::net::MacAddr;
use std::path::{Path, PathBuf};

/// Why the pod's addresses could not be applied. Each message names the
/// fix.
#[derive(Debug, thiserror::Error)]
pub enum PodAddressesError {
    /// The annotations file is not what the Downward API writes.
    #[error("--annotations {path}: {source} (fix the Downward API volume, or give --annotations none)", path = path.display())]
    Annotations {
        /// The file.
        path: PathBuf,
        /// What is wrong in it.
        source: NetworkStatusError,
    },
    /// The netlink socket could not be opened.
    #[error("cannot apply the pod's addresses: {0}")]
    Socket(#[from] MirrorError),
    /// The kernel mirror does not know the exception interface.
    #[error("port {port}: exception interface {ifname} is not among the kernel's links")]
    NoIfindex {
        /// Port index.
        port: usize,
        /// The interface.
        ifname: String,
    },
    /// An address was refused.
    #[error("port {port} ({source_name}): {source}")]
    Address {
        /// Port index.
        port: usize,
        /// The network, or `--pod-address`.
        source_name: String,
        /// Why.
        source: IfaceAddressError,
    },
    /// The MTU could not be set.
    #[error("port {port} ({source_name}): MTU {mtu}: {source}")]
    Mtu {
        /// Port index.
        port: usize,
        /// The network.
        source_name: String,
        /// The MTU asked.
        mtu: u32,
        /// Why.
        source: ExceptionError,
    },
}

/// What the pod's addresses come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodAddressing {
    /// The Downward API annotations file (`None`: not read).
    pub annotations: Option<PathBuf>,
    /// Prefix lengths for the annotation's IPs that have none.
    pub prefix: PodPrefix,
    /// Explicit addresses (`--pod-address`).
    pub explicit: Vec<PodAddress>,
}

/// The plan for `ports`: the annotation's entries (if the file exists
/// and holds a network-status) and the explicit addresses.
pub fn read_plan(
    ports: &[PortSpec],
    how: &PodAddressing,
) -> Result<AddressPlan, PodAddressesError> {
    let status = match &how.annotations {
        // The reader takes a root and a path under it: `/` for an
        // absolute path, the working directory for a relative one.
        Some(path) => {
            read_port_addressing(Path::new(if path.is_absolute() { "/" } else { "." }), path)
                .map_err(|source| PodAddressesError::Annotations {
                    path: path.clone(),
                    source,
                })?
                .unwrap_or_default()
        }
        None => Vec::new(),
    };
    let plan = plan_addresses(ports, &status, &how.prefix, &how.explicit);
    for u in &plan.unmatched {
        log::info!(
            "network-status: network {} is on VF {}, not a port of this run: its IPs are not applied",
            u.network,
            u.pci_address
        );
    }
    Ok(plan)
}

/// The MAC the entry reports when it is not the one the exception
/// interface carries (the VF's, read from the device): the PF may have
/// given the VF another since the CNI ran.
fn mac_mismatch(entry: &PortAddresses, vf_mac: MacAddr) -> Option<MacAddr> {
    entry.mac.filter(|m| *m != vf_mac)
}

/// Applies `plan` to `ifaces` (in port order; `macs`: each port's MAC,
/// which its interface carries), finding each interface's index with
/// `ifindex`. Logs one line per address (added, or already there), per
/// entry whose IPs lack a prefix, and per MAC that disagrees.
pub fn apply_plan(
    plan: &AddressPlan,
    ifaces: &[ExceptionIface],
    macs: &[MacAddr],
    ifindex: impl Fn(&str) -> Option<IfIndex>,
) -> Result<(), PodAddressesError> {
    if plan.ports.is_empty() {
        return Ok(());
    }
    let mut sock = RouteSocket::open()?;
    for entry in &plan.ports {
        let (Some(iface), Some(&mac)) = (ifaces.get(entry.port), macs.get(entry.port)) else {
            continue;
        };
        let p = entry.port;
        let name = iface.name();
        if let Some(reported) = mac_mismatch(entry, mac) {
            log::warn!(
                "port {p} ({}): network-status MAC {reported} is not the VF's MAC {mac}, which {name} carries (the PF may have given the VF another MAC since the CNI ran)",
                entry.source
            );
        }
        if !entry.unprefixed.is_empty() {
            log::warn!(
                "port {p} ({}): {} not applied to {name}: no prefix length. {NO_PREFIX_FIX}",
                entry.source,
                entry.unprefixed_text()
            );
        }
        if let Some(mtu) = entry.mtu {
            iface
                .set_mtu(mtu)
                .map_err(|source| PodAddressesError::Mtu {
                    port: p,
                    source_name: entry.source.clone(),
                    mtu,
                    source,
                })?;
            log::info!("port {p} ({}): MTU {mtu} set on {name}", entry.source);
        }
        let index = ifindex(name).ok_or_else(|| PodAddressesError::NoIfindex {
            port: p,
            ifname: name.to_string(),
        })?;
        for &a in &entry.addresses {
            let done = add_address(&mut sock, name, index, a).map_err(|source| {
                PodAddressesError::Address {
                    port: p,
                    source_name: entry.source.clone(),
                    source,
                }
            })?;
            let what = match done {
                Added::Added => "added to",
                Added::AlreadyThere => "already on",
            };
            log::info!("port {p} ({}): {a} {what} {name}", entry.source);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mac_that_disagrees_is_reported() {
        let vf: MacAddr = "02:00:00:00:00:0a".parse().unwrap();
        let mut e = PortAddresses {
            port: 0,
            source: "network a".into(),
            addresses: Vec::new(),
            unprefixed: Vec::new(),
            mac: Some(vf),
            mtu: None,
        };
        assert_eq!(mac_mismatch(&e, vf), None);
        e.mac = None;
        assert_eq!(mac_mismatch(&e, vf), None);
        let other: MacAddr = "02:00:00:00:00:0b".parse().unwrap();
        e.mac = Some(other);
        assert_eq!(mac_mismatch(&e, vf), Some(other));
    }

    #[test]
    fn a_missing_file_is_no_plan_and_a_bad_one_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let how = PodAddressing {
            annotations: Some(dir.path().join("absent")),
            prefix: PodPrefix::default(),
            explicit: vec!["0=10.9.0.1/24".parse().unwrap()],
        };
        let ports = [PortSpec::Null];
        let plan = read_plan(&ports, &how).unwrap();
        assert_eq!(plan.ports.len(), 1);
        let bad = dir.path().join("annotations");
        std::fs::write(&bad, "k8s.v1.cni.cncf.io/network-status=\"[oops\"\n").unwrap();
        let how = PodAddressing {
            annotations: Some(bad),
            ..how
        };
        let e = read_plan(&ports, &how).unwrap_err();
        assert!(
            matches!(e, PodAddressesError::Annotations { .. })
                && e.to_string().ends_with("or give --annotations none)"),
            "{e}"
        );
    }
}
