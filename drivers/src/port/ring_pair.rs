//! In-memory port pairs: what one port of a pair sends, the other receives.
//!
//! Each queue `q` of port A is wired to queue `q` of port B by two
//! single-producer/single-consumer rings (A->B and B->A), so the worker that
//! owns A's TX queue `q` is the only producer and the worker that owns B's
//! RX queue `q` the only consumer. Buffers move by pointer, each with its
//! length packed beside it in the 8-byte slot ([`Carried`]): the sender
//! reads a buffer's length once (to count its bytes) and the receiver
//! counts bytes from the slots without touching the buffers at all. Like DPDK's net_ring, a receive
//! leaves `mbuf.port` as it was (the port that first received the packet);
//! a header write per packet would cost more than the rest of the ring
//! port's work together (README, "Where the time goes"). A ring that is
//! dropped with packets in it returns them to their pools.

use super::carried::Carried;
use super::{
    check_queue_counts, Capabilities, LinkState, Port, PortError, PortInfo, PortStats,
    QueueCounters, QueueSet, RxQueue, TxQueue,
};
use crate::burst::Burst;
use crate::mbuf::PortId;
use crate::net::MacAddr;
use crate::pool::PoolCache;
use crate::ring::{Consumer, Producer, Ring};
use std::sync::Arc;

/// Default ring size per queue and direction (DPDK's default descriptor
/// count in l2fwd/l3fwd).
pub const DEFAULT_RING_SIZE: usize = 1024;

/// One port of an in-memory pair.
#[derive(Debug)]
pub struct RingPort {
    info: PortInfo,
    rx: Option<Vec<Consumer<Carried>>>,
    tx: Option<Vec<Producer<Carried>>>,
    rx_counters: Vec<Arc<QueueCounters>>,
    tx_counters: Vec<Arc<QueueCounters>>,
}

impl RingPort {
    /// Two connected ports with `queues` queue pairs each, every ring
    /// holding `ring_size` packets (a power of two).
    pub fn pair(
        a: (PortId, &str),
        b: (PortId, &str),
        queues: usize,
        ring_size: usize,
    ) -> Result<(RingPort, RingPort), PortError> {
        let err = |why: String| PortError::Config {
            port: a.1.to_string(),
            why,
        };
        if queues == 0 {
            return Err(err("a ring pair needs at least one queue".into()));
        }
        let (mut a_tx, mut a_rx, mut b_tx, mut b_rx) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..queues {
            let (tx, rx) = Ring::new(ring_size)
                .map_err(|e| err(e.to_string()))?
                .split();
            a_tx.push(tx);
            b_rx.push(rx);
            let (tx, rx) = Ring::new(ring_size)
                .map_err(|e| err(e.to_string()))?
                .split();
            b_tx.push(tx);
            a_rx.push(rx);
        }
        let port = |(id, name): (PortId, &str), tx, rx| RingPort {
            info: PortInfo {
                id,
                name: name.to_string(),
                kind: "ring",
                mac: MacAddr::local(id.0),
                capabilities: Capabilities {
                    max_rx_queues: queues,
                    max_tx_queues: queues,
                    max_rx_frame: u16::MAX as usize,
                },
            },
            rx: Some(rx),
            tx: Some(tx),
            rx_counters: Vec::new(),
            tx_counters: Vec::new(),
        };
        Ok((port(a, a_tx, a_rx), port(b, b_tx, b_rx)))
    }
}

impl Port for RingPort {
    type Rx = RingRx;
    type Tx = RingTx;

    fn info(&self) -> &PortInfo {
        &self.info
    }

    fn link(&self) -> LinkState {
        // Memory never loses carrier (DPDK's net_ring reports the same).
        LinkState {
            up: true,
            speed_mbps: 0,
            full_duplex: true,
        }
    }

    fn stats(&self) -> PortStats {
        let get =
            |qs: &[Arc<QueueCounters>], f: fn(&QueueCounters) -> u64| qs.iter().map(|q| f(q)).sum();
        PortStats {
            ipackets: get(&self.rx_counters, |q| QueueCounters::get(&q.packets)),
            ibytes: get(&self.rx_counters, |q| QueueCounters::get(&q.bytes)),
            rx_nombuf: 0,
            ierrors: 0,
            opackets: get(&self.tx_counters, |q| QueueCounters::get(&q.packets)),
            obytes: get(&self.tx_counters, |q| QueueCounters::get(&q.bytes)),
            oerrors: get(&self.tx_counters, |q| QueueCounters::get(&q.dropped)),
        }
    }

    fn queues(&mut self, rx: usize, tx: usize) -> Result<QueueSet<RingRx, RingTx>, PortError> {
        check_queue_counts(&self.info, rx, tx)?;
        let (Some(mut consumers), Some(mut producers)) = (self.rx.take(), self.tx.take()) else {
            return Err(PortError::AlreadyStarted(self.info.name.clone()));
        };
        // Queues not asked for stay unused: their rings keep nothing.
        consumers.truncate(rx);
        producers.truncate(tx);
        self.rx_counters = (0..rx).map(|_| Arc::default()).collect();
        self.tx_counters = (0..tx).map(|_| Arc::default()).collect();
        let rxq = consumers
            .into_iter()
            .zip(&self.rx_counters)
            .map(|(ring, c)| RingRx {
                ring,
                counters: Arc::clone(c),
            })
            .collect();
        let txq = producers
            .into_iter()
            .zip(&self.tx_counters)
            .map(|(ring, c)| RingTx {
                ring,
                counters: Arc::clone(c),
            })
            .collect();
        Ok((rxq, txq))
    }
}

/// Receive queue of a [`RingPort`].
#[derive(Debug)]
pub struct RingRx {
    ring: Consumer<Carried>,
    counters: Arc<QueueCounters>,
}

impl RingRx {
    /// Packets waiting in this queue's ring.
    pub fn pending(&self) -> usize {
        self.ring.len()
    }
}

impl RxQueue for RingRx {
    #[inline]
    fn rx_burst(&mut self, _cache: &mut PoolCache, out: &mut Burst, max: usize) -> usize {
        let mut bytes = 0u64;
        let n = self.ring.dequeue_burst_map(out, max, |c| {
            bytes += u64::from(c.len());
            c.into_buf()
        });
        if n == 0 {
            return 0;
        }
        QueueCounters::add(&self.counters.packets, n as u64);
        QueueCounters::add(&self.counters.bytes, bytes);
        n
    }
}

/// Transmit queue of a [`RingPort`].
#[derive(Debug)]
pub struct RingTx {
    ring: Producer<Carried>,
    counters: Arc<QueueCounters>,
}

impl TxQueue for RingTx {
    #[inline]
    fn tx_burst(&mut self, _cache: &mut PoolCache, pkts: &mut Burst) -> usize {
        let want = pkts.len();
        let mut bytes = 0u64;
        // Only the buffers that go in are measured: what the ring has no
        // room for stays in `pkts`, in order, for the caller.
        let n = self.ring.enqueue_burst_map(pkts, |buf| {
            let c = Carried::new(buf);
            bytes += u64::from(c.len());
            c
        });
        QueueCounters::add(&self.counters.packets, n as u64);
        QueueCounters::add(&self.counters.bytes, bytes);
        QueueCounters::add(&self.counters.dropped, (want - n) as u64);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryBacking;
    use crate::pool::{Pool, PoolConfig};

    #[test]
    fn what_a_sends_b_receives_and_back() {
        let pool =
            Pool::new(&PoolConfig::new("ring-pair", 128).with_backing(MemoryBacking::NoHuge))
                .unwrap();
        let mut cache = pool.cache();
        let (mut a, mut b) = RingPort::pair((PortId(0), "a"), (PortId(1), "b"), 2, 16).unwrap();
        let (mut arx, mut atx) = a.queues(2, 2).unwrap();
        let (mut brx, mut btx) = b.queues(2, 2).unwrap();
        assert!(a.link().up && b.link().up);
        let mut burst = Burst::new();
        assert!(cache.alloc_bulk(&mut burst, 20));
        for (i, m) in burst.iter_mut().enumerate() {
            m.append(1 + i).unwrap()[0] = i as u8;
            m.set_port(PortId(7));
        }
        assert_eq!(atx[1].tx_burst(&mut cache, &mut burst), 16, "ring of 16");
        assert_eq!(burst.len(), 4, "the rest stays with the caller");
        cache.free_bulk(&mut burst);
        assert_eq!(
            brx[0].rx_burst(&mut cache, &mut burst, 32),
            0,
            "other queue is empty"
        );
        assert_eq!(brx[1].rx_burst(&mut cache, &mut burst, 32), 16);
        assert!(
            burst
                .iter()
                .enumerate()
                .all(|(i, m)| m.data()[0] == i as u8 && m.len() == 1 + i && m.port() == PortId(7)),
            "data and length through, port left as the sender had it (net_ring's way)"
        );
        assert_eq!(btx[0].tx_burst(&mut cache, &mut burst), 16);
        assert_eq!(arx[0].rx_burst(&mut cache, &mut burst, 8), 8);
        let (sa, sb) = (a.stats(), b.stats());
        assert_eq!((sa.opackets, sa.oerrors, sa.ipackets), (16, 4, 8));
        assert_eq!((sb.ipackets, sb.opackets), (16, 16));
        // Bytes: lengths 1..=16 went a->b; b sent them back, a took 1..=8.
        assert_eq!((sa.obytes, sb.ibytes, sb.obytes), (136, 136, 136));
        assert_eq!(sa.ibytes, 36);
        cache.free_bulk(&mut burst);
        // 8 packets are still in the b->a ring; dropping the ports and
        // queues returns them.
        drop((arx, atx, brx, btx, a, b));
        drop(cache);
        assert_eq!(pool.available(), 128);
    }
}
