//! Every kind of port the forwarder can open, behind one type.
//!
//! Workers are generic over queue types; a forwarder whose ports are of
//! different kinds uses this enum, which costs one `match` per burst (not per
//! packet). Device ports (VFs, whatever their driver) come from
//! `drivers::pmd::open_vf` as a [`DynPort`], and so do simulated VFs (a
//! device model with its driver, `crate::sim_ports`): this crate never
//! names a driver. A run on one kind only (the benchmarks) can use that port type
//! directly.

use drivers::burst::Burst;
use drivers::net::MacAddr;
use drivers::pool::PoolCache;
use drivers::port::af_packet::{AfPacketPort, AfPacketRx, AfPacketTx};
use drivers::port::null::{NullPort, NullRx, NullTx};
use drivers::port::ring_pair::{RingPort, RingRx, RingTx};
use drivers::port::{
    DynPort, DynRx, DynTx, LinkState, MulticastOutcome, Port, PortError, PortInfo, PortStats,
    QueueSet, RxQueue, ServiceEvent, TxQueue, XStat,
};

/// A null, ring, AF_PACKET or device port.
#[derive(Debug)]
pub enum AnyPort {
    /// See [`NullPort`].
    Null(NullPort),
    /// See [`RingPort`].
    Ring(RingPort),
    /// See [`AfPacketPort`].
    AfPacket(AfPacketPort),
    /// A device (a VF through vfio), driven by the driver its PCI ids name.
    Device(DynPort),
}

/// Receive queue of an [`AnyPort`].
pub enum AnyRx {
    /// Null.
    Null(NullRx),
    /// Ring.
    Ring(RingRx),
    /// AF_PACKET.
    AfPacket(AfPacketRx),
    /// Device.
    Device(DynRx),
}

/// Transmit queue of an [`AnyPort`].
pub enum AnyTx {
    /// Null.
    Null(NullTx),
    /// Ring.
    Ring(RingTx),
    /// AF_PACKET.
    AfPacket(AfPacketTx),
    /// Device.
    Device(DynTx),
}

impl std::fmt::Debug for AnyRx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AnyRx::Null(_) => "AnyRx::Null",
            AnyRx::Ring(_) => "AnyRx::Ring",
            AnyRx::AfPacket(_) => "AnyRx::AfPacket",
            AnyRx::Device(_) => "AnyRx::Device",
        })
    }
}

impl std::fmt::Debug for AnyTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AnyTx::Null(_) => "AnyTx::Null",
            AnyTx::Ring(_) => "AnyTx::Ring",
            AnyTx::AfPacket(_) => "AnyTx::AfPacket",
            AnyTx::Device(_) => "AnyTx::Device",
        })
    }
}

impl RxQueue for AnyRx {
    #[inline]
    fn rx_burst(&mut self, cache: &mut PoolCache, out: &mut Burst, max: usize) -> usize {
        match self {
            AnyRx::Null(q) => q.rx_burst(cache, out, max),
            AnyRx::Ring(q) => q.rx_burst(cache, out, max),
            AnyRx::AfPacket(q) => q.rx_burst(cache, out, max),
            AnyRx::Device(q) => q.rx_burst(cache, out, max),
        }
    }
}

impl TxQueue for AnyTx {
    #[inline]
    fn tx_burst(&mut self, cache: &mut PoolCache, pkts: &mut Burst) -> usize {
        match self {
            AnyTx::Null(q) => q.tx_burst(cache, pkts),
            AnyTx::Ring(q) => q.tx_burst(cache, pkts),
            AnyTx::AfPacket(q) => q.tx_burst(cache, pkts),
            AnyTx::Device(q) => q.tx_burst(cache, pkts),
        }
    }
}

/// Calls `$body` with `$p` bound to the port inside, whatever its kind.
macro_rules! each {
    ($self:expr, $p:ident => $body:expr) => {
        match $self {
            AnyPort::Null($p) => $body,
            AnyPort::Ring($p) => $body,
            AnyPort::AfPacket($p) => $body,
            AnyPort::Device($p) => $body,
        }
    };
}

impl Port for AnyPort {
    type Rx = AnyRx;
    type Tx = AnyTx;

    fn info(&self) -> &PortInfo {
        each!(self, p => p.info())
    }

    fn link(&self) -> LinkState {
        each!(self, p => p.link())
    }

    fn stats(&self) -> PortStats {
        each!(self, p => p.stats())
    }

    fn xstats(&self) -> Vec<XStat> {
        each!(self, p => p.xstats())
    }

    fn service(&mut self) -> Result<ServiceEvent, PortError> {
        each!(self, p => p.service())
    }

    fn refresh_stats(&mut self) {
        each!(self, p => p.refresh_stats())
    }

    fn stop(&mut self) -> Result<(), PortError> {
        each!(self, p => p.stop())
    }

    fn start(&mut self) -> Result<(), PortError> {
        each!(self, p => p.start())
    }

    fn set_multicast(&mut self, macs: &[MacAddr]) -> Result<MulticastOutcome, PortError> {
        each!(self, p => p.set_multicast(macs))
    }

    fn queues(&mut self, rx: usize, tx: usize) -> Result<QueueSet<AnyRx, AnyTx>, PortError> {
        Ok(match self {
            AnyPort::Null(p) => {
                let (r, t) = p.queues(rx, tx)?;
                (
                    r.into_iter().map(AnyRx::Null).collect(),
                    t.into_iter().map(AnyTx::Null).collect(),
                )
            }
            AnyPort::Ring(p) => {
                let (r, t) = p.queues(rx, tx)?;
                (
                    r.into_iter().map(AnyRx::Ring).collect(),
                    t.into_iter().map(AnyTx::Ring).collect(),
                )
            }
            AnyPort::AfPacket(p) => {
                let (r, t) = p.queues(rx, tx)?;
                (
                    r.into_iter().map(AnyRx::AfPacket).collect(),
                    t.into_iter().map(AnyTx::AfPacket).collect(),
                )
            }
            AnyPort::Device(p) => {
                let (r, t) = p.queues(rx, tx)?;
                (
                    r.into_iter().map(AnyRx::Device).collect(),
                    t.into_iter().map(AnyTx::Device).collect(),
                )
            }
        })
    }
}
