//! Output: packets buffered per output port, sent a burst at a time, so
//! packets from several RX queues to one port share a `tx_burst`.
//!
//! Ends: sent; drop `tx_full` (the queue, or the buffer, had no room),
//! `bad_next_hop` (a port the worker has no queue on).

use super::next_hop::PortIndex;
use super::pipeline::L3Out;
use crate::counters::CoreSnapshot;
use crate::reasons::DropReason;
use drivers::burst::Burst;
use drivers::mbuf::Mbuf;
use drivers::pool::PoolCache;
use drivers::port::TxQueue;

/// Buffers `m` for `port`, or gives it back with the reason it cannot be.
#[inline]
pub fn buffer(out: &mut L3Out, port: PortIndex, m: Mbuf) -> Result<(), (Mbuf, DropReason)> {
    match out.tx.get_mut(port.index()) {
        Some(buf) => buf
            .try_push(m)
            .map_err(|e| (e.element(), DropReason::TxFull)),
        None => Err((m, DropReason::BadNextHop)),
    }
}

/// Sends every buffer holding at least `min` packets on its queue (`min`
/// 1: all), freeing and counting what a queue refuses.
pub fn flush<T: TxQueue>(
    tx: &mut [Burst],
    queues: &mut [T],
    min: usize,
    cache: &mut PoolCache,
    c: &mut CoreSnapshot,
) {
    for (buf, q) in tx.iter_mut().zip(queues.iter_mut()) {
        if buf.is_empty() || buf.len() < min {
            continue;
        }
        c.tx += q.tx_burst(cache, buf) as u64;
        if !buf.is_empty() {
            c.drops[DropReason::TxFull as usize] += buf.len() as u64;
            cache.free_bulk(buf);
        }
    }
}
