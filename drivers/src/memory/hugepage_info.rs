//! What the kernel says about hugepages: sizes, reserved and free counts
//! (sysfs), and the page size of a hugetlbfs mount (statfs).

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::error::MemoryError;

/// Where the kernel publishes one directory per supported hugepage size,
/// `hugepages-<size>kB`. Documentation/admin-guide/mm/hugetlbpage.rst.
const SYSFS_HUGEPAGES: &str = "/sys/kernel/mm/hugepages";

/// The size of the pages backing a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageSize {
    /// Ordinary pages (only with `MemoryBacking::NoHuge`).
    Size4K,
    /// 2 MiB hugepages.
    Size2M,
    /// 1 GiB hugepages.
    Size1G,
}

impl PageSize {
    /// The page size in bytes.
    pub fn bytes(self) -> usize {
        match self {
            PageSize::Size4K => 4 << 10,
            PageSize::Size2M => 2 << 20,
            PageSize::Size1G => 1 << 30,
        }
    }

    /// The page size for a byte count, if it is one we support.
    pub(crate) fn from_bytes(bytes: u64) -> Option<PageSize> {
        [PageSize::Size4K, PageSize::Size2M, PageSize::Size1G]
            .into_iter()
            .find(|size| size.bytes() as u64 == bytes)
    }

    /// The Kubernetes resource that grants pages of this size to a
    /// container (https://kubernetes.io/docs/tasks/manage-hugepages/scheduling-hugepages).
    pub fn k8s_resource(self) -> &'static str {
        match self {
            PageSize::Size4K => "memory",
            PageSize::Size2M => "hugepages-2Mi",
            PageSize::Size1G => "hugepages-1Gi",
        }
    }

    /// The sysfs directory holding this size's counters.
    pub(crate) fn sysfs_dir(self) -> String {
        format!("{SYSFS_HUGEPAGES}/hugepages-{}kB", self.bytes() >> 10)
    }

    /// [`sysfs_dir`](Self::sysfs_dir) under `root`.
    fn sysfs_dir_at(self, root: &Path) -> PathBuf {
        root.join(self.sysfs_dir().trim_start_matches('/'))
    }
}

impl fmt::Display for PageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PageSize::Size4K => "4K",
            PageSize::Size2M => "2M",
            PageSize::Size1G => "1G",
        })
    }
}

/// The hugepage pool of one page size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HugepageStatus {
    /// The page size of this pool.
    pub size: PageSize,
    /// Pages reserved in the pool (`nr_hugepages`).
    pub total: u64,
    /// Pages a new mapping can still get: `free_hugepages` minus
    /// `resv_hugepages`, because pages other processes have mapped but not
    /// yet touched are counted as free but are already promised to them.
    pub free: u64,
}

/// The hugepage pools of every size this kernel supports that fastpath can
/// use (2M and 1G), smallest first. Sizes whose counters cannot be read are
/// left out; an empty list means no hugepage support at all.
pub fn hugepage_status() -> Vec<HugepageStatus> {
    hugepage_status_at(Path::new("/"))
}

/// [`hugepage_status`] with sysfs read under `root` instead of `/` (a
/// test tree, or `fastpath check --root`).
pub fn hugepage_status_at(root: &Path) -> Vec<HugepageStatus> {
    [PageSize::Size2M, PageSize::Size1G]
        .into_iter()
        .filter_map(|size| status_at(root, size))
        .collect()
}

/// The pool of one size, or None if the kernel does not offer that size.
pub(crate) fn status_of(size: PageSize) -> Option<HugepageStatus> {
    status_at(Path::new("/"), size)
}

fn status_at(root: &Path, size: PageSize) -> Option<HugepageStatus> {
    let dir = size.sysfs_dir_at(root);
    let total = read_counter(&dir, "nr_hugepages")?;
    let free = read_counter(&dir, "free_hugepages")?;
    // Older kernels may lack resv_hugepages in sysfs; then nothing is known
    // to be promised elsewhere.
    let reserved = read_counter(&dir, "resv_hugepages").unwrap_or(0);
    Some(HugepageStatus {
        size,
        total,
        free: free.saturating_sub(reserved),
    })
}

/// How many more pages the kernel may create on demand beyond the pool
/// (`nr_overcommit_hugepages - surplus_hugepages`). When this is non-zero an
/// mmap can succeed although `free` is too small, so the free-count check
/// must not refuse it.
pub(crate) fn overcommit_headroom(size: PageSize) -> u64 {
    let dir = size.sysfs_dir_at(Path::new("/"));
    let allowed = read_counter(&dir, "nr_overcommit_hugepages").unwrap_or(0);
    let surplus = read_counter(&dir, "surplus_hugepages").unwrap_or(0);
    allowed.saturating_sub(surplus)
}

fn read_counter(dir: &Path, name: &str) -> Option<u64> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().ok(),
        Err(err) => {
            log::debug!("cannot read {}: {err}", path.display());
            None
        }
    }
}

/// Checks that `path` is a hugetlbfs mount and returns its page size.
pub(crate) fn hugetlbfs_page_size(path: &Path) -> Result<PageSize, MemoryError> {
    let io_error = |op: &'static str, source: io::Error| MemoryError::Hugetlbfs {
        path: path.to_path_buf(),
        op,
        source,
    };
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io_error(
            "statfs",
            io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"),
        )
    })?;
    // SAFETY: statfs is plain old data; an all-zero value is valid and the
    // kernel overwrites it.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a valid NUL-terminated string and stat is a valid,
    // writable statfs that outlives the call.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), &mut stat) };
    if rc != 0 {
        return Err(io_error("statfs", io::Error::last_os_error()));
    }
    // f_type is a signed word whose width depends on the target (and libc
    // gives HUGETLBFS_MAGIC that word's type); the magic number is 32 bits,
    // so compare the low 32 bits.
    let f_type = stat.f_type as u32;
    if f_type != libc::HUGETLBFS_MAGIC as u32 {
        return Err(MemoryError::NotHugetlbfs {
            path: path.to_path_buf(),
            f_type: u64::from(f_type),
        });
    }
    // On hugetlbfs, f_bsize is the mount's hugepage size
    // (fs/hugetlbfs/inode.c, hugetlbfs_statfs: `buf->f_bsize = huge_page_size(h)`).
    let bytes = stat.f_bsize as u64;
    match PageSize::from_bytes(bytes) {
        Some(size) if size != PageSize::Size4K => Ok(size),
        _ => Err(MemoryError::UnsupportedHugetlbfsPageSize {
            path: path.to_path_buf(),
            bytes,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_bytes_and_names() {
        assert_eq!(PageSize::Size4K.bytes(), 4096);
        assert_eq!(PageSize::Size2M.bytes(), 2 * 1024 * 1024);
        assert_eq!(PageSize::Size1G.bytes(), 1024 * 1024 * 1024);
        assert_eq!(PageSize::Size2M.to_string(), "2M");
        assert_eq!(PageSize::Size1G.to_string(), "1G");
        assert_eq!(PageSize::Size4K.to_string(), "4K");
        assert_eq!(
            PageSize::Size2M.sysfs_dir(),
            "/sys/kernel/mm/hugepages/hugepages-2048kB"
        );
        assert_eq!(
            PageSize::Size1G.sysfs_dir(),
            "/sys/kernel/mm/hugepages/hugepages-1048576kB"
        );
        assert_eq!(PageSize::from_bytes(1 << 30), Some(PageSize::Size1G));
        assert_eq!(PageSize::from_bytes(16 << 20), None);
    }

    #[test]
    fn status_matches_sysfs() {
        let status = hugepage_status();
        eprintln!("hugepage status: {status:?}");
        for pool in &status {
            assert!(pool.free <= pool.total, "{pool:?}");
        }
        // x86_64 always offers 2M pages when hugetlb is built in.
        if Path::new(&PageSize::Size2M.sysfs_dir()).exists() {
            assert!(status.iter().any(|s| s.size == PageSize::Size2M));
        }
    }
}
