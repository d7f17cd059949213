//! The container's cpuset against the fast path's cores.
//!
//! Facts (anchors.md 3.3): with the CPU manager's static policy, a
//! Guaranteed pod's container with an integer CPU request gets exclusive
//! CPUs, enforced by its cgroup cpuset; other containers run on the shared
//! pool. A core list that disagrees with the cpuset is what makes DPDK fail
//! with "Cannot set affinity". The allowed set itself comes from
//! [`crate::cpus`] (affinity and cgroup v1/v2 cpuset).

use super::finding::Finding;
use crate::core_choice::CoreChoice;
use crate::cpu_list::parse_cpu_list;
use crate::cpus::{allowed_cpus_at, check_requested, AllowedCpus};
use drivers::cpu::{CpuId, CpuSet};
use std::path::Path;

/// The node's online CPUs, from `<root>/sys/devices/system/cpu/online`
/// (sysfs is not namespaced: a container sees the node's).
pub fn node_cpus(root: &Path) -> Option<CpuSet> {
    let text = std::fs::read_to_string(root.join("sys/devices/system/cpu/online")).ok()?;
    parse_cpu_list(&text).ok()
}

/// The CPUs the fast path asks for, by where they come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuRequest {
    /// The workers (FP_MASK, --cpus or --cores).
    pub workers: CoreChoice,
    /// CORE_PORT_MAPPING's CPUs, when a fast-path.env gives one.
    pub mapping: Option<CpuSet>,
    /// The exception thread's CPU (EXC_LCOREID, --exception-cpu).
    pub exception: Option<CpuId>,
}

/// Checks `request` against the cpuset under `root`. `affinity` is the
/// calling thread's (`None` when `root` is not this machine's: the node's
/// online CPUs stand in). Returns the findings and the worker CPUs when
/// they could be chosen.
pub fn check_cpuset(
    root: &Path,
    affinity: Option<CpuSet>,
    request: &CpuRequest,
) -> (Vec<Finding>, Option<Vec<CpuId>>) {
    let node = node_cpus(root);
    let Some(affinity) = affinity.or_else(|| node.clone()) else {
        let f = Finding::fail(
            "cpuset",
            "cannot tell which CPUs this process may use: no affinity and no \
             /sys/devices/system/cpu/online",
            "mount /sys (read-only) in the container",
        );
        return (vec![f], None);
    };
    let allowed = match allowed_cpus_at(root, affinity) {
        Ok(a) => a,
        Err(e) => {
            let f = Finding::fail(
                "cpuset",
                e.to_string(),
                "check the container's cgroup mount (/sys/fs/cgroup) is its own",
            );
            return (vec![f], None);
        }
    };
    let mut out = Vec::new();
    out.push(shared_or_exclusive(&allowed, node.as_ref()));
    let workers = match request.workers.choose(&allowed) {
        Ok(cpus) => {
            out.push(Finding::ok(
                "cores",
                format!(
                    "workers on CPU {}, inside the allowed {}",
                    CpuSet::from_ids(cpus.iter().copied()),
                    allowed.set
                ),
            ));
            Some(cpus)
        }
        Err(e) => {
            out.push(Finding::fail("cores", e.to_string(), fix_for(&allowed)));
            None
        }
    };
    if let Some(mapping) = &request.mapping {
        match check_requested(mapping, &allowed) {
            Ok(()) => out.push(Finding::ok(
                "core-port-map",
                format!("CORE_PORT_MAPPING CPUs {mapping} are allowed"),
            )),
            Err(e) => out.push(Finding::fail(
                "core-port-map",
                format!("CORE_PORT_MAPPING: {e}"),
                format!(
                    "map only allowed CPUs in CORE_PORT_MAPPING (c<cpu>=<port>, cpu in {})",
                    allowed.set
                ),
            )),
        }
    }
    if let Some(cpu) = request.exception {
        match check_requested(&CpuSet::from_ids([cpu]), &allowed) {
            Ok(()) => out.push(Finding::ok(
                "exception-cpu",
                format!("exception thread on CPU {}", cpu.0),
            )),
            Err(e) => out.push(Finding::fail(
                "exception-cpu",
                format!("EXC_LCOREID / --exception-cpu: {e}"),
                format!("pick an allowed CPU ({}) for EXC_LCOREID", allowed.set),
            )),
        }
    }
    (out, workers)
}

/// WARN when the cpuset is the whole node's: the CPU manager did not give
/// this container exclusive CPUs, so other pods' threads share the
/// fast path's cores.
fn shared_or_exclusive(allowed: &AllowedCpus, node: Option<&CpuSet>) -> Finding {
    match node {
        Some(node) if *node == allowed.set && node.len() > 1 => Finding::warn(
            "cpuset",
            format!(
                "allowed CPUs {} are all the node's CPUs: shared, not exclusive ({allowed})",
                allowed.set
            ),
            "run in a Guaranteed pod (requests = limits) with an integer cpu request, on a \
             node whose kubelet has --cpu-manager-policy=static",
        ),
        Some(node) => Finding::ok(
            "cpuset",
            format!(
                "allowed CPUs {} of the node's {node} ({allowed})",
                allowed.set
            ),
        ),
        None => Finding::ok("cpuset", format!("allowed CPUs {allowed}")),
    }
}

fn fix_for(allowed: &AllowedCpus) -> String {
    format!(
        "use only allowed CPUs: FP_MASK (or --cpus) within {}, or fewer --cores; in \
         Kubernetes raise the container's integer cpu request to get more exclusive CPUs",
        allowed.set
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::finding::Status;
    use crate::k8s::fixture::tree;

    fn set(s: &str) -> CpuSet {
        parse_cpu_list(s).unwrap()
    }

    /// A root with a v2 cgroup whose cpuset is `cpus`, on a node with `online`.
    fn root(cpus: &str, online: &str) -> tempfile::TempDir {
        tree(&[
            ("proc/self/cgroup", "0::/\n"),
            (
                "proc/self/mountinfo",
                "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
            ),
            ("sys/fs/cgroup/cpuset.cpus.effective", cpus),
            ("sys/devices/system/cpu/online", online),
        ])
    }

    fn request(workers: CoreChoice) -> CpuRequest {
        CpuRequest {
            workers,
            mapping: None,
            exception: None,
        }
    }

    #[test]
    fn cores_outside_the_cpuset_fail_with_the_allowed_list() {
        let r = root("2-3\n", "0-7\n");
        let (f, workers) = check_cpuset(r.path(), None, &request(CoreChoice::List(set("3-5"))));
        assert_eq!(workers, None);
        assert_eq!(f[0].status, Status::Ok, "{f:?}");
        assert_eq!(f[1].status, Status::Fail);
        assert_eq!(f[1].name, "cores");
        assert!(
            f[1].found.starts_with("CPUs 4-5 are not allowed"),
            "{}",
            f[1].found
        );
        assert!(f[1].fix.as_ref().unwrap().contains("within 2-3"), "{f:?}");
    }

    #[test]
    fn exclusive_cpus_are_ok() {
        let r = root("2-3\n", "0-7\n");
        let req = CpuRequest {
            workers: CoreChoice::Count(1),
            mapping: Some(set("3")),
            exception: Some(CpuId(2)),
        };
        let (f, workers) = check_cpuset(r.path(), None, &req);
        assert_eq!(workers, Some(vec![CpuId(3)]));
        assert!(f.iter().all(|f| f.status == Status::Ok), "{f:?}");
        assert_eq!(f.len(), 4);
    }

    #[test]
    fn shared_cpuset_warns_and_bad_mapping_fails() {
        let r = root("0-3\n", "0-3\n");
        let req = CpuRequest {
            workers: CoreChoice::Count(4),
            mapping: Some(set("1,6")),
            exception: Some(CpuId(9)),
        };
        let (f, workers) = check_cpuset(r.path(), None, &req);
        assert_eq!(workers, None);
        let by = |n: &str| f.iter().find(|f| f.name == n).unwrap().status;
        assert_eq!(by("cpuset"), Status::Warn);
        assert_eq!(by("cores"), Status::Fail);
        assert_eq!(by("core-port-map"), Status::Fail);
        assert_eq!(by("exception-cpu"), Status::Fail);
    }

    #[test]
    fn bad_cgroup_file_fails() {
        let r = root("x\n", "0-3\n");
        let (f, _) = check_cpuset(r.path(), None, &request(CoreChoice::Count(1)));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].status, Status::Fail);
        let empty = tempfile::tempdir().unwrap();
        let (f, _) = check_cpuset(empty.path(), None, &request(CoreChoice::Count(1)));
        assert_eq!(f[0].status, Status::Fail);
    }
}
