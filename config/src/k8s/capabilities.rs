//! The process's effective capabilities and its locked-memory limit.
//!
//! Facts (anchors.md 3.5): with vfio-pci a DPDK-style process runs in a
//! non-privileged pod with IPC_LOCK added (the vfio IOMMU driver pins the
//! DMA memory and charges it to RLIMIT_MEMLOCK unless the process has
//! CAP_IPC_LOCK); creating and configuring the exception TAPs takes
//! NET_ADMIN. Bit numbers: linux include/uapi/linux/capability.h
//! (`CAP_NET_ADMIN` 12, `CAP_IPC_LOCK` 14). `/proc/self/status` shows the
//! effective set as `CapEff:` in hex (proc(5)); `/proc/self/limits` shows
//! "Max locked memory" in bytes or "unlimited" (proc(5)). Both are read as
//! files: the config crate makes no system call of its own.

use super::finding::Finding;
use std::path::Path;

/// CAP_NET_ADMIN's bit (linux/capability.h).
pub const CAP_NET_ADMIN: u32 = 12;
/// CAP_IPC_LOCK's bit (linux/capability.h).
pub const CAP_IPC_LOCK: u32 = 14;

/// What /proc/self/status says of the process's identity and capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStatus {
    /// The effective capability set.
    pub cap_eff: u64,
    /// The effective user id (second field of `Uid:`).
    pub euid: u32,
    /// The effective group id (second field of `Gid:`).
    pub egid: u32,
}

impl ProcStatus {
    /// True when capability bit `cap` is effective.
    pub fn has(&self, cap: u32) -> bool {
        cap < 64 && self.cap_eff & (1u64 << cap) != 0
    }
}

/// Reads `<root>/proc/self/status`; `None` if it is absent or has no
/// `CapEff:` line.
pub fn read_proc_status(root: &Path) -> Option<ProcStatus> {
    parse_proc_status(&std::fs::read_to_string(root.join("proc/self/status")).ok()?)
}

/// Parses the text of /proc/self/status.
pub fn parse_proc_status(text: &str) -> Option<ProcStatus> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let cap_eff = u64::from_str_radix(field("CapEff:")?, 16).ok()?;
    let second =
        |name: &str| -> Option<u32> { field(name)?.split_whitespace().nth(1)?.parse().ok() };
    Some(ProcStatus {
        cap_eff,
        euid: second("Uid:").unwrap_or(u32::MAX),
        egid: second("Gid:").unwrap_or(u32::MAX),
    })
}

/// RLIMIT_MEMLOCK's soft limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemlockLimit {
    /// "unlimited".
    Unlimited,
    /// This many bytes.
    Bytes(u64),
}

/// The soft "Max locked memory" of `<root>/proc/self/limits`.
pub fn read_memlock(root: &Path) -> Option<MemlockLimit> {
    parse_memlock(&std::fs::read_to_string(root.join("proc/self/limits")).ok()?)
}

/// Parses /proc/self/limits for "Max locked memory".
pub fn parse_memlock(text: &str) -> Option<MemlockLimit> {
    let rest = text
        .lines()
        .find_map(|l| l.strip_prefix("Max locked memory"))?;
    match rest.split_whitespace().next()? {
        "unlimited" => Some(MemlockLimit::Unlimited),
        n => n.parse().ok().map(MemlockLimit::Bytes),
    }
}

/// Checks IPC_LOCK, NET_ADMIN and RLIMIT_MEMLOCK. `dma_bytes`: the memory
/// vfio will pin (0 without VF ports); `exception_path`: the run makes
/// exception interfaces (L3 mode).
pub fn check_capabilities(root: &Path, dma_bytes: u64, exception_path: bool) -> Vec<Finding> {
    let Some(status) = read_proc_status(root) else {
        return vec![Finding::warn(
            "capabilities",
            "cannot read CapEff from /proc/self/status",
            "mount /proc in the container",
        )];
    };
    let mut out = Vec::new();
    let memlock = read_memlock(root);
    let ipc_lock = status.has(CAP_IPC_LOCK);
    let limit_text = match memlock {
        Some(MemlockLimit::Unlimited) => "unlimited".to_string(),
        Some(MemlockLimit::Bytes(b)) => format!("{} KiB", b >> 10),
        None => "unknown".to_string(),
    };
    let limit_fits = match memlock {
        Some(MemlockLimit::Unlimited) => true,
        Some(MemlockLimit::Bytes(b)) => b >= dma_bytes,
        None => false,
    };
    let add_ipc_lock = "add IPC_LOCK to the container's securityContext.capabilities.add \
                        (podman/docker: --cap-add IPC_LOCK), or raise its memlock limit \
                        (ulimit -l, the runtime's default_ulimits)";
    if ipc_lock {
        out.push(Finding::ok(
            "cap-ipc-lock",
            format!("IPC_LOCK effective: DMA memory is pinned without counting against memlock ({limit_text})"),
        ));
    } else if dma_bytes == 0 {
        out.push(Finding::ok(
            "cap-ipc-lock",
            format!("IPC_LOCK absent, not needed without VF ports (memlock {limit_text})"),
        ));
    } else if limit_fits {
        out.push(Finding::warn(
            "cap-ipc-lock",
            format!(
                "IPC_LOCK absent; memlock {limit_text} covers the {} KiB vfio pins today, \
                 but not a larger pool",
                dma_bytes >> 10
            ),
            add_ipc_lock,
        ));
    } else {
        out.push(Finding::fail(
            "cap-ipc-lock",
            format!(
                "IPC_LOCK absent and memlock {limit_text} is below the {} KiB vfio must pin \
                 for the VF ports' DMA",
                dma_bytes >> 10
            ),
            add_ipc_lock,
        ));
    }
    let net_admin = status.has(CAP_NET_ADMIN);
    let add_net_admin = "add NET_ADMIN to the container's securityContext.capabilities.add \
                         (podman/docker: --cap-add NET_ADMIN)";
    match (net_admin, exception_path) {
        (true, _) => out.push(Finding::ok(
            "cap-net-admin",
            "NET_ADMIN effective: exception interfaces can be made and configured",
        )),
        (false, true) => out.push(Finding::fail(
            "cap-net-admin",
            "NET_ADMIN absent: --mode l3 cannot make its exception TAPs or set their links",
            add_net_admin,
        )),
        (false, false) => out.push(Finding::warn(
            "cap-net-admin",
            "NET_ADMIN absent: fine for io and mac modes, but --mode l3 needs it",
            add_net_admin,
        )),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::finding::Status;
    use crate::k8s::fixture::tree;

    const LIMITS: &str = "\
Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max locked memory         8388608              8388608              bytes     
";

    fn status(cap_eff: u64) -> String {
        format!("Name:\tfastpath\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\nCapEff:\t{cap_eff:016x}\n")
    }

    fn root(cap_eff: u64, limits: &str) -> tempfile::TempDir {
        tree(&[
            ("proc/self/status", &status(cap_eff)),
            ("proc/self/limits", limits),
        ])
    }

    #[test]
    fn parses_status_and_limits() {
        let s = parse_proc_status(&status(0x5000)).unwrap();
        assert!(s.has(CAP_IPC_LOCK) && s.has(CAP_NET_ADMIN) && !s.has(0) && !s.has(99));
        assert_eq!((s.euid, s.egid), (1000, 100));
        assert_eq!(parse_proc_status("CapEff:\tzz\n"), None);
        assert_eq!(parse_memlock(LIMITS), Some(MemlockLimit::Bytes(8 << 20)));
        assert_eq!(
            parse_memlock("Max locked memory unlimited unlimited bytes\n"),
            Some(MemlockLimit::Unlimited)
        );
        assert_eq!(parse_memlock("nothing\n"), None);
    }

    #[test]
    fn missing_caps() {
        let by = |f: &[Finding], n: &str| f.iter().find(|f| f.name == n).unwrap().status;
        let r = root(0, LIMITS);
        // 64 MiB to pin with an 8 MiB memlock and no IPC_LOCK: FAIL.
        let f = check_capabilities(r.path(), 64 << 20, true);
        assert_eq!(by(&f, "cap-ipc-lock"), Status::Fail);
        assert_eq!(by(&f, "cap-net-admin"), Status::Fail);
        assert!(
            f[0].found
                .contains("memlock 8192 KiB is below the 65536 KiB"),
            "{}",
            f[0].found
        );
        // Small enough to fit the limit: WARN.
        let f = check_capabilities(r.path(), 4 << 20, false);
        assert_eq!(by(&f, "cap-ipc-lock"), Status::Warn);
        assert_eq!(by(&f, "cap-net-admin"), Status::Warn);
        // Nothing to pin: OK.
        let f = check_capabilities(r.path(), 0, false);
        assert_eq!(by(&f, "cap-ipc-lock"), Status::Ok);
        let r = root((1 << CAP_IPC_LOCK) | (1 << CAP_NET_ADMIN), LIMITS);
        let f = check_capabilities(r.path(), 64 << 20, true);
        assert!(f.iter().all(|f| f.status == Status::Ok), "{f:?}");
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            check_capabilities(empty.path(), 0, false)[0].status,
            Status::Warn
        );
    }
}
