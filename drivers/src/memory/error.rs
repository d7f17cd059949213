//! Why a DMA region could not be had, and what to do about it.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::hugepage_info::PageSize;

/// Why `DmaRegion::allocate` failed.
///
/// Every message ends with the fix, because the reader is an operator
/// looking at a pod log, not a developer.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// A region of 0 bytes was asked for.
    #[error("cannot allocate an empty DMA region: ask for at least 1 byte")]
    ZeroLength,

    /// The length overflows when rounded up to whole pages.
    #[error(
        "a DMA region of {len} bytes overflows the address space when rounded up \
         to whole {page_size} pages: ask for less memory"
    )]
    TooLarge {
        /// The length asked for.
        len: usize,
        /// The page size it was rounded to.
        page_size: PageSize,
    },

    /// The kernel has no hugepage pool of this size.
    #[error(
        "this kernel offers no {size} hugepages ({} is missing): boot with \
         `hugepagesz={size} hugepages=N`, choose another hugepage size, or put \
         the buffers of software-only ports on ordinary 4K pages",
        .size.sysfs_dir()
    )]
    HugepageSizeUnsupported {
        /// The size asked for.
        size: PageSize,
    },

    /// Fewer hugepages are free than the region needs (seen in the free
    /// counts before mmap, or as ENOMEM from mmap).
    #[error(
        "not enough free {size} hugepages: need {needed}, only {free} free of {total} \
         reserved. Fix: reserve more with `{}` (in Kubernetes: raise the pod's \
         {} request and limit), or put the buffers of software-only ports on \
         ordinary 4K pages",
        reserve_command(*.size, .total.saturating_add(.needed.saturating_sub(*.free))),
        k8s_resource(*.size)
    )]
    NotEnoughHugepages {
        /// The hugepage size.
        size: PageSize,
        /// Pages the region needs.
        needed: u64,
        /// Pages free for a new mapping.
        free: u64,
        /// Pages reserved in the pool.
        total: u64,
    },

    /// mmap succeeded but the pages cannot be faulted in (hugetlb cgroup
    /// limit, or an overcommitted pool): the first touch would have raised
    /// SIGBUS.
    #[error(
        "the kernel mapped {len} bytes of {size} hugepages but cannot back them with \
         memory ({source}); using them would have killed the process with SIGBUS. \
         Usually the container's hugetlb cgroup limit (hugetlb.{}.max, or \
         hugetlb.{}.limit_in_bytes on cgroup v1) is lower than the request, or \
         fewer {size} pages are free than the kernel promised. Fix: raise the pod's {} \
         limit, reserve more pages with `{}`, or put the buffers of software-only ports \
         on ordinary 4K pages",
        cgroup_size_name(*.size),
        cgroup_size_name(*.size),
        k8s_resource(*.size),
        reserve_command(*.size, "N")
    )]
    NotBacked {
        /// The hugepage size.
        size: PageSize,
        /// The length of the mapping.
        len: usize,
        /// What MADV_POPULATE_WRITE reported (EFAULT, ENOMEM, EHWPOISON).
        source: io::Error,
    },

    /// The caller's interrupt flag was set while the pages were being
    /// faulted in (a signal during start-up); the mapping is released.
    #[error("interrupted while faulting in {len} bytes")]
    Interrupted {
        /// The length of the mapping.
        len: usize,
    },

    /// The kernel lacks MADV_POPULATE_WRITE and mlock failed, so whether the
    /// hugepages are backed cannot be checked without risking SIGBUS.
    #[error(
        "cannot check that {len} bytes of {size} pages are backed by memory: the kernel \
         lacks MADV_POPULATE_WRITE (Linux >= 5.14) and mlock failed ({source}). \
         Fix: run on Linux >= 5.14, or allow locking memory (`ulimit -l unlimited` \
         or CAP_IPC_LOCK), and check that enough {size} hugepages are free"
    )]
    NotVerified {
        /// The page size.
        size: PageSize,
        /// The length of the mapping.
        len: usize,
        /// What mlock reported.
        source: io::Error,
    },

    /// The hugetlbfs path is on another filesystem.
    #[error(
        "{} is not a hugetlbfs mount (filesystem type {f_type:#x}): point to an existing \
         one (see `grep hugetlbfs /proc/mounts`, often /dev/hugepages), create one with \
         `mkdir -p /mnt/huge && mount -t hugetlbfs -o pagesize=2M none /mnt/huge`, or use \
         anonymous hugepages instead",
        .path.display()
    )]
    NotHugetlbfs {
        /// The path given.
        path: PathBuf,
        /// Its `statfs` filesystem type.
        f_type: u64,
    },

    /// The hugetlbfs mount uses a page size other than 2M or 1G.
    #[error(
        "hugetlbfs mount {} has {bytes}-byte pages; fastpath uses 2M or 1G pages: \
         mount with `-o pagesize=2M` or `-o pagesize=1G`",
        .path.display()
    )]
    UnsupportedHugetlbfsPageSize {
        /// The mount point.
        path: PathBuf,
        /// Its page size in bytes (`statfs` f_bsize).
        bytes: u64,
    },

    /// A system call on the hugetlbfs mount or its file failed.
    #[error(
        "hugetlbfs {op} on {} failed: {source}. Fix: check that the path exists, is a \
         hugetlbfs mount and is writable by this process",
        .path.display()
    )]
    Hugetlbfs {
        /// The mount point.
        path: PathBuf,
        /// The operation: "statfs", "create", "unlink" or "ftruncate".
        op: &'static str,
        /// What it reported.
        source: io::Error,
    },

    /// mmap (or, for 4K pages, faulting them in) failed for a reason other
    /// than a hugepage shortage.
    #[error(
        "mmap of {len} bytes in {size} pages failed: {source}. Fix: check free memory \
         and the address-space limit (`ulimit -v`)"
    )]
    Map {
        /// The page size.
        size: PageSize,
        /// The length of the mapping.
        len: usize,
        /// What the kernel reported.
        source: io::Error,
    },
}

/// The command that sets the number of reserved pages of `size` to `pages`.
/// /proc/sys/vm/nr_hugepages sets the default hugepage size, which is 2M on
/// x86_64; other sizes have their own sysfs file
/// (Documentation/admin-guide/mm/hugetlbpage.rst).
fn reserve_command(size: PageSize, pages: impl fmt::Display) -> String {
    match size {
        PageSize::Size2M => format!("echo {pages} > /proc/sys/vm/nr_hugepages"),
        _ => format!("echo {pages} > {}/nr_hugepages", size.sysfs_dir()),
    }
}

fn k8s_resource(size: PageSize) -> &'static str {
    size.k8s_resource()
}

/// How the hugetlb cgroup controller names a page size in its file names
/// (Documentation/admin-guide/cgroup-v2.rst, "HugeTLB").
fn cgroup_size_name(size: PageSize) -> &'static str {
    match size {
        PageSize::Size4K => "4KB",
        PageSize::Size2M => "2MB",
        PageSize::Size1G => "1GB",
    }
}
