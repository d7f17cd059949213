//! How many buffers the pool needs: the rule, in one place.
//!
//! A worker can hold, at the same time and away from the pool's shared
//! ring:
//! - its cache, up to 1.5 x the cache size (a cache spills back to the
//!   ring only when it reaches 1.5 x its size, as DPDK's mempool caches do:
//!   rte_mempool.h, `RTE_MEMPOOL_CACHE_FLUSHTHRESH_MULTIPLIER`);
//! - the burst it is forwarding;
//! - the bursts it seeded at start (`tx_first` bursts on every port), which
//!   ring loops keep circulating;
//! - on every VF port, one buffer per RX descriptor (posted to the device)
//!   and per TX descriptor (sent, not yet completed).
//!
//! So the **minimum** is
//! `workers x (1.5 x cache + burst + ports x tx_first x burst + VF ports x (RX + TX descriptors))`.
//! A smaller pool would leave some worker with no buffer to receive into
//! while the others hold the rest: it runs at 0 packets per second with
//! only `rx_nombuf` to say why, so it is refused.
//!
//! The **default** adds room for every ring port's rings to fill
//! (`ring ports x workers x ring size`) and two maximum bursts per worker
//! of slack, with a floor of 8192 buffers (what testpmd gives one core).
//!
//! In l3 mode (`--mode l3`) buffers also wait on the way to and from the
//! kernel, and the minimum adds them once for the whole run:
//! `workers x punt ring + ports x injection ring` (every worker's punt ring
//! and every port's injection ring full), the exception thread's cache and
//! burst (`1.5 x cache + burst`: it copies into and out of its TAP or
//! vhost-net queues, whose own memory holds no pool buffer), and the
//! workers' per-port TX buffers (`workers x ports x burst`: a buffer is
//! sent once it holds a burst). Without them a stalled kernel could hold
//! the buffers the workers receive into.
//!
//! Both are computed in `u64` with checked arithmetic: a sum that
//! overflows is reported as too large, never wrapped.

use drivers::burst::MAX_BURST;
use drivers::memory::MemoryBacking;
use drivers::pmd::{DEFAULT_VF_RX_RING, DEFAULT_VF_TX_RING};
use drivers::pool::PoolConfig;

/// Most buffers in a pool: 2^24 - 1, the maximum of 6WIND's NB_MBUF
/// (reference/anchors.md section 2.2). At 2240 bytes a buffer that is
/// about 35 GiB of memory.
pub const MAX_NB_MBUF: u64 = 16_777_215;

/// The smallest default pool (testpmd's size for one core).
pub const DEFAULT_NB_MBUF_FLOOR: u64 = 8192;

/// Buffers a VF queue pair holds with the default rings: one per RX and
/// per TX descriptor.
pub const VF_QUEUE_PAIR_BUFFERS: u64 = (DEFAULT_VF_RX_RING + DEFAULT_VF_TX_RING) as u64;

/// Slots of each worker's punt ring (l3 mode): exception traffic is
/// low-rate, and a burst of punts larger than this is counted
/// (`punt_ring_full`), not waited for.
pub const PUNT_RING_SIZE: usize = 1024;

/// Slots of each port's injection ring (l3 mode: the kernel's frames on
/// their way out): what does not fit is counted by the exception thread
/// (`inject_full`).
pub const INJECT_RING_SIZE: usize = 1024;

/// What l3 mode's exception path can hold (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExceptionDemand {
    /// Slots of each worker's punt ring.
    pub punt_ring: usize,
    /// Slots of each port's injection ring.
    pub inject_ring: usize,
}

impl Default for ExceptionDemand {
    /// The rings the forwarder makes.
    fn default() -> Self {
        ExceptionDemand {
            punt_ring: PUNT_RING_SIZE,
            inject_ring: INJECT_RING_SIZE,
        }
    }
}

/// What the pool must feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolDemand {
    /// Worker cores.
    pub workers: usize,
    /// Ports (every worker has a TX queue on each).
    pub ports: usize,
    /// Ring ports among them.
    pub ring_ports: usize,
    /// VF (PCI) ports among them.
    pub vf_ports: usize,
    /// Per-worker cache size.
    pub cache_size: usize,
    /// Burst size.
    pub burst: usize,
    /// Bursts seeded on every TX queue at start.
    pub tx_first: usize,
    /// Slots of each ring of a ring port.
    pub ring_size: usize,
    /// Buffers one VF queue pair holds: its RX plus TX descriptors
    /// ([`VF_QUEUE_PAIR_BUFFERS`] with the default rings).
    pub vf_queue_pair: u64,
    /// l3 mode: the exception path's rings (`None` in the other modes).
    pub exception: Option<ExceptionDemand>,
}

fn u(v: usize) -> u64 {
    // usize is at most 64 bits on every target Rust supports.
    v as u64
}

impl PoolDemand {
    /// Buffers one worker can hold at once (see the module docs); `None`
    /// if the sum overflows.
    fn per_worker(&self) -> Option<u64> {
        let cache = u(self.cache_size).checked_mul(3)? / 2;
        let seeds = u(self.ports)
            .checked_mul(u(self.tx_first))?
            .checked_mul(u(self.burst))?;
        let vf = u(self.vf_ports).checked_mul(self.vf_queue_pair)?;
        cache
            .checked_add(u(self.burst))?
            .checked_add(seeds)?
            .checked_add(vf)
    }

    /// Buffers l3 mode's exception path and TX buffers can hold at once
    /// (see the module docs): 0 in the other modes; `None` on overflow.
    pub fn exception_path(&self) -> Option<u64> {
        let Some(e) = self.exception else {
            return Some(0);
        };
        let punt = u(self.workers).checked_mul(u(e.punt_ring))?;
        let inject = u(self.ports).checked_mul(u(e.inject_ring))?;
        let thread = (u(self.cache_size).checked_mul(3)? / 2).checked_add(u(self.burst))?;
        let tx_buffers = u(self.workers)
            .checked_mul(u(self.ports))?
            .checked_mul(u(self.burst))?;
        punt.checked_add(inject)?
            .checked_add(thread)?
            .checked_add(tx_buffers)
    }

    /// The smallest pool that cannot starve a worker; `None` on overflow.
    pub fn minimum(&self) -> Option<u64> {
        u(self.workers)
            .checked_mul(self.per_worker()?)?
            .checked_add(self.exception_path()?)
    }

    /// The pool used when none is given; `None` on overflow.
    pub fn default_size(&self) -> Option<u64> {
        let rings = u(self.ring_ports)
            .checked_mul(u(self.workers))?
            .checked_mul(u(self.ring_size))?;
        let slack = u(self.workers).checked_mul(2 * u(MAX_BURST))?;
        Some(
            self.minimum()?
                .checked_add(rings)?
                .checked_add(slack)?
                .max(DEFAULT_NB_MBUF_FLOOR),
        )
    }

    /// The minimum rule with these figures, for messages:
    /// "1 worker x (1.5 x cache 256 + burst 32 + 2 ports x 0 tx-first bursts x 32 + 0 VF ports x 1024)".
    pub fn explain_minimum(&self) -> String {
        let workers = format!(
            "{} x (1.5 x cache {} + burst {} + {} x {} tx-first bursts x {} + {} x {} descriptors)",
            plural(self.workers, "worker"),
            self.cache_size,
            self.burst,
            plural(self.ports, "port"),
            self.tx_first,
            self.burst,
            plural(self.vf_ports, "VF port"),
            self.vf_queue_pair
        );
        match self.exception {
            None => workers,
            Some(e) => format!(
                "{workers} + l3 exception path ({} x punt ring {} + {} x injection ring {} + exception thread 1.5 x cache {} + burst {} + {} x {} x TX buffer {})",
                plural(self.workers, "worker"),
                e.punt_ring,
                plural(self.ports, "port"),
                e.inject_ring,
                self.cache_size,
                self.burst,
                plural(self.workers, "worker"),
                plural(self.ports, "port"),
                self.burst,
            ),
        }
    }

    /// The default rule with these figures, for messages.
    pub fn explain_default(&self) -> String {
        format!(
            "the minimum {} + {} x {} x ring size {} + {} x 2 x {MAX_BURST}, at least {DEFAULT_NB_MBUF_FLOOR}",
            self.explain_minimum(),
            plural(self.ring_ports, "ring port"),
            plural(self.workers, "worker"),
            self.ring_size,
            plural(self.workers, "worker"),
        )
    }
}

/// Bytes of memory a pool of `nb_mbuf` buffers asks of `backing`, before
/// the region rounds them up to its page size: the run's pool
/// (`fastpath::forwarder` builds it from `PoolConfig::new` with these
/// defaults), laid out as the drivers crate lays it out.
pub fn pool_bytes(nb_mbuf: u32, backing: &MemoryBacking) -> u64 {
    let bytes = PoolConfig::new("mbuf_pool", nb_mbuf)
        .with_backing(backing.clone())
        .region_bytes();
    // usize is at most 64 bits on every target Rust supports.
    bytes as u64
}

/// "1 worker", "2 workers".
fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn demand() -> PoolDemand {
        PoolDemand {
            workers: 1,
            ports: 2,
            ring_ports: 0,
            vf_ports: 0,
            cache_size: 256,
            burst: 32,
            tx_first: 0,
            ring_size: 1024,
            vf_queue_pair: VF_QUEUE_PAIR_BUFFERS,
            exception: None,
        }
    }

    #[test]
    fn the_rule_with_figures() {
        let d = demand();
        assert_eq!(d.minimum(), Some(384 + 32));
        assert_eq!(d.default_size(), Some(DEFAULT_NB_MBUF_FLOOR));
        let ring = PoolDemand {
            workers: 2,
            ring_ports: 2,
            tx_first: 16,
            ..d
        };
        // 2 x (384 + 32 + 2 x 16 x 32) = 2880; + 2 x 2 x 1024 rings + 2 x 1024 slack.
        assert_eq!(ring.minimum(), Some(2880));
        assert_eq!(ring.default_size(), Some(2880 + 4096 + 2048));
        let vf = PoolDemand { vf_ports: 2, ..d };
        assert_eq!(vf.minimum(), Some(416 + 2048));
        assert_eq!(
            d.explain_minimum(),
            "1 worker x (1.5 x cache 256 + burst 32 + 2 ports x 0 tx-first bursts x 32 + 0 VF ports x 1024 descriptors)"
        );
    }

    #[test]
    fn l3_counts_the_exception_path() {
        let d = PoolDemand {
            workers: 2,
            exception: Some(ExceptionDemand::default()),
            ..demand()
        };
        // 2 x 1024 punt + 2 x 1024 injection + (384 + 32) thread + 2 x 2 x 32 TX buffers.
        let exc = 2048 + 2048 + 416 + 128;
        assert_eq!(d.exception_path(), Some(exc));
        assert_eq!(d.minimum(), Some(2 * 416 + exc));
        // Every punt and injection ring full leaves each worker its own
        // minimum: the default holds at least that.
        let full = (2 * PUNT_RING_SIZE + 2 * INJECT_RING_SIZE) as u64;
        assert!(d.default_size().unwrap() - full >= 2 * 416);
        assert_eq!(demand().exception_path(), Some(0));
        assert_eq!(
            d.explain_minimum(),
            "2 workers x (1.5 x cache 256 + burst 32 + 2 ports x 0 tx-first bursts x 32 + 0 VF ports x 1024 descriptors) \
             + l3 exception path (2 workers x punt ring 1024 + 2 ports x injection ring 1024 \
             + exception thread 1.5 x cache 256 + burst 32 + 2 workers x 2 ports x TX buffer 32)"
        );
        let huge = PoolDemand {
            exception: Some(ExceptionDemand {
                punt_ring: usize::MAX,
                inject_ring: 1,
            }),
            workers: 2,
            ..demand()
        };
        assert_eq!(huge.minimum(), None);
    }

    #[test]
    fn pool_bytes_follow_the_layout() {
        // 2240-byte buffers: 936 fit in a 2 MiB page, the rest of it unused.
        assert_eq!(pool_bytes(936, &MemoryBacking::default()), 2 << 20);
        assert_eq!(pool_bytes(937, &MemoryBacking::default()), 4 << 20);
        assert_eq!(pool_bytes(10, &MemoryBacking::NoHuge), 22_400);
    }

    #[test]
    fn overflow_is_none_not_a_wrap() {
        let huge = PoolDemand {
            workers: usize::MAX,
            ..demand()
        };
        assert_eq!(huge.minimum(), None);
        assert_eq!(huge.default_size(), None);
        let seeds = PoolDemand {
            tx_first: usize::MAX,
            ..demand()
        };
        assert_eq!(seeds.minimum(), None);
        let rings = PoolDemand {
            ring_ports: 2,
            ring_size: usize::MAX,
            ..demand()
        };
        assert!(rings.minimum().is_some());
        assert_eq!(rings.default_size(), None);
    }

    proptest! {
        /// Whatever the figures, no panic, and the default is never below
        /// the minimum.
        #[test]
        fn default_is_at_least_the_minimum(
            workers in any::<usize>(), ports in any::<usize>(), ring_ports in any::<usize>(),
            vf_ports in any::<usize>(), cache_size in any::<usize>(), burst in any::<usize>(),
            tx_first in any::<usize>(), ring_size in any::<usize>(), small in any::<bool>(),
        ) {
            let cut = |v: usize| if small { v % 1000 } else { v };
            let d = PoolDemand {
                workers: cut(workers), ports: cut(ports), ring_ports: cut(ring_ports),
                vf_ports: cut(vf_ports), cache_size: cut(cache_size), burst: cut(burst),
                tx_first: cut(tx_first), ring_size: cut(ring_size),
                vf_queue_pair: VF_QUEUE_PAIR_BUFFERS,
                exception: small.then(ExceptionDemand::default),
            };
            if let (Some(min), Some(def)) = (d.minimum(), d.default_size()) {
                prop_assert!(def >= min);
            }
            if small {
                prop_assert!(d.minimum().is_some());
            }
        }
    }
}
