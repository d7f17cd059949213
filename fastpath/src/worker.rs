//! The per-core, run-to-completion forwarding loop.
//!
//! One worker per fast-path core, pinned. Each loop polls every RX queue the
//! worker owns, forwards each non-empty burst to its output port's TX queue
//! (the worker's own queue on that port), frees what the queue could not
//! take with a counted drop, and publishes its counters. The loop does not
//! allocate, lock, log or make system calls; it reads the TSC once per
//! iteration to split busy from idle cycles.
//!
//! In L3 mode a loop also sends what the kernel emitted for the ports
//! this worker is the way out of (its [`InjectIn`] rings, filled by the
//! exception thread), and ends with a quiescent point of its tables
//! reader, where a newly published batch of routes becomes visible.

use crate::counters::{CoreCounters, CoreSnapshot, DropReason};
use crate::fwd_mode::{FwdMode, MacRewrite, SEED_HEADER_LEN};
use crate::l3::{L3Worker, PortIndex};
use drivers::burst::{Burst, MAX_BURST};
use drivers::cpu::rdtsc;
use drivers::mbuf::Mbuf;
use drivers::pool::PoolCache;
use drivers::port::{RxQueue, TxQueue};
use drivers::ring::Consumer;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Length of a `--tx-first` seed frame: the Ethernet minimum (60) and
/// four bytes, as before seeds were addressed.
const SEED_FRAME_LEN: usize = 64;

/// Loops between two empty bursts on every TX queue (see
/// [`Worker::poll_tx`]): a few microseconds when idle.
pub const TX_POLL_LOOPS: u64 = 1024;

/// One RX queue the worker polls, and where its packets go.
#[derive(Debug)]
pub struct RxBinding<R> {
    /// The queue.
    pub queue: R,
    /// Index (into the worker's `tx`) of the output queue (io and mac
    /// modes).
    pub out: usize,
    /// Index of the port the queue belongs to: the input port of what it
    /// receives (L3 mode; never the buffer's `port` field, which ring
    /// ports leave as it was).
    pub port: usize,
}

/// What the kernel sends out of one port, handed over by the exception
/// thread (its [`InjectRing`](crate::exception::InjectRing) is the other
/// end): the worker sends it on its own TX queue of that port.
#[derive(Debug)]
pub struct InjectIn {
    /// Index (into the worker's `tx`) of the port.
    pub port: usize,
    /// The ring.
    pub ring: Consumer<Mbuf>,
}

/// Everything a worker owns.
#[derive(Debug)]
pub struct Worker<R, T> {
    /// Queues polled, with their output.
    pub rx: Vec<RxBinding<R>>,
    /// This worker's TX queue on every port, by port index.
    pub tx: Vec<T>,
    /// Address rewrite per output port (mac mode).
    pub rewrite: Vec<MacRewrite>,
    /// Forwarding mode.
    pub mode: FwdMode,
    /// Packets asked of an RX queue at a time (1..=MAX_BURST).
    pub burst: usize,
    /// Bursts to send on every TX queue before forwarding starts (testpmd's
    /// `start tx_first N`), to seed loops of ring ports.
    pub tx_first: usize,
    /// The seeding waits until this is set (the ports' links are up), the
    /// worker forwarding meanwhile; `None`: seed at once. An iavf VF's
    /// link comes up only after its worker posted RX buffers and the
    /// control thread enabled the queues: seeds sent before would be
    /// refused.
    pub seed_gate: Option<Arc<AtomicBool>>,
    /// The worker's buffer cache.
    pub cache: PoolCache,
    /// The router (L3 mode): when set, every RX burst goes through the
    /// pipeline instead of to `out`.
    pub l3: Option<L3Worker>,
    /// L3 mode: the kernel's frames to send, per port this worker is the
    /// way out of (empty otherwise).
    pub inject: Vec<InjectIn>,
}

/// What a worker gives back when it stops: its queues and cache (so every
/// buffer can be accounted for) and its final counters.
#[derive(Debug)]
pub struct Stopped<R, T> {
    /// The queues, still holding whatever packets are in flight in them.
    pub rx: Vec<RxBinding<R>>,
    /// TX queues.
    pub tx: Vec<T>,
    /// The cache.
    pub cache: PoolCache,
    /// Final counters.
    pub totals: CoreSnapshot,
}

impl<R: RxQueue, T: TxQueue> Worker<R, T> {
    /// Run until `stop` is set, publishing counters into `counters`.
    pub fn run(mut self, stop: &AtomicBool, counters: &CoreCounters) -> Stopped<R, T> {
        let burst_size = self.burst.clamp(1, MAX_BURST);
        let mut burst = Burst::new();
        let mut runts = Burst::new();
        let mut c = CoreSnapshot::default();
        let mut last = rdtsc();
        if let Some(gate) = self.seed_gate.take() {
            // Relaxed, both: the flags carry no data (a queue's readiness
            // is published by its port's own atomics).
            while !gate.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                self.poll_once(burst_size, &mut burst, &mut runts, &mut c, &mut last);
                counters.publish(&c);
            }
        }
        self.send_first(&mut c, burst_size, stop, counters);
        counters.publish(&c);
        // The seeding's cycles are neither busy nor idle.
        last = rdtsc();
        // Relaxed: the flag carries no data; the thread join that follows
        // a stop orders everything the worker did before it.
        while !stop.load(Ordering::Relaxed) {
            self.poll_once(burst_size, &mut burst, &mut runts, &mut c, &mut last);
            counters.publish(&c);
        }
        counters.publish(&c);
        Stopped {
            rx: self.rx,
            tx: self.tx,
            cache: self.cache,
            totals: c,
        }
    }

    /// One loop: a burst from every RX queue, forwarded; the cycles since
    /// `last` counted busy or idle.
    #[inline(always)]
    fn poll_once(
        &mut self,
        burst_size: usize,
        burst: &mut Burst,
        runts: &mut Burst,
        c: &mut CoreSnapshot,
        last: &mut u64,
    ) {
        let mut got = 0;
        let mut injected = 0;
        for b in self.rx.iter_mut() {
            let n = b.queue.rx_burst(&mut self.cache, burst, burst_size);
            if n == 0 {
                continue;
            }
            got += n;
            if let Some(l3) = self.l3.as_mut() {
                let in_port = PortIndex(u16::try_from(b.port).unwrap_or(u16::MAX));
                l3.route(in_port, burst, &mut self.cache, c);
                // Full buffers go at once; the rest after the last queue,
                // so bursts from several queues to one port share a send.
                l3.flush(&mut self.tx, burst_size, &mut self.cache, c);
                continue;
            }
            if self.mode == FwdMode::Mac {
                self.rewrite[b.out].apply(burst, runts);
                if !runts.is_empty() {
                    c.drops[DropReason::Runt as usize] += runts.len() as u64;
                    self.cache.free_bulk(runts);
                }
            }
            c.tx += self.tx[b.out].tx_burst(&mut self.cache, burst) as u64;
            if !burst.is_empty() {
                c.drops[DropReason::TxFull as usize] += burst.len() as u64;
                self.cache.free_bulk(burst);
            }
        }
        if let Some(l3) = self.l3.as_mut() {
            l3.flush(&mut self.tx, 1, &mut self.cache, c);
            if !self.inject.is_empty() {
                injected = self.inject_from_kernel(burst_size, burst, c);
            }
            // No reference into the tables lives past the bursts above.
            if let Some(l3) = self.l3.as_mut() {
                l3.tables.quiescent();
            }
        }
        let now = rdtsc();
        let spent = now.wrapping_sub(*last);
        *last = now;
        if got + injected > 0 {
            c.rx += got as u64;
            c.busy_cycles += spent;
        } else {
            c.idle_cycles += spent;
        }
        c.loops += 1;
        if c.loops.is_multiple_of(TX_POLL_LOOPS) {
            self.poll_tx();
        }
    }

    /// Sends a burst of each injection ring on its port's TX queue; what
    /// the queue does not take is a counted `tx_full` drop, as for any
    /// burst. Returns how many frames were taken from the rings.
    #[inline]
    fn inject_from_kernel(
        &mut self,
        burst_size: usize,
        burst: &mut Burst,
        c: &mut CoreSnapshot,
    ) -> usize {
        let mut got = 0;
        for i in self.inject.iter_mut() {
            let n = i.ring.dequeue_burst(burst, burst_size);
            if n == 0 {
                continue;
            }
            got += n;
            c.injected += n as u64;
            // A port with no queue here (not built that way by the
            // forwarder) leaves the burst whole: counted below, not lost.
            if let Some(q) = self.tx.get_mut(i.port) {
                c.tx += q.tx_burst(&mut self.cache, burst) as u64;
            }
            if !burst.is_empty() {
                c.drops[DropReason::TxFull as usize] += burst.len() as u64;
                self.cache.free_bulk(burst);
            }
        }
        got
    }

    /// An empty burst on every TX queue. A queue is otherwise only called
    /// when there is something to send, but a VF's TX queue acts on its
    /// port's stop and restart requests (PF-reset recovery) and reclaims
    /// completed descriptors inside `tx_burst`: with no traffic to send
    /// the recovery would wait for it forever.
    #[cold]
    fn poll_tx(&mut self) {
        let mut empty = Burst::new();
        for q in self.tx.iter_mut() {
            q.tx_burst(&mut self.cache, &mut empty);
        }
    }

    /// Seed every TX queue with `tx_first` bursts of fresh 64-byte frames,
    /// giving up as soon as `stop` is set: a large count on full rings is
    /// millions of refused bursts, and a stop must not wait for them. The
    /// counters are published after each round, so the live statistics
    /// show the seeding (and its drops) while it lasts.
    fn send_first(
        &mut self,
        c: &mut CoreSnapshot,
        burst_size: usize,
        stop: &AtomicBool,
        counters: &CoreCounters,
    ) {
        let mut burst = Burst::new();
        for round in 0..self.tx_first {
            counters.publish(c);
            for (q_index, q) in self.tx.iter_mut().enumerate() {
                // Relaxed: as in `run`, the flag carries no data.
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                if !self.cache.alloc_bulk(&mut burst, burst_size) {
                    return;
                }
                let header = self.rewrite.get(q_index).map(MacRewrite::seed_header);
                let l3_seeds = self
                    .l3
                    .as_ref()
                    .and_then(|l3| l3.seeds.get(q_index))
                    .filter(|f| !f.is_empty());
                for (i, m) in burst.iter_mut().enumerate() {
                    // L3 mode: routable frames given by whoever built the
                    // worker (a benchmark's loop of ring ports), in turn.
                    let turn = round * burst_size + i;
                    if let Some(f) = l3_seeds.and_then(|fs| fs.get(turn % fs.len())) {
                        if m.set_len(f.len()).is_ok() {
                            m.data_mut().copy_from_slice(f);
                            continue;
                        }
                    }
                    // A minimum frame, addressed as testpmd's tx_first
                    // frames are: to the port's peer, from the port, so
                    // that a switch (a modelled PF's) delivers it.
                    let _ = m.set_len(SEED_FRAME_LEN);
                    if let (Some(h), Some(d)) = (&header, m.data_mut().get_mut(..SEED_HEADER_LEN)) {
                        d.copy_from_slice(h);
                    }
                }
                c.tx += q.tx_burst(&mut self.cache, &mut burst) as u64;
                c.drops[DropReason::TxFull as usize] += burst.len() as u64;
                self.cache.free_bulk(&mut burst);
            }
        }
    }
}
