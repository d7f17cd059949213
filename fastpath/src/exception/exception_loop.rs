//! The exception thread's loop: it moves what the workers punt to the
//! kernel, and what the kernel sends back out, one round per
//! [`ExceptionLoop::poll`].
//!
//! - **To the kernel.** Each worker has an SPSC ring of [`Punted`]
//!   packets. A round drains every ring (a burst each), drops what is over
//!   the input port's [rate limit](super::RateLimit) (counted), and writes
//!   the rest to that port's exception interface, on queue `worker % queues`
//!   (so each worker's packets of a flow stay in order). What the interface
//!   does not take is freed and counted (`tap_full`). A packet for a port
//!   with no exception interface is freed and counted too.
//! - **From the kernel.** Every queue of every interface is read (a burst
//!   each), and what the kernel sent goes out of the matching port through
//!   that port's way out: an [`InjectRing`](super::InjectRing) to the
//!   worker that owns a TX queue of the port, or a TX queue of the
//!   exception thread's own. What does not fit is freed and counted
//!   (`inject_full`).
//!
//! - **An interface gone.** When the router finds a port's exception
//!   interface deleted under it, it sends [`IfaceChange::Gone`]: the loop
//!   drops that port's queues and frees and counts (`iface_gone`) what is
//!   punted for it, until [`IfaceChange::Back`] brings a new interface's
//!   queues.
//!
//! The loop runs on a CPU that is not a worker's; it never blocks, and
//! sleeps briefly only when a round moved nothing. Time comes from the
//! caller (`poll(now_ns)`), so the rate limits can be tested without a
//! clock.

use super::counters::{ExceptionPortCounters, ExceptionPortStats};
use super::iface_change::IfaceChange;
use super::punted::Punted;
use super::rate_limit::{RateLimit, TokenBucket};
use arrayvec::ArrayVec;
use drivers::burst::{Burst, MAX_BURST};
use drivers::mbuf::PortId;
use drivers::pool::PoolCache;
use drivers::port::{QueueCounters, RxQueue, TxQueue};
use drivers::ring::Consumer;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One fast-path port's side of the exception path.
#[derive(Debug)]
pub struct ExceptionPort<R, T, S> {
    /// The fast-path port.
    pub port: PortId,
    /// The queues of its exception interface (kernel to us, us to kernel).
    pub queues: Vec<(R, T)>,
    /// Where what the kernel sends goes to leave by the port.
    pub out: S,
    /// Most exception packets per second to the kernel (`None`: no limit).
    pub limit: Option<RateLimit>,
}

/// Why an exception loop could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExceptionLoopError {
    /// A port with no queue.
    #[error("exception path: port {0} has an exception interface with no queue")]
    NoQueues(u16),
    /// A port given twice.
    #[error("exception path: port {0} given twice")]
    DuplicatePort(u16),
    /// Burst size out of range.
    #[error("exception path: burst {0} out of range (1 to {MAX_BURST})")]
    BadBurst(usize),
}

#[derive(Debug)]
struct Slot<R, T, S> {
    port: PortId,
    queues: Vec<(R, T)>,
    out: S,
    bucket: Option<TokenBucket>,
    /// Packets for this port from the ring being drained.
    staging: Burst,
    /// The interface is gone ([`IfaceChange::Gone`]); `queues` is empty.
    gone: bool,
}

/// Counters of the loop: per port, in the order the ports were given,
/// and the packets punted for a port that has no exception interface.
#[derive(Debug)]
pub struct ExceptionCounters {
    ports: Vec<(PortId, ExceptionPortCounters)>,
    /// Punted for a port without an exception interface, dropped.
    pub unknown_port: AtomicU64,
}

impl ExceptionCounters {
    /// The counters of `port`, if it has an exception interface.
    pub fn port(&self, port: PortId) -> Option<ExceptionPortStats> {
        self.ports
            .iter()
            .find(|(p, _)| *p == port)
            .map(|(_, c)| c.snapshot())
    }

    /// Every port's counters, in the order the ports were given.
    pub fn all(&self) -> Vec<(PortId, ExceptionPortStats)> {
        self.ports.iter().map(|(p, c)| (*p, c.snapshot())).collect()
    }
}

/// The exception thread's state: the ports' interfaces, the workers' punt
/// rings, and its own buffer cache.
#[derive(Debug)]
pub struct ExceptionLoop<R, T, S> {
    slots: Vec<Slot<R, T, S>>,
    /// Slot of each port id (`PortId.0` indexes it).
    by_id: Vec<Option<usize>>,
    punt: Vec<Consumer<Punted>>,
    cache: PoolCache,
    counters: Arc<ExceptionCounters>,
    burst: usize,
    taken: ArrayVec<Punted, MAX_BURST>,
    from_kernel: Burst,
    /// Interfaces gone and back, from the router.
    changes: Option<Receiver<IfaceChange<R, T>>>,
}

/// Free what is left of a burst; returns how many that was.
fn free_rest(cache: &mut PoolCache, b: &mut Burst) -> u64 {
    let n = b.len() as u64;
    for m in b.drain(..) {
        cache.free(m);
    }
    n
}

impl<R: RxQueue, T: TxQueue, S: TxQueue> ExceptionLoop<R, T, S> {
    /// A loop over `ports`, draining `punt` (one ring per worker; worker
    /// `w`'s packets go to queue `w % queues` of their port's interface),
    /// taking buffers for the kernel's frames from `cache`, `burst`
    /// packets at a time; `now_ns` starts the rate limiters' clock.
    pub fn new(
        ports: Vec<ExceptionPort<R, T, S>>,
        punt: Vec<Consumer<Punted>>,
        cache: PoolCache,
        burst: usize,
        now_ns: u64,
    ) -> Result<Self, ExceptionLoopError> {
        if burst == 0 || burst > MAX_BURST {
            return Err(ExceptionLoopError::BadBurst(burst));
        }
        let mut by_id: Vec<Option<usize>> = Vec::new();
        let mut slots = Vec::with_capacity(ports.len());
        for p in ports {
            let id = usize::from(p.port.0);
            if p.queues.is_empty() {
                return Err(ExceptionLoopError::NoQueues(p.port.0));
            }
            if by_id.len() <= id {
                by_id.resize(id + 1, None);
            }
            if by_id[id].is_some() {
                return Err(ExceptionLoopError::DuplicatePort(p.port.0));
            }
            by_id[id] = Some(slots.len());
            slots.push(Slot {
                port: p.port,
                queues: p.queues,
                out: p.out,
                bucket: p.limit.map(|l| TokenBucket::new(l, now_ns)),
                staging: Burst::new(),
                gone: false,
            });
        }
        let counters = Arc::new(ExceptionCounters {
            ports: slots
                .iter()
                .map(|s| (s.port, ExceptionPortCounters::default()))
                .collect(),
            unknown_port: AtomicU64::new(0),
        });
        Ok(ExceptionLoop {
            slots,
            by_id,
            punt,
            cache,
            counters,
            burst,
            taken: ArrayVec::new(),
            from_kernel: Burst::new(),
            changes: None,
        })
    }

    /// Where to tell this loop that an interface is gone or back; the
    /// changes take effect at the start of the next round. A second call
    /// replaces the first's channel.
    pub fn iface_changes(&mut self) -> Sender<IfaceChange<R, T>> {
        let (tx, rx) = mpsc::channel();
        self.changes = Some(rx);
        tx
    }

    /// Applies the changes sent since the last round. `try_recv` on an
    /// empty channel is a few atomic loads: no lock, no system call.
    fn apply_changes(&mut self) {
        let Some(changes) = &self.changes else {
            return;
        };
        while let Ok(change) = changes.try_recv() {
            let (port, queues) = match change {
                IfaceChange::Gone(port) => (port, Vec::new()),
                IfaceChange::Back(port, queues) => (port, queues),
            };
            let Some(i) = self.by_id.get(usize::from(port.0)).copied().flatten() else {
                // Not a port of ours: its queues are dropped (they hold no
                // pool buffer).
                continue;
            };
            let slot = &mut self.slots[i];
            // The old queues are dropped here: a TAP's or vhost-net's
            // queues copy frames in and out and hold no pool buffer.
            slot.gone = queues.is_empty();
            slot.queues = queues;
        }
    }

    /// The counters, to be read from any thread.
    pub fn counters(&self) -> Arc<ExceptionCounters> {
        Arc::clone(&self.counters)
    }

    /// One round both ways at time `now_ns` (any monotonic clock in ns).
    /// Returns how many packets it moved or dropped.
    pub fn poll(&mut self, now_ns: u64) -> usize {
        self.apply_changes();
        self.punted_to_kernel(now_ns) + self.kernel_to_ports()
    }

    fn punted_to_kernel(&mut self, now_ns: u64) -> usize {
        let Self {
            slots,
            by_id,
            punt,
            cache,
            counters,
            burst,
            taken,
            ..
        } = self;
        let add = QueueCounters::add;
        let mut moved = 0;
        for (worker, ring) in punt.iter_mut().enumerate() {
            if ring.dequeue_burst(taken, *burst) == 0 {
                continue;
            }
            moved += taken.len();
            for p in taken.drain(..) {
                let Some(i) = by_id.get(usize::from(p.port.0)).copied().flatten() else {
                    add(&counters.unknown_port, 1);
                    cache.free(p.mbuf);
                    continue;
                };
                let (slot, c) = (&mut slots[i], &counters.ports[i].1);
                add(&c.punted, 1);
                if slot.gone {
                    add(&c.iface_gone, 1);
                    cache.free(p.mbuf);
                    continue;
                }
                if let Some(b) = &mut slot.bucket {
                    if b.take(1, now_ns) == 0 {
                        add(&c.rate_limited, 1);
                        cache.free(p.mbuf);
                        continue;
                    }
                }
                // Cannot fail: at most `burst` <= MAX_BURST were taken.
                if let Err(e) = slot.staging.try_push(p.mbuf) {
                    add(&c.tap_full, 1);
                    cache.free(e.element());
                }
            }
            for (slot, (_, c)) in slots.iter_mut().zip(&counters.ports) {
                if slot.staging.is_empty() {
                    continue;
                }
                let offered = slot.staging.len() as u64;
                // A slot has queues unless it is gone, and then nothing is
                // staged for it: `None` only guards the division.
                let Some(q) = worker.checked_rem(slot.queues.len()) else {
                    add(&c.iface_gone, free_rest(cache, &mut slot.staging));
                    continue;
                };
                let sent = slot.queues[q].1.tx_burst(cache, &mut slot.staging) as u64;
                add(&c.to_kernel, sent);
                // Left over (the TAP was full) or refused by the kernel.
                free_rest(cache, &mut slot.staging);
                if offered > sent {
                    add(&c.tap_full, offered - sent);
                }
            }
        }
        moved
    }

    fn kernel_to_ports(&mut self) -> usize {
        let Self {
            slots,
            cache,
            counters,
            burst,
            from_kernel: got,
            ..
        } = self;
        let add = QueueCounters::add;
        let mut moved = 0;
        for (slot, (_, c)) in slots.iter_mut().zip(&counters.ports) {
            for (rx, _) in &mut slot.queues {
                let n = rx.rx_burst(cache, got, *burst);
                if n == 0 {
                    continue;
                }
                moved += n;
                add(&c.from_kernel, n as u64);
                let sent = slot.out.tx_burst(cache, got);
                add(&c.injected, sent as u64);
                free_rest(cache, got);
                if n > sent {
                    add(&c.inject_full, (n - sent) as u64);
                }
            }
        }
        moved
    }

    /// Poll until `stop` is set, sleeping `idle` after a round that moved
    /// nothing. The rate limiters' clock is the time since this call.
    pub fn run(&mut self, stop: &AtomicBool, idle: Duration) {
        let start = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let now = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            if self.poll(now) == 0 {
                std::thread::sleep(idle);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exception::InjectRing;
    use drivers::mbuf::Mbuf;
    use drivers::memory::MemoryBacking;
    use drivers::pool::{Pool, PoolConfig};
    use drivers::port::ring_pair::{RingPort, RingRx, RingTx};
    use drivers::port::Port;
    use drivers::ring::{Producer, Ring};
    use proptest::prelude::*;

    const SEC: u64 = 1_000_000_000;

    type Loop = ExceptionLoop<RingRx, RingTx, InjectRing>;

    /// A port's exception interface stand-in: a ring pair whose far end
    /// plays the kernel; and the consumer of its injection ring.
    struct Kernel {
        queues: Vec<(RingRx, RingTx)>,
        out: Consumer<Mbuf>,
    }

    fn pool(n: u32) -> Pool {
        Pool::new(&PoolConfig::new("exc-loop", n).with_backing(MemoryBacking::NoHuge)).unwrap()
    }

    fn port(
        id: u16,
        queues: usize,
        tap_ring: usize,
        out_ring: usize,
        limit: Option<RateLimit>,
    ) -> (ExceptionPort<RingRx, RingTx, InjectRing>, Kernel) {
        let (mut ours, mut theirs) = RingPort::pair(
            (PortId(id), "tap"),
            (PortId(id), "kernel"),
            queues,
            tap_ring,
        )
        .unwrap();
        let (rx, tx) = ours.queues(queues, queues).unwrap();
        let (krx, ktx) = theirs.queues(queues, queues).unwrap();
        let (prod, cons) = Ring::new(out_ring).unwrap().split();
        (
            ExceptionPort {
                port: PortId(id),
                queues: rx.into_iter().zip(tx).collect(),
                out: InjectRing(prod),
                limit,
            },
            Kernel {
                queues: krx.into_iter().zip(ktx).collect(),
                out: cons,
            },
        )
    }

    /// A frame whose first bytes say who sent it: (tag, seq).
    fn frame(cache: &mut PoolCache, tag: u8, seq: u16) -> Mbuf {
        let mut m = cache.alloc().expect("buffer");
        let d = m.append(60).unwrap();
        d.fill(0);
        d[0] = tag;
        d[1..3].copy_from_slice(&seq.to_be_bytes());
        m
    }

    fn tag_seq(m: &Mbuf) -> (u8, u16) {
        let d = m.data();
        (d[0], u16::from_be_bytes([d[1], d[2]]))
    }

    fn punt(ring: &mut Producer<Punted>, cache: &mut PoolCache, port: u16, tag: u8, n: u16) {
        for seq in 0..n {
            let mbuf = frame(cache, tag, seq);
            ring.push(Punted {
                port: PortId(port),
                mbuf,
            })
            .expect("room in the punt ring");
        }
    }

    /// Everything the kernel side's RX queue `q` has, as (tag, seq).
    fn drain_rx(k: &mut Kernel, q: usize, cache: &mut PoolCache) -> Vec<(u8, u16)> {
        let mut b = Burst::new();
        let mut v = Vec::new();
        while k.queues[q].0.rx_burst(cache, &mut b, 32) > 0 {
            for m in b.drain(..) {
                v.push(tag_seq(&m));
                cache.free(m);
            }
        }
        v
    }

    fn drain_out(k: &mut Kernel, cache: &mut PoolCache) -> Vec<(u8, u16)> {
        let mut v = Vec::new();
        while let Some(m) = k.out.pop() {
            v.push(tag_seq(&m));
            cache.free(m);
        }
        v
    }

    #[test]
    fn bad_configurations_are_refused() {
        let p = pool(64);
        let (a, _ka) = port(1, 1, 8, 8, None);
        let err = Loop::new(vec![a], Vec::new(), p.cache(), 0, 0).unwrap_err();
        assert_eq!(err, ExceptionLoopError::BadBurst(0));
        let (a, _ka) = port(1, 1, 8, 8, None);
        let (b, _kb) = port(1, 1, 8, 8, None);
        let err = Loop::new(vec![a, b], Vec::new(), p.cache(), 32, 0).unwrap_err();
        assert_eq!(err, ExceptionLoopError::DuplicatePort(1));
        let (mut a, _ka) = port(2, 1, 8, 8, None);
        a.queues.clear();
        let err = Loop::new(vec![a], Vec::new(), p.cache(), 32, 0).unwrap_err();
        assert_eq!(err, ExceptionLoopError::NoQueues(2));
    }

    /// Two workers punt for two ports: each packet reaches its port's
    /// interface, on the worker's queue, in order; what the kernel sends
    /// on each interface goes out of the matching port.
    #[test]
    fn both_ways_to_the_right_port_and_queue() {
        let p = pool(512);
        let mut cache = p.cache();
        let (a, mut ka) = port(0, 2, 64, 64, None);
        let (b, mut kb) = port(5, 2, 64, 64, None);
        let (mut w0, c0) = Ring::new(64).unwrap().split();
        let (mut w1, c1) = Ring::new(64).unwrap().split();
        let mut l = Loop::new(vec![a, b], vec![c0, c1], p.cache(), 32, 0).unwrap();
        punt(&mut w0, &mut cache, 0, 0xa0, 5);
        punt(&mut w0, &mut cache, 5, 0xb0, 3);
        punt(&mut w1, &mut cache, 5, 0xb1, 4);
        punt(&mut w1, &mut cache, 0, 0xa1, 2);
        assert_eq!(l.poll(0), 14);
        let seqs = |tag, n| (0..n).map(|s| (tag, s)).collect::<Vec<_>>();
        assert_eq!(drain_rx(&mut ka, 0, &mut cache), seqs(0xa0, 5));
        assert_eq!(drain_rx(&mut ka, 1, &mut cache), seqs(0xa1, 2));
        assert_eq!(drain_rx(&mut kb, 0, &mut cache), seqs(0xb0, 3));
        assert_eq!(drain_rx(&mut kb, 1, &mut cache), seqs(0xb1, 4));

        // The kernel answers on both queues of port 5's interface.
        let mut burst = Burst::new();
        for seq in 0..3 {
            burst.push(frame(&mut cache, 0xc5, seq));
        }
        assert_eq!(kb.queues[1].1.tx_burst(&mut cache, &mut burst), 3);
        burst.push(frame(&mut cache, 0xc5, 3));
        assert_eq!(kb.queues[0].1.tx_burst(&mut cache, &mut burst), 1);
        assert_eq!(l.poll(SEC), 4);
        let mut out = drain_out(&mut kb, &mut cache);
        out.sort();
        assert_eq!(out, seqs(0xc5, 4));
        assert!(drain_out(&mut ka, &mut cache).is_empty());

        let c = l.counters();
        let a_stats = c.port(PortId(0)).unwrap();
        assert_eq!((a_stats.punted, a_stats.to_kernel), (7, 7));
        assert_eq!((a_stats.from_kernel, a_stats.injected), (0, 0));
        let b_stats = c.port(PortId(5)).unwrap();
        assert_eq!((b_stats.punted, b_stats.to_kernel), (7, 7));
        assert_eq!((b_stats.from_kernel, b_stats.injected), (4, 4));
        assert_eq!(
            b_stats.rate_limited + b_stats.tap_full + b_stats.inject_full,
            0
        );
        assert!(c.port(PortId(1)).is_none());
        assert_eq!(c.all().len(), 2);
        drop((l, ka, kb, w0, w1, cache));
        assert_eq!(p.available(), p.count(), "every buffer back");
    }

    /// Port 0 limited to 10/s with a burst of 4; port 1 unlimited.
    #[test]
    fn rate_limit_per_port() {
        let p = pool(256);
        let mut cache = p.cache();
        let (a, mut ka) = port(0, 1, 64, 64, Some(RateLimit::new(10, 4).unwrap()));
        let (b, mut kb) = port(1, 1, 64, 64, None);
        let (mut w, c) = Ring::new(64).unwrap().split();
        let mut l = Loop::new(vec![a, b], vec![c], p.cache(), 32, 0).unwrap();
        punt(&mut w, &mut cache, 0, 1, 10);
        punt(&mut w, &mut cache, 1, 2, 10);
        l.poll(0);
        assert_eq!(drain_rx(&mut ka, 0, &mut cache).len(), 4);
        assert_eq!(drain_rx(&mut kb, 0, &mut cache).len(), 10);
        // 0.3 s earns 3 more; 10 s earns only the burst, 4.
        punt(&mut w, &mut cache, 0, 1, 10);
        l.poll(3 * SEC / 10);
        assert_eq!(drain_rx(&mut ka, 0, &mut cache).len(), 3);
        punt(&mut w, &mut cache, 0, 1, 10);
        l.poll(10 * SEC);
        assert_eq!(drain_rx(&mut ka, 0, &mut cache).len(), 4);
        let s = l.counters().port(PortId(0)).unwrap();
        assert_eq!((s.punted, s.to_kernel, s.rate_limited), (30, 11, 19));
        let s = l.counters().port(PortId(1)).unwrap();
        assert_eq!((s.punted, s.to_kernel, s.rate_limited), (10, 10, 0));
        drop((l, ka, kb, w, cache));
        assert_eq!(p.available(), p.count());
    }

    /// A full interface, a full way out, and a port with no interface:
    /// each packet dropped is freed and counted once.
    #[test]
    fn full_queues_and_unknown_ports_are_counted() {
        let p = pool(256);
        let mut cache = p.cache();
        let (a, mut ka) = port(3, 1, 4, 2, None);
        let (mut w, c) = Ring::new(64).unwrap().split();
        let mut l = Loop::new(vec![a], vec![c], p.cache(), 32, 0).unwrap();
        punt(&mut w, &mut cache, 3, 1, 10);
        punt(&mut w, &mut cache, 7, 2, 3);
        punt(&mut w, &mut cache, 1000, 2, 1);
        assert_eq!(l.poll(0), 14);
        assert_eq!(drain_rx(&mut ka, 0, &mut cache).len(), 4);
        let mut burst = Burst::new();
        for seq in 0..4 {
            burst.push(frame(&mut cache, 9, seq));
        }
        assert_eq!(ka.queues[0].1.tx_burst(&mut cache, &mut burst), 4);
        l.poll(0);
        assert_eq!(drain_out(&mut ka, &mut cache), vec![(9, 0), (9, 1)]);
        let cs = l.counters();
        let s = cs.port(PortId(3)).unwrap();
        assert_eq!((s.punted, s.to_kernel, s.tap_full), (10, 4, 6));
        assert_eq!((s.from_kernel, s.injected, s.inject_full), (4, 2, 2));
        assert_eq!(QueueCounters::get(&cs.unknown_port), 4);
        assert_eq!(
            s.named()
                .iter()
                .find(|(n, _)| *n == "exception_tap_full")
                .map(|x| x.1),
            Some(6)
        );
        drop((l, ka, w, cache));
        assert_eq!(p.available(), p.count());
    }

    /// An interface gone: its punts are freed and counted as
    /// `iface_gone`, the other port's still flow; back, with new queues,
    /// punts reach the new interface.
    #[test]
    fn an_interface_gone_then_back() {
        let p = pool(256);
        let mut cache = p.cache();
        let (a, ka) = port(0, 2, 64, 64, None);
        let (b, mut kb) = port(1, 1, 64, 64, None);
        let (mut w0, c0) = Ring::new(64).unwrap().split();
        let (mut w1, c1) = Ring::new(64).unwrap().split();
        let mut l = Loop::new(vec![a, b], vec![c0, c1], p.cache(), 32, 0).unwrap();
        let changes = l.iface_changes();
        changes.send(IfaceChange::Gone(PortId(0))).unwrap();
        punt(&mut w0, &mut cache, 0, 1, 5);
        punt(&mut w1, &mut cache, 0, 1, 3);
        punt(&mut w1, &mut cache, 1, 2, 4);
        assert_eq!(l.poll(0), 12);
        assert_eq!(drain_rx(&mut kb, 0, &mut cache).len(), 4);
        let s = l.counters().port(PortId(0)).unwrap();
        assert_eq!((s.punted, s.iface_gone, s.to_kernel), (8, 8, 0));
        // The old interface's kernel side is gone with it.
        drop(ka);

        let (fresh, mut kf) = port(0, 2, 64, 64, None);
        changes
            .send(IfaceChange::Back(PortId(0), fresh.queues))
            .unwrap();
        // A port that is not ours: ignored, its queues dropped.
        let (stray, _ks) = port(9, 1, 8, 8, None);
        changes
            .send(IfaceChange::Back(PortId(9), stray.queues))
            .unwrap();
        punt(&mut w1, &mut cache, 0, 3, 6);
        assert_eq!(l.poll(1), 6);
        assert_eq!(drain_rx(&mut kf, 1, &mut cache).len(), 6);
        let s = l.counters().port(PortId(0)).unwrap();
        assert_eq!((s.punted, s.iface_gone, s.to_kernel), (14, 8, 6));
        assert_eq!(
            s.named()
                .iter()
                .find(|(n, _)| *n == "exception_iface_gone")
                .map(|x| x.1),
            Some(8)
        );
        drop((l, kb, kf, w0, w1, cache, fresh.out));
        assert_eq!(p.available(), p.count(), "every buffer back");
    }

    /// `run` moves packets until told to stop.
    #[test]
    fn run_until_stopped() {
        let p = pool(128);
        let mut cache = p.cache();
        let (a, mut ka) = port(0, 1, 64, 64, None);
        let (mut w, c) = Ring::new(64).unwrap().split();
        let mut l = Loop::new(vec![a], vec![c], p.cache(), 32, 0).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let counters = l.counters();
        let s2 = Arc::clone(&stop);
        let t = std::thread::spawn(move || {
            l.run(&s2, Duration::from_micros(50));
            l
        });
        punt(&mut w, &mut cache, 0, 1, 20);
        let deadline = Instant::now() + Duration::from_secs(10);
        while counters.port(PortId(0)).unwrap().to_kernel < 20 {
            assert!(
                Instant::now() < deadline,
                "the loop never moved the packets"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        stop.store(true, Ordering::Relaxed);
        let l = t.join().unwrap();
        assert_eq!(drain_rx(&mut ka, 0, &mut cache).len(), 20);
        drop((l, ka, w, cache));
        assert_eq!(p.available(), p.count());
    }

    proptest! {
        /// Any mix of punts, ring sizes and limits: every punted packet is
        /// delivered or dropped under exactly one counter, every frame from
        /// the kernel is injected or counted, and no buffer is lost.
        #[test]
        fn every_packet_accounted_for(
            punts in proptest::collection::vec((0usize..3, 0u16..4, 0u16..40), 0..12),
            tap_ring in 0u32..4,
            out_ring in 0u32..4,
            limited in any::<bool>(),
            kernel_sends in 0u16..40,
            burst in 1usize..64,
        ) {
            let p = pool(1024);
            let mut cache = p.cache();
            let limit = limited.then(|| RateLimit::new(1000, 7).unwrap());
            let (a, mut ka) = port(0, 2, 2 << tap_ring, 2 << out_ring, limit);
            let (b, mut kb) = port(2, 1, 2 << tap_ring, 2 << out_ring, None);
            let mut workers = Vec::new();
            let mut rings = Vec::new();
            for _ in 0..3 {
                let (w, c) = Ring::new(64).unwrap().split();
                workers.push(w);
                rings.push(c);
            }
            let mut l = Loop::new(vec![a, b], rings, p.cache(), burst, 0).unwrap();
            let mut now = 0;
            let (mut unknown, mut pushed) = (0u64, 0u64);
            for (w, port, n) in punts {
                let n = n.min(64 - workers[w].len() as u16);
                punt(&mut workers[w], &mut cache, port, 0, n);
                pushed += u64::from(n);
                if port == 1 || port == 3 {
                    unknown += u64::from(n);
                }
                now += SEC / 100;
                l.poll(now);
                drain_rx(&mut ka, 0, &mut cache);
                drain_rx(&mut ka, 1, &mut cache);
                drain_rx(&mut kb, 0, &mut cache);
            }
            let mut sent = 0u64;
            for seq in 0..kernel_sends {
                let mut one = Burst::new();
                one.push(frame(&mut cache, 0, seq));
                sent += ka.queues[0].1.tx_burst(&mut cache, &mut one) as u64;
                for m in one.drain(..) {
                    cache.free(m);
                }
            }
            // Until the workers' rings are empty and the kernel's frames
            // all read (a burst per ring and queue per round).
            for _ in 0..(64 * 3 / burst + 8) {
                now += 1;
                l.poll(now);
            }
            prop_assert!(workers.iter().all(|w| w.is_empty()));
            let cs = l.counters();
            let mut punted = 0;
            for (_, s) in cs.all() {
                prop_assert_eq!(s.punted, s.to_kernel + s.rate_limited + s.tap_full + s.iface_gone);
                prop_assert_eq!(s.from_kernel, s.injected + s.inject_full);
                punted += s.punted;
            }
            prop_assert_eq!(QueueCounters::get(&cs.unknown_port), unknown);
            prop_assert_eq!(cs.port(PortId(0)).unwrap().from_kernel, sent);
            prop_assert_eq!(punted + unknown, pushed);
            drop((l, ka, kb, workers, cache));
            prop_assert_eq!(p.available(), p.count());
        }
    }
}
