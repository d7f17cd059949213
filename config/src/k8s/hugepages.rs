//! Hugepages: the hugetlbfs mounts, the page sizes the kernel offers and
//! how many are free, against what the run needs.
//!
//! Facts (anchors.md 3.4): a pod asks for `hugepages-2Mi` / `hugepages-1Gi`
//! (requests = limits) and mounts them with an `emptyDir` of `medium:
//! HugePages`; nodes must reserve the pages beforehand. Counters:
//! `/sys/kernel/mm/hugepages/hugepages-<kB>kB/{nr,free,resv}_hugepages`,
//! per NUMA node under `/sys/devices/system/node/node<N>/hugepages/`
//! (Documentation/admin-guide/mm/hugetlbpage.rst). `/proc/mounts` shows a
//! hugetlbfs mount's page size as its `pagesize=` option (fs/hugetlbfs/inode.c,
//! `hugetlbfs_show_options`, with a K, M or G unit); without it the mount
//! uses the default size (`Hugepagesize:` of /proc/meminfo).
//!
//! In a pod the node's free count is not the whole story: the container's
//! hugetlb cgroup caps what it may take (its `hugepages-<size>` limit).
//! cgroup v2 files `hugetlb.<size>.max` and `.current`, v1
//! `hugetlb.<size>.limit_in_bytes` and `.usage_in_bytes`, with sizes named
//! `2MB`, `1GB` (Documentation/admin-guide/cgroup-v2.rst "HugeTLB",
//! Documentation/admin-guide/cgroup-v1/hugetlb.rst).

use super::finding::Finding;
use crate::cpus::{cgroup_dir_at, CgroupVersion};
use drivers::memory::{hugepage_status_at, HugepageSize, HugepageStatus, MemoryBacking, PageSize};
use std::path::{Path, PathBuf};

/// What the run asks of memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryNeed {
    /// Where the pool's memory comes from.
    pub backing: MemoryBacking,
    /// The pool's bytes before rounding to a page
    /// ([`crate::pool_sizing::pool_bytes`]).
    pub pool_bytes: u64,
    /// VF ports: each maps its descriptor rings in a region of its own,
    /// which takes at least one page (drivers' `DmaArena` rounds up to the
    /// backing's page size).
    pub vf_ports: usize,
}

impl MemoryNeed {
    /// Pages of `size` the run needs at least.
    pub fn pages(&self, size: PageSize) -> u64 {
        let page = size.bytes() as u64;
        self.pool_bytes.div_ceil(page) + self.vf_ports as u64
    }

    /// Bytes of `size` pages the run needs at least.
    pub fn bytes(&self, size: PageSize) -> u64 {
        self.pages(size).saturating_mul(size.bytes() as u64)
    }

    /// The page sizes the run may take its memory from (none with
    /// `--no-huge`); a hugetlbfs directory's size is found from its mount.
    fn sizes(&self, mounts: &[HugetlbfsMount]) -> Vec<PageSize> {
        match &self.backing {
            MemoryBacking::NoHuge => Vec::new(),
            MemoryBacking::Hugepages(HugepageSize::Size2M) => vec![PageSize::Size2M],
            MemoryBacking::Hugepages(HugepageSize::Size1G) => vec![PageSize::Size1G],
            MemoryBacking::Hugepages(HugepageSize::Auto) => {
                vec![PageSize::Size2M, PageSize::Size1G]
            }
            MemoryBacking::Hugetlbfs(dir) => mounts
                .iter()
                .filter(|m| m.mount_point == *dir)
                .filter_map(|m| m.page)
                .collect(),
        }
    }
}

/// A hugetlbfs mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HugetlbfsMount {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Its page size (`None`: one fastpath does not use, such as 16M).
    pub page: Option<PageSize>,
}

/// The hugetlbfs mounts listed in `<root>/proc/mounts`.
pub fn hugetlbfs_mounts(root: &Path) -> Vec<HugetlbfsMount> {
    let Ok(text) = std::fs::read_to_string(root.join("proc/mounts")) else {
        return Vec::new();
    };
    let default = default_page_size(root);
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 4 || f[2] != "hugetlbfs" {
                return None;
            }
            let page = match f[3].split(',').find_map(|o| o.strip_prefix("pagesize=")) {
                Some(text) => parse_size(text).and_then(page_size_of_bytes),
                None => default,
            };
            Some(HugetlbfsMount {
                // /proc/mounts escapes a space as \040; mount points with
                // one are rare enough to show escaped.
                mount_point: PathBuf::from(f[1]),
                page,
            })
        })
        .collect()
}

/// `2M`, `1024M`, `1G`, `2048K` or a plain byte count, in bytes.
fn parse_size(text: &str) -> Option<u64> {
    let (digits, shift) = match text.as_bytes().last()? {
        b'K' | b'k' => (&text[..text.len() - 1], 10),
        b'M' | b'm' => (&text[..text.len() - 1], 20),
        b'G' | b'g' => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

fn page_size_of_bytes(bytes: u64) -> Option<PageSize> {
    [PageSize::Size2M, PageSize::Size1G]
        .into_iter()
        .find(|s| s.bytes() as u64 == bytes)
}

/// `Hugepagesize:` of `<root>/proc/meminfo` ("Hugepagesize:    2048 kB").
fn default_page_size(root: &Path) -> Option<PageSize> {
    let text = std::fs::read_to_string(root.join("proc/meminfo")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Hugepagesize:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    page_size_of_bytes(kb.checked_mul(1024)?)
}

/// Free pages of `size` on NUMA node `node`, from
/// `<root>/sys/devices/system/node/node<N>/hugepages/hugepages-<kB>kB/free_hugepages`.
pub fn free_on_node(root: &Path, node: u32, size: PageSize) -> Option<u64> {
    let path = root.join(format!(
        "sys/devices/system/node/node{node}/hugepages/hugepages-{}kB/free_hugepages",
        size.bytes() >> 10
    ));
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// What the container's hugetlb cgroup still lets it take of `size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupHugetlb {
    /// The limit in bytes.
    pub limit: u64,
    /// Bytes charged already.
    pub usage: u64,
}

impl CgroupHugetlb {
    /// Pages of `size` that may still be taken.
    pub fn pages_left(&self, size: PageSize) -> u64 {
        self.limit.saturating_sub(self.usage) / size.bytes() as u64
    }
}

/// The hugetlb cgroup limit of `size` under `root`; `None` when there is
/// no hugetlb controller or no limit.
pub fn cgroup_hugetlb(root: &Path, size: PageSize) -> Option<CgroupHugetlb> {
    let (version, dir) = cgroup_dir_at(root, "hugetlb")?;
    let name = match size {
        PageSize::Size1G => "1GB",
        _ => "2MB",
    };
    let (limit_file, usage_file) = match version {
        CgroupVersion::V2 => ("max", "current"),
        CgroupVersion::V1 => ("limit_in_bytes", "usage_in_bytes"),
    };
    let read = |suffix: &str| {
        std::fs::read_to_string(dir.join(format!("hugetlb.{name}.{suffix}")))
            .ok()
            .map(|t| t.trim().to_string())
    };
    // "max" (v2) or a value near 2^63 (v1's unlimited, page-rounded)
    // mean no limit.
    let limit: u64 = read(limit_file)?.parse().ok().filter(|l| *l < 1 << 62)?;
    let usage = read(usage_file).and_then(|u| u.parse().ok()).unwrap_or(0);
    Some(CgroupHugetlb { limit, usage })
}

/// The fix when pages of `size` are short by `short`.
fn reserve_fix(size: PageSize, need: &MemoryNeed, total: u64, short: u64) -> String {
    format!(
        "reserve more on the node (echo {} > /sys/kernel/mm/hugepages/hugepages-{}kB/nr_hugepages, \
         or hugepagesz={size} hugepages=N on the kernel command line, then restart the kubelet), \
         request {}: {}Mi in the container's resources (requests = limits), or lower NB_MBUF / --nb-mbuf",
        total + short,
        size.bytes() >> 10,
        size.k8s_resource(),
        need.bytes(size) >> 20
    )
}

/// Checks the hugepages under `root` against `need`.
pub fn check_hugepages(root: &Path, need: &MemoryNeed) -> Vec<Finding> {
    let mounts = hugetlbfs_mounts(root);
    let status = hugepage_status_at(root);
    let mut out = Vec::new();
    out.push(mounts_finding(&mounts, need));
    if need.backing == MemoryBacking::NoHuge {
        out.push(Finding::ok(
            "hugepages",
            format!(
                "not used (--no-huge): the pool takes {} KiB of ordinary pages; {}",
                need.pool_bytes >> 10,
                describe(&status)
            ),
        ));
        return out;
    }
    if status.is_empty() {
        out.push(Finding::fail(
            "hugepages",
            "this kernel offers no 2M or 1G hugepages (no /sys/kernel/mm/hugepages/hugepages-*)",
            "build the node's kernel with CONFIG_HUGETLBFS and reserve pages \
             (hugepagesz=2M hugepages=N on its command line)",
        ));
        return out;
    }
    let sizes = need.sizes(&mounts);
    let mut fits = Vec::new();
    let mut short = Vec::new();
    let mut capped = Vec::new();
    for size in &sizes {
        let pages = need.pages(*size);
        let cap = cgroup_hugetlb(root, *size);
        match status.iter().find(|s| s.size == *size) {
            Some(s) if s.free >= pages => match cap {
                Some(c) if c.pages_left(*size) < pages => capped.push((*s, pages, c)),
                _ => fits.push((*s, pages, cap)),
            },
            Some(s) => short.push((*s, pages)),
            None => short.push((
                HugepageStatus {
                    size: *size,
                    total: 0,
                    free: 0,
                },
                pages,
            )),
        }
    }
    let explain = |size: PageSize, pages: u64| {
        format!(
            "{pages} {size} pages (pool {} KiB + {} VF ring region(s) of a page)",
            need.pool_bytes.div_ceil(1024),
            need.vf_ports
        )
    };
    if let Some((s, pages, cap)) = fits.first() {
        let limit = cap.map_or(String::new(), |c| {
            format!(
                ", cgroup limit {} MiB ({} MiB used)",
                c.limit >> 20,
                c.usage >> 20
            )
        });
        out.push(Finding::ok(
            format!("hugepages-{}", s.size),
            format!(
                "needs {}; {} free of {}{limit}",
                explain(s.size, *pages),
                s.free,
                s.total
            ),
        ));
    } else if let Some((s, pages, c)) = capped.first() {
        out.push(Finding::fail(
            format!("hugepages-{}", s.size),
            format!(
                "needs {}; the node has {} free but the container's hugetlb cgroup allows \
                 {} MiB ({} MiB used): {} pages left",
                explain(s.size, *pages),
                s.free,
                c.limit >> 20,
                c.usage >> 20,
                c.pages_left(s.size)
            ),
            format!(
                "raise the container's resources.limits {} (and requests, equal) to at least {}Mi, \
                 or lower NB_MBUF / --nb-mbuf",
                s.size.k8s_resource(),
                need.bytes(s.size).saturating_add(c.usage) >> 20
            ),
        ));
    } else if let Some((s, pages)) = short.first() {
        let detail = short
            .iter()
            .map(|(s, p)| format!("{} needs {p}, {} free of {}", s.size, s.free, s.total))
            .collect::<Vec<_>>()
            .join("; ");
        out.push(Finding::fail(
            format!("hugepages-{}", s.size),
            format!(
                "not enough hugepages: {}; {detail}",
                explain(s.size, *pages)
            ),
            reserve_fix(s.size, need, s.total, pages.saturating_sub(s.free)),
        ));
    }
    out
}

fn describe(status: &[HugepageStatus]) -> String {
    if status.is_empty() {
        return "no hugepage sizes offered".to_string();
    }
    status
        .iter()
        .map(|s| format!("{} {} free of {}", s.size, s.free, s.total))
        .collect::<Vec<_>>()
        .join(", ")
}

fn mounts_finding(mounts: &[HugetlbfsMount], need: &MemoryNeed) -> Finding {
    let list = mounts
        .iter()
        .map(|m| {
            format!(
                "{} ({})",
                m.mount_point.display(),
                m.page
                    .map_or("unsupported size".to_string(), |p| p.to_string())
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    match &need.backing {
        MemoryBacking::Hugetlbfs(dir) if !mounts.iter().any(|m| m.mount_point == *dir) => {
            Finding::fail(
                "hugetlbfs",
                format!(
                    "--huge-dir {} is not a hugetlbfs mount (mounts: {})",
                    dir.display(),
                    if list.is_empty() { "none" } else { &list }
                ),
                format!(
                    "mount an emptyDir volume with medium: HugePages at {} (volumeMounts), \
                     or drop --huge-dir to use anonymous hugepages",
                    dir.display()
                ),
            )
        }
        MemoryBacking::Hugetlbfs(dir)
            if mounts
                .iter()
                .any(|m| m.mount_point == *dir && m.page.is_none()) =>
        {
            Finding::fail(
                "hugetlbfs",
                format!(
                    "{} has a page size fastpath does not use ({list})",
                    dir.display()
                ),
                "use an emptyDir with medium: HugePages-2Mi or HugePages-1Gi",
            )
        }
        _ if list.is_empty() => Finding::ok(
            "hugetlbfs",
            "no hugetlbfs mount (anonymous hugepages need none)",
        ),
        _ => Finding::ok("hugetlbfs", list),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::finding::Status;
    use crate::k8s::fixture::tree;

    const H2M: &str = "sys/kernel/mm/hugepages/hugepages-2048kB";

    fn pools(total: u64, free: u64) -> Vec<(String, String)> {
        vec![
            (format!("{H2M}/nr_hugepages"), format!("{total}\n")),
            (format!("{H2M}/free_hugepages"), format!("{free}\n")),
            (format!("{H2M}/resv_hugepages"), "0\n".to_string()),
        ]
    }

    fn root_with(total: u64, free: u64, extra: &[(&str, &str)]) -> tempfile::TempDir {
        let owned = pools(total, free);
        let mut files: Vec<(&str, &str)> = owned
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        files.extend_from_slice(extra);
        tree(&files)
    }

    fn need(backing: MemoryBacking, pool_mib: u64, vf_ports: usize) -> MemoryNeed {
        MemoryNeed {
            backing,
            pool_bytes: pool_mib << 20,
            vf_ports,
        }
    }

    #[test]
    fn mounts_and_sizes() {
        let r = tree(&[
            (
                "proc/mounts",
                "proc /proc proc rw 0 0\n\
                 nodev /hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n\
                 nodev /hugepages-1Gi hugetlbfs rw,relatime,pagesize=1024M 0 0\n\
                 nodev /dev/hugepages hugetlbfs rw,relatime 0 0\n\
                 nodev /odd hugetlbfs rw,pagesize=16M 0 0\n",
            ),
            (
                "proc/meminfo",
                "MemTotal: 1 kB\nHugepagesize:       2048 kB\n",
            ),
        ]);
        let m = hugetlbfs_mounts(r.path());
        assert_eq!(
            m.iter().map(|m| m.page).collect::<Vec<_>>(),
            vec![
                Some(PageSize::Size2M),
                Some(PageSize::Size1G),
                Some(PageSize::Size2M),
                None
            ]
        );
        assert_eq!(m[1].mount_point, PathBuf::from("/hugepages-1Gi"));
        assert_eq!(parse_size("2048K"), Some(2 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn enough_pages_is_ok() {
        let r = root_with(512, 100, &[]);
        let f = check_hugepages(r.path(), &need(MemoryBacking::default(), 64, 2));
        assert_eq!(f[1].status, Status::Ok, "{f:?}");
        assert_eq!(f[1].name, "hugepages-2M");
        assert!(
            f[1].found.starts_with("needs 34 2M pages"),
            "{}",
            f[1].found
        );
    }

    #[test]
    fn short_pages_fail_with_numbers_and_fix() {
        let r = root_with(64, 10, &[]);
        let f = check_hugepages(
            r.path(),
            &need(MemoryBacking::Hugepages(HugepageSize::Size2M), 64, 1),
        );
        let h = &f[1];
        assert_eq!(h.status, Status::Fail, "{f:?}");
        assert!(
            h.found.contains("2M needs 33, 10 free of 64"),
            "{}",
            h.found
        );
        let fix = h.fix.as_ref().unwrap();
        assert!(
            fix.contains("echo 87 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"),
            "{fix}"
        );
        assert!(fix.contains("hugepages-2Mi: 66Mi"), "{fix}");
        // 1G asked, but the kernel has only 2M pages.
        let f = check_hugepages(
            r.path(),
            &need(MemoryBacking::Hugepages(HugepageSize::Size1G), 64, 0),
        );
        assert_eq!(f[1].status, Status::Fail);
        assert!(
            f[1].found.contains("1G needs 1, 0 free of 0"),
            "{}",
            f[1].found
        );
    }

    #[test]
    fn huge_dir_must_be_a_mount() {
        let r = root_with(
            512,
            512,
            &[(
                "proc/mounts",
                "nodev /hugepages hugetlbfs rw,pagesize=2M 0 0\n",
            )],
        );
        let f = check_hugepages(
            r.path(),
            &need(MemoryBacking::Hugetlbfs(PathBuf::from("/mnt/huge")), 8, 0),
        );
        assert_eq!(f[0].status, Status::Fail, "{f:?}");
        assert!(f[0].fix.as_ref().unwrap().contains("medium: HugePages"));
        let f = check_hugepages(
            r.path(),
            &need(MemoryBacking::Hugetlbfs(PathBuf::from("/hugepages")), 8, 0),
        );
        assert!(f.iter().all(|f| f.status == Status::Ok), "{f:?}");
    }

    #[test]
    fn no_huge_and_no_support() {
        let empty = tree(&[]);
        let f = check_hugepages(empty.path(), &need(MemoryBacking::NoHuge, 8, 0));
        assert!(f.iter().all(|f| f.status == Status::Ok), "{f:?}");
        let f = check_hugepages(empty.path(), &need(MemoryBacking::default(), 8, 0));
        assert_eq!(f[1].status, Status::Fail, "{f:?}");
    }

    #[test]
    fn the_cgroup_limit_caps_the_free_pages() {
        let r = root_with(
            512,
            512,
            &[
                ("proc/self/cgroup", "0::/\n"),
                (
                    "proc/self/mountinfo",
                    "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
                ),
                ("sys/fs/cgroup/hugetlb.2MB.max", "33554432\n"),
                ("sys/fs/cgroup/hugetlb.2MB.current", "4194304\n"),
                ("sys/fs/cgroup/hugetlb.1GB.max", "max\n"),
            ],
        );
        assert_eq!(
            cgroup_hugetlb(r.path(), PageSize::Size2M),
            Some(CgroupHugetlb {
                limit: 32 << 20,
                usage: 4 << 20
            })
        );
        assert_eq!(cgroup_hugetlb(r.path(), PageSize::Size1G), None);
        // 16 MiB + 1 VF = 9 pages; 14 left under the limit: OK.
        let f = check_hugepages(r.path(), &need(MemoryBacking::default(), 16, 1));
        assert_eq!(f[1].status, Status::Ok, "{f:?}");
        assert!(
            f[1].found.ends_with("cgroup limit 32 MiB (4 MiB used)"),
            "{}",
            f[1].found
        );
        // 64 MiB: 32 pages, 14 left: FAIL naming the limit and the resource.
        let f = check_hugepages(
            r.path(),
            &need(MemoryBacking::Hugepages(HugepageSize::Size2M), 64, 0),
        );
        assert_eq!(f[1].status, Status::Fail, "{f:?}");
        assert!(
            f[1].found
                .contains("allows 32 MiB (4 MiB used): 14 pages left"),
            "{}",
            f[1].found
        );
        assert!(
            f[1].fix
                .as_ref()
                .unwrap()
                .contains("resources.limits hugepages-2Mi (and requests, equal) to at least 68Mi"),
            "{:?}",
            f[1].fix
        );
    }

    #[test]
    fn per_node_counts() {
        let r = tree(&[(
            "sys/devices/system/node/node1/hugepages/hugepages-2048kB/free_hugepages",
            "7\n",
        )]);
        assert_eq!(free_on_node(r.path(), 1, PageSize::Size2M), Some(7));
        assert_eq!(free_on_node(r.path(), 0, PageSize::Size2M), None);
    }
}
