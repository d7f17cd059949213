//! Kubernetes discovery: what the pod was given (VFs, addresses, CPUs,
//! hugepages, capabilities, device nodes) checked against what a run
//! needs, as findings `fastpath check` prints.
//!
//! One file per source: the device plugin's environment
//! ([`pcidevice`]), its device-info files ([`devinfo`]), sysfs and
//! /dev/vfio for each VF ([`vf_sysfs`]), the Multus network-status
//! annotation ([`network_status`], quoted as [`go_quote`] reads), the
//! cpuset ([`cpuset`]), hugepages ([`hugepages`]), NUMA nodes ([`numa`]),
//! capabilities and memlock ([`capabilities`]) and device nodes
//! ([`dev_nodes`]). Every function reads under a root directory and takes
//! the environment as a map, so tests build a fake tree and the real call
//! passes `/` and the process's environment. The facts each follows are in
//! shared/reference/anchors.md section 3, cited in each file.

pub mod capabilities;
pub mod cpuset;
pub mod dev_nodes;
pub mod devinfo;
pub mod exception_addresses;
pub mod finding;
pub mod go_quote;
pub mod hugepages;
pub mod network_status;
pub mod numa;
pub mod pcidevice;
pub mod vf_sysfs;

pub use cpuset::CpuRequest;
pub use finding::{worst, Finding, Status};
pub use hugepages::MemoryNeed;
pub use network_status::{PortAddressing, DEFAULT_ANNOTATIONS_PATH};
pub use pcidevice::{pci_ports_from_env, PciEnvError};

use crate::pod_address::PodPrefix;
use drivers::cpu::CpuSet;
use drivers::memory::{MemoryBacking, PageSize};
use drivers::pci::PciAddress;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use vf_sysfs::{check_vf, display_in_root, VfFound};

/// What to check a pod against.
#[derive(Debug, Clone)]
pub struct PodCheck {
    /// The root the host's /proc, /sys, /dev and /var/run are read under.
    pub root: PathBuf,
    /// The process's environment.
    pub env: BTreeMap<String, String>,
    /// The calling thread's CPU affinity (`None` when `root` is not this
    /// machine's).
    pub affinity: Option<CpuSet>,
    /// The CPUs the run asks for.
    pub cpus: CpuRequest,
    /// The memory the run asks for.
    pub memory: MemoryNeed,
    /// The run's VF ports.
    pub vf_ports: Vec<PciAddress>,
    /// The run makes exception interfaces (L3 mode).
    pub exception_path: bool,
    /// The Downward API annotations file (absolute, read under `root`;
    /// `None`: `--annotations none`).
    pub annotations: Option<PathBuf>,
    /// The prefix lengths for the annotation's addresses that have none.
    pub pod_prefix: PodPrefix,
}

/// What `fastpath check` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodReport {
    /// Every finding, in the order checked.
    pub findings: Vec<Finding>,
    /// The addresses the network-status annotation gives each VF, for its
    /// exception interface.
    pub addressing: Vec<PortAddressing>,
}

/// Runs every check.
pub fn check_pod(c: &PodCheck) -> PodReport {
    let root = c.root.as_path();
    let mut findings = Vec::new();
    let (named, vfs) = check_sriov(c, &mut findings);
    let addressing = match &c.annotations {
        Some(path) => check_network_status(c, path, &named, &mut findings),
        None => {
            findings.push(Finding::ok(
                "network-status",
                "--annotations none: the VFs' addresses are not read",
            ));
            Vec::new()
        }
    };
    let (cpu_findings, workers) = cpuset::check_cpuset(root, c.affinity.clone(), &c.cpus);
    findings.extend(cpu_findings);
    findings.extend(hugepages::check_hugepages(root, &c.memory));
    let sizes = page_sizes(&c.memory.backing);
    findings.extend(numa::check_numa(root, &vfs, workers.as_deref(), &sizes));
    let pinned = if c.vf_ports.is_empty() {
        0
    } else {
        c.memory
            .bytes(sizes.first().copied().unwrap_or(PageSize::Size4K))
    };
    findings.extend(capabilities::check_capabilities(
        root,
        pinned,
        c.exception_path,
    ));
    let status = capabilities::read_proc_status(root);
    findings.extend(dev_nodes::check_dev_nodes(
        root,
        c.vf_ports.len(),
        c.exception_path,
        status.as_ref(),
    ));
    PodReport {
        findings,
        addressing,
    }
}

/// The page sizes a backing may use, smallest first.
fn page_sizes(backing: &MemoryBacking) -> Vec<PageSize> {
    use drivers::memory::HugepageSize as H;
    match backing {
        MemoryBacking::NoHuge => Vec::new(),
        MemoryBacking::Hugepages(H::Size1G) => vec![PageSize::Size1G],
        MemoryBacking::Hugepages(H::Size2M) => vec![PageSize::Size2M],
        _ => vec![PageSize::Size2M, PageSize::Size1G],
    }
}

/// The VFs of the device plugin's variables and device-info files, and
/// the run's own PCI ports, each checked once: every address named, and
/// those that exist.
fn check_sriov(c: &PodCheck, out: &mut Vec<Finding>) -> (Vec<PciAddress>, Vec<VfFound>) {
    let root = c.root.as_path();
    let resources = pcidevice::pci_resources(&c.env);
    let files = devinfo::read_devinfo_dir(root);
    let mut seen: Vec<PciAddress> = Vec::new();
    let mut vfs = Vec::new();
    if resources.is_empty() && files.is_empty() {
        out.push(Finding::warn(
            "sriov",
            "no PCIDEVICE_* variable and no device-info file: not in a pod with SR-IOV VFs \
             from the device plugin",
            "to run on VFs, request them in the pod spec (resources.limits \
             intel.com/<pool>: N, and the network in the k8s.v1.cni.cncf.io/networks \
             annotation); without them only software ports (null, ring, afpacket) run",
        ));
    }
    for r in &resources {
        let info = match &r.info {
            Some(Ok(map)) => Some(map),
            Some(Err(e)) => {
                out.push(Finding::warn(
                    format!("{}_INFO", r.var),
                    e.to_string(),
                    "the device plugin writes this variable: upgrade it or check nothing \
                     else sets it (env, envFrom in the pod spec)",
                ));
                None
            }
            None => None,
        };
        if r.addresses.is_empty() {
            out.push(Finding::fail(
                r.var.clone(),
                format!("{}={:?} lists no PCI address", r.var, r.value),
                "the device plugin sets this variable: do not set it in the pod spec",
            ));
        }
        for a in &r.addresses {
            match a {
                Ok(address) => {
                    if seen.contains(address) {
                        continue;
                    }
                    seen.push(*address);
                    let (f, found) =
                        check_vf(root, &r.var, *address, info.and_then(|m| m.get(address)));
                    out.extend(f);
                    vfs.extend(found);
                }
                Err(e) => out.push(Finding::fail(
                    r.var.clone(),
                    format!("{}={:?}: {e}", r.var, r.value),
                    "the device plugin sets this variable: do not set it in the pod spec",
                )),
            }
        }
    }
    for file in &files {
        let shown = display_in_root(root, &file.path);
        match &file.info {
            Err(e) => out.push(Finding::warn(
                "devinfo",
                format!("{shown} is not a Device Information Spec object: {e}"),
                "the device plugin writes these files: check its version (spec 1.1.0)",
            )),
            Ok(info) => match info.pci_address() {
                Some(address) if !seen.contains(&address) => {
                    seen.push(address);
                    let (f, found) = check_vf(root, &shown, address, None);
                    out.extend(f);
                    vfs.extend(found);
                }
                Some(_) => {}
                None => out.push(Finding::ok(
                    "devinfo",
                    format!("{shown}: a {} device, not a PCI VF", info.kind),
                )),
            },
        }
    }
    for address in &c.vf_ports {
        if seen.contains(address) {
            continue;
        }
        seen.push(*address);
        if !resources.is_empty() {
            out.push(Finding::warn(
                address.to_string(),
                format!("the run's port {address} is not one the device plugin gave this pod"),
                "use FP_PORTS=all (the pod's PCIDEVICE_* VFs) or their addresses",
            ));
        }
        let (f, found) = check_vf(root, "--ports / FP_PORTS", *address, None);
        out.extend(f);
        vfs.extend(found);
    }
    (seen, vfs)
}

/// The network-status annotation: per VF, the addresses its exception
/// interface should carry.
fn check_network_status(
    c: &PodCheck,
    path: &Path,
    vfs: &[PciAddress],
    out: &mut Vec<Finding>,
) -> Vec<PortAddressing> {
    let shown = path.display();
    match network_status::read_port_addressing(&c.root, path) {
        Err(e) => {
            out.push(Finding::warn(
                "network-status",
                format!("{shown}: {e}"),
                "Multus writes this annotation; check the Downward API volume exposes \
                 metadata.annotations unchanged",
            ));
            Vec::new()
        }
        Ok(None) if vfs.is_empty() => {
            out.push(Finding::ok(
                "network-status",
                format!("no network-status annotation at {shown} (none needed without VFs)"),
            ));
            Vec::new()
        }
        Ok(None) => {
            out.push(Finding::warn(
                "network-status",
                format!(
                    "no network-status annotation at {shown}: the VFs' IP addresses are unknown"
                ),
                "add a downwardAPI volume (items: path annotations, fieldRef \
                 metadata.annotations) mounted at /etc/podnetinfo",
            ));
            Vec::new()
        }
        Ok(Some(list)) => {
            for a in &list {
                let ips = a
                    .ips
                    .iter()
                    .map(|ip| match ip.prefix {
                        Some(p) => format!("{}/{p}", ip.addr),
                        None => ip.addr.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                let mac = a.mac.map_or("no MAC".to_string(), |m| m.to_string());
                let iface = a.interface.as_deref().unwrap_or("?");
                let text = format!(
                    "{}: network {} interface {iface}, IPs [{ips}], MAC {mac}",
                    a.pci_address, a.network
                );
                if vfs.contains(&a.pci_address) {
                    out.push(Finding::ok("network-status", text));
                    let unprefixed: Vec<String> = a
                        .ips
                        .iter()
                        .filter(|ip| ip.prefix.is_none() && c.pod_prefix.apply(ip.addr).is_none())
                        .map(|ip| ip.addr.to_string())
                        .collect();
                    if c.exception_path && !unprefixed.is_empty() {
                        out.push(Finding::warn(
                            "network-status",
                            format!(
                                "{}: {} not applied to the exception interface: no prefix length",
                                a.pci_address,
                                unprefixed.join(" ")
                            ),
                            exception_addresses::NO_PREFIX_FIX,
                        ));
                    }
                } else {
                    out.push(Finding::warn(
                        "network-status",
                        format!("{text}; not a VF of this pod"),
                        "the annotation and the device plugin disagree: recreate the pod",
                    ));
                }
            }
            if list.is_empty() {
                out.push(Finding::ok(
                    "network-status",
                    format!("{shown}: no network with a PCI device"),
                ));
            }
            list
        }
    }
}

#[cfg(test)]
mod fixture;
#[cfg(test)]
mod tests;
