//! The null port: receive hands out fresh buffers, send frees them.
//!
//! It does the same work as DPDK's net_null (drivers/net/null/rte_eth_null.c):
//! RX allocates a burst from the pool and sets length and port, TX counts
//! the bytes and frees every buffer. It measures the cost of the forwarding
//! machinery itself, with no device in the way.

use super::{
    check_queue_counts, Capabilities, LinkState, Port, PortError, PortInfo, PortStats,
    QueueCounters, QueueSet, RxQueue, TxQueue,
};
use crate::burst::Burst;
use crate::mbuf::PortId;
use crate::net::MacAddr;
use crate::pool::PoolCache;
use std::sync::Arc;

/// Default length of received packets (a minimum Ethernet frame without FCS
/// would be 60; DPDK's null PMD default is 64).
pub const DEFAULT_PACKET_SIZE: u16 = 64;
/// Queues a null port offers (as many as workers could want).
const MAX_QUEUES: usize = 1024;

/// A null port.
#[derive(Debug)]
pub struct NullPort {
    info: PortInfo,
    packet_size: u16,
    rx: Vec<Arc<QueueCounters>>,
    tx: Vec<Arc<QueueCounters>>,
}

impl NullPort {
    /// A null port with id `id` whose packets are `packet_size` bytes.
    pub fn new(id: PortId, name: impl Into<String>, packet_size: u16) -> NullPort {
        NullPort {
            info: PortInfo {
                id,
                name: name.into(),
                kind: "null",
                mac: MacAddr::local(id.0),
                capabilities: Capabilities {
                    max_rx_queues: MAX_QUEUES,
                    max_tx_queues: MAX_QUEUES,
                    max_rx_frame: u16::MAX as usize,
                },
            },
            packet_size,
            rx: Vec::new(),
            tx: Vec::new(),
        }
    }
}

impl Port for NullPort {
    type Rx = NullRx;
    type Tx = NullTx;

    fn info(&self) -> &PortInfo {
        &self.info
    }

    fn link(&self) -> LinkState {
        LinkState {
            up: true,
            speed_mbps: 10_000,
            full_duplex: true,
        }
    }

    fn stats(&self) -> PortStats {
        let sum =
            |qs: &[Arc<QueueCounters>], f: fn(&QueueCounters) -> u64| qs.iter().map(|q| f(q)).sum();
        PortStats {
            ipackets: sum(&self.rx, |q| QueueCounters::get(&q.packets)),
            ibytes: sum(&self.rx, |q| QueueCounters::get(&q.bytes)),
            rx_nombuf: sum(&self.rx, |q| QueueCounters::get(&q.dropped)),
            opackets: sum(&self.tx, |q| QueueCounters::get(&q.packets)),
            obytes: sum(&self.tx, |q| QueueCounters::get(&q.bytes)),
            ierrors: 0,
            oerrors: 0,
        }
    }

    fn queues(&mut self, rx: usize, tx: usize) -> Result<QueueSet<NullRx, NullTx>, PortError> {
        if !self.rx.is_empty() || !self.tx.is_empty() {
            return Err(PortError::AlreadyStarted(self.info.name.clone()));
        }
        check_queue_counts(&self.info, rx, tx)?;
        self.rx = (0..rx).map(|_| Arc::default()).collect();
        self.tx = (0..tx).map(|_| Arc::default()).collect();
        let rxq = self
            .rx
            .iter()
            .map(|c| NullRx {
                port: self.info.id,
                packet_size: self.packet_size,
                counters: Arc::clone(c),
            })
            .collect();
        let txq = self
            .tx
            .iter()
            .map(|c| NullTx {
                counters: Arc::clone(c),
            })
            .collect();
        Ok((rxq, txq))
    }
}

/// Receive queue of a [`NullPort`].
#[derive(Debug)]
pub struct NullRx {
    port: PortId,
    packet_size: u16,
    counters: Arc<QueueCounters>,
}

impl RxQueue for NullRx {
    #[inline]
    fn rx_burst(&mut self, cache: &mut PoolCache, out: &mut Burst, max: usize) -> usize {
        let n = max.min(out.remaining_capacity());
        if n == 0 {
            return 0;
        }
        // packet_size is at most the data room (checked when the port is
        // built by the application); if it were not, the buffers would
        // just stay empty.
        if !cache.alloc_bulk_received(out, n, self.packet_size as usize, self.port) {
            QueueCounters::add(&self.counters.dropped, n as u64);
            return 0;
        }
        QueueCounters::add(&self.counters.packets, n as u64);
        QueueCounters::add(&self.counters.bytes, n as u64 * self.packet_size as u64);
        n
    }
}

/// Transmit queue of a [`NullPort`].
#[derive(Debug)]
pub struct NullTx {
    counters: Arc<QueueCounters>,
}

impl TxQueue for NullTx {
    #[inline]
    fn tx_burst(&mut self, cache: &mut PoolCache, pkts: &mut Burst) -> usize {
        let n = pkts.len();
        let bytes = cache.free_bulk_counted(pkts);
        QueueCounters::add(&self.counters.packets, n as u64);
        QueueCounters::add(&self.counters.bytes, bytes);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mbuf::OlFlags;
    use crate::memory::MemoryBacking;
    use crate::pool::{Pool, PoolConfig};

    /// A software port takes every frame: any multicast list is
    /// accepted as is, a unicast entry is the caller's mistake.
    #[test]
    fn software_ports_accept_every_multicast_list() {
        use crate::net::MacAddr;
        use crate::port::{MulticastOutcome, PortError};
        let mut p = NullPort::new(PortId(0), "n0", 64);
        let g = MacAddr([0x33, 0x33, 0xff, 0, 0, 1]);
        assert_eq!(p.set_multicast(&[g]).unwrap(), MulticastOutcome::AcceptsAll);
        assert!(matches!(
            p.set_multicast(&[g, MacAddr([2, 0, 0, 0, 0, 1])]),
            Err(PortError::Config { .. })
        ));
    }

    #[test]
    fn rx_hands_out_sized_buffers_and_tx_frees_them() {
        let pool =
            Pool::new(&PoolConfig::new("null-test", 256).with_backing(MemoryBacking::NoHuge))
                .unwrap();
        let mut cache = pool.cache();
        let mut port = NullPort::new(PortId(3), "n0", 64);
        let (mut rx, mut tx) = port.queues(1, 1).unwrap();
        assert!(port.queues(1, 1).is_err(), "queues are handed out once");
        let mut burst = Burst::new();
        assert_eq!(rx[0].rx_burst(&mut cache, &mut burst, 32), 32);
        assert!(burst.iter().all(|m| m.len() == 64 && m.port() == PortId(3)));
        assert_eq!(tx[0].tx_burst(&mut cache, &mut burst), 32);
        assert!(burst.is_empty());
        let s = port.stats();
        assert_eq!(
            (s.ipackets, s.opackets, s.ibytes, s.obytes),
            (32, 32, 2048, 2048)
        );
        drop(cache);
        assert_eq!(pool.available(), 256);
    }

    #[test]
    fn rx_counts_nombuf_when_pool_is_dry() {
        let mut cfg = PoolConfig::new("null-dry", 16).with_backing(MemoryBacking::NoHuge);
        cfg.cache_size = 0;
        let pool = Pool::new(&cfg).unwrap();
        let mut cache = pool.cache();
        let mut port = NullPort::new(PortId(0), "n", 64);
        let (mut rx, _tx) = port.queues(1, 1).unwrap();
        let mut burst = Burst::new();
        assert_eq!(rx[0].rx_burst(&mut cache, &mut burst, 32), 0);
        assert_eq!(port.stats().rx_nombuf, 32);
        assert_eq!(rx[0].rx_burst(&mut cache, &mut burst, 16), 16);
    }

    #[test]
    fn rx_resets_what_the_last_user_left_in_a_buffer() {
        let mut cfg = PoolConfig::new("null-reset", 8).with_backing(MemoryBacking::NoHuge);
        cfg.cache_size = 8;
        let pool = Pool::new(&cfg).unwrap();
        let mut cache = pool.cache();
        let mut port = NullPort::new(PortId(2), "n", 60);
        let (mut rx, mut tx) = port.queues(1, 1).unwrap();
        let mut burst = Burst::new();
        assert!(cache.alloc_bulk(&mut burst, 8));
        for m in burst.iter_mut() {
            m.set_len(100).unwrap();
            m.prepend(10).unwrap();
            m.set_rss_hash(0xdead_beef);
            m.set_ol_flags(OlFlags::RX_RSS_HASH | OlFlags::RX_VLAN_STRIPPED);
            m.set_vlan_tci(42);
            m.set_port(PortId(7));
        }
        cache.free_bulk(&mut burst);
        assert_eq!(rx[0].rx_burst(&mut cache, &mut burst, 8), 8);
        for m in burst.iter() {
            assert_eq!((m.len(), m.port(), m.headroom()), (60, PortId(2), 128));
            assert_eq!(
                (m.rss_hash(), m.ol_flags(), m.vlan_tci()),
                (0, OlFlags::NONE, 0)
            );
            assert_eq!(m.pool_id(), pool.id());
        }
        assert_eq!(tx[0].tx_burst(&mut cache, &mut burst), 8);
        assert_eq!(port.stats().obytes, 480);
        drop(cache);
        assert_eq!(pool.available(), 8);
    }

    #[test]
    fn rx_leaves_buffers_empty_when_the_size_exceeds_the_data_room() {
        let mut cfg = PoolConfig::new("null-big", 8).with_backing(MemoryBacking::NoHuge);
        cfg.data_room = 100;
        let pool = Pool::new(&cfg).unwrap();
        let mut cache = pool.cache();
        let mut port = NullPort::new(PortId(0), "n", 101);
        let (mut rx, _tx) = port.queues(1, 1).unwrap();
        let mut burst = Burst::new();
        assert_eq!(rx[0].rx_burst(&mut cache, &mut burst, 4), 4);
        assert!(burst.iter().all(|m| m.is_empty() && m.port() == PortId(0)));
        cache.free_bulk(&mut burst);
    }
}
