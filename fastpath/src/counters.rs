//! Per-core counters: written by one worker, read by the control thread.

pub use crate::reasons::{DropReason, PuntReason};
use std::sync::atomic::{AtomicU64, Ordering};

/// The counters of one worker core, on cache lines of their own.
///
/// The worker keeps running totals in locals and publishes them with
/// relaxed stores once per loop; the control thread reads them with relaxed
/// loads. No other data is published through these counters, so nothing
/// pairs with those stores: a reader may see a counter one loop ahead of
/// another, which only shifts a figure between two seconds.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct CoreCounters {
    rx: AtomicU64,
    tx: AtomicU64,
    injected: AtomicU64,
    drops: [AtomicU64; DropReason::COUNT],
    punts: [AtomicU64; PuntReason::COUNT],
    busy_cycles: AtomicU64,
    idle_cycles: AtomicU64,
    loops: AtomicU64,
}

/// A point-in-time copy of [`CoreCounters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CoreSnapshot {
    /// Packets received.
    pub rx: u64,
    /// Packets sent (forwarded, and the kernel's frames injected).
    pub tx: u64,
    /// Frames the kernel sent out of a port through this worker (L3
    /// mode: taken from its injection rings; those sent are in `tx` too).
    pub injected: u64,
    /// Drops, by [`DropReason`] index.
    pub drops: [u64; DropReason::COUNT],
    /// Packets handed to the kernel, by [`PuntReason`] index.
    pub punts: [u64; PuntReason::COUNT],
    /// TSC cycles spent in loops that moved packets.
    pub busy_cycles: u64,
    /// TSC cycles spent in loops that found nothing.
    pub idle_cycles: u64,
    /// Loop iterations.
    pub loops: u64,
}

impl CoreSnapshot {
    /// All drops.
    pub fn dropped(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Drops for one reason.
    pub fn drops_for(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }

    /// All punts.
    pub fn punted(&self) -> u64 {
        self.punts.iter().sum()
    }

    /// Punts for one reason.
    pub fn punts_for(&self, r: PuntReason) -> u64 {
        self.punts[r as usize]
    }

    /// Counters accumulated since `earlier`.
    pub fn since(&self, earlier: &CoreSnapshot) -> CoreSnapshot {
        let mut drops = self.drops;
        for (d, e) in drops.iter_mut().zip(earlier.drops) {
            *d -= e;
        }
        let mut punts = self.punts;
        for (d, e) in punts.iter_mut().zip(earlier.punts) {
            *d -= e;
        }
        CoreSnapshot {
            rx: self.rx - earlier.rx,
            tx: self.tx - earlier.tx,
            injected: self.injected - earlier.injected,
            drops,
            punts,
            busy_cycles: self.busy_cycles - earlier.busy_cycles,
            idle_cycles: self.idle_cycles - earlier.idle_cycles,
            loops: self.loops - earlier.loops,
        }
    }

    /// Busy share of the core, 0..=1.
    pub fn busy_ratio(&self) -> f64 {
        let total = self.busy_cycles + self.idle_cycles;
        if total == 0 {
            0.0
        } else {
            self.busy_cycles as f64 / total as f64
        }
    }

    /// Busy TSC cycles per packet sent (the figure testpmd's
    /// --record-core-cycles gives), or None before any packet.
    pub fn cycles_per_packet(&self) -> Option<f64> {
        (self.tx > 0).then(|| self.busy_cycles as f64 / self.tx as f64)
    }
}

impl CoreCounters {
    /// Publish the worker's running totals (worker thread only).
    #[inline]
    pub fn publish(&self, s: &CoreSnapshot) {
        self.rx.store(s.rx, Ordering::Relaxed);
        self.tx.store(s.tx, Ordering::Relaxed);
        self.injected.store(s.injected, Ordering::Relaxed);
        for (c, v) in self.drops.iter().zip(s.drops) {
            c.store(v, Ordering::Relaxed);
        }
        for (c, v) in self.punts.iter().zip(s.punts) {
            c.store(v, Ordering::Relaxed);
        }
        self.busy_cycles.store(s.busy_cycles, Ordering::Relaxed);
        self.idle_cycles.store(s.idle_cycles, Ordering::Relaxed);
        self.loops.store(s.loops, Ordering::Relaxed);
    }

    /// Read the counters (any thread).
    pub fn snapshot(&self) -> CoreSnapshot {
        let mut drops = [0; DropReason::COUNT];
        for (d, c) in drops.iter_mut().zip(&self.drops) {
            *d = c.load(Ordering::Relaxed);
        }
        let mut punts = [0; PuntReason::COUNT];
        for (d, c) in punts.iter_mut().zip(&self.punts) {
            *d = c.load(Ordering::Relaxed);
        }
        CoreSnapshot {
            rx: self.rx.load(Ordering::Relaxed),
            tx: self.tx.load(Ordering::Relaxed),
            injected: self.injected.load(Ordering::Relaxed),
            drops,
            punts,
            busy_cycles: self.busy_cycles.load(Ordering::Relaxed),
            idle_cycles: self.idle_cycles.load(Ordering::Relaxed),
            loops: self.loops.load(Ordering::Relaxed),
        }
    }
}
