//! What a worker holds to route: the tables (through its RCU reader),
//! its punt ring to the exception thread, and the pipeline's scratch.

use super::next_hop::PortIndex;
use super::output;
use super::pipeline::{Ctx, L3Out, Pipeline};
use super::tables::Tables;
use crate::counters::CoreSnapshot;
use crate::exception::Punted;
use crate::reasons::DropReason;
use crate::tables::Reader;
use drivers::burst::Burst;
use drivers::mbuf::PortId;
use drivers::pool::PoolCache;
use drivers::port::TxQueue;
use drivers::ring::Producer;
use std::fmt;

/// Slots of a worker's punt ring, defined with the pool sizing rule that
/// counts them.
pub use config::pool_sizing::PUNT_RING_SIZE;

/// Frames to seed one port with (see [`L3Worker::seeds`]).
pub type SeedFrames = Vec<Vec<u8>>;

/// How a worker reads the tables: its reader of the published copy (see
/// [`super::published`]). [`TablesReader::read`] is taken once per RX
/// burst and its result used for the whole burst; [`TablesReader::quiescent`]
/// is called once per worker loop, outside any burst, and is where a new
/// publication becomes visible. The borrow rules keep the two apart: no
/// reference from `read` lives across `quiescent`.
#[derive(Debug)]
pub struct TablesReader(pub Reader<Tables>);

impl TablesReader {
    /// The tables for one burst.
    #[inline]
    pub fn read(&self) -> &Tables {
        self.0.get()
    }

    /// This worker holds no reference into the tables: the publisher may
    /// take the old copy back.
    #[inline]
    pub fn quiescent(&mut self) {
        self.0.quiescent();
    }
}

/// A worker's router state (L3 mode).
pub struct L3Worker {
    /// The tables.
    pub tables: TablesReader,
    /// Punted packets, to the exception thread (its
    /// [`ExceptionLoop`](crate::exception::ExceptionLoop) drains the other
    /// end).
    pub punts: Producer<Punted>,
    /// Per TX port, the frames `--tx-first` seeds that port with, in turn
    /// (none: the io/mac modes' seed frame). A loop of ring ports needs
    /// frames the tables route.
    pub seeds: Vec<SeedFrames>,
    pipeline: Pipeline,
    out: L3Out,
}

impl fmt::Debug for L3Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("L3Worker")
            .field("ports", &self.out.tx.len())
            .finish_non_exhaustive()
    }
}

impl L3Worker {
    /// Router state for a worker with a TX queue on each of `ports` ports.
    pub fn new(tables: TablesReader, punts: Producer<Punted>, ports: usize) -> Self {
        L3Worker {
            tables,
            punts,
            seeds: Vec::new(),
            pipeline: Pipeline::new(),
            out: L3Out::new(ports),
        }
    }

    /// Routes one RX burst received on `in_port`, leaving it empty: the
    /// forwarded packets wait in the per-port TX buffers (see
    /// [`L3Worker::flush`]), the punts are on the punt ring (or dropped
    /// and counted when it is full), the drops are freed.
    #[inline]
    pub fn route(
        &mut self,
        in_port: PortIndex,
        burst: &mut Burst,
        cache: &mut PoolCache,
        c: &mut CoreSnapshot,
    ) {
        let ctx = Ctx {
            tables: self.tables.read(),
            in_port,
        };
        self.pipeline.run(ctx, burst, &mut self.out, c);
        // One at a time: punts are rare, and each is counted by where it
        // ended, on the ring or dropped.
        for p in self.out.punts.drain(..) {
            let reason = p.reason;
            let handed = Punted {
                port: PortId(p.in_port.0),
                mbuf: p.mbuf,
            };
            match self.punts.push(handed) {
                Ok(()) => c.punts[reason as usize] += 1,
                Err(p) => {
                    c.drops[DropReason::PuntRingFull as usize] += 1;
                    cache.free(p.mbuf);
                }
            }
        }
        if !self.out.drops.is_empty() {
            cache.free_bulk(&mut self.out.drops);
        }
    }

    /// Sends the TX buffers holding at least `min` packets (1: all) on the
    /// worker's queues, by port index.
    #[inline]
    pub fn flush<T: TxQueue>(
        &mut self,
        queues: &mut [T],
        min: usize,
        cache: &mut PoolCache,
        c: &mut CoreSnapshot,
    ) {
        output::flush(&mut self.out.tx, queues, min.max(1), cache, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l3::{PortConf, TableOp};
    use crate::reasons::PuntReason;
    use drivers::memory::MemoryBacking;
    use drivers::net::MacAddr;
    use drivers::pool::{Pool, PoolConfig};
    use drivers::ring::Ring;

    /// ARP from port 0: a punt each. A ring of 2 takes two; the other
    /// three are `punt_ring_full` drops, each counted once, freed.
    #[test]
    fn a_full_punt_ring_is_a_counted_drop() {
        let mut cfg = PoolConfig::new("l3-worker-unit", 64).with_backing(MemoryBacking::NoHuge);
        cfg.cache_size = 0;
        let pool = Pool::new(&cfg).unwrap();
        let mut t = Tables::new();
        t.apply(&TableOp::SetPort {
            port: PortIndex(0),
            conf: PortConf {
                mac: MacAddr::local(0),
                mtu: 1500,
            },
        });
        let (producer, mut consumer) = Ring::new(2).unwrap().split();
        let lr = crate::l3::TablesPublisher::new(t);
        let mut w = L3Worker::new(TablesReader(lr.readers().register("w")), producer, 1);
        let mut burst = Burst::new();
        for _ in 0..5 {
            let mut m = pool.alloc().unwrap();
            let d = m.append(60).unwrap();
            d.fill(0);
            d[..6].copy_from_slice(&MacAddr::BROADCAST.0);
            d[12..14].copy_from_slice(&[0x08, 0x06]);
            burst.push(m);
        }
        let mut cache = pool.cache();
        let mut c = CoreSnapshot::default();
        w.route(PortIndex(0), &mut burst, &mut cache, &mut c);
        assert!(burst.is_empty());
        assert_eq!(c.punts_for(PuntReason::Arp), 2);
        assert_eq!(c.drops_for(DropReason::PuntRingFull), 3);
        assert_eq!(c.punted() + c.dropped(), 5);
        let mut got = 0;
        while let Some(p) = consumer.pop() {
            assert_eq!(p.port, PortId(0));
            got += 1;
        }
        assert_eq!(got, 2);
        drop(cache);
        assert_eq!(pool.available(), pool.count(), "every buffer back");
    }
}
