//! Model checking of `drivers::ring` with loom.
//!
//! Run with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p drivers --test loom_ring --release
//! ```
//!
//! Every case is tiny (capacity 1, 2 or 4, a handful of items) so loom can
//! explore all interleavings, up to a preemption bound, in seconds.
//!
//! The test threads never spin without bound: each try to enqueue or dequeue
//! is retried at most [`TRIES`] times (yielding in between), and whatever a
//! thread could not move is handed back and accounted for after the joins
//! (with the ring drained on the main thread). Unbounded test-side spinning
//! lets loom explore schedules in which the spinners keep running while the
//! thread they wait for stays preempted, which never ends. The ring's own
//! wait (for an earlier reservation to publish) is the only spin left.
//!
//! Items are plain integers when only identity matters; the visibility cases
//! move `loom::cell::UnsafeCell`s written before the enqueue and read after
//! the dequeue, so loom reports a causality violation if the ring's publish
//! ordering does not make the producer's write happen-before the consumer's
//! read.
#![cfg(loom)]

use arrayvec::ArrayVec;
use drivers::ring::{Producer, Ring};
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

mod loom_model;
use loom_model::check;

/// Preemption bound used unless `LOOM_MAX_PREEMPTIONS` says otherwise.
const PREEMPTIONS: usize = 3;
/// Attempts at one ring operation before a test thread gives up on it.
const TRIES: usize = 2;

/// Push `items` in order, each with up to [`TRIES`] attempts; returns the
/// ones not pushed (the suffix from the first that did not fit).
fn push_all<T>(r: &Ring<T>, items: Vec<T>) -> Vec<T> {
    let mut items = items.into_iter();
    while let Some(mut v) = items.next() {
        let mut tries = 0;
        loop {
            match r.push(v) {
                Ok(()) => break,
                Err(back) => {
                    tries += 1;
                    if tries == TRIES {
                        let mut kept = vec![back];
                        kept.extend(items);
                        return kept;
                    }
                    v = back;
                    thread::yield_now();
                }
            }
        }
    }
    Vec::new()
}

/// Pop up to `n` items, each with up to [`TRIES`] attempts, stopping at the
/// first that does not come.
fn pop_some<T>(r: &Ring<T>, n: usize) -> Vec<T> {
    let mut got = Vec::new();
    'items: while got.len() < n {
        for _ in 0..TRIES {
            if let Some(v) = r.pop() {
                got.push(v);
                continue 'items;
            }
            thread::yield_now();
        }
        break;
    }
    got
}

/// Everything left in the ring (no operation may be in flight).
fn drain<T>(r: &Ring<T>) -> Vec<T> {
    std::iter::from_fn(|| r.pop()).collect()
}

fn sorted(mut v: Vec<u32>) -> Vec<u32> {
    v.sort_unstable();
    v
}

/// The items of `seq` that satisfy `pick`, in `seq`'s order.
fn only(seq: &[u32], pick: impl Fn(u32) -> bool) -> Vec<u32> {
    seq.iter().copied().filter(|&v| pick(v)).collect()
}

/// `seq` is a prefix of `full`.
fn assert_prefix(seq: &[u32], full: &[u32], what: &str) {
    assert!(
        seq.len() <= full.len() && seq == &full[..seq.len()],
        "{what}: {seq:?} is not a prefix of {full:?}"
    );
}

fn spawn_producer<T: Send + 'static>(
    r: &Arc<Ring<T>>,
    items: Vec<T>,
) -> thread::JoinHandle<Vec<T>> {
    let r = Arc::clone(r);
    thread::spawn(move || push_all(&r, items))
}

fn spawn_consumer<T: Send + 'static>(r: &Arc<Ring<T>>, n: usize) -> thread::JoinHandle<Vec<T>> {
    let r = Arc::clone(r);
    thread::spawn(move || pop_some(&r, n))
}

// ---------------------------------------------------------------------------
// MPMC: every item enqueued once is dequeued once, nothing else appears.
// ---------------------------------------------------------------------------

/// Two producers and two consumers, one item each, through a ring of 1
/// (the second item reuses the slot the first one left).
#[test]
fn mpmc_2p_2c_push_pop() {
    check(1, || {
        let r = Arc::new(Ring::<u32>::new(1).unwrap());
        let producers = [spawn_producer(&r, vec![1]), spawn_producer(&r, vec![2])];
        let consumers = [spawn_consumer(&r, 1), spawn_consumer(&r, 1)];
        let mut all = Vec::new();
        for p in producers {
            all.extend(p.join().unwrap());
        }
        for c in consumers {
            all.extend(c.join().unwrap());
        }
        all.extend(drain(&r));
        assert_eq!(sorted(all), vec![1, 2]);
    });
}

/// Two producers, one consumer, 4 items through a ring of 2: each item
/// exactly once and, with one consumer, each producer's items in its order
/// (what the consumer got, then what was left in the ring).
#[test]
fn mpmc_2p_1c_wraps() {
    check(2, || {
        let r = Arc::new(Ring::<u32>::new(2).unwrap());
        let producers = [
            spawn_producer(&r, vec![1, 2]),
            spawn_producer(&r, vec![11, 12]),
        ];
        let mut out = pop_some(&r, 4);
        let mut kept = Vec::new();
        for p in producers {
            kept.extend(p.join().unwrap());
        }
        out.extend(drain(&r));
        assert_prefix(&only(&out, |v| v < 10), &[1, 2], "producer A's order");
        assert_prefix(&only(&out, |v| v > 10), &[11, 12], "producer B's order");
        out.extend(kept);
        assert_eq!(sorted(out), vec![1, 2, 11, 12]);
        assert!(r.is_empty());
    });
}

/// One producer, two consumers, 3 items through a ring of 2: each item
/// exactly once, and each consumer sees its share in FIFO order.
#[test]
fn mpmc_1p_2c_wraps() {
    check(2, || {
        let r = Arc::new(Ring::<u32>::new(2).unwrap());
        let consumers = [spawn_consumer(&r, 2), spawn_consumer(&r, 2)];
        let mut all = push_all(&r, vec![1, 2, 3]);
        for c in consumers {
            let got = c.join().unwrap();
            assert!(got.windows(2).all(|w| w[0] < w[1]), "FIFO: {got:?}");
            all.extend(got);
        }
        all.extend(drain(&r));
        assert_eq!(sorted(all), vec![1, 2, 3]);
    });
}

/// Burst variants: producers move 2 items at a time with `enqueue_burst`
/// (which takes as many as fit, from the front), the consumer takes up to 4
/// with `dequeue_burst`, through a ring of 2.
#[test]
fn mpmc_burst_2p_1c() {
    fn produce(r: &Ring<u32>, items: [u32; 2]) -> Vec<u32> {
        let mut src: ArrayVec<u32, 2> = items.into_iter().collect();
        for _ in 0..TRIES {
            let before = src.clone();
            let n = r.enqueue_burst(&mut src);
            assert_eq!(src.as_slice(), &before[n..], "burst takes a prefix");
            if src.is_empty() {
                break;
            }
            thread::yield_now();
        }
        src.to_vec()
    }
    check(PREEMPTIONS, || {
        let r = Arc::new(Ring::<u32>::new(2).unwrap());
        let producers: Vec<_> = [[1, 2], [11, 12]]
            .into_iter()
            .map(|items| {
                let r = Arc::clone(&r);
                thread::spawn(move || produce(&r, items))
            })
            .collect();
        let mut out: ArrayVec<u32, 4> = ArrayVec::new();
        for _ in 0..TRIES + 1 {
            let before = out.len();
            let n = r.dequeue_burst(&mut out, 4);
            assert_eq!(out.len(), before + n);
            if out.is_full() {
                break;
            }
            thread::yield_now();
        }
        let mut out = out.to_vec();
        let mut kept = Vec::new();
        for p in producers {
            kept.extend(p.join().unwrap());
        }
        out.extend(drain(&r));
        assert_prefix(&only(&out, |v| v < 10), &[1, 2], "producer A's order");
        assert_prefix(&only(&out, |v| v > 10), &[11, 12], "producer B's order");
        out.extend(kept);
        assert_eq!(sorted(out), vec![1, 2, 11, 12]);
    });
}

/// Bursts on both sides with two consumers: 2 producers x 2 items, 2
/// consumers each taking bursts of up to 2, ring of 2.
#[test]
fn mpmc_burst_2p_2c() {
    check(1, || {
        let r = Arc::new(Ring::<u32>::new(2).unwrap());
        let producers: Vec<_> = [[1, 2], [11, 12]]
            .into_iter()
            .map(|items| {
                let r = Arc::clone(&r);
                thread::spawn(move || {
                    let mut src: ArrayVec<u32, 2> = items.into_iter().collect();
                    for _ in 0..TRIES {
                        r.enqueue_burst(&mut src);
                        if src.is_empty() {
                            break;
                        }
                        thread::yield_now();
                    }
                    src.to_vec()
                })
            })
            .collect();
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let r = Arc::clone(&r);
                thread::spawn(move || {
                    let mut got: ArrayVec<u32, 4> = ArrayVec::new();
                    for _ in 0..TRIES {
                        r.dequeue_burst(&mut got, 2);
                        thread::yield_now();
                    }
                    got.to_vec()
                })
            })
            .collect();
        let mut all = Vec::new();
        for p in producers {
            all.extend(p.join().unwrap());
        }
        for c in consumers {
            all.extend(c.join().unwrap());
        }
        all.extend(drain(&r));
        assert_eq!(sorted(all), vec![1, 2, 11, 12]);
    });
}

/// Bulk variants: all or nothing on both sides. Two producers each put a
/// pair into a ring of 2 with `enqueue_bulk`, two consumers each take a pair
/// with `dequeue_bulk`. A pair fills the ring, so a consumer that gets a
/// pair gets one producer's pair, in order. A refused bulk leaves its source
/// (or destination) untouched.
#[test]
fn mpmc_bulk_2p_2c() {
    check(1, || {
        let r = Arc::new(Ring::<u32>::new(2).unwrap());
        let producers: Vec<_> = [[1, 2], [11, 12]]
            .into_iter()
            .map(|items| {
                let r = Arc::clone(&r);
                thread::spawn(move || {
                    let mut src: ArrayVec<u32, 2> = items.into_iter().collect();
                    for _ in 0..TRIES {
                        if r.enqueue_bulk(&mut src) {
                            assert!(src.is_empty());
                            break;
                        }
                        assert_eq!(src.as_slice(), &items, "refused bulk kept src");
                        thread::yield_now();
                    }
                    src.to_vec()
                })
            })
            .collect();
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let r = Arc::clone(&r);
                thread::spawn(move || {
                    let mut got: ArrayVec<u32, 2> = ArrayVec::new();
                    for _ in 0..TRIES {
                        if r.dequeue_bulk(&mut got, 2) {
                            break;
                        }
                        assert!(got.is_empty(), "refused bulk moved items: {got:?}");
                        thread::yield_now();
                    }
                    got.to_vec()
                })
            })
            .collect();
        let mut all = Vec::new();
        for p in producers {
            all.extend(p.join().unwrap());
        }
        for c in consumers {
            let got = c.join().unwrap();
            assert!(
                got.is_empty() || got == [1, 2] || got == [11, 12],
                "a bulk of 2 from a ring of 2 is one producer's pair: {got:?}"
            );
            all.extend(got);
        }
        all.extend(drain(&r));
        assert_eq!(sorted(all), vec![1, 2, 11, 12]);
    });
}

/// A consumer asking for 2 while a producer puts 1 at a time never gets a
/// partial pair, and gets them in order. Ring of 4, 4 items.
#[test]
fn bulk_dequeue_never_partial() {
    check(PREEMPTIONS, || {
        let r = Arc::new(Ring::<u32>::new(4).unwrap());
        let p = spawn_producer(&r, vec![1, 2, 3, 4]);
        let mut got: ArrayVec<u32, 4> = ArrayVec::new();
        for _ in 0..3 {
            let before = got.len();
            if r.dequeue_bulk(&mut got, 2) {
                assert_eq!(got.len(), before + 2);
            } else {
                assert_eq!(got.len(), before, "refused bulk moved items");
                thread::yield_now();
            }
        }
        assert!(p.join().unwrap().is_empty(), "a ring of 4 takes 4 items");
        let mut out = got.to_vec();
        out.extend(drain(&r));
        assert_eq!(out, vec![1, 2, 3, 4]);
    });
}

/// `enqueue_bulk_from_back` (what pool caches spill with) racing a plain
/// producer: one moves the top 2 of [1, 2, 3], the other pushes 11, through
/// a ring of 2 with a consumer; 2 comes out before 3, 1 is never moved.
#[test]
fn bulk_from_back_races_push() {
    check(PREEMPTIONS, || {
        let r = Arc::new(Ring::<u32>::new(2).unwrap());
        let spiller = {
            let r = Arc::clone(&r);
            thread::spawn(move || {
                let mut stack: ArrayVec<u32, 3> = [1, 2, 3].into_iter().collect();
                for _ in 0..TRIES {
                    if r.enqueue_bulk_from_back(&mut stack, 2) {
                        assert_eq!(stack.as_slice(), &[1]);
                        break;
                    }
                    assert_eq!(stack.as_slice(), &[1, 2, 3], "refused spill kept all");
                    thread::yield_now();
                }
                stack.to_vec()
            })
        };
        let pusher = spawn_producer(&r, vec![11]);
        let mut out = pop_some(&r, 3);
        let mut kept = spiller.join().unwrap();
        assert_eq!(kept[0], 1);
        kept.extend(pusher.join().unwrap());
        out.extend(drain(&r));
        assert_prefix(&only(&out, |v| v < 10), &[2, 3], "spilled order");
        out.extend(kept);
        assert_eq!(sorted(out), vec![1, 2, 3, 11]);
    });
}

/// A producer whose view of `cons.tail` is older than the `prod.head` it
/// reserves from would overwrite an unread slot. Ring of 1, pre-filled; the
/// main thread takes items while two producers add one each.
#[test]
fn producers_do_not_overrun_consumer() {
    check(PREEMPTIONS, || {
        let r = Arc::new(Ring::<u32>::new(1).unwrap());
        r.push(1).unwrap();
        let producers = [spawn_producer(&r, vec![2]), spawn_producer(&r, vec![3])];
        let mut out = pop_some(&r, 3);
        let mut kept = Vec::new();
        for p in producers {
            kept.extend(p.join().unwrap());
        }
        out.extend(drain(&r));
        assert_eq!(out[0], 1);
        out.extend(kept);
        assert_eq!(sorted(out), vec![1, 2, 3]);
    });
}

/// The mirror image: a consumer whose view of `prod.tail` is older than the
/// `cons.head` it reserves from would take an empty slot. Two consumers,
/// the main thread producing 2 items into a ring of 2.
#[test]
fn consumers_do_not_overrun_producer() {
    check(PREEMPTIONS, || {
        let r = Arc::new(Ring::<u32>::new(2).unwrap());
        let consumers = [spawn_consumer(&r, 2), spawn_consumer(&r, 2)];
        let mut all = push_all(&r, vec![1, 2]);
        for c in consumers {
            all.extend(c.join().unwrap());
        }
        all.extend(drain(&r));
        assert_eq!(sorted(all), vec![1, 2]);
    });
}

// ---------------------------------------------------------------------------
// SPSC through `Ring::split`.
// ---------------------------------------------------------------------------

/// Five items in bursts of up to 2 through a ring of 2 (wraps twice): the
/// consumer sees a prefix of them, in order, and the rest are in the ring
/// or still with the producer.
#[test]
fn spsc_split_burst_fifo() {
    check(PREEMPTIONS, || {
        const N: u32 = 5;
        // `split` takes a std Arc, invisible to loom: the consumer stays on
        // this thread and outlives the join, so the ring is dropped here,
        // after everything the model orders.
        let (mut tx, mut rx) = Ring::<u32>::new(2).unwrap().split();
        let p = thread::spawn(move || {
            let mut next = 1;
            let mut tries = 0;
            while next <= N && tries < 2 * TRIES {
                let mut src: ArrayVec<u32, 2> = (next..=(next + 1).min(N)).collect();
                let n = tx.enqueue_burst(&mut src);
                next += n as u32;
                if n == 0 {
                    tries += 1;
                    thread::yield_now();
                }
            }
            next
        });
        let mut got: ArrayVec<u32, 8> = ArrayVec::new();
        for _ in 0..2 * TRIES {
            rx.dequeue_burst(&mut got, 2);
            thread::yield_now();
        }
        let next = p.join().unwrap();
        rx.dequeue_burst(&mut got, 8);
        let want: Vec<u32> = (1..next).collect();
        assert_eq!(got.as_slice(), want.as_slice(), "FIFO, nothing lost");
        assert!(rx.is_empty());
    });
}

/// Pairs through a ring of 2 on the split handles, `enqueue` sending one
/// pair all or nothing: the consumer's bulk dequeues of 2 see them in order,
/// never a partial pair.
fn spsc_bulk_pairs(enqueue: fn(&mut Producer<u32>, [u32; 2]) -> bool) {
    check(PREEMPTIONS, move || {
        let (mut tx, mut rx) = Ring::<u32>::new(2).unwrap().split();
        let p = thread::spawn(move || {
            let mut sent = 0;
            'pairs: for pair in [[1, 2], [3, 4], [5, 6]] {
                for _ in 0..TRIES {
                    if enqueue(&mut tx, pair) {
                        sent += 2;
                        continue 'pairs;
                    }
                    thread::yield_now();
                }
                break;
            }
            sent
        });
        let mut got: ArrayVec<u32, 6> = ArrayVec::new();
        for _ in 0..2 * TRIES {
            let before = got.len();
            if !rx.dequeue_bulk(&mut got, 2) {
                assert_eq!(got.len(), before);
                thread::yield_now();
            }
        }
        let sent = p.join().unwrap();
        while rx.dequeue_bulk(&mut got, 2) {}
        let want: Vec<u32> = (1..=sent).collect();
        assert_eq!(got.as_slice(), want.as_slice());
        assert!(rx.is_empty());
    });
}

/// Bulk on both split sides, the pair moved in (and left whole if refused).
#[test]
fn spsc_split_bulk_fifo() {
    spsc_bulk_pairs(|tx, pair| {
        let mut src: ArrayVec<u32, 2> = pair.into_iter().collect();
        let sent = tx.enqueue_bulk(&mut src);
        if !sent {
            assert_eq!(src.as_slice(), &pair, "a refused bulk stays whole");
        }
        sent
    });
}

/// The same with `enqueue_bulk_copied`: pairs copied from a table that
/// stays as it was.
#[test]
fn spsc_split_copied_bulk_fifo() {
    spsc_bulk_pairs(|tx, pair| tx.enqueue_bulk_copied(&pair));
}

/// Two producers copy pairs into a shared ring of 2 while one consumer
/// takes pairs: each pair arrives whole and once, each producer's in order.
#[test]
fn mpmc_copied_bulk_2p_1c() {
    check(PREEMPTIONS, || {
        let r = Arc::new(Ring::<u32>::new(2).unwrap());
        let producers: Vec<_> = [[1, 2], [11, 12]]
            .into_iter()
            .map(|pair| {
                let r = Arc::clone(&r);
                thread::spawn(move || {
                    for _ in 0..TRIES {
                        if r.enqueue_bulk_copied(&pair) {
                            return Some(pair);
                        }
                        thread::yield_now();
                    }
                    None
                })
            })
            .collect();
        let mut got: ArrayVec<u32, 4> = ArrayVec::new();
        for _ in 0..TRIES {
            if !r.dequeue_bulk(&mut got, 2) {
                thread::yield_now();
            }
        }
        let sent: Vec<[u32; 2]> = producers
            .into_iter()
            .filter_map(|p| p.join().unwrap())
            .collect();
        while r.dequeue_bulk(&mut got, 2) {}
        for pair in got.chunks(2) {
            assert_eq!(pair[1], pair[0] + 1, "a pair arrives whole: {got:?}");
        }
        let mut firsts: Vec<u32> = got.chunks(2).map(|p| p[0]).collect();
        firsts.sort_unstable();
        let mut want: Vec<u32> = sent.iter().map(|p| p[0]).collect();
        want.sort_unstable();
        assert_eq!(firsts, want, "every pair copied in arrives once");
        assert!(r.is_empty());
    });
}

// ---------------------------------------------------------------------------
// Publish ordering: what the producer wrote into an item before enqueueing it
// is visible to the consumer that dequeues it. The payload is a loom cell, so
// loom reports a causality violation if the write does not happen-before the
// read.
// ---------------------------------------------------------------------------

type Payload = UnsafeCell<u32>;

fn make_payload(v: u32) -> Payload {
    let cell = UnsafeCell::new(0);
    // SAFETY: the cell is not shared yet.
    cell.with_mut(|p| unsafe { *p = v });
    cell
}

fn read_payload(cell: &Payload) -> u32 {
    // SAFETY: the dequeuing thread owns the cell now; loom checks that the
    // producer's write happened-before this read.
    cell.with(|p| unsafe { *p })
}

fn read_all(cells: &[Payload]) -> Vec<u32> {
    cells.iter().map(read_payload).collect()
}

/// Two producers, one consumer, ring of 1 (the slot is reused).
#[test]
fn publish_visible_2p_1c() {
    check(PREEMPTIONS, || {
        let r = Arc::new(Ring::<Payload>::new(1).unwrap());
        let producers = [
            spawn_producer(&r, vec![make_payload(7)]),
            spawn_producer(&r, vec![make_payload(9)]),
        ];
        // Read on the consuming thread, before the joins order anything.
        let mut got = read_all(&pop_some(&r, 2));
        for p in producers {
            got.extend(read_all(&p.join().unwrap()));
        }
        got.extend(read_all(&drain(&r)));
        assert_eq!(sorted(got), vec![7, 9]);
    });
}

/// One producer, two consumers, ring of 1.
#[test]
fn publish_visible_1p_2c() {
    check(PREEMPTIONS, || {
        let r = Arc::new(Ring::<Payload>::new(1).unwrap());
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let r = Arc::clone(&r);
                thread::spawn(move || read_all(&pop_some(&r, 1)))
            })
            .collect();
        let mut got = read_all(&push_all(&r, vec![make_payload(7), make_payload(9)]));
        for c in consumers {
            got.extend(c.join().unwrap());
        }
        got.extend(read_all(&drain(&r)));
        assert_eq!(sorted(got), vec![7, 9]);
    });
}

/// The single-producer / single-consumer path publishes with a plain store:
/// it must still order the payload. Three cells through a ring of 1.
#[test]
fn publish_visible_split() {
    check(PREEMPTIONS, || {
        let (mut tx, mut rx) = Ring::<Payload>::new(1).unwrap().split();
        let p = thread::spawn(move || {
            let mut kept = Vec::new();
            for v in [5, 6, 7] {
                let mut src: ArrayVec<Payload, 1> = ArrayVec::new();
                src.push(make_payload(v));
                for _ in 0..TRIES {
                    if tx.enqueue_burst(&mut src) == 1 {
                        break;
                    }
                    thread::yield_now();
                }
                kept.extend(src.iter().map(read_payload));
            }
            kept
        });
        let mut got = Vec::new();
        for _ in 0..3 {
            let mut dst: ArrayVec<Payload, 1> = ArrayVec::new();
            if rx.dequeue_burst(&mut dst, 1) == 0 {
                thread::yield_now();
            }
            got.extend(dst.iter().map(read_payload));
        }
        let kept = p.join().unwrap();
        let mut dst: ArrayVec<Payload, 1> = ArrayVec::new();
        rx.dequeue_burst(&mut dst, 1);
        got.extend(dst.iter().map(read_payload));
        assert!(got.windows(2).all(|w| w[0] < w[1]), "FIFO: {got:?}");
        got.extend(kept);
        assert_eq!(sorted(got), vec![5, 6, 7]);
    });
}

/// The sole handles' single push and pop write and read the slot directly:
/// the payload must still be ordered by the tail. Three cells through a
/// ring of 1, one at a time.
#[test]
fn publish_visible_split_push_pop() {
    check(PREEMPTIONS, || {
        let (mut tx, mut rx) = Ring::<Payload>::new(1).unwrap().split();
        let p = thread::spawn(move || {
            let mut kept = Vec::new();
            for v in [5, 6, 7] {
                let mut item = Some(make_payload(v));
                for _ in 0..TRIES {
                    match tx.push(item.take().expect("still held")) {
                        Ok(()) => break,
                        Err(back) => item = Some(back),
                    }
                    thread::yield_now();
                }
                kept.extend(item.as_ref().map(read_payload));
            }
            kept
        });
        let mut got = Vec::new();
        for _ in 0..3 {
            match rx.pop() {
                Some(c) => got.push(read_payload(&c)),
                None => thread::yield_now(),
            }
        }
        let kept = p.join().unwrap();
        got.extend(rx.pop().as_ref().map(read_payload));
        assert!(got.windows(2).all(|w| w[0] < w[1]), "FIFO: {got:?}");
        got.extend(kept);
        assert_eq!(sorted(got), vec![5, 6, 7]);
    });
}

// ---------------------------------------------------------------------------
// Drop: items still in a ring are dropped exactly once, with the ring.
// ---------------------------------------------------------------------------

/// Counts its drops in a shared per-id counter.
struct Tracked {
    id: usize,
    drops: Arc<[AtomicUsize; 4]>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops[self.id].fetch_add(1, Ordering::Relaxed);
    }
}

fn drop_counters() -> Arc<[AtomicUsize; 4]> {
    Arc::new([
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    ])
}

fn tracked(ids: [usize; 2], drops: &Arc<[AtomicUsize; 4]>) -> Vec<Tracked> {
    ids.into_iter()
        .map(|id| Tracked {
            id,
            drops: Arc::clone(drops),
        })
        .collect()
}

fn assert_dropped_once(drops: &[AtomicUsize; 4]) {
    let counts: Vec<usize> = drops.iter().map(|d| d.load(Ordering::Relaxed)).collect();
    assert_eq!(counts, vec![1; 4], "each item dropped exactly once");
}

/// Two producers push 2 items each into a ring of 4 while the main thread
/// takes one; the ring is then dropped with the rest inside.
#[test]
fn drop_releases_leftovers_once() {
    check(PREEMPTIONS, || {
        let drops = drop_counters();
        let r = Arc::new(Ring::<Tracked>::new(4).unwrap());
        let producers = [
            spawn_producer(&r, tracked([0, 1], &drops)),
            spawn_producer(&r, tracked([2, 3], &drops)),
        ];
        for t in pop_some(&r, 1) {
            assert_eq!(drops[t.id].load(Ordering::Relaxed), 0);
        }
        for p in producers {
            assert!(p.join().unwrap().is_empty(), "a ring of 4 takes 4 items");
        }
        drop(r);
        assert_dropped_once(&drops);
    });
}

/// The ring is dropped by whichever thread lets go of it last, right after
/// producers and a consumer raced on it: the drop must see every published
/// item, and only those, and drop each once.
#[test]
fn drop_in_last_owner_thread() {
    check(2, || {
        let drops = drop_counters();
        let r = Arc::new(Ring::<Tracked>::new(4).unwrap());
        let producers = [
            spawn_producer(&r, tracked([0, 1], &drops)),
            spawn_producer(&r, tracked([2, 3], &drops)),
        ];
        let consumer = spawn_consumer(&r, 1);
        drop(r);
        for p in producers {
            assert!(p.join().unwrap().is_empty(), "a ring of 4 takes 4 items");
        }
        drop(consumer.join().unwrap());
        assert_dropped_once(&drops);
    });
}
