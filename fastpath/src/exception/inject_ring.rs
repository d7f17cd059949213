//! The exception thread's way out to a port whose TX queues the workers
//! own: an SPSC ring of buffers that the owning worker drains into its TX
//! queue of that port (as it would a burst of its own).

use drivers::burst::Burst;
use drivers::mbuf::Mbuf;
use drivers::pool::PoolCache;
use drivers::port::TxQueue;
use drivers::ring::Producer;

/// A [`TxQueue`] that moves packets into a ring for a worker to send.
/// Packets that do not fit stay in the burst, as the trait says.
#[derive(Debug)]
pub struct InjectRing(pub Producer<Mbuf>);

impl TxQueue for InjectRing {
    fn tx_burst(&mut self, _cache: &mut PoolCache, pkts: &mut Burst) -> usize {
        self.0.enqueue_burst(pkts)
    }
}
