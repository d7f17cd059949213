//! The software ports the forwarder can open, behind one type.
//!
//! Workers are generic over queue types; a forwarder whose ports are of
//! different kinds uses this enum, which costs one `match` per burst (not per
//! packet). A run on one kind only (the benchmarks) can use that port type
//! directly.

use drivers::burst::Burst;
use drivers::pool::PoolCache;
use drivers::port::null::{NullPort, NullRx, NullTx};
use drivers::port::ring_pair::{RingPort, RingRx, RingTx};
use drivers::port::{LinkState, Port, PortError, PortInfo, PortStats, QueueSet, RxQueue, TxQueue};

/// A null or ring port.
#[derive(Debug)]
pub enum SoftPort {
    /// See [`NullPort`].
    Null(NullPort),
    /// See [`RingPort`].
    Ring(RingPort),
}

/// Receive queue of a [`SoftPort`].
#[derive(Debug)]
pub enum SoftRx {
    /// Null.
    Null(NullRx),
    /// Ring.
    Ring(RingRx),
}

/// Transmit queue of a [`SoftPort`].
#[derive(Debug)]
pub enum SoftTx {
    /// Null.
    Null(NullTx),
    /// Ring.
    Ring(RingTx),
}

impl RxQueue for SoftRx {
    #[inline]
    fn rx_burst(&mut self, cache: &mut PoolCache, out: &mut Burst, max: usize) -> usize {
        match self {
            SoftRx::Null(q) => q.rx_burst(cache, out, max),
            SoftRx::Ring(q) => q.rx_burst(cache, out, max),
        }
    }
}

impl TxQueue for SoftTx {
    #[inline]
    fn tx_burst(&mut self, cache: &mut PoolCache, pkts: &mut Burst) -> usize {
        match self {
            SoftTx::Null(q) => q.tx_burst(cache, pkts),
            SoftTx::Ring(q) => q.tx_burst(cache, pkts),
        }
    }
}

impl Port for SoftPort {
    type Rx = SoftRx;
    type Tx = SoftTx;

    fn info(&self) -> &PortInfo {
        match self {
            SoftPort::Null(p) => p.info(),
            SoftPort::Ring(p) => p.info(),
        }
    }

    fn link(&self) -> LinkState {
        match self {
            SoftPort::Null(p) => p.link(),
            SoftPort::Ring(p) => p.link(),
        }
    }

    fn stats(&self) -> PortStats {
        match self {
            SoftPort::Null(p) => p.stats(),
            SoftPort::Ring(p) => p.stats(),
        }
    }

    fn queues(&mut self, rx: usize, tx: usize) -> Result<QueueSet<SoftRx, SoftTx>, PortError> {
        match self {
            SoftPort::Null(p) => {
                let (r, t) = p.queues(rx, tx)?;
                Ok((
                    r.into_iter().map(SoftRx::Null).collect(),
                    t.into_iter().map(SoftTx::Null).collect(),
                ))
            }
            SoftPort::Ring(p) => {
                let (r, t) = p.queues(rx, tx)?;
                Ok((
                    r.into_iter().map(SoftRx::Ring).collect(),
                    t.into_iter().map(SoftTx::Ring).collect(),
                ))
            }
        }
    }
}
