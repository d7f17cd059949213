//! The latency rig: the product's forwarding loop on one CPU between two
//! ring ports, and the far ends of those ports for a source and a sink.
//!
//! ```text
//!   source --ring--> port 0 (RX) ==worker: io forwarding==> port 1 (TX) --ring--> sink
//!    (port 2 TX)                       CPU fwd                          (port 3 RX)
//! ```
//!
//! Ports 0 and 1 are what `fastpath run --ports ring,ring` gives its
//! worker: one RX and one TX queue on each, paired 0 <-> 1, behind
//! [`AnyRx`]/[`AnyTx`] as there, and the worker is the same
//! [`Worker::run`]. Here each of them is wired to a port of its own (2
//! and 3) instead of to each other, and the caller's thread, pinned on
//! another CPU, holds their queues: it sends on port 2 (into port 0's RX
//! ring) and receives on port 3 (from port 1's TX ring).

use drivers::burst::MAX_BURST;
use drivers::cpu::{pin_current_thread, CpuId};
use drivers::mbuf::PortId;
use drivers::memory::MemoryBacking;
use drivers::net::MacAddr;
use drivers::pool::{Pool, PoolCache, PoolConfig, PoolError};
use drivers::port::ring_pair::{RingPort, RingRx, RingTx};
use drivers::port::{Port, PortError, PortStats};
use fastpath::any_port::{AnyRx, AnyTx};
use fastpath::counters::{CoreCounters, CoreSnapshot};
use fastpath::fwd_mode::{FwdMode, MacRewrite};
use fastpath::worker::{RxBinding, Stopped, Worker};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

/// How to build the rig.
#[derive(Debug, Clone)]
pub struct RigConfig {
    /// The forwarder's CPU.
    pub fwd_cpu: CpuId,
    /// The source's and sink's CPU (the calling thread is pinned there).
    pub gen_cpu: CpuId,
    /// The forwarder's RX burst.
    pub fwd_burst: usize,
    /// Forwarding mode.
    pub mode: FwdMode,
    /// Slots of each ring (a power of two).
    pub ring_size: usize,
    /// Per-core cache of the pool.
    pub cache_size: usize,
    /// Where the pool's memory comes from.
    pub backing: MemoryBacking,
}

/// Why the rig did not start.
#[derive(Debug, thiserror::Error)]
pub enum RigError {
    /// The two roles on one CPU: the forwarder busy-polls, so the source
    /// and sink would only run when it is descheduled.
    #[error("the forwarder and the source/sink need two different CPUs (both are {0})")]
    SameCpu(CpuId),
    /// The pool.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// A ring port.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The worker thread could not be spawned.
    #[error("cannot spawn the forwarder's thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// A thread could not be pinned.
    #[error("cannot pin the {role} on CPU {cpu} (sched_setaffinity): {source}")]
    Pin {
        /// Which thread.
        role: &'static str,
        /// Where.
        cpu: CpuId,
        /// The errno.
        source: std::io::Error,
    },
}

/// The source's and the sink's ends, used from the pinned calling thread.
#[derive(Debug)]
pub struct Ends {
    /// Sends into the forwarder's input (port 2's TX).
    pub source: RingTx,
    /// Receives the forwarder's output (port 3's RX).
    pub sink: RingRx,
    /// Their buffer cache.
    pub cache: PoolCache,
}

/// The buffer audit after the rig is torn down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Audit {
    /// Buffers back in the pool.
    pub returned: usize,
    /// Buffers in the pool.
    pub count: usize,
    /// The worker thread panicked.
    pub worker_panicked: bool,
}

impl Audit {
    /// Every buffer back and no panic.
    pub fn clean(&self) -> bool {
        self.returned == self.count && !self.worker_panicked
    }
}

/// A running rig.
#[derive(Debug)]
pub struct Rig {
    /// The source's and sink's queues and cache.
    pub ends: Ends,
    // Queues nobody uses (port 2's RX: the forwarder sends nothing back;
    // port 3's TX), kept so that they drop with the rest.
    idle: (RingRx, RingTx),
    /// Ports 0 to 3, for their counters.
    ports: Vec<RingPort>,
    counters: Arc<CoreCounters>,
    worker: WorkerThread,
    // Last: dropped after every queue and cache that holds its buffers.
    pool: Pool,
}

/// The forwarder's thread, stopped and joined when dropped (an error
/// path), so that no thread keeps spinning.
#[derive(Debug)]
struct WorkerThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Stopped<AnyRx, AnyTx>>>,
}

impl WorkerThread {
    /// Stops and joins the worker; true if it panicked.
    fn halt(&mut self) -> bool {
        // Relaxed: the join below orders the worker's last writes.
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.take() {
            // Its queues and cache give their buffers back as they drop.
            Some(h) => h.join().map(drop).is_err(),
            None => false,
        }
    }
}

impl Drop for WorkerThread {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The pool: both rings full, both caches at their fullest (1.5 x
/// their size), a burst in the source's hands and one in the
/// forwarder's, and as much again for slack; at least 8192, the
/// forwarder's own floor.
pub fn pool_size(ring_size: usize, cache_size: usize) -> usize {
    let per_core = cache_size * 3 / 2 + 2 * MAX_BURST;
    (2 * ring_size + 2 * per_core).max(8192)
}

impl Rig {
    /// Builds the pool and ports, starts the worker on `cfg.fwd_cpu`, and
    /// pins the calling thread on `cfg.gen_cpu` (after the worker is
    /// spawned: a thread inherits its creator's mask).
    pub fn start(cfg: &RigConfig) -> Result<Rig, RigError> {
        if cfg.fwd_cpu == cfg.gen_cpu {
            return Err(RigError::SameCpu(cfg.fwd_cpu));
        }
        let count = pool_size(cfg.ring_size, cfg.cache_size);
        let pool = Pool::new(&PoolConfig {
            cache_size: cfg.cache_size,
            backing: cfg.backing.clone(),
            ..PoolConfig::new("lat_pool", u32::try_from(count).unwrap_or(u32::MAX))
        })?;
        let (p0, p2) = RingPort::pair((PortId(0), "ring0"), (PortId(2), "src"), 1, cfg.ring_size)?;
        let (p1, p3) = RingPort::pair((PortId(1), "ring1"), (PortId(3), "sink"), 1, cfg.ring_size)?;
        let mut ports = [p0, p1, p2, p3];
        let [q0, q1, q2, q3] = {
            let one = |p: &mut RingPort| -> Result<(RingRx, RingTx), RigError> {
                let (mut rx, mut tx) = p.queues(1, 1)?;
                match (rx.pop(), tx.pop()) {
                    (Some(r), Some(t)) => Ok((r, t)),
                    _ => Err(RigError::Port(PortError::Config {
                        port: p.info().name.clone(),
                        why: "gave no queue".into(),
                    })),
                }
            };
            let [a, b, c, d] = &mut ports;
            [one(a)?, one(b)?, one(c)?, one(d)?]
        };
        let worker = Worker {
            // testpmd's paired topology, as the forwarder wires it: what
            // port 0 receives goes out of port 1, and back.
            rx: vec![
                RxBinding {
                    queue: AnyRx::Ring(q0.0),
                    out: 1,
                    port: 0,
                },
                RxBinding {
                    queue: AnyRx::Ring(q1.0),
                    out: 0,
                    port: 1,
                },
            ],
            tx: vec![AnyTx::Ring(q0.1), AnyTx::Ring(q1.1)],
            rewrite: (0..2u16)
                .map(|p| MacRewrite {
                    dst: MacAddr::local(p ^ 1),
                    src: ports[usize::from(p)].info().mac,
                })
                .collect(),
            mode: cfg.mode,
            burst: cfg.fwd_burst,
            tx_first: 0,
            seed_gate: None,
            cache: pool.cache(),
            l3: None,
            inject: Vec::new(),
        };
        let counters = Arc::new(CoreCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let (c, s, cpu) = (Arc::clone(&counters), Arc::clone(&stop), cfg.fwd_cpu);
        let handle = std::thread::Builder::new()
            .name(format!("lat-fwd-{cpu}"))
            .spawn(move || {
                // Pinned from inside: a spawned thread inherits its
                // creator's mask, so pinning the creator first would put
                // both on one CPU.
                let pinned = pin_current_thread(cpu);
                let ok = pinned.is_ok();
                let _ = ready_tx.send(pinned);
                if !ok {
                    // Relaxed: the flag carries no data.
                    s.store(true, Ordering::Relaxed);
                }
                worker.run(&s, &c)
            })
            .map_err(RigError::Spawn)?;
        let mut rig = Rig {
            ends: Ends {
                source: q2.1,
                sink: q3.0,
                cache: pool.cache(),
            },
            idle: (q2.0, q3.1),
            ports: ports.into(),
            counters,
            worker: WorkerThread {
                stop,
                handle: Some(handle),
            },
            pool,
        };
        let pinned = ready_rx
            .recv()
            .unwrap_or_else(|_| Err(std::io::Error::other("the thread ended before pinning")));
        if let Err(source) = pinned {
            rig.worker.halt();
            return Err(RigError::Pin {
                role: "forwarder",
                cpu: cfg.fwd_cpu,
                source,
            });
        }
        if let Err(source) = pin_current_thread(cfg.gen_cpu) {
            rig.worker.halt();
            return Err(RigError::Pin {
                role: "source/sink",
                cpu: cfg.gen_cpu,
                source,
            });
        }
        Ok(rig)
    }

    /// The forwarder's counters now.
    pub fn fwd_counters(&self) -> CoreSnapshot {
        self.counters.snapshot()
    }

    /// The source's and sink's ends, and the forwarder's counters to
    /// read while using them.
    pub fn ends_and_counters(&mut self) -> (&mut Ends, &CoreCounters) {
        (&mut self.ends, &self.counters)
    }

    /// The four ports' counters (0 and 1 the forwarder's, 2 the
    /// source's, 3 the sink's).
    pub fn port_stats(&self) -> Vec<PortStats> {
        self.ports.iter().map(|p| p.stats()).collect()
    }

    /// The pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Stops the worker, drops every queue, cache and port, and counts
    /// the buffers back in the pool.
    pub fn stop(mut self) -> Audit {
        let worker_panicked = self.worker.halt();
        let Rig {
            ends,
            idle,
            ports,
            pool,
            ..
        } = self;
        drop((ends, idle, ports));
        Audit {
            returned: pool.available(),
            count: pool.count(),
            worker_panicked,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_holds_both_rings_and_caches() {
        assert_eq!(pool_size(1024, 256), 8192);
        assert_eq!(pool_size(65536, 512), 2 * 65536 + 2 * (768 + 1024));
    }
}
