//! Which CPUs this process may pin fast-path workers to.
//!
//! The answer is the intersection of the thread's `sched_getaffinity` mask
//! and the cgroup cpuset (v1 or v2) the process lives in. The kernel already
//! keeps the affinity inside the cpuset, so the cgroup is read mostly to say
//! *where* a limit comes from when an operator asks for a CPU it cannot have
//! (a Kubernetes pod without exclusive CPUs, a `taskset` wrapper, ...).
//!
//! The cgroup files are found the way the kernel exposes them: the process's
//! cgroup path per hierarchy from `/proc/self/cgroup`, the hierarchy's mount
//! from `/proc/self/mountinfo`. Every path is resolved under a root directory
//! so tests can run against a fake tree ([`allowed_cpus_at`]).

use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::cpu_list::{parse_cpu_list, CpuListError};
use drivers::cpu::{thread_affinity, CpuSet};

/// Which cgroup hierarchy the cpuset was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupVersion {
    /// A v1 hierarchy with the cpuset controller (files `cpuset.effective_cpus`, `cpuset.cpus`).
    V1,
    /// The unified v2 hierarchy (file `cpuset.cpus.effective`).
    V2,
}

impl fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
        })
    }
}

/// The cgroup cpuset that applies to this process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupCpuset {
    /// The hierarchy the file belongs to.
    pub version: CgroupVersion,
    /// The file the CPUs were read from.
    pub path: PathBuf,
    /// The CPUs listed in that file.
    pub cpus: CpuSet,
}

impl fmt::Display for CgroupCpuset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        write!(
            f,
            "cgroup {} {} {} {}",
            self.version,
            file,
            self.path.display(),
            self.cpus
        )
    }
}

/// The CPUs this process may run on, and where that limit comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedCpus {
    /// `affinity` intersected with the cgroup cpuset, if there is one.
    pub set: CpuSet,
    /// The calling thread's `sched_getaffinity` mask.
    pub affinity: CpuSet,
    /// `None` when no cpuset controller was found (affinity alone applies).
    pub cgroup: Option<CgroupCpuset>,
}

/// "0-1 (sched_getaffinity 0-1, cgroup v2 cpuset.cpus.effective /sys/fs/cgroup/x/cpuset.cpus.effective 0-1)"
impl fmt::Display for AllowedCpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (sched_getaffinity {}, ", self.set, self.affinity)?;
        match &self.cgroup {
            Some(cg) => write!(f, "{cg})"),
            None => f.write_str("no cgroup cpuset found)"),
        }
    }
}

/// Why the allowed CPUs could not be determined, or a request does not fit them.
#[derive(Debug, thiserror::Error)]
pub enum CpuConfigError {
    /// `sched_getaffinity` failed.
    #[error("cannot read the CPU affinity of this thread (sched_getaffinity): {0}")]
    Affinity(#[source] io::Error),
    /// A cgroup or /proc file exists but could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A cpuset file does not hold a CPU list.
    #[error("bad CPU list in {}: {source}", path.display())]
    CpusetParse {
        /// The file.
        path: PathBuf,
        /// What is wrong with its content.
        #[source]
        source: CpuListError,
    },
    /// The affinity and the cgroup cpuset have no CPU in common, which the
    /// kernel does not allow: the cpuset file read is not this process's.
    #[error("no CPU is allowed for this process: sched_getaffinity {affinity} and {cgroup} do not overlap")]
    NoAllowedCpus {
        /// The thread's affinity.
        affinity: CpuSet,
        /// The cpuset that was found.
        cgroup: CgroupCpuset,
    },
    /// Some requested CPUs are outside the allowed set.
    #[error("{} not allowed for this process: allowed CPUs are {allowed}", cpus_phrase(.cpus))]
    NotAllowed {
        /// The requested CPUs outside the allowed set.
        cpus: CpuSet,
        /// The allowed set and where it comes from (boxed: keeps the error small).
        allowed: Box<AllowedCpus>,
    },
    /// More worker cores asked than the allowed CPUs can give (the first
    /// allowed CPU is kept for the control thread when there are several).
    #[error(
        "{asked} worker cores asked, but {usable} can be used: allowed CPUs are {allowed}, \
         and the first is kept for the control thread when there are several"
    )]
    TooFewCpus {
        /// Worker cores asked.
        asked: usize,
        /// Worker cores that can be had.
        usable: usize,
        /// The allowed set and where it comes from (boxed: keeps the error small).
        allowed: Box<AllowedCpus>,
    },
}

/// "CPU 5 is" / "CPUs 5-7,9 are", for error messages.
fn cpus_phrase(cpus: &CpuSet) -> String {
    if cpus.len() == 1 {
        format!("CPU {cpus} is")
    } else {
        format!("CPUs {cpus} are")
    }
}

/// The CPUs this process may use, on the running system.
pub fn allowed_cpus() -> Result<AllowedCpus, CpuConfigError> {
    let affinity = thread_affinity().map_err(CpuConfigError::Affinity)?;
    allowed_cpus_at(Path::new("/"), affinity)
}

/// Like [`allowed_cpus`], with `proc/self/cgroup`, `proc/self/mountinfo` and
/// the cgroup mounts looked up under `root` instead of `/`, and the affinity
/// given. Reported paths are under `root`.
pub fn allowed_cpus_at(root: &Path, affinity: CpuSet) -> Result<AllowedCpus, CpuConfigError> {
    let cgroup = find_cgroup_cpuset(root)?;
    let set = match &cgroup {
        Some(cg) => affinity.intersection(&cg.cpus),
        None => affinity.clone(),
    };
    if set.is_empty() {
        if let Some(cg) = cgroup {
            // The kernel keeps the affinity inside the cpuset, so an empty
            // intersection means we read some other cgroup's file: say so
            // rather than pin workers from a wrong guess.
            return Err(CpuConfigError::NoAllowedCpus {
                affinity,
                cgroup: cg,
            });
        }
    }
    Ok(AllowedCpus {
        set,
        affinity,
        cgroup,
    })
}

/// Checks that every requested CPU (FP_MASK, CORE_PORT_MAPPING, ...) is one
/// this process may run on. An empty request is trivially fine; whether a
/// configuration needs at least one core is for its own validation.
pub fn check_requested(requested: &CpuSet, allowed: &AllowedCpus) -> Result<(), CpuConfigError> {
    let outside = requested.difference(&allowed.set);
    if outside.is_empty() {
        Ok(())
    } else {
        Err(CpuConfigError::NotAllowed {
            cpus: outside,
            allowed: Box::new(allowed.clone()),
        })
    }
}

/// One line of /proc/self/cgroup: "hierarchy-id:controllers:path".
struct CgroupLine {
    controllers: Vec<String>,
    path: String,
    /// v2 is the line with hierarchy 0 and no controllers.
    unified: bool,
}

fn parse_proc_cgroup(text: &str) -> Vec<CgroupLine> {
    text.lines()
        .filter_map(|line| {
            // The path may itself contain ':', so split only twice.
            let mut fields = line.splitn(3, ':');
            let id = fields.next()?;
            let controllers = fields.next()?;
            let path = fields.next()?;
            Some(CgroupLine {
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                path: path.to_string(),
                unified: id == "0" && controllers.is_empty(),
            })
        })
        .collect()
}

/// A cgroup filesystem mount from /proc/self/mountinfo.
#[derive(Debug)]
struct CgroupMount {
    version: CgroupVersion,
    /// The cgroup directory, relative to its hierarchy, mounted here.
    root: String,
    mount_point: PathBuf,
    /// v1 superblock options: the controllers, and "noprefix".
    super_options: Vec<String>,
}

/// mountinfo fields: "id parent maj:min root mount-point options [optional...] - fstype source super-options".
fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    let mut mounts = Vec::new();
    for line in text.lines() {
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = before.split(' ').collect();
        let post: Vec<&str> = after.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 {
            continue;
        }
        let version = match post[0] {
            "cgroup" => CgroupVersion::V1,
            "cgroup2" => CgroupVersion::V2,
            _ => continue,
        };
        mounts.push(CgroupMount {
            version,
            root: unescape_mountinfo(pre[3]),
            mount_point: PathBuf::from(unescape_mountinfo(pre[4])),
            super_options: post[2].split(',').map(str::to_string).collect(),
        });
    }
    mounts
}

/// mountinfo writes space, tab, newline and backslash as octal escapes (`\040` for a space).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(b) = u8::try_from(value) {
                    out.push(b);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// When mountinfo is missing or lists no cgroup mount, assume the usual
/// systemd layout under /sys/fs/cgroup (v2 alone, or v1 with v2 at "unified").
fn default_mounts(root: &Path) -> Vec<CgroupMount> {
    let mut mounts = Vec::new();
    let v2_candidates = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"];
    for mp in v2_candidates {
        if under_root(root, Path::new(mp))
            .join("cgroup.controllers")
            .is_file()
        {
            mounts.push(CgroupMount {
                version: CgroupVersion::V2,
                root: "/".to_string(),
                mount_point: PathBuf::from(mp),
                super_options: Vec::new(),
            });
        }
    }
    if under_root(root, Path::new("/sys/fs/cgroup/cpuset")).is_dir() {
        mounts.push(CgroupMount {
            version: CgroupVersion::V1,
            root: "/".to_string(),
            mount_point: PathBuf::from("/sys/fs/cgroup/cpuset"),
            super_options: vec!["cpuset".to_string()],
        });
    }
    mounts
}

/// `path` (absolute on the target system) as seen from `root`.
fn under_root(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Reads a file, with "does not exist" as `None` rather than an error.
fn read_optional(path: &Path) -> Result<Option<String>, CpuConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CpuConfigError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Finds the cpuset of this process. The cpuset controller is bound to at
/// most one hierarchy, so try v1 (a hierarchy whose line names "cpuset")
/// first, then the unified v2 hierarchy; the first one that yields a
/// non-empty file wins. On a hybrid host the v2 mount has no cpuset files
/// and is skipped naturally.
fn find_cgroup_cpuset(root: &Path) -> Result<Option<CgroupCpuset>, CpuConfigError> {
    let proc_cgroup = root.join("proc/self/cgroup");
    let Some(cgroup_text) = read_optional(&proc_cgroup)? else {
        // Not Linux, or no /proc: no cgroup information at all.
        return Ok(None);
    };
    let lines = parse_proc_cgroup(&cgroup_text);
    let mountinfo_path = root.join("proc/self/mountinfo");
    let mut mounts = match read_optional(&mountinfo_path)? {
        Some(text) => parse_mountinfo(&text),
        None => Vec::new(),
    };
    if mounts.is_empty() {
        mounts = default_mounts(root);
    }

    if let Some(line) = lines
        .iter()
        .find(|l| l.controllers.iter().any(|c| c == "cpuset"))
    {
        let v1_mounts = mounts.iter().filter(|m| {
            m.version == CgroupVersion::V1 && m.super_options.iter().any(|o| o == "cpuset")
        });
        if let Some(mount) = pick_mount(v1_mounts, &line.path) {
            // Very old setups mount cpuset with "noprefix": files lack "cpuset.".
            let names: [&str; 2] = if mount.super_options.iter().any(|o| o == "noprefix") {
                ["effective_cpus", "cpus"]
            } else {
                ["cpuset.effective_cpus", "cpuset.cpus"]
            };
            if let Some(found) = read_cpuset(root, mount, &line.path, &names)? {
                return Ok(Some(found));
            }
        }
    }

    if let Some(line) = lines.iter().find(|l| l.unified) {
        let v2_mounts = mounts.iter().filter(|m| m.version == CgroupVersion::V2);
        if let Some(mount) = pick_mount(v2_mounts, &line.path) {
            if let Some(found) = read_cpuset(root, mount, &line.path, &["cpuset.cpus.effective"])? {
                return Ok(Some(found));
            }
        }
    }
    Ok(None)
}

/// This process's cgroup directory in the hierarchy of `controller`: the
/// v1 hierarchy that names it, else the unified v2 one; `None` when there
/// is no cgroup information. Under `root`, found as [`allowed_cpus_at`]
/// finds the cpuset (when our directory is not visible under the mount,
/// the mount point itself, a container's own cgroup). Other controllers'
/// files (hugetlb limits for `fastpath check`) are read there.
pub fn cgroup_dir_at(root: &Path, controller: &str) -> Option<(CgroupVersion, PathBuf)> {
    let lines = parse_proc_cgroup(&std::fs::read_to_string(root.join("proc/self/cgroup")).ok()?);
    let mut mounts = std::fs::read_to_string(root.join("proc/self/mountinfo"))
        .map(|t| parse_mountinfo(&t))
        .unwrap_or_default();
    if mounts.is_empty() {
        mounts = default_mounts(root);
    }
    let v1 = lines
        .iter()
        .find(|l| l.controllers.iter().any(|c| c == controller))
        .and_then(|line| {
            let m = mounts.iter().filter(|m| {
                m.version == CgroupVersion::V1 && m.super_options.iter().any(|o| o == controller)
            });
            Some((pick_mount(m, &line.path)?, line))
        });
    let (mount, line) = v1.or_else(|| {
        let line = lines.iter().find(|l| l.unified)?;
        let m = mounts.iter().filter(|m| m.version == CgroupVersion::V2);
        Some((pick_mount(m, &line.path)?, line))
    })?;
    let top = under_root(root, &mount.mount_point);
    let dir = match relative_to_mount_root(&mount.root, &line.path) {
        Some(rel) if top.join(&rel).is_dir() => top.join(rel),
        _ => top,
    };
    Some((mount.version, dir))
}

/// Among mounts of one hierarchy (a container may see several bind mounts),
/// prefer the one whose mounted root contains our cgroup most closely.
fn pick_mount<'a>(
    mounts: impl Iterator<Item = &'a CgroupMount>,
    cgroup_path: &str,
) -> Option<&'a CgroupMount> {
    let mounts: Vec<&CgroupMount> = mounts.collect();
    mounts
        .iter()
        .filter(|m| relative_to_mount_root(&m.root, cgroup_path).is_some())
        .max_by_key(|m| m.root.len())
        .or_else(|| mounts.first())
        .copied()
}

/// `cgroup_path` relative to a mount's root, if it lies under it and has no
/// ".." (a cgroup namespace shows cgroups outside it as "/../..").
fn relative_to_mount_root(mount_root: &str, cgroup_path: &str) -> Option<PathBuf> {
    let rel = Path::new(cgroup_path).strip_prefix(mount_root).ok()?;
    if rel.components().all(|c| matches!(c, Component::Normal(_))) {
        Some(rel.to_path_buf())
    } else {
        None
    }
}

/// Reads the first non-empty file among `names`, starting in our cgroup's
/// directory and walking up to the mount point. Walking up covers cgroups
/// whose file is empty (v1 `cpuset.cpus` of a child nobody configured) or
/// absent (v2 cgroups where the parent did not enable cpuset). When our
/// cgroup's directory is not visible under the mount (cgroup namespaces,
/// containers with the host path in /proc/self/cgroup), start at the mount
/// point itself, which is then the container's own cgroup.
fn read_cpuset(
    root: &Path,
    mount: &CgroupMount,
    cgroup_path: &str,
    names: &[&str],
) -> Result<Option<CgroupCpuset>, CpuConfigError> {
    let top = under_root(root, &mount.mount_point);
    let mut dir = match relative_to_mount_root(&mount.root, cgroup_path) {
        Some(rel) if top.join(&rel).is_dir() => top.join(rel),
        _ => top.clone(),
    };
    loop {
        for name in names {
            let path = dir.join(name);
            let Some(text) = read_optional(&path)? else {
                continue;
            };
            if text.trim().is_empty() {
                continue;
            }
            let cpus = parse_cpu_list(&text).map_err(|source| CpuConfigError::CpusetParse {
                path: path.clone(),
                source,
            })?;
            return Ok(Some(CgroupCpuset {
                version: mount.version,
                path,
                cpus,
            }));
        }
        if dir == top {
            return Ok(None);
        }
        match dir.parent() {
            Some(parent) => dir = parent.to_path_buf(),
            None => return Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drivers::cpu::CpuId;

    /// A fake filesystem root in a fresh temporary directory, removed on
    /// drop (tempfile).
    struct FakeRoot {
        dir: tempfile::TempDir,
    }

    impl FakeRoot {
        fn new(name: &str) -> FakeRoot {
            let dir = tempfile::Builder::new()
                .prefix(&format!("fastpath-cpus-test-{name}-"))
                .tempdir()
                .unwrap();
            FakeRoot { dir }
        }

        fn write(&self, rel: &str, content: &str) -> &Self {
            let path = self.path(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
            self
        }

        fn mkdir(&self, rel: &str) -> &Self {
            std::fs::create_dir_all(self.path(rel)).unwrap();
            self
        }

        fn path(&self, rel: &str) -> PathBuf {
            self.dir.path().join(rel)
        }
    }

    fn set(list: &str) -> CpuSet {
        parse_cpu_list(list).unwrap()
    }

    const MOUNTINFO_V2: &str = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    /// The layout of this development machine: v1 controllers, v2 at "unified".
    const MOUNTINFO_HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn v2_reads_leaf_effective() {
        let fs = FakeRoot::new("v2");
        fs.write("proc/self/cgroup", "0::/kubepods/pod1/ctr\n")
            .write("proc/self/mountinfo", MOUNTINFO_V2)
            .write(
                "sys/fs/cgroup/cgroup.controllers",
                "cpuset cpu io memory pids\n",
            )
            .write("sys/fs/cgroup/cpuset.cpus.effective", "0-7\n")
            .write(
                "sys/fs/cgroup/kubepods/pod1/ctr/cpuset.cpus.effective",
                "2-3\n",
            );
        let allowed = allowed_cpus_at(fs.dir.path(), set("0-7")).unwrap();
        assert_eq!(allowed.set, set("2-3"));
        assert_eq!(allowed.affinity, set("0-7"));
        let cg = allowed.cgroup.unwrap();
        assert_eq!(cg.version, CgroupVersion::V2);
        assert_eq!(cg.cpus, set("2-3"));
        assert_eq!(
            cg.path,
            fs.path("sys/fs/cgroup/kubepods/pod1/ctr/cpuset.cpus.effective")
        );
    }

    #[test]
    fn v2_intersects_with_affinity() {
        let fs = FakeRoot::new("v2-affinity");
        fs.write("proc/self/cgroup", "0::/a\n")
            .write("proc/self/mountinfo", MOUNTINFO_V2)
            .write("sys/fs/cgroup/a/cpuset.cpus.effective", "0-3\n");
        let allowed = allowed_cpus_at(fs.dir.path(), set("2-5")).unwrap();
        assert_eq!(allowed.set, set("2-3"));
    }

    #[test]
    fn v2_walks_up_past_empty_and_missing_files() {
        let fs = FakeRoot::new("v2-nested");
        fs.write("proc/self/cgroup", "0::/kubepods/burstable/pod9/ctr\n")
            .write("proc/self/mountinfo", MOUNTINFO_V2)
            .write("sys/fs/cgroup/cpuset.cpus.effective", "0-15\n")
            .write("sys/fs/cgroup/kubepods/cpuset.cpus.effective", "4-11\n")
            // pod9 has no cpuset files at all; the leaf has an empty one.
            .mkdir("sys/fs/cgroup/kubepods/burstable/pod9")
            .write(
                "sys/fs/cgroup/kubepods/burstable/cpuset.cpus.effective",
                "\n",
            )
            .write(
                "sys/fs/cgroup/kubepods/burstable/pod9/ctr/cpuset.cpus.effective",
                "",
            );
        let allowed = allowed_cpus_at(fs.dir.path(), set("0-15")).unwrap();
        let cg = allowed.cgroup.unwrap();
        assert_eq!(
            cg.path,
            fs.path("sys/fs/cgroup/kubepods/cpuset.cpus.effective")
        );
        assert_eq!(allowed.set, set("4-11"));
    }

    #[test]
    fn v1_prefers_effective_cpus_then_cpus() {
        let fs = FakeRoot::new("v1");
        fs.write(
            "proc/self/cgroup",
            "4:memory:/docker/abc\n3:cpuset:/docker/abc\n1:cpu:/docker/abc\n",
        )
        .write("proc/self/mountinfo", MOUNTINFO_HYBRID)
        .write("sys/fs/cgroup/cpuset/cpuset.cpus", "0-7\n")
        .write(
            "sys/fs/cgroup/cpuset/docker/abc/cpuset.effective_cpus",
            "1,3\n",
        )
        .write("sys/fs/cgroup/cpuset/docker/abc/cpuset.cpus", "1-3\n");
        let allowed = allowed_cpus_at(fs.dir.path(), set("0-7")).unwrap();
        let cg = allowed.cgroup.unwrap();
        assert_eq!(cg.version, CgroupVersion::V1);
        assert_eq!(
            cg.path,
            fs.path("sys/fs/cgroup/cpuset/docker/abc/cpuset.effective_cpus")
        );
        assert_eq!(allowed.set, set("1,3"));

        // Old kernels have no effective_cpus: fall back to cpuset.cpus.
        std::fs::remove_file(fs.path("sys/fs/cgroup/cpuset/docker/abc/cpuset.effective_cpus"))
            .unwrap();
        let allowed = allowed_cpus_at(fs.dir.path(), set("0-7")).unwrap();
        assert_eq!(
            allowed.cgroup.unwrap().path,
            fs.path("sys/fs/cgroup/cpuset/docker/abc/cpuset.cpus")
        );
        assert_eq!(allowed.set, set("1-3"));
    }

    #[test]
    fn v1_walks_up_past_empty_cpus() {
        let fs = FakeRoot::new("v1-nested");
        fs.write("proc/self/cgroup", "2:cpu,cpuset:/job/task\n")
            .write(
                "proc/self/mountinfo",
                "34 31 0:31 / /sys/fs/cgroup/cpu,cpuset rw,relatime - cgroup cgroup rw,cpu,cpuset\n",
            )
            .write("sys/fs/cgroup/cpu,cpuset/cpuset.effective_cpus", "0-3\n")
            .write("sys/fs/cgroup/cpu,cpuset/job/cpuset.cpus", "\n")
            .write("sys/fs/cgroup/cpu,cpuset/job/task/cpuset.cpus", "\n");
        let allowed = allowed_cpus_at(fs.dir.path(), set("0-3")).unwrap();
        assert_eq!(
            allowed.cgroup.unwrap().path,
            fs.path("sys/fs/cgroup/cpu,cpuset/cpuset.effective_cpus")
        );
    }

    #[test]
    fn hybrid_uses_v1_cpuset_not_unified() {
        let fs = FakeRoot::new("hybrid");
        fs.write(
            "proc/self/cgroup",
            "9:name=systemd:/\n3:cpuset:/\n1:cpu:/\n0::/user.slice\n",
        )
        .write("proc/self/mountinfo", MOUNTINFO_HYBRID)
        .write("sys/fs/cgroup/cpuset/cpuset.effective_cpus", "0-1\n")
        .write("sys/fs/cgroup/cpuset/cpuset.cpus", "0-1\n")
        .write("sys/fs/cgroup/unified/cgroup.controllers", "")
        .mkdir("sys/fs/cgroup/unified/user.slice");
        let allowed = allowed_cpus_at(fs.dir.path(), set("0-1")).unwrap();
        let cg = allowed.cgroup.unwrap();
        assert_eq!(cg.version, CgroupVersion::V1);
        assert_eq!(
            cg.path,
            fs.path("sys/fs/cgroup/cpuset/cpuset.effective_cpus")
        );
    }

    #[test]
    fn hybrid_with_cpuset_on_v2() {
        // v1 hierarchies for other controllers, cpuset bound to the unified one.
        let fs = FakeRoot::new("hybrid-v2");
        fs.write("proc/self/cgroup", "4:memory:/x\n0::/x\n")
            .write(
                "proc/self/mountinfo",
                "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                 41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
            )
            .write("sys/fs/cgroup/unified/x/cpuset.cpus.effective", "1\n");
        let cg = allowed_cpus_at(fs.dir.path(), set("0-1"))
            .unwrap()
            .cgroup
            .unwrap();
        assert_eq!(cg.version, CgroupVersion::V2);
        assert_eq!(cg.cpus, set("1"));
    }

    #[test]
    fn missing_controller_means_affinity_alone() {
        let fs = FakeRoot::new("no-cpuset");
        fs.write("proc/self/cgroup", "0::/a/b\n")
            .write("proc/self/mountinfo", MOUNTINFO_V2)
            .write("sys/fs/cgroup/cgroup.controllers", "memory pids\n")
            .mkdir("sys/fs/cgroup/a/b");
        let allowed = allowed_cpus_at(fs.dir.path(), set("0-3")).unwrap();
        assert_eq!(allowed.cgroup, None);
        assert_eq!(allowed.set, set("0-3"));
        assert_eq!(
            allowed.to_string(),
            "0-3 (sched_getaffinity 0-3, no cgroup cpuset found)"
        );

        // No /proc at all (not Linux, or a bare chroot).
        let empty = FakeRoot::new("no-proc");
        let allowed = allowed_cpus_at(empty.dir.path(), set("1")).unwrap();
        assert_eq!(allowed.cgroup, None);
        assert_eq!(allowed.set, set("1"));
    }

    #[test]
    fn container_cgroup_not_under_mount_uses_mount_root() {
        // Without a cgroup namespace, /proc/self/cgroup shows the host path
        // but only the container's own cgroup is mounted.
        let fs = FakeRoot::new("container");
        fs.write(
            "proc/self/cgroup",
            "0::/kubepods.slice/pod1.slice/cri-abc.scope\n",
        )
        .write("proc/self/mountinfo", MOUNTINFO_V2)
        .write("sys/fs/cgroup/cpuset.cpus.effective", "5-6\n");
        let cg = allowed_cpus_at(fs.dir.path(), set("0-7"))
            .unwrap()
            .cgroup
            .unwrap();
        assert_eq!(cg.path, fs.path("sys/fs/cgroup/cpuset.cpus.effective"));
        assert_eq!(cg.cpus, set("5-6"));

        // The mount's root field says which cgroup is mounted: "/docker/abc".
        let fs = FakeRoot::new("container-v1");
        fs.write("proc/self/cgroup", "3:cpuset:/docker/abc\n")
            .write(
                "proc/self/mountinfo",
                "34 31 0:31 /docker/abc /sys/fs/cgroup/cpuset ro - cgroup cgroup rw,cpuset\n",
            )
            .write("sys/fs/cgroup/cpuset/cpuset.effective_cpus", "2\n");
        let cg = allowed_cpus_at(fs.dir.path(), set("0-7"))
            .unwrap()
            .cgroup
            .unwrap();
        assert_eq!(cg.cpus, set("2"));

        // A cgroup namespace showing a cgroup outside it: "/../..".
        let fs = FakeRoot::new("container-ns");
        fs.write("proc/self/cgroup", "0::/../../other\n")
            .write("proc/self/mountinfo", MOUNTINFO_V2)
            .write("sys/fs/cgroup/cpuset.cpus.effective", "3\n");
        let cg = allowed_cpus_at(fs.dir.path(), set("0-7"))
            .unwrap()
            .cgroup
            .unwrap();
        assert_eq!(cg.path, fs.path("sys/fs/cgroup/cpuset.cpus.effective"));
    }

    #[test]
    fn without_mountinfo_assumes_sys_fs_cgroup() {
        let fs = FakeRoot::new("no-mountinfo");
        fs.write("proc/self/cgroup", "0::/a\n")
            .write("sys/fs/cgroup/cgroup.controllers", "cpuset\n")
            .write("sys/fs/cgroup/a/cpuset.cpus.effective", "0\n");
        let cg = allowed_cpus_at(fs.dir.path(), set("0-1"))
            .unwrap()
            .cgroup
            .unwrap();
        assert_eq!(cg.version, CgroupVersion::V2);
        assert_eq!(cg.cpus, set("0"));
    }

    #[test]
    fn escaped_mount_point() {
        let fs = FakeRoot::new("escaped");
        fs.write("proc/self/cgroup", "0::/\n")
            .write(
                "proc/self/mountinfo",
                "30 23 0:26 / /my\\040cgroup rw - cgroup2 cgroup2 rw\n",
            )
            .write("my cgroup/cpuset.cpus.effective", "1\n");
        let cg = allowed_cpus_at(fs.dir.path(), set("0-1"))
            .unwrap()
            .cgroup
            .unwrap();
        assert_eq!(cg.path, fs.path("my cgroup/cpuset.cpus.effective"));
    }

    #[test]
    fn bad_cpuset_file_is_a_typed_error() {
        let fs = FakeRoot::new("garbage");
        fs.write("proc/self/cgroup", "0::/\n")
            .write("proc/self/mountinfo", MOUNTINFO_V2)
            .write("sys/fs/cgroup/cpuset.cpus.effective", "0-x\n");
        let err = allowed_cpus_at(fs.dir.path(), set("0-1")).unwrap_err();
        assert!(matches!(err, CpuConfigError::CpusetParse { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("cpuset.cpus.effective") && msg.contains("\"0-x\""),
            "{msg}"
        );
    }

    #[test]
    fn disjoint_affinity_and_cpuset_is_an_error() {
        let fs = FakeRoot::new("disjoint");
        fs.write("proc/self/cgroup", "0::/\n")
            .write("proc/self/mountinfo", MOUNTINFO_V2)
            .write("sys/fs/cgroup/cpuset.cpus.effective", "4-5\n");
        let err = allowed_cpus_at(fs.dir.path(), set("0-1")).unwrap_err();
        assert!(
            matches!(err, CpuConfigError::NoAllowedCpus { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("sched_getaffinity 0-1"), "{err}");
    }

    #[test]
    fn check_requested_names_cpus_and_source() {
        let allowed = AllowedCpus {
            set: set("0-1"),
            affinity: set("0-1"),
            cgroup: Some(CgroupCpuset {
                version: CgroupVersion::V2,
                path: PathBuf::from("/sys/fs/cgroup/kubepods/pod1/cpuset.cpus.effective"),
                cpus: set("0-1"),
            }),
        };
        assert!(check_requested(&set("0-1"), &allowed).is_ok());
        assert!(check_requested(&set("1"), &allowed).is_ok());
        assert!(check_requested(&CpuSet::new(), &allowed).is_ok());

        let err = check_requested(&set("1,5"), &allowed).unwrap_err();
        assert_eq!(
            err.to_string(),
            "CPU 5 is not allowed for this process: allowed CPUs are 0-1 \
             (sched_getaffinity 0-1, cgroup v2 cpuset.cpus.effective \
             /sys/fs/cgroup/kubepods/pod1/cpuset.cpus.effective 0-1)"
        );
        match err {
            CpuConfigError::NotAllowed { cpus, .. } => {
                assert_eq!(cpus, CpuSet::from_ids([CpuId(5)]))
            }
            other => panic!("unexpected {other:?}"),
        }

        let no_cgroup = AllowedCpus {
            set: set("0-3"),
            affinity: set("0-3"),
            cgroup: None,
        };
        let err = check_requested(&set("2-7,9"), &no_cgroup).unwrap_err();
        assert_eq!(
            err.to_string(),
            "CPUs 4-7,9 are not allowed for this process: allowed CPUs are 0-3 \
             (sched_getaffinity 0-3, no cgroup cpuset found)"
        );
    }

    #[test]
    fn cgroup_dir_of_a_controller() {
        let fs = FakeRoot::new("dir-v1");
        fs.write("proc/self/cgroup", "5:hugetlb:/kubepods/pod1\n0::/\n")
            .write(
                "proc/self/mountinfo",
                "36 31 0:33 / /sys/fs/cgroup/hugetlb rw - cgroup cgroup rw,hugetlb\n",
            )
            .mkdir("sys/fs/cgroup/hugetlb/kubepods/pod1");
        assert_eq!(
            cgroup_dir_at(fs.dir.path(), "hugetlb"),
            Some((
                CgroupVersion::V1,
                fs.path("sys/fs/cgroup/hugetlb/kubepods/pod1")
            ))
        );
        let fs = FakeRoot::new("dir-v2");
        fs.write("proc/self/cgroup", "0::/kubepods/pod1\n")
            .write("proc/self/mountinfo", MOUNTINFO_V2);
        // Not visible under the mount (a namespaced container): the mount.
        assert_eq!(
            cgroup_dir_at(fs.dir.path(), "hugetlb"),
            Some((CgroupVersion::V2, fs.path("sys/fs/cgroup")))
        );
        assert_eq!(
            cgroup_dir_at(FakeRoot::new("dir-none").dir.path(), "hugetlb"),
            None
        );
    }

    #[test]
    fn real_machine() {
        let allowed = allowed_cpus().expect("allowed_cpus on this machine");
        let affinity = thread_affinity().unwrap();
        assert!(!allowed.set.is_empty(), "{allowed}");
        assert!(allowed.set.is_subset(&affinity), "{allowed} vs {affinity}");
        eprintln!("allowed on this machine: {allowed}");
    }
}
