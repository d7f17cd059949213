//! Device nodes the fast path opens: `/dev/vfio/vfio` (the VFIO
//! container) for VF ports, `/dev/net/tun` and `/dev/vhost-net` for the
//! exception path. Only presence and permission bits are checked: opening
//! is the drivers' business (and `/dev/vfio/<group>` is held by one
//! process at a time, anchors.md 3.5). The device plugin shares the vfio
//! nodes with vfio-pci pools and the vhost ones with `needVhostNet`
//! (anchors.md 3.1).

use super::capabilities::ProcStatus;
use super::finding::Finding;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What a node is needed for in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The run fails without it.
    Required,
    /// The run falls back to something slower without it.
    Preferred,
    /// This run does not use it.
    Unused,
}

/// Checks one node under `root`. `status` gives the ids permission bits
/// are checked for (root passes).
pub fn check_node(
    root: &Path,
    node: &str,
    need: Need,
    status: Option<&ProcStatus>,
    why: &str,
    fix: &str,
) -> Finding {
    let name = node.trim_start_matches("/dev/");
    let path = root.join(node.trim_start_matches('/'));
    let Ok(meta) = std::fs::metadata(&path) else {
        return match need {
            Need::Required => Finding::fail(name, format!("{node} is missing: {why}"), fix),
            Need::Preferred => Finding::warn(name, format!("{node} is missing: {why}"), fix),
            Need::Unused => Finding::ok(name, format!("{node} absent; not used by this run")),
        };
    };
    let usable = match status {
        None => true,
        Some(s) if s.euid == 0 => true,
        Some(s) => {
            let mode = meta.mode();
            let bits = if meta.uid() == s.euid {
                mode >> 6
            } else if meta.gid() == s.egid {
                mode >> 3
            } else {
                mode
            };
            bits & 0o6 == 0o6
        }
    };
    if usable || need == Need::Unused {
        Finding::ok(
            name,
            format!("{node} present (mode {:o})", meta.mode() & 0o7777),
        )
    } else {
        let text = format!(
            "{node} is not readable and writable by uid {} (mode {:o}, owner {}:{})",
            status.map_or(0, |s| s.euid),
            meta.mode() & 0o7777,
            meta.uid(),
            meta.gid()
        );
        match need {
            Need::Required => Finding::fail(name, text, fix),
            _ => Finding::warn(name, text, fix),
        }
    }
}

/// The three nodes, for a run with `vf_ports` VF ports, in L3 mode or not.
pub fn check_dev_nodes(
    root: &Path,
    vf_ports: usize,
    exception_path: bool,
    status: Option<&ProcStatus>,
) -> Vec<Finding> {
    let vfio = if vf_ports > 0 {
        Need::Required
    } else {
        Need::Unused
    };
    let (tun, vhost) = if exception_path {
        (Need::Required, Need::Preferred)
    } else {
        (Need::Unused, Need::Unused)
    };
    vec![
        check_node(
            root,
            "/dev/vfio/vfio",
            vfio,
            status,
            "VF ports open the VFIO container",
            "request the VFs from a device plugin pool of vfio-pci devices (it adds \
             /dev/vfio/vfio); outside Kubernetes, --device /dev/vfio/vfio",
        ),
        check_node(
            root,
            "/dev/net/tun",
            tun,
            status,
            "the exception path makes one TAP per port",
            "set needVhostNet: true in the device plugin's resource config (it shares \
             /dev/net/tun and /dev/vhost-net); outside Kubernetes, --device /dev/net/tun",
        ),
        check_node(
            root,
            "/dev/vhost-net",
            vhost,
            status,
            "the exception path falls back to plain TAP reads and writes",
            "set needVhostNet: true in the device plugin's resource config; on the node, \
             modprobe vhost-net",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::finding::Status;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn presence_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let f = check_dev_nodes(dir.path(), 1, true, None);
        assert_eq!(
            f.iter().map(|f| f.status).collect::<Vec<_>>(),
            vec![Status::Fail, Status::Fail, Status::Warn]
        );
        assert_eq!(f[0].name, "vfio/vfio");
        let f = check_dev_nodes(dir.path(), 0, false, None);
        assert!(f.iter().all(|f| f.status == Status::Ok), "{f:?}");

        let p = dir.path().join("dev/vfio/vfio");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let meta = std::fs::metadata(&p).unwrap();
        let other = ProcStatus {
            cap_eff: 0,
            euid: meta.uid().wrapping_add(1).max(1),
            egid: meta.gid().wrapping_add(1),
        };
        let f = check_dev_nodes(dir.path(), 1, false, Some(&other));
        assert_eq!(f[0].status, Status::Fail, "{f:?}");
        assert!(f[0].found.contains("mode 600"), "{}", f[0].found);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        let f = check_dev_nodes(dir.path(), 1, false, Some(&other));
        assert_eq!(f[0].status, Status::Ok, "{f:?}");
    }
}
