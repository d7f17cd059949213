//! The model's IOMMU: the only way a device model reaches memory.
//!
//! [`Iommu`] is a [`DmaMapper`]: pools and descriptor arenas are mapped in
//! it exactly as in a vfio container. The IOVAs it hands out are never the
//! virtual addresses (they come from one process-wide range far from
//! where mmap puts memory), so a driver that programs a virtual address is
//! caught. Every device access is translated here, checked against the
//! mappings, and performed while the mapping is held, so memory can never
//! be released under a device access (a region is unmapped before it is
//! freed, and unmapping waits for accesses in progress).

use super::ownership::{Access, DmaRules, Ownership};
use super::violation::Violations;
use crate::memory::{DmaMapError, DmaMapper, DmaRegion, Iova, IovaLayout};
use crate::pool::watch::{self, BufferRef, BufferWatch};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};

/// First IOVA handed out: 64 GiB, far below where Linux puts mmaps and far
/// above anything a small test maps, so IOVAs and VAs never coincide.
const IOVA_START: u64 = 0x10_0000_0000;
/// Gap between two mappings, so an overrun lands outside any mapping.
const GUARD: u64 = 2 << 20;

/// IOVAs are unique in the process: two DMA spaces in parallel tests never
/// hand out the same one.
static NEXT_IOVA: AtomicU64 = AtomicU64::new(IOVA_START);

#[derive(Clone)]
struct Mapping {
    va: usize,
    len: usize,
    /// Memory this space does not own (a guest's RAM served over
    /// vfio-user), kept alive while it is mapped.
    external: Option<Arc<dyn Send + Sync>>,
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mapping({:#x}+{:#x}", self.va, self.len)?;
        f.write_str(if self.external.is_some() {
            ", external)"
        } else {
            ")"
        })
    }
}

/// Why an access could not be translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// No mapping covers the range.
    Outside,
    /// No mapping covers it, but it is the virtual address of a mapped
    /// region: the driver programmed a VA.
    VirtualAddress,
}

/// A device model's DMA address space.
#[derive(Debug)]
pub struct Iommu {
    table: RwLock<BTreeMap<u64, Mapping>>,
    owners: Mutex<Ownership>,
    violations: Violations,
    devices: AtomicU32,
}

impl Iommu {
    /// An empty address space, watching every pool's buffer hand-offs.
    pub fn new() -> Arc<Iommu> {
        let iommu = Arc::new(Iommu {
            table: RwLock::new(BTreeMap::new()),
            owners: Mutex::new(Ownership::default()),
            violations: Violations::default(),
            devices: AtomicU32::new(0),
        });
        let weak: Weak<dyn BufferWatch> = Arc::downgrade(&iommu) as Weak<dyn BufferWatch>;
        watch::register(weak);
        iommu
    }

    /// This space as the drivers take it.
    pub fn mapper(self: &Arc<Self>) -> Arc<dyn DmaMapper> {
        Arc::clone(self) as Arc<dyn DmaMapper>
    }

    /// The violations seen in this space (all its devices).
    pub fn violations(&self) -> &Violations {
        &self.violations
    }

    /// A new device number in this space.
    pub fn attach(&self) -> u32 {
        // Relaxed: a counter handing out distinct numbers.
        self.devices.fetch_add(1, Ordering::Relaxed)
    }

    /// The ownership table (engines take and release through it).
    pub fn owners(&self) -> MutexGuard<'_, Ownership> {
        self.owners.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Regions mapped now.
    pub fn mapped(&self) -> usize {
        self.table.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Map memory the space does not allocate at a fixed `iova`: a guest's
    /// RAM section as QEMU passes it with DMA_MAP (IOVA = guest physical
    /// address). `owner` keeps the memory alive while it is mapped; a
    /// mapping already at `iova` is replaced (QEMU re-maps a section when
    /// the guest's memory layout changes). `va..va+len` must stay valid
    /// and writable while `owner` lives.
    pub fn map_external(&self, iova: u64, va: usize, len: usize, owner: Arc<dyn Send + Sync>) {
        let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
        table.insert(
            iova,
            Mapping {
                va,
                len,
                external: Some(owner),
            },
        );
    }

    /// Unmap the external mappings inside `iova..iova+len` (DMA_UNMAP);
    /// ownership is checked as for any unmap. Returns how many went.
    pub fn unmap_external(&self, iova: u64, len: u64) -> usize {
        let end = iova.saturating_add(len);
        let gone: Vec<(u64, u64)> = {
            let table = self.table.read().unwrap_or_else(|p| p.into_inner());
            table
                .range(iova..end)
                .filter(|(b, m)| m.external.is_some() && **b + m.len as u64 <= end)
                .map(|(b, m)| (*b, m.len as u64))
                .collect()
        };
        for &(base, len) in &gone {
            self.owners().unmap(base, len, &self.violations);
        }
        // The write lock waits for device accesses in progress.
        let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
        for (base, _) in &gone {
            table.remove(base);
        }
        gone.len()
    }

    /// Run `f` on the host address of `iova..iova + len` while the mapping
    /// is held.
    fn with<T>(&self, iova: u64, len: usize, f: impl FnOnce(*mut u8) -> T) -> Result<T, Miss> {
        let table = self.table.read().unwrap_or_else(|p| p.into_inner());
        let hit = table
            .range(..=iova)
            .next_back()
            .filter(|(base, m)| iova - **base + len as u64 <= m.len as u64);
        match hit {
            Some((base, m)) => Ok(f((m.va + (iova - base) as usize) as *mut u8)),
            None => {
                let is_va = table.values().any(|m| {
                    let va = iova as usize;
                    va >= m.va && va < m.va + m.len
                });
                Err(if is_va {
                    Miss::VirtualAddress
                } else {
                    Miss::Outside
                })
            }
        }
    }

    /// Does a mapping cover `iova..iova + len`?
    pub fn check(&self, iova: u64, len: usize) -> Result<(), Miss> {
        self.with(iova, len, |_| ())
    }

    /// Record the violation for a failed translation.
    pub fn report_miss(&self, miss: Miss, rules: &DmaRules, what: &str, iova: u64, len: usize) {
        match miss {
            Miss::Outside => self.violations.record(
                rules.outside_mapping,
                format!("{what}: {iova:#x}+{len} is outside any mapping"),
            ),
            Miss::VirtualAddress => self.violations.record(
                rules.va_as_iova,
                format!("{what}: {iova:#x} is a virtual address, not an IOVA from the mapping"),
            ),
        }
    }

    /// Copy `iova..iova + buf.len()` into `buf` (device read, or a rule
    /// checker looking at memory the driver handed over).
    pub fn read(&self, iova: u64, buf: &mut [u8]) -> Result<(), Miss> {
        self.with(iova, buf.len(), |p| {
            for (i, b) in buf.iter_mut().enumerate() {
                // SAFETY: `with` checked that p..p + buf.len() lies inside a
                // mapped region, and holds the table lock, so the region
                // cannot be unmapped (and freed) during the copy. Volatile:
                // the driver accesses this memory concurrently, as it does
                // a real device's.
                *b = unsafe { p.add(i).read_volatile() };
            }
        })
    }

    /// Copy `data` to `iova..` (device write).
    pub fn write(&self, iova: u64, data: &[u8]) -> Result<(), Miss> {
        self.with(iova, data.len(), |p| {
            for (i, b) in data.iter().enumerate() {
                // SAFETY: as in `read`; the caller checked that the device
                // owns this memory, so no Rust reference to it is live in
                // the driver (its buffers are behind raw pointers).
                unsafe { p.add(i).write_volatile(*b) };
            }
        })
    }

    /// Read one little-endian dword at a 4-byte aligned `iova`.
    pub fn read_u32(&self, iova: u64) -> Result<u32, Miss> {
        debug_assert!(iova.is_multiple_of(4));
        self.with(iova, 4, |p| {
            // SAFETY: as in `read`; `p` is 4-byte aligned because mappings
            // are page aligned in both spaces and `iova` is.
            u32::from_le(unsafe { p.cast::<u32>().read_volatile() })
        })
    }

    /// Write one little-endian dword at a 4-byte aligned `iova`.
    pub fn write_u32(&self, iova: u64, v: u32) -> Result<(), Miss> {
        debug_assert!(iova.is_multiple_of(4));
        self.with(iova, 4, |p| {
            // SAFETY: as in `write`, aligned as in `read_u32`.
            unsafe { p.cast::<u32>().write_volatile(v.to_le()) }
        })
    }

    /// Write one little-endian quadword at an 8-byte aligned `iova`, in
    /// one store: a descriptor's status quadword (DD, DTYPE DONE) is seen
    /// whole by a driver reading it as one u64, as a device's descriptor
    /// write-back is, never DD before the length beside it.
    pub fn write_u64(&self, iova: u64, v: u64) -> Result<(), Miss> {
        debug_assert!(iova.is_multiple_of(8));
        self.with(iova, 8, |p| {
            // SAFETY: as in `write`; `p` is 8-byte aligned because mappings
            // are page aligned in both spaces and `iova` is.
            unsafe { p.cast::<u64>().write_volatile(v.to_le()) }
        })
    }

    /// Check an access by `queue` for ownership, then translate; every
    /// failure is recorded. True if the access may go ahead.
    pub fn admit(&self, a: Access, rules: &DmaRules, what: &str) -> bool {
        if let Err(m) = self.check(a.iova, a.len) {
            self.report_miss(m, rules, what, a.iova, a.len);
            return false;
        }
        self.owners().check_access(a, rules, &self.violations)
    }
}

impl DmaMapper for Iommu {
    fn map(&self, region: &DmaRegion) -> Result<IovaLayout, DmaMapError> {
        let len = region.len() as u64;
        let align = region.page_size().bytes() as u64;
        // Relaxed: the counter only hands out disjoint ranges.
        let mut cur = NEXT_IOVA.load(Ordering::Relaxed);
        let base = loop {
            let start = cur.next_multiple_of(align);
            match NEXT_IOVA.compare_exchange_weak(
                cur,
                start + len + GUARD,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break start,
                Err(now) => cur = now,
            }
        };
        let va = region.as_ptr().as_ptr() as usize;
        let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
        if table.values().any(|m| m.va == va) {
            return Err(DmaMapError::Model(format!(
                "{} is already mapped",
                region.describe()
            )));
        }
        table.insert(
            base,
            Mapping {
                va,
                len: region.len(),
                external: None,
            },
        );
        Ok(IovaLayout::Contiguous {
            base: Iova::new(base),
        })
    }

    fn unmap(&self, region: &DmaRegion, layout: &IovaLayout) -> Result<(), DmaMapError> {
        let IovaLayout::Contiguous { base } = layout else {
            return Err(DmaMapError::Model("not a model layout".into()));
        };
        let base = base.get();
        self.owners()
            .unmap(base, region.len() as u64, &self.violations);
        // The write lock waits for device accesses in progress.
        let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
        match table.remove(&base) {
            Some(_) => Ok(()),
            None => Err(DmaMapError::Model(format!("{base:#x} is not mapped"))),
        }
    }

    fn name(&self) -> &'static str {
        "model"
    }
}

impl BufferWatch for Iommu {
    fn handoff(&self, buf: BufferRef, to_pool: bool) {
        // Only buffers mapped in this space, at this virtual address (the
        // same IOVA never belongs to two spaces, but check anyway).
        let mine = self
            .with(buf.iova, buf.len, |p| p as usize == buf.va)
            .unwrap_or(false);
        if mine {
            self.owners()
                .pool_handoff(buf.iova, buf.len as u64, to_pool, &self.violations);
        }
    }
}
