//! Model checking of `drivers::rcu` (QSBR publication) with loom.
//!
//! Run with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p drivers --test loom_rcu --release
//! ```
//!
//! The published values are [`Version`]s whose number lives in a
//! `loom::cell::UnsafeCell`. Readers read it through that cell, and the
//! writer *poisons* every value it takes back (a write through the same
//! cell) and keeps it allocated until the threads are joined. Loom tracks
//! the cell's accesses, so if a reader's read is not ordered before the
//! writer's poisoning (the writer got the value back before the reader's
//! quiescent point), loom reports a causality violation; and a reader that
//! sees the poison fails its assertion. Values the domain frees itself
//! (orphans, the last published one) poison in `Drop`, so those frees are
//! checked the same way.
//!
//! No test thread spins: readers do a fixed number of steps, and the only
//! waiting loop is the writer's grace-period wait, which yields under loom.
#![cfg(loom)]

use drivers::rcu::{Reader, Writer};
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;

mod loom_model;
use loom_model::check;

/// Preemption bound used unless `LOOM_MAX_PREEMPTIONS` says otherwise.
const PREEMPTIONS: usize = 3;
/// The number a value holds once the writer has taken it back.
const POISON: u32 = u32::MAX;

/// A published value: its version number, in a cell loom watches.
struct Version {
    n: UnsafeCell<u32>,
}

// SAFETY: every access to `n` goes through loom's cell, which reports any
// pair of accesses from two threads that are not ordered by happens-before;
// proving that readers and the writer's poisoning are ordered is the point
// of these tests.
unsafe impl Sync for Version {}

impl Version {
    fn boxed(n: u32) -> Box<Self> {
        Box::new(Version {
            n: UnsafeCell::new(n),
        })
    }

    /// What a reader sees; never the poison.
    fn read(&self) -> u32 {
        // SAFETY: a shared read; loom checks it against the poisoning write.
        let n = self.n.with(|p| unsafe { *p });
        assert_ne!(n, POISON, "a reader saw a value the writer took back");
        n
    }

    /// The writer's mark on a value it took back.
    fn poison(&mut self) {
        // SAFETY: `&mut self`; loom checks this write against readers' reads.
        self.n.with_mut(|p| unsafe { *p = POISON });
    }
}

impl Drop for Version {
    fn drop(&mut self) {
        self.poison();
    }
}

/// A worker's two loops: read, pass a quiescent point, read again; the
/// version never goes back.
fn two_loops(r: &mut Reader<Version>) {
    let a = r.get().read();
    r.quiescent();
    let b = r.get().read();
    assert!(a <= b, "went back from {a} to {b}");
}

/// A reader reads, passes a quiescent point, reads again while the writer
/// publishes once and poisons what it gets back.
#[test]
fn reader_never_sees_reclaimed_value() {
    check(PREEMPTIONS, || {
        let mut w = Writer::new(Version::boxed(1));
        let mut r = w.readers().register("worker");
        let t = thread::spawn(move || {
            two_loops(&mut r);
        });
        let mut old = w.publish(Version::boxed(2));
        old.poison();
        t.join().unwrap();
        assert_eq!(w.get().read(), 2);
    });
}

/// The writer gets the old value back only after the reader's quiescent
/// point (or its drop, which also reports): what the reader did before it
/// is visible to the writer once `publish` returns.
#[test]
fn old_value_back_only_after_quiescent_point() {
    check(PREEMPTIONS, || {
        let mut w = Writer::new(Version::boxed(1));
        let mut r = w.readers().register("worker");
        let done_reading = Arc::new(AtomicBool::new(false));
        let flag = done_reading.clone();
        let t = thread::spawn(move || {
            r.get().read();
            // Relaxed on purpose: only the domain's own synchronisation may
            // make this store visible to the writer.
            flag.store(true, Ordering::Relaxed);
            r.quiescent();
            r.get().read();
        });
        let old = w.publish(Version::boxed(2));
        assert!(
            done_reading.load(Ordering::Relaxed),
            "publish returned before the reader's quiescent point"
        );
        drop(old);
        t.join().unwrap();
    });
}

/// An offline reader never holds the writer up; one going offline and back
/// online around the publication reads a live value.
#[test]
fn offline_readers_do_not_block() {
    check(PREEMPTIONS, || {
        let mut w = Writer::new(Version::boxed(1));
        let parked = w.readers().register("parked").offline();
        let r = w.readers().register("worker");
        let t = thread::spawn(move || {
            let off = r.offline();
            let mut r = off.online();
            let a = r.get().read();
            r.offline_during(|| ());
            let b = r.get().read();
            assert!(a <= b, "went back from {a} to {b}");
            r
        });
        let retired = w.swap(Version::boxed(2));
        let r = t.join().unwrap();
        // The worker is online and may still read the old value: only its
        // quiescent point ends the grace period; `parked` never counts.
        let retired = match retired.try_reclaim() {
            Ok(old) => {
                // Fine only if the worker already reads the new value.
                assert_eq!(r.get().read(), 2);
                drop(old);
                None
            }
            Err(retired) => Some(retired),
        };
        let mut r = r;
        r.quiescent();
        if let Some(retired) = retired {
            let mut old = match retired.try_reclaim() {
                Ok(old) => old,
                Err(_) => panic!("an offline reader held the writer up"),
            };
            old.poison();
        }
        drop(parked);
    });
}

/// Two publications in a row, each value poisoned when taken back, while a
/// reader goes through three loops.
#[test]
fn two_publications_in_a_row() {
    check(2, || {
        let mut w = Writer::new(Version::boxed(1));
        let mut r = w.readers().register("worker");
        let t = thread::spawn(move || {
            let a = r.get().read();
            r.quiescent();
            let b = r.get().read();
            r.quiescent();
            let c = r.get().read();
            assert!(a <= b && b <= c, "not monotonic: {a} {b} {c}");
        });
        let mut first = w.publish(Version::boxed(2));
        first.poison();
        let mut second = w.publish(Version::boxed(3));
        second.poison();
        t.join().unwrap();
    });
}

/// Two readers on their own threads, one publication.
#[test]
fn two_readers() {
    check(2, || {
        let mut w = Writer::new(Version::boxed(1));
        let readers = [w.readers().register("a"), w.readers().register("b")];
        let threads = readers.map(|mut r| {
            thread::spawn(move || {
                two_loops(&mut r);
            })
        });
        let mut old = w.publish(Version::boxed(2));
        old.poison();
        for t in threads {
            t.join().unwrap();
        }
    });
}

/// A reader that registers while the writer publishes (the store-then-load
/// race on both sides that the `SeqCst` fences settle).
#[test]
fn reader_registered_during_publication() {
    check(PREEMPTIONS, || {
        let mut w = Writer::new(Version::boxed(1));
        let readers = w.readers();
        let t = thread::spawn(move || {
            let mut r = readers.register("late");
            two_loops(&mut r);
        });
        let mut old = w.publish(Version::boxed(2));
        old.poison();
        t.join().unwrap();
    });
}

/// A retired value dropped before its grace period is freed later, never
/// while the reader may read it (its `Drop` poisons, so loom checks the
/// free against the reader's reads).
#[test]
fn dropped_retired_value_freed_after_grace_period() {
    check(PREEMPTIONS, || {
        let mut w = Writer::new(Version::boxed(1));
        let mut r = w.readers().register("worker");
        let t = thread::spawn(move || {
            two_loops(&mut r);
        });
        drop(w.swap(Version::boxed(2)));
        // Frees the orphan if its grace period is over by now.
        drop(w.swap(Version::boxed(3)));
        t.join().unwrap();
    });
}

/// A reader that goes offline without a quiescent point (a worker about to
/// park) releases a writer already waiting for it; back online it reads a
/// live value. (It then passes a quiescent point, as a worker's loop would:
/// an online reader that never does holds the writer up for good.)
#[test]
fn reader_going_offline_releases_a_waiting_writer() {
    check(PREEMPTIONS, || {
        let mut w = Writer::new(Version::boxed(1));
        let r = w.readers().register("worker");
        let t = thread::spawn(move || {
            let a = r.get().read();
            let parked = r.offline();
            let mut r = parked.online();
            let b = r.get().read();
            assert!(a <= b, "went back from {a} to {b}");
            two_loops(&mut r);
        });
        let mut old = w.publish(Version::boxed(2));
        old.poison();
        t.join().unwrap();
    });
}
