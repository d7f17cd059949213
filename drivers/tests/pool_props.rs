//! Property tests of `drivers::pool`: pools, per-core caches and the
//! registry that brings every buffer home.
//!
//! Pools here use `MemoryBacking::NoHuge` (no hugepages needed) and are
//! small, so the whole file runs in a few seconds in a debug build. Pools
//! are not compiled under `--cfg loom`, so neither is this file.
#![cfg(not(loom))]

use arrayvec::ArrayVec;
use drivers::mbuf::Mbuf;
use drivers::memory::MemoryBacking;
use drivers::pool::{Pool, PoolCache, PoolConfig};
use proptest::prelude::*;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

const HEADROOM: u16 = 64;

fn pool(name: &str, count: u32, cache_size: usize) -> Pool {
    let mut cfg = PoolConfig::new(name, count).with_backing(MemoryBacking::NoHuge);
    cfg.cache_size = cache_size;
    // Small elements: less memory to map and zero per case.
    cfg.data_room = 256;
    cfg.headroom = HEADROOM;
    Pool::new(&cfg).expect("a small 4K-page pool")
}

/// Most buffers a cache may hold right after a free: it spills down to its
/// size once it reaches 1.5 x size (at least 1).
fn max_after_free(cache_size: usize) -> usize {
    ((cache_size * 3 / 2).max(1) - 1).max(cache_size)
}

fn assert_fresh(m: &Mbuf) {
    assert!(m.is_empty(), "allocated buffer not reset: {m:?}");
    assert_eq!(
        m.headroom(),
        HEADROOM as usize,
        "allocated buffer not reset"
    );
}

// ---------------------------------------------------------------------------
// One thread, one pool, 1-3 caches: accounting and exclusivity at every step.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    /// `PoolCache::alloc` on cache `c`.
    Alloc { c: usize },
    /// `PoolCache::alloc_bulk` of `n` on cache `c`.
    AllocBulk { c: usize, n: usize },
    /// `PoolCache::free` of held buffer `pick` (modulo) into cache `c`.
    Free { c: usize, pick: usize },
    /// `PoolCache::free_bulk` of up to `n` held buffers from `pick` on.
    FreeBulk { c: usize, pick: usize, n: usize },
    /// Drop cache `c` (its buffers go back to the ring).
    DropCache { c: usize },
    /// Make cache `c` if it is gone.
    NewCache { c: usize },
    /// `Pool::alloc`.
    PoolAlloc,
    /// `Pool::free` of held buffer `pick`.
    PoolFree { pick: usize },
    /// Drop held buffer `pick` (home through the registry).
    DropHeld { pick: usize },
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0usize..3;
    prop_oneof![
        4 => c.clone().prop_map(|c| Op::Alloc { c }),
        3 => (c.clone(), 0usize..48).prop_map(|(c, n)| Op::AllocBulk { c, n }),
        4 => (c.clone(), any::<usize>()).prop_map(|(c, pick)| Op::Free { c, pick }),
        3 => (c.clone(), any::<usize>(), 0usize..48)
            .prop_map(|(c, pick, n)| Op::FreeBulk { c, pick, n }),
        1 => c.clone().prop_map(|c| Op::DropCache { c }),
        1 => c.prop_map(|c| Op::NewCache { c }),
        1 => Just(Op::PoolAlloc),
        1 => any::<usize>().prop_map(|pick| Op::PoolFree { pick }),
        1 => any::<usize>().prop_map(|pick| Op::DropHeld { pick }),
    ]
}

/// Buffers held by the test, with the set of their indices.
#[derive(Default)]
struct Held {
    bufs: Vec<Mbuf>,
    ids: HashSet<u32>,
}

impl Held {
    fn take(&mut self, m: Mbuf) {
        assert_fresh(&m);
        assert!(
            self.ids.insert(m.index()),
            "buffer {} handed out while already held",
            m.index()
        );
        self.bufs.push(m);
    }

    fn give(&mut self, pick: usize) -> Option<Mbuf> {
        if self.bufs.is_empty() {
            return None;
        }
        let m = self.bufs.swap_remove(pick % self.bufs.len());
        assert!(self.ids.remove(&m.index()));
        Some(m)
    }
}

fn cached(caches: &[Option<PoolCache>]) -> usize {
    caches.iter().flatten().map(PoolCache::len).sum()
}

fn run_ops(count: u32, cache_size: usize, ncaches: usize, ops: &[Op]) {
    let pool = pool("props", count, cache_size);
    let count = count as usize;
    let mut caches: Vec<Option<PoolCache>> = (0..ncaches).map(|_| Some(pool.cache())).collect();
    let mut held = Held::default();
    let accounted = |held: &Held, caches: &[Option<PoolCache>]| {
        held.bufs.len() + cached(caches) + pool.available()
    };

    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Alloc { c } => {
                if let Some(cache) = caches[c % ncaches].as_mut() {
                    let could = cache.len() + pool.available() > 0;
                    match cache.alloc() {
                        Some(m) => held.take(m),
                        None => assert!(!could, "step {step}: alloc failed with buffers free"),
                    }
                }
            }
            Op::AllocBulk { c, n } => {
                if let Some(cache) = caches[c % ncaches].as_mut() {
                    let could = n <= cache.len() + pool.available();
                    let mut out: ArrayVec<Mbuf, 64> = ArrayVec::new();
                    let ok = cache.alloc_bulk(&mut out, n);
                    assert_eq!(ok, could, "step {step}: alloc_bulk({n})");
                    assert_eq!(out.len(), if ok { n } else { 0 }, "all or nothing");
                    for m in out {
                        held.take(m);
                    }
                }
            }
            Op::Free { c, pick } => {
                if let Some(cache) = caches[c % ncaches].as_mut() {
                    if let Some(m) = held.give(pick) {
                        cache.free(m);
                        assert!(cache.len() <= max_after_free(cache_size));
                    }
                }
            }
            Op::FreeBulk { c, pick, n } => {
                if let Some(cache) = caches[c % ncaches].as_mut() {
                    let mut bufs: ArrayVec<Mbuf, 64> = ArrayVec::new();
                    while bufs.len() < n {
                        match held.give(pick.wrapping_add(bufs.len())) {
                            Some(m) => bufs.push(m),
                            None => break,
                        }
                    }
                    cache.free_bulk(&mut bufs);
                    assert!(bufs.is_empty());
                    assert!(cache.len() <= max_after_free(cache_size));
                }
            }
            Op::DropCache { c } => {
                if let Some(cache) = caches[c % ncaches].take() {
                    let (had, before) = (cache.len(), pool.available());
                    drop(cache);
                    assert_eq!(pool.available(), before + had, "dropped cache returned all");
                }
            }
            Op::NewCache { c } => {
                let slot = &mut caches[c % ncaches];
                if slot.is_none() {
                    *slot = Some(pool.cache());
                }
            }
            Op::PoolAlloc => {
                let could = pool.available() > 0;
                match pool.alloc() {
                    Some(m) => held.take(m),
                    None => assert!(!could, "step {step}: Pool::alloc failed with buffers free"),
                }
            }
            Op::PoolFree { pick } => {
                if let Some(m) = held.give(pick) {
                    pool.free(m);
                }
            }
            Op::DropHeld { pick } => drop(held.give(pick)),
        }
        assert_eq!(
            accounted(&held, &caches),
            count,
            "step {step} ({op:?}): held + cached + available"
        );
    }

    drop(held);
    drop(caches);
    assert_eq!(pool.available(), count, "every buffer back in the ring");
    // And they are all distinct: take them all out again.
    let all: Vec<Mbuf> = std::iter::from_fn(|| pool.alloc()).collect();
    let ids: HashSet<u32> = all.iter().map(Mbuf::index).collect();
    assert_eq!(ids.len(), count);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random sequences of cache and pool operations on one pool: no buffer
    /// is held twice, held + cached + available == count after every step,
    /// allocation fails only when nothing is free, bulk allocation is all or
    /// nothing, and everything is back at the end.
    #[test]
    fn cache_ops_keep_every_buffer_accounted(
        count in 1u32..300,
        cache_size in 0usize..64,
        ncaches in 1usize..=3,
        ops in prop::collection::vec(op(), 1..200),
    ) {
        run_ops(count, cache_size, ncaches, &ops);
    }
}

// ---------------------------------------------------------------------------
// Several threads, each with its own cache, passing buffers to each other.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum ThreadOp {
    /// Allocate a burst of `n` (bulk, or one by one when `one_by_one`).
    Alloc { n: usize, one_by_one: bool },
    /// Free up to `n` held buffers into this thread's cache.
    Free { n: usize },
    /// Send up to `n` held buffers to the next thread.
    Send { n: usize },
    /// Free into the own cache whatever other threads sent so far.
    Receive,
}

fn thread_op() -> impl Strategy<Value = ThreadOp> {
    prop_oneof![
        3 => (1usize..40, any::<bool>()).prop_map(|(n, one_by_one)| ThreadOp::Alloc { n, one_by_one }),
        2 => (1usize..40).prop_map(|n| ThreadOp::Free { n }),
        2 => (1usize..40).prop_map(|n| ThreadOp::Send { n }),
        1 => Just(ThreadOp::Receive),
    ]
}

/// Which buffers are out of the pool and its caches, held by some thread
/// (or in flight in a channel). A buffer is marked when it is allocated and
/// cleared right before it is freed, so a second hand-out of a buffer still
/// held somewhere trips the check.
struct Owners(Vec<AtomicBool>);

impl Owners {
    fn acquire(&self, m: &Mbuf) {
        assert!(
            !self.0[m.index() as usize].swap(true, Ordering::SeqCst),
            "buffer {} handed out while held by another thread",
            m.index()
        );
    }

    fn release(&self, m: &Mbuf) {
        assert!(
            self.0[m.index() as usize].swap(false, Ordering::SeqCst),
            "buffer {} freed while not held",
            m.index()
        );
    }
}

fn worker(
    pool: Pool,
    owners: Arc<Owners>,
    ops: Vec<ThreadOp>,
    to_next: mpsc::Sender<Mbuf>,
    from_prev: mpsc::Receiver<Mbuf>,
) {
    let mut cache = pool.cache();
    let mut held: Vec<Mbuf> = Vec::new();
    let free_into = |cache: &mut PoolCache, m: Mbuf| {
        owners.release(&m);
        cache.free(m);
    };
    for op in ops {
        match op {
            ThreadOp::Alloc { n, one_by_one } => {
                if one_by_one {
                    for _ in 0..n {
                        let Some(m) = cache.alloc() else { break };
                        owners.acquire(&m);
                        held.push(m);
                    }
                } else {
                    let mut out: ArrayVec<Mbuf, 64> = ArrayVec::new();
                    if cache.alloc_bulk(&mut out, n) {
                        assert_eq!(out.len(), n);
                    } else {
                        assert!(out.is_empty(), "failed bulk alloc handed out buffers");
                    }
                    for m in out {
                        owners.acquire(&m);
                        held.push(m);
                    }
                }
            }
            ThreadOp::Free { n } => {
                let from = held.len().saturating_sub(n);
                let mut bufs: ArrayVec<Mbuf, 64> = ArrayVec::new();
                for m in held.drain(from..) {
                    owners.release(&m);
                    bufs.push(m);
                }
                cache.free_bulk(&mut bufs);
                assert!(bufs.is_empty());
            }
            ThreadOp::Send { n } => {
                let from = held.len().saturating_sub(n);
                for m in held.drain(from..) {
                    // Still held (in flight): the flag stays set.
                    to_next
                        .send(m)
                        .expect("the next thread receives until all senders are gone");
                }
            }
            ThreadOp::Receive => {
                for m in from_prev.try_iter() {
                    free_into(&mut cache, m);
                }
            }
        }
    }
    drop(to_next);
    // Every thread drops its sender when done, so this ends.
    for m in from_prev.iter() {
        free_into(&mut cache, m);
    }
    for m in held.drain(..) {
        free_into(&mut cache, m);
    }
}

fn run_threads(count: u32, cache_size: usize, plans: Vec<Vec<ThreadOp>>) {
    let pool = pool("threads", count, cache_size);
    let owners = Arc::new(Owners((0..count).map(|_| AtomicBool::new(false)).collect()));
    let n = plans.len();
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..n).map(|_| mpsc::channel()).unzip();
    // Thread i sends to thread i + 1 (mod n).
    let mut senders: Vec<Option<mpsc::Sender<Mbuf>>> = senders.into_iter().map(Some).collect();
    senders.rotate_left(1);
    let handles: Vec<_> = plans
        .into_iter()
        .zip(senders)
        .zip(receivers)
        .map(|((ops, tx), rx)| {
            let pool = pool.clone();
            let owners = Arc::clone(&owners);
            let tx = tx.expect("one sender per thread");
            std::thread::spawn(move || worker(pool, owners, ops, tx, rx))
        })
        .collect();
    for h in handles {
        h.join().expect("worker panicked");
    }
    assert_eq!(pool.available(), count as usize, "every buffer back");
    assert!(
        owners.0.iter().all(|o| !o.load(Ordering::SeqCst)),
        "a buffer is still marked held"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// 2-4 threads with their own caches allocate and free bursts and pass
    /// buffers along a ring of channels, where the receiver frees them into
    /// its own cache: no buffer is ever held by two threads at once, and all
    /// are back in the pool at the end.
    #[test]
    fn threads_passing_buffers_lose_and_duplicate_none(
        count in 1u32..300,
        cache_size in 0usize..64,
        plans in prop::collection::vec(prop::collection::vec(thread_op(), 1..60), 2..=4),
    ) {
        run_threads(count, cache_size, plans);
    }
}

// ---------------------------------------------------------------------------
// Buffers of one pool freed through another pool's cache go home.
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Buffers of pools A and B, mixed, freed one by one, in bulk, or with
    /// `Pool::free` through A's cache or pool handle: B's come back to B
    /// (never into A's cache), A's to A, and at the end both pools are full.
    #[test]
    fn foreign_buffers_go_home(
        count_a in 1u32..100,
        count_b in 1u32..100,
        cache_size in 0usize..32,
        picks in prop::collection::vec((any::<bool>(), 0u8..3), 1..80),
    ) {
        let a = pool("home-a", count_a, cache_size);
        let b = pool("home-b", count_b, cache_size);
        let mut cache_a = a.cache();
        let mut bulk: ArrayVec<Mbuf, 128> = ArrayVec::new();
        for (from_b, how) in picks {
            let Some(m) = (if from_b { b.alloc() } else { a.alloc() }) else {
                continue;
            };
            let id = m.pool_id();
            prop_assert_eq!(id, if from_b { b.id() } else { a.id() });
            let (b_before, a_cached) = (b.available(), cache_a.len());
            match how {
                0 => cache_a.free(m),
                1 => a.free(m),
                _ => {
                    bulk.push(m);
                    continue;
                }
            }
            if from_b {
                prop_assert_eq!(b.available(), b_before + 1, "B's buffer went home");
                prop_assert_eq!(cache_a.len(), a_cached, "not into A's cache");
            }
            prop_assert_eq!(
                a.available() + cache_a.len() + bulk.iter().filter(|m| m.pool_id() == a.id()).count(),
                a.count()
            );
        }
        let b_in_bulk = bulk.iter().filter(|m| m.pool_id() == b.id()).count();
        let b_before = b.available();
        cache_a.free_bulk(&mut bulk);
        prop_assert!(bulk.is_empty());
        prop_assert_eq!(b.available(), b_before + b_in_bulk);
        prop_assert_eq!(b.available(), b.count());
        drop(cache_a);
        prop_assert_eq!(a.available(), a.count());
    }
}
