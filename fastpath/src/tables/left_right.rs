//! Two copies of a table: workers read one, the control thread updates the
//! other, and they trade places at each batch of updates.
//!
//! The published copy is immutable while workers read it, so readers need no
//! lock and no atomic operation: a [`Reader`] (from [`drivers::rcu`]) reads
//! it through a cached pointer and reports a quiescent point once per loop.
//! The writer keeps the *spare* copy. [`LeftRight::apply`] applies a batch of
//! operations to the spare, publishes it, takes the old copy back once every
//! worker has passed a quiescent point (the grace period, usually one worker
//! loop: microseconds), applies the same batch to it and keeps it as the
//! next spare. So each operation is applied twice, the memory is two copies,
//! and readers see each batch whole or not at all.
//!
//! The table type says how to apply one operation ([`Absorb::absorb`]) and
//! how much memory a copy takes ([`Absorb::memory_bytes`]); applying an
//! operation must be deterministic, so that both copies stay equal.
//!
//! ```
//! use fastpath::tables::{Absorb, LeftRight};
//!
//! #[derive(Clone, Default)]
//! struct Counts([u32; 4]);
//! #[derive(Clone)]
//! enum Op { Set(usize, u32) }
//!
//! impl Absorb<Op> for Counts {
//!     fn absorb(&mut self, op: &Op) {
//!         let Op::Set(i, v) = *op;
//!         if let Some(slot) = self.0.get_mut(i) {
//!             *slot = v;
//!         }
//!     }
//!     fn memory_bytes(&self) -> usize {
//!         std::mem::size_of::<Self>()
//!     }
//! }
//!
//! let mut tables = LeftRight::new(Counts::default());
//! let mut worker = tables.readers().register("worker 0");
//! tables.apply_within(&[Op::Set(0, 7), Op::Set(1, 7)], std::time::Duration::from_millis(1))
//!     .unwrap_err(); // the worker has not passed a quiescent point yet
//! worker.quiescent(); // once per worker loop
//! assert_eq!(worker.get().0, [7, 7, 0, 0]);
//! ```
//!
//! Why our own QSBR rather than the `left-right` crate: its readers announce
//! every read, storing an epoch and then executing a `SeqCst` fence (a full
//! barrier: `mfence` or a locked instruction on x86) when a read guard is
//! taken, and storing again when it is dropped. Ours read through a plain
//! cached pointer and pay one load per loop (one more load and one store
//! after a publication), no fence, because the router's workers already
//! have a natural quiescent point: the end of each burst.

use drivers::rcu::{Retired, Writer};
use std::time::{Duration, Instant};

pub use drivers::rcu::{OfflineReader, Reader, ReaderInfo, Readers};

/// A table that can apply operations of type `Op` to itself.
pub trait Absorb<Op> {
    /// Apply one operation. Must be deterministic: the two copies receive
    /// the same operations and must end up equal.
    fn absorb(&mut self, op: &Op);

    /// Bytes this copy holds (heap and inline), for the statistics.
    fn memory_bytes(&self) -> usize;
}

/// Publication statistics, for the run's report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishStats {
    /// Batches published.
    pub publications: u64,
    /// Operations applied (each counted once, though applied to both
    /// copies).
    pub ops: u64,
    /// Grace periods that ended (the old copy came back).
    pub grace_periods: u64,
    /// The last grace period: from publication until the old copy came back.
    pub last_grace: Duration,
    /// The longest grace period so far.
    pub max_grace: Duration,
    /// All grace periods added up (divide by `grace_periods` for the mean).
    pub total_grace: Duration,
    /// Waits that timed out in [`LeftRight::apply_within`].
    pub stalls: u64,
}

/// A failed [`LeftRight::apply_within`]: a worker did not pass a quiescent
/// point in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The previous batch's old copy is still not back, so this batch was
    /// not applied: nothing changed, call again with the same operations.
    #[error("batch not applied: reader {reader} has not passed a quiescent point {waited:?} after the previous publication")]
    NotApplied {
        /// A reader that has not reported.
        reader: ReaderInfo,
        /// Time since the previous publication.
        waited: Duration,
    },
    /// The batch is published (workers read it), but the old copy did not
    /// come back in time; the next call waits for it first.
    #[error(
        "batch published, but reader {reader} has not passed a quiescent point within {waited:?}"
    )]
    Lagging {
        /// A reader that has not reported.
        reader: ReaderInfo,
        /// How long the writer waited.
        waited: Duration,
    },
}

/// The spare copy, or what stands in for it while a grace period lasts.
enum Spare<T, Op> {
    /// Back and up to date with the published copy.
    Ready(Box<T>),
    /// Still retired: once back it needs `ops` (the batch published after
    /// it) to catch up.
    Lagging {
        retired: Retired<T>,
        ops: Vec<Op>,
        since: Instant,
        /// Its size when it was last published, for `memory_bytes`.
        bytes: usize,
    },
}

/// A table published to readers as immutable snapshots, updated in batches.
/// See the [module documentation](self).
pub struct LeftRight<T, Op> {
    writer: Writer<T>,
    /// `None` only if an `absorb` panicked in the middle of a call; the next
    /// call then rebuilds the spare from the published copy.
    spare: Option<Spare<T, Op>>,
    stats: PublishStats,
}

impl<T, Op> std::fmt::Debug for LeftRight<T, Op> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeftRight")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<T, Op> LeftRight<T, Op>
where
    T: Absorb<Op> + Clone + Send + Sync,
{
    /// Publish `initial`, keeping a clone of it as the spare.
    pub fn new(initial: T) -> Self {
        let spare = Box::new(initial.clone());
        LeftRight {
            writer: Writer::new(Box::new(initial)),
            spare: Some(Spare::Ready(spare)),
            stats: PublishStats::default(),
        }
    }

    /// Registers readers (one per worker), to hand to whoever starts them.
    pub fn readers(&self) -> Readers<T> {
        self.writer.readers()
    }

    /// The copy the workers read now.
    pub fn published(&self) -> &T {
        self.writer.get()
    }

    /// Publication statistics.
    pub fn stats(&self) -> PublishStats {
        self.stats
    }

    /// Memory of both copies, in bytes.
    pub fn memory_bytes(&self) -> usize {
        let spare = match &self.spare {
            Some(Spare::Ready(spare)) => spare.memory_bytes(),
            Some(Spare::Lagging { bytes, .. }) => *bytes,
            None => 0,
        };
        self.writer.get().memory_bytes() + spare
    }

    /// Apply `ops` and publish them as one batch, waiting as long as the
    /// workers take to pass a quiescent point (see
    /// [`LeftRight::apply_within`] for a bounded wait).
    pub fn apply(&mut self, ops: &[Op]) {
        let spare = match self.spare.take() {
            Some(Spare::Ready(spare)) => spare,
            Some(Spare::Lagging {
                retired,
                ops: pending,
                since,
                ..
            }) => self.came_back(retired.reclaim(), since, &pending),
            None => self.rebuilt_spare(),
        };
        let (retired, since) = self.publish(spare, ops);
        let old = self.came_back(retired.reclaim(), since, ops);
        self.spare = Some(Spare::Ready(old));
    }

    /// Apply `ops` and publish them as one batch, waiting at most about
    /// `timeout` for each grace period (the previous batch's, if it was not
    /// over, then this one's). On error the variant says whether the batch
    /// was published.
    pub fn apply_within(&mut self, ops: &[Op], timeout: Duration) -> Result<(), ApplyError>
    where
        Op: Clone,
    {
        let spare = match self.spare.take() {
            Some(Spare::Ready(spare)) => spare,
            Some(Spare::Lagging {
                retired,
                ops: pending,
                since,
                bytes,
            }) => match retired.reclaim_within(timeout) {
                Ok(old) => self.came_back(old, since, &pending),
                Err(stalled) => {
                    self.stats.stalls += 1;
                    self.spare = Some(Spare::Lagging {
                        retired: stalled.retired,
                        ops: pending,
                        since,
                        bytes,
                    });
                    return Err(ApplyError::NotApplied {
                        reader: stalled.reader,
                        waited: since.elapsed(),
                    });
                }
            },
            None => self.rebuilt_spare(),
        };
        let bytes = self.writer.get().memory_bytes();
        let (retired, since) = self.publish(spare, ops);
        match retired.reclaim_within(timeout) {
            Ok(old) => {
                let old = self.came_back(old, since, ops);
                self.spare = Some(Spare::Ready(old));
                Ok(())
            }
            Err(stalled) => {
                self.stats.stalls += 1;
                self.spare = Some(Spare::Lagging {
                    retired: stalled.retired,
                    ops: ops.to_vec(),
                    since,
                    bytes,
                });
                Err(ApplyError::Lagging {
                    reader: stalled.reader,
                    waited: stalled.waited,
                })
            }
        }
    }

    /// Apply `ops` to the spare and publish it; returns the old copy,
    /// retired, and when.
    fn publish(&mut self, mut spare: Box<T>, ops: &[Op]) -> (Retired<T>, Instant) {
        for op in ops {
            spare.absorb(op);
        }
        let retired = self.writer.swap(spare);
        let since = Instant::now();
        self.stats.publications += 1;
        self.stats.ops += ops.len() as u64;
        (retired, since)
    }

    /// The old copy is back (its grace period, started at `since`, is
    /// over): bring it up to date with `ops`, the batch published over it.
    fn came_back(&mut self, mut old: Box<T>, since: Instant, ops: &[Op]) -> Box<T> {
        self.record_grace(since.elapsed());
        for op in ops {
            old.absorb(op);
        }
        old
    }

    /// A spare rebuilt from the published copy, after an `absorb` panicked
    /// and took the spare with it.
    fn rebuilt_spare(&self) -> Box<T> {
        Box::new(self.writer.get().clone())
    }

    fn record_grace(&mut self, grace: Duration) {
        let s = &mut self.stats;
        s.grace_periods += 1;
        s.last_grace = grace;
        s.max_grace = s.max_grace.max(grace);
        s.total_grace = s.total_grace.saturating_add(grace);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    /// A small table: a map, as a route table would be.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    struct Map(BTreeMap<u8, u32>);

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Op {
        Insert(u8, u32),
        Remove(u8),
        /// Makes `absorb` panic, as a bug in a table's update would.
        Bug,
    }

    impl Absorb<Op> for Map {
        fn absorb(&mut self, op: &Op) {
            match *op {
                Op::Insert(k, v) => {
                    self.0.insert(k, v);
                }
                Op::Remove(k) => {
                    self.0.remove(&k);
                }
                Op::Bug => panic!("a table update failed"),
            }
        }

        fn memory_bytes(&self) -> usize {
            std::mem::size_of::<Self>() + self.0.len() * std::mem::size_of::<(u8, u32)>()
        }
    }

    fn map(entries: &[(u8, u32)]) -> Map {
        Map(entries.iter().copied().collect())
    }

    /// The spare copy, when it is back.
    fn spare<T, Op>(lr: &LeftRight<T, Op>) -> Option<&T> {
        match &lr.spare {
            Some(Spare::Ready(spare)) => Some(spare),
            _ => None,
        }
    }

    #[test]
    fn apply_publishes_the_batch_and_keeps_both_copies_equal() {
        let mut lr = LeftRight::new(map(&[(1, 10)]));
        let mut r = lr.readers().register("worker 0");
        let worker = std::thread::spawn(move || {
            while r.get().0.get(&2) != Some(&20) {
                r.quiescent();
            }
            r.get().clone()
        });
        lr.apply(&[Op::Insert(2, 20), Op::Remove(1)]);
        assert_eq!(*lr.published(), map(&[(2, 20)]));
        assert_eq!(spare(&lr), Some(&map(&[(2, 20)])));
        assert_eq!(worker.join().unwrap(), map(&[(2, 20)]));
        lr.apply(&[Op::Insert(3, 30)]);
        assert_eq!(*lr.published(), map(&[(2, 20), (3, 30)]));
        assert_eq!(spare(&lr), Some(lr.published()));
    }

    #[test]
    fn stats_and_memory_count_publications_and_both_copies() {
        let mut lr = LeftRight::new(Map::default());
        assert_eq!(lr.stats(), PublishStats::default());
        let empty = std::mem::size_of::<Map>();
        assert_eq!(lr.memory_bytes(), 2 * empty);
        lr.apply(&[Op::Insert(1, 1), Op::Insert(2, 2), Op::Insert(3, 3)]);
        lr.apply(&[Op::Remove(3)]);
        let stats = lr.stats();
        assert_eq!(stats.publications, 2);
        assert_eq!(stats.ops, 4);
        assert_eq!(stats.grace_periods, 2);
        assert_eq!(stats.stalls, 0);
        assert!(stats.max_grace >= stats.last_grace);
        assert!(stats.total_grace >= stats.max_grace);
        let two_entries = empty + 2 * std::mem::size_of::<(u8, u32)>();
        assert_eq!(lr.memory_bytes(), 2 * two_entries);
    }

    #[test]
    fn a_stuck_reader_delays_batches_without_losing_them() {
        let mut lr = LeftRight::new(map(&[(1, 1)]));
        let mut r = lr.readers().register("worker 3");
        let timeout = Duration::from_millis(1);
        // Published, but the old copy stays out while worker 3 holds it.
        match lr.apply_within(&[Op::Insert(2, 2)], timeout) {
            Err(ApplyError::Lagging { reader, waited }) => {
                assert_eq!(&*reader.name, "worker 3");
                assert!(waited >= timeout);
            }
            other => panic!("expected Lagging, got {other:?}"),
        }
        assert_eq!(*lr.published(), map(&[(1, 1), (2, 2)]));
        assert_eq!(*r.get(), map(&[(1, 1)]));
        // Both copies are the published one plus the lagging one.
        assert_eq!(
            lr.memory_bytes(),
            lr.published().memory_bytes() + map(&[(1, 1)]).memory_bytes()
        );
        // The next batch cannot be applied: nothing changes.
        let err = lr.apply_within(&[Op::Remove(1)], timeout).unwrap_err();
        assert!(matches!(err, ApplyError::NotApplied { .. }), "{err}");
        assert!(err.to_string().contains("\"worker 3\""), "{err}");
        assert_eq!(*lr.published(), map(&[(1, 1), (2, 2)]));
        assert_eq!(lr.stats().stalls, 2);
        assert_eq!(lr.stats().publications, 1);
        // Once the worker reports, the old copy catches up and the batch
        // goes through.
        r.quiescent();
        assert_eq!(*r.get(), map(&[(1, 1), (2, 2)]));
        let worker = std::thread::spawn(move || {
            while r.get().0.contains_key(&1) {
                r.quiescent();
            }
            r
        });
        assert_eq!(
            lr.apply_within(&[Op::Remove(1)], Duration::from_secs(60)),
            Ok(())
        );
        assert_eq!(*lr.published(), map(&[(2, 2)]));
        assert_eq!(spare(&lr), Some(lr.published()));
        let r = worker.join().unwrap();
        // A blocking apply after a lag works too.
        let mut r = r;
        let err = lr.apply_within(&[Op::Insert(4, 4)], timeout).unwrap_err();
        assert!(matches!(err, ApplyError::Lagging { .. }), "{err}");
        let worker = std::thread::spawn(move || {
            while !r.get().0.contains_key(&5) {
                r.quiescent();
            }
        });
        lr.apply(&[Op::Insert(5, 5)]);
        worker.join().unwrap();
        assert_eq!(*lr.published(), map(&[(2, 2), (4, 4), (5, 5)]));
        assert_eq!(spare(&lr), Some(lr.published()));
        assert_eq!(lr.stats().grace_periods, 4);
    }

    #[test]
    fn a_panicking_update_leaves_the_published_copy_whole() {
        let mut lr = LeftRight::new(map(&[(1, 1)]));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            lr.apply(&[Op::Insert(2, 2), Op::Bug]);
        }));
        assert!(caught.is_err());
        // The half-applied spare was never published, and is gone.
        assert_eq!(*lr.published(), map(&[(1, 1)]));
        assert_eq!(spare(&lr), None);
        // The next batch starts from a copy of the published one.
        lr.apply(&[Op::Insert(3, 3)]);
        assert_eq!(*lr.published(), map(&[(1, 1), (3, 3)]));
        assert_eq!(spare(&lr), Some(lr.published()));
    }

    /// A table of lanes that every batch sets to the same number: a reader
    /// that ever sees two different numbers saw half a batch.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Lanes([u64; 8]);

    impl Absorb<(usize, u64)> for Lanes {
        fn absorb(&mut self, &(lane, n): &(usize, u64)) {
            if let Some(l) = self.0.get_mut(lane) {
                *l = n;
            }
        }

        fn memory_bytes(&self) -> usize {
            std::mem::size_of::<Self>()
        }
    }

    #[test]
    fn a_reader_sees_each_batch_whole_and_within_milliseconds() {
        const BATCHES: u64 = 300;
        let mut lr = LeftRight::new(Lanes([0; 8]));
        let mut r = lr.readers().register("worker 0");
        let seen = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut last = 0;
                while !stop.load(Ordering::Relaxed) {
                    let lanes = &r.get().0;
                    let n = lanes[0];
                    assert!(lanes.iter().all(|&l| l == n), "half a batch: {lanes:?}");
                    assert!(n >= last, "went back from {last} to {n}");
                    last = n;
                    seen.store(n, Ordering::Release);
                    r.quiescent();
                }
            })
        };
        let mut slowest = Duration::ZERO;
        for n in 1..=BATCHES {
            let start = Instant::now();
            let batch: Vec<(usize, u64)> = (0..8).map(|lane| (lane, n)).collect();
            lr.apply(&batch);
            // `apply` returned, so the worker passed a quiescent point after
            // the publication: its next loop reads batch n.
            while seen.load(Ordering::Acquire) < n && !worker.is_finished() {
                std::thread::yield_now();
            }
            slowest = slowest.max(start.elapsed());
        }
        stop.store(true, Ordering::Relaxed);
        worker.join().unwrap();
        assert_eq!(seen.load(Ordering::Acquire), BATCHES);
        let stats = lr.stats();
        assert_eq!(stats.grace_periods, BATCHES);
        // Figures for the report, not asserted (a busy machine).
        println!(
            "{BATCHES} batches: slowest apply-to-seen {slowest:?}, grace periods: max {:?}, mean {:?}",
            stats.max_grace,
            stats.total_grace / BATCHES as u32
        );
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..16, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            (0u8..16).prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// Whatever the batches, both copies end equal to the operations
        /// applied in order to one plain map.
        #[test]
        fn both_copies_agree_with_a_plain_map(
            batches in proptest::collection::vec(proptest::collection::vec(op(), 0..8), 0..12)
        ) {
            let mut lr = LeftRight::new(Map::default());
            let mut reference = Map::default();
            for batch in &batches {
                lr.apply(batch);
                for op in batch {
                    reference.absorb(op);
                }
                prop_assert_eq!(lr.published(), &reference);
                prop_assert_eq!(spare(&lr), Some(&reference));
            }
        }
    }
}
