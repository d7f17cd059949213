//! Quiescent-state-based reclamation (QSBR) of one published value.
//!
//! One control thread (the [`Writer`]) publishes immutable values of type
//! `T`; worker threads (one [`Reader`] each) read the published value with no
//! lock and no atomic operation on the hot path. When the writer publishes a
//! new value it gets the old one back as a [`Retired`], which hands out the
//! `Box<T>` only after every online reader has passed a *quiescent point*
//! since the swap: a place in its loop where it holds no reference into the
//! value ([`Reader::quiescent`]). This is the QSBR flavour of RCU (Linux's
//! classic RCU, liburcu's `urcu-qsbr`, DPDK's `rte_rcu_qsbr`): readers do not
//! announce when they start or stop reading, they only report, once per
//! loop, that they are between two reads.
//!
//! # The protocol
//!
//! * The published cell holds a pointer and a *token*, a counter of
//!   publications starting at 1. Publishing stores the new pointer, then the
//!   next token; the value published at token `t` is retired when token
//!   `t + 1` is stored, and may be freed once every online reader has
//!   reported a token of at least `t + 1`.
//! * Each reader has its own cache-padded slot holding the last token it
//!   reported, or `OFFLINE` (0). A reader caches the published pointer and
//!   reads through the cache ([`Reader::get`] is one plain load). At a
//!   quiescent point it loads the token; only when the token changed does it
//!   reload the pointer and store the new token in its slot. So the steady
//!   state costs one load and a not-taken branch per loop, and a publication
//!   one extra load and one store per reader: no read-modify-write and no
//!   fence, ever, on the reader's loop (the left-right crate's readers, by
//!   contrast, store an epoch and execute a `SeqCst` fence each time they
//!   take a read guard, and store again when they drop it).
//! * A reader's slot is written only by its reader; the writer only reads
//!   the slots, so a slot's cache line moves to the writer's core once per
//!   grace-period check, never back and forth per packet.
//! * Going online (registering, or [`OfflineReader::online`]) is the one
//!   place a reader needs a full fence: it stores its slot, then reads the
//!   token, while the writer stores the token, then reads the slots (store
//!   then load on both sides: without a `SeqCst` fence on each side both
//!   could miss the other's store, and the writer would skip a reader that
//!   is about to use the old value).
//!
//! # Borrowing rules instead of discipline
//!
//! [`Reader::get`] borrows the reader and [`Reader::quiescent`] takes it
//! mutably, so a reference into the value cannot live across a quiescent
//! point; the same holds for going offline (which consumes the reader, or
//! borrows it mutably for a closure in [`Reader::offline_during`]) and for
//! dropping it:
//!
//! ```compile_fail,E0502
//! let w = drivers::rcu::Writer::new(Box::new(1u32));
//! let mut r = w.readers().register("worker 0");
//! let v: &u32 = r.get();
//! r.quiescent(); // error: `r` is borrowed by `v`
//! assert_eq!(*v, 1);
//! ```
//!
//! # Example
//!
//! ```
//! use drivers::rcu::Writer;
//! let mut w = Writer::new(Box::new(String::from("v1")));
//! let mut r = w.readers().register("worker 0");
//! let worker = std::thread::spawn(move || {
//!     loop {
//!         let stop = r.get() == "v2"; // a burst of packets reads the tables
//!         r.quiescent(); // end of the loop: no reference held
//!         if stop {
//!             break;
//!         }
//!     }
//! });
//! let old = w.publish(Box::new(String::from("v2"))); // waits for the worker
//! assert_eq!(*old, "v1");
//! worker.join().unwrap();
//! ```
//!
//! Model checked with loom (`tests/loom_rcu.rs`).

use crate::sync::{fence, Arc, AtomicPtr, AtomicU64, Mutex, MutexGuard, Ordering};
use crossbeam_utils::CachePadded;
use std::fmt;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

/// A slot's value while its reader is offline: never a token, since tokens
/// start at [`FIRST_TOKEN`].
const OFFLINE: u64 = 0;
/// The token of the first published value.
const FIRST_TOKEN: u64 = 1;

/// Who a reader is, for the writer's error messages and statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderInfo {
    /// Registration number, unique in its domain, counted from 0.
    pub id: u64,
    /// The name given at registration (e.g. "worker 3").
    pub name: std::sync::Arc<str>,
}

impl fmt::Display for ReaderInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} (reader #{})", self.name, self.id)
    }
}

/// The published pointer and its token, written together by the writer and
/// read by every reader: on a line of their own, so that reader slots and
/// the registry lock do not share it.
struct Published<T> {
    ptr: AtomicPtr<T>,
    token: AtomicU64,
}

/// One reader's report: the last token it saw at a quiescent point, or
/// [`OFFLINE`]. Written only by its reader.
struct Slot {
    seen: CachePadded<AtomicU64>,
    info: ReaderInfo,
}

/// A retired value whose [`Retired`] handle was dropped before its grace
/// period ended: freed by a later publication, or with the domain.
struct Orphan<T> {
    ptr: NonNull<T>,
    target: u64,
}

/// What registration and grace-period checks share. Locked by the writer
/// (once per check) and by readers when they register or leave, never on a
/// reader's loop.
struct Registry<T> {
    slots: Vec<Arc<Slot>>,
    next_id: u64,
    orphans: Vec<Orphan<T>>,
}

/// The domain: one published value, its readers, its orphans.
struct Shared<T> {
    published: CachePadded<Published<T>>,
    registry: Mutex<Registry<T>>,
}

// SAFETY: `Shared` owns the published `T` and the orphans (raw pointers from
// `Box::into_raw`). Readers on other threads get `&T` (needs `T: Sync`) and
// the value is dropped on whichever thread drops the last handle or reclaims
// it (needs `T: Send`).
unsafe impl<T: Send + Sync> Send for Shared<T> {}
// SAFETY: as above; all shared mutation goes through atomics and the mutex.
unsafe impl<T: Send + Sync> Sync for Shared<T> {}

impl<T> Shared<T> {
    fn registry(&self) -> MutexGuard<'_, Registry<T>> {
        // A panic while the lock was held left the registry consistent (each
        // update is one push or one retain), so poisoning is ignored.
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The first online reader that has not reported `target` yet, if any.
    fn laggard(&self, registry: &Registry<T>, target: u64) -> Option<ReaderInfo> {
        // SeqCst: pairs with the fence in `come_online` (a reader going
        // online stores its slot, fences, then loads the token; the writer
        // stores the token, fences, then loads the slots), so either this
        // scan sees the reader's slot as online or the reader sees the new
        // token. The writer already fenced after storing the token; this
        // one keeps the argument local when a `Retired` moved to another
        // thread.
        fence(Ordering::SeqCst);
        registry.slots.iter().find_map(|slot| {
            // Acquire: pairs with the Release store of the slot in
            // `Reader::catch_up`, `come_online` and `Registration::drop`:
            // every read the reader made through the old pointer happens
            // before the writer frees it.
            let seen = slot.seen.load(Ordering::Acquire);
            (seen != OFFLINE && seen < target).then(|| slot.info.clone())
        })
    }

    /// Free the orphans whose grace period is over.
    fn reclaim_orphans(&self) {
        let freed: Vec<Orphan<T>> = {
            let mut registry = self.registry();
            if registry.orphans.is_empty() {
                return;
            }
            let orphans = std::mem::take(&mut registry.orphans);
            let (done, waiting) = orphans
                .into_iter()
                .partition(|o| self.laggard(&registry, o.target).is_none());
            registry.orphans = waiting;
            done
        };
        for orphan in freed {
            // SAFETY: the pointer came from `Box::into_raw` in
            // `Writer::swap`, was retired, and its grace period is over: no
            // reader holds it, and it is in no other list.
            drop(unsafe { Box::from_raw(orphan.ptr.as_ptr()) });
        }
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // Acquire: pairs with the writer's Release store of the pointer (the
        // last `Arc` drop already orders everything; this keeps it local).
        let ptr = self.published.ptr.load(Ordering::Acquire);
        // SAFETY: the last handle to the domain is gone, so no reader can
        // hold the published value; it came from `Box::into_raw`.
        drop(unsafe { Box::from_raw(ptr) });
        let registry = self.registry.get_mut().unwrap_or_else(|e| e.into_inner());
        for orphan in registry.orphans.drain(..) {
            // SAFETY: as above: retired values, from `Box::into_raw`, and no
            // reader is left.
            drop(unsafe { Box::from_raw(orphan.ptr.as_ptr()) });
        }
    }
}

/// The one publisher of a value: publishes new values and takes the old
/// ones back after their grace period.
pub struct Writer<T> {
    shared: Arc<Shared<T>>,
    /// The value published now (the writer is the only one that retires it).
    current: NonNull<T>,
    /// Its token: the writer is the only one that stores the token.
    token: u64,
}

// SAFETY: the writer owns the right to retire the published value and reads
// it through `get` (`T: Sync`); values it takes back may be dropped on its
// thread (`T: Send`).
unsafe impl<T: Send + Sync> Send for Writer<T> {}
// SAFETY: `&Writer` only reads the published value and registers readers.
unsafe impl<T: Send + Sync> Sync for Writer<T> {}

impl<T> fmt::Debug for Writer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("publications", &(self.token - FIRST_TOKEN))
            .finish()
    }
}

impl<T: Send + Sync> Writer<T> {
    /// A new domain publishing `initial`.
    pub fn new(initial: Box<T>) -> Self {
        let current = NonNull::from(Box::leak(initial));
        Writer {
            shared: Arc::new(Shared {
                published: CachePadded::new(Published {
                    ptr: AtomicPtr::new(current.as_ptr()),
                    token: AtomicU64::new(FIRST_TOKEN),
                }),
                registry: Mutex::new(Registry {
                    slots: Vec::new(),
                    next_id: 0,
                    orphans: Vec::new(),
                }),
            }),
            current,
            token: FIRST_TOKEN,
        }
    }

    /// A handle that registers readers, to hand to whoever starts workers.
    pub fn readers(&self) -> Readers<T> {
        Readers {
            shared: self.shared.clone(),
        }
    }

    /// The value published now.
    pub fn get(&self) -> &T {
        // SAFETY: only `swap` retires the current value, and it takes
        // `&mut self`, so the value outlives this borrow.
        unsafe { self.current.as_ref() }
    }

    /// How many values were published after the initial one.
    pub fn publications(&self) -> u64 {
        self.token - FIRST_TOKEN
    }

    /// How many readers are registered (online or offline).
    pub fn registered(&self) -> usize {
        self.shared.registry().slots.len()
    }

    /// Publish `new` at once and return the old value, retired: readers may
    /// still be reading it until each passes a quiescent point.
    pub fn swap(&mut self, new: Box<T>) -> Retired<T> {
        self.shared.reclaim_orphans();
        let new = NonNull::from(Box::leak(new));
        let old = std::mem::replace(&mut self.current, new);
        let published = &self.shared.published;
        // Release: pairs with the Acquire loads of the pointer in
        // `catch_up` and `come_online`: the new value's contents, written
        // before, are visible to a reader that loads the pointer.
        published.ptr.store(new.as_ptr(), Ordering::Release);
        self.token += 1;
        // Release: pairs with the Acquire load of the token in
        // `Reader::quiescent` and `come_online`: a reader that sees this
        // token then loads this pointer or a later one, never the old one.
        published.token.store(self.token, Ordering::Release);
        // SeqCst: pairs with the fence in `come_online` (see `laggard`).
        fence(Ordering::SeqCst);
        Retired {
            ptr: Some(old),
            target: self.token,
            shared: self.shared.clone(),
        }
    }

    /// Publish `new` and return the old value once no reader can hold it,
    /// waiting as long as that takes (with a backoff that ends in 1 ms
    /// sleeps). See [`Writer::publish_within`] for a bounded wait. A thread
    /// that holds an online [`Reader`] of this domain must not call it (it
    /// would wait for itself): take the reader offline around the call.
    pub fn publish(&mut self, new: Box<T>) -> Box<T> {
        self.swap(new).reclaim()
    }

    /// Publish `new` and return the old value once no reader can hold it,
    /// waiting at most about `timeout`. On timeout `new` stays published and
    /// the error names a reader that did not pass a quiescent point and
    /// carries the old value, still retired, to try again.
    pub fn publish_within(&mut self, new: Box<T>, timeout: Duration) -> Result<Box<T>, Stalled<T>> {
        self.swap(new).reclaim_within(timeout)
    }
}

/// Registers readers of one domain. Cheap to clone, `Send` and `Sync`.
pub struct Readers<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for Readers<T> {
    fn clone(&self) -> Self {
        Readers {
            shared: self.shared.clone(),
        }
    }
}

impl<T> fmt::Debug for Readers<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readers").finish_non_exhaustive()
    }
}

impl<T: Send + Sync> Readers<T> {
    /// A new reader, online, reading the value published now. `name` is
    /// what the writer's errors call it.
    pub fn register(&self, name: &str) -> Reader<T> {
        let slot = {
            let mut registry = self.shared.registry();
            let slot = Arc::new(Slot {
                seen: CachePadded::new(AtomicU64::new(OFFLINE)),
                info: ReaderInfo {
                    id: registry.next_id,
                    name: name.into(),
                },
            });
            registry.next_id += 1;
            registry.slots.push(slot.clone());
            slot
        };
        OfflineReader {
            registration: Registration {
                slot,
                shared: self.shared.clone(),
            },
        }
        .online()
    }
}

/// A pointer loaded from the published cell, which only ever holds pointers
/// from `Box::leak` (in `Writer::new` and `Writer::swap`).
#[inline(always)]
fn published_ptr<T>(ptr: *mut T) -> NonNull<T> {
    // SAFETY: `Box::leak` never returns null.
    unsafe { NonNull::new_unchecked(ptr) }
}

/// A reader's place in the registry; leaving it (drop) takes the reader
/// offline and unregisters it.
struct Registration<T> {
    slot: Arc<Slot>,
    shared: Arc<Shared<T>>,
}

impl<T> Registration<T> {
    /// Report online and return the pointer to read and its token.
    fn come_online(&self) -> (NonNull<T>, u64) {
        let published = &self.shared.published;
        // Acquire: pairs with the writer's Release store of the token.
        let first = published.token.load(Ordering::Acquire);
        // Release: pairs with the writer's Acquire load in `laggard`. Any
        // token works here as long as it is not newer than the pointer
        // loaded below; a stale one only makes the writer wait for the next
        // quiescent point.
        self.slot.seen.store(first, Ordering::Release);
        // SeqCst: pairs with the writer's fences in `swap` and `laggard`:
        // either the writer's scan sees the store above (and waits for this
        // reader), or the loads below see the writer's new token and pointer.
        fence(Ordering::SeqCst);
        // Acquire: pairs with the writer's Release store of the token.
        let token = published.token.load(Ordering::Acquire);
        // Acquire: pairs with the writer's Release store of the pointer; it
        // is the one published at `token` or a later one.
        let ptr = published.ptr.load(Ordering::Acquire);
        if token != first {
            // Release: as above.
            self.slot.seen.store(token, Ordering::Release);
        }
        (published_ptr(ptr), token)
    }
}

impl<T> Drop for Registration<T> {
    fn drop(&mut self) {
        // Release: pairs with the writer's Acquire load in `laggard`: the
        // reader's last reads through its pointer happen before the writer
        // frees it.
        self.slot.seen.store(OFFLINE, Ordering::Release);
        let mut registry = self.shared.registry();
        registry.slots.retain(|s| !Arc::ptr_eq(s, &self.slot));
    }
}

/// One worker's read handle: reads the published value through a cached
/// pointer and reports quiescent points.
pub struct Reader<T> {
    /// The pointer read at the last quiescent point (or on coming online).
    cached: NonNull<T>,
    /// The token that pointer was published at (or a later one).
    seen: u64,
    registration: Registration<T>,
}

// SAFETY: a reader may move to its worker thread: it reads `T` there
// (`T: Sync`) and its slot and domain handle are thread-safe.
unsafe impl<T: Send + Sync> Send for Reader<T> {}
// SAFETY: `&Reader` only gives `&T` (`T: Sync`); reporting a quiescent point
// needs `&mut Reader`, which no `&T` from it can outlive.
unsafe impl<T: Send + Sync> Sync for Reader<T> {}

impl<T> fmt::Debug for Reader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("reader", &self.registration.slot.info)
            .field("seen", &self.seen)
            .finish()
    }
}

impl<T> Reader<T> {
    /// The value this reader reads until its next quiescent point: one
    /// plain load of the cached pointer.
    #[inline(always)]
    pub fn get(&self) -> &T {
        // SAFETY: `cached` was published and has not been freed: the writer
        // frees a retired value only after this reader's slot reports a
        // token newer than the one it was retired at, or offline, and this
        // reader reports only in `quiescent` (`&mut self`), in
        // `offline`/`offline_during` (by value / `&mut self`) and on drop,
        // none of which can happen while the returned borrow of `self` lives.
        unsafe { self.cached.as_ref() }
    }

    /// Report a quiescent point: this thread holds no reference into the
    /// value. Call once per loop; afterwards [`Reader::get`] returns the
    /// newest published value. One load and a branch when nothing was
    /// published, plus one load and one store when something was.
    #[inline(always)]
    pub fn quiescent(&mut self) {
        // Acquire: pairs with the writer's Release store of the token.
        let token = self
            .registration
            .shared
            .published
            .token
            .load(Ordering::Acquire);
        if token != self.seen {
            self.catch_up(token);
        }
    }

    #[cold]
    #[inline(never)]
    fn catch_up(&mut self, token: u64) {
        // Acquire: pairs with the writer's Release store of the pointer;
        // since the token load (Acquire) saw `token`, this is the value
        // published at `token` or a later one.
        let ptr = self
            .registration
            .shared
            .published
            .ptr
            .load(Ordering::Acquire);
        self.cached = published_ptr(ptr);
        self.seen = token;
        // Release: pairs with the writer's Acquire load in `laggard`: every
        // read through the old pointer happens before the writer frees it.
        self.registration.slot.seen.store(token, Ordering::Release);
    }

    /// Who this reader is.
    pub fn info(&self) -> &ReaderInfo {
        &self.registration.slot.info
    }

    /// Go offline (a thread about to park or block): the writer no longer
    /// waits for this reader. [`OfflineReader::online`] comes back.
    pub fn offline(self) -> OfflineReader<T> {
        // Release: pairs with the writer's Acquire load in `laggard`.
        self.registration
            .slot
            .seen
            .store(OFFLINE, Ordering::Release);
        OfflineReader {
            registration: self.registration,
        }
    }

    /// Run `f` offline (e.g. while the thread sleeps for lack of work), then
    /// come back online with the newest value (also if `f` panics, so a
    /// caught panic cannot leave a stale pointer behind).
    pub fn offline_during<R>(&mut self, f: impl FnOnce() -> R) -> R {
        // Release: pairs with the writer's Acquire load in `laggard`.
        self.registration
            .slot
            .seen
            .store(OFFLINE, Ordering::Release);
        let _online_again = OnlineAgain(self);
        f()
    }
}

/// Brings a reader back online when dropped: the end of
/// [`Reader::offline_during`], on return or unwind.
struct OnlineAgain<'a, T>(&'a mut Reader<T>);

impl<T> Drop for OnlineAgain<'_, T> {
    fn drop(&mut self) {
        let (cached, seen) = self.0.registration.come_online();
        self.0.cached = cached;
        self.0.seen = seen;
    }
}

/// A registered reader that is offline: the writer does not wait for it.
pub struct OfflineReader<T> {
    registration: Registration<T>,
}

impl<T> fmt::Debug for OfflineReader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OfflineReader")
            .field("reader", &self.registration.slot.info)
            .finish()
    }
}

impl<T> OfflineReader<T> {
    /// Come back online, reading the newest value.
    pub fn online(self) -> Reader<T> {
        let (cached, seen) = self.registration.come_online();
        Reader {
            cached,
            seen,
            registration: self.registration,
        }
    }
}

/// A value taken out of publication, held until no reader can be reading
/// it. Dropped unreclaimed, it is freed by a later publication once its
/// grace period is over (or with the domain).
pub struct Retired<T> {
    /// `Some` until reclaimed.
    ptr: Option<NonNull<T>>,
    /// The token whose report by every online reader ends the grace period.
    target: u64,
    shared: Arc<Shared<T>>,
}

// SAFETY: a `Retired` only hands out the `Box<T>` (`T: Send`) and reads
// thread-safe shared state.
unsafe impl<T: Send + Sync> Send for Retired<T> {}
// SAFETY: `&Retired` gives no access to the value.
unsafe impl<T: Send + Sync> Sync for Retired<T> {}

impl<T> fmt::Debug for Retired<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retired")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl<T> Retired<T> {
    /// A reader that has not passed a quiescent point since the swap, or
    /// `None` when the grace period is over.
    pub fn waiting_for(&self) -> Option<ReaderInfo> {
        let registry = self.shared.registry();
        self.shared.laggard(&registry, self.target)
    }

    fn grace_over(&self) -> bool {
        self.waiting_for().is_none()
    }

    /// The value. Only called once the grace period is over.
    fn into_box(mut self) -> Box<T> {
        match self.ptr.take() {
            // SAFETY: from `Box::leak` in `Writer::swap` or `Writer::new`,
            // retired, and every online reader has reported a newer token
            // (or gone offline) since, so none holds it; `take` makes this
            // the only owner.
            Some(ptr) => unsafe { Box::from_raw(ptr.as_ptr()) },
            None => unreachable!("a Retired is reclaimed at most once"),
        }
    }

    /// The value if the grace period is over, else the handle back.
    pub fn try_reclaim(self) -> Result<Box<T>, Self> {
        if self.grace_over() {
            Ok(self.into_box())
        } else {
            Err(self)
        }
    }

    /// Wait until the grace period is over, however long, and return the
    /// value.
    pub fn reclaim(self) -> Box<T> {
        let mut backoff = Backoff::default();
        while !self.grace_over() {
            backoff.snooze();
        }
        self.into_box()
    }

    /// Wait at most about `timeout` for the grace period; on timeout the
    /// error names a reader that has not reported and gives the handle
    /// back.
    pub fn reclaim_within(self, timeout: Duration) -> Result<Box<T>, Stalled<T>> {
        let start = Instant::now();
        let mut backoff = Backoff::default();
        loop {
            match self.waiting_for() {
                None => return Ok(self.into_box()),
                Some(reader) => {
                    let waited = start.elapsed();
                    if waited >= timeout {
                        return Err(Stalled {
                            reader,
                            waited,
                            retired: self,
                        });
                    }
                }
            }
            backoff.snooze();
        }
    }
}

impl<T> Drop for Retired<T> {
    fn drop(&mut self) {
        if let Some(ptr) = self.ptr.take() {
            let mut registry = self.shared.registry();
            if self.shared.laggard(&registry, self.target).is_none() {
                drop(registry);
                // SAFETY: as in `into_box`: the grace period is over and
                // `take` made this the only owner.
                drop(unsafe { Box::from_raw(ptr.as_ptr()) });
            } else {
                registry.orphans.push(Orphan {
                    ptr,
                    target: self.target,
                });
            }
        }
    }
}

/// A grace period that did not end in time: which reader did not report.
pub struct Stalled<T> {
    /// A reader that has not passed a quiescent point since the swap.
    pub reader: ReaderInfo,
    /// How long the writer waited.
    pub waited: Duration,
    /// The old value, still retired: wait again with it, or drop it (it is
    /// then freed after its grace period by a later publication).
    pub retired: Retired<T>,
}

impl<T> fmt::Debug for Stalled<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stalled")
            .field("reader", &self.reader)
            .field("waited", &self.waited)
            .field("retired", &self.retired)
            .finish()
    }
}

impl<T> fmt::Display for Stalled<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "reader {} did not pass a quiescent point within {:?} of publication {}",
            self.reader,
            self.waited,
            self.retired.target - FIRST_TOKEN
        )
    }
}

impl<T> std::error::Error for Stalled<T> {}

/// The writer's wait: spin briefly (a worker loop is microseconds), then
/// yield, then sleep, doubling up to 1 ms, so a long grace period costs the
/// control thread little CPU. Under loom every step yields, so the model
/// checker schedules the readers being waited for.
#[derive(Default)]
struct Backoff {
    #[cfg_attr(loom, allow(dead_code))]
    step: u32,
}

#[cfg_attr(loom, allow(dead_code))]
impl Backoff {
    const SPIN_STEPS: u32 = 6;
    const YIELD_STEPS: u32 = 10;
    const FIRST_SLEEP: Duration = Duration::from_micros(10);
    const MAX_SLEEP: Duration = Duration::from_millis(1);

    fn snooze(&mut self) {
        #[cfg(loom)]
        loom::thread::yield_now();
        #[cfg(not(loom))]
        {
            if self.step < Self::SPIN_STEPS {
                for _ in 0..1u32 << self.step {
                    std::hint::spin_loop();
                }
            } else if self.step < Self::YIELD_STEPS {
                std::thread::yield_now();
            } else {
                let doublings = (self.step - Self::YIELD_STEPS).min(7);
                let sleep = Self::FIRST_SLEEP.saturating_mul(1 << doublings);
                std::thread::sleep(sleep.min(Self::MAX_SLEEP));
            }
            self.step = self.step.saturating_add(1);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize};

    /// A value that counts its drops, to prove every published value is
    /// freed exactly once.
    struct Counted {
        n: u32,
        drops: std::sync::Arc<AtomicUsize>,
    }

    impl Drop for Counted {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn counted(n: u32, drops: &std::sync::Arc<AtomicUsize>) -> Box<Counted> {
        Box::new(Counted {
            n,
            drops: drops.clone(),
        })
    }

    #[test]
    fn publish_returns_the_old_value_and_readers_move_at_quiescent_points() {
        let mut w = Writer::new(Box::new(1u32));
        let mut r = w.readers().register("worker 0");
        assert_eq!(*r.get(), 1);
        let retired = w.swap(Box::new(2));
        assert_eq!(*w.get(), 2);
        // The reader keeps its cached value until its quiescent point...
        assert_eq!(*r.get(), 1);
        let retired = match retired.try_reclaim() {
            Ok(_) => panic!("reclaimed while the reader may hold it"),
            Err(retired) => retired,
        };
        assert_eq!(retired.waiting_for(), Some(r.info().clone()));
        r.quiescent();
        // ...and reads the new one after it.
        assert_eq!(*r.get(), 2);
        assert_eq!(retired.waiting_for(), None);
        assert_eq!(retired.try_reclaim().ok().map(|b| *b), Some(1));
        assert_eq!(w.publications(), 1);
    }

    #[test]
    fn a_quiescent_point_with_nothing_published_changes_nothing() {
        let w = Writer::new(Box::new(7u32));
        let mut r = w.readers().register("worker 0");
        let before = r.get() as *const u32;
        r.quiescent();
        r.quiescent();
        assert_eq!(r.get() as *const u32, before);
        assert_eq!(r.seen, FIRST_TOKEN);
    }

    #[test]
    fn publish_within_names_the_reader_that_did_not_report() {
        let mut w = Writer::new(Box::new(1u32));
        let _quick = w.readers().register("worker 0");
        let mut quick = w.readers().register("worker 1");
        let mut stuck = w.readers().register("worker 7");
        quick.quiescent();
        drop(_quick);
        let err = match w.publish_within(Box::new(2), Duration::from_millis(2)) {
            Ok(_) => panic!("no reader passed a quiescent point"),
            Err(e) => e,
        };
        // worker 1 is online too, and first in the registry: it is named
        // until it reports.
        assert_eq!(&*err.reader.name, "worker 1");
        assert!(err.waited >= Duration::from_millis(2));
        quick.quiescent();
        let err = match err.retired.reclaim_within(Duration::from_millis(2)) {
            Ok(_) => panic!("worker 7 did not report"),
            Err(e) => e,
        };
        assert_eq!(&*err.reader.name, "worker 7");
        assert_eq!(err.reader.id, 2);
        let message = err.to_string();
        assert!(message.contains("\"worker 7\" (reader #2)"), "{message}");
        assert!(message.contains("publication 1"), "{message}");
        stuck.quiescent();
        let old = err.retired.reclaim_within(Duration::ZERO);
        assert_eq!(old.ok().map(|b| *b), Some(1));
    }

    #[test]
    fn offline_and_dropped_readers_are_not_waited_for() {
        let mut w = Writer::new(Box::new(1u32));
        let parked = w.readers().register("parked").offline();
        let gone = w.readers().register("gone");
        assert_eq!(w.registered(), 2);
        drop(gone);
        assert_eq!(w.registered(), 1);
        let old = w.swap(Box::new(2)).try_reclaim();
        assert_eq!(old.ok().map(|b| *b), Some(1));
        // Back online, it reads the newest value.
        let r = parked.online();
        assert_eq!(*r.get(), 2);
        let retired = w.swap(Box::new(3));
        assert!(retired.waiting_for().is_some());
        drop(r);
        assert_eq!(retired.try_reclaim().ok().map(|b| *b), Some(2));
    }

    #[test]
    fn offline_during_lets_the_writer_through_and_comes_back_current() {
        let mut w = Writer::new(Box::new(1u32));
        let mut r = w.readers().register("worker 0");
        let old = r.offline_during(|| w.publish(Box::new(2)));
        assert_eq!(*old, 1);
        assert_eq!(*r.get(), 2);
        // Online again: the writer waits for it.
        let retired = w.swap(Box::new(3));
        assert!(retired.waiting_for().is_some());
        r.quiescent();
        assert!(retired.try_reclaim().is_ok());
    }

    #[test]
    fn a_panic_inside_offline_during_brings_the_reader_back_online() {
        let mut w = Writer::new(Box::new(1u32));
        let mut r = w.readers().register("worker 0");
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            r.offline_during(|| {
                drop(w.publish(Box::new(2)));
                panic!("worker failed while parked");
            })
        }));
        assert!(caught.is_err());
        // Online again, with the value published while it was away.
        assert_eq!(*r.get(), 2);
        let retired = w.swap(Box::new(3));
        assert_eq!(retired.waiting_for(), Some(r.info().clone()));
        r.quiescent();
        assert!(retired.try_reclaim().is_ok());
    }

    #[test]
    fn readers_registered_after_publications_read_the_newest() {
        let mut w = Writer::new(Box::new(1u32));
        drop(w.publish(Box::new(2)));
        drop(w.publish(Box::new(3)));
        let r = w.readers().register("late");
        assert_eq!(*r.get(), 3);
        assert_eq!(r.seen, 3);
        assert_eq!(r.info().id, 0);
    }

    #[test]
    fn every_value_is_freed_exactly_once() {
        let drops = std::sync::Arc::new(AtomicUsize::new(0));
        let mut w = Writer::new(counted(1, &drops));
        let mut r = w.readers().register("worker 0");
        // Retired and reclaimed: freed by its new owner.
        let retired = w.swap(counted(2, &drops));
        r.quiescent();
        drop(retired.reclaim());
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        // Retired and dropped while the reader may hold it: an orphan, kept.
        drop(w.swap(counted(3, &drops)));
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        assert_eq!(r.get().n, 2);
        r.quiescent();
        assert_eq!(r.get().n, 3);
        // The next publication frees it, its grace period being over.
        let retired = w.swap(counted(4, &drops));
        assert_eq!(drops.load(Ordering::Relaxed), 2);
        // Retired and dropped after its grace period: freed at once.
        r.quiescent();
        drop(retired);
        assert_eq!(drops.load(Ordering::Relaxed), 3);
        // An orphan left when the domain goes, and the published value.
        drop(w.swap(counted(5, &drops)));
        drop(w);
        assert_eq!(drops.load(Ordering::Relaxed), 3);
        assert_eq!(r.get().n, 4);
        drop(r);
        assert_eq!(drops.load(Ordering::Relaxed), 5);
    }

    /// What the stress test publishes: two fields that must agree, and a
    /// mark the writer clears when it takes the value back (and then keeps
    /// the memory until the end, so the allocator cannot hand it out again
    /// and hide a read of a reclaimed value).
    struct Pair {
        a: u64,
        b: u64,
        alive: u64,
    }

    const ALIVE: u64 = 0x5eed_a11e_0000_0001;

    impl Pair {
        fn new(n: u64) -> Box<Self> {
            Box::new(Pair {
                a: n,
                b: !n,
                alive: ALIVE,
            })
        }

        /// Check the value, holding the reference a little while, as a
        /// burst of packets would.
        fn check(&self) -> u64 {
            let a = self.a;
            for _ in 0..64 {
                std::hint::spin_loop();
            }
            assert_eq!(self.alive, ALIVE, "read a reclaimed value");
            assert_eq!(a, !self.b, "read a torn value");
            a
        }
    }

    #[test]
    fn stress_many_publications_under_busy_readers() {
        const VERSIONS: u64 = 2_000;
        const READERS: usize = 3;
        let mut w = Writer::new(Pair::new(0));
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        // The writer starts once every reader runs its loop.
        let running = std::sync::Arc::new(std::sync::Barrier::new(READERS + 1));
        // The last version each reader read: the writer paces itself on
        // them, so readers hold each value while the next is published (on
        // a busy machine the writer could otherwise finish before they run).
        let seen: std::sync::Arc<[AtomicU64]> = (0..READERS).map(|_| AtomicU64::new(0)).collect();
        let workers: Vec<_> = (0..READERS)
            .map(|i| {
                let mut r = w.readers().register(&format!("worker {i}"));
                let stop = stop.clone();
                let running = running.clone();
                let seen = seen.clone();
                std::thread::spawn(move || {
                    running.wait();
                    let mut last = 0;
                    let mut loops = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let n = r.get().check();
                        assert!(n >= last, "went back from {last} to {n}");
                        last = n;
                        seen[i].store(n, Ordering::Relaxed);
                        loops += 1;
                        // Now and then a worker parks, as an idle one would.
                        if loops % 97 == i as u64 {
                            r.offline_during(std::thread::yield_now);
                        }
                        r.quiescent();
                    }
                    r.quiescent();
                    r.get().check()
                })
            })
            .collect();
        let mut reclaimed = Vec::new();
        running.wait();
        for n in 1..=VERSIONS {
            let old = if n % 2 == 0 {
                w.publish(Pair::new(n))
            } else {
                match w.publish_within(Pair::new(n), Duration::from_secs(60)) {
                    Ok(old) => old,
                    Err(e) => panic!("{e}"),
                }
            };
            let mut old = old;
            assert_eq!(old.check(), n - 1);
            old.alive = 0;
            reclaimed.push(old);
            // (A reader that failed its check stops reporting: stop waiting
            // then, its join below reports the failure.)
            while seen.iter().any(|s| s.load(Ordering::Relaxed) < n)
                && !workers.iter().any(|t| t.is_finished())
            {
                std::thread::yield_now();
            }
        }
        stop.store(true, Ordering::Relaxed);
        for t in workers {
            assert_eq!(t.join().unwrap(), VERSIONS);
        }
    }
}
