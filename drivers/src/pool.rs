//! Packet buffer pools with per-core caches.
//!
//! A [`Pool`] is one DMA region cut into equal elements (header, headroom,
//! data room), with a lock-free multi-producer/multi-consumer [`Ring`] holding
//! the free ones. Workers never touch that ring per packet: each owns a
//! [`PoolCache`], a plain stack of free buffers that it refills from and
//! spills to the ring in bulk, like DPDK's per-lcore mempool cache
//! (lib/mempool/rte_mempool.h). Nothing here locks.
//!
//! Every buffer records its pool as a [`PoolId`], an index into a process-wide
//! registry, so any buffer can be returned to the right pool wherever it ends
//! up (a foreign buffer freed into a cache, an `Mbuf` dropped on an error
//! path) without reference counting per packet.
//!
//! Lifetime: a pool's memory is released only when the last handle is gone
//! *and* every buffer is back. If handles are dropped while buffers are still
//! out, the pool stays registered and its memory stays mapped (and a warning
//! says so), so an outstanding `Mbuf` can never point at freed memory.

use crate::mbuf::{
    Mbuf, MbufHeader, PoolId, PortId, RxQuad, DEFAULT_DATA_ROOM, DEFAULT_HEADROOM, HEADER_SIZE,
};
use crate::memory::{
    DmaMapError, DmaMapper, DmaRegion, Iova, MemoryBacking, MemoryError, PageSize,
};
use crate::ring::{Ring, RingError};
use arrayvec::ArrayVec;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Arc;

pub mod raw_buf;
pub use raw_buf::RawBuf;

/// Most pools a process can have at once.
pub const MAX_POOLS: usize = 256;
/// Largest per-core cache (DPDK's RTE_MEMPOOL_CACHE_MAX_SIZE).
pub const MAX_CACHE_SIZE: usize = 512;
/// Default per-core cache size (what DPDK's l2fwd uses).
pub const DEFAULT_CACHE_SIZE: usize = 256;
/// Room in a cache's stack: a full cache (1.5 x size before it spills) plus
/// the largest burst freed at once.
const CACHE_CAPACITY: usize = MAX_CACHE_SIZE * 3 / 2 + crate::burst::MAX_BURST;

/// How to build a pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Name shown in statistics and errors.
    pub name: String,
    /// Number of buffers.
    pub count: u32,
    /// Bytes of packet data each buffer holds.
    pub data_room: u16,
    /// Bytes reserved in front of the data for prepending headers.
    pub headroom: u16,
    /// Buffers each per-core cache keeps (0 disables caching).
    pub cache_size: usize,
    /// Where the memory comes from.
    pub backing: MemoryBacking,
    /// The device address space to map the pool in before its buffers are
    /// cut (their headers carry the IOVA). `None` for pools that only
    /// software ports use: their buffers have no IOVA, and a driver
    /// refuses such a pool.
    pub dma: Option<Arc<dyn DmaMapper>>,
}

impl PoolConfig {
    /// A pool of `count` buffers with DPDK's defaults: 2048 bytes of data
    /// room, 128 of headroom, per-core caches of 256, on hugepages.
    pub fn new(name: impl Into<String>, count: u32) -> Self {
        PoolConfig {
            name: name.into(),
            count,
            data_room: DEFAULT_DATA_ROOM,
            headroom: DEFAULT_HEADROOM,
            cache_size: DEFAULT_CACHE_SIZE,
            backing: MemoryBacking::default(),
            dma: None,
        }
    }

    /// Same, with another memory backing.
    pub fn with_backing(mut self, backing: MemoryBacking) -> Self {
        self.backing = backing;
        self
    }

    /// Bytes one element takes: header, headroom and data room, rounded up
    /// to a cache line so every header starts on one.
    pub fn element_size(&self) -> usize {
        (HEADER_SIZE + self.headroom as usize + self.data_room as usize).next_multiple_of(64)
    }

    /// Bytes of memory the pool asks for, before the region rounds them up
    /// to its page size: with hugepages no element straddles a 2 MiB
    /// boundary, so a page's tail can go unused (see `Layout`). What
    /// `fastpath check` compares with the free hugepages and the memlock
    /// limit.
    pub fn region_bytes(&self) -> usize {
        Layout::for_pages(
            self.element_size(),
            self.count as usize,
            page_size_of(&self.backing),
        )
        .bytes
    }
}

/// Why a pool could not be created.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// A configuration value is out of range.
    #[error("pool {name}: {why}")]
    BadConfig {
        /// Pool name.
        name: String,
        /// What is wrong and what is allowed.
        why: String,
    },
    /// The memory could not be had.
    #[error("pool {name}: {source}")]
    Memory {
        /// Pool name.
        name: String,
        /// The memory error, which says how to fix it.
        #[source]
        source: MemoryError,
    },
    /// All registry slots are taken.
    #[error("pool {name}: already {MAX_POOLS} pools in this process")]
    TooManyPools {
        /// Pool name.
        name: String,
    },
    /// The memory could not be mapped for the devices.
    #[error("pool {name}: cannot map its memory for DMA: {source}")]
    DmaMap {
        /// Pool name.
        name: String,
        /// Cause.
        #[source]
        source: DmaMapError,
    },
    /// The memory was mapped where a buffer address does not fit in the
    /// 48 bits a ring port's slot keeps (only with 5-level paging and a
    /// mapping asked for above 2^48, which this crate never asks).
    #[error(
        "pool {name}: its memory was mapped at {start:#x}..{end:#x}, above the 2^48 bytes \
         of address a ring port's slot can carry"
    )]
    AboveAddressLimit {
        /// Pool name.
        name: String,
        /// First address.
        start: usize,
        /// One past the last.
        end: usize,
    },
    /// The free ring could not be built.
    #[error("pool {name}: {source}")]
    Ring {
        /// Pool name.
        name: String,
        /// Cause.
        #[source]
        source: RingError,
    },
}

impl PoolError {
    /// True when the pool was given up because its interrupt flag was set.
    pub fn is_interrupted(&self) -> bool {
        matches!(
            self,
            PoolError::Memory {
                source: MemoryError::Interrupted { .. },
                ..
            }
        )
    }
}

struct PoolShared {
    id: PoolId,
    name: String,
    count: u32,
    element_size: usize,
    data_room: u16,
    headroom: u16,
    cache_size: usize,
    /// Live `Pool` handles (including those inside caches).
    handles: AtomicUsize,
    free: Ring<Mbuf>,
    region: DmaRegion,
}

impl Drop for PoolShared {
    fn drop(&mut self) {
        // The buffers in the ring are parts of `region`, not separate
        // allocations: forget them instead of letting the ring "return" them
        // to a pool that is going away.
        while let Some(m) = self.free.pop() {
            let _ = m.into_header();
        }
    }
}

/// Marks a registry slot taken while its pool is being built.
const RESERVED: *mut PoolShared = std::ptr::dangling_mut();

/// The pool registry: slot `i` holds the pool whose id is `i`, as a pointer
/// obtained from `Arc::into_raw` (the registry owns that strong count).
static REGISTRY: [AtomicPtr<PoolShared>; MAX_POOLS] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_POOLS];

/// A handle to a pool. Cheap to clone; share it with every core.
pub struct Pool {
    shared: Arc<PoolShared>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("id", &self.shared.id)
            .field("name", &self.shared.name)
            .field("count", &self.shared.count)
            .field("available", &self.available())
            .finish()
    }
}

impl Pool {
    /// Allocate the memory, cut it into buffers and put them all in the
    /// free ring.
    pub fn new(config: &PoolConfig) -> Result<Pool, PoolError> {
        Self::build(config, None)
    }

    /// [`new`](Self::new), giving up while the memory is faulted in as soon
    /// as `interrupt` is set ([`MemoryError::Interrupted`] inside
    /// [`PoolError::Memory`]; see [`PoolError::is_interrupted`]).
    pub fn new_interruptible(
        config: &PoolConfig,
        interrupt: &AtomicBool,
    ) -> Result<Pool, PoolError> {
        Self::build(config, Some(interrupt))
    }

    fn build(config: &PoolConfig, interrupt: Option<&AtomicBool>) -> Result<Pool, PoolError> {
        let bad = |why: String| PoolError::BadConfig {
            name: config.name.clone(),
            why,
        };
        if config.count == 0 || config.count > (1 << 31) {
            return Err(bad(format!(
                "buffer count {} must be between 1 and 2^31",
                config.count
            )));
        }
        if config.cache_size > MAX_CACHE_SIZE {
            return Err(bad(format!(
                "cache size {} is larger than the maximum {MAX_CACHE_SIZE}",
                config.cache_size
            )));
        }
        let buf_len = config.headroom as usize + config.data_room as usize;
        if buf_len > u16::MAX as usize || config.data_room == 0 {
            return Err(bad(format!(
                "headroom {} + data room {} must be between 1 and {} bytes",
                config.headroom,
                config.data_room,
                u16::MAX
            )));
        }
        let element_size = config.element_size();
        let layout = Layout::for_pages(
            element_size,
            config.count as usize,
            page_size_of(&config.backing),
        );
        let region = match interrupt {
            Some(flag) => DmaRegion::allocate_interruptible(layout.bytes, &config.backing, flag),
            None => DmaRegion::allocate(layout.bytes, &config.backing),
        }
        .map_err(|source| PoolError::Memory {
            name: config.name.clone(),
            source,
        })?;
        // The page size actually used may differ from the guess (Auto).
        let layout = Layout::for_pages(element_size, config.count as usize, region.page_size());
        if layout.bytes > region.len() {
            return Err(bad(format!(
                "needs {} bytes with {} pages, got {}",
                layout.bytes,
                region.page_size(),
                region.len()
            )));
        }
        let start = region.as_ptr().as_ptr().addr();
        if !crate::port::carried::fits_below_carry_limit(start, region.len()) {
            return Err(PoolError::AboveAddressLimit {
                name: config.name.clone(),
                start,
                end: start.saturating_add(region.len()),
            });
        }
        if let Some(mapper) = &config.dma {
            region.map_dma(mapper).map_err(|source| PoolError::DmaMap {
                name: config.name.clone(),
                source,
            })?;
        }
        let free = Ring::new((config.count as usize).next_power_of_two()).map_err(|source| {
            PoolError::Ring {
                name: config.name.clone(),
                source,
            }
        })?;

        let id = reserve_slot().ok_or_else(|| PoolError::TooManyPools {
            name: config.name.clone(),
        })?;
        let shared = Arc::new(PoolShared {
            id,
            name: config.name.clone(),
            count: config.count,
            element_size,
            data_room: config.data_room,
            headroom: config.headroom,
            cache_size: config.cache_size,
            handles: AtomicUsize::new(1),
            free,
            region,
        });
        // Release pairs with the Acquire load in `release_orphan`: a thread
        // that finds this pointer sees the fully built pool.
        REGISTRY[id.0 as usize].store(
            Arc::into_raw(Arc::clone(&shared)).cast_mut(),
            Ordering::Release,
        );

        let base = shared.region.as_ptr();
        let mut batch: ArrayVec<Mbuf, 64> = ArrayVec::new();
        for index in 0..config.count {
            let offset = layout.offset_of(index as usize);
            let hdr = MbufHeader {
                // Within one element the bus addresses are contiguous
                // (no element straddles a page on hugepages), so one base
                // per element is enough; 0 for an unmapped pool.
                buf_iova: shared
                    .region
                    .iova_at(offset + HEADER_SIZE)
                    .map_or(0, Iova::get),
                ol_flags: 0,
                index,
                rss_hash: 0,
                pool: id,
                port: PortId(u16::MAX),
                data_off: config.headroom,
                data_len: 0,
                buf_len: buf_len as u16,
                headroom: config.headroom,
                vlan_tci: 0,
                _pad: 0,
            };
            // `offset + element_size <= layout.bytes <= region.len()`
            // (Layout::offset_of); the region is page aligned and
            // element_size a multiple of 64, so the header fits, aligned.
            // SAFETY: in bounds and aligned (above); nobody else has seen
            // this memory yet.
            let ptr = unsafe {
                let p = base.as_ptr().add(offset).cast::<MbufHeader>();
                p.write(hdr);
                NonNull::new_unchecked(p)
            };
            // SAFETY: the header was just initialised and this is the only
            // owner of the element.
            batch.push(unsafe { Mbuf::from_header(ptr) });
            if batch.is_full() {
                shared.free.enqueue_burst(&mut batch);
            }
        }
        shared.free.enqueue_burst(&mut batch);
        debug_assert!(batch.is_empty(), "the ring is sized for every buffer");
        log::debug!(
            "pool {} ({id}): {} buffers of {} bytes in {}",
            config.name,
            config.count,
            element_size,
            shared.region.describe()
        );
        Ok(Pool { shared })
    }

    /// The pool's registry index.
    pub fn id(&self) -> PoolId {
        self.shared.id
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Total number of buffers.
    pub fn count(&self) -> usize {
        self.shared.count as usize
    }

    /// Buffers in the shared free ring (not counting per-core caches).
    pub fn available(&self) -> usize {
        self.shared.free.len()
    }

    /// Buffers out of the shared ring: held by packets, queues or caches.
    pub fn in_use(&self) -> usize {
        self.count() - self.available()
    }

    /// Bytes of data room per buffer.
    pub fn data_room(&self) -> usize {
        self.shared.data_room as usize
    }

    /// Headroom per buffer.
    pub fn headroom(&self) -> usize {
        self.shared.headroom as usize
    }

    /// Bytes per element (header + headroom + data room, aligned).
    pub fn element_size(&self) -> usize {
        self.shared.element_size
    }

    /// Configured per-core cache size.
    pub fn cache_size(&self) -> usize {
        self.shared.cache_size
    }

    /// True if the pool's buffers are mapped in this device address space.
    pub fn is_mapped_by(&self, mapper: &Arc<dyn DmaMapper>) -> bool {
        self.shared.region.is_mapped_by(mapper)
    }

    /// The pool's memory.
    pub fn region(&self) -> &DmaRegion {
        &self.shared.region
    }

    /// Where the pool's memory lives, for logs and `fastpath` status.
    pub fn describe_memory(&self) -> String {
        self.shared.region.describe()
    }

    /// Take one buffer from the shared ring (control path; workers use a
    /// [`PoolCache`]). The buffer is reset.
    pub fn alloc(&self) -> Option<Mbuf> {
        let mut m = self.shared.free.pop()?;
        handoff(&m, false);
        m.reset();
        Some(m)
    }

    /// Give a buffer back. A buffer of another pool goes to its own pool.
    pub fn free(&self, m: Mbuf) {
        if m.pool_id() == self.shared.id {
            handoff(&m, true);
            push_back(&self.shared, m);
        } else {
            drop(m);
        }
    }

    /// A per-core cache on this pool.
    pub fn cache(&self) -> PoolCache {
        PoolCache {
            pool: self.clone(),
            stack: Box::new(ArrayVec::new()),
            size: self.shared.cache_size,
            flush_at: (self.shared.cache_size * 3 / 2).max(1),
            home_start: self.shared.region.as_ptr().as_ptr() as usize,
            home_len: self.shared.region.len(),
        }
    }
}

impl Clone for Pool {
    fn clone(&self) -> Self {
        // Relaxed: like Arc's own increment, a new handle is made from an
        // existing one, so the count cannot be observed at zero here.
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        Pool {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // AcqRel: the last handle's decrement must see every other handle's
        // work (their frees into the ring) before it checks the count, as
        // in Arc's drop.
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let missing = self.in_use();
        if missing == 0 {
            unregister(self.shared.id);
        } else {
            // Keep the memory mapped and the registry entry alive forever:
            // the outstanding buffers still point into it.
            log::warn!(
                "pool {} dropped with {missing} of {} buffers not returned; its memory stays mapped",
                self.shared.name,
                self.shared.count
            );
        }
    }
}

/// A per-core stack of free buffers in front of a [`Pool`].
///
/// Owned by one worker (it is `Send`, not `Sync`): allocation and free are a
/// few loads and stores, with a bulk ring operation only every
/// `cache_size / 2` buffers or so. Dropping the cache returns its buffers.
pub struct PoolCache {
    pool: Pool,
    stack: Box<ArrayVec<Mbuf, CACHE_CAPACITY>>,
    size: usize,
    flush_at: usize,
    /// The pool's memory, `home_start..home_start + home_len`: a buffer
    /// whose header lies in it is this pool's (regions never overlap), told
    /// without reading the header (`put_bulk`).
    home_start: usize,
    home_len: usize,
}

impl std::fmt::Debug for PoolCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolCache")
            .field("pool", &self.pool.id())
            .field("cached", &self.stack.len())
            .finish()
    }
}

impl PoolCache {
    /// The pool behind this cache.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Buffers held in this cache.
    pub fn len(&self) -> usize {
        self.stack.len()
    }

    /// True when the cache holds none.
    pub fn is_empty(&self) -> bool {
        self.stack.is_empty()
    }

    /// One fresh (reset) buffer.
    #[inline]
    pub fn alloc(&mut self) -> Option<Mbuf> {
        if self.stack.is_empty() && !self.refill(1) {
            return None;
        }
        let mut m = self.stack.pop()?;
        handoff(&m, false);
        m.reset();
        Some(m)
    }

    /// Append `n` fresh (reset) buffers to `out`, all or none (as DPDK's
    /// rte_pktmbuf_alloc_bulk). Fails if the pool cannot supply `n` or `out`
    /// has no room for them.
    #[inline]
    pub fn alloc_bulk<const N: usize>(&mut self, out: &mut ArrayVec<Mbuf, N>, n: usize) -> bool {
        self.alloc_bulk_with(out, n, Mbuf::reset)
    }

    /// As [`alloc_bulk`](Self::alloc_bulk), each buffer then holding `len`
    /// bytes (their content left as it was) received on `port`: a receive
    /// queue that makes packets (the null port) in one pass over the
    /// headers instead of three. A `len` beyond the data room leaves the
    /// buffers empty.
    #[inline]
    pub fn alloc_bulk_received<const N: usize>(
        &mut self,
        out: &mut ArrayVec<Mbuf, N>,
        n: usize,
        len: usize,
        port: PortId,
    ) -> bool {
        let shared = &self.pool.shared;
        let len = if len <= shared.data_room as usize {
            len as u16
        } else {
            0
        };
        let quad = RxQuad::new(shared.id, port, shared.headroom, len);
        self.alloc_bulk_with(out, n, |m| m.reset_received(quad))
    }

    #[inline(always)]
    fn alloc_bulk_with<const N: usize>(
        &mut self,
        out: &mut ArrayVec<Mbuf, N>,
        n: usize,
        init: impl Fn(&mut Mbuf),
    ) -> bool {
        if n > out.remaining_capacity() {
            return false;
        }
        if self.stack.len() < n && !self.refill(n) {
            return false;
        }
        let from = self.stack.len() - n;
        // Told before the loop, so the loop is the same with or without
        // the `sim` feature (a branch in it cost a cycle per packet).
        if watched() {
            handoff_all(self.stack[from..].iter(), self.pool.shared.id, false);
        }
        for mut m in self.stack.drain(from..) {
            init(&mut m);
            // SAFETY: `n <= out.remaining_capacity()` was checked above and
            // exactly `n` buffers are drained.
            unsafe { out.push_unchecked(m) };
        }
        true
    }

    /// Append `n` raw buffers to `out`, all or none, without touching them
    /// (DPDK's rte_mempool_get_bulk): their headers are as their last user
    /// left them, so each must become a packet through
    /// [`RawBuf::into_mbuf`], which resets it. Fails if the pool cannot
    /// supply `n` or `out` has no room for them.
    #[inline]
    pub fn get_bulk<const N: usize>(&mut self, out: &mut ArrayVec<RawBuf, N>, n: usize) -> bool {
        let len = out.len();
        // `RawBuf` is a transparent `Mbuf`: `take` writes `Mbuf`s.
        if !self.take(out.as_mut_ptr().cast::<Mbuf>(), len, N, n) {
            return false;
        }
        // SAFETY: `take` wrote `n` buffers after `out`'s `len` items.
        unsafe { out.set_len(len + n) };
        true
    }

    /// Write `n` buffers of this pool to `dst[len..len + n]` (`dst` holds
    /// `cap`), all or none; true if written. The caller then owns them.
    #[inline(always)]
    fn take(&mut self, dst: *mut Mbuf, len: usize, cap: usize, n: usize) -> bool {
        if n > cap - len {
            return false;
        }
        // SAFETY (both branches): `len + n <= cap`, so `dst + len` is
        // writable for `n` buffers, each written once and then owned by the
        // caller (who raises its container's length over them).
        let to = unsafe { dst.add(len) };
        if self.size == 0 && self.stack.is_empty() {
            // No cache: straight from the shared ring, as DPDK's
            // rte_mempool_get_bulk with no cache; through the stack it was
            // one more copy and a call each way.
            // SAFETY: see above.
            if !unsafe { self.pool.shared.free.dequeue_bulk_to(to, n) } {
                return false;
            }
        } else {
            if self.stack.len() < n && !self.refill(n) {
                return false;
            }
            let from = self.stack.len() - n;
            // SAFETY: see above; the source is the stack's top `n`
            // buffers, whose length is then cut to `from`.
            unsafe {
                if n >= BIG_BULK {
                    std::ptr::copy_nonoverlapping(self.stack.as_ptr().add(from), to, n);
                } else {
                    copy_bufs(self.stack.as_ptr().add(from), to, n);
                }
                self.stack.set_len(from);
            }
        }
        // Told after the copy, outside the caller's loop, so the loops are
        // the same with or without the `sim` feature (a branch in them cost
        // a cycle per packet).
        if watched() {
            // SAFETY: the `n` buffers just written, owned by the caller.
            let got = unsafe { std::slice::from_raw_parts(to, n) };
            handoff_all(got.iter(), self.pool.shared.id, false);
        }
        true
    }

    /// Give one buffer back.
    #[inline]
    pub fn free(&mut self, m: Mbuf) {
        if m.pool_id() != self.pool.shared.id {
            drop(m); // goes home through the registry
            return;
        }
        handoff(&m, true);
        self.stack.push(m);
        if self.stack.len() >= self.flush_at {
            self.spill();
        }
    }

    /// Give back every buffer in `bufs` (leaving it empty).
    #[inline]
    pub fn free_bulk<const N: usize>(&mut self, bufs: &mut ArrayVec<Mbuf, N>) {
        // The byte sum is dead here and its loads go with it.
        let _ = self.free_bulk_counted(bufs);
    }

    /// As [`free_bulk`](Self::free_bulk), returning the bytes the buffers
    /// held (what a transmit queue that frees, the null port's, counts).
    ///
    /// One pass reads each header once, for its length and its pool (they
    /// share the header's line); when every buffer is this pool's (the
    /// usual case) the burst's pointers are then copied onto the stack as a
    /// block, so the home check costs no branch per buffer.
    #[inline]
    pub fn free_bulk_counted<const N: usize>(&mut self, bufs: &mut ArrayVec<Mbuf, N>) -> u64 {
        let id = self.pool.shared.id;
        let mut bytes = 0u64;
        let mut foreign = false;
        for m in bufs.iter() {
            bytes += m.len() as u64;
            foreign |= m.pool_id() != id;
        }
        let stack = &mut *self.stack;
        let n = bufs.len();
        if !foreign && n <= stack.remaining_capacity() {
            if watched() {
                handoff_all(bufs.iter(), id, true);
            }
            let len = stack.len();
            // SAFETY: the stack has room for `n` more (checked above), so
            // the copy writes inside its buffer, and `bufs`' `n` buffers
            // (initialised, not overlapping the stack) move there: `bufs`
            // is emptied and the stack's length grown by `n`, so each
            // buffer has exactly one owner afterwards.
            unsafe {
                std::ptr::copy_nonoverlapping(bufs.as_ptr(), stack.as_mut_ptr().add(len), n);
                bufs.set_len(0);
                stack.set_len(len + n);
            }
        } else if n <= stack.remaining_capacity() {
            // A foreign buffer in the burst: each goes its own way.
            // The stack's length stays in a local, written back once: pushed
            // one by one, it went through memory for every buffer (the call
            // in the foreign-buffer branch makes the compiler reload it), a
            // store-to-load chain that made bulk 32 cost more per buffer
            // than bulk 8.
            let mut len = stack.len();
            let top = stack.as_mut_ptr();
            let from = bufs.as_ptr();
            // SAFETY: `bufs` gives up its `n` buffers (its length is zeroed
            // before they are read, so each has exactly one owner at every
            // step: either `bufs`' slot, now forgotten, or the stack/drop).
            // The stack had room for all `n` (checked above), so `top + len`
            // stays inside its buffer; `set_len` then covers exactly the
            // buffers written. If a foreign buffer's drop panicked, the
            // buffers written past the old length would only be leaked.
            // Told before the loop, as in `alloc_bulk`.
            if watched() {
                handoff_all(bufs.iter(), id, true);
            }
            unsafe {
                bufs.set_len(0);
                for i in 0..n {
                    let m = from.add(i).read();
                    if m.pool_id() == id {
                        top.add(len).write(m);
                        len += 1;
                    } else {
                        drop(m); // goes home through the registry
                    }
                }
                stack.set_len(len);
            }
        } else {
            // Cannot happen with bursts of at most MAX_BURST (the stack keeps
            // that much room), but stay correct for any caller.
            for m in bufs.drain(..) {
                self.free(m);
            }
        }
        if self.stack.len() >= self.flush_at {
            self.spill();
        }
        bytes
    }

    /// Give back every buffer in `bufs` (leaving it empty) without reading
    /// or writing them (DPDK's rte_mempool_put_bulk): whether one is this
    /// pool's is told by its address; another pool's goes home through the
    /// registry, as in [`free_bulk`](Self::free_bulk).
    #[inline]
    pub fn put_bulk<const N: usize>(&mut self, bufs: &mut ArrayVec<RawBuf, N>) {
        let n = bufs.len();
        // SAFETY: as in `free_bulk`; `RawBuf` is a transparent `Mbuf`.
        unsafe {
            bufs.set_len(0);
            self.give(bufs.as_ptr().cast::<Mbuf>(), n);
        }
    }

    /// Take back the `n` buffers at `src`.
    ///
    /// Whether a buffer is this pool's is told by its address (the pool's
    /// memory is one region, and regions never overlap), not by its header:
    /// a free then reads nothing of the buffer, as DPDK's put does not.
    ///
    /// # Safety
    /// `src` holds `n` buffers the caller gives up (it must forget them).
    #[inline(always)]
    unsafe fn give(&mut self, src: *const Mbuf, n: usize) {
        // SAFETY: `src` holds `n` initialised buffers (the contract).
        let bufs = unsafe { std::slice::from_raw_parts(src, n) };
        if watched() {
            handoff_all(bufs.iter(), self.pool.shared.id, true);
        }
        let (home, home_len) = (self.home_start, self.home_len);
        if self.size == 0 && self.stack.is_empty() {
            // No cache: straight to the shared ring (see `take`) when all
            // are ours, told in one pass with no branch.
            let foreign = bufs.iter().fold(false, |acc, m| {
                acc | (m.header_addr().wrapping_sub(home) >= home_len)
            });
            // SAFETY: the caller gives the buffers up; on success the ring
            // owns them and nothing here touches them again.
            if !foreign && unsafe { self.pool.shared.free.enqueue_bulk_from(src, n) } {
                return;
            }
        }
        let stack = &mut *self.stack;
        if n >= BIG_BULK && n <= stack.remaining_capacity() {
            let len = stack.len();
            // SAFETY: the stack has room for `n` after its items (checked),
            // so `top + i` is inside its buffer for every `i < n`.
            let top = unsafe { stack.as_mut_ptr().add(len) };
            let (home, home_len) = (home as u64, home_len as u64);
            let mut outside = 0u64;
            // One pass copies each buffer past the stack's top and checks
            // its address, branch-free, so the loop vectorises: `d <
            // home_len` is the top bit of `(d - home_len) & !d`, as every
            // address is below 2^63 (pools are below 2^48, see
            // `port::carried`). A check of its own before a block copy cost
            // 0.16 cycles more per buffer at bulk 32 (pool-bench ours_raw,
            // 1.13 against 0.97, A/B).
            for i in 0..n {
                // SAFETY: `i < n`: `src + i` holds a buffer (the contract)
                // and `top + i` is inside the stack (above). The copy is
                // bits only: the stack's length does not cover it yet.
                unsafe {
                    let at = src.add(i);
                    let d = ((*at).header_addr() as u64).wrapping_sub(home);
                    outside |= !(d.wrapping_sub(home_len) & !d);
                    std::ptr::copy_nonoverlapping(at, top.add(i), 1);
                }
            }
            if outside >> 63 == 0 {
                // SAFETY: all `n` were this pool's and are copied; the caller
                // gave them up, so the stack owns them from here.
                unsafe { stack.set_len(len + n) };
                if self.stack.len() >= self.flush_at {
                    self.spill();
                }
                return;
            }
            // A foreign buffer: the copies stay beyond the stack's length
            // (never read again), and each buffer goes its own way below.
        }
        if n <= stack.remaining_capacity() {
            // The stack's length stays in a local, written back once: pushed
            // one by one, it went through memory for every buffer (the call
            // in the foreign-buffer branch makes the compiler reload it), a
            // store-to-load chain that made bulk 32 cost more per buffer
            // than bulk 8. One branch per buffer, always taken the same way:
            // a branch-free check of all addresses followed by one copy
            // was no faster at bulks of 1 to 8 (pool-bench, A/B).
            let mut len = stack.len();
            let top = stack.as_mut_ptr();
            // SAFETY: each buffer at `src` is read once, so has one owner
            // (the stack or its drop). The stack had room for all `n`
            // (checked above), so `top + len` stays inside its buffer;
            // `set_len` then covers exactly the buffers written. If a
            // foreign buffer's drop panicked, the buffers written past the
            // old length would only be leaked.
            unsafe {
                for i in 0..n {
                    let m = src.add(i).read();
                    if m.header_addr().wrapping_sub(home) < home_len {
                        top.add(len).write(m);
                        len += 1;
                    } else {
                        drop(m); // goes home through the registry
                    }
                }
                stack.set_len(len);
            }
        } else {
            // Cannot happen with bursts of at most MAX_BURST (the stack keeps
            // that much room), but stay correct for any caller.
            for i in 0..n {
                // SAFETY: each buffer is read once and so has one owner.
                self.free(unsafe { src.add(i).read() });
            }
        }
        if self.stack.len() >= self.flush_at {
            self.spill();
        }
    }

    /// Bring the stack up to `size + n` from the shared ring; true if it
    /// then holds at least `n`.
    #[cold]
    fn refill(&mut self, n: usize) -> bool {
        let want = (self.size + n).min(self.stack.remaining_capacity() + self.stack.len())
            - self.stack.len();
        self.pool.shared.free.dequeue_burst(&mut *self.stack, want);
        self.stack.len() >= n
    }

    /// Move everything above `size` back to the shared ring.
    #[cold]
    fn spill(&mut self) {
        let extra = self.stack.len().saturating_sub(self.size);
        if !self
            .pool
            .shared
            .free
            .enqueue_bulk_from_back(&mut self.stack, extra)
        {
            // Cannot happen: the ring has room for every buffer of the pool.
            log::error!(
                "pool {}: free ring refused {extra} buffers",
                self.pool.name()
            );
        }
    }
}

impl Drop for PoolCache {
    fn drop(&mut self) {
        let n = self.stack.len();
        self.pool
            .shared
            .free
            .enqueue_bulk_from_back(&mut self.stack, n);
        // Anything left (impossible: the ring fits the whole pool) is
        // dropped by the ArrayVec and so returned through the registry.
    }
}

/// From this many buffers on, a bulk get or put copies with `memcpy` (its
/// call is then paid back; under it, `copy_bufs` and a branch per buffer
/// cost less).
const BIG_BULK: usize = 16;

/// Copy `n` buffer pointers from `src` to `dst`, four per step. Not
/// `copy_nonoverlapping`: with a run-time `n` that is a call to `memcpy`,
/// which doubled the cost of a bulk of 1 to 8 (the ring's copies are
/// unrolled for the same reason).
///
/// # Safety
/// `src` is readable and `dst` writable for `n` buffers, not overlapping;
/// the caller settles who owns the copies.
#[inline(always)]
unsafe fn copy_bufs(src: *const Mbuf, dst: *mut Mbuf, n: usize) {
    let mut i = 0;
    // SAFETY (all blocks): `i + k < n` for every access (the contract).
    while i + 4 <= n {
        unsafe {
            dst.add(i).write(src.add(i).read());
            dst.add(i + 1).write(src.add(i + 1).read());
            dst.add(i + 2).write(src.add(i + 2).read());
            dst.add(i + 3).write(src.add(i + 3).read());
        }
        i += 4;
    }
    // Up to three left, each on its own: a loop here becomes `memcpy` too.
    for k in 0..3 {
        if i + k < n {
            unsafe { dst.add(i + k).write(src.add(i + k).read()) };
        }
    }
}

/// Return a buffer whose owner dropped it, to the pool named in its header.
/// Called from `Mbuf`'s `Drop`.
pub(crate) fn release_orphan(hdr: NonNull<MbufHeader>) {
    // SAFETY: the header belongs to a live pool element (the Mbuf that owned
    // it is being dropped, and pools with outstanding buffers are never
    // unmapped), and that Mbuf was its only owner.
    let id = unsafe { hdr.as_ref() }.pool;
    // Acquire pairs with the Release store in `Pool::new`.
    let p = REGISTRY
        .get(id.0 as usize)
        .map_or(std::ptr::null_mut(), |slot| slot.load(Ordering::Acquire));
    if p.is_null() || p == RESERVED {
        log::error!("buffer of unknown {id} dropped; leaking it");
        return;
    }
    // SAFETY: a registered pointer came from Arc::into_raw and the registry
    // keeps that strong count while any buffer of the pool is outstanding
    // (this one is), so the PoolShared is alive.
    let shared = unsafe { &*p };
    // SAFETY: the dropped Mbuf was the unique owner of this element.
    let m = unsafe { Mbuf::from_header(hdr) };
    handoff(&m, true);
    push_back(shared, m);
}

/// Tell the buffer watchers (device models, `sim`) that `m` leaves its
/// pool (`to_pool` false) or goes back (true). Nothing in builds without
/// `sim`.
#[inline(always)]
fn handoff(_m: &Mbuf, _to_pool: bool) {
    #[cfg(any(test, feature = "sim"))]
    watch::report(_m, _to_pool);
}

/// [`handoff`] for each buffer of `bufs` that belongs to pool `id`. Out of
/// line and cold: the bulk paths stay as small (and as inlined) as in a
/// build without `sim`.
#[cold]
#[inline(never)]
fn handoff_all<'a>(bufs: impl Iterator<Item = &'a Mbuf>, id: PoolId, to_pool: bool) {
    for m in bufs.filter(|m| m.pool_id() == id) {
        handoff(m, to_pool);
    }
}

/// Whether any buffer watcher is registered (always false without `sim`).
/// The bulk paths read it once per call, not once per buffer, and tell
/// the watchers in a loop of their own: a product build with `sim` then
/// pays one load and branch per burst when no model runs.
#[inline(always)]
fn watched() -> bool {
    #[cfg(any(test, feature = "sim"))]
    return watch::active();
    #[cfg(not(any(test, feature = "sim")))]
    false
}

/// Buffer hand-offs reported to device models that track who owns each
/// buffer (`crate::sim`): every buffer a pool hands out or takes back.
/// Test and `sim` builds only.
#[cfg(any(test, feature = "sim"))]
pub mod watch {
    use crate::mbuf::{Mbuf, HEADER_SIZE};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{RwLock, Weak};

    /// One buffer, as a watcher sees it: the headroom and data room after
    /// the header.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct BufferRef {
        /// IOVA of the first byte (the pool's mapping).
        pub iova: u64,
        /// Its virtual address, to tell apart watchers' address spaces.
        pub va: usize,
        /// Bytes (headroom + data room).
        pub len: usize,
    }

    /// Someone told of every buffer hand-off.
    pub trait BufferWatch: Send + Sync {
        /// `buf` left its pool (`to_pool` false) or came back (true).
        fn handoff(&self, buf: BufferRef, to_pool: bool);
    }

    static WATCHERS: RwLock<Vec<Weak<dyn BufferWatch>>> = RwLock::new(Vec::new());
    /// Live entries in WATCHERS, so pools pay one load when nobody watches.
    static COUNT: AtomicUsize = AtomicUsize::new(0);

    /// Start telling `w` (until it is dropped).
    pub fn register(w: Weak<dyn BufferWatch>) {
        let mut all = WATCHERS.write().unwrap_or_else(|p| p.into_inner());
        all.retain(|x| x.strong_count() > 0);
        all.push(w);
        // Relaxed: a hint only; the list itself is behind the lock, and a
        // watcher registers before the buffers it cares about are handed out
        // on the same thread or through a synchronising hand-over.
        COUNT.store(all.len(), Ordering::Relaxed);
    }

    /// Called for every buffer a pool hands out or takes back: in a
    /// product build with the `sim` feature, when no model runs, this must
    /// cost no more than a load and a not-taken branch, so the rest is out
    /// of line (inlined, it doubled the cycles per packet of `fwd-bench
    /// --ports null`).
    #[inline(always)]
    pub(super) fn report(m: &Mbuf, to_pool: bool) {
        if active() {
            report_to_watchers(m, to_pool);
        }
    }

    /// Some watcher is registered.
    #[inline(always)]
    pub(super) fn active() -> bool {
        // Relaxed: see `register`.
        COUNT.load(Ordering::Relaxed) != 0
    }

    /// Tell every watcher (the caller saw [`active`]).
    #[cold]
    #[inline(never)]
    pub(super) fn report_to_watchers(m: &Mbuf, to_pool: bool) {
        let h = m.hdr();
        if h.buf_iova == 0 {
            return; // not mapped for DMA: no device can see it
        }
        let buf = BufferRef {
            iova: h.buf_iova,
            va: h as *const _ as usize + HEADER_SIZE,
            len: h.buf_len as usize,
        };
        let all = WATCHERS.read().unwrap_or_else(|p| p.into_inner());
        for w in all.iter().filter_map(Weak::upgrade) {
            w.handoff(buf, to_pool);
        }
    }
}

fn push_back(shared: &PoolShared, m: Mbuf) {
    if let Err(m) = shared.free.push(m) {
        // The ring holds every buffer of the pool, so it is never full
        // unless a buffer was freed twice, which ownership rules out.
        log::error!("pool {}: free ring full; leaking a buffer", shared.name);
        let _ = m.into_header();
    }
}

fn reserve_slot() -> Option<PoolId> {
    REGISTRY.iter().enumerate().find_map(|(i, slot)| {
        // Relaxed: the slot only records that it is taken; the pool itself
        // is published by the later Release store.
        slot.compare_exchange(
            std::ptr::null_mut(),
            RESERVED,
            Ordering::Relaxed,
            Ordering::Relaxed,
        )
        .ok()
        .map(|_| PoolId(i as u16))
    })
}

fn unregister(id: PoolId) {
    // AcqRel: Acquire pairs with the Release store in `Pool::new` (we then
    // own the pointer's strong count), Release orders our earlier use.
    let p = REGISTRY[id.0 as usize].swap(std::ptr::null_mut(), Ordering::AcqRel);
    if !p.is_null() && p != RESERVED {
        // SAFETY: `p` came from Arc::into_raw in Pool::new and the registry
        // gave up its claim by swapping it out, so this is the one matching
        // from_raw.
        drop(unsafe { Arc::from_raw(p.cast_const()) });
    }
}

/// Guess of the page size a backing will use, to size the region; the
/// layout is recomputed with the real one after allocation.
fn page_size_of(backing: &MemoryBacking) -> PageSize {
    match backing {
        MemoryBacking::NoHuge => PageSize::Size4K,
        _ => PageSize::Size2M,
    }
}

/// Where each element sits in the region.
///
/// With hugepages, no element straddles a page boundary, so a buffer is
/// physically contiguous even when IOVAs are physical addresses (vfio
/// no-IOMMU mode); with 4 KiB pages (software ports only) elements are packed.
struct Layout {
    element_size: usize,
    per_page: usize,
    page: usize,
    bytes: usize,
}

impl Layout {
    fn for_pages(element_size: usize, count: usize, page: PageSize) -> Layout {
        let page = page.bytes();
        if page < (1 << 21) || element_size > page {
            return Layout {
                element_size,
                per_page: usize::MAX,
                page,
                bytes: element_size * count,
            };
        }
        let per_page = page / element_size;
        let pages = count.div_ceil(per_page);
        Layout {
            element_size,
            per_page,
            page,
            bytes: pages * page,
        }
    }

    fn offset_of(&self, index: usize) -> usize {
        if self.per_page == usize::MAX {
            index * self.element_size
        } else {
            (index / self.per_page) * self.page + (index % self.per_page) * self.element_size
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soft_pool(name: &str, count: u32) -> Pool {
        let mut cfg = PoolConfig::new(name, count).with_backing(MemoryBacking::NoHuge);
        cfg.cache_size = 32;
        Pool::new(&cfg).expect("4K pool")
    }

    #[test]
    fn an_interrupted_pool_is_given_up_and_a_clear_flag_changes_nothing() {
        use std::sync::atomic::AtomicBool;
        let cfg = PoolConfig::new("interrupted", 40_000).with_backing(MemoryBacking::NoHuge);
        let err = Pool::new_interruptible(&cfg, &AtomicBool::new(true)).expect_err("interrupted");
        assert!(err.is_interrupted(), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("pool interrupted: interrupted while faulting in "),
            "{err}"
        );
        // Over several populate chunks, all of it is faulted in and cut.
        let pool = Pool::new_interruptible(&cfg, &AtomicBool::new(false)).expect("built");
        assert_eq!(pool.available(), 40_000);
    }

    #[test]
    fn new_pool_has_every_buffer_free_and_distinct() {
        let pool = soft_pool("distinct", 1000);
        assert_eq!(pool.available(), 1000);
        let mut seen = std::collections::HashSet::new();
        let mut held = Vec::new();
        while let Some(m) = pool.alloc() {
            assert_eq!(m.pool_id(), pool.id());
            assert!(seen.insert(m.index()), "buffer handed out twice");
            assert_eq!(m.headroom(), DEFAULT_HEADROOM as usize);
            assert_eq!(m.tailroom(), DEFAULT_DATA_ROOM as usize);
            held.push(m);
        }
        assert_eq!(held.len(), 1000);
        assert_eq!(pool.in_use(), 1000);
        drop(held);
        assert_eq!(pool.available(), 1000, "dropped buffers went home");
    }

    #[test]
    fn buffers_do_not_overlap() {
        let pool = soft_pool("overlap", 64);
        let mut held: Vec<Mbuf> = (0..64).map(|_| pool.alloc().unwrap()).collect();
        for (i, m) in held.iter_mut().enumerate() {
            let n = m.tailroom();
            m.append(n).unwrap().fill(i as u8);
        }
        for (i, m) in held.iter().enumerate() {
            assert!(
                m.data().iter().all(|&b| b == i as u8),
                "buffer {i} was overwritten"
            );
        }
    }

    #[test]
    fn cache_bulk_alloc_is_all_or_nothing() {
        let pool = soft_pool("bulk", 40);
        let mut cache = pool.cache();
        let mut out: ArrayVec<Mbuf, 64> = ArrayVec::new();
        assert!(cache.alloc_bulk(&mut out, 32));
        assert!(!cache.alloc_bulk(&mut out, 9), "only 8 left");
        assert_eq!(out.len(), 32);
        assert!(cache.alloc_bulk(&mut out, 8));
        assert!(cache.alloc().is_none());
        cache.free_bulk(&mut out);
        assert!(out.is_empty());
        drop(cache);
        assert_eq!(pool.available(), 40);
    }

    #[test]
    fn raw_get_put_hand_out_each_buffer_once_and_into_mbuf_resets() {
        for cache_size in [0, 32] {
            let mut cfg = PoolConfig::new("raw", 40).with_backing(MemoryBacking::NoHuge);
            cfg.cache_size = cache_size;
            let pool = Pool::new(&cfg).expect("4K pool");
            let mut cache = pool.cache();
            // Dirty every header, then give the buffers back raw.
            let mut out: ArrayVec<Mbuf, 64> = ArrayVec::new();
            assert!(cache.alloc_bulk(&mut out, 40));
            let mut raw: ArrayVec<RawBuf, 64> = ArrayVec::new();
            for mut m in out.drain(..) {
                m.append(100).unwrap().fill(1);
                m.set_port(PortId(3));
                raw.push(RawBuf::from(m));
            }
            cache.put_bulk(&mut raw);
            assert!(raw.is_empty());
            // All or nothing, as alloc_bulk.
            assert!(!cache.get_bulk(&mut raw, 41), "cache {cache_size}");
            assert!(raw.is_empty());
            assert!(cache.get_bulk(&mut raw, 40), "cache {cache_size}");
            let mut seen = std::collections::HashSet::new();
            for r in raw.drain(..) {
                assert!(seen.insert(r.index()), "buffer handed out twice");
                let m = r.into_mbuf();
                assert_eq!(m.len(), 0, "into_mbuf resets the length");
                assert_eq!(m.headroom(), DEFAULT_HEADROOM as usize);
                assert_eq!(m.port(), PortId(u16::MAX));
                out.push(m);
            }
            cache.free_bulk(&mut out);
            drop(cache);
            assert_eq!(pool.available(), 40, "cache {cache_size}");
        }
    }

    #[test]
    fn put_bulk_sends_foreign_buffers_home() {
        let a = soft_pool("raw-home-a", 8);
        let b = soft_pool("raw-home-b", 8);
        let mut cache_a = a.cache();
        let mut raw: ArrayVec<RawBuf, 8> = ArrayVec::new();
        raw.push(RawBuf::from(a.alloc().unwrap()));
        raw.push(RawBuf::from(b.alloc().unwrap()));
        raw.push(RawBuf::from(a.alloc().unwrap()));
        cache_a.put_bulk(&mut raw);
        assert_eq!(b.available(), 8, "b's buffer went home");
        assert_eq!(cache_a.len() + a.available(), 8);
        // A dropped raw buffer goes home too.
        let r = RawBuf::from(b.alloc().unwrap());
        drop(r);
        assert_eq!(b.available(), 8);
    }

    #[test]
    fn a_big_put_bulk_with_foreign_buffers_sends_each_home() {
        // 16 or more go through the one-pass copy and check; a foreign
        // buffer anywhere in it (first, last, middle) sends the bulk down
        // the per-buffer path.
        for at in [0, 9, 19] {
            let a = soft_pool("raw-big-a", 64);
            let b = soft_pool("raw-big-b", 8);
            let mut cache_a = a.cache();
            let mut raw: ArrayVec<RawBuf, 32> = ArrayVec::new();
            assert!(cache_a.get_bulk(&mut raw, 20));
            let ours = std::mem::replace(&mut raw[at], RawBuf::from(b.alloc().unwrap()));
            drop(ours);
            assert_eq!(b.available(), 7);
            cache_a.put_bulk(&mut raw);
            assert!(raw.is_empty());
            assert_eq!(b.available(), 8, "foreign at {at}: went home");
            assert_eq!(cache_a.len() + a.available(), 64, "foreign at {at}");
            // And an all-ours bulk takes the one-pass path.
            assert!(cache_a.get_bulk(&mut raw, 20));
            cache_a.put_bulk(&mut raw);
            assert_eq!(cache_a.len() + a.available(), 64);
            drop(cache_a);
            assert_eq!(a.available(), 64);
        }
    }

    #[test]
    fn cache_spills_and_returns_on_drop() {
        let pool = soft_pool("spill", 500);
        let mut cache = pool.cache();
        let mut out: ArrayVec<Mbuf, 512> = ArrayVec::new();
        assert!(cache.alloc_bulk(&mut out, 400));
        cache.free_bulk(&mut out);
        assert!(cache.len() <= 32 * 3 / 2, "cache spilled down to its size");
        assert_eq!(pool.available() + cache.len(), 500);
        drop(cache);
        assert_eq!(pool.available(), 500);
    }

    #[test]
    fn foreign_buffers_go_to_their_own_pool() {
        let a = soft_pool("home-a", 8);
        let b = soft_pool("home-b", 8);
        let mut cache_a = a.cache();
        let m = b.alloc().unwrap();
        cache_a.free(m);
        assert_eq!(b.available(), 8);
        assert_eq!(cache_a.len(), 0);
    }

    #[test]
    fn dropping_pool_with_buffers_out_keeps_them_valid() {
        let pool = soft_pool("orphan", 4);
        let id = pool.id();
        let mut m = pool.alloc().unwrap();
        drop(pool);
        m.append(10).unwrap().fill(7);
        assert_eq!(m.data(), &[7; 10]);
        assert_eq!(m.pool_id(), id);
        drop(m); // returns into the kept pool: no crash, no leak report
    }

    #[test]
    fn slots_are_reused_after_clean_drop() {
        // More pools, one after the other, than the registry has slots:
        // each clean drop must give its slot back, or a `Pool::new` here
        // fails with TooManyPools. Other tests of this binary hold some
        // pools meanwhile; they never hold all but a few of the slots.
        for i in 0..(MAX_POOLS + 10) {
            let p =
                match Pool::new(&PoolConfig::new("reuse", 1).with_backing(MemoryBacking::NoHuge)) {
                    Ok(p) => p,
                    Err(err) => panic!("pool {i}: {err} (slots not given back)"),
                };
            let mut cache = p.cache();
            let m = cache.alloc().expect("one buffer");
            cache.free(m);
            drop(cache);
            let shared = Arc::downgrade(&p.shared);
            drop(p);
            // The registry's reference went with the slot: the pool's
            // memory is gone.
            assert_eq!(shared.strong_count(), 0, "pool {i} still registered");
        }
    }

    #[test]
    fn rejects_bad_configs() {
        let mut cfg = PoolConfig::new("bad", 0).with_backing(MemoryBacking::NoHuge);
        assert!(matches!(Pool::new(&cfg), Err(PoolError::BadConfig { .. })));
        cfg.count = 8;
        cfg.cache_size = MAX_CACHE_SIZE + 1;
        assert!(matches!(Pool::new(&cfg), Err(PoolError::BadConfig { .. })));
        cfg.cache_size = 0;
        cfg.data_room = u16::MAX;
        assert!(matches!(Pool::new(&cfg), Err(PoolError::BadConfig { .. })));
    }

    #[test]
    fn hugepage_layout_never_straddles_pages() {
        let l = Layout::for_pages(2240, 5000, PageSize::Size2M);
        for i in 0..5000 {
            let off = l.offset_of(i);
            assert_eq!(off / (1 << 21), (off + 2240 - 1) / (1 << 21), "element {i}");
            assert!(off + 2240 <= l.bytes);
        }
    }

    #[test]
    fn iova_comes_from_the_mapping_and_follows_layout() {
        let mapper: Arc<dyn DmaMapper> = Arc::new(crate::memory::TestMapper::at(0x8000_0000));
        let mut cfg = PoolConfig::new("iova", 3).with_backing(MemoryBacking::NoHuge);
        cfg.dma = Some(Arc::clone(&mapper));
        let pool = Pool::new(&cfg).unwrap();
        assert!(pool.is_mapped_by(&mapper));
        let a = pool.alloc().unwrap();
        let b = pool.alloc().unwrap();
        let base = 0x8000_0000u64;
        for m in [&a, &b] {
            let off = m.buf_iova().get() - base;
            assert_eq!(
                off as usize % pool.element_size(),
                crate::mbuf::HEADER_SIZE,
                "an element's data starts after its header"
            );
        }
        let delta = a.buf_iova().get().abs_diff(b.buf_iova().get());
        assert_eq!(delta % pool.element_size() as u64, 0);
        assert_eq!(
            a.data_iova().get(),
            a.buf_iova().get() + DEFAULT_HEADROOM as u64
        );
        let soft = soft_pool("unmapped", 1);
        assert!(!soft.is_mapped_by(&mapper));
    }
}
