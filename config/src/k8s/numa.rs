//! NUMA placement: each VF's node (`numa_node` in its sysfs directory)
//! against the nodes of the cores that poll it and the free hugepages on
//! its node. A VF polled from another node's cores, or whose buffers come
//! from another node's memory, crosses the socket interconnect on every
//! packet; the Topology, CPU and Memory managers exist to avoid it
//! (anchors.md 3.3, kubernetes.io resource-managers).

use super::finding::Finding;
use super::hugepages::free_on_node;
use super::vf_sysfs::VfFound;
use crate::cpu_list::parse_cpu_list;
use drivers::cpu::{CpuId, CpuSet};
use drivers::memory::PageSize;
use std::collections::BTreeMap;
use std::path::Path;

/// The CPUs of each NUMA node, from
/// `<root>/sys/devices/system/node/node<N>/cpulist`.
pub fn node_cpus(root: &Path) -> BTreeMap<u32, CpuSet> {
    let Ok(entries) = std::fs::read_dir(root.join("sys/devices/system/node")) else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let node: u32 = name.strip_prefix("node")?.parse().ok()?;
            let text = std::fs::read_to_string(e.path().join("cpulist")).ok()?;
            Some((node, parse_cpu_list(&text).ok()?))
        })
        .collect()
}

/// WARNs for every VF whose node differs from a worker core's, or whose
/// node has no free hugepages of the sizes the run may use.
pub fn check_numa(
    root: &Path,
    vfs: &[VfFound],
    workers: Option<&[CpuId]>,
    sizes: &[PageSize],
) -> Vec<Finding> {
    let nodes = node_cpus(root);
    if nodes.len() < 2 {
        return vec![Finding::ok(
            "numa",
            format!("{} NUMA node(s): nothing to align", nodes.len()),
        )];
    }
    let node_of = |cpu: CpuId| {
        nodes
            .iter()
            .find(|(_, set)| set.contains(cpu))
            .map(|(n, _)| *n)
    };
    let mut out = Vec::new();
    for vf in vfs {
        let name = format!("numa-{}", vf.address);
        let Some(node) = vf.numa_node else {
            out.push(Finding::ok(
                name,
                format!("{} has no NUMA node", vf.address),
            ));
            continue;
        };
        let mut problems = Vec::new();
        if let Some(workers) = workers {
            let far: Vec<CpuId> = workers
                .iter()
                .copied()
                .filter(|c| node_of(*c).is_some_and(|n| n != node))
                .collect();
            if !far.is_empty() {
                problems.push(format!(
                    "worker CPU(s) {} are not on its node (node {node} has CPUs {})",
                    CpuSet::from_ids(far),
                    nodes.get(&node).map_or("?".to_string(), |s| s.to_string())
                ));
            }
        }
        let free: Vec<(PageSize, u64)> = sizes
            .iter()
            .filter_map(|s| free_on_node(root, node, *s).map(|f| (*s, f)))
            .collect();
        if !free.is_empty() && free.iter().all(|(_, f)| *f == 0) {
            problems.push(format!("no free hugepages on node {node}"));
        }
        if problems.is_empty() {
            out.push(Finding::ok(
                name,
                format!(
                    "{} on node {node}, with its cores and free hugepages",
                    vf.address
                ),
            ));
        } else {
            out.push(Finding::warn(
                name,
                format!(
                    "{} is on NUMA node {node}: {}",
                    vf.address,
                    problems.join("; ")
                ),
                "set the kubelet's --topology-manager-policy=single-numa-node (with the static \
                 CPU manager and the Static memory manager) so the pod's CPUs, VFs and \
                 hugepages come from one node; or pick FP_MASK CPUs on the VF's node",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::finding::Status;
    use crate::k8s::fixture::tree;

    fn vf(node: Option<u32>) -> VfFound {
        VfFound {
            address: "0000:03:02.1".parse().unwrap(),
            source: "PCIDEVICE_X".to_string(),
            numa_node: node,
        }
    }

    #[test]
    fn mismatch_warns() {
        let r = tree(&[
            ("sys/devices/system/node/node0/cpulist", "0-3\n"),
            ("sys/devices/system/node/node1/cpulist", "4-7\n"),
            (
                "sys/devices/system/node/node1/hugepages/hugepages-2048kB/free_hugepages",
                "0\n",
            ),
            (
                "sys/devices/system/node/node0/hugepages/hugepages-2048kB/free_hugepages",
                "10\n",
            ),
        ]);
        let sizes = [PageSize::Size2M];
        let f = check_numa(
            r.path(),
            &[vf(Some(0))],
            Some(&[CpuId(2), CpuId(3)]),
            &sizes,
        );
        assert_eq!(f[0].status, Status::Ok, "{f:?}");
        let f = check_numa(
            r.path(),
            &[vf(Some(0))],
            Some(&[CpuId(3), CpuId(5)]),
            &sizes,
        );
        assert_eq!(f[0].status, Status::Warn);
        assert!(
            f[0].found
                .contains("worker CPU(s) 5 are not on its node (node 0 has CPUs 0-3)"),
            "{}",
            f[0].found
        );
        let f = check_numa(r.path(), &[vf(Some(1))], Some(&[CpuId(5)]), &sizes);
        assert_eq!(f[0].status, Status::Warn);
        assert!(
            f[0].found.contains("no free hugepages on node 1"),
            "{}",
            f[0].found
        );
        let f = check_numa(r.path(), &[vf(None)], None, &sizes);
        assert_eq!(f[0].status, Status::Ok);
    }

    #[test]
    fn one_node_is_fine() {
        let r = tree(&[("sys/devices/system/node/node0/cpulist", "0-1\n")]);
        let f = check_numa(
            r.path(),
            &[vf(Some(0))],
            Some(&[CpuId(1)]),
            &[PageSize::Size2M],
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].status, Status::Ok);
    }
}
