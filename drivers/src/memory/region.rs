//! Hugepage-backed DMA regions: one mmap each (through memmap2), checked to
//! be really backed by memory before anyone touches it, unmapped on drop.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use memmap2::{Advice, MmapOptions, MmapRaw};

use super::dma_map::{DmaMapError, DmaMapper, IovaLayout};
use super::error::MemoryError;
use super::hugepage_info::{hugetlbfs_page_size, overcommit_headroom, status_of, PageSize};
use super::iova::Iova;

/// Bytes faulted in per MADV_POPULATE_WRITE call when the allocation can
/// be interrupted (rounded up to the page size): about 50 ms of the
/// kernel's work on 4K pages, so a stop waits that long at most.
const POPULATE_CHUNK: usize = 64 << 20;

/// Which hugepage size to use for anonymous hugepages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum HugepageSize {
    /// 1G pages for requests of 1 GiB or more (or when 2M pages are short)
    /// if enough 1G pages are free, else 2M.
    #[default]
    Auto,
    /// 2 MiB pages.
    Size2M,
    /// 1 GiB pages.
    Size1G,
}

/// Where the memory of a DMA region comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MemoryBacking {
    /// Anonymous hugepages (`MAP_HUGETLB` with `MAP_HUGE_2MB`/`MAP_HUGE_1GB`).
    Hugepages(HugepageSize),
    /// A file in this hugetlbfs mount (for example a Kubernetes
    /// `emptyDir: {medium: HugePages}` volume). The file is unlinked at once,
    /// so nothing is left behind if the process dies.
    Hugetlbfs(PathBuf),
    /// Ordinary 4K anonymous memory. Only for software-only ports
    /// (the operator asked for ordinary pages); never chosen unless asked for.
    NoHuge,
}

impl Default for MemoryBacking {
    fn default() -> Self {
        MemoryBacking::Hugepages(HugepageSize::Auto)
    }
}

/// What `describe` says about where the pages came from.
#[derive(Debug)]
enum Origin {
    Anonymous,
    Hugetlbfs(PathBuf),
    NoHuge,
}

/// Knobs that only tests turn: they let a test reach the error paths a
/// cgroup limit or a racing process would cause.
#[derive(Clone, Copy, Debug, Default)]
struct MapOptions {
    /// Map with MAP_NORESERVE, so mmap succeeds without pages behind it.
    noreserve: bool,
    /// Skip the free-count check, so mmap itself meets the shortage.
    skip_free_check: bool,
}

/// A zeroed, locked-in-RAM memory region a device can DMA into.
/// Dropping it unmaps it from the device's address space (if it was
/// mapped), then releases the memory.
#[derive(Debug)]
pub struct DmaRegion {
    /// The mapping. Raw, because a device writes into it behind Rust's
    /// back: nobody may hold a `&[u8]` of it. Unmapped when dropped, which
    /// is after `DmaRegion::drop` has taken it out of the device's address
    /// space.
    map: MmapRaw,
    /// `map`'s first byte.
    ptr: NonNull<u8>,
    len: usize,
    page_size: PageSize,
    origin: Origin,
    /// Set once by [`DmaRegion::map_dma`]; the only source of IOVAs.
    mapping: OnceLock<RegionMapping>,
}

/// The address space a region is mapped in, and where.
#[derive(Debug)]
struct RegionMapping {
    mapper: Arc<dyn DmaMapper>,
    layout: IovaLayout,
}

// SAFETY: DmaRegion owns its mapping exclusively (the MmapRaw, itself Send
// and Sync); `ptr` is only a copy of its address, never aliased by another
// Rust object, and the mapping may be unmapped from any thread.
unsafe impl Send for DmaRegion {}
// SAFETY: &DmaRegion gives out only the address and metadata, never a
// reference to the contents, so sharing it between threads cannot race.
unsafe impl Sync for DmaRegion {}

impl DmaRegion {
    /// Maps `len` bytes, rounded up to whole pages, zeroed, and checked to
    /// be backed by memory. Fails (never falls back to other pages) when the
    /// requested backing is not available.
    pub fn allocate(len: usize, backing: &MemoryBacking) -> Result<DmaRegion, MemoryError> {
        Self::allocate_with(len, backing, MapOptions::default())
    }

    /// [`allocate`](Self::allocate), faulting the pages in by chunks and
    /// giving up with [`MemoryError::Interrupted`] as soon as `interrupt`
    /// is set: a pool of many gigabytes takes seconds to fault in, and a
    /// signal must not wait for all of it.
    pub fn allocate_interruptible(
        len: usize,
        backing: &MemoryBacking,
        interrupt: &AtomicBool,
    ) -> Result<DmaRegion, MemoryError> {
        Self::allocate_checked(len, backing, MapOptions::default(), Some(interrupt))
    }

    /// The first byte of the region.
    pub fn as_ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// Size in bytes: the request rounded up to whole pages.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: empty regions cannot be allocated.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The size of the pages backing the region.
    pub fn page_size(&self) -> PageSize {
        self.page_size
    }

    /// Map the region in `mapper`'s address space (once). From then on
    /// [`iova_at`](Self::iova_at) answers, and the region is unmapped from
    /// it before its memory goes.
    pub fn map_dma(&self, mapper: &Arc<dyn DmaMapper>) -> Result<(), DmaMapError> {
        if self.mapping.get().is_some() {
            return Err(DmaMapError::AlreadyMapped {
                what: self.describe(),
            });
        }
        let layout = mapper.map(self)?;
        let m = RegionMapping {
            mapper: Arc::clone(mapper),
            layout,
        };
        if let Err(m) = self.mapping.set(m) {
            // Another thread mapped it meanwhile: undo ours.
            let _ = m.mapper.unmap(self, &m.layout);
            return Err(DmaMapError::AlreadyMapped {
                what: self.describe(),
            });
        }
        log::debug!(
            "mapped {} for DMA ({}) at {}",
            self.describe(),
            mapper.name(),
            self.iova().map_or("?".to_string(), |i| i.to_string())
        );
        Ok(())
    }

    /// True once mapped.
    pub fn is_mapped(&self) -> bool {
        self.mapping.get().is_some()
    }

    /// True if mapped in exactly this address space.
    pub fn is_mapped_by(&self, mapper: &Arc<dyn DmaMapper>) -> bool {
        self.mapping
            .get()
            .is_some_and(|m| super::dma_map::same_mapper(&m.mapper, mapper))
    }

    /// Where the region sits in its address space, once mapped.
    pub fn layout(&self) -> Option<&IovaLayout> {
        self.mapping.get().map(|m| &m.layout)
    }

    /// The IOVA of the first byte; `None` until the region is mapped.
    pub fn iova(&self) -> Option<Iova> {
        self.iova_at(0)
    }

    /// The IOVA of the byte at `offset`; `None` until the region is mapped
    /// or past its end.
    pub fn iova_at(&self, offset: usize) -> Option<Iova> {
        self.mapping.get()?.layout.iova_at(offset, self.len)
    }

    /// A one-line summary for logs, e.g. "8 MiB in 4 x 2M hugepages (anonymous)".
    pub fn describe(&self) -> String {
        let pages = self.len / self.page_size.bytes();
        let kind = match self.page_size {
            PageSize::Size4K => "pages",
            PageSize::Size2M | PageSize::Size1G => "hugepages",
        };
        let origin = match &self.origin {
            Origin::Anonymous => "anonymous".to_string(),
            Origin::Hugetlbfs(path) => format!("hugetlbfs {}", path.display()),
            Origin::NoHuge => "no hugepages".to_string(),
        };
        format!(
            "{} in {pages} x {} {kind} ({origin})",
            human_size(self.len),
            self.page_size
        )
    }

    fn allocate_with(
        len: usize,
        backing: &MemoryBacking,
        options: MapOptions,
    ) -> Result<DmaRegion, MemoryError> {
        Self::allocate_checked(len, backing, options, None)
    }

    fn allocate_checked(
        len: usize,
        backing: &MemoryBacking,
        options: MapOptions,
        interrupt: Option<&AtomicBool>,
    ) -> Result<DmaRegion, MemoryError> {
        if len == 0 {
            return Err(MemoryError::ZeroLength);
        }
        let (page_size, origin) = match backing {
            MemoryBacking::NoHuge => (PageSize::Size4K, Origin::NoHuge),
            MemoryBacking::Hugepages(size) => {
                (choose_hugepage_size(*size, len)?, Origin::Anonymous)
            }
            MemoryBacking::Hugetlbfs(path) => {
                (hugetlbfs_page_size(path)?, Origin::Hugetlbfs(path.clone()))
            }
        };
        let len = round_up(len, page_size)?;
        if page_size != PageSize::Size4K && !options.skip_free_check {
            // The kernel would refuse too, but only with a bare ENOMEM; this
            // check gives the operator the counts and the fix.
            check_free(page_size, len)?;
        }
        let map = match &origin {
            Origin::Hugetlbfs(path) => map_hugetlbfs(path, len, page_size)?,
            Origin::Anonymous | Origin::NoHuge => map_anonymous(len, page_size, options)?,
        };
        let ptr = NonNull::new(map.as_mut_ptr()).ok_or_else(|| MemoryError::Map {
            size: page_size,
            len,
            source: io::Error::other("mmap returned address 0"),
        })?;
        // From here the region owns the mapping: an early return unmaps it.
        let region = DmaRegion {
            map,
            ptr,
            len,
            page_size,
            origin,
            mapping: OnceLock::new(),
        };
        region.ensure_backed(interrupt)?;
        log::debug!("allocated {} at {:p}", region.describe(), region.ptr);
        Ok(region)
    }

    /// Faults every page in through a path that reports failure as an
    /// errno, so a hugetlb cgroup limit or an overcommitted pool shows up as
    /// an error here instead of a SIGBUS on first touch later. Then locks
    /// the region in RAM. With `interrupt`, the pages are faulted in by
    /// chunks, and a set flag ends it with [`MemoryError::Interrupted`].
    fn ensure_backed(&self, interrupt: Option<&AtomicBool>) -> Result<(), MemoryError> {
        // Not MmapOptions::populate (MAP_POPULATE): the kernel ignores a
        // failure to fault pages in there, and the first touch then raises
        // SIGBUS (see the test mmap_populate_does_not_report_missing_pages).
        let chunk = match interrupt {
            Some(_) => POPULATE_CHUNK.next_multiple_of(self.page_size.bytes()),
            None => self.len,
        };
        let mut populated = Ok(());
        let mut done = 0;
        while done < self.len && populated.is_ok() {
            // Relaxed: the flag carries no data (a signal handler sets it).
            if interrupt.is_some_and(|f| f.load(Ordering::Relaxed)) {
                return Err(MemoryError::Interrupted { len: self.len });
            }
            // `done` stays a multiple of the page size, as madvise needs.
            let n = chunk.min(self.len - done);
            populated = self.map.advise_range(Advice::PopulateWrite, done, n);
            done += n;
        }
        let Err(err) = populated else {
            self.lock_best_effort();
            return Ok(());
        };
        if err.raw_os_error() != Some(libc::EINVAL) {
            return Err(self.population_error(err));
        }
        // Kernel older than 5.14: mlock also faults every page in and
        // returns an error instead of SIGBUS (mm/gup.c __mm_populate), but
        // it needs RLIMIT_MEMLOCK or CAP_IPC_LOCK.
        log::debug!("MADV_POPULATE_WRITE not supported ({err}); checking backing with mlock");
        let Err(err) = self.map.lock() else {
            return Ok(());
        };
        if self.page_size == PageSize::Size4K {
            // Ordinary anonymous memory cannot SIGBUS on first touch (a
            // shortage is the OOM killer's business), so an unverified
            // region is still safe to use.
            log::warn!(
                "could not lock {} in RAM ({err}); pages may be swapped out. \
                 Raise `ulimit -l` to avoid it",
                self.describe()
            );
            return Ok(());
        }
        Err(MemoryError::NotVerified {
            size: self.page_size,
            len: self.len,
            source: err,
        })
    }

    fn population_error(&self, source: io::Error) -> MemoryError {
        match self.page_size {
            PageSize::Size4K => MemoryError::Map {
                size: self.page_size,
                len: self.len,
                source,
            },
            PageSize::Size2M | PageSize::Size1G => MemoryError::NotBacked {
                size: self.page_size,
                len: self.len,
                source,
            },
        }
    }

    /// Keeps 4K pages from being swapped out under a device. Hugepages are
    /// never swapped, so for them a failure only costs a debug line.
    fn lock_best_effort(&self) {
        let Err(err) = self.map.lock() else {
            return;
        };
        if self.page_size == PageSize::Size4K {
            log::warn!(
                "could not lock {} in RAM ({err}); pages may be swapped out. \
                 Raise `ulimit -l` to avoid it",
                self.describe()
            );
        } else {
            log::debug!(
                "mlock of {} failed ({err}); harmless, hugepages are not swapped",
                self.describe()
            );
        }
    }
}

impl Drop for DmaRegion {
    fn drop(&mut self) {
        // Out of the device's address space first: whoever owned the region
        // stopped the device's DMA into it before letting it go. The memory
        // itself goes after this, when `map` is dropped (munmap).
        if let Some(m) = self.mapping.take() {
            if let Err(e) = m.mapper.unmap(self, &m.layout) {
                log::error!("unmapping {} for DMA: {e}", self.describe());
            }
        }
    }
}

/// Resolves `Auto` and checks that the kernel offers the size.
fn choose_hugepage_size(size: HugepageSize, len: usize) -> Result<PageSize, MemoryError> {
    let size = match size {
        HugepageSize::Size2M => PageSize::Size2M,
        HugepageSize::Size1G => PageSize::Size1G,
        HugepageSize::Auto => {
            // 1G pages for regions of 1 GiB or more (fewer TLB entries, as
            // DPDK prefers), or when 2M pages are short; otherwise 2M pages,
            // so a small pool does not pin a whole gigabyte.
            let needed_1g = len.div_ceil(PageSize::Size1G.bytes()) as u64;
            let needed_2m = len.div_ceil(PageSize::Size2M.bytes()) as u64;
            let free = |size| status_of(size).map_or(0, |s| s.free);
            let big = len >= PageSize::Size1G.bytes();
            if free(PageSize::Size1G) >= needed_1g && (big || free(PageSize::Size2M) < needed_2m) {
                PageSize::Size1G
            } else {
                PageSize::Size2M
            }
        }
    };
    if status_of(size).is_none() {
        return Err(MemoryError::HugepageSizeUnsupported { size });
    }
    Ok(size)
}

fn round_up(len: usize, page_size: PageSize) -> Result<usize, MemoryError> {
    let page = page_size.bytes();
    len.checked_next_multiple_of(page)
        .ok_or(MemoryError::TooLarge { len, page_size })
}

/// Refuses before mmap when the pool plainly cannot hold the region.
fn check_free(size: PageSize, len: usize) -> Result<(), MemoryError> {
    let pool = status_of(size).ok_or(MemoryError::HugepageSizeUnsupported { size })?;
    let needed = (len / size.bytes()) as u64;
    let available = pool.free.saturating_add(overcommit_headroom(size));
    if needed > available {
        return Err(MemoryError::NotEnoughHugepages {
            size,
            needed,
            free: pool.free,
            total: pool.total,
        });
    }
    Ok(())
}

/// Turns a failed mmap into the typed error. For hugepages ENOMEM means the
/// pool (or a hugetlbfs mount's size limit) is short, whatever the
/// free-count check saw a moment earlier.
fn map_error(size: PageSize, len: usize, source: io::Error) -> MemoryError {
    if size != PageSize::Size4K && source.raw_os_error() == Some(libc::ENOMEM) {
        let (free, total) = status_of(size).map_or((0, 0), |pool| (pool.free, pool.total));
        return MemoryError::NotEnoughHugepages {
            size,
            needed: (len / size.bytes()) as u64,
            free,
            total,
        };
    }
    MemoryError::Map { size, len, source }
}

fn map_anonymous(len: usize, size: PageSize, options: MapOptions) -> Result<MmapRaw, MemoryError> {
    let mut map = MmapOptions::new();
    map.len(len);
    match size {
        PageSize::Size4K => {}
        // MAP_HUGETLB with the size in the flags (MAP_HUGE_2MB, MAP_HUGE_1GB):
        // memmap2 takes log2 of the page size.
        PageSize::Size2M | PageSize::Size1G => {
            map.huge(Some(size.bytes().trailing_zeros() as u8));
        }
    }
    if options.noreserve {
        map.no_reserve_swap();
    }
    let map = map.map_anon().map_err(|err| map_error(size, len, err))?;
    // memmap2's anonymous maps are private, so after a fork() the first
    // write would give the parent a copy-on-write copy of the page while
    // the device keeps the old one. MADV_DONTFORK keeps the region out of
    // any child: madvise(2) names exactly this DMA case.
    map.advise(Advice::DontFork)
        .map_err(|source| MemoryError::Map { size, len, source })?;
    Ok(MmapRaw::from(map))
}

/// Maps `len` bytes of a new, already unlinked file in the hugetlbfs mount `dir`.
fn map_hugetlbfs(dir: &Path, len: usize, size: PageSize) -> Result<MmapRaw, MemoryError> {
    // Unique per process and per call; create_new refuses to reuse a name.
    static NEXT_FILE: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "fastpath-dma-{}-{}",
        std::process::id(),
        NEXT_FILE.fetch_add(1, Ordering::Relaxed)
    );
    let path = dir.join(name);
    let io_error = |op: &'static str, source: io::Error| MemoryError::Hugetlbfs {
        path: dir.to_path_buf(),
        op,
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|err| io_error("create", err))?;
    // Unlink at once: the open file and then the mapping keep the pages, and
    // they return to the pool when the mapping goes, even after a crash.
    std::fs::remove_file(&path).map_err(|err| io_error("unlink", err))?;
    // On hugetlbfs ftruncate only sets the size; pages are reserved by mmap.
    file.set_len(len as u64)
        .map_err(|err| io_error("ftruncate", err))?;
    // A shared, read-write mapping of the whole file (MAP_SHARED: a fork()
    // shares the pages rather than copying them). The mapping holds its own
    // reference to the file, so closing the file afterwards is fine.
    MmapOptions::new()
        .len(len)
        .map_raw(&file)
        .map_err(|err| map_error(size, len, err))
}

/// "8 MiB", "4 KiB", "1536 bytes": the largest binary unit that divides exactly.
fn human_size(bytes: usize) -> String {
    const UNITS: [(usize, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{} {name}", bytes / unit);
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::sync::{Mutex, MutexGuard};

    /// Tests that take or count hugepages run one at a time, so one test
    /// draining the pool (the NORESERVE test) cannot fail another.
    static HUGEPAGE_TESTS: Mutex<()> = Mutex::new(());

    /// Why the tests that need the kernel to refuse 2M pages cannot run.
    const OVERCOMMIT_2M: &str = "2M hugepage overcommit is enabled \
        (echo 0 > /proc/sys/vm/nr_overcommit_hugepages)";

    fn hugepage_lock() -> MutexGuard<'static, ()> {
        // A test that panicked while holding the lock left nothing broken.
        HUGEPAGE_TESTS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Free 2M pages if at least `needed` are free. Otherwise skips the
    /// calling test (`skip_test!`: a failure under FASTPATH_REQUIRE_ALL=1,
    /// so CI cannot pass without testing).
    fn free_2m_pages_or_skip(needed: u64) -> Option<u64> {
        let free = status_of(PageSize::Size2M).map_or(0, |pool| pool.free);
        if free >= needed {
            return Some(free);
        }
        crate::skip_test!(
            "{needed} free 2M hugepages needed, {free} free: echo 64 > /proc/sys/vm/nr_hugepages"
        );
        None
    }

    /// Reads every byte to check it is zero, then writes and reads back a
    /// pattern, so a region that is not really usable fails loudly.
    fn check_zeroed_and_writable(region: &DmaRegion) {
        let ptr = region.as_ptr().as_ptr();
        // SAFETY: the region is a live, readable and writable mapping of
        // region.len() bytes, and this test is its only user.
        let bytes = unsafe { std::slice::from_raw_parts_mut(ptr, region.len()) };
        assert!(
            bytes.iter().all(|&b| b == 0),
            "{} not zeroed",
            region.describe()
        );
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = (i % 251) as u8;
        }
        assert!(bytes.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    }

    /// The value of `key` (e.g. "KernelPageSize:", "VmFlags:") in
    /// /proc/self/smaps for the mapping starting at `addr`.
    fn smaps_field(addr: usize, key: &str) -> Option<String> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let start = format!("{addr:x}-");
        let mut lines = smaps.lines().skip_while(|line| !line.starts_with(&start));
        lines.next()?;
        lines
            .find_map(|line| line.strip_prefix(key))
            .map(|value| value.trim().to_string())
    }

    /// The kernel page size of the mapping starting at `addr`, from
    /// /proc/self/smaps: proof the pages really are hugepages.
    fn kernel_page_size_kb(addr: usize) -> Option<u64> {
        smaps_field(addr, "KernelPageSize:")?
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    }

    #[test]
    fn default_backing_is_auto_hugepages() {
        assert_eq!(
            MemoryBacking::default(),
            MemoryBacking::Hugepages(HugepageSize::Auto)
        );
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<DmaRegion>();
    }

    #[test]
    fn no_huge_is_zeroed_writable_and_described() {
        let region = DmaRegion::allocate(10_000, &MemoryBacking::NoHuge).expect("4K allocation");
        assert_eq!(region.len(), 3 * 4096);
        assert!(!region.is_empty());
        assert_eq!(region.page_size(), PageSize::Size4K);
        assert_eq!(region.iova(), None, "no IOVA before a mapping");
        let mapper: Arc<dyn DmaMapper> = Arc::new(crate::memory::TestMapper::at(0x10_0000));
        region.map_dma(&mapper).expect("map");
        assert!(region.is_mapped_by(&mapper));
        assert_eq!(region.iova().map(Iova::get), Some(0x10_0000));
        assert_eq!(region.iova_at(100).map(Iova::get), Some(0x10_0000 + 100));
        assert_eq!(region.iova_at(region.len()), None);
        assert!(matches!(
            region.map_dma(&mapper),
            Err(DmaMapError::AlreadyMapped { .. })
        ));
        assert_eq!(region.describe(), "12 KiB in 3 x 4K pages (no hugepages)");
        check_zeroed_and_writable(&region);
    }

    #[test]
    fn lengths_round_up_to_whole_pages() {
        for (asked, got) in [(1, 4096), (4096, 4096), (4097, 8192), (65_536, 65_536)] {
            let region = DmaRegion::allocate(asked, &MemoryBacking::NoHuge).expect("4K allocation");
            assert_eq!(region.len(), got, "asked for {asked}");
        }
        assert!(matches!(
            DmaRegion::allocate(0, &MemoryBacking::NoHuge),
            Err(MemoryError::ZeroLength)
        ));
        assert!(matches!(
            DmaRegion::allocate(usize::MAX, &MemoryBacking::NoHuge),
            Err(MemoryError::TooLarge { .. })
        ));
        assert_eq!(round_up(1, PageSize::Size2M).ok(), Some(2 << 20));
        assert_eq!(
            round_up((2 << 20) + 1, PageSize::Size2M).ok(),
            Some(4 << 20)
        );
        assert_eq!(round_up(1, PageSize::Size1G).ok(), Some(1 << 30));
        assert!(round_up(usize::MAX - 5, PageSize::Size2M).is_err());
    }

    #[test]
    fn sizes_and_addresses_display() {
        assert_eq!(Iova::new(0x1000).to_string(), "0x1000");
        assert_eq!(human_size(8 << 20), "8 MiB");
        assert_eq!(human_size(2 << 30), "2 GiB");
        assert_eq!(human_size(12 << 10), "12 KiB");
        assert_eq!(human_size(1536), "1536 bytes");
        assert_eq!(human_size((1 << 30) + (2 << 20)), "1026 MiB");
    }

    #[test]
    fn too_few_2m_hugepages_is_an_error_with_the_fix() {
        let _lock = hugepage_lock();
        let Some(pool) = status_of(PageSize::Size2M) else {
            let err = DmaRegion::allocate(1, &MemoryBacking::Hugepages(HugepageSize::Size2M));
            assert!(matches!(
                err,
                Err(MemoryError::HugepageSizeUnsupported { .. })
            ));
            return;
        };
        if overcommit_headroom(PageSize::Size2M) > 0 {
            crate::skip_test!("{OVERCOMMIT_2M}: the kernel may grant any request");
            return;
        }
        let pages = pool.free + 1000;
        let backing = MemoryBacking::Hugepages(HugepageSize::Size2M);
        let err = DmaRegion::allocate(pages as usize * PageSize::Size2M.bytes(), &backing)
            .expect_err("more 2M pages than are free");
        let message = err.to_string();
        eprintln!("{message}");
        assert!(
            matches!(err, MemoryError::NotEnoughHugepages { size: PageSize::Size2M, needed, .. } if needed == pages),
            "{err:?}"
        );
        assert!(message.contains(&format!("need {pages}")), "{message}");
        assert!(
            message.contains(&format!("{} free", pool.free)),
            "{message}"
        );
        assert!(message.contains("2M hugepages"), "{message}");
        assert!(message.contains("> /proc/sys/vm/nr_hugepages"), "{message}");
        assert!(message.contains("ordinary 4K pages"), "{message}");
    }

    #[test]
    fn too_few_1g_hugepages_is_an_error_with_the_fix() {
        let _lock = hugepage_lock();
        let backing = MemoryBacking::Hugepages(HugepageSize::Size1G);
        let Some(pool) = status_of(PageSize::Size1G) else {
            let err = DmaRegion::allocate(1, &backing).expect_err("no 1G support");
            assert!(
                matches!(err, MemoryError::HugepageSizeUnsupported { .. }),
                "{err:?}"
            );
            assert!(err.to_string().contains("hugepagesz=1G"));
            return;
        };
        if overcommit_headroom(PageSize::Size1G) > 0 {
            crate::skip_test!(
                "1G hugepage overcommit is enabled (echo 0 > \
                 /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_overcommit_hugepages): \
                 the kernel may grant any request"
            );
            return;
        }
        let pages = pool.free + 1;
        let err = DmaRegion::allocate(pages as usize * PageSize::Size1G.bytes(), &backing)
            .expect_err("more 1G pages than are free");
        let message = err.to_string();
        eprintln!("{message}");
        assert!(
            matches!(err, MemoryError::NotEnoughHugepages { .. }),
            "{err:?}"
        );
        assert!(
            message.contains(&format!(
                "echo {} > /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages",
                pool.total + 1
            )),
            "{message}"
        );
        assert!(message.contains("hugepages-1Gi"), "{message}");
    }

    #[test]
    fn mmap_enomem_becomes_not_enough_hugepages() {
        let _lock = hugepage_lock();
        let Some(pool) = status_of(PageSize::Size2M) else {
            crate::skip_test!("this kernel has no 2M hugepages");
            return;
        };
        if overcommit_headroom(PageSize::Size2M) > 0 {
            crate::skip_test!("{OVERCOMMIT_2M}: mmap would not fail");
            return;
        }
        // Bypass the free-count check so the kernel's own refusal is mapped.
        let options = MapOptions {
            skip_free_check: true,
            ..MapOptions::default()
        };
        let len = (pool.free as usize + 16) * PageSize::Size2M.bytes();
        let backing = MemoryBacking::Hugepages(HugepageSize::Size2M);
        let err = DmaRegion::allocate_with(len, &backing, options).expect_err("mmap must fail");
        eprintln!("{err}");
        assert!(
            matches!(err, MemoryError::NotEnoughHugepages { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("/proc/sys/vm/nr_hugepages"));
    }

    #[test]
    fn unbacked_noreserve_mapping_is_not_backed_error() {
        let _lock = hugepage_lock();
        let Some(before) = status_of(PageSize::Size2M) else {
            crate::skip_test!("this kernel has no 2M hugepages");
            return;
        };
        if overcommit_headroom(PageSize::Size2M) > 0 {
            crate::skip_test!("{OVERCOMMIT_2M}: the pages would be backed");
            return;
        }
        // MAP_NORESERVE lets mmap promise more pages than the pool has, as a
        // hugetlb cgroup limit does; populating must then fail with an errno.
        let options = MapOptions {
            noreserve: true,
            skip_free_check: true,
        };
        let len = (before.free as usize + 8) * PageSize::Size2M.bytes();
        let backing = MemoryBacking::Hugepages(HugepageSize::Size2M);
        let err = DmaRegion::allocate_with(len, &backing, options).expect_err("must not be backed");
        let message = err.to_string();
        eprintln!("{message}");
        assert!(
            matches!(
                err,
                MemoryError::NotBacked {
                    size: PageSize::Size2M,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(message.contains("hugetlb cgroup limit"), "{message}");
        assert!(message.contains("hugetlb.2MB.max"), "{message}");
        assert!(message.contains("ordinary 4K pages"), "{message}");
        // The partly populated mapping was unmapped: its pages are back.
        let after = status_of(PageSize::Size2M).map_or(0, |pool| pool.free);
        assert_eq!(after, before.free, "pages leaked by a failed allocation");
    }

    #[test]
    fn anonymous_2m_hugepages_work() {
        let _lock = hugepage_lock();
        if free_2m_pages_or_skip(2).is_none() {
            return;
        }
        let backing = MemoryBacking::Hugepages(HugepageSize::Size2M);
        let region = DmaRegion::allocate(3 << 20, &backing).expect("2 free 2M pages");
        assert_eq!(region.len(), 4 << 20);
        assert_eq!(region.page_size(), PageSize::Size2M);
        assert_eq!(
            region.as_ptr().as_ptr() as usize % (2 << 20),
            0,
            "2M aligned"
        );
        assert_eq!(region.describe(), "4 MiB in 2 x 2M hugepages (anonymous)");
        assert_eq!(
            kernel_page_size_kb(region.as_ptr().as_ptr() as usize),
            Some(2048)
        );
        check_zeroed_and_writable(&region);
    }

    #[test]
    fn auto_takes_1g_only_for_big_requests_or_when_2m_is_short() {
        let _lock = hugepage_lock();
        let free_1g = status_of(PageSize::Size1G).map_or(0, |pool| pool.free);
        let free_2m = status_of(PageSize::Size2M).map_or(0, |pool| pool.free);
        // A 4 KiB request takes one 2M page when one is free.
        let expected = if free_2m == 0 && free_1g >= 1 {
            PageSize::Size1G
        } else {
            PageSize::Size2M
        };
        if expected == PageSize::Size2M && free_2m_pages_or_skip(1).is_none() {
            return;
        }
        let backing = MemoryBacking::Hugepages(HugepageSize::Auto);
        let region = DmaRegion::allocate(4096, &backing).expect("Auto allocation");
        assert_eq!(region.page_size(), expected, "{} 1G pages free", free_1g);
        check_zeroed_and_writable(&region);
    }

    #[test]
    fn hugetlbfs_rejects_other_filesystems() {
        let temp = tempfile::tempdir().expect("temporary directory");
        let dir = temp.path().to_path_buf();
        let err = DmaRegion::allocate(4096, &MemoryBacking::Hugetlbfs(dir.clone()))
            .expect_err("temp dir is not hugetlbfs");
        let message = err.to_string();
        eprintln!("{message}");
        assert!(matches!(err, MemoryError::NotHugetlbfs { .. }), "{err:?}");
        assert!(message.contains("mount -t hugetlbfs"), "{message}");

        let missing = dir.join("fastpath-no-such-dir");
        let err = DmaRegion::allocate(4096, &MemoryBacking::Hugetlbfs(missing))
            .expect_err("missing path");
        assert!(
            matches!(err, MemoryError::Hugetlbfs { op: "statfs", .. }),
            "{err:?}"
        );
    }

    /// A hugetlbfs mount on a fresh temporary directory: unmounted, and the
    /// directory removed, even if the test panics.
    struct TempMount {
        // Dropped after Drop::drop has unmounted it.
        dir: tempfile::TempDir,
        path: PathBuf,
        c_path: CString,
    }

    impl TempMount {
        fn new() -> Result<TempMount, String> {
            let dir = tempfile::Builder::new()
                .prefix("fastpath-hugetlbfs-")
                .tempdir()
                .map_err(|e| format!("temporary directory: {e}"))?;
            let path = dir.path().to_path_buf();
            let c_path =
                CString::new(path.to_string_lossy().as_bytes()).map_err(|e| e.to_string())?;
            let fstype = c"hugetlbfs";
            let data = c"pagesize=2M";
            // SAFETY: all pointers are valid NUL-terminated strings living
            // across the call.
            let rc = unsafe {
                libc::mount(
                    fstype.as_ptr(),
                    c_path.as_ptr(),
                    fstype.as_ptr(),
                    0,
                    data.as_ptr().cast(),
                )
            };
            if rc != 0 {
                let err = io::Error::last_os_error();
                return Err(format!("mount -t hugetlbfs {}: {err}", path.display()));
            }
            Ok(TempMount { dir, path, c_path })
        }
    }

    impl Drop for TempMount {
        fn drop(&mut self) {
            // SAFETY: c_path is a valid NUL-terminated string.
            let rc = unsafe { libc::umount2(self.c_path.as_ptr(), libc::MNT_DETACH) };
            if rc != 0 {
                eprintln!(
                    "umount {}: {}",
                    self.path.display(),
                    io::Error::last_os_error()
                );
            }
            // self.dir removes the (now empty) directory when dropped next.
            debug_assert_eq!(self.dir.path(), self.path);
        }
    }

    #[test]
    fn hugetlbfs_mount_works() {
        let _lock = hugepage_lock();
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            crate::skip_test!("mounting hugetlbfs needs root");
            return;
        }
        if free_2m_pages_or_skip(3).is_none() {
            return;
        }
        let mount = match TempMount::new() {
            Ok(mount) => mount,
            Err(err) => {
                crate::skip_test!("{err}");
                return;
            }
        };
        let backing = MemoryBacking::Hugetlbfs(mount.path.clone());
        let region = DmaRegion::allocate(5 << 20, &backing).expect("3 free 2M pages");
        assert_eq!(region.len(), 6 << 20);
        assert_eq!(region.page_size(), PageSize::Size2M);
        assert_eq!(
            region.as_ptr().as_ptr() as usize % (2 << 20),
            0,
            "2M aligned"
        );
        assert_eq!(
            region.describe(),
            format!(
                "6 MiB in 3 x 2M hugepages (hugetlbfs {})",
                mount.path.display()
            )
        );
        assert_eq!(
            kernel_page_size_kb(region.as_ptr().as_ptr() as usize),
            Some(2048)
        );
        check_zeroed_and_writable(&region);
        // The backing file was unlinked at once.
        let entries = std::fs::read_dir(&mount.path).map(|dir| dir.count()).ok();
        assert_eq!(entries, Some(0), "backing file left in the mount");
        drop(region);
        drop(mount);
    }

    /// Why DmaRegion does not use memmap2's `populate()` (MAP_POPULATE):
    /// when the pages cannot all be had (here MAP_NORESERVE with more pages
    /// than are free, as under a hugetlb cgroup limit), mmap with
    /// MAP_POPULATE still succeeds, and the first touch of a missing page
    /// would raise SIGBUS. MADV_POPULATE_WRITE on the same mapping reports
    /// the shortage as an errno, which is what ensure_backed relies on.
    #[test]
    fn mmap_populate_does_not_report_missing_pages() {
        let _lock = hugepage_lock();
        let Some(before) = status_of(PageSize::Size2M) else {
            crate::skip_test!("this kernel has no 2M hugepages");
            return;
        };
        if overcommit_headroom(PageSize::Size2M) > 0 {
            crate::skip_test!("{OVERCOMMIT_2M}: the pages would be backed");
            return;
        }
        let len = (before.free as usize + 8) * PageSize::Size2M.bytes();
        let map = MmapOptions::new()
            .len(len)
            .huge(Some(PageSize::Size2M.bytes().trailing_zeros() as u8))
            .no_reserve_swap()
            .populate()
            .map_anon()
            .expect("MAP_POPULATE does not fail for missing hugepages");
        let err = map
            .advise(Advice::PopulateWrite)
            .expect_err("more 2M pages than are free cannot be populated");
        eprintln!("MADV_POPULATE_WRITE: {err}");
        assert!(
            matches!(err.raw_os_error(), Some(libc::EFAULT | libc::ENOMEM)),
            "{err:?}"
        );
        drop(map);
        let after = status_of(PageSize::Size2M).map_or(0, |pool| pool.free);
        assert_eq!(after, before.free, "pages leaked by the test mapping");
    }

    /// memmap2 has no shared anonymous mapping (its `map_anon` is always
    /// MAP_PRIVATE), so an anonymous region is private and advised
    /// MADV_DONTFORK: a child of fork() gets no copy of it, so the parent's
    /// next write cannot move a page under the device (copy-on-write).
    /// smaps shows both: no `sh` (shared) and `dc` (don't copy on fork).
    #[test]
    fn anonymous_regions_are_private_and_kept_from_children() {
        let region = DmaRegion::allocate(3 * 4096, &MemoryBacking::NoHuge).expect("4K allocation");
        let flags = smaps_field(region.as_ptr().as_ptr() as usize, "VmFlags:")
            .expect("the region is in /proc/self/smaps");
        let flags: Vec<&str> = flags.split_whitespace().collect();
        assert!(flags.contains(&"dc"), "MADV_DONTFORK not set: {flags:?}");
        assert!(
            !flags.contains(&"sh"),
            "anonymous region is shared: {flags:?}"
        );
        assert!(flags.contains(&"lo"), "region not locked: {flags:?}");
    }
}
