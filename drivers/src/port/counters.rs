//! Per-queue counters: written by the queue's one owner, read by anyone.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one queue, on their own cache line so that workers never
/// share a line.
///
/// Only the queue's owner writes, so an add is a relaxed load and store (no
/// locked read-modify-write on the hot path). Readers load relaxed: each
/// counter is an independent monotonic figure and nothing else is published
/// through it, so no ordering pairs with these stores; a reader may see one
/// counter a burst ahead of another, which statistics tolerate.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct QueueCounters {
    /// Packets.
    pub packets: AtomicU64,
    /// Bytes.
    pub bytes: AtomicU64,
    /// Packets lost for want of a buffer (RX) or of queue room (TX).
    pub dropped: AtomicU64,
}

impl QueueCounters {
    /// Add to a counter; only the owning thread may call this.
    #[inline(always)]
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Read a counter.
    #[inline]
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
