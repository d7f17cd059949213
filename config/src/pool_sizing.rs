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
//! Both are computed in `u64` with checked arithmetic: a sum that
//! overflows is reported as too large, never wrapped.

use drivers::burst::MAX_BURST;
use drivers::pmd::{DEFAULT_VF_RX_RING, DEFAULT_VF_TX_RING};

/// Most buffers in a pool: 2^24 - 1, the maximum of 6WIND's NB_MBUF
/// (reference/anchors.md section 2.2). At 2240 bytes a buffer that is
/// about 35 GiB of memory.
pub const MAX_NB_MBUF: u64 = 16_777_215;

/// The smallest default pool (testpmd's size for one core).
pub const DEFAULT_NB_MBUF_FLOOR: u64 = 8192;

/// Buffers a VF queue pair holds with the default rings: one per RX and
/// per TX descriptor.
pub const VF_QUEUE_PAIR_BUFFERS: u64 = (DEFAULT_VF_RX_RING + DEFAULT_VF_TX_RING) as u64;

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

    /// The smallest pool that cannot starve a worker; `None` on overflow.
    pub fn minimum(&self) -> Option<u64> {
        u(self.workers).checked_mul(self.per_worker()?)
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
        format!(
            "{} x (1.5 x cache {} + burst {} + {} x {} tx-first bursts x {} + {} x {} descriptors)",
            plural(self.workers, "worker"),
            self.cache_size,
            self.burst,
            plural(self.ports, "port"),
            self.tx_first,
            self.burst,
            plural(self.vf_ports, "VF port"),
            self.vf_queue_pair
        )
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
