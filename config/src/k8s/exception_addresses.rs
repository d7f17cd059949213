//! Which addresses each port's kernel exception interface gets: the
//! network-status entry whose PCI address is the port's (a VF port), its
//! IPs with their prefix (given, or the operator's [`PodPrefix`]), and the
//! `--pod-address` ones. With a vfio VF no CNI configures any interface
//! (anchors.md 3.2, sriov-cni README), so the router applies these.
//!
//! Pure: the router reads the file and applies the plan; `fastpath check`
//! reports the same plan's gaps.

use super::network_status::PortAddressing;
use crate::pod_address::{PodAddress, PodPrefix, PrefixedAddress};
use crate::port_spec::PortSpec;
use drivers::net::MacAddr;
use std::net::IpAddr;

/// What one port's exception interface should carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortAddresses {
    /// The port (index in the run's ports).
    pub port: usize,
    /// Where they came from: the network's name, or `--pod-address`.
    pub source: String,
    /// The addresses to apply.
    pub addresses: Vec<PrefixedAddress>,
    /// Addresses left out: no prefix in the annotation, and none given
    /// for their family.
    pub unprefixed: Vec<IpAddr>,
    /// The MAC the CNI reported (the VF's, as it saw it).
    pub mac: Option<MacAddr>,
    /// The MTU the CNI reported.
    pub mtu: Option<u32>,
}

/// Every port's addresses, and the annotation entries that match no port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPlan {
    /// Per port with something to apply, in port order (a port with
    /// both an entry and `--pod-address` appears twice, entry first).
    pub ports: Vec<PortAddresses>,
    /// Entries naming a VF that is not one of the run's ports.
    pub unmatched: Vec<PortAddressing>,
}

/// How `fastpath check` and the router tell the operator about addresses
/// left out for want of a prefix.
pub const NO_PREFIX_FIX: &str = "Multus's network-status gives IPs without their prefix \
     length: give it with --pod-prefix V4/V6 (e.g. 24/64) or FP_POD_PREFIX in fast-path.env";

impl PortAddresses {
    /// "10.1.0.5 fd00::5" of the left-out addresses.
    pub fn unprefixed_text(&self) -> String {
        self.unprefixed
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Matches the network-status entries to the run's `ports` by PCI
/// address, completes their prefixes from `prefix`, and adds the
/// explicit `extra` addresses (ports out of range are the caller's to
/// refuse: they are dropped here).
pub fn plan_addresses(
    ports: &[PortSpec],
    status: &[PortAddressing],
    prefix: &PodPrefix,
    extra: &[PodAddress],
) -> AddressPlan {
    let mut plan = AddressPlan::default();
    for entry in status {
        let port = ports
            .iter()
            .position(|p| *p == PortSpec::Pci(entry.pci_address));
        let Some(port) = port else {
            plan.unmatched.push(entry.clone());
            continue;
        };
        let mut addresses = Vec::new();
        let mut unprefixed = Vec::new();
        for ip in &entry.ips {
            let given = ip
                .prefix
                .and_then(|p| PrefixedAddress::new(ip.addr, p).ok());
            match given.or_else(|| prefix.apply(ip.addr)) {
                Some(a) => addresses.push(a),
                None => unprefixed.push(ip.addr),
            }
        }
        plan.ports.push(PortAddresses {
            port,
            source: format!("network {}", entry.network),
            addresses,
            unprefixed,
            mac: entry.mac,
            mtu: entry.mtu,
        });
    }
    for p in 0..ports.len() {
        let addresses: Vec<PrefixedAddress> = extra
            .iter()
            .filter(|e| e.port == p)
            .map(|e| e.address)
            .collect();
        if !addresses.is_empty() {
            plan.ports.push(PortAddresses {
                port: p,
                source: "--pod-address".to_string(),
                addresses,
                unprefixed: Vec::new(),
                mac: None,
                mtu: None,
            });
        }
    }
    plan.ports.sort_by_key(|a| a.port);
    plan
}

#[cfg(test)]
mod tests {
    use super::super::network_status::{port_addressing, NetworkStatus};
    use super::*;

    fn status(json: &str) -> Vec<PortAddressing> {
        let list: Vec<NetworkStatus> = serde_json::from_str(json).unwrap();
        port_addressing(&list).unwrap()
    }

    const TWO_VFS: &str = r#"[
        {"name": "cbr0", "interface": "eth0", "ips": ["10.244.1.5"], "default": true},
        {"name": "default/net-a", "interface": "net1", "ips": ["192.168.10.5", "fd00:a::5"],
         "mac": "02:00:00:00:00:0a", "mtu": 9000,
         "device-info": {"type": "pci", "pci": {"pci-address": "0000:03:02.1"}}},
        {"name": "default/net-b", "interface": "net2", "ips": ["192.168.20.5/28"],
         "device-info": {"type": "pci", "pci": {"pci-address": "0000:03:04.3"}}},
        {"name": "default/net-c", "interface": "net3", "ips": ["192.168.30.5"],
         "device-info": {"type": "pci", "pci": {"pci-address": "0000:05:00.1"}}}
    ]"#;

    fn ports() -> Vec<PortSpec> {
        ["sim:ixgbevf", "0000:03:04.3", "0000:03:02.1"]
            .iter()
            .map(|p| p.parse().unwrap())
            .collect()
    }

    fn addrs(a: &PortAddresses) -> Vec<String> {
        a.addresses.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn entries_go_to_the_port_with_their_pci_address() {
        let prefix: PodPrefix = "24/64".parse().unwrap();
        let plan = plan_addresses(&ports(), &status(TWO_VFS), &prefix, &[]);
        assert_eq!(plan.ports.len(), 2);
        let (b, a) = (&plan.ports[0], &plan.ports[1]);
        assert_eq!((a.port, a.source.as_str()), (2, "network default/net-a"));
        assert_eq!(addrs(a), ["192.168.10.5/24", "fd00:a::5/64"]);
        assert_eq!(a.mac, Some("02:00:00:00:00:0a".parse().unwrap()));
        assert_eq!(a.mtu, Some(9000));
        // The entry's own prefix wins over the operator's.
        assert_eq!((b.port, addrs(b)), (1, vec!["192.168.20.5/28".to_string()]));
        assert!(b.unprefixed.is_empty());
        // net-c's VF is not a port of the run; the cluster network has no
        // PCI device and is not in the list at all.
        assert_eq!(plan.unmatched.len(), 1);
        assert_eq!(plan.unmatched[0].network, "default/net-c");
    }

    #[test]
    fn without_a_prefix_nothing_is_guessed() {
        let plan = plan_addresses(&ports(), &status(TWO_VFS), &PodPrefix::default(), &[]);
        let a = &plan.ports[1];
        assert!(a.addresses.is_empty());
        assert_eq!(a.unprefixed_text(), "192.168.10.5 fd00:a::5");
        // Only IPv4's given: the IPv6 address stays out.
        let v4: PodPrefix = "24".parse().unwrap();
        let plan = plan_addresses(&ports(), &status(TWO_VFS), &v4, &[]);
        let a = &plan.ports[1];
        assert_eq!(addrs(a), ["192.168.10.5/24"]);
        assert_eq!(a.unprefixed_text(), "fd00:a::5");
    }

    #[test]
    fn explicit_addresses_go_to_their_port() {
        let extra: Vec<PodAddress> = ["0=10.9.0.1/24", "0=fd00:9::1/64", "2=10.8.0.1/16"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let plan = plan_addresses(&ports(), &[], &PodPrefix::default(), &extra);
        assert_eq!(plan.ports.len(), 2);
        assert_eq!(plan.ports[0].port, 0);
        assert_eq!(plan.ports[0].source, "--pod-address");
        assert_eq!(addrs(&plan.ports[0]), ["10.9.0.1/24", "fd00:9::1/64"]);
        assert_eq!(addrs(&plan.ports[1]), ["10.8.0.1/16"]);
        // A port past the list is dropped (the CLI refuses it first).
        let far: PodAddress = "7=10.0.0.1/8".parse().unwrap();
        assert!(plan_addresses(&ports(), &[], &PodPrefix::default(), &[far])
            .ports
            .is_empty());
    }

    #[test]
    fn ports_without_pci_addresses_match_nothing() {
        let sims: Vec<PortSpec> = vec!["sim:ixgbevf".parse().unwrap(), PortSpec::Null];
        let plan = plan_addresses(&sims, &status(TWO_VFS), &"24".parse().unwrap(), &[]);
        assert!(plan.ports.is_empty());
        assert_eq!(plan.unmatched.len(), 3);
    }
}
